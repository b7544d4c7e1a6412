use delayed::delayed;

#[delayed]
fn name(n: u64) -> &'static str {
    if n == 0 {
        "zero"
    } else {
        "other"
    }
}

fn main() {}
