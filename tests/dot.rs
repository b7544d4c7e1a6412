//! Graphviz output: `Graph::to_dot` read back by a small DOT reader, in
//! every task state, with awkward keys, collapsed; and `visualize`, with or
//! without Graphviz installed.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use delayed::{delayed, Delayed, Graph, TaskState};
use tokio::time::{sleep, timeout};

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

#[delayed]
fn double(x: u64) -> u64 {
    x * 2
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[delayed]
fn leaf(i: u64) -> u64 {
    i
}

#[delayed]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed]
fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
    s.parse()
}

#[delayed]
async fn slow(ms: u64, x: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    x
}

// ---------------------------------------------------------------------------
// A DOT reader: just enough for what `to_dot` writes.

type Attrs = HashMap<String, String>;

#[derive(Debug, Default)]
struct Dot {
    graph: Attrs,
    nodes: Vec<(String, Attrs)>,
    edges: Vec<(String, String, Attrs)>,
}

impl Dot {
    fn node(&self, id: &str) -> &Attrs {
        let found: Vec<_> = self.nodes.iter().filter(|(n, _)| n == id).collect();
        assert_eq!(found.len(), 1, "node {id:?} should appear once");
        &found[0].1
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    /// A quoted string, unescaped, or a bare word.
    Id(String),
    Punct(&'static str),
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next().expect("unterminated string") {
                        '"' => break,
                        '\\' => match chars.next().expect("dangling backslash") {
                            '"' => s.push('"'),
                            '\\' => s.push('\\'),
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            other => panic!("unexpected escape \\{other}"),
                        },
                        '\n' => panic!("raw newline in a quoted string"),
                        c => s.push(c),
                    }
                }
                out.push(Token::Id(s));
            }
            '<' => {
                // An HTML string, `<...>` with balanced brackets: kept as
                // it is, brackets included.
                let mut s = String::from('<');
                let mut depth = 1;
                while depth > 0 {
                    let c = chars.next().expect("unterminated HTML string");
                    match c {
                        '<' => depth += 1,
                        '>' => depth -= 1,
                        _ => {}
                    }
                    s.push(c);
                }
                out.push(Token::Id(s));
            }
            '-' if chars.peek() == Some(&'>') => {
                chars.next();
                out.push(Token::Punct("->"));
            }
            '{' => out.push(Token::Punct("{")),
            '}' => out.push(Token::Punct("}")),
            '[' => out.push(Token::Punct("[")),
            ']' => out.push(Token::Punct("]")),
            '=' => out.push(Token::Punct("=")),
            ',' => out.push(Token::Punct(",")),
            ';' => out.push(Token::Punct(";")),
            c if c.is_alphanumeric() || c == '_' || c == '.' => {
                let mut s = c.to_string();
                while let Some(&c) = chars.peek() {
                    if !(c.is_alphanumeric() || c == '_' || c == '.') {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(Token::Id(s));
            }
            c => panic!("unexpected character {c:?}"),
        }
    }
    out
}

fn parse_dot(text: &str) -> Dot {
    let tokens = tokens(text);
    let mut at = 0;
    let mut next = || {
        let token = tokens.get(at).cloned();
        at += 1;
        token
    };
    let id = |token: Option<Token>| match token {
        Some(Token::Id(s)) => s,
        other => panic!("expected an ID, found {other:?}"),
    };
    assert_eq!(next(), Some(Token::Id("digraph".into())));
    assert_eq!(next(), Some(Token::Id("delayed".into())));
    assert_eq!(next(), Some(Token::Punct("{")));
    let mut dot = Dot::default();
    loop {
        let first = match next() {
            Some(Token::Punct("}")) => break,
            token => id(token),
        };
        let mut attrs = Attrs::new();
        let mut target = None;
        let mut token = next();
        if token == Some(Token::Punct("=")) {
            dot.graph.insert(first, id(next()));
            assert_eq!(next(), Some(Token::Punct(";")));
            continue;
        }
        if token == Some(Token::Punct("->")) {
            target = Some(id(next()));
            token = next();
        }
        if token == Some(Token::Punct("[")) {
            loop {
                let name = id(next());
                assert_eq!(next(), Some(Token::Punct("=")));
                let value = id(next());
                if name == "label" {
                    attrs.insert(name, value.replace("&amp;", "&"));
                } else {
                    attrs.insert(name, value);
                }
                match next() {
                    Some(Token::Punct(",")) => {}
                    Some(Token::Punct("]")) => break,
                    other => panic!("expected , or ], found {other:?}"),
                }
            }
            token = next();
        }
        assert_eq!(token, Some(Token::Punct(";")), "statement ends with ;");
        match (first.as_str(), target) {
            ("node" | "edge", None) => {}
            (_, Some(target)) => dot.edges.push((first, target, attrs)),
            (_, None) => dot.nodes.push((first, attrs)),
        }
    }
    assert_eq!(next(), None, "nothing after the closing brace");
    dot
}

