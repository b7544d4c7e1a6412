//! `delayed::observe` and nested computes: a compute started inside a
//! task's body is not watched by a scope unless the scope asks for it
//! (`Observing::including_nested`). The registration is process-wide, so
//! this file holds a single test: no other test's computes run beside it.

use std::sync::{Arc, Mutex};

use delayed::{delayed, Callback, Graph, Options, TaskFinished};

/// What a callback saw: the graphs computes started with, by their keys,
/// and the tasks that finished.
#[derive(Default)]
struct Seen {
    starts: Mutex<Vec<Vec<String>>>,
    tasks: Mutex<Vec<String>>,
}

impl Seen {
    fn starts(&self) -> Vec<Vec<String>> {
        self.starts.lock().unwrap().clone()
    }

    fn tasks(&self) -> Vec<String> {
        let mut tasks = self.tasks.lock().unwrap().clone();
        tasks.sort();
        tasks
    }
}

impl Callback for Seen {
    fn start(&self, graph: &Graph) {
        let keys = graph.nodes().iter().map(|n| n.key().to_string()).collect();
        self.starts.lock().unwrap().push(keys);
    }

    fn task_finished(&self, task: &TaskFinished) {
        self.tasks.lock().unwrap().push(task.key().to_string());
    }
}

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

/// An async task that computes a graph of its own.
#[delayed]
async fn outer(x: u64) -> u64 {
    inc(x).named("inner").compute().await.unwrap()
}

/// A blocking task that computes a graph of its own.
#[delayed(blocking)]
fn outer_blocking(x: u64) -> u64 {
    inc(x).named("inner-blocking").compute_blocking().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_computes_are_watched_only_when_asked_for() {
    let top_level = Arc::new(Seen::default());
    let every = Arc::new(Seen::default());
    let explicit = Arc::new(Seen::default());
    {
        let _top = delayed::observe(top_level.clone());
        let _every = delayed::observe(every.clone()).including_nested();
        let both = inc(outer(1).named("outer")).named("top");
        let blocking = outer_blocking(10).named("outer-blocking");
        let options = Options::new().callback(explicit.clone());
        let (a, b) = delayed::compute_with((both, blocking), options)
            .await
            .unwrap();
        assert_eq!((a, b), (3, 11));
    }

    // As in dask: the scope sees the compute that was started, and its
    // tasks, not the graphs its tasks computed inside their bodies.
    assert_eq!(
        top_level.starts(),
        [vec!["outer", "top", "outer-blocking"]],
        "{:?}",
        top_level.starts()
    );
    assert_eq!(top_level.tasks(), ["outer", "outer-blocking", "top"]);

    // Asked for, it sees the nested computes too.
    let mut starts = every.starts();
    starts.sort();
    assert_eq!(
        starts,
        [
            vec!["inner"],
            vec!["inner-blocking"],
            vec!["outer", "top", "outer-blocking"],
        ]
    );
    assert_eq!(
        every.tasks(),
        ["inner", "inner-blocking", "outer", "outer-blocking", "top"]
    );

    // A callback given to the compute itself watches that compute only.
    assert_eq!(explicit.starts().len(), 1);
    assert_eq!(explicit.tasks(), ["outer", "outer-blocking", "top"]);

    // Outside a task, a compute is not nested: watched as before.
    let after = Arc::new(Seen::default());
    {
        let _after = delayed::observe(after.clone());
        inc(1).named("plain").compute().await.unwrap();
    }
    assert_eq!(after.starts(), [vec!["plain"]]);
}
