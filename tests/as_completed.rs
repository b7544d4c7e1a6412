//! Results as they finish: `as_completed` yields each node's own result
//! with its index in finishing order, `first(n)` waits for the first few,
//! `race` and `race_ok` for the first one; what only they needed is
//! cancelled when they are dropped or return, and the set is one compute
//! for its callbacks.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fail, Counter, Probe};
use delayed::{delayed, Callback, Delayed, Error, Graph, Limit, Options};
use futures::{FutureExt, Stream, StreamExt};
use tokio::time::{sleep, timeout, Instant};

#[delayed]
async fn slow(probe: Probe, secs: u64) -> u64 {
    probe.sleep(Duration::from_secs(secs)).await;
    secs
}

/// Sleeps `secs`, then succeeds with `secs` or fails.
#[delayed]
async fn after(secs: u64, ok: bool) -> Result<u64, std::io::Error> {
    sleep(Duration::from_secs(secs)).await;
    if ok {
        Ok(secs)
    } else {
        Err(std::io::Error::other(format!("down after {secs}")))
    }
}

#[delayed]
fn boom(x: u64) -> u64 {
    panic!("boom {x}")
}

#[delayed]
fn counted(runs: Counter, x: u64) -> u64 {
    runs.bump();
    x
}

#[delayed]
fn plus(x: u64, y: u64) -> u64 {
    x + y
}

/// Records the starts and finishes of computes.
#[derive(Default)]
struct Computes {
    starts: Mutex<Vec<usize>>,
    finishes: Mutex<Vec<String>>,
}

impl Computes {
    fn starts(&self) -> Vec<usize> {
        self.starts.lock().unwrap().clone()
    }

    fn finishes(&self) -> Vec<String> {
        self.finishes.lock().unwrap().clone()
    }
}

impl Callback for Computes {
    fn start(&self, graph: &Graph) {
        self.starts.lock().unwrap().push(graph.nodes().len());
    }

    fn finish(&self, result: Result<(), &Error>) {
        let line = match result {
            Ok(()) => "ok".to_string(),
            Err(err) if err.is_cancelled() => "cancelled".to_string(),
            Err(err) => format!("failed {}", err.key()),
        };
        self.finishes.lock().unwrap().push(line);
    }
}

