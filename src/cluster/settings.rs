//! What a cluster can be told: its namespace, pools, and every limit and
//! period the protocol uses, with the names of the JetStream pieces that
//! follow from the namespace.

use std::time::Duration;

use super::ClusterError;

/// The settings a [`Cluster`](super::Cluster) and its
/// [`Worker`](super::Worker)s share. The defaults are the values the
/// cluster always had; clients and workers of one namespace should agree
/// on them (the first to come creates the stream, its consumers and the
/// buckets with its own values; later comers use them as they are).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use delayed::cluster::Settings;
///
/// let settings = Settings::new()
///     .namespace("billing-v2")
///     .ack_wait(Duration::from_secs(10))
///     .max_deliver(5)
///     .result_ttl(Duration::from_secs(600));
/// # let _ = settings;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub(crate) namespace: String,
    pub(crate) ack_wait: Duration,
    pub(crate) max_deliver: i64,
    pub(crate) result_ttl: Duration,
    pub(crate) inline_result: usize,
    pub(crate) max_message: usize,
    pub(crate) client_timeout: Duration,
    pub(crate) no_worker_timeout: Duration,
    pub(crate) history: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            ack_wait: Duration::from_secs(5),
            max_deliver: 3,
            result_ttl: Duration::from_secs(3600),
            inline_result: 256 * 1024,
            max_message: 1024 * 1024,
            client_timeout: Duration::from_secs(3),
            no_worker_timeout: Duration::from_secs(60),
            history: 1000,
        }
    }
}

/// The namespace of a cluster that was given none.
pub(crate) const DEFAULT_NAMESPACE: &str = "delayed";

/// The pool of a function or task that asks for none, and of a worker that
/// serves none in particular.
pub const DEFAULT_POOL: &str = "default";

impl Settings {
    /// The defaults: namespace `delayed`, `ack_wait` 5 s, 3 deliveries,
    /// results kept 1 h, results up to 256 KiB inline, messages up to
    /// 1 MiB, a client dead after 3 s without a heartbeat, a task no
    /// worker can take failed after 60 s.
    ///
    /// # Examples
    ///
    /// ```
    /// let settings = delayed::cluster::Settings::new();
    /// assert_eq!(settings, delayed::cluster::Settings::default());
    /// ```
    pub fn new() -> Settings {
        Settings::default()
    }

    /// Keeps this cluster's stream, consumers, buckets and subjects apart
    /// from every other namespace's on the same server: two applications,
    /// or two versions of one, side by side. Lowercase letters, digits,
    /// `-` and `_`; checked when the cluster connects or the worker
    /// starts. The default, `delayed`, gives the names the cluster always
    /// had (`DELAYED_TASKS`, `delayed_results`, `delayed.tasks...`).
    ///
    /// # Examples
    ///
    /// ```
    /// let settings = delayed::cluster::Settings::new().namespace("reports-v3");
    /// # let _ = settings;
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Settings {
        self.namespace = namespace.into();
        self
    }

    /// How long a worker may hold a task without a sign of life before
    /// JetStream gives it to another worker (default 5 s). Workers send
    /// in-progress acks three times per period while a task runs.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let settings = delayed::cluster::Settings::new().ack_wait(Duration::from_secs(30));
    /// # let _ = settings;
    /// ```
    pub fn ack_wait(mut self, ack_wait: Duration) -> Settings {
        self.ack_wait = ack_wait.max(Duration::from_millis(100));
        self
    }

    /// Deliveries of one task before it fails as a `KilledWorker` (default
    /// 3, at least 1), like dask's `allowed-failures`.
    ///
    /// # Examples
    ///
    /// ```
    /// let settings = delayed::cluster::Settings::new().max_deliver(5);
    /// # let _ = settings;
    /// ```
    pub fn max_deliver(mut self, deliveries: u32) -> Settings {
        self.max_deliver = i64::from(deliveries.max(1));
        self
    }

