//! The worker: pulls tasks, runs registered functions, stores results.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use dashmap::DashMap;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};

use super::setup::{self, Queues, ACK_WAIT, MAX_MESSAGE};
use super::status::WorkerStatus;
use super::store;
use super::wire::{result_key, CancelMsg, DoneMsg, TaskMsg, WorkerOutcome, CANCEL, WORKERS};
use super::ClusterError;
use crate::keyed::{Arg, Registry};

/// A worker process: pulls ready tasks from JetStream and runs the
/// registered functions they name.
///
/// Build one from your registry in your own binary; the same binary (or
/// another with the same functions) runs on every machine.
///
/// ```no_run
/// #[delayed::delayed(register)]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// #[tokio::main]
/// async fn main() -> Result<(), delayed::cluster::ClusterError> {
///     let registry = delayed::registry![inc];
///     delayed::cluster::Worker::new(registry)
///         .concurrency(8)
///         .run("nats://127.0.0.1:4222")
///         .await
/// }
/// ```
///
/// For each task it fetches the inputs from the result store, runs the
/// function on this process's tokio runtime (async bodies as tasks,
/// blocking ones on the blocking pool), stores the result, reports to the
/// client, and only then acknowledges the message. While a task runs it
/// sends in-progress acks, so a short `ack_wait` (5 s) notices a dead
/// worker quickly without cutting long tasks short. It runs only
/// registered functions; a malformed or oversized message gets an error
/// report, never a crash. On ctrl-c or SIGTERM it stops pulling, finishes
/// what it holds, and returns.
pub struct Worker {
    registry: Arc<Registry>,
    concurrency: usize,
    name: String,
}

/// What a worker shares between its tasks.
struct Shared {
    registry: Arc<Registry>,
    queues: Queues,
    client: async_nats::Client,
    name: String,
    running: DashMap<(String, String), AbortHandle>,
}

impl Worker {
    /// A worker for the functions of `registry`, running as many tasks at
    /// once as there are cores.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker = delayed::cluster::Worker::new(delayed::keyed::Registry::new());
    /// # let _ = worker;
    /// ```
    pub fn new(registry: Registry) -> Worker {
        Worker {
            registry: Arc::new(registry),
            concurrency: std::thread::available_parallelism().map_or(1, usize::from),
            name: format!("worker-{}", std::process::id()),
        }
    }

    /// Runs at most `tasks` tasks at once (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// let worker = delayed::cluster::Worker::new(delayed::keyed::Registry::new()).concurrency(8);
    /// # let _ = worker;
    /// ```
    pub fn concurrency(mut self, tasks: usize) -> Worker {
        self.concurrency = tasks.max(1);
        self
    }

    /// Names the worker in reports (default `worker-<pid>`).
    ///
    /// # Examples
    ///
    /// ```
    /// let worker = delayed::cluster::Worker::new(delayed::keyed::Registry::new()).name("gpu-1");
    /// # let _ = worker;
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Worker {
        self.name = name.into();
        self
    }

    /// Connects to the NATS server at `url` (or to one of several, comma
    /// separated: `"nats://a:4222,nats://b:4222"`) and works until ctrl-c
    /// or SIGTERM.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or JetStream is not enabled.
    pub async fn run(self, url: &str) -> Result<(), ClusterError> {
        self.run_with(async_nats::ConnectOptions::new(), url).await
    }

    /// [`run`](Worker::run) with connection options: a token, a user and
    /// password, an nkey, a credentials file, TLS.
    ///
    /// # Errors
    ///
    /// As for [`run`](Worker::run).
    pub async fn run_with(
        self,
        options: async_nats::ConnectOptions,
        url: &str,
    ) -> Result<(), ClusterError> {
        let client = super::connect(options, url).await?;
        self.serve(client, shutdown_signal()).await
    }

