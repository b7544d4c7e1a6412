//! Limits: named pools of permits that cap how many task bodies run at once.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A named resource that at most `permits` task bodies use at once, such
/// as an API that allows 16 concurrent calls.
///
/// Create it once, as a `static`, and give it to nodes with
/// [`Delayed::limit`](crate::Delayed::limit) or `#[delayed(limit = NAME)]`.
/// A node holds one permit only while its own body runs: never while it
/// waits for its inputs, and not between [retries](crate::Retry). Nodes
/// waiting for a permit go in order of [priority](crate::Delayed::priority),
/// then first come, first served.
///
/// A limit sized at run time (from a config file, say) can be made
/// `'static` with `Box::leak`, once at startup.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use delayed::{delayed, Limit};
///
/// static API: Limit = Limit::new("api", 2);
///
/// #[delayed(limit = API)]
/// async fn fetch(id: u64) -> u64 {
///     tokio::time::sleep(Duration::from_millis(100)).await;
///     id
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let start = tokio::time::Instant::now();
/// let all = delayed::compute((0..6).map(fetch).collect::<Vec<_>>()).await.unwrap();
/// assert_eq!(all, [0, 1, 2, 3, 4, 5]);
/// // Six calls, two at a time: three rounds of 100 ms.
/// assert_eq!(start.elapsed(), Duration::from_millis(300));
///
/// // Sized at run time:
/// let per_host: &'static Limit = Box::leak(Box::new(Limit::new("host", 4)));
/// assert_eq!(per_host.permits(), 4);
/// # }
/// ```
pub struct Limit {
    name: &'static str,
    permits: usize,
    pool: Mutex<Pool>,
}

struct Pool {
    in_use: usize,
    next_ticket: u64,
    /// Waiting acquirers: highest priority first, then first come.
    queue: BTreeMap<(Reverse<i32>, u64), Waker>,
    /// Tickets handed a permit that their acquirer has not collected yet.
    granted: BTreeSet<u64>,
}

impl Limit {
    /// A limit called `name` with `permits` permits.
    ///
    /// # Panics
    ///
    /// With zero permits, which would make every node under it wait
    /// forever. In a `static` this is a compile error.
    ///
    /// # Examples
    ///
    /// ```
    /// static DB: delayed::Limit = delayed::Limit::new("db", 8);
    /// assert_eq!(DB.name(), "db");
    /// ```
    ///
    /// ```compile_fail
    /// static NONE: delayed::Limit = delayed::Limit::new("none", 0);
    /// ```
    pub const fn new(name: &'static str, permits: usize) -> Limit {
        assert!(
            permits > 0,
            "a delayed::Limit needs at least one permit, or its tasks would never run"
        );
        Limit {
            name,
            permits,
            pool: Mutex::new(Pool {
                in_use: 0,
                next_ticket: 0,
                queue: BTreeMap::new(),
                granted: BTreeSet::new(),
            }),
        }
    }

    /// The limit's name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Limit::new("http", 16).name(), "http");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How many bodies may run at once under this limit.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Limit::new("http", 16).permits(), 16);
    /// ```
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// How many permits are held right now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Limit::new("http", 16).in_use(), 0);
    /// ```
    pub fn in_use(&self) -> usize {
        self.pool().in_use
    }

    /// How many nodes wait for a permit right now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Limit::new("http", 16).waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.pool().queue.len()
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a permit; higher `priority` goes first.
    pub(crate) fn acquire(&'static self, priority: i32) -> Acquire {
        Acquire {
            limit: self,
            priority,
            ticket: None,
        }
    }

    /// Gives a permit back, handing it straight to the next in line.
    fn release(&self) {
        let mut pool = self.pool();
        let next = pool.queue.pop_first();
        let waker = match next {
            Some(((_, ticket), waker)) => {
                pool.granted.insert(ticket);
                Some(waker)
            }
            None => {
                pool.in_use -= 1;
                None
            }
        };
        drop(pool);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pool = self.pool();
        f.debug_struct("Limit")
            .field("name", &self.name)
            .field("permits", &self.permits)
            .field("in_use", &pool.in_use)
            .field("waiting", &pool.queue.len())
            .finish()
    }
}

/// The future of [`Limit::acquire`]. Dropped while it waits, it leaves the
/// queue; dropped after it was handed a permit, it passes the permit on.
pub(crate) struct Acquire {
    limit: &'static Limit,
    priority: i32,
    ticket: Option<u64>,
}

/// One permit of a limit, given back when dropped.
pub(crate) struct Permit {
    limit: &'static Limit,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let limit = self.limit;
        let mut pool = limit.pool();
        match self.ticket {
            None if pool.in_use < limit.permits && pool.queue.is_empty() => {
                pool.in_use += 1;
                Poll::Ready(Permit { limit })
            }
            None => {
                let ticket = pool.next_ticket;
                pool.next_ticket += 1;
                pool.queue
                    .insert((Reverse(self.priority), ticket), cx.waker().clone());
                self.ticket = Some(ticket);
                Poll::Pending
            }
            Some(ticket) => {
                if pool.granted.remove(&ticket) {
                    drop(pool);
                    self.ticket = None;
                    return Poll::Ready(Permit { limit });
                }
                if let Some(waker) = pool.queue.get_mut(&(Reverse(self.priority), ticket)) {
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else {
            return;
        };
        let mut pool = self.limit.pool();
        if pool
            .queue
            .remove(&(Reverse(self.priority), ticket))
            .is_none()
            && pool.granted.remove(&ticket)
        {
            drop(pool);
            self.limit.release();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limit.release();
    }
}
