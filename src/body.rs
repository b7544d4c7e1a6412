//! The three ways a body runs: inline, as an async task, or on the blocking
//! pool. Each catches the user's panic and turns it into an [`Error`].

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use futures::FutureExt;
use tracing::Instrument;

use crate::builder::Deps;
use crate::callback::Outcome;
use crate::error::{Cause, Error};
use crate::inputs::Inputs;
use crate::lane;
use crate::node::{Body, Node};
use crate::observe::{self, Watched};
use crate::run;
use crate::schedule;
use crate::spans;
use crate::task::Task;

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
        return flatten(
            node,
            catch_unwind(AssertUnwindSafe(|| body(&mut Deps::new(deps)))),
        );
    }
    spans::link(&span, &deps);
    let result = span.in_scope(|| {
        tracing::debug!("task started");
        let watched = observe::task_started(&node.core);
        let result = flatten(
            node,
            catch_unwind(AssertUnwindSafe(|| body(&mut Deps::new(deps)))),
        );
        if let Some(watched) = watched {
            watched.finished(&node.core, observe::outcome(&result));
        }
        report(&result);
        result
    });
    spans::keep(node.address(), &span);
    result
}

/// The event that ends a task's span: debug when it finished, warn when it
/// failed.
fn report<T>(result: &Result<T, Error>) {
    match result {
        Ok(_) => tracing::debug!("task finished"),
        Err(err) => tracing::warn!(error = %err, "task failed"),
    }
}

fn flatten<T: Send + Sync + 'static>(
    node: &Node<T, impl Body<T>>,
    result: std::thread::Result<BodyResult<T>>,
) -> Result<T, Error> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(cause)) => Err(Error::failed(node.core.key(), cause)),
        Err(payload) => Err(Error::panic(node.core.key(), payload)),
    }
}

fn missing_body(node: &dyn Task) -> Error {
    Error::runtime(
        node.core().key(),
        "the body was already consumed (scheduler invariant)",
    )
}

impl<T, F> Body<T> for Inline<F>
where
    T: Send + Sync + 'static,
    F: FnOnce(&mut Deps) -> BodyResult<T> + Send + 'static,
{
    fn start(node: Arc<Node<T, Self>>, queue: &mut Vec<Arc<dyn Task>>) {
        let Some((epoch, deps)) = node.begin(false, true) else {
            return;
        };
        let result = match node.take_body() {
            Some(Inline(body)) => call(&node, deps, body),
            None => Err(missing_body(&*node)),
        };
        node.settle(epoch, result, queue);
    }
}

impl<T, F> Body<T> for Blocking<F>
where
    T: Send + Sync + 'static,
    F: FnOnce(&mut Deps) -> BodyResult<T> + Send + 'static,
{
    fn start(node: Arc<Node<T, Self>>, _queue: &mut Vec<Arc<dyn Task>>) {
        let handle = match run::current() {
            Ok(handle) => handle,
            Err(_) => return schedule::interrupt(&(node as Arc<dyn Task>), None),
        };
        // If the runtime drops the job without running it (shutdown), the
        // guard hands the still-ready node back instead of losing it.
        let guard = Unstarted {
            task: Some(Arc::clone(&node) as Arc<dyn Task>),
            epoch: None,
            watched: None,
        };
        let job = move || {
            guard.disarm();
            let Some((epoch, deps)) = node.begin(false, true) else {
                return;
            };
            let result = match node.take_body() {
                Some(Blocking(body)) => call(&node, deps, body),
                None => Err(missing_body(&*node)),
            };
            let mut ready = Vec::new();
            node.settle(epoch, result, &mut ready);
            run::dispatch(ready, None);
        };
        lane::submit(lane::Job {
            handle,
            run: Box::new(job),
        });
    }
}

impl<T, F, Fut> Body<T> for Async<F>
where
    T: Send + Sync + 'static,
    F: Fn(&Deps) -> Fut + Send + 'static,
    Fut: Future<Output = BodyResult<T>> + Send + 'static,
{
    fn start(node: Arc<Node<T, Self>>, queue: &mut Vec<Arc<dyn Task>>) {
        let Some((epoch, deps)) = node.begin(true, false) else {
            return;
        };
        let span = node.span();
        spans::link(&span, &deps);
        let made = {
            let deps = Deps::new(deps);
            let body = node
                .body
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match body.as_ref() {
                Some(Async(make)) => {
                    span.in_scope(|| catch_unwind(AssertUnwindSafe(|| make(&deps))))
                }
                None => return node.settle(epoch, Err(missing_body(&*node)), queue),
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
        let mut guard = Unstarted {
            task: Some(Arc::clone(&node) as Arc<dyn Task>),
            epoch: Some(epoch),
            watched: None,
        };
        let join = handle.spawn(async move {
            let run = async {
                tracing::debug!("task started");
                guard.watched = observe::task_started(&task_node.core);
                let result = flatten(&task_node, AssertUnwindSafe(future).catch_unwind().await);
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
}

/// Interrupts a node whose run was dropped before it finished, unless the
/// run got to the end and disarmed the guard; tells the watchers of a run
/// that started that it was cancelled.
struct Unstarted {
    task: Option<Arc<dyn Task>>,
    /// The run, for a running node; `None` for a queued one.
    epoch: Option<u32>,
    /// The run's watchers, if it is watched.
    watched: Option<Watched>,
}

impl Unstarted {
    fn disarm(mut self) {
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
