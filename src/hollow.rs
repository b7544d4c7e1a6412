//! Hollow nodes: finished, with the output left elsewhere.
//!
//! When a node runs on a cluster and only other remote tasks of the same
//! run read its result, the client does not download it: the node is done
//! and *hollow*, its cell empty, its result in the cluster's store. A join
//! of hollow inputs is hollow too, without running. Readers here fill a
//! hollow node first ([`materialize`]): a remote node is read back from the
//! store, a join runs over its filled inputs. So a big intermediate goes
//! from worker to worker and never crosses to the client unless something
//! here reads it.
//!
//! A hollow node keeps its inputs and body. When its stored result goes
//! away (its last remote reader finished, or its compute ended), the node
//! is reverted to idle, and a reader that finds it so sets its own run up
//! again, which runs the node again.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::error::Error;
use crate::node::{Body, Node};
use crate::task::{Origin, Phase, State, Task};

/// Filling a node, or a reader's inputs: `Ok(false)` when one was
/// reverted.
pub(crate) type Filling = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send>>;

/// How many hollow results one reader reads back at once.
const READS_AT_ONCE: usize = 16;

/// Fills every hollow node among `deps`, and through hollow joins their
/// inputs, inputs first. `Ok(false)` when one was reverted: the reader must
/// set its run up again.
pub(crate) async fn materialize(deps: &[Arc<dyn Task>]) -> Result<bool, Error> {
    let mut joins = Vec::new();
    let mut stored = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(Arc<dyn Task>, bool)> =
        deps.iter().map(|dep| (Arc::clone(dep), false)).collect();
    while let Some((task, expanded)) = stack.pop() {
        if expanded {
            joins.push(task);
            continue;
        }
        if !seen.insert(Arc::as_ptr(&task).cast::<()>() as usize) {
            continue;
        }
        let inputs = {
            let st = task.core().lock();
            if !st.hollow {
                if matches!(st.phase, Phase::Done) {
                    continue;
                }
                // Reverted before we came to read it: so are the hollow
                // joins on the way to it, which cannot be filled now.
                drop(st);
                for (join, _) in stack.iter().filter(|(_, expanded)| *expanded) {
                    revert(join);
                }
                return Ok(false);
            }
            if task.core().origin != Origin::Join {
                drop(st);
                stored.push(task);
                continue;
            }
            st.deps.to_vec()
        };
        stack.push((task, true));
        stack.extend(inputs.into_iter().map(|input| (input, false)));
    }
    let mut reads = FuturesUnordered::new();
    let mut stored = stored.into_iter();
    loop {
        while reads.len() < READS_AT_ONCE {
            let Some(task) = stored.next() else { break };
            reads.push(task.fill());
        }
        let Some(filled) = reads.next().await else {
            break;
        };
        if !filled? {
            return Ok(false);
        }
    }
    // Inputs first: `joins` is in post-order.
    for join in joins {
        if !join.fill().await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Fills one hollow node.
pub(crate) async fn fill<T, B>(node: Arc<Node<T, B>>) -> Result<bool, Error>
where
    T: Send + Sync + 'static,
    B: Body<T>,
{
    let (stored, deps) = {
        let st = node.core.lock();
        if !st.hollow {
            return Ok(node.output.get().is_some());
        }
        let stored = st.policy.as_ref().and_then(|policy| policy.stored.clone());
        (stored, st.deps.clone())
    };
    let value = match stored {
        Some(remote) => {
            let task: Arc<dyn Task> = Arc::clone(&node) as _;
            match remote.cluster.download(&task, &remote.run).await {
                Ok(value) => value.downcast::<T>().map(|value| *value).map_err(|_| {
                    Error::runtime(node.core.key(), "a worker's result has the wrong type")
                }),
                // Deleted because the node was reverted: not an error.
                Err(_) if !node.core.lock().hollow => return Ok(false),
                Err(err) => Err(err),
            }
        }
        None => {
            let unfilled = |dep: &Arc<dyn Task>| {
                let st = dep.core().lock();
                st.hollow || !matches!(st.phase, Phase::Done)
            };
            if deps.iter().any(unfilled) {
                // An input was reverted while we filled the others.
                revert(&(Arc::clone(&node) as Arc<dyn Task>));
                return Ok(false);
            }
            B::attempt(&node, deps, true).await
        }
    }?;
    Ok(node.set_filled(value))
}

/// Turns a hollow node back into an idle one that runs again when wanted.
pub(crate) fn revert(task: &Arc<dyn Task>) {
    let mut st = task.core().lock();
    if st.hollow {
        unmark(&mut st);
        st.phase = Phase::Idle;
        st.demand = 0;
    }
}

/// Clears the hollow mark and the stored location.
pub(crate) fn unmark(st: &mut State) {
    st.hollow = false;
    if st
        .policy
        .as_ref()
        .is_some_and(|policy| policy.stored.is_some())
    {
        crate::policy::update_locked(st, |policy| policy.stored = None);
    }
}
