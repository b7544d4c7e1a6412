//! Task spans: their parents, their links, and the span each run executes
//! in.
//!
//! **Parents.** A compute captures the span current where it begins (its
//! first poll; for `persist`, the call), its *caller*. The demand walk
//! hands it to every node it claims, and a node's span is opened as a child
//! of it, in the caller's subscriber, which is also the default subscriber
//! while the task runs. The run enters the caller's span and then the
//! task's, so what a task logs sits in the span of the request that
//! started it, even for a subscriber that disables the `delayed.task`
//! spans, or a layer whose own filter hides them. A node no compute with a
//! caller claimed (the caller's span was disabled) is a child of the span
//! current where it starts, as before.
//!
//! **Shared nodes.** A compute that needs a node another compute already
//! claimed links that node's span to its own caller with `follows_from`:
//! the node is a child of the first compute's caller and follows from the
//! others'. The link is made where the later compute meets the work under
//! way (its root, or an input of a node it claims): when the node's span
//! opens, or at once if it is open.
//!
//! **Inputs.** A task's span follows from its inputs' spans. A task runs
//! after its inputs finished, when their spans would be closed, and a
//! closed span's id may be reused; so a task's span is kept with its node,
//! open until the node is dropped or runs again.
//!
//! **Costs and locks.** Nothing is allocated, and no node lock is taken
//! here, until a caller span or a task span was enabled. No subscriber code
//! runs under a node lock: spans are kept behind `Arc`s, cloned under the
//! lock, and dropped and linked after it is released ([`Later`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::future::Either;
use tracing::{dispatcher, field, Dispatch, Instrument, Span};

use super::state::Core;

/// A span that nodes keep.
type Kept = Arc<Span>;

/// Whether a span was ever kept: until then, runs skip their node's lock.
static USED: AtomicBool = AtomicBool::new(false);

fn used() -> bool {
    USED.load(Ordering::Relaxed)
}

/// The caller of a compute: the span current where it began, if enabled.
pub(crate) struct Caller(Option<Kept>);

impl Caller {
    /// The span current here.
    pub(crate) fn current() -> Caller {
        let span = Span::current();
        if span.is_disabled() {
            return Caller(None);
        }
        USED.store(true, Ordering::Relaxed);
        Caller(Some(Arc::new(span)))
    }
}

/// What a node keeps of spans, behind its lock.
#[derive(Default)]
pub(crate) struct Trace(Option<Box<Traced>>);

#[derive(Default)]
struct Traced {
    /// The caller of the compute that claimed the current run, until the
    /// run ends.
    caller: Option<Kept>,
    /// The callers of other computes that came for the run, until it ends.
    joined: Vec<Kept>,
    /// Whether the run's span was opened (it may be disabled).
    opened: bool,
    /// The span of the last run that opened one.
    span: Option<Kept>,
}

/// What a walk leaves to do once it has released its locks: spans to let
/// go of, and links to make.
#[derive(Default)]
pub(crate) struct Later {
    old: Vec<Trace>,
    links: Vec<(Kept, Kept)>,
}

impl Later {
    /// Makes the links. Call it with no node lock held; what is left is
    /// dropped with `self`.
    pub(crate) fn apply(mut self) {
        for (span, caller) in self.links.drain(..) {
            span.follows_from(&*caller);
        }
    }
}

/// Whether two kept spans are the same span.
fn same(a: &Kept, b: &Kept) -> bool {
    Arc::ptr_eq(a, b) || a.id() == b.id()
}

impl Trace {
    fn caller(&self) -> Option<&Kept> {
        self.0.as_ref()?.caller.as_ref()
    }

    /// A new run, claimed by a compute that began under `caller` (`None`
    /// for one under no span): what an earlier run kept is let go.
    pub(crate) fn claim(&mut self, caller: &Caller, later: &mut Later) {
        let fresh = caller.0.as_ref().map(|caller| {
            Box::new(Traced {
                caller: Some(Arc::clone(caller)),
                ..Traced::default()
            })
        });
        let old = std::mem::replace(self, Trace(fresh));
        if old.0.is_some() {
            later.old.push(old);
        }
    }

    /// A new run of an input, claimed for the run `dependent`: it has the
    /// dependent's caller.
    pub(crate) fn inherit(&mut self, dependent: &Trace, later: &mut Later) {
        self.claim(&Caller(dependent.caller().cloned()), later);
    }

    /// The compute of `caller` needs this run, which another claimed.
    pub(crate) fn join(&mut self, caller: &Caller, later: &mut Later) {
        let Some(caller) = &caller.0 else {
            return;
        };
        self.meet(caller, later);
    }

    /// The run `dependent` needs this run, which another claimed: this run
    /// follows from the dependent's caller.
    pub(crate) fn join_for(&mut self, dependent: &Trace, later: &mut Later) {
        if let Some(caller) = dependent.caller() {
            self.meet(caller, later);
        }
    }

    fn meet(&mut self, caller: &Kept, later: &mut Later) {
        let traced = self.0.get_or_insert_with(Box::default);
        let mut known = traced.caller.iter().chain(&traced.joined);
        if known.any(|known| same(known, caller)) {
            return;
        }
        traced.joined.push(Arc::clone(caller));
        if let (true, Some(span)) = (traced.opened, &traced.span) {
            later.links.push((Arc::clone(span), Arc::clone(caller)));
        }
    }

    /// The kept span of the last run.
    fn span(&self) -> Option<&Kept> {
        self.0.as_ref()?.span.as_ref()
    }
}

