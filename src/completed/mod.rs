//! Results as they finish: the `AsCompleted` stream over many nodes
//! (dask's `as_completed` and `wait`, Ray's `ray.wait`), and the races
//! built on it (`race.rs`).
//!
//! The stream is one compute of the whole set: each node has a `Root` of
//! its own (its demand, its waker, its output), every root sits in one
//! `FuturesUnordered`, and the set is watched once. The callbacks get one
//! graph, gathered by a join node that is never demanded, and hear one
//! `finish`. Dropping the stream drops the roots that are still waiting,
//! which takes their demand back: the work only they needed stops.

use std::any::Any;
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures::stream::{FusedStream, FuturesUnordered, Stream, StreamExt};

use crate::callback::Callback;
use crate::engine::hooks::Placement;
use crate::engine::loan::Loan;
use crate::engine::node::NodeRef;
use crate::engine::root::{self, Root};
use crate::engine::runner;
use crate::engine::watch::{self, Attached, Watching};
use crate::key::Key;
use crate::{observe, Delayed, Error, Options};

mod race;

pub use self::race::{race, race_ok, Race, RaceOk};

/// One finished node: its index in the input, and its own result.
type Finished<T> = (usize, Result<T, Error>);

/// A stream of the results of many nodes, each with its index in the
/// input, in the order they finish: see [`as_completed`].
///
/// Nothing starts before the first poll. Then every node is demanded at
/// once, as one compute: callbacks attached through [`Options`] or an
/// [`observe`](crate::observe()) scope hear one `start`, with a graph
/// holding every node, and one `finish` when the last node has finished
/// (with the first failure among them, if any). Each node runs at most
/// once, and shared inputs run once for the whole set.
///
/// A node that fails or panics yields its own `Err` (with
/// [`is_panic`](Error::is_panic) for a panic); the others go on.
///
/// # Cancel safety
///
/// Dropping the stream before it is exhausted cancels the work only it
/// was waiting for: queued nodes do not start and async tasks are
/// aborted. Work that something else needs (another compute, a
/// [`persist`](Delayed::persist), a dependent being computed) goes on, and
/// finished results stay. Its callbacks hear a cancelled `finish`.
///
/// `next()` and [`first`](AsCompleted::first) are cancel safe: a result
/// is taken from the stream only when it is returned.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
///
/// #[delayed::delayed]
/// async fn fetch(secs: u64) -> u64 {
///     tokio::time::sleep(Duration::from_secs(secs)).await;
///     secs
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let mut done: delayed::AsCompleted<u64> = delayed::as_completed([3, 1, 2].map(fetch));
/// assert_eq!(done.remaining(), 3);
/// let mut order = Vec::new();
/// while let Some((index, result)) = done.next().await {
///     order.push((index, result.unwrap()));
/// }
/// assert_eq!(order, [(1, 1), (2, 2), (0, 3)]);
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T> {
    running: FuturesUnordered<Member<T>>,
    /// Results taken from the engine and not yet yielded: gathered by a
    /// `first` that was dropped, or waiting for a lent permit to return.
    gathered: VecDeque<Finished<T>>,
    stage: Stage,
    /// The options, until the first poll uses them.
    callbacks: Vec<Arc<dyn Callback>>,
    placements: Vec<Arc<dyn Placement>>,
    /// The watch of the whole set, and the key its hooks' panics are about.
    watching: Option<(Watching, Key)>,
    /// The failure the callbacks hear at the end: the first one, or for
    /// `race_ok` (`reports_last`) the last node's, which is the race's.
    failure: Option<Error>,
    reports_last: bool,
    /// The permit of the body that polls the stream, lent out while it
    /// waits (see `engine/loan.rs`).
    loan: Loan,
    /// What the placements did, undone when the last node has finished.
    placed: Vec<Box<dyn Any + Send>>,
}

/// Where a stream is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    New,
    Running,
    /// It yielded `None`.
    Ended,
}

/// One node of the set: its demand, and where it came in the input.
struct Member<T> {
    index: usize,
    root: Root,
    _type: PhantomData<fn() -> T>,
}

impl<T: Clone + Send + Sync + 'static> Future for Member<T> {
    type Output = Finished<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finished<T>> {
        let this = self.get_mut();
        let result = ready!(this.root.poll_done(cx)).and_then(|()| {
            let node = this.root.node_mut();
            match root::move_output(node) {
                Some(value) => Ok(value),
                None => root::clone_output(node),
            }
        });
        Poll::Ready((this.index, result))
    }
}

