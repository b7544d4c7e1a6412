//! Lazy, shared, memoized task graphs on tokio: Python's `dask.delayed`
//! for async Rust.
//!
//! Write ordinary function calls; get a parallel task graph. Calling a
//! `#[delayed]` function runs nothing: it returns a [`Delayed<T>`], a node
//! whose inputs are other nodes or plain values. Computing a node runs
//! every unfinished input it needs, concurrently, on the current tokio
//! runtime: cheap functions inline, async functions as tasks, blocking
//! functions on `spawn_blocking`. Each node runs at most once and its
//! result is shared by everything that needs it.
//!
//! # Quick start
//!
//! The load → clean → analyze → store pipeline of dask's docs:
//!
//! ```
//! use delayed::{delayed, Delayed, Error};
//!
//! #[delayed]
//! async fn load(name: String) -> Vec<u64> {
//!     // tokio::fs::read_to_string(name).await ... in a real pipeline
//!     name.bytes().map(u64::from).collect()
//! }
//!
//! #[delayed]
//! fn clean(data: &Vec<u64>) -> Vec<u64> {
//!     data.iter().copied().filter(|x| x % 2 == 0).collect()
//! }
//!
//! #[delayed]
//! fn analyze(parts: Vec<Vec<u64>>) -> u64 {
//!     parts.iter().flatten().sum()
//! }
//!
//! #[delayed]
//! fn store(total: u64) -> String {
//!     format!("total={total}")
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let files = ["a.data", "b.data", "c.data"];
//! let loads: Vec<_> = files.iter().map(|f| load(f.to_string())).collect();
//! let cleaned: Vec<_> = loads.iter().map(|x| clean(x)).collect();
//! let analysis = analyze(cleaned);
//! let result = store(analysis);
//! println!("{}", result.compute().await?);
//! # Ok(())
//! # }
//! ```
//!
//! # What the attribute accepts
//!
//! - `#[delayed]` on a plain `fn`: cheap work that runs inline in the task
//!   that finished its last input.
//! - `#[delayed]` on an `async fn`: the future runs as a tokio task.
//! - `#[delayed(blocking)]`: CPU-heavy work, run on tokio's blocking pool,
//!   at most one body per core at a time (more would only add threads). A
//!   blocking body may compute a nested graph with
//!   [`compute_blocking`](Delayed::compute_blocking): it hands its slot back
//!   while it waits. Blocking bodies that wait for other tasks in some
//!   other way hold their slot; make those `async`.
//! - `#[delayed(pure)]`: the key is a hash of the function and its arguments
//!   (which must be `Hash`), and equal calls alive at the same time are one
//!   node.
//! - `#[delayed(limit = L, retry = R, timeout = D, priority = P)]`: the
//!   function's execution policies ([`Limit`], [`Retry`], a `Duration`, an
//!   `i32`), as [`Delayed::limit`] and its siblings set them on one node.
//!   The expressions are evaluated once, on the first call, and shared by
//!   every node the function makes.
//! - `#[delayed(register)]`: the function can be listed in a
//!   [`registry!`] for keyed graphs (its parameters and result must be serde
//!   types).
//!
//! Each parameter `p: T` accepts anything [`IntoDelayed<T>`]: a plain `T`, a
//! `Delayed<T>`, a `&Delayed<T>`, and for collections a collection of
//! `Delayed`s. A `&T` parameter borrows the input's shared output (no
//! clone, and `T` need not be `Clone`); `&str`, `&[T]` and `&Path`
//! parameters take a `String`, `Vec<T>` or `PathBuf` node. An owned
//! parameter needs `T: Clone`: the value is moved in when the node holds
//! the last handle to it, and cloned otherwise. A function returning
//! `Result<T, E>` makes a `Delayed<T>`; an `Err` fails the node and every
//! node that depends on it.
//!
//! Functions you did not annotate are deferred with [`Delayed::map`],
//! [`Delayed::then`], [`Delayed::map_blocking`] and [`join`].
//!
//! # Operators and access
//!
//! Nodes combine with the `std::ops` operators, as dask's delayed objects
//! do: each operator makes one node named for it (`add`, `sub`, `mul`,
//! `div`, `rem`, `bitand`, `bitor`, `bitxor`, `shl`, `shr`, `neg`, `not`).
//! Operands are taken like owned parameters: moved in from the last
//! handle, cloned otherwise.
//!
//! | expression | works for |
//! |---|---|
//! | `a + b`, `&a * &b`, `a - &b` (nodes, owned or borrowed) | any `T: Add<U>` and so on, your own types too |
//! | `x + 1`, `1 - &x`, `2.0 * x`, `flags & true`, `wait * 2` | a node with a number, a `bool` or a `Duration` on either side |
//! | `name + "-1"` | a node with a `&'static str` on the right |
//! | `x << 3`, `1u64 << n` | a node shifted by a plain `u32`, or a plain integer by a node |
//! | `-x`, `!flags` | any `T: Neg` or `T: Not` |
//!
//! A literal's type is inferred from the node: `Delayed<u64> + 1` adds a
//! `u64`, `2.0 * Delayed<f64>` multiplies an `f64`. A plain value of any
//! other type goes in as a node: `&total + Delayed::value(fee)`.
//!
//! Pure access picks a part of an output; equal accesses alive at the
//! same time are one node (one key, computed once):
//!
//! - [`index(i)`](Delayed::index) on a `Vec`, `VecDeque` or array node;
//! - [`get(&key)`](Delayed::get) on a `HashMap` or `BTreeMap` node (the
//!   key may be borrowed, as in `config.get("port")`);
//! - [`field(|s| &s.name)`](Delayed::field) on any node, with a closure
//!   that captures nothing, or a `fn` item.
//!
//! A missing index or key fails the node with an error that names them and
//! the task it read from. An iterator of nodes (or of references to them)
//! collects into a `Delayed<Vec<T>>`, the same join as [`join`] of a
//! `Vec`, and a node that returns a node is [flattened](Delayed::flatten)
//! into the inner node's output.
//!
//! ```
//! use std::collections::HashMap;
//! use delayed::{delayed, Delayed};
//!
//! #[delayed]
//! fn load(i: u64) -> u64 { i * 10 }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let all: Delayed<Vec<u64>> = (1..=3).map(load).collect();
//! let mean = all.map_ref(|v| v.iter().sum::<u64>()) / 3;
//! let spread = all.index(2) - all.index(0);
//! assert_eq!(delayed::compute((&mean, &spread)).await.unwrap(), (20, 20));
//!
//! let limits = Delayed::value(HashMap::from([("cpu".to_string(), 2.0_f64)]));
//! let doubled = 2.0 * limits.get("cpu");
//! assert_eq!(doubled.compute().await.unwrap(), 4.0);
//! # }
//! ```
//!
//! # Semantics
//!
//! - **Lazy and memoized.** Nothing runs before a compute. A node runs at
//!   most once while anything holds it; computing again returns the stored
//!   result.
//! - **Concurrent.** All inputs of a node are awaited concurrently and
//!   independent branches overlap.
//! - **Cancellation on drop.** When every compute waiting on a node is
//!   dropped, and it was not [persisted](Delayed::persist), its work stops:
//!   queued nodes do not start and async tasks are aborted. A later compute
//!   starts them again; finished results stay.
//! - **Memory.** A finished node drops its inputs, so an intermediate result
//!   is freed as soon as nothing needs it.
//! - **Errors and panics.** A failure fails every dependent, which then
//!   does not run. A panic becomes an [`Error`] with
//!   [`is_panic`](Error::is_panic) for every waiter, now and later.
//! - **Scale.** Scheduling, cancelling and dropping never recurse, so
//!   graphs a million nodes deep are fine.
//! - **Virtual time.** The library adds no timers: under tokio's paused
//!   clock a graph takes exactly its critical path.
//! - **Tracing.** Every node runs inside a `delayed.task` span (debug
//!   level) with the fields `task.key` and `task.name`, a child of the span
//!   where its compute began and linked with `follows_from` to its inputs'
//!   spans; events mark its start and end (debug) and its failure (warn,
//!   with the whole cause chain). See [Tracing](#tracing).
//! - **Awaiting.** `node.await` moves the output out of the last handle,
//!   so `T` need not be `Clone`; [`compute`](Delayed::compute) clones it.
//!
//! # Policies: limits, retries, timeouts, priorities
//!
//! A [`Limit`] bounds how many bodies use a resource at once; a [`Retry`]
//! runs a failed body again with a backoff; a timeout stops an attempt; a
//! priority orders the waiters of a limit. Set them per function with the
//! attribute or per node with [`Delayed::limit`], [`Delayed::retry`],
//! [`Delayed::timeout`] and [`Delayed::priority`]:
//!
//! ```
//! use std::time::Duration;
//! use delayed::{delayed, Limit, Retry};
//!
//! static HTTP: Limit = Limit::new("http", 2);
//!
//! #[delayed(limit = HTTP, retry = Retry::attempts(3).fixed(Duration::from_millis(100)))]
//! async fn get(id: u64) -> Result<u64, std::io::Error> {
//!     tokio::time::sleep(Duration::from_secs(1)).await;
//!     Ok(id)
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let start = tokio::time::Instant::now();
//! let all = delayed::compute((1..=4).map(get).collect::<Vec<_>>()).await.unwrap();
//! assert_eq!(all, [1, 2, 3, 4]);
//! assert_eq!(start.elapsed(), Duration::from_secs(2)); // two at a time
//! let slow = get(5).timeout(Duration::from_millis(10)).compute().await.unwrap_err();
//! assert!(slow.is_timeout());
//! # }
//! ```
//!
//! # Watching a compute: progress, timeline, callbacks
//!
//! [`Options`] attach [`Callback`]s to one compute: a [`ProgressBar`] on
//! stderr (feature `progress`), a [`Timeline`] that records when each task
//! ran (Perfetto JSON and SVG, dask's `Profiler`), or your own. [`observe`]
//! attaches them to every compute started in a scope. [`Delayed::graph`]
//! and [`Delayed::visualize`] show the graph and its state.
//!
//! ```
//! use delayed::{delayed, Options, Timeline};
//!
//! #[delayed]
//! fn inc(x: u64) -> u64 { x + 1 }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let timeline = std::sync::Arc::new(Timeline::new());
//! inc(inc(1)).compute_with(Options::new().callback(timeline.clone())).await.unwrap();
//! assert_eq!(timeline.tasks().len(), 2);
//! # }
//! ```
//!
//! # Results one by one
//!
//! [`compute`] of a tuple, a `Vec` or a map of nodes fails on the first
//! error; [`compute_each`] gives every node's own result:
//!
//! ```
//! #[delayed::delayed]
//! fn parse(s: String) -> Result<u64, std::num::ParseIntError> { s.parse() }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let results = delayed::compute_each(vec![parse("1".to_string()), parse("x".to_string())]).await;
//! assert_eq!(results[0].as_ref().unwrap(), &1);
//! assert!(results[1].is_err());
//! # }
//! ```
//!
//! # Results as they finish
//!
//! [`as_completed`] is a `Stream` of each node's own result, with its
//! index, as soon as it is ready (dask's `as_completed`);
//! [`first(n)`](AsCompleted::first) waits for the first few (Ray's
//! `wait`), and [`race`] and [`race_ok`] for the first one. Dropping the
//! stream, or a race returning, cancels the work only it still needed:
//!
//! ```
//! use std::time::Duration;
//! use futures::StreamExt;
//!
//! #[delayed::delayed]
//! async fn fetch(secs: u64) -> u64 {
//!     tokio::time::sleep(Duration::from_secs(secs)).await;
//!     secs
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mut done = delayed::as_completed([3, 1, 2].map(fetch));
//! assert_eq!(done.next().await.map(|(i, r)| (i, r.unwrap())), Some((1, 1)));
//! assert_eq!(done.first(5).await.len(), 2); // fewer remain
//! # }
//! ```
//!
//! # Graphs as data
//!
//! With the `serde` feature, [`keyed`] reads and writes dask's keyed form:
//! a map from keys to tasks that call `#[delayed(register)]` functions by
//! name, checked before anything runs.
//!
//! # Testing
//!
//! The crate adds no timers of its own, so under tokio's paused clock a
//! graph of simulated slow calls takes exactly its critical path, and a
//! test can assert the virtual time it took:
//!
//! ```
//! use std::time::Duration;
//!
//! #[delayed::delayed]
//! async fn load(i: u64) -> u64 {
//!     tokio::time::sleep(Duration::from_secs(i)).await;
//!     i
//! }
//!
//! #[delayed::delayed]
//! fn total(xs: Vec<u64>) -> u64 { xs.iter().sum() }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let start = tokio::time::Instant::now();
//! assert_eq!(total((1..=3).map(load).collect::<Vec<_>>()).compute().await.unwrap(), 6);
//! assert_eq!(start.elapsed(), Duration::from_secs(3)); // the loads overlap
//! # }
//! ```
//!
//! See also [Coming from dask](coming_from_dask), which maps each dask
//! idiom to its form here.
//!
//! # Tracing
//!
//! Any `tracing` subscriber sees the tasks. With `tracing-subscriber`'s
//! `fmt` layer, every line a task logs carries its key:
//!
//! ```
//! use delayed::delayed;
//!
//! #[delayed]
//! fn inc(x: u64) -> u64 {
//!     tracing::info!(x, "incrementing");
//!     x + 1
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).init();
//! inc(1).named("inc-1").compute().await.unwrap();
//! // DEBUG delayed.task{task.key=inc-1 task.name="inc"}: task started
//! //  INFO delayed.task{task.key=inc-1 task.name="inc"}: incrementing x=1
//! // DEBUG delayed.task{task.key=inc-1 task.name="inc"}: task finished
//! # }
//! ```
//!
//! Filter them with the target `delayed` (for example `RUST_LOG=delayed=debug`
//! with an `EnvFilter`). The events belong to the task's span: where the
//! subscriber disables `delayed.task` spans, the events are skipped too,
//! so an unobserved task costs no more than a disabled span.
//!
//! A task's span follows from the spans of its inputs. So that the link
//! points at the right span, a finished task's span is kept open while its
//! node lives (until its dependents have used it and no handle holds it),
//! not only while its body runs; its busy time is still the body's.
//!
//! The failure event (warn) and the retry event (info) carry the error's
//! whole chain in their `error` field, as [`Error::report`] writes it:
//! `task `fetch-3` failed: cannot fetch http://a: connection reset`.
//!
//! ## Request-scoped logs
//!
//! A compute remembers the span current where it begins (its first poll;
//! for [`persist`](Delayed::persist), the call). The spans of the tasks it
//! starts are children of that span, and every task runs inside it, with
//! its subscriber as the default, whatever thread it runs on. So what the
//! tasks of an axum handler log sits in the handler's `#[instrument]`
//! span, also at the usual `info` level, where the `delayed.task` spans
//! themselves are filtered out:
//!
//! ```
//! use delayed::delayed;
//! # use std::sync::{Arc, Mutex};
//! # #[derive(Clone, Default)]
//! # struct Lines(Arc<Mutex<Vec<u8>>>);
//! # impl std::io::Write for Lines {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
//! #         self.0.lock().unwrap().extend_from_slice(b);
//! #         Ok(b.len())
//! #     }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//!
//! #[delayed]
//! async fn fetch(id: u64) -> u64 {
//!     tracing::info!("fetching");
//!     id * 10
//! }
//!
//! #[delayed(blocking)]
//! fn parse(raw: u64) -> u64 {
//!     tracing::info!("parsing");
//!     raw + 1
//! }
//!
//! #[tracing::instrument]
//! async fn handler(id: u64) -> u64 {
//!     parse(fetch(id)).await.unwrap()
//! }
//!
//! # #[tokio::main] async fn main() {
//! # let lines = Lines::default();
//! # let writer = lines.clone();
//! let subscriber = tracing_subscriber::fmt()
//! #   .with_writer(move || writer.clone())
//!     .with_target(false)
//!     .with_ansi(false)
//!     .finish();
//! tracing::subscriber::set_global_default(subscriber).unwrap();
//! assert_eq!(handler(7).await, 71);
//! //  INFO handler{id=7}: fetching
//! //  INFO handler{id=7}: parsing
//! # let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
//! # assert!(text.contains("INFO handler{id=7}: fetching"), "{text}");
//! # assert!(text.contains("INFO handler{id=7}: parsing"), "{text}");
//! # }
//! ```
//!
//! A node that two computes share is a child of the span of the one that
//! started it, and follows from (`follows_from`) the spans of the others
//! that came for it before it finished. A compute polled under no span
//! leaves its tasks' spans where they were: children of the span current
//! where each one starts. As with any future, `tokio::spawn` does not carry
//! a span into the task it spawns: spawn `compute.in_current_span()`.
//!
//! ## tokio-console
//!
//! Built with tokio's unstable cfg, every task the crate spawns carries a
//! name that [tokio-console](https://github.com/tokio-rs/console) shows: a
//! node's task its key and function (`load-sensor-01.txt (load)`, and so
//! on a worker), the runners that run cheap nodes inline `delayed runner`,
//! the blocking pool's slots `delayed blocking slot`, the cluster's and
//! the dashboard's own tasks `delayed cluster reports`, `delayed dashboard
//! 127.0.0.1:8787` and the like. Add `console-subscriber` to the
//! application, call `console_subscriber::init()` first thing in `main`,
//! and run it with
//!
//! ```text
//! RUSTFLAGS="--cfg tokio_unstable" cargo run --release
//! tokio-console   # in another terminal
//! ```
//!
//! Without the cfg no name is made: the spawns are plain `spawn` calls.
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Vocabulary: the words every layer uses.
mod callback;
mod error;
mod graph;
mod key;
mod limit;
mod retry;
mod spawn;
mod tokenize;

