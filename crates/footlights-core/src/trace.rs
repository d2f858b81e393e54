//! Spans for distributed tracing: a request's span is carried with its message into the
//! actor, whose span for the action is its child; the group commit that makes the action's
//! writes durable is a child of the first message it commits, and links the others.
//!
//! These spans have the target [`TARGET`] and the level `TRACE`, so a subscriber that logs at
//! the usual levels never sees them, and creating one then costs a check of a cached flag: no
//! span is made and nothing is carried. `footlights-server` (feature `otel`) installs a layer
//! that takes exactly these spans and exports them over OTLP.

use footlights_protocol::ActionError;

/// The target of the spans made for distributed tracing (request, action, commit).
pub const TARGET: &str = "footlights::trace";

/// Whether spans for tracing are made at all (something listens for [`TARGET`]): a check of a
/// cached flag.
pub fn enabled() -> bool {
    tracing::span_enabled!(target: TARGET, tracing::Level::TRACE)
}

/// Records how an action ended on its span: the error code, and an error status, when it
/// failed. Nothing when the span is off.
pub(crate) fn outcome<T>(span: &tracing::Span, result: &Result<T, ActionError>) {
    if span.is_disabled() {
        return;
    }
    if let Err(e) = result {
        span.record("error.type", format!("{}.{}", e.group(), e.code()));
        span.record("otel.status_code", "error");
    }
}
