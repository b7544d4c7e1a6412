//! Timeouts: an attempt is stopped at the exact virtual instant, its
//! future dropped right then; the clock starts when the body starts, after
//! its inputs and its permit; a body that ends just in time succeeds;
//! timeouts combine with retries; dependents of a timed-out node fail with
//! its key and do not run; a blocking body that overruns is reported at
//! its deadline, not when it ends.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{nap, Counter, DropFlag};
use delayed::{delayed, Delayed, Limit, Retry};
use tokio::time::{sleep, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[delayed]
async fn sleepy(ms_: u64, x: u64) -> u64 {
    sleep(ms(ms_)).await;
    x
}

#[delayed]
fn inc(runs: Counter, x: u64) -> u64 {
    runs.bump();
    x + 1
}

#[tokio::test(start_paused = true)]
async fn the_timeout_fires_at_the_exact_instant() {
    let start = Instant::now();
    let err = sleepy(10_000, 1)
        .timeout(ms(250))
        .named("sleepy")
        .compute()
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), ms(250));
    assert!(err.is_timeout());
    assert!(!err.is_failed() && !err.is_panic() && !err.is_cancelled());
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.key().to_string(), "sleepy");
    assert_eq!(err.to_string(), "task `sleepy` timed out after 250ms");
    assert!(std::error::Error::source(&err).is_none());
}

/// Records the instant its future is dropped, and whether it finished.
#[derive(Clone)]
struct Watch {
    start: Instant,
    dropped_at: Arc<Mutex<Option<Duration>>>,
    finished: Counter,
}

struct DropAt(Watch);

impl Drop for DropAt {
    fn drop(&mut self) {
        *self.0.dropped_at.lock().unwrap() = Some(self.0.start.elapsed());
    }
}

#[delayed(timeout = Duration::from_secs(1))]
async fn hangs(watch: Watch) -> u64 {
    let _guard = DropAt(watch.clone());
    sleep(secs(10)).await;
    watch.finished.bump();
    1
}

#[tokio::test(start_paused = true)]
async fn the_future_is_dropped_at_the_deadline() {
    let watch = Watch {
        start: Instant::now(),
        dropped_at: Arc::default(),
        finished: Counter::new(),
    };
    let err = hangs(watch.clone()).compute().await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(watch.start.elapsed(), secs(1));
    assert_eq!(*watch.dropped_at.lock().unwrap(), Some(secs(1)));
    sleep(secs(20)).await;
    assert_eq!(watch.finished.get(), 0, "the body never went on");
}

static SERIAL: Limit = Limit::new("serial", 1);

#[delayed(limit = SERIAL, timeout = Duration::from_secs(15))]
async fn ten_seconds(x: u64) -> u64 {
    sleep(secs(10)).await;
    x
}

#[tokio::test(start_paused = true)]
async fn the_clock_starts_after_the_permit() {
    let start = Instant::now();
    // The second waits 10 s for the permit: with the clock started at
    // once, it would time out at 15 s.
    let both = delayed::compute((ten_seconds(1), ten_seconds(2))).await;
    assert_eq!(both.unwrap(), (1, 2));
    assert_eq!(start.elapsed(), secs(20));
    assert_eq!(SERIAL.in_use(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_clock_starts_after_the_inputs() {
    let start = Instant::now();
    // Its input takes 10 s; its body 500 ms, under a timeout of 1 s.
    let node = sleepy(500, nap(10_000, 3)).timeout(secs(1));
    assert_eq!(node.compute().await.unwrap(), 3);
    assert_eq!(start.elapsed(), ms(10_500));
}

#[tokio::test(start_paused = true)]
async fn a_body_that_ends_just_before_the_deadline_succeeds() {
    let start = Instant::now();
    let node = sleepy(999, 5).timeout(secs(1));
    assert_eq!(node.compute().await.unwrap(), 5);
    assert_eq!(start.elapsed(), ms(999));

    let start = Instant::now();
    let err = sleepy(1001, 5)
        .timeout(secs(1))
        .compute()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(start.elapsed(), secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_with_retries_runs_each_attempt_on_its_own_clock() {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let log = starts.clone();
    let start = Instant::now();
    // Attempts of 300 ms, 200 ms and 100 ms under a timeout of 250 ms.
    let node = Delayed::value(())
        .then(move |()| {
            let log = log.clone();
            async move {
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(start.elapsed());
                    log.len() as u64
                };
                sleep(ms(400 - 100 * n)).await;
                n
            }
        })
        .timeout(ms(250))
        .retry(Retry::attempts(3).fixed(ms(1000)));
    assert_eq!(node.compute().await.unwrap(), 2);
    // 250 ms, timed out; 1 s of backoff; 200 ms, in time.
    assert_eq!(*starts.lock().unwrap(), [ms(0), ms(1250)]);
    assert_eq!(start.elapsed(), ms(1450));
}

#[tokio::test(start_paused = true)]
async fn dependents_of_a_timed_out_node_fail_with_its_key() {
    let runs = Counter::new();
    let slow = sleepy(60_000, 1).timeout(ms(100)).named("slow");
    let middle = inc(runs.clone(), &slow);
    let top = inc(runs.clone(), &middle);
    let start = Instant::now();
    let err = top.compute().await.unwrap_err();
    assert_eq!(start.elapsed(), ms(100));
    assert!(err.is_timeout());
    assert_eq!(err.key().to_string(), "slow");
    assert_eq!(runs.get(), 0, "the dependents never ran");
    for node in [&slow, &middle] {
        let err = node.compute().await.unwrap_err();
        assert!(err.is_timeout());
        assert_eq!(err.key().to_string(), "slow");
    }
    assert_eq!(start.elapsed(), ms(100), "the failure is stored");

    // Keep-going: the outputs that do not need it still finish.
    let slow = sleepy(60_000, 1).timeout(ms(100)).named("slow-again");
    let results =
        delayed::compute_each(vec![inc(runs.clone(), &slow), sleepy(300, 9), slow.clone()]).await;
    assert_eq!(
        results[0].as_ref().unwrap_err().key().to_string(),
        "slow-again"
    );
    assert!(results[0].as_ref().unwrap_err().is_timeout());
    assert_eq!(*results[1].as_ref().unwrap(), 9);
    assert!(results[2].as_ref().unwrap_err().is_timeout());
    assert_eq!(runs.get(), 0);
}

#[delayed(blocking, timeout = Duration::from_millis(50))]
fn overruns(flag: Counter) -> u64 {
    let _guard = DropFlag(flag);
    std::thread::sleep(Duration::from_secs(2));
    1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_body_that_overruns_is_reported_at_its_deadline() {
    let finished = Counter::new();
    let start = std::time::Instant::now();
    let err = overruns(finished.clone()).compute().await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("task `{}` timed out after 50ms", err.key())
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "reported after {elapsed:?}, not at the deadline"
    );
    assert_eq!(finished.get(), 0, "the body was still running");
}
