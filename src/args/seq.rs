//! Sequences: `Vec`, slices, arrays and `Option`, of plain values, nodes
//! or any mix.

use super::{Cx, Shape};
use crate::builder::{Builder, Converted};
use crate::engine::deps::Input;
use crate::engine::make;
use crate::{Delayed, IntoArg};

/// The shape of a `Vec<T>` parameter whose items have the shape `S`.
#[doc(hidden)]
#[derive(Default, Debug)]
pub struct VecOf<S>(pub S);

/// The shape of a `[T; N]` parameter whose items have the shape `S`.
#[doc(hidden)]
#[derive(Default, Debug)]
pub struct ArrayOf<S>(pub S);

/// The shape of an `Option<T>` parameter whose value has the shape `S`.
#[doc(hidden)]
#[derive(Default, Debug)]
pub struct OptionOf<S>(pub S);

/// Tags that keep the kinds of collections apart in a pure key.
pub(super) const SEQUENCE: u8 = 3;
pub(super) const OPTION: u8 = 6;

/// Gathers converted parts: a plain value when every part is one, else a
/// hidden join node that waits for the node parts.
pub(super) fn gather<U, C>(
    name: &'static &'static str,
    parts: Vec<Converted<U>>,
    build: fn(Vec<U>) -> C,
) -> Converted<C>
where
    U: Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    if parts.iter().all(|part| matches!(part, Converted::Value(_))) {
        let values = parts.into_iter().map(|part| match part {
            Converted::Value(value) => value,
            Converted::Node(_) => unreachable!("checked above"),
        });
        return Converted::Value(build(values.collect()));
    }
    let mut builder = Builder::new(name).joining();
    let mut inputs: Vec<Input<U>> = parts
        .into_iter()
        .map(|part| match part {
            Converted::Value(value) => Input::Value(value),
            Converted::Node(node) => Input::Dep(builder.push(node)),
        })
        .collect();
    Converted::Node(
        builder.sync(move |deps| build(inputs.iter_mut().map(|input| deps.take(input)).collect())),
    )
}

/// Converts each item with the item shape.
fn convert_all<U, S, P>(
    items: impl ExactSizeIterator<Item = P>,
    shape: &S,
    cx: &mut Cx,
) -> Vec<Converted<U>>
where
    U: Send + Sync + 'static,
    S: Shape<U>,
    P: IntoArg<U, S>,
{
    cx.unlabeled();
    cx.tag(SEQUENCE);
    cx.len(items.len());
    items.map(|item| item.convert(shape, cx)).collect()
}

/// A whole node given where a collection is expected: a literal by its
/// value, as the collection it holds would be, anything else by its key.
pub(super) fn whole<T: Send + Sync + 'static, S: Shape<T>>(
    node: &Delayed<T>,
    shape: &S,
    cx: &mut Cx,
) {
    cx.unlabeled();
    match make::literal_value::<T>(&node.node) {
        Some(value) => shape.hash_plain(value, cx),
        None => cx.node(node),
    }
}

impl<U, S: Shape<U>> Shape<Vec<U>> for VecOf<S> {
    fn hash_plain(&self, value: &Vec<U>, cx: &mut Cx) {
        cx.tag(SEQUENCE);
        cx.len(value.len());
        value.iter().for_each(|item| self.0.hash_plain(item, cx));
    }
}

impl<U, S: Shape<U>, const N: usize> Shape<[U; N]> for ArrayOf<S> {
    fn hash_plain(&self, value: &[U; N], cx: &mut Cx) {
        cx.tag(SEQUENCE);
        cx.len(N);
        value.iter().for_each(|item| self.0.hash_plain(item, cx));
    }
}

impl<U, S: Shape<U>> Shape<Option<U>> for OptionOf<S> {
    fn hash_plain(&self, value: &Option<U>, cx: &mut Cx) {
        cx.tag(OPTION);
        cx.len(usize::from(value.is_some()));
        if let Some(value) = value {
            self.0.hash_plain(value, cx);
        }
    }
}

