//! Running keyed graphs (`delayed::keyed`): the seed's load → clean →
//! analyze → store graph read from JSON and run with `get` on real files,
//! with the same results as the same pipeline built from `#[delayed]`
//! calls; shared keys run once, independent keys overlap, only needed keys
//! run, dropping a `get` cancels it, panics are contained; policies from
//! JSON and from `function_policy` (retry, timeout, limit, priority);
//! `{"value": ..}` keys and escapes; `Option`, tuple, map and nested list
//! parameters with references inside (and `Option` parameters reading
//! value keys as they read literals); typed access with
//! `KeyedGraph::delayed`; `get_many`; a graph calling a `pure` function
//! leaves the caller's equal pure node alone.
//!
//! Registered functions take serde types only, so runs are counted in a
//! global table by a tag that each test makes unique.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use delayed::keyed::{get, get_many, Arg, Call, KeyedGraph, Policy, Registry, Task};
use delayed::{delayed, Limit, Retry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::{sleep, timeout, Instant};

// ---------------------------------------------------------------------------
// Run counters, by tag.

static COUNTS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// Counts one event for `tag`; returns the new count.
fn bump(tag: &str) -> usize {
    let mut counts = COUNTS.lock().unwrap();
    let count = counts.entry(tag.to_string()).or_insert(0);
    *count += 1;
    *count
}

/// How many events `tag` has seen.
fn count(tag: &str) -> usize {
    COUNTS.lock().unwrap().get(tag).copied().unwrap_or(0)
}

/// Counts an event for its tag when dropped: shows a future was dropped.
struct DropGuard(String);

impl Drop for DropGuard {
    fn drop(&mut self) {
        bump(&self.0);
    }
}

/// The log of events for a tag, in order.
static LOGS: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());

fn log(tag: &str, event: &str) {
    LOGS.lock()
        .unwrap()
        .entry(tag.to_string())
        .or_default()
        .push(event.to_string());
}

fn logged(tag: &str) -> Vec<String> {
    LOGS.lock().unwrap().get(tag).cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The seed's pipeline.

/// One input file, as `load` read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    path: String,
    text: String,
}

/// The readings of one file, as `clean` parsed them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Series {
    path: String,
    readings: Vec<i64>,
    rejected: usize,
}

/// What `analyze` found over all files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Stats {
    files: usize,
    readings: usize,
    rejected: usize,
    sum: i64,
    max: Option<i64>,
}

#[delayed(register)]
fn load(path: String) -> Result<Doc, io::Error> {
    bump(&format!("load:{path}"));
    let text = std::fs::read_to_string(&path)?;
    Ok(Doc { path, text })
}

#[delayed(register)]
fn clean(doc: Doc) -> Series {
    bump(&format!("clean:{}", doc.path));
    let mut readings = Vec::new();
    let mut rejected = 0;
    for line in doc.text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.parse() {
            Ok(reading) => readings.push(reading),
            Err(_) => rejected += 1,
        }
    }
    Series {
        path: doc.path,
        readings,
        rejected,
    }
}

#[delayed(register)]
fn analyze(series: Vec<Series>) -> Stats {
    if let Some(first) = series.first() {
        bump(&format!("analyze:{}", first.path));
    }
    let all = series.iter().flat_map(|s| s.readings.iter().copied());
    Stats {
        files: series.len(),
        readings: series.iter().map(|s| s.readings.len()).sum(),
        rejected: series.iter().map(|s| s.rejected).sum(),
        sum: all.clone().sum(),
        max: all.max(),
    }
}

#[delayed(register)]
fn store(stats: Stats, out: String) -> Result<String, io::Error> {
    let report = format!(
        "files={} readings={} rejected={} sum={} max={:?}\n",
        stats.files, stats.readings, stats.rejected, stats.sum, stats.max
    );
    std::fs::write(&out, &report)?;
    Ok(report)
}

/// Writes the seed's three input files into `dir`.
fn write_inputs(dir: &Path) -> [String; 3] {
    let files = [
        ("a.data", "1\n2\n# a comment\n3\n"),
        ("b.data", "10\n\n20\nnot a number\n"),
        ("c.data", "100\n-5\n"),
    ];
    files.map(|(name, text)| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    })
}

/// The seed's graph, as JSON text.
fn seed_json(paths: &[String; 3], out: &str) -> String {
    json!({
        "load-1": {"fn": "load", "args": [paths[0]]},
        "load-2": {"fn": "load", "args": [paths[1]]},
        "load-3": {"fn": "load", "args": [paths[2]]},
        "clean-1": {"fn": "clean", "args": [{"ref": "load-1"}]},
        "clean-2": {"fn": "clean", "args": [{"ref": "load-2"}]},
        "clean-3": {"fn": "clean", "args": [{"ref": "load-3"}]},
        "analyze": {"fn": "analyze", "args": [[
            {"ref": "clean-1"}, {"ref": "clean-2"}, {"ref": "clean-3"}
        ]]},
        "store": {"fn": "store", "args": [{"ref": "analyze"}, out]}
    })
    .to_string()
}

fn seed_registry() -> Registry {
    delayed::registry![load, clean, analyze, store]
}

