//! Concurrency: inputs are awaited concurrently, independent branches
//! overlap, and blocking work never stalls a runtime thread.

use std::sync::mpsc;
use std::time::Duration;

use delayed::{delayed, Delayed};
use tokio::time::{sleep, Instant};

#[delayed]
async fn nap(ms: u64, x: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    x
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[tokio::test(start_paused = true)]
async fn inputs_are_awaited_concurrently() {
    let sum = add(nap(100, 1), nap(100, 2));
    let start = Instant::now();
    assert_eq!(sum.compute().await.unwrap(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn two_hundred_sleeps_overlap() {
    let naps: Vec<_> = (0..200).map(|i| nap(200, i)).collect();
    let start = Instant::now();
    assert_eq!(total(naps).compute().await.unwrap(), (0..200).sum::<u64>());
    assert_eq!(start.elapsed(), Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sleeps_overlap_in_real_time() {
    let naps: Vec<_> = (0..200).map(|i| nap(200, i)).collect();
    let start = std::time::Instant::now();
    total(naps).compute().await.unwrap();
    let elapsed = start.elapsed();
    // Sequentially this would take 40 s; overlapped it takes one nap.
    assert!(elapsed >= Duration::from_millis(200));
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

/// Waits for a message from an async node. If this blocking body ran on the
/// runtime thread of a current-thread runtime, the async sender could never
/// run, and the wait would time out.
#[delayed(blocking)]
fn wait_for(
    rx: std::sync::Arc<std::sync::Mutex<mpsc::Receiver<u64>>>,
) -> Result<u64, mpsc::RecvTimeoutError> {
    rx.lock().unwrap().recv_timeout(Duration::from_secs(30))
}

#[delayed]
async fn send(tx: mpsc::SyncSender<u64>, x: u64) -> u64 {
    // Let the blocking body start first.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tx.send(x).unwrap();
    x
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_work_does_not_stall_a_current_thread_runtime() {
    let (tx, rx) = mpsc::sync_channel(1);
    let receiver = wait_for(std::sync::Arc::new(std::sync::Mutex::new(rx)));
    let sender = send(tx, 9);
    let (received, sent) = delayed::compute((receiver, sender)).await.unwrap();
    assert_eq!((received, sent), (9, 9));
}

#[delayed(blocking)]
fn busy(id: u64, barrier: std::sync::Arc<std::sync::Barrier>) -> u64 {
    // Both blocking bodies must run at once to pass the barrier.
    barrier.wait();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_bodies_run_in_parallel() {
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        return;
    }
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let both = add(busy(1, barrier.clone()), busy(2, barrier));
    let result = tokio::time::timeout(Duration::from_secs(30), both.compute()).await;
    assert_eq!(
        result.expect("both blocking bodies ran at once").unwrap(),
        3
    );
}

#[tokio::test(flavor = "current_thread")]
async fn computes_on_a_current_thread_runtime() {
    let leaves: Vec<_> = (0..1_000)
        .map(|i| Delayed::value(i).map(|x: u64| x * 2))
        .collect();
    assert_eq!(
        total(leaves).compute().await.unwrap(),
        (0..1_000).map(|x| x * 2).sum::<u64>()
    );
}

#[delayed(blocking)]
fn square(x: u64) -> u64 {
    x * x
}

/// A blocking body that computes a nested graph of blocking bodies.
#[delayed(blocking)]
fn nested(i: u64) -> Result<u64, delayed::Error> {
    let inner: Vec<_> = (0..4).map(|j| square(i * 10 + j)).collect();
    total(inner).compute_blocking()
}

#[test]
fn blocking_bodies_can_compute_nested_blocking_graphs() {
    // More outer bodies than cores: each holds a lane while it waits on its
    // nested graph, which needs lanes too. Waiting gives the lane back.
    let outers: Vec<_> = (0..8).map(nested).collect();
    let expected: u64 = (0..8)
        .flat_map(|i| (0..4).map(move |j| (i * 10 + j) * (i * 10 + j)))
        .sum();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(total(outers).compute_blocking()));
    let result = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("nested blocking graphs deadlocked");
    assert_eq!(result.unwrap(), expected);
}

#[delayed]
async fn fan_out(n: u64) -> Result<u64, delayed::Error> {
    // A task that builds and computes a graph of its own.
    let parts: Vec<_> = (0..n).map(|i| nap(1, i)).collect();
    total(parts).compute().await
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tasks_can_compute_nested_graphs_on_a_current_thread_runtime() {
    let outer: Vec<_> = (1..=10).map(fan_out).collect();
    let start = Instant::now();
    let sum = total(outer).compute().await.unwrap();
    assert_eq!(sum, (1..=10).map(|n| n * (n - 1) / 2).sum::<u64>());
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(1),
        "nested graphs overlap"
    );
}
