//! Keyed graphs in JSON: reading with errors that name the key, writing in
//! a stable order.

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::spec::{Arg, Call, KeyedGraph, Policy, Task};
use crate::key::{Key, KeyId};
use crate::{Error, Retry};

/// The fields a call may have.
const CALL_FIELDS: &str = "`fn`, `args`, `limit`, `retry`, `timeout_ms`, `priority`";
/// The fields a retry policy may have.
const RETRY_FIELDS: &str =
    "`attempts`, `fixed_ms`, `exponential_ms`, `max_delay_ms`, `jitter`, `seed`, `panics`";

impl KeyedGraph {
    /// Reads a graph from JSON: an object from keys to tasks.
    ///
    /// A task is a call, `{"fn": "clean", "args": [{"ref": "load-1"}]}`,
    /// or a value, `{"value": 3}`. In arguments, `{"ref": "key"}` refers to
    /// another key's output, `{"value": ...}` is a literal taken as is, and
    /// any other JSON is a literal, with references allowed inside lists
    /// and objects (`{"map": {...}}` escapes an object whose one field is
    /// `ref`, `value` or `map`). A call may also set `limit` (a registered
    /// limit's name), `retry` (`{"attempts": 3, "exponential_ms": 100}`),
    /// `timeout_ms` and `priority`. Durations are milliseconds, or strings
    /// with a unit (`"250us"`) for exact values.
    ///
    /// # Errors
    ///
    /// An [`Error`] for which [`is_invalid`](Error::is_invalid) holds:
    /// malformed JSON (with line and column), a repeated key, or a task
    /// that is not of the form above (naming its key). Whether functions
    /// and references exist is checked when the graph runs, before
    /// anything starts, or by [`validate`](KeyedGraph::validate).
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::KeyedGraph;
    ///
    /// let graph = KeyedGraph::from_json(r#"{
    ///     "load-1": {"fn": "load", "args": ["a.data"]},
    ///     "clean-1": {"fn": "clean", "args": [{"ref": "load-1"}]}
    /// }"#).unwrap();
    /// assert_eq!(graph.len(), 2);
    ///
    /// let err = KeyedGraph::from_json(r#"{"load-1": {"fn": "load", "args": ["a.data"]"#).unwrap_err();
    /// assert!(err.to_string().contains("line 1"), "{err}");
    /// ```
    pub fn from_json(json: &str) -> Result<KeyedGraph, Error> {
        let Keys(keys) = serde_json::from_str(json)
            .map_err(|err| Error::invalid(json_key(), format!("malformed JSON: {err}")))?;
        let mut graph = KeyedGraph::new();
        for (key, value) in keys {
            let task = task(&key, value)?;
            graph.tasks.insert(key, task);
        }
        Ok(graph)
    }

    /// Writes the graph as compact JSON, keys in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Arg, Call, KeyedGraph};
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("n", Call::new("load").arg(Arg::value("a.data")));
    /// let json = graph.to_json();
    /// assert_eq!(json, r#"{"n":{"fn":"load","args":["a.data"]}}"#);
    /// assert_eq!(KeyedGraph::from_json(&json).unwrap(), graph);
    /// ```
    pub fn to_json(&self) -> String {
        self.write(false)
    }

    /// Writes the graph as JSON with one key per line, for files people
    /// read.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Arg, Call, KeyedGraph};
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("a", Call::new("load").arg(Arg::value("a.data")));
    /// graph.insert("b", Call::new("clean").arg(Arg::key("a")));
    /// assert_eq!(
    ///     graph.to_json_pretty(),
    ///     "{\n  \"a\": {\"fn\": \"load\", \"args\": [\"a.data\"]},\n  \"b\": {\"fn\": \"clean\", \"args\": [{\"ref\": \"a\"}]}\n}\n"
    /// );
    /// ```
    pub fn to_json_pretty(&self) -> String {
        self.write(true)
    }

    fn write(&self, pretty: bool) -> String {
        let mut out = String::from("{");
        let sep = if pretty { ": " } else { ":" };
        for (i, (key, task)) in self.tasks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if pretty {
                out.push_str("\n  ");
            }
            string(&mut out, key);
            out.push_str(sep);
            match task {
                Task::Value(value) => {
                    out.push('{');
                    string(&mut out, "value");
                    out.push_str(sep);
                    out.push_str(&value.to_string());
                    out.push('}');
                }
                Task::Call(call) => write_call(&mut out, call, pretty),
            }
        }
        out.push_str(if pretty && !self.tasks.is_empty() {
            "\n}\n"
        } else if pretty {
            "}\n"
        } else {
            "}"
        });
        out
    }
}