/// Streams the results of `nodes` as they finish, each with its index in
/// the input: dask's `as_completed`.
///
/// Takes any iterator of [`Delayed<T>`] or `&Delayed<T>`. Each result is a
/// clone of the node's output, or the output itself when the stream holds
/// the last handle. See [`AsCompleted`] for callbacks, failures and
/// cancellation; [`AsCompleted::first`] waits for the first few, and
/// [`race`] for the first one.
///
/// Scheduling, polling and dropping cost no more per node for a big set:
/// each result is yielded once, without a scan of the others.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
///
/// #[delayed::delayed]
/// fn parse(s: String) -> Result<u64, std::num::ParseIntError> { s.parse() }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let nodes: Vec<_> = ["1", "x", "3"].iter().map(|s| parse(s.to_string())).collect();
/// let mut results: Vec<_> = delayed::as_completed(&nodes).collect().await;
/// results.sort_by_key(|(index, _)| *index);
/// assert_eq!(results[0].1.as_ref().unwrap(), &1);
/// assert!(results[1].1.is_err());
/// assert_eq!(results[2].1.as_ref().unwrap(), &3);
/// # }
/// ```
pub fn as_completed<T, I>(nodes: I) -> AsCompleted<T>
where
    T: Clone + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Borrow<Delayed<T>>,
{
    as_completed_with(nodes, Options::new())
}

/// [`as_completed`] with [`Options`], such as callbacks that watch the
/// whole set as one compute.
///
/// With [`Options::sequential`], each node's graph runs in place, one
/// node at a time, as the stream polls it.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use futures::StreamExt;
/// use delayed::{Delayed, Options, Timeline};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let nodes: Vec<_> = (1..=3_u64).map(|i| Delayed::value(i).map(|x| x * 10)).collect();
/// let timeline = Arc::new(Timeline::new());
/// let stream = delayed::as_completed_with(nodes, Options::new().callback(timeline.clone()));
/// let all: Vec<_> = stream.collect().await;
/// assert_eq!(all.len(), 3);
/// assert_eq!(timeline.tasks().len(), 3);
/// # }
/// ```
pub fn as_completed_with<T, I>(nodes: I, options: Options) -> AsCompleted<T>
where
    T: Clone + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Borrow<Delayed<T>>,
{
    let running = nodes
        .into_iter()
        .enumerate()
        .map(|(index, node)| {
            let mut root = Root::new(NodeRef::clone(&node.borrow().node), None);
            if options.sequential {
                root.run_sequentially();
            }
            Member {
                index,
                root,
                _type: PhantomData,
            }
        })
        .collect();
    AsCompleted {
        running,
        gathered: VecDeque::new(),
        stage: Stage::New,
        callbacks: options.callbacks,
        placements: options.placements,
        watching: None,
        failure: None,
        reports_last: false,
        loan: Loan::default(),
        placed: Vec::new(),
    }
}

