//! Computing nodes: the `Compute` future and the free `compute` function.

use std::any::Any;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::callback::Callback;
use crate::engine::hooks::Placement;
use crate::engine::node::NodeRef;
use crate::engine::root::{self, Root};
use crate::engine::view::NodeView;
use crate::engine::watch::{self, Attached, Watching};
use crate::join::Join;
use crate::{observe, Delayed, Error, Options};

/// The future returned by [`Delayed::compute`], by `delayed.await` and by
/// [`compute`](crate::compute()).
///
/// It registers its node on first poll and resolves when the node finishes.
/// Dropping it before then cancels the work only it was waiting for.
///
/// The span current at that first poll is the compute's *caller*: the
/// spans of the tasks it starts are its children (see
/// [Tracing](crate#tracing)). As with any future, spawning it with
/// `tokio::spawn` does not carry a span along: attach one with
/// `tracing::Instrument::in_current_span`.
///
/// # Panics
///
/// Polling it again after it resolved panics, as most futures do.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let slow = delayed::Delayed::value(1_u64).then(|x| async move {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     x
/// });
/// // Give up after a second: the sleeping task is aborted.
/// let compute: delayed::Compute<u64> = slow.compute();
/// assert!(tokio::time::timeout(Duration::from_secs(1), compute).await.is_err());
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Compute<T> {
    root: Root,
    output: Output<T>,
    stage: Stage,
    callbacks: Vec<Arc<dyn Callback>>,
    watching: Option<Watching>,
    /// Where the compute's nodes run, and the placement while it runs.
    placements: Vec<Arc<dyn Placement>>,
    placed: Vec<Box<dyn Any + Send>>,
}

/// Where a compute is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    New,
    /// Waiting for the root to finish.
    Computing,
    /// The root is done: taking its output.
    Taking,
    Finished,
}

/// How a compute hands the output over.
enum Output<T> {
    /// A clone, or the value itself when `owned` (`compute(...)`) and the
    /// compute holds the last handle.
    Cloned {
        owned: bool,
        clone: fn(&NodeRef) -> Result<T, Error>,
    },
    /// The value itself (`delayed.await`), which needs the last handle.
    Moved(Moving),
}

/// A compute that moves the output out.
#[derive(Default)]
struct Moving {
    /// It held the only handle when it began: nothing else can come to
    /// hold the node, and the references left are the engine's, which go
    /// away as the run that finished it returns.
    sole: bool,
    /// When it first found the node held elsewhere, and how often since.
    since: Option<Instant>,
    tries: u32,
}

/// How long a compute that held the only handle when it began waits for
/// the engine's references to go. A safety net: the engine drops the
/// reference of the run that settled the node before it wakes the compute
/// (`engine/wakes.rs`); what is left (a task that spawned the run and has
/// not yet returned, an abandoned blocking attempt) goes within
/// microseconds, unless the machine is badly overloaded.
const SOLE_PATIENCE: Duration = Duration::from_secs(10);

/// How long a compute that did not hold the only handle when it began (the
/// node was running for `persist` or another compute, or other handles
/// lived) waits for the other references to go before it reports the
/// output shared. Long enough that a run ending on a stalled thread does
/// not pass for a handle.
const SHARED_PATIENCE: Duration = Duration::from_secs(1);

/// Tries, at least, before either patience counts.
const TRIES: u32 = 64;

impl Moving {
    /// Whether to try again, later.
    fn keeps_trying(&mut self) -> bool {
        let since = *self.since.get_or_insert_with(Instant::now);
        self.tries = self.tries.saturating_add(1);
        let patience = if self.sole {
            SOLE_PATIENCE
        } else {
            SHARED_PATIENCE
        };
        self.tries <= TRIES || since.elapsed() < patience
    }
}

