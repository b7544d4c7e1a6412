//! Computes woken only after the engine let go of the nodes it ran.
//!
//! `delayed.await` moves a finished node's output out of the last handle,
//! which needs every other reference to the node gone. A task that ran a
//! node still holds it while it settles the node and tells the node's
//! waiters; a compute woken right then, on another thread, would find the
//! task's reference and have to wait for it. So the places that run nodes
//! (runner queues, node tasks, blocking jobs) open a [`Scope`] scope
//! before they take their references: compute wakers met inside it wait in
//! a thread-local list, and are woken when the scope ends, after the
//! scope's references have been dropped.
//!
//! Outside any scope a waker is woken at once, so a path that opens none
//! is only slower to be free of references, never stuck.

use std::cell::RefCell;
use std::task::Waker;

thread_local! {
    /// The open scopes on this thread, and the wakers they hold back.
    static LATER: RefCell<Later> = const {
        RefCell::new(Later {
            depth: 0,
            wakers: Vec::new(),
        })
    };
}

struct Later {
    depth: u32,
    wakers: Vec<Waker>,
}

/// A scope whose compute wakes wait until it ends. Declare it before the
/// references it should outlive: locals drop in reverse order.
struct Scope {
    /// Whether the scope was opened (the thread-local is gone while the
    /// thread exits: then wakers are woken at once).
    open: bool,
}

impl Scope {
    /// Opens a scope, or joins the one already open on this thread.
    fn open() -> Scope {
        let open = LATER
            .try_with(|later| later.borrow_mut().depth += 1)
            .is_ok();
        Scope { open }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // The outermost scope wakes them, with the list put back first: a
        // `wake` may run a compute here, which may open scopes of its own.
        let wakers = LATER
            .try_with(|later| {
                let mut later = later.borrow_mut();
                later.depth -= 1;
                match later.depth == 0 && !later.wakers.is_empty() {
                    true => std::mem::take(&mut later.wakers),
                    false => Vec::new(),
                }
            })
            .unwrap_or_default();
        for waker in wakers {
            waker.wake();
        }
    }
}

/// Runs `settle` with `node`, drops `node`, then wakes the computes that
/// the settling told.
pub(crate) fn after_release<N>(node: N, settle: impl FnOnce(&N)) {
    let scope = Scope::open();
    settle(&node);
    drop(node);
    drop(scope);
}

/// Wakes `waker` when the open scope ends, or now if none is open.
pub(crate) fn wake(waker: Waker) {
    let mut waker = Some(waker);
    let _ = LATER.try_with(|later| {
        let mut later = later.borrow_mut();
        if later.depth > 0 {
            later.wakers.extend(waker.take());
        }
    });
    if let Some(waker) = waker {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wakes_at_the_end_of_the_outer_scope() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let woken = || count.0.load(Ordering::SeqCst);
        wake(Waker::from(Arc::clone(&count)));
        assert_eq!(woken(), 1, "no scope: at once");
        {
            let _outer = Scope::open();
            {
                let _inner = Scope::open();
                wake(Waker::from(Arc::clone(&count)));
            }
            assert_eq!(woken(), 1, "the inner scope leaves it to the outer");
        }
        assert_eq!(woken(), 2);
    }
}
