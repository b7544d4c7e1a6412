//! A cache hit in tracing: its task span holds a `task.cached = true`
//! event. In a binary of its own: tracing caches whether a callsite is
//! enabled, and a test without a subscriber running on another thread
//! when this one's subscriber starts could leave the task span disabled.

mod common;

use std::sync::{Arc, Mutex};

use delayed::cache::Cache;
use delayed::{delayed, Options};

#[delayed(cache)]
fn twice(x: u64) -> u64 {
    x * 2
}

/// Records the span and key of each event that says `task.cached = true`.
#[derive(Clone, Default)]
struct CachedEvents(Arc<Mutex<Vec<(String, String)>>>);

impl<S> tracing_subscriber::Layer<S> for CachedEvents
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = common::Fields::default();
        event.record(&mut fields);
        if fields.0.get("task.cached").map(String::as_str) == Some("true") {
            let span = ctx.event_span(event).map(|span| span.name().to_string());
            self.0
                .lock()
                .unwrap()
                .push((span.unwrap_or_default(), fields.0["message"].clone()));
        }
    }
}

#[test]
fn a_hit_says_so_in_its_task_span() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let events = CachedEvents::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = Cache::memory();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(twice(5150).compute_with(Options::new().cache(&cache)))
            .unwrap();
        assert!(events.0.lock().unwrap().is_empty(), "a miss is no hit");
        rt.block_on(twice(5150).compute_with(Options::new().cache(&cache)))
            .unwrap();
    });
    let events = events.0.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "delayed.task");
}
