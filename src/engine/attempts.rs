//! The attempt runner: runs a node's work under its limit, timeout and
//! retries, here or through an [`Executor`](super::hooks::Executor), as an
//! async task (or in place, for the sequential scheduler). It also reads
//! back inputs whose outputs are stored before the work reads them.
//!
//! Nodes without such a policy and without stored inputs never come here:
//! they keep the fast paths in `work.rs`.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;

use futures::future::{Either, MapOk};
use futures::TryFutureExt;
use tokio::time::Instant;

use super::hooks::{AnyOutput, Made, Stop};
use super::inputs::Inputs;
use super::loan::{self, HandOff, Holder, Holding};
use super::node::{Attempt, Begun, NodeRef, TypedNode, Work};
use super::policy::{self, NodePolicy};
use super::state::Origin;
use super::view::NodeView;
use super::watch::{self, Watched};
use super::work::{report, RunGuard};
use super::{elsewhere, runner, schedule, spans, stored, wakes};
use crate::callback::Outcome;
use crate::error::Error;
use crate::key::Key;
use crate::limit::Acquire;
use crate::spawn;

/// Runs a started node through the attempt runner in a task of its own.
pub(crate) fn spawn<T, W>(node: Arc<TypedNode<T, W>>, begun: Begun, queue: &mut Vec<NodeRef>)
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let epoch = begun.epoch;
    let handle = match runner::current() {
        Ok(handle) => handle,
        Err(message) => {
            let err = Error::runtime(node.core.key(), message);
            return node.settle(epoch, Err(err), queue);
        }
    };
    let executor = match (&begun.policy, begun.read_back) {
        (Some(policy), false) if only_elsewhere(policy) => policy.executor.clone(),
        _ => None,
    };
    if let Some(executor) = executor {
        return elsewhere::submit(node, begun, executor, &handle, queue);
    }
    // A node that the end of its last input made ready may have a place in
    // its limit's line that the input's hand-off took for it (see
    // `loan::release`): it claims it now. Others join the line when their
    // task first runs.
    let place = match (&begun.policy, begun.read_back) {
        (Some(policy), false) => policy.limit.and_then(|limit| {
            loan::claim_place(Arc::as_ptr(&node).cast::<()>() as usize, limit, &handle)
        }),
        _ => None,
    };
    let task_node = Arc::clone(&node);
    // Dropped unfinished (the runtime shut down), the task hands the node
    // back; after our own abort the guard does nothing.
    let guard = RunGuard::running(Arc::clone(&node) as NodeRef, epoch);
    let line = Line {
        place,
        ready: watch::ready_now(),
    };
    let join = spawn::node_task(&handle, || node.core.key(), async move {
        let mut guard = guard;
        let ran = run(&task_node, begun, line, false, &mut guard.watched).await;
        ended(task_node, guard, epoch, ran, true);
    });
    node.set_stop(epoch, Stop::Task(join.abort_handle()));
}

/// Settles a run that ended away from the runner with what it made, and
/// runs what that made ready: here, in the run's own task (`inline`), or
/// in a runner of its own (a run an executor settled from its task).
pub(crate) fn ended<T, W>(
    node: Arc<TypedNode<T, W>>,
    guard: RunGuard,
    epoch: u32,
    ran: Ran<T>,
    inline: bool,
) where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let (result, hand_off) = ran;
    guard.disarm();
    let mut ready = Vec::new();
    wakes::after_release(node, |node| {
        hand_off.settle(&mut ready, |ready| conclude(node, epoch, result, ready));
    });
    if inline {
        runner::drain(&mut ready);
    } else {
        runner::dispatch(ready, None);
    }
}

/// Whether a node's only policy is an executor: no limit, timeout, retry
/// or memo (a remote node, most often). Such a run is submitted to its
/// executor (see `elsewhere.rs`).
fn only_elsewhere(policy: &NodePolicy) -> bool {
    policy.executor.is_some()
        && policy.limit.is_none()
        && policy.timeout.is_none()
        && policy.retry.is_none()
        && policy.memo.is_none()
}

