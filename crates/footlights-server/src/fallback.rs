//! The host's own routes, served beside the actors: see [`ServerBuilder::fallback`].
//!
//! The protocol's routes are matched first, by hand (see `server.rs`); only a request none of
//! them claims reaches the host's router. So a catch-all route of a web app (`/{*path}` serving
//! `index.html`) can never hide `/metadata`, `/actors` or a gateway path from clients.
//!
//! [`ServerBuilder::fallback`]: crate::ServerBuilder::fallback

use std::future::poll_fn;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower_service::Service;

use crate::error::route_not_found;

/// Where requests that match no protocol route go. Set once by the builder, then read-only.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fallback {
    /// The host's router; `None` answers those requests with a 404 `route.not_found`.
    router: Option<Router>,
}

impl Fallback {
    pub(crate) fn new(router: Router) -> Self {
        Fallback {
            router: Some(router),
        }
    }

    /// Answers a request that no protocol route claims.
    pub(crate) async fn handle(&self, req: Request) -> Response {
        let Some(router) = &self.router else {
            return route_not_found().into_response();
        };
        // A `Router` clone shares its routes; the clone is needed because `call` takes `&mut`.
        let mut router = router.clone();
        let ready = poll_fn(|cx| Service::<Request>::poll_ready(&mut router, cx)).await;
        let answer = match ready {
            Ok(()) => router.call(req).await,
            Err(infallible) => match infallible {},
        };
        match answer {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        }
    }
}
