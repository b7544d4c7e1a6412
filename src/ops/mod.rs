//! Operators on nodes: `x + 1`, `&a * &b`, `-x`, `!flags`.
//!
//! Each operator makes one inline node named for it (`add`, `mul`, `neg`,
//! ...) whose inputs are its node operands; a plain operand moves into the
//! node's body. Operands are taken like an owned parameter of a
//! `#[delayed]` function: moved in when the operator holds the last handle
//! to them, cloned otherwise, so they must be `Clone`.
//!
//! - A node with a node (`Delayed<T> op Delayed<U>`, and either side a
//!   reference) works for any `T: Op<U>`, your own types included.
//! - A node with a plain value works for the plain types of `plain.rs`:
//!   every integer and float type, `bool`, `Duration` and `&'static str`
//!   (on the right, for `Delayed<String> + "suffix"`). The value's type is
//!   inferred from the node's: `Delayed<u64> + 1` adds a `u64` and
//!   `2.0 * Delayed<f64>` multiplies an `f64`. A shift's plain amount is a
//!   `u32`, as in `u64::rotate_left`.
//! - A plain value of any other type goes in as a node:
//!   `&total + Delayed::value(fee)`. A generic `Delayed<T> op V` for any
//!   `V` cannot be written: it would overlap with the node-with-node
//!   impl, since `V` could be a `Delayed` itself.

mod nodes;
mod plain;
mod unary;

use crate::builder::Builder;
use crate::Delayed;

/// The name of an operator's node, which its key starts with.
type Name = &'static &'static str;

/// The node of `op(a, b)` for two node operands.
fn both<A, B, O>(name: Name, a: Delayed<A>, b: Delayed<B>, op: fn(A, B) -> O) -> Delayed<O>
where
    A: Clone + Send + Sync + 'static,
    B: Clone + Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    let mut builder = Builder::new(name);
    let mut a = builder.input::<A>(a);
    let mut b = builder.input::<B>(b);
    builder.sync(move |deps| op(deps.take(&mut a), deps.take(&mut b)))
}

/// The node of `op(a, b)` for a node and a plain value on the right.
fn plain_right<A, B, O>(name: Name, a: Delayed<A>, b: B, op: fn(A, B) -> O) -> Delayed<O>
where
    A: Clone + Send + Sync + 'static,
    B: Copy + Send + 'static,
    O: Send + Sync + 'static,
{
    let mut builder = Builder::new(name);
    let mut a = builder.input::<A>(a);
    builder.sync(move |deps| op(deps.take(&mut a), b))
}

/// The node of `op(a, b)` for a plain value on the left and a node.
fn plain_left<A, B, O>(name: Name, a: A, b: Delayed<B>, op: fn(A, B) -> O) -> Delayed<O>
where
    A: Copy + Send + 'static,
    B: Clone + Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    let mut builder = Builder::new(name);
    let mut b = builder.input::<B>(b);
    builder.sync(move |deps| op(a, deps.take(&mut b)))
}

/// The node of `op(a)`.
fn one<A, O>(name: Name, a: Delayed<A>, op: fn(A) -> O) -> Delayed<O>
where
    A: Clone + Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    let mut builder = Builder::new(name);
    let mut a = builder.input::<A>(a);
    builder.sync(move |deps| op(deps.take(&mut a)))
}
