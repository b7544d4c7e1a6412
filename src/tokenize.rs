//! Tokens: the hashes behind pure keys, like dask's `tokenize`.

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// A value that can be hashed into a pure key, like an argument of dask's
/// `tokenize`.
///
/// `#[delayed(pure)]` parameters and [`Delayed::pure_value`] hash their
/// values with it. It is implemented for the standard types, including
/// those that are not `Hash`: `f32` and `f64` hash by their bits, and
/// `HashMap` and `HashSet` hash their entries in an order-independent way,
/// so equal maps give equal keys. A parameter of a type that is `Hash` but
/// not `Tokenize` is hashed with `Hash`; implement `Tokenize` for your own
/// type when it holds floats or hash maps, most simply field by field.
///
/// [`Delayed::pure_value`]: crate::Delayed::pure_value
///
/// # Examples
///
/// ```
/// use delayed::{Tokenize, Tokenizer};
///
/// #[derive(Clone)]
/// struct Point { x: f64, y: f64 }
///
/// impl Tokenize for Point {
///     fn tokenize(&self, tokens: &mut Tokenizer) {
///         self.x.tokenize(tokens);
///         self.y.tokenize(tokens);
///     }
/// }
///
/// #[delayed::delayed(pure)]
/// fn norm(p: Point) -> f64 { (p.x * p.x + p.y * p.y).sqrt() }
///
/// assert_eq!(norm(Point { x: 3.0, y: 4.0 }).key(), norm(Point { x: 3.0, y: 4.0 }).key());
/// assert_ne!(norm(Point { x: 3.0, y: 4.0 }).key(), norm(Point { x: 4.0, y: 3.0 }).key());
/// ```
pub trait Tokenize {
    /// Feeds this value into `tokens`.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Tokenize, Tokenizer};
    ///
    /// let mut a = Tokenizer::new();
    /// 0.5_f64.tokenize(&mut a);
    /// let mut b = Tokenizer::new();
    /// 0.5_f64.tokenize(&mut b);
    /// assert_eq!(a.finish128(), b.finish128());
    /// ```
    fn tokenize(&self, tokens: &mut Tokenizer);
}

/// The 128-bit hasher that [`Tokenize`] feeds: two differently seeded
/// std hashers, so that the pure keys of a million-node graph do not
/// collide in practice.
///
/// It is a [`Hasher`], so a `Hash` value can be fed with
/// [`hash`](Tokenizer::hash).
///
/// # Examples
///
/// ```
/// use delayed::Tokenizer;
///
/// let mut tokens = Tokenizer::new();
/// tokens.hash(&("load", 7_u64));
/// let [high, low] = tokens.finish128();
/// assert_ne!(high, low);
/// ```
#[derive(Clone, Debug)]
pub struct Tokenizer {
    low: DefaultHasher,
    high: DefaultHasher,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Tokenizer::new()
    }
}

impl Tokenizer {
    /// An empty tokenizer.
    ///
    /// # Examples
    ///
    /// ```
    /// let tokens = delayed::Tokenizer::new();
    /// assert_eq!(tokens.finish128(), delayed::Tokenizer::new().finish128());
    /// ```
    pub fn new() -> Tokenizer {
        let mut tokens = Tokenizer {
            low: DefaultHasher::new(),
            high: DefaultHasher::new(),
        };
        0xdec0_u16.hash(&mut tokens.high);
        tokens
    }

    /// A tokenizer started with `seed`, such as a function's path.
    pub(crate) fn seeded(seed: &str) -> Tokenizer {
        let mut tokens = Tokenizer::new();
        seed.hash(&mut tokens);
        tokens
    }

    /// Feeds a `Hash` value.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Tokenize, Tokenizer};
    ///
    /// #[derive(Hash)]
    /// struct Query { table: String, limit: u32 }
    ///
    /// impl Tokenize for Query {
    ///     fn tokenize(&self, tokens: &mut Tokenizer) { tokens.hash(self) }
    /// }
    /// ```
    pub fn hash<T: Hash + ?Sized>(&mut self, value: &T) {
        value.hash(self);
    }

    /// The 128-bit token of everything fed so far.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut tokens = delayed::Tokenizer::new();
    /// tokens.hash("a");
    /// assert_ne!(tokens.finish128(), delayed::Tokenizer::new().finish128());
    /// ```
    pub fn finish128(&self) -> [u64; 2] {
        [self.high.finish(), self.low.finish()]
    }

