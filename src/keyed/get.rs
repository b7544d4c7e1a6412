//! Running a keyed graph: `get` and its siblings, as dask's `get(dsk,
//! keys)`. One get is one compute, with options like any compute.

use std::collections::HashMap;

use serde_json::Value;

use super::build::{build, Resolved, Scope};
use super::deep;
use super::keys::{Keys, Token};
use super::registry::Registry;
use super::spec::KeyedGraph;
use crate::builder::Builder;
use crate::engine::deps::Deps;
use crate::{Delayed, Error, Options};

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
    get_with(graph, registry, key, Options::new()).await
}

/// Computes several keys of `graph` together, sharing what they have in
/// common, and returns their outputs in order: dask's `get(dsk, [keys])`.
///
/// Each item may be a key or a nested list of keys ([`Keys`]), whose
/// output is the JSON array of theirs: dask's `get(dsk, [['x'], 'y'])`
/// gives `((1,), 2)`, and here `[[1], 2]`.
///
/// # Errors
///
/// As for [`get`]; fail-fast: the first failure cancels the rest.
///
/// # Examples
///
/// ```
/// use delayed::keyed::{get_many, KeyedGraph, Keys};
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
///
/// let nested = get_many(&graph, &registry, &[Keys::from(["a"]), Keys::from("b")]).await.unwrap();
/// assert_eq!(nested, [serde_json::json!([2]), serde_json::json!(4)]);
/// # }
/// ```
pub async fn get_many<K: Into<Keys> + Clone>(
    graph: &KeyedGraph,
    registry: &Registry,
    keys: &[K],
) -> Result<Vec<Value>, Error> {
    match get_with(graph, registry, keys, Options::new()).await? {
        Value::Array(values) => Ok(values),
        other => Ok(vec![other]),
    }
}

/// Computes `keys` of `graph` as one compute with `options`: callbacks,
/// a progress bar, the sequential scheduler. `keys` is one key (the result
/// is its output) or a nested list of them (the result is nested the same
/// way), as for [`get_many`].
///
/// Callbacks hear `start` and `finish` even when nothing is left to run
/// (a value key, or keys already computed).
///
/// # Errors
///
/// As for [`get`].
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use delayed::keyed::{get_with, KeyedGraph};
/// use delayed::{Callback, Graph, Options};
///
/// #[delayed::delayed(register)]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// struct Log(Arc<Mutex<Vec<String>>>);
/// impl Callback for Log {
///     fn start(&self, _: &Graph) { self.0.lock().unwrap().push("start".into()) }
///     fn finish(&self, _: Result<(), &delayed::Error>) { self.0.lock().unwrap().push("finish".into()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let registry = delayed::registry![inc];
/// let graph = KeyedGraph::from_json(r#"{
///     "x": {"value": 1},
///     "y": {"fn": "inc", "args": [{"ref": "x"}]}
/// }"#).unwrap();
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let options = Options::new().sequential().callback(Log(log.clone()));
/// let out = get_with(&graph, &registry, [["x"], ["y"]], options).await.unwrap();
/// assert_eq!(out, serde_json::json!([[1], [2]]));
/// assert_eq!(*log.lock().unwrap(), ["start", "finish"]);
///
/// // A value key: nothing runs, and the callbacks still hear the compute.
/// let options = Options::new().callback(Log(log.clone()));
/// assert_eq!(get_with(&graph, &registry, "x", options).await.unwrap(), 1);
/// assert_eq!(log.lock().unwrap().len(), 4);
/// # }
/// ```
pub async fn get_with(
    graph: &KeyedGraph,
    registry: &Registry,
    keys: impl Into<Keys>,
    options: Options,
) -> Result<Value, Error> {
    let keys = keys.into();
    let compute = {
        let names = keys.names();
        let built = build(graph, registry, &names)?;
        match (keys.tokens(), built.roots.first()) {
            // One key that is a call (or an alias of one): its own compute.
            (
                [Token::Key(_)],
                Some(Resolved::Node {
                    task, entry, path, ..
                }),
            ) if path.is_empty() => (entry.get_with)(task.clone(), options),
            ([Token::Key(key)], Some(Resolved::Value(value))) => {
                let node = Delayed::value(deep::clone_value(value)).named(key.as_str());
                Box::pin(async move { node.compute_with(options).await })
            }
            _ => {
                let mut roots = built.roots.iter();
                let mut parts = Vec::new();
                let mut counts: Vec<usize> = Vec::new();
                for token in keys.tokens() {
                    match token {
                        Token::Key(_) => {
                            if let Some(count) = counts.last_mut() {
                                *count += 1;
                            }
                            if let Some(root) = roots.next() {
                                parts.push(Part::Root(root.clone()));
                            }
                        }
                        Token::Start => counts.push(0),
                        Token::End => {
                            let count = counts.pop().unwrap_or(0);
                            parts.push(Part::List(count));
                            if let Some(outer) = counts.last_mut() {
                                *outer += 1;
                            }
                        }
                    }
                }
                let node = assemble(&built.scope, parts, |mut values| {
                    Ok(values.pop().unwrap_or(Value::Null))
                })
                .map_err(|message| {
                    Error::invalid(crate::keyed::json::task_key(&keys.to_string()), message)
                })?;
                Box::pin(async move { node.compute_with(options).await })
            }
        }
    };
    compute.await
}

