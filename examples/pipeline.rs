//! The load → clean → analyze → store pipeline of dask's "Custom Parallel
//! Workflows", on real files.
//!
//! ```text
//! cargo run --release --example pipeline            # a built-in sample data set
//! cargo run --release --example pipeline -- DIR     # every file in DIR
//! ```
//!
//! Each input file holds one number (a reading) per line. The four steps are
//! ordinary functions marked `#[delayed]`, and the graph is built with the
//! same loops as the Python original:
//!
//! ```text
//! load-a.txt ── clean ──┐
//! load-b.txt ── clean ──┼── analyze ── store
//! load-c.txt ── clean ──┘
//! ```
//!
//! Building it runs nothing. `compute` then reads the files concurrently
//! (`load` is an `async fn` on `tokio::fs`), at most `OPEN_FILES` at once
//! under a `Limit`, cleans each one as soon as it is in (on the blocking
//! pool: parsing is CPU work that must not stall the loads), analyzes once all
//! are clean, and writes the report. A read that fails with a transient
//! error (interrupted, timed out) is retried twice with a backoff.
//!
//! The output goes into a fresh temporary folder, `delayed-pipeline-XXXXXX`,
//! which is kept when the run succeeds:
//!
//! - Without an argument, a sample data set (12 files of 50,000 readings,
//!   with a few broken lines) is generated into its `data` subfolder.
//! - With a directory, the regular, non-hidden files in it are the input
//!   (subfolders are not searched).
//!
//! The report, `report.txt`, lists per-file and overall statistics and the
//! rejected lines. Beside it the run is drawn: `graph.svg` (or `graph.dot`
//! without Graphviz), `timeline.json` for Perfetto and `timeline.svg`; a
//! progress bar shows on stderr when it is a terminal.
//!
//! Bad lines: `clean` ignores blank lines and `#` comments. Any other line
//! that is not a finite number is rejected: it is left out of the
//! statistics, counted, and listed with its line number in the report. A
//! file that cannot be read (say, it is not UTF-8) fails its `load` node, and
//! with it the whole compute; the error names the file by the node's key,
//! such as ``task `load-a.txt` failed``.

use std::error::Error;
use std::fmt::{self, Write as _};
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use std::sync::Arc;

use delayed::{delayed, Limit, Options, ProgressBar, Retry, Timeline};

const USAGE: &str = "usage: pipeline [DIR]\n\n\
    Summarizes the files of DIR, one number per line, or a built-in sample \
    data set when no DIR is given.";

/// Number of files in the sample data set.
const SAMPLE_FILES: u64 = 12;

/// Readings per sample file.
const SAMPLE_READINGS: usize = 50_000;

/// Rejected lines listed per file in the report; the rest are only counted.
const REJECTED_LISTED: usize = 5;

/// One input file, as `load` read it.
#[derive(Debug)]
struct Document {
    name: String,
    text: String,
}

/// The readings of one file, as `clean` parsed them.
#[derive(Clone, Debug)]
struct Series {
    name: String,
    readings: Vec<f64>,
    rejected: Vec<Rejected>,
}

/// A line that `clean` could not read as a number.
#[derive(Clone, Debug)]
struct Rejected {
    line: usize,
    text: String,
}

/// What `analyze` found: statistics per file and over all files.
#[derive(Clone, Debug)]
struct Analysis {
    files: Vec<FileSummary>,
    total: Stats,
    /// Rejected lines in all files.
    rejected: usize,
}

/// The statistics of one file, and the lines it rejected.
#[derive(Clone, Debug)]
struct FileSummary {
    name: String,
    stats: Stats,
    rejected: Vec<Rejected>,
}

/// Count, sum, mean, spread and range of some readings, computed in one
/// pass with Welford's method.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    count: usize,
    sum: f64,
    mean: f64,
    /// Sum of squared deviations from the mean.
    m2: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn push(&mut self, x: f64) {
        if self.count == 0 {
            (self.min, self.max) = (x, x);
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        self.sum += x;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// The sample standard deviation; zero for fewer than two readings.
    fn std_dev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }
}

impl FromIterator<f64> for Stats {
    fn from_iter<I: IntoIterator<Item = f64>>(readings: I) -> Stats {
        let mut stats = Stats::default();
        readings.into_iter().for_each(|x| stats.push(x));
        stats
    }
}

// ---------------------------------------------------------------------------
// The four steps. Each call builds a node; the bodies run at compute time.
// ---------------------------------------------------------------------------

/// Files open at once: the reads overlap, but a folder of 100,000 files
/// does not open 100,000 descriptors.
static OPEN_FILES: Limit = Limit::new("open-files", 8);

