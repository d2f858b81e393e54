//! Raw HTTP and raw WebSocket handlers: traffic the actor handles itself, outside the action
//! protocol.
//!
//! A raw HTTP request reaches [`Actor::on_request`](crate::Actor::on_request) and its response
//! goes back unchanged. A raw WebSocket opens with
//! [`Actor::on_websocket`](crate::Actor::on_websocket); its messages arrive at
//! [`Actor::on_websocket_message`](crate::Actor::on_websocket_message) and the actor answers
//! through the [`RawSocket`] handle. Both run with a connection (params, connect hooks), like
//! stateless actions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use footlights_protocol::ActionError;
use tokio::sync::mpsc;

use crate::gate::{Gate, Output};
use crate::instance::{Mailbox, Msg};

/// A raw HTTP request as the actor sees it: the path after `/request`, the query, the headers
/// and the whole body.
pub type RawRequest = http::Request<Bytes>;

/// A raw HTTP response, returned to the client unchanged.
pub type RawResponse = http::Response<Bytes>;

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
/// `#[serde(skip)]` field) to send later.
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

    /// Identifies the socket within its actor.
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
    pub(crate) mailbox: Mailbox,
    pub(crate) socket: u64,
}

impl RawLinkSender {
    /// A message from the client.
    ///
    /// # Errors
    /// When the actor is gone.
    pub fn send(&self, msg: WsMessage) -> Result<(), ActionError> {
        self.mailbox
            .send(Msg::WsMessage {
                socket: self.socket,
                msg,
            })
            .map_err(|_| ActionError::new("client", "connection_closed", "the socket is closed"))
    }

    /// The client closed the socket (or it dropped).
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let _ = self.mailbox.send(Msg::WsClosed {
            socket: self.socket,
            code,
            reason: reason.into(),
        });
    }
}
