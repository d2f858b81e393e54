//! What a client needs from a transport: resolve actors, call stateless actions, open links.
//!
//! The in-process transport lives in `footlights-core`; the network one (HTTP, WebSocket, SSE)
//! in this crate's `net` module. Handles and connections work the same over any of them.

use std::fmt::Debug;

use footlights_protocol::{ActionError, ActorId, ActorKey, ToClient, ToServer, Value};
use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// Which actor a handle points at.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Target {
    /// An existing actor by name and key; `actor.not_found` if there is none.
    Get {
        /// The actor type's name.
        name: String,
        /// The key.
        key: ActorKey,
    },
    /// The actor with that name and key, created with `input` if there is none.
    GetOrCreate {
        /// The actor type's name.
        name: String,
        /// The key.
        key: ActorKey,
        /// The create input, used only if the actor is created.
        input: Option<Value>,
    },
    /// An actor by its internal id.
    Id {
        /// The actor type's name.
        name: String,
        /// The id.
        id: ActorId,
    },
}

impl Target {
    /// The actor type's name.
    pub fn name(&self) -> &str {
        match self {
            Target::Get { name, .. }
            | Target::GetOrCreate { name, .. }
            | Target::Id { name, .. } => name,
        }
    }
}

/// Why a link closed, as the server said it.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseReason {
    /// A WebSocket-style close code: 1000 normal (a server-side disconnect), 1001 going away
    /// (server stopping, actor sleeping), 1011 error.
    pub code: u16,
    /// The reason text: the user's disconnect reason, or `group.code` for errors.
    pub reason: String,
}

impl CloseReason {
    /// A normal close with a reason (what `conn.disconnect(reason)` sends).
    pub fn normal(reason: impl Into<String>) -> Self {
        CloseReason {
            code: 1000,
            reason: reason.into(),
        }
    }

    /// The server is going away; the client should reconnect.
    pub fn going_away() -> Self {
        CloseReason {
            code: 1001,
            reason: "ws.going_away".into(),
        }
    }

    /// A close caused by an error.
    pub fn error(error: &ActionError) -> Self {
        CloseReason {
            code: 1011,
            reason: format!("{}.{}", error.group(), error.code()),
        }
    }
}

/// What arrives on a link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// A message from the actor.
    Message(ToClient),
    /// The link closed; nothing follows.
    Closed(CloseReason),
}

/// The sending half of a link to an actor.
pub trait LinkSender: Send + Sync + Debug {
    /// Sends a message to the actor.
    ///
    /// # Errors
    /// When the link is closed.
    fn send(&self, msg: ToServer) -> Result<(), ActionError>;

    /// Closes the link from the client side (the server runs its disconnect hook).
    fn close(&self);

    /// The link dropped without a clean close (a network failure). The server keeps the
    /// connection for a grace period so the client can resume it. Defaults to [`close`](Self::close).
    fn lost(&self) {
        self.close();
    }
}

/// An open realtime link: send with `sender`, receive on `events`.
#[derive(Debug)]
pub struct Link {
    /// Sends messages to the actor.
    pub sender: Box<dyn LinkSender>,
    /// Messages from the actor, then one [`LinkEvent::Closed`].
    pub events: mpsc::UnboundedReceiver<LinkEvent>,
}

/// A way to reach actors. Object-safe, so clients hold an `Arc<dyn Transport>`.
pub trait Transport: Send + Sync + Debug + 'static {
    /// Finds (or, for [`Target::GetOrCreate`], creates) the actor and returns its id.
    fn resolve<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<ActorId, ActionError>>;

    /// Creates a new actor; `actor.duplicate_key` if the key is taken.
    fn create<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
        input: Option<Value>,
    ) -> BoxFuture<'a, Result<ActorId, ActionError>>;

    /// Calls an action statelessly (a short-lived connection with `params`).
    fn action<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        args: Vec<Value>,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Value, ActionError>>;

    /// Opens a realtime link. The first message on it is `Init` (or an error, then `Closed`).
    fn connect<'a>(
        &'a self,
        target: &'a Target,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Link, ActionError>>;
}
