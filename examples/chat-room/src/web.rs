//! Serves the browser demo: the files `npm run build` writes to `web/dist`, at `/`.
//!
//! The router goes to [`ServerBuilder::fallback`](footlights::server::ServerBuilder::fallback),
//! so it only sees requests that are not for the actors. Files are read from disk on each
//! request: rebuild the page and reload the tab, no restart needed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where `npm run build` puts the page, in this source tree.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("web")
        .join("dist")
}

/// A router serving `index.html` at `/` and the other files of `dir` by name (one level,
/// no sub-folders).
pub fn routes(dir: impl Into<PathBuf>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/{file}", get(file))
        .with_state(Arc::new(dir.into()))
}

async fn index(State(dir): State<Arc<PathBuf>>) -> Response {
    match tokio::fs::read(dir.join("index.html")).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], bytes).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The page is not built: run `npm ci && npm run build` in examples/chat-room/web.\n",
        )
            .into_response(),
    }
}

async fn file(State(dir): State<Arc<PathBuf>>, UrlPath(name): UrlPath<String>) -> Response {
    // Plain names only: no `..`, no hidden files, no separators.
    let plain = !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let Some(kind) = plain.then(|| content_type(&name)).flatten() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(dir.join(&name)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The content type of the kinds of file the demo has; others are not served.
fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "map" | "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}
