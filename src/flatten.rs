//! A node whose output is a node: `Delayed<Delayed<T>>::flatten`.

use crate::builder::Builder;
use crate::Delayed;

impl<T: Clone + Send + Sync + 'static> Delayed<Delayed<T>> {
    /// The output of the node that this node returns: computes this node,
    /// then the inner node it gave, like dask's graphs that return
    /// `delayed` objects from a task.
    ///
    /// The flattened node is an async task that awaits the inner compute,
    /// so no thread blocks while the inner graph runs, and a chain of
    /// flattens is a chain of tasks, not of nested calls. Dropping every
    /// compute that waits on it aborts that task, which drops the inner
    /// compute and so stops the inner work that only it needed.
    ///
    /// The inner graph is made while the outer node runs, so it is not
    /// part of this node's [`graph`](Delayed::graph), and callbacks and
    /// options of the outer compute do not reach it.
    ///
    /// # Errors
    ///
    /// A failed outer node fails the flattened node with its own error. A
    /// failed inner node fails it with an error whose
    /// [`source`](std::error::Error::source) is the inner compute's
    /// [`Error`](crate::Error), which names the inner task that failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{delayed, Delayed};
    ///
    /// #[delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// #[delayed]
    /// fn plan(depth: u64) -> Delayed<u64> {
    ///     // Decide the shape of the rest of the graph from a computed value.
    ///     (0..depth).fold(Delayed::value(0), |x, _| inc(x))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(plan(3).flatten().compute().await.unwrap(), 3);
    /// # }
    /// ```
    pub fn flatten(&self) -> Delayed<T> {
        let mut builder = Builder::new(&"flatten");
        let inner = builder.input::<Delayed<T>>(self.clone());
        builder.future_result(move |deps| {
            let inner = deps.cloned(&inner);
            async move { inner.compute().await }
        })
    }
}
