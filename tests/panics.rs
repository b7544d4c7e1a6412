//! Promises under user panics: a panic anywhere in user code (a body, the
//! `Drop` of an input, of an output or of a captured value, a `Clone` the
//! crate calls, a pure argument's `Hash`, a callback hook) becomes an
//! [`Error`] with `is_panic()` and the panic's message, for the node and
//! every waiter, now and later; no node is left running, nothing hangs,
//! the blocking pool keeps working, and a callback that panicked is
//! detached.
//!
//! Every compute here runs under a real-time bound (`bounded`) and with
//! its poll's panics caught, so that a hang or a panic that escapes to the
//! caller fails the test with a message instead of hanging the suite.
//!
//! A `Drop` that panics while the thread already unwinds aborts the
//! process, so the panicking `Drop`s below never panic while the thread is
//! panicking (and a value is dropped once, so each panics at most once).

use std::any::Any;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use delayed::{
    delayed, Callback, Delayed, Error, Graph, Options, TaskFinished, TaskStarted, TaskState,
};

/// How long a compute may take before it counts as hung. Every compute
/// here takes microseconds; this is real time, on a runtime whose clock
/// is not paused.
const GUARD: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A future with its poll's panics caught.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The message of a panic payload.
fn message_of(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Awaits `future` for at most [`GUARD`]: its output, or what went wrong
/// (it hung, or its poll panicked).
async fn try_bounded<F: Future>(future: F) -> Result<F::Output, String> {
    match tokio::time::timeout(GUARD, CatchUnwind(Box::pin(future))).await {
        Err(_) => Err(format!("hung (no result after {GUARD:?})")),
        Ok(Err(payload)) => Err(format!(
            "the panic escaped to the caller instead of becoming an `Error`: {}",
            message_of(&*payload)
        )),
        Ok(Ok(output)) => Ok(output),
    }
}

/// Awaits `future` for at most [`GUARD`]; fails the test, saying `what`
/// hung or panicked, if it does not end or if its poll panics.
async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    try_bounded(future)
        .await
        .unwrap_or_else(|problem| panic!("{what}: {problem}"))
}

/// How a bounded compute ended, for a failure message.
fn describe<T>(outcome: &Result<Result<T, Error>, String>) -> String {
    match outcome {
        Ok(Ok(_)) => "succeeded".to_string(),
        Ok(Err(err)) => format!("failed: {err}"),
        Err(problem) => problem.clone(),
    }
}

/// Whether `err`, or an error in its source chain, carries `message`.
fn carries(err: &Error, message: &str) -> bool {
    if err.to_string().contains(message) {
        return true;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause.to_string().contains(message) {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Asserts that `result` is a panic error that carries `message`.
fn assert_panic<T>(what: &str, result: Result<T, Error>, message: &str) -> Error {
    let err = match result {
        Ok(_) => panic!("{what}: succeeded, but a panic ({message:?}) should have failed it"),
        Err(err) => err,
    };
    assert!(
        err.is_panic(),
        "{what}: expected a panic error carrying {message:?}, got: {err} ({err:?})"
    );
    assert!(
        carries(&err, message),
        "{what}: the panic error does not carry the panic's message {message:?}: {err}"
    );
    err
}

/// Asserts that no node of `node`'s graph is left running.
fn assert_none_running<T: Send + Sync + 'static>(what: &str, node: &Delayed<T>) {
    let graph = node.graph();
    let running: Vec<String> = graph
        .nodes()
        .iter()
        .filter(|n| n.state() == TaskState::Running)
        .map(|n| n.key().to_string())
        .collect();
    assert!(
        running.is_empty(),
        "{what}: nodes left running: {running:?}"
    );
}

/// The promise for a node whose run panics: the node and a dependent,
/// computed at once, both fail with the panic; a second compute of the
/// node fails with the same error (it does not hang, and the node does
/// not run again); nothing is left running.
async fn assert_fails_for_every_waiter(node: &Delayed<u64>, message: &str) {
    let dependent = node.map(|x| x + 1);
    let (first, waiter) = tokio::join!(
        try_bounded(node.compute()),
        try_bounded(dependent.compute()),
    );
    let (first, waiter) = match (first, waiter) {
        (Ok(first), Ok(waiter)) => (first, waiter),
        (first, waiter) => panic!(
            "the first compute: {}; a dependent's compute, at the same time: {}",
            describe(&first),
            describe(&waiter)
        ),
    };
    let first = assert_panic("the first compute", first, message);
    assert_panic("a dependent's compute", waiter, message);
    let again = bounded("the second compute", node.compute()).await;
    let again = assert_panic("the second compute", again, message);
    assert_eq!(
        again.to_string(),
        first.to_string(),
        "the second compute should get the stored error"
    );
    assert_none_running("after the panic", node);
}

/// A value whose `Drop` panics with its message, unless the thread
/// already unwinds. A clone is a value of its own, and panics too.
struct Bomb {
    message: &'static str,
    weight: u64,
}

impl Bomb {
    fn new(message: &'static str) -> Bomb {
        Bomb { message, weight: 1 }
    }
}

impl Clone for Bomb {
    fn clone(&self) -> Bomb {
        Bomb::new(self.message)
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.message);
        }
    }
}

