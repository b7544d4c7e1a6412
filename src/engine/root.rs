//! The engine's side of a compute: demanding a root node, waiting until it
//! finishes, reading a stored output back, and taking the output.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll, Waker};

use tokio::runtime::Handle;

use super::loan::Loan;
use super::node::{output_of, NodeRef};
use super::sequential::{self, SequentialRun};
use super::state::Phase;
use super::stored::{self, Reading};
use super::{intern, runner, schedule};
use crate::Error;

/// How many times a root interrupted from outside (another runtime shut
/// down under it) is started again before the compute gives up.
const RESTARTS: u32 = 8;

/// A root being computed: a compute's demand on it, until it finishes.
///
/// Dropped before then, it takes its demand back, which cancels the work
/// only it wanted.
pub(crate) struct Root {
    node: NodeRef,
    handle: Option<Handle>,
    phase: RootPhase,
    /// The waker registered on the node, to replace or remove it.
    waker: Option<Waker>,
    /// Whether the sequential scheduler runs the compute; its run once
    /// started, and its result once it has one.
    sequential_mode: bool,
    sequential: Option<SequentialRun>,
    sequential_result: Option<Result<(), Error>>,
    /// Reading a stored root back (see `stored.rs`).
    reading: Option<Reading>,
    restarts: u32,
    /// The permit of the work that awaits this compute, lent out while it
    /// waits.
    loan: Loan,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RootPhase {
    New,
    Waiting,
    Finished,
}

impl Root {
    /// A compute of `node`, run on `handle` (the current runtime if
    /// `None`).
    pub(crate) fn new(node: NodeRef, handle: Option<Handle>) -> Root {
        // A compute ends the building of a graph: a spare node kept for
        // `named` would only hold its inputs alive from here on.
        super::intern::drop_spare();
        Root {
            node,
            handle,
            phase: RootPhase::New,
            waker: None,
            sequential_mode: false,
            sequential: None,
            sequential_result: None,
            reading: None,
            restarts: 0,
            loan: Loan::default(),
        }
    }

    pub(crate) fn node(&self) -> &NodeRef {
        &self.node
    }

    pub(crate) fn node_mut(&mut self) -> &mut NodeRef {
        &mut self.node
    }

    /// Runs the compute with the sequential scheduler.
    pub(crate) fn run_sequentially(&mut self) {
        self.sequential_mode = true;
    }

    /// Ends a compute that did not start.
    pub(crate) fn abandon(&mut self) {
        self.phase = RootPhase::Finished;
    }

    fn start(&mut self) {
        self.phase = RootPhase::Waiting;
        if self.sequential_mode {
            self.sequential = Some(Box::pin(sequential::run(NodeRef::clone(&self.node))));
        } else {
            self.demand();
        }
    }

    /// Starts the compute, with the nodes it makes ready left in `ready`
    /// for the caller to dispatch together with those of other roots (see
    /// `runner::dispatch`). A sequential compute starts on its first poll.
    pub(crate) fn start_into(&mut self, ready: &mut Vec<NodeRef>) {
        if self.phase != RootPhase::New || self.sequential_mode {
            return;
        }
        self.phase = RootPhase::Waiting;
        schedule::demand(&self.node, ready);
    }

    fn demand(&self) {
        let mut ready = Vec::new();
        schedule::demand(&self.node, &mut ready);
        runner::dispatch(ready, self.handle.as_ref());
    }

