//! Priorities: nodes waiting for the same limit go highest priority first,
//! then first come; a node runs at the highest priority of itself and of
//! the nodes waiting for it, when it is demanded and when an urgent
//! compute joins later; a dependent made ready by the node whose permit is
//! handed on competes for it with its priority; blocking bodies waiting for
//! a blocking lane go in priority order too.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::nap;
use delayed::{delayed, Delayed, Limit};
use tokio::time::{sleep, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The order in which bodies started.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, name: &str) {
        self.0.lock().unwrap().push(name.to_string());
    }

    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

// ------------------------------------------------------- the limit's queue

static ORDER: Limit = Limit::new("order", 1);

/// Logs its start, then holds the permit 10 ms.
#[delayed(limit = ORDER)]
async fn job(log: Log, name: String, _after: u64) -> u64 {
    log.push(&name);
    sleep(ms(10)).await;
    0
}

#[delayed(limit = ORDER, priority = 5)]
async fn urgent_job(log: Log, name: String, _after: u64) -> u64 {
    log.push(&name);
    sleep(ms(10)).await;
    0
}

#[tokio::test(start_paused = true)]
async fn waiters_go_by_priority_then_first_come() {
    let log = Log::default();
    let named = |name: &str| name.to_string();
    // The holder takes the permit at once; the others join the queue one
    // per millisecond, in this order, while it runs.
    let nodes = vec![
        job(log.clone(), named("holder"), 0),
        job(log.clone(), named("a0"), nap(1, 0)),
        job(log.clone(), named("b5"), nap(2, 0)).priority(5),
        job(log.clone(), named("c3"), nap(3, 0)).priority(3),
        job(log.clone(), named("d0"), nap(4, 0)),
        urgent_job(log.clone(), named("e5"), nap(5, 0)),
        job(log.clone(), named("f5"), nap(6, 0)).priority(5),
        job(log.clone(), named("g3"), nap(7, 0)).priority(3),
    ];
    let start = Instant::now();
    let run = tokio::spawn(delayed::compute(nodes));
    sleep(ms(8)).await;
    assert_eq!(ORDER.in_use(), 1);
    assert_eq!(ORDER.waiting(), 7);
    run.await.unwrap().unwrap();
    assert_eq!(
        log.get(),
        ["holder", "b5", "e5", "f5", "c3", "g3", "a0", "d0"]
    );
    assert_eq!(start.elapsed(), ms(80));
    assert_eq!(ORDER.in_use(), 0);
    assert_eq!(ORDER.waiting(), 0);
}

static NEGATIVE: Limit = Limit::new("negative", 1);

/// Logs its start after `after` ms, then holds `NEGATIVE` for 10 ms.
fn negative_step(log: &Log, name: &'static str, after: u64, priority: i32) -> Delayed<()> {
    let log = log.clone();
    nap(after, 0)
        .then(move |_| {
            let log = log.clone();
            async move {
                log.push(name);
                sleep(ms(10)).await;
            }
        })
        .limit(&NEGATIVE)
        .priority(priority)
}

#[tokio::test(start_paused = true)]
async fn a_negative_priority_goes_after_the_default() {
    // Each node computed on its own: "low" joins the queue before
    // "normal", but has a lower priority.
    let log = Log::default();
    let computes = vec![
        tokio::spawn(negative_step(&log, "holder", 0, 0).compute()),
        tokio::spawn(negative_step(&log, "low", 1, -1).compute()),
        tokio::spawn(negative_step(&log, "normal", 2, 0).compute()),
    ];
    for compute in computes {
        compute.await.unwrap().unwrap();
    }
    assert_eq!(log.get(), ["holder", "normal", "low"]);

    // The same nodes computed together: the list `compute` gathers them
    // in is not a node of the user's, and must not raise "low" to its
    // own default priority.
    let log = Log::default();
    let nodes = vec![
        negative_step(&log, "holder", 0, 0),
        negative_step(&log, "low", 1, -1),
        negative_step(&log, "normal", 2, 0),
    ];
    delayed::compute(nodes).await.unwrap();
    assert_eq!(log.get(), ["holder", "normal", "low"], "in one compute");
}