#[tokio::test]
async fn the_seed_graph_from_json_gives_what_the_delayed_calls_give() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_inputs(dir.path());
    let keyed_out = dir.path().join("keyed.txt").display().to_string();
    let direct_out = dir.path().join("direct.txt").display().to_string();
    let registry = seed_registry();
    let graph = KeyedGraph::from_json(&seed_json(&paths, &keyed_out)).unwrap();
    graph.validate(&registry).unwrap();
    assert_eq!(graph.len(), 8);

    let report = get(&graph, &registry, "store").await.unwrap();

    let series: Vec<_> = paths.iter().map(|p| clean(load(p.clone()))).collect();
    let analysis = analyze(series);
    let direct = store(&analysis, direct_out.clone());
    let expected = direct.compute().await.unwrap();

    assert_eq!(
        expected,
        "files=3 readings=7 rejected=1 sum=131 max=Some(100)\n"
    );
    assert_eq!(report, Value::String(expected.clone()));
    assert_eq!(std::fs::read_to_string(&keyed_out).unwrap(), expected);
    assert_eq!(std::fs::read_to_string(&direct_out).unwrap(), expected);

    // An inner key gives the same value as the same node computed directly.
    let stats = get(&graph, &registry, "analyze").await.unwrap();
    assert_eq!(
        stats,
        serde_json::to_value(analysis.compute().await.unwrap()).unwrap()
    );
    let series = get(&graph, &registry, "clean-2").await.unwrap();
    assert_eq!(
        series,
        json!({"path": paths[1], "readings": [10, 20], "rejected": 1})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_graph_runs_on_a_multi_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_inputs(dir.path());
    let out = dir.path().join("report.txt").display().to_string();
    let registry = seed_registry();
    let graph = KeyedGraph::from_json(&seed_json(&paths, &out)).unwrap();

    let report = get(&graph, &registry, "store").await.unwrap();
    assert_eq!(
        report,
        "files=3 readings=7 rejected=1 sum=131 max=Some(100)\n"
    );
    for path in &paths {
        assert_eq!(count(&format!("load:{path}")), 1);
        assert_eq!(count(&format!("clean:{path}")), 1);
    }
}

#[tokio::test]
async fn a_graph_built_in_code_equals_its_json_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_inputs(dir.path());
    let out = dir.path().join("report.txt").display().to_string();

    let mut graph = KeyedGraph::new();
    for (i, path) in paths.iter().enumerate() {
        let n = i + 1;
        graph.insert(format!("load-{n}"), Call::new("load").arg(Arg::value(path)));
        graph.insert(
            format!("clean-{n}"),
            Call::new("clean").arg(Arg::key(format!("load-{n}"))),
        );
    }
    graph.insert(
        "analyze",
        Call::new("analyze").arg(Arg::list((1..=3).map(|n| Arg::key(format!("clean-{n}"))))),
    );
    graph.insert(
        "store",
        Call::new("store")
            .arg(Arg::key("analyze"))
            .arg(Arg::value(&out)),
    );

    assert_eq!(
        graph,
        KeyedGraph::from_json(&seed_json(&paths, &out)).unwrap()
    );
    let report = get(&graph, &seed_registry(), "store").await.unwrap();
    assert_eq!(
        report,
        "files=3 readings=7 rejected=1 sum=131 max=Some(100)\n"
    );
}

#[tokio::test]
async fn a_failing_load_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = write_inputs(dir.path());
    paths[1] = dir.path().join("missing.data").display().to_string();
    let out = dir.path().join("report.txt").display().to_string();
    let graph = KeyedGraph::from_json(&seed_json(&paths, &out)).unwrap();

    let err = get(&graph, &seed_registry(), "store").await.unwrap_err();
    assert!(err.is_failed(), "{err}");
    assert_eq!(err.key().to_string(), "load-2");
    assert_eq!(err.to_string(), "task `load-2` failed");
    let cause = std::error::Error::source(&err).unwrap();
    assert_eq!(
        cause.downcast_ref::<io::Error>().unwrap().kind(),
        io::ErrorKind::NotFound
    );
    assert!(!Path::new(&out).exists(), "store never ran");
}

// ---------------------------------------------------------------------------
// Sharing, concurrency, culling, cancellation, panics.

/// Sleeps `ms`, counting starts, finishes and drops under `tag`.
#[delayed(register)]
async fn nap(tag: String, ms: u64) -> u64 {
    bump(&format!("{tag}:started"));
    let _guard = DropGuard(format!("{tag}:dropped"));
    sleep(Duration::from_millis(ms)).await;
    bump(&format!("{tag}:finished"));
    ms
}

#[delayed(register)]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// Counts its runs under `tag`, then returns `x + 1`.
#[delayed(register)]
fn counted(tag: String, x: u64) -> u64 {
    bump(&tag);
    x + 1
}

#[delayed(register)]
fn explode(tag: String) -> u64 {
    bump(&tag);
    panic!("boom: {tag}")
}

