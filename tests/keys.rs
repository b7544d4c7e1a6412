//! Keys that read well and pure keys that are deterministic (dask's
//! `tokenize`).

use std::collections::{BTreeMap, HashMap, HashSet};

use delayed::{delayed, Delayed, Tokenize, Tokenizer};

#[delayed]
fn fetch(id: u64) -> u64 {
    id
}

#[delayed]
fn load(name: String, part: u32) -> String {
    format!("{name}:{part}")
}

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed(pure)]
fn triple(t: (u64, u64, u64)) -> u64 {
    t.0 + t.1 + t.2
}

#[delayed(pure)]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed(pure)]
fn scale(x: f64, by: f64) -> f64 {
    x * by
}

#[delayed(pure)]
fn mean(xs: Vec<f64>) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[delayed(pure)]
fn count(words: HashMap<String, u64>) -> u64 {
    words.values().sum()
}

#[delayed(pure)]
fn distinct(xs: HashSet<u64>) -> usize {
    xs.len()
}

#[test]
fn a_small_printable_call_reads_as_the_call() {
    // Made after other nodes: the key does not depend on a global counter.
    let _others: Vec<_> = (0..50).map(inc).collect();
    assert_eq!(fetch(77).key().to_string(), "fetch-77");
    assert_eq!(
        load("a.txt".to_string(), 2).key().to_string(),
        "load-a.txt-2"
    );
}

#[test]
fn two_live_calls_that_read_the_same_are_two_keys() {
    let a = fetch(5);
    let b = fetch(5);
    assert_ne!(a.key(), b.key());
    assert_eq!(a.key().to_string(), "fetch-5");
    assert_eq!(b.key().to_string(), "fetch-5#2");
    drop((a, b));
    assert_eq!(fetch(5).key().to_string(), "fetch-5");
}

#[test]
fn other_calls_get_a_short_id_not_a_counter() {
    let x = inc(inc(1));
    let key = x.key().to_string();
    let id = key.strip_prefix("inc-").unwrap();
    assert_eq!(id.len(), 12, "{key}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
    let long = load("a name with spaces".to_string(), 1).key().to_string();
    assert!(long.starts_with("load-") && !long.contains(' '), "{long}");
}

#[test]
fn a_literal_inside_a_collection_hashes_by_value() {
    let a = fetch(1);
    let b = fetch(2);
    let one = triple((a.clone(), b.clone(), Delayed::value(3)));
    let two = triple((a.clone(), b.clone(), Delayed::value(3)));
    assert_eq!(one.key(), two.key());
    assert_eq!(one.key(), triple((a.clone(), b.clone(), 3)).key());
    assert_ne!(one.key(), triple((a, b, Delayed::value(4))).key());
}

#[tokio::test]
async fn a_pure_key_does_not_change_once_inputs_ran() {
    let xs = vec![fetch(1), fetch(2)];
    let call = total(&xs);
    let before = call.key();
    for x in &xs {
        x.compute().await.unwrap();
    }
    assert_eq!(total(&xs).key(), before);
    assert_eq!(call.compute().await.unwrap(), 3);
    assert_eq!(total(&xs).key(), before);
}

#[test]
fn pure_works_for_floats_by_bits() {
    assert_eq!(scale(1.5, 2.0).key(), scale(1.5, 2.0).key());
    assert_ne!(scale(1.5, 2.0).key(), scale(2.0, 1.5).key());
    assert_ne!(scale(0.0, 1.0).key(), scale(-0.0, 1.0).key());
    assert_eq!(mean(vec![1.0, 2.0]).key(), mean(vec![1.0, 2.0]).key());
    assert_eq!(
        mean(vec![Delayed::value(1.0), Delayed::value(2.0)]).key(),
        mean(vec![1.0, 2.0]).key()
    );
}

#[test]
fn pure_maps_and_sets_hash_in_any_order() {
    let forward: HashMap<String, u64> = (0..50).map(|i| (format!("w{i}"), i)).collect();
    let mut backward = HashMap::with_capacity(200);
    for i in (0..50).rev() {
        backward.insert(format!("w{i}"), i);
    }
    assert_eq!(count(forward.clone()).key(), count(backward).key());
    let mut other = forward.clone();
    other.insert("w0".into(), 99);
    assert_ne!(count(forward).key(), count(other).key());
    let set: HashSet<u64> = (0..30).collect();
    let reversed: HashSet<u64> = (0..30).rev().collect();
    assert_eq!(distinct(set).key(), distinct(reversed).key());
}

#[test]
fn a_value_can_be_made_pure() {
    assert_eq!(
        Delayed::pure_value(3.5).key(),
        Delayed::pure_value(3.5).key()
    );
    assert_ne!(Delayed::value(3).key(), Delayed::value(3).key());
    let x = Delayed::pure_value("x".to_string());
    assert_eq!(
        inc_len(&x).key(),
        inc_len(Delayed::pure_value("x".to_string())).key()
    );
}

#[delayed(pure)]
fn inc_len(s: &str) -> usize {
    s.len() + 1
}

fn double(x: u64) -> u64 {
    x * 2
}

#[tokio::test]
async fn a_combinator_given_a_fn_item_can_be_pure() {
    let x = Delayed::pure_value(21_u64);
    let a = x.map_pure(double);
    let b = Delayed::pure_value(21_u64).map_pure(double);
    assert_eq!(a.key(), b.key());
    assert_eq!(a.key().name(), "double");
    assert_ne!(a.key(), x.map_pure(|x: u64| x + 1).key());
    assert_eq!(b.compute().await.unwrap(), 42);
}

struct Point {
    x: f64,
    y: f64,
}

impl Tokenize for Point {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        self.x.tokenize(tokens);
        self.y.tokenize(tokens);
    }
}

