//! Callbacks: watching computes and their tasks, like dask's `Callback`.

use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use tokio::time::Instant;

use crate::{Error, Graph, Key};

/// Hooks called as a compute runs, in the spirit of dask's `Callback`.
///
/// Attach one to a single compute with
/// [`Delayed::compute_with`](crate::Delayed::compute_with) and
/// [`Options::callback`](crate::Options::callback), or to every compute in a
/// scope with [`observe`](crate::observe()). Every method has an empty default,
/// so implement only what you need.
///
/// Calls come from whichever thread runs the task, concurrently: keep them
/// short and never block in them. When no callback is attached anywhere,
/// the scheduler skips them entirely (no timing, no events).
///
/// Callbacks hear of the tasks of the graph you wrote: the nodes the crate
/// makes for you (literals, and the node that gathers a `Vec` or tuple of
/// nodes, see [`Graph`]) are neither in the graph `start` gets nor heard of
/// as tasks.
///
/// One callback attached to several computes at once hears each task once,
/// even a task those computes share; it hears `start` and `finish` once per
/// compute. "One callback" is one value: clones of one `Arc`, or clones of
/// a `ProgressBar`, which share their bar. Attached
/// twice to one compute (say, in [`Options`](crate::Options) and by an
/// [`observe`](crate::observe()) scope), it hears that compute once.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// use delayed::{delayed, Callback, Options, TaskFinished};
///
/// #[derive(Default)]
/// struct Count(AtomicUsize);
///
/// impl Callback for Count {
///     fn task_finished(&self, _task: &TaskFinished) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// #[delayed]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let count = Arc::new(Count::default());
/// let result = inc(inc(1)).compute_with(Options::new().callback(count.clone())).await;
/// assert_eq!(result.unwrap(), 3);
/// assert_eq!(count.0.load(Ordering::Relaxed), 2);
/// # }
/// ```
pub trait Callback: Send + Sync + 'static {
    /// A compute starts; `graph` holds the nodes it may run.
    fn start(&self, graph: &Graph) {
        let _ = graph;
    }

    /// A task's body starts running.
    fn task_started(&self, task: &TaskStarted) {
        let _ = task;
    }

    /// An attempt of a task with a [`Retry`](crate::Retry) failed, and the
    /// task runs again after a delay. Its `task_started` and
    /// `task_finished` come once for the whole run, around every attempt.
    fn task_retried(&self, task: &TaskRetried) {
        let _ = task;
    }

    /// A task's body ended: with a value, an error, or cancelled. A task
    /// aborted because its compute was dropped reports `Cancelled` shortly
    /// after that compute's `finish`.
    fn task_finished(&self, task: &TaskFinished) {
        let _ = task;
    }

    /// The compute ended, with the error it returns if it failed. A compute
    /// that is dropped before it ends reports a cancelled error.
    fn finish(&self, result: Result<(), &Error>) {
        let _ = result;
    }

    /// Which callback this is: two attachments with the same identity are
    /// one callback (see above). The address of `self` by default; an `Arc`
    /// is the callback it points to, and a callback whose clones share their
    /// state names that state. Not a stable API.
    #[doc(hidden)]
    fn identity(&self) -> usize {
        (self as *const Self).cast::<()>() as usize
    }
}

impl<C: Callback + ?Sized> Callback for Arc<C> {
    fn start(&self, graph: &Graph) {
        (**self).start(graph);
    }

    fn task_started(&self, task: &TaskStarted) {
        (**self).task_started(task);
    }

    fn task_retried(&self, task: &TaskRetried) {
        (**self).task_retried(task);
    }

    fn task_finished(&self, task: &TaskFinished) {
        (**self).task_finished(task);
    }

    fn finish(&self, result: Result<(), &Error>) {
        (**self).finish(result);
    }

    fn identity(&self) -> usize {
        (**self).identity()
    }
}

/// A task's body started. See [`Callback::task_started`].
///
/// # Examples
///
/// ```
/// use delayed::{Callback, TaskStarted};
///
/// struct Log;
/// impl Callback for Log {
///     fn task_started(&self, task: &TaskStarted) {
///         eprintln!("{} ({}) started", task.key(), task.name());
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct TaskStarted {
    pub(crate) key: Key,
    pub(crate) at: Instant,
    pub(crate) queued: Duration,
    pub(crate) thread: ThreadId,
}

