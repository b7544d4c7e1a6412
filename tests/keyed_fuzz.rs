//! Fuzzing keyed graphs (`delayed::keyed`): whatever text or JSON comes
//! in, `KeyedGraph::from_json`, `validate`, `get`, `get_many` and
//! `KeyedGraph::delayed` return (an `Ok`, an invalid-graph error, or a
//! task's failure), never panic and never hang.
//!
//! - Arbitrary bytes (read as lossy UTF-8), and valid graphs with random
//!   byte edits.
//! - Arbitrary JSON value trees of bounded depth, biased toward the shapes
//!   of tasks (calls, values, aliases, fields, lists), references, calls
//!   written in place and policies.
//! - Random graphs built with the API: references to existing keys,
//!   missing keys and the key itself (cycles), arguments of the wrong
//!   type, lists and maps with references and calls inside, aliases, field
//!   references, list keys, policies. There `validate`
//!   and `get` must agree, and writing to JSON and reading back must give
//!   the same graph.
//!
//! Each property runs 256 cases so that `cargo test` stays fast. To fuzz
//! longer:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release --test keyed_fuzz
//! ```

use std::collections::HashMap;
use std::io;
use std::sync::Once;
use std::time::Duration;

use delayed::keyed::{get, get_many, Arg, Call, KeyedGraph, Registry, Task};
use delayed::{delayed, Delayed, Error, Limit, Retry};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

/// What the panicking function's panics say; the panic hook hides them.
const INJECTED: &str = "injected keyed fuzz panic";

/// A case that takes longer than this (real time) is taken to hang.
const HANG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The registry the graphs call.

#[delayed(register)]
fn inc(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[delayed(register)]
fn add(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, &x| a.wrapping_add(x))
}

#[delayed(register)]
fn concat(a: String, b: String) -> String {
    a + &b
}

#[delayed(register)]
fn maybe(x: Option<u64>) -> u64 {
    x.unwrap_or(0)
}

#[delayed(register)]
fn pair(p: (u64, String)) -> String {
    format!("{}{}", p.1, p.0)
}

#[delayed(register)]
fn tally(m: HashMap<String, u64>) -> u64 {
    m.values().fold(0, |a, &x| a.wrapping_add(x))
}

#[delayed(register)]
fn rows(r: Vec<Vec<u64>>) -> u64 {
    r.iter().flatten().fold(0, |a, &x| a.wrapping_add(x))
}

#[delayed(register)]
async fn later(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x
}

/// Panics for odd numbers.
#[delayed(register)]
fn explode(x: u64) -> u64 {
    if x % 2 == 1 {
        panic!("{INJECTED}: {x}");
    }
    x
}

/// Fails for odd numbers.
#[delayed(register)]
fn fail(x: u64) -> Result<u64, io::Error> {
    if x % 2 == 1 {
        return Err(io::Error::other("odd"));
    }
    Ok(x)
}

#[delayed(register)]
fn echo(v: Value) -> Value {
    v
}

#[delayed(register)]
fn split(x: u64) -> (u64, String) {
    (x, x.to_string())
}

static LANE: Limit = Limit::new("lane", 2);

fn registry() -> Registry {
    let mut registry = delayed::registry![
        inc, add, concat, maybe, pair, tally, rows, later, explode, fail, echo, split
    ];
    registry.limit(&LANE);
    registry
}

const FUNCTIONS: [&str; 12] = [
    "inc", "add", "concat", "maybe", "pair", "tally", "rows", "later", "explode", "fail", "echo",
    "split",
];

fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !message.is_some_and(|m| m.starts_with(INJECTED)) {
                default(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------
// Running a graph, whatever it is.

/// A current-thread runtime on the real clock, for one case.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The outcomes a run may have: a value, an invalid graph, or a task that
/// failed, panicked or timed out.
fn check_outcome(
    what: &str,
    result: &Result<impl std::fmt::Debug, Error>,
) -> Result<(), TestCaseError> {
    if let Err(err) = result {
        prop_assert!(
            err.is_invalid() || err.is_panic() || err.is_failed() || err.is_timeout(),
            "{}: unexpected error {:?}",
            what,
            err
        );
        prop_assert!(!err.to_string().is_empty());
    }
    Ok(())
}

/// Keeps retries short, so that a fuzzed policy cannot make a run take
/// minutes (4 billion attempts of a failing key are legitimately slow), in
/// calls written in place too.
fn tame(graph: &mut KeyedGraph) {
    let keys: Vec<String> = graph.iter().map(|(k, _)| k.to_string()).collect();
    for key in keys {
        let tamed = match graph.get(&key) {
            Some(Task::Call(call)) => Task::Call(tame_call(call)),
            Some(Task::List(items)) => Task::List(items.iter().map(tame_arg).collect()),
            _ => continue,
        };
        graph.insert(key, tamed);
    }
}

fn tame_call(call: &Call) -> Call {
    let probe = Delayed::value(0_u8).key();
    let mut tamed = Call::new(call.function());
    for arg in call.args() {
        tamed = tamed.arg(tame_arg(arg));
    }
    *tamed.policy_mut() = call.policy().clone();
    if let Some(retry) = &call.policy().retry {
        let short = retry.max_attempts() <= 3
            && (1..3).all(|n| retry.delay(&probe, n) <= Duration::from_millis(5));
        if !short {
            tamed.policy_mut().retry = Some(Retry::attempts(retry.max_attempts().min(3)));
        }
    }
    tamed
}

/// `arg` with its calls tamed (fuzzed arguments are a few levels deep).
fn tame_arg(arg: &Arg) -> Arg {
    match arg {
        Arg::Call(call) => Arg::Call(tame_call(call)),
        Arg::List(items) => Arg::List(items.iter().map(tame_arg).collect()),
        Arg::Map(entries) => Arg::Map(
            entries
                .iter()
                .map(|(name, item)| (name.clone(), tame_arg(item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Validates and runs `graph` every way there is; `validate` and `get`
/// must agree.
async fn exercise(graph: &KeyedGraph, registry: &Registry) -> Result<(), TestCaseError> {
    let validated = graph.validate(registry);
    check_outcome("validate", &validated)?;
    if let Err(err) = &validated {
        prop_assert!(err.is_invalid(), "validate: {:?}", err);
    }
    let keys: Vec<&str> = graph.iter().map(|(k, _)| k).take(12).collect();
    for key in &keys {
        let got = get(graph, registry, key).await;
        check_outcome(&format!("get `{key}`"), &got)?;
        if let Err(err) = &got {
            if err.is_invalid() {
                prop_assert!(
                    validated.is_err(),
                    "get `{}` is invalid ({}), but validate passed",
                    key,
                    err
                );
            }
        }
        check_outcome(
            "delayed::<u64>",
            &graph.delayed::<u64>(registry, key).map(drop),
        )?;
        if let Ok(node) = graph.delayed::<Value>(registry, key) {
            check_outcome("delayed::<Value> compute", &node.compute().await)?;
        }
    }
    let many = get_many(graph, registry, &keys).await;
    check_outcome("get_many", &many)?;
    if let Ok(values) = &many {
        prop_assert_eq!(values.len(), keys.len());
    }
    let missing = get(graph, registry, "\u{0}not a key").await.unwrap_err();
    prop_assert!(missing.is_invalid());
    Ok(())
}

/// Reads `text` and, if it is a graph, runs it, all under a real-time
/// bound.
fn fuzz_text(text: &str) -> Result<(), TestCaseError> {
    quiet_injected_panics();
    let parsed = KeyedGraph::from_json(text);
    let mut graph = match parsed {
        Ok(graph) => graph,
        Err(err) => {
            prop_assert!(err.is_invalid(), "from_json: {:?}", err);
            prop_assert!(
                err.to_string().starts_with("invalid graph: "),
                "from_json: {}",
                err
            );
            return Ok(());
        }
    };
    // What was read writes and reads back as itself.
    let again = KeyedGraph::from_json(&graph.to_json())
        .map_err(|err| TestCaseError::fail(format!("re-reading: {err}")))?;
    {
        prop_assert_eq!(&again, &graph);
    }
    tame(&mut graph);
    let registry = registry();
    runtime().block_on(async {
        tokio::time::timeout(HANG, exercise(&graph, &registry))
            .await
            .map_err(|_| TestCaseError::fail(format!("hangs: {}", graph.to_json())))?
    })
}

// ---------------------------------------------------------------------------
// Strategies: JSON.

/// Names the graphs use: function names, keys, fields, limits.
fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "inc",
        "add",
        "concat",
        "maybe",
        "pair",
        "tally",
        "rows",
        "later",
        "explode",
        "fail",
        "echo",
        "split",
        "laod",
        "a",
        "b",
        "c",
        "k0",
        "k1",
        "fn",
        "args",
        "ref",
        "index",
        "value",
        "limit",
        "retry",
        "timeout_ms",
        "priority",
        "attempts",
        "fixed_ms",
        "exponential_ms",
        "max_delay_ms",
        "jitter",
        "seed",
        "panics",
        "lane",
        "nope",
        "",
    ])
    .prop_map(str::to_string)
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![3 => word(), 1 => ".{0,6}"]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0_u64..8).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-2.0_f64..2.0).prop_map(Value::from),
        any_string().prop_map(Value::from),
    ]
}

/// Any JSON, at most 4 levels deep, with references and escapes.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((any_string(), inner.clone()), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            word().prop_map(|key| json!({ "ref": key })),
            (word(), 0_u64..3).prop_map(|(key, index)| json!({ "ref": key, "index": index })),
            (prop::sample::select(FUNCTIONS.to_vec()), inner.clone())
                .prop_map(|(function, arg)| json!({ "fn": function, "args": [arg] })),
            inner.prop_map(|value| json!({ "value": value })),
        ]
    })
}

