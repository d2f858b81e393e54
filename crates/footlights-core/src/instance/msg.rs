//! [`Msg`]: what reaches an actor's mailbox.

use footlights_client::{Backlog, LinkEvent};
use footlights_protocol::{ActionError, ConnId, ToServer, Value};
use tokio::sync::{mpsc, oneshot};

use super::pending::RawReplyTx;
use crate::conn::ConnRequest;
use crate::raw::{RawEvent, RawRequest, WsMessage};

/// A message to an actor.
pub(crate) enum Msg {
    /// A stateless action: runs with a short-lived connection.
    Action {
        name: String,
        args: Vec<Value>,
        params: Option<Value>,
        request: ConnRequest,
        reply: oneshot::Sender<Result<Value, ActionError>>,
    },
    /// A client opens a connection.
    Connect {
        conn_id: ConnId,
        /// Identifies the client link, so reports from a superseded link are ignored.
        link: u64,
        params: Option<Value>,
        request: ConnRequest,
        sink: mpsc::UnboundedSender<LinkEvent>,
        /// Counts what waits in `sink` for the transport.
        backlog: Backlog,
    },
    /// A message on an open connection.
    FromConn { conn_id: ConnId, msg: ToServer },
    /// A connection closed: by its client link `link`, or by `Conn::disconnect` (`None`).
    ConnClosed { conn_id: ConnId, link: Option<u64> },
    /// Client link `link` of a connection dropped without a clean close; keep the connection
    /// for the grace period.
    ConnLost { conn_id: ConnId, link: u64 },
    /// A client presents a connection's id and token to get it back on a new link.
    Resume {
        conn_id: ConnId,
        /// Where the link reads the id it addresses; replaced by a fresh id when `conn_id` is
        /// not kept here.
        slot: crate::local::IdSlot,
        link: u64,
        token: String,
        params: Option<Value>,
        request: ConnRequest,
        sink: mpsc::UnboundedSender<LinkEvent>,
        backlog: Backlog,
    },
    /// A scheduled call is due.
    Alarm { alarm_id: String },
    /// A raw HTTP request for the actor's request handler.
    Request {
        params: Option<Value>,
        request: RawRequest,
        reply: RawReplyTx,
    },
    /// A raw WebSocket opens.
    WsOpen {
        socket: u64,
        params: Option<Value>,
        request: ConnRequest,
        tx: mpsc::UnboundedSender<RawEvent>,
    },
    /// A message on a raw WebSocket.
    WsMessage { socket: u64, msg: WsMessage },
    /// A raw WebSocket closed.
    WsClosed {
        socket: u64,
        code: u16,
        reason: String,
    },
    /// The registry is shutting down: save and stop.
    Stop { done: oneshot::Sender<()> },
    /// An operator destroys the actor (as `ctx.destroy()` would); `done` hears when it is gone.
    Destroy { done: oneshot::Sender<()> },
    /// An operator reads or replaces the state ([`crate::inspect`]).
    Inspect(crate::inspect::InspectMsg),
    /// A queue send, or the removal of taken queue messages.
    Queue(crate::queue::state::Op),
}