/// Runs a node that the sequential scheduler claimed, in place.
pub(crate) async fn in_place<T, W>(node: Arc<TypedNode<T, W>>)
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let Some(begun) = node.begin(true, false) else {
        return;
    };
    let epoch = begun.epoch;
    let mut guard = HandBack {
        node: Some(Arc::clone(&node) as NodeRef),
        epoch,
        watched: None,
    };
    let (result, hand_off) = run(&node, begun, Line::default(), true, &mut guard.watched).await;
    if matches!(result, Ok(Made::Again)) {
        // The guard hands the node back; the sequential compute sees it
        // idle and sets it up again.
        return;
    }
    guard.node = None;
    let mut ready = Vec::new();
    hand_off.settle(&mut ready, |ready| {
        conclude(&node, epoch, result, ready);
    });
    runner::dispatch(ready, None);
}

/// Settles run `epoch` of `node` with what it made.
pub(crate) fn conclude<T, W>(
    node: &Arc<TypedNode<T, W>>,
    epoch: u32,
    result: Result<Made<T>, Error>,
    ready: &mut Vec<NodeRef>,
) where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    match result {
        Ok(Made::Value(value)) => node.settle(epoch, Ok(value), ready),
        Err(err) => node.settle(epoch, Err(err), ready),
        Ok(Made::Stored(store)) => node.settle_stored(epoch, store, ready),
        Ok(Made::Found(store)) => {
            policy::update(&(Arc::clone(node) as NodeRef), |policy| {
                policy.recalled = true;
            });
            node.settle_stored(epoch, Some(store), ready);
        }
        Ok(Made::Again) => schedule::restart(Arc::clone(node) as NodeRef, epoch, ready),
    }
}

/// A run in place that was dropped before it finished: the node goes back
/// to idle, or, if another compute still wants it, to the run queue.
struct HandBack {
    node: Option<NodeRef>,
    epoch: u32,
    watched: Option<Watched>,
}

impl Drop for HandBack {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            if let Some(watched) = self.watched.take() {
                // Nobody is left to fail with a panic of this callback.
                let _ = watched.finished(node.core(), Outcome::Cancelled);
            }
            schedule::hand_back(node, self.epoch);
        }
    }
}

/// What a run made, and the place in line its end took for a dependent
/// it is about to make ready (see `loan::release`).
pub(crate) type Ran<T> = (Result<Made<T>, Error>, HandOff);

/// Where a run stands as it starts.
#[derive(Default)]
struct Line {
    /// Its place in its limit's line for the first attempt, if it took
    /// one.
    place: Option<Acquire>,
    /// When it was ready to run, if anyone watches (see
    /// `watch::task_started`).
    ready: Option<Instant>,
}

