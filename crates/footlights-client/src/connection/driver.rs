//! The background task behind a [`Connection`](super::Connection).
//!
//! The driver is the only owner of the link, the pending and queued actions and the event
//! listeners; handles talk to it through [`Cmd`]s. It is always in one [`Phase`]: waiting
//! before an attempt, opening a link, or holding an open link. Commands are served in every
//! phase, so `dispose` cancels an attempt or a wait at once.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use footlights_protocol::{ActionError, ToClient, ToServer, Value};
use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Sleep;

use super::{Cmd, ConnStatus, ConnectionOptions, Reply};
use crate::backoff::Backoff;
use crate::error::{connection_closed, connection_lost, should_reconnect};
use crate::transport::{CloseReason, Link, LinkEvent, ResumeToken, Target, Transport};

/// Everything [`Driver::new`] needs.
pub(super) struct Setup {
    pub(super) transport: Arc<dyn Transport>,
    pub(super) target: Target,
    pub(super) params: Option<Value>,
    pub(super) options: ConnectionOptions,
    pub(super) cmds: mpsc::UnboundedReceiver<Cmd>,
    pub(super) status: watch::Sender<ConnStatus>,
    pub(super) errors: broadcast::Sender<ActionError>,
    pub(super) ready: oneshot::Sender<Result<(), ActionError>>,
}

/// What the driver is doing about its link.
enum Phase {
    /// Waiting before the next attempt (a zero wait right after a clean loss).
    Waiting(Pin<Box<Sleep>>),
    /// An attempt is under way; dropping the future cancels it.
    Opening(BoxFuture<'static, Result<Link, ActionError>>),
    /// A link is open; `linked` once its `Init` arrived.
    Open { link: Link, linked: bool },
}

/// What woke the driver up.
enum Step {
    Cmd(Option<Cmd>),
    Attempt,
    Opened(Result<Link, ActionError>),
    Link(LinkEvent),
}

impl Phase {
    /// Waits for what the phase is waiting for. Cancel-safe: nothing is consumed unless it
    /// returns.
    async fn next(&mut self) -> Step {
        match self {
            Phase::Waiting(sleep) => {
                sleep.as_mut().await;
                Step::Attempt
            }
            Phase::Opening(attempt) => Step::Opened(attempt.as_mut().await),
            Phase::Open { link, .. } => Step::Link(
                link.events
                    .recv()
                    .await
                    .unwrap_or_else(|| LinkEvent::Closed(CloseReason::dropped())),
            ),
        }
    }
}

/// An action called while no link was ready; sent after the next `Init`.
struct Queued {
    name: String,
    args: Vec<Value>,
    reply: Reply,
}

pub(super) struct Driver {
    transport: Arc<dyn Transport>,
    target: Target,
    params: Option<Value>,
    options: ConnectionOptions,
    backoff: Backoff,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    status: watch::Sender<ConnStatus>,
    errors: broadcast::Sender<ActionError>,
    phase: Phase,
    /// The id and token of the current connection, from its `Init`; offered when reopening
    /// after the link dropped, so the server hands back the same connection.
    resume: Option<ResumeToken>,
    /// The last connection-level `Error` the server sent on the current link, kept to report
    /// the close that follows it with its full message and metadata.
    last_error: Option<ActionError>,
    /// Actions sent on the current link, by request id.
    pending: HashMap<u64, Reply>,
    /// Actions called while not linked.
    queued: VecDeque<Queued>,
    /// Event listeners by event name, then by subscription id.
    subs: HashMap<String, HashMap<u64, mpsc::UnboundedSender<Vec<Value>>>>,
    next_action: u64,
    /// Answers `Connection::open` after the first attempt: `Init`, a transient failure (the
    /// connection goes on reconnecting) or a permanent one.
    ready: Option<oneshot::Sender<Result<(), ActionError>>>,
}

impl Driver {
    pub(super) fn new(setup: Setup) -> Driver {
        let mut driver = Driver {
            backoff: Backoff::new(setup.options.backoff_base, setup.options.backoff_cap),
            transport: setup.transport,
            target: setup.target,
            params: setup.params,
            options: setup.options,
            cmds: setup.cmds,
            status: setup.status,
            errors: setup.errors,
            phase: Phase::Waiting(Box::pin(tokio::time::sleep(Duration::ZERO))),
            resume: None,
            last_error: None,
            pending: HashMap::new(),
            queued: VecDeque::new(),
            subs: HashMap::new(),
            next_action: 0,
            ready: Some(setup.ready),
        };
        driver.phase = driver.attempt();
        driver
    }