/// Retries reads that failed for a reason that may pass.
fn transient_io() -> Retry {
    Retry::attempts(3)
        .exponential(std::time::Duration::from_millis(50))
        .when(|err| {
            std::error::Error::source(err)
                .and_then(|cause| cause.downcast_ref::<io::Error>())
                .is_some_and(|cause| {
                    matches!(
                        cause.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::TimedOut
                    )
                })
        })
}

/// Reads one file. Async: the reads of up to `OPEN_FILES` files overlap.
#[delayed(limit = OPEN_FILES, retry = transient_io())]
async fn load(path: &Path) -> io::Result<Document> {
    let text = tokio::fs::read_to_string(path).await?;
    Ok(Document {
        name: file_name(path),
        text,
    })
}

/// Parses the readings of one file, rejecting the lines that are not
/// numbers. It borrows the loaded text (`&Document`): nothing is copied.
/// Parsing is CPU work, so it runs off the async workers (`blocking`),
/// which stay free for the loads.
#[delayed(blocking)]
fn clean(doc: &Document) -> Series {
    let mut readings = Vec::new();
    let mut rejected = Vec::new();
    for (index, line) in doc.text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.parse::<f64>() {
            Ok(x) if x.is_finite() => readings.push(x),
            _ => rejected.push(Rejected {
                line: index + 1,
                text: line.to_owned(),
            }),
        }
    }
    Series {
        name: doc.name.clone(),
        readings,
        rejected,
    }
}

/// Summarizes every file, and all of them together. It takes the series by
/// value: nothing else holds them, so they are moved in, not cloned.
#[delayed(blocking)]
fn analyze(series: Vec<Series>) -> Analysis {
    let total = series
        .iter()
        .flat_map(|s| s.readings.iter().copied())
        .collect();
    let rejected = series.iter().map(|s| s.rejected.len()).sum();
    let files = series
        .into_iter()
        .map(|s| FileSummary {
            stats: s.readings.into_iter().collect(),
            name: s.name,
            rejected: s.rejected,
        })
        .collect();
    Analysis {
        files,
        total,
        rejected,
    }
}

/// Writes the report into `dir` and returns its path.
#[delayed]
async fn store(analysis: &Analysis, dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join("report.txt");
    tokio::fs::write(&path, report(analysis)).await?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// The driver.
// ---------------------------------------------------------------------------

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let input = args.next();
    if input.as_ref().is_some_and(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    if args.next().is_some() {
        return Err(USAGE.into());
    }
    // Removed again if anything fails, kept once the report is written.
    let mut out_dir = tempfile::Builder::new()
        .prefix("delayed-pipeline-")
        .tempdir()?;
    let data_dir = match input {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = out_dir.path().join("data");
            write_sample(&dir).await?;
            dir
        }
    };
    let files = list_files(&data_dir).await?;

    let start = Instant::now();
    let loads: Vec<_> = files
        .iter()
        .map(|f| load(f.clone()).named(format!("load-{}", file_name(f))))
        .collect();
    let cleaned: Vec<_> = loads.iter().map(clean).collect();
    let analysis = analyze(cleaned);
    let result = store(&analysis, out_dir.path().to_owned());
    // Like `dask.compute(analysis, result)`: both outputs from one run, with
    // the analysis shared by `store` and by us. A progress bar (on a
    // terminal) and a timeline watch the run.
    let timeline = Arc::new(Timeline::new());
    let options = Options::new()
        .callback(ProgressBar::new())
        .callback(timeline.clone());
    let (analysis, report_path) = delayed::compute_with((analysis, result), options).await?;
    let elapsed = start.elapsed();
    out_dir.disable_cleanup(true);

    println!("input: {}\n", data_dir.display());
    print!("{analysis}");
    println!("\nreport: {}", report_path.display());
    let drawings = draw(&timeline, out_dir.path()).await?;
    for path in drawings {
        println!("wrote: {}", path.display());
    }
    println!(
        "{} files, {} readings and {} rejected lines in {elapsed:.1?}",
        analysis.files.len(),
        analysis.total.count,
        analysis.rejected,
    );
    Ok(())
}

