//! From a `Delayed` graph to a keyed graph: every node a call of a
//! registered function, keyed by its node's key.

use std::collections::HashMap;

use super::json::task_key;
use super::registry::Registry;
use super::shape::Node;
use super::spec::{Arg, Call, KeyedGraph, Policy, Task};
use crate::engine::state::Origin;
use crate::engine::view::NodeView;
use crate::{Delayed, Error};

/// Walks a `Delayed` graph for export. Not a stable API.
#[doc(hidden)]
pub struct Exporter<'a> {
    registry: &'a Registry,
    /// Keys handed out so far, with their nodes' addresses.
    keys: HashMap<String, usize>,
    /// Registered nodes still to write.
    queue: Vec<NodeView>,
    /// Keys that are not calls: named values, and fields of unzipped
    /// tuples that have keys of their own.
    tasks: Vec<(String, Task)>,
    /// Write every value in place, named or not.
    inline: bool,
    /// Refer to registered calls without writing them (one call's
    /// arguments, for a worker).
    shallow: bool,
}

impl<'a> Exporter<'a> {
    /// An exporter for one remote call: every value in place.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn inline(registry: &'a Registry) -> Exporter<'a> {
        Exporter {
            registry,
            keys: HashMap::new(),
            queue: Vec::new(),
            tasks: Vec::new(),
            inline: true,
            shallow: false,
        }
    }

    /// An exporter for one remote call's arguments as planned before the
    /// run: registered inputs by reference, values in place.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn shallow(registry: &'a Registry) -> Exporter<'a> {
        Exporter {
            shallow: true,
            ..Exporter::inline(registry)
        }
    }

    /// The argument for a node that has its value: a reference to a value
    /// key when the user named the node (`Delayed::value(dir).named("dir")`),
    /// the value itself otherwise.
    pub(crate) fn value(&mut self, node: &Node, value: serde_json::Value) -> Result<Arg, String> {
        let named = !self.inline && node.0.has_custom_key();
        if !named {
            return Ok(Arg::Value(value));
        }
        let key = node.0.key().to_string();
        if self.claim(&key, &node.0)? {
            self.tasks.push((key.clone(), Task::Value(value)));
        }
        Ok(Arg::Ref(key))
    }

    /// A reference to a registered call, which will be written too, or to
    /// a field of one (a node of `Delayed::unzip`).
    pub(crate) fn reference(&mut self, node: &Node) -> Result<Arg, String> {
        let node = &node.0;
        if let Some(field) = self.field(node, false)? {
            return Ok(field);
        }
        self.call_reference(node)
    }

    /// A reference to a registered call, which will be written too.
    fn call_reference(&mut self, node: &NodeView) -> Result<Arg, String> {
        if node.origin() != Origin::Registered {
            return Err(format!(
                "node `{}` is not a call of a registered function, so it has no place in a \
                 keyed graph; mark `{}` #[delayed(register)], or compute it first",
                node.key(),
                node.name()
            ));
        }
        let key = node.key().to_string();
        if self.shallow {
            return Ok(Arg::Ref(key));
        }
        if self.claim(&key, node)? {
            self.queue.push(node.clone());
        }
        Ok(Arg::Ref(key))
    }

    /// For a field node (made by `unzip`, or by a keyed graph's field
    /// reference): a reference to that field of its tuple's key, in place,
    /// or as a key of its own when the node has a name of its own (or
    /// `keyed` asks for one). `None` for any other node.
    fn field(&mut self, node: &NodeView, keyed: bool) -> Result<Option<Arg>, String> {
        let Some(index) = field_of(node) else {
            return Ok(None);
        };
        // The chain of fields down to the tuple, nearest first: a field of a
        // field has the inner field as its tuple, which gets a key.
        let mut chain = vec![(node.clone(), index)];
        let mut input = first_input(node)?;
        while let Some(index) = field_of(&input) {
            let next = first_input(&input)?;
            chain.push((input, index));
            input = next;
        }
        let mut source = match &mut self.call_reference(&input)? {
            Arg::Ref(key) => std::mem::take(key),
            _ => {
                return Err(format!(
                    "the tuple of field node `{}` has no key",
                    node.key()
                ))
            }
        };
        let top = chain.len() - 1;
        for (i, (field, index)) in chain.into_iter().rev().enumerate() {
            let last = i == top;
            if last && !keyed && !field.has_custom_key() {
                return Ok(Some(Arg::Field(source, index)));
            }
            let key = field.key().to_string();
            if self.claim(&key, &field)? && !self.shallow {
                self.tasks.push((key.clone(), Task::Field(source, index)));
            }
            source = key;
        }
        Ok(Some(Arg::Ref(source)))
    }

    /// Gives `key` to `node`: true the first time, false when `node` has it
    /// already, an error when another node does.
    fn claim(&mut self, key: &str, node: &NodeView) -> Result<bool, String> {
        let address = node.address();
        match self.keys.get(key) {
            Some(seen) if *seen == address => Ok(false),
            Some(_) => Err(format!(
                "two different nodes have the key `{key}`; keys must be unique"
            )),
            None => {
                self.keys.insert(key.to_string(), address);
                Ok(true)
            }
        }
    }
}

