//! `chatRoom`: named members, messages kept for good in the actor's key-value store, join and
//! leave events, kicks that keep the kicked name out.
//!
//! It uses the action and event names of `examples/chat-room` (`sendMessage`, `history`,
//! `historyBefore`, `members`, `kick`; `newMessage`, `joined`, `left`), so a client written
//! for one works against the other.
//!
//! Every message is numbered: `seq` is 1 for a room's first message and one more for each
//! after it. Message `seq` is stored under `msg/` followed by `seq` in 8 big-endian bytes, so
//! the store lists messages in the order they were sent; the state holds only the count.

use std::collections::BTreeSet;

use footlights::prelude::*;
use footlights::{ConnRequest, Conns, Value};

/// The most messages one history call returns: `history` returns the latest this many,
/// `historyBefore` at most this many.
pub const PAGE_LIMIT: usize = 100;
/// The longest message text, in characters; longer ones are refused with the user error
/// `message_too_long` and metadata `{"maxLength": 2000}`.
pub const MAX_MESSAGE_LENGTH: usize = 2000;
/// The name of members who connect without one.
pub const ANONYMOUS: &str = "anon";

/// The prefix of every message key in the store.
const MESSAGES: &[u8] = b"msg/";

/// The store key of message `seq`.
fn message_key(seq: u64) -> KvKey {
    KvKey::new(MESSAGES).u64(seq)
}

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

/// One chat message; also the `newMessage` event's single argument:
/// `{seq, from, text, sentAt?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "newMessage")]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The message's number in its room: 1 for the first, one more for each after it.
    pub seq: u64,
    /// The sender's name.
    pub from: String,
    /// The text.
    pub text: String,
    /// Whatever the sender passed as `sentAt` (usually `Date.now()`); absent if nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Value>,
}

/// `joined`: a member connected: `{name, members}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub struct Joined {
    /// Who connected.
    pub name: String,
    /// The names of everyone connected now, sorted, each once.
    pub members: Vec<String>,
}

/// `left`: a member disconnected or was kicked: `{name, members}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub struct Left {
    /// Who disconnected.
    pub name: String,
    /// The names of everyone still connected, sorted, each once.
    pub members: Vec<String>,
}

/// A chat room: counts every message ever sent and keeps all of them in its key-value store.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ChatRoom {
    /// How many messages the room has seen: the `seq` of the latest.
    messages: u64,
    /// The last messages of a room saved by an earlier version, which kept up to 100 of them
    /// in the state. Moved to the store when the room wakes; never saved again.
    #[serde(default, rename = "history", skip_serializing)]
    saved_history: Vec<SavedMessage>,
    /// Names that were kicked: refused when they connect again.
    #[serde(default)]
    banned: BTreeSet<String>,
}

/// A message as earlier versions kept it in the state: without its `seq`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedMessage {
    from: String,
    text: String,
    #[serde(default)]
    sent_at: Option<Value>,
}

/// The messages of a listing, in its order.
fn messages(page: &KvPage) -> Result<Vec<Message>, ActionError> {
    page.entries.iter().map(KvEntry::value).collect()
}

#[footlights::actor(name = "chatRoom", conn = Conns<Option<JoinParams>, Member>)]
impl ChatRoom {
    async fn on_wake(&mut self, ctx: &Ctx<Self>) -> Result<(), ActionError> {
        let saved = std::mem::take(&mut self.saved_history);
        if saved.is_empty() {
            return Ok(());
        }
        // They were the room's last messages: number them back from the count.
        let first = self.messages.saturating_sub(saved.len() as u64) + 1;
        let entries = (first..).zip(saved).map(|(seq, m)| {
            let message = Message {
                seq,
                from: m.from,
                text: m.text,
                sent_at: m.sent_at.filter(|v| !v.is_null()),
            };
            (message_key(seq), message)
        });
        ctx.kv().put_many(entries).await
    }

