//! Reading keyed graphs from JSON, with errors that name the key: every
//! object of a task is read with its repeated fields rejected, then turned
//! into a task.
//!
//! Reading recurses over the JSON's nesting, which serde_json keeps to 128
//! levels, so the stack it uses is bounded.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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
    /// A task is one of dask's task forms:
    ///
    /// - a call, `{"fn": "clean", "args": [{"ref": "load-1"}]}`;
    /// - a value, `{"value": 3}`;
    /// - an alias, `{"ref": "load-1"}`: the same output under another key;
    /// - a field, `{"ref": "split", "index": 0}`: field 0 of the tuple that
    ///   `split` makes (dask's `(getitem, 'split', 0)`);
    /// - a list, `[{"ref": "a"}, {"ref": "b"}, 3]`, whose output is the list
    ///   of its items' outputs.
    ///
    /// In arguments (and list items), `{"ref": "key"}` refers to another
    /// key's output, `{"ref": "key", "index": 0}` to one field of it, an
    /// object with `fn` is a call written in place (its output is the
    /// argument), `{"value": ...}` is a literal taken as is, and any other
    /// JSON is a literal, with references and calls allowed inside lists
    /// and objects (`{"map": {...}}` escapes an object that would read as
    /// one of the forms above). A call may also set `limit` (a registered
    /// limit's name), `retry` (`{"attempts": 3, "exponential_ms": 100}`),
    /// `timeout_ms` and `priority`. Durations are milliseconds, or strings
    /// with a unit (`"250us"`) for exact values.
    ///
    /// # Errors
    ///
    /// An [`Error`] for which [`is_invalid`](Error::is_invalid) holds:
    /// malformed JSON (with line and column), a repeated key, a field
    /// repeated inside one task (naming its key, with line and column), or
    /// a task that is not of the forms above (naming its key). Whether functions
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
    ///
    /// let err = KeyedGraph::from_json(r#"{"k": {"fn": "load", "args": [1], "args": [2]}}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid graph: key `k`: field `args` appears twice at line 1 column 40");
    /// assert_eq!(err.key().to_string(), "k");
    /// ```
    pub fn from_json(json: &str) -> Result<KeyedGraph, Error> {
        let repeated = Cell::new(false);
        let failed = Cell::new(None);
        let mut reader = serde_json::Deserializer::from_str(json);
        let read = Keys {
            repeated: &repeated,
            failed: &failed,
        }
        .deserialize(&mut reader)
        .and_then(|keys| reader.end().map(|()| keys));
        let keys = match read {
            Ok(keys) => keys,
            Err(err) => {
                return Err(match failed.take() {
                    Some(key) => invalid(&key, err),
                    None => Error::invalid(json_key(), format!("malformed JSON: {err}")),
                })
            }
        };
        let mut graph = KeyedGraph::new();
        for (key, value) in keys {
            let task = task(&key, value)?;
            graph.tasks.insert(key, task);
        }
        Ok(graph)
    }
}

fn json_key() -> Key {
    Key::new("json", KeyId::Custom("JSON".into()))
}

/// The key of task `key` in error messages.
pub(crate) fn task_key(key: &str) -> Key {
    Key::new("keyed", KeyId::Custom(key.into()))
}

/// The top-level object: its keys in order, each with its task's JSON.
/// A repeated key is an error where it repeats; so is a repeated field in
/// any object of a task, and then `failed` names the task.
struct Keys<'s> {
    repeated: &'s Cell<bool>,
    failed: &'s Cell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Keys<'_> {
    type Value = Vec<(String, Value)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Keys<'_> {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object from keys to tasks")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("key `{key}` appears twice")));
            }
            match map.next_value_seed(Strict(self.repeated)) {
                Ok(value) => keys.push((key, value)),
                Err(err) => {
                    if self.repeated.get() {
                        self.failed.set(Some(key));
                    }
                    return Err(err);
                }
            }
        }
        Ok(keys)
    }
}

/// Any JSON value, with a field repeated in one object an error (and
/// `repeated` set) instead of the last one winning.
#[derive(Clone, Copy)]
struct Strict<'s>(&'s Cell<bool>);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(field) = map.next_key::<String>()? {
            if fields.contains_key(&field) {
                self.0.set(true);
                return Err(de::Error::custom(format_args!(
                    "field `{field}` appears twice"
                )));
            }
            let value = map.next_value_seed(self)?;
            fields.insert(field, value);
        }
        Ok(Value::Object(fields))
    }
}

fn invalid(key: &str, message: impl fmt::Display) -> Error {
    Error::invalid(task_key(key), format!("key `{key}`: {message}"))
}

