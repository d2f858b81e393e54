//! Realtime connections: actions, typed event streams, status, errors, reconnection.
//!
//! A [`Connection`] is a handle to a background task (the *driver*, in `driver.rs`) that owns
//! the link to the actor. The driver matches replies to calls, fans events out to streams, and
//! when the link drops it reconnects with backoff, resumes the connection where the transport
//! supports it, re-subscribes every event that still has a listener and sends the actions that
//! were queued while offline.
//!
//! See [`Connection`] for what happens to actions when the link drops.

mod driver;
#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use footlights_protocol::{Action, ActionError, ActorId, ActorSpec, ConnId, Event, Value};
use futures::Stream;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::error::connection_closed;
use crate::handle::{ActionCaller, decode_output};
use crate::transport::{Target, Transport};

/// Where a connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnStatus {
    /// The first attempt is under way.
    Connecting,
    /// Linked to the actor.
    Connected {
        /// The actor's id.
        actor_id: ActorId,
        /// This connection's id on the actor.
        conn_id: ConnId,
    },
    /// The link dropped or could not be opened; retrying with backoff. Actions are queued
    /// meanwhile.
    Reconnecting,
    /// Closed for good: disposed, or refused by the actor or server.
    Closed,
}

impl ConnStatus {
    /// Whether the connection is linked to the actor.
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnStatus::Connected { .. })
    }
}

/// Options for [`ActorHandle::connect_with`](crate::ActorHandle::connect_with).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// Whether to reconnect after the link drops. Default: `true`.
    pub reconnect: bool,
    /// Whether to ask the server to resume the same connection (same id, state and
    /// subscriptions) after the link drops, where the transport supports it. Default: `true`.
    pub resume: bool,
    /// The first reconnection delay; it doubles each attempt. Default: 250 ms.
    pub backoff_base: Duration,
    /// The largest reconnection delay. Default: 30 s.
    pub backoff_cap: Duration,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            reconnect: true,
            resume: true,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

impl ConnectionOptions {
    /// The same options, reconnecting after a drop (`true`) or closing for good (`false`).
    #[must_use]
    pub fn with_reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// The same options, asking to resume the connection after a drop (`true`) or opening a
    /// new one (`false`).
    #[must_use]
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// The same options with these backoff bounds.
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }
}

type Reply = oneshot::Sender<Result<Value, ActionError>>;

/// What a [`Connection`] asks of its driver.
enum Cmd {
    Action {
        name: String,
        args: Vec<Value>,
        reply: Reply,
    },
    Subscribe {
        name: String,
        id: u64,
        sink: mpsc::UnboundedSender<Vec<Value>>,
    },
    Unsubscribe {
        name: String,
        id: u64,
    },
    Dispose {
        done: oneshot::Sender<()>,
    },
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

/// What every clone of a [`Connection`] shares. Dropping the last one disposes the driver.
struct Shared {
    /// To the driver; closed once the driver has ended.
    cmds: mpsc::UnboundedSender<Cmd>,
    /// Written by the driver only.
    status: watch::Receiver<ConnStatus>,
    /// Connection-level errors: new streams `resubscribe` to this receiver, which is never
    /// read itself. The driver holds the only sender, so streams end when it does.
    errors: broadcast::Receiver<ActionError>,
    next_sub: AtomicU64,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: close the link.
        let (done, _) = oneshot::channel();
        let _ = self.cmds.send(Cmd::Dispose { done });
    }
}

