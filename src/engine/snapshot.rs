//! Snapshots of a graph: the nodes behind a root, their keys, states,
//! errors and inputs, as the vocabulary's [`Graph`] holds them.

use std::collections::HashSet;

use super::node::NodeRef;
use super::state::{Phase, State};
use crate::{Graph, GraphNode, TaskState};

/// Walks the graph behind `root` without recursion, each node after its
/// inputs. Each node's lock is held only to copy its key, state and inputs.
pub(crate) fn graph(root: &NodeRef) -> Graph {
    /// A step of the walk: see a node's inputs first, then emit it.
    enum Step {
        Enter(NodeRef),
        Emit(NodeRef, Vec<NodeRef>),
    }
    let mut seen = HashSet::new();
    let mut nodes = Vec::new();
    let mut stack = vec![Step::Enter(NodeRef::clone(root))];
    while let Some(step) = stack.pop() {
        match step {
            Step::Enter(node) => {
                if !seen.insert(super::node::address(&node)) {
                    continue;
                }
                let inputs = node.core().lock().deps.to_vec();
                let enter: Vec<_> = inputs
                    .iter()
                    .rev()
                    .map(|i| Step::Enter(NodeRef::clone(i)))
                    .collect();
                stack.push(Step::Emit(node, inputs));
                stack.extend(enter);
            }
            Step::Emit(node, inputs) => {
                let (key, state, error) = {
                    let st = node.core().lock();
                    let error = match &st.phase {
                        Phase::Failed(err) => Some(err.clone()),
                        _ => None,
                    };
                    (node.core().key_locked(&st), state_of(&st), error)
                };
                let deps = inputs.iter().map(|input| input.core().key()).collect();
                nodes.push(GraphNode::new(key, deps, state, error));
            }
        }
    }
    Graph::from_nodes(nodes)
}

/// The public state of a node.
pub(in crate::engine) fn state_of(st: &State) -> TaskState {
    match &st.phase {
        Phase::Idle if st.epoch > 0 => TaskState::Cancelled,
        Phase::Idle | Phase::Claimed | Phase::Waiting { .. } | Phase::Ready => TaskState::Waiting,
        Phase::Running { .. } => TaskState::Running,
        Phase::Done => TaskState::Done,
        Phase::Failed(_) => TaskState::Failed,
    }
}
