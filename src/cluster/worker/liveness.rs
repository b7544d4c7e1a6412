//! What a worker knows of its clients: who was heard from lately, which
//! runs ended, and the reports it sent, to send again.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::Shared;
use crate::cluster::store;
use crate::cluster::wire::AliveMsg;

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
    pub(super) fn heard(&self, client: &str, payload: &[u8]) {
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
    pub(super) fn sweep(self: &Arc<Self>) {
        let timeout = self.queues.settings.client_timeout;
        self.cancelled
            .retain(|_, when| when.elapsed() < CANCELS_KEPT);
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

    /// A client cancelled a task of a run: it stops if it runs here, and
    /// does not start if it waits here, in a batch.
    pub(super) fn cancel(&self, run: String, key: String) {
        let id = (run, key);
        match self.running.remove(&id) {
            Some((_, abort)) => abort.abort(),
            None => {
                self.cancelled.insert(id, Instant::now());
            }
        }
    }

    /// Whether a task of `client` in `run` should not start: its run
    /// ended, or its client is dead (not heard from within the timeout,
    /// though we have listened that long).
    pub(super) fn abandoned(&self, client: &str, run: &str) -> bool {
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
