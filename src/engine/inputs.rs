//! The inputs of a node, stored without an allocation for the common
//! cases: none (a leaf), one (a chain) or two (a binary operation).

use std::ops::{Deref, DerefMut};

use super::node::NodeRef;

#[derive(Clone, Default)]
pub(crate) enum Inputs {
    #[default]
    None,
    One(NodeRef),
    Two([NodeRef; 2]),
    Many(Vec<NodeRef>),
}

impl Inputs {
    /// Adds an input; returns its index.
    pub(crate) fn push(&mut self, input: NodeRef) -> usize {
        *self = match std::mem::take(self) {
            Inputs::None => Inputs::One(input),
            Inputs::One(first) => Inputs::Two([first, input]),
            Inputs::Two(two) => Inputs::Many(spill(two, input)),
            Inputs::Many(mut all) => {
                all.push(input);
                Inputs::Many(all)
            }
        };
        self.len() - 1
    }

    /// Moves the inputs onto `stack`.
    pub(crate) fn drain_into(self, stack: &mut Vec<NodeRef>) {
        match self {
            Inputs::None => {}
            Inputs::One(input) => stack.push(input),
            Inputs::Two(two) => stack.extend(two),
            Inputs::Many(inputs) => stack.extend(inputs),
        }
    }
}

/// The list that two inline items and a third become: room for a fourth
/// too, so that three or four items cost one allocation, not a growth.
pub(crate) fn spill<T>(two: [T; 2], third: T) -> Vec<T> {
    let mut all = Vec::with_capacity(4);
    all.extend(two);
    all.push(third);
    all
}

impl Deref for Inputs {
    type Target = [NodeRef];

    fn deref(&self) -> &Self::Target {
        match self {
            Inputs::None => &[],
            Inputs::One(input) => std::slice::from_ref(input),
            Inputs::Two(two) => two,
            Inputs::Many(inputs) => inputs,
        }
    }
}

impl DerefMut for Inputs {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Inputs::None => &mut [],
            Inputs::One(input) => std::slice::from_mut(input),
            Inputs::Two(two) => two,
            Inputs::Many(inputs) => inputs,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Delayed;

    #[test]
    fn push_returns_indexes_and_keeps_order() {
        let nodes: Vec<NodeRef> = (0..5_u64).map(|n| Delayed::value(n).node).collect();
        let mut inputs = Inputs::None;
        for (i, node) in nodes.iter().enumerate() {
            assert_eq!(inputs.push(Arc::clone(node)), i);
            assert_eq!(inputs.len(), i + 1);
            assert!(inputs.iter().zip(&nodes).all(|(a, b)| Arc::ptr_eq(a, b)));
        }
        let mut stack = Vec::new();
        inputs.drain_into(&mut stack);
        assert!(stack.iter().zip(&nodes).all(|(a, b)| Arc::ptr_eq(a, b)));
        assert_eq!(stack.len(), nodes.len());
    }
}
