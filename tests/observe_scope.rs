//! `delayed::observe` attaches a callback to every compute started while
//! its guard lives. The registration is process-wide, so this file holds a
//! single test: no other test's computes run beside it.

use std::sync::{Arc, Mutex};

use delayed::{delayed, Callback, Graph, TaskFinished};

#[derive(Default)]
struct Seen {
    computes: Mutex<usize>,
    tasks: Mutex<Vec<String>>,
}

impl Callback for Seen {
    fn start(&self, _graph: &Graph) {
        *self.computes.lock().unwrap() += 1;
    }

    fn task_finished(&self, task: &TaskFinished) {
        self.tasks.lock().unwrap().push(task.key().to_string());
    }
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[tokio::test]
async fn a_scope_watches_every_compute_while_it_lives() {
    let seen = Arc::new(Seen::default());
    {
        let _watching = delayed::observe(seen.clone());
        add(1, 1).named("first").compute().await.unwrap();
        add(2, 2).named("second").compute().await.unwrap();
    }
    add(3, 3).named("after").compute().await.unwrap();
    assert_eq!(*seen.computes.lock().unwrap(), 2);
    assert_eq!(*seen.tasks.lock().unwrap(), ["first", "second"]);
}
