use delayed::delayed;

#[derive(Clone)]
struct Matrix(Vec<f64>);

// A registered function crosses the keyed-graph boundary through serde:
// its parameters and result must be serde types.
#[delayed(register)]
fn invert(m: Matrix) -> u64 {
    m.0.len() as u64
}

#[delayed(register)]
fn make(n: u64) -> Matrix {
    Matrix(vec![0.0; n as usize])
}

fn main() {}
