//! The `observe` scope: callbacks attached to every compute that starts
//! while a guard lives.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::callback::Callback;
use crate::engine::Attached;

/// An open scope.
struct Scope {
    id: u64,
    attached: Arc<Attached>,
    /// Whether it watches nested computes too (`Observing::including_nested`).
    nested: bool,
}

static SCOPES: RwLock<Vec<Scope>> = RwLock::new(Vec::new());
static SCOPED: AtomicUsize = AtomicUsize::new(0);

/// The callbacks of the scopes open now, for a compute that starts;
/// `nested` when it starts inside a task's body.
pub(crate) fn scoped(nested: bool) -> Vec<Arc<Attached>> {
    if SCOPED.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    let scopes = SCOPES.read().unwrap_or_else(PoisonError::into_inner);
    scopes
        .iter()
        .filter(|scope| !scope.attached.is_detached() && (scope.nested || !nested))
        .map(|scope| Arc::clone(&scope.attached))
        .collect()
}

/// Attaches `callback` to every compute that starts while the returned
/// guard lives, like entering dask's `with ProgressBar():` block.
///
/// Computes started before the call, or after the guard is dropped, are
/// not watched. The registration is process-wide, not per task or thread.
///
/// As in dask, a compute started inside a task's body (a task that
/// computes a graph of its own, with `.await` or
/// [`compute_blocking`](crate::Delayed::compute_blocking)) is not watched:
/// the scope shows the computes you started, and the nested graph's tasks
/// run inside one of their tasks. Ask for those too with
/// [`Observing::including_nested`]. A compute started in a task that a body
/// spawned with `tokio::spawn` is not inside the body, and is watched.
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
        .push(Scope {
            id,
            attached: Attached::new(Arc::new(callback)),
            nested: false,
        });
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

impl Observing {
    /// Watches nested computes too: those started inside a task's body,
    /// which [`observe`] leaves out by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// use delayed::{delayed, Callback, Graph};
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
    /// #[delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// /// A task that computes a graph of its own.
    /// #[delayed]
    /// async fn outer(x: u64) -> u64 {
    ///     inc(x).compute().await.unwrap()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let top_level = Arc::new(Computes::default());
    /// let every = Arc::new(Computes::default());
    /// {
    ///     let _top = delayed::observe(top_level.clone());
    ///     let _every = delayed::observe(every.clone()).including_nested();
    ///     assert_eq!(outer(1).compute().await.unwrap(), 2);
    /// }
    /// assert_eq!(top_level.0.load(Ordering::Relaxed), 1); // the outer compute
    /// assert_eq!(every.0.load(Ordering::Relaxed), 2); // and the nested one
    /// # }
    /// ```
    pub fn including_nested(self) -> Observing {
        let mut scopes = SCOPES.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(scope) = scopes.iter_mut().find(|scope| scope.id == self.id) {
            scope.nested = true;
        }
        drop(scopes);
        self
    }
}

impl Drop for Observing {
    fn drop(&mut self) {
        let mut scopes = SCOPES.write().unwrap_or_else(PoisonError::into_inner);
        let removed = scopes
            .iter()
            .position(|scope| scope.id == self.id)
            .map(|i| scopes.remove(i));
        if removed.is_some() {
            SCOPED.fetch_sub(1, Ordering::Release);
        }
        drop(scopes);
        // The callback may go with it: its `Drop` runs after the lock.
        drop(removed);
    }
}
