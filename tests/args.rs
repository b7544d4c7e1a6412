//! What a parameter accepts (`IntoDelayed`), borrowing, moving, and the
//! shapes of function the attribute supports.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::Live;
use delayed::{delayed, Delayed};

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed]
#[allow(clippy::ptr_arg)]
fn size(data: &Vec<u8>) -> usize {
    data.len()
}

#[delayed]
fn pair((a, b): (u64, String)) -> String {
    format!("{a}:{b}")
}

#[delayed]
fn lookup(table: HashMap<String, u64>, key: String) -> Option<u64> {
    table.get(&key).copied()
}

#[delayed]
fn or_zero(x: Option<u64>) -> u64 {
    x.unwrap_or(0)
}

#[delayed]
fn shout(s: &str) -> String {
    s.to_uppercase()
}

#[delayed]
fn first(xs: &[u64]) -> u64 {
    xs[0]
}

#[delayed]
fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[delayed]
fn mixed(label: &str, mut n: u64, xs: &[u64]) -> String {
    n += xs.len() as u64;
    format!("{label}{n}")
}

#[delayed]
fn nothing() {}

#[delayed]
#[allow(clippy::ptr_arg)]
async fn async_size(data: &Vec<u8>, extra: usize) -> usize {
    tokio::task::yield_now().await;
    data.len() + extra
}

#[delayed(blocking)]
fn checksum(data: &[u8]) -> u64 {
    data.iter().map(|&b| u64::from(b)).sum()
}

/// Not `Clone`: only borrowed.
struct Blob(Vec<u8>);

#[delayed]
fn blob(n: usize) -> Blob {
    Blob(vec![1; n])
}

#[delayed]
fn blob_len(blob: &Blob) -> usize {
    blob.0.len()
}

#[tokio::test]
async fn plain_values_nodes_and_references() {
    let a = Delayed::value(1);
    assert_eq!(add(1, 2).compute().await.unwrap(), 3);
    assert_eq!(add(&a, 2).compute().await.unwrap(), 3);
    assert_eq!(add(a.clone(), &a).compute().await.unwrap(), 2);
    assert_eq!(add(add(1, 1), a).compute().await.unwrap(), 3);
}

#[tokio::test]
async fn vec_parameters_take_lists_of_nodes() {
    let parts: Vec<_> = (1..=4).map(|i| add(i, 0)).collect();
    assert_eq!(total(vec![1, 2, 3]).compute().await.unwrap(), 6);
    assert_eq!(total(&parts).compute().await.unwrap(), 10);
    assert_eq!(total(&parts[1..]).compute().await.unwrap(), 9);
    assert_eq!(total(parts).compute().await.unwrap(), 10);
    assert_eq!(total(Vec::<u64>::new()).compute().await.unwrap(), 0);
    assert_eq!(
        total(Vec::<Delayed<u64>>::new()).compute().await.unwrap(),
        0
    );
}

#[tokio::test]
async fn tuples_maps_and_options_of_nodes() {
    let tuple = (Delayed::value(7), Delayed::value("x".to_string()));
    assert_eq!(pair(tuple).compute().await.unwrap(), "7:x");
    assert_eq!(pair((1, "y".to_string())).compute().await.unwrap(), "1:y");

    let mut table = HashMap::new();
    table.insert("a".to_string(), add(1, 1));
    table.insert("b".to_string(), add(2, 2));
    assert_eq!(
        lookup(table, "b".to_string()).compute().await.unwrap(),
        Some(4)
    );

    assert_eq!(or_zero(Some(add(2, 3))).compute().await.unwrap(), 5);
    assert_eq!(or_zero(None::<Delayed<u64>>).compute().await.unwrap(), 0);
    assert_eq!(or_zero(Some(9)).compute().await.unwrap(), 9);
}

