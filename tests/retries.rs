//! Retries: attempts start at exact instants under fixed and exponential
//! backoff, capped by `max_delay`; the error after the last attempt says
//! how many ran; a later success returns the value and dependents run
//! once; panics are retried only when asked; `when` picks the errors;
//! seeded jitter repeats exactly and stays in bounds; timeouts are
//! retried; `#[delayed]` functions and `then` can run again, `FnOnce`
//! combinators say clearly that they cannot; a node backing off holds no
//! permit of its limit.

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Counter;
use delayed::{delayed, Delayed, Limit, Retry};
use tokio::time::{sleep, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The instants at which attempts started, relative to a start instant,
/// and what each attempt saw.
#[derive(Clone)]
struct Attempts {
    start: Instant,
    at: Arc<Mutex<Vec<Duration>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Attempts {
    fn new() -> Attempts {
        Attempts {
            start: Instant::now(),
            at: Arc::default(),
            seen: Arc::default(),
        }
    }

    /// Records an attempt; returns its number, from 1.
    fn record(&self) -> usize {
        let mut at = self.at.lock().unwrap();
        at.push(self.start.elapsed());
        at.len()
    }

    fn saw(&self, what: impl Into<String>) {
        self.seen.lock().unwrap().push(what.into());
    }

    fn at(&self) -> Vec<Duration> {
        self.at.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.at.lock().unwrap().len()
    }
}

/// Fails with "connection reset" until attempt `succeed_on` (0: never).
#[delayed]
async fn flaky(attempts: Attempts, succeed_on: usize) -> Result<u64, io::Error> {
    let n = attempts.record();
    sleep(ms(1)).await;
    if succeed_on != 0 && n >= succeed_on {
        Ok(n as u64)
    } else {
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "connection reset",
        ))
    }
}

#[delayed]
fn inc(runs: Counter, x: u64) -> u64 {
    runs.bump();
    x + 1
}

fn durations(list: &[u64]) -> Vec<Duration> {
    list.iter().copied().map(ms).collect()
}

#[test]
fn delay_follows_the_policy() {
    let key = Delayed::value(0_u8).key();
    let fixed = Retry::attempts(4).fixed(ms(250));
    assert_eq!(fixed.max_attempts(), 4);
    assert_eq!(
        (1..=3).map(|n| fixed.delay(&key, n)).collect::<Vec<_>>(),
        durations(&[250, 250, 250])
    );
    let exp = Retry::attempts(6).exponential(ms(10));
    assert_eq!(
        (1..=5).map(|n| exp.delay(&key, n)).collect::<Vec<_>>(),
        durations(&[10, 20, 40, 80, 160])
    );
    let capped = Retry::attempts(6).exponential(ms(10)).max_delay(ms(25));
    assert_eq!(
        (1..=5).map(|n| capped.delay(&key, n)).collect::<Vec<_>>(),
        durations(&[10, 20, 25, 25, 25])
    );
    // Huge attempt numbers saturate instead of overflowing.
    assert_eq!(capped.delay(&key, u32::MAX), ms(25));
    assert_eq!(Retry::attempts(3).delay(&key, 1), Duration::ZERO);
    assert_eq!(Retry::attempts(0).max_attempts(), 1);
}

#[test]
fn seeded_jitter_is_deterministic_and_bounded() {
    let key = Delayed::value(0_u8).key();
    let other = Delayed::value(0_u8).key();
    let base = Duration::from_secs(10);
    let policy = Retry::attempts(10).fixed(base).jitter(0.5).seed(42);
    let again = Retry::attempts(10).fixed(base).jitter(0.5).seed(42);
    let waits: Vec<_> = (1..=9).map(|n| policy.delay(&key, n)).collect();
    assert_eq!(
        waits,
        (1..=9).map(|n| again.delay(&key, n)).collect::<Vec<_>>()
    );
    for wait in &waits {
        assert!(*wait >= base / 2 && *wait <= base, "{wait:?} out of bounds");
    }
    assert!(
        waits.iter().any(|w| *w != waits[0]),
        "the draws vary: {waits:?}"
    );
    let others: Vec<_> = (1..=9).map(|n| policy.delay(&other, n)).collect();
    assert_ne!(waits, others, "the draws depend on the key");
    // Fractions out of range are clamped.
    let full = Retry::attempts(3).fixed(base).jitter(7.0).seed(1);
    assert!(full.delay(&key, 1) <= base);
    let none = Retry::attempts(3).fixed(base).jitter(-1.0).seed(1);
    assert_eq!(none.delay(&key, 1), base);
}

