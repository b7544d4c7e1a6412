//! The client side: a connected cluster, its runs' bookkeeping (planned
//! arguments, stored results and when to delete them), and the listeners
//! for workers' reports and JetStream's advisories. One remote attempt is
//! in `attempt.rs`.

use crate::spawn;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use dashmap::{DashMap, DashSet};
use futures::StreamExt;
use tokio::sync::oneshot;

use super::settings::Settings;
use super::setup::{self, Queues};
use super::wire::{self, AliveMsg, DoneMsg};
use super::ClusterError;
use crate::engine::view::NodeView;
use crate::keyed::Registry;

mod outbox;
mod runs;
mod watch;

/// A connection to a NATS JetStream server with workers behind it.
///
/// Compute with `Options::new().cluster(&cluster)` and every node that
/// calls a function of this cluster's registry runs on a worker; other
/// nodes run here. Cheap to clone.
///
/// ```no_run
/// use delayed::{cluster::Cluster, delayed, Options};
///
/// #[delayed(register)]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = Cluster::connect("nats://127.0.0.1:4222", delayed::registry![inc]).await?;
/// let two = inc(inc(0));
/// assert_eq!(two.compute_with(Options::new().cluster(&cluster)).await?, 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cluster {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) client: async_nats::Client,
    pub(super) queues: Queues,
    pub(super) registry: Registry,
    /// This client's id: the first part of its runs' ids.
    pub(super) id: String,
    /// Runs started, to number the next.
    pub(super) runs: AtomicU64,
    /// The runs not ended yet.
    pub(super) live: DashSet<String>,
    /// Room for the tasks that build and publish their message now.
    pub(super) publishing: tokio::sync::Semaphore,
    /// Runs some of whose tasks were dropped before they reported.
    pub(super) cut_short: DashSet<String>,
    /// Where workers report to this client.
    pub(super) reply: String,
    /// Boxed: a big compute's tasks in flight fill the map, whose slots
    /// then stay small.
    pub(super) pending: DashMap<TaskId, Box<Pending>>,
    /// The tasks each message in the stream holds that still wait for
    /// their report, by stream sequence: for the max-deliveries advisory,
    /// and for taking a message out of the queue when all its tasks were
    /// dropped.
    pub(super) sequences: DashMap<u64, Vec<TaskId>>,
    /// Tasks waiting to be published, by subject.
    pub(super) outbox: outbox::Outbox,
    /// Remote runs submitted with no task of their own, waiting for their
    /// turn to build and publish their message.
    pub(super) submitted: Mutex<crate::cluster::parked::Submitted>,
    /// Results of each run that are in the store.
    pub(super) stored: DashMap<String, HashSet<String>>,
    /// Keys of the run that finished remotely, by run.
    pub(super) remote_done: DashSet<(String, String)>,
    /// Arguments planned when the run started, by (run, key): registered
    /// inputs, even inside lists and maps, by reference, so that their
    /// values go from worker to worker through the store.
    pub(super) planned: DashMap<(String, String), Vec<Option<serde_json::Value>>>,
    /// Remote tasks of the run still to read each stored result, by (run,
    /// key): at zero the result is deleted, not kept to the end.
    pub(super) uses: DashMap<(String, String), usize>,
    /// Which remote task of a run reads which stored result by reference:
    /// (run, reader, input).
    pub(super) by_ref: DashSet<(String, String, String)>,
    /// Remote tasks of each run that finished, by (run, key): one that
    /// runs again sends its inputs by value.
    pub(super) completed: DashSet<(String, String)>,
    /// Nodes whose result stays in the store, by (run, key): reverted when
    /// the result is deleted.
    pub(super) stored_nodes: DashMap<(String, String), NodeView>,
    /// Results read back here, and their bytes.
    pub(super) downloads: AtomicU64,
    pub(super) downloaded: AtomicU64,
    /// Tasks published, to tell one publish from another.
    pub(super) published: AtomicU64,
    pub(super) history: Mutex<History>,
    /// The doorbells to ring: (pool, function) pairs with newly queued
    /// tasks, and what wakes the ringer.
    pub(super) to_ring: Mutex<HashSet<(Arc<str>, &'static str)>>,
    pub(super) ringer: Arc<tokio::sync::Notify>,
    /// The (pool, function) pairs we warned that no worker has.
    pub(super) unserved: DashSet<(String, String)>,
    pub(super) listeners: Vec<tokio::task::AbortHandle>,
}

