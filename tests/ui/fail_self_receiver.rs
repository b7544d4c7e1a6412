use delayed::delayed;

struct Counter(u64);

impl Counter {
    #[delayed]
    fn get(&mut self) -> u64 {
        self.0
    }
}

fn main() {}
