//! The three ways a body runs: inline, as an async task, or on the blocking
//! pool. Each catches the user's panic and turns it into an [`Error`].

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, MutexGuard, PoisonError};

use futures::FutureExt;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::builder::Deps;
use crate::callback::Outcome;
use crate::drive;
use crate::error::{Cause, Error};
use crate::inputs::Inputs;
use crate::lane;
use crate::node::{Attempt, Body, Node};
use crate::observe::{self, Watched};
use crate::run;
use crate::schedule;
use crate::secede;
use crate::spans;
use crate::task::{Core, Task};

/// What a body returns: its value, or the error it reported.
pub(crate) type BodyResult<T> = Result<T, Cause>;

/// Cheap work, run inline by the runner that made it ready.
pub(crate) struct Inline<F>(pub(crate) F);

/// CPU-heavy work, run under `tokio::task::spawn_blocking`.
pub(crate) struct Blocking<F>(pub(crate) F);

/// An async body: `F` makes the future, again if a cancelled run restarts.
pub(crate) struct Async<F>(pub(crate) F);

/// Runs a sync body, catching its panic.
fn call<T, F>(node: &Node<T, impl Body<T>>, deps: Inputs, body: F) -> Result<T, Error>
where
    T: Send + Sync + 'static,
    F: FnOnce(&mut Deps) -> BodyResult<T>,
{
    let span = node.span();
    if span.is_disabled() && !observe::is_active() {
        // Nobody looks: no events, no clock reads.
        return call_raw(&node.core, Deps::new(deps), body);
    }
    spans::link(&span, &deps);
    let result = span.in_scope(|| {
        tracing::debug!("task started");
        let watched = observe::task_started(&node.core);
        let result = call_raw(&node.core, Deps::new(deps), body);
        if let Some(watched) = watched {
            watched.finished(&node.core, observe::outcome(&result));
        }
        report(&result);
        result
    });
    spans::keep(node.address(), &span);
    result
}

/// Runs a sync body with nothing around it but the panic catcher.
fn call_raw<T, F>(core: &Core, mut deps: Deps, body: F) -> Result<T, Error>
where
    F: FnOnce(&mut Deps) -> BodyResult<T>,
{
    flatten(core, catch_unwind(AssertUnwindSafe(|| body(&mut deps))))
}

/// The event that ends a task's span: debug when it finished, warn when it
/// failed.
pub(crate) fn report<T>(result: &Result<T, Error>) {
    match result {
        Ok(_) => tracing::debug!("task finished"),
        Err(err) => tracing::warn!(error = %err, "task failed"),
    }
}

fn flatten<T>(core: &Core, result: std::thread::Result<BodyResult<T>>) -> Result<T, Error> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(cause)) => Err(Error::failed(core.key(), cause)),
        Err(payload) => Err(Error::panic(core.key(), payload)),
    }
}

fn missing_body(core: &Core) -> Error {
    Error::runtime(
        core.key(),
        "the body was already consumed (scheduler invariant)",
    )
}

fn ready<T: Send + 'static>(result: Result<T, Error>) -> Attempt<T> {
    Box::pin(std::future::ready(result))
}

/// Locks the body of a node for an attempt.
fn body_of<T, B>(node: &Node<T, B>) -> MutexGuard<'_, Option<B>> {
    node.body.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T, F> Body<T> for Inline<F>
where
    T: Send + Sync + 'static,
    F: FnMut(&mut Deps) -> BodyResult<T> + Send + 'static,
{
    fn start(node: Arc<Node<T, Self>>, queue: &mut Vec<Arc<dyn Task>>) {
        let Some(begun) = node.begin(false, true) else {
            return;
        };
        if begun.driven() {
            return drive::spawn(node, begun, queue);
        }
        let result = match node.take_body() {
            Some(Inline(body)) => call(&node, begun.deps, body),
            None => Err(missing_body(&node.core)),
        };
        node.settle(begun.epoch, result, queue);
    }

    fn attempt(node: &Arc<Node<T, Self>>, deps: Inputs, _inline: bool) -> Attempt<T> {
        ready(match body_of(node).as_mut() {
            Some(Inline(body)) => call_raw(&node.core, Deps::kept(deps), body),
            None => Err(missing_body(&node.core)),
        })
    }
}

