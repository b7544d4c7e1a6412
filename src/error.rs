//! The error a compute returns.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::Key;

/// The cause a failing task reported, shared by every waiter.
pub(crate) type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a task, and every task that needed it, did not produce a value.
///
/// One error may reach many waiters, so it is cheap to clone. It names the
/// key of the task that failed first; [`source`](std::error::Error::source)
/// gives the task's own error when it returned `Err`, and
/// [`downcast_ref`](Error::downcast_ref) finds it by type.
///
/// Display says what happened at this level, `task `x` failed`; the
/// alternate form (`{:#}`) and [`report`](Error::report) add every cause
/// on one line, `task `x` failed: connection reset: broken pipe`.
///
/// The policy, like tokio's `JoinError`: a task that returns `Err` fails
/// with that error; a task that panics fails with [`is_panic`](Error::is_panic)
/// and the panic message; a task whose work was stopped before it finished
/// (its runtime shut down) fails with [`is_cancelled`](Error::is_cancelled).
/// Failures are stored: computing the same node again returns the same error.
///
/// # Examples
///
/// ```
/// use delayed::delayed;
///
/// #[delayed]
/// fn parse(s: String) -> Result<u64, std::num::ParseIntError> { s.parse() }
///
/// #[delayed]
/// fn double(x: u64) -> u64 { x * 2 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let bad = parse("x".to_string()).named("parse-x");
/// let err = double(&bad).compute().await.unwrap_err();
/// assert_eq!(err.key().to_string(), "parse-x");
/// assert_eq!(err.to_string(), "task `parse-x` failed");
/// assert_eq!(
///     format!("{err:#}"),
///     "task `parse-x` failed: invalid digit found in string"
/// );
/// assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());
/// # }
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    key: Key,
    kind: Kind,
    /// Attempts made, when a retry policy ran the task more than once.
    attempts: u32,
}

#[derive(Debug, thiserror::Error)]
enum Kind {
    #[error("failed")]
    Failed(Cause),
    #[error("panicked: {0}")]
    Panic(String),
    #[error("was cancelled")]
    Cancelled,
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("failed: the worker running it died on each of its {0} deliveries (KilledWorker)")]
    Killed(u64),
    #[error("could not start: {0}")]
    Runtime(String),
    #[error("could not be drawn: {0}")]
    Draw(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "could not be moved out: another handle or a dependent that has not run \
         still holds it (`.await` moves the output out of the last handle; \
         `compute()` clones it)"
    )]
    Shared,
}

impl Error {
    fn new(key: Key, kind: Kind) -> Error {
        Error {
            inner: Arc::new(Inner {
                key,
                kind,
                attempts: 1,
            }),
        }
    }

    pub(crate) fn failed(key: Key, cause: Cause) -> Error {
        Error::new(key, Kind::Failed(cause))
    }

