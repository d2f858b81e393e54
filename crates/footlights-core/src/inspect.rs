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
//! The live log ([`Registry::watch`](crate::Registry::watch)) reports each action the actor
//! handles and each event it sends, as they happen, to whoever watches; with no watcher it
//! costs one flag check per action and per event.
//!
//! This module holds the types (and the live log's tap); the actor task answers in `instance/inspect.rs`, the
//! registry sends in `registry/inspect.rs`.

use footlights_protocol::{ActionError, ConnId, Value};
use footlights_storage::KvRange;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::{broadcast, oneshot};

use crate::kv::KvPage;

/// What [`Registry::inspect`](crate::Registry::inspect) reads besides the state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InspectOptions {
    /// The page of the actor's key-value store to list (keys as the actor writes them,
    /// without the runtime's internal prefix). Default: the first 100 entries.
    pub kv: KvRange,
    /// List the messages of this queue only (the others are left out of
    /// [`ActorView::queues`]); `None` lists every queue. Default: `None`.
    pub queue: Option<String>,
    /// List the queue messages after this one ([`QueuedView::id`], the previous page's last).
    /// Default: from the oldest.
    pub queue_after: Option<u64>,
    /// How many messages each listed queue shows. Default: [`DEFAULT_QUEUE_PAGE`].
    pub queue_limit: usize,
    /// Show a page of this table of the actor's SQL database (feature `db`); `None` lists the
    /// tables only. Default: `None`.
    pub db_table: Option<String>,
    /// The first row of that page. Default: 0.
    pub db_offset: u64,
    /// How many rows the page shows (at most 200). Default: [`DEFAULT_DB_PAGE`].
    pub db_limit: usize,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            kv: KvRange::all().limit(DEFAULT_KV_PAGE),
            queue: None,
            queue_after: None,
            queue_limit: DEFAULT_QUEUE_PAGE,
            db_table: None,
            db_offset: 0,
            db_limit: DEFAULT_DB_PAGE,
        }
    }
}

/// How many rows of a database table an inspection shows when not told.
pub const DEFAULT_DB_PAGE: usize = 50;

/// How many messages of each queue an inspection lists when not told.
pub const DEFAULT_QUEUE_PAGE: usize = 10;

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
    /// The actor's queues (those its type declares, and any other holding messages), by
    /// name, each with a page of its oldest messages.
    pub queues: Vec<QueueView>,
    /// The actor's SQL database (`ctx.db()`, feature `db`): `None` when it has none, or
    /// when the build has no databases.
    pub db: Option<DbView>,
}

/// An inspected actor's SQL database.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DbView {
    /// Its tables and views, by name (SQLite's own left out).
    pub tables: Vec<DbTableView>,
    /// The page of rows asked for ([`InspectOptions::db_table`]).
    pub rows: Option<DbRowsView>,
}

/// One table (or view) of an inspected actor's database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbTableView {
    /// Its name.
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    /// How many rows it has.
    pub rows: u64,
}

/// A page of one table's rows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DbRowsView {
    /// The table.
    pub table: String,
    /// Its column names, in order.
    pub columns: Vec<String>,
    /// The rows, each a value per column (integers, floats, text, bytes or null).
    pub rows: Vec<Vec<Value>>,
    /// The position of the first row shown.
    pub offset: u64,
    /// More rows follow the page.
    pub more: bool,
}

/// One queue of an inspected actor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueView {
    /// The queue's name.
    pub name: String,
    /// Its messages, those taken by a consumer and not yet completed included.
    pub depth: usize,
    /// Of those, the messages taken and not yet completed.
    pub in_flight: usize,
    /// A page of its messages, oldest first.
    pub messages: Vec<QueuedView>,
    /// More messages follow the page.
    pub more: bool,
}

/// One message in a queue of an inspected actor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueuedView {
    /// Its position among the actor's queue messages: increasing with each send, so a
    /// page's last id is where the next page starts.
    pub id: u64,
    /// A consumer took it and has not completed it yet.
    pub in_flight: bool,
    /// The size of its body as JSON, in bytes.
    pub size: usize,
    /// The start of its body as JSON, at most [`PREVIEW_CHARS`] characters.
    pub preview: String,
}

/// A value's size as JSON and the start of that JSON, at most [`PREVIEW_CHARS`] characters
/// with `…` when cut.
pub(crate) fn preview(value: &Value) -> (usize, String) {
    let json = footlights_protocol::codec::value_to_json(value);
    let preview = match json.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &json[..cut]),
        None => json.clone(),
    };
    (json.len(), preview)
}

