use delayed::delayed;

#[delayed]
fn check(x: u64) -> Result<u64, u64> {
    if x > 0 {
        Ok(x)
    } else {
        Err(x)
    }
}

fn main() {}
