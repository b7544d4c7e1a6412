//! A million nodes deep or wide: built, computed and dropped without stack
//! overflow on a tokio worker thread (2 MiB stack), in time linear in nodes.

use delayed::{delayed, Delayed};

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed(pure)]
fn pure_inc(x: u64) -> u64 {
    x + 1
}

const MILLION: u64 = 1_000_000;

fn chain(depth: u64) -> Delayed<u64> {
    let mut node = inc(0);
    for _ in 1..depth {
        node = inc(node);
    }
    node
}

/// Runs `f` inside a task on a worker thread of a 2-worker runtime, where
/// the stack is tokio's default 2 MiB.
fn on_worker<F, Fut>(f: F) -> Fut::Output
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async move { tokio::spawn(async move { f().await }).await.unwrap() })
}

#[test]
fn million_deep_chain_computes_and_drops() {
    let value = on_worker(|| async {
        let node = chain(MILLION);
        let value = node.compute().await.unwrap();
        drop(node);
        value
    });
    assert_eq!(value, MILLION);
}

#[test]
fn million_deep_chain_that_never_ran_drops() {
    let key = on_worker(|| async {
        let node = chain(MILLION);
        let key = node.key().to_string();
        drop(node);
        key
    });
    assert!(key.starts_with("inc-"));
}

#[test]
fn deep_pure_chain_that_never_ran_drops() {
    on_worker(|| async {
        let mut node = pure_inc(0);
        for _ in 1..200_000 {
            node = pure_inc(node);
        }
        drop(node);
    });
    // Every interned entry was removed: equal calls make fresh nodes.
    assert_ne!(pure_inc(0).key(), pure_inc(1).key());
}

#[test]
fn million_leaf_fan_in() {
    let sum = on_worker(|| async {
        let leaves: Vec<_> = (0..MILLION).map(inc).collect();
        total(leaves).compute().await.unwrap()
    });
    assert_eq!(sum, (1..=MILLION).sum::<u64>());
}

#[test]
fn deep_chain_cancelled_midway_drops() {
    // A chain whose root waits on a slow async leaf: dropping the compute
    // releases a million waiting nodes without recursion.
    on_worker(|| async {
        let gate = Delayed::value(0_u64).then(|x| async move {
            std::future::pending::<()>().await;
            x
        });
        let mut node = inc(&gate);
        for _ in 1..MILLION {
            node = inc(node);
        }
        let mut compute = Box::pin(node.compute());
        assert!(futures::poll!(&mut compute).is_pending());
        drop(compute);
        drop(node);
    });
}
