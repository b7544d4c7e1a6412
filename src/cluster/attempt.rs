//! One remote attempt of a node: its arguments sent by value or by
//! reference, the task published, the worker's report awaited, and the
//! result read back, or left in the store when only remote tasks read it.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::client::{Inner, Pending, RemoteTask, Reply, TaskId};
use super::placement::RunOn;
use super::settings::{check_name, DEFAULT_POOL};
use super::store;
use super::wire::{result_key, CancelMsg, TaskMsg, WorkerOutcome};
use super::Cluster;
use crate::engine::hooks::{AnyOutput, Made, OutputStore};
use crate::engine::state::Origin;
use crate::engine::view::{self, NodeView};
use crate::Error;

/// A published task waiting for its report: what the rest of its attempt
/// needs, and nothing else, since every task in flight holds one.
pub(super) struct Waiting {
    pub(super) rx: oneshot::Receiver<super::wire::DoneMsg>,
    pub(super) guard: Outstanding,
    /// The stream sequence of its message.
    pub(super) ack: u64,
    /// The results it reads by reference.
    pub(super) sent: Vec<String>,
}

/// What sending a task led to.
pub(super) enum Sent {
    Waiting(Waiting),
    /// An input went away before it could be sent: the run starts again.
    Again,
}

impl Cluster {
    /// Runs one attempt of `task` on a worker, returning its output, or
    /// leaving it in the store when only remote tasks of the run read it.
    ///
    /// Sending and finishing are futures of their own, boxed: a task
    /// waiting for its report holds only its [`Waiting`].
    pub(crate) async fn run(
        &self,
        on: &Arc<RunOn>,
        task: NodeView,
        attempt: u32,
    ) -> Result<Made<AnyOutput>, Error> {
        // At most `PUBLISHING` tasks build and publish their message at
        // once; the others wait here, before their sending future exists.
        let publishing = self
            .inner
            .publishing
            .acquire()
            .await
            .map_err(|_| Error::runtime(task.key(), "the cluster is closed"))?;
        let id = Arc::new((Arc::clone(&on.run), task.key().to_string(), attempt));
        let sent = Box::pin(self.send(on, &task, id)).await;
        drop(publishing);
        let mut waiting = match sent? {
            Sent::Waiting(waiting) => waiting,
            Sent::Again => return Ok(Made::Again),
        };
        let done = (&mut waiting.rx)
            .await
            .map_err(|_| Error::runtime(task.key(), "the cluster connection closed"))?;
        Box::pin(self.finish(on, task, waiting, done)).await
    }

