//! Round trips of keyed graphs (`delayed::keyed`): a `Delayed` graph
//! exported with `KeyedGraph::from_delayed`, written as JSON, read back and
//! run with `get` gives what computing the `Delayed` gives, and the spec
//! read back equals the spec written. For the seed's pipeline on real
//! files, and for random DAGs of registered functions (lists, tuples,
//! options, literals, named values, nodes computed before the export) with
//! proptest. Also: exporting a `map` closure or an unregistered function is
//! an error naming the node; finished nodes export as values; policies come
//! along; pretty and compact JSON read as the same graph; literals that
//! look like `{"ref": ..}` or `{"value": ..}` survive, and so must map
//! arguments with a lone `ref` or `value` entry, floats, long durations and
//! named `None` values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use delayed::keyed::{get, get_many, Arg, Call, KeyedGraph, Registry, Task};
use delayed::{delayed, Delayed, Join, Limit, Retry};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::{sleep, Instant};

static COUNTS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn bump(tag: &str) {
    *COUNTS.lock().unwrap().entry(tag.to_string()).or_insert(0) += 1;
}

fn count(tag: &str) -> usize {
    COUNTS.lock().unwrap().get(tag).copied().unwrap_or(0)
}

/// Writes the graph as JSON (compact and pretty), reads both back, checks
/// they are the graph written, and returns the one read back.
fn round_trip(graph: &KeyedGraph) -> KeyedGraph {
    let compact = graph.to_json();
    let again = KeyedGraph::from_json(&compact).unwrap();
    assert_eq!(&again, graph, "compact JSON: {compact}");
    assert_eq!(again.to_json(), compact, "writing is stable");
    let pretty = graph.to_json_pretty();
    assert_eq!(&KeyedGraph::from_json(&pretty).unwrap(), graph, "{pretty}");
    again
}

// ---------------------------------------------------------------------------
// The seed's pipeline, on real files.

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Stats {
    files: usize,
    count: usize,
    sum: i64,
    max: Option<i64>,
}

#[delayed(register)]
async fn load(dir: String, name: String) -> io::Result<String> {
    bump(&format!("load:{dir}/{name}"));
    tokio::fs::read_to_string(std::path::Path::new(&dir).join(name)).await
}

#[delayed(register)]
fn clean(text: &str) -> Vec<i64> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[delayed(register)]
fn analyze(series: Vec<Vec<i64>>) -> Stats {
    let all = series.iter().flatten().copied();
    Stats {
        files: series.len(),
        count: all.clone().count(),
        sum: all.clone().sum(),
        max: all.max(),
    }
}

#[delayed(register)]
async fn store(stats: Stats, dir: String) -> io::Result<String> {
    let report = format!(
        "files={} count={} sum={} max={:?}\n",
        stats.files, stats.count, stats.sum, stats.max
    );
    tokio::fs::write(std::path::Path::new(&dir).join("report.txt"), &report).await?;
    Ok(report)
}

fn seed_registry() -> Registry {
    delayed::registry![load, clean, analyze, store]
}

fn write_inputs(dir: &std::path::Path) -> String {
    for (name, text) in [
        ("a.data", "1\n2\n3\n"),
        ("b.data", "4\nfive\n6\n"),
        ("c.data", "-7\n80\n"),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir.display().to_string()
}

/// The seed's pipeline as `#[delayed]` calls; named keys if `named`.
fn seed_pipeline(dir: &str, named: bool) -> (Delayed<Stats>, Delayed<String>) {
    fn name<T: Send + Sync + 'static>(node: Delayed<T>, named: bool, key: String) -> Delayed<T> {
        if named {
            node.named(key)
        } else {
            node
        }
    }
    let data_dir = name(Delayed::value(dir.to_string()), named, "data-dir".into());
    let cleaned: Vec<Delayed<Vec<i64>>> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let loaded = load(&data_dir, format!("{file}.data"));
            let loaded = name(loaded, named, format!("load-{}", i + 1));
            name(clean(&loaded), named, format!("clean-{}", i + 1))
        })
        .collect();
    let analysis = name(analyze(cleaned), named, "analyze".into());
    let stored = name(store(&analysis, &data_dir), named, "store".into());
    (analysis, stored)
}

