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

fn strings(keys: &[delayed::Key]) -> Vec<String> {
    keys.iter().map(ToString::to_string).collect()
}

#[delayed::delayed]
fn total(parts: Vec<u64>) -> u64 {
    parts.iter().sum()
}

#[test]
fn internal_nodes_are_left_out_and_deps_go_through_them() {
    // dask: `deps("analyze")` is `{clean-1, clean-2, clean-3}`.
    let clean: Vec<_> = (1_u64..=3)
        .map(|i| add(i, 0).named(format!("clean-{i}")))
        .collect();
    let analyze = total(clean).named("analyze");
    let graph = analyze.graph();
    assert_eq!(keys(&graph), ["clean-1", "clean-2", "clean-3", "analyze"]);
    assert_eq!(
        strings(graph.get("analyze").unwrap().deps()),
        ["clean-1", "clean-2", "clean-3"]
    );

    // A literal argument, and joins inside joins: only the calls show.
    let a = add(1, 1).named("a");
    let b = add(2, 2).named("b");
    let c = add(delayed::Delayed::value(3), 3).named("c");
    let nested = delayed::join((vec![a.clone(), b.clone()], &c, delayed::Delayed::value(9)))
        .map(|(ab, c, nine)| ab.iter().sum::<u64>() + c + nine)
        .named("nested");
    let graph = nested.graph();
    assert_eq!(keys(&graph), ["a", "b", "c", "nested"]);
    assert_eq!(
        strings(graph.get("nested").unwrap().deps()),
        ["a", "b", "c"]
    );
    assert!(graph.get("c").unwrap().deps().is_empty());
    assert!(graph
        .nodes()
        .iter()
        .all(|node| !["list", "tuple", "value"].contains(&node.name())));
}

#[test]
fn the_graph_of_a_join_root_shows_the_nodes_it_gathers() {
    let a = add(1, 1).named("a");
    let b = add(&a, 1).named("b");
    let both = delayed::join(vec![a, b]);
    assert_eq!(keys(&both.graph()), ["a", "b"]);
    // A literal alone is no call of yours: an empty graph.
    assert!(delayed::Delayed::value(1).graph().nodes().is_empty());
}

#[test]
fn a_node_you_named_is_shown_whatever_made_it() {
    let config = delayed::Delayed::value(2_u64).named("config");
    let all = delayed::join(vec![add(&config, 1).named("x")]).named("all");
    let top = total(&all).named("top");
    let graph = top.graph();
    assert_eq!(keys(&graph), ["config", "x", "all", "top"]);
    assert_eq!(strings(graph.get("top").unwrap().deps()), ["all"]);
    assert_eq!(strings(graph.get("all").unwrap().deps()), ["x"]);
}

#[test]
fn dependents_are_the_other_side_of_deps() {
    let a = add(1, 2).named("a");
    let b = add(&a, 3).named("b");
    let c = add(&a, &b).named("c");
    let d = total(vec![a.clone(), c.clone()]).named("d");
    let e = add(&d, &a).named("e");
    let graph = e.graph();
    assert_eq!(
        strings(graph.get("a").unwrap().dependents()),
        ["b", "c", "d", "e"]
    );
    assert_eq!(strings(graph.get("c").unwrap().dependents()), ["d"]);
    assert!(graph.get("e").unwrap().dependents().is_empty());
    for node in graph.nodes() {
        for other in graph.nodes() {
            assert_eq!(
                node.deps().contains(other.key()),
                other.dependents().contains(node.key()),
                "{} and {}",
                node.key(),
                other.key()
            );
        }
    }
}