    pub(super) async fn run(mut self) {
        loop {
            let step = tokio::select! {
                cmd = self.cmds.recv() => Step::Cmd(cmd),
                step = self.phase.next() => step,
            };
            match step {
                Step::Cmd(None) => return self.shutdown().await,
                Step::Cmd(Some(Cmd::Dispose { done })) => {
                    self.shutdown().await;
                    let _ = done.send(());
                    return;
                }
                Step::Cmd(Some(cmd)) => self.command(cmd),
                Step::Attempt => self.phase = self.attempt(),
                Step::Opened(Ok(link)) => {
                    self.last_error = None;
                    self.phase = Phase::Open {
                        link,
                        linked: false,
                    };
                }
                Step::Opened(Err(e)) => {
                    tracing::debug!(error = %e, "connection attempt failed");
                    let _ = self.errors.send(e.clone());
                    if !self.retry_after(e) {
                        return self.shutdown().await;
                    }
                }
                Step::Link(LinkEvent::Message(msg)) => self.message(msg),
                Step::Link(LinkEvent::Closed(reason)) => {
                    if !self.link_closed(reason) {
                        return self.shutdown().await;
                    }
                }
            }
        }
    }

    /// Starts an attempt: a resume if there is a token, else a new connection.
    fn attempt(&self) -> Phase {
        let transport = self.transport.clone();
        let target = self.target.clone();
        let params = self.params.clone();
        let resume = self.resume.clone();
        Phase::Opening(Box::pin(async move {
            match &resume {
                Some(token) => transport.resume(&target, params.as_ref(), token).await,
                None => transport.connect(&target, params.as_ref()).await,
            }
        }))
    }

