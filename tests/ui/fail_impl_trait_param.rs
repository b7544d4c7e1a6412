use delayed::delayed;

#[delayed]
fn inc(x: impl Into<u64>) -> u64 {
    x.into() + 1
}

fn main() {}
