use delayed::delayed;

#[delayed(priority = "high")]
async fn fetch(id: u64) -> u64 {
    id
}

fn main() {}