#[tokio::test]
async fn the_seed_pipeline_exports_to_the_seed_spec_and_runs_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_inputs(dir.path());
    let registry = seed_registry();
    let (analysis, stored) = seed_pipeline(&path, true);

    let exported = KeyedGraph::from_delayed(&stored, &registry).unwrap();
    let seed = json!({
        "data-dir": {"value": path},
        "load-1": {"fn": "load", "args": [{"ref": "data-dir"}, "a.data"]},
        "load-2": {"fn": "load", "args": [{"ref": "data-dir"}, "b.data"]},
        "load-3": {"fn": "load", "args": [{"ref": "data-dir"}, "c.data"]},
        "clean-1": {"fn": "clean", "args": [{"ref": "load-1"}]},
        "clean-2": {"fn": "clean", "args": [{"ref": "load-2"}]},
        "clean-3": {"fn": "clean", "args": [{"ref": "load-3"}]},
        "analyze": {"fn": "analyze", "args": [[{"ref": "clean-1"}, {"ref": "clean-2"}, {"ref": "clean-3"}]]},
        "store": {"fn": "store", "args": [{"ref": "analyze"}, {"ref": "data-dir"}]}
    });
    assert_eq!(exported, KeyedGraph::from_json(&seed.to_string()).unwrap());
    assert_eq!(
        count(&format!("load:{path}/a.data")),
        0,
        "exporting runs nothing"
    );

    let again = round_trip(&exported);
    again.validate(&registry).unwrap();
    let keyed = get_many(&again, &registry, &["store", "analyze"])
        .await
        .unwrap();
    assert_eq!(count(&format!("load:{path}/a.data")), 1);
    let report_file = dir.path().join("report.txt");
    let keyed_file = std::fs::read_to_string(&report_file).unwrap();
    std::fs::remove_file(&report_file).unwrap();

    let direct = stored.compute().await.unwrap();
    assert_eq!(count(&format!("load:{path}/a.data")), 2);
    assert_eq!(direct, "files=3 count=7 sum=89 max=Some(80)\n");
    assert_eq!(keyed[0], Value::String(direct.clone()));
    assert_eq!(
        keyed[1],
        serde_json::to_value(analysis.compute().await.unwrap()).unwrap()
    );
    assert_eq!(keyed_file, direct);
    assert_eq!(std::fs::read_to_string(&report_file).unwrap(), direct);
}

#[tokio::test]
async fn an_unnamed_pipeline_exports_with_its_node_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_inputs(dir.path());
    let registry = seed_registry();
    let (analysis, stored) = seed_pipeline(&path, false);

    let exported = KeyedGraph::from_delayed(&stored, &registry).unwrap();
    // Three loads, three cleans, analyze and store; the unnamed directory
    // is a literal in each call that takes it.
    assert_eq!(exported.len(), 8);
    let root = stored.key().to_string();
    assert!(root.starts_with("store-"), "{root}");
    match exported.get(&root) {
        Some(Task::Call(call)) => {
            assert_eq!(call.function(), "store");
            assert_eq!(call.args()[0], Arg::key(analysis.key().to_string()));
            assert_eq!(call.args()[1], Arg::value(&path));
        }
        other => panic!("{other:?}"),
    }

    let again = round_trip(&exported);
    let keyed = get(&again, &registry, &root).await.unwrap();
    let analyzed = get(&again, &registry, &analysis.key().to_string())
        .await
        .unwrap();
    assert_eq!(keyed, Value::String(stored.compute().await.unwrap()));
    assert_eq!(
        analyzed,
        serde_json::to_value(analysis.compute().await.unwrap()).unwrap()
    );
}

// ---------------------------------------------------------------------------
// Random DAGs.

#[delayed(register)]
fn add(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, &x| a.wrapping_add(x))
}

#[delayed(register)]
fn mul(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b).wrapping_add(a ^ b)
}

#[delayed(register)]
fn pair(p: (u64, u64)) -> u64 {
    p.0.rotate_left(13) ^ p.1
}

#[delayed(register)]
fn maybe(x: Option<u64>) -> u64 {
    x.map_or(7, |v| v.wrapping_mul(3))
}

#[delayed(register)]
fn rows(rows: Vec<Vec<u64>>) -> u64 {
    rows.iter()
        .enumerate()
        .fold(0, |acc, (i, row)| acc ^ add_all(row).rotate_left(i as u32))
}

fn add_all(xs: &[u64]) -> u64 {
    xs.iter().fold(0, |a, &x| a.wrapping_add(x))
}

fn dag_registry() -> Registry {
    delayed::registry![add, mul, pair, maybe, rows]
}

/// Most nodes in a random graph.
const MAX_NODES: usize = 32;

/// An input of a node: an earlier node, or a literal.
#[derive(Clone, Debug)]
enum Input {
    Node(usize),
    Lit(u64),
}

#[derive(Clone, Debug)]
enum Op {
    /// `Delayed::value(x)`: not a registered call.
    Lit(u64),
    Add(Vec<Input>),
    Mul(Input, Input),
    Pair(Input, Input),
    Maybe(Option<Input>),
    Rows(Vec<Vec<Input>>),
}

#[derive(Clone, Debug)]
struct Spec {
    op: Op,
    named: bool,
}

#[derive(Clone, Debug)]
struct Dag {
    nodes: Vec<Spec>,
    /// Registered nodes to export, and get.
    roots: Vec<usize>,
    /// Nodes computed before the export.
    precomputed: Vec<usize>,
}

impl Dag {
    fn value(values: &[u64], input: &Input) -> u64 {
        match input {
            Input::Node(i) => values[*i],
            Input::Lit(x) => *x,
        }
    }

