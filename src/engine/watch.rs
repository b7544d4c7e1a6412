//! Who is watching: the callbacks of running computes, and the task events
//! the engine sends them.
//!
//! When no callback is attached anywhere, each task costs one relaxed
//! atomic load here: no clock reads, no locks, no events.
//!
//! Callbacks are user code. Each call is guarded: a callback that panics is
//! detached at once (it hears nothing more, in any compute), and its panic
//! becomes an error for the node (or the compute) whose event it was
//! hearing. See "User code and panics" in the engine's design doc.
//!
//! # What "attached" means
//!
//! A callback is attached once, however many computes it watches: every
//! attachment of one callback (one value, as `Callback::identity` tells)
//! while it is attached anywhere is the same [`Attached`]. So a task that
//! two watched computes share is heard once by each callback that watches
//! either (not once per compute), a callback given twice to one compute
//! hears it once, and a panic detaches the callback from every compute.
//!
//! Internal nodes (literals, joins and maps of nodes, `Core::is_internal`)
//! are not tasks of the user's graph: no callback hears of them.
//!
//! # Nested computes
//!
//! The engine marks the thread while a task's body runs (called, or its
//! future polled): [`in_body`] and [`body`]. A compute that starts inside
//! a body is a nested compute; the `observe` scope leaves those out unless
//! asked for them (see `observe/scope.rs`).

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use foldhash::fast::RandomState;
use tokio::time::Instant;

use super::node::{AnyNode, NodeRef};
use super::state::Core;
use crate::callback::{Callback, Outcome, TaskFinished, TaskRetried, TaskStarted};
use crate::{Error, Key};

/// A callback attached to computes, with its detached flag: shared by every
/// compute it watches, so that it hears each task once and a panic detaches
/// it everywhere.
pub(crate) struct Attached {
    callback: Arc<dyn Callback>,
    detached: AtomicBool,
    /// What `Callback::identity` said: the key in `ATTACHED`.
    identity: usize,
}

/// The callbacks attached now, by identity. A leaf lock: nothing is locked
/// and no user code runs under it.
static ATTACHED: Mutex<BTreeMap<usize, Weak<Attached>>> = Mutex::new(BTreeMap::new());

impl Attached {
    /// Attaches `callback`: the callback's live attachment if it has one
    /// (it watches another compute, or an `observe` scope holds it), a new
    /// one otherwise.
    pub(crate) fn new(callback: Arc<dyn Callback>) -> Arc<Attached> {
        // `identity` may be the user's: called outside the lock, guarded.
        let own = Arc::as_ptr(&callback).cast::<()>() as usize;
        let identity = catch_unwind(AssertUnwindSafe(|| callback.identity())).unwrap_or(own);
        let mut attached = ATTACHED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(live) = attached.get(&identity).and_then(Weak::upgrade) {
            drop(attached);
            // Dropped outside the lock: a `Drop` of the user's.
            drop(callback);
            return live;
        }
        let new = Arc::new(Attached {
            callback,
            detached: AtomicBool::new(false),
            identity,
        });
        attached.insert(identity, Arc::downgrade(&new));
        new
    }

    /// Whether a panic detached it.
    pub(crate) fn is_detached(&self) -> bool {
        self.detached.load(Ordering::Acquire)
    }

    /// Calls one hook, unless detached. A panic detaches the callback and
    /// comes back as an error about `key`.
    fn call(
        &self,
        key: impl FnOnce() -> Key,
        hook: impl FnOnce(&dyn Callback),
    ) -> Result<(), Error> {
        if self.is_detached() {
            return Ok(());
        }
        match catch_unwind(AssertUnwindSafe(|| hook(&*self.callback))) {
            Ok(()) => Ok(()),
            Err(payload) => {
                self.detached.store(true, Ordering::Release);
                Err(Error::panic(key(), payload))
            }
        }
    }

    fn same(&self, other: &Attached) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut attached = ATTACHED.lock().unwrap_or_else(PoisonError::into_inner);
        // A new attachment of the same callback may have taken the entry
        // already: only ours goes.
        let ours = attached
            .get(&self.identity)
            .is_some_and(|weak| std::ptr::eq(weak.as_ptr(), self));
        if ours {
            attached.remove(&self.identity);
        }
    }
}

/// A running compute's callbacks and the tasks it covers.
///
/// Tasks are told apart by node, not by key: two computes of unrelated
/// graphs whose tasks share a key (`named` alike, say) do not hear each
/// other's tasks.
struct Watch {
    callbacks: Vec<Arc<Attached>>,
    /// The tasks, by the address of their `Core`.
    tasks: HashSet<usize, RandomState>,
    /// Keeps those addresses from being reused by other nodes while the
    /// compute is watched (the nodes themselves may go: a weak handle keeps
    /// only the allocation).
    _held: Vec<Weak<dyn AnyNode>>,
}

/// How a watch tells a task: the address of its core, unique while the
/// node's allocation lives.
fn task_id(core: &Core) -> usize {
    std::ptr::from_ref(core) as usize
}

