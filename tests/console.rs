//! Task names for tokio-console. Built with `--cfg tokio_unstable`, every
//! task the crate spawns carries a name: a node's task its key and
//! function. tokio-console reads the name from the `runtime.spawn` span
//! tokio opens for each task, and so do these tests.
//!
//! ```text
//! RUSTFLAGS="--cfg tokio_unstable" cargo test --test console
//! ```
//!
//! Without that cfg this file is empty.
#![cfg(tokio_unstable)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use delayed::{delayed, Delayed, Limit};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::Registry;

/// The names of the tasks spawned while it is the default subscriber.
#[derive(Clone, Default)]
struct Names(Arc<Mutex<Vec<String>>>);

impl Names {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct Name(Option<String>);

impl Visit for Name {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "task.name" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "task.name" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

impl<S: Subscriber> Layer<S> for Names {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _cx: Context<'_, S>) {
        if attrs.metadata().name() != "runtime.spawn" {
            return;
        }
        let mut name = Name(None);
        attrs.record(&mut name);
        let name = name.0.filter(|name| !name.is_empty());
        self.0
            .lock()
            .unwrap()
            .push(name.unwrap_or_else(|| "<anonymous>".to_string()));
    }
}

fn watching() -> (Names, tracing::subscriber::DefaultGuard) {
    let names = Names::default();
    let subscriber = Registry::default().with(names.clone());
    (names, tracing::subscriber::set_default(subscriber))
}

#[delayed]
async fn load(name: String) -> usize {
    tokio::time::sleep(Duration::from_millis(10)).await;
    name.len()
}

#[delayed(blocking)]
fn parse(n: &usize) -> usize {
    n * 2
}

#[delayed]
fn total(xs: Vec<usize>) -> usize {
    xs.iter().sum()
}

static API: Limit = Limit::new("api", 1);

#[delayed(limit = API)]
async fn fetch(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(10)).await;
    id
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_async_task_is_named_for_its_key_and_function() {
    let (names, _default) = watching();
    let n = load("sensor-01.txt".to_string())
        .named("load-sensor-01.txt")
        .compute()
        .await
        .unwrap();
    assert_eq!(n, 13);
    let names = names.all();
    assert!(
        names.iter().any(|n| n == "load-sensor-01.txt (load)"),
        "{names:?}"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_task_under_a_limit_is_named_too() {
    let (names, _default) = watching();
    let all: Vec<_> = (1..=2)
        .map(|i| fetch(i).named(format!("fetch-{i}")))
        .collect();
    assert_eq!(delayed::compute(all).await.unwrap(), [1, 2]);
    let names = names.all();
    for key in ["fetch-1 (fetch)", "fetch-2 (fetch)"] {
        assert!(names.iter().any(|n| n == key), "{key} in {names:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_task_of_the_crate_is_anonymous() {
    let (names, _default) = watching();
    // A task spawned by hand is anonymous: the check below can fail.
    tokio::spawn(async {}).await.unwrap();
    assert_eq!(names.all(), ["<anonymous>"]);
    names.0.lock().unwrap().clear();
    let loads: Vec<_> = ["a", "bb", "ccc"]
        .iter()
        .map(|s| load(s.to_string()))
        .collect();
    let parsed: Vec<Delayed<usize>> = loads.iter().map(parse).collect();
    assert_eq!(total(parsed).compute().await.unwrap(), 12);
    let names = names.all();
    assert!(!names.is_empty());
    assert!(
        names.iter().all(|n| n != "<anonymous>"),
        "every task has a name: {names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.ends_with(" (load)")).count(),
        3,
        "{names:?}"
    );
}

#[delayed(cache)]
fn cube(x: u64) -> u64 {
    x * x * x
}

#[tokio::test(flavor = "current_thread")]
async fn the_cache_files_work_is_named_too() {
    let dir = tempfile::tempdir().unwrap();
    let cache = delayed::cache::Cache::dir(dir.path()).unwrap();
    let options = || delayed::Options::new().cache(&cache);
    let (names, _default) = watching();
    assert_eq!(cube(3).compute_with(options()).await.unwrap(), 27);
    // Again: read back from the directory, on the blocking pool.
    assert_eq!(cube(3).compute_with(options()).await.unwrap(), 27);
    assert_eq!(cache.stats().hits, 1);
    let names = names.all();
    assert!(names.iter().any(|n| n == "delayed cache file"), "{names:?}");
    assert!(
        names.iter().all(|n| n != "<anonymous>"),
        "every task has a name: {names:?}"
    );
}
