//! Metrics on the `metrics` facade, read back as a Prometheus exporter
//! renders them. Each test installs its own recorder for its thread, on a
//! current-thread runtime, so tests do not see each other's counts.
//!
//! ```text
//! cargo test --features metrics --test metrics
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use delayed::cache::Cache;
use delayed::metrics::Metrics;
use delayed::{delayed, Limit, Options, Retry};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Runs `test` on a paused current-thread runtime with a Prometheus
/// recorder for this thread, and hands it the recorder's handle. One test
/// at a time: an `observe` scope attaches to every compute in the process.
fn with_recorder<F: Future<Output = ()>>(test: impl FnOnce(PrometheusHandle) -> F) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    delayed::metrics::describe();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(test(handle));
}

/// The value of the sample `name{labels}` in `rendered`, if it is there.
fn sample(rendered: &str, name_and_labels: &str) -> Option<f64> {
    rendered.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        (series == name_and_labels).then(|| value.parse().ok())?
    })
}

fn value(handle: &PrometheusHandle, name_and_labels: &str) -> f64 {
    let rendered = handle.render();
    sample(&rendered, name_and_labels)
        .unwrap_or_else(|| panic!("no {name_and_labels} in:\n{rendered}"))
}

static TWO: Limit = Limit::new("two", 2);

#[delayed(limit = TWO)]
async fn fetch(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    id
}

#[delayed]
fn boom(x: u64) -> Result<u64, String> {
    Err(format!("no {x}"))
}

#[delayed(retry = Retry::attempts(3))]
fn flaky(calls: &Arc<AtomicU32>) -> Result<u32, String> {
    match calls.fetch_add(1, Ordering::SeqCst) {
        0 => Err("once".to_string()),
        n => Ok(n),
    }
}

#[delayed]
async fn forever(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    x
}

#[delayed(cache)]
fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn tasks_are_counted_per_function_and_outcome() {
    with_recorder(|handle| async move {
        let _metrics = delayed::observe(Metrics::new());
        let all: Vec<_> = (1..=4).map(fetch).collect();
        assert_eq!(delayed::compute(all).await.unwrap(), [1, 2, 3, 4]);
        assert!(boom(1).compute().await.is_err());
        assert_eq!(
            flaky(Arc::new(AtomicU32::new(0))).compute().await.unwrap(),
            1
        );
        let dropped = tokio::time::timeout(Duration::from_secs(1), forever(1).compute()).await;
        assert!(dropped.is_err());
        // The aborted task reports its end as it is dropped.
        tokio::task::yield_now().await;

        for (series, expected) in [
            (r#"delayed_tasks_started_total{function="fetch"}"#, 4.0),
            (r#"delayed_tasks_finished_total{function="fetch"}"#, 4.0),
            (r#"delayed_tasks_failed_total{function="boom"}"#, 1.0),
            (r#"delayed_tasks_retried_total{function="flaky"}"#, 1.0),
            (r#"delayed_tasks_finished_total{function="flaky"}"#, 1.0),
            (r#"delayed_tasks_cancelled_total{function="forever"}"#, 1.0),
        ] {
            assert_eq!(value(&handle, series), expected, "{series}");
        }
        let rendered = handle.render();
        assert!(
            sample(&rendered, r#"delayed_tasks_failed_total{function="fetch"}"#).is_none(),
            "{rendered}"
        );
        assert!(
            rendered.contains("# HELP delayed_tasks_started_total"),
            "{rendered}"
        );
    });
}

#[test]
fn queue_wait_and_run_time_are_histograms_in_seconds() {
    with_recorder(|handle| async move {
        let metrics = Metrics::new();
        let all: Vec<_> = (1..=4).map(fetch).collect();
        delayed::compute_with(all, Options::new().callback(metrics.clone()))
            .await
            .unwrap();
        // Two permits, four one-second tasks: two start at once, two wait
        // a second. Each runs a second.
        let queued = r#"delayed_task_queued_seconds_sum{function="fetch"}"#;
        assert_eq!(value(&handle, queued), 2.0);
        let count = r#"delayed_task_queued_seconds_count{function="fetch"}"#;
        assert_eq!(value(&handle, count), 4.0);
        let run = r#"delayed_task_run_seconds_sum{function="fetch"}"#;
        assert_eq!(value(&handle, run), 4.0);
    });
}

#[test]
fn limit_gauges_show_permits_in_use_and_waiters() {
    with_recorder(|handle| async move {
        let metrics = Metrics::new();
        let all: Vec<_> = (1..=5).map(fetch).collect();
        let options = Options::new().callback(metrics.clone());
        let running = tokio::spawn(delayed::compute_with(all, options));
        tokio::time::sleep(Duration::from_millis(500)).await;
        metrics.record_limits();
        assert_eq!(metrics.limits(), ["two"]);
        assert_eq!(value(&handle, r#"delayed_limit_permits{limit="two"}"#), 2.0);
        assert_eq!(
            value(&handle, r#"delayed_limit_permits_in_use{limit="two"}"#),
            2.0
        );
        assert_eq!(value(&handle, r#"delayed_limit_waiters{limit="two"}"#), 3.0);
        assert_eq!(running.await.unwrap().unwrap(), [1, 2, 3, 4, 5]);
        // Set as the last task ended, without asking.
        assert_eq!(
            value(&handle, r#"delayed_limit_permits_in_use{limit="two"}"#),
            0.0
        );
        assert_eq!(value(&handle, r#"delayed_limit_waiters{limit="two"}"#), 0.0);
    });
}

#[test]
fn tasks_served_from_a_cache_are_counted_apart() {
    with_recorder(|handle| async move {
        let cache = Cache::memory();
        let metrics = Metrics::new();
        let options = || Options::new().cache(&cache).callback(metrics.clone());
        assert_eq!(square(3).compute_with(options()).await.unwrap(), 9);
        assert_eq!(square(3).compute_with(options()).await.unwrap(), 9);
        assert_eq!(
            value(
                &handle,
                r#"delayed_tasks_finished_total{function="square"}"#
            ),
            1.0
        );
        assert_eq!(
            value(&handle, r#"delayed_tasks_cached_total{function="square"}"#),
            1.0
        );
    });
}

#[test]
fn computes_without_metrics_record_nothing() {
    with_recorder(|handle| async move {
        let all: Vec<_> = (1..=2).map(fetch).collect();
        delayed::compute(all).await.unwrap();
        let rendered = handle.render();
        assert!(
            !rendered.contains("delayed_tasks_started_total{"),
            "{rendered}"
        );
    });
}

#[test]
fn a_callback_attached_twice_counts_each_task_once() {
    with_recorder(|handle| async move {
        let metrics = Metrics::new();
        let _scope = delayed::observe(metrics.clone());
        fetch(7)
            .compute_with(Options::new().callback(metrics.clone()))
            .await
            .unwrap();
        assert_eq!(
            value(&handle, r#"delayed_tasks_started_total{function="fetch"}"#),
            1.0
        );
    });
}
