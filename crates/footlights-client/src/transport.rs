//! What a client needs from a transport: resolve actors, call stateless actions, open links.
//!
//! The in-process transport lives in `footlights-core`; the network one (HTTP, WebSocket, SSE)
//! in this crate's `net` module. Handles and connections work the same over any of them.

use std::fmt::{self, Debug};

use footlights_protocol::{ActionError, ActorId, ActorKey, ConnId, ToClient, ToServer, Value};
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

/// Close code of a normal close (RFC 6455).
const NORMAL: u16 = 1000;
/// Close code of a peer going away: server shutdown, actor sleeping.
const GOING_AWAY: u16 = 1001;
/// Close code for a connection that ended without a close frame. Never sent on the wire.
const ABNORMAL: u16 = 1006;

/// Why a link closed, as the server said it.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseReason {
    /// A WebSocket-style close code: 1000 normal (a server-side disconnect), 1001 going away
    /// (server stopping, actor sleeping), 1006 dropped without a close (a network failure),
    /// 1011 error.
    pub code: u16,
    /// The reason text: the user's disconnect reason, or `group.code` (optionally followed by
    /// `#rayId`) for errors.
    pub reason: String,
}

impl CloseReason {
    /// A normal close with a reason (what `conn.disconnect(reason)` sends).
    pub fn normal(reason: impl Into<String>) -> Self {
        CloseReason {
            code: NORMAL,
            reason: reason.into(),
        }
    }

    /// The server is going away; the client should reconnect.
    pub fn going_away() -> Self {
        CloseReason {
            code: GOING_AWAY,
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

    /// The link broke without a close from the other side: a reset socket, a stream that
    /// ended early. The server may keep the connection for a resume.
    pub fn dropped() -> Self {
        CloseReason {
            code: ABNORMAL,
            reason: String::new(),
        }
    }

    /// Whether the link broke without a close ([`dropped`](Self::dropped)).
    pub fn is_dropped(&self) -> bool {
        self.code == ABNORMAL
    }

    /// The error this close reports, if it is not a normal close.
    ///
    /// Reasons of the form `group.code` or `group.code#rayId` become that error (the ray id is
    /// kept in the message only); a going-away close without such a reason is `ws.going_away`,
    /// a dropped link `client.connection_lost`, anything else `client.connection_error`.
    ///
    /// ```
    /// use footlights_client::CloseReason;
    /// let close = CloseReason { code: 1011, reason: "auth.forbidden#ray-1".into() };
    /// let e = close.to_error().unwrap();
    /// assert_eq!((e.group(), e.code()), ("auth", "forbidden"));
    /// assert!(CloseReason::normal("kicked").to_error().is_none());
    /// ```
    pub fn to_error(&self) -> Option<ActionError> {
        if self.code == NORMAL {
            return None;
        }
        let coded = self.reason.split('#').next().unwrap_or_default();
        if let Some((group, code)) = coded.split_once('.')
            && is_identifier(group)
            && is_identifier(code)
        {
            let message = format!("connection closed ({}): {}", self.code, self.reason);
            return Some(ActionError::new(group.to_owned(), code.to_owned(), message));
        }
        Some(match self.code {
            GOING_AWAY => ActionError::new("ws", "going_away", "the server is going away"),
            ABNORMAL => crate::error::connection_lost("the connection dropped"),
            code => ActionError::new(
                "client",
                "connection_error",
                format!("connection closed with code {code}: {}", self.reason),
            ),
        })
    }
}

/// `snake_case` words, as error groups and codes are written.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
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
    /// connection for a grace period so the client can resume it. Defaults to
    /// [`close`](Self::close).
    fn lost(&self) {
        self.close();
    }

    /// Closes the link like [`close`](Self::close), and resolves once the close has reached
    /// the other side (bounded by the transport's own timeouts). Defaults to `close` and
    /// resolving at once, which suits in-process links.
    fn close_gracefully(&self) -> BoxFuture<'static, ()> {
        self.close();
        Box::pin(std::future::ready(()))
    }
}

/// An open realtime link: send with `sender`, receive on `events`.
#[derive(Debug)]
pub struct Link {
    /// Sends messages to the actor.
    pub sender: Box<dyn LinkSender>,
    /// Messages from the actor, then one [`LinkEvent::Closed`].
    pub events: mpsc::UnboundedReceiver<LinkEvent>,
    /// About how many bytes of messages wait in `events`, when the side that sends them
    /// counts (the runtime does; the network transports leave it at zero).
    pub backlog: Backlog,
}

