//! Maps and sets: `HashMap`, `BTreeMap`, `HashSet` and `BTreeSet` whose
//! values (or items) are plain values, nodes or any mix.
//!
//! Their pure keys do not depend on iteration order: each entry is hashed
//! on its own and the hashes are added up, like dask's `tokenize` of a
//! `dict`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

use super::seq::{gather, whole};
use super::{Cx, Leaf, Shape};
use crate::builder::{Builder, Converted};
use crate::engine::deps::Input;
use crate::{Delayed, IntoArg};

/// The shape of a map parameter: plain keys, values of the shape `S`.
#[doc(hidden)]
#[derive(Debug)]
pub struct MapOf<K, S> {
    pub key: Leaf<K>,
    pub value: S,
}

impl<K, S: Default> Default for MapOf<K, S> {
    fn default() -> Self {
        MapOf {
            key: Leaf::new(),
            value: S::default(),
        }
    }
}

/// The shape of a set parameter whose items have the shape `S`.
#[doc(hidden)]
#[derive(Default, Debug)]
pub struct SetOf<S>(pub S);

const MAP: u8 = 7;
const SET: u8 = 8;

impl<K, S: Default> MapOf<K, S> {
    fn hash_entries<'a, V: 'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a K, &'a V)>,
        cx: &mut Cx,
    ) where
        S: Shape<V>,
        K: 'a,
    {
        cx.tag(MAP);
        cx.unordered(entries, |(key, value), cx| {
            Shape::<K>::hash_plain(&self.key, key, cx);
            self.value.hash_plain(value, cx);
        });
    }

    /// Converts the entries, then gathers them into a map of type `M`.
    fn convert_entries<V, P, M>(
        &self,
        entries: impl IntoIterator<Item = (K, P)>,
        cx: &mut Cx,
    ) -> Converted<M>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        S: Shape<V>,
        P: IntoArg<V, S>,
        M: FromIterator<(K, V)> + Send + Sync + 'static,
    {
        cx.unlabeled();
        cx.tag(MAP);
        let mut parts = Vec::new();
        cx.unordered(entries, |(key, value), cx| {
            Shape::<K>::hash_plain(&self.key, &key, cx);
            parts.push((key, value.convert(&self.value, cx)));
        });
        if parts
            .iter()
            .all(|(_, part)| matches!(part, Converted::Value(_)))
        {
            return Converted::Value(
                parts
                    .into_iter()
                    .map(|(key, part)| match part {
                        Converted::Value(value) => (key, value),
                        Converted::Node(_) => unreachable!("checked above"),
                    })
                    .collect(),
            );
        }
        let mut builder = Builder::new(&"dict").joining();
        let mut inputs: Vec<(Input<K>, Input<V>)> = parts
            .into_iter()
            .map(|(key, part)| {
                let value = match part {
                    Converted::Value(value) => Input::Value(value),
                    Converted::Node(node) => Input::Dep(builder.push(node)),
                };
                (Input::Value(key), value)
            })
            .collect();
        Converted::Node(builder.sync(move |deps| {
            inputs
                .iter_mut()
                .map(|(key, value)| (deps.take(key), deps.take(value)))
                .collect()
        }))
    }
}

impl<K, V, H, S: Shape<V>> Shape<HashMap<K, V, H>> for MapOf<K, S> {
    fn hash_plain(&self, value: &HashMap<K, V, H>, cx: &mut Cx) {
        self.hash_entries(value, cx);
    }
}

impl<K, V, S: Shape<V>> Shape<BTreeMap<K, V>> for MapOf<K, S> {
    fn hash_plain(&self, value: &BTreeMap<K, V>, cx: &mut Cx) {
        self.hash_entries(value, cx);
    }
}

impl<K, V, H, S, P> IntoArg<HashMap<K, V, H>, MapOf<K, S>> for HashMap<K, P, H>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    H: BuildHasher + Default + Send + Sync + 'static,
    S: Shape<V>,
    P: IntoArg<V, S>,
{
    fn convert(self, shape: &MapOf<K, S>, cx: &mut Cx) -> Converted<HashMap<K, V, H>> {
        shape.convert_entries(self, cx)
    }
}

