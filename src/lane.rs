//! The blocking lane: where `#[delayed(blocking)]` bodies run.
//!
//! Blocking bodies are CPU-heavy, so running more of them at once than there
//! are cores only adds threads. They wait in one queue, highest priority
//! first, then first come, and at most one lane per core drains it: a lane
//! is a single `spawn_blocking` call that runs queued bodies back to back,
//! with no hand-off between them.
//!
//! A body that blocks on a nested graph (`compute_blocking` inside a
//! blocking body) gives its lane back while it waits, so nested graphs
//! cannot starve the queue.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::runtime::Handle;

use crate::run;

/// A queued body, and the runtime it belongs to.
pub(crate) struct Job {
    pub(crate) handle: Handle,
    pub(crate) priority: i32,
    pub(crate) run: Box<dyn FnOnce() + Send>,
}

struct Lanes {
    /// Queued jobs by (priority, highest first; arrival).
    queue: BTreeMap<(Reverse<i32>, u64), Job>,
    next: u64,
    running: usize,
}

static LANES: Mutex<Lanes> = Mutex::new(Lanes {
    queue: BTreeMap::new(),
    next: 0,
    running: 0,
});

thread_local! {
    static IN_LANE: Cell<bool> = const { Cell::new(false) };
}

fn lanes() -> MutexGuard<'static, Lanes> {
    LANES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lanes at most: one per core.
fn cap() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Queues a blocking body, starting a lane if one is free.
pub(crate) fn submit(job: Job) {
    let handle = job.handle.clone();
    let mut lanes = lanes();
    let ticket = (Reverse(job.priority), lanes.next);
    lanes.next += 1;
    lanes.queue.insert(ticket, job);
    if lanes.running < cap() {
        lanes.running += 1;
        drop(lanes);
        start(&handle);
    }
}

fn start(handle: &Handle) {
    let unstarted = Unstarted(true);
    handle.spawn_blocking(move || {
        let mut unstarted = unstarted;
        unstarted.0 = false;
        drain();
    });
}

/// Runs queued bodies until the queue is empty, then retires the lane.
fn drain() {
    IN_LANE.with(|flag| flag.set(true));
    loop {
        let job = {
            let mut lanes = lanes();
            match lanes.queue.pop_first() {
                Some((_, job)) => job,
                None => {
                    lanes.running -= 1;
                    break;
                }
            }
        };
        let _runtime = job.handle.enter();
        (job.run)();
    }
    IN_LANE.with(|flag| flag.set(false));
}

/// A lane whose runtime dropped it before it ran (shutdown): free its slot
/// and, if bodies are still queued, start a lane on the fallback runtime,
/// which lives as long as the process.
struct Unstarted(bool);

impl Drop for Unstarted {
    fn drop(&mut self) {
        if !self.0 {
            return;
        }
        let mut lanes = lanes();
        lanes.running -= 1;
        if lanes.queue.is_empty() || lanes.running >= cap() {
            return;
        }
        lanes.running += 1;
        drop(lanes);
        match run::fallback() {
            Ok(handle) => start(&handle),
            Err(_) => lanes_lost(),
        }
    }
}

/// No runtime can run the queue: drop the queued bodies, whose guards hand
/// their nodes back as interrupted.
fn lanes_lost() {
    let queue = {
        let mut lanes = lanes();
        lanes.running -= 1;
        std::mem::take(&mut lanes.queue)
    };
    drop(queue);
}

/// Runs `wait` (a thread blocking on a nested graph) with this thread's
/// lane handed back, so that the nested graph's blocking bodies can run.
pub(crate) fn while_waiting<R>(wait: impl FnOnce() -> R) -> R {
    if !IN_LANE.with(Cell::get) {
        return wait();
    }
    let next = {
        let mut lanes = lanes();
        lanes.running -= 1;
        let start_one = !lanes.queue.is_empty() && lanes.running < cap();
        if start_one {
            lanes.running += 1;
        }
        start_one
    };
    if next {
        match Handle::try_current().or_else(|_| run::fallback()) {
            Ok(handle) => start(&handle),
            Err(_) => lanes_lost(),
        }
    }
    let result = wait();
    lanes().running += 1;
    result
}
