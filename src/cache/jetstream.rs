//! [`JetStreamStore`]: cache entries in a NATS JetStream object store, so
//! the clients of a cluster (and anything else on the same server) share
//! what each of them computed.
//!
//! An object store writes an object's chunks first and its description
//! last: a reader finds an entry only once all of it is there, and a
//! writer that dies midway leaves orphan chunks, never a partial entry.
//! The entry's payload digest rides in the description's metadata, so a
//! look-up ([`Store::head`]) reads no chunk.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, object_store};
use tokio::io::AsyncReadExt;

use super::codec::{hex, unhex, Digest};
use super::store::{Store, StoreError, StoreFuture};

/// The metadata field that holds an entry's payload digest.
const DIGEST: &str = "delayed-digest";

/// A [`Store`] in a JetStream object store bucket, shared by every process
/// that opens the same bucket on the same server.
///
/// Entries can be bounded by age ([`JetStreamStoreConfig::max_age`]) and
/// by total size ([`JetStreamStoreConfig::max_bytes`]): the server then
/// refuses writes that would go over, which the cache reports with a
/// `warn` event and goes on without keeping that entry. It does not evict
/// by use: for a least-recently-used bound, use a [`DirStore`].
///
/// [`DirStore`]: super::DirStore
///
/// # Examples
///
/// ```no_run
/// use delayed::cache::{Cache, JetStreamStore};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = delayed::cluster::async_nats::connect("nats://127.0.0.1:4222").await?;
/// let cache = Cache::new(JetStreamStore::open(client, "delayed_cache").await?);
/// # let _ = cache;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JetStreamStore {
    js: jetstream::Context,
    bucket: String,
    objects: object_store::ObjectStore,
}

/// How [`JetStreamStore::open_with`] creates its bucket when the server
/// has none of that name yet. An existing bucket is used as it is.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use delayed::cache::JetStreamStoreConfig;
///
/// let config = JetStreamStoreConfig::new("team_cache")
///     .max_age(Duration::from_secs(7 * 24 * 3600))
///     .max_bytes(10 << 30)
///     .replicas(3);
/// assert_eq!(config.bucket(), "team_cache");
/// ```
#[derive(Clone, Debug)]
pub struct JetStreamStoreConfig {
    bucket: String,
    max_age: Duration,
    max_bytes: Option<u64>,
    replicas: usize,
    memory: bool,
}

impl JetStreamStoreConfig {
    /// A bucket named `bucket`: entries kept until removed, no size bound,
    /// one replica, on disk.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = delayed::cache::JetStreamStoreConfig::new("delayed_cache");
    /// # let _ = config;
    /// ```
    pub fn new(bucket: impl Into<String>) -> JetStreamStoreConfig {
        JetStreamStoreConfig {
            bucket: bucket.into(),
            max_age: Duration::ZERO,
            max_bytes: None,
            replicas: 1,
            memory: false,
        }
    }

    /// The bucket's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = delayed::cache::JetStreamStoreConfig::new("c");
    /// assert_eq!(config.bucket(), "c");
    /// ```
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Entries older than `max_age` are dropped by the server.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let config = delayed::cache::JetStreamStoreConfig::new("c").max_age(Duration::from_secs(3600));
    /// # let _ = config;
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> JetStreamStoreConfig {
        self.max_age = max_age;
        self
    }

    /// The bucket holds at most `max_bytes`; writes past it are refused.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = delayed::cache::JetStreamStoreConfig::new("c").max_bytes(1 << 30);
    /// # let _ = config;
    /// ```
    pub fn max_bytes(mut self, max_bytes: u64) -> JetStreamStoreConfig {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Keeps `replicas` copies of each entry in a server cluster (1 to 5).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = delayed::cache::JetStreamStoreConfig::new("c").replicas(3);
    /// # let _ = config;
    /// ```
    pub fn replicas(mut self, replicas: usize) -> JetStreamStoreConfig {
        self.replicas = replicas;
        self
    }

    /// Keeps the bucket in the server's memory rather than on its disk
    /// (gone when the server restarts).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = delayed::cache::JetStreamStoreConfig::new("c").in_memory();
    /// # let _ = config;
    /// ```
    pub fn in_memory(mut self) -> JetStreamStoreConfig {
        self.memory = true;
        self
    }
}

impl JetStreamStore {
    /// Opens the bucket `bucket` on the server `client` is connected to,
    /// creating it (unbounded, on disk) if there is none.
    ///
    /// # Errors
    ///
    /// The server has no JetStream, or the bucket can be neither read nor
    /// created.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = delayed::cluster::async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let store = delayed::cache::JetStreamStore::open(client, "delayed_cache").await?;
    /// assert_eq!(store.bucket(), "delayed_cache");
    /// # Ok(()) }
    /// ```
    pub async fn open(
        client: async_nats::Client,
        bucket: &str,
    ) -> Result<JetStreamStore, StoreError> {
        JetStreamStore::open_with(client, JetStreamStoreConfig::new(bucket)).await
    }

