//! The stored-output state machine, with a fake executor and a fake store
//! in this process: outputs left in the store, read back when something
//! here wants them, a join of stored inputs, reverted outputs that make
//! their node run again, a store that loses an output while a reader reads
//! it, a placement undone when its compute ends, and the sequential
//! scheduler over stored nodes.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::hooks::{AnyOutput, Executor, HookFuture, Made, OutputStore, Placement};
use super::view::NodeView;
use crate::{Delayed, Error, Options};

/// Keeps `u64` outputs by key; can be told to lose one.
#[derive(Default)]
struct FakeStore {
    values: Mutex<HashMap<String, u64>>,
    reads: AtomicUsize,
    /// Keys whose next read finds the output gone, and reverts the node
    /// first, as a store that deletes it meanwhile would.
    lose: Mutex<HashSet<String>>,
}

impl FakeStore {
    fn delete(&self, node: &NodeView) {
        self.values.lock().unwrap().remove(&node.key().to_string());
        node.revert_stored();
    }
}

impl OutputStore for FakeStore {
    fn read(self: Arc<Self>, node: NodeView) -> HookFuture<Result<Option<AnyOutput>, Error>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.reads.fetch_add(1, Ordering::SeqCst);
            let key = node.key().to_string();
            if self.lose.lock().unwrap().remove(&key) {
                self.delete(&node);
                return Ok(None);
            }
            let value = self.values.lock().unwrap().get(&key).copied();
            Ok(value.map(|value| Box::new(value) as AnyOutput))
        })
    }
}

/// Runs a node "remotely": its output is `value(key)`; the keys in `keep`
/// leave their output in the store.
struct FakeExecutor {
    store: Arc<FakeStore>,
    keep: HashSet<String>,
    value: fn(&str) -> u64,
    attempts: Mutex<HashMap<String, usize>>,
}

impl FakeExecutor {
    fn new(store: &Arc<FakeStore>, keep: &[&str], value: fn(&str) -> u64) -> Arc<FakeExecutor> {
        Arc::new(FakeExecutor {
            store: Arc::clone(store),
            keep: keep.iter().map(|k| k.to_string()).collect(),
            value,
            attempts: Mutex::new(HashMap::new()),
        })
    }

    fn attempts(&self, key: &str) -> usize {
        self.attempts.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    fn place<T>(self: &Arc<Self>, node: &Delayed<T>) {
        node.view()
            .run_elsewhere(Some(Arc::clone(self) as Arc<dyn Executor>));
    }
}

impl Executor for FakeExecutor {
    fn attempt(
        self: Arc<Self>,
        node: NodeView,
        _: u32,
    ) -> HookFuture<Result<Made<AnyOutput>, Error>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let key = node.key().to_string();
            *self
                .attempts
                .lock()
                .unwrap()
                .entry(key.clone())
                .or_default() += 1;
            let value = (self.value)(&key);
            if self.keep.contains(&key) {
                self.store.values.lock().unwrap().insert(key, value);
                let store: Arc<dyn OutputStore> = Arc::clone(&self.store) as _;
                Ok(Made::Stored(Some(store)))
            } else {
                Ok(Made::Value(Box::new(value) as AnyOutput))
            }
        })
    }
}

/// A key's value: 10 for `a`, 20 for `b`, 100 for anything else.
fn by_key(key: &str) -> u64 {
    match key {
        "a" => 10,
        "b" => 20,
        _ => 100,
    }
}

/// A remote node: its work here would give 0, so a value shows where it
/// ran.
fn remote(name: &'static str) -> Delayed<u64> {
    Delayed::lazy(|| 0_u64).named(name)
}

#[tokio::test]
async fn a_stored_output_that_only_remote_nodes_read_is_never_read_here() {
    let store = Arc::new(FakeStore::default());
    let executor = FakeExecutor::new(&store, &["a"], by_key);
    let a = remote("a");
    let reader = a.map(|_| 0_u64).named("reader");
    executor.place(&a);
    executor.place(&reader);
    assert_eq!(reader.compute().await.unwrap(), 100);
    assert_eq!(store.reads.load(Ordering::SeqCst), 0);
    assert_eq!(executor.attempts("a"), 1);
}

