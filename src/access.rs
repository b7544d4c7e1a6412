//! Pure element and field access: `rows.index(2)`, `config.get("port")`,
//! `user.field(|u| &u.name)`.
//!
//! Each access is a pure node: its key is a hash of the kind of access, the
//! key of the node it reads and the index, map key or projection, so equal
//! accesses alive at the same time are one node (computed once, one key).
//! The node borrows its input and clones the part out.
//!
//! A missing index or key fails the node with an error that names both (a
//! `Display` that says what was asked of which task), never a panic.
//!
//! The node read from is identified by its key, as an input of a
//! `#[delayed(pure)]` call is: two live nodes given the same key with
//! `named` count as one, as the same key does in a dask graph.

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hash};

use crate::builder::Builder;
use crate::engine::deps::Input;
use crate::{Delayed, Key};

/// An index past the end of a list.
#[derive(Debug)]
struct OutOfRange {
    index: usize,
    len: usize,
    of: Key,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (index, len, of) = (self.index, self.len, &self.of);
        let items = if len == 1 { "item" } else { "items" };
        write!(
            f,
            "index {index} is out of range: the output of `{of}` has {len} {items}"
        )
    }
}

impl std::error::Error for OutOfRange {}

/// A key that a map does not hold.
#[derive(Debug)]
struct MissingKey {
    key: String,
    of: Key,
}

impl fmt::Display for MissingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {} is not in the map that `{}` returned",
            self.key, self.of
        )
    }
}

impl std::error::Error for MissingKey {}

/// A builder for a pure access to `whole`: the kind of access and the
/// whole's key go into the key; the caller hashes what it picks.
///
/// The whole is hashed by its key, like any non-literal input of a pure
/// call, so that its output need not be `Hash`.
fn access<C>(name: &'static &'static str, path: &'static str, whole: &Delayed<C>) -> Builder
where
    C: Send + Sync + 'static,
{
    let mut builder = Builder::new(name);
    builder.pure(path);
    builder.hash_input(&Input::Value(whole.key()));
    builder
}

/// The node of one element of a list-like output.
fn element<C, T>(
    whole: &Delayed<C>,
    index: usize,
    get: fn(&C, usize) -> Option<&T>,
    len: fn(&C) -> usize,
) -> Delayed<T>
where
    C: Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    let mut builder = access(&"index", "delayed::index", whole);
    builder.hash_input(&Input::Value(index));
    let of = whole.key();
    let whole = builder.borrow::<C>(whole);
    builder.sync_result(move |deps| {
        let list = deps.get(&whole);
        get(list, index).cloned().ok_or_else(|| OutOfRange {
            index,
            len: len(list),
            of: of.clone(),
        })
    })
}

/// The node of one value of a map-like output.
fn entry<C, Q, V>(
    whole: &Delayed<C>,
    key: &Q,
    get: for<'a> fn(&'a C, &'a Q) -> Option<&'a V>,
) -> Delayed<V>
where
    C: Send + Sync + 'static,
    Q: ToOwned + ?Sized + 'static,
    Q::Owned: Hash + fmt::Debug + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let mut builder = access(&"get", "delayed::get", whole);
    builder.hash_input(&Input::Value(key.to_owned()));
    let key = key.to_owned();
    let of = whole.key();
    let whole = builder.borrow::<C>(whole);
    builder.sync_result(move |deps| {
        get(deps.get(&whole), std::borrow::Borrow::borrow(&key))
            .cloned()
            .ok_or_else(|| MissingKey {
                key: format!("{key:?}"),
                of: of.clone(),
            })
    })
}

impl<T: Clone + Send + Sync + 'static> Delayed<Vec<T>> {
    /// The element at `index`, like `v[index]` or dask's `x[index]`.
    ///
    /// Pure: equal accesses alive at the same time are one node, so
    /// `rows.index(2)` written twice computes once. The list is identified
    /// by its key, like an input of a `#[delayed(pure)]` call. The node
    /// clones the element out of the list, which stays shared.
    ///
    /// # Errors
    ///
    /// Computing the node fails, without panicking, when `index` is out of
    /// range; the error's source names the index and the list's task.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::Delayed;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let rows = Delayed::value(vec!["a", "b", "c"]);
    /// assert_eq!(rows.index(1).compute().await.unwrap(), "b");
    /// assert_eq!(rows.index(1).key(), rows.index(1).key());
    ///
    /// let err = rows.index(5).compute().await.unwrap_err();
    /// let cause = std::error::Error::source(&err).unwrap().to_string();
    /// assert!(cause.starts_with("index 5 is out of range"), "{cause}");
    /// # }
    /// ```
    pub fn index(&self, index: usize) -> Delayed<T> {
        element(self, index, |list: &Vec<T>, i| list.get(i), Vec::len)
    }
}

