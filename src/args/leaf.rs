//! The shape of a parameter that the macro does not look into: a plain
//! value, or a node of its type.

use std::fmt;

use super::{Cx, Shape};
use crate::builder::Converted;
use crate::engine::make;
use crate::tokenize::Tokenizer;
use crate::{Delayed, IntoArg};

/// The shape of a parameter type the macro does not look into.
///
/// It carries how to hash a value of the type (for pure calls) and how to
/// print it into a key (for a call's label), when the macro found a way.
#[doc(hidden)]
pub struct Leaf<T> {
    hash: Option<fn(&T, &mut Tokenizer)>,
    label: Option<fn(&T, &mut String) -> bool>,
}

impl<T> Leaf<T> {
    pub const fn new() -> Leaf<T> {
        Leaf {
            hash: None,
            label: None,
        }
    }

    /// Hashes values with `hash` in pure calls.
    pub const fn hashed(mut self, hash: fn(&T, &mut Tokenizer)) -> Leaf<T> {
        self.hash = Some(hash);
        self
    }

    /// Prints values into the key with `label`, if there is one.
    pub const fn labeled(mut self, label: Option<fn(&T, &mut String) -> bool>) -> Leaf<T> {
        self.label = label;
        self
    }

    /// Feeds a plain value into the call's key and label.
    fn plain(&self, value: &T, cx: &mut Cx) {
        cx.value(self.hash, value);
        cx.label(self.label, value);
    }

    /// Feeds a node: a literal by its value, anything else by its key.
    fn node(&self, node: &Delayed<T>, cx: &mut Cx)
    where
        T: 'static,
    {
        match make::literal_value::<T>(&node.node) {
            Some(value) if self.hash.is_some() => self.plain(value, cx),
            Some(value) => {
                cx.node(node);
                cx.label(self.label, value);
            }
            None => {
                cx.node(node);
                cx.unlabeled();
            }
        }
    }
}

impl<T> Default for Leaf<T> {
    fn default() -> Self {
        Leaf::new()
    }
}

impl<T> fmt::Debug for Leaf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Leaf")
    }
}

impl<T> Shape<T> for Leaf<T> {
    fn hash_plain(&self, value: &T, cx: &mut Cx) {
        cx.value(self.hash, value);
    }
}

impl<T: Send + Sync + 'static> IntoArg<T> for T {
    fn convert(self, shape: &Leaf<T>, cx: &mut Cx) -> Converted<T> {
        shape.plain(&self, cx);
        Converted::Value(self)
    }
}

impl<T: Send + Sync + 'static> IntoArg<T> for Delayed<T> {
    fn convert(self, shape: &Leaf<T>, cx: &mut Cx) -> Converted<T> {
        shape.node(&self, cx);
        Converted::Node(self)
    }
}

impl<T: Send + Sync + 'static> IntoArg<T> for &Delayed<T> {
    fn convert(self, shape: &Leaf<T>, cx: &mut Cx) -> Converted<T> {
        shape.node(self, cx);
        Converted::Node(self.clone())
    }
}
