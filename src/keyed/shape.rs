//! Parameter shapes: how an argument of a keyed graph becomes a typed
//! input node, and how an input node becomes an argument again.
//!
//! `#[delayed(register)]` picks a shape per parameter from its type as
//! written: `Vec<T>`, `Option<T>`, maps with `String` keys and tuples of up
//! to four take lists and maps with references inside; any other type is a
//! leaf, which takes a literal or a reference to a key of exactly its type.
//! So every argument is checked against its parameter before anything runs.

use std::any::type_name as full_type_name;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::build::{Resolved, Scope};
use super::export::Exporter;
use super::spec::Arg;
use crate::engine::state::Origin;
use crate::engine::view::NodeView;
use crate::{Delayed, IntoDelayed, Join};

/// How one parameter's argument is built and exported. Not a stable API:
/// `#[delayed(register)]` uses it.
#[doc(hidden)]
pub trait Shape: Send + Sync + 'static {
    /// The parameter's type.
    type Output: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The input node for `arg`; the error says what is wrong, `at` is
    /// where the argument is, for messages.
    fn build(
        &self,
        arg: &Arg,
        scope: &Scope<'_>,
        at: &str,
    ) -> Result<Delayed<Self::Output>, String>;

    /// The argument that makes `node` again.
    fn export(&self, node: &Node, exporter: &mut Exporter<'_>) -> Result<Arg, String>;
}

/// A shape with its output type erased, as an entry stores it. Not a
/// stable API.
#[doc(hidden)]
pub trait Param: Send + Sync {
    #[doc(hidden)]
    fn build_node(&self, arg: &Arg, scope: &Scope<'_>, at: &str) -> Result<Node, String>;
    #[doc(hidden)]
    fn export_node(&self, node: &Node, exporter: &mut Exporter<'_>) -> Result<Arg, String>;
}

/// A node with its type erased. Not a stable API.
#[doc(hidden)]
pub struct Node(pub(crate) NodeView);

impl<S: Shape> Param for S {
    fn build_node(&self, arg: &Arg, scope: &Scope<'_>, at: &str) -> Result<Node, String> {
        Shape::build(self, arg, scope, at).map(|delayed| Node(delayed.view()))
    }

    fn export_node(&self, node: &Node, exporter: &mut Exporter<'_>) -> Result<Arg, String> {
        Shape::export(self, node, exporter)
    }
}

/// Erases a shape, for an entry's parameter list.
#[doc(hidden)]
pub fn param(shape: impl Shape) -> Box<dyn Param> {
    Box::new(shape)
}

/// Any type: a literal, or a reference to a key of exactly this type.
#[doc(hidden)]
pub fn leaf<T>() -> Leaf<T> {
    Leaf(PhantomData)
}

/// `Vec<T>`: also a list whose items are arguments for `T`.
#[doc(hidden)]
pub fn vec<S: Shape>(item: S) -> VecOf<S> {
    VecOf(item)
}

/// `Option<T>`: also `null`, or an argument for `T`.
#[doc(hidden)]
pub fn option<S: Shape>(item: S) -> OptionOf<S> {
    OptionOf(item)
}

/// A map from `String` keys (`HashMap`, `BTreeMap`): also an object whose
/// values are arguments for the map's values.
#[doc(hidden)]
pub fn map<M, S: Shape>(value: S) -> MapOf<M, S> {
    MapOf(value, PhantomData)
}

#[doc(hidden)]
pub struct Leaf<T>(PhantomData<fn() -> T>);
#[doc(hidden)]
pub struct VecOf<S>(S);
#[doc(hidden)]
pub struct OptionOf<S>(S);
#[doc(hidden)]
pub struct MapOf<M, S>(S, PhantomData<fn() -> M>);

/// A type's name without module paths: `Vec<Doc>`, not
/// `alloc::vec::Vec<my_crate::Doc>`.
pub(crate) fn type_name<T: ?Sized>() -> String {
    short_type(full_type_name::<T>())
}

pub(crate) fn short_type(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

/// A literal argument, deserialized into `T`.
fn literal<T: DeserializeOwned + Send + Sync + 'static>(
    value: &serde_json::Value,
    at: &str,
) -> Result<Delayed<T>, String> {
    T::deserialize(value)
        .map(Delayed::value)
        .map_err(|err| format!("argument `{at}` is not a `{}`: {err}", type_name::<T>()))
}

/// A reference to `key`, which must make a `T` (or be a value that reads
/// as one).
fn reference<T: DeserializeOwned + Send + Sync + 'static>(
    key: &str,
    scope: &Scope<'_>,
    at: &str,
) -> Result<Delayed<T>, String> {
    match scope.resolve(key) {
        Resolved::Node {
            task,
            type_name: made,
        } => {
            if task.makes::<T>() {
                Ok(Delayed::from_view(task))
            } else {
                Err(format!(
                    "argument `{at}` wants a `{}`, but key `{key}` makes a `{}`",
                    type_name::<T>(),
                    short_type(made)
                ))
            }
        }
        Resolved::Value(value) => T::deserialize(value).map(Delayed::value).map_err(|err| {
            format!(
                "argument `{at}`: key `{key}` is not a `{}`: {err}",
                type_name::<T>()
            )
        }),
    }
}

/// The output of a node that has one (a literal, or a finished node).
fn finished<T: 'static>(node: &Node) -> Option<&T> {
    node.0.output::<T>()
}

