//! Where the crate spawns its tasks. Built with `--cfg tokio_unstable`,
//! every task carries a name for tokio-console: a node's task its key and
//! function (`load-sensor-01.txt (load)`, here or on a worker), a runner,
//! a blocking slot or a service task what it is (`delayed runner`,
//! `delayed cluster reports`). Without that cfg these are plain `spawn`
//! calls: no name is formatted, nothing is stored.
//!
//! The engine's spawns and the extensions' go through here, so that none
//! is left anonymous and the unstable API is named in one file.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::task::{JoinHandle, JoinSet};

use crate::key::Key;

/// The name tokio-console shows for the task of the node with `key`.
pub(crate) fn task_name(key: &Key) -> String {
    name_of(key, key.name())
}

/// The name of the task of a node: its key, then its function.
pub(crate) fn name_of(key: &dyn std::fmt::Display, function: &str) -> String {
    format!("{key} ({function})")
}

/// Spawns the task of the node with the key `key` makes (asked only when
/// the name is used).
pub(crate) fn node_task<F>(
    handle: &Handle,
    key: impl FnOnce() -> Key,
    future: F,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    named(handle, || task_name(&key()), future)
}

/// Spawns a runner: a task that drains a queue of ready nodes.
pub(crate) fn runner<F>(handle: &Handle, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    named(handle, || "delayed runner".to_string(), future)
}

/// Spawns a task of the crate's own (a listener, a server, a worker's
/// run of a task) on the current runtime, named `name()`.
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::spawn` does.
#[allow(dead_code, reason = "for extensions, which a build may leave out")]
pub(crate) fn named_task<F>(name: impl FnOnce() -> String, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    named(&Handle::current(), name, future)
}

/// Spawns a task of the crate's own on `handle`, named `name`: a
/// service task, or a short-lived one that publishes or deletes.
#[allow(dead_code, reason = "for extensions, which a build may leave out")]
pub(crate) fn named_on<F>(handle: &Handle, name: &'static str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    named(handle, || name.to_string(), future)
}

/// Spawns a task of the crate's own into `set`, named `name`. Where
/// tokio cannot spawn at all the future is dropped unrun, as a shut-down
/// runtime drops it.
#[allow(dead_code, reason = "for extensions, which a build may leave out")]
pub(crate) fn in_set<T, F>(set: &mut JoinSet<T>, name: &'static str, future: F)
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    #[cfg(tokio_unstable)]
    {
        let _ = set.build_task().name(name).spawn(future);
    }
    #[cfg(not(tokio_unstable))]
    {
        let _ = name;
        set.spawn(future);
    }
}

/// Runs `f` on the blocking pool of `handle`, in a task named `name`.
#[allow(dead_code, reason = "for extensions, which a build may leave out")]
pub(crate) fn blocking_on<F, R>(handle: &Handle, name: &'static str, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    #[cfg(tokio_unstable)]
    {
        match tokio::task::Builder::new()
            .name(name)
            .spawn_blocking_on(f, handle)
        {
            Ok(join) => join,
            // As in `named`: a task aborted at once stands for it.
            Err(_) => {
                let join = handle.spawn(std::future::pending::<R>());
                join.abort();
                join
            }
        }
    }
    #[cfg(not(tokio_unstable))]
    {
        let _ = name;
        handle.spawn_blocking(f)
    }
}

/// Opens a slot of the blocking pool on `handle`.
pub(crate) fn blocking_slot<F>(handle: &Handle, f: F)
where
    F: FnOnce() + Send + 'static,
{
    #[cfg(tokio_unstable)]
    {
        // The builder only fails where tokio cannot spawn at all; then the
        // closure is dropped unrun, as a shut-down runtime drops it.
        let _ = tokio::task::Builder::new()
            .name("delayed blocking slot")
            .spawn_blocking_on(f, handle);
    }
    #[cfg(not(tokio_unstable))]
    {
        handle.spawn_blocking(f);
    }
}

#[cfg(tokio_unstable)]
fn named<F>(handle: &Handle, name: impl FnOnce() -> String, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let name = name();
    match tokio::task::Builder::new()
        .name(&name)
        .spawn_on(future, handle)
    {
        Ok(join) => join,
        // Only where tokio cannot spawn at all; the future was dropped
        // unrun, as a shut-down runtime drops it. A task that never ends,
        // aborted at once, stands for it.
        Err(_) => {
            let join = handle.spawn(std::future::pending());
            join.abort();
            join
        }
    }
}

#[cfg(not(tokio_unstable))]
fn named<F>(handle: &Handle, name: impl FnOnce() -> String, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let _ = name;
    handle.spawn(future)
}
