//! How the cache plugs into the engine: before a compute starts it marks
//! the cached nodes it needs ([`Placement`]); before such a node runs it
//! computes the node's content key and looks it up, and after it ran it
//! writes the entry ([`Memo`]); a hit's output is read only when something
//! here reads it ([`OutputStore`]).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

use super::codec::{self, Digest};
use super::spec::Spec;
use super::stats::Counters;
use super::Cache;
use crate::engine::hooks::{AnyOutput, HookFuture, Memo, OutputStore, Placement};
use crate::engine::view::{self, NodeView};
use crate::Error;

/// The version of the key layout: bumped when what goes into a key changes.
const KEY_LAYOUT: &[u8] = b"delayed-cache-key-1";

/// One compute's use of a cache: the keys and output digests of the
/// cached nodes it met, by node (the placement keeps them alive, so
/// their addresses stay theirs).
pub(crate) struct CacheRun {
    cache: Cache,
    seen: Mutex<HashMap<usize, Seen>>,
}

/// A cached node's key, and its output digest once known.
#[derive(Clone)]
struct Seen {
    key: String,
    digest: Option<Digest>,
}

impl CacheRun {
    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The output digest of `input`, parameter `index` of `spec`: known
    /// if it is a cached node met in this compute, else from its
    /// serialized output (read back first if it is stored elsewhere).
    async fn digest_of(
        &self,
        spec: &Spec,
        index: usize,
        input: &NodeView,
    ) -> Result<Digest, Error> {
        if let Some(digest) = self
            .seen()
            .get(&input.address())
            .and_then(|seen| seen.digest)
        {
            return Ok(digest);
        }
        let codec = spec.inputs.get(index).ok_or_else(|| {
            Error::runtime(
                input.key(),
                "a cached function's inputs do not match its parameters",
            )
        })?;
        if input.is_stored() && !view::read_back(std::slice::from_ref(input)).await? {
            return Err(Error::runtime(
                input.key(),
                "an input's stored output went away",
            ));
        }
        match (codec.encode)(input) {
            Some(Ok(bytes)) => Ok(codec::digest(&bytes)),
            Some(Err(err)) => Err(Error::runtime(
                input.key(),
                format!("cannot serialize an input of a cached function for its key: {err}"),
            )),
            None => Err(Error::runtime(
                input.key(),
                "an input of a cached function has no output here",
            )),
        }
    }

    /// The content key of `node`: its function, code version, hand version
    /// and output type, and its inputs' output digests.
    async fn key_of(&self, spec: &Spec, node: &NodeView) -> Result<String, Error> {
        let mut hasher = Sha256::new();
        hasher.update(KEY_LAYOUT);
        for part in [spec.path, spec.version, spec.output] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(spec.code.to_le_bytes());
        for (index, input) in node.inputs().iter().enumerate() {
            hasher.update(self.digest_of(spec, index, input).await?);
        }
        Ok(codec::hex(&hasher.finalize()))
    }
}

fn spec_of(node: &NodeView) -> Option<Arc<Spec>> {
    node.mark()?.downcast::<Spec>().ok()
}

impl Memo for CacheRun {
    fn recall(
        self: Arc<Self>,
        node: NodeView,
    ) -> HookFuture<Result<Option<Arc<dyn OutputStore>>, Error>> {
        Box::pin(async move {
            let Some(spec) = spec_of(&node) else {
                return Ok(None);
            };
            let key = self.key_of(&spec, &node).await?;
            let stats = &self.cache.inner.stats;
            let found = match self.cache.inner.store.head(&key).await {
                Ok(found) => found,
                Err(err) => {
                    tracing::warn!(task.key = %node.key(), error = %err, "cannot look up a cache entry; the task runs");
                    None
                }
            };
            self.seen().insert(
                node.address(),
                Seen {
                    key: key.clone(),
                    digest: found,
                },
            );
            match found {
                Some(_) => {
                    Counters::add(&stats.hits, 1);
                    Ok(Some(Arc::new(Found {
                        cache: self.cache.clone(),
                        key,
                        spec,
                    }) as Arc<dyn OutputStore>))
                }
                None => {
                    Counters::add(&stats.misses, 1);
                    Ok(None)
                }
            }
        })
    }

