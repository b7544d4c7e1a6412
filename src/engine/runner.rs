//! Where ready nodes run: runner tasks on the current tokio runtime.
//!
//! A runner drains a queue of ready nodes. Sync nodes run inline, one after
//! another, and the dependents they make ready are pushed onto the same
//! queue, so a chain runs as a loop, not as nested calls. Async nodes are
//! spawned as their own tasks and blocking nodes go to the blocking pool.
//! Big queues are split so that every worker thread gets a share.

use std::mem;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

use super::node::NodeRef;
use super::schedule;
use crate::spawn;

/// Nodes a runner runs before it hands the rest of its queue to a fresh
/// task, so that one graph never starves the other tasks of a worker.
const BUDGET: usize = 256;

/// Queue length above which a runner gives half of its queue away.
const SPLIT: usize = 64;

/// Runs `ready` on `handle`, the current runtime, or the shared fallback
/// runtime, in that order of preference.
pub(crate) fn dispatch(ready: Vec<NodeRef>, handle: Option<&Handle>) {
    if ready.is_empty() {
        return;
    }
    let queue = Queue(ready);
    match handle.cloned().map_or_else(current, Ok) {
        Ok(handle) => {
            spawn::runner(&handle, async move {
                let mut queue = queue;
                drain(&mut queue.0);
            });
        }
        Err(_) => drop(queue),
    }
}

/// Runs ready nodes inline until the queue is empty or the budget is spent.
pub(crate) fn drain(queue: &mut Vec<NodeRef>) {
    let mut budget = BUDGET;
    while let Some(task) = queue.pop() {
        if queue.len() >= SPLIT {
            let half = queue.split_off(queue.len() / 2);
            dispatch(half, None);
        }
        task.start(queue);
        budget -= 1;
        if budget == 0 {
            dispatch(mem::take(queue), None);
            return;
        }
    }
}

/// Ready nodes owned by a runner. If the runner is dropped before it ran
/// them (its runtime shut down), they are interrupted instead of lost.
struct Queue(Vec<NodeRef>);

impl Drop for Queue {
    fn drop(&mut self) {
        for task in self.0.drain(..) {
            schedule::interrupt(&task, None);
        }
    }
}

/// The current runtime, or else the shared fallback runtime.
pub(crate) fn current() -> Result<Handle, String> {
    Handle::try_current().or_else(|_| fallback())
}

/// A multi-thread runtime started on first use, for computes that run
/// outside any runtime (`compute_blocking`, `futures::executor::block_on`).
pub(crate) fn fallback() -> Result<Handle, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("delayed-worker")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the fallback tokio runtime: {e}"))
        })
        .as_ref()
        .map(|runtime| runtime.handle().clone())
        .map_err(Clone::clone)
}
