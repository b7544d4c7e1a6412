//! Per-node overhead: `delayed` against a hand-written tokio baseline and
//! two peer crates, async_dag 0.1.2 and futures-dagtask 0.3, in the same
//! run, on four shapes of graph.
//!
//! ```text
//! cargo bench -p delayed-benches --bench overhead
//! cargo bench -p delayed-benches --bench overhead -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Each iteration builds a graph, computes it and drops it, inside a task
//! on a 2-worker multi-thread runtime. The baseline is what one would write
//! by hand: one `futures::future::Shared` per node, spawned with
//! `tokio::spawn`, its inputs joined with `join_all` inside
//! `tokio::task::unconstrained` (without it, tokio's cooperative budget
//! makes a 100k fan-in a hundred times slower). The peers run the whole
//! graph inside that one task (`overhead/async_dag.rs`,
//! `overhead/futures_dagtask.rs` say how each is written); async_dag takes
//! at most 12 inputs per node, so it has no fan-in of 100,000.
//!
//! Criterion measures each implementation on each shape; at the end a
//! paired run, alternating the implementations (each run once untimed
//! before it is timed), prints ns/node for each and
//! the ratios delayed/baseline, delayed/async_dag and
//! delayed/futures-dagtask, which is what to compare on a shared, noisy
//! machine.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use delayed::{delayed, Callback, Delayed, Options};
use tokio::runtime::Runtime;

mod baseline;
#[path = "overhead/async_dag.rs"]
mod with_async_dag;
#[path = "overhead/futures_dagtask.rs"]
mod with_futures_dagtask;

#[delayed]
fn inc(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, &b| a.wrapping_add(b))
}

/// The graphs measured: name, node count.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `n` `inc`, each on the one before.
    Chain(u64),
    /// 100,000 `inc(i)` leaves into one `total`.
    FanIn,
    /// 100 wide and 100 deep; each node adds the two above it.
    Lattice,
}

const LEAVES: u64 = 100_000;
const WIDTH: usize = 100;
const DEPTH: usize = 100;

impl Shape {
    const ALL: [Shape; 4] = [
        Shape::Chain(10_000),
        Shape::Chain(100_000),
        Shape::FanIn,
        Shape::Lattice,
    ];

    fn name(self) -> String {
        match self {
            Shape::Chain(n) => format!("chain {}k", n / 1000),
            Shape::FanIn => "fan-in 100k".to_string(),
            Shape::Lattice => format!("lattice {WIDTH}x{DEPTH}"),
        }
    }

    fn nodes(self) -> u64 {
        match self {
            Shape::Chain(n) => n,
            Shape::FanIn => LEAVES + 1,
            Shape::Lattice => (WIDTH * DEPTH) as u64,
        }
    }

    /// Builds, computes and drops the graph with `delayed`; `observed`
    /// attaches a callback that does nothing, to price the callback path.
    async fn run_delayed(self, observed: bool) -> u64 {
        let root = match self {
            Shape::Chain(n) => {
                let mut node = inc(0);
                for _ in 1..n {
                    node = inc(node);
                }
                node
            }
            Shape::FanIn => total((0..LEAVES).map(inc).collect::<Vec<_>>()),
            Shape::Lattice => {
                let mut row: Vec<Delayed<u64>> = (0..WIDTH as u64).map(inc).collect();
                for _ in 1..DEPTH {
                    row = (0..WIDTH)
                        .map(|i| add(&row[i], &row[(i + 1) % WIDTH]))
                        .collect();
                }
                total(row)
            }
        };
        let result = if observed {
            root.compute_with(Options::new().callback(Quiet)).await
        } else {
            root.await
        };
        result.expect("the graph runs")
    }

    /// The same graph, by hand.
    async fn run_baseline(self) -> u64 {
        match self {
            Shape::Chain(n) => {
                let mut node = baseline::node(vec![], |_| 1);
                for _ in 1..n {
                    node = baseline::node(vec![node], |v| v[0].wrapping_add(1));
                }
                node.await
            }
            Shape::FanIn => {
                let leaves = (0..LEAVES)
                    .map(|i| baseline::node(vec![], move |_| i.wrapping_add(1)))
                    .collect();
                baseline::node(leaves, |v| v.iter().fold(0, |a, &b| a.wrapping_add(b))).await
            }
            Shape::Lattice => {
                let mut row: Vec<baseline::Node> = (0..WIDTH as u64)
                    .map(|i| baseline::node(vec![], move |_| i + 1))
                    .collect();
                for _ in 1..DEPTH {
                    row = (0..WIDTH)
                        .map(|i| {
                            baseline::node(
                                vec![row[i].clone(), row[(i + 1) % WIDTH].clone()],
                                |v| v[0].wrapping_add(v[1]),
                            )
                        })
                        .collect();
                }
                baseline::node(row, |v| v.iter().fold(0, |a, &b| a.wrapping_add(b))).await
            }
        }
    }

    /// The same graph in async_dag, if it can be written there.
    fn run_async_dag(self) -> Option<u64> {
        match self {
            Shape::Chain(n) => Some(with_async_dag::chain(n)),
            // A node takes at most 12 inputs.
            Shape::FanIn => None,
            Shape::Lattice => Some(with_async_dag::lattice(WIDTH, DEPTH)),
        }
    }

