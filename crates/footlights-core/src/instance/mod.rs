//! One live actor: the task that owns its state and mailbox.
//!
//! Everything that touches the state runs here, one message at a time, so user code takes
//! `&mut self` without locks. Deferred answers are futures polled beside the mailbox, so a
//! waiting action does not stall its actor. After each message the state is serialized; if it
//! changed, the snapshot goes to the writer and the message's outputs wait in the gate until it
//! is durable.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use footlights_client::{Backlog, CloseReason, LinkEvent};
use footlights_protocol::{ActionError, ConnId, ToClient, ToServer, Value, from_value};
use footlights_storage::Write;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::actor::{ActionTable, Actor, ActorOptions, Entry, Outcome};
use crate::conn::{Conn, ConnRequest};
use crate::ctx::{Ctx, Shared};
use crate::deferred::Deferred;
use crate::gate::{ConnSink, Output};
use crate::raw::{RawEvent, RawReply, RawRequest, RawResponse, RawSocket, WsMessage};
use crate::registry::RegistryInner;
use crate::snapshot;
use crate::writer::WriteRequest;
pub(crate) use mailbox::{Mailbox, MailboxRx};
pub(crate) use msg::Msg;

mod boot;
mod compact;
mod conns;
mod detached;
pub(crate) mod dormant;
mod inspect;
mod invoke;
pub(crate) mod mailbox;
mod msg;
mod pending;
mod queue;
mod raw;
mod run_loop;
mod save;
mod stop;

use invoke::{Invoked, guarded, is_panic};
use pending::{Deferreds, Finished, RawReplyTx, Waiter};

/// The storage key under which a new actor's create input waits for its first start.
pub(crate) const INPUT_KEY: &[u8] = b"footlights.input";

/// What the registry hands a new instance.
pub(crate) struct Start {
    pub(crate) id: footlights_protocol::ActorId,
    pub(crate) token: u64,
    pub(crate) rx: MailboxRx,
    pub(crate) tx: Mailbox,
    /// The previous instance of the same actor, still stopping: wait for it before loading.
    pub(crate) prev: Option<watch::Receiver<bool>>,
    pub(crate) reg: Arc<RegistryInner>,
    /// The counts of the actor's type.
    pub(crate) metrics: Arc<crate::metrics::ActorTypeMetrics>,
    /// The actor's metadata, state and alarms, if the key lookup that led here read them
    /// and nothing was written since: the start reads them from the store otherwise.
    pub(crate) preloaded: Option<footlights_storage::LoadedActor>,
}

/// What woke the actor's loop.
enum Wake<A: Actor> {
    /// A write failed: stop before serving anything else.
    Failed,
    Msg(Option<Box<Msg>>),
    Done(Box<Finished<A>>),
    Timer,
    /// The run loop ended (or its grace period did).
    Run(Option<run_loop::RunEnd>),
}

tokio::task_local! {
    /// Set while an actor task handles a message: the actor's id. Code that would otherwise
    /// ask the actor task for something (and wait for it) does it in place instead.
    pub(crate) static IN_MESSAGE: footlights_protocol::ActorId;
}

/// Waits until `at` (for ever if `None`).
///
/// The timer is boxed: this future is part of the actor loop's state, which every awake actor
/// keeps, and `at` is set only while a run loop winds down. Inline, the timer (~100 B) would
/// be there always.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => Box::pin(tokio::time::sleep_until(at)).await,
        None => std::future::pending().await,
    }
}

/// Logs a non-public error once and returns what the client may see.
fn for_client(actor: &'static str, e: ActionError) -> ActionError {
    // A panic was logged where it was caught.
    if !e.is_public() && !is_panic(&e) {
        tracing::error!(actor, error = %e, "internal error (masked for the client)");
    }
    e.masked()
}

/// A fresh random id in the usual 32-hex-digit form, from the thread's random generator
/// (no system call per id, unlike `Uuid::new_v4`).
pub(crate) fn random_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .simple()
        .to_string()
}

