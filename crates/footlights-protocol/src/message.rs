//! The realtime messages exchanged over a connection, independent of encoding.

use crate::broadcast::SharedEvent;
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
    /// An event sent to many connections at once: the same message as [`ToClient::Event`] on
    /// the wire, built once and shared, so each wire format is encoded once for all of them
    /// (see [`SharedEvent::encoded`]). Decoders never produce it; an actor's broadcasts reach
    /// in-process links in this form.
    Broadcast(SharedEvent),
}

impl ToClient {
    /// The name and arguments of an event, plain or shared.
    ///
    /// ```
    /// use footlights_protocol::{SharedEvent, ToClient, Value};
    /// let plain = ToClient::Event { name: "ping".into(), args: vec![Value::Int(1)] };
    /// let shared = ToClient::Broadcast(SharedEvent::new("ping", vec![Value::Int(1)]));
    /// assert_eq!(plain.as_event(), shared.as_event());
    /// assert_eq!(plain.as_event(), Some(("ping", &[Value::Int(1)][..])));
    /// ```
    pub fn as_event(&self) -> Option<(&str, &[Value])> {
        match self {
            ToClient::Event { name, args } => Some((name, args)),
            ToClient::Broadcast(event) => Some((event.name(), event.args())),
            _ => None,
        }
    }

    /// About how many bytes the message takes on the wire ([`Value::approx_size`] of what it
    /// carries, plus a little): for bounds on what waits in memory for a client.
    pub fn approx_size(&self) -> usize {
        const HEADER: usize = 16;
        match self {
            ToClient::Init { .. } => HEADER + 96,
            ToClient::Error { error, .. } => {
                HEADER
                    + error.group().len()
                    + error.code().len()
                    + error.message().len()
                    + error.metadata().map_or(0, Value::approx_size)
            }
            ToClient::ActionResponse { output, .. } => HEADER + output.approx_size(),
            ToClient::Event { name, args } => {
                HEADER + name.len() + args.iter().map(Value::approx_size).sum::<usize>()
            }
            ToClient::Broadcast(event) => event.approx_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_small() {
        // Every link's channel reserves room for 32 messages up front.
        assert_eq!(size_of::<ActionError>(), size_of::<usize>());
        assert!(size_of::<ToClient>() <= 64, "{}", size_of::<ToClient>());
    }
}
