//! Whole-program measurements: an I/O pipeline in real time against a plain
//! `JoinSet` of the same sleeps, a CPU-bound pipeline on every core, the
//! memory of a pipeline of big values, and the peak memory per node of a
//! million-node chain.
//!
//! ```text
//! cargo bench -p delayed-benches --bench pipeline
//! ```
//!
//! Each memory measurement runs in a fresh child process (this binary,
//! started again with `--child NAME`), so that its peak RSS (`VmHWM` in
//! `/proc/self/status`) is its own.

use std::process::Command;
use std::time::{Duration, Instant};

use delayed::delayed;

mod chain;

#[path = "../examples/nested_cv.rs"]
#[allow(dead_code)]
mod nested_cv;

/// Loads in the I/O pipeline, and how long each one waits.
const LOADS: u64 = 10_000;
const LOAD_WAIT: Duration = Duration::from_millis(20);

/// Inputs of the memory pipeline, and their size.
const BIG_INPUTS: usize = 200;
const BIG: usize = 10 << 20;

const CHAIN: u64 = 1_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1]);
    }
    if args.iter().any(|a| a == "--list") {
        // `cargo bench -- --list` asks benches for their names.
        return;
    }
    println!("| measure | result | target |");
    println!("|---|---|---|");
    io_pipeline();
    cpu_pipeline();
    for name in ["memory", "chain"] {
        let out = Command::new(std::env::current_exe().expect("own path"))
            .args(["--child", name])
            .output()
            .expect("start a child measurement");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

fn child(name: &str) {
    match name {
        "memory" => memory_pipeline(),
        "chain" => million_chain(),
        other => panic!("unknown measurement {other}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[delayed]
async fn load(i: u64) -> u64 {
    tokio::time::sleep(LOAD_WAIT).await;
    i
}

#[delayed]
fn clean(x: u64) -> u64 {
    x * 2
}

#[delayed]
fn analyze(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed]
fn store(total: u64) -> String {
    format!("total={total}")
}

/// 10,000 loads that each wait 20 ms, then clean, analyze, store: the
/// critical path is one load. Beside it, in the same process and
/// alternated with it, the same program by hand: the same 10,000 sleeps
/// in a plain `JoinSet`, each output cleaned as it is joined, then summed
/// and formatted. The ratio of the two medians is the figure to compare.
fn io_pipeline() {
    const ROUNDS: usize = 7;
    let runtime = runtime();
    let expected = format!("total={}", LOADS * (LOADS - 1));
    let (mut ours, mut join_set) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ours.push(runtime.block_on(async {
            let start = Instant::now();
            let cleaned: Vec<_> = (0..LOADS).map(|i| clean(load(i))).collect();
            let report = store(analyze(cleaned)).await.expect("the pipeline runs");
            assert_eq!(report, expected);
            start.elapsed()
        }));
        join_set.push(runtime.block_on(async {
            let start = Instant::now();
            let mut loads = tokio::task::JoinSet::new();
            for i in 0..LOADS {
                loads.spawn(async move {
                    tokio::time::sleep(LOAD_WAIT).await;
                    i
                });
            }
            let mut cleaned = Vec::with_capacity(LOADS as usize);
            while let Some(loaded) = loads.join_next().await {
                cleaned.push(loaded.expect("a load task") * 2);
            }
            let total: u64 = cleaned.iter().sum();
            let report = format!("total={total}");
            assert_eq!(report, expected);
            start.elapsed()
        }));
    }
    let ratios: Vec<f64> = ours
        .iter()
        .zip(&join_set)
        .map(|(ours, join_set)| ours.as_secs_f64() / join_set.as_secs_f64())
        .collect();
    let (lowest, highest) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    let median = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let (ours, join_set) = (median(ours), median(join_set));
    let critical = |d: Duration| d.as_secs_f64() / LOAD_WAIT.as_secs_f64();
    println!(
        "| I/O pipeline, {LOADS} loads of {LOAD_WAIT:?} then clean, analyze, store: \
         delayed / a plain JoinSet of the same sleeps, medians of {ROUNDS} alternated \
         (makespan / critical path) | **{:.2}x** (delayed {:.3}, JoinSet {:.3}; \
         per round {lowest:.2}x to {highest:.2}x) | <= 1.15x |",
        ours.as_secs_f64() / join_set.as_secs_f64(),
        critical(ours),
        critical(join_set),
    );
}

/// The nested cross-validation example, sequential against delayed,
/// alternated three times; the median speed-up is reported.
fn cpu_pipeline() {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let data = nested_cv::Dataset::synthetic(nested_cv::ROWS, nested_cv::FEATURES, 7);
        let start = Instant::now();
        let sequential = nested_cv::nested_cv(&data);
        let sequential_time = start.elapsed();
        let start = Instant::now();
        let parallel = nested_cv::nested_cv_graph(data)
            .compute_blocking()
            .expect("the graph runs");
        let parallel_time = start.elapsed();
        assert_eq!(nested_cv::bits(&sequential), nested_cv::bits(&parallel));
        let speed_up = sequential_time.as_secs_f64() / parallel_time.as_secs_f64();
        runs.push((speed_up, sequential_time, parallel_time));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (speed_up, sequential_time, parallel_time) = runs[1];
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "| nested CV speed-up on {cores} cores, median of 3 ({sequential_time:.2?} / {parallel_time:.2?}) | {speed_up:.2}x | >= 1.85x |"
    );
}

/// Peak resident memory of this process so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[delayed]
async fn load_big(i: usize) -> Vec<u8> {
    tokio::task::yield_now().await;
    vec![i as u8; BIG]
}

#[delayed]
fn clean_big(data: &[u8]) -> Vec<u8> {
    data.iter().map(|b| b.wrapping_add(1)).collect()
}

#[delayed]
fn digest(data: &[u8]) -> u64 {
    data.iter().map(|&b| u64::from(b)).sum()
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// 200 inputs of 10 MB through load, clean and total; the caller keeps no
/// intermediate handle, so each input is freed once its digest is done.
fn memory_pipeline() {
    let runtime = runtime();
    let before = peak_rss();
    let sum = runtime.block_on(async {
        let digests: Vec<_> = (0..BIG_INPUTS)
            .map(|i| digest(clean_big(load_big(i))))
            .collect();
        total(digests).await.expect("the pipeline runs")
    });
    let expected: u64 = (0..BIG_INPUTS)
        .map(|i| u64::from((i as u8).wrapping_add(1)) * BIG as u64)
        .sum();
    assert_eq!(sum, expected);
    let peak = peak_rss().saturating_sub(before);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "| {BIG_INPUTS} x 10 MB pipeline, peak RSS growth ({workers} workers in flight) | {} MB | <= {} MB |",
        peak >> 20,
        (workers + 2) * 10
    );
}

/// A million-deep chain built, computed and dropped inside a task: the
/// growth of the peak RSS over all three, per node.
fn million_chain() {
    let runtime = runtime();
    let before = peak_rss();
    let start = Instant::now();
    let value = runtime.block_on(chain::in_a_task(CHAIN));
    let elapsed = start.elapsed();
    assert_eq!(value, CHAIN);
    let peak = peak_rss().saturating_sub(before);
    println!(
        "| 1M-deep chain built, run and dropped in a task: time, and peak RSS growth per node | {elapsed:.2?}, {} bytes/node | <= 160 bytes/node |",
        peak / CHAIN
    );
}
