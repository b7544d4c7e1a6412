//! The data model of a keyed graph: keys, tasks and arguments.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::deep;
use crate::Retry;

/// A task graph as data: a map from keys to tasks, like a dask graph
/// (`{'load-1': (load, 'a.data'), 'clean-1': (clean, 'load-1'), ...}`).
///
/// Build it in code or [parse it from JSON](KeyedGraph::from_json), run it
/// with [`get`](crate::keyed::get), or make it from a `Delayed` graph with
/// [`KeyedGraph::from_delayed`]. Keys are kept in sorted order, so the
/// same graph always prints the same JSON.
///
/// # Examples
///
/// ```
/// use delayed::keyed::{Arg, Call, KeyedGraph};
///
/// let mut graph = KeyedGraph::new();
/// graph.insert("x", Call::new("inc").arg(Arg::value(1)));
/// graph.insert("y", Call::new("inc").arg(Arg::key("x")));
/// assert_eq!(graph.len(), 2);
/// assert_eq!(
///     graph.to_json(),
///     r#"{"x":{"fn":"inc","args":[1]},"y":{"fn":"inc","args":[{"ref":"x"}]}}"#
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyedGraph {
    pub(crate) tasks: BTreeMap<String, Task>,
    /// Policies by function name, applied to every call of it.
    pub(crate) functions: BTreeMap<String, Policy>,
}

/// What a key stands for: a call of a registered function, a value,
/// another key's output (or one field of it), or a list.
///
/// These are dask's task forms: `(inc, 1)`, `1`, `'a'` (an alias) and
/// `['a', 'b']`; with `(getitem, 'pair', 0)` for a field.
///
/// # Examples
///
/// ```
/// use delayed::keyed::{Arg, Call, Task};
///
/// let call: Task = Call::new("load").into();
/// let value = Task::value(vec![1, 2, 3]);
/// let alias = Task::alias("load-1");
/// let both = Task::list([Arg::key("a"), Arg::key("b")]);
/// assert_ne!(call, value);
/// assert_eq!(alias, Task::Alias("load-1".to_string()));
/// assert!(matches!(both, Task::List(_)));
/// // A list of literals is one value.
/// assert_eq!(Task::list([Arg::value(1), Arg::value(2)]), Task::value([1, 2]));
/// ```
#[derive(Debug)]
pub enum Task {
    /// A call of a registered function.
    Call(Call),
    /// A plain value, which other keys may refer to.
    Value(Value),
    /// Another name for the output of a key: `{"ref": "a"}` in JSON.
    Alias(String),
    /// One field of a key's output: the field at this index of the tuple a
    /// key makes, or the item at this index of a value key's list.
    /// `{"ref": "pair", "index": 0}` in JSON, dask's `(getitem, 'pair', 0)`;
    /// what [`Delayed::unzip`](crate::Delayed::unzip) nodes become.
    Field(String, usize),
    /// A list of arguments (references, literals, calls, lists), whose
    /// output is the list of their outputs: `[{"ref": "a"}, {"ref": "b"}]`
    /// in JSON.
    List(Vec<Arg>),
}

/// A call of a registered function, with its arguments and policies.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use delayed::keyed::{Arg, Call};
/// use delayed::Retry;
///
/// let call = Call::new("fetch")
///     .arg(Arg::value("https://example.com"))
///     .retry(Retry::attempts(3))
///     .timeout(Duration::from_secs(10));
/// assert_eq!(call.function(), "fetch");
/// assert_eq!(call.args().len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub(crate) function: String,
    pub(crate) args: Vec<Arg>,
    pub(crate) policy: Policy,
}

