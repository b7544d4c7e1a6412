//! Watching computes: the `observe` scope, DOT pictures, the progress bar
//! and the timeline. Built on the engine's callbacks and graph snapshots
//! only.

pub(crate) mod dot;
#[cfg(feature = "progress")]
mod progress;
mod scope;
mod timeline;

pub(crate) use self::scope::scoped;

/// What the crate root re-exports.
pub(crate) mod public {
    #[cfg(feature = "progress")]
    pub use super::progress::ProgressBar;
    pub use super::scope::{observe, Observing};
    pub use super::timeline::{Timeline, TimelineTask};
}