    /// Builds the message of attempt `id` of `task`, sending its
    /// arguments by value or by reference, and publishes it.
    pub(super) async fn send(
        &self,
        on: &Arc<RunOn>,
        task: &NodeView,
        id: TaskId,
    ) -> Result<Sent, Error> {
        let attempt = id.2;
        let run = Arc::clone(&on.run);
        let inner = &self.inner;
        let key = task.key();
        let key_text = key.to_string();
        let name = task.name();
        let Some(entry) = inner.registry.function(name) else {
            return Err(Error::runtime(
                key,
                format!("`{name}` is not in the cluster's registry"),
            ));
        };
        let fail = |message: String| Error::runtime(task.key(), message);
        let pool = task.pool().unwrap_or_else(|| DEFAULT_POOL.into());
        if let Err(err) = check_name("pool", &pool) {
            return Err(Error::invalid(key, err.to_string()));
        }
        // Arguments: a reference for an input a worker made in this run,
        // the value for any other (uploaded when big).
        let deps = task.inputs();
        // A node that runs again in the same run (a result it made was
        // deleted, and something here wanted it) sends every input by
        // value: the store keeps an input for the reads counted when the
        // run was planned, one per reader.
        let again = inner
            .completed
            .contains(&(run.to_string(), key_text.clone()));
        let planned = inner
            .planned
            .get(&(run.to_string(), key_text.clone()))
            .filter(|_| !again)
            .map(|planned| planned.clone())
            .unwrap_or_default();
        let mut args = Vec::with_capacity(deps.len());
        let mut uploaded = Vec::new();
        let (mut binary, mut blobs) = (Vec::new(), Vec::new());
        // The results this task reads by reference, uploaded arguments'
        // included: each is one of the reads counted for that result.
        let mut sent = Vec::new();
        let mut exporter = crate::keyed::inline_exporter(&inner.registry);
        for (i, (dep, (param, shape))) in deps.into_iter().zip(&entry.params).enumerate() {
            let dep_key = dep.key().to_string();
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
                None if !again
                    && inner
                        .remote_done
                        .contains(&(run.to_string(), dep_key.clone())) =>
                {
                    crate::keyed::arg_to_json(&crate::keyed::Arg::Ref(dep_key))
                }
                None => {
                    // Sent by value: read back first if it is stored.
                    if !Box::pin(view::read_back(std::slice::from_ref(&dep))).await? {
                        return Ok(Sent::Again);
                    }
                    let node = crate::keyed::node_of(dep);
                    // In postcard when the input holds the parameter's
                    // value, as the inputs of registered calls do.
                    if let Some(bytes) = shape.to_bytes(&node) {
                        let bytes = bytes
                            .map_err(|message| fail(format!("argument `{param}`: {message}")))?;
                        binary.push(i);
                        if bytes.len() > inner.queues.settings.inline_result {
                            let upload = format!("{key_text}#{i}");
                            let name = result_key(&run, &upload);
                            Box::pin(store::put_result(&inner.queues, &name, "", &bytes))
                                .await
                                .map_err(fail)?;
                            inner.stored_as(&run, name);
                            sent.push(upload.clone());
                            uploaded.push(i);
                            args.push(crate::keyed::arg_to_json(&crate::keyed::Arg::Ref(upload)));
                        } else {
                            blobs.push(bytes);
                            args.push(serde_json::Value::Null);
                        }
                        continue;
                    }
                    crate::keyed::arg_to_json(
                        &shape
                            .export_node(&node, &mut exporter)
                            .map_err(|message| fail(format!("argument `{param}`: {message}")))?,
                    )
                }
            };
            crate::keyed::arg_from_json(json.clone()).refs(&mut |key| sent.push(key.to_string()));
            if json.to_string().len() > inner.queues.settings.inline_result {
                let upload = format!("{key_text}#{i}");
                let name = result_key(&run, &upload);
                Box::pin(store::put(&inner.queues, &name, &json))
                    .await
                    .map_err(fail)?;
                inner.stored_as(&run, name);
                json = crate::keyed::arg_to_json(&crate::keyed::Arg::Ref(upload));
                uploaded.push(i);
            }
            args.push(json);
        }
        let message = TaskMsg {
            client: inner.id.clone(),
            run: run.to_string(),
            key: key_text.clone(),
            attempt,
            function: name.to_string(),
            args,
            uploaded,
            reply: inner.reply.clone(),
            keep: inner
                .uses
                .contains_key(&(run.to_string(), key_text.clone())),
            binary,
            blobs,
            traceparent: super::trace::current(),
        };
        let payload = message.to_wire().map_err(|err| fail(err.to_string()))?;
        let (tx, rx) = oneshot::channel();
        inner.pending.insert(
            Arc::clone(&id),
            Box::new(Pending {
                reply: Reply::Channel(tx),
                pool: Arc::clone(&pool),
                function: name,
                since: tokio::time::Instant::now(),
                unserved_since: None,
                connects: inner.connects(),
                lost: false,
            }),
        );
        let mut guard = Outstanding {
            inner: Arc::clone(inner),
            id: Some(Arc::clone(&id)),
            sequence: None,
        };
        // Unique to this publish, the same across its retries: a node can
        // run again in the same run (a stored result it made was deleted).
        let message_id = format!(
            "{}.{attempt}.{}",
            result_key(&run, &key_text),
            inner.published.fetch_add(1, Ordering::Relaxed)
        );
        let subject = inner.queues.names.task(&pool, name, &run);
        let ack = inner
            .publish_task(
                (subject, (Arc::clone(&pool), name)),
                Arc::clone(&run),
                message_id,
                (payload, message.traceparent),
            )
            .await
            .map_err(fail)?;
        inner.sequenced(ack, id);
        guard.sequence = Some(ack);
        Ok(Sent::Waiting(Waiting {
            rx,
            guard,
            ack,
            sent,
        }))
    }

    /// Ends an attempt with the worker's report: its output, here or left
    /// in the store, or its error.
    async fn finish(
        &self,
        on: &Arc<RunOn>,
        task: NodeView,
        waiting: Waiting,
        done: super::wire::DoneMsg,
    ) -> Result<Made<AnyOutput>, Error> {
        let Waiting {
            mut guard,
            ack,
            sent,
            ..
        } = waiting;
        guard.id = None;
        match self.reported(on, &task, ack, &sent, done) {
            Reported::Made(made) => made,
            Reported::Download => Box::pin(self.download(&task, &on.run))
                .await
                .map(Made::Value),
        }
    }

    /// What the worker's report of `task` (its message's stream sequence
    /// `ack`, the stored results it read `sent`) ends its attempt with:
    /// all but reading its result back from the store.
    pub(super) fn reported(
        &self,
        on: &Arc<RunOn>,
        task: &NodeView,
        ack: u64,
        sent: &[String],
        done: super::wire::DoneMsg,
    ) -> Reported {
        let inner = &self.inner;
        let run = Arc::clone(&on.run);
        let key = task.key();
        let key_text = key.to_string();
        inner.unsequence(ack, &(Arc::clone(&run), key_text.clone(), done.attempt));
        let ok = matches!(done.outcome, WorkerOutcome::Done);
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
        let made = match done.outcome {
            WorkerOutcome::Done if done.value.is_some() => {
                inner.used(&run, sent);
                inner.completed.insert((run.to_string(), key_text.clone()));
                let value = done.value.unwrap_or_default();
                self.decode(task, &value).map(Made::Value)
            }
            WorkerOutcome::Done => {
                inner.used(&run, sent);
                inner.completed.insert((run.to_string(), key_text.clone()));
                inner.stored_as(&run, result_key(&run, &key_text));
                inner
                    .remote_done
                    .insert((run.to_string(), key_text.clone()));
                if !only_remote_readers(inner, on, task, &run) {
                    return Reported::Download;
                }
                inner
                    .stored_nodes
                    .insert((run.to_string(), key_text), task.clone());
                Ok(Made::Stored(Some(Arc::clone(on) as Arc<dyn OutputStore>)))
            }
            WorkerOutcome::Failed { message } => {
                Err(Error::failed(key, Arc::new(WorkerError(message))))
            }
            WorkerOutcome::Panic { message } => Err(Error::panic(key, Box::new(message))),
            WorkerOutcome::Invalid { message } => Err(Error::invalid(key, message)),
            WorkerOutcome::Killed { deliveries } => Err(Error::killed(key, deliveries)),
            // Its message is gone unrun: it goes again.
            WorkerOutcome::Purged => Ok(Made::Again),
            WorkerOutcome::NoWorker { message } => {
                // No worker will take it: out of the queue.
                let stream = inner.queues.stream.clone();
                crate::spawn::named_task(|| "delayed cluster dequeue".to_string(), async move {
                    let _ = stream.delete_message(ack).await;
                });
                Err(Error::invalid(key, message))
            }
        };
        Reported::Made(made)
    }
}

