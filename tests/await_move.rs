//! `delayed.await` moves the output out of the last handle, so outputs
//! need not be `Clone`; a shared node is a clear error; `compute()` and
//! `(&delayed).await` still clone.

mod common;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Counter, DropFlag};
use delayed::{delayed, Delayed};

/// An output that is not `Clone`, as an HTTP body often is not.
#[derive(Debug, PartialEq)]
struct Body(Vec<u8>);

#[delayed]
fn make_sync(n: u8) -> Body {
    Body(vec![n; 3])
}

#[delayed]
async fn fetch(n: u8) -> Body {
    tokio::task::yield_now().await;
    Body(vec![n; 2])
}

#[delayed(blocking)]
fn make_blocking(n: u8) -> Body {
    Body(vec![n])
}

#[delayed]
fn size(body: &Body) -> usize {
    body.0.len()
}

#[delayed(pure)]
fn make_pure(runs: Counter, n: u8) -> Body {
    runs.bump();
    Body(vec![n; 4])
}

#[tokio::test]
async fn awaiting_moves_a_non_clone_output_out_of_every_kind_of_node() {
    assert_eq!(make_sync(1).await.unwrap(), Body(vec![1; 3]));
    assert_eq!(fetch(2).await.unwrap(), Body(vec![2; 2]));
    assert_eq!(make_blocking(3).await.unwrap(), Body(vec![3]));
    assert_eq!(Delayed::value(Body(vec![4])).await.unwrap(), Body(vec![4]));
    let lazy = Delayed::lazy(|| Body(vec![5]));
    assert_eq!(lazy.await.unwrap(), Body(vec![5]));
}