/// Every attempt of one run, in the node's span.
async fn run<T, W>(
    node: &Arc<TypedNode<T, W>>,
    begun: Begun,
    line: Line,
    inline: bool,
    watched: &mut Option<Watched>,
) -> Ran<T>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let policy = begun.policy.unwrap_or_default();
    if begun.read_back {
        if node.core.origin == Origin::Join {
            // A join of inputs with stored outputs keeps its output in
            // them: it runs when something here reads it.
            let started = start_watching(node, watched, line.ready);
            return (
                finish(node, watched, started.map(|()| Made::Stored(None))),
                HandOff::default(),
            );
        }
        // An executor takes stored inputs as they are, and so does a
        // memo's look-up; work here reads them back first.
        if policy.executor.is_none() && policy.memo.is_none() {
            match Box::pin(stored::read_back_all(&begun.deps)).await {
                Ok(true) => {}
                Ok(false) => return (Ok(Made::Again), HandOff::default()),
                Err(err) => return (Err(err), HandOff::default()),
            }
        }
    }
    let run = spans::open(&node.core);
    spans::link(&run, &begun.deps);
    if let Some(memo) = &policy.memo {
        let view = NodeView::new(Arc::clone(node) as NodeRef);
        let recalled = run.instrumented(Arc::clone(memo).recall(view)).await;
        let ended = match recalled {
            Ok(Some(store)) => Some(
                run.instrumented(async {
                    tracing::debug!(task.cached = true, "task found in the cache");
                    let started = start_watching(node, watched, line.ready);
                    finish(node, watched, started.map(|()| Made::Found(store)))
                })
                .await,
            ),
            Ok(None) => None,
            Err(err) => Some(Err(err)),
        };
        if let Some(result) = ended {
            spans::ended(&node.core);
            return (result, HandOff::default());
        }
        if begun.read_back && policy.executor.is_none() {
            match Box::pin(stored::read_back_all(&begun.deps)).await {
                Ok(true) => {}
                Ok(false) => return (Ok(Made::Again), HandOff::default()),
                Err(err) => return (Err(err), HandOff::default()),
            }
        }
    }
    let result = run
        .instrumented(attempts(
            node,
            &begun.deps,
            &policy,
            begun.priority,
            line,
            inline,
            watched,
        ))
        .await;
    if !matches!(result, (Ok(Made::Again), _)) {
        spans::ended(&node.core);
    }
    result
}

/// Tells the watchers that the run starts; it was ready at `ready`.
pub(crate) fn start_watching<T, W>(
    node: &TypedNode<T, W>,
    watched: &mut Option<Watched>,
    ready: Option<Instant>,
) -> Result<(), Error>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    tracing::debug!("task started");
    let (started, result) = watch::task_started(&node.core, ready);
    *watched = started;
    result
}

async fn attempts<T, W>(
    node: &Arc<TypedNode<T, W>>,
    deps: &Inputs,
    policy: &NodePolicy,
    priority: i32,
    line: Line,
    inline: bool,
    watched: &mut Option<Watched>,
) -> Ran<T>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let Line { mut place, ready } = line;
    let mut attempt = 1;
    loop {
        let holder = match policy.limit {
            Some(limit) => {
                let in_line = place
                    .take()
                    .unwrap_or_else(|| limit.acquire(None, priority));
                Some(Holder::new(in_line.await))
            }
            None => None,
        };
        if attempt == 1 {
            if let Err(panic) = start_watching(node, watched, ready) {
                let hand_off = loan::release(&node.core, holder, false);
                return (finish(node, watched, Err(panic)), hand_off);
            }
        } else {
            tracing::debug!(attempt, "task started again");
        }
        let work = Holding::new(
            loan::enter(holder.as_ref(), || {
                attempt_of(node, deps, policy, inline, attempt)
            }),
            holder.clone(),
        );
        let result = match policy.timeout {
            // Boxed, as the other rare parts of a run: every running
            // node holds this future, most of them without a timeout.
            Some(after) => match timer(node, || Box::pin(tokio::time::timeout(after, work))) {
                Ok(timed) => match timed.await {
                    Ok(result) => result,
                    Err(_) => Err(Error::timeout(node.core.key(), after)),
                },
                Err(err) => Err(err),
            },
            None => work.await,
        };
        let err = match result {
            Ok(made) => {
                if let (Some(memo), Made::Value(value)) = (&policy.memo, &made) {
                    let view = NodeView::new(Arc::clone(node) as NodeRef);
                    Arc::clone(memo).keep(view, value).await;
                }
                let succeeded = matches!(made, Made::Value(_));
                let hand_off = loan::release(&node.core, holder, succeeded);
                return (finish(node, watched, Ok(made)), hand_off);
            }
            Err(err) => err,
        };
        let Some(retry) = policy.retry.as_ref().filter(|r| r.retries(&err, attempt)) else {
            let hand_off = loan::release(&node.core, holder, false);
            return (
                finish(node, watched, Err(err.after_attempts(attempt))),
                hand_off,
            );
        };
        // Not held between attempts.
        drop(holder);
        let delay = retry.delay(&node.core.key(), attempt);
        tracing::info!(error = %err.chain(), attempt, ?delay, "task failed; it will run again");
        if let Some(Err(panic)) = watched
            .as_ref()
            .map(|watched| watched.retried(&node.core, attempt, &err, delay))
        {
            // A `task_retried` that panicked ends the run with its panic.
            return (finish(node, watched, Err(panic)), HandOff::default());
        }
        if !delay.is_zero() {
            match timer(node, || Box::pin(tokio::time::sleep(delay))) {
                Ok(sleep) => sleep.await,
                Err(err) => {
                    let failed = finish(node, watched, Err(err.after_attempts(attempt)));
                    return (failed, HandOff::default());
                }
            }
        }
        attempt += 1;
    }
}