/// One argument of a call: a literal value, a reference to another key
/// (or to one field of its output), a call written in place, or a list or
/// map that holds any of these.
///
/// A reference is always explicit (`{"ref": "load-1"}` in JSON), so it is
/// never confused with a string. Every walk over an argument (checking,
/// building, writing, cloning, comparing, dropping) uses an explicit stack,
/// so deep nesting built in code costs heap, not stack; a graph checks
/// that its nesting stays within JSON's 128 levels.
///
/// # Examples
///
/// ```
/// use delayed::keyed::{Arg, Call};
///
/// let both = Arg::list([Arg::key("clean-1"), Arg::key("clean-2")]);
/// assert_eq!(both.to_json(), r#"[{"ref":"clean-1"},{"ref":"clean-2"}]"#);
/// assert_eq!(Arg::value("load-1").to_json(), r#""load-1""#);
/// assert_eq!(Arg::field("pair", 1).to_json(), r#"{"ref":"pair","index":1}"#);
/// let inline = Arg::call(Call::new("add").arg(Arg::value(1)).arg(Arg::value(2)));
/// assert_eq!(inline.to_json(), r#"{"fn":"add","args":[1,2]}"#);
/// ```
#[derive(Debug)]
pub enum Arg {
    /// A literal, deserialized into the parameter's type.
    Value(Value),
    /// The output of another key.
    Ref(String),
    /// One field of another key's output: see [`Task::Field`].
    Field(String, usize),
    /// A list (or tuple) with references in it.
    List(Vec<Arg>),
    /// A map (or struct) with references in it.
    Map(BTreeMap<String, Arg>),
    /// A call written in place, whose output is the argument; like a key
    /// of its own that only this argument uses.
    Call(Call),
}

/// Limits, retries, timeout and priority for a key or a function name.
///
/// A key's own policy wins over its function's, field by field, and both
/// win over what `#[delayed(...)]` set. The limit is named: register the
/// [`Limit`](crate::Limit) with [`Registry::limit`](crate::keyed::Registry::limit).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use delayed::keyed::Policy;
/// use delayed::Retry;
///
/// let policy = Policy::new()
///     .limit("http")
///     .retry(Retry::attempts(3).fixed(Duration::from_secs(1)))
///     .timeout(Duration::from_secs(30))
///     .priority(5);
/// assert!(!policy.is_empty());
/// assert!(Policy::new().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Policy {
    /// The name of a registered [`Limit`](crate::Limit).
    pub limit: Option<String>,
    /// The retry policy.
    pub retry: Option<Retry>,
    /// The timeout of each attempt.
    pub timeout: Option<Duration>,
    /// The priority (default 0).
    pub priority: Option<i32>,
}

impl KeyedGraph {
    /// An empty graph.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::keyed::KeyedGraph::new().is_empty());
    /// ```
    pub fn new() -> KeyedGraph {
        KeyedGraph::default()
    }

    /// Sets the task of `key`, replacing any it had; returns the old one.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Call, KeyedGraph, Task};
    ///
    /// let mut graph = KeyedGraph::new();
    /// assert!(graph.insert("n", Task::value(3)).is_none());
    /// assert!(graph.insert("n", Call::new("load")).is_some());
    /// ```
    pub fn insert(&mut self, key: impl Into<String>, task: impl Into<Task>) -> Option<Task> {
        self.tasks.insert(key.into(), task.into())
    }

    /// The task of `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{KeyedGraph, Task};
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("n", Task::value(3));
    /// assert_eq!(graph.get("n"), Some(&Task::value(3)));
    /// ```
    pub fn get(&self, key: &str) -> Option<&Task> {
        self.tasks.get(key)
    }

    /// The task of `key`, to change it (for example its policy).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Call, KeyedGraph, Task};
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("load-1", Call::new("load"));
    /// if let Some(Task::Call(call)) = graph.get_mut("load-1") {
    ///     call.policy_mut().priority = Some(3);
    /// }
    /// ```
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Task> {
        self.tasks.get_mut(key)
    }

    /// Removes `key`, returning its task.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{KeyedGraph, Task};
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("n", Task::value(3));
    /// assert!(graph.remove("n").is_some());
    /// assert!(graph.is_empty());
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<Task> {
        self.tasks.remove(key)
    }

