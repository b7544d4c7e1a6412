use delayed::delayed;

struct Matrix(Vec<f64>);

#[delayed]
fn trace(m: Matrix) -> f64 {
    m.0[0]
}

fn main() {}
