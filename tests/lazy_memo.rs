//! Lazy and memoized: nothing runs before a compute, a node runs at most
//! once while anything holds it, and pure calls share one node.

mod common;

use common::Counter;
use delayed::{delayed, Delayed};

#[delayed]
fn inc(runs: Counter, x: u64) -> u64 {
    runs.bump();
    x + 1
}

#[delayed]
fn add(runs: Counter, a: u64, b: u64) -> u64 {
    runs.bump();
    a + b
}

#[delayed(pure)]
fn square(runs: Counter, x: u64) -> u64 {
    runs.bump();
    x * x
}

#[tokio::test]
async fn calling_builds_a_node_and_runs_nothing() {
    let runs = Counter::new();
    let a = inc(runs.clone(), 1);
    let b = inc(runs.clone(), &a);
    let c = add(runs.clone(), &a, &b);
    tokio::task::yield_now().await;
    assert_eq!(runs.get(), 0);
    drop(c);
    assert_eq!(runs.get(), 0, "dropping an unrun graph runs nothing");
}

#[tokio::test]
async fn a_node_runs_once_and_computing_again_returns_the_stored_result() {
    let runs = Counter::new();
    let a = inc(runs.clone(), 1);
    assert_eq!(a.compute().await.unwrap(), 2);
    assert_eq!(a.compute().await.unwrap(), 2);
    assert_eq!((&a).await.unwrap(), 2);
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn only_the_requested_part_of_the_graph_runs() {
    let runs = Counter::new();
    let a = inc(runs.clone(), 1);
    let _unused = inc(runs.clone(), &a);
    assert_eq!(a.compute().await.unwrap(), 2);
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_diamond_runs_its_shared_input_once() {
    let runs = Counter::new();
    let shared = inc(runs.clone(), 1);
    let left = inc(runs.clone(), &shared);
    let right = inc(runs.clone(), &shared);
    let top = add(runs.clone(), left, right);
    assert_eq!(top.compute().await.unwrap(), 6);
    assert_eq!(runs.get(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_computes_of_one_node_run_it_once() {
    let runs = Counter::new();
    let shared = inc(runs.clone(), 1);
    let tops: Vec<_> = (0..50).map(|i| add(runs.clone(), &shared, i)).collect();
    let results = futures::future::join_all(tops.iter().map(Delayed::compute)).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), 2 + i as u64);
    }
    assert_eq!(runs.get(), 51);
}

#[tokio::test]
async fn compute_of_a_tuple_shares_intermediates() {
    let runs = Counter::new();
    let shared = inc(runs.clone(), 1);
    let a = inc(runs.clone(), &shared);
    let b = add(runs.clone(), &shared, 10);
    let (a, b, again) = delayed::compute((a, b, &shared)).await.unwrap();
    assert_eq!((a, b, again), (3, 12, 2));
    assert_eq!(runs.get(), 3);
}

#[tokio::test]
async fn compute_of_a_vec_returns_values_in_order() {
    let runs = Counter::new();
    let nodes: Vec<_> = (0..10).map(|i| inc(runs.clone(), i)).collect();
    let values = delayed::compute(nodes).await.unwrap();
    assert_eq!(values, (1..=10).collect::<Vec<u64>>());
    assert_eq!(runs.get(), 10);
}

#[tokio::test]
async fn compute_accepts_tuples_of_twelve() {
    let v = Delayed::value;
    let out = delayed::compute((
        v(1),
        v(2),
        v(3),
        v(4),
        v(5),
        v(6),
        v(7),
        v(8),
        v(9),
        v(10),
        v(11),
        v(12),
    ))
    .await
    .unwrap();
    assert_eq!(out, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
}

#[tokio::test]
async fn keys_name_the_function_and_are_unique_per_call() {
    let runs = Counter::new();
    let a = inc(runs.clone(), 1);
    let b = inc(runs.clone(), 1);
    assert!(a.key().to_string().starts_with("inc-"));
    assert_eq!(a.key().name(), "inc");
    assert_ne!(a.key(), b.key());
    assert_eq!(a.key(), a.clone().key());
}

#[tokio::test]
async fn named_sets_a_custom_key() {
    let runs = Counter::new();
    let a = inc(runs.clone(), 1).named("load-1");
    assert_eq!(a.key().to_string(), "load-1");
    assert_eq!(a.key().name(), "inc");
    assert_eq!(a.compute().await.unwrap(), 2);
}

#[tokio::test]
async fn equal_pure_calls_are_one_node() {
    let runs = Counter::new();
    let a = square(runs.clone(), 3);
    let b = square(runs.clone(), 3);
    assert_eq!(a.key(), b.key());
    assert!(a.key().to_string().starts_with("square-"));
    assert_ne!(a.key(), square(runs.clone(), 4).key());

    assert_eq!(a.compute().await.unwrap(), 9);
    assert_eq!(b.compute().await.unwrap(), 9);
    assert_eq!(runs.get(), 1, "both handles are the same node");
}

#[tokio::test]
async fn pure_keys_follow_the_arguments_through_the_graph() {
    let runs = Counter::new();
    let x = inc(runs.clone(), 1);
    // The same input node gives the same key; a literal hashes by value.
    assert_eq!(
        square(runs.clone(), &x).key(),
        square(runs.clone(), &x).key()
    );
    assert_eq!(
        square(runs.clone(), 5).key(),
        square(runs.clone(), Delayed::value(5)).key()
    );
    assert_ne!(
        square(runs.clone(), &x).key(),
        square(runs.clone(), inc(runs.clone(), 1)).key()
    );
}

#[tokio::test]
async fn pure_keys_are_deterministic_across_lifetimes() {
    let runs = Counter::new();
    let first = square(runs.clone(), 7).key();
    // The first node is gone; a new equal call builds a new node, same key.
    let second = square(runs.clone(), 7);
    assert_eq!(first, second.key());
    assert_eq!(second.compute().await.unwrap(), 49);
}

#[tokio::test]
async fn persist_starts_work_without_an_await() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let job = Delayed::value(5_u64).map(move |x| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(x);
        }
        x
    });
    let persisted = job.persist();
    assert_eq!(rx.await.unwrap(), 5, "the work ran with nobody awaiting it");
    assert_eq!(persisted.compute().await.unwrap(), 5);
}

