//! The persistent cache in JetStream (`delayed::cache::JetStreamStore`)
//! against a real `nats-server -js`, with a worker process.
//!
//! Covered: the store's own operations, seen the same from two
//! connections; cached registered functions run on a worker once, and a
//! second client on its own connection, with its own cache handle over
//! the same bucket, gets every result from the cache without a task;
//! early cutoff across the cluster; a corrupt entry in the bucket is a
//! miss that runs the task again and gives the right result; errors are
//! not kept.

mod nats;

use std::future::Future;
use std::io::{self, Write};
use std::time::Duration;

use delayed::cache::{Cache, JetStreamStore, JetStreamStoreConfig, Store};
use delayed::cluster::{async_nats, Cluster};
use delayed::keyed::Registry;
use delayed::{delayed, Delayed, Options};
use tokio::time::{timeout, Instant};

use nats::{Server, WorkerProcess};

/// The entry point of worker processes; returns at once in a normal run.
#[test]
fn worker_process() {
    nats::worker_main(registry);
}

/// Appends `run TAG` to the file `log`.
fn note(log: &str, tag: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        // One write per line: tasks running at once must not interleave.
        .and_then(|mut file| {
            file.write_all(format!("run {tag} {}\n", nats::worker_name()).as_bytes())
        })
        .unwrap_or_else(|err| panic!("cannot write {log}: {err}"));
}

fn runs(log: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Logs its run, returns `x * x`.
#[delayed(register, cache)]
fn square(log: String, x: u64) -> u64 {
    note(&log, &format!("square {x}"));
    x * x
}

/// Logs its run, returns `x % 2`: many inputs, two outputs.
#[delayed(register, cache)]
fn parity(log: String, x: u64) -> u64 {
    note(&log, &format!("parity {x}"));
    x % 2
}

/// Logs its run, sums `xs`.
#[delayed(register, cache)]
fn sum(log: String, xs: Vec<u64>) -> u64 {
    note(&log, &format!("sum {}", xs.len()));
    xs.iter().sum()
}

/// Fails every time it runs.
#[delayed(register, cache)]
fn broken(log: String, x: u64) -> Result<u64, io::Error> {
    note(&log, &format!("broken {x}"));
    Err(io::Error::other(format!("broken {x}")))
}

fn registry() -> Registry {
    delayed::registry![square, parity, sum, broken]
}

/// Runs `test`, failing if it takes longer than `limit`, so nothing hangs.
async fn within<F: Future<Output = ()>>(limit: Duration, test: F) {
    let start = Instant::now();
    if timeout(limit, test).await.is_err() {
        panic!("the test did not finish within {limit:?}");
    }
    eprintln!("test took {:?}", start.elapsed());
}

/// A server, a worker process `w1`, and a log file for the runs.
struct Env {
    _worker: WorkerProcess,
    server: Server,
    log: String,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let server = Server::start().await;
        let worker = WorkerProcess::start(&server.url(), "w1", 4).await;
        let dir = tempfile::tempdir().expect("a temporary folder");
        Env {
            _worker: worker,
            server,
            log: dir.path().join("runs.log").display().to_string(),
            _dir: dir,
        }
    }
}

/// A client: its own connection, cluster and cache handle over `bucket`.
struct Client {
    cluster: Cluster,
    cache: Cache,
}

impl Client {
    async fn connect(url: &str, bucket: &str) -> Client {
        let cluster = Cluster::connect(url, registry())
            .await
            .unwrap_or_else(|err| panic!("cannot connect the cluster: {err}"));
        let store = JetStreamStore::open(connection(url).await, bucket)
            .await
            .unwrap_or_else(|err| panic!("cannot open the cache bucket: {err}"));
        Client {
            cluster,
            cache: Cache::new(store),
        }
    }

    fn options(&self) -> Options {
        Options::new().cluster(&self.cluster).cache(&self.cache)
    }
}

async fn connection(url: &str) -> async_nats::Client {
    async_nats::connect(url)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {url}: {err}"))
}

