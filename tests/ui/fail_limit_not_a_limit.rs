use delayed::delayed;

static NOT_A_LIMIT: u32 = 16;

#[delayed(limit = NOT_A_LIMIT)]
async fn fetch(id: u64) -> u64 {
    id
}

fn main() {}
