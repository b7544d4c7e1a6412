//! A terminal progress bar for computes: dask's `ProgressBar`, on indicatif.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use indicatif::{ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

use crate::{Callback, Error, Graph, Key, Outcome, TaskFinished, TaskState};

/// What the bar shows: `{rate}` is tasks per second with one decimal.
const TEMPLATE: &str =
    "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} tasks {rate} ETA {eta} {msg}";

/// How often the spinner and the clocks redraw while nothing finishes.
const TICK: Duration = Duration::from_millis(100);

/// How many times a second the bar may redraw at most.
const REFRESH_HZ: u8 = 20;

/// A progress bar on stderr for computes, like dask's `ProgressBar`.
///
/// It is a [`Callback`]: attach it to one compute with
/// [`Options::callback`](crate::Options::callback), or to every compute in
/// a scope with [`observe`](crate::observe()), the counterpart of dask's
/// `with ProgressBar():`. It draws, on one line:
///
/// ```text
/// ⠙ [00:00:03] [#################>------------] 123/210 tasks 41.2/s ETA 2s 1 failed
/// ```
///
/// the elapsed time, the tasks finished out of the tasks to run, the rate,
/// an estimate of the time left and, once a task failed, how many did.
///
/// - **What counts.** A compute's tasks to run are the nodes of its
///   [graph](crate::Graph) that are neither finished nor running when it
///   starts: results already computed are not counted, and neither are
///   the nodes the crate makes for you (literals, and the node that
///   gathers a `Vec` or tuple of nodes), which are not in the graph. A task
///   counts as done when its body returns, with a value or an error; a
///   task stopped before it finished (cancelled) does not count.
/// - **The end.** When the compute finishes, the bar is finished with
///   `done in 1.2s`, or, if it failed, left where it stopped with the
///   cause: ``failed: task `load-3` failed: permission denied`` names the
///   task that failed first and its own error (`cancelled` when the
///   compute was dropped). Tasks whose input failed never run, so a failed
///   bar stops short of its length, but it never keeps spinning.
/// - **Several computes at once.** Computes that overlap share one bar:
///   each start adds its tasks to the length, and the bar finishes when the
///   last of them finishes (as failed if any of them failed). A compute
///   that starts after that begins a new bar on a new line, as dask draws
///   one bar per compute. The counters ([`position`](Self::position),
///   [`length`](Self::length), [`failures`](Self::failures)) describe the
///   current bar, or the last one. A task shared by two overlapping
///   computes counts once: the bar hears it once (see
///   [`Callback`](crate::Callback)), and adds it to its length once.
/// - **Where it draws.** [`new`](Self::new) draws on stderr only when
///   stderr is a terminal, so logs and pipes get no escape codes;
///   [`forced`](Self::forced) draws even when it is not, and
///   [`hidden`](Self::hidden) never draws but still counts.
///
/// Clones share one bar. Needs the `progress` feature (on by default).
///
/// # Examples
///
/// ```
/// use delayed::{delayed, Options, ProgressBar};
///
/// #[delayed]
/// async fn load(part: u64) -> u64 {
///     part * 10
/// }
///
/// #[delayed]
/// fn total(parts: Vec<u64>) -> u64 {
///     parts.iter().sum()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let result = total((0..4).map(|i| load(i)).collect::<Vec<_>>());
///
/// // One compute:
/// let bar = ProgressBar::new();
/// let sum = result.compute_with(Options::new().callback(bar.clone())).await.unwrap();
/// assert_eq!(sum, 60);
/// // Four loads and the total (the `Vec` of loads is not a task):
/// assert_eq!((bar.position(), bar.length()), (5, 5));
///
/// // Every compute in a scope, like `with ProgressBar():`
/// let _progress = delayed::observe(ProgressBar::new());
/// let again = total((4..8).map(|i| load(i)).collect::<Vec<_>>()).compute().await.unwrap();
/// assert_eq!(again, 220);
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "progress")))]
#[derive(Clone)]
pub struct ProgressBar {
    shared: Arc<Shared>,
}

/// The state that clones share.
struct Shared {
    target: Target,
    state: Mutex<State>,
}

/// Where a bar draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Stderr, when it is a terminal.
    Auto,
    /// Stderr, always.
    Forced,
    /// Nowhere.
    Hidden,
}