/// About how many bytes of messages wait on a link: the side that sends them adds
/// ([`sent`](Backlog::sent)), the side that takes them subtracts ([`taken`](Backlog::taken)),
/// both counting with [`ToClient::approx_size`]. A transport sets a
/// [`limit`](Backlog::set_limit) and learns when the waiting messages pass it, so that a
/// client that reads too slowly cannot make the server hold its messages without bound.
///
/// ```
/// use footlights_client::Backlog;
/// use footlights_protocol::{ToClient, Value};
///
/// let backlog = Backlog::default();
/// backlog.set_limit(100);
/// let msg = ToClient::ActionResponse { id: 1, output: Value::from("x".repeat(200)) };
/// backlog.sent(&msg);
/// assert!(backlog.is_over());
/// backlog.taken(&msg);
/// assert!(!backlog.is_over());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Backlog(std::sync::Arc<BacklogInner>);

#[derive(Debug, Default)]
struct BacklogInner {
    bytes: std::sync::atomic::AtomicUsize,
    /// Zero: no limit.
    limit: std::sync::atomic::AtomicUsize,
    crossed: tokio::sync::Notify,
    /// The transport lets the link's channel go while the actor sleeps.
    parking: std::sync::atomic::AtomicBool,
    /// Set while the link is parked: where the next channel arrives once the actor has
    /// something to send again.
    parked: std::sync::Mutex<Option<NextEvents>>,
    /// A transport that can write some messages to its peer from the sender's thread.
    writer: std::sync::OnceLock<std::sync::Weak<dyn DirectWriter>>,
}

/// A transport that can put some messages on the wire from the thread that sends them,
/// instead of queueing each on the link's channel and waking the task that serves the
/// connection. The runtime offers it each message while the link is attached
/// ([`Backlog::write_now`]); a broadcast to many connections then costs one write per
/// connection and no task wake-ups.
///
/// Order is the writer's duty: it may take a message only when nothing sent before it still
/// waits, that is when [`Backlog::bytes`] is zero and the transport counts a message as
/// [`taken`](Backlog::taken) only once it is written, and when nothing it wrote earlier still
/// waits in a buffer of its own.
pub trait DirectWriter: Send + Sync + Debug {
    /// Writes `msg` (a [`ToClient::Broadcast`]) now and returns `true`, or returns `false` to
    /// have it queued on the link as usual. Called with the runtime's lock on the link held, so calls for one link never
    /// overlap; it must not block.
    fn write_now(&self, msg: &ToClient, backlog: &Backlog) -> bool;
}

/// Where a parked link's next event channel arrives (see [`Backlog::park`]).
pub type NextEvents = tokio::sync::oneshot::Receiver<mpsc::UnboundedReceiver<LinkEvent>>;

impl Backlog {
    /// Counts a message handed to the link.
    pub fn sent(&self, msg: &ToClient) {
        use std::sync::atomic::Ordering;
        let size = msg.approx_size();
        let before = self.0.bytes.fetch_add(size, Ordering::Relaxed);
        let limit = self.0.limit.load(Ordering::Relaxed);
        if limit > 0 && before <= limit && before + size > limit {
            self.0.crossed.notify_waiters();
        }
    }