/// Writes the graph as it ran (`graph.svg`, or `graph.dot` without
/// Graphviz) and the timeline (`timeline.json` for Perfetto,
/// `timeline.svg`) into `dir`.
async fn draw(timeline: &Arc<Timeline>, dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let timeline = Arc::clone(timeline);
    let dir = dir.to_owned();
    // Writing files and running Graphviz block: keep them off the runtime.
    let written = tokio::task::spawn_blocking(move || -> io::Result<Vec<PathBuf>> {
        let graph = timeline.graph();
        let picture = match graph.visualize(dir.join("graph.svg")) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                eprintln!("note: {err}");
                graph.visualize(dir.join("graph.dot"))?
            }
            drawn => drawn?,
        };
        let (json, svg) = (dir.join("timeline.json"), dir.join("timeline.svg"));
        timeline.write_json(&json)?;
        timeline.write_svg(&svg)?;
        Ok(vec![picture, json, svg])
    })
    .await??;
    Ok(written)
}

/// The regular, non-hidden files of `dir`, sorted by name.
async fn list_files(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let unreadable = |err| format!("cannot read directory {}: {err}", dir.display());
    let mut entries = tokio::fs::read_dir(dir).await.map_err(unreadable)?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(unreadable)? {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // `metadata` follows symbolic links: a link to a file counts, a
        // broken link is skipped.
        let is_file = tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file());
        if !hidden && is_file {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(format!("{} has no files to process", dir.display()).into());
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------
// The report.
// ---------------------------------------------------------------------------

/// The text of `report.txt`: the table, then the rejected lines.
fn report(analysis: &Analysis) -> String {
    // Writing to a `String` cannot fail, hence the `let _ = writeln!`s.
    let mut text = format!("delayed pipeline report\n\n{analysis}");
    if analysis.rejected > 0 {
        text.push_str("\nrejected lines\n");
    }
    for file in analysis.files.iter().filter(|f| !f.rejected.is_empty()) {
        let _ = writeln!(text, "  {}:", file.name);
        for r in file.rejected.iter().take(REJECTED_LISTED) {
            let _ = writeln!(text, "    line {}: {:?}", r.line, truncate(&r.text, 40));
        }
        let more = file.rejected.len().saturating_sub(REJECTED_LISTED);
        if more > 0 {
            let _ = writeln!(text, "    ... and {more} more");
        }
    }
    text
}

fn truncate(text: &str, max_chars: usize) -> &str {
    text.char_indices()
        .nth(max_chars)
        .map_or(text, |(end, _)| &text[..end])
}

/// The summary table: one row per file and a total.
impl fmt::Display for Analysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .files
            .iter()
            .map(|file| file.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("total".len());
        writeln!(
            f,
            "{:<width$} {:>9} {:>8} {:>13} {:>10} {:>10} {:>10} {:>10}",
            "file", "readings", "rejected", "sum", "mean", "std dev", "min", "max",
        )?;
        for file in &self.files {
            row(f, &file.name, width, &file.stats, file.rejected.len())?;
        }
        row(f, "total", width, &self.total, self.rejected)
    }
}

fn row(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    width: usize,
    stats: &Stats,
    rejected: usize,
) -> fmt::Result {
    write!(f, "{name:<width$} {:>9} {rejected:>8}", stats.count)?;
    if stats.count == 0 {
        return writeln!(
            f,
            " {:>13} {:>10} {:>10} {:>10} {:>10}",
            "-", "-", "-", "-", "-"
        );
    }
    writeln!(
        f,
        " {:>13.3} {:>10.4} {:>10.4} {:>10.3} {:>10.3}",
        stats.sum,
        stats.mean,
        stats.std_dev(),
        stats.min,
        stats.max,
    )
}

// ---------------------------------------------------------------------------
// The sample data set.
// ---------------------------------------------------------------------------

/// Writes `SAMPLE_FILES` files of readings into `dir`: each sensor has its
/// own level and noise, and now and then a reading is missing ("n/a").
async fn write_sample(dir: &Path) -> io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    for sensor in 1..=SAMPLE_FILES {
        let path = dir.join(format!("sensor-{sensor:02}.txt"));
        tokio::fs::write(path, sample_readings(sensor)).await?;
    }
    Ok(())
}

fn sample_readings(sensor: u64) -> String {
    let mut rng = Lcg(sensor);
    let level = 15.0 + sensor as f64;
    let spread = 1.0 + sensor as f64 / 4.0;
    let mut text = format!("# sensor {sensor:02}: one reading per line\n");
    for _ in 0..SAMPLE_READINGS {
        if rng.uniform() < 1e-4 {
            text.push_str("n/a\n");
        } else {
            let _ = writeln!(text, "{:.3}", level + spread * rng.normal());
        }
    }
    text
}

/// A linear congruential generator (Knuth's MMIX constants): deterministic
/// and good enough for sample data.
struct Lcg(u64);

impl Lcg {
    /// Uniform in [0, 1), from the top 53 bits.
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Roughly standard normal: the sum of 12 uniforms, minus 6.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}
