//! The seed's graph as data: dask's
//!
//! ```text
//! dsk = {'load-1': (load, 'myfile.a.data'),
//!        ...
//!        'analyze': (analyze, ['clean-%d' % i for i in [1, 2, 3]]),
//!        'store': (store, 'analyze')}
//! get(dsk, 'store')
//! ```
//!
//! written as JSON in `examples/seed.json`, run on real files.
//!
//! ```text
//! cargo run --example keyed
//! ```
//!
//! The four functions are `#[delayed(register)]`, listed in a registry with
//! `registry!`. The example writes three small data files into a fresh
//! temporary folder, points the graph's `data-dir` key at it, and runs
//! `store` with `keyed::get`. Then it builds the same pipeline with plain
//! calls, exports it with `KeyedGraph::from_delayed`, and shows that the two
//! specs are the same graph. Finally it shows the error a typo gets.

use std::error::Error;
use std::path::{Path, PathBuf};

use delayed::delayed;
use delayed::keyed::{get, get_many, KeyedGraph, Task};
use serde::{Deserialize, Serialize};

/// What `analyze` finds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Summary {
    files: usize,
    count: usize,
    mean: f64,
    min: f64,
    max: f64,
}

/// Reads one data file of `dir`.
#[delayed(register)]
async fn load(dir: &Path, name: String) -> std::io::Result<String> {
    tokio::fs::read_to_string(dir.join(name)).await
}

/// The numbers of a file, skipping lines that are not numbers.
#[delayed(register)]
fn clean(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|line| line.trim().parse::<f64>().ok())
        .filter(|x| x.is_finite())
        .collect()
}

/// Count, mean and range over every file.
#[delayed(register)]
fn analyze(series: Vec<Vec<f64>>) -> Summary {
    let all: Vec<f64> = series.iter().flatten().copied().collect();
    let count = all.len();
    Summary {
        files: series.len(),
        count,
        mean: all.iter().sum::<f64>() / count.max(1) as f64,
        min: all.iter().copied().fold(f64::INFINITY, f64::min),
        max: all.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Writes the summary into `dir` and returns the file's path.
#[delayed(register)]
async fn store(summary: &Summary, dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("summary.json");
    let text = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    tokio::fs::write(&path, text).await?;
    Ok(path)
}

const SEED: &str = include_str!("seed.json");

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::Builder::new()
        .prefix("delayed-keyed-")
        .tempdir()?;
    for (name, numbers) in [
        ("myfile.a.data", "1\n2\n3\n"),
        ("myfile.b.data", "4\n5\nnot a number\n6\n"),
        ("myfile.c.data", "7\n8\n9\n10\n"),
    ] {
        std::fs::write(dir.path().join(name), numbers)?;
    }
    let registry = delayed::registry![load, clean, analyze, store];

    // The graph from the file, with `data-dir` pointed at the files.
    let mut from_file = KeyedGraph::from_json(SEED)?;
    from_file.insert("data-dir", Task::value(dir.path()));
    // Like dask's `get(dsk, ['store', 'analyze'])`: one run, shared keys once.
    let outputs = get_many(&from_file, &registry, &["store", "analyze"]).await?;
    let (stored, summary) = (&outputs[0], &outputs[1]);
    println!("seed.json: store wrote {stored}");
    println!("seed.json: analyze found {summary}");

    // The same pipeline as calls, exported to the keyed form.
    let data_dir = delayed::Delayed::value(dir.path().to_path_buf()).named("data-dir");
    let loads: Vec<_> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, f)| load(&data_dir, format!("myfile.{f}.data")).named(format!("load-{}", i + 1)))
        .collect();
    let cleaned: Vec<_> = loads
        .iter()
        .enumerate()
        .map(|(i, l)| clean(l).named(format!("clean-{}", i + 1)))
        .collect();
    let analysis = analyze(cleaned).named("analyze");
    let result = store(&analysis, &data_dir).named("store");
    let exported = KeyedGraph::from_delayed(&result, &registry)?;
    println!(
        "\nexported from the #[delayed] calls:\n{}",
        exported.to_json_pretty()
    );
    println!(
        "the two specs are the same graph: {}",
        exported == from_file
    );
    if exported != from_file {
        return Err("the exported spec differs from seed.json".into());
    }
    let again = KeyedGraph::from_json(&exported.to_json())?;
    let direct = serde_json::to_value(analysis.compute().await?)?;
    println!(
        "exported spec, run again: analyze = {}",
        get(&again, &registry, "analyze").await?
    );
    println!("the calls, computed directly: analyze = {direct}");

    // Mistakes are found before anything runs, naming the key.
    let typo = SEED.replace(r#"{"ref": "clean-2"}"#, r#"{"ref": "clean-9"}"#);
    let err = get(&KeyedGraph::from_json(&typo)?, &registry, "store")
        .await
        .expect_err("a reference to a missing key");
    println!("\na typo in the spec: {err}");
    Ok(())
}
