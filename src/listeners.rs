//! Who waits on a node: dependents and computes. Most nodes have exactly
//! one, which is stored without an allocation.

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
    Many(Vec<Listener>),
}

impl Listeners {
    pub(crate) fn push(&mut self, listener: Listener) {
        *self = match mem::take(self) {
            Listeners::None => Listeners::One(listener),
            Listeners::One(first) => Listeners::Many(vec![first, listener]),
            Listeners::Many(mut all) => {
                all.push(listener);
                Listeners::Many(all)
            }
        };
    }

    fn as_slice(&self) -> &[Listener] {
        match self {
            Listeners::None => &[],
            Listeners::One(listener) => std::slice::from_ref(listener),
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
            Listeners::Many(all) => all[index] = listener,
        }
    }

    pub(crate) fn remove(&mut self, index: usize) {
        match self {
            Listeners::None => {}
            Listeners::One(_) => *self = Listeners::None,
            Listeners::Many(all) => drop(all.swap_remove(index)),
        }
    }
}

impl IntoIterator for Listeners {
    type Item = Listener;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Listener>, std::vec::IntoIter<Listener>>;

    fn into_iter(self) -> Self::IntoIter {
        let (one, many) = match self {
            Listeners::None => (None, Vec::new()),
            Listeners::One(listener) => (Some(listener), Vec::new()),
            Listeners::Many(all) => (None, all),
        };
        one.into_iter().chain(many)
    }
}
