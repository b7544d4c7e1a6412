//! Permits lent back while a body waits for a nested compute.
//!
//! A body that holds a [`Limit`] permit and computes a sub-graph would
//! deadlock if the sub-graph needed the same limit and no permit were
//! left. So, like dask's `secede`/`rejoin`, a compute that has to wait
//! gives its body's permit back, and takes one again (ahead of new work)
//! before the body goes on. So a body runs with its permit, except in one
//! case: when it gives up on a nested compute that had lent the permit out
//! (a `select!` took another branch), it goes on without one until its
//! next `.await`, where the permit is taken back.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use crate::limit::{Acquire, Permit, PermitSource};

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
