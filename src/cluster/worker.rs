//! The worker: pulls tasks, runs registered functions, stores results.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::AckKind;
use dashmap::{DashMap, DashSet};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};

use super::settings::{check_name, Settings, DEFAULT_POOL};
use super::setup::{self, Queues};
use super::status::WorkerStatus;
use super::wire::{result_key, AliveMsg, CancelMsg, DoneMsg, TaskMsg, WorkerOutcome};
use super::{keeper, store, ClusterError};
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
    settings: Settings,
    pools: Vec<String>,
}

/// What a worker shares between its tasks.
struct Shared {
    registry: Arc<Registry>,
    queues: Queues,
    client: async_nats::Client,
    name: String,
    running: DashMap<(String, String), AbortHandle>,
    /// When each client was last heard from.
    clients: DashMap<String, Instant>,
    /// Clients found dead, whose leftovers were purged.
    dead: DashSet<String>,
    /// Runs that ended, and when we heard it.
    ended: DashMap<String, Instant>,
    /// When this worker started listening for clients.
    started: Instant,
    /// The last reports sent, by client: sent again when a client that
    /// reconnected asks (a report in flight when the server went away is
    /// lost, and a small result lives only in its report).
    sent: std::sync::Mutex<std::collections::VecDeque<Sent>>,
    /// The tasks this worker may run at once.
    slots: Arc<Semaphore>,
    /// Where in-progress acks are sent from: a runtime that the tasks do
    /// not block.
    keeper: tokio::runtime::Handle,
    /// The connection's connect count at the last sweep, and since when
    /// it has been connected without a break: clients are judged only
    /// after a whole `client_timeout` of that (an outage of the server
    /// silences every client).
    connects: std::sync::atomic::AtomicU64,
    listening_since: std::sync::Mutex<Instant>,
}

/// The most tasks one pull asks for.
const BATCH: usize = 64;

impl Worker {
    /// A worker for the functions of `registry`, running as many tasks at
    /// once as there are cores, in the pool `default`.
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
            settings: Settings::default(),
            pools: Vec::new(),
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

    /// Serves the pool `pool`: runs the tasks of its functions that ask
    /// for that pool (`#[delayed(register, pool = "gpu")]`, or
    /// `Delayed::pool`). Call it again to serve several pools; a worker
    /// given none serves `default`, where tasks that ask for no pool go.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker = delayed::cluster::Worker::new(delayed::keyed::Registry::new())
    ///     .pool("gpu")
    ///     .pool("default");
    /// # let _ = worker;
    /// ```
    pub fn pool(mut self, pool: impl Into<String>) -> Worker {
        self.pools.push(pool.into());
        self
    }

