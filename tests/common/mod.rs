//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts events (runs, starts, drops) across tasks.
#[derive(Clone, Default, Debug)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn new() -> Counter {
        Counter::default()
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl std::hash::Hash for Counter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// Sets a flag when dropped: shows that a future or value was dropped.
pub struct DropFlag(pub Counter);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.bump();
    }
}

/// Tracks how many values are alive and the most that ever were.
#[derive(Clone, Default, Debug)]
pub struct Live {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    clones: Arc<AtomicUsize>,
}

impl Live {
    pub fn new() -> Live {
        Live::default()
    }

    pub fn make(&self, payload: u64) -> Tracked {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Tracked {
            live: self.clone(),
            payload,
        }
    }

    pub fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    pub fn clones(&self) -> usize {
        self.clones.load(Ordering::SeqCst)
    }
}

impl PartialEq for Live {
    fn eq(&self, other: &Live) -> bool {
        Arc::ptr_eq(&self.now, &other.now)
    }
}

impl std::hash::Hash for Live {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.now).hash(state);
    }
}

/// A value counted by a [`Live`]; its clones are counted too.
#[derive(Debug)]
pub struct Tracked {
    pub live: Live,
    pub payload: u64,
}

impl Clone for Tracked {
    fn clone(&self) -> Tracked {
        self.live.clones.fetch_add(1, Ordering::SeqCst);
        self.live.make(self.payload)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits `ms` on tokio's clock, then returns `x`.
#[delayed::delayed]
pub async fn nap(ms: u64, x: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    x
}

#[delayed::delayed]
pub fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Always fails with a `fmt::Error`.
#[delayed::delayed]
pub fn fail(x: u64) -> Result<u64, std::fmt::Error> {
    let _ = x;
    Err(std::fmt::Error)
}

/// The fields of a tracing span or event, by name, as text.
#[derive(Default)]
pub struct Fields(pub std::collections::HashMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// An async task's starts, finishes and drops, counted.
#[derive(Clone, Default, Debug)]
pub struct Probe {
    pub started: Counter,
    pub finished: Counter,
    pub dropped: Counter,
}

impl Probe {
    /// Counts a start, sleeps `duration`, counts a finish; the drop is
    /// counted whether the sleep ends or is aborted.
    pub async fn sleep(&self, duration: std::time::Duration) {
        self.started.bump();
        let _guard = DropFlag(self.dropped.clone());
        tokio::time::sleep(duration).await;
        self.finished.bump();
    }
}
