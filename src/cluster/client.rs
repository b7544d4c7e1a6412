//! The client side: a connected cluster, and the remote attempt that a
//! node's policy driver runs instead of its body.

use std::any::Any;
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
use super::wire::{
    result_key, CancelMsg, DoneMsg, Outcome, TaskMsg, CANCEL, INLINE_RESULT, MAX_DELIVERIES, TASKS,
};
use super::ClusterError;
use crate::drive::Made;
use crate::keyed::Registry;
use crate::listeners::Listener;
use crate::task::{Origin, Task};
use crate::Error;

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
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    queues: Queues,
    registry: Registry,
    /// Where workers report to this client.
    reply: String,
    pending: DashMap<(String, String, u32), oneshot::Sender<DoneMsg>>,
    /// Stream sequence of each published task, for the max-deliveries
    /// advisory and for cancelling a queued task.
    sequences: DashMap<u64, (String, String, u32)>,
    /// Results of each run that are in the store.
    stored: DashMap<String, HashSet<String>>,
    /// Keys of the run that finished remotely, by run.
    remote_done: DashSet<(String, String)>,
    /// Arguments planned when the run started, by (run, key): registered
    /// inputs, even inside lists and maps, by reference, so that their
    /// values go from worker to worker through the store.
    planned: DashMap<(String, String), Vec<Option<serde_json::Value>>>,
    /// Remote tasks of the run still to read each stored result, by (run,
    /// key): at zero the result is deleted, not kept to the end.
    uses: DashMap<(String, String), usize>,
    /// Nodes whose result stays in the store, by (run, key): reverted when
    /// the result is deleted.
    hollow: DashMap<(String, String), Arc<dyn Task>>,
    /// Results read back here, and their bytes.
    downloads: AtomicU64,
    downloaded: AtomicU64,
    /// Tasks published, to tell one publish from another.
    published: AtomicU64,
    /// Whether we warned that no worker answers, and whether a task is
    /// asking now.
    idle_warned: AtomicBool,
    checking: AtomicBool,
    history: Mutex<Vec<RemoteTask>>,
    listeners: Vec<tokio::task::AbortHandle>,
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
    key: String,
    worker: String,
    delivered: u64,
    ok: bool,
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
                hollow: DashMap::new(),
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
    pub(crate) fn plan(&self, task: &Arc<dyn Task>, run: &str, remote: &HashSet<String>) {
        let Some(entry) = self.inner.registry.function(task.core().name()) else {
            return;
        };
        let deps: Vec<_> = task.core().lock().deps.iter().cloned().collect();
        let mut exporter = crate::keyed::shallow_exporter(&self.inner.registry);
        let mut readers = Vec::new();
        let planned: Vec<_> = deps
            .into_iter()
            .zip(&entry.params)
            .map(|(dep, (_, shape))| {
                let direct = dep.core().key().to_string();
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
        for key in readers {
            *self.inner.uses.entry((run.to_string(), key)).or_insert(0) += 1;
        }
        if planned.iter().any(Option::is_some) {
            self.inner
                .planned
                .insert((run.to_string(), task.core().key().to_string()), planned);
        }
    }

    /// Whether `task` runs remotely with this cluster.
    pub(crate) fn takes(&self, task: &Arc<dyn Task>) -> bool {
        task.core().origin == Origin::Registered
            && self.inner.registry.function(task.core().name()).is_some()
    }

    /// Deletes the stored results of `run`.
    pub(crate) fn forget(&self, run: &str) {
        // Before the deletes: a reader here then runs them again.
        self.inner.hollow.retain(|(r, _), task| {
            if r == run {
                crate::hollow::revert(task);
            }
            r != run
        });
        self.inner.remote_done.retain(|(r, _)| r != run);
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

    /// Runs one attempt of `task` on a worker, returning its output, or
    /// leaving it in the store when only remote tasks of the run read it.
    pub(crate) async fn run(
        &self,
        task: Arc<dyn Task>,
        run: Arc<str>,
        attempt: u32,
    ) -> Result<Made<Box<dyn Any + Send>>, Error> {
        let inner = &self.inner;
        let key = task.core().key();
        let key_text = key.to_string();
        let name = task.core().name();
        let Some(entry) = inner.registry.function(name) else {
            return Err(Error::runtime(
                key,
                format!("`{name}` is not in the cluster's registry"),
            ));
        };
        let fail = |message: String| Error::runtime(task.core().key(), message);
        // Arguments: a reference for an input a worker made in this run,
        // the value for any other (uploaded when big).
        let deps: Vec<_> = task.core().lock().deps.iter().cloned().collect();
        let planned = inner
            .planned
            .get(&(run.to_string(), key_text.clone()))
            .map(|planned| planned.clone())
            .unwrap_or_default();
        let mut args = Vec::with_capacity(deps.len());
        let mut exporter = crate::keyed::inline_exporter(&inner.registry);
        for (i, (dep, (param, shape))) in deps.into_iter().zip(&entry.params).enumerate() {
            let dep_key = dep.core().key().to_string();
            let plan = planned.get(i).cloned().flatten().filter(|plan| {
                // Every input it refers to must be in the store by now.
                let mut stored = true;
                crate::keyed::arg_from_json(plan.clone()).refs(&mut |key| {
                    stored &= inner
                        .remote_done
                        .contains(&(run.to_string(), key.to_string()));
                });
                stored
            });
            let mut json = match plan {
                Some(plan) => plan,
                None if inner
                    .remote_done
                    .contains(&(run.to_string(), dep_key.clone())) =>
                {
                    crate::keyed::arg_to_json(&crate::keyed::Arg::Ref(dep_key))
                }
                None => {
                    // Sent by value: read back first if it is hollow.
                    if !crate::hollow::materialize(std::slice::from_ref(&dep)).await? {
                        return Ok(Made::Again);
                    }
                    crate::keyed::arg_to_json(
                        &shape
                            .export_node(&crate::keyed::node_of(dep), &mut exporter)
                            .map_err(|message| fail(format!("argument `{param}`: {message}")))?,
                    )
                }
            };
            if json.to_string().len() > INLINE_RESULT {
                let upload = format!("{key_text}#{i}");
                let name = result_key(&run, &upload);
                store::put(&inner.queues, &name, &json)
                    .await
                    .map_err(fail)?;
                inner
                    .stored
                    .entry(run.to_string())
                    .or_default()
                    .insert(name);
                json = crate::keyed::arg_to_json(&crate::keyed::Arg::Ref(upload));
            }
            args.push(json);
        }
        let mut sent = Vec::new();
        for arg in &args {
            crate::keyed::arg_from_json(arg.clone()).refs(&mut |key| sent.push(key.to_string()));
        }
        let message = TaskMsg {
            run: run.to_string(),
            key: key_text.clone(),
            attempt,
            function: name.to_string(),
            args,
            reply: inner.reply.clone(),
        };
        let payload = serde_json::to_vec(&message).map_err(|err| fail(err.to_string()))?;
        let id = (run.to_string(), key_text.clone(), attempt);
        let (tx, rx) = oneshot::channel();
        inner.pending.insert(id.clone(), tx);
        let mut guard = Outstanding {
            inner: Arc::clone(inner),
            id: Some(id.clone()),
            sequence: None,
        };
        // Unique to this publish, the same across its retries: a node can
        // run again in the same run (a stored result it made was deleted).
        let message_id = format!(
            "{}.{attempt}.{}",
            result_key(&run, &key_text),
            inner.published.fetch_add(1, Ordering::Relaxed)
        );
        let ack = publish(inner, &message_id, payload).await.map_err(fail)?;
        inner.sequences.insert(ack, id);
        guard.sequence = Some(ack);
        let done = wait(inner, rx, &run, &key_text, attempt)
            .await
            .map_err(fail)?;
        guard.id = None;
        inner.sequences.remove(&ack);
        let ok = matches!(done.outcome, Outcome::Done);
        inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(RemoteTask {
                key: key_text.clone(),
                worker: done.worker.clone(),
                delivered: done.delivered,
                ok,
            });
        match done.outcome {
            Outcome::Done => {
                inner.used(&run, &sent);
                inner
                    .stored
                    .entry(run.to_string())
                    .or_default()
                    .insert(result_key(&run, &key_text));
                inner
                    .remote_done
                    .insert((run.to_string(), key_text.clone()));
                if only_remote_readers(&task, &run) {
                    inner.hollow.insert((run.to_string(), key_text), task);
                    return Ok(Made::Stored(Some(super::Remote {
                        cluster: self.clone(),
                        run,
                    })));
                }
                self.download(&task, &run).await.map(Made::Value)
            }
            Outcome::Failed { message } => Err(Error::failed(key, Arc::new(Remote(message)))),
            Outcome::Panic { message } => Err(Error::panic(key, Box::new(message))),
            Outcome::Invalid { message } => Err(Error::invalid(key, message)),
            Outcome::Killed { deliveries } => Err(Error::failed(
                key,
                Arc::new(Remote(format!(
                    "its worker died on each of {deliveries} deliveries (KilledWorker)"
                ))),
            )),
        }
    }
}

impl Cluster {
    /// Reads the stored result of `task` in `run` back here.
    pub(crate) async fn download(
        &self,
        task: &Arc<dyn Task>,
        run: &str,
    ) -> Result<Box<dyn Any + Send>, Error> {
        let key = task.core().key();
        let fail = |message: String| Error::runtime(key.clone(), message);
        let name = task.core().name();
        let entry = self
            .inner
            .registry
            .function(name)
            .ok_or_else(|| fail(format!("`{name}` is not in the cluster's registry")))?;
        let (value, bytes) = read(&self.inner, &result_key(run, &key.to_string()))
            .await
            .map_err(fail)?;
        self.inner.downloads.fetch_add(1, Ordering::Relaxed);
        self.inner.downloaded.fetch_add(bytes, Ordering::Relaxed);
        (entry.decode)(value)
            .map_err(|message| fail(format!("the worker's result does not read back: {message}")))
    }
}

/// Whether every node waiting for `task` is a remote task of `run`, or a
/// join that only such tasks wait for: then they read its result by
/// reference, and it stays in the store (the node becomes hollow).
fn only_remote_readers(task: &Arc<dyn Task>, run: &str) -> bool {
    let readers = |task: &Arc<dyn Task>| -> Option<Vec<Arc<dyn Task>>> {
        let st = task.core().lock();
        st.listeners
            .as_slice()
            .iter()
            .map(|listener| match listener {
                Listener::Node(reader, _) => Some(Arc::clone(reader)),
                Listener::Waker(_) => None,
            })
            .collect()
    };
    let remote_in_run = |task: &Arc<dyn Task>| {
        task.core()
            .lock()
            .policy
            .as_ref()
            .and_then(|policy| policy.remote.as_ref())
            .is_some_and(|remote| &*remote.run == run)
    };
    let Some(direct) = readers(task).filter(|readers| !readers.is_empty()) else {
        return false;
    };
    direct.iter().all(|reader| {
        if reader.core().origin != Origin::Join {
            return remote_in_run(reader);
        }
        readers(reader)
            .filter(|readers| !readers.is_empty())
            .is_some_and(|readers| readers.iter().all(remote_in_run))
    })
}

/// Publishes a task, retrying for a while if the server is away (it may
/// be restarting); returns the task's stream sequence. `id` names this
/// publish, so that JetStream drops a second copy sent because the first
/// one's ack was lost.
async fn publish(inner: &Inner, id: &str, payload: Vec<u8>) -> Result<u64, String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    super::patiently(20, Duration::from_secs(2), || async {
        let ack = inner
            .queues
            .js
            .publish_with_headers(TASKS, headers.clone(), payload.clone().into())
            .await
            .map_err(|err| format!("cannot publish the task: {err}"))?;
        ack.await
            .map(|ack| ack.sequence)
            .map_err(|err| format!("the task was not stored: {err}"))
    })
    .await
}

/// Reads a stored result and its size, retrying for a while if the
/// server is away.
async fn read(inner: &Inner, name: &str) -> Result<(serde_json::Value, u64), String> {
    super::patiently(20, Duration::from_secs(2), || {
        store::get_sized(&inner.queues, name)
    })
    .await?
    .ok_or_else(|| "the worker's result is not in the store".to_string())
}

/// Waits for the worker's report. A report can be lost while the server
/// restarts; the result, stored before the report, is then found in the
/// store when we look.
async fn wait(
    inner: &Inner,
    mut report: oneshot::Receiver<DoneMsg>,
    run: &str,
    key: &str,
    attempt: u32,
) -> Result<DoneMsg, String> {
    loop {
        tokio::select! {
            done = &mut report => {
                return done.map_err(|_| "the cluster connection closed".to_string());
            }
            () = tokio::time::sleep(super::setup::ACK_WAIT) => {
                if let Ok(Some(_)) = store::get(&inner.queues, &result_key(run, key)).await {
                    return Ok(DoneMsg {
                        run: run.to_string(),
                        key: key.to_string(),
                        attempt,
                        worker: "(report lost)".to_string(),
                        delivered: 0,
                        outcome: Outcome::Done,
                    });
                }
                inner.check_for_workers(key).await;
            }
        }
    }
}

impl Inner {
    /// A remote task of `run` read the stored results `keys`: delete each
    /// one no other task of the run will read (and the task's own uploads).
    fn used(self: &Arc<Self>, run: &str, keys: &[String]) {
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
                if let Some((_, task)) = self.hollow.remove(&id) {
                    crate::hollow::revert(&task);
                }
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
    async fn check_for_workers(&self, key: &str) {
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

    fn deliver(&self, done: DoneMsg) {
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
            outcome: Outcome::Killed { deliveries },
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

/// A published task nobody has heard back from. Dropped (the compute was
/// cancelled, or timed out), it takes the task out of the queue if no
/// worker has it yet, and asks the worker that has it to stop.
struct Outstanding {
    inner: Arc<Inner>,
    id: Option<(String, String, u32)>,
    sequence: Option<u64>,
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        self.inner.pending.remove(&id);
        if let Some(sequence) = self.sequence {
            self.inner.sequences.remove(&sequence);
        }
        let inner = Arc::clone(&self.inner);
        let sequence = self.sequence;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Some(sequence) = sequence {
                    let _ = inner.queues.stream.delete_message(sequence).await;
                }
                let cancel = CancelMsg {
                    run: id.0,
                    key: id.1,
                };
                if let Ok(payload) = serde_json::to_vec(&cancel) {
                    let _ = inner.client.publish(CANCEL, payload.into()).await;
                }
            });
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

/// An error a worker reported for a task.
#[derive(Debug)]
struct Remote(String);

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Remote {}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("reply", &self.inner.reply)
            .field("registry", &self.inner.registry)
            .finish()
    }
}