    /// Every node's value, computed plainly.
    fn reference(&self) -> Vec<u64> {
        let mut values = Vec::with_capacity(self.nodes.len());
        for spec in &self.nodes {
            let v = |input: &Input| Dag::value(&values, input);
            let value = match &spec.op {
                Op::Lit(x) => *x,
                Op::Add(xs) => add_all(&xs.iter().map(v).collect::<Vec<_>>()),
                Op::Mul(a, b) => {
                    let (a, b) = (v(a), v(b));
                    a.wrapping_mul(b).wrapping_add(a ^ b)
                }
                Op::Pair(a, b) => v(a).rotate_left(13) ^ v(b),
                Op::Maybe(x) => x.as_ref().map(v).map_or(7, |x| x.wrapping_mul(3)),
                Op::Rows(rows) => rows.iter().enumerate().fold(0, |acc, (i, row)| {
                    acc ^ add_all(&row.iter().map(v).collect::<Vec<_>>()).rotate_left(i as u32)
                }),
            };
            values.push(value);
        }
        values
    }

    fn inputs(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut push = |input: &Input| {
            if let Input::Node(j) = input {
                out.push(*j);
            }
        };
        match &self.nodes[i].op {
            Op::Lit(_) => {}
            Op::Add(xs) => xs.iter().for_each(&mut push),
            Op::Mul(a, b) | Op::Pair(a, b) => {
                push(a);
                push(b);
            }
            Op::Maybe(x) => x.iter().for_each(&mut push),
            Op::Rows(rows) => rows.iter().flatten().for_each(&mut push),
        }
        out
    }

    /// Which nodes are finished before the export: literals, and the
    /// precomputed nodes with everything upstream of them.
    fn finished(&self) -> Vec<bool> {
        let mut finished: Vec<bool> = self
            .nodes
            .iter()
            .map(|spec| matches!(spec.op, Op::Lit(_)))
            .collect();
        for &i in &self.precomputed {
            finished[i] = true;
        }
        // Inputs come before the nodes that take them.
        for i in (0..self.nodes.len()).rev() {
            if finished[i] {
                for j in self.inputs(i) {
                    finished[j] = true;
                }
            }
        }
        finished
    }

    fn key(&self, keys: &[String], i: usize) -> String {
        keys[i].clone()
    }

    /// The keys the export must have: every unfinished node reachable
    /// from a root without passing a finished one, every finished root,
    /// and every named finished node such a node takes as input.
    fn expected_keys(&self, keys: &[String]) -> HashSet<String> {
        let finished = self.finished();
        let mut expected = HashSet::new();
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<usize> = self.roots.clone();
        for &root in &self.roots {
            if finished[root] {
                expected.insert(self.key(keys, root));
            }
        }
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) || finished[i] {
                continue;
            }
            expected.insert(self.key(keys, i));
            for j in self.inputs(i) {
                if finished[j] {
                    if self.nodes[j].named {
                        expected.insert(self.key(keys, j));
                    }
                } else {
                    stack.push(j);
                }
            }
        }
        expected
    }
}

/// The `#[delayed]` nodes of a DAG, and their keys.
fn build(dag: &Dag) -> (Vec<Delayed<u64>>, Vec<String>) {
    let mut nodes: Vec<Delayed<u64>> = Vec::with_capacity(dag.nodes.len());
    for (i, spec) in dag.nodes.iter().enumerate() {
        let node = |input: &Input| match input {
            Input::Node(j) => nodes[*j].clone(),
            Input::Lit(x) => Delayed::value(*x),
        };
        let made = match &spec.op {
            Op::Lit(x) => Delayed::value(*x),
            Op::Add(xs) => add(xs.iter().map(node).collect::<Vec<_>>()),
            Op::Mul(a, b) => match (a, b) {
                // A plain literal argument, and a node argument.
                (Input::Lit(x), b) => mul(*x, node(b)),
                (a, Input::Lit(y)) => mul(node(a), *y),
                (a, b) => mul(node(a), node(b)),
            },
            Op::Pair(a, b) => pair((node(a), node(b))),
            Op::Maybe(None) => maybe(None::<u64>),
            Op::Maybe(Some(Input::Lit(x))) => maybe(Some(*x)),
            Op::Maybe(Some(x)) => maybe(Some(node(x))),
            Op::Rows(rows_in) => rows(
                rows_in
                    .iter()
                    .map(|row| row.iter().map(node).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
                    .join(),
            ),
        };
        nodes.push(if spec.named {
            made.named(format!("n{i}"))
        } else {
            made
        });
    }
    let keys = nodes.iter().map(|n| n.key().to_string()).collect();
    (nodes, keys)
}

fn input() -> impl Strategy<Value = RawInput> {
    (prop::bool::weighted(0.8), any::<Index>(), any::<u64>())
}

fn resolve(i: usize, (node, index, lit): RawInput) -> Input {
    if node && i > 0 {
        Input::Node(index.index(i))
    } else {
        Input::Lit(lit % 1000)
    }
}

type RawInput = (bool, Index, u64);

fn op() -> impl Strategy<Value = (u8, RawInput, RawInput, Vec<Vec<RawInput>>, u64)> {
    (
        0_u8..6,
        input(),
        input(),
        prop::collection::vec(prop::collection::vec(input(), 0..4), 1..4),
        any::<u64>(),
    )
}

fn dag() -> impl Strategy<Value = Dag> {
    (
        prop::collection::vec((op(), any::<bool>()), 1..=MAX_NODES),
        prop::collection::vec(any::<Index>(), 1..=4),
        prop::collection::vec(any::<Index>(), 0..=2),
    )
        .prop_map(|(specs, roots, precomputed)| {
            let nodes: Vec<Spec> = specs
                .into_iter()
                .enumerate()
                .map(|(i, ((kind, a, b, mut lists, lit), named))| {
                    let (a, b) = (resolve(i, a), resolve(i, b));
                    let op = match kind {
                        // Literals only now and then.
                        0 if lit % 3 == 0 || i == 0 => Op::Lit(lit),
                        0 | 1 => Op::Add(
                            lists
                                .swap_remove(0)
                                .into_iter()
                                .map(|x| resolve(i, x))
                                .collect(),
                        ),
                        2 => Op::Mul(a, b),
                        3 => Op::Pair(a, b),
                        4 => Op::Maybe((lit % 3 != 0).then_some(a)),
                        _ => Op::Rows(
                            lists
                                .into_iter()
                                .map(|row| row.into_iter().map(|x| resolve(i, x)).collect())
                                .collect(),
                        ),
                    };
                    Spec { op, named }
                })
                .collect();
            let registered: Vec<usize> = (0..nodes.len())
                .filter(|&i| !matches!(nodes[i].op, Op::Lit(_)))
                .collect();
            let pick = |picks: Vec<Index>| -> Vec<usize> {
                if registered.is_empty() {
                    return Vec::new();
                }
                picks
                    .iter()
                    .map(|p| registered[p.index(registered.len())])
                    .collect()
            };
            Dag {
                roots: pick(roots),
                precomputed: pick(precomputed),
                nodes,
            }
        })
        .prop_filter("a DAG with a registered node", |dag| !dag.roots.is_empty())
}

/// 64 cases, or `PROPTEST_CASES` when set (for longer runs).
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            64
        },
        failure_persistence: None,
        ..default
    }
}