impl<T: Send + Sync + 'static> Compute<T> {
    pub(crate) fn with_options(mut self, options: Options) -> Self {
        self.callbacks = options.callbacks;
        self.placements = options.placements;
        if options.sequential {
            self.root.run_sequentially();
        }
        self
    }

    /// A compute that resolves to a clone of the output, or to the output
    /// itself when `owned` and it holds the last handle.
    pub(crate) fn new(delayed: Delayed<T>, owned: bool, handle: Option<Handle>) -> Self
    where
        T: Clone,
    {
        let clone = root::clone_output::<T> as fn(&NodeRef) -> Result<T, Error>;
        Compute::with_output(delayed, Output::Cloned { owned, clone }, handle)
    }

    /// A compute that moves the output out, and fails when it cannot.
    pub(crate) fn moving(delayed: Delayed<T>) -> Self {
        Compute::with_output(delayed, Output::Moved(Moving::default()), None)
    }

    fn with_output(delayed: Delayed<T>, output: Output<T>, handle: Option<Handle>) -> Self {
        Compute {
            root: Root::new(delayed.node, handle),
            output,
            stage: Stage::New,
            callbacks: Vec::new(),
            watching: None,
            placements: Vec::new(),
            placed: Vec::new(),
        }
    }

    /// Tells the callbacks that the compute starts, and places it.
    fn start(&mut self) -> Result<(), Error> {
        self.stage = Stage::Computing;
        if let Output::Moved(moving) = &mut self.output {
            moving.sole = root::is_sole(self.root.node());
        }
        let mut attached: Vec<_> = self.callbacks.drain(..).map(Attached::new).collect();
        attached.extend(observe::scoped(watch::is_in_body()));
        let (watching, started) = watch::begin(self.root.node(), attached);
        self.watching = watching;
        started?;
        for placement in &self.placements {
            let placed = placement.place(&NodeView::new(self.root.node().clone()));
            self.placed.push(placed);
        }
        Ok(())
    }

    /// Takes the output of the finished root.
    fn take(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        let node = self.root.node_mut();
        match &mut self.output {
            Output::Cloned { owned, clone } => {
                if *owned {
                    if let Some(value) = root::move_output(node) {
                        return Poll::Ready(Ok(value));
                    }
                }
                Poll::Ready(clone(node))
            }
            Output::Moved(moving) => {
                if let Some(value) = root::move_output(node) {
                    return Poll::Ready(Ok(value));
                }
                if moving.keeps_trying() {
                    // Nothing tells us when the other references go: look
                    // again after the other tasks have had their turn.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Err(Error::shared(node.core().key())))
            }
        }
    }

    /// Ends the compute with `result`, as its callbacks hear it.
    fn finish(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        self.stage = Stage::Finished;
        let Some(watching) = self.watching.take() else {
            return result;
        };
        let key = self.root.node().core().key();
        watch::failed_by(watching.finish(&key, result.as_ref().map(|_| ())), result)
    }
}

impl<T: Send + Sync + 'static> Future for Compute<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.stage {
            Stage::New => {
                if let Err(panic) = this.start() {
                    this.root.abandon();
                    return Poll::Ready(this.finish(Err(panic)));
                }
            }
            Stage::Finished => panic!("`Compute` polled after completion"),
            Stage::Computing | Stage::Taking => {}
        }
        if this.stage == Stage::Computing {
            if let Err(err) = ready!(this.root.poll_done(cx)) {
                return Poll::Ready(this.finish(Err(err)));
            }
            this.stage = Stage::Taking;
            // The placement lets go of the root's view before the output
            // is taken.
            // Undone last placed first.
            while let Some(placed) = this.placed.pop() {
                drop(placed);
            }
        }
        let result = ready!(this.take(cx));
        Poll::Ready(this.finish(result))
    }
}

impl<T> Drop for Compute<T> {
    fn drop(&mut self) {
        // Dropped before it resolved: its callbacks hear it was cancelled.
        if let Some(watching) = self.watching.take() {
            let key = self.root.node().core().key();
            // Nobody is left to fail with a panic of this callback.
            let _ = watching.finish(&key, Err(&Error::cancelled(key.clone())));
        }
    }
}

/// `delayed.await` computes the node and moves its output out: `T` need not
/// be `Clone`.
///
/// The output moves out of the last handle: once the node is done, nothing
/// else may hold it, neither another `Delayed` handle nor a dependent that
/// has not run (a dependent that has run has let go of its inputs). The
/// engine lets go of a node it ran before it wakes the computes waiting
/// for it, so the last handle finds itself alone at once. If something
/// else still holds the node, the await gives it up to a second to let go
/// (a handle dropped in another task, a run of `persist` ending), then
/// fails with an error for which [`is_shared`](Error::is_shared) is true.
/// [`compute`](Delayed::compute), and `(&delayed).await`, clone the output
/// instead, and need `T: Clone`.
///
/// A pure node that is awaited leaves the table of pure calls: an equal
/// call made afterwards is a new node.
///
/// # Errors
///
/// As for [`Delayed::compute`], and the shared error above.
///
/// # Cancel safety
///
/// As for [`Delayed::compute`]: dropping the future before it resolves
/// cancels the work only it was waiting for, and drops the node with its
/// output if this was the last handle.
///
/// # Examples
///
/// ```
/// use delayed::delayed;
///
/// struct Body(Vec<u8>); // not `Clone`
///
/// #[delayed]
/// async fn fetch(url: String) -> Body {
///     Body(url.into_bytes())
/// }
///
/// #[delayed]
/// fn size(body: &Body) -> usize {
///     body.0.len()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), delayed::Error> {
/// let body = fetch("http://a".to_string());
/// let n = size(&body);
/// assert_eq!(n.await?, 8); // `size` has run: `body` is the last handle
/// let Body(bytes) = body.await?;
/// assert_eq!(bytes, b"http://a");
/// # Ok(()) }
/// ```
impl<T: Send + Sync + 'static> IntoFuture for Delayed<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Compute<T>;

    fn into_future(self) -> Compute<T> {
        Compute::moving(self)
    }
}