    /// Opens the bucket `config` names, creating it as `config` says if
    /// there is none.
    ///
    /// # Errors
    ///
    /// The server has no JetStream, or the bucket can be neither read nor
    /// created (for example a size bound the server cannot give).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use delayed::cache::{JetStreamStore, JetStreamStoreConfig};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = delayed::cluster::async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let config = JetStreamStoreConfig::new("delayed_cache").max_bytes(1 << 30);
    /// let store = JetStreamStore::open_with(client, config).await?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    pub async fn open_with(
        client: async_nats::Client,
        config: JetStreamStoreConfig,
    ) -> Result<JetStreamStore, StoreError> {
        let js = jetstream::new(client);
        let bucket = config.bucket.clone();
        let objects = match js.get_object_store(&bucket).await {
            Ok(objects) => objects,
            Err(_) => {
                let max_bytes = match config.max_bytes {
                    Some(max) => i64::try_from(max).unwrap_or(i64::MAX),
                    None => -1,
                };
                let created = js
                    .create_object_store(object_store::Config {
                        bucket: bucket.clone(),
                        description: Some("delayed: cached results".to_owned()),
                        max_age: config.max_age,
                        max_bytes,
                        storage: if config.memory {
                            jetstream::stream::StorageType::Memory
                        } else {
                            jetstream::stream::StorageType::File
                        },
                        num_replicas: config.replicas,
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(objects) => objects,
                    // Another process created it meanwhile.
                    Err(create) => js.get_object_store(&bucket).await.map_err(|_| {
                        StoreError::new(format!(
                            "cannot open or create the cache bucket `{bucket}`: {create}"
                        ))
                    })?,
                }
            }
        };
        Ok(JetStreamStore {
            js,
            bucket,
            objects,
        })
    }

    /// The bucket's name.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = delayed::cluster::async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let store = delayed::cache::JetStreamStore::open(client, "delayed_cache").await?;
    /// println!("cache in bucket {}", store.bucket());
    /// # Ok(()) }
    /// ```
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, key: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("cannot {what} cache entry {key}: {err}"))
}

impl Store for JetStreamStore {
    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Digest>> {
        Box::pin(async move {
            match self.objects.info(key).await {
                Ok(info) if info.deleted => Ok(None),
                Ok(info) => Ok(info.metadata.get(DIGEST).and_then(|text| unhex(text))),
                Err(err) if err.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
                Err(err) => Err(failed("look up", key, err)),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut object = match self.objects.get(key).await {
                Ok(object) => object,
                Err(err) if err.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(failed("read", key, err)),
            };
            let mut entry = Vec::with_capacity(object.info().size);
            object
                .read_to_end(&mut entry)
                .await
                .map_err(|err| failed("read", key, err))?;
            Ok(Some(entry))
        })
    }

    fn put<'a>(&'a self, key: &'a str, digest: Digest, entry: Vec<u8>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let meta = object_store::ObjectMetadata {
                name: key.to_owned(),
                metadata: HashMap::from([(DIGEST.to_owned(), hex(&digest))]),
                ..Default::default()
            };
            let mut reader: &[u8] = &entry;
            self.objects
                .put(meta, &mut reader)
                .await
                .map_err(|err| failed("write", key, err))?;
            Ok(())
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            match self.objects.delete(key).await {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
                Err(err) => Err(failed("remove", key, err)),
            }
        })
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let stream = self
                .js
                .get_stream(format!("OBJ_{}", self.bucket))
                .await
                .map_err(|err| StoreError::new(format!("cannot clear the cache: {err}")))?;
            stream
                .purge()
                .await
                .map_err(|err| StoreError::new(format!("cannot clear the cache: {err}")))?;
            Ok(())
        })
    }
}
