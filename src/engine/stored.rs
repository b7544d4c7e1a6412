//! Stored outputs: nodes that are finished, with their output kept
//! elsewhere.
//!
//! When a node's attempt runs through an [`Executor`] and leaves its output
//! in an [`OutputStore`] (another machine's store, say, when only remote
//! tasks read it), the node is done with its output *stored*: its cell is empty.
//! A join of inputs with stored outputs is stored too, without running: its
//! output is in its inputs. Readers here read a stored node back first
//! ([`read_back_all`]): from its store, or, for a join, by running it over
//! its inputs, read back first. So a big intermediate can go from worker to
//! worker and never cross to this process unless something here reads it.
//!
//! A stored node keeps its inputs and work. When its stored output goes
//! away (the store deleted it), the node is reverted to idle, and a reader
//! that finds it so sets its own run up again (`Made::Again`), which runs
//! the node again.
//!
//! [`Executor`]: super::hooks::Executor
//! [`OutputStore`]: super::hooks::OutputStore

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};

use super::node::{address, NodeRef, TypedNode, Work};
use super::policy;
use super::state::{Origin, Phase, State};
use super::view::NodeView;
use crate::error::Error;

/// Reading a node back, or a reader's inputs: `Ok(false)` when one was
/// reverted.
pub(crate) type Reading = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send>>;

/// How many stored outputs one reader reads back at once.
const READS_AT_ONCE: usize = 16;

/// Reads back every stored node among `deps`, and through stored joins
/// their inputs, inputs first. `Ok(false)` when one was reverted: the
/// reader must set its run up again.
pub(crate) async fn read_back_all(deps: &[NodeRef]) -> Result<bool, Error> {
    let mut joins = Vec::new();
    let mut stored = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(NodeRef, bool)> = deps
        .iter()
        .map(|dep| (NodeRef::clone(dep), false))
        .collect();
    while let Some((node, expanded)) = stack.pop() {
        if expanded {
            joins.push(node);
            continue;
        }
        if !seen.insert(address(&node)) {
            continue;
        }
        let inputs = {
            let st = node.core().lock();
            if !st.stored {
                if matches!(st.phase, Phase::Done) {
                    continue;
                }
                // Reverted before we came to read it: so are the stored
                // joins on the way to it, which cannot be read now.
                drop(st);
                for (join, _) in stack.iter().filter(|(_, expanded)| *expanded) {
                    revert(join);
                }
                return Ok(false);
            }
            if node.core().origin != Origin::Join {
                drop(st);
                stored.push(node);
                continue;
            }
            st.deps.to_vec()
        };
        stack.push((node, true));
        stack.extend(inputs.into_iter().map(|input| (input, false)));
    }
    let mut reads = FuturesUnordered::new();
    let mut stored = stored.into_iter();
    loop {
        while reads.len() < READS_AT_ONCE {
            let Some(node) = stored.next() else { break };
            reads.push(node.read_back());
        }
        let Some(read) = reads.next().await else {
            break;
        };
        if !read? {
            return Ok(false);
        }
    }
    // Inputs first: `joins` is in post-order.
    for join in joins {
        if !join.read_back().await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads one stored node back.
pub(crate) async fn read_back<T, W>(node: Arc<TypedNode<T, W>>) -> Result<bool, Error>
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let (store, deps) = {
        let st = node.core.lock();
        if !st.stored {
            return Ok(node.output.get().is_some());
        }
        let store = st.policy.as_ref().and_then(|policy| policy.store.clone());
        (store, st.deps.clone())
    };
    let value = match store {
        Some(store) => {
            let view = NodeView::new(Arc::clone(&node) as NodeRef);
            match store.read(view).await {
                Ok(Some(value)) => value.downcast::<T>().map(|value| *value).map_err(|_| {
                    Error::runtime(node.core.key(), "a stored output has the wrong type")
                }),
                Ok(None) => {
                    revert(&(Arc::clone(&node) as NodeRef));
                    return Ok(false);
                }
                // Deleted because the node was reverted: not an error.
                Err(_) if !node.core.lock().stored => return Ok(false),
                Err(err) => Err(err),
            }
        }
        None => {
            let unread = |dep: &NodeRef| {
                let st = dep.core().lock();
                st.stored || !matches!(st.phase, Phase::Done)
            };
            if deps.iter().any(unread) {
                // An input was reverted while we read the others.
                revert(&(Arc::clone(&node) as NodeRef));
                return Ok(false);
            }
            W::attempt(&node, deps, true).await
        }
    }?;
    Ok(node.set_read_back(value))
}

/// Turns a stored node back into an idle one that runs again when wanted.
pub(crate) fn revert(node: &NodeRef) {
    let mut st = node.core().lock();
    if st.stored {
        unmark(&mut st);
        st.phase = Phase::Idle;
        st.demand = 0;
    }
}

/// Clears the stored mark and the store.
pub(in crate::engine) fn unmark(st: &mut State) {
    st.stored = false;
    if st
        .policy
        .as_ref()
        .is_some_and(|policy| policy.store.is_some())
    {
        policy::update_locked(st, |policy| policy.store = None);
    }
}