    /// Feeds a collection whose order does not matter: each item is hashed
    /// on its own and the results are added up.
    pub(crate) fn unordered<I: IntoIterator>(
        &mut self,
        items: I,
        mut each: impl FnMut(I::Item, &mut Tokenizer),
    ) {
        let (mut high, mut low, mut count) = (0_u64, 0_u64, 0_u64);
        for item in items {
            let mut one = Tokenizer::new();
            each(item, &mut one);
            let [h, l] = one.finish128();
            high = high.wrapping_add(h);
            low = low.wrapping_add(l);
            count += 1;
        }
        self.hash(&(count, high, low));
    }
}

impl Hasher for Tokenizer {
    fn finish(&self) -> u64 {
        self.low.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.low.write(bytes);
        self.high.write(bytes);
    }
}

macro_rules! by_hash {
    ($($ty:ty),*) => {
        $(impl Tokenize for $ty {
            fn tokenize(&self, tokens: &mut Tokenizer) {
                self.hash(tokens);
            }
        })*
    };
}

by_hash!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    bool,
    char,
    str,
    String,
    (),
    Path,
    PathBuf,
    OsStr,
    OsString,
    Duration,
    crate::Key
);

impl Tokenize for f32 {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        self.to_bits().hash(tokens);
    }
}

impl Tokenize for f64 {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        self.to_bits().hash(tokens);
    }
}

macro_rules! by_deref {
    ($($ty:ty),*) => {
        $(impl<T: Tokenize + ?Sized> Tokenize for $ty {
            fn tokenize(&self, tokens: &mut Tokenizer) {
                (**self).tokenize(tokens);
            }
        })*
    };
}

by_deref!(&T, Box<T>, Arc<T>, Rc<T>);

impl<T: Tokenize + ToOwned + ?Sized> Tokenize for Cow<'_, T> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        (**self).tokenize(tokens);
    }
}

impl<T: Tokenize> Tokenize for Option<T> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        match self {
            None => tokens.hash(&0_u8),
            Some(value) => {
                tokens.hash(&1_u8);
                value.tokenize(tokens);
            }
        }
    }
}

impl<T: Tokenize, E: Tokenize> Tokenize for Result<T, E> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        match self {
            Ok(value) => {
                tokens.hash(&0_u8);
                value.tokenize(tokens);
            }
            Err(err) => {
                tokens.hash(&1_u8);
                err.tokenize(tokens);
            }
        }
    }
}

fn sequence<'a, T: Tokenize + 'a>(
    items: impl ExactSizeIterator<Item = &'a T>,
    tokens: &mut Tokenizer,
) {
    tokens.hash(&items.len());
    items.for_each(|item| item.tokenize(tokens));
}

impl<T: Tokenize> Tokenize for [T] {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        sequence(self.iter(), tokens);
    }
}

impl<T: Tokenize, const N: usize> Tokenize for [T; N] {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        sequence(self.iter(), tokens);
    }
}

impl<T: Tokenize> Tokenize for Vec<T> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        sequence(self.iter(), tokens);
    }
}

impl<T: Tokenize> Tokenize for VecDeque<T> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        sequence(self.iter(), tokens);
    }
}

impl<T: Tokenize> Tokenize for BTreeSet<T> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        sequence(self.iter(), tokens);
    }
}

impl<K: Tokenize, V: Tokenize> Tokenize for BTreeMap<K, V> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        tokens.hash(&self.len());
        for (key, value) in self {
            key.tokenize(tokens);
            value.tokenize(tokens);
        }
    }
}

impl<T: Tokenize, S> Tokenize for HashSet<T, S> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        tokens.unordered(self, |item, one| item.tokenize(one));
    }
}

impl<K: Tokenize, V: Tokenize, S> Tokenize for HashMap<K, V, S> {
    fn tokenize(&self, tokens: &mut Tokenizer) {
        tokens.unordered(self, |(key, value), one| {
            key.tokenize(one);
            value.tokenize(one);
        });
    }
}

macro_rules! tuple {
    ($($part:ident $index:tt),+) => {
        impl<$($part: Tokenize),+> Tokenize for ($($part,)+) {
            fn tokenize(&self, tokens: &mut Tokenizer) {
                $(self.$index.tokenize(tokens);)+
            }
        }
    };
}

tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);
tuple!(A 0, B 1, C 2, D 3, E 4);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
