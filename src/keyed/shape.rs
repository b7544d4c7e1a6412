//! Parameter shapes: how an argument of a keyed graph becomes a typed
//! input node, and how an input node becomes an argument again.
//!
//! `#[delayed(register)]` picks a shape per parameter from its type as
//! written: `Vec<T>`, `Option<T>`, maps with `String` keys and tuples of up
//! to four take lists and maps with references inside; any other type is a
//! leaf, which takes a literal or a reference to a key of exactly its type.
//! So every argument is checked against its parameter before anything runs.

use std::any::type_name as full_type_name;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::build::{Resolved, Scope};
use super::export::Exporter;
use super::registry::Entry;
use super::spec::Arg;
use crate::builder::Builder;
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
    /// The finished `node`'s output in postcard bytes, if it has one of
    /// this parameter's type.
    #[doc(hidden)]
    fn to_bytes(&self, node: &Node) -> Option<Result<Vec<u8>, String>>;
    /// A finished node holding this parameter's value read from postcard
    /// bytes.
    #[doc(hidden)]
    fn node_from_bytes(&self, bytes: &[u8]) -> Result<Node, String>;
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

    fn to_bytes(&self, node: &Node) -> Option<Result<Vec<u8>, String>> {
        let value = node.0.output::<S::Output>()?;
        Some(postcard::to_stdvec(value).map_err(|err| err.to_string()))
    }

    fn node_from_bytes(&self, bytes: &[u8]) -> Result<Node, String> {
        postcard::from_bytes::<S::Output>(bytes)
            .map(|value| Node(Delayed::value(value).view()))
            .map_err(|err| err.to_string())
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

/// A literal, or a value key (or a field of one), deserialized into `T`;
/// `arg` is the argument it came from, for messages.
fn literal<T: DeserializeOwned + Send + Sync + 'static>(
    value: &Value,
    arg: &Arg,
    at: &str,
) -> Result<Delayed<T>, String> {
    T::deserialize(value)
        .map(Delayed::value)
        .map_err(|err| match arg {
            Arg::Value(_) | Arg::List(_) | Arg::Map(_) => {
                format!("argument `{at}` is not a `{}`: {err}", type_name::<T>())
            }
            _ => format!(
                "argument `{at}`: {} is not a `{}`: {err}",
                describe(arg),
                type_name::<T>()
            ),
        })
}

/// What an argument that refers to something names, for messages.
fn describe(arg: &Arg) -> String {
    match arg {
        Arg::Ref(key) => format!("key `{key}`"),
        Arg::Field(key, index) => format!("field {index} of key `{key}`"),
        Arg::Call(call) => format!("the call of `{}`", call.function()),
        Arg::Value(_) | Arg::List(_) | Arg::Map(_) => "the argument".to_string(),
    }
}

/// The node that makes a `T` for `arg`: `task` itself when `path` is
/// empty (it must make exactly a `T`), else field `path` of its output.
fn made<T: DeserializeOwned + Send + Sync + 'static>(
    task: NodeView,
    entry: &Entry,
    path: &[usize],
    arg: &Arg,
    at: &str,
) -> Result<Delayed<T>, String> {
    if !path.is_empty() {
        return Ok(bridge::<T>(task, entry, path));
    }
    if task.makes::<T>() {
        Ok(Delayed::from_view(task))
    } else {
        Err(format!(
            "argument `{at}` wants a `{}`, but {} makes a `{}`",
            type_name::<T>(),
            describe(arg),
            short_type(entry.output())
        ))
    }
}

