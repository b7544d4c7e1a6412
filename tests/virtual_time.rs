//! Under tokio's paused clock a graph takes exactly its critical path: the
//! library adds no timers or delays of its own.

use std::time::Duration;

use delayed::delayed;
use tokio::time::{sleep, Instant};

#[delayed]
async fn load(i: u64) -> Vec<u64> {
    sleep(Duration::from_millis(20)).await;
    vec![i, i + 1]
}

#[delayed]
async fn clean(data: &[u64]) -> u64 {
    sleep(Duration::from_millis(1)).await;
    data.iter().sum()
}

#[delayed]
fn analyze(parts: Vec<u64>) -> u64 {
    parts.iter().sum()
}

#[delayed]
async fn store(total: u64) -> String {
    sleep(Duration::from_millis(5)).await;
    format!("total={total}")
}

#[tokio::test(start_paused = true)]
async fn pipeline_takes_exactly_its_critical_path() {
    let loads: Vec<_> = (0..1000).map(load).collect();
    let cleaned: Vec<_> = loads.iter().map(clean).collect();
    let analysis = analyze(cleaned);
    let result = store(analysis);

    let start = Instant::now();
    let report = result.compute().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(26));
    let expected: u64 = (0..1000).map(|i| 2 * i + 1).sum();
    assert_eq!(report, format!("total={expected}"));
}

#[delayed]
async fn wait(ms: u64, after: Vec<u64>) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    ms + after.iter().sum::<u64>()
}

#[tokio::test(start_paused = true)]
async fn uneven_branches_take_the_longest_path() {
    // a(10) -> b(30) -> d(5); a -> c(50) -> d: critical path 10 + 50 + 5.
    let a = wait(10, Vec::<u64>::new());
    let b = wait(30, vec![a.clone()]);
    let c = wait(50, vec![a.clone()]);
    let d = wait(5, vec![b, c]);

    let start = Instant::now();
    assert_eq!(d.compute().await.unwrap(), 5 + (30 + 10) + (50 + 10));
    assert_eq!(start.elapsed(), Duration::from_millis(65));
}
