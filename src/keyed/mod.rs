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
//! unknown function, a wrong argument count or type) is an [`Error`] naming
//! the key, found before anything runs.
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
//! [`Error`]: crate::Error

mod build;
mod export;
mod json;
mod registry;
mod shape;
mod spec;

pub use self::build::{get, get_many};
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
    use super::registry::Registry;
    use super::shape::Node;
    use super::spec::Arg;
    use crate::engine::view::NodeView;

    /// An argument from its JSON form.
    pub(crate) fn arg_from_json(value: serde_json::Value) -> Arg {
        super::json::arg(value)
    }

    /// An argument in its JSON form.
    pub(crate) fn arg_to_json(arg: &Arg) -> serde_json::Value {
        serde_json::from_str(&arg.to_json()).unwrap_or(serde_json::Value::Null)
    }

    /// A scope with no keys, for arguments without references.
    pub(crate) fn empty_scope() -> Scope<'static> {
        Scope::empty()
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