/// A policy field, well formed or not.
fn policy_field() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        prop_oneof![Just(json!("lane")), Just(json!("nope")), leaf()]
            .prop_map(|v| ("limit".to_string(), v)),
        prop_oneof![(0_u64..30).prop_map(Value::from), leaf()]
            .prop_map(|v| ("timeout_ms".to_string(), v)),
        prop_oneof![(-5_i64..5).prop_map(Value::from), leaf()]
            .prop_map(|v| ("priority".to_string(), v)),
        prop_oneof![
            (0_u64..4, 0_u64..3).prop_map(|(n, ms)| json!({"attempts": n, "fixed_ms": ms})),
            (0_u64..4, 0_u64..3).prop_map(|(n, ms)| json!({"attempts": n, "exponential_ms": ms, "max_delay_ms": 2, "jitter": 0.5, "seed": 1, "panics": true})),
            prop::collection::vec((word(), leaf()), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            json_value(),
        ]
        .prop_map(|v| ("retry".to_string(), v)),
        (word(), leaf()),
    ]
}

/// A task, usually of the right form.
fn task() -> impl Strategy<Value = Value> {
    let call = (
        prop_oneof![4 => prop::sample::select(FUNCTIONS.to_vec()).prop_map(Value::from), 1 => leaf()],
        prop_oneof![
            // Most functions take one argument; `concat` takes two.
            6 => prop::collection::vec(json_value(), 1..=1).prop_map(Value::Array),
            2 => prop::collection::vec(json_value(), 2..=2).prop_map(Value::Array),
            2 => prop::collection::vec(json_value(), 0..4).prop_map(Value::Array),
            1 => leaf(),
        ],
        prop::collection::vec(policy_field(), 0..3),
    )
        .prop_map(|(function, args, policy)| {
            let mut task = serde_json::Map::new();
            task.insert("fn".into(), function);
            task.insert("args".into(), args);
            task.extend(policy);
            Value::Object(task)
        });
    prop_oneof![
        6 => call,
        2 => json_value().prop_map(|value| json!({ "value": value })),
        1 => word().prop_map(|key| json!({ "ref": key })),
        1 => (word(), 0_u64..3).prop_map(|(key, index)| json!({ "ref": key, "index": index })),
        1 => prop::collection::vec(json_value(), 0..4).prop_map(Value::Array),
        1 => json_value(),
    ]
}

