//! Limits: the makespan of many slow loads under a `Limit`, and what a
//! limit costs per node, each against a hand-written tokio baseline with a
//! `tokio::sync::Semaphore`, in the same run.
//!
//! ```text
//! cargo bench -p delayed-benches --bench limits              # 10,000 loads; about 1.5 minutes
//! cargo bench -p delayed-benches --bench limits -- --quick   # 1,000 loads: a smoke run of seconds
//! DELAYED_BENCH_QUICK=1 cargo bench -p delayed-benches --bench limits   # the same
//! ```
//!
//! **Makespan.** 10,000 async loads that each sleep 20 ms, under
//! `Limit::new("http", 16)`, computed together on a multi-thread runtime
//! (default worker threads). Ideally that is `ceil(10000 / 16) = 625`
//! rounds of 20 ms: 12.5 s. The baseline spawns 10,000 tokio tasks that each
//! take a permit of a 16-permit `Semaphore`, then sleep 20 ms. A run of
//! 12.5 s in real time is too long for criterion's loop, so each runs three
//! times, alternating, and the medians are printed. Beside them, the floor
//! of tokio's timer: the cost of one 20 ms round measured as 50 sleeps of
//! 20 ms one after the other, times 625.
//!
//! **Overhead.** 100,000 no-op async nodes into one `total`, under a limit
//! of 16 and without one, against 100,000 tokio tasks that each take a
//! `Semaphore` permit (and plain tasks, without one); paired rounds,
//! median ns/node.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use delayed::{delayed, Limit};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

/// Permits of both limits, and of the baseline's semaphores.
const PERMITS: usize = 16;
/// How long each load waits.
const LOAD_WAIT: Duration = Duration::from_millis(20);
/// Samples of the makespan shape (12.5 s each at full size).
const MAKESPAN_SAMPLES: usize = 3;
/// Sequential sleeps timed to find the cost of one round of the timer.
const FLOOR_SLEEPS: u32 = 50;

static HTTP: Limit = Limit::new("http", PERMITS);
static NOOP: Limit = Limit::new("noop", PERMITS);

/// Bodies running at once, and the most seen, in the makespan shape.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Sizes of one run: full, or quick for a smoke run.
#[derive(Clone, Copy)]
struct Sizes {
    loads: u64,
    nodes: u64,
    rounds: usize,
}

impl Sizes {
    fn from_env(args: &[String]) -> Sizes {
        let quick = args.iter().any(|a| a == "--quick")
            || std::env::var_os("DELAYED_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0");
        if quick {
            Sizes {
                loads: 1_000,
                nodes: 10_000,
                rounds: 5,
            }
        } else {
            Sizes {
                loads: 10_000,
                nodes: 100_000,
                rounds: 21,
            }
        }
    }
}

