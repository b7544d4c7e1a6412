use delayed::delayed;

#[delayed]
fn push(xs: &mut Vec<u64>) {
    xs.push(1);
}

fn main() {}
