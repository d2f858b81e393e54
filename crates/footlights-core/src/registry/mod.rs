//! The registry: actor types by name, live actors by id, and the way in for every caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use footlights_client::{Client, Link, Target};
use footlights_protocol::{ActionError, ActorId, ActorKey, ConnId, Value};
use footlights_storage::cluster::Cluster;
use footlights_storage::{ActorMeta, CreateOutcome, Driver, MemoryDriver, StorageError, Write};
use tokio::sync::{mpsc, oneshot, watch};

use crate::actor::{ActionTable, Actor};
use crate::clock::ClockHandle;
use crate::cluster::{ClusterConfig, Membership, Placement};
use crate::conn::ConnRequest;
use crate::instance::{self, INPUT_KEY, Mailbox, MailboxRx, Msg, Start};
use crate::local::LocalLink;
use crate::metrics::{ActorTypeMetrics, RuntimeMetrics, StorageMetrics};
use crate::raw::{RawLink, RawLinkSender, RawRequest, RawResponse, RawRoute};
use crate::snapshot;
use crate::writer::Writer;

mod builder;
mod cluster;
mod inner;
mod inspect;
mod preload;
mod queue;

pub use builder::{DEFAULT_MAX_KEY_BYTES, RegistryBuilder};
pub(crate) use inner::RegistryInner;

/// Starts instances of one actor type.
trait ActorType: Send + Sync {
    fn spawn(&self, start: Start);
    /// Whether the type's raw WebSockets may hibernate with their actor
    /// ([`ActorOptions::hibernate_raw_websockets`](crate::ActorOptions::hibernate_raw_websockets)).
    fn hibernates_raw_websockets(&self) -> bool;
}

struct TypeOf<A: Actor>(Arc<ActionTable<A>>);

impl<A: Actor> ActorType for TypeOf<A> {
    fn spawn(&self, start: Start) {
        tokio::spawn(instance::run::<A>(start, self.0.clone()));
    }

    fn hibernates_raw_websockets(&self) -> bool {
        self.0.options.hibernate_raw_websockets
    }
}

enum SlotState {
    /// The live instance's mailbox.
    Running(Mailbox),
    /// The instance is saving and stopping; a new one must wait for this to turn true.
    /// Boxed, so the slot of every running actor is 8 bytes smaller.
    Stopping(Box<watch::Receiver<bool>>),
}

struct Slot {
    /// Which instance owns the slot, so a stopping one never frees its successor's slot.
    token: u64,
    state: SlotState,
    /// When the instance was started, milliseconds since the Unix epoch.
    started_ms: i64,
}

/// How many actors a registry remembers beyond the awake ones by default
/// ([`RegistryBuilder::remembered_actors`]).
pub const DEFAULT_REMEMBERED_ACTORS: usize = 65_536;

/// When an actor last started and went to sleep, as this registry saw it
/// ([`Registry::actor_times`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorTimes {
    /// When its current instance (if awake) or its last one started, milliseconds since the
    /// Unix epoch; `None` if it has not started since the registry did.
    pub started_at_ms: Option<i64>,
    /// When it last went to sleep (or stopped), milliseconds since the Unix epoch; `None`
    /// while it is awake, or if the registry has not seen it stop.
    pub slept_at_ms: Option<i64>,
}

impl ActorTimes {
    /// Whether the actor is awake now.
    pub fn is_awake(&self) -> bool {
        self.started_at_ms.is_some() && self.slept_at_ms.is_none()
    }
}

/// The actor types of an application and their live actors.
///
/// ```
/// # use footlights_core::Registry;
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::builder() /* .actor::<Counter>() */ .start().await?;
/// let client = registry.client(); // in-process: no network, no auth
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

impl Registry {
    /// The registry over its shared state (for the in-process transport, which holds only a
    /// weak reference to it).
    pub(crate) fn from_inner(inner: Arc<RegistryInner>) -> Registry {
        Registry { inner }
    }

