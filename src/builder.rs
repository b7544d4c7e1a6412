//! Building nodes: what the `#[delayed]` attribute and the combinators
//! expand to. Hidden from the docs; not a stable API.

use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::body::{Async, Blocking, Inline};
use crate::error::Cause;
use crate::inputs::Inputs;
use crate::intern;
use crate::key::{KeyId, Token};
use crate::limit::Limit;
use crate::node::{Body, Node};
use crate::policy::Policy;
use crate::retry::Retry;
use crate::task::{output_of, Core, Origin, Task, UNSET};
use crate::{Delayed, IntoDelayed};

/// An argument after conversion: a plain value, or a node to wait for.
#[doc(hidden)]
pub enum Arg<T> {
    Value(T),
    Node(Delayed<T>),
}

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

/// Collects the inputs of one node, then makes the node.
#[doc(hidden)]
pub struct Builder {
    name: &'static &'static str,
    deps: Inputs,
    token: Option<Token>,
    origin: Origin,
    policy: Option<Arc<Policy>>,
}

/// The `#[delayed(limit = .., retry = .., ..)]` policies of a function:
/// made on its first call and shared by all its nodes.
#[doc(hidden)]
pub struct Policies(Arc<Policy>);

impl Policies {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Policies {
        Policies(Arc::new(Policy::default()))
    }

    /// `#[delayed(limit = L)]`.
    pub fn limit(mut self, limit: &'static Limit) -> Policies {
        Arc::make_mut(&mut self.0).limit = Some(limit);
        self
    }

    /// `#[delayed(retry = R)]`.
    pub fn retry(mut self, retry: Retry) -> Policies {
        Arc::make_mut(&mut self.0).retry = Some(retry);
        self
    }

    /// `#[delayed(timeout = D)]`.
    pub fn timeout(mut self, timeout: Duration) -> Policies {
        Arc::make_mut(&mut self.0).timeout = Some(timeout);
        self
    }

    /// `#[delayed(priority = P)]`.
    pub fn priority(mut self, priority: i32) -> Policies {
        Arc::make_mut(&mut self.0).priority = Some(priority);
        self
    }
}

impl Builder {
    pub fn new(name: &'static &'static str) -> Builder {
        Builder {
            name,
            deps: Inputs::None,
            token: None,
            origin: Origin::Call,
            policy: None,
        }
    }

    /// The function's `#[delayed(...)]` policies, shared by its nodes.
    pub fn policies(&mut self, policies: &Policies) {
        self.policy = Some(Arc::clone(&policies.0));
    }

    /// Builds a pure node: its key is a hash of `path` and of the inputs
    /// passed to `hash_input` / `hash_ref`, and equal live calls share a node.
    pub fn pure(&mut self, path: &'static str) {
        self.token = Some(Token::new(path));
    }

    /// `#[delayed(register)]`: every argument becomes an input node, so
    /// that the call can be exported to a keyed graph.
    pub fn registered(&mut self) {
        self.origin = Origin::Registered;
    }