// ---------------------------------------------------------- inheritance

static INHERIT: Limit = Limit::new("inherit", 1);

#[delayed(limit = INHERIT)]
async fn step(log: Log, name: String, _after: u64) -> u64 {
    log.push(&name);
    sleep(ms(10)).await;
    0
}

#[tokio::test(start_paused = true)]
async fn the_inputs_of_urgent_work_are_urgent_too() {
    let log = Log::default();
    let s = |name: &str| name.to_string();
    let holder = step(log.clone(), s("holder"), 0);
    let medium1 = step(log.clone(), s("medium1"), nap(1, 0)).priority(5);
    let medium2 = step(log.clone(), s("medium2"), nap(2, 0)).priority(5);
    // A low-priority load that joins the queue last, needed by a report
    // of priority 10.
    let load = step(log.clone(), s("load"), nap(3, 0)).priority(-5);
    let report = step(log.clone(), s("report"), &load).priority(10);
    let start = Instant::now();
    delayed::compute((holder, medium1, medium2, report))
        .await
        .unwrap();
    // "load" went ahead of the medium nodes that queued before it. When it
    // ended, "report" became ready and took its place in line before the
    // permit was handed on, so it went ahead of both medium nodes.
    assert_eq!(
        log.get(),
        ["holder", "load", "report", "medium1", "medium2"]
    );
    assert_eq!(start.elapsed(), ms(50));
}

static RAISE: Limit = Limit::new("raise", 1);

#[delayed(limit = RAISE)]
async fn raised(log: Log, name: String, _after: u64) -> u64 {
    log.push(&name);
    sleep(ms(10)).await;
    0
}

#[tokio::test(start_paused = true)]
async fn an_urgent_compute_that_joins_later_raises_waiting_inputs() {
    let log = Log::default();
    let s = |name: &str| name.to_string();
    // Routine work: a holder, two medium nodes, and a low node that waits
    // 3 ms for its own input, behind a step that needs it.
    let load = raised(log.clone(), s("load"), nap(3, 0));
    let summary = load.map(|x| x);
    let routine = vec![
        raised(log.clone(), s("holder"), 0),
        raised(log.clone(), s("medium1"), nap(1, 0)).priority(5),
        raised(log.clone(), s("medium2"), nap(2, 0)).priority(5),
        summary.clone(),
    ];
    let first = tokio::spawn(delayed::compute(routine));
    sleep(ms(1)).await;
    // While "load" still waits for its input, an urgent node needs it,
    // through the summary: the raise goes all the way down.
    let report = raised(log.clone(), s("report"), &summary).priority(10);
    let second = tokio::spawn(report.compute());
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    // Without the raise, "load" would have gone last, at priority 0.
    assert_eq!(
        log.get(),
        ["holder", "load", "medium1", "report", "medium2"]
    );
}

// ----------------------------------------------------------- hand-off

static ONE: Limit = Limit::new("one", 1);

/// Logs its start, then holds `ONE` for 10 ms.
#[delayed(limit = ONE)]
async fn hold(log: Log, name: String, _after: u64) -> u64 {
    log.push(&name);
    sleep(ms(10)).await;
    0
}

/// A sync body under `ONE`.
#[delayed(limit = ONE)]
fn hold_sync(log: Log, name: String, _after: u64) -> u64 {
    log.push(&name);
    0
}

/// A blocking body under `ONE`.
#[delayed(blocking, limit = ONE)]
fn hold_blocking(log: Log, name: String, _after: u64) -> u64 {
    log.push(&name);
    0
}

fn s(name: &str) -> String {
    name.to_string()
}

