//! Running a cluster as a team does, against a real `nats-server -js`
//! with worker processes: namespaces side by side, worker pools, routing
//! by function, a task no worker can take, dead and dropped clients, the
//! settings, and in-progress acks while a task blocks its worker.
//!
//! Registered functions run in other processes, so they log what they do
//! to files whose paths they take as arguments.

mod nats;

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use delayed::cluster::{async_nats, Cluster, Settings};
use delayed::keyed::Registry;
use delayed::{delayed, Delayed, Options};
use futures::TryStreamExt;
use tokio::time::{sleep, timeout, Instant};

use nats::{Server, WorkerProcess};

/// The entry point of worker processes; returns at once in a normal run.
#[test]
fn worker_process() {
    nats::worker_main(registry);
}

/// A client in a process of its own, killed by a test: computes
/// `CLIENT_TASKS` naps; returns at once in a normal run.
#[test]
fn client_process() {
    let Ok(url) = std::env::var(CLIENT_URL) else {
        return;
    };
    let log = std::env::var(CLIENT_LOG).expect("the log's path");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let client = async_nats::connect(&url).await.expect("a connection");
        let cluster = Cluster::from_client_with(client, registry(), settings())
            .await
            .expect("the cluster");
        let naps: Vec<Delayed<u64>> = (0..CLIENT_TASKS)
            .map(|i| nap(log.clone(), format!("dead-{i}"), 200))
            .collect();
        println!("client computing");
        let _ = delayed::compute_with(naps, Options::new().cluster(&cluster)).await;
    });
}

const CLIENT_URL: &str = "DELAYED_TEST_CLIENT_URL";
const CLIENT_LOG: &str = "DELAYED_TEST_CLIENT_LOG";
const CLIENT_TASKS: usize = 400;
/// The application version a worker process says it runs.
const VERSION_VAR: &str = "DELAYED_TEST_APP_VERSION";
/// How long a client may be silent before workers count it dead, here.
const CLIENT_TIMEOUT_MS: &str = "1000";

fn settings() -> Settings {
    Settings::new()
        .client_timeout(Duration::from_secs(1))
        .history(usize::MAX)
}

// ---------------------------------------------------------------------------
// The registered functions.

/// Appends `line` to the file `log`.
fn note(log: &str, line: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        // One write per line: tasks running at once must not interleave.
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()))
        .unwrap_or_else(|err| panic!("cannot write {log}: {err}"));
}

fn lines(log: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn count(log: &str, prefix: &str) -> usize {
    lines(log)
        .iter()
        .filter(|line| line.starts_with(prefix))
        .count()
}

/// The application version of the worker that runs it, and its name.
#[delayed(register)]
fn version(i: u64) -> String {
    let _ = i;
    format!(
        "v{} {}",
        std::env::var(VERSION_VAR).unwrap_or_default(),
        nats::worker_name()
    )
}

/// The worker that runs it; asks for the pool `gpu`.
#[delayed(register, pool = "gpu")]
fn on_gpu(i: u64) -> String {
    let _ = i;
    nats::worker_name()
}

/// The worker that runs it; asks for no pool.
#[delayed(register)]
fn anywhere(i: u64) -> String {
    let _ = i;
    nats::worker_name()
}

/// Logs `start TAG`, sleeps `ms`.
#[delayed(register)]
async fn nap(log: String, tag: String, ms: u64) -> u64 {
    note(&log, &format!("start {tag}"));
    sleep(Duration::from_millis(ms)).await;
    ms
}

/// Logs `hog`, then blocks its thread for `ms`: on a one-thread runtime,
/// the whole worker runtime.
#[delayed(register)]
async fn hog(log: String, ms: u64) -> u64 {
    note(&log, "hog");
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Floats JSON cannot hold, and some it can, `n` times over.
#[delayed(register)]
fn specials(n: u64) -> Vec<f64> {
    let one = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        5e-324,
        1.5,
    ];
    (0..n).flat_map(|_| one).collect()
}

/// How many NaNs and infinities `xs` holds, and the bits of the rest.
#[delayed(register)]
fn census(xs: Vec<f64>) -> (u64, u64, Vec<u64>) {
    let nan = xs.iter().filter(|x| x.is_nan()).count() as u64;
    let inf = xs.iter().filter(|x| x.is_infinite()).count() as u64;
    let bits = xs
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| x.to_bits())
        .collect();
    (nan, inf, bits)
}

/// `n` floats: 8 bytes each.
#[delayed(register)]
fn floats(n: u64) -> Vec<f64> {
    (0..n).map(|i| (i as f64).sqrt()).collect()
}

