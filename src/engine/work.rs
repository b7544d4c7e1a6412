//! The three ways work runs: inline, as an async task, or on the blocking
//! pool. Each catches the user's panics (in the work, in the `Drop` of its
//! inputs and captured values, in callbacks) and turns them into an
//! [`Error`].

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, MutexGuard, PoisonError};

use futures::FutureExt;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::deps::Deps;
use super::hooks::Stop;
use super::inputs::Inputs;
use super::node::{Attempt, NodeRef, TypedNode, Work};
use super::state::Core;
use super::watch::{self, Watched};
use super::{attempts, blocking, guard, loan, runner, schedule, spans, wakes};
use crate::callback::Outcome;
use crate::error::{Cause, Error};
use crate::spawn;

/// What work returns: its value, or the error it reported.
pub(crate) type WorkResult<T> = Result<T, Cause>;

/// Cheap work, run inline by the runner that made it ready.
pub(crate) struct Inline<F>(pub(crate) F);

/// CPU-heavy work, run on the blocking pool.
pub(crate) struct Blocking<F>(pub(crate) F);

/// Async work: `F` makes the future, again if a cancelled run restarts.
pub(crate) struct Async<F>(pub(crate) F);

/// Runs sync work once, with its span, its watchers and its panics caught;
/// it was ready to run at `ready` (see `watch::task_started`).
fn call<T, F>(
    node: &TypedNode<T, impl Work<T>>,
    deps: Inputs,
    work: F,
    ready: Option<Instant>,
) -> Result<T, Error>
where
    T: Send + Sync + 'static,
    F: FnOnce(&mut Deps) -> WorkResult<T>,
{
    let run = spans::open(&node.core);
    if run.is_unobserved() && !watch::is_active() {
        // Nobody looks: no events, no clock reads.
        let result = call_caught(&node.core, Deps::new(deps), work);
        spans::ended(&node.core);
        return result;
    }
    spans::link(&run, &deps);
    let result = run.in_scope(|| {
        tracing::debug!("task started");
        let (watched, started) = watch::task_started(&node.core, ready);
        let result = match started {
            Ok(()) => call_caught(&node.core, Deps::new(deps), work),
            Err(panic) => {
                // A callback panicked as the task started: it does not run.
                let dropped = guard::drop_caught((deps, work));
                guard::drop_quietly(dropped);
                Err(panic)
            }
        };
        let result = watch::report_end(watched, &node.core, result);
        report(&result);
        result
    });
    spans::ended(&node.core);
    result
}

/// Runs sync work with nothing around it but the panic catcher, which also
/// covers the `Drop` of its inputs and of the work itself.
fn call_caught<T, F>(core: &Core, mut deps: Deps, work: F) -> Result<T, Error>
where
    F: FnOnce(&mut Deps) -> WorkResult<T>,
{
    let ran = catch_unwind(AssertUnwindSafe(move || {
        let result = watch::in_body(|| work(&mut deps));
        drop(deps);
        result
    }));
    flatten(core, ran)
}

/// The event that ends a task's span: debug when it finished, warn when it
/// failed, with the whole chain of causes in `error`.
pub(crate) fn report<T>(result: &Result<T, Error>) {
    match result {
        Ok(_) => tracing::debug!("task finished"),
        Err(err) => tracing::warn!(error = %err.chain(), "task failed"),
    }
}

fn flatten<T>(core: &Core, result: std::thread::Result<WorkResult<T>>) -> Result<T, Error> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(cause)) => Err(Error::failed(core.key(), cause)),
        Err(payload) => Err(Error::panic(core.key(), payload)),
    }
}

fn missing_work(core: &Core) -> Error {
    Error::runtime(
        core.key(),
        "the work was already consumed (scheduler invariant)",
    )
}

fn ready<T: Send + 'static>(result: Result<T, Error>) -> Attempt<T> {
    Box::pin(std::future::ready(result))
}

/// Locks the work of a node for an attempt.
fn work_of<T, W>(node: &TypedNode<T, W>) -> MutexGuard<'_, Option<W>> {
    node.work.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T, F> Work<T> for Inline<F>
