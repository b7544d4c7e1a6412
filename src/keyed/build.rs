//! Turning a planned keyed graph into nodes: each key (and each call
//! written in place) after what it refers to, so an argument always finds
//! what it names already built. Every error is found before anything runs.

use std::collections::{BTreeMap, HashMap};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::get::{assemble, Part};
use super::json::task_key;
use super::plan::{self, inside_of, Item, Plan};
use super::probe::Fields;
use super::registry::{Entry, Registry};
use super::shape::{bridge, short_type, type_name};
use super::spec::{Arg, Call, KeyedGraph, Policy, Task};
use crate::engine::intern;
use crate::engine::view::NodeView;
use crate::{Delayed, Error};

/// The keys built so far, for arguments to refer to. Not a stable API.
#[doc(hidden)]
pub struct Scope<'a> {
    keys: HashMap<&'a str, Resolved<'a>>,
    /// Calls written in place, by address.
    inline: HashMap<usize, Resolved<'a>>,
}

/// What a key (or an argument that refers to one) stands for, once aliases
/// and fields are followed.
#[derive(Clone)]
pub(crate) enum Resolved<'a> {
    /// A node's output, or a field of it (`path`, outermost first).
    Node {
        task: NodeView,
        entry: &'a Entry,
        path: Vec<usize>,
    },
    /// A literal.
    Value(&'a Value),
    /// A list of arguments, built where it is used.
    List(&'a [Arg]),
    /// A map of arguments, built where it is used.
    Map(&'a BTreeMap<String, Arg>),
}

impl<'a> Scope<'a> {
    /// A scope whose keys are finished nodes: `(key, node, its function)`.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn of_nodes(nodes: &'a [(String, NodeView, &'a Entry)]) -> Scope<'a> {
        let keys = nodes
            .iter()
            .map(|(key, task, entry)| {
                let resolved = Resolved::Node {
                    task: task.clone(),
                    entry,
                    path: Vec::new(),
                };
                (key.as_str(), resolved)
            })
            .collect();
        Scope {
            keys,
            inline: HashMap::new(),
        }
    }

    /// What `arg` stands for: a literal, a list or a map as written, or
    /// what the key, field or call it names was built as.
    pub(crate) fn resolve<'x>(&self, arg: &'x Arg) -> Result<Resolved<'x>, String>
    where
        'a: 'x,
    {
        let mut arg = arg;
        // A field of a list key's item that is itself a field: follow the
        // chain, one step per turn.
        loop {
            return match arg {
                Arg::Value(value) => Ok(Resolved::Value(value)),
                Arg::List(items) => Ok(Resolved::List(items)),
                Arg::Map(entries) => Ok(Resolved::Map(entries)),
                Arg::Ref(key) => self.key(key),
                Arg::Call(call) => self.inline.get(&address(call)).cloned().ok_or_else(|| {
                    format!("the call of `{}` is not available here", call.function)
                }),
                Arg::Field(key, index) => match field(self.key(key)?, *index, key)? {
                    Field::Done(resolved) => Ok(resolved),
                    Field::Arg(item) => {
                        arg = item;
                        continue;
                    }
                },
            };
        }
    }

    fn key<'x>(&self, key: &str) -> Result<Resolved<'x>, String>
    where
        'a: 'x,
    {
        self.keys
            .get(key)
            .cloned()
            .ok_or_else(|| format!("key `{key}` is not available here"))
    }
}

/// A field of something resolved: resolved, or an item of a list still to
/// resolve.
enum Field<'x> {
    Done(Resolved<'x>),
    Arg(&'x Arg),
}

/// Field `index` of `base`, which key `key` stands for.
fn field<'x>(base: Resolved<'x>, index: usize, key: &str) -> Result<Field<'x>, String> {
    match base {
        Resolved::Node {
            task,
            entry,
            mut path,
        } => {
            if path.is_empty() {
                match entry.fields {
                    Fields::Tuple(len) if index < len => {}
                    Fields::Tuple(len) => {
                        return Err(format!(
                            "key `{key}` makes a `{}`, which has {len} field{}, so no field {index}",
                            short_type(entry.output()),
                            if len == 1 { "" } else { "s" }
                        ))
                    }
                    Fields::None => {
                        return Err(format!(
                            "key `{key}` makes a `{}`, which is not a tuple, so it has no field {index}",
                            short_type(entry.output())
                        ))
                    }
                }
            } else if super::super::unzip::field_name(index).is_none() {
                return Err(format!(
                    "field {index} of key `{key}`: a field inside a field is one of the first 16"
                ));
            }
            path.push(index);
            Ok(Field::Done(Resolved::Node { task, entry, path }))
        }
        Resolved::Value(value) => match value {
            Value::Array(items) => items
                .get(index)
                .map(|item| Field::Done(Resolved::Value(item)))
                .ok_or_else(|| {
                    format!(
                        "key `{key}` is a list of {} items, so it has no item {index}",
                        items.len()
                    )
                }),
            other => Err(format!(
                "key `{key}` is `{}`, not a list, so it has no item {index}",
                super::json::short(other)
            )),
        },
        Resolved::List(items) => items.get(index).map(Field::Arg).ok_or_else(|| {
            format!(
                "key `{key}` is a list of {} items, so it has no item {index}",
                items.len()
            )
        }),
        Resolved::Map(_) => Err(format!("key `{key}` is a map, so it has no item {index}")),
    }
}

