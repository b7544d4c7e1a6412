//! Instructions per chain node, counted with callgrind.
//!
//! ```text
//! cargo run --release -p delayed-benches --example instructions          # needs valgrind on PATH
//! cargo run --release -p delayed-benches --example instructions -- delayed 10000   # one chain, no valgrind
//! ```
//!
//! With no arguments, this binary runs itself under
//! `valgrind --tool=callgrind` four times: a chain of 10,000 and of
//! 110,000 `#[delayed] fn inc(x: u64) -> u64 { x + 1 }` nodes, built,
//! computed and dropped in a task on a current-thread runtime (one worker),
//! then a plain loop of as many `x + 1` steps. It prints each run's total
//! instructions and (difference of the totals) / 100,000, which leaves out
//! everything that does not grow with the chain: the process, the runtime,
//! the first node's one-time costs. The plain loop's figure is what the
//! harness itself costs per step.
//!
//! With `delayed N` or `loop N` it runs one chain or loop of `N` and
//! prints its value: the program callgrind runs, which can also be given to
//! `valgrind --tool=callgrind` by hand.

use std::hint::black_box;
use std::process::Command;

mod chain;

/// The two lengths measured; their difference is the divisor.
const SHORT: u64 = 10_000;
const LONG: u64 = 110_000;

const USAGE: &str = "usage: instructions [delayed N | loop N]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => measure(),
        [what, n] => {
            let n: u64 = n.replace(['_', ','], "").parse().expect(USAGE);
            let value = run(what, n);
            assert_eq!(value, n, "the chain computes its length");
            println!("{value}");
        }
        _ => panic!("{USAGE}"),
    }
}

/// Runs one chain (`delayed`) or one plain loop (`loop`) of `n` steps.
fn run(what: &str, n: u64) -> u64 {
    match what {
        "delayed" => on_one_worker(n),
        "loop" => plain_loop(n),
        _ => panic!("{USAGE}"),
    }
}

/// A chain of `n` `inc` nodes, built, computed and dropped in a task on a
/// current-thread runtime.
fn on_one_worker(n: u64) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(chain::in_a_task(n))
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
    for what in ["delayed", "loop"] {
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
