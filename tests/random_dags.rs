//! Property tests on random task graphs: random DAGs of sync, async,
//! blocking, pure and combinator nodes, computed by several concurrent
//! computes at once, are checked against a plain sequential evaluation.
//!
//! - Every node an output needs runs exactly once, every other node never
//!   runs (laziness), and every compute returns the sequential values.
//! - Computing again (on another runtime, with more outputs) reruns nothing
//!   that already ran and returns the same values.
//! - With one failing node, exactly the outputs that depend on it fail with
//!   its key, the others succeed, and nothing that depends on it runs.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use delayed::{delayed, Delayed, Error, Key};
use futures::future::join_all;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

/// Most nodes in a random graph.
const MAX_NODES: usize = 80;

/// Most inputs of one node (repeats allowed).
const MAX_DEPS: usize = 4;

/// Most outputs computed together (repeats allowed).
const MAX_OUTPUTS: usize = 6;

/// A compute that takes longer than this is taken to hang.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the failing node reports.
const INJECTED: &str = "injected failure at node";

// ---------------------------------------------------------------------------
// The graph description and its sequential evaluation.

/// How a node is made and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `#[delayed] fn`, taking its inputs as `Vec<u64>`.
    Sync,
    /// `#[delayed] fn` returning `Result`.
    TrySync,
    /// `#[delayed] fn` borrowing `&Runs` and `&[u64]`.
    SyncRef,
    /// `#[delayed] async fn` that yields or sleeps.
    Async,
    /// `#[delayed] async fn` returning `Result`.
    TryAsync,
    /// `#[delayed] async fn` borrowing `&[u64]`.
    AsyncRef,
    /// `#[delayed(blocking)] fn`.
    Blocking,
    /// `#[delayed(blocking)] fn` returning `Result`.
    TryBlocking,
    /// `#[delayed(pure)] fn`, called twice: both calls must be one node.
    Pure,
    /// `delayed::join(inputs).then(async closure)`.
    Then,
    /// `delayed::join(inputs).map_blocking(closure)`.
    MapBlocking,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::Sync,
        Kind::TrySync,
        Kind::SyncRef,
        Kind::Async,
        Kind::TryAsync,
        Kind::AsyncRef,
        Kind::Blocking,
        Kind::TryBlocking,
        Kind::Pure,
        Kind::Then,
        Kind::MapBlocking,
    ];

    /// Fails by returning `Err`; the other kinds fail by panicking.
    fn fallible(self) -> bool {
        matches!(self, Kind::TrySync | Kind::TryAsync | Kind::TryBlocking)
    }
}

#[derive(Clone, Debug)]
struct Spec {
    kind: Kind,
    seed: u64,
    /// For async nodes: how many times to yield, or to sleep 1 ms (15).
    pause: u8,
    /// Indices of earlier nodes, in argument order; may repeat.
    deps: Vec<usize>,
}

#[derive(Clone, Debug)]
struct Dag {
    nodes: Vec<Spec>,
}

impl Dag {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The sequential reference: every node's value, inputs first.
    fn reference(&self) -> Vec<u64> {
        let mut values: Vec<u64> = Vec::with_capacity(self.len());
        for (i, spec) in self.nodes.iter().enumerate() {
            let inputs: Vec<u64> = spec.deps.iter().map(|&d| values[d]).collect();
            values.push(mix(i, spec.seed, &inputs));
        }
        values
    }

    /// The nodes `roots` need: the roots and everything upstream of them.
    fn needed(&self, roots: &[usize]) -> Vec<bool> {
        let mut needed = vec![false; self.len()];
        for &root in roots {
            needed[root] = true;
        }
        for i in (0..self.len()).rev() {
            if needed[i] {
                for &d in &self.nodes[i].deps {
                    needed[d] = true;
                }
            }
        }
        needed
    }

    /// The nodes that depend on `node`, itself included.
    fn downstream(&self, node: usize) -> Vec<bool> {
        let mut down = vec![false; self.len()];
        down[node] = true;
        for i in node + 1..self.len() {
            down[i] = self.nodes[i].deps.iter().any(|&d| down[d]);
        }
        down
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A node's value: a hash of its index, its seed and its inputs in order.
fn mix(i: usize, seed: u64, inputs: &[u64]) -> u64 {
    let mut h = splitmix(seed.wrapping_mul(0x0100_0000_01B3) ^ i as u64);
    for &x in inputs {
        h = splitmix(h ^ x).wrapping_add(h.rotate_left(17));
    }
    h
}

// ---------------------------------------------------------------------------
// Run counters, shared by the nodes of one case.

/// The error the failing node returns.
#[derive(Debug)]
struct Injected(usize);

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{INJECTED} {}", self.0)
    }
}

