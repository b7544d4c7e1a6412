//! Execution policies of a node: its limit, retries, timeout and priority.

use std::sync::Arc;
use std::time::Duration;

use crate::limit::Limit;
use crate::retry::Retry;
use crate::task::{State, Task, UNSET};
use crate::Delayed;

/// How a node's body runs, beyond "once, now". Shared by every handle to
/// the node; read when a run starts.
#[derive(Clone, Debug, Default)]
pub(crate) struct Policy {
    pub(crate) limit: Option<&'static Limit>,
    pub(crate) retry: Option<Retry>,
    pub(crate) timeout: Option<Duration>,
    /// Unset: the node has no priority of its own (0, unless it inherits one).
    pub(crate) priority: Option<i32>,
    /// Set while a compute runs the node on a cluster.
    #[cfg(feature = "nats")]
    pub(crate) remote: Option<crate::cluster::Remote>,
    /// Where the output of a hollow node is stored.
    #[cfg(feature = "nats")]
    pub(crate) stored: Option<crate::cluster::Remote>,
}

impl Policy {
    /// Whether a run needs the policy driver: anything but a priority.
    pub(crate) fn drives(&self) -> bool {
        self.limit.is_some() || self.retry.is_some() || self.timeout.is_some() || self.is_remote()
    }

    #[cfg(feature = "nats")]
    fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    #[cfg(not(feature = "nats"))]
    fn is_remote(&self) -> bool {
        false
    }
}

/// Changes the policy of `task`, for its next runs.
pub(crate) fn update(task: &Arc<dyn Task>, change: impl FnOnce(&mut Policy)) {
    update_locked(&mut task.core().lock(), change);
}

/// [`update`], when the caller holds the node's lock.
pub(crate) fn update_locked(st: &mut State, change: impl FnOnce(&mut Policy)) {
    let mut policy = st.policy.as_deref().cloned().unwrap_or_default();
    change(&mut policy);
    st.priority = policy.priority.unwrap_or(UNSET);
    st.policy = Some(Arc::new(policy));
}

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
        update(&self.node, |policy| policy.limit = Some(limit));
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
        update(&self.node, |policy| policy.retry = Some(retry));
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
        update(&self.node, |policy| policy.timeout = Some(timeout));
        self
    }

    /// Sets this node's priority (default 0; higher goes first).
    ///
    /// Priority orders nodes that wait for the same [`Limit`], and
    /// blocking bodies waiting for the blocking pool when all its lanes are
    /// busy. Other ready nodes start at once, so priority does not apply
    /// to them.
    ///
    /// **Inheritance.** A node runs at the highest priority of itself and
    /// of every node that waits for it in a running compute. So the inputs
    /// of an urgent node are urgent too, and a low-priority load that a
    /// high-priority report needs is not starved by medium-priority work.
    /// A node's place in a queue is fixed when it joins the queue.
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
    pub fn priority(self, priority: i32) -> Self {
        update(&self.node, |policy| policy.priority = Some(priority));
        self
    }
}
