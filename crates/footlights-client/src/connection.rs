//! Realtime connections: actions, typed event streams, status, errors, reconnection.
//!
//! A [`Connection`] is a handle to a background task (the *driver*) that owns the link to the
//! actor. The driver matches replies to calls, fans events out to streams, and when the link
//! drops it reconnects with backoff, re-subscribes every event that still has a listener and
//! sends the actions that were queued while offline. Actions in flight when a link drops fail
//! with `client.connection_lost` (they may or may not have run; retrying is the caller's call).

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use footlights_protocol::{
    Action, ActionError, ActorId, ActorSpec, ConnId, Event, ToClient, ToServer, Value,
};
use futures::Stream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::backoff::Backoff;
use crate::handle::{ActionCaller, decode_output};
use crate::transport::{CloseReason, Link, LinkEvent, Target, Transport};

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
    /// The link dropped; retrying with backoff. Actions are queued meanwhile.
    Reconnecting,
    /// Closed for good: disposed, or rejected by the actor.
    Closed,
}

/// Options for [`ActorHandle::connect_with`](crate::ActorHandle::connect_with).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// Whether to reconnect after the link drops.
    pub reconnect: bool,
    /// The first reconnection delay; it doubles each attempt.
    pub backoff_base: Duration,
    /// The largest reconnection delay.
    pub backoff_cap: Duration,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            reconnect: true,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

type Reply = oneshot::Sender<Result<Value, ActionError>>;

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

