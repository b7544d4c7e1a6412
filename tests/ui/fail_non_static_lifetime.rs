use delayed::delayed;

#[delayed]
fn len(s: std::borrow::Cow<'_, str>) -> usize {
    s.len()
}

fn main() {}
