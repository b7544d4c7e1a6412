use delayed::delayed;

#[delayed]
fn total(words: Vec<&str>) -> usize {
    words.iter().map(|w| w.len()).sum()
}

fn main() {}
