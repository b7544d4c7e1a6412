use delayed::delayed;

#[delayed(version = "2")]
fn a(x: u64) -> u64 {
    x
}

#[delayed(cache, version = 2)]
fn b(x: u64) -> u64 {
    x
}

#[delayed(cache, version)]
fn c(x: u64) -> u64 {
    x
}

#[derive(Clone)]
struct Model;

impl Model {
    #[delayed(cache)]
    fn predict(&self, x: u64) -> u64 {
        x
    }
}

fn main() {}
