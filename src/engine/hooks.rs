//! The engine's hooks: how something built on the engine runs a node's
//! attempts elsewhere (awaited by a task here, or held by the executor
//! alone until it settles the run), keeps a finished node's output
//! elsewhere, and places a compute before it starts.
//!
//! The engine knows its extensions only through these traits. A scale-out
//! onto other machines implements [`Executor`], [`OutputStore`] and
//! [`Placement`]; a persistent cache implements [`Memo`], [`OutputStore`]
//! (for what it found, read lazily) and [`Placement`] (to mark the nodes
//! it may hold).

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

pub(crate) use super::elsewhere::Settle;
use super::view::NodeView;
use crate::Error;

/// A node's output with its type erased, crossing a hook. The engine
/// downcasts it to the node's output type.
pub(crate) type AnyOutput = Box<dyn Any + Send>;

/// The future a hook returns.
pub(crate) type HookFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What one attempt of a node made.
pub(crate) enum Made<T> {
    /// The output, here.
    Value(T),
    /// The output stays in a store: the node finishes with its output
    /// stored (see `stored.rs`), read back when something here reads it.
    /// `None` (only for a join) keeps it in the join's inputs.
    Stored(Option<Arc<dyn OutputStore>>),
    /// A [`Memo`] found the output of an earlier run: the node finishes
    /// without running, with its output stored in that store, and is
    /// reported as served from it.
    Found(Arc<dyn OutputStore>),
    /// An input whose output was stored went away before it could be
    /// read: the run must be set up again, that input included.
    Again,
}

/// Runs attempts of nodes somewhere other than here.
///
/// The engine gives the attempt the node's limit, timeout and retries, as
/// it does for attempts here; the executor only runs one attempt.
pub(crate) trait Executor: Send + Sync + 'static {
    /// Runs attempt number `attempt` (from 1) of `node`, whose inputs are
    /// all finished (some perhaps with stored outputs).
    ///
    /// # Errors
    ///
    /// The attempt's failure, about `node`.
    fn attempt(
        self: Arc<Self>,
        node: NodeView,
        attempt: u32,
    ) -> HookFuture<Result<Made<AnyOutput>, Error>>;

    /// Starts the one attempt of a run of `node` that has no limit,
    /// timeout, retries or memo, and returns at once with what stops it.
    /// The executor ends the run through `settle`, later, from any task,
    /// and holds nothing here meanwhile but what it chooses to: a big
    /// compute's remote nodes then wait without a task each. Dropped
    /// unsettled, `settle` hands the node back, as a dropped task does.
    ///
    /// By default a task on `handle` runs [`attempt`](Executor::attempt).
    fn submit(self: Arc<Self>, node: NodeView, settle: Settle, handle: &Handle) -> Stop {
        let named = node.clone();
        let join = crate::spawn::node_task(handle, move || named.key(), async move {
            let made = settle.instrumented(self.attempt(node, 1)).await;
            settle.settle(made);
        });
        Stop::Task(join.abort_handle())
    }
}

/// What stops a running node that nobody wants any more: its task here,
/// or an executor's hook (see [`Executor::submit`]). Dropped without
/// being used, it does nothing. One word and a tag: every node's state
/// has room for one.
pub(crate) enum Stop {
    Task(AbortHandle),
    Hook(Box<Box<dyn FnOnce() + Send>>),
}

impl Stop {
    /// A hook that stops the run.
    #[allow(dead_code, reason = "for extensions, which a build may leave out")]
    pub(crate) fn hook(hook: impl FnOnce() + Send + 'static) -> Stop {
        Stop::Hook(Box::new(Box::new(hook)))
    }

    /// Stops the run. A hook runs at once, on this thread, with no lock
    /// of the engine held: it must be short and must not block.
    pub(crate) fn stop(self) {
        match self {
            Stop::Task(task) => task.abort(),
            Stop::Hook(hook) => hook(),
        }
    }
}

/// Holds the outputs of finished nodes elsewhere, and reads them back.
pub(crate) trait OutputStore: Send + Sync + 'static {
    /// Reads the stored output of `node` back here. `Ok(None)` when it is
    /// gone: the node runs again.
    ///
    /// # Errors
    ///
    /// The output could not be read, about `node`.
    fn read(self: Arc<Self>, node: NodeView) -> HookFuture<Result<Option<AnyOutput>, Error>>;
}

/// Places a compute: before the compute of `root` starts, decides where
/// its nodes run (with [`NodeView::run_elsewhere`]). What it returns lives
/// as long as the compute; dropping it undoes the placement.
pub(crate) trait Placement: Send + Sync + 'static {
    /// Places the nodes `root` needs.
    fn place(&self, root: &NodeView) -> Box<dyn Any + Send>;
}

/// Remembers outputs across runs: before a node runs, looks for the
/// output an earlier run made; after it ran, keeps the new one.
pub(crate) trait Memo: Send + Sync + 'static {
    /// Looks for the output of `node`, whose inputs are all finished (some
    /// perhaps with stored outputs, not read back). `Ok(Some(store))`: the
    /// node finishes without running, its output in `store`, read from it
    /// only when something here reads it.
    ///
    /// # Errors
    ///
    /// The node cannot run: about `node`.
    fn recall(
        self: Arc<Self>,
        node: NodeView,
    ) -> HookFuture<Result<Option<Arc<dyn OutputStore>>, Error>>;

    /// Keeps `output`, which `node` just made. Called before the node
    /// settles; the output is borrowed only while this returns.
    fn keep(self: Arc<Self>, node: NodeView, output: &(dyn Any + Send + Sync)) -> HookFuture<()>;
}
