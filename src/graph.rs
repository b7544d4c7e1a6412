//! Snapshots of a graph: what `Delayed::graph` returns.

use std::collections::{HashMap, HashSet};
use std::fmt;

use std::time::Duration;

use foldhash::fast::RandomState;

use crate::callback::Outcome;
use crate::key::Key;
use crate::limit::Limit;
use crate::Error;

/// A snapshot of every node reachable from one [`Delayed`], in topological
/// order: each node comes after all of its inputs.
///
/// It is the graph you wrote: your calls, not the nodes the crate makes for
/// you. Literals ([`Delayed::value`], and plain arguments the crate turns
/// into nodes) and the nodes that gather a `Vec`, tuple, `Option` or map of
/// nodes passed as one argument are left out, and a node's
/// [`deps`](GraphNode::deps) are the nearest calls behind them: in
/// `analyze(vec![a, b, c])`, `analyze` depends on `a`, `b` and `c`, as in
/// dask. Such a node shows up when you [`named`](crate::Delayed::named) it:
/// a key you gave makes it yours.
///
/// Taking it runs nothing and holds each node's lock only long enough to
/// copy its key, state and inputs. A node that finished with a value has
/// let go of its inputs (to free memory), so a snapshot taken after a
/// compute shows the finished nodes the caller still holds, without their
/// inputs. A failed node keeps the inputs that failed, so the snapshot of
/// a failed compute shows the path from the root cause (the task that
/// failed by itself) to the result.
///
/// [`Delayed::value`]: crate::Delayed::value
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
/// #[delayed]
/// fn total(parts: Vec<u64>) -> u64 { parts.iter().sum() }
///
/// let a = inc(1).named("a");
/// let b = add(&a, inc(&a).named("c")).named("b");
/// let graph = b.graph();
/// let keys: Vec<String> = graph.nodes().iter().map(|n| n.key().to_string()).collect();
/// assert_eq!(keys, ["a", "c", "b"]);
/// assert!(graph.nodes().iter().all(|n| n.state() == TaskState::Waiting));
///
/// // The `Vec` of nodes is not a node of its own: `sum` uses `a`, `b`, `d`.
/// let d = inc(5).named("d");
/// let sum = total(vec![a, b, d]).named("sum");
/// let graph = sum.graph();
/// let deps: Vec<String> = graph.get("sum").unwrap().deps().iter().map(|k| k.to_string()).collect();
/// assert_eq!(deps, ["a", "b", "d"]);
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
/// let two = delayed::Delayed::value(2_u64);
/// let x = two.map(|x| x * 2).named("double");
/// let y = x.map(|x| x + 1).named("inc");
/// let graph = y.graph();
/// // The literal is not a node of the graph: only the two calls are.
/// assert_eq!(graph.nodes().len(), 2);
/// let node = graph.get("double").unwrap();
/// assert_eq!((node.name(), node.deps().len()), ("map", 0));
/// assert_eq!(node.dependents()[0].to_string(), "inc");
/// ```
#[derive(Clone, Debug)]
pub struct GraphNode {
    key: Key,
    deps: Vec<Key>,
    dependents: Vec<Key>,
    state: TaskState,
    error: Option<Error>,
    duration: Option<Duration>,
    limit: Option<&'static Limit>,
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
/// assert_eq!(x.graph().count(TaskState::Done), 0); // the literal is not shown
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
    /// Finished with a value found in a compute's cache, without running
    /// (see `delayed::cache`).
    Cached,
}

impl Graph {
    /// A graph of `nodes`, each after its inputs; their dependents are
    /// filled in from their inputs.
    pub(crate) fn from_nodes(nodes: Vec<GraphNode>) -> Graph {
        let mut graph = Graph { nodes };
        graph.link_dependents();
        graph
    }

    /// Sets each node's dependents: the nodes of this graph whose inputs
    /// name it, in graph order.
    fn link_dependents(&mut self) {
        // The first node of each key, and for each node the next of its
        // key (keys the user gave may repeat): no list per key.
        const END: usize = usize::MAX;
        let mut first: HashMap<Key, usize, RandomState> =
            HashMap::with_capacity_and_hasher(self.nodes.len(), RandomState::default());
        let mut next = vec![END; self.nodes.len()];
        for (i, node) in self.nodes.iter_mut().enumerate().rev() {
            node.dependents.clear();
            if let Some(later) = first.insert(node.key.clone(), i) {
                next[i] = later;
            }
        }
        for i in 0..self.nodes.len() {
            let user = self.nodes[i].key.clone();
            for d in 0..self.nodes[i].deps.len() {
                let mut target = first.get(&self.nodes[i].deps[d]).copied().unwrap_or(END);
                while target != END {
                    let dependents = &mut self.nodes[target].dependents;
                    if dependents.last() != Some(&user) {
                        dependents.push(user.clone());
                    }
                    target = next[target];
                }
            }
        }
    }

