//! Where cached entries live: the [`Store`] trait, and its error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::codec::Digest;

/// The future a [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Keeps framed cache entries under content keys.
///
/// The cache writes an entry once per key and never changes it; it reads
/// entries back lazily. A store must make writes atomic (a reader sees the
/// whole entry or none), and may drop entries at any time (to respect a
/// size bound): a missing entry is a miss. Implementations: [`DirStore`]
/// (the default), [`MemoryStore`] (for tests), and with the `nats`
/// feature `JetStreamStore`.
///
/// [`DirStore`]: super::DirStore
/// [`MemoryStore`]: super::MemoryStore
///
/// # Examples
///
/// ```
/// use delayed::cache::{MemoryStore, Store};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::new();
/// store.put("k", [7; 32], b"entry".to_vec()).await.unwrap();
/// assert_eq!(store.head("k").await.unwrap(), Some([7; 32]));
/// assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"entry"[..]));
/// # }
/// ```
pub trait Store: Send + Sync + 'static {
    /// The digest of the payload kept under `key`, without reading the
    /// entry: how the cache learns a hit's output digest cheaply.
    ///
    /// # Errors
    ///
    /// The store could not be asked (the cache counts it a miss).
    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Digest>>;

    /// The whole framed entry under `key`, if there is one.
    ///
    /// # Errors
    ///
    /// The store could not be read (the cache counts it a miss).
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Keeps `entry`, whose payload has digest `digest`, under `key`,
    /// atomically.
    ///
    /// # Errors
    ///
    /// The entry could not be written (the cache warns and goes on).
    fn put<'a>(&'a self, key: &'a str, digest: Digest, entry: Vec<u8>) -> StoreFuture<'a, ()>;

    /// Drops the entry under `key`, if any.
    ///
    /// # Errors
    ///
    /// The store could not be changed.
    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Drops every entry.
    ///
    /// # Errors
    ///
    /// The store could not be changed.
    fn clear(&self) -> StoreFuture<'_, ()>;
}

/// A store could not do what was asked. Clonable: one error may reach
/// several readers.
///
/// # Examples
///
/// ```
/// let err = delayed::cache::StoreError::new("disk full");
/// assert_eq!(err.to_string(), "disk full");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(Arc<str>);

impl StoreError {
    /// An error with `message`, for implementations of [`Store`].
    ///
    /// # Examples
    ///
    /// ```
    /// let err = delayed::cache::StoreError::new("unreachable");
    /// # let _ = err;
    /// ```
    pub fn new(message: impl fmt::Display) -> StoreError {
        StoreError(message.to_string().into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}
