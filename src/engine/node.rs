//! The node: one task of the graph with its typed output and its work.

use std::any::Any;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};

use super::guard::{self, Payload};
use super::hooks::{OutputStore, Stop};
use super::inputs::Inputs;
use super::intern;
use super::policy::{self, NodePolicy};
use super::schedule::{self, Ended};
use super::state::{Core, Phase, State, Stopping};
use super::stored::Reading;
use super::waiters::Waiter;
use crate::error::Error;

/// A node of the graph with its output type erased.
///
/// The scheduler only moves [`NodeRef`]s around; typed code reaches the
/// output through [`AnyNode::output_any`], which is always a `OnceLock<T>`.
pub(crate) trait AnyNode: Send + Sync + 'static {
    fn core(&self) -> &Core;
    fn core_mut(&mut self) -> &mut Core;
    /// The output cell, a `&OnceLock<T>`.
    fn output_any(&self) -> &dyn Any;
    /// The output cell, a `&mut OnceLock<T>`, for moving a value out of a
    /// node nobody else holds.
    fn output_any_mut(&mut self) -> &mut dyn Any;
    /// Runs (or spawns) a node that became ready. Sync nodes run inline and
    /// push the dependents they make ready onto `queue`.
    fn start(self: Arc<Self>, queue: &mut Vec<NodeRef>);
    /// Drops the work of a node that will never run (it failed).
    fn discard_work(&self);
    /// Runs a node the sequential scheduler claimed, in place: its
    /// blocking and async work runs inside the returned future.
    fn run_here(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
    /// Reads the output of a node with a stored output back: from its
    /// store, or, for a join, by running it over its (read back) inputs.
    /// `Ok(false)` when the node was reverted meanwhile and must run again.
    fn read_back(self: Arc<Self>) -> Reading;
}

/// A shared handle to a node, as the scheduler moves them.
pub(crate) type NodeRef = Arc<dyn AnyNode>;

/// The address of a node, which identifies it while it lives.
pub(crate) fn address(node: &NodeRef) -> usize {
    Arc::as_ptr(node).cast::<()>() as usize
}

/// Reads the output of a finished node.
pub(crate) fn output_of<T: 'static>(node: &dyn AnyNode) -> &T {
    node.output_any()
        .downcast_ref::<OnceLock<T>>()
        .and_then(OnceLock::get)
        .expect("delayed: an input was read before it finished (scheduler invariant)")
}

/// How a node's work runs once its inputs are done: inline, as an async
/// task, or on the blocking pool (see `work.rs`).
pub(crate) trait Work<T>: Send + 'static {
    /// Runs (or spawns) a ready node, on the fast path or, for a node with
    /// a policy, through the attempt runner.
    fn start(node: Arc<TypedNode<T, Self>>, queue: &mut Vec<NodeRef>)
    where
        Self: Sized;

    /// One attempt of the work, for the attempt runner and the sequential
    /// scheduler. The work stays in the node, so it can run again.
    /// Blocking work runs on the blocking pool, or in place when `inline`.
    fn attempt(node: &Arc<TypedNode<T, Self>>, deps: Inputs, inline: bool) -> Attempt<T>
    where
        Self: Sized;
}

/// The future of one attempt.
pub(crate) type Attempt<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// A run that [`TypedNode::begin`] started.
pub(crate) struct Begun {
    pub(crate) epoch: u32,
    pub(crate) deps: Inputs,
    /// Set when the run must go through the attempt runner.
    pub(crate) policy: Option<Arc<NodePolicy>>,
    pub(crate) priority: i32,
    /// Set when an input's output is stored: it must be read back first.
    pub(crate) read_back: bool,
}

impl Begun {
    /// Whether the run goes through the attempt runner.
    pub(crate) fn supervised(&self) -> bool {
        self.policy.is_some() || self.read_back
    }
}

/// A node: the shared state behind every `Delayed<T>` handle.
pub(crate) struct TypedNode<T, W> {
    pub(crate) core: Core,
    pub(crate) output: OnceLock<T>,
    pub(crate) work: Mutex<Option<W>>,
}

/// The work of a node made with `Delayed::value`: it never runs.
pub(crate) struct Literal;

impl<T: Send + Sync + 'static> Work<T> for Literal {
    fn start(_: Arc<TypedNode<T, Self>>, _: &mut Vec<NodeRef>) {}

    fn attempt(node: &Arc<TypedNode<T, Self>>, _: Inputs, _: bool) -> Attempt<T> {
        let err = Error::runtime(node.core.key(), "a literal has no work to run");
        Box::pin(std::future::ready(Err(err)))
    }
}

