//! Snapshots of a graph: what `Delayed::graph` returns.

use std::collections::{HashMap, HashSet};
use std::fmt;

use std::time::Duration;

use crate::callback::Outcome;
use crate::key::Key;
use crate::Error;

/// A snapshot of every node reachable from one [`Delayed`], in topological
/// order: each node comes after all of its inputs.
///
/// Taking it runs nothing and holds each node's lock only long enough to
/// copy its key, state and inputs. A finished node has let go of its inputs
/// (to free memory), so a snapshot taken after a compute shows the finished
/// nodes the caller still holds, without their inputs.
///
/// [`Delayed`]: crate::Delayed
///
/// # Examples
///
/// ```
/// use delayed::{delayed, TaskState};
///
/// #[delayed]
/// fn inc(x: u64) -> u64 { x + 1 }
///
/// #[delayed]
/// fn add(a: u64, b: u64) -> u64 { a + b }
///
/// let a = inc(1).named("a");
/// let b = add(&a, inc(&a).named("c")).named("b");
/// let graph = b.graph();
/// let keys: Vec<String> = graph.nodes().iter().map(|n| n.key().to_string()).collect();
/// assert_eq!(keys, ["a", "c", "b"]);
/// assert!(graph.nodes().iter().all(|n| n.state() == TaskState::Waiting));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<GraphNode>,
}

/// One node of a [`Graph`] snapshot.
///
/// # Examples
///
/// ```
/// let x = delayed::Delayed::value(2).map(|x: u64| x * 2).named("double");
/// let graph = x.graph();
/// let node = graph.get("double").unwrap();
/// assert_eq!((node.name(), node.deps().len()), ("map", 1));
/// ```
#[derive(Clone, Debug)]
pub struct GraphNode {
    key: Key,
    deps: Vec<Key>,
    state: TaskState,
    error: Option<Error>,
    duration: Option<Duration>,
}

/// Where a node stood when the snapshot was taken.
///
/// # Examples
///
/// ```
/// use delayed::TaskState;
///
/// let x = delayed::Delayed::value(2).map(|x: u64| x * 2);
/// assert_eq!(x.graph().count(TaskState::Waiting), 1);
/// assert_eq!(TaskState::Waiting.to_string(), "waiting");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Not started: never computed, or waiting for its inputs or a worker.
    Waiting,
    /// Its body is running.
    Running,
    /// Finished with a value.
    Done,
    /// Finished with an error, its own or an input's.
    Failed,
    /// Started by a compute that was dropped before it finished; a later
    /// compute starts it again.
    Cancelled,
}

impl Graph {
    /// A graph of `nodes`, each after its inputs.
    pub(crate) fn from_nodes(nodes: Vec<GraphNode>) -> Graph {
        Graph { nodes }
    }

    /// Adds the nodes of `other` that this graph does not have yet.
    pub(crate) fn merge(&mut self, other: &Graph) {
        let known: HashSet<&Key> = self.nodes.iter().map(|node| &node.key).collect();
        let new: Vec<GraphNode> = other
            .nodes
            .iter()
            .filter(|node| !known.contains(&node.key))
            .cloned()
            .collect();
        self.nodes.extend(new);
    }

    /// This graph with what a timeline saw: the state, error and run time
    /// of each node that ran; nodes that never ran because an input failed
    /// are failed with that input's error.
    pub(crate) fn annotated(&self, runs: &HashMap<String, (Outcome, Duration)>) -> Graph {
        let mut failed: HashMap<String, Error> = HashMap::new();
        let nodes = self
            .nodes
            .iter()
            .map(|node| {
                let key = node.key.to_string();
                let mut node = node.clone();
                match runs.get(&key) {
                    Some((outcome, duration)) => {
                        node.duration = Some(*duration);
                        (node.state, node.error) = match outcome {
                            Outcome::Done => (TaskState::Done, None),
                            Outcome::Failed(err) => (TaskState::Failed, Some(err.clone())),
                            Outcome::Cancelled => (TaskState::Cancelled, None),
                        };
                    }
                    None => {
                        let cause = node
                            .deps
                            .iter()
                            .find_map(|dep| failed.get(&dep.to_string()));
                        if let Some(err) = cause {
                            node.state = TaskState::Failed;
                            node.error = Some(err.clone());
                        }
                    }
                }
                if let Some(err) = &node.error {
                    failed.insert(key, err.clone());
                }
                node
            })
            .collect();
        Graph { nodes }
    }

