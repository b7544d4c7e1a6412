//! The sequential debug scheduler, like dask's `get_sync`: one node at a
//! time, in a fixed order, inside the compute's own future.
//!
//! The order is the one a plain recursive evaluation would take: inputs
//! before the node, in argument order, each shared node once (a post-order
//! depth-first walk). Async bodies are awaited in place and blocking
//! bodies run in place, so everything happens on the thread that polls
//! the compute, and breakpoints and logs read in order.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::node::{address, NodeRef};
use super::schedule;
use super::spans::{Caller, Later};
use super::state::Phase;
use crate::Error;

/// A sequential run, as a compute holds it.
pub(crate) type SequentialRun = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// Runs every unfinished node `root` needs, in order, then returns.
pub(crate) async fn run(root: NodeRef) -> Result<(), Error> {
    loop {
        while !run_once(&root).await? {}
        // A root with a stored output (see `stored.rs`) is read back before
        // it is read; if that finds a reverted input, its nodes run again.
        if super::stored::read_back_all(std::slice::from_ref(&root)).await? {
            return Ok(());
        }
    }
}

/// Runs the nodes `root` needs, in order. `Ok(false)` when an input that
/// had run went back to idle (its stored output went away): the walk must
/// start again, so that the input runs first.
async fn run_once(root: &NodeRef) -> Result<bool, Error> {
    for task in order(root) {
        loop {
            match claim(&task) {
                Claim::Done => break,
                Claim::Failed(err) => return Err(err),
                Claim::Run => Arc::clone(&task).run_here().await,
                Claim::Wait(other) => Settled::new(other).await,
                Claim::Rewalk => return Ok(false),
            }
        }
    }
    Ok(true)
}

/// The nodes to run, inputs first, in argument order: a post-order walk
/// that skips finished nodes.
fn order(root: &NodeRef) -> Vec<NodeRef> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(Arc::clone(root), false)];
    while let Some((task, expanded)) = stack.pop() {
        if expanded {
            out.push(task);
            continue;
        }
        if !seen.insert(address(&task)) {
            continue;
        }
        let deps: Vec<_> = {
            let st = task.core().lock();
            if matches!(st.phase, Phase::Done) {
                continue;
            }
            st.deps.iter().cloned().collect()
        };
        stack.push((task, true));
        stack.extend(deps.into_iter().rev().map(|dep| (dep, false)));
    }
    out
}

enum Claim {
    Done,
    Failed(Error),
    /// Claimed for us: run it.
    Run,
    /// Another compute runs it, or an input is not done: wait for that.
    Wait(NodeRef),
    /// An input is idle: it was reverted after the walk ordered it.
    Rewalk,
}

/// Claims an idle node whose inputs are all done, for a compute whose
/// caller is the current span.
fn claim(task: &NodeRef) -> Claim {
    let caller = Caller::current();
    let mut later = Later::default();
    let mut st = task.core().lock();
    match &st.phase {
        Phase::Done => return Claim::Done,
        Phase::Failed(err) => return Claim::Failed(err.clone()),
        Phase::Idle => {}
        _ => return Claim::Wait(Arc::clone(task)),
    }
    let mut read_back = false;
    for dep in st.deps.iter() {
        let ds = dep.core().lock();
        match &ds.phase {
            Phase::Done => read_back |= ds.stored,
            Phase::Failed(err) => return Claim::Failed(err.clone()),
            Phase::Idle => return Claim::Rewalk,
            _ => return Claim::Wait(Arc::clone(dep)),
        }
    }
    st.read_back = read_back;
    st.demand += 1;
    st.epoch = st.epoch.wrapping_add(1);
    st.priority = st.base_priority();
    st.phase = Phase::Ready;
    st.trace.claim(&caller, &mut later);
    drop(st);
    later.apply();
    Claim::Run
}

/// Waits until a node another compute runs has finished, keeping it wanted
/// meanwhile.
struct Settled {
    task: NodeRef,
    demanded: bool,
    waker: Option<Waker>,
}

impl Settled {
    fn new(task: NodeRef) -> Settled {
        Settled {
            task,
            demanded: false,
            waker: None,
        }
    }
}

impl Future for Settled {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.task.core().lock();
        if st.is_finished() {
            this.demanded = false;
            return Poll::Ready(());
        }
        if matches!(st.phase, Phase::Idle) {
            // Stopped (or never started): the caller claims it again.
            if this.demanded {
                st.demand = st.demand.saturating_sub(1);
                this.demanded = false;
            }
            return Poll::Ready(());
        }
        if !this.demanded {
            st.demand += 1;
            this.demanded = true;
        }
        st.waiters.register_waker(&mut this.waker, cx.waker());
        Poll::Pending
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        if self.demanded {
            schedule::release_all(vec![Arc::clone(&self.task)]);
        }
    }
}
