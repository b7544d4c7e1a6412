//! The seed pipeline (load → clean → analyze → store) over files, with a
//! persistent cache: run it again and only what changed runs.
//!
//! ```text
//! cargo run --release --example incremental            # sample data in a temporary folder
//! cargo run --release --example incremental -- DIR     # the *.txt files in DIR
//! ```
//!
//! Each `*.txt` file holds one number per line (blank lines and `#`
//! comments are skipped, other lines are rejected). Every step is a
//! `#[delayed(cache)]` function, and each file enters the graph as a
//! `SourceFile` keyed by the SHA-256 of its content:
//!
//! ```text
//! a.txt ── load ── clean ──┐
//! b.txt ── load ── clean ──┼── analyze ── store
//! c.txt ── load ── clean ──┘
//! ```
//!
//! The cache lives in `DIR/.delayed-cache` (with no argument, `DIR` is a
//! fresh temporary folder with generated sample data, so each such run is
//! cold). The last line of output is `ran=N cached=M`: the pipeline's
//! steps that ran and those read from the cache (the file stamps, checked
//! on every run, are not steps). Run it twice on one directory and the
//! second run prints `ran=0`; edit one file and only that file's `load`
//! and `clean`, then `analyze` and `store`, run.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use delayed::cache::{Cache, SourceFile};
use delayed::{delayed, Callback, Options, Outcome, TaskFinished};
use serde::{Deserialize, Serialize};

/// Reads one input file.
#[delayed(cache)]
async fn load(file: SourceFile) -> Result<String, std::io::Error> {
    tokio::fs::read_to_string(file.path()).await
}

/// The numbers of one file, and how many lines were rejected.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Clean {
    values: Vec<f64>,
    rejected: u64,
}

/// Parses one number per line.
#[delayed(cache)]
fn clean(text: &str) -> Clean {
    let mut out = Clean::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.parse::<f64>() {
            Ok(value) if value.is_finite() => out.values.push(value),
            _ => out.rejected += 1,
        }
    }
    out
}

/// Statistics over every file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Summary {
    files: usize,
    count: usize,
    sum: f64,
    min: f64,
    max: f64,
    rejected: u64,
}

#[delayed(cache, blocking)]
fn analyze(parts: Vec<Clean>) -> Summary {
    let values = parts.iter().flat_map(|part| part.values.iter().copied());
    let (mut count, mut sum, mut min, mut max) = (0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    for value in values {
        count += 1;
        sum += value;
        min = min.min(value);
        max = max.max(value);
    }
    Summary {
        files: parts.len(),
        count,
        sum,
        min,
        max,
        rejected: parts.iter().map(|part| part.rejected).sum(),
    }
}

/// The report's text.
#[delayed(cache)]
fn store(summary: Summary) -> String {
    let mean = if summary.count == 0 {
        0.0
    } else {
        summary.sum / summary.count as f64
    };
    format!(
        "{} files, {} values, mean {mean:.3}, min {}, max {}, {} rejected lines",
        summary.files, summary.count, summary.min, summary.max, summary.rejected
    )
}

/// Counts the steps that ran and those read from the cache.
#[derive(Default)]
struct Counts {
    ran: AtomicU64,
    cached: AtomicU64,
}

impl Callback for Counts {
    fn task_finished(&self, task: &TaskFinished) {
        if task.name() == "source_file" {
            return;
        }
        match task.outcome() {
            Outcome::Done => self.ran.fetch_add(1, Ordering::Relaxed),
            Outcome::Cached => self.cached.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}

/// Writes a sample data set into a fresh temporary folder.
fn sample() -> Result<PathBuf, Box<dyn Error>> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "delayed-incremental-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    for (i, name) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        let mut text = String::from("# readings\n");
        for j in 0..1_000_u64 {
            text.push_str(&format!("{}\n", (j * 7 + i as u64 * 13) % 101));
        }
        std::fs::write(dir.join(format!("{name}.txt")), text)?;
    }
    Ok(dir)
}

/// The `*.txt` files in `dir`, sorted.
fn inputs(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    files.sort();
    Ok(files)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => sample()?,
    };
    let files = inputs(&dir)?;
    if files.is_empty() {
        return Err(format!("no *.txt files in {}", dir.display()).into());
    }
    let cache = Cache::dir(dir.join(".delayed-cache"))?;

    let cleaned: Vec<_> = files
        .iter()
        .map(|file| clean(load(SourceFile::hashed(file))))
        .collect();
    let report = store(analyze(cleaned));

    let counts = Arc::new(Counts::default());
    let options = Options::new().cache(&cache).callback(Arc::clone(&counts));
    let text = report.compute_with(options).await?;
    println!("input: {} ({} files)", dir.display(), files.len());
    println!("{text}");
    println!(
        "ran={} cached={}",
        counts.ran.load(Ordering::Relaxed),
        counts.cached.load(Ordering::Relaxed)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("incremental: {err}");
            ExitCode::FAILURE
        }
    }
}