impl<T: Send + Sync + 'static, W: Work<T>> TypedNode<T, W> {
    pub(crate) fn new(core: Core, work: W) -> Self {
        TypedNode {
            core,
            output: OnceLock::new(),
            work: Mutex::new(Some(work)),
        }
    }

    /// A node without work or output: one that failed before it was made.
    pub(crate) fn empty(core: Core) -> Self {
        TypedNode {
            core,
            output: OnceLock::new(),
            work: Mutex::new(None),
        }
    }

    pub(crate) fn literal(core: Core, value: T) -> Self {
        TypedNode {
            core,
            output: OnceLock::from(value),
            work: Mutex::new(None),
        }
    }

    /// Moves a ready node to running. Returns the run's epoch and the
    /// inputs (moved out when `take_deps`, since sync work consumes them;
    /// cloned otherwise, since aborted async work may run again).
    ///
    /// A supervised run (see [`Begun::supervised`]) always runs abortably,
    /// with cloned inputs: the attempt runner can be stopped between
    /// attempts.
    pub(crate) fn begin(&self, abortable: bool, take_deps: bool) -> Option<Begun> {
        let mut st = self.core.lock();
        if !matches!(st.phase, Phase::Ready) {
            return None;
        }
        let policy = st.supervising_policy();
        let supervised = policy.is_some() || st.read_back;
        st.phase = Phase::Running {
            stop: if abortable || supervised {
                Stopping::Soon
            } else {
                Stopping::Never
            },
        };
        let deps = if take_deps && !supervised {
            mem::take(&mut st.deps)
        } else {
            st.deps.clone()
        };
        Some(Begun {
            epoch: st.epoch,
            deps,
            policy,
            priority: st.run_priority(),
            read_back: st.read_back,
        })
    }

    pub(crate) fn take_work(&self) -> Option<W> {
        self.work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Drops the work unless an attempt is using it right now (a blocking
    /// attempt abandoned at its timeout); that attempt drops it when it
    /// sees the node finished. The work's captured values are user code.
    pub(crate) fn try_drop_work(&self) -> Result<(), Payload> {
        let work = match self.work.try_lock() {
            Ok(mut work) => work.take(),
            Err(TryLockError::Poisoned(work)) => work.into_inner().take(),
            Err(TryLockError::WouldBlock) => None,
        };
        guard::drop_caught(work)
    }

    /// Records what stops a run that started (its task, or an executor's
    /// hook), or stops it at once if the run was cancelled while it was
    /// starting. A run that already ended drops it unused.
    pub(crate) fn set_stop(&self, epoch: u32, stop: Stop) {
        let mut st = self.core.lock();
        let current = st.epoch == epoch;
        let unused = match &mut st.phase {
            Phase::Running {
                stop: soon @ Stopping::Soon,
            } if current => {
                *soon = Stopping::By(stop);
                return;
            }
            Phase::Running { .. } | Phase::Done | Phase::Failed(_) if current => stop,
            _ => {
                drop(st);
                return stop.stop();
            }
        };
        drop(st);
        drop(unused);
    }

    /// Stores the result of run `epoch` and tells whoever waits on it.
    ///
    /// A run cancelled just as its work returned keeps a value: the node
    /// is done rather than run again. A result of a run that was replaced
    /// by a newer one is dropped.
    ///
    /// The inputs this node held, and its work's captured values, are
    /// dropped before the waiters are told: their `Drop` is user code, and
    /// a panic there fails the node like a panic in its work.
    pub(crate) fn settle(&self, epoch: u32, result: Result<T, Error>, ready: &mut Vec<NodeRef>) {
        let mut st = self.core.lock();
        if !is_current(&st, epoch, &result) {
            drop(st);
            return guard::drop_quietly(result);
        }
        // The work has returned: from here on the run cannot be cancelled.
        st.phase = Phase::Running {
            stop: Stopping::Never,
        };
        let deps = mem::take(&mut st.deps);
        drop(st);
        let dropped = guard::drop_caught(deps).and_then(|()| self.try_drop_work());
        let result = match dropped {
            Ok(()) => result,
            Err(payload) => {
                guard::drop_quietly(result);
                Err(Error::panic(self.core.key(), payload))
            }
        };
        let st = self.core.lock();
        self.finish(st, result, ready);
    }

    /// [`settle`](Self::settle) for a run that consumed its inputs and its
    /// work (sync work run inline): nothing is left to drop first, so the
    /// node settles under one lock.
    pub(crate) fn settle_consumed(
        &self,
        epoch: u32,
        result: Result<T, Error>,
        ready: &mut Vec<NodeRef>,
    ) {
        let st = self.core.lock();
        if !st.deps.is_empty() {
            drop(st);
            return self.settle(epoch, result, ready);
        }
        if !is_current(&st, epoch, &result) {
            drop(st);
            return guard::drop_quietly(result);
        }
        self.finish(st, result, ready);
    }

    /// Stores the result of the current run, whose inputs and work are
    /// gone, and tells the waiters.
    fn finish(
        &self,
        mut st: MutexGuard<'_, State>,
        result: Result<T, Error>,
        ready: &mut Vec<NodeRef>,
    ) {
        let ended = match result {
            Ok(value) => {
                // The cell is only ever set here, once, while the node is
                // running and cannot be cancelled.
                let _ = self.output.set(value);
                st.phase = Phase::Done;
                Ended::Done
            }
            Err(err) => {
                st.phase = Phase::Failed(err.clone());
                Ended::Failed(err)
            }
        };
        let waiters = mem::take(&mut st.waiters);
        drop(st);
        schedule::notify(waiters, &ended, ready);
    }

    /// Finishes run `epoch` with the output left elsewhere: in `store`, or,
    /// for a join (`None`), in its inputs. The node keeps its inputs and
    /// work, so that its output can be read back, or the node run again if
    /// the stored output goes away.
    pub(crate) fn settle_stored(
        &self,
        epoch: u32,
        store: Option<Arc<dyn OutputStore>>,
        ready: &mut Vec<NodeRef>,
    ) {
        let mut st = self.core.lock();
        if st.epoch != epoch || !matches!(st.phase, Phase::Running { .. }) {
            return;
        }
        st.phase = Phase::Done;
        st.stored = true;
        if store.is_some() {
            policy::update_locked(&mut st, |policy| policy.store = store);
        }
        let waiters = mem::take(&mut st.waiters);
        drop(st);
        schedule::notify(waiters, &Ended::Stored, ready);
    }

    /// Sets the output of a node whose stored output was read back.
    /// `false` when it was reverted meanwhile (another reader reading it
    /// first is fine).
    pub(crate) fn set_read_back(&self, value: T) -> bool {
        let mut st = self.core.lock();
        if !st.stored {
            drop(st);
            let done = self.output.get().is_some();
            guard::drop_quietly(value);
            return done;
        }
        let _ = self.output.set(value);
        super::stored::unmark(&mut st);
        let deps = mem::take(&mut st.deps);
        drop(st);
        // The node is done and its readers go on: a panic in these `Drop`s
        // has nobody left to fail.
        guard::drop_quietly(deps);
        let _ = self.try_drop_work().map_err(guard::drop_quietly);
        true
    }
}

impl<T: Send + Sync + 'static, W: Work<T>> AnyNode for TypedNode<T, W> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn output_any(&self) -> &dyn Any {
        &self.output
    }

    fn output_any_mut(&mut self) -> &mut dyn Any {
        &mut self.output
    }

    fn start(self: Arc<Self>, queue: &mut Vec<NodeRef>) {
        W::start(self, queue);
    }

    fn discard_work(&self) {
        guard::drop_quietly(self.take_work());
    }

    fn run_here(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(super::attempts::in_place(self))
    }

    fn read_back(self: Arc<Self>) -> Reading {
        Box::pin(super::stored::read_back(self))
    }
}

