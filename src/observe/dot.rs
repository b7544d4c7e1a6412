//! Graphviz output: `Graph::to_dot` and `Delayed::visualize`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::observe::timeline::format_duration;
use crate::{Error, Graph, Key, TaskState};

/// The install hint returned when `dot` cannot be found.
const DOT_NOT_FOUND: &str = "Graphviz's `dot` program was not found; install Graphviz \
     (Debian/Ubuntu: `apt-get install graphviz`, macOS: `brew install graphviz`) \
     or write a `.dot` file instead";

/// The extensions `visualize` understands, for error messages.
const SUPPORTED: &str = "`.dot`, `.gv`, `.svg`, `.png` or `.pdf`";

/// Border and edge colour of failures.
macro_rules! red {
    () => {
        "#d7191c"
    };
}

impl Graph {
    /// The node count above which [`to_dot`](Graph::to_dot) collapses the
    /// graph by function name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::Graph::DOT_COLLAPSE_ABOVE, 1_000);
    /// ```
    pub const DOT_COLLAPSE_ABOVE: usize = 1_000;

    /// The snapshot as a [Graphviz] DOT document, ready for `dot -Tsvg`.
    ///
    /// Inputs are drawn at the bottom and the result at the top, as dask's
    /// `visualize` draws them. Each node is a box labelled with its function
    /// name and, below it, its key; edges go from each input to the node
    /// that uses it. The fill colour tells the node's [`TaskState`]:
    ///
    /// | state       | fill         |
    /// |-------------|--------------|
    /// | `waiting`   | light grey   |
    /// | `running`   | light blue   |
    /// | `done`      | light green  |
    /// | `failed`    | salmon       |
    /// | `cancelled` | light orange |
    ///
    /// A failed node none of whose inputs failed is a root cause: it gets a
    /// thick red border. An edge from a failed input to a failed node is red
    /// and bold, so the path of a failure stands out. A failed node keeps
    /// the inputs that failed it, so the snapshot of a failed compute draws
    /// that path from the root cause to the result.
    ///
    /// A legend at the top left, the graph's label, shows each state's
    /// colour, the root cause's border and the failure path's colour.
    ///
    /// A graph of more than [`DOT_COLLAPSE_ABOVE`](Graph::DOT_COLLAPSE_ABOVE)
    /// nodes is collapsed by function name, like dask's `collapse_outputs`;
    /// see [`to_dot_collapse_above`](Graph::to_dot_collapse_above).
    ///
    /// Nodes that share a key (two nodes [`named`](crate::Delayed::named)
    /// alike) are drawn as one.
    ///
    /// [Graphviz]: https://graphviz.org
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::delayed;
    ///
    /// #[delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// let a = inc(1).named("a");
    /// let b = inc(&a).named("b");
    /// let dot = b.graph().to_dot();
    /// assert!(dot.starts_with("digraph delayed {"));
    /// assert!(dot.contains(r#""a" [label="inc\na""#));
    /// assert!(dot.contains(r#""a" -> "b";"#));
    /// // The legend: each state with its fill colour.
    /// assert!(dot.contains(r##"<td bgcolor="#b2df8a">done</td>"##));
    /// assert!(dot.contains(r##"<td bgcolor="#fb9a99">failed</td>"##));
    /// ```
    pub fn to_dot(&self) -> String {
        self.to_dot_collapse_above(Some(Self::DOT_COLLAPSE_ABOVE))
    }