/// Fails its first `failures` runs under `tag`, then returns the run count.
#[delayed(register)]
fn flaky(tag: String, failures: u64) -> Result<u64, io::Error> {
    let run = bump(&tag) as u64;
    if run <= failures {
        Err(io::Error::other(format!("run {run} of {tag} failed")))
    } else {
        Ok(run)
    }
}

fn tools() -> Registry {
    delayed::registry![nap, total, counted, explode, flaky]
}

#[tokio::test]
async fn shared_keys_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_inputs(dir.path());
    let out = dir.path().join("report.txt").display().to_string();
    let mut graph = KeyedGraph::from_json(&seed_json(&paths, &out)).unwrap();
    // `clean-1` twice in the list, and another key that also needs it.
    graph.insert(
        "analyze",
        Call::new("analyze").arg(Arg::list([
            Arg::key("clean-1"),
            Arg::key("clean-2"),
            Arg::key("clean-1"),
            Arg::key("clean-3"),
        ])),
    );
    graph.insert(
        "analyze-1",
        Call::new("analyze").arg(Arg::list([Arg::key("clean-1")])),
    );

    let both = get_many(&graph, &seed_registry(), &["store", "analyze-1"])
        .await
        .unwrap();
    assert_eq!(
        both[0],
        "files=4 readings=10 rejected=1 sum=137 max=Some(100)\n"
    );
    assert_eq!(both[1]["sum"], 6);
    for path in &paths {
        assert_eq!(count(&format!("load:{path}")), 1, "{path}");
        assert_eq!(count(&format!("clean:{path}")), 1, "{path}");
    }
}

#[tokio::test(start_paused = true)]
async fn independent_keys_overlap() {
    let graph = KeyedGraph::from_json(
        r#"{
            "load-1": {"fn": "nap", "args": ["overlap-1", 100]},
            "load-2": {"fn": "nap", "args": ["overlap-2", 100]},
            "load-3": {"fn": "nap", "args": ["overlap-3", 100]},
            "after": {"fn": "nap", "args": ["overlap-4", 30]},
            "sum": {"fn": "total", "args": [[{"ref": "load-1"}, {"ref": "load-2"}, {"ref": "load-3"}]]},
            "chain": {"fn": "total", "args": [[{"ref": "sum"}, {"ref": "after"}]]}
        }"#,
    )
    .unwrap();
    let registry = tools();

    let start = Instant::now();
    assert_eq!(get(&graph, &registry, "sum").await.unwrap(), 300);
    assert_eq!(start.elapsed(), Duration::from_millis(100));

    // `after` is independent of the loads too: still 100 ms in all.
    let start = Instant::now();
    assert_eq!(get(&graph, &registry, "chain").await.unwrap(), 330);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn dependent_keys_take_their_critical_path() {
    let mut graph = KeyedGraph::new();
    graph.insert(
        "a",
        Call::new("nap")
            .arg(Arg::value("path-a"))
            .arg(Arg::value(40)),
    );
    // `b` sleeps as long as `a` said: 40 ms after `a`.
    graph.insert(
        "b",
        Call::new("nap")
            .arg(Arg::value("path-b"))
            .arg(Arg::key("a")),
    );
    graph.insert(
        "c",
        Call::new("nap")
            .arg(Arg::value("path-c"))
            .arg(Arg::value(50)),
    );
    graph.insert(
        "d",
        Call::new("total").arg(Arg::list([Arg::key("b"), Arg::key("c")])),
    );

    let start = Instant::now();
    assert_eq!(get(&graph, &tools(), "d").await.unwrap(), 90);
    assert_eq!(start.elapsed(), Duration::from_millis(80));
}

#[tokio::test]
async fn only_the_keys_a_get_needs_run() {
    let graph = KeyedGraph::from_json(
        r#"{
            "x": {"fn": "counted", "args": ["cull-x", 1]},
            "y": {"fn": "counted", "args": ["cull-y", {"ref": "x"}]},
            "unused": {"fn": "counted", "args": ["cull-unused", {"ref": "x"}]},
            "doomed": {"fn": "explode", "args": ["cull-doomed"]},
            "failing": {"fn": "flaky", "args": ["cull-failing", 100]},
            "downstream": {"fn": "total", "args": [[{"ref": "doomed"}, {"ref": "failing"}]]}
        }"#,
    )
    .unwrap();

    assert_eq!(get(&graph, &tools(), "y").await.unwrap(), 3);
    assert_eq!(count("cull-x"), 1);
    assert_eq!(count("cull-y"), 1);
    assert_eq!(count("cull-unused"), 0);
    assert_eq!(count("cull-doomed"), 0);
    assert_eq!(count("cull-failing"), 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_get_cancels_its_keys() {
    let graph = KeyedGraph::from_json(
        r#"{
            "slow": {"fn": "nap", "args": ["cancel-slow", 1000]},
            "after": {"fn": "counted", "args": ["cancel-after", {"ref": "slow"}]}
        }"#,
    )
    .unwrap();
    let registry = tools();

    let cancelled = timeout(Duration::from_millis(10), get(&graph, &registry, "after")).await;
    assert!(cancelled.is_err(), "the get was still running");
    // The abort is processed by the runtime on its next turn.
    tokio::task::yield_now().await;
    assert_eq!(count("cancel-slow:started"), 1);
    assert_eq!(
        count("cancel-slow:dropped"),
        1,
        "the body's future was dropped"
    );
    sleep(Duration::from_secs(5)).await;
    assert_eq!(
        count("cancel-slow:finished"),
        0,
        "the cancelled key never finished"
    );
    assert_eq!(count("cancel-after"), 0);

    // A new get runs the graph afresh, and to the end.
    let start = Instant::now();
    assert_eq!(get(&graph, &registry, "after").await.unwrap(), 1001);
    assert_eq!(start.elapsed(), Duration::from_millis(1000));
    assert_eq!(count("cancel-slow:started"), 2);
    assert_eq!(count("cancel-slow:finished"), 1);
    assert_eq!(count("cancel-after"), 1);
}

