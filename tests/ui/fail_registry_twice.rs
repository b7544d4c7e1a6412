use delayed::delayed;

#[delayed(register)]
fn load(path: String) -> String {
    path
}

fn main() {
    let _registry = delayed::registry![load, load];
}
