//! Deferring functions you did not annotate: `map`, `then` and friends.
//!
//! Each makes a new node with `self` as its input, like dask's
//! `delayed(f)(x)`. Gather several inputs first with [`join`](crate::join()).

use std::future::Future;

use std::sync::OnceLock;

use dashmap::DashMap;

use crate::builder::{once, spent, Builder};
use crate::Delayed;

impl<T: Send + Sync + 'static> Delayed<T> {
    /// Defers a sync function of the output; it runs inline, like a plain
    /// `#[delayed]` function.
    ///
    /// The output is moved into `f` when this node holds the last handle to
    /// it, and cloned otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let n = delayed::Delayed::value(20).map(|x: u64| x + 1).map(|x| x * 2);
    /// assert_eq!(n.compute().await.unwrap(), 42);
    /// # }
    /// ```
    pub fn map<U, F>(&self, f: F) -> Delayed<U>
    where
        T: Clone,
        U: Send + Sync + 'static,
        F: FnOnce(T) -> U + Send + 'static,
    {
        let mut builder = Builder::new(&"map");
        let mut input = builder.input(self);
        let mut f = once("map", f);
        builder.sync(move |deps| f(deps.take(&mut input)))
    }

    /// Defers a plain function of the output as a pure call, like dask's
    /// `delayed(f, pure=True)(x)`: the key is a hash of the function and of
    /// this node's key, so equal calls alive at the same time are one node,
    /// and the key is named after the function (`double-…`).
    ///
    /// `f` must be a `fn` item (or a closure that captures nothing), so that
    /// the function alone decides the result: a capturing closure is a
    /// compile error.
    ///
    /// # Examples
    ///
    /// ```
    /// fn double(x: u64) -> u64 { x * 2 }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let x = delayed::Delayed::pure_value(21_u64);
    /// let (a, b) = (x.map_pure(double), x.map_pure(double));
    /// assert_eq!(a.key(), b.key());
    /// assert_eq!(a.key().name(), "double");
    /// assert_eq!(b.compute().await.unwrap(), 42);
    /// # }
    /// ```
    pub fn map_pure<U, F>(&self, f: F) -> Delayed<U>
    where
        T: Clone,
        U: Send + Sync + 'static,
        F: Fn(T) -> U + Send + 'static,
    {
        const {
            assert!(
                std::mem::size_of::<F>() == 0,
                "map_pure takes a `fn` item or a closure that captures nothing"
            )
        };
        let path = std::any::type_name::<F>();
        let mut builder = Builder::new(fn_name(path));
        builder.pure(path);
        let mut input = builder.input(self);
        builder.hash_node(self);
        builder.sync(move |deps| f(deps.take(&mut input)))
    }

    /// Defers a sync function that borrows the output: no clone, and `T`
    /// need not be `Clone`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let text = delayed::Delayed::value("a b c".to_string());
    /// let words = text.map_ref(|s| s.split(' ').count());
    /// assert_eq!(words.compute().await.unwrap(), 3);
    /// # }
    /// ```
    pub fn map_ref<U, F>(&self, f: F) -> Delayed<U>
    where
        U: Send + Sync + 'static,
        F: FnOnce(&T) -> U + Send + 'static,
    {
        let mut builder = Builder::new(&"map");
        let input = builder.borrow(self);
        let mut f = Some(f);
        builder.sync(move |deps| match f.take() {
            Some(f) => f(deps.get(&input)),
            None => spent("map_ref"),
        })
    }

    /// Defers a fallible sync function. An `Err` fails the new node and
    /// every node that depends on it; [`Error::source`] gives it back.
    ///
    /// [`Error::source`]: std::error::Error::source
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let n = delayed::Delayed::value("42".to_string()).try_map(|s| s.parse::<u64>());
    /// assert_eq!(n.compute().await.unwrap(), 42);
    /// # }
    /// ```
    pub fn try_map<U, E, F>(&self, f: F) -> Delayed<U>
    where
        T: Clone,
        U: Send + Sync + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
        F: FnOnce(T) -> Result<U, E> + Send + 'static,
    {
        let mut builder = Builder::new(&"map");
        let mut input = builder.input(self);
        let mut f = once("try_map", f);
        builder.sync_result(move |deps| f(deps.take(&mut input)))
    }

    /// Defers CPU-heavy work: `f` runs under `tokio::task::spawn_blocking`,
    /// so it never stalls a runtime thread.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let data = delayed::Delayed::value(vec![3_u64; 1000]);
    /// let sum = data.map_blocking(|v| v.iter().sum::<u64>());
    /// assert_eq!(sum.compute().await.unwrap(), 3000);
    /// # }
    /// ```
    pub fn map_blocking<U, F>(&self, f: F) -> Delayed<U>
    where
        T: Clone,
        U: Send + Sync + 'static,
        F: FnOnce(T) -> U + Send + 'static,
    {
        let mut builder = Builder::new(&"map_blocking");
        let mut input = builder.input(self);
        let mut f = once("map_blocking", f);
        builder.blocking(move |deps| f(deps.take(&mut input)))
    }

    /// Defers an async function of the output; its future runs as a tokio
    /// task.
    ///
    /// `f` is `Fn` because a run that is cancelled (every compute waiting on
    /// it was dropped) starts afresh on the next compute, with a fresh clone
    /// of the output.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    ///
    /// let n = delayed::Delayed::value(1_u64).then(|x| async move {
    ///     tokio::time::sleep(Duration::from_millis(1)).await;
    ///     x + 1
    /// });
    /// assert_eq!(n.compute().await.unwrap(), 2);
    /// # }
    /// ```
    pub fn then<U, Fut, F>(&self, f: F) -> Delayed<U>
    where
        T: Clone,
        U: Send + Sync + 'static,
        Fut: Future<Output = U> + Send + 'static,
        F: Fn(T) -> Fut + Send + 'static,
    {
        let mut builder = Builder::new(&"then");
        let input = builder.input(self);
        builder.future(move |deps| f(deps.cloned(&input)))
    }

    /// Defers a fallible async function of the output.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let path = delayed::Delayed::value(std::path::PathBuf::from("/no/such/file"));
    /// let text = path.try_then(|p| async move { tokio::fs::read_to_string(p).await });
    /// let err = text.compute().await.unwrap_err();
    /// assert!(err.is_failed());
    /// # }
    /// ```
    pub fn try_then<U, E, Fut, F>(&self, f: F) -> Delayed<U>
    where
        T: Clone,
        U: Send + Sync + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        F: Fn(T) -> Fut + Send + 'static,
    {
        let mut builder = Builder::new(&"then");
        let input = builder.input(self);
        builder.future_result(move |deps| f(deps.cloned(&input)))
    }
}

/// The name of a `fn` item from its type's path (`my_crate::double` is
/// `double`), kept for the process: one small allocation per function.
fn fn_name(path: &'static str) -> &'static &'static str {
    static NAMES: OnceLock<DashMap<&'static str, &'static &'static str>> = OnceLock::new();
    let last = path.rsplit("::").next().unwrap_or(path);
    let name = if last.contains('{') { "map" } else { last };
    *NAMES
        .get_or_init(DashMap::new)
        .entry(name)
        .or_insert_with(|| Box::leak(Box::new(name)))
}
