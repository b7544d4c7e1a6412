//! One trace across machines: a request's remote tasks carry its W3C
//! trace context (`traceparent`) to the workers, whose task spans continue
//! it, so an OpenTelemetry backend sees one trace. Read back with the
//! SDK's in-memory exporter, against a real `nats-server -js`, with three
//! workers on connections of their own. They share this process's
//! subscriber, but no span reaches them except through the messages: their
//! tasks run in tasks spawned before the request began.

mod nats;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use delayed::cluster::{async_nats, Cluster, Worker};
use delayed::keyed::Registry;
use delayed::{delayed, Options};
use futures::StreamExt;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio::sync::oneshot;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

use nats::Server;

/// The entry point of worker processes; returns at once in a normal run.
#[test]
fn worker_process() {
    nats::worker_main(registry);
}

/// A slow remote call: long enough that each worker (of concurrency 1)
/// holds one while the others are sent.
#[delayed(register)]
async fn lookup(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    id * 10
}

fn registry() -> Registry {
    delayed::registry![lookup]
}

/// The process's one subscriber: every span goes to OpenTelemetry and on
/// to an in-memory exporter.
fn exporter() -> &'static (InMemorySpanExporter, SdkTracerProvider) {
    static EXPORTER: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("delayed-test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        (exporter, provider)
    })
}

fn attribute(span: &SpanData, name: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == name)
        .map(|kv| match &kv.value {
            Value::String(s) => s.to_string(),
            other => other.to_string(),
        })
}

/// A worker in this process on its own connection, of concurrency 1.
async fn worker(url: &str, name: &str) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let client = async_nats::connect(url).await.expect("the worker connects");
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = Worker::new(registry()).name(name).concurrency(1);
    let task = tokio::spawn(async move {
        let _ = worker
            .serve(client, async {
                let _ = stopped.await;
            })
            .await;
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_that_ran_on_three_workers_is_one_trace() {
    let (exporter, provider) = exporter();
    let server = Server::start().await;
    let url = server.url();
    let mut workers = Vec::new();
    for name in ["w1", "w2", "w3"] {
        workers.push(worker(&url, name).await);
    }
    let cluster = Cluster::connect(&url, registry()).await.expect("connects");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while cluster.workers().await.map_or(0, |w| w.len()) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workers never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What the tasks' messages carry in their headers.
    let watcher = async_nats::connect(&url).await.expect("connects");
    let mut messages = watcher
        .subscribe("delayed.tasks.>")
        .await
        .expect("subscribes");
    // The server handles one connection's messages in order: once a
    // message of ours comes back, it has the subscription above.
    let mut echo = watcher
        .subscribe("delayed-test.echo")
        .await
        .expect("subscribes");
    watcher
        .publish("delayed-test.echo", "".into())
        .await
        .expect("publishes");
    tokio::time::timeout(Duration::from_secs(10), echo.next())
        .await
        .expect("the server echoes")
        .expect("an echo");

    // One request, three remote calls: three runs, three messages, one to
    // each idle worker.
    let request = tracing::info_span!("request", id = 7);
    let results = async {
        let options = || Options::new().cluster(&cluster);
        let (a, b, c) = futures::join!(
            lookup(1).named("lookup-1").compute_with(options()),
            lookup(2).named("lookup-2").compute_with(options()),
            lookup(3).named("lookup-3").compute_with(options()),
        );
        [a.unwrap(), b.unwrap(), c.unwrap()]
    }
    .instrument(request.clone())
    .await;
    assert_eq!(results, [10, 20, 30]);
    drop(request);

    let mut headers = Vec::new();
    while headers.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the task messages were seen")
            .expect("a message");
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .map(|v| v.as_str().to_string());
        headers.push(traceparent.expect("a traceparent header on each task message"));
    }

    for (stop, task) in workers {
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    provider.force_flush().expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans");
    let root = spans
        .iter()
        .find(|s| s.name == "request")
        .expect("the request's span");
    let trace: TraceId = root.span_context.trace_id();
    let in_trace: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    let by_id: HashMap<SpanId, &SpanData> = in_trace
        .iter()
        .map(|s| (s.span_context.span_id(), *s))
        .collect();

    // Each worker's span is in the request's trace, a remote child of the
    // client's span of that task, which is a child of the request.
    let remote: Vec<&&SpanData> = in_trace
        .iter()
        .filter(|s| s.name == "delayed.remote")
        .collect();
    assert_eq!(remote.len(), 3, "{:#?}", names(&spans));
    let mut ran_on = HashSet::new();
    for span in &remote {
        assert!(span.parent_span_is_remote);
        let parent = by_id
            .get(&span.parent_span_id)
            .unwrap_or_else(|| panic!("the parent of {span:?} is in the trace"));
        assert_eq!(parent.name, "delayed.task");
        assert_eq!(attribute(parent, "task.key"), attribute(span, "task.key"));
        assert_eq!(parent.parent_span_id, root.span_context.span_id());
        ran_on.insert(attribute(span, "worker").expect("the worker's name"));
        let header = format!("00-{}-{}-01", trace, parent.span_context.span_id());
        assert!(headers.contains(&header), "{header} in {headers:?}");
    }
    assert_eq!(ran_on.len(), 3, "one task on each worker: {ran_on:?}");
    // The workers' own task spans continue under theirs.
    let on_workers = in_trace
        .iter()
        .filter(|s| s.name == "delayed.task")
        .filter(|s| {
            by_id
                .get(&s.parent_span_id)
                .is_some_and(|parent| parent.name == "delayed.remote")
        })
        .count();
    assert_eq!(on_workers, 3, "{:#?}", names(&spans));
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} {} parent {} key {:?}",
                s.name,
                s.span_context.span_id(),
                s.parent_span_id,
                attribute(s, "task.key")
            )
        })
        .collect()
}
