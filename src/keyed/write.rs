//! Writing keyed graphs as JSON: keys in order, one per line when pretty,
//! literals escaped where reading would take them for references or calls.
//! Arguments are written from an explicit stack, so any nesting works.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::deep;
use super::spec::{Arg, Call, KeyedGraph, Task};
use crate::Retry;

impl KeyedGraph {
    /// Writes the graph as compact JSON, keys in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::{Arg, Call, KeyedGraph, Task};
    ///
    /// let mut graph = KeyedGraph::new();
    /// graph.insert("n", Call::new("load").arg(Arg::value("a.data")));
    /// graph.insert("m", Task::alias("n"));
    /// let json = graph.to_json();
    /// assert_eq!(json, r#"{"m":{"ref":"n"},"n":{"fn":"load","args":["a.data"]}}"#);
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
        let mut writer = Writer {
            out: String::from("{"),
            pretty,
        };
        for (i, (key, task)) in self.tasks.iter().enumerate() {
            if i > 0 {
                writer.out.push(',');
            }
            if pretty {
                writer.out.push_str("\n  ");
            }
            writer.run(vec![Piece::Str(key), Piece::Sep, Piece::Task(task)]);
        }
        let mut out = writer.out;
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
    /// // A literal that looks like a reference or a call is escaped.
    /// let tricky = Arg::value(serde_json::json!({"ref": "x"}));
    /// assert_eq!(tricky.to_json(), r#"{"value":{"ref":"x"}}"#);
    /// let tricky = Arg::value(serde_json::json!({"fn": "f", "n": 1}));
    /// assert_eq!(tricky.to_json(), r#"{"value":{"fn":"f","n":1}}"#);
    /// ```
    pub fn to_json(&self) -> String {
        let mut writer = Writer {
            out: String::new(),
            pretty: false,
        };
        writer.run(vec![Piece::Arg(self)]);
        writer.out
    }
}

/// What is left to write, in order.
enum Piece<'a> {
    Text(&'static str),
    /// `:` (`: ` when pretty).
    Sep,
    /// `,` (`, ` when pretty).
    Comma,
    /// A JSON string.
    Str(&'a str),
    Owned(String),
    /// A literal, written as is.
    Literal(&'a Value),
    Arg(&'a Arg),
    Task(&'a Task),
}

struct Writer {
    out: String,
    pretty: bool,
}

impl Writer {
    /// Writes `pieces` in order, expanding arguments on a stack.
    fn run(&mut self, pieces: Vec<Piece<'_>>) {
        let mut stack: Vec<Piece<'_>> = pieces.into_iter().rev().collect();
        while let Some(piece) = stack.pop() {
            let expanded = match piece {
                Piece::Text(text) => {
                    self.out.push_str(text);
                    continue;
                }
                Piece::Sep => {
                    self.out.push_str(if self.pretty { ": " } else { ":" });
                    continue;
                }
                Piece::Comma => {
                    self.out.push_str(if self.pretty { ", " } else { "," });
                    continue;
                }
                Piece::Str(text) => {
                    string(&mut self.out, text);
                    continue;
                }
                Piece::Owned(text) => {
                    self.out.push_str(&text);
                    continue;
                }
                Piece::Literal(value) => {
                    deep::write_value(&mut self.out, value);
                    continue;
                }
                Piece::Arg(arg) => self.arg(arg),
                Piece::Task(task) => self.task(task),
            };
            stack.extend(expanded.into_iter().rev());
        }
    }

    fn task<'a>(&self, task: &'a Task) -> Vec<Piece<'a>> {
        match task {
            Task::Value(value) => escaped(value),
            Task::Call(call) => self.call(call),
            Task::Alias(key) => reference(key, None),
            Task::Field(key, index) => reference(key, Some(*index)),
            Task::List(items) => list(items),
        }
    }

    fn arg<'a>(&self, arg: &'a Arg) -> Vec<Piece<'a>> {
        match arg {
            Arg::Value(value) if looks_special(value) => escaped(value),
            Arg::Value(value) => vec![Piece::Literal(value)],
            Arg::Ref(key) => reference(key, None),
            Arg::Field(key, index) => reference(key, Some(*index)),
            Arg::List(items) => list(items),
            Arg::Map(entries) => {
                let mut pieces = Vec::with_capacity(entries.len() * 4 + 4);
                let escape = reads_specially(entries.len(), |k| entries.contains_key(k));
                if escape {
                    // It would read as a reference or a call: escape it.
                    pieces.extend([Piece::Text("{"), Piece::Str("map"), Piece::Sep]);
                }
                pieces.push(Piece::Text("{"));
                for (i, (name, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        pieces.push(Piece::Comma);
                    }
                    pieces.extend([Piece::Str(name), Piece::Sep, Piece::Arg(item)]);
                }
                pieces.push(Piece::Text("}"));
                if escape {
                    pieces.push(Piece::Text("}"));
                }
                pieces
            }
            Arg::Call(call) => self.call(call),
        }
    }

    fn call<'a>(&self, call: &'a Call) -> Vec<Piece<'a>> {
        let mut pieces = vec![
            Piece::Text("{"),
            Piece::Str("fn"),
            Piece::Sep,
            Piece::Str(&call.function),
            Piece::Comma,
            Piece::Str("args"),
            Piece::Sep,
        ];
        pieces.extend(list(&call.args));
        let (sep, comma) = if self.pretty {
            (": ", ", ")
        } else {
            (":", ",")
        };
        let mut rest = String::new();
        let policy = &call.policy;
        if let Some(limit) = &policy.limit {
            rest.push_str(comma);
            string(&mut rest, "limit");
            rest.push_str(sep);
            string(&mut rest, limit);
        }
        if let Some(retry) = &policy.retry {
            rest.push_str(comma);
            string(&mut rest, "retry");
            rest.push_str(sep);
            write_retry(&mut rest, retry, self.pretty);
        }
        if let Some(timeout) = policy.timeout {
            rest.push_str(comma);
            string(&mut rest, "timeout_ms");
            rest.push_str(sep);
            rest.push_str(&ms(timeout));
        }
        if let Some(priority) = policy.priority {
            rest.push_str(comma);
            string(&mut rest, "priority");
            rest.push_str(sep);
            let _ = write!(rest, "{priority}");
        }
        rest.push('}');
        pieces.push(Piece::Owned(rest));
        pieces
    }
}

