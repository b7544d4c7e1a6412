//! Joining many nodes into one: tuples and vectors of `Delayed`.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

use crate::args::{Leaf, MapOf};
use crate::builder::{Builder, Converted};
use crate::engine::deps::Input;
use crate::{Delayed, IntoArg};

/// Things that [`join`] and [`compute`](crate::compute()) accept: a
/// [`Delayed`], a reference to one, a tuple of up to 12 joinable things,
/// a `Vec` or array of them, or a `HashMap` or `BTreeMap` whose values are
/// joinable (dask's `compute` of a `dict`).
///
/// A join's key is made of its parts' keys, so equal joins of the same
/// nodes have one key; joins are hidden in graphs.
///
/// # Examples
///
/// ```
/// use delayed::{Delayed, Join};
///
/// fn count<J: Join>(outputs: J) -> Delayed<J::Output> {
///     outputs.join()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pair = count((Delayed::value(1), Delayed::value("a")));
/// assert_eq!(pair.compute().await.unwrap(), (1, "a"));
/// # }
/// ```
pub trait Join {
    /// The value the joined node produces.
    type Output: Send + Sync + 'static;

    /// One node whose output gathers the outputs of all the parts.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, Join};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let all = vec![Delayed::value(1), Delayed::value(2)].join();
    /// assert_eq!(all.compute().await.unwrap(), vec![1, 2]);
    /// # }
    /// ```
    fn join(self) -> Delayed<Self::Output>;
}

/// Gathers several nodes into one, so that any function or closure can take
/// them together: `join((a, b)).map(|(a, b)| a + b)` is dask's
/// `delayed(f)(a, b)` for an `f` you did not annotate.
///
/// The parts are awaited concurrently. Their outputs are moved into the
/// joined value where the joined node holds the last handle, and cloned
/// otherwise.
///
/// # Examples
///
/// ```
/// use delayed::Delayed;
///
/// fn area(w: u64, h: u64) -> u64 { w * h }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let w = Delayed::value(3);
/// let h = Delayed::value(4);
/// let a = delayed::join((w, h)).map(|(w, h)| area(w, h));
/// assert_eq!(a.compute().await.unwrap(), 12);
///
/// let sum = delayed::join(vec![Delayed::value(1), Delayed::value(2)]).map(|v| v.iter().sum::<u64>());
/// assert_eq!(sum.compute().await.unwrap(), 3);
/// # }
/// ```
pub fn join<J: Join>(parts: J) -> Delayed<J::Output> {
    parts.join()
}

impl<T: Send + Sync + 'static> Join for Delayed<T> {
    type Output = T;

    fn join(self) -> Delayed<T> {
        self
    }
}

impl<T: Send + Sync + 'static> Join for &Delayed<T> {
    type Output = T;

    fn join(self) -> Delayed<T> {
        self.clone()
    }
}

impl<J: Join> Join for Vec<J>
where
    J::Output: Clone,
{
    type Output = Vec<J::Output>;

    fn join(self) -> Delayed<Self::Output> {
        let mut builder = Builder::new(&"list").joining_parts("delayed::list");
        let count = self.len();
        for part in self {
            builder.part(part.join());
        }
        builder.sync(move |deps| {
            debug_assert_eq!(deps.len(), count);
            (0..count).map(|i| deps.take_at::<J::Output>(i)).collect()
        })
    }
}

impl<J: Join, const N: usize> Join for [J; N]
where
    J::Output: Clone,
{
    type Output = [J::Output; N];

    fn join(self) -> Delayed<Self::Output> {
        Vec::from(self).join().map(|parts| match parts.try_into() {
            Ok(array) => array,
            Err(_) => unreachable!("an array's parts are as many as its length"),
        })
    }
}

/// A map of joined values, as a node: the keys move into the output.
fn join_map<K, V, M>(
    entries: impl IntoIterator<Item = (K, Delayed<V>)>,
    convert: impl FnOnce(Vec<(K, Delayed<V>)>) -> Converted<M>,
) -> Delayed<M>
where
    V: Send + Sync + 'static,
    M: Send + Sync + 'static,
{
    match convert(entries.into_iter().collect()) {
        Converted::Value(map) => Delayed::value(map),
        Converted::Node(node) => node,
    }
}

impl<K, J, S> Join for HashMap<K, J, S>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    J: Join,
    J::Output: Clone,
    S: BuildHasher + Default + Send + Sync + 'static,
{
    type Output = HashMap<K, J::Output, S>;

    fn join(self) -> Delayed<Self::Output> {
        join_map(self.into_iter().map(|(k, v)| (k, v.join())), |entries| {
            let map: HashMap<K, Delayed<J::Output>, S> = entries.into_iter().collect();
            map.convert(
                &MapOf::<K, Leaf<J::Output>>::default(),
                &mut crate::args::Cx::new(),
            )
        })
    }
}

impl<K, J> Join for BTreeMap<K, J>
where
    K: Ord + Clone + Send + Sync + 'static,
    J: Join,
    J::Output: Clone,
{
    type Output = BTreeMap<K, J::Output>;

    fn join(self) -> Delayed<Self::Output> {
        join_map(self.into_iter().map(|(k, v)| (k, v.join())), |entries| {
            let map: BTreeMap<K, Delayed<J::Output>> = entries.into_iter().collect();
            map.convert(
                &MapOf::<K, Leaf<J::Output>>::default(),
                &mut crate::args::Cx::new(),
            )
        })
    }
}

macro_rules! join_tuple {
    ($($part:ident $input:ident),+) => {
        impl<$($part: Join),+> Join for ($($part,)+)
        where
            $($part::Output: Clone,)+
        {
            type Output = ($($part::Output,)+);

            #[allow(non_snake_case)]
            fn join(self) -> Delayed<Self::Output> {
                let ($($part,)+) = self;
                let mut builder = Builder::new(&"tuple").joining_parts("delayed::tuple");
                $(let mut $input = Input::Dep(builder.part($part.join()));)+
                builder.sync(move |deps| ($(deps.take(&mut $input),)+))
            }
        }
    };
}

join_tuple!(A a);
join_tuple!(A a, B b);
join_tuple!(A a, B b, C c);
join_tuple!(A a, B b, C c, D d);
join_tuple!(A a, B b, C c, D d, E e);
join_tuple!(A a, B b, C c, D d, E e, F f);
join_tuple!(A a, B b, C c, D d, E e, F f, G g);
join_tuple!(A a, B b, C c, D d, E e, F f, G g, H h);
join_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i);
join_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j);
join_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k);
join_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l);
