//! Limits: named pools of permits that cap how many task bodies run at once,
//! kept per tokio runtime (or once for the process).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::runtime::{self, Handle};

/// A named resource that at most `permits` task bodies use at once, such
/// as an API that allows 16 concurrent calls.
///
/// Create it once, as a `static`, and give it to nodes with
/// [`Delayed::limit`](crate::Delayed::limit) or `#[delayed(limit = NAME)]`.
/// A node holds one permit only while its own body runs: never while it
/// waits for its inputs, and not between [retries](crate::Retry). Nodes
/// waiting for a permit go in order of [priority](crate::Delayed::priority),
/// then first come, first served. The permit a body gives back when it
/// ends goes to the best of the nodes waiting and of the dependents that
/// its end makes ready, so those compete for it with their priority.
///
/// # Per runtime or per process
///
/// A limit made with [`Limit::new`] keeps its permits **per tokio
/// runtime**: the bodies running on one runtime share `permits` permits,
/// and those of another runtime have `permits` of their own. A node's body
/// takes its permit from the runtime it runs on. This is what tests need:
/// every `#[tokio::test]` has a runtime of its own, so tests that run in
/// parallel under cargo's test runner and use the same `static` limit
/// never take each other's permits, and a paused clock only ever waits for
/// its own test's work. A service usually runs on one runtime, where this
/// is the same as one bound for the process.
///
/// When several runtimes in one process must share one bound (a database
/// that accepts 8 connections from the whole machine, used from a
/// runtime per core), make the limit with [`Limit::process_wide`].
///
/// [`compute_blocking`](crate::Delayed::compute_blocking) runs its nodes
/// on a fallback runtime that the whole process shares, so nodes computed
/// that way share that runtime's permits.
///
/// A runtime's permits are dropped as soon as none is held or waited for,
/// so a process that starts thousands of runtimes (a test binary) keeps
/// nothing of those that have finished.
///
/// The runtime, and not the compute, owns the permits: a node belongs to
/// every compute that needs it, and runs once for all of them, so a bound
/// per compute would depend on which compute reached a shared node first.
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
///
/// Two runtimes, each with permits of its own:
///
/// ```
/// use std::time::Duration;
/// use delayed::{delayed, Limit};
///
/// static API: Limit = Limit::new("api", 1);
///
/// #[delayed(limit = API)]
/// async fn call(id: u64) -> u64 {
///     tokio::time::sleep(Duration::from_millis(100)).await;
///     id
/// }
///
/// // Two threads, each with a paused-clock runtime, at the same time.
/// let threads: Vec<_> = (0..2)
///     .map(|_| {
///         std::thread::spawn(|| {
///             let runtime = tokio::runtime::Builder::new_current_thread()
///                 .enable_time()
///                 .start_paused(true)
///                 .build()
///                 .unwrap();
///             runtime.block_on(async {
///                 let start = tokio::time::Instant::now();
///                 delayed::compute(vec![call(1), call(2)]).await.unwrap();
///                 // One permit of this runtime's own: two rounds.
///                 start.elapsed()
///             })
///         })
///     })
///     .collect();
/// for thread in threads {
///     assert_eq!(thread.join().unwrap(), Duration::from_millis(200));
/// }
/// ```
pub struct Limit {
    name: &'static str,
    permits: usize,
    scope: Scope,
    /// The pools in use, by runtime (one, under `None`, for a process-wide
    /// limit and for work outside any runtime). Made on first use.
    pools: Mutex<Option<HashMap<PoolKey, Pool>>>,
}

/// Whose permits a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    PerRuntime,
    Process,
}

/// The runtime a pool belongs to; `None`: the process (or no runtime).
type PoolKey = Option<runtime::Id>;

/// The permits of one runtime (or of the process).
#[derive(Default)]
struct Pool {
    /// Permits held, including those handed to a ticket not yet collected.
    in_use: usize,
    next_ticket: u64,
    /// Waiting acquirers: highest priority first, then first come. The
    /// waker is unset until the acquirer is first polled.
    queue: BTreeMap<(Reverse<i32>, u64), Option<Waker>>,
    /// Tickets handed a permit that their acquirer has not collected yet.
    granted: BTreeSet<u64>,
}

impl Pool {
    /// Nothing held, nothing waiting: the pool can go.
    fn is_idle(&self) -> bool {
        self.in_use == 0 && self.queue.is_empty()
    }
}

