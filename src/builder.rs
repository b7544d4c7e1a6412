//! Building nodes: what the `#[delayed]` attribute and the combinators
//! expand to. Hidden from the docs; not a stable API.

use std::future::Future;
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::args::{Cx, Leaf, Shape};
use crate::engine::deps::{Deps, Input, Ref};
use crate::engine::inputs::Inputs;
use crate::engine::make::{self, Blueprint};
use crate::engine::node::Work;
use crate::engine::policy::NodePolicy;
use crate::engine::state::Origin;
use crate::engine::work::{Async, Blocking, Inline};
use crate::error::Cause;
use crate::limit::Limit;
use crate::retry::Retry;
use crate::{Delayed, IntoArg, IntoDelayed};

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
    /// The arguments' contribution to the key: a pure hash, a label, a
    /// panic of an argument's `Hash`.
    cx: Cx,
    origin: Origin,
    policy: Option<Arc<NodePolicy>>,
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

    /// An extension's description of the function, carried on its nodes
    /// (`#[delayed(cache)]`).
    pub fn mark(mut self, mark: Arc<dyn std::any::Any + Send + Sync>) -> Policies {
        Arc::make_mut(&mut self.0).mark = Some(mark);
        self
    }

    /// `#[delayed(pool = "gpu")]`.
    pub fn pool(mut self, pool: &'static str) -> Policies {
        Arc::make_mut(&mut self.0).pool = Some(pool.into());
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
            cx: Cx::new(),
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
        self.cx.pure(path);
    }

    /// Feeds more of the function's identity into a pure key, such as a
    /// method's `Self` type.
    pub fn hash_seed(&mut self, seed: &'static str) {
        self.cx.seed(seed);
    }

    /// Lets the key read as the call (`fetch-77`) when every argument is a
    /// small printable value.
    pub fn labeled(&mut self) {
        self.cx.labeled();
    }

    /// An owned parameter of shape `shape`: plain values move into the
    /// body, anything holding nodes becomes an input.
    pub fn arg<T, S>(&mut self, arg: impl IntoArg<T, S>, shape: &S) -> Input<T>
    where
        T: Send + Sync + 'static,
        S: Shape<T>,
    {
        match arg.convert(shape, &mut self.cx) {
            Converted::Value(value) => Input::Value(value),
            Converted::Node(node) => Input::Dep(self.push(node)),
        }
    }

    /// A borrowed parameter of shape `shape`: always an input node.
    pub fn arg_ref<T, S>(&mut self, arg: impl IntoArg<T, S>, shape: &S) -> Ref<T>
    where
        T: Send + Sync + 'static,
        S: Shape<T>,
    {
        Ref::at(self.arg_index(arg, shape))
    }

    /// An owned parameter of a registered function: always an input node,
    /// so that the call can be exported.
    pub fn arg_node<T, S>(&mut self, arg: impl IntoArg<T, S>, shape: &S) -> Input<T>
    where
        T: Send + Sync + 'static,
        S: Shape<T>,
    {
        Input::Dep(self.arg_index(arg, shape))
    }

    fn arg_index<T, S>(&mut self, arg: impl IntoArg<T, S>, shape: &S) -> usize
    where
        T: Send + Sync + 'static,
        S: Shape<T>,
    {
        let node = match arg.convert(shape, &mut self.cx) {
            Converted::Value(value) => Delayed::value(value),
            Converted::Node(node) => node,
        };
        self.push(node)
    }

    /// Feeds a node's key into a pure key.
    pub(crate) fn hash_node<T>(&mut self, node: &Delayed<T>) {
        self.cx.node(node);
    }

    /// A part of a join: its key is made of its parts' keys.
    pub(crate) fn part<T: Send + Sync + 'static>(&mut self, node: Delayed<T>) -> usize {
        self.cx.node(&node);
        self.push(node)
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

    /// Marks a join node, hidden in graphs.
    pub(crate) fn joining(mut self) -> Builder {
        self.origin = Origin::Join;
        self
    }

    /// Marks a join of the nodes given to `part`: its key is a hash of
    /// theirs, so equal joins of the same nodes are one node.
    pub(crate) fn joining_parts(mut self, seed: &'static str) -> Builder {
        self.origin = Origin::Join;
        self.cx.pure(seed);
        self
    }

    pub(crate) fn push(&mut self, node: Delayed<impl Send + Sync + 'static>) -> usize {
        self.deps.push(node.node)
    }

    /// An owned input, hashed (if at all) with `hash_input`.
    pub fn input<T: Send + Sync + 'static>(&mut self, arg: impl IntoArg<T>) -> Input<T> {
        match self.cx.quiet(|cx| arg.convert(&Leaf::new(), cx)) {
            Converted::Value(value) => Input::Value(value),
            Converted::Node(node) => Input::Dep(self.push(node)),
        }
    }

    /// A borrowed input, hashed (if at all) with `hash_ref`.
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

    /// Hashes a plain value into the key with `Hash`. It is user code: a
    /// panic fails the node (when computed), not the call.
    fn hash_value<T: Hash>(&mut self, value: &T) {
        self.cx
            .value(Some(|value: &T, tokens| value.hash(tokens)), value);
    }

    /// Literal inputs hash by value, so `square(3)` and
    /// `square(Delayed::value(3))` agree; other inputs hash by key.
    fn hash_dep<T: Hash + Send + Sync + 'static>(&mut self, index: usize) {
        let dep = Arc::clone(&self.deps[index]);
        match make::literal_value::<T>(&dep) {
            Some(value) => self.hash_value(value),
            None => self.cx.node(&Delayed::<T>::from_task(dep)),
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
            cx,
            origin,
            policy,
        } = self;
        let (token, label, panic) = cx.finish();
        let blueprint = Blueprint {
            name,
            origin,
            deps,
            token,
            label,
            policy,
            panic,
        };
        Delayed::from_task(make::node::<T, W>(blueprint, work))
    }

    /// A node that already holds its value.
    pub(crate) fn literal<T: Send + Sync + 'static>(value: T) -> Delayed<T> {
        Delayed::from_task(make::literal(value, None))
    }

    /// A node that holds its value, keyed by it: equal live values are one
    /// node. A panic of the value's `Tokenize` fails the node.
    pub(crate) fn pure_literal<T: crate::Tokenize + Send + Sync + 'static>(value: T) -> Delayed<T> {
        let mut tokens = crate::Tokenizer::seeded("delayed::value");
        match catch_unwind(AssertUnwindSafe(|| value.tokenize(&mut tokens))) {
            Ok(()) => Delayed::from_task(make::literal(value, Some(tokens.finish128()))),
            Err(payload) => Delayed::from_task(make::failed_literal::<T>(payload)),
        }
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