/// How many tasks build and publish their message at once: enough to keep
/// the connection busy, few enough that a big compute's tasks waiting to
/// publish hold little memory.
pub(super) const PUBLISHING: usize = 256;

/// A remote attempt: its run, key and attempt number, shared by the
/// tables that hold it.
pub(super) type TaskId = Arc<(Arc<str>, String, u32)>;

/// A published task waiting for its report.
pub(super) struct Pending {
    /// Where its report goes.
    pub(super) reply: Reply,
    pub(super) pool: Arc<str>,
    pub(super) function: &'static str,
    pub(super) since: tokio::time::Instant,
    /// Since when no live worker has been seen that runs it.
    pub(super) unserved_since: Option<tokio::time::Instant>,
    /// The connection's connect count when it was published: a report
    /// can be lost only if the client reconnected since.
    pub(super) connects: u64,
    /// Found out of the stream with no report, at the last look (see
    /// `Inner::rerun_lost`).
    pub(super) lost: bool,
}

/// Where a task's report goes.
pub(super) enum Reply {
    /// To the future that awaits it.
    Channel(oneshot::Sender<DoneMsg>),
    /// Straight to the end of its run, which no future here awaits.
    Parked(Box<crate::cluster::parked::Parked>),
}

/// The last tasks workers finished for this client, at most as many as
/// the settings keep.
#[derive(Default)]
pub(super) struct History {
    pub(super) tasks: std::collections::VecDeque<RemoteTask>,
    pub(super) limit: usize,
}

impl History {
    pub(super) fn push(&mut self, task: RemoteTask) {
        if self.limit == 0 {
            return;
        }
        if self.tasks.len() == self.limit {
            self.tasks.pop_front();
        }
        self.tasks.push_back(task);
    }
}

/// One task a worker finished for this client: which worker, and how many
/// deliveries it took.
///
/// # Examples
///
/// ```no_run
/// # async fn show(cluster: &delayed::cluster::Cluster) {
/// for task in cluster.history() {
///     println!("{} ran on {} (delivered {} times)", task.key(), task.worker(), task.delivered());
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteTask {
    pub(super) key: String,
    pub(super) worker: String,
    pub(super) delivered: u64,
    pub(super) ok: bool,
}

impl RemoteTask {
    /// The task's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The name of the worker that finished it.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// How many times JetStream delivered it: more than 1 when a worker
    /// died (or stalled) and the task went to another; 0 when unknown
    /// (the report was lost in a server restart, and the result was found
    /// in the store).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether it succeeded.
    pub fn succeeded(&self) -> bool {
        self.ok
    }
}

/// Results a client read back from the store: see [`Cluster::downloads`].
///
/// # Examples
///
/// ```no_run
/// # async fn show(cluster: &delayed::cluster::Cluster) {
/// assert!(cluster.downloads().bytes() >= cluster.downloads().results());
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Downloads {
    results: u64,
    bytes: u64,
}

impl Downloads {
    /// How many results.
    pub fn results(&self) -> u64 {
        self.results
    }

    /// Their size as stored (JSON), in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Cluster {
    /// Connects to the NATS server at `url`, or to one of several, comma
    /// separated (`"nats://a:4222,nats://b:4222"`: give every server of a
    /// NATS cluster, so that any one may be down); `registry` says which
    /// functions run remotely.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or JetStream is not enabled.
    pub async fn connect(url: &str, registry: Registry) -> Result<Cluster, ClusterError> {
        Cluster::connect_with(async_nats::ConnectOptions::new(), url, registry).await
    }