    /// The nodes, each after its inputs.
    ///
    /// # Examples
    ///
    /// ```
    /// let graph = delayed::Delayed::value(1).map(|x: u64| x + 1).graph();
    /// assert_eq!(graph.nodes().len(), 2);
    /// assert_eq!(graph.nodes()[1].name(), "map");
    /// ```
    pub fn nodes(&self) -> &[GraphNode] {
        &self.nodes
    }

    /// The node with this key, if the snapshot has it.
    ///
    /// # Examples
    ///
    /// ```
    /// let x = delayed::Delayed::value(1).map(|x: u64| x + 1).named("x");
    /// assert_eq!(x.graph().get("x").unwrap().deps().len(), 1);
    /// ```
    pub fn get(&self, key: &str) -> Option<&GraphNode> {
        self.nodes.iter().find(|node| node.key.to_string() == key)
    }

    /// How many nodes of each state the snapshot has.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::TaskState;
    ///
    /// let graph = delayed::Delayed::value(1).map(|x: u64| x + 1).graph();
    /// assert_eq!(graph.count(TaskState::Done), 1); // the literal
    /// assert_eq!(graph.count(TaskState::Waiting), 1);
    /// ```
    pub fn count(&self, state: TaskState) -> usize {
        self.nodes.iter().filter(|node| node.state == state).count()
    }
}

impl GraphNode {
    /// A node of a snapshot.
    pub(crate) fn new(
        key: Key,
        deps: Vec<Key>,
        state: TaskState,
        error: Option<Error>,
    ) -> GraphNode {
        GraphNode {
            key,
            deps,
            state,
            error,
            duration: None,
        }
    }

    /// The node's key.
    ///
    /// # Examples
    ///
    /// ```
    /// let x = delayed::Delayed::value(1).named("one");
    /// assert_eq!(x.graph().nodes()[0].key().to_string(), "one");
    /// ```
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The function (or combinator) that made the node, like `"inc"`.
    ///
    /// # Examples
    ///
    /// ```
    /// let x = delayed::Delayed::value(1);
    /// assert_eq!(x.graph().nodes()[0].name(), "value");
    /// ```
    pub fn name(&self) -> &'static str {
        self.key.name()
    }

    /// The keys of the node's inputs, in argument order. Empty for a
    /// finished node, which has let go of its inputs.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = delayed::Delayed::value(1).named("a");
    /// let b = a.map(|x: u64| x + 1);
    /// let graph = b.graph();
    /// assert_eq!(graph.nodes()[1].deps()[0].to_string(), "a");
    /// ```
    pub fn deps(&self) -> &[Key] {
        &self.deps
    }

    /// Where the node stood when the snapshot was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::TaskState;
    ///
    /// let x = delayed::Delayed::value(1);
    /// assert_eq!(x.graph().nodes()[0].state(), TaskState::Done);
    /// ```
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// For a failed node, its error; [`Error::key`] names the task that
    /// failed first, which is this node's own key when it failed by itself.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bad = delayed::Delayed::value(0_u64)
    ///     .try_map(|_| Err::<u64, _>(std::fmt::Error))
    ///     .named("bad");
    /// let top = bad.map(|x| x + 1).named("top");
    /// assert!(top.compute().await.is_err());
    /// let graph = top.graph();
    /// assert_eq!(graph.get("top").unwrap().error().unwrap().key().to_string(), "bad");
    /// # }
    /// ```
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// How long the node's body ran, when known: in a graph from
    /// [`Timeline::graph`](crate::Timeline::graph), for each node that ran.
    /// Plain snapshots do not time anything, so they have `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// let x = delayed::Delayed::value(1);
    /// assert_eq!(x.graph().nodes()[0].duration(), None);
    /// ```
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Waiting => "waiting",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        })
    }
}
