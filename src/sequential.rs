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

use crate::schedule;
use crate::task::{Phase, Task};
use crate::Error;

/// A sequential run, as a compute holds it.
pub(crate) type Run = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// Runs every unfinished node `root` needs, in order, then returns.
pub(crate) async fn run(root: Arc<dyn Task>) -> Result<(), Error> {
    run_once(&root).await?;
    // A hollow root (see `hollow.rs`) is filled before it is read; if that
    // finds a reverted input, its nodes run again.
    #[cfg(feature = "nats")]
    while !crate::hollow::materialize(std::slice::from_ref(&root)).await? {
        run_once(&root).await?;
    }
    Ok(())
}

async fn run_once(root: &Arc<dyn Task>) -> Result<(), Error> {
    for task in order(root) {
        loop {
            match claim(&task) {
                Claim::Done => break,
                Claim::Failed(err) => return Err(err),
                Claim::Run => Arc::clone(&task).run_here().await,
                Claim::Wait(other) => Settled::new(other).await,
            }
        }
    }
    Ok(())
}

/// The nodes to run, inputs first, in argument order: a post-order walk
/// that skips finished nodes.
fn order(root: &Arc<dyn Task>) -> Vec<Arc<dyn Task>> {
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

fn address(task: &Arc<dyn Task>) -> usize {
    Arc::as_ptr(task).cast::<()>() as usize
}

enum Claim {
    Done,
    Failed(Error),
    /// Claimed for us: run it.
    Run,
    /// Another compute runs it, or an input is not done: wait for that.
    Wait(Arc<dyn Task>),
}

/// Claims an idle node whose inputs are all done.
fn claim(task: &Arc<dyn Task>) -> Claim {
    let mut st = task.core().lock();
    match &st.phase {
        Phase::Done => return Claim::Done,
        Phase::Failed(err) => return Claim::Failed(err.clone()),
        Phase::Idle => {}
        _ => return Claim::Wait(Arc::clone(task)),
    }
    let mut fetch = false;
    for dep in st.deps.iter() {
        let ds = dep.core().lock();
        match &ds.phase {
            Phase::Done => fetch |= ds.hollow,
            Phase::Failed(err) => return Claim::Failed(err.clone()),
            _ => return Claim::Wait(Arc::clone(dep)),
        }
    }
    st.fetch = fetch;
    st.demand += 1;
    st.epoch = st.epoch.wrapping_add(1);
    st.priority = st.base_priority();
    st.phase = Phase::Ready;
    Claim::Run
}

/// Waits until a node another compute runs has finished, keeping it wanted
/// meanwhile.
struct Settled {
    task: Arc<dyn Task>,
    demanded: bool,
    waker: Option<Waker>,
}

impl Settled {
    fn new(task: Arc<dyn Task>) -> Settled {
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
        st.listeners.register_waker(&mut this.waker, cx.waker());
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