/// The current bar, or the last one, and the computes it covers.
#[derive(Default)]
struct State {
    /// Made when a compute starts while none runs.
    bar: Option<indicatif::ProgressBar>,
    /// Computes that started and have not finished.
    running: usize,
    /// The tasks in the bar's length, so that a task two computes share
    /// counts once.
    counted: HashSet<Key>,
    /// Tasks of the current bar that failed.
    failures: u64,
    /// Tasks of the current bar served from a cache, without running.
    cached: u64,
    /// The first error a compute of the current bar returned.
    error: Option<Error>,
}

impl ProgressBar {
    /// A bar that draws on stderr when stderr is a terminal, and draws
    /// nothing otherwise (output piped or redirected to a file).
    ///
    /// Like every indicatif bar, it also draws nothing when the `TERM`
    /// environment variable is `dumb`, or unset on Unix. Use
    /// [`forced`](Self::forced) to draw anyway.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::IsTerminal;
    ///
    /// let bar = delayed::ProgressBar::new();
    /// if !std::io::stderr().is_terminal() {
    ///     assert!(bar.is_hidden());
    /// }
    /// ```
    pub fn new() -> ProgressBar {
        ProgressBar::with_target(Target::Auto)
    }

    /// A bar that draws on stderr even when stderr is not a terminal, for
    /// example to see progress in a CI log. The bar redraws itself with
    /// ANSI escape codes, which end up in the log as they are.
    ///
    /// # Examples
    ///
    /// ```
    /// let bar = delayed::ProgressBar::forced();
    /// assert!(!bar.is_hidden());
    /// ```
    pub fn forced() -> ProgressBar {
        ProgressBar::with_target(Target::Forced)
    }

    /// A bar that never draws but still counts: for tests, or to read
    /// [`position`](Self::position) and [`length`](Self::length) yourself.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, Options, ProgressBar};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bar = ProgressBar::hidden();
    /// let x = Delayed::value(1).map(|x: u64| x + 1);
    /// x.compute_with(Options::new().callback(bar.clone())).await.unwrap();
    /// assert!(bar.is_hidden());
    /// assert_eq!((bar.position(), bar.length()), (1, 1));
    /// # }
    /// ```
    pub fn hidden() -> ProgressBar {
        ProgressBar::with_target(Target::Hidden)
    }

