//! Timeline profiling: which task ran on which thread, and when.
//!
//! [`Timeline`] is a [`Callback`] that records every task's start, end,
//! thread and outcome, then draws them as a Chrome trace (for Perfetto or
//! `chrome://tracing`) or as an SVG Gantt chart, like dask's `Profiler`
//! and `visualize`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use tokio::time::Instant;

use crate::callback::{Callback, Outcome, TaskFinished, TaskStarted};
use crate::{Error, Graph, Key};

/// A profiler that records when and where each task of a compute ran, and
/// draws the result as a Chrome trace or an SVG Gantt chart.
///
/// Attach it to a compute with [`Options::callback`](crate::Options::callback),
/// or to every compute in a scope with [`observe`](crate::observe()). Keep an
/// `Arc` to read it afterwards. Times are offsets from the first compute
/// it saw start, on tokio's clock, so they are exact under a paused test
/// runtime.
///
/// Each thread that ran a task gets a track, numbered from 0 in order of
/// first appearance. A task belongs to the thread it started on (an async
/// task may move between workers while it runs). Async tasks that overlap
/// on one thread are drawn in extra lanes of that thread's track.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use delayed::{delayed, Options, Timeline};
///
/// #[delayed]
/// async fn load(i: u64) -> u64 {
///     tokio::time::sleep(Duration::from_millis(20)).await;
///     i
/// }
///
/// #[delayed]
/// fn add(a: u64, b: u64) -> u64 { a + b }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let timeline = Arc::new(Timeline::new());
/// let total = add(load(1), load(2));
/// total.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
///
/// let tasks = timeline.tasks();
/// assert_eq!(tasks.len(), 3);
/// assert_eq!(tasks[2].name(), "add");
/// assert_eq!(tasks[2].start(), Duration::from_millis(20));
///
/// let dir = tempfile::tempdir().unwrap();
/// timeline.write_json(dir.path().join("trace.json")).unwrap(); // open in Perfetto
/// timeline.write_svg(dir.path().join("timeline.svg")).unwrap(); // open in a browser
/// # }
/// ```
#[derive(Default)]
pub struct Timeline {
    state: Mutex<State>,
}

/// What a [`Timeline`] has seen so far.
#[derive(Default)]
struct State {
    /// The instant all offsets count from: the first compute's start.
    origin: Option<Instant>,
    /// The names of the threads that started tasks, by track number.
    threads: Vec<Option<Arc<str>>>,
    /// The track number of each thread.
    tracks: HashMap<ThreadId, usize>,
    /// Runs that started and have not finished, by key and start instant.
    running: HashMap<(Key, Instant), Running>,
    /// Runs that finished.
    tasks: Vec<TimelineTask>,
    /// The graphs of the computes watched, merged.
    graph: Graph,
}

/// A run that started and has not finished.
struct Running {
    track: usize,
    /// How many times its start was delivered (once per watching compute
    /// this timeline is attached to) and its end is still to come.
    pending: usize,
    /// Whether its end was recorded already.
    recorded: bool,
}

/// One task run recorded by a [`Timeline`]: see [`Timeline::tasks`].
#[derive(Clone, Debug)]
pub struct TimelineTask {
    key: String,
    name: &'static str,
    start: Duration,
    end: Duration,
    thread: usize,
    thread_name: Option<Arc<str>>,
    outcome: Outcome,
}