/// A part of a result, in postfix order: what a key stands for, or a list
/// of the parts before it.
pub(crate) enum Part<'a> {
    Root(Resolved<'a>),
    List(usize),
}

/// One step of making a result in a node's body.
enum Op {
    Value(Value),
    /// The output of an input as JSON, then fields of it.
    Node {
        input: usize,
        json: fn(&Deps, usize) -> Result<Value, String>,
        path: Vec<usize>,
        key: String,
    },
    List(usize),
    Map(Vec<String>),
}

/// One node that makes the JSON of `parts` from the outputs of the nodes
/// they stand for, and then `finish`es it (one value per top-level part).
pub(crate) fn assemble<T: Send + Sync + 'static>(
    scope: &Scope<'_>,
    parts: Vec<Part<'_>>,
    finish: impl Fn(Vec<Value>) -> Result<T, String> + Send + 'static,
) -> Result<Delayed<T>, String> {
    enum Work<'x> {
        Resolved(Resolved<'x>),
        Arg(&'x super::spec::Arg),
        Op(Op),
    }
    let mut builder = Builder::new(&"get").joining();
    let mut inputs: HashMap<usize, usize> = HashMap::new();
    let mut ops = Vec::new();
    for part in parts {
        let mut work = vec![match part {
            Part::Root(resolved) => Work::Resolved(resolved),
            Part::List(len) => Work::Op(Op::List(len)),
        }];
        while let Some(step) = work.pop() {
            let resolved = match step {
                Work::Op(op) => {
                    ops.push(op);
                    continue;
                }
                Work::Arg(arg) => scope.resolve(arg)?,
                Work::Resolved(resolved) => resolved,
            };
            match resolved {
                Resolved::Value(value) => ops.push(Op::Value(deep::clone_value(value))),
                Resolved::Node { task, entry, path } => {
                    let key = task.key().to_string();
                    let input = *inputs
                        .entry(task.address())
                        .or_insert_with(|| (entry.input)(&mut builder, task));
                    ops.push(Op::Node {
                        input,
                        json: entry.json,
                        path,
                        key,
                    });
                }
                Resolved::List(items) => {
                    work.push(Work::Op(Op::List(items.len())));
                    work.extend(items.iter().rev().map(Work::Arg));
                }
                Resolved::Map(entries) => {
                    work.push(Work::Op(Op::Map(entries.keys().cloned().collect())));
                    work.extend(entries.values().rev().map(Work::Arg));
                }
            }
        }
    }
    Ok(builder.sync_result(move |deps: &mut Deps| {
        let mut stack: Vec<Value> = Vec::new();
        for op in &ops {
            match op {
                Op::Value(value) => stack.push(deep::clone_value(value)),
                Op::Node {
                    input,
                    json,
                    path,
                    key,
                } => {
                    let mut value = json(deps, *input)
                        .map_err(|err| format!("the output of `{key}` is not JSON: {err}"))?;
                    for index in path {
                        value = match value {
                            Value::Array(mut items) if *index < items.len() => {
                                items.swap_remove(*index)
                            }
                            _ => return Err(format!("the output of `{key}` has no field {index}")),
                        };
                    }
                    stack.push(value);
                }
                Op::List(len) => {
                    let items = stack.split_off(stack.len().saturating_sub(*len));
                    stack.push(Value::Array(items));
                }
                Op::Map(names) => {
                    let values = stack.split_off(stack.len().saturating_sub(names.len()));
                    stack.push(Value::Object(names.iter().cloned().zip(values).collect()));
                }
            }
        }
        finish(stack)
    }))
}