#[tokio::test(start_paused = true)]
async fn fixed_backoff_starts_attempts_at_exact_instants() {
    let attempts = Attempts::new();
    let node = flaky(attempts.clone(), 0)
        .retry(Retry::attempts(4).fixed(ms(100)))
        .named("fixed");
    let err = node.compute().await.unwrap_err();
    // Each attempt runs 1 ms, then waits 100 ms.
    assert_eq!(attempts.at(), durations(&[0, 101, 202, 303]));
    assert_eq!(attempts.start.elapsed(), ms(304));
    assert_eq!(err.attempts(), 4);
    assert!(err.is_failed());
    assert_eq!(err.key().to_string(), "fixed");
    assert_eq!(err.to_string(), "task `fixed` failed after 4 attempts");
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "connection reset");

    // The failure is stored: computing again does not run it again.
    let again = node.compute().await.unwrap_err();
    assert_eq!(again.attempts(), 4);
    assert_eq!(attempts.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_doubles_and_max_delay_caps_it() {
    let attempts = Attempts::new();
    let err = flaky(attempts.clone(), 0)
        .retry(Retry::attempts(5).exponential(ms(10)))
        .compute()
        .await
        .unwrap_err();
    // Waits of 10, 20, 40 and 80 ms after attempts of 1 ms.
    assert_eq!(attempts.at(), durations(&[0, 11, 32, 73, 154]));
    assert_eq!(err.attempts(), 5);

    let attempts = Attempts::new();
    let err = flaky(attempts.clone(), 0)
        .retry(Retry::attempts(6).exponential(ms(10)).max_delay(ms(25)))
        .compute()
        .await
        .unwrap_err();
    // Waits of 10, 20, 25, 25, 25 ms.
    assert_eq!(attempts.at(), durations(&[0, 11, 32, 58, 84, 110]));
    assert_eq!(attempts.start.elapsed(), ms(111));
    assert_eq!(err.attempts(), 6);
}

#[delayed(retry = Retry::attempts(5).exponential(Duration::from_millis(100)))]
async fn flaky_by_attribute(attempts: Attempts) -> Result<u64, io::Error> {
    let n = attempts.record();
    if n < 3 {
        Err(io::Error::other("not yet"))
    } else {
        Ok(n as u64)
    }
}

#[tokio::test(start_paused = true)]
async fn a_later_success_returns_the_value_and_dependents_run_once() {
    let runs = Counter::new();
    let attempts = Attempts::new();
    let node = flaky(attempts.clone(), 3).retry(Retry::attempts(5).fixed(ms(50)));
    let top = inc(runs.clone(), inc(runs.clone(), &node));
    assert_eq!(top.compute().await.unwrap(), 5);
    assert_eq!(attempts.at(), durations(&[0, 51, 102]));
    assert_eq!(attempts.start.elapsed(), ms(103));
    assert_eq!(runs.get(), 2, "each dependent ran once");
    assert_eq!(node.compute().await.unwrap(), 3);
    assert_eq!(attempts.count(), 3);

    // The same through the attribute.
    let attempts = Attempts::new();
    assert_eq!(
        flaky_by_attribute(attempts.clone())
            .compute()
            .await
            .unwrap(),
        3
    );
    assert_eq!(attempts.at(), durations(&[0, 100, 300]));
}

#[delayed]
async fn boom(attempts: Attempts, succeed_on: usize) -> u64 {
    let n = attempts.record();
    if n < succeed_on || succeed_on == 0 {
        panic!("boom {n}");
    }
    n as u64
}

#[tokio::test(start_paused = true)]
async fn panics_are_retried_only_when_asked() {
    let attempts = Attempts::new();
    let err = boom(attempts.clone(), 0)
        .retry(Retry::attempts(3).fixed(ms(10)))
        .named("boom")
        .compute()
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.attempts(), 1);
    assert_eq!(attempts.count(), 1);
    assert_eq!(err.to_string(), "task `boom` panicked: boom 1");

    let attempts = Attempts::new();
    let err = boom(attempts.clone(), 0)
        .retry(Retry::attempts(3).fixed(ms(10)).panics(true))
        .named("boom-again")
        .compute()
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.attempts(), 3);
    assert_eq!(attempts.at(), durations(&[0, 10, 20]));
    assert_eq!(err.panic_message(), Some("boom 3"));
    assert_eq!(
        err.to_string(),
        "task `boom-again` panicked: boom 3 (after 3 attempts)"
    );

    let attempts = Attempts::new();
    let value = boom(attempts.clone(), 2)
        .retry(Retry::attempts(3).panics(true))
        .compute()
        .await
        .unwrap();
    assert_eq!(value, 2);
}

/// Fails with the error kinds given, one per attempt, then succeeds.
#[delayed]
async fn fails_with(attempts: Attempts, kinds: Vec<io::ErrorKind>) -> Result<u64, io::Error> {
    let n = attempts.record();
    match kinds.get(n - 1) {
        Some(kind) => Err(io::Error::new(*kind, format!("attempt {n}"))),
        None => Ok(n as u64),
    }
}

