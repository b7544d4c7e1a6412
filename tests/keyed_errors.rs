//! Invalid keyed graphs (`delayed::keyed`): every mistake is an `Error`
//! for which `is_invalid()` holds, with its full message asserted: a
//! cycle, a missing key, an unknown function (with "did you mean"), a
//! wrong number of arguments, an argument that does not deserialize (also
//! deep inside lists, tuples and maps), a reference to a key of the wrong
//! type, malformed JSON (with line and column), a repeated key, unknown
//! fields, bad policy fields, an unregistered limit, a missing root key.
//!
//! Each graph also holds valid keys, and nothing runs: the counters of
//! those keys stay at 0, because the whole graph a `get` needs is checked
//! before anything starts. `get`, `get_many` and `validate` agree, return
//! at once, and never panic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use delayed::keyed::{get, get_many, Arg, Call, KeyedGraph, Policy, Registry};
use delayed::{delayed, Error, Limit};
use serde::{Deserialize, Serialize};
use serde_json::json;

// ---------------------------------------------------------------------------
// Counted functions.

static COUNTS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn bump(tag: &str) {
    *COUNTS.lock().unwrap().entry(tag.to_string()).or_insert(0) += 1;
}

fn count(tag: &str) -> usize {
    COUNTS.lock().unwrap().get(tag).copied().unwrap_or(0)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    path: String,
    text: String,
}

#[delayed(register)]
fn load(path: String) -> Doc {
    bump(&format!("load:{path}"));
    Doc {
        text: format!("text of {path}"),
        path,
    }
}

#[delayed(register)]
fn clean(doc: Doc) -> usize {
    bump(&format!("clean:{}", doc.path));
    doc.text.len()
}

#[delayed(register)]
fn size(doc: Doc) -> u64 {
    bump(&format!("size:{}", doc.path));
    doc.text.len() as u64
}

#[delayed(register)]
fn analyze(sizes: Vec<usize>) -> usize {
    bump(&format!("analyze:{sizes:?}"));
    sizes.iter().sum()
}

#[delayed(register)]
fn store(total: usize, out: String) -> String {
    bump(&format!("store:{out}"));
    format!("{out}: {total}")
}

#[delayed(register)]
fn inc(x: u64) -> u64 {
    bump(&format!("inc:{x}"));
    x + 1
}

#[delayed(register)]
fn add(x: u64, y: u64) -> u64 {
    x + y
}

#[delayed(register)]
fn label(p: (u64, String)) -> String {
    format!("{}={}", p.1, p.0)
}

#[delayed(register)]
fn tally(m: HashMap<String, u64>) -> u64 {
    m.values().sum()
}

#[delayed(register)]
fn grid(rows: Vec<Vec<u64>>) -> u64 {
    rows.iter().flatten().sum()
}

#[delayed(register)]
fn or_default(x: Option<u64>) -> u64 {
    x.unwrap_or(0)
}

fn registry() -> Registry {
    delayed::registry![load, clean, size, analyze, store, inc, add, label, tally, grid, or_default]
}

