//! Collecting an iterator of nodes into `Delayed<Vec<T>>`, and flattening
//! a `Delayed<Delayed<T>>`.

mod common;

use std::error::Error as _;
use std::time::Duration;

use common::{fail, nap, Counter, DropFlag};
use delayed::{delayed, Delayed, Join, Options};
use tokio::time::{timeout, Instant};

#[delayed]
fn load(i: u64) -> u64 {
    i * 10
}

#[delayed(pure)]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[tokio::test]
async fn collect_gathers_the_outputs_in_order() {
    let all: Delayed<Vec<u64>> = (0..5).map(load).collect();
    assert_eq!(all.compute().await.unwrap(), [0, 10, 20, 30, 40]);
    let none: Delayed<Vec<u64>> = std::iter::empty::<Delayed<u64>>().collect();
    assert_eq!(none.compute().await.unwrap(), Vec::<u64>::new());
}

#[tokio::test]
async fn collect_by_reference_keeps_the_nodes_and_shares_them() {
    let runs = Counter::new();
    let parts: Vec<Delayed<u64>> = (0..3)
        .map(|i| {
            let runs = runs.clone();
            Delayed::lazy(move || {
                runs.bump();
                i
            })
        })
        .collect();
    let first: Delayed<Vec<u64>> = parts.iter().collect();
    let again: Delayed<Vec<u64>> = parts.iter().rev().collect();
    assert_eq!(first.compute().await.unwrap(), [0, 1, 2]);
    assert_eq!(again.compute().await.unwrap(), [2, 1, 0]);
    assert_eq!(runs.get(), 3, "each part ran once for both lists");
    assert_eq!(parts[1].compute().await.unwrap(), 1);
}

#[tokio::test]
async fn a_collected_list_is_the_same_join_as_a_joined_vec() {
    let parts: Vec<Delayed<u64>> = (0..3).map(load).collect();
    let collected: Delayed<Vec<u64>> = parts.iter().collect();
    let joined = parts.clone().join();
    assert_eq!(collected.key().name(), joined.key().name());
    // A pure call hashes a join by its parts: equal lists of the same
    // nodes give one key, however the list was made.
    assert_eq!(total(&collected).key(), total(&joined).key());
    assert_eq!(total(collected).compute().await.unwrap(), 30);
}

#[tokio::test]
async fn a_failing_part_fails_the_collected_list_naming_it() {
    let all: Delayed<Vec<u64>> = [load(1), fail(2).named("bad-part"), load(3)]
        .into_iter()
        .collect();
    let err = all.compute().await.unwrap_err();
    assert_eq!(err.key().to_string(), "bad-part");
}

#[tokio::test]
async fn an_index_of_a_collected_list_keeps_its_key_once_the_list_ran() {
    let all: Delayed<Vec<u64>> = (0..3).map(load).collect();
    let before = all.index(2).key();
    assert_eq!(all.compute().await.unwrap(), [0, 10, 20]);
    assert_eq!(all.index(2).key(), before);
    assert_eq!(all.index(2).compute().await.unwrap(), 20);
}

#[delayed]
fn plan(depth: u64) -> Delayed<u64> {
    (0..depth).fold(Delayed::value(0), |x, _| x + 1)
}

#[tokio::test]
async fn flatten_computes_the_outer_node_then_the_inner_one() {
    let flat = plan(4).flatten();
    assert_eq!(flat.key().name(), "flatten");
    assert_eq!(flat.compute().await.unwrap(), 4);
    let nested = Delayed::value(Delayed::value(Delayed::value(7_u8)));
    assert_eq!(nested.flatten().flatten().compute().await.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn flatten_waits_for_an_async_inner_node_on_the_paused_clock() {
    // The outer node takes 1 s to decide on an inner node that takes 2 s.
    let outer = nap(1000, 5).then(|x| async move { nap(2000, x * 2) });
    let start = Instant::now();
    assert_eq!(outer.flatten().compute().await.unwrap(), 10);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_compute_of_a_flatten_stops_the_inner_work() {
    let dropped = Counter::new();
    let finished = Counter::new();
    let inner = {
        let (dropped, finished) = (dropped.clone(), finished.clone());
        Delayed::value(()).then(move |()| {
            let flag = DropFlag(dropped.clone());
            let finished = finished.clone();
            async move {
                let _flag = flag;
                tokio::time::sleep(Duration::from_secs(10)).await;
                finished.bump();
                1_u64
            }
        })
    };
    let flat = Delayed::value(inner).flatten();
    assert!(timeout(Duration::from_secs(1), flat.compute())
        .await
        .is_err());
    // Long after it would have finished: the inner body was dropped, not
    // left running.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(dropped.get(), 1);
    assert_eq!(finished.get(), 0);
    // A later compute starts it again.
    let start = Instant::now();
    assert_eq!(flat.compute().await.unwrap(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(finished.get(), 1);
}

#[tokio::test]
async fn flatten_fails_with_the_outer_or_the_inner_error() {
    let outer = fail(1).named("bad-outer").map(Delayed::value);
    let err = outer.flatten().compute().await.unwrap_err();
    assert_eq!(err.key().to_string(), "bad-outer");

    let outer = Delayed::value(fail(2).named("bad-inner"));
    let flat = outer.flatten();
    let err = flat.compute().await.unwrap_err();
    assert_eq!(err.key(), &flat.key());
    let inner = err
        .source()
        .unwrap()
        .downcast_ref::<delayed::Error>()
        .unwrap();
    assert_eq!(inner.key().to_string(), "bad-inner");
    assert!(inner.source().unwrap().is::<std::fmt::Error>());
}

/// A chain of `depth` flattens, each deciding the next level at run time.
fn chain(depth: u64) -> Delayed<u64> {
    if depth == 0 {
        return Delayed::value(0);
    }
    Delayed::value(depth - 1).map(chain).flatten() + 1
}

#[tokio::test]
async fn a_deep_chain_of_flattens_does_not_grow_the_stack() {
    assert_eq!(chain(5_000).compute().await.unwrap(), 5_000);
}

#[test]
fn flatten_runs_under_the_sequential_scheduler() {
    let flat = plan(3).flatten();
    let result = flat.compute_blocking_with(Options::new().sequential());
    assert_eq!(result.unwrap(), 3);
}
