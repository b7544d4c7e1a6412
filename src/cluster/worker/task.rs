//! One task on a worker: its message read, its inputs fetched, its
//! function run, its result reported (and stored if it must be), then
//! acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use futures::StreamExt;
use tracing::Instrument;

use super::Shared;
use crate::cluster::wire::{self, result_key, DoneMsg, TaskMsg, WorkerOutcome};
use crate::cluster::{store, trace};
use crate::engine::view::NodeView;
use crate::keyed::{Arg, Entry};

/// Runs the tasks of one delivered message, reports each, then
/// acknowledges the message.
///
/// A message may hold several tasks (see `wire::batch`). They run one
/// after another on the slot the message came with, and more at once
/// while the worker has free slots: never more than its concurrency, and
/// never waiting for a slot another message holds. A batch that comes
/// back (its worker died) is published again as one message per task, so
/// that a task that kills its workers is the only one that runs out of
/// deliveries.
pub(super) async fn handle(shared: &Arc<Shared>, message: async_nats::jetstream::Message) {
    let message = Arc::new(message);
    let earlier = wire::earlier_deliveries(message.headers.as_ref());
    let delivered = message
        .info()
        .map_or(1, |info| info.delivered.max(1) as u64);
    let max_message = shared.queues.settings.max_message;
    let tasks = if message.payload.len() > max_message {
        Err(format!(
            "the task message has {} bytes, more than the {max_message} allowed",
            message.payload.len()
        ))
    } else {
        wire::tasks_of(&message.payload).map_err(|err| format!("malformed task message: {err}"))
    };
    let tasks = match tasks {
        Ok(tasks) => tasks,
        Err(reason) => {
            tracing::warn!(%reason, "rejected a task message");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    if tasks.len() > 1 && delivered > 1 {
        return split(shared, &message, &tasks, delivered + earlier).await;
    }
    let sequence = message.info().map_or(0, |info| info.stream_sequence);
    // The keeper sends its in-progress acks while it is held.
    let _held = Held::new(shared, Arc::clone(&message));
    let single = tasks.len() == 1;
    let mut queued = tasks.into_iter();
    let mut running = futures::stream::FuturesUnordered::new();
    let mut term = true;
    loop {
        while let Some(slot) = (running.is_empty())
            .then_some(None)
            .or_else(|| Arc::clone(&shared.slots).try_acquire_owned().ok().map(Some))
        {
            let Some(task) = queued.next() else { break };
            running.push(async move {
                let ended = one(shared, task, sequence, delivered + earlier).await;
                drop(slot);
                ended
            });
        }
        match running.next().await {
            Some(Ended::Term) => {}
            Some(Ended::Acked) => term = false,
            None => break,
        }
    }
    // A single task rejected or abandoned is terminated: it will not come
    // back. Any other message is acknowledged.
    let _ = if single && term {
        message.ack_with(AckKind::Term).await
    } else {
        message.ack().await
    };
}

/// How one task of a message ended.
enum Ended {
    /// Reported, or cancelled by its client.
    Acked,
    /// Rejected or abandoned: it must not come back.
    Term,
}

/// Runs one task of message `sequence` and reports it.
async fn one(shared: &Arc<Shared>, wire: &[u8], sequence: u64, delivered: u64) -> Ended {
    let task = match TaskMsg::from_wire(wire) {
        Ok(task) => task,
        Err(err) => {
            let reason = format!("malformed task message: {err}");
            tracing::warn!(%reason, "rejected a task message");
            // A reply subject we can still read gets the error.
            let json = wire.split(|&byte| byte == 0).next().unwrap_or_default();
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) {
                report_rejected(shared, &value, delivered, reason).await;
            }
            return Ended::Term;
        }
    };
    if shared.abandoned(&task.client, &task.run).await {
        // Nobody waits for it: out of the queue, unrun.
        return Ended::Term;
    }
    let id = (task.run.clone(), task.key.clone());
    if shared.was_cancelled(&id, sequence) {
        return Ended::Acked;
    }
    let work = {
        let shared = Arc::clone(shared);
        let run = task.run.clone();
        let key = task.key.clone();
        let function = task.function.clone();
        let args = task.args.clone();
        let uploaded = task.uploaded.clone();
        let keep = task.keep;
        let binary = task.binary.clone();
        let blobs = task.blobs.clone();
        let span = trace::worker_span(
            &task.key,
            &task.function,
            &shared.name,
            task.traceparent.as_deref(),
        );
        let ran = async move {
            let (args, binary) =
                match download_uploaded(&shared, &run, args, &uploaded, &binary, blobs).await {
                    Ok(args) => args,
                    Err(message) => return (WorkerOutcome::Invalid { message }, None),
                };
            match run_task(&shared, &run, &key, &function, args, binary, keep).await {
                Ok(value) => (WorkerOutcome::Done, value),
                Err(failed) => (failed, None),
            }
        };
        let name = || crate::spawn::name_of(&task.key, &task.function);
        crate::spawn::named_task(name, ran.instrument(span))
    };
    shared
        .running
        .insert(id.clone(), (work.abort_handle(), sequence));
    let outcome = work.await;
    shared
        .running
        .remove_if(&id, |_, (_, running)| *running == sequence);
    let (outcome, value) = match outcome {
        Ok(ran) => ran,
        Err(err) if err.is_cancelled() => {
            // The client cancelled the task: nobody waits for a report.
            return Ended::Acked;
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
    if let Ok(payload) = done.to_wire() {
        let _ = shared
            .client
            .publish(task.reply.clone(), payload.clone().into())
            .await;
        shared.sent(task.client, task.reply, payload);
    }
    Ended::Acked
}

/// Publishes each task of a batch that came back as a message of its
/// own, noting the batch's deliveries so far, then acknowledges the
/// batch. If any publish fails, the batch is left to come back again.
async fn split(
    shared: &Shared,
    message: &async_nats::jetstream::Message,
    tasks: &[&[u8]],
    delivered: u64,
) {
    let from = message.info().map_or(0, |info| info.stream_sequence);
    let name = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get("Nats-Msg-Id"))
        .map_or_else(
            || format!("{}", message.info().map_or(0, |info| info.stream_sequence)),
            |id| id.as_str().to_string(),
        );
    for (i, task) in tasks.iter().enumerate() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{name}/{i}").as_str());
        headers.insert(
            wire::EARLIER_DELIVERIES,
            (delivered - 1).to_string().as_str(),
        );
        let published = shared
            .queues
            .js
            .publish_with_headers(message.subject.clone(), headers, task.to_vec().into())
            .await;
        let stored = match published {
            Ok(ack) => ack.await.ok(),
            Err(_) => None,
        };
        let Some(stored) = stored else {
            tracing::warn!("cannot publish a returned batch's tasks again; it will come back");
            return;
        };
        tell_moved(shared, task, from, stored.sequence).await;
    }
    tracing::info!(
        tasks = tasks.len(),
        delivered,
        "a batch came back: its tasks are queued again one by one"
    );
    let _ = message.ack().await;
}

/// Tells the client of `task`, a task of batch `from` published again as
/// message `to`, where it waits now: the client looks there for it.
async fn tell_moved(shared: &Shared, task: &[u8], from: u64, to: u64) {
    let Ok(task) = TaskMsg::from_wire(task) else {
        return;
    };
    let moved = wire::MovedMsg {
        run: task.run,
        key: task.key,
        attempt: task.attempt,
        from,
        to,
    };
    if let Ok(payload) = serde_json::to_vec(&moved) {
        let _ = shared
            .client
            .publish_with_headers(
                task.reply,
                wire::liveness_headers(wire::MOVED),
                payload.into(),
            )
            .await;
    }
}

/// A task message this worker holds, in `Shared::held` until dropped.
struct Held<'a> {
    shared: &'a Shared,
    id: u64,
}

