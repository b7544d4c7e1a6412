//! Keys: the names of tasks.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The name of one task in a graph, like a key in a dask graph.
///
/// A key starts with the task's function name. Calls of ordinary
/// `#[delayed]` functions get a key that is unique per call (`inc-17`);
/// `#[delayed(pure)]` calls get a key derived from the function and its
/// arguments, so equal calls share a key; [`Delayed::named`] sets any key.
///
/// Keys are cheap to clone and print with `Display`.
///
/// # Examples
///
/// ```
/// use delayed::{delayed, Delayed};
///
/// #[delayed]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// let a = inc(1);
/// let b = inc(1);
/// assert!(a.key().to_string().starts_with("inc-"));
/// assert_ne!(a.key(), b.key());
/// assert_eq!(inc(2).named("load-1").key().to_string(), "load-1");
/// # let _ = Delayed::value(0);
/// ```
///
/// [`Delayed::named`]: crate::Delayed::named
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    name: &'static str,
    id: KeyId,
}

/// What makes a key unique beside its function name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum KeyId {
    /// A fresh number per call.
    Seq(u64),
    /// A hash of the function and its arguments (pure calls, joins),
    /// as two halves to keep the key 8-byte aligned.
    Token([u64; 2]),
    /// Set by the user with `named`.
    Custom(Arc<str>),
}

impl KeyId {
    /// A key id that no other call has.
    pub(crate) fn fresh() -> KeyId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        KeyId::Seq(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Key {
    pub(crate) fn new(name: &'static str, id: KeyId) -> Key {
        Key { name, id }
    }

    /// The name of the function (or combinator) that made the task, such as
    /// `"inc"` or `"map"`.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// assert_eq!(inc(1).key().name(), "inc");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Feeds the key into a hasher; used to derive the keys of pure calls.
    pub(crate) fn hash_into(&self, state: &mut dyn Hasher) {
        let mut hasher = Forward(state);
        self.hash(&mut hasher);
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            KeyId::Seq(n) => write!(f, "{}-{}", self.name, n),
            KeyId::Token([high, low]) => write!(f, "{}-{high:016x}{low:016x}", self.name),
            KeyId::Custom(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

/// A 128-bit hasher built from two differently seeded std hashers, so that
/// pure keys of a million-node graph do not collide in practice.
pub(crate) struct Token {
    low: std::collections::hash_map::DefaultHasher,
    high: std::collections::hash_map::DefaultHasher,
}

impl Token {
    pub(crate) fn new(seed: &str) -> Token {
        let mut token = Token {
            low: Default::default(),
            high: Default::default(),
        };
        0xdec0_u16.hash(&mut token.high);
        seed.hash(&mut token);
        token
    }

    pub(crate) fn finish128(&self) -> [u64; 2] {
        [self.high.finish(), self.low.finish()]
    }
}

impl Hasher for Token {
    fn finish(&self) -> u64 {
        self.low.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.low.write(bytes);
        self.high.write(bytes);
    }
}

/// Lets a `&mut dyn Hasher` be used where `H: Hasher` is expected.
struct Forward<'a>(&'a mut dyn Hasher);

impl Hasher for Forward<'_> {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
}
