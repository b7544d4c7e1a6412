//! Arguments: how a parameter of a `#[delayed]` function takes the value
//! it was given, as deep as dask's traversal of arguments.
//!
//! `#[delayed]` reads each parameter's type and names its *shape*: a
//! `Vec<(A, B)>` parameter has the shape `VecOf<Tuple<(Leaf<A>, Leaf<B>)>>`.
//! The shape says which arguments fit ([`IntoArg<T, S>`]): at every
//! level, a plain value, a node of that level's type, or the collection
//! made of fitting parts, so `take3((a, b, 3))` and `total(vec![x, 2, y])`
//! work. A collection that holds nodes becomes one hidden join node; a
//! collection of plain values stays a plain value, moved into the body.
//!
//! While converting, the arguments feed the call's key: a pure call hashes
//! plain values and literal nodes by value and other nodes by key, walking
//! the same structure whatever mix of values and nodes it was given, so
//! `triple((a, b, Delayed::value(3)))` and `triple((a, b, 3))` agree. A
//! call whose arguments are all small printable values reads as them
//! (`fetch-77`).
//!
//! [`IntoArg<T, S>`]: crate::IntoArg

pub(crate) mod cx;
mod leaf;
mod map;
pub(crate) mod pick;
mod seq;
mod tuple;

pub use cx::Cx;
pub use leaf::Leaf;
pub use map::{MapOf, SetOf};
pub use seq::{ArrayOf, OptionOf, VecOf};
pub use tuple::Tuple;

/// The shape of a parameter type: see the module docs.
///
/// `hash_plain` hashes a plain value of the type the way converting it
/// part by part would, so a literal node and the value it holds agree.
pub trait Shape<T>: Default {
    /// Feeds `value` into the call's key, as converting it would.
    fn hash_plain(&self, value: &T, cx: &mut Cx);
}
