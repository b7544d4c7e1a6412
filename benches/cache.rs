//! The persistent cache (issue 16): what a rerun with a warm cache saves on
//! a real program, what one hit costs, and what the `cache` attribute costs
//! a compute that has no cache.
//!
//! ```text
//! cargo bench -p delayed-benches --bench cache
//! cargo bench -p delayed-benches --bench cache -- --warm-up-time 1 --measurement-time 3
//! DELAYED_CV_ROUNDS=9 cargo bench -p delayed-benches --bench cache    # default 5
//! ```
//!
//! Three measurements, each printed as a table:
//!
//! 1. **Nested cross-validation, cold and warm.** The cached twin of
//!    `examples/nested_cv.rs` (`nested_cv::cached`: 256 cached nodes, the
//!    data set and its 205 ridge fits included) computed into a fresh, empty
//!    directory store (cold: everything runs and is written), then built
//!    again and computed with a new `Cache` over the same directory (warm:
//!    every cached node is a hit), as a second process would. Beside them,
//!    the plain graph of the example without a cache (its data set made in
//!    the timed part too), first in even rounds and last in odd ones; and
//!    the same cold and warm pair with a memory store. Alternated
//!    `DELAYED_CV_ROUNDS` times; the medians and the medians of the
//!    per-round ratios are printed.
//! 2. **A hit, per node.** A chain of `CHAIN` small `#[delayed(cache)]`
//!    nodes (`u64` in, `u64` out), each iteration built, computed and
//!    dropped: with a warm directory store, with a warm memory store, and
//!    the same chain of plain `#[delayed]` nodes without a cache. A chain's
//!    hits are never read (each key needs only the digest of the hit
//!    before it); the fan-in, `CHAIN` cached leaves into one cached sum,
//!    reads every leaf once for the sum's key, so it prices a hit that is
//!    read. Criterion measures each; a paired run after it alternates
//!    them (each run once untimed before it is timed) and prints µs/node.
//! 3. **The attribute without a cache.** The same chain and fan-in of
//!    `#[delayed(cache)]` nodes computed with no cache, beside the plain
//!    ones, in that paired run: nothing is hashed or written, but a
//!    cached function makes each plain argument a value node of its own
//!    (its key hashes the argument's bytes), cache or not, so the fan-in,
//!    whose leaves are called with numbers, builds one more node per leaf.
//!    `benches/overhead.rs`, which has no cached node, is the check that
//!    plain nodes cost what they cost before the cache.
//!
//! Each iteration runs in a task on a 2-worker multi-thread runtime, as in
//! `benches/overhead.rs`.

use std::future::Future;
use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
use delayed::cache::Cache;
use delayed::{delayed, Delayed, Options};
use tokio::runtime::Runtime;

#[path = "../examples/nested_cv.rs"]
#[allow(dead_code)]
mod nested_cv;

/// Nodes of the chain, and leaves of the fan-in.
const CHAIN: u64 = 1_000;

/// The seed of the nested cross-validation's data set, as in the example.
const SEED: u64 = 7;

#[delayed]
fn step(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

#[delayed]
fn leaf(i: u64) -> u64 {
    i.wrapping_mul(3).wrapping_add(1)
}

#[delayed]
fn sum(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, &b| a.wrapping_add(b))
}

#[delayed(cache)]
fn cached_step(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

#[delayed(cache)]
fn cached_leaf(i: u64) -> u64 {
    i.wrapping_mul(3).wrapping_add(1)
}

#[delayed(cache)]
fn cached_sum(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, &b| a.wrapping_add(b))
}

/// The small graphs of measurements 2 and 3.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `CHAIN` steps, each on the one before.
    Chain,
    /// `CHAIN` leaves of `0..CHAIN` into one sum (a function of their own,
    /// so that no leaf shares a key with a step of the chain).
    FanIn,
}

impl Shape {
    const ALL: [Shape; 2] = [Shape::Chain, Shape::FanIn];

    fn name(self) -> String {
        match self {
            Shape::Chain => format!("chain {CHAIN}"),
            Shape::FanIn => format!("fan-in {CHAIN}"),
        }
    }

    /// The nodes that are cached in the cached form of the graph.
    fn nodes(self) -> u64 {
        match self {
            Shape::Chain => CHAIN,
            Shape::FanIn => CHAIN + 1,
        }
    }
}

/// How a small graph is computed.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Plain `#[delayed]` nodes, no cache.
    Plain,
    /// `#[delayed(cache)]` nodes, no cache given to the compute.
    NoStore,
    /// `#[delayed(cache)]` nodes, a warm memory store.
    Memory,
    /// `#[delayed(cache)]` nodes, a warm directory store.
    Dir,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::Plain, Mode::NoStore, Mode::Memory, Mode::Dir];

    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain, no cache",
            Mode::NoStore => "cache attribute, no cache",
            Mode::Memory => "warm memory store",
            Mode::Dir => "warm directory store",
        }
    }
}

