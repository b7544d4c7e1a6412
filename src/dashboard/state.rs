//! What a dashboard keeps, and the broadcast of what changes.
//!
//! Everything here is bounded, so that a service that runs for months
//! keeps a dashboard of the same size: the last [`TASKS`] task runs, the
//! runs under way (at most [`RUNNING`]), counts per function (one entry per
//! function name, which the program's code bounds), the latest graph (at
//! most [`GRAPH_NODES`](super::graph::GRAPH_NODES) nodes), the last
//! [`ERRORS`] errors and [`ROWS`] thread rows.
//!
//! The callbacks take one lock, change a few fields and, only while a page
//! is connected, write one small JSON event; nothing in them waits. Every
//! change gets the next sequence number under that lock, so that a page
//! that loads a snapshot and then applies the events after its number sees
//! each change once, in order.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;

use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::graph::LiveGraph;
use super::wire::{
    outcome_state, Computes, ErrorView, EventJson, FunctionView, Snapshot, TaskView, ThreadView,
    WorkerView,
};
use crate::{Error, Graph, Key, Outcome, TaskFinished, TaskStarted, TaskState};

/// How many finished task runs a dashboard keeps: the last ones.
pub(super) const TASKS: usize = 10_000;
/// How many runs under way it follows at once; more are counted, not drawn.
pub(super) const RUNNING: usize = 10_000;
/// How many errors it keeps: the last ones.
pub(super) const ERRORS: usize = 100;
/// How many thread rows the task stream has at most: a thread that comes
/// after takes the row used least recently (tokio's blocking threads come
/// and go).
pub(super) const ROWS: usize = 128;
/// How many events wait for a slow page before it is told to reload.
const EVENTS: usize = 4096;
/// How many keys of the running computes it remembers to count each task
/// once; past that it forgets them, and a task shared by two computes may
/// count twice.
const COUNTED: usize = 1_000_000;

/// A dashboard's state and its broadcast, shared by the callbacks (the
/// handles) and the server.
pub(super) struct Hub {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<str>>,
    stop: watch::Sender<bool>,
    /// Times are milliseconds since this instant, on tokio's clock.
    origin: Instant,
}

/// A task run, under way or finished.
#[derive(Clone)]
pub(super) struct TaskRun {
    pub(super) id: u64,
    pub(super) key: Arc<str>,
    pub(super) name: &'static str,
    pub(super) thread: usize,
    pub(super) worker: Option<Arc<str>>,
    pub(super) start: f64,
    pub(super) end: Option<f64>,
    /// `Running` until it ends.
    pub(super) outcome: TaskState,
}

/// How many tasks of one function the dashboard heard of, and how they
/// ended. Waiting is what is left: counted, and neither running nor ended.
#[derive(Clone, Copy, Default)]
pub(super) struct Counts {
    pub(super) total: u64,
    pub(super) running: u64,
    pub(super) done: u64,
    pub(super) failed: u64,
    pub(super) cancelled: u64,
    pub(super) cached: u64,
    /// Counted, but never ran: an input failed, or the compute was dropped
    /// before their turn. Known when no compute runs any more.
    pub(super) not_run: u64,
}

impl Counts {
    pub(super) fn waiting(&self) -> u64 {
        let settled =
            self.running + self.done + self.failed + self.cancelled + self.cached + self.not_run;
        self.total.saturating_sub(settled)
    }
}

/// The task stream's thread rows.
#[derive(Default)]
struct Threads {
    rows: Vec<Row>,
    by_thread: HashMap<ThreadId, usize>,
}

struct Row {
    thread: ThreadId,
    name: Arc<str>,
    /// When a task last started on it.
    used: f64,
}

#[derive(Default)]
struct State {
    /// The number of the last change.
    seq: u64,
    /// The id of the last task run.
    runs: u64,
    finished: VecDeque<TaskRun>,
    /// Finished runs that no longer fit.
    evicted: u64,
    running: HashMap<(Key, Instant), TaskRun>,
    threads: Threads,
    functions: BTreeMap<&'static str, Counts>,
    /// Tasks counted in a function's total and not finished yet, so that
    /// a task two computes share counts once.
    counted: HashSet<Key>,
    computes: Computes,
    graph: Option<LiveGraph>,
    errors: VecDeque<ErrorView>,
    workers: Option<Vec<WorkerView>>,
}

impl Hub {
    pub(super) fn new() -> Hub {
        Hub {
            state: Mutex::new(State::default()),
            events: broadcast::channel(EVENTS).0,
            stop: watch::channel(false).0,
            origin: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Milliseconds from the origin to `at`.
    fn ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64() * 1e3
    }

    /// The events from now on: JSON texts.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    /// Tells the server and its streams to stop.
    pub(super) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once [`stop`](Hub::stop) was called.
    pub(super) fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    }

