//! The policy driver: runs a node's body under its limit, timeout and
//! retries, as an async task (or in place, for the sequential scheduler).
//!
//! Nodes without such a policy never come here: they keep the fast paths
//! in `body.rs`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

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
        task_node.settle(epoch, result, &mut ready);
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
    guard.task = None;
    let mut ready = Vec::new();
    node.settle(epoch, result, &mut ready);
    run::dispatch(ready, None);
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
) -> Result<T, Error>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    let policy = begun.policy.unwrap_or_default();
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
) -> Result<T, Error>
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

/// One attempt: the body here, or on a worker when the node runs remotely.
fn attempt_of<T, B>(
    node: &Arc<Node<T, B>>,
    deps: &Inputs,
    policy: &Policy,
    inline: bool,
    attempt: u32,
) -> crate::node::Attempt<T>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    #[cfg(feature = "nats")]
    if let Some(remote) = &policy.remote {
        let task: Arc<dyn crate::task::Task> = Arc::clone(node) as _;
        let remote = remote.clone();
        let key = node.core.key();
        return Box::pin(async move {
            let output = remote.cluster.run(task, remote.run, attempt).await?;
            output
                .downcast::<T>()
                .map(|output| *output)
                .map_err(|_| Error::runtime(key, "a worker's result has the wrong type"))
        });
    }
    let _ = (policy, attempt);
    B::attempt(node, deps.clone(), inline)
}

/// Reports the end of a run to its watchers and its span.
fn finish<T, B>(
    node: &Node<T, B>,
    watched: &mut Option<Watched>,
    result: Result<T, Error>,
) -> Result<T, Error>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    if let Some(watched) = watched.take() {
        watched.finished(&node.core, observe::outcome(&result));
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
