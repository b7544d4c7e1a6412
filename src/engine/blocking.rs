//! The blocking pool: where `#[delayed(blocking)]` work runs.
//!
//! Blocking work is CPU-heavy, so running more of it at once than there
//! are cores only adds threads. Each runtime has a pool of its own: a queue
//! of jobs, highest priority first, then first come, drained by at most one
//! *slot* per core. A slot is one `spawn_blocking` call of that runtime that
//! runs queued jobs back to back, with no hand-off between them; nodes that
//! a job makes ready run in the same slot, so a chain of blocking nodes is
//! a loop on one thread, not a ping-pong between threads.
//!
//! One runtime's jobs never run on another runtime's threads, and dropping
//! a runtime never waits for another one's work. When a runtime shuts down
//! with jobs queued, the jobs are dropped, and their guards hand their
//! nodes back as interrupted.
//!
//! Work that blocks on a nested graph (`compute_blocking` inside blocking
//! work) gives its slot back while it waits, so nested graphs cannot
//! starve the queue.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use dashmap::DashMap;
use tokio::runtime::{self, Handle};

use super::guard;
use crate::spawn;

/// A queued job: blocking work, with the guard that hands its node back if
/// the job is dropped unrun.
pub(crate) struct Job {
    pub(crate) priority: i32,
    pub(crate) run: Box<dyn FnOnce() + Send>,
}

/// The pool of one runtime.
struct Pool {
    handle: Handle,
    slots: Mutex<Slots>,
}

struct Slots {
    /// Queued jobs by (priority, highest first; arrival).
    queue: BTreeMap<(Reverse<i32>, u64), Job>,
    next: u64,
    /// Slots taken: draining the queue, or lent out by work that waits.
    running: usize,
    /// Set when the pool left the table: a submitter that still holds it
    /// looks it up again.
    retired: bool,
}

/// The pools of the runtimes that have blocking work, by runtime.
fn pools() -> &'static DashMap<runtime::Id, Arc<Pool>> {
    static POOLS: OnceLock<DashMap<runtime::Id, Arc<Pool>>> = OnceLock::new();
    POOLS.get_or_init(DashMap::new)
}

thread_local! {
    /// The pool whose slot this thread holds, while it drains one.
    static SLOT: RefCell<Option<Arc<Pool>>> = const { RefCell::new(None) };
}

/// Slots at most, per runtime: one per core.
fn cap() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

impl Pool {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Queues blocking work on `handle`'s pool, taking a free slot for it if
/// there is one.
pub(crate) fn submit(handle: &Handle, job: Job) {
    loop {
        let pool = pools()
            .entry(handle.id())
            .or_insert_with(|| {
                Arc::new(Pool {
                    handle: handle.clone(),
                    slots: Mutex::new(Slots {
                        queue: BTreeMap::new(),
                        next: 0,
                        running: 0,
                        retired: false,
                    }),
                })
            })
            .clone();
        let mut slots = pool.slots();
        if slots.retired {
            continue;
        }
        let ticket = (Reverse(job.priority), slots.next);
        slots.next += 1;
        slots.queue.insert(ticket, job);
        // A slot of this pool on this thread takes the job when its
        // current one returns.
        let here = SLOT.with(|slot| {
            slot.borrow()
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, &pool))
        });
        if !here && slots.running < cap() {
            slots.running += 1;
            drop(slots);
            open_slot(&pool);
        }
        return;
    }
}

/// Starts a slot: a `spawn_blocking` call that drains the pool.
fn open_slot(pool: &Arc<Pool>) {
    let unstarted = Unstarted(Some(Arc::clone(pool)));
    let pool = Arc::clone(pool);
    spawn::blocking_slot(&pool.handle.clone(), move || {
        let mut unstarted = unstarted;
        unstarted.0 = None;
        drain(pool);
    });
}

/// Runs queued jobs until the queue is empty, then gives the slot back.
fn drain(pool: Arc<Pool>) {
    let mut slot = InSlot::enter(Arc::clone(&pool));
    loop {
        let job = {
            let mut slots = pool.slots();
            match slots.queue.pop_first() {
                Some((_, job)) => {
                    // A backlog: open another slot, if one is free.
                    if !slots.queue.is_empty() && slots.running < cap() {
                        slots.running += 1;
                        drop(slots);
                        open_slot(&pool);
                    }
                    job
                }
                None => {
                    slot.open = false;
                    give_back(&pool, slots);
                    break;
                }
            }
        };
        // Jobs catch their work's panics; should one unwind anyway, the
        // guard gives the slot back, so that the pool keeps running.
        (job.run)();
    }
}

/// Frees a slot; the last one out takes an idle pool off the table.
fn give_back(pool: &Arc<Pool>, mut slots: MutexGuard<'_, Slots>) {
    slots.running -= 1;
    if slots.running == 0 && slots.queue.is_empty() {
        slots.retired = true;
        drop(slots);
        pools().remove_if(&pool.handle.id(), |_, p| Arc::ptr_eq(p, pool));
    }
}

/// This thread holds a slot of `pool` while it lives: `SLOT` says so, and
/// dropped while `open` (unwinding), it gives the slot back.
struct InSlot {
    pool: Arc<Pool>,
    previous: Option<Arc<Pool>>,
    open: bool,
}

impl InSlot {
    fn enter(pool: Arc<Pool>) -> InSlot {
        let previous = SLOT.with(|slot| slot.replace(Some(Arc::clone(&pool))));
        InSlot {
            pool,
            previous,
            open: true,
        }
    }
}

impl Drop for InSlot {
    fn drop(&mut self) {
        let previous = self.previous.take();
        SLOT.with(|slot| *slot.borrow_mut() = previous);
        if self.open {
            let slots = self.pool.slots();
            give_back(&self.pool, slots);
        }
    }
}

/// A slot whose runtime dropped it before it ran (shutdown): the runtime
/// can run nothing more, so its queued jobs are dropped, and their guards
/// hand their nodes back as interrupted.
struct Unstarted(Option<Arc<Pool>>);

impl Drop for Unstarted {
    fn drop(&mut self) {
        let Some(pool) = self.0.take() else {
            return;
        };
        let queue = {
            let mut slots = pool.slots();
            let queue = std::mem::take(&mut slots.queue);
            give_back(&pool, slots);
            queue
        };
        guard::drop_quietly(queue);
    }
}

/// Runs `wait` (a thread blocking on a nested graph) with this thread's
/// slot given back, so that the nested graph's blocking work can run.
pub(crate) fn while_waiting<R>(wait: impl FnOnce() -> R) -> R {
    let Some(pool) = SLOT.with(|slot| slot.borrow().clone()) else {
        return wait();
    };
    {
        let mut slots = pool.slots();
        slots.running -= 1;
        if !slots.queue.is_empty() && slots.running < cap() {
            slots.running += 1;
            drop(slots);
            open_slot(&pool);
        }
    }
    // The slot is not ours while we wait: jobs we submit go to others.
    let _rejoin = Rejoin(Some(pool));
    SLOT.with(|slot| *slot.borrow_mut() = None);
    wait()
}

/// Takes a slot back after a wait, even one that unwinds.
struct Rejoin(Option<Arc<Pool>>);

impl Drop for Rejoin {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            pool.slots().running += 1;
            SLOT.with(|slot| *slot.borrow_mut() = Some(pool));
        }
    }
}