#[tokio::test(start_paused = true)]
async fn results_come_in_finishing_order_each_at_its_own_time() {
    let probe = Probe::default();
    let nodes: Vec<_> = [3, 1, 2].map(|secs| slow(probe.clone(), secs)).into();
    let start = Instant::now();
    let mut done = delayed::as_completed(&nodes);
    assert_eq!(done.size_hint(), (3, Some(3)));
    let mut seen = Vec::new();
    while let Some((index, result)) = done.next().await {
        seen.push((index, result.unwrap(), start.elapsed().as_secs()));
        assert_eq!(done.remaining(), 3 - seen.len());
    }
    assert_eq!(seen, [(1, 1, 1), (2, 2, 2), (0, 3, 3)]);
    assert!(done.is_empty());
    assert!(futures::stream::FusedStream::is_terminated(&done));
    assert!(done.next().await.is_none(), "fused: `None` again");
    assert_eq!(probe.started.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn nothing_starts_before_the_first_poll() {
    let probe = Probe::default();
    let mut done = delayed::as_completed([slow(probe.clone(), 1)]);
    sleep(Duration::from_secs(5)).await;
    assert_eq!(probe.started.get(), 0, "the stream is lazy");
    let start = Instant::now();
    assert_eq!(done.next().await.unwrap().1.unwrap(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn each_item_has_its_own_error_or_panic_and_the_others_go_on() {
    let nodes = vec![
        after(2, true),
        fail(1).named("failing"),
        boom(7).named("panicking"),
        after(1, false).named("down"),
    ];
    let mut results: Vec<_> = delayed::as_completed(nodes).collect().await;
    results.sort_by_key(|(index, _)| *index);
    let indices: Vec<usize> = results.iter().map(|(index, _)| *index).collect();
    assert_eq!(indices, [0, 1, 2, 3]);
    assert_eq!(*results[0].1.as_ref().unwrap(), 2);
    let failed = results[1].1.as_ref().unwrap_err();
    assert!(failed.is_failed());
    assert_eq!(failed.key().to_string(), "failing");
    let panicked = results[2].1.as_ref().unwrap_err();
    assert!(panicked.is_panic(), "{panicked:?}");
    assert_eq!(panicked.panic_message(), Some("boom 7"));
    let down = results[3].1.as_ref().unwrap_err();
    assert_eq!(down.report(), "task `down` failed: down after 1");
}

#[tokio::test(start_paused = true)]
async fn first_n_returns_at_the_nth_finish_and_the_rest_run_on() {
    let probe = Probe::default();
    let nodes: Vec<_> = [4, 1, 3, 2].map(|secs| slow(probe.clone(), secs)).into();
    let start = Instant::now();
    let mut done = delayed::as_completed(&nodes);

    let two = done.first(2).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2), "not later");
    let got: Vec<(usize, u64)> = two.into_iter().map(|(i, r)| (i, r.unwrap())).collect();
    assert_eq!(got, [(1, 1), (3, 2)]);
    assert_eq!(done.remaining(), 2);

    let (index, result) = done.next().await.unwrap();
    assert_eq!((index, result.unwrap()), (2, 3));
    assert_eq!(start.elapsed(), Duration::from_secs(3));

    // More than remain: what is left.
    let rest = done.first(10).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].0, 0);
    assert_eq!(start.elapsed(), Duration::from_secs(4));
    assert!(done.first(1).await.is_empty());
    assert_eq!(probe.finished.get(), 4);
}

#[tokio::test(start_paused = true)]
async fn first_zero_starts_nothing() {
    let probe = Probe::default();
    let mut done = delayed::as_completed([slow(probe.clone(), 1)]);
    assert!(done.first(0).await.is_empty());
    tokio::task::yield_now().await;
    assert_eq!(probe.started.get(), 0);
    assert_eq!(done.remaining(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_first_dropped_midway_loses_nothing() {
    let nodes: Vec<_> = [1, 2, 5].map(|secs| after(secs, true)).into();
    let start = Instant::now();
    let mut done = delayed::as_completed(&nodes);
    assert!(timeout(Duration::from_millis(2500), done.first(3))
        .await
        .is_err());
    assert_eq!(done.remaining(), 3, "the two gathered are still there");
    let (index, _) = done.next().now_or_never().flatten().unwrap();
    assert_eq!(index, 0, "yielded at once, in finishing order");
    let (index, _) = done.next().now_or_never().flatten().unwrap();
    assert_eq!(index, 1);
    let (index, _) = done.next().await.unwrap();
    assert_eq!(index, 2);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_cancels_what_only_it_needed() {
    let alone = Probe::default();
    let shared = Probe::default();
    let quick = slow(alone.clone(), 1);
    let lonely = slow(alone.clone(), 10);
    let wanted = slow(shared.clone(), 10);
    // Another compute waits for `wanted`, through a dependent.
    let other = tokio::spawn(plus(&wanted, 1).compute());

    let mut done = delayed::as_completed([&quick, &lonely, &wanted]);
    let (index, _) = done.next().await.unwrap();
    assert_eq!(index, 0);
    drop(done);
    tokio::task::yield_now().await;
    assert_eq!(alone.started.get(), 2);
    assert_eq!(alone.dropped.get(), 2, "the lonely task was aborted");

    assert_eq!(other.await.unwrap().unwrap(), 11);
    sleep(Duration::from_secs(20)).await;
    assert_eq!(alone.finished.get(), 1, "only the quick one finished");
    assert_eq!(shared.finished.get(), 1, "the other compute's node ran on");
    assert_eq!(shared.started.get(), 1, "and ran once");
}

#[tokio::test(start_paused = true)]
async fn a_node_persisted_goes_on_after_the_stream_is_dropped() {
    let probe = Probe::default();
    let kept = slow(probe.clone(), 3).persist();
    let done = delayed::as_completed([&kept]);
    assert!(timeout(Duration::from_secs(1), done.collect::<Vec<_>>())
        .await
        .is_err());
    sleep(Duration::from_secs(5)).await;
    assert_eq!(probe.finished.get(), 1);
    assert_eq!(kept.compute().now_or_never().unwrap().unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn race_returns_the_first_and_cancels_the_losers() {
    let probe = Probe::default();
    let nodes: Vec<_> = [5, 1, 3].map(|secs| slow(probe.clone(), secs)).into();
    let start = Instant::now();
    let (index, result) = delayed::race(&nodes).await.unwrap();
    assert_eq!((index, result.unwrap()), (1, 1));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    tokio::task::yield_now().await;
    assert_eq!(probe.dropped.get(), 3, "both losers were aborted");
    sleep(Duration::from_secs(10)).await;
    assert_eq!(probe.finished.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn race_keeps_a_loser_that_another_compute_needs() {
    let probe = Probe::default();
    let fast = slow(probe.clone(), 1);
    let needed = slow(probe.clone(), 3);
    let other = tokio::spawn(needed.compute());
    let (index, _) = delayed::race([&fast, &needed]).await.unwrap();
    assert_eq!(index, 0);
    assert_eq!(other.await.unwrap().unwrap(), 3);
    assert_eq!(probe.finished.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn race_counts_a_failure_as_finishing() {
    let (index, result) = delayed::race([after(2, true), after(1, false)])
        .await
        .unwrap();
    assert_eq!(index, 1);
    assert!(result.unwrap_err().is_failed());
}

#[tokio::test(start_paused = true)]
async fn race_of_nothing_is_none() {
    let none: Vec<Delayed<u64>> = Vec::new();
    assert!(delayed::race(none).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn race_ok_skips_failures_and_cancels_the_rest() {
    let probe = Probe::default();
    let nodes = vec![
        slow(probe.clone(), 9).try_map(Ok::<u64, std::io::Error>),
        after(1, false),
        after(2, true),
        after(3, true),
    ];
    let start = Instant::now();
    assert_eq!(delayed::race_ok(&nodes).await.unwrap(), (2, 2));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    tokio::task::yield_now().await;
    assert_eq!(probe.dropped.get(), 1);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(probe.finished.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn race_ok_of_failures_returns_the_last_error() {
    let nodes = vec![
        after(3, false).named("third"),
        after(1, false).named("first"),
        after(2, false).named("second"),
    ];
    let start = Instant::now();
    let err = delayed::race_ok(nodes).await.unwrap_err();
    assert_eq!(err.key().to_string(), "third");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test]
async fn race_ok_of_nothing_is_a_clear_error() {
    let none: Vec<Delayed<u64>> = Vec::new();
    let err = delayed::race_ok(none).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `race_ok` could not start: no nodes to race"
    );
    assert_eq!(err.key().name(), "race_ok");
    assert!(!err.is_cancelled() && !err.is_failed() && !err.is_panic());
}

#[tokio::test]
async fn a_hundred_thousand_nodes_each_yield_once() {
    const N: usize = 100_000;
    let nodes: Vec<Delayed<u64>> = (0..N as u64)
        .map(|i| Delayed::value(i).map(|x| x * 2))
        .collect();
    let mut done = delayed::as_completed(nodes);
    let mut seen = vec![false; N];
    let mut count = 0;
    while let Some((index, result)) = done.next().await {
        assert_eq!(result.unwrap(), index as u64 * 2);
        assert!(!seen[index], "index {index} yielded twice");
        seen[index] = true;
        count += 1;
    }
    assert_eq!(count, N);
}

#[tokio::test(start_paused = true)]
async fn callbacks_hear_one_start_and_one_finish_for_the_set() {
    let computes = Arc::new(Computes::default());
    let shared = after(1, true);
    let nodes: Vec<_> = (0..4).map(|i| plus(&shared, i)).collect();
    let options = Options::new().callback(computes.clone());
    let all: Vec<_> = delayed::as_completed_with(&nodes, options).collect().await;
    assert_eq!(all.len(), 4);
    // The four nodes and their shared input: one graph.
    assert_eq!(computes.starts(), [5]);
    assert_eq!(computes.finishes(), ["ok"]);
}

#[tokio::test(start_paused = true)]
async fn callbacks_hear_the_first_failure_or_a_cancel() {
    let computes = Arc::new(Computes::default());
    let nodes = vec![
        after(3, false).named("late"),
        after(1, false).named("early"),
        after(2, true),
    ];
    let options = Options::new().callback(computes.clone());
    let _: Vec<_> = delayed::as_completed_with(&nodes, options).collect().await;
    assert_eq!(computes.finishes(), ["failed early"]);

    let cancelled = Arc::new(Computes::default());
    let options = Options::new().callback(cancelled.clone());
    let mut done = delayed::as_completed_with([after(1, true), after(5, true)], options);
    assert!(done.next().await.unwrap().1.is_ok());
    assert!(cancelled.finishes().is_empty(), "not finished yet");
    drop(done);
    assert_eq!(cancelled.starts(), [2]);
    assert_eq!(cancelled.finishes(), ["cancelled"]);

    let empty = Arc::new(Computes::default());
    let none: Vec<Delayed<u64>> = Vec::new();
    let options = Options::new().callback(empty.clone());
    assert_eq!(delayed::as_completed_with(none, options).count().await, 0);
    assert_eq!(empty.starts(), [0]);
    assert_eq!(empty.finishes(), ["ok"]);
}

static ONE: Limit = Limit::new("one", 1);

#[delayed(limit = ONE)]
fn limited(x: u64) -> u64 {
    x
}

/// Holds the one permit of `ONE` while it streams nodes that need it.
#[delayed(limit = ONE)]
async fn streams_under_the_limit(slow_input: u64) -> Vec<usize> {
    let nodes = vec![limited(1), limited(after(slow_input, true))];
    delayed::as_completed(nodes)
        .map(|(index, _)| index)
        .collect()
        .await
}

#[tokio::test(start_paused = true)]
async fn a_body_lends_its_permit_while_its_stream_waits() {
    // The second node becomes ready after the first was yielded: the body
    // must not hold the permit while it waits for it.
    let order = timeout(
        Duration::from_secs(60),
        streams_under_the_limit(2).compute(),
    )
    .await
    .expect("the stream's nodes got the body's permit")
    .unwrap();
    assert_eq!(order, [0, 1]);
}

#[tokio::test(start_paused = true)]
async fn an_observe_scope_sees_the_set_as_one_compute() {
    /// The graphs this test's nodes were in: other tests run beside it.
    #[derive(Default)]
    struct Graphs(Mutex<Vec<HashSet<String>>>);
    impl Callback for Graphs {
        fn start(&self, graph: &Graph) {
            let keys: HashSet<String> = graph.nodes().iter().map(|n| n.key().to_string()).collect();
            if keys.iter().any(|key| key.starts_with("observed-")) {
                self.0.lock().unwrap().push(keys);
            }
        }
    }
    let graphs = Arc::new(Graphs::default());
    let nodes: Vec<_> = (0..3)
        .map(|i| after(i, true).named(format!("observed-{i}")))
        .collect();
    {
        let _watching = delayed::observe(graphs.clone());
        let (index, _) = delayed::race(&nodes).await.unwrap();
        assert_eq!(index, 0);
    }
    let seen = graphs.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one start for the race: {seen:?}");
    assert_eq!(seen[0].len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_start_that_panics_fails_every_node() {
    struct Bad;
    impl Callback for Bad {
        fn start(&self, _graph: &Graph) {
            panic!("bad start");
        }
    }
    let runs = Counter::new();
    let nodes = vec![counted(runs.clone(), 1), counted(runs.clone(), 2)];
    let options = Options::new().callback(Bad);
    let results: Vec<_> = delayed::as_completed_with(&nodes, options).collect().await;
    let indices: Vec<usize> = results.iter().map(|(index, _)| *index).collect();
    assert_eq!(indices, [0, 1]);
    for (_, result) in &results {
        assert_eq!(
            result.as_ref().unwrap_err().panic_message(),
            Some("bad start")
        );
    }
    assert_eq!(runs.get(), 0, "nothing ran");
}

#[tokio::test(start_paused = true)]
async fn a_shared_input_runs_once_for_the_set() {
    let runs = Counter::new();
    let input = counted(runs.clone(), 10);
    let nodes: Vec<_> = (0..5).map(|i| plus(&input, i)).collect();
    // The same node twice is two entries, run once.
    let mut all: Vec<_> = delayed::as_completed(nodes.iter().chain([&nodes[0]]))
        .map(|(index, result)| (index, result.unwrap()))
        .collect()
        .await;
    all.sort_unstable();
    assert_eq!(all, [(0, 10), (1, 11), (2, 12), (3, 13), (4, 14), (5, 10)]);
    assert_eq!(runs.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_node_already_done_is_yielded_at_once() {
    let done_before = Delayed::value(5_u64);
    let later = after(1, true);
    let mut done = delayed::as_completed([&done_before, &later]);
    let (index, result) = done.next().now_or_never().flatten().unwrap();
    assert_eq!((index, result.unwrap()), (0, 5));
}

#[tokio::test(start_paused = true)]
async fn sequential_options_still_yield_in_finishing_order() {
    let nodes: Vec<_> = [2, 1].map(|secs| after(secs, true)).into();
    let done = delayed::as_completed_with(&nodes, Options::new().sequential());
    let order: Vec<usize> = done.map(|(index, _)| index).collect().await;
    assert_eq!(order, [1, 0]);
}

#[test]
fn the_stream_and_races_are_send_and_unpin() {
    fn send_unpin<S: Send + Unpin>(_: &S) {}
    let nodes = vec![Delayed::value("a".to_string())];
    let mut stream = delayed::as_completed(&nodes);
    send_unpin(&stream);
    send_unpin(&delayed::race(&nodes));
    send_unpin(&delayed::race_ok(&nodes));
    fn send<F: Send>(_: F) {}
    send(stream.first(1));
}