// ---------------------------------------------------------------------------
// Checks.

fn fill(state: TaskState) -> &'static str {
    match state {
        TaskState::Waiting => "#e0e0e0",
        TaskState::Running => "#a6cee3",
        TaskState::Done => "#b2df8a",
        TaskState::Failed => "#fb9a99",
        TaskState::Cancelled => "#fdbf6f",
        other => panic!("no colour for {other}"),
    }
}

const RED: &str = "#d7191c";

fn graphviz_installed() -> bool {
    Command::new("dot")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Renders `dot` to SVG when Graphviz is installed, and checks it worked.
fn renders(dot: &str) {
    if !graphviz_installed() {
        return;
    }
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = dot.to_string();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "dot failed: {stderr}\n{dot}");
    assert!(stderr.trim().is_empty(), "dot warned: {stderr}\n{dot}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("<svg"));
}

/// Reads `graph.to_dot()` back and checks it against the snapshot: one
/// node per key, labelled and coloured by state, root causes outlined, and
/// one edge per input, red along failures.
fn check(graph: &Graph) -> Dot {
    let text = graph.to_dot();
    let dot = parse_dot(&text);
    assert_eq!(dot.graph.get("rankdir").map(String::as_str), Some("BT"));
    legend(&dot);
    assert_eq!(dot.nodes.len(), graph.nodes().len(), "{text}");
    let state_of: HashMap<String, TaskState> = graph
        .nodes()
        .iter()
        .map(|node| (node.key().to_string(), node.state()))
        .collect();
    let failed = |key: &str| state_of[key] == TaskState::Failed;

    let mut expected_edges = Vec::new();
    for node in graph.nodes() {
        let key = node.key().to_string();
        let attrs = dot.node(&key);
        let label = if key == node.name() {
            key.clone()
        } else {
            format!("{}\n{key}", node.name())
        };
        match node.duration() {
            // A timed node adds its run time on a line of its own.
            Some(_) => assert!(attrs["label"].starts_with(&format!("{label}\n")), "{key}"),
            None => assert_eq!(attrs["label"], label),
        }
        assert_eq!(attrs["fillcolor"], fill(node.state()), "{key}");
        let deps: Vec<String> = node.deps().iter().map(|d| d.to_string()).collect();
        // The error names the task that failed first: the root cause is the
        // failed node whose error is its own.
        let cause = node.error().map(|err| err.key().to_string());
        let root_cause = cause.as_deref() == Some(key.as_str());
        assert_eq!(attrs.get("penwidth").is_some(), root_cause, "{key}");
        if root_cause {
            assert_eq!(attrs["color"], RED);
        }
        // A failed node that let go of its inputs is traced to its cause.
        if let Some(cause) = cause {
            if cause != key && !deps.iter().any(|d| failed(d)) && state_of.contains_key(&cause) {
                expected_edges.push((cause, key.clone()));
            }
        }
        for dep in deps {
            expected_edges.push((dep, key.clone()));
        }
    }
    let mut edges: Vec<(String, String)> = dot
        .edges
        .iter()
        .map(|(from, to, attrs)| {
            let red = failed(from) && failed(to);
            assert_eq!(attrs.get("color").map(String::as_str), red.then_some(RED));
            (from.clone(), to.clone())
        })
        .collect();
    edges.sort();
    expected_edges.sort();
    assert_eq!(edges, expected_edges);
    renders(&text);
    dot
}

/// The legend, the graph's label: a cell per state in its fill colour,
/// and the root cause's red border.
fn legend(dot: &Dot) {
    let label = &dot.graph["label"];
    assert!(
        label.starts_with("<<table") && label.ends_with("</table>>"),
        "{label}"
    );
    for state in [
        TaskState::Waiting,
        TaskState::Running,
        TaskState::Done,
        TaskState::Failed,
        TaskState::Cancelled,
    ] {
        let cell = format!(r#"<td bgcolor="{}">{state}</td>"#, fill(state));
        assert!(label.contains(&cell), "{cell} in {label}");
    }
    assert!(
        label.contains(&format!(r#"color="{RED}" border="3">root cause</td>"#)),
        "{label}"
    );
    assert_eq!(dot.graph["labelloc"], "t");
}

fn states(graph: &Graph) -> HashMap<String, TaskState> {
    graph
        .nodes()
        .iter()
        .map(|node| (node.key().to_string(), node.state()))
        .collect()
}

// ---------------------------------------------------------------------------
// States.

/// a → b, a → c, (b, c) → d.
fn diamond() -> (Delayed<u64>, Delayed<u64>, Delayed<u64>, Delayed<u64>) {
    let a = inc(1).named("a");
    let b = inc(&a).named("b");
    let c = double(&a).named("c");
    let d = add(&b, &c).named("d");
    (a, b, c, d)
}

#[test]
fn a_waiting_graph_reads_back() {
    let (_, _, _, d) = diamond();
    let graph = d.graph();
    assert_eq!(graph.count(TaskState::Waiting), 4);
    let dot = check(&graph);
    assert_eq!(dot.edges.len(), 4);
    assert_eq!(dot.node("b")["label"], "inc\nb");
}

#[tokio::test]
async fn done_nodes_are_green() {
    let (_, b, _, d) = diamond();
    b.compute().await.unwrap();
    let graph = d.graph();
    let states = states(&graph);
    assert_eq!(states["a"], TaskState::Done);
    assert_eq!(states["b"], TaskState::Done);
    assert_eq!(states["c"], TaskState::Waiting);
    check(&graph);

    d.compute().await.unwrap();
    let graph = d.graph();
    assert_eq!(graph.count(TaskState::Done), graph.nodes().len());
    check(&graph);
}

#[tokio::test]
async fn failed_nodes_are_red() {
    let bad = parse("x".to_string()).named("bad");
    let dependent = inc(&bad).named("dependent");
    assert!(dependent.compute().await.is_err());
    let top = add(&bad, &dependent).named("top");
    let graph = top.graph();
    let states = states(&graph);
    assert_eq!(states["bad"], TaskState::Failed);
    assert_eq!(states["dependent"], TaskState::Failed);
    assert_eq!(states["top"], TaskState::Waiting);
    let dot = check(&graph);
    assert_eq!(dot.node("bad")["color"], RED);
}

#[tokio::test(start_paused = true)]
async fn cancelled_nodes_are_orange() {
    let node = slow(100, 7).named("slow");
    let user = inc(&node).named("user");
    assert!(timeout(Duration::from_millis(10), user.compute())
        .await
        .is_err());
    tokio::task::yield_now().await;
    let graph = user.graph();
    assert_eq!(states(&graph)["slow"], TaskState::Cancelled);
    check(&graph);
}

#[tokio::test(start_paused = true)]
async fn running_nodes_are_blue() {
    let node = slow(1_000, 7).named("slow");
    let user = inc(&node).named("user");
    let running = user.persist();
    tokio::task::yield_now().await;
    let graph = user.graph();
    let states = states(&graph);
    assert_eq!(states["slow"], TaskState::Running);
    assert_eq!(states["user"], TaskState::Waiting);
    check(&graph);
    assert_eq!(running.compute().await.unwrap(), 8);
}

// ---------------------------------------------------------------------------
// Escaping.

#[test]
fn awkward_keys_round_trip() {
    let key = "a \"quoted\" \\ key\nline";
    let x = Delayed::value(1_u64).named(key);
    let ends = inc(&x).named("ends with \\");
    let amp = double(&ends).named("a &amp; b");
    let graph = amp.graph();
    let dot = check(&graph);
    assert_eq!(dot.node(key)["label"], format!("value\n{key}"));
    assert_eq!(dot.node("a &amp; b")["label"], "double\na &amp; b");
    assert!(dot
        .edges
        .iter()
        .any(|(from, to, _)| from == key && to == "ends with \\"));
}

// ---------------------------------------------------------------------------
// Collapsing.

fn fan_in(leaves: u64) -> Delayed<u64> {
    total((0..leaves).map(leaf).collect::<Vec<_>>())
}

#[test]
fn large_graphs_collapse_by_name() {
    // 2,000 leaves and `total` (the `list` node that gathers them into a
    // `Vec` is the crate's, and not drawn).
    let sum = fan_in(2_000);
    let graph = sum.graph();
    assert_eq!(graph.nodes().len(), 2_001);

    let text = graph.to_dot();
    let dot = parse_dot(&text);
    legend(&dot);
    let ids: Vec<&str> = dot.nodes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["leaf", "total"]);
    assert_eq!(dot.node("leaf")["label"], "leaf ×2000\nwaiting 2000");
    assert_eq!(dot.node("total")["label"], "total ×1\nwaiting 1");
    assert_eq!(dot.node("leaf")["fillcolor"], fill(TaskState::Waiting));
    let edges: Vec<(&str, &str, Option<&str>)> = dot
        .edges
        .iter()
        .map(|(from, to, attrs)| {
            (
                from.as_str(),
                to.as_str(),
                attrs.get("label").map(String::as_str),
            )
        })
        .collect();
    assert_eq!(edges, [("leaf", "total", Some("×2000"))]);
    renders(&text);

    let full = parse_dot(&graph.to_dot_collapse_above(None));
    assert_eq!(full.nodes.len(), 2_001);
    assert_eq!(full.edges.len(), 2_000);
    assert!(full.edges.iter().all(|(_, _, attrs)| attrs.is_empty()));

    let raised = parse_dot(&graph.to_dot_collapse_above(Some(2_001)));
    assert_eq!(raised.nodes.len(), 2_001);
    let lowered = parse_dot(&graph.to_dot_collapse_above(Some(2_000)));
    assert_eq!(lowered.nodes.len(), 2);
}

#[test]
fn small_graphs_stay_whole() {
    let graph = fan_in(Graph::DOT_COLLAPSE_ABOVE as u64 - 1).graph();
    assert_eq!(graph.nodes().len(), Graph::DOT_COLLAPSE_ABOVE);
    check(&graph);
}

#[tokio::test]
async fn collapsed_groups_count_states_and_take_the_worst_colour() {
    let leaves: Vec<_> = (0..1_500).map(leaf).collect();
    let bad = parse("x".to_string()).named("bad");
    let _ = bad.compute().await;
    for node in &leaves[..10] {
        node.compute().await.unwrap();
    }
    let sums: Vec<_> = leaves
        .chunks(500)
        .map(|chunk| total(chunk.to_vec()))
        .collect();
    let top = add(add(total(sums), &bad), 1);
    let text = top.graph().to_dot();
    let dot = parse_dot(&text);
    let ids: Vec<&str> = dot.nodes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["leaf", "total", "parse", "add"]);
    assert_eq!(
        dot.node("leaf")["label"],
        "leaf ×1500\nwaiting 1490, done 10"
    );
    assert_eq!(dot.node("leaf")["fillcolor"], fill(TaskState::Waiting));
    assert_eq!(dot.node("total")["label"], "total ×4\nwaiting 4");
    assert_eq!(dot.node("parse")["fillcolor"], fill(TaskState::Failed));
    assert_eq!(dot.node("parse")["color"], RED);
    let edge = |from: &str, to: &str| {
        let found: Vec<_> = dot
            .edges
            .iter()
            .filter(|(f, t, _)| f == from && t == to)
            .collect();
        assert_eq!(found.len(), 1, "one edge {from} -> {to}");
        found[0].2.clone()
    };
    assert_eq!(edge("leaf", "total")["label"], "×1500");
    assert_eq!(edge("total", "total")["label"], "×3");
    assert_eq!(edge("total", "add").get("label"), None);
    assert_eq!(edge("parse", "add").get("color"), None);
    assert_eq!(edge("add", "add").get("label"), None);
    renders(&text);
}

// ---------------------------------------------------------------------------
// visualize.

#[test]
fn visualize_writes_dot_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, _, d) = diamond();
    for name in ["graph.dot", "graph.gv", "GRAPH.DOT"] {
        let path = dir.path().join(name);
        assert_eq!(d.visualize(&path).unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), d.graph().to_dot());
    }
}

