//! Memory: a finished node releases its inputs, so intermediate results are
//! freed as soon as nothing needs them.

mod common;

use common::{Live, Tracked};
use delayed::{delayed, Delayed};

#[delayed]
fn load(live: Live, i: u64) -> Tracked {
    live.make(i)
}

#[delayed]
fn clean(live: Live, raw: &Tracked) -> Tracked {
    live.make(raw.payload * 2)
}

#[delayed]
fn step(live: Live, prev: &Tracked) -> Tracked {
    // At this point the only live values are the input and nothing else:
    // every earlier step's output is gone.
    assert!(live.now() <= 1, "{} values alive in a chain", live.now());
    live.make(prev.payload + 1)
}

#[delayed]
fn total(parts: Vec<u64>) -> u64 {
    parts.iter().sum()
}

#[delayed]
fn payload(t: &Tracked) -> u64 {
    t.payload
}

#[tokio::test]
async fn a_chain_holds_one_intermediate_at_a_time() {
    let live = Live::new();
    let mut node = load(live.clone(), 0);
    for _ in 0..1_000 {
        node = step(live.clone(), node);
    }
    let result = payload(node);
    assert_eq!(result.compute().await.unwrap(), 1_000);
    assert_eq!(live.now(), 0, "every intermediate was freed");
    assert!(live.peak() <= 2, "peak of {} live values", live.peak());
}

#[tokio::test]
async fn a_finished_node_releases_its_inputs() {
    let live = Live::new();
    let raw = load(live.clone(), 3);
    let cleaned = clean(live.clone(), raw);
    assert_eq!(payload(&cleaned).compute().await.unwrap(), 6);
    // `raw` was only held by `cleaned`, which finished: it is gone. The
    // output of `cleaned` stays while the caller holds its handle.
    assert_eq!(live.now(), 1);
    drop(cleaned);
    assert_eq!(live.now(), 0);
}

#[tokio::test]
async fn results_the_caller_keeps_stay() {
    let live = Live::new();
    let raw = load(live.clone(), 3);
    let cleaned = clean(live.clone(), &raw);
    cleaned.compute().await.unwrap();
    assert_eq!(live.now(), 2, "the caller still holds `raw`");
    drop(raw);
    assert_eq!(live.now(), 1);
}

#[tokio::test]
async fn a_pipeline_without_kept_handles_frees_as_it_goes() {
    let live = Live::new();
    // load -> clean -> payload per input, then a total: the caller keeps
    // only the final handle, so each load is freed once its clean ran and
    // each clean once its payload ran.
    let parts: Vec<_> = (0..200)
        .map(|i| payload(clean(live.clone(), load(live.clone(), i))))
        .collect();
    let sum = total(parts);
    assert_eq!(
        sum.compute().await.unwrap(),
        (0..200).map(|i| i * 2).sum::<u64>()
    );
    assert_eq!(live.now(), 0);
    // The current-thread runner goes depth first: a load, its clean, and
    // nothing much more is ever alive at once.
    assert!(live.peak() <= 4, "peak of {} live values", live.peak());
}

#[tokio::test]
async fn dropping_a_graph_that_never_ran_frees_its_values() {
    let live = Live::new();
    let leaves: Vec<_> = (0..10).map(|i| Delayed::value(live.make(i))).collect();
    let tops: Vec<_> = leaves.iter().map(payload).collect();
    let sum = total(tops);
    drop(leaves);
    assert_eq!(live.now(), 10);
    drop(sum);
    assert_eq!(live.now(), 0);
}

#[delayed]
fn fail(_t: &Tracked) -> Result<u64, std::fmt::Error> {
    Err(std::fmt::Error)
}

#[tokio::test]
async fn a_failed_node_releases_its_inputs() {
    let live = Live::new();
    let failed = fail(load(live.clone(), 1));
    assert!(failed.compute().await.is_err());
    assert_eq!(live.now(), 0);
}

#[tokio::test]
async fn a_node_that_fails_because_of_an_input_releases_the_others() {
    let live = Live::new();
    let bad = fail(load(live.clone(), 1));
    let ok = load(live.clone(), 2);
    let both = delayed::join((bad, ok)).map(|(a, b)| a + b.payload);
    assert!(both.compute().await.is_err());
    assert_eq!(live.now(), 0);
}

#[tokio::test]
async fn values_captured_by_unrun_bodies_are_freed_with_the_graph() {
    let live = Live::new();
    let t = live.make(5);
    let node = Delayed::value(1_u64).map(move |x| {
        let t = &t;
        x + t.payload
    });
    assert_eq!(live.now(), 1);
    drop(node);
    assert_eq!(live.now(), 0);
}