/// Whole nodes fit any collection shape.
macro_rules! whole_node {
    ($shape:ident, $ty:ty $(, $generic:ident)*) => {
        impl<U, S, $(const $generic: usize)*> IntoArg<$ty, $shape<S>> for Delayed<$ty>
        where
            U: Send + Sync + 'static,
            S: Shape<U>,
            $shape<S>: Shape<$ty>,
        {
            fn convert(self, shape: &$shape<S>, cx: &mut Cx) -> Converted<$ty> {
                whole(&self, shape, cx);
                Converted::Node(self)
            }
        }

        impl<U, S, $(const $generic: usize)*> IntoArg<$ty, $shape<S>> for &Delayed<$ty>
        where
            U: Send + Sync + 'static,
            S: Shape<U>,
            $shape<S>: Shape<$ty>,
        {
            fn convert(self, shape: &$shape<S>, cx: &mut Cx) -> Converted<$ty> {
                whole(self, shape, cx);
                Converted::Node(self.clone())
            }
        }
    };
}

whole_node!(VecOf, Vec<U>);
whole_node!(ArrayOf, [U; N], N);
whole_node!(OptionOf, Option<U>);

fn list<U: Clone + Send + Sync + 'static>(parts: Vec<Converted<U>>) -> Converted<Vec<U>> {
    gather(&"list", parts, |values| values)
}

impl<U, S, P> IntoArg<Vec<U>, VecOf<S>> for Vec<P>
where
    U: Clone + Send + Sync + 'static,
    S: Shape<U>,
    P: IntoArg<U, S>,
{
    fn convert(self, shape: &VecOf<S>, cx: &mut Cx) -> Converted<Vec<U>> {
        list(convert_all(self.into_iter(), &shape.0, cx))
    }
}

impl<'a, U, S, P> IntoArg<Vec<U>, VecOf<S>> for &'a Vec<P>
where
    U: Clone + Send + Sync + 'static,
    S: Shape<U>,
    &'a P: IntoArg<U, S>,
{
    fn convert(self, shape: &VecOf<S>, cx: &mut Cx) -> Converted<Vec<U>> {
        list(convert_all(self.iter(), &shape.0, cx))
    }
}

impl<'a, U, S, P> IntoArg<Vec<U>, VecOf<S>> for &'a [P]
where
    U: Clone + Send + Sync + 'static,
    S: Shape<U>,
    &'a P: IntoArg<U, S>,
{
    fn convert(self, shape: &VecOf<S>, cx: &mut Cx) -> Converted<Vec<U>> {
        list(convert_all(self.iter(), &shape.0, cx))
    }
}

impl<U, S, P, const N: usize> IntoArg<Vec<U>, VecOf<S>> for [P; N]
where
    U: Clone + Send + Sync + 'static,
    S: Shape<U>,
    P: IntoArg<U, S>,
{
    fn convert(self, shape: &VecOf<S>, cx: &mut Cx) -> Converted<Vec<U>> {
        list(convert_all(self.into_iter(), &shape.0, cx))
    }
}

impl<U, S, P, const N: usize> IntoArg<[U; N], ArrayOf<S>> for [P; N]
where
    U: Clone + Send + Sync + 'static,
    S: Shape<U>,
    P: IntoArg<U, S>,
{
    fn convert(self, shape: &ArrayOf<S>, cx: &mut Cx) -> Converted<[U; N]> {
        let parts = convert_all(self.into_iter(), &shape.0, cx);
        gather(&"array", parts, |values| match values.try_into() {
            Ok(array) => array,
            Err(_) => unreachable!("an array's parts are as many as its length"),
        })
    }
}

impl<U, S, P> IntoArg<Option<U>, OptionOf<S>> for Option<P>
where
    U: Clone + Send + Sync + 'static,
    S: Shape<U>,
    P: IntoArg<U, S>,
{
    fn convert(self, shape: &OptionOf<S>, cx: &mut Cx) -> Converted<Option<U>> {
        cx.unlabeled();
        cx.tag(OPTION);
        cx.len(usize::from(self.is_some()));
        match self {
            None => Converted::Value(None),
            Some(part) => {
                let part = part.convert(&shape.0, cx);
                gather(&"option", vec![part], |mut values| values.pop())
            }
        }
    }
}
