//! The overhead shapes written with futures-dagtask 0.3.
//!
//! A futures-dagtask `TaskGraph` orders futures: a task starts once the
//! tasks it names have finished, and `execute` gives a stream of each
//! task's output as it finishes. It passes no values from a task to the
//! next, so each graph keeps one slot per node: a task reads its inputs'
//! slots when it starts and writes its own. The tasks are of one type,
//! boxed futures, as the crate's own tests do for tasks of mixed kinds.
//! The whole graph runs inside the one task that polls the stream.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use futures::future::{self, BoxFuture, FutureExt};
use futures::StreamExt;
use futures_dagtask::{Index, TaskGraph};

/// One value per node, in the order the nodes are added.
struct Slots(Vec<AtomicU64>);

impl Slots {
    fn new(nodes: usize) -> Self {
        Slots((0..nodes).map(|_| AtomicU64::new(0)).collect())
    }

    fn get(&self, node: usize) -> u64 {
        self.0[node].load(Relaxed)
    }

    /// A task that computes node `me` from the slots when it starts.
    fn task<'a>(
        &'a self,
        me: usize,
        f: impl FnOnce(&Slots) -> u64 + Send + 'a,
    ) -> BoxFuture<'a, u64> {
        future::lazy(move |_| {
            let value = f(self);
            self.0[me].store(value, Relaxed);
            value
        })
        .boxed()
    }
}

/// Runs the graph to its end and returns the output of `root`.
async fn run(graph: TaskGraph<BoxFuture<'_, u64>>, root: Index) -> u64 {
    let (sender, execute) = graph.execute();
    // No task is added while it runs: with the sender gone the stream ends
    // when the last task has finished.
    drop(sender);
    execute
        .fold(None, |found, (index, value)| {
            future::ready(if index == root { Some(value) } else { found })
        })
        .await
        .expect("the root ran")
}

/// A chain of `len` nodes: 1, then each node adds one to the one before.
pub(crate) async fn chain(len: u64) -> u64 {
    let len = len as usize;
    let slots = Slots::new(len);
    let mut graph = TaskGraph::new();
    let mut node = graph
        .add_task(&[], slots.task(0, |_| 1))
        .expect("room for the node");
    for me in 1..len {
        let task = slots.task(me, move |s| s.get(me - 1).wrapping_add(1));
        node = graph.add_task(&[node], task).expect("room for the node");
    }
    run(graph, node).await
}

/// `leaves` nodes `i + 1` into one node that sums them.
pub(crate) async fn fan_in(leaves: u64) -> u64 {
    let count = leaves as usize;
    let slots = Slots::new(count + 1);
    let mut graph = TaskGraph::new();
    let inputs: Vec<Index> = (0..count)
        .map(|me| {
            let task = slots.task(me, move |_| me as u64 + 1);
            graph.add_task(&[], task).expect("room for the node")
        })
        .collect();
    let sum = slots.task(count, move |s| {
        (0..count).map(|i| s.get(i)).fold(0, u64::wrapping_add)
    });
    let root = graph.add_task(&inputs, sum).expect("room for the node");
    run(graph, root).await
}

/// A lattice `width` wide and `depth` deep: the first row is `i + 1`, each
/// node below adds the two above it (`i` and `i + 1`, wrapping), and one
/// node sums the last row.
pub(crate) async fn lattice(width: usize, depth: usize) -> u64 {
    let slots = Slots::new(width * depth + 1);
    let mut graph = TaskGraph::new();
    let mut row: Vec<Index> = (0..width)
        .map(|me| {
            let task = slots.task(me, move |_| me as u64 + 1);
            graph.add_task(&[], task).expect("room for the node")
        })
        .collect();
    for layer in 1..depth {
        let above = (layer - 1) * width;
        row = (0..width)
            .map(|i| {
                let (a, b) = (above + i, above + (i + 1) % width);
                let task = slots.task(above + width + i, move |s| s.get(a).wrapping_add(s.get(b)));
                graph
                    .add_task(&[row[i], row[(i + 1) % width]], task)
                    .expect("room for the node")
            })
            .collect();
    }
    let last = (depth - 1) * width;
    let sum = slots.task(width * depth, move |s| {
        (last..last + width)
            .map(|i| s.get(i))
            .fold(0, u64::wrapping_add)
    });
    let root = graph.add_task(&row, sum).expect("room for the node");
    run(graph, root).await
}
