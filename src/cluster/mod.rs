//! Scale-out: the same graphs on many machines, over NATS JetStream.
//!
//! Workers are plain processes built from your registry ([`Worker`]); they
//! pull ready tasks from a JetStream work-queue stream. The client keeps
//! the graph and does the dependency tracking, as dask's scheduler does:
//! compute with `Options::new().cluster(&cluster)` and each node that calls
//! a registered function runs on a worker, while other nodes run locally.
//!
//! Tasks are routed by pool and function: each pair has a durable consumer
//! of its own, so a worker pulls only the functions it has, in the pools it
//! serves ([`Worker::pool`]; a function asks for one with
//! `#[delayed(register, pool = "gpu")]`, a node with `Delayed::pool`). A
//! client rings a doorbell when it queued tasks, and workers pull as many
//! as they have free slots for. A task whose function no live worker has
//! in its pool waits, with a warning, then fails after
//! [`Settings::no_worker_timeout`].
//!
//! A small result rides in its completion report; a result that remote
//! tasks read goes through JetStream's key-value store (big ones through
//! its object store), keyed by run and task. Only what is read here comes
//! here: a result that only other remote tasks of the compute read is
//! never downloaded (its node is done, with its output *stored*). The
//! compute's output, and a result a local node reads, come here once;
//! [`Cluster::downloads`] counts them. A stored node that something here
//! wants later is read back while its compute runs, or runs again once its
//! result is deleted.
//!
//! The delivery guarantee is JetStream's: at least once. A worker that dies
//! mid-task (`kill -9`) never acknowledges it, so after `ack_wait` (5 s)
//! the task goes to another worker; after `max_deliver` (3) deliveries it
//! fails with an error naming the key, like dask's `KilledWorker`. So a
//! side-effecting task may run twice; its result is keyed, so a second
//! copy is harmless.
//!
//! Clients send heartbeats. A dropped compute tells the workers its run
//! ended and purges its queued tasks; a client that dies goes silent, and
//! after [`Settings::client_timeout`] workers ask it whether it is there:
//! once the server says nobody listens for it, they start none of its
//! tasks and delete what it left. A busy client that is late with its
//! heartbeats loses nothing; one cut off from the server for longer is
//! told, once back, that its tasks were purged, and runs them again.
//! Every name (stream, consumers, buckets, subjects) is in a namespace
//! ([`Settings::namespace`]), so applications and versions share a
//! server without sharing a queue.
//!
//! One trace across machines: each task carries the W3C trace context
//! (`traceparent`) of the span it was sent from (its `delayed.task` span,
//! or the request's span where task spans are filtered out), in its
//! message and, when a message's tasks share one, in the message's
//! `traceparent` header. The worker runs it in a `delayed.remote` span
//! (at `info`, with `task.key`, `task.name` and `worker`) that continues
//! that trace, and the task's own spans there are children of it. With a
//! `tracing-opentelemetry` layer on both sides (tracing-opentelemetry
//! 0.34, opentelemetry 0.33), an OpenTelemetry backend shows one trace for
//! a request whose tasks ran on several workers; without one, nothing
//! travels.
//!
//! All the core semantics hold remotely: shared nodes run once per compute;
//! errors name the key; dropping the compute stops its remote tasks; a
//! result is deleted once the last remote task that reads it has finished,
//! and what is left when the compute ends then (results also expire after
//! [`Settings::result_ttl`], a backstop); retries and timeouts apply to
//! remote attempts. [`Cluster::workers`] lists the workers that answer.

mod attempt;
mod client;
mod keeper;
mod parked;
mod placement;
mod settings;
mod setup;
mod status;
mod store;
mod trace;
mod wire;
mod worker;

use std::fmt;
use std::sync::Arc;

pub use self::client::{Cluster, Downloads, RemoteTask};
pub use self::settings::{Settings, DEFAULT_POOL};
pub use self::status::WorkerStatus;
pub use self::worker::Worker;

/// The NATS client this module is built on, for connection options
/// (`async_nats::ConnectOptions`: token, user and password, nkey,
/// credentials file, TLS) without a dependency of your own.
pub use async_nats;

/// A cluster could not be reached or set up.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() {
/// let registry = delayed::keyed::Registry::new();
/// let err = delayed::cluster::Cluster::connect("nats://127.0.0.1:1", registry).await.unwrap_err();
/// println!("{err}");
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterError(Arc<str>);

impl ClusterError {
    pub(crate) fn new(message: impl Into<String>) -> ClusterError {
        ClusterError(message.into().into())
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}

/// Connects to `url`, or to any of several comma-separated URLs.
pub(crate) async fn connect(
    options: async_nats::ConnectOptions,
    url: &str,
) -> Result<async_nats::Client, ClusterError> {
    let servers = url
        .split(',')
        .map(|one| one.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| ClusterError::new(format!("bad server URL in `{url}`: {err}")))?;
    options
        .connect(servers)
        .await
        .map_err(|err| ClusterError::new(format!("cannot connect to {url}: {err}")))
}

/// Runs `attempt` until it succeeds, at most `tries` times, waiting 250 ms
/// longer after each failure, up to `longest`: for a server that may be
/// restarting. The error is the last attempt's.
pub(crate) async fn patiently<T, F, Fut>(
    tries: u64,
    longest: std::time::Duration,
    mut attempt: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let step = std::time::Duration::from_millis(250);
    let mut last = String::new();
    for n in 0..tries.max(1) {
        if n > 0 {
            tokio::time::sleep((step * n as u32).min(longest)).await;
        }
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) => last = err,
        }
    }
    Err(last)
}
