//! A keyed get under an `observe` scope: its callbacks hear one `start`
//! and one `finish` per get, a value key's get included.
//!
//! `observe` scopes reach every compute in the process, so this file holds
//! one test, and nothing else computes while it runs.

use std::sync::{Arc, Mutex};

use delayed::keyed::{get, get_many, KeyedGraph};
use delayed::{delayed, Callback, Error, Graph};
use serde_json::json;

#[delayed(register)]
fn inc(x: u64) -> u64 {
    x + 1
}

/// Counts what the scope's callbacks hear.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<&'static str>>>);

impl Callback for Heard {
    fn start(&self, _: &Graph) {
        self.0.lock().unwrap().push("start");
    }

    fn finish(&self, result: Result<(), &Error>) {
        self.0
            .lock()
            .unwrap()
            .push(if result.is_ok() { "finish" } else { "failed" });
    }
}

#[tokio::test]
async fn a_keyed_get_is_one_compute_that_starts_and_finishes() {
    let registry = delayed::registry![inc];
    let graph = KeyedGraph::from_json(
        &json!({
            "x": {"value": 1},
            "alias": {"ref": "x"},
            "a": {"fn": "inc", "args": [{"ref": "x"}]},
            "b": {"fn": "inc", "args": [{"ref": "a"}]}
        })
        .to_string(),
    )
    .unwrap();
    let heard = Heard::default();
    let scope = delayed::observe(heard.clone());

    // A value key, directly and through an alias.
    assert_eq!(get(&graph, &registry, "x").await.unwrap(), 1);
    assert_eq!(*heard.0.lock().unwrap(), ["start", "finish"]);
    assert_eq!(get(&graph, &registry, "alias").await.unwrap(), 1);
    assert_eq!(heard.0.lock().unwrap().len(), 4);

    // Several keys: one compute.
    heard.0.lock().unwrap().clear();
    let out = get_many(&graph, &registry, &["a", "b", "x"]).await.unwrap();
    assert_eq!(out, [2, 3, 1]);
    assert_eq!(*heard.0.lock().unwrap(), ["start", "finish"]);
    drop(scope);
}