impl<K, V, S, P> IntoArg<BTreeMap<K, V>, MapOf<K, S>> for BTreeMap<K, P>
where
    K: Ord + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: Shape<V>,
    P: IntoArg<V, S>,
{
    fn convert(self, shape: &MapOf<K, S>, cx: &mut Cx) -> Converted<BTreeMap<K, V>> {
        shape.convert_entries(self, cx)
    }
}

impl<U, H, S: Shape<U>> Shape<HashSet<U, H>> for SetOf<S> {
    fn hash_plain(&self, value: &HashSet<U, H>, cx: &mut Cx) {
        cx.tag(SET);
        cx.unordered(value, |item, cx| self.0.hash_plain(item, cx));
    }
}

impl<U, S: Shape<U>> Shape<BTreeSet<U>> for SetOf<S> {
    fn hash_plain(&self, value: &BTreeSet<U>, cx: &mut Cx) {
        cx.tag(SET);
        cx.unordered(value, |item, cx| self.0.hash_plain(item, cx));
    }
}

fn convert_items<U, S, P>(
    items: impl IntoIterator<Item = P>,
    shape: &S,
    cx: &mut Cx,
) -> Vec<Converted<U>>
where
    U: Send + Sync + 'static,
    S: Shape<U>,
    P: IntoArg<U, S>,
{
    cx.unlabeled();
    cx.tag(SET);
    let mut parts = Vec::new();
    cx.unordered(items, |item, cx| parts.push(item.convert(shape, cx)));
    parts
}

impl<U, H, S, P> IntoArg<HashSet<U, H>, SetOf<S>> for HashSet<P, H>
where
    U: Eq + Hash + Clone + Send + Sync + 'static,
    H: BuildHasher + Default + Send + Sync + 'static,
    S: Shape<U>,
    P: IntoArg<U, S>,
{
    fn convert(self, shape: &SetOf<S>, cx: &mut Cx) -> Converted<HashSet<U, H>> {
        gather(&"set", convert_items(self, &shape.0, cx), |values| {
            values.into_iter().collect()
        })
    }
}

impl<U, S, P> IntoArg<BTreeSet<U>, SetOf<S>> for BTreeSet<P>
where
    U: Ord + Clone + Send + Sync + 'static,
    S: Shape<U>,
    P: IntoArg<U, S>,
{
    fn convert(self, shape: &SetOf<S>, cx: &mut Cx) -> Converted<BTreeSet<U>> {
        gather(&"set", convert_items(self, &shape.0, cx), |values| {
            values.into_iter().collect()
        })
    }
}

/// Whole nodes fit a map or set shape.
macro_rules! whole_node {
    ($shape:ty, $ty:ty, [$($generic:ident),*]) => {
        impl<$($generic),*> IntoArg<$ty, $shape> for Delayed<$ty>
        where
            $ty: Send + Sync + 'static,
            $shape: Shape<$ty>,
        {
            fn convert(self, shape: &$shape, cx: &mut Cx) -> Converted<$ty> {
                whole(&self, shape, cx);
                Converted::Node(self)
            }
        }

        impl<$($generic),*> IntoArg<$ty, $shape> for &Delayed<$ty>
        where
            $ty: Send + Sync + 'static,
            $shape: Shape<$ty>,
        {
            fn convert(self, shape: &$shape, cx: &mut Cx) -> Converted<$ty> {
                whole(self, shape, cx);
                Converted::Node(self.clone())
            }
        }
    };
}

whole_node!(MapOf<K, S>, HashMap<K, V, H>, [K, V, H, S]);
whole_node!(MapOf<K, S>, BTreeMap<K, V>, [K, V, S]);
whole_node!(SetOf<S>, HashSet<U, H>, [U, H, S]);
whole_node!(SetOf<S>, BTreeSet<U>, [U, S]);
