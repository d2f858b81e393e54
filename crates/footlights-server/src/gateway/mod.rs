//! The gateway (§5): finds the actor a URL names, then serves the actor route behind it.
//!
//! Errors found before the actor is reached are JSON for HTTP, and for WebSocket upgrades an
//! accepted upgrade closed at once with 1011 `{group}.{code}#{rayId}` (§5.4). Routes that need
//! no actor (unknown and unsupported ones) are answered without resolving it, so they never
//! wake or create an actor.

pub(crate) mod path;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use footlights_client::Target;
use footlights_protocol::{ActionError, ActorId};

use crate::access::{self, AccessRequest, Area};
use crate::cors::RayId;
use crate::error::HttpError;
use crate::logging::ActorNote;
use crate::peer::Via;
use crate::server::Shared;
use crate::{action, forward, raw, sse, ws};
use path::{ActorAddress, ActorRoute, GatewayPath, QueryMethod};

/// A request addressed to an actor, before the actor is resolved.
#[derive(Debug, Clone)]
pub(crate) struct Addressed {
    pub(crate) gateway: GatewayPath,
    pub(crate) via: Via,
}

impl Addressed {
    /// The path and query the actor sees, as a URI (`/action/x?q=1`).
    pub(crate) fn uri(&self) -> axum::http::Uri {
        self.gateway
            .path_and_query()
            .parse()
            .unwrap_or_else(|_| axum::http::Uri::from_static("/"))
    }
}

/// An actor the gateway found (or created).
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) id: ActorId,
    pub(crate) name: String,
}

impl Resolved {
    /// The runtime target for this actor.
    pub(crate) fn target(&self) -> Target {
        Target::Id {
            name: self.name.clone(),
            id: self.id.clone(),
        }
    }
}

/// Finds the actor; for `getOrCreate`, creates it (the registry serializes racing creates).
pub(crate) async fn resolve(
    shared: &Shared,
    address: &ActorAddress,
) -> Result<Resolved, ActionError> {
    match address {
        ActorAddress::Id { id, .. } => {
            let id = ActorId::new(id.as_str());
            let meta = shared.registry.actor_meta(&id).await?;
            let meta =
                meta.ok_or_else(|| ActionError::actor_not_found(format!("actor {id} not found")))?;
            Ok(Resolved {
                id,
                name: meta.name,
            })
        }
        ActorAddress::Query(q) => {
            let target = match &q.method {
                QueryMethod::Get => Target::Get {
                    name: q.name.clone(),
                    key: q.key.clone(),
                },
                QueryMethod::GetOrCreate { input, .. } => Target::GetOrCreate {
                    name: q.name.clone(),
                    key: q.key.clone(),
                    input: input.clone(),
                },
            };
            let id = shared.registry.resolve(&target).await?;
            Ok(Resolved {
                id,
                name: q.name.clone(),
            })
        }
    }
}

/// What Footlights' own Rust client puts first in its `User-Agent`.
const FOOTLIGHTS_CLIENT_AGENT: &str = "footlights-client/";

/// [`resolve`] for an HTTP call (action, raw request), where a miss is final.
///
/// rivetkit 2.3.x retries an HTTP call of a `get`/`getOrCreate` handle 24 (60) times, 100 ms
/// apart, while the answer is an error of group `actor` with a "stale actor" code (§8.6), and
/// takes any other group as final. An engine's lookup may lag behind a create elsewhere; this
/// server's lookups are authoritative, so a query-form address that names no actor is
/// answered `guard.not_found` at once: the same code (what applications match on), in a
/// group the client does not retry. Footlights' own client, which asks by `actor.not_found`
/// and never retries it over HTTP, keeps that. WebSocket connects keep `actor.not_found`
/// too: there the client reconnects with backoff until the actor exists, which is how a
/// `get` connection waits for someone to create it.
pub(crate) async fn resolve_http(
    shared: &Shared,
    address: &ActorAddress,
    headers: &HeaderMap,
) -> Result<Resolved, ActionError> {
    let resolved = resolve(shared, address).await;
    match resolved {
        Err(e) if e.is_not_found() && matches!(address, ActorAddress::Query(_)) => {
            let own_client = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ua| ua.starts_with(FOOTLIGHTS_CLIENT_AGENT));
            if own_client {
                Err(e)
            } else {
                Err(ActionError::new(
                    "guard",
                    "not_found",
                    e.message().to_owned(),
                ))
            }
        }
        other => other,
    }
}

