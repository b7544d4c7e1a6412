//! Errors and panics: a failing task fails its dependents, which do not
//! run; a panic becomes an `Error` for every waiter, now and later; the
//! runtime keeps working.

mod common;

use std::time::Duration;

use common::{Counter, DropFlag};
use delayed::{delayed, Delayed, Error};

#[derive(Debug, thiserror::Error)]
#[error("no such item: {0}")]
struct Missing(u64);

#[delayed]
fn fetch(x: u64) -> Result<u64, Missing> {
    if x == 13 {
        Err(Missing(x))
    } else {
        Ok(x)
    }
}

#[delayed]
fn inc(runs: Counter, x: u64) -> u64 {
    runs.bump();
    x + 1
}

#[delayed]
fn explode(x: u64) -> u64 {
    if x > 0 {
        panic!("exploded on {x}");
    }
    x
}

#[delayed]
async fn explode_async(x: u64) -> u64 {
    tokio::task::yield_now().await;
    panic!("async boom {x}");
}

#[delayed(blocking)]
fn explode_blocking(x: u64) -> u64 {
    panic!("blocking boom {x}");
}

fn assert_error_traits<E: Clone + Send + Sync + 'static + std::error::Error>() {}

#[test]
fn error_is_clone_send_sync_and_an_error() {
    assert_error_traits::<Error>();
}

#[tokio::test]
async fn a_failure_fails_every_dependent_and_they_do_not_run() {
    let runs = Counter::new();
    let bad = fetch(13).named("fetch-13");
    let middle = inc(runs.clone(), &bad);
    let top = inc(runs.clone(), &middle);

    let err = top.compute().await.unwrap_err();
    assert_eq!(err.key().to_string(), "fetch-13");
    assert!(err.is_failed());
    assert!(!err.is_panic() && !err.is_cancelled());
    assert_eq!(err.to_string(), "task `fetch-13` failed");
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "no such item: 13");
    assert_eq!(runs.get(), 0);

    // Every node on the path reports the same stored error.
    assert_eq!(
        middle.compute().await.unwrap_err().key().to_string(),
        "fetch-13"
    );
    assert_eq!(
        bad.compute().await.unwrap_err().key().to_string(),
        "fetch-13"
    );
}