/// The future of one attempt, as the runner sees it.
type MadeAttempt<T> = Either<
    MapOk<Attempt<T>, fn(T) -> Made<T>>,
    Pin<Box<dyn Future<Output = Result<Made<T>, Error>> + Send>>,
>;

/// One attempt: the work here, or through the node's executor.
fn attempt_of<T, W>(
    node: &Arc<TypedNode<T, W>>,
    deps: &Inputs,
    policy: &NodePolicy,
    inline: bool,
    attempt: u32,
) -> MadeAttempt<T>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    if let Some(executor) = &policy.executor {
        let view = NodeView::new(Arc::clone(node) as NodeRef);
        let elsewhere = Arc::clone(executor).attempt(view.clone(), attempt);
        let key = node.core.key();
        let remembered = policy.memo.is_some();
        return Either::Right(Box::pin(async move {
            match elsewhere.await? {
                // A memo keeps what it is handed: the output is read back
                // here at once, and kept here too.
                Made::Stored(Some(store)) if remembered => match store.read(view).await? {
                    Some(output) => Ok(Made::Value(typed(output, key)?)),
                    None => Ok(Made::Again),
                },
                made => typed_made(made, key),
            }
        }));
    }
    Either::Left(W::attempt(node, deps.clone(), inline).map_ok(Made::Value as fn(T) -> Made<T>))
}

/// An executor's output as the node's type.
fn typed<T: 'static>(output: AnyOutput, key: Key) -> Result<T, Error> {
    output
        .downcast::<T>()
        .map(|output| *output)
        .map_err(|_| Error::runtime(key, "an executor's output has the wrong type"))
}

/// What an executor's attempt made, its output as the node's type.
pub(crate) fn typed_made<T: 'static>(made: Made<AnyOutput>, key: Key) -> Result<Made<T>, Error> {
    Ok(match made {
        Made::Value(output) => Made::Value(typed(output, key)?),
        Made::Stored(store) => Made::Stored(store),
        Made::Found(store) => Made::Found(store),
        Made::Again => Made::Again,
    })
}

/// Reports the end of a run to its watchers and its span. A watcher that
/// panics fails a run that had succeeded.
pub(crate) fn finish<T, W>(
    node: &TypedNode<T, W>,
    watched: &mut Option<Watched>,
    result: Result<Made<T>, Error>,
) -> Result<Made<T>, Error>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let result = match watched.take() {
        Some(watched) => {
            let outcome = match &result {
                Ok(Made::Again) => Outcome::Cancelled,
                Ok(Made::Found(_)) => Outcome::Cached,
                Ok(_) => Outcome::Done,
                Err(err) => Outcome::Failed(err.clone()),
            };
            watch::failed_by(watched.finished(&node.core, outcome), result)
        }
        None => result,
    };
    report(&result);
    result
}

/// Makes a tokio timer, or a clear error when the runtime has none.
fn timer<T, W, F>(node: &TypedNode<T, W>, make: impl FnOnce() -> F) -> Result<F, Error>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    catch_unwind(AssertUnwindSafe(make)).map_err(|_| {
        Error::runtime(
            node.core.key(),
            "timeouts and retry delays need tokio's timer: build the runtime with \
             `enable_time()` or `enable_all()`",
        )
    })
}