/// A node for field `path` of `task`'s output, read as a `T`: the field is
/// written as JSON and read back, since only the function's entry knows
/// the tuple's type. One node per field, named `unzip` like the field
/// nodes of [`Delayed::unzip`], so it exports as a field again.
pub(crate) fn bridge<T: DeserializeOwned + Send + Sync + 'static>(
    task: NodeView,
    entry: &Entry,
    path: &[usize],
) -> Delayed<T> {
    let fields: Vec<String> = path.iter().map(ToString::to_string).collect();
    let what = format!("field {} of key `{}`", fields.join("."), task.key());
    let name_of = |index: usize| crate::unzip::field_name(index).unwrap_or(&"unzip");
    let first = path.first().copied().unwrap_or(0);
    let mut builder = Builder::new(name_of(first));
    let input = (entry.input)(&mut builder, task);
    let json = entry.json;
    let rest = path.get(1..).unwrap_or_default().to_vec();
    if rest.is_empty() {
        return builder.sync_result(move |deps| {
            let whole = json(deps, input)?;
            read::<T>(item(&whole, first, &what)?, &what)
        });
    }
    let outer = what.clone();
    let mut node: Delayed<Value> = builder.sync_result(move |deps| {
        let whole = json(deps, input)?;
        item(&whole, first, &outer).cloned()
    });
    let last = rest.len() - 1;
    for (n, index) in rest.into_iter().enumerate() {
        let mut builder = Builder::new(name_of(index));
        let input = builder.borrow::<Value>(&node);
        let what = what.clone();
        if n == last {
            return builder
                .sync_result(move |deps| read::<T>(item(deps.get(&input), index, &what)?, &what));
        }
        node = builder.sync_result(move |deps| item(deps.get(&input), index, &what).cloned());
    }
    unreachable!("the last field returned")
}

/// Item `index` of a field's JSON.
fn item<'v>(value: &'v Value, index: usize, what: &str) -> Result<&'v Value, String> {
    value
        .get(index)
        .ok_or_else(|| format!("{what}: the output has no field {index}"))
}

/// A field's JSON as a `T`.
fn read<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, String> {
    T::deserialize(value).map_err(|err| format!("{what} is not a `{}`: {err}", type_name::<T>()))
}

/// What an argument is, once references are followed: a node made, or a
/// list or map for the shape to build.
enum Form<'x, T> {
    Made(Delayed<T>),
    List(&'x [Arg]),
    Map(&'x BTreeMap<String, Arg>),
}

fn form<'x, T: DeserializeOwned + Send + Sync + 'static>(
    arg: &'x Arg,
    scope: &Scope<'x>,
    at: &str,
) -> Result<Form<'x, T>, String> {
    Ok(match scope.resolve(arg)? {
        Resolved::Value(value) => Form::Made(literal(value, arg, at)?),
        Resolved::Node { task, entry, path } => Form::Made(made(task, entry, &path, arg, at)?),
        Resolved::List(items) => Form::List(items),
        Resolved::Map(entries) => Form::Map(entries),
    })
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
        match form::<T>(arg, scope, at)? {
            Form::Made(node) => Ok(node),
            Form::List(_) | Form::Map(_) => Err(lists_refs_for::<T>(at)),
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
        match form::<Self::Output>(arg, scope, at)? {
            Form::Made(node) => Ok(node),
            Form::List(items) => {
                let parts = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.0.build(item, scope, &format!("{at}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(parts.join())
            }
            Form::Map(_) => Err(format!(
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
        match scope.resolve(arg)? {
            // A literal, or a value key, reads as an option.
            Resolved::Value(value) => literal(value, arg, at),
            // A node that makes the option itself.
            Resolved::Node { task, .. } if task.makes::<Self::Output>() => {
                Ok(Delayed::from_view(task))
            }
            // A field reads as an option: `null` is `None`.
            Resolved::Node { task, entry, path } if !path.is_empty() => {
                Ok(bridge::<Self::Output>(task, entry, &path))
            }
            // Anything else is what the option holds.
            _ => Ok(Some(self.0.build(arg, scope, at)?).into_delayed()),
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
        match form::<M>(arg, scope, at)? {
            Form::Made(node) => Ok(node),
            Form::Map(entries) => {
                let names: Vec<String> = entries.keys().cloned().collect();
                let parts = entries
                    .iter()
                    .map(|(name, item)| self.0.build(item, scope, &format!("{at}.{name}")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(parts
                    .join()
                    .map(move |values| names.iter().cloned().zip(values).collect()))
            }
            Form::List(_) => Err(format!(
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
                match form::<Self::Output>(arg, scope, at)? {
                    Form::Made(node) => Ok(node),
                    Form::List(items) if items.len() == $len => Ok(crate::join((
                        $(self.$index.build(&items[$index], scope, &format!("{at}.{}", $index))?,)+
                    ))),
                    Form::List(items) => Err(format!(
                        "argument `{at}` is a tuple of {}, but the list has {} items",
                        $len,
                        items.len()
                    )),
                    Form::Map(_) => Err(format!("argument `{at}` is a tuple, not a map")),
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