static WATCHES: RwLock<Vec<Arc<Watch>>> = RwLock::new(Vec::new());
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Starts watching a compute of `root` by `callbacks`: takes the graph,
/// calls `start`, and registers for task events. `Ok(None)` when there is
/// nobody to tell.
///
/// # Errors
///
/// A `start` that panicked: that callback is detached, the others heard
/// `start` and will hear `finish`, and the compute fails with the panic.
pub(crate) fn begin(
    root: &NodeRef,
    callbacks: Vec<Arc<Attached>>,
) -> (Option<Watching>, Result<(), Error>) {
    let mut unique: Vec<Arc<Attached>> = Vec::with_capacity(callbacks.len());
    for callback in callbacks {
        // One callback given twice (options and a scope) hears it once.
        if !callback.is_detached() && !unique.iter().any(|c| c.same(&callback)) {
            unique.push(callback);
        }
    }
    let callbacks = unique;
    if callbacks.is_empty() {
        return (None, Ok(()));
    }
    let (graph, mut held) = super::snapshot::graph_and_tasks(root);
    let tasks = held
        .iter()
        .filter_map(Weak::upgrade)
        .map(|node| task_id(node.core()))
        .collect();
    // The compute holds its root for as long as it is watched, so its id
    // cannot be reused; a weak reference to it would only stop `.await`
    // from moving its output out (`Arc::get_mut` fails while one lives).
    let root_address = Arc::as_ptr(root).cast::<()>();
    held.retain(|task| Weak::as_ptr(task).cast::<()>() != root_address);
    let watch = Arc::new(Watch {
        tasks,
        _held: held,
        callbacks,
    });
    WATCHES
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arc::clone(&watch));
    ACTIVE.fetch_add(1, Ordering::Release);
    let mut result = Ok(());
    for callback in &watch.callbacks {
        let called = callback.call(|| root.core().key(), |c| c.start(&graph));
        if result.is_ok() {
            result = called;
        }
    }
    (Some(Watching { watch }), result)
}

/// A compute being watched; unregisters when dropped.
pub(crate) struct Watching {
    watch: Arc<Watch>,
}

impl Watching {
    /// Calls `finish` on the compute's callbacks.
    ///
    /// # Errors
    ///
    /// A `finish` that panicked, as an error about `root`.
    pub(crate) fn finish(self, root: &Key, result: Result<(), &Error>) -> Result<(), Error> {
        let mut outcome = Ok(());
        for callback in &self.watch.callbacks {
            let called = callback.call(|| root.clone(), |c| c.finish(result));
            if outcome.is_ok() {
                outcome = called;
            }
        }
        outcome
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut watches = WATCHES.write().unwrap_or_else(PoisonError::into_inner);
        let removed = watches
            .iter()
            .position(|w| Arc::ptr_eq(w, &self.watch))
            .map(|i| watches.swap_remove(i));
        if removed.is_some() {
            ACTIVE.fetch_sub(1, Ordering::Release);
        }
        drop(watches);
        // The callbacks may go with it: their `Drop` runs after the lock.
        drop(removed);
    }
}

/// Whether any compute is watched right now.
pub(crate) fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0
}

/// A run that watchers saw start: they hear of its end, even after their
/// compute ended (a task aborted by a dropped compute ends a little later).
pub(crate) struct Watched {
    started: Instant,
    callbacks: Heard,
}

/// The callbacks that hear a task: each once, even when several watched
/// computes share the task or one callback watches several of them (see
/// "What attached means" above).
enum Heard {
    /// The task is in one watched compute (the common case): its
    /// callbacks, unique already, with no list made for the task.
    One(Arc<Watch>),
    /// The task is in several.
    Many(Vec<Arc<Attached>>),
}

impl Heard {
    fn all(&self) -> &[Arc<Attached>] {
        match self {
            Heard::One(watch) => &watch.callbacks,
            Heard::Many(all) => all,
        }
    }
}

/// Adds the callbacks of `more` that are attached and not in `all` yet.
fn add_unique(all: &mut Vec<Arc<Attached>>, more: &[Arc<Attached>]) {
    for callback in more {
        if !callback.is_detached() && !all.iter().any(|c| c.same(callback)) {
            all.push(Arc::clone(callback));
        }
    }
}

/// The id of this thread, for task events: read once per thread (asking
/// `std::thread::current` each time clones and drops a handle).
fn this_thread() -> ThreadId {
    thread_local! {
        static ID: ThreadId = std::thread::current().id();
    }
    ID.try_with(|id| *id)
        .unwrap_or_else(|_| std::thread::current().id())
}

