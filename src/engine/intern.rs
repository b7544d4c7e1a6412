//! Interning of pure calls: equal calls alive at the same time are one node.

use std::any::Any;
use std::sync::{Arc, OnceLock, Weak};

use dashmap::DashMap;

use crate::engine::node::{AnyNode, NodeRef};
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

/// The live node for `token`, or a new one from `make`.
pub(crate) fn get_or_insert<T: 'static>(
    token: [u64; 2],
    make: impl FnOnce() -> NodeRef,
) -> NodeRef {
    let live = |weak: &Weak<dyn AnyNode>| weak.upgrade().filter(|task| is_output::<T>(&**task));
    if let Some(task) = table().get(&token).and_then(|weak| live(&weak)) {
        return task;
    }
    let fresh = make();
    let existing = {
        let mut entry = table()
            .entry(token)
            .or_insert_with(|| Weak::<TypedNode<(), Literal>>::new() as Weak<dyn AnyNode>);
        match live(&entry) {
            Some(task) => Some(task),
            None => {
                fresh.core().lock().interned = true;
                *entry = Arc::downgrade(&fresh);
                None
            }
        }
    };
    // A racing equal call won: use its node. Ours is dropped here, outside
    // the table's lock.
    existing.unwrap_or(fresh)
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
    let id = {
        let st = task.core().lock();
        if !st.interned {
            return;
        }
        st.id.clone()
    };
    if let Some(token) = id.token() {
        let ptr = Arc::as_ptr(task).cast::<()>();
        let removed = table().remove_if(token, |_, weak| {
            same(weak, ptr) && Arc::strong_count(task) == 1
        });
        if removed.is_some() {
            task.core().lock().interned = false;
        }
    }
}

/// Un-interns a node that gets a custom key.
pub(crate) fn rename(task: &NodeRef) {
    let mut st = task.core().lock();
    if st.interned {
        st.interned = false;
        let id = st.id.clone();
        drop(st);
        forget(&id, Arc::as_ptr(task).cast::<()>());
    }
}