/// A finished node as a literal, or else a reference to its key.
fn export_node<T: Serialize + 'static>(
    node: &Node,
    exporter: &mut Exporter<'_>,
) -> Result<Arg, String> {
    match finished::<T>(node) {
        Some(value) => {
            let value = serde_json::to_value(value)
                .map_err(|err| format!("a `{}` could not be written: {err}", type_name::<T>()))?;
            exporter.value(node, value)
        }
        None => exporter.reference(node),
    }
}

/// The inputs of an unfinished join node made by `name`, if `node` is one.
fn parts(node: &Node, name: &str) -> Option<Vec<Node>> {
    let parts = node.0.join_parts(name)?;
    Some(parts.into_iter().map(Node).collect())
}

fn lists_refs_for<T>(at: &str) -> String {
    format!(
        "argument `{at}` is a `{}`, which cannot hold key references inside a list or map; \
         only `Vec`, `Option`, tuple and `String`-keyed map parameters can",
        type_name::<T>()
    )
}

impl<T> Shape for Leaf<T>
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Output = T;

    fn build(&self, arg: &Arg, scope: &Scope<'_>, at: &str) -> Result<Delayed<T>, String> {
        match arg {
            Arg::Value(value) => literal(value, at),
            Arg::Ref(key) => reference(key, scope, at),
            Arg::List(_) | Arg::Map(_) => Err(lists_refs_for::<T>(at)),
        }
    }

    fn export(&self, node: &Node, exporter: &mut Exporter<'_>) -> Result<Arg, String> {
        export_node::<T>(node, exporter)
    }
}

impl<S: Shape> Shape for VecOf<S> {
    type Output = Vec<S::Output>;