/// Tells the watchers of `core`'s task that its body starts; it was ready
/// to start at `ready` (`None`: it starts as soon as it is ready). Returns
/// what is needed to report its end, when anyone watches.
///
/// # Errors
///
/// A `task_started` that panicked: the run must not go on, and fails with
/// this error (the other watchers still hear of its end).
pub(crate) fn task_started(
    core: &Core,
    ready: Option<Instant>,
) -> (Option<Watched>, Result<(), Error>) {
    if !is_active() {
        return (None, Ok(()));
    }
    let (key, internal) = {
        let st = core.lock();
        (core.key_locked(&st), core.is_internal(&st))
    };
    if internal {
        // Not a task of the user's graph: nobody hears of it.
        return (None, Ok(()));
    }
    let id = task_id(core);
    let mut heard: Option<Heard> = None;
    // Only collect under the lock: callbacks run after it is released.
    let watches = WATCHES.read().unwrap_or_else(PoisonError::into_inner);
    for watch in watches.iter().filter(|watch| watch.tasks.contains(&id)) {
        heard = Some(match heard.take() {
            None => Heard::One(Arc::clone(watch)),
            Some(Heard::One(first)) => {
                let mut all = Vec::new();
                add_unique(&mut all, &first.callbacks);
                add_unique(&mut all, &watch.callbacks);
                Heard::Many(all)
            }
            Some(Heard::Many(mut all)) => {
                add_unique(&mut all, &watch.callbacks);
                Heard::Many(all)
            }
        });
    }
    drop(watches);
    let Some(callbacks) = heard else {
        return (None, Ok(()));
    };
    let at = Instant::now();
    let event = TaskStarted {
        key,
        at,
        queued: ready.map_or(Duration::ZERO, |ready| at.saturating_duration_since(ready)),
        thread: this_thread(),
    };
    let mut result = Ok(());
    for callback in callbacks.all() {
        let called = callback.call(|| event.key.clone(), |c| c.task_started(&event));
        if result.is_ok() {
            result = called;
        }
    }
    let watched = Watched {
        started: event.at,
        callbacks,
    };
    (Some(watched), result)
}

impl Watched {
    /// Tells the watchers that the run ended.
    ///
    /// # Errors
    ///
    /// A `task_finished` that panicked, as an error about the task.
    pub(crate) fn finished(self, core: &Core, outcome: Outcome) -> Result<(), Error> {
        let event = TaskFinished {
            key: core.key(),
            started: self.started,
            elapsed: self.started.elapsed(),
            thread: this_thread(),
            outcome,
        };
        let mut result = Ok(());
        for callback in self.callbacks.all() {
            let called = callback.call(|| event.key.clone(), |c| c.task_finished(&event));
            if result.is_ok() {
                result = called;
            }
        }
        result
    }
}

impl Watched {
    /// Tells the watchers that attempt `attempt` failed with `error` and
    /// the task runs again after `delay`.
    ///
    /// # Errors
    ///
    /// A `task_retried` that panicked, as an error about the task: the
    /// run does not go on.
    pub(crate) fn retried(
        &self,
        core: &Core,
        attempt: u32,
        error: &Error,
        delay: Duration,
    ) -> Result<(), Error> {
        let event = TaskRetried {
            key: core.key(),
            attempt,
            error: error.clone(),
            delay,
        };
        let mut result = Ok(());
        for callback in self.callbacks.all() {
            let called = callback.call(|| event.key.clone(), |c| c.task_retried(&event));
            if result.is_ok() {
                result = called;
            }
        }
        result
    }
}

/// Whether anyone watches now: the moment a task becomes ready is read
/// only then.
pub(crate) fn ready_now() -> Option<Instant> {
    is_active().then(Instant::now)
}

/// How a run's result is reported.
pub(crate) fn outcome<T>(result: &Result<T, Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Done,
        Err(err) => Outcome::Failed(err.clone()),
    }
}

/// Reports the end of a run to its watchers: the run's result, or the
/// panic of a `task_finished` when the run had succeeded.
pub(crate) fn report_end<T>(
    watched: Option<Watched>,
    core: &Core,
    result: Result<T, Error>,
) -> Result<T, Error> {
    match watched {
        Some(watched) => failed_by(watched.finished(core, outcome(&result)), result),
        None => result,
    }
}

/// `result`, unless a hook that heard of it panicked: the panic fails a
/// result that had succeeded (its value is dropped); a failure stays.
pub(crate) fn failed_by<T>(
    hooked: Result<(), Error>,
    result: Result<T, Error>,
) -> Result<T, Error> {
    match (hooked, result) {
        (Err(panic), Ok(value)) => {
            super::guard::drop_quietly(value);
            Err(panic)
        }
        (_, result) => result,
    }
}

thread_local! {
    /// How many task bodies run on this thread now, one inside another
    /// (a body that computes a nested graph in place).
    static IN_BODY: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f`, a task's body (or a poll of its future), marked as one.
pub(crate) fn in_body<R>(f: impl FnOnce() -> R) -> R {
    /// Takes the mark back, even when the body unwinds.
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            IN_BODY.with(|depth| depth.set(depth.get().saturating_sub(1)));
        }
    }
    IN_BODY.with(|depth| depth.set(depth.get() + 1));
    let _leave = Leave;
    f()
}

/// A task's body future, each poll marked with [`in_body`].
pub(crate) async fn body<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| in_body(|| future.as_mut().poll(cx))).await
}

/// Whether a task's body runs on this thread now: a compute that starts
/// here is nested in it.
pub(crate) fn is_in_body() -> bool {
    IN_BODY.with(Cell::get) > 0
}