impl Limit {
    /// A limit called `name` with `permits` permits on each runtime.
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
    /// assert!(!DB.is_process_wide());
    /// ```
    ///
    /// ```compile_fail
    /// static NONE: delayed::Limit = delayed::Limit::new("none", 0);
    /// ```
    pub const fn new(name: &'static str, permits: usize) -> Limit {
        Limit::with_scope(name, permits, Scope::PerRuntime)
    }

    /// A limit called `name` with `permits` permits for the whole process:
    /// bodies on every runtime share them.
    ///
    /// Use it for a bound that holds across runtimes, such as a machine's
    /// share of a database's connections. Tests that run in parallel and
    /// use the same process-wide limit do share its permits, so a
    /// paused-clock test may wait for another test's work.
    ///
    /// # Panics
    ///
    /// With zero permits, as [`Limit::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use delayed::{delayed, Limit};
    ///
    /// static DB: Limit = Limit::process_wide("db", 1);
    ///
    /// #[delayed(limit = DB)]
    /// fn query(id: u64) -> u64 {
    ///     // The one permit is out while a body runs, whatever its runtime.
    ///     assert_eq!(DB.in_use(), 1);
    ///     id
    /// }
    ///
    /// let threads: Vec<_> = (0..4)
    ///     .map(|i| {
    ///         std::thread::spawn(move || {
    ///             let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    ///             runtime.block_on(query(i).compute()).unwrap()
    ///         })
    ///     })
    ///     .collect();
    /// let ids: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    /// assert_eq!(ids, [0, 1, 2, 3]);
    /// assert!(DB.is_process_wide());
    /// assert_eq!(DB.in_use(), 0);
    /// ```
    pub const fn process_wide(name: &'static str, permits: usize) -> Limit {
        Limit::with_scope(name, permits, Scope::Process)
    }

