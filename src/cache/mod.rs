//! Results that outlive the process: a persistent cache, resume after a
//! crash, recompute only what changed.
//!
//! Mark a function `#[delayed(cache)]` (its parameters and result are
//! serde types) and give a compute a cache with [`Options::cache`]. Before
//! a cached node runs, its *content key* is computed and looked up: a hit
//! finishes the node without running it, a miss runs it and writes the
//! entry as soon as it finished. So a pipeline killed midway (even with
//! `kill -9`) and run again runs only the nodes that had not finished.
//!
//! ```
//! use delayed::{cache::Cache, delayed, Options};
//!
//! #[delayed(cache)]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), delayed::Error> {
//! let cache = Cache::memory(); // or Cache::dir(".delayed-cache")?
//! let options = || Options::new().cache(&cache);
//! assert_eq!(square(7).compute_with(options()).await?, 49); // runs
//! assert_eq!(square(7).compute_with(options()).await?, 49); // read from the cache
//! assert_eq!((cache.stats().misses, cache.stats().hits), (1, 1));
//! # Ok(()) }
//! ```
//!
//! A function without `cache`, and a compute without a cache, behave
//! exactly as without this module: nothing is hashed, nothing is written.
//!
//! # What a key is made of, and what invalidates a result
//!
//! A cached node's key is the SHA-256 of:
//!
//! - the function's path (`module::name`);
//! - its *code version*: a hash (FNV-1a) of the function's own tokens,
//!   taken by the macro, so editing the function's signature or body
//!   (even a comment inside it does not count: comments are not tokens)
//!   changes it;
//! - the optional `#[delayed(cache, version = "2")]`: bump it by hand when
//!   something the function calls changes, which the macro cannot see;
//! - the name of its output type;
//! - for each input in order, the *output digest* of the input: the
//!   SHA-256 of its serialized output bytes (for a literal argument, of
//!   the literal; for a cached input, the digest of its entry, known
//!   without reading it).
//!
//! So a result is invalidated by: editing the function; bumping its
//! `version`; changing its output type; any input whose serialized output
//! changes (a different argument; an upstream node that now makes other
//! bytes; a [`SourceFile`] whose content, or length and time, changed).
//!
//! A result is *not* invalidated by: editing a function it calls, a
//! constant or a dependency (bump `version`); changing the toolchain or
//! the serde representation's meaning without changing bytes; renaming a
//! variable outside the function; moving the cache directory; an upstream
//! node that reran and made the same bytes (*early cutoff*: its
//! dependents keep their keys and are not rerun). Nodes that are not
//! cached run on every compute; only their output bytes count.
//!
//! Errors are never cached: a failed node runs again next time.
//!
//! # Stores
//!
//! - [`DirStore`], the default ([`Cache::dir`]): a directory managed by
//!   cacache, atomic writes (temporary file and rename), safe for several
//!   processes at once, with a size bound and least-recently-used
//!   eviction ([`DirStore::max_bytes`]).
//! - [`MemoryStore`]: in memory, bounded, for tests.
//! - With the `nats` feature, `JetStreamStore`: a JetStream object store
//!   bucket, so the clients of a cluster (and their workers' results,
//!   read back by the client that ran them) are shared by every process
//!   that opens it. Bounded by age and size, not by use.
//! - Any [`Store`] of your own.
//!
//! Every entry is postcard bytes (a compact binary serde codec) in a frame
//! with a magic, a format version, its length and its SHA-256. A corrupt,
//! truncated, unreadable or wrongly typed entry is a miss with a `warn`
//! event, removed from the store; never a wrong result, never a panic.
//!
//! # Seen everywhere
//!
//! A node served from the cache is reported with
//! [`Outcome::Cached`](crate::Outcome::Cached) to callbacks (and so to the
//! progress bar and the timeline), is
//! [`TaskState::Cached`](crate::TaskState::Cached) in graph snapshots (and
//! the DOT view), and its task span holds a `task.cached = true` event.
//!
//! # Lazy reads
//!
//! A hit is not read when it is found: its node finishes with its output
//! left in the store. It is read (once) only when something here needs
//! the value: a dependent that runs, or the compute's result. A hit whose
//! dependents are all hits is never read.