// The engine: nodes, scheduling, runners, stored outputs. It names nothing
// above it.
mod engine;

// The API: handles, combinators, arguments, computes.
mod access;
mod args;
mod builder;
mod collect;
mod combinators;
mod completed;
mod compute;
mod delayed;
mod flatten;
mod into_delayed;
mod join;
mod ops;
mod options;
mod unzip;

// Extensions, each in a folder of its own.
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub mod cache;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod cluster;
#[cfg(feature = "dashboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
pub mod dashboard;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod keyed;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod observe;

pub use crate::callback::{Callback, Outcome, TaskFinished, TaskRetried, TaskStarted};
pub use crate::completed::{
    as_completed, as_completed_with, race, race_ok, AsCompleted, Race, RaceOk,
};
pub use crate::compute::{compute, compute_each, compute_with, Compute};
pub use crate::delayed::Delayed;
pub use crate::error::Error;
pub use crate::graph::{Graph, GraphNode, TaskState};
pub use crate::into_delayed::{IntoArg, IntoDelayed};
pub use crate::join::{join, Join};
pub use crate::key::Key;
pub use crate::limit::Limit;
pub use crate::observe::public::*;
pub use crate::options::Options;
pub use crate::retry::Retry;
pub use crate::tokenize::{Tokenize, Tokenizer};
pub use crate::unzip::Unzip;
#[doc = include_str!("docs/attribute.md")]
#[doc(inline)]
pub use delayed_macros::delayed;
pub use delayed_macros::registry;
/// The function `f` as written, before `#[delayed]`: call it directly,
/// like dask's `f.__wrapped__(x)`. It takes the path of a `#[delayed]`
/// function or method (`wrapped!(inc)`, `wrapped!(Model::predict)`).
///
/// # Examples
///
/// ```
/// #[delayed::delayed]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// assert_eq!(delayed::wrapped!(inc)(41), 42);
/// ```
#[doc(inline)]
pub use delayed_macros::wrapped;

#[doc = include_str!("docs/coming_from_dask.md")]
pub mod coming_from_dask {}

/// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// What `#[delayed]` expands to. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::args::pick::{Pick, ViaHash, ViaLabel, ViaNoLabel, ViaTokenize};
    pub use crate::args::{ArrayOf, Cx, Leaf, MapOf, OptionOf, SetOf, Shape, Tuple, VecOf};
    pub use crate::builder::{Builder, Converted, Policies};
    pub use crate::engine::deps::{Deps, Held, Input, Ref};
}
