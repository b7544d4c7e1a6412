//! A live dashboard in the browser, like dask's: the task stream, progress
//! per function, the graph by state, errors and the cluster's workers.
//!
//! [`Dashboard::serve`] binds a local port and serves one page there, on
//! axum, from a task of the current tokio runtime. The dashboard is a
//! [`Callback`]: attach it to every compute with
//! [`observe`](crate::observe()), or to some with
//! [`Options::callback`](crate::Options::callback), and open its
//! [`url`](Dashboard::url). The page loads a snapshot and then follows the
//! computes live, over server-sent events:
//!
//! - **Task stream**: one row per thread of this process that ran a task
//!   (and, with a [cluster](Dashboard::cluster), one per worker), a bar per
//!   task run from its start to its end, coloured by how it ended (done,
//!   failed, cancelled, cached) or still running. From
//!   [`Callback::task_started`] and [`Callback::task_finished`].
//! - **Progress** per function: of the tasks to run, how many are done,
//!   failed, running, waiting, and how many never ran (an input failed).
//!   The tasks to run are those of each compute's [`Graph`] that are not
//!   finished when it starts, as the [`ProgressBar`](crate::ProgressBar)
//!   counts them; a task two computes share counts once.
//! - **Graph**: the latest graph a compute started with, in layers, each
//!   node coloured by its state as the tasks run (the dependents of a
//!   failed task are failed: they will not run). The first
//!   2,000 nodes are drawn, and the page says when there are more.
//! - **Errors**: the last 100 tasks that failed, with their key and their
//!   whole error chain ([`Error::report`](crate::Error::report)).
//! - **Workers**: the cluster's workers, with what they run now.
//!
//! Routes: `/` the page (one file, no outside resources), `/snapshot`
//! everything as JSON, `/events` the changes as server-sent events (each a
//! JSON object with a `type` and a sequence number `seq`).
//!
//! # Cost
//!
//! Without the `dashboard` feature nothing of it is built. With it, a
//! dashboard that no compute has attached costs nothing but its server
//! task. Attached, each task takes a lock for a few field updates and,
//! only while a page is open, writes one small JSON event; nothing in a
//! callback waits. Memory is bounded for a service that runs for months:
//! the last 10,000 task runs, the runs under way (up to 10,000), counts
//! per function, the latest graph (2,000 nodes), the last 100 errors and
//! 128 thread rows (a new thread takes the row used least recently). A
//! page that falls behind is told to reload the snapshot.
//!
//! A panic in the dashboard is caught where it happens: it never fails a
//! task or a compute, and never stops the server.
//!
//! # Examples
//!
//! ```
//! use delayed::dashboard::Dashboard;
//! use delayed::delayed;
//!
//! #[delayed]
//! async fn load(name: String) -> usize {
//!     name.len()
//! }
//!
//! #[delayed]
//! fn total(sizes: Vec<usize>) -> usize {
//!     sizes.iter().sum()
//! }
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let dashboard = Dashboard::serve("127.0.0.1:0").await?;
//! println!("dashboard at {}", dashboard.url());
//! let _watching = delayed::observe(dashboard.clone());
//!
//! let loads = ["a.txt", "bb.txt"].map(|name| load(name.to_string()));
//! assert_eq!(total(Vec::from(loads)).compute().await.unwrap(), 11);
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tokio::net::ToSocketAddrs;

use crate::{Callback, Error, Graph, TaskFinished, TaskStarted};

#[cfg(feature = "nats")]
mod cluster;
mod graph;
mod server;
mod state;
mod wire;

/// The axum the dashboard is served with (HTTP/1 on tokio, its default
/// features off), for a service's own routes without a dependency of
/// your own: `delayed::dashboard::axum::Router`.
pub use axum;