/// A value whose `Clone` always panics with its message.
struct Brittle(&'static str);

impl Clone for Brittle {
    fn clone(&self) -> Self {
        panic!("{}", self.0)
    }
}

// ---------------------------------------------------------------------------
// Drops that panic
// ---------------------------------------------------------------------------

#[delayed]
fn weigh(bomb: &Bomb) -> u64 {
    bomb.weight
}

#[delayed]
fn consume(bomb: Bomb) -> u64 {
    bomb.weight
}

#[delayed]
async fn consume_async(bomb: Bomb) -> u64 {
    bomb.weight
}

#[delayed(blocking)]
fn weigh_blocking(bomb: &Bomb) -> u64 {
    bomb.weight
}

const OUTPUT_MESSAGE: &str = "Drop of an output when its only dependent finished";

#[delayed]
fn make_bomb() -> Bomb {
    Bomb::new(OUTPUT_MESSAGE)
}

#[delayed]
async fn measure(bomb: &Bomb) -> u64 {
    bomb.weight
}

#[tokio::test]
async fn input_drop_panic_in_sync_node_by_reference_fails_the_node() {
    const MESSAGE: &str = "Drop of an input borrowed by a sync node";
    // The literal input is held by the node only: it is dropped when the
    // node has run.
    let node = weigh(Delayed::value(Bomb::new(MESSAGE)));
    assert_fails_for_every_waiter(&node, MESSAGE).await;
}

#[tokio::test]
async fn input_drop_panic_in_sync_node_owned_fails_the_node() {
    const MESSAGE: &str = "Drop of an input moved into a sync node";
    // The node holds the only handle to its input: the value is moved into
    // the body, which drops it.
    let node = consume(Delayed::value(Bomb::new(MESSAGE)));
    assert_fails_for_every_waiter(&node, MESSAGE).await;
}

#[tokio::test]
async fn input_drop_panic_in_sync_node_with_a_policy_fails_the_node() {
    const MESSAGE: &str = "Drop of an input of a sync node with a timeout";
    // A node with a policy may run again, so its body gets a clone of its
    // input: both the clone (in the body) and the input itself (when the
    // node gives up its inputs) panic as they are dropped.
    let node = consume(Delayed::value(Bomb::new(MESSAGE))).timeout(Duration::from_secs(3600));
    assert_fails_for_every_waiter(&node, MESSAGE).await;
}

#[tokio::test]
async fn input_drop_panic_in_async_node_owned_fails_the_node() {
    const MESSAGE: &str = "Drop of an input cloned into an async node";
    // An async body may run again, so it gets a clone of its input: both
    // the clone (in the body) and the input itself (when the node gives up
    // its inputs) panic as they are dropped.
    let node = consume_async(Delayed::value(Bomb::new(MESSAGE)));
    assert_fails_for_every_waiter(&node, MESSAGE).await;
}

#[tokio::test]
async fn input_drop_panic_in_blocking_node_fails_the_node() {
    const MESSAGE: &str = "Drop of an input borrowed by a blocking node";
    let node = weigh_blocking(Delayed::value(Bomb::new(MESSAGE)));
    assert_fails_for_every_waiter(&node, MESSAGE).await;
}

#[tokio::test]
async fn output_drop_panic_when_the_dependent_finishes_fails_the_dependent() {
    // Only `measure` holds `make_bomb`'s node: when `measure` finishes and
    // gives up its inputs, the bomb is dropped.
    let node = measure(make_bomb());
    assert_fails_for_every_waiter(&node, OUTPUT_MESSAGE).await;
}

#[tokio::test]
async fn captured_value_drop_panic_in_map_fails_the_node() {
    const MESSAGE: &str = "Drop of a value captured by a map closure";
    let guard = Bomb::new(MESSAGE);
    let node = Delayed::value(1_u64).map(move |x| {
        let guard = &guard;
        x + guard.weight
    });
    assert_fails_for_every_waiter(&node, MESSAGE).await;
}

#[tokio::test]
async fn captured_value_drop_panic_in_then_fails_the_node() {
    const MESSAGE: &str = "Drop of a value captured by a then closure";
    let guard = Bomb::new(MESSAGE);
    // `then` takes an `Fn`: the closure, and the guard it captures, stay in
    // the node until its run is over.
    let node = Delayed::value(1_u64).then(move |x| {
        let guard = &guard;
        let weight = guard.weight;
        async move { x + weight }
    });
    assert_fails_for_every_waiter(&node, MESSAGE).await;
}

// ---------------------------------------------------------------------------
// Clones that panic
// ---------------------------------------------------------------------------

/// A node that makes a `Brittle` (without cloning one).
fn make_brittle(message: &'static str) -> Delayed<Brittle> {
    Delayed::lazy(move || Brittle(message))
}

#[delayed]
fn keep(brittle: Brittle) -> u64 {
    brittle.0.len() as u64
}

#[tokio::test]
async fn clone_panic_when_a_compute_clones_the_output_fails_the_compute() {
    const MESSAGE: &str = "Clone of an output computed by reference";
    let node = make_brittle(MESSAGE);
    // `compute()` borrows the handle, so it clones the output.
    let first = bounded("the first compute", node.compute()).await;
    assert_panic("the first compute", first, MESSAGE);
    let again = bounded("the second compute", node.compute()).await;
    assert_panic("the second compute", again, MESSAGE);
    assert_none_running("after the panic", &node);
}

#[tokio::test]
async fn clone_panic_when_an_owned_compute_shares_the_output_fails_the_compute() {
    const MESSAGE: &str = "Clone of an output computed by value while shared";
    let node = make_brittle(MESSAGE);
    let other = node.clone();
    // `delayed::compute` moves the output out only when it holds the last
    // handle; `other` lives, so it clones.
    let first = bounded("the owned compute", delayed::compute(node)).await;
    assert_panic("the owned compute", first, MESSAGE);
    let again = bounded("a compute of the other handle", other.compute()).await;
    assert_panic("a compute of the other handle", again, MESSAGE);
    assert_none_running("after the panic", &other);
}

#[tokio::test]
async fn clone_panic_when_a_body_takes_a_shared_owned_input_fails_the_node() {
    const MESSAGE: &str = "Clone of a shared input taken by value";
    let input = make_brittle(MESSAGE);
    // `input` is shared (the test holds it), so `keep` gets a clone.
    let node = keep(&input);
    assert_fails_for_every_waiter(&node, MESSAGE).await;
    drop(input);
}

// ---------------------------------------------------------------------------
// A Hash that panics
// ---------------------------------------------------------------------------

/// An argument whose `Hash` panics.
#[derive(Clone)]
struct Unhashable;

const HASH_MESSAGE: &str = "Hash of a pure call's argument";

impl Hash for Unhashable {
    fn hash<H: Hasher>(&self, _state: &mut H) {
        panic!("{HASH_MESSAGE}");
    }
}

#[delayed(pure)]
fn pure_one(_arg: Unhashable) -> u64 {
    1
}

#[tokio::test]
async fn hash_panic_in_a_pure_call_argument_fails_the_compute() {
    let built = catch_unwind(|| pure_one(Unhashable));
    let node = built.unwrap_or_else(|payload| {
        panic!(
            "making a pure call whose argument's Hash panics panicked the caller \
             instead of failing the compute: {}",
            message_of(&*payload)
        )
    });
    assert_fails_for_every_waiter(&node, HASH_MESSAGE).await;
}

// ---------------------------------------------------------------------------
// Callback hooks that panic
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Start,
    TaskStarted,
    TaskFinished,
    Finish,
}

