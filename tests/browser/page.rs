//! The dashboard's page in headless Chromium: it loads and shows the run's
//! tasks, follows a compute live, colours the graph by state, lists errors
//! by key; its screenshots show what they should.
//!
//! Each test starts its own browser; without Chromium and ChromeDriver it
//! says it is skipped and passes. Screenshots are kept under the target
//! folder, in `tmp/dashboard-screenshots/`.

mod common;

use common::browser::Browser;
use common::screenshot::{DONE, FAILED, RUNNING};
use common::{sensors, Pipeline, BROKEN};
use delayed::dashboard::Dashboard;
use delayed::{delayed, Delayed, Limit, Options};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// The bars of the task stream, as (key, outcome).
const BARS: &str = "return [...document.querySelectorAll('#stream-svg rect.bar')]
    .map(bar => [bar.dataset.key, bar.dataset.outcome]);";

/// The graph's nodes: key → [state, fill].
const NODES: &str = "const nodes = {};
    for (const c of document.querySelectorAll('#graph-svg circle.node'))
        nodes[c.dataset.key] = [c.dataset.state, c.getAttribute('fill')];
    return nodes;";

/// How many bars have `outcome`.
fn bars_with(bars: &Value, outcome: &str) -> usize {
    bars.as_array().map_or(0, |bars| {
        bars.iter().filter(|bar| bar[1] == outcome).count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_loads_and_shows_the_runs_tasks() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let healthy: Vec<String> = sensors(12)
        .into_iter()
        .filter(|name| name != BROKEN)
        .collect();
    let run = Pipeline::new(&healthy);
    let options = Options::new().callback(dashboard.clone());
    run.stored.compute_with(options).await.unwrap();

    browser.open(&dashboard.url()).await;
    // 11 loads, 11 cleans, analyze and store: one bar each, all done.
    let bars = browser
        .wait("24 bars", BARS, |bars| bars_with(bars, "done") == 24)
        .await;
    let keys: Vec<&str> = bars
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[0].as_str().unwrap())
        .collect();
    for key in [
        "load-sensor-01.txt",
        "load-sensor-12.txt",
        "clean-sensor-07.txt",
        "store",
    ] {
        assert!(keys.contains(&key), "no bar for {key}: {keys:?}");
    }
    let text = browser.js("return document.body.innerText").await;
    assert!(
        text.as_str().unwrap().contains("load-sensor-01.txt"),
        "the keys are written out"
    );
    browser
        .wait_progress(
            "load",
            &[("done", 11), ("failed", 0), ("waiting", 0), ("total", 11)],
        )
        .await;
    browser
        .wait_progress("store", &[("done", 1), ("total", 1)])
        .await;
    let rows = browser
        .js("return [...document.querySelectorAll('#stream-svg g.row')].map(g => g.textContent)")
        .await;
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|row| row.as_str().unwrap().starts_with("thread ")),
        "a row per thread: {rows}"
    );
    assert_eq!(
        browser
            .js("return document.getElementById('tasks-done').textContent")
            .await,
        "24"
    );

    let page = browser.screenshot("loaded").await;
    page.assert_not_blank();
    page.assert_has(DONE, 500, "done");
    let stream = browser.screenshot_of("#stream-svg", "loaded-stream").await;
    stream.assert_has(DONE, 500, "done bars in the task stream");
    assert_eq!(stream.count(FAILED), 0, "nothing failed");
    browser.close().await;
}

/// Each `step` waits for a permit; the test hands them out.
static GATE: Semaphore = Semaphore::const_new(0);
static TWO_AT_A_TIME: Limit = Limit::new("two-at-a-time", 2);

#[delayed(limit = TWO_AT_A_TIME)]
async fn step(i: u64) -> u64 {
    GATE.acquire().await.expect("the gate stays open").forget();
    i
}