impl Arg {
    /// This argument as JSON, as it appears in a graph's JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::Arg;
    ///
    /// assert_eq!(Arg::key("x").to_json(), r#"{"ref":"x"}"#);
    /// // A literal that looks like a reference is escaped.
    /// let tricky = Arg::value(serde_json::json!({"ref": "x"}));
    /// assert_eq!(tricky.to_json(), r#"{"value":{"ref":"x"}}"#);
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        write_arg(&mut out, self, false);
        out
    }
}

fn json_key() -> Key {
    Key::new("json", KeyId::Custom("JSON".into()))
}

/// The key of task `key` in error messages.
pub(crate) fn task_key(key: &str) -> Key {
    Key::new("keyed", KeyId::Custom(key.into()))
}

/// The top-level object, with repeated keys rejected where they appear.
struct Keys(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Keys, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object from keys to tasks")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut seen = HashSet::new();
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format_args!("key `{key}` appears twice")));
                    }
                    let value = map.next_value::<Value>()?;
                    keys.push((key, value));
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(KeysVisitor)
    }
}

fn invalid(key: &str, message: impl fmt::Display) -> Error {
    Error::invalid(task_key(key), format!("key `{key}`: {message}"))
}

fn task(key: &str, value: Value) -> Result<Task, Error> {
    let Value::Object(mut fields) = value else {
        return Err(invalid(
            key,
            format!(
                "a task is an object, {{\"fn\": ..., \"args\": [...]}} or {{\"value\": ...}}, not `{}`",
                short(&value)
            ),
        ));
    };
    if fields.len() == 1 {
        if let Some(value) = fields.remove("value") {
            return Ok(Task::Value(value));
        }
    }
    let function = match fields.remove("fn") {
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(invalid(
                key,
                format!("`fn` must be a function name (a string), not `{}`", short(&other)),
            ))
        }
        None => {
            return Err(invalid(
                key,
                "a call needs `fn`, the name of a registered function (or write {\"value\": ...} for a value)",
            ))
        }
    };
    let args = match fields.remove("args") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.into_iter().map(arg).collect(),
        Some(other) => {
            return Err(invalid(
                key,
                format!("`args` must be a list, not `{}`", short(&other)),
            ))
        }
    };
    let mut call = Call::new(function);
    call.args = args;
    call.policy = policy(key, fields)?;
    Ok(Task::Call(call))
}

/// An argument: `{"ref": k}` and `{"value": v}` are special; lists and
/// objects are searched for references.
pub(crate) fn arg(value: Value) -> Arg {
    match value {
        Value::Object(mut map) if map.len() == 1 && map.contains_key("ref") => {
            match map.remove("ref") {
                Some(Value::String(key)) => Arg::Ref(key),
                // Not a key: an ordinary object with a field `ref`.
                Some(other) => Arg::Value(Value::Object(Map::from_iter([("ref".into(), other)]))),
                None => Arg::Value(Value::Object(map)),
            }
        }
        Value::Object(mut map) if map.len() == 1 && map.contains_key("value") => {
            Arg::Value(map.remove("value").unwrap_or(Value::Null))
        }
        Value::Object(map)
            if map.len() == 1 && matches!(map.get("map"), Some(Value::Object(_))) =>
        {
            match map.into_iter().next() {
                Some((_, Value::Object(entries))) => {
                    Arg::map(entries.into_iter().map(|(k, v)| (k, arg(v))))
                }
                _ => Arg::Value(Value::Null),
            }
        }
        Value::Array(items) => Arg::list(items.into_iter().map(arg)),
        Value::Object(map) => Arg::map(map.into_iter().map(|(k, v)| (k, arg(v)))),
        other => Arg::Value(other),
    }
}