fn check_dag(dag: &Dag) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = dag_registry();
    let reference = dag.reference();
    let (nodes, keys) = build(dag);

    runtime.block_on(async {
        for &i in &dag.precomputed {
            prop_assert_eq!(nodes[i].compute().await.unwrap(), reference[i]);
        }

        // Export every root into one graph.
        let mut graph = KeyedGraph::new();
        let mut root_keys = Vec::new();
        for &root in &dag.roots {
            let key = graph
                .add_delayed(&nodes[root], &registry)
                .map_err(|err| TestCaseError::fail(format!("export: {err}")))?;
            prop_assert_eq!(&key, &keys[root]);
            root_keys.push(key);
        }
        let exported: HashSet<String> = graph.iter().map(|(k, _)| k.to_string()).collect();
        prop_assert_eq!(
            exported,
            dag.expected_keys(&keys),
            "{}",
            graph.to_json_pretty()
        );

        // JSON and back: the same spec.
        let json = graph.to_json();
        let again = KeyedGraph::from_json(&json)
            .map_err(|err| TestCaseError::fail(format!("{err}: {json}")))?;
        prop_assert_eq!(&again, &graph, "{}", json);
        let pretty = KeyedGraph::from_json(&graph.to_json_pretty()).unwrap();
        prop_assert_eq!(&pretty, &graph);
        again
            .validate(&registry)
            .map_err(|err| TestCaseError::fail(format!("{err}: {json}")))?;

        // Run: the spec read back gives the plain values.
        let root_refs: Vec<&str> = root_keys.iter().map(String::as_str).collect();
        let values = tokio::time::timeout(
            Duration::from_secs(10),
            get_many(&again, &registry, &root_refs),
        )
        .await
        .map_err(|_| TestCaseError::fail("get_many hangs"))?
        .map_err(|err| TestCaseError::fail(format!("{err}: {json}")))?;
        let want: Vec<Value> = dag.roots.iter().map(|&r| json!(reference[r])).collect();
        prop_assert_eq!(&values, &want, "{}", json);

        // And so does computing the `Delayed` directly.
        for &root in &dag.roots {
            prop_assert_eq!(nodes[root].compute().await.unwrap(), reference[root]);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(config())]

    /// Random DAGs: export, JSON, back, run; the spec survives and the
    /// results are the plain ones.
    #[test]
    fn random_dags_round_trip_through_json(dag in dag()) {
        check_dag(&dag)?;
    }
}

// ---------------------------------------------------------------------------
// What cannot be exported.

#[delayed(register)]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
fn plain(x: u64) -> u64 {
    x
}

#[delayed(register)]
fn unlisted(x: u64) -> u64 {
    x
}

#[delayed(register)]
fn tally(m: HashMap<String, u64>) -> u64 {
    m.values().sum()
}

#[delayed(register)]
fn counts() -> HashMap<String, u64> {
    [("a".to_string(), 1), ("b".to_string(), 2)].into()
}

fn small_registry() -> Registry {
    delayed::registry![inc, tally, counts]
}

#[test]
fn a_map_closure_is_an_error_naming_the_node() {
    let registry = small_registry();
    let mapped = inc(1).named("one").map(|x| x * 2).named("doubled");
    let err = KeyedGraph::from_delayed(&inc(&mapped).named("top"), &registry).unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(err.key().to_string(), "top");
    assert_eq!(
        err.to_string(),
        "invalid graph: cannot export: argument `x`: node `doubled` is not a call of a \
         registered function, so it has no place in a keyed graph; mark `map` \
         #[delayed(register)], or compute it first"
    );

    // As the root.
    let err = KeyedGraph::from_delayed(&mapped, &registry).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: cannot export: node `doubled` is not a call of a registered \
         function, so it has no place in a keyed graph; mark `map` #[delayed(register)], \
         or compute it first"
    );

    // Deep down.
    let deep = inc(inc(inc(&mapped).named("a")).named("b")).named("c");
    let err = KeyedGraph::from_delayed(&deep, &registry).unwrap_err();
    assert_eq!(err.key().to_string(), "a");
    assert!(
        err.to_string().contains("node `doubled` is not a call"),
        "{err}"
    );
}

