use delayed::delayed;
use std::rc::Rc;

#[delayed]
fn share(x: u64) -> Rc<u64> {
    Rc::new(x)
}

fn main() {}
