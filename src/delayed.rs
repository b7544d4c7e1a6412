//! The `Delayed<T>` handle.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::builder::{once, Builder};
use crate::compute::Compute;
use crate::engine::node::NodeRef;
use crate::engine::policy;
use crate::engine::view::NodeView;
use crate::engine::{blocking, runner, schedule, snapshot};
use crate::key::Key;
use crate::limit::Limit;
use crate::retry::Retry;
use crate::{Error, Graph, Options};

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
    pub(crate) node: NodeRef,
    _type: PhantomData<fn() -> T>,
}

impl<T> Delayed<T> {
    /// A read-only view of the node, for the extensions.
    pub(crate) fn view(&self) -> NodeView {
        NodeView::new(NodeRef::clone(&self.node))
    }
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
    pub(crate) fn from_task(node: NodeRef) -> Self {
        Delayed {
            node,
            _type: PhantomData,
        }
    }

    /// A handle to the node behind `view`, whose output must be a `T`.
    #[allow(dead_code, reason = "for extensions, which a build may leave out")]
    pub(crate) fn from_view(view: NodeView) -> Self {
        Delayed::from_task(view.into_node())
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

    /// Wraps a known value as a pure node, like dask's
    /// `delayed(value, pure=True)`: its key is a hash of the value, so equal
    /// values give equal keys (and are one node while both live), and pure
    /// calls that take it agree across runs.
    ///
    /// [`value`](Delayed::value) already hashes by value where a pure call
    /// takes it directly; `pure_value` also keys the node itself, so that a
    /// join or combinator of it is deterministic too.
    ///
    /// A panic in the value's [`Tokenize`](crate::Tokenize) fails the node.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::Delayed;
    ///
    /// let a = Delayed::pure_value(vec![1.5, 2.5]);
    /// let b = Delayed::pure_value(vec![1.5, 2.5]);
    /// assert_eq!(a.key(), b.key());
    /// assert_ne!(a.key(), Delayed::pure_value(vec![1.5]).key());
    /// ```
    pub fn pure_value(value: T) -> Self
    where
        T: crate::Tokenize,
    {
        Builder::pure_literal(value)
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
    /// A pure node that is renamed is no longer shared with new equal calls;
    /// naming a pure call right after making it names that call only: an
    /// equal earlier call keeps its key (the named call is then a task of
    /// its own).
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
    pub fn named(mut self, key: impl Into<Arc<str>>) -> Self {
        // A pure call that found an equal live node: name this call's own
        // node, and leave the earlier call its key.
        if let Some(own) = crate::engine::intern::take_spare(&self.node) {
            self.node = own;
        }
        self.view().rename(key);
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
        snapshot::graph(&self.node)
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
    pub fn compute(&self) -> Compute<T>
    where
        T: Clone,
    {
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
    pub fn compute_with(&self, options: Options) -> Compute<T>
    where
        T: Clone,
    {
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
        let handle = runner::fallback().map_err(|message| Error::runtime(self.key(), message))?;
        let compute = Compute::new(self.clone(), false, Some(handle));
        blocking::while_waiting(|| futures::executor::block_on(compute))
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
        let handle = runner::fallback().map_err(|message| Error::runtime(self.key(), message))?;
        let _context = handle.enter();
        let compute = Compute::new(self.clone(), false, Some(handle.clone())).with_options(options);
        blocking::while_waiting(|| futures::executor::block_on(compute))
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
        runner::dispatch(ready, None);
        self.clone()
    }
}

/// Execution policies: a limit, retries, a timeout and a priority.
impl<T: Send + Sync + 'static> Delayed<T> {
    /// Runs this node's body under `limit`: it waits for a permit when its
    /// inputs are ready, and holds it only while its body runs.
    ///
    /// Like [`named`](Delayed::named), the policy belongs to the node:
    /// every handle to it sees it, and it applies to runs that start later.
    /// `#[delayed(limit = NAME)]` sets it on every call of a function.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use delayed::{Delayed, Limit};
    ///
    /// static DISK: Limit = Limit::new("disk", 1);
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let reads: Vec<_> = (0..3_u64)
    ///     .map(|i| {
    ///         Delayed::value(i)
    ///             .then(|i| async move {
    ///                 tokio::time::sleep(Duration::from_secs(1)).await;
    ///                 i
    ///             })
    ///             .limit(&DISK)
    ///     })
    ///     .collect();
    /// let start = tokio::time::Instant::now();
    /// assert_eq!(delayed::compute(reads).await.unwrap(), [0, 1, 2]);
    /// assert_eq!(start.elapsed(), Duration::from_secs(3));
    /// # }
    /// ```
    pub fn limit(self, limit: &'static Limit) -> Self {
        policy::update(&self.node, |policy| policy.limit = Some(limit));
        self
    }

    /// Runs this node's body again when it fails, as `retry` says.
    ///
    /// Only `Err` results and timeouts are retried unless the policy says
    /// otherwise. Bodies that are `FnOnce` closures ([`Delayed::lazy`],
    /// [`map`](Delayed::map), [`try_map`](Delayed::try_map),
    /// [`map_blocking`](Delayed::map_blocking)) cannot run twice: their
    /// second attempt fails with an error that says so. `#[delayed]`
    /// functions and [`then`](Delayed::then) can always run again.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use delayed::{delayed, Retry};
    ///
    /// #[delayed]
    /// fn unreachable_host() -> Result<String, std::io::Error> {
    ///     Err(std::io::Error::other("no route to host"))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let start = tokio::time::Instant::now();
    /// let err = unreachable_host()
    ///     .retry(Retry::attempts(3).fixed(Duration::from_secs(1)))
    ///     .compute()
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// assert_eq!(start.elapsed(), Duration::from_secs(2));
    /// # }
    /// ```
    pub fn retry(self, retry: Retry) -> Self {
        policy::update(&self.node, |policy| policy.retry = Some(retry));
        self
    }

    /// Stops this node's body if an attempt runs longer than `timeout`:
    /// its future is dropped at the deadline and the node fails with an
    /// error for which [`is_timeout`](crate::Error::is_timeout) is true
    /// (or is retried, under a [`Retry`] policy).
    ///
    /// The clock starts when the body starts: time spent waiting for
    /// inputs or for a [`Limit`] permit does not count. A blocking body
    /// cannot be stopped midway: at the deadline the node fails and the
    /// body's thread finishes in the background, its result dropped; under
    /// a limit, it keeps its permit until it returns, since it still uses
    /// the resource. Sync bodies run to the end; give the timeout to async
    /// or blocking work.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[delayed::delayed]
    /// async fn hang() -> u64 {
    ///     std::future::pending().await
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let start = tokio::time::Instant::now();
    /// let err = hang().timeout(Duration::from_secs(5)).compute().await.unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(start.elapsed(), Duration::from_secs(5));
    /// # }
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        policy::update(&self.node, |policy| policy.timeout = Some(timeout));
        self
    }

    /// Sets this node's priority (default 0; higher goes first).
    ///
    /// Priority orders nodes that wait for the same [`Limit`], and
    /// blocking bodies waiting for the blocking pool when all its slots are
    /// busy. Other ready nodes start at once, so priority does not apply
    /// to them.
    ///
    /// **Inheritance.** A node runs at the highest priority of itself and
    /// of every node that waits for it in a running compute. So the inputs
    /// of an urgent node are urgent too, and a low-priority load that a
    /// high-priority report needs is not starved by medium-priority work.
    /// A node's place in a queue is fixed when it joins the queue.
    ///
    /// **Hand-off.** When a body under a limit ends, the permit it gives
    /// back goes to the best of the nodes waiting for it and of the
    /// dependents under the same limit that the node's end makes ready: a
    /// report of priority 10 waiting for a load does not queue behind a
    /// node of priority 5 that was already waiting when the load ended.
    /// (A dependent reached through a node with no limit, such as a `map`,
    /// joins the queue once that node has run.) The permit is still held
    /// only while the body runs, and is back before any compute hears that
    /// the node ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use delayed::{Delayed, Limit};
    ///
    /// static ONE: Limit = Limit::new("one", 1);
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let job = |name: &'static str, priority: i32| {
    ///     let order = order.clone();
    ///     Delayed::value(name)
    ///         .then(move |name| {
    ///             let order = order.clone();
    ///             async move {
    ///                 order.lock().unwrap().push(name);
    ///                 tokio::time::sleep(Duration::from_secs(1)).await;
    ///             }
    ///         })
    ///         .limit(&ONE)
    ///         .priority(priority)
    /// };
    /// let jobs = vec![job("first", 0), job("low", -1), job("high", 5)];
    /// delayed::compute(jobs).await.unwrap();
    /// // "first" took the permit at once; then the higher priority went.
    /// assert_eq!(*order.lock().unwrap(), ["first", "high", "low"]);
    /// # }
    /// ```
    ///
    /// A dependent made ready by the node that hands the permit on:
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use delayed::{Delayed, Limit};
    ///
    /// static ONE: Limit = Limit::new("one", 1);
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let order = Arc::new(Mutex::new(Vec::new()));
    /// // Once its input is done, logs its name and holds ONE for 10 ms.
    /// let step = |name: &'static str, input: Delayed<u64>| {
    ///     let order = order.clone();
    ///     input
    ///         .then(move |_| {
    ///             let order = order.clone();
    ///             async move {
    ///                 order.lock().unwrap().push(name);
    ///                 tokio::time::sleep(Duration::from_millis(10)).await;
    ///                 0
    ///             }
    ///         })
    ///         .limit(&ONE)
    /// };
    /// let after = |ms: u64| {
    ///     Delayed::value(ms).then(|ms| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     })
    /// };
    /// let load = step("load", Delayed::value(0));
    /// let m1 = step("m1", after(1)).priority(5); // waits from 1 ms on
    /// let report = step("report", load).priority(10); // ready at 10 ms
    /// delayed::compute((report, m1)).await.unwrap();
    /// assert_eq!(*order.lock().unwrap(), ["load", "report", "m1"]);
    /// # }
    /// ```
    pub fn priority(self, priority: i32) -> Self {
        policy::update(&self.node, |policy| policy.priority = Some(priority));
        self
    }

    /// Asks for this node to run in the worker pool `pool` when a cluster
    /// runs it (`#[delayed(register, pool = "gpu")]` asks it for every
    /// node of a function; this overrides that). Run here, a node ignores
    /// its pool. See `delayed::cluster` (feature `nats`).
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed]
    /// fn train(epochs: u64) -> u64 {
    ///     epochs
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let model = train(3).pool("gpu");
    /// assert_eq!(model.compute().await.unwrap(), 3); // no cluster: runs here
    /// # }
    /// ```
    pub fn pool(self, pool: &str) -> Self {
        let pool: Arc<str> = pool.into();
        policy::update(&self.node, |policy| policy.pool = Some(pool));
        self
    }
}

/// Pictures of the graph.
impl<T: Send + Sync + 'static> Delayed<T> {
    /// Draws this node's [`graph`](Delayed::graph) to a file, like dask's
    /// `visualize`, and returns the path written.
    ///
    /// The file's extension picks the format:
    ///
    /// - `.dot` or `.gv`: the DOT text of [`Graph::to_dot`].
    /// - `.svg`, `.png` or `.pdf`: rendered by Graphviz's `dot` program,
    ///   which must be installed (`apt-get install graphviz`,
    ///   `brew install graphviz`).
    ///
    /// This blocks the calling thread while it writes the file and while
    /// `dot` runs. From async code, call it inside
    /// [`tokio::task::spawn_blocking`].
    ///
    /// # Errors
    ///
    /// Returns an error, never panics, when the extension is not one of
    /// the above, when the file cannot be written, when `dot` is not
    /// installed (the message says how to install it), or when `dot` fails
    /// (the message includes what it printed).
    ///
    /// # Examples
    ///
    /// Writing DOT needs nothing else:
    ///
    /// ```
    /// use delayed::delayed;
    ///
    /// #[delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let node = inc(inc(1));
    /// let path = node.visualize(dir.path().join("graph.dot"))?;
    /// assert_eq!(std::fs::read_to_string(path)?, node.graph().to_dot());
    /// # Ok(()) }
    /// ```
    ///
    /// Rendering an image needs Graphviz; from async code, off the runtime's
    /// threads:
    ///
    /// ```no_run
    /// use delayed::delayed;
    ///
    /// #[delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let node = inc(inc(1));
    /// let drawn = node.clone();
    /// tokio::task::spawn_blocking(move || drawn.visualize("graph.svg")).await??;
    /// assert_eq!(node.compute().await?, 3);
    /// # Ok(()) }
    /// ```
    pub fn visualize(&self, path: impl AsRef<Path>) -> Result<PathBuf, Error> {
        self.graph()
            .visualize(path)
            .map_err(|err| Error::draw(self.key(), err.to_string()))
    }
}