pub(crate) fn run<A: Actor>(
    start: Start,
    table: Arc<ActionTable<A>>,
) -> impl Future<Output = ()> + Send {
    // Boxed: loading needs more room than the running actor keeps. Made out here so the
    // task keeps only the box, not the start data as well.
    // Every line logged from inside the actor names it; the key is filled in once loaded.
    let span = tracing::info_span!(
        "actor",
        actor = A::NAME,
        key = tracing::field::Empty,
        id = %start.id
    );
    let starting = Box::pin(start_instance(start, table));
    async move {
        let running = match starting.await {
            Some(instance) => instance.run(None),
            None => return,
        };
        running.await;
    }
    .instrument(span)
}

/// Waits for the previous instance to stop, then loads the actor. `None` if it cannot start.
async fn start_instance<A: Actor>(
    mut start: Start,
    table: Arc<ActionTable<A>>,
) -> Option<Instance<A>> {
    if let Some(mut prev) = start.prev.take() {
        let _ = prev.wait_for(|done| *done).await;
    }
    let (id, token, reg) = (start.id.clone(), start.token, start.reg.clone());
    let metrics = start.metrics.clone();
    match Instance::<A>::boot(start, table).await {
        Ok(instance) => Some(instance),
        Err((e, rx)) => {
            tracing::debug!(actor = A::NAME, %id, error = %e, "actor did not start");
            reg.finish(&id, token, &metrics);
            stop::drain(rx, &e);
            None
        }
    }
}

struct Instance<A: Actor> {
    /// The state. Only this task touches it.
    actor: A,
    /// The context without a calling connection; per-call contexts are clones of it.
    ctx: Ctx<A>,
    table: Arc<ActionTable<A>>,
    /// The type's settings, shared by all its instances.
    options: Arc<ActorOptions>,
    rx: MailboxRx,
    reg: Arc<RegistryInner>,
    token: u64,
    /// Answers still being computed; the actor stays awake while any is pending.
    deferred: Deferreds<A>,
    /// The last snapshot handed to the writer: the state to fall back to after a panic.
    last_snapshot: Vec<u8>,
    /// A `&mut self` method ran during the current message.
    dirty: bool,
    /// A `&mut self` method panicked during the current message.
    panicked: bool,
    /// Tells the next instance of this actor that this one has fully stopped. Made when the
    /// instance begins to stop, the only time anyone waits for it.
    done: Option<watch::Sender<bool>>,
    /// Connections whose link dropped, with the time their grace period ends.
    detached: detached::Detached,
    /// Who waits for an operator's destroy ([`Msg::Destroy`]) to finish.
    destroyed: Option<oneshot::Sender<()>>,
    /// The background run loop.
    runner: run_loop::Runner,
    /// The span of the message being handled, for tracing: its writes' commit becomes its
    /// child. Disabled between messages and whenever tracing is off (see [`crate::trace`]).
    trace: tracing::Span,
}

type BootError = (ActionError, MailboxRx);

impl<A: Actor> Instance<A> {
    /// Whether nothing keeps the actor awake: no pending answer, no raw WebSocket (or only
    /// ones it may park, with `hibernate_raw_websockets`), and no other connection, or only
    /// connections it may park while it sleeps (hibernation: attached ones; a connection whose
    /// link dropped waits out its grace period awake). Cheap: it runs after every message.
    fn idle(&self) -> bool {
        if !self.deferred.is_empty()
            || self.run_holds_awake()
            || self.ctx.shared.awake_holds.load(Ordering::Acquire) != 0
        {
            return false;
        }
        let raw = self.ctx.shared.raw_sockets().len();
        if raw != 0 && !self.options.hibernate_raw_websockets {
            return false;
        }
        // Each raw socket's connection is in the index too; those were counted above.
        let others = self.ctx.shared.conns().len().saturating_sub(raw);
        others == 0 || (self.options.hibernate_connections && self.detached.is_empty())
    }

