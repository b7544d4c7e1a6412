use delayed::delayed;

#[delayed(pure(strict))]
fn inc(x: u64) -> u64 {
    x + 1
}

fn main() {}
