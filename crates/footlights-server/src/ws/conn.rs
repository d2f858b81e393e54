//! One `/connect` connection's pump: frames between the socket and the runtime's link.

use std::sync::Arc;

use axum::body::Bytes;
use footlights_client::{Backlog, CloseReason, LinkEvent, LinkInbox, LinkSender};
use footlights_protocol::codec::{Encoding, decode_to_server, encode_to_client};
use footlights_protocol::{ActionError, ToClient, ToServer};
use futures::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes};

use super::direct::Direct;
use super::upgrade::{Io, Socket};
use super::{
    CLOSE_TIMEOUT, CONNECT_BUFFER, GOING_AWAY, INTERNAL_ERROR, INVALID_DATA, NORMAL,
    PROTOCOL_ERROR, max_early,
};
use crate::error::overloaded;
use crate::limits::{self, InFlight, close_reason};
use crate::peer::Peer;
use crate::resume::{self, ConnExtensions, LinkEnd, LiveLink, LiveLinks};
use crate::server::Shared;
use crate::shutdown::ConnGuard;

/// The WebSocket settings of a `/connect` socket.
pub(super) fn config(shared: &Shared) -> WebSocketConfig {
    let max = shared.config.max_incoming;
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        // The 128 KiB default read buffer would dominate an idle connection's memory.
        .read_buffer_size(CONNECT_BUFFER)
        .write_buffer_size(0)
}

/// The WebSocket again on a parked socket's stream; `part` is what was read meanwhile.
pub(super) async fn socket_from(io: Io, part: Vec<u8>, shared: &Shared) -> Socket {
    WebSocketStream::from_partially_read(io, part, Role::Server, Some(config(shared))).await
}

/// Everything a connection keeps besides its socket; what a parked socket's task holds.
pub(super) struct Live {
    pub(super) conn: WsConn,
    pub(super) sender: Box<dyn LinkSender>,
    pub(super) events: LinkInbox,
    pub(super) backlog: Backlog,
}

/// Serves a connection from its socket until it ends or parks (then the task ends and a
/// parked one takes over, see [`super::park`]). With `first`, the connection ends that way
/// without reading anything. The first ping goes out at `ping_at`.
pub(super) async fn serve(
    mut live: Box<Live>,
    mut socket: Socket,
    first: Option<End>,
    ping_at: Instant,
) {
    let Live {
        conn,
        sender,
        events,
        backlog,
    } = &mut *live;
    let end = match first {
        Some(end) => end,
        None => {
            let end = conn
                .pump(&mut socket, &**sender, events, backlog, ping_at)
                .await;
            // Parking or closing: broadcasts take the link's queue again, behind whatever
            // the close or the parked link brings.
            if let Some(direct) = socket.get_ref().get_ref().direct() {
                direct.stop_serving();
            }
            end
        }
    };
    let end = match end {
        End::Park => match conn.settle(&mut socket).await {
            Ok(()) => {
                conn.in_flight.shrink();
                super::park::park(live, socket);
                return;
            }
            Err(end) => end,
        },
        end => end,
    };
    Box::pin(conn.finish(&mut socket, &**sender, end)).await;
}

/// What the link's side of the pump found.
enum Inboxed {
    /// The next event (`None`: the link parked or ended).
    Event(Option<LinkEvent>),
    /// The parked link has a channel again.
    Unparked,
}

/// The link's next event, or, while it is parked, the end of parking.
async fn next_event(events: &mut LinkInbox, backlog: &Backlog) -> Inboxed {
    if events.is_parked() {
        events.unparked().await;
        return Inboxed::Unparked;
    }
    Inboxed::Event(events.recv_unless_parked(backlog).await)
}

/// Resolves once a direct write left bytes for the task to flush; never without a direct
/// socket.
async fn wants_flush(direct: Option<&Direct>) {
    match direct {
        Some(direct) => std::future::poll_fn(|cx| direct.poll_wants_flush(cx)).await,
        None => std::future::pending().await,
    }
}

