//! Collecting an iterator of nodes into one node: `collect::<Delayed<Vec<_>>>()`.

use crate::join::Join;
use crate::Delayed;

/// Collects nodes into one node of their outputs, in order: the same join
/// as [`join`](crate::join()) of a `Vec`, so graphs show it as a join.
///
/// # Examples
///
/// ```
/// use delayed::{delayed, Delayed};
///
/// #[delayed]
/// fn load(i: u64) -> u64 { i * 10 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let all: Delayed<Vec<u64>> = (0..4).map(load).collect();
/// assert_eq!(all.compute().await.unwrap(), [0, 10, 20, 30]);
/// # }
/// ```
impl<T: Clone + Send + Sync + 'static> FromIterator<Delayed<T>> for Delayed<Vec<T>> {
    fn from_iter<I: IntoIterator<Item = Delayed<T>>>(nodes: I) -> Self {
        nodes.into_iter().collect::<Vec<_>>().join()
    }
}

/// Collects borrowed nodes, which stay usable, into one node of their
/// outputs, in order.
///
/// # Examples
///
/// ```
/// use delayed::Delayed;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let parts = vec![Delayed::value(1), Delayed::value(2)];
/// let both: Delayed<Vec<u64>> = parts.iter().collect();
/// assert_eq!(both.compute().await.unwrap(), [1, 2]);
/// assert_eq!(parts[0].compute().await.unwrap(), 1);
/// # }
/// ```
impl<'a, T: Clone + Send + Sync + 'static> FromIterator<&'a Delayed<T>> for Delayed<Vec<T>> {
    fn from_iter<I: IntoIterator<Item = &'a Delayed<T>>>(nodes: I) -> Self {
        nodes.into_iter().collect::<Vec<_>>().join()
    }
}
