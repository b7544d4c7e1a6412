//! dask's full keyed spec (`delayed::keyed`): alias keys and chains of
//! them, bare-list tasks, calls written in place at any depth, nested key
//! lists in `get_many` and `get_with`, options and callbacks on a keyed
//! get (a value key too), repeated fields inside one task, and walks that
//! never recurse: checking, building, writing, cloning, comparing and
//! dropping arguments nested 100,000 deep, and cycle errors that stay
//! short.
//!
//! Registered functions take serde types only, so runs are counted in a
//! global table by a tag that each test makes unique.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex};

use delayed::keyed::{get, get_many, get_with, Arg, Call, KeyedGraph, Keys, Registry, Task};
use delayed::{delayed, Callback, Error, Graph, Options, TaskFinished, TaskStarted};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Run counters, by tag.

static COUNTS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
static ORDER: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn bump(tag: &str) {
    *COUNTS.lock().unwrap().entry(tag.to_string()).or_insert(0) += 1;
}

fn count(tag: &str) -> usize {
    COUNTS.lock().unwrap().get(tag).copied().unwrap_or(0)
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
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed(register)]
fn concat(a: String, b: String) -> String {
    a + &b
}

#[delayed(register)]
fn echo(v: Value) -> Value {
    v
}

#[delayed(register)]
fn tally(m: HashMap<String, u64>) -> u64 {
    m.values().sum()
}

/// Counts its runs under `tag`, and logs them in order under `ordered`.
#[delayed(register)]
fn counted(tag: String, x: u64) -> u64 {
    bump(&tag);
    ORDER.lock().unwrap().push(format!("{tag}:{x}"));
    x
}

#[delayed(register)]
fn fail(x: u64) -> Result<u64, io::Error> {
    Err(io::Error::other(format!("no {x}")))
}

fn registry() -> Registry {
    delayed::registry![inc, add, total, concat, echo, tally, counted, fail]
}

fn graph(json: Value) -> KeyedGraph {
    KeyedGraph::from_json(&json.to_string()).unwrap()
}

async fn invalid(graph: &KeyedGraph, key: &str) -> Error {
    let err = get(graph, &registry(), key).await.unwrap_err();
    assert!(err.is_invalid(), "{err}");
    assert_eq!(
        graph.validate(&registry()).unwrap_err().to_string(),
        err.to_string()
    );
    err
}

// ---------------------------------------------------------------------------
// Aliases.

#[tokio::test]
async fn an_alias_is_the_same_output_under_another_key_and_chains() {
    let graph = graph(json!({
        "a": {"fn": "counted", "args": ["alias-chain", 1]},
        "b": {"ref": "a"},
        "c": {"ref": "b"},
        "d": {"fn": "inc", "args": [{"ref": "c"}]},
        "v": {"value": 5},
        "w": {"ref": "v"},
        "x": {"fn": "inc", "args": [{"ref": "w"}]}
    }));
    assert_eq!(graph.get("b"), Some(&Task::alias("a")));
    let registry = registry();
    assert_eq!(get(&graph, &registry, "b").await.unwrap(), 1);
    assert_eq!(get(&graph, &registry, "c").await.unwrap(), 1);
    assert_eq!(get(&graph, &registry, "w").await.unwrap(), 5);
    assert_eq!(get(&graph, &registry, "x").await.unwrap(), 6);
    let before = count("alias-chain");
    let all = get_many(&graph, &registry, &["a", "b", "c", "d"])
        .await
        .unwrap();
    assert_eq!(all, [1, 1, 1, 2]);
    assert_eq!(
        count("alias-chain"),
        before + 1,
        "one node for a key and its aliases"
    );
    // The typed node of an alias is the node it names.
    let c = graph.delayed::<u64>(&registry, "c").unwrap();
    assert_eq!(c.key().to_string(), "a");
    assert_eq!(KeyedGraph::from_json(&graph.to_json()).unwrap(), graph);
    assert_eq!(
        KeyedGraph::from_json(&graph.to_json_pretty()).unwrap(),
        graph
    );
}