    /// An owned parameter of a registered function: a plain value becomes
    /// a literal input node.
    pub fn input_node<T: Send + Sync + 'static>(&mut self, arg: impl IntoDelayed<T>) -> Input<T> {
        Input::Dep(self.push(arg.into_delayed()))
    }

    /// Marks a join node: pure calls hash it by its parts' keys.
    pub(crate) fn joining(mut self) -> Builder {
        self.origin = Origin::Join;
        self
    }

    fn push(&mut self, node: Delayed<impl Send + Sync + 'static>) -> usize {
        self.deps.push(node.node)
    }

    pub fn input<T: Send + Sync + 'static>(&mut self, arg: impl IntoDelayed<T>) -> Input<T> {
        match arg.into_arg() {
            Arg::Value(value) => Input::Value(value),
            Arg::Node(node) => Input::Dep(self.push(node)),
        }
    }

    pub fn borrow<T: Send + Sync + 'static>(&mut self, arg: impl IntoDelayed<T>) -> Ref<T> {
        let index = self.push(arg.into_delayed());
        Ref {
            index,
            _type: PhantomData,
        }
    }

    pub fn hash_input<T: Hash + Send + Sync + 'static>(&mut self, input: &Input<T>) {
        match input {
            Input::Value(value) => self.hash_value(value),
            Input::Dep(index) => self.hash_dep::<T>(*index),
            Input::Taken => {}
        }
    }

    pub fn hash_ref<T: Hash + Send + Sync + 'static>(&mut self, input: &Ref<T>) {
        self.hash_dep::<T>(input.index);
    }

    fn hash_value<T: Hash>(&mut self, value: &T) {
        if let Some(token) = &mut self.token {
            0_u8.hash(token);
            value.hash(token);
        }
    }

    /// Literal inputs hash by value, so `square(3)` and
    /// `square(Delayed::value(3))` agree; joins (a `Vec` of nodes...) by the
    /// keys of their parts, so equal lists of the same nodes agree; other
    /// inputs hash by key.
    fn hash_dep<T: Hash + Send + Sync + 'static>(&mut self, index: usize) {
        let dep = Arc::clone(&self.deps[index]);
        if dep.core().origin == Origin::Literal {
            return self.hash_value(output_of::<T>(&*dep));
        }
        let Some(token) = &mut self.token else {
            return;
        };
        let mut parts = vec![dep];
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

    pub fn sync<T: Send + Sync + 'static>(
        self,
        mut f: impl FnMut(&mut Deps) -> T + Send + 'static,
    ) -> Delayed<T> {
        self.finish(Inline(move |deps: &mut Deps| Ok(f(deps))))
    }

    pub fn sync_result<T, E>(
        self,
        mut f: impl FnMut(&mut Deps) -> Result<T, E> + Send + 'static,
    ) -> Delayed<T>
    where
        T: Send + Sync + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.finish(Inline(move |deps: &mut Deps| f(deps).map_err(cause)))
    }

    pub fn blocking<T: Send + Sync + 'static>(
        self,
        mut f: impl FnMut(&mut Deps) -> T + Send + 'static,
    ) -> Delayed<T> {
        self.finish(Blocking(move |deps: &mut Deps| Ok(f(deps))))
    }

    pub fn blocking_result<T, E>(
        self,
        mut f: impl FnMut(&mut Deps) -> Result<T, E> + Send + 'static,
    ) -> Delayed<T>
    where
        T: Send + Sync + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.finish(Blocking(move |deps: &mut Deps| f(deps).map_err(cause)))
    }

    pub fn future<T, Fut>(self, f: impl Fn(&Deps) -> Fut + Send + 'static) -> Delayed<T>
    where
        T: Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.finish(Async(move |deps: &Deps| {
            let future = f(deps);
            async move { Ok(future.await) }
        }))
    }

    pub fn future_result<T, E, Fut>(self, f: impl Fn(&Deps) -> Fut + Send + 'static) -> Delayed<T>
    where
        T: Send + Sync + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.finish(Async(move |deps: &Deps| {
            let future = f(deps);
            async move { future.await.map_err(cause) }
        }))
    }

    fn finish<T: Send + Sync + 'static, B: Body<T>>(self, body: B) -> Delayed<T> {
        let Builder {
            name,
            deps,
            token,
            origin,
            policy,
        } = self;
        let id = match &token {
            Some(token) => KeyId::Token(token.finish128()),
            None => KeyId::fresh(),
        };
        let make = move || -> Arc<dyn Task> {
            let mut core = Core::new(name, origin, id, deps);
            if let Some(policy) = policy {
                let st = core.state_mut();
                st.priority = policy.priority.unwrap_or(UNSET);
                st.policy = Some(policy);
            }
            Arc::new(Node::new(core, body))
        };
        let node = match token {
            Some(token) if !intern::is_solo() => {
                intern::get_or_insert::<T>(token.finish128(), make)
            }
            _ => make(),
        };
        Delayed::from_task(node)
    }

    /// A node that already holds its value.
    pub(crate) fn literal<T: Send + Sync + 'static>(value: T) -> Delayed<T> {
        let core = Core::new(&"value", Origin::Literal, KeyId::fresh(), Inputs::None);
        Delayed::from_task(Arc::new(Node::<T, crate::node::Literal>::literal(
            core, value,
        )))
    }
}

/// Wraps a `FnOnce` closure for a body that a retry may call again: the
/// second call panics with a message that says why.
pub(crate) fn once<A, R>(name: &'static str, f: impl FnOnce(A) -> R) -> impl FnMut(A) -> R {
    let mut f = Some(f);
    move |arg| match f.take() {
        Some(f) => f(arg),
        None => spent(name),
    }
}

/// The panic of a `FnOnce` body asked to run again.
pub(crate) fn spent(name: &str) -> ! {
    panic!(
        "a `{name}` closure is FnOnce and ran already: it cannot run again; \
         retry a #[delayed] function or `then` instead"
    )
}

fn cause<E: Into<Box<dyn std::error::Error + Send + Sync>>>(err: E) -> Cause {
    Arc::from(err.into())
}

/// The finished inputs of a running node, as its body reads them.
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
    task: Arc<dyn Task>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> Deref for Held<T> {
    type Target = T;

    fn deref(&self) -> &T {
        output_of::<T>(&*self.task)
    }
}