    fn keep(self: Arc<Self>, node: NodeView, output: &(dyn Any + Send + Sync)) -> HookFuture<()> {
        let seen = self.seen().get(&node.address()).cloned();
        let encoded = spec_of(&node).and_then(|spec| (spec.encode)(output));
        Box::pin(async move {
            let (Some(seen), Some(encoded)) = (seen, encoded) else {
                return;
            };
            let payload = match encoded {
                Ok(payload) => payload,
                Err(err) => {
                    tracing::warn!(task.key = %node.key(), error = %err, "cannot serialize a cached output; it is not kept");
                    return;
                }
            };
            let (digest, entry) = codec::frame(&payload);
            let len = entry.len() as u64;
            match self.cache.inner.store.put(&seen.key, digest, entry).await {
                Ok(()) => Counters::add(&self.cache.inner.stats.bytes_written, len),
                Err(err) => {
                    tracing::warn!(task.key = %node.key(), error = %err, "cannot write a cache entry");
                }
            }
            if let Some(seen) = self.seen().get_mut(&node.address()) {
                seen.digest = Some(digest);
            }
        })
    }
}

/// A hit: the output waits in the store until something here reads it.
struct Found {
    cache: Cache,
    key: String,
    spec: Arc<Spec>,
}

impl Found {
    /// The decoded entry, or why it is not good.
    async fn load(&self) -> Result<Option<AnyOutput>, String> {
        let inner = &self.cache.inner;
        let Some(entry) = inner
            .store
            .get(&self.key)
            .await
            .map_err(|err| err.to_string())?
        else {
            return Ok(None);
        };
        Counters::add(&inner.stats.bytes_read, entry.len() as u64);
        let (payload, _) = codec::unframe(&entry).map_err(str::to_owned)?;
        (self.spec.decode)(payload)
            .map(Some)
            .map_err(|err| format!("the entry does not decode as {}: {err}", self.spec.output))
    }
}

impl OutputStore for Found {
    fn read(self: Arc<Self>, node: NodeView) -> HookFuture<Result<Option<AnyOutput>, Error>> {
        Box::pin(async move {
            match self.load().await {
                Ok(Some(output)) => Ok(Some(output)),
                Ok(None) => {
                    tracing::warn!(task.key = %node.key(), "a cache entry went away before it was read; the task runs again");
                    let _ = self.cache.inner.store.remove(&self.key).await;
                    Ok(None)
                }
                Err(why) => {
                    let inner = &self.cache.inner;
                    Counters::add(&inner.stats.corrupt, 1);
                    tracing::warn!(task.key = %node.key(), error = %why, "a cache entry is unreadable; it is removed and the task runs again");
                    let _ = inner.store.remove(&self.key).await;
                    Ok(None)
                }
            }
        })
    }
}

impl Placement for Cache {
    /// Marks every unfinished cached node `root` needs to be looked up in
    /// this cache before it runs.
    fn place(&self, root: &NodeView) -> Box<dyn Any + Send> {
        let run = Arc::new(CacheRun {
            cache: self.clone(),
            seen: Mutex::default(),
        });
        let memo = Arc::clone(&run) as Arc<dyn Memo>;
        let mut nodes = Vec::new();
        root.for_each_unfinished(|node| {
            if spec_of(node).is_some() {
                node.remember_with(Some(Arc::clone(&memo)));
                nodes.push(node.clone());
            }
        });
        Box::new(Placed { memo, nodes })
    }
}

/// The nodes one compute marked. Dropped when the compute ends: they run
/// without the cache again.
struct Placed {
    memo: Arc<dyn Memo>,
    nodes: Vec<NodeView>,
}

impl Drop for Placed {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.forget_memo(&self.memo);
        }
    }
}