impl std::error::Error for Injected {}

/// Per-node counters of starts and successful finishes, and the node that
/// is told to fail. Hashes by a per-case id, so that pure nodes of
/// different cases are never shared.
#[derive(Clone)]
struct Runs(Arc<RunsInner>);

struct RunsInner {
    case: u64,
    fail: Option<usize>,
    starts: Vec<AtomicUsize>,
    finishes: Vec<AtomicUsize>,
}

impl Hash for Runs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.case.hash(state);
    }
}

impl Runs {
    fn new(nodes: usize, fail: Option<usize>) -> Runs {
        static NEXT_CASE: AtomicU64 = AtomicU64::new(0);
        Runs(Arc::new(RunsInner {
            case: NEXT_CASE.fetch_add(1, Ordering::Relaxed),
            fail,
            starts: (0..nodes).map(|_| AtomicUsize::new(0)).collect(),
            finishes: (0..nodes).map(|_| AtomicUsize::new(0)).collect(),
        }))
    }

    fn start(&self, i: usize) {
        self.0.starts[i].fetch_add(1, Ordering::SeqCst);
    }

    /// The node's value, or its injected failure.
    fn finish(&self, i: usize, seed: u64, inputs: &[u64]) -> Result<u64, Injected> {
        if self.0.fail == Some(i) {
            return Err(Injected(i));
        }
        let value = mix(i, seed, inputs);
        self.0.finishes[i].fetch_add(1, Ordering::SeqCst);
        Ok(value)
    }

    /// As `finish`, for infallible nodes: the injected failure panics.
    fn finish_or_panic(&self, i: usize, seed: u64, inputs: &[u64]) -> u64 {
        match self.finish(i, seed, inputs) {
            Ok(value) => value,
            Err(err) => panic!("{err}"),
        }
    }

    fn starts(&self) -> Vec<usize> {
        self.0
            .starts
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }

    fn finishes(&self) -> Vec<usize> {
        self.0
            .finishes
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }
}

/// Keeps the injected panics out of the test output; other panics print.
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

async fn pause(pause: u8) {
    if pause == 15 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    } else {
        for _ in 0..pause % 4 {
            tokio::task::yield_now().await;
        }
    }
}

// ---------------------------------------------------------------------------
// The node functions.

#[delayed]
fn sync_node(runs: Runs, i: usize, seed: u64, inputs: Vec<u64>) -> u64 {
    runs.start(i);
    runs.finish_or_panic(i, seed, &inputs)
}

#[delayed]
fn try_sync_node(runs: Runs, i: usize, seed: u64, inputs: Vec<u64>) -> Result<u64, Injected> {
    runs.start(i);
    runs.finish(i, seed, &inputs)
}

#[delayed]
fn sync_ref_node(runs: &Runs, i: usize, seed: u64, inputs: &[u64]) -> u64 {
    runs.start(i);
    runs.finish_or_panic(i, seed, inputs)
}

#[delayed]
async fn async_node(runs: Runs, i: usize, seed: u64, wait: u8, inputs: Vec<u64>) -> u64 {
    runs.start(i);
    pause(wait).await;
    runs.finish_or_panic(i, seed, &inputs)
}

#[delayed]
async fn try_async_node(
    runs: Runs,
    i: usize,
    seed: u64,
    wait: u8,
    inputs: Vec<u64>,
) -> Result<u64, Injected> {
    runs.start(i);
    pause(wait).await;
    runs.finish(i, seed, &inputs)
}

#[delayed]
async fn async_ref_node(runs: Runs, i: usize, seed: u64, wait: u8, inputs: &[u64]) -> u64 {
    runs.start(i);
    pause(wait).await;
    runs.finish_or_panic(i, seed, inputs)
}

#[delayed(blocking)]
fn blocking_node(runs: Runs, i: usize, seed: u64, wait: u8, inputs: Vec<u64>) -> u64 {
    runs.start(i);
    if wait % 2 == 1 {
        std::thread::yield_now();
    }
    runs.finish_or_panic(i, seed, &inputs)
}

