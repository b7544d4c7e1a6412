//! A client's runs: the arguments planned when a run starts, the reads
//! counted for each stored result, and what is deleted when.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::{Cluster, Inner};
use crate::cluster::store;
use crate::cluster::wire::{result_key, AliveMsg};
use crate::engine::state::Origin;
use crate::engine::view::NodeView;

impl Cluster {
    /// Plans the arguments of `task`, which runs remotely in `run`: an
    /// input that is a registered call of this run, alone or inside a list
    /// or map, is passed by reference. Inputs that are not planned are
    /// sent by value when the task runs.
    pub(crate) fn plan(&self, task: &NodeView, run: &str, remote: &HashSet<String>) {
        let Some(entry) = self.inner.registry.function(task.name()) else {
            return;
        };
        let deps = task.inputs();
        let mut exporter = crate::keyed::shallow_exporter(&self.inner.registry);
        let mut readers = Vec::new();
        let planned: Vec<_> = deps
            .into_iter()
            .zip(&entry.params)
            .map(|(dep, (_, shape))| {
                let direct = dep.key().to_string();
                let plan = shape
                    .export_node(&crate::keyed::node_of(dep), &mut exporter)
                    .ok()
                    .and_then(|arg| {
                        let mut keys = Vec::new();
                        arg.refs(&mut |key| keys.push(key.to_string()));
                        // Only plans that reach other workers' results are
                        // worth it.
                        let useful =
                            !keys.is_empty() && keys.iter().all(|key| remote.contains(key));
                        useful.then(|| (crate::keyed::arg_to_json(&arg), keys))
                    });
                match plan {
                    Some((json, keys)) => {
                        readers.extend(keys);
                        Some(json)
                    }
                    None => {
                        if remote.contains(&direct) {
                            readers.push(direct);
                        }
                        None
                    }
                }
            })
            .collect();
        let reader = task.key().to_string();
        for key in readers {
            *self
                .inner
                .uses
                .entry((run.to_string(), key.clone()))
                .or_insert(0) += 1;
            self.inner
                .by_ref
                .insert((run.to_string(), reader.clone(), key));
        }
        if planned.iter().any(Option::is_some) {
            self.inner
                .planned
                .insert((run.to_string(), task.key().to_string()), planned);
        }
    }

    /// Whether `task` runs remotely with this cluster.
    pub(crate) fn takes(&self, task: &NodeView) -> bool {
        task.origin() == Origin::Registered && self.inner.registry.function(task.name()).is_some()
    }

    /// Deletes the stored results of `run`, whose tasks all finished if
    /// `settled`.
    pub(crate) fn forget(&self, run: &str, settled: bool) {
        self.inner.live.remove(run);
        // Before the deletes: a reader here then runs them again.
        self.inner.stored_nodes.retain(|(r, _), task| {
            if r == run {
                task.revert_stored();
            }
            r != run
        });
        self.inner.remote_done.retain(|(r, _)| r != run);
        self.inner.completed.retain(|(r, _)| r != run);
        self.inner.by_ref.retain(|(r, _, _)| r != run);
        self.inner.planned.retain(|(r, _), _| r != run);
        self.inner.uses.retain(|(r, _), _| r != run);
        let names = self
            .inner
            .stored
            .remove(run)
            .map(|(_, names)| names)
            .unwrap_or_default();
        if settled && names.is_empty() && !self.inner.cut_short.contains(run) {
            // Every task reported and stored nothing: nothing is left to
            // stop or delete.
            return;
        }
        let inner = Arc::clone(&self.inner);
        let run = run.to_string();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            crate::spawn::named_on(&handle, "delayed cluster run end", async move {
                // Its dropped attempts (if any) have said so by now.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let cut_short = inner.cut_short.remove(&run).is_some();
                if cut_short {
                    // Workers start none of its tasks from now on and stop
                    // the ones they run; its queued tasks go at once.
                    let ended = AliveMsg {
                        ended: vec![run.clone()],
                    };
                    if let Ok(payload) = serde_json::to_vec(&ended) {
                        let alive = inner.queues.names.alive(&inner.id);
                        let _ = inner.client.publish(alive, payload.into()).await;
                        let _ = inner.client.flush().await;
                    }
                    let _ = inner
                        .queues
                        .stream
                        .purge()
                        .filter(inner.queues.names.run_tasks(&run))
                        .await;
                }
                let stored_any = !names.is_empty();
                for name in names {
                    store::delete(&inner.queues, &name).await;
                }
                // A run whose every task reported left only what it
                // stored, deleted above. One cut short may leave results
                // of tasks that finished after it let go of them: purge
                // its keys now, and once more when a straggler would
                // have stored its result.
                if cut_short || stored_any {
                    store::purge_run(&inner.queues, &run).await;
                }
                if cut_short {
                    tokio::time::sleep(inner.queues.settings.ack_wait).await;
                    store::purge_run(&inner.queues, &run).await;
                }
            });
        }
    }
}

impl Inner {
    /// Notes that `name`, a result or an upload of `run`, is in the store:
    /// deleted when the run ends, if not before.
    pub(in crate::cluster) fn stored_as(&self, run: &str, name: String) {
        self.stored.entry(run.to_string()).or_default().insert(name);
    }

    /// A remote task of `run` read the stored results `keys`: delete each
    /// one no other task of the run will read (and the task's own uploads).
    pub(in crate::cluster) fn used(self: &Arc<Self>, run: &str, keys: &[String]) {
        let mut done = Vec::new();
        for key in keys {
            let id = (run.to_string(), key.clone());
            let last = match self.uses.get_mut(&id) {
                Some(mut left) => {
                    *left = left.saturating_sub(1);
                    *left == 0
                }
                // An upload of a big local value: read once.
                None => key.contains('#'),
            };
            if last {
                self.uses.remove(&id);
                // Before the delete: a reader here then runs it again.
                if let Some((_, task)) = self.stored_nodes.remove(&id) {
                    task.revert_stored();
                }
                // Readers that come later send it by value.
                self.remote_done.remove(&id);
                done.push(result_key(run, key));
            }
        }
        if done.is_empty() {
            return;
        }
        if let Some(mut names) = self.stored.get_mut(run) {
            for name in &done {
                names.remove(name);
            }
        }
        let inner = Arc::clone(self);
        crate::spawn::named_task(
            || "delayed cluster result deletes".to_string(),
            async move {
                for name in done {
                    store::delete(&inner.queues, &name).await;
                }
            },
        );
    }
}