/// The valid part of each graph: loads and cleans of paths unique to the
/// test, an `analyze` over them and a `store`.
fn valid_keys(test: &str) -> serde_json::Map<String, serde_json::Value> {
    let json = json!({
        "load-1": {"fn": "load", "args": [format!("{test}-1.data")]},
        "load-2": {"fn": "load", "args": [format!("{test}-2.data")]},
        "clean-1": {"fn": "clean", "args": [{"ref": "load-1"}]},
        "clean-2": {"fn": "clean", "args": [{"ref": "load-2"}]},
        "size-1": {"fn": "size", "args": [{"ref": "load-1"}]},
        "analyze": {"fn": "analyze", "args": [[{"ref": "clean-1"}, {"ref": "clean-2"}]]},
        "store": {"fn": "store", "args": [{"ref": "analyze"}, format!("{test}.out")]}
    });
    match json {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// The valid keys of `test` with `extra` added (or replacing some).
fn graph_with(test: &str, extra: serde_json::Value) -> KeyedGraph {
    let mut keys = valid_keys(test);
    if let serde_json::Value::Object(extra) = extra {
        keys.extend(extra);
    }
    KeyedGraph::from_json(&serde_json::Value::Object(keys).to_string()).unwrap()
}

/// Checks that no valid key of `test` ran.
fn assert_nothing_ran(test: &str) {
    for tag in [
        format!("load:{test}-1.data"),
        format!("load:{test}-2.data"),
        format!("clean:{test}-1.data"),
        format!("clean:{test}-2.data"),
        format!("size:{test}-1.data"),
        format!("store:{test}.out"),
    ] {
        assert_eq!(count(&tag), 0, "`{tag}` ran");
    }
}

/// Runs `get` with a generous real-time bound: an invalid graph must fail
/// at once, not hang.
async fn get_error(graph: &KeyedGraph, registry: &Registry, key: &str) -> Error {
    match tokio::time::timeout(Duration::from_secs(10), get(graph, registry, key)).await {
        Ok(Ok(value)) => panic!("`{key}` gave {value}, not an error"),
        Ok(Err(err)) => err,
        Err(_) => panic!("get `{key}` hung"),
    }
}

/// Checks that `get(root)`, `get_many([store, root])` and `validate` all
/// fail with `message`, that the error is an invalid-graph error, and that
/// nothing of `test` ran.
async fn assert_invalid(test: &str, graph: &KeyedGraph, root: &str, message: &str) -> Error {
    let registry = registry();
    let err = get_error(graph, &registry, root).await;
    assert!(err.is_invalid(), "{err:?}");
    assert!(!err.is_failed() && !err.is_panic() && !err.is_timeout());
    assert_eq!(err.to_string(), message);

    let many = tokio::time::timeout(
        Duration::from_secs(10),
        get_many(graph, &registry, &["store", root]),
    )
    .await
    .expect("get_many hung")
    .unwrap_err();
    assert!(many.is_invalid());
    assert_eq!(many.to_string(), message);

    let validated = graph.validate(&registry).unwrap_err();
    assert!(validated.is_invalid());
    assert_eq!(validated.to_string(), message);

    assert_nothing_ran(test);
    err
}

#[tokio::test]
async fn the_valid_part_runs() {
    // The control: the valid keys alone run and count.
    let graph = graph_with("control", json!({}));
    let registry = registry();
    graph.validate(&registry).unwrap();
    assert_eq!(
        get(&graph, &registry, "store").await.unwrap(),
        "control.out: 44"
    );
    assert_eq!(count("load:control-1.data"), 1);
    assert_eq!(count("clean:control-2.data"), 1);
    assert_eq!(count("store:control.out"), 1);
}

// ---------------------------------------------------------------------------
// Structure: cycles, missing keys, missing roots.

#[tokio::test]
async fn a_cycle_names_its_keys_in_order() {
    let graph = graph_with(
        "cycle",
        json!({
            "a": {"fn": "inc", "args": [{"ref": "b"}]},
            "b": {"fn": "inc", "args": [{"ref": "a"}]},
            "store": {"fn": "store", "args": [{"ref": "analyze"}, {"ref": "a"}]}
        }),
    );
    let err = assert_invalid(
        "cycle",
        &graph,
        "a",
        "invalid graph: cycle: `a` -> `b` -> `a`",
    )
    .await;
    assert_eq!(err.key().to_string(), "a");
}

#[tokio::test]
async fn a_cycle_below_the_root_starts_where_it_closes() {
    let graph = graph_with(
        "cycle-below",
        json!({
            "x": {"fn": "inc", "args": [{"ref": "y"}]},
            "y": {"fn": "add", "args": [1, {"ref": "z"}]},
            "z": {"fn": "grid", "args": [[[2, {"ref": "w"}]]]},
            "w": {"fn": "inc", "args": [{"ref": "y"}]},
            "root": {"fn": "add", "args": [{"ref": "analyze"}, {"ref": "x"}]}
        }),
    );
    let registry = registry();
    let err = get_error(&graph, &registry, "root").await;
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "invalid graph: cycle: `y` -> `z` -> `w` -> `y`"
    );
    // `root` and `store` are well formed, but need the cycle or share
    // keys with it: nothing ran.
    assert_nothing_ran("cycle-below");
}

#[tokio::test]
async fn a_key_that_refers_to_itself_is_a_cycle() {
    let graph = graph_with(
        "self-cycle",
        json!({
            "analyze": {"fn": "analyze", "args": [[{"ref": "clean-1"}, {"ref": "analyze"}]]}
        }),
    );
    assert_invalid(
        "self-cycle",
        &graph,
        "analyze",
        "invalid graph: cycle: `analyze` -> `analyze`",
    )
    .await;
}

#[tokio::test]
async fn a_reference_to_a_missing_key_names_the_argument() {
    let graph = graph_with(
        "missing",
        json!({"a": {"fn": "inc", "args": [{"ref": "b"}]}}),
    );
    let err = assert_invalid(
        "missing",
        &graph,
        "a",
        "invalid graph: key `a` refers to missing key `b` (argument `x` of `inc`)",
    )
    .await;
    assert_eq!(err.key().to_string(), "a");

    // Deep in a list, as the second argument.
    let graph = graph_with(
        "missing-deep",
        json!({
            "analyze": {"fn": "analyze", "args": [[{"ref": "clean-1"}, {"ref": "clean-3"}]]}
        }),
    );
    assert_invalid(
        "missing-deep",
        &graph,
        "store",
        "invalid graph: key `analyze` refers to missing key `clean-3` (argument `sizes` of `analyze`)",
    )
    .await;

    let graph = graph_with(
        "missing-second",
        json!({"s": {"fn": "add", "args": [1, {"ref": "nowhere"}]}}),
    );
    assert_invalid(
        "missing-second",
        &graph,
        "s",
        "invalid graph: key `s` refers to missing key `nowhere` (argument `y` of `add`)",
    )
    .await;
}

#[tokio::test]
async fn a_missing_root_key_is_an_error() {
    let graph = graph_with("missing-root", json!({}));
    let registry = registry();
    let err = get_error(&graph, &registry, "x").await;
    assert!(err.is_invalid());
    assert_eq!(err.to_string(), "invalid graph: no key `x` in the graph");

    let err = get_many(&graph, &registry, &["store", "load-1", "nope"])
        .await
        .unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(err.to_string(), "invalid graph: no key `nope` in the graph");

    let err = get_error(&KeyedGraph::new(), &registry, "").await;
    assert_eq!(err.to_string(), "invalid graph: no key `` in the graph");
    assert_nothing_ran("missing-root");
}

// ---------------------------------------------------------------------------
// Functions and arguments.

#[tokio::test]
async fn an_unknown_function_suggests_the_closest_name() {
    let graph = graph_with(
        "typo",
        json!({"load-2": {"fn": "lod", "args": ["typo-2.data"]}}),
    );
    let err = assert_invalid(
        "typo",
        &graph,
        "store",
        "invalid graph: key `load-2` calls `lod`, which is not a registered function; \
         did you mean `load`?",
    )
    .await;
    assert_eq!(err.key().to_string(), "load-2");

    let graph = graph_with(
        "typo-analyse",
        json!({"analyze": {"fn": "analyse", "args": [[{"ref": "clean-1"}]]}}),
    );
    assert_invalid(
        "typo-analyse",
        &graph,
        "store",
        "invalid graph: key `analyze` calls `analyse`, which is not a registered function; \
         did you mean `analyze`?",
    )
    .await;
}

#[tokio::test]
async fn a_transposed_name_suggests_the_name_it_transposes() {
    // The crate's own example: `laod` for `load`. Swapping two letters is
    // the most common typo, so it should beat `add`, which differs from
    // `laod` by as many single-letter edits (2) as `load` does.
    let graph = graph_with(
        "transposed",
        json!({"load-2": {"fn": "laod", "args": ["transposed-2.data"]}}),
    );
    assert_invalid(
        "transposed",
        &graph,
        "store",
        "invalid graph: key `load-2` calls `laod`, which is not a registered function; \
         did you mean `load`?",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_function_without_a_close_name_lists_the_registered_ones() {
    let graph = graph_with(
        "unknown",
        json!({"x": {"fn": "frobnicate", "args": [{"ref": "store"}]}}),
    );
    assert_invalid(
        "unknown",
        &graph,
        "x",
        "invalid graph: key `x` calls `frobnicate`, which is not a registered function; \
         registered: add, analyze, clean, grid, inc, label, load, or_default, size, store, tally",
    )
    .await;

    // With nothing registered.
    let err = graph.validate(&Registry::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: key `analyze` calls `analyze`, which is not a registered function; \
         registered: "
    );
}

#[tokio::test]
async fn a_wrong_number_of_arguments_lists_the_parameters() {
    let graph = graph_with(
        "arity",
        json!({"load-1": {"fn": "load", "args": ["arity-1.data", "extra"]}}),
    );
    assert_invalid(
        "arity",
        &graph,
        "store",
        "invalid graph: key `load-1` calls `load` with 2 arguments, but it takes 1 (path)",
    )
    .await;

    let graph = graph_with(
        "arity-few",
        json!({"sum": {"fn": "add", "args": [{"ref": "analyze"}]}}),
    );
    assert_invalid(
        "arity-few",
        &graph,
        "sum",
        "invalid graph: key `sum` calls `add` with 1 argument, but it takes 2 (x, y)",
    )
    .await;

    // No `args` at all is no arguments.
    let graph = graph_with("arity-none", json!({"n": {"fn": "inc"}}));
    assert_invalid(
        "arity-none",
        &graph,
        "n",
        "invalid graph: key `n` calls `inc` with 0 arguments, but it takes 1 (x)",
    )
    .await;
}

#[tokio::test]
async fn an_argument_that_does_not_deserialize_names_the_parameter_and_type() {
    let graph = graph_with("literal", json!({"load-2": {"fn": "load", "args": [3]}}));
    let err = assert_invalid(
        "literal",
        &graph,
        "store",
        "invalid graph: key `load-2` (`load`): argument `path` is not a `String`: \
         invalid type: integer `3`, expected a string",
    )
    .await;
    assert_eq!(err.key().to_string(), "load-2");

    let graph = graph_with(
        "literal-struct",
        json!({"clean-1": {"fn": "clean", "args": [{"path": "p"}]}}),
    );
    assert_invalid(
        "literal-struct",
        &graph,
        "store",
        "invalid graph: key `clean-1` (`clean`): argument `doc` is not a `Doc`: missing field `text`",
    )
    .await;

    let graph = graph_with(
        "literal-negative",
        json!({"n": {"fn": "inc", "args": [-1]}, "s": {"fn": "add", "args": [{"ref": "n"}, {"ref": "analyze"}]}}),
    );
    assert_invalid(
        "literal-negative",
        &graph,
        "s",
        "invalid graph: key `n` (`inc`): argument `x` is not a `u64`: \
         invalid value: integer `-1`, expected u64",
    )
    .await;
}

#[tokio::test]
async fn an_argument_deep_in_a_list_tuple_or_map_is_named_by_its_path() {
    let cases = [
        (
            json!({"bad": {"fn": "grid", "args": [[[{"ref": "size-1"}], [1, "x"]]]}}),
            "invalid graph: key `bad` (`grid`): argument `rows[1]` is not a `Vec<u64>`: \
             invalid type: string \"x\", expected u64",
        ),
        (
            json!({"bad": {"fn": "grid", "args": [[[1], [{"ref": "size-1"}, "x"]]]}}),
            "invalid graph: key `bad` (`grid`): argument `rows[1][1]` is not a `u64`: \
             invalid type: string \"x\", expected u64",
        ),
        (
            json!({"bad": {"fn": "grid", "args": [[[1, 2], ["x"]]]}}),
            "invalid graph: key `bad` (`grid`): argument `rows` is not a `Vec<Vec<u64>>`: \
             invalid type: string \"x\", expected u64",
        ),
        (
            json!({"bad": {"fn": "label", "args": [[{"ref": "size-1"}, 3]]}}),
            "invalid graph: key `bad` (`label`): argument `p.1` is not a `String`: \
             invalid type: integer `3`, expected a string",
        ),
        (
            json!({"bad": {"fn": "label", "args": [[{"ref": "size-1"}, "a", "b"]]}}),
            "invalid graph: key `bad` (`label`): argument `p` is a tuple of 2, but the list has 3 items",
        ),
        (
            json!({"bad": {"fn": "label", "args": [{"a": {"ref": "size-1"}}]}}),
            "invalid graph: key `bad` (`label`): argument `p` is a tuple, not a map",
        ),
        (
            json!({"bad": {"fn": "tally", "args": [{"a": {"ref": "size-1"}, "b": "x"}]}}),
            "invalid graph: key `bad` (`tally`): argument `m.b` is not a `u64`: \
             invalid type: string \"x\", expected u64",
        ),
        (
            json!({"bad": {"fn": "tally", "args": [[{"ref": "size-1"}]]}}),
            "invalid graph: key `bad` (`tally`): argument `m` is a map (`HashMap<String, u64>`), \
             not a list",
        ),
        (
            json!({"bad": {"fn": "grid", "args": [{"a": {"ref": "size-1"}}]}}),
            "invalid graph: key `bad` (`grid`): argument `rows` is a list (`Vec<Vec<u64>>`), \
             not a map",
        ),
        (
            json!({"bad": {"fn": "clean", "args": [[{"ref": "load-1"}]]}}),
            "invalid graph: key `bad` (`clean`): argument `doc` is a `Doc`, which cannot hold \
             key references inside a list or map; only `Vec`, `Option`, tuple and \
             `String`-keyed map parameters can",
        ),
        (
            json!({"bad": {"fn": "or_default", "args": [[{"ref": "size-1"}]]}}),
            "invalid graph: key `bad` (`or_default`): argument `x` is a `u64`, which cannot hold \
             key references inside a list or map; only `Vec`, `Option`, tuple and \
             `String`-keyed map parameters can",
        ),
    ];
    for (i, (extra, message)) in cases.into_iter().enumerate() {
        let test = format!("deep-{i}");
        let graph = graph_with(&test, extra);
        assert_invalid(&test, &graph, "bad", message).await;
    }
}

#[tokio::test]
async fn a_reference_to_a_key_of_the_wrong_type_names_both_types() {
    let cases = [
        // `clean` wants the `Doc` a load makes; `clean-2` makes a `usize`.
        (
            json!({"clean-1": {"fn": "clean", "args": [{"ref": "clean-2"}]}}),
            "clean-1",
            "invalid graph: key `clean-1` (`clean`): argument `doc` wants a `Doc`, \
             but key `clean-2` makes a `usize`",
        ),
        (
            json!({"bad": {"fn": "analyze", "args": [{"ref": "clean-1"}]}}),
            "bad",
            "invalid graph: key `bad` (`analyze`): argument `sizes` wants a `Vec<usize>`, \
             but key `clean-1` makes a `usize`",
        ),
        (
            json!({"bad": {"fn": "analyze", "args": [[{"ref": "clean-1"}, {"ref": "load-2"}]]}}),
            "bad",
            "invalid graph: key `bad` (`analyze`): argument `sizes[1]` wants a `usize`, \
             but key `load-2` makes a `Doc`",
        ),
        (
            json!({"bad": {"fn": "or_default", "args": [{"ref": "store"}]}}),
            "bad",
            "invalid graph: key `bad` (`or_default`): argument `x` wants a `u64`, \
             but key `store` makes a `String`",
        ),
        (
            json!({"v": {"value": "s"}, "bad": {"fn": "add", "args": [{"ref": "analyze"}, {"ref": "v"}]}}),
            "bad",
            "invalid graph: key `bad` (`add`): argument `x` wants a `u64`, \
             but key `analyze` makes a `usize`",
        ),
        (
            json!({"v": {"value": "s"}, "bad": {"fn": "inc", "args": [{"ref": "v"}]},
                   "root": {"fn": "tally", "args": [{"a": {"ref": "bad"}, "b": {"ref": "clean-1"}}]}}),
            "root",
            "invalid graph: key `bad` (`inc`): argument `x`: key `v` is not a `u64`: \
             invalid type: string \"s\", expected u64",
        ),
    ];
    for (i, (extra, root, message)) in cases.into_iter().enumerate() {
        let test = format!("wrong-type-{i}");
        let graph = graph_with(&test, extra);
        assert_invalid(&test, &graph, root, message).await;
    }
}

#[tokio::test]
async fn the_type_error_of_the_last_key_stops_everything_before_it() {
    // Every key `store` needs is fine except `store` itself, which comes
    // last in the order: still nothing runs.
    let graph = graph_with(
        "late",
        json!({"store": {"fn": "store", "args": [{"ref": "analyze"}, 7]}}),
    );
    assert_invalid(
        "late",
        &graph,
        "store",
        "invalid graph: key `store` (`store`): argument `out` is not a `String`: \
         invalid type: integer `7`, expected a string",
    )
    .await;
}

static KNOWN: Limit = Limit::new("known", 2);

#[tokio::test]
async fn an_unregistered_limit_is_an_error() {
    let graph = graph_with(
        "limit",
        json!({"load-1": {"fn": "load", "args": ["limit-1.data"], "limit": "gpu"}}),
    );
    let err = assert_invalid(
        "limit",
        &graph,
        "store",
        "invalid graph: key `load-1` runs under limit `gpu`, which is not registered \
         (add it with `Registry::limit`)",
    )
    .await;
    assert_eq!(err.key().to_string(), "load-1");

    // Named by a function policy, and registered under another name.
    let mut graph = graph_with("limit-fn", json!({}));
    graph.function_policy("clean", Policy::new().limit("disk"));
    let mut registry = registry();
    registry.limit(&KNOWN);
    let err = get_error(&graph, &registry, "store").await;
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "invalid graph: key `clean-1` runs under limit `disk`, which is not registered \
         (add it with `Registry::limit`)"
    );
    assert_nothing_ran("limit-fn");

    // Once registered, it runs.
    graph.function_policy("clean", Policy::new().limit("known"));
    assert_eq!(
        get(&graph, &registry, "store").await.unwrap(),
        "limit-fn.out: 46"
    );
}

#[tokio::test]
async fn an_invalid_key_that_a_get_does_not_need_is_left_out() {
    // `get` checks and runs the keys it needs (dask's cull); `validate`
    // checks them all.
    let graph = graph_with(
        "cull",
        json!({"broken": {"fn": "lod", "args": [{"ref": "nowhere"}]}}),
    );
    let registry = registry();
    assert_eq!(
        get(&graph, &registry, "store").await.unwrap(),
        "cull.out: 38"
    );
    let err = graph.validate(&registry).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: key `broken` calls `lod`, which is not a registered function; \
         did you mean `load`?"
    );
}

#[tokio::test]
async fn graphs_built_in_code_are_checked_the_same_way() {
    let mut graph = graph_with("code", json!({}));
    graph.insert("a", Call::new("inc").arg(Arg::key("b")));
    graph.insert("b", Call::new("inc").arg(Arg::key("a")));
    graph.insert(
        "store",
        Call::new("store")
            .arg(Arg::key("analyze"))
            .arg(Arg::key("a")),
    );
    assert_invalid(
        "code",
        &graph,
        "a",
        "invalid graph: cycle: `a` -> `b` -> `a`",
    )
    .await;

    let mut graph = graph_with("code-value", json!({}));
    graph.insert(
        "bad",
        Call::new("label").arg(Arg::list([Arg::key("size-1"), Arg::value(json!([1]))])),
    );
    assert_invalid(
        "code-value",
        &graph,
        "bad",
        "invalid graph: key `bad` (`label`): argument `p.1` is not a `String`: \
         invalid type: sequence, expected a string",
    )
    .await;
}

// ---------------------------------------------------------------------------
// JSON: syntax, repeated keys, the form of a task.

/// `KeyedGraph::from_json(json)` fails with `message`.
fn json_error(json: &str, message: &str) {
    let err = KeyedGraph::from_json(json).unwrap_err();
    assert!(err.is_invalid(), "{err:?}");
    assert_eq!(err.to_string(), message, "for {json}");
}

#[test]
fn malformed_json_gives_line_and_column() {
    json_error(
        "{\"a\": {\"fn\": \"inc\",\n   \"args\": [1 2]}}",
        "invalid graph: malformed JSON: expected `,` or `]` at line 2 column 15",
    );
    json_error(
        r#"{"load-1": {"fn": "load", "args": ["a.data"]"#,
        "invalid graph: malformed JSON: EOF while parsing an object at line 1 column 44",
    );
    json_error(
        "",
        "invalid graph: malformed JSON: EOF while parsing a value at line 1 column 0",
    );
    json_error(
        "{} x",
        "invalid graph: malformed JSON: trailing characters at line 1 column 4",
    );
    json_error(
        "[]",
        "invalid graph: malformed JSON: invalid type: sequence, \
         expected an object from keys to tasks at line 1 column 0",
    );
    json_error(
        "null",
        "invalid graph: malformed JSON: invalid type: null, \
         expected an object from keys to tasks at line 1 column 4",
    );
    json_error(
        "{\n  \"a\": {\"value\": tru}\n}",
        "invalid graph: malformed JSON: expected ident at line 2 column 21",
    );
    // The key of a malformed graph is `JSON`.
    let err = KeyedGraph::from_json("{").unwrap_err();
    assert_eq!(err.key().to_string(), "JSON");
}

#[test]
fn a_repeated_key_is_an_error_where_it_repeats() {
    json_error(
        r#"{"a": {"value": 1}, "a": {"value": 2}}"#,
        "invalid graph: malformed JSON: key `a` appears twice at line 1 column 23",
    );
    json_error(
        "{\n  \"load-1\": {\"fn\": \"load\", \"args\": [\"x\"]},\n  \"clean-1\": {\"value\": 1},\n  \"load-1\": {\"fn\": \"load\", \"args\": [\"y\"]}\n}",
        "invalid graph: malformed JSON: key `load-1` appears twice at line 4 column 10",
    );
}

#[test]
fn a_task_of_the_wrong_form_names_its_key() {
    let cases = [
        (
            r#"{"ok": {"value": 1}, "a": 3}"#,
            "invalid graph: key `a`: a task is a call {\"fn\": ..., \"args\": [...]}, a value \
             {\"value\": ...}, an alias {\"ref\": ...} or a list [...], not `3`",
        ),
        (
            r#"{"ok": {"value": 1}, "a": "ok"}"#,
            "invalid graph: key `a`: a task is a call {\"fn\": ..., \"args\": [...]}, a value \
             {\"value\": ...}, an alias {\"ref\": ...} or a list [...], not `\"ok\"`",
        ),
        (
            r#"{"a": {"ref": 3}}"#,
            "invalid graph: key `a`: an alias `{\"ref\": ...}` names a key (a string), not `3`",
        ),
        (
            r#"{"a": {"ref": "b", "index": -1}}"#,
            "invalid graph: key `a`: `index` must be a whole number (the field to take), not `-1`",
        ),
        (
            r#"{"a": {"fn": "load", "args": [{"ref": "b", "index": "0"}]}}"#,
            "invalid graph: key `a`: argument 1: `index` must be a whole number (the field to \
             take), not `\"0\"`",
        ),
        (
            r#"{"a": {}}"#,
            "invalid graph: key `a`: a call needs `fn`, the name of a registered function \
             (or write {\"value\": ...} for a value)",
        ),
        (
            r#"{"a": {"value": 1, "extra": 2}}"#,
            "invalid graph: key `a`: a call needs `fn`, the name of a registered function \
             (or write {\"value\": ...} for a value)",
        ),
        (
            r#"{"a": {"fn": 3}}"#,
            "invalid graph: key `a`: `fn` must be a function name (a string), not `3`",
        ),
        (
            r#"{"a": {"fn": "load", "args": "a.data"}}"#,
            "invalid graph: key `a`: `args` must be a list, not `\"a.data\"`",
        ),
        (
            r#"{"a": {"fn": "load", "args": ["a.data"], "retries": 3}}"#,
            "invalid graph: key `a`: unknown field `retries`; a call has `fn`, `args`, \
             `limit`, `retry`, `timeout_ms`, `priority`",
        ),
        (
            r#"{"a": {"fn": "load", "args": ["a.data"], "value": 3}}"#,
            "invalid graph: key `a`: unknown field `value`; a call has `fn`, `args`, \
             `limit`, `retry`, `timeout_ms`, `priority`",
        ),
        (
            r#"{"a": {"fn": "load", "args": {"path": "a.data"}}}"#,
            "invalid graph: key `a`: `args` must be a list, not `{\"path\":\"a.data\"}`",
        ),
        // Long values are cut short.
        (
            r#"{"a": {"fn": "load", "args": "0123456789012345678901234567890123456789xyz"}}"#,
            "invalid graph: key `a`: `args` must be a list, \
             not `\"012345678901234567890123456789012345678...`",
        ),
    ];
    for (json, message) in cases {
        json_error(json, message);
    }
}

#[test]
fn bad_policy_fields_name_the_field_and_value() {
    let call = |policy: &str| format!(r#"{{"k": {{"fn": "load", "args": ["a.data"], {policy}}}}}"#);
    let cases = [
        (
            r#""limit": 3"#,
            "invalid graph: key `k`: `limit` must be a limit's name, not `3`",
        ),
        (
            r#""timeout_ms": "5 s""#,
            "invalid graph: key `k`: `timeout_ms` must be a number of milliseconds or a string such as \"250us\", not `\"5 s\"`",
        ),
        (
            r#""timeout_ms": -1"#,
            "invalid graph: key `k`: `timeout_ms` must be a number of milliseconds or a string such as \"250us\", not `-1`",
        ),
        (
            r#""timeout_ms": 1e300"#,
            "invalid graph: key `k`: `timeout_ms` must be a number of milliseconds or a string such as \"250us\", not `1e+300`",
        ),
        (
            r#""priority": 1.5"#,
            "invalid graph: key `k`: `priority` must be a whole number, not `1.5`",
        ),
        (
            r#""priority": 3000000000"#,
            "invalid graph: key `k`: `priority` must be a whole number, not `3000000000`",
        ),
        (
            r#""priority": "high""#,
            "invalid graph: key `k`: `priority` must be a whole number, not `\"high\"`",
        ),
        (
            r#""retry": 3"#,
            "invalid graph: key `k`: `retry` must be an object such as \
             {\"attempts\": 3, \"exponential_ms\": 100}, not `3`",
        ),
        (
            r#""retry": {}"#,
            "invalid graph: key `k`: `retry` needs `attempts`",
        ),
        (
            r#""retry": {"fixed_ms": 100}"#,
            "invalid graph: key `k`: `retry` needs `attempts`",
        ),
        (
            r#""retry": {"attempts": -1}"#,
            "invalid graph: key `k`: `retry.attempts` must be a count, not `-1`",
        ),
        (
            r#""retry": {"attempts": 2.5}"#,
            "invalid graph: key `k`: `retry.attempts` must be a count, not `2.5`",
        ),
        (
            r#""retry": {"attempts": 3, "fixed_ms": "x"}"#,
            "invalid graph: key `k`: `retry.fixed_ms` must be a number of milliseconds or a string such as \"250us\", not `\"x\"`",
        ),
        (
            r#""retry": {"attempts": 3, "exponential_ms": -5}"#,
            "invalid graph: key `k`: `retry.exponential_ms` must be a number of milliseconds or a string such as \"250us\", not `-5`",
        ),
        (
            r#""retry": {"attempts": 3, "max_delay_ms": null}"#,
            "invalid graph: key `k`: `retry.max_delay_ms` must be a number of milliseconds or a string such as \"250us\", not `null`",
        ),
        (
            r#""retry": {"attempts": 3, "jitter": 2}"#,
            "invalid graph: key `k`: `retry.jitter` must be a fraction from 0 to 1, not `2`",
        ),
        (
            r#""retry": {"attempts": 3, "seed": -1}"#,
            "invalid graph: key `k`: `retry.seed` must be a whole number, not `-1`",
        ),
        (
            r#""retry": {"attempts": 3, "panics": "yes"}"#,
            "invalid graph: key `k`: `retry.panics` must be true or false, not `\"yes\"`",
        ),
        (
            r#""retry": {"attempts": 3, "delay_ms": 100}"#,
            "invalid graph: key `k`: unknown field `retry.delay_ms`; a retry has `attempts`, \
             `fixed_ms`, `exponential_ms`, `max_delay_ms`, `jitter`, `seed`, `panics`",
        ),
    ];
    for (policy, message) in cases {
        json_error(&call(policy), message);
    }
    // And the good ones parse.
    let graph = KeyedGraph::from_json(&call(
        r#""limit": "http", "timeout_ms": 2.5, "priority": -3,
           "retry": {"attempts": 4, "exponential_ms": 10, "max_delay_ms": 100,
                     "jitter": 0.5, "seed": 7, "panics": true}"#,
    ))
    .unwrap();
    assert_eq!(graph.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_back_at_once_on_a_multi_thread_runtime() {
    let graph = graph_with(
        "multi",
        json!({
            "a": {"fn": "inc", "args": [{"ref": "b"}]},
            "b": {"fn": "inc", "args": [{"ref": "a"}]},
            "store": {"fn": "store", "args": [{"ref": "analyze"}, {"ref": "a"}]}
        }),
    );
    assert_invalid(
        "multi",
        &graph,
        "a",
        "invalid graph: cycle: `a` -> `b` -> `a`",
    )
    .await;
}
