//! Checking a keyed graph and turning it into nodes: only the keys the
//! requested outputs need (dask's cull), every error found before anything
//! runs, and no recursion over keys.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::json::task_key;
use super::registry::{Entry, Registry};
use super::spec::{Call, KeyedGraph, Policy, Task};
use crate::engine::intern;
use crate::engine::view::NodeView;
use crate::{Delayed, Error};

/// The keys built so far, for arguments to refer to. Not a stable API.
#[doc(hidden)]
pub struct Scope<'a> {
    built: HashMap<&'a str, Built<'a>>,
}

/// What a built key is.
#[derive(Clone)]
enum Built<'a> {
    Node {
        task: NodeView,
        type_name: &'static str,
        entry: &'a Entry,
    },
    Value(&'a Value),
}

/// A key, as an argument sees it.
pub(crate) enum Resolved<'a> {
    Node {
        task: NodeView,
        type_name: &'static str,
    },
    Value(&'a Value),
}

impl Scope<'_> {
    /// A scope with no keys.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn empty() -> Scope<'static> {
        Scope {
            built: HashMap::new(),
        }
    }
}

impl<'a> Scope<'a> {
    /// The key `key`, which the walk built before anything that refers to
    /// it.
    pub(crate) fn resolve(&self, key: &str) -> Resolved<'a> {
        match self.built.get(key) {
            Some(Built::Node {
                task, type_name, ..
            }) => Resolved::Node {
                task: task.clone(),
                type_name,
            },
            Some(Built::Value(value)) => Resolved::Value(value),
            None => unreachable!("delayed: key `{key}` was referred to before it was built"),
        }
    }
}

impl KeyedGraph {
    /// Checks the whole graph against `registry` without running anything:
    /// every reference names a key, there is no cycle, every function is
    /// registered and gets the right number of arguments of the right
    /// types, and every limit is registered.
    ///
    /// # Errors
    ///
    /// The first problem, as an [`Error`] for which
    /// [`is_invalid`](Error::is_invalid) holds, naming the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::KeyedGraph;
    ///
    /// #[delayed::delayed(register)]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// let registry = delayed::registry![inc];
    /// let graph = KeyedGraph::from_json(r#"{"a": {"fn": "inc", "args": [{"ref": "b"}]}}"#).unwrap();
    /// let err = graph.validate(&registry).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid graph: key `a` refers to missing key `b` (argument `x` of `inc`)");
    /// ```
    pub fn validate(&self, registry: &Registry) -> Result<(), Error> {
        let keys: Vec<&str> = self.tasks.keys().map(String::as_str).collect();
        build(self, registry, &keys).map(drop)
    }

    /// The node of `key` and of everything it needs, typed, to compute with
    /// any of `Delayed`'s methods (options, sequential, ...).
    ///
    /// # Errors
    ///
    /// As for [`validate`](KeyedGraph::validate), for the keys `key` needs,
    /// and when `key` does not make a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::KeyedGraph;
    ///
    /// #[delayed::delayed(register)]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let registry = delayed::registry![inc];
    /// let graph = KeyedGraph::from_json(r#"{"a": {"fn": "inc", "args": [1]}}"#).unwrap();
    /// let a = graph.delayed::<u64>(&registry, "a").unwrap();
    /// assert_eq!(a.key().to_string(), "a");
    /// assert_eq!(a.compute().await.unwrap(), 2);
    /// assert!(graph.delayed::<String>(&registry, "a").is_err());
    /// # }
    /// ```
    pub fn delayed<T>(&self, registry: &Registry, key: &str) -> Result<Delayed<T>, Error>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let built = build(self, registry, &[key])?;
        let at = format!("key `{key}`");
        match built.into_iter().next() {
            Some(Built::Node {
                task, type_name, ..
            }) => {
                if task.makes::<T>() {
                    Ok(Delayed::from_view(task))
                } else {
                    Err(Error::invalid(
                        task_key(key),
                        format!(
                            "{at} makes a `{}`, not a `{}`",
                            super::shape::short_type(type_name),
                            super::shape::type_name::<T>()
                        ),
                    ))
                }
            }
            Some(Built::Value(value)) => T::deserialize(value)
                .map(|value| Delayed::value(value).named(key))
                .map_err(|err| Error::invalid(task_key(key), format!("{at}: {err}"))),
            None => Err(Error::invalid(task_key(key), format!("no key `{key}`"))),
        }
    }
}