impl KeyedGraph {
    /// The keyed form of `root`'s graph: each node that has not run yet
    /// becomes a key (its node's key) calling its registered function;
    /// literal arguments and finished inputs become values.
    ///
    /// Policies set on nodes come along, except a [`Retry`](crate::Retry)'s
    /// `when` filter, which is code. Limits are written by name: register
    /// them on the registry that runs the graph.
    ///
    /// # Errors
    ///
    /// When a node that has not run is not a call of a registered function
    /// (a `map` closure, say), when two nodes share a key, or when a node
    /// failed. The error names the node.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{get, KeyedGraph};
    ///
    /// #[delayed::delayed(register)]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let registry = delayed::registry![inc];
    /// let two = inc(inc(0).named("one")).named("two");
    /// let graph = KeyedGraph::from_delayed(&two, &registry).unwrap();
    /// assert_eq!(
    ///     graph.to_json(),
    ///     r#"{"one":{"fn":"inc","args":[0]},"two":{"fn":"inc","args":[{"ref":"one"}]}}"#
    /// );
    /// let again = KeyedGraph::from_json(&graph.to_json()).unwrap();
    /// assert_eq!(get(&again, &registry, "two").await.unwrap(), 2);
    /// # }
    /// ```
    pub fn from_delayed<T>(root: &Delayed<T>, registry: &Registry) -> Result<KeyedGraph, Error> {
        let mut graph = KeyedGraph::new();
        graph.add_delayed(root, registry)?;
        Ok(graph)
    }

    /// Adds `root`'s graph to this one, as [`from_delayed`] does, and
    /// returns `root`'s key; for graphs with several outputs.
    ///
    /// [`from_delayed`]: KeyedGraph::from_delayed
    ///
    /// # Errors
    ///
    /// As for [`from_delayed`], and when a key is already in the graph
    /// with a different task.
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
    /// let shared = inc(1).named("shared");
    /// let mut graph = KeyedGraph::new();
    /// let a = graph.add_delayed(&inc(&shared).named("a"), &registry).unwrap();
    /// let b = graph.add_delayed(&inc(&shared).named("b"), &registry).unwrap();
    /// assert_eq!((a.as_str(), b.as_str()), ("a", "b"));
    /// assert_eq!(graph.len(), 3);
    /// ```
    pub fn add_delayed<T>(
        &mut self,
        root: &Delayed<T>,
        registry: &Registry,
    ) -> Result<String, Error> {
        let root = &root.view();
        let root_key = root.key().to_string();
        if let Some(value) = finished_value(registry, root) {
            let task = Task::Value(value.map_err(|message| fail(root, message))?);
            self.merge(&root_key, task)?;
            return Ok(root_key);
        }
        let mut exporter = Exporter {
            registry,
            keys: HashMap::new(),
            queue: Vec::new(),
            tasks: Vec::new(),
            inline: false,
            shallow: false,
        };
        // The root gets a key, a field node too.
        let rooted = match exporter.field(root, true) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => exporter.call_reference(root).map(drop),
            Err(message) => Err(message),
        };
        rooted.map_err(|message| fail(root, message))?;
        while let Some(node) = exporter.queue.pop() {
            let key = node.key().to_string();
            let task = call_of(&mut exporter, &node)?;
            self.merge(&key, task)?;
        }
        for (key, task) in std::mem::take(&mut exporter.tasks) {
            self.merge(&key, task)?;
        }
        Ok(root_key)
    }

    fn merge(&mut self, key: &str, task: Task) -> Result<(), Error> {
        match self.tasks.get(key) {
            Some(existing) if *existing != task => Err(Error::invalid(
                task_key(key),
                format!("key `{key}` is already in the graph with a different task"),
            )),
            _ => {
                self.tasks.insert(key.to_string(), task);
                Ok(())
            }
        }
    }
}

/// The field a field node picks; `None` for other nodes.
fn field_of(node: &NodeView) -> Option<usize> {
    if node.origin() != Origin::Call {
        return None;
    }
    crate::unzip::field_index(node.name())
}

/// The tuple of an unfinished field node.
fn first_input(node: &NodeView) -> Result<NodeView, String> {
    node.inputs().into_iter().next().ok_or_else(|| {
        format!(
            "field node `{}` has its value, but not its type here; export the node that uses it, \
             or its tuple",
            node.key()
        )
    })
}

fn fail(node: &NodeView, message: String) -> Error {
    Error::invalid(node.key(), format!("cannot export: {message}"))
}

/// The output of a finished registered node, as JSON.
fn finished_value(
    registry: &Registry,
    node: &NodeView,
) -> Option<Result<serde_json::Value, String>> {
    let entry = registry.function(node.name())?;
    (entry.to_value)(node)
}

/// The task that makes `node` again.
fn call_of(exporter: &mut Exporter<'_>, node: &NodeView) -> Result<Task, Error> {
    let name = node.name();
    let Some(entry) = exporter.registry.function(name) else {
        return Err(fail(
            node,
            format!("function `{name}` is not in the registry"),
        ));
    };
    if let Some(value) = (entry.to_value)(node) {
        return Ok(Task::Value(value.map_err(|message| fail(node, message))?));
    }
    if let Some(err) = node.error() {
        return Err(fail(node, format!("it failed: {err}")));
    }
    let deps: Vec<_> = node.inputs().into_iter().map(Node).collect();
    let policy = node.settings();
    if deps.len() != entry.params.len() {
        return Err(fail(
            node,
            format!(
                "it has {} inputs, but `{name}` takes {} parameters",
                deps.len(),
                entry.params.len()
            ),
        ));
    }
    let mut call = Call::new(name);
    for (dep, (param, shape)) in deps.iter().zip(&entry.params) {
        let arg = shape
            .export_node(dep, exporter)
            .map_err(|message| fail(node, format!("argument `{param}`: {message}")))?;
        call.args.push(arg);
    }
    call.policy = Policy {
        limit: policy.limit.map(|limit| limit.name().to_string()),
        retry: policy.retry,
        timeout: policy.timeout,
        priority: policy.priority,
    };
    Ok(Task::Call(call))
}
