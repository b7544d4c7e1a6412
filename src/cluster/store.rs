//! Results in JetStream: small ones in the key-value bucket, big ones in
//! the object store with a marker in the bucket.

use serde_json::Value;

use super::setup::Queues;
use super::wire::{Stored, INLINE_RESULT};

/// Stores `value` as `name`. A duplicate put (a redelivered task) writes
/// the same value again, which is harmless.
pub(crate) async fn put(queues: &Queues, name: &str, value: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|err| err.to_string())?;
    let marker = if bytes.len() > INLINE_RESULT {
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
    let bucket = format!("KV_{}", super::wire::RESULTS);
    if let Ok(stream) = queues.js.get_stream(&bucket).await {
        let subject = format!("$KV.{}.{run}.>", super::wire::RESULTS);
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
