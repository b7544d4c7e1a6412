//! Arguments traversed as deep as dask's: tuples mixing nodes and values,
//! arrays, nested vectors, maps and sets of nodes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use delayed::{delayed, Delayed};

#[delayed]
fn num(x: u64) -> u64 {
    x
}

#[delayed]
fn take3(t: (u64, u64, u64)) -> u64 {
    t.0 * 100 + t.1 * 10 + t.2
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed]
fn fixed(xs: [u64; 3]) -> u64 {
    xs[0] * 100 + xs[1] * 10 + xs[2]
}

#[delayed]
fn pairs(xs: Vec<(u64, String)>) -> String {
    xs.iter()
        .map(|(n, s)| format!("{s}{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[delayed]
fn grid(rows: Vec<Vec<u64>>) -> Vec<u64> {
    rows.iter().map(|row| row.iter().sum()).collect()
}

#[delayed]
fn by_name(m: BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[delayed]
fn hashed(m: HashMap<String, u64>) -> u64 {
    m.values().sum()
}

#[delayed]
fn unique(xs: HashSet<u64>) -> usize {
    xs.len()
}

#[delayed]
fn sorted(xs: BTreeSet<u64>) -> Vec<u64> {
    xs.into_iter().collect()
}

#[delayed]
fn maybe(x: Option<u64>) -> u64 {
    x.unwrap_or(0)
}

#[delayed]
fn nested(x: (Vec<u64>, Option<(u64, u64)>)) -> u64 {
    x.0.iter().sum::<u64>() + x.1.map_or(0, |(a, b)| a * b)
}

#[delayed]
fn borrow_all(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

#[tokio::test]
async fn tuples_mix_nodes_and_plain_values() {
    let (a, b) = (num(1), num(2));
    assert_eq!(
        take3((a.clone(), b.clone(), 3)).compute().await.unwrap(),
        123
    );
    assert_eq!(take3((1, &b, a)).compute().await.unwrap(), 121);
    assert_eq!(take3((4, 5, 6)).compute().await.unwrap(), 456);
}

#[tokio::test]
async fn arrays_and_vectors_mix_nodes_and_values() {
    let a = num(1);
    assert_eq!(
        total(vec![a.clone(), Delayed::value(2)])
            .compute()
            .await
            .unwrap(),
        3
    );
    assert_eq!(total([&a, &num(5)]).compute().await.unwrap(), 6);
    assert_eq!(
        fixed([a.clone(), num(2), num(3)]).compute().await.unwrap(),
        123
    );
    assert_eq!(fixed([7, 8, 9]).compute().await.unwrap(), 789);
    assert_eq!(
        borrow_all(vec![a.clone(), num(9)]).compute().await.unwrap(),
        10
    );
}

#[tokio::test]
async fn vectors_of_tuples_and_of_vectors() {
    let tagged = vec![
        (num(1), Delayed::value("a".to_string())),
        (num(2), Delayed::value("b".to_string())),
    ];
    assert_eq!(pairs(tagged).compute().await.unwrap(), "a1,b2");
    let mixed = vec![(num(3), "c".to_string())];
    assert_eq!(pairs(mixed).compute().await.unwrap(), "c3");
    let rows = vec![vec![num(1), num(2)], vec![num(3)], vec![]];
    assert_eq!(grid(rows).compute().await.unwrap(), [3, 3, 0]);
}

#[tokio::test]
async fn maps_and_sets_of_nodes() {
    let m: BTreeMap<String, Delayed<u64>> =
        [("a".to_string(), num(1)), ("b".to_string(), num(2))].into();
    assert_eq!(by_name(m).compute().await.unwrap(), "a=1,b=2");
    let h: HashMap<String, Delayed<u64>> =
        [("x".to_string(), num(4)), ("y".to_string(), num(5))].into();
    assert_eq!(hashed(h).compute().await.unwrap(), 9);
    let a = num(1);
    let set: HashSet<Delayed<u64>> = [a.clone(), a.clone(), num(1), num(2)].into_iter().collect();
    assert_eq!(set.len(), 3);
    assert_eq!(unique(set).compute().await.unwrap(), 2);
    let ordered: BTreeSet<Delayed<u64>> = [num(3), num(1), num(2)].into_iter().collect();
    assert_eq!(sorted(ordered).compute().await.unwrap(), [1, 2, 3]);
}

#[tokio::test]
async fn options_and_nesting() {
    assert_eq!(maybe(Some(num(4))).compute().await.unwrap(), 4);
    assert_eq!(maybe(None::<u64>).compute().await.unwrap(), 0);
    let x = nested((vec![num(1), Delayed::value(2)], Some((num(3), 4))));
    assert_eq!(x.compute().await.unwrap(), 15);
}

#[tokio::test]
async fn compute_of_a_map_of_nodes() {
    let jobs: HashMap<&str, Delayed<u64>> = [("a", num(1)), ("b", num(2))].into();
    let out = delayed::compute(jobs).await.unwrap();
    assert_eq!(out, HashMap::from([("a", 1), ("b", 2)]));
    let ordered: BTreeMap<u32, Delayed<u64>> =
        (0..3).map(|i| (i, num(u64::from(i) * 10))).collect();
    assert_eq!(
        delayed::compute(ordered).await.unwrap(),
        BTreeMap::from([(0, 0), (1, 10), (2, 20)])
    );
    let array = delayed::compute([num(1), num(2)]).await.unwrap();
    assert_eq!(array, [1, 2]);
}

#[tokio::test]
async fn equal_joins_of_the_same_nodes_have_one_key() {
    let (a, b) = (num(1), num(2));
    let one = delayed::join(vec![a.clone(), b.clone()]);
    let two = delayed::join(vec![a.clone(), b.clone()]);
    assert_eq!(one.key(), two.key());
    assert_ne!(one.key(), delayed::join(vec![b, a]).key());
    assert_eq!(two.compute().await.unwrap(), [1, 2]);
}