where
    T: Send + Sync + 'static,
    F: FnMut(&mut Deps) -> WorkResult<T> + Send + 'static,
{
    fn start(node: Arc<TypedNode<T, Self>>, queue: &mut Vec<NodeRef>) {
        let Some(begun) = node.begin(false, true) else {
            return;
        };
        if begun.supervised() {
            return attempts::spawn(node, begun, queue);
        }
        let result = match node.take_work() {
            Some(Inline(work)) => call(&node, begun.deps, work, None),
            None => Err(missing_work(&node.core)),
        };
        // The call consumed the inputs and the work, and dropped them.
        wakes::after_release(node, |node| {
            node.settle_consumed(begun.epoch, result, queue)
        });
    }

    fn attempt(node: &Arc<TypedNode<T, Self>>, deps: Inputs, _inline: bool) -> Attempt<T> {
        ready(match work_of(node).as_mut() {
            Some(Inline(work)) => call_caught(&node.core, Deps::kept(deps), work),
            None => Err(missing_work(&node.core)),
        })
    }
}

impl<T, F> Work<T> for Blocking<F>
where
    T: Send + Sync + 'static,
    F: FnMut(&mut Deps) -> WorkResult<T> + Send + 'static,
{
    fn start(node: Arc<TypedNode<T, Self>>, queue: &mut Vec<NodeRef>) {
        let (supervised, priority) = {
            let st = node.core.lock();
            (st.supervised(), st.run_priority())
        };
        if supervised {
            if let Some(begun) = node.begin(false, true) {
                attempts::spawn(node, begun, queue);
            }
            return;
        }
        let handle = match runner::current() {
            Ok(handle) => handle,
            Err(_) => return schedule::interrupt(&(node as NodeRef), None),
        };
        // If the runtime drops the job without running it (shutdown), the
        // guard hands the still-ready node back instead of losing it.
        let guard = RunGuard::queued(Arc::clone(&node) as NodeRef);
        let ready = watch::ready_now();
        let job = move || {
            guard.disarm();
            let Some(begun) = node.begin(false, true) else {
                return;
            };
            let result = match node.take_work() {
                Some(Blocking(work)) => call(&node, begun.deps, work, ready),
                None => Err(missing_work(&node.core)),
            };
            let mut ready = Vec::new();
            wakes::after_release(node, |node| {
                node.settle_consumed(begun.epoch, result, &mut ready);
            });
            // What this made ready runs here: a chain of blocking nodes
            // stays on this thread.
            runner::drain(&mut ready);
        };
        blocking::submit(
            &handle,
            blocking::Job {
                priority,
                run: Box::new(job),
            },
        );
    }

    fn attempt(node: &Arc<TypedNode<T, Self>>, deps: Inputs, inline: bool) -> Attempt<T> {
        let in_place = |node: &TypedNode<T, Self>, deps| match work_of(node).as_mut() {
            Some(Blocking(work)) => call_caught(&node.core, Deps::kept(deps), work),
            None => Err(missing_work(&node.core)),
        };
        if inline {
            return ready(in_place(node, deps));
        }
        let handle = match runner::current() {
            Ok(handle) => handle,
            Err(message) => return ready(Err(Error::runtime(node.core.key(), message))),
        };
        let priority = node.core.lock().run_priority();
        let (tx, rx) = oneshot::channel();
        let task = Arc::clone(node);
        let holder = loan::current();
        // The body runs on another thread, in the span it was asked from.
        let here = spans::Here::capture(&node.core);
        blocking::submit(
            &handle,
            blocking::Job {
                priority,
                run: Box::new(move || {
                    // An attempt abandoned before it started (a timeout, or
                    // a cancelled run) does not start.
                    if tx.is_closed() {
                        return;
                    }
                    let result =
                        here.in_scope(|| loan::enter(holder.as_ref(), || in_place(&task, deps)));
                    // The permit goes back with the result, not after it.
                    drop(holder);
                    if task.core.lock().is_finished() {
                        // Abandoned at its deadline: the node settled without
                        // being able to drop the work we held.
                        let _ = task.try_drop_work().map_err(guard::drop_quietly);
                    }
                    if let Err(unsent) = tx.send(result) {
                        guard::drop_quietly(unsent);
                    }
                }),
            },
        );
        let key = node.core.key();
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(Error::cancelled(key))) })
    }
}