/// Where an argument is, for messages: `argument 2[0].name`.
#[derive(Clone, Copy)]
enum Place<'p> {
    Argument(usize),
    Item(usize),
    Index(&'p Place<'p>, usize),
    Field(&'p Place<'p>, &'p str),
    /// An argument of a call written in place.
    Inner(&'p Place<'p>, usize),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Outermost first: collect the chain, then print it.
        let mut chain = vec![self];
        while let Place::Index(parent, _) | Place::Field(parent, _) | Place::Inner(parent, _) =
            chain[chain.len() - 1]
        {
            chain.push(parent);
        }
        for place in chain.iter().rev() {
            match place {
                Place::Argument(i) => write!(f, "argument {}", i + 1)?,
                Place::Item(i) => write!(f, "item {}", i + 1)?,
                Place::Index(_, i) => write!(f, "[{i}]")?,
                Place::Field(_, name) => write!(f, ".{name}")?,
                Place::Inner(_, i) => write!(f, " / argument {}", i + 1)?,
            }
        }
        Ok(())
    }
}

fn task(key: &str, value: Value) -> Result<Task, Error> {
    match value {
        Value::Array(items) => {
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| arg(item, &Place::Item(i)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|message| invalid(key, message))?;
            Ok(Task::list(items))
        }
        Value::Object(mut fields) => {
            if fields.len() == 1 {
                if let Some(value) = fields.remove("value") {
                    return Ok(Task::Value(value));
                }
            }
            match reference(&mut fields).as_mut() {
                Some(Ok(Arg::Ref(target))) => return Ok(Task::Alias(std::mem::take(target))),
                Some(Ok(Arg::Field(target, index))) => {
                    return Ok(Task::Field(std::mem::take(target), *index))
                }
                Some(Ok(_)) => {}
                Some(Err(message)) => return Err(invalid(key, message)),
                None if fields.len() == 1 && fields.contains_key("ref") => {
                    let target = fields.remove("ref").unwrap_or(Value::Null);
                    return Err(invalid(
                        key,
                        format!(
                            "an alias `{{\"ref\": ...}}` names a key (a string), not `{}`",
                            short(&target)
                        ),
                    ));
                }
                None => {}
            }
            call(fields, None)
                .map(Task::Call)
                .map_err(|message| invalid(key, message))
        }
        other => Err(invalid(
            key,
            format!(
                "a task is a call {{\"fn\": ..., \"args\": [...]}}, a value {{\"value\": ...}}, \
                 an alias {{\"ref\": ...}} or a list [...], not `{}`",
                short(&other)
            ),
        )),
    }
}

/// `{"ref": "k"}` or `{"ref": "k", "index": i}`: `None` when `fields` is
/// neither form (`{"ref": 3}` is a plain object), an error when it has the
/// fields of a field reference with the wrong values.
fn reference(fields: &mut Map<String, Value>) -> Option<Result<Arg, String>> {
    let is_ref = fields.len() == 1 && matches!(fields.get("ref"), Some(Value::String(_)));
    let is_field = fields.len() == 2 && fields.contains_key("ref") && fields.contains_key("index");
    if !is_ref && !is_field {
        return None;
    }
    let target = match fields.remove("ref") {
        Some(Value::String(target)) => target,
        other => {
            return Some(Err(format!(
                "`{{\"ref\": ..., \"index\": ...}}` needs a key (a string) in `ref`, not `{}`",
                short(&other.unwrap_or(Value::Null))
            )))
        }
    };
    if !is_field {
        return Some(Ok(Arg::Ref(target)));
    }
    let index = fields.remove("index").unwrap_or(Value::Null);
    Some(
        index
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .map(|i| Arg::Field(target, i))
            .ok_or_else(|| {
                format!(
                    "`index` must be a whole number (the field to take), not `{}`",
                    short(&index)
                )
            }),
    )
}

/// A call's fields; `place` is where a call written in place stands.
fn call(mut fields: Map<String, Value>, place: Option<&Place<'_>>) -> Result<Call, String> {
    let inside = |message: String| match place {
        Some(place) => format!("the call in {place}: {message}"),
        None => message,
    };
    let function = match fields.remove("fn") {
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(inside(format!(
                "`fn` must be a function name (a string), not `{}`",
                short(&other)
            )))
        }
        None => {
            return Err(
                "a call needs `fn`, the name of a registered function (or write {\"value\": ...} for a value)"
                    .to_string(),
            )
        }
    };
    let args = match fields.remove("args") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match place {
                Some(place) => arg(item, &Place::Inner(place, i)),
                None => arg(item, &Place::Argument(i)),
            })
            .collect::<Result<Vec<_>, String>>()?,
        Some(other) => {
            return Err(inside(format!(
                "`args` must be a list, not `{}`",
                short(&other)
            )))
        }
    };
    let mut call = Call::new(function);
    call.args = args;
    call.policy = policy(fields).map_err(inside)?;
    Ok(call)
}

