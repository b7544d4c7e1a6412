//! The permit of a running body: lent back while the body waits for a
//! nested compute, and handed on when the body ends.
//!
//! A body that holds a [`Limit`] permit and computes a sub-graph would
//! deadlock if the sub-graph needed the same limit and no permit were
//! left. So, like dask's `secede`/`rejoin`, a compute that has to wait
//! gives its body's permit back, and takes one again (ahead of new work)
//! before the body goes on. So a body runs with its permit, except in one
//! case: when it gives up on a nested compute that had lent the permit out
//! (a `select!` took another branch), it goes on without one until its
//! next `.await`, where the permit is taken back.
//!
//! When a body ends, the dependent that its end is about to make ready and
//! that would win the permit takes its place in line before the permit
//! goes back ([`release`]): a dependent that becomes ready at that moment
//! competes for the permit with its priority, instead of coming after
//! every node that was already waiting.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use tokio::runtime::Handle;

use super::guard;
use super::node::{address, NodeRef};
use super::state::{Core, Phase};
use super::waiters::Waiter;
use crate::limit::{Acquire, Limit, Permit, PermitSource};

/// The permit of one running body, which nested computes may lend out.
pub(crate) struct Holder {
    /// Where the permit came from, and where it is taken back.
    source: PermitSource,
    permit: Mutex<Option<Permit>>,
    /// Computes that lent the permit out and have not taken it back.
    loans: AtomicUsize,
}

thread_local! {
    /// The holder of the body being polled (or called) on this thread.
    static CURRENT: RefCell<Option<Arc<Holder>>> = const { RefCell::new(None) };
}

impl Holder {
    pub(crate) fn new(permit: Permit) -> Arc<Holder> {
        Arc::new(Holder {
            source: permit.source(),
            permit: Mutex::new(Some(permit)),
            loans: AtomicUsize::new(0),
        })
    }

    fn permit(&self) -> MutexGuard<'_, Option<Permit>> {
        self.permit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `f` with `holder` as this thread's current holder.
pub(crate) fn enter<R>(holder: Option<&Arc<Holder>>, f: impl FnOnce() -> R) -> R {
    let Some(holder) = holder else {
        return f();
    };
    let previous = CURRENT.with(|current| current.replace(Some(Arc::clone(holder))));
    let result = f();
    CURRENT.with(|current| *current.borrow_mut() = previous);
    result
}

/// This thread's current holder, for work that runs elsewhere (a blocking
/// attempt on the blocking pool) to take along.
pub(crate) fn current() -> Option<Arc<Holder>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// A body's future, polled with its holder current.
///
/// A compute dropped while it had the permit lent out (a `select!` in the
/// body gave up on it) leaves the body without one: it is taken back here,
/// before the body is polled again.
pub(crate) struct Holding<F> {
    body: F,
    holder: Option<Arc<Holder>>,
    rejoin: Option<Acquire>,
}

impl<F> Holding<F> {
    pub(crate) fn new(body: F, holder: Option<Arc<Holder>>) -> Holding<F> {
        Holding {
            body,
            holder,
            rejoin: None,
        }
    }
}

impl<F: Future + Unpin> Future for Holding<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if let Some(holder) = &this.holder {
            if holder.loans.load(Ordering::Acquire) == 0 && holder.permit().is_none() {
                ready!(rejoin(holder, &mut this.rejoin, cx));
            }
        }
        enter(this.holder.as_ref(), || Pin::new(&mut this.body).poll(cx))
    }
}

/// Takes a permit back for `holder`, ahead of new work.
fn rejoin(holder: &Holder, acquire: &mut Option<Acquire>, cx: &mut Context<'_>) -> Poll<()> {
    let waiting = acquire.get_or_insert_with(|| holder.source.acquire(i32::MAX));
    let permit = ready!(Pin::new(waiting).poll(cx));
    *acquire = None;
    let mut slot = holder.permit();
    if slot.is_none() {
        *slot = Some(permit);
    }
    Poll::Ready(())
}

/// A compute's loan of its body's permit.
#[derive(Default)]
pub(crate) struct Loan {
    holder: Option<Arc<Holder>>,
    rejoin: Option<Acquire>,
}

impl Loan {
    /// The compute is about to wait: give back the permit of the body that
    /// polls it, if it holds one.
    pub(crate) fn lend(&mut self) {
        let Some(holder) = current() else {
            return;
        };
        let permit = holder.permit().take();
        if permit.is_some() {
            drop(permit);
            if self.holder.is_none() {
                holder.loans.fetch_add(1, Ordering::AcqRel);
                self.holder = Some(holder);
            }
        }
    }