    fn build(
        &self,
        arg: &Arg,
        scope: &Scope<'_>,
        at: &str,
    ) -> Result<Delayed<Self::Output>, String> {
        match arg {
            Arg::Value(value) => literal(value, at),
            Arg::Ref(key) => reference(key, scope, at),
            Arg::List(items) => {
                let parts = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.0.build(item, scope, &format!("{at}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(parts.join())
            }
            Arg::Map(_) => Err(format!(
                "argument `{at}` is a list (`{}`), not a map",
                type_name::<Self::Output>()
            )),
        }
    }

    fn export(&self, node: &Node, exporter: &mut Exporter<'_>) -> Result<Arg, String> {
        match parts(node, "list") {
            Some(parts) => Ok(Arg::list(
                parts
                    .iter()
                    .map(|part| self.0.export(part, exporter))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            None => export_node::<Self::Output>(node, exporter),
        }
    }
}

impl<S: Shape> Shape for OptionOf<S> {
    type Output = Option<S::Output>;

    fn build(
        &self,
        arg: &Arg,
        scope: &Scope<'_>,
        at: &str,
    ) -> Result<Delayed<Self::Output>, String> {
        match arg {
            Arg::Value(value) => literal(value, at),
            Arg::Ref(key) => match scope.resolve(key) {
                // A key that makes the option itself.
                Resolved::Node { task, .. } if task.makes::<Self::Output>() => {
                    Ok(Delayed::from_view(task))
                }
                // A value key reads as the literal would.
                Resolved::Value(_) => reference(key, scope, at),
                Resolved::Node { .. } => Ok(Some(self.0.build(arg, scope, at)?).into_delayed()),
            },
            Arg::List(_) | Arg::Map(_) => Ok(Some(self.0.build(arg, scope, at)?).into_delayed()),
        }
    }

    fn export(&self, node: &Node, exporter: &mut Exporter<'_>) -> Result<Arg, String> {
        match parts(node, "option") {
            Some(parts) if parts.len() == 1 => self.0.export(&parts[0], exporter),
            _ => export_node::<Self::Output>(node, exporter),
        }
    }
}

impl<M, S> Shape for MapOf<M, S>
where
    S: Shape,
    M: FromIterator<(String, S::Output)>
        + Clone
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    type Output = M;

    fn build(&self, arg: &Arg, scope: &Scope<'_>, at: &str) -> Result<Delayed<M>, String> {
        match arg {
            Arg::Value(value) => literal(value, at),
            Arg::Ref(key) => reference(key, scope, at),
            Arg::Map(entries) => {
                let names: Vec<String> = entries.keys().cloned().collect();
                let parts = entries
                    .iter()
                    .map(|(name, item)| self.0.build(item, scope, &format!("{at}.{name}")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(parts
                    .join()
                    .map(move |values| names.iter().cloned().zip(values).collect()))
            }
            Arg::List(_) => Err(format!(
                "argument `{at}` is a map (`{}`), not a list",
                type_name::<M>()
            )),
        }
    }

    fn export(&self, node: &Node, exporter: &mut Exporter<'_>) -> Result<Arg, String> {
        match finished::<M>(node) {
            Some(_) => export_node::<M>(node, exporter),
            None if node.0.origin() == Origin::Registered => exporter.reference(node),
            None => Err(format!(
                "a `{}` argument built from a map of unfinished nodes cannot be exported; \
                 compute it first, or pass a registered function's output",
                type_name::<M>()
            )),
        }
    }
}

macro_rules! tuple_shape {
    ($name:ident $fn_name:ident $len:literal; $($part:ident $index:tt),+) => {
        #[doc(hidden)]
        pub struct $name<$($part),+>($($part),+);

        /// A tuple: also a list with one argument per field.
        #[doc(hidden)]
        #[allow(non_snake_case)]
        pub fn $fn_name<$($part: Shape),+>($($part: $part),+) -> $name<$($part),+> {
            $name($($part),+)
        }

        impl<$($part: Shape),+> Shape for $name<$($part),+> {
            type Output = ($($part::Output,)+);

            fn build(&self, arg: &Arg, scope: &Scope<'_>, at: &str) -> Result<Delayed<Self::Output>, String> {
                match arg {
                    Arg::Value(value) => literal(value, at),
                    Arg::Ref(key) => reference(key, scope, at),
                    Arg::List(items) if items.len() == $len => Ok(crate::join((
                        $(self.$index.build(&items[$index], scope, &format!("{at}.{}", $index))?,)+
                    ))),
                    Arg::List(items) => Err(format!(
                        "argument `{at}` is a tuple of {}, but the list has {} items",
                        $len,
                        items.len()
                    )),
                    Arg::Map(_) => Err(format!("argument `{at}` is a tuple, not a map")),
                }
            }

            fn export(&self, node: &Node, exporter: &mut Exporter<'_>) -> Result<Arg, String> {
                match parts(node, "tuple") {
                    Some(parts) if parts.len() == $len => Ok(Arg::list([
                        $(self.$index.export(&parts[$index], exporter)?,)+
                    ])),
                    _ => export_node::<Self::Output>(node, exporter),
                }
            }
        }
    };
}

tuple_shape!(Tuple2 tuple2 2; A 0, B 1);
tuple_shape!(Tuple3 tuple3 3; A 0, B 1, C 2);
tuple_shape!(Tuple4 tuple4 4; A 0, B 1, C 2, D 3);