fn transient() -> Retry {
    Retry::attempts(5).when(|err| {
        std::error::Error::source(err)
            .and_then(|e| e.downcast_ref::<io::Error>())
            .is_some_and(|e| e.kind() == io::ErrorKind::ConnectionReset)
    })
}

#[tokio::test(start_paused = true)]
async fn when_picks_the_errors_to_retry() {
    use io::ErrorKind::{ConnectionReset, NotFound};

    // Reset, reset, then success.
    let attempts = Attempts::new();
    let node = fails_with(attempts.clone(), vec![ConnectionReset, ConnectionReset]);
    assert_eq!(node.retry(transient()).compute().await.unwrap(), 3);

    // Reset, then not found: the filter stops it at the second attempt.
    let attempts = Attempts::new();
    let err = fails_with(attempts.clone(), vec![ConnectionReset, NotFound, NotFound])
        .retry(transient())
        .compute()
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 2);
    assert_eq!(attempts.count(), 2);
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "attempt 2");

    // Not found at once: no retry, one attempt.
    let attempts = Attempts::new();
    let err = fails_with(attempts.clone(), vec![NotFound])
        .retry(transient())
        .compute()
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert_eq!(attempts.count(), 1);

    // A panic still needs `panics(true)`, whatever the filter says.
    let attempts = Attempts::new();
    let err = boom(attempts.clone(), 0)
        .retry(Retry::attempts(3).when(|_| true))
        .compute()
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(attempts.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_repeats_exactly_and_stays_in_bounds() {
    let policy = || {
        Retry::attempts(5)
            .fixed(Duration::from_secs(10))
            .jitter(0.5)
            .seed(7)
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let attempts = Attempts::new();
        let node = flaky(attempts.clone(), 0).named("jittery").retry(policy());
        let key = node.key();
        assert_eq!(node.compute().await.unwrap_err().attempts(), 5);
        let at = attempts.at();
        for n in 1..5 {
            // The wait after attempt n: from the end of the attempt (1 ms)
            // to the start of the next.
            let waited = at[n] - at[n - 1] - ms(1);
            let planned = policy().delay(&key, n as u32);
            assert!(
                planned >= Duration::from_secs(5) && planned <= Duration::from_secs(10),
                "{planned:?}"
            );
            // The timer has a resolution of 1 ms: the wait is the planned
            // one, rounded up to it.
            assert!(
                waited >= planned && waited < planned + ms(1),
                "waited {waited:?} for a planned {planned:?}"
            );
        }
        runs.push(at);
    }
    assert_eq!(runs[0], runs[1], "the same seed, the same instants");
    let gaps: Vec<_> = runs[0].windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().any(|g| *g != gaps[0]),
        "jitter varied: {gaps:?}"
    );
}

#[delayed]
async fn slow_then_fast(attempts: Attempts, fast_on: usize) -> u64 {
    let n = attempts.record();
    if n < fast_on || fast_on == 0 {
        sleep(Duration::from_secs(60)).await;
    } else {
        sleep(ms(10)).await;
    }
    n as u64
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_retried() {
    let attempts = Attempts::new();
    let value = slow_then_fast(attempts.clone(), 3)
        .timeout(ms(100))
        .retry(Retry::attempts(3).fixed(ms(50)))
        .compute()
        .await
        .unwrap();
    assert_eq!(value, 3);
    assert_eq!(attempts.at(), durations(&[0, 150, 300]));
    assert_eq!(attempts.start.elapsed(), ms(310));

    let attempts = Attempts::new();
    let err = slow_then_fast(attempts.clone(), 0)
        .timeout(ms(100))
        .retry(Retry::attempts(3).fixed(ms(50)))
        .named("hangs")
        .compute()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.attempts(), 3);
    assert_eq!(attempts.at(), durations(&[0, 150, 300]));
    assert_eq!(attempts.start.elapsed(), ms(400));
    assert_eq!(
        err.to_string(),
        "task `hangs` timed out after 100ms (after 3 attempts)"
    );
}

/// A sync function with owned `String` arguments: each attempt gets them
/// whole.
#[delayed(retry = Retry::attempts(3))]
fn parse_len(text: String, suffix: String, attempts: Attempts) -> Result<usize, io::Error> {
    attempts.record();
    attempts.saw(format!("{text}{suffix}"));
    if attempts.count() < 3 {
        Err(io::Error::other("try again"))
    } else {
        Ok(text.len() + suffix.len())
    }
}

