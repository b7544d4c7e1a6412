//! The node: one task of the graph with its typed output and body.

use std::any::Any;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, TryLockError};

use tokio::task::AbortHandle;
use tracing::field;

use crate::error::Error;
use crate::inputs::Inputs;
use crate::intern;
use crate::listeners::Listener;
use crate::policy::Policy;
use crate::schedule::{self, Outcome};
use crate::spans;
use crate::task::{Core, Phase, Task};

/// How a node's body runs once its inputs are done.
pub(crate) trait Body<T>: Send + 'static {
    /// Runs (or spawns) a ready node, on the fast path or, for a node with
    /// a policy, through the policy driver.
    fn start(node: Arc<Node<T, Self>>, queue: &mut Vec<Arc<dyn Task>>)
    where
        Self: Sized;

    /// One attempt of the body, for the policy driver and the sequential
    /// scheduler. The body stays in the node, so it can run again.
    /// Blocking bodies run on a lane, or in place when `inline`.
    fn attempt(node: &Arc<Node<T, Self>>, deps: Inputs, inline: bool) -> Attempt<T>
    where
        Self: Sized;
}

/// The future of one attempt.
pub(crate) type Attempt<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// A run that [`Node::begin`] started.
pub(crate) struct Begun {
    pub(crate) epoch: u32,
    pub(crate) deps: Inputs,
    /// Set when the run must go through the policy driver.
    pub(crate) policy: Option<Arc<Policy>>,
    pub(crate) priority: i32,
    /// Set when an input is hollow: it must be filled first.
    pub(crate) fetch: bool,
}

impl Begun {
    /// Whether the run goes through the policy driver.
    pub(crate) fn driven(&self) -> bool {
        self.policy.is_some() || self.fetch
    }
}

/// A node: the shared state behind every `Delayed<T>` handle.
pub(crate) struct Node<T, B> {
    pub(crate) core: Core,
    pub(crate) output: OnceLock<T>,
    pub(crate) body: Mutex<Option<B>>,
}

/// The body of a node made with `Delayed::value`: it never runs.
pub(crate) struct Literal;

impl<T: Send + Sync + 'static> Body<T> for Literal {
    fn start(_: Arc<Node<T, Self>>, _: &mut Vec<Arc<dyn Task>>) {}

    fn attempt(node: &Arc<Node<T, Self>>, _: Inputs, _: bool) -> Attempt<T> {
        let err = Error::runtime(node.core.key(), "a literal has no body to run");
        Box::pin(std::future::ready(Err(err)))
    }
}

