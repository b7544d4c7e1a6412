//! Opening the JetStream pieces that clients and workers share: the task
//! stream, its consumer, and the result stores.
//!
//! # Replicas
//!
//! Whoever comes first creates the pieces; later comers open them as they
//! are. The task stream, the result bucket and the object store are
//! created with `min(3, cluster size)` replicas, the consumer with its
//! stream's, so that on a NATS cluster of three or more servers everything
//! survives the loss of any one server:
//!
//! - Connected to a lone server (its `INFO` names no NATS cluster), one
//!   replica, as JetStream allows no more outside a cluster.
//! - Connected to a server of a cluster, three replicas; if JetStream
//!   cannot place that many (fewer servers with JetStream: "no suitable
//!   peers for placement", or "insufficient resources"), one fewer, and so
//!   on down to one. So the count is what JetStream itself can place, and
//!   `min(3, size)` for a cluster of `size` servers with JetStream.
//!
//! The size is asked of JetStream rather than read from the servers the
//! `INFO` lists (`connect_urls`), which counts servers without JetStream,
//! misses servers that are down or not yet routed, and is empty with
//! `no_advertise`. A stream created while one server of three was away for
//! good keeps two replicas; the count of an existing piece is never
//! changed here (`nats stream edit --replicas 3` does it).
//!
//! A replicated result bucket or object store is read from its leader
//! only: `allow_direct` is turned off on the stream behind it (and the
//! store opened again to see it). Direct gets, which any replica answers,
//! may miss a result that a worker has just stored and reported, when the
//! replica that answers is behind, as happens around a server's failure;
//! the leader has every acknowledged write.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind};
use async_nats::jetstream::{self, consumer, kv, object_store, stream, ErrorCode};

use super::settings::{Names, Settings};
use super::ClusterError;

/// The most replicas of each piece: any one server may fail.
pub(crate) const MAX_REPLICAS: usize = 3;

/// The shared pieces, created by whoever comes first.
pub(crate) struct Queues {
    pub(crate) js: jetstream::Context,
    pub(crate) stream: stream::Stream,
    pub(crate) results: kv::Store,
    pub(crate) objects: object_store::ObjectStore,
    pub(crate) names: Names,
    pub(crate) settings: Settings,
}

/// Opens (or creates) the shared pieces of `settings`' namespace. A
/// request that times out is tried again for about 10 s: JetStream may be
/// electing a leader because a server just went away.
pub(crate) async fn open(
    client: &async_nats::Client,
    settings: &Settings,
) -> Result<Queues, ClusterError> {
    let names = settings.names()?;
    until_answered(|| open_once(client, &names, settings)).await
}

/// Runs `request` again while it times out, for about 10 s: JetStream may
/// be electing a leader because a server just went away, or just started.
async fn until_answered<T, F, Fut>(mut request: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let mut last = None;
    for wait in [0, 250, 500, 1_000, 2_000, 2_000, 2_000, 2_000] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        match request().await {
            Ok(answer) => return Ok(answer),
            Err(err) if err.to_string().contains("timed out") => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| ClusterError::new("JetStream does not answer")))
}

/// Opens (or creates) the durable consumer of the tasks of `function` in
/// `pool`: one per pair, so that a worker pulls only what it can run
/// (the work-queue stream allows no two consumers the same task).
pub(crate) async fn consumer(
    queues: &Queues,
    pool: &str,
    function: &str,
) -> Result<consumer::PullConsumer, ClusterError> {
    until_answered(|| consumer_once(queues, pool, function)).await
}

async fn consumer_once(
    queues: &Queues,
    pool: &str,
    function: &str,
) -> Result<consumer::PullConsumer, ClusterError> {
    let name = queues.names.consumer(pool, function);
    let subject = format!("{}.>", queues.names.tasks(pool, function));
    let settings = &queues.settings;
    // No `num_replicas`: a consumer has its stream's.
    queues
        .stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: subject,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: settings.ack_wait,
                max_deliver: settings.max_deliver,
                max_ack_pending: -1,
                ..Default::default()
            },
        )
        .await
        .map_err(|err| {
            ClusterError::new(format!(
                "cannot open the consumer of `{function}` in pool `{pool}`: {err}"
            ))
        })
}