    /// Like [`to_dot`](Graph::to_dot), collapsing the graph only when it
    /// has more than `threshold` nodes; `None` never collapses.
    ///
    /// A collapsed graph has one box per function name, labelled with the
    /// name, how many nodes it stands for, and how many of them are in each
    /// state (`inc ×2000` over `done 1998, failed 2`). The box is filled
    /// with the colour of the most pressing state among them: failed, then
    /// running, cancelled, waiting, and done last. It gets the red border
    /// when it holds a root cause of a failure. The edges between two boxes
    /// become one, labelled with their count when there is more than one.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::delayed;
    ///
    /// #[delayed]
    /// fn inc(x: u64) -> u64 { x + 1 }
    ///
    /// #[delayed]
    /// fn total(xs: Vec<u64>) -> u64 { xs.iter().sum() }
    ///
    /// // 20 `inc`s and the `total` of them:
    /// let parts: Vec<_> = (0..20).map(inc).collect();
    /// let graph = total(parts).graph();
    /// assert_eq!(graph.nodes().len(), 21);
    ///
    /// // One box per function name:
    /// let dot = graph.to_dot_collapse_above(Some(10));
    /// assert!(dot.contains(r#""inc" [label="inc ×20\nwaiting 20""#));
    /// assert!(dot.contains(r#""inc" -> "total" [label="×20"];"#));
    ///
    /// // Every node:
    /// let dot = graph.to_dot_collapse_above(None);
    /// assert_eq!(dot.matches(" -> ").count(), 20);
    /// ```
    pub fn to_dot_collapse_above(&self, threshold: Option<usize>) -> String {
        let items: Vec<Item<'_>> = self
            .nodes()
            .iter()
            .map(|node| Item {
                key: node.key(),
                deps: node.deps(),
                state: node.state(),
                cause: node.error().map(Error::key),
                duration: node.duration(),
            })
            .collect();
        render(&items, threshold)
    }
}

impl Graph {
    /// Writes this graph to `path` as DOT, or renders it as SVG, PNG or
    /// PDF with Graphviz, like [`Delayed::visualize`](crate::Delayed::visualize); for graphs from
    /// [`Timeline::graph`](crate::Timeline::graph), which carry run times.
    ///
    /// # Errors
    ///
    /// As for [`Delayed::visualize`](crate::Delayed::visualize), as an [`io::Error`]: `NotFound` when
    /// Graphviz's `dot` is not installed (the message says how to install
    /// it), `InvalidInput` for an unsupported extension.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let dir = tempfile::tempdir()?;
    /// let graph = delayed::Delayed::value(1).map(|x: u64| x + 1).graph();
    /// let path = dir.path().join("graph.svg");
    /// match graph.visualize(&path) {
    ///     Ok(written) => assert_eq!(written, path),
    ///     // No Graphviz here: fall back to DOT text.
    ///     Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
    ///         graph.visualize(dir.path().join("graph.dot"))?;
    ///     }
    ///     Err(err) => return Err(err),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn visualize(&self, path: impl AsRef<Path>) -> io::Result<PathBuf> {
        let path = path.as_ref();
        let format = Format::of(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot draw the graph to `{}`: use a {SUPPORTED} file",
                    path.display()
                ),
            )
        })?;
        let dot = self.to_dot();
        match format {
            Format::Dot => std::fs::write(path, dot).map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("could not write `{}`: {err}", path.display()),
                )
            })?,
            Format::Rendered(format) => run_dot(&dot, format, path)?,
        }
        Ok(path.to_path_buf())
    }
}

/// What `visualize` writes, by extension.
enum Format {
    /// The DOT text itself.
    Dot,
    /// An image from `dot -T<format>`.
    Rendered(&'static str),
}

impl Format {
    fn of(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "dot" | "gv" => Format::Dot,
            "svg" => Format::Rendered("svg"),
            "png" => Format::Rendered("png"),
            "pdf" => Format::Rendered("pdf"),
            _ => return None,
        })
    }
}

/// Runs `dot -T<format> -o <path>` with `dot` on its stdin.
fn run_dot(dot: &str, format: &str, path: &Path) -> io::Result<()> {
    let mut child = Command::new("dot")
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => io::Error::new(io::ErrorKind::NotFound, DOT_NOT_FOUND),
            kind => io::Error::new(kind, format!("could not run Graphviz's `dot`: {err}")),
        })?;
    // Feed stdin from another thread while this one drains stderr, so that
    // neither side can fill a pipe and wait for the other forever.
    let stdin = child.stdin.take();
    let (fed, output) = thread::scope(|scope| {
        let feeder = thread::Builder::new()
            .name("delayed-visualize".to_string())
            .spawn_scoped(scope, move || match stdin {
                // Dropping stdin at the end closes it: `dot` sees the end.
                Some(mut stdin) => stdin.write_all(dot.as_bytes()),
                None => Ok(()),
            });
        let output = child.wait_with_output();
        let fed = match feeder {
            Ok(feeder) => feeder
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the writing thread panicked"))),
            Err(err) => Err(err),
        };
        (fed, output)
    });
    let output = output.map_err(|err| {
        io::Error::new(err.kind(), format!("could not run Graphviz's `dot`: {err}"))
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(io::Error::other(format!(
            "Graphviz's `dot -T{format}` failed ({}) drawing `{}`: {}",
            output.status,
            path.display(),
            stderr.trim()
        )));
    }
    fed.map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("could not send the graph to Graphviz's `dot`: {err}"),
        )
    })
}

