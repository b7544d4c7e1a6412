//! Per-node overhead: `delayed` against a hand-written tokio baseline, in
//! the same run, on three shapes of graph.
//!
//! ```text
//! cargo bench -p delayed-benches --bench overhead
//! ```
//!
//! Each iteration builds a graph, computes it and drops it, inside a task
//! on a 2-worker multi-thread runtime. The baseline is what one would write
//! by hand: one `futures::future::Shared` per node, spawned with
//! `tokio::spawn`, its inputs joined with `join_all` inside
//! `tokio::task::unconstrained` (without it, tokio's cooperative budget
//! makes a 100k fan-in a hundred times slower).
//!
//! Criterion measures each pair; at the end a paired run, alternating the
//! two implementations, prints ns/node for both and their ratio, which is
//! what to compare on a shared, noisy machine.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use delayed::{delayed, Callback, Delayed, Options};
use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use tokio::runtime::Runtime;

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
    /// 10,000 `inc`, each on the one before.
    Chain,
    /// 100,000 `inc(i)` leaves into one `total`.
    FanIn,
    /// 100 wide and 100 deep; each node adds the two above it.
    Lattice,
}

const CHAIN: u64 = 10_000;
const LEAVES: u64 = 100_000;
const WIDTH: usize = 100;
const DEPTH: usize = 100;

impl Shape {
    const ALL: [Shape; 3] = [Shape::Chain, Shape::FanIn, Shape::Lattice];

    fn name(self) -> &'static str {
        match self {
            Shape::Chain => "chain 10k",
            Shape::FanIn => "fan-in 100k",
            Shape::Lattice => "lattice 100x100",
        }
    }

    fn nodes(self) -> u64 {
        match self {
            Shape::Chain => CHAIN,
            Shape::FanIn => LEAVES + 1,
            Shape::Lattice => (WIDTH * DEPTH) as u64,
        }
    }

    /// Builds, computes and drops the graph with `delayed`; `observed`
    /// attaches a callback that does nothing, to price the callback path.
    async fn run_delayed(self, observed: bool) -> u64 {
        let root = match self {
            Shape::Chain => {
                let mut node = inc(0);
                for _ in 1..CHAIN {
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
            Shape::Chain => {
                let mut node = baseline::node(vec![], |_| 1);
                for _ in 1..CHAIN {
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
}

/// A callback that does nothing: what watching costs by itself.
struct Quiet;

impl Callback for Quiet {}

/// The hand-written baseline: a `Shared` per node over a spawned task.
mod baseline {
    use super::*;

    pub(crate) type Node = Shared<BoxFuture<'static, u64>>;

    pub(crate) fn node(deps: Vec<Node>, f: impl FnOnce(&[u64]) -> u64 + Send + 'static) -> Node {
        let task = tokio::spawn(async move {
            let values = tokio::task::unconstrained(join_all(deps)).await;
            f(&values)
        });
        task.map(|result| result.expect("baseline task panicked"))
            .boxed()
            .shared()
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime")
}

/// Runs `f` inside a task on the runtime, as a service would.
fn on_worker<F: Future<Output = u64> + Send + 'static>(runtime: &Runtime, f: F) -> u64 {
    runtime.block_on(async move { tokio::spawn(f).await.expect("bench task panicked") })
}

fn bench(c: &mut Criterion, runtime: &Runtime) {
    for shape in Shape::ALL {
        let mut group = c.benchmark_group(shape.name());
        group.throughput(Throughput::Elements(shape.nodes()));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(4));
        group.bench_function(BenchmarkId::from_parameter("delayed"), |b| {
            b.iter(|| black_box(on_worker(runtime, shape.run_delayed(false))))
        });
        group.bench_function(BenchmarkId::from_parameter("baseline"), |b| {
            b.iter(|| black_box(on_worker(runtime, shape.run_baseline())))
        });
        group.finish();
    }
}

/// Alternates the two implementations and prints median ns/node and ratio.
fn paired(runtime: &Runtime, rounds: usize) {
    println!("\npaired run, {rounds} rounds each, median ns/node (build + compute + drop):\n");
    println!("| shape | delayed | baseline | ratio | with a callback attached |");
    println!("|---|---|---|---|---|");
    for shape in Shape::ALL {
        assert_eq!(
            on_worker(runtime, shape.run_delayed(false)),
            on_worker(runtime, shape.run_baseline()),
            "both implementations compute the same value"
        );
        let (mut ours, mut theirs, mut observed) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            ours.push(time(|| on_worker(runtime, shape.run_delayed(false))));
            theirs.push(time(|| on_worker(runtime, shape.run_baseline())));
            observed.push(time(|| on_worker(runtime, shape.run_delayed(true))));
        }
        let per_node = |mut samples: Vec<Duration>| {
            samples.sort();
            samples[samples.len() / 2].as_nanos() as f64 / shape.nodes() as f64
        };
        let (ours, theirs, observed) = (per_node(ours), per_node(theirs), per_node(observed));
        println!(
            "| {} | {ours:.0} | {theirs:.0} | {:.2}x | {observed:.0} ({:.2}x of unwatched) |",
            shape.name(),
            ours / theirs,
            observed / ours
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