    /// The keys and their tasks, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{KeyedGraph, Task};
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("b", Task::value(2));
    /// graph.insert("a", Task::value(1));
    /// let keys: Vec<_> = graph.iter().map(|(key, _)| key).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Task)> {
        self.tasks.iter().map(|(key, task)| (key.as_str(), task))
    }

    /// How many keys the graph has.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::keyed::KeyedGraph::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the graph has no keys.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::keyed::KeyedGraph::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Sets the policy of every call of `function` in this graph. A key's
    /// own policy wins over it, field by field.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{KeyedGraph, Policy};
    /// use delayed::Retry;
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.function_policy("load", Policy::new().retry(Retry::attempts(3)).limit("disk"));
    /// ```
    pub fn function_policy(&mut self, function: impl Into<String>, policy: Policy) {
        self.functions.insert(function.into(), policy);
    }
}

impl Task {
    /// A value task from anything serializable.
    ///
    /// # Panics
    ///
    /// If `value` fails to serialize (a map with non-string keys, or a
    /// `Serialize` impl that fails); plain data never does.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::Task;
    ///
    /// assert_eq!(Task::value("a.data"), Task::Value(serde_json::json!("a.data")));
    /// ```
    pub fn value(value: impl Serialize) -> Task {
        Task::Value(to_value(value))
    }
}

impl Task {
    /// Another name for `key`'s output (dask's alias `'b': 'a'`).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Call, KeyedGraph, Task};
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("a", Call::new("load"));
    /// graph.insert("latest", Task::alias("a"));
    /// assert_eq!(graph.to_json(), r#"{"a":{"fn":"load","args":[]},"latest":{"ref":"a"}}"#);
    /// ```
    pub fn alias(key: impl Into<String>) -> Task {
        Task::Alias(key.into())
    }

    /// Field `index` of `key`'s output (dask's `(getitem, key, index)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::Task;
    ///
    /// assert_eq!(Task::field("split", 1), Task::Field("split".to_string(), 1));
    /// ```
    pub fn field(key: impl Into<String>, index: usize) -> Task {
        Task::Field(key.into(), index)
    }

    /// A list of arguments, whose output is the list of their outputs; a
    /// list of literals is one [`Task::Value`].
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Arg, Task};
    ///
    /// let both = Task::list([Arg::key("a"), Arg::value(2)]);
    /// assert!(matches!(both, Task::List(ref items) if items.len() == 2));
    /// ```
    pub fn list(items: impl IntoIterator<Item = Arg>) -> Task {
        match &mut Arg::list(items) {
            Arg::List(items) => Task::List(std::mem::take(items)),
            Arg::Value(value) => Task::Value(std::mem::take(value)),
            _ => Task::List(Vec::new()),
        }
    }
}

impl From<Call> for Task {
    fn from(call: Call) -> Task {
        Task::Call(call)
    }
}

impl Clone for Task {
    fn clone(&self) -> Task {
        match self {
            Task::Call(call) => Task::Call(call.clone()),
            Task::Value(value) => Task::Value(deep::clone_value(value)),
            Task::Alias(key) => Task::Alias(key.clone()),
            Task::Field(key, index) => Task::Field(key.clone(), *index),
            Task::List(items) => Task::List(items.clone()),
        }
    }
}

impl PartialEq for Task {
    fn eq(&self, other: &Task) -> bool {
        match (self, other) {
            (Task::Call(a), Task::Call(b)) => a == b,
            (Task::Value(a), Task::Value(b)) => deep::eq_values(a, b),
            (Task::Alias(a), Task::Alias(b)) => a == b,
            (Task::Field(a, i), Task::Field(b, j)) => a == b && i == j,
            (Task::List(a), Task::List(b)) => a == b,
            _ => false,
        }
    }
}

impl Drop for Task {
    /// Drops a deep value without recursing (arguments do so themselves).
    fn drop(&mut self) {
        if let Task::Value(value) = self {
            deep::drop_value(value);
        }
    }
}

impl Call {
    /// A call of the registered function `function`, with no arguments yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let call = delayed::keyed::Call::new("store");
    /// assert!(call.args().is_empty());
    /// ```
    pub fn new(function: impl Into<String>) -> Call {
        Call {
            function: function.into(),
            args: Vec::new(),
            policy: Policy::default(),
        }
    }