    /// Polls until the root is done, with its output here.
    ///
    /// # Errors
    ///
    /// The root's failure, or a cancelled error when it was stopped from
    /// outside too often.
    pub(crate) fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.phase {
            RootPhase::Finished => panic!("`Compute` polled after completion"),
            RootPhase::New => self.start(),
            RootPhase::Waiting => {}
        }
        if let Some(run) = &mut self.sequential {
            if self.sequential_result.is_none() {
                match run.as_mut().poll(cx) {
                    Poll::Ready(result) => self.sequential_result = Some(result),
                    Poll::Pending => {
                        self.loan.lend();
                        return Poll::Pending;
                    }
                }
            }
            ready!(self.loan.poll_return(cx));
            let result = self.sequential_result.take().unwrap_or(Ok(()));
            self.sequential = None;
            self.phase = RootPhase::Finished;
            return Poll::Ready(result);
        }
        loop {
            if let Some(reading) = &mut self.reading {
                let read = match reading.as_mut().poll(cx) {
                    Poll::Ready(read) => read,
                    Poll::Pending => {
                        self.loan.lend();
                        return Poll::Pending;
                    }
                };
                self.reading = None;
                match read {
                    Ok(true) => {}
                    // Reverted before it could be read: compute it again.
                    Ok(false) => self.demand(),
                    Err(err) => return self.end(cx, Some(Err(err))),
                }
            }
            let mut st = self.node.core().lock();
            let result = match &st.phase {
                Phase::Done if st.stored => {
                    drop(st);
                    // The node's waiters were told: our waker is gone.
                    self.waker = None;
                    let root = vec![NodeRef::clone(&self.node)];
                    self.reading =
                        Some(Box::pin(async move { stored::read_back_all(&root).await }));
                    continue;
                }
                Phase::Done => None,
                Phase::Failed(err) => Some(Err(err.clone())),
                Phase::Idle if self.restarts < RESTARTS => {
                    // Stopped from outside (the runtime that ran it shut
                    // down) while this compute, still running, waited:
                    // start it again here, in place of our old demand.
                    st.demand = st.demand.saturating_sub(1);
                    drop(st);
                    // The node's waiters were told: our waker is gone.
                    self.waker = None;
                    self.restarts += 1;
                    self.demand();
                    continue;
                }
                Phase::Idle => Some(Err(Error::cancelled(self.node.core().key_locked(&st)))),
                _ => {
                    st.waiters.register_waker(&mut self.waker, cx.waker());
                    drop(st);
                    self.loan.lend();
                    return Poll::Pending;
                }
            };
            drop(st);
            return self.end(cx, result);
        }
    }

    /// Ends the compute: `None` when the node is done and its output here.
    fn end(
        &mut self,
        cx: &mut Context<'_>,
        result: Option<Result<(), Error>>,
    ) -> Poll<Result<(), Error>> {
        ready!(self.loan.poll_return(cx));
        let was_waiting = self.phase == RootPhase::Waiting;
        self.phase = RootPhase::Finished;
        match result {
            None => Poll::Ready(Ok(())),
            Some(err) => {
                if was_waiting {
                    // An interrupted node keeps our demand; give it back.
                    schedule::release_all(vec![NodeRef::clone(&self.node)]);
                }
                Poll::Ready(err)
            }
        }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if self.phase != RootPhase::Waiting {
            return;
        }
        if let Some(run) = self.sequential.take() {
            // Dropping the run hands back what it had claimed.
            drop(run);
            return;
        }
        if let Some(waker) = self.waker.take() {
            // Unregister, so that a long-running node polled by many
            // short-lived computes does not collect their wakers.
            let mut st = self.node.core().lock();
            if let Some(i) = st.waiters.find_waker(&waker) {
                st.waiters.remove(i);
            }
        }
        schedule::release_all(vec![NodeRef::clone(&self.node)]);
    }
}

/// Whether the compute that holds `node` holds the only handle to it: no
/// other handle, no dependent, no placement. A pure node leaves the table
/// of pure calls here (its output is about to be moved out), so that no
/// equal call can find it any more. From then on, every other reference is
/// the engine's own, held for a moment while a run ends.
pub(crate) fn is_sole(node: &NodeRef) -> bool {
    if Arc::strong_count(node) != 1 {
        return false;
    }
    intern::release_sole(node);
    Arc::strong_count(node) == 1 && Arc::weak_count(node) == 0
}

/// Moves the output out of a finished node that nothing else holds.
/// `None` while something else holds it.
pub(crate) fn move_output<T: 'static>(node: &mut NodeRef) -> Option<T> {
    if Arc::strong_count(node) == 1 {
        intern::release_sole(node);
    }
    let cell: &mut dyn Any = Arc::get_mut(node)?.output_any_mut();
    cell.downcast_mut::<OnceLock<T>>().and_then(OnceLock::take)
}

/// Clones the output of a finished node, catching a panic of its `Clone`.
///
/// # Errors
///
/// A `Clone` that panicked, about the node.
pub(crate) fn clone_output<T: Clone + 'static>(node: &NodeRef) -> Result<T, Error> {
    let value = output_of::<T>(&**node);
    catch_unwind(AssertUnwindSafe(|| value.clone()))
        .map_err(|payload| Error::panic(node.core().key(), payload))
}