/// What a worker's report ends an attempt with.
pub(super) enum Reported {
    Made(Result<Made<AnyOutput>, Error>),
    /// The result is in the store and something here reads it: it is
    /// read back first.
    Download,
}

impl Cluster {
    /// Reads the stored result of `task` in `run` back here.
    pub(crate) async fn download(&self, task: &NodeView, run: &str) -> Result<AnyOutput, Error> {
        let key = task.key();
        let (_, bytes) = read(&self.inner, &result_key(run, &key.to_string()))
            .await
            .map_err(|message| Error::runtime(key, message))?;
        self.decode(task, &bytes)
    }

    /// Decodes the result of `task`, postcard bytes read back or carried
    /// in its report, and counts what crossed.
    fn decode(&self, task: &NodeView, bytes: &[u8]) -> Result<AnyOutput, Error> {
        let key = task.key();
        let name = task.name();
        let entry = self.inner.registry.function(name).ok_or_else(|| {
            Error::runtime(
                key.clone(),
                format!("`{name}` is not in the cluster's registry"),
            )
        })?;
        self.inner.downloads.fetch_add(1, Ordering::Relaxed);
        self.inner
            .downloaded
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        (entry.decode_bytes)(bytes).map_err(|message| {
            Error::runtime(
                key,
                format!("the worker's result does not read back: {message}"),
            )
        })
    }
}

