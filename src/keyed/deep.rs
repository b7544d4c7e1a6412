//! Deep arguments and values without deep recursion: dropping, cloning,
//! comparing and measuring an [`Arg`] or a JSON value walk an explicit
//! stack, so a list nested 100,000 levels deep (built in code: JSON is
//! read at most 128 levels deep) costs heap, never the thread's stack.

use std::collections::BTreeMap;
use std::mem::take;

use serde_json::{Map, Value};

use super::spec::{Arg, Call};

/// How deep a literal may be nested, as deep as JSON is read: deeper
/// literals are an error when a graph is checked, since serde (which turns
/// them into parameters) recurses.
pub(crate) const MAX_DEPTH: usize = 128;

/// Whether `value` holds arrays or objects.
fn nested(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    }
}

/// Empties `value`, handing its nested children to `stack` (the others are
/// dropped here: they are flat).
fn detach_value(value: &mut Value, stack: &mut Vec<Value>) {
    match value {
        Value::Array(items) => stack.extend(items.drain(..).filter(nested)),
        Value::Object(map) => stack.extend(take(map).into_iter().map(|(_, v)| v).filter(nested)),
        _ => {}
    }
}

/// Takes `value` apart without recursing, leaving `null`.
pub(crate) fn drop_value(value: &mut Value) {
    if !nested(value) {
        return;
    }
    let mut stack = Vec::new();
    detach_value(value, &mut stack);
    while let Some(mut value) = stack.pop() {
        detach_value(&mut value, &mut stack);
    }
    *value = Value::Null;
}

/// A copy of `value`, made without recursing.
pub(crate) fn clone_value(value: &Value) -> Value {
    if !nested(value) {
        return value.clone();
    }
    enum Step<'a> {
        Visit(&'a Value),
        Array(usize),
        Object(&'a Map<String, Value>),
    }
    let mut steps = vec![Step::Visit(value)];
    let mut done: Vec<Value> = Vec::new();
    while let Some(step) = steps.pop() {
        match step {
            Step::Visit(Value::Array(items)) => {
                steps.push(Step::Array(items.len()));
                steps.extend(items.iter().rev().map(Step::Visit));
            }
            Step::Visit(Value::Object(map)) => {
                steps.push(Step::Object(map));
                steps.extend(map.values().rev().map(Step::Visit));
            }
            Step::Visit(flat) => done.push(flat.clone()),
            Step::Array(len) => {
                let items = done.split_off(done.len() - len);
                done.push(Value::Array(items));
            }
            Step::Object(map) => {
                let values = done.split_off(done.len() - map.len());
                done.push(Value::Object(map.keys().cloned().zip(values).collect()));
            }
        }
    }
    done.pop().unwrap_or(Value::Null)
}

/// Whether two values are equal, compared without recursing.
pub(crate) fn eq_values(a: &Value, b: &Value) -> bool {
    let mut pairs = vec![(a, b)];
    while let Some(pair) = pairs.pop() {
        match pair {
            (Value::Array(a), Value::Array(b)) => {
                if a.len() != b.len() {
                    return false;
                }
                pairs.extend(a.iter().zip(b));
            }
            (Value::Object(a), Value::Object(b)) => {
                if a.len() != b.len() {
                    return false;
                }
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    if ka != kb {
                        return false;
                    }
                    pairs.push((va, vb));
                }
            }
            (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
                return false
            }
            (a, b) => {
                if a != b {
                    return false;
                }
            }
        }
    }
    true
}

/// Whether `value` nests arrays and objects more than `limit` levels deep.
pub(crate) fn deeper_than(value: &Value, limit: usize) -> bool {
    let mut stack = vec![(value, 0_usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > limit {
            return true;
        }
        stack.extend(children.filter(|v| nested(v)).map(|v| (v, depth + 1)));
    }
    false
}

/// Writes `value` as compact JSON, without recursing.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    if !nested(value) {
        out.push_str(&value.to_string());
        return;
    }
    enum Piece<'a> {
        Value(&'a Value),
        Text(&'static str),
        Name(&'a str),
    }
    let mut pieces = vec![Piece::Value(value)];
    while let Some(piece) = pieces.pop() {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Name(name) => {
                out.push_str(&Value::from(name).to_string());
                out.push(':');
            }
            Piece::Value(Value::Array(items)) => {
                out.push('[');
                pieces.push(Piece::Text("]"));
                for (i, item) in items.iter().enumerate().rev() {
                    pieces.push(Piece::Value(item));
                    if i > 0 {
                        pieces.push(Piece::Text(","));
                    }
                }
            }
            Piece::Value(Value::Object(map)) => {
                out.push('{');
                pieces.push(Piece::Text("}"));
                for (i, (name, item)) in map.iter().enumerate().rev() {
                    pieces.push(Piece::Value(item));
                    pieces.push(Piece::Name(name));
                    if i > 0 {
                        pieces.push(Piece::Text(","));
                    }
                }
            }
            Piece::Value(flat) => out.push_str(&flat.to_string()),
        }
    }
}

/// Empties `arg`, handing its nested arguments to `stack`.
fn detach_arg(arg: &mut Arg, stack: &mut Vec<Arg>) {
    match arg {
        Arg::Value(value) => drop_value(value),
        Arg::List(items) => stack.append(items),
        Arg::Map(entries) => stack.extend(take(entries).into_values()),
        Arg::Call(call) => stack.append(&mut call.args),
        Arg::Ref(_) | Arg::Field(..) => {}
    }
}

