//! Interning of pure calls: equal calls alive at the same time are one node.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};

use dashmap::DashMap;

use crate::engine::node::{address, AnyNode, NodeRef};
use crate::engine::node::{Literal, TypedNode};
use crate::key::KeyId;

fn table() -> &'static DashMap<[u64; 2], Weak<dyn AnyNode>> {
    static TABLE: OnceLock<DashMap<[u64; 2], Weak<dyn AnyNode>>> = OnceLock::new();
    TABLE.get_or_init(DashMap::new)
}

fn same(weak: &Weak<dyn AnyNode>, ptr: *const ()) -> bool {
    std::ptr::eq(weak.as_ptr().cast::<()>(), ptr)
}

fn is_output<T: 'static>(task: &dyn AnyNode) -> bool {
    let cell: &dyn Any = task.output_any();
    cell.is::<OnceLock<T>>()
}

thread_local! {
    /// Set while a graph described as data builds its nodes: each key gets a node of
    /// its own, even for a pure function.
    static DISTINCT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with interning off on this thread: every node it makes is
/// distinct, even an equal pure call.
#[allow(dead_code, reason = "for extensions, which a build may leave out")]
pub(crate) fn distinct<R>(f: impl FnOnce() -> R) -> R {
    let before = DISTINCT.with(|distinct| distinct.replace(true));
    let result = f();
    DISTINCT.with(|distinct| distinct.set(before));
    result
}

/// Whether interning is off on this thread.
pub(crate) fn is_distinct() -> bool {
    DISTINCT.with(std::cell::Cell::get)
}

/// The live node for `token`, or the new one `make` builds.
///
/// When an equal node is live, the new one is kept aside as this thread's
/// spare for it: `Delayed::named` on the returned handle takes it, so that
/// naming a call does not rename an equal earlier call.
pub(crate) fn get_or_insert<T: 'static>(
    token: [u64; 2],
    make: impl FnOnce() -> NodeRef,
) -> NodeRef {
    let live = |weak: &Weak<dyn AnyNode>| weak.upgrade().filter(|task| is_output::<T>(&**task));
    let fresh = make();
    let existing = {
        let mut entry = table()
            .entry(token)
            .or_insert_with(|| Weak::<TypedNode<(), Literal>>::new() as Weak<dyn AnyNode>);
        match live(&entry) {
            Some(task) => Some(task),
            None => {
                fresh.core().interned.store(true, Ordering::Release);
                *entry = Arc::downgrade(&fresh);
                None
            }
        }
    };
    match existing {
        // Ours becomes the spare, and the one it replaces is dropped here,
        // outside the table's lock.
        Some(task) => {
            let _replaced = SPARE.with(|spare| spare.replace(Some((address(&task), fresh))));
            task
        }
        None => fresh,
    }
}

thread_local! {
    /// The node the last pure call on this thread built but did not use,
    /// because an equal node was live, with that node's address.
    static SPARE: std::cell::RefCell<Option<(usize, NodeRef)>> = const { std::cell::RefCell::new(None) };
}

/// Drops this thread's spare node, if any.
pub(crate) fn drop_spare() {
    let spare = SPARE
        .try_with(|spare| spare.borrow_mut().take())
        .ok()
        .flatten();
    drop(spare);
}

/// The spare of `task`, if the last pure call on this thread returned it
/// and someone else holds it too: a node of its own for this call.
pub(crate) fn take_spare(task: &NodeRef) -> Option<NodeRef> {
    if Arc::strong_count(task) < 2 {
        return None;
    }
    SPARE
        .try_with(|spare| {
            let mut spare = spare.borrow_mut();
            match &*spare {
                Some((at, _)) if *at == address(task) => spare.take().map(|(_, node)| node),
                _ => None,
            }
        })
        .ok()
        .flatten()
}

/// Removes the entry of a node being dropped, if it still points at it.
pub(crate) fn forget(id: &KeyId, ptr: *const ()) {
    if let Some(token) = id.token() {
        table().remove_if(token, |_, weak| same(weak, ptr));
    }
}

/// Un-interns a node we hold the only handle to, so that it can be taken
/// apart without recursion.
pub(crate) fn release_sole(task: &NodeRef) {
    if !task.core().interned.load(Ordering::Acquire) {
        return;
    }
    let id = task.core().lock().id.clone();
    if let Some(token) = id.token() {
        let ptr = Arc::as_ptr(task).cast::<()>();
        let removed = table().remove_if(token, |_, weak| {
            same(weak, ptr) && Arc::strong_count(task) == 1
        });
        if removed.is_some() {
            task.core().interned.store(false, Ordering::Release);
        }
    }
}

/// Un-interns a node that gets a custom key.
pub(crate) fn rename(task: &NodeRef) {
    if task.core().interned.swap(false, Ordering::AcqRel) {
        let id = task.core().lock().id.clone();
        forget(&id, Arc::as_ptr(task).cast::<()>());
    }
}
