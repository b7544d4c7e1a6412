//! The type-erased face of a node, as the scheduler sees it.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::task::AbortHandle;

use crate::error::Error;
use crate::inputs::Inputs;
use crate::key::{Key, KeyId};
use crate::listeners::Listeners;
use crate::policy::Policy;

/// A node of the graph with its output type erased.
///
/// The scheduler only moves `Arc<dyn Task>` around; typed code reaches the
/// output through [`Task::output_any`], which is always a `OnceLock<T>`.
pub(crate) trait Task: Send + Sync + 'static {
    fn core(&self) -> &Core;
    fn core_mut(&mut self) -> &mut Core;
    /// The output cell, a `&OnceLock<T>`.
    fn output_any(&self) -> &dyn Any;
    /// The output cell, a `&mut OnceLock<T>`, for moving a value out of a
    /// node nobody else holds.
    fn output_any_mut(&mut self) -> &mut dyn Any;
    /// Runs (or spawns) a node that became ready. Sync nodes run inline and
    /// push the dependents they make ready onto `queue`.
    fn start(self: Arc<Self>, queue: &mut Vec<Arc<dyn Task>>);
    /// Drops the body of a node that will never run (it failed).
    fn discard_body(&self);
    /// Runs a node the sequential scheduler claimed, in place: its
    /// blocking and async work runs inside the returned future.
    fn run_here(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
    /// Fills the output of a hollow node: reads it back from the cluster
    /// store, or runs a hollow join over its (filled) inputs. `Ok(false)`
    /// when the node was reverted meanwhile and must run again.
    #[cfg(feature = "nats")]
    fn fill(self: Arc<Self>) -> crate::hollow::Filling;
}

/// The priority of a node that has none of its own and inherits none. It
/// passes nothing on, so a join node (priority unset) does not lift its
/// inputs' negative priorities to 0.
pub(crate) const UNSET: i32 = i32::MIN;

/// What every node has, whatever its output type.
pub(crate) struct Core {
    /// The function name, behind a thin pointer: one word, not two.
    name: &'static &'static str,
    pub(crate) origin: Origin,
    state: Mutex<State>,
}

/// What made a node; pure keys hash each kind of input differently.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A function call or combinator.
    Call,
    /// `Delayed::value`: hashed by value.
    Literal,
    /// A join of other nodes (a `Vec`, tuple... argument): hashed by the
    /// keys of its parts.
    Join,
    /// A call of a function registered for keyed graphs: one input per
    /// parameter, in order, so that it can be exported.
    Registered,
}

/// The scheduling state of one node, behind its lock.
///
/// `demand` counts who wants the node now: each compute waiting on it and
/// each dependent in `Waiting` that registered on it. When it drops to zero
/// the node's unfinished work is cancelled.
pub(crate) struct State {
    pub(crate) id: KeyId,
    pub(crate) interned: bool,
    /// Done, but the output cell is empty: the value stays in a cluster's
    /// store (or, for a join, in its inputs) until something here reads
    /// it. See `hollow.rs`.
    pub(crate) hollow: bool,
    /// An input was hollow when this run was set up: the run goes through
    /// the policy driver, which fills such inputs before the body reads
    /// them.
    pub(crate) fetch: bool,
    pub(crate) phase: Phase,
    pub(crate) epoch: u32,
    pub(crate) demand: u32,
    /// The inputs, until the node finishes.
    pub(crate) deps: Inputs,
    /// Dependents and computes to tell when the node finishes.
    pub(crate) listeners: Listeners,
    /// Limit, retries, timeout and priority, if any were set.
    pub(crate) policy: Option<Arc<Policy>>,
    /// The priority it runs at: its own, raised to that of the nodes
    /// waiting for it (see `Delayed::priority`); `UNSET` when neither it
    /// nor they have one.
    pub(crate) priority: i32,
}

pub(crate) enum Phase {
    /// Not wanted, or stopped before it finished: can be started (again).
    Idle,
    /// Wanted; an activation walk will register it on its inputs.
    Claimed,
    /// Registered on `pending` unfinished inputs.
    Waiting {
        pending: usize,
    },
    /// All inputs done; queued to run.
    Ready,
    /// Its body runs. Async bodies can be aborted; sync and blocking bodies
    /// run to the end once started.
    Running {
        abort: Option<AbortHandle>,
        abortable: bool,
    },
    Done,
    Failed(Error),
}

impl Core {
    pub(crate) fn new(
        name: &'static &'static str,
        origin: Origin,
        id: KeyId,
        deps: Inputs,
    ) -> Core {
        Core {
            name,
            origin,
            state: Mutex::new(State {
                id,
                interned: false,
                hollow: false,
                fetch: false,
                phase: if origin == Origin::Literal {
                    Phase::Done
                } else {
                    Phase::Idle
                },
                epoch: 0,
                demand: 0,
                deps,
                listeners: Listeners::None,
                policy: None,
                priority: UNSET,
            }),
        }
    }

    /// Locks the state. User code never runs under this lock, so a poisoned
    /// lock only means a panic elsewhere; the state is still consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn state_mut(&mut self) -> &mut State {
        self.state.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn key(&self) -> Key {
        self.key_locked(&self.lock())
    }

    /// The key, when the caller already holds the lock.
    pub(crate) fn key_locked(&self, st: &State) -> Key {
        Key::new(self.name, st.id.clone())
    }
}

impl State {
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed(_))
    }

    /// The node's own priority, before inheritance.
    pub(crate) fn base_priority(&self) -> i32 {
        self.policy
            .as_ref()
            .and_then(|policy| policy.priority)
            .unwrap_or(UNSET)
    }

    /// The priority to queue at: an unset priority is the default, 0.
    pub(crate) fn run_priority(&self) -> i32 {
        if self.priority == UNSET {
            0
        } else {
            self.priority
        }
    }

    /// The policy, if a run must go through the policy driver.
    pub(crate) fn driving_policy(&self) -> Option<Arc<Policy>> {
        self.policy
            .as_ref()
            .filter(|policy| policy.drives())
            .cloned()
    }
}

/// Reads the output of a finished node.
pub(crate) fn output_of<T: 'static>(task: &dyn Task) -> &T {
    task.output_any()
        .downcast_ref::<std::sync::OnceLock<T>>()
        .and_then(std::sync::OnceLock::get)
        .expect("delayed: an input was read before it finished (scheduler invariant)")
}
