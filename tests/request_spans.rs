//! Task spans belong to the request that started them: each is a child of
//! the span current where its compute began, a node shared by two requests
//! is a child of the first and follows from the second, and what tasks log
//! sits in the request's span even where task spans are disabled.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::Fields;
use delayed::{delayed, Delayed, Retry};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// What a subscriber saw, by label: `request-<id>` for `request` spans,
/// the task key for `delayed.task` spans.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

#[derive(Default)]
struct Seen {
    /// A span's label, and its parent's label (or "" for a root span).
    parents: Vec<(String, String)>,
    /// (span, the span it follows from).
    follows: Vec<(String, String)>,
    /// An event's message, and the labels of its scope from the root.
    events: Vec<(String, Vec<String>)>,
}

impl Recorder {
    fn parent_of(&self, label: &str) -> Option<String> {
        let seen = self.0.lock().unwrap();
        let parents: Vec<_> = seen.parents.iter().filter(|(l, _)| l == label).collect();
        assert!(parents.len() <= 1, "{label} has several spans: {parents:?}");
        parents.first().map(|(_, parent)| parent.clone())
    }

    fn follows(&self, label: &str, from: &str) -> bool {
        let seen = self.0.lock().unwrap();
        seen.follows.iter().any(|(l, f)| l == label && f == from)
    }

    fn follows_of(&self, label: &str) -> Vec<String> {
        let seen = self.0.lock().unwrap();
        seen.follows
            .iter()
            .filter(|(l, _)| l == label)
            .map(|(_, f)| f.clone())
            .collect()
    }

    /// The scope of the event with `message`.
    fn scope_of(&self, message: &str) -> Vec<String> {
        let seen = self.0.lock().unwrap();
        let found: Vec<_> = seen.events.iter().filter(|(m, _)| m == message).collect();
        assert_eq!(found.len(), 1, "event {message:?}: {found:?}");
        found[0].1.clone()
    }
}

/// A span's label, in its extensions.
struct Label(String);

impl Recorder {
    fn label<S: Subscriber + for<'a> LookupSpan<'a>>(ctx: &Context<'_, S>, id: &Id) -> String {
        ctx.span(id)
            .and_then(|span| span.extensions().get::<Label>().map(|l| l.0.clone()))
            .unwrap_or_default()
    }

    /// Labels the span and records its parent, once its label is known.
    fn name<S: Subscriber + for<'a> LookupSpan<'a>>(
        &self,
        id: &Id,
        label: String,
        ctx: &Context<'_, S>,
    ) {
        let span = ctx.span(id).expect("span exists");
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Label>().map(|l| l.0.clone()))
            .unwrap_or_default();
        span.extensions_mut().insert(Label(label.clone()));
        self.0.lock().unwrap().parents.push((label, parent));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        match attrs.metadata().name() {
            "request" => {
                let id_field = fields.0.remove("id").unwrap_or_default();
                self.name(id, format!("request-{id_field}"), &ctx);
            }
            // Its key is recorded right after.
            "delayed.task" => {}
            other => self.name(id, other.to_string(), &ctx),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(key) = fields.0.remove("task.key") {
            self.name(id, key, &ctx);
        }
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        let link = (Self::label(&ctx, span), Self::label(&ctx, follows));
        self.0.lock().unwrap().follows.push(link);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let scope = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| span.extensions().get::<Label>().map(|l| l.0.clone()))
                    .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().events.push((message, scope));
    }
}

/// The process-wide subscriber, which sees everything at debug level. Each
/// test uses labels of its own.
fn global() -> &'static Recorder {
    static GLOBAL: OnceLock<Recorder> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        tracing::subscriber::set_global_default(subscriber).expect("first");
        recorder
    })
}

#[delayed]
async fn load(tag: String) -> u64 {
    tokio::task::yield_now().await;
    tracing::info!("load {tag}");
    tag.len() as u64
}

#[delayed]
fn inc(tag: String, x: u64) -> u64 {
    tracing::info!("inc {tag}");
    x + 1
}

#[delayed(blocking)]
fn crunch(tag: String, x: u64) -> u64 {
    tracing::info!("crunch {tag}");
    x * 2
}

/// A blocking body under a retry policy runs through the attempt runner.
#[delayed(blocking, retry = Retry::attempts(2))]
fn crunch_again(tag: String, x: u64) -> u64 {
    tracing::info!("crunch again {tag}");
    x * 3
}