/// Computes `key` of `graph`, whose functions are in `registry`, and
/// returns its output as JSON: dask's `get(dsk, key)`.
///
/// Only the keys `key` needs run; shared keys run once; independent keys
/// overlap. The graph is checked first and nothing runs if it is invalid.
/// Dropping the future cancels the run, as for [`Delayed::compute`].
///
/// # Errors
///
/// An invalid graph ([`Error::is_invalid`]), or the first task that
/// failed, named by its key.
///
/// # Examples
///
/// ```
/// use delayed::keyed::{get, KeyedGraph};
///
/// #[delayed::delayed(register)]
/// fn add(x: u64, y: u64) -> u64 { x + y }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let registry = delayed::registry![add];
/// let graph = KeyedGraph::from_json(r#"{
///     "x": {"value": 1},
///     "y": {"fn": "add", "args": [{"ref": "x"}, 10]},
///     "z": {"fn": "add", "args": [{"ref": "y"}, {"ref": "y"}]}
/// }"#).unwrap();
/// assert_eq!(get(&graph, &registry, "z").await.unwrap(), 22);
/// # }
/// ```
pub async fn get(graph: &KeyedGraph, registry: &Registry, key: &str) -> Result<Value, Error> {
    let mut values = get_many(graph, registry, &[key]).await?;
    Ok(values.pop().unwrap_or(Value::Null))
}

/// Computes several keys of `graph` together, sharing what they have in
/// common, and returns their outputs in order: dask's `get(dsk, [keys])`.
///
/// # Errors
///
/// As for [`get`]; fail-fast: the first failure cancels the rest.
///
/// # Examples
///
/// ```
/// use delayed::keyed::{get_many, KeyedGraph};
///
/// #[delayed::delayed(register)]
/// fn double(x: u64) -> u64 { x * 2 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let registry = delayed::registry![double];
/// let graph = KeyedGraph::from_json(r#"{
///     "a": {"fn": "double", "args": [1]},
///     "b": {"fn": "double", "args": [{"ref": "a"}]}
/// }"#).unwrap();
/// let both = get_many(&graph, &registry, &["a", "b"]).await.unwrap();
/// assert_eq!(both, [2, 4]);
/// # }
/// ```
pub async fn get_many(
    graph: &KeyedGraph,
    registry: &Registry,
    keys: &[&str],
) -> Result<Vec<Value>, Error> {
    let outputs = build(graph, registry, keys)?
        .into_iter()
        .map(|built| match built {
            Built::Node { task, entry, .. } => (entry.get)(task),
            Built::Value(value) => {
                let value = value.clone();
                Box::pin(async move { Ok(value) })
            }
        });
    futures::future::try_join_all(outputs).await
}

/// Builds the nodes of `roots` and of every key they need.
fn build<'a>(
    graph: &'a KeyedGraph,
    registry: &'a Registry,
    roots: &[&str],
) -> Result<Vec<Built<'a>>, Error> {
    let order = order(graph, registry, roots)?;
    let mut scope = Scope {
        built: HashMap::with_capacity(order.len()),
    };
    for key in order {
        let built = match &graph.tasks[key] {
            Task::Value(value) => Built::Value(value),
            Task::Call(call) => call_node(graph, registry, &scope, key, call)?,
        };
        scope.built.insert(key, built);
    }
    Ok(roots.iter().map(|root| scope.built[root].clone()).collect())
}

/// The keys `roots` need, each after the keys it refers to. Finds missing
/// keys, cycles, unknown functions and wrong argument counts.
fn order<'a>(
    graph: &'a KeyedGraph,
    registry: &Registry,
    roots: &[&str],
) -> Result<Vec<&'a str>, Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut order = Vec::new();
    // Each frame: a key and the keys it refers to, still to visit.
    let mut stack: Vec<(&str, Vec<&str>)> = Vec::new();
    for root in roots {
        let Some((root, _)) = graph.tasks.get_key_value(*root) else {
            return Err(Error::invalid(
                task_key(root),
                format!("no key `{root}` in the graph"),
            ));
        };
        if marks.contains_key(root.as_str()) {
            continue;
        }
        marks.insert(root, Mark::Open);
        stack.push((root, refs(graph, registry, root)?));
        while let Some((key, pending)) = stack.last_mut() {
            let key = *key;
            let Some(next) = pending.pop() else {
                marks.insert(key, Mark::Done);
                order.push(key);
                stack.pop();
                continue;
            };
            let Some((next, _)) = graph.tasks.get_key_value(next) else {
                return Err(missing(graph, registry, key, next));
            };
            match marks.get(next.as_str()) {
                Some(Mark::Done) => {}
                Some(Mark::Open) => {
                    let start = stack.iter().position(|(k, _)| *k == next).unwrap_or(0);
                    let cycle: Vec<String> = stack[start..]
                        .iter()
                        .map(|(k, _)| format!("`{k}`"))
                        .chain([format!("`{next}`")])
                        .collect();
                    return Err(Error::invalid(
                        task_key(next),
                        format!("cycle: {}", cycle.join(" -> ")),
                    ));
                }
                None => {
                    marks.insert(next, Mark::Open);
                    let pending = refs(graph, registry, next)?;
                    stack.push((next, pending));
                }
            }
        }
    }
    Ok(order)
}