/// An attempt of a task failed and the task runs again. See
/// [`Callback::task_retried`].
///
/// # Examples
///
/// ```
/// use delayed::{Callback, TaskRetried};
///
/// struct Log;
/// impl Callback for Log {
///     fn task_retried(&self, task: &TaskRetried) {
///         eprintln!(
///             "{} attempt {} failed ({}); again in {:?}",
///             task.key(),
///             task.attempt(),
///             task.error(),
///             task.delay()
///         );
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct TaskRetried {
    pub(crate) key: Key,
    pub(crate) attempt: u32,
    pub(crate) error: Error,
    pub(crate) delay: Duration,
}

/// A task's body ended. See [`Callback::task_finished`].
///
/// # Examples
///
/// ```
/// use delayed::{Callback, TaskFinished};
///
/// struct Log;
/// impl Callback for Log {
///     fn task_finished(&self, task: &TaskFinished) {
///         eprintln!("{} took {:?}: {:?}", task.key(), task.elapsed(), task.outcome());
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct TaskFinished {
    pub(crate) key: Key,
    pub(crate) started: Instant,
    pub(crate) elapsed: Duration,
    pub(crate) thread: ThreadId,
    pub(crate) outcome: Outcome,
}

/// How a task's body ended.
///
/// # Examples
///
/// ```
/// use delayed::{Callback, Outcome, TaskFinished};
///
/// struct Failures;
/// impl Callback for Failures {
///     fn task_finished(&self, task: &TaskFinished) {
///         match task.outcome() {
///             Outcome::Failed(err) => eprintln!("{err}"),
///             Outcome::Cancelled => eprintln!("{} cancelled", task.key()),
///             _ => {}
///         }
///     }
/// }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// It produced its value.
    Done,
    /// It returned `Err` or panicked.
    Failed(Error),
    /// It was stopped before it finished: every compute waiting on it was
    /// dropped, or its runtime shut down.
    Cancelled,
    /// Its output came from the compute's cache (see `delayed::cache`): it
    /// finished without running.
    Cached,
}

impl TaskStarted {
    /// The task's key.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskStarted};
    ///
    /// struct Log;
    /// impl Callback for Log {
    ///     fn task_started(&self, task: &TaskStarted) {
    ///         println!("{} started on {:?}", task.key(), task.thread());
    ///     }
    /// }
    /// ```
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The function that made the task, like `"load"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskStarted};
    ///
    /// struct Names;
    /// impl Callback for Names {
    ///     fn task_started(&self, task: &TaskStarted) {
    ///         assert_eq!(task.name(), task.key().name());
    ///     }
    /// }
    /// ```
    pub fn name(&self) -> &'static str {
        self.key.name()
    }

    /// When the body started, on tokio's clock (which a paused test
    /// runtime controls).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskStarted};
    ///
    /// struct Clock;
    /// impl Callback for Clock {
    ///     fn task_started(&self, task: &TaskStarted) {
    ///         assert!(task.at() <= tokio::time::Instant::now());
    ///     }
    /// }
    /// ```
    pub fn at(&self) -> Instant {
        self.at
    }

    /// How long the task waited between being ready to run (its inputs
    /// finished) and its body starting: for a permit of its
    /// [`Limit`](crate::Limit), a slot of the blocking pool, or a turn on
    /// tokio's queue. On tokio's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// use delayed::{delayed, Callback, Limit, Options, TaskStarted};
    ///
    /// static ONE: Limit = Limit::new("one", 1);
    ///
    /// #[delayed(limit = ONE)]
    /// async fn nap(i: u64) -> u64 {
    ///     tokio::time::sleep(Duration::from_secs(1)).await;
    ///     i
    /// }
    ///
    /// #[derive(Default)]
    /// struct Waits(Mutex<Vec<Duration>>);
    /// impl Callback for Waits {
    ///     fn task_started(&self, task: &TaskStarted) {
    ///         self.0.lock().unwrap().push(task.queued());
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let waits = Arc::new(Waits::default());
    /// let both = vec![nap(1), nap(2)];
    /// delayed::compute_with(both, Options::new().callback(waits.clone())).await.unwrap();
    /// let mut waits = waits.0.lock().unwrap().clone();
    /// waits.sort();
    /// // One ran at once; the other waited a second for the permit.
    /// assert_eq!(waits, [Duration::ZERO, Duration::from_secs(1)]);
    /// # }
    /// ```
    pub fn queued(&self) -> Duration {
        self.queued
    }

    /// The thread the body runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskStarted};
    ///
    /// struct Threads;
    /// impl Callback for Threads {
    ///     fn task_started(&self, task: &TaskStarted) {
    ///         let _ = task.thread();
    ///     }
    /// }
    /// ```
    pub fn thread(&self) -> ThreadId {
        self.thread
    }
}

