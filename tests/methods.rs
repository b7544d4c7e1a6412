//! `#[delayed]` on methods, and calling the undecorated function.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use delayed::{delayed, wrapped};

struct Model {
    weight: u64,
    clones: Arc<AtomicUsize>,
}

impl Clone for Model {
    fn clone(&self) -> Model {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Model {
            weight: self.weight,
            clones: self.clones.clone(),
        }
    }
}

impl std::hash::Hash for Model {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.weight.hash(state);
    }
}

impl Model {
    #[delayed]
    fn predict(&self, x: u64) -> u64 {
        self.weight * x
    }

    #[delayed]
    async fn fetch(&self, x: u64) -> u64 {
        tokio::task::yield_now().await;
        self.weight + x
    }

    #[delayed(pure)]
    fn score(&self, x: u64) -> u64 {
        self.weight + x
    }

    #[delayed]
    fn flaky(&self, tries: Arc<AtomicUsize>) -> Result<u64, std::io::Error> {
        if tries.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(std::io::Error::other("not yet"));
        }
        Ok(self.weight)
    }

    #[delayed]
    fn describe(&self, label: &str) -> String {
        format!("{label}:{}", self.weight)
    }
}

#[derive(Clone, Hash)]
struct Other {
    weight: u64,
}

impl Other {
    #[delayed(pure)]
    fn score(&self, x: u64) -> u64 {
        self.weight * 1000 + x
    }
}

fn model(weight: u64) -> Model {
    Model {
        weight,
        clones: Arc::new(AtomicUsize::new(0)),
    }
}

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
async fn slow_double(x: u64) -> u64 {
    x * 2
}

#[tokio::test]
async fn methods_capture_the_receiver_once() {
    let m = model(3);
    let a = m.predict(inc(1));
    let b = m.fetch(4);
    let c = m.describe("w".to_string());
    assert_eq!(m.clones.load(Ordering::SeqCst), 3, "one clone per call");
    assert_eq!(a.key().name(), "predict");
    assert_eq!(
        delayed::compute((a, b, c)).await.unwrap(),
        (6, 7, "w:3".to_string())
    );
    assert_eq!(m.clones.load(Ordering::SeqCst), 3, "the runs borrow it");
}

#[tokio::test]
async fn a_retried_method_borrows_the_same_receiver() {
    let m = model(2);
    let tries = Arc::new(AtomicUsize::new(0));
    let counter = tries.clone();
    let node = m.flaky(counter).retry(delayed::Retry::attempts(3));
    assert_eq!(node.compute().await.unwrap(), 2);
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    assert_eq!(m.clones.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn pure_methods_hash_the_receiver_and_its_type() {
    let m = model(3);
    assert_eq!(m.score(1).key(), m.clone().score(1).key());
    assert_ne!(m.score(1).key(), model(4).score(1).key());
    assert_ne!(m.score(1).key(), Other { weight: 3 }.score(1).key());
    assert_eq!(Other { weight: 3 }.score(1).compute().await.unwrap(), 3001);
}

#[tokio::test]
async fn the_undecorated_function_is_callable() {
    assert_eq!(wrapped!(inc)(41), 42);
    assert_eq!(wrapped!(slow_double)(21).await, 42);
    let m = model(2);
    assert_eq!(wrapped!(Model::predict)(&m, 5), 10);
    assert_eq!(
        m.clones.load(Ordering::SeqCst),
        0,
        "a direct call clones nothing"
    );
}