#[delayed(pure)]
fn norm(p: &Point) -> f64 {
    (p.x * p.x + p.y * p.y).sqrt()
}

#[derive(Clone, Hash)]
struct Query(String);

#[delayed(pure)]
fn run(q: Query, limit: BTreeMap<String, u32>) -> usize {
    q.0.len() + limit.len()
}

#[tokio::test]
async fn user_types_hash_by_tokenize_or_hash() {
    let p = || Point { x: 3.0, y: 4.0 };
    assert_eq!(norm(p()).key(), norm(p()).key());
    assert_eq!(norm(p()).compute().await.unwrap(), 5.0);
    assert_eq!(
        run(Query("a".into()), BTreeMap::<String, u32>::new()).key(),
        run(Query("a".into()), BTreeMap::<String, u32>::new()).key()
    );
}

#[derive(Clone)]
struct BadHash;

impl std::hash::Hash for BadHash {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {
        panic!("hash exploded");
    }
}

#[delayed(pure)]
fn use_bad(_b: Vec<BadHash>) -> u64 {
    1
}

#[tokio::test]
async fn a_panicking_hash_inside_a_collection_fails_the_node() {
    let err = use_bad(vec![BadHash]).compute().await.unwrap_err();
    assert!(err.is_panic(), "{err}");
}

#[delayed(pure)]
fn square(x: u64) -> u64 {
    x * x
}

#[tokio::test]
async fn naming_a_pure_call_leaves_an_equal_earlier_call_its_key() {
    let first = square(3);
    let before = first.key();
    let named = square(3).named("sq-3");
    assert_eq!(named.key().to_string(), "sq-3");
    assert_eq!(first.key(), before, "the earlier call keeps its key");
    assert_eq!(
        square(3).key(),
        before,
        "new equal calls still share the earlier node"
    );
    assert_eq!(delayed::compute((first, named)).await.unwrap(), (9, 9));
    // Alone, a pure call is simply renamed.
    let alone = square(5).named("sq-5");
    assert_eq!(alone.key().to_string(), "sq-5");
}

#[test]
fn suffixes_count_on_from_the_newest_live_call_and_restart_when_none_lives() {
    let suffix = |d: &Delayed<u64>| d.key().to_string();
    let a = fetch(9);
    let b = fetch(9);
    let c = fetch(9);
    assert_eq!(
        [suffix(&a), suffix(&b), suffix(&c)],
        ["fetch-9", "fetch-9#2", "fetch-9#3"]
    );
    drop(b);
    let d = fetch(9);
    assert_eq!(suffix(&d), "fetch-9#4");
    // Dropped on another thread: the count still goes down.
    std::thread::spawn(move || drop((a, c, d))).join().unwrap();
    assert_eq!(suffix(&fetch(9)), "fetch-9");
    let alone = fetch(9);
    drop(alone);
    let e = fetch(9);
    let f = fetch(9);
    assert_eq!([suffix(&e), suffix(&f)], ["fetch-9", "fetch-9#2"]);
    // A key outlives its node and keeps its suffix.
    let key = f.key();
    drop(f);
    assert_eq!(key.to_string(), "fetch-9#2");
    assert_eq!(
        suffix(&fetch(9)),
        "fetch-9#3",
        "the key still holds its label"
    );
    drop(key);
    assert_eq!(
        suffix(&fetch(9)),
        "fetch-9#4",
        "e still lives: counting goes on"
    );
    drop(e);
    assert_eq!(suffix(&fetch(9)), "fetch-9");
}
