//! What travels over NATS: task messages to workers, done messages back,
//! cancellations, and where results are kept.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One task for a worker: a call of a registered function whose arguments
/// are literals or references to results of the same run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskMsg {
    /// The client that sent it: a worker starts no task of a client it
    /// has not heard from lately.
    #[serde(default)]
    pub(crate) client: String,
    /// The run, `{client}.{n}`: a worker starts no task of a run that
    /// ended.
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
    /// Whether remote tasks will read the result from the store: else a
    /// small result rides in the report and is never stored.
    #[serde(default = "stored_by_default")]
    pub(crate) keep: bool,
}

fn stored_by_default() -> bool {
    true
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
    /// The result, when it rides in the report rather than in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<Value>,
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
    /// No live worker has the task's function in its pool: said by the
    /// client itself, after waiting.
    NoWorker { message: String },
}

/// What a client says on its liveness subject: nothing (a heartbeat), or
/// that some of its runs ended.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct AliveMsg {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ended: Vec<String>,
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