/// Sends a close frame and waits (bounded) for the peer's, so the frame is flushed.
pub(super) async fn close(socket: &mut Socket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(close_reason(reason).to_owned()),
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
async fn drain(socket: &mut Socket) {
    while let Some(Ok(msg)) = socket.next().await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
    }
}

/// How a connection ended.
pub(super) enum End {
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
    /// The actor sleeps and nothing is under way: the socket may park.
    Park,
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

pub(super) struct WsConn {
    pub(super) shared: Arc<Shared>,
    /// What this connection's actions count under for `rate_limit_per_actor`, when that is
    /// set.
    pub(super) rate_key: Option<Box<str>>,
    /// The client's address, whose `rate_limit_per_client` its actions count against.
    pub(super) client: Option<std::net::IpAddr>,
    pub(super) peer: Peer,
    pub(super) ext: ConnExtensions,
    pub(super) in_flight: InFlight,
    /// Client messages that arrived before `Init` went out; sent to the runtime right after.
    pub(super) early: Vec<ToServer>,
    pub(super) initialized: bool,
    /// A ping went out and nothing has come back since.
    pub(super) awaiting_pong: bool,
    /// Messages (data and control) read from the socket so far.
    pub(super) received: u64,
    /// This task's claim on its connection id, from `Init` on.
    pub(super) live: Option<Box<LiveLink>>,
    /// Holds this connection's slot until the task ends.
    pub(super) _guard: ConnGuard,
}

impl WsConn {
    async fn pump(
        &mut self,
        socket: &mut Socket,
        sender: &dyn LinkSender,
        events: &mut LinkInbox,
        backlog: &Backlog,
        ping_at: Instant,
    ) -> End {
        let every = self.shared.config.ws_ping_interval;
        let mut ping = tokio::time::interval_at(ping_at, every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Made once: a new wait per message would register with the shared signal every time.
        let mut stop = self.shared.stop.clone();
        let stopped = stop.wait();
        tokio::pin!(stopped);
        // Broadcasts may be written to the socket directly while the connection serves.
        let direct = socket.get_ref().get_ref().direct().cloned();
        let mut serving = false;
        loop {
            if !serving && self.initialized {
                if let Some(direct) = &direct {
                    direct.serve(self.peer);
                }
                serving = true;
            }
            // Set when a direct write left bytes for this task to write.
            let mut flush = false;
            let step = tokio::select! {
                biased;
                () = &mut stopped => Err(End::close(GOING_AWAY, "ws.going_away")),
                done = resume::retired(&mut self.live) => Err(End::Superseded(done)),
                event = next_event(events, backlog) => match event {
                    // Back from parking: the loop's head looks again.
                    Inboxed::Unparked => Ok(None),
                    Inboxed::Event(event) => match event {
                    Some(LinkEvent::Message(msg)) => {
                        // No broadcast overtakes this message until it is written.
                        match &direct {
                            Some(direct) => direct.taking(|| backlog.taken(&msg)),
                            None => backlog.taken(&msg),
                        }
                        if events.len() >= self.shared.config.max_queued_messages || backlog.is_over() {
                            tracing::warn!(queued = events.len(), bytes = backlog.bytes(), "client too slow; closing");
                            Err(End::close(GOING_AWAY, limits::TOO_SLOW))
                        } else {
                            self.outgoing(msg, sender).map(Some)
                        }
                    }
                    Some(LinkEvent::Closed(reason)) => Err(End::LinkClosed(reason)),
                    // Parked: the loop's head decides whether the socket parks too.
                    None if events.is_parked() => Ok(None),
                    // The runtime dropped the link without a close: it is going away.
                    None => Err(End::close(GOING_AWAY, "ws.going_away")),
                    },
                },
                () = wants_flush(direct.as_deref()) => {
                    flush = true;
                    Ok(None)
                }
                frame = socket.next() => match frame {
                    Some(Ok(msg)) => {
                        self.received += 1;
                        self.awaiting_pong = false;
                        let peer = self.peer;
                        let step = self.incoming(msg, sender);
                        if serving && peer != self.peer {
                            // The client's version changed what its events look like.
                            serving = false;
                        }
                        step
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
                    match tokio::time::timeout(self.shared.config.write_timeout, socket.send(frame))
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
                    if let Some(direct) = &direct {
                        direct.written();
                    }
                }
                Ok(None) => {}
                Err(end) => return end,
            }
            if flush {
                match tokio::time::timeout(self.shared.config.write_timeout, socket.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return End::Dropped,
                    Err(_) => {
                        tracing::warn!("events could not be written in time; dropping the client");
                        return End::Dropped;
                    }
                }
            }
            // Checked after a step, so that whatever woke a parked socket is served first.
            if events.is_parked() && self.may_park(socket) {
                return End::Park;
            }
        }
    }

    /// Whether the socket may park now: the connection is open, nothing it read waits to be
    /// taken, and no action waits for an answer (which would wake it at once).
    fn may_park(&self, socket: &Socket) -> bool {
        self.initialized
            && self.early.is_empty()
            && self.in_flight.is_empty()
            && socket.get_ref().at_rest(self.received)
    }

    /// Before parking: whatever tungstenite still holds to send (an answer to a ping) goes
    /// out.
    async fn settle(&mut self, socket: &mut Socket) -> Result<(), End> {
        match tokio::time::timeout(self.shared.config.write_timeout, socket.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Dropped),
        }
    }

    async fn finish(&mut self, socket: &mut Socket, sender: &dyn LinkSender, end: End) {
        match end {
            End::Close {
                notice,
                code,
                reason,
            } => {
                tracing::debug!(code, %reason, "server closed the connection");
                if let Some(notice) = notice {
                    let _ = socket.send(notice).await;
                }
                resume::release_link(sender, &self.ext, LinkEnd::Clean);
                close(socket, code, &reason).await;
            }
            End::LinkClosed(reason) => {
                tracing::debug!(code = reason.code, reason = %reason.reason, "connection closed by the actor");
                close(socket, reason.code, &reason.reason).await;
            }
            End::ClientClosed => {
                tracing::debug!("client closed the connection");
                resume::release_link(sender, &self.ext, LinkEnd::Clean);
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain(socket)).await;
            }
            End::Dropped => {
                tracing::debug!("connection dropped");
                resume::release_link(sender, &self.ext, LinkEnd::Dropped);
            }
            End::Superseded(done) => {
                tracing::debug!("connection resumed on another socket");
                sender.lost();
                let _ = done.send(());
                close(socket, NORMAL, "connection.superseded").await;
            }
            End::Park => {
                // Only `serve` parks; a park that could not settle ends as a drop.
                resume::release_link(sender, &self.ext, LinkEnd::Dropped);
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
                // Only a client that understands tokens is ever told its connection's token,
                // so only its socket can be taken over by a resume: other sockets need no
                // entry (one costs ~170 B while the socket lives).
                if self.ext.tokens {
                    self.live = LiveLinks::register(&self.shared, &msg);
                }
                let init_version = self.ext.prepare_init(&mut msg, self.peer.encoding, version);
                let init = self.encode(&msg, init_version);
                // What the client sent early reaches the runtime now; answers to it come
                // through this task, so after `Init` is on the socket.
                self.initialized = true;
                for early in std::mem::take(&mut self.early) {
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
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(None),
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
            if let Err(error) = limits.client(self.client).and_then(|()| {
                self.rate_key
                    .as_deref()
                    .map_or(Ok(()), |key| limits.actor(key))
            }) {
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
        } else if self.early.len() >= max_early(&self.shared) {
            return Err(End::close(INTERNAL_ERROR, "actor.overloaded"));
        } else {
            self.early.push(msg);
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
fn read_error(error: &tungstenite::Error) -> End {
    match error {
        tungstenite::Error::Capacity(_) => End::close(INTERNAL_ERROR, "message.incoming_too_long"),
        tungstenite::Error::Utf8(_) => End::close(INVALID_DATA, "actor.invalid_request"),
        // The peer went away without a close frame: a drop, not a violation.
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => End::Dropped,
        tungstenite::Error::Protocol(_) => End::close(PROTOCOL_ERROR, "actor.invalid_request"),
        _ => End::Dropped,
    }
}
