//! Demand, readiness and cancellation: the scheduler's bookkeeping.
//!
//! Every walk here is iterative, so graphs a million nodes deep never grow
//! the stack. A walk holds at most two node locks at once, always a node and
//! one of its inputs, in that order, so walks cannot deadlock.

use std::mem;
use std::sync::Arc;

use super::guard;
use super::inputs::Inputs;
use super::node::NodeRef;
use super::spans::{Caller, Later};
use super::state::{Phase, Stopping};
use super::waiters::{Waiter, Waiters};
use super::wakes;
use crate::error::Error;

/// How a node ended, as told to the nodes and computes waiting on it.
pub(crate) enum Ended {
    Done,
    /// Done, with the output kept elsewhere (see `stored.rs`): its
    /// dependents read it back before they read it.
    Stored,
    /// Failed for good: dependents fail with the same error.
    Failed(Error),
    /// Stopped before it finished (its runtime went away): dependents go back
    /// to idle and their computes get a cancelled error; a later compute
    /// restarts them.
    Interrupted,
}

/// Adds one unit of demand on `root`, starting it and every unfinished input
/// it needs. Nodes that can run now are pushed onto `ready`.
///
/// The span current here is the demand's caller (see `spans.rs`).
pub(crate) fn demand(root: &NodeRef, ready: &mut Vec<NodeRef>) {
    let caller = Caller::current();
    let mut later = Later::default();
    {
        let mut st = root.core().lock();
        if st.is_finished() {
            return;
        }
        st.demand += 1;
        if !matches!(st.phase, Phase::Idle) {
            st.trace.join(&caller, &mut later);
            drop(st);
            return later.apply();
        }
        st.phase = Phase::Claimed;
        st.priority = st.base_priority();
        st.trace.claim(&caller, &mut later);
    }
    later.apply();
    activate(vec![Arc::clone(root)], ready);
}

/// Registers each claimed node on its unfinished inputs, claiming idle ones.
fn activate(mut stack: Vec<NodeRef>, ready: &mut Vec<NodeRef>) {
    let mut later = Later::default();
    while let Some(task) = stack.pop() {
        let mut st = task.core().lock();
        if !matches!(st.phase, Phase::Claimed) {
            continue;
        }
        st.epoch = st.epoch.wrapping_add(1);
        let epoch = st.epoch;
        let priority = st.priority;
        let mut pending = 0;
        let mut failure = None;
        let mut read_back = false;
        for (i, dep) in st.deps.iter().enumerate() {
            let mut ds = dep.core().lock();
            match &ds.phase {
                Phase::Done => read_back |= ds.stored,
                Phase::Failed(err) => {
                    failure = Some((i, err.clone()));
                    break;
                }
                phase => {
                    let idle = matches!(phase, Phase::Idle);
                    ds.demand += 1;
                    ds.waiters.push(Waiter::Node(Arc::clone(&task), epoch));
                    pending += 1;
                    if !idle {
                        ds.trace.join_for(&st.trace, &mut later);
                    }
                    if idle {
                        ds.phase = Phase::Claimed;
                        ds.priority = ds.base_priority().max(priority);
                        ds.trace.inherit(&st.trace, &mut later);
                        stack.push(Arc::clone(dep));
                    } else if ds.priority < priority {
                        ds.priority = priority;
                        if matches!(ds.phase, Phase::Waiting { .. }) {
                            drop(ds);
                            raise(Arc::clone(dep), priority);
                        }
                    }
                }
            }
        }
        st.read_back = read_back;
        match failure {
            Some((registered, err)) => {
                st.phase = Phase::Failed(err.clone());
                let deps = mem::take(&mut st.deps);
                // A failed node keeps the input that failed it: the path
                // back to the root cause (see `failed_inputs`).
                st.deps = Inputs::One(Arc::clone(&deps[registered]));
                let waiters = mem::take(&mut st.waiters);
                drop(st);
                task.discard_work();
                release_all(deps[..registered].to_vec());
                guard::drop_quietly(deps);
                notify(waiters, &Ended::Failed(err), ready);
            }
            None if pending == 0 => {
                st.phase = Phase::Ready;
                drop(st);
                ready.push(task);
            }
            None => st.phase = Phase::Waiting { pending },
        }
    }
    later.apply();
}

/// Raises the priority of the unfinished inputs of `task`, which now runs
/// at `priority` (priority inheritance).
fn raise(task: NodeRef, priority: i32) {
    let mut stack = vec![task];
    while let Some(task) = stack.pop() {
        let st = task.core().lock();
        for dep in st.deps.iter() {
            let mut ds = dep.core().lock();
            if !ds.is_finished() && !matches!(ds.phase, Phase::Idle) && ds.priority < priority {
                ds.priority = priority;
                stack.push(Arc::clone(dep));
            }
        }
    }
}

/// Takes back one unit of demand from each task. A node nobody wants any
/// more stops: waiting nodes release their inputs, queued nodes go back to
/// idle, and running async bodies are aborted.
pub(crate) fn release_all(mut stack: Vec<NodeRef>) {
    while let Some(task) = stack.pop() {
        let mut st = task.core().lock();
        if st.is_finished() {
            continue;
        }
        debug_assert!(st.demand > 0, "delayed: demand underflow");
        st.demand = st.demand.saturating_sub(1);
        if st.demand > 0 {
            continue;
        }
        let abort = match mem::replace(&mut st.phase, Phase::Idle) {
            Phase::Running {
                stop: Stopping::Never,
            } => {
                // Sync and blocking bodies cannot be stopped midway; the
                // result is kept when they finish.
                st.phase = Phase::Running {
                    stop: Stopping::Never,
                };
                None
            }
            Phase::Running {
                stop: Stopping::By(stop),
            } => Some(stop),
            Phase::Waiting { .. } => {
                stack.extend(st.deps.iter().cloned());
                None
            }
            _ => None,
        };
        let stale = mem::take(&mut st.waiters);
        drop(st);
        if let Some(abort) = abort {
            abort.stop();
        }
        guard::drop_quietly(stale);
    }
}

