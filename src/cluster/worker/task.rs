//! One task on a worker: its message read, its inputs fetched, its
//! function run, its result reported (and stored if it must be), then
//! acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use futures::StreamExt;
use tokio::task::AbortHandle;

use super::Shared;
use crate::cluster::store;
use crate::cluster::wire::{result_key, DoneMsg, TaskMsg, WorkerOutcome};
use crate::keyed::Arg;

/// Runs one delivered task, reports it, then acknowledges it.
pub(super) async fn handle(shared: &Arc<Shared>, message: async_nats::jetstream::Message) {
    let message = Arc::new(message);
    let delivered = message
        .info()
        .map_or(1, |info| info.delivered.max(1) as u64);
    let max_message = shared.queues.settings.max_message;
    let task = if message.payload.len() > max_message {
        Err(format!(
            "the task message has {} bytes, more than the {max_message} allowed",
            message.payload.len()
        ))
    } else {
        serde_json::from_slice::<TaskMsg>(&message.payload)
            .map_err(|err| format!("malformed task message: {err}"))
    };
    let task = match task {
        Ok(task) => task,
        Err(reason) => {
            tracing::warn!(%reason, "rejected a task message");
            // A reply subject we can still read gets the error.
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&message.payload) {
                report_rejected(shared, &value, delivered, reason).await;
            }
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let alive = Arc::clone(&message);
    let period = shared.queues.settings.ack_wait / 3;
    let ticker = shared.keeper.spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            // A failure (the server is restarting) is retried next time.
            let _ = alive.ack_with(AckKind::Progress).await;
        }
    });
    let _ticking = AbortOnDrop(ticker.abort_handle());
    if shared.abandoned(&task.client, &task.run) {
        // Nobody waits for it: take it out of the queue, unrun.
        let _ = message.ack_with(AckKind::Term).await;
        return;
    }
    let id = (task.run.clone(), task.key.clone());
    let work = {
        let shared = Arc::clone(shared);
        let run = task.run.clone();
        let key = task.key.clone();
        let function = task.function.clone();
        let args = task.args.clone();
        let uploaded = task.uploaded.clone();
        let keep = task.keep;
        tokio::spawn(async move {
            let args = match download_uploaded(&shared, &run, args, &uploaded).await {
                Ok(args) => args,
                Err(message) => return (WorkerOutcome::Invalid { message }, None),
            };
            match run_task(&shared, &run, &key, &function, args, keep).await {
                Ok(value) => (WorkerOutcome::Done, value),
                Err(failed) => (failed, None),
            }
        })
    };
    shared.running.insert(id.clone(), work.abort_handle());
    let outcome = work.await;
    shared.running.remove(&id);
    let (outcome, value) = match outcome {
        Ok(ran) => ran,
        Err(err) if err.is_cancelled() => {
            // The client cancelled the task: nobody waits for a report.
            let _ = message.ack().await;
            return;
        }
        Err(err) => (
            WorkerOutcome::Panic {
                message: err.to_string(),
            },
            None,
        ),
    };
    let done = DoneMsg {
        run: task.run,
        key: task.key,
        attempt: task.attempt,
        worker: shared.name.clone(),
        delivered,
        outcome,
        value,
    };
    if let Ok(payload) = serde_json::to_vec(&done) {
        let _ = shared
            .client
            .publish(task.reply.clone(), payload.clone().into())
            .await;
        shared.sent(task.client, task.reply, payload);
    }
    let _ = message.ack().await;
}

/// Aborts a task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Tells the client of a message we could not read, if it named itself.
async fn report_rejected(
    shared: &Shared,
    value: &serde_json::Value,
    delivered: u64,
    reason: String,
) {
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let (Some(reply), Some(run), Some(key)) = (field("reply"), field("run"), field("key")) else {
        return;
    };
    let attempt = value
        .get("attempt")
        .and_then(serde_json::Value::as_u64)
        .and_then(|a| u32::try_from(a).ok())
        .unwrap_or(1);
    let done = DoneMsg {
        run,
        key,
        attempt,
        worker: shared.name.clone(),
        delivered,
        outcome: WorkerOutcome::Invalid { message: reason },
        value: None,
    };
    if let Ok(payload) = serde_json::to_vec(&done) {
        let _ = shared.client.publish(reply, payload.into()).await;
    }
}

