use delayed::delayed;

#[delayed]
fn load(name: String) -> String {
    name
}

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

fn main() {
    let _ = inc(load("a".to_string()));
}