    const fn with_scope(name: &'static str, permits: usize, scope: Scope) -> Limit {
        assert!(
            permits > 0,
            "a delayed::Limit needs at least one permit, or its tasks would never run"
        );
        Limit {
            name,
            permits,
            scope,
            pools: Mutex::new(None),
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

    /// How many bodies may run at once under this limit, on each runtime
    /// (or in the process, for a [process-wide](Limit::process_wide) limit).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Limit::new("http", 16).permits(), 16);
    /// ```
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Whether the permits are shared by every runtime of the process
    /// ([`Limit::process_wide`]) rather than kept per runtime
    /// ([`Limit::new`]).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::Limit::process_wide("db", 8).is_process_wide());
    /// assert!(!delayed::Limit::new("api", 8).is_process_wide());
    /// ```
    pub fn is_process_wide(&self) -> bool {
        self.scope == Scope::Process
    }

    /// How many permits are held right now on the current runtime (in the
    /// whole process, for a process-wide limit; outside any runtime, by
    /// work that runs outside any runtime).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Limit::new("http", 16).in_use(), 0);
    /// ```
    pub fn in_use(&self) -> usize {
        self.read(|pool| pool.in_use)
    }

    /// How many nodes wait for a permit right now, on the current runtime
    /// (as for [`in_use`](Limit::in_use)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Limit::new("http", 16).waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.read(|pool| pool.queue.len())
    }

    /// Reads the pool of the current runtime; an unused pool reads as
    /// empty.
    fn read(&self, read: impl FnOnce(&Pool) -> usize) -> usize {
        let key = self.key(Handle::try_current().ok().as_ref());
        let pools = self.pools();
        pools
            .as_ref()
            .and_then(|pools| pools.get(&key))
            .map_or(0, read)
    }

    /// The pool of work running on `handle` (`None`: outside a runtime).
    fn key(&self, handle: Option<&Handle>) -> PoolKey {
        match self.scope {
            Scope::PerRuntime => handle.map(Handle::id),
            Scope::Process => None,
        }
    }

    fn pools(&self) -> MutexGuard<'_, Option<HashMap<PoolKey, Pool>>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many pools exist now: the runtimes that hold or wait for one of
    /// its permits.
    #[cfg(test)]
    pub(crate) fn pools_alive(&self) -> usize {
        self.pools().as_ref().map_or(0, HashMap::len)
    }

    /// Takes a place in line for a permit of work on `handle` (the current
    /// runtime if `None`), now; higher `priority` goes first. The returned
    /// future resolves once the permit is this place's.
    pub(crate) fn acquire(&'static self, handle: Option<&Handle>, priority: i32) -> Acquire {
        let key = match handle {
            Some(handle) => self.key(Some(handle)),
            None => self.key(Handle::try_current().ok().as_ref()),
        };
        self.acquire_in(key, priority)
    }

    /// Takes a place in line in the pool `key`.
    fn acquire_in(&'static self, key: PoolKey, priority: i32) -> Acquire {
        let mut pools = self.pools();
        let pool = pools
            .get_or_insert_with(HashMap::new)
            .entry(key)
            .or_default();
        let state = if pool.in_use < self.permits && pool.queue.is_empty() {
            pool.in_use += 1;
            Place::Granted(Permit { limit: self, key })
        } else {
            let ticket = pool.next_ticket;
            pool.next_ticket += 1;
            pool.queue.insert((Reverse(priority), ticket), None);
            Place::Queued(ticket)
        };
        Acquire {
            limit: self,
            key,
            priority,
            place: state,
        }
    }

    /// Gives a permit of pool `key` back, handing it straight to the next in
    /// line; the last permit back drops an idle pool.
    fn release(&self, key: PoolKey) {
        let mut pools = self.pools();
        let Some(all) = pools.as_mut() else {
            return;
        };
        let Some(pool) = all.get_mut(&key) else {
            return;
        };
        let waker = match pool.queue.pop_first() {
            Some(((_, ticket), waker)) => {
                pool.granted.insert(ticket);
                waker
            }
            None => {
                pool.in_use -= 1;
                if pool.is_idle() {
                    all.remove(&key);
                }
                None
            }
        };
        drop(pools);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limit")
            .field("name", &self.name)
            .field("permits", &self.permits)
            .field("process_wide", &self.is_process_wide())
            .field("in_use", &self.in_use())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// The future of [`Limit::acquire`]. Dropped while it waits, it leaves the
/// queue; dropped after it was handed a permit, it passes the permit on.
pub(crate) struct Acquire {
    limit: &'static Limit,
    key: PoolKey,
    priority: i32,
    place: Place,
}

enum Place {
    /// In line, with this ticket.
    Queued(u64),
    /// Handed a permit, not yet taken.
    Granted(Permit),
    /// The permit was taken.
    Taken,
}

/// One permit of a limit, given back when dropped.
pub(crate) struct Permit {
    limit: &'static Limit,
    key: PoolKey,
}

impl Permit {
    /// Where this permit came from, to take another one there later.
    pub(crate) fn source(&self) -> PermitSource {
        PermitSource {
            limit: self.limit,
            key: self.key,
        }
    }
}

/// One pool of one limit: where a body that lent its permit out takes
/// one back.
#[derive(Clone, Copy)]
pub(crate) struct PermitSource {
    limit: &'static Limit,
    key: PoolKey,
}

impl PermitSource {
    /// A place in line in this pool.
    pub(crate) fn acquire(self, priority: i32) -> Acquire {
        self.limit.acquire_in(self.key, priority)
    }

    /// Whether this is a pool of `limit`.
    pub(crate) fn is_of(self, limit: &Limit) -> bool {
        std::ptr::eq(self.limit, limit)
    }
}

impl Acquire {
    /// Whether this is a place in `limit`'s line for work on `handle`.
    pub(crate) fn is_for(&self, limit: &Limit, handle: &Handle) -> bool {
        std::ptr::eq(self.limit, limit) && self.key == limit.key(Some(handle))
    }
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let this = &mut *self;
        let ticket = match std::mem::replace(&mut this.place, Place::Taken) {
            Place::Granted(permit) => return Poll::Ready(permit),
            Place::Taken => panic!("delayed: a limit's `Acquire` polled after it resolved"),
            Place::Queued(ticket) => ticket,
        };
        let mut pools = this.limit.pools();
        let pool = pools.as_mut().and_then(|pools| pools.get_mut(&this.key));
        let Some(pool) = pool else {
            unreachable!("delayed: a queued acquirer's pool is alive (limit invariant)");
        };
        if pool.granted.remove(&ticket) {
            return Poll::Ready(Permit {
                limit: this.limit,
                key: this.key,
            });
        }
        if let Some(waker) = pool.queue.get_mut(&(Reverse(this.priority), ticket)) {
            match waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        this.place = Place::Queued(ticket);
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Place::Queued(ticket) = self.place else {
            // A permit not taken is dropped with the place, and given back.
            return;
        };
        let mut pools = self.limit.pools();
        let Some(all) = pools.as_mut() else {
            return;
        };
        let Some(pool) = all.get_mut(&self.key) else {
            return;
        };
        if pool
            .queue
            .remove(&(Reverse(self.priority), ticket))
            .is_some()
        {
            if pool.is_idle() {
                all.remove(&self.key);
            }
        } else if pool.granted.remove(&ticket) {
            drop(pools);
            self.limit.release(self.key);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limit.release(self.key);
    }
}

#[cfg(test)]
#[path = "limit_tests.rs"]
mod tests;
