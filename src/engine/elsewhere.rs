//! Runs that an executor holds: a node whose only policy is an executor
//! (a remote node, most often) is submitted to it with a [`Settle`], and
//! waits with no task here. The executor settles the run when its attempt
//! ends, from any task; the engine stops it through the
//! [`Stop`](super::hooks::Stop) the executor gave back.
//!
//! A big compute's remote nodes then cost what the executor keeps for
//! each, not a task and a future each.

use std::future::Future;
use std::sync::Arc;

use futures::future::Either;
use tokio::runtime::Handle;

use super::attempts::{self, conclude, finish, start_watching, typed_made};
use super::hooks::{AnyOutput, Executor, Made};
use super::loan::HandOff;
use super::node::{Begun, NodeRef, TypedNode, Work};
use super::spans::{self, Run};
use super::state::Phase;
use super::view::NodeView;
use super::watch::Watched;
use super::work::RunGuard;
use crate::error::Error;

/// The end of a run that an executor holds. [`settle`](Settle::settle)
/// ends the run with what its attempt made; dropped unsettled, it hands
/// the node back to idle, as a task dropped by its runtime does (the
/// computes that wait for it set it up again).
pub(crate) struct Settle {
    /// The run's spans, for the executor's work on it and for its end;
    /// `None` when nobody looks (most runs hold little then).
    run: Option<Box<Run>>,
    end: Box<dyn End>,
}

/// The typed part of a [`Settle`].
trait End: Send + Sync {
    /// Settles the run with what its attempt made.
    fn end(self: Box<Self>, run: Option<&Run>, made: Result<Made<AnyOutput>, Error>);

    /// Whether the run still runs: not stopped, not replaced by another.
    #[allow(dead_code, reason = "for extensions, which a build may leave out")]
    fn is_current(&self) -> bool;
}

/// A run of a typed node. Dropped unsettled, it hands the node back as
/// the [`RunGuard`] it makes at the end would (made then, not held: a big
/// compute holds many runs).
struct Held<T, W>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    /// `None` once the run ended.
    node: Option<Arc<TypedNode<T, W>>>,
    epoch: u32,
    /// Boxed: most runs are not watched, and then hold 8 bytes for it.
    watched: Option<Box<Watched>>,
}

impl<T, W> Held<T, W>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    /// The node, and the guard of its run, which ends here.
    fn take(&mut self) -> Option<(Arc<TypedNode<T, W>>, RunGuard)> {
        let node = self.node.take()?;
        let mut guard = RunGuard::running(Arc::clone(&node) as NodeRef, self.epoch);
        guard.watched = self.watched.take().map(|watched| *watched);
        Some((node, guard))
    }
}

impl<T, W> Drop for Held<T, W>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    fn drop(&mut self) {
        // The guard, dropped, takes the node back and tells the watchers.
        drop(self.take());
    }
}

impl Settle {
    /// Ends the run with what its attempt made: the output, an error, or
    /// an output left in a store. Dependents that this makes ready run in
    /// a runner of their own, not in the caller's task.
    pub(crate) fn settle(self, made: Result<Made<AnyOutput>, Error>) {
        let Settle { run, end } = self;
        end.end(run.as_deref(), made);
    }

    /// Whether the run still runs: `false` once the node was stopped (its
    /// computes were dropped) or its run replaced, so that an executor can
    /// skip work nobody waits for.
    #[allow(dead_code, reason = "for extensions, which a build may leave out")]
    pub(crate) fn is_current(&self) -> bool {
        self.end.is_current()
    }

    /// `future`, polled in the run's spans.
    pub(crate) fn instrumented<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        match &self.run {
            Some(run) => Either::Left(run.instrumented(future)),
            None => Either::Right(future),
        }
    }
}

impl<T, W> End for Held<T, W>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    fn end(mut self: Box<Self>, run: Option<&Run>, made: Result<Made<AnyOutput>, Error>) {
        let Some((node, mut guard)) = self.take() else {
            return;
        };
        let epoch = self.epoch;
        let result = in_scope(run, || {
            let made = made.and_then(|made| typed_made(made, node.core.key()));
            finish(
                &node,
                &mut guard.watched,
                made.map_err(|err| err.after_attempts(1)),
            )
        });
        if !matches!(result, Ok(Made::Again)) {
            spans::ended(&node.core);
        }
        attempts::ended(node, guard, epoch, (result, HandOff::default()), false);
    }

    fn is_current(&self) -> bool {
        let Some(node) = &self.node else {
            return false;
        };
        let st = node.core.lock();
        st.epoch == self.epoch && matches!(st.phase, Phase::Running { .. })
    }
}

/// Runs `f` in `run`'s spans, if it has any.
fn in_scope<R>(run: Option<&Run>, f: impl FnOnce() -> R) -> R {
    match run {
        Some(run) => run.in_scope(f),
        None => f(),
    }
}

/// Submits a started run whose only policy is `executor` to it, in the
/// node's span, and records what stops it.
pub(crate) fn submit<T, W>(
    node: Arc<TypedNode<T, W>>,
    begun: Begun,
    executor: Arc<dyn Executor>,
    handle: &Handle,
    queue: &mut Vec<NodeRef>,
) where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let epoch = begun.epoch;
    let run = spans::open(&node.core);
    spans::link(&run, &begun.deps);
    // The node keeps its inputs until it settles: the run needs no copy.
    drop(begun);
    let mut guard = RunGuard::running(Arc::clone(&node) as NodeRef, epoch);
    if let Err(panic) = run.in_scope(|| start_watching(&node, &mut guard.watched, None)) {
        let result = run.in_scope(|| finish(&node, &mut guard.watched, Err(panic)));
        spans::ended(&node.core);
        guard.disarm();
        return conclude(&node, epoch, result, queue);
    }
    let watched = guard.watched.take().map(Box::new);
    guard.disarm();
    let settle = Settle {
        run: (!run.is_unobserved()).then(|| Box::new(run)),
        end: Box::new(Held {
            node: Some(Arc::clone(&node)),
            epoch,
            watched,
        }),
    };
    let view = NodeView::new(Arc::clone(&node) as NodeRef);
    let stop = executor.submit(view, settle, handle);
    node.set_stop(epoch, stop);
}