/// What the renderer needs of one node; a `GraphNode`, or a made-up one in
/// the unit tests.
struct Item<'a> {
    key: &'a Key,
    deps: &'a [Key],
    state: TaskState,
    /// For a failed node, the key of the task that failed first.
    cause: Option<&'a Key>,
    /// How long the node ran, when the graph came from a timeline.
    duration: Option<Duration>,
}

fn render(items: &[Item<'_>], collapse_above: Option<usize>) -> String {
    let mut out = String::new();
    out.push_str("digraph delayed {\n");
    // Bottom to top: inputs at the bottom and the result on top, as dask's
    // `visualize` draws graphs, so pictures read the same in both. A deep
    // graph grows upwards and a wide one sideways, which suits the usual
    // shapes: long pipelines and fan-ins (wide fan-ins get collapsed).
    out.push_str("    rankdir=BT;\n");
    out.push_str(
        "    node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", \
         color=\"#4d4d4d\"];\n",
    );
    out.push_str("    edge [color=\"#4d4d4d\", fontname=\"Helvetica\"];\n");
    push_legend(&mut out);
    match collapse_above {
        Some(threshold) if items.len() > threshold => collapsed(items, &mut out),
        _ => full(items, &mut out),
    }
    out.push_str("}\n");
    out
}

/// One DOT node per graph node.
fn full(items: &[Item<'_>], out: &mut String) {
    let mut states: HashMap<&Key, TaskState> = HashMap::with_capacity(items.len());
    for item in items {
        states.entry(item.key).or_insert(item.state);
    }
    let failed = |key: &Key| states.get(key) == Some(&TaskState::Failed);
    let mut drawn = HashSet::with_capacity(items.len());
    for item in items {
        let key = item.key.to_string();
        if !drawn.insert(key.clone()) {
            continue;
        }
        let name = item.key.name();
        let mut label = if key == name {
            key.clone()
        } else {
            format!("{name}\n{key}")
        };
        if let Some(duration) = item.duration {
            label.push('\n');
            label.push_str(&format_duration(duration));
        }
        out.push_str("    ");
        push_id(out, &key);
        out.push_str(" [label=");
        push_label(out, &label);
        out.push_str(", fillcolor=\"");
        out.push_str(fill(item.state));
        out.push('"');
        if is_root_cause(item, failed) {
            push_root_cause(out);
        }
        out.push_str("];\n");
    }
    // A failed node keeps the inputs that failed it, but the root cause may
    // still be missing from its inputs (a graph merged from several
    // snapshots, a compute that did not fail its dependents): draw where
    // each such failure came from.
    for item in items {
        let Some(cause) = item.cause else { continue };
        if item.state != TaskState::Failed || cause == item.key || item.deps.iter().any(failed) {
            continue;
        }
        if states.contains_key(cause) {
            out.push_str("    ");
            push_id(out, &cause.to_string());
            out.push_str(" -> ");
            push_id(out, &item.key.to_string());
            out.push_str(concat!(
                " [label=\"failed by\", color=\"",
                red!(),
                "\", style=\"dashed,bold\", constraint=false];\n"
            ));
        }
    }
    for item in items {
        let key = item.key.to_string();
        for dep in item.deps {
            out.push_str("    ");
            push_id(out, &dep.to_string());
            out.push_str(" -> ");
            push_id(out, &key);
            if item.state == TaskState::Failed && failed(dep) {
                push_failed_edge(out);
            }
            out.push_str(";\n");
        }
    }
}

/// A failed node that failed by itself, not because of an input.
fn is_root_cause(item: &Item<'_>, failed: impl Fn(&Key) -> bool) -> bool {
    item.state == TaskState::Failed
        && match item.cause {
            Some(cause) => cause == item.key,
            None => !item.deps.iter().any(failed),
        }
}

/// One DOT node per function name.
fn collapsed(items: &[Item<'_>], out: &mut String) {
    struct Group {
        name: &'static str,
        counts: [usize; STATES],
        root_cause: bool,
    }
    struct Edge {
        count: usize,
        failed: bool,
    }

    let mut groups: Vec<Group> = Vec::new();
    let mut group_of_name: HashMap<&'static str, usize> = HashMap::new();
    let mut group_of_key: HashMap<&Key, (usize, TaskState)> = HashMap::with_capacity(items.len());
    for item in items {
        let group = *group_of_name.entry(item.key.name()).or_insert_with(|| {
            groups.push(Group {
                name: item.key.name(),
                counts: [0; STATES],
                root_cause: false,
            });
            groups.len() - 1
        });
        groups[group].counts[index(item.state)] += 1;
        group_of_key.entry(item.key).or_insert((group, item.state));
    }

    let mut edges: BTreeMap<(usize, usize), Edge> = BTreeMap::new();
    for item in items {
        let (to, _) = group_of_key[item.key];
        let mut failed_input = false;
        for dep in item.deps {
            let Some(&(from, dep_state)) = group_of_key.get(dep) else {
                continue;
            };
            let failed = item.state == TaskState::Failed && dep_state == TaskState::Failed;
            failed_input |= dep_state == TaskState::Failed;
            let edge = edges.entry((from, to)).or_insert(Edge {
                count: 0,
                failed: false,
            });
            edge.count += 1;
            edge.failed |= failed;
        }
        let own = item.cause.map_or(!failed_input, |cause| cause == item.key);
        if item.state == TaskState::Failed && own {
            groups[to].root_cause = true;
        }
    }

    for group in &groups {
        let total: usize = group.counts.iter().sum();
        let per_state: Vec<String> = ORDER
            .iter()
            .filter(|&&state| group.counts[index(state)] > 0)
            .map(|&state| format!("{state} {}", group.counts[index(state)]))
            .collect();
        let worst = ORDER
            .iter()
            .copied()
            .filter(|&state| group.counts[index(state)] > 0)
            .max_by_key(|&state| severity(state))
            .unwrap_or(TaskState::Waiting);
        out.push_str("    ");
        push_id(out, group.name);
        out.push_str(" [label=");
        push_label(
            out,
            &format!("{} ×{total}\n{}", group.name, per_state.join(", ")),
        );
        out.push_str(", fillcolor=\"");
        out.push_str(fill(worst));
        out.push('"');
        if group.root_cause {
            push_root_cause(out);
        }
        out.push_str("];\n");
    }
    for (&(from, to), edge) in &edges {
        out.push_str("    ");
        push_id(out, groups[from].name);
        out.push_str(" -> ");
        push_id(out, groups[to].name);
        match (edge.count > 1, edge.failed) {
            (false, false) => {}
            (true, false) => out.push_str(&format!(" [label=\"×{}\"]", edge.count)),
            (false, true) => push_failed_edge(out),
            (true, true) => {
                out.push_str(&format!(" [label=\"×{}\", ", edge.count));
                out.push_str(FAILED_EDGE);
                out.push(']');
            }
        }
        out.push_str(";\n");
    }
}

/// How many states there are.
const STATES: usize = 6;

/// The states in the order their counts are listed.
const ORDER: [TaskState; STATES] = [
    TaskState::Waiting,
    TaskState::Running,
    TaskState::Done,
    TaskState::Cached,
    TaskState::Failed,
    TaskState::Cancelled,
];

/// A state's place in `ORDER`.
fn index(state: TaskState) -> usize {
    match state {
        TaskState::Waiting => 0,
        TaskState::Running => 1,
        TaskState::Done => 2,
        TaskState::Cached => 3,
        TaskState::Failed => 4,
        TaskState::Cancelled => 5,
    }
}

/// Which state colours a collapsed box: the highest wins.
fn severity(state: TaskState) -> u8 {
    match state {
        TaskState::Done | TaskState::Cached => 0,
        TaskState::Waiting => 1,
        TaskState::Cancelled => 2,
        TaskState::Running => 3,
        TaskState::Failed => 4,
    }
}

/// The fill colour of a state (ColorBrewer's light tones, which keep black
/// text readable).
fn fill(state: TaskState) -> &'static str {
    match state {
        TaskState::Waiting => "#e0e0e0",
        TaskState::Running => "#a6cee3",
        TaskState::Done => "#b2df8a",
        TaskState::Cached => "#cab2d6",
        TaskState::Failed => "#fb9a99",
        TaskState::Cancelled => "#fdbf6f",
    }
}

/// The legend, as the graph's label at the top left: each state's fill
/// colour, the border of a root cause and the colour of a failure path.
/// A label, not nodes, so that it cannot clash with a key.
fn push_legend(out: &mut String) {
    out.push_str(
        "    labelloc=\"t\";\n    labeljust=\"l\";\n    fontname=\"Helvetica\";\n    \
         fontsize=10;\n",
    );
    out.push_str(
        "    label=<<table border=\"0\" cellborder=\"1\" cellspacing=\"3\" \
         cellpadding=\"3\"><tr><td border=\"0\">state</td>",
    );
    for state in ORDER {
        out.push_str("<td bgcolor=\"");
        out.push_str(fill(state));
        out.push_str("\">");
        out.push_str(&state.to_string());
        out.push_str("</td>");
    }
    out.push_str(concat!(
        "<td bgcolor=\"#fb9a99\" color=\"",
        red!(),
        "\" border=\"3\">root cause</td><td border=\"0\"><font color=\"",
        red!(),
        "\"><b>&#8594;</b> failure path</font></td></tr></table>>;\n"
    ));
}

/// The attributes of an edge along a failure.
const FAILED_EDGE: &str = concat!("color=\"", red!(), "\", style=bold");

fn push_root_cause(out: &mut String) {
    out.push_str(concat!(", color=\"", red!(), "\", penwidth=3"));
}

fn push_failed_edge(out: &mut String) {
    out.push_str(" [");
    out.push_str(FAILED_EDGE);
    out.push(']');
}

/// Writes `s` as a quoted DOT ID. Only `\"` is an escape in a DOT ID, but
/// escaping backslashes too keeps a trailing one from eating the closing
/// quote, and the ID stays one-to-one with the key.
fn push_id(out: &mut String, s: &str) {
    push_quoted(out, s, false);
}

/// Writes `s` as a quoted DOT label: as an ID, and `&` as an entity, since
/// Graphviz turns `&amp;`-style entities in labels into characters.
fn push_label(out: &mut String, s: &str) {
    push_quoted(out, s, true);
}

fn push_quoted(out: &mut String, s: &str, label: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '&' if label => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::key::KeyId;

    fn key(name: &'static str, id: &str) -> Key {
        Key::new(name, KeyId::Custom(Arc::from(id)))
    }

    fn quoted(s: &str, label: bool) -> String {
        let mut out = String::new();
        push_quoted(&mut out, s, label);
        out
    }

    #[test]
    fn ids_and_labels_are_escaped() {
        assert_eq!(quoted("plain", false), r#""plain""#);
        assert_eq!(
            quoted("a \"quoted\" \\ key\nline\r", false),
            r#""a \"quoted\" \\ key\nline\r""#
        );
        assert_eq!(quoted("ends with \\", false), r#""ends with \\""#);
        assert_eq!(quoted("a & b", false), r#""a & b""#);
        assert_eq!(quoted("a & b", true), r#""a &amp; b""#);
    }

    #[test]
    fn distinct_keys_get_distinct_ids() {
        let keys = ["a\nb", "a\\nb", "a\\\nb", "a\"b", "a\\\"b", "a\\", "a"];
        let ids: HashSet<String> = keys.iter().map(|k| quoted(k, false)).collect();
        assert_eq!(ids.len(), keys.len());
    }

    #[test]
    fn failure_paths_are_red_and_root_causes_bold() {
        let load = key("load", "load");
        let clean = key("clean", "clean");
        let other = key("other", "other");
        let store = key("store", "store");
        let load_deps = [];
        let clean_deps = [load.clone()];
        let store_deps = [clean.clone(), other.clone()];
        let items = [
            Item {
                key: &load,
                deps: &load_deps,
                state: TaskState::Failed,
                cause: Some(&load),
                duration: None,
            },
            Item {
                key: &other,
                deps: &load_deps,
                state: TaskState::Done,
                cause: None,
                duration: None,
            },
            Item {
                key: &clean,
                deps: &clean_deps,
                state: TaskState::Failed,
                cause: Some(&load),
                duration: None,
            },
            Item {
                key: &store,
                deps: &store_deps,
                state: TaskState::Failed,
                cause: Some(&load),
                duration: None,
            },
        ];
        let dot = render(&items, None);
        let line = |start: &str| {
            dot.lines()
                .find(|line| line.trim_start().starts_with(start))
                .unwrap_or_else(|| panic!("no line starting with {start} in\n{dot}"))
                .to_string()
        };
        assert!(line(r#""load" ["#).contains("penwidth=3"));
        assert!(!line(r#""clean" ["#).contains("penwidth"));
        assert!(!line(r#""store" ["#).contains("penwidth"));
        assert!(line(r#""load" -> "clean""#).contains(red!()));
        assert!(line(r#""clean" -> "store""#).contains(red!()));
        assert!(!line(r#""other" -> "store""#).contains(red!()));

        assert!(
            !dot.contains("failed by"),
            "the failed inputs are drawn: no shortcut"
        );

        // After a compute, failed nodes have let go of their inputs: the
        // failure is traced back to its root cause by a dashed edge.
        let released = [
            Item {
                key: &load,
                deps: &[],
                state: TaskState::Failed,
                cause: Some(&load),
                duration: None,
            },
            Item {
                key: &store,
                deps: &[],
                state: TaskState::Failed,
                cause: Some(&load),
                duration: None,
            },
        ];
        let traced = render(&released, None);
        let edge = traced
            .lines()
            .find(|l| l.contains(r#""load" -> "store""#))
            .expect(&traced);
        assert!(edge.contains("failed by") && edge.contains(red!()));
        assert!(line(r#""load" ["#).contains("penwidth=3"));

        let dot = render(&items, Some(1));
        assert!(dot.contains("load ×1\\nfailed 1"), "{dot}");
        let load_box = dot.lines().find(|l| l.contains("load ×1")).unwrap();
        assert!(load_box.contains("penwidth=3"));
        let store_box = dot.lines().find(|l| l.contains("store ×1")).unwrap();
        assert!(!store_box.contains("penwidth=3"));
    }

    #[test]
    fn collapsed_boxes_take_the_worst_colour() {
        let keys: Vec<Key> = (0..4).map(|i| key("inc", &format!("inc-{i}"))).collect();
        let states = [
            TaskState::Done,
            TaskState::Waiting,
            TaskState::Cancelled,
            TaskState::Done,
        ];
        let items: Vec<Item<'_>> = keys
            .iter()
            .zip(states)
            .map(|(key, state)| Item {
                key,
                deps: &[],
                state,
                cause: None,
                duration: None,
            })
            .collect();
        let dot = render(&items, Some(2));
        assert!(dot.contains(r#"label="inc ×4\nwaiting 1, done 2, cancelled 1""#));
        assert!(dot.contains(fill(TaskState::Cancelled)));
        for (worst, state) in [
            (TaskState::Running, TaskState::Cancelled),
            (TaskState::Failed, TaskState::Running),
        ] {
            assert!(severity(worst) > severity(state));
        }
        assert!(severity(TaskState::Waiting) > severity(TaskState::Done));
    }
}
