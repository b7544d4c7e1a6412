//! The policy driver: runs a node's body under its limit, timeout and
//! retries, as an async task (or in place, for the sequential scheduler).
//!
//! Nodes without such a policy never come here: they keep the fast paths
//! in `body.rs`.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;

use futures::future::{Either, MapOk};
use futures::TryFutureExt;

use tracing::Instrument;

use crate::body::{report, Unstarted};
use crate::error::Error;
use crate::inputs::Inputs;
use crate::node::{Begun, Body, Node};
use crate::observe::{self, Watched};
use crate::policy::Policy;
use crate::secede::{self, Holder, Holding};
use crate::task::Task;
use crate::{run, schedule, spans};

/// Runs a started node through the driver in a task of its own.
pub(crate) fn spawn<T, B>(node: Arc<Node<T, B>>, begun: Begun, queue: &mut Vec<Arc<dyn Task>>)
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    let epoch = begun.epoch;
    let handle = match run::current() {
        Ok(handle) => handle,
        Err(message) => {
            let err = Error::runtime(node.core.key(), message);
            return node.settle(epoch, Err(err), queue);
        }
    };
    let task_node = Arc::clone(&node);
    // Dropped unfinished (the runtime shut down), the task hands the node
    // back; after our own abort the guard does nothing.
    let guard = Unstarted::running(Arc::clone(&node) as Arc<dyn Task>, epoch);
    let join = handle.spawn(async move {
        let mut guard = guard;
        let result = run(&task_node, begun, false, &mut guard.watched).await;
        guard.disarm();
        let mut ready = Vec::new();
        conclude(&task_node, epoch, result, &mut ready);
        run::drain(&mut ready);
    });
    node.set_abort(epoch, join.abort_handle());
}

/// Runs a node that the sequential scheduler claimed, in place.
pub(crate) async fn here<T, B>(node: Arc<Node<T, B>>)
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    let Some(begun) = node.begin(true, false) else {
        return;
    };
    let epoch = begun.epoch;
    let mut guard = HandBack {
        task: Some(Arc::clone(&node) as Arc<dyn Task>),
        epoch,
        watched: None,
    };
    let result = run(&node, begun, true, &mut guard.watched).await;
    #[cfg(feature = "nats")]
    if matches!(result, Ok(Made::Again)) {
        // The guard hands the node back; the sequential compute sees it
        // idle and sets it up again.
        return;
    }
    guard.task = None;
    let mut ready = Vec::new();
    conclude(&node, epoch, result, &mut ready);
    run::dispatch(ready, None);
}

/// What one run of the driver made.
pub(crate) enum Made<T> {
    Value(T),
    /// Left where it is, and the node is hollow (see `hollow.rs`): in a
    /// cluster's store, or, for a join (`None`), in its inputs.
    #[cfg(feature = "nats")]
    Stored(Option<crate::cluster::Remote>),
    /// An input it found hollow was reverted before it could be read: the
    /// run must be set up again.
    #[cfg(feature = "nats")]
    Again,
}

/// Settles run `epoch` of `node` with what it made.
fn conclude<T, B>(
    node: &Arc<Node<T, B>>,
    epoch: u32,
    result: Result<Made<T>, Error>,
    ready: &mut Vec<Arc<dyn Task>>,
) where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    match result {
        Ok(Made::Value(value)) => node.settle(epoch, Ok(value), ready),
        Err(err) => node.settle(epoch, Err(err), ready),
        #[cfg(feature = "nats")]
        Ok(Made::Stored(stored)) => node.settle_hollow(epoch, stored, ready),
        #[cfg(feature = "nats")]
        Ok(Made::Again) => schedule::restart(Arc::clone(node) as Arc<dyn Task>, epoch, ready),
    }
}

/// A run in place that was dropped before it finished: the node goes back
/// to idle, or, if another compute still wants it, to the run queue.
struct HandBack {
    task: Option<Arc<dyn Task>>,
    epoch: u32,
    watched: Option<Watched>,
}

impl Drop for HandBack {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            if let Some(watched) = self.watched.take() {
                watched.finished(task.core(), crate::Outcome::Cancelled);
            }
            schedule::hand_back(task, self.epoch);
        }
    }
}

/// Every attempt of one run, in the node's span.
async fn run<T, B>(
    node: &Arc<Node<T, B>>,
    begun: Begun,
    inline: bool,
    watched: &mut Option<Watched>,
) -> Result<Made<T>, Error>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    let policy = begun.policy.unwrap_or_default();
    #[cfg(feature = "nats")]
    if begun.fetch {
        if node.core.origin == crate::task::Origin::Join {
            // A join of hollow inputs is hollow too: it runs when
            // something here reads it.
            *watched = observe::task_started(&node.core);
            return finish(node, watched, Ok(Made::Stored(None)));
        }
        // A remote node passes its stored inputs by reference; it fills
        // those it sends by value itself.
        if policy.remote.is_none() && !crate::hollow::materialize(&begun.deps).await? {
            return Ok(Made::Again);
        }
    }
    let span = node.span();
    spans::link(&span, &begun.deps);
    let result = attempts(node, &begun.deps, &policy, begun.priority, inline, watched)
        .instrument(span.clone())
        .await;
    spans::keep(node.address(), &span);
    result
}

