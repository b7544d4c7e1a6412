//! Tasks published together. While a publish to a subject is in flight,
//! the tasks queued behind it for the same subject (one function, pool
//! and run) wait, and go as one message when it returns: a wide fan-out
//! is a few hundred messages, each stored once, and a lone task goes at
//! once, alone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Inner, TaskId};
use crate::cluster::wire;

/// The most tasks one message holds: few enough that the tasks of a
/// fan-out spread over the workers (a worker of concurrency 1 runs a
/// message's tasks one after another).
const MOST_TASKS: usize = 8;

/// The most bytes one message holds, if the settings allow that many.
const MOST_BYTES: usize = 64 * 1024;

/// The tasks waiting to be published, by subject. A subject is here while
/// a flush for it runs.
pub(in crate::cluster) type Outbox = std::sync::Mutex<HashMap<String, VecDeque<Queued>>>;

/// The doorbell a subject's tasks ring: their pool and function.
pub(in crate::cluster) type Bell = (Arc<str>, &'static str);

/// A task waiting to be published.
pub(in crate::cluster) struct Queued {
    /// Its run, cut short if nobody waits for it when it is published.
    run: Arc<str>,
    /// Unique to this task's publish, the same across its retries.
    id: String,
    payload: Vec<u8>,
    /// Its trace context, if any (see `trace.rs`).
    traceparent: Option<String>,
    /// Told the stream sequence of the message that holds it.
    tx: oneshot::Sender<Result<u64, String>>,
}

impl Inner {
    /// Notes that message `sequence` holds task `id`.
    pub(in crate::cluster) fn sequenced(&self, sequence: u64, id: TaskId) {
        self.sequences.entry(sequence).or_default().push(id);
    }

    /// Notes that task `id` no longer waits in message `sequence`: true
    /// if no task of it does.
    pub(in crate::cluster) fn unsequence(
        &self,
        sequence: u64,
        id: &(Arc<str>, String, u32),
    ) -> bool {
        let dashmap::mapref::entry::Entry::Occupied(mut tasks) = self.sequences.entry(sequence)
        else {
            return true;
        };
        tasks.get_mut().retain(|task| **task != *id);
        if tasks.get().is_empty() {
            tasks.remove();
            return true;
        }
        false
    }

    /// Publishes a task (its payload and trace context) with the others
    /// queued for `subject`, returning the stream sequence of the message
    /// that holds it.
    pub(in crate::cluster) async fn publish_task(
        self: &Arc<Self>,
        (subject, bell): (String, Bell),
        run: Arc<str>,
        id: String,
        (payload, traceparent): (Vec<u8>, Option<String>),
    ) -> Result<u64, String> {
        let mut payload = Some(payload);
        let mut traceparent = Some(traceparent);
        let behind = {
            let mut outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
            match outbox.get_mut(&subject) {
                Some(queue) => {
                    // A publish to this subject is in flight: wait behind it.
                    let (tx, rx) = oneshot::channel();
                    queue.push_back(Queued {
                        run,
                        id: id.clone(),
                        payload: payload.take().unwrap_or_default(),
                        traceparent: traceparent.take().flatten(),
                        tx,
                    });
                    Some(rx)
                }
                None => {
                    outbox.insert(subject.clone(), VecDeque::new());
                    None
                }
            }
        };
        if let Some(rx) = behind {
            return rx
                .await
                .map_err(|_| "the cluster dropped the publish".to_string())?;
        }
        // Nothing in flight: this task goes at once, alone. Whatever queues
        // behind it meanwhile is flushed after it, in a task of its own,
        // even if this caller is dropped.
        let _lead = Lead {
            inner: Arc::clone(self),
            subject: subject.clone(),
            bell: bell.clone(),
        };
        let payload = payload.unwrap_or_default();
        let traceparent = traceparent.flatten();
        let message = (payload, traceparent.as_deref());
        publish(self, (&subject, &bell), &format!("{id}+1"), message).await
    }
}

/// The publish that goes first to a subject: when it ends, or is dropped,
/// it hands what queued behind it to a flush.
struct Lead {
    inner: Arc<Inner>,
    subject: String,
    bell: Bell,
}

impl Drop for Lead {
    fn drop(&mut self) {
        let mut outbox = self
            .inner
            .outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if outbox.get(&self.subject).is_some_and(VecDeque::is_empty) {
            outbox.remove(&self.subject);
            return;
        }
        drop(outbox);
        let subject = std::mem::take(&mut self.subject);
        let bell = self.bell.clone();
        let inner = Arc::clone(&self.inner);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                crate::spawn::named_on(
                    &handle,
                    "delayed cluster publish",
                    flush(inner, subject, bell),
                );
            }
            Err(_) => {
                // No runtime left to publish on: the queued tasks fail.
                inner
                    .outbox
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&subject);
            }
        }
    }
}

