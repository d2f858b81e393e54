//! CORS (§2.5) and the per-request ray id, for every response the server writes.
//!
//! Written by hand rather than with `tower-http`'s `CorsLayer`: browser clients send
//! credentials, and that layer refuses wildcard values (`Expose-Headers: *`) together with
//! `Allow-Credentials: true`, which is exactly what RivetKit clients expect.

use std::fmt;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

/// The response header carrying the [`RayId`].
pub(crate) const RAY_ID_HEADER: &str = "x-rivet-ray-id";

/// A random id per request, sent in `x-rivet-ray-id` and after `#` in gateway close reasons,
/// so a client error can be matched with the server log.
#[derive(Debug, Clone)]
pub(crate) struct RayId(String);

impl RayId {
    pub(crate) fn new() -> Self {
        RayId(format!("{:016x}", rand::rng().random::<u64>()))
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

/// Answers every preflight, and adds CORS headers and a ray id to every other response.
///
/// A preflight never reaches a route, so it needs no auth and never wakes an actor.
pub(crate) async fn layer(mut req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let ray = RayId::new();
    if req.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        preflight_headers(req.headers(), origin, response.headers_mut());
        add_ray(&ray, response.headers_mut());
        return response;
    }
    req.extensions_mut().insert(ray.clone());
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    allow_origin(origin, headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("*"),
    );
    add_ray(&ray, headers);
    response
}

fn preflight_headers(request: &HeaderMap, origin: Option<HeaderValue>, out: &mut HeaderMap) {
    allow_origin(origin, out);
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

/// Echoes the request's origin (with `Vary: Origin`), or allows any origin when there was none.
fn allow_origin(origin: Option<HeaderValue>, out: &mut HeaderMap) {
    match origin {
        Some(origin) => {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.append(header::VARY, HeaderValue::from_static("origin"));
        }
        None => {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
}

fn add_ray(ray: &RayId, out: &mut HeaderMap) {
    if let Ok(value) = HeaderValue::from_str(ray.as_str()) {
        out.insert(RAY_ID_HEADER, value);
    }
}
