//! A tiny HTTP/1.0 client on a raw TCP stream: enough to read the
//! dashboard's JSON and its server-sent events without a browser.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::DEADLINE;

/// A response: its status, its headers (names lowercased) and its body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` and reads the status line and headers.
async fn request(
    addr: SocketAddr,
    path: &str,
) -> (u16, Vec<(String, String)>, BufReader<TcpStream>) {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the dashboard accepts");
    // HTTP/1.0: the server ends the body by closing, with no chunks.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').expect("a header");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    (status, headers, reader)
}

/// `GET path`, read to the end.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    let (status, headers, mut reader) = request(addr, path).await;
    let mut body = String::new();
    reader.read_to_string(&mut body).await.unwrap();
    Response {
        status,
        headers,
        body,
    }
}

/// The dashboard's `/snapshot`.
pub async fn snapshot(addr: SocketAddr) -> Value {
    let response = get(addr, "/snapshot").await;
    assert_eq!(response.status, 200, "{}", response.body);
    serde_json::from_str(&response.body).expect("the snapshot is JSON")
}

/// Polls `/snapshot` until `ready` holds for it; returns it. Panics with
/// the last snapshot after [`DEADLINE`].
pub async fn wait_for_snapshot(
    addr: SocketAddr,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let snapshot = snapshot(addr).await;
        if ready(&snapshot) {
            return snapshot;
        }
        if start.elapsed() > DEADLINE {
            panic!("no {what} in {DEADLINE:?}: {snapshot:#}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The `/events` stream, read event by event.
pub struct Events {
    reader: BufReader<TcpStream>,
    pub content_type: String,
}

impl Events {
    /// Opens `/events`: once this returns, the server sends every change.
    pub async fn open(addr: SocketAddr) -> Events {
        let (status, headers, reader) = request(addr, "/events").await;
        assert_eq!(status, 200);
        let content_type = headers
            .into_iter()
            .find(|(name, _)| name == "content-type")
            .map(|(_, value)| value)
            .unwrap_or_default();
        Events {
            reader,
            content_type,
        }
    }

    /// The next event's data, as JSON; `None` when the stream ended.
    /// Panics after [`DEADLINE`].
    pub async fn next(&mut self) -> Option<Value> {
        let mut data = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            let read = tokio::time::timeout(DEADLINE, self.reader.read_line(&mut line))
                .await
                .expect("an event in time")
                .expect("the stream reads");
            if read == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(more) = line.strip_prefix("data:") {
                data.push_str(more.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                return Some(serde_json::from_str(&data).expect("each event is JSON"));
            }
        }
    }

    /// Reads events until `done` holds for one; returns all read.
    pub async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(event) = self.next().await {
            let last = done(&event);
            seen.push(event);
            if last {
                return seen;
            }
        }
        panic!("the stream ended first: {seen:#?}");
    }
}