impl Hook {
    fn message(self) -> &'static str {
        match self {
            Hook::Start => "the callback's start hook",
            Hook::TaskStarted => "the callback's task_started hook",
            Hook::TaskFinished => "the callback's task_finished hook",
            Hook::Finish => "the callback's finish hook",
        }
    }
}

/// A callback that panics in one hook, every time it is called.
struct PanicIn(Hook);

impl PanicIn {
    fn hit(&self, hook: Hook) {
        if self.0 == hook {
            panic!("{}", hook.message());
        }
    }
}

impl Callback for PanicIn {
    fn start(&self, _graph: &Graph) {
        self.hit(Hook::Start);
    }

    fn task_started(&self, _task: &TaskStarted) {
        self.hit(Hook::TaskStarted);
    }

    fn task_finished(&self, _task: &TaskFinished) {
        self.hit(Hook::TaskFinished);
    }

    fn finish(&self, _result: Result<(), &Error>) {
        self.hit(Hook::Finish);
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Sync,
    Blocking,
    Async,
}

/// `1 + 1`, in one node of the given kind.
fn one_node(kind: Kind) -> Delayed<u64> {
    let input = Delayed::value(1_u64);
    match kind {
        Kind::Sync => input.map(|x| x + 1),
        Kind::Blocking => input.map_blocking(|x| x + 1),
        Kind::Async => input.then(|x| async move { x + 1 }),
    }
}

/// A compute whose callback panics in `hook` ends with that panic as its
/// error; a later compute of the same graph without the callback ends
/// too: with the node's stored panic when the hook was the node's own
/// (`task_started`, `task_finished`), with the value when it was the
/// compute's (`start`, `finish`).
async fn hook_panic_fails_the_compute(hook: Hook, kind: Kind) {
    let message = hook.message();
    let node = one_node(kind);
    let what = format!("a compute of a {kind:?} node whose callback panics in {hook:?}");
    let result = bounded(
        &what,
        node.compute_with(Options::new().callback(PanicIn(hook))),
    )
    .await;
    assert_panic(&what, result, message);
    assert_none_running(&what, &node);

    let what = format!("a later compute, without the callback, of a {kind:?} node");
    let later = bounded(&what, node.compute()).await;
    match hook {
        Hook::TaskStarted | Hook::TaskFinished => {
            assert_panic(&what, later, message);
        }
        Hook::Start | Hook::Finish => match later {
            Ok(value) => assert_eq!(value, 2, "{what}"),
            Err(err) => panic!("{what}: failed: {err}"),
        },
    }
    assert_none_running(&what, &node);
}

macro_rules! hook_tests {
    ($($name:ident: $hook:ident, $kind:ident;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                hook_panic_fails_the_compute(Hook::$hook, Kind::$kind).await;
            }
        )*
    };
}

