//! The client side: a connected cluster, its runs' bookkeeping (planned
//! arguments, stored results and when to delete them), and the listeners
//! for workers' reports and JetStream's advisories. One remote attempt is
//! in `attempt.rs`.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use dashmap::{DashMap, DashSet};
use futures::StreamExt;
use tokio::sync::oneshot;

use super::setup::{self, Queues};
use super::store;
use super::wire::{result_key, DoneMsg, WorkerOutcome, MAX_DELIVERIES};
use super::ClusterError;
use crate::engine::state::Origin;
use crate::engine::view::NodeView;
use crate::keyed::Registry;

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
    /// Where workers report to this client.
    pub(super) reply: String,
    pub(super) pending: DashMap<(String, String, u32), oneshot::Sender<DoneMsg>>,
    /// Stream sequence of each published task, for the max-deliveries
    /// advisory and for cancelling a queued task.
    pub(super) sequences: DashMap<u64, (String, String, u32)>,
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
    /// Whether we warned that no worker answers, and whether a task is
    /// asking now.
    pub(super) idle_warned: AtomicBool,
    pub(super) checking: AtomicBool,
    pub(super) history: Mutex<Vec<RemoteTask>>,
    pub(super) listeners: Vec<tokio::task::AbortHandle>,
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

    /// A cluster on an already connected client.
    ///
    /// # Errors
    ///
    /// When JetStream is not enabled on the server.
    pub async fn from_client(
        client: async_nats::Client,
        registry: Registry,
    ) -> Result<Cluster, ClusterError> {
        let queues = setup::open(&client).await?;
        let reply = format!("delayed.done.{}", unique_id());
        let subscribe = |subject: String| {
            let client = client.clone();
            async move {
                client.subscribe(subject).await.map_err(|err| {
                    ClusterError::new(format!("cannot subscribe for reports: {err}"))
                })
            }
        };
        let mut reports = subscribe(reply.clone()).await?;
        let mut advisories = subscribe(MAX_DELIVERIES.to_string()).await?;
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let for_reports = weak.clone();
            let reports_task = tokio::spawn(async move {
                while let Some(message) = reports.next().await {
                    let (Ok(done), Some(inner)) = (
                        serde_json::from_slice::<DoneMsg>(&message.payload),
                        for_reports.upgrade(),
                    ) else {
                        continue;
                    };
                    inner.deliver(done);
                }
            });
            let for_advisories = weak.clone();
            let advisories_task = tokio::spawn(async move {
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
            Inner {
                client,
                queues,
                registry,
                reply,
                pending: DashMap::new(),
                sequences: DashMap::new(),
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
                idle_warned: AtomicBool::new(false),
                checking: AtomicBool::new(false),
                history: Mutex::new(Vec::new()),
                listeners: vec![reports_task.abort_handle(), advisories_task.abort_handle()],
            }
        });
        Ok(Cluster { inner })
    }

    /// The tasks workers finished for this client, in order.
    pub fn history(&self) -> Vec<RemoteTask> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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

    /// Plans the arguments of `task`, which runs remotely in `run`: an
    /// input that is a registered call of this run, alone or inside a list
    /// or map, is passed by reference. Inputs that are not planned are
    /// sent by value when the task runs.
    pub(crate) fn plan(&self, task: &NodeView, run: &str, remote: &HashSet<String>) {
        let Some(entry) = self.inner.registry.function(task.name()) else {
            return;
        };
        let deps = task.inputs();
        let mut exporter = crate::keyed::shallow_exporter(&self.inner.registry);
        let mut readers = Vec::new();
        let planned: Vec<_> = deps
            .into_iter()
            .zip(&entry.params)
            .map(|(dep, (_, shape))| {
                let direct = dep.key().to_string();
                let plan = shape
                    .export_node(&crate::keyed::node_of(dep), &mut exporter)
                    .ok()
                    .and_then(|arg| {
                        let mut keys = Vec::new();
                        arg.refs(&mut |key| keys.push(key.to_string()));
                        // Only plans that reach other workers' results are
                        // worth it.
                        let useful =
                            !keys.is_empty() && keys.iter().all(|key| remote.contains(key));
                        useful.then(|| (crate::keyed::arg_to_json(&arg), keys))
                    });
                match plan {
                    Some((json, keys)) => {
                        readers.extend(keys);
                        Some(json)
                    }
                    None => {
                        if remote.contains(&direct) {
                            readers.push(direct);
                        }
                        None
                    }
                }
            })
            .collect();
        let reader = task.key().to_string();
        for key in readers {
            *self
                .inner
                .uses
                .entry((run.to_string(), key.clone()))
                .or_insert(0) += 1;
            self.inner
                .by_ref
                .insert((run.to_string(), reader.clone(), key));
        }
        if planned.iter().any(Option::is_some) {
            self.inner
                .planned
                .insert((run.to_string(), task.key().to_string()), planned);
        }
    }

    /// Whether `task` runs remotely with this cluster.
    pub(crate) fn takes(&self, task: &NodeView) -> bool {
        task.origin() == Origin::Registered && self.inner.registry.function(task.name()).is_some()
    }

    /// Deletes the stored results of `run`.
    pub(crate) fn forget(&self, run: &str) {
        // Before the deletes: a reader here then runs them again.
        self.inner.stored_nodes.retain(|(r, _), task| {
            if r == run {
                task.revert_stored();
            }
            r != run
        });
        self.inner.remote_done.retain(|(r, _)| r != run);
        self.inner.completed.retain(|(r, _)| r != run);
        self.inner.by_ref.retain(|(r, _, _)| r != run);
        self.inner.planned.retain(|(r, _), _| r != run);
        self.inner.uses.retain(|(r, _), _| r != run);
        let names = self
            .inner
            .stored
            .remove(run)
            .map(|(_, names)| names)
            .unwrap_or_default();
        let inner = Arc::clone(&self.inner);
        let run = run.to_string();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                for name in names {
                    store::delete(&inner.queues, &name).await;
                }
                // Results of tasks that finished after the compute let go
                // of them (a sibling failed, or the compute was dropped):
                // purge the run's keys now, and again after 1, 3 and 10 s,
                // when stragglers have had time to finish.
                store::purge_run(&inner.queues, &run).await;
                for wait in [1, 2, 7] {
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    store::purge_run(&inner.queues, &run).await;
                }
            });
        }
    }
}