impl Timeline {
    /// An empty timeline.
    ///
    /// # Examples
    ///
    /// ```
    /// let timeline = delayed::Timeline::new();
    /// assert!(timeline.tasks().is_empty());
    /// ```
    pub fn new() -> Timeline {
        Timeline::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tasks that ran and finished, ordered by start time (then end
    /// time, then key).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// use delayed::{Delayed, Options, Outcome, Timeline};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let nap = Delayed::value(5_u64).then(|ms| async move {
    ///     tokio::time::sleep(Duration::from_millis(ms)).await;
    ///     ms
    /// });
    /// nap.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    ///
    /// let task = &timeline.tasks()[0];
    /// assert_eq!(task.name(), "then");
    /// assert_eq!(task.end() - task.start(), Duration::from_millis(5));
    /// assert!(matches!(task.outcome(), Outcome::Done));
    /// # }
    /// ```
    pub fn tasks(&self) -> Vec<TimelineTask> {
        let mut tasks = self.lock().tasks.clone();
        tasks.sort_by(|a, b| (a.start, a.end, &a.key).cmp(&(b.start, b.end, &b.key)));
        tasks
    }

    /// The graph of the computes this timeline watched, as it was when
    /// each started (so with every edge, even those finished nodes have
    /// since let go of), marked with what happened: each node's final
    /// state, its error, and how long its body ran. Nodes that never ran
    /// because an input failed are failed with that input's error. Draw it
    /// with [`Graph::to_dot`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// use delayed::{Options, TaskState, Timeline};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let slow = delayed::Delayed::value(1_u64).then(|x| async move {
    ///     tokio::time::sleep(Duration::from_millis(30)).await;
    ///     x
    /// });
    /// let top = slow.map(|x| x + 1).named("top");
    /// let timeline = Arc::new(Timeline::new());
    /// top.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    ///
    /// let graph = timeline.graph();
    /// assert_eq!(graph.count(TaskState::Done), 3);
    /// assert_eq!(graph.nodes()[1].duration(), Some(Duration::from_millis(30)));
    /// assert_eq!(graph.get("top").unwrap().deps().len(), 1, "edges are kept");
    /// # }
    /// ```
    pub fn graph(&self) -> Graph {
        let state = self.lock();
        let runs: HashMap<String, (Outcome, Duration)> = state
            .tasks
            .iter()
            .map(|task| {
                (
                    task.key.clone(),
                    (task.outcome.clone(), task.end - task.start),
                )
            })
            .collect();
        state.graph.annotated(&runs)
    }

    /// The timeline as Chrome trace-event JSON, to open in
    /// [Perfetto](https://ui.perfetto.dev) or `chrome://tracing`.
    ///
    /// Each task is a complete event (`"ph": "X"`, times in microseconds)
    /// named after its function, with its key, outcome and error message
    /// in `args`. Each thread lane is a `tid` named by a `thread_name`
    /// metadata event: the thread's name, with `(lane n)` added for the
    /// extra lanes of overlapping async tasks, since trace viewers expect
    /// the events of one thread to nest.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use delayed::{Delayed, Options, Timeline};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let x = Delayed::value(1_u64).map(|x| x + 1).named("x");
    /// x.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    ///
    /// let json = timeline.to_chrome_json();
    /// assert!(json.starts_with(r#"{"traceEvents":["#));
    /// assert!(json.contains(r#""ph":"X""#));
    /// assert!(json.contains(r#""args":{"key":"x","outcome":"done"}"#));
    /// # }
    /// ```
    pub fn to_chrome_json(&self) -> String {
        let chart = Chart::new(self.tasks(), Duration::ZERO);
        let mut events = vec![format!(
            r#"{{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{{"name":{}}}}}"#,
            json_string("delayed")
        )];
        let rows = chart
            .tracks
            .values()
            .flat_map(|track| (0..track.lanes).map(move |lane| (track, lane)));
        for (i, (track, lane)) in rows.enumerate() {
            let tid = i + 1;
            let name = match lane {
                0 => track.label.clone(),
                _ => format!("{} (lane {})", track.label, lane + 1),
            };
            events.push(format!(
                r#"{{"name":"thread_name","ph":"M","pid":1,"tid":{tid},"args":{{"name":{}}}}}"#,
                json_string(&name)
            ));
            events.push(format!(
                r#"{{"name":"thread_sort_index","ph":"M","pid":1,"tid":{tid},"args":{{"sort_index":{tid}}}}}"#
            ));
        }
        for (task, &row) in chart.tasks.iter().zip(&chart.row_of) {
            let mut args = format!(
                r#""key":{},"outcome":{}"#,
                json_string(&task.key),
                json_string(outcome_word(&task.outcome))
            );
            if let Outcome::Failed(err) = &task.outcome {
                let _ = write!(args, r#","error":{}"#, json_string(&error_message(err)));
            }
            events.push(format!(
                r#"{{"name":{},"cat":"task","ph":"X","ts":{},"dur":{},"pid":1,"tid":{},"args":{{{args}}}}}"#,
                json_string(task.name),
                micros(task.start),
                micros(task.end - task.start),
                row + 1,
            ));
        }
        format!(
            "{{\"traceEvents\":[\n{}\n],\n\"displayTimeUnit\":\"ms\"}}\n",
            events.join(",\n")
        )
    }

    /// The timeline as an SVG Gantt chart: one row per thread, one bar per
    /// task, coloured by function, on a time axis.
    ///
    /// Failed tasks are outlined in red and cancelled ones are faded and
    /// hatched; hovering over a bar shows its key, times and outcome. A
    /// legend maps colours to function names. An empty timeline draws a
    /// small chart that says "no tasks".
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use delayed::{Delayed, Options, Timeline};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let x = Delayed::value(1_u64).map(|x| x + 1);
    /// x.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    ///
    /// let svg = timeline.to_svg();
    /// assert!(svg.starts_with("<svg"));
    /// assert_eq!(svg.matches(r#"class="bar""#).count(), 1);
    /// # }
    /// ```
    pub fn to_svg(&self) -> String {
        let tasks = self.tasks();
        if tasks.is_empty() {
            return empty_svg();
        }
        // Bars are at least a few pixels wide: give short tasks room.
        let span = tasks.iter().map(|task| task.end).max().unwrap_or_default();
        Chart::new(tasks, span / 250).svg()
    }

    /// Writes [`to_chrome_json`](Timeline::to_chrome_json) to a file.
    ///
    /// # Errors
    ///
    /// Any error from writing the file.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("trace.json");
    /// delayed::Timeline::new().write_json(&path).unwrap();
    /// assert!(std::fs::read_to_string(&path).unwrap().contains("traceEvents"));
    /// ```
    pub fn write_json(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.to_chrome_json())
    }

    /// Writes [`to_svg`](Timeline::to_svg) to a file.
    ///
    /// # Errors
    ///
    /// Any error from writing the file.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("timeline.svg");
    /// delayed::Timeline::new().write_svg(&path).unwrap();
    /// assert!(std::fs::read_to_string(&path).unwrap().contains("no tasks"));
    /// ```
    pub fn write_svg(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.to_svg())
    }
}

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Timeline")
            .field("tasks", &state.tasks.len())
            .field("running", &state.running.len())
            .field("threads", &state.threads.len())
            .finish()
    }
}