    /// The compute is done: take a permit back for the body before it goes
    /// on. Pending while the limit has none free.
    pub(crate) fn poll_return(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(holder) = &self.holder else {
            return Poll::Ready(());
        };
        if holder.permit().is_none() {
            ready!(rejoin(holder, &mut self.rejoin, cx));
        }
        if let Some(holder) = self.holder.take() {
            holder.loans.fetch_sub(1, Ordering::AcqRel);
        }
        Poll::Ready(())
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        if let Some(holder) = self.holder.take() {
            holder.loans.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Gives back the permit of a body that ended, with `holder`, to the best
/// of the nodes already in line and of the dependents the node's end is
/// about to make ready.
///
/// Only one dependent can win the permit: the one of highest priority
/// (the first of them, in the order the node's end makes them ready)
/// among those under the same limit for which the node (`core`) is the
/// last unfinished input. It takes its place in line before the permit
/// goes back (if `succeeded`: a failure makes no dependent ready). The
/// others join when their tasks first run, each at its priority, which
/// orders them as well: only the permit given back now was at stake.
///
/// The permit is back before the node settles, so before any compute
/// hears that it ended. The place waits in the returned [`HandOff`] until
/// the node has settled.
pub(crate) fn release(core: &Core, holder: Option<Arc<Holder>>, succeeded: bool) -> HandOff {
    let Some(holder) = holder else {
        return HandOff::default();
    };
    let place = if succeeded {
        best_dependent(core, holder.source)
            .map(|(address, priority)| (address, holder.source.acquire(priority)))
    } else {
        None
    };
    drop(holder);
    HandOff { place }
}

/// The place in line that a body's end took for the dependent it is about
/// to make ready, until that dependent starts.
#[derive(Default)]
pub(crate) struct HandOff {
    /// The dependent's address, and its place.
    place: Option<(usize, Acquire)>,
}

impl HandOff {
    /// Runs `settle`, which tells the node's waiters and pushes the nodes
    /// it makes ready onto `ready`; then starts the dependent that has a
    /// place, which claims it.
    ///
    /// Starting it runs none of its body: it goes through the attempt
    /// runner, which spawns the task that waits for the permit. The other
    /// ready nodes stay in `ready` for the runner.
    pub(crate) fn settle(self, ready: &mut Vec<NodeRef>, settle: impl FnOnce(&mut Vec<NodeRef>)) {
        let Some((at, place)) = self.place else {
            return settle(ready);
        };
        let stash = Stash::new(at, place);
        settle(ready);
        if let Some(i) = ready.iter().position(|node| address(node) == at) {
            let node = ready.swap_remove(i);
            node.start(ready);
        }
        // A place left unclaimed (the dependent was cancelled meanwhile)
        // leaves the line, passing on any permit it was given.
        drop(stash);
    }
}

/// The address and priority of the dependent that would win the permit
/// of `source` when the node (`core`) ends: under the same limit, waiting
/// for the node alone, highest priority first, then first registered.
fn best_dependent(core: &Core, source: PermitSource) -> Option<(usize, i32)> {
    let dependents: Vec<(usize, NodeRef, u32)> = core
        .lock()
        .waiters
        .as_slice()
        .iter()
        .filter_map(|waiter| match waiter {
            Waiter::Node(dependent, epoch) => {
                Some((address(dependent), Arc::clone(dependent), *epoch))
            }
            Waiter::Compute(_) => None,
        })
        .collect();
    // A dependent that reads the node twice waits on it twice.
    let mut registrations: HashMap<(usize, u32), usize> = HashMap::new();
    if dependents.len() > 1 {
        for (at, _, epoch) in &dependents {
            *registrations.entry((*at, *epoch)).or_default() += 1;
        }
    }
    let mut best: Option<(usize, i32)> = None;
    for (at, dependent, epoch) in &dependents {
        let st = dependent.core().lock();
        let waits = match dependents.len() {
            1 => usize::from(*epoch == st.epoch),
            _ => registrations.get(&(*at, st.epoch)).copied().unwrap_or(0),
        };
        let last = matches!(st.phase, Phase::Waiting { pending } if pending == waits);
        let same_limit = st
            .policy
            .as_ref()
            .and_then(|policy| policy.limit)
            .is_some_and(|limit| source.is_of(limit));
        if last && same_limit && !st.read_back {
            let priority = st.run_priority();
            if best.is_none_or(|(_, top)| priority > top) {
                best = Some((*at, priority));
            }
        }
    }
    // The last handle to a dependent may go here: its `Drop` is user code.
    guard::drop_quietly(dependents);
    best
}

thread_local! {
    /// The place of the hand-off settling on this thread, by the address of
    /// the dependent it is for.
    static STASH: RefCell<Option<(usize, Acquire)>> = const { RefCell::new(None) };
}

/// The place in line that the hand-off settling on this thread took for
/// the node at `address`, if it is one for `limit` on `handle`'s runtime.
pub(crate) fn claim_place(address: usize, limit: &Limit, handle: &Handle) -> Option<Acquire> {
    STASH.with(|stash| {
        let mut stash = stash.borrow_mut();
        match &*stash {
            Some((at, place)) if *at == address && place.is_for(limit, handle) => {
                stash.take().map(|(_, place)| place)
            }
            _ => None,
        }
    })
}

/// The place of one hand-off, on this thread's stash while it lives.
struct Stash {
    previous: Option<(usize, Acquire)>,
}

impl Stash {
    fn new(at: usize, place: Acquire) -> Stash {
        let previous = STASH.with(|stash| stash.replace(Some((at, place))));
        Stash { previous }
    }
}

impl Drop for Stash {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let unclaimed = STASH.with(|stash| stash.replace(previous));
        drop(unclaimed);
    }
}
