//! A chat room: connection params and state, join and leave events from the connection
//! hooks, direct messages, kicks, and every message kept in the actor's key-value store. The
//! binary also serves a browser demo that uses the official `rivetkit` JavaScript client.
//!
//! - **Params**: clients connect with `{ "name": "ann" }` ([`JoinParams`]).
//! - **Connection state**: each connection holds a [`Member`] built from its params by the
//!   `create_conn_state` hook; the connect hook marks the room's owner.
//! - **Hooks**: `on_before_connect` turns away invalid and banned names (`auth.forbidden`);
//!   `on_connect` and `on_disconnect` broadcast [`Joined`] and [`Left`] with the member list.
//! - **Events**: [`NewMessage`] to everyone (`ctx.broadcast`), [`DirectMessage`] to one member
//!   (`conn.send`).
//! - **Kick**: the owner removes a member with `conn.disconnect(reason)` and bans the name, so
//!   the client's automatic reconnect is refused.
//! - **Durable state**: the owner, the bans and the message count survive sleep and restarts;
//!   members (live connections) do not.
//! - **Key-value store**: every message ever sent, under `msg/` and its [`Message::seq`]
//!   (`ctx.kv()`, committed with the state). `history` returns the latest [`PAGE_LIMIT`];
//!   `historyBefore(seq, limit)` pages back from there, so a client can scroll back to the
//!   room's first message while the state stays a few bytes.
//!
//! Names are not authenticated here: anyone may claim any name. `examples/game-room` checks
//! signed tokens instead.
//!
//! Run the server and the browser demo:
//!
//! ```text
//! (cd examples/chat-room/web && npm ci && npm run build)   # bundles the page into web/dist
//! cargo run -p chat-room                                    # http://127.0.0.1:6420
//! ```
//!
//! Then open <http://127.0.0.1:6420/?room=lobby&name=ann> in two browser tabs (with two
//! names). `cargo test -p chat-room` runs the Rust end-to-end test; `npm test` in `web/` the
//! browser one (it needs Chromium and the built binary, see `web/e2e.test.mjs`).

pub mod web;

use std::collections::BTreeSet;

use footlights::ConnRequest;
use footlights::prelude::*;

/// The most messages one history call returns: `history` returns the latest this many,
/// `historyBefore` at most this many.
pub const PAGE_LIMIT: usize = 100;
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// The longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// What a client sends when it connects: `{ "name": "ann" }`.
#[derive(Debug, Deserialize)]
pub struct JoinParams {
    /// The name shown to others; trimmed, 1 to [`MAX_NAME_CHARS`] characters.
    pub name: String,
}

/// The state of one connection, alive as long as the connection is.
#[derive(Debug, Default)]
pub struct Member {
    /// The member's name, from the params.
    pub name: String,
    /// Whether this member owns the room (may kick others).
    pub is_owner: bool,
}

/// The prefix of every message key in the store.
const MESSAGES: &[u8] = b"msg/";

/// The store key of message `seq`: the prefix, then `seq` in 8 big-endian bytes, so the store
/// lists messages in the order they were sent.
fn message_key(seq: u64) -> KvKey {
    KvKey::new(MESSAGES).u64(seq)
}

/// One chat message, as stored and sent to clients: `{seq, from, text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message's number in its room: 1 for the first, one more for each after it.
    pub seq: u64,
    /// The sender's name.
    pub from: String,
    /// The text.
    pub text: String,
}

/// A message to everyone in the room (wire name `newMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub struct NewMessage(pub Message);

/// Someone joined (wire name `joined`): their name and the members now present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub struct Joined {
    /// Who joined.
    pub name: String,
    /// Everyone present, sorted.
    pub members: Vec<String>,
}

/// Someone left or was kicked (wire name `left`): their name and the members still present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub struct Left {
    /// Who left.
    pub name: String,
    /// Everyone still present, sorted.
    pub members: Vec<String>,
}

/// A message to one member only (wire name `directMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub struct DirectMessage {
    /// The sender's name.
    pub from: String,
    /// The text.
    pub text: String,
}