impl<'a> Held<'a> {
    fn new(shared: &'a Shared, message: Arc<async_nats::jetstream::Message>) -> Held<'a> {
        let id = shared
            .holds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared.held.insert(id, (message, std::time::Instant::now()));
        Held { shared, id }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.shared.held.remove(&self.id);
    }
}

/// Sends an in-progress ack, three times per `ack_wait`, for each task
/// message held longer than a third of it. Runs on the keeper's runtime,
/// which tasks do not block.
pub(super) async fn keep_alive(shared: Arc<Shared>) {
    let period = shared.queues.settings.ack_wait / 3;
    loop {
        tokio::time::sleep(period).await;
        let due: Vec<Arc<async_nats::jetstream::Message>> = shared
            .held
            .iter()
            .filter(|held| held.value().1.elapsed() >= period)
            .map(|held| Arc::clone(&held.value().0))
            .collect();
        for message in due {
            // A failure (the server is restarting) is tried again next time.
            let _ = message.ack_with(AckKind::Progress).await;
        }
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
    if let Ok(payload) = done.to_wire() {
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
    binary: std::collections::HashMap<usize, Vec<u8>>,
    keep: bool,
) -> Result<Option<Vec<u8>>, WorkerOutcome> {
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
    let args: Vec<Arg> = args.into_iter().map(crate::keyed::arg_from_json).collect();
    // Every stored result the arguments refer to, as a finished node of
    // the type its function makes.
    let inputs = match read_inputs(shared, run, &args).await {
        Ok(inputs) => inputs,
        Err(message) => return invalid(message),
    };
    let scope = crate::keyed::scope_of(&inputs);
    let mut nodes = Vec::with_capacity(args.len());
    for (i, (arg, (name, param))) in args.iter().zip(&entry.params).enumerate() {
        let built = match binary.get(&i) {
            Some(bytes) => param.node_from_bytes(bytes),
            None => param.build_node(arg, &scope, name),
        };
        match built {
            Ok(node) => nodes.push(node),
            Err(message) => return invalid(format!("`{function}`: {message}")),
        }
    }
    let node = crate::engine::intern::distinct(|| entry.call(nodes));
    // The client applies the function's retries, timeout and limit around
    // each remote attempt; here the body runs once, plainly.
    node.clear_policies();
    match (entry.get_bytes)(node).await {
        Ok(bytes) => {
            if !keep && bytes.len() <= shared.queues.settings.inline_result {
                return Ok(Some(bytes));
            }
            match put_patiently(shared, &result_key(run, key), function, &bytes).await {
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

/// Stores a result's bytes, retrying for about 30 s while the server is
/// away (it may be restarting).
async fn put_patiently(
    shared: &Shared,
    name: &str,
    function: &str,
    bytes: &[u8],
) -> Result<(), String> {
    crate::cluster::patiently(40, Duration::from_secs(1), || {
        store::put_result(&shared.queues, name, function, bytes)
    })
    .await
}

/// How many stored results one task reads at once.
const READS_AT_ONCE: usize = 64;

/// Replaces each uploaded JSON argument (see `TaskMsg::uploaded`), a
/// reference to its JSON form in the store, with that JSON form; returns
/// the bytes of the binary arguments by index, from the message's blobs
/// or, when uploaded, from the store.
async fn download_uploaded(
    shared: &Shared,
    run: &str,
    mut args: Vec<serde_json::Value>,
    uploaded: &[usize],
    binary: &[usize],
    blobs: Vec<Vec<u8>>,
) -> Result<
    (
        Vec<serde_json::Value>,
        std::collections::HashMap<usize, Vec<u8>>,
    ),
    String,
> {
    let mut bytes = std::collections::HashMap::new();
    let mut blobs = blobs.into_iter();
    for &i in binary {
        if !uploaded.contains(&i) {
            let blob = blobs
                .next()
                .ok_or_else(|| format!("binary argument {i} has no bytes in the message"))?;
            bytes.insert(i, blob);
        }
    }
    for &i in uploaded {
        let arg = args
            .get_mut(i)
            .ok_or_else(|| format!("uploaded argument {i} is not an argument of the task"))?;
        let upload = match &crate::keyed::arg_from_json(std::mem::take(arg)) {
            Arg::Ref(upload) => upload.clone(),
            _ => return Err(format!("uploaded argument {i} is not a reference")),
        };
        let name = result_key(run, &upload);
        let missing = || format!("argument {i} is not in the result store (it may have expired)");
        if binary.contains(&i) {
            let read = crate::cluster::patiently(40, Duration::from_secs(1), || {
                store::get_result(&shared.queues, &name)
            })
            .await?;
            bytes.insert(i, read.ok_or_else(missing)?.1);
            continue;
        }
        *arg = crate::cluster::patiently(40, Duration::from_secs(1), || {
            store::get(&shared.queues, &name)
        })
        .await?
        .ok_or_else(missing)?;
    }
    Ok((args, bytes))
}

/// The stored results every reference in `args` names, read up to
/// [`READS_AT_ONCE`] at once, each as a finished node of its function's
/// output type (decoded from its postcard bytes).
async fn read_inputs<'r>(
    shared: &'r Shared,
    run: &str,
    args: &[Arg],
) -> Result<Vec<(String, NodeView, &'r Entry)>, String> {
    let mut refs = std::collections::HashSet::new();
    for arg in args {
        arg.refs(&mut |key| {
            refs.insert(key.to_string());
        });
    }
    let mut reads = futures::stream::iter(refs)
        .map(|key| async move {
            let name = result_key(run, &key);
            let read = crate::cluster::patiently(40, Duration::from_secs(1), || {
                store::get_result(&shared.queues, &name)
            })
            .await?;
            let (function, bytes) = read.ok_or_else(|| {
                format!("input `{key}` is not in the result store (it may have expired)")
            })?;
            let entry = shared.registry.function(&function).ok_or_else(|| {
                format!("input `{key}` was made by `{function}`, which this worker does not have")
            })?;
            let node = (entry.value_node)(&bytes).map_err(|err| {
                format!("input `{key}` does not read as `{function}`'s output: {err}")
            })?;
            Ok::<_, String>((key, node, entry))
        })
        .buffer_unordered(READS_AT_ONCE);
    let mut inputs = Vec::new();
    while let Some(read) = reads.next().await {
        inputs.push(read?);
    }
    Ok(inputs)
}
