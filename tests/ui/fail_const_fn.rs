use delayed::delayed;

#[delayed]
const fn inc(x: u64) -> u64 {
    x + 1
}

fn main() {}
