//! The dashboard's routes without a browser: `/` is one self-contained
//! page, `/snapshot` the state as JSON, `/events` the changes as
//! server-sent events; what it keeps is bounded; it stops when told or
//! dropped.

mod common;

use std::time::{Duration, Instant};

use common::http::{self, Events};
use common::{sensors, Pipeline, BROKEN, DEADLINE};
use delayed::dashboard::Dashboard;
use delayed::{Delayed, Options};
use serde_json::Value;

/// The keys of the tasks of `snapshot` made by `function`.
fn keys_of(snapshot: &Value, function: &str) -> Vec<String> {
    let mut keys: Vec<String> = snapshot["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|task| task["name"] == function)
        .map(|task| task["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

/// The progress entry of `function`.
fn function<'a>(snapshot: &'a Value, name: &str) -> &'a Value {
    snapshot["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no function {name}: {snapshot:#}"))
}

/// The state of the node `key` of the snapshot's graph.
fn state_of<'a>(snapshot: &'a Value, key: &str) -> &'a Value {
    let nodes = snapshot["graph"]["nodes"].as_array().unwrap();
    &nodes
        .iter()
        .find(|n| n["key"] == key)
        .unwrap_or_else(|| panic!("no node {key}"))["state"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_one_file_that_needs_nothing_else() {
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let page = http::get(dashboard.addr(), "/").await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.body.contains("<title>delayed dashboard</title>"));
    assert!(page.body.contains("new EventSource(\"/events\")"));
    assert!(page.body.contains("fetch(\"/snapshot\""));
    for outside in ["http:", "https:", "src=", "<link", "@import"] {
        assert!(
            !page.body.contains(outside),
            "the page loads something from outside: {outside}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_has_the_runs_tasks_progress_and_graph() {
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let run = Pipeline::new(&sensors(3));
    let options = Options::new().callback(dashboard.clone());
    assert!(run
        .stored
        .compute_with(options)
        .await
        .unwrap()
        .starts_with("total="));

    let response = http::get(dashboard.addr(), "/snapshot").await;
    assert_eq!(response.header("content-type"), Some("application/json"));
    let snapshot: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(
        keys_of(&snapshot, "load"),
        [
            "load-sensor-01.txt",
            "load-sensor-02.txt",
            "load-sensor-03.txt"
        ]
    );
    assert_eq!(keys_of(&snapshot, "store"), ["store"]);
    let tasks = snapshot["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 8, "3 loads, 3 cleans, analyze and store");
    for task in tasks {
        assert_eq!(task["outcome"], "done", "{task}");
        assert!(task["end"].as_f64().unwrap() >= task["start"].as_f64().unwrap());
        let row = task["thread"].as_u64().unwrap() as usize;
        assert!(
            row < snapshot["threads"].as_array().unwrap().len(),
            "{task}"
        );
        assert!(task["worker"].is_null());
    }
    let load = function(&snapshot, "load");
    assert_eq!(
        (load["total"].as_u64(), load["done"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        (load["waiting"].as_u64(), load["running"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(snapshot["computes"]["done"], 1);
    assert_eq!(snapshot["computes"]["running"], 0);

    let nodes = snapshot["graph"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 8);
    assert_eq!(snapshot["graph"]["total"], 8);
    assert!(
        nodes.iter().all(|node| node["state"] == "done"),
        "{nodes:#?}"
    );
    let store = nodes.iter().find(|n| n["key"] == "store").unwrap();
    let analyze = &nodes[store["deps"][0].as_u64().unwrap() as usize];
    assert_eq!(analyze["key"], "analyze");
    assert_eq!(analyze["deps"].as_array().unwrap().len(), 3);
    assert!(snapshot["errors"].as_array().unwrap().is_empty());
    assert!(snapshot["workers"].is_null(), "no cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_is_kept_with_its_key_and_its_dependents_fail() {
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let run = Pipeline::new(&sensors(5));
    let options = Options::new().callback(dashboard.clone());
    let err = run.stored.compute_with(options).await.unwrap_err();
    assert_eq!(err.key().to_string(), format!("load-{BROKEN}"));

    let snapshot = http::snapshot(dashboard.addr()).await;
    let errors = snapshot["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["key"], format!("load-{BROKEN}"));
    assert_eq!(errors[0]["name"], "load");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("no such sensor: {BROKEN}")),
        "{message}"
    );
    assert_eq!(state_of(&snapshot, &format!("load-{BROKEN}")), "failed");
    // They never run: failed in the graph, "not run" in the counts.
    for key in [&format!("clean-{BROKEN}"), "analyze", "store"] {
        assert_eq!(state_of(&snapshot, key), "failed", "{key}");
    }
    assert_eq!(function(&snapshot, "load")["failed"], 1);
    assert_eq!(function(&snapshot, "store")["not_run"], 1);
    assert_eq!(function(&snapshot, "store")["waiting"], 0);
    assert_eq!(snapshot["computes"]["failed"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_each_task_as_it_starts_and_ends() {
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let mut events = Events::open(dashboard.addr()).await;
    assert!(
        events.content_type.starts_with("text/event-stream"),
        "{}",
        events.content_type
    );

    let run = Pipeline::new(&sensors(2));
    let options = Options::new().callback(dashboard.clone());
    run.stored.compute_with(options).await.unwrap();
    let seen = events.until(|event| event["type"] == "finish").await;

    let types: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "graph", "{types:?}");
    assert_eq!(seen[0]["graph"]["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(
        types.iter().filter(|t| **t == "started").count(),
        6,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "finished").count(),
        6,
        "{types:?}"
    );
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one number per change: {seqs:?}"
    );
    let finished = seen
        .iter()
        .find(|e| e["type"] == "finished" && e["task"]["key"] == "load-sensor-01.txt")
        .expect("the first load ends");
    assert_eq!(finished["task"]["outcome"], "done");
    assert_eq!(finished["function"]["name"], "load");
    assert!(
        !finished["graph"].as_array().unwrap().is_empty(),
        "its node changes state"
    );
    assert_eq!(seen.last().unwrap()["computes"]["done"], 1);

    // The snapshot holds exactly the changes sent so far.
    let snapshot = http::snapshot(dashboard.addr()).await;
    assert_eq!(snapshot["seq"], seen.last().unwrap()["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_it_keeps_is_bounded() {
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let many: Vec<Delayed<u64>> = (0..10_500_u64)
        .map(|i| Delayed::value(i).map(|x| x + 1))
        .collect();
    let options = Options::new().callback(dashboard.clone());
    delayed::compute_with(many, options).await.unwrap();

    let snapshot = http::snapshot(dashboard.addr()).await;
    assert_eq!(snapshot["tasks"].as_array().unwrap().len(), 10_000);
    assert_eq!(snapshot["capacity"], 10_000);
    assert_eq!(snapshot["evicted"], 500);
    assert_eq!(
        function(&snapshot, "map")["done"],
        10_500,
        "the counts count them all"
    );
    assert_eq!(snapshot["graph"]["nodes"].as_array().unwrap().len(), 2_000);
    assert_eq!(snapshot["graph"]["total"], 10_500);
}

/// Waits until nothing listens on `addr` any more.
async fn wait_until_closed(addr: std::net::SocketAddr) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(start.elapsed() < DEADLINE, "{addr} still accepts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_streams_and_the_server() {
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let addr = dashboard.addr();
    let mut events = Events::open(addr).await;
    dashboard.shutdown();
    assert!(events.next().await.is_none(), "the stream ends");
    wait_until_closed(addr).await;
    // The dashboard still hears computes, at no harm to them.
    let x = Delayed::value(1_u64).map(|x| x + 1);
    assert_eq!(
        x.compute_with(Options::new().callback(dashboard))
            .await
            .unwrap(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_stops_the_server() {
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let addr = dashboard.addr();
    let watching = delayed::observe(dashboard.clone());
    drop(dashboard);
    // The scope holds it: it still serves.
    assert_eq!(http::get(addr, "/snapshot").await.status, 200);
    let mut events = Events::open(addr).await;
    drop(watching);
    assert!(events.next().await.is_none(), "the stream ends");
    wait_until_closed(addr).await;
}