#[test]
fn compute_blocking_works_without_a_runtime() {
    let runs = Counter::new();
    let a = add(runs.clone(), inc(runs.clone(), 1), 40);
    assert_eq!(a.compute_blocking().unwrap(), 42);
    assert_eq!(a.compute_blocking().unwrap(), 42);
    assert_eq!(runs.get(), 2);
}

#[test]
fn compute_works_under_another_executor() {
    let runs = Counter::new();
    let a = inc(runs.clone(), 1).then(|x| async move { x * 10 });
    assert_eq!(futures::executor::block_on(a.compute()).unwrap(), 20);
}

#[test]
fn persist_outside_a_runtime_uses_the_fallback_runtime() {
    let runs = Counter::new();
    let a = inc(runs.clone(), 1).persist();
    assert_eq!(a.compute_blocking().unwrap(), 2);
    assert_eq!(runs.get(), 1);
}

#[delayed(pure)]
fn pure_total(runs: Counter, xs: Vec<u64>) -> u64 {
    runs.bump();
    xs.iter().sum()
}

#[tokio::test]
async fn pure_calls_on_equal_lists_of_nodes_are_one_node() {
    let runs = Counter::new();
    let parts: Vec<_> = (0..3).map(|i| inc(runs.clone(), i)).collect();
    let a = pure_total(runs.clone(), &parts);
    let b = pure_total(runs.clone(), parts.clone());
    assert_eq!(a.key(), b.key());
    let other: Vec<_> = (0..3).map(|i| inc(runs.clone(), i)).collect();
    assert_ne!(
        a.key(),
        pure_total(runs.clone(), other).key(),
        "other nodes, other key"
    );
    assert_eq!(
        pure_total(runs.clone(), vec![1, 2]).key(),
        pure_total(runs.clone(), vec![1, 2]).key()
    );
    let empty = || Vec::<Delayed<u64>>::new();
    assert_eq!(
        pure_total(runs.clone(), empty()).key(),
        pure_total(runs.clone(), empty()).key()
    );
    assert_eq!(a.compute().await.unwrap(), 6);
    assert_eq!(b.compute().await.unwrap(), 6);
    assert_eq!(runs.get(), 4, "three incs and one total");
}
