//! Interning of pure calls: equal calls alive at the same time are one node.

use std::any::Any;
use std::sync::{Arc, OnceLock, Weak};

use dashmap::DashMap;

use crate::key::KeyId;
use crate::node::{Literal, Node};
use crate::task::Task;

fn table() -> &'static DashMap<[u64; 2], Weak<dyn Task>> {
    static TABLE: OnceLock<DashMap<[u64; 2], Weak<dyn Task>>> = OnceLock::new();
    TABLE.get_or_init(DashMap::new)
}

fn same(weak: &Weak<dyn Task>, ptr: *const ()) -> bool {
    std::ptr::eq(weak.as_ptr().cast::<()>(), ptr)
}

fn is_output<T: 'static>(task: &dyn Task) -> bool {
    let cell: &dyn Any = task.output_any();
    cell.is::<OnceLock<T>>()
}

thread_local! {
    /// Set while a keyed graph builds its nodes: each key gets a node of
    /// its own, even for a pure function.
    static SOLO: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with interning off on this thread.
#[cfg_attr(not(feature = "serde"), allow(dead_code))]
pub(crate) fn solo<R>(f: impl FnOnce() -> R) -> R {
    let before = SOLO.with(|solo| solo.replace(true));
    let result = f();
    SOLO.with(|solo| solo.set(before));
    result
}

/// Whether interning is off on this thread.
pub(crate) fn is_solo() -> bool {
    SOLO.with(std::cell::Cell::get)
}

/// The live node for `token`, or a new one from `make`.
pub(crate) fn get_or_insert<T: 'static>(
    token: [u64; 2],
    make: impl FnOnce() -> Arc<dyn Task>,
) -> Arc<dyn Task> {
    let live = |weak: &Weak<dyn Task>| weak.upgrade().filter(|task| is_output::<T>(&**task));
    if let Some(task) = table().get(&token).and_then(|weak| live(&weak)) {
        return task;
    }
    let fresh = make();
    let existing = {
        let mut entry = table()
            .entry(token)
            .or_insert_with(|| Weak::<Node<(), Literal>>::new() as Weak<dyn Task>);
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
    if let KeyId::Token(token) = id {
        table().remove_if(token, |_, weak| same(weak, ptr));
    }
}

/// Un-interns a node we hold the only handle to, so that it can be taken
/// apart without recursion.
pub(crate) fn release_sole(task: &Arc<dyn Task>) {
    let id = {
        let st = task.core().lock();
        if !st.interned {
            return;
        }
        st.id.clone()
    };
    if let KeyId::Token(token) = id {
        let ptr = Arc::as_ptr(task).cast::<()>();
        let removed = table().remove_if(&token, |_, weak| {
            same(weak, ptr) && Arc::strong_count(task) == 1
        });
        if removed.is_some() {
            task.core().lock().interned = false;
        }
    }
}

/// Un-interns a node that gets a custom key.
pub(crate) fn rename(task: &Arc<dyn Task>) {
    let mut st = task.core().lock();
    if st.interned {
        st.interned = false;
        let id = st.id.clone();
        drop(st);
        forget(&id, Arc::as_ptr(task).cast::<()>());
    }
}