    /// How long stored results stay at most (default 1 h): a backstop for
    /// results nobody deleted.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let settings = delayed::cluster::Settings::new().result_ttl(Duration::from_secs(600));
    /// # let _ = settings;
    /// ```
    pub fn result_ttl(mut self, ttl: Duration) -> Settings {
        self.result_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Results and arguments up to this many bytes travel inside messages
    /// (default 256 KiB); bigger ones go through the object store.
    ///
    /// # Examples
    ///
    /// ```
    /// let settings = delayed::cluster::Settings::new().inline_result(64 * 1024);
    /// # let _ = settings;
    /// ```
    pub fn inline_result(mut self, bytes: usize) -> Settings {
        self.inline_result = bytes;
        self
    }

    /// The largest task message the stream takes (default 1 MiB; the
    /// server's own `max_payload` bounds it too).
    ///
    /// # Examples
    ///
    /// ```
    /// let settings = delayed::cluster::Settings::new().max_message(4 << 20);
    /// # let _ = settings;
    /// ```
    pub fn max_message(mut self, bytes: usize) -> Settings {
        self.max_message = bytes.max(1024);
        self
    }

    /// A client not heard from for this long is asked whether it is
    /// there (default 3 s); if the server says nobody listens for it, it
    /// is dead: workers start none of its queued tasks and delete its
    /// results. Clients send a heartbeat three times per period.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let settings = delayed::cluster::Settings::new().client_timeout(Duration::from_secs(10));
    /// # let _ = settings;
    /// ```
    pub fn client_timeout(mut self, timeout: Duration) -> Settings {
        self.client_timeout = timeout.max(Duration::from_millis(300));
        self
    }

    /// How long a task whose function (in its pool) no live worker has
    /// waits before it fails (default 60 s); a warning says so at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let settings = delayed::cluster::Settings::new().no_worker_timeout(Duration::from_secs(300));
    /// # let _ = settings;
    /// ```
    pub fn no_worker_timeout(mut self, timeout: Duration) -> Settings {
        self.no_worker_timeout = timeout;
        self
    }

    /// How many finished tasks [`Cluster::history`](super::Cluster::history)
    /// keeps, the last ones (default 1,000; 0 keeps none): memory for
    /// them does not grow with the run.
    ///
    /// # Examples
    ///
    /// ```
    /// let settings = delayed::cluster::Settings::new().history(0);
    /// # let _ = settings;
    /// ```
    pub fn history(mut self, tasks: usize) -> Settings {
        self.history = tasks;
        self
    }

    /// The names these settings give, or why the namespace is no good.
    pub(crate) fn names(&self) -> Result<Names, ClusterError> {
        check_name("namespace", &self.namespace)?;
        Ok(Names::of(&self.namespace))
    }
}

/// Checks a namespace or pool name: lowercase letters, digits, `-`, `_`.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), ClusterError> {
    let good = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if good {
        Ok(())
    } else {
        Err(ClusterError::new(format!(
            "bad {what} `{name}`: use 1 to 64 lowercase letters, digits, `-` and `_`"
        )))
    }
}

/// The names of a namespace's JetStream pieces and subjects.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    /// The work-queue stream of tasks.
    pub(crate) stream: String,
    /// The subjects' common start: `{ns}`.
    pub(crate) prefix: String,
    /// The key-value bucket of results.
    pub(crate) results: String,
    /// The object store of results too big for the bucket.
    pub(crate) objects: String,
}

impl Names {
    fn of(namespace: &str) -> Names {
        Names {
            stream: format!("{}_TASKS", namespace.to_ascii_uppercase()),
            prefix: namespace.to_owned(),
            results: format!("{namespace}_results"),
            objects: format!("{namespace}_objects"),
        }
    }

    /// Every task subject: `{ns}.tasks.>`.
    pub(crate) fn all_tasks(&self) -> String {
        format!("{}.tasks.>", self.prefix)
    }

    /// The subject of tasks of `function` in `pool`.
    pub(crate) fn tasks(&self, pool: &str, function: &str) -> String {
        format!("{}.tasks.{pool}.{}", self.prefix, token(function))
    }