/// The keys that `key`'s task refers to, last first; checks its function
/// and argument count on the way.
fn refs<'a>(graph: &'a KeyedGraph, registry: &Registry, key: &str) -> Result<Vec<&'a str>, Error> {
    let Task::Call(call) = &graph.tasks[key] else {
        return Ok(Vec::new());
    };
    let entry = entry(registry, key, call)?;
    if call.args.len() != entry.params.len() {
        let params: Vec<_> = entry.params().collect();
        return Err(Error::invalid(
            task_key(key),
            format!(
                "key `{key}` calls `{}` with {} argument{}, but it takes {} ({})",
                call.function,
                call.args.len(),
                if call.args.len() == 1 { "" } else { "s" },
                params.len(),
                params.join(", ")
            ),
        ));
    }
    let mut keys = Vec::new();
    for arg in &call.args {
        arg.refs(&mut |key| keys.push(key));
    }
    keys.reverse();
    Ok(keys)
}

fn entry<'r>(registry: &'r Registry, key: &str, call: &Call) -> Result<&'r Entry, Error> {
    registry.function(&call.function).ok_or_else(|| {
        let hint = match registry.closest(&call.function) {
            Some(close) => format!("; did you mean `{close}`?"),
            None => {
                let known: Vec<_> = registry.names().collect();
                format!("; registered: {}", known.join(", "))
            }
        };
        Error::invalid(
            task_key(key),
            format!(
                "key `{key}` calls `{}`, which is not a registered function{hint}",
                call.function
            ),
        )
    })
}

/// The error for a reference from `key` to a key that does not exist,
/// with where the reference is.
fn missing(graph: &KeyedGraph, registry: &Registry, key: &str, target: &str) -> Error {
    let mut place = String::new();
    if let Task::Call(call) = &graph.tasks[key] {
        let names: Vec<&str> = registry
            .function(&call.function)
            .map(|entry| entry.params().collect())
            .unwrap_or_default();
        for (i, arg) in call.args.iter().enumerate() {
            let mut found = false;
            arg.refs(&mut |k| found |= k == target);
            if found {
                place = match names.get(i) {
                    Some(name) => format!(" (argument `{name}` of `{}`)", call.function),
                    None => format!(" (argument {} of `{}`)", i + 1, call.function),
                };
                break;
            }
        }
    }
    Error::invalid(
        task_key(key),
        format!("key `{key}` refers to missing key `{target}`{place}"),
    )
}

/// Builds the node of one call from its arguments' nodes.
fn call_node<'a>(
    graph: &'a KeyedGraph,
    registry: &'a Registry,
    scope: &Scope<'a>,
    key: &str,
    call: &'a Call,
) -> Result<Built<'a>, Error> {
    let entry = entry(registry, key, call)?;
    let mut nodes = Vec::with_capacity(call.args.len());
    for (arg, (name, param)) in call.args.iter().zip(&entry.params) {
        let node = param.build_node(arg, scope, name).map_err(|message| {
            Error::invalid(
                task_key(key),
                format!("key `{key}` (`{}`): {message}", call.function),
            )
        })?;
        nodes.push(node);
    }
    // A key's node is its own: never an equal pure node someone else holds.
    let task = intern::distinct(|| entry.call(nodes));
    let policy = call.policy.or(graph.functions.get(&call.function));
    apply(registry, key, &task, &policy)?;
    task.rename(key);
    Ok(Built::Node {
        task,
        type_name: entry.output(),
        entry,
    })
}

/// Sets a key's policy on its node.
fn apply(registry: &Registry, key: &str, task: &NodeView, policy: &Policy) -> Result<(), Error> {
    if policy.is_empty() {
        return Ok(());
    }
    let limit = match &policy.limit {
        Some(name) => Some(registry.limit_named(name).ok_or_else(|| {
            Error::invalid(
                task_key(key),
                format!(
                    "key `{key}` runs under limit `{name}`, which is not registered \
                     (add it with `Registry::limit`)"
                ),
            )
        })?),
        None => None,
    };
    task.change_settings(|node| {
        if let Some(limit) = limit {
            node.limit = Some(limit);
        }
        if let Some(retry) = &policy.retry {
            node.retry = Some(retry.clone());
        }
        if let Some(timeout) = policy.timeout {
            node.timeout = Some(timeout);
        }
        if let Some(priority) = policy.priority {
            node.priority = Some(priority);
        }
    });
    Ok(())
}
