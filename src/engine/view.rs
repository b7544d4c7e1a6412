//! The face of a node that the layers above the engine see: what it is
//! (key, name, inputs, dependents, state, error, output) and a few named
//! hooks to change how it runs. Nothing here hands out the node's lock or
//! its phase, so the engine keeps its invariants to itself.
//!
//! Only extensions use it, and a build may leave every extension out.
#![allow(
    dead_code,
    reason = "the extensions' face; a build may leave them all out"
)]

use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::hooks::{Executor, Memo};
use super::node::{address, NodeRef};
use super::policy::{self, NodePolicy};
use super::state::{Origin, Phase};
use super::waiters::Waiter;
use super::{intern, stored};
use crate::key::{Key, KeyId};
use crate::limit::Limit;
use crate::retry::Retry;
use crate::Error;

/// A handle to a node that can look at it, not run it.
#[derive(Clone)]
pub(crate) struct NodeView {
    node: NodeRef,
}

/// The policies a user sets on a node: see `Delayed::limit` and siblings.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) limit: Option<&'static Limit>,
    pub(crate) retry: Option<Retry>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) priority: Option<i32>,
}

impl NodeView {
    pub(crate) fn new(node: NodeRef) -> NodeView {
        NodeView { node }
    }

    /// The node, for the API layer that made it (`Delayed`).
    pub(crate) fn into_node(self) -> NodeRef {
        self.node
    }

    pub(crate) fn key(&self) -> Key {
        self.node.core().key()
    }

