//! `POST /action/{name}`: a stateless action call (§6.1).
//!
//! The runtime opens a short-lived connection with the request's params and request data,
//! runs the connect hooks, the action, and the disconnect hook. This module only decodes and
//! encodes: the body in the request's encoding, the answer (or error) in the same encoding.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use footlights_core::ConnRequest;
use footlights_protocol::ActionError;
use footlights_protocol::codec::{HttpActionRequest, HttpActionResponse};
use tracing::Instrument;

use crate::error::{HttpError, method_not_allowed};
use crate::gateway::{self, Addressed, Resolved};
use crate::limits::{parse_params, read_body};
use crate::peer::Peer;
use crate::server::Shared;

/// The header carrying connection params as JSON text.
pub(crate) const CONN_PARAMS_HEADER: &str = "x-rivet-conn-params";
/// The informational header naming the actor that answered (§2.3).
const ACTOR_HEADER: &str = "x-rivet-actor";

/// Serves one stateless action call.
pub(crate) async fn handle(
    shared: &Shared,
    req: Request,
    addressed: &Addressed,
    name: String,
) -> Response {
    let span = tracing::debug_span!("action", name = %name);
    async move {
        let mut peer = Peer::http(req.headers(), addressed.via);
        let result = call(shared, req, addressed, &name, &mut peer).await;
        let format = peer.error_format();
        match result {
            Ok(response) => response,
            Err((e, actor)) => {
                tracing::debug!(code = e.code(), "action failed");
                let mut response = HttpError::new(e, format).into_response();
                add_actor_header(&mut response, actor.as_ref());
                response
            }
        }
    }
    .instrument(span)
    .await
}

type Failure = (ActionError, Option<Resolved>);

async fn call(
    shared: &Shared,
    req: Request,
    addressed: &Addressed,
    name: &str,
    peer: &mut Peer,
) -> Result<Response, Failure> {
    if req.method() != Method::POST {
        return Err((method_not_allowed(), None));
    }
    let (parts, body) = req.into_parts();
    let limits = &shared.config;
    let params = parse_params(
        parts
            .headers
            .get(CONN_PARAMS_HEADER)
            .map(HeaderValue::as_bytes),
        limits.max_conn_params,
    )
    .map_err(|e| (e, None))?;
    let bytes = read_body(&parts.headers, body, limits.max_incoming)
        .await
        .map_err(|e| (e, None))?;
    let (request, version) = HttpActionRequest::decode(&bytes, peer.encoding, peer.dialect)
        .map_err(|e| (e.to_action_error(), None))?;
    peer.saw_version(version);
    let actor = gateway::resolve_http(shared, &addressed.gateway.address, &parts.headers)
        .await
        .map_err(|e| (e, None))?;
    let conn_request = ConnRequest::new(parts.method, addressed.uri(), parts.headers)
        .with_span(crate::trace::of(&parts.extensions));
    let output = shared
        .registry
        .call(&actor.target(), name, request.args, params, conn_request)
        .await
        .map_err(|e| (e, Some(actor.clone())))?;
    let body = HttpActionResponse { output }.encode(peer.encoding, peer.version, peer.dialect);
    if body.len() > limits.max_outgoing {
        tracing::warn!(
            size = body.len(),
            limit = limits.max_outgoing,
            "action output over the outgoing limit"
        );
        return Err((ActionError::outgoing_too_long(), Some(actor)));
    }
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(peer.encoding.content_type()),
    );
    add_actor_header(&mut response, Some(&actor));
    tracing::debug!("action answered");
    Ok(response)
}

fn add_actor_header(response: &mut Response, actor: Option<&Resolved>) {
    if let Some(value) = actor.and_then(|a| HeaderValue::from_str(a.id.as_str()).ok()) {
        response.headers_mut().insert(ACTOR_HEADER, value);
    }
}