    /// A builder with no actor types.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::new()
    }

    /// A client that calls actors in this process, with no network and no authentication.
    pub fn client(&self) -> Client {
        self.inner.client()
    }

    /// The registered actor type names.
    pub fn actor_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.inner.types.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// The storage driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.inner.driver
    }

    /// Finds or creates the actor a target names.
    ///
    /// # Errors
    /// `actor.not_found` for unknown names or missing `get` targets; storage failures.
    pub async fn resolve(&self, target: &Target) -> Result<ActorId, ActionError> {
        self.inner.resolve(target).await
    }

    /// Creates an actor; `actor.duplicate_key` if the key is taken.
    ///
    /// # Errors
    /// As described, plus storage failures.
    pub async fn create(
        &self,
        name: &str,
        key: &ActorKey,
        input: Option<Value>,
    ) -> Result<ActorId, ActionError> {
        self.inner.create(name, key, input).await
    }

    /// The metadata of an actor, if it exists.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn actor_meta(&self, id: &ActorId) -> Result<Option<ActorMeta>, ActionError> {
        self.inner
            .driver
            .actor(id)
            .await
            .map_err(|e| ActionError::internal(e.to_string()))
    }

    /// Calls an action statelessly, as an HTTP request does: a short-lived connection with
    /// `params` and the `request` runs the connect hooks around the action.
    ///
    /// # Errors
    /// The actor's error (masked if not public).
    pub async fn call(
        &self,
        target: &Target,
        name: &str,
        args: Vec<Value>,
        params: Option<Value>,
        request: ConnRequest,
    ) -> Result<Value, ActionError> {
        let id = self.inner.resolve(target).await?;
        self.inner
            .call(target.name(), &id, name, args, params, request)
            .await
    }

    /// Opens a connection, as a WebSocket does. The link's first message is `Init`, or an
    /// error followed by a close.
    ///
    /// # Errors
    /// When the actor cannot be found or started.
    pub async fn connect(
        &self,
        target: &Target,
        params: Option<Value>,
        request: ConnRequest,
    ) -> Result<Link, ActionError> {
        let id = self.inner.resolve(target).await?;
        self.inner.connect(target.name(), &id, params, request)
    }

    /// Opens a connection that takes over a dropped one: if connection `conn_id` is still
    /// kept (its link dropped less than the grace period ago) and `token` matches, the new
    /// link gets it back with its state and subscriptions. If no such connection is kept, a
    /// new one is opened as [`connect`](Self::connect) would, under a **fresh** id (a client
    /// never chooses an id: asking for another actor's or another client's id gets nothing of
    /// theirs); if one is kept but the token does not match, the link is refused
    /// (`connection.resume_refused`).
    ///
    /// # Errors
    /// When the actor cannot be found or started.
    pub async fn resume(
        &self,
        target: &Target,
        params: Option<Value>,
        request: ConnRequest,
        conn_id: ConnId,
        token: String,
    ) -> Result<Link, ActionError> {
        let id = self.inner.resolve(target).await?;
        let (sink, events) = mpsc::unbounded_channel();
        let link = self.inner.next_link.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Mutex::new(conn_id.clone()));
        let backlog = footlights_client::Backlog::default();
        let msg = Msg::Resume {
            conn_id,
            slot: slot.clone(),
            link,
            token,
            params,
            request,
            sink,
            backlog: backlog.clone(),
        };
        let mailbox = self.inner.send(target.name(), &id, Some(msg))?;
        let to = crate::local::Address::new(
            Arc::downgrade(&self.inner),
            target.name(),
            id.clone(),
            mailbox,
        );
        Ok(Link {
            sender: Box::new(LocalLink::with_slot(to, slot, link)),
            events,
            backlog,
        })
    }

    /// Hands a raw HTTP request to the actor's request handler
    /// ([`Actor::on_request`](crate::Actor::on_request)), with a short-lived connection built
    /// from `params` and the request.
    ///
    /// # Errors
    /// `handler.request_not_defined` (404) when the actor has no handler,
    /// `handler.invalid_request_handler_response` (500) when its handler made no response; the
    /// connect hooks' and the handler's errors.
    pub async fn request(
        &self,
        target: &Target,
        params: Option<Value>,
        request: RawRequest,
    ) -> Result<RawResponse, ActionError> {
        let id = self.inner.resolve(target).await?;
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Request {
            params,
            request,
            reply,
        };
        self.inner.send(target.name(), &id, Some(msg))?;
        rx.await.unwrap_or_else(|_| Err(ActionError::stopping()))
    }

    /// Opens a raw WebSocket to the actor
    /// ([`Actor::on_websocket`](crate::Actor::on_websocket)). The link's first event is
    /// [`RawEvent::Open`](crate::RawEvent::Open), or a close if the actor refused it
    /// (`handler.websocket_not_defined` when it has no handler).
    ///
    /// # Errors
    /// When the actor cannot be found or started.
    pub async fn websocket(
        &self,
        target: &Target,
        params: Option<Value>,
        request: ConnRequest,
    ) -> Result<RawLink, ActionError> {
        let id = self.inner.resolve(target).await?;
        // Random rather than counted: an id the actor keeps in its state outlives a restart
        // of the process, and must not name a socket opened after it.
        let socket = rand::random::<u64>();
        let (tx, events) = mpsc::unbounded_channel();
        let msg = Msg::WsOpen {
            socket,
            params,
            request,
            tx,
        };
        let name = target.name();
        let mailbox = self.inner.send(name, &id, Some(msg))?;
        let hibernates = self
            .inner
            .types
            .get(name)
            .is_some_and(|ty| ty.hibernates_raw_websockets());
        let to = if hibernates {
            RawRoute::Actor(crate::local::Address::new(
                Arc::downgrade(&self.inner),
                name,
                id,
                mailbox,
            ))
        } else {
            RawRoute::Instance(mailbox)
        };
        Ok(RawLink {
            sender: RawLinkSender { to, socket },
            events,
        })
    }

    /// Destroys an actor, as its own `ctx.destroy()` would: wakes it if it sleeps, runs its
    /// destroy hook, closes its connections and deletes its state, alarms and key-value store.
    /// Returns once it is gone; `false` if there was no such actor.
    ///
    /// # Errors
    /// Storage failures while looking the actor up.
    pub async fn destroy(&self, id: &ActorId) -> Result<bool, ActionError> {
        let Some(meta) = self.actor_meta(id).await? else {
            return Ok(false);
        };
        let (done, gone) = oneshot::channel();
        self.inner
            .send(&meta.name, id, Some(Msg::Destroy { done }))?;
        // The sender is answered, or dropped if another destroy took over: gone either way.
        let _ = gone.await;
        Ok(true)
    }

    /// Saves and stops every live actor (running their sleep hooks) and waits for the last
    /// writes, and for the tasks of [`Ctx::wait_until`](crate::Ctx::wait_until) (each actor's
    /// at most its run grace), of actors already going to sleep too. Connections are closed
    /// with "going away". A clustered node then releases its
    /// actors (each as it stops, so other nodes can take them at once) and leaves the
    /// cluster.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        self.inner.stop_all().await;
        if let Some(membership) = self.inner.membership() {
            membership.leave().await;
        }
    }

    /// Where the actor `id` is served: [`Placement::Local`] for a registry that runs alone or
    /// for an actor this node holds (claiming it if no live node does), otherwise the peer
    /// address of the node that holds it. A server forwards requests for remote actors there.
    ///
    /// # Errors
    /// `actor.not_found` for an unknown actor; `actor.restarting` (retryable) while this node
    /// cannot confirm its cluster lease; storage failures.
    pub async fn placement(&self, id: &ActorId) -> Result<Placement, ActionError> {
        self.inner.placement(id).await
    }

    /// Resolves once the cluster node `node` (an incarnation, as in [`Placement::Remote`]) is
    /// no longer live, as this node sees it (it reads the live nodes after each renewal of its
    /// own lease). Never resolves for a registry that runs alone. A server forwarding a request
    /// to `node` gives up when this resolves: a paused or cut-off node holds requests without
    /// answering.
    pub fn node_gone(&self, node: &str) -> futures::future::BoxFuture<'static, ()> {
        match self.inner.membership() {
            Some(membership) => Box::pin(membership.gone(node)),
            None => Box::pin(std::future::pending()),
        }
    }

    /// Forgets the cached owner of `id`: a server calls this when the node it was told holds
    /// the actor does not answer, so that the next [`placement`](Self::placement) asks the
    /// database again.
    pub fn forget_placement(&self, id: &ActorId) {
        if let Some(membership) = self.inner.membership() {
            membership.forget_route(id);
        }
    }

    /// The node lease of a clustered registry ([`ClusterConfig::lease`]); `None` for one that
    /// runs alone.
    pub fn cluster_lease(&self) -> Option<Duration> {
        self.inner.membership().map(|m| m.config().lease_duration())
    }

    /// This node's cluster incarnation (name and start), or `None` when the registry runs
    /// alone. It changes when the node joins again after losing its lease.
    pub fn node(&self) -> Option<String> {
        self.inner
            .membership()
            .map(|m| m.incarnation().as_str().to_owned())
    }

    /// How many connections are kept for their clients to resume (their links dropped less
    /// than the grace period ago). A server counts them with its open connections against its
    /// connection limit.
    pub fn kept_connections(&self) -> usize {
        self.inner.kept.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many actors are awake.
    pub fn awake_count(&self) -> usize {
        self.inner.slots().len()
    }

    /// What the runtime has counted since it started: actions, wakes and sleeps per actor
    /// type, events sent, group commits. For exporters such as the server's `/metrics`.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.inner.metrics
    }

    /// When an actor last started and went to sleep. Kept in memory: an awake actor's start
    /// time, and the times of the most recently stopped ones (the last 10,000, about 1.5 MB);
    /// an actor this registry has not started, or has forgotten, has neither.
    pub fn actor_times(&self, id: &ActorId) -> ActorTimes {
        if let Some(slot) = self.inner.slots().get(id) {
            return ActorTimes {
                started_at_ms: Some(slot.started_ms),
                slept_at_ms: None,
            };
        }
        self.inner
            .slept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .peek(id)
            .copied()
            .unwrap_or_default()
    }
}