/// "load" holds the permit for 10 ms; "m1" and "m2" (priority 5) join the
/// line at 1 and 2 ms. Returns the log and the two medium nodes.
fn medium_behind_load(log: &Log) -> (Delayed<u64>, Vec<Delayed<u64>>) {
    let load = hold(log.clone(), s("load"), 0);
    let medium = vec![
        hold(log.clone(), s("m1"), nap(1, 0)).priority(5),
        hold(log.clone(), s("m2"), nap(2, 0)).priority(5),
    ];
    (load, medium)
}

#[tokio::test(start_paused = true)]
async fn a_dependent_made_ready_by_the_holder_competes_with_its_priority() {
    let log = Log::default();
    let (load, medium) = medium_behind_load(&log);
    // Ready the moment "load" ends and hands its permit on.
    let report = hold(log.clone(), s("report"), &load).priority(10);
    let start = Instant::now();
    delayed::compute((report, medium)).await.unwrap();
    assert_eq!(log.get(), ["load", "report", "m1", "m2"]);
    assert_eq!(start.elapsed(), ms(40));
    assert_eq!(ONE.in_use(), 0);
    assert_eq!(ONE.waiting(), 0);
}

/// Reads its input twice.
#[delayed(limit = ONE)]
async fn hold_both(log: Log, name: String, _a: u64, _b: u64) -> u64 {
    log.push(&name);
    sleep(ms(10)).await;
    0
}

#[tokio::test(start_paused = true)]
async fn a_dependent_that_reads_the_holder_twice_competes_too() {
    let log = Log::default();
    let (load, medium) = medium_behind_load(&log);
    let report = hold_both(log.clone(), s("report"), &load, &load).priority(10);
    delayed::compute((report, medium)).await.unwrap();
    assert_eq!(log.get(), ["load", "report", "m1", "m2"]);
}

