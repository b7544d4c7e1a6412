//! Keys: the names of tasks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// The name of one task in a graph, like a key in a dask graph.
///
/// A key starts with the task's function name, followed by what tells the
/// call apart:
///
/// - a call whose arguments are all small printable values reads as the
///   call: `fetch(77)` is `fetch-77`, `load("a.txt", 2)` is `load-a.txt-2`;
///   while two live calls would read the same, the later one gets `#2`
///   (`fetch-77#2`), counted on the thread that built them;
/// - another call of an ordinary `#[delayed]` function gets a short id that
///   no other call has (`clean-3f2a9c01d4e7`);
/// - a `#[delayed(pure)]` call whose arguments are not all printable gets a
///   hash of the function and its arguments (`square-a1b2c3d4e5f60718`),
///   so equal calls share a key and a node;
/// - [`Delayed::named`] sets any key.
///
/// Keys are cheap to clone, compare by identity (two calls `fetch(77)`
/// of an ordinary function are two tasks with two keys) and print with
/// `Display`.
///
/// # Examples
///
/// ```
/// use delayed::{delayed, Delayed};
///
/// #[delayed]
/// fn fetch(id: u64) -> u64 { id }
///
/// let a = fetch(77);
/// let b = fetch(77);
/// assert_eq!(a.key().to_string(), "fetch-77");
/// assert_eq!(b.key().to_string(), "fetch-77#2");
/// assert_ne!(a.key(), b.key());
/// assert_eq!(fetch(2).named("load-1").key().to_string(), "load-1");
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
#[derive(Clone)]
pub(crate) enum KeyId {
    /// A fresh number per call.
    Seq(u64),
    /// A hash of the function and its arguments (pure calls, joins),
    /// as two halves to keep the key 8-byte aligned.
    Token([u64; 2]),
    /// Set by the user with `named`.
    Custom(Arc<str>),
    /// A call that reads as its arguments (`fetch-77`), with the identity
    /// of a `Seq` or `Token` key.
    Label(Arc<Label>),
}

/// The readable part of a key, and the identity it stands for.
pub(crate) struct Label {
    /// The arguments, as `77` or `a.txt-2`.
    text: Box<str>,
    /// 1 for the first live key that reads so on its thread, then 2, 3...
    suffix: u32,
    /// A `Seq` or `Token` key id.
    id: Box<KeyId>,
}

impl KeyId {
    /// A key id that no other call has.
    pub(crate) fn fresh() -> KeyId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        KeyId::Seq(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The key id `id` that reads as `text` after the function `name`.
    pub(crate) fn labeled(name: &'static str, text: Box<str>, id: KeyId) -> KeyId {
        KeyId::Label(labels::register(name, text, id))
    }

    /// The identity behind a label.
    fn identity(&self) -> &KeyId {
        match self {
            KeyId::Label(label) => &label.id,
            other => other,
        }
    }

    /// The hash of a pure key, if this is one.
    pub(crate) fn token(&self) -> Option<&[u64; 2]> {
        match self.identity() {
            KeyId::Token(token) => Some(token),
            _ => None,
        }
    }
}

impl PartialEq for KeyId {
    fn eq(&self, other: &KeyId) -> bool {
        match (self.identity(), other.identity()) {
            (KeyId::Seq(a), KeyId::Seq(b)) => a == b,
            (KeyId::Token(a), KeyId::Token(b)) => a == b,
            (KeyId::Custom(a), KeyId::Custom(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for KeyId {}

impl Hash for KeyId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.identity() {
            KeyId::Seq(n) => (0_u8, n).hash(state),
            KeyId::Token(token) => (1_u8, token).hash(state),
            KeyId::Custom(s) => (2_u8, s).hash(state),
            KeyId::Label(_) => unreachable!("a label's identity is not a label"),
        }
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

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Keys order by how they print, so sorted keys read in order.
impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        if self == other {
            return std::cmp::Ordering::Equal;
        }
        self.to_string()
            .cmp(&other.to_string())
            .then_with(|| identity_order(&self.id).cmp(&identity_order(&other.id)))
    }
}

/// A total order on key identities, for keys that print the same.
fn identity_order(id: &KeyId) -> (u8, u64, u64) {
    match id.identity() {
        KeyId::Seq(n) => (0, *n, 0),
        KeyId::Token([high, low]) => (1, *high, *low),
        _ => (2, 0, 0),
    }
}

/// Scrambles a call number into a short id: a bijection on 48 bits, so
/// that ids are unique and do not read as an argument.
fn scramble(n: u64) -> u64 {
    const MASK: u64 = (1 << 48) - 1;
    let mut x = n & MASK;
    for _ in 0..3 {
        x = (x.wrapping_mul(0x9e37_79b9_7f4b) & MASK) ^ (x >> 21);
    }
    x & MASK
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            KeyId::Seq(n) => write!(f, "{}-{:012x}", self.name, scramble(*n)),
            KeyId::Token([high, _]) => write!(f, "{}-{high:016x}", self.name),
            KeyId::Custom(s) => f.write_str(s),
            KeyId::Label(label) if label.suffix > 1 => {
                write!(f, "{}-{}#{}", self.name, label.text, label.suffix)
            }
            KeyId::Label(label) => write!(f, "{}-{}", self.name, label.text),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
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

/// The labels alive on each thread, so that two live calls that read the
/// same get different suffixes.
///
/// Per thread, not per process: parallel tests build their graphs on
/// their own threads and never see each other's suffixes.
mod labels {
    use super::*;

    type Table = HashMap<(&'static str, Box<str>), Vec<Weak<Label>>>;

    thread_local! {
        static LIVE: RefCell<(Table, usize)> = RefCell::new((HashMap::new(), 0));
    }

    pub(super) fn register(name: &'static str, text: Box<str>, id: KeyId) -> Arc<Label> {
        LIVE.with(|live| {
            let mut live = live.borrow_mut();
            let (table, inserts) = &mut *live;
            // Sweep the dead labels once as many were added as the table
            // holds: amortized constant work per label, where a sweep every
            // few thousand would be quadratic in the live labels.
            *inserts += 1;
            if *inserts > table.len().max(4096) {
                *inserts = 0;
                table.retain(|_, held| {
                    held.retain(|weak| weak.strong_count() > 0);
                    !held.is_empty()
                });
            }
            let held = table.entry((name, text.clone())).or_default();
            held.retain(|weak| weak.strong_count() > 0);
            let suffix = held
                .iter()
                .filter_map(Weak::upgrade)
                .map(|label| label.suffix)
                .max()
                .map_or(1, |max| max + 1);
            let label = Arc::new(Label {
                text,
                suffix,
                id: Box::new(id),
            });
            held.push(Arc::downgrade(&label));
            label
        })
    }
}