    fn linked(&self) -> bool {
        matches!(self.phase, Phase::Open { linked: true, .. })
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Action { name, args, reply } => {
                if self.linked() {
                    self.send_action(name, args, reply);
                } else {
                    self.queued.push_back(Queued { name, args, reply });
                }
            }
            Cmd::Subscribe { name, id, sink } => {
                if *self.status.borrow() == ConnStatus::Closed {
                    return; // dropping `sink` ends the stream at once
                }
                let listeners = self.subs.entry(name.clone()).or_default();
                let first = listeners.is_empty();
                listeners.insert(id, sink);
                if first && self.linked() {
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
                        if self.linked() {
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
        if let Phase::Open { link, .. } = &self.phase
            && let Err(e) = link.sender.send(msg)
        {
            tracing::debug!(error = %e, "send on a closing link");
        }
    }

    fn send_action(&mut self, name: String, args: Vec<Value>, reply: Reply) {
        let Phase::Open { link, .. } = &self.phase else {
            self.queued.push_back(Queued { name, args, reply });
            return;
        };
        let id = self.next_action;
        self.next_action += 1;
        let msg = ToServer::ActionRequest {
            id,
            name: name.clone(),
            args: args.clone(),
        };
        match link.sender.send(msg) {
            Ok(()) => {
                self.pending.insert(id, reply);
            }
            // The link is going away and the request did not leave: keep it for the next one.
            Err(_) => self.queued.push_back(Queued { name, args, reply }),
        }
    }

    fn message(&mut self, msg: ToClient) {
        match msg {
            ToClient::Init {
                actor_id,
                connection_id,
                connection_token,
            } => {
                if let Phase::Open { linked, .. } = &mut self.phase {
                    *linked = true;
                }
                self.backoff.reset();
                self.last_error = None;
                self.resume = connection_token.map(|token| ResumeToken {
                    conn_id: connection_id.clone(),
                    token,
                });
                tracing::Span::current().record("id", connection_id.as_str());
                tracing::debug!("connected");
                self.status.send_replace(ConnStatus::Connected {
                    actor_id,
                    conn_id: connection_id,
                });
                // Subscriptions first, so queued actions' events reach their streams.
                let names: Vec<String> = self.subs.keys().cloned().collect();
                for event_name in names {
                    self.send(ToServer::SubscriptionRequest {
                        event_name,
                        subscribe: true,
                    });
                }
                while let Some(q) = self.queued.pop_front() {
                    self.send_action(q.name, q.args, q.reply);
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
                tracing::debug!(error = %error, "connection error");
                let _ = self.errors.send(error.clone());
                self.last_error = Some(error);
            }
            ToClient::Event { name, args } => self.event(&name, &args),
            // In-process links get an actor's broadcasts shared.
            ToClient::Broadcast(event) => self.event(event.name(), event.args()),
            other => tracing::debug!(?other, "unexpected message"),
        }
    }

    fn event(&mut self, name: &str, args: &[Value]) {
        if let Some(listeners) = self.subs.get_mut(name) {
            listeners.retain(|_, sink| sink.send(args.to_vec()).is_ok());
        }
    }

    /// The link closed. Returns `false` when the connection is over.
    fn link_closed(&mut self, reason: CloseReason) -> bool {
        tracing::debug!(code = reason.code, reason = %reason.reason, "link closed");
        let was_linked = self.linked();
        self.phase = Phase::Waiting(Box::pin(tokio::time::sleep(Duration::ZERO)));
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(connection_lost(
                "the connection dropped before the answer arrived",
            )));
        }
        // The error the close reports. The server's own `Error`, when it sent one first, has
        // the full message and metadata (and is on the error stream already); a link that
        // broke right after one is reported with it too.
        let sent = self.last_error.take();
        let error = match (sent, reason.to_error()) {
            (Some(sent), Some(close)) if sent.code() == close.code() || reason.is_dropped() => {
                Some(sent)
            }
            (_, Some(close)) => {
                if !reason.is_dropped() && close.code() != "going_away" {
                    let _ = self.errors.send(close.clone());
                }
                Some(close)
            }
            (_, None) => None,
        };
        if let Some(e) = &error
            && (e.group(), e.code()) == ("connection", "resume_refused")
        {
            // The token is stale: open a new connection right away.
            self.resume = None;
            self.reconnecting(Duration::ZERO);
            return true;
        }
        // Only a link that broke can be taken over; after a close the server has ended the
        // connection, and the next one starts fresh.
        if !(reason.is_dropped() && self.options.resume) {
            self.resume = None;
        }
        match error {
            Some(e) if !should_reconnect(&self.target, &e) => {
                self.fail(e);
                false
            }
            _ if !self.options.reconnect => {
                self.fail(connection_closed());
                false
            }
            _ => {
                let delay = if was_linked && reason.is_dropped() {
                    // A drop is usually a blip: try once right away.
                    Duration::ZERO
                } else {
                    self.backoff.next_delay(&mut rand::rng())
                };
                self.reconnecting(delay);
                true
            }
        }
    }

    /// An attempt failed with `error`. Returns `false` when the connection is over.
    fn retry_after(&mut self, error: ActionError) -> bool {
        if !self.options.reconnect || !should_reconnect(&self.target, &error) {
            self.fail(error);
            return false;
        }
        let delay = self.backoff.next_delay(&mut rand::rng());
        self.reconnecting(delay);
        true
    }

    fn reconnecting(&mut self, delay: Duration) {
        tracing::debug!(?delay, "reconnecting");
        self.status.send_replace(ConnStatus::Reconnecting);
        self.phase = Phase::Waiting(Box::pin(tokio::time::sleep(delay)));
        if let Some(ready) = self.ready.take() {
            // The first attempt failed but will be retried: the caller gets a connection that
            // queues its actions meanwhile.
            let _ = ready.send(Ok(()));
        }
    }

    /// Gives up for good with `error` (already on the error stream): queued actions fail with
    /// it, streams end.
    fn fail(&mut self, error: ActionError) {
        tracing::debug!(error = %error, "connection closed for good");
        for q in self.queued.drain(..) {
            let _ = q.reply.send(Err(error.clone()));
        }
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(error));
        }
        self.subs.clear();
        self.status.send_replace(ConnStatus::Closed);
    }

    /// Ends the driver: closes the link (waiting, bounded, for the close to go out), cancels
    /// any attempt, fails every action, ends every stream.
    async fn shutdown(&mut self) {
        let phase = std::mem::replace(
            &mut self.phase,
            Phase::Waiting(Box::pin(tokio::time::sleep(Duration::ZERO))),
        );
        let closing = match phase {
            Phase::Open { link, .. } => Some(link.sender.close_gracefully()),
            // Dropping an attempt cancels it.
            Phase::Opening(_) | Phase::Waiting(_) => None,
        };
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(connection_closed()));
        }
        for q in self.queued.drain(..) {
            let _ = q.reply.send(Err(connection_closed()));
        }
        self.subs.clear();
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(connection_closed()));
        }
        self.status.send_replace(ConnStatus::Closed);
        if let Some(closing) = closing {
            closing.await;
        }
    }
}
