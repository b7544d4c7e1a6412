//! Planning a build: the keys (and calls written in place) that the
//! requested outputs need, each after what it refers to, as dask's cull
//! and topological sort. Missing keys, cycles, unknown functions, wrong
//! argument counts and literals nested too deep are found here, before
//! any node exists, with no recursion over keys or over nesting.

use std::collections::HashMap;

use super::deep::{deeper_than, MAX_DEPTH};
use super::json::task_key;
use super::registry::{Entry, Registry};
use super::spec::{Arg, Call, KeyedGraph, Task};
use crate::Error;

/// How many keys of a cycle an error names; the rest are counted.
const CYCLE_SHOWN: usize = 32;

/// One thing a build makes: a key's task, or a call written in place.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Item<'a> {
    Key(&'a str),
    /// A call written in place: an index into [`Plan::inline`].
    Inline(usize),
}

/// A call written in place in an argument.
pub(crate) struct Inline<'a> {
    pub(crate) call: &'a Call,
    /// The key whose task holds it.
    pub(crate) owner: &'a str,
    /// Where it stands, for messages: "argument `x` of `inc`".
    pub(crate) place: String,
    /// Its node's key: `owner/function-n`.
    pub(crate) key: String,
}

/// What a build makes, in order.
pub(crate) struct Plan<'a> {
    pub(crate) order: Vec<Item<'a>>,
    pub(crate) inline: Vec<Inline<'a>>,
}

/// Something an item needs first.
enum Need<'a> {
    Key(&'a str),
    Inline(&'a Call, String),
}

/// Plans the keys `roots` need.
pub(crate) fn plan<'a>(
    graph: &'a KeyedGraph,
    registry: &Registry,
    roots: &[&str],
) -> Result<Plan<'a>, Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut plan = Plan {
        order: Vec::new(),
        inline: Vec::new(),
    };
    // Calls written in place so far, per owner, to number their keys.
    let mut written: HashMap<&str, usize> = HashMap::new();
    // Each frame: an item and what it needs, still to visit (last first).
    let mut stack: Vec<(Item<'a>, Vec<Need<'a>>)> = Vec::new();
    for root in roots {
        let Some((root, _)) = graph.tasks.get_key_value(*root) else {
            return Err(Error::invalid(
                task_key(root),
                format!("no key `{root}` in the graph"),
            ));
        };
        if marks.contains_key(root.as_str()) {
            continue;
        }
        marks.insert(root, Mark::Open);
        stack.push((Item::Key(root), needs_of_key(graph, registry, root)?));
        while let Some((item, pending)) = stack.last_mut() {
            let item = *item;
            let Some(need) = pending.pop() else {
                if let Item::Key(key) = item {
                    marks.insert(key, Mark::Done);
                }
                plan.order.push(item);
                stack.pop();
                continue;
            };
            match need {
                Need::Inline(call, place) => {
                    let owner = owner_of(&plan, item);
                    let n = written.entry(owner).or_insert(0);
                    *n += 1;
                    let key = format!("{owner}/{}-{n}", call.function);
                    let needs = needs_of_call(registry, owner, call, Some(&place))?;
                    plan.inline.push(Inline {
                        call,
                        owner,
                        place,
                        key,
                    });
                    stack.push((Item::Inline(plan.inline.len() - 1), needs));
                }
                Need::Key(next) => {
                    let Some((next, _)) = graph.tasks.get_key_value(next) else {
                        return Err(missing(graph, registry, &plan, item, next));
                    };
                    match marks.get(next.as_str()) {
                        Some(Mark::Done) => {}
                        Some(Mark::Open) => return Err(cycle(&stack, next)),
                        None => {
                            marks.insert(next, Mark::Open);
                            let needs = needs_of_key(graph, registry, next)?;
                            stack.push((Item::Key(next), needs));
                        }
                    }
                }
            }
        }
    }
    Ok(plan)
}

