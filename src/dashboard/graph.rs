//! The latest graph a compute started with, capped, with each node's state
//! as the tasks run.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use serde::Serialize;

use super::wire::{outcome_state, StateName};
use crate::{Graph, Key, Outcome, TaskState};

/// How many nodes of a graph the dashboard keeps and draws: the first ones,
/// each after its inputs. The page says when a graph has more.
pub(super) const GRAPH_NODES: usize = 2_000;

/// A graph's nodes (at most [`GRAPH_NODES`]) and their states now.
#[derive(Clone)]
pub(super) struct LiveGraph {
    shape: Arc<Shape>,
    states: Vec<TaskState>,
}

/// What does not change while the graph runs.
struct Shape {
    keys: Vec<String>,
    names: Vec<&'static str>,
    /// Each node's inputs, by index: always earlier nodes.
    deps: Vec<Vec<u32>>,
    dependents: Vec<Vec<u32>>,
    index: HashMap<Key, u32, RandomState>,
    /// How many nodes the whole graph has.
    total: usize,
}

/// A graph as the page gets it.
#[derive(Serialize)]
pub(super) struct GraphView<'a> {
    total: usize,
    nodes: Vec<NodeView<'a>>,
}

#[derive(Serialize)]
struct NodeView<'a> {
    key: &'a str,
    name: &'static str,
    state: StateName,
    deps: &'a [u32],
}

impl LiveGraph {
    pub(super) fn new(graph: &Graph) -> LiveGraph {
        let nodes = &graph.nodes()[..graph.nodes().len().min(GRAPH_NODES)];
        let mut index = HashMap::with_capacity_and_hasher(nodes.len(), RandomState::default());
        for (i, node) in nodes.iter().enumerate() {
            index.entry(node.key().clone()).or_insert(i as u32);
        }
        let deps: Vec<Vec<u32>> = nodes
            .iter()
            .map(|node| {
                node.deps()
                    .iter()
                    .filter_map(|dep| index.get(dep).copied())
                    .collect()
            })
            .collect();
        let mut dependents = vec![Vec::new(); nodes.len()];
        for (i, inputs) in deps.iter().enumerate() {
            for &input in inputs {
                dependents[input as usize].push(i as u32);
            }
        }
        LiveGraph {
            states: nodes.iter().map(|node| node.state()).collect(),
            shape: Arc::new(Shape {
                keys: nodes.iter().map(|node| node.key().to_string()).collect(),
                names: nodes.iter().map(|node| node.name()).collect(),
                deps,
                dependents,
                index,
                total: graph.nodes().len(),
            }),
        }
    }

    /// Sets the state of the node `key`, if the graph has it; returns what
    /// changed.
    pub(super) fn set(&mut self, key: &Key, state: TaskState) -> Vec<(u32, StateName)> {
        match self.shape.index.get(key) {
            Some(&i) => {
                self.states[i as usize] = state;
                vec![(i, StateName(state))]
            }
            None => Vec::new(),
        }
    }

    /// Marks the node `key` with how its task ended; when it failed, its
    /// dependents that have not ended fail too (they will not run).
    pub(super) fn finish(&mut self, key: &Key, outcome: &Outcome) -> Vec<(u32, StateName)> {
        let state = outcome_state(outcome);
        let mut changed = self.set(key, state);
        if state != TaskState::Failed {
            return changed;
        }
        let mut next: Vec<u32> = changed.iter().map(|&(i, _)| i).collect();
        while let Some(i) = next.pop() {
            for &dependent in &self.shape.dependents[i as usize] {
                let current = &mut self.states[dependent as usize];
                if matches!(*current, TaskState::Waiting | TaskState::Cancelled) {
                    *current = TaskState::Failed;
                    changed.push((dependent, StateName(TaskState::Failed)));
                    next.push(dependent);
                }
            }
        }
        changed
    }

    pub(super) fn view(&self) -> GraphView<'_> {
        let shape = &*self.shape;
        GraphView {
            total: shape.total,
            nodes: (0..shape.keys.len())
                .map(|i| NodeView {
                    key: &shape.keys[i],
                    name: shape.names[i],
                    state: StateName(self.states[i]),
                    deps: &shape.deps[i],
                })
                .collect(),
        }
    }
}
