//! Instructions per node, counted with callgrind.
//!
//! ```text
//! cargo run --release -p delayed-benches --example instructions          # needs valgrind on PATH
//! cargo run --release -p delayed-benches --example instructions -- delayed 10000   # one chain, no valgrind
//! ```
//!
//! With no arguments, this binary runs itself under
//! `valgrind --tool=callgrind` twice per shape, with 10,000 and 110,000
//! nodes, each graph built, computed and dropped in a task on a
//! current-thread runtime (one worker), and prints each run's total
//! instructions and (difference of the totals) / 100,000, which leaves out
//! everything that does not grow with the graph: the process, the runtime,
//! the first node's one-time costs. The shapes:
//!
//! - `delayed`: a chain of `#[delayed] fn inc(x: u64) -> u64 { x + 1 }`
//!   nodes, each on the one before (the issue's figure);
//! - `watched`: the same chain computed with a do-nothing callback;
//! - `leaves`: `inc(i)` calls on plain numbers, built and dropped, never
//!   computed (what a call and its readable key cost);
//! - `fan-in`: as many leaves summed by one node;
//! - `lattice`: rows 100 wide, each node adding two nodes of the row above;
//! - `wide`: rows 1,000 wide, each node mixing three nodes of the row above
//!   (the shape of `parallel.rs`, without its work);
//! - `loop`: a plain loop of as many `x + 1` steps, what the harness itself
//!   costs per step.
//!
//! With `SHAPE N` it runs one graph (or loop) of `N` nodes and prints its
//! value: the program callgrind runs, which can also be given to
//! `valgrind --tool=callgrind` by hand.

use std::hint::black_box;
use std::process::Command;

use delayed::{delayed, Callback, Delayed, Options};

mod chain;

/// The two lengths measured; their difference is the divisor.
const SHORT: u64 = 10_000;
const LONG: u64 = 110_000;

const USAGE: &str =
    "usage: instructions [SHAPE N], SHAPE one of delayed, watched, leaves, fan-in, lattice, wide, loop";

/// The shapes measured, in the order printed.
const SHAPES: [&str; 7] = [
    "delayed", "watched", "leaves", "fan-in", "lattice", "wide", "loop",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => measure(),
        [what, n] => {
            let n: u64 = n.replace(['_', ','], "").parse().expect(USAGE);
            println!("{}", run(what, n));
        }
        _ => panic!("{USAGE}"),
    }
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

#[delayed]
fn mix(a: u64, b: u64, c: u64) -> u64 {
    a ^ b.rotate_left(7) ^ c.rotate_left(13)
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().fold(0, |a, &b| a.wrapping_add(b))
}

/// A callback that does nothing: what watching costs.
struct Quiet;

impl Callback for Quiet {}

/// Runs one graph of shape `what` and `n` nodes, or the plain loop; checks
/// and returns its value.
fn run(what: &str, n: u64) -> u64 {
    if what == "loop" {
        return plain_loop(n);
    }
    let what = what.to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let task = async move {
        match what.as_str() {
            "delayed" => chain::in_a_task(n).await,
            "watched" => {
                let value = chain::build(n)
                    .compute_with(Options::new().callback(Quiet))
                    .await;
                value.expect("the chain runs")
            }
            "leaves" => {
                let leaves: Vec<Delayed<u64>> = (0..n).map(chain::inc).collect();
                leaves.len() as u64
            }
            "fan-in" => {
                let sum = total((0..n - 1).map(chain::inc).collect::<Vec<_>>());
                sum.await.expect("the fan-in runs")
            }
            "lattice" => {
                let rows = lattice(n, 100, |row, i, w| add(&row[i], &row[(i + 1) % w]));
                rows.await.expect("the lattice runs")
            }
            "wide" => {
                let rows = lattice(n, 1_000, |row, i, w| {
                    mix(&row[(i + w - 1) % w], &row[i], &row[(i + 1) % w])
                });
                rows.await.expect("the lattice runs")
            }
            _ => panic!("{USAGE}"),
        }
    };
    runtime
        .block_on(async move { tokio::spawn(task).await })
        .expect("the graph's task runs")
}

/// Rows of `width` nodes, about `n` in all, each row's nodes made by
/// `node` from the row above, summed by one node.
fn lattice(
    n: u64,
    width: usize,
    node: impl Fn(&[Delayed<u64>], usize, usize) -> Delayed<u64>,
) -> Delayed<u64> {
    let mut row: Vec<Delayed<u64>> = (0..width as u64).map(chain::inc).collect();
    for _ in 1..n as usize / width {
        row = (0..width).map(|i| node(&row, i, width)).collect();
    }
    total(row)
}

/// The same `n` increments with no graph.
fn plain_loop(n: u64) -> u64 {
    let mut x = 0;
    for _ in 0..n {
        x = black_box(x + 1);
    }
    x
}

/// Runs `what` at both lengths under callgrind and prints instructions per
/// step.
fn measure() {
    let exe = std::env::current_exe().expect("own path");
    println!("| run | instructions, {SHORT} | instructions, {LONG} | per step |");
    println!("|---|---|---|---|");
    for what in SHAPES {
        let [short, long] = [SHORT, LONG].map(|n| {
            let out = Command::new("valgrind")
                .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
                .arg(&exe)
                .args([what, &n.to_string()])
                .output()
                .expect("valgrind runs (is it installed?)");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            collected(&stderr).expect("callgrind's summary names the instructions collected")
        });
        let per_step = (long - short) as f64 / (LONG - SHORT) as f64;
        println!("| {what} | {short} | {long} | **{per_step:.0}** |");
    }
}

/// The total of callgrind's `Collected : N` summary line.
fn collected(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|line| line.split_once("Collected :"))
        .and_then(|(_, n)| n.trim().parse().ok())
}