#[tokio::test]
async fn an_alias_cycle_is_a_cycle_error() {
    let two = graph(json!({"a": {"ref": "b"}, "b": {"ref": "a"}}));
    let err = invalid(&two, "a").await;
    assert_eq!(err.to_string(), "invalid graph: cycle: `a` -> `b` -> `a`");
    assert_eq!(err.key().to_string(), "a");

    let own = graph(json!({"a": {"ref": "a"}}));
    let err = invalid(&own, "a").await;
    assert_eq!(err.to_string(), "invalid graph: cycle: `a` -> `a`");

    // Through a call, a list and a field.
    let mixed = graph(json!({
        "a": {"ref": "b"},
        "b": {"fn": "total", "args": [{"ref": "c"}]},
        "c": [{"ref": "d", "index": 0}],
        "d": [{"ref": "a"}]
    }));
    let err = invalid(&mixed, "a").await;
    assert_eq!(
        err.to_string(),
        "invalid graph: cycle: `a` -> `b` -> `c` -> `d` -> `a`"
    );
}

#[tokio::test]
async fn an_alias_of_a_missing_key_names_both() {
    let graph = graph(json!({"b": {"ref": "nope"}}));
    let err = invalid(&graph, "b").await;
    assert_eq!(
        err.to_string(),
        "invalid graph: key `b` refers to missing key `nope`"
    );
}

// ---------------------------------------------------------------------------
// Bare lists.

#[tokio::test]
async fn a_bare_list_is_a_task_that_makes_the_list() {
    let graph = graph(json!({
        "a": {"fn": "inc", "args": [1]},
        "b": {"fn": "inc", "args": [{"ref": "a"}]},
        "v": {"value": "x"},
        "e": [{"ref": "a"}, {"ref": "b"}, 7],
        "f": [{"ref": "e"}, [{"ref": "v"}, {"ref": "a"}], {"fn": "add", "args": [{"ref": "a"}, 10]}],
        "literal": [1, 2, 3],
        "sum": {"fn": "total", "args": [{"ref": "e"}]},
        "sums": {"fn": "total", "args": [[{"ref": "a"}, {"ref": "e", "index": 1}]]}
    }));
    assert!(matches!(graph.get("e"), Some(Task::List(items)) if items.len() == 3));
    // A list of literals is a value.
    assert_eq!(graph.get("literal"), Some(&Task::value([1, 2, 3])));
    let registry = registry();
    assert_eq!(get(&graph, &registry, "e").await.unwrap(), json!([2, 3, 7]));
    assert_eq!(
        get(&graph, &registry, "f").await.unwrap(),
        json!([[2, 3, 7], ["x", 2], 12])
    );
    assert_eq!(get(&graph, &registry, "sum").await.unwrap(), 12);
    assert_eq!(get(&graph, &registry, "sums").await.unwrap(), 5);
    let typed = graph.delayed::<Vec<u64>>(&registry, "e").unwrap();
    assert_eq!(typed.key().to_string(), "e");
    assert_eq!(typed.compute().await.unwrap(), [2, 3, 7]);
    assert_eq!(KeyedGraph::from_json(&graph.to_json()).unwrap(), graph);
}

#[tokio::test]
async fn a_bare_list_is_checked_like_arguments() {
    let missing = graph(json!({"e": [1, {"ref": "a"}, {"ref": "gone"}], "a": {"value": 1}}));
    let err = invalid(&missing, "e").await;
    assert_eq!(
        err.to_string(),
        "invalid graph: key `e` refers to missing key `gone` (item 3)"
    );

    let wrong = graph(
        json!({"e": [{"ref": "a"}], "a": {"value": 1}, "n": {"fn": "inc", "args": [{"ref": "e"}]}}),
    );
    let err = invalid(&wrong, "n").await;
    assert_eq!(
        err.to_string(),
        "invalid graph: key `n` (`inc`): argument `x` is a `u64`, which cannot hold key \
         references inside a list or map; only `Vec`, `Option`, tuple and `String`-keyed \
         map parameters can"
    );

    let field = graph(json!({"e": [{"ref": "a", "index": 3}], "a": {"value": [1, 2]}}));
    let err = invalid(&field, "e").await;
    assert_eq!(
        err.to_string(),
        "invalid graph: key `e`: key `a` is a list of 2 items, so it has no item 3"
    );
}

// ---------------------------------------------------------------------------
// Calls written in place.