/// A graph as JSON: an object from keys to tasks (or, now and then, not).
fn graph_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        9 => prop::collection::vec((word(), task()), 0..8)
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        1 => json_value(),
    ]
}

/// A valid graph's JSON, to edit.
const SEED: &str = r#"{
  "a": {"value": 3},
  "b": {"fn": "inc", "args": [{"ref": "a"}], "retry": {"attempts": 2, "fixed_ms": 1}},
  "c": {"fn": "add", "args": [[{"ref": "a"}, {"ref": "b"}, 4]], "limit": "lane"},
  "d": {"fn": "pair", "args": [[{"ref": "c"}, "x"]], "priority": 2, "timeout_ms": 1000},
  "e": {"fn": "tally", "args": [{"one": {"ref": "b"}, "two": 2}]},
  "f": {"fn": "echo", "args": [{"value": {"ref": "a"}}]},
  "g": {"fn": "maybe", "args": [null]},
  "h": {"fn": "rows", "args": [[[{"ref": "e"}], [], [1, 2]]]},
  "i": {"ref": "h"},
  "j": [{"ref": "i"}, {"fn": "inc", "args": [{"fn": "add", "args": [[1, {"ref": "b"}]]}]}, 5],
  "s": {"fn": "split", "args": [{"ref": "b"}]},
  "t": {"fn": "concat", "args": [{"ref": "s", "index": 1}, {"ref": "u"}]},
  "u": {"ref": "s", "index": 1}
}"#;

/// One edit of a text: delete, insert or replace a byte somewhere.
fn edit() -> impl Strategy<Value = (u8, prop::sample::Index, u8)> {
    (0_u8..3, any::<prop::sample::Index>(), any::<u8>())
}

fn apply_edits(text: &str, edits: &[(u8, prop::sample::Index, u8)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for (kind, at, byte) in edits {
        let at = at.index(bytes.len() + 1);
        // Bytes that matter in JSON, most of the time.
        let byte = b"{}[]\",:0123456789 -.enulltrue\\x"
            .get(*byte as usize % 40)
            .copied()
            .unwrap_or(*byte);
        match kind {
            0 if at < bytes.len() => {
                bytes.remove(at);
            }
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => bytes[at] = byte,
            _ => bytes.push(byte),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------
// Strategies: graphs built with the API.

/// How many keys a structured graph has at most; references go to
/// `k0`..`k8`, so some are missing.
const KEYS: usize = 8;

fn arg() -> impl Strategy<Value = Arg> {
    let leaf = prop_oneof![
        4 => (0_usize..KEYS + 1).prop_map(|n| Arg::key(format!("k{n}"))),
        6 => (0_u64..5).prop_map(Arg::value),
        1 => leaf().prop_map(Arg::Value),
        1 => json_value().prop_map(Arg::Value),
    ];
    let leaf = prop_oneof![
        10 => leaf,
        1 => ((0_usize..KEYS + 1), 0_usize..3).prop_map(|(n, index)| Arg::field(format!("k{n}"), index)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (prop::sample::select(FUNCTIONS.to_vec()), inner.clone())
                .prop_map(|(function, arg)| Arg::call(Call::new(function).arg(arg))),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Arg::list),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["one", "two", "x", "ref", "value"])
                        .prop_map(str::to_string),
                    inner
                ),
                0..3
            )
            .prop_map(Arg::map),
        ]
    })
}