/// Tells `waiters` how the node they waited on ended, and carries failures
/// and interruptions on through their own dependents.
pub(crate) fn notify(waiters: Waiters, ended: &Ended, ready: &mut Vec<NodeRef>) {
    // Failures spread through dependents; `work` holds their waiters.
    // Success, the common case, never allocates it.
    let mut work = Vec::new();
    let mut next = Some(waiters);
    while let Some(waiters) = next.take().or_else(|| work.pop()) {
        for waiter in waiters {
            let (task, epoch) = match waiter {
                Waiter::Compute(waker) => {
                    wakes::wake(waker);
                    continue;
                }
                Waiter::Node(task, epoch) => (task, epoch),
            };
            // The last handle to a dependent may go here: its `Drop` runs
            // user code, which must not unwind through the walk.
            let mut held = Dropped(Some(task));
            let task = held.get();
            let mut st = task.core().lock();
            if st.epoch != epoch {
                continue;
            }
            let Phase::Waiting { pending } = &mut st.phase else {
                continue;
            };
            match ended {
                Ended::Stored => {
                    *pending -= 1;
                    let ready_now = *pending == 0;
                    st.read_back = true;
                    if ready_now {
                        st.phase = Phase::Ready;
                        drop(st);
                        ready.push(held.take());
                    }
                }
                Ended::Done => {
                    *pending -= 1;
                    if *pending == 0 {
                        st.phase = Phase::Ready;
                        drop(st);
                        ready.push(held.take());
                    }
                }
                Ended::Failed(err) => {
                    st.phase = Phase::Failed(err.clone());
                    work.push(mem::take(&mut st.waiters));
                    let deps = mem::take(&mut st.deps);
                    st.deps = failed_inputs(&deps);
                    drop(st);
                    task.discard_work();
                    release_all(deps.to_vec());
                    guard::drop_quietly(deps);
                }
                Ended::Interrupted => {
                    st.phase = Phase::Idle;
                    work.push(mem::take(&mut st.waiters));
                    let deps = st.deps.to_vec();
                    drop(st);
                    release_all(deps);
                }
            }
        }
    }
}

/// The inputs among `deps` that failed: what a node that failed because of
/// them keeps, so that snapshots show the path from the root cause to the
/// result. Failed nodes hold no output, so keeping them costs little; the
/// inputs that finished with a value are let go, as a finished node lets
/// go of all of them. Called with the dependent's lock held: a node, then
/// its inputs.
fn failed_inputs(deps: &[NodeRef]) -> Inputs {
    let mut kept = Inputs::None;
    for dep in deps {
        if matches!(dep.core().lock().phase, Phase::Failed(_)) {
            kept.push(Arc::clone(dep));
        }
    }
    kept
}

/// Sets up run `epoch` of `task` again from the start, its inputs
/// included: an input whose output was stored was reverted before it could be
/// read, so it must run again first.
pub(crate) fn restart(task: NodeRef, epoch: u32, ready: &mut Vec<NodeRef>) {
    {
        let mut st = task.core().lock();
        if st.epoch != epoch || !matches!(st.phase, Phase::Running { .. }) {
            return;
        }
        st.phase = Phase::Claimed;
    }
    activate(vec![task], ready);
}

/// Takes back the demand of a sequential compute whose run of `task` (run
/// `epoch`) was dropped midway: the node goes back to idle, or, if other
/// computes still wait for it, back to the run queue.
pub(crate) fn hand_back(task: NodeRef, epoch: u32) {
    let mut st = task.core().lock();
    if st.epoch != epoch || !matches!(st.phase, Phase::Running { .. }) {
        return;
    }
    st.demand = st.demand.saturating_sub(1);
    if st.demand == 0 {
        st.phase = Phase::Idle;
        let stale = mem::take(&mut st.waiters);
        drop(st);
        guard::drop_quietly(stale);
    } else {
        st.phase = Phase::Ready;
        drop(st);
        crate::engine::runner::dispatch(vec![task], None);
    }
}

/// Handles a node whose run was dropped from outside (its runtime shut
/// down): it goes back to idle and everyone waiting on it hears so.
///
/// `epoch` names the run for a running node; `None` matches a queued one.
pub(crate) fn interrupt(task: &NodeRef, epoch: Option<u32>) {
    let mut st = task.core().lock();
    let matches = match (&st.phase, epoch) {
        (Phase::Ready, None) => true,
        (Phase::Running { .. }, Some(epoch)) => st.epoch == epoch,
        _ => false,
    };
    if !matches {
        return;
    }
    st.phase = Phase::Idle;
    let waiters = mem::take(&mut st.waiters);
    drop(st);
    let mut ready = Vec::new();
    notify(waiters, &Ended::Interrupted, &mut ready);
    debug_assert!(ready.is_empty());
}

/// A node handle dropped with its panics caught.
struct Dropped(Option<NodeRef>);

impl Dropped {
    fn get(&self) -> &NodeRef {
        self.0.as_ref().expect("set until taken")
    }

    fn take(&mut self) -> NodeRef {
        self.0.take().expect("taken once")
    }
}

impl Drop for Dropped {
    fn drop(&mut self) {
        guard::drop_quietly(self.0.take());
    }
}