#[tokio::test(start_paused = true)]
async fn a_dependent_under_another_limit_does_not_take_the_permit() {
    static OTHER: Limit = Limit::new("other", 1);
    let log = Log::default();
    let (load, medium) = medium_behind_load(&log);
    // Under a limit of its own, it starts at once when "load" ends; the
    // permit of ONE goes to "m1".
    let elsewhere = {
        let log = log.clone();
        load.then(move |_| {
            let log = log.clone();
            async move {
                log.push("elsewhere");
                sleep(ms(10)).await;
                0
            }
        })
        .limit(&OTHER)
        .priority(10)
    };
    let start = Instant::now();
    let run = tokio::spawn(delayed::compute((elsewhere, medium)));
    sleep(ms(15)).await;
    let mut started = log.get();
    started.sort();
    assert_eq!(started, ["elsewhere", "load", "m1"], "both run at 10 ms");
    assert_eq!((OTHER.in_use(), ONE.in_use(), ONE.waiting()), (1, 1, 1));
    run.await.unwrap().unwrap();
    assert_eq!(log.get().last().unwrap(), "m2");
    assert_eq!(start.elapsed(), ms(30));
    assert_eq!((OTHER.in_use(), ONE.in_use()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn sync_and_blocking_dependents_compete_too() {
    for kind in ["sync", "blocking"] {
        let log = Log::default();
        let (load, medium) = medium_behind_load(&log);
        let report = match kind {
            "sync" => hold_sync(log.clone(), s("report"), &load),
            _ => hold_blocking(log.clone(), s("report"), &load),
        }
        .priority(10);
        delayed::compute((report, medium)).await.unwrap();
        assert_eq!(log.get(), ["load", "report", "m1", "m2"], "a {kind} report");
    }
}

#[tokio::test(start_paused = true)]
async fn a_dependent_does_not_jump_ahead_of_higher_or_equal_priorities() {
    for (priority, expected) in [
        (4, ["load", "m1", "m2", "report"]),
        (5, ["load", "m1", "m2", "report"]),
        (6, ["load", "report", "m1", "m2"]),
    ] {
        let log = Log::default();
        let (load, medium) = medium_behind_load(&log);
        let report = hold(log.clone(), s("report"), &load).priority(priority);
        delayed::compute((report, medium)).await.unwrap();
        // Equal priorities go first come: the medium nodes were in line
        // before the report became ready.
        assert_eq!(log.get(), expected, "a report of priority {priority}");
    }
}

#[tokio::test(start_paused = true)]
async fn every_dependent_made_ready_at_once_takes_its_place_in_line() {
    let log = Log::default();
    let (load, medium) = medium_behind_load(&log);
    let dependents = vec![
        hold(log.clone(), s("d3"), &load).priority(3),
        hold(log.clone(), s("d10"), &load).priority(10),
        hold(log.clone(), s("d7"), &load).priority(7),
    ];
    let start = Instant::now();
    delayed::compute((dependents, medium)).await.unwrap();
    assert_eq!(log.get(), ["load", "d10", "d7", "m1", "m2", "d3"]);
    assert_eq!(start.elapsed(), ms(60));
}

// ------------------------------------------------------- blocking lanes

/// A latch that blocking bodies wait on, with a bound so that a bug fails
/// the test instead of hanging it.
#[derive(Clone, Default)]
struct Latch(Arc<(Mutex<bool>, Condvar)>);

impl Latch {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    fn wait(&self) {
        let (lock, cvar) = &*self.0;
        let (open, timeout) = cvar
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(10), |open| !*open)
            .unwrap();
        assert!(*open && !timeout.timed_out(), "the latch never opened");
    }
}

/// Holds a blocking lane until its latch opens.
#[delayed(blocking)]
fn blocker(started: tokio::sync::mpsc::UnboundedSender<()>, latch: Latch) -> u64 {
    started.send(()).unwrap();
    latch.wait();
    0
}

#[delayed(blocking)]
fn queued(log: Log, name: String) -> u64 {
    log.push(&name);
    0
}

#[delayed]
fn report(x: u64) -> u64 {
    x
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_bodies_take_free_lanes_by_priority() {
    // One blocker per lane: every lane is busy.
    let lanes = std::thread::available_parallelism().map_or(1, usize::from);
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let latches: Vec<Latch> = (0..lanes).map(|_| Latch::default()).collect();
    let blockers: Vec<_> = latches
        .iter()
        .map(|latch| blocker(started_tx.clone(), latch.clone()))
        .collect();
    let blocking = tokio::spawn(delayed::compute(blockers));
    for _ in 0..lanes {
        started.recv().await.unwrap();
    }

    // Bodies queue for a lane, each compute's runner submitting them
    // before the next compute starts.
    let log = Log::default();
    let s = |name: &str| name.to_string();
    let batches: Vec<Vec<Delayed<u64>>> = vec![
        vec![queued(log.clone(), s("a0"))],
        vec![queued(log.clone(), s("b5")).priority(5)],
        vec![queued(log.clone(), s("c1")).priority(1)],
        vec![queued(log.clone(), s("d5")).priority(5)],
        // Priority 0 of its own, inherited 8 from the node that needs it.
        vec![report(queued(log.clone(), s("e8"))).priority(8)],
        vec![queued(log.clone(), s("f0"))],
    ];
    let mut runs = Vec::new();
    for batch in batches {
        runs.push(tokio::spawn(delayed::compute(batch)));
        // On this current-thread runtime, the compute's runner runs now.
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
    }
    assert!(log.get().is_empty(), "every lane is still busy");

    // Free one lane: it runs the whole queue, in order.
    latches[0].open();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    assert_eq!(log.get(), ["e8", "b5", "d5", "c1", "a0", "f0"]);
    for latch in &latches {
        latch.open();
    }
    blocking.await.unwrap().unwrap();
}

#[test]
fn priorities_do_not_change_values() {
    let x = Delayed::value(2_u64).map(|x| x * 21).priority(i32::MAX);
    let y = Delayed::value(1_u64).map(|x| x + 1).priority(i32::MIN);
    assert_eq!(delayed::join((&x, &y)).compute_blocking().unwrap(), (42, 2));
}
