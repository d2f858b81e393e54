//! Looking inside a live actor, for operators: its state, connections, scheduled calls and
//! key-value entries ([`Registry::inspect`](crate::Registry::inspect)), and replacing its state
//! ([`Registry::replace_state`](crate::Registry::replace_state)).
//!
//! Both go **through the actor**: they are messages in its mailbox, handled between two
//! actions like any other message. What an inspection reports is therefore the live state
//! (with the writes of the message before it, saved or not), and a replaced state is saved
//! like an action's change: the state-change hook runs, the snapshot goes through the group
//! commit, and the outputs after it wait for it in the output gate. Both wake a sleeping
//! actor (its wake hooks run), as any call would.
//!
//! This module holds the types only; the actor task answers in `instance/inspect.rs`, the
//! registry sends in `registry/inspect.rs`.

use footlights_protocol::{ActionError, ConnId, Value};
use footlights_storage::KvRange;
use tokio::sync::oneshot;

use crate::kv::KvPage;

/// What [`Registry::inspect`](crate::Registry::inspect) reads besides the state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InspectOptions {
    /// The page of the actor's key-value store to list (keys as the actor writes them,
    /// without the runtime's internal prefix). Default: the first 100 entries.
    pub kv: KvRange,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            kv: KvRange::all().limit(DEFAULT_KV_PAGE),
        }
    }
}

/// How many key-value entries an inspection lists when not told.
pub const DEFAULT_KV_PAGE: usize = 100;

/// The inside of a live actor, as [`Registry::inspect`](crate::Registry::inspect) saw it
/// between two messages.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActorView {
    /// The state, as the actor serializes it (its `#[serde(skip)]` fields are left out).
    pub state: Value,
    /// The live connections, in the order they joined.
    pub connections: Vec<ConnView>,
    /// The scheduled calls, soonest first.
    pub schedules: Vec<ScheduleView>,
    /// The page of key-value entries asked for.
    pub kv: KvPage,
}

/// One live connection of an inspected actor.
///
/// Params and per-connection state are the actor's own types, which the runtime holds
/// without a way to serialize them; they are not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnView {
    /// The connection's id.
    pub id: ConnId,
    /// A short-lived connection: a stateless action or raw request while it runs, or a raw
    /// WebSocket.
    pub ephemeral: bool,
    /// Its client link dropped; it is kept for the grace period for the client to resume it.
    pub detached: bool,
    /// The events it subscribed to, sorted.
    pub subscriptions: Vec<String>,
}

/// One scheduled call of an inspected actor.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScheduleView {
    /// The schedule's id.
    pub id: String,
    /// When it is due, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The action it calls.
    pub action: String,
    /// The arguments it passes (empty if they could not be read back).
    pub args: Vec<Value>,
    /// How many times it has failed so far (a one-off call being retried).
    pub failures: u32,
    /// For the next fire of a repeating job ([`Ctx::cron`](crate::Ctx::cron)): its name and
    /// rule, such as `every 5000 ms` or `cron "0 3 * * *" in Europe/Paris`.
    pub job: Option<(String, String)>,
}

/// An operator's message to an actor, handled in its mailbox.
pub(crate) enum InspectMsg {
    /// Read the state, connections, schedules and a key-value page.
    View {
        kv: KvRange,
        reply: oneshot::Sender<Result<ActorView, ActionError>>,
    },
    /// Replace the state with this value, deserialized into the actor's type.
    ReplaceState {
        state: Value,
        /// Answered `null` through the output gate, once the new state is durable.
        reply: oneshot::Sender<Result<Value, ActionError>>,
    },
}