#[delayed(blocking)]
fn try_blocking_node(
    runs: Runs,
    i: usize,
    seed: u64,
    wait: u8,
    inputs: Vec<u64>,
) -> Result<u64, Injected> {
    runs.start(i);
    if wait % 2 == 1 {
        std::thread::yield_now();
    }
    runs.finish(i, seed, &inputs)
}

#[delayed(pure)]
fn pure_node(runs: Runs, i: usize, seed: u64, inputs: Vec<u64>) -> u64 {
    runs.start(i);
    runs.finish_or_panic(i, seed, &inputs)
}

// ---------------------------------------------------------------------------
// Building the graph.

struct Graph {
    nodes: Vec<Delayed<u64>>,
    /// For pure nodes, the handle from the second, equal call.
    twins: Vec<Option<Delayed<u64>>>,
    keys: Vec<Key>,
}

impl Graph {
    fn build(dag: &Dag, runs: &Runs) -> Graph {
        let mut graph = Graph {
            nodes: Vec::with_capacity(dag.len()),
            twins: Vec::with_capacity(dag.len()),
            keys: Vec::with_capacity(dag.len()),
        };
        for (i, spec) in dag.nodes.iter().enumerate() {
            let inputs: Vec<Delayed<u64>> = spec
                .deps
                .iter()
                .enumerate()
                .map(|(k, &d)| graph.handle(d, i + k))
                .collect();
            let (runs, seed, wait) = (runs.clone(), spec.seed, spec.pause);
            let mut twin = None;
            let node = match spec.kind {
                Kind::Sync => sync_node(runs, i, seed, inputs),
                Kind::TrySync => try_sync_node(runs, i, seed, inputs),
                Kind::SyncRef => sync_ref_node(runs, i, seed, inputs),
                Kind::Async => async_node(runs, i, seed, wait, inputs),
                Kind::TryAsync => try_async_node(runs, i, seed, wait, inputs),
                Kind::AsyncRef => async_ref_node(runs, i, seed, wait, &inputs),
                Kind::Blocking => blocking_node(runs, i, seed, wait, inputs),
                Kind::TryBlocking => try_blocking_node(runs, i, seed, wait, inputs),
                Kind::Pure => {
                    let node = pure_node(runs.clone(), i, seed, inputs.clone());
                    let again = pure_node(runs, i, seed, inputs);
                    assert_eq!(node.key(), again.key(), "equal pure calls share a key");
                    twin = Some(again);
                    node
                }
                Kind::Then => delayed::join(inputs).then(move |values: Vec<u64>| {
                    let runs = runs.clone();
                    async move {
                        runs.start(i);
                        pause(wait).await;
                        runs.finish_or_panic(i, seed, &values)
                    }
                }),
                Kind::MapBlocking => delayed::join(inputs).map_blocking(move |values: Vec<u64>| {
                    runs.start(i);
                    runs.finish_or_panic(i, seed, &values)
                }),
            };
            graph.keys.push(node.key());
            graph.nodes.push(node);
            graph.twins.push(twin);
        }
        graph
    }

    /// A handle to node `i`; for pure nodes, one of the two equal calls.
    fn handle(&self, i: usize, salt: usize) -> Delayed<u64> {
        match &self.twins[i] {
            Some(twin) if salt % 2 == 1 => twin.clone(),
            _ => self.nodes[i].clone(),
        }
    }