#[tokio::test]
async fn a_node_built_on_an_already_failed_input_fails_without_running() {
    let runs = Counter::new();
    let bad = fetch(13);
    assert!(bad.compute().await.is_err());
    let later = inc(runs.clone(), &bad);
    assert_eq!(*later.compute().await.unwrap_err().key(), bad.key());
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn independent_branches_are_not_affected() {
    let runs = Counter::new();
    let good = inc(runs.clone(), fetch(1));
    let bad = inc(runs.clone(), fetch(13));
    let (good_result, bad_result) = tokio::join!(good.compute(), bad.compute());
    assert_eq!(good_result.unwrap(), 2);
    assert!(bad_result.is_err());
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_panic_reaches_every_waiter_now_and_later() {
    let boom = explode(7).named("explode");
    let runs = Counter::new();
    let a = inc(runs.clone(), &boom);
    let b = inc(runs.clone(), &boom);

    let (ra, rb, rboom) = tokio::join!(a.compute(), b.compute(), boom.compute());
    for err in [ra.unwrap_err(), rb.unwrap_err(), rboom.unwrap_err()] {
        assert!(err.is_panic());
        assert_eq!(err.key().to_string(), "explode");
        assert_eq!(err.panic_message(), Some("exploded on 7"));
        assert_eq!(err.to_string(), "task `explode` panicked: exploded on 7");
        assert!(std::error::Error::source(&err).is_none());
    }
    // Later computes see the stored panic; the node does not run again.
    let again = boom.compute().await.unwrap_err();
    assert!(again.is_panic());
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn async_and_blocking_panics_are_contained() {
    let err = explode_async(1).compute().await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("async boom 1"));

    let err = explode_blocking(2).compute().await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("blocking boom 2"));

    let err = Delayed::value(1_u64)
        .then(|x| -> std::future::Ready<u64> { panic!("making the future failed for {x}") })
        .compute()
        .await
        .unwrap_err();
    assert_eq!(err.panic_message(), Some("making the future failed for 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_keeps_working_after_panics() {
    for i in 1..=20 {
        assert!(explode(i).compute().await.unwrap_err().is_panic());
        assert!(explode_async(i).compute().await.unwrap_err().is_panic());
    }
    let runs = Counter::new();
    assert_eq!(inc(runs.clone(), 1).compute().await.unwrap(), 2);
    assert_eq!(tokio::spawn(async { 5 }).await.unwrap(), 5);
}

#[tokio::test]
async fn a_panic_with_a_non_string_payload_still_becomes_an_error() {
    let err = Delayed::value(0_u64)
        .map(|_| -> u64 { std::panic::panic_any(42_i32) })
        .compute()
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
}

#[delayed]
async fn slow_sibling(dropped: Counter, finished: Counter) -> u64 {
    let _guard = DropFlag(dropped);
    tokio::time::sleep(Duration::from_secs(60)).await;
    finished.bump();
    0
}

#[delayed]
async fn fail_soon() -> Result<u64, Missing> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Err(Missing(0))
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[tokio::test(start_paused = true)]
async fn fail_fast_cancels_siblings_only_the_failed_compute_needed() {
    let dropped = Counter::new();
    let finished = Counter::new();
    let sibling = slow_sibling(dropped.clone(), finished.clone());
    let top = add(&sibling, fail_soon());

    let start = tokio::time::Instant::now();
    assert!(top.compute().await.is_err());
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(10),
        "the error came at once"
    );
    tokio::task::yield_now().await;
    assert_eq!(dropped.get(), 1, "the sibling was aborted");
    assert_eq!(finished.get(), 0);
}

#[test]
fn compute_blocking_returns_task_errors() {
    let err = fetch(13).compute_blocking().unwrap_err();
    assert!(err.is_failed());
    assert!(err.key().to_string().starts_with("fetch-"));
}

#[tokio::test]
async fn errors_from_nested_computes_chain() {
    let inner = fetch(13).named("inner");
    let outer = Delayed::value(())
        .try_then(move |()| {
            let inner = inner.clone();
            async move { inner.compute().await }
        })
        .named("outer");
    let err = outer.compute().await.unwrap_err();
    assert_eq!(err.to_string(), "task `outer` failed");
    let cause = std::error::Error::source(&err).unwrap();
    assert_eq!(cause.to_string(), "task `inner` failed");
    let root = std::error::Error::source(cause).unwrap();
    assert_eq!(root.to_string(), "no such item: 13");
}

#[tokio::test]
async fn debug_output_names_the_key_and_cause() {
    let err = fetch(13).named("f").compute().await.unwrap_err();
    let debug = format!("{err:?}");
    assert!(debug.contains("key: f"), "{debug}");
    assert!(debug.contains("Missing(13)"), "{debug}");
}

#[delayed]
async fn slow_ok(ms: u64, x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    x
}

#[tokio::test(start_paused = true)]
async fn keep_going_returns_every_output_with_its_own_result() {
    let runs = Counter::new();
    let shared = inc(runs.clone(), 1).named("shared");
    let failing = add(&shared, fail_soon()).named("failing");
    let slow = add(&shared, slow_ok(100, 10)).named("slow");
    let quick = inc(runs.clone(), &shared).named("quick");

    let start = tokio::time::Instant::now();
    let results = delayed::compute_each([failing, slow, quick]).await;
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "the slow output was not cancelled"
    );
    assert_eq!(results[0].as_ref().unwrap_err().key().name(), "fail_soon");
    assert_eq!(*results[1].as_ref().unwrap(), 12);
    assert_eq!(*results[2].as_ref().unwrap(), 3);
    assert_eq!(runs.get(), 2, "the shared input ran once");
}

#[tokio::test]
async fn the_alternate_form_and_report_give_the_whole_chain_on_one_line() {
    let err = inc(Counter::new(), fetch(13).named("fetch-13"))
        .compute()
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "task `fetch-13` failed");
    assert_eq!(
        format!("{err:#}"),
        "task `fetch-13` failed: no such item: 13"
    );
    assert_eq!(err.report(), "task `fetch-13` failed: no such item: 13");

    // Errors without a cause read the same either way.
    let boom = explode(3).named("explode-3").compute().await.unwrap_err();
    assert_eq!(boom.report(), "task `explode-3` panicked: exploded on 3");
    assert_eq!(format!("{boom:#}"), boom.to_string());
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}")]
struct ReadError {
    path: String,
    source: std::io::Error,
}