impl<T: Clone + Send + Sync + 'static> AsCompleted<T> {
    /// How many results the stream has not yielded yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use delayed::Delayed;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut done = delayed::as_completed(vec![Delayed::value(1), Delayed::value(2)]);
    /// assert_eq!(done.remaining(), 2);
    /// done.next().await;
    /// assert_eq!(done.remaining(), 1);
    /// # }
    /// ```
    pub fn remaining(&self) -> usize {
        self.running.len() + self.gathered.len()
    }

    /// Whether every result has been yielded.
    ///
    /// # Examples
    ///
    /// ```
    /// let none: Vec<delayed::Delayed<u64>> = Vec::new();
    /// assert!(delayed::as_completed(none).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The first `n` results to finish, in the order they finished (fewer
    /// if fewer remain): Ray's `wait(num_returns=n)`.
    ///
    /// The nodes that have not finished keep running: poll the stream on
    /// for them, or drop it to cancel them. `first(0)` resolves at once to
    /// nothing, and starts nothing.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the results gathered by a `first` dropped before it
    /// resolved stay in the stream, which yields them next.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use delayed::Delayed;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let nodes: Vec<_> = [4, 1, 3, 2]
    ///     .map(|secs| Delayed::value(secs).then(|secs| async move {
    ///         tokio::time::sleep(Duration::from_secs(secs)).await;
    ///         secs
    ///     }))
    ///     .into();
    /// let start = tokio::time::Instant::now();
    /// let mut done = delayed::as_completed(&nodes);
    /// let two = done.first(2).await;
    /// assert_eq!(two.iter().map(|(index, _)| *index).collect::<Vec<_>>(), [1, 3]);
    /// assert_eq!(start.elapsed(), Duration::from_secs(2));
    /// assert_eq!(done.remaining(), 2);
    /// drop(done); // the two slower sleeps are aborted
    /// # }
    /// ```
    pub fn first(
        &mut self,
        n: usize,
    ) -> impl Future<Output = Vec<(usize, Result<T, Error>)>> + Send + '_ {
        std::future::poll_fn(move |cx| {
            ready!(self.poll_gather(cx, n));
            let n = n.min(self.gathered.len());
            Poll::Ready(self.gathered.drain(..n).collect())
        })
    }

    /// Polls until `n` results are gathered, or every node has finished.
    fn poll_gather(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<()> {
        while self.gathered.len() < n {
            match self.poll_engine(cx) {
                Poll::Ready(Some(finished)) => self.gathered.push_back(finished),
                Poll::Ready(None) => break,
                Poll::Pending => {
                    self.loan.lend();
                    return Poll::Pending;
                }
            }
        }
        self.loan.poll_return(cx)
    }

    /// The next node to finish; `None` when every node has.
    fn poll_engine(&mut self, cx: &mut Context<'_>) -> Poll<Option<Finished<T>>> {
        if self.stage == Stage::New {
            self.stage = Stage::Running;
            match self.start() {
                Ok(()) => self.demand(),
                Err(panic) => self.fail_all(&panic),
            }
        }
        let Some((index, mut result)) = ready!(self.running.poll_next_unpin(cx)) else {
            // No node at all, or a `start` that panicked failed them all.
            let _ = self.end();
            return Poll::Ready(None);
        };
        if self.reports_last || self.failure.is_none() {
            self.failure = result.as_ref().err().cloned();
        }
        if self.running.is_empty() {
            result = watch::failed_by(self.end(), result);
        }
        Poll::Ready(Some((index, result)))
    }

    /// Tells the callbacks that the compute of the set starts, and places
    /// it.
    ///
    /// # Errors
    ///
    /// A `start` that panicked.
    fn start(&mut self) -> Result<(), Error> {
        let mut attached: Vec<_> = self.callbacks.drain(..).map(Attached::new).collect();
        attached.extend(observe::scoped(watch::is_in_body()));
        if attached.is_empty() && self.placements.is_empty() {
            return Ok(());
        }
        // One node that gathers the set, for the graph and the placements
        // to see: never demanded, and let go of once they have seen it.
        let whole = self.gather();
        let (watching, started) = watch::begin(&whole.node, attached);
        self.watching = watching.map(|watching| (watching, whole.key()));
        started?;
        for placement in &self.placements {
            self.placed.push(placement.place(&whole.view()));
        }
        Ok(())
    }

    /// Demands every node at once, and dispatches what is ready in one go.
    fn demand(&mut self) {
        let mut ready = Vec::new();
        for member in self.running.iter_mut() {
            member.root.start_into(&mut ready);
        }
        runner::dispatch(ready, None);
    }

    /// A join of every node of the set, in input order.
    fn gather(&self) -> Delayed<Vec<T>> {
        let mut nodes: Vec<(usize, &NodeRef)> = self
            .running
            .iter()
            .map(|member| (member.index, member.root.node()))
            .collect();
        nodes.sort_unstable_by_key(|(index, _)| *index);
        nodes
            .into_iter()
            .map(|(_, node)| Delayed::from_task(NodeRef::clone(node)))
            .collect()
    }

    /// A `start` panicked: no node runs, and each fails with the panic.
    fn fail_all(&mut self, panic: &Error) {
        let mut indices: Vec<usize> = std::mem::take(&mut self.running)
            .into_iter()
            .map(|member| member.index)
            .collect();
        indices.sort_unstable();
        let failed = indices.into_iter().map(|index| (index, Err(panic.clone())));
        self.gathered.extend(failed);
        self.failure = Some(panic.clone());
    }

    /// Every node has finished: the placements are undone, and the
    /// callbacks hear `finish` with the failure, if any.
    ///
    /// # Errors
    ///
    /// A `finish` that panicked.
    fn end(&mut self) -> Result<(), Error> {
        while let Some(placed) = self.placed.pop() {
            drop(placed);
        }
        let failure = self.failure.take();
        self.finish(failure.as_ref().map_or(Ok(()), Err))
    }

    /// Tells the callbacks, once, that the compute of the set ended.
    ///
    /// # Errors
    ///
    /// A `finish` that panicked.
    fn finish(&mut self, result: Result<(), &Error>) -> Result<(), Error> {
        match self.watching.take() {
            Some((watching, key)) => watching.finish(&key, result),
            None => Ok(()),
        }
    }

    /// Ends the stream with `result`, which its callbacks hear, and
    /// cancels the nodes still running that nothing else needs.
    fn close<V>(mut self, result: Result<V, Error>) -> Result<V, Error> {
        let hooked = self.finish(result.as_ref().map(|_| ()));
        watch::failed_by(hooked, result)
    }
}

impl<T: Clone + Send + Sync + 'static> Stream for AsCompleted<T> {
    type Item = (usize, Result<T, Error>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        ready!(this.poll_gather(cx, 1));
        let next = this.gathered.pop_front();
        if next.is_none() {
            this.stage = Stage::Ended;
        }
        Poll::Ready(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.remaining();
        (remaining, Some(remaining))
    }
}

impl<T: Clone + Send + Sync + 'static> FusedStream for AsCompleted<T> {
    fn is_terminated(&self) -> bool {
        self.stage == Stage::Ended
    }
}

/// Nothing in the stream is pinned: results wait in a queue, and the
/// nodes' futures in a `FuturesUnordered`, which boxes them.
impl<T> Unpin for AsCompleted<T> {}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("running", &self.running.len())
            .field("gathered", &self.gathered.len())
            .finish_non_exhaustive()
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        // Dropped before every node finished: its callbacks hear it was
        // cancelled. The roots still waiting go after, taking their demand
        // back.
        if let Some((watching, key)) = self.watching.take() {
            // Nobody is left to fail with a panic of this callback.
            let _ = watching.finish(&key, Err(&Error::cancelled(key.clone())));
        }
    }
}
