//! Parallel speed-up on small CPU-bound nodes: a lattice 1,000 wide and 20
//! deep of sync nodes doing about 1 us of real work each, on a tokio
//! multi-thread runtime with 1 worker and with every core
//! (`std::thread::available_parallelism`), for `delayed` and for the
//! hand-written baseline of `overhead.rs`, in the same run.
//!
//! ```text
//! cargo bench -p delayed-benches --bench parallel
//! cargo bench -p delayed-benches --bench parallel -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Each node of a row mixes the three nodes above it (`i - 1`, `i`,
//! `i + 1`, wrapping) and one node sums the last row. The work is a loop of
//! integer mixing whose length is calibrated at start to take about 1 us.
//! Each iteration builds the graph, computes it and drops it inside a task
//! on the runtime. `delayed` runs it as `#[delayed] fn` nodes (run inline
//! by the runner that made them ready) and, for comparison, as
//! `#[delayed] async fn` nodes (a tokio task each); the baseline spawns one
//! tokio task per node. Beside them, the same work as a plain loop on one
//! thread, with no graph: the floor for one core; and as many copies of
//! that loop as there are cores, at once on threads of their own, which
//! tells how many cores the machine gives at the time (on a shared machine,
//! often fewer than it has): the speed-up no graph can beat.
//!
//! `DELAYED_WORK_NS` sets the work per node in nanoseconds (default 1000;
//! 0 leaves only the graph's own cost).
//!
//! Criterion measures each implementation on each runtime; at the end a
//! paired run, alternating them, prints the median time of each and the
//! speed-up, 1 worker time / all workers time.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use delayed::{delayed, Delayed};
use tokio::runtime::Runtime;

mod baseline;

const WIDTH: usize = 1_000;
const DEPTH: usize = 20;
const NODES: u64 = (WIDTH * DEPTH + 1) as u64;

/// Rounds of the paired run.
const ROUNDS: usize = 11;

/// Loop iterations of one node's work: set by `calibrate`.
static ITERS: AtomicU32 = AtomicU32::new(0);

/// About 1 us of integer mixing, seeded by `x`.
fn work(x: u64) -> u64 {
    let mut x = x;
    for _ in 0..black_box(ITERS.load(Relaxed)) {
        x = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    x
}

/// Sets `ITERS` so that one `work` takes about `ns` nanoseconds here.
fn calibrate(ns: f64) -> u32 {
    const PROBE: u32 = 100_000;
    ITERS.store(PROBE, Relaxed);
    // The seeds are hidden from the optimizer: from 0 the loop is a fixed
    // point it could skip.
    let probes = (1..=21).map(|i| time(|| work(black_box(i)))).collect();
    let per_probe = median(probes);
    let iters = (PROBE as f64 * ns / per_probe.as_nanos() as f64).round() as u32;
    ITERS.store(iters, Relaxed);
    iters
}

/// A first-row node.
fn seed(i: u64) -> u64 {
    work(i + 1)
}

/// A node below the first row, on the three above it.
fn mix(a: u64, b: u64, c: u64) -> u64 {
    work(a ^ b.rotate_left(21) ^ c.rotate_left(42))
}

fn sum(xs: &[u64]) -> u64 {
    xs.iter().fold(0, |a, &b| a.wrapping_add(b))
}

#[delayed]
fn seed_node(i: u64) -> u64 {
    seed(i)
}

#[delayed]
fn mix_node(a: u64, b: u64, c: u64) -> u64 {
    mix(a, b, c)
}

#[delayed]
async fn seed_task(i: u64) -> u64 {
    seed(i)
}

#[delayed]
async fn mix_task(a: u64, b: u64, c: u64) -> u64 {
    mix(a, b, c)
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    sum(&xs)
}

/// The three nodes above node `i` of a row.
fn above<T>(row: &[T], i: usize) -> [&T; 3] {
    [
        &row[(i + WIDTH - 1) % WIDTH],
        &row[i],
        &row[(i + 1) % WIDTH],
    ]
}

/// The implementations measured.
#[derive(Clone, Copy, Debug)]
enum Impl {
    /// `#[delayed] fn` nodes.
    Delayed,
    /// `#[delayed] async fn` nodes.
    DelayedAsync,
    /// A `tokio::spawn`ed task per node.
    Baseline,
}

impl Impl {
    const ALL: [Impl; 3] = [Impl::Delayed, Impl::DelayedAsync, Impl::Baseline];

    fn name(self) -> &'static str {
        match self {
            Impl::Delayed => "delayed, sync fn",
            Impl::DelayedAsync => "delayed, async fn",
            Impl::Baseline => "baseline",
        }
    }

    /// Builds, computes and drops the lattice.
    async fn run(self) -> u64 {
        match self {
            Impl::Delayed => lattice(seed_node, |a, b, c| mix_node(a, b, c))
                .await
                .expect("the graph runs"),
            Impl::DelayedAsync => lattice(seed_task, |a, b, c| mix_task(a, b, c))
                .await
                .expect("the graph runs"),
            Impl::Baseline => {
                let mut row: Vec<baseline::Node> = (0..WIDTH as u64)
                    .map(|i| baseline::node(vec![], move |_| seed(i)))
                    .collect();
                for _ in 1..DEPTH {
                    row = (0..WIDTH)
                        .map(|i| {
                            let deps = above(&row, i).map(Clone::clone).to_vec();
                            baseline::node(deps, |v| mix(v[0], v[1], v[2]))
                        })
                        .collect();
                }
                baseline::node(row, sum).await
            }
        }
    }
}

