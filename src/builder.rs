//! Building nodes: what the `#[delayed]` attribute and the combinators
//! expand to. Hidden from the docs; not a stable API.

use std::future::Future;
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::deps::{Deps, Input, Ref};
use crate::engine::guard::Payload;
use crate::engine::inputs::Inputs;
use crate::engine::make::{self, Blueprint};
use crate::engine::node::Work;
use crate::engine::policy::NodePolicy;
use crate::engine::state::Origin;
use crate::engine::work::{Async, Blocking, Inline};
use crate::error::Cause;
use crate::key::Token;
use crate::limit::Limit;
use crate::retry::Retry;
use crate::{Delayed, IntoDelayed};

/// An argument after conversion: a plain value, or a node to wait for.
#[doc(hidden)]
pub enum Converted<T> {
    Value(T),
    Node(Delayed<T>),
}

/// Collects the inputs of one node, then makes the node.
#[doc(hidden)]
pub struct Builder {
    name: &'static &'static str,
    deps: Inputs,
    token: Option<Token>,
    origin: Origin,
    policy: Option<Arc<NodePolicy>>,
    /// The first panic of an argument's `Hash`.
    panic: Option<Payload>,
}

/// The `#[delayed(limit = .., retry = .., ..)]` policies of a function:
/// made on its first call and shared by all its nodes.
#[doc(hidden)]
pub struct Policies(Arc<NodePolicy>);

impl Policies {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Policies {
        Policies(Arc::new(NodePolicy::default()))
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
            panic: None,
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

    /// Marks a node that gathers a map of nodes: internal, like a join.
    pub(crate) fn mapping(mut self) -> Builder {
        self.origin = Origin::Map;
        self
    }

    fn push(&mut self, node: Delayed<impl Send + Sync + 'static>) -> usize {
        self.deps.push(node.node)
    }

    pub fn input<T: Send + Sync + 'static>(&mut self, arg: impl IntoDelayed<T>) -> Input<T> {
        match arg.into_arg() {
            Converted::Value(value) => Input::Value(value),
            Converted::Node(node) => Input::Dep(self.push(node)),
        }
    }

    pub fn borrow<T: Send + Sync + 'static>(&mut self, arg: impl IntoDelayed<T>) -> Ref<T> {
        Ref::at(self.push(arg.into_delayed()))
    }

    pub fn hash_input<T: Hash + Send + Sync + 'static>(&mut self, input: &Input<T>) {
        match input {
            Input::Value(value) => self.hash_value(value),
            Input::Dep(index) => self.hash_dep::<T>(*index),
            Input::Taken => {}
        }
    }

    pub fn hash_ref<T: Hash + Send + Sync + 'static>(&mut self, input: &Ref<T>) {
        self.hash_dep::<T>(input.index());
    }

    /// Hashes a plain value into the key. Its `Hash` is user code: a panic
    /// fails the node (when computed), not the call.
    fn hash_value<T: Hash>(&mut self, value: &T) {
        if self.panic.is_some() {
            return;
        }
        if let Some(token) = &mut self.token {
            let hashed = catch_unwind(AssertUnwindSafe(|| {
                0_u8.hash(token);
                value.hash(token);
            }));
            if let Err(payload) = hashed {
                self.panic = Some(payload);
            }
        }
    }

    /// Literal inputs hash by value, so `square(3)` and
    /// `square(Delayed::value(3))` agree; joins (a `Vec` of nodes...) by the
    /// keys of their parts, so equal lists of the same nodes agree; other
    /// inputs hash by key.
    fn hash_dep<T: Hash + Send + Sync + 'static>(&mut self, index: usize) {
        let dep = Arc::clone(&self.deps[index]);
        if let Some(value) = make::literal_value::<T>(&dep) {
            return self.hash_value(value);
        }
        if let Some(token) = &mut self.token {
            make::hash_input_key(&dep, token);
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

    fn finish<T: Send + Sync + 'static, W: Work<T>>(self, work: W) -> Delayed<T> {
        let Builder {
            name,
            deps,
            token,
            origin,
            policy,
            panic,
        } = self;
        let blueprint = Blueprint {
            name,
            origin,
            deps,
            token: token.map(|token| token.finish128()),
            policy,
            panic,
        };
        Delayed::from_task(make::node::<T, W>(blueprint, work))
    }

    /// A node that already holds its value.
    pub(crate) fn literal<T: Send + Sync + 'static>(value: T) -> Delayed<T> {
        Delayed::from_task(make::literal(value))
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
