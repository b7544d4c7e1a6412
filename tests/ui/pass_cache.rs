use delayed::cache::{Cache, SourceFile};
use delayed::{delayed, Delayed, Options};

#[delayed(cache)]
fn load(file: SourceFile) -> String {
    file.read_to_string().unwrap_or_default()
}

#[delayed(cache, version = "2")]
async fn clean(text: &String) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[delayed(cache, blocking)]
fn count(parts: Vec<Vec<String>>) -> Result<usize, std::io::Error> {
    Ok(parts.iter().map(Vec::len).sum())
}

#[delayed(cache, retry = delayed::Retry::attempts(2))]
fn pair(a: (u64, String), b: Option<u64>) -> (u64, String) {
    (a.0 + b.unwrap_or(0), a.1)
}

fn main() {
    let cache = Cache::memory();
    let text = load(SourceFile::hashed("x.txt"));
    let words = clean(&text);
    let total = count(vec![words]);
    let _ = total.compute_with(Options::new().cache(&cache));
    let _ = pair((1, Delayed::value("a".to_string())), Some(2));
}