/// The lattice in `delayed`, from a first-row node and a node below.
fn lattice(
    seed: impl Fn(u64) -> Delayed<u64>,
    mix: impl Fn(&Delayed<u64>, &Delayed<u64>, &Delayed<u64>) -> Delayed<u64>,
) -> Delayed<u64> {
    let mut row: Vec<Delayed<u64>> = (0..WIDTH as u64).map(seed).collect();
    for _ in 1..DEPTH {
        row = (0..WIDTH)
            .map(|i| {
                let [a, b, c] = above(&row, i);
                mix(a, b, c)
            })
            .collect();
    }
    total(row)
}

/// Builds the `#[delayed] fn` lattice, then computes and drops it, in a
/// task on the runtime: the time of each phase. The build runs on one
/// thread whatever the runtime, so it bounds the speed-up of the whole.
fn phases(runtime: &Runtime) -> [Duration; 2] {
    runtime.block_on(async {
        tokio::spawn(async {
            let start = Instant::now();
            let root = lattice(seed_node, |a, b, c| mix_node(a, b, c));
            let built = start.elapsed();
            black_box(root.await.expect("the graph runs"));
            [built, start.elapsed() - built]
        })
        .await
        .expect("bench task panicked")
    })
}

/// `copies` runs of `plain` at once, one a thread: the time of all, and
/// one run's time times `copies` over it, the parallelism the machine
/// gives now.
fn plain_copies(copies: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..copies {
            scope.spawn(|| black_box(plain()));
        }
    });
    start.elapsed()
}

/// The same work with no graph, one row after another on this thread.
fn plain() -> u64 {
    let mut row: Vec<u64> = (0..WIDTH as u64).map(seed).collect();
    for _ in 1..DEPTH {
        row = (0..WIDTH)
            .map(|i| {
                let [a, b, c] = above(&row, i);
                mix(*a, *b, *c)
            })
            .collect();
    }
    sum(&row)
}

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("a tokio runtime")
}

/// Runs `f` inside a task on the runtime, as a service would.
fn on_worker<F: Future<Output = u64> + Send + 'static>(runtime: &Runtime, f: F) -> u64 {
    runtime.block_on(async move { tokio::spawn(f).await.expect("bench task panicked") })
}

fn time(f: impl FnOnce() -> u64) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bench(c: &mut Criterion, runtimes: &[(usize, Runtime)]) {
    let mut group = c.benchmark_group(format!("parallel lattice {WIDTH}x{DEPTH}"));
    group.throughput(Throughput::Elements(NODES));
    group.sample_size(10);
    group.bench_function("plain loop, one thread", |b| b.iter(|| black_box(plain())));
    for imp in Impl::ALL {
        for (workers, runtime) in runtimes {
            let id = BenchmarkId::new(imp.name(), format!("{workers} workers"));
            group.bench_function(id, |b| b.iter(|| black_box(on_worker(runtime, imp.run()))));
        }
    }
    group.finish();
}