impl Inner {
    /// A remote task of `run` read the stored results `keys`: delete each
    /// one no other task of the run will read (and the task's own uploads).
    pub(super) fn used(self: &Arc<Self>, run: &str, keys: &[String]) {
        let mut done = Vec::new();
        for key in keys {
            let id = (run.to_string(), key.clone());
            let last = match self.uses.get_mut(&id) {
                Some(mut left) => {
                    *left = left.saturating_sub(1);
                    *left == 0
                }
                // An upload of a big local value: read once.
                None => key.contains('#'),
            };
            if last {
                self.uses.remove(&id);
                // Before the delete: a reader here then runs it again.
                if let Some((_, task)) = self.stored_nodes.remove(&id) {
                    task.revert_stored();
                }
                // Readers that come later send it by value.
                self.remote_done.remove(&id);
                done.push(result_key(run, key));
            }
        }
        if done.is_empty() {
            return;
        }
        if let Some(mut names) = self.stored.get_mut(run) {
            for name in &done {
                names.remove(name);
            }
        }
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            for name in done {
                store::delete(&inner.queues, &name).await;
            }
        });
    }

    /// Warns, once until a worker reports again, when no worker answers
    /// while tasks wait: they stay queued until one starts.
    pub(super) async fn check_for_workers(&self, key: &str) {
        if self.idle_warned.load(Ordering::Relaxed) || self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let none = super::status::list(&self.client)
            .await
            .is_ok_and(|workers| workers.is_empty());
        self.checking.store(false, Ordering::Release);
        if none && !self.idle_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                task.key = key,
                "no worker answers: remote tasks stay queued until a worker starts"
            );
        }
    }

    pub(super) fn deliver(&self, done: DoneMsg) {
        self.idle_warned.store(false, Ordering::Relaxed);
        if let Some((_, tx)) =
            self.pending
                .remove(&(done.run.clone(), done.key.clone(), done.attempt))
        {
            let _ = tx.send(done);
        }
    }

    /// A max-deliveries advisory: the task it names failed for good.
    fn killed(&self, advisory: &serde_json::Value) {
        let Some(sequence) = advisory
            .get("stream_seq")
            .and_then(serde_json::Value::as_u64)
        else {
            return;
        };
        let deliveries = advisory
            .get("deliveries")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let Some((_, (run, key, attempt))) = self.sequences.remove(&sequence) else {
            return;
        };
        // Out of deliveries, it stays in the stream unless we take it out.
        let stream = self.queues.stream.clone();
        tokio::spawn(async move {
            let _ = stream.delete_message(sequence).await;
        });
        self.deliver(DoneMsg {
            run,
            key,
            attempt,
            worker: String::new(),
            delivered: deliveries,
            outcome: WorkerOutcome::Killed { deliveries },
        });
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
