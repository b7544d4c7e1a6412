use delayed::delayed;

#[delayed(timeout = 5)]
async fn fetch(id: u64) -> u64 {
    id
}

fn main() {}
