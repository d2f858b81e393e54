//! Raw HTTP and raw WebSocket handlers: traffic the actor handles itself, outside the action
//! protocol.
//!
//! A raw HTTP request reaches [`Actor::on_request`], which answers
//! with a [`RawReply`]: a response, which goes back unchanged, or a response still being made,
//! which the actor finishes beside its mailbox. A raw WebSocket opens with
//! [`Actor::on_websocket`]; its messages arrive at
//! [`Actor::on_websocket_message`] and the actor answers
//! through the [`RawSocket`] handle. Both run with a connection (params, connect hooks), like
//! stateless actions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use footlights_protocol::ActionError;
use tokio::sync::mpsc;

use crate::actor::Actor;
use crate::conn::Parked;
use crate::deferred::Deferred;
use crate::gate::{Gate, Output};
use crate::instance::{Mailbox, Msg};
use crate::local::Address;

/// A raw HTTP request as the actor sees it: the path after `/request`, the query, the headers
/// and the whole body.
pub type RawRequest = http::Request<Bytes>;

/// A raw HTTP response, returned to the client unchanged.
pub type RawResponse = http::Response<Bytes>;

/// What a request handler ([`Actor::on_request`]) answers.
///
/// ```
/// use footlights_core::{ActionError, Deferred, RawReply, RawResponse};
///
/// // A response now:
/// let now: RawReply = RawResponse::new("hello".into()).into();
/// // A response later, made without the state while the actor serves other messages:
/// let later = RawReply::later(async {
///     tokio::task::yield_now().await;
///     Ok::<_, ActionError>(RawResponse::new("done".into()))
/// });
/// # drop((now, later));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RawReply {
    /// This response, returned to the client unchanged (status, headers and body).
    Response(RawResponse),
    /// A response still being made. The future holds no borrow of the state: the actor polls it
    /// beside its mailbox, like a [`Deferred`] action, so other actions and requests are served
    /// meanwhile and the actor stays awake until it is done. It shares the handler's time limit
    /// ([`ActorOptions::action_timeout`](crate::ActorOptions::action_timeout)) and keeps the
    /// request's short-lived connection open until it ends.
    Later(Deferred<RawResponse>),
    /// The handler took the request but made no response. The client gets HTTP 500 with the
    /// error `handler.invalid_request_handler_response`.
    NoResponse,
    /// The actor has no request handler: what the default
    /// [`Actor::on_request`] answers. The client gets HTTP 404 with
    /// the error `handler.request_not_defined`; a handler may answer it too, for paths it does
    /// not serve.
    NotDefined,
}

impl RawReply {
    /// A response made by `fut`, beside the actor's mailbox ([`RawReply::Later`]).
    pub fn later(
        fut: impl Future<Output = Result<RawResponse, ActionError>> + Send + 'static,
    ) -> Self {
        RawReply::Later(Deferred::new(fut))
    }
}

impl From<RawResponse> for RawReply {
    fn from(response: RawResponse) -> Self {
        RawReply::Response(response)
    }
}

/// `None` is [`RawReply::NoResponse`].
impl From<Option<RawResponse>> for RawReply {
    fn from(response: Option<RawResponse>) -> Self {
        response.map_or(RawReply::NoResponse, RawReply::Response)
    }
}

impl From<Deferred<RawResponse>> for RawReply {
    fn from(later: Deferred<RawResponse>) -> Self {
        RawReply::Later(later)
    }
}

/// `handler.request_not_defined` (404): the actor answers no raw HTTP.
pub(crate) fn request_not_defined() -> ActionError {
    ActionError::new(
        "handler",
        "request_not_defined",
        "the actor has no raw HTTP request handler (`Actor::on_request`)",
    )
}

/// `handler.invalid_request_handler_response` (500): the handler made no response.
pub(crate) fn no_response() -> ActionError {
    ActionError::new(
        "handler",
        "invalid_request_handler_response",
        "the actor's request handler made no response",
    )
}

/// One WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Bytes),
}

/// What the actor sends to a raw WebSocket's client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawEvent {
    /// The actor accepted the socket; messages may follow.
    Open,
    /// A message for the client.
    Message(WsMessage),
    /// The socket is closed with this code and reason; nothing follows.
    Closed {
        /// The close code (1000 normal, 1001 going away, 1011 error, ...).
        code: u16,
        /// The reason text.
        reason: String,
    },
}

/// The actor's handle to one raw WebSocket. Cheap to clone; keep it (for example in a
/// `#[serde(skip)]` field) to send later, or keep its [`id`](Self::id) and get it back from
/// [`Ctx::raw_socket`](crate::Ctx::raw_socket).
///
/// A handle belongs to one awake spell of its actor: when the socket hibernates with the
/// actor ([`ActorOptions::hibernate_raw_websockets`](crate::ActorOptions::hibernate_raw_websockets)),
/// the handles from before the sleep stop sending, and the woken actor gets a new handle for
/// the same socket (same id) in its hooks and from its context.
#[derive(Clone)]
pub struct RawSocket {
    inner: Arc<SocketInner>,
}

