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
    /// The arguments sent as postcard bytes of the parameter's type rather
    /// than JSON, in order; their bytes follow the JSON (`blobs`), or, if
    /// also `uploaded`, are in the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) binary: Vec<usize>,
    /// The bytes of the `binary` arguments not uploaded, in order.
    #[serde(skip)]
    pub(crate) blobs: Vec<Vec<u8>>,
    /// The W3C trace context of the span the task was sent from, if it is
    /// part of an OpenTelemetry trace (see `trace.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) traceparent: Option<String>,
}

impl TaskMsg {
    /// The message as sent: its JSON, then, behind a zero byte (which JSON
    /// text never holds), each blob's length (4 bytes, little-endian) and
    /// bytes.
    pub(crate) fn to_wire(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut wire = serde_json::to_vec(self)?;
        if !self.blobs.is_empty() {
            wire.push(0);
            for blob in &self.blobs {
                wire.extend_from_slice(&(blob.len() as u32).to_le_bytes());
                wire.extend_from_slice(blob);
            }
        }
        Ok(wire)
    }

    /// A message as received.
    pub(crate) fn from_wire(wire: &[u8]) -> Result<TaskMsg, String> {
        let (json, mut tail) = match wire.iter().position(|&byte| byte == 0) {
            Some(at) => (&wire[..at], Some(&wire[at + 1..])),
            None => (wire, None),
        };
        let mut task: TaskMsg = serde_json::from_slice(json).map_err(|err| err.to_string())?;
        while let Some(rest) = tail.filter(|rest| !rest.is_empty()) {
            let (len, rest) = rest
                .split_first_chunk::<4>()
                .ok_or("a blob's length is cut short")?;
            let len = u32::from_le_bytes(*len) as usize;
            let (blob, rest) = rest.split_at_checked(len).ok_or("a blob is cut short")?;
            task.blobs.push(blob.to_vec());
            tail = Some(rest);
        }
        Ok(task)
    }
}

/// The first byte of a message that holds several tasks (see [`batch`]):
/// a task message's JSON never starts with it.
const BATCH: u8 = 0xB7;

/// One message holding the wire forms of several tasks: [`BATCH`], then
/// each task's length (4 bytes, little-endian) and bytes. A single task
/// goes as it is.
pub(crate) fn batch(tasks: &[Vec<u8>]) -> Vec<u8> {
    if let [one] = tasks {
        return one.clone();
    }
    let mut wire = Vec::with_capacity(1 + tasks.iter().map(|t| 4 + t.len()).sum::<usize>());
    wire.push(BATCH);
    for task in tasks {
        wire.extend_from_slice(&(task.len() as u32).to_le_bytes());
        wire.extend_from_slice(task);
    }
    wire
}

/// The tasks of a message: the parts of a [`batch`], or the message itself.
pub(crate) fn tasks_of(wire: &[u8]) -> Result<Vec<&[u8]>, String> {
    let Some((&BATCH, mut rest)) = wire.split_first() else {
        return Ok(vec![wire]);
    };
    let mut tasks = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or("a batched task's length is cut short")?;
        let len = u32::from_le_bytes(*len) as usize;
        let (task, tail) = tail
            .split_at_checked(len)
            .ok_or("a batched task is cut short")?;
        tasks.push(task);
        rest = tail;
    }
    Ok(tasks)
}

/// The header of a task a worker published again alone, out of a batch
/// that came back: how many deliveries the batch had before.
pub(crate) const EARLIER_DELIVERIES: &str = "Delayed-Earlier-Deliveries";

/// The deliveries a task had in the batch it came from (see
/// [`EARLIER_DELIVERIES`]), 0 for any other.
pub(crate) fn earlier_deliveries(headers: Option<&async_nats::HeaderMap>) -> u64 {
    headers
        .and_then(|headers| headers.get(EARLIER_DELIVERIES))
        .and_then(|value| value.as_str().parse().ok())
        .unwrap_or(0)
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
    /// The result's postcard bytes, when it rides in the report rather
    /// than in the store: after the JSON, behind a zero byte (which JSON
    /// text never holds).
    #[serde(skip)]
    pub(crate) value: Option<Vec<u8>>,
}

