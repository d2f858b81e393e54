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

use crate::logging::ConnLine;
use crate::metrics::{Refused, Transport};
use std::collections::VecDeque;
use std::error::Error as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use footlights_client::{Backlog, CloseReason, Link, LinkEvent, LinkInbox, LinkSender};
use footlights_core::ConnRequest;
use footlights_protocol::codec::{Encoding, decode_to_server, encode_to_client};
use footlights_protocol::{ActionError, ToClient, ToServer, Value};
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::cors::RayId;
use crate::error::{HttpError, for_client, overloaded};
use crate::gateway::{self, Addressed};
use crate::limits::{self, InFlight, close_reason, parse_params};
use crate::peer::{Peer, RivetProtocols, offered_protocols};
use crate::resume::{self, ConnExtensions, LinkEnd, LiveLink, LiveLinks};
use crate::server::Shared;
use crate::shutdown::{ConnGuard, Refusal, Stop};

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
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let error = ActionError::invalid_request("`/connect` expects a WebSocket upgrade");
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
        .read_buffer_size(CONNECT_BUFFER)
        .write_buffer_size(0);
    let offered = offered_protocols(&parts.headers);
    let rivet = RivetProtocols::parse(&offered);
    let encoding = match rivet.encoding() {
        Ok(encoding) => encoding,
        Err(name) => {
            tracing::debug!(encoding = %name, "websocket with an unsupported encoding");
            let reason = "actor.unsupported_websocket_encoding".to_owned();
            return close_upgrade(upgrade, UNSUPPORTED_DATA, reason);
        }
    };
    let guard = match shared
        .conns
        .acquire(&shared.stop, shared.registry.kept_connections())
    {
        Ok(guard) => guard.logged(ConnLine::open(
            Transport::WebSocket,
            shared.metrics.conns(Transport::WebSocket),
            &addressed.gateway.address,
            ray.clone(),
        )),
        Err(Refusal::Stopping) => {
            return close_upgrade(upgrade, GOING_AWAY, "ws.going_away".to_owned());
        }
        Err(Refusal::Full) => {
            shared.metrics.refused(Refused::TooManyConnections);
            tracing::warn!(
                limit = config.max_connections,
                "connection refused: too many connections"
            );
            let reason = format!("{}#{ray}", coded(&overloaded("connections")));
            return close_upgrade(upgrade, INTERNAL_ERROR, reason);
        }
    };
    let params = match parse_params(rivet.params.as_deref(), config.max_conn_params) {
        Ok(params) => params,
        Err(e) => {
            let reason = format!("{}#{ray}", coded(&e));
            return close_upgrade(upgrade, INTERNAL_ERROR, reason);
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
    upgrade
        .protocols([RIVET_PROTOCOL])
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| {
            let span =
                tracing::debug_span!("conn", id = tracing::field::Empty, transport = "websocket");
            run(Box::pin(open(socket, setup))).instrument(span)
        })
}

/// How a connection ended.
enum End {
    /// The server closes the socket with this code and reason (after `notice`, if there is
    /// one) and ends the connection.
    Close {
        notice: Option<Message>,
        code: u16,
        reason: String,
    },
    /// The runtime closed the connection; pass its close on.
    LinkClosed(CloseReason),
    /// The client sent a close frame.
    ClientClosed,
    /// The transport broke, or the peer stopped answering pings.
    Dropped,
    /// A resume on another socket takes the connection over; answer on the sender once the
    /// link is released.
    Superseded(oneshot::Sender<()>),
}

impl End {
    fn close(code: u16, reason: impl Into<String>) -> End {
        End::Close {
            notice: None,
            code,
            reason: reason.into(),
        }
    }
}