impl<T> fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Delayed({})", self.node.core().key())
    }
}

/// Two handles are equal when they are the same node, so `Delayed`s can be
/// kept in sets and passed as a `HashSet` or `BTreeSet` argument.
///
/// # Examples
///
/// ```
/// use std::collections::HashSet;
/// use delayed::Delayed;
///
/// let a = Delayed::value(1);
/// let set: HashSet<_> = [a.clone(), a.clone(), Delayed::value(1)].into_iter().collect();
/// assert_eq!(set.len(), 2);
/// ```
impl<T> PartialEq for Delayed<T> {
    fn eq(&self, other: &Delayed<T>) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

impl<T> Eq for Delayed<T> {}

impl<T> std::hash::Hash for Delayed<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        crate::engine::node::address(&self.node).hash(state);
    }
}

impl<T> PartialOrd for Delayed<T> {
    fn partial_cmp(&self, other: &Delayed<T>) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Handles order by key, then by node.
impl<T> Ord for Delayed<T> {
    fn cmp(&self, other: &Delayed<T>) -> std::cmp::Ordering {
        if self == other {
            return std::cmp::Ordering::Equal;
        }
        self.node
            .core()
            .key()
            .cmp(&other.node.core().key())
            .then_with(|| {
                crate::engine::node::address(&self.node)
                    .cmp(&crate::engine::node::address(&other.node))
            })
    }
}
