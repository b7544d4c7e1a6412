//! Keyed graphs at scale: parse, validate and run graphs of 10,000 to
//! 200,000 keys, to show that each step is linear in the number of keys.
//!
//! ```text
//! cargo bench -p delayed-benches --bench keyed
//! ```
//!
//! The graph is the seed's shape, widened: `n / 2` loads, each cleaned,
//! and an `analyze` per 100 cleaned series, summed by a final `total`.
//! Each step is timed with its baseline in the same run: parsing against
//! `serde_json::from_str::<Value>` of the same text, running against the
//! same graph built from `#[delayed]` calls. Medians of 5 runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use delayed::delayed;
use delayed::keyed::{get, KeyedGraph};

#[delayed(register)]
fn load(i: u64) -> u64 {
    i
}

#[delayed(register)]
fn clean(x: u64) -> u64 {
    x * 2
}

#[delayed(register)]
fn analyze(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed(register)]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// The JSON of a graph with about `keys` keys.
fn spec(keys: usize) -> String {
    let loads = keys / 2;
    let mut json = String::from("{");
    for i in 0..loads {
        json.push_str(&format!(
            r#""load-{i}":{{"fn":"load","args":[{i}]}},"clean-{i}":{{"fn":"clean","args":[{{"ref":"load-{i}"}}]}},"#
        ));
    }
    let groups = loads.div_ceil(100);
    for g in 0..groups {
        let refs: Vec<String> = (g * 100..((g + 1) * 100).min(loads))
            .map(|i| format!(r#"{{"ref":"clean-{i}"}}"#))
            .collect();
        json.push_str(&format!(
            r#""analyze-{g}":{{"fn":"analyze","args":[[{}]]}},"#,
            refs.join(",")
        ));
    }
    let refs: Vec<String> = (0..groups)
        .map(|g| format!(r#"{{"ref":"analyze-{g}"}}"#))
        .collect();
    json.push_str(&format!(
        r#""total":{{"fn":"total","args":[[{}]]}}}}"#,
        refs.join(",")
    ));
    json
}

/// The same graph from calls.
fn calls(keys: usize) -> delayed::Delayed<u64> {
    let loads = keys / 2;
    let cleaned: Vec<_> = (0..loads as u64).map(|i| clean(load(i))).collect();
    let groups: Vec<_> = cleaned.chunks(100).map(|c| analyze(c.to_vec())).collect();
    total(groups)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    let registry = delayed::registry![load, clean, analyze, total];
    let sizes: &[usize] = if std::env::args().any(|a| a == "--quick") {
        &[10_000, 20_000]
    } else {
        &[10_000, 50_000, 100_000, 200_000]
    };
    println!("\nkeyed graphs, median of 5 runs (ns per key in parentheses):\n");
    println!("| keys | JSON size | from_json | serde_json Value | ratio | validate | get (build + run) | calls built + computed | ratio |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &keys in sizes {
        let json = spec(keys);
        let graph = KeyedGraph::from_json(&json).expect("a valid spec");
        let n = graph.len();
        let expected = runtime.block_on(calls(keys).compute()).expect("computes");
        let got = runtime
            .block_on(get(&graph, &registry, "total"))
            .expect("runs");
        assert_eq!(got, serde_json::json!(expected), "both ways agree");
        let (mut parse, mut value, mut validate, mut run, mut direct) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            parse.push(time(|| black_box(KeyedGraph::from_json(&json).expect("parses"))).0);
            value.push(
                time(|| {
                    black_box(serde_json::from_str::<serde_json::Value>(&json).expect("parses"))
                })
                .0,
            );
            validate.push(time(|| graph.validate(&registry).expect("valid")).0);
            run.push(
                time(|| {
                    runtime
                        .block_on(get(&graph, &registry, "total"))
                        .expect("runs")
                })
                .0,
            );
            direct.push(time(|| runtime.block_on(calls(keys).compute()).expect("computes")).0);
        }
        let per = |d: Duration| d.as_nanos() as f64 / n as f64;
        let (parse, value, validate, run, direct) = (
            median(parse),
            median(value),
            median(validate),
            median(run),
            median(direct),
        );
        println!(
            "| {n} | {:.1} MB | {parse:.1?} ({:.0}) | {value:.1?} ({:.0}) | {:.2}x | {validate:.1?} ({:.0}) | {run:.1?} ({:.0}) | {direct:.1?} ({:.0}) | {:.2}x |",
            json.len() as f64 / 1e6,
            per(parse),
            per(value),
            parse.as_secs_f64() / value.as_secs_f64(),
            per(validate),
            per(run),
            per(direct),
            run.as_secs_f64() / direct.as_secs_f64(),
        );
    }
}