hook_tests! {
    start_hook_panic_fails_a_sync_compute: Start, Sync;
    start_hook_panic_fails_a_blocking_compute: Start, Blocking;
    start_hook_panic_fails_an_async_compute: Start, Async;
    task_started_hook_panic_fails_the_sync_node: TaskStarted, Sync;
    task_started_hook_panic_fails_the_blocking_node: TaskStarted, Blocking;
    task_started_hook_panic_fails_the_async_node: TaskStarted, Async;
    task_finished_hook_panic_fails_the_sync_node: TaskFinished, Sync;
    task_finished_hook_panic_fails_the_blocking_node: TaskFinished, Blocking;
    task_finished_hook_panic_fails_the_async_node: TaskFinished, Async;
    finish_hook_panic_fails_a_sync_compute: Finish, Sync;
    finish_hook_panic_fails_a_blocking_compute: Finish, Blocking;
    finish_hook_panic_fails_an_async_compute: Finish, Async;
}

// ---------------------------------------------------------------------------
// The blocking pool survives panics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn blocking_nodes_still_run_after_a_hundred_blocking_panics() {
    const MESSAGE: &str = "Drop of an input of one of 100 blocking nodes";
    let nodes: Vec<Delayed<u64>> = (0..100)
        .map(|_| weigh_blocking(Delayed::value(Bomb::new(MESSAGE))))
        .collect();
    let panicked =
        tokio::time::timeout(GUARD, CatchUnwind(Box::pin(delayed::compute_each(nodes)))).await;

    let after = Delayed::value(41_u64).map_blocking(|x| x + 1);
    let what = format!(
        "a blocking node after 100 blocking panics (the panicking computes {})",
        match &panicked {
            Err(_) => "hung",
            Ok(Err(_)) => "panicked",
            Ok(Ok(_)) => "ended",
        }
    );
    match bounded(&what, after.compute()).await {
        Ok(value) => assert_eq!(value, 42),
        Err(err) => panic!("{what}: failed: {err}"),
    }

    let results = match panicked {
        Ok(Ok(results)) => results,
        Ok(Err(payload)) => panic!(
            "computing the 100 panicking blocking nodes panicked: {}",
            message_of(&*payload)
        ),
        Err(_) => panic!("computing the 100 panicking blocking nodes hung"),
    };
    assert_eq!(results.len(), 100);
    for (i, result) in results.into_iter().enumerate() {
        assert_panic(&format!("blocking node {i}"), result, MESSAGE);
    }
}

