use delayed::delayed;

#[delayed]
struct Config {
    threads: usize,
}

fn main() {}
