//! The actor-connect WebSocket (§7): `GET {gateway…}/connect`.
//!
//! The upgrade is always accepted with subprotocol `rivet`; anything that goes wrong before
//! the connection exists is reported by closing the socket (§5.4). After that, one task per
//! socket moves frames between the socket and the runtime's link:
//!
//! - runtime → client: `Init` first (its token stripped for official clients), then action
//!   responses, errors and events, each checked against the outgoing size limit;
//! - client → runtime: decoded messages, held back until `Init` has gone out (§7.2 step 6),
//!   with at most `max_in_flight_actions` actions awaiting an answer;
//! - pings every `ws_ping_interval`; a socket silent for a whole interval after a ping is dead;
//! - on server shutdown, a 1001 `ws.going_away` close.
//!
//! While the actor hibernates, the socket parks ([`park`]): its task and WebSocket state are
//! let go and a small task waits on the stream. The handshake is done here ([`upgrade`]) so
//! that the task owns the stream it needs for that.
//!
//! Broadcasts skip the task: the thread that broadcasts writes each subscriber's frame to its
//! socket itself when nothing is queued ahead of it ([`direct`]).
//!
//! Modules: `upgrade` (handshake), `conn` (the pump), `park` (the parked socket), `direct`
//! (the socket's shared writing side).

pub(crate) mod bell;
mod conn;
pub(crate) mod direct;
mod park;
mod upgrade;

use crate::metrics::Transport;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use footlights_client::{DirectWriter, Link, LinkInbox};
use footlights_core::ConnRequest;
use footlights_protocol::{ActionError, Value};
use tokio::time::Instant;
use tracing::Instrument;

use self::conn::{Live, WsConn};
use self::upgrade::{Socket, Upgrade};
use crate::cors::RayId;
use crate::error::{HttpError, for_client, overloaded};
use crate::gateway::{self, Addressed};
use crate::limits::{InFlight, close_reason, parse_params};
use crate::peer::{Peer, RivetProtocols, offered_protocols};
use crate::resume::{self, ConnExtensions};
use crate::server::Shared;
use crate::shutdown::{ConnGuard, Refusal};

/// The subprotocol every upgrade selects (§5.4).
pub(crate) const RIVET_PROTOCOL: &str = "rivet";

/// Read buffer per WebSocket: frames larger than this still arrive, in several reads.
pub(crate) const SOCKET_BUFFER: usize = 2048;
/// Read buffer of an actor-connect WebSocket. Protocol messages are mostly small (an action
/// call, a subscription) and an idle socket keeps its buffer for as long as it is open, asleep
/// actor or not; larger frames take several reads.
pub(crate) const CONNECT_BUFFER: usize = 512;
/// How long a closing socket waits for the peer's close frame before it is dropped.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages beyond the in-flight limit that may wait for `Init` (subscriptions and the like).
const EARLY_EXTRA: usize = 256;

/// How many client messages may wait for `Init`.
fn max_early(shared: &Shared) -> usize {
    shared.config.max_in_flight.saturating_add(EARLY_EXTRA)
}

/// Close codes (RFC 6455).
pub(crate) const NORMAL: u16 = 1000;
pub(crate) const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const UNSUPPORTED_DATA: u16 = 1003;
const INVALID_DATA: u16 = 1007;
const INTERNAL_ERROR: u16 = 1011;

/// `group.code` of an error, the form close reasons take.
pub(crate) fn coded(error: &ActionError) -> String {
    format!("{}.{}", error.group(), error.code())
}

/// Accepts the upgrade only to close it at once with 1011 `{group}.{code}#{rayId}` (§5.4).
/// Falls back to the HTTP error if the request is not a valid upgrade.
pub(crate) async fn reject(req: Request, error: HttpError, ray: &RayId) -> Response {
    let (mut parts, _) = req.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => {
            let reason = format!("{}#{ray}", coded(error.error()));
            tracing::debug!(%reason, "websocket refused before the actor");
            close_upgrade(upgrade, INTERNAL_ERROR, reason)
        }
        Err(_) => error.into_response(),
    }
}

pub(crate) fn close_upgrade(upgrade: WebSocketUpgrade, code: u16, reason: String) -> Response {
    upgrade
        .protocols([RIVET_PROTOCOL])
        .on_upgrade(move |mut socket| async move {
            close_socket(&mut socket, code, &reason).await;
        })
}

/// Sends a close frame and waits (bounded) for the peer's, so the frame is flushed.
pub(crate) async fn close_socket(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: close_reason(reason).into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        drain(socket).await;
    })
    .await;
}

/// Reads until the close handshake completes; this also flushes tungstenite's close reply.
async fn drain(socket: &mut WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
    }
}

/// Everything a connection task needs, decided before the upgrade completes.
struct Setup {
    shared: Arc<Shared>,
    addressed: Addressed,
    peer: Peer,
    ext: ConnExtensions,
    params: Option<Value>,
    request: ConnRequest,
    ray: RayId,
    guard: ConnGuard,
    client: Option<std::net::IpAddr>,
}

