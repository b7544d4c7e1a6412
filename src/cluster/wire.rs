//! What travels over NATS: task messages to workers, done messages back,
//! cancellations, and where results are kept.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The work-queue stream of tasks.
pub(crate) const STREAM: &str = "DELAYED_TASKS";
/// The subject tasks are published on.
pub(crate) const TASKS: &str = "delayed.tasks";
/// The durable consumer every worker pulls from.
pub(crate) const CONSUMER: &str = "delayed-workers";
/// The key-value bucket of results.
pub(crate) const RESULTS: &str = "delayed_results";
/// The object store of results too big for the key-value bucket.
pub(crate) const OBJECTS: &str = "delayed_objects";
/// Where clients ask which workers are alive; each answers.
pub(crate) const WORKERS: &str = "delayed.workers";
/// Where clients ask workers to stop a task.
pub(crate) const CANCEL: &str = "delayed.cancel";
/// The advisory JetStream sends when a task ran out of deliveries.
pub(crate) const MAX_DELIVERIES: &str =
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.DELAYED_TASKS.delayed-workers";
/// Results bigger than this go to the object store.
pub(crate) const INLINE_RESULT: usize = 256 * 1024;

/// One task for a worker: a call of a registered function whose arguments
/// are literals or references to results of the same run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskMsg {
    pub(crate) run: String,
    pub(crate) key: String,
    pub(crate) attempt: u32,
    #[serde(rename = "fn")]
    pub(crate) function: String,
    /// Each argument in the keyed graph's JSON form.
    pub(crate) args: Vec<Value>,
    /// The arguments too big for the message: each of these is a reference
    /// to the argument's JSON form, uploaded to the result store, whose
    /// own references the worker resolves in turn (a fan-in over many
    /// remote results is a long list of references).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) uploaded: Vec<usize>,
    /// Where the worker reports the outcome.
    pub(crate) reply: String,
}

/// A worker's report of one task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DoneMsg {
    pub(crate) run: String,
    pub(crate) key: String,
    pub(crate) attempt: u32,
    pub(crate) worker: String,
    /// How many times JetStream delivered the task (2 or more: redelivered).
    pub(crate) delivered: u64,
    pub(crate) outcome: WorkerOutcome,
}

/// How a remote task ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum WorkerOutcome {
    /// The result is in the store under the task's result key.
    Done,
    /// The function returned `Err`.
    Failed { message: String },
    /// The function panicked.
    Panic { message: String },
    /// The task could not run: unknown function, bad arguments, a missing
    /// input, an oversized or malformed message.
    Invalid { message: String },
    /// Every delivery's worker died before finishing.
    Killed { deliveries: u64 },
}

/// A request to stop a task of a run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CancelMsg {
    pub(crate) run: String,
    pub(crate) key: String,
}

/// How a result is kept: inline in the key-value bucket, or in the object
/// store under the same name.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub(crate) enum Stored {
    Inline { value: Value },
    Object,
}

/// The name of the result of `key` in `run`, valid as a NATS key: the run,
/// then the key in hex.
pub(crate) fn result_key(run: &str, key: &str) -> String {
    let mut name = String::with_capacity(run.len() + 1 + key.len() * 2);
    name.push_str(run);
    name.push('.');
    for byte in key.bytes() {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}