#[tokio::test]
async fn reference_parameters_borrow_the_shared_output() {
    let data = Delayed::value(vec![1_u8, 2, 3]);
    assert_eq!(size(&data).compute().await.unwrap(), 3);
    assert_eq!(async_size(&data, 1).compute().await.unwrap(), 4);
    assert_eq!(checksum(&data).compute().await.unwrap(), 6);

    // A type that is not Clone flows through `&T` parameters.
    let b = blob(5);
    assert_eq!(blob_len(&b).compute().await.unwrap(), 5);
    assert_eq!(blob_len(b).compute().await.unwrap(), 5);
}

#[tokio::test]
async fn str_slice_and_path_parameters_take_owned_nodes() {
    assert_eq!(shout("hi".to_string()).compute().await.unwrap(), "HI");
    assert_eq!(first(vec![4, 5]).compute().await.unwrap(), 4);
    let path = Delayed::value(PathBuf::from("data/a.csv"));
    assert_eq!(extension(&path).compute().await.unwrap(), "csv");
    // Borrowed parameters may come before owned ones.
    assert_eq!(
        mixed("n=".to_string(), 1, vec![0, 0])
            .compute()
            .await
            .unwrap(),
        "n=3"
    );
}

#[tokio::test]
async fn unit_functions_make_unit_nodes() {
    let unit: Delayed<()> = nothing();
    unit.compute().await.unwrap();
}

#[delayed]
fn consume(t: common::Tracked) -> u64 {
    t.payload
}

#[delayed]
fn make(live: Live, payload: u64) -> common::Tracked {
    live.make(payload)
}

#[tokio::test]
async fn owned_parameters_move_the_last_handle_and_clone_shared_ones() {
    let live = Live::new();
    // Nobody else holds the input: its output moves into `consume`.
    let moved = consume(make(live.clone(), 1));
    assert_eq!(moved.compute().await.unwrap(), 1);
    assert_eq!(live.clones(), 0);

    // The caller keeps a handle: the input must stay, so it is cloned.
    let kept = make(live.clone(), 2);
    let cloned = consume(&kept);
    assert_eq!(cloned.compute().await.unwrap(), 2);
    assert_eq!(live.clones(), 1);
}

#[tokio::test]
async fn awaiting_the_last_handle_moves_the_output() {
    let live = Live::new();
    let t = make(live.clone(), 3).await.unwrap();
    assert_eq!(t.payload, 3);
    assert_eq!(live.clones(), 0);

    let joined = delayed::compute(vec![make(live.clone(), 4), make(live.clone(), 5)])
        .await
        .unwrap();
    assert_eq!(
        joined.iter().map(|t| t.payload).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert_eq!(
        live.clones(),
        0,
        "compute moved outputs out of nodes nobody else holds"
    );
}

#[derive(Debug, thiserror::Error)]
#[error("bad input: {0}")]
struct BadInput(String);

type Result<T> = std::result::Result<T, BadInput>;

#[delayed]
fn parse(s: String) -> Result<u64> {
    s.parse().map_err(|_| BadInput(s))
}

#[delayed]
async fn read(path: PathBuf) -> std::io::Result<String> {
    tokio::fs::read_to_string(path).await
}

#[delayed]
fn checked(x: u64) -> std::result::Result<u64, String> {
    if x > 10 {
        Err(format!("{x} is too big"))
    } else {
        Ok(x)
    }
}

#[tokio::test]
async fn result_returning_functions_make_nodes_of_the_ok_type() {
    let n: Delayed<u64> = parse("42".to_string());
    assert_eq!(n.compute().await.unwrap(), 42);

    let err = parse("x".to_string()).compute().await.unwrap_err();
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "bad input: x");
    assert!(source.downcast_ref::<BadInput>().is_some());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "hello").unwrap();
    let text: Delayed<String> = read(file);
    assert_eq!(text.compute().await.unwrap(), "hello");
    let missing = read(dir.path().join("missing"))
        .compute()
        .await
        .unwrap_err();
    let io = std::error::Error::source(&missing)
        .unwrap()
        .downcast_ref::<std::io::Error>()
        .unwrap();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    assert_eq!(checked(3).compute().await.unwrap(), 3);
    let err = checked(11).compute().await.unwrap_err();
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "11 is too big"
    );
}