// ---------------------------------------------------------------------------
// A callback that panicked is detached
// ---------------------------------------------------------------------------

/// A compute's callback whose `start` panics, and which counts the task
/// events it hears.
#[derive(Default)]
struct StartPanics {
    heard: AtomicUsize,
}

const START_MESSAGE: &str = "a compute callback's start, which then hears nothing";

impl Callback for StartPanics {
    fn start(&self, _graph: &Graph) {
        panic!("{START_MESSAGE}");
    }

    fn task_started(&self, _task: &TaskStarted) {
        self.heard.fetch_add(1, Ordering::SeqCst);
    }

    fn task_finished(&self, _task: &TaskFinished) {
        self.heard.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_callback_whose_start_panicked_hears_nothing_more() {
    let callback = Arc::new(StartPanics::default());
    let node = Delayed::value(1_u64).map(|x| x + 1).map(|x| x * 10);
    // How the first compute ends is checked by the start hook tests; here
    // it only has to end.
    let first = tokio::time::timeout(
        GUARD,
        CatchUnwind(Box::pin(
            node.compute_with(Options::new().callback(Arc::clone(&callback))),
        )),
    )
    .await;
    assert!(first.is_ok(), "the compute whose callback panicked hung");

    let later = bounded("a later compute without the callback", node.compute()).await;
    match later {
        Ok(value) => assert_eq!(value, 20),
        Err(err) => panic!("a later compute without the callback failed: {err}"),
    }
    assert_eq!(
        callback.heard.load(Ordering::SeqCst),
        0,
        "the callback whose start panicked heard the tasks of a later compute"
    );
}

/// The prefix of the keys of this test's nodes: a scoped callback hears
/// every compute of the process, including the other tests'.
const SCOPE_PREFIX: &str = "panics-scoped-";

fn ours(key: &delayed::Key) -> bool {
    key.to_string().starts_with(SCOPE_PREFIX)
}

/// A scoped callback that panics the first time one of our tasks starts,
/// and counts what it hears of our computes after that.
#[derive(Default)]
struct ScopedPanics {
    panicked: AtomicBool,
    heard: AtomicUsize,
}

const SCOPED_MESSAGE: &str = "a scoped callback's task_started, which then hears nothing";

impl ScopedPanics {
    fn heard(&self) {
        if self.panicked.load(Ordering::SeqCst) {
            self.heard.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Callback for ScopedPanics {
    fn start(&self, graph: &Graph) {
        if graph.nodes().iter().any(|node| ours(node.key())) {
            self.heard();
        }
    }

    fn task_started(&self, task: &TaskStarted) {
        if !ours(task.key()) {
            return;
        }
        if !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("{SCOPED_MESSAGE}");
        }
        self.heard();
    }

    fn task_finished(&self, task: &TaskFinished) {
        if ours(task.key()) {
            self.heard();
        }
    }
}

#[tokio::test]
async fn a_scoped_callback_that_panicked_hears_nothing_more() {
    let callback = Arc::new(ScopedPanics::default());
    let _scope = delayed::observe(Arc::clone(&callback));

    let first = Delayed::value(1_u64)
        .then(|x| async move { x + 1 })
        .named(format!("{SCOPE_PREFIX}first"));
    // How that compute ends is checked by the hook tests; here it only has
    // to end.
    let ended = tokio::time::timeout(GUARD, CatchUnwind(Box::pin(first.compute()))).await;
    assert!(
        ended.is_ok(),
        "the compute whose scoped callback panicked hung"
    );
    assert!(
        callback.panicked.load(Ordering::SeqCst),
        "the callback never ran"
    );

    // Still in the scope: a callback that panicked must not hear it.
    let second = Delayed::value(2_u64)
        .then(|x| async move { x + 1 })
        .named(format!("{SCOPE_PREFIX}second"));
    match bounded("a later compute in the same scope", second.compute()).await {
        Ok(value) => assert_eq!(value, 3),
        Err(err) => panic!("a later compute in the same scope failed: {err}"),
    }
    assert_eq!(
        callback.heard.load(Ordering::SeqCst),
        0,
        "the scoped callback that panicked heard a later compute"
    );
}
