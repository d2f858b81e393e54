//! The span of each HTTP request, for tracing (see [`footlights_core::trace`]): made only when
//! something listens for those spans, carried into the actor with the request, and given the
//! caller's trace as parent when the request has a `traceparent` header (feature `otel`).

use axum::extract::Request;
use axum::http::Extensions;
use axum::response::Response;
use footlights_core::trace::TARGET;

use crate::cors::RayId;
use crate::logging::{ErrorNote, without_token};

/// The request's span, as a request extension for the routes that hand it to an actor. Put
/// there only when the span is enabled.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpan(pub(crate) tracing::Span);

/// The span of `req`, disabled (and nothing computed) when nothing listens for it.
pub(crate) fn request_span(req: &Request, ray: &RayId) -> tracing::Span {
    let span = tracing::trace_span!(
        target: TARGET,
        "request",
        otel.name = %req.method(),
        otel.kind = "server",
        http.request.method = %req.method(),
        url.path = %without_token(req.uri().path()),
        request_id = %ray,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    #[cfg(feature = "otel")]
    if !span.is_disabled() {
        crate::otel::adopt_parent(&span, req.headers());
    }
    span
}

/// The span of the request whose extensions are `extensions`; disabled when there is none.
pub(crate) fn of(extensions: &Extensions) -> tracing::Span {
    extensions
        .get::<RequestSpan>()
        .map_or_else(tracing::Span::none, |s| s.0.clone())
}

/// Records the response on the request's span: its status, and its error code when it has
/// one (a server error also sets the span's status to error).
pub(crate) fn finish(span: &tracing::Span, response: &Response) {
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if let Some(code) = response.extensions().get::<ErrorNote>() {
        span.record("error.type", code.0.as_str());
    }
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}