    /// Refuses kicked names (`auth.forbidden`), connections and stateless calls alike.
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<JoinParams>,
        _request: &ConnRequest,
    ) -> Result<(), ActionError> {
        let name = name_of(params);
        if self.banned.contains(&name) {
            return Err(ActionError::forbidden(format!(
                "{name} was removed from this room"
            )));
        }
        Ok(())
    }

    async fn create_conn_state(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<JoinParams>,
        _request: &ConnRequest,
    ) -> Result<Member, ActionError> {
        Ok(Member {
            name: name_of(params),
        })
    }

    async fn on_connect(&mut self, ctx: &Ctx<Self>, conn: &Conn<Self>) -> Result<(), ActionError> {
        // A stateless call opens a connection for one action only: not a member joining.
        if !conn.is_ephemeral() {
            // Its own statement: the state stays locked while the guard lives, and `members`
            // reads every connection's state, this one's included.
            let name = conn.state().name.clone();
            ctx.broadcast(Joined {
                name,
                members: members(ctx),
            });
        }
        Ok(())
    }

    async fn on_disconnect(&mut self, ctx: &Ctx<Self>, conn: &Conn<Self>) {
        if !conn.is_ephemeral() {
            let name = conn.state().name.clone();
            ctx.broadcast(Left {
                name,
                members: members(ctx),
            });
        }
    }

    /// Stores `text` as the room's next message, sends it to every member subscribed to
    /// `newMessage`, and returns it (its `seq` is how many messages the room has seen).
    /// `sentAt` is passed on untouched.
    #[action]
    pub async fn send_message(
        &mut self,
        ctx: &Ctx<Self>,
        text: String,
        sent_at: Option<Value>,
    ) -> Result<Message, ActionError> {
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
        let seq = self.messages + 1;
        let message = Message {
            seq,
            from,
            text,
            sent_at: sent_at.filter(|v| !v.is_null()),
        };
        // Counted only once stored: a refused write (a `sentAt` too large for the store) leaves
        // no gap in the numbering.
        ctx.kv().put(message_key(seq), &message).await?;
        self.messages = seq;
        ctx.broadcast(message.clone());
        Ok(message)
    }

    /// The latest [`PAGE_LIMIT`] messages, oldest first.
    #[action]
    pub async fn history(&self, ctx: &Ctx<Self>) -> Result<Vec<Message>, ActionError> {
        let range = KvRange::prefix(MESSAGES).reverse().limit(PAGE_LIMIT);
        let mut latest = messages(&ctx.kv().list(range).await?)?;
        latest.reverse();
        Ok(latest)
    }

    /// Up to `limit` messages older than message `seq` (with a smaller `seq`), newest first:
    /// call it again with the smallest `seq` received to page back to the room's first
    /// message; an empty answer means there is nothing older.
    ///
    /// `seq` null or left out means the latest messages.
    /// `limit` is clamped to 1..=[`PAGE_LIMIT`] (so `0` answers one message); null or left
    /// out means [`PAGE_LIMIT`]. A negative or fractional `seq` or `limit` is refused with
    /// `actor.invalid_request`.
    #[action]
    pub async fn history_before(
        &self,
        ctx: &Ctx<Self>,
        seq: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Vec<Message>, ActionError> {
        let limit = limit.map_or(PAGE_LIMIT, |n| {
            usize::try_from(n).map_or(PAGE_LIMIT, |n| n.clamp(1, PAGE_LIMIT))
        });
        let mut range = KvRange::prefix(MESSAGES).reverse().limit(limit);
        if let Some(seq) = seq {
            range = range.after(message_key(seq).as_bytes());
        }
        messages(&ctx.kv().list(range).await?)
    }

    /// Answers its argument unchanged (a round-trip check for clients).
    #[action]
    pub fn ping(&self, x: Value) -> Value {
        x
    }

    /// Removes member `name` from the room: the name is banned, and every connection of it is
    /// closed with `reason` (close code 1000, reason `connection.disconnected#{reason}`).
    /// Returns how many were closed. Their clients reconnect on their own and are refused
    /// (`auth.forbidden`), so the member leaves every other member's list for good: each
    /// other member gets `left` for `name` and no `joined` for it after it.
    #[action]
    pub async fn kick(&mut self, ctx: &Ctx<Self>, name: String, reason: Option<String>) -> usize {
        self.banned.insert(name.clone());
        let reason = reason.unwrap_or_else(|| "kicked".to_owned());
        let members: Vec<_> = ctx
            .conns()
            .into_iter()
            .filter(|c| !c.is_ephemeral() && c.state().name == name)
            .collect();
        for member in &members {
            member.disconnect(reason.clone()).await;
        }
        members.len()
    }

    /// How many members are connected (stateless calls, listed in `ctx.conns()` while they
    /// run, not counted).
    #[action]
    pub fn conn_count(&self, ctx: &Ctx<Self>) -> usize {
        ctx.conns().iter().filter(|c| !c.is_ephemeral()).count()
    }

    /// The names of everyone connected, sorted, each once.
    #[action]
    pub fn members(&self, ctx: &Ctx<Self>) -> Vec<String> {
        members(ctx)
    }
}

/// The names of the room's connected members, sorted, each once (a member may have several
/// connections). Stateless calls are not members.
fn members(ctx: &Ctx<ChatRoom>) -> Vec<String> {
    let names: BTreeSet<String> = ctx
        .conns()
        .iter()
        .filter(|c| !c.is_ephemeral())
        .map(|c| c.state().name.clone())
        .collect();
    names.into_iter().collect()
}

/// The member name `params` ask for: [`ANONYMOUS`] without one.
fn name_of(params: &Option<JoinParams>) -> String {
    let name = params.as_ref().and_then(|p| p.name.clone());
    name.unwrap_or_else(|| ANONYMOUS.to_owned())
}

/// Metadata of `message_too_long`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MaxLength {
    max_length: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use footlights::Registry;
    use serde_json::json;

    #[tokio::test]
    async fn a_kicked_member_leaves_the_others_lists_and_stays_out() {
        let registry = Registry::builder()
            .actor::<ChatRoom>()
            .start()
            .await
            .unwrap();
        let room = registry.client().get_or_create::<ChatRoom>(["kick"]);
        let as_member = |name: &str| room.clone().with_params(&json!({ "name": name }));
        let ann = as_member("ann").connect().await.unwrap();
        let kim = as_member("kim").connect().await.unwrap();
        assert_eq!(ann.conn_count().await.unwrap(), 2);

        let left = ann.once::<Left>();
        assert_eq!(as_member("mod").kick("kim".into(), None).await.unwrap(), 1);
        let left = left.await.unwrap();
        assert_eq!(
            (left.name.as_str(), left.members),
            ("kim", vec!["ann".to_owned()])
        );
        // Kim's client tries again on its own, and is refused; so is any new connection.
        let refused = as_member("kim").connect().await.unwrap_err();
        assert_eq!((refused.group(), refused.code()), ("auth", "forbidden"));
        assert_eq!(ann.conn_count().await.unwrap(), 1, "kim is not back");
        kim.dispose().await;
        registry.shutdown().await;
    }
}
