//! The inputs of a node, stored without an allocation for the common
//! cases: none (a leaf) or one (a chain).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::task::Task;

#[derive(Clone, Default)]
pub(crate) enum Inputs {
    #[default]
    None,
    One(Arc<dyn Task>),
    Many(Box<[Arc<dyn Task>]>),
}

impl Inputs {
    pub(crate) fn from_vec(mut inputs: Vec<Arc<dyn Task>>) -> Inputs {
        match inputs.len() {
            0 => Inputs::None,
            1 => Inputs::One(inputs.pop().expect("one input")),
            _ => Inputs::Many(inputs.into_boxed_slice()),
        }
    }

    /// Moves the inputs onto `stack`.
    pub(crate) fn drain_into(self, stack: &mut Vec<Arc<dyn Task>>) {
        match self {
            Inputs::None => {}
            Inputs::One(input) => stack.push(input),
            Inputs::Many(inputs) => stack.extend(inputs.into_vec()),
        }
    }
}

impl Deref for Inputs {
    type Target = [Arc<dyn Task>];

    fn deref(&self) -> &Self::Target {
        match self {
            Inputs::None => &[],
            Inputs::One(input) => std::slice::from_ref(input),
            Inputs::Many(inputs) => inputs,
        }
    }
}

impl DerefMut for Inputs {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Inputs::None => &mut [],
            Inputs::One(input) => std::slice::from_mut(input),
            Inputs::Many(inputs) => inputs,
        }
    }
}
