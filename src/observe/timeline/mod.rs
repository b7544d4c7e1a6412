//! Timeline profiling: which task ran on which thread, and when.
//!
//! [`Timeline`] is a [`Callback`] that records every task's start, end,
//! thread and outcome, then draws them as a Chrome trace (for Perfetto or
//! `chrome://tracing`) or as an SVG Gantt chart, like dask's `Profiler`
//! and `visualize`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use tokio::time::Instant;

use crate::callback::{Callback, Outcome, TaskFinished, TaskStarted};
use crate::{Graph, Key};

mod chrome;
mod svg;

pub(crate) use svg::format_duration;

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
    /// Runs that started and have not finished, by key and start instant:
    /// their tracks. A timeline hears each run once, however many of the
    /// computes it watches share the task.
    running: HashMap<(Key, Instant), usize>,
    /// Runs that finished.
    tasks: Vec<TimelineTask>,
    /// The graphs of the computes watched, merged.
    graph: Graph,
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
    /// assert_eq!(graph.count(TaskState::Done), 2); // `then` and `top`
    /// assert_eq!(graph.nodes()[0].duration(), Some(Duration::from_millis(30)));
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
        chrome::trace(self.tasks())
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
        svg::draw(self.tasks())
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
        state.running.insert((task.key().clone(), task.at()), track);
    }

    fn task_finished(&self, task: &TaskFinished) {
        let mut state = self.lock();
        let id = (task.key().clone(), task.started());
        let Some(track) = state.running.remove(&id) else {
            return;
        };
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