/// A realtime connection to one actor. Cheap to clone; dropping the last clone disposes it.
///
/// Typed actions come from the extension trait `#[footlights::actor]` generates, exactly as on
/// an [`ActorHandle`](crate::ActorHandle); events are streams ([`events`](Self::events)).
///
/// # Reconnection
/// When the link drops, the connection turns [`Reconnecting`](ConnStatus::Reconnecting) and
/// tries again with exponential backoff (see [`ConnectionOptions`]) as long as the failures
/// are transient ([`is_transient`](crate::is_transient); `actor.not_found` too for `get`
/// handles, whose actor may be created later). A link that broke is resumed where the transport supports it: the server hands back
/// the same connection, with its per-connection state and subscriptions. After every
/// reconnection the connection subscribes again to every event that has a stream, then sends
/// the queued actions. A permanent failure (a refusal such as `auth.forbidden`, a user error
/// from the actor's connect hook, an unknown actor id) closes it for good: the status turns
/// [`Closed`](ConnStatus::Closed), the error goes to [`errors`](Self::errors), streams end.
///
/// # Actions in flight when the link drops
///
/// An action whose request went out on a link that then dropped fails with
/// `client.connection_lost`, a transient error. It is neither held nor replayed:
///
/// - the protocol cannot tell whether the request reached the actor, so replaying it could
///   run a non-idempotent action twice;
/// - holding it until the resumed connection answers could wait forever: when the server no
///   longer keeps the connection, its answer is gone, and nothing on the wire says so.
///
/// Callers that know an action is safe to repeat can retry on
/// [`is_transient`](crate::is_transient). Actions called while the connection is *not*
/// linked (connecting or reconnecting) never went out: they are queued and sent, once, after
/// the next `Init`.
pub struct Connection<A> {
    shared: Arc<Shared>,
    _actor: PhantomData<fn() -> A>,
}

impl<A> Clone for Connection<A> {
    fn clone(&self) -> Self {
        Connection {
            shared: self.shared.clone(),
            _actor: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for Connection<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("status", &*self.shared.status.borrow())
            .finish()
    }
}

impl<A: ActorSpec> Connection<A> {
    /// Starts the driver and waits for the outcome of the first attempt: `Init` gives a
    /// connected connection, a transient failure a reconnecting one, a permanent failure an
    /// error.
    pub(crate) async fn open(
        transport: Arc<dyn Transport>,
        target: Target,
        params: Option<Value>,
        options: ConnectionOptions,
    ) -> Result<Self, ActionError> {
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(ConnStatus::Connecting);
        let (errors_tx, errors) = broadcast::channel(64);
        let (ready_tx, ready_rx) = oneshot::channel();
        let span = tracing::debug_span!("conn", actor = %target.name(), id = tracing::field::Empty);
        let driver = driver::Driver::new(driver::Setup {
            transport,
            target,
            params,
            options,
            cmds: cmd_rx,
            status: status_tx,
            errors: errors_tx,
            ready: ready_tx,
        });
        tokio::spawn(tracing::Instrument::instrument(driver.run(), span));
        let shared = Arc::new(Shared {
            cmds,
            status,
            errors,
            next_sub: AtomicU64::new(0),
        });
        match ready_rx.await {
            Ok(Ok(())) => Ok(Connection {
                shared,
                _actor: PhantomData,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(connection_closed()),
        }
    }

    /// Calls an action by wire name over this connection. Queued while reconnecting.
    ///
    /// # Errors
    /// The actor's error; `client.connection_lost` if the link dropped after the request went
    /// out and before the reply; `client.connection_closed` after [`dispose`](Self::dispose)
    /// or when the connection closed for good.
    pub async fn action(&self, name: &str, args: Vec<Value>) -> Result<Value, ActionError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .cmds
            .send(Cmd::Action {
                name: name.to_owned(),
                args,
                reply,
            })
            .map_err(|_| connection_closed())?;
        rx.await.unwrap_or_else(|_| Err(connection_closed()))
    }

    /// A stream of the raw arguments of every `name` event. The connection subscribes on the
    /// actor while at least one stream for that name is alive (and again after every
    /// reconnection); dropping the stream unsubscribes. The stream ends when the connection
    /// closes.
    pub fn on_raw(&self, name: &str) -> RawEvents {
        let id = self.shared.next_sub.fetch_add(1, Ordering::Relaxed);
        let (sink, rx) = mpsc::unbounded_channel();
        let _ = self.shared.cmds.send(Cmd::Subscribe {
            name: name.to_owned(),
            id,
            sink,
        });
        RawEvents {
            rx,
            name: name.to_owned(),
            id,
            cmds: self.shared.cmds.clone(),
        }
    }

    /// A typed stream of event `E`, subscribed at once. Arguments that do not decode as `E`
    /// are skipped and logged.
    pub fn events<E: Event>(&self) -> Events<E> {
        Events {
            raw: self.on_raw(E::NAME),
            _event: PhantomData,
        }
    }

    /// The next `E` event. The subscription is made when this is called, before the returned
    /// future is first polled, and dropped once the event arrived.
    ///
    /// # Errors
    /// `client.connection_closed` if the connection closes first.
    pub fn once<E: Event>(
        &self,
    ) -> impl Future<Output = Result<E, ActionError>> + Send + 'static + use<A, E> {
        let mut events = self.events::<E>();
        async move {
            use futures::StreamExt;
            events.next().await.ok_or_else(connection_closed)
        }
    }

