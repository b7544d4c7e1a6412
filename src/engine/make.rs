//! Making nodes: what the API layer's builder calls once it has collected
//! a node's inputs, key and policies.

use std::sync::Arc;

use super::guard::Payload;
use super::inputs::Inputs;
use super::intern;
use super::node::{output_of, Literal, NodeRef, TypedNode, Work};
use super::policy::NodePolicy;
use super::state::{Core, Origin};
use crate::key::KeyId;
use crate::Error;

/// Everything about a node but its work.
pub(crate) struct Blueprint {
    pub(crate) name: &'static &'static str,
    pub(crate) origin: Origin,
    pub(crate) deps: Inputs,
    /// The key's hash, for a pure node: equal live pure nodes are one.
    pub(crate) token: Option<[u64; 2]>,
    /// The arguments, when the key reads as them (`fetch-77`).
    pub(crate) label: Option<String>,
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
        label,
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
    let make = move || -> NodeRef {
        let id = match token {
            Some(token) => KeyId::Token(token),
            None => KeyId::fresh(),
        };
        let id = match label {
            Some(text) => KeyId::labeled(name, text, id),
            None => id,
        };
        let mut core = Core::new(name, origin, id, deps);
        if let Some(policy) = policy {
            core.set_policy(policy);
        }
        Arc::new(TypedNode::new(core, work))
    };
    match token {
        Some(token) if !intern::is_distinct() && origin != Origin::Join => {
            intern::get_or_insert::<T>(token, make)
        }
        _ => make(),
    }
}

/// A node that already holds its value; with a token, named by it and
/// shared with the live equal literal.
pub(crate) fn literal<T: Send + Sync + 'static>(value: T, token: Option<[u64; 2]>) -> NodeRef {
    let make = move || -> NodeRef {
        let id = token.map_or_else(KeyId::fresh, KeyId::Token);
        let core = Core::new(&"value", Origin::Literal, id, Inputs::None);
        Arc::new(TypedNode::<T, Literal>::literal(core, value))
    };
    match token {
        Some(token) if !intern::is_distinct() => intern::get_or_insert::<T>(token, make),
        _ => make(),
    }
}

/// A literal whose value could not be hashed: it fails when computed.
pub(crate) fn failed_literal<T: Send + Sync + 'static>(payload: Payload) -> NodeRef {
    let mut core = Core::new(&"value", Origin::Literal, KeyId::fresh(), Inputs::None);
    let err = Error::panic(core.key(), payload);
    core.fail_unstarted(err);
    Arc::new(TypedNode::<T, Literal>::empty(core))
}

/// The value of a literal input, which pure keys hash by value.
pub(crate) fn literal_value<T: 'static>(dep: &NodeRef) -> Option<&T> {
    (dep.core().origin == Origin::Literal && dep.core().lock().is_finished_ok())
        .then(|| output_of::<T>(&**dep))
}