#[tracing::instrument(name = "request", skip_all, fields(id = %tag))]
async fn handler(tag: &str) -> u64 {
    let loaded = load(tag.to_string()).named(format!("load-{tag}"));
    let plus = inc(tag.to_string(), &loaded).named(format!("inc-{tag}"));
    let doubled = crunch(tag.to_string(), &plus).named(format!("crunch-{tag}"));
    let tripled = crunch_again(tag.to_string(), &doubled).named(format!("again-{tag}"));
    tripled.compute().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_of_a_request_is_a_child_of_its_span() {
    let seen = global();
    assert_eq!(handler("h1").await, (2 + 1) * 2 * 3);
    for task in ["load-h1", "inc-h1", "crunch-h1", "again-h1"] {
        assert_eq!(
            seen.parent_of(task).as_deref(),
            Some("request-h1"),
            "{task}"
        );
    }
    for (message, task) in [
        ("load h1", "load-h1"),
        ("inc h1", "inc-h1"),
        ("crunch h1", "crunch-h1"),
        ("crunch again h1", "again-h1"),
    ] {
        assert_eq!(seen.scope_of(message), ["request-h1", task], "{message}");
    }
    // The links to inputs are still there.
    assert!(seen.follows("inc-h1", "load-h1"));
    assert!(seen.follows("again-h1", "crunch-h1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_keep_their_tasks_apart() {
    let seen = global();
    let (a, b) = tokio::join!(tokio::spawn(handler("c1")), tokio::spawn(handler("c2")));
    assert_eq!((a.unwrap(), b.unwrap()), (18, 18));
    for tag in ["c1", "c2"] {
        for task in ["load", "inc", "crunch", "again"] {
            let parent = seen.parent_of(&format!("{task}-{tag}"));
            assert_eq!(parent, Some(format!("request-{tag}")));
        }
        assert_eq!(
            seen.scope_of(&format!("inc {tag}")),
            [format!("request-{tag}"), format!("inc-{tag}")]
        );
    }
}

#[tokio::test]
async fn a_node_shared_by_two_requests_is_a_child_of_the_first_and_follows_the_second() {
    let seen = global();
    let shared = load("s".to_string()).named("shared-s");
    let a = inc("sa".to_string(), &shared).named("a-s");
    let b = inc("sb".to_string(), &shared).named("b-s");
    let first = a
        .compute()
        .instrument(tracing::info_span!("request", id = "s1"));
    let second = b
        .compute()
        .instrument(tracing::info_span!("request", id = "s2"));
    let (ra, rb) = tokio::join!(first, second);
    assert_eq!((ra.unwrap(), rb.unwrap()), (2, 2));

    assert_eq!(seen.parent_of("shared-s").as_deref(), Some("request-s1"));
    assert_eq!(seen.follows_of("shared-s"), ["request-s2"]);
    assert_eq!(seen.parent_of("a-s").as_deref(), Some("request-s1"));
    assert_eq!(seen.parent_of("b-s").as_deref(), Some("request-s2"));
    assert!(seen.follows("b-s", "shared-s"));
    // The shared task logs in the first request's span.
    assert_eq!(seen.scope_of("load s"), ["request-s1", "shared-s"]);
}

#[delayed]
async fn slow(tag: String) -> u64 {
    tokio::time::sleep(Duration::from_secs(10)).await;
    tracing::info!("slow {tag}");
    1
}

#[tokio::test(start_paused = true)]
async fn a_request_that_comes_while_a_shared_node_runs_links_to_it() {
    let seen = global();
    let shared = slow("r".to_string()).named("shared-r");
    let first = shared
        .compute()
        .instrument(tracing::info_span!("request", id = "r1"));
    let later = {
        let shared = shared.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            // Both computes want the very node: the second meets it
            // running, at its root.
            let twice = shared.compute();
            let thrice = shared.compute();
            let (x, y) = tokio::join!(twice, thrice);
            x.unwrap() + y.unwrap()
        }
        .instrument(tracing::info_span!("request", id = "r2"))
    };
    let (one, two) = tokio::join!(first, later);
    assert_eq!((one.unwrap(), two), (1, 2));
    assert_eq!(seen.parent_of("shared-r").as_deref(), Some("request-r1"));
    // Two computes under the same span link once.
    assert_eq!(seen.follows_of("shared-r"), ["request-r2"]);
}

#[delayed]
async fn outer(tag: String) -> u64 {
    let inner = inc(tag.clone(), 1).named(format!("inner-{tag}"));
    inner.compute().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_compute_runs_its_tasks_inside_the_task_that_started_it() {
    let seen = global();
    let node = outer("n".to_string()).named("outer-n");
    let span = tracing::info_span!("request", id = "n");
    assert_eq!(node.compute().instrument(span).await.unwrap(), 2);
    assert_eq!(seen.parent_of("outer-n").as_deref(), Some("request-n"));
    assert_eq!(seen.parent_of("inner-n").as_deref(), Some("outer-n"));
    assert_eq!(seen.scope_of("inc n"), ["request-n", "outer-n", "inner-n"]);
}

#[tokio::test]
async fn persist_and_blocking_computes_take_the_span_of_their_caller() {
    let seen = global();
    let persisted = {
        let _entered = tracing::info_span!("request", id = "p").entered();
        load("p".to_string()).named("load-p").persist()
    };
    assert_eq!(persisted.compute().await.unwrap(), 1);
    assert_eq!(seen.parent_of("load-p").as_deref(), Some("request-p"));

    let node = crunch("b".to_string(), 4).named("crunch-b");
    let result = tokio::task::spawn_blocking(move || {
        let _entered = tracing::info_span!("request", id = "b").entered();
        node.compute_blocking()
    });
    assert_eq!(result.await.unwrap().unwrap(), 8);
    assert_eq!(seen.parent_of("crunch-b").as_deref(), Some("request-b"));
}

#[tokio::test]
async fn without_a_span_tasks_are_roots_as_before() {
    let seen = global();
    assert_eq!(
        load("root".to_string()).named("load-root").await.unwrap(),
        4
    );
    assert_eq!(seen.parent_of("load-root").as_deref(), Some(""));
}

/// The usual service setup logs at info: the `delayed.task` spans (debug)
/// are disabled, and a task's lines sit in the request's span. Both ways
/// to filter: a filter for the whole subscriber (the spans are disabled),
/// and a filter of the layer's own (the spans exist, hidden from it). The
/// subscriber is this thread's default only: the tasks on the blocking pool
/// report to it too, not to the process-wide one.
#[test]
fn with_task_spans_filtered_out_task_lines_sit_in_the_request_span() {
    let global = global();
    for (tag, per_layer) in [("i1", false), ("i2", true)] {
        let scoped = Recorder::default();
        let run = || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            assert_eq!(runtime.block_on(handler(tag)), 18);
        };
        if per_layer {
            let layer = scoped.clone().with_filter(LevelFilter::INFO);
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), run);
        } else {
            let subscriber = tracing_subscriber::registry()
                .with(LevelFilter::INFO)
                .with(scoped.clone());
            tracing::subscriber::with_default(subscriber, run);
        }
        assert_eq!(
            scoped.parent_of(&format!("load-{tag}")),
            None,
            "no task spans"
        );
        for message in ["load", "inc", "crunch", "crunch again"] {
            let message = format!("{message} {tag}");
            assert_eq!(
                scoped.scope_of(&message),
                [format!("request-{tag}")],
                "{message}"
            );
            let in_global = global.0.lock().unwrap();
            assert!(
                !in_global.events.iter().any(|(m, _)| *m == message),
                "{message} went to the process-wide subscriber"
            );
        }
    }
}

