use delayed::delayed;

// Not marked `register`: it has no registry entry.
#[delayed]
fn load(path: String) -> String {
    path
}

fn main() {
    let _registry = delayed::registry![load];
}