mod codec;
mod dir;
#[cfg(feature = "nats")]
mod jetstream;
mod memo;
mod memory;
mod source;
mod spec;
mod stats;
mod store;

use std::path::Path;
use std::sync::Arc;

pub use self::codec::Digest;
pub use self::dir::DirStore;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub use self::jetstream::{JetStreamStore, JetStreamStoreConfig};
pub use self::memory::MemoryStore;
pub use self::source::SourceFile;
pub use self::stats::CacheStats;
use self::stats::Counters;
pub use self::store::{Store, StoreError, StoreFuture};
use crate::Options;

/// A cache of results: a [`Store`], the codec and counts. Clones share
/// all three.
///
/// # Examples
///
/// ```
/// use delayed::cache::{Cache, MemoryStore};
///
/// let cache = Cache::new(MemoryStore::new());
/// let same = cache.clone();
/// assert_eq!(same.stats(), cache.stats());
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    stats: Counters,
}

impl Cache {
    /// A cache over `store`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = delayed::cache::Cache::new(delayed::cache::MemoryStore::with_max_bytes(1 << 20));
    /// # let _ = cache;
    /// ```
    pub fn new(store: impl Store) -> Cache {
        Cache::from_arc(Arc::new(store))
    }

    /// A cache over a shared `store`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use delayed::cache::{Cache, MemoryStore, Store};
    ///
    /// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    /// let cache = Cache::from_arc(store.clone());
    /// # let _ = cache;
    /// ```
    pub fn from_arc(store: Arc<dyn Store>) -> Cache {
        Cache {
            inner: Arc::new(Inner {
                store,
                stats: Counters::default(),
            }),
        }
    }

    /// A cache in the directory `dir` (a [`DirStore`], without a bound).
    ///
    /// # Errors
    ///
    /// The directory could not be created.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("delayed-doc-cache-{}", std::process::id()));
    /// let cache = delayed::cache::Cache::dir(&dir)?;
    /// # let _ = cache; std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), delayed::cache::StoreError>(())
    /// ```
    pub fn dir(dir: impl AsRef<Path>) -> Result<Cache, StoreError> {
        Ok(Cache::new(DirStore::open(dir)?))
    }

    /// A cache in memory, without a bound (a [`MemoryStore`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = delayed::cache::Cache::memory();
    /// assert_eq!(cache.stats().hits, 0);
    /// ```
    pub fn memory() -> Cache {
        Cache::new(MemoryStore::new())
    }

    /// The store.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = delayed::cache::Cache::memory();
    /// let store = cache.store();
    /// # let _ = store;
    /// ```
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Hits, misses, bytes written and read by this cache (and its
    /// clones) so far.
    ///
    /// # Examples
    ///
    /// ```
    /// let stats = delayed::cache::Cache::memory().stats();
    /// assert_eq!(stats.misses, 0);
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.inner.stats.read()
    }

    /// Drops every entry of the store.
    ///
    /// # Errors
    ///
    /// The store could not be cleared.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = delayed::cache::Cache::memory();
    /// cache.clear().await.unwrap();
    /// # }
    /// ```
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.inner.store.clear().await
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Looks up the compute's `#[delayed(cache)]` nodes in `cache` before
    /// they run, and keeps their results there. See [`crate::cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{cache::Cache, delayed, Options};
    ///
    /// #[delayed(cache)]
    /// fn double(x: u64) -> u64 { x * 2 }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = Cache::memory();
    /// let x = double(double(1));
    /// assert_eq!(x.compute_with(Options::new().cache(&cache)).await.unwrap(), 4);
    /// assert_eq!(cache.stats().misses, 2);
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub fn cache(self, cache: &Cache) -> Options {
        self.placed(Arc::new(cache.clone()))
    }
}

/// What `#[delayed(cache)]` expands to. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use super::spec::{fnv1a, input, spec, InputCodec};
}