    /// Adds the next argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Arg, Call};
    ///
    /// let call = Call::new("add").arg(Arg::key("x")).arg(Arg::value(2));
    /// assert_eq!(call.args(), [Arg::key("x"), Arg::value(2)]);
    /// ```
    pub fn arg(mut self, arg: Arg) -> Call {
        self.args.push(arg);
        self
    }

    /// The function's name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::keyed::Call::new("load").function(), "load");
    /// ```
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The arguments, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Arg, Call};
    ///
    /// assert_eq!(Call::new("f").arg(Arg::value(1)).args().len(), 1);
    /// ```
    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// This key's policy.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::keyed::Call::new("f").policy().is_empty());
    /// ```
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// This key's policy, to change it.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut call = delayed::keyed::Call::new("f");
    /// call.policy_mut().priority = Some(1);
    /// assert_eq!(call.policy().priority, Some(1));
    /// ```
    pub fn policy_mut(&mut self) -> &mut Policy {
        &mut self.policy
    }

    /// Runs this key under the registered limit named `limit`.
    ///
    /// # Examples
    ///
    /// ```
    /// let call = delayed::keyed::Call::new("fetch").limit("http");
    /// assert_eq!(call.policy().limit.as_deref(), Some("http"));
    /// ```
    pub fn limit(mut self, limit: impl Into<String>) -> Call {
        self.policy.limit = Some(limit.into());
        self
    }

    /// Retries this key as `retry` says.
    ///
    /// # Examples
    ///
    /// ```
    /// let call = delayed::keyed::Call::new("fetch").retry(delayed::Retry::attempts(2));
    /// assert!(call.policy().retry.is_some());
    /// ```
    pub fn retry(mut self, retry: Retry) -> Call {
        self.policy.retry = Some(retry);
        self
    }

    /// Stops an attempt of this key after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let call = delayed::keyed::Call::new("fetch").timeout(Duration::from_secs(1));
    /// assert_eq!(call.policy().timeout, Some(Duration::from_secs(1)));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Call {
        self.policy.timeout = Some(timeout);
        self
    }

    /// Sets this key's priority.
    ///
    /// # Examples
    ///
    /// ```
    /// let call = delayed::keyed::Call::new("fetch").priority(9);
    /// assert_eq!(call.policy().priority, Some(9));
    /// ```
    pub fn priority(mut self, priority: i32) -> Call {
        self.policy.priority = Some(priority);
        self
    }
}

impl Arg {
    /// A literal argument from anything serializable.
    ///
    /// # Panics
    ///
    /// If `value` fails to serialize (a map with non-string keys, or a
    /// `Serialize` impl that fails); plain data never does.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::Arg;
    ///
    /// assert_eq!(Arg::value((1, "a")).to_json(), r#"[1,"a"]"#);
    /// ```
    pub fn value(value: impl Serialize) -> Arg {
        Arg::Value(to_value(value))
    }

    /// A reference to the output of `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::keyed::Arg::key("load-1").to_json(), r#"{"ref":"load-1"}"#);
    /// ```
    pub fn key(key: impl Into<String>) -> Arg {
        Arg::Ref(key.into())
    }

    /// A reference to field `index` of `key`'s output: see [`Task::Field`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::keyed::Arg::field("pair", 0).to_json(), r#"{"ref":"pair","index":0}"#);
    /// ```
    pub fn field(key: impl Into<String>, index: usize) -> Arg {
        Arg::Field(key.into(), index)
    }

    /// A call written in place: its output is the argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Arg, Call};
    ///
    /// let sum = Arg::call(Call::new("add").arg(Arg::value(1)).arg(Arg::value(2)));
    /// let call = Call::new("inc").arg(sum);
    /// assert_eq!(call.args().len(), 1);
    /// ```
    pub fn call(call: Call) -> Arg {
        Arg::Call(call)
    }

