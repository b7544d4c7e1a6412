//! Running user code that may panic, where a panic must not escape.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A caught panic's payload.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Drops `value`, whose `Drop` is user code: a panic comes back as its
/// payload instead of unwinding through the engine.
pub(crate) fn drop_caught<T>(value: T) -> Result<(), Payload> {
    catch_unwind(AssertUnwindSafe(move || drop(value)))
}

/// Drops `value` where nobody is left to hear of a panic in its `Drop`
/// (the result of a run that was cancelled, say): the panic is swallowed,
/// after the panic hook has printed it.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = drop_caught(value) {
        // The payload's own `Drop` is user code too.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    }
}