    fn with_target(target: Target) -> ProgressBar {
        ProgressBar {
            shared: Arc::new(Shared {
                target,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Whether the bar draws nothing: made with [`hidden`](Self::hidden),
    /// or with [`new`](Self::new) while stderr is not a terminal.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(delayed::ProgressBar::hidden().is_hidden());
    /// assert!(!delayed::ProgressBar::forced().is_hidden());
    /// ```
    pub fn is_hidden(&self) -> bool {
        self.shared.target.draw_target().is_hidden()
    }

    /// How many tasks of the current (or last) bar finished, with a value
    /// or an error. Zero before any compute started.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, Options, ProgressBar};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bar = ProgressBar::hidden();
    /// assert_eq!(bar.position(), 0);
    /// let x = Delayed::value(1).map(|x: u64| x + 1).map(|x| x * 2);
    /// x.compute_with(Options::new().callback(bar.clone())).await.unwrap();
    /// assert_eq!(bar.position(), 2);
    /// # }
    /// ```
    pub fn position(&self) -> u64 {
        self.lock().bar.as_ref().map_or(0, |bar| bar.position())
    }

    /// How many tasks the computes of the current (or last) bar had to
    /// run when they started. Zero before any compute started.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, Options, ProgressBar};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let x = Delayed::value(1).map(|x: u64| x + 1);
    /// x.compute().await.unwrap();
    ///
    /// // `x` is already computed: only the new node runs.
    /// let bar = ProgressBar::hidden();
    /// let y = x.map(|x| x * 2);
    /// y.compute_with(Options::new().callback(bar.clone())).await.unwrap();
    /// assert_eq!(bar.length(), 1);
    /// # }
    /// ```
    pub fn length(&self) -> u64 {
        self.lock()
            .bar
            .as_ref()
            .and_then(indicatif::ProgressBar::length)
            .unwrap_or(0)
    }

    /// How many tasks of the current (or last) bar failed: returned `Err`
    /// or panicked. Tasks that did not run because an input failed are not
    /// counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, Options, ProgressBar};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bar = ProgressBar::hidden();
    /// let bad = Delayed::value("x".to_string()).try_map(|s| s.parse::<u64>());
    /// let err = bad.map(|x| x + 1).compute_with(Options::new().callback(bar.clone())).await;
    /// assert!(err.is_err());
    /// assert_eq!(bar.failures(), 1);
    /// assert_eq!((bar.position(), bar.length()), (1, 2));
    /// # }
    /// ```
    pub fn failures(&self) -> u64 {
        self.lock().failures
    }

    /// How many tasks of the last bar were served from a cache (see
    /// `delayed::cache`) instead of running; they count in the position
    /// too, and the bar's message says how many.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, Options, ProgressBar};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bar = ProgressBar::hidden();
    /// let x = Delayed::value(1).map(|x: u64| x + 1);
    /// x.compute_with(Options::new().callback(bar.clone())).await.unwrap();
    /// assert_eq!(bar.cached(), 0);
    /// # }
    /// ```
    pub fn cached(&self) -> u64 {
        self.lock().cached
    }

    /// Whether the last bar is finished: every compute it covered has
    /// finished. False before any compute started.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::{Delayed, Options, ProgressBar};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bar = ProgressBar::hidden();
    /// assert!(!bar.is_finished());
    /// let x = Delayed::value(1).map(|x: u64| x + 1);
    /// x.compute_with(Options::new().callback(bar.clone())).await.unwrap();
    /// assert!(bar.is_finished());
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        let state = self.lock();
        state.running == 0 && state.bar.as_ref().is_some_and(|bar| bar.is_finished())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ProgressBar {
    /// The same as [`ProgressBar::new`].
    fn default() -> ProgressBar {
        ProgressBar::new()
    }
}

impl fmt::Debug for ProgressBar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let bar = state.bar.as_ref();
        f.debug_struct("ProgressBar")
            .field("target", &self.shared.target)
            .field("running", &state.running)
            .field("position", &bar.map_or(0, |bar| bar.position()))
            .field("length", &bar.and_then(|bar| bar.length()).unwrap_or(0))
            .field("failures", &state.failures)
            .finish()
    }
}

impl Callback for ProgressBar {
    fn start(&self, graph: &Graph) {
        // A running node reports its end only to the computes that watched
        // it start, so it is not this compute's to count.
        let to_run = graph
            .nodes()
            .iter()
            .filter(|node| matches!(node.state(), TaskState::Waiting | TaskState::Cancelled))
            .map(|node| node.key());
        let mut state = self.lock();
        if state.running == 0 {
            state.counted.clear();
        }
        let mut new = 0;
        for key in to_run {
            if state.counted.insert(key.clone()) {
                new += 1;
            }
        }
        match (&state.bar, state.running) {
            (Some(bar), 1..) => bar.inc_length(new),
            _ => {
                let bar = indicatif::ProgressBar::with_draw_target(
                    Some(new),
                    self.shared.target.draw_target(),
                )
                .with_style(style());
                if !bar.is_hidden() {
                    bar.enable_steady_tick(TICK);
                }
                let counted = std::mem::take(&mut state.counted);
                *state = State {
                    bar: Some(bar),
                    counted,
                    ..State::default()
                };
            }
        }
        state.running += 1;
    }

    fn task_finished(&self, task: &TaskFinished) {
        let mut state = self.lock();
        if state.running == 0 {
            // A task of a compute that already finished, ending late.
            return;
        }
        match task.outcome() {
            Outcome::Done => {}
            Outcome::Failed(_) => state.failures += 1,
            Outcome::Cached => state.cached += 1,
            _ => return,
        }
        let (failures, cached) = (state.failures, state.cached);
        let Some(bar) = &state.bar else { return };
        match task.outcome() {
            Outcome::Failed(_) | Outcome::Cached => bar.set_message(summary(failures, cached)),
            _ => {}
        }
        // A task that a compute which started later also waited for would
        // otherwise count beyond the length.
        if bar.length().is_some_and(|length| bar.position() < length) {
            bar.inc(1);
        }
    }

    fn finish(&self, result: Result<(), &Error>) {
        let mut state = self.lock();
        if state.running == 0 {
            return;
        }
        state.running -= 1;
        if let (Err(err), None) = (result, &state.error) {
            state.error = Some(err.clone());
        }
        if state.running > 0 {
            return;
        }
        let Some(bar) = &state.bar else { return };
        match &state.error {
            None => bar.finish_with_message(format!("done in {:.1?}", bar.elapsed())),
            Some(err) if err.is_cancelled() => bar.abandon_with_message("cancelled"),
            Some(err) => bar.abandon_with_message(format!("failed: {}", cause(err))),
        }
    }

    fn identity(&self) -> usize {
        // Clones share one bar: they are one callback.
        Arc::as_ptr(&self.shared).cast::<()>() as usize
    }
}

/// What made a compute fail, on one line: the error, which names the task
/// that failed first, then each cause it gives, like
/// ``task `load-3` failed: permission denied``.
fn cause(err: &Error) -> String {
    let mut line = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let message = cause.to_string();
        // A message that already says its cause is not repeated.
        if !message.is_empty() && !line.contains(&message) {
            line.push_str(": ");
            line.push_str(&message);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

/// The bar's look: see [`TEMPLATE`].
fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .expect("the template is valid")
        .progress_chars("#>-")
        .with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = write!(w, "{:.1}/s", state.per_sec());
        })
}

impl Target {
    fn draw_target(self) -> ProgressDrawTarget {
        match self {
            Target::Auto if io::stderr().is_terminal() => {
                ProgressDrawTarget::stderr_with_hz(REFRESH_HZ)
            }
            Target::Auto | Target::Hidden => ProgressDrawTarget::hidden(),
            Target::Forced => {
                let stderr = ProgressDrawTarget::stderr_with_hz(REFRESH_HZ);
                if stderr.is_hidden() {
                    // indicatif hides a bar on anything but an attended
                    // terminal: write the same escape codes ourselves.
                    ProgressDrawTarget::term_like_with_hz(Box::new(RawStderr), REFRESH_HZ)
                } else {
                    stderr
                }
            }
        }
    }
}

/// Stderr as a terminal, whatever it really is: the draw target of a
/// forced bar when stderr is not a terminal.
#[derive(Debug)]
struct RawStderr;

impl RawStderr {
    fn escape(n: usize, code: char) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        write!(io::stderr(), "\x1b[{n}{code}")
    }
}

impl TermLike for RawStderr {
    fn width(&self) -> u16 {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|columns| columns.parse().ok())
            .filter(|&columns| columns > 0)
            .unwrap_or(80)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        RawStderr::escape(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        RawStderr::escape(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        RawStderr::escape(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        RawStderr::escape(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr(), "{s}")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        io::stderr().write_all(s.as_bytes())
    }

    fn clear_line(&self) -> io::Result<()> {
        io::stderr().write_all(b"\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// The bar's message: how many tasks failed and how many came from a cache.
fn summary(failures: u64, cached: u64) -> String {
    match (failures, cached) {
        (0, cached) => format!("{cached} cached"),
        (failures, 0) => format!("{failures} failed"),
        (failures, cached) => format!("{failures} failed, {cached} cached"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal that keeps what was last drawn on its line.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            self.0.lock().unwrap().clear();
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_template_draws_counts_rate_and_message() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let bar = indicatif::ProgressBar::with_draw_target(Some(10), target).with_style(style());
        bar.set_position(5);
        bar.set_message("1 failed");
        bar.abandon();
        let line = screen.0.lock().unwrap().trim_end().to_string();
        assert!(line.contains("[00:00:00]"), "{line}");
        assert!(line.contains("[###############>--------------]"), "{line}");
        assert!(line.contains(" 5/10 tasks "), "{line}");
        assert!(line.contains("/s ETA "), "{line}");
        assert!(line.ends_with(" 1 failed"), "{line}");
    }

    #[test]
    fn hidden_and_forced_targets() {
        assert!(Target::Hidden.draw_target().is_hidden());
        assert!(!Target::Forced.draw_target().is_hidden());
        if !io::stderr().is_terminal() {
            assert!(Target::Auto.draw_target().is_hidden());
        }
    }
}