#[tokio::test]
async fn a_call_in_an_argument_runs_as_a_node_of_its_own() {
    let graph = graph(json!({
        "a": {"value": 10},
        "k": {"fn": "inc", "args": [{"fn": "add", "args": [1, 2]}]},
        "deeper": {"fn": "total", "args": [[
            {"fn": "inc", "args": [{"fn": "add", "args": [{"ref": "a"}, {"fn": "inc", "args": [0]}]}]},
            5
        ]]},
        "in-map": {"fn": "tally", "args": [{"x": {"fn": "inc", "args": [{"ref": "a"}]}, "y": 1}]},
        "with-policy": {"fn": "inc", "args": [{"fn": "inc", "args": [1], "priority": 3, "retry": {"attempts": 2}}]}
    }));
    let registry = registry();
    assert_eq!(get(&graph, &registry, "k").await.unwrap(), 4);
    assert_eq!(get(&graph, &registry, "deeper").await.unwrap(), 17);
    assert_eq!(get(&graph, &registry, "in-map").await.unwrap(), 12);
    assert_eq!(get(&graph, &registry, "with-policy").await.unwrap(), 3);
    assert_eq!(KeyedGraph::from_json(&graph.to_json()).unwrap(), graph);

    // The node of a call written in place is keyed by its key and place.
    let failing = self::graph(json!({"k": {"fn": "inc", "args": [{"fn": "fail", "args": [3]}]}}));
    let err = get(&failing, &registry, "k").await.unwrap_err();
    assert_eq!(err.key().to_string(), "k/fail-1");
    assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "no 3");
}

#[tokio::test]
async fn mistakes_in_a_call_written_in_place_name_its_key_and_place() {
    let cases = [
        (
            json!({"k": {"fn": "inc", "args": [{"fn": "ad", "args": [1, 2]}]}}),
            "invalid graph: key `k` calls `ad` (inside argument `x` of `inc`), which is not a \
             registered function; did you mean `add`?",
        ),
        (
            json!({"k": {"fn": "inc", "args": [{"fn": "add", "args": [1]}]}}),
            "invalid graph: key `k` calls `add` (inside argument `x` of `inc`) with 1 argument, \
             but it takes 2 (x, y)",
        ),
        (
            json!({"k": {"fn": "inc", "args": [{"fn": "concat", "args": ["a", "b"]}]}}),
            "invalid graph: key `k` (`inc`): argument `x` wants a `u64`, but the call of \
             `concat` makes a `String`",
        ),
        (
            json!({"k": {"fn": "inc", "args": [{"fn": "add", "args": ["one", 2]}]}}),
            "invalid graph: key `k` (`add`, inside argument `x` of `inc`): argument `x` is not \
             a `u64`: invalid type: string \"one\", expected u64",
        ),
        (
            json!({"k": {"fn": "inc", "args": [{"fn": "add", "args": [{"ref": "gone"}, 2]}]}}),
            "invalid graph: key `k` refers to missing key `gone` (argument `x` of `add`, inside \
             argument `x` of `inc`)",
        ),
        (
            json!({"k": {"fn": "inc", "args": [{"fn": "inc", "args": [1], "limit": "nope"}]}}),
            "invalid graph: key `k` (inside argument `x` of `inc`) runs under limit `nope`, \
             which is not registered (add it with `Registry::limit`)",
        ),
    ];
    for (json, message) in cases {
        let graph = graph(json);
        let err = invalid(&graph, "k").await;
        assert_eq!(err.to_string(), message);
        assert_eq!(err.key().to_string(), "k");
    }
    let err =
        KeyedGraph::from_json(r#"{"k": {"fn": "inc", "args": [[0, {"fn": 3}]]}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: key `k`: the call in argument 1[1]: `fn` must be a function name \
         (a string), not `3`"
    );
    let err = KeyedGraph::from_json(
        r#"{"k": {"fn": "inc", "args": [{"fn": "inc", "args": [{"fn": "inc", "rety": 1}]}]}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: key `k`: the call in argument 1 / argument 1: unknown field `rety`; \
         a call has `fn`, `args`, `limit`, `retry`, `timeout_ms`, `priority`"
    );
}