/// The span a run executes in, and the subscriber it reports to.
pub(crate) struct Run {
    /// The task's own span, a child of the caller.
    task: Span,
    /// The caller's span and subscriber, if the compute had a caller.
    caller: Option<(Kept, Dispatch)>,
}

/// Opens the span of a run of the node `core`: a child of its caller (or of
/// the current span, for a node no compute with a caller claimed), linked
/// to the callers of the other computes that need it.
pub(crate) fn open(core: &Core) -> Run {
    let (caller, traced) = match used() {
        true => {
            let st = core.lock();
            (st.trace.caller().cloned(), st.trace.0.is_some())
        }
        false => (None, false),
    };
    let caller = caller.and_then(|caller| {
        let dispatch = caller.with_subscriber(|(_, dispatch)| dispatch.clone())?;
        Some((caller, dispatch))
    });
    let task = match &caller {
        Some((span, dispatch)) => {
            dispatcher::with_default(dispatch, || task_span(core, Some(span)))
        }
        None => task_span(core, None),
    };
    if task.is_disabled() && !traced {
        // Nothing to keep, and nobody to link.
        return Run { task, caller };
    }
    USED.store(true, Ordering::Relaxed);
    let kept = (!task.is_disabled()).then(|| Arc::new(task.clone()));
    let (joined, old) = {
        let mut st = core.lock();
        let traced = st.trace.0.get_or_insert_with(Box::default);
        traced.opened = true;
        let joined = match kept {
            Some(_) => traced.joined.clone(),
            None => Vec::new(),
        };
        (joined, std::mem::replace(&mut traced.span, kept))
    };
    drop(old);
    for caller in &joined {
        task.follows_from(&**caller);
    }
    Run { task, caller }
}

/// A new `delayed.task` span: a child of `parent`, or of the current span.
fn task_span(core: &Core, parent: Option<&Span>) -> Span {
    let span = match parent {
        Some(parent) => tracing::debug_span!(
            parent: parent,
            "delayed.task",
            task.key = field::Empty,
            task.name = core.name()
        ),
        None => tracing::debug_span!(
            "delayed.task",
            task.key = field::Empty,
            task.name = core.name()
        ),
    };
    if !span.is_disabled() {
        span.record("task.key", field::display(core.key()));
    }
    span
}

/// Ends a run (not one that sets itself up again): its node lets go of
/// the callers, so that a request's span can close while the node lives.
/// The task's span stays, for the links of its dependents.
pub(crate) fn ended(core: &Core) {
    if !used() {
        return;
    }
    let old = {
        let mut st = core.lock();
        match st.trace.0.as_mut() {
            Some(traced) => (traced.caller.take(), std::mem::take(&mut traced.joined)),
            None => return,
        }
    };
    drop(old);
}

/// Makes the span of `run` follow from the kept spans of `inputs`.
pub(crate) fn link(run: &Run, inputs: &[super::node::NodeRef]) {
    if run.task.is_disabled() || !used() {
        return;
    }
    for input in inputs {
        let span = input.core().lock().trace.span().cloned();
        if let Some(span) = span {
            run.task.follows_from(&*span);
        }
    }
}

impl Run {
    /// Whether nobody looks: the task's span is disabled and there is no
    /// caller's span to run in.
    pub(crate) fn is_unobserved(&self) -> bool {
        self.task.is_disabled() && self.caller.is_none()
    }

    /// Runs `f` in the run's spans, with the caller's subscriber as the
    /// default. The caller's span is entered too, under the task's: a
    /// layer whose own filter hides the task's span still finds the
    /// caller's on the stack.
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.caller {
            Some((caller, dispatch)) => {
                dispatcher::with_default(dispatch, || caller.in_scope(|| self.task.in_scope(f)))
            }
            None => self.task.in_scope(f),
        }
    }

    /// `future`, polled as [`in_scope`](Run::in_scope) runs a closure.
    pub(crate) fn instrumented<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        let in_task = future.instrument(self.task.clone());
        match &self.caller {
            Some((caller, dispatch)) => {
                Either::Left(tracing::instrument::WithSubscriber::with_subscriber(
                    in_task.instrument(Span::clone(caller)),
                    dispatch.clone(),
                ))
            }
            None => Either::Right(in_task),
        }
    }
}

/// The spans of a run and its subscriber, for work that runs on another
/// thread as part of the run (a blocking attempt).
pub(crate) struct Here {
    caller: Option<Kept>,
    current: Span,
    dispatch: Option<Dispatch>,
}

impl Here {
    /// The current span, and the caller of the run of `core`.
    pub(crate) fn capture(core: &Core) -> Here {
        let current = Span::current();
        let caller = match used() {
            true => core.lock().trace.caller().cloned(),
            false => None,
        };
        let caller = caller.filter(|caller| caller.id() != current.id());
        let dispatch = current
            .with_subscriber(|(_, dispatch)| dispatch.clone())
            .or_else(|| {
                caller
                    .as_ref()?
                    .with_subscriber(|(_, dispatch)| dispatch.clone())
            });
        Here {
            caller,
            current,
            dispatch,
        }
    }

    /// Runs `f` in the captured spans, with their subscriber as the
    /// default.
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(dispatch) = &self.dispatch else {
            return f();
        };
        dispatcher::with_default(dispatch, || match &self.caller {
            Some(caller) => caller.in_scope(|| self.current.in_scope(f)),
            None => self.current.in_scope(f),
        })
    }
}
