//! The names of the metrics, and their descriptions.

use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

pub(super) const STARTED: &str = "delayed_tasks_started_total";
pub(super) const FINISHED: &str = "delayed_tasks_finished_total";
pub(super) const FAILED: &str = "delayed_tasks_failed_total";
pub(super) const RETRIED: &str = "delayed_tasks_retried_total";
pub(super) const CANCELLED: &str = "delayed_tasks_cancelled_total";
pub(super) const CACHED: &str = "delayed_tasks_cached_total";
pub(super) const QUEUED: &str = "delayed_task_queued_seconds";
pub(super) const RUN: &str = "delayed_task_run_seconds";
pub(super) const PERMITS: &str = "delayed_limit_permits";
pub(super) const IN_USE: &str = "delayed_limit_permits_in_use";
pub(super) const WAITERS: &str = "delayed_limit_waiters";

/// Gives the installed recorder the unit and help text of every metric
/// [`Metrics`](super::Metrics) records. Call it once, after installing the
/// recorder; exporters show the texts (Prometheus as `# HELP` lines).
///
/// # Examples
///
/// ```
/// delayed::metrics::describe();
/// ```
pub fn describe() {
    let counters = [
        (STARTED, "Tasks taken up, per function."),
        (FINISHED, "Tasks that finished with a value they made."),
        (FAILED, "Tasks that failed: an error, a panic or a timeout."),
        (RETRIED, "Failed attempts that a retry policy ran again."),
        (
            CANCELLED,
            "Tasks stopped because nothing wanted them any more.",
        ),
        (CACHED, "Tasks served from a cache without running."),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
    }
    describe_histogram!(
        QUEUED,
        Unit::Seconds,
        "From ready to running: waiting for a limit's permit, a blocking slot or tokio."
    );
    describe_histogram!(
        RUN,
        Unit::Seconds,
        "How long task bodies ran, retries included."
    );
    describe_gauge!(PERMITS, Unit::Count, "A limit's permits.");
    describe_gauge!(IN_USE, Unit::Count, "A limit's permits held now.");
    describe_gauge!(
        WAITERS,
        Unit::Count,
        "Tasks waiting for a limit's permit now."
    );
}
