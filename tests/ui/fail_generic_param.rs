use delayed::delayed;

#[delayed]
fn first<T: Clone>(xs: Vec<T>) -> T {
    xs[0].clone()
}

fn main() {}