impl Callback for Timeline {
    fn start(&self, graph: &Graph) {
        let mut state = self.lock();
        state.origin.get_or_insert_with(Instant::now);
        state.graph.merge(graph);
    }

    fn task_started(&self, task: &TaskStarted) {
        let mut state = self.lock();
        state.origin.get_or_insert(task.at());
        let track = match state.tracks.get(&task.thread()) {
            Some(&track) => track,
            None => {
                // Callbacks run on the task's thread, so its name is ours.
                let current = std::thread::current();
                let name = if current.id() == task.thread() {
                    current.name().map(Arc::from)
                } else {
                    None
                };
                let track = state.threads.len();
                state.threads.push(name);
                state.tracks.insert(task.thread(), track);
                track
            }
        };
        state
            .running
            .entry((task.key().clone(), task.at()))
            .or_insert(Running {
                track,
                pending: 0,
                recorded: false,
            })
            .pending += 1;
    }

    fn task_finished(&self, task: &TaskFinished) {
        let mut state = self.lock();
        let id = (task.key().clone(), task.started());
        let Some(run) = state.running.get_mut(&id) else {
            return;
        };
        let first = !run.recorded;
        run.recorded = true;
        run.pending -= 1;
        let track = run.track;
        if run.pending == 0 {
            state.running.remove(&id);
        }
        if !first {
            return;
        }
        let origin = state.origin.unwrap_or(task.started());
        let start = task.started().saturating_duration_since(origin);
        let thread_name = state.threads[track].clone();
        state.tasks.push(TimelineTask {
            key: task.key().to_string(),
            name: task.name(),
            start,
            end: start + task.elapsed(),
            thread: track,
            thread_name,
            outcome: task.outcome().clone(),
        });
    }
}

impl TimelineTask {
    /// The task's key, like `"load-3"`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use delayed::{Delayed, Options, Timeline};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let x = Delayed::value(1_u64).map(|x| x + 1).named("x");
    /// x.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    /// assert_eq!(timeline.tasks()[0].key(), "x");
    /// # }
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The function (or combinator) that made the task, like `"load"`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use delayed::{Delayed, Options, Timeline};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let x = Delayed::value(1_u64).map(|x| x + 1);
    /// x.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    /// assert_eq!(timeline.tasks()[0].name(), "map");
    /// # }
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// When the task's body started, from the start of the first compute
    /// the timeline saw.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use delayed::{Delayed, Options, Timeline};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let x = Delayed::value(1_u64).map(|x| x + 1);
    /// x.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    /// assert_eq!(timeline.tasks()[0].start(), Duration::ZERO);
    /// # }
    /// ```
    pub fn start(&self) -> Duration {
        self.start
    }

    /// When the task's body ended, from the start of the first compute the
    /// timeline saw.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use delayed::{Delayed, Options, Timeline};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let x = Delayed::value(()).then(|()| tokio::time::sleep(Duration::from_millis(3)));
    /// x.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    /// assert_eq!(timeline.tasks()[0].end(), Duration::from_millis(3));
    /// # }
    /// ```
    pub fn end(&self) -> Duration {
        self.end
    }

    /// The track of the thread the task started on: threads are numbered
    /// from 0 in the order they first ran a task.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use delayed::{Delayed, Options, Timeline};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let x = Delayed::value(1_u64).map(|x| x + 1);
    /// x.compute_with(Options::new().callback(timeline.clone())).await.unwrap();
    /// assert_eq!(timeline.tasks()[0].thread(), 0); // a single-threaded runtime
    /// # }
    /// ```
    pub fn thread(&self) -> usize {
        self.thread
    }

