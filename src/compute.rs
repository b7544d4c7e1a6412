//! Computing nodes: the `Compute` future and the free `compute` function.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll, Waker};

use tokio::runtime::Handle;

use crate::callback::Callback;
use crate::join::Join;
use crate::observe::{self, Watching};
use crate::secede::Loan;
use crate::task::{output_of, Phase};
use crate::{run, schedule, sequential, Delayed, Error, Options};

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
    delayed: Delayed<T>,
    state: State,
    /// Move the output out when this is the last handle (`compute(...)`,
    /// `delayed.await`), instead of cloning it.
    owned: bool,
    handle: Option<Handle>,
    /// The waker registered on the node, to replace or remove it.
    waker: Option<Waker>,
    callbacks: Vec<Arc<dyn Callback>>,
    watching: Option<Watching>,
    sequential: bool,
    /// The sequential scheduler's run, in sequential mode, and its result
    /// once it has one.
    local: Option<sequential::Run>,
    local_result: Option<Result<(), Error>>,
    /// The permit of the body that awaits this compute, lent out while it
    /// waits.
    loan: Loan,
    /// The cluster to run registered nodes on, and the run once started.
    #[cfg(feature = "nats")]
    cluster: Option<crate::cluster::Cluster>,
    #[cfg(feature = "nats")]
    remote: Option<crate::cluster::Run>,
    /// Reading back a hollow root (see `hollow.rs`).
    #[cfg(feature = "nats")]
    filling: Option<crate::hollow::Filling>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Waiting,
    Finished,
}

impl<T: Send + Sync + 'static> Compute<T> {
    pub(crate) fn with_options(mut self, options: Options) -> Self {
        self.callbacks = options.callbacks;
        self.sequential = options.sequential;
        #[cfg(feature = "nats")]
        {
            self.cluster = options.cluster;
        }
        self
    }

    pub(crate) fn new(delayed: Delayed<T>, owned: bool, handle: Option<Handle>) -> Self {
        Compute {
            delayed,
            state: State::New,
            owned,
            handle,
            waker: None,
            callbacks: Vec::new(),
            watching: None,
            sequential: false,
            local: None,
            local_result: None,
            loan: Loan::default(),
            #[cfg(feature = "nats")]
            cluster: None,
            #[cfg(feature = "nats")]
            remote: None,
            #[cfg(feature = "nats")]
            filling: None,
        }
    }

    fn output(&mut self) -> T
    where
        T: Clone,
    {
        if self.owned {
            if let Some(task) = Arc::get_mut(&mut self.delayed.node) {
                if let Some(value) = task
                    .output_any_mut()
                    .downcast_mut::<OnceLock<T>>()
                    .and_then(OnceLock::take)
                {
                    return value;
                }
            }
        }
        output_of::<T>(&*self.delayed.node).clone()
    }
}

impl<T: Clone + Send + Sync + 'static> Future for Compute<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.state {
            State::Finished => panic!("`Compute` polled after completion"),
            State::New => {
                this.watching = observe::begin(&this.delayed.node, &this.callbacks);
                this.state = State::Waiting;
                #[cfg(feature = "nats")]
                if let Some(cluster) = &this.cluster {
                    this.remote = Some(crate::cluster::Run::assign(cluster, &this.delayed.node));
                }
                if this.sequential {
                    let root = Arc::clone(&this.delayed.node);
                    this.local = Some(Box::pin(sequential::run(root)));
                } else {
                    let mut ready = Vec::new();
                    schedule::demand(&this.delayed.node, &mut ready);
                    run::dispatch(ready, this.handle.as_ref());
                }
            }
            State::Waiting => {}
        }
        if let Some(local) = &mut this.local {
            if this.local_result.is_none() {
                match local.as_mut().poll(cx) {
                    Poll::Ready(result) => this.local_result = Some(result),
                    Poll::Pending => {
                        this.loan.lend();
                        return Poll::Pending;
                    }
                }
            }
            ready!(this.loan.poll_return(cx));
            let result = this.local_result.take().unwrap_or(Ok(()));
            this.local = None;
            this.state = State::Finished;
            if let Some(watching) = this.watching.take() {
                watching.finish(result.as_ref().map(|_| ()));
            }
            return Poll::Ready(result.map(|()| this.output()));
        }
        #[cfg(feature = "nats")]
        if let Some(filling) = &mut this.filling {
            let filled = match filling.as_mut().poll(cx) {
                Poll::Ready(filled) => filled,
                Poll::Pending => {
                    this.loan.lend();
                    return Poll::Pending;
                }
            };
            this.filling = None;
            match filled {
                Ok(true) => {}
                // Reverted before it could be read: compute it again.
                Ok(false) => {
                    let mut ready = Vec::new();
                    schedule::demand(&this.delayed.node, &mut ready);
                    run::dispatch(ready, this.handle.as_ref());
                }
                Err(err) => return this.finish_with(cx, Some(Err(err))),
            }
        }
        let node = &this.delayed.node;
        let mut st = node.core().lock();
        let result = match &st.phase {
            #[cfg(feature = "nats")]
            Phase::Done if st.hollow => {
                drop(st);
                let root = vec![Arc::clone(node)];
                this.filling = Some(Box::pin(
                    async move { crate::hollow::materialize(&root).await },
                ));
                return Pin::new(this).poll(cx);
            }
            Phase::Done => None,
            Phase::Failed(err) => Some(Err(err.clone())),
            Phase::Idle => Some(Err(Error::cancelled(node.core().key_locked(&st)))),
            _ => {
                st.listeners.register_waker(&mut this.waker, cx.waker());
                drop(st);
                this.loan.lend();
                return Poll::Pending;
            }
        };
        drop(st);
        this.finish_with(cx, result)
    }
}

impl<T: Clone + Send + Sync + 'static> Compute<T> {
    /// Ends the compute: `None` when the node is done and its output here.
    fn finish_with(
        &mut self,
        cx: &mut Context<'_>,
        result: Option<Result<T, Error>>,
    ) -> Poll<Result<T, Error>> {
        let this = self;
        ready!(this.loan.poll_return(cx));
        let was_waiting = this.state == State::Waiting;
        this.state = State::Finished;
        if let Some(watching) = this.watching.take() {
            watching.finish(match &result {
                Some(Err(err)) => Err(err),
                _ => Ok(()),
            });
        }
        match result {
            None => Poll::Ready(Ok(this.output())),
            Some(err) => {
                if was_waiting {
                    // An interrupted node keeps our demand; give it back.
                    schedule::release_all(vec![Arc::clone(&this.delayed.node)]);
                }
                Poll::Ready(err)
            }
        }
    }
}

impl<T> Drop for Compute<T> {
    fn drop(&mut self) {
        if self.state != State::Waiting {
            return;
        }
        if let Some(local) = self.local.take() {
            // Dropping the run hands back what it had claimed.
            drop(local);
            if let Some(watching) = self.watching.take() {
                watching.finish(Err(&Error::cancelled(self.delayed.node.core().key())));
            }
            return;
        }
        if let Some(watching) = self.watching.take() {
            watching.finish(Err(&Error::cancelled(self.delayed.node.core().key())));
        }
        if let Some(waker) = self.waker.take() {
            // Unregister, so that a long-running node polled by many
            // short-lived computes does not collect their wakers.
            let mut st = self.delayed.node.core().lock();
            if let Some(i) = st.listeners.find_waker(&waker) {
                st.listeners.remove(i);
            }
        }
        schedule::release_all(vec![Arc::clone(&self.delayed.node)]);
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
/// assert_eq!(timeline.tasks().len(), 3); // two maps and the pair
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