    /// Counts a message taken off the link.
    pub fn taken(&self, msg: &ToClient) {
        use std::sync::atomic::Ordering;
        let size = msg.approx_size();
        let _ = self
            .0
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(size))
            });
    }

    /// The bytes waiting now.
    pub fn bytes(&self) -> usize {
        self.0.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the most bytes that may wait (zero: no limit).
    pub fn set_limit(&self, bytes: usize) {
        self.0
            .limit
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether more than the limit waits.
    pub fn is_over(&self) -> bool {
        let limit = self.0.limit.load(std::sync::atomic::Ordering::Relaxed);
        limit > 0 && self.bytes() > limit
    }

    /// Resolves once more than the limit waits (at once if it does already).
    pub async fn over(&self) {
        loop {
            let crossed = self.0.crossed.notified();
            if self.is_over() {
                return;
            }
            crossed.await;
        }
    }

    /// The transport says it can take a parked link: while the actor sleeps (hibernation) the
    /// runtime may then close the link's event channel, after [`park`](Self::park)ing where
    /// the next one will arrive, instead of keeping an empty channel per connection. A
    /// transport that reads its events through a [`LinkInbox`] can.
    pub fn accept_parking(&self) {
        self.0
            .parking
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the transport said it can take a parked link.
    pub fn accepts_parking(&self) -> bool {
        self.0.parking.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The runtime parks the link: `next` delivers the link's next event channel. Called
    /// before the current channel's sender is dropped, so that a transport which sees the
    /// channel end finds it. Returns `false`, and keeps nothing, while the transport has not
    /// yet taken an earlier one: the runtime then keeps its channel.
    pub fn park(&self, next: NextEvents) -> bool {
        let mut parked = self.lock_parked();
        if parked.is_some() {
            return false;
        }
        *parked = Some(next);
        true
    }

    /// The transport writes some messages itself (see [`DirectWriter`]). Only the first call
    /// counts; the link holds the writer weakly, so a transport that ends drops it.
    pub fn set_writer(&self, writer: std::sync::Weak<dyn DirectWriter>) {
        let _ = self.0.writer.set(writer);
    }

    /// Offers `msg` to the transport's [`DirectWriter`]: `true` if it was written, `false` if
    /// it is to be queued on the link (always, without a writer). Only broadcasts
    /// ([`ToClient::Broadcast`]) are offered: encoded once and shared, they need no work per
    /// connection beyond the write; every other message goes to the link untouched.
    ///
    /// ```
    /// use footlights_client::Backlog;
    /// use footlights_protocol::{ToClient, Value};
    ///
    /// let msg = ToClient::ActionResponse { id: 1, output: Value::from(1) };
    /// assert!(!Backlog::default().write_now(&msg), "no writer: the message is queued");
    /// ```
    pub fn write_now(&self, msg: &ToClient) -> bool {
        if !matches!(msg, ToClient::Broadcast(_)) {
            return false;
        }
        match self.0.writer.get().and_then(std::sync::Weak::upgrade) {
            Some(writer) => writer.write_now(msg, self),
            None => false,
        }
    }

    /// Takes what [`park`](Self::park) left, if anything: a channel that ended with this
    /// set was parked, not closed.
    pub fn take_parked(&self) -> Option<NextEvents> {
        self.lock_parked().take()
    }

    fn lock_parked(&self) -> std::sync::MutexGuard<'_, Option<NextEvents>> {
        self.0
            .parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The receiving end of a link that may be parked: it reads the link's events, and while the
/// runtime has parked the link (its actor asleep) it holds only where the next channel will
/// arrive, so an idle connection keeps no channel. Reading is cancel-safe: a `recv` dropped
/// before it resolves loses nothing.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use footlights_client::{Backlog, LinkEvent, LinkInbox};
/// use footlights_protocol::{ToClient, Value};
///
/// let backlog = Backlog::default();
/// backlog.accept_parking();
/// let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
/// let mut inbox = LinkInbox::new(rx);
/// // The runtime parks the link: the next channel will come through `next`.
/// let (next_tx, next) = tokio::sync::oneshot::channel();
/// assert!(backlog.park(next));
/// drop(tx);
/// // Later it sends again, on a fresh channel.
/// let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
/// next_tx.send(rx).unwrap();
/// let msg = ToClient::ActionResponse { id: 1, output: Value::from(1) };
/// tx.send(LinkEvent::Message(msg.clone())).unwrap();
/// assert_eq!(inbox.recv(&backlog).await, Some(LinkEvent::Message(msg)));
/// # });
/// ```
#[derive(Debug)]
pub struct LinkInbox {
    state: Inbox,
}

#[derive(Debug)]
enum Inbox {
    Live(mpsc::UnboundedReceiver<LinkEvent>),
    Parked(NextEvents),
    Ended,
}

impl LinkInbox {
    /// Reads the events of a link.
    pub fn new(events: mpsc::UnboundedReceiver<LinkEvent>) -> Self {
        LinkInbox {
            state: Inbox::Live(events),
        }
    }

    /// The next event; `None` once the link ended without being parked (or its next channel
    /// never came). `backlog` is the link's.
    pub async fn recv(&mut self, backlog: &Backlog) -> Option<LinkEvent> {
        loop {
            if let Some(event) = self.recv_unless_parked(backlog).await {
                return Some(event);
            }
            if !self.is_parked() {
                return None;
            }
            self.unparked().await;
        }
    }

    /// The next event of the current channel, without waiting for the next channel of a
    /// parked link: `None` once the link is parked ([`is_parked`](Self::is_parked)) or has
    /// ended. A transport that keeps less while its link is parked reads with this, and
    /// waits for [`unparked`](Self::unparked) while parked. Cancel-safe.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use footlights_client::{Backlog, LinkInbox};
    ///
    /// let backlog = Backlog::default();
    /// backlog.accept_parking();
    /// let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    /// let mut inbox = LinkInbox::new(rx);
    /// let (next_tx, next) = tokio::sync::oneshot::channel();
    /// assert!(backlog.park(next));
    /// drop(tx);
    /// assert_eq!(inbox.recv_unless_parked(&backlog).await, None);
    /// assert!(inbox.is_parked());
    /// let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    /// next_tx.send(rx).unwrap();
    /// inbox.unparked().await;
    /// assert!(!inbox.is_parked());
    /// # });
    /// ```
    pub async fn recv_unless_parked(&mut self, backlog: &Backlog) -> Option<LinkEvent> {
        if let Inbox::Live(events) = &mut self.state {
            if let Some(event) = events.recv().await {
                return Some(event);
            }
            // The channel ended: parked, or closed for good. Dropping it frees it.
            self.state = match backlog.take_parked() {
                Some(next) => Inbox::Parked(next),
                None => Inbox::Ended,
            };
        }
        None
    }

    /// While the link is parked, waits until its next channel arrives (or the runtime drops
    /// the link); returns at once otherwise. Cancel-safe.
    pub async fn unparked(&mut self) {
        std::future::poll_fn(|cx| self.poll_unparked(cx)).await;
    }

    /// [`unparked`](Self::unparked) as a poll, for a transport that waits in a future of its
    /// own: `Ready` once the link is not parked.
    pub fn poll_unparked(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::future::Future;
        if let Inbox::Parked(next) = &mut self.state {
            let got = std::task::ready!(std::pin::Pin::new(next).poll(cx));
            self.state = match got {
                Ok(events) => Inbox::Live(events),
                Err(_) => Inbox::Ended,
            };
        }
        std::task::Poll::Ready(())
    }

    /// How many events wait in the current channel.
    pub fn len(&self) -> usize {
        match &self.state {
            Inbox::Live(events) => events.len(),
            Inbox::Parked(_) | Inbox::Ended => 0,
        }
    }

    /// Whether no event waits in the current channel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the link is parked: no channel is held, only where the next one arrives.
    pub fn is_parked(&self) -> bool {
        matches!(self.state, Inbox::Parked(_))
    }
}

/// What a client presents to take over a connection whose link dropped: the connection's id
/// and the secret token its `Init` carried (a Footlights extension, see
/// `docs/protocol-extensions.md`).
///
/// `Debug` does not show the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ResumeToken {
    /// The connection to take over.
    pub conn_id: ConnId,
    /// Its secret token.
    pub token: String,
}

impl Debug for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeToken")
            .field("conn_id", &self.conn_id)
            .finish_non_exhaustive()
    }
}

/// How a queue send ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SendOutcome {
    /// The message is stored (a send that does not wait), or the actor completed it: with the
    /// completion's response, if there was one.
    Completed(Option<Value>),
    /// The actor did not complete the message within the wait; it stays queued.
    TimedOut,
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

    /// Sends `body` to queue `name` of the actor (`POST /queue/{name}`), with a short-lived
    /// connection with `params`; with `wait`, waits at most that long for the actor to
    /// complete the message. The default, for transports without queues, refuses.
    fn queue_send<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        body: Value,
        wait: Option<std::time::Duration>,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<SendOutcome, ActionError>> {
        let _ = (target, name, body, wait, params);
        Box::pin(async {
            Err(ActionError::new(
                "client",
                "queue_unsupported",
                "this transport cannot send to queues",
            ))
        })
    }

    /// Sends a raw HTTP request to the actor's request handler, with a short-lived
    /// connection with `params`, and returns its response whatever the status (errors the
    /// server answers, such as a missing handler, are responses too; see
    /// [`response_error`](crate::response_error)). The default, for transports without raw
    /// requests, refuses with `client.raw_unsupported`.
    fn fetch<'a>(
        &'a self,
        target: &'a Target,
        request: crate::RawRequest,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<crate::RawResponse, ActionError>> {
        let _ = (target, request, params);
        Box::pin(async { Err(raw_unsupported()) })
    }

    /// Opens a raw WebSocket to the actor's WebSocket handler on `path` (path and query, with
    /// a leading `/`), with `params`. A socket the actor refuses opens and then closes at once
    /// with a coded reason. The default refuses with `client.raw_unsupported`.
    fn websocket<'a>(
        &'a self,
        target: &'a Target,
        path: &'a str,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<crate::RawWebSocket, ActionError>> {
        let _ = (target, path, params);
        Box::pin(async { Err(raw_unsupported()) })
    }

    /// Opens a link that takes over the connection `resume` names, if the server still keeps
    /// it; otherwise the server opens a new connection (under the same id). The default, for
    /// transports without resume, opens a new connection with [`connect`](Self::connect).
    fn resume<'a>(
        &'a self,
        target: &'a Target,
        params: Option<&'a Value>,
        resume: &'a ResumeToken,
    ) -> BoxFuture<'a, Result<Link, ActionError>> {
        let _ = resume;
        self.connect(target, params)
    }
}