/// The key whose task holds `item`.
fn owner_of<'a>(plan: &Plan<'a>, item: Item<'a>) -> &'a str {
    match item {
        Item::Key(key) => key,
        Item::Inline(i) => plan.inline[i].owner,
    }
}

/// The cycle that closes at `next`, naming at most [`CYCLE_SHOWN`] keys.
fn cycle(stack: &[(Item<'_>, Vec<Need<'_>>)], next: &str) -> Error {
    let start = stack
        .iter()
        .position(|(item, _)| *item == Item::Key(next))
        .unwrap_or(0);
    let keys: Vec<&str> = stack[start..]
        .iter()
        .filter_map(|(item, _)| match item {
            Item::Key(key) => Some(*key),
            Item::Inline(_) => None,
        })
        .collect();
    let mut message = String::from("cycle: ");
    for key in keys.iter().take(CYCLE_SHOWN) {
        message.push_str(&format!("`{key}` -> "));
    }
    if keys.len() > CYCLE_SHOWN {
        message.push_str(&format!(
            "... and {} more keys -> ",
            keys.len() - CYCLE_SHOWN
        ));
    }
    message.push_str(&format!("`{next}`"));
    Error::invalid(task_key(next), message)
}

/// What `key`'s task needs, last first; checks its function, its
/// argument count and its literals on the way.
fn needs_of_key<'a>(
    graph: &'a KeyedGraph,
    registry: &Registry,
    key: &'a str,
) -> Result<Vec<Need<'a>>, Error> {
    match &graph.tasks[key] {
        Task::Call(call) => needs_of_call(registry, key, call, None),
        Task::Value(value) => {
            if deeper_than(value, MAX_DEPTH) {
                return Err(too_deep(key, "its value"));
            }
            Ok(Vec::new())
        }
        Task::Alias(target) | Task::Field(target, _) => Ok(vec![Need::Key(target)]),
        Task::List(items) => {
            let mut needs = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let place = || format!("item {}", i + 1);
                needs_of_arg(item, 1, &mut needs, &place).map_err(|what| too_deep(key, &what))?;
            }
            needs.reverse();
            Ok(needs)
        }
    }
}

/// What a call needs, last first. `inside` says where a call written in
/// place stands.
fn needs_of_call<'a>(
    registry: &Registry,
    key: &str,
    call: &'a Call,
    inside: Option<&str>,
) -> Result<Vec<Need<'a>>, Error> {
    let entry = entry(registry, key, call, inside)?;
    if call.args.len() != entry.params.len() {
        let params: Vec<_> = entry.params().collect();
        return Err(Error::invalid(
            task_key(key),
            format!(
                "key `{key}` calls `{}`{} with {} argument{}, but it takes {} ({})",
                call.function,
                inside_of(inside),
                call.args.len(),
                if call.args.len() == 1 { "" } else { "s" },
                params.len(),
                params.join(", ")
            ),
        ));
    }
    let mut needs = Vec::new();
    for (arg, name) in call.args.iter().zip(entry.params()) {
        let place = || format!("argument `{name}` of `{}`", call.function);
        needs_of_arg(arg, 0, &mut needs, &place)
            .map_err(|what| too_deep(key, &format!("{what}{}", inside_of(inside))))?;
    }
    needs.reverse();
    Ok(needs)
}

/// Adds what `arg` needs to `needs`, in order; `Err` names the place of a
/// literal (or list) nested deeper than [`MAX_DEPTH`].
fn needs_of_arg<'a>(
    arg: &'a Arg,
    depth: usize,
    needs: &mut Vec<Need<'a>>,
    place: &dyn Fn() -> String,
) -> Result<(), String> {
    let mut stack = vec![(arg, depth)];
    while let Some((arg, depth)) = stack.pop() {
        match arg {
            Arg::Ref(key) | Arg::Field(key, _) => needs.push(Need::Key(key)),
            Arg::Call(call) => needs.push(Need::Inline(call, place())),
            Arg::Value(value) => {
                if deeper_than(value, MAX_DEPTH.saturating_sub(depth)) {
                    return Err(place());
                }
            }
            Arg::List(_) | Arg::Map(_) if depth >= MAX_DEPTH => return Err(place()),
            Arg::List(items) => stack.extend(items.iter().rev().map(|item| (item, depth + 1))),
            Arg::Map(entries) => {
                stack.extend(entries.values().rev().map(|item| (item, depth + 1)));
            }
        }
    }
    Ok(())
}

