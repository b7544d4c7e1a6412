//! Who waits on a node: dependents and computes. Most nodes have one or
//! two, which are stored without an allocation.

use std::mem;
use std::task::Waker;

use super::node::NodeRef;

pub(crate) enum Waiter {
    /// A dependent waiting in the given epoch of its run.
    Node(NodeRef, u32),
    /// A compute future.
    Compute(Waker),
}

#[derive(Default)]
pub(crate) enum Waiters {
    #[default]
    None,
    One(Waiter),
    Two([Waiter; 2]),
    Many(Vec<Waiter>),
}

impl Waiters {
    /// Registers `waker` to hear when the node finishes, in place of
    /// `registered`, the waker this waiter registered before (if any).
    pub(crate) fn register_waker(&mut self, registered: &mut Option<Waker>, waker: &Waker) {
        if registered.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return;
        }
        let waiter = Waiter::Compute(waker.clone());
        match registered.as_ref().and_then(|old| self.find_waker(old)) {
            Some(i) => self.replace(i, waiter),
            None => self.push(waiter),
        }
        *registered = Some(waker.clone());
    }

    pub(crate) fn push(&mut self, waiter: Waiter) {
        *self = match mem::take(self) {
            Waiters::None => Waiters::One(waiter),
            Waiters::One(first) => Waiters::Two([first, waiter]),
            Waiters::Two(two) => Waiters::Many(super::inputs::spill(two, waiter)),
            Waiters::Many(mut all) => {
                all.push(waiter);
                Waiters::Many(all)
            }
        };
    }

    pub(crate) fn as_slice(&self) -> &[Waiter] {
        match self {
            Waiters::None => &[],
            Waiters::One(waiter) => std::slice::from_ref(waiter),
            Waiters::Two(two) => two,
            Waiters::Many(all) => all,
        }
    }

    /// Where a compute registered `waker`.
    pub(crate) fn find_waker(&self, waker: &Waker) -> Option<usize> {
        self.as_slice()
            .iter()
            .position(|l| matches!(l, Waiter::Compute(w) if w.will_wake(waker)))
    }

    pub(crate) fn replace(&mut self, index: usize, waiter: Waiter) {
        match self {
            Waiters::None => {}
            Waiters::One(only) => *only = waiter,
            Waiters::Two(two) => two[index] = waiter,
            Waiters::Many(all) => all[index] = waiter,
        }
    }

    pub(crate) fn remove(&mut self, index: usize) {
        match self {
            Waiters::None => {}
            Waiters::One(_) => *self = Waiters::None,
            Waiters::Two(_) => {
                let Waiters::Two([first, second]) = std::mem::take(self) else {
                    return;
                };
                *self = Waiters::One(if index == 0 { second } else { first });
            }
            Waiters::Many(all) => drop(all.swap_remove(index)),
        }
    }
}

impl IntoIterator for Waiters {
    type Item = Waiter;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        match self {
            Waiters::None => IntoIter::Inline([None, None]),
            Waiters::One(waiter) => IntoIter::Inline([None, Some(waiter)]),
            Waiters::Two([first, second]) => IntoIter::Inline([Some(second), Some(first)]),
            Waiters::Many(all) => IntoIter::Many(all.into_iter()),
        }
    }
}

/// Yields the waiters in the order they registered.
pub(crate) enum IntoIter {
    /// Taken from the back.
    Inline([Option<Waiter>; 2]),
    Many(std::vec::IntoIter<Waiter>),
}

impl Iterator for IntoIter {
    type Item = Waiter;

    fn next(&mut self) -> Option<Waiter> {
        match self {
            IntoIter::Inline([first, second]) => second.take().or_else(|| first.take()),
            IntoIter::Many(all) => all.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Delayed;

    fn node(n: u32) -> Waiter {
        Waiter::Node(Delayed::value(n).node, n)
    }

    fn epochs(waiters: Waiters) -> Vec<u32> {
        waiters
            .into_iter()
            .map(|l| match l {
                Waiter::Node(_, epoch) => epoch,
                Waiter::Compute(_) => u32::MAX,
            })
            .collect()
    }

    #[test]
    fn keeps_registration_order_across_inline_and_heap_storage() {
        for count in 0..5 {
            let mut waiters = Waiters::None;
            for n in 0..count {
                waiters.push(node(n));
            }
            assert_eq!(epochs(waiters), (0..count).collect::<Vec<_>>());
        }
    }

    #[test]
    fn finds_replaces_and_removes_wakers() {
        let waker = futures::task::noop_waker();
        for before in 0..3 {
            let mut waiters = Waiters::None;
            for n in 0..before {
                waiters.push(node(n));
            }
            waiters.push(Waiter::Compute(waker.clone()));
            let at = waiters.find_waker(&waker).expect("registered");
            assert_eq!(at, before as usize);
            waiters.replace(at, Waiter::Compute(waker.clone()));
            assert_eq!(waiters.find_waker(&waker), Some(at));
            waiters.remove(at);
            assert_eq!(waiters.find_waker(&waker), None);
            assert_eq!(epochs(waiters), (0..before).collect::<Vec<_>>());
        }
    }
}
