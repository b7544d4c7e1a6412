//! The registered functions of the `cluster` and `worker` examples: the
//! seed's load → clean → analyze → store pipeline on generated data.
//!
//! Both binaries include this file with
//! `#[path = "cluster_tasks/mod.rs"] mod tasks;`, so the client and every
//! worker agree on the functions and their names. (It lives in a folder so
//! that cargo does not take it for an example of its own.)

use std::time::Duration;

use delayed::delayed;
use delayed::keyed::Registry;
use serde::{Deserialize, Serialize};

/// What `analyze` finds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub series: usize,
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// Every function a worker runs.
pub fn registry() -> Registry {
    delayed::registry![load, clean, analyze, store]
}

/// "Reads" the data set `name`: waits 300 ms, as a slow read would, then
/// generates 200 readings from the name, the same on every machine. About
/// one in 25 is missing (the sensor writes -999) and one in 100 is a
/// glitch far out of range. (Not NaN: results travel as JSON, which has no
/// NaN.)
#[delayed(register)]
pub async fn load(name: String) -> Vec<f64> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    // FNV-1a of the name seeds a xorshift generator.
    let mut state = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..200)
        .map(|_| match next() % 100 {
            0..=3 => -999.0,
            4 => 1e6,
            _ => (next() % 10_000) as f64 / 100.0,
        })
        .collect()
}

/// Drops missing readings and glitches.
#[delayed(register)]
pub fn clean(readings: Vec<f64>) -> Vec<f64> {
    readings
        .into_iter()
        .filter(|x| (0.0..=100.0).contains(x))
        .collect()
}

/// Count, mean and range over every series.
#[delayed(register)]
pub fn analyze(series: Vec<Vec<f64>>) -> Summary {
    let all: Vec<f64> = series.iter().flatten().copied().collect();
    Summary {
        series: series.len(),
        count: all.len(),
        mean: all.iter().sum::<f64>() / all.len().max(1) as f64,
        min: all.iter().copied().fold(f64::INFINITY, f64::min),
        max: all.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// "Stores" the summary (another 100 ms of pretend I/O) and says what it
/// wrote.
#[delayed(register)]
pub async fn store(summary: &Summary) -> String {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let json = serde_json::to_string(summary).unwrap_or_default();
    format!("summary.json ({} bytes): {json}", json.len())
}