#[tokio::test]
async fn literals_that_look_like_calls_or_fields_are_escaped() {
    let registry = registry();
    let tricky = [
        json!({"fn": "inc", "args": [1]}),
        json!({"ref": "a", "index": 0}),
        json!([{"fn": 1}, {"x": {"ref": "a", "index": "no"}}]),
    ];
    for literal in tricky {
        let mut graph = KeyedGraph::new();
        graph.insert("a", Task::value(1));
        graph.insert("k", Call::new("echo").arg(Arg::value(&literal)));
        graph.insert(
            "m",
            Call::new("tally").arg(Arg::map([
                ("fn".to_string(), Arg::key("a")),
                ("args".to_string(), Arg::value(2)),
            ])),
        );
        let again = KeyedGraph::from_json(&graph.to_json()).unwrap();
        assert_eq!(again, graph, "{}", graph.to_json());
        assert_eq!(get(&again, &registry, "k").await.unwrap(), literal);
        assert_eq!(get(&again, &registry, "m").await.unwrap(), 3);
    }
}

/// `inc(inc(...inc(0)...))`, `depth` calls deep, built in code.
fn nested_calls(depth: usize) -> Call {
    let mut call = Call::new("inc").arg(Arg::value(0));
    for _ in 1..depth {
        call = Call::new("inc").arg(Arg::call(call));
    }
    call
}

#[test]
fn ten_thousand_calls_deep_in_place_run_without_recursion() {
    // A small stack: nothing here may use it per level.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut graph = KeyedGraph::new();
            graph.insert("k", nested_calls(10_000));
            let registry = registry();
            graph.validate(&registry).unwrap();
            let json = graph.to_json();
            assert_eq!(json.matches("\"fn\":\"inc\"").count(), 10_000);
            assert_eq!(graph.clone(), graph);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let value = runtime.block_on(get(&graph, &registry, "k")).unwrap();
            assert_eq!(value, 10_000);
            drop(graph);
        })
        .unwrap()
        .join()
        .unwrap();
}

// ---------------------------------------------------------------------------
// Nested key lists.

#[tokio::test]
async fn nested_key_lists_give_nested_results() {
    let graph = graph(json!({
        "x": {"fn": "counted", "args": ["nested-keys", 1]},
        "y": {"fn": "inc", "args": [{"ref": "x"}]},
        "v": {"value": "seven"}
    }));
    let registry = registry();
    // dask: get(dsk, [['x'], 'y']) == ((1,), 2)
    let out = get_many(&graph, &registry, &[Keys::from(["x"]), Keys::from("y")])
        .await
        .unwrap();
    assert_eq!(out, [json!([1]), json!(2)]);
    assert_eq!(count("nested-keys"), 1);
    let keys = Keys::try_from(&json!([["x", ["y", []]], "v", [[["y"]]]])).unwrap();
    let out = get_with(&graph, &registry, keys, Options::new())
        .await
        .unwrap();
    assert_eq!(out, json!([[1, [2, []]], "seven", [[[2]]]]));
    assert_eq!(count("nested-keys"), 2, "one run for every mention of `x`");
    assert_eq!(
        get_with(&graph, &registry, Vec::<&str>::new(), Options::new())
            .await
            .unwrap(),
        json!([])
    );

    let err = Keys::try_from(&json!(["x", 3])).unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "invalid graph: keys are strings or lists of keys, not `3`"
    );
    let err = get_with(&graph, &registry, [["x"], ["nope"]], Options::new())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid graph: no key `nope` in the graph");
}

// ---------------------------------------------------------------------------
// Options and callbacks.

/// Records what a compute's callbacks hear.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<String>>>);

impl Heard {
    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Callback for Heard {
    fn start(&self, _: &Graph) {
        self.0.lock().unwrap().push("start".into());
    }

    fn task_started(&self, task: &TaskStarted) {
        self.0
            .lock()
            .unwrap()
            .push(format!("started {}", task.key()));
    }

    fn task_finished(&self, task: &TaskFinished) {
        self.0
            .lock()
            .unwrap()
            .push(format!("finished {}", task.key()));
    }

    fn finish(&self, result: Result<(), &Error>) {
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.0.lock().unwrap().push(format!("finish {outcome}"));
    }
}

#[tokio::test]
async fn a_keyed_get_of_a_value_key_calls_start_and_finish() {
    // With `observe` scopes too: see `keyed_observe.rs`.
    let graph = graph(json!({"x": {"value": 1}, "y": {"ref": "x"}, "z": {"ref": "x", "index": 0}}));
    let registry = registry();
    for key in ["x", "y"] {
        let heard = Heard::default();
        let options = Options::new().callback(heard.clone());
        assert_eq!(get_with(&graph, &registry, key, options).await.unwrap(), 1);
        assert_eq!(heard.events(), ["start", "finish ok"], "{key}");
    }
    let heard = Heard::default();
    let options = Options::new().callback(heard.clone());
    let out = get_with(&graph, &registry, [["x"], ["y"]], options)
        .await
        .unwrap();
    assert_eq!(out, json!([[1], [1]]));
    let events = heard.events();
    assert_eq!(events.first().map(String::as_str), Some("start"));
    assert_eq!(events.last().map(String::as_str), Some("finish ok"));
}

#[tokio::test]
async fn a_keyed_get_of_several_keys_is_one_compute() {
    let graph = graph(json!({
        "a": {"fn": "inc", "args": [1]},
        "b": {"fn": "inc", "args": [{"ref": "a"}]},
        "v": {"value": 0}
    }));
    let registry = registry();
    let heard = Heard::default();
    let options = Options::new().callback(heard.clone());
    let out = get_with(&graph, &registry, ["a", "b", "v"], options)
        .await
        .unwrap();
    assert_eq!(out, json!([2, 3, 0]));
    let events = heard.events();
    assert_eq!(
        events.iter().filter(|e| *e == "start").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| e.starts_with("finish ")).count(),
        1,
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("finish ok"));
    for key in ["a", "b"] {
        assert!(events.contains(&format!("finished {key}")), "{events:?}");
    }
}

