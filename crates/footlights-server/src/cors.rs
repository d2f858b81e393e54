//! CORS (§2.5) and the per-request ray id, for every response the server writes.
//!
//! Written by hand rather than with `tower-http`'s `CorsLayer`: browser clients send
//! credentials, and that layer refuses wildcard values (`Expose-Headers: *`) together with
//! `Allow-Credentials: true`, which is exactly what RivetKit clients expect.

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

use crate::logging::RequestStart;
use crate::trace;
use tracing::Instrument as _;

/// The response header carrying the [`RayId`].
pub(crate) const RAY_ID_HEADER: &str = "x-rivet-ray-id";

/// The request and response header carrying the [`RayId`] as a request id.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// A random id per request, sent in `x-rivet-ray-id` and after `#` in gateway close reasons,
/// so a client error can be matched with the server log.
#[derive(Debug, Clone)]
pub(crate) struct RayId(String);

impl RayId {
    pub(crate) fn new() -> Self {
        RayId(format!("{:016x}", rand::rng().random::<u64>()))
    }

    /// The request's own id, when it brings a well-formed one in `x-request-id` (1 to 64
    /// letters, digits, `-`, `_`, `.`, `:`), else a new one.
    pub(crate) fn of_request(headers: &HeaderMap) -> Self {
        let given = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            });
        match given {
            Some(id) => RayId(id.to_owned()),
            None => RayId::new(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The origins allowed to call with credentials; `None`: any but `null`.
pub(crate) type Origins = Option<Arc<[String]>>;

/// What a request's `Origin` allows: CORS headers or none.
enum Verdict {
    /// No `Origin` header (not a cross-origin browser request): any origin, `*`.
    NoOrigin,
    /// An allowed origin, echoed.
    Allowed(HeaderValue),
    /// `null` or an origin outside the list: no CORS headers at all.
    Refused,
}

fn verdict(origins: &Origins, origin: Option<HeaderValue>) -> Verdict {
    let Some(origin) = origin else {
        return Verdict::NoOrigin;
    };
    let text = origin.to_str().unwrap_or("null");
    let allowed = text != "null"
        && origins
            .as_deref()
            .is_none_or(|list| list.iter().any(|o| o.eq_ignore_ascii_case(text)));
    if allowed {
        Verdict::Allowed(origin)
    } else {
        Verdict::Refused
    }
}

/// Answers every preflight, and adds CORS headers and a ray id to every other response.
///
/// A preflight never reaches a route, so it needs no auth and never wakes an actor.
pub(crate) async fn layer(
    State(origins): State<Origins>,
    mut req: Request,
    next: Next,
) -> Response {
    let verdict = verdict(&origins, req.headers().get(header::ORIGIN).cloned());
    let ray = RayId::of_request(req.headers());
    if req.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if matches!(verdict, Verdict::Refused) {
            allow_origin(verdict, response.headers_mut());
        } else {
            preflight_headers(req.headers(), verdict, response.headers_mut());
        }
        add_ray(&ray, response.headers_mut());
        return response;
    }
    let span = trace::request_span(&req, &ray);
    req.extensions_mut().insert(ray.clone());
    let line = RequestStart::new(req.method(), req.uri().path());
    let mut response = if span.is_disabled() {
        next.run(req).await
    } else {
        req.extensions_mut()
            .insert(trace::RequestSpan(span.clone()));
        let response = next.run(req).instrument(span.clone()).await;
        trace::finish(&span, &response);
        response
    };
    if let Some(line) = line {
        line.done(&response, &ray);
    }
    let headers = response.headers_mut();
    let refused = matches!(verdict, Verdict::Refused);
    allow_origin(verdict, headers);
    if !refused {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("*"),
        );
    }
    add_ray(&ray, headers);
    response
}

fn preflight_headers(request: &HeaderMap, verdict: Verdict, out: &mut HeaderMap) {
    allow_origin(verdict, out);
    out.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS, PATCH"),
    );
    let allow_headers = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    out.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("*"),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
}

/// Echoes an allowed origin (with `Vary: Origin`), or allows any origin when there was none.
fn allow_origin(verdict: Verdict, out: &mut HeaderMap) {
    match verdict {
        Verdict::Allowed(origin) => {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.append(header::VARY, HeaderValue::from_static("origin"));
        }
        Verdict::NoOrigin => {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        // Still say that the answer depends on the origin, for caches.
        Verdict::Refused => {
            out.append(header::VARY, HeaderValue::from_static("origin"));
        }
    }
}

fn add_ray(ray: &RayId, out: &mut HeaderMap) {
    if let Ok(value) = HeaderValue::from_str(ray.as_str()) {
        out.insert(RAY_ID_HEADER, value.clone());
        out.insert(REQUEST_ID_HEADER, value);
    }
}
