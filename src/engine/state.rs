//! What every node has, whatever its output type: its name, its origin and
//! its scheduling state behind one lock.
//!
//! Only the engine locks the state or reads its phase: extensions see a
//! node through [`NodeView`](super::view::NodeView).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::hooks::Stop;
use super::inputs::Inputs;
use super::policy::NodePolicy;
use super::spans::Trace;
use super::waiters::Waiters;
use crate::error::Error;
use crate::key::{Key, KeyId};

/// The priority of a node that has none of its own and inherits none. It
/// passes nothing on, so a join node (priority unset) does not lift its
/// inputs' negative priorities to 0.
pub(crate) const UNSET: i32 = i32::MIN;

/// What every node has, whatever its output type.
pub(crate) struct Core {
    /// The function name, behind a thin pointer: one word, not two.
    name: &'static &'static str,
    pub(crate) origin: Origin,
    /// In the table of pure calls (see `intern.rs`). Outside the lock:
    /// every input a body takes and every node dropped asks, and almost
    /// all say no.
    pub(in crate::engine) interned: AtomicBool,
    state: Mutex<State>,
}

/// What made a node; pure keys hash each kind of input differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A function call or combinator.
    Call,
    /// `Delayed::value`: hashed by value.
    Literal,
    /// A join of other nodes (a `Vec`, tuple, map... argument): named by
    /// its parts, or made while converting an argument, whose call hashes
    /// the parts themselves.
    Join,
    /// A call of a registered function (one that graphs as data can name): one input per
    /// parameter, in order, so that it can be exported.
    Registered,
}

impl Origin {
    /// Whether nodes of this origin are the crate's own plumbing rather
    /// than calls the user wrote: literals (`Delayed::value`, and plain
    /// arguments turned into nodes) and joins (a `Vec`, tuple, option or
    /// map of nodes gathered into one). The
    /// user's graph (snapshots, their pictures, callbacks' task events,
    /// timelines, progress totals) leaves them out; see
    /// [`Core::is_internal`] for the one exception.
    ///
    /// Every origin picks a side here, on purpose: a new origin must say
    /// whether users see it.
    pub(crate) fn is_internal(self) -> bool {
        match self {
            Origin::Literal | Origin::Join => true,
            Origin::Call | Origin::Registered => false,
        }
    }
}

/// The scheduling state of one node, behind its lock.
///
/// `demand` counts who wants the node now: each compute waiting on it and
/// each dependent in `Waiting` that registered on it. When it drops to zero
/// the node's unfinished work is cancelled.
pub(in crate::engine) struct State {
    pub(in crate::engine) id: KeyId,
    /// Done, but the output cell is empty: the output is kept in a store
    /// (or, for a join, in its inputs) until something here reads it. See
    /// `stored.rs`.
    pub(in crate::engine) stored: bool,
    /// An input had a stored output when this run was set up: the run goes
    /// through the attempt runner, which reads such inputs back before the
    /// work reads them.
    pub(in crate::engine) read_back: bool,
    pub(in crate::engine) phase: Phase,
    pub(in crate::engine) epoch: u32,
    pub(in crate::engine) demand: u32,
    /// The inputs, until the node finishes.
    pub(in crate::engine) deps: Inputs,
    /// Dependents and computes to tell when the node finishes.
    pub(in crate::engine) waiters: Waiters,
    /// Limit, retries, timeout, priority and placement, if any were set.
    pub(in crate::engine) policy: Option<Arc<NodePolicy>>,
    /// The priority it runs at: its own, raised to that of the nodes
    /// waiting for it (see `Delayed::priority`); `UNSET` when neither it
    /// nor they have one.
    pub(in crate::engine) priority: i32,
    /// The spans of its runs and of the computes that want them (see
    /// `spans.rs`).
    pub(in crate::engine) trace: Trace,
}

/// Where a node is in its life. See the design doc in `engine/mod.rs`.
pub(in crate::engine) enum Phase {
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
    /// Its work runs. Async work can be stopped; sync and blocking work,
    /// and any run whose work has returned, run to the end.
    Running {
        stop: Stopping,
    },
    Done,
    Failed(Error),
}

/// Whether and how a running node can be stopped midway.
pub(in crate::engine) enum Stopping {
    /// It cannot: sync or blocking work, or work that has returned.
    Never,
    /// It can, once it has started and said how.
    Soon,
    /// Through its task's abort handle, or its executor's hook.
    By(Stop),
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
            interned: AtomicBool::new(false),
            state: Mutex::new(State {
                id,
                stored: false,
                read_back: false,
                phase: if origin == Origin::Literal {
                    Phase::Done
                } else {
                    Phase::Idle
                },
                epoch: 0,
                demand: 0,
                deps,
                waiters: Waiters::None,
                policy: None,
                priority: UNSET,
                trace: Trace::default(),
            }),
        }
    }

    /// Locks the state. User code never runs under this lock, so a poisoned
    /// lock only means a panic elsewhere; the state is still consistent.
    pub(in crate::engine) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(in crate::engine) fn state_mut(&mut self) -> &mut State {
        self.state.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn key(&self) -> Key {
        self.key_locked(&self.lock())
    }

    /// Whether the node is left out of what users see of the graph: a
    /// node of an internal origin ([`Origin::is_internal`]), unless the
    /// user gave it a key of their own (`named`, or a key of a graph as
    /// data), which makes it theirs.
    pub(in crate::engine) fn is_internal(&self, st: &State) -> bool {
        self.origin.is_internal() && !matches!(st.id, KeyId::Custom(_))
    }

    /// The key, when the caller already holds the lock.
    pub(in crate::engine) fn key_locked(&self, st: &State) -> Key {
        Key::new(self.name, st.id.clone())
    }

    /// Sets the policy of a node being made.
    pub(crate) fn set_policy(&mut self, policy: Arc<NodePolicy>) {
        let st = self.state_mut();
        st.priority = policy.priority.unwrap_or(UNSET);
        st.policy = Some(policy);
    }

    /// Fails a node that has not started, before anything waits on it (a
    /// pure call whose argument's `Hash` panicked).
    pub(crate) fn fail_unstarted(&mut self, err: Error) {
        self.state_mut().phase = Phase::Failed(err);
    }
}

impl State {
    /// Done, with its output in its cell.
    pub(in crate::engine) fn is_finished_ok(&self) -> bool {
        matches!(self.phase, Phase::Done) && !self.stored
    }

    pub(in crate::engine) fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed(_))
    }

    /// The node's own priority, before inheritance.
    pub(in crate::engine) fn base_priority(&self) -> i32 {
        self.policy
            .as_ref()
            .and_then(|policy| policy.priority)
            .unwrap_or(UNSET)
    }

    /// The priority to queue at: an unset priority is the default, 0.
    pub(in crate::engine) fn run_priority(&self) -> i32 {
        if self.priority == UNSET {
            0
        } else {
            self.priority
        }
    }

    /// The policy, if a run must go through the attempt runner.
    pub(in crate::engine) fn supervising_policy(&self) -> Option<Arc<NodePolicy>> {
        self.policy
            .as_ref()
            .filter(|policy| policy.supervised())
            .cloned()
    }

    /// Whether a run goes through the attempt runner.
    pub(in crate::engine) fn supervised(&self) -> bool {
        self.read_back || self.policy.as_ref().is_some_and(|p| p.supervised())
    }
}