    /// The name of the thread the task started on, if it has one, like
    /// `"main"` or the name of a tokio worker.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use delayed::{Delayed, Options, Timeline};
    /// # fn main() {
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let timeline = Arc::new(Timeline::new());
    /// let x = Delayed::value(1_u64).map(|x| x + 1);
    /// runtime.block_on(x.compute_with(Options::new().callback(timeline.clone()))).unwrap();
    /// assert_eq!(
    ///     timeline.tasks()[0].thread_name(),
    ///     std::thread::current().name(),
    /// );
    /// # }
    /// ```
    pub fn thread_name(&self) -> Option<&str> {
        self.thread_name.as_deref()
    }

    /// How the task's body ended: with a value, an error, or cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use delayed::{Delayed, Options, Outcome, Timeline};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let timeline = Arc::new(Timeline::new());
    /// let bad = Delayed::value("x".to_string()).try_map(|s| s.parse::<u64>());
    /// let _ = bad.compute_with(Options::new().callback(timeline.clone())).await;
    /// assert!(matches!(timeline.tasks()[0].outcome(), Outcome::Failed(_)));
    /// # }
    /// ```
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }
}

/// The tasks of a timeline laid out in rows: each thread's track gets as
/// many lanes as it had tasks running at once, counting each task as
/// lasting at least `shortest`.
struct Chart {
    /// Sorted by start.
    tasks: Vec<TimelineTask>,
    /// The tracks that have tasks, by number. Their lanes, in this order,
    /// are the chart's rows.
    tracks: BTreeMap<usize, Track>,
    /// The row of each task.
    row_of: Vec<usize>,
}

/// A thread's track in a chart.
struct Track {
    /// The thread's name, numbered where several threads share one.
    label: String,
    /// How many tasks it ran at once, at most.
    lanes: usize,
}

impl Chart {
    fn new(tasks: Vec<TimelineTask>, shortest: Duration) -> Chart {
        // Greedy interval colouring in start order: the fewest lanes.
        let mut lanes: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
        let mut lane_of = Vec::with_capacity(tasks.len());
        for task in &tasks {
            let ends = lanes.entry(task.thread).or_default();
            let lane = match ends.iter().position(|&end| end <= task.start) {
                Some(lane) => lane,
                None => {
                    ends.push(Duration::ZERO);
                    ends.len() - 1
                }
            };
            ends[lane] = task.end.max(task.start + shortest);
            lane_of.push(lane);
        }
        let mut first_row = HashMap::new();
        let mut rows = 0;
        for (&track, ends) in &lanes {
            first_row.insert(track, rows);
            rows += ends.len();
        }
        let row_of = tasks
            .iter()
            .zip(&lane_of)
            .map(|(task, lane)| first_row[&task.thread] + lane)
            .collect();

        let mut names: BTreeMap<usize, Option<&str>> = BTreeMap::new();
        for task in &tasks {
            names.insert(task.thread, task.thread_name());
        }
        let mut sharing: HashMap<Option<&str>, usize> = HashMap::new();
        for name in names.values() {
            *sharing.entry(*name).or_default() += 1;
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let tracks = names
            .iter()
            .map(|(&track, &name)| {
                let label = match name {
                    None => format!("thread {}", track + 1),
                    Some(name) if sharing[&Some(name)] == 1 => name.to_string(),
                    Some(name) => {
                        let n = seen.entry(name).or_default();
                        *n += 1;
                        format!("{name} #{n}")
                    }
                };
                let lanes = lanes[&track].len();
                (track, Track { label, lanes })
            })
            .collect();
        Chart {
            tasks,
            tracks,
            row_of,
        }
    }

    fn span(&self) -> Duration {
        self.tasks
            .iter()
            .map(|task| task.end)
            .max()
            .unwrap_or_default()
    }

    fn svg(&self) -> String {
        let colours = Colours::new(&self.tasks);
        let frame = self.frame();
        let legend = self.legend(&colours, frame.plot_bottom + 20.0);
        let height = (legend.last().map_or(frame.plot_bottom, |item| item.y) + 28.0).ceil();

        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="12">"#,
        );
        out.push_str(concat!(
            r##"<defs><pattern id="delayed-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">"##,
            r##"<line x1="0" y1="0" x2="0" y2="6" stroke="#24292f" stroke-opacity="0.45" stroke-width="2"/></pattern></defs>"##,
            "\n<style>.task:hover .bar { stroke: #24292f; stroke-width: 1.5; }</style>\n",
        ));
        let _ = writeln!(
            out,
            r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
        );
        self.draw_header(&mut out);
        draw_tracks(&mut out, &frame);
        draw_axis(&mut out, &frame);
        self.draw_bars(&mut out, &frame, &colours);
        draw_legend(&mut out, &legend);
        out.push_str("</svg>\n");
        out
    }

