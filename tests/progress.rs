#![cfg(feature = "progress")]
//! `ProgressBar`: what it counts for one compute, for failed, dropped and
//! overlapping computes, and where it draws. Bars here are hidden, except
//! in a child process whose stderr is a pipe.

use std::io::IsTerminal;
use std::process::{Command, Stdio};
use std::time::Duration;

use delayed::{delayed, Delayed, Options, ProgressBar, TaskState};

#[delayed]
async fn nap(ms: u64, x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    x
}

#[delayed]
fn total(parts: Vec<u64>) -> u64 {
    parts.iter().sum()
}

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
fn fail_if_one(x: u64) -> Result<u64, std::fmt::Error> {
    if x == 1 {
        Err(std::fmt::Error)
    } else {
        Ok(x)
    }
}

fn with(bar: &ProgressBar) -> Options {
    Options::new().callback(bar.clone())
}

/// Eight naps of different lengths and their total: nine tasks (the node
/// that collects the naps into a `Vec` is the crate's, not a task).
fn naps(offset: u64) -> Delayed<u64> {
    total(
        (0..8)
            .map(|i| nap(10 * (i % 3), offset + i))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_every_task_of_a_graph() {
    let result = naps(0);
    let to_run = result.graph().count(TaskState::Waiting) as u64;
    assert_eq!(to_run, 9);
    let bar = ProgressBar::hidden();
    assert_eq!((bar.position(), bar.length()), (0, 0));
    assert_eq!(result.compute_with(with(&bar)).await.unwrap(), 28);
    assert_eq!(bar.length(), to_run);
    assert_eq!(bar.position(), to_run);
    assert_eq!(bar.failures(), 0);
    assert!(bar.is_finished());
}

#[tokio::test]
async fn literal_and_computed_nodes_are_not_counted() {
    let x = inc(inc(1));
    x.compute().await.unwrap();
    let y = inc(inc(&x));
    let bar = ProgressBar::hidden();
    assert_eq!(y.compute_with(with(&bar)).await.unwrap(), 5);
    assert_eq!((bar.position(), bar.length()), (2, 2));

    // Everything is computed already: an empty bar, finished at once.
    y.compute_with(with(&bar)).await.unwrap();
    assert_eq!((bar.position(), bar.length()), (0, 0));
    assert!(bar.is_finished());
}

#[tokio::test]
async fn a_failed_graph_finishes_short_and_counts_the_failure() {
    // inc runs, fail_if_one fails, and the two incs after it never run.
    let result = inc(inc(fail_if_one(inc(0))));
    let bar = ProgressBar::hidden();
    let err = result.compute_with(with(&bar)).await.unwrap_err();
    assert!(err.is_failed());
    assert_eq!(bar.length(), 4);
    assert_eq!(bar.position(), 2);
    assert_eq!(bar.failures(), 1);
    assert!(bar.is_finished());
}

#[tokio::test]
async fn a_panic_counts_as_a_failure() {
    let boom = Delayed::value(1_u64).map(|_| -> u64 { panic!("boom") });
    let bar = ProgressBar::hidden();
    assert!(boom.compute_with(with(&bar)).await.unwrap_err().is_panic());
    assert_eq!((bar.position(), bar.length(), bar.failures()), (1, 1, 1));
    assert!(bar.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_compute_finishes_the_bar() {
    let slow = inc(nap(1_000, 1));
    let bar = ProgressBar::hidden();
    let timeout = tokio::time::timeout(Duration::from_millis(10), slow.compute_with(with(&bar)));
    assert!(timeout.await.is_err());
    assert!(bar.is_finished());
    assert_eq!((bar.position(), bar.length()), (0, 2));
    // The aborted nap reports `Cancelled` late; it does not count.
    tokio::task::yield_now().await;
    assert_eq!((bar.position(), bar.failures()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn overlapping_computes_share_one_bar() {
    let bar = ProgressBar::hidden();
    let (a, b) = tokio::join!(
        naps(0).compute_with(with(&bar)),
        inc(nap(100, 1)).compute_with(with(&bar)),
    );
    assert_eq!((a.unwrap(), b.unwrap()), (28, 2));
    assert_eq!(bar.length(), 9 + 2);
    assert_eq!(bar.position(), 9 + 2);
    assert!(bar.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_task_shared_by_overlapping_computes_counts_once() {
    #[delayed]
    fn add(a: u64, b: u64) -> u64 {
        a + b
    }

    let shared = nap(10, 1);
    let bar = ProgressBar::hidden();
    let (a, b) = tokio::join!(
        add(&shared, 1).compute_with(with(&bar)),
        add(&shared, 2).compute_with(with(&bar)),
    );
    assert_eq!((a.unwrap(), b.unwrap()), (2, 3));
    // Both computes wait for the nap to run: the bar hears it once and
    // counts it once: three tasks.
    assert_eq!((bar.position(), bar.length()), (3, 3));
    assert!(bar.is_finished());
}

#[tokio::test(start_paused = true)]
async fn an_overlapping_failure_fails_the_shared_bar_at_its_end() {
    let bar = ProgressBar::hidden();
    let (ok, bad) = tokio::join!(
        naps(0).compute_with(with(&bar)),
        fail_if_one(1).compute_with(with(&bar)),
    );
    assert_eq!(ok.unwrap(), 28);
    assert!(bad.is_err());
    assert_eq!((bar.position(), bar.length(), bar.failures()), (10, 10, 1));
    assert!(bar.is_finished());
}

#[tokio::test]
async fn a_compute_after_the_last_one_finished_starts_a_new_bar() {
    let bar = ProgressBar::hidden();
    fail_if_one(1).compute_with(with(&bar)).await.unwrap_err();
    assert_eq!((bar.position(), bar.length(), bar.failures()), (1, 1, 1));
    inc(inc(inc(1))).compute_with(with(&bar)).await.unwrap();
    assert_eq!((bar.position(), bar.length(), bar.failures()), (3, 3, 0));
    assert!(bar.is_finished());
}

#[test]
fn where_bars_draw() {
    assert!(ProgressBar::hidden().is_hidden());
    assert!(!ProgressBar::forced().is_hidden());
    if !std::io::stderr().is_terminal() {
        assert!(ProgressBar::new().is_hidden());
        assert!(ProgressBar::default().is_hidden());
    }
}

/// Which bar `child_computes_with_a_bar` uses, when run as a child.
const CHILD: &str = "DELAYED_PROGRESS_TEST_CHILD";

/// Runs `child_computes_with_a_bar` in a child process whose stderr is a
/// pipe, and returns what it wrote there.
fn child_stderr(bar: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_computes_with_a_bar", "--test-threads=1"])
        .env(CHILD, bar)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn new_draws_nothing_when_stderr_is_not_a_terminal() {
    let stderr = child_stderr("new");
    assert!(!stderr.contains("tasks"), "{stderr:?}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

#[test]
fn forced_draws_even_when_stderr_is_not_a_terminal() {
    let stderr = child_stderr("forced");
    assert!(stderr.contains("9/9 tasks"), "{stderr:?}");
    assert!(stderr.contains("done in"), "{stderr:?}");
}

#[test]
fn a_failed_bar_ends_with_the_failing_task_and_its_error() {
    let stderr = child_stderr("failing");
    let last = stderr.rsplit('\r').next().unwrap_or_default();
    assert!(
        stderr.contains("failed: task `bad` failed: invalid digit found in string"),
        "{stderr:?}"
    );
    assert!(last.contains("1/2 tasks"), "{last:?}");
}

#[tokio::test]
async fn two_hundred_fetches_are_two_hundred_tasks() {
    // `compute` of a tuple holding a `Vec`: neither the `Vec` nor the
    // tuple is a task, and neither is the literal each fetch is given.
    let fetches: Vec<_> = (0_u64..200).map(|i| inc(Delayed::value(i))).collect();
    let bar = ProgressBar::hidden();
    let (all, one) = delayed::compute_with((fetches, inc(0)), with(&bar))
        .await
        .unwrap();
    assert_eq!((all.len(), one), (200, 1));
    assert_eq!((bar.position(), bar.length()), (201, 201));
}

/// Not a test on its own: does nothing unless `child_stderr` runs it.
#[test]
fn child_computes_with_a_bar() {
    let (bar, failing) = match std::env::var(CHILD).as_deref() {
        Ok("new") => (ProgressBar::new(), false),
        Ok("forced") => (ProgressBar::forced(), false),
        Ok("failing") => (ProgressBar::forced(), true),
        _ => return,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    if failing {
        #[delayed]
        fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
            s.parse()
        }
        let bad = parse("x".to_string()).named("bad");
        let result = runtime.block_on(inc(bad).compute_with(with(&bar)));
        assert!(result.is_err());
        return;
    }
    let result = runtime.block_on(naps(0).compute_with(with(&bar)));
    assert_eq!(result.unwrap(), 28);
    assert_eq!((bar.position(), bar.length()), (9, 9));
}
