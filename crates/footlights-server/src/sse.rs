//! The SSE transport, a Footlights extension (RivetKit removed its own in 2.0.24).
//!
//! Same connection as a WebSocket (params, hooks, `Init`, actions, events, errors, close
//! reasons), carried differently:
//!
//! - `GET {gateway…}/connect/sse` opens the connection and answers `text/event-stream`. The
//!   first event is `footlights-init` with `{"connectionId","secret"}`; after it every message
//!   from the actor is one `message` event whose data is the JSON text (json) or the standard
//!   base64 of the bytes (cbor, bare). Comment lines keep an idle stream alive. The stream ends
//!   with a `footlights-close` event `{"code","reason"}` (WebSocket close codes and reasons).
//! - `POST {gateway…}/connections/{connId}/message` with header `x-footlights-conn-secret`
//!   carries one client message (the raw JSON, CBOR or BARE bytes) and answers 202.
//! - `POST {gateway…}/connections/{connId}/close` with the same header closes the connection.
//!
//! The full description is in `docs/protocol-extensions.md`.

use crate::cors::RayId;
use crate::metrics::Transport;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use footlights_client::{Backlog, CloseReason, Link, LinkEvent, LinkSender};
use footlights_core::ConnRequest;
use footlights_protocol::codec::{Encoding, decode_to_server, encode_to_client};
use footlights_protocol::{ActionError, ActorId, ToClient, ToServer};
use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::action::CONN_PARAMS_HEADER;
use crate::error::{HttpError, for_client, method_not_allowed, overloaded};
use crate::gateway::path::ActorAddress;
use crate::gateway::{self, Addressed};
use crate::limits::{self, InFlight, parse_params, read_body};
use crate::peer::Peer;
use crate::resume::{self, ConnExtensions, LinkEnd, LiveLink, LiveLinks, same_secret};
use crate::server::Shared;
use crate::shutdown::{ConnGuard, Refusal, Stop};
use crate::ws::CLOSE_TIMEOUT;

/// The header that binds a message or close post to its SSE connection.
pub(crate) const SECRET_HEADER: &str = "x-footlights-conn-secret";
/// Query parameter alternatives to headers, for `EventSource`, which cannot set headers.
const ENCODING_PARAM: &str = "fl-encoding";
const PARAMS_PARAM: &str = "fl-conn-params";
/// Event names.
const INIT_EVENT: &str = "footlights-init";
const MESSAGE_EVENT: &str = "message";
const CLOSE_EVENT: &str = "footlights-close";
/// Posted messages waiting for the connection task.
const COMMAND_BUFFER: usize = 256;
/// Stream chunks waiting for the client to read them.
const STREAM_BUFFER: usize = 64;

/// What a post asks of an SSE connection.
#[derive(Debug)]
enum Command {
    Message(ToServer),
    Close,
}

/// One open SSE connection, as its posts find it.
#[derive(Debug, Clone)]
struct Session {
    actor: ActorId,
    secret: String,
    peer: Peer,
    commands: mpsc::Sender<Command>,
}

/// Open SSE connections by connection id. Entries are added when `Init` goes out and removed
/// when the connection task ends.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session `id` if `secret` is its secret.
    fn find(&self, id: &str, secret: &str) -> Option<Session> {
        let map = self.lock();
        let session = map.get(id)?;
        same_secret(session.secret.as_bytes(), secret.as_bytes()).then(|| session.clone())
    }
}

fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One SSE event. Data lines never hold `\r`: JSON escapes it and base64 has none.
fn event(name: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + name.len() + 16);
    out.push_str("event: ");
    out.push_str(name);
    out.push('\n');
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.trim_end_matches('\r'));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

fn close_event(code: u16, reason: &str) -> Bytes {
    event(
        CLOSE_EVENT,
        &serde_json::json!({ "code": code, "reason": reason }).to_string(),
    )
}

