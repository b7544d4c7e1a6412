//! Making nodes: what the API layer's builder calls once it has collected
//! a node's inputs, key and policies.

use std::hash::Hash;
use std::sync::Arc;

use super::guard::Payload;
use super::inputs::Inputs;
use super::intern;
use super::node::{output_of, Literal, NodeRef, TypedNode, Work};
use super::policy::NodePolicy;
use super::state::{Core, Origin};
use crate::key::{KeyId, Token};
use crate::Error;

/// Everything about a node but its work.
pub(crate) struct Blueprint {
    pub(crate) name: &'static &'static str,
    pub(crate) origin: Origin,
    pub(crate) deps: Inputs,
    /// The key's hash, for a pure node: equal live pure nodes are one.
    pub(crate) token: Option<[u64; 2]>,
    pub(crate) policy: Option<Arc<NodePolicy>>,
    /// A panic while the node was described (an argument's `Hash`): the
    /// node fails with it when computed.
    pub(crate) panic: Option<Payload>,
}

/// Makes the node of `blueprint` with `work`, or finds the live equal
/// pure node.
pub(crate) fn node<T, W>(blueprint: Blueprint, work: W) -> NodeRef
where
    T: Send + Sync + 'static,
    W: Work<T>,
{
    let Blueprint {
        name,
        origin,
        deps,
        token,
        policy,
        panic,
    } = blueprint;
    if let Some(payload) = panic {
        let mut core = Core::new(name, origin, KeyId::fresh(), Inputs::None);
        let err = Error::panic(core.key(), payload);
        core.fail_unstarted(err);
        super::guard::drop_quietly((deps, work));
        return Arc::new(TypedNode::<T, W>::empty(core));
    }
    let id = match token {
        Some(token) => KeyId::Token(token),
        None => KeyId::fresh(),
    };
    let make = move || -> NodeRef {
        let mut core = Core::new(name, origin, id, deps);
        if let Some(policy) = policy {
            core.set_policy(policy);
        }
        Arc::new(TypedNode::new(core, work))
    };
    match token {
        Some(token) if !intern::is_distinct() => intern::get_or_insert::<T>(token, make),
        _ => make(),
    }
}

/// A node that already holds its value.
pub(crate) fn literal<T: Send + Sync + 'static>(value: T) -> NodeRef {
    let core = Core::new(&"value", Origin::Literal, KeyId::fresh(), Inputs::None);
    Arc::new(TypedNode::<T, Literal>::literal(core, value))
}

/// The value of a literal input, which pure keys hash by value.
pub(crate) fn literal_value<T: 'static>(dep: &NodeRef) -> Option<&T> {
    (dep.core().origin == Origin::Literal).then(|| output_of::<T>(&**dep))
}

/// Hashes a non-literal input into a pure key: a join (a `Vec` of nodes...)
/// by the keys of its parts, so equal lists of the same nodes agree; any
/// other input by its key.
pub(crate) fn hash_input_key(dep: &NodeRef, token: &mut Token) {
    let mut parts = vec![NodeRef::clone(dep)];
    while let Some(part) = parts.pop() {
        let st = part.core().lock();
        // A join that already ran gave up its parts: its key stands in.
        if part.core().origin == Origin::Join && !st.is_finished() {
            2_u8.hash(token);
            parts.extend(st.deps.iter().rev().cloned());
        } else {
            1_u8.hash(token);
            part.core().key_locked(&st).hash_into(token);
        }
    }
}