/// The caches of the warm modes, filled once before any timing.
struct Stores {
    memory: Cache,
    dir: Cache,
    _dir: tempfile::TempDir,
}

impl Stores {
    fn new(runtime: &Runtime) -> Stores {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stores = Stores {
            memory: Cache::memory(),
            dir: Cache::dir(dir.path()).expect("a directory store"),
            _dir: dir,
        };
        for shape in Shape::ALL {
            for mode in [Mode::Memory, Mode::Dir] {
                let cache = stores.cache(mode).expect("a warm mode has a cache");
                let before = cache.stats();
                run(runtime, shape, mode, &stores);
                let after = cache.stats();
                assert_eq!(
                    after.misses - before.misses,
                    shape.nodes(),
                    "the first run fills {}",
                    mode.name()
                );
            }
        }
        stores
    }

    fn cache(&self, mode: Mode) -> Option<&Cache> {
        match mode {
            Mode::Plain | Mode::NoStore => None,
            Mode::Memory => Some(&self.memory),
            Mode::Dir => Some(&self.dir),
        }
    }
}

/// Builds `shape` in `mode`, computes it and drops it, in a task.
fn run(runtime: &Runtime, shape: Shape, mode: Mode, stores: &Stores) -> u64 {
    let cached = !matches!(mode, Mode::Plain);
    let options = stores
        .cache(mode)
        .map_or_else(Options::new, |cache| Options::new().cache(cache));
    on_worker(runtime, async move {
        let root = match shape {
            Shape::Chain => {
                let one = |x: Delayed<u64>| if cached { cached_step(x) } else { step(x) };
                let mut node = if cached { cached_step(0) } else { step(0) };
                for _ in 1..CHAIN {
                    node = one(node);
                }
                node
            }
            Shape::FanIn => {
                if cached {
                    cached_sum((0..CHAIN).map(cached_leaf).collect::<Vec<_>>())
                } else {
                    sum((0..CHAIN).map(leaf).collect::<Vec<_>>())
                }
            }
        };
        root.compute_with(options).await.expect("the graph runs")
    })
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `f` inside a task on the runtime and waits until the runtime has
/// no task left (as in `benches/overhead.rs`).
fn on_worker<F: Future<Output = u64> + Send + 'static>(runtime: &Runtime, f: F) -> u64 {
    let value =
        runtime.block_on(async move { tokio::spawn(f).await.expect("bench task panicked") });
    while runtime.metrics().num_alive_tasks() > 0 {
        std::thread::yield_now();
    }
    value
}

