//! A service: an axum app whose handlers build graphs of simulated slow
//! backend calls under one shared limit, with the live dashboard, metrics
//! for Prometheus and request-scoped logs on.
//!
//! ```text
//! cargo run --release --example service --features dashboard,metrics
//! ```
//!
//! Then open the dashboard at <http://127.0.0.1:8787> and ask the service:
//!
//! ```text
//! curl http://127.0.0.1:3000/report/7      # 12 backend calls, cleaned, summarized
//! curl http://127.0.0.1:3000/fastest/7     # the first of three mirrors; the others are cancelled
//! curl http://127.0.0.1:3000/metrics       # Prometheus text: tasks, queue wait, the limit's permits
//! ```
//!
//! `--demo N` serves as usual and also sends itself N reports, prints the
//! metrics and exits (CI runs it so). `--port P` and `--dashboard-port D`
//! choose the ports (0 for any free one).

use std::net::SocketAddr;
use std::time::Duration;

use delayed::dashboard::axum::extract::{Path, State};
use delayed::dashboard::axum::routing::get;
use delayed::dashboard::axum::{self, Router};
use delayed::dashboard::Dashboard;
use delayed::metrics::Metrics;
use delayed::{delayed, Delayed, Limit};
use futures::StreamExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The backend takes four calls at a time, whatever the requests.
static BACKEND: Limit = Limit::new("backend", 4);

/// A backend call that takes 40 to 240 ms.
#[delayed(limit = BACKEND)]
async fn fetch(sensor: u64, part: u64) -> Vec<f64> {
    let ms = 40 + (sensor * 37 + part * 71) % 200;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    (0..64).map(|i| ((sensor + part + i) % 17) as f64).collect()
}

#[delayed]
fn clean(readings: &[f64]) -> Vec<f64> {
    readings.iter().copied().filter(|x| *x > 2.0).collect()
}

#[delayed(blocking)]
fn summarize(sensor: u64, parts: Vec<Vec<f64>>) -> String {
    let all: Vec<f64> = parts.into_iter().flatten().collect();
    let mean = all.iter().sum::<f64>() / all.len().max(1) as f64;
    // Logged inside the request's `report{sensor=..}` span, on whichever
    // blocking thread this runs.
    tracing::info!(readings = all.len(), "summarized");
    format!("sensor {sensor}: {} readings, mean {mean:.2}\n", all.len())
}

/// A mirror of the backend: some are slow.
#[delayed]
async fn mirror(sensor: u64, which: u64) -> String {
    let ms = 50 + (sensor * 13 + which * 97) % 400;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("sensor {sensor} from mirror {which} in {ms} ms\n")
}

#[derive(Clone)]
struct App {
    prometheus: PrometheusHandle,
    metrics: Metrics,
}

/// Twelve backend calls, each cleaned, then one summary.
#[tracing::instrument]
async fn report(Path(sensor): Path<u64>) -> String {
    let cleaned: Vec<Delayed<Vec<f64>>> = (0..12)
        .map(|part| clean(fetch(sensor, part).named(format!("fetch-{sensor}-{part}"))))
        .collect();
    match summarize(sensor, cleaned)
        .named(format!("summary-{sensor}"))
        .await
    {
        Ok(text) => text,
        Err(err) => format!("failed: {}\n", err.report()),
    }
}

/// The first of three mirrors to answer; the two others are cancelled.
#[tracing::instrument]
async fn fastest(Path(sensor): Path<u64>) -> String {
    let mirrors: Vec<_> = (0..3).map(|which| mirror(sensor, which)).collect();
    let mut answers = delayed::as_completed(&mirrors);
    match answers.next().await {
        Some((_, Ok(text))) => text,
        Some((_, Err(err))) => format!("failed: {}\n", err.report()),
        None => "no mirror\n".to_string(),
    }
}

async fn metrics_text(State(app): State<App>) -> String {
    app.metrics.record_limits();
    app.prometheus.render()
}

/// The value of `--name` on the command line.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A GET over a plain TCP connection: the body of the answer.
async fn get_text(addr: SocketAddr, path: String) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer
        .split_once("\r\n\r\n")
        .map_or(answer.clone(), |(_, body)| body.to_string()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    delayed::metrics::describe();
    let metrics = Metrics::new();
    let dashboard_port = arg("--dashboard-port").unwrap_or_else(|| "8787".to_string());
    let dashboard = Dashboard::serve(format!("127.0.0.1:{dashboard_port}")).await?;
    // Every compute of the process is on the dashboard and in the metrics.
    let _on_dashboard = delayed::observe(dashboard.clone());
    let _in_metrics = delayed::observe(metrics.clone());

    let app = Router::new()
        .route("/report/{sensor}", get(report))
        .route("/fastest/{sensor}", get(fastest))
        .route("/metrics", get(metrics_text))
        .with_state(App {
            prometheus,
            metrics: metrics.clone(),
        });
    let port = arg("--port").unwrap_or_else(|| "3000".to_string());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let addr = listener.local_addr()?;
    println!("service   http://{addr}/report/7  /fastest/7  /metrics");
    println!("dashboard {}", dashboard.url());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let Some(demo) = arg("--demo").and_then(|n| n.parse::<u64>().ok()) else {
        server.await??;
        return Ok(());
    };
    // The demo: N reports at once, one race, then the metrics.
    let asks = (1..=demo).map(|sensor| get_text(addr, format!("/report/{sensor}")));
    let reports = futures::future::try_join_all(asks).await?;
    for report in &reports {
        print!("{report}");
    }
    print!("{}", get_text(addr, "/fastest/3".to_string()).await?);
    let rendered = get_text(addr, "/metrics".to_string()).await?;
    let lines: Vec<&str> = rendered
        .lines()
        .filter(|line| {
            line.starts_with("delayed_tasks_finished_total") || line.starts_with("delayed_limit")
        })
        .collect();
    println!("{}", lines.join("\n"));
    let ok = reports.iter().all(|r| r.contains("readings"));
    if !ok || !lines.iter().any(|l| l.contains(r#"function="fetch""#)) {
        return Err("the demo's reports or metrics are missing".into());
    }
    dashboard.shutdown();
    Ok(())
}
