use delayed::delayed;

#[delayed(fast)]
fn inc(x: u64) -> u64 {
    x + 1
}

fn main() {}