#[tokio::test]
async fn a_keyed_get_takes_options_sequential_and_callbacks() {
    let tag = "sequential-get";
    let graph = graph(json!({
        "a": {"fn": "counted", "args": [tag, 1]},
        "b": {"fn": "counted", "args": [tag, 2]},
        "c": {"fn": "add", "args": [{"ref": "b"}, {"ref": "a"}]},
        "d": {"fn": "counted", "args": [tag, 4]}
    }));
    let registry = registry();
    let heard = Heard::default();
    let options = Options::new().sequential().callback(heard.clone());
    let out = get_with(&graph, &registry, ["d", "c"], options)
        .await
        .unwrap();
    assert_eq!(out, json!([4, 3]));
    let order: Vec<String> = ORDER
        .lock()
        .unwrap()
        .iter()
        .filter(|run| run.starts_with(tag))
        .cloned()
        .collect();
    assert_eq!(
        order,
        [format!("{tag}:4"), format!("{tag}:2"), format!("{tag}:1")]
    );
    let events = heard.events();
    assert_eq!(events.first().map(String::as_str), Some("start"));
    assert_eq!(events.last().map(String::as_str), Some("finish ok"));
    let started: Vec<&str> = events
        .iter()
        .filter_map(|e| e.strip_prefix("started "))
        .filter(|key| ["a", "b", "c", "d"].contains(key))
        .collect();
    assert_eq!(started, ["d", "b", "a", "c"]);

    // A failure reaches the callbacks too.
    let failing = self::graph(json!({"f": {"fn": "fail", "args": [1]}}));
    let heard = Heard::default();
    let options = Options::new().callback(heard.clone());
    let err = get_with(&failing, &registry, "f", options)
        .await
        .unwrap_err();
    assert_eq!(err.key().to_string(), "f");
    assert_eq!(
        heard.events().last().map(String::as_str),
        Some("finish failed")
    );
}

// ---------------------------------------------------------------------------
// Repeated fields.

#[test]
fn a_repeated_field_in_a_task_is_an_error_naming_the_task() {
    let cases = [
        (
            r#"{"ok": {"value": 1}, "k": {"fn": "inc", "args": [1], "args": [2]}}"#,
            "k",
            "invalid graph: key `k`: field `args` appears twice at line 1 column 59",
        ),
        (
            r#"{"k": {"fn": "inc", "fn": "add", "args": [1, 2]}}"#,
            "k",
            "invalid graph: key `k`: field `fn` appears twice at line 1 column 24",
        ),
        (
            r#"{"k": {"fn": "inc", "args": [{"fn": "inc", "args": [1], "priority": 1, "priority": 2}]}}"#,
            "k",
            "invalid graph: key `k`: field `priority` appears twice at line 1 column 81",
        ),
        (
            "{\n  \"v\": {\"value\": {\"a\": 1, \"a\": 2}}\n}",
            "v",
            "invalid graph: key `v`: field `a` appears twice at line 2 column 29",
        ),
        (
            r#"{"k": {"fn": "inc", "args": [1], "retry": {"attempts": 2, "attempts": 3}}}"#,
            "k",
            "invalid graph: key `k`: field `attempts` appears twice at line 1 column 68",
        ),
    ];
    for (json, key, message) in cases {
        let err = KeyedGraph::from_json(json).unwrap_err();
        assert!(err.is_invalid());
        assert_eq!(err.to_string(), message, "for {json}");
        assert_eq!(err.key().to_string(), key);
    }
}

