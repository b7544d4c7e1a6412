//! The cache across real processes: a pipeline killed with `kill -9`
//! midway and run again runs only the nodes that had not finished, and
//! two processes sharing one cache directory at once never corrupt it.
//!
//! The test binary runs itself as the child (`current_exe`), selecting
//! the `child` test, which does the child's work only when
//! `DELAYED_CACHE_CHILD` is set.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use delayed::cache::Cache;
use delayed::{delayed, Callback, Delayed, Options, Outcome, TaskFinished};

/// The chain's length.
const STEPS: u64 = 8;

/// Appends `line` to the log at `path`, as one write.
fn log(path: &str, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// One step of the chain: logs that it runs (to the run's log), and in a
/// run told to stop at it, waits there to be killed. The log and the stop
/// come from the environment, so that they are no part of the key.
#[delayed(cache)]
fn step(prev: u64, i: u64) -> u64 {
    let log_path = std::env::var("DELAYED_CACHE_LOG").unwrap();
    let stop_at: u64 = std::env::var("DELAYED_CACHE_STOP")
        .map(|n| n.parse().unwrap())
        .unwrap_or(u64::MAX);
    log(&log_path, &i.to_string());
    if i == stop_at {
        loop {
            std::thread::park();
        }
    }
    prev * 31 + i
}

/// A leaf of the wide graph.
#[delayed(cache)]
fn leaf(i: u64, tag: String) -> Vec<u64> {
    (0..200)
        .map(|j| (i * 1_000 + j) ^ tag.len() as u64)
        .collect()
}

#[delayed(cache)]
fn sum(parts: Vec<Vec<u64>>) -> u64 {
    parts.iter().flatten().sum()
}

#[derive(Default)]
struct Counts {
    ran: AtomicU64,
    cached: AtomicU64,
}

impl Callback for Counts {
    fn task_finished(&self, task: &TaskFinished) {
        match task.outcome() {
            Outcome::Done => self.ran.fetch_add(1, Ordering::SeqCst),
            Outcome::Cached => self.cached.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
    }
}

/// The child's work: `chain` (sequential, so steps finish in order) or
/// `wide` (parallel). Prints `ran=N cached=M result=R`.
#[test]
fn child() {
    let Ok(dir) = std::env::var("DELAYED_CACHE_CHILD") else {
        return;
    };
    let mode = std::env::var("DELAYED_CACHE_MODE").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = Cache::dir(&dir).unwrap();
    let counts = Arc::new(Counts::default());
    let options = Options::new().cache(&cache).callback(Arc::clone(&counts));
    let result = if mode == "chain" {
        let mut node = Delayed::value(1_u64);
        for i in 0..STEPS {
            node = step(node, i);
        }
        rt.block_on(node.compute_with(options.sequential()))
            .unwrap()
    } else {
        let leaves: Vec<_> = (0..64).map(|i| leaf(i, "shared".to_string())).collect();
        rt.block_on(sum(leaves).compute_with(options)).unwrap()
    };
    println!(
        "ran={} cached={} result={result}",
        counts.ran.load(Ordering::SeqCst),
        counts.cached.load(Ordering::SeqCst)
    );
}

/// A command that runs this binary's `child` test with `env`.
fn child_command(dir: &Path, mode: &str, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("DELAYED_CACHE_CHILD", dir)
        .env("DELAYED_CACHE_MODE", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// The child's summary line, from its output.
fn summary(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let line = text
        .lines()
        .find_map(|line| line.find("ran=").map(|at| &line[at..]))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    line.to_string()
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "delayed-cache-processes-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn logged(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect()
}

#[test]
fn a_pipeline_killed_midway_reruns_only_the_unfinished_nodes() {
    let dir = fresh("resume");
    let cache = dir.join("cache");
    let first_log = dir.join("first.log");
    let second_log = dir.join("second.log");
    let env = |log: &Path| vec![("DELAYED_CACHE_LOG", log.display().to_string())];

    // The first run stops inside step 4, after steps 0 to 3 finished.
    let mut first_env = env(&first_log);
    first_env.push(("DELAYED_CACHE_STOP", "4".to_string()));
    let mut first = child_command(&cache, "chain", &first_env).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !logged(&first_log).contains(&4) {
        assert!(Instant::now() < deadline, "the child never reached step 4");
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the child ended early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL: no destructor, no flush, nothing runs after this.
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(logged(&first_log), vec![0, 1, 2, 3, 4]);

    let second = child_command(&cache, "chain", &env(&second_log))
        .output()
        .unwrap();
    assert!(second.status.success());
    assert_eq!(
        logged(&second_log),
        vec![4, 5, 6, 7],
        "only the unfinished steps ran"
    );
    let mut expected = 1_u64;
    for i in 0..STEPS {
        expected = expected * 31 + i;
    }
    assert_eq!(
        summary(&second.stdout),
        format!("ran=4 cached=4 result={expected}")
    );

    // A third run finds everything.
    let third_log = dir.join("third.log");
    let third = child_command(&cache, "chain", &env(&third_log))
        .output()
        .unwrap();
    assert!(third.status.success());
    assert!(logged(&third_log).is_empty());
    assert_eq!(
        summary(&third.stdout),
        format!("ran=0 cached={STEPS} result={expected}")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn two_processes_sharing_one_directory_never_corrupt_it() {
    let dir = fresh("shared");
    let cache = dir.join("cache");
    let children: Vec<_> = (0..2)
        .map(|_| child_command(&cache, "wide", &[]).spawn().unwrap())
        .collect();
    let expected: u64 = (0..64_u64)
        .flat_map(|i| (0..200).map(move |j| (i * 1_000 + j) ^ 6))
        .sum();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        assert!(summary(&output.stdout).ends_with(&format!("result={expected}")));
    }
    // Every entry both wrote is whole: a third process reads them all.
    let third = child_command(&cache, "wide", &[]).output().unwrap();
    assert!(third.status.success());
    assert_eq!(
        summary(&third.stdout),
        format!("ran=0 cached=65 result={expected}")
    );
    std::fs::remove_dir_all(&dir).ok();
}
