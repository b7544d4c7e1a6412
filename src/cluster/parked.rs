//! Remote runs that wait with no task of their own. The engine submits a
//! remote node's run (see `Executor::submit`); it waits in the client's
//! queue for one of a few senders to build and publish its message, then
//! in the table of pending tasks, parked, until its worker's report
//! settles it from the listener. A task in flight costs its table entry,
//! not a task and a future.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, PoisonError};

use futures::FutureExt;
use tokio::sync::oneshot::error::TryRecvError;

use super::attempt::{Reported, Sent, Waiting};
use super::client::{Inner, Reply, TaskId, PUBLISHING};
use super::placement::RunOn;
use super::wire::DoneMsg;
use super::Cluster;
use crate::engine::hooks::{Made, Settle, Stop};
use crate::engine::view::NodeView;
use crate::Error;

/// The runs waiting for a sender, and how many senders run.
#[derive(Default)]
pub(super) struct Submitted {
    runs: Chunks,
    senders: usize,
}

/// A queue in chunks of `CHUNK` runs: a big compute's runs, all submitted
/// at once, take what they hold and no more, and the room is given back
/// as they drain (a queue that doubles would hold up to twice as much,
/// and three times as it grows).
#[derive(Default)]
struct Chunks {
    chunks: VecDeque<VecDeque<Run>>,
}

/// Runs in one chunk of the queue.
const CHUNK: usize = 256;

impl Chunks {
    fn push_back(&mut self, run: Run) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK => last.push_back(run),
            _ => {
                let mut chunk = VecDeque::with_capacity(CHUNK);
                chunk.push_back(run);
                self.chunks.push_back(chunk);
            }
        }
    }

    fn pop_front(&mut self) -> Option<Run> {
        let first = self.chunks.front_mut()?;
        let run = first.pop_front();
        if first.is_empty() {
            self.chunks.pop_front();
        }
        run
    }
}

/// A submitted run of a remote node.
struct Run {
    id: TaskId,
    on: Arc<RunOn>,
    task: NodeView,
    settle: Settle,
}

/// A published run waiting for its report, in the table of pending tasks.
pub(super) struct Parked {
    on: Arc<RunOn>,
    task: NodeView,
    settle: Settle,
    /// The stream sequence of its message.
    ack: u64,
    /// The stored results it reads by reference.
    sent: Vec<String>,
}

impl Cluster {
    /// Queues the run of remote `task` for a sender, starting one on
    /// `handle` if fewer than `PUBLISHING` run; stopping the run takes it
    /// out of the table of pending tasks.
    pub(super) fn submit(
        &self,
        on: &Arc<RunOn>,
        task: NodeView,
        settle: Settle,
        handle: &tokio::runtime::Handle,
    ) -> Stop {
        let inner = &self.inner;
        let id: TaskId = Arc::new((Arc::clone(&on.run), task.key().to_string(), 1));
        let start = {
            let mut submitted = inner
                .submitted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            submitted.runs.push_back(Run {
                id: Arc::clone(&id),
                on: Arc::clone(on),
                task,
                settle,
            });
            let start = submitted.senders < PUBLISHING;
            submitted.senders += usize::from(start);
            start
        };
        if start {
            crate::spawn::named_on(
                handle,
                "delayed cluster sender",
                send_submitted(Arc::clone(inner)),
            );
        }
        // Weak: dropping the hook, under the node's lock, then costs
        // nothing.
        let inner = Arc::downgrade(inner);
        Stop::hook(move || {
            if let Some(inner) = inner.upgrade() {
                inner.stop(&id);
            }
        })
    }
}

/// A sender: publishes submitted runs one after another until none wait.
async fn send_submitted(inner: Arc<Inner>) {
    loop {
        let next = {
            let mut submitted = inner
                .submitted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let next = submitted.runs.pop_front();
            submitted.senders -= usize::from(next.is_none());
            next
        };
        let Some(run) = next else {
            return;
        };
        if run.settle.is_current() {
            send(&inner, run).await;
        }
    }
}

/// Builds and publishes the message of one submitted run, and parks the
/// run in the table of pending tasks.
async fn send(inner: &Arc<Inner>, run: Run) {
    let Run {
        id,
        on,
        task,
        settle,
    } = run;
    let cluster = on.cluster.clone();
    let sending =
        AssertUnwindSafe(Box::pin(cluster.send(&on, &task, Arc::clone(&id)))).catch_unwind();
    let sent = match settle.instrumented(sending).await {
        Ok(sent) => sent,
        Err(panic) => Err(Error::panic(task.key(), panic)),
    };
    let Waiting {
        mut rx,
        mut guard,
        ack,
        sent,
    } = match sent {
        Ok(Sent::Waiting(waiting)) => waiting,
        Ok(Sent::Again) => return settle.settle(Ok(Made::Again)),
        Err(err) => return settle.settle(Err(err)),
    };
    if !settle.is_current() {
        // Stopped while it was sent: the guard takes it back.
        return;
    }
    let parked = Parked {
        on,
        task,
        settle,
        ack,
        sent,
    };
    match inner.pending.get_mut(&id) {
        Some(mut pending) => {
            guard.id = None;
            pending.reply = Reply::Parked(Box::new(parked));
        }
        None => match rx.try_recv() {
            // The report came while it was sent.
            Ok(done) => {
                guard.id = None;
                parked.conclude(done);
            }
            // The entry was just taken out: by the listener, which is
            // about to hand the report over, or by a stop.
            Err(TryRecvError::Empty) => match rx.await {
                Ok(done) => {
                    guard.id = None;
                    parked.conclude(done);
                }
                Err(_) => drop(parked),
            },
            // Stopped while it was sent: the guard takes it back.
            Err(TryRecvError::Closed) => drop(parked),
        },
    }
}

impl Parked {
    /// Its task waits in message `sequence` now (its batch came back).
    pub(super) fn moved_to(&mut self, sequence: u64) {
        self.ack = sequence;
    }

    /// Settles the run with its worker's report, reading its result back
    /// first if something here needs it.
    pub(super) fn conclude(self, done: DoneMsg) {
        let Parked {
            on,
            task,
            settle,
            ack,
            sent,
        } = self;
        let cluster = on.cluster.clone();
        // Decoding the result runs the user's `Deserialize`.
        let reported = catch_unwind(AssertUnwindSafe(|| {
            cluster.reported(&on, &task, ack, &sent, done)
        }));
        match reported {
            Ok(Reported::Made(made)) => settle.settle(made),
            Ok(Reported::Download) => {
                crate::spawn::named_task(|| "delayed cluster download".to_string(), async move {
                    let reading = AssertUnwindSafe(cluster.download(&task, &on.run)).catch_unwind();
                    let made = match settle.instrumented(reading).await {
                        Ok(read) => read.map(Made::Value),
                        Err(panic) => Err(Error::panic(task.key(), panic)),
                    };
                    settle.settle(made);
                });
            }
            Err(panic) => settle.settle(Err(Error::panic(task.key(), panic))),
        }
    }
}

impl Inner {
    /// Stops remote run `id`, which nobody wants any more: a parked run is
    /// given up; a run still queued or being sent is skipped, or given up,
    /// by its sender.
    fn stop(self: &Arc<Self>, id: &TaskId) {
        let Some((_, pending)) = self.pending.remove(id) else {
            return;
        };
        if let Reply::Parked(parked) = pending.reply {
            let sequence = Some(parked.ack);
            self.abandon(Arc::clone(id), sequence, Some(parked));
        }
    }
}