    fn outputs(&self, outputs: &[usize]) -> Vec<Delayed<u64>> {
        outputs
            .iter()
            .enumerate()
            .map(|(k, &o)| self.handle(o, k))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Computing: several computes at once over overlapping outputs.

/// Where the computes run.
#[derive(Clone, Copy, Debug)]
enum Flavor {
    /// A current-thread tokio runtime.
    CurrentThread,
    /// A multi-thread tokio runtime with 2 workers.
    MultiThread,
    /// No runtime: `compute_blocking` from several threads, on the
    /// library's shared fallback runtime.
    Fallback,
}

/// What each of the concurrent computes returned.
struct Outcomes {
    /// `node.compute()` for each output, joined in one task.
    each: Vec<Result<u64, Error>>,
    /// `node.compute()` for each output, each in its own task or thread.
    spawned: Vec<Result<u64, Error>>,
    /// `delayed::compute(outputs)`.
    all: Result<Vec<u64>, Error>,
    /// `delayed::compute((first, last))`.
    pair: Result<(u64, u64), Error>,
}

/// Computes `outs` several times concurrently, then shuts the runtime down
/// (which waits for blocking bodies still running).
fn compute_all(flavor: Flavor, outs: &[Delayed<u64>]) -> Result<Outcomes, TestCaseError> {
    let (first, last) = (&outs[0], &outs[outs.len() - 1]);
    let runtime = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        Flavor::Fallback => {
            return Ok(std::thread::scope(|scope| {
                let threads: Vec<_> = outs
                    .iter()
                    .map(|node| scope.spawn(move || node.compute_blocking()))
                    .collect();
                let all = delayed::join(outs.to_vec()).compute_blocking();
                let pair = delayed::join((first, last)).compute_blocking();
                let each = outs.iter().map(Delayed::compute_blocking).collect();
                let spawned = threads
                    .into_iter()
                    .map(|thread| thread.join().expect("a compute thread panicked"))
                    .collect();
                Outcomes {
                    each,
                    spawned,
                    all,
                    pair,
                }
            }))
        }
    };
    let outcomes = runtime.block_on(async {
        let tasks: Vec<_> = outs
            .iter()
            .map(|node| tokio::spawn(node.compute()))
            .collect();
        let work = async {
            let (each, all, pair) = tokio::join!(
                join_all(outs.iter().map(Delayed::compute)),
                delayed::compute(outs.to_vec()),
                delayed::compute((first, last)),
            );
            let mut spawned = Vec::with_capacity(tasks.len());
            for task in tasks {
                spawned.push(task.await.expect("a compute task panicked"));
            }
            Outcomes {
                each,
                spawned,
                all,
                pair,
            }
        };
        tokio::time::timeout(TIMEOUT, work).await
    });
    drop(runtime);
    outcomes.map_err(|_| TestCaseError::fail(format!("{flavor:?}: the computes hang")))
}

/// The failure every output that depends on it must report.
#[derive(Clone)]
struct Failure {
    node: usize,
    key: Key,
    fallible: bool,
}

/// Checks one compute's result: `want` is the value, or the failure.
fn check<T: PartialEq + fmt::Debug>(
    what: &str,
    got: &Result<T, Error>,
    want: Result<&T, &Failure>,
) -> Result<(), TestCaseError> {
    match (got, want) {
        (Ok(got), Ok(want)) => prop_assert_eq!(got, want, "{}: wrong value", what),
        (Err(err), Ok(want)) => {
            return Err(TestCaseError::fail(format!(
                "{what}: expected {want:?}, got {err:?}"
            )))
        }
        (Ok(got), Err(failure)) => {
            return Err(TestCaseError::fail(format!(
                "{what}: expected the failure of node {} ({}), got {got:?}",
                failure.node, failure.key
            )))
        }
        (Err(err), Err(failure)) => {
            prop_assert_eq!(err.key(), &failure.key, "{}: wrong key in {:?}", what, err);
            let message = format!("{INJECTED} {}", failure.node);
            if failure.fallible {
                prop_assert!(err.is_failed(), "{}: not a returned Err: {:?}", what, err);
                let source = std::error::Error::source(err).map(ToString::to_string);
                prop_assert_eq!(source, Some(message), "{}: wrong source", what);
            } else {
                prop_assert!(err.is_panic(), "{}: not a panic: {:?}", what, err);
                prop_assert_eq!(err.panic_message(), Some(message.as_str()));
            }
        }
    }
    Ok(())
}

/// Checks every compute of `outputs` against `want(output node)`.
fn check_outcomes(
    outcomes: &Outcomes,
    outputs: &[usize],
    want: impl Fn(usize) -> Result<u64, Failure>,
) -> Result<(), TestCaseError> {
    let wants: Vec<Result<u64, Failure>> = outputs.iter().map(|&o| want(o)).collect();
    for (k, (&o, want)) in outputs.iter().zip(&wants).enumerate() {
        check(
            &format!("compute of output {k} (node {o})"),
            &outcomes.each[k],
            want.as_ref(),
        )?;
        check(
            &format!("spawned compute of output {k} (node {o})"),
            &outcomes.spawned[k],
            want.as_ref(),
        )?;
    }
    // A joined compute fails with the (single) failure if any part fails.
    let joined = |parts: &[&Result<u64, Failure>]| -> Result<Vec<u64>, Failure> {
        parts.iter().map(|&part| part.clone()).collect()
    };
    let all = joined(&wants.iter().collect::<Vec<_>>());
    check("compute(outputs)", &outcomes.all, all.as_ref())?;
    let pair = joined(&[&wants[0], &wants[wants.len() - 1]]).map(|values| (values[0], values[1]));
    check("compute((first, last))", &outcomes.pair, pair.as_ref())?;
    Ok(())
}

/// Checks that exactly the `needed` nodes ran, each once, to the end.
fn check_ran_once(runs: &Runs, needed: &[bool], when: &str) -> Result<(), TestCaseError> {
    let (starts, finishes) = (runs.starts(), runs.finishes());
    for (i, &needed) in needed.iter().enumerate() {
        let want = usize::from(needed);
        prop_assert_eq!(
            (starts[i], finishes[i]),
            (want, want),
            "{}: node {} (needed: {}) started/finished the wrong number of times",
            when,
            i,
            needed
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Strategies.

fn spec() -> impl Strategy<Value = (Kind, u64, u8, Vec<Index>)> {
    (
        prop::sample::select(Kind::ALL.to_vec()),
        0_u64..1000,
        0_u8..16,
        prop::collection::vec(any::<Index>(), 0..=MAX_DEPS),
    )
}

fn dag() -> impl Strategy<Value = Dag> {
    prop::collection::vec(spec(), 1..=MAX_NODES).prop_map(|specs| Dag {
        nodes: specs
            .into_iter()
            .enumerate()
            .map(|(i, (kind, seed, pause, deps))| Spec {
                kind,
                seed,
                pause,
                deps: if i == 0 {
                    Vec::new()
                } else {
                    deps.iter().map(|d| d.index(i)).collect()
                },
            })
            .collect(),
    })
}

/// Output picks, resolved against the graph's size with [`pick`].
fn outputs() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 1..=MAX_OUTPUTS)
}

fn pick(dag: &Dag, picks: &[Index]) -> Vec<usize> {
    picks.iter().map(|p| p.index(dag.len())).collect()
}

fn flavor() -> impl Strategy<Value = Flavor> {
    prop_oneof![
        2 => Just(Flavor::MultiThread),
        1 => Just(Flavor::CurrentThread),
        1 => Just(Flavor::Fallback),
    ]
}

fn runtime_flavor() -> impl Strategy<Value = Flavor> {
    prop_oneof![Just(Flavor::MultiThread), Just(Flavor::CurrentThread)]
}

/// 64 cases per property, or `PROPTEST_CASES` when set (for soak runs).
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            64
        },
        // Do not write regression files into the repository.
        failure_persistence: None,
        ..default
    }
}