struct SocketInner {
    id: u64,
    tx: mpsc::UnboundedSender<RawEvent>,
    gate: Arc<Gate>,
    mailbox: Mailbox,
    closed: AtomicBool,
}

impl std::fmt::Debug for RawSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSocket")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for RawSocket {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}

impl RawSocket {
    pub(crate) fn new(
        id: u64,
        tx: mpsc::UnboundedSender<RawEvent>,
        gate: Arc<Gate>,
        mailbox: Mailbox,
    ) -> Self {
        RawSocket {
            inner: Arc::new(SocketInner {
                id,
                tx,
                gate,
                mailbox,
                closed: false.into(),
            }),
        }
    }

    /// Identifies the socket within its actor, for as long as it is open (across the actor's
    /// sleeps when it hibernates). Ids are random, so one kept in the state from before a
    /// restart of the server names no socket open now.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub(crate) fn emit(&self, event: RawEvent) {
        self.inner
            .gate
            .push(Output::Raw(self.inner.tx.clone(), event));
    }

    /// Sends a message to the client (after the state writes before it are durable, like
    /// every output of an actor).
    pub fn send(&self, msg: WsMessage) {
        if !self.inner.closed.load(Ordering::Acquire) {
            self.emit(RawEvent::Message(msg));
        }
    }

    /// Sends a text message.
    pub fn send_text(&self, text: impl Into<String>) {
        self.send(WsMessage::Text(text.into()));
    }

    /// Closes the socket; the close hook runs after the current message.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            let reason = reason.into();
            self.inner.gate.flush_staged();
            self.inner.gate.push_unstaged(Output::Raw(
                self.inner.tx.clone(),
                RawEvent::Closed {
                    code,
                    reason: reason.clone(),
                },
            ));
            let _ = self.inner.mailbox.send(Msg::WsClosed {
                socket: self.inner.id,
                code,
                reason,
            });
        }
    }

    pub(crate) fn mark_closed(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// Sets the socket aside with its connection for its actor's sleep: the handles from
    /// before the sleep stop sending, and only what leads to the client is kept.
    pub(crate) fn park<A: Actor>(&self, conn: Parked<A>) -> ParkedSocket<A> {
        self.mark_closed();
        ParkedSocket {
            id: self.inner.id,
            tx: self.inner.tx.clone(),
            conn,
        }
    }
}

/// A raw WebSocket set aside while its actor sleeps (hibernation): its id, the way to its
/// client and its connection; the next instance makes a new [`RawSocket`] of them.
pub(crate) struct ParkedSocket<A: Actor> {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::UnboundedSender<RawEvent>,
    pub(crate) conn: Parked<A>,
}

/// The server's side of a raw WebSocket: send the client's messages in with
/// [`sender`](Self::sender), read the actor's on [`events`](Self::events). The first event is
/// [`RawEvent::Open`], or [`RawEvent::Closed`] if the actor refused the socket.
#[derive(Debug)]
pub struct RawLink {
    /// Forwards the client's messages and close to the actor.
    pub sender: RawLinkSender,
    /// What the actor sends.
    pub events: mpsc::UnboundedReceiver<RawEvent>,
}

/// Forwards a raw WebSocket client's traffic to its actor.
#[derive(Debug)]
pub struct RawLinkSender {
    pub(crate) to: RawRoute,
    pub(crate) socket: u64,
}

/// Where a raw WebSocket's traffic goes.
#[derive(Debug)]
pub(crate) enum RawRoute {
    /// The mailbox of the instance that opened it: the socket closes when that instance
    /// stops.
    Instance(Mailbox),
    /// The actor's current instance, waking it when it sleeps: the socket may hibernate
    /// ([`ActorOptions::hibernate_raw_websockets`](crate::ActorOptions::hibernate_raw_websockets)).
    Actor(Address),
}

impl RawRoute {
    fn send(&self, msg: Msg) -> Result<(), ActionError> {
        match self {
            RawRoute::Instance(mailbox) => mailbox.send(msg).map_err(|_| ActionError::stopping()),
            RawRoute::Actor(address) => address.send(msg),
        }
    }
}

impl RawLinkSender {
    /// A message from the client. It wakes the actor when the socket hibernates with it.
    ///
    /// # Errors
    /// When the actor is gone.
    pub fn send(&self, msg: WsMessage) -> Result<(), ActionError> {
        self.to
            .send(Msg::WsMessage {
                socket: self.socket,
                msg,
            })
            .map_err(|_| ActionError::new("client", "connection_closed", "the socket is closed"))
    }

    /// The client closed the socket (or it dropped). It wakes the actor when the socket
    /// hibernates with it, to run the close hook.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let _ = self.to.send(Msg::WsClosed {
            socket: self.socket,
            code,
            reason: reason.into(),
        });
    }
}
