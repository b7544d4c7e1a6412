use delayed::delayed;

struct Counter(u64);

impl Counter {
    #[delayed]
    fn get(&self) -> u64 {
        self.0
    }
}

fn main() {}
