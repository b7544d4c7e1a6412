//! Opening the JetStream pieces that clients and workers share: the task
//! stream, its consumer, and the result stores.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, object_store, stream};

use super::wire::{CONSUMER, OBJECTS, RESULTS, STREAM, TASKS};
use super::ClusterError;

/// How long a worker may hold a task without a sign of life before
/// JetStream gives it to another worker. Workers send in-progress acks
/// three times per period, so long tasks are fine.
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(5);
/// Deliveries of one task before it fails, like dask's `allowed-failures`.
pub(crate) const MAX_DELIVER: i64 = 3;
/// How long results stay, a backstop for clients that died before they
/// deleted theirs.
pub(crate) const RESULT_TTL: Duration = Duration::from_secs(3600);
/// The largest task message, as the stream enforces it.
pub(crate) const MAX_MESSAGE: i32 = 1024 * 1024;

/// The shared pieces, created by whoever comes first.
pub(crate) struct Queues {
    pub(crate) js: jetstream::Context,
    pub(crate) stream: stream::Stream,
    pub(crate) consumer: consumer::PullConsumer,
    pub(crate) results: kv::Store,
    pub(crate) objects: object_store::ObjectStore,
}

pub(crate) async fn open(client: &async_nats::Client) -> Result<Queues, ClusterError> {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_or_create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec![TASKS.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            max_message_size: MAX_MESSAGE,
            ..Default::default()
        })
        .await
        .map_err(|err| ClusterError::new(format!("cannot open the task stream: {err}")))?;
    let consumer = stream
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_deliver: MAX_DELIVER,
                ..Default::default()
            },
        )
        .await
        .map_err(|err| ClusterError::new(format!("cannot open the workers' consumer: {err}")))?;
    let results = match js.get_key_value(RESULTS).await {
        Ok(store) => store,
        Err(_) => match js
            .create_key_value(kv::Config {
                bucket: RESULTS.into(),
                history: 1,
                max_age: RESULT_TTL,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
        {
            Ok(store) => store,
            // Another process made it first.
            Err(create) => js.get_key_value(RESULTS).await.map_err(|_| {
                ClusterError::new(format!("cannot open the result store: {create}"))
            })?,
        },
    };
    let objects = match js.get_object_store(OBJECTS).await {
        Ok(store) => store,
        Err(_) => match js
            .create_object_store(object_store::Config {
                bucket: OBJECTS.into(),
                max_age: RESULT_TTL,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
        {
            Ok(store) => store,
            Err(create) => js.get_object_store(OBJECTS).await.map_err(|_| {
                ClusterError::new(format!("cannot open the object store: {create}"))
            })?,
        },
    };
    Ok(Queues {
        js,
        stream,
        consumer,
        results,
        objects,
    })
}
