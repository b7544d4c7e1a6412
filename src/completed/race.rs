//! Races: the first of many nodes to finish, or to succeed, with the
//! others cancelled unless something else needs them.

use std::borrow::Borrow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures::stream::StreamExt;

use super::{as_completed, AsCompleted};
use crate::key::{Key, KeyId};
use crate::{Delayed, Error};

/// The first of `nodes` to finish, with its index in the input and its own
/// result (a failure counts): the other nodes are cancelled, unless
/// something else needs them.
///
/// `None` when `nodes` is empty. Callbacks of an
/// [`observe`](crate::observe()) scope see the race as one compute, which
/// finishes with the winner's result.
///
/// # Cancel safety
///
/// Dropping the future cancels every node only it needed. When it
/// resolves, the losers that only it needed are cancelled: queued nodes
/// do not start and async tasks are aborted. A loser that another compute,
/// a [`persist`](Delayed::persist) or a dependent being computed waits for
/// goes on.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// #[delayed::delayed]
/// async fn mirror(secs: u64) -> u64 {
///     tokio::time::sleep(Duration::from_secs(secs)).await;
///     secs
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let mirrors = [5, 2, 9].map(mirror);
/// let (index, result) = delayed::race(&mirrors).await.unwrap();
/// assert_eq!((index, result.unwrap()), (1, 2)); // the others were aborted
/// # }
/// ```
pub fn race<T, I>(nodes: I) -> Race<T>
where
    T: Clone + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Borrow<Delayed<T>>,
{
    Race {
        all: Some(as_completed(nodes)),
    }
}

/// The future of [`race`].
///
/// # Panics
///
/// Polling it again after it resolved panics, as most futures do.
///
/// # Examples
///
/// ```
/// use delayed::{Delayed, Race};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let race: Race<u64> = delayed::race([Delayed::value(7)]);
/// assert_eq!(race.await.map(|(index, result)| (index, result.unwrap())), Some((0, 7)));
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct Race<T> {
    all: Option<AsCompleted<T>>,
}

impl<T: Clone + Send + Sync + 'static> Future for Race<T> {
    type Output = Option<(usize, Result<T, Error>)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let all = self.all.as_mut().expect("`Race` polled after completion");
        let first = ready!(all.poll_next_unpin(cx));
        let all = self.all.take();
        Poll::Ready(match (first, all) {
            (Some((index, result)), Some(all)) => Some((index, all.close(result))),
            (first, _) => first,
        })
    }
}

/// The first of `nodes` to succeed, with its index in the input: the
/// other nodes are cancelled, unless something else needs them. Failures
/// are skipped while any node may still succeed.
///
/// Callbacks of an [`observe`](crate::observe()) scope see the race as one
/// compute, which finishes with the error returned, if any.
///
/// # Errors
///
/// When every node fails, the error of the last one to fail. When `nodes`
/// is empty, an error about a task named `race_ok`, which reads
/// ``task `race_ok` could not start: no nodes to race`` and for which
/// every `is_*` method is false.
///
/// # Cancel safety
///
/// As for [`race`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// #[delayed::delayed]
/// async fn replica(secs: u64, up: bool) -> Result<u64, std::io::Error> {
///     tokio::time::sleep(Duration::from_secs(secs)).await;
///     if up { Ok(secs) } else { Err(std::io::Error::other("down")) }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let replicas = vec![replica(3, true), replica(1, false), replica(2, true)];
/// assert_eq!(delayed::race_ok(&replicas).await.unwrap(), (2, 2));
///
/// let none: Vec<delayed::Delayed<u64>> = Vec::new();
/// let err = delayed::race_ok(none).await.unwrap_err();
/// assert_eq!(err.to_string(), "task `race_ok` could not start: no nodes to race");
/// # }
/// ```
pub fn race_ok<T, I>(nodes: I) -> RaceOk<T>
where
    T: Clone + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Borrow<Delayed<T>>,
{
    let mut all = as_completed(nodes);
    all.reports_last = true;
    RaceOk {
        all: Some(all),
        last: None,
    }
}

/// The future of [`race_ok`].
///
/// # Panics
///
/// Polling it again after it resolved panics, as most futures do.
///
/// # Examples
///
/// ```
/// use delayed::{Delayed, RaceOk};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let race: RaceOk<u64> = delayed::race_ok([Delayed::value(7)]);
/// assert_eq!(race.await.unwrap(), (0, 7));
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct RaceOk<T> {
    all: Option<AsCompleted<T>>,
    /// The last failure so far.
    last: Option<Error>,
}

impl<T: Clone + Send + Sync + 'static> Future for RaceOk<T> {
    type Output = Result<(usize, T), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let all = this.all.as_mut().expect("`RaceOk` polled after completion");
        loop {
            match ready!(all.poll_next_unpin(cx)) {
                Some((_, Err(err))) => this.last = Some(err),
                Some((index, Ok(value))) => {
                    let all = this.all.take().expect("polled while running");
                    return Poll::Ready(all.close(Ok(value)).map(|value| (index, value)));
                }
                None => {
                    this.all = None;
                    return Poll::Ready(Err(this.last.take().unwrap_or_else(no_nodes)));
                }
            }
        }
    }
}

/// The error of a `race_ok` of no nodes.
fn no_nodes() -> Error {
    let key = Key::new("race_ok", KeyId::Custom(Arc::from("race_ok")));
    Error::runtime(key, "no nodes to race")
}