fn too_deep(key: &str, what: &str) -> Error {
    Error::invalid(
        task_key(key),
        format!(
            "key `{key}`: {what} nests more than {MAX_DEPTH} levels deep \
             (a graph holds what JSON holds: at most {MAX_DEPTH})"
        ),
    )
}

/// `" (inside argument `x` of `inc`)"` for a call written in place.
pub(crate) fn inside_of(inside: Option<&str>) -> String {
    match inside {
        Some(place) => format!(" (inside {place})"),
        None => String::new(),
    }
}

/// The registered function a call names.
pub(crate) fn entry<'r>(
    registry: &'r Registry,
    key: &str,
    call: &Call,
    inside: Option<&str>,
) -> Result<&'r Entry, Error> {
    registry.function(&call.function).ok_or_else(|| {
        let hint = match registry.closest(&call.function) {
            Some(close) => format!("; did you mean `{close}`?"),
            None => {
                let known: Vec<_> = registry.names().collect();
                format!("; registered: {}", known.join(", "))
            }
        };
        Error::invalid(
            task_key(key),
            format!(
                "key `{key}` calls `{}`{}, which is not a registered function{hint}",
                call.function,
                inside_of(inside)
            ),
        )
    })
}

/// The error for a reference from `item` to a key that does not exist,
/// with where the reference is.
fn missing(
    graph: &KeyedGraph,
    registry: &Registry,
    plan: &Plan<'_>,
    item: Item<'_>,
    target: &str,
) -> Error {
    let (key, call, inside) = match item {
        Item::Key(key) => match &graph.tasks[key] {
            Task::Call(call) => (key, call, None),
            Task::Alias(_) | Task::Field(..) | Task::Value(_) => {
                return Error::invalid(
                    task_key(key),
                    format!("key `{key}` refers to missing key `{target}`"),
                )
            }
            Task::List(items) => {
                let place = items
                    .iter()
                    .position(|item| refers_to(item, target))
                    .map(|i| format!(" (item {})", i + 1))
                    .unwrap_or_default();
                return Error::invalid(
                    task_key(key),
                    format!("key `{key}` refers to missing key `{target}`{place}"),
                );
            }
        },
        Item::Inline(i) => {
            let inline = &plan.inline[i];
            (inline.owner, inline.call, Some(inline.place.as_str()))
        }
    };
    let names: Vec<&str> = registry
        .function(&call.function)
        .map(|entry| entry.params().collect())
        .unwrap_or_default();
    let mut place = String::new();
    for (i, arg) in call.args.iter().enumerate() {
        if refers_to(arg, target) {
            place = match names.get(i) {
                Some(name) => format!(" (argument `{name}` of `{}`", call.function),
                None => format!(" (argument {} of `{}`", i + 1, call.function),
            };
            if let Some(inside) = inside {
                place.push_str(&format!(", inside {inside}"));
            }
            place.push(')');
            break;
        }
    }
    Error::invalid(
        task_key(key),
        format!("key `{key}` refers to missing key `{target}`{place}"),
    )
}

/// Whether `arg` refers to `target` itself, not inside a call written in
/// place (which is an item of its own).
fn refers_to(arg: &Arg, target: &str) -> bool {
    let mut stack = vec![arg];
    while let Some(arg) = stack.pop() {
        match arg {
            Arg::Ref(key) | Arg::Field(key, _) if key == target => return true,
            Arg::List(items) => stack.extend(items),
            Arg::Map(entries) => stack.extend(entries.values()),
            _ => {}
        }
    }
    false
}