/// `GET …/connect/sse`.
pub(crate) async fn connect(shared: Arc<Shared>, req: Request, addressed: Addressed) -> Response {
    match open(shared, req, addressed).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn open(
    shared: Arc<Shared>,
    req: Request,
    addressed: Addressed,
) -> Result<Response, HttpError> {
    if req.method() != Method::GET {
        return Err(method_not_allowed().into());
    }
    let ray = req
        .extensions()
        .get::<RayId>()
        .cloned()
        .unwrap_or_else(RayId::new);
    let headers = req.headers();
    let query: Vec<(String, String)> = form_urlencoded::parse(
        addressed
            .gateway
            .query
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    )
    .into_owned()
    .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let encoding = match headers
        .get("x-rivet-encoding")
        .and_then(|v| v.to_str().ok())
        .or_else(|| param(ENCODING_PARAM))
    {
        None => Encoding::Json,
        Some(name) => name.parse().map_err(|_| {
            ActionError::new(
                "protocol",
                "unsupported_encoding",
                format!("unknown encoding `{name}`"),
            )
        })?,
    };
    let params_text = headers
        .get(CONN_PARAMS_HEADER)
        .map(HeaderValue::as_bytes)
        .or_else(|| param(PARAMS_PARAM).map(str::as_bytes));
    let params = parse_params(params_text, shared.config.max_conn_params)?;
    let ext = ConnExtensions::from_sse(headers, &query);
    let guard = match shared.open_conn(Transport::Sse, &addressed.gateway.address, ray) {
        Ok(guard) => guard,
        Err(Refusal::Stopping) => return Err(ActionError::stopping().into()),
        Err(Refusal::Full) => return Err(overloaded("connections").into()),
    };
    let actor = gateway::resolve(&shared, &addressed.gateway.address).await?;
    let request = ConnRequest::new(Method::GET, addressed.uri(), headers.clone())
        .with_span(crate::trace::of(req.extensions()));
    let link = resume::open_link(&shared, &actor.target(), params, request, &ext).await?;

    let (out, body) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    let (commands_tx, commands) = mpsc::channel(COMMAND_BUFFER);
    let conn = SseConn {
        backlog: Backlog::default(),
        in_flight: InFlight::new(shared.config.max_in_flight),
        stop: shared.stop.clone(),
        peer: Peer::footlights(encoding),
        actor: actor.id,
        secret: new_secret(),
        conn_id: None,
        live: None,
        commands_tx,
        shared,
        ext,
        out,
        _guard: guard,
    };
    let span = tracing::debug_span!("conn", id = tracing::field::Empty, transport = "sse");
    tokio::spawn(conn.run(link, commands).instrument(span));

    let stream = futures::stream::unfold(body, |mut body| async move {
        body.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), body))
    });
    Ok(event_stream_response(stream))
}

