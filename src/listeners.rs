//! Who waits on a node: dependents and computes. Most nodes have one or
//! two, which are stored without an allocation.

use std::mem;
use std::sync::Arc;
use std::task::Waker;

use crate::task::Task;

pub(crate) enum Listener {
    /// A dependent waiting in the given epoch of its run.
    Node(Arc<dyn Task>, u32),
    /// A compute future.
    Waker(Waker),
}

#[derive(Default)]
pub(crate) enum Listeners {
    #[default]
    None,
    One(Listener),
    Two([Listener; 2]),
    Many(Vec<Listener>),
}

impl Listeners {
    /// Registers `waker` to hear when the node finishes, in place of
    /// `registered`, the waker this waiter registered before (if any).
    pub(crate) fn register_waker(&mut self, registered: &mut Option<Waker>, waker: &Waker) {
        if registered.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return;
        }
        let listener = Listener::Waker(waker.clone());
        match registered.as_ref().and_then(|old| self.find_waker(old)) {
            Some(i) => self.replace(i, listener),
            None => self.push(listener),
        }
        *registered = Some(waker.clone());
    }

    pub(crate) fn push(&mut self, listener: Listener) {
        *self = match mem::take(self) {
            Listeners::None => Listeners::One(listener),
            Listeners::One(first) => Listeners::Two([first, listener]),
            Listeners::Two(two) => {
                let mut all = Vec::from(two);
                all.push(listener);
                Listeners::Many(all)
            }
            Listeners::Many(mut all) => {
                all.push(listener);
                Listeners::Many(all)
            }
        };
    }

    pub(crate) fn as_slice(&self) -> &[Listener] {
        match self {
            Listeners::None => &[],
            Listeners::One(listener) => std::slice::from_ref(listener),
            Listeners::Two(two) => two,
            Listeners::Many(all) => all,
        }
    }

    /// Where a compute registered `waker`.
    pub(crate) fn find_waker(&self, waker: &Waker) -> Option<usize> {
        self.as_slice()
            .iter()
            .position(|l| matches!(l, Listener::Waker(w) if w.will_wake(waker)))
    }

    pub(crate) fn replace(&mut self, index: usize, listener: Listener) {
        match self {
            Listeners::None => {}
            Listeners::One(only) => *only = listener,
            Listeners::Two(two) => two[index] = listener,
            Listeners::Many(all) => all[index] = listener,
        }
    }

    pub(crate) fn remove(&mut self, index: usize) {
        match self {
            Listeners::None => {}
            Listeners::One(_) => *self = Listeners::None,
            Listeners::Two(_) => {
                let Listeners::Two([first, second]) = std::mem::take(self) else {
                    return;
                };
                *self = Listeners::One(if index == 0 { second } else { first });
            }
            Listeners::Many(all) => drop(all.swap_remove(index)),
        }
    }
}

impl IntoIterator for Listeners {
    type Item = Listener;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        match self {
            Listeners::None => IntoIter::Inline([None, None]),
            Listeners::One(listener) => IntoIter::Inline([None, Some(listener)]),
            Listeners::Two([first, second]) => IntoIter::Inline([Some(second), Some(first)]),
            Listeners::Many(all) => IntoIter::Many(all.into_iter()),
        }
    }
}

/// Yields the listeners in the order they registered.
pub(crate) enum IntoIter {
    /// Taken from the back.
    Inline([Option<Listener>; 2]),
    Many(std::vec::IntoIter<Listener>),
}

impl Iterator for IntoIter {
    type Item = Listener;

    fn next(&mut self) -> Option<Listener> {
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

    fn node(n: u32) -> Listener {
        Listener::Node(Delayed::value(n).node, n)
    }

    fn epochs(listeners: Listeners) -> Vec<u32> {
        listeners
            .into_iter()
            .map(|l| match l {
                Listener::Node(_, epoch) => epoch,
                Listener::Waker(_) => u32::MAX,
            })
            .collect()
    }

    #[test]
    fn keeps_registration_order_across_inline_and_heap_storage() {
        for count in 0..5 {
            let mut listeners = Listeners::None;
            for n in 0..count {
                listeners.push(node(n));
            }
            assert_eq!(epochs(listeners), (0..count).collect::<Vec<_>>());
        }
    }

    #[test]
    fn finds_replaces_and_removes_wakers() {
        let waker = futures::task::noop_waker();
        for before in 0..3 {
            let mut listeners = Listeners::None;
            for n in 0..before {
                listeners.push(node(n));
            }
            listeners.push(Listener::Waker(waker.clone()));
            let at = listeners.find_waker(&waker).expect("registered");
            assert_eq!(at, before as usize);
            listeners.replace(at, Listener::Waker(waker.clone()));
            assert_eq!(listeners.find_waker(&waker), Some(at));
            listeners.remove(at);
            assert_eq!(listeners.find_waker(&waker), None);
            assert_eq!(epochs(listeners), (0..before).collect::<Vec<_>>());
        }
    }
}
