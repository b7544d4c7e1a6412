use delayed::{Delayed, Limit};

fn main() {
    let local = Limit::new("local", 2);
    let _ = Delayed::value(1_u64).map(|x| x + 1).limit(&local);
}
