//! A worker's doorbells, heard only while one of its consumers waits for
//! one.
//!
//! Clients ring a function's doorbell after they queue a task of it. An
//! idle worker does not need the ring: it holds a pull open, and the
//! server hands it the task at once. So the worker subscribes to its
//! doorbells only while some consumer has no slot to hold a pull with,
//! and the server drops the rings nobody listens to: a lone task on an
//! idle worker costs no ring to deliver, hear and wake for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{watch, Notify};

/// Who wants the doorbells, and whether the worker hears them now. Both
/// change under one lock, so a consumer that starts waiting while the
/// worker is subscribed can count on staying subscribed.
#[derive(Clone, Copy, Default)]
struct State {
    /// Consumers that wait for a ring.
    waiting: usize,
    /// Whether the worker is subscribed to its doorbells.
    subscribed: bool,
}

/// The doorbells of one worker.
pub(super) struct Doorbells {
    state: watch::Sender<State>,
}

/// A consumer waiting for its doorbell; the worker stops hearing the
/// doorbells once no consumer waits.
pub(super) struct Waiting {
    state: watch::Sender<State>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.state.send_modify(|state| state.waiting -= 1);
    }
}

impl Doorbells {
    pub(super) fn new() -> Doorbells {
        Doorbells {
            state: watch::Sender::new(State::default()),
        }
    }

    /// Starts waiting for a doorbell. True with it if the worker was not
    /// subscribed: a task queued before [`subscribed`](Self::subscribed)
    /// returns rang nobody, so the caller looks at its queue once more.
    pub(super) fn wait(&self) -> (Waiting, bool) {
        let mut fresh = false;
        self.state.send_modify(|state| {
            state.waiting += 1;
            fresh = !state.subscribed;
        });
        let waiting = Waiting {
            state: self.state.clone(),
        };
        (waiting, fresh)
    }

    /// Returns once the worker hears its doorbells.
    pub(super) async fn subscribed(&self) {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|state| state.subscribed).await;
    }

    /// Hears `subjects` (each pool's doorbells) while some consumer waits,
    /// and wakes the consumer whose bell (in `bells`, by subject) rang.
    pub(super) async fn listen(
        &self,
        client: async_nats::Client,
        subjects: Vec<String>,
        bells: HashMap<String, Arc<Notify>>,
    ) {
        let mut state = self.state.subscribe();
        loop {
            if state.wait_for(|state| state.waiting > 0).await.is_err() {
                return;
            }
            let mut rings = Vec::with_capacity(subjects.len());
            for subject in &subjects {
                match client.subscribe(subject.clone()).await {
                    Ok(subscription) => rings.push(subscription),
                    Err(err) => tracing::warn!(error = %err, "cannot hear the doorbells"),
                }
            }
            if rings.len() < subjects.len() {
                // Waiting consumers look at their queues every second
                // meanwhile.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let mut rings = futures::stream::select_all(rings);
            self.state.send_modify(|state| state.subscribed = true);
            loop {
                tokio::select! {
                    ring = rings.next() => match ring {
                        Some(ring) => {
                            if let Some(bell) = bells.get(ring.subject.as_str()) {
                                bell.notify_one();
                            }
                        }
                        None => break,
                    },
                    changed = state.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let mut done = false;
                        self.state.send_if_modified(|state| {
                            done = state.waiting == 0;
                            state.subscribed &= !done;
                            done
                        });
                        if done {
                            break;
                        }
                    }
                }
            }
            // Dropping the subscriptions unsubscribes.
            self.state.send_modify(|state| state.subscribed = false);
        }
    }
}
