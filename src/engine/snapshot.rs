//! Snapshots of a graph: the nodes behind a root, their keys, states,
//! errors and inputs, as the vocabulary's [`Graph`] holds them.
//!
//! A snapshot shows the graph the user wrote: internal nodes (literals,
//! joins, maps of nodes: see `Core::is_internal`) are walked through but
//! left out, and a node's inputs are the nearest user nodes behind them.
//! So `analyze(vec![a, b, c])` depends on `a`, `b` and `c`, not on the
//! `list` node that gathers them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use foldhash::fast::RandomState;

use super::inputs::Inputs;
use super::node::{address, AnyNode, NodeRef};
use super::state::{Phase, State};
use crate::{Graph, GraphNode, Key, TaskState};

/// Walks the graph behind `root` without recursion, each node after its
/// inputs. Each node's lock is held only to copy its key, state and inputs.
pub(crate) fn graph(root: &NodeRef) -> Graph {
    graph_and_tasks(root).0
}

/// [`graph`], with a weak handle to each node it shows, in the same order.
pub(crate) fn graph_and_tasks(root: &NodeRef) -> (Graph, Vec<Weak<dyn AnyNode>>) {
    /// A step of the walk: see a node's inputs first, then emit it.
    enum Step {
        Enter(NodeRef),
        Emit(NodeRef, Inputs),
    }
    let mut seen: HashSet<usize, RandomState> = HashSet::default();
    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    // The user nodes each internal node stands for, by address.
    let mut behind: HashMap<usize, Vec<Key>, RandomState> = HashMap::default();
    let mut stack = vec![Step::Enter(NodeRef::clone(root))];
    while let Some(step) = stack.pop() {
        match step {
            Step::Enter(node) => {
                if !seen.insert(address(&node)) {
                    continue;
                }
                // Inline for up to two inputs: no list to copy them into.
                let inputs = node.core().lock().deps.clone();
                stack.push(Step::Emit(node, inputs.clone()));
                // Entered in argument order, each before the node is emitted.
                for input in inputs.iter().rev() {
                    if !seen.contains(&address(input)) {
                        stack.push(Step::Enter(NodeRef::clone(input)));
                    }
                }
            }
            Step::Emit(node, inputs) => {
                let (key, state, error, internal, limit) = {
                    let st = node.core().lock();
                    let error = match &st.phase {
                        Phase::Failed(err) => Some(err.clone()),
                        _ => None,
                    };
                    let internal = node.core().is_internal(&st);
                    let limit = st.policy.as_ref().and_then(|policy| policy.limit);
                    let key = node.core().key_locked(&st);
                    (key, state_of(&st), error, internal, limit)
                };
                let deps = user_inputs(&inputs, &behind);
                if internal {
                    behind.insert(address(&node), deps);
                } else {
                    nodes.push(GraphNode::new(key, deps, state, error).limited_by(limit));
                    tasks.push(Arc::downgrade(&node));
                }
            }
        }
    }
    (Graph::from_nodes(nodes), tasks)
}

/// The keys of the user nodes among `inputs`, each internal input replaced
/// by the user nodes behind it; each key once, in argument order.
fn user_inputs(inputs: &[NodeRef], behind: &HashMap<usize, Vec<Key>, RandomState>) -> Vec<Key> {
    /// Up to this many keys, a linear search finds repeats: no set to make
    /// for the common node with one or two inputs.
    const FEW: usize = 16;
    let mut keys: Vec<Key> = Vec::with_capacity(inputs.len());
    let mut once: HashSet<Key, RandomState> = HashSet::default();
    let mut add = |key: Key| {
        if keys.len() < FEW {
            if !keys.contains(&key) {
                keys.push(key);
            }
            return;
        }
        if once.is_empty() {
            once.extend(keys.iter().cloned());
        }
        if once.insert(key.clone()) {
            keys.push(key);
        }
    };
    for input in inputs {
        // Every input was emitted before the node that uses it.
        match behind.get(&address(input)) {
            Some(users) => users.iter().cloned().for_each(&mut add),
            None => add(input.core().key()),
        }
    }
    keys
}

/// The public state of a node.
pub(in crate::engine) fn state_of(st: &State) -> TaskState {
    match &st.phase {
        Phase::Idle if st.epoch > 0 => TaskState::Cancelled,
        Phase::Idle | Phase::Claimed | Phase::Waiting { .. } | Phase::Ready => TaskState::Waiting,
        Phase::Running { .. } => TaskState::Running,
        Phase::Done if st.policy.as_ref().is_some_and(|policy| policy.recalled) => {
            TaskState::Cached
        }
        Phase::Done => TaskState::Done,
        Phase::Failed(_) => TaskState::Failed,
    }
}