fn structured_task() -> impl Strategy<Value = Task> {
    // A function, and usually as many arguments as it takes.
    let function_and_args = prop_oneof![
        19 => prop::sample::select(FUNCTIONS.to_vec()),
        1 => Just("nope"),
    ]
    .prop_flat_map(|function| {
        let arity = if function == "concat" { 2 } else { 1 };
        (
            Just(function),
            prop_oneof![
                6 => prop::collection::vec(arg(), arity..=arity),
                1 => prop::collection::vec(arg(), 0..4),
            ],
        )
    });
    let call = (
        function_and_args,
        prop_oneof![
            8 => Just(None),
            2 => Just(Some("lane")),
            1 => Just(Some("nope")),
        ],
        prop::option::of((1_u32..4, 0_u64..3)),
        prop::option::of(0_u64..20),
        prop::option::of(-3_i32..3),
    )
        .prop_map(|((function, args), limit, retry, timeout, priority)| {
            let mut call = Call::new(function);
            for arg in args {
                call = call.arg(arg);
            }
            if let Some(limit) = limit {
                call = call.limit(limit);
            }
            if let Some((attempts, ms)) = retry {
                call = call.retry(Retry::attempts(attempts).fixed(Duration::from_millis(ms)));
            }
            if let Some(ms) = timeout {
                call = call.timeout(Duration::from_millis(ms));
            }
            if let Some(priority) = priority {
                call = call.priority(priority);
            }
            Task::Call(call)
        });
    prop_oneof![
        5 => call,
        1 => json_value().prop_map(Task::Value),
        1 => (0_u64..5).prop_map(Task::value),
        1 => (0_usize..KEYS + 1).prop_map(|n| Task::alias(format!("k{n}"))),
        1 => (0_usize..KEYS + 1, 0_usize..3).prop_map(|(n, index)| Task::field(format!("k{n}"), index)),
        1 => prop::collection::vec(arg(), 0..4).prop_map(Task::list),
    ]
}

fn structured_graph() -> impl Strategy<Value = KeyedGraph> {
    prop::collection::vec(structured_task(), 1..=KEYS).prop_map(|tasks| {
        // References go to `k0`..`k8`: keys past the end are missing.
        let mut graph = KeyedGraph::new();
        for (i, task) in tasks.into_iter().enumerate() {
            graph.insert(format!("k{i}"), task);
        }
        graph
    })
}

// ---------------------------------------------------------------------------
// The properties.

/// 256 cases, or `PROPTEST_CASES` when set; no regression files.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes, read as lossy UTF-8.
    #[test]
    fn arbitrary_bytes_never_panic_or_hang(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        fuzz_text(&String::from_utf8_lossy(&bytes))?;
    }

    /// A valid graph with random byte edits.
    #[test]
    fn edited_graphs_never_panic_or_hang(edits in prop::collection::vec(edit(), 1..6)) {
        fuzz_text(&apply_edits(SEED, &edits))?;
    }

    /// Arbitrary JSON values, compact and pretty.
    #[test]
    fn arbitrary_json_never_panics_or_hangs(value in graph_json()) {
        fuzz_text(&value.to_string())?;
        fuzz_text(&serde_json::to_string_pretty(&value).unwrap())?;
    }

    /// Random graphs built with the API: `validate` and `get` agree, and
    /// the JSON round trip gives the same graph.
    #[test]
    fn structured_graphs_never_panic_or_hang(mut graph in structured_graph()) {
        quiet_injected_panics();
        {
            let json = graph.to_json();
            let again = KeyedGraph::from_json(&json)
                .map_err(|err| TestCaseError::fail(format!("{err}: {json}")))?;
            prop_assert_eq!(&again, &graph, "{}", json);
            prop_assert_eq!(&KeyedGraph::from_json(&graph.to_json_pretty()).unwrap(), &graph);
        }
        tame(&mut graph);
        let registry = registry();
        runtime().block_on(async {
            tokio::time::timeout(HANG, exercise(&graph, &registry))
                .await
                .map_err(|_| TestCaseError::fail(format!("hangs: {}", graph.to_json())))?
        })?;
    }
}

