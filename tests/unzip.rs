//! `Delayed::unzip` (dask's `nout`): tuples of 1 to 12 fields, the tuple
//! computed once; and unzipped graphs of registered functions exporting
//! to the keyed spec as field references (`{"ref": key, "index": i}`),
//! then running again from JSON. Field references written by hand are
//! checked before anything runs (the field exists), and read as the
//! parameter's type when they run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use delayed::keyed::{get, get_many, KeyedGraph, Registry, Task};
use delayed::{delayed, Delayed};
use serde_json::{json, Value};

#[tokio::test]
async fn unzip_splits_tuples_of_one_to_twelve_fields_computing_the_tuple_once() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let twelve = Delayed::lazy(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        (
            0_u8,
            1_u16,
            2_u32,
            3_u64,
            4_i8,
            5_i16,
            6_i32,
            7_i64,
            "8".to_string(),
            vec![9_u8],
            Some(10_u8),
            (11_u8,),
        )
    });
    let (a, b, c, d, e, f, g, h, i, j, k, l) = twelve.unzip();
    assert_eq!(a.key().name(), "unzip");
    assert_eq!(l.key().name(), "unzip");
    let all = delayed::compute((a, b, c, d, e, f, g, h, i, j, k, l.clone()))
        .await
        .unwrap();
    assert_eq!(
        all,
        (
            0,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            "8".to_string(),
            vec![9],
            Some(10),
            (11,)
        )
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the tuple ran once for all fields"
    );

    let (only,) = l.unzip();
    assert_eq!(only.compute().await.unwrap(), 11);
    let (x, y, z, w, v) = Delayed::value((1, 'b', "c", 4.5, ())).unzip();
    assert_eq!(
        delayed::compute((x, y, z, w, v)).await.unwrap(),
        (1, 'b', "c", 4.5, ())
    );
}

// ---------------------------------------------------------------------------
// Keyed graphs.

#[delayed(register)]
fn split(n: u64) -> (u64, String) {
    (n, format!("n{n}"))
}

#[delayed(register)]
fn nested(n: u64) -> ((u64, u64), String) {
    ((n, n * 10), "nested".to_string())
}

#[delayed(register)]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed(register)]
fn add(x: u64, y: u64) -> u64 {
    x + y
}

#[delayed(register)]
fn describe(n: u64, s: String) -> String {
    format!("{s}={n}")
}

#[delayed(register)]
fn label(s: String) -> String {
    format!("<{s}>")
}

#[delayed(register)]
fn or_zero(x: Option<u64>) -> u64 {
    x.unwrap_or(0)
}

#[delayed(register)]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

fn registry() -> Registry {
    delayed::registry![split, nested, inc, add, describe, label, or_zero, total]
}

/// `graph` through JSON and back.
fn round_trip(graph: &KeyedGraph) -> KeyedGraph {
    let again = KeyedGraph::from_json(&graph.to_json()).unwrap();
    assert_eq!(&again, graph);
    again
}

