//! The chain of `pipeline.rs` (its memory per node) and `instructions.rs`
//! (its instructions per node): `n` `inc` nodes, each on the one before.

use delayed::{delayed, Delayed};

#[delayed]
pub(crate) fn inc(x: u64) -> u64 {
    x + 1
}

/// A chain of `n` `inc` nodes, not computed.
pub(crate) fn build(n: u64) -> Delayed<u64> {
    let mut node: Delayed<u64> = inc(0);
    for _ in 1..n {
        node = inc(node);
    }
    node
}

/// Builds a chain of `n` `inc` nodes, computes it and drops it, inside a
/// task on the current runtime; returns its value, `n`.
pub(crate) async fn in_a_task(n: u64) -> u64 {
    tokio::spawn(async move { build(n).await.expect("the chain runs") })
        .await
        .expect("the task runs")
}