/// Counts one more body running, and the peak.
fn enter() {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

fn leave() {
    RUNNING.fetch_sub(1, Ordering::SeqCst);
}

/// The peak of bodies at once since the last call.
fn take_peak() -> usize {
    PEAK.swap(0, Ordering::SeqCst)
}

#[delayed(limit = HTTP)]
async fn load(i: u64) -> u64 {
    enter();
    tokio::time::sleep(LOAD_WAIT).await;
    leave();
    i
}

#[delayed(limit = NOOP)]
async fn noop_limited(i: u64) -> u64 {
    i
}

#[delayed]
async fn noop(i: u64) -> u64 {
    i
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, &b| a.wrapping_add(b))
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `f` inside a task on the runtime, as a service would, and times it.
fn timed<F: Future<Output = u64> + Send + 'static>(runtime: &Runtime, f: F) -> (Duration, u64) {
    runtime.block_on(async move {
        let start = Instant::now();
        let value = tokio::spawn(f).await.expect("bench task panicked");
        (start.elapsed(), value)
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `delayed`: every load under `HTTP`, computed together.
async fn loads_delayed(loads: u64) -> u64 {
    let all = delayed::compute((0..loads).map(load).collect::<Vec<_>>())
        .await
        .expect("the loads run");
    all.iter().sum()
}

/// By hand: a task per load, each taking a semaphore permit, then sleeping.
async fn loads_baseline(loads: u64) -> u64 {
    let permits = Arc::new(Semaphore::new(PERMITS));
    let tasks: Vec<_> = (0..loads)
        .map(|i| {
            let permits = Arc::clone(&permits);
            tokio::spawn(async move {
                let _permit = permits.acquire().await.expect("the semaphore is open");
                enter();
                tokio::time::sleep(LOAD_WAIT).await;
                leave();
                i
            })
        })
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await.expect("a load task");
    }
    sum
}

/// What one 20 ms round costs on tokio's timer: sleeps one after another.
async fn timer_round() -> u64 {
    let start = Instant::now();
    for _ in 0..FLOOR_SLEEPS {
        tokio::time::sleep(LOAD_WAIT).await;
    }
    (start.elapsed() / FLOOR_SLEEPS).as_nanos() as u64
}

fn makespan(runtime: &Runtime, sizes: Sizes) {
    let loads = sizes.loads;
    let rounds = loads.div_ceil(PERMITS as u64);
    let ideal = LOAD_WAIT * rounds as u32;
    let expected = loads * (loads - 1) / 2;
    println!(
        "\n{loads} loads of {LOAD_WAIT:?} under a limit of {PERMITS}: makespan, median of \
         {MAKESPAN_SAMPLES} (alternating); ideal = ceil({loads}/{PERMITS}) x {LOAD_WAIT:?} = \
         {ideal:.2?}\n"
    );
    let (mut ours, mut theirs, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..MAKESPAN_SAMPLES {
        let (elapsed, sum) = timed(runtime, loads_delayed(loads));
        assert_eq!(sum, expected);
        assert_eq!(take_peak(), PERMITS, "delayed keeps to the limit");
        assert_eq!(HTTP.in_use(), 0);
        ours.push(elapsed);
        let (elapsed, sum) = timed(runtime, loads_baseline(loads));
        assert_eq!(sum, expected);
        assert_eq!(take_peak(), PERMITS, "the baseline keeps to the limit");
        theirs.push(elapsed);
        let (_, round) = timed(runtime, timer_round());
        floor.push(Duration::from_nanos(round) * rounds as u32);
    }
    let (ours, theirs, floor) = (median(ours), median(theirs), median(floor));
    let of_ideal = |d: Duration| d.as_secs_f64() / ideal.as_secs_f64();
    println!("| run | makespan | / ideal | / baseline | target |");
    println!("|---|---|---|---|---|");
    println!("| ideal: {rounds} rounds x {LOAD_WAIT:?} | {ideal:.2?} | 1.000 | | |");
    println!(
        "| tokio timer floor: {rounds} x one 20 ms round (median of {FLOOR_SLEEPS} sleeps in a row) | {floor:.2?} | {:.3} | | |",
        of_ideal(floor)
    );
    println!(
        "| baseline: {loads} `tokio::spawn` + `Semaphore({PERMITS})` | {theirs:.2?} | {:.3} | 1.000 | |",
        of_ideal(theirs)
    );
    println!(
        "| **delayed**: {loads} nodes, `Limit::new(\"http\", {PERMITS})`, `delayed::compute` | {ours:.2?} | **{:.3}** | {:.3} | <= 1.05 |",
        of_ideal(ours),
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}

/// `delayed`: no-op async nodes into one `total`, under a limit or not.
async fn noops_delayed(nodes: u64, limited: bool) -> u64 {
    let leaves: Vec<_> = if limited {
        (0..nodes).map(noop_limited).collect()
    } else {
        (0..nodes).map(noop).collect()
    };
    total(leaves).await.expect("the graph runs")
}

/// By hand: a task per node, with a semaphore permit or without.
async fn noops_baseline(nodes: u64, limited: bool) -> u64 {
    let permits = Arc::new(Semaphore::new(PERMITS));
    let tasks: Vec<_> = (0..nodes)
        .map(|i| {
            let permits = Arc::clone(&permits);
            tokio::spawn(async move {
                if limited {
                    let _permit = permits.acquire().await.expect("the semaphore is open");
                    black_box(i)
                } else {
                    black_box(i)
                }
            })
        })
        .collect();
    let mut sum = 0_u64;
    for task in tasks {
        sum = sum.wrapping_add(task.await.expect("a no-op task"));
    }
    sum
}

fn overhead(runtime: &Runtime, sizes: Sizes) {
    let nodes = sizes.nodes;
    let rounds = sizes.rounds;
    let expected = nodes * (nodes - 1) / 2;
    println!(
        "\n{nodes} no-op async nodes into one total, {rounds} paired rounds, median ns/node \
         (build + compute + drop):\n"
    );
    // (name, delayed rather than tokio tasks, under a limit or semaphore)
    let runs = [
        ("delayed, limit of 16", true, true),
        ("delayed, no limit", true, false),
        ("tokio tasks + `Semaphore(16)`", false, true),
        ("tokio tasks, no semaphore", false, false),
    ];
    let mut samples = vec![Vec::new(); runs.len()];
    for _ in 0..rounds {
        for (&(_, ours, limited), samples) in runs.iter().zip(&mut samples) {
            let (elapsed, sum) = if ours {
                timed(runtime, noops_delayed(nodes, limited))
            } else {
                timed(runtime, noops_baseline(nodes, limited))
            };
            assert_eq!(sum, expected);
            samples.push(elapsed);
        }
        assert_eq!(NOOP.in_use(), 0);
    }
    let per_node: Vec<f64> = samples
        .into_iter()
        .map(|s| median(s).as_nanos() as f64 / nodes as f64)
        .collect();
    let [limited, unlimited, semaphore, plain] = per_node[..] else {
        unreachable!("four runs")
    };
    println!("| run | ns/node | / delayed, no limit | / tokio + `Semaphore` |");
    println!("|---|---|---|---|");
    for ((name, _, _), ns) in runs.iter().zip(&per_node) {
        println!(
            "| {name} | {ns:.0} | {:.2}x | {:.2}x |",
            ns / unlimited,
            ns / semaphore
        );
    }
    println!(
        "\nthe limit costs {:.0} ns/node in delayed; the semaphore {:.0} ns/task by hand",
        limited - unlimited,
        semaphore - plain
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo bench -- --list` asks benches for their names.
        return;
    }
    let sizes = Sizes::from_env(&args);
    let runtime = runtime();
    let workers = runtime.metrics().num_workers();
    println!("limits bench on a multi-thread runtime with {workers} workers");
    // Warm the runtime, the allocator and the timer before timing.
    timed(&runtime, noops_delayed(1_000, true));
    timed(&runtime, loads_delayed(PERMITS as u64 * 2));
    take_peak();
    makespan(&runtime, sizes);
    overhead(&runtime, sizes);
}
