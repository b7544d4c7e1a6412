//! Which workers are alive: a request on `delayed.workers` that every
//! worker answers with its name, its concurrency and what it runs now.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Cluster, ClusterError};

/// How long to wait for the first answer.
const FIRST: Duration = Duration::from_secs(1);
/// How long to wait for more after each answer.
const MORE: Duration = Duration::from_millis(100);

/// A worker that answered [`Cluster::workers`].
///
/// # Examples
///
/// ```no_run
/// # async fn show(cluster: &delayed::cluster::Cluster) -> Result<(), delayed::cluster::ClusterError> {
/// for worker in cluster.workers().await? {
///     println!("{}: {} of {} slots busy", worker.name(), worker.running(), worker.concurrency());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    name: String,
    concurrency: usize,
    running: usize,
    functions: Vec<String>,
    #[serde(default)]
    pools: Vec<String>,
}

impl WorkerStatus {
    pub(crate) fn new(
        name: String,
        concurrency: usize,
        running: usize,
        functions: Vec<String>,
        pools: Vec<String>,
    ) -> WorkerStatus {
        WorkerStatus {
            name,
            concurrency,
            running,
            functions,
            pools,
        }
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many tasks it runs at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// How many it runs now.
    pub fn running(&self) -> usize {
        self.running
    }

    /// The functions of its registry, sorted.
    pub fn functions(&self) -> &[String] {
        &self.functions
    }

    /// The pools it serves, sorted (`default` unless it was given some).
    pub fn pools(&self) -> &[String] {
        &self.pools
    }

    /// Whether it runs `function` in `pool`.
    pub(crate) fn serves(&self, pool: &str, function: &str) -> bool {
        self.pools.iter().any(|p| p == pool) && self.functions.iter().any(|f| f == function)
    }
}

impl Cluster {
    /// The workers that answer now, sorted by name: dask's
    /// `scheduler_info()["workers"]`. Waits up to a second for the first
    /// answer, so an empty list takes a second.
    ///
    /// # Errors
    ///
    /// When the request cannot be sent (the connection is closed).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn show(cluster: &delayed::cluster::Cluster) -> Result<(), delayed::cluster::ClusterError> {
    /// if cluster.workers().await?.is_empty() {
    ///     eprintln!("no workers: tasks stay queued until one starts");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn workers(&self) -> Result<Vec<WorkerStatus>, ClusterError> {
        list(self.nats(), &self.inner.queues.names.workers()).await
    }
}

/// Asks every worker; collects the answers.
pub(crate) async fn list(
    client: &async_nats::Client,
    subject: &str,
) -> Result<Vec<WorkerStatus>, ClusterError> {
    let inbox = client.new_inbox();
    let failed =
        |err: &dyn std::fmt::Display| ClusterError::new(format!("cannot ask workers: {err}"));
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|err| failed(&err))?;
    client
        .publish_with_reply(subject.to_owned(), inbox, "".into())
        .await
        .map_err(|err| failed(&err))?;
    let mut workers = Vec::new();
    let mut wait = FIRST;
    while let Ok(Some(answer)) = tokio::time::timeout(wait, answers.next()).await {
        if let Ok(status) = serde_json::from_slice::<WorkerStatus>(&answer.payload) {
            workers.push(status);
        }
        wait = MORE;
    }
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(workers)
}
