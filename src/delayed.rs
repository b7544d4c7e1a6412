//! The `Delayed<T>` handle.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::builder::{once, Builder};
use crate::compute::Compute;
use crate::key::{Key, KeyId};
use crate::task::Task;
use crate::{intern, lane, run, schedule, Error, Graph, Options};

/// A lazy value: one node of a task graph, to be computed later.
///
/// A `Delayed<T>` is what a `#[delayed]` function returns instead of
/// running. It is a cheap, clonable handle to a shared node: every clone,
/// and every node that takes it as an input, refers to the same task, which
/// runs at most once while anything holds it.
///
/// Nothing runs until the node is computed with [`compute`](Delayed::compute),
/// `.await`, [`compute_blocking`](Delayed::compute_blocking) or
/// [`persist`](Delayed::persist). Then its inputs are computed concurrently
/// on the current tokio runtime, and the result is kept for later computes.
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
/// fn add(a: u64, b: u64) -> u64 { a + b }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), delayed::Error> {
/// let x = inc(1);                  // nothing runs yet
/// let y = add(&x, Delayed::value(10));
/// assert_eq!(y.compute().await?, 12);
/// assert_eq!(x.compute().await?, 2); // already done: not run again
/// # Ok(()) }
/// ```
#[must_use = "a Delayed does nothing until it is computed"]
pub struct Delayed<T> {
    pub(crate) node: Arc<dyn Task>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed {
            node: Arc::clone(&self.node),
            _type: PhantomData,
        }
    }
}

