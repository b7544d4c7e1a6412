//! The state of converting one call's arguments: its key's hash, its
//! label, and a panic of an argument's `Hash`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::engine::guard::Payload;
use crate::key::LABEL_MAX;
use crate::tokenize::Tokenizer;
use crate::Delayed;

/// What converting the arguments of one call collects.
#[doc(hidden)]
pub struct Cx {
    /// The hash of a pure call's key; `None` for other calls. Boxed: a
    /// builder moves its `Cx` around, and most calls are not pure.
    token: Option<Box<Tokenizer>>,
    /// A part could not be hashed by value: the call is not pure after all.
    opaque: bool,
    /// The printable arguments so far, or `None` once one is not.
    label: Option<String>,
    /// The first panic of an argument's `Hash`.
    pub(crate) panic: Option<Payload>,
}

impl Cx {
    pub(crate) fn new() -> Cx {
        Cx {
            token: None,
            opaque: false,
            label: None,
            panic: None,
        }
    }

    /// Hash the arguments into a pure key seeded with `seed`.
    pub(crate) fn pure(&mut self, seed: &str) {
        self.token = Some(Box::new(Tokenizer::seeded(seed)));
    }

    /// Let the key read as the arguments when they are all printable.
    pub(crate) fn labeled(&mut self) {
        // Kept as is in the key: room for a few arguments, no regrowth.
        self.label = Some(String::with_capacity(16));
    }

    /// Feeds more of the function's identity.
    pub(crate) fn seed(&mut self, seed: &str) {
        if let Some(token) = &mut self.token {
            token.hash(seed);
        }
    }

    /// The token and label the arguments made.
    pub(crate) fn finish(self) -> (Option<[u64; 2]>, Option<String>, Option<Payload>) {
        let token = match self.opaque {
            true => None,
            false => self.token.map(|token| token.finish128()),
        };
        let label = self.label.filter(|label| !label.is_empty());
        (token, label, self.panic)
    }

    /// Runs `f` with hashing and labels off, for parts that a caller hashes
    /// in its own way.
    pub(crate) fn quiet<R>(&mut self, f: impl FnOnce(&mut Cx) -> R) -> R {
        let mut quiet = Cx::new();
        let result = f(&mut quiet);
        if self.panic.is_none() {
            self.panic = quiet.panic;
        }
        result
    }

    /// Feeds a tag that tells the kinds of parts apart.
    pub fn tag(&mut self, tag: u8) {
        if let Some(token) = &mut self.token {
            token.hash(&tag);
        }
    }

    /// Feeds a length.
    pub fn len(&mut self, len: usize) {
        if let Some(token) = &mut self.token {
            token.hash(&len);
        }
    }

    /// Feeds a plain value with `hash`, catching a panic of user code.
    /// Without a way to hash it, the call is not pure.
    pub fn value<T>(&mut self, hash: Option<fn(&T, &mut Tokenizer)>, value: &T) {
        let Some(token) = &mut self.token else {
            return;
        };
        let Some(hash) = hash else {
            self.opaque = true;
            return;
        };
        if self.panic.is_some() {
            return;
        }
        let hashed = catch_unwind(AssertUnwindSafe(|| {
            token.hash(&0_u8);
            hash(value, token);
        }));
        if let Err(payload) = hashed {
            self.panic = Some(payload);
        }
    }

    /// Feeds a node by its key.
    pub fn node<T>(&mut self, node: &Delayed<T>) {
        if let Some(token) = &mut self.token {
            token.hash(&1_u8);
            node.node.core().key().hash_into(token);
        }
    }

    /// Feeds a collection whose order does not matter: each item is hashed
    /// on its own (with `each`) and the hashes are added up.
    pub fn unordered<I: IntoIterator>(&mut self, items: I, mut each: impl FnMut(I::Item, &mut Cx)) {
        let Some(mut outer) = self.token.take() else {
            items.into_iter().for_each(|item| each(item, self));
            return;
        };
        let mut spare: Option<Box<Tokenizer>> = None;
        outer.unordered(items, |item, one| {
            // One box for all the items, refilled with each item's hasher.
            let mut boxed = spare.take().unwrap_or_default();
            *boxed = std::mem::take(one);
            self.token = Some(boxed);
            each(item, self);
            let mut boxed = self.token.take().unwrap_or_default();
            *one = std::mem::take(&mut *boxed);
            spare = Some(boxed);
        });
        self.token = Some(outer);
    }

    /// Adds a printable value to the label with `label`; a value that is not
    /// printable, or no way to print it, turns the label off.
    pub fn label<T>(&mut self, label: Option<fn(&T, &mut String) -> bool>, value: &T) {
        let Some(text) = &mut self.label else {
            return;
        };
        let before = text.len();
        if before > 0 {
            text.push('-');
        }
        let printed = label.is_some_and(|label| {
            catch_unwind(AssertUnwindSafe(|| label(value, text))).unwrap_or(false)
        });
        if !printed || text.len() > LABEL_MAX {
            self.label = None;
        }
    }

    /// Turns the label off: a node or a collection is not printed.
    pub fn unlabeled(&mut self) {
        self.label = None;
    }
}