/// `GET …/connect`.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request,
    addressed: Addressed,
    ray: RayId,
) -> Response {
    let (mut parts, _) = req.into_parts();
    let client = parts.extensions.get::<crate::conn::ClientIp>().map(|c| c.0);
    let upgrade = match Upgrade::from_parts(&mut parts) {
        Ok(upgrade) => upgrade
            .config(conn::config(&shared))
            .direct(shared.direct.clone())
            .protocol(&parts.headers, RIVET_PROTOCOL),
        Err(rejection) => {
            let error = ActionError::invalid_request("`/connect` expects a WebSocket upgrade");
            return HttpError::json(error)
                .with_status(rejection.0)
                .into_response();
        }
    };
    let config = &shared.config;
    let offered = offered_protocols(&parts.headers);
    let rivet = RivetProtocols::parse(&offered);
    let encoding = match rivet.encoding() {
        Ok(encoding) => encoding,
        Err(name) => {
            tracing::debug!(encoding = %name, "websocket with an unsupported encoding");
            let reason = "actor.unsupported_websocket_encoding".to_owned();
            return refuse(upgrade, UNSUPPORTED_DATA, reason);
        }
    };
    let guard = match shared.open_conn(
        Transport::WebSocket,
        &addressed.gateway.address,
        ray.clone(),
    ) {
        Ok(guard) => guard,
        Err(Refusal::Stopping) => {
            return refuse(upgrade, GOING_AWAY, "ws.going_away".to_owned());
        }
        Err(Refusal::Full) => {
            let reason = format!("{}#{ray}", coded(&overloaded("connections")));
            return refuse(upgrade, INTERNAL_ERROR, reason);
        }
    };
    let params = match parse_params(rivet.params.as_deref(), config.max_conn_params) {
        Ok(params) => params,
        Err(e) => {
            let reason = format!("{}#{ray}", coded(&e));
            return refuse(upgrade, INTERNAL_ERROR, reason);
        }
    };
    // Boxed: the upgrade task keeps whatever its callback captured for the socket's lifetime.
    let setup = Box::new(Setup {
        peer: Peer::connection(encoding, &parts.headers, addressed.via),
        ext: ConnExtensions::from_subprotocols(&offered),
        request: ConnRequest::new(Method::GET, addressed.uri(), parts.headers.clone())
            .with_span(crate::trace::of(&parts.extensions)),
        shared,
        addressed,
        params,
        ray,
        guard,
        client,
    });
    upgrade.on_upgrade(move |socket| {
        let span =
            tracing::debug_span!("conn", id = tracing::field::Empty, transport = "websocket");
        run(Box::pin(open(socket, setup))).instrument(span)
    })
}

/// Accepts a `/connect` upgrade only to close it at once.
fn refuse(upgrade: Upgrade, code: u16, reason: String) -> Response {
    upgrade.on_upgrade(move |mut socket| async move {
        conn::close(&mut socket, code, &reason).await;
    })
}

/// One socket's first task: opening (with the socket and setup it was given, in a box), then
/// the connection is served by a task of its own, its records boxed to move to the parked
/// task when it parks.
async fn run(opening: Pin<Box<impl Future<Output = Option<(WsConn, Socket, Link)>>>>) {
    let Some((conn, socket, link)) = opening.await else {
        return;
    };
    link.backlog.set_limit(conn.shared.config.max_queued_bytes);
    // Broadcasts may be written to the socket by the thread that sends them.
    if let Some(direct) = socket.get_ref().get_ref().direct() {
        let writer: Weak<dyn DirectWriter> = Arc::downgrade(direct) as Weak<dyn DirectWriter>;
        link.backlog.set_writer(writer);
    }
    // While the actor sleeps, the link's channel is let go; the inbox waits for the next.
    link.backlog.accept_parking();
    let ping_at = Instant::now() + conn.shared.config.ws_ping_interval;
    let live = Box::new(Live {
        conn,
        sender: link.sender,
        events: LinkInbox::new(link.events),
        backlog: link.backlog,
    });
    // A task of its own: awaited here, the socket moved into `serve` would also keep its
    // place in this future, which lives as long as the connection.
    tokio::spawn(conn::serve(live, socket, None, ping_at).instrument(tracing::Span::current()));
}

/// Resolves the actor and opens the link; on failure, closes the socket and returns `None`.
async fn open(mut socket: Socket, setup: Box<Setup>) -> Option<(WsConn, Socket, Link)> {
    let Setup {
        shared,
        addressed,
        peer,
        ext,
        params,
        request,
        ray,
        guard,
        client,
    } = *setup;
    let mut stop = shared.stop.clone();
    let opened = tokio::select! {
        biased;
        () = stop.wait() => None,
        opened = async {
            let actor = gateway::resolve(&shared, &addressed.gateway.address).await?;
            resume::open_link(&shared, &actor.target(), params, request, &ext).await
        } => Some(opened),
    };
    let link = match opened {
        None => {
            conn::close(&mut socket, GOING_AWAY, "ws.going_away").await;
            return None;
        }
        Some(Err(e)) => {
            let reason = format!("{}#{ray}", coded(&for_client(e)));
            tracing::debug!(%reason, "connection refused before the actor");
            conn::close(&mut socket, INTERNAL_ERROR, &reason).await;
            return None;
        }
        Some(Ok(link)) => link,
    };
    let rate_key = shared
        .limits
        .limits_actors()
        .then(|| gateway::rate_key(&addressed.gateway.address).into_boxed_str());
    let conn = WsConn {
        rate_key,
        client,
        in_flight: InFlight::new(shared.config.max_in_flight),
        shared,
        peer,
        ext,
        early: Vec::new(),
        initialized: false,
        awaiting_pong: false,
        received: 0,
        live: None,
        _guard: guard,
    };
    Some((conn, socket, link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_rfc_6455() {
        assert_eq!(
            (NORMAL, GOING_AWAY, UNSUPPORTED_DATA, INTERNAL_ERROR),
            (1000, 1001, 1003, 1011)
        );
        assert_eq!(coded(&ActionError::forbidden("x")), "auth.forbidden");
    }
}