fn squares_summed(log: &str, n: u64) -> Delayed<u64> {
    let squares: Vec<Delayed<u64>> = (0..n).map(|x| square(log.to_owned(), x)).collect();
    sum(log.to_owned(), squares)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_keeps_heads_reads_removes_and_clears_entries_for_every_connection() {
    within(Duration::from_secs(60), async {
        let server = Server::start().await;
        let url = server.url();
        let config = JetStreamStoreConfig::new("cache_ops").max_age(Duration::from_secs(3600));
        let one = JetStreamStore::open_with(connection(&url).await, config)
            .await
            .expect("the bucket");
        let other = JetStreamStore::open(connection(&url).await, "cache_ops")
            .await
            .expect("the same bucket");
        assert_eq!(other.bucket(), "cache_ops");

        assert_eq!(one.head("k1").await.unwrap(), None);
        assert_eq!(one.get("k1").await.unwrap(), None);
        // Bigger than a chunk (128 KiB): several chunks, one entry.
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        one.put("k1", [1; 32], big.clone()).await.unwrap();
        one.put("k2", [2; 32], b"small".to_vec()).await.unwrap();
        assert_eq!(other.head("k1").await.unwrap(), Some([1; 32]));
        assert_eq!(other.get("k1").await.unwrap(), Some(big));
        assert_eq!(
            other.get("k2").await.unwrap().as_deref(),
            Some(&b"small"[..])
        );

        // A second write of one key replaces the first.
        other.put("k2", [3; 32], b"again".to_vec()).await.unwrap();
        assert_eq!(one.head("k2").await.unwrap(), Some([3; 32]));
        assert_eq!(one.get("k2").await.unwrap().as_deref(), Some(&b"again"[..]));

        other.remove("k2").await.unwrap();
        other.remove("never-there").await.unwrap();
        assert_eq!(one.head("k2").await.unwrap(), None);
        assert_eq!(one.get("k2").await.unwrap(), None);

        one.clear().await.unwrap();
        assert_eq!(other.head("k1").await.unwrap(), None);
        assert_eq!(other.get("k1").await.unwrap(), None);
        // Usable after a clear.
        one.put("k3", [4; 32], b"after".to_vec()).await.unwrap();
        assert_eq!(other.head("k3").await.unwrap(), Some([4; 32]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_client_reads_what_the_first_computed_on_the_workers_and_runs_nothing() {
    within(Duration::from_secs(120), async {
        let env = Env::start().await;
        let (url, log) = (env.server.url(), env.log.clone());
        let expected: u64 = (0..20u64).map(|x| x * x).sum();

        let first = Client::connect(&url, "delayed_cache").await;
        let result = squares_summed(&log, 20)
            .compute_with(first.options())
            .await
            .expect("the first compute");
        assert_eq!(result, expected);
        let ran = runs(&log);
        assert_eq!(ran.len(), 21, "each node runs once: {ran:?}");
        assert!(
            ran.iter().all(|line| line.ends_with(" w1")),
            "every task ran on the worker: {ran:?}"
        );
        let stats = first.cache.stats();
        assert_eq!((stats.misses, stats.hits), (21, 0));
        assert!(stats.bytes_written > 0);

        let second = Client::connect(&url, "delayed_cache").await;
        let again = squares_summed(&log, 20)
            .compute_with(second.options())
            .await
            .expect("the second compute");
        assert_eq!(again, expected);
        assert_eq!(runs(&log).len(), 21, "nothing ran again: {:?}", runs(&log));
        let stats = second.cache.stats();
        // The sum is a hit: its squares, hits too, are never read.
        assert_eq!((stats.misses, stats.hits), (0, 21));
        assert_eq!(second.cluster.history().len(), 0, "no task was sent");

        // One more input: only it and the sum run.
        let more = squares_summed(&log, 21)
            .compute_with(second.options())
            .await
            .expect("the third compute");
        assert_eq!(more, expected + 400);
        let ran = runs(&log);
        assert_eq!(ran[21..], ["run square 20 w1", "run sum 21 w1"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unchanged_remote_output_stops_the_rerun_there() {
    within(Duration::from_secs(120), async {
        let env = Env::start().await;
        let (url, log) = (env.server.url(), env.log.clone());
        let client = Client::connect(&url, "cutoff_cache").await;
        let graph = |x: u64| square(log.clone(), parity(log.clone(), x));

        assert_eq!(graph(3).compute_with(client.options()).await.unwrap(), 1);
        assert_eq!(runs(&log), ["run parity 3 w1", "run square 1 w1"]);
        // parity(5) is new and runs, makes the same 1: square(1) is a hit.
        assert_eq!(graph(5).compute_with(client.options()).await.unwrap(), 1);
        assert_eq!(
            runs(&log),
            ["run parity 3 w1", "run square 1 w1", "run parity 5 w1"]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_entry_in_the_bucket_is_a_miss_and_errors_are_not_kept() {
    within(Duration::from_secs(120), async {
        let env = Env::start().await;
        let (url, log) = (env.server.url(), env.log.clone());
        let client = Client::connect(&url, "corrupt_cache").await;

        let node = || square(log.clone(), 9);
        assert_eq!(node().compute_with(client.options()).await.unwrap(), 81);
        // Find the one entry and spoil its bytes, keeping its digest.
        let store = JetStreamStore::open(connection(&url).await, "corrupt_cache")
            .await
            .unwrap();
        let objects = async_nats::jetstream::new(connection(&url).await)
            .get_object_store("corrupt_cache")
            .await
            .unwrap();
        let names: Vec<String> = {
            use futures::TryStreamExt;
            objects
                .list()
                .await
                .unwrap()
                .map_ok(|info| info.name)
                .try_collect()
                .await
                .unwrap()
        };
        assert_eq!(names.len(), 1, "one entry: {names:?}");
        let digest = store.head(&names[0]).await.unwrap().expect("its digest");
        store
            .put(&names[0], digest, b"not an entry".to_vec())
            .await
            .unwrap();

        let fresh = Client::connect(&url, "corrupt_cache").await;
        assert_eq!(node().compute_with(fresh.options()).await.unwrap(), 81);
        assert_eq!(runs(&log), ["run square 9 w1", "run square 9 w1"]);
        assert_eq!(fresh.cache.stats().corrupt, 1);

        // Failures are not kept: each compute runs it again.
        for _ in 0..2 {
            let err = broken(log.clone(), 1)
                .compute_with(client.options())
                .await
                .expect_err("it fails");
            assert!(err.is_failed(), "{err}");
            let source = std::error::Error::source(&err).expect("the worker's error");
            assert_eq!(source.to_string(), "broken 1");
        }
        assert_eq!(
            runs(&log)
                .iter()
                .filter(|line| line.starts_with("run broken"))
                .count(),
            2
        );
    })
    .await;
}