    /// The same graph in futures-dagtask.
    async fn run_futures_dagtask(self) -> u64 {
        match self {
            Shape::Chain(n) => with_futures_dagtask::chain(n).await,
            Shape::FanIn => with_futures_dagtask::fan_in(LEAVES).await,
            Shape::Lattice => with_futures_dagtask::lattice(WIDTH, DEPTH).await,
        }
    }
}

/// The implementations measured, in the order the paired run alternates
/// them.
#[derive(Clone, Copy, Debug)]
enum Impl {
    Delayed,
    Baseline,
    AsyncDag,
    FuturesDagtask,
    /// `delayed` with a callback attached that does nothing.
    Watched,
}

impl Impl {
    const ALL: [Impl; 5] = [
        Impl::Delayed,
        Impl::Baseline,
        Impl::AsyncDag,
        Impl::FuturesDagtask,
        Impl::Watched,
    ];

    fn name(self) -> &'static str {
        match self {
            Impl::Delayed => "delayed",
            Impl::Baseline => "baseline",
            Impl::AsyncDag => "async_dag",
            Impl::FuturesDagtask => "futures-dagtask",
            Impl::Watched => "delayed, watched",
        }
    }

    /// Whether this implementation can express `shape`.
    fn expresses(self, shape: Shape) -> bool {
        !matches!((self, shape), (Impl::AsyncDag, Shape::FanIn))
    }

    /// Builds, computes and drops `shape`, in a task on the runtime.
    fn run(self, runtime: &Runtime, shape: Shape) -> u64 {
        match self {
            Impl::Delayed => on_worker(runtime, shape.run_delayed(false)),
            Impl::Baseline => on_worker(runtime, shape.run_baseline()),
            Impl::AsyncDag => on_worker(runtime, async move {
                shape
                    .run_async_dag()
                    .expect("async_dag expresses the shape")
            }),
            Impl::FuturesDagtask => on_worker(runtime, shape.run_futures_dagtask()),
            Impl::Watched => on_worker(runtime, shape.run_delayed(true)),
        }
    }
}

/// A callback that does nothing: what watching costs by itself.
struct Quiet;

impl Callback for Quiet {}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime")
}

/// Runs `f` inside a task on the runtime, as a service would, and waits
/// until the runtime has no task left: work that an implementation leaves
/// running after its result is out (tasks still dropping nodes) is part of
/// its cost, not of the next measurement's.
fn on_worker<F: Future<Output = u64> + Send + 'static>(runtime: &Runtime, f: F) -> u64 {
    let value =
        runtime.block_on(async move { tokio::spawn(f).await.expect("bench task panicked") });
    while runtime.metrics().num_alive_tasks() > 0 {
        std::thread::yield_now();
    }
    value
}

fn bench(c: &mut Criterion, runtime: &Runtime) {
    for shape in Shape::ALL {
        let mut group = c.benchmark_group(shape.name());
        group.throughput(Throughput::Elements(shape.nodes()));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(4));
        for imp in Impl::ALL {
            if matches!(imp, Impl::Watched) || !imp.expresses(shape) {
                continue;
            }
            group.bench_function(BenchmarkId::from_parameter(imp.name()), |b| {
                b.iter(|| black_box(imp.run(runtime, shape)))
            });
        }
        group.finish();
    }
}

/// Alternates the implementations and prints median ns/node and ratios.
fn paired(runtime: &Runtime, rounds: usize) {
    println!(
        "\npaired run, {rounds} rounds each, each timed after an untimed run, \
         median ns/node (build + compute + drop):\n"
    );
    println!(
        "| shape | delayed | baseline | async_dag | futures-dagtask \
         | delayed / baseline | delayed / async_dag | delayed / futures-dagtask \
         | delayed with a callback attached |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for shape in Shape::ALL {
        let expected = Impl::Delayed.run(runtime, shape);
        for imp in Impl::ALL.into_iter().filter(|imp| imp.expresses(shape)) {
            assert_eq!(
                imp.run(runtime, shape),
                expected,
                "{} computes what delayed computes on {}",
                imp.name(),
                shape.name()
            );
        }
        let mut samples: [Vec<Duration>; Impl::ALL.len()] = Default::default();
        for _ in 0..rounds {
            for (k, imp) in Impl::ALL.into_iter().enumerate() {
                if imp.expresses(shape) {
                    // Once untimed, so that each is timed in the warm state
                    // criterion's loop measures, not in the heap the others
                    // left.
                    black_box(imp.run(runtime, shape));
                    samples[k].push(time(|| imp.run(runtime, shape)));
                }
            }
        }
        let [ours, baseline, async_dag, dagtask, watched] = samples.map(|mut samples| {
            samples.sort();
            let median = samples.get(samples.len() / 2)?;
            Some(median.as_nanos() as f64 / shape.nodes() as f64)
        });
        let ours = ours.expect("delayed expresses every shape");
        let cell = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0}"));
        let ratio = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.2}x", ours / v));
        let watched = watched.expect("delayed expresses every shape");
        println!(
            "| {} | {ours:.0} | {} | {} | {} | {} | {} | {} | {watched:.0} ({:.2}x of unwatched) |",
            shape.name(),
            cell(baseline),
            cell(async_dag),
            cell(dagtask),
            ratio(baseline),
            ratio(async_dag),
            ratio(dagtask),
            watched / ours
        );
    }
}

fn time(f: impl FnOnce() -> u64) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

fn main() {
    let runtime = runtime();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &runtime);
    criterion.final_summary();
    paired(&runtime, 21);
}