async fn open_once(
    client: &async_nats::Client,
    names: &Names,
    settings: &Settings,
) -> Result<Queues, ClusterError> {
    let js = jetstream::new(client.clone());
    let replicas = replicas_to_try(client);
    let max_message = i32::try_from(settings.max_message).unwrap_or(i32::MAX);
    let stream = match with_fewer_replicas(replicas, |num_replicas| {
        js.get_or_create_stream(stream::Config {
            name: names.stream.clone(),
            subjects: vec![names.all_tasks()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            max_message_size: max_message,
            num_replicas,
            ..Default::default()
        })
    })
    .await
    {
        Ok(stream) => stream,
        // Another process made it first, perhaps with other replicas.
        Err(create) => js.get_stream(&names.stream).await.map_err(|_| {
            ClusterError::new(format!(
                "cannot open the task stream {}: {create}",
                names.stream
            ))
        })?,
    };
    let results = open_store(
        "result store",
        &js,
        &format!("KV_{}", names.results),
        replicas,
        || js.get_key_value(&names.results),
        |num_replicas| {
            js.create_key_value(kv::Config {
                bucket: names.results.clone(),
                history: 1,
                max_age: settings.result_ttl,
                storage: stream::StorageType::File,
                num_replicas,
                ..Default::default()
            })
        },
    )
    .await?;
    let objects = open_store(
        "object store",
        &js,
        &format!("OBJ_{}", names.objects),
        replicas,
        || js.get_object_store(&names.objects),
        |num_replicas| {
            js.create_object_store(object_store::Config {
                bucket: names.objects.clone(),
                max_age: settings.result_ttl,
                storage: stream::StorageType::File,
                num_replicas,
                ..Default::default()
            })
        },
    )
    .await?;
    Ok(Queues {
        js,
        stream,
        results,
        objects,
        names: names.clone(),
        settings: settings.clone(),
    })
}

/// Opens a store with `get`, or makes it with `create` (with as many
/// replicas as JetStream can place; another process may make it first);
/// a replicated one is then opened again to read from its leader.
async fn open_store<S, G, GetFut, GetErr, C, MakeFut, MakeErr>(
    what: &str,
    js: &jetstream::Context,
    stream: &str,
    replicas: usize,
    get: G,
    create: C,
) -> Result<S, ClusterError>
where
    G: Fn() -> GetFut,
    GetFut: Future<Output = Result<S, GetErr>>,
    GetErr: std::fmt::Display,
    C: FnMut(usize) -> MakeFut,
    MakeFut: Future<Output = Result<S, MakeErr>>,
    MakeErr: std::error::Error + 'static,
{
    let store = match get().await {
        Ok(store) => store,
        Err(_) => match with_fewer_replicas(replicas, create).await {
            Ok(store) => store,
            Err(made) => get()
                .await
                .map_err(|_| ClusterError::new(format!("cannot open the {what}: {made}")))?,
        },
    };
    if read_from_leader(js, stream).await {
        return get()
            .await
            .map_err(|err| ClusterError::new(format!("cannot open the {what}: {err}")));
    }
    Ok(store)
}

/// The replicas to ask for first: [`MAX_REPLICAS`] when the server we are
/// connected to is part of a NATS cluster, else 1.
fn replicas_to_try(client: &async_nats::Client) -> usize {
    if client.server_info().cluster.is_some() {
        MAX_REPLICAS
    } else {
        1
    }
}

/// Turns direct gets off on stream `name` if it has several replicas, so
/// that only its leader answers reads; true if it has (then a store on it
/// must be opened again: stores read the setting when they open).
async fn read_from_leader(js: &jetstream::Context, name: &str) -> bool {
    let Ok(stream) = js.get_stream(name).await else {
        return false;
    };
    let config = stream.cached_info().config.clone();
    if config.num_replicas <= 1 {
        return false;
    }
    if config.allow_direct {
        let config = stream::Config {
            allow_direct: false,
            ..config
        };
        if let Err(err) = js.update_stream(&config).await {
            tracing::warn!(
                stream = name,
                error = %err,
                "cannot turn direct gets off: a replica that is behind may miss results"
            );
            return false;
        }
    }
    true
}

/// Runs `create` with `most` replicas, then with fewer while JetStream
/// answers that it cannot place that many; the last answer otherwise.
async fn with_fewer_replicas<T, E, F, Fut>(most: usize, mut create: F) -> Result<T, E>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    let mut replicas = most.max(1);
    loop {
        let err = match create(replicas).await {
            Err(err) if replicas > 1 => err,
            result => return result,
        };
        replicas = match refused_replicas(&err) {
            Some(code) if code == ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED => 1,
            Some(_) => replicas - 1,
            None => return Err(err),
        };
        tracing::info!(
            error = %err,
            replicas,
            "JetStream cannot place that many replicas; asking for fewer"
        );
    }
}

/// The JetStream error code in `err` (or its sources), if it says there
/// are not enough servers for the replicas asked for.
fn refused_replicas(err: &(dyn std::error::Error + 'static)) -> Option<ErrorCode> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(create) = err.downcast_ref::<CreateStreamError>() {
            if let CreateStreamErrorKind::JetStream(js) = create.kind() {
                let code = js.error_code();
                return [
                    ErrorCode::CLUSTER_NO_PEERS,
                    ErrorCode::INSUFFICIENT_RESOURCES,
                    ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED,
                ]
                .contains(&code)
                .then_some(code);
            }
        }
        next = err.source();
    }
    None
}