#[tokio::test]
async fn a_panicking_key_fails_the_get_and_names_the_key() {
    let graph = KeyedGraph::from_json(
        r#"{
            "bad": {"fn": "explode", "args": ["panic-bad"]},
            "good": {"fn": "counted", "args": ["panic-good", 1]},
            "both": {"fn": "total", "args": [[{"ref": "good"}, {"ref": "bad"}]]}
        }"#,
    )
    .unwrap();
    let registry = tools();

    let err = get(&graph, &registry, "both").await.unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert!(!err.is_invalid());
    assert_eq!(err.key().to_string(), "bad");
    assert_eq!(err.panic_message(), Some("boom: panic-bad"));
    assert_eq!(err.to_string(), "task `bad` panicked: boom: panic-bad");
    assert_eq!(count("panic-bad"), 1);

    // The runtime is fine: other keys, and other tasks, still run.
    assert_eq!(get(&graph, &registry, "good").await.unwrap(), 2);
    assert_eq!(tokio::spawn(async { 7 }).await.unwrap(), 7);
}

// ---------------------------------------------------------------------------
// Policies.

#[tokio::test(start_paused = true)]
async fn retry_from_json_waits_its_fixed_delay() {
    let graph = KeyedGraph::from_json(
        r#"{
            "fetch": {"fn": "flaky", "args": ["retry-ok", 2],
                      "retry": {"attempts": 3, "fixed_ms": 100}}
        }"#,
    )
    .unwrap();

    let start = Instant::now();
    assert_eq!(get(&graph, &tools(), "fetch").await.unwrap(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(count("retry-ok"), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_from_json_gives_up_after_its_attempts() {
    let graph = KeyedGraph::from_json(
        r#"{
            "fetch": {"fn": "flaky", "args": ["retry-fail", 5],
                      "retry": {"attempts": 2, "fixed_ms": 250}}
        }"#,
    )
    .unwrap();

    let start = Instant::now();
    let err = get(&graph, &tools(), "fetch").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    assert!(err.is_failed());
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.to_string(), "task `fetch` failed after 2 attempts");
    assert_eq!(count("retry-fail"), 2);
}

#[tokio::test(start_paused = true)]
async fn timeout_from_json_stops_the_key() {
    let graph = KeyedGraph::from_json(
        r#"{
            "slow": {"fn": "nap", "args": ["timeout-slow", 1000], "timeout_ms": 50},
            "after": {"fn": "counted", "args": ["timeout-after", {"ref": "slow"}]}
        }"#,
    )
    .unwrap();

    let start = Instant::now();
    let err = get(&graph, &tools(), "after").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.key().to_string(), "slow");
    assert_eq!(err.to_string(), "task `slow` timed out after 50ms");
    tokio::task::yield_now().await;
    assert_eq!(count("timeout-slow:dropped"), 1);
    assert_eq!(count("timeout-slow:finished"), 0);
    assert_eq!(count("timeout-after"), 0);
}

static LIMIT_ONE: Limit = Limit::new("one-at-a-time", 1);