    /// [`connect`](Cluster::connect) with connection options: a token, a
    /// user and password, an nkey, a credentials file, TLS.
    ///
    /// # Errors
    ///
    /// As for [`connect`](Cluster::connect).
    pub async fn connect_with(
        options: async_nats::ConnectOptions,
        url: &str,
        registry: Registry,
    ) -> Result<Cluster, ClusterError> {
        let client = super::connect(options, url).await?;
        Cluster::from_client(client, registry).await
    }

    /// A cluster on an already connected client, with the default
    /// [`Settings`].
    ///
    /// # Errors
    ///
    /// When JetStream is not enabled on the server.
    pub async fn from_client(
        client: async_nats::Client,
        registry: Registry,
    ) -> Result<Cluster, ClusterError> {
        Cluster::from_client_with(client, registry, Settings::default()).await
    }

    /// A cluster on an already connected client, with `settings`: its
    /// namespace, limits and periods.
    ///
    /// # Errors
    ///
    /// When JetStream is not enabled on the server, or the namespace is
    /// not a valid name.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use delayed::cluster::{async_nats, Cluster, Settings};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let settings = Settings::new().namespace("reports-v2");
    /// let cluster = Cluster::from_client_with(client, delayed::keyed::Registry::new(), settings).await?;
    /// # let _ = cluster;
    /// # Ok(()) }
    /// ```
    pub async fn from_client_with(
        client: async_nats::Client,
        registry: Registry,
        settings: Settings,
    ) -> Result<Cluster, ClusterError> {
        let queues = setup::open(&client, &settings).await?;
        let id = unique_id();
        let reply = queues.names.done(&id);
        let subscribe = |subject: String| {
            let client = client.clone();
            async move {
                client.subscribe(subject).await.map_err(|err| {
                    ClusterError::new(format!("cannot subscribe for reports: {err}"))
                })
            }
        };
        let mut reports = subscribe(reply.clone()).await?;
        let mut advisories = subscribe(queues.names.max_deliveries()).await?;
        let alive = queues.names.alive(&id);
        let beat = settings.client_timeout / 3;
        let tick = settings
            .ack_wait
            .min(settings.no_worker_timeout / 4)
            .max(Duration::from_millis(100));
        let history = settings.history;
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let for_reports = weak.clone();
            let reports_task =
                spawn::named_task(|| "delayed cluster reports".to_string(), async move {
                    while let Some(message) = reports.next().await {
                        let Some(inner) = for_reports.upgrade() else {
                            return;
                        };
                        match wire::liveness(message.headers.as_ref()) {
                            Some(wire::PROBE) => inner.answer_probe(message.reply).await,
                            Some(wire::PURGED) => inner.purged(),
                            Some(wire::MOVED) => inner.moved(&message.payload),
                            Some(_) => {}
                            None => {
                                if let Ok(done) = DoneMsg::from_wire(&message.payload) {
                                    inner.deliver(done);
                                }
                            }
                        }
                    }
                });
            let for_advisories = weak.clone();
            let advisories_task =
                spawn::named_task(|| "delayed cluster advisories".to_string(), async move {
                    while let Some(message) = advisories.next().await {
                        let (Ok(advisory), Some(inner)) = (
                            serde_json::from_slice::<serde_json::Value>(&message.payload),
                            for_advisories.upgrade(),
                        ) else {
                            continue;
                        };
                        inner.killed(&advisory);
                    }
                });
            // Heartbeats: workers start no task of a client they have not
            // heard from within `client_timeout`.
            let heart = client.clone();
            let heartbeat_task =
                spawn::named_task(|| "delayed cluster heartbeat".to_string(), async move {
                    let beat_msg = serde_json::to_vec(&AliveMsg::default()).unwrap_or_default();
                    loop {
                        let _ = heart.publish(alive.clone(), beat_msg.clone().into()).await;
                        tokio::time::sleep(beat).await;
                    }
                });
            let for_ringer = weak.clone();
            let ringer = Arc::new(tokio::sync::Notify::new());
            let woken = Arc::clone(&ringer);
            let ringer_task =
                spawn::named_task(|| "delayed cluster doorbell".to_string(), async move {
                    loop {
                        woken.notified().await;
                        let Some(inner) = for_ringer.upgrade() else {
                            return;
                        };
                        inner.ring_now().await;
                    }
                });
            let for_watch = weak.clone();
            let watch_task =
                spawn::named_task(|| "delayed cluster watch".to_string(), async move {
                    loop {
                        tokio::time::sleep(tick).await;
                        let Some(inner) = for_watch.upgrade() else {
                            return;
                        };
                        inner.watch(tick).await;
                    }
                });
            Inner {
                client,
                queues,
                registry,
                id,
                runs: AtomicU64::new(0),
                live: DashSet::new(),
                publishing: tokio::sync::Semaphore::new(PUBLISHING),
                cut_short: DashSet::new(),
                reply,
                pending: DashMap::new(),
                sequences: DashMap::new(),
                outbox: Mutex::new(HashMap::new()),
                submitted: Mutex::default(),
                stored: DashMap::new(),
                remote_done: DashSet::new(),
                planned: DashMap::new(),
                uses: DashMap::new(),
                by_ref: DashSet::new(),
                completed: DashSet::new(),
                stored_nodes: DashMap::new(),
                downloads: AtomicU64::new(0),
                downloaded: AtomicU64::new(0),
                published: AtomicU64::new(0),
                history: Mutex::new(History {
                    tasks: Default::default(),
                    limit: history,
                }),
                unserved: DashSet::new(),
                to_ring: Mutex::new(HashSet::new()),
                ringer,
                listeners: vec![
                    reports_task.abort_handle(),
                    advisories_task.abort_handle(),
                    heartbeat_task.abort_handle(),
                    ringer_task.abort_handle(),
                    watch_task.abort_handle(),
                ],
            }
        });
        Ok(Cluster { inner })
    }

    /// The last tasks workers finished for this client, in order: at most
    /// [`Settings::history`] of them (1,000 unless told).
    pub fn history(&self) -> Vec<RemoteTask> {
        let history = self
            .inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        history.tasks.iter().cloned().collect()
    }

    /// The settings this cluster was opened with.
    pub fn settings(&self) -> &Settings {
        &self.inner.queues.settings
    }

    /// A new run's id: this client's id and a number.
    pub(crate) fn new_run(&self) -> String {
        let n = self.inner.runs.fetch_add(1, Ordering::Relaxed);
        let run = format!("{}.{n}", self.inner.id);
        self.inner.live.insert(run.clone());
        run
    }

    /// What this client has read back from the store: results a node here
    /// (or the compute's output) needed. Results that only other workers
    /// read go from worker to worker and are not counted.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn show(cluster: &delayed::cluster::Cluster) {
    /// let read = cluster.downloads();
    /// println!("{} results, {} bytes", read.results(), read.bytes());
    /// # }
    /// ```
    pub fn downloads(&self) -> Downloads {
        Downloads {
            results: self.inner.downloads.load(Ordering::Relaxed),
            bytes: self.inner.downloaded.load(Ordering::Relaxed),
        }
    }

    /// The NATS connection.
    pub(crate) fn nats(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// The registry of the functions that run remotely.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

/// An id no other client (or run) is likely to have: the process, the
/// time and a random hasher seed.
pub(crate) fn unique_id() -> String {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()));
    format!("{:x}{seed:016x}", std::process::id())
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("reply", &self.inner.reply)
            .field("registry", &self.inner.registry)
            .finish()
    }
}