impl<T, F> Body<T> for Blocking<F>
where
    T: Send + Sync + 'static,
    F: FnMut(&mut Deps) -> BodyResult<T> + Send + 'static,
{
    fn start(node: Arc<Node<T, Self>>, queue: &mut Vec<Arc<dyn Task>>) {
        let (driven, priority) = {
            let st = node.core.lock();
            (
                st.fetch || st.policy.as_ref().is_some_and(|p| p.drives()),
                st.run_priority(),
            )
        };
        if driven {
            if let Some(begun) = node.begin(false, true) {
                drive::spawn(node, begun, queue);
            }
            return;
        }
        let handle = match run::current() {
            Ok(handle) => handle,
            Err(_) => return schedule::interrupt(&(node as Arc<dyn Task>), None),
        };
        // If the runtime drops the job without running it (shutdown), the
        // guard hands the still-ready node back instead of losing it.
        let guard = Unstarted::queued(Arc::clone(&node) as Arc<dyn Task>);
        let job = move || {
            guard.disarm();
            let Some(begun) = node.begin(false, true) else {
                return;
            };
            let result = match node.take_body() {
                Some(Blocking(body)) => call(&node, begun.deps, body),
                None => Err(missing_body(&node.core)),
            };
            let mut ready = Vec::new();
            node.settle(begun.epoch, result, &mut ready);
            run::dispatch(ready, None);
        };
        lane::submit(lane::Job {
            handle,
            priority,
            run: Box::new(job),
        });
    }

    fn attempt(node: &Arc<Node<T, Self>>, deps: Inputs, inline: bool) -> Attempt<T> {
        let in_place = |node: &Node<T, Self>, deps| match body_of(node).as_mut() {
            Some(Blocking(body)) => call_raw(&node.core, Deps::kept(deps), body),
            None => Err(missing_body(&node.core)),
        };
        if inline {
            return ready(in_place(node, deps));
        }
        let handle = match run::current() {
            Ok(handle) => handle,
            Err(message) => return ready(Err(Error::runtime(node.core.key(), message))),
        };
        let priority = node.core.lock().run_priority();
        let (tx, rx) = oneshot::channel();
        let task = Arc::clone(node);
        let holder = secede::current();
        lane::submit(lane::Job {
            handle,
            priority,
            run: Box::new(move || {
                // An attempt abandoned before it started (a timeout, or a
                // cancelled run) does not start.
                if tx.is_closed() {
                    return;
                }
                let result = secede::enter(holder.as_ref(), || in_place(&task, deps));
                // The permit goes back with the result, not after it.
                drop(holder);
                if task.core.lock().is_finished() {
                    // Abandoned at its deadline: the node settled without
                    // being able to drop the body we held.
                    task.try_drop_body();
                }
                let _ = tx.send(result);
            }),
        });
        let key = node.core.key();
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(Error::cancelled(key))) })
    }
}

impl<T, F, Fut> Body<T> for Async<F>
where
    T: Send + Sync + 'static,
    F: Fn(&Deps) -> Fut + Send + 'static,
    Fut: Future<Output = BodyResult<T>> + Send + 'static,
{
    fn start(node: Arc<Node<T, Self>>, queue: &mut Vec<Arc<dyn Task>>) {
        let Some(begun) = node.begin(true, false) else {
            return;
        };
        if begun.driven() {
            return drive::spawn(node, begun, queue);
        }
        let epoch = begun.epoch;
        let deps = begun.deps;
        let span = node.span();
        spans::link(&span, &deps);
        let made = {
            let deps = Deps::new(deps);
            match body_of(&node).as_ref() {
                Some(Async(make)) => {
                    span.in_scope(|| catch_unwind(AssertUnwindSafe(|| make(&deps))))
                }
                None => return node.settle(epoch, Err(missing_body(&node.core)), queue),
            }
        };
        let future = match made {
            Ok(future) => future,
            Err(payload) => {
                return node.settle(epoch, Err(Error::panic(node.core.key(), payload)), queue)
            }
        };
        let handle = match run::current() {
            Ok(handle) => handle,
            Err(message) => {
                return node.settle(epoch, Err(Error::runtime(node.core.key(), message)), queue)
            }
        };
        let task_node = Arc::clone(&node);
        // Dropped unfinished (the runtime shut down, even before the first
        // poll), the task hands the node back to idle; our own aborts have
        // already done so, and then the guard does nothing.
        let mut guard = Unstarted::running(Arc::clone(&node) as Arc<dyn Task>, epoch);
        let join = handle.spawn(async move {
            let run = async {
                tracing::debug!("task started");
                guard.watched = observe::task_started(&task_node.core);
                let result = flatten(
                    &task_node.core,
                    AssertUnwindSafe(future).catch_unwind().await,
                );
                if let Some(watched) = guard.watched.take() {
                    watched.finished(&task_node.core, observe::outcome(&result));
                }
                report(&result);
                result
            };
            let kept = span.clone();
            let result = run.instrument(span).await;
            spans::keep(task_node.address(), &kept);
            guard.disarm();
            // Dependents run outside this task's span: they are not part of it.
            let mut ready = Vec::new();
            task_node.settle(epoch, result, &mut ready);
            run::drain(&mut ready);
        });
        node.set_abort(epoch, join.abort_handle());
    }

    fn attempt(node: &Arc<Node<T, Self>>, deps: Inputs, _inline: bool) -> Attempt<T> {
        let deps = Deps::kept(deps);
        let made = match body_of(node).as_ref() {
            Some(Async(make)) => catch_unwind(AssertUnwindSafe(|| make(&deps))),
            None => return ready(Err(missing_body(&node.core))),
        };
        match made {
            Ok(future) => {
                let task = Arc::clone(node);
                Box::pin(async move {
                    flatten(&task.core, AssertUnwindSafe(future).catch_unwind().await)
                })
            }
            Err(payload) => ready(Err(Error::panic(node.core.key(), payload))),
        }
    }
}

/// Interrupts a node whose run was dropped before it finished, unless the
/// run got to the end and disarmed the guard; tells the watchers of a run
/// that started that it was cancelled.
pub(crate) struct Unstarted {
    task: Option<Arc<dyn Task>>,
    /// The run, for a running node; `None` for a queued one.
    epoch: Option<u32>,
    /// The run's watchers, if it is watched.
    pub(crate) watched: Option<Watched>,
}

impl Unstarted {
    /// Guards a queued node.
    fn queued(task: Arc<dyn Task>) -> Unstarted {
        Unstarted {
            task: Some(task),
            epoch: None,
            watched: None,
        }
    }

    /// Guards run `epoch` of a running node.
    pub(crate) fn running(task: Arc<dyn Task>, epoch: u32) -> Unstarted {
        Unstarted {
            task: Some(task),
            epoch: Some(epoch),
            watched: None,
        }
    }

    pub(crate) fn disarm(mut self) {
        self.task = None;
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            if let Some(watched) = self.watched.take() {
                watched.finished(task.core(), Outcome::Cancelled);
            }
            schedule::interrupt(&task, self.epoch);
        }
    }
}
