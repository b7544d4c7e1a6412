//! The timeline profiler: exact times under a paused clock, Chrome trace
//! JSON, and an SVG Gantt chart, for values, failures and cancellation.

use std::sync::Arc;
use std::time::Duration;

use delayed::{delayed, Delayed, Options, Outcome, Timeline};
use serde_json::Value;

#[delayed]
async fn load(ms: u64, x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    x
}

#[delayed]
async fn step(a: u64, b: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(5)).await;
    a + b
}

#[delayed]
fn fail(x: u64) -> Result<u64, std::num::ParseIntError> {
    format!("{x}!").parse()
}

#[delayed(blocking)]
fn crunch(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    x * 2
}

#[delayed(blocking)]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Two 20 ms loads in parallel, then a 5 ms step, on a paused clock.
async fn pipeline() -> Arc<Timeline> {
    let timeline = Arc::new(Timeline::new());
    let a = load(20, 1).named("load-a");
    let b = load(20, 2).named("load-b");
    let c = step(&a, &b).named("step");
    let result = c
        .compute_with(Options::new().callback(timeline.clone()))
        .await;
    assert_eq!(result.unwrap(), 3);
    timeline
}

/// The trace's events with this phase.
fn events<'a>(trace: &'a Value, phase: &str) -> Vec<&'a Value> {
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["ph"] == phase)
        .collect()
}

/// The complete event of the task with this key.
fn event<'a>(trace: &'a Value, key: &str) -> &'a Value {
    let found: Vec<_> = events(trace, "X")
        .into_iter()
        .filter(|event| event["args"]["key"] == key)
        .collect();
    assert_eq!(found.len(), 1, "one event for {key}");
    found[0]
}

/// The SVG groups of one class, by the first line of their tooltip (the key).
fn svg_task<'a, 'i>(doc: &'a roxmltree::Document<'i>, key: &str) -> roxmltree::Node<'a, 'i> {
    doc.descendants()
        .find(|node| {
            node.has_tag_name("g")
                && node
                    .attribute("class")
                    .is_some_and(|class| class.starts_with("task "))
                && node
                    .children()
                    .find(|child| child.has_tag_name("title"))
                    .and_then(|title| title.text())
                    .is_some_and(|text| text.lines().next() == Some(key))
        })
        .unwrap_or_else(|| panic!("no bar for {key}"))
}

#[tokio::test(start_paused = true)]
async fn times_are_exact_under_a_paused_clock() {
    let timeline = pipeline().await;
    let tasks = timeline.tasks();
    let got: Vec<_> = tasks
        .iter()
        .map(|task| (task.key(), task.name(), task.start(), task.end()))
        .collect();
    assert_eq!(
        got,
        [
            ("load-a", "load", ms(0), ms(20)),
            ("load-b", "load", ms(0), ms(20)),
            ("step", "step", ms(20), ms(25)),
        ]
    );
    assert!(tasks
        .iter()
        .all(|task| matches!(task.outcome(), Outcome::Done)));
    // A current-thread runtime runs everything on this thread.
    assert!(tasks.iter().all(|task| task.thread() == 0));
    assert_eq!(tasks[0].thread_name(), std::thread::current().name());
}

#[tokio::test(start_paused = true)]
async fn chrome_json_has_one_complete_event_per_task() {
    let timeline = pipeline().await;
    let trace: Value = serde_json::from_str(&timeline.to_chrome_json()).unwrap();
    assert_eq!(trace["displayTimeUnit"], "ms");

    let complete = events(&trace, "X");
    assert_eq!(complete.len(), 3);
    for (key, name, ts, dur) in [
        ("load-a", "load", 0.0, 20_000.0),
        ("load-b", "load", 0.0, 20_000.0),
        ("step", "step", 20_000.0, 5_000.0),
    ] {
        let event = event(&trace, key);
        assert_eq!(event["name"], name);
        assert_eq!(event["ts"].as_f64(), Some(ts), "{key}");
        assert_eq!(event["dur"].as_f64(), Some(dur), "{key}");
        assert_eq!(event["pid"], 1);
        assert_eq!(event["args"]["outcome"], "done");
        assert!(event["args"].get("error").is_none());
    }

    // The two loads overlap on one thread: they get a lane each, so that
    // trace viewers need not nest them.
    assert_ne!(
        event(&trace, "load-a")["tid"],
        event(&trace, "load-b")["tid"]
    );

    // Every tid used is named, and so is the process.
    let metadata = events(&trace, "M");
    assert!(metadata
        .iter()
        .any(|m| m["name"] == "process_name" && m["args"]["name"] == "delayed"));
    let thread = std::thread::current().name().unwrap().to_string();
    for event in &complete {
        let named: Vec<_> = metadata
            .iter()
            .filter(|m| m["name"] == "thread_name" && m["tid"] == event["tid"])
            .collect();
        assert_eq!(named.len(), 1);
        assert!(named[0]["args"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&thread));
    }
}