/// One socket's task, from the boxed [`open`] on. The task lives as long as the socket, so
/// it keeps only the pump's state: opening (with the socket and setup it was given) and
/// closing run in boxes that are freed when they finish.
async fn run(opening: Pin<Box<impl Future<Output = Option<(WsConn, Link)>>>>) {
    let Some((mut conn, link)) = opening.await else {
        return;
    };
    let sender = link.sender;
    link.backlog.set_limit(conn.shared.config.max_queued_bytes);
    // While the actor sleeps, the link's channel is let go; the inbox waits for the next.
    link.backlog.accept_parking();
    let events = LinkInbox::new(link.events);
    let end = conn.pump(&*sender, events, &link.backlog).await;
    Box::pin(conn.finish(&*sender, end)).await;
}

/// Resolves the actor and opens the link; on failure, closes the socket and returns `None`.
async fn open(mut socket: WebSocket, setup: Box<Setup>) -> Option<(WsConn, Link)> {
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
            close_socket(&mut socket, GOING_AWAY, "ws.going_away").await;
            return None;
        }
        Some(Err(e)) => {
            let reason = format!("{}#{ray}", coded(&for_client(e)));
            tracing::debug!(%reason, "connection refused before the actor");
            close_socket(&mut socket, INTERNAL_ERROR, &reason).await;
            return None;
        }
        Some(Ok(link)) => link,
    };
    let max_early = shared.config.max_in_flight.saturating_add(EARLY_EXTRA);
    let rate_key = gateway::rate_key(&addressed.gateway.address);
    let conn = WsConn {
        rate_key,
        client,
        in_flight: InFlight::new(shared.config.max_in_flight),
        shared,
        socket,
        peer,
        ext,
        stop,
        early: VecDeque::new(),
        max_early,
        initialized: false,
        awaiting_pong: false,
        live: None,
        _guard: guard,
    };
    Some((conn, link))
}

struct WsConn {
    shared: Arc<Shared>,
    /// What this connection's actions count under for `rate_limit_per_actor`.
    rate_key: String,
    /// The client's address, whose `rate_limit_per_client` its actions count against.
    client: Option<std::net::IpAddr>,
    socket: WebSocket,
    peer: Peer,
    ext: ConnExtensions,
    stop: Stop,
    in_flight: InFlight,
    /// Client messages that arrived before `Init` went out; sent to the runtime right after.
    early: VecDeque<ToServer>,
    max_early: usize,
    initialized: bool,
    /// A ping went out and nothing has come back since.
    awaiting_pong: bool,
    /// This task's claim on its connection id, from `Init` on.
    live: Option<LiveLink>,
    /// Holds this connection's slot until the task ends.
    _guard: ConnGuard,
}

