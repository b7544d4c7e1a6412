//! Callbacks: start with the graph, each task's start and end with its
//! outcome, and finish, in order, for values, failures and cancellation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::{add, fail, nap};
use delayed::{Callback, Graph, Options, Outcome, TaskFinished, TaskStarted};

/// Records every call as a line.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl Callback for Recorder {
    fn start(&self, graph: &Graph) {
        self.push(format!("start {}", graph.nodes().len()));
    }

    fn task_started(&self, task: &TaskStarted) {
        self.push(format!("started {}", task.key()));
    }

    fn task_finished(&self, task: &TaskFinished) {
        let outcome = match task.outcome() {
            Outcome::Done => "done".to_string(),
            Outcome::Failed(err) => format!("failed: {err}"),
            Outcome::Cancelled => "cancelled".to_string(),
            _ => "other".to_string(),
        };
        self.push(format!("finished {} {outcome}", task.key()));
    }

    fn finish(&self, result: Result<(), &delayed::Error>) {
        match result {
            Ok(()) => self.push("finish ok".to_string()),
            Err(err) => self.push(format!("finish error: {err}")),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn calls_come_in_order_with_durations() {
    let recorder = Arc::new(Recorder::default());
    let a = nap(10, 1).named("a");
    let b = add(&a, 2).named("b");
    let result = b
        .compute_with(Options::new().callback(recorder.clone()))
        .await;
    assert_eq!(result.unwrap(), 3);
    assert_eq!(
        recorder.lines(),
        [
            "start 2",
            "started a",
            "finished a done",
            "started b",
            "finished b done",
            "finish ok"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn durations_are_measured() {
    #[derive(Default)]
    struct Took(Mutex<Vec<Duration>>);
    impl Callback for Took {
        fn task_finished(&self, task: &TaskFinished) {
            self.0.lock().unwrap().push(task.elapsed());
        }
    }
    let took = Arc::new(Took::default());
    nap(250, 1)
        .compute_with(Options::new().callback(took.clone()))
        .await
        .unwrap();
    assert_eq!(*took.0.lock().unwrap(), [Duration::from_millis(250)]);
}

#[tokio::test]
async fn a_failure_reports_the_failed_task_and_skips_its_dependents() {
    let recorder = Arc::new(Recorder::default());
    let bad = fail(1).named("bad");
    let top = add(&bad, 1).named("top");
    assert!(top
        .compute_with(Options::new().callback(recorder.clone()))
        .await
        .is_err());
    assert_eq!(
        recorder.lines(),
        [
            "start 2",
            "started bad",
            "finished bad failed: task `bad` failed",
            "finish error: task `bad` failed",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_compute_reports_cancelled_tasks() {
    let recorder = Arc::new(Recorder::default());
    let slow = nap(1_000, 1).named("slow");
    let compute = slow.compute_with(Options::new().callback(recorder.clone()));
    assert!(tokio::time::timeout(Duration::from_millis(10), compute)
        .await
        .is_err());
    tokio::task::yield_now().await;
    assert_eq!(
        recorder.lines(),
        [
            "start 1",
            "started slow",
            "finish error: task `slow` was cancelled",
            "finished slow cancelled",
        ]
    );
}

#[tokio::test]
async fn each_compute_sees_only_its_own_tasks() {
    let first = Arc::new(Recorder::default());
    let second = Arc::new(Recorder::default());
    let a = add(1, 1).named("a");
    let b = add(2, 2).named("b");
    let (ra, rb) = tokio::join!(
        a.compute_with(Options::new().callback(first.clone())),
        b.compute_with(Options::new().callback(second.clone())),
    );
    assert_eq!((ra.unwrap(), rb.unwrap()), (2, 4));
    assert!(
        first.lines().iter().all(|line| !line.contains(" b")),
        "{:?}",
        first.lines()
    );
    assert!(
        second.lines().iter().all(|line| !line.contains(" a")),
        "{:?}",
        second.lines()
    );
    assert!(first.lines().contains(&"finished a done".to_string()));
}

#[tokio::test(start_paused = true)]
async fn tasks_of_unrelated_computes_that_share_a_key_are_heard_apart() {
    // Two different nodes with one key, in two graphs, running at once:
    // each callback hears its own compute's task, once, not the other's.
    let first = Arc::new(Recorder::default());
    let second = Arc::new(Recorder::default());
    let a = nap(10, 1).named("same");
    let b = nap(10, 2).named("same");
    let (ra, rb) = tokio::join!(
        a.compute_with(Options::new().callback(first.clone())),
        b.compute_with(Options::new().callback(second.clone())),
    );
    assert_eq!((ra.unwrap(), rb.unwrap()), (1, 2));
    let expected = ["start 1", "started same", "finished same done", "finish ok"];
    assert_eq!(first.lines(), expected);
    assert_eq!(second.lines(), expected);
}
#[tokio::test]
async fn a_compute_without_callbacks_reports_nothing() {
    let recorder = Arc::new(Recorder::default());
    let watched = add(1, 1).named("watched");
    let unwatched = add(2, 2).named("unwatched");
    let (w, u) = tokio::join!(
        watched.compute_with(Options::new().callback(recorder.clone())),
        unwatched.compute(),
    );
    assert_eq!((w.unwrap(), u.unwrap()), (2, 4));
    assert!(recorder
        .lines()
        .iter()
        .all(|line| !line.contains("unwatched")));
}

#[delayed::delayed]
fn total(parts: Vec<u64>) -> u64 {
    parts.iter().sum()
}

#[tokio::test]
async fn internal_nodes_reach_no_callback() {
    let recorder = Arc::new(Recorder::default());
    let parts = vec![
        add(1, 1).named("x"),
        add(delayed::Delayed::value(2), 2).named("y"),
    ];
    let sum = total(parts).named("sum");
    let result = sum
        .compute_with(Options::new().callback(recorder.clone()))
        .await;
    assert_eq!(result.unwrap(), 6);
    let mut lines = recorder.lines();
    // x and y run in either order.
    lines[1..5].sort();
    assert_eq!(
        lines,
        [
            "start 3",
            "finished x done",
            "finished y done",
            "started x",
            "started y",
            "started sum",
            "finished sum done",
            "finish ok"
        ]
    );
}

#[tokio::test]
async fn a_compute_of_a_vec_and_a_tuple_hears_the_calls_only() {
    let recorder = Arc::new(Recorder::default());
    let a = add(1, 1).named("a");
    let b = add(&a, 1).named("b");
    let c = add(2, 2).named("c");
    let options = Options::new().callback(recorder.clone());
    let (ab, c) = delayed::compute_with((vec![a, b], c), options)
        .await
        .unwrap();
    assert_eq!((ab, c), (vec![2, 3], 4));
    let lines = recorder.lines();
    assert_eq!(lines[0], "start 3");
    assert_eq!(lines.iter().filter(|l| l.starts_with("started")).count(), 3);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("finished")).count(),
        3
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("list") && !l.contains("tuple")),
        "{lines:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn one_callback_on_two_computes_hears_a_shared_task_once() {
    let recorder = Arc::new(Recorder::default());
    let shared = nap(10, 1).named("shared");
    let first = add(&shared, 1).named("first");
    let second = add(&shared, 2).named("second");
    let (a, b) = tokio::join!(
        first.compute_with(Options::new().callback(recorder.clone())),
        second.compute_with(Options::new().callback(recorder.clone())),
    );
    assert_eq!((a.unwrap(), b.unwrap()), (2, 3));
    let lines = recorder.lines();
    let count = |line: &str| lines.iter().filter(|l| *l == line).count();
    assert_eq!(count("started shared"), 1, "{lines:?}");
    assert_eq!(count("finished shared done"), 1, "{lines:?}");
    assert_eq!((count("started first"), count("started second")), (1, 1));
    // Each compute starts and finishes on its own.
    assert_eq!((count("start 2"), count("finish ok")), (2, 2), "{lines:?}");
}

#[tokio::test]
async fn one_callback_attached_twice_to_a_compute_hears_it_once() {
    let recorder = Arc::new(Recorder::default());
    let a = add(1, 1).named("a");
    let options = Options::new()
        .callback(recorder.clone())
        .callback(recorder.clone());
    assert_eq!(a.compute_with(options).await.unwrap(), 2);
    assert_eq!(
        recorder.lines(),
        ["start 1", "started a", "finished a done", "finish ok"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_callback_that_panics_is_detached_from_every_compute_it_watches() {
    #[derive(Default)]
    struct Panicky(Mutex<Vec<String>>);
    impl Callback for Panicky {
        fn task_started(&self, task: &TaskStarted) {
            if task.key().to_string() == "boom" {
                panic!("callback boom");
            }
            self.0
                .lock()
                .unwrap()
                .push(format!("started {}", task.key()));
        }
    }

    let callback = Arc::new(Panicky::default());
    let boom = add(1, 1).named("boom");
    let later = add(nap(100, 1).named("slow"), 1).named("later");
    let (a, b) = tokio::join!(
        boom.compute_with(Options::new().callback(callback.clone())),
        later.compute_with(Options::new().callback(callback.clone())),
    );
    assert!(a.unwrap_err().is_panic());
    assert_eq!(b.unwrap(), 2);
    // `later` starts 100 ms after the panic: the callback hears nothing
    // more, in the other compute either.
    let heard = callback.0.lock().unwrap().clone();
    assert!(!heard.contains(&"started later".to_string()), "{heard:?}");
}