    /// Watches the connection's status.
    pub fn status(&self) -> watch::Receiver<ConnStatus> {
        self.shared.status.clone()
    }

    /// Connection-level errors, as they happen, each with its `group` and `code`: errors the
    /// server sends outside any action, closes with an error reason, failed attempts to
    /// (re)connect, and the error that closes the connection for good. A stream that falls far
    /// behind skips the oldest errors.
    pub fn errors(&self) -> ConnErrors {
        let rx = self.shared.errors.resubscribe();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        ConnErrors {
            inner: Box::pin(stream),
        }
    }

    /// The connection's id on the actor, while connected.
    pub fn id(&self) -> Option<ConnId> {
        match &*self.shared.status.borrow() {
            ConnStatus::Connected { conn_id, .. } => Some(conn_id.clone()),
            _ => None,
        }
    }

    /// Closes the connection: the link is closed (the server runs the disconnect hook), event
    /// streams end, a pending reconnection is cancelled, and pending and queued actions fail
    /// with `client.connection_closed`. Resolves once the close has gone out.
    pub async fn dispose(&self) {
        let (done, rx) = oneshot::channel();
        if self.shared.cmds.send(Cmd::Dispose { done }).is_ok() {
            let _ = rx.await;
        }
    }
}

impl<A: ActorSpec> ActionCaller<A> for Connection<A> {
    fn call<M: Action>(
        &self,
        msg: M,
    ) -> impl Future<Output = Result<M::Output, ActionError>> + Send {
        let args = msg.into_args();
        async move { decode_output::<M>(self.action(M::NAME, args?).await?) }
    }
}

/// Raw event arguments from [`Connection::on_raw`].
#[derive(Debug)]
pub struct RawEvents {
    rx: mpsc::UnboundedReceiver<Vec<Value>>,
    name: String,
    id: u64,
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl RawEvents {
    /// Stops listening (the same as dropping the stream).
    pub fn unsubscribe(self) {}
}

impl Stream for RawEvents {
    type Item = Vec<Value>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<Value>>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for RawEvents {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Unsubscribe {
            name: std::mem::take(&mut self.name),
            id: self.id,
        });
    }
}

/// Typed events from [`Connection::events`].
#[derive(Debug)]
pub struct Events<E> {
    raw: RawEvents,
    _event: PhantomData<fn() -> E>,
}

impl<E> Events<E> {
    /// Stops listening (the same as dropping the stream).
    pub fn unsubscribe(self) {}
}

impl<E: Event> Stream for Events<E> {
    type Item = E;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<E>> {
        loop {
            match Pin::new(&mut self.raw).poll_next(cx) {
                Poll::Ready(Some(args)) => match E::from_args(args) {
                    Ok(e) => return Poll::Ready(Some(e)),
                    Err(err) => tracing::warn!(event = E::NAME, %err, "event did not decode"),
                },
                other => return other.map(|_| None),
            }
        }
    }
}

/// Connection-level errors from [`Connection::errors`].
pub struct ConnErrors {
    inner: BoxStream<'static, ActionError>,
}

impl std::fmt::Debug for ConnErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnErrors").finish_non_exhaustive()
    }
}

impl Stream for ConnErrors {
    type Item = ActionError;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ActionError>> {
        self.inner.as_mut().poll_next(cx)
    }
}