/// `/gateway/…` (§5.1, §5.2). `path` is relative to the base path.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request,
    path: String,
    ray: RayId,
) -> Response {
    match path::parse(&path, req.uri().query(), shared.config.max_incoming) {
        Ok(gateway) => {
            let via = match gateway.address {
                ActorAddress::Id { .. } => Via::Direct,
                ActorAddress::Query(_) => Via::Query,
            };
            serve(shared, req, Addressed { gateway, via }, ray).await
        }
        Err(e) => reject(req, HttpError::json(e), &ray).await,
    }
}

/// A header-routed request (§5.3): `path` is the actor route itself.
pub(crate) async fn handle_header_routed(
    shared: Arc<Shared>,
    req: Request,
    id: String,
    path: String,
    ray: RayId,
) -> Response {
    let gateway = path::header_routed(&id, &path, req.uri().query());
    serve(
        shared,
        req,
        Addressed {
            gateway,
            via: Via::Header,
        },
        ray,
    )
    .await
}

/// The key an actor's requests are counted under for `rate_limit_per_actor`: its id, or its
/// name and key, as the request names it.
pub(crate) fn rate_key(address: &ActorAddress) -> String {
    match address {
        ActorAddress::Id { id, .. } => id.clone(),
        ActorAddress::Query(q) => format!("{}/{}", q.name, q.key),
    }
}

async fn serve(shared: Arc<Shared>, req: Request, addressed: Addressed, ray: RayId) -> Response {
    let in_path = match &addressed.gateway.address {
        ActorAddress::Id { token, .. } => token.as_deref(),
        ActorAddress::Query(q) => q.token.as_deref(),
    };
    let token = access::token_of(Area::Gateway, req.headers(), in_path);
    let request = AccessRequest {
        area: Area::Gateway,
        token: token.as_deref(),
        headers: req.headers(),
        path: &addressed.gateway.path,
    };
    if let Err(e) = shared.config.access.allow(&request) {
        shared.metrics.refused(crate::metrics::Refused::access(&e));
        drop(token);
        return reject(req, HttpError::json(e), &ray).await;
    }
    drop(token);
    if let Err(e) = shared.limits.actor(&rate_key(&addressed.gateway.address)) {
        return reject(req, HttpError::json(e), &ray).await;
    }
    let route = match path::actor_route(&addressed.gateway.path) {
        Ok(route) => route,
        Err(e) => return reject(req, HttpError::json(e), &ray).await,
    };
    // Only the request line reads the note: made only when that line is written.
    let note = crate::logging::requests_logged().then(|| {
        let mut note = ActorNote::of(&addressed.gateway.address);
        if let ActorRoute::Action(name) = &route {
            note.action = Some(name.clone());
        }
        note
    });
    let needs_actor = !matches!(route, ActorRoute::Unknown);
    let req = if needs_actor {
        match forward::to_owner(&shared, req, &addressed, &ray).await {
            Ok(req) => req,
            Err(mut forwarded) => {
                if let Some(note) = note {
                    forwarded.extensions_mut().insert(note);
                }
                return forwarded;
            }
        }
    } else {
        req
    };
    let mut response = match route {
        ActorRoute::Action(name) => action::handle(&shared, req, &addressed, name).await,
        ActorRoute::Connect => ws::handle(shared, req, addressed, ray).await,
        ActorRoute::ConnectSse => sse::connect(shared, req, addressed).await,
        ActorRoute::ConnMessage(id) => sse::message(&shared, req, &addressed, id).await,
        ActorRoute::ConnClose(id) => sse::close(&shared, req, &addressed, id).await,
        ActorRoute::Request => raw::request(&shared, req, &addressed).await,
        ActorRoute::WebSocket => raw::websocket(shared, req, addressed, ray).await,
        ActorRoute::Queue(name) => crate::queue::handle(&shared, req, &addressed, name).await,
        ActorRoute::Unknown => {
            let error = HttpError::json(ActionError::actor_not_found("no such actor route"));
            reject(req, error, &ray).await
        }
    };
    if let Some(note) = note {
        response.extensions_mut().insert(note);
    }
    response
}

/// Whether a request asks for a WebSocket upgrade.
pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answers with `error`: an HTTP error, or for a WebSocket upgrade an upgrade closed with 1011.
pub(crate) async fn reject(req: Request, error: HttpError, ray: &RayId) -> Response {
    if is_websocket_upgrade(req.headers()) {
        ws::reject(req, error, ray).await
    } else {
        error.into_response()
    }
}