impl<T: Send + Sync + 'static, B: Body<T>> Node<T, B> {
    pub(crate) fn new(core: Core, body: B) -> Self {
        Node {
            core,
            output: OnceLock::new(),
            body: Mutex::new(Some(body)),
        }
    }

    pub(crate) fn literal(core: Core, value: T) -> Self {
        Node {
            core,
            output: OnceLock::from(value),
            body: Mutex::new(None),
        }
    }

    /// Moves a ready node to running. Returns the run's epoch and the
    /// inputs (moved out when `take_deps`, since a sync body consumes them;
    /// cloned otherwise, since an aborted async body may run again).
    ///
    /// A node whose policy needs the driver always runs abortably, with
    /// cloned inputs: the driver can be stopped between attempts.
    pub(crate) fn begin(&self, abortable: bool, take_deps: bool) -> Option<Begun> {
        let mut st = self.core.lock();
        if !matches!(st.phase, Phase::Ready) {
            return None;
        }
        let policy = st.driving_policy();
        let driven = policy.is_some() || st.fetch;
        st.phase = Phase::Running {
            abort: None,
            abortable: abortable || driven,
        };
        let deps = if take_deps && !driven {
            mem::take(&mut st.deps)
        } else {
            st.deps.clone()
        };
        Some(Begun {
            epoch: st.epoch,
            deps,
            policy,
            priority: st.run_priority(),
            fetch: st.fetch,
        })
    }

    pub(crate) fn take_body(&self) -> Option<B> {
        self.body
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Drops the body unless an attempt is using it right now (a blocking
    /// attempt abandoned at its timeout); that attempt drops it when it
    /// sees the node finished.
    pub(crate) fn try_drop_body(&self) {
        let body = match self.body.try_lock() {
            Ok(mut body) => body.take(),
            Err(TryLockError::Poisoned(body)) => body.into_inner().take(),
            Err(TryLockError::WouldBlock) => None,
        };
        drop(body);
    }

    /// Records the abort handle of a spawned async run, or aborts it at once
    /// if the run was cancelled while it was being spawned.
    pub(crate) fn set_abort(&self, epoch: u32, handle: AbortHandle) {
        let mut st = self.core.lock();
        let current = st.epoch == epoch;
        match &mut st.phase {
            Phase::Running { abort, .. } if current => *abort = Some(handle),
            Phase::Done | Phase::Failed(_) => {}
            _ => handle.abort(),
        }
    }

    /// Stores the result of run `epoch` and wakes whoever waits on it. A
    /// result from a run that was cancelled in the meantime is dropped.
    pub(crate) fn settle(
        &self,
        epoch: u32,
        result: Result<T, Error>,
        ready: &mut Vec<Arc<dyn Task>>,
    ) {
        let mut st = self.core.lock();
        if st.epoch != epoch || !matches!(st.phase, Phase::Running { .. }) {
            return;
        }
        let outcome = match result {
            Ok(value) => {
                // The cell is only ever set here, under the lock, once.
                let _ = self.output.set(value);
                st.phase = Phase::Done;
                Outcome::Done
            }
            Err(err) => {
                st.phase = Phase::Failed(err.clone());
                Outcome::Failed(err)
            }
        };
        let listeners = mem::take(&mut st.listeners);
        let deps = mem::take(&mut st.deps);
        drop(st);
        self.try_drop_body();
        drop(deps);
        schedule::notify(listeners, &outcome, ready);
    }

    /// Finishes run `epoch` with the output left elsewhere: in the cluster
    /// store of `stored`, or, for a join (`None`), in its inputs. The node
    /// keeps its inputs and body, so that it can be filled, or run again
    /// if the stored result goes away.
    #[cfg(feature = "nats")]
    pub(crate) fn settle_hollow(
        &self,
        epoch: u32,
        stored: Option<crate::cluster::Remote>,
        ready: &mut Vec<Arc<dyn Task>>,
    ) {
        let mut st = self.core.lock();
        if st.epoch != epoch || !matches!(st.phase, Phase::Running { .. }) {
            return;
        }
        st.phase = Phase::Done;
        st.hollow = true;
        if stored.is_some() {
            crate::policy::update_locked(&mut st, |policy| policy.stored = stored);
        }
        let listeners = mem::take(&mut st.listeners);
        drop(st);
        schedule::notify(listeners, &Outcome::Stored, ready);
    }

    /// Sets the output of a hollow node that was filled. `false` when it
    /// was reverted meanwhile (another reader filling it first is fine).
    #[cfg(feature = "nats")]
    pub(crate) fn set_filled(&self, value: T) -> bool {
        let mut st = self.core.lock();
        if !st.hollow {
            return self.output.get().is_some();
        }
        let _ = self.output.set(value);
        crate::hollow::unmark(&mut st);
        let deps = mem::take(&mut st.deps);
        drop(st);
        self.try_drop_body();
        drop(deps);
        true
    }

    /// The node's address, which identifies it while it lives.
    pub(crate) fn address(&self) -> usize {
        (self as *const Self).cast::<()>() as usize
    }

    /// The span a run executes in.
    pub(crate) fn span(&self) -> tracing::Span {
        let span = tracing::debug_span!(
            "delayed.task",
            task.key = field::Empty,
            task.name = self.core.name()
        );
        if !span.is_disabled() {
            span.record("task.key", field::display(self.core.key()));
        }
        span
    }
}

impl<T: Send + Sync + 'static, B: Body<T>> Task for Node<T, B> {
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

    fn start(self: Arc<Self>, queue: &mut Vec<Arc<dyn Task>>) {
        B::start(self, queue);
    }

    fn discard_body(&self) {
        drop(self.take_body());
    }

    fn run_here(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(crate::drive::here(self))
    }

    #[cfg(feature = "nats")]
    fn fill(self: Arc<Self>) -> crate::hollow::Filling {
        Box::pin(crate::hollow::fill(self))
    }
}

impl<T, B> Drop for Node<T, B> {
    fn drop(&mut self) {
        let ptr = (self as *const Self).cast::<()>();
        spans::forget(ptr as usize);
        let st = self.core.state_mut();
        if st.interned {
            intern::forget(&st.id, ptr);
        }
        let mut stack = Vec::new();
        mem::take(&mut st.deps).drain_into(&mut stack);
        for listener in mem::take(&mut st.listeners) {
            if let Listener::Node(task, _) = listener {
                stack.push(task);
            }
        }
        drop_iteratively(stack);
    }
}

/// Drops a graph without recursion: a node that only we hold gives up its
/// inputs to the loop before it is dropped, so each drop is shallow.
fn drop_iteratively(mut stack: Vec<Arc<dyn Task>>) {
    while let Some(mut task) = stack.pop() {
        if Arc::strong_count(&task) == 1 {
            intern::release_sole(&task);
        }
        if let Some(task) = Arc::get_mut(&mut task) {
            mem::take(&mut task.core_mut().state_mut().deps).drain_into(&mut stack);
        }
    }
}