impl<T, F, Fut> Work<T> for Async<F>
where
    T: Send + Sync + 'static,
    F: Fn(&Deps) -> Fut + Send + 'static,
    Fut: Future<Output = WorkResult<T>> + Send + 'static,
{
    fn start(node: Arc<TypedNode<T, Self>>, queue: &mut Vec<NodeRef>) {
        let Some(begun) = node.begin(true, false) else {
            return;
        };
        if begun.supervised() {
            return attempts::spawn(node, begun, queue);
        }
        let epoch = begun.epoch;
        let deps = begun.deps;
        let run = spans::open(&node.core);
        spans::link(&run, &deps);
        let made = {
            let deps = Deps::new(deps);
            match work_of(&node).as_ref() {
                Some(Async(make)) => run.in_scope(|| {
                    catch_unwind(AssertUnwindSafe(|| {
                        let future = make(&deps);
                        drop(deps);
                        future
                    }))
                }),
                None => return node.settle(epoch, Err(missing_work(&node.core)), queue),
            }
        };
        let future = match made {
            // Boxed: the layers around it (spans, panic catcher, the task)
            // then hold a pointer, and tokio moves a small task, not the
            // body's state machine several times over.
            Ok(future) => Box::pin(future),
            Err(payload) => {
                return node.settle(epoch, Err(Error::panic(node.core.key(), payload)), queue)
            }
        };
        let handle = match runner::current() {
            Ok(handle) => handle,
            Err(message) => {
                guard::drop_quietly(future);
                return node.settle(epoch, Err(Error::runtime(node.core.key(), message)), queue);
            }
        };
        let task_node = Arc::clone(&node);
        // Dropped unfinished (the runtime shut down, even before the first
        // poll), the task hands the node back to idle; our own aborts have
        // already done so, and then the guard does nothing.
        let mut guard = RunGuard::running(Arc::clone(&node) as NodeRef, epoch);
        let ready = watch::ready_now();
        let join = spawn::node_task(&handle, || node.core.key(), async move {
            let body = async {
                tracing::debug!("task started");
                let (watched, started) = watch::task_started(&task_node.core, ready);
                guard.watched = watched;
                let result = match started {
                    Ok(()) => flatten(
                        &task_node.core,
                        AssertUnwindSafe(watch::body(future)).catch_unwind().await,
                    ),
                    Err(panic) => {
                        guard::drop_quietly(future);
                        Err(panic)
                    }
                };
                let result = watch::report_end(guard.watched.take(), &task_node.core, result);
                report(&result);
                result
            };
            let result = run.instrumented(body).await;
            spans::ended(&task_node.core);
            guard.disarm();
            // Dependents run outside this task's span: they are not part of it.
            let mut ready = Vec::new();
            wakes::after_release(task_node, |node| node.settle(epoch, result, &mut ready));
            runner::drain(&mut ready);
        });
        node.set_stop(epoch, Stop::Task(join.abort_handle()));
    }

    fn attempt(node: &Arc<TypedNode<T, Self>>, deps: Inputs, _inline: bool) -> Attempt<T> {
        let deps = Deps::kept(deps);
        let made = match work_of(node).as_ref() {
            Some(Async(make)) => catch_unwind(AssertUnwindSafe(|| {
                let future = make(&deps);
                drop(deps);
                future
            })),
            None => return ready(Err(missing_work(&node.core))),
        };
        match made {
            Ok(future) => {
                let task = Arc::clone(node);
                Box::pin(async move {
                    let body = watch::body(future);
                    flatten(&task.core, AssertUnwindSafe(body).catch_unwind().await)
                })
            }
            Err(payload) => ready(Err(Error::panic(node.core.key(), payload))),
        }
    }
}

/// Interrupts a node whose run was dropped before it finished, unless the
/// run got to the end and disarmed the guard; tells the watchers of a run
/// that started that it was cancelled.
pub(crate) struct RunGuard {
    node: Option<NodeRef>,
    /// The run, for a running node; `None` for a queued one.
    epoch: Option<u32>,
    /// The run's watchers, if it is watched.
    pub(crate) watched: Option<Watched>,
}

impl RunGuard {
    /// Guards a queued node.
    fn queued(node: NodeRef) -> RunGuard {
        RunGuard {
            node: Some(node),
            epoch: None,
            watched: None,
        }
    }

    /// Guards run `epoch` of a running node.
    pub(crate) fn running(node: NodeRef, epoch: u32) -> RunGuard {
        RunGuard {
            node: Some(node),
            epoch: Some(epoch),
            watched: None,
        }
    }

    pub(crate) fn disarm(mut self) {
        self.node = None;
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            if let Some(watched) = self.watched.take() {
                // Nobody is left to fail with a panic of this callback.
                let _ = watched.finished(node.core(), Outcome::Cancelled);
            }
            schedule::interrupt(&node, self.epoch);
            guard::drop_quietly(node);
        }
    }
}