    pub(crate) fn panic(key: Key, payload: Box<dyn Any + Send>) -> Error {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_string()
        };
        Error::new(key, Kind::Panic(message))
    }

    pub(crate) fn cancelled(key: Key) -> Error {
        Error::new(key, Kind::Cancelled)
    }

    pub(crate) fn timeout(key: Key, after: std::time::Duration) -> Error {
        Error::new(key, Kind::Timeout(after))
    }

    /// The same failure, reported after `attempts` attempts.
    pub(crate) fn after_attempts(self, attempts: u32) -> Error {
        if attempts == self.inner.attempts {
            return self;
        }
        let kind = match &self.inner.kind {
            Kind::Failed(cause) => Kind::Failed(Arc::clone(cause)),
            Kind::Panic(message) => Kind::Panic(message.clone()),
            Kind::Cancelled => Kind::Cancelled,
            Kind::Timeout(after) => Kind::Timeout(*after),
            Kind::Killed(deliveries) => Kind::Killed(*deliveries),
            Kind::Runtime(message) => Kind::Runtime(message.clone()),
            Kind::Draw(message) => Kind::Draw(message.clone()),
            Kind::Invalid(message) => Kind::Invalid(message.clone()),
            Kind::Shared => Kind::Shared,
        };
        Error {
            inner: Arc::new(Inner {
                key: self.inner.key.clone(),
                kind,
                attempts,
            }),
        }
    }

    pub(crate) fn runtime(key: Key, message: impl Into<String>) -> Error {
        Error::new(key, Kind::Runtime(message.into()))
    }

    /// A keyed graph is invalid at `key`; `message` says how, naming keys.
    #[allow(dead_code, reason = "for extensions, which a build may leave out")]
    pub(crate) fn invalid(key: Key, message: impl Into<String>) -> Error {
        Error::new(key, Kind::Invalid(message.into()))
    }

    /// Every worker that `key` was delivered to died before it finished,
    /// `deliveries` times (dask's `KilledWorker`).
    #[allow(dead_code, reason = "for extensions, which a build may leave out")]
    pub(crate) fn killed(key: Key, deliveries: u64) -> Error {
        Error::new(key, Kind::Killed(deliveries))
    }

    /// `.await` could not move the output of `key` out: another handle or
    /// an unfinished dependent holds it.
    pub(crate) fn shared(key: Key) -> Error {
        Error::new(key, Kind::Shared)
    }

    /// `visualize` could not write or render the graph of the task `key`.
    pub(crate) fn draw(key: Key, message: impl Into<String>) -> Error {
        Error::new(key, Kind::Draw(message.into()))
    }

    /// The key of the task that failed first.
    ///
    /// When `store` depends on `analyze`, which depends on a `load` that
    /// failed, computing `store` returns an error whose key is the `load`'s.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use delayed::Delayed;
    ///
    /// let bad = Delayed::value(0_u64)
    ///     .try_map(|_| Err::<u64, _>(std::fmt::Error))
    ///     .named("bad");
    /// let err = bad.map(|x| x + 1).compute().await.unwrap_err();
    /// assert_eq!(err.key().to_string(), "bad");
    /// # }
    /// ```
    pub fn key(&self) -> &Key {
        &self.inner.key
    }

    /// Whether the failing task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use delayed::Delayed;
    ///
    /// let boom = Delayed::value(1_u64).map(|_| -> u64 { panic!("boom") });
    /// let err = boom.compute().await.unwrap_err();
    /// assert!(err.is_panic());
    /// assert!(err.to_string().ends_with("panicked: boom"));
    /// # }
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.inner.kind, Kind::Panic(_))
    }

    /// The panic message, when the failing task panicked with a string.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use delayed::Delayed;
    ///
    /// let boom = Delayed::value(1_u64).map(|_| -> u64 { panic!("boom") });
    /// assert_eq!(boom.compute().await.unwrap_err().panic_message(), Some("boom"));
    /// # }
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match &self.inner.kind {
            Kind::Panic(message) => Some(message),
            _ => None,
        }
    }

    /// Whether the failing task was stopped before it finished, for example
    /// because the runtime it ran on shut down.
    ///
    /// A compute that is dropped does not produce an error at all: it simply
    /// stops, and the work only it needed is aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use delayed::Delayed;
    ///
    /// let ok = Delayed::value(1_u64).map(|x| x + 1);
    /// assert!(ok.compute().await.is_ok());
    /// # }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.inner.kind, Kind::Cancelled)
    }

    /// Whether the failing task returned `Err`; [`source`] gives that error.
    ///
    /// [`source`]: std::error::Error::source
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use delayed::Delayed;
    ///
    /// let bad = Delayed::value("x".to_string()).try_map(|s| s.parse::<u64>());
    /// let err = bad.compute().await.unwrap_err();
    /// assert!(err.is_failed());
    /// assert_eq!(
    ///     std::error::Error::source(&err).unwrap().to_string(),
    ///     "invalid digit found in string"
    /// );
    /// # }
    /// ```
    pub fn is_failed(&self) -> bool {
        matches!(self.inner.kind, Kind::Failed(_))
    }

    /// Whether a keyed graph was rejected before anything ran: malformed
    /// JSON, a cycle, a missing key, an unknown function, a wrong number
    /// of arguments or an argument of the wrong type.
    ///
    /// # Examples
    ///
    /// ```
    /// let ok = delayed::Delayed::value(1_u64);
    /// assert!(!ok.compute_blocking().is_err());
    /// ```
    pub fn is_invalid(&self) -> bool {
        matches!(self.inner.kind, Kind::Invalid(_))
    }

    /// Whether the failing task ran past its [`timeout`] and was stopped.
    ///
    /// [`timeout`]: crate::Delayed::timeout
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[delayed::delayed]
    /// async fn hang() -> u64 {
    ///     tokio::time::sleep(Duration::from_secs(3600)).await;
    ///     1
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let err = hang().timeout(Duration::from_secs(2)).compute().await.unwrap_err();
    /// assert!(err.is_timeout());
    /// assert!(err.to_string().ends_with("timed out after 2s"));
    /// # }
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout(_))
    }

    /// Whether the task ran on workers of a cluster that each died before
    /// it finished, as many times as the cluster delivers a task (dask's
    /// `KilledWorker`): the task itself may be what kills them. The
    /// message names the number of deliveries. A [`Retry`](crate::Retry)
    /// policy does not run it again: the cluster has delivered it as many
    /// times as it allows already.
    ///
    /// # Examples
    ///
    /// ```
    /// let ok = delayed::Delayed::value(1_u64);
    /// assert!(!ok.compute_blocking().is_err());
    /// ```
    pub fn is_killed_worker(&self) -> bool {
        matches!(self.inner.kind, Kind::Killed(_))
    }

    /// How many times the failing task ran before it gave up: 1 unless a
    /// [`Retry`](crate::Retry) policy ran it again.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::Retry;
    ///
    /// #[delayed::delayed]
    /// fn flaky() -> Result<u64, std::io::Error> {
    ///     Err(std::io::Error::other("connection reset"))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let err = flaky().retry(Retry::attempts(3)).compute().await.unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// assert!(err.to_string().ends_with("failed after 3 attempts"));
    /// # }
    /// ```
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Whether `.await` on a [`Delayed`](crate::Delayed) could not move its
    /// output out, because another handle or a dependent that has not run
    /// still held the node once it was done (see `IntoFuture` on
    /// [`Delayed`](crate::Delayed)).
    /// [`compute`](crate::Delayed::compute) clones the output instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// struct Body(Vec<u8>); // not `Clone`
    ///
    /// let body = delayed::Delayed::lazy(|| Body(vec![1, 2, 3]));
    /// let other = body.clone();
    /// let err = body.await.err().unwrap();
    /// assert!(err.is_shared());
    /// drop(other);
    /// # }
    /// ```
    pub fn is_shared(&self) -> bool {
        matches!(self.inner.kind, Kind::Shared)
    }

    /// The whole chain on one line: this error, then each cause in turn
    /// ([`source`](std::error::Error::source), its source, and so on),
    /// joined by `": "`. The same as `format!("{err:#}")`.
    ///
    /// A cause whose message already ends with its own source's message
    /// (as `#[error("reading config: {0}")]` does) is not repeated.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("cannot fetch {url}")]
    /// struct FetchError {
    ///     url: String,
    ///     source: io::Error,
    /// }
    ///
    /// #[delayed::delayed]
    /// fn fetch(url: String) -> Result<Vec<u8>, FetchError> {
    ///     Err(FetchError { url, source: io::Error::other("connection reset") })
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let err = fetch("http://a".to_string()).named("fetch-a").compute().await.unwrap_err();
    /// assert_eq!(err.to_string(), "task `fetch-a` failed");
    /// assert_eq!(
    ///     err.report(),
    ///     "task `fetch-a` failed: cannot fetch http://a: connection reset"
    /// );
    /// assert_eq!(err.report(), format!("{err:#}"));
    /// # }
    /// ```
    pub fn report(&self) -> String {
        format!("{self:#}")
    }

    /// The task's own error, as the type `E`: the first error of type `E`
    /// in the chain of causes, starting with the task's error (this error
    /// itself is not a candidate). `None` when the task did not return
    /// `Err`, or when no cause is an `E`.
    ///
    /// The error names the task that failed first, so a compute of any
    /// node that depended on it finds the same cause. A task that failed
    /// because a nested compute failed has that compute's `Error` as its
    /// cause; the search goes on through it to the innermost task's error.
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("no such item: {0}")]
    /// struct Missing(u64);
    ///
    /// #[delayed::delayed]
    /// fn fetch(id: u64) -> Result<u64, Missing> {
    ///     Err(Missing(id))
    /// }
    ///
    /// #[delayed::delayed]
    /// fn double(x: u64) -> u64 { x * 2 }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let err = double(fetch(7)).compute().await.unwrap_err();
    /// let missing: &Missing = err.downcast_ref().unwrap();
    /// assert_eq!(missing.0, 7);
    /// assert!(err.downcast_ref::<std::io::Error>().is_none());
    /// # }
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            cause = err.source();
        }
        None
    }

    /// The chain as events log it, without allocating: `{:#}`.
    pub(crate) fn chain(&self) -> impl fmt::Display + '_ {
        struct Chain<'a>(&'a Error);
        impl fmt::Display for Chain<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#}", self.0)
            }
        }
        Chain(self)
    }

    /// Writes this level of the error: what happened to which task.
    fn fmt_level(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Kind::Invalid(message) = &self.inner.kind {
            return write!(f, "invalid graph: {message}");
        }
        write!(f, "task `{}` {}", self.inner.key, self.inner.kind)?;
        match (self.inner.attempts, &self.inner.kind) {
            (1, _) => Ok(()),
            (n, Kind::Failed(_)) => write!(f, " after {n} attempts"),
            (n, _) => write!(f, " (after {n} attempts)"),
        }
    }
}

/// One level of an error, without its causes.
struct Level<'a>(&'a Error);

impl fmt::Display for Level<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_level(f)
    }
}

/// `{}` says what happened at this level; `{:#}` adds the causes (see
/// [`Error::report`]).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return self.fmt_level(f);
        }
        // A loop, not recursion: nested computes chain errors in errors.
        let mut last = Level(self).to_string();
        f.write_str(&last)?;
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            // A nested compute's `Error` writes its own level only.
            let text = err.to_string();
            if !last.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            cause = err.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("key", &format_args!("{}", self.inner.key))
            .field("kind", &self.inner.kind)
            .field("attempts", &self.inner.attempts)
            .finish()
    }
}

impl std::error::Error for Error {
    /// The task's own error, for a task that returned `Err`. It is the
    /// value itself, not a wrapper: downcast it to the task's error type,
    /// or let [`Error::downcast_ref`] search the whole chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            Kind::Failed(cause) => Some(&**cause),
            _ => None,
        }
    }
}
