//! What a client listens for and looks after: workers' reports,
//! JetStream's advisories, doorbells to ring, and tasks that waited long
//! (a report lost in a reconnect or on the way, a function no live
//! worker has).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_nats::jetstream::stream::RawMessageErrorKind;

use super::{Inner, Reply, TaskId};
use crate::cluster::store;
use crate::cluster::wire::{result_key, DoneMsg, MovedMsg, TaskMsg, WorkerOutcome};

impl Inner {
    /// Looks at the tasks that have waited a whole `tick`: a task whose
    /// report was lost (the server restarted) but whose result is stored
    /// is done; one whose message is gone with no report runs again; a task whose function no live worker has in its pool gets
    /// a warning, and fails once it has waited `no_worker_timeout`.
    pub(in crate::cluster) async fn watch(&self, tick: Duration) {
        let now = tokio::time::Instant::now();
        let connects = self.connects();
        let waiting: Vec<(TaskId, Arc<str>, &'static str, bool)> = self
            .pending
            .iter()
            .filter(|entry| now.duration_since(entry.since) >= tick)
            .map(|entry| {
                let (id, pending) = entry.pair();
                (
                    id.clone(),
                    Arc::clone(&pending.pool),
                    pending.function,
                    pending.connects != connects,
                )
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        self.rerun_lost(waiting.iter().map(|(id, ..)| id)).await;
        // Only an answer while connected says that no worker is there.
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        let workers = match connected {
            true => crate::cluster::status::list(&self.client, &self.queues.names.workers())
                .await
                .ok(),
            false => None,
        };
        if waiting.iter().any(|(_, _, _, reconnected)| *reconnected) {
            // Reports sent while we were away are lost: ask again.
            let resend = self.queues.names.resend(&self.id);
            let _ = self.client.publish(resend, Vec::new().into()).await;
        }
        for (id, pool, function, reconnected) in waiting {
            let (run, key, _) = &*id;
            let lost = reconnected
                && matches!(
                    store::get(&self.queues, &result_key(run, key)).await,
                    Ok(Some(_))
                );
            if lost {
                let mut done = report_here(&id, WorkerOutcome::Done);
                done.worker = "(report lost)".to_string();
                self.deliver(done);
                continue;
            }
            let Some(workers) = &workers else { continue };
            if workers.iter().any(|w| w.serves(&pool, function)) {
                self.unserved
                    .remove(&(pool.to_string(), function.to_string()));
                if let Some(mut pending) = self.pending.get_mut(&id) {
                    pending.unserved_since = None;
                }
                continue;
            }
            let waited = match self.pending.get_mut(&id) {
                Some(mut pending) => now.duration_since(*pending.unserved_since.get_or_insert(now)),
                None => continue,
            };
            if self
                .unserved
                .insert((pool.to_string(), function.to_string()))
            {
                let why = if workers.is_empty() {
                    "no worker answers".to_string()
                } else {
                    format!(
                        "none of the {} workers that answer runs `{function}` in pool `{pool}`",
                        workers.len()
                    )
                };
                tracing::warn!(
                    task.key = %key,
                    pool = %pool,
                    function,
                    "{why}: remote tasks stay queued until a worker that has it starts, \
                     at most {:?}",
                    self.queues.settings.no_worker_timeout
                );
            }
            if waited >= self.queues.settings.no_worker_timeout {
                let message = format!(
                    "no live worker runs `{function}` in pool `{pool}`: the task waited {:?} \
                     (`Settings::no_worker_timeout`)",
                    self.queues.settings.no_worker_timeout
                );
                self.deliver(report_here(&id, WorkerOutcome::NoWorker { message }));
            }
        }
    }

    /// Rings the doorbell of `function` in `pool` soon: a task of it is
    /// queued. Rings that come while one is sent are one ring.
    pub(in crate::cluster) fn ring(&self, pool: &Arc<str>, function: &'static str) {
        self.to_ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((Arc::clone(pool), function));
        self.ringer.notify_one();
    }

    pub(in crate::cluster) async fn ring_now(&self) {
        let bells =
            std::mem::take(&mut *self.to_ring.lock().unwrap_or_else(PoisonError::into_inner));
        for (pool, function) in bells {
            let bell = self.queues.names.ring(&pool, function);
            let _ = self.client.publish(bell, Vec::new().into()).await;
        }
    }

    /// How many times the connection connected so far.
    pub(in crate::cluster) fn connects(&self) -> u64 {
        self.client.statistics().connects.load(Ordering::Relaxed)
    }

    /// Hands a task's report to its attempt.
    pub(in crate::cluster) fn deliver(&self, done: DoneMsg) {
        let Some((_, pending)) =
            self.pending
                .remove(&(Arc::from(done.run.as_str()), done.key.clone(), done.attempt))
        else {
            return;
        };
        match pending.reply {
            Reply::Channel(tx) => {
                let _ = tx.send(done);
            }
            Reply::Parked(parked) => parked.conclude(done),
        }
    }

    /// Sets up again each task of `waiting` (tasks that waited a whole
    /// tick) whose message is out of the stream, its worker done with it,
    /// yet whose report has not come by the next look: the report was lost
    /// (workers send reports at most once), or the task never ran. Running
    /// a task twice is what at-least-once delivery allows; waiting for it
    /// forever is not.
    async fn rerun_lost(&self, waiting: impl Iterator<Item = &TaskId>) {
        let waiting: HashSet<&TaskId> = waiting.collect();
        let mut messages: Vec<(u64, Vec<TaskId>)> = self
            .sequences
            .iter()
            .filter_map(|entry| {
                let ids: Vec<TaskId> = entry
                    .value()
                    .iter()
                    .filter(|id| waiting.contains(id))
                    .cloned()
                    .collect();
                (!ids.is_empty()).then(|| (*entry.key(), ids))
            })
            .collect();
        messages.truncate(LOST_LOOKS);
        for (sequence, ids) in messages {
            let looked = self.queues.stream.get_raw_message(sequence).await;
            if !matches!(&looked, Err(err) if matches!(err.kind(), RawMessageErrorKind::NoMessageFound))
            {
                continue;
            }
            for id in ids {
                let seen_before = match self.pending.get_mut(&id) {
                    Some(mut pending) => std::mem::replace(&mut pending.lost, true),
                    None => false,
                };
                if seen_before {
                    tracing::warn!(
                        task.key = %id.1,
                        "a remote task's message is done with but its report never came: \
                         it runs again"
                    );
                    self.deliver(report_here(&id, WorkerOutcome::Purged));
                }
            }
        }
    }

    /// A worker published a task of a batch that came back as a message
    /// of its own: the task waits there now.
    pub(in crate::cluster) fn moved(&self, payload: &[u8]) {
        let Ok(moved) = serde_json::from_slice::<MovedMsg>(payload) else {
            return;
        };
        let id: TaskId = Arc::new((Arc::from(moved.run), moved.key, moved.attempt));
        if !self.pending.contains_key(&id) {
            return;
        }
        self.unsequence(moved.from, &id);
        if let Some(mut pending) = self.pending.get_mut(&id) {
            if let Reply::Parked(parked) = &mut pending.reply {
                parked.moved_to(moved.to);
            }
        }
        self.sequenced(moved.to, id);
    }

    /// Answers a worker that asks whether this client is there.
    pub(in crate::cluster) async fn answer_probe(&self, reply: Option<async_nats::Subject>) {
        if let Some(reply) = reply {
            let _ = self.client.publish(reply, Vec::new().into()).await;
        }
    }

    /// A worker took this client for dead (it was cut off from the server
    /// for longer than `client_timeout`) and purged its queued tasks and
    /// its results: every task in flight is set up again, and stored
    /// results are read from their tasks, run again, instead.
    pub(in crate::cluster) fn purged(&self) {
        tracing::warn!(
            client = %self.id,
            "a worker took this client for dead and purged its tasks and results: \
             the tasks in flight run again"
        );
        // Before the tasks go again: what they read is sent by value, and
        // what reads a stored result here runs its task again.
        self.stored_nodes.retain(|_, task| {
            task.revert_stored();
            false
        });
        self.remote_done.clear();
        let in_flight: Vec<TaskId> = self
            .pending
            .iter()
            .map(|entry| entry.key().clone())
            .collect();
        for id in in_flight {
            self.deliver(report_here(&id, WorkerOutcome::Purged));
        }
    }

    /// A max-deliveries advisory: the task it names failed for good.
    pub(in crate::cluster) fn killed(self: &Arc<Self>, advisory: &serde_json::Value) {
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
        // Out of deliveries, it stays in the stream unless we take it out.
        let stream = self.queues.stream.clone();
        let Some((_, tasks)) = self.sequences.remove(&sequence) else {
            // A task a worker published again on its own, out of a batch
            // that came back (see the worker's `split`): its message says
            // whose it is.
            let inner = Arc::clone(self);
            crate::spawn::named_task(|| "delayed cluster redelivery".to_string(), async move {
                let Ok(message) = stream.get_raw_message(sequence).await else {
                    return;
                };
                let prior = crate::cluster::wire::earlier_deliveries(Some(&message.headers));
                if let Ok(task) = TaskMsg::from_wire(&message.payload) {
                    if task.client == inner.id {
                        inner.deliver(killed_report(
                            task.run,
                            task.key,
                            task.attempt,
                            deliveries + prior,
                        ));
                    }
                }
                let _ = stream.delete_message(sequence).await;
            });
            return;
        };
        let inner = Arc::clone(self);
        crate::spawn::named_task(|| "delayed cluster redelivery".to_string(), async move {
            // A task of a batch that came back counts the batch's
            // deliveries too.
            let prior = match stream.get_raw_message(sequence).await {
                Ok(message) => crate::cluster::wire::earlier_deliveries(Some(&message.headers)),
                Err(_) => 0,
            };
            let _ = stream.delete_message(sequence).await;
            for id in tasks {
                let (run, key, attempt) = (*id).clone();
                inner.deliver(killed_report(
                    run.to_string(),
                    key,
                    attempt,
                    deliveries + prior,
                ));
            }
        });
    }
}

/// The most messages of tasks waiting long that one look checks.
const LOST_LOOKS: usize = 1024;

/// The report of a task whose every delivery's worker died.
fn killed_report(run: String, key: String, attempt: u32, deliveries: u64) -> DoneMsg {
    DoneMsg {
        run,
        key,
        attempt,
        worker: String::new(),
        delivered: deliveries,
        outcome: WorkerOutcome::Killed { deliveries },
        value: None,
    }
}

/// A report of task `id` that this client makes itself, with no worker.
fn report_here(id: &TaskId, outcome: WorkerOutcome) -> DoneMsg {
    let (run, key, attempt) = &**id;
    DoneMsg {
        run: run.to_string(),
        key: key.clone(),
        attempt: *attempt,
        worker: String::new(),
        delivered: 0,
        outcome,
        value: None,
    }
}
