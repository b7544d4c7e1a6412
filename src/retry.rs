//! Retry policies: how many attempts, and how long to wait between them.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::{Error, Key};

/// When to run a failed task again, and how long to wait first.
///
/// Give it to a node with [`Delayed::retry`](crate::Delayed::retry) or
/// `#[delayed(retry = ...)]`. A task that returns `Err` or runs past its
/// [timeout](crate::Delayed::timeout) is run again, up to the number of
/// attempts; a panic only with [`panics(true)`](Retry::panics). The error
/// after the last attempt says how many were made
/// ([`Error::attempts`]).
///
/// The wait before attempt `n + 1` is the [backoff](Retry::fixed) for `n`,
/// shrunk by up to the [jitter](Retry::jitter) fraction. Jitter is random,
/// but deterministic for a given [`seed`](Retry::seed), task key and
/// attempt, so tests under a paused clock see exact instants.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use delayed::{delayed, Retry};
///
/// static CALLS: AtomicU32 = AtomicU32::new(0);
///
/// // Fails twice, then succeeds.
/// #[delayed(retry = Retry::attempts(5).exponential(Duration::from_millis(100)))]
/// async fn flaky() -> Result<u32, std::io::Error> {
///     match CALLS.fetch_add(1, Ordering::SeqCst) {
///         0 | 1 => Err(std::io::Error::other("connection reset")),
///         n => Ok(n),
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let start = tokio::time::Instant::now();
/// assert_eq!(flaky().compute().await.unwrap(), 2);
/// // Waited 100 ms, then 200 ms.
/// assert_eq!(start.elapsed(), Duration::from_millis(300));
/// # }
/// ```
#[derive(Clone)]
pub struct Retry {
    attempts: u32,
    backoff: Backoff,
    max_delay: Duration,
    jitter: f64,
    seed: Option<u64>,
    panics: bool,
    when: Option<Filter>,
}

/// Which errors a policy retries.
type Filter = Arc<dyn Fn(&Error) -> bool + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backoff {
    None,
    Fixed(Duration),
    Exponential(Duration),
}

impl Retry {
    /// Up to `attempts` runs in all, the first included, with no wait in
    /// between. Zero counts as one: a task always runs once.
    ///
    /// # Examples
    ///
    /// ```
    /// let retry = delayed::Retry::attempts(3);
    /// assert_eq!(retry.max_attempts(), 3);
    /// assert_eq!(delayed::Retry::attempts(0).max_attempts(), 1);
    /// ```
    pub fn attempts(attempts: u32) -> Retry {
        Retry {
            attempts: attempts.max(1),
            backoff: Backoff::None,
            max_delay: Duration::MAX,
            jitter: 0.0,
            seed: None,
            panics: false,
            when: None,
        }
    }

    /// Waits `delay` before every retry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let retry = delayed::Retry::attempts(3).fixed(Duration::from_secs(1));
    /// let key = delayed::Delayed::value(0).key();
    /// assert_eq!(retry.delay(&key, 1), Duration::from_secs(1));
    /// assert_eq!(retry.delay(&key, 2), Duration::from_secs(1));
    /// ```
    pub fn fixed(mut self, delay: Duration) -> Retry {
        self.backoff = Backoff::Fixed(delay);
        self
    }

    /// Waits `initial` before the first retry and doubles the wait before
    /// each next one, up to [`max_delay`](Retry::max_delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let retry = delayed::Retry::attempts(5).exponential(Duration::from_millis(100));
    /// let key = delayed::Delayed::value(0).key();
    /// assert_eq!(retry.delay(&key, 1), Duration::from_millis(100));
    /// assert_eq!(retry.delay(&key, 3), Duration::from_millis(400));
    /// ```
    pub fn exponential(mut self, initial: Duration) -> Retry {
        self.backoff = Backoff::Exponential(initial);
        self
    }

    /// Caps every wait at `max`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let retry = delayed::Retry::attempts(10)
    ///     .exponential(Duration::from_secs(1))
    ///     .max_delay(Duration::from_secs(5));
    /// let key = delayed::Delayed::value(0).key();
    /// assert_eq!(retry.delay(&key, 8), Duration::from_secs(5));
    /// ```
    pub fn max_delay(mut self, max: Duration) -> Retry {
        self.max_delay = max;
        self
    }