    /// Numbers a change made under `state` and sends what `event` writes,
    /// if a page listens.
    fn publish<'a>(
        &self,
        state: &'a mut State,
        event: impl FnOnce(u64, &'a State) -> EventJson<'a>,
    ) {
        state.seq += 1;
        if self.events.receiver_count() == 0 {
            return;
        }
        let seq = state.seq;
        if let Ok(json) = serde_json::to_string(&event(seq, state)) {
            let _ = self.events.send(json.into());
        }
    }

    pub(super) fn start(&self, graph: &Graph) {
        let mut state = self.lock();
        let state = &mut *state;
        state.computes.running += 1;
        state.computes.started += 1;
        if state.counted.len() > COUNTED {
            state.counted.clear();
        }
        let to_run = graph
            .nodes()
            .iter()
            .filter(|node| matches!(node.state(), TaskState::Waiting | TaskState::Cancelled));
        for node in to_run {
            if state.counted.insert(node.key().clone()) {
                state.functions.entry(node.name()).or_default().total += 1;
            }
        }
        state.graph = Some(LiveGraph::new(graph));
        self.publish(state, |seq, state| EventJson::Graph {
            seq,
            computes: state.computes,
            graph: state.graph.as_ref().map(LiveGraph::view),
            functions: function_views(&state.functions),
        });
    }

    pub(super) fn task_started(&self, task: &TaskStarted) {
        let at = self.ms(task.at());
        let mut state = self.lock();
        let state = &mut *state;
        let (thread, new_row) = state.threads.row(task.thread(), at);
        state.runs += 1;
        let run = TaskRun {
            id: state.runs,
            key: task.key().to_string().into(),
            name: task.name(),
            thread,
            worker: None,
            start: at,
            end: None,
            outcome: TaskState::Running,
        };
        let counts = state.functions.entry(task.name()).or_default();
        counts.running += 1;
        if state.counted.insert(task.key().clone()) {
            counts.total += 1;
        }
        let changed = state
            .graph
            .as_mut()
            .map(|graph| graph.set(task.key(), TaskState::Running))
            .unwrap_or_default();
        if state.running.len() < RUNNING {
            state
                .running
                .insert((task.key().clone(), task.at()), run.clone());
        }
        self.publish(state, |seq, state| EventJson::Started {
            seq,
            task: TaskView::of(&run),
            function: FunctionView::of(run.name, &state.functions[run.name]),
            thread: new_row.then(|| state.threads.view(thread)),
            graph: changed,
        });
    }

    pub(super) fn task_finished(&self, task: &TaskFinished) {
        let start = self.ms(task.started());
        let end = start + task.elapsed().as_secs_f64() * 1e3;
        let outcome = outcome_state(task.outcome());
        let mut state = self.lock();
        let state = &mut *state;
        // Every run that ends was heard to start; one started while too
        // many ran to follow gets its row now.
        let mut run = match state.running.remove(&(task.key().clone(), task.started())) {
            Some(run) => run,
            None => {
                let (thread, _) = state.threads.row(task.thread(), end);
                state.runs += 1;
                TaskRun {
                    id: state.runs,
                    key: task.key().to_string().into(),
                    name: task.name(),
                    thread,
                    worker: None,
                    start,
                    end: None,
                    outcome,
                }
            }
        };
        run.end = Some(end);
        run.outcome = outcome;
        let counts = state.functions.entry(task.name()).or_default();
        counts.running = counts.running.saturating_sub(1);
        if !state.counted.remove(task.key()) {
            counts.total += 1;
        }
        match task.outcome() {
            Outcome::Done => counts.done += 1,
            Outcome::Failed(_) => counts.failed += 1,
            Outcome::Cancelled => counts.cancelled += 1,
            Outcome::Cached => counts.cached += 1,
        }
        let error = match task.outcome() {
            Outcome::Failed(err) => Some(self.error(state, &run, err, end)),
            _ => None,
        };
        let changed = state
            .graph
            .as_mut()
            .map(|graph| graph.finish(task.key(), task.outcome()))
            .unwrap_or_default();
        if state.finished.len() == TASKS {
            state.finished.pop_front();
            state.evicted += 1;
        }
        state.finished.push_back(run.clone());
        self.publish(state, |seq, state| EventJson::Finished {
            seq,
            task: TaskView::of(&run),
            function: FunctionView::of(run.name, &state.functions[run.name]),
            error,
            graph: changed,
        });
    }

    /// Keeps the error of a task that failed, and returns it.
    fn error(&self, state: &mut State, run: &TaskRun, err: &Error, at: f64) -> ErrorView {
        let error = ErrorView {
            key: Arc::clone(&run.key),
            name: run.name,
            message: err.report(),
            at,
        };
        if state.errors.len() == ERRORS {
            state.errors.pop_front();
        }
        state.errors.push_back(error.clone());
        error
    }

