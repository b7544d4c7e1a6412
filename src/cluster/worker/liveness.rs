//! What a worker knows of its clients: who was heard from lately, which
//! runs ended, and the reports it sent, to send again.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use async_nats::RequestErrorKind;
use dashmap::mapref::entry::Entry;

use super::Shared;
use crate::cluster::store;
use crate::cluster::wire::{liveness_headers, AliveMsg, PROBE, PURGED};

/// A report sent: to which client, where, what, and when.
pub(super) struct Sent {
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
    pub(super) fn sent(&self, client: String, reply: String, payload: Vec<u8>) {
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
    pub(super) async fn resend(&self, client: &str) {
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
    pub(super) fn heard(self: &Arc<Self>, client: &str, payload: &[u8]) {
        self.clients.insert(client.to_owned(), Instant::now());
        if let Some((_, purged)) = self.dead.remove(client) {
            // Taken for dead (cut off from the server), yet here: its
            // tasks in flight were purged. Told once the purge is over.
            if purged {
                self.tell_purged(client.to_owned());
            }
        }
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
        self.running.retain(|(run, _), (abort, _)| {
            let ended = alive.ended.contains(run);
            if ended {
                abort.abort();
            }
            !ended
        });
    }

    /// Asks the clients that went silent whether they are there (see
    /// [`PROBE`]): one the server finds nobody listening for is dead, its
    /// running tasks stop and what it left is purged. Forgets old run
    /// ends.
    pub(super) fn sweep(self: &Arc<Self>) {
        let timeout = self.queues.settings.client_timeout;
        self.cancelled
            .retain(|_, (when, _)| when.elapsed() < CANCELS_KEPT);
        let keep = self.queues.settings.result_ttl;
        self.ended.retain(|_, when| when.elapsed() < keep);
        if !self.listened(timeout) {
            return;
        }
        let silent: Vec<String> = self
            .clients
            .iter()
            .filter(|seen| seen.value().elapsed() > timeout)
            .map(|seen| seen.key().clone())
            .collect();
        for client in silent {
            if !self.probing.insert(client.clone()) {
                continue;
            }
            let shared = Arc::clone(self);
            crate::spawn::named_task(|| "delayed worker liveness probe".to_string(), async move {
                let there = shared.probe(&client).await;
                shared.probing.remove(&client);
                if there {
                    // Busy, or slow to answer: heard from, for now.
                    shared.clients.insert(client, Instant::now());
                } else {
                    shared.found_dead(client);
                }
            });
        }
    }

    /// Whether `client` is there, as its server says: `false` only when
    /// nobody listens on its report subject. An answer, or none in time
    /// (a busy client, a slow link), counts as there.
    async fn probe(&self, client: &str) -> bool {
        let asking = self.client.request_with_headers(
            self.queues.names.done(client),
            liveness_headers(PROBE),
            Vec::new().into(),
        );
        let answer = tokio::time::timeout(self.queues.settings.client_timeout, asking).await;
        !matches!(answer, Ok(Err(err)) if err.kind() == RequestErrorKind::NoResponders)
    }

    /// `client` is gone: its running tasks stop, none of its tasks start
    /// from now on, and its queued tasks and results are purged.
    fn found_dead(self: &Arc<Self>, client: String) {
        self.clients.remove(&client);
        match self.dead.entry(client.clone()) {
            Entry::Occupied(_) => return,
            Entry::Vacant(vacant) => {
                vacant.insert(false);
            }
        }
        tracing::info!(
            client = %client,
            "a client is gone: its queued tasks and results are deleted"
        );
        let prefix = format!("{client}.");
        self.running.retain(|(run, _), (abort, _)| {
            let theirs = run.starts_with(&prefix);
            if theirs {
                abort.abort();
            }
            !theirs
        });
        let shared = Arc::clone(self);
        crate::spawn::named_task(|| "delayed worker purge".to_string(), async move {
            store::purge_client(&shared.queues, &client).await;
            match shared.dead.get_mut(&client) {
                Some(mut purged) => *purged = true,
                // It came back while we purged.
                None => shared.tell_purged(client),
            }
        });
    }

    /// Tells `client`, which was taken for dead, that its queued tasks
    /// and results were purged.
    fn tell_purged(self: &Arc<Self>, client: String) {
        tracing::info!(
            client = %client,
            "a client taken for dead is back: told its tasks were purged"
        );
        let shared = Arc::clone(self);
        crate::spawn::named_task(|| "delayed worker purge notice".to_string(), async move {
            let _ = shared
                .client
                .publish_with_headers(
                    shared.queues.names.done(&client),
                    liveness_headers(PURGED),
                    Vec::new().into(),
                )
                .await;
        });
    }

    /// A client cancelled a task of a run, as published in message
    /// `sequence` if it says: it stops if it runs here, and does not start
    /// if it waits here, in a batch.
    pub(super) fn cancel(&self, run: String, key: String, sequence: Option<u64>) {
        let id = (run, key);
        let theirs = |held: u64| sequence.is_none_or(|sequence| sequence == held);
        match self.running.remove_if(&id, |_, (_, held)| theirs(*held)) {
            Some((_, (abort, _))) => abort.abort(),
            None => {
                self.cancelled.insert(id, (Instant::now(), sequence));
            }
        }
    }

    /// Whether task `id`, in message `sequence`, was cancelled before it
    /// started; forgets the cancel.
    pub(super) fn was_cancelled(&self, id: &(String, String), sequence: u64) -> bool {
        self.cancelled
            .remove_if(id, |_, (_, cancelled)| {
                cancelled.is_none_or(|cancelled| cancelled == sequence)
            })
            .is_some()
    }

    /// Whether a task of `client` in `run` should not start: its run
    /// ended, or its client is gone. A client this worker never heard
    /// from, though it has listened long enough to, is asked first.
    pub(super) async fn abandoned(self: &Arc<Self>, client: &str, run: &str) -> bool {
        if self.ended.contains_key(run) {
            return true;
        }
        if client.is_empty() {
            return false;
        }
        if self.dead.contains_key(client) {
            return true;
        }
        if self.clients.contains_key(client) || !self.listened(self.queues.settings.client_timeout)
        {
            return false;
        }
        if self.probe(client).await {
            self.clients.insert(client.to_owned(), Instant::now());
            return false;
        }
        self.found_dead(client.to_owned());
        true
    }

    /// Whether this worker has been connected for the last `timeout`
    /// without a break, so a client it did not hear from is silent.
    pub(super) fn listened(&self, timeout: Duration) -> bool {
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

/// How long a worker remembers a cancel for a task that does not run
/// here (it may be waiting in a batch): longer than a batch waits.
const CANCELS_KEPT: std::time::Duration = std::time::Duration::from_secs(60);
