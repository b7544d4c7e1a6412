//! Metrics of computes on the [`metrics`](https://docs.rs/metrics) facade:
//! counts of tasks per function, how long they waited and ran, and the
//! permits of every [`Limit`](crate::Limit) they run under. Any recorder
//! installed in the process receives them (a Prometheus exporter, StatsD,
//! OpenTelemetry); with none installed, recording costs a few loads.
//!
//! [`Metrics`] is a [`Callback`]: attach it to every compute of a service
//! with [`observe`](crate::observe()), or to one compute with
//! [`Options::callback`](crate::Options::callback). Without the `metrics`
//! feature none of this is built; with it, a compute it is not attached to
//! does no more work than before.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `delayed_tasks_started_total` | counter | `function` | tasks taken up (their bodies started, or their outputs looked up in a cache) |
//! | `delayed_tasks_finished_total` | counter | `function` | tasks that finished with a value they made |
//! | `delayed_tasks_failed_total` | counter | `function` | tasks that failed (returned `Err`, panicked, timed out) |
//! | `delayed_tasks_retried_total` | counter | `function` | failed attempts a [`Retry`](crate::Retry) ran again |
//! | `delayed_tasks_cancelled_total` | counter | `function` | tasks stopped because nothing wanted them any more |
//! | `delayed_tasks_cached_total` | counter | `function` | tasks served from a cache without running |
//! | `delayed_task_queued_seconds` | histogram | `function` | from ready (inputs done) to running: waiting for a limit, a blocking slot or tokio |
//! | `delayed_task_run_seconds` | histogram | `function` | how long bodies ran, retries included |
//! | `delayed_limit_permits` | gauge | `limit` | a limit's permits |
//! | `delayed_limit_permits_in_use` | gauge | `limit` | permits held now |
//! | `delayed_limit_waiters` | gauge | `limit` | tasks waiting for a permit now |
//!
//! Times are on tokio's clock, so a paused test runtime records virtual
//! seconds. The limit gauges are set as the tasks under them start and
//! end; [`Metrics::record_limits`] sets them on demand (before a scrape,
//! say).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//!
//! use delayed::metrics::Metrics;
//! use delayed::{delayed, Limit};
//!
//! static HTTP: Limit = Limit::new("http", 2);
//!
//! #[delayed(limit = HTTP)]
//! async fn fetch(id: u64) -> u64 {
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//!     id
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Install a recorder first (metrics-exporter-prometheus, say).
//! let _metrics = delayed::observe(Metrics::new());
//! let all: Vec<_> = (1..=4).map(fetch).collect();
//! assert_eq!(delayed::compute(all).await.unwrap(), [1, 2, 3, 4]);
//! # }
//! ```

mod limits;
mod names;

use std::sync::Arc;

use ::metrics::{counter, histogram};

use self::limits::Limits;
use crate::{Callback, Error, Graph, Outcome, TaskFinished, TaskRetried, TaskStarted};

pub use self::names::describe;

/// A [`Callback`] that records what the computes it watches do, on the
/// `metrics` facade. See the [module docs](self) for the metrics.
///
/// Clones share their state (the limits they have seen), and are one
/// callback: attached twice to one compute, they count each task once.
///
/// # Examples
///
/// ```
/// use delayed::metrics::Metrics;
/// use delayed::Options;
///
/// #[delayed::delayed]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let metrics = Metrics::new();
/// let two = inc(1).compute_with(Options::new().callback(metrics.clone())).await;
/// assert_eq!(two.unwrap(), 2);
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    limits: Arc<Limits>,
}

impl Metrics {
    /// Metrics with no limit seen yet. Call [`describe`] once as well to
    /// give the recorder the metrics' units and help texts.
    ///
    /// # Examples
    ///
    /// ```
    /// let _watching = delayed::observe(delayed::metrics::Metrics::new());
    /// ```
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Sets the gauges of every limit the watched computes ran under, on
    /// the current runtime (limits are per runtime unless process-wide).
    /// Call it before an exporter renders, so that the gauges are fresh.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::metrics::Metrics;
    /// use delayed::{delayed, Limit, Options};
    ///
    /// static DB: Limit = Limit::new("db", 1);
    ///
    /// #[delayed(limit = DB)]
    /// async fn query(id: u64) -> u64 { id }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let metrics = Metrics::new();
    /// query(1).compute_with(Options::new().callback(metrics.clone())).await.unwrap();
    /// metrics.record_limits(); // delayed_limit_permits_in_use{limit="db"} 0
    /// assert_eq!(metrics.limits(), ["db"]);
    /// # }
    /// ```
    pub fn record_limits(&self) {
        self.limits.record_all();
    }

    /// The names of the limits seen so far, in the order first seen.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::metrics::Metrics::new().limits().is_empty());
    /// ```
    pub fn limits(&self) -> Vec<&'static str> {
        self.limits.names()
    }
}

impl Callback for Metrics {
    fn start(&self, graph: &Graph) {
        for node in graph.nodes() {
            if let Some(limit) = node.limit() {
                self.limits.see(limit);
            }
        }
        self.limits.record_all();
    }

    fn task_started(&self, task: &TaskStarted) {
        let function = task.name();
        counter!(names::STARTED, "function" => function).increment(1);
        histogram!(names::QUEUED, "function" => function).record(task.queued().as_secs_f64());
        self.limits.record_all();
    }

    fn task_retried(&self, task: &TaskRetried) {
        counter!(names::RETRIED, "function" => task.name()).increment(1);
    }

    fn task_finished(&self, task: &TaskFinished) {
        let function = task.name();
        let ended = match task.outcome() {
            Outcome::Done => names::FINISHED,
            Outcome::Failed(_) => names::FAILED,
            Outcome::Cancelled => names::CANCELLED,
            Outcome::Cached => names::CACHED,
        };
        counter!(ended, "function" => function).increment(1);
        if !matches!(task.outcome(), Outcome::Cached) {
            histogram!(names::RUN, "function" => function).record(task.elapsed().as_secs_f64());
        }
        self.limits.record_all();
    }

    fn finish(&self, _result: Result<(), &Error>) {
        self.limits.record_all();
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.limits) as usize
    }
}