/// Repeats its source's message, as `#[error("...: {0}")]` does.
#[derive(Debug, thiserror::Error)]
#[error("parsing config: {0}")]
struct ConfigError(#[source] std::num::ParseIntError);

#[delayed]
fn read(path: String) -> Result<u64, ReadError> {
    Err(ReadError {
        path,
        source: std::io::Error::other("permission denied"),
    })
}

#[delayed]
fn config(text: String) -> Result<u64, ConfigError> {
    text.parse().map_err(ConfigError)
}

#[tokio::test]
async fn the_chain_goes_through_every_source_once() {
    let err = read("/etc/x".to_string())
        .named("read-x")
        .compute()
        .await
        .unwrap_err();
    assert_eq!(
        err.report(),
        "task `read-x` failed: cannot read /etc/x: permission denied"
    );

    let err = config("x".to_string())
        .named("config")
        .compute()
        .await
        .unwrap_err();
    assert_eq!(
        err.report(),
        "task `config` failed: parsing config: invalid digit found in string",
        "a message already in its cause's text is not repeated"
    );
}

#[tokio::test]
async fn downcast_ref_finds_the_tasks_own_error_by_type() {
    let err = inc(Counter::new(), fetch(13)).compute().await.unwrap_err();
    let missing: &Missing = err.downcast_ref().expect("the task's error");
    assert_eq!(missing.0, 13);
    assert!(err.downcast_ref::<std::io::Error>().is_none());

    // Deeper in the chain: the source of the task's error.
    let err = read("/a".to_string()).compute().await.unwrap_err();
    assert_eq!(err.downcast_ref::<ReadError>().unwrap().path, "/a");
    let io = err.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(io.to_string(), "permission denied");

    // A panic has no typed cause.
    let boom = explode(1).compute().await.unwrap_err();
    assert!(boom.downcast_ref::<Missing>().is_none());
}

#[tokio::test]
async fn downcast_ref_and_report_go_through_nested_computes() {
    let inner = fetch(13).named("inner");
    let outer = Delayed::value(())
        .try_then(move |()| {
            let inner = inner.clone();
            async move { inner.compute().await }
        })
        .named("outer");
    let err = inc(Counter::new(), &outer).compute().await.unwrap_err();
    assert_eq!(err.key().to_string(), "outer");
    assert_eq!(
        err.report(),
        "task `outer` failed: task `inner` failed: no such item: 13"
    );
    assert_eq!(err.downcast_ref::<Missing>().unwrap().0, 13);
    let nested: &Error = err.downcast_ref().expect("the nested compute's error");
    assert_eq!(nested.key().to_string(), "inner");
}

#[tokio::test(start_paused = true)]
async fn the_report_of_a_retried_task_counts_its_attempts() {
    let err = fetch(13)
        .named("flaky")
        .retry(delayed::Retry::attempts(2))
        .compute()
        .await
        .unwrap_err();
    assert_eq!(
        err.report(),
        "task `flaky` failed after 2 attempts: no such item: 13"
    );
}
