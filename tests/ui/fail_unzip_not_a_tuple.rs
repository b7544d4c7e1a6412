use delayed::Delayed;

fn main() {
    // `unzip` splits tuples of 1 to 12 fields only.
    let _ = Delayed::value(1_u64).unzip();
    let _ = Delayed::value((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)).unzip();
}