/// `client.raw_unsupported`: the transport carries no raw HTTP or WebSocket traffic.
fn raw_unsupported() -> ActionError {
    ActionError::new(
        "client",
        "raw_unsupported",
        "this transport cannot carry raw HTTP requests or WebSockets",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: u64) -> LinkEvent {
        LinkEvent::Message(ToClient::ActionResponse {
            id,
            output: Value::from(id.to_string()),
        })
    }

    #[tokio::test]
    async fn an_inbox_reads_a_parked_links_old_channel_to_its_end_then_the_next_in_order() {
        let backlog = Backlog::default();
        backlog.accept_parking();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inbox = LinkInbox::new(rx);
        tx.send(response(1)).unwrap();
        let (next_tx, next) = tokio::sync::oneshot::channel();
        assert!(backlog.park(next));
        let (_, again) = tokio::sync::oneshot::channel();
        assert!(!backlog.park(again), "one park at a time");
        drop(tx);
        assert_eq!(inbox.recv(&backlog).await, Some(response(1)));
        // Nothing yet: a read that is given up loses nothing, and no channel is held.
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), inbox.recv(&backlog));
        assert!(waited.await.is_err());
        assert!(inbox.is_parked());
        assert_eq!(inbox.len(), 0);
        let (tx, rx) = mpsc::unbounded_channel();
        next_tx.send(rx).unwrap();
        tx.send(response(2)).unwrap();
        tx.send(response(3)).unwrap();
        assert_eq!(inbox.recv(&backlog).await, Some(response(2)));
        assert!(!inbox.is_parked());
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox.recv(&backlog).await, Some(response(3)));
        drop(tx);
        assert_eq!(
            inbox.recv(&backlog).await,
            None,
            "ended without a park: closed"
        );
    }

    #[tokio::test]
    async fn an_inbox_whose_next_channel_never_comes_ends() {
        let backlog = Backlog::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inbox = LinkInbox::new(rx);
        let (next_tx, next) = tokio::sync::oneshot::channel();
        assert!(backlog.park(next));
        drop((tx, next_tx));
        assert_eq!(inbox.recv(&backlog).await, None);
    }

    fn close(code: u16, reason: &str) -> CloseReason {
        CloseReason {
            code,
            reason: reason.into(),
        }
    }

    #[test]
    fn close_reasons_parse_into_coded_errors() {
        let e = close(1011, "auth.forbidden#01HX").to_error().unwrap();
        assert_eq!((e.group(), e.code()), ("auth", "forbidden"));
        let e = close(1011, "message.outgoing_too_long").to_error().unwrap();
        assert_eq!(e.code(), "outgoing_too_long");
        let e = close(1003, "actor.unsupported_websocket_encoding")
            .to_error()
            .unwrap();
        assert_eq!(e.code(), "unsupported_websocket_encoding");
        let e = CloseReason::going_away().to_error().unwrap();
        assert_eq!((e.group(), e.code()), ("ws", "going_away"));
        let e = close(1001, "").to_error().unwrap();
        assert_eq!((e.group(), e.code()), ("ws", "going_away"));
        let e = CloseReason::dropped().to_error().unwrap();
        assert_eq!((e.group(), e.code()), ("client", "connection_lost"));
        let e = close(1011, "something odd happened").to_error().unwrap();
        assert_eq!((e.group(), e.code()), ("client", "connection_error"));
        let e = close(1011, "Auth.Forbidden").to_error().unwrap();
        assert_eq!(e.code(), "connection_error", "codes are snake_case");
    }

    #[test]
    fn normal_closes_are_not_errors() {
        assert!(close(1000, "").to_error().is_none());
        assert!(close(1000, "kicked").to_error().is_none());
        assert!(close(1000, "connection.superseded").to_error().is_none());
        assert!(CloseReason::dropped().is_dropped());
        assert!(!CloseReason::going_away().is_dropped());
    }

    #[test]
    fn resume_tokens_hide_the_secret() {
        let t = ResumeToken {
            conn_id: ConnId::new("c1"),
            token: "hunter2".into(),
        };
        let shown = format!("{t:?}");
        assert!(
            shown.contains("c1") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
