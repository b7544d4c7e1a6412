use delayed::delayed;

#[derive(Clone)]
struct Opaque(u64);

#[delayed(pure)]
fn half(x: Opaque) -> u64 {
    x.0 / 2
}

fn main() {}