/// Identifies a call written in place while the graph is borrowed.
fn address(call: &Call) -> usize {
    std::ptr::from_ref(call) as usize
}

impl KeyedGraph {
    /// Checks the whole graph against `registry` without running anything:
    /// every reference names a key, there is no cycle (aliases included),
    /// every function is registered and gets the right number of arguments
    /// of the right types, every field exists, every limit is registered,
    /// and no literal nests deeper than JSON can (128 levels).
    ///
    /// Nothing recurses: a graph built in code with lists nested 100,000
    /// deep gets an error, not a stack overflow.
    ///
    /// # Errors
    ///
    /// The first problem, as an [`Error`] for which
    /// [`is_invalid`](Error::is_invalid) holds, naming the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Arg, Call, KeyedGraph};
    ///
    /// #[delayed::delayed(register)]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// let registry = delayed::registry![inc];
    /// let graph = KeyedGraph::from_json(r#"{"a": {"fn": "inc", "args": [{"ref": "b"}]}}"#).unwrap();
    /// let err = graph.validate(&registry).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid graph: key `a` refers to missing key `b` (argument `x` of `inc`)");
    ///
    /// let mut deep = Arg::value(1);
    /// for _ in 0..10_000 {
    ///     deep = Arg::list([deep]);
    /// }
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("k", Call::new("inc").arg(deep));
    /// let err = graph.validate(&registry).unwrap_err();
    /// assert!(err.to_string().contains("nests more than 128 levels deep"), "{err}");
    /// ```
    pub fn validate(&self, registry: &Registry) -> Result<(), Error> {
        let keys: Vec<&str> = self.tasks.keys().map(String::as_str).collect();
        build(self, registry, &keys).map(drop)
    }

    /// The node of `key` and of everything it needs, typed, to compute with
    /// any of `Delayed`'s methods (options, sequential, ...).
    ///
    /// A call key gives its node, an alias the node it names; a value, a
    /// field or a list key gives a node that makes it.
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
    /// let graph = KeyedGraph::from_json(r#"{
    ///     "a": {"fn": "inc", "args": [1]},
    ///     "both": [{"ref": "a"}, {"fn": "inc", "args": [{"ref": "a"}]}]
    /// }"#).unwrap();
    /// let a = graph.delayed::<u64>(&registry, "a").unwrap();
    /// assert_eq!(a.key().to_string(), "a");
    /// assert_eq!(a.compute().await.unwrap(), 2);
    /// assert!(graph.delayed::<String>(&registry, "a").is_err());
    ///
    /// let both = graph.delayed::<Vec<u64>>(&registry, "both").unwrap();
    /// assert_eq!(both.compute().await.unwrap(), [2, 3]);
    /// # }
    /// ```
    pub fn delayed<T>(&self, registry: &Registry, key: &str) -> Result<Delayed<T>, Error>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let built = build(self, registry, &[key])?;
        let at = format!("key `{key}`");
        let Some(root) = built.roots.first() else {
            return Err(Error::invalid(task_key(key), format!("no key `{key}`")));
        };
        match root.clone() {
            Resolved::Node { task, entry, path } if path.is_empty() => {
                if task.makes::<T>() {
                    Ok(Delayed::from_view(task))
                } else {
                    Err(Error::invalid(
                        task_key(key),
                        format!(
                            "{at} makes a `{}`, not a `{}`",
                            short_type(entry.output()),
                            type_name::<T>()
                        ),
                    ))
                }
            }
            Resolved::Node { task, entry, path } => Ok(bridge::<T>(task, entry, &path).named(key)),
            Resolved::Value(value) => T::deserialize(value)
                .map(|value| Delayed::value(value).named(key))
                .map_err(|err| Error::invalid(task_key(key), format!("{at}: {err}"))),
            Resolved::List(_) | Resolved::Map(_) => {
                let parts = vec![Part::Root(root.clone())];
                let node = assemble(&built.scope, parts, |mut values| {
                    let value = values.pop().unwrap_or(Value::Null);
                    T::deserialize(value).map_err(|err| err.to_string())
                })
                .map_err(|message| Error::invalid(task_key(key), format!("{at}: {message}")))?;
                Ok(node.named(key))
            }
        }
    }
}