impl TaskFinished {
    /// The task's key.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskFinished};
    ///
    /// struct Log;
    /// impl Callback for Log {
    ///     fn task_finished(&self, task: &TaskFinished) {
    ///         println!("{} took {:?}", task.key(), task.elapsed());
    ///     }
    /// }
    /// ```
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The function that made the task, like `"load"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskFinished};
    ///
    /// struct Names;
    /// impl Callback for Names {
    ///     fn task_finished(&self, task: &TaskFinished) {
    ///         assert_eq!(task.name(), task.key().name());
    ///     }
    /// }
    /// ```
    pub fn name(&self) -> &'static str {
        self.key.name()
    }

    /// When the body started, on tokio's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskFinished};
    ///
    /// struct Clock;
    /// impl Callback for Clock {
    ///     fn task_finished(&self, task: &TaskFinished) {
    ///         assert!(task.started() + task.elapsed() <= tokio::time::Instant::now());
    ///     }
    /// }
    /// ```
    pub fn started(&self) -> Instant {
        self.started
    }

    /// How long the body ran, on tokio's clock: exact virtual time under
    /// a paused test runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskFinished};
    ///
    /// struct Slow;
    /// impl Callback for Slow {
    ///     fn task_finished(&self, task: &TaskFinished) {
    ///         if task.elapsed() > std::time::Duration::from_secs(1) {
    ///             eprintln!("slow task {}", task.key());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The thread the body ended on (an async body may move between
    /// worker threads while it runs).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskFinished};
    ///
    /// struct Threads;
    /// impl Callback for Threads {
    ///     fn task_finished(&self, task: &TaskFinished) {
    ///         let _ = task.thread();
    ///     }
    /// }
    /// ```
    pub fn thread(&self) -> ThreadId {
        self.thread
    }

    /// How the body ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, Outcome, TaskFinished};
    ///
    /// struct Failures;
    /// impl Callback for Failures {
    ///     fn task_finished(&self, task: &TaskFinished) {
    ///         if let Outcome::Failed(err) = task.outcome() {
    ///             eprintln!("{err}");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }
}

impl TaskRetried {
    /// The task's key.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskRetried};
    ///
    /// struct Log;
    /// impl Callback for Log {
    ///     fn task_retried(&self, task: &TaskRetried) {
    ///         println!("{} runs again", task.key());
    ///     }
    /// }
    /// ```
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The function that made the task, like `"fetch"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskRetried};
    ///
    /// struct Names;
    /// impl Callback for Names {
    ///     fn task_retried(&self, task: &TaskRetried) {
    ///         assert_eq!(task.name(), task.key().name());
    ///     }
    /// }
    /// ```
    pub fn name(&self) -> &'static str {
        self.key.name()
    }

    /// The attempt that failed, from 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// use delayed::{delayed, Callback, Options, Retry, TaskRetried};
    ///
    /// #[derive(Default)]
    /// struct Last(AtomicU32);
    /// impl Callback for Last {
    ///     fn task_retried(&self, task: &TaskRetried) {
    ///         self.0.store(task.attempt(), Ordering::Relaxed);
    ///     }
    /// }
    ///
    /// #[delayed(retry = Retry::attempts(3))]
    /// fn flaky() -> Result<u64, String> { Err("down".to_string()) }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let last = Arc::new(Last::default());
    /// assert!(flaky().compute_with(Options::new().callback(last.clone())).await.is_err());
    /// // Attempts 1 and 2 failed and ran again; the third was the last.
    /// assert_eq!(last.0.load(Ordering::Relaxed), 2);
    /// # }
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// What the attempt failed with.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskRetried};
    ///
    /// struct Log;
    /// impl Callback for Log {
    ///     fn task_retried(&self, task: &TaskRetried) {
    ///         eprintln!("{}", task.error().report());
    ///     }
    /// }
    /// ```
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// How long the task waits before its next attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Callback, TaskRetried};
    ///
    /// struct Log;
    /// impl Callback for Log {
    ///     fn task_retried(&self, task: &TaskRetried) {
    ///         println!("again in {:?}", task.delay());
    ///     }
    /// }
    /// ```
    pub fn delay(&self) -> std::time::Duration {
        self.delay
    }
}