/// One live connection of an inspected actor.
#[derive(Debug, Clone, PartialEq)]
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
    /// The params as the client sent them, before the actor's type read them; `None` when
    /// it sent none, and for ephemeral connections.
    pub params: Option<Value>,
    /// The per-connection state, when the actor shows it
    /// ([`Actor::inspect_conn_state`](crate::Actor::inspect_conn_state)); `None` otherwise.
    pub state: Option<Value>,
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
        options: InspectOptions,
        reply: oneshot::Sender<Result<ActorView, ActionError>>,
    },
    /// Replace the state with this value, deserialized into the actor's type.
    ReplaceState {
        state: Value,
        /// Answered `null` through the output gate, once the new state is durable.
        reply: oneshot::Sender<Result<Value, ActionError>>,
    },
    /// Start watching the live log.
    Watch {
        reply: oneshot::Sender<Result<ActorLog, ActionError>>,
    },
}

/// How many records a watcher of an actor's live log may fall behind before it loses the
/// oldest ones (it is told how many, [`LogItem::Lagged`]).
pub const LOG_BUFFER: usize = 256;

/// How many watchers one actor's live log may have at once; one more is refused with
/// `inspector.too_many_watchers`.
pub const MAX_WATCHERS: usize = 8;

/// How many characters of an event's JSON a [`EventRecord::preview`] keeps.
pub const PREVIEW_CHARS: usize = 200;

/// Who called an action, as the live log reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Caller {
    /// A stateless call (an action over HTTP, an in-process client's call, the inspector's
    /// form), under its short-lived connection.
    Stateless,
    /// A client's open connection (WebSocket or SSE).
    Connection,
    /// A scheduled call or a repeating job's fire.
    Schedule,
}

impl Caller {
    /// The caller kind as a lowercase word: `stateless`, `connection` or `schedule`.
    pub fn as_str(self) -> &'static str {
        match self {
            Caller::Stateless => "stateless",
            Caller::Connection => "connection",
            Caller::Schedule => "schedule",
        }
    }
}

/// One action the actor handled.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ActionRecord {
    /// When it ended, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The action's name.
    pub name: String,
    /// Who called it.
    pub caller: Caller,
    /// How long it ran, deferred part included.
    pub duration: std::time::Duration,
    /// `None` when it succeeded, else the error's `group.code` (as the caller saw it: an
    /// internal error is `*.internal_error`).
    pub error: Option<String>,
}

/// One event the actor sent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventRecord {
    /// When it was sent, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The event's name.
    pub name: String,
    /// How many connections it went to (its subscribers for a broadcast; 0 or 1 for an
    /// event sent to one connection).
    pub recipients: usize,
    /// The size of its arguments as JSON, in bytes.
    pub size: usize,
    /// The start of its arguments as JSON (with the protocol's `$`-tags), at most
    /// [`PREVIEW_CHARS`] characters, `…` at the end when cut.
    pub preview: String,
}

impl EventRecord {
    /// The record of event `name` with these arguments, sent to `recipients` connections.
    pub(crate) fn of(name: &str, args: &[Value], recipients: usize) -> Self {
        let (size, preview) = preview(&Value::Array(args.to_vec()));
        EventRecord {
            at_ms: crate::alarm::now_ms(),
            name: name.to_owned(),
            recipients,
            size,
            preview,
        }
    }
}

/// One record of an actor's live log.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogRecord {
    /// An action was handled.
    Action(ActionRecord),
    /// An event was sent.
    Event(EventRecord),
}

/// What a watcher of an actor's live log reads next.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogItem {
    /// The next record.
    Record(LogRecord),
    /// The watcher fell behind by more than [`LOG_BUFFER`] records: this many were lost.
    Lagged(u64),
}

/// A watcher of one actor's live log, from
/// [`Registry::watch`](crate::Registry::watch): the actions it handles and the events it
/// sends from the moment of the watch. Dropping it stops the watch; when the last watcher
/// is gone the actor no longer makes records.
#[derive(Debug)]
pub struct ActorLog {
    rx: broadcast::Receiver<LogRecord>,
}

