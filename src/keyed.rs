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
