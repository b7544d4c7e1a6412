//! Argument conversion: what a parameter of a `#[delayed]` function accepts.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use crate::args::{Cx, Leaf, MapOf, OptionOf, Shape};
use crate::builder::Converted;
use crate::join::Join;
use crate::Delayed;

/// What each parameter `p: T` of a `#[delayed]` function accepts.
///
/// At every level of the parameter's type, an argument may be a plain
/// value, a `Delayed` of that level's type or a reference to one, as deep
/// as dask traverses arguments:
///
/// - a plain `T`, taken as a literal value, or a `Delayed<T>` / `&Delayed<T>`;
/// - for `Vec<U>`: a `Vec`, array, `&Vec` or slice whose items fit `U`,
///   such as `vec![a, b]` of nodes, `vec![x, 2, y]` mixing nodes and
///   values, or a `Vec<(Delayed<A>, Delayed<B>)>` for `Vec<(A, B)>`;
/// - for a tuple `(A, B, ..)` of up to 12 fields: a tuple whose fields fit,
///   as `take3((a, b, 3))`;
/// - for `[U; N]`: an array whose items fit;
/// - for `HashMap<K, V>` and `BTreeMap<K, V>`: a map of plain keys to
///   values that fit `V`;
/// - for `HashSet<U>` and `BTreeSet<U>`: a set of items that fit `U`
///   (a `Delayed` is `Hash`, `Eq` and `Ord` by node);
/// - for `Option<U>`: an option whose value fits.
///
/// `#[delayed]` finds the levels from the parameter's type as written (a
/// type alias is one level). The second parameter `S` is that *shape*;
/// write [`IntoDelayed<T>`] in your own functions, which accepts a plain
/// `T`, a `Delayed<T>`, a `&Delayed<T>` and the collections of `Delayed`s
/// that [`Join`] takes.
///
/// A collection that holds nodes becomes one join node, hidden in graphs;
/// one of plain values stays a plain value, moved into the body. An empty
/// `vec![]` or a bare `None` can be read several ways; write
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
/// #[delayed]
/// fn take3(t: (u64, u64, u64)) -> u64 { t.0 * 100 + t.1 * 10 + t.2 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (a, b) = (Delayed::value(1), Delayed::value(2));
/// assert_eq!(total(vec![1, 2]).compute().await.unwrap(), 3);
/// assert_eq!(total(vec![a.clone(), b.clone()]).compute().await.unwrap(), 3);
/// assert_eq!(total([&a, &b]).compute().await.unwrap(), 3);
/// assert_eq!(take3((a, b, 3)).compute().await.unwrap(), 123);
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed where a `{T}` is expected",
    label = "expected a `{T}`, a `Delayed<{T}>`, a `&Delayed<{T}>`, or a collection of those"
)]
pub trait IntoArg<T: Send + Sync + 'static, S: Shape<T> = Leaf<T>> {
    /// Converts the argument with the parameter's shape, feeding the call's
    /// key: a plain value stays one, anything that holds nodes becomes a
    /// node.
    #[doc(hidden)]
    fn convert(self, shape: &S, cx: &mut Cx) -> Converted<T>;
}

/// Conversion into a node producing `T`: a plain `T` (as a literal), a
/// `Delayed<T>`, a `&Delayed<T>`, or a collection of `Delayed`s that
/// [`Join`] takes, such as a `Vec<Delayed<U>>` for a `Vec<U>`.
///
/// It is what your own functions take to accept the same arguments as a
/// `#[delayed]` parameter of a plain type; see [`IntoArg`] for the deeper
/// traversal that `#[delayed]` parameters get.
///
/// # Examples
///
/// ```
/// use delayed::{Delayed, IntoDelayed};
///
/// fn doubled(x: impl IntoDelayed<u64>) -> Delayed<u64> {
///     x.into_delayed().map(|x| x * 2)
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(doubled(2).compute().await.unwrap(), 4);
/// assert_eq!(doubled(Delayed::value(3)).compute().await.unwrap(), 6);
/// let pair: Delayed<(u64, u64)> = (Delayed::value(1), Delayed::value(2)).into_delayed();
/// assert_eq!(pair.compute().await.unwrap(), (1, 2));
/// # }
/// ```
pub trait IntoDelayed<T: Send + Sync + 'static> {
    /// The node for this argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, IntoDelayed};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let node: Delayed<Vec<u64>> = vec![Delayed::value(1), Delayed::value(2)].into_delayed();
    /// assert_eq!(node.compute().await.unwrap(), [1, 2]);
    /// # }
    /// ```
    fn into_delayed(self) -> Delayed<T>;
}

impl<T: Send + Sync + 'static, X: IntoArg<T>> IntoDelayed<T> for X {
    fn into_delayed(self) -> Delayed<T> {
        match self.convert(&Leaf::new(), &mut Cx::new()) {
            Converted::Value(value) => Delayed::value(value),
            Converted::Node(node) => node,
        }
    }
}

/// A join used where a plain parameter type is expected: hashed by the
/// join's key, which its parts make.
fn joined<T: Send + Sync + 'static>(node: Delayed<T>, cx: &mut Cx) -> Converted<T> {
    cx.unlabeled();
    cx.node(&node);
    Converted::Node(node)
}

impl<U: Clone + Send + Sync + 'static> IntoArg<Vec<U>> for Vec<Delayed<U>> {
    fn convert(self, _: &Leaf<Vec<U>>, cx: &mut Cx) -> Converted<Vec<U>> {
        joined(self.join(), cx)
    }
}

impl<U: Clone + Send + Sync + 'static> IntoArg<Vec<U>> for &Vec<Delayed<U>> {
    fn convert(self, _: &Leaf<Vec<U>>, cx: &mut Cx) -> Converted<Vec<U>> {
        joined(self.iter().collect::<Vec<_>>().join(), cx)
    }
}

impl<U: Clone + Send + Sync + 'static> IntoArg<Vec<U>> for &[Delayed<U>] {
    fn convert(self, _: &Leaf<Vec<U>>, cx: &mut Cx) -> Converted<Vec<U>> {
        joined(self.iter().collect::<Vec<_>>().join(), cx)
    }
}

impl<T: Clone + Send + Sync + 'static> IntoArg<Option<T>> for Option<Delayed<T>> {
    fn convert(self, _: &Leaf<Option<T>>, cx: &mut Cx) -> Converted<Option<T>> {
        cx.unlabeled();
        self.convert(&OptionOf(Leaf::new()), cx)
    }
}

impl<K, V, S> IntoArg<HashMap<K, V, S>> for HashMap<K, Delayed<V>, S>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Default + Send + Sync + 'static,
{
    fn convert(self, _: &Leaf<HashMap<K, V, S>>, cx: &mut Cx) -> Converted<HashMap<K, V, S>> {
        cx.unlabeled();
        self.convert(&MapOf::<K, Leaf<V>>::default(), cx)
    }
}

macro_rules! tuple_into_delayed {
    ($($part:ident),+) => {
        impl<$($part: Clone + Send + Sync + 'static),+> IntoArg<($($part,)+)> for ($(Delayed<$part>,)+) {
            fn convert(self, _: &Leaf<($($part,)+)>, cx: &mut Cx) -> Converted<($($part,)+)> {
                joined(self.join(), cx)
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
