//! Cancellation on drop: when every compute waiting on a node is dropped,
//! and it was not persisted, its work stops; a later compute starts it
//! again, and finished results stay.

mod common;

use std::time::Duration;

use common::{Counter, Probe};
use delayed::{delayed, Delayed};
use tokio::time::{sleep, timeout, Instant};

#[delayed]
async fn slow(probe: Probe, ms: u64, x: u64) -> u64 {
    probe.sleep(Duration::from_millis(ms)).await;
    x
}

#[delayed]
fn counted(runs: Counter, x: u64) -> u64 {
    runs.bump();
    x + 1
}

#[tokio::test(start_paused = true)]
async fn dropping_the_compute_aborts_the_running_task() {
    let probe = Probe::default();
    let node = slow(probe.clone(), 100, 7);

    assert!(timeout(Duration::from_millis(10), node.compute())
        .await
        .is_err());
    // The abort is processed by the runtime on its next turn.
    tokio::task::yield_now().await;
    assert_eq!(probe.started.get(), 1);
    assert_eq!(probe.dropped.get(), 1, "the task's future was dropped");

    sleep(Duration::from_millis(500)).await;
    assert_eq!(probe.finished.get(), 0, "the aborted task never finished");
}

#[tokio::test(start_paused = true)]
async fn a_later_compute_starts_the_cancelled_node_again() {
    let probe = Probe::default();
    let node = slow(probe.clone(), 100, 7);

    assert!(timeout(Duration::from_millis(10), node.compute())
        .await
        .is_err());
    let start = Instant::now();
    assert_eq!(node.compute().await.unwrap(), 7);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "the run started afresh"
    );
    assert_eq!(probe.started.get(), 2);
    assert_eq!(probe.finished.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn finished_results_stay_after_a_cancel() {
    let runs = Counter::new();
    let probe = Probe::default();
    let first = counted(runs.clone(), 1);
    let second = slow(probe.clone(), 100, 0);
    let both = delayed::join((&first, &second)).map(|(a, b)| a + b);

    assert!(timeout(Duration::from_millis(10), both.compute())
        .await
        .is_err());
    assert_eq!(runs.get(), 1);

    assert_eq!(both.compute().await.unwrap(), 2);
    assert_eq!(runs.get(), 1, "the finished input did not run again");
    assert_eq!(probe.started.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn queued_dependents_never_start() {
    let probe = Probe::default();
    let runs = Counter::new();
    let upstream = slow(probe.clone(), 100, 1);
    let downstream = counted(runs.clone(), counted(runs.clone(), &upstream));

    assert!(timeout(Duration::from_millis(10), downstream.compute())
        .await
        .is_err());
    sleep(Duration::from_millis(500)).await;
    assert_eq!(probe.finished.get(), 0);
    assert_eq!(runs.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn work_another_compute_needs_goes_on() {
    let probe = Probe::default();
    let node = slow(probe.clone(), 100, 5);

    let keeper = tokio::spawn(node.compute());
    tokio::task::yield_now().await;
    assert!(timeout(Duration::from_millis(10), node.compute())
        .await
        .is_err());

    assert_eq!(keeper.await.unwrap().unwrap(), 5);
    assert_eq!(probe.started.get(), 1);
    assert_eq!(probe.dropped.get(), 1);
    assert_eq!(probe.finished.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn shared_input_survives_when_one_of_two_outputs_is_dropped() {
    let probe = Probe::default();
    let runs = Counter::new();
    let shared = slow(probe.clone(), 100, 1);
    let kept = counted(runs.clone(), &shared);
    let dropped = counted(runs.clone(), &shared);

    let keeper = tokio::spawn(kept.compute());
    tokio::task::yield_now().await;
    assert!(timeout(Duration::from_millis(10), dropped.compute())
        .await
        .is_err());

    assert_eq!(keeper.await.unwrap().unwrap(), 2);
    assert_eq!(probe.started.get(), 1);
    assert_eq!(runs.get(), 1, "only the kept output ran");
}

#[tokio::test(start_paused = true)]
async fn persisted_work_goes_on_without_a_waiter() {
    let probe = Probe::default();
    let node = slow(probe.clone(), 100, 3).persist();

    // A compute that is dropped does not stop persisted work.
    assert!(timeout(Duration::from_millis(10), node.compute())
        .await
        .is_err());
    sleep(Duration::from_millis(200)).await;
    assert_eq!(probe.finished.get(), 1);

    let start = Instant::now();
    assert_eq!(node.compute().await.unwrap(), 3);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the persisted result was kept"
    );
    assert_eq!(probe.started.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn persist_runs_even_if_the_handle_is_dropped() {
    let probe = Probe::default();
    let _ = slow(probe.clone(), 100, 3).persist();
    sleep(Duration::from_millis(200)).await;
    assert_eq!(probe.finished.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn select_picks_the_timer_and_cancels_the_graph() {
    let probe = Probe::default();
    let node = slow(probe.clone(), 1_000, 1);
    tokio::select! {
        _ = node.compute() => panic!("the graph should be slower than the timer"),
        _ = sleep(Duration::from_millis(50)) => {}
    }
    tokio::task::yield_now().await;
    assert_eq!(probe.dropped.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_a_multi_thread_runtime() {
    let probe = Probe::default();
    let node = slow(probe.clone(), 3_600_000, 1);

    let task = tokio::spawn({
        let node = node.clone();
        async move { node.compute().await }
    });
    wait_until(|| probe.started.get() == 1).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    // The abort reaches the node's task on another worker soon after.
    wait_until(|| probe.dropped.get() == 1).await;
    assert_eq!(probe.finished.get(), 0);
}

/// Yields until `done` holds; fails the test after ten seconds.
async fn wait_until(done: impl Fn() -> bool) {
    timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("condition not reached in time");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn work_stopped_by_a_runtime_shutdown_starts_again_on_the_next_compute() {
    let probe = Probe::default();
    let node = slow(probe.clone(), 10, 4);

    let first = runtime();
    first.block_on(async {
        let _ = node.persist();
        wait_until(|| probe.started.get() == 1).await;
    });
    drop(first);
    assert_eq!(
        probe.dropped.get(),
        1,
        "the shutdown dropped the running task"
    );

    let second = runtime();
    assert_eq!(second.block_on(node.compute()).unwrap(), 4);
    assert_eq!(probe.started.get(), 2);
    assert_eq!(probe.finished.get(), 1);
}

#[test]
fn a_waiter_on_another_runtime_starts_the_work_again_after_a_shutdown() {
    let probe = Probe::default();
    let node = slow(probe.clone(), 3_600_000, 4);
    let top = delayed::join((&node, Delayed::value(1_u64))).map(|(a, b)| a + b);

    let first = runtime();
    first.block_on(async {
        let _ = node.persist();
        wait_until(|| probe.started.get() == 1).await;
    });
    let (registered, is_registered) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn({
        let top = top.clone();
        move || {
            // Paused: the hour-long work, started again here, takes no time.
            let paused = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            paused.block_on(async move {
                let mut compute = std::pin::pin!(top.compute());
                assert!(futures::poll!(&mut compute).is_pending());
                registered.send(()).unwrap();
                compute.await
            })
        }
    });
    // Shut the first runtime down once the waiter is registered on `top`:
    // the waiter, still running, starts the interrupted work again.
    is_registered.recv().unwrap();
    drop(first);
    assert_eq!(waiter.join().unwrap().unwrap(), 5);
    assert_eq!(probe.started.get(), 2);
    assert_eq!(probe.finished.get(), 1);
}
