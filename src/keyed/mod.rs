//! Graphs as data: dask's keyed form, a function registry, specs in JSON.
//!
//! The seed's first example is a dictionary from keys to tasks:
//!
//! ```text
//! dsk = {'load-1': (load, 'myfile.a.data'),
//!        'clean-1': (clean, 'load-1'),
//!        'analyze': (analyze, ['clean-%d' % i for i in [1, 2, 3]]),
//!        'store': (store, 'analyze')}
//! get(dsk, 'store')
//! ```
//!
//! Here the same graph is a [`KeyedGraph`], built in code or read from JSON,
//! whose tasks call functions marked `#[delayed(register)]` and listed in a
//! [`Registry`]. [`get`] runs it on the same engine as `Delayed`: only the
//! keys it needs, shared keys once, independent keys concurrently, with
//! cancellation on drop and panics contained. Unlike dask, a reference is
//! explicit (`{"ref": "load-1"}`), never a string that happens to match a
//! key, and every mistake (malformed JSON, a missing key, a cycle, an
//! unknown function, a wrong argument count or type, a field a tuple does
//! not have) is an [`Error`] naming the key, found before anything runs;
//! only the type of a field reference is checked when it runs.
//!
//! ```
//! use delayed::keyed::{get, KeyedGraph};
//!
//! #[delayed::delayed(register)]
//! fn load(path: String) -> String { format!("data of {path}") }
//!
//! #[delayed::delayed(register)]
//! fn clean(data: String) -> usize { data.len() }
//!
//! #[delayed::delayed(register)]
//! fn analyze(sizes: Vec<usize>) -> usize { sizes.iter().sum() }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let registry = delayed::registry![load, clean, analyze];
//! let graph = KeyedGraph::from_json(r#"{
//!     "load-1": {"fn": "load", "args": ["a.data"]},
//!     "load-2": {"fn": "load", "args": ["bb.data"]},
//!     "clean-1": {"fn": "clean", "args": [{"ref": "load-1"}]},
//!     "clean-2": {"fn": "clean", "args": [{"ref": "load-2"}]},
//!     "analyze": {"fn": "analyze", "args": [[{"ref": "clean-1"}, {"ref": "clean-2"}]]}
//! }"#).unwrap();
//! assert_eq!(get(&graph, &registry, "analyze").await.unwrap(), 29);
//!
//! let typo = KeyedGraph::from_json(r#"{"x": {"fn": "laod", "args": ["a"]}}"#).unwrap();
//! let err = get(&typo, &registry, "x").await.unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid graph: key `x` calls `laod`, which is not a registered function; did you mean `load`?"
//! );
//! # }
//! ```
//!
//! # The spec, as dask has it
//!
//! Every task form of dask's graphs has a JSON form (and a [`Task`] or
//! [`Arg`] built in code):
//!
//! | dask | JSON | in code |
//! |---|---|---|
//! | `'x': 1` | `"x": {"value": 1}` | [`Task::value`] |
//! | `'y': (inc, 'x')` | `"y": {"fn": "inc", "args": [{"ref": "x"}]}` | [`Call`], [`Arg::key`] |
//! | `'b': 'a'` (an alias) | `"b": {"ref": "a"}` | [`Task::alias`] |
//! | `'e': ['a', 'b']` | `"e": [{"ref": "a"}, {"ref": "b"}]` | [`Task::list`] |
//! | `(inc, (add, 1, 2))` | `{"fn": "inc", "args": [{"fn": "add", "args": [1, 2]}]}` | [`Arg::call`] |
//! | `(getitem, 'pair', 0)` | `{"ref": "pair", "index": 0}` | [`Arg::field`], [`Task::field`] |
//! | `get(dsk, [['x'], 'y'])` | `get_many(&g, &r, &[Keys::from(["x"]), "y".into()])` | [`Keys`] |
//!
//! Aliases and fields are followed when the graph is built: an alias is
//! the node it names (chains too; an alias cycle is a cycle error). A list
//! key makes the list of its items' outputs, and a parameter that takes a
//! list (`Vec`, tuple) can take it. A call written in place runs as a node
//! of its own, keyed `key/function-n`, at any depth:
//!
//! ```
//! use delayed::keyed::{get, get_many, KeyedGraph, Keys};
//!
//! #[delayed::delayed(register)]
//! fn inc(x: u64) -> u64 { x + 1 }
//!
//! #[delayed::delayed(register)]
//! fn add(x: u64, y: u64) -> u64 { x + y }
//!
//! #[delayed::delayed(register)]
//! fn total(xs: Vec<u64>) -> u64 { xs.iter().sum() }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let registry = delayed::registry![inc, add, total];
//! let graph = KeyedGraph::from_json(r#"{
//!     "x": {"value": 1},
//!     "y": {"fn": "inc", "args": [{"ref": "x"}]},
//!     "latest": {"ref": "y"},
//!     "both": [{"ref": "x"}, {"ref": "latest"}, 10],
//!     "sum": {"fn": "total", "args": [{"ref": "both"}]},
//!     "nested": {"fn": "inc", "args": [{"fn": "add", "args": [1, {"ref": "y"}]}]}
//! }"#).unwrap();
//! assert_eq!(get(&graph, &registry, "latest").await.unwrap(), 2);
//! assert_eq!(get(&graph, &registry, "both").await.unwrap(), serde_json::json!([1, 2, 10]));
//! assert_eq!(get(&graph, &registry, "sum").await.unwrap(), 13);
//! assert_eq!(get(&graph, &registry, "nested").await.unwrap(), 4);
//!
//! // dask's get(dsk, [['x'], 'y']) is ((1,), 2):
//! let out = get_many(&graph, &registry, &[Keys::from(["x"]), Keys::from("y")]).await.unwrap();
//! assert_eq!(out, [serde_json::json!([1]), serde_json::json!(2)]);
//! # }
//! ```
//!
//! A function returning a tuple is split by [`Delayed::unzip`] (dask's
//! `nout`); such a graph exports to field references and runs again from
//! its JSON:
//!
//! ```
//! use delayed::keyed::{get, KeyedGraph};
//!
//! #[delayed::delayed(register)]
//! fn split(n: u64) -> (u64, String) { (n, format!("n{n}")) }
//!
//! #[delayed::delayed(register)]
//! fn describe(n: u64, s: String) -> String { format!("{s}={n}") }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let registry = delayed::registry![split, describe];
//! let (n, s) = split(3).named("pair").unzip();
//! let root = describe(n, s).named("root");
//! let graph = KeyedGraph::from_delayed(&root, &registry).unwrap();
//! assert_eq!(
//!     graph.to_json(),
//!     r#"{"pair":{"fn":"split","args":[3]},"root":{"fn":"describe","args":[{"ref":"pair","index":0},{"ref":"pair","index":1}]}}"#
//! );
//! let again = KeyedGraph::from_json(&graph.to_json()).unwrap();
//! assert_eq!(get(&again, &registry, "root").await.unwrap(), "n3=3");
//! # }
//! ```
//!
//! # Options
//!
//! [`get_with`] runs a get as one compute with [`Options`]: callbacks, a
//! progress bar, the sequential scheduler. Its callbacks hear `start` and
//! `finish` once per get, even for a value key, where nothing runs.
//!
//! # Limits
//!
//! Nothing recurses over keys or over nesting: checking, building,
//! writing, cloning, comparing and dropping a graph all use explicit
//! stacks, so chains of a million keys and arguments nested 100,000 deep
//! (built in code) cost heap, not stack. A literal nested deeper than
//! JSON allows (128 levels) is an error when the graph is checked, and a
//! cycle error names at most 32 keys, then how many more.
//!
//! [`Error`]: crate::Error
//! [`Options`]: crate::Options
//! [`Delayed::unzip`]: crate::Delayed::unzip

