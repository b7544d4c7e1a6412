//! What the dashboard tests share: dask's load → clean → analyze → store
//! pipeline over sensor files, a raw HTTP client, a headless browser and
//! screenshot checks.
#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod http;
pub mod screenshot;

use std::time::Duration;

use delayed::{delayed, Delayed};

/// How long a test waits at most for the page or the server to show what
/// it expects. The waits poll and end as soon as it is there.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The sensor whose file cannot be read.
pub const BROKEN: &str = "sensor-04.txt";

/// Reads a sensor's file (made up from its name); [`BROKEN`] fails.
#[delayed]
pub async fn load(name: String) -> Result<Vec<u64>, std::io::Error> {
    tokio::task::yield_now().await;
    if name == BROKEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no such sensor: {name}"),
        ));
    }
    Ok(name.bytes().map(u64::from).collect())
}

#[delayed]
pub fn clean(data: &[u64]) -> Vec<u64> {
    data.iter().copied().filter(|x| x % 2 == 0).collect()
}

#[delayed]
pub fn analyze(parts: Vec<Vec<u64>>) -> u64 {
    parts.iter().flatten().sum()
}

#[delayed]
pub fn store(total: u64) -> String {
    format!("total={total}")
}

/// `sensor-01.txt`, `sensor-02.txt`, ...
pub fn sensors(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("sensor-{i:02}.txt")).collect()
}

/// The pipeline over `sensors`: tasks `load-sensor-01.txt`,
/// `clean-sensor-01.txt`, ..., `analyze` and `store`.
pub struct Pipeline {
    pub loads: Vec<Delayed<Vec<u64>>>,
    pub cleaned: Vec<Delayed<Vec<u64>>>,
    pub stored: Delayed<String>,
}

impl Pipeline {
    pub fn new(sensors: &[String]) -> Pipeline {
        let loads: Vec<_> = sensors
            .iter()
            .map(|name| load(name.clone()).named(format!("load-{name}")))
            .collect();
        let cleaned: Vec<_> = loads
            .iter()
            .zip(sensors)
            .map(|(data, name)| clean(data).named(format!("clean-{name}")))
            .collect();
        let analysis = analyze(cleaned.clone()).named("analyze");
        let stored = store(analysis).named("store");
        Pipeline {
            loads,
            cleaned,
            stored,
        }
    }
}

/// Says on the terminal, past the test harness's capture, why a test did
/// not run.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}
