//! `POST /queue/{name}`: a queue send (§6.2).
//!
//! As for a stateless action, the runtime opens a short-lived connection with the request's
//! params and runs the connect hooks; then it stores the message. `wait: false` is answered
//! once the message is durable; `wait: true` once the actor completes it, or with
//! `status: "timedOut"` when the timeout passes. This module only decodes and encodes.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use footlights_core::ConnRequest;
use footlights_core::queue::{SendOptions, SendOutcome};
use footlights_protocol::ActionError;
use footlights_protocol::codec::{HttpQueueSendRequest, HttpQueueSendResponse, QueueSendStatus};
use tracing::Instrument;

use crate::action::CONN_PARAMS_HEADER;
use crate::error::{HttpError, method_not_allowed};
use crate::gateway::{self, Addressed};
use crate::limits::{parse_params, read_body};
use crate::peer::Peer;
use crate::server::Shared;

/// How long a send that waits waits when the client names no timeout.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// The longest wait a client may ask for.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(600);

/// Serves one queue send.
pub(crate) async fn handle(
    shared: &Shared,
    req: Request,
    addressed: &Addressed,
    name: String,
) -> Response {
    let span = tracing::debug_span!("queue", name = %name);
    async move {
        let mut peer = Peer::http(req.headers(), addressed.via);
        let result = send(shared, req, addressed, &name, &mut peer).await;
        let format = peer.error_format();
        result.unwrap_or_else(|e| {
            tracing::debug!(code = e.code(), "queue send failed");
            HttpError::new(e, format).into_response()
        })
    }
    .instrument(span)
    .await
}

async fn send(
    shared: &Shared,
    req: Request,
    addressed: &Addressed,
    name: &str,
    peer: &mut Peer,
) -> Result<Response, ActionError> {
    if req.method() != Method::POST {
        return Err(method_not_allowed());
    }
    let (parts, body) = req.into_parts();
    let limits = &shared.config;
    let params = parse_params(
        parts
            .headers
            .get(CONN_PARAMS_HEADER)
            .map(HeaderValue::as_bytes),
        limits.max_conn_params,
    )?;
    let bytes = read_body(&parts.headers, body, limits.max_incoming).await?;
    let (request, version) = HttpQueueSendRequest::decode(&bytes, peer.encoding, peer.dialect)
        .map_err(|e| e.to_action_error())?;
    peer.saw_version(version);
    let options = if request.wait.unwrap_or(false) {
        let wait = request
            .timeout
            .map_or(DEFAULT_WAIT, Duration::from_millis)
            .min(MAX_WAIT);
        SendOptions::wait(wait)
    } else {
        SendOptions::default()
    };
    let actor = gateway::resolve_http(shared, &addressed.gateway.address, &parts.headers).await?;
    let conn_request = ConnRequest::new(parts.method, addressed.uri(), parts.headers);
    let outcome = shared
        .registry
        .send(
            &actor.target(),
            name,
            request.body,
            params,
            conn_request,
            options,
        )
        .await?;
    let answer = match outcome {
        SendOutcome::Completed(response) => HttpQueueSendResponse {
            status: QueueSendStatus::Completed,
            response,
        },
        _ => HttpQueueSendResponse {
            status: QueueSendStatus::TimedOut,
            response: None,
        },
    };
    let body = answer.encode(peer.encoding, peer.version, peer.dialect);
    if body.len() > limits.max_outgoing {
        return Err(ActionError::outgoing_too_long());
    }
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(peer.encoding.content_type()),
    );
    tracing::debug!("queue send answered");
    Ok(response)
}