#[tokio::test]
async fn the_sequential_scheduler_runs_tasks_in_the_span_of_its_caller() {
    let seen = global();
    let loaded = load("q".to_string()).named("load-q");
    let plus = inc("q".to_string(), &loaded).named("inc-q");
    let options = delayed::Options::new().sequential();
    let span = tracing::info_span!("request", id = "q");
    let result = plus.compute_with(options).instrument(span).await;
    assert_eq!(result.unwrap(), 2);
    for task in ["load-q", "inc-q"] {
        assert_eq!(seen.parent_of(task).as_deref(), Some("request-q"), "{task}");
    }
    assert_eq!(seen.scope_of("inc q"), ["request-q", "inc-q"]);
}

#[tokio::test]
async fn a_request_that_finds_a_node_done_reads_it_without_a_link() {
    let seen = global();
    let node = Delayed::value(1_u64).map(|x| x + 1).named("done-d");
    let first = node
        .compute()
        .instrument(tracing::info_span!("request", id = "d1"));
    assert_eq!(first.await.unwrap(), 2);
    let second = node
        .compute()
        .instrument(tracing::info_span!("request", id = "d2"));
    assert_eq!(second.await.unwrap(), 2);
    assert_eq!(seen.parent_of("done-d").as_deref(), Some("request-d1"));
    assert!(seen.follows_of("done-d").is_empty());
}