    /// Works on a connected client until `shutdown` completes, then
    /// finishes the tasks it holds and returns.
    ///
    /// # Errors
    ///
    /// When JetStream is not enabled on the server.
    pub async fn serve(
        self,
        client: async_nats::Client,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ClusterError> {
        let queues = setup::open(&client).await?;
        let shared = Arc::new(Shared {
            registry: self.registry,
            queues,
            client: client.clone(),
            name: self.name,
            running: DashMap::new(),
        });
        let mut cancels = client.subscribe(CANCEL).await.map_err(|err| {
            ClusterError::new(format!("cannot subscribe to cancellations: {err}"))
        })?;
        let cancelling = Arc::clone(&shared);
        let cancel_task = tokio::spawn(async move {
            while let Some(message) = cancels.next().await {
                if let Ok(cancel) = serde_json::from_slice::<CancelMsg>(&message.payload) {
                    if let Some((_, abort)) = cancelling.running.remove(&(cancel.run, cancel.key)) {
                        abort.abort();
                    }
                }
            }
        });
        let mut pings = client.subscribe(WORKERS).await.map_err(|err| {
            ClusterError::new(format!("cannot subscribe to status requests: {err}"))
        })?;
        let answering = Arc::clone(&shared);
        let concurrency = self.concurrency;
        let ping_task = tokio::spawn(async move {
            let mut functions: Vec<String> =
                answering.registry.names().map(str::to_string).collect();
            functions.sort();
            while let Some(message) = pings.next().await {
                let Some(reply) = message.reply else { continue };
                let status = WorkerStatus::new(
                    answering.name.clone(),
                    concurrency,
                    answering.running.len(),
                    functions.clone(),
                );
                if let Ok(payload) = serde_json::to_vec(&status) {
                    let _ = answering.client.publish(reply, payload.into()).await;
                }
            }
        });
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let fetched = tokio::select! {
                () = &mut shutdown => break,
                batch = shared
                    .queues
                    .consumer
                    .fetch()
                    .max_messages(1)
                    .expires(Duration::from_secs(1))
                    .messages() => batch,
            };
            let mut batch = match fetched {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot fetch tasks; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let next = tokio::select! {
                () = &mut shutdown => break,
                next = batch.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    let shared = Arc::clone(&shared);
                    tasks.spawn(async move {
                        handle(&shared, message).await;
                        drop(permit);
                    });
                }
                Some(Err(err)) => tracing::warn!(error = %err, "cannot receive a task"),
                None => {}
            }
            while tasks.try_join_next().is_some() {}
        }
        // Stop pulling; finish what we hold.
        while tasks.join_next().await.is_some() {}
        cancel_task.abort();
        ping_task.abort();
        let _ = client.flush().await;
        Ok(())
    }
}

/// Waits for ctrl-c or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs one delivered task, reports it, then acknowledges it.
async fn handle(shared: &Arc<Shared>, message: async_nats::jetstream::Message) {
    let message = Arc::new(message);
    let delivered = message
        .info()
        .map_or(1, |info| info.delivered.max(1) as u64);
    let task = if message.payload.len() > MAX_MESSAGE as usize {
        Err(format!(
            "the task message has {} bytes, more than the {MAX_MESSAGE} allowed",
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
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(ACK_WAIT / 3).await;
            // A failure (the server is restarting) is retried next time.
            let _ = alive.ack_with(AckKind::Progress).await;
        }
    });
    let id = (task.run.clone(), task.key.clone());
    let work = {
        let shared = Arc::clone(shared);
        let run = task.run.clone();
        let key = task.key.clone();
        let function = task.function.clone();
        let args = task.args.clone();
        let uploaded = task.uploaded.clone();
        tokio::spawn(async move {
            let args = match download_uploaded(&shared, &run, args, &uploaded).await {
                Ok(args) => args,
                Err(message) => return WorkerOutcome::Invalid { message },
            };
            run_task(&shared, &run, &key, &function, args).await
        })
    };
    shared.running.insert(id.clone(), work.abort_handle());
    let outcome = work.await;
    shared.running.remove(&id);
    ticker.abort();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) if err.is_cancelled() => {
            // The client cancelled the task: nobody waits for a report.
            let _ = message.ack().await;
            return;
        }
        Err(err) => WorkerOutcome::Panic {
            message: err.to_string(),
        },
    };
    let done = DoneMsg {
        run: task.run,
        key: task.key,
        attempt: task.attempt,
        worker: shared.name.clone(),
        delivered,
        outcome,
    };
    if let Ok(payload) = serde_json::to_vec(&done) {
        let _ = shared.client.publish(task.reply, payload.into()).await;
        let _ = shared.client.flush().await;
    }
    let _ = message.ack().await;
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
    };
    if let Ok(payload) = serde_json::to_vec(&done) {
        let _ = shared.client.publish(reply, payload.into()).await;
    }
}

/// Fetches the inputs, runs the function, stores the result.
async fn run_task(
    shared: &Shared,
    run: &str,
    key: &str,
    function: &str,
    args: Vec<serde_json::Value>,
) -> WorkerOutcome {
    let invalid = |message: String| WorkerOutcome::Invalid { message };
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
        Ok(value) => match put_patiently(shared, &result_key(run, key), &value).await {
            Ok(()) => WorkerOutcome::Done,
            Err(message) => invalid(message),
        },
        Err(err) if err.is_panic() => WorkerOutcome::Panic {
            message: err.panic_message().unwrap_or("Box<dyn Any>").to_string(),
        },
        Err(err) => WorkerOutcome::Failed {
            message: std::error::Error::source(&err)
                .map_or_else(|| err.to_string(), ToString::to_string),
        },
    }
}

/// Stores a result, retrying for about 30 s while the server is away (it
/// may be restarting).
async fn put_patiently(
    shared: &Shared,
    name: &str,
    value: &serde_json::Value,
) -> Result<(), String> {
    super::patiently(40, Duration::from_secs(1), || {
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
    super::patiently(40, Duration::from_secs(1), || {
        store::get(&shared.queues, &name)
    })
    .await
}