/// `(&delayed).await` is [`delayed.compute().await`](Delayed::compute): a
/// clone of the output.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), delayed::Error> {
/// let x = delayed::Delayed::value(vec![1, 2]);
/// assert_eq!((&x).await?, [1, 2]);
/// assert_eq!(x.await?, [1, 2]);
/// # Ok(()) }
/// ```
impl<T: Clone + Send + Sync + 'static> IntoFuture for &Delayed<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Compute<T>;

    fn into_future(self) -> Compute<T> {
        self.compute()
    }
}

/// Computes several nodes together, like `dask.compute(a, b)`.
///
/// Accepts a [`Delayed`], a reference to one, a tuple of up to 12 of them
/// (nested freely), or a `Vec` of them, and resolves to the matching tuple
/// or `Vec` of values. Intermediates shared between the outputs run once.
///
/// # Errors
///
/// The first failure among the outputs, as for [`Delayed::compute`].
///
/// # Examples
///
/// ```
/// use delayed::delayed;
///
/// #[delayed]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), delayed::Error> {
/// let shared = inc(1);
/// let (a, b) = delayed::compute((inc(&shared), inc(&shared))).await?;
/// assert_eq!((a, b), (3, 3));
///
/// let all = delayed::compute((0..4).map(inc).collect::<Vec<_>>()).await?;
/// assert_eq!(all, vec![1, 2, 3, 4]);
/// # Ok(()) }
/// ```
pub fn compute<J: Join>(outputs: J) -> Compute<J::Output>
where
    J::Output: Clone,
{
    Compute::new(outputs.join(), true, None)
}

/// [`compute`](crate::compute()) with [`Options`], such as callbacks that
/// watch the run.
///
/// # Errors
///
/// As for [`compute`](crate::compute()).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use delayed::{Options, Timeline};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), delayed::Error> {
/// let a = delayed::Delayed::value(1).map(|x: u64| x + 1);
/// let b = a.map(|x| x * 10);
/// let timeline = Arc::new(Timeline::new());
/// let (a, b) = delayed::compute_with((a, b), Options::new().callback(timeline.clone())).await?;
/// assert_eq!((a, b), (2, 20));
/// assert_eq!(timeline.tasks().len(), 2); // the two maps: the pair is not a task
/// # Ok(()) }
/// ```
pub fn compute_with<J: Join>(outputs: J, options: Options) -> Compute<J::Output>
where
    J::Output: Clone,
{
    Compute::new(outputs.join(), true, None).with_options(options)
}

/// Computes every output and returns each one's own result: the
/// keep-going mode, for a batch that would rather report what failed than
/// lose the rest.
///
/// [`compute`](crate::compute()) is fail-fast: on the first error it
/// returns, and the work only it needed stops. Here a failure only fails
/// the outputs that depend on it; every other output runs to the end and
/// keeps its value. Shared inputs still run once.
///
/// # Examples
///
/// ```
/// use delayed::delayed;
///
/// #[delayed]
/// fn parse(s: String) -> Result<u64, std::num::ParseIntError> { s.parse() }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let files = ["1", "x", "3"].map(|s| parse(s.to_string()));
/// let results = delayed::compute_each(files).await;
/// assert_eq!(results[0].as_ref().unwrap(), &1);
/// assert!(results[1].is_err());
/// assert_eq!(results[2].as_ref().unwrap(), &3);
/// # }
/// ```
pub async fn compute_each<T, I>(outputs: I) -> Vec<Result<T, Error>>
where
    T: Clone + Send + Sync + 'static,
    I: IntoIterator<Item = Delayed<T>>,
{
    let computes = outputs
        .into_iter()
        .map(|output| Compute::new(output, true, None));
    futures::future::join_all(computes).await
}