#[delayed(blocking)]
fn joined(parts: Vec<usize>) -> Body {
    Body(parts.iter().map(|n| *n as u8).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaiting_moves_the_output_out_while_callbacks_watch() {
    // A scope watches every compute of the process: the watch must not
    // count as a handle (it once did, and every `.await` in a service with
    // a dashboard or metrics failed as shared after ten seconds).
    let timeline = Arc::new(delayed::Timeline::new());
    let _watching = delayed::observe(timeline.clone());
    let sizes: Vec<_> = (1..=12).map(|n| size(fetch(n))).collect();
    let started = std::time::Instant::now();
    assert_eq!(
        joined(sizes).named("joined").await.unwrap(),
        Body(vec![2; 12])
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(make_sync(7).await.unwrap(), Body(vec![7; 3]));
    assert!(timeline.tasks().iter().any(|t| t.key() == "joined"));
}

/// The engine's own references to a node that just finished go away a
/// moment after the compute hears of it, on other threads: the await must
/// wait them out, never report them as another handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaiting_the_last_handle_never_fails_on_a_multi_thread_runtime() {
    for i in 0..300_u32 {
        let n = (i % 200) as u8;
        let body = match i % 3 {
            0 => fetch(n),
            1 => make_sync(n),
            _ => make_blocking(n),
        };
        let result = body.await;
        assert!(result.is_ok(), "run {i}: {:?}", result.err());
        // Tasks awaiting nodes concurrently.
        let spawned = tokio::spawn(async move { fetch(n).await.map(|b| b.0.len()) });
        assert_eq!(spawned.await.unwrap().unwrap(), 2);
    }
}

#[tokio::test]
async fn a_dependent_that_has_run_no_longer_holds_its_input() {
    let body = fetch(7);
    let n = size(&body);
    assert_eq!(n.await.unwrap(), 2);
    assert_eq!(body.await.unwrap(), Body(vec![7, 7]));

    // The same when the dependent is computed (and kept) by reference.
    let body = fetch(8);
    let n = size(&body);
    assert_eq!(n.compute().await.unwrap(), 2);
    assert_eq!(body.await.unwrap(), Body(vec![8, 8]));
    assert_eq!(n.compute().await.unwrap(), 2);
}

#[tokio::test]
async fn a_shared_node_is_a_clear_error_and_stays_usable() {
    let body = fetch(9).named("fetch-9");
    let other = body.clone();
    let err = body.await.expect_err("another handle holds the node");
    assert!(err.is_shared());
    assert!(!err.is_failed() && !err.is_panic() && !err.is_cancelled());
    assert_eq!(err.key().to_string(), "fetch-9");
    let message = err.to_string();
    assert!(
        message.starts_with("task `fetch-9` could not be moved out"),
        "{message}"
    );
    assert!(message.contains("`compute()` clones it"), "{message}");

    // The node ran and keeps its output for the other handle.
    assert_eq!(size(&other).await.unwrap(), 2);
    assert_eq!(other.await.unwrap(), Body(vec![9, 9]));
}

#[tokio::test]
async fn a_dependent_that_has_not_run_shares_the_node() {
    let body = fetch(10);
    let n = size(&body);
    let err = body.await.unwrap_err();
    assert!(err.is_shared(), "{err}");
    // The dependent still runs on the output.
    assert_eq!(n.await.unwrap(), 2);
}

#[tokio::test]
async fn a_failure_is_reported_as_itself_even_on_a_shared_node() {
    let bad: Delayed<Body> = Delayed::value(0_u8).try_map(|_| Err(std::fmt::Error));
    let _other = bad.clone();
    let err = bad.await.unwrap_err();
    assert!(err.is_failed());
    assert!(!err.is_shared());
}

#[tokio::test]
async fn a_pure_node_leaves_the_table_when_its_output_moves_out() {
    let runs = Counter::new();
    let first = make_pure(runs.clone(), 1).await.unwrap();
    assert_eq!(first, Body(vec![1; 4]));
    // An equal call made afterwards is a new node, which runs again.
    let again = make_pure(runs.clone(), 1).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(runs.get(), 2);

    // Two equal live calls are one node: the await finds it shared.
    let a = make_pure(runs.clone(), 2);
    let b = make_pure(runs.clone(), 2);
    assert_eq!(a.key(), b.key());
    assert!(a.await.unwrap_err().is_shared());
    assert_eq!(b.await.unwrap(), Body(vec![2; 4]));
    assert_eq!(runs.get(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_node_is_moved_out_when_its_run_ends() {
    for _ in 0..50 {
        let body = Delayed::value(3_u8)
            .then(|n| async move {
                tokio::task::yield_now().await;
                Body(vec![n; 5])
            })
            .persist();
        assert_eq!(body.await.unwrap(), Body(vec![3; 5]));
    }
}

/// Counts its clones.
struct Counted {
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted {
            clones: Arc::clone(&self.clones),
        }
    }
}

#[tokio::test]
async fn compute_and_awaiting_a_reference_still_clone() {
    let clones = Arc::new(AtomicUsize::new(0));
    let value = Counted {
        clones: Arc::clone(&clones),
    };
    let node = Delayed::value(value).map(|v| v);
    let _kept = node.compute().await.unwrap();
    assert_eq!(clones.load(Ordering::SeqCst), 1);
    let _also = (&node).await.unwrap();
    assert_eq!(clones.load(Ordering::SeqCst), 2);
    // Awaiting the last handle moves: no clone.
    let _moved = node.await.unwrap();
    assert_eq!(clones.load(Ordering::SeqCst), 2);

    // A shared `Clone` output: `compute()` is the way to a copy.
    let x = Delayed::value(vec![1, 2, 3]);
    let y = x.map_ref(|v| v.len());
    assert_eq!(x.compute().await.unwrap(), [1, 2, 3]);
    assert_eq!(y.await.unwrap(), 3);
    assert_eq!(x.await.unwrap(), [1, 2, 3]);
}

#[tokio::test]
async fn the_moved_value_is_dropped_once_by_its_new_owner() {
    let drops = Counter::new();
    let flag = drops.clone();
    let node = Delayed::value(()).map(move |()| DropFlag(flag));
    let value = node.await.unwrap();
    assert_eq!(drops.get(), 0, "moved, not dropped with the node");
    drop(value);
    assert_eq!(drops.get(), 1);
}

#[tokio::test]
async fn a_panic_in_the_body_is_an_error_not_a_shared_node() {
    let boom = Delayed::value(0_u8).map(|_| -> Body { panic!("no body") });
    let err = boom.await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("no body"));
}

#[delayed]
async fn slow_body(started: Counter, dropped: Counter) -> Body {
    started.bump();
    let _guard = DropFlag(dropped);
    tokio::time::sleep(Duration::from_secs(60)).await;
    Body(vec![])
}

#[tokio::test(start_paused = true)]
async fn dropping_the_await_cancels_the_work() {
    let started = Counter::new();
    let dropped = Counter::new();
    let body = slow_body(started.clone(), dropped.clone());
    let waited = tokio::time::timeout(Duration::from_secs(1), body.into_future()).await;
    assert!(waited.is_err());
    tokio::task::yield_now().await;
    assert_eq!(started.get(), 1);
    assert_eq!(dropped.get(), 1, "the running body was aborted");
}

#[tokio::test]
async fn compute_each_still_clones_shared_outputs() {
    let shared = Delayed::value(vec![1_u8]);
    let results = delayed::compute_each([shared.clone(), shared.map_ref(|v| v.clone())]).await;
    assert_eq!(results[0].as_ref().unwrap(), &[1]);
    assert_eq!(results[1].as_ref().unwrap(), &[1]);
    assert_eq!(shared.await.unwrap(), [1]);
}

#[test]
fn awaiting_works_outside_a_runtime() {
    let body = futures::executor::block_on(fetch(4).into_future()).unwrap();
    assert_eq!(body, Body(vec![4, 4]));
}
