use delayed::delayed;

#[delayed]
fn inc(x: u64) -> u64
where
    u64: Copy,
{
    x + 1
}

fn main() {}
