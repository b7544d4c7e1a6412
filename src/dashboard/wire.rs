//! What the dashboard sends the page: the snapshot at `/snapshot` and the
//! events on `/events`, as JSON.
//!
//! Times are milliseconds since the dashboard started, on tokio's clock.
//! Each change has a sequence number `seq`; a snapshot carries the number
//! of the last change it holds, so the page applies only the events after.

use std::sync::Arc;

use serde::Serialize;

use super::graph::GraphView;
use super::state::{Counts, TaskRun};
use crate::{Outcome, TaskState};

/// What `/snapshot` returns.
#[derive(Serialize)]
pub(super) struct Snapshot<'a> {
    pub(super) seq: u64,
    pub(super) now: f64,
    /// How many finished runs are kept.
    pub(super) capacity: usize,
    /// Finished runs that no longer fit.
    pub(super) evicted: u64,
    pub(super) computes: Computes,
    pub(super) threads: Vec<ThreadView>,
    /// The finished runs kept, then the runs under way.
    pub(super) tasks: Vec<TaskView<'a>>,
    pub(super) functions: Vec<FunctionView>,
    pub(super) graph: Option<GraphView<'a>>,
    pub(super) errors: Vec<ErrorView>,
    /// `null` until a cluster is attached and answered.
    pub(super) workers: Option<Vec<WorkerView>>,
}

/// One change, sent on `/events`. `graph` lists the nodes of the latest
/// graph whose state changed: (index, state).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum EventJson<'a> {
    /// A compute started, with this graph.
    Graph {
        seq: u64,
        computes: Computes,
        graph: Option<GraphView<'a>>,
        functions: Vec<FunctionView>,
    },
    /// A task's body started.
    Started {
        seq: u64,
        task: TaskView<'a>,
        function: FunctionView,
        /// The task's thread row, when it is new.
        thread: Option<ThreadView>,
        graph: Vec<(u32, StateName)>,
    },
    /// A task's body ended.
    Finished {
        seq: u64,
        task: TaskView<'a>,
        function: FunctionView,
        error: Option<ErrorView>,
        graph: Vec<(u32, StateName)>,
    },
    /// A compute ended.
    Finish {
        seq: u64,
        computes: Computes,
        functions: Vec<FunctionView>,
    },
    /// The cluster's workers changed.
    #[cfg(feature = "nats")]
    Workers { seq: u64, workers: &'a [WorkerView] },
    /// Finished runs that a worker ran: (run id, worker).
    #[cfg(feature = "nats")]
    Assign {
        seq: u64,
        assigned: Vec<(u64, String)>,
    },
}

/// How many computes started, run and ended.
#[derive(Clone, Copy, Default, Serialize)]
pub(super) struct Computes {
    pub(super) running: u64,
    pub(super) started: u64,
    pub(super) done: u64,
    pub(super) failed: u64,
    pub(super) cancelled: u64,
}

/// A row of the task stream for a thread of this process.
#[derive(Serialize)]
pub(super) struct ThreadView {
    pub(super) row: usize,
    #[serde(serialize_with = "text")]
    pub(super) name: Arc<str>,
}

/// A task run. `end` is `null` and `outcome` `running` while it runs.
#[derive(Serialize)]
pub(super) struct TaskView<'a> {
    id: u64,
    key: &'a str,
    name: &'static str,
    thread: usize,
    worker: Option<&'a str>,
    start: f64,
    end: Option<f64>,
    outcome: StateName,
}

impl TaskView<'_> {
    pub(super) fn of(run: &TaskRun) -> TaskView<'_> {
        TaskView {
            id: run.id,
            key: &run.key,
            name: run.name,
            thread: run.thread,
            worker: run.worker.as_deref(),
            start: run.start,
            end: run.end,
            outcome: StateName(run.outcome),
        }
    }
}

/// The tasks of one function, by state.
#[derive(Serialize)]
pub(super) struct FunctionView {
    name: &'static str,
    total: u64,
    waiting: u64,
    running: u64,
    done: u64,
    failed: u64,
    cancelled: u64,
    cached: u64,
    not_run: u64,
}

impl FunctionView {
    pub(super) fn of(name: &'static str, counts: &Counts) -> FunctionView {
        FunctionView {
            name,
            total: counts.total,
            waiting: counts.waiting(),
            running: counts.running,
            done: counts.done,
            failed: counts.failed,
            cancelled: counts.cancelled,
            cached: counts.cached,
            not_run: counts.not_run,
        }
    }
}

/// A task that failed: its key, function and whole error chain.
#[derive(Clone, Serialize)]
pub(super) struct ErrorView {
    #[serde(serialize_with = "text")]
    pub(super) key: Arc<str>,
    pub(super) name: &'static str,
    pub(super) message: String,
    pub(super) at: f64,
}

/// A worker of the cluster, as it last answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct WorkerView {
    pub(super) name: String,
    pub(super) concurrency: usize,
    pub(super) running: usize,
    pub(super) functions: Vec<String>,
    pub(super) pools: Vec<String>,
}

/// Writes shared text as a string (serde writes `Arc`s only with its `rc`
/// feature).
fn text<S: serde::Serializer>(text: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
}

/// A state, written as its name (`waiting`, `running`, `done`, ...), as the
/// page colours it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct StateName(pub(super) TaskState);

impl Serialize for StateName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// The state a task's outcome leaves it in.
pub(super) fn outcome_state(outcome: &Outcome) -> TaskState {
    match outcome {
        Outcome::Done => TaskState::Done,
        Outcome::Failed(_) => TaskState::Failed,
        Outcome::Cancelled => TaskState::Cancelled,
        Outcome::Cached => TaskState::Cached,
    }
}