impl<T: Clone + Send + Sync + 'static> Delayed<VecDeque<T>> {
    /// The element at `index` of a `VecDeque`, as
    /// [`Delayed<Vec<T>>::index`](Delayed::index).
    ///
    /// # Errors
    ///
    /// Computing the node fails when `index` is out of range.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use delayed::Delayed;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let queue = Delayed::value(VecDeque::from([1, 2, 3]));
    /// assert_eq!(queue.index(2).compute().await.unwrap(), 3);
    /// # }
    /// ```
    pub fn index(&self, index: usize) -> Delayed<T> {
        element(
            self,
            index,
            |list: &VecDeque<T>, i| list.get(i),
            VecDeque::len,
        )
    }
}

impl<T: Clone + Send + Sync + 'static, const N: usize> Delayed<[T; N]> {
    /// The element at `index` of an array, as
    /// [`Delayed<Vec<T>>::index`](Delayed::index).
    ///
    /// # Errors
    ///
    /// Computing the node fails when `index` is out of range.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::Delayed;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let rgb = Delayed::value([255_u8, 128, 0]);
    /// assert_eq!(rgb.index(1).compute().await.unwrap(), 128);
    /// # }
    /// ```
    pub fn index(&self, index: usize) -> Delayed<T> {
        element(self, index, |list: &[T; N], i| list.get(i), |_| N)
    }
}

impl<K, V, S> Delayed<HashMap<K, V, S>>
where
    K: Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// The value at `key`, like `map[key]` or dask's `x[key]`. As with
    /// `HashMap::get`, the key may be borrowed: `config.get("port")` for
    /// `String` keys.
    ///
    /// Pure: the key is hashed into the node's key, and equal look-ups
    /// alive at the same time are one node. The node clones the value out
    /// of the map, which stays shared.
    ///
    /// # Errors
    ///
    /// Computing the node fails, without panicking, when the map has no
    /// such key; the error's source names the key (by `Debug`) and the
    /// map's task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use delayed::Delayed;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let config = Delayed::value(HashMap::from([("port".to_string(), 8080_u16)]));
    /// assert_eq!(config.get("port").compute().await.unwrap(), 8080);
    /// assert_eq!(config.get("port").key(), config.get("port").key());
    ///
    /// let err = config.get("host").compute().await.unwrap_err();
    /// let cause = std::error::Error::source(&err).unwrap().to_string();
    /// assert!(cause.starts_with("key \"host\" is not in the map"), "{cause}");
    /// # }
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Delayed<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ToOwned + ?Sized + 'static,
        Q::Owned: Hash + fmt::Debug + Send + Sync + 'static,
    {
        entry(self, key, |map: &HashMap<K, V, S>, key| map.get(key))
    }
}

impl<K, V> Delayed<BTreeMap<K, V>>
where
    K: Ord + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value at `key` of a `BTreeMap`, as
    /// [`Delayed<HashMap<K, V>>::get`](Delayed::get).
    ///
    /// # Errors
    ///
    /// Computing the node fails when the map has no such key.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use delayed::Delayed;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let scores = Delayed::value(BTreeMap::from([(1_u32, 0.5_f64), (2, 0.75)]));
    /// assert_eq!(scores.get(&2).compute().await.unwrap(), 0.75);
    /// # }
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Delayed<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ToOwned + ?Sized + 'static,
        Q::Owned: Hash + fmt::Debug + Send + Sync + 'static,
    {
        entry(self, key, |map: &BTreeMap<K, V>, key| map.get(key))
    }
}

impl<T: Send + Sync + 'static> Delayed<T> {
    /// A part of the output, picked by `project`: `user.field(|u| &u.name)`.
    ///
    /// Pure when `project` captures nothing (a closure without captures,
    /// or a `fn` item): the projection is then identified by its type, so
    /// the same closure applied to the same node is one node, however
    /// often it is written out in a loop. Two closures written apart are
    /// two nodes, even if their code is the same; both give the same
    /// value. A closure that captures values cannot be told apart from
    /// the same closure with other values, so each of its calls is a node
    /// of its own; to pick by a runtime value, [`index`](Delayed::index)
    /// and [`get`](Delayed::get) are pure. A `fn` pointer is a value too:
    /// pass the `fn` item itself.
    ///
    /// The node borrows the whole output and clones the part out of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::Delayed;
    ///
    /// #[derive(Clone)]
    /// struct User { name: String, age: u32 }
    ///
    /// fn age(user: &User) -> &u32 { &user.age }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let user = Delayed::value(User { name: "ada".into(), age: 36 });
    /// let names: Vec<_> = (0..3).map(|_| user.field(|u| &u.name)).collect();
    /// assert!(names.iter().all(|n| n.key() == names[0].key()));
    /// assert_eq!(names[0].compute().await.unwrap(), "ada");
    /// assert_eq!(user.field(age).compute().await.unwrap(), 36);
    /// # }
    /// ```
    pub fn field<U, F>(&self, project: F) -> Delayed<U>
    where
        U: Clone + Send + Sync + 'static,
        F: Fn(&T) -> &U + Send + 'static,
    {
        let mut builder = if std::mem::size_of::<F>() == 0 {
            let mut builder = access(&"field", "delayed::field", self);
            builder.hash_input(&Input::Value(TypeId::of::<F>()));
            builder
        } else {
            Builder::new(&"field")
        };
        let whole = builder.borrow::<T>(self);
        builder.sync(move |deps| project(deps.get(&whole)).clone())
    }
}