/// `{"value": ...}`.
fn escaped(value: &Value) -> Vec<Piece<'_>> {
    vec![
        Piece::Text("{"),
        Piece::Str("value"),
        Piece::Sep,
        Piece::Literal(value),
        Piece::Text("}"),
    ]
}

/// `{"ref": key}` or `{"ref": key, "index": i}`.
fn reference(key: &str, index: Option<usize>) -> Vec<Piece<'_>> {
    let mut pieces = vec![
        Piece::Text("{"),
        Piece::Str("ref"),
        Piece::Sep,
        Piece::Str(key),
    ];
    if let Some(index) = index {
        pieces.extend([
            Piece::Comma,
            Piece::Str("index"),
            Piece::Sep,
            Piece::Owned(index.to_string()),
        ]);
    }
    pieces.push(Piece::Text("}"));
    pieces
}

fn list(items: &[Arg]) -> Vec<Piece<'_>> {
    let mut pieces = Vec::with_capacity(items.len() * 2 + 2);
    pieces.push(Piece::Text("["));
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            pieces.push(Piece::Comma);
        }
        pieces.push(Piece::Arg(item));
    }
    pieces.push(Piece::Text("]"));
    pieces
}

fn string(out: &mut String, text: &str) {
    out.push_str(&Value::from(text).to_string());
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

/// Whether an object with `len` fields, of which `has` tells, would read
/// as something other than a plain object: `{"ref": ..}`, `{"value": ..}`,
/// `{"map": ..}`, `{"ref": .., "index": ..}`, or a call (it has `fn`).
fn reads_specially(len: usize, has: impl Fn(&str) -> bool) -> bool {
    (len == 1 && (has("ref") || has("value") || has("map")))
        || (len == 2 && has("ref") && has("index"))
        || has("fn")
}

/// Whether a literal holds an object that reading would take for a
/// reference, a call or an escape, so it must be written escaped.
fn looks_special(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if reads_specially(map.len(), |k| map.contains_key(k)) {
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
