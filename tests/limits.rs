//! Limits: a `Limit` caps how many bodies run at once, exactly; a node holds
//! its permit only while its own body runs (not while it waits for inputs);
//! sync, async and blocking bodies are all capped; the attribute and the
//! method spell the same thing and one limit is shared by every function
//! under it; dropping a compute gives back the permits it held and frees
//! the places it had in the queue; nested graphs under a limit of one do
//! not deadlock, from async and from blocking bodies; a body that gives up
//! on a nested compute with `select!` leaves the limit as it found it; each
//! runtime has permits of its own, unless the limit is process-wide.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{add, nap, Counter, DropFlag};
use delayed::{delayed, Delayed, Limit};
use tokio::time::{sleep, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Counts the bodies inside a section now, the most there ever were, and
/// how many entered in all.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    entered: Arc<AtomicUsize>,
}

/// Leaves the gauge's section when dropped, even by an abort.
struct Inside(Gauge);

impl Gauge {
    fn enter(&self) -> Inside {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.entered.fetch_add(1, Ordering::SeqCst);
        Inside(self.clone())
    }

    fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    /// Spins (on a blocking thread) until `n` bodies were inside at once,
    /// for at most five seconds.
    fn meet(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.peak() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{n} bodies never ran at once"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// For limits over blocking bodies: a lane lets go of the permit of the
/// attempt it ran just after it hands the result over, so the permit can
/// still be out for a moment after the compute returned. Waits (at most
/// two seconds) for that, then checks.
async fn assert_idle_soon(limit: &Limit) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while limit.in_use() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_idle(limit);
}

fn assert_idle(limit: &Limit) {
    assert_eq!(limit.in_use(), 0, "{} still has permits out", limit.name());
    assert_eq!(limit.waiting(), 0, "{} still has waiters", limit.name());
}

// ---------------------------------------------------------------- exact cap

static HTTP: Limit = Limit::new("http", 16);

#[delayed(limit = HTTP)]
async fn load(gauge: Gauge, i: u64) -> u64 {
    let _inside = gauge.enter();
    sleep(ms(20)).await;
    i
}

#[tokio::test(start_paused = true)]
async fn at_most_the_limit_runs_at_once_and_the_makespan_is_exact() {
    let gauge = Gauge::default();
    let loads: Vec<_> = (0..100).map(|i| load(gauge.clone(), i)).collect();
    assert_eq!(HTTP.permits(), 16);
    assert_idle(&HTTP);

    let start = Instant::now();
    let run = tokio::spawn(delayed::compute(loads));
    sleep(ms(10)).await;
    assert_eq!(gauge.now(), 16, "the first round is full");
    assert_eq!(HTTP.in_use(), 16);
    assert_eq!(HTTP.waiting(), 84);

    let values = run.await.unwrap().unwrap();
    assert_eq!(values, (0..100).collect::<Vec<_>>());
    // ceil(100 / 16) = 7 rounds of 20 ms.
    assert_eq!(start.elapsed(), ms(140));
    assert_eq!(gauge.peak(), 16);
    assert_eq!(gauge.entered(), 100);
    assert_idle(&HTTP);
}

// ------------------------------------------------------ inputs hold nothing

static GATE: Limit = Limit::new("gate", 1);

#[delayed(limit = GATE)]
async fn gated(gauge: Gauge, x: u64) -> u64 {
    let _inside = gauge.enter();
    sleep(ms(10)).await;
    x
}

#[tokio::test(start_paused = true)]
async fn a_node_waiting_for_its_inputs_holds_no_permit() {
    let gauge = Gauge::default();
    // Its input takes 100 ms; it is demanded first.
    let late = gated(gauge.clone(), nap(100, 1));
    let free = gated(gauge.clone(), 2);

    let start = Instant::now();
    let waiting = tokio::spawn(late.compute());
    tokio::task::yield_now().await;
    assert_eq!(free.compute().await.unwrap(), 2);
    assert_eq!(start.elapsed(), ms(10), "the free node did not wait");
    assert_idle(&GATE);

    sleep(ms(40)).await;
    assert_idle(&GATE);
    assert_eq!(waiting.await.unwrap().unwrap(), 1);
    assert_eq!(start.elapsed(), ms(110));
    assert_eq!(gauge.peak(), 1);
    assert_idle(&GATE);
}

// ----------------------------------------------------- sync and blocking

static SYNC: Limit = Limit::new("sync", 2);

/// Reports how many permits were out while it ran.
#[delayed(limit = SYNC)]
fn tally(gauge: Gauge, x: u64) -> (u64, usize) {
    let _inside = gauge.enter();
    std::thread::sleep(Duration::from_millis(2));
    (x, SYNC.in_use())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_bodies_run_under_their_limit() {
    let gauge = Gauge::default();
    let all: Vec<_> = (0..12).map(|i| tally(gauge.clone(), i)).collect();
    let results = delayed::compute(all).await.unwrap();
    for (i, (x, held)) in results.into_iter().enumerate() {
        assert_eq!(x, i as u64);
        assert!(
            (1..=2).contains(&held),
            "{held} permits out while a body ran"
        );
    }
    assert!(gauge.peak() <= 2, "{} sync bodies at once", gauge.peak());
    assert_eq!(gauge.entered(), 12);
    assert_idle(&SYNC);
}

static CPU: Limit = Limit::new("cpu", 2);

fn lanes() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[delayed(blocking, limit = CPU)]
fn crunch(gauge: Gauge, x: u64) -> (u64, usize) {
    let _inside = gauge.enter();
    // Wait until as many bodies as the limit and the lanes allow are in.
    gauge.meet(lanes().min(2));
    std::thread::sleep(Duration::from_millis(2));
    (x * 2, CPU.in_use())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_bodies_run_under_their_limit() {
    let gauge = Gauge::default();
    let all: Vec<_> = (0..8).map(|i| crunch(gauge.clone(), i)).collect();
    let results = tokio::time::timeout(Duration::from_secs(20), delayed::compute(all))
        .await
        .expect("the blocking bodies finished")
        .unwrap();
    for (i, (x, held)) in results.into_iter().enumerate() {
        assert_eq!(x, 2 * i as u64);
        assert!(
            (1..=2).contains(&held),
            "{held} permits out while a body ran"
        );
    }
    assert_eq!(gauge.peak(), lanes().min(2), "the limit, not more");
    assert_eq!(gauge.entered(), 8);
    assert_idle_soon(&CPU).await;
}

// ---------------------------------------------------- spellings, sharing

static SHARED: Limit = Limit::new("shared", 3);

#[delayed(limit = SHARED)]
async fn fetch_a(gauge: Gauge, x: u64) -> u64 {
    let _inside = gauge.enter();
    sleep(ms(10)).await;
    x
}

#[delayed(limit = &SHARED)]
async fn fetch_b(gauge: Gauge, x: u64) -> u64 {
    let _inside = gauge.enter();
    sleep(ms(10)).await;
    x + 100
}

/// No limit of its own: given one with the method.
#[delayed]
async fn fetch_c(gauge: Gauge, x: u64) -> u64 {
    let _inside = gauge.enter();
    sleep(ms(10)).await;
    x + 200
}

#[tokio::test(start_paused = true)]
async fn one_limit_is_shared_by_every_function_and_node_under_it() {
    let gauge = Gauge::default();
    let mut all: Vec<Delayed<u64>> = Vec::new();
    for i in 0..3 {
        all.push(fetch_a(gauge.clone(), i));
        all.push(fetch_b(gauge.clone(), i));
        all.push(fetch_c(gauge.clone(), i).limit(&SHARED));
        let g = gauge.clone();
        all.push(
            Delayed::value(i)
                .then(move |x| {
                    let g = g.clone();
                    async move {
                        let _inside = g.enter();
                        sleep(ms(10)).await;
                        x + 300
                    }
                })
                .limit(&SHARED),
        );
    }
    let start = Instant::now();
    let values = delayed::compute(all).await.unwrap();
    assert_eq!(
        values,
        [0, 100, 200, 300, 1, 101, 201, 301, 2, 102, 202, 302]
    );
    // 12 bodies of 10 ms, 3 at a time.
    assert_eq!(start.elapsed(), ms(40));
    assert_eq!(gauge.peak(), 3);
    assert_eq!(gauge.entered(), 12);
    assert_idle(&SHARED);

    // The method sets the limit on this node only: the same function
    // without it runs all at once.
    let free = Gauge::default();
    let unlimited: Vec<_> = (0..6).map(|i| fetch_c(free.clone(), i)).collect();
    let start = Instant::now();
    delayed::compute(unlimited).await.unwrap();
    assert_eq!(start.elapsed(), ms(10));
    assert_eq!(free.peak(), 6);
}

// ------------------------------------------------------ dropped computes

static DROPS: Limit = Limit::new("drops", 2);
static HANDOVER: Limit = Limit::new("handover", 2);

/// Given a limit with the method.
#[delayed]
async fn held(gauge: Gauge, ms_: u64, x: u64) -> u64 {
    let _inside = gauge.enter();
    sleep(ms(ms_)).await;
    x
}

#[tokio::test(start_paused = true)]
async fn dropping_a_compute_frees_its_permits_and_its_places_in_line() {
    let gauge = Gauge::default();
    // Two long bodies take both permits.
    let keeper_nodes: Vec<_> = (0..2)
        .map(|i| held(gauge.clone(), 1000, i).limit(&DROPS))
        .collect();
    let start = Instant::now();
    let keeper = tokio::spawn(delayed::compute(keeper_nodes));
    tokio::task::yield_now().await;

    // Three more queue behind them, then their compute is dropped.
    let queued: Vec<_> = (0..3)
        .map(|i| held(gauge.clone(), 100, 10 + i).limit(&DROPS))
        .collect();
    let dropped = tokio::spawn(delayed::compute(queued.clone()));
    sleep(ms(10)).await;
    assert_eq!(DROPS.in_use(), 2);
    assert_eq!(DROPS.waiting(), 3);
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    sleep(ms(1)).await;
    assert_eq!(DROPS.waiting(), 0, "the dropped compute left the queue");
    assert_eq!(DROPS.in_use(), 2, "the other compute keeps its permits");

    assert_eq!(keeper.await.unwrap().unwrap(), [0, 1]);
    assert_eq!(start.elapsed(), ms(1000), "the keeper was not held up");
    assert_idle(&DROPS);

    // The dropped nodes run when computed again: 3 bodies, 2 at a time.
    let start = Instant::now();
    assert_eq!(delayed::compute(queued).await.unwrap(), [10, 11, 12]);
    assert_eq!(start.elapsed(), ms(200));
    assert_eq!(gauge.peak(), 2);
    assert_idle(&DROPS);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_compute_whose_bodies_run_gives_their_permits_to_the_next() {
    let gauge = Gauge::default();
    let first: Vec<_> = (0..2)
        .map(|i| held(gauge.clone(), 1000, i).limit(&HANDOVER))
        .collect();
    let running = tokio::spawn(delayed::compute(first));
    tokio::task::yield_now().await;
    let next: Vec<_> = (0..2)
        .map(|i| held(gauge.clone(), 50, 10 + i).limit(&HANDOVER))
        .collect();
    let start = Instant::now();
    let waiter = tokio::spawn(delayed::compute(next));
    sleep(ms(10)).await;
    assert_eq!(HANDOVER.waiting(), 2);

    running.abort();
    let _ = running.await;
    // The waiters got the permits at once: 10 ms + 50 ms.
    assert_eq!(waiter.await.unwrap().unwrap(), [10, 11]);
    assert_eq!(start.elapsed(), ms(60));
    assert_eq!(gauge.now(), 0, "the aborted bodies were dropped");
    assert_idle(&HANDOVER);
}

// ------------------------------------------------------------ nested graphs

static ONE: Limit = Limit::new("one", 1);

#[delayed(limit = ONE)]
async fn inner(x: u64) -> (u64, usize) {
    sleep(ms(5)).await;
    (x, ONE.in_use())
}

/// Under the same limit of one, computes three inner nodes.
#[delayed(limit = ONE)]
async fn outer(n: u64) -> (u64, usize, usize) {
    sleep(ms(10)).await;
    let before = ONE.in_use();
    let inners: Vec<_> = (0..n).map(inner).collect();
    let results = delayed::compute(inners).await.unwrap();
    assert!(
        results.iter().all(|(_, held)| *held == 1),
        "an inner body ran with {results:?} permits out"
    );
    let after = ONE.in_use();
    sleep(ms(10)).await;
    (results.iter().map(|(x, _)| x).sum(), before, after)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_nested_async_graph_under_a_limit_of_one_completes() {
    let start = Instant::now();
    // On the paused clock, a deadlock shows as this virtual hour passing.
    let (sum, before, after) = tokio::time::timeout(Duration::from_secs(3600), outer(3).compute())
        .await
        .expect("the nested graph deadlocked")
        .unwrap();
    assert_eq!(sum, 3);
    assert_eq!(before, 1, "the outer body held the permit");
    assert_eq!(after, 1, "and had it back after the nested compute");
    // 10 ms, three inner bodies one after another, 10 ms.
    assert_eq!(start.elapsed(), ms(35));
    assert_idle(&ONE);
}

static NEST_BLOCKING: Limit = Limit::new("nest-blocking", 1);

#[delayed(limit = NEST_BLOCKING)]
async fn nested_async(x: u64) -> u64 {
    assert_eq!(NEST_BLOCKING.in_use(), 1);
    tokio::time::sleep(ms(1)).await;
    x
}

#[delayed(blocking, limit = NEST_BLOCKING)]
fn nested_blocking(x: u64) -> u64 {
    assert_eq!(NEST_BLOCKING.in_use(), 1);
    x * 10
}

#[delayed(blocking, limit = NEST_BLOCKING)]
fn outer_blocking(x: u64) -> u64 {
    let held = NEST_BLOCKING.in_use();
    let inner = add(nested_async(x), nested_blocking(x));
    let value = inner.compute_blocking().unwrap();
    assert_eq!(held, 1);
    assert_eq!(NEST_BLOCKING.in_use(), 1, "the permit came back");
    value + 1
}

#[test]
fn a_blocking_body_computing_a_nested_graph_under_a_limit_of_one_completes() {
    // A runtime of our own, so that a deadlocked lane thread cannot hold
    // up the test at shutdown: it fails instead.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        let result =
            tokio::time::timeout(Duration::from_secs(10), outer_blocking(2).compute()).await;
        if result.is_ok() {
            assert_idle_soon(&NEST_BLOCKING).await;
        }
        result
    });
    runtime.shutdown_background();
    let result = result.expect("the nested graph deadlocked");
    assert_eq!(result.unwrap(), 2 + 20 + 1);
}

// --------------------------------------------- select! on a nested compute

static SELECT: Limit = Limit::new("select", 1);

#[derive(Clone, Default)]
struct Probe {
    started: Counter,
    finished: Counter,
    dropped: Counter,
}

#[delayed(limit = SELECT)]
async fn slow_inner(probe: Probe) -> u64 {
    probe.started.bump();
    let _guard = DropFlag(probe.dropped.clone());
    sleep(ms(100)).await;
    probe.finished.bump();
    1
}

/// Gives up on a nested compute after 5 ms, then works 10 ms more, and
/// reports how many permits were out at its end.
#[delayed(limit = SELECT)]
async fn impatient(probe: Probe, keep_going: bool) -> (u64, usize) {
    let nested = slow_inner(probe);
    let got = tokio::select! {
        result = nested.compute() => result.unwrap(),
        () = sleep(ms(5)) => 0,
    };
    if keep_going {
        sleep(ms(10)).await;
    }
    (got, SELECT.in_use())
}

#[tokio::test(start_paused = true)]
async fn a_body_that_gives_up_on_a_nested_compute_keeps_the_limit_whole() {
    for keep_going in [true, false] {
        let probe = Probe::default();
        let start = Instant::now();
        let (got, held_at_end) = tokio::time::timeout(
            Duration::from_secs(3600),
            impatient(probe.clone(), keep_going).compute(),
        )
        .await
        .expect("deadlocked")
        .unwrap();
        assert_eq!(got, 0, "the sleep won");
        if keep_going {
            assert_eq!(start.elapsed(), ms(15));
            assert_eq!(held_at_end, 1, "the body took a permit back");
        } else {
            assert_eq!(start.elapsed(), ms(5));
            assert!(held_at_end <= 1);
        }
        sleep(ms(1)).await;
        assert_eq!(probe.started.get(), 1);
        assert_eq!(
            probe.dropped.get(),
            1,
            "the abandoned inner body was dropped"
        );
        assert_eq!(probe.finished.get(), 0);
        assert_idle(&SELECT);

        // The limit still works: two inner nodes, one after the other.
        let again = Probe::default();
        let start = Instant::now();
        let two = vec![slow_inner(again.clone()), slow_inner(again.clone())];
        assert_eq!(delayed::compute(two).await.unwrap(), [1, 1]);
        assert_eq!(start.elapsed(), ms(200));
        assert_idle(&SELECT);
    }
}

// --------------------------------------------- permits back on return

static RETURNED: Limit = Limit::new("returned", 2);

#[delayed(limit = RETURNED)]
async fn quick(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x
}

#[delayed(limit = RETURNED)]
fn quick_sync(x: u64) -> u64 {
    x + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compute_that_returns_finds_every_permit_back() {
    for round in 0..1000 {
        let nodes: Vec<_> = (0..4).map(|i| quick_sync(quick(i))).collect();
        let values = delayed::compute(nodes).await.unwrap();
        assert_eq!(values, [1, 2, 3, 4]);
        assert_eq!(
            RETURNED.in_use(),
            0,
            "round {round}: a permit was still out"
        );
    }
    assert_idle(&RETURNED);
}

// ------------------------------------------------ per runtime, per process

static PER_RUNTIME: Limit = Limit::new("per-runtime", 1);

/// Waits until `meet` bodies are inside at once: under a limit of one,
/// only bodies of different runtimes can be.
#[delayed(limit = PER_RUNTIME)]
fn meet_across(gauge: Gauge, meet: usize) -> usize {
    let _inside = gauge.enter();
    gauge.meet(meet);
    PER_RUNTIME.in_use()
}

/// Runs `f` on `n` threads at once, each on a runtime of its own.
fn on_runtimes<R>(n: usize, f: impl Fn(usize) -> Delayed<R> + Send + Sync + 'static) -> Vec<R>
where
    R: Clone + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                runtime.block_on(f(i).compute()).unwrap()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn each_runtime_has_permits_of_its_own() {
    let gauge = Gauge::default();
    let g = gauge.clone();
    // Three runtimes, one body each, all inside at once.
    let held = on_runtimes(3, move |_| meet_across(g.clone(), 3));
    assert_eq!(held, [1, 1, 1], "each body held its own runtime's permit");
    assert_eq!(gauge.peak(), 3);
    assert_idle(&PER_RUNTIME);
}

static MACHINE: Limit = Limit::process_wide("machine", 1);

#[delayed(limit = MACHINE)]
fn one_at_a_time(gauge: Gauge, x: u64) -> (u64, usize) {
    let _inside = gauge.enter();
    std::thread::sleep(Duration::from_millis(1));
    (x, MACHINE.in_use())
}

#[test]
fn a_process_wide_limit_bounds_every_runtime_together() {
    let gauge = Gauge::default();
    let g = gauge.clone();
    let results = on_runtimes(4, move |i| {
        let calls: Vec<_> = (0..5)
            .map(|j| one_at_a_time(g.clone(), (i * 5 + j) as u64))
            .collect();
        delayed::join(calls)
    });
    let mut all: Vec<(u64, usize)> = results.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all, (0..20).map(|x| (x, 1)).collect::<Vec<_>>());
    assert_eq!(gauge.peak(), 1, "one body at a time in the whole process");
    assert_eq!(gauge.entered(), 20);
    assert!(MACHINE.is_process_wide());
    assert_idle(&MACHINE);
}
