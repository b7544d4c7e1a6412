//! The worker: pulls tasks, runs registered functions, stores results.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use dashmap::{DashMap, DashSet};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};

use super::settings::{check_name, Settings, DEFAULT_POOL};
use super::setup::{self, Queues};
use super::status::WorkerStatus;
use super::wire::CancelMsg;
use super::{keeper, ClusterError};

mod doorbell;
mod liveness;
mod pull;
mod task;

use self::liveness::Sent;
use self::pull::pull;
use crate::keyed::Registry;

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
    /// The tasks running here, by run and key: what stops each, and the
    /// stream sequence of the message that holds it.
    running: DashMap<(String, String), (AbortHandle, u64)>,
    /// Tasks cancelled that were not running here, and when.
    /// With the sequence of the message the cancel was for, if it said.
    cancelled: DashMap<(String, String), (Instant, Option<u64>)>,
    /// When each client was last heard from.
    clients: DashMap<String, Instant>,
    /// Clients found gone, whose leftovers are purged: `true` once the
    /// purge is over.
    dead: DashMap<String, bool>,
    /// Clients being asked whether they are there.
    probing: DashSet<String>,
    /// Runs that ended, and when we heard it.
    ended: DashMap<String, Instant>,
    /// The last reports sent, by client: sent again when a client that
    /// reconnected asks (a report in flight when the server went away is
    /// lost, and a small result lives only in its report).
    sent: std::sync::Mutex<std::collections::VecDeque<Sent>>,
    /// The tasks this worker may run at once.
    slots: Arc<Semaphore>,
    /// Where in-progress acks are sent from: a runtime that the tasks do
    /// not block.
    keeper: tokio::runtime::Handle,
    /// The task messages held now, and since when, for those acks.
    held: DashMap<u64, (Arc<async_nats::jetstream::Message>, Instant)>,
    holds: std::sync::atomic::AtomicU64,
    /// The connection's connect count at the last sweep, and since when
    /// it has been connected without a break: clients are judged only
    /// after a whole `client_timeout` of that (an outage of the server
    /// silences every client).
    connects: std::sync::atomic::AtomicU64,
    listening_since: std::sync::Mutex<Instant>,
    /// Heard while some consumer waits for a ring.
    doorbells: doorbell::Doorbells,
}

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
            cancelled: DashMap::new(),
            clients: DashMap::new(),
            dead: DashMap::new(),
            probing: DashSet::new(),
            ended: DashMap::new(),
            sent: std::sync::Mutex::default(),
            slots: Arc::new(Semaphore::new(self.concurrency)),
            keeper,
            held: DashMap::new(),
            holds: 0.into(),
            connects: client.statistics().connects.load(Ordering::Relaxed).into(),
            listening_since: std::sync::Mutex::new(Instant::now()),
            doorbells: doorbell::Doorbells::new(),
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
        let mut listeners = JoinSet::new();
        let mut resends = subscribe(names.all_resend(), "requests to send again").await?;
        let resending = Arc::clone(&shared);
        crate::spawn::in_set(&mut listeners, "delayed worker resends", async move {
            while let Some(message) = resends.next().await {
                if let Some(client) = message.subject.rsplit('.').next() {
                    resending.resend(client).await;
                }
            }
        });
        let keeping = crate::spawn::named_on(
            &shared.keeper,
            "delayed worker keep-alive",
            task::keep_alive(Arc::clone(&shared)),
        );
        let cancelling = Arc::clone(&shared);
        crate::spawn::in_set(&mut listeners, "delayed worker cancels", async move {
            while let Some(message) = cancels.next().await {
                if let Ok(cancel) = serde_json::from_slice::<CancelMsg>(&message.payload) {
                    cancelling.cancel(cancel.run, cancel.key, cancel.sequence);
                }
            }
        });
        let answering = Arc::clone(&shared);
        let concurrency = self.concurrency;
        let pools = self.pools.clone();
        crate::spawn::in_set(&mut listeners, "delayed worker status", async move {
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
        crate::spawn::in_set(&mut listeners, "delayed worker heartbeats", async move {
            while let Some(message) = beats.next().await {
                let Some(client) = message.subject.rsplit('.').next() else {
                    continue;
                };
                hearing.heard(client, &message.payload);
            }
        });
        let ringing = Arc::clone(&shared);
        let rings = self.pools.iter().map(|pool| names.rings(pool)).collect();
        let ring_client = client.clone();
        crate::spawn::in_set(&mut listeners, "delayed worker doorbells", async move {
            ringing.doorbells.listen(ring_client, rings, bells).await;
        });
        let sweeping = Arc::clone(&shared);
        crate::spawn::in_set(&mut listeners, "delayed worker sweep", async move {
            let period = sweeping.queues.settings.client_timeout / 3;
            loop {
                tokio::time::sleep(period).await;
                sweeping.sweep();
            }
        });
        let mut pullers = JoinSet::new();
        let tasks = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let alone = consumers.len() == 1;
        for (consumer, bell) in consumers {
            crate::spawn::in_set(
                &mut pullers,
                "delayed worker puller",
                pull(
                    Arc::clone(&shared),
                    consumer,
                    bell,
                    Arc::clone(&tasks),
                    alone,
                    stopped.clone(),
                ),
            );
        }
        shutdown.await;
        // Stop pulling; finish what we hold.
        let _ = stop.send(true);
        while pullers.join_next().await.is_some() {}
        let mut held = std::mem::take(&mut *tasks.lock().unwrap_or_else(PoisonError::into_inner));
        while held.join_next().await.is_some() {}
        listeners.abort_all();
        keeping.abort();
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
