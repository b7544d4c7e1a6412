use delayed::delayed;

#[delayed(blocking = true)]
fn inc(x: u64) -> u64 {
    x + 1
}

fn main() {}
