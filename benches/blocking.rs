//! Blocking chains: a chain of `#[delayed(blocking)]` nodes against a
//! chain of `#[delayed] async fn` nodes of the same length, in the same
//! run. Each node adds one to the one before.
//!
//! ```text
//! cargo bench -p delayed-benches --bench blocking                        # 100,000 nodes
//! DELAYED_CHAIN=1000000 cargo bench -p delayed-benches --bench blocking  # the million-deep target
//! ```
//!
//! `DELAYED_CHAIN` sets the chain's length (default 100,000; 1,000,000
//! works, about ten times as long). Each iteration builds the chain,
//! computes it and drops it, inside a task on a 2-worker multi-thread
//! runtime, as in `overhead.rs`.
//!
//! Criterion measures both chains; at the end a paired run, alternating
//! the two, prints the median ns/node of each and the ratio blocking/async,
//! which is what to compare on a shared, noisy machine.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use delayed::{delayed, Delayed, IntoDelayed};
use tokio::runtime::Runtime;

/// The chain's length unless `DELAYED_CHAIN` says otherwise.
const DEFAULT_CHAIN: u64 = 100_000;

/// Rounds of the paired run.
const ROUNDS: usize = 5;

#[delayed(blocking)]
fn step_blocking(x: u64) -> u64 {
    x + 1
}

#[delayed]
async fn step_async(x: u64) -> u64 {
    x + 1
}

/// The two chains measured.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Blocking,
    Async,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Blocking, Kind::Async];

    fn name(self) -> &'static str {
        match self {
            Kind::Blocking => "blocking",
            Kind::Async => "async",
        }
    }

    /// One node of this kind on `x`.
    fn step(self, x: impl IntoDelayed<u64>) -> Delayed<u64> {
        match self {
            Kind::Blocking => step_blocking(x.into_delayed()),
            Kind::Async => step_async(x.into_delayed()),
        }
    }

    /// Builds, computes and drops a chain of `n` nodes; returns `n`.
    async fn run(self, n: u64) -> u64 {
        let mut node = self.step(0);
        for _ in 1..n {
            node = self.step(node);
        }
        node.await.expect("the chain runs")
    }
}

/// `DELAYED_CHAIN`, or [`DEFAULT_CHAIN`].
fn chain_length() -> u64 {
    match std::env::var("DELAYED_CHAIN") {
        Ok(text) => text
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("DELAYED_CHAIN={text}: expected a number of nodes")),
        Err(_) => DEFAULT_CHAIN,
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

fn bench(c: &mut Criterion, runtime: &Runtime, n: u64, once: [Duration; 2]) {
    let mut group = c.benchmark_group(format!("chain {n}"));
    group.throughput(Throughput::Elements(n));
    // An iteration of the blocking chain can take seconds: the fewest
    // samples criterion takes, one iteration each, in the time they need.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    for (kind, once) in Kind::ALL.into_iter().zip(once) {
        group.measurement_time((once * 12).max(Duration::from_secs(1)));
        group.bench_function(BenchmarkId::from_parameter(kind.name()), |b| {
            b.iter(|| black_box(on_worker(runtime, kind.run(n))))
        });
    }
    group.finish();
}

/// Alternates the two chains and prints median ns/node and their ratio.
fn paired(runtime: &Runtime, n: u64, rounds: usize) {
    println!("\npaired run, {rounds} rounds each, median ns/node (build + compute + drop):\n");
    println!("| chain | blocking | async | ratio blocking/async |");
    println!("|---|---|---|---|");
    let (mut blocking, mut asynchronous) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        blocking.push(time(|| on_worker(runtime, Kind::Blocking.run(n))));
        asynchronous.push(time(|| on_worker(runtime, Kind::Async.run(n))));
    }
    let per_node = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_nanos() as f64 / n as f64
    };
    let (blocking, asynchronous) = (per_node(blocking), per_node(asynchronous));
    println!(
        "| {n} nodes | {blocking:.0} | {asynchronous:.0} | {:.1}x |",
        blocking / asynchronous
    );
}

fn time(f: impl FnOnce() -> u64) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

fn main() {
    let n = chain_length();
    let runtime = runtime();
    // Each chain once: it computes `n`, and how long it takes sets how
    // long criterion measures it.
    let once = Kind::ALL.map(|kind| {
        let start = Instant::now();
        let value = on_worker(&runtime, kind.run(n));
        assert_eq!(value, n, "the {} chain computes its length", kind.name());
        start.elapsed()
    });
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &runtime, n, once);
    criterion.final_summary();
    if std::env::args().any(|arg| arg == "--list") {
        // `cargo bench -- --list` asks benches for their names.
        return;
    }
    paired(&runtime, n, ROUNDS);
}