    /// Uses `settings`: the namespace, and the limits and periods, which
    /// should be its clients'.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::cluster::{Settings, Worker};
    ///
    /// let worker = Worker::new(delayed::keyed::Registry::new())
    ///     .settings(Settings::new().namespace("reports-v2"));
    /// # let _ = worker;
    /// ```
    pub fn settings(mut self, settings: Settings) -> Worker {
        self.settings = settings;
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
    /// The connection lives on a thread of its own, so that its traffic,
    /// and the in-progress acks of the tasks, keep flowing while a task
    /// blocks this runtime.
    ///
    /// # Errors
    ///
    /// As for [`run`](Worker::run).
    pub async fn run_with(
        self,
        options: async_nats::ConnectOptions,
        url: &str,
    ) -> Result<(), ClusterError> {
        let (client, keeper, stop) = keeper::connect(options, url).await?;
        let served = self.serve_on(client, shutdown_signal(), keeper).await;
        drop(stop);
        served
    }

    /// Works on a connected client until `shutdown` completes, then
    /// finishes the tasks it holds and returns.
    ///
    /// In-progress acks go from the runtime that drives `client`: if your
    /// tasks may block it for longer than `ack_wait`, connect on a
    /// runtime they do not block (as [`run`](Worker::run) does).
    ///
    /// # Errors
    ///
    /// When JetStream is not enabled on the server, or a pool name is not
    /// valid.
    pub async fn serve(
        self,
        client: async_nats::Client,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ClusterError> {
        let keeper = tokio::runtime::Handle::current();
        self.serve_on(client, shutdown, keeper).await
    }

    async fn serve_on(
        mut self,
        client: async_nats::Client,
        shutdown: impl Future<Output = ()>,
        keeper: tokio::runtime::Handle,
    ) -> Result<(), ClusterError> {
        if self.pools.is_empty() {
            self.pools.push(DEFAULT_POOL.to_owned());
        }
        self.pools.sort();
        self.pools.dedup();
        for pool in &self.pools {
            check_name("pool", pool)?;
        }
        let queues = setup::open(&client, &self.settings).await?;
        let names = queues.names.clone();
        let mut consumers = Vec::new();
        let mut bells = std::collections::HashMap::new();
        for pool in &self.pools {
            for function in self.registry.names() {
                let consumer = setup::consumer(&queues, pool, function).await?;
                let bell = Arc::new(tokio::sync::Notify::new());
                bells.insert(names.ring(pool, function), Arc::clone(&bell));
                consumers.push((consumer, bell));
            }
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            registry: self.registry,
            queues,
            client: client.clone(),
            name: self.name,
            running: DashMap::new(),
            clients: DashMap::new(),
            dead: DashSet::new(),
            ended: DashMap::new(),
            started: Instant::now(),
            sent: std::sync::Mutex::default(),
            slots: Arc::new(Semaphore::new(self.concurrency)),
            keeper,
            connects: client.statistics().connects.load(Ordering::Relaxed).into(),
            listening_since: std::sync::Mutex::new(Instant::now()),
        });
        let subscribe = |subject: String, what: &'static str| {
            let client = client.clone();
            async move {
                client
                    .subscribe(subject)
                    .await
                    .map_err(|err| ClusterError::new(format!("cannot subscribe to {what}: {err}")))
            }
        };
        let mut cancels = subscribe(names.cancel(), "cancellations").await?;
        let mut pings = subscribe(names.workers(), "status requests").await?;
        let mut beats = subscribe(names.all_alive(), "clients' heartbeats").await?;
        let mut rings = Vec::new();
        for pool in &self.pools {
            rings.push(subscribe(names.rings(pool), "doorbells").await?);
        }
        let mut rings = futures::stream::select_all(rings);
        let mut listeners = JoinSet::new();
        let mut resends = subscribe(names.all_resend(), "requests to send again").await?;
        let resending = Arc::clone(&shared);
        listeners.spawn(async move {
            while let Some(message) = resends.next().await {
                if let Some(client) = message.subject.rsplit('.').next() {
                    resending.resend(client).await;
                }
            }
        });
        let cancelling = Arc::clone(&shared);
        listeners.spawn(async move {
            while let Some(message) = cancels.next().await {
                if let Ok(cancel) = serde_json::from_slice::<CancelMsg>(&message.payload) {
                    if let Some((_, abort)) = cancelling.running.remove(&(cancel.run, cancel.key)) {
                        abort.abort();
                    }
                }
            }
        });
        let answering = Arc::clone(&shared);
        let concurrency = self.concurrency;
        let pools = self.pools.clone();
        listeners.spawn(async move {
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
                    pools.clone(),
                );
                if let Ok(payload) = serde_json::to_vec(&status) {
                    let _ = answering.client.publish(reply, payload.into()).await;
                }
            }
        });
        let hearing = Arc::clone(&shared);
        listeners.spawn(async move {
            while let Some(message) = beats.next().await {
                let Some(client) = message.subject.rsplit('.').next() else {
                    continue;
                };
                hearing.heard(client, &message.payload);
            }
        });
        listeners.spawn(async move {
            while let Some(message) = rings.next().await {
                if let Some(bell) = bells.get(message.subject.as_str()) {
                    bell.notify_one();
                }
            }
        });
        let sweeping = Arc::clone(&shared);
        listeners.spawn(async move {
            let period = sweeping.queues.settings.client_timeout / 3;
            loop {
                tokio::time::sleep(period).await;
                sweeping.sweep();
            }
        });
        let mut pullers = JoinSet::new();
        let tasks = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        for (consumer, bell) in consumers {
            pullers.spawn(pull(
                Arc::clone(&shared),
                consumer,
                bell,
                Arc::clone(&tasks),
                stopped.clone(),
            ));
        }
        shutdown.await;
        // Stop pulling; finish what we hold.
        let _ = stop.send(true);
        while pullers.join_next().await.is_some() {}
        let mut held = std::mem::take(&mut *tasks.lock().unwrap_or_else(PoisonError::into_inner));
        while held.join_next().await.is_some() {}
        listeners.abort_all();
        let _ = client.flush().await;
        Ok(())
    }
}