    /// Shrinks each wait by a random part of up to `fraction` of it (0 to
    /// 1), so that many tasks that failed together do not retry together.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let retry = delayed::Retry::attempts(3)
    ///     .fixed(Duration::from_secs(10))
    ///     .jitter(0.5)
    ///     .seed(7);
    /// let key = delayed::Delayed::value(0).key();
    /// let wait = retry.delay(&key, 1);
    /// assert!(wait >= Duration::from_secs(5) && wait <= Duration::from_secs(10));
    /// assert_eq!(wait, retry.delay(&key, 1));
    /// ```
    pub fn jitter(mut self, fraction: f64) -> Retry {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Seeds the jitter, for runs that repeat exactly. Without a seed,
    /// each process draws its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let a = delayed::Retry::attempts(3).fixed(Duration::from_secs(1)).jitter(1.0).seed(1);
    /// let key = delayed::Delayed::value(0).key();
    /// assert_eq!(a.delay(&key, 2), a.clone().delay(&key, 2));
    /// ```
    pub fn seed(mut self, seed: u64) -> Retry {
        self.seed = Some(seed);
        self
    }

    /// Whether a panic is retried too. Off by default: a panic is a bug,
    /// and running it again rarely helps.
    ///
    /// # Examples
    ///
    /// ```
    /// let retry = delayed::Retry::attempts(3).panics(true);
    /// # let _ = retry;
    /// ```
    pub fn panics(mut self, retry: bool) -> Retry {
        self.panics = retry;
        self
    }

    /// Retries only the errors for which `filter` returns true, for
    /// example only some kinds of I/O error. Panics still need
    /// [`panics(true)`](Retry::panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::Retry;
    ///
    /// let transient = Retry::attempts(3).when(|err| {
    ///     std::error::Error::source(err)
    ///         .and_then(|e| e.downcast_ref::<std::io::Error>())
    ///         .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
    /// });
    /// # let _ = transient;
    /// ```
    pub fn when(mut self, filter: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Retry {
        self.when = Some(Arc::new(filter));
        self
    }

    /// The most runs a task gets, the first included.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Retry::attempts(4).max_attempts(), 4);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait after attempt `attempt` (from 1) of the task `key` failed,
    /// jitter included.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let retry = delayed::Retry::attempts(3).fixed(Duration::from_millis(250));
    /// let key = delayed::Delayed::value(0).key();
    /// assert_eq!(retry.delay(&key, 1), Duration::from_millis(250));
    /// ```
    pub fn delay(&self, key: &Key, attempt: u32) -> Duration {
        let base = match self.backoff {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(delay) => delay,
            Backoff::Exponential(initial) => {
                let doublings = attempt.saturating_sub(1).min(63);
                initial
                    .checked_mul(1_u32.checked_shl(doublings).unwrap_or(u32::MAX))
                    .unwrap_or(Duration::MAX)
            }
        }
        .min(self.max_delay);
        if self.jitter == 0.0 || base.is_zero() {
            return base;
        }
        let draw = unit(mix(self.seed.unwrap_or_else(process_seed), key, attempt));
        base.mul_f64(1.0 - self.jitter * draw)
    }

    /// Whether `err`, from attempt `attempt`, earns another attempt.
    pub(crate) fn retries(&self, err: &Error, attempt: u32) -> bool {
        if attempt >= self.attempts {
            return false;
        }
        let kind_ok = if err.is_panic() {
            self.panics
        } else {
            err.is_failed() || err.is_timeout()
        };
        kind_ok && self.when.as_ref().is_none_or(|when| when(err))
    }
}

impl PartialEq for Retry {
    fn eq(&self, other: &Retry) -> bool {
        self.attempts == other.attempts
            && self.backoff == other.backoff
            && self.max_delay == other.max_delay
            && self.jitter == other.jitter
            && self.seed == other.seed
            && self.panics == other.panics
            && match (&self.when, &other.when) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// The settings of a policy, for writing it out.
#[allow(dead_code, reason = "for extensions, which a build may leave out")]
pub(crate) struct Settings {
    pub(crate) attempts: u32,
    pub(crate) fixed: Option<Duration>,
    pub(crate) exponential: Option<Duration>,
    pub(crate) max_delay: Option<Duration>,
    pub(crate) jitter: f64,
    pub(crate) seed: Option<u64>,
    pub(crate) panics: bool,
}

#[allow(dead_code, reason = "for extensions, which a build may leave out")]
impl Retry {
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            attempts: self.attempts,
            fixed: match self.backoff {
                Backoff::Fixed(delay) => Some(delay),
                _ => None,
            },
            exponential: match self.backoff {
                Backoff::Exponential(delay) => Some(delay),
                _ => None,
            },
            max_delay: (self.max_delay != Duration::MAX).then_some(self.max_delay),
            jitter: self.jitter,
            seed: self.seed,
            panics: self.panics,
        }
    }
}

/// A 64-bit draw from the seed, the task and the attempt (SplitMix64's
/// finalizer over an FNV-style fold), the same on every run and platform.
fn mix(seed: u64, key: &Key, attempt: u32) -> u64 {
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325 ^ seed);
    key.to_string().hash(&mut hasher);
    attempt.hash(&mut hasher);
    let mut z = hasher.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A draw in `[0, 1)`.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// This process's jitter seed, for policies without their own.
fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0_u8))
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .field("max_delay", &self.max_delay)
            .field("jitter", &self.jitter)
            .field("seed", &self.seed)
            .field("panics", &self.panics)
            .field("when", &self.when.as_ref().map(|_| "..."))
            .finish()
    }
}