async fn attempts<T, B>(
    node: &Arc<Node<T, B>>,
    deps: &Inputs,
    policy: &Policy,
    priority: i32,
    inline: bool,
    watched: &mut Option<Watched>,
) -> Result<Made<T>, Error>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    let mut attempt = 1;
    loop {
        let holder = match policy.limit {
            Some(limit) => Some(Holder::new(limit, limit.acquire(priority).await)),
            None => None,
        };
        if attempt == 1 {
            tracing::debug!("task started");
            *watched = observe::task_started(&node.core);
        } else {
            tracing::debug!(attempt, "task started again");
        }
        let body = Holding::new(
            secede::enter(holder.as_ref(), || {
                attempt_of(node, deps, policy, inline, attempt)
            }),
            holder.clone(),
        );
        let result = match policy.timeout {
            Some(after) => match timer(node, || tokio::time::timeout(after, body)) {
                Ok(timed) => match timed.await {
                    Ok(result) => result,
                    Err(_) => Err(Error::timeout(node.core.key(), after)),
                },
                Err(err) => Err(err),
            },
            None => body.await,
        };
        drop(holder);
        let err = match result {
            Ok(value) => return finish(node, watched, Ok(value)),
            Err(err) => err,
        };
        let Some(retry) = policy.retry.as_ref().filter(|r| r.retries(&err, attempt)) else {
            return finish(node, watched, Err(err.after_attempts(attempt)));
        };
        let delay = retry.delay(&node.core.key(), attempt);
        tracing::info!(error = %err, attempt, ?delay, "task failed; it will run again");
        if !delay.is_zero() {
            match timer(node, || tokio::time::sleep(delay)) {
                Ok(sleep) => sleep.await,
                Err(err) => return finish(node, watched, Err(err.after_attempts(attempt))),
            }
        }
        attempt += 1;
    }
}

/// The future of one attempt, as the driver sees it.
type MadeAttempt<T> = Either<
    MapOk<crate::node::Attempt<T>, fn(T) -> Made<T>>,
    Pin<Box<dyn Future<Output = Result<Made<T>, Error>> + Send>>,
>;

/// One attempt: the body here, or on a worker when the node runs remotely.
fn attempt_of<T, B>(
    node: &Arc<Node<T, B>>,
    deps: &Inputs,
    policy: &Policy,
    inline: bool,
    attempt: u32,
) -> MadeAttempt<T>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    #[cfg(feature = "nats")]
    if let Some(remote) = &policy.remote {
        let task: Arc<dyn crate::task::Task> = Arc::clone(node) as _;
        let remote = remote.clone();
        let key = node.core.key();
        return Either::Right(Box::pin(async move {
            Ok(match remote.cluster.run(task, remote.run, attempt).await? {
                Made::Value(output) => Made::Value(
                    output
                        .downcast::<T>()
                        .map(|output| *output)
                        .map_err(|_| Error::runtime(key, "a worker's result has the wrong type"))?,
                ),
                Made::Stored(stored) => Made::Stored(stored),
                Made::Again => Made::Again,
            })
        }));
    }
    let _ = (policy, attempt);
    Either::Left(B::attempt(node, deps.clone(), inline).map_ok(Made::Value as fn(T) -> Made<T>))
}

/// Reports the end of a run to its watchers and its span.
fn finish<T, B>(
    node: &Node<T, B>,
    watched: &mut Option<Watched>,
    result: Result<Made<T>, Error>,
) -> Result<Made<T>, Error>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    if let Some(watched) = watched.take() {
        let outcome = match &result {
            #[cfg(feature = "nats")]
            Ok(Made::Again) => crate::Outcome::Cancelled,
            _ => observe::outcome(&result),
        };
        watched.finished(&node.core, outcome);
    }
    report(&result);
    result
}

/// Makes a tokio timer, or a clear error when the runtime has none.
fn timer<T, B, F>(node: &Node<T, B>, make: impl FnOnce() -> F) -> Result<F, Error>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    catch_unwind(AssertUnwindSafe(make)).map_err(|_| {
        Error::runtime(
            node.core.key(),
            "timeouts and retry delays need tokio's timer: build the runtime with \
             `enable_time()` or `enable_all()`",
        )
    })
}
