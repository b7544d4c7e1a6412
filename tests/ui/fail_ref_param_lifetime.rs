use delayed::delayed;

#[delayed]
fn len(s: &'static str) -> usize {
    s.len()
}

fn main() {}