fn policy(key: &str, mut fields: Map<String, Value>) -> Result<Policy, Error> {
    let mut policy = Policy::default();
    if let Some(limit) = fields.remove("limit") {
        match limit {
            Value::String(name) => policy.limit = Some(name),
            other => {
                return Err(invalid(
                    key,
                    format!("`limit` must be a limit's name, not `{}`", short(&other)),
                ))
            }
        }
    }
    if let Some(timeout) = fields.remove("timeout_ms") {
        policy.timeout = Some(millis(key, "timeout_ms", &timeout)?);
    }
    if let Some(priority) = fields.remove("priority") {
        policy.priority = Some(
            priority
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| {
                    invalid(
                        key,
                        format!(
                            "`priority` must be a whole number, not `{}`",
                            short(&priority)
                        ),
                    )
                })?,
        );
    }
    if let Some(retry) = fields.remove("retry") {
        policy.retry = Some(self::retry(key, retry)?);
    }
    if let Some(field) = fields.keys().next() {
        return Err(invalid(
            key,
            format!("unknown field `{field}`; a call has {CALL_FIELDS}"),
        ));
    }
    Ok(policy)
}

fn retry(key: &str, value: Value) -> Result<Retry, Error> {
    let Value::Object(mut fields) = value else {
        return Err(invalid(
            key,
            format!(
                "`retry` must be an object such as {{\"attempts\": 3, \"exponential_ms\": 100}}, not `{}`",
                short(&value)
            ),
        ));
    };
    let attempts = match fields.remove("attempts") {
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                invalid(
                    key,
                    format!("`retry.attempts` must be a count, not `{}`", short(&n)),
                )
            })?,
        None => return Err(invalid(key, "`retry` needs `attempts`")),
    };
    let mut retry = Retry::attempts(attempts);
    if let Some(delay) = fields.remove("fixed_ms") {
        retry = retry.fixed(millis(key, "retry.fixed_ms", &delay)?);
    }
    if let Some(delay) = fields.remove("exponential_ms") {
        retry = retry.exponential(millis(key, "retry.exponential_ms", &delay)?);
    }
    if let Some(delay) = fields.remove("max_delay_ms") {
        retry = retry.max_delay(millis(key, "retry.max_delay_ms", &delay)?);
    }
    if let Some(jitter) = fields.remove("jitter") {
        match jitter.as_f64() {
            Some(fraction) if (0.0..=1.0).contains(&fraction) => retry = retry.jitter(fraction),
            _ => {
                return Err(invalid(
                    key,
                    format!(
                        "`retry.jitter` must be a fraction from 0 to 1, not `{}`",
                        short(&jitter)
                    ),
                ))
            }
        }
    }
    if let Some(seed) = fields.remove("seed") {
        retry = retry.seed(seed.as_u64().ok_or_else(|| {
            invalid(
                key,
                format!(
                    "`retry.seed` must be a whole number, not `{}`",
                    short(&seed)
                ),
            )
        })?);
    }
    if let Some(panics) = fields.remove("panics") {
        retry = retry.panics(panics.as_bool().ok_or_else(|| {
            invalid(
                key,
                format!(
                    "`retry.panics` must be true or false, not `{}`",
                    short(&panics)
                ),
            )
        })?);
    }
    if let Some(field) = fields.keys().next() {
        return Err(invalid(
            key,
            format!("unknown field `retry.{field}`; a retry has {RETRY_FIELDS}"),
        ));
    }
    Ok(retry)
}

/// A duration: a number of milliseconds, or a string with a unit
/// (`"250us"`, `"1500ms"`, `"2s"`), which is how durations that are not
/// whole milliseconds are written, exactly.
fn millis(key: &str, field: &str, value: &Value) -> Result<Duration, Error> {
    let parsed = match value {
        Value::Number(n) => match n.as_u64() {
            Some(ms) => Some(Duration::from_millis(ms)),
            None => n
                .as_f64()
                .filter(|ms| ms.is_finite() && *ms >= 0.0 && ms * 1e6 < u64::MAX as f64)
                .map(|ms| Duration::from_nanos((ms * 1e6).round() as u64)),
        },
        Value::String(text) => with_unit(text),
        _ => None,
    };
    parsed.ok_or_else(|| {
        invalid(
            key,
            format!(
                "`{field}` must be a number of milliseconds or a string such as \"250us\", not `{}`",
                short(value)
            ),
        )
    })
}