/// A built graph: the scope of what was built, and what the roots stand
/// for, in order.
pub(crate) struct Built<'a> {
    pub(crate) scope: Scope<'a>,
    pub(crate) roots: Vec<Resolved<'a>>,
}

/// Builds the nodes of `roots` and of every key they need.
pub(crate) fn build<'a>(
    graph: &'a KeyedGraph,
    registry: &'a Registry,
    roots: &[&str],
) -> Result<Built<'a>, Error> {
    let Plan { order, inline } = plan::plan(graph, registry, roots)?;
    let mut scope = Scope {
        keys: HashMap::with_capacity(order.len()),
        inline: HashMap::with_capacity(inline.len()),
    };
    for item in order {
        match item {
            Item::Key(key) => {
                let resolved = match &graph.tasks[key] {
                    Task::Value(value) => Resolved::Value(value),
                    Task::Call(call) => {
                        let (task, entry) = call_node(graph, registry, &scope, key, call, None)?;
                        task.rename(key);
                        Resolved::Node {
                            task,
                            entry,
                            path: Vec::new(),
                        }
                    }
                    Task::Alias(target) => scope.keys[target.as_str()].clone(),
                    Task::Field(target, index) => {
                        let base = scope.keys[target.as_str()].clone();
                        let field = field(base, *index, target)
                            .and_then(|field| match field {
                                Field::Done(resolved) => Ok(resolved),
                                Field::Arg(item) => scope.resolve(item),
                            })
                            .map_err(|message| {
                                Error::invalid(task_key(key), format!("key `{key}`: {message}"))
                            })?;
                        field
                    }
                    Task::List(items) => {
                        check_fields(&scope, items).map_err(|message| {
                            Error::invalid(task_key(key), format!("key `{key}`: {message}"))
                        })?;
                        Resolved::List(items)
                    }
                };
                scope.keys.insert(key, resolved);
            }
            Item::Inline(i) => {
                let written = &inline[i];
                let (task, entry) = call_node(
                    graph,
                    registry,
                    &scope,
                    written.owner,
                    written.call,
                    Some(&written.place),
                )?;
                task.rename(written.key.as_str());
                scope.inline.insert(
                    address(written.call),
                    Resolved::Node {
                        task,
                        entry,
                        path: Vec::new(),
                    },
                );
            }
        }
    }
    let roots = roots.iter().map(|root| scope.keys[root].clone()).collect();
    Ok(Built { scope, roots })
}

/// Checks the field references in a list's items (those in calls are
/// checked with their calls).
fn check_fields(scope: &Scope<'_>, items: &[Arg]) -> Result<(), String> {
    let mut stack: Vec<&Arg> = items.iter().collect();
    while let Some(arg) = stack.pop() {
        match arg {
            Arg::Field(..) => drop(scope.resolve(arg)?),
            Arg::List(items) => stack.extend(items),
            Arg::Map(entries) => stack.extend(entries.values()),
            Arg::Value(_) | Arg::Ref(_) | Arg::Call(_) => {}
        }
    }
    Ok(())
}

/// Builds the node of one call from its arguments' nodes; `inside` says
/// where a call written in place stands.
fn call_node<'a>(
    graph: &'a KeyedGraph,
    registry: &'a Registry,
    scope: &Scope<'a>,
    key: &str,
    call: &'a Call,
    inside: Option<&str>,
) -> Result<(NodeView, &'a Entry), Error> {
    let entry = plan::entry(registry, key, call, inside)?;
    let mut nodes = Vec::with_capacity(call.args.len());
    for (arg, (name, param)) in call.args.iter().zip(&entry.params) {
        let node = param.build_node(arg, scope, name).map_err(|message| {
            let inside = match inside {
                Some(place) => format!(", inside {place}"),
                None => String::new(),
            };
            Error::invalid(
                task_key(key),
                format!("key `{key}` (`{}`{inside}): {message}", call.function),
            )
        })?;
        nodes.push(node);
    }
    // A key's node is its own: never an equal pure node someone else holds.
    let task = intern::distinct(|| entry.call(nodes));
    let policy = call.policy.or(graph.functions.get(&call.function));
    apply(registry, key, &task, &policy, inside)?;
    Ok((task, entry))
}

/// Sets a key's policy on its node.
fn apply(
    registry: &Registry,
    key: &str,
    task: &NodeView,
    policy: &Policy,
    inside: Option<&str>,
) -> Result<(), Error> {
    if policy.is_empty() {
        return Ok(());
    }
    let limit = match &policy.limit {
        Some(name) => Some(registry.limit_named(name).ok_or_else(|| {
            Error::invalid(
                task_key(key),
                format!(
                    "key `{key}`{} runs under limit `{name}`, which is not registered \
                     (add it with `Registry::limit`)",
                    inside_of(inside)
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