#[tokio::test(start_paused = true)]
async fn failed_and_cancelled_tasks_show_their_outcomes() {
    let timeline = Arc::new(Timeline::new());

    let bad = fail(7).named("bad \"<key>\"");
    let err = step(&bad, 1)
        .compute_with(Options::new().callback(timeline.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.key().to_string(), "bad \"<key>\"");

    let slow = load(1_000, 1).named("slow");
    let compute = slow.compute_with(Options::new().callback(timeline.clone()));
    assert!(tokio::time::timeout(ms(10), compute).await.is_err());
    // The abort is reported after the compute's own finish.
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;

    let tasks = timeline.tasks();
    assert_eq!(tasks.len(), 2, "the step never ran: {tasks:?}");
    let failed = tasks.iter().find(|t| t.name() == "fail").unwrap();
    assert!(matches!(failed.outcome(), Outcome::Failed(e) if e.is_failed()));
    let cancelled = tasks.iter().find(|t| t.key() == "slow").unwrap();
    assert!(matches!(cancelled.outcome(), Outcome::Cancelled));
    assert_eq!((cancelled.start(), cancelled.end()), (ms(0), ms(10)));

    let trace: Value = serde_json::from_str(&timeline.to_chrome_json()).unwrap();
    let bad = event(&trace, "bad \"<key>\"");
    assert_eq!(bad["args"]["outcome"], "failed");
    assert_eq!(
        bad["args"]["error"],
        "task `bad \"<key>\"` failed: invalid digit found in string"
    );
    let slow = event(&trace, "slow");
    assert_eq!(slow["args"]["outcome"], "cancelled");
    assert_eq!(slow["dur"].as_f64(), Some(10_000.0));

    let svg = timeline.to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let bad = svg_task(&doc, "bad \"<key>\"");
    assert_eq!(bad.attribute("class"), Some("task failed"));
    let title = bad.first_element_child().unwrap().text().unwrap();
    assert!(title.contains("failed: task `bad \"<key>\"` failed: invalid digit"));
    let bar = bad
        .children()
        .find(|n| n.attribute("class") == Some("bar"))
        .unwrap();
    assert_eq!(bar.attribute("stroke"), Some("#cf222e"));

    let slow = svg_task(&doc, "slow");
    assert_eq!(slow.attribute("class"), Some("task cancelled"));
    assert!(slow
        .children()
        .any(|n| n.attribute("fill") == Some("url(#delayed-hatch)")));
    assert!(slow
        .first_element_child()
        .unwrap()
        .text()
        .unwrap()
        .ends_with("cancelled"));

    let legend: Vec<_> = legend(&doc);
    assert!(legend.contains(&"failed".to_string()));
    assert!(legend.contains(&"cancelled".to_string()));
}

/// The texts of the SVG's legend.
fn legend(doc: &roxmltree::Document<'_>) -> Vec<String> {
    let legend = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("legend"))
        .unwrap();
    legend
        .children()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn svg_is_well_formed_with_a_bar_per_task_and_a_legend() {
    let timeline = pipeline().await;
    let svg = timeline.to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert_eq!(root.attribute("width"), Some("1200"));

    let bars: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("bar"))
        .collect();
    assert_eq!(bars.len(), 3);

    // Same function, same colour; another function, another.
    let fill = |key: &str| {
        svg_task(&doc, key)
            .children()
            .find(|n| n.attribute("class") == Some("bar"))
            .unwrap()
            .attribute("fill")
            .unwrap()
            .to_string()
    };
    assert_eq!(fill("load-a"), fill("load-b"));
    assert_ne!(fill("load-a"), fill("step"));

    // The step's bar starts where the loads end: 20 of 25 ms along the axis.
    let x = |key: &str, attr: &str| -> f64 {
        svg_task(&doc, key)
            .children()
            .find(|n| n.attribute("class") == Some("bar"))
            .unwrap()
            .attribute(attr)
            .unwrap()
            .parse()
            .unwrap()
    };
    let (left, load_width) = (x("load-a", "x"), x("load-a", "width"));
    let step_width = x("step", "width");
    assert!((x("step", "x") - (left + load_width)).abs() < 0.2);
    assert!((load_width / step_width - 4.0).abs() < 0.01);

    assert_eq!(legend(&doc), ["load", "step"]);
    let title = svg_task(&doc, "step").first_element_child().unwrap();
    assert_eq!(title.tag_name().name(), "title");
    assert!(title.text().unwrap().contains("20 ms → 25 ms (5 ms)"));

    // Tick labels use a 1-2-5 step in milliseconds.
    assert!(svg.contains(">0 ms</text>") && svg.contains(">25 ms</text>"));
}