#[delayed(register)]
fn sum_of(xs: Vec<f64>) -> f64 {
    xs.iter().sum()
}

fn registry() -> Registry {
    delayed::registry![version, on_gpu, anywhere, nap, hog, specials, census, floats, sum_of]
}

// ---------------------------------------------------------------------------
// Setup.

/// Runs `test`, failing if it takes longer than `limit`, so nothing hangs.
async fn within<F: Future<Output = ()>>(limit: Duration, test: F) {
    let start = Instant::now();
    if timeout(limit, test).await.is_err() {
        panic!("the test did not finish within {limit:?}");
    }
    eprintln!("test took {:?}", start.elapsed());
}

async fn cluster(url: &str, settings: Settings) -> Cluster {
    let client = async_nats::connect(url).await.expect("a connection");
    Cluster::from_client_with(client, registry(), settings)
        .await
        .unwrap_or_else(|err| panic!("cannot open the cluster: {err}"))
}

fn temp_log(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

async fn queued(js: &async_nats::jetstream::Context, stream: &str) -> u64 {
    let mut stream = js.get_stream(stream).await.expect("the task stream");
    stream.info().await.expect("its info").state.messages
}

async fn result_keys(js: &async_nats::jetstream::Context) -> Vec<String> {
    let kv = js
        .get_key_value("delayed_results")
        .await
        .expect("the bucket");
    let keys = kv.keys().await.expect("its keys");
    timeout(Duration::from_secs(10), keys.try_collect::<Vec<String>>())
        .await
        .expect("listing keys hangs")
        .expect("the keys")
}

// ---------------------------------------------------------------------------
// Namespaces, pools, routing.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_versions_side_by_side_in_their_own_namespaces_never_mix() {
    within(Duration::from_secs(60), async {
        let server = Server::start().await;
        let url = server.url();
        let _old = WorkerProcess::start_with(
            &url,
            "old",
            2,
            &[(nats::NAMESPACE_VAR, "app-v1"), (VERSION_VAR, "1")],
        )
        .await;
        let _new = WorkerProcess::start_with(
            &url,
            "new",
            2,
            &[(nats::NAMESPACE_VAR, "app-v2"), (VERSION_VAR, "2")],
        )
        .await;
        let v1 = cluster(&url, settings().namespace("app-v1")).await;
        let v2 = cluster(&url, settings().namespace("app-v2")).await;
        let versions = |cluster: &Cluster| {
            let nodes: Vec<Delayed<String>> = (0..12).map(version).collect();
            delayed::compute_with(nodes, Options::new().cluster(cluster))
        };
        let (one, two) = tokio::join!(versions(&v1), versions(&v2));
        assert_eq!(one.unwrap(), vec!["v1 old".to_string(); 12]);
        assert_eq!(two.unwrap(), vec!["v2 new".to_string(); 12]);

        // Their pieces are their own.
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        for stream in [
            "APP-V1_TASKS",
            "APP-V2_TASKS",
            "KV_app-v1_results",
            "OBJ_app-v2_objects",
        ] {
            js.get_stream(stream)
                .await
                .unwrap_or_else(|err| panic!("no stream {stream}: {err}"));
        }
        assert!(js.get_stream("DELAYED_TASKS").await.is_err());
        let workers: Vec<String> = v1
            .workers()
            .await
            .unwrap()
            .iter()
            .map(|w| w.name().to_string())
            .collect();
        assert_eq!(workers, ["old"]);

        // A namespace that is not a name is refused, saying why.
        let client = async_nats::connect(&url).await.unwrap();
        let err =
            Cluster::from_client_with(client, registry(), Settings::new().namespace("App.V3"))
                .await
                .unwrap_err();
        assert!(err.to_string().contains("bad namespace `App.V3`"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pools_take_the_tasks_that_ask_for_them_and_a_missing_pool_fails_clearly() {
    within(Duration::from_secs(60), async {
        let server = Server::start().await;
        let url = server.url();
        let _cpu = WorkerProcess::start(&url, "cpu", 2).await;
        let _gpu = WorkerProcess::start_with(&url, "gpu", 2, &[(nats::POOLS_VAR, "gpu")]).await;
        let patience = Duration::from_secs(2);
        let cluster = cluster(&url, settings().no_worker_timeout(patience)).await;
        let options = || Options::new().cluster(&cluster);

        // A function's pool, a task's pool, and no pool.
        let gpu: Vec<Delayed<String>> = (0..6).map(on_gpu).collect();
        assert_eq!(
            delayed::compute_with(gpu, options()).await.unwrap(),
            vec!["gpu".to_string(); 6]
        );
        let cpu: Vec<Delayed<String>> = (0..6).map(anywhere).collect();
        assert_eq!(
            delayed::compute_with(cpu, options()).await.unwrap(),
            vec!["cpu".to_string(); 6]
        );
        let asked = anywhere(7).pool("gpu");
        assert_eq!(asked.compute_with(options()).await.unwrap(), "gpu");
        let statuses = cluster.workers().await.unwrap();
        let pools: Vec<(&str, &[String])> =
            statuses.iter().map(|w| (w.name(), w.pools())).collect();
        assert_eq!(
            pools,
            [
                ("cpu", &["default".to_string()][..]),
                ("gpu", &["gpu".to_string()][..])
            ]
        );

        // No worker serves `tpu`: the task waits, then fails, saying so.
        let started = Instant::now();
        let err = anywhere(8)
            .pool("tpu")
            .named("lost")
            .compute_with(options())
            .await
            .unwrap_err();
        assert!(started.elapsed() >= patience, "{:?}", started.elapsed());
        assert!(err.is_invalid(), "{err}");
        assert_eq!(err.key().to_string(), "lost");
        assert!(
            err.to_string()
                .contains("no live worker runs `anywhere` in pool `tpu`"),
            "{err}"
        );
        // Nothing of it stays queued.
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        while queued(&js, "DELAYED_TASKS").await > 0 {
            assert!(Instant::now() < deadline, "the lost task stays queued");
            sleep(Duration::from_millis(50)).await;
        }

        // A pool that is not a name fails at once.
        let err = anywhere(9)
            .pool("Big Iron")
            .compute_with(options())
            .await
            .unwrap_err();
        assert!(err.is_invalid(), "{err}");
        assert!(err.to_string().contains("bad pool `Big Iron`"), "{err}");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Dead and dropped clients.

/// A server, a folder, and a worker process of concurrency 2 that takes
/// a client silent for `CLIENT_TIMEOUT_MS` for dead.
async fn liveness_setup() -> (Server, tempfile::TempDir, WorkerProcess) {
    let server = Server::start().await;
    let worker = WorkerProcess::start_with(
        &server.url(),
        "w1",
        2,
        &[(nats::CLIENT_TIMEOUT_VAR, CLIENT_TIMEOUT_MS)],
    )
    .await;
    (server, tempfile::tempdir().unwrap(), worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_clients_queued_tasks_never_start_and_its_results_go() {
    within(Duration::from_secs(90), async {
        let (server, dir, _worker) = liveness_setup().await;
        let url = server.url();
        let log = temp_log(&dir, "naps.log");
        let mut client = WorkerProcess::spawn_test(
            "client_process",
            "client",
            &[(CLIENT_URL, &url), (CLIENT_LOG, &log)],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while count(&log, "start dead-") < 6 {
            assert!(Instant::now() < deadline, "the client's tasks do not start");
            sleep(Duration::from_millis(20)).await;
        }
        client.kill9();
        let at_kill = count(&log, "start dead-");

        // Within the timeout (and a sweep), nothing of it starts any more.
        sleep(Duration::from_secs(3)).await;
        let settled = count(&log, "start dead-");
        sleep(Duration::from_secs(2)).await;
        let later = count(&log, "start dead-");
        assert_eq!(later, settled, "tasks of the dead client still start");
        assert!(
            settled - at_kill <= 20,
            "{} tasks started after the kill",
            settled - at_kill
        );
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        assert_eq!(
            queued(&js, "DELAYED_TASKS").await,
            0,
            "its tasks stay queued"
        );
        assert_eq!(result_keys(&js).await, Vec::<String>::new());

        // Another client's work runs at once, not behind the dead one's.
        let alive = cluster(&url, settings()).await;
        let started = Instant::now();
        let naps: Vec<Delayed<u64>> = (0..4)
            .map(|i| nap(log.clone(), format!("alive-{i}"), 10))
            .collect();
        delayed::compute_with(naps, Options::new().cluster(&alive))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_too_busy_to_send_heartbeats_loses_no_work() {
    within(Duration::from_secs(90), async {
        let (server, dir, _worker) = liveness_setup().await;
        let url = server.url();
        let log = temp_log(&dir, "naps.log");
        // The client runs on a thread of its own, which one of its tasks
        // blocks for three timeouts: no heartbeat goes out, no report or
        // question is read, but its connection stays up.
        let (url_here, log_here) = (url.clone(), log.clone());
        let client = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let cluster = cluster(&url_here, settings()).await;
                let naps: Vec<Delayed<u64>> = (0..40)
                    .map(|i| nap(log_here.clone(), format!("busy-{i}"), 100))
                    .collect();
                tokio::spawn(async {
                    sleep(Duration::from_millis(300)).await;
                    std::thread::sleep(Duration::from_secs(3));
                });
                delayed::compute_with(naps, Options::new().cluster(&cluster)).await
            })
        });
        let got = tokio::task::spawn_blocking(move || client.join().expect("the client thread"))
            .await
            .unwrap()
            .expect("the busy client's compute");
        assert_eq!(got, vec![100; 40]);
        for i in 0..40 {
            assert!(
                count(&log, &format!("start busy-{i}")) >= 1,
                "busy-{i} never ran"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_cut_off_past_the_timeout_runs_its_purged_tasks_again_once_back() {
    within(Duration::from_secs(90), async {
        let (server, dir, _worker) = liveness_setup().await;
        let url = server.url();
        let log = temp_log(&dir, "naps.log");
        // The client reaches the server through a link the test cuts for
        // three timeouts: the worker finds nobody listening for it, takes
        // it for dead and purges its queued tasks and results.
        let link = nats::Link::to(&url).await;
        let client = async_nats::ConnectOptions::new()
            .max_reconnects(None)
            .connect(link.url())
            .await
            .expect("a connection through the link");
        let cluster = Cluster::from_client_with(client, registry(), settings())
            .await
            .expect("the cluster");
        let naps: Vec<Delayed<u64>> = (0..30)
            .map(|i| nap(log.clone(), format!("cut-{i}"), 200))
            .collect();
        let computing = tokio::spawn(async move {
            delayed::compute_with(naps, Options::new().cluster(&cluster)).await
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while count(&log, "start cut-") < 4 {
            assert!(Instant::now() < deadline, "the client's tasks do not start");
            sleep(Duration::from_millis(20)).await;
        }
        link.cut();
        sleep(Duration::from_secs(3)).await;
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        assert_eq!(
            queued(&js, "DELAYED_TASKS").await,
            0,
            "the worker did not purge the silent client's tasks"
        );
        link.mend();
        let got = computing
            .await
            .unwrap()
            .expect("the compute, once the client is back");
        assert_eq!(got, vec![200; 30]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_one_percent_of_queued_tasks_start_after_a_drop() {
    within(Duration::from_secs(90), async {
        let server = Server::start().await;
        let url = server.url();
        let dir = tempfile::tempdir().unwrap();
        let log = temp_log(&dir, "naps.log");
        let _worker = WorkerProcess::start(&url, "w1", 4).await;
        let cluster = cluster(&url, settings()).await;
        const TASKS: usize = 1000;
        let naps: Vec<Delayed<u64>> = (0..TASKS)
            .map(|i| nap(log.clone(), format!("t{i}"), 100))
            .collect();
        let options = Options::new().cluster(&cluster);
        let compute = tokio::spawn(async move { delayed::compute_with(naps, options).await });
        let deadline = Instant::now() + Duration::from_secs(30);
        while count(&log, "start t") < 20 {
            assert!(Instant::now() < deadline, "the tasks do not start");
            sleep(Duration::from_millis(10)).await;
        }
        let before = count(&log, "start t");
        compute.abort();
        let _ = compute.await;
        let queued_at_drop = TASKS - before;

        sleep(Duration::from_secs(3)).await;
        let after = count(&log, "start t") - before;
        assert!(
            after * 100 <= queued_at_drop,
            "{after} of {queued_at_drop} queued tasks started after the drop"
        );
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        assert_eq!(queued(&js, "DELAYED_TASKS").await, 0);
        assert_eq!(result_keys(&js).await, Vec::<String>::new());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Settings.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_that_blocks_its_workers_runtime_past_ack_wait_runs_once() {
    within(Duration::from_secs(60), async {
        let server = Server::start().await;
        let url = server.url();
        let dir = tempfile::tempdir().unwrap();
        let log = temp_log(&dir, "hog.log");
        let _worker = WorkerProcess::start_with(
            &url,
            "w1",
            1,
            &[
                (nats::FLAVOR_VAR, "current_thread"),
                (nats::ACK_WAIT_VAR, "1000"),
            ],
        )
        .await;
        let cluster = cluster(&url, settings().ack_wait(Duration::from_secs(1))).await;
        // Three times `ack_wait`, the runtime blocked all along.
        let ms = hog(log.clone(), 3000)
            .compute_with(Options::new().cluster(&cluster))
            .await
            .unwrap();
        assert_eq!(ms, 3000);
        assert_eq!(lines(&log), ["hog"], "it ran more than once");
        let history = cluster.history();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].delivered(), 1);

        // The consumer took the worker's settings.
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        let mut stream = js.get_stream("DELAYED_TASKS").await.unwrap();
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_consumer("delayed-default-hog")
            .await
            .expect("a consumer per pool and function");
        let config = consumer.info().await.unwrap().config.clone();
        assert_eq!(config.ack_wait, Duration::from_secs(1));
        assert_eq!(config.max_deliver, 3);
        assert_eq!(
            config.filter_subject, "delayed.tasks.default.hog.>",
            "routed by pool and function"
        );
        let _ = stream.info().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_keeps_only_the_last_tasks_it_is_told() {
    within(Duration::from_secs(60), async {
        let server = Server::start().await;
        let url = server.url();
        let _worker = WorkerProcess::start(&url, "w1", 2).await;
        let cluster = cluster(&url, Settings::new().history(3)).await;
        for i in 0..5 {
            let node = anywhere(i).named(format!("n{i}"));
            node.compute_with(Options::new().cluster(&cluster))
                .await
                .unwrap();
        }
        let keys: Vec<String> = cluster
            .history()
            .iter()
            .map(|task| task.key().to_string())
            .collect();
        assert_eq!(keys, ["n2", "n3", "n4"]);
        let none = self::cluster(&url, Settings::new().history(0)).await;
        anywhere(9)
            .compute_with(Options::new().cluster(&none))
            .await
            .unwrap();
        assert!(none.history().is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// The binary codec.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nan_and_infinities_travel_to_the_client_and_between_workers() {
    within(Duration::from_secs(60), async {
        let server = Server::start().await;
        let url = server.url();
        let _w1 = WorkerProcess::start(&url, "w1", 2).await;
        let cluster = cluster(&url, settings()).await;
        let options = || Options::new().cluster(&cluster);

        // Read here, from the report.
        let here = specials(3).compute_with(options()).await.unwrap();
        let local = specials(3).compute().await.unwrap();
        let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&here), bits(&local));

        // Read by another remote task, from the store.
        let counted = census(specials(3)).compute_with(options()).await.unwrap();
        assert_eq!(counted, census(specials(3)).compute().await.unwrap());
        assert_eq!((counted.0, counted.1), (3, 6));
        let history = cluster.history();
        assert_eq!(history.len(), 3, "{history:?}");
        assert!(history.iter().all(|task| task.succeeded()));

        // Sent from here with the task: small in the message, big (1 MB,
        // over the 256 KiB inline limit) through the store.
        let odd = vec![f64::NAN, f64::INFINITY, -0.0, f64::NEG_INFINITY];
        let counted = census(Delayed::value(odd.clone()))
            .compute_with(options())
            .await
            .unwrap();
        assert_eq!((counted.0, counted.1), (1, 2));
        assert_eq!(counted.2, vec![(-0.0f64).to_bits()]);
        let many: Vec<f64> = (0..131_072).map(|i| odd[i % 4]).collect();
        let counted = census(Delayed::value(many))
            .compute_with(options())
            .await
            .unwrap();
        assert_eq!((counted.0, counted.1), (32_768, 65_536));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_megabytes_of_floats_go_from_worker_to_worker_exactly() {
    within(Duration::from_secs(60), async {
        let server = Server::start().await;
        let url = server.url();
        let _w1 = WorkerProcess::start(&url, "w1", 1).await;
        let _w2 = WorkerProcess::start(&url, "w2", 1).await;
        let cluster = cluster(&url, settings()).await;
        let n = 10 * 1024 * 1024 / 8;
        let started = Instant::now();
        let total = sum_of(floats(n))
            .compute_with(Options::new().cluster(&cluster))
            .await
            .unwrap();
        eprintln!(
            "10 MB from worker to worker and summed in {:?}",
            started.elapsed()
        );
        let local = sum_of(floats(n)).compute().await.unwrap();
        assert_eq!(total.to_bits(), local.to_bits());
        // Only the sum came here: the floats stayed between the workers.
        assert_eq!(cluster.downloads().results(), 1);
        assert!(
            cluster.downloads().bytes() <= 16,
            "{:?}",
            cluster.downloads()
        );
    })
    .await;
}
