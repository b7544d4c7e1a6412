//! Computes across runtimes, their shutdown, and a cancel racing a
//! finishing body:
//!
//! - after `Runtime::shutdown_background()` in the middle of a compute, a
//!   compute of the same graph on a new runtime succeeds;
//! - dropping a runtime never waits for another runtime's blocking work,
//!   and one runtime's blocking work never runs on another's pool;
//! - an async node whose compute is dropped just as its body finished
//!   keeps the result instead of running again.
//!
//! The runtimes are built by hand, with real clocks. Every wait is on a
//! channel or a gate the test controls, bounded by a generous real-time
//! guard, so a hang fails the test instead of hanging the suite. The tests
//! run one at a time: the blocking pool they exercise is shared by the
//! whole process.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use delayed::{delayed, Delayed};
use tokio::runtime::Runtime;

/// How long anything here may take before it counts as hung.
const GUARD: Duration = Duration::from_secs(10);

/// One test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A multi-thread runtime whose threads, blocking pool included, are named
/// `name`.
fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string()
}

/// Runs `future` on `runtime` for at most [`GUARD`].
fn block_on_bounded<F: Future>(runtime: &Runtime, what: &str, future: F) -> F::Output {
    runtime
        .block_on(async { tokio::time::timeout(GUARD, future).await })
        .unwrap_or_else(|_| panic!("{what}: hung (no result after {GUARD:?})"))
}

/// Receives from `rx` within [`GUARD`].
fn recv_bounded<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(GUARD)
        .unwrap_or_else(|err| panic!("{what}: nothing after {GUARD:?} ({err})"))
}

// ---------------------------------------------------------------------------
// Shutdown in the middle of a compute
// ---------------------------------------------------------------------------

/// Tells the test that a body started.
#[derive(Clone)]
struct Started(Arc<Mutex<Sender<()>>>);

impl Started {
    fn signal(&self) {
        let _ = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(());
    }
}

#[delayed]
async fn slow_async(started: Started, i: u64) -> u64 {
    started.signal();
    tokio::time::sleep(Duration::from_millis(1 + i % 4)).await;
    i
}

#[delayed(blocking)]
fn slow_blocking(started: Started, i: u64) -> u64 {
    started.signal();
    std::thread::sleep(Duration::from_millis(1 + i % 3));
    i * 10
}

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
fn total(parts: Vec<u64>) -> u64 {
    parts.iter().sum()
}

/// Slow async and blocking leaves, each with a sync dependent, summed;
/// and the sum it must make.
fn slow_graph(started: &Started) -> (Delayed<u64>, u64) {
    let mut parts = Vec::new();
    let mut expected = 0;
    for i in 0..8 {
        parts.push(inc(slow_async(started.clone(), i)));
        parts.push(inc(slow_blocking(started.clone(), i)));
        expected += (i + 1) + (i * 10 + 1);
    }
    (total(parts), expected)
}

#[test]
fn a_compute_after_shutdown_background_succeeds_on_a_new_runtime() {
    let _serial = serial();
    for round in 0..20 {
        let (tx, started) = mpsc::channel();
        let (graph, expected) = slow_graph(&Started(Arc::new(Mutex::new(tx))));

        let first = runtime("shutdown-first");
        let computing = graph.clone();
        first.spawn(async move {
            let _ = computing.compute().await;
        });
        // Shut down in the middle of the compute: after a few bodies
        // started, a different number each round.
        for _ in 0..=round % 5 {
            recv_bounded(
                &started,
                &format!("round {round}: a body of the first compute"),
            );
        }
        let first_handle = first.handle().clone();
        first.shutdown_background();
        // Its tasks are dropped in the background; a node that was running
        // there is interrupted, and a compute that waited on it then fails
        // as cancelled, as documented. So wait until they are gone: what
        // is left is its blocking bodies, still running, and whatever the
        // shutdown left behind.
        let deadline = Instant::now() + GUARD;
        while first_handle.metrics().num_alive_tasks() > 0 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the shut down runtime's tasks were not dropped"
            );
            std::thread::sleep(Duration::from_millis(1));
        }

        let second = runtime("shutdown-second");
        let result = block_on_bounded(
            &second,
            &format!("round {round}: the compute on a new runtime"),
            graph.compute(),
        );
        match result {
            Ok(value) => assert_eq!(value, expected, "round {round}"),
            Err(err) => panic!(
                "round {round}: the compute on a new runtime failed: {err} \
                 (cancelled: {}, panic: {})",
                err.is_cancelled(),
                err.is_panic()
            ),
        }
        second.shutdown_timeout(GUARD);
    }
}

