//! Graph snapshots: every reachable node in topological order, with its
//! key, name, inputs and state, before, during and after a compute.

use std::time::Duration;

mod common;

use common::{add, fail, nap};
use delayed::TaskState;

fn keys(graph: &delayed::Graph) -> Vec<String> {
    graph.nodes().iter().map(|n| n.key().to_string()).collect()
}

#[test]
fn nodes_come_after_their_inputs_and_shared_ones_once() {
    let a = add(1, 2).named("a");
    let b = add(&a, 3).named("b");
    let c = add(&a, &b).named("c");
    let graph = c.graph();
    assert_eq!(keys(&graph), ["a", "b", "c"]);
    let c_node = graph.get("c").unwrap();
    assert_eq!(c_node.name(), "add");
    assert_eq!(
        c_node
            .deps()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(
        graph.get("a").unwrap().deps().is_empty(),
        "plain values are not nodes"
    );
}

#[test]
fn a_deep_chain_snapshots_without_recursion() {
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut node = add(0, 0);
            for _ in 0..100_000 {
                node = add(node, 1);
            }
            node.graph().nodes().len()
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), 100_001);
}

#[tokio::test(start_paused = true)]
async fn states_before_during_and_after_a_compute() {
    let slow = nap(1_000, 1).named("slow");
    let quick = nap(10, 2).named("quick");
    let top = add(&slow, &quick).named("top");

    let before = top.graph();
    assert_eq!(before.count(TaskState::Waiting), 3);

    let running = tokio::spawn(top.compute());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let during = top.graph();
    assert_eq!(during.get("slow").unwrap().state(), TaskState::Running);
    assert_eq!(during.get("quick").unwrap().state(), TaskState::Done);
    assert_eq!(during.get("top").unwrap().state(), TaskState::Waiting);

    assert_eq!(running.await.unwrap().unwrap(), 3);
    let after = top.graph();
    assert_eq!(after.get("top").unwrap().state(), TaskState::Done);
    assert!(
        after.get("top").unwrap().deps().is_empty(),
        "a finished node let go of its inputs"
    );
    assert_eq!(slow.graph().nodes()[0].state(), TaskState::Done);
}

#[tokio::test(start_paused = true)]
async fn failed_and_cancelled_states() {
    let bad = fail(1).named("bad");
    let top = add(&bad, 1).named("top");
    assert!(top.compute().await.is_err());
    let graph = top.graph();
    assert_eq!(graph.get("top").unwrap().state(), TaskState::Failed);

    let slow = nap(1_000, 1).named("slow");
    assert!(
        tokio::time::timeout(Duration::from_millis(10), slow.compute())
            .await
            .is_err()
    );
    assert_eq!(slow.graph().nodes()[0].state(), TaskState::Cancelled);
}

#[test]
fn state_names_read_in_lowercase() {
    let names: Vec<String> = [
        TaskState::Waiting,
        TaskState::Running,
        TaskState::Done,
        TaskState::Failed,
        TaskState::Cancelled,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(names, ["waiting", "running", "done", "failed", "cancelled"]);
}