/// Alternates the implementations on both runtimes and prints the median
/// times and the speed-ups.
fn paired(runtimes: &[(usize, Runtime)], rounds: usize) {
    let [(_, one), (all, many)] = runtimes else {
        unreachable!("a 1-worker runtime and an all-workers runtime")
    };
    let expected = plain();
    for imp in Impl::ALL {
        for runtime in [one, many] {
            assert_eq!(on_worker(runtime, imp.run()), expected, "{}", imp.name());
        }
    }
    let (mut floor, mut copies) = (Vec::new(), Vec::new());
    let mut split: [[Vec<Duration>; 2]; 2] = Default::default();
    let mut samples: [[Vec<Duration>; 2]; Impl::ALL.len()] = Default::default();
    for _ in 0..rounds {
        floor.push(time(plain));
        copies.push(plain_copies(*all));
        for (k, runtime) in [one, many].into_iter().enumerate() {
            let [built, ran] = phases(runtime);
            split[k][0].push(built);
            split[k][1].push(ran);
        }
        for (k, imp) in Impl::ALL.into_iter().enumerate() {
            samples[k][0].push(time(|| on_worker(one, imp.run())));
            samples[k][1].push(time(|| on_worker(many, imp.run())));
        }
    }
    let (floor, copies) = (median(floor), median(copies));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ns = |d: Duration| d.as_nanos() as f64 / NODES as f64;
    println!(
        "\npaired run, {rounds} rounds each, lattice {WIDTH}x{DEPTH} ({NODES} nodes), \
         work {} iterations a node, median (build + compute + drop):\n",
        ITERS.load(Relaxed)
    );
    println!(
        "plain loop, one thread, no graph: {:.1} ms ({:.0} ns/node)",
        ms(floor),
        ns(floor)
    );
    println!(
        "{all} copies of it at once, a thread each: {:.1} ms, so the machine gives {:.2}x now\n",
        ms(copies),
        *all as f64 * floor.as_secs_f64() / copies.as_secs_f64()
    );
    println!("| implementation | 1 worker | {all} workers | speed-up | 1 worker / plain loop |");
    println!("|---|---|---|---|---|");
    for (imp, [one, many]) in Impl::ALL.into_iter().zip(samples) {
        let (one, many) = (median(one), median(many));
        println!(
            "| {} | {:.1} ms ({:.0} ns/node) | {:.1} ms ({:.0} ns/node) | **{:.2}x** | {:.2}x |",
            imp.name(),
            ms(one),
            ns(one),
            ms(many),
            ns(many),
            one.as_secs_f64() / many.as_secs_f64(),
            one.as_secs_f64() / floor.as_secs_f64()
        );
    }
    let [[build_one, run_one], [build_many, run_many]] = split.map(|phase| phase.map(median));
    println!(
        "\ndelayed, sync fn, by phase: build {:.1} ms and compute + drop {:.1} ms on 1 worker, \
         build {:.1} ms and compute + drop {:.1} ms on {all}: compute + drop speed-up {:.2}x",
        ms(build_one),
        ms(run_one),
        ms(build_many),
        ms(run_many),
        run_one.as_secs_f64() / run_many.as_secs_f64()
    );
}

fn main() {
    let ns = std::env::var("DELAYED_WORK_NS").map_or(1_000.0, |ns| {
        ns.parse()
            .expect("DELAYED_WORK_NS is a number of nanoseconds")
    });
    let iters = calibrate(ns);
    println!("work: {iters} iterations take about {ns} ns here");
    let all = std::thread::available_parallelism().map_or(1, usize::from);
    let runtimes = [(1, runtime(1)), (all, runtime(all))];
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &runtimes);
    criterion.final_summary();
    paired(&runtimes, ROUNDS);
}