mod build;
mod deep;
mod export;
mod get;
mod json;
mod keys;
mod plan;
mod probe;
mod registry;
mod shape;
mod spec;
mod write;

pub use self::get::{get, get_many, get_with};
pub use self::keys::Keys;
pub use self::registry::{Entry, Registry};
pub use self::spec::{Arg, Call, KeyedGraph, Policy, Task};

#[cfg(feature = "nats")]
pub(crate) use self::cluster_support::*;

/// What the cluster needs from keyed graphs: arguments in and out of JSON,
/// and exports that inline values.
#[cfg(feature = "nats")]
mod cluster_support {
    use super::build::Scope;
    use super::export::Exporter;
    use super::registry::{Entry, Registry};
    use super::shape::Node;
    use super::spec::Arg;
    use crate::engine::view::NodeView;

    /// An argument from its JSON form.
    pub(crate) fn arg_from_json(value: serde_json::Value) -> Arg {
        super::json::arg_lenient(value)
    }

    /// An argument in its JSON form.
    pub(crate) fn arg_to_json(arg: &Arg) -> serde_json::Value {
        serde_json::from_str(&arg.to_json()).unwrap_or(serde_json::Value::Null)
    }

    /// A scope whose keys are finished nodes: `(key, node, its function)`.
    pub(crate) fn scope_of<'a>(nodes: &'a [(String, NodeView, &'a Entry)]) -> Scope<'a> {
        Scope::of_nodes(nodes)
    }

    /// An exporter that writes every finished input as a value.
    pub(crate) fn inline_exporter(registry: &Registry) -> Exporter<'_> {
        Exporter::inline(registry)
    }

    /// An exporter that refers to registered inputs without following them.
    pub(crate) fn shallow_exporter(registry: &Registry) -> Exporter<'_> {
        Exporter::shallow(registry)
    }

    pub(crate) fn node_of(task: NodeView) -> Node {
        Node(task)
    }
}

/// What `#[delayed(register)]` expands to. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use super::build::Scope;
    pub use super::export::Exporter;
    pub use super::registry::Args;
    pub use super::shape::{
        leaf, map, option, param, tuple2, tuple3, tuple4, vec, Leaf, MapOf, Node, OptionOf, Param,
        Shape, Tuple2, Tuple3, Tuple4, VecOf,
    };
}
