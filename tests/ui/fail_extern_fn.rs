use delayed::delayed;

#[delayed]
extern "C" fn inc(x: u64) -> u64 {
    x + 1
}

fn main() {}
