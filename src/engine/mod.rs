//! The engine: nodes, their state machine, scheduling, the runners, the
//! blocking pool, the attempt runner, stored outputs, interning, spans and
//! snapshots.
//!
//! The engine names nothing above it. The API layer (`Delayed`, the
//! builder, `Compute`) makes nodes and computes them through the functions
//! here; extensions see a node only through
//! [`NodeView`](view::NodeView) and reach the engine through the traits of
//! [`hooks`]: an [`Executor`](hooks::Executor) runs attempts elsewhere, an
//! [`OutputStore`](hooks::OutputStore) keeps finished outputs elsewhere,
//! and a [`Placement`](hooks::Placement) decides where a compute's nodes
//! run. Callbacks are the vocabulary's `Callback` trait, called from
//! [`watch`].
//!
//! # Files
//!
//! | file | what it holds |
//! |---|---|
//! | `node.rs` | `TypedNode<T, W>`: the state, the output cell and the work; `AnyNode`, its erased face; `settle` |
//! | `state.rs` | `Core` and `State`: name, key id, phase, epoch, demand, inputs, waiters, policy |
//! | `schedule.rs` | demand, activation, release (cancellation), notification |
//! | `work.rs` | the three kinds of work: inline, async, blocking |
//! | `runner.rs` | runner tasks that drain queues of ready nodes |
//! | `blocking.rs` | the per-runtime blocking pool |
//! | `attempts.rs` | the attempt runner: limits, timeouts, retries, executors |
//! | `elsewhere.rs` | runs an executor holds with no task here, and the `Settle` that ends them |
//! | `loan.rs` | a running body's permit: lent back while it waits for a nested compute, handed on when it ends |
//! | `stored.rs` | stored outputs: read back, revert, restart |
//! | `root.rs` | a compute's demand on its root, and taking the output |
//! | `wakes.rs` | computes woken after the engine let go of the nodes it ran, so that `.await` can move an output out |
//! | `sequential.rs` | the sequential debug scheduler |
//! | `watch.rs` | the callbacks of running computes, each callback attached once, each call guarded; the mark of a running body |
//! | `make.rs`, `deps.rs`, `inputs.rs`, `waiters.rs` | making nodes; inputs as work reads them; compact lists |
//! | `intern.rs`, `spans.rs`, `snapshot.rs`, `view.rs`, `hooks.rs`, `guard.rs` | pure-call interning; task spans (their parent, the compute's caller span, and their links); graph snapshots; the extensions' faces; panic guards |
//!
//! # The state machine
//!
//! Every node has one `State` behind one mutex (`Core::lock`). Its `phase`:
//!
//! ```text
//!   Idle ──demand──▶ Claimed ──activate──▶ Waiting{k} ──k-th input done──▶ Ready
//!    ▲                  └──────activate, nothing to wait for──────────────▶ Ready
//!    │                                                                       │ begin
//!    │                                                                       ▼
//!    ├──── release (demand 0) / interrupt (runtime gone) ─────────────── Running
//!    │                                                                       │ settle
//!    │                                                          ┌────────────┴─────┐
//!    │                                                          ▼                  ▼
//!    └──────────── revert (a stored output went away) ───── Done (stored?)      Failed
//! ```
//!
//! Release and interrupt also take Waiting and Ready nodes back to Idle;
//! an input that fails takes a Waiting dependent straight to Failed.
//!
//! - **Idle**: nobody wants it, or it was stopped before it finished. A
//!   later demand starts it again.
//! - **Claimed**: wanted; the activation walk will register it on its
//!   unfinished inputs (each such input gets one unit of demand and a
//!   `Waiter::Node`), claiming idle inputs in turn. The walk bumps the
//!   node's `epoch`: every registration and every run carries the epoch it
//!   was made in, and a message for an older epoch is ignored.
//! - **Waiting { pending }**: registered on `pending` unfinished inputs.
//!   Each input that finishes decrements it; at zero the node is Ready. An
//!   input that fails fails it at once, with the same error, and the
//!   failure travels on through its dependents (`schedule::notify`).
//! - **Ready**: queued on a runner (or the blocking pool).
//! - **Running { abort, abortable }**: its work runs. Async work can be
//!   aborted while `abortable`, through its `Stop`: the task's abort
//!   handle, or the hook of an executor that holds the run with no task
//!   here (`elsewhere.rs`). Sync and blocking work, and any run whose
//!   work has returned (`settle` marks the run not abortable before it
//!   drops the inputs), run to the end.
//! - **Done**: the output is in the cell, and the inputs and the work have
//!   been dropped (so intermediates are freed as soon as nothing needs
//!   them). A node *with a stored output* is Done with `stored` set: its
//!   cell is empty, and it keeps its inputs and work.
//! - **Failed(err)**: the error every waiter gets, now and later. A node
//!   failed by an input keeps the inputs that failed (`failed_inputs` in
//!   `schedule.rs`) and lets go of the rest: so snapshots can draw the path
//!   from the root cause, and failed nodes hold no output to keep alive.
//!
//! Literals start Done. `Done` and `Failed` are final, except that a
//! stored node is reverted to Idle when its store lets its output go.
//!
//! # Demand and cancellation
//!
//! `demand` counts who wants an unfinished node: each compute waiting on
//! it, and each dependent in `Waiting` registered on it. `release_all`
//! takes one unit back; at zero the node stops: a Waiting node releases
//! its inputs in turn, a Ready node goes back to Idle (its runner skips
//! it), an abortable running node is aborted. Every walk (activate,
//! release, notify, drop) is a loop over an explicit stack, so graphs a
//! million nodes deep never grow the call stack, and a graph is dropped
//! iteratively too (`node::drop_iteratively`).
//!
//! A run cancelled just as its work returned keeps a value: `settle` takes
//! it if the node is Idle or Claimed in the same epoch, rather than run the
//! work again.
//!
//! A compute that finds its root Idle after it started waiting was
//! interrupted from outside (the runtime that ran the node shut down): it
//! demands the root again, on its own runtime, up to a few times.
//!
//! # Stored outputs
//!
//! An attempt that runs through an executor may leave its output in an
//! `OutputStore` (`Made::Stored`): the node becomes Done with `stored`
//! set, and its waiters hear `Ended::Stored`, which marks their run
//! `read_back`. A join whose inputs are stored is stored too, without
//! running. A run with `read_back` goes through the attempt runner, which
//! reads stored inputs back first (`stored::read_back_all`: from the
//! store, or a join by running it over its read-back inputs). If a stored
//! node was reverted meanwhile, the reader's attempt ends with
//! `Made::Again` and `schedule::restart` sets its run up again from
//! Claimed, which runs the reverted input first. A compute whose root is
//! stored reads it back the same way.
//!
//! # Locks
//!
//! - A walk holds at most two node locks at once, a node and then one of
//!   its inputs, in that order; nothing locks an input and then its
//!   dependent. So walks cannot deadlock.
//! - No user code runs under a node lock: not work, not `Drop`, not
//!   `Clone`, not `Hash`, not callbacks, not wakers' `wake`. Values that may
//!   run user code when dropped (inputs, outputs, work, stale waiters) are
//!   taken out under the lock and dropped after it is released.
//! - The watch registry's lock and the blocking pool's lock are leaves:
//!   nothing else is locked under them, and callbacks run after the watch
//!   lock is released.
//!
//! # User code and panics
//!
//! User code can panic anywhere; each panic becomes an `Error` with
//! `is_panic()` for the node and every waiter, now and later, and nothing
//! is left running or unnotified:
//!
//! | where user code runs | what a panic does |
//! |---|---|
//! | the work (sync, blocking, async, and making the async future) | caught around the call (`work.rs`); the node fails |
//! | `Drop` of the inputs a sync or blocking call consumed | dropped inside the same catch; the node fails |
//! | `Drop` of the inputs a node held, of its work's captured values, of an input's output freed when the node finishes | `settle` drops them, caught, before it tells the waiters; the node fails |
//! | `Clone` of an output (owned parameters, `compute`) | inside the work's catch, or caught in `root::clone_output`; that node or that compute fails |
//! | `Hash` of a pure call's argument | caught while the key is made; the node is made failed, and every compute of it fails |
//! | a callback hook (`start`, `task_started`, `task_finished`, `finish`) | caught in `watch.rs`; the callback is detached (it hears nothing more, in any compute); the task (or the compute, for `start` and `finish`) fails with the panic |
//! | `Drop` of a value nobody waits for any more (a cancelled run's result, a failed node's work, a graph dropped by the engine) | caught and dropped quietly: the panic hook has printed it, and no waiter is left to fail |
//!
//! The blocking pool gives its slot back even if a job unwinds, so blocking
//! work keeps running after any number of panics.
//!
//! # Runtimes
//!
//! Ready nodes run on the runtime that made them ready (or the compute's,
//! or a shared fallback runtime outside any runtime). Each runtime has a
//! blocking pool of its own: one runtime's blocking work never runs on
//! another's threads, and dropping a runtime never waits for another's
//! work. When a runtime shuts down, the runs it drops hand their nodes
//! back as interrupted (`work::RunGuard`, the runner's queue guard, the
//! pool's unstarted-slot guard).

pub(crate) mod attempts;
pub(crate) mod blocking;
pub(crate) mod deps;
pub(crate) mod elsewhere;
pub(crate) mod guard;
pub(crate) mod hooks;
pub(crate) mod inputs;
pub(crate) mod intern;
pub(crate) mod loan;
pub(crate) mod make;
pub(crate) mod node;
pub(crate) mod policy;
pub(crate) mod root;
pub(crate) mod runner;
pub(crate) mod schedule;
pub(crate) mod sequential;
pub(crate) mod snapshot;
pub(crate) mod spans;
pub(crate) mod state;
pub(crate) mod stored;
#[cfg(test)]
mod stored_tests;
pub(crate) mod view;
pub(crate) mod waiters;
pub(crate) mod wakes;
pub(crate) mod watch;
pub(crate) mod work;

pub(crate) use self::watch::Attached;