#[test]
fn visualize_renders_images_or_says_how_to_install_graphviz() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, _, d) = diamond();
    let path = dir.path().join("graph.svg");
    let result = d.visualize(&path);
    if graphviz_installed() {
        assert_eq!(result.unwrap(), path);
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"), "{svg}");
        for format in ["png", "pdf"] {
            let path = dir.path().join(format!("graph.{format}"));
            d.visualize(&path).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() > 0);
        }
    } else {
        let message = result.unwrap_err().to_string();
        assert!(message.contains("apt-get install graphviz"), "{message}");
        assert!(message.contains("brew install graphviz"), "{message}");
        assert!(!path.exists());
    }
}

#[test]
fn visualize_rejects_unknown_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let x = inc(1);
    for name in ["graph.jpg", "graph", "graph.dot.txt"] {
        let path = dir.path().join(name);
        let message = x.visualize(&path).unwrap_err().to_string();
        assert!(message.contains(name), "{message}");
        assert!(message.contains("`.svg`"), "{message}");
        assert!(!path.exists());
    }
}

#[test]
fn visualize_reports_write_errors() {
    let dir = tempfile::tempdir().unwrap();
    let x = inc(1);
    let path = dir.path().join("missing").join("graph.dot");
    let message = x.visualize(&path).unwrap_err().to_string();
    assert!(message.contains("could not write"), "{message}");
    if graphviz_installed() {
        let path = dir.path().join("missing").join("graph.svg");
        let message = x.visualize(&path).unwrap_err().to_string();
        assert!(message.contains("failed"), "{message}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeline_graph_shows_run_times_edges_and_the_failure_path() {
    use std::sync::Arc;

    use delayed::{Options, Timeline};

    let timeline = Arc::new(Timeline::new());
    let a = slow(20, 1).named("a");
    let done = a
        .compute_with(Options::new().callback(timeline.clone()))
        .await;
    assert_eq!(done.unwrap(), 1);
    let bad = parse("x".to_string()).named("bad");
    let top = add(&a, inc(&bad).named("inc")).named("top");
    let options = Options::new().callback(timeline.clone());
    assert!(top.compute_with(options).await.is_err());

    let graph = timeline.graph();
    // The failed dependents never ran: they fail with the root cause's error.
    assert_eq!(graph.get("inc").unwrap().state(), TaskState::Failed);
    assert_eq!(
        graph.get("top").unwrap().error().unwrap().key().to_string(),
        "bad"
    );
    let dot = graph.to_dot();
    let parsed = check(&graph);
    assert!(parsed.node("a")["label"].ends_with("\n20 ms"), "{dot}");
    assert!(
        dot.contains(r#""bad" -> "inc""#) && dot.contains(r#""inc" -> "top""#),
        "{dot}"
    );
    assert!(dot.contains(r#""a" -> "top""#), "{dot}");
    assert_eq!(
        parsed.node("bad").get("penwidth").map(String::as_str),
        Some("3")
    );
    assert!(!parsed.node("top").contains_key("penwidth"));
}

#[tokio::test]
async fn after_a_failed_compute_the_picture_shows_the_root_cause_and_the_failure_path() {
    // a -> b -> c, and `a` fails: three red boxes, `a` outlined, red edges.
    let a = parse("x".to_string()).named("a");
    let b = inc(&a).named("b");
    let c = double(&b).named("c");
    drop((a, b));
    assert!(c.compute().await.is_err());
    let graph = c.graph();
    let dot = check(&graph);
    assert_eq!(dot.nodes.len(), 3);
    assert_eq!(dot.node("a")["penwidth"], "3");
    assert!(!dot.node("b").contains_key("penwidth"));
    assert!(!dot.node("c").contains_key("penwidth"));
    let mut edges: Vec<(&str, &str, &str)> = dot
        .edges
        .iter()
        .map(|(from, to, attrs)| (from.as_str(), to.as_str(), attrs["color"].as_str()))
        .collect();
    edges.sort();
    assert_eq!(edges, [("a", "b", RED), ("b", "c", RED)]);

    let dir = tempfile::tempdir().unwrap();
    let path = c.visualize(dir.path().join("failed.dot")).unwrap();
    assert_eq!(std::fs::read_to_string(path).unwrap(), graph.to_dot());
}

#[test]
fn literals_and_joins_are_not_drawn() {
    let a = inc(1).named("a");
    let b = add(Delayed::value(2), &a).named("b");
    let sum = total(vec![a.clone(), b.clone()]).named("sum");
    let both = delayed::join((sum, Delayed::value(7)))
        .map(|(s, x)| s + x)
        .named("top");
    let graph = both.graph();
    let dot = check(&graph);
    let ids: Vec<&str> = dot.nodes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "sum", "top"]);
    let mut edges: Vec<(&str, &str)> = dot
        .edges
        .iter()
        .map(|(from, to, _)| (from.as_str(), to.as_str()))
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        [("a", "b"), ("a", "sum"), ("b", "sum"), ("sum", "top")]
    );
}
