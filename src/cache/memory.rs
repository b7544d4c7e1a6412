//! [`MemoryStore`]: entries in memory, bounded, least recently used first
//! out. For tests, and for a cache that lives as long as the process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::codec::Digest;
use super::store::{Store, StoreFuture};

/// A [`Store`] in memory, with an optional size bound: past it, the least
/// recently used entries are dropped first.
///
/// # Examples
///
/// ```
/// use delayed::cache::{Cache, MemoryStore};
///
/// let cache = Cache::new(MemoryStore::with_max_bytes(1 << 20));
/// # let _ = cache;
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    max_bytes: Option<u64>,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Slot>,
    /// A clock of uses: higher is more recent.
    tick: u64,
    bytes: u64,
}

#[derive(Debug)]
struct Slot {
    digest: Digest,
    entry: Vec<u8>,
    used: u64,
}

impl MemoryStore {
    /// An empty store without a bound.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = delayed::cache::MemoryStore::new();
    /// assert_eq!(store.bytes(), 0);
    /// ```
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store that keeps at most `max_bytes` of entries.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = delayed::cache::MemoryStore::with_max_bytes(4096);
    /// # let _ = store;
    /// ```
    pub fn with_max_bytes(max_bytes: u64) -> MemoryStore {
        MemoryStore {
            max_bytes: Some(max_bytes),
            entries: Mutex::default(),
        }
    }

    /// The bytes of the entries it holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::cache::MemoryStore::new().bytes(), 0);
    /// ```
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// The number of entries it holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::cache::MemoryStore::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether it holds no entry.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::cache::MemoryStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Digest>> {
        let digest = self.lock().map.get(key).map(|slot| slot.digest);
        Box::pin(async move { Ok(digest) })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let mut entries = self.lock();
        entries.tick += 1;
        let tick = entries.tick;
        let entry = entries.map.get_mut(key).map(|slot| {
            slot.used = tick;
            slot.entry.clone()
        });
        Box::pin(async move { Ok(entry) })
    }

    fn put<'a>(&'a self, key: &'a str, digest: Digest, entry: Vec<u8>) -> StoreFuture<'a, ()> {
        let mut entries = self.lock();
        entries.tick += 1;
        let used = entries.tick;
        entries.bytes += entry.len() as u64;
        let slot = Slot {
            digest,
            entry,
            used,
        };
        if let Some(old) = entries.map.insert(key.to_owned(), slot) {
            entries.bytes -= old.entry.len() as u64;
        }
        if let Some(max) = self.max_bytes {
            while entries.bytes > max {
                let Some(oldest) = entries
                    .map
                    .iter()
                    .min_by_key(|(_, slot)| slot.used)
                    .map(|(key, _)| key.clone())
                else {
                    break;
                };
                let slot = entries.map.remove(&oldest).expect("listed");
                entries.bytes -= slot.entry.len() as u64;
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let mut entries = self.lock();
        if let Some(slot) = entries.map.remove(key) {
            entries.bytes -= slot.entry.len() as u64;
        }
        Box::pin(async { Ok(()) })
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        let mut entries = self.lock();
        entries.map.clear();
        entries.bytes = 0;
        Box::pin(async { Ok(()) })
    }
}
