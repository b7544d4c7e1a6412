//! Pulling a consumer's tasks: in batches of the worker's free slots while
//! there are any; when the queue is empty, a pull held open for the next
//! task, or its doorbell.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;

use super::task::handle;
use super::Shared;
use crate::cluster::wire;

/// The most tasks one pull asks for.
const BATCH: usize = 64;

/// How long an idle pull stays open, and how often a consumer without one
/// looks at its queue anyway (for redeliveries, and rings that were lost).
const IDLE: Duration = Duration::from_secs(1);

/// How long a consumer woken by its doorbell waits for the task it rang
/// for. Clients ring as soon as the task is written, so the stream may
/// not have stored it yet when the worker asks; and another worker may
/// have taken it, so the slot is not held for long.
const RUNG: Duration = Duration::from_millis(50);

/// Where a worker runs the tasks it pulled.
type Tasks = Arc<std::sync::Mutex<JoinSet<()>>>;

/// Pulls the tasks of one consumer until told to stop. While tasks are
/// queued it takes them in batches of as many as the worker has free
/// slots for; each runs in `tasks`, holding its slot. Only free slots are
/// asked for: a task taken and handed back would count as a delivery.
///
/// When the queue is empty, it holds a pull for one task open, with one
/// slot, so that the next task reaches it at once; it does so only if
/// another slot stays free for the worker's other consumers (or it has
/// none), since the slot is held while nothing runs. Otherwise it waits
/// for its doorbell, which the clients ring when they queue tasks, and
/// which the worker hears only while some consumer waits for it (see
/// `doorbell.rs`); a ring gets a pull held open for [`RUNG`], since the
/// client rings before the stream acknowledged the task.
pub(super) async fn pull(
    shared: Arc<Shared>,
    consumer: PullConsumer,
    bell: Arc<tokio::sync::Notify>,
    tasks: Tasks,
    alone: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut drain = true;
    // Tasks per message at the last fetch.
    let mut per = 1;
    // Held while this consumer waits for its doorbell rather than a pull.
    let mut waiting = None;
    loop {
        if drain && !drain_queue(&shared, &consumer, &tasks, &mut per, &mut stop).await {
            return;
        }
        if *stop.borrow() {
            return;
        }
        drain = match idle_slot(&shared, alone) {
            // Not cut short by a stop: a task the server sends it runs here.
            Some(slot) => {
                waiting = None;
                hold(&shared, &consumer, &tasks, slot, IDLE).await
            }
            None if waiting.is_none() => {
                let (wait, fresh) = shared.doorbells.wait();
                waiting = Some(wait);
                if fresh {
                    // What was queued before the worker heard the
                    // doorbells rang nobody: look once more.
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = shared.doorbells.subscribed() => {}
                        () = tokio::time::sleep(IDLE) => {}
                    }
                }
                fresh
            }
            None => {
                let rung = tokio::select! {
                    _ = stop.changed() => return,
                    () = bell.notified() => true,
                    () = tokio::time::sleep(IDLE) => false,
                };
                if !rung {
                    // Redeliveries, and rings that were lost.
                    true
                } else {
                    let slot = tokio::select! {
                        _ = stop.changed() => return,
                        permit = Arc::clone(&shared.slots).acquire_owned() => match permit {
                            Ok(permit) => permit,
                            Err(_) => return,
                        },
                    };
                    hold(&shared, &consumer, &tasks, slot, RUNG).await
                }
            }
        };
    }
}

/// Takes what is queued, in batches of the free slots, until the queue
/// is empty. False when told to stop.
async fn drain_queue(
    shared: &Arc<Shared>,
    consumer: &PullConsumer,
    tasks: &Tasks,
    per: &mut usize,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    loop {
        if *stop.borrow() {
            return false;
        }
        let first = tokio::select! {
            _ = stop.changed() => return false,
            permit = Arc::clone(&shared.slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return false,
            },
        };
        let mut slots = vec![first];
        while slots.len() < BATCH {
            match Arc::clone(&shared.slots).try_acquire_owned() {
                Ok(permit) => slots.push(permit),
                Err(_) => break,
            }
        }
        // A message may hold several tasks: ask for as many messages as
        // the free slots take at the last fetch's tasks per message, and
        // leave the other slots free for those tasks.
        let asked = slots.len().div_ceil(*per).max(1);
        slots.truncate(asked);
        // No wait: what is queued now, at once.
        match consumer.fetch().max_messages(asked).messages().await {
            Ok(batch) => {
                let got = run_all(shared, tasks, batch, &mut slots).await;
                if got.messages > 0 {
                    *per = got.tasks.div_ceil(got.messages).max(1);
                }
                if got.pending == Some(0) {
                    // The server says nothing more is queued.
                    return true;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot fetch tasks; retrying");
                drop(slots);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        if !slots.is_empty() {
            // Fewer than asked: the queue is empty.
            return true;
        }
    }
}

/// A slot for a pull held open while idle: only if another stays free,
/// or this is the worker's only consumer.
fn idle_slot(shared: &Arc<Shared>, alone: bool) -> Option<OwnedSemaphorePermit> {
    let slot = Arc::clone(&shared.slots).try_acquire_owned().ok()?;
    (alone || shared.slots.available_permits() > 0).then_some(slot)
}

/// Holds a pull open for the next task, up to `wait`; it returns as
/// soon as one is queued. True if a task came and more may follow: not
/// when the server says none is queued behind it, so that a lone task
/// costs one pull.
async fn hold(
    shared: &Arc<Shared>,
    consumer: &PullConsumer,
    tasks: &Tasks,
    slot: OwnedSemaphorePermit,
    wait: Duration,
) -> bool {
    let mut slots = vec![slot];
    match consumer
        .fetch()
        .max_messages(1)
        .expires(wait)
        .messages()
        .await
    {
        Ok(batch) => {
            let got = run_all(shared, tasks, batch, &mut slots).await;
            got.messages > 0 && got.pending != Some(0)
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot fetch tasks; retrying");
            drop(slots);
            tokio::time::sleep(Duration::from_millis(200)).await;
            false
        }
    }
}

/// What a fetched batch brought.
struct Got {
    messages: usize,
    /// The tasks those messages held.
    tasks: usize,
    /// How many messages the server had queued behind the last one.
    pending: Option<u64>,
}

/// Runs each message of a fetched batch in `tasks`, holding one of
/// `slots`.
async fn run_all(
    shared: &Arc<Shared>,
    tasks: &Tasks,
    mut batch: async_nats::jetstream::consumer::pull::Batch,
    slots: &mut Vec<OwnedSemaphorePermit>,
) -> Got {
    let mut got = Got {
        messages: 0,
        tasks: 0,
        pending: None,
    };
    while let Some(next) = batch.next().await {
        match next {
            Ok(message) => {
                let Some(slot) = slots.pop() else { break };
                got.messages += 1;
                got.tasks += wire::tasks_of(&message.payload).map_or(1, |tasks| tasks.len());
                got.pending = message.info().ok().map(|info| info.pending);
                let shared = Arc::clone(shared);
                let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
                crate::spawn::in_set(&mut tasks, "delayed worker message", async move {
                    handle(&shared, message).await;
                    drop(slot);
                });
                while tasks.try_join_next().is_some() {}
            }
            Err(err) => tracing::warn!(error = %err, "cannot receive a task"),
        }
        if slots.is_empty() {
            break;
        }
    }
    got
}