#[test]
fn each_input_is_listed_once() {
    let a = add(1, 2).named("a");
    let twice = add(&a, &a).named("twice");
    let listed = total(vec![a.clone(), a.clone()]).named("listed");
    let graph = add(&twice, &listed).named("top").graph();
    assert_eq!(strings(graph.get("twice").unwrap().deps()), ["a"]);
    assert_eq!(strings(graph.get("listed").unwrap().deps()), ["a"]);
    assert_eq!(
        strings(graph.get("a").unwrap().dependents()),
        ["twice", "listed"]
    );

    // Many inputs, each twice: each once, in the order first seen.
    let many: Vec<_> = (0_u64..30)
        .map(|i| add(i, 0).named(format!("m{i}")))
        .collect();
    let mut repeated = many.clone();
    repeated.extend(many.iter().cloned());
    repeated.push(a.clone());
    let wide = total(repeated).named("wide");
    let deps = strings(wide.graph().get("wide").unwrap().deps());
    let expected: Vec<String> = (0..30)
        .map(|i| format!("m{i}"))
        .chain(["a".to_string()])
        .collect();
    assert_eq!(deps, expected);
}

#[test]
fn a_wide_join_and_a_deep_chain_of_joins_snapshot_without_recursion() {
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let wide = total((0_u64..100_000).map(|i| add(i, 0)).collect::<Vec<_>>());
            let wide = wide.graph();
            let mut node = add(0, 0);
            for _ in 0..50_000 {
                node = total(vec![node]);
            }
            (
                wide.nodes().len(),
                wide.nodes()[100_000].deps().len(),
                node.graph().nodes().len(),
            )
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), (100_001, 100_000, 50_001));
}

#[tokio::test]
async fn a_failed_compute_shows_its_root_cause_and_failure_path() {
    // a -> b -> c, and `a` fails.
    let a = fail(1).named("a");
    let b = add(&a, 1).named("b");
    let c = add(&b, 2).named("c");
    drop((a, b));
    let err = c.compute().await.unwrap_err();
    assert_eq!(err.key().to_string(), "a");
    let graph = c.graph();
    assert_eq!(keys(&graph), ["a", "b", "c"]);
    for key in ["a", "b", "c"] {
        let node = graph.get(key).unwrap();
        assert_eq!(node.state(), TaskState::Failed, "{key}");
        assert_eq!(node.error().unwrap().key().to_string(), "a", "{key}");
    }
    assert!(graph.get("a").unwrap().deps().is_empty());
    assert_eq!(strings(graph.get("b").unwrap().deps()), ["a"]);
    assert_eq!(strings(graph.get("c").unwrap().deps()), ["b"]);

    // A node made later on a failed input fails at once, and keeps it too.
    let d = add(&c, 3).named("d");
    assert!(d.compute().await.is_err());
    assert_eq!(strings(d.graph().get("d").unwrap().deps()), ["c"]);
}

#[tokio::test]
async fn a_failed_node_keeps_only_the_inputs_that_failed() {
    #[delayed::delayed]
    fn make(live: common::Live) -> common::Tracked {
        live.make(1)
    }
    #[delayed::delayed]
    fn size(x: &common::Tracked, y: u64) -> u64 {
        x.payload + y
    }

    let live = common::Live::new();
    let ok = make(live.clone()).named("ok");
    let top = size(ok, fail(1).named("bad")).named("top");
    assert!(top.compute().await.is_err());
    assert_eq!(keys(&top.graph()), ["bad", "top"]);
    // The input that finished was let go of, with its output, as after a
    // success: only failed inputs are kept.
    assert_eq!(live.now(), 0);
}

#[tokio::test]
async fn a_map_or_option_of_nodes_is_not_a_node_either() {
    #[delayed::delayed]
    fn weigh(parts: std::collections::HashMap<String, u64>, extra: Option<u64>) -> u64 {
        parts.values().sum::<u64>() + extra.unwrap_or(0)
    }

    let a = add(1, 1).named("a");
    let b = add(2, 2).named("b");
    let parts = std::collections::HashMap::from([("a".to_string(), a), ("b".to_string(), b)]);
    let top = weigh(parts, Some(add(3, 3).named("c"))).named("top");
    let graph = top.graph();
    let mut deps = strings(graph.get("top").unwrap().deps());
    deps.sort();
    assert_eq!(deps, ["a", "b", "c"]);
    assert_eq!(graph.nodes().len(), 4);
    assert_eq!(top.compute().await.unwrap(), 12);
}