    /// Lays out the label column, the plot, and each track and lane.
    fn frame(&self) -> Frame {
        let label_width = self
            .tracks
            .values()
            .map(|track| text_width(&track.label, 12.0))
            .fold(40.0, f64::max)
            .min(MAX_LABEL);
        let left = (MARGIN + label_width + 12.0).round();
        let right = WIDTH - 28.0;
        let rows: usize = self.tracks.values().map(|track| track.lanes).sum();
        // Many lanes get thinner, down to a few pixels.
        let lane_height = (880.0 / rows as f64).clamp(6.0, 22.0);
        let mut bands = Vec::with_capacity(self.tracks.len());
        let mut row_top = Vec::with_capacity(rows);
        let mut y = PLOT_TOP;
        for track in self.tracks.values() {
            let height = track.lanes as f64 * lane_height + 2.0 * TRACK_PAD;
            bands.push((track.label.clone(), y, height));
            row_top.extend((0..track.lanes).map(|lane| y + TRACK_PAD + lane as f64 * lane_height));
            y += height;
        }
        Frame {
            left,
            right,
            lane_height,
            row_top,
            bands,
            plot_bottom: y,
            axis: Axis::new(self.span(), right - left),
        }
    }

    /// Places the legend's entries, wrapping them at the chart's width:
    /// each function's colour, then the failed and cancelled styles if any
    /// task has them.
    fn legend(&self, colours: &Colours, top: f64) -> Vec<LegendItem> {
        let mut entries: Vec<(Swatch, String)> = colours
            .names
            .iter()
            .map(|name| (Swatch::Fill(colours.of(name).0), name.to_string()))
            .collect();
        let has = |word: &str| self.tasks.iter().any(|t| outcome_word(&t.outcome) == word);
        if has("failed") {
            entries.push((Swatch::Failed, "failed".to_string()));
        }
        if has("cancelled") {
            entries.push((Swatch::Cancelled, "cancelled".to_string()));
        }
        let start = MARGIN + 4.0;
        let (mut x, mut y) = (start, top);
        let mut items = Vec::with_capacity(entries.len());
        for (swatch, text) in entries {
            let text = truncate(&text, 300.0, 12.0);
            let width = 18.0 + text_width(&text, 12.0) + 20.0;
            if x + width > WIDTH - MARGIN && x > start {
                x = start;
                y += 20.0;
            }
            items.push(LegendItem { x, y, swatch, text });
            x += width;
        }
        items
    }

    /// The title, and a summary at the right: tasks, threads, span.
    fn draw_header(&self, out: &mut String) {
        let (tasks, tracks) = (self.tasks.len(), self.tracks.len());
        let summary = format!(
            "{tasks} {} · {tracks} {} · {}",
            plural(tasks, "task"),
            plural(tracks, "thread"),
            format_duration(self.span()),
        );
        let _ = writeln!(
            out,
            r##"<text x="{MARGIN}" y="28" font-size="15" font-weight="bold" fill="#1f2328">Timeline</text>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="28" text-anchor="end" fill="#57606a">{}</text>"##,
            WIDTH - MARGIN,
            xml(&summary),
        );
    }