impl DoneMsg {
    /// The report as sent: its JSON, then the result's bytes if it has
    /// them.
    pub(crate) fn to_wire(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut wire = serde_json::to_vec(self)?;
        if let Some(value) = &self.value {
            wire.reserve(1 + value.len());
            wire.push(0);
            wire.extend_from_slice(value);
        }
        Ok(wire)
    }

    /// A report as received.
    pub(crate) fn from_wire(wire: &[u8]) -> Result<DoneMsg, serde_json::Error> {
        match wire.iter().position(|&byte| byte == 0) {
            Some(at) => {
                let mut done: DoneMsg = serde_json::from_slice(&wire[..at])?;
                done.value = Some(wire[at + 1..].to_vec());
                Ok(done)
            }
            None => serde_json::from_slice(wire),
        }
    }
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
    /// The task's message is gone unrun (a worker took the client for
    /// dead and purged its tasks): said by the client itself, which sets
    /// the task up again.
    Purged,
}

/// The header that marks a worker's message on a client's report subject
/// as about the client's liveness rather than a report: a probe (see
/// [`PROBE`]) or news that its tasks were purged (see [`PURGED`]).
pub(crate) const LIVENESS: &str = "Delayed-Liveness";

/// A worker that has not heard from a client within the timeout asks it
/// so; the server answering that nobody listens is what makes the client
/// dead, not the silence alone (a busy client's heartbeats can be late).
pub(crate) const PROBE: &str = "probe";

/// A worker took the client for dead and purged its queued tasks and its
/// results, then heard from it again: its tasks in flight must be set up
/// again.
pub(crate) const PURGED: &str = "purged";

/// A worker published a task of a batch that came back as a message of
/// its own (see the worker's `split`): the payload, a [`MovedMsg`], says
/// where the task waits now.
pub(crate) const MOVED: &str = "moved";

/// Where a task of a batch that came back waits now.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MovedMsg {
    pub(crate) run: String,
    pub(crate) key: String,
    pub(crate) attempt: u32,
    /// The stream sequences of the batch, and of the task's own message.
    pub(crate) from: u64,
    pub(crate) to: u64,
}

/// What a message on a client's report subject says about its liveness,
/// if anything.
pub(crate) fn liveness(headers: Option<&async_nats::HeaderMap>) -> Option<&str> {
    headers
        .and_then(|headers| headers.get(LIVENESS))
        .map(|value| value.as_str())
}

/// Headers that mark a liveness message of kind `kind`.
pub(crate) fn liveness_headers(kind: &str) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(LIVENESS, kind);
    headers
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
    /// The stream sequence of the message that held the task, when
    /// known: a cancel then stops that publish of the task only, not one
    /// made later (a node set up again in the same run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sequence: Option<u64>,
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

#[cfg(test)]
mod tests {
    use super::{batch, tasks_of};

    #[test]
    fn a_batch_gives_back_its_tasks_and_a_single_task_is_itself() {
        let tasks = vec![b"{\"a\":1}".to_vec(), Vec::new(), vec![0, 1, 2]];
        let wire = batch(&tasks);
        assert_eq!(
            tasks_of(&wire).unwrap(),
            vec![&tasks[0][..], &[][..], &[0, 1, 2][..]]
        );
        let one = batch(&tasks[..1]);
        assert_eq!(one, tasks[0]);
        assert_eq!(tasks_of(&one).unwrap(), vec![&tasks[0][..]]);
        let cut = &wire[..wire.len() - 1];
        assert!(tasks_of(cut).unwrap_err().contains("cut short"));
    }
}
