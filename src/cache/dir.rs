//! [`DirStore`]: the default store, a directory managed by cacache.
//!
//! Why cacache (and not redb or fjall): it is made for exactly this, a
//! content-addressed cache on disk (npm's and orogene's); every write goes
//! to a temporary file renamed into place, and index lines carry their own
//! hash, so a process killed mid-write leaves no partial entry and a torn
//! index line is skipped; several processes can share one directory
//! without a lock file, which an embedded database (one writer process)
//! does not allow; and it is well kept. Entries are written once and never
//! changed, which is the access pattern it is built for.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::codec::{hex, unhex, Digest};
use super::store::{Store, StoreError, StoreFuture};

/// A [`Store`] in a directory, safe to share between processes, with an
/// optional size bound enforced by evicting the least recently used
/// entries (each read refreshes an entry's time in the index).
///
/// # Examples
///
/// ```
/// use delayed::cache::{Cache, DirStore};
///
/// let dir = std::env::temp_dir().join(format!("delayed-doc-dir-{}", std::process::id()));
/// let cache = Cache::new(DirStore::open(&dir)?.max_bytes(64 << 20));
/// # let _ = cache;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), delayed::cache::StoreError>(())
/// ```
#[derive(Clone, Debug)]
pub struct DirStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_bytes: Option<u64>,
    /// What this process believes the entries weigh: checked against the
    /// bound after each write, and recounted from the index when over it.
    bytes: AtomicU64,
    /// The last index time this handle wrote, in milliseconds: each use
    /// gets a later one, so uses within one millisecond keep their order.
    clock: AtomicU64,
}

impl DirStore {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    ///
    /// The directory could not be created.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("delayed-doc-open-{}", std::process::id()));
    /// let store = delayed::cache::DirStore::open(&dir)?;
    /// assert_eq!(store.dir(), dir.as_path());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), delayed::cache::StoreError>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<DirStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|err| StoreError::new(format!("cannot create {}: {err}", dir.display())))?;
        let bytes = total(&dir);
        Ok(DirStore {
            inner: Arc::new(Inner {
                dir,
                max_bytes: None,
                bytes: AtomicU64::new(bytes),
                clock: AtomicU64::new(0),
            }),
        })
    }

    /// Keeps the store under `max_bytes` of entries: after a write that
    /// goes over, the least recently used entries are removed.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("delayed-doc-max-{}", std::process::id()));
    /// let store = delayed::cache::DirStore::open(&dir)?.max_bytes(1 << 30);
    /// # let _ = store; std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), delayed::cache::StoreError>(())
    /// ```
    pub fn max_bytes(self, max_bytes: u64) -> DirStore {
        let inner = Inner {
            dir: self.inner.dir.clone(),
            max_bytes: Some(max_bytes),
            bytes: AtomicU64::new(self.inner.bytes.load(Ordering::Relaxed)),
            clock: AtomicU64::new(0),
        };
        DirStore {
            inner: Arc::new(inner),
        }
    }

    /// The directory.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("delayed-doc-path-{}", std::process::id()));
    /// let store = delayed::cache::DirStore::open(&dir)?;
    /// println!("{}", store.dir().display());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), delayed::cache::StoreError>(())
    /// ```
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The bytes of the entries in the directory, counted from its index.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("delayed-doc-bytes-{}", std::process::id()));
    /// let store = delayed::cache::DirStore::open(&dir)?;
    /// assert_eq!(store.bytes(), 0);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), delayed::cache::StoreError>(())
    /// ```
    pub fn bytes(&self) -> u64 {
        total(&self.inner.dir)
    }

    /// Runs `f` on the blocking pool (cacache's file work blocks).
    fn blocking<'a, T: Send + 'static>(
        &'a self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    crate::spawn::blocking_on(&handle, "delayed cache file", move || f(&inner))
                        .await
                        .map_err(|err| {
                            StoreError::new(format!("a cache file task failed: {err}"))
                        })?
                }
                Err(_) => f(&inner),
            }
        })
    }
}

