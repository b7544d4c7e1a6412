//! What a task's events tell beyond its start and end: how long it waited
//! to start (`TaskStarted::queued`) and each failed attempt a retry runs
//! again (`Callback::task_retried`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use delayed::{delayed, Callback, Limit, Options, Retry, TaskRetried, TaskStarted};

/// The wait of every task, by key.
#[derive(Default)]
struct Waits(Mutex<Vec<(String, Duration)>>);

impl Waits {
    fn of(&self, key: &str) -> Duration {
        let all = self.0.lock().unwrap();
        all.iter()
            .find(|(k, _)| k == key)
            .map(|(_, wait)| *wait)
            .unwrap_or_else(|| panic!("no start of {key} in {all:?}"))
    }
}

impl Callback for Waits {
    fn task_started(&self, task: &TaskStarted) {
        self.0
            .lock()
            .unwrap()
            .push((task.key().to_string(), task.queued()));
    }
}

static ONE: Limit = Limit::new("one", 1);

#[delayed(limit = ONE)]
async fn held(secs: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(secs)).await;
    secs
}

#[delayed]
async fn nap(secs: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(secs)).await;
    secs
}

#[delayed]
fn double(x: u64) -> u64 {
    x * 2
}

#[tokio::test(start_paused = true)]
async fn the_wait_for_a_limit_counts_as_queued() {
    let waits = Arc::new(Waits::default());
    let all = vec![
        held(1).named("a").priority(3),
        held(2).named("b").priority(2),
        held(3).named("c").priority(1),
    ];
    let out = delayed::compute_with(all, Options::new().callback(waits.clone()))
        .await
        .unwrap();
    assert_eq!(out, [1, 2, 3]);
    // One permit, taken by priority: a at once, b after a's second, c
    // after b's two more.
    assert_eq!(waits.of("a"), Duration::ZERO);
    assert_eq!(waits.of("b"), Duration::from_secs(1));
    assert_eq!(waits.of("c"), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_starts_when_ready_waited_nothing() {
    let waits = Arc::new(Waits::default());
    let out = double(nap(2).named("nap"))
        .named("double")
        .compute_with(Options::new().callback(waits.clone()))
        .await
        .unwrap();
    assert_eq!(out, 4);
    // Ready after the nap's two seconds, and run at once: the wait is
    // from being ready, not from the compute's start.
    assert_eq!(waits.of("nap"), Duration::ZERO);
    assert_eq!(waits.of("double"), Duration::ZERO);
}

/// Every retry, as (key, attempt, error, delay).
#[derive(Default)]
struct Retries(Mutex<Vec<(String, u32, String, Duration)>>);

impl Callback for Retries {
    fn task_retried(&self, task: &TaskRetried) {
        assert_eq!(task.name(), "flaky");
        self.0.lock().unwrap().push((
            task.key().to_string(),
            task.attempt(),
            task.error().report(),
            task.delay(),
        ));
    }
}

#[delayed(retry = Retry::attempts(4).fixed(Duration::from_millis(100)))]
fn flaky(calls: &Arc<AtomicU32>, fail_times: u32) -> Result<u32, String> {
    let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if call <= fail_times {
        Err(format!("down on call {call}"))
    } else {
        Ok(call)
    }
}

#[tokio::test(start_paused = true)]
async fn each_failed_attempt_that_runs_again_is_heard() {
    let retries = Arc::new(Retries::default());
    let out = flaky(Arc::new(AtomicU32::new(0)), 2)
        .named("flaky-1")
        .compute_with(Options::new().callback(retries.clone()))
        .await
        .unwrap();
    assert_eq!(out, 3);
    let heard = retries.0.lock().unwrap().clone();
    assert_eq!(heard.len(), 2, "{heard:?}");
    for (i, (key, attempt, error, delay)) in heard.iter().enumerate() {
        assert_eq!(key, "flaky-1");
        assert_eq!(*attempt, i as u32 + 1);
        assert!(
            error.contains(&format!("down on call {}", i + 1)),
            "{error}"
        );
        assert_eq!(*delay, Duration::from_millis(100));
    }
}

/// A callback that panics when told of a retry.
struct PanicsOnRetry;

impl Callback for PanicsOnRetry {
    fn task_retried(&self, _task: &TaskRetried) {
        panic!("the retry hook broke");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_task_retried_fails_the_task_and_stops_its_retries() {
    let calls = Arc::new(AtomicU32::new(0));
    let err = flaky(Arc::clone(&calls), 10)
        .named("flaky-2")
        .compute_with(Options::new().callback(PanicsOnRetry))
        .await
        .unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert_eq!(err.key().to_string(), "flaky-2");
    // The first attempt failed; the panic stopped the others.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