#[tokio::test]
async fn a_computed_map_closure_exports_as_a_value() {
    let registry = small_registry();
    let mapped = inc(1).map(|x| x * 2).named("doubled");
    let top = inc(&mapped).named("top");
    mapped.compute().await.unwrap();

    let graph = KeyedGraph::from_delayed(&top, &registry).unwrap();
    assert_eq!(
        graph.to_json(),
        r#"{"doubled":{"value":4},"top":{"fn":"inc","args":[{"ref":"doubled"}]}}"#
    );
    assert_eq!(get(&round_trip(&graph), &registry, "top").await.unwrap(), 5);
}

#[test]
fn an_unregistered_or_unlisted_function_is_an_error() {
    let registry = small_registry();
    let err =
        KeyedGraph::from_delayed(&inc(plain(1).named("p")).named("i"), &registry).unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "invalid graph: cannot export: argument `x`: node `p` is not a call of a registered \
         function, so it has no place in a keyed graph; mark `plain` #[delayed(register)], \
         or compute it first"
    );

    let err =
        KeyedGraph::from_delayed(&inc(unlisted(1).named("u")).named("i"), &registry).unwrap_err();
    assert_eq!(err.key().to_string(), "u");
    assert_eq!(
        err.to_string(),
        "invalid graph: cannot export: function `unlisted` is not in the registry"
    );
}

#[tokio::test]
async fn a_map_argument_exports_only_when_it_has_its_value() {
    let registry = small_registry();
    // Built from unfinished nodes: the map itself is not a registered call.
    let parts: HashMap<String, Delayed<u64>> = [("a".to_string(), inc(1).named("one"))].into();
    let err = KeyedGraph::from_delayed(&tally(parts).named("t"), &registry).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: cannot export: argument `m`: a `HashMap<String, u64>` argument built \
         from a map of unfinished nodes cannot be exported; compute it first, or pass a \
         registered function's output"
    );

    // A registered function's output is a reference.
    let t = tally(counts().named("counts")).named("t");
    let graph = KeyedGraph::from_delayed(&t, &registry).unwrap();
    assert_eq!(
        graph.to_json(),
        r#"{"counts":{"fn":"counts","args":[]},"t":{"fn":"tally","args":[{"ref":"counts"}]}}"#
    );
    assert_eq!(get(&round_trip(&graph), &registry, "t").await.unwrap(), 3);

    // A literal map is a literal.
    let literal: HashMap<String, u64> = [("x".to_string(), 5)].into();
    let graph = KeyedGraph::from_delayed(&tally(literal).named("t"), &registry).unwrap();
    assert_eq!(graph.to_json(), r#"{"t":{"fn":"tally","args":[{"x":5}]}}"#);
}

#[test]
fn two_nodes_with_one_key_are_an_error() {
    let registry = small_registry();
    let err = KeyedGraph::from_delayed(&inc(inc(1).named("k")).named("k"), &registry).unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "invalid graph: cannot export: argument `x`: two different nodes have the key `k`; \
         keys must be unique"
    );

    // Across two exports into one graph.
    let mut graph = KeyedGraph::new();
    graph.add_delayed(&inc(1).named("a"), &registry).unwrap();
    let err = graph
        .add_delayed(&inc(2).named("a"), &registry)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid graph: key `a` is already in the graph with a different task"
    );
}

#[tokio::test]
async fn several_roots_share_their_common_keys() {
    let registry = small_registry();
    let shared = inc(1).named("shared");
    let a = inc(&shared).named("a");
    let b = inc(inc(&shared).named("mid")).named("b");
    let mut graph = KeyedGraph::new();
    assert_eq!(graph.add_delayed(&a, &registry).unwrap(), "a");
    assert_eq!(graph.add_delayed(&b, &registry).unwrap(), "b");
    // The same root twice changes nothing.
    assert_eq!(graph.add_delayed(&a, &registry).unwrap(), "a");
    assert_eq!(graph.len(), 4);
    let again = round_trip(&graph);
    assert_eq!(
        get_many(&again, &registry, &["a", "b", "shared"])
            .await
            .unwrap(),
        [3, 4, 2]
    );
}

