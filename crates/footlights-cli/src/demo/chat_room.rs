//! `chatRoom`: named members, messages with a durable history, join and leave events.

use std::collections::VecDeque;

use footlights::prelude::*;
use footlights::{Conns, Value};

/// How many messages the history keeps; older ones are dropped.
pub const HISTORY_LIMIT: usize = 100;
/// The longest message text, in characters; longer ones are refused with the user error
/// `message_too_long` and metadata `{"maxLength": 2000}`.
pub const MAX_MESSAGE_LENGTH: usize = 2000;
/// The name of members who connect without one.
pub const ANONYMOUS: &str = "anon";

/// Connection params: `{ name?: string }`. Missing params or name mean [`ANONYMOUS`].
#[derive(Debug, Default, Deserialize)]
pub struct JoinParams {
    name: Option<String>,
}

/// Per-connection state, built from the params when a member connects.
#[derive(Debug, Default)]
pub struct Member {
    name: String,
}

/// One chat message; also the `message` event's single argument.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The sender's name.
    pub from: String,
    /// The text.
    pub text: String,
    /// Whatever the sender passed as `sentAt` (usually `Date.now()`); absent if nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Value>,
}

/// `join`: a member connected; the argument is their name.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct Join(pub String);

/// `leave`: a member disconnected; the argument is their name.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct Leave(pub String);

/// A chat room: counts every message ever sent and keeps the last [`HISTORY_LIMIT`].
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ChatRoom {
    messages: u64,
    history: VecDeque<Message>,
}

#[footlights::actor(name = "chatRoom", conn = Conns<Option<JoinParams>, Member>)]
impl ChatRoom {
    async fn create_conn_state(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<JoinParams>,
        _request: &footlights::ConnRequest,
    ) -> Result<Member, ActionError> {
        let name = params.as_ref().and_then(|p| p.name.clone());
        Ok(Member {
            name: name.unwrap_or_else(|| ANONYMOUS.to_owned()),
        })
    }

    async fn on_connect(&mut self, ctx: &Ctx<Self>, conn: &Conn<Self>) -> Result<(), ActionError> {
        // A stateless call opens a connection for one action only: not a member joining.
        if !conn.is_ephemeral() {
            ctx.broadcast(Join(conn.state().name.clone()));
        }
        Ok(())
    }

    async fn on_disconnect(&mut self, ctx: &Ctx<Self>, conn: &Conn<Self>) {
        if !conn.is_ephemeral() {
            ctx.broadcast(Leave(conn.state().name.clone()));
        }
    }

    /// Sends `text` to every member subscribed to `message` and returns how many messages the
    /// room has seen. `sentAt` is passed on untouched.
    #[action]
    pub fn send_message(
        &mut self,
        ctx: &Ctx<Self>,
        text: String,
        sent_at: Option<Value>,
    ) -> Result<u64, ActionError> {
        if text.chars().count() > MAX_MESSAGE_LENGTH {
            return Err(
                ActionError::user("message_too_long", "the message is too long").with_metadata(
                    &MaxLength {
                        max_length: MAX_MESSAGE_LENGTH,
                    },
                ),
            );
        }
        let from = ctx
            .conn()
            .map_or_else(|| ANONYMOUS.to_owned(), |c| c.state().name.clone());
        let message = Message {
            from,
            text,
            sent_at: sent_at.filter(|v| !v.is_null()),
        };
        self.messages += 1;
        if self.history.len() == HISTORY_LIMIT {
            self.history.pop_front();
        }
        self.history.push_back(message.clone());
        ctx.broadcast(message);
        Ok(self.messages)
    }

    /// The last [`HISTORY_LIMIT`] messages, oldest first.
    #[action]
    pub fn get_history(&self) -> Vec<Message> {
        self.history.iter().cloned().collect()
    }

    /// Answers its argument unchanged (a round-trip check for clients).
    #[action]
    pub fn ping(&self, x: Value) -> Value {
        x
    }

    /// Disconnects every member called `name`, telling their clients `reason` (close code
    /// 1000); returns how many were disconnected. Clients reconnect on their own, so this is a
    /// nudge, not a ban: a room that must keep someone out refuses them in
    /// `on_before_connect`, as `secureRoom` does.
    #[action]
    pub async fn kick(&self, ctx: &Ctx<Self>, name: String, reason: Option<String>) -> usize {
        let reason = reason.unwrap_or_else(|| "kicked".to_owned());
        let members: Vec<_> = ctx
            .conns()
            .into_iter()
            .filter(|c| c.state().name == name)
            .collect();
        for member in &members {
            member.disconnect(reason.clone()).await;
        }
        members.len()
    }

    /// How many members are connected (stateless calls not counted).
    #[action]
    pub fn conn_count(&self, ctx: &Ctx<Self>) -> usize {
        ctx.conns().len()
    }
}

/// Metadata of `message_too_long`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MaxLength {
    max_length: usize,
}