    /// The actor's loop. What it waits for is small (messages arrive boxed) and everything
    /// it awaits besides is boxed, so an idle actor's task holds little more than the
    /// instance itself; the room a message needs is taken while it runs.
    ///
    /// Not an `async fn`: that would copy the instance from its argument into a local, and
    /// keep both in the task.
    ///
    /// `revived` is `None` for a new instance, which starts its run loop; a dormant instance
    /// back in a task of its own passes the time its idle stretch began.
    fn run(self, revived: Option<Instant>) -> impl Future<Output = ()> {
        let mut this = self;
        async move {
            let timeout = this.options.sleep_timeout;
            let dormant_after = this.options.dormant_after;
            let mut last_activity = revived.unwrap_or_else(Instant::now);
            // One timer for the idle timeout, going dormant and the end of the earliest grace
            // period. It may fire early; each firing checks what is due and sets it again.
            let first = dormant_after.map_or(timeout, |d| d.min(timeout));
            let timer = tokio::time::sleep_until(match revived {
                // A revival by the sweeper: the idle time is up now.
                Some(since) => (since + timeout).min(Instant::now() + first),
                None => Instant::now() + first,
            });
            tokio::pin!(timer);
            if revived.is_none() {
                this.start_run();
            }
            // Set when the actor waits for its run loop to return before sleeping.
            let mut sleep_after_run = false;
            loop {
                let can_sleep = !this.options.no_sleep && this.idle();
                let winding_until = this.runner.winding_until();
                if let Some(expiry) = this.next_expiry()
                    && expiry < timer.deadline()
                {
                    timer.as_mut().reset(expiry);
                }
                let wake = tokio::select! {
                    biased;
                    () = this.ctx.shared.gate.failure() => Wake::Failed,
                    msg = this.rx.recv() => Wake::Msg(msg),
                    Some(done) = this.deferred.next(), if !this.deferred.is_empty() => {
                        Wake::Done(Box::new(done))
                    }
                    () = &mut timer => Wake::Timer,
                    end = this.runner.ended(), if this.runner.is_active() => Wake::Run(Some(end)),
                    () = until(winding_until), if winding_until.is_some() => {
                        Wake::Run(None)
                    }
                };
                match wake {
                    Wake::Failed => {}
                    Wake::Msg(Some(msg)) => {
                        if let Msg::Stop { done } = *msg {
                            let stopping = Box::pin(this.stop(CloseReason::going_away()));
                            stopping.await;
                            let _ = done.send(());
                            return;
                        }
                        let id = this.ctx.shared.id.clone();
                        let handling = Box::pin(IN_MESSAGE.scope(id, this.handle(msg)));
                        handling.await;
                        // Idle from when the message ends, not when it began: a request or
                        // action that ran past the timeout leaves the actor a full timeout.
                        last_activity = Instant::now();
                        this.look_for_dormancy(timer.as_mut(), last_activity, dormant_after);
                    }
                    // Unreachable while `ctx` holds a sender; stop cleanly anyway.
                    Wake::Msg(None) => {
                        let stopping = Box::pin(this.stop(CloseReason::going_away()));
                        return stopping.await;
                    }
                    Wake::Done(done) => {
                        let id = this.ctx.shared.id.clone();
                        let completing = Box::pin(IN_MESSAGE.scope(id, this.complete(*done)));
                        completing.await;
                        last_activity = Instant::now();
                        this.look_for_dormancy(timer.as_mut(), last_activity, dormant_after);
                    }
                    Wake::Run(end) => {
                        match end {
                            Some(end) => this.run_ended(end),
                            None => this.abandon_run(),
                        }
                        if sleep_after_run && !this.runner.is_active() {
                            sleep_after_run = false;
                            let sleeping = Box::pin(this.try_sleep());
                            if sleeping.await {
                                return;
                            }
                            this.start_run();
                            last_activity = Instant::now();
                        }
                    }
                    Wake::Timer => {
                        let now = Instant::now();
                        if this.next_expiry().is_some_and(|t| t <= now) {
                            last_activity = now;
                            let expiring = Box::pin(this.expire_detached());
                            expiring.await;
                        } else if can_sleep
                            // Again now: a hold may have begun while the loop waited.
                            && this.idle()
                            && now >= last_activity + timeout
                        {
                            if this.wind_down_run() {
                                // Sleeps once the loop has returned (or its grace is over).
                                sleep_after_run = true;
                            } else {
                                let sleeping = Box::pin(this.try_sleep());
                                if sleeping.await {
                                    return;
                                }
                                last_activity = Instant::now();
                            }
                        } else if let Some(after) = dormant_after
                            && now >= last_activity + after
                            && this.may_go_dormant()
                        {
                            match dormant::park(this, last_activity) {
                                Ok(()) => return,
                                // A message came in meanwhile.
                                Err(back) => this = back,
                            }
                        }
                        // While the actor cannot sleep (a deferred answer, a connection),
                        // its idle time may be up already: look again a timeout from now,
                        // rather than at once and for ever. One that may go dormant looks
                        // again when its idle stretch is long enough.
                        let now = Instant::now();
                        let idle_until = last_activity + timeout;
                        let mut next = if idle_until > now {
                            idle_until
                        } else {
                            now + timeout
                        };
                        if let Some(after) = dormant_after
                            && this.may_go_dormant_soon()
                        {
                            next = next.min((last_activity + after).max(now + after / 8));
                        }
                        timer.as_mut().reset(next);
                    }
                }
                if this.ctx.shared.gate.has_failed() {
                    tracing::error!(actor = A::NAME, id = %this.ctx.shared.id, "a state write failed; stopping so the actor restarts from durable state");
                    // A public failure (such as `storage.unavailable`) tells clients what
                    // happened and whether to retry; others stay masked.
                    let error = this
                        .ctx
                        .shared
                        .gate
                        .failure_error()
                        .filter(ActionError::is_public)
                        .unwrap_or_else(|| ActionError::internal("storage"));
                    let reason = CloseReason::error(&error);
                    let stopping = Box::pin(this.stop(reason));
                    return stopping.await;
                }
                if this.ctx.shared.destroy_requested.load(Ordering::Acquire) {
                    if this.wind_down_run() {
                        continue;
                    }
                    let destroying = Box::pin(this.destroy());
                    return destroying.await;
                }
                if this.ctx.shared.sleep_requested.load(Ordering::Acquire)
                    && this.deferred.is_empty()
                {
                    if this.wind_down_run() {
                        continue;
                    }
                    let sleeping = Box::pin(this.try_sleep());
                    if sleeping.await {
                        return;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, msg: Box<Msg>) {
        self.begin();
        match *msg {
            Msg::Action {
                name,
                args,
                params,
                request,
                reply,
            } => {
                self.trace = self.traced("action", request.span(), Some(&name));
                let span = self.trace.clone();
                self.stateless_action(name, args, params, request, reply)
                    .instrument(span)
                    .await;
            }
            Msg::Connect {
                conn_id,
                link,
                params,
                request,
                sink,
                backlog,
            } => {
                self.trace = self.traced("connect", request.span(), None);
                let span = self.trace.clone();
                self.connect(conn_id, link, params, &request, (sink, backlog))
                    .instrument(span)
                    .await;
            }
            Msg::FromConn { conn_id, msg } => {
                let conn = self.ctx.conn_by_id(&conn_id);
                match (conn, msg) {
                    (Some(conn), ToServer::ActionRequest { id, name, args }) => {
                        let Some(sink) = conn.sink().cloned() else {
                            return self.end().await;
                        };
                        // Its span is a child of the span of the request that opened the
                        // connection.
                        self.trace = self.traced("action", conn.span(), Some(&name));
                        let span = self.trace.clone();
                        match self.invoke(&name, args, Some(conn)).instrument(span).await {
                            Invoked::Now(result) => {
                                crate::trace::outcome(&self.trace, &result);
                                self.reply_conn(&sink, id, result);
                            }
                            Invoked::Later(fut) => {
                                self.deferred.action(Waiter::Conn(sink, id), name, fut)
                            }
                        }
                    }
                    (
                        Some(conn),
                        ToServer::SubscriptionRequest {
                            event_name,
                            subscribe,
                        },
                    ) => {
                        if subscribe && let Err(e) = self.may_subscribe(&conn, &event_name) {
                            // As RivetKit 2.3 does: the error, then a 1011 close with its code.
                            return self.refuse_conn(conn, e).await;
                        }
                        let refused =
                            conn.set_subscribed(event_name.clone(), subscribe, &self.options);
                        if refused.is_ok() {
                            let mut conns = self.ctx.shared.conns();
                            if subscribe {
                                conns.subscribe(&conn_id, &event_name);
                            } else {
                                conns.unsubscribe(&conn_id, &event_name);
                            }
                        }
                        if let (Err(error), Some(sink)) = (refused, conn.sink()) {
                            let msg = ToClient::Error {
                                error,
                                action_id: None,
                            };
                            self.ctx.shared.gate.push(Output::ToConn(sink.clone(), msg));
                        }
                    }
                    (None, _) => tracing::debug!(%conn_id, "message for a closed connection"),
                    (Some(_), _) => tracing::debug!(%conn_id, "unknown connection message"),
                }
            }
            Msg::ConnClosed { conn_id, link } => {
                let current =
                    |c: &Conn<A>| link.is_none_or(|l| c.sink().is_some_and(|s| s.is_link(l)));
                if !self.ctx.conn_by_id(&conn_id).is_some_and(|c| current(&c)) {
                    tracing::debug!(%conn_id, "close from a superseded link ignored");
                } else if let Some(conn) = self.remove_conn(&conn_id) {
                    if let Some(sink) = conn.sink() {
                        sink.close(CloseReason::normal(""));
                    }
                    self.disconnect_hook(&conn).await;
                }
            }
            Msg::ConnLost { conn_id, link } => {
                let sink = self
                    .ctx
                    .conn_by_id(&conn_id)
                    .and_then(|c| c.sink().cloned());
                if let Some(sink) = sink.filter(|s| s.is_link(link)) {
                    sink.detach();
                    let until = Instant::now() + self.options.conn_grace;
                    self.detached.insert(conn_id, until);
                }
            }
            Msg::Resume {
                conn_id,
                slot,
                link,
                token,
                params,
                request,
                sink,
                backlog,
            } => {
                if self.ctx.conn_by_id(&conn_id).is_none() {
                    // Not kept here: a new connection, under an id the client did not choose.
                    let fresh = ConnId::new(random_id());
                    *slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
                    self.connect(fresh, link, params, &request, (sink, backlog))
                        .await;
                } else if !self.resume(&conn_id, link, &token, &sink, &backlog) {
                    let e = ActionError::new(
                        "connection",
                        "resume_refused",
                        "connection cannot be resumed",
                    );
                    let _ = sink.send(LinkEvent::Message(ToClient::Error {
                        error: e.clone(),
                        action_id: None,
                    }));
                    let _ = sink.send(LinkEvent::Closed(CloseReason::error(&e)));
                }
            }
            Msg::Alarm { alarm_id } => self.fire_alarm(alarm_id).await,
            Msg::Request {
                params,
                request,
                reply,
            } => self.raw_request(params, request, reply).await,
            Msg::WsOpen {
                socket,
                params,
                request,
                tx,
            } => self.ws_open(socket, params, request, tx).await,
            Msg::WsMessage { socket, msg } => self.ws_message(socket, msg).await,
            Msg::WsClosed {
                socket,
                code,
                reason,
            } => self.ws_closed(socket, code, &reason).await,
            Msg::Stop { done } => {
                let _ = done.send(());
            }
            Msg::Queue(op) => self.queue_op(op).await,
            Msg::Destroy { done } => {
                self.destroyed = Some(done);
                self.ctx
                    .shared
                    .destroy_requested
                    .store(true, Ordering::Release);
            }
            Msg::Inspect(msg) => self.inspect(msg).await,
        }
        self.end().await;
        self.trace = tracing::Span::none();
    }

    /// The span, for tracing, of a message: a child of `parent` (the span of the request it
    /// came with, or of the request that opened its connection; a root span when `parent` is
    /// disabled), naming the actor, its key and the action. Disabled when tracing is off.
    pub(super) fn traced(
        &self,
        kind: &'static str,
        parent: &tracing::Span,
        action: Option<&str>,
    ) -> tracing::Span {
        tracing::trace_span!(
            target: crate::trace::TARGET,
            parent: parent,
            "message",
            otel.name = format_args!("{} {}", A::NAME, action.unwrap_or(kind)),
            actor.name = A::NAME,
            actor.key = %self.ctx.shared.key,
            actor.id = %self.ctx.shared.id,
            actor.message = kind,
            actor.action = action,
            error.type = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        )
    }
}
