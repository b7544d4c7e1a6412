//! Who is watching: the callbacks of running computes, and the task events
//! the scheduler sends them.
//!
//! When no callback is attached anywhere, each task costs one relaxed
//! atomic load here: no clock reads, no locks, no events.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::time::Instant;

use crate::callback::{Callback, Outcome, TaskFinished, TaskStarted};
use crate::task::{Core, Task};
use crate::{Error, Graph, Key};

/// A running compute's callbacks and the keys of the tasks it covers.
struct Watch {
    callbacks: Vec<Arc<dyn Callback>>,
    keys: HashSet<Key>,
}

static WATCHES: RwLock<Vec<Arc<Watch>>> = RwLock::new(Vec::new());
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

static SCOPES: RwLock<Vec<(u64, Arc<dyn Callback>)>> = RwLock::new(Vec::new());
static SCOPED: AtomicUsize = AtomicUsize::new(0);

/// Starts watching a compute of `root`, if it or the current scope has
/// callbacks: takes the graph, calls `start`, and registers for task events.
pub(crate) fn begin(root: &Arc<dyn Task>, own: &[Arc<dyn Callback>]) -> Option<Watching> {
    let mut callbacks = own.to_vec();
    if SCOPED.load(Ordering::Acquire) > 0 {
        let scopes = SCOPES.read().unwrap_or_else(PoisonError::into_inner);
        callbacks.extend(scopes.iter().map(|(_, callback)| Arc::clone(callback)));
    }
    if callbacks.is_empty() {
        return None;
    }
    let graph = Graph::snapshot(root);
    let watch = Arc::new(Watch {
        keys: graph
            .nodes()
            .iter()
            .map(|node| node.key().clone())
            .collect(),
        callbacks,
    });
    WATCHES
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arc::clone(&watch));
    ACTIVE.fetch_add(1, Ordering::Release);
    for callback in &watch.callbacks {
        callback.start(&graph);
    }
    Some(Watching { watch })
}

/// A compute being watched; unregisters when dropped.
pub(crate) struct Watching {
    watch: Arc<Watch>,
}

impl Watching {
    /// Calls `finish` on the compute's callbacks.
    pub(crate) fn finish(self, result: Result<(), &Error>) {
        for callback in &self.watch.callbacks {
            callback.finish(result);
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut watches = WATCHES.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = watches.iter().position(|w| Arc::ptr_eq(w, &self.watch)) {
            watches.swap_remove(i);
            ACTIVE.fetch_sub(1, Ordering::Release);
        }
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
    /// Each callback once, even when several watched computes share the
    /// task or one callback watches several of them.
    callbacks: Vec<Arc<dyn Callback>>,
}

/// Tells the watchers of `core`'s task that its body starts. Returns what
/// is needed to report its end, when anyone watches.
pub(crate) fn task_started(core: &Core) -> Option<Watched> {
    if !is_active() {
        return None;
    }
    let key = core.key();
    let mut callbacks: Vec<Arc<dyn Callback>> = Vec::new();
    // Only collect under the lock: callbacks run after it is released.
    let watches = WATCHES.read().unwrap_or_else(PoisonError::into_inner);
    for watch in watches.iter() {
        if watch.keys.contains(&key) {
            for callback in &watch.callbacks {
                let same = |c: &Arc<dyn Callback>| {
                    std::ptr::addr_eq(Arc::as_ptr(c), Arc::as_ptr(callback))
                };
                if !callbacks.iter().any(same) {
                    callbacks.push(Arc::clone(callback));
                }
            }
        }
    }
    drop(watches);
    if callbacks.is_empty() {
        return None;
    }
    let event = TaskStarted {
        key,
        at: Instant::now(),
        thread: std::thread::current().id(),
    };
    for callback in &callbacks {
        callback.task_started(&event);
    }
    Some(Watched {
        started: event.at,
        callbacks,
    })
}

impl Watched {
    /// Tells the watchers that the run ended.
    pub(crate) fn finished(self, core: &Core, outcome: Outcome) {
        let event = TaskFinished {
            key: core.key(),
            started: self.started,
            elapsed: self.started.elapsed(),
            thread: std::thread::current().id(),
            outcome,
        };
        for callback in &self.callbacks {
            callback.task_finished(&event);
        }
    }
}

/// How a run's result is reported.
pub(crate) fn outcome<T>(result: &Result<T, Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Done,
        Err(err) => Outcome::Failed(err.clone()),
    }
}

/// Attaches `callback` to every compute that starts while the returned
/// guard lives, like entering dask's `with ProgressBar():` block.
///
/// Computes started before the call, or after the guard is dropped, are
/// not watched. The registration is process-wide, not per task or thread.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// use delayed::{Callback, Graph};
///
/// #[derive(Default)]
/// struct Computes(AtomicUsize);
///
/// impl Callback for Computes {
///     fn start(&self, _graph: &Graph) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let seen = Arc::new(Computes::default());
/// {
///     let _watching = delayed::observe(seen.clone());
///     delayed::Delayed::value(1).map(|x: u64| x + 1).compute().await.unwrap();
///     delayed::Delayed::value(2).map(|x: u64| x + 1).compute().await.unwrap();
/// }
/// delayed::Delayed::value(3).map(|x: u64| x + 1).compute().await.unwrap();
/// assert_eq!(seen.0.load(Ordering::Relaxed), 2);
/// # }
/// ```
pub fn observe(callback: impl Callback) -> Observing {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    SCOPES
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push((id, Arc::new(callback)));
    SCOPED.fetch_add(1, Ordering::Release);
    Observing { id }
}

/// The guard of [`observe`]: the callback stays attached until it drops.
///
/// # Examples
///
/// ```
/// use delayed::{Callback, Observing};
///
/// struct Quiet;
/// impl Callback for Quiet {}
///
/// let watching: Observing = delayed::observe(Quiet);
/// drop(watching); // detached
/// ```
#[must_use = "the callback is detached as soon as this guard is dropped"]
#[derive(Debug)]
pub struct Observing {
    id: u64,
}

impl Drop for Observing {
    fn drop(&mut self) {
        let mut scopes = SCOPES.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = scopes.iter().position(|(id, _)| *id == self.id) {
            scopes.remove(i);
            SCOPED.fetch_sub(1, Ordering::Release);
        }
    }
}
