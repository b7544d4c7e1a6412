//! Argument conversion: what a parameter of a `#[delayed]` function accepts.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use crate::builder::{Builder, Converted};
use crate::join::Join;
use crate::Delayed;

/// Conversion into a node producing `T`: what each parameter `p: T` of a
/// `#[delayed]` function accepts.
///
/// Implemented for:
/// - a plain `T`, taken as a literal value;
/// - a `Delayed<T>` or a `&Delayed<T>`;
/// - for `Vec<U>`, a `Vec<Delayed<U>>`, `&Vec<Delayed<U>>` or
///   `&[Delayed<U>]` (dask's list traversal);
/// - for a tuple `(A, B, ..)` of up to 12, a tuple of `Delayed`s;
/// - for `HashMap<K, V>`, a `HashMap<K, Delayed<V>>`;
/// - for `Option<T>`, an `Option<Delayed<T>>`.
///
/// An empty `vec![]` or a bare `None` can be read both ways; write
/// `Vec::<u64>::new()` or `None::<u64>`.
///
/// # Examples
///
/// ```
/// use delayed::{delayed, Delayed};
///
/// #[delayed]
/// fn total(xs: Vec<u64>) -> u64 { xs.iter().sum() }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let parts = vec![Delayed::value(1), Delayed::value(2)];
/// assert_eq!(total(vec![1, 2]).compute().await.unwrap(), 3);
/// assert_eq!(total(&parts).compute().await.unwrap(), 3);
/// assert_eq!(total(parts).compute().await.unwrap(), 3);
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed where a `{T}` is expected",
    label = "expected a `{T}`, a `Delayed<{T}>` or a `&Delayed<{T}>`"
)]
pub trait IntoDelayed<T> {
    /// The node for this argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, IntoDelayed};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pair: Delayed<(u64, u64)> = (Delayed::value(1), Delayed::value(2)).into_delayed();
    /// assert_eq!(pair.compute().await.unwrap(), (1, 2));
    /// # }
    /// ```
    fn into_delayed(self) -> Delayed<T>;

    /// Keeps plain values out of the graph: they move into the body.
    #[doc(hidden)]
    fn into_arg(self) -> Converted<T>
    where
        Self: Sized,
    {
        Converted::Node(self.into_delayed())
    }
}

impl<T: Send + Sync + 'static> IntoDelayed<T> for T {
    fn into_delayed(self) -> Delayed<T> {
        Delayed::value(self)
    }

    fn into_arg(self) -> Converted<T> {
        Converted::Value(self)
    }
}

impl<T: Send + Sync + 'static> IntoDelayed<T> for Delayed<T> {
    fn into_delayed(self) -> Delayed<T> {
        self
    }
}

impl<T: Send + Sync + 'static> IntoDelayed<T> for &Delayed<T> {
    fn into_delayed(self) -> Delayed<T> {
        self.clone()
    }
}

impl<U: Clone + Send + Sync + 'static> IntoDelayed<Vec<U>> for Vec<Delayed<U>> {
    fn into_delayed(self) -> Delayed<Vec<U>> {
        self.join()
    }
}

impl<U: Clone + Send + Sync + 'static> IntoDelayed<Vec<U>> for &Vec<Delayed<U>> {
    fn into_delayed(self) -> Delayed<Vec<U>> {
        self.as_slice().into_delayed()
    }
}

impl<U: Clone + Send + Sync + 'static> IntoDelayed<Vec<U>> for &[Delayed<U>] {
    fn into_delayed(self) -> Delayed<Vec<U>> {
        self.iter().collect::<Vec<_>>().join()
    }
}

impl<T: Clone + Send + Sync + 'static> IntoDelayed<Option<T>> for Option<Delayed<T>> {
    fn into_delayed(self) -> Delayed<Option<T>> {
        match self {
            Some(node) => {
                let mut builder = Builder::new(&"option").joining();
                let mut input = builder.input(node);
                builder.sync(move |deps| Some(deps.take(&mut input)))
            }
            None => Delayed::value(None),
        }
    }
}

impl<K, V, S> IntoDelayed<HashMap<K, V, S>> for HashMap<K, Delayed<V>, S>
where
    K: Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Default + Send + Sync + 'static,
{
    fn into_delayed(self) -> Delayed<HashMap<K, V, S>> {
        let mut builder = Builder::new(&"dict").mapping();
        let entries: Vec<_> = self
            .into_iter()
            .map(|(k, v)| (k, builder.input(v)))
            .collect();
        // The keys move into the map, so the body runs once.
        let mut entries = Some(entries);
        builder.sync(move |deps| {
            entries
                .take()
                .expect("a map argument's node ran already: it cannot be retried")
                .into_iter()
                .map(|(k, mut v)| (k, deps.take(&mut v)))
                .collect()
        })
    }
}

macro_rules! tuple_into_delayed {
    ($($part:ident),+) => {
        impl<$($part: Clone + Send + Sync + 'static),+> IntoDelayed<($($part,)+)> for ($(Delayed<$part>,)+) {
            fn into_delayed(self) -> Delayed<($($part,)+)> {
                self.join()
            }
        }
    };
}

tuple_into_delayed!(A);
tuple_into_delayed!(A, B);
tuple_into_delayed!(A, B, C);
tuple_into_delayed!(A, B, C, D);
tuple_into_delayed!(A, B, C, D, E);
tuple_into_delayed!(A, B, C, D, E, F);
tuple_into_delayed!(A, B, C, D, E, F, G);
tuple_into_delayed!(A, B, C, D, E, F, G, H);
tuple_into_delayed!(A, B, C, D, E, F, G, H, I);
tuple_into_delayed!(A, B, C, D, E, F, G, H, I, J);
tuple_into_delayed!(A, B, C, D, E, F, G, H, I, J, K);
tuple_into_delayed!(A, B, C, D, E, F, G, H, I, J, K, L);