// ---------------------------------------------------------------------------
// Fixed inputs at the edges.

#[test]
fn the_seed_graph_runs() {
    let graph = KeyedGraph::from_json(SEED).unwrap();
    let registry = registry();
    graph.validate(&registry).unwrap();
    let values = runtime()
        .block_on(get_many(&graph, &registry, &["c", "d", "e", "f", "g", "h"]))
        .unwrap();
    assert_eq!(
        values,
        [
            json!(11),
            json!("x11"),
            json!(6),
            json!({"ref": "a"}),
            json!(0),
            json!(9)
        ]
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = KeyedGraph::from_json(&deep).unwrap_err();
    assert!(err.is_invalid());

    let value = format!(
        r#"{{"k": {{"value": {}1{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = KeyedGraph::from_json(&value).unwrap_err();
    assert!(err.is_invalid());
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );

    let args = format!(
        r#"{{"k": {{"fn": "echo", "args": [{}1{}]}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = KeyedGraph::from_json(&args).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );

    // As deep as JSON allows, with a reference at the bottom.
    let depth = 120;
    let args = format!(
        r#"{{"n": {{"value": 1}}, "k": {{"fn": "echo", "args": [{}{{"ref": "n"}}{}]}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let graph = KeyedGraph::from_json(&args).unwrap();
    let err = graph.validate(&registry()).unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(KeyedGraph::from_json(&graph.to_json()).unwrap(), graph);
}

#[test]
fn long_chains_and_wide_fans_run_without_recursion() {
    let registry = registry();
    let n = 20_000;
    let mut graph = KeyedGraph::new();
    graph.insert("k0", Task::value(0));
    for i in 1..n {
        graph.insert(
            format!("k{i}"),
            Call::new("inc").arg(Arg::key(format!("k{}", i - 1))),
        );
    }
    graph.insert(
        "fan",
        Call::new("add").arg(Arg::list((0..n).map(|i| Arg::key(format!("k{i}"))))),
    );
    let runtime = runtime();
    let last = format!("k{}", n - 1);
    let values = runtime
        .block_on(get_many(&graph, &registry, &[&last, "fan"]))
        .unwrap();
    let n = n as u64;
    assert_eq!(values, [json!(n - 1), json!(n * (n - 1) / 2)]);

    // Closing the chain into a cycle is found, and named, without recursion.
    graph.insert("k0", Call::new("inc").arg(Arg::key(&last)));
    let err = runtime.block_on(get(&graph, &registry, "fan")).unwrap_err();
    assert!(err.is_invalid());
    assert!(
        err.to_string()
            .starts_with("invalid graph: cycle: `k0` -> `k"),
        "{err}"
    );
}

#[test]
fn odd_keys_and_strings_are_kept_exactly() {
    let registry = registry();
    let keys = [
        "",
        " ",
        "\"",
        "\\",
        "\u{0}",
        "é",
        "🦀",
        "{\"ref\": \"a\"}",
        "k\nl",
    ];
    let mut graph = KeyedGraph::new();
    for (i, key) in keys.iter().enumerate() {
        let task: Task = if i == 0 {
            Task::value(*key)
        } else {
            Call::new("concat")
                .arg(Arg::key(keys[i - 1]))
                .arg(Arg::value(*key))
                .into()
        };
        graph.insert(*key, task);
    }
    let again = KeyedGraph::from_json(&graph.to_json()).unwrap();
    assert_eq!(again, graph);
    assert_eq!(
        KeyedGraph::from_json(&graph.to_json_pretty()).unwrap(),
        graph
    );
    let last = runtime()
        .block_on(get(&again, &registry, keys[keys.len() - 1]))
        .unwrap();
    assert_eq!(last, json!(keys.concat()));
}