// ---------------------------------------------------------------------------
// Several runtimes and their blocking pools
// ---------------------------------------------------------------------------

/// A gate blocking bodies wait at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while !*open {
            open = self
                .opened
                .wait(open)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.opened.notify_all();
    }
}

/// Opens its gate when dropped, so that no thread is left blocked when a
/// test fails midway.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Where the bodies of a gated node report the thread they run on.
#[derive(Clone)]
struct Threads(Arc<Mutex<Sender<String>>>);

/// Reports its thread, then waits at the gate.
#[delayed(blocking)]
fn gated(gate: Arc<Gate>, threads: Threads, i: u64) -> u64 {
    let _ = threads
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(thread_name());
    gate.wait();
    i
}

/// What happened when runtime A kept every blocking slot it could busy
/// while runtime B ran a blocking graph and was dropped.
struct TwoRuntimes {
    /// B's drop returned while A's blocking work was still blocked.
    b_dropped_while_a_blocked: bool,
    /// How long B's drop took, while A was blocked (or the guard, if it
    /// did not return).
    b_drop_took: Duration,
    /// The threads A's and B's blocking bodies ran on.
    a_threads: Vec<String>,
    b_threads: Vec<String>,
}

/// Runtime B runs a blocking node that waits at gate B. Runtime A then
/// computes more blocking nodes than there are cores, each waiting at gate
/// A: A's work fills the blocking slots and some of it is queued. Gate B
/// opens, B's compute finishes, and B is dropped, on a thread of its own,
/// while gate A is still shut. Then gate A opens and A finishes.
fn two_runtimes() -> TwoRuntimes {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let gate_a = Arc::new(Gate::default());
    let gate_b = Arc::new(Gate::default());
    let _open_a = OpenOnDrop(Arc::clone(&gate_a));
    let _open_b = OpenOnDrop(Arc::clone(&gate_b));
    let (a_tx, a_threads) = mpsc::channel();
    let (b_tx, b_threads) = mpsc::channel();
    let a_tx = Threads(Arc::new(Mutex::new(a_tx)));
    let b_tx = Threads(Arc::new(Mutex::new(b_tx)));

    let rt_a = runtime("runtime-a");
    let rt_b = runtime("runtime-b");

    // B's blocking body runs, and waits.
    let b_node = gated(Arc::clone(&gate_b), b_tx, 0).map(|x| x + 1);
    let b_compute = rt_b.spawn({
        let b_node = b_node.clone();
        async move { b_node.compute().await }
    });
    let mut b_seen = vec![recv_bounded(&b_threads, "B's blocking body to start")];

    // A's blocking bodies: more than the cores, so some wait for a slot.
    let count = cores as u64 + 2;
    let a_nodes: Vec<Delayed<u64>> = (0..count)
        .map(|i| gated(Arc::clone(&gate_a), a_tx.clone(), i))
        .collect();
    let a_compute = rt_a.spawn(delayed::compute(a_nodes));
    let mut a_seen = Vec::new();
    if cores > 1 {
        // With one blocking body per core, one of A's starts beside B's:
        // A's work is then surely queued before B's ends. (On one core it
        // may have to wait for B's.)
        a_seen.push(recv_bounded(&a_threads, "A's first blocking body to start"));
    }

    // B's work ends; B is dropped while A's is blocked.
    gate_b.open();
    let b_result = block_on_bounded(&rt_b, "B's compute", b_compute)
        .expect("B's compute task")
        .expect("B's compute");
    assert_eq!(b_result, 1);
    let (dropped_tx, dropped) = mpsc::channel();
    let dropping = std::thread::spawn(move || {
        let start = Instant::now();
        drop(rt_b);
        let _ = dropped_tx.send(start.elapsed());
    });
    let (b_dropped_while_a_blocked, b_drop_took) = match dropped.recv_timeout(GUARD) {
        Ok(took) => (true, took),
        Err(RecvTimeoutError::Timeout) => (false, GUARD),
        Err(RecvTimeoutError::Disconnected) => panic!("dropping runtime B panicked"),
    };

    // A's work ends.
    gate_a.open();
    let a_result = block_on_bounded(&rt_a, "A's compute", a_compute)
        .expect("A's compute task")
        .expect("A's compute");
    assert_eq!(a_result, (0..count).collect::<Vec<_>>());
    dropping.join().expect("the thread that dropped runtime B");
    rt_a.shutdown_timeout(GUARD);

    a_seen.extend(a_threads.try_iter());
    b_seen.extend(b_threads.try_iter());
    assert_eq!(a_seen.len() as u64, count, "every A body ran once");
    TwoRuntimes {
        b_dropped_while_a_blocked,
        b_drop_took,
        a_threads: a_seen,
        b_threads: b_seen,
    }
}

