use delayed::delayed;

#[delayed(retry = delayed::Retry::attempts(2), retry = delayed::Retry::attempts(3))]
async fn fetch(id: u64) -> u64 {
    id
}

fn main() {}
