//! A limit's pools: a place in line is taken when it is made, not when it
//! is first polled; a place dropped with or without its permit passes the
//! permit on; every runtime has a pool of its own (a process-wide limit
//! one for all), and a pool goes as soon as nothing holds or waits for a
//! permit, so thousands of runtimes, finished or dropped mid-run, leave
//! none behind.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::{Acquire, Limit, Permit};
use crate::Delayed;

/// A waker that does nothing: the tests poll by hand.
struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll_once(acquire: &mut Acquire) -> Poll<Permit> {
    let waker = Waker::from(Arc::new(Noop));
    pin!(acquire).poll(&mut Context::from_waker(&waker))
}

fn taken(acquire: &mut Acquire) -> Permit {
    match poll_once(acquire) {
        Poll::Ready(permit) => permit,
        Poll::Pending => panic!("the place had no permit"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn places_go_by_priority_then_first_come_even_before_they_are_polled() {
    static L: Limit = Limit::new("by-place", 1);
    let mut first = L.acquire(None, 0);
    let mut low = L.acquire(None, 0);
    let mut high = L.acquire(None, 5);
    let mut same = L.acquire(None, 5);
    assert_eq!((L.in_use(), L.waiting()), (1, 3));

    // None of the waiting places was ever polled.
    drop(taken(&mut first));
    assert!(poll_once(&mut low).is_pending());
    assert!(poll_once(&mut same).is_pending());
    drop(taken(&mut high));
    drop(taken(&mut same));
    drop(taken(&mut low));
    assert_eq!((L.in_use(), L.waiting()), (0, 0));
    assert_eq!(L.pools_alive(), 0);
}

#[test]
fn a_dropped_place_passes_its_permit_on() {
    static L: Limit = Limit::new("dropped-place", 1);
    // Handed the permit at once, and dropped before it was polled.
    let unpolled = L.acquire(None, 0);
    assert_eq!(L.in_use(), 1);
    drop(unpolled);
    assert_eq!(L.in_use(), 0);
    assert_eq!(L.pools_alive(), 0, "an idle pool goes");

    let mut holder = L.acquire(None, 0);
    let granted = L.acquire(None, 0);
    let queued = L.acquire(None, 0);
    let mut last = L.acquire(None, 0);
    drop(taken(&mut holder));
    assert_eq!((L.in_use(), L.waiting()), (1, 2));
    // `granted` was handed the permit: dropped unpolled, it passes it on
    // to `queued`, which passes it on to `last` in turn.
    drop(granted);
    assert_eq!((L.in_use(), L.waiting()), (1, 1));
    drop(queued);
    assert_eq!((L.in_use(), L.waiting()), (1, 0));
    drop(taken(&mut last));
    assert_eq!(L.pools_alive(), 0);
}

#[test]
fn each_runtime_has_permits_of_its_own() {
    static L: Limit = Limit::new("per-runtime", 1);
    let (a, b) = (runtime(), runtime());
    let held = a.block_on(async { taken(&mut L.acquire(None, 0)) });
    assert_eq!(a.block_on(async { L.in_use() }), 1);
    assert_eq!(b.block_on(async { L.in_use() }), 0, "b's pool is its own");
    assert_eq!(L.in_use(), 0, "outside a runtime is a pool of its own too");
    let also = b.block_on(async { taken(&mut L.acquire(None, 0)) });
    assert_eq!(L.pools_alive(), 2);
    drop((held, also));
    assert_eq!(L.pools_alive(), 0);
}

#[test]
fn a_process_wide_limit_has_one_pool() {
    static L: Limit = Limit::process_wide("process", 1);
    let (a, b) = (runtime(), runtime());
    let held = a.block_on(async { taken(&mut L.acquire(None, 0)) });
    assert_eq!(b.block_on(async { L.in_use() }), 1);
    assert_eq!(L.in_use(), 1);
    let mut waiting = {
        let _context = b.enter();
        L.acquire(None, 0)
    };
    assert!(poll_once(&mut waiting).is_pending());
    drop(held);
    drop(taken(&mut waiting));
    assert_eq!(L.pools_alive(), 0);
}

#[test]
fn a_permit_lent_out_is_taken_back_from_its_own_pool() {
    static L: Limit = Limit::new("source", 1);
    let (a, b) = (runtime(), runtime());
    let held = a.block_on(async { taken(&mut L.acquire(None, 0)) });
    let source = held.source();
    drop(held);
    // Taken back from a's pool, wherever the body is polled.
    let again = b.block_on(async { taken(&mut source.acquire(i32::MAX)) });
    assert_eq!(a.block_on(async { L.in_use() }), 1);
    assert_eq!(b.block_on(async { L.in_use() }), 0);
    drop(again);
    assert_eq!(L.pools_alive(), 0);
}

static MANY: Limit = Limit::new("many", 2);

fn busy(ms: u64) -> Delayed<u64> {
    Delayed::value(ms)
        .then(|ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        })
        .limit(&MANY)
}

#[test]
fn thousands_of_runtimes_leave_no_pool_behind() {
    for i in 0..2000_u64 {
        let runtime = runtime();
        if i % 2 == 0 {
            // Finished: six bodies, two at a time.
            let values = runtime.block_on(delayed_all(6, 1));
            assert_eq!(values, [1; 6]);
        } else {
            // Dropped mid-run, with permits held and bodies waiting.
            runtime.block_on(async {
                let run = tokio::spawn(delayed_all(6, 1000));
                tokio::time::sleep(Duration::from_millis(1)).await;
                assert_eq!((MANY.in_use(), MANY.waiting()), (2, 4));
                drop(run);
            });
        }
        drop(runtime);
        assert_eq!(MANY.pools_alive(), 0, "runtime {i} left its pool");
    }
}

async fn delayed_all(n: usize, ms: u64) -> Vec<u64> {
    crate::compute((0..n).map(|_| busy(ms)).collect::<Vec<_>>())
        .await
        .unwrap()
}
