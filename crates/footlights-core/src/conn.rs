//! Connections as the actor sees them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use footlights_client::CloseReason;
use footlights_protocol::{ActionError, ConnId, Event, ToClient, Value};
use tokio::sync::oneshot;

use crate::actor::{Actor, AuthOf, ConnStateOf, ParamsOf};
use crate::gate::{ConnSink, Gate, Output};
use crate::inspect::{EventRecord, LogRecord, Tap};
use crate::instance::{Mailbox, Msg};

/// The request that opened a connection (or carried a stateless action): method, URL and
/// headers. In-process calls carry an empty `GET /` request.
#[derive(Debug, Clone)]
pub struct ConnRequest {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    /// The span of the request, for tracing; disabled unless tracing is on.
    span: tracing::Span,
}

impl ConnRequest {
    /// A request with these parts.
    pub fn new(method: http::Method, uri: http::Uri, headers: http::HeaderMap) -> Self {
        ConnRequest {
            method,
            uri,
            headers,
            span: tracing::Span::none(),
        }
    }

    /// This request with the span it is served in: the actor's span for the action (or the
    /// connection's hooks) becomes its child, across the actor's mailbox. A disabled span (the
    /// usual case when nothing exports traces) carries nothing. See [`crate::trace`].
    #[must_use]
    pub fn with_span(mut self, span: tracing::Span) -> Self {
        self.span = span;
        self
    }

    /// The span the request is served in, as given to [`ConnRequest::with_span`]; disabled
    /// when none was.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The request of an in-process call.
    pub fn local() -> Self {
        ConnRequest::new(
            http::Method::GET,
            http::Uri::from_static("/"),
            http::HeaderMap::new(),
        )
    }

    /// The HTTP method.
    pub fn method(&self) -> &http::Method {
        &self.method
    }

    /// The URL (path and query).
    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &http::HeaderMap {
        &self.headers
    }

