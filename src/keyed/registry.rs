//! The function registry: the functions a keyed graph may call, by name.

use std::any::type_name;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::probe::{self, Fields};
use super::shape::{Node, Param};
use crate::builder::Builder;
use crate::engine::deps::{Deps, Ref};
use crate::engine::view::NodeView;
use crate::{Delayed, Error, Limit, Options};

/// The functions (and limits) a keyed graph may use, by name.
///
/// Mark each function `#[delayed(register)]`, which also makes the
/// compiler check that its parameters and result are serde types, and
/// list them with [`registry!`](crate::registry), which rejects a name
/// given twice.
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
/// assert_eq!(registry.names().collect::<Vec<_>>(), ["inc"]);
///
/// let graph = KeyedGraph::from_json(r#"{
///     "a": {"fn": "inc", "args": [1]},
///     "b": {"fn": "inc", "args": [{"ref": "a"}]}
/// }"#).unwrap();
/// assert_eq!(get(&graph, &registry, "b").await.unwrap(), 3);
/// # }
/// ```
#[derive(Default)]
pub struct Registry {
    functions: BTreeMap<&'static str, Entry>,
    limits: BTreeMap<&'static str, &'static Limit>,
}

/// A registered function: its name, parameters, and how to call it with
/// input nodes. Made by `#[delayed(register)]`; not built by hand.
pub struct Entry {
    name: &'static str,
    pub(crate) params: Vec<(&'static str, Box<dyn Param>)>,
    output: &'static str,
    call: Make,
    /// Computes a node of this function with options, as JSON.
    pub(crate) get_with: fn(NodeView, Options) -> Output,
    pub(crate) to_value: fn(&NodeView) -> Option<Result<Value, String>>,
    /// The tuple fields of the output, for field references.
    pub(crate) fields: Fields,
    /// Adds a node of this function as an input of `builder`; returns its
    /// index among the inputs, for `json`.
    pub(crate) input: fn(&mut Builder, NodeView) -> usize,
    /// The output of input `index` (added by `input`) as JSON.
    pub(crate) json: fn(&Deps, usize) -> Result<Value, String>,
    /// Computes a node of this function, its output in postcard bytes.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) get_bytes: fn(NodeView) -> BytesOutput,
    /// Reads a result back from postcard bytes, boxed as the output type.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) decode_bytes: fn(&[u8]) -> Result<AnyOutput, String>,
    /// A finished node holding the output read from postcard bytes.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) value_node: fn(&[u8]) -> Result<NodeView, String>,
}

/// An output with its type erased.
pub(crate) type AnyOutput = Box<dyn std::any::Any + Send>;

/// A computed output, in postcard bytes.
pub(crate) type BytesOutput = Pin<Box<dyn Future<Output = Result<Vec<u8>, Error>> + Send>>;

/// A computed output, as JSON.
pub(crate) type Output = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send>>;

/// How an entry makes its node from the input nodes.
type Make = Box<dyn Fn(&mut Args) -> NodeView + Send + Sync>;

/// The input nodes of a call, one per parameter. Not a stable API.
#[doc(hidden)]
pub struct Args {
    nodes: std::vec::IntoIter<NodeView>,
}

impl Registry {
    /// An empty registry.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::keyed::Registry::new().names().count(), 0);
    /// ```
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a function's entry, replacing one of the same name; returns the
    /// old one. [`registry!`](crate::registry) calls this.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed(register)]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// let mut registry = delayed::keyed::Registry::new();
    /// assert!(registry.insert(__delayed_entry_inc()).is_none());
    /// ```
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        self.functions.insert(entry.name, entry)
    }

    /// Registers a limit, so that keys can name it (`"limit": "http"`).
    ///
    /// # Examples
    ///
    /// ```
    /// static HTTP: delayed::Limit = delayed::Limit::new("http", 16);
    ///
    /// let mut registry = delayed::keyed::Registry::new();
    /// registry.limit(&HTTP);
    /// ```
    pub fn limit(&mut self, limit: &'static Limit) -> &mut Registry {
        self.limits.insert(limit.name(), limit);
        self
    }