/// Publishes what is queued for `subject`, a message at a time, until
/// nothing is.
async fn flush(inner: Arc<Inner>, subject: String, bell: Bell) {
    let most_bytes = MOST_BYTES.min(inner.queues.settings.max_message);
    loop {
        let batch: Vec<Queued> = {
            let mut outbox = inner.outbox.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(queue) = outbox.get_mut(&subject) else {
                return;
            };
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some(next) = queue.front() {
                let fits = bytes + 4 + next.payload.len() <= most_bytes;
                if !batch.is_empty() && (batch.len() == MOST_TASKS || !fits) {
                    break;
                }
                bytes += 4 + next.payload.len();
                batch.extend(queue.pop_front());
            }
            if batch.is_empty() {
                outbox.remove(&subject);
                return;
            }
            batch
        };
        let payloads: Vec<Vec<u8>> = batch.iter().map(|q| q.payload.clone()).collect();
        // The first task's id names the message: unique to it, the same
        // across its retries.
        let id = format!("{}+{}", batch[0].id, batch.len());
        // The header holds a trace context the whole batch shares.
        let shared = batch[0].traceparent.as_deref();
        let traceparent = shared.filter(|first| {
            batch
                .iter()
                .all(|queued| queued.traceparent.as_deref() == Some(first))
        });
        let message = (wire::batch(&payloads), traceparent);
        let published = publish(&inner, (&subject, &bell), &id, message).await;
        for queued in batch {
            if queued.tx.send(published.clone()).is_err() && published.is_ok() {
                // Queued, then dropped: its run cleans the queue up.
                inner.cut_short.insert(queued.run.to_string());
            }
        }
    }
}

/// Publishes a message of tasks, and the trace context they share if
/// any, retrying for a while if the server is away (it may be
/// restarting); returns its stream sequence. `id` names this publish, so
/// that JetStream drops a second copy sent because the first one's ack
/// was lost.
///
/// The doorbell rings once the message is written, not once the server
/// acknowledged it: the ack's trip back and the ring's trip out overlap.
/// The ring follows the message on the same connection, so the server
/// has the task before any worker hears the ring (a worker waits a
/// little for a task the stream has not stored yet; see `pull.rs`).
async fn publish(
    inner: &Inner,
    (subject, bell): (&str, &Bell),
    id: &str,
    (payload, traceparent): (Vec<u8>, Option<&str>),
) -> Result<u64, String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    if let Some(traceparent) = traceparent {
        headers.insert(crate::cluster::trace::HEADER, traceparent);
    }
    crate::cluster::patiently(20, Duration::from_secs(2), || async {
        let ack = inner
            .queues
            .js
            .publish_with_headers(subject.to_string(), headers.clone(), payload.clone().into())
            .await
            .map_err(|err| format!("cannot publish the task: {err}"))?;
        inner.ring(&bell.0, bell.1);
        ack.await
            .map(|ack| ack.sequence)
            .map_err(|err| format!("the task was not stored: {err}"))
    })
    .await
}
