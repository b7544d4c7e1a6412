//! Links between task spans: each task's span follows from its inputs'.
//!
//! A task runs after its inputs have finished, when their spans would be
//! closed, and a closed span's id may be reused. So while `delayed.task`
//! spans are enabled, a finished task's span is kept open until its node is
//! dropped (as soon as no dependent or handle needs it), and dependents
//! link to it with `follows_from`. With the spans disabled, nothing is kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use tracing::Span;

use super::node::NodeRef;

fn kept() -> &'static DashMap<usize, Span> {
    static KEPT: OnceLock<DashMap<usize, Span>> = OnceLock::new();
    KEPT.get_or_init(DashMap::new)
}

/// Whether any span was ever kept, so that dropping nodes can skip the map.
static USED: AtomicBool = AtomicBool::new(false);

fn address(task: &NodeRef) -> usize {
    Arc::as_ptr(task).cast::<()>() as usize
}

/// Makes `span` follow from the spans of `inputs` that are kept.
pub(crate) fn link(span: &Span, inputs: &[NodeRef]) {
    if span.is_disabled() || !USED.load(Ordering::Relaxed) {
        return;
    }
    for input in inputs {
        if let Some(input_span) = kept().get(&address(input)) {
            span.follows_from(&*input_span);
        }
    }
}

/// Keeps the span of the finished task at `node` for its dependents.
pub(crate) fn keep(node: usize, span: &Span) {
    if span.is_disabled() {
        return;
    }
    USED.store(true, Ordering::Relaxed);
    kept().insert(node, span.clone());
}

/// Closes the kept span of a node being dropped.
pub(crate) fn forget(node: usize) {
    if USED.load(Ordering::Relaxed) {
        kept().remove(&node);
    }
}