    /// One group per task: its tooltip, its bar, and its key or function
    /// name inside the bar when it fits.
    fn draw_bars(&self, out: &mut String, frame: &Frame, colours: &Colours) {
        let bar_pad = (frame.lane_height * 0.14).max(1.0);
        let bar_height = frame.lane_height - 2.0 * bar_pad;
        let radius = num((bar_height / 5.0).min(3.0));
        out.push_str("<g class=\"tasks\">\n");
        for (task, &row) in self.tasks.iter().zip(&self.row_of) {
            let (fill, mut ink) = colours.of(task.name);
            let left = frame.x(task.start);
            let width = (frame.x(task.end) - left).max(MIN_BAR);
            let top = frame.row_top[row] + bar_pad;
            let (x, y, w, h) = (num(left), num(top), num(width), num(bar_height));
            let _ = write!(
                out,
                r#"<g class="task {}"><title>{}</title>"#,
                outcome_word(&task.outcome),
                xml(&self.tooltip(task))
            );
            let _ = write!(
                out,
                r#"<rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}" rx="{radius}" fill="{fill}""#
            );
            match task.outcome {
                Outcome::Done => out.push_str("/>"),
                Outcome::Failed(_) => {
                    out.push_str(r##" stroke="#cf222e" stroke-width="2"/>"##);
                }
                Outcome::Cancelled => {
                    out.push_str(
                        r##" fill-opacity="0.45" stroke="#57606a" stroke-width="1" stroke-dasharray="3 2"/>"##,
                    );
                    let _ = write!(
                        out,
                        r#"<rect class="hatch" x="{x}" y="{y}" width="{w}" height="{h}" rx="{radius}" fill="url(#delayed-hatch)"/>"#
                    );
                    ink = "#24292f";
                }
            }
            let text = [task.key.as_str(), task.name]
                .into_iter()
                .find(|text| text_width(text, 11.0) + 8.0 <= width);
            if let (Some(text), true) = (text, bar_height >= 12.0) {
                let _ = write!(
                    out,
                    r#"<text class="label" x="{}" y="{}" font-size="11" fill="{ink}">{}</text>"#,
                    num(left + 4.0),
                    num(top + bar_height / 2.0 + 4.0),
                    xml(text),
                );
            }
            out.push_str("</g>\n");
        }
        out.push_str("</g>\n");
    }

    /// A bar's tooltip: key, function and thread, times, outcome.
    fn tooltip(&self, task: &TimelineTask) -> String {
        let outcome = match &task.outcome {
            Outcome::Failed(err) => format!("failed: {}", error_message(err)),
            other => outcome_word(other).to_string(),
        };
        format!(
            "{}\n{} on {}\n{} → {} ({})\n{}",
            task.key,
            task.name,
            self.tracks[&task.thread].label,
            format_duration(task.start),
            format_duration(task.end),
            format_duration(task.end - task.start),
            outcome,
        )
    }
}

/// Where the parts of an SVG chart go, in pixels.
struct Frame {
    /// The plot's left and right edges.
    left: f64,
    right: f64,
    lane_height: f64,
    /// The top of each row.
    row_top: Vec<f64>,
    /// Each track's label, top and height.
    bands: Vec<(String, f64, f64)>,
    /// The bottom of the last track.
    plot_bottom: f64,
    axis: Axis,
}

impl Frame {
    /// Where time `t` falls on the plot.
    fn x(&self, t: Duration) -> f64 {
        self.left + t.as_nanos() as f64 / self.axis.domain as f64 * (self.right - self.left)
    }
}

/// Bar colours by function, in order of first appearance.
struct Colours {
    names: Vec<&'static str>,
}

impl Colours {
    fn new(tasks: &[TimelineTask]) -> Colours {
        let mut names = Vec::new();
        for task in tasks {
            if !names.contains(&task.name) {
                names.push(task.name);
            }
        }
        Colours { names }
    }

