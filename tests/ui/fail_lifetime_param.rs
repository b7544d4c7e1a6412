use delayed::delayed;

#[delayed]
fn len<'a>(s: &'a str) -> usize {
    s.len()
}

fn main() {}