#[tokio::test(start_paused = true)]
async fn a_sync_function_with_owned_arguments_can_run_again() {
    let attempts = Attempts::new();
    // The text comes from a node this call holds the last handle to.
    let text = Delayed::value("hello".to_string()).map(|s| s + " world");
    let len = parse_len(text, "!".to_string(), attempts.clone());
    assert_eq!(len.compute().await.unwrap(), 12);
    assert_eq!(
        *attempts.seen.lock().unwrap(),
        ["hello world!", "hello world!", "hello world!"]
    );
}

#[tokio::test(start_paused = true)]
async fn then_and_try_then_can_run_again() {
    let attempts = Attempts::new();
    let a = attempts.clone();
    let node = Delayed::value(40_u64)
        .try_then(move |x| {
            let a = a.clone();
            async move {
                let n = a.record();
                sleep(ms(5)).await;
                if n < 2 {
                    Err(io::Error::other("later"))
                } else {
                    Ok(x + n as u64)
                }
            }
        })
        .retry(Retry::attempts(3).fixed(ms(20)));
    assert_eq!(node.compute().await.unwrap(), 42);
    assert_eq!(attempts.at(), durations(&[0, 25]));

    let attempts = Attempts::new();
    let a = attempts.clone();
    let node = Delayed::value(1_u64)
        .then(move |x| {
            let a = a.clone();
            async move {
                if a.record() < 3 {
                    panic!("not yet");
                }
                x
            }
        })
        .retry(Retry::attempts(3).panics(true));
    assert_eq!(node.compute().await.unwrap(), 1);
    assert_eq!(attempts.count(), 3);
}

const SPENT: &str = "closure is FnOnce and ran already: it cannot run again";

#[tokio::test(start_paused = true)]
async fn fn_once_combinators_say_why_they_cannot_run_again() {
    let runs = Counter::new();
    let r = runs.clone();
    let err = Delayed::value(1_u64)
        .try_map(move |_| {
            r.bump();
            Err::<u64, _>(io::Error::other("first"))
        })
        .retry(Retry::attempts(3))
        .compute()
        .await
        .unwrap_err();
    assert_eq!(runs.get(), 1, "the closure itself ran once");
    assert!(err.is_panic(), "{err}");
    assert_eq!(err.attempts(), 2);
    let message = err.panic_message().unwrap();
    assert!(
        message.contains(&format!("a `try_map` {SPENT}")),
        "{message}"
    );

    let err = Delayed::value(1_u64)
        .map(|_| -> u64 { panic!("first") })
        .retry(Retry::attempts(3).panics(true))
        .compute()
        .await
        .unwrap_err();
    assert!(err.attempts() >= 2);
    let message = err.panic_message().unwrap();
    assert!(message.contains(&format!("a `map` {SPENT}")), "{message}");

    let err = Delayed::lazy(|| -> u64 { panic!("first") })
        .retry(Retry::attempts(2).panics(true))
        .compute()
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 2);
    let message = err.panic_message().unwrap();
    assert!(message.contains(&format!("a `lazy` {SPENT}")), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_blocking_says_why_it_cannot_run_again() {
    let err = Delayed::value(1_u64)
        .map_blocking(|_| -> u64 { panic!("first") })
        .retry(Retry::attempts(2).panics(true))
        .compute()
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 2);
    let message = err.panic_message().unwrap();
    assert!(
        message.contains(&format!("a `map_blocking` {SPENT}")),
        "{message}"
    );
}

static BACKOFF: Limit = Limit::new("backoff", 1);

#[tokio::test(start_paused = true)]
async fn a_node_backing_off_holds_no_permit() {
    let attempts = Attempts::new();
    // Fails its first attempt (1 ms), waits 100 ms, then succeeds.
    let retried = flaky(attempts.clone(), 2)
        .limit(&BACKOFF)
        .retry(Retry::attempts(2).fixed(ms(100)));
    // Ready at 5 ms, after the retried node took the permit; runs 20 ms.
    let other_done = Arc::new(Mutex::new(None));
    let done = other_done.clone();
    let start = attempts.start;
    let other = common::nap(5, 7)
        .then(|x| async move {
            sleep(ms(20)).await;
            x
        })
        .limit(&BACKOFF)
        .map(move |x| {
            *done.lock().unwrap() = Some(start.elapsed());
            x
        });
    let run = tokio::spawn(delayed::compute((retried, other)));
    sleep(ms(50)).await;
    assert_eq!(BACKOFF.in_use(), 0, "nobody holds it during the backoff");
    assert_eq!(BACKOFF.waiting(), 0);
    assert_eq!(run.await.unwrap().unwrap(), (2, 7));
    // The other node got the permit when the first attempt failed.
    assert_eq!(*other_done.lock().unwrap(), Some(ms(25)));
    assert_eq!(attempts.at(), durations(&[0, 101]));
    assert_eq!(start.elapsed(), ms(102));
    assert_eq!(BACKOFF.in_use(), 0);
}
