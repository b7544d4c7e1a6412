//! Execution policies of a node: its limit, retries, timeout, priority,
//! and where it runs and where its output is kept when that is not here.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use super::hooks::{Executor, Memo, OutputStore};
use super::node::NodeRef;
use super::state::{State, UNSET};
use crate::limit::Limit;
use crate::retry::Retry;

/// How a node's work runs, beyond "once, now, here". Shared by every
/// handle to the node; read when a run starts.
#[derive(Clone, Default)]
pub(crate) struct NodePolicy {
    pub(crate) limit: Option<&'static Limit>,
    pub(crate) retry: Option<Retry>,
    pub(crate) timeout: Option<Duration>,
    /// Unset: the node has no priority of its own (0, unless it inherits one).
    pub(crate) priority: Option<i32>,
    /// Set while a compute runs the node elsewhere (see `hooks.rs`).
    pub(crate) executor: Option<Arc<dyn Executor>>,
    /// Where the output of a node with a stored output is kept.
    pub(crate) store: Option<Arc<dyn OutputStore>>,
    /// Set while a compute remembers the node's output across runs.
    pub(crate) memo: Option<Arc<dyn Memo>>,
    /// An extension's mark on the node, which the engine only carries
    /// (the description of a cached function, say).
    pub(crate) mark: Option<Arc<dyn Any + Send + Sync>>,
    /// The pool of machines the node asks to run in, for a placement that
    /// runs nodes elsewhere; the engine only carries it.
    pub(crate) pool: Option<Arc<str>>,
    /// The node finished with an output a [`Memo`] found, without running.
    pub(crate) recalled: bool,
}

impl NodePolicy {
    /// Whether a run needs the attempt runner: anything but a priority.
    pub(crate) fn supervised(&self) -> bool {
        self.limit.is_some()
            || self.retry.is_some()
            || self.timeout.is_some()
            || self.executor.is_some()
            || self.memo.is_some()
    }
}

impl NodePolicy {
    /// Whether it says nothing: the node's work runs once, plainly, here.
    fn is_plain(&self) -> bool {
        let NodePolicy {
            limit,
            retry,
            timeout,
            priority,
            executor,
            store,
            memo,
            mark,
            pool,
            recalled,
        } = self;
        limit.is_none()
            && retry.is_none()
            && timeout.is_none()
            && priority.is_none()
            && executor.is_none()
            && store.is_none()
            && memo.is_none()
            && mark.is_none()
            && pool.is_none()
            && !recalled
    }
}

/// Changes the policy of `node`, for its next runs.
pub(crate) fn update(node: &NodeRef, change: impl FnOnce(&mut NodePolicy)) {
    update_locked(&mut node.core().lock(), change);
}

/// [`update`] for many nodes at once: the nodes that had no policy share
/// the one `change` makes of none, rather than hold a copy each.
pub(crate) fn update_all<'a>(
    nodes: impl IntoIterator<Item = &'a NodeRef>,
    change: impl Fn(&mut NodePolicy),
) {
    let mut shared: Option<Option<Arc<NodePolicy>>> = None;
    for node in nodes {
        let mut st = node.core().lock();
        if st.policy.is_some() {
            update_locked(&mut st, &change);
            continue;
        }
        let policy = shared
            .get_or_insert_with(|| {
                let mut policy = NodePolicy::default();
                change(&mut policy);
                (!policy.is_plain()).then(|| Arc::new(policy))
            })
            .clone();
        install(&mut st, policy);
    }
}

/// [`update`], when the caller holds the node's lock. A policy that ends
/// up saying nothing is dropped.
pub(in crate::engine) fn update_locked(st: &mut State, change: impl FnOnce(&mut NodePolicy)) {
    let mut policy = st.policy.as_deref().cloned().unwrap_or_default();
    change(&mut policy);
    install(st, (!policy.is_plain()).then(|| Arc::new(policy)));
}

/// Gives a node `policy`, and the priority it says.
fn install(st: &mut State, policy: Option<Arc<NodePolicy>>) {
    st.priority = policy
        .as_ref()
        .and_then(|policy| policy.priority)
        .unwrap_or(UNSET);
    st.policy = policy;
}

/// Drops every policy of `node`: its work runs once, plainly, here.
#[allow(dead_code, reason = "for extensions, which a build may leave out")]
pub(crate) fn clear(node: &NodeRef) {
    let mut st = node.core().lock();
    st.policy = None;
    st.priority = UNSET;
}
