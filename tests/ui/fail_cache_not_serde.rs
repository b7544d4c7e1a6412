use delayed::delayed;

#[derive(Clone)]
struct Matrix(Vec<f64>);

// A cached result is kept through serde: the result type must be a serde type.
#[delayed(cache)]
fn make(n: u64) -> Matrix {
    Matrix(vec![0.0; n as usize])
}

// Its parameters too: their serialized bytes are part of the key.
#[delayed(cache)]
fn size(m: Matrix) -> u64 {
    m.0.len() as u64
}

fn main() {}
