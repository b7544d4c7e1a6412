//! Options for one compute.

use std::fmt;
use std::sync::Arc;

use crate::callback::Callback;

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
}

impl Options {
    /// The defaults: no callbacks.
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
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("callbacks", &self.callbacks.len())
            .finish()
    }
}