#[delayed]
fn sum(steps: Vec<u64>) -> u64 {
    steps.iter().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_a_compute_while_it_runs() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    browser.open(&dashboard.url()).await;

    let steps: Vec<Delayed<u64>> = (1..=8)
        .map(|i| step(i).named(format!("step-{i:02}")))
        .collect();
    let total = sum(steps).named("sum");
    let options = Options::new().callback(dashboard.clone());
    let running = tokio::spawn(total.compute_with(options));

    // Two run (the limit), six wait, none is done: live, not from a reload.
    let before = browser
        .wait_progress(
            "step",
            &[("running", 2), ("waiting", 6), ("done", 0), ("total", 8)],
        )
        .await;
    let bars = browser
        .wait("2 running bars", BARS, |bars| {
            bars_with(bars, "running") == 2
        })
        .await;
    assert_eq!(bars_with(&bars, "done"), 0);
    let nodes = browser
        .wait("2 running nodes", NODES, |nodes| {
            nodes
                .as_object()
                .is_some_and(|nodes| nodes.values().filter(|n| n[0] == "running").count() == 2)
        })
        .await;
    assert_eq!(nodes["sum"], json!(["waiting", "#cfd6de"]));
    let first = browser
        .screenshot_of("#stream-svg", "live-first-stream")
        .await;
    first.assert_has(RUNNING, 200, "running bars");

    GATE.add_permits(3);
    let middle = browser
        .wait_progress("step", &[("done", 3), ("running", 2), ("waiting", 3)])
        .await;
    let bars = browser
        .wait("3 done bars", BARS, |bars| bars_with(bars, "done") == 3)
        .await;
    assert_eq!(bars_with(&bars, "running"), 2);
    assert!(!running.is_finished(), "the compute still runs");
    let done_then = first.count(DONE);

    GATE.add_permits(5);
    let after = browser
        .wait_progress("step", &[("done", 8), ("running", 0), ("waiting", 0)])
        .await;
    browser.wait_progress("sum", &[("done", 1)]).await;
    let bars = browser
        .wait("9 done bars", BARS, |bars| bars_with(bars, "done") == 9)
        .await;
    assert_eq!(bars.as_array().unwrap().len(), 9);
    assert_eq!(running.await.unwrap().unwrap(), 36);
    for (earlier, later) in [(&before, &middle), (&middle, &after)] {
        assert!(
            later["done"].as_u64() > earlier["done"].as_u64(),
            "{earlier} then {later}"
        );
    }
    let nodes = browser
        .wait("every node done", NODES, |nodes| {
            nodes
                .as_object()
                .is_some_and(|nodes| nodes.len() == 9 && nodes.values().all(|n| n[0] == "done"))
        })
        .await;
    assert_eq!(nodes["step-01"][1], "#2ca02c");

    let last = browser
        .screenshot_of("#stream-svg", "live-last-stream")
        .await;
    last.assert_has(DONE, 500, "done bars");
    assert!(last.count(DONE) > done_then, "the done area grew");
    browser.screenshot("live-last").await.assert_not_blank();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_shows_states_by_colour_and_errors_their_keys() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dashboard = Dashboard::serve("127.0.0.1:0").await.unwrap();
    let names = sensors(6);
    let run = Pipeline::new(&names);
    let options = Options::new().callback(dashboard.clone());
    // The good sensors first, then the whole pipeline, which fails.
    let good: Vec<Delayed<Vec<u64>>> = names
        .iter()
        .zip(&run.cleaned)
        .filter(|(name, _)| *name != BROKEN)
        .map(|(_, cleaned)| cleaned.clone())
        .collect();
    delayed::compute_with(good, options.clone()).await.unwrap();
    assert!(run.stored.compute_with(options).await.is_err());

    browser.open(&dashboard.url()).await;
    let broken = format!("load-{BROKEN}");
    let error = browser
        .wait("the error", "const li = document.querySelector('#error-list li'); return li && [li.dataset.key, li.innerText];", |e| {
            !e.is_null()
        })
        .await;
    assert_eq!(error[0], broken.as_str());
    let text = error[1].as_str().unwrap();
    assert!(
        text.contains(&broken) && text.contains("no such sensor"),
        "{text}"
    );

    // The second compute's graph: the cleans it found done (which let go
    // of their loads), and the broken sensor's path.
    let nodes = browser
        .wait("the graph", NODES, |nodes| {
            nodes.as_object().is_some_and(|n| n.len() == 9)
        })
        .await;
    for key in [broken.as_str(), "clean-sensor-04.txt", "analyze", "store"] {
        assert_eq!(nodes[key], json!(["failed", "#d62728"]), "{key}");
    }
    for key in ["clean-sensor-01.txt", "clean-sensor-06.txt"] {
        assert_eq!(nodes[key], json!(["done", "#2ca02c"]), "{key}");
    }
    browser
        .wait_progress("load", &[("done", 5), ("failed", 1), ("total", 6)])
        .await;
    browser
        .wait_progress("store", &[("not-run", 1), ("waiting", 0)])
        .await;

    let graph = browser.screenshot_of("#graph-svg", "failed-graph").await;
    graph.assert_has(DONE, 100, "done nodes");
    graph.assert_has(FAILED, 50, "failed nodes");
    let stream = browser.screenshot_of("#stream-svg", "failed-stream").await;
    stream.assert_has(FAILED, 20, "the failed bar");
    browser.screenshot("failed").await.assert_not_blank();
    browser.close().await;
}