impl<T: Send + Sync + 'static> Delayed<T> {
    pub(crate) fn from_task(node: Arc<dyn Task>) -> Self {
        Delayed {
            node,
            _type: PhantomData,
        }
    }

    /// Wraps a value that is already known, like dask's `delayed(value)`.
    ///
    /// The node is finished from the start: computing it returns a clone of
    /// the value, and functions that take it as an input borrow or move it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let x = delayed::Delayed::value(vec![1, 2, 3]);
    /// assert_eq!(x.map_ref(|v| v.len()).compute().await.unwrap(), 3);
    /// # }
    /// ```
    pub fn value(value: T) -> Self {
        Builder::literal(value)
    }

    /// Defers a closure that takes no inputs: `Delayed::lazy(f)` is dask's
    /// `delayed(f)()`. It runs inline, at most once, when first computed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let config = delayed::Delayed::lazy(|| "threads=2".to_string());
    /// assert_eq!(config.compute().await.unwrap(), "threads=2");
    /// # }
    /// ```
    pub fn lazy(f: impl FnOnce() -> T + Send + 'static) -> Self {
        let mut f = once("lazy", move |()| f());
        Builder::new(&"lazy").sync(move |_| f(()))
    }

    /// The key of this node: its function name and a per-call number, a
    /// hash of the arguments for pure functions, or the key set by
    /// [`named`](Delayed::named).
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed(pure)]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// assert_eq!(square(3).key(), square(3).key());
    /// assert_ne!(square(3).key(), square(4).key());
    /// assert!(square(3).key().to_string().starts_with("square-"));
    /// ```
    pub fn key(&self) -> Key {
        self.node.core().key()
    }

    /// Gives this node a key of your choosing, like dask's `dask_key_name`.
    /// Errors and traces then name the task by it.
    ///
    /// The key belongs to the node, so every handle to it sees the new key.
    /// A pure node that is renamed is no longer shared with new equal calls.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed]
    /// fn load(path: String) -> String { path }
    ///
    /// let a = load("a.csv".to_string()).named("load-a");
    /// assert_eq!(a.key().to_string(), "load-a");
    /// assert_eq!(a.key().name(), "load");
    /// ```
    pub fn named(self, key: impl Into<Arc<str>>) -> Self {
        intern::rename(&self.node);
        self.node.core().lock().id = KeyId::Custom(key.into());
        self
    }

    /// A snapshot of this node and everything it depends on, for
    /// inspecting or drawing the graph. See [`Graph`].
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// assert_eq!(inc(inc(1)).graph().nodes().len(), 2);
    /// ```
    pub fn graph(&self) -> Graph {
        Graph::snapshot(&self.node)
    }

    /// Computes this node on the current tokio runtime.
    ///
    /// The returned future registers the node's inputs, runs every
    /// unfinished one concurrently, and resolves to a clone of the output.
    /// It works on multi-thread and current-thread runtimes; polled outside
    /// any runtime, the work runs on a shared fallback runtime.
    ///
    /// # Errors
    ///
    /// Returns the [`Error`] of the first task that failed on the way: a
    /// returned `Err`, a panic, or an interrupted run.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the work that only it was waiting for:
    /// queued nodes are not started and running async nodes are aborted.
    /// Finished results stay, and a later compute starts what was stopped.
    /// Work that another compute, or [`persist`](Delayed::persist), still
    /// needs goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(inc(inc(1)).compute().await.unwrap(), 3);
    /// # }
    /// ```
    pub fn compute(&self) -> Compute<T> {
        Compute::new(self.clone(), false, None)
    }

    /// Computes this node with [`Options`], such as callbacks that watch the
    /// compute and its tasks.
    ///
    /// # Errors
    ///
    /// As for [`compute`](Delayed::compute).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, Graph, Options};
    ///
    /// struct Announce;
    /// impl Callback for Announce {
    ///     fn start(&self, graph: &Graph) {
    ///         println!("computing {} nodes", graph.nodes().len());
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let x = delayed::Delayed::value(20).map(|x: u64| x + 1);
    /// assert_eq!(x.compute_with(Options::new().callback(Announce)).await.unwrap(), 21);
    /// # }
    /// ```
    pub fn compute_with(&self, options: Options) -> Compute<T> {
        Compute::new(self.clone(), false, None).with_options(options)
    }

    /// Computes this node from synchronous code, like dask's `compute()`
    /// from a script, and blocks the calling thread until it is done.
    ///
    /// The work runs on a shared multi-thread runtime that is started on
    /// first use, so no runtime is needed. Do not call it from async code:
    /// it would block a worker thread. Use `.compute().await` there.
    ///
    /// # Errors
    ///
    /// As for [`compute`](Delayed::compute), plus an error when the shared
    /// runtime cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// assert_eq!(inc(41).compute_blocking().unwrap(), 42);
    /// ```
    pub fn compute_blocking(&self) -> Result<T, Error>
    where
        T: Clone,
    {
        let handle = run::fallback().map_err(|message| Error::runtime(self.key(), message))?;
        let compute = Compute::new(self.clone(), false, Some(handle));
        lane::while_waiting(|| futures::executor::block_on(compute))
    }

    /// [`compute_blocking`](Delayed::compute_blocking) with [`Options`].
    ///
    /// With [`Options::sequential`] this is dask's `get_sync`: every node
    /// runs on the calling thread, one at a time, async bodies included
    /// (inside the shared runtime's context, so tokio's timers and I/O
    /// work in them).
    ///
    /// # Errors
    ///
    /// As for [`compute_blocking`](Delayed::compute_blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{delayed, Options};
    ///
    /// #[delayed]
    /// async fn fetch(x: u64) -> u64 {
    ///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    ///     x
    /// }
    ///
    /// #[delayed]
    /// fn check(x: u64, caller: String) -> u64 {
    ///     assert_eq!(std::thread::current().name(), Some(caller.as_str()));
    ///     x + 1
    /// }
    ///
    /// let me = std::thread::current().name().unwrap_or_default().to_string();
    /// let result = check(fetch(41), me).compute_blocking_with(Options::new().sequential());
    /// assert_eq!(result.unwrap(), 42);
    /// ```
    pub fn compute_blocking_with(&self, options: Options) -> Result<T, Error>
    where
        T: Clone,
    {
        let handle = run::fallback().map_err(|message| Error::runtime(self.key(), message))?;
        let _context = handle.enter();
        let compute = Compute::new(self.clone(), false, Some(handle.clone())).with_options(options);
        lane::while_waiting(|| futures::executor::block_on(compute))
    }

    /// Starts computing this node now, in the background, and returns it.
    ///
    /// The work goes on even if nobody awaits it, like dask's `persist` or a
    /// distributed future: a later compute finds it running or done. It
    /// runs on the current runtime, or on the shared fallback runtime when
    /// called outside one.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let flag = ran.clone();
    /// let job = delayed::Delayed::lazy(move || flag.store(true, Ordering::SeqCst));
    /// let running = job.persist();
    /// tokio::task::yield_now().await;
    /// assert!(ran.load(Ordering::SeqCst));
    /// running.compute().await.unwrap();
    /// # }
    /// ```
    pub fn persist(&self) -> Delayed<T> {
        let mut ready = Vec::new();
        schedule::demand(&self.node, &mut ready);
        run::dispatch(ready, None);
        self.clone()
    }
}

impl<T> fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Delayed({})", self.node.core().key())
    }
}
