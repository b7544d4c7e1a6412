//! The dashboard of a cluster (feature `nats`): its workers, asked every
//! second, and the worker of each remote task, from the client's history.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use super::state::Hub;
use super::wire::WorkerView;
use super::Dashboard;
use crate::cluster::{Cluster, RemoteTask, WorkerStatus};

/// How often the workers are asked what they run.
const WORKERS: Duration = Duration::from_secs(1);
/// How often the history is read for the workers of finished tasks.
const HISTORY: Duration = Duration::from_millis(250);

/// The task that watches a dashboard's cluster, if any.
pub(super) struct Watcher {
    runtime: Handle,
    task: Mutex<Option<AbortHandle>>,
}

impl Watcher {
    /// A watcher that spawns on the current runtime.
    pub(super) fn new() -> Watcher {
        Watcher {
            runtime: Handle::current(),
            task: Mutex::new(None),
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

impl Dashboard {
    /// Shows `cluster` too: its workers (asked every second, with what each
    /// runs now, as [`Cluster::workers`] tells) in the workers table, and
    /// each finished remote task on the row of the worker that ran it.
    /// Until a task's report names its worker it is drawn on the row of the
    /// thread here that waited for it, and its times are those seen here:
    /// from the start of its attempt to its report.
    ///
    /// Which worker ran a task comes from [`Cluster::history`]: with
    /// [`Settings::history`](crate::cluster::Settings::history) at 0, remote
    /// tasks stay on the thread rows. The dashboard keeps a clone of the
    /// cluster (and so its connection) until it stops; a second call
    /// replaces the first cluster. Needs the `nats` feature.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use delayed::{cluster::Cluster, dashboard::Dashboard, delayed, Options};
    ///
    /// #[delayed(register)]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = Cluster::connect("nats://127.0.0.1:4222", delayed::registry![inc]).await?;
    /// let dashboard = Dashboard::serve("127.0.0.1:8787").await?;
    /// dashboard.cluster(&cluster);
    /// let options = Options::new().cluster(&cluster).callback(dashboard.clone());
    /// assert_eq!(inc(inc(0)).compute_with(options).await?, 2);
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
    pub fn cluster(&self, cluster: &Cluster) {
        let watcher = &self.inner.watcher;
        let task = crate::spawn::named_on(
            &watcher.runtime,
            "delayed dashboard cluster watch",
            watch(Arc::clone(&self.inner.hub), cluster.clone()),
        );
        let mut slot = watcher.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = slot.replace(task.abort_handle()) {
            previous.abort();
        }
    }
}

/// Watches `cluster` for `hub` until the hub stops.
async fn watch(hub: Arc<Hub>, cluster: Cluster) {
    let workers = async {
        loop {
            if let Ok(workers) = cluster.workers().await {
                hub.set_workers(workers.iter().map(view).collect());
            }
            tokio::time::sleep(WORKERS).await;
        }
    };
    let remote: HashSet<&str> = cluster.registry().names().collect();
    let history = async {
        let mut last: Option<(usize, RemoteTask)> = None;
        loop {
            let history = cluster.history();
            let newest = history.last().map(|task| (history.len(), task.clone()));
            if newest.is_some() && newest != last {
                let ran_on: HashMap<String, Arc<str>> = history
                    .iter()
                    .map(|task| (task.key().to_string(), Arc::from(task.worker())))
                    .collect();
                hub.assign(&ran_on, &remote);
                last = newest;
            }
            tokio::time::sleep(HISTORY).await;
        }
    };
    tokio::select! {
        () = hub.stopped() => {}
        () = workers => {}
        () = history => {}
    }
}

fn view(worker: &WorkerStatus) -> WorkerView {
    WorkerView {
        name: worker.name().to_string(),
        concurrency: worker.concurrency(),
        running: worker.running(),
        functions: worker.functions().to_vec(),
        pools: worker.pools().to_vec(),
    }
}
