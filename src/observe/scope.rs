//! The `observe` scope: callbacks attached to every compute that starts
//! while a guard lives.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::callback::Callback;
use crate::engine::Attached;

static SCOPES: RwLock<Vec<(u64, Arc<Attached>)>> = RwLock::new(Vec::new());
static SCOPED: AtomicUsize = AtomicUsize::new(0);

/// The callbacks of the scopes open now, for a compute that starts.
pub(crate) fn scoped() -> Vec<Arc<Attached>> {
    if SCOPED.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    let scopes = SCOPES.read().unwrap_or_else(PoisonError::into_inner);
    scopes
        .iter()
        .filter(|(_, attached)| !attached.is_detached())
        .map(|(_, attached)| Arc::clone(attached))
        .collect()
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
        .push((id, Attached::new(Arc::new(callback))));
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
