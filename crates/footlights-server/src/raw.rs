//! Raw actor routes (§6.3, §6.4): `/request/*` hands an HTTP request to the actor's own
//! handler and returns its response unchanged; `/websocket/*` bridges a WebSocket to the
//! actor's raw socket hooks, frames untouched.

use crate::metrics::Transport;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use footlights_core::{ConnRequest, RawEvent, RawLink, WsMessage};
use tracing::Instrument;

use crate::action::CONN_PARAMS_HEADER;
use crate::cors::RayId;
use crate::error::HttpError;
use crate::gateway::{self, Addressed};
use crate::limits::{close_reason, parse_params, read_body};
use crate::peer::{RivetProtocols, initial_dialect, offered_protocols};
use crate::server::Shared;
use crate::ws::{
    GOING_AWAY, NORMAL, RIVET_PROTOCOL, SOCKET_BUFFER, close_socket, close_upgrade, coded,
};

/// The header a client sets when it passed a full URL: the URL the actor should see.
const ORIGINAL_URL_HEADER: &str = "x-rivet-internal-original-request-url";

/// The path and query the actor's handler sees: the route with `prefix` removed (`/` when
/// nothing is left), or the original URL the client named.
fn actor_uri(addressed: &Addressed, prefix: &str, original: Option<&HeaderValue>) -> Uri {
    if let Some(uri) = original
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Uri>().ok())
    {
        return uri;
    }
    let rest = addressed.gateway.path.strip_prefix(prefix).unwrap_or("");
    let path = if rest.is_empty() { "/" } else { rest };
    let full = match &addressed.gateway.query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    full.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

/// `ANY …/request/{path}`.
pub(crate) async fn request(shared: &Shared, req: Request, addressed: &Addressed) -> Response {
    let span = tracing::debug_span!("raw_request");
    async move {
        let dialect = initial_dialect(req.headers(), addressed.via);
        match forward(shared, req, addressed).await {
            Ok(response) => response,
            Err(e) => {
                let status = e.http_status();
                tracing::debug!(code = e.code(), status, "raw request failed");
                HttpError::json(e).for_dialect(dialect).into_response()
            }
        }
    }
    .instrument(span)
    .await
}

async fn forward(
    shared: &Shared,
    req: Request,
    addressed: &Addressed,
) -> Result<Response, footlights_protocol::ActionError> {
    let (mut parts, body) = req.into_parts();
    let config = &shared.config;
    let params = parse_params(
        parts
            .headers
            .get(CONN_PARAMS_HEADER)
            .map(HeaderValue::as_bytes),
        config.max_conn_params,
    )?;
    let uri = actor_uri(
        addressed,
        "/request",
        parts.headers.get(ORIGINAL_URL_HEADER),
    );
    parts.headers.remove(ORIGINAL_URL_HEADER);
    let body = read_body(&parts.headers, body, config.max_incoming).await?;
    let mut request = axum::http::Request::new(axum::body::Bytes::from(body));
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = parts.headers;
    let actor =
        gateway::resolve_http(shared, &addressed.gateway.address, request.headers()).await?;
    let response = shared
        .registry
        .request(&actor.target(), params, request)
        .await?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// `GET …/websocket/{path}`.
pub(crate) async fn websocket(
    shared: Arc<Shared>,
    req: Request,
    addressed: Addressed,
    ray: RayId,
) -> Response {
    let (mut parts, _) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let error = footlights_protocol::ActionError::invalid_request(
                "`/websocket` expects a WebSocket upgrade",
            );
            return HttpError::json(error)
                .with_status(rejection.status())
                .into_response();
        }
    };
    let config = &shared.config;
    let upgrade = upgrade
        .max_message_size(config.max_incoming)
        .max_frame_size(config.max_incoming)
        // The 128 KiB default read buffer would dominate an idle connection's memory.
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(0);
    let rivet = RivetProtocols::parse(&offered_protocols(&parts.headers));
    let params = match parse_params(rivet.params.as_deref(), config.max_conn_params) {
        Ok(params) => params,
        Err(e) => return close_upgrade(upgrade, 1011, format!("{}#{ray}", coded(&e))),
    };
    let uri = actor_uri(&addressed, "/websocket", None);
    let request = ConnRequest::new(parts.method.clone(), uri, parts.headers.clone());
    let link = match gateway::resolve(&shared, &addressed.gateway.address).await {
        Ok(actor) => {
            shared
                .registry
                .websocket(&actor.target(), params, request)
                .await
        }
        Err(e) => Err(e),
    };
    let link = match link {
        Ok(link) => link,
        Err(e) => return close_upgrade(upgrade, 1011, format!("{}#{ray}", coded(&e))),
    };
    let guard = match shared.open_conn(
        Transport::RawWebSocket,
        &addressed.gateway.address,
        ray.clone(),
    ) {
        Ok(guard) => guard,
        Err(_) => {
            link.sender.close(GOING_AWAY, "ws.going_away");
            let reason = format!("{}#{ray}", coded(&crate::error::overloaded("connections")));
            return close_upgrade(upgrade, 1011, reason);
        }
    };
    let stop = shared.stop.clone();
    upgrade
        .protocols([RIVET_PROTOCOL])
        .on_upgrade(move |socket| {
            let span = tracing::debug_span!("raw_websocket");
            async move {
                bridge(socket, link, stop).await;
                drop(guard);
            }
            .instrument(span)
        })
}

/// Moves frames between the client socket and the actor until either side closes.
async fn bridge(mut socket: WebSocket, mut link: RawLink, mut stop: crate::shutdown::Stop) {
    loop {
        tokio::select! {
            event = link.events.recv() => match event {
                Some(RawEvent::Open) => {}
                Some(RawEvent::Message(WsMessage::Text(text))) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        link.sender.close(1006, "");
                        return;
                    }
                }
                Some(RawEvent::Message(WsMessage::Binary(bytes))) => {
                    if socket.send(Message::Binary(bytes)).await.is_err() {
                        link.sender.close(1006, "");
                        return;
                    }
                }
                Some(RawEvent::Closed { code, reason }) => {
                    return close_socket(&mut socket, code, close_reason(&reason)).await;
                }
                Some(_) => {}
                None => return close_socket(&mut socket, GOING_AWAY, "ws.going_away").await,
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let _ = link.sender.send(WsMessage::Text(text.as_str().to_owned()));
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let _ = link.sender.send(WsMessage::Binary(bytes));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((NORMAL, String::new()), |f| (f.code, f.reason.as_str().to_owned()));
                    link.sender.close(code, reason);
                    return;
                }
                Some(Ok(_)) => {}
                // Invalid UTF-8 in a text frame and other protocol errors end the socket.
                Some(Err(_)) | None => {
                    link.sender.close(1006, "");
                    return;
                }
            },
            () = stop.wait() => {
                link.sender.close(GOING_AWAY, "ws.going_away");
                return close_socket(&mut socket, GOING_AWAY, "ws.going_away").await;
            }
        }
    }
}