// ---------------------------------------------------------------------------
// Depth and size.

/// Runs `f` on a thread with a 256 KiB stack, so that anything recursing
/// per level of a deep argument overflows.
fn on_a_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn nested_lists(depth: usize, bottom: Arg) -> Arg {
    let mut arg = bottom;
    for _ in 0..depth {
        arg = Arg::list([arg, Arg::key("a")]);
    }
    arg
}

#[test]
fn validate_never_overflows_the_stack() {
    on_a_small_stack(|| {
        let registry = registry();
        for bottom in [Arg::value(1), Arg::key("a")] {
            let mut arg = bottom;
            for _ in 0..10_000 {
                arg = Arg::list([arg]);
            }
            let mut graph = KeyedGraph::new();
            graph.insert("a", Task::value(1));
            graph.insert("k", Call::new("echo").arg(arg));
            let err = graph.validate(&registry).unwrap_err();
            assert!(err.is_invalid());
            assert!(
                err.to_string().starts_with("invalid graph: key `k`"),
                "{err}"
            );
        }
        let mut graph = KeyedGraph::new();
        graph.insert("k", Call::new("echo").arg(Arg::Value(deep_value(10_000))));
        assert_eq!(
            graph.validate(&registry).unwrap_err().to_string(),
            "invalid graph: key `k`: argument `v` of `echo` nests more than 128 levels deep \
             (a graph holds what JSON holds: at most 128)"
        );
        let mut graph = KeyedGraph::new();
        graph.insert("v", Task::Value(deep_value(10_000)));
        assert_eq!(
            graph.validate(&registry).unwrap_err().to_string(),
            "invalid graph: key `v`: its value nests more than 128 levels deep \
             (a graph holds what JSON holds: at most 128)"
        );
        // As deep as JSON goes is fine.
        let mut graph = KeyedGraph::new();
        graph.insert("k", Call::new("echo").arg(Arg::Value(deep_value(127))));
        graph.validate(&registry).unwrap();
    });
}

/// A JSON value nested `depth` arrays deep.
fn deep_value(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

#[test]
fn deep_arguments_clone_compare_write_and_drop_without_recursion() {
    on_a_small_stack(|| {
        let deep = nested_lists(100_000, Arg::key("a"));
        let copy = deep.clone();
        assert_eq!(copy, deep);
        assert_ne!(nested_lists(100_000, Arg::key("b")), deep);
        let json = deep.to_json();
        assert_eq!(json.matches(r#"{"ref":"a"}"#).count(), 100_001);
        drop(copy);
        drop(deep);

        let literal = (0..100_000).fold(Arg::value(1), |arg, _| Arg::list([arg]));
        assert!(matches!(literal, Arg::Value(Value::Array(_))));
        drop(literal);

        let calls = Arg::call(nested_calls(100_000));
        assert_eq!(calls.clone(), calls);
        drop(calls);

        let mut graph = KeyedGraph::new();
        graph.insert("v", Task::Value(deep_value(100_000)));
        graph.insert("l", Task::list([nested_lists(100_000, Arg::key("v"))]));
        assert_eq!(graph.clone(), graph);
        assert!(graph.to_json().len() > 200_000);
        drop(graph);
    });
}

#[tokio::test]
async fn a_long_cycle_names_a_few_dozen_keys_and_counts_the_rest() {
    let n = 100_000;
    let mut graph = KeyedGraph::new();
    for i in 0..n {
        graph.insert(
            format!("k{i}"),
            Call::new("inc").arg(Arg::key(format!("k{}", (i + 1) % n))),
        );
    }
    let err = get(&graph, &registry(), "k0").await.unwrap_err();
    assert!(err.is_invalid());
    let message = err.to_string();
    assert!(message.len() < 1_000, "{} bytes", message.len());
    let shown: Vec<String> = (0..32).map(|i| format!("`k{i}`")).collect();
    assert_eq!(
        message,
        format!(
            "invalid graph: cycle: {} -> ... and {} more keys -> `k0`",
            shown.join(" -> "),
            n - 32
        )
    );
}
