//! How the cluster plugs into the engine: a compute's run places the nodes
//! that call registered functions on the workers ([`Placement`]), runs
//! their attempts there ([`Executor`]) and reads back the results it left
//! in the store ([`OutputStore`]).

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use tokio::runtime::Handle;

use super::Cluster;
use crate::engine::hooks::{
    AnyOutput, Executor, HookFuture, Made, OutputStore, Placement, Settle, Stop,
};
use crate::engine::view::NodeView;
use crate::{Error, Options};

/// One compute's run on a cluster: the executor of its remote nodes and
/// the store of their results.
pub(crate) struct RunOn {
    pub(crate) cluster: Cluster,
    pub(crate) run: Arc<str>,
}

impl RunOn {
    /// This run as an executor, to compare with a node's.
    pub(crate) fn executor(self: &Arc<Self>) -> Arc<dyn Executor> {
        Arc::clone(self) as Arc<dyn Executor>
    }
}

impl Executor for RunOn {
    fn attempt(
        self: Arc<Self>,
        node: NodeView,
        attempt: u32,
    ) -> HookFuture<Result<Made<AnyOutput>, Error>> {
        Box::pin(async move { self.cluster.clone().run(&self, node, attempt).await })
    }

    fn submit(self: Arc<Self>, node: NodeView, settle: Settle, handle: &Handle) -> Stop {
        self.cluster.submit(&self, node, settle, handle)
    }
}

impl OutputStore for RunOn {
    fn read(self: Arc<Self>, node: NodeView) -> HookFuture<Result<Option<AnyOutput>, Error>> {
        Box::pin(async move { self.cluster.download(&node, &self.run).await.map(Some) })
    }
}

impl Placement for Cluster {
    /// Marks every unfinished node `root` needs that calls a function of
    /// the cluster's registry to run remotely in a new run.
    fn place(&self, root: &NodeView) -> Box<dyn Any + Send> {
        let on = Arc::new(RunOn {
            cluster: self.clone(),
            run: self.new_run().into(),
        });
        let executor = on.executor();
        let mut nodes = Vec::new();
        root.for_each_unfinished(|node| {
            if self.takes(node) {
                nodes.push(node.clone());
            }
        });
        NodeView::run_all_elsewhere(&nodes, Some(executor));
        let keys: HashSet<String> = nodes.iter().map(|node| node.key().to_string()).collect();
        for node in &nodes {
            self.plan(node, &on.run, &keys);
        }
        Box::new(Placed { on, nodes })
    }
}

/// The nodes one compute sent to a cluster. Dropped when the compute ends:
/// the nodes run locally again, and the run's results are deleted.
struct Placed {
    on: Arc<RunOn>,
    nodes: Vec<NodeView>,
}

impl Drop for Placed {
    fn drop(&mut self) {
        let executor = self.on.executor();
        // Before they leave: a finished node's attempt is over.
        let settled = self.nodes.iter().all(NodeView::is_finished);
        for node in &self.nodes {
            node.leave(&executor);
        }
        self.on.cluster.forget(&self.on.run, settled);
    }
}

impl Options {
    /// Runs the nodes that call functions of `cluster`'s registry on its
    /// workers; the other nodes run here. See [`crate::cluster`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use delayed::{cluster::Cluster, delayed, Options};
    ///
    /// #[delayed(register)]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = Cluster::connect("nats://127.0.0.1:4222", delayed::registry![inc]).await?;
    /// let result = inc(inc(1)).compute_with(Options::new().cluster(&cluster)).await?;
    /// assert_eq!(result, 3);
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
    pub fn cluster(self, cluster: &Cluster) -> Options {
        self.placed(Arc::new(cluster.clone()))
    }
}