#[tokio::test]
async fn an_unzipped_graph_exports_with_field_references_and_runs_again() {
    let registry = registry();
    let pair = split(3);
    let (n, s) = pair.unzip();
    let root = describe(inc(&n), &s);
    let graph = KeyedGraph::from_delayed(&root, &registry).unwrap();
    let pair_key = pair.key().to_string();
    let json = graph.to_json();
    for index in [0, 1] {
        let field = format!(r#"{{"ref":"{pair_key}","index":{index}}}"#);
        assert!(json.contains(&field), "{json}");
    }
    let again = round_trip(&graph);
    let from_json = get(&again, &registry, &root.key().to_string())
        .await
        .unwrap();
    assert_eq!(from_json, json!("n3=4"));
    assert_eq!(root.compute().await.unwrap(), "n3=4");
}

#[tokio::test]
async fn named_and_root_field_nodes_become_field_keys() {
    let registry = registry();
    let pair = split(5).named("pair");
    let (n, s) = pair.unzip();
    let n = n.named("n");
    let root = add(inc(&n), &n).named("root");
    let mut graph = KeyedGraph::new();
    assert_eq!(graph.add_delayed(&root, &registry).unwrap(), "root");
    let s_key = graph.add_delayed(&s, &registry).unwrap();
    assert_eq!(s_key, s.key().to_string());
    assert_eq!(graph.get("n"), Some(&Task::field("pair", 0)));
    assert_eq!(graph.get(&s_key), Some(&Task::field("pair", 1)));
    let again = round_trip(&graph);
    let out = get_many(&again, &registry, &["root", "n", s_key.as_str()])
        .await
        .unwrap();
    assert_eq!(out, [json!(11), json!(5), json!("n5")]);
    // The field key's typed node reads the field.
    let typed = again.delayed::<String>(&registry, &s_key).unwrap();
    assert_eq!(typed.compute().await.unwrap(), "n5");
}

#[tokio::test]
async fn a_field_of_a_field_exports_and_runs_again() {
    let registry = registry();
    let outer = nested(2);
    let (inner, text) = outer.unzip();
    let (a, b) = inner.unzip();
    let root = describe(add(&a, &b), &text);
    let graph = KeyedGraph::from_delayed(&root, &registry).unwrap();
    // The inner tuple has a key of its own: field 0 of `nested`.
    assert_eq!(
        graph.get(&inner.key().to_string()),
        Some(&Task::field(outer.key().to_string(), 0))
    );
    let again = round_trip(&graph);
    let out = get(&again, &registry, &root.key().to_string())
        .await
        .unwrap();
    assert_eq!(out, json!("nested=22"));

    // And a keyed graph's own field nodes export again.
    let from_keyed = again
        .delayed::<String>(&registry, &root.key().to_string())
        .unwrap();
    let exported = KeyedGraph::from_delayed(&from_keyed, &registry).unwrap();
    let out = get(&exported, &registry, &root.key().to_string())
        .await
        .unwrap();
    assert_eq!(out, json!("nested=22"));
}

#[tokio::test]
async fn a_field_of_a_computed_tuple_exports_as_a_field_of_its_value() {
    let registry = registry();
    let pair = split(7).named("pair");
    pair.compute().await.unwrap();
    let (n, _) = pair.unzip();
    let root = inc(&n).named("root");
    let graph = KeyedGraph::from_delayed(&root, &registry).unwrap();
    assert_eq!(graph.get("pair"), Some(&Task::value((7, "n7"))));
    let again = round_trip(&graph);
    assert_eq!(get(&again, &registry, "root").await.unwrap(), 8);
}

#[test]
fn a_field_of_an_unregistered_tuple_is_an_error_naming_the_node() {
    let registry = registry();
    let (n, _) = Delayed::value((1_u64, 2_u64)).named("literal").unzip();
    let root = inc(&n);
    let err = KeyedGraph::from_delayed(&root, &registry).unwrap_err();
    assert!(err.is_invalid());
    assert!(
        err.to_string()
            .contains("node `literal` is not a call of a registered function"),
        "{err}"
    );
}

#[tokio::test]
async fn field_references_written_by_hand_run_and_are_checked() {
    let registry = registry();
    let graph = KeyedGraph::from_json(
        &json!({
            "s": {"fn": "split", "args": [3]},
            "n": {"ref": "s", "index": 0},
            "k": {"fn": "inc", "args": [{"ref": "s", "index": 0}]},
            "m": {"fn": "inc", "args": [{"ref": "n"}]},
            "o": {"fn": "or_zero", "args": [{"ref": "s", "index": 0}]},
            "t": {"fn": "total", "args": [[{"ref": "n"}, {"ref": "k"}, {"ref": "v", "index": 1}]]},
            "v": {"value": [10, 20]},
            "w": {"ref": "v", "index": 1},
            "both": [{"ref": "s", "index": 1}, {"ref": "n"}]
        })
        .to_string(),
    )
    .unwrap();
    graph.validate(&registry).unwrap();
    let out = get_many(&graph, &registry, &["n", "k", "m", "o", "t", "w", "both"])
        .await
        .unwrap();
    assert_eq!(
        out,
        [
            json!(3),
            json!(4),
            json!(4),
            json!(3),
            json!(27),
            json!(20),
            json!(["n3", 3])
        ]
    );

    let cases = [
        (
            json!({"s": {"fn": "split", "args": [3]}, "k": {"fn": "inc", "args": [{"ref": "s", "index": 2}]}}),
            "invalid graph: key `k` (`inc`): key `s` makes a `(u64, String)`, which has 2 \
             fields, so no field 2",
        ),
        (
            json!({"i": {"fn": "inc", "args": [3]}, "k": {"ref": "i", "index": 0}}),
            "invalid graph: key `k`: key `i` makes a `u64`, which is not a tuple, so it has no \
             field 0",
        ),
        (
            json!({"v": {"value": [1]}, "k": {"fn": "inc", "args": [{"ref": "v", "index": 1}]}}),
            "invalid graph: key `k` (`inc`): key `v` is a list of 1 items, so it has no item 1",
        ),
        (
            json!({"v": {"value": {"a": 1}}, "k": {"ref": "v", "index": 0}}),
            "invalid graph: key `k`: key `v` is `{\"a\":1}`, not a list, so it has no item 0",
        ),
    ];
    for (json, message) in cases {
        let graph = KeyedGraph::from_json(&json.to_string()).unwrap();
        let err = graph.validate(&registry).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(err.key().to_string(), "k");
    }

    // The type of a field is known when it runs: a wrong one fails then.
    let graph = KeyedGraph::from_json(
        &json!({
            "s": {"fn": "split", "args": [3]},
            "k": {"fn": "label", "args": [{"ref": "s", "index": 0}]}
        })
        .to_string(),
    )
    .unwrap();
    let err = get(&graph, &registry, "k").await.unwrap_err();
    assert!(err.is_failed(), "{err}");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "field 0 of key `s` is not a `String`: invalid type: integer `3`, expected a string"
    );
    let value: Value = get(&graph, &registry, "s").await.unwrap();
    assert_eq!(value, json!([3, "n3"]));
}