    /// Adds the nodes of `other` that this graph does not have yet.
    pub(crate) fn merge(&mut self, other: &Graph) {
        let known: HashSet<&Key, RandomState> = self.nodes.iter().map(|node| &node.key).collect();
        let new: Vec<GraphNode> = other
            .nodes
            .iter()
            .filter(|node| !known.contains(&node.key))
            .cloned()
            .collect();
        if new.is_empty() {
            return;
        }
        self.nodes.extend(new);
        self.link_dependents();
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
                            Outcome::Cached => (TaskState::Cached, None),
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
    /// let one = delayed::Delayed::value(1_u64).map(|x| x + 1);
    /// let graph = one.map(|x| x * 2).named("top").graph();
    /// assert_eq!(graph.nodes().len(), 2);
    /// assert_eq!(graph.nodes()[1].key().to_string(), "top");
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
    /// let y = x.map(|x| x * 2);
    /// assert_eq!(y.graph().get("x").unwrap().dependents(), [y.key()]);
    /// assert!(y.graph().get("nothing").is_none());
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
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let x = delayed::Delayed::value(1).map(|x: u64| x + 1);
    /// x.compute().await.unwrap();
    /// let graph = x.map(|x| x * 2).graph();
    /// assert_eq!(graph.count(TaskState::Done), 1); // `x`
    /// assert_eq!(graph.count(TaskState::Waiting), 1);
    /// # }
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
            dependents: Vec::new(),
            state,
            error,
            duration: None,
            limit: None,
        }
    }

    /// The same node, run under `limit`.
    pub(crate) fn limited_by(mut self, limit: Option<&'static Limit>) -> GraphNode {
        self.limit = limit;
        self
    }

    /// The [`Limit`] the node runs under, if it has one: what a
    /// [`Callback`](crate::Callback) reads to watch its permits.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{delayed, Limit};
    ///
    /// static HTTP: Limit = Limit::new("http", 4);
    ///
    /// #[delayed(limit = HTTP)]
    /// async fn get(id: u64) -> u64 { id }
    ///
    /// #[delayed]
    /// fn total(xs: Vec<u64>) -> u64 { xs.iter().sum() }
    ///
    /// let sum = total(vec![get(1), get(2)]).named("sum");
    /// let graph = sum.graph();
    /// assert_eq!(graph.get("sum").unwrap().limit().map(|l| l.name()), None);
    /// let one = graph.get(&graph.get("sum").unwrap().deps()[0].to_string()).unwrap();
    /// assert_eq!(one.limit().map(|l| l.name()), Some("http"));
    /// ```
    pub fn limit(&self) -> Option<&'static Limit> {
        self.limit
    }

    /// The node's key.
    ///
    /// # Examples
    ///
    /// ```
    /// let x = delayed::Delayed::value(1).map(|x: u64| x + 1).named("two");
    /// assert_eq!(x.graph().nodes()[0].key().to_string(), "two");
    /// ```
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The function (or combinator) that made the node, like `"inc"`.
    ///
    /// # Examples
    ///
    /// ```
    /// let x = delayed::Delayed::value(1).map(|x: u64| x + 1);
    /// assert_eq!(x.graph().nodes()[0].name(), "map");
    /// ```
    pub fn name(&self) -> &'static str {
        self.key.name()
    }

    /// The keys of the node's inputs, each once, in argument order. An
    /// input that the crate made (a literal, or the node gathering a `Vec`
    /// or tuple of nodes) is replaced by the calls behind it. Empty for a
    /// node that finished with a value, which has let go of its inputs; a
    /// failed node keeps the inputs that failed.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// #[delayed::delayed]
    /// fn total(xs: Vec<u64>) -> u64 { xs.iter().sum() }
    ///
    /// let a = inc(1).named("a");
    /// let b = inc(2).named("b");
    /// let sum = total(vec![a, b]).named("sum");
    /// let graph = sum.graph();
    /// let deps: Vec<String> = graph.get("sum").unwrap().deps().iter().map(|k| k.to_string()).collect();
    /// assert_eq!(deps, ["a", "b"]);
    /// ```
    pub fn deps(&self) -> &[Key] {
        &self.deps
    }

    /// The keys of the nodes of this snapshot that use this node, in graph
    /// order: the other side of [`deps`](GraphNode::deps), so `b` is among
    /// the dependents of `a` exactly when `a` is among the deps of `b`.
    /// Nodes outside the snapshot (dependents nobody asked for) are not
    /// known.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// #[delayed::delayed]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let a = inc(1).named("a");
    /// let b = inc(&a).named("b");
    /// let c = add(&a, &b).named("c");
    /// let graph = c.graph();
    /// let dependents: Vec<String> =
    ///     graph.get("a").unwrap().dependents().iter().map(|k| k.to_string()).collect();
    /// assert_eq!(dependents, ["b", "c"]);
    /// assert!(graph.get("c").unwrap().dependents().is_empty());
    /// ```
    pub fn dependents(&self) -> &[Key] {
        &self.dependents
    }

    /// Where the node stood when the snapshot was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::TaskState;
    ///
    /// let x = delayed::Delayed::value(1).map(|x: u64| x + 1);
    /// assert_eq!(x.graph().nodes()[0].state(), TaskState::Waiting);
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
    /// let x = delayed::Delayed::value(1).map(|x: u64| x + 1);
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
            TaskState::Cached => "cached",
        })
    }
}