/// The bytes of the live entries in `dir`'s index.
fn total(dir: &Path) -> u64 {
    cacache::list_sync(dir)
        .filter_map(Result::ok)
        .map(|entry| entry.size as u64)
        .sum()
}

fn failed(what: &str, key: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("cannot {what} cache entry {key}: {err}"))
}

impl Inner {
    /// The index time of a use now: the wall clock in milliseconds, and
    /// always later than this handle's last use.
    fn tick(&self) -> u128 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let mut last = self.clock.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .clock
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return u128::from(next),
                Err(seen) => last = seen,
            }
        }
    }

    /// Removes least recently used entries until the store is under its bound.
    fn evict(&self) {
        let Some(max) = self.max_bytes else { return };
        if self.bytes.load(Ordering::Relaxed) <= max {
            return;
        }
        let mut entries: Vec<_> = cacache::list_sync(&self.dir)
            .filter_map(Result::ok)
            .collect();
        let mut bytes: u64 = entries.iter().map(|entry| entry.size as u64).sum();
        entries.sort_by_key(|entry| entry.time);
        for entry in entries {
            if bytes <= max {
                break;
            }
            let removed = cacache::RemoveOpts::new()
                .remove_fully(true)
                .remove_sync(&self.dir, &entry.key);
            if removed.is_ok() {
                bytes -= entry.size as u64;
            }
        }
        self.bytes.store(bytes, Ordering::Relaxed);
    }
}

impl Store for DirStore {
    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Digest>> {
        let key = key.to_owned();
        self.blocking(move |inner| {
            let found = cacache::metadata_sync(&inner.dir, &key)
                .map_err(|err| failed("look up", &key, err))?;
            Ok(found.and_then(|entry| entry.metadata.get("digest")?.as_str().and_then(unhex)))
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let key = key.to_owned();
        self.blocking(move |inner| {
            let Some(entry) = cacache::metadata_sync(&inner.dir, &key)
                .map_err(|err| failed("look up", &key, err))?
            else {
                return Ok(None);
            };
            let bytes = match cacache::read_hash_sync(&inner.dir, &entry.integrity) {
                Ok(bytes) => bytes,
                Err(cacache::Error::EntryNotFound(..)) => return Ok(None),
                Err(err) => return Err(failed("read", &key, err)),
            };
            // Used now: later in the line for eviction.
            if inner.max_bytes.is_some() {
                let touch = cacache::WriteOpts::new()
                    .integrity(entry.integrity)
                    .size(entry.size)
                    .metadata(entry.metadata)
                    .time(inner.tick());
                let _ = cacache::index::insert(&inner.dir, &key, touch);
            }
            Ok(Some(bytes))
        })
    }

    fn put<'a>(&'a self, key: &'a str, digest: Digest, entry: Vec<u8>) -> StoreFuture<'a, ()> {
        let key = key.to_owned();
        self.blocking(move |inner| {
            let len = entry.len();
            let mut writer = cacache::WriteOpts::new()
                .size(len)
                .time(inner.tick())
                .metadata(serde_json::json!({ "digest": hex(&digest) }))
                .open_sync(&inner.dir, &key)
                .map_err(|err| failed("write", &key, err))?;
            std::io::Write::write_all(&mut writer, &entry)
                .map_err(|err| failed("write", &key, err))?;
            writer.commit().map_err(|err| failed("write", &key, err))?;
            inner.bytes.fetch_add(len as u64, Ordering::Relaxed);
            inner.evict();
            Ok(())
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let key = key.to_owned();
        self.blocking(move |inner| {
            cacache::remove_sync(&inner.dir, &key).map_err(|err| failed("remove", &key, err))
        })
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        self.blocking(|inner| {
            cacache::clear_sync(&inner.dir)
                .map_err(|err| StoreError::new(format!("cannot clear the cache: {err}")))?;
            inner.bytes.store(0, Ordering::Relaxed);
            Ok(())
        })
    }
}