impl<T, W> Drop for TypedNode<T, W> {
    fn drop(&mut self) {
        let ptr = (self as *const Self).cast::<()>();
        let interned = *self.core.interned.get_mut();
        let st = self.core.state_mut();
        if interned {
            intern::forget(&st.id, ptr);
        }
        let mut stack = Vec::new();
        mem::take(&mut st.deps).drain_into(&mut stack);
        for waiter in mem::take(&mut st.waiters) {
            if let Waiter::Node(node, _) = waiter {
                stack.push(node);
            }
        }
        drop_iteratively(stack);
    }
}

/// Whether a result of run `epoch` is the node's to keep: the run is the
/// current one, or it was cancelled just as its work returned a value.
fn is_current<T>(st: &State, epoch: u32, result: &Result<T, Error>) -> bool {
    st.epoch == epoch
        && match st.phase {
            Phase::Running { .. } => true,
            Phase::Idle | Phase::Claimed => result.is_ok(),
            _ => false,
        }
}

/// Drops a graph without recursion: a node that only we hold gives up its
/// inputs to the loop before it is dropped, so each drop is shallow.
///
/// The outputs dropped here are user code. A panic in one does not stop
/// the loop (the rest would be dropped while unwinding, recursively, and a
/// second panic would abort): the first is raised again at the end.
fn drop_iteratively(mut stack: Vec<NodeRef>) {
    let mut panic = None;
    while let Some(mut node) = stack.pop() {
        if Arc::strong_count(&node) == 1 {
            intern::release_sole(&node);
        }
        if let Some(node) = Arc::get_mut(&mut node) {
            mem::take(&mut node.core_mut().state_mut().deps).drain_into(&mut stack);
        }
        if let Err(payload) = guard::drop_caught(node) {
            if panic.is_none() {
                panic = Some(payload);
            } else {
                guard::drop_quietly(payload);
            }
        }
    }
    if let Some(payload) = panic {
        if std::thread::panicking() {
            guard::drop_quietly(payload);
        } else {
            std::panic::resume_unwind(payload);
        }
    }
}