/// `"<digits><unit>"` with unit `ns`, `us`, `ms` or `s`.
fn with_unit(text: &str) -> Option<Duration> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let per: u128 = match &text[digits.len()..] {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = digits.parse::<u128>().ok()?.checked_mul(per)?;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// A value, cut short for an error message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

fn string(out: &mut String, text: &str) {
    out.push_str(&Value::from(text).to_string());
}

fn write_call(out: &mut String, call: &Call, pretty: bool) {
    let (sep, comma) = if pretty { (": ", ", ") } else { (":", ",") };
    out.push('{');
    string(out, "fn");
    out.push_str(sep);
    string(out, &call.function);
    out.push_str(comma);
    string(out, "args");
    out.push_str(sep);
    out.push('[');
    for (i, arg) in call.args.iter().enumerate() {
        if i > 0 {
            out.push_str(comma);
        }
        write_arg(out, arg, pretty);
    }
    out.push(']');
    let policy = &call.policy;
    if let Some(limit) = &policy.limit {
        out.push_str(comma);
        string(out, "limit");
        out.push_str(sep);
        string(out, limit);
    }
    if let Some(retry) = &policy.retry {
        out.push_str(comma);
        string(out, "retry");
        out.push_str(sep);
        write_retry(out, retry, pretty);
    }
    if let Some(timeout) = policy.timeout {
        out.push_str(comma);
        string(out, "timeout_ms");
        out.push_str(sep);
        out.push_str(&ms(timeout));
    }
    if let Some(priority) = policy.priority {
        out.push_str(comma);
        string(out, "priority");
        out.push_str(sep);
        let _ = write!(out, "{priority}");
    }
    out.push('}');
}

fn write_retry(out: &mut String, retry: &Retry, pretty: bool) {
    let settings = retry.settings();
    let (sep, comma) = if pretty { (": ", ", ") } else { (":", ",") };
    let mut fields = vec![("attempts", settings.attempts.to_string())];
    if let Some(delay) = settings.fixed {
        fields.push(("fixed_ms", ms(delay)));
    }
    if let Some(delay) = settings.exponential {
        fields.push(("exponential_ms", ms(delay)));
    }
    if let Some(delay) = settings.max_delay {
        fields.push(("max_delay_ms", ms(delay)));
    }
    if settings.jitter != 0.0 {
        fields.push(("jitter", Value::from(settings.jitter).to_string()));
    }
    if let Some(seed) = settings.seed {
        fields.push(("seed", seed.to_string()));
    }
    if settings.panics {
        fields.push(("panics", "true".into()));
    }
    out.push('{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(comma);
        }
        string(out, name);
        out.push_str(sep);
        out.push_str(value);
    }
    out.push('}');
}

/// A duration as JSON: whole milliseconds as a number, anything else as
/// an exact string with the largest unit that fits.
fn ms(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos % 1_000_000 == 0 && u64::try_from(nanos / 1_000_000).is_ok() {
        return (nanos / 1_000_000).to_string();
    }
    let (count, unit) = if nanos % 1_000_000_000 == 0 {
        (nanos / 1_000_000_000, "s")
    } else if nanos % 1_000_000 == 0 {
        (nanos / 1_000_000, "ms")
    } else if nanos % 1_000 == 0 {
        (nanos / 1_000, "us")
    } else {
        (nanos, "ns")
    };
    format!("\"{count}{unit}\"")
}

fn write_arg(out: &mut String, arg: &Arg, pretty: bool) {
    let (sep, comma) = if pretty { (": ", ", ") } else { (":", ",") };
    match arg {
        Arg::Value(value) if looks_special(value) => {
            out.push('{');
            string(out, "value");
            out.push_str(sep);
            out.push_str(&value.to_string());
            out.push('}');
        }
        Arg::Value(value) => out.push_str(&value.to_string()),
        Arg::Ref(key) => {
            out.push('{');
            string(out, "ref");
            out.push_str(sep);
            string(out, key);
            out.push('}');
        }
        Arg::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                write_arg(out, item, pretty);
            }
            out.push(']');
        }
        Arg::Map(entries) if entries.len() == 1 && entries.keys().all(|k| is_special_key(k)) => {
            // `{"ref": ..}` would read as a reference: escape the map.
            out.push('{');
            string(out, "map");
            out.push_str(sep);
            out.push('{');
            for (name, item) in entries {
                string(out, name);
                out.push_str(sep);
                write_arg(out, item, pretty);
            }
            out.push_str("}}");
        }
        Arg::Map(entries) => {
            out.push('{');
            for (i, (name, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                string(out, name);
                out.push_str(sep);
                write_arg(out, item, pretty);
            }
            out.push('}');
        }
    }
}

/// The keys that make a one-entry object special when read.
fn is_special_key(key: &str) -> bool {
    matches!(key, "ref" | "value" | "map")
}

/// Whether a literal holds an object that reading would take for a
/// reference or an escape, so it must be written escaped.
fn looks_special(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if map.len() == 1 && map.keys().all(|k| is_special_key(k)) {
                    return true;
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}