#[tokio::test(start_paused = true)]
async fn a_registered_limit_named_in_json_serializes_keys() {
    let json = |limit: &str| {
        json!({
            "a": {"fn": "nap", "args": ["limit-a", 100], "limit": limit},
            "b": {"fn": "nap", "args": ["limit-b", 100], "limit": limit},
            "both": {"fn": "total", "args": [[{"ref": "a"}, {"ref": "b"}]]}
        })
        .to_string()
    };
    let mut registry = tools();
    registry.limit(&LIMIT_ONE);

    let graph = KeyedGraph::from_json(&json("one-at-a-time")).unwrap();
    let start = Instant::now();
    assert_eq!(get(&graph, &registry, "both").await.unwrap(), 200);
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(LIMIT_ONE.in_use(), 0);

    // Without the limit the two overlap.
    let mut graph = graph;
    for key in ["a", "b"] {
        if let Some(Task::Call(call)) = graph.get_mut(key) {
            call.policy_mut().limit = None;
        }
    }
    let start = Instant::now();
    assert_eq!(get(&graph, &registry, "both").await.unwrap(), 200);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

static LIMIT_FN: Limit = Limit::new("naps", 1);

#[tokio::test(start_paused = true)]
async fn function_policy_applies_to_every_call_of_the_function() {
    let mut graph = KeyedGraph::from_json(
        r#"{
            "a": {"fn": "flaky", "args": ["fnpolicy-a", 1]},
            "b": {"fn": "flaky", "args": ["fnpolicy-b", 1]},
            "c": {"fn": "nap", "args": ["fnpolicy-c", 100]},
            "d": {"fn": "nap", "args": ["fnpolicy-d", 100]},
            "all": {"fn": "total", "args": [[{"ref": "a"}, {"ref": "b"}, {"ref": "c"}, {"ref": "d"}]]}
        }"#,
    )
    .unwrap();
    graph.function_policy(
        "flaky",
        Policy::new().retry(Retry::attempts(2).fixed(Duration::from_millis(30))),
    );
    graph.function_policy("nap", Policy::new().limit("naps"));
    let mut registry = tools();
    registry.limit(&LIMIT_FN);

    let start = Instant::now();
    assert_eq!(get(&graph, &registry, "all").await.unwrap(), 2 + 2 + 200);
    // The naps one after the other (200 ms); the retries (30 ms) overlap.
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(count("fnpolicy-a"), 2);
    assert_eq!(count("fnpolicy-b"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_keys_own_policy_wins_over_its_functions_field_by_field() {
    let mut graph = KeyedGraph::from_json(
        r#"{
            "own": {"fn": "flaky", "args": ["precedence-own", 10],
                    "retry": {"attempts": 2, "fixed_ms": 10}},
            "inherited": {"fn": "flaky", "args": ["precedence-inherited", 10]},
            "mixed": {"fn": "nap", "args": ["precedence-mixed", 1000],
                      "retry": {"attempts": 3, "fixed_ms": 10}}
        }"#,
    )
    .unwrap();
    graph.function_policy(
        "flaky",
        Policy::new().retry(Retry::attempts(4).fixed(Duration::from_millis(100))),
    );
    // The key sets the retry, the function the timeout: both apply.
    graph.function_policy("nap", Policy::new().timeout(Duration::from_millis(50)));
    let registry = tools();

    let start = Instant::now();
    let err = get(&graph, &registry, "own").await.unwrap_err();
    assert_eq!(err.attempts(), 2);
    assert_eq!(start.elapsed(), Duration::from_millis(10));

    let start = Instant::now();
    let err = get(&graph, &registry, "inherited").await.unwrap_err();
    assert_eq!(err.attempts(), 4);
    assert_eq!(start.elapsed(), Duration::from_millis(300));

    let start = Instant::now();
    let err = get(&graph, &registry, "mixed").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.attempts(), 3);
    assert_eq!(
        err.to_string(),
        "task `mixed` timed out after 50ms (after 3 attempts)"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(3 * 50 + 2 * 10));
    assert_eq!(count("precedence-mixed:started"), 3);
}

/// Times out after 10 ms unless the graph says otherwise.
#[delayed(register, timeout = Duration::from_millis(10))]
async fn impatient(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    ms
}

#[tokio::test(start_paused = true)]
async fn json_policies_win_over_the_attribute() {
    let registry = delayed::registry![impatient];
    let graph = KeyedGraph::from_json(
        r#"{
            "default": {"fn": "impatient", "args": [100]},
            "patient": {"fn": "impatient", "args": [100], "timeout_ms": 1000}
        }"#,
    )
    .unwrap();

    let start = Instant::now();
    let err = get(&graph, &registry, "default").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(start.elapsed(), Duration::from_millis(10));

    let start = Instant::now();
    assert_eq!(get(&graph, &registry, "patient").await.unwrap(), 100);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

/// Logs `name` under `tag`, then holds whatever permit it runs under for
/// 100 ms.
#[delayed(register)]
async fn step(tag: String, name: String, after: Vec<u64>) -> u64 {
    log(&tag, &name);
    sleep(Duration::from_millis(100)).await;
    after.len() as u64
}

static LIMIT_PRIORITY: Limit = Limit::new("priority-lane", 1);

#[tokio::test(start_paused = true)]
async fn priority_from_json_orders_keys_waiting_for_a_limit() {
    let mut registry = delayed::registry![step, nap, total];
    registry.limit(&LIMIT_PRIORITY);
    // `first` takes the lane at once; `low` and `high` queue for it after
    // `gate` (10 ms), and `high` goes next.
    let graph = KeyedGraph::from_json(
        r#"{
            "gate": {"fn": "nap", "args": ["priority-gate", 10]},
            "first": {"fn": "step", "args": ["priority", "first", []], "limit": "priority-lane"},
            "low": {"fn": "step", "args": ["priority", "low", [{"ref": "gate"}]],
                    "limit": "priority-lane", "priority": -1},
            "high": {"fn": "step", "args": ["priority", "high", [{"ref": "gate"}]],
                     "limit": "priority-lane", "priority": 5},
            "all": {"fn": "total", "args": [[{"ref": "low"}, {"ref": "high"}, {"ref": "first"}]]}
        }"#,
    )
    .unwrap();

    let start = Instant::now();
    assert_eq!(get(&graph, &registry, "all").await.unwrap(), 2);
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(logged("priority"), ["first", "high", "low"]);
}

