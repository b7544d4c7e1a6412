//! The limits the watched computes ran under, and their gauges.

use std::sync::{Mutex, PoisonError};

use ::metrics::gauge;

use super::names;
use crate::Limit;

/// The limits seen in the graphs of the watched computes: a service has
/// a handful, so each event sets them all.
#[derive(Debug, Default)]
pub(super) struct Limits(Mutex<Vec<&'static Limit>>);

impl Limits {
    /// Notes a limit a compute's node runs under.
    pub(super) fn see(&self, limit: &'static Limit) {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.iter().any(|known| std::ptr::eq(*known, limit)) {
            seen.push(limit);
        }
    }

    /// The names of the limits seen, in the order first seen.
    pub(super) fn names(&self) -> Vec<&'static str> {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter().map(|limit| limit.name()).collect()
    }

    /// Sets the gauges of every limit seen, as they stand on the current
    /// runtime.
    pub(super) fn record_all(&self) {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for limit in seen.iter() {
            let name = limit.name();
            gauge!(names::PERMITS, "limit" => name).set(limit.permits() as f64);
            gauge!(names::IN_USE, "limit" => name).set(limit.in_use() as f64);
            gauge!(names::WAITERS, "limit" => name).set(limit.waiting() as f64);
        }
    }
}