struct Shared {
    cmds: mpsc::UnboundedSender<Cmd>,
    status: watch::Receiver<ConnStatus>,
    errors: broadcast::Sender<ActionError>,
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

fn closed_error() -> ActionError {
    ActionError::new("client", "connection_closed", "the connection is closed")
}

fn lost_error() -> ActionError {
    ActionError::new(
        "client",
        "connection_lost",
        "the connection dropped before the reply",
    )
}

impl<A: ActorSpec> Connection<A> {
    pub(crate) async fn open(
        transport: Arc<dyn Transport>,
        target: Target,
        params: Option<Value>,
        options: ConnectionOptions,
    ) -> Result<Self, ActionError> {
        let first = transport.connect(&target, params.as_ref()).await;
        let link = match first {
            Ok(link) => link,
            Err(e) if !options.reconnect || is_permanent(&e) => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "first connect failed, retrying in the background");
                let (tx, rx) = mpsc::unbounded_channel();
                tx.send(LinkEvent::Closed(CloseReason::error(&e))).ok();
                Link {
                    sender: Box::new(DeadSender),
                    events: rx,
                }
            }
        };
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(ConnStatus::Connecting);
        let (errors, _) = broadcast::channel(64);
        let (ready_tx, ready_rx) = oneshot::channel();
        let driver = Driver {
            transport,
            target,
            params,
            backoff: Backoff::new(options.backoff_base, options.backoff_cap),
            reconnect: options.reconnect,
            cmds: cmd_rx,
            status: status_tx,
            errors: errors.clone(),
            link: Some(link),
            linked: false,
            pending: HashMap::new(),
            queued: VecDeque::new(),
            subs: HashMap::new(),
            next_action: 0,
            ready: Some(ready_tx),
        };
        tokio::spawn(driver.run());
        let shared = Arc::new(Shared {
            cmds,
            status,
            errors,
            next_sub: AtomicU64::new(0),
        });
        match ready_rx.await {
            Ok(Err(e)) => Err(e),
            _ => Ok(Connection {
                shared,
                _actor: PhantomData,
            }),
        }
    }

    /// Calls an action by wire name over this connection. Queued while reconnecting.
    ///
    /// # Errors
    /// The actor's error; `client.connection_lost` if the link dropped before the reply;
    /// `client.connection_closed` after [`dispose`](Self::dispose).
    pub async fn action(&self, name: &str, args: Vec<Value>) -> Result<Value, ActionError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .cmds
            .send(Cmd::Action {
                name: name.to_owned(),
                args,
                reply,
            })
            .map_err(|_| closed_error())?;
        rx.await.unwrap_or_else(|_| Err(closed_error()))
    }

    /// A stream of the raw arguments of every `name` event. Subscribes on the actor while at
    /// least one stream for that name is alive; dropping the stream unsubscribes.
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

    /// A typed stream of event `E`. Arguments that do not decode as `E` are skipped and logged.
    pub fn events<E: Event>(&self) -> Events<E> {
        Events {
            raw: self.on_raw(E::NAME),
            _event: PhantomData,
        }
    }

    /// Waits for the next `E` event.
    ///
    /// # Errors
    /// `client.connection_closed` if the connection closes first.
    pub async fn once<E: Event>(&self) -> Result<E, ActionError> {
        use futures::StreamExt;
        self.events::<E>().next().await.ok_or_else(closed_error)
    }

    /// Watches the connection's status.
    pub fn status(&self) -> watch::Receiver<ConnStatus> {
        self.shared.status.clone()
    }

    /// Connection-level errors (errors not tied to one action), as they happen.
    pub fn errors(&self) -> broadcast::Receiver<ActionError> {
        self.shared.errors.subscribe()
    }

    /// The connection's id on the actor, while connected.
    pub fn id(&self) -> Option<ConnId> {
        match &*self.shared.status.borrow() {
            ConnStatus::Connected { conn_id, .. } => Some(conn_id.clone()),
            _ => None,
        }
    }

    /// Closes the connection: the link is closed, streams end, reconnection stops, pending
    /// and queued actions fail with `client.connection_closed`.
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
    ) -> impl std::future::Future<Output = Result<M::Output, ActionError>> + Send {
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

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

/// Typed events from [`Connection::events`].
#[derive(Debug)]
pub struct Events<E> {
    raw: RawEvents,
    _event: PhantomData<fn() -> E>,
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

#[derive(Debug)]
struct DeadSender;

impl crate::transport::LinkSender for DeadSender {
    fn send(&self, _: ToServer) -> Result<(), ActionError> {
        Err(closed_error())
    }
    fn close(&self) {}
}

/// Errors after which reconnecting cannot help.
fn is_permanent(e: &ActionError) -> bool {
    matches!(
        (e.group(), e.code()),
        ("auth", _)
            | ("user", _)
            | (
                "actor",
                "action_not_found" | "invalid_request" | "duplicate_key"
            )
    )
}

/// The background task behind a [`Connection`].
struct Driver {
    transport: Arc<dyn Transport>,
    target: Target,
    params: Option<Value>,
    backoff: Backoff,
    reconnect: bool,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    status: watch::Sender<ConnStatus>,
    errors: broadcast::Sender<ActionError>,
    /// The current link, if any; `linked` turns true when its Init arrives.
    link: Option<Link>,
    linked: bool,
    /// Actions sent on the current link, by request id.
    pending: HashMap<u64, Reply>,
    /// Actions called while not linked, sent after the next Init.
    queued: VecDeque<(String, Vec<Value>, Reply)>,
    /// Event listeners by event name, then by subscription id.
    subs: HashMap<String, HashMap<u64, mpsc::UnboundedSender<Vec<Value>>>>,
    next_action: u64,
    /// Answers `Connection::open` once the first attempt succeeded or failed for good.
    ready: Option<oneshot::Sender<Result<(), ActionError>>>,
}

enum Step {
    Cmd(Option<Cmd>),
    Link(Option<LinkEvent>),
    Retry,
}

impl Driver {
    async fn run(mut self) {
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            let step = {
                let link_rx = self.link.as_mut().map(|l| &mut l.events);
                tokio::select! {
                    cmd = self.cmds.recv() => Step::Cmd(cmd),
                    ev = async { match link_rx { Some(rx) => rx.recv().await, None => std::future::pending().await } } => Step::Link(ev),
                    () = async { match retry_at { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => Step::Retry,
                }
            };
            match step {
                Step::Cmd(None) => return self.shutdown(),
                Step::Cmd(Some(Cmd::Dispose { done })) => {
                    self.shutdown();
                    let _ = done.send(());
                    return;
                }
                Step::Cmd(Some(cmd)) => self.command(cmd),
                Step::Link(Some(LinkEvent::Message(msg))) => self.message(msg),
                Step::Link(ev) => {
                    let reason = match ev {
                        Some(LinkEvent::Closed(reason)) => Some(reason),
                        _ => None,
                    };
                    match self.link_closed(reason) {
                        Some(delay) => retry_at = Some(tokio::time::Instant::now() + delay),
                        None => return self.shutdown(),
                    }
                }
                Step::Retry => {
                    retry_at = None;
                    match self
                        .transport
                        .connect(&self.target, self.params.as_ref())
                        .await
                    {
                        Ok(link) => self.link = Some(link),
                        Err(e) if is_permanent(&e) => {
                            self.fail(e);
                            return self.shutdown();
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "reconnect failed");
                            let delay = self.backoff.next_delay(&mut rand::rng());
                            retry_at = Some(tokio::time::Instant::now() + delay);
                        }
                    }
                }
            }
        }
    }

    fn status_is_closed(&self) -> bool {
        *self.status.borrow() == ConnStatus::Closed
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Action { name, args, reply } => {
                if self.linked {
                    self.send_action(name, args, reply);
                } else {
                    self.queued.push_back((name, args, reply));
                }
            }
            Cmd::Subscribe { name, id, sink } => {
                let listeners = self.subs.entry(name.clone()).or_default();
                let first = listeners.is_empty();
                listeners.insert(id, sink);
                if first && self.linked {
                    self.send(ToServer::SubscriptionRequest {
                        event_name: name,
                        subscribe: true,
                    });
                }
            }
            Cmd::Unsubscribe { name, id } => {
                if let Some(listeners) = self.subs.get_mut(&name) {
                    listeners.remove(&id);
                    if listeners.is_empty() {
                        self.subs.remove(&name);
                        if self.linked {
                            self.send(ToServer::SubscriptionRequest {
                                event_name: name,
                                subscribe: false,
                            });
                        }
                    }
                }
            }
            Cmd::Dispose { .. } => {}
        }
    }

    fn send(&mut self, msg: ToServer) {
        if let Some(link) = &self.link
            && let Err(e) = link.sender.send(msg)
        {
            tracing::debug!(error = %e, "send on a closed link");
        }
    }

    fn send_action(&mut self, name: String, args: Vec<Value>, reply: Reply) {
        let id = self.next_action;
        self.next_action += 1;
        let sent = match &self.link {
            Some(link) => link.sender.send(ToServer::ActionRequest {
                id,
                name: name.clone(),
                args: args.clone(),
            }),
            None => Err(closed_error()),
        };
        match sent {
            Ok(()) => {
                self.pending.insert(id, reply);
            }
            // The link is going away; keep the action for the next one.
            Err(_) => self.queued.push_back((name, args, reply)),
        }
    }

    fn message(&mut self, msg: ToClient) {
        match msg {
            ToClient::Init {
                actor_id,
                connection_id,
                ..
            } => {
                self.linked = true;
                self.backoff.reset();
                self.status.send_replace(ConnStatus::Connected {
                    actor_id,
                    conn_id: connection_id,
                });
                let names: Vec<String> = self.subs.keys().cloned().collect();
                for event_name in names {
                    self.send(ToServer::SubscriptionRequest {
                        event_name,
                        subscribe: true,
                    });
                }
                while let Some((name, args, reply)) = self.queued.pop_front() {
                    self.send_action(name, args, reply);
                }
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            ToClient::ActionResponse { id, output } => {
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(Ok(output));
                }
            }
            ToClient::Error {
                error,
                action_id: Some(id),
            } => {
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(Err(error));
                }
            }
            ToClient::Error {
                error,
                action_id: None,
            } => {
                for (_, reply) in self.pending.drain() {
                    let _ = reply.send(Err(error.clone()));
                }
                let _ = self.errors.send(error.clone());
                if !self.linked {
                    // Rejected while connecting.
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Err(error));
                        self.status.send_replace(ConnStatus::Closed);
                    } else if is_permanent(&error) {
                        self.fail(error);
                    }
                }
            }
            ToClient::Event { name, args } => {
                if let Some(listeners) = self.subs.get_mut(&name) {
                    listeners.retain(|_, sink| sink.send(args.clone()).is_ok());
                }
            }
            _ => {}
        }
    }

    /// The link closed. Returns the delay before the next attempt, or `None` to stop.
    fn link_closed(&mut self, reason: Option<CloseReason>) -> Option<Duration> {
        self.link = None;
        let was_linked = std::mem::replace(&mut self.linked, false);
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(lost_error()));
        }
        if self.status_is_closed() {
            return None;
        }
        if let Some(reason) = &reason {
            tracing::debug!(code = reason.code, reason = %reason.reason, "link closed");
        }
        if !self.reconnect {
            self.fail(closed_error());
            return None;
        }
        self.status.send_replace(ConnStatus::Reconnecting);
        Some(if was_linked {
            Duration::ZERO
        } else {
            self.backoff.next_delay(&mut rand::rng())
        })
    }

    /// Gives up for good with `error`.
    fn fail(&mut self, error: ActionError) {
        for (_, _, reply) in self.queued.drain(..) {
            let _ = reply.send(Err(error.clone()));
        }
        let _ = self.errors.send(error.clone());
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(error));
        }
        self.status.send_replace(ConnStatus::Closed);
    }

    fn shutdown(&mut self) {
        if let Some(link) = self.link.take() {
            link.sender.close();
        }
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(closed_error()));
        }
        for (_, _, reply) in self.queued.drain(..) {
            let _ = reply.send(Err(closed_error()));
        }
        self.subs.clear();
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(closed_error()));
        }
        self.status.send_replace(ConnStatus::Closed);
    }
}