// ---------------------------------------------------------------------------
// Finished nodes, policies, pretty JSON, tricky literals.

#[tokio::test]
async fn finished_nodes_export_as_values() {
    let registry = delayed::registry![inc, counted, tally_pair];
    let first = counted("finished-first".to_string(), 1).named("first");
    let unnamed = counted("finished-unnamed".to_string(), 10);
    let second = counted("finished-second".to_string(), &first).named("second");
    let third = inc(&unnamed).named("third");
    let top = tally_pair(&second, &third).named("top");
    second.compute().await.unwrap();
    unnamed.compute().await.unwrap();

    // `second` ran: it is a value key (it is named), and what it needed is
    // gone. `unnamed` ran: it is a literal in `third`.
    let graph = KeyedGraph::from_delayed(&top, &registry).unwrap();
    assert_eq!(
        graph.to_json(),
        r#"{"second":{"value":3},"third":{"fn":"inc","args":[11]},"top":{"fn":"tally_pair","args":[{"ref":"second"},{"ref":"third"}]}}"#
    );
    let again = round_trip(&graph);
    assert_eq!(get(&again, &registry, "top").await.unwrap(), json!([3, 12]));
    assert_eq!(count("finished-first"), 1, "not run again");
    assert_eq!(count("finished-second"), 1, "not run again");
    assert_eq!(count("finished-unnamed"), 1, "not run again");

    // A finished root is a value key.
    top.compute().await.unwrap();
    let graph = KeyedGraph::from_delayed(&top, &registry).unwrap();
    assert_eq!(graph.to_json(), r#"{"top":{"value":[3,12]}}"#);
    assert_eq!(get(&graph, &registry, "top").await.unwrap(), json!([3, 12]));

    // A named literal is a value key too.
    let dir = Delayed::value(41_u64).named("forty-one");
    let graph = KeyedGraph::from_delayed(&inc(&dir).named("answer"), &registry).unwrap();
    assert_eq!(
        graph.to_json(),
        r#"{"answer":{"fn":"inc","args":[{"ref":"forty-one"}]},"forty-one":{"value":41}}"#
    );
    assert_eq!(get(&graph, &registry, "answer").await.unwrap(), 42);
}

#[delayed(register)]
fn counted(tag: String, x: u64) -> u64 {
    bump(&tag);
    x + 1
}

#[delayed(register)]
fn tally_pair(a: u64, b: u64) -> (u64, u64) {
    (a, b)
}

#[delayed(register)]
async fn nap(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    ms
}

/// Times out after 20 ms, from its attribute.
#[delayed(register, timeout = Duration::from_millis(20))]
async fn hasty(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    ms
}

static EXPORT_LIMIT: Limit = Limit::new("export-lane", 1);

#[tokio::test(start_paused = true)]
async fn policies_come_along() {
    let mut registry = delayed::registry![nap, hasty, tally_pair];
    registry.limit(&EXPORT_LIMIT);
    let make = || {
        let slow = nap(1000)
            .named("slow")
            .retry(Retry::attempts(3).fixed(Duration::from_millis(10)))
            .timeout(Duration::from_millis(50))
            .priority(2);
        let a = nap(100).named("a").limit(&EXPORT_LIMIT);
        let b = nap(100).named("b").limit(&EXPORT_LIMIT);
        (
            slow,
            tally_pair(a, b).named("both"),
            hasty(5).named("quick"),
        )
    };

    let (slow, both, quick) = make();
    let mut graph = KeyedGraph::from_delayed(&slow, &registry).unwrap();
    graph.add_delayed(&both, &registry).unwrap();
    graph.add_delayed(&quick, &registry).unwrap();
    assert_eq!(
        graph.to_json_pretty(),
        "{\n  \"a\": {\"fn\": \"nap\", \"args\": [100], \"limit\": \"export-lane\"},\n  \
         \"b\": {\"fn\": \"nap\", \"args\": [100], \"limit\": \"export-lane\"},\n  \
         \"both\": {\"fn\": \"tally_pair\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}]},\n  \
         \"quick\": {\"fn\": \"hasty\", \"args\": [5], \"timeout_ms\": 20},\n  \
         \"slow\": {\"fn\": \"nap\", \"args\": [1000], \"retry\": {\"attempts\": 3, \"fixed_ms\": 10}, \
         \"timeout_ms\": 50, \"priority\": 2}\n}\n"
    );
    let again = round_trip(&graph);
    match again.get("slow") {
        Some(Task::Call(call)) => {
            assert_eq!(call.policy().priority, Some(2));
            assert_eq!(call.policy().timeout, Some(Duration::from_millis(50)));
            assert_eq!(
                call.policy().retry,
                Some(Retry::attempts(3).fixed(Duration::from_millis(10)))
            );
        }
        other => panic!("{other:?}"),
    }

    // The keyed run and the direct run take the same (virtual) time.
    let start = Instant::now();
    let keyed = get(&again, &registry, "slow").await.unwrap_err();
    assert!(keyed.is_timeout());
    assert_eq!(keyed.attempts(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(170));
    let start = Instant::now();
    let direct = slow.compute().await.unwrap_err();
    assert_eq!(direct.to_string(), keyed.to_string());
    assert_eq!(start.elapsed(), Duration::from_millis(170));

    let start = Instant::now();
    assert_eq!(
        get(&again, &registry, "both").await.unwrap(),
        json!([100, 100])
    );
    assert_eq!(start.elapsed(), Duration::from_millis(200), "one at a time");
    let start = Instant::now();
    assert_eq!(both.compute().await.unwrap(), (100, 100));
    assert_eq!(start.elapsed(), Duration::from_millis(200));

    assert_eq!(get(&again, &registry, "quick").await.unwrap(), 5);
}

#[test]
fn pretty_and_compact_json_read_as_the_same_graph() {
    let registry = small_registry();
    let top = tally(counts().named("counts")).named("t");
    let mut graph = KeyedGraph::from_delayed(&top, &registry).unwrap();
    graph.insert(
        "v",
        Task::value(json!({"ref": "t", "list": [1, {"value": 2}]})),
    );
    graph.insert(
        "odd key \"quoted\" \u{e9}",
        Call::new("inc")
            .arg(Arg::value(json!("line\nbreak")))
            .priority(-4),
    );

    let compact = graph.to_json();
    let pretty = graph.to_json_pretty();
    assert!(!compact.contains('\n'));
    assert_eq!(pretty.lines().count(), graph.len() + 2, "{pretty}");
    let from_compact = KeyedGraph::from_json(&compact).unwrap();
    let from_pretty = KeyedGraph::from_json(&pretty).unwrap();
    assert_eq!(from_compact, graph);
    assert_eq!(from_pretty, graph);
    // Both are JSON any parser reads, to the same value.
    let a: Value = serde_json::from_str(&compact).unwrap();
    let b: Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(a, b);
    // An empty graph too.
    assert_eq!(KeyedGraph::new().to_json(), "{}");
    assert_eq!(KeyedGraph::new().to_json_pretty(), "{}\n");
    assert_eq!(
        KeyedGraph::from_json(&KeyedGraph::new().to_json_pretty()).unwrap(),
        KeyedGraph::new()
    );
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Link {
    #[serde(rename = "ref")]
    target: String,
}

#[delayed(register)]
fn echo(v: Value) -> Value {
    v
}

#[delayed(register)]
fn follow(link: Link) -> String {
    link.target
}

#[delayed(register)]
fn links(links: Vec<Link>) -> Vec<String> {
    links.into_iter().map(|l| l.target).collect()
}

#[delayed(register)]
fn labels(m: BTreeMap<String, String>) -> Vec<String> {
    m.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[tokio::test]
async fn literals_that_look_like_references_survive_the_round_trip() {
    let registry = delayed::registry![echo, follow, links, labels];
    let ref_map: BTreeMap<String, String> = [("ref".to_string(), "x".to_string())].into();
    let roots: Vec<(&str, Delayed<Value>)> = vec![
        ("ref", echo(json!({"ref": "x"}))),
        ("value", echo(json!({"value": "x"}))),
        (
            "nested",
            echo(json!([1, {"a": {"ref": "x"}}, {"value": {"ref": "y"}}])),
        ),
        ("ref-number", echo(json!({"ref": 1}))),
        ("string", echo(json!("x"))),
    ];
    let x = Delayed::value(json!("the key x")).named("x");
    let mut graph = KeyedGraph::new();
    for (name, node) in &roots {
        let node = node.clone().named(*name);
        graph.add_delayed(&node, &registry).unwrap();
    }
    graph
        .add_delayed(
            &follow(Link { target: "x".into() }).named("follow"),
            &registry,
        )
        .unwrap();
    let link = Delayed::value(Link { target: "x".into() });
    graph
        .add_delayed(
            &links(vec![link, follow_link("x")]).named("links"),
            &registry,
        )
        .unwrap();
    graph
        .add_delayed(&labels(ref_map).named("labels"), &registry)
        .unwrap();
    // A real reference beside them, to a key named `x`.
    graph
        .add_delayed(&echo(&x).named("real"), &registry)
        .unwrap();

    let json = graph.to_json();
    assert!(json.contains(r#""args":[{"value":{"ref":"x"}}]"#), "{json}");
    assert!(
        json.contains(r#""real":{"fn":"echo","args":[{"ref":"x"}]}"#),
        "{json}"
    );
    let again = round_trip(&graph);

    let keys = [
        "ref",
        "value",
        "nested",
        "ref-number",
        "string",
        "follow",
        "links",
        "labels",
        "real",
    ];
    let got = get_many(&again, &registry, &keys).await.unwrap();
    assert_eq!(
        got,
        [
            json!({"ref": "x"}),
            json!({"value": "x"}),
            json!([1, {"a": {"ref": "x"}}, {"value": {"ref": "y"}}]),
            json!({"ref": 1}),
            json!("x"),
            json!("x"),
            json!(["x", "x"]),
            json!(["ref=x"]),
            json!("the key x"),
        ]
    );
}

/// A literal `Link` node, as a `Delayed`.
fn follow_link(target: &str) -> Delayed<Link> {
    Delayed::value(Link {
        target: target.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Values that must survive the round trip exactly.

#[tokio::test]
async fn a_map_argument_whose_one_entry_is_ref_or_value_keeps_its_reference() {
    // `{"ref": ..}` and `{"value": ..}` are a reference and an escape in
    // JSON; a map argument with one such entry holding a reference must
    // still be written so that it reads back as that map.
    let registry = small_registry();
    for name in ["ref", "value"] {
        let mut graph = KeyedGraph::new();
        graph.insert("n", Task::value(5));
        graph.insert(
            "t",
            Call::new("tally").arg(Arg::map([(name.to_string(), Arg::key("n"))])),
        );
        assert_eq!(get(&graph, &registry, "t").await.unwrap(), 5);

        let json = graph.to_json();
        let again = KeyedGraph::from_json(&json).unwrap();
        assert_eq!(again, graph, "`{name}`: {json} reads back as another graph");
        assert_eq!(get(&again, &registry, "t").await.unwrap(), 5, "{json}");
    }
}

#[delayed(register)]
fn scale(x: f64) -> f64 {
    x * 2.0
}

#[tokio::test]
async fn float_literals_survive_the_round_trip() {
    let registry = delayed::registry![scale];
    // An ordinary float computed in code, which serde_json's default (not
    // `float_roundtrip`) parser reads back one ulp off.
    let x = 1.0 / 3.0 + 0.078;
    let node = scale(x).named("scaled");
    let graph = KeyedGraph::from_delayed(&node, &registry).unwrap();
    assert_eq!(
        graph.to_json(),
        r#"{"scaled":{"fn":"scale","args":[0.41133333333333333]}}"#
    );

    let again = KeyedGraph::from_json(&graph.to_json()).unwrap();
    assert_eq!(again, graph);
    assert_eq!(
        get(&again, &registry, "scaled").await.unwrap(),
        json!(node.compute().await.unwrap())
    );

    // The same float, written by hand, reads as Rust reads it.
    let written = KeyedGraph::from_json(r#"{"x": {"value": 0.41133333333333333}}"#).unwrap();
    assert_eq!(written.get("x"), Some(&Task::value(x)));
}

#[test]
fn long_durations_survive_the_round_trip() {
    let durations = [
        Duration::from_nanos(1),
        Duration::from_micros(1500),
        Duration::from_secs(3600),
        // About 32 years, in whole milliseconds.
        Duration::from_millis(1_000_000_000_003),
        // About 4 years, to the nanosecond.
        Duration::from_nanos(123_456_789_123_456_789),
        // `Duration::MAX`, a common "never".
        Duration::MAX,
    ];
    let mut wrong = Vec::new();
    for duration in durations {
        let mut graph = KeyedGraph::new();
        graph.insert(
            "k",
            Call::new("inc")
                .arg(Arg::value(1))
                .timeout(duration)
                .retry(Retry::attempts(2).max_delay(duration)),
        );
        let json = graph.to_json();
        match KeyedGraph::from_json(&json) {
            Ok(again) if again == graph => {}
            Ok(again) => match again.get("k") {
                Some(Task::Call(call)) => wrong.push(format!(
                    "{duration:?} reads back as {:?}",
                    call.policy().timeout
                )),
                other => wrong.push(format!("{duration:?} reads back as {other:?}")),
            },
            Err(err) => wrong.push(format!("{duration:?} does not read back: {err}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[delayed(register)]
fn or_seven(x: Option<u64>) -> u64 {
    x.unwrap_or(7)
}

#[tokio::test]
async fn named_option_values_run_the_same_after_the_round_trip() {
    let registry = delayed::registry![or_seven];
    let nothing = Delayed::value(None::<u64>).named("nothing");
    let five = Delayed::value(Some(5_u64)).named("five");
    let mut graph = KeyedGraph::new();
    graph
        .add_delayed(&or_seven(&nothing).named("a"), &registry)
        .unwrap();
    graph
        .add_delayed(&or_seven(&five).named("b"), &registry)
        .unwrap();
    assert_eq!(
        graph.to_json(),
        r#"{"a":{"fn":"or_seven","args":[{"ref":"nothing"}]},"b":{"fn":"or_seven","args":[{"ref":"five"}]},"five":{"value":5},"nothing":{"value":null}}"#
    );
    let again = round_trip(&graph);
    let keyed = get_many(&again, &registry, &["a", "b"])
        .await
        .map_err(|err| err.to_string());
    assert_eq!(keyed, Ok(vec![json!(7), json!(5)]));
}