fn bench(c: &mut Criterion, runtime: &Runtime, stores: &Stores) {
    for shape in Shape::ALL {
        let mut group = c.benchmark_group(format!("cache {}", shape.name()));
        group.throughput(Throughput::Elements(shape.nodes()));
        group.sample_size(20);
        for mode in Mode::ALL {
            group.bench_function(BenchmarkId::from_parameter(mode.name()), |b| {
                b.iter(|| black_box(run(runtime, shape, mode, stores)))
            });
        }
        group.finish();
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Alternates the modes on each small graph; prints median µs/node.
fn paired_hits(runtime: &Runtime, stores: &Stores, rounds: usize) {
    println!(
        "\npaired run, {rounds} rounds each, each timed after an untimed run, \
         median us/node (build + compute + drop):\n"
    );
    println!(
        "| shape | plain, no cache | cache attribute, no cache | warm memory store \
         | warm directory store | hit - plain, memory | hit - plain, directory \
         | attribute, no cache / plain |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for shape in Shape::ALL {
        let expected = run(runtime, shape, Mode::Plain, stores);
        let mut samples: [Vec<f64>; Mode::ALL.len()] = Default::default();
        for _ in 0..rounds {
            for (k, mode) in Mode::ALL.into_iter().enumerate() {
                black_box(run(runtime, shape, mode, stores));
                let cache = stores.cache(mode);
                let before = cache.map(Cache::stats);
                let start = Instant::now();
                let value = run(runtime, shape, mode, stores);
                let elapsed = start.elapsed();
                assert_eq!(value, expected, "{} on {}", mode.name(), shape.name());
                if let (Some(cache), Some(before)) = (cache, before) {
                    let after = cache.stats();
                    assert_eq!(
                        (after.hits - before.hits, after.misses - before.misses),
                        (shape.nodes(), 0),
                        "every node is a hit"
                    );
                }
                samples[k].push(elapsed.as_secs_f64() * 1e6 / shape.nodes() as f64);
            }
        }
        let [plain, no_store, memory, dir] = samples.map(median);
        println!(
            "| {} | {plain:.2} | {no_store:.2} | {memory:.2} | {dir:.2} | {:.2} | {:.2} | {:.2}x |",
            shape.name(),
            memory - plain,
            dir - plain,
            no_store / plain
        );
    }
}

/// One cold and one warm run of the cached nested cross-validation.
#[derive(Default)]
struct ColdWarm {
    cold: Vec<f64>,
    warm: Vec<f64>,
    /// Warm / cold, per round.
    saved: Vec<f64>,
    /// Cold / the plain graph of the same round.
    cost: Vec<f64>,
    hits: u64,
}

/// Alternates the nested cross-validation without a cache, then cold and
/// warm with a directory store, then cold and warm with a memory store;
/// prints the medians and the medians of the per-round ratios.
fn cold_and_warm(runtime: &Runtime, rounds: usize) {
    use nested_cv::{cached, Dataset, FEATURES, ROWS};

    let expected = nested_cv::bits(&nested_cv::nested_cv(&Dataset::synthetic(
        ROWS, FEATURES, SEED,
    )));
    // The cached graph, built and computed with `cache`; checked.
    let timed = |cache: &Cache| {
        let cache = cache.clone();
        let start = Instant::now();
        let folds = runtime.block_on(async move {
            cached::nested_cv_graph(ROWS, FEATURES, SEED)
                .compute_with(Options::new().cache(&cache))
                .await
                .expect("the graph runs")
        });
        let elapsed = start.elapsed().as_secs_f64();
        assert_eq!(nested_cv::bits(&cached::results(&folds)), expected);
        elapsed
    };
    let uncached = || {
        let start = Instant::now();
        let folds = runtime.block_on(async {
            nested_cv::nested_cv_graph(Dataset::synthetic(ROWS, FEATURES, SEED))
                .compute()
                .await
                .expect("the graph runs")
        });
        assert_eq!(nested_cv::bits(&folds), expected);
        start.elapsed().as_secs_f64()
    };
    let (mut plain, mut dir, mut memory) = (vec![], ColdWarm::default(), ColdWarm::default());
    let mut per_round = Vec::new();
    for round in 0..rounds {
        // The plain graph first in even rounds, last in odd ones.
        let early = (round % 2 == 0).then(uncached);

        let folder = tempfile::tempdir().expect("a temporary directory");
        let first = Cache::dir(folder.path()).expect("a directory store");
        let dir_cold = timed(&first);
        assert_eq!(first.stats().hits, 0, "the cold run finds nothing");
        // A new cache over the same directory, as a second process opens it.
        let second = Cache::dir(folder.path()).expect("a directory store");
        let dir_warm = timed(&second);

        let cache = Cache::memory();
        let memory_cold = timed(&cache);
        let before = cache.stats();
        let memory_warm = timed(&cache);
        let after = cache.stats();

        let uncached = early.unwrap_or_else(uncached);
        per_round.push(format!(
            "| {} | {uncached:.2} s | {dir_cold:.2} s | {:.1} ms | {memory_cold:.2} s | {:.1} ms |",
            round + 1,
            dir_warm * 1e3,
            memory_warm * 1e3
        ));
        plain.push(uncached);
        let stats = second.stats();
        dir.push(dir_cold, dir_warm, uncached, stats.hits, stats.misses);
        memory.push(
            memory_cold,
            memory_warm,
            uncached,
            after.hits - before.hits,
            after.misses - before.misses,
        );
    }
    println!(
        "\nnested cross-validation ({ROWS} x {FEATURES}, 205 ridge fits), \
         medians of {rounds} alternated rounds; the plain graph without a cache: {:.2} s\n",
        median(plain)
    );
    println!("| store | cold | warm | warm / cold (target <= 5 %) | cold / plain graph |");
    println!("|---|---|---|---|---|");
    for (name, runs) in [("directory", dir), ("memory", memory)] {
        println!("{}", runs.row(name));
    }
    println!(
        "\n| round | plain graph | directory, cold | directory, warm | memory, cold | memory, warm |"
    );
    println!("|---|---|---|---|---|---|");
    for row in per_round {
        println!("{row}");
    }
}

impl ColdWarm {
    fn push(&mut self, cold: f64, warm: f64, plain: f64, hits: u64, misses: u64) {
        assert_eq!(misses, 0, "the warm run runs nothing cached");
        self.hits = hits;
        self.cold.push(cold);
        self.warm.push(warm);
        self.saved.push(warm / cold);
        self.cost.push(cold / plain);
    }

    fn row(self, store: &str) -> String {
        let (lowest, highest) = self
            .saved
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        format!(
            "| {store} | {:.2} s | {:.1} ms ({} hits) | **{:.2} %** (per round {:.2} % to {:.2} %) | {:.2}x |",
            median(self.cold),
            median(self.warm) * 1e3,
            self.hits,
            median(self.saved) * 100.0,
            lowest * 100.0,
            highest * 100.0,
            median(self.cost),
        )
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench -- --list` asks benches for their names.
        return;
    }
    let rounds = std::env::var("DELAYED_CV_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let runtime = runtime();
    cold_and_warm(&runtime, rounds);
    let stores = Stores::new(&runtime);
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &runtime, &stores);
    criterion.final_summary();
    paired_hits(&runtime, &stores, 21);
}