/// An argument: `{"ref": k}`, `{"ref": k, "index": i}`, objects with `fn`
/// and `{"value": v}` are special; lists and objects are searched for
/// references and calls.
fn arg(value: Value, place: &Place<'_>) -> Result<Arg, String> {
    match value {
        Value::Object(mut map) => {
            if let Some(reference) = reference(&mut map) {
                return reference.map_err(|message| format!("{place}: {message}"));
            }
            if map.len() == 1 && map.contains_key("value") {
                return Ok(Arg::Value(map.remove("value").unwrap_or(Value::Null)));
            }
            if map.len() == 1 && matches!(map.get("map"), Some(Value::Object(_))) {
                let Some(Value::Object(entries)) = map.remove("map") else {
                    return Ok(Arg::Value(Value::Null));
                };
                return entries_of(entries, place);
            }
            if map.contains_key("fn") {
                return call(map, Some(place)).map(Arg::Call);
            }
            entries_of(map, place)
        }
        Value::Array(items) => Ok(Arg::list(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| arg(item, &Place::Index(place, i)))
                .collect::<Result<Vec<_>, String>>()?,
        )),
        other => Ok(Arg::Value(other)),
    }
}

fn entries_of(entries: Map<String, Value>, place: &Place<'_>) -> Result<Arg, String> {
    let mut out = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let item = arg(value, &Place::Field(place, &name))?;
        out.push((name, item));
    }
    Ok(Arg::map(out))
}

/// An argument from JSON that our own writer made (the cluster's
/// messages): a malformed call in it reads as the plain object it is.
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
pub(crate) fn arg_lenient(value: Value) -> Arg {
    match arg(value.clone(), &Place::Argument(0)) {
        Ok(arg) => arg,
        Err(_) => Arg::Value(value),
    }
}

fn policy(mut fields: Map<String, Value>) -> Result<Policy, String> {
    let mut policy = Policy::default();
    if let Some(limit) = fields.remove("limit") {
        match limit {
            Value::String(name) => policy.limit = Some(name),
            other => {
                return Err(format!(
                    "`limit` must be a limit's name, not `{}`",
                    short(&other)
                ))
            }
        }
    }
    if let Some(timeout) = fields.remove("timeout_ms") {
        policy.timeout = Some(millis("timeout_ms", &timeout)?);
    }
    if let Some(priority) = fields.remove("priority") {
        policy.priority = Some(
            priority
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| {
                    format!(
                        "`priority` must be a whole number, not `{}`",
                        short(&priority)
                    )
                })?,
        );
    }
    if let Some(retry) = fields.remove("retry") {
        policy.retry = Some(self::retry(retry)?);
    }
    if let Some(field) = fields.keys().next() {
        return Err(format!("unknown field `{field}`; a call has {CALL_FIELDS}"));
    }
    Ok(policy)
}

fn retry(value: Value) -> Result<Retry, String> {
    let Value::Object(mut fields) = value else {
        return Err(format!(
                "`retry` must be an object such as {{\"attempts\": 3, \"exponential_ms\": 100}}, not `{}`",
                short(&value)
            ));
    };
    let attempts = match fields.remove("attempts") {
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("`retry.attempts` must be a count, not `{}`", short(&n)))?,
        None => return Err("`retry` needs `attempts`".to_string()),
    };
    let mut retry = Retry::attempts(attempts);
    if let Some(delay) = fields.remove("fixed_ms") {
        retry = retry.fixed(millis("retry.fixed_ms", &delay)?);
    }
    if let Some(delay) = fields.remove("exponential_ms") {
        retry = retry.exponential(millis("retry.exponential_ms", &delay)?);
    }
    if let Some(delay) = fields.remove("max_delay_ms") {
        retry = retry.max_delay(millis("retry.max_delay_ms", &delay)?);
    }
    if let Some(jitter) = fields.remove("jitter") {
        match jitter.as_f64() {
            Some(fraction) if (0.0..=1.0).contains(&fraction) => retry = retry.jitter(fraction),
            _ => {
                return Err(format!(
                    "`retry.jitter` must be a fraction from 0 to 1, not `{}`",
                    short(&jitter)
                ))
            }
        }
    }
    if let Some(seed) = fields.remove("seed") {
        retry = retry.seed(seed.as_u64().ok_or_else(|| {
            format!(
                "`retry.seed` must be a whole number, not `{}`",
                short(&seed)
            )
        })?);
    }
    if let Some(panics) = fields.remove("panics") {
        retry = retry.panics(panics.as_bool().ok_or_else(|| {
            format!(
                "`retry.panics` must be true or false, not `{}`",
                short(&panics)
            )
        })?);
    }
    if let Some(field) = fields.keys().next() {
        return Err(format!(
            "unknown field `retry.{field}`; a retry has {RETRY_FIELDS}"
        ));
    }
    Ok(retry)
}

/// A duration: a number of milliseconds, or a string with a unit
/// (`"250us"`, `"1500ms"`, `"2s"`), which is how durations that are not
/// whole milliseconds are written, exactly.
fn millis(field: &str, value: &Value) -> Result<Duration, String> {
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
        format!(
            "`{field}` must be a number of milliseconds or a string such as \"250us\", not `{}`",
            short(value)
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
pub(crate) fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}