    /// The fill of a function's bars, and the text colour readable on it.
    fn of(&self, name: &str) -> (&'static str, &'static str) {
        let i = self.names.iter().position(|n| *n == name).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }
}

/// An entry of the legend, placed.
struct LegendItem {
    x: f64,
    /// The text's baseline.
    y: f64,
    swatch: Swatch,
    text: String,
}

/// How a legend entry's swatch is drawn.
enum Swatch {
    Fill(&'static str),
    Failed,
    Cancelled,
}

/// Alternating bands, one per track, with the thread's label at the left.
fn draw_tracks(out: &mut String, frame: &Frame) {
    out.push_str("<g class=\"tracks\">\n");
    for (i, (label, top, height)) in frame.bands.iter().enumerate() {
        let fill = if i % 2 == 0 { "#f6f8fa" } else { "#ffffff" };
        let _ = writeln!(
            out,
            r#"<rect class="track" x="{MARGIN}" y="{}" width="{}" height="{}" fill="{fill}"/>"#,
            num(*top),
            num(frame.right - MARGIN),
            num(*height),
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#24292f">{}</text>"##,
            num(frame.left - 10.0),
            num(top + height / 2.0 + 4.0),
            xml(&truncate(label, MAX_LABEL, 12.0)),
        );
    }
    out.push_str("</g>\n");
}

/// The time axis above the tracks: a grid line and a label per tick.
fn draw_axis(out: &mut String, frame: &Frame) {
    let axis = &frame.axis;
    out.push_str("<g class=\"axis\">\n");
    for i in 0..=axis.ticks {
        let t = axis.step * i;
        let x = num(frame.x(Duration::from_nanos(t as u64)));
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#d0d7de" stroke-width="1"/>"##,
            num(PLOT_TOP - 5.0),
            num(frame.plot_bottom),
        );
        let _ = writeln!(
            out,
            r##"<text x="{x}" y="{}" text-anchor="middle" fill="#57606a">{}</text>"##,
            num(PLOT_TOP - 10.0),
            xml(&axis.label(t)),
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{}" y1="{PLOT_TOP}" x2="{}" y2="{PLOT_TOP}" stroke="#8c959f" stroke-width="1"/>"##,
        num(frame.left),
        num(frame.right),
    );
    out.push_str("</g>\n");
}

/// The legend's swatches and names.
fn draw_legend(out: &mut String, items: &[LegendItem]) {
    out.push_str("<g class=\"legend\">\n");
    for item in items {
        let (x, y) = (num(item.x), num(item.y - 10.0));
        let square =
            format!(r#"<rect class="swatch" x="{x}" y="{y}" width="12" height="12" rx="2""#);
        match item.swatch {
            Swatch::Fill(fill) => {
                let _ = write!(out, r#"{square} fill="{fill}"/>"#);
            }
            Swatch::Failed => {
                let _ = write!(
                    out,
                    r##"{square} fill="#ffffff" stroke="#cf222e" stroke-width="2"/>"##
                );
            }
            Swatch::Cancelled => {
                let _ = write!(
                    out,
                    r##"{square} fill="#8c959f" fill-opacity="0.45" stroke="#57606a" stroke-dasharray="3 2"/>"##
                );
                let _ = write!(
                    out,
                    r#"<rect x="{x}" y="{y}" width="12" height="12" rx="2" fill="url(#delayed-hatch)"/>"#
                );
            }
        }
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" fill="#24292f">{}</text>"##,
            num(item.x + 18.0),
            num(item.y),
            xml(&item.text),
        );
    }
    out.push_str("</g>\n");
}

/// Bar colours and the text colour readable on each: Tableau's palette,
/// less its red, which marks failures.
const PALETTE: [(&str, &str); 10] = [
    ("#4e79a7", "#ffffff"),
    ("#f28e2b", "#1f2328"),
    ("#59a14f", "#ffffff"),
    ("#b07aa1", "#ffffff"),
    ("#76b7b2", "#1f2328"),
    ("#edc948", "#1f2328"),
    ("#9c755f", "#ffffff"),
    ("#ff9da7", "#1f2328"),
    ("#a0cbe8", "#1f2328"),
    ("#b6992d", "#1f2328"),
];

/// The chart's width, in pixels.
const WIDTH: f64 = 1200.0;

/// The space around the chart, in pixels.
const MARGIN: f64 = 16.0;

/// The time axis's line, in pixels from the top: the title and the tick
/// labels are above it.
const PLOT_TOP: f64 = 66.0;

/// The chart's fonts: the system's sans-serif.
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";

/// The widest a thread label may be, in pixels.
const MAX_LABEL: f64 = 260.0;

/// The space above and below the lanes of a track, in pixels.
const TRACK_PAD: f64 = 4.0;

/// The narrowest bar drawn, in pixels, so that instant tasks show.
const MIN_BAR: f64 = 3.0;

/// A time axis with 1-2-5 steps, from 0 to a whole number of steps.
struct Axis {
    /// Nanoseconds between ticks.
    step: u128,
    /// How many steps it spans.
    ticks: u128,
    /// The axis's end, in nanoseconds.
    domain: u128,
    /// The labels' unit: its size in nanoseconds and its symbol.
    unit: (u128, &'static str),
    /// Decimals that show every tick exactly.
    decimals: usize,
}

impl Axis {
    fn new(span: Duration, plot_width: f64) -> Axis {
        let span = span.as_nanos().max(1_000);
        let target = (plot_width / 100.0).floor().max(2.0) as u128;
        let raw = span.div_ceil(target);
        let mut power = 1_u128;
        let step = 'search: loop {
            for m in [1, 2, 5] {
                if m * power >= raw {
                    break 'search m * power;
                }
            }
            power *= 10;
        };
        let ticks = span.div_ceil(step);
        let domain = ticks * step;
        let unit = if domain < 1_000_000 {
            (1_000, "µs")
        } else if domain < 1_000_000_000 {
            (1_000_000, "ms")
        } else {
            (1_000_000_000, "s")
        };
        let mut decimals = 0;
        while (step * 10_u128.pow(decimals as u32)) % unit.0 != 0 {
            decimals += 1;
        }
        Axis {
            step,
            ticks,
            domain,
            unit,
            decimals,
        }
    }

    fn label(&self, t: u128) -> String {
        let value = t as f64 / self.unit.0 as f64;
        format!("{value:.*} {}", self.decimals, self.unit.1)
    }
}

/// The SVG of an empty timeline.
fn empty_svg() -> String {
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="320" height="64" viewBox="0 0 320 64" font-family="{}" font-size="12">"#,
            "\n",
            r##"<rect width="320" height="64" fill="#ffffff"/>"##,
            "\n",
            r##"<text x="160" y="36" text-anchor="middle" fill="#57606a">no tasks</text>"##,
            "\n</svg>\n"
        ),
        FONT
    )
}

/// The word for an outcome in JSON args and SVG classes.
fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done => "done",
        Outcome::Failed(_) => "failed",
        Outcome::Cancelled => "cancelled",
    }
}

/// An error and its causes, joined with `": "`.
fn error_message(err: &Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let _ = write!(message, ": {cause}");
        source = cause.source();
    }
    message
}

