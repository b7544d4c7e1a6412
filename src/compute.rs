//! Computing nodes: the `Compute` future and the free `compute` function.

use std::any::Any;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::runtime::Handle;

use crate::callback::Callback;
use crate::engine::hooks::Placement;
use crate::engine::root::{self, Root};
use crate::engine::view::NodeView;
use crate::engine::watch::{self, Attached, Watching};
use crate::join::Join;
use crate::{observe, Delayed, Error, Options};

/// The future returned by [`Delayed::compute`] and [`compute`](crate::compute()).
///
/// It registers its node on first poll and resolves when the node finishes.
/// Dropping it before then cancels the work only it was waiting for.
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
    /// Move the output out when this is the last handle (`compute(...)`,
    /// `delayed.await`), instead of cloning it.
    owned: bool,
    started: bool,
    callbacks: Vec<Arc<dyn Callback>>,
    watching: Option<Watching>,
    /// Where the compute's nodes run, and the placement while it runs.
    placement: Option<Arc<dyn Placement>>,
    placed: Option<Box<dyn Any + Send>>,
    _output: PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> Compute<T> {
    pub(crate) fn with_options(mut self, options: Options) -> Self {
        self.callbacks = options.callbacks;
        self.placement = options.placement;
        if options.sequential {
            self.root.run_sequentially();
        }
        self
    }

    pub(crate) fn new(delayed: Delayed<T>, owned: bool, handle: Option<Handle>) -> Self {
        Compute {
            root: Root::new(delayed.node, handle),
            owned,
            started: false,
            callbacks: Vec::new(),
            watching: None,
            placement: None,
            placed: None,
            _output: PhantomData,
        }
    }

    /// Tells the callbacks that the compute starts, and places it.
    fn start(&mut self) -> Result<(), Error> {
        self.started = true;
        let mut attached: Vec<_> = self.callbacks.drain(..).map(Attached::new).collect();
        attached.extend(observe::scoped(watch::is_in_body()));
        let (watching, started) = watch::begin(self.root.node(), attached);
        self.watching = watching;
        started?;
        if let Some(placement) = &self.placement {
            self.placed = Some(placement.place(&NodeView::new(self.root.node().clone())));
        }
        Ok(())
    }

    /// Ends the compute with `result`, as its callbacks hear it.
    fn finish(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        let Some(watching) = self.watching.take() else {
            return result;
        };
        let key = self.root.node().core().key();
        watch::failed_by(watching.finish(&key, result.as_ref().map(|_| ())), result)
    }
}

impl<T: Clone + Send + Sync + 'static> Future for Compute<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.started {
            if let Err(panic) = this.start() {
                this.root.abandon();
                return Poll::Ready(this.finish(Err(panic)));
            }
        }
        let result = ready!(this.root.poll_done(cx))
            .and_then(|()| root::take_output(this.root.node_mut(), this.owned));
        Poll::Ready(this.finish(result))
    }
}

impl<T> Drop for Compute<T> {
    fn drop(&mut self) {
        if !self.root.is_waiting() {
            return;
        }
        if let Some(watching) = self.watching.take() {
            let key = self.root.node().core().key();
            // Nobody is left to fail with a panic of this callback.
            let _ = watching.finish(&key, Err(&Error::cancelled(key.clone())));
        }
    }
}

impl<T: Clone + Send + Sync + 'static> IntoFuture for Delayed<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Compute<T>;

    /// `delayed.await` computes the node, moving the output out instead of
    /// cloning it when this was the last handle.
    fn into_future(self) -> Compute<T> {
        Compute::new(self, true, None)
    }
}

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
    futures::future::join_all(outputs.into_iter().map(IntoFuture::into_future)).await
}