#[tokio::test]
async fn an_empty_timeline_draws_a_small_valid_svg() {
    let timeline = Timeline::new();
    let svg = timeline.to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(svg.contains("no tasks"));
    let trace: Value = serde_json::from_str(&timeline.to_chrome_json()).unwrap();
    assert!(events(&trace, "X").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_tasks_on_a_multi_thread_runtime_get_tracks() {
    let timeline = Arc::new(Timeline::new());
    let parts: Vec<_> = (0..8).map(crunch).collect();
    let sum = total(parts);
    let result = sum
        .compute_with(Options::new().callback(timeline.clone()))
        .await;
    assert_eq!(result.unwrap(), 56);

    let tasks = timeline.tasks();
    // Eight crunches and the total: the list node that gathers them is the
    // crate's, not a task.
    assert_eq!(tasks.len(), 9);
    assert!(tasks.iter().all(|task| task.end() >= task.start()));
    let crunches = tasks.iter().filter(|task| task.name() == "crunch");
    assert!(crunches
        .clone()
        .all(|task| task.end() - task.start() >= ms(5)));
    let last = tasks.iter().find(|task| task.name() == "total").unwrap();
    assert!(crunches.clone().all(|task| task.end() <= last.start()));
    let tracks: std::collections::BTreeSet<_> = tasks.iter().map(|t| t.thread()).collect();
    assert!(!tracks.is_empty());
    assert_eq!(tracks.iter().copied().max().unwrap() + 1, tracks.len());

    let trace: Value = serde_json::from_str(&timeline.to_chrome_json()).unwrap();
    assert_eq!(events(&trace, "X").len(), 9);
    let svg = timeline.to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(
        doc.descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .count(),
        9
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeline_attached_twice_records_each_run_once() {
    let timeline = Arc::new(Timeline::new());
    let x = load(3, 1).named("x");
    let options = Options::new()
        .callback(timeline.clone())
        .callback(timeline.clone());
    x.compute_with(options).await.unwrap();
    let tasks = timeline.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].end(), ms(3));
}

#[tokio::test(start_paused = true)]
async fn a_task_two_watched_computes_share_is_one_run() {
    let timeline = Arc::new(Timeline::new());
    let shared = load(5, 1).named("shared");
    let first = step(&shared, 1).named("first");
    let second = step(&shared, 2).named("second");
    let (a, b) = tokio::join!(
        first.compute_with(Options::new().callback(timeline.clone())),
        second.compute_with(Options::new().callback(timeline.clone())),
    );
    assert_eq!((a.unwrap(), b.unwrap()), (2, 3));
    let keys: Vec<String> = timeline
        .tasks()
        .iter()
        .map(|t| t.key().to_string())
        .collect();
    assert_eq!(
        keys.iter().filter(|k| *k == "shared").count(),
        1,
        "{keys:?}"
    );
    assert_eq!(keys.len(), 3, "{keys:?}");
}

#[tokio::test(start_paused = true)]
async fn the_timeline_and_its_graph_show_the_calls_only() {
    let timeline = Arc::new(Timeline::new());
    let loads: Vec<_> = (1_u64..=3)
        .map(|i| load(i, Delayed::value(i)).named(format!("load-{i}")))
        .collect();
    let sum = total(loads.clone()).named("sum");
    let options = Options::new().callback(timeline.clone());
    let (all, sum) = delayed::compute_with((loads, sum), options).await.unwrap();
    assert_eq!((all, sum), (vec![1, 2, 3], 6));
    let mut keys: Vec<String> = timeline
        .tasks()
        .iter()
        .map(|t| t.key().to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["load-1", "load-2", "load-3", "sum"]);
    let graph = timeline.graph();
    let nodes: Vec<String> = graph.nodes().iter().map(|n| n.key().to_string()).collect();
    assert_eq!(nodes, ["load-1", "load-2", "load-3", "sum"]);
    let deps: Vec<String> = graph
        .get("sum")
        .unwrap()
        .deps()
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(deps, ["load-1", "load-2", "load-3"]);
}

#[tokio::test(start_paused = true)]
async fn times_count_from_the_first_compute() {
    let timeline = Arc::new(Timeline::new());
    load(4, 1)
        .compute_with(Options::new().callback(timeline.clone()))
        .await
        .unwrap();
    tokio::time::sleep(ms(10)).await;
    load(2, 1)
        .named("second")
        .compute_with(Options::new().callback(timeline.clone()))
        .await
        .unwrap();
    let second = timeline
        .tasks()
        .into_iter()
        .find(|t| t.key() == "second")
        .unwrap();
    assert_eq!((second.start(), second.end()), (ms(14), ms(16)));
}

#[tokio::test]
async fn files_are_written() {
    let timeline = Arc::new(Timeline::new());
    let x = Delayed::value(2_u64).map(|x| x * 2).named("double");
    x.compute_with(Options::new().callback(timeline.clone()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    timeline.write_json(dir.path().join("trace.json")).unwrap();
    timeline.write_svg(dir.path().join("timeline.svg")).unwrap();
    let json = std::fs::read_to_string(dir.path().join("trace.json")).unwrap();
    assert_eq!(json, timeline.to_chrome_json());
    let svg = std::fs::read_to_string(dir.path().join("timeline.svg")).unwrap();
    assert!(roxmltree::Document::parse(&svg).is_ok());
    assert!(svg.contains(">double</text>") || svg.contains("<title>double\n"));
}

#[test]
fn odd_keys_and_thread_names_are_escaped() {
    let key = "k \"quoted\" \\ <tag> & 'x'\n\u{1}\t";
    let thread = "w<\"&'>\u{7}";
    let timeline = Arc::new(Timeline::new());
    let recorder = timeline.clone();
    std::thread::Builder::new()
        .name(thread.to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let x = Delayed::value(1_u64).map(|x| x + 1).named(key);
            runtime
                .block_on(x.compute_with(Options::new().callback(recorder)))
                .unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
    let tasks = timeline.tasks();
    assert_eq!(tasks[0].key(), key);
    assert_eq!(tasks[0].thread_name(), Some(thread));

    let trace: Value = serde_json::from_str(&timeline.to_chrome_json()).unwrap();
    event(&trace, key);
    assert!(events(&trace, "M")
        .iter()
        .any(|m| m["name"] == "thread_name" && m["args"]["name"] == thread));

    let svg = timeline.to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let title = svg_task(&doc, "k \"quoted\" \\ <tag> & 'x'")
        .first_element_child()
        .unwrap();
    // XML cannot hold U+0001 or U+0007: they are replaced.
    assert!(title.text().unwrap().contains("\u{fffd}\t"));
    assert!(doc
        .descendants()
        .any(|n| n.text() == Some("w<\"&'>\u{fffd}")));
}

/// Writes sample charts to the folder `$TIMELINE_SVG_DIR`, to look at:
/// a mixed async graph on a paused clock (`async.svg`) and blocking tasks
/// on a multi-thread runtime (`threads.svg`).
#[test]
fn sample_charts() {
    let Some(dir) = std::env::var_os("TIMELINE_SVG_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let timeline = Arc::new(Timeline::new());
    paused.block_on(async {
        let loads: Vec<_> = (0..4).map(|i| load(10 + 4 * i, i)).collect();
        let steps: Vec<_> = loads.windows(2).map(|w| step(&w[0], &w[1])).collect();
        let bad = fail(1).named("parse-config");
        let _ = step(&steps[0], &bad)
            .compute_with(Options::new().callback(timeline.clone()))
            .await;
        let mut all = steps.clone();
        all.push(load(3, 9).named("late"));
        for s in &all {
            let _ = s
                .compute_with(Options::new().callback(timeline.clone()))
                .await;
        }
        let slow = load(50, 1).named("slow-fetch");
        let _ = tokio::time::timeout(
            ms(12),
            slow.compute_with(Options::new().callback(timeline.clone())),
        )
        .await;
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    });
    timeline.write_svg(dir.join("async.svg")).unwrap();
    timeline.write_json(dir.join("async.json")).unwrap();

    let threads = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let timeline = Arc::new(Timeline::new());
    threads.block_on(async {
        let parts: Vec<_> = (0..12).map(crunch).collect();
        let doubled: Vec<_> = parts.iter().map(|p| p.map(|x| x * 2)).collect();
        total(doubled)
            .compute_with(Options::new().callback(timeline.clone()))
            .await
            .unwrap();
    });
    timeline.write_svg(dir.join("threads.svg")).unwrap();
    timeline.write_json(dir.join("threads.json")).unwrap();
}