    pub(super) fn finish(&self, result: Result<(), &Error>) {
        let mut state = self.lock();
        let state = &mut *state;
        state.computes.running = state.computes.running.saturating_sub(1);
        match result {
            Ok(()) => state.computes.done += 1,
            Err(err) if err.is_cancelled() => state.computes.cancelled += 1,
            Err(_) => state.computes.failed += 1,
        }
        if state.computes.running == 0 {
            // What no compute will run now never ran. Runs under way (ending
            // as cancelled soon) stay counted.
            for counts in state.functions.values_mut() {
                counts.not_run += counts.waiting();
            }
            state.counted.clear();
            let running = state.running.keys().map(|(key, _)| key.clone());
            state.counted.extend(running);
        }
        self.publish(state, |seq, state| EventJson::Finish {
            seq,
            computes: state.computes,
            functions: function_views(&state.functions),
        });
    }

    /// The cluster's workers, as last asked.
    #[cfg(feature = "nats")]
    pub(super) fn set_workers(&self, workers: Vec<WorkerView>) {
        let mut state = self.lock();
        let state = &mut *state;
        if state.workers.as_ref() == Some(&workers) {
            return;
        }
        state.workers = Some(workers);
        self.publish(state, |seq, state| EventJson::Workers {
            seq,
            workers: state.workers.as_deref().unwrap_or_default(),
        });
    }

    /// Puts on a worker's row each finished run of a function in `remote`
    /// that no worker has yet and whose key `ran_on` gives a worker.
    #[cfg(feature = "nats")]
    pub(super) fn assign(&self, ran_on: &HashMap<String, Arc<str>>, remote: &HashSet<&str>) {
        /// How far back from the last finished run to look.
        const RECENT: usize = 2_000;
        let mut state = self.lock();
        let state = &mut *state;
        let mut assigned = Vec::new();
        for run in state.finished.iter_mut().rev().take(RECENT) {
            if run.worker.is_some() || !remote.contains(run.name) {
                continue;
            }
            if let Some(worker) = ran_on.get(&*run.key) {
                run.worker = Some(Arc::clone(worker));
                assigned.push((run.id, worker.to_string()));
            }
        }
        if assigned.is_empty() {
            return;
        }
        self.publish(state, |seq, _| EventJson::Assign { seq, assigned });
    }

    /// Everything the page shows, as JSON.
    pub(super) fn snapshot(&self) -> String {
        let now = self.ms(Instant::now());
        // Copied under the lock (reference counts, mostly), written after.
        let state = self.lock();
        let mut tasks: Vec<TaskRun> = state.finished.iter().cloned().collect();
        tasks.extend(state.running.values().cloned());
        let threads: Vec<ThreadView> = (0..state.threads.rows.len())
            .map(|row| state.threads.view(row))
            .collect();
        let seq = state.seq;
        let computes = state.computes;
        let functions = state.functions.clone();
        let errors: Vec<ErrorView> = state.errors.iter().cloned().collect();
        let workers = state.workers.clone();
        let evicted = state.evicted;
        let graph = state.graph.clone();
        drop(state);
        let snapshot = Snapshot {
            seq,
            now,
            capacity: TASKS,
            evicted,
            computes,
            threads,
            tasks: tasks.iter().map(TaskView::of).collect(),
            functions: function_views(&functions),
            graph: graph.as_ref().map(LiveGraph::view),
            errors,
            workers,
        };
        to_json(&snapshot)
    }
}

/// JSON text of a value that always writes.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

fn function_views(functions: &BTreeMap<&'static str, Counts>) -> Vec<FunctionView> {
    functions
        .iter()
        .map(|(name, counts)| FunctionView::of(name, counts))
        .collect()
}

impl Threads {
    /// The row of `thread`, and whether it is new (or newly taken over).
    fn row(&mut self, thread: ThreadId, at: f64) -> (usize, bool) {
        if let Some(&row) = self.by_thread.get(&thread) {
            self.rows[row].used = at;
            return (row, false);
        }
        let current = std::thread::current();
        let name: Arc<str> = match current.name() {
            Some(name) if current.id() == thread => name.into(),
            _ => "".into(),
        };
        let fresh = Row {
            thread,
            name,
            used: at,
        };
        let row = if self.rows.len() < ROWS {
            self.rows.push(fresh);
            self.rows.len() - 1
        } else {
            let (row, _) = self
                .rows
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.used.total_cmp(&b.1.used))
                .expect("ROWS is not 0");
            self.by_thread.remove(&self.rows[row].thread);
            self.rows[row] = fresh;
            row
        };
        self.by_thread.insert(thread, row);
        (row, true)
    }

    fn view(&self, row: usize) -> ThreadView {
        ThreadView {
            row,
            name: Arc::clone(&self.rows[row].name),
        }
    }
}
