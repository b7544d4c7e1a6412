//! The hand-written baseline of `overhead.rs` and `parallel.rs`: what one
//! would write with tokio alone. Each node is a `tokio::spawn`ed task that
//! joins its inputs with `join_all` inside `tokio::task::unconstrained`
//! (without it, tokio's cooperative budget makes a 100k fan-in a hundred
//! times slower) and is shared with `futures::future::Shared`.

use futures::future::{join_all, BoxFuture, FutureExt, Shared};

/// A node's output, awaitable by every node that takes it.
pub(crate) type Node = Shared<BoxFuture<'static, u64>>;

/// A node computing `f` of its inputs' outputs, spawned at once.
pub(crate) fn node(deps: Vec<Node>, f: impl FnOnce(&[u64]) -> u64 + Send + 'static) -> Node {
    let task = tokio::spawn(async move {
        let values = tokio::task::unconstrained(join_all(deps)).await;
        f(&values)
    });
    task.map(|result| result.expect("baseline task panicked"))
        .boxed()
        .shared()
}
