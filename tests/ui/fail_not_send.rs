use delayed::delayed;
use std::rc::Rc;

#[delayed]
fn get(x: Rc<u64>) -> u64 {
    *x
}

fn main() {}