    /// A list (or tuple) of arguments; a list of literals is one literal.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::Arg;
    ///
    /// assert_eq!(Arg::list([Arg::value(1), Arg::value(2)]), Arg::value([1, 2]));
    /// ```
    pub fn list(items: impl IntoIterator<Item = Arg>) -> Arg {
        let mut items: Vec<Arg> = items.into_iter().collect();
        if items.iter().all(|item| matches!(item, Arg::Value(_))) {
            return Arg::Value(Value::Array(items.iter_mut().map(take_value).collect()));
        }
        Arg::List(items)
    }

    /// A map (or struct) of arguments; a map of literals is one literal.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::Arg;
    ///
    /// let map = Arg::map([("a".to_string(), Arg::key("x"))]);
    /// assert_eq!(map.to_json(), r#"{"a":{"ref":"x"}}"#);
    /// ```
    pub fn map(entries: impl IntoIterator<Item = (String, Arg)>) -> Arg {
        let mut entries: BTreeMap<String, Arg> = entries.into_iter().collect();
        if entries.values().all(|item| matches!(item, Arg::Value(_))) {
            return Arg::Value(Value::Object(
                entries
                    .iter_mut()
                    .map(|(key, item)| (key.clone(), take_value(item)))
                    .collect(),
            ));
        }
        Arg::Map(entries)
    }

    /// Calls `visit` on every key this argument refers to, in calls written
    /// in place too.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn refs<'a>(&'a self, visit: &mut impl FnMut(&'a str)) {
        let mut stack = vec![self];
        while let Some(arg) = stack.pop() {
            match arg {
                Arg::Value(_) => {}
                Arg::Ref(key) | Arg::Field(key, _) => visit(key),
                Arg::List(items) => stack.extend(items.iter().rev()),
                Arg::Map(entries) => stack.extend(entries.values().rev()),
                Arg::Call(call) => stack.extend(call.args.iter().rev()),
            }
        }
    }
}

impl From<Call> for Arg {
    fn from(call: Call) -> Arg {
        Arg::Call(call)
    }
}

/// The literal of a value argument, leaving `null` behind.
fn take_value(arg: &mut Arg) -> Value {
    match arg {
        Arg::Value(value) => std::mem::take(value),
        _ => Value::Null,
    }
}

impl Policy {
    /// No policy: what the function's attribute says.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::keyed::Policy::new().is_empty());
    /// ```
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Runs under the registered limit named `limit`.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = delayed::keyed::Policy::new().limit("http");
    /// assert!(!policy.is_empty());
    /// ```
    pub fn limit(mut self, limit: impl Into<String>) -> Policy {
        self.limit = Some(limit.into());
        self
    }

    /// Retries as `retry` says.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = delayed::keyed::Policy::new().retry(delayed::Retry::attempts(2));
    /// assert!(!policy.is_empty());
    /// ```
    pub fn retry(mut self, retry: Retry) -> Policy {
        self.retry = Some(retry);
        self
    }

    /// Stops an attempt after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = delayed::keyed::Policy::new().timeout(std::time::Duration::from_secs(1));
    /// assert!(!policy.is_empty());
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Policy {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the priority.
    ///
    /// # Examples
    ///
    /// ```
    /// let policy = delayed::keyed::Policy::new().priority(-1);
    /// assert!(!policy.is_empty());
    /// ```
    pub fn priority(mut self, priority: i32) -> Policy {
        self.priority = Some(priority);
        self
    }

    /// Whether nothing is set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::keyed::Policy::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self == &Policy::default()
    }

    /// `self`, with the fields it leaves unset taken from `fallback`.
    pub(crate) fn or(&self, fallback: Option<&Policy>) -> Policy {
        let Some(fallback) = fallback else {
            return self.clone();
        };
        Policy {
            limit: self.limit.clone().or_else(|| fallback.limit.clone()),
            retry: self.retry.clone().or_else(|| fallback.retry.clone()),
            timeout: self.timeout.or(fallback.timeout),
            priority: self.priority.or(fallback.priority),
        }
    }
}

fn to_value(value: impl Serialize) -> Value {
    match serde_json::to_value(value) {
        Ok(value) => value,
        Err(err) => panic!("delayed::keyed: a value could not be serialized: {err}"),
    }
}
