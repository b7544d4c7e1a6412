//! Pulling a consumer's tasks: when its doorbell rings, in batches of the
//! worker's free slots.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use tokio::task::JoinSet;

use super::task::handle;
use super::Shared;

/// The most tasks one pull asks for.
const BATCH: usize = 64;

/// Pulls the tasks of one consumer until told to stop: when its doorbell
/// rings, and once a second (for redeliveries, and rings that were lost),
/// it takes what is queued, in batches of as many as the worker has free
/// slots for, until the queue is empty. Each task runs in `tasks`,
/// holding its slot. Slots are held only for a pull's round trip, and
/// only free slots are asked for: a task taken and handed back would
/// count as a delivery.
pub(super) async fn pull(
    shared: Arc<Shared>,
    consumer: PullConsumer,
    bell: Arc<tokio::sync::Notify>,
    tasks: Arc<std::sync::Mutex<JoinSet<()>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        // Drain.
        loop {
            if *stop.borrow() {
                return;
            }
            let first = tokio::select! {
                _ = stop.changed() => return,
                permit = Arc::clone(&shared.slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let mut slots = vec![first];
            while slots.len() < BATCH {
                match Arc::clone(&shared.slots).try_acquire_owned() {
                    Ok(permit) => slots.push(permit),
                    Err(_) => break,
                }
            }
            let asked = slots.len();
            // No wait: what is queued now, at once.
            let fetched = consumer.fetch().max_messages(asked).messages().await;
            let mut batch = match fetched {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot fetch tasks; retrying");
                    drop(slots);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            while let Some(next) = batch.next().await {
                match next {
                    Ok(message) => {
                        let Some(slot) = slots.pop() else { break };
                        let shared = Arc::clone(&shared);
                        let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
                        tasks.spawn(async move {
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
            if !slots.is_empty() {
                // Fewer than asked: the queue is empty.
                break;
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = bell.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
