//! Options for one compute.

use std::fmt;
use std::sync::Arc;

use crate::callback::Callback;
use crate::engine::hooks::Placement;

/// Settings for one compute: see [`Delayed::compute_with`].
///
/// [`Delayed::compute_with`]: crate::Delayed::compute_with
///
/// # Examples
///
/// ```
/// use delayed::{Callback, Options, TaskFinished};
///
/// struct Log;
/// impl Callback for Log {
///     fn task_finished(&self, task: &TaskFinished) {
///         println!("{} in {:?}", task.key(), task.elapsed());
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let x = delayed::Delayed::value(1).map(|x: u64| x * 2);
/// assert_eq!(x.compute_with(Options::new().callback(Log)).await.unwrap(), 2);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Options {
    pub(crate) callbacks: Vec<Arc<dyn Callback>>,
    pub(crate) sequential: bool,
    /// Where the compute's nodes run, when not all here (a cluster), and
    /// what marks them before it starts (a cache), in the order given.
    pub(crate) placements: Vec<Arc<dyn Placement>>,
}

impl Options {
    /// The defaults: no callbacks, parallel.
    ///
    /// # Examples
    ///
    /// ```
    /// let options = delayed::Options::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Options {
        Options::default()
    }

    /// Attaches a callback to the compute. Several can be attached; each
    /// sees every event.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, Graph, Options};
    ///
    /// struct Size;
    /// impl Callback for Size {
    ///     fn start(&self, graph: &Graph) {
    ///         println!("{} nodes", graph.nodes().len());
    ///     }
    /// }
    ///
    /// let options = Options::new().callback(Size);
    /// # let _ = options;
    /// ```
    pub fn callback(mut self, callback: impl Callback) -> Options {
        self.callbacks.push(Arc::new(callback));
        self
    }

    /// Runs the compute with the sequential debug scheduler, like dask's
    /// `get_sync`: one node at a time, on the thread that polls the
    /// compute, in a deterministic order, so that breakpoints, logs and
    /// panics read in order.
    ///
    /// The order is that of a plain recursive evaluation: a node's inputs
    /// first, in argument order, each shared node once. Async bodies are
    /// awaited in place instead of spawned, and blocking bodies run in
    /// place instead of on the blocking pool. Limits, retries and timeouts
    /// still apply. Nodes that another compute is running already are
    /// waited for, not run twice.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use delayed::{Delayed, Options};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let step = |name: &'static str, input: Delayed<u64>| {
    ///     let log = log.clone();
    ///     input.map(move |x| {
    ///         log.lock().unwrap().push(name);
    ///         x + 1
    ///     })
    /// };
    /// let a = step("a", Delayed::value(0));
    /// let b = step("b", a.clone());
    /// let c = step("c", Delayed::value(10));
    /// let both = delayed::compute_with((b, c), Options::new().sequential()).await.unwrap();
    /// assert_eq!(both, (2, 11));
    /// assert_eq!(*log.lock().unwrap(), ["a", "b", "c"]);
    /// # }
    /// ```
    pub fn sequential(mut self) -> Options {
        self.sequential = true;
        self
    }

    /// Places the compute's nodes with `placement`, after the placements
    /// given before.
    #[allow(dead_code, reason = "for extensions, which a build may leave out")]
    pub(crate) fn placed(mut self, placement: Arc<dyn Placement>) -> Options {
        self.placements.push(placement);
        self
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("callbacks", &self.callbacks.len())
            .field("sequential", &self.sequential)
            .finish()
    }
}
