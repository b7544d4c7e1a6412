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

/// The longest label a key reads as; longer calls get an id instead.
pub(crate) const LABEL_MAX: usize = 40;

/// The readable part of a key, and the identity it stands for.
pub(crate) struct Label {
    /// The arguments, as `77` or `a.txt-2`.
    text: labels::Text,
    /// 1 for the first live key that reads so on its thread, then 2, 3...
    suffix: u32,
    /// The labels that read the same, if another lived when it was made.
    group: Option<Arc<labels::Group>>,
    /// A `Seq` or `Token` key id.
    id: KeyId,
}

impl Drop for Label {
    fn drop(&mut self) {
        if let Some(group) = &self.group {
            group.leave();
        }
    }
}

impl KeyId {
    /// A key id that no other call has.
    pub(crate) fn fresh() -> KeyId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        KeyId::Seq(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The key id `id` that reads as `text` after the function `name`.
    pub(crate) fn labeled(name: &'static str, text: String, id: KeyId) -> KeyId {
        KeyId::Label(labels::register(name, &text, id))
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
                write!(f, "{}-{}#{}", self.name, label.text.as_str(), label.suffix)
            }
            KeyId::Label(label) => write!(f, "{}-{}", self.name, label.text.as_str()),
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
/// their own threads and never see each other's suffixes. The table maps
/// a hash of how a key reads to the newest label that reads so, or, once
/// two live labels read the same, to their group; a label may be dropped
/// on any thread, so a group counts its live labels atomically. Most
/// labels are alone, and cost no group. Two texts whose hashes collide
/// share an entry: their suffixes count on from each other's, and keys
/// stay apart by identity.
pub(crate) mod labels {
    use std::hash::BuildHasherDefault;
    use std::mem;
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A label's text, kept inline: labels are short.
    pub(crate) struct Text {
        len: u8,
        bytes: [u8; LABEL_MAX],
    }

    impl Text {
        fn new(text: &str) -> Text {
            let mut len = text.len().min(LABEL_MAX);
            while !text.is_char_boundary(len) {
                len -= 1;
            }
            let mut bytes = [0; LABEL_MAX];
            bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
            Text {
                len: len as u8,
                bytes,
            }
        }

        pub(crate) fn as_str(&self) -> &str {
            std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
        }
    }

    /// The labels of one text, once two lived at once: the first, and
    /// a count of the others alive.
    pub(crate) struct Group {
        first: Weak<Label>,
        others: AtomicU32,
        /// The suffix of the newest, while any lives.
        last: AtomicU32,
    }

    impl Group {
        pub(super) fn leave(&self) {
            self.others.fetch_sub(1, Ordering::Release);
        }

        fn is_held(self: &Arc<Self>) -> bool {
            Arc::strong_count(self) > 1 || self.first.strong_count() > 0
        }

        /// Adds a label made on the group's thread; returns its suffix.
        fn join(&self) -> u32 {
            let others = self.others.fetch_add(1, Ordering::Acquire);
            let suffix = match others > 0 || self.first.strong_count() > 0 {
                true => self.last.load(Ordering::Relaxed) + 1,
                false => 1,
            };
            self.last.store(suffix, Ordering::Relaxed);
            suffix
        }
    }

    enum Entry {
        /// The one label that read so; perhaps dead.
        One(Weak<Label>),
        Many(Arc<Group>),
    }

    impl Entry {
        fn is_held(&self) -> bool {
            match self {
                Entry::One(label) => label.strong_count() > 0,
                Entry::Many(group) => group.is_held(),
            }
        }
    }

    #[derive(Default)]
    struct Table {
        entries: HashMap<u64, Entry, BuildHasherDefault<Identity>>,
        inserts: usize,
    }

    thread_local! {
        static LIVE: RefCell<Table> = RefCell::new(Table::default());
    }

    pub(super) fn register(name: &'static str, text: &str, id: KeyId) -> Arc<Label> {
        let mut label = Arc::new(Label {
            text: Text::new(text),
            suffix: 1,
            group: None,
            id,
        });
        let hash = text_hash(name, text);
        // A thread going away has no table: the label stands alone.
        let _ = LIVE.try_with(|live| {
            let mut live = live.borrow_mut();
            let Table { entries, inserts } = &mut *live;
            // Sweep the entries nobody holds once as many were added as
            // the table holds: amortized constant work per label.
            *inserts += 1;
            if *inserts > entries.len().max(4096) {
                *inserts = 0;
                entries.retain(|_, entry| entry.is_held());
            }
            let entry = entries
                .entry(hash)
                .or_insert_with(|| Entry::One(Weak::new()));
            let group = match entry {
                Entry::Many(group) if group.is_held() => Arc::clone(group),
                Entry::One(first) if first.strong_count() > 0 => {
                    let group = Arc::new(Group {
                        first: mem::take(first),
                        others: AtomicU32::new(0),
                        last: AtomicU32::new(1),
                    });
                    *entry = Entry::Many(Arc::clone(&group));
                    group
                }
                _ => {
                    *entry = Entry::One(Arc::downgrade(&label));
                    return;
                }
            };
            if let Some(label) = Arc::get_mut(&mut label) {
                label.suffix = group.join();
                label.group = Some(group);
            }
        });
        label
    }

    /// A 64-bit hash of how a key reads: FNV-1a over the function name,
    /// a separator and the text (both short).
    fn text_hash(name: &str, text: &str) -> u64 {
        let bytes = name.bytes().chain([0xff]).chain(text.bytes());
        bytes.fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// The table's keys are hashes already.
    #[derive(Default)]
    struct Identity(u64);

    impl Hasher for Identity {
        fn finish(&self) -> u64 {
            self.0
        }

        fn write(&mut self, bytes: &[u8]) {
            for &byte in bytes {
                self.0 = (self.0 << 8) | u64::from(byte);
            }
        }

        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }
}