/// Whether every node waiting for `task` is a remote task of `run` that
/// reads its result by reference, directly or through a join that only
/// such tasks wait for: then its result stays in the store (the node
/// is done with its output stored), kept for the reads counted when the run was planned.
fn only_remote_readers(inner: &Inner, on: &Arc<RunOn>, task: &NodeView, run: &str) -> bool {
    let executor = on.executor();
    let input = task.key().to_string();
    let reads_by_ref = |reader: &NodeView| {
        reader.runs_on(&executor)
            && inner
                .by_ref
                .contains(&(run.to_string(), reader.key().to_string(), input.clone()))
    };
    let Some(direct) = task.dependents().filter(|readers| !readers.is_empty()) else {
        return false;
    };
    direct.iter().all(|reader| {
        if reader.origin() != Origin::Join {
            return reads_by_ref(reader);
        }
        reader
            .dependents()
            .filter(|readers| !readers.is_empty())
            .is_some_and(|readers| readers.iter().all(reads_by_ref))
    })
}

/// Reads a stored result and its size, retrying for a while if the
/// server is away.
async fn read(inner: &Inner, name: &str) -> Result<(String, Vec<u8>), String> {
    super::patiently(20, Duration::from_secs(2), || {
        store::get_result(&inner.queues, name)
    })
    .await?
    .ok_or_else(|| "the worker's result is not in the store".to_string())
}

/// A published task nobody has heard back from. Dropped (the compute was
/// cancelled, or timed out), it takes the task out of the queue if no
/// worker has it yet, and asks the worker that has it to stop.
pub(super) struct Outstanding {
    pub(super) inner: Arc<Inner>,
    pub(super) id: Option<TaskId>,
    pub(super) sequence: Option<u64>,
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        self.inner.pending.remove(&id);
        self.inner.abandon(id, self.sequence, None);
    }
}

impl Inner {
    /// Gives up published task `id`, whose message has stream sequence
    /// `sequence` once known: its message is taken out of the queue if no
    /// other task it holds is still waiting, and the worker that has it is
    /// asked to stop. `keep` is dropped once that is done, not here.
    pub(super) fn abandon(
        self: &Arc<Self>,
        id: TaskId,
        sequence: Option<u64>,
        keep: Option<Box<dyn Send>>,
    ) {
        self.cut_short.insert(id.0.to_string());
        let published = sequence;
        let sequence = sequence.filter(|&sequence| self.unsequence(sequence, &id));
        let inner = Arc::clone(self);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        crate::spawn::named_on(&handle, "delayed cluster cancel", async move {
            drop(keep);
            // Dropped with its whole compute, the run's end stops it
            // with all the others at once: one purge, one broadcast.
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !inner.live.contains(&*id.0) {
                return;
            }
            if let Some(sequence) = sequence {
                let _ = inner.queues.stream.delete_message(sequence).await;
            }
            let cancel = CancelMsg {
                run: id.0.to_string(),
                key: id.1.clone(),
                sequence: published,
            };
            if let Ok(payload) = serde_json::to_vec(&cancel) {
                let subject = inner.queues.names.cancel();
                let _ = inner.client.publish(subject, payload.into()).await;
            }
        });
    }
}

/// An error a worker reported for a task.
#[derive(Debug)]
struct WorkerError(String);

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkerError {}