impl WsConn {
    async fn pump(
        &mut self,
        sender: &dyn LinkSender,
        mut events: LinkInbox,
        backlog: &Backlog,
    ) -> End {
        let every = self.shared.config.ws_ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Made once: a new wait per message would register with the shared signal every time.
        let mut stop = self.stop.clone();
        let stopped = stop.wait();
        tokio::pin!(stopped);
        loop {
            let step = tokio::select! {
                biased;
                () = &mut stopped => Err(End::close(GOING_AWAY, "ws.going_away")),
                done = resume::retired(&mut self.live) => Err(End::Superseded(done)),
                event = events.recv(backlog) => match event {
                    Some(LinkEvent::Message(msg)) => {
                        backlog.taken(&msg);
                        if events.len() >= self.shared.config.max_queued_messages || backlog.is_over() {
                            tracing::warn!(queued = events.len(), bytes = backlog.bytes(), "client too slow; closing");
                            Err(End::close(GOING_AWAY, limits::TOO_SLOW))
                        } else {
                            self.outgoing(msg, sender).map(Some)
                        }
                    }
                    Some(LinkEvent::Closed(reason)) => Err(End::LinkClosed(reason)),
                    // The runtime dropped the link without a close: it is going away.
                    None => Err(End::close(GOING_AWAY, "ws.going_away")),
                },
                frame = self.socket.recv() => match frame {
                    Some(Ok(msg)) => {
                        self.awaiting_pong = false;
                        self.incoming(msg, sender)
                    }
                    Some(Err(e)) => Err(read_error(&e)),
                    None => Err(End::Dropped),
                },
                _ = ping.tick() => self.ping(),
            };
            // Every step sends at most one frame, awaited here only: the task (one per socket)
            // keeps a single send in its state.
            match step {
                Ok(Some(frame)) => {
                    tracing::trace!("frame sent");
                    match tokio::time::timeout(
                        self.shared.config.write_timeout,
                        self.socket.send(frame),
                    )
                    .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return End::Dropped,
                        Err(_) => {
                            tracing::warn!(
                                "a frame could not be written in time; dropping the client"
                            );
                            return End::Dropped;
                        }
                    }
                }
                Ok(None) => {}
                Err(end) => return end,
            }
        }
    }

    async fn finish(&mut self, sender: &dyn LinkSender, end: End) {
        match end {
            End::Close {
                notice,
                code,
                reason,
            } => {
                tracing::debug!(code, %reason, "server closed the connection");
                if let Some(notice) = notice {
                    let _ = self.socket.send(notice).await;
                }
                resume::release_link(sender, &self.ext, LinkEnd::Clean);
                close_socket(&mut self.socket, code, &reason).await;
            }
            End::LinkClosed(reason) => {
                tracing::debug!(code = reason.code, reason = %reason.reason, "connection closed by the actor");
                close_socket(&mut self.socket, reason.code, &reason.reason).await;
            }
            End::ClientClosed => {
                tracing::debug!("client closed the connection");
                resume::release_link(sender, &self.ext, LinkEnd::Clean);
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain(&mut self.socket)).await;
            }
            End::Dropped => {
                tracing::debug!("connection dropped");
                resume::release_link(sender, &self.ext, LinkEnd::Dropped);
            }
            End::Superseded(done) => {
                tracing::debug!("connection resumed on another socket");
                sender.lost();
                let _ = done.send(());
                close_socket(&mut self.socket, NORMAL, "connection.superseded").await;
            }
        }
    }

    fn ping(&mut self) -> Result<Option<Message>, End> {
        if self.awaiting_pong {
            tracing::debug!("no answer to the last ping");
            return Err(End::Dropped);
        }
        self.awaiting_pong = true;
        Ok(Some(Message::Ping(Bytes::new())))
    }

    /// The frame of a message.
    fn encode(&self, msg: &ToClient, version: u16) -> Message {
        let bytes = encode_to_client(msg, self.peer.encoding, version, self.peer.dialect);
        frame(self.peer.encoding, bytes.into())
    }

    /// The frame of an event; over the outgoing limit, the connection is closed.
    fn event(&self, name: &str, bytes: Bytes) -> Result<Message, End> {
        if bytes.len() > self.shared.config.max_outgoing {
            tracing::warn!(event = %name, size = bytes.len(), "event over the outgoing limit; closing");
            return Err(End::close(INTERNAL_ERROR, "message.outgoing_too_long"));
        }
        Ok(frame(self.peer.encoding, bytes))
    }

    /// A message from the runtime: the frame to send.
    fn outgoing(&mut self, mut msg: ToClient, sender: &dyn LinkSender) -> Result<Message, End> {
        let version = self.peer.version;
        match &msg {
            ToClient::Init { connection_id, .. } => {
                tracing::Span::current().record("id", connection_id.as_str());
                tracing::debug!("connection open");
                self.live = LiveLinks::register(&self.shared, &msg);
                let init_version = self.ext.prepare_init(&mut msg, self.peer.encoding, version);
                let init = self.encode(&msg, init_version);
                // What the client sent early reaches the runtime now; answers to it come
                // through this task, so after `Init` is on the socket.
                self.initialized = true;
                for early in self.early.drain(..) {
                    let _ = sender.send(early);
                }
                Ok(init)
            }
            ToClient::ActionResponse { id, .. } => {
                let id = *id;
                self.in_flight.finish(id);
                let bytes = encode_to_client(&msg, self.peer.encoding, version, self.peer.dialect);
                if bytes.len() > self.shared.config.max_outgoing {
                    tracing::warn!(
                        size = bytes.len(),
                        "action response over the outgoing limit"
                    );
                    let error = ToClient::Error {
                        error: ActionError::outgoing_too_long(),
                        action_id: Some(id),
                    };
                    return Ok(self.encode(&error, version));
                }
                Ok(frame(self.peer.encoding, bytes.into()))
            }
            ToClient::Event { name, .. } => {
                let bytes = encode_to_client(&msg, self.peer.encoding, version, self.peer.dialect);
                self.event(name, bytes.into())
            }
            ToClient::Broadcast(event) => {
                let bytes = event.encoded(self.peer.encoding, version, self.peer.dialect);
                self.event(event.name(), bytes)
            }
            ToClient::Error { action_id, .. } => {
                if let Some(id) = action_id {
                    self.in_flight.finish(*id);
                }
                Ok(self.encode(&msg, version))
            }
            _ => Ok(self.encode(&msg, version)),
        }
    }

    /// A frame from the client: the frame to answer with, if any.
    fn incoming(
        &mut self,
        frame: Message,
        sender: &dyn LinkSender,
    ) -> Result<Option<Message>, End> {
        let data: &[u8] = match &frame {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
            Message::Ping(_) | Message::Pong(_) => return Ok(None),
            Message::Close(_) => return Err(End::ClientClosed),
        };
        tracing::trace!(size = data.len(), "frame received");
        if data.len() > self.shared.config.max_incoming {
            return Err(End::close(INTERNAL_ERROR, "message.incoming_too_long"));
        }
        let (msg, version) = match decode_to_server(data, self.peer.encoding, self.peer.dialect) {
            Ok(decoded) => decoded,
            Err(e) => {
                let error = e.to_action_error();
                tracing::debug!(error = %error, "undecodable frame; closing");
                let notice = ToClient::Error {
                    error,
                    action_id: None,
                };
                return Err(End::Close {
                    notice: Some(self.encode(&notice, self.peer.version)),
                    code: INTERNAL_ERROR,
                    reason: "actor.invalid_request".to_owned(),
                });
            }
        };
        self.peer.saw_version(version);
        if let ToServer::ActionRequest { id, name, .. } = &msg {
            tracing::debug!(action = %name, id, "action request");
            // Actions over a connection count against the client's and the actor's rates like
            // requests do.
            let limits = &self.shared.limits;
            if let Err(error) = limits
                .client(self.client)
                .and_then(|()| limits.actor(&self.rate_key))
            {
                let error = ToClient::Error {
                    error,
                    action_id: Some(*id),
                };
                return Ok(Some(self.encode(&error, self.peer.version)));
            }
            if !self.in_flight.try_start(*id) {
                let error = ToClient::Error {
                    error: overloaded("actions in flight on this connection"),
                    action_id: Some(*id),
                };
                return Ok(Some(self.encode(&error, self.peer.version)));
            }
        }
        if self.initialized {
            // A closed link reports `Closed` on its event channel; nothing to do here.
            let _ = sender.send(msg);
        } else if self.early.len() >= self.max_early {
            return Err(End::close(INTERNAL_ERROR, "actor.overloaded"));
        } else {
            self.early.push_back(msg);
        }
        Ok(None)
    }
}

/// A WebSocket frame holding an encoded message: text for JSON, binary otherwise.
fn frame(encoding: Encoding, bytes: Bytes) -> Message {
    if encoding.is_binary() {
        return Message::Binary(bytes);
    }
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(bytes),
    }
}

/// What a failed read means: an oversized frame, bad UTF-8 or a protocol violation get their
/// close codes; anything else is a broken transport.
fn read_error(error: &axum::Error) -> End {
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<tungstenite::Error>() {
            return match e {
                tungstenite::Error::Capacity(_) => {
                    End::close(INTERNAL_ERROR, "message.incoming_too_long")
                }
                tungstenite::Error::Utf8(_) => End::close(INVALID_DATA, "actor.invalid_request"),
                // The peer went away without a close frame: a drop, not a violation.
                tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ) => End::Dropped,
                tungstenite::Error::Protocol(_) => {
                    End::close(PROTOCOL_ERROR, "actor.invalid_request")
                }
                _ => End::Dropped,
            };
        }
        source = e.source();
    }
    End::Dropped
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