/// A `text/event-stream` response streaming `chunks`, not cached, and not held back by
/// buffering proxies (`x-accel-buffering: no`).
pub(crate) fn event_stream_response<S>(chunks: S) -> Response
where
    S: futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
{
    let mut response = Body::from_stream(chunks).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `connection.not_found`, answered with 404.
fn not_found() -> HttpError {
    HttpError::json(ActionError::connection_not_found()).with_status(StatusCode::NOT_FOUND)
}

/// Finds the session a post is for: the connection must exist, belong to the actor the URL
/// names, and the secret must match. Anything else is `connection.not_found`.
async fn session_for(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    addressed: &Addressed,
    conn_id: &str,
) -> Result<Session, HttpError> {
    if parts.method != Method::POST {
        return Err(method_not_allowed().into());
    }
    let secret = parts
        .headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let session = shared.sse.find(conn_id, secret).ok_or_else(not_found)?;
    let same_actor = match &addressed.gateway.address {
        ActorAddress::Id { id, .. } => *id == session.actor.as_str(),
        query => gateway::resolve(shared, query).await?.id == session.actor,
    };
    if !same_actor {
        return Err(not_found());
    }
    Ok(session)
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

fn deliver(session: &Session, command: Command) -> Result<Response, HttpError> {
    match session.commands.try_send(command) {
        Ok(()) => Ok(accepted()),
        Err(mpsc::error::TrySendError::Full(_)) => {
            Err(overloaded("messages waiting on this connection").into())
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(not_found()),
    }
}

/// `POST …/connections/{connId}/message`.
pub(crate) async fn message(
    shared: &Shared,
    req: Request,
    addressed: &Addressed,
    conn_id: String,
) -> Response {
    let result = async {
        let (parts, body) = req.into_parts();
        let session = session_for(shared, &parts, addressed, &conn_id).await?;
        let bytes = read_body(&parts.headers, body, shared.config.max_incoming).await?;
        let (msg, _version) = decode_to_server(&bytes, session.peer.encoding, session.peer.dialect)
            .map_err(|e| e.to_action_error())?;
        deliver(&session, Command::Message(msg))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST …/connections/{connId}/close`.
pub(crate) async fn close(
    shared: &Shared,
    req: Request,
    addressed: &Addressed,
    conn_id: String,
) -> Response {
    let result = async {
        let (parts, _) = req.into_parts();
        let session = session_for(shared, &parts, addressed, &conn_id).await?;
        deliver(&session, Command::Close)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// How an SSE connection ended.
enum End {
    /// The server ends the connection with this code and reason.
    Close(u16, String),
    /// The runtime closed the connection.
    LinkClosed(CloseReason),
    /// The client posted a close.
    ClientClosed,
    /// The client stopped reading (the response body was dropped).
    Dropped,
    /// A resume on another stream takes the connection over.
    Superseded(oneshot::Sender<()>),
}

/// One SSE connection's task.
struct SseConn {
    shared: Arc<Shared>,
    /// What waits for this stream (set from the link when it runs).
    backlog: Backlog,
    peer: Peer,
    ext: ConnExtensions,
    stop: Stop,
    actor: ActorId,
    secret: String,
    /// Set when `Init` goes out; the key of this connection in [`Sessions`].
    conn_id: Option<String>,
    /// Registered with the session so posts reach this task.
    commands_tx: mpsc::Sender<Command>,
    in_flight: InFlight,
    /// This task's claim on its connection id, from `Init` on.
    live: Option<Box<LiveLink>>,
    /// The response body; closed when the client goes away.
    out: mpsc::Sender<Bytes>,
    /// Holds this connection's slot until the task ends.
    _guard: ConnGuard,
}

impl SseConn {
    async fn run(mut self, link: Link, mut commands: mpsc::Receiver<Command>) {
        let Link {
            sender,
            mut events,
            backlog,
        } = link;
        backlog.set_limit(self.shared.config.max_queued_bytes);
        self.backlog = backlog;
        let every = self.shared.config.sse_keep_alive;
        let mut keep_alive = tokio::time::interval_at(Instant::now() + every, every);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Made once: a new wait per message would register with the shared signal every time.
        let mut stop = self.stop.clone();
        let stopped = stop.wait();
        tokio::pin!(stopped);
        let end = loop {
            let step = tokio::select! {
                biased;
                () = &mut stopped => Err(End::Close(1001, "ws.going_away".into())),
                () = self.out.closed() => Err(End::Dropped),
                done = resume::retired(&mut self.live) => Err(End::Superseded(done)),
                event = events.recv() => match event {
                    Some(LinkEvent::Message(msg)) => {
                        self.backlog.taken(&msg);
                        if events.len() >= self.shared.config.max_queued_messages || self.backlog.is_over() {
                            tracing::warn!(queued = events.len(), bytes = self.backlog.bytes(), "client too slow; closing");
                            Err(End::Close(1001, limits::TOO_SLOW.into()))
                        } else {
                            self.outgoing(msg).await
                        }
                    }
                    Some(LinkEvent::Closed(reason)) => Err(End::LinkClosed(reason)),
                    None => Err(End::Close(1001, "ws.going_away".into())),
                },
                Some(command) = commands.recv() => match command {
                    Command::Message(msg) => self.forward(msg, &*sender).await,
                    Command::Close => Err(End::ClientClosed),
                },
                _ = keep_alive.tick() => self.write(Bytes::from_static(b": keep-alive\n\n")).await,
            };
            if let Err(end) = step {
                break end;
            }
        };
        self.finish(&*sender, end).await;
    }

    async fn finish(&mut self, sender: &dyn LinkSender, end: End) {
        if let Some(id) = &self.conn_id {
            let mut sessions = self.shared.sse.lock();
            if sessions.get(id).is_some_and(|s| s.secret == self.secret) {
                sessions.remove(id);
            }
        }
        let last = match end {
            End::Close(code, reason) => {
                tracing::debug!(code, %reason, "server closed the connection");
                resume::release_link(sender, &self.ext, LinkEnd::Clean);
                close_event(code, &reason)
            }
            End::LinkClosed(reason) => {
                tracing::debug!(code = reason.code, reason = %reason.reason, "connection closed by the actor");
                close_event(reason.code, &reason.reason)
            }
            End::ClientClosed => {
                tracing::debug!("client closed the connection");
                resume::release_link(sender, &self.ext, LinkEnd::Clean);
                close_event(1000, "")
            }
            End::Dropped => {
                tracing::debug!("connection dropped");
                resume::release_link(sender, &self.ext, LinkEnd::Dropped);
                return;
            }
            End::Superseded(done) => {
                tracing::debug!("connection resumed on another stream");
                sender.lost();
                let _ = done.send(());
                close_event(1000, "connection.superseded")
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.out.send(last)).await;
    }

    /// Writes to the stream, unless the client is gone.
    async fn write(&mut self, chunk: Bytes) -> Result<(), End> {
        let write = tokio::time::timeout(self.shared.config.write_timeout, self.out.send(chunk));
        tokio::select! {
            written = write => match written {
                Ok(sent) => sent.map_err(|_| End::Dropped),
                Err(_) => {
                    tracing::warn!("an event could not be written in time; dropping the client");
                    Err(End::Dropped)
                }
            },
            () = self.backlog.over() => {
                tracing::warn!(bytes = self.backlog.bytes(), "the client's backlog passed its limit while a write waited; dropping it");
                Err(End::Dropped)
            }
        }
    }

    /// Writes one message event, checked against the outgoing limit.
    async fn write_message(&mut self, msg: &ToClient, version: u16) -> Result<(), End> {
        let bytes = match msg {
            // Encoded once for every connection the event goes to.
            ToClient::Broadcast(event) => {
                event.encoded(self.peer.encoding, version, self.peer.dialect)
            }
            _ => encode_to_client(msg, self.peer.encoding, version, self.peer.dialect).into(),
        };
        self.write_encoded(&bytes).await
    }

    /// Writes an encoded message as one event (base64 for binary encodings).
    async fn write_encoded(&mut self, bytes: &[u8]) -> Result<(), End> {
        if bytes.len() > self.shared.config.max_outgoing {
            return Err(End::Close(1011, "message.outgoing_too_long".into()));
        }
        let data = match self.peer.encoding {
            Encoding::Json => match std::str::from_utf8(bytes) {
                Ok(text) => std::borrow::Cow::Borrowed(text),
                Err(_) => STANDARD.encode(bytes).into(),
            },
            _ => STANDARD.encode(bytes).into(),
        };
        tracing::trace!("event sent");
        self.write(event(MESSAGE_EVENT, &data)).await
    }

    async fn outgoing(&mut self, mut msg: ToClient) -> Result<(), End> {
        let version = self.peer.version;
        match &msg {
            ToClient::Init { connection_id, .. } => {
                let id = connection_id.as_str().to_owned();
                tracing::Span::current().record("id", id.as_str());
                tracing::debug!("connection open");
                self.shared.sse.lock().insert(
                    id.clone(),
                    Session {
                        actor: self.actor.clone(),
                        secret: self.secret.clone(),
                        peer: self.peer,
                        commands: self.commands_tx.clone(),
                    },
                );
                self.conn_id = Some(id.clone());
                self.live = LiveLinks::register(&self.shared, &msg);
                let init = serde_json::json!({ "connectionId": id, "secret": self.secret });
                self.write(event(INIT_EVENT, &init.to_string())).await?;
                let init_version = self.ext.prepare_init(&mut msg, self.peer.encoding, version);
                self.write_message(&msg, init_version).await
            }
            ToClient::ActionResponse { id, .. } => {
                let id = *id;
                self.in_flight.finish(id);
                match self.write_message(&msg, version).await {
                    Err(End::Close(..)) => {
                        tracing::warn!("action response over the outgoing limit");
                        let error = ToClient::Error {
                            error: ActionError::outgoing_too_long(),
                            action_id: Some(id),
                        };
                        self.write_message(&error, version).await
                    }
                    other => other,
                }
            }
            ToClient::Error { action_id, .. } => {
                if let Some(id) = action_id {
                    self.in_flight.finish(*id);
                }
                self.write_message(&msg, version).await
            }
            _ => self.write_message(&msg, version).await,
        }
    }

    /// A posted client message.
    async fn forward(&mut self, msg: ToServer, sender: &dyn LinkSender) -> Result<(), End> {
        if let ToServer::ActionRequest { id, name, .. } = &msg {
            tracing::debug!(action = %name, id, "action request");
            if !self.in_flight.try_start(*id) {
                let error = ToClient::Error {
                    error: for_client(overloaded("actions in flight on this connection")),
                    action_id: Some(*id),
                };
                return self.write_message(&error, self.peer.version).await;
            }
        }
        let _ = sender.send(msg);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_line_by_line() {
        assert_eq!(&event("message", "{}")[..], b"event: message\ndata: {}\n\n");
        assert_eq!(&event("x", "a\nb\r")[..], b"event: x\ndata: a\ndata: b\n\n");
        assert_eq!(
            &close_event(1001, "ws.going_away")[..],
            b"event: footlights-close\ndata: {\"code\":1001,\"reason\":\"ws.going_away\"}\n\n"
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
        assert_ne!(new_secret(), new_secret());
    }
}
