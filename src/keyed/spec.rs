//! The data model of a keyed graph: keys, tasks and arguments.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

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

/// What a key stands for: a call of a registered function, or a value.
///
/// # Examples
///
/// ```
/// use delayed::keyed::{Call, Task};
///
/// let call: Task = Call::new("load").into();
/// let value = Task::value(vec![1, 2, 3]);
/// assert_ne!(call, value);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// A call of a registered function.
    Call(Call),
    /// A plain value, which other keys may refer to.
    Value(Value),
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

/// One argument of a call: a literal value, a reference to another key, or
/// a list or map that holds references.
///
/// A reference is always explicit (`{"ref": "load-1"}` in JSON), so it is
/// never confused with a string.
///
/// # Examples
///
/// ```
/// use delayed::keyed::Arg;
///
/// let both = Arg::list([Arg::key("clean-1"), Arg::key("clean-2")]);
/// assert_eq!(both.to_json(), r#"[{"ref":"clean-1"},{"ref":"clean-2"}]"#);
/// assert_eq!(Arg::value("load-1").to_json(), r#""load-1""#);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A literal, deserialized into the parameter's type.
    Value(Value),
    /// The output of another key.
    Ref(String),
    /// A list (or tuple) with references in it.
    List(Vec<Arg>),
    /// A map (or struct) with references in it.
    Map(BTreeMap<String, Arg>),
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

impl From<Call> for Task {
    fn from(call: Call) -> Task {
        Task::Call(call)
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
        let items: Vec<Arg> = items.into_iter().collect();
        if items.iter().all(|item| matches!(item, Arg::Value(_))) {
            return Arg::Value(Value::Array(
                items
                    .into_iter()
                    .map(|item| match item {
                        Arg::Value(value) => value,
                        _ => Value::Null,
                    })
                    .collect(),
            ));
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
        let entries: BTreeMap<String, Arg> = entries.into_iter().collect();
        if entries.values().all(|item| matches!(item, Arg::Value(_))) {
            return Arg::Value(Value::Object(
                entries
                    .into_iter()
                    .map(|(key, item)| match item {
                        Arg::Value(value) => (key, value),
                        _ => (key, Value::Null),
                    })
                    .collect(),
            ));
        }
        Arg::Map(entries)
    }

    /// This argument with every reference replaced by its value.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn substitute(self, values: &std::collections::HashMap<String, Value>) -> Arg {
        match self {
            Arg::Ref(key) => match values.get(&key) {
                Some(value) => Arg::Value(value.clone()),
                None => Arg::Ref(key),
            },
            Arg::List(items) => Arg::list(items.into_iter().map(|item| item.substitute(values))),
            Arg::Map(entries) => Arg::map(
                entries
                    .into_iter()
                    .map(|(name, item)| (name, item.substitute(values))),
            ),
            value => value,
        }
    }

    /// Calls `visit` on every key this argument refers to.
    pub(crate) fn refs<'a>(&'a self, visit: &mut impl FnMut(&'a str)) {
        let mut stack = vec![self];
        while let Some(arg) = stack.pop() {
            match arg {
                Arg::Value(_) => {}
                Arg::Ref(key) => visit(key),
                Arg::List(items) => stack.extend(items.iter().rev()),
                Arg::Map(entries) => stack.extend(entries.values().rev()),
            }
        }
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