// ---------------------------------------------------------------------------
// The properties.

proptest! {
    #![proptest_config(config())]

    /// Several concurrent computes over overlapping outputs: each needed
    /// node runs exactly once, unneeded nodes never run, and every compute
    /// returns the sequential values. With `keep` false, the test holds only
    /// the outputs, so finished inputs are moved, not cloned, into their
    /// last dependent.
    #[test]
    fn concurrent_computes_run_each_needed_node_exactly_once(
        dag in dag(),
        picks in outputs(),
        flavor in flavor(),
        keep in any::<bool>(),
    ) {
        let outputs = pick(&dag, &picks);
        let reference = dag.reference();
        let runs = Runs::new(dag.len(), None);
        let graph = Graph::build(&dag, &runs);
        let outs = graph.outputs(&outputs);
        if !keep {
            drop(graph);
        }
        prop_assert_eq!(runs.starts().iter().sum::<usize>(), 0, "building ran something");

        let outcomes = compute_all(flavor, &outs)?;
        check_outcomes(&outcomes, &outputs, |o| Ok(reference[o]))?;
        check_ran_once(&runs, &dag.needed(&outputs), "after the computes")?;
    }

    /// Results are memoized: computing again, on another runtime and with
    /// more outputs, runs only the nodes that never ran, and the outputs
    /// computed before return the same values.
    #[test]
    fn computing_again_reruns_nothing(
        dag in dag(),
        first_picks in outputs(),
        second_picks in outputs(),
        first_flavor in flavor(),
        second_flavor in flavor(),
    ) {
        let first = pick(&dag, &first_picks);
        let reference = dag.reference();
        let runs = Runs::new(dag.len(), None);
        let graph = Graph::build(&dag, &runs);

        let outcomes = compute_all(first_flavor, &graph.outputs(&first))?;
        check_outcomes(&outcomes, &first, |o| Ok(reference[o]))?;
        check_ran_once(&runs, &dag.needed(&first), "after the first computes")?;

        // The first outputs again, then new ones, in one list.
        let both: Vec<usize> = first.iter().copied().chain(pick(&dag, &second_picks)).collect();
        let outcomes = compute_all(second_flavor, &graph.outputs(&both))?;
        check_outcomes(&outcomes, &both, |o| Ok(reference[o]))?;
        check_ran_once(&runs, &dag.needed(&both), "after the second computes")?;

        // A third time on the same outputs: nothing runs at all.
        let before = runs.starts();
        let outcomes = compute_all(first_flavor, &graph.outputs(&both))?;
        check_outcomes(&outcomes, &both, |o| Ok(reference[o]))?;
        prop_assert_eq!(runs.starts(), before, "the third computes ran something");
    }

    /// One node fails (returns `Err` or panics): the outputs that depend on
    /// it fail with its key, the others succeed, nothing downstream of it
    /// runs, and computing again returns the stored failure and runs nothing.
    #[test]
    fn one_failure_fails_exactly_its_dependents(
        dag in dag(),
        picks in outputs(),
        fail_pick in any::<Index>(),
        flavor in runtime_flavor(),
        keep in any::<bool>(),
    ) {
        quiet_injected_panics();
        let outputs = pick(&dag, &picks);
        let needed = dag.needed(&outputs);
        // The failing node is one the outputs need.
        let candidates: Vec<usize> = (0..dag.len()).filter(|&i| needed[i]).collect();
        let failed = candidates[fail_pick.index(candidates.len())];
        let downstream = dag.downstream(failed);
        let reference = dag.reference();

        let runs = Runs::new(dag.len(), Some(failed));
        let graph = Graph::build(&dag, &runs);
        let outs = graph.outputs(&outputs);
        let keys = graph.keys.clone();
        let graph = keep.then_some(graph);
        let failure = Failure {
            node: failed,
            key: keys[failed].clone(),
            fallible: dag.nodes[failed].kind.fallible(),
        };
        let want = |o: usize| {
            if downstream[o] {
                Err(failure.clone())
            } else {
                Ok(reference[o])
            }
        };

        let outcomes = compute_all(flavor, &outs)?;
        check_outcomes(&outcomes, &outputs, want)?;

        let succeeded: Vec<usize> = outputs.iter().copied().filter(|&o| !downstream[o]).collect();
        let must_run = dag.needed(&succeeded);
        let (starts, finishes) = (runs.starts(), runs.finishes());
        for i in 0..dag.len() {
            let what = format!(
                "node {i} ({:?}, key {}; failed node {failed}, key {})",
                dag.nodes[i].kind, keys[i], keys[failed]
            );
            if i == failed {
                prop_assert_eq!((starts[i], finishes[i]), (1, 0), "{}: the failed node", what);
            } else if downstream[i] {
                prop_assert_eq!(starts[i], 0, "{}: depends on the failed node but ran", what);
            } else if must_run[i] {
                prop_assert_eq!(
                    (starts[i], finishes[i]),
                    (1, 1),
                    "{}: needed by an output that succeeded",
                    what
                );
            } else if needed[i] {
                // Needed only by failed outputs: it may have been cancelled.
                prop_assert!(starts[i] <= 1, "{}: started {} times", what, starts[i]);
                prop_assert!(finishes[i] <= starts[i], "{}: finished more than started", what);
            } else {
                prop_assert_eq!(starts[i], 0, "{}: not needed but ran", what);
            }
        }

        // Failures and values are stored: nothing runs again.
        let outcomes = compute_all(flavor, &outs)?;
        check_outcomes(&outcomes, &outputs, want)?;
        prop_assert_eq!(runs.starts(), starts, "computing again ran something");
        drop(graph);
    }
}