// ---------------------------------------------------------------------------
// Values and argument shapes.

/// Returns its argument as is.
#[delayed(register)]
fn echo(v: Value) -> Value {
    v
}

#[delayed(register)]
fn inc(x: u64) -> u64 {
    x + 1
}

/// `Some(x)` for a positive `x`.
#[delayed(register)]
fn positive(x: u64) -> Option<u64> {
    (x > 0).then_some(x)
}

#[delayed(register)]
fn or_default(x: Option<u64>) -> u64 {
    x.unwrap_or(1000)
}

#[delayed(register)]
fn label(pair: (u64, String)) -> String {
    format!("{}={}", pair.1, pair.0)
}

#[delayed(register)]
fn triple(t: (String, Vec<u64>, Option<u64>)) -> String {
    format!("{}:{:?}:{:?}", t.0, t.1, t.2)
}

#[delayed(register)]
fn tally(counts: HashMap<String, u64>) -> BTreeMap<String, u64> {
    counts.into_iter().collect()
}

#[delayed(register)]
fn row_sums(rows: Vec<Vec<u64>>) -> Vec<u64> {
    rows.iter().map(|row| row.iter().sum()).collect()
}

#[delayed(register)]
fn maybe_all(xs: Vec<Option<u64>>) -> Vec<Option<u64>> {
    xs
}

#[delayed(register)]
fn nested(m: BTreeMap<String, Vec<u64>>) -> u64 {
    m.values().flatten().sum()
}

fn shapes() -> Registry {
    delayed::registry![
        echo, inc, positive, or_default, label, triple, tally, row_sums, maybe_all, nested, clean,
        total
    ]
}

#[tokio::test]
async fn value_keys_are_read_by_the_calls_that_refer_to_them() {
    let graph = KeyedGraph::from_json(
        r#"{
            "n": {"value": 41},
            "xs": {"value": [1, 2, 3]},
            "doc": {"value": {"path": "inline", "text": "5\n6\n"}},
            "m": {"value": {"a": 1, "b": 2}},
            "plus": {"fn": "inc", "args": [{"ref": "n"}]},
            "sum": {"fn": "total", "args": [{"ref": "xs"}]},
            "mixed": {"fn": "total", "args": [[{"ref": "n"}, {"ref": "plus"}, 100]]},
            "cleaned": {"fn": "clean", "args": [{"ref": "doc"}]},
            "tallied": {"fn": "tally", "args": [{"ref": "m"}]}
        }"#,
    )
    .unwrap();
    let registry = shapes();
    graph.validate(&registry).unwrap();

    assert_eq!(get(&graph, &registry, "n").await.unwrap(), 41);
    assert_eq!(get(&graph, &registry, "plus").await.unwrap(), 42);
    assert_eq!(get(&graph, &registry, "sum").await.unwrap(), 6);
    assert_eq!(get(&graph, &registry, "mixed").await.unwrap(), 183);
    assert_eq!(
        get(&graph, &registry, "cleaned").await.unwrap(),
        json!({"path": "inline", "readings": [5, 6], "rejected": 0})
    );
    assert_eq!(
        get(&graph, &registry, "tallied").await.unwrap(),
        json!({"a": 1, "b": 2})
    );
    assert_eq!(
        get(&graph, &registry, "doc").await.unwrap(),
        json!({"path": "inline", "text": "5\n6\n"})
    );
}

#[tokio::test]
async fn value_escapes_pass_literals_that_look_like_references() {
    let graph = KeyedGraph::from_json(
        r#"{
            "x": {"value": "the value of x"},
            "literal": {"fn": "echo", "args": [{"value": {"ref": "x"}}]},
            "reference": {"fn": "echo", "args": [{"ref": "x"}]},
            "escape": {"fn": "echo", "args": [{"value": {"value": 1}}]},
            "number": {"fn": "echo", "args": [{"ref": 3}]},
            "bigger": {"fn": "echo", "args": [{"ref": "x", "other": 1}]},
            "inside": {"fn": "echo", "args": [{"inner": {"ref": "x"}}]},
            "string": {"fn": "echo", "args": ["x"]},
            "stored": {"value": {"ref": "x"}}
        }"#,
    )
    .unwrap();
    let registry = shapes();

    assert_eq!(
        get(&graph, &registry, "literal").await.unwrap(),
        json!({"ref": "x"})
    );
    assert_eq!(
        get(&graph, &registry, "reference").await.unwrap(),
        "the value of x"
    );
    assert_eq!(
        get(&graph, &registry, "escape").await.unwrap(),
        json!({"value": 1})
    );
    // `{"ref": ...}` is a reference only with a string and nothing else.
    assert_eq!(
        get(&graph, &registry, "number").await.unwrap(),
        json!({"ref": 3})
    );
    assert_eq!(
        get(&graph, &registry, "bigger").await.unwrap(),
        json!({"ref": "x", "other": 1})
    );
    // A reference inside an object is one, but a `Value` parameter is a
    // leaf: it takes a literal or a whole key.
    assert_eq!(
        get(&graph, &registry, "inside")
            .await
            .unwrap_err()
            .to_string(),
        "invalid graph: key `inside` (`echo`): argument `v` is a `Value`, which cannot hold key \
         references inside a list or map; only `Vec`, `Option`, tuple and `String`-keyed map \
         parameters can"
    );
    // A plain string that happens to be a key's name is a string.
    assert_eq!(get(&graph, &registry, "string").await.unwrap(), "x");
    // A value key is taken as is: no reference inside it.
    assert_eq!(
        get(&graph, &registry, "stored").await.unwrap(),
        json!({"ref": "x"})
    );
}

