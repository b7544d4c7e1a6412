//! One trace across machines: the W3C trace context (`traceparent`) of
//! the span a remote task is sent from travels with the task, and the
//! worker runs the task in a span that continues it.
//!
//! The context is read from the `tracing` span current where the task is
//! published (the task's `delayed.task` span, or the span of the request
//! that computes it when task spans are filtered out), through
//! `tracing-opentelemetry`. Without an OpenTelemetry layer there is no
//! context, and nothing travels. Each task carries its own context in its
//! message (a message may hold a batch of tasks); a message whose tasks
//! share one also has it as its `traceparent` header, for tools that read
//! headers.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header a message's trace context travels in.
pub(crate) const HEADER: &str = "traceparent";

/// The `traceparent` of the span current here, if it is part of an
/// OpenTelemetry trace.
pub(crate) fn current() -> Option<String> {
    let span = Span::current();
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

/// The remote span context a `traceparent` names; `None` if it is not a
/// valid one (the W3C format: version, trace id, parent id, flags).
pub(crate) fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit());
    let known = version == "00" && parts.next().is_none();
    let later = version != "00" && version != "ff" && hex(version, 2);
    if !(known || later) || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2) {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(parent).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// The span a worker runs a task in, named `delayed.remote` (at `info`,
/// like a server's request span): a child of the client's span when the
/// task carried its trace context. The task's own `delayed.task` span is
/// a child of it.
pub(crate) fn worker_span(
    key: &str,
    function: &str,
    worker: &str,
    traceparent: Option<&str>,
) -> Span {
    let span = tracing::info_span!(
        target: "delayed",
        "delayed.remote",
        task.key = key,
        task.name = function,
        worker = worker,
    );
    if let Some(remote) = traceparent.and_then(parse) {
        // Only fails without an OpenTelemetry layer, where there is no
        // trace to continue.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    span
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_traceparent_is_read_as_the_w3c_format_says() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = parse(text).expect("valid");
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled() && context.is_remote());
        // A later version may add fields; version 00 may not.
        assert!(parse(&format!("01-{}-x", &text[3..])).is_some());
        assert!(parse(&format!("{text}-x")).is_none());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