    pub(crate) fn name(&self) -> &'static str {
        self.node.core().name()
    }

    pub(crate) fn origin(&self) -> Origin {
        self.node.core().origin
    }

    /// Whether the key was given by hand (`named`, or a key of a graph as data).
    pub(crate) fn has_custom_key(&self) -> bool {
        matches!(self.node.core().lock().id, KeyId::Custom(_))
    }

    /// The error it failed with, if it failed.
    pub(crate) fn error(&self) -> Option<Error> {
        match &self.node.core().lock().phase {
            Phase::Failed(err) => Some(err.clone()),
            _ => None,
        }
    }

    /// Whether it is done or failed.
    pub(crate) fn is_finished(&self) -> bool {
        self.node.core().lock().is_finished()
    }

    /// Calls `visit` on this node and every unfinished node behind it,
    /// each once, without recursion; the walk stops at finished nodes.
    /// What a placement marks before a compute starts.
    pub(crate) fn for_each_unfinished(&self, mut visit: impl FnMut(&NodeView)) {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![self.clone()];
        while let Some(node) = stack.pop() {
            if !seen.insert(node.address()) || node.is_finished() {
                continue;
            }
            let inputs = node.inputs();
            visit(&node);
            stack.extend(inputs);
        }
    }

    /// Its inputs (none once it finished with a value, which frees them;
    /// a failed node keeps those that failed).
    pub(crate) fn inputs(&self) -> Vec<NodeView> {
        let st = self.node.core().lock();
        st.deps.iter().cloned().map(NodeView::new).collect()
    }

    /// The inputs of an unfinished join made by `name`.
    pub(crate) fn join_parts(&self, name: &str) -> Option<Vec<NodeView>> {
        let core = self.node.core();
        if core.origin != Origin::Join || core.name() != name {
            return None;
        }
        let st = core.lock();
        (!st.is_finished()).then(|| st.deps.iter().cloned().map(NodeView::new).collect())
    }

    /// The dependents waiting on it now; `None` when a compute waits on it
    /// directly.
    pub(crate) fn dependents(&self) -> Option<Vec<NodeView>> {
        let st = self.node.core().lock();
        st.waiters
            .as_slice()
            .iter()
            .map(|waiter| match waiter {
                Waiter::Node(node, _) => Some(NodeView::new(NodeRef::clone(node))),
                Waiter::Compute(_) => None,
            })
            .collect()
    }

    /// Its output, if it is done and the output is here.
    pub(crate) fn output<T: 'static>(&self) -> Option<&T> {
        self.node
            .output_any()
            .downcast_ref::<OnceLock<T>>()
            .and_then(OnceLock::get)
    }

    /// Whether its output is a `T`.
    pub(crate) fn makes<T: 'static>(&self) -> bool {
        self.node.output_any().is::<OnceLock<T>>()
    }

    /// The user's policies on the node.
    pub(crate) fn settings(&self) -> Settings {
        let st = self.node.core().lock();
        st.policy.as_deref().map(Settings::of).unwrap_or_default()
    }

    /// Changes the user's policies, for the node's next runs.
    pub(crate) fn change_settings(&self, change: impl FnOnce(&mut Settings)) {
        policy::update(&self.node, |policy| {
            let mut settings = Settings::of(policy);
            change(&mut settings);
            policy.limit = settings.limit;
            policy.retry = settings.retry;
            policy.timeout = settings.timeout;
            policy.priority = settings.priority;
        });
    }

    /// Drops every policy: the work runs once, plainly, here.
    pub(crate) fn clear_policies(&self) {
        policy::clear(&self.node);
    }

    /// Runs the node's attempts through `executor` from now on (`None`:
    /// here again).
    pub(crate) fn run_elsewhere(&self, executor: Option<Arc<dyn Executor>>) {
        policy::update(&self.node, |policy| policy.executor = executor);
    }

    /// [`run_elsewhere`](NodeView::run_elsewhere) for many nodes: those
    /// with no other policy share one, so that a big compute placed
    /// elsewhere costs no policy per node.
    pub(crate) fn run_all_elsewhere(nodes: &[NodeView], executor: Option<Arc<dyn Executor>>) {
        policy::update_all(nodes.iter().map(|node| &node.node), |policy| {
            policy.executor = executor.clone();
        });
    }

    /// Whether the node's attempts run through `executor`.
    pub(crate) fn runs_on(&self, executor: &Arc<dyn Executor>) -> bool {
        let st = self.node.core().lock();
        st.policy
            .as_ref()
            .and_then(|policy| policy.executor.as_ref())
            .is_some_and(|mine| same_executor(mine, executor))
    }

    /// Runs the node's attempts here again, if they ran through `executor`.
    pub(crate) fn leave(&self, executor: &Arc<dyn Executor>) {
        if self.runs_on(executor) {
            self.run_elsewhere(None);
        }
    }

    /// The mark an extension left on the node's policy (see
    /// `NodePolicy::mark`).
    pub(crate) fn mark(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        let st = self.node.core().lock();
        st.policy.as_ref().and_then(|policy| policy.mark.clone())
    }

    /// The pool the node asks to run in (see `NodePolicy::pool`).
    pub(crate) fn pool(&self) -> Option<Arc<str>> {
        let st = self.node.core().lock();
        st.policy.as_ref().and_then(|policy| policy.pool.clone())
    }

    /// Remembers the node's outputs through `memo` from now on (`None`:
    /// not any more).
    pub(crate) fn remember_with(&self, memo: Option<Arc<dyn Memo>>) {
        policy::update(&self.node, |policy| policy.memo = memo);
    }

    /// Stops remembering through `memo`, if the node did.
    pub(crate) fn forget_memo(&self, memo: &Arc<dyn Memo>) {
        let mine = {
            let st = self.node.core().lock();
            st.policy
                .as_ref()
                .and_then(|policy| policy.memo.as_ref())
                .is_some_and(|mine| std::ptr::addr_eq(Arc::as_ptr(mine), Arc::as_ptr(memo)))
        };
        if mine {
            self.remember_with(None);
        }
    }

    /// Whether it is done with its output stored elsewhere, not here.
    pub(crate) fn is_stored(&self) -> bool {
        self.node.core().lock().stored
    }

    /// Its stored output went away: it runs again when something wants it.
    pub(crate) fn revert_stored(&self) {
        stored::revert(&self.node);
    }

    /// Gives the node a key of its own.
    pub(crate) fn rename(&self, key: impl Into<Arc<str>>) {
        intern::rename(&self.node);
        self.node.core().lock().id = KeyId::Custom(key.into());
    }

    /// Identifies the node while it lives.
    pub(crate) fn address(&self) -> usize {
        address(&self.node)
    }
}

impl Settings {
    fn of(policy: &NodePolicy) -> Settings {
        Settings {
            limit: policy.limit,
            retry: policy.retry.clone(),
            timeout: policy.timeout,
            priority: policy.priority,
        }
    }
}

/// Whether two executors are one.
fn same_executor(a: &Arc<dyn Executor>, b: &Arc<dyn Executor>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// Reads back every node among `nodes` whose output is stored (see
/// `stored.rs`). `Ok(false)` when one was reverted meanwhile: the caller
/// must set its run up again.
///
/// # Errors
///
/// A stored output that could not be read.
pub(crate) async fn read_back(nodes: &[NodeView]) -> Result<bool, Error> {
    let nodes: Vec<NodeRef> = nodes
        .iter()
        .map(|view| NodeRef::clone(&view.node))
        .collect();
    stored::read_back_all(&nodes).await
}