/// A chat room (registered as `chatRoom`). The struct is its durable state; the messages
/// are in its key-value store.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ChatRoom {
    /// How many messages the room has seen: the `seq` of the latest. (Earlier versions saved
    /// it as `next_id`, the same number.)
    #[serde(alias = "next_id")]
    messages: u64,
    /// The first name that joined; may kick others.
    owner: Option<String>,
    /// Names that were kicked and may not come back.
    banned: BTreeSet<String>,
    /// The last messages of a room saved by an earlier version, which kept up to 100 of them
    /// in the state. Moved to the store when the room wakes; never saved again.
    #[serde(default, rename = "history", skip_serializing)]
    saved_history: Vec<SavedMessage>,
}

/// A message as earlier versions kept it in the state: numbered from 0 by `id`.
#[derive(Debug, Deserialize)]
struct SavedMessage {
    id: u64,
    from: String,
    text: String,
}

/// The messages of a listing, in its order.
fn messages(page: &KvPage) -> Result<Vec<Message>, ActionError> {
    page.entries.iter().map(KvEntry::value).collect()
}

/// A trimmed, non-empty name of at most [`MAX_NAME_CHARS`] characters.
fn clean_name(raw: &str) -> Result<String, ActionError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ActionError::user(
            "invalid_name",
            format!("a name has 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// The realtime connections: the room's members. `ctx.conns()` also lists stateless calls
/// while they run, under short-lived connections; those are not members.
fn member_conns(ctx: &Ctx<ChatRoom>) -> impl Iterator<Item = Conn<ChatRoom>> {
    ctx.conns().into_iter().filter(|c| !c.is_ephemeral())
}

/// The names of everyone connected, sorted, each once (a member may have several tabs open).
fn members(ctx: &Ctx<ChatRoom>) -> Vec<String> {
    let names: BTreeSet<String> = member_conns(ctx).map(|c| c.state().name.clone()).collect();
    names.into_iter().collect()
}

/// The calling member's name. Every call comes over a connection, except scheduled ones
/// (this actor schedules none).
fn caller(ctx: &Ctx<ChatRoom>) -> Result<String, ActionError> {
    ctx.conn()
        .map(|c| c.state().name.clone())
        .ok_or_else(|| ActionError::forbidden("call this over a connection"))
}

#[footlights::actor(conn = Conns<JoinParams, Member>)]
impl ChatRoom {
    /// Moves the messages an earlier version kept in the state to the store (once).
    async fn on_wake(&mut self, ctx: &Ctx<Self>) -> Result<(), ActionError> {
        let saved = std::mem::take(&mut self.saved_history);
        if saved.is_empty() {
            return Ok(());
        }
        let entries = saved.into_iter().map(|m| {
            let seq = m.id + 1;
            let message = Message {
                seq,
                from: m.from,
                text: m.text,
            };
            (message_key(seq), message)
        });
        ctx.kv().put_many(entries).await
    }

    /// Turns away invalid and banned names before anything else runs.
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &JoinParams,
        _request: &ConnRequest,
    ) -> Result<(), ActionError> {
        let name = clean_name(&params.name)?;
        if self.banned.contains(&name) {
            return Err(ActionError::forbidden(format!(
                "{name} was removed from this room"
            )));
        }
        Ok(())
    }

    /// Builds the connection's state from its params.
    async fn create_conn_state(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &JoinParams,
        _request: &ConnRequest,
    ) -> Result<Member, ActionError> {
        Ok(Member {
            name: clean_name(&params.name)?,
            is_owner: false,
        })
    }

    /// The connection is in the list now: mark the owner, tell everyone.
    async fn on_connect(&mut self, ctx: &Ctx<Self>, conn: &Conn<Self>) -> Result<(), ActionError> {
        // A stateless action gets a connection of its own for one call: not a member.
        if conn.is_ephemeral() {
            return Ok(());
        }
        let name = conn.state().name.clone();
        let owner = self.owner.get_or_insert_with(|| name.clone());
        conn.state().is_owner = *owner == name;
        let tabs = member_conns(ctx).filter(|c| c.state().name == name).count();
        if tabs == 1 {
            ctx.broadcast(Joined {
                name,
                members: members(ctx),
            });
        }
        Ok(())
    }

    /// The connection has left the list: tell everyone once the name's last tab is gone.
    async fn on_disconnect(&mut self, ctx: &Ctx<Self>, conn: &Conn<Self>) {
        if conn.is_ephemeral() {
            return;
        }
        let name = conn.state().name.clone();
        let members = members(ctx);
        if !members.contains(&name) {
            ctx.broadcast(Left { name, members });
        }
    }

    /// Stores a message as the room's next one and sends it to everyone (wire name
    /// `sendMessage`).
    #[action]
    pub async fn send_message(
        &mut self,
        ctx: &Ctx<Self>,
        text: String,
    ) -> Result<Message, ActionError> {
        let from = caller(ctx)?;
        let text = text.trim().to_owned();
        if text.is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(ActionError::user(
                "invalid_message",
                format!("a message has 1 to {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        let seq = self.messages + 1;
        let message = Message { seq, from, text };
        // Counted once stored: a refused write leaves no gap in the numbering.
        ctx.kv().put(message_key(seq), &message).await?;
        self.messages = seq;
        ctx.broadcast(NewMessage(message.clone()));
        Ok(message)
    }

    /// Sends a message to every connection of member `to` only, with `conn.send`; returns how
    /// many connections got it (wire name `sendDirect`).
    #[action]
    pub fn send_direct(
        &self,
        ctx: &Ctx<Self>,
        to: String,
        text: String,
    ) -> Result<usize, ActionError> {
        let from = caller(ctx)?;
        let targets: Vec<_> = member_conns(ctx).filter(|c| c.state().name == to).collect();
        if targets.is_empty() {
            return Err(ActionError::user(
                "no_such_member",
                format!("nobody named {to} is here"),
            ));
        }
        for target in &targets {
            target.send(DirectMessage {
                from: from.clone(),
                text: text.clone(),
            });
        }
        Ok(targets.len())
    }

    /// The owner removes a member for good: the name is banned and each of its connections is
    /// closed with `reason`. Returns how many were closed (wire name `kick`).
    #[action]
    pub async fn kick(
        &mut self,
        ctx: &Ctx<Self>,
        name: String,
        reason: String,
    ) -> Result<usize, ActionError> {
        let is_owner = ctx.conn().is_some_and(|c| c.state().is_owner);
        if !is_owner {
            return Err(ActionError::forbidden("only the room's owner may kick"));
        }
        if self.owner.as_deref() == Some(name.as_str()) {
            return Err(ActionError::user("cannot_kick_owner", "the owner stays"));
        }
        self.banned.insert(name.clone());
        let targets: Vec<_> = member_conns(ctx)
            .filter(|c| c.state().name == name)
            .collect();
        for target in &targets {
            // Returns once the close is on its way; the disconnect hook runs after this action.
            target.disconnect(reason.clone()).await;
        }
        Ok(targets.len())
    }

    /// The latest [`PAGE_LIMIT`] messages, oldest first (wire name `history`).
    #[action]
    pub async fn history(&self, ctx: &Ctx<Self>) -> Result<Vec<Message>, ActionError> {
        let range = KvRange::prefix(MESSAGES).reverse().limit(PAGE_LIMIT);
        let mut latest = messages(&ctx.kv().list(range).await?)?;
        latest.reverse();
        Ok(latest)
    }

    /// Up to `limit` messages older than message `seq` (with a smaller `seq`), newest first
    /// (wire name `historyBefore`): call it again with the smallest `seq` received to page
    /// back to the room's first message; an empty answer means there is nothing older.
    ///
    /// `seq` null or left out means the latest messages. `limit` is clamped to
    /// 1..=[`PAGE_LIMIT`] (so `0` answers one message); null or left out means
    /// [`PAGE_LIMIT`]. A negative or fractional `seq` or `limit` is refused with
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

    /// Everyone connected, sorted (wire name `members`).
    #[action]
    pub fn members(&self, ctx: &Ctx<Self>) -> Vec<String> {
        members(ctx)
    }

    /// The room's owner, if anyone joined yet (wire name `owner`).
    #[action]
    pub fn owner(&self) -> Option<String> {
        self.owner.clone()
    }
}
