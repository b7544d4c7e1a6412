//! Every node runs inside a `delayed.task` span carrying its key, so events
//! a task logs are attributed to it.

mod common;

use std::sync::{Arc, Mutex};

use common::Fields;
use delayed::{delayed, Retry};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Records each `delayed.task` span's key, and the key of the task span
/// that was current when an event was logged.
#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<(String, String)>>>,
    events: Arc<Mutex<Vec<(String, String, tracing::Level)>>>,
    /// (task, the input task it follows from), by key.
    links: Arc<Mutex<Vec<(String, String)>>>,
    /// (task, message, its `error` field) of events that have one.
    errors: Arc<Mutex<Vec<(String, String, String)>>>,
}

/// The key stored on a task span.
struct TaskKey(String);

impl Recorder {
    fn note_key<S: Subscriber + for<'a> LookupSpan<'a>>(
        &self,
        id: &Id,
        fields: &mut Fields,
        ctx: &Context<'_, S>,
    ) {
        let span = ctx.span(id).expect("span exists");
        if span.name() != "delayed.task" {
            return;
        }
        if let Some(key) = fields.0.remove("task.key") {
            let name = span
                .extensions()
                .get::<TaskName>()
                .map(|n| n.0.clone())
                .unwrap_or_default();
            span.extensions_mut().insert(TaskKey(key.clone()));
            self.spans.lock().unwrap().push((name, key));
        }
    }
}

/// The function name stored on a task span.
struct TaskName(String);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(name) = fields.0.remove("task.name") {
            ctx.span(id)
                .expect("span exists")
                .extensions_mut()
                .insert(TaskName(name));
        }
        self.note_key(id, &mut fields, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        self.note_key(id, &mut fields, &ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        let key = |id: &Id| {
            ctx.span(id)
                .and_then(|span| span.extensions().get::<TaskKey>().map(|k| k.0.clone()))
                .unwrap_or_default()
        };
        self.links.lock().unwrap().push((key(span), key(follows)));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let key = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| span.extensions().get::<TaskKey>().map(|k| k.0.clone()))
                    .last()
            })
            .unwrap_or_default();
        let level = *event.metadata().level();
        if let Some(error) = fields.0.remove("error") {
            let error = (key.clone(), message.clone(), error);
            self.errors.lock().unwrap().push(error);
        }
        self.events.lock().unwrap().push((key, message, level));
    }
}

#[delayed]
fn inc(x: u64) -> u64 {
    tracing::info!("inc {x}");
    x + 1
}

#[delayed]
async fn load(x: u64) -> u64 {
    tokio::task::yield_now().await;
    tracing::info!("load {x}");
    x
}

#[delayed(blocking)]
fn crunch(x: u64) -> u64 {
    tracing::info!("crunch {x}");
    x * 2
}

#[test]
fn every_task_runs_in_a_span_with_its_key() {
    let recorder = Recorder::default();
    tracing_subscriber::registry().with(recorder.clone()).init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (a, b, c) = (
        load(1).named("load-1"),
        inc(5).named("inc-5"),
        crunch(7).named("crunch-7"),
    );
    let result = runtime
        .block_on(delayed::compute((inc(&a).named("inc-of-load"), &b, &c)))
        .unwrap();
    assert_eq!(result, (2, 6, 14));

    let spans = recorder.spans.lock().unwrap().clone();
    for (name, key) in [("load", "load-1"), ("inc", "inc-5"), ("crunch", "crunch-7")] {
        assert!(
            spans.iter().any(|(n, k)| n == name && k == key),
            "no span for {key} in {spans:?}"
        );
    }

    let events = recorder.events.lock().unwrap().clone();
    let has = |key: &str, message: &str, level: tracing::Level| {
        events
            .iter()
            .any(|(k, m, l)| k == key && m == message && *l == level)
    };
    for (key, message) in [
        ("load-1", "load 1"),
        ("inc-5", "inc 5"),
        ("crunch-7", "crunch 7"),
    ] {
        assert!(
            has(key, message, tracing::Level::INFO),
            "event {message:?} not inside span {key}: {events:?}"
        );
        assert!(
            has(key, "task started", tracing::Level::DEBUG),
            "no start event for {key}"
        );
        assert!(
            has(key, "task finished", tracing::Level::DEBUG),
            "no end event for {key}"
        );
    }

    // A task's span follows from its inputs' spans.
    let links = recorder.links.lock().unwrap().clone();
    assert!(
        links.contains(&("inc-of-load".to_string(), "load-1".to_string())),
        "no follows_from link from the input's span: {links:?}"
    );

    let failing = fail(1).named("fail-1");
    assert!(runtime.block_on(failing.compute()).is_err());
    let events = recorder.events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|(k, m, l)| k == "fail-1" && m == "task failed" && *l == tracing::Level::WARN),
        "no warning for the failed task: {events:?}"
    );

    // Failure and retry events carry the cause, not only the task's key.
    let failing = broken_pipe().named("pipe").retry(Retry::attempts(2));
    assert!(runtime.block_on(failing.compute()).is_err());
    let errors = recorder.errors.lock().unwrap().clone();
    let error_of = |message: &str| {
        errors
            .iter()
            .find(|(k, m, _)| k == "pipe" && m == message)
            .map(|(_, _, e)| e.clone())
            .unwrap_or_else(|| panic!("no {message:?} event for `pipe`: {errors:?}"))
    };
    assert_eq!(
        error_of("task failed; it will run again"),
        "task `pipe` failed: cannot write: broken pipe"
    );
    assert_eq!(
        error_of("task failed"),
        "task `pipe` failed after 2 attempts: cannot write: broken pipe"
    );
    assert!(errors
        .iter()
        .any(|(k, m, e)| k == "fail-1" && m == "task failed" && e.contains(": an error occurred")));
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write")]
struct WriteError(#[source] std::io::Error);

#[delayed]
fn broken_pipe() -> Result<u64, WriteError> {
    Err(WriteError(std::io::Error::other("broken pipe")))
}

#[delayed]
fn fail(x: u64) -> Result<u64, std::fmt::Error> {
    let _ = x;
    Err(std::fmt::Error)
}