    /// The registered function names, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::keyed::Registry::new().names().count(), 0);
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.functions.keys().copied()
    }

    /// The function registered as `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed(register)]
    /// fn load(path: String) -> String { path }
    ///
    /// let registry = delayed::registry![load];
    /// let entry = registry.function("load").unwrap();
    /// assert_eq!(entry.params().collect::<Vec<_>>(), ["path"]);
    /// ```
    pub fn function(&self, name: &str) -> Option<&Entry> {
        self.functions.get(name)
    }

    pub(crate) fn limit_named(&self, name: &str) -> Option<&'static Limit> {
        self.limits.get(name).copied()
    }

    /// The registered name closest to `name`, for "did you mean".
    pub(crate) fn closest(&self, name: &str) -> Option<&'static str> {
        self.names()
            .map(|known| (distance(known, name), known))
            .filter(|(d, known)| *d <= known.len().max(name.len()) / 3 + 1)
            .min()
            .map(|(_, known)| known)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("limits", &self.limits.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Entry {
    /// Describes a function for the registry. `#[delayed(register)]` calls
    /// this; not a stable API.
    #[doc(hidden)]
    pub fn new<R, F>(
        name: &'static str,
        params: Vec<(&'static str, Box<dyn Param>)>,
        call: F,
    ) -> Entry
    where
        R: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(&mut Args) -> Delayed<R> + Send + Sync + 'static,
    {
        Entry {
            name,
            params,
            output: type_name::<R>(),
            call: Box::new(move |args| call(args).view()),
            get_with: |task, options| {
                Box::pin(async move {
                    let key = task.key();
                    let value = Delayed::<R>::from_view(task).compute_with(options).await?;
                    serde_json::to_value(value).map_err(|err| Error::failed(key, Arc::new(err)))
                })
            },
            fields: probe::fields::<R>(),
            input: |builder, task| builder.borrow::<R>(Delayed::<R>::from_view(task)).index(),
            json: |deps, index| {
                serde_json::to_value(deps.get(&Ref::<R>::at(index))).map_err(|err| err.to_string())
            },
            to_value: |task| {
                let value = task.output::<R>()?;
                Some(serde_json::to_value(value).map_err(|err| err.to_string()))
            },
            get_bytes: |task| {
                Box::pin(async move {
                    let key = task.key();
                    let value = Delayed::<R>::from_view(task).compute().await?;
                    postcard::to_stdvec(&value).map_err(|err| Error::failed(key, Arc::new(err)))
                })
            },
            decode_bytes: |bytes| {
                postcard::from_bytes::<R>(bytes)
                    .map(|output| Box::new(output) as AnyOutput)
                    .map_err(|err| err.to_string())
            },
            value_node: |bytes| {
                postcard::from_bytes::<R>(bytes)
                    .map(|output| Delayed::value(output).view())
                    .map_err(|err| err.to_string())
            },
        }
    }

    /// The function's name.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed(register)]
    /// fn load(path: String) -> String { path }
    ///
    /// assert_eq!(__delayed_entry_load().name(), "load");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The parameter names, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed(register)]
    /// fn add(x: u64, y: u64) -> u64 { x + y }
    ///
    /// assert_eq!(__delayed_entry_add().params().collect::<Vec<_>>(), ["x", "y"]);
    /// ```
    pub fn params(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.params.iter().map(|(name, _)| *name)
    }

    /// The Rust type of the function's result.
    ///
    /// # Examples
    ///
    /// ```
    /// #[delayed::delayed(register)]
    /// fn add(x: u64, y: u64) -> u64 { x + y }
    ///
    /// assert_eq!(__delayed_entry_add().output(), "u64");
    /// ```
    pub fn output(&self) -> &'static str {
        self.output
    }

    /// Calls the function with one input node per parameter.
    pub(crate) fn call(&self, nodes: Vec<Node>) -> NodeView {
        let mut args = Args {
            nodes: nodes
                .into_iter()
                .map(|node| node.0)
                .collect::<Vec<_>>()
                .into_iter(),
        };
        (self.call)(&mut args)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("params", &self.params().collect::<Vec<_>>())
            .field("output", &self.output)
            .finish()
    }
}

impl Args {
    /// The next parameter's input node, built by its shape, so of type `T`.
    #[doc(hidden)]
    pub fn take<T: Send + Sync + 'static>(&mut self) -> Delayed<T> {
        match self.nodes.next() {
            Some(node) => Delayed::from_view(node),
            None => panic!("delayed: a registered call has fewer inputs than parameters"),
        }
    }
}

/// Edit distance between two names, for suggestions, counting a swap of
/// two neighbouring letters (`laod` for `load`) as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0_usize; (a.len() + 1) * width];
    for (i, row) in d.chunks_mut(width).enumerate() {
        row[0] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}
