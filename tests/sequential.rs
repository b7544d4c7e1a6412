//! The sequential scheduler (`Options::new().sequential()`): one node at a
//! time, in the order of a plain recursive evaluation (inputs first, in
//! argument order, each shared node once), the same on every run and
//! runtime; sync, async and blocking bodies all run on the polling thread;
//! the first failure stops the run; retries, timeouts and limits still
//! apply, on an exact clock; a dropped sequential compute leaves its nodes
//! restartable; a node shared with a parallel compute runs once; callbacks
//! see every task.

mod common;

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use common::Probe;
use delayed::{delayed, Callback, Delayed, Limit, Options, Outcome, Retry, TaskStarted, Timeline};
use tokio::time::{sleep, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn seq() -> Options {
    Options::new().sequential()
}

/// What ran, in order, and on which thread.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(String, ThreadId)>>>);

impl Log {
    fn push(&self, name: &str) {
        self.0
            .lock()
            .unwrap()
            .push((name.to_string(), std::thread::current().id()));
    }

    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn threads(&self) -> Vec<ThreadId> {
        self.0.lock().unwrap().iter().map(|(_, t)| *t).collect()
    }
}

#[delayed]
fn step_sync(log: Log, name: String, inputs: Vec<u64>) -> u64 {
    log.push(&name);
    inputs.iter().sum::<u64>() + 1
}

#[delayed]
async fn step_async(log: Log, name: String, inputs: Vec<u64>) -> u64 {
    log.push(&name);
    // Yield and sleep: a parallel scheduler would interleave here.
    tokio::task::yield_now().await;
    sleep(ms(1)).await;
    log.push(&format!("{name}."));
    inputs.iter().sum::<u64>() + 1
}

#[delayed(blocking)]
fn step_blocking(log: Log, name: String, inputs: Vec<u64>) -> u64 {
    log.push(&name);
    inputs.iter().sum::<u64>() + 1
}

/// A lattice of every kind of body:
///
/// ```text
/// a (sync) ── b (async) ─┐
///   └──────── c (blocking)┴─ d (sync: c, b) ─┐
/// e (async) ─────────────────────── g (blocking: e, d)
/// f (sync: d, e, g, b) is the root.
/// ```
fn lattice(log: &Log) -> Delayed<u64> {
    let s = |name: &str| name.to_string();
    let a = step_sync(log.clone(), s("a"), Vec::<Delayed<u64>>::new());
    let b = step_async(log.clone(), s("b"), vec![a.clone()]);
    let c = step_blocking(log.clone(), s("c"), vec![a.clone()]);
    let d = step_sync(log.clone(), s("d"), vec![c.clone(), b.clone()]);
    let e = step_async(log.clone(), s("e"), Vec::<Delayed<u64>>::new());
    let g = step_blocking(log.clone(), s("g"), vec![e.clone(), d.clone()]);
    step_sync(log.clone(), s("f"), vec![d, e, g, b])
}

/// The post-order walk of `lattice`, written out by hand: f's inputs are
/// d, e, g, b; d's are c (whose input is a), then b (a seen already).
const LATTICE_ORDER: [&str; 9] = ["a", "c", "b", "b.", "d", "e", "e.", "g", "f"];

/// a=1, b=2, c=2, d=5, e=1, g=7, f=5+1+7+2+1.
const LATTICE_VALUE: u64 = 16;

#[tokio::test(flavor = "current_thread")]
async fn the_order_is_the_post_order_walk_in_argument_order() {
    for _ in 0..5 {
        let log = Log::default();
        let root = lattice(&log);
        assert_eq!(root.compute_with(seq()).await.unwrap(), LATTICE_VALUE);
        assert_eq!(log.names(), LATTICE_ORDER);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_order_is_the_same_on_a_multi_thread_runtime() {
    for _ in 0..5 {
        let log = Log::default();
        let root = lattice(&log);
        let value = tokio::spawn(async move { root.compute_with(seq()).await })
            .await
            .unwrap();
        assert_eq!(value.unwrap(), LATTICE_VALUE);
        assert_eq!(log.names(), LATTICE_ORDER);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn several_outputs_run_in_argument_order_and_finished_nodes_are_skipped() {
    let log = Log::default();
    let s = |name: &str| name.to_string();
    let x = step_async(log.clone(), s("x"), Vec::<Delayed<u64>>::new());
    let y = step_sync(log.clone(), s("y"), vec![x.clone()]);
    let z = step_blocking(log.clone(), s("z"), Vec::<Delayed<u64>>::new());
    let w = step_sync(log.clone(), s("w"), vec![z.clone(), x.clone()]);
    let values = delayed::compute_with((&w, &y), seq()).await.unwrap();
    assert_eq!(values, (3, 2));
    assert_eq!(log.names(), ["z", "x", "x.", "w", "y"]);

    // Finished nodes do not run again.
    let top = step_sync(log.clone(), s("top"), vec![y, z, w, x]);
    assert_eq!(top.compute_with(seq()).await.unwrap(), 2 + 1 + 3 + 1 + 1);
    assert_eq!(log.names(), ["z", "x", "x.", "w", "y", "top"]);
}

#[tokio::test(flavor = "current_thread")]
async fn every_body_runs_on_the_polling_thread() {
    let log = Log::default();
    let root = lattice(&log);
    let me = std::thread::current().id();
    assert_eq!(root.compute_with(seq()).await.unwrap(), LATTICE_VALUE);
    let threads = log.threads();
    assert_eq!(threads.len(), LATTICE_ORDER.len());
    assert!(
        threads.iter().all(|t| *t == me),
        "a body ran off the polling thread: {:?}",
        log.0.lock().unwrap()
    );
}

#[test]
fn compute_blocking_with_sequential_runs_every_body_on_the_caller() {
    let log = Log::default();
    let root = lattice(&log);
    let me = std::thread::current().id();
    assert_eq!(root.compute_blocking_with(seq()).unwrap(), LATTICE_VALUE);
    assert_eq!(log.names(), LATTICE_ORDER);
    assert!(log.threads().iter().all(|t| *t == me));
}

#[delayed]
fn fails(log: Log, name: String) -> Result<u64, std::io::Error> {
    log.push(&name);
    Err(std::io::Error::other("broken"))
}

#[tokio::test(flavor = "current_thread")]
async fn the_first_failure_stops_the_run() {
    let log = Log::default();
    let s = |name: &str| name.to_string();
    let none = Vec::<Delayed<u64>>::new;
    let first = step_sync(log.clone(), s("first"), none());
    let bad = fails(log.clone(), s("bad")).named("bad");
    // Needs neither: a parallel compute would run it.
    let independent = step_async(log.clone(), s("independent"), none());
    let after = step_sync(log.clone(), s("after"), vec![bad.clone()]);
    let root = step_sync(
        log.clone(),
        s("root"),
        vec![first.clone(), bad.clone(), independent.clone(), after],
    );
    let err = root.compute_with(seq()).await.unwrap_err();
    assert_eq!(err.key().to_string(), "bad");
    assert!(err.is_failed());
    assert_eq!(log.names(), ["first", "bad"]);

    // What never ran can still run.
    assert_eq!(independent.compute_with(seq()).await.unwrap(), 1);
    assert_eq!(log.names(), ["first", "bad", "independent", "independent."]);
}

// --------------------------------------------------------- policies, clock

#[delayed]
async fn nap_log(log: Log, name: String, ms_: u64) -> u64 {
    log.push(&name);
    sleep(ms(ms_)).await;
    ms_
}

#[tokio::test(start_paused = true)]
async fn one_body_at_a_time_on_an_exact_clock() {
    let log = Log::default();
    let s = |name: &str| name.to_string();
    let naps: Vec<_> = (1..=4)
        .map(|i| nap_log(log.clone(), format!("nap{i}"), 10 * i))
        .collect();
    let start = Instant::now();
    let total = delayed::compute_with(naps.clone(), seq()).await.unwrap();
    assert_eq!(total, [10, 20, 30, 40]);
    assert_eq!(start.elapsed(), ms(100), "one after another");
    assert_eq!(log.names(), ["nap1", "nap2", "nap3", "nap4"]);

    // In parallel, the same graph takes its longest branch.
    let parallel: Vec<_> = (1..=4)
        .map(|i| nap_log(log.clone(), s("p"), 10 * i))
        .collect();
    let start = Instant::now();
    delayed::compute(parallel).await.unwrap();
    assert_eq!(start.elapsed(), ms(40));
}

/// Fails until attempt `succeed_on`; each attempt takes 5 ms.
#[delayed]
async fn flaky(log: Log, name: String, succeed_on: usize) -> Result<u64, std::io::Error> {
    log.push(&name);
    sleep(ms(5)).await;
    let attempt = log.names().iter().filter(|n| **n == name).count();
    if attempt >= succeed_on {
        Ok(attempt as u64)
    } else {
        Err(std::io::Error::other("not yet"))
    }
}

static SEQ_LIMIT: Limit = Limit::new("sequential", 1);

#[tokio::test(start_paused = true)]
async fn retries_timeouts_and_limits_still_apply() {
    let log = Log::default();
    let s = |name: &str| name.to_string();
    let start = Instant::now();
    // 5 + 100 + 5 + 100 + 5 ms: three attempts, two waits.
    let retried = flaky(log.clone(), s("retried"), 3).retry(Retry::attempts(3).fixed(ms(100)));
    // 20 ms under a timeout of 50 ms, under a limit.
    let timed = nap_log(log.clone(), s("timed"), 20)
        .timeout(ms(50))
        .limit(&SEQ_LIMIT);
    let (attempts, napped) = delayed::compute_with((retried, timed), seq())
        .await
        .unwrap();
    assert_eq!((attempts, napped), (3, 20));
    assert_eq!(start.elapsed(), ms(235));
    assert_eq!(log.names(), ["retried", "retried", "retried", "timed"]);
    assert_eq!(SEQ_LIMIT.in_use(), 0);

    // A timeout, retried once, then the run stops: 30 + 10 + 30 ms.
    let log = Log::default();
    let start = Instant::now();
    let hang = nap_log(log.clone(), s("hang"), 60_000)
        .timeout(ms(30))
        .retry(Retry::attempts(2).fixed(ms(10)))
        .named("hang");
    let later = nap_log(log.clone(), s("later"), 1);
    let err = delayed::compute_with((hang, later), seq())
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.key().to_string(), "hang");
    assert_eq!(start.elapsed(), ms(70));
    assert_eq!(log.names(), ["hang", "hang"]);
}

// ------------------------------------------------------ drops and sharing

#[delayed]
async fn slow(probe: Probe, x: u64) -> u64 {
    probe.sleep(ms(10)).await;
    x + 1
}

#[tokio::test(start_paused = true)]
async fn a_dropped_sequential_compute_leaves_its_nodes_restartable() {
    let (pa, pb, pc) = (Probe::default(), Probe::default(), Probe::default());
    let a = slow(pa.clone(), 0);
    let b = slow(pb.clone(), &a);
    let c = slow(pc.clone(), &b);

    // Dropped at 15 ms: a is done, b is halfway.
    let start = Instant::now();
    let cut = tokio::time::timeout(ms(15), c.compute_with(seq())).await;
    assert!(cut.is_err());
    assert_eq!(start.elapsed(), ms(15));
    assert_eq!(
        (pa.finished.get(), pb.started.get(), pb.finished.get()),
        (1, 1, 0)
    );
    assert_eq!(
        pb.dropped.get(),
        1,
        "b's future was dropped with the compute"
    );
    assert_eq!(pc.started.get(), 0);

    // A parallel compute finishes the rest: b afresh, then c.
    let start = Instant::now();
    assert_eq!(c.compute().await.unwrap(), 3);
    assert_eq!(start.elapsed(), ms(20));
    assert_eq!(
        (pa.started.get(), pb.started.get(), pc.started.get()),
        (1, 2, 1)
    );

    // And a sequential one after a drop, too.
    let (pd, pe) = (Probe::default(), Probe::default());
    let d = slow(pd.clone(), 0);
    let e = slow(pe.clone(), &d);
    assert!(tokio::time::timeout(ms(5), e.compute_with(seq()))
        .await
        .is_err());
    let start = Instant::now();
    assert_eq!(e.compute_with(seq()).await.unwrap(), 2);
    assert_eq!(start.elapsed(), ms(20));
    assert_eq!((pd.started.get(), pd.finished.get()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_node_shared_with_a_parallel_compute_runs_once() {
    // The parallel compute starts it first.
    let probe = Probe::default();
    let shared = slow(probe.clone(), 1);
    let par_top = shared.map(|x| x * 10);
    let seq_top = shared.map(|x| x * 100);
    let start = Instant::now();
    let parallel = tokio::spawn(par_top.compute());
    tokio::task::yield_now().await;
    assert_eq!(seq_top.compute_with(seq()).await.unwrap(), 200);
    assert_eq!(parallel.await.unwrap().unwrap(), 20);
    assert_eq!(start.elapsed(), ms(10));
    assert_eq!(probe.started.get(), 1);

    // The sequential compute starts it first.
    let probe = Probe::default();
    let shared = slow(probe.clone(), 1);
    let par_top = shared.map(|x| x * 10);
    let seq_top = shared.map(|x| x * 100);
    let start = Instant::now();
    let sequential = tokio::spawn(seq_top.compute_with(seq()));
    tokio::task::yield_now().await;
    assert_eq!(probe.started.get(), 1);
    assert_eq!(par_top.compute().await.unwrap(), 20);
    assert_eq!(sequential.await.unwrap().unwrap(), 200);
    assert_eq!(start.elapsed(), ms(10));
    assert_eq!(probe.started.get(), 1);

    // The sequential compute is dropped while the parallel one waits on
    // the node it runs: the parallel one still gets it.
    let probe = Probe::default();
    let shared = slow(probe.clone(), 1);
    let par_top = shared.map(|x| x * 10);
    let seq_top = shared.map(|x| x * 100);
    let start = Instant::now();
    let sequential = tokio::spawn(seq_top.compute_with(seq()));
    tokio::task::yield_now().await;
    let parallel = tokio::spawn(par_top.compute());
    sleep(ms(5)).await;
    sequential.abort();
    let _ = sequential.await;
    // The node went back to the run queue and ran afresh: 5 + 10 ms.
    assert_eq!(parallel.await.unwrap().unwrap(), 20);
    assert_eq!(start.elapsed(), ms(15));
    assert_eq!((probe.started.get(), probe.dropped.get()), (2, 2));
    assert_eq!(probe.finished.get(), 1);
}

/// The keys of the tasks that started, in order.
#[derive(Default)]
struct Starts(Mutex<Vec<String>>);

impl Callback for Starts {
    fn task_started(&self, task: &TaskStarted) {
        self.0.lock().unwrap().push(task.key().to_string());
    }
}

#[tokio::test(start_paused = true)]
async fn callbacks_and_a_timeline_see_every_task_in_order() {
    let log = Log::default();
    let s = |name: &str| name.to_string();
    let a = nap_log(log.clone(), s("a"), 10).named("a");
    let b = nap_log(log.clone(), s("b"), 20).named("b");
    let pair = delayed::join((&a, &b)).named("pair");
    let c = pair.map(|(a, b)| a + b).named("c");
    let d = c.map(|c| c * 2).named("d");

    let timeline = Arc::new(Timeline::new());
    let starts = Arc::new(Starts::default());
    let options = seq().callback(timeline.clone()).callback(starts.clone());
    assert_eq!(d.compute_with(options).await.unwrap(), 60);
    assert_eq!(*starts.0.lock().unwrap(), ["a", "b", "pair", "c", "d"]);

    let tasks = timeline.tasks();
    let keys: Vec<_> = tasks.iter().map(|t| t.key().to_string()).collect();
    // Sorted by start, then end, then key: the last three take no time.
    assert_eq!(keys, ["a", "b", "c", "d", "pair"]);
    assert!(tasks.iter().all(|t| matches!(t.outcome(), Outcome::Done)));
    let span = |key: &str| {
        let task = tasks.iter().find(|t| t.key() == key).unwrap();
        (task.start(), task.end())
    };
    // One at a time: each starts when the one before it ended.
    assert_eq!(span("a"), (ms(0), ms(10)));
    assert_eq!(span("b"), (ms(10), ms(30)));
    for key in ["pair", "c", "d"] {
        assert_eq!(span(key), (ms(30), ms(30)), "{key}");
    }

    // A failure is seen too, and the run stops there.
    let bad = Delayed::value(1_u64)
        .try_map(|_| Err::<u64, _>(std::fmt::Error))
        .named("bad");
    let never = nap_log(log.clone(), s("never"), 1).named("never");
    let failed = Arc::new(Timeline::new());
    let starts = Arc::new(Starts::default());
    let options = seq().callback(failed.clone()).callback(starts.clone());
    let err = delayed::compute_with((bad, never), options)
        .await
        .unwrap_err();
    assert_eq!(err.key().to_string(), "bad");
    assert_eq!(*starts.0.lock().unwrap(), ["bad"]);
    let tasks = failed.tasks();
    assert_eq!(tasks.len(), 1);
    assert!(matches!(tasks[0].outcome(), Outcome::Failed(_)));
}