/// `word` or its plural, for `n` things.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// A duration in microseconds for a trace: whole when exact, else with
/// up to three decimals.
fn micros(d: Duration) -> String {
    let nanos = d.as_nanos();
    let (whole, frac) = (nanos / 1_000, nanos % 1_000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_string()
    }
}

/// A duration for people: `20 ms`, `1.5 s`, `250 µs`, `0 ms`.
fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let (unit, symbol) = if nanos == 0 {
        return "0 ms".to_string();
    } else if nanos < 1_000 {
        (1, "ns")
    } else if nanos < 1_000_000 {
        (1_000, "µs")
    } else if nanos < 1_000_000_000 {
        (1_000_000, "ms")
    } else {
        (1_000_000_000, "s")
    };
    let value = format!("{:.3}", nanos as f64 / unit as f64);
    let value = value.trim_end_matches('0').trim_end_matches('.');
    format!("{value} {symbol}")
}

/// A coordinate with at most one decimal.
fn num(x: f64) -> String {
    let s = format!("{x:.1}");
    match s.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => s,
    }
}

/// A guess at the width of `text` in a sans-serif font of `size` pixels.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// `text`, cut with an ellipsis to fit `width` pixels.
fn truncate(text: &str, width: f64, size: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_string();
    }
    let keep = ((width / (size * 0.6)) as usize).saturating_sub(1);
    let mut cut: String = text.chars().take(keep).collect();
    cut.push('…');
    cut
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` escaped for XML text and attribute values. Control characters that
/// XML cannot hold become U+FFFD.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push('\u{fffd}');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("plain"), r#""plain""#);
        assert_eq!(
            json_string("a \"quoted\" \\ key\nline\r\ttab"),
            r#""a \"quoted\" \\ key\nline\r\ttab""#
        );
        assert_eq!(
            json_string("\u{0}\u{1}\u{1f}\u{7f}"),
            r#""\u0000\u0001\u001f\u007f""#
        );
        assert_eq!(json_string("ünï ✓ 😀"), "\"ünï ✓ 😀\"");
        assert_eq!(json_string("ends with \\"), r#""ends with \\""#);
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml("a & b < c > d"), "a &amp; b &lt; c &gt; d");
        assert_eq!(
            xml(r#"say "hi" 'there'"#),
            "say &quot;hi&quot; &#39;there&#39;"
        );
        assert_eq!(
            xml("tab\tnl\n bell\u{7} nul\u{0}"),
            "tab\tnl\n bell\u{fffd} nul\u{fffd}"
        );
        assert_eq!(xml("µs → ✓"), "µs → ✓");
    }

    #[test]
    fn micros_are_exact() {
        assert_eq!(micros(Duration::ZERO), "0");
        assert_eq!(micros(Duration::from_millis(20)), "20000");
        assert_eq!(micros(Duration::from_nanos(1_500)), "1.5");
        assert_eq!(micros(Duration::from_nanos(1_234)), "1.234");
        assert_eq!(micros(Duration::from_nanos(7)), "0.007");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::ZERO), "0 ms");
        assert_eq!(format_duration(Duration::from_nanos(300)), "300 ns");
        assert_eq!(format_duration(Duration::from_micros(250)), "250 µs");
        assert_eq!(format_duration(Duration::from_millis(20)), "20 ms");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1.5 ms");
        assert_eq!(format_duration(Duration::from_millis(2_250)), "2.25 s");
    }

    #[test]
    fn axis_steps_are_nice() {
        let ms = Duration::from_millis;
        let axis = Axis::new(ms(25), 1000.0);
        assert_eq!((axis.step, axis.domain), (5_000_000, 25_000_000));
        assert_eq!(axis.label(axis.step * 2), "10 ms");
        let axis = Axis::new(ms(3), 1000.0);
        assert_eq!(axis.step, 500_000);
        assert_eq!(axis.label(axis.step), "0.5 ms");
        let axis = Axis::new(Duration::from_micros(730), 1000.0);
        assert_eq!((axis.step, axis.domain), (100_000, 800_000));
        assert_eq!(axis.label(axis.step * 3), "300 µs");
        let axis = Axis::new(Duration::from_secs(42), 1000.0);
        assert_eq!(axis.step, 5_000_000_000);
        assert_eq!(axis.label(axis.domain), "45 s");
        // An empty span still gets an axis.
        let axis = Axis::new(Duration::ZERO, 1000.0);
        assert_eq!(axis.domain, 1_000);
        assert_eq!(axis.label(axis.step), "0.1 µs");
    }

    #[test]
    fn long_labels_are_cut() {
        assert_eq!(truncate("short", 100.0, 12.0), "short");
        let cut = truncate(&"x".repeat(100), 72.0, 12.0);
        assert_eq!(cut, format!("{}…", "x".repeat(9)));
    }
}