impl Drop for Arg {
    /// Drops nested lists, maps, calls and values without recursing.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        detach_arg(self, &mut stack);
        while let Some(mut arg) = stack.pop() {
            detach_arg(&mut arg, &mut stack);
        }
    }
}

impl Clone for Arg {
    /// Copies nested lists, maps, calls and values without recursing.
    fn clone(&self) -> Arg {
        enum Step<'a> {
            Visit(&'a Arg),
            List(usize),
            Map(&'a BTreeMap<String, Arg>),
            Call(&'a Call),
        }
        let mut steps = vec![Step::Visit(self)];
        let mut done: Vec<Arg> = Vec::new();
        while let Some(step) = steps.pop() {
            match step {
                Step::Visit(Arg::Value(value)) => done.push(Arg::Value(clone_value(value))),
                Step::Visit(Arg::Ref(key)) => done.push(Arg::Ref(key.clone())),
                Step::Visit(Arg::Field(key, index)) => done.push(Arg::Field(key.clone(), *index)),
                Step::Visit(Arg::List(items)) => {
                    steps.push(Step::List(items.len()));
                    steps.extend(items.iter().rev().map(Step::Visit));
                }
                Step::Visit(Arg::Map(entries)) => {
                    steps.push(Step::Map(entries));
                    steps.extend(entries.values().rev().map(Step::Visit));
                }
                Step::Visit(Arg::Call(call)) => {
                    steps.push(Step::Call(call));
                    steps.extend(call.args.iter().rev().map(Step::Visit));
                }
                Step::List(len) => {
                    let items = done.split_off(done.len() - len);
                    done.push(Arg::List(items));
                }
                Step::Map(entries) => {
                    let values = done.split_off(done.len() - entries.len());
                    done.push(Arg::Map(entries.keys().cloned().zip(values).collect()));
                }
                Step::Call(call) => {
                    let args = done.split_off(done.len() - call.args.len());
                    done.push(Arg::Call(Call {
                        function: call.function.clone(),
                        args,
                        policy: call.policy.clone(),
                    }));
                }
            }
        }
        done.pop().unwrap_or(Arg::Value(Value::Null))
    }
}

impl PartialEq for Arg {
    /// Compares nested lists, maps, calls and values without recursing.
    fn eq(&self, other: &Arg) -> bool {
        let mut pairs = vec![(self, other)];
        while let Some(pair) = pairs.pop() {
            match pair {
                (Arg::Value(a), Arg::Value(b)) => {
                    if !eq_values(a, b) {
                        return false;
                    }
                }
                (Arg::Ref(a), Arg::Ref(b)) => {
                    if a != b {
                        return false;
                    }
                }
                (Arg::Field(a, i), Arg::Field(b, j)) => {
                    if a != b || i != j {
                        return false;
                    }
                }
                (Arg::List(a), Arg::List(b)) => {
                    if a.len() != b.len() {
                        return false;
                    }
                    pairs.extend(a.iter().zip(b));
                }
                (Arg::Map(a), Arg::Map(b)) => {
                    if a.len() != b.len() || !a.keys().eq(b.keys()) {
                        return false;
                    }
                    pairs.extend(a.values().zip(b.values()));
                }
                (Arg::Call(a), Arg::Call(b)) => {
                    if a.function != b.function
                        || a.policy != b.policy
                        || a.args.len() != b.args.len()
                    {
                        return false;
                    }
                    pairs.extend(a.args.iter().zip(&b.args));
                }
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deep_value(depth: usize) -> Value {
        let mut value = json!(1);
        for i in 0..depth {
            value = if i % 2 == 0 {
                Value::Array(vec![value, json!("x")])
            } else {
                Value::Object(Map::from_iter([("k".to_string(), value)]))
            };
        }
        value
    }

    #[test]
    fn deep_values_clone_compare_measure_write_and_drop_without_recursing() {
        // On a small stack: a walk that recursed per level would overflow.
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(deep_values)
            .unwrap()
            .join()
            .unwrap();
    }

    fn deep_values() {
        let value = deep_value(100_000);
        let copy = clone_value(&value);
        assert!(eq_values(&value, &copy));
        assert!(deeper_than(&value, MAX_DEPTH));
        let mut out = String::new();
        write_value(&mut out, &value);
        assert_eq!(out.len(), 100_000 * 6 + 1);
        assert!(out.starts_with("{\"k\":[{\"k\":["), "{}", &out[..20]);
        let (mut value, mut copy) = (value, copy);
        drop_value(&mut value);
        drop_value(&mut copy);
        assert_eq!((value, copy), (Value::Null, Value::Null));
    }

    #[test]
    fn shallow_values_agree_with_serde() {
        let value = json!({"a": [1, 2.5, {"b": null}], "c": "é\"", "d": {}});
        let mut out = String::new();
        write_value(&mut out, &value);
        assert_eq!(out, value.to_string());
        assert_eq!(clone_value(&value), value);
        assert!(!eq_values(
            &value,
            &json!({"a": [1, 2.5, {"b": 0}], "c": "é\"", "d": {}})
        ));
        assert!(!eq_values(&json!([1]), &json!({"0": 1})));
        assert!(!deeper_than(&value, 3));
        assert!(deeper_than(&value, 2));
    }
}
