//! The overhead shapes written with async_dag 0.1.2.
//!
//! An async_dag `Graph` holds each task as a boxed closure whose
//! arguments are the outputs of the nodes wired to its input slots; its
//! `run` drives every ready task inside the one future it returns. Its
//! tasks are not `Send`, so the whole graph is built, run and dropped
//! inside one synchronous call (`futures::executor::block_on`, which never
//! parks here: no task waits on anything outside the graph), made from a
//! task on the tokio runtime like the other implementations.
//!
//! A task takes at most 12 inputs, so the fan-in of 100,000 leaves into
//! one node cannot be written, and the lattice's last row (100 nodes) is
//! summed by reading the values out of the graph after the run, not by a
//! 100-input node.

use async_dag::{Graph, NodeIndex};
use futures::executor::block_on;

/// A chain of `len` nodes: 1, then each node adds one to the one before.
pub(crate) fn chain(len: u64) -> u64 {
    let mut graph = Graph::new();
    let mut node = graph.add_task(|| async { 1u64 });
    for _ in 1..len {
        node = graph
            .add_child_task(node, |x: u64| async move { x.wrapping_add(1) }, 0)
            .expect("a u64 feeds a u64 input");
    }
    block_on(graph.run());
    graph.get_value::<u64>(node).expect("the chain ran")
}

/// A lattice `width` wide and `depth` deep: the first row is `i + 1`, each
/// node below adds the two above it (`i` and `i + 1`, wrapping).
pub(crate) fn lattice(width: usize, depth: usize) -> u64 {
    let mut graph = Graph::new();
    let mut row: Vec<NodeIndex> = (0..width as u64)
        .map(|i| graph.add_task(move || async move { i + 1 }))
        .collect();
    for _ in 1..depth {
        row = (0..width)
            .map(|i| {
                let node = graph
                    .add_child_task(row[i], |a: u64, b: u64| async move { a.wrapping_add(b) }, 0)
                    .expect("a u64 feeds a u64 input");
                graph
                    .update_dependency(row[(i + 1) % width], node, 1)
                    .expect("a new node closes no cycle");
                node
            })
            .collect();
    }
    block_on(graph.run());
    row.iter()
        .map(|&node| graph.get_value::<u64>(node).expect("the lattice ran"))
        .fold(0, u64::wrapping_add)
}
