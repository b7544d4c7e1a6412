//! The finished inputs of a running node, as its work reads them, and the
//! parameters that point into them.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use super::inputs::Inputs;
use super::node::{output_of, NodeRef};

/// An owned parameter: a value the body moves in, or the index of an input.
#[doc(hidden)]
pub enum Input<T> {
    Value(T),
    Dep(usize),
    /// The value moved into the body's only run.
    Taken,
}

/// A borrowed parameter: the index of the input it borrows from.
#[doc(hidden)]
pub struct Ref<T> {
    index: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T> Ref<T> {
    /// The parameter that borrows input `index`.
    pub(crate) fn at(index: usize) -> Ref<T> {
        Ref {
            index,
            _type: PhantomData,
        }
    }

    /// The index of the input it borrows.
    pub(crate) fn index(&self) -> usize {
        self.index
    }
}

/// The finished inputs of a running node, as its work reads them.
#[doc(hidden)]
pub struct Deps {
    deps: Inputs,
    /// The body may run again (a retry, a restart): clone values instead
    /// of moving them in.
    keep: bool,
}

impl Deps {
    pub(crate) fn new(deps: Inputs) -> Deps {
        Deps { deps, keep: false }
    }

    /// Inputs for a body that may run again.
    pub(crate) fn kept(deps: Inputs) -> Deps {
        Deps { deps, keep: true }
    }

    pub(crate) fn len(&self) -> usize {
        self.deps.len()
    }

    /// Hands an owned parameter over: a plain value moves in; an input's
    /// output moves out when this node holds the only handle to it, and is
    /// cloned otherwise. A body that may run again gets clones.
    pub fn take<T: Clone + Send + Sync + 'static>(&mut self, input: &mut Input<T>) -> T {
        match input {
            Input::Value(value) if self.keep => value.clone(),
            Input::Dep(index) => self.take_at(*index),
            _ => match std::mem::replace(input, Input::Taken) {
                Input::Value(value) => value,
                _ => panic!("{}", TAKEN),
            },
        }
    }

    pub(crate) fn take_at<T: Clone + Send + Sync + 'static>(&mut self, index: usize) -> T {
        let dep = &mut self.deps[index];
        if !self.keep && Arc::strong_count(dep) == 1 {
            super::intern::release_sole(dep);
        }
        if let Some(task) = Arc::get_mut(dep).filter(|_| !self.keep) {
            if let Some(value) = task
                .output_any_mut()
                .downcast_mut::<OnceLock<T>>()
                .and_then(OnceLock::take)
            {
                return value;
            }
        }
        output_of::<T>(&**dep).clone()
    }

    /// Clones an owned parameter for an async body, which may run again.
    pub fn cloned<T: Clone + Send + Sync + 'static>(&self, input: &Input<T>) -> T {
        match input {
            Input::Value(value) => value.clone(),
            Input::Dep(index) => output_of::<T>(&*self.deps[*index]).clone(),
            Input::Taken => panic!("{}", TAKEN),
        }
    }

    /// Borrows an input's output for a sync body.
    pub fn get<T: Send + Sync + 'static>(&self, input: &Ref<T>) -> &T {
        output_of::<T>(&*self.deps[input.index])
    }

    /// Holds an input for an async body that borrows its output.
    pub fn hold<T: Send + Sync + 'static>(&self, input: &Ref<T>) -> Held<T> {
        Held {
            task: Arc::clone(&self.deps[input.index]),
            _type: PhantomData,
        }
    }
}

/// The message of a body that runs again after it consumed its inputs,
/// which the scheduler never lets happen.
const TAKEN: &str = "delayed: a task's input was used after it was moved (scheduler invariant)";

/// A finished input kept alive by an async body that borrows it.
#[doc(hidden)]
pub struct Held<T> {
    task: NodeRef,
    _type: PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> Deref for Held<T> {
    type Target = T;

    fn deref(&self) -> &T {
        output_of::<T>(&*self.task)
    }
}