#[tokio::test]
async fn a_stored_output_wanted_here_is_read_back_not_run_again() {
    let store = Arc::new(FakeStore::default());
    let executor = FakeExecutor::new(&store, &["a"], by_key);
    let a = remote("a");
    executor.place(&a);
    let local = a.map(|x| x + 1);
    assert_eq!(local.compute().await.unwrap(), 11);
    assert_eq!(a.compute().await.unwrap(), 10);
    assert_eq!(executor.attempts("a"), 1);
    // Read back once, by the local reader; then the output is here.
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_stored_root_is_read_back_for_its_compute() {
    let store = Arc::new(FakeStore::default());
    let executor = FakeExecutor::new(&store, &["a"], by_key);
    let a = remote("a");
    executor.place(&a);
    assert_eq!(a.compute().await.unwrap(), 10);
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_join_of_stored_inputs_is_read_back_through_the_join() {
    let store = Arc::new(FakeStore::default());
    let executor = FakeExecutor::new(&store, &["a", "b"], by_key);
    let (a, b) = (remote("a"), remote("b"));
    executor.place(&a);
    executor.place(&b);
    let sum = crate::join(vec![a.clone(), b.clone()]).map(|xs| xs.iter().sum::<u64>());
    assert_eq!(sum.compute().await.unwrap(), 30);
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    assert_eq!((executor.attempts("a"), executor.attempts("b")), (1, 1));
}

#[tokio::test]
async fn a_reverted_output_runs_its_node_again_when_wanted() {
    let store = Arc::new(FakeStore::default());
    let executor = FakeExecutor::new(&store, &["a"], by_key);
    let a = remote("a");
    executor.place(&a);
    let first = a.map(|_| 0_u64).named("first");
    executor.place(&first);
    assert_eq!(first.compute().await.unwrap(), 100);
    store.delete(&a.view());
    assert_eq!(a.compute().await.unwrap(), 10);
    assert_eq!(executor.attempts("a"), 2);
}

#[tokio::test]
async fn an_output_lost_while_a_reader_reads_it_is_made_again() {
    let store = Arc::new(FakeStore::default());
    let executor = FakeExecutor::new(&store, &["a"], by_key);
    let a = remote("a");
    executor.place(&a);
    store.lose.lock().unwrap().insert("a".to_string());
    let local = a.map(|x| x * 2);
    assert_eq!(local.compute().await.unwrap(), 20);
    // The first output was lost on its read: `a` ran again, and its second
    // output was read back.
    assert_eq!(executor.attempts("a"), 2);
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_sequential_scheduler_reads_stored_inputs_back() {
    let store = Arc::new(FakeStore::default());
    let executor = FakeExecutor::new(&store, &["a"], by_key);
    let a = remote("a");
    executor.place(&a);
    store.lose.lock().unwrap().insert("a".to_string());
    let local = a.map(|x| x + 5);
    let out = local.compute_with(Options::new().sequential()).await;
    assert_eq!(out.unwrap(), 15);
    assert_eq!(executor.attempts("a"), 2);
}

/// Places every node named `remote-*` on its executor, for one compute.
struct FakePlacement(Arc<FakeExecutor>);

struct Placed(Vec<NodeView>, Arc<dyn Executor>);

impl Drop for Placed {
    fn drop(&mut self) {
        for node in &self.0 {
            node.leave(&self.1);
        }
    }
}

impl Placement for FakePlacement {
    fn place(&self, root: &NodeView) -> Box<dyn Any + Send> {
        let executor = Arc::clone(&self.0) as Arc<dyn Executor>;
        let mut placed = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(node) = stack.pop() {
            if node.key().to_string().starts_with("remote-") {
                node.run_elsewhere(Some(Arc::clone(&executor)));
                placed.push(node.clone());
            }
            stack.extend(node.inputs());
        }
        Box::new(Placed(placed, executor))
    }
}

#[tokio::test]
async fn a_placement_lasts_as_long_as_its_compute() {
    let store = Arc::new(FakeStore::default());
    let executor = FakeExecutor::new(&store, &[], by_key);
    let placement = Arc::new(FakePlacement(Arc::clone(&executor)));
    let first = remote("remote-1");
    let options = Options::new().placed(placement);
    assert_eq!(first.compute_with(options).await.unwrap(), 100);
    assert_eq!(executor.attempts("remote-1"), 1);
    // After the compute, a new node of the same name runs here.
    let second = remote("remote-2");
    assert!(!second
        .view()
        .runs_on(&(Arc::clone(&executor) as Arc<dyn Executor>)));
    assert!(!first.view().runs_on(&(executor as Arc<dyn Executor>)));
    assert_eq!(second.compute().await.unwrap(), 0);
}