#[test]
fn dropping_a_runtime_does_not_wait_for_another_runtimes_blocking_work() {
    let _serial = serial();
    let seen = two_runtimes();
    assert!(
        seen.b_dropped_while_a_blocked,
        "dropping runtime B did not return within {GUARD:?} while runtime A's blocking \
         work was blocked (A's bodies ran on {:?}, B's on {:?})",
        seen.a_threads, seen.b_threads
    );
    assert!(
        seen.b_drop_took < GUARD,
        "dropping runtime B took {:?}",
        seen.b_drop_took
    );
}

#[test]
fn blocking_work_runs_on_its_own_runtimes_pool() {
    let _serial = serial();
    let seen = two_runtimes();
    let strays: Vec<&String> = seen
        .a_threads
        .iter()
        .filter(|name| name.as_str() != "runtime-a")
        .collect();
    assert!(
        strays.is_empty(),
        "runtime A's blocking bodies ran on other threads: {strays:?} (all: {:?})",
        seen.a_threads
    );
    let strays: Vec<&String> = seen
        .b_threads
        .iter()
        .filter(|name| name.as_str() != "runtime-b")
        .collect();
    assert!(
        strays.is_empty(),
        "runtime B's blocking bodies ran on other threads: {strays:?}"
    );
}

// ---------------------------------------------------------------------------
// A cancel racing a finishing body
// ---------------------------------------------------------------------------

#[test]
fn an_async_node_cancelled_as_its_body_finishes_keeps_the_result() {
    let _serial = serial();
    let rt = runtime("cancel-race");
    let runs = Arc::new(AtomicUsize::new(0));
    let (done_tx, done) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    let done_tx = Arc::new(Mutex::new(done_tx));
    let go_rx = Arc::new(Mutex::new(go_rx));

    let node = Delayed::value(6_u64).then({
        let runs = Arc::clone(&runs);
        move |x| {
            let runs = Arc::clone(&runs);
            let done_tx = Arc::clone(&done_tx);
            let go_rx = Arc::clone(&go_rx);
            async move {
                let value = x + 1;
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    // The body's last step: it has its value, and holds its
                    // worker thread until the test has dropped the compute.
                    let _ = done_tx.lock().unwrap().send(());
                    let _ = go_rx.lock().unwrap().recv_timeout(GUARD);
                }
                value
            }
        }
    });

    {
        let _context = rt.enter();
        let mut compute = pin!(node.compute());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            compute.as_mut().poll(&mut cx).is_pending(),
            "the compute ended before its body ran"
        );
        recv_bounded(&done, "the body to finish its work");
        // Every compute waiting on the node goes away, just as its body
        // is about to return its value.
    }
    go.send(()).expect("the body waits for the go");

    // Let the first run's task end, whatever it does with its value.
    let deadline = Instant::now() + GUARD;
    while rt.metrics().num_alive_tasks() > 0 {
        assert!(
            Instant::now() < deadline,
            "the first run's task did not end"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    let value = block_on_bounded(&rt, "the second compute", node.compute())
        .unwrap_or_else(|err| panic!("the second compute failed: {err}"));
    assert_eq!(value, 7);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the body ran again: the result of the run that finished as its compute \
         was dropped was thrown away"
    );
    rt.shutdown_timeout(GUARD);
}