#[tokio::test]
async fn option_parameters_take_null_values_and_references() {
    let graph = KeyedGraph::from_json(
        r#"{
            "n": {"fn": "inc", "args": [6]},
            "some": {"fn": "positive", "args": [5]},
            "none": {"fn": "positive", "args": [0]},
            "null": {"fn": "or_default", "args": [null]},
            "literal": {"fn": "or_default", "args": [3]},
            "wrapped": {"fn": "or_default", "args": [{"ref": "n"}]},
            "option-some": {"fn": "or_default", "args": [{"ref": "some"}]},
            "option-none": {"fn": "or_default", "args": [{"ref": "none"}]},
            "options": {"fn": "maybe_all", "args": [[{"ref": "n"}, null, {"ref": "none"}, 4]]}
        }"#,
    )
    .unwrap();
    let registry = shapes();

    let keys = [
        "null",
        "literal",
        "wrapped",
        "option-some",
        "option-none",
        "options",
    ];
    let values = get_many(&graph, &registry, &keys).await.unwrap();
    assert_eq!(
        values,
        [
            json!(1000),
            json!(3),
            json!(7),
            json!(5),
            json!(1000),
            json!([7, null, null, 4])
        ]
    );
}

#[tokio::test]
async fn option_parameters_read_value_keys_as_the_literal_would_be_read() {
    // A value key stands for its value: `{"ref": "none"}` must read as the
    // `null` written in its place does.
    let graph = KeyedGraph::from_json(
        r#"{
            "none": {"value": null},
            "five": {"value": 5},
            "inline": {"fn": "or_default", "args": [null]},
            "by-ref": {"fn": "or_default", "args": [{"ref": "none"}]},
            "some-by-ref": {"fn": "or_default", "args": [{"ref": "five"}]},
            "in-list": {"fn": "maybe_all", "args": [[{"ref": "none"}, {"ref": "five"}, null]]}
        }"#,
    )
    .unwrap();
    let registry = shapes();

    let keys = ["inline", "by-ref", "some-by-ref", "in-list"];
    let got: Vec<_> = futures::future::join_all(keys.map(|key| get(&graph, &registry, key)))
        .await
        .into_iter()
        .map(|result| result.map_err(|err| err.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            Ok(json!(1000)),
            Ok(json!(1000)),
            Ok(json!(5)),
            Ok(json!([null, 5, null]))
        ]
    );
}

#[tokio::test]
async fn tuple_map_and_nested_list_parameters_take_references_inside() {
    let graph = KeyedGraph::from_json(
        r#"{
            "n": {"fn": "inc", "args": [9]},
            "name": {"value": "ten"},
            "pair": {"fn": "label", "args": [[{"ref": "n"}, {"ref": "name"}]]},
            "pair-literal": {"fn": "label", "args": [[1, "one"]]},
            "triple": {"fn": "triple", "args": [["t", [1, {"ref": "n"}], {"ref": "n"}]]},
            "tally": {"fn": "tally", "args": [{"ten": {"ref": "n"}, "two": 2}]},
            "grid": {"fn": "row_sums", "args": [[[{"ref": "n"}, 1], [], [2, 3], {"ref": "row"}]]},
            "row": {"value": [4, 5]},
            "nested": {"fn": "nested", "args": [{"a": [{"ref": "n"}, 1], "b": {"ref": "row"}}]}
        }"#,
    )
    .unwrap();
    let registry = shapes();
    graph.validate(&registry).unwrap();

    let keys = ["pair", "pair-literal", "triple", "tally", "grid", "nested"];
    let values = get_many(&graph, &registry, &keys).await.unwrap();
    assert_eq!(
        values,
        [
            json!("ten=10"),
            json!("one=1"),
            json!("t:[1, 10]:Some(10)"),
            json!({"ten": 10, "two": 2}),
            json!([11, 0, 5, 9]),
            json!(20)
        ]
    );
}

// ---------------------------------------------------------------------------
// Typed access and get_many.

