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
            serde_json::from_slice(&bytes)
                .map(|value| Some((value, bytes.len() as u64)))
                .map_err(|err| err.to_string())
        }
    }
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

/// Deletes the result `name` (and its object, if it has one).
pub(crate) async fn delete(queues: &Queues, name: &str) {
    if let Ok(Some(bytes)) = queues.results.get(name).await {
        if matches!(serde_json::from_slice::<Stored>(&bytes), Ok(Stored::Object)) {
            let _ = queues.objects.delete(name).await;
        }
    }
    let _ = queues.results.purge(name).await;
}