    /// The subject of a task of `function` in `pool`, sent in `run`
    /// (`{client}.{n}`): so a run's or a client's queued tasks can be
    /// purged at once.
    pub(crate) fn task(&self, pool: &str, function: &str, run: &str) -> String {
        format!("{}.{run}", self.tasks(pool, function))
    }

    /// Every queued task of `run`, whatever its pool and function.
    pub(crate) fn run_tasks(&self, run: &str) -> String {
        format!("{}.tasks.*.*.{run}", self.prefix)
    }

    /// Every queued task of `client`.
    pub(crate) fn client_tasks(&self, client: &str) -> String {
        format!("{}.tasks.*.*.{client}.>", self.prefix)
    }

    /// The doorbell of the tasks of `function` in `pool`: a client rings
    /// it once tasks are queued there, so workers pull at once rather
    /// than keep asking.
    pub(crate) fn ring(&self, pool: &str, function: &str) -> String {
        format!("{}.ring.{pool}.{}", self.prefix, token(function))
    }

    /// Every doorbell of `pool`.
    pub(crate) fn rings(&self, pool: &str) -> String {
        format!("{}.ring.{pool}.*", self.prefix)
    }

    /// The durable consumer of tasks of `function` in `pool`.
    pub(crate) fn consumer(&self, pool: &str, function: &str) -> String {
        format!("{}-{pool}-{}", self.prefix, token(function))
    }

    /// Where clients ask which workers are alive.
    pub(crate) fn workers(&self) -> String {
        format!("{}.workers", self.prefix)
    }

    /// Where clients ask workers to stop a task.
    pub(crate) fn cancel(&self) -> String {
        format!("{}.cancel", self.prefix)
    }

    /// Where a client's heartbeats go, and its runs' ends.
    pub(crate) fn alive(&self, client: &str) -> String {
        format!("{}.alive.{client}", self.prefix)
    }

    /// Every client's heartbeats.
    pub(crate) fn all_alive(&self) -> String {
        format!("{}.alive.*", self.prefix)
    }

    /// Where `client` asks workers to send its last reports again.
    pub(crate) fn resend(&self, client: &str) -> String {
        format!("{}.resend.{client}", self.prefix)
    }

    /// Every client's requests to send reports again.
    pub(crate) fn all_resend(&self) -> String {
        format!("{}.resend.*", self.prefix)
    }

    /// Where workers report to `client`.
    pub(crate) fn done(&self, client: &str) -> String {
        format!("{}.done.{client}", self.prefix)
    }

    /// The advisories JetStream sends when a task of any consumer of the
    /// stream ran out of deliveries.
    pub(crate) fn max_deliveries(&self) -> String {
        format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.*",
            self.stream
        )
    }
}

/// `name` as one subject token and consumer-name part: ASCII letters,
/// digits, `-` and `_` as they are, any other byte as `~` and two hex
/// digits.
fn token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("~{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_namespace_gives_the_old_names() {
        let names = Settings::new().names().unwrap();
        assert_eq!(names.stream, "DELAYED_TASKS");
        assert_eq!(names.results, "delayed_results");
        assert_eq!(names.objects, "delayed_objects");
        assert_eq!(names.workers(), "delayed.workers");
        assert_eq!(names.cancel(), "delayed.cancel");
        assert_eq!(names.tasks("default", "load"), "delayed.tasks.default.load");
        assert_eq!(names.consumer("gpu", "a::b c"), "delayed-gpu-a~3a~3ab~20c");
    }

    #[test]
    fn bad_namespaces_are_refused_with_the_reason() {
        for bad in ["", "Billing", "a.b", "a b", "a*", &"x".repeat(65)] {
            let err = Settings::new().namespace(bad).names().unwrap_err();
            assert!(err.to_string().contains("bad namespace"), "{err}");
        }
        assert!(Settings::new().namespace("app-v2_1").names().is_ok());
    }
}