/// A live dashboard served on a local port: see the [module](self) docs.
///
/// Clones share one dashboard, its state and its server: they are one
/// [`Callback`], which hears each task once however many computes it
/// watches. The server stops when the last clone is dropped (including
/// those attached to computes and [`observe`](crate::observe()) scopes), or
/// at [`shutdown`](Dashboard::shutdown).
///
/// # Examples
///
/// ```
/// use delayed::dashboard::Dashboard;
/// use delayed::{Delayed, Options};
///
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let dashboard = Dashboard::serve("127.0.0.1:0").await?;
/// let x = Delayed::value(20_u64).map(|x| x + 1).named("x");
/// let options = Options::new().callback(dashboard.clone());
/// assert_eq!(x.compute_with(options).await.unwrap(), 21);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

/// What clones share.
struct Inner {
    hub: Arc<state::Hub>,
    addr: SocketAddr,
    #[cfg(feature = "nats")]
    watcher: cluster::Watcher,
}

impl Dashboard {
    /// Binds `addr` and serves the dashboard there, on a task of the
    /// current tokio runtime, until the last clone is dropped or
    /// [`shutdown`](Dashboard::shutdown). Port 0 takes a free port: read it
    /// with [`addr`](Dashboard::addr).
    ///
    /// Bind a loopback address (`127.0.0.1`) unless others should see it:
    /// the page has no login, and shows task keys and error messages.
    ///
    /// # Errors
    ///
    /// When `addr` does not resolve or cannot be bound (say, the port is
    /// taken).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O enabled (`#[tokio::main]` enables
    /// it).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let dashboard = delayed::dashboard::Dashboard::serve("127.0.0.1:0").await?;
    /// assert_ne!(dashboard.addr().port(), 0);
    ///
    /// // The port is taken now.
    /// let again = delayed::dashboard::Dashboard::serve(dashboard.addr()).await;
    /// assert!(again.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn serve(addr: impl ToSocketAddrs) -> Result<Dashboard, io::Error> {
        let hub = Arc::new(state::Hub::new());
        let addr = server::serve(addr, Arc::clone(&hub)).await?;
        Ok(Dashboard {
            inner: Arc::new(Inner {
                hub,
                addr,
                #[cfg(feature = "nats")]
                watcher: cluster::Watcher::new(),
            }),
        })
    }

    /// The address the dashboard is served on.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let dashboard = delayed::dashboard::Dashboard::serve("127.0.0.1:0").await?;
    /// assert!(dashboard.addr().ip().is_loopback());
    /// # Ok(()) }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The page's address, like `http://127.0.0.1:8787/`, to open in a
    /// browser. A dashboard bound to every interface (`0.0.0.0`) gives a
    /// loopback address of the same port.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let dashboard = delayed::dashboard::Dashboard::serve("127.0.0.1:0").await?;
    /// assert_eq!(dashboard.url(), format!("http://127.0.0.1:{}/", dashboard.addr().port()));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        let mut addr = self.inner.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}/")
    }

    /// Stops the server now: it takes no more connections, and the pages
    /// open lose their live updates. The dashboard still hears the
    /// computes it is attached to, at the same small cost.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let dashboard = delayed::dashboard::Dashboard::serve("127.0.0.1:0").await?;
    /// dashboard.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn shutdown(&self) {
        self.inner.hub.stop();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.hub.stop();
    }
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

/// Runs a hook of the dashboard's; a panic in it goes no further.
fn guarded(hook: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(hook));
}

impl Callback for Dashboard {
    fn start(&self, graph: &Graph) {
        guarded(|| self.inner.hub.start(graph));
    }

    fn task_started(&self, task: &TaskStarted) {
        guarded(|| self.inner.hub.task_started(task));
    }

    fn task_finished(&self, task: &TaskFinished) {
        guarded(|| self.inner.hub.task_finished(task));
    }

    fn finish(&self, result: Result<(), &Error>) {
        guarded(|| self.inner.hub.finish(result));
    }

    fn identity(&self) -> usize {
        // Clones share one dashboard: they are one callback.
        Arc::as_ptr(&self.inner).cast::<()>() as usize
    }
}
