//! Limits under cargo's parallel test runner: thirty paused-clock tests
//! use the same `#[delayed(limit = API)]` functions and one `static`
//! limit, and each asserts its exact virtual elapsed time and that it
//! never saw more bodies at once than the limit allows.
//!
//! A limit's permits are kept per runtime, and every `#[tokio::test]` has
//! a runtime of its own, so one test's tasks never hold the permits
//! another test's paused clock waits for. With the permits shared by the
//! whole process, a few of these tests fail in most runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use delayed::{delayed, Delayed, Limit};
use tokio::time::{sleep, Instant};

static API: Limit = Limit::new("api", 2);

/// Counts the bodies running at once in one test.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

struct Inside(Gauge);

impl Gauge {
    fn enter(&self) -> Inside {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Inside(self.clone())
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A call to the API: 100 virtual ms, two at a time.
#[delayed(limit = API)]
async fn fetch(gauge: Gauge, id: u64) -> u64 {
    let _inside = gauge.enter();
    sleep(Duration::from_millis(100)).await;
    // A few real yields, so that tests running at the same time interleave.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    id
}

/// A cheap step under the same limit, after the fetches.
#[delayed(limit = API)]
fn total(parts: Vec<u64>) -> u64 {
    parts.iter().sum()
}

/// Computes `n` fetches and their total; checks the value, the exact
/// virtual time (one round of 100 ms per two fetches) and the cap.
async fn run(n: u64) {
    let gauge = Gauge::default();
    let fetches: Vec<Delayed<u64>> = (0..n).map(|i| fetch(gauge.clone(), i)).collect();
    let sum = total(fetches);
    let start = Instant::now();
    assert_eq!(sum.compute().await.unwrap(), n * (n - 1) / 2);
    let rounds = n.div_ceil(2);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100 * rounds),
        "{n} fetches, two at a time"
    );
    assert_eq!(gauge.peak(), 2.min(n as usize), "at most two at once");
    assert_eq!(API.in_use(), 0, "this runtime holds no permit");
    assert_eq!(API.waiting(), 0, "and has nothing waiting");
}

macro_rules! parallel_tests {
    ($($name:ident: $n:expr,)*) => {$(
        #[tokio::test(start_paused = true)]
        async fn $name() {
            run($n).await;
        }
    )*};
}

parallel_tests! {
    t01: 6, t02: 5, t03: 4, t04: 7, t05: 8, t06: 6, t07: 3, t08: 9, t09: 6, t10: 10,
    t11: 6, t12: 5, t13: 4, t14: 7, t15: 8, t16: 6, t17: 3, t18: 9, t19: 6, t20: 10,
    t21: 6, t22: 5, t23: 4, t24: 7, t25: 8, t26: 6, t27: 3, t28: 9, t29: 6, t30: 10,
}
