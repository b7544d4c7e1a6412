//! Every signature shape the attribute supports, computed once.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use delayed::{delayed, Delayed};

#[derive(Debug)]
struct MyError;

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my error")
    }
}

impl std::error::Error for MyError {}

type Result<T> = std::result::Result<T, MyError>;

/// Plain owned parameters.
#[delayed]
fn add(x: u64, y: u64) -> u64 {
    x + y
}

#[delayed]
fn length(s: &str) -> usize {
    s.len()
}

#[delayed]
fn sum(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

/// Not `Clone`: only ever borrowed.
struct Big(Vec<u64>);

#[delayed]
fn make_big(n: u64) -> Big {
    Big((0..n).collect())
}

#[delayed]
fn big_len(big: &Big) -> usize {
    big.0.len()
}

#[delayed]
fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[delayed]
fn swap((a, b): (u64, u64)) -> (u64, u64) {
    (b, a)
}

#[delayed]
fn countdown(mut x: u64) -> u64 {
    while x > 10 {
        x -= 1;
    }
    x
}

#[delayed]
fn log(_message: String) {}

#[delayed]
fn parse(s: String) -> io::Result<u64> {
    s.parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[delayed]
fn positive(x: u64) -> Result<u64> {
    if x > 0 {
        Ok(x)
    } else {
        Err(MyError)
    }
}

#[delayed]
async fn fetch(name: String, retries: &u64) -> String {
    format!("{name}:{retries}")
}

#[delayed(blocking)]
fn crunch(xs: Vec<u64>) -> u64 {
    xs.iter().map(|x| x * x).sum()
}

#[delayed(pure)]
fn square(x: u64) -> u64 {
    x * x
}

#[delayed(blocking, pure)]
fn cube(x: &u64) -> u64 {
    x * x * x
}

/// Documented, linted, and visible only in this crate.
#[allow(clippy::ptr_arg)]
#[delayed]
pub(crate) fn count(xs: &Vec<String>) -> usize {
    xs.len()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let two: Delayed<u64> = add(1, 1);
        assert_eq!(add(&two, two.clone()).compute().await.unwrap(), 4);
        assert_eq!(length("abc".to_string()).compute().await.unwrap(), 3);
        assert_eq!(sum(vec![1, 2, 3]).compute().await.unwrap(), 6);
        let big = make_big(4);
        assert_eq!(big_len(&big).compute().await.unwrap(), 4);
        assert_eq!(big_len(big).compute().await.unwrap(), 4);
        let path = PathBuf::from("/tmp/data.csv");
        assert_eq!(file_name(path).compute().await.unwrap(), "data.csv");
        assert_eq!(swap((1, 2)).compute().await.unwrap(), (2, 1));
        assert_eq!(countdown(15).compute().await.unwrap(), 10);
        log("hello".to_string()).compute().await.unwrap();
        assert_eq!(parse("42".to_string()).compute().await.unwrap(), 42);
        assert!(parse("x".to_string()).compute().await.is_err());
        assert_eq!(positive(3).compute().await.unwrap(), 3);
        assert!(positive(0).compute().await.is_err());
        let fetched = fetch("a".to_string(), 2).compute().await.unwrap();
        assert_eq!(fetched, "a:2");
        assert_eq!(crunch(vec![1, 2]).compute().await.unwrap(), 5);
        assert_eq!(square(3).compute().await.unwrap(), 9);
        assert_eq!(cube(square(2)).compute().await.unwrap(), 64);
        let names = vec!["a".to_string(), "b".to_string()];
        assert_eq!(count(names).compute().await.unwrap(), 2);
    });
}