#[tokio::test]
async fn typed_access_gives_a_delayed_of_the_keys_type() {
    let graph = KeyedGraph::from_json(
        r#"{
            "n": {"value": 1},
            "a": {"fn": "counted", "args": ["typed-a", {"ref": "n"}]},
            "b": {"fn": "counted", "args": ["typed-b", {"ref": "a"}]}
        }"#,
    )
    .unwrap();
    let registry = tools();

    let b = graph.delayed::<u64>(&registry, "b").unwrap();
    assert_eq!(b.key().to_string(), "b");
    assert_eq!(count("typed-a"), 0, "building runs nothing");
    // It is an ordinary `Delayed`: usable in `#[delayed]` calls.
    let more = counted("typed-more".to_string(), &b);
    assert_eq!(more.compute().await.unwrap(), 4);
    assert_eq!(b.compute().await.unwrap(), 3);
    assert_eq!(count("typed-a"), 1);
    assert_eq!(count("typed-b"), 1);

    // A value key reads as its value, named by its key.
    let n = graph.delayed::<u64>(&registry, "n").unwrap();
    assert_eq!(n.key().to_string(), "n");
    assert_eq!(n.compute().await.unwrap(), 1);
}

#[tokio::test]
async fn typed_access_of_the_wrong_type_is_an_error() {
    let graph = KeyedGraph::from_json(
        r#"{
            "n": {"value": "text"},
            "a": {"fn": "counted", "args": ["typed-wrong", 1]}
        }"#,
    )
    .unwrap();
    let registry = tools();

    let err = graph.delayed::<String>(&registry, "a").unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "invalid graph: key `a` makes a `u64`, not a `String`"
    );
    let err = graph.delayed::<Vec<u64>>(&registry, "a").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: key `a` makes a `u64`, not a `Vec<u64>`"
    );
    let err = graph.delayed::<u64>(&registry, "n").unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "invalid graph: key `n`: invalid type: string \"text\", expected u64"
    );
    let err = graph.delayed::<u64>(&registry, "missing").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: no key `missing` in the graph"
    );
    assert_eq!(count("typed-wrong"), 0);
}

#[tokio::test]
async fn get_many_returns_outputs_in_order_and_shares_keys() {
    let graph = KeyedGraph::from_json(
        r#"{
            "base": {"fn": "counted", "args": ["many-base", 0]},
            "a": {"fn": "counted", "args": ["many-a", {"ref": "base"}]},
            "b": {"fn": "counted", "args": ["many-b", {"ref": "a"}]},
            "c": {"fn": "counted", "args": ["many-c", {"ref": "base"}]},
            "v": {"value": "plain"}
        }"#,
    )
    .unwrap();
    let registry = tools();

    let values = get_many(&graph, &registry, &["c", "b", "v", "a", "b", "base"])
        .await
        .unwrap();
    assert_eq!(
        values,
        [
            json!(2),
            json!(3),
            json!("plain"),
            json!(2),
            json!(3),
            json!(1)
        ]
    );
    for tag in ["many-base", "many-a", "many-b", "many-c"] {
        assert_eq!(count(tag), 1, "{tag}");
    }
    assert_eq!(
        get_many::<&str>(&graph, &registry, &[]).await.unwrap(),
        Vec::<Value>::new()
    );
}

#[tokio::test(start_paused = true)]
async fn get_many_runs_its_keys_together_and_fails_fast() {
    let graph = KeyedGraph::from_json(
        r#"{
            "a": {"fn": "nap", "args": ["many-a-nap", 100]},
            "b": {"fn": "nap", "args": ["many-b-nap", 100]},
            "slow": {"fn": "nap", "args": ["many-slow", 1000]},
            "bad": {"fn": "flaky", "args": ["many-bad", 5]}
        }"#,
    )
    .unwrap();
    let registry = tools();

    let start = Instant::now();
    let both = get_many(&graph, &registry, &["a", "b"]).await.unwrap();
    assert_eq!(both, [100, 100]);
    assert_eq!(start.elapsed(), Duration::from_millis(100));

    let start = Instant::now();
    let err = get_many(&graph, &registry, &["slow", "bad"])
        .await
        .unwrap_err();
    assert_eq!(err.key().to_string(), "bad");
    assert_eq!(start.elapsed(), Duration::ZERO, "did not wait for `slow`");
    // `slow` never ran to the end: cancelled before it started, or
    // dropped while it slept.
    sleep(Duration::from_secs(5)).await;
    assert_eq!(count("many-slow:finished"), 0, "`slow` was cancelled");
    assert_eq!(
        count("many-slow:dropped"),
        count("many-slow:started"),
        "`slow` was dropped if it started"
    );
}

// ---------------------------------------------------------------------------
// Pure functions.

/// Sleeps `ms`; equal calls alive at the same time are one node.
#[delayed(register, pure)]
async fn pure_nap(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    ms
}

#[tokio::test(start_paused = true)]
async fn a_keyed_graph_leaves_equal_pure_nodes_outside_it_alone() {
    let registry = delayed::registry![pure_nap];
    // The caller's own node, alive while the graph runs.
    let mine = pure_nap(100);
    let key = mine.key();
    let graph =
        KeyedGraph::from_json(r#"{"hasty": {"fn": "pure_nap", "args": [100], "timeout_ms": 10}}"#)
            .unwrap();

    let err = get(&graph, &registry, "hasty").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.key().to_string(), "hasty");

    // The graph's key name and timeout are the graph's: the caller's node
    // has no timeout, computes, and keeps its key.
    let start = Instant::now();
    assert_eq!(mine.compute().await.map_err(|err| err.to_string()), Ok(100));
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(mine.key(), key);
}
