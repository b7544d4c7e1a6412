//! [`CacheStats`]: what a cache served, missed, wrote and read.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of one [`Cache`](super::Cache) handle and its clones, since it
/// was made.
///
/// # Examples
///
/// ```
/// let cache = delayed::cache::Cache::memory();
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.bytes_written, stats.bytes_read), (0, 0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Cached nodes found in the store: they did not run.
    pub hits: u64,
    /// Cached nodes not found (or found unreadable): they ran.
    pub misses: u64,
    /// Bytes of entries written.
    pub bytes_written: u64,
    /// Bytes of entries read back.
    pub bytes_read: u64,
    /// Entries found corrupt, truncated or unreadable (each also a miss).
    pub corrupt: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) corrupt: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> CacheStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            bytes_written: get(&self.bytes_written),
            bytes_read: get(&self.bytes_read),
            corrupt: get(&self.corrupt),
        }
    }
}
