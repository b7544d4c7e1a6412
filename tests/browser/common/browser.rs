//! Headless Chromium driven over WebDriver: chromedriver on a free port,
//! fantoccini talking to it over plain HTTP.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::screenshot::Screenshot;
use super::{skipped, DEADLINE};

/// What to say when there is no browser.
const MISSING: &str = "no Chromium/ChromeDriver (install chromium and chromium-driver)";

/// The window's size: the page's layout in the screenshots.
const WINDOW: (u32, u32) = (1280, 1000);

/// A headless Chromium and its chromedriver, both ended when dropped.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    /// Chromium's profile: a folder of this browser's alone, which also
    /// tells its processes from any other Chromium's.
    profile: tempfile::TempDir,
}

/// The first of `names` that exists: a path, or a program on `PATH`.
fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        if Path::new(name).is_absolute() {
            return Path::new(name).is_file().then(|| PathBuf::from(name));
        }
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

impl Browser {
    /// Starts a browser, or says the test is skipped and returns `None`
    /// when Chromium or ChromeDriver is not installed.
    pub async fn start() -> Option<Browser> {
        let chromium = find(&[
            "/usr/bin/chromium",
            "chromium",
            "chromium-browser",
            "google-chrome",
        ]);
        let chromedriver = find(&["/usr/bin/chromedriver", "chromedriver"]);
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            skipped(MISSING);
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", chromedriver.display()));
        let profile = tempfile::Builder::new()
            .prefix("delayed-dashboard-chromium-")
            .tempdir()
            .expect("a profile folder");
        let mut browser = Browser {
            client: None,
            driver,
            profile,
        };
        let args = [
            "--headless=new".to_string(),
            // Root in CI: Chromium's sandbox needs a user of its own.
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            // No network but loopback: nothing in the background.
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-quic".to_string(),
            "--disable-extensions".to_string(),
            "--no-first-run".to_string(),
            "--no-default-browser-check".to_string(),
            "--hide-scrollbars".to_string(),
            "--force-device-scale-factor=1".to_string(),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            format!("--user-data-dir={}", browser.profile.path().display()),
        ];
        let capabilities = json!({
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        // chromedriver takes a moment to listen.
        let client = loop {
            let connected = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            match connected {
                Ok(client) => break client,
                Err(err) if start.elapsed() > DEADLINE => panic!("no WebDriver session: {err}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        browser.client = Some(client);
        Some(browser)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Opens `url` and waits until the page follows the events live.
    pub async fn open(&self, url: &str) {
        self.client().goto(url).await.expect("the page loads");
        self.wait(
            "the page to go live",
            "return document.getElementById('status').dataset.state",
            |state| state == "live",
        )
        .await;
    }

    /// Runs `script` (a function body, which returns a value) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client()
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("{script}: {err}"))
    }

    /// Runs `script` until what it returns satisfies `ready`, and returns
    /// that. Panics with the last value after [`DEADLINE`].
    pub async fn wait(&self, what: &str, script: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let value = self.js(script).await;
            if ready(&value) {
                return value;
            }
            if start.elapsed() > DEADLINE {
                panic!("the page shows no {what} in {DEADLINE:?}; last: {value}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The cells of the progress row of `function`, by class: `done`,
    /// `failed`, `running`, `waiting`, `not-run`, `total`, ...
    pub async fn progress(&self, function: &str) -> Value {
        self.js(&progress_script(function)).await
    }

    /// Waits until the progress row of `function` has these counts.
    pub async fn wait_progress(&self, function: &str, counts: &[(&str, u64)]) -> Value {
        let what = format!("progress of {function} with {counts:?}");
        self.wait(&what, &progress_script(function), |row| {
            counts.iter().all(|(class, n)| row[*class] == json!(n))
        })
        .await
    }

    /// A screenshot of the whole window, saved as `name.png`.
    pub async fn screenshot(&self, name: &str) -> Screenshot {
        let png = self.client().screenshot().await.expect("a screenshot");
        Screenshot::saved(&png, name)
    }

    /// A screenshot of the element `css` alone, saved as `name.png`.
    pub async fn screenshot_of(&self, css: &str, name: &str) -> Screenshot {
        let element = self
            .client()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no {css}: {err}"));
        let png = element.screenshot().await.expect("a screenshot");
        Screenshot::saved(&png, name)
    }

    /// Ends the session and the browser.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

/// A script that returns the progress row of `function` as an object.
fn progress_script(function: &str) -> String {
    format!(
        "const row = document.querySelector('#progress-table tr[data-function=\"{function}\"]');
         if (!row) return null;
         const cells = {{}};
         for (const td of row.querySelectorAll('td')) cells[td.className.split(' ')[0]] = /^\\d+$/.test(td.textContent) ? +td.textContent : td.textContent;
         return cells;"
    )
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A test that failed before `close` leaves Chromium running: end
        // the processes that use this browser's profile, by id.
        let marker = self.profile.path().to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
    }
}