    /// One header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The close the actor sends when it ends a connection itself: code 1000 and the reason
/// `connection.disconnected`, followed by `#` and `text` when there is one.
///
/// rivetkit 2.3.x reads every close reason as `group.code#rayId` (split at `#`, then at `.`)
/// and warns about any other (`failed to parse close reason`). This reason parses: the client
/// reports `connection.disconnected` (rejecting the calls in flight with it and telling its
/// error listeners) and keeps the text as the error's ray id and in its message. A `#` in
/// `text` would cut it short there, so it is dropped. 2.0.33 only logs the reason.
///
/// ```
/// use footlights_core::disconnect_reason;
/// assert_eq!(disconnect_reason("kicked #1").reason, "connection.disconnected#kicked 1");
/// assert_eq!(disconnect_reason("").reason, "connection.disconnected");
/// assert_eq!(disconnect_reason("").code, 1000);
/// ```
pub fn disconnect_reason(text: &str) -> CloseReason {
    let text: String = text.chars().filter(|c| *c != '#').collect();
    if text.is_empty() {
        CloseReason::normal(DISCONNECTED)
    } else {
        CloseReason::normal(format!("{DISCONNECTED}#{text}"))
    }
}

/// The coded part of [`disconnect_reason`].
const DISCONNECTED: &str = "connection.disconnected";

/// One client connection to an actor: its id, params, auth data and state.
///
/// Cheap to clone. Connections opened for a single stateless action are *ephemeral*: they
/// exist for that action only and receive no events.
pub struct Conn<A: Actor> {
    inner: Arc<Inner<A>>,
}

struct Inner<A: Actor> {
    id: ConnId,
    /// The secret a client presents to resume this connection after its link dropped.
    token: String,
    params: ParamsOf<A>,
    /// The params as the client sent them, for the inspector; kept for realtime connections
    /// only.
    sent_params: Option<Value>,
    auth: AuthOf<A>,
    /// Owned by the connection; user code locks it briefly from hooks and actions.
    state: Mutex<ConnStateOf<A>>,
    /// Event names this connection subscribed to.
    subscriptions: Mutex<HashSet<String>>,
    /// Where messages to the client go; `None` for ephemeral connections.
    sink: Option<Arc<ConnSink>>,
    /// The actor's gate, so `send` respects the durability order.
    gate: Arc<Gate>,
    /// The actor's own mailbox, to report a server-side disconnect.
    mailbox: Mailbox,
    /// The actor's live log, which reports the events sent.
    tap: Arc<Tap>,
    /// The span of the request that opened the connection, the parent of the spans of the
    /// actions it calls (for tracing; disabled when tracing is off, and for ephemeral
    /// connections).
    span: tracing::Span,
}

impl<A: Actor> Clone for Conn<A> {
    fn clone(&self) -> Self {
        Conn {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Actor> std::fmt::Debug for Conn<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection set aside while its actor sleeps (hibernation): everything but the sleeping
/// instance's gate and mailbox, which the next instance replaces. The client's socket stays
/// open meanwhile, its sink still leading to it (a raw WebSocket's connection has no sink: its
/// socket is set aside beside it, see [`crate::raw::ParkedSocket`]).
pub(crate) struct Parked<A: Actor> {
    id: ConnId,
    token: String,
    params: ParamsOf<A>,
    sent_params: Option<Value>,
    auth: AuthOf<A>,
    state: ConnStateOf<A>,
    subscriptions: HashSet<String>,
    sink: Option<Arc<ConnSink>>,
    span: tracing::Span,
}

impl<A: Actor> Parked<A> {
    /// The connection's id.
    pub(crate) fn id(&self) -> &ConnId {
        &self.id
    }

    /// The connection again, on the instance with this gate and mailbox: same id, token,
    /// params, auth data, state, subscriptions and sink.
    pub(crate) fn unpark(self, gate: Arc<Gate>, mailbox: Mailbox, tap: Arc<Tap>) -> Conn<A> {
        Conn {
            inner: Arc::new(Inner {
                id: self.id,
                token: self.token,
                params: self.params,
                sent_params: self.sent_params,
                auth: self.auth,
                state: Mutex::new(self.state),
                subscriptions: Mutex::new(self.subscriptions),
                sink: self.sink,
                gate,
                mailbox,
                tap,
                span: self.span,
            }),
        }
    }
}

impl<A: Actor> Conn<A> {
    /// Sets the connection aside for its actor's sleep, if it can be: it has a client link
    /// and no other handle to it is left (one kept in the actor's memory, say, would see a
    /// connection that no longer changes). Otherwise it comes back unchanged.
    pub(crate) fn park(self) -> Result<Parked<A>, Conn<A>> {
        if self.inner.sink.is_none() {
            return Err(self);
        }
        self.park_any()
    }

    /// Sets aside the connection of a raw WebSocket (one without a client link) for its
    /// actor's sleep, if no other handle to it is left; otherwise it comes back unchanged.
    pub(crate) fn park_raw(self) -> Result<Parked<A>, Conn<A>> {
        if self.inner.sink.is_some() {
            return Err(self);
        }
        self.park_any()
    }

    fn park_any(self) -> Result<Parked<A>, Conn<A>> {
        let inner = Arc::try_unwrap(self.inner).map_err(|inner| Conn { inner })?;
        if let Some(sink) = &inner.sink {
            // The socket stays open; the link's channel need not while nothing can come on it.
            sink.park();
        }
        let Inner {
            id,
            token,
            params,
            sent_params,
            auth,
            state,
            subscriptions,
            sink,
            span,
            ..
        } = inner;
        Ok(Parked {
            id,
            token,
            params,
            sent_params,
            auth,
            state: state.into_inner().unwrap_or_else(PoisonError::into_inner),
            subscriptions: subscriptions
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
            sink,
            span,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: ConnId,
        (params, sent_params): (ParamsOf<A>, Option<Value>),
        auth: AuthOf<A>,
        state: ConnStateOf<A>,
        sink: Option<Arc<ConnSink>>,
        gate: Arc<Gate>,
        mailbox: Mailbox,
        tap: Arc<Tap>,
        span: tracing::Span,
    ) -> Self {
        Conn {
            inner: Arc::new(Inner {
                id,
                token: crate::instance::random_id(),
                params,
                sent_params,
                auth,
                state: Mutex::new(state),
                subscriptions: Mutex::default(),
                sink,
                gate,
                mailbox,
                tap,
                span,
            }),
        }
    }

    /// The span of the request that opened the connection (see [`crate::trace`]).
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.inner.span
    }

    /// The connection's id.
    pub fn id(&self) -> &ConnId {
        &self.inner.id
    }

    pub(crate) fn token(&self) -> &str {
        &self.inner.token
    }

    /// The params the client connected with.
    pub fn params(&self) -> &ParamsOf<A> {
        &self.inner.params
    }

    /// The params as the client sent them (`None` when it sent none, and for ephemeral
    /// connections), for the inspector.
    pub(crate) fn sent_params(&self) -> Option<&Value> {
        self.inner.sent_params.as_ref()
    }

    /// What the before-connect hook returned.
    pub fn auth(&self) -> &AuthOf<A> {
        &self.inner.auth
    }

    /// The connection's state. Do not hold the guard across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, ConnStateOf<A>> {
        lock(&self.inner.state)
    }

    /// Whether the connection has no realtime link: it lasts for one stateless call (an
    /// action over HTTP, a raw request) or one raw WebSocket, and receives no events.
    pub fn is_ephemeral(&self) -> bool {
        self.inner.sink.is_none()
    }

    /// Whether the connection subscribed to `event`.
    pub fn is_subscribed(&self, event: &str) -> bool {
        lock(&self.inner.subscriptions).contains(event)
    }

    /// The events the connection subscribed to.
    pub(crate) fn subscribed_events(&self) -> Vec<String> {
        lock(&self.inner.subscriptions).iter().cloned().collect()
    }

    /// Subscribes to or unsubscribes from `event`, within the actor type's limits on the
    /// number of subscriptions and the length of a name.
    ///
    /// The connection's own set is the one the limits apply to; the caller mirrors a change
    /// into the actor's subscription index, which broadcasts read.
    ///
    /// # Errors
    /// `connection.too_many_subscriptions`, `connection.event_name_too_long`; the
    /// subscriptions are then unchanged.
    pub(crate) fn set_subscribed(
        &self,
        event: String,
        on: bool,
        options: &crate::ActorOptions,
    ) -> Result<(), ActionError> {
        let mut subs = lock(&self.inner.subscriptions);
        if !on {
            subs.remove(&event);
            return Ok(());
        }
        if event.len() > options.max_event_name_bytes {
            return Err(ActionError::new(
                "connection",
                "event_name_too_long",
                format!(
                    "an event name of {} bytes is over the limit of {}",
                    event.len(),
                    options.max_event_name_bytes
                ),
            ));
        }
        if !subs.contains(&event) && subs.len() >= options.max_subscriptions {
            return Err(ActionError::new(
                "connection",
                "too_many_subscriptions",
                format!(
                    "a connection may subscribe to at most {} events",
                    options.max_subscriptions
                ),
            ));
        }
        subs.insert(event);
        Ok(())
    }

    pub(crate) fn sink(&self) -> Option<&Arc<ConnSink>> {
        self.inner.sink.as_ref()
    }

    /// Sends an event to this connection only, whether or not it subscribed.
    pub fn send<E: Event>(&self, event: E) {
        match event.to_args() {
            Ok(args) => self.send_raw(E::NAME, args),
            Err(e) => tracing::error!(event = E::NAME, error = %e, "event did not serialize"),
        }
    }

    /// Sends an event by name with raw arguments to this connection only.
    pub fn send_raw(&self, name: &str, args: Vec<Value>) {
        let recipients = usize::from(self.inner.sink.is_some());
        let tap = &self.inner.tap;
        tap.publish(|| LogRecord::Event(EventRecord::of(name, &args, recipients)));
        if let Some(sink) = &self.inner.sink {
            let msg = ToClient::Event {
                name: name.to_owned(),
                args,
            };
            self.inner.gate.push(Output::ToConn(sink.clone(), msg));
        }
    }

    /// Closes the connection with a reason; returns once the close has been handed to the
    /// client (the disconnect hook runs right after the current action). Outputs produced
    /// before the call are sent first. Clients reconnect on their own unless the actor
    /// rejects them.
    ///
    /// The client gets close code 1000 with the reason `connection.disconnected#{reason}`
    /// ([`disconnect_reason`]): a coded reason, as the official clients parse close reasons,
    /// with the text after the `#`.
    pub async fn disconnect(&self, reason: impl Into<String>) {
        let Some(sink) = &self.inner.sink else { return };
        let (done, rx) = oneshot::channel();
        self.inner.gate.flush_staged();
        self.inner.gate.push_unstaged(Output::Close(
            sink.clone(),
            disconnect_reason(&reason.into()),
            Some(done),
        ));
        let _ = self.inner.mailbox.send(Msg::ConnClosed {
            conn_id: self.inner.id.clone(),
            link: None,
        });
        let _ = rx.await;
    }
}