impl ActorLog {
    /// The next record, or how many were lost; `None` once the actor has stopped (gone to
    /// sleep, been destroyed, or the registry shuts down): watch again to follow its next
    /// instance.
    pub async fn next(&mut self) -> Option<LogItem> {
        match self.rx.recv().await {
            Ok(record) => Some(LogItem::Record(record)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(LogItem::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The live log's tap inside an actor: a flag checked where actions end and events leave,
/// and the channel to the watchers, made on the first watch. With no watcher the flag is
/// off and nothing else is touched.
#[derive(Default)]
pub(crate) struct Tap {
    watched: AtomicBool,
    tx: Mutex<Option<broadcast::Sender<LogRecord>>>,
}

impl Tap {
    /// Whether someone watches: one relaxed load.
    #[inline]
    pub(crate) fn is_watched(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }

    /// Hands the record `make` makes to the watchers, if any; made only when watched.
    #[inline]
    pub(crate) fn publish(&self, make: impl FnOnce() -> LogRecord) {
        if self.is_watched() {
            self.send(make());
        }
    }

    fn send(&self, record: LogRecord) {
        let mut tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let gone = match tx.as_ref() {
            Some(sender) => sender.send(record).is_err(),
            None => true,
        };
        if gone {
            // The last watcher left: back to the one-load path.
            *tx = None;
            self.watched.store(false, Ordering::Relaxed);
        }
    }

    /// A new watcher, unless [`MAX_WATCHERS`] already watch.
    pub(crate) fn watch(&self) -> Result<ActorLog, ActionError> {
        let mut tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = tx.get_or_insert_with(|| broadcast::channel(LOG_BUFFER).0);
        if sender.receiver_count() >= MAX_WATCHERS {
            return Err(ActionError::new(
                "inspector",
                "too_many_watchers",
                format!("an actor's live log has at most {MAX_WATCHERS} watchers"),
            ));
        }
        let rx = sender.subscribe();
        self.watched.store(true, Ordering::Relaxed);
        Ok(ActorLog { rx })
    }

    /// Ends every watch (the actor stops): their next read is `None`.
    pub(crate) fn close(&self) {
        let mut tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        *tx = None;
        self.watched.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(name: &str) -> LogRecord {
        LogRecord::Action(ActionRecord {
            at_ms: 1,
            name: name.to_owned(),
            caller: Caller::Stateless,
            duration: std::time::Duration::from_millis(2),
            error: None,
        })
    }

    #[test]
    fn an_unwatched_tap_makes_no_record() {
        let tap = Tap::default();
        assert!(!tap.is_watched());
        tap.publish(|| unreachable!("made a record nobody watches"));
        assert!(
            tap.tx.lock().unwrap().is_none(),
            "no channel before a watch"
        );
    }

    #[tokio::test]
    async fn watchers_get_records_until_the_last_leaves() {
        let tap = Tap::default();
        let mut first = tap.watch().unwrap();
        let mut second = tap.watch().unwrap();
        assert!(tap.is_watched());
        tap.publish(|| action("a"));
        assert_eq!(first.next().await, Some(LogItem::Record(action("a"))));
        assert_eq!(second.next().await, Some(LogItem::Record(action("a"))));
        drop(first);
        tap.publish(|| action("b"));
        assert!(tap.is_watched(), "one watcher is left");
        drop(second);
        tap.publish(|| action("c"));
        assert!(!tap.is_watched(), "the flag goes off once nobody reads");
        tap.publish(|| unreachable!("made a record nobody watches"));
    }

    #[tokio::test]
    async fn a_slow_watcher_is_told_what_it_lost() {
        let tap = Tap::default();
        let mut log = tap.watch().unwrap();
        for i in 0..LOG_BUFFER + 3 {
            tap.publish(|| action(&i.to_string()));
        }
        assert_eq!(log.next().await, Some(LogItem::Lagged(3)));
        assert_eq!(log.next().await, Some(LogItem::Record(action("3"))));
    }

    #[tokio::test]
    async fn watchers_are_capped_and_closed_with_the_actor() {
        let tap = Tap::default();
        let mut logs: Vec<ActorLog> = (0..MAX_WATCHERS).map(|_| tap.watch().unwrap()).collect();
        let refused = tap.watch().unwrap_err();
        assert_eq!(
            (refused.group(), refused.code()),
            ("inspector", "too_many_watchers")
        );
        logs.pop();
        assert!(tap.watch().is_ok(), "a place freed is taken again");
        tap.close();
        assert!(!tap.is_watched());
        assert_eq!(logs[0].next().await, None);
    }

    #[test]
    fn event_previews_are_cut_on_a_character() {
        let long = "é".repeat(PREVIEW_CHARS * 2);
        let record = EventRecord::of("said", &[Value::from(long.as_str())], 2);
        assert_eq!(record.recipients, 2);
        assert_eq!(record.size, long.len() + 4, "[\"…\"] around the text");
        assert_eq!(record.preview.chars().count(), PREVIEW_CHARS + 1);
        assert!(record.preview.ends_with('…'));
        let short = EventRecord::of("n", &[Value::Int(7)], 0);
        assert_eq!(short.preview, "[7]");
        assert_eq!(short.size, 3);
    }
}
