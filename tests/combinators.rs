//! Deferring functions that are not annotated: `map`, `then` and friends.

mod common;

use std::time::Duration;

use common::{Counter, Live};
use delayed::Delayed;
use tokio::time::timeout;

#[tokio::test]
async fn lazy_runs_once_when_first_computed() {
    let runs = Counter::new();
    let counted = runs.clone();
    let node = Delayed::lazy(move || {
        counted.bump();
        7_u64
    });
    assert_eq!(runs.get(), 0);
    assert_eq!(node.compute().await.unwrap(), 7);
    assert_eq!(node.compute().await.unwrap(), 7);
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn map_ref_borrows_without_cloning() {
    let live = Live::new();
    let value = Delayed::value(live.make(4));
    let doubled = value.map_ref(|t| t.payload * 2);
    assert_eq!(doubled.compute().await.unwrap(), 8);
    assert_eq!(live.clones(), 0);
}

#[tokio::test]
async fn map_moves_the_last_handle_and_clones_a_shared_one() {
    let live = Live::new();
    let moved = Delayed::value(1_u64).map({
        let live = live.clone();
        move |x| live.make(x)
    });
    let payload = moved.map(|t| t.payload);
    drop(moved);
    assert_eq!(payload.compute().await.unwrap(), 1);
    assert_eq!(live.clones(), 0);

    let shared = Delayed::value(live.make(2));
    let payload = shared.map(|t| t.payload);
    assert_eq!(payload.compute().await.unwrap(), 2);
    assert_eq!(live.clones(), 1, "the caller's handle keeps the original");
}

#[tokio::test(start_paused = true)]
async fn then_starts_again_after_a_cancel() {
    let starts = Counter::new();
    let counted = starts.clone();
    let node = Delayed::value(3_u64).then(move |x| {
        counted.bump();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            x * 2
        }
    });
    assert!(timeout(Duration::from_millis(10), node.compute())
        .await
        .is_err());
    assert_eq!(node.compute().await.unwrap(), 6);
    assert_eq!(starts.get(), 2);
}

#[tokio::test]
async fn try_variants_fail_with_the_closure_error() {
    let parsed = Delayed::value("x1".to_string()).try_map(|s| s.parse::<u64>());
    let err = parsed.compute().await.unwrap_err();
    assert!(std::error::Error::source(&err)
        .unwrap()
        .downcast_ref::<std::num::ParseIntError>()
        .is_some());

    let checked = Delayed::value(5_u64).try_then(|x| async move {
        if x > 3 {
            Err(format!("{x} > 3"))
        } else {
            Ok(x)
        }
    });
    let err = checked.compute().await.unwrap_err();
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "5 > 3"
    );
    assert_eq!(err.key().name(), "then");
}

#[tokio::test]
async fn join_gathers_tuples_vectors_and_nested_shapes() {
    let a = Delayed::value(1_u64);
    let b = Delayed::value("b".to_string());
    let pair = delayed::join((&a, &b));
    assert_eq!(pair.compute().await.unwrap(), (1, "b".to_string()));

    let nested = delayed::join((vec![a.clone(), a.clone()], (&b, &a)));
    assert_eq!(
        nested.compute().await.unwrap(),
        (vec![1, 1], ("b".to_string(), 1))
    );

    let summed = delayed::join(vec![a.clone(), a.map(|x| x + 1)]).map(|v| v.iter().sum::<u64>());
    assert_eq!(summed.compute().await.unwrap(), 3);
}

#[tokio::test]
async fn map_blocking_runs_off_the_runtime_thread() {
    let runtime_thread = std::thread::current().id();
    let ran_on = Delayed::value(()).map_blocking(|()| std::thread::current().id());
    assert_ne!(ran_on.compute().await.unwrap(), runtime_thread);
}

#[tokio::test]
async fn combinators_are_named_in_keys() {
    let base = Delayed::value(1_u64);
    assert!(base.key().to_string().starts_with("value-"));
    assert_eq!(base.map(|x| x).key().name(), "map");
    assert_eq!(base.then(|x| async move { x }).key().name(), "then");
    assert_eq!(base.map_blocking(|x| x).key().name(), "map_blocking");
    assert_eq!(delayed::join((&base, &base)).key().name(), "tuple");
    assert_eq!(delayed::join(vec![base.clone()]).key().name(), "list");
}

#[tokio::test]
async fn unzip_splits_a_tuple_without_recomputing_it() {
    let runs = Counter::new();
    let counted = runs.clone();
    let pair = Delayed::lazy(move || {
        counted.bump();
        (vec![1_u64, 2], "two".to_string())
    });
    let (numbers, word) = pair.unzip();
    let (numbers, word) = delayed::compute((numbers, word)).await.unwrap();
    assert_eq!((numbers, word.as_str()), (vec![1, 2], "two"));
    assert_eq!(runs.get(), 1, "the tuple ran once for both fields");

    let (a, b, c) = Delayed::value((1_u8, 2_u16, 3_u32)).unzip();
    assert_eq!(delayed::compute((a, b, c)).await.unwrap(), (1, 2, 3));
    assert_eq!(pair.unzip().0.key().name(), "unzip");
}