/// Fetches the inputs, runs the function, stores the result if it must:
/// the result rides in the report (`Some`) if it is small and no remote
/// task will read it from the store (`keep`). `Err`: how the task failed.
async fn run_task(
    shared: &Shared,
    run: &str,
    key: &str,
    function: &str,
    args: Vec<serde_json::Value>,
    keep: bool,
) -> Result<Option<serde_json::Value>, WorkerOutcome> {
    let invalid = |message: String| Err(WorkerOutcome::Invalid { message });
    let Some(entry) = shared.registry.function(function) else {
        return invalid(format!(
            "`{function}` is not a registered function on worker `{}`",
            shared.name
        ));
    };
    if args.len() != entry.params.len() {
        return invalid(format!(
            "`{function}` takes {} arguments, the task has {}",
            entry.params.len(),
            args.len()
        ));
    }
    let mut nodes = Vec::with_capacity(args.len());
    for (value, (name, param)) in args.into_iter().zip(&entry.params) {
        let arg = match resolve(shared, run, crate::keyed::arg_from_json(value)).await {
            Ok(arg) => arg,
            Err(message) => return invalid(message),
        };
        match param.build_node(&arg, &crate::keyed::empty_scope(), name) {
            Ok(node) => nodes.push(node),
            Err(message) => return invalid(format!("`{function}`: {message}")),
        }
    }
    let node = crate::engine::intern::distinct(|| entry.call(nodes));
    // The client applies the function's retries, timeout and limit around
    // each remote attempt; here the body runs once, plainly.
    node.clear_policies();
    match (entry.get)(node).await {
        Ok(value) if (entry.decode)(value.clone()).is_err() => invalid(format!(
            "the result of `{function}` does not survive JSON (NaN and infinite floats, \
             for example, become null), so it cannot be sent: {}",
            (entry.decode)(value).err().unwrap_or_default()
        )),
        Ok(value) => {
            let small = !keep
                && serde_json::to_vec(&value)
                    .is_ok_and(|bytes| bytes.len() <= shared.queues.settings.inline_result);
            if small {
                return Ok(Some(value));
            }
            match put_patiently(shared, &result_key(run, key), &value).await {
                Ok(()) => Ok(None),
                Err(message) => invalid(message),
            }
        }
        Err(err) if err.is_panic() => Err(WorkerOutcome::Panic {
            message: err.panic_message().unwrap_or("Box<dyn Any>").to_string(),
        }),
        Err(err) => Err(WorkerOutcome::Failed {
            message: std::error::Error::source(&err)
                .map_or_else(|| err.to_string(), ToString::to_string),
        }),
    }
}

/// Stores a result, retrying for about 30 s while the server is away (it
/// may be restarting).
async fn put_patiently(
    shared: &Shared,
    name: &str,
    value: &serde_json::Value,
) -> Result<(), String> {
    crate::cluster::patiently(40, Duration::from_secs(1), || {
        store::put(&shared.queues, name, value)
    })
    .await
}

/// How many stored results one task reads at once.
const READS_AT_ONCE: usize = 64;

/// Replaces each uploaded argument (see `TaskMsg::uploaded`), a reference
/// to its JSON form in the store, with that JSON form.
async fn download_uploaded(
    shared: &Shared,
    run: &str,
    mut args: Vec<serde_json::Value>,
    uploaded: &[usize],
) -> Result<Vec<serde_json::Value>, String> {
    for &i in uploaded {
        let arg = args
            .get_mut(i)
            .ok_or_else(|| format!("uploaded argument {i} is not an argument of the task"))?;
        let upload = match &crate::keyed::arg_from_json(std::mem::take(arg)) {
            Arg::Ref(upload) => upload.clone(),
            _ => return Err(format!("uploaded argument {i} is not a reference")),
        };
        *arg = read_patiently(shared, run, &upload).await?.ok_or_else(|| {
            format!("argument {i} is not in the result store (it may have expired)")
        })?;
    }
    Ok(args)
}

/// Replaces every reference in `arg` with the stored result it names,
/// reading up to [`READS_AT_ONCE`] of them at once.
async fn resolve(shared: &Shared, run: &str, arg: Arg) -> Result<Arg, String> {
    let mut refs = std::collections::HashSet::new();
    arg.refs(&mut |key| {
        refs.insert(key.to_string());
    });
    if refs.is_empty() {
        return Ok(arg);
    }
    let mut reads = futures::stream::iter(refs)
        .map(|key| async move {
            let value = read_patiently(shared, run, &key).await?.ok_or_else(|| {
                format!("input `{key}` is not in the result store (it may have expired)")
            })?;
            Ok::<_, String>((key, value))
        })
        .buffer_unordered(READS_AT_ONCE);
    let mut values = std::collections::HashMap::new();
    while let Some(read) = reads.next().await {
        let (key, value) = read?;
        values.insert(key, value);
    }
    drop(reads);
    Ok(arg.substitute(&values))
}

/// Reads the stored result of `key` in `run`, retrying for about 40 s: a
/// read can fail while the server restarts or a leader is elected.
async fn read_patiently(
    shared: &Shared,
    run: &str,
    key: &str,
) -> Result<Option<serde_json::Value>, String> {
    let name = result_key(run, key);
    crate::cluster::patiently(40, Duration::from_secs(1), || {
        store::get(&shared.queues, &name)
    })
    .await
}
