//! Results in JetStream: small ones in the key-value bucket, big ones in
//! the object store with a marker in the bucket.

use serde_json::Value;

use super::setup::Queues;
use super::wire::Stored;

/// Stores `value` as `name`. A duplicate put (a redelivered task) writes
/// the same value again, which is harmless.
pub(crate) async fn put(queues: &Queues, name: &str, value: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|err| err.to_string())?;
    let marker = if bytes.len() > queues.settings.inline_result {
        let mut reader: &[u8] = &bytes;
        queues
            .objects
            .put(name, &mut reader)
            .await
            .map_err(|err| format!("cannot store a result of {} bytes: {err}", bytes.len()))?;
        serde_json::to_vec(&Stored::Object)
    } else {
        serde_json::to_vec(&Stored::Inline {
            value: value.clone(),
        })
    }
    .map_err(|err| err.to_string())?;
    queues
        .results
        .put(name, marker.into())
        .await
        .map_err(|err| format!("cannot store a result: {err}"))?;
    Ok(())
}

/// The value stored as `name`, if there is one.
pub(crate) async fn get(queues: &Queues, name: &str) -> Result<Option<Value>, String> {
    Ok(get_sized(queues, name).await?.map(|(value, _)| value))
}

/// The value stored as `name` and its size in bytes, if there is one.
pub(crate) async fn get_sized(queues: &Queues, name: &str) -> Result<Option<(Value, u64)>, String> {
    let Some(bytes) = queues
        .results
        .get(name)
        .await
        .map_err(|err| format!("cannot read a result: {err}"))?
    else {
        return Ok(None);
    };
    let size = bytes.len() as u64;
    match serde_json::from_slice::<Stored>(&bytes).map_err(|err| err.to_string())? {
        Stored::Inline { value } => Ok(Some((value, size))),
        Stored::Object => {
            let bytes = read_object(queues, name).await?;
            serde_json::from_slice(&bytes)
                .map(|value| Some((value, bytes.len() as u64)))
                .map_err(|err| err.to_string())
        }
    }
}

/// The whole object `name` of the object store.
async fn read_object(queues: &Queues, name: &str) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let mut object = queues
        .objects
        .get(name)
        .await
        .map_err(|err| format!("cannot read a stored result: {err}"))?;
    let mut bytes = Vec::new();
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|err| format!("cannot read a stored result: {err}"))?;
    Ok(bytes)
}

/// Deletes every result of `run` still in the key-value bucket.
pub(crate) async fn purge_run(queues: &Queues, run: &str) {
    purge_results(queues, &format!("{run}.>")).await;
}

/// Deletes what a dead `client` left: its queued tasks, and its results
/// in the bucket and the object store.
pub(crate) async fn purge_client(queues: &Queues, client: &str) {
    let _ = queues
        .stream
        .purge()
        .filter(queues.names.client_tasks(client))
        .await;
    purge_results(queues, &format!("{client}.>")).await;
    let Ok(list) = queues.objects.list().await else {
        return;
    };
    use futures::StreamExt;
    let prefix = format!("{client}.");
    let listing = list
        .filter_map(|info| async move { info.ok().map(|info| info.name) })
        .filter(|name| std::future::ready(name.starts_with(&prefix)))
        .collect::<Vec<String>>();
    // The listing ends once it caught up; do not hang if it does not.
    let Ok(mine) = tokio::time::timeout(std::time::Duration::from_secs(10), listing).await else {
        return;
    };
    for name in mine {
        let _ = queues.objects.delete(&name).await;
    }
}

/// Purges the result bucket's keys that match `keys`.
async fn purge_results(queues: &Queues, keys: &str) {
    let bucket = format!("KV_{}", queues.names.results);
    if let Ok(stream) = queues.js.get_stream(&bucket).await {
        let subject = format!("$KV.{}.{keys}", queues.names.results);
        let _ = stream.purge().filter(subject).await;
    }
}

/// The first byte of a result in the bucket in binary form (a JSON
/// value, an upload, starts otherwise).
const MAGIC: u8 = 0xD1;
/// The result's bytes follow in the bucket.
const INLINE: u8 = 0;
/// The result's bytes are in the object store under the same name.
const OBJECT: u8 = 1;

/// Stores the postcard bytes of a result of `function` as `name`: in the
/// bucket with a header naming the function (so that a reader decodes it
/// as that function's output type), or in the object store when big.
pub(crate) async fn put_result(
    queues: &Queues,
    name: &str,
    function: &str,
    bytes: &[u8],
) -> Result<(), String> {
    let function = function.as_bytes();
    let len = u8::try_from(function.len()).map_err(|_| "a function name over 255 bytes")?;
    let big = bytes.len() > queues.settings.inline_result;
    let mut entry = Vec::with_capacity(3 + function.len() + if big { 0 } else { bytes.len() });
    entry.extend([MAGIC, if big { OBJECT } else { INLINE }, len]);
    entry.extend_from_slice(function);
    if big {
        let mut reader: &[u8] = bytes;
        queues
            .objects
            .put(name, &mut reader)
            .await
            .map_err(|err| format!("cannot store a result of {} bytes: {err}", bytes.len()))?;
    } else {
        entry.extend_from_slice(bytes);
    }
    queues
        .results
        .put(name, entry.into())
        .await
        .map_err(|err| format!("cannot store a result: {err}"))?;
    Ok(())
}

/// The function and postcard bytes of the result stored as `name`, if
/// there is one.
pub(crate) async fn get_result(
    queues: &Queues,
    name: &str,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let Some(entry) = queues
        .results
        .get(name)
        .await
        .map_err(|err| format!("cannot read a result: {err}"))?
    else {
        return Ok(None);
    };
    let bad = || format!("the stored result `{name}` is not in the binary form");
    let (&[MAGIC, kind, len], rest) = (entry.get(..3).ok_or_else(bad)?, &entry[3..]) else {
        return Err(bad());
    };
    let (function, payload) = rest.split_at_checked(usize::from(len)).ok_or_else(bad)?;
    let function = String::from_utf8(function.to_vec()).map_err(|_| bad())?;
    match kind {
        INLINE => Ok(Some((function, payload.to_vec()))),
        OBJECT => Ok(Some((function, read_object(queues, name).await?))),
        _ => Err(bad()),
    }
}

/// Deletes the result `name` (and its object, if it has one).
pub(crate) async fn delete(queues: &Queues, name: &str) {
    if let Ok(Some(bytes)) = queues.results.get(name).await {
        let object = bytes.get(..2) == Some(&[MAGIC, OBJECT][..])
            || matches!(serde_json::from_slice::<Stored>(&bytes), Ok(Stored::Object));
        if object {
            let _ = queues.objects.delete(name).await;
        }
    }
    let _ = queues.results.purge(name).await;
}