/// Pulls the tasks of one consumer until told to stop: when its doorbell
/// rings, and once a second (for redeliveries, and rings that were lost),
/// it takes what is queued, in batches of as many as the worker has free
/// slots for, until the queue is empty. Each task runs in `tasks`,
/// holding its slot. Slots are held only for a pull's round trip, and
/// only free slots are asked for: a task taken and handed back would
/// count as a delivery.
async fn pull(
    shared: Arc<Shared>,
    consumer: PullConsumer,
    bell: Arc<tokio::sync::Notify>,
    tasks: Arc<std::sync::Mutex<JoinSet<()>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        // Drain.
        loop {
            if *stop.borrow() {
                return;
            }
            let first = tokio::select! {
                _ = stop.changed() => return,
                permit = Arc::clone(&shared.slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let mut slots = vec![first];
            while slots.len() < BATCH {
                match Arc::clone(&shared.slots).try_acquire_owned() {
                    Ok(permit) => slots.push(permit),
                    Err(_) => break,
                }
            }
            let asked = slots.len();
            // No wait: what is queued now, at once.
            let fetched = consumer.fetch().max_messages(asked).messages().await;
            let mut batch = match fetched {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot fetch tasks; retrying");
                    drop(slots);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            while let Some(next) = batch.next().await {
                match next {
                    Ok(message) => {
                        let Some(slot) = slots.pop() else { break };
                        let shared = Arc::clone(&shared);
                        let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
                        tasks.spawn(async move {
                            handle(&shared, message).await;
                            drop(slot);
                        });
                        while tasks.try_join_next().is_some() {}
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot receive a task"),
                }
                if slots.is_empty() {
                    break;
                }
            }
            if !slots.is_empty() {
                // Fewer than asked: the queue is empty.
                break;
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = bell.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// A report sent: to which client, where, what, and when.
struct Sent {
    client: String,
    reply: String,
    payload: Vec<u8>,
    at: Instant,
}

/// Reports kept to send again: at most this many, for at most this long.
const SENT_KEPT: usize = 10_000;
const SENT_FOR: Duration = Duration::from_secs(120);

impl Shared {
    /// Keeps a sent report, to send again if its client asks.
    fn sent(&self, client: String, reply: String, payload: Vec<u8>) {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        while sent.len() >= SENT_KEPT || sent.front().is_some_and(|s| s.at.elapsed() > SENT_FOR) {
            sent.pop_front();
        }
        sent.push_back(Sent {
            client,
            reply,
            payload,
            at: Instant::now(),
        });
    }

    /// Sends `client` again every report it was sent lately.
    async fn resend(&self, client: &str) {
        let again: Vec<(String, Vec<u8>)> = self
            .sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|sent| sent.client == client)
            .map(|sent| (sent.reply.clone(), sent.payload.clone()))
            .collect();
        for (reply, payload) in again {
            let _ = self.client.publish(reply, payload.into()).await;
        }
    }

    /// A client's heartbeat or news of its runs' ends.
    fn heard(&self, client: &str, payload: &[u8]) {
        self.clients.insert(client.to_owned(), Instant::now());
        let Ok(alive) = serde_json::from_slice::<AliveMsg>(payload) else {
            return;
        };
        if alive.ended.is_empty() {
            return;
        }
        let now = Instant::now();
        for run in &alive.ended {
            self.ended.insert(run.clone(), now);
        }
        self.running.retain(|(run, _), abort| {
            let ended = alive.ended.contains(run);
            if ended {
                abort.abort();
            }
            !ended
        });
    }

    /// Finds the clients that went silent: purges what they left, and
    /// stops their running tasks. Forgets old run ends.
    fn sweep(self: &Arc<Self>) {
        let timeout = self.queues.settings.client_timeout;
        if !self.listened(timeout) {
            return;
        }
        let mut gone = Vec::new();
        self.clients.retain(|client, seen| {
            let silent = seen.elapsed() > timeout;
            if silent {
                gone.push(client.clone());
            }
            !silent
        });
        for client in gone {
            if !self.dead.insert(client.clone()) {
                continue;
            }
            tracing::info!(
                client = %client,
                "a client went silent: its queued tasks and results are deleted"
            );
            let prefix = format!("{client}.");
            self.running.retain(|(run, _), abort| {
                let theirs = run.starts_with(&prefix);
                if theirs {
                    abort.abort();
                }
                !theirs
            });
            let shared = Arc::clone(self);
            tokio::spawn(async move {
                store::purge_client(&shared.queues, &client).await;
            });
        }
        let keep = self.queues.settings.result_ttl;
        self.ended.retain(|_, when| when.elapsed() < keep);
    }

    /// Whether a task of `client` in `run` should not start: its run
    /// ended, or its client is dead (not heard from within the timeout,
    /// though we have listened that long).
    fn abandoned(&self, client: &str, run: &str) -> bool {
        if self.ended.contains_key(run) {
            return true;
        }
        if client.is_empty() {
            return false;
        }
        if self.dead.contains(client) {
            return true;
        }
        let timeout = self.queues.settings.client_timeout;
        if !self.listened(timeout) {
            return false;
        }
        match self.clients.get(client) {
            Some(seen) => seen.elapsed() > timeout,
            None => self.started.elapsed() > timeout,
        }
    }

    /// Whether this worker has been connected for the last `timeout`
    /// without a break, so a client it did not hear from is silent.
    fn listened(&self, timeout: Duration) -> bool {
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        let mut since = self
            .listening_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !connected || self.connects.swap(connects, Ordering::Relaxed) != connects {
            *since = Instant::now();
        }
        connected && since.elapsed() > timeout
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
            run_task(&shared, &run, &key, &function, args, keep).await
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

/// Fetches the inputs, runs the function, stores the result.
/// The result rides in the report (`Some`) if it is small and no remote
/// task will read it from the store (`keep`).
async fn run_task(
    shared: &Shared,
    run: &str,
    key: &str,
    function: &str,
    args: Vec<serde_json::Value>,
    keep: bool,
) -> (WorkerOutcome, Option<serde_json::Value>) {
    let outcome = run_body(shared, run, key, function, args, keep).await;
    match outcome {
        Ok(value) => (WorkerOutcome::Done, value),
        Err(outcome) => (outcome, None),
    }
}

async fn run_body(
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
