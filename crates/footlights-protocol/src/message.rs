//! The realtime messages exchanged over a connection, independent of encoding.

use crate::error::ActionError;
use crate::ids::{ActorId, ConnId};
use crate::value::Value;

/// A message from a client to an actor over a connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ToServer {
    /// Call an action; the reply carries the same `id`.
    ActionRequest {
        /// Chosen by the client, echoed in the reply.
        id: u64,
        /// The action's wire name.
        name: String,
        /// Positional arguments.
        args: Vec<Value>,
    },
    /// Start or stop receiving an event.
    SubscriptionRequest {
        /// The event's wire name.
        event_name: String,
        /// `true` to subscribe, `false` to unsubscribe.
        subscribe: bool,
    },
}

/// A message from an actor to a client over a connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ToClient {
    /// The first message on every connection.
    Init {
        /// The actor the connection reached.
        actor_id: ActorId,
        /// The connection's id.
        connection_id: ConnId,
        /// A secret that lets a Footlights client resume this connection after a drop.
        connection_token: Option<String>,
    },
    /// An error: of one action when `action_id` is set, of the connection otherwise.
    Error {
        /// The error, already masked for the client.
        error: ActionError,
        /// The failed action, if the error belongs to one.
        action_id: Option<u64>,
    },
    /// The result of an action.
    ActionResponse {
        /// The request's id.
        id: u64,
        /// The action's output (`null` for actions that return nothing).
        output: Value,
    },
    /// An event the connection subscribed to, or one sent to it directly.
    Event {
        /// The event's wire name.
        name: String,
        /// The event's arguments.
        args: Vec<Value>,
    },
}
