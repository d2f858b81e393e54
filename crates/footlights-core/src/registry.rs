//! The registry: actor types by name, live actors by id, and the way in for every caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use footlights_client::{Client, Link, Target};
use footlights_protocol::{ActionError, ActorId, ActorKey, ConnId, Value};
use footlights_storage::{ActorMeta, CreateOutcome, Driver, MemoryDriver, StorageError, Write};
use tokio::sync::{mpsc, oneshot, watch};

use crate::actor::{ActionTable, Actor};
use crate::clock::ClockHandle;
use crate::conn::ConnRequest;
use crate::instance::{self, INPUT_KEY, Mailbox, MailboxRx, Msg, Start};
use crate::local::{LocalLink, LocalTransport};
use crate::raw::{RawLink, RawLinkSender, RawRequest, RawResponse};
use crate::snapshot;
use crate::writer::Writer;

/// Starts instances of one actor type.
trait ActorType: Send + Sync {
    fn spawn(&self, start: Start);
}

struct TypeOf<A: Actor>(Arc<ActionTable<A>>);

impl<A: Actor> ActorType for TypeOf<A> {
    fn spawn(&self, start: Start) {
        tokio::spawn(instance::run::<A>(start, self.0.clone()));
    }
}

enum SlotState {
    /// The live instance's mailbox.
    Running(Mailbox),
    /// The instance is saving and stopping; a new one must wait for this to turn true.
    Stopping(watch::Receiver<bool>),
}

struct Slot {
    /// Which instance owns the slot, so a stopping one never frees its successor's slot.
    token: u64,
    state: SlotState,
}

/// Builds a [`Registry`].
#[must_use]
pub struct RegistryBuilder {
    types: HashMap<&'static str, Arc<dyn ActorType>>,
    driver: Option<Arc<dyn Driver>>,
    max_key_bytes: usize,
}

/// The longest actor key a registry creates by default, in bytes: its parts' lengths plus one
/// per part. See [`RegistryBuilder::max_key_bytes`].
pub const DEFAULT_MAX_KEY_BYTES: usize = 1024;

impl std::fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("types", &self.types.keys())
            .finish_non_exhaustive()
    }
}

impl RegistryBuilder {
    /// Registers an actor type under its name (`A::NAME`).
    pub fn actor<A: Actor>(mut self) -> Self {
        let mut table = ActionTable::new();
        A::actions(&mut table);
        self.types
            .insert(A::NAME, Arc::new(TypeOf::<A>(Arc::new(table))));
        self
    }

    /// Where state is kept. Without one, a [`MemoryDriver`] is used (nothing survives a
    /// restart).
    pub fn driver(mut self, driver: impl Driver) -> Self {
        self.driver = Some(Arc::new(driver));
        self
    }

    /// The longest key an actor may be created with, counted as its parts' lengths in bytes
    /// plus one per part ([`DEFAULT_MAX_KEY_BYTES`] by default). Creating (or getting or
    /// creating) an actor with a longer key fails with `actor.key_too_long`, so that no caller
    /// can make the store keep arbitrarily large keys; looking one up finds nothing.
    ///
    /// ```
    /// # use footlights_core::Registry;
    /// let builder = Registry::builder().max_key_bytes(256);
    /// ```
    pub fn max_key_bytes(mut self, bytes: usize) -> Self {
        self.max_key_bytes = bytes;
        self
    }

    /// Like [`driver`](Self::driver), for a driver that is already shared.
    pub fn shared_driver(mut self, driver: Arc<dyn Driver>) -> Self {
        self.driver = Some(driver);
        self
    }

    /// Starts the registry on the current tokio runtime: the writer, the alarm clock (with
    /// every stored alarm), and the in-process client.
    ///
    /// # Errors
    /// When stored alarms cannot be read.
    pub async fn start(self) -> Result<Registry, StorageError> {
        let driver = self.driver.unwrap_or_else(|| Arc::new(MemoryDriver::new()));
        let inner = Arc::new_cyclic(|weak: &Weak<RegistryInner>| {
            let fire_to = weak.clone();
            let clock = ClockHandle::spawn(move |name, actor, alarm_id| {
                if let Some(reg) = fire_to.upgrade() {
                    let _ = reg.send(name, actor, Some(Msg::Alarm { alarm_id }));
                }
            });
            RegistryInner {
                types: self.types,
                writer: Writer::spawn(driver.clone()),
                driver,
                clock,
                slots: Mutex::default(),
                keys: Mutex::default(),
                next_token: AtomicU64::new(1),
                next_link: AtomicU64::new(1),
                max_key_bytes: self.max_key_bytes,
                kept: Arc::default(),
                me: weak.clone(),
            }
        });
        let now = SystemTime::now();
        let mut names: HashMap<ActorId, Option<String>> = HashMap::new();
        for (actor, alarm) in inner.driver.all_alarms().await? {
            if !names.contains_key(&actor) {
                let meta = inner.driver.actor(&actor).await?;
                names.insert(actor.clone(), meta.map(|m| m.name));
            }
            if let Some(Some(name)) = names.get(&actor) {
                let at = SystemTime::UNIX_EPOCH + Duration::from_millis(alarm.at_ms.max(0) as u64);
                let delay = at.duration_since(now).unwrap_or_default();
                inner.clock.add(name, &actor, &alarm.id, delay);
            }
        }
        Ok(Registry { inner })
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
    /// A builder with no actor types.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            types: HashMap::new(),
            driver: None,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
        }
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
        let msg = Msg::Resume {
            conn_id,
            slot: slot.clone(),
            link,
            token,
            params,
            request,
            sink,
        };
        let mailbox = self.inner.send(target.name(), &id, Some(msg))?;
        Ok(Link {
            sender: Box::new(LocalLink::with_slot(mailbox, slot, link)),
            events,
        })
    }

    /// Hands a raw HTTP request to the actor's request handler
    /// ([`Actor::on_request`](crate::Actor::on_request)), with a short-lived connection built
    /// from `params` and the request.
    ///
    /// # Errors
    /// `handler.request_not_defined` (404) when the actor has no handler; the connect hooks'
    /// and the handler's errors.
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
        match rx.await.unwrap_or_else(|_| Err(ActionError::stopping()))? {
            Some(response) => Ok(response),
            None => Err(ActionError::new(
                "handler",
                "request_not_defined",
                "the actor has no raw HTTP handler",
            )),
        }
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
        let socket = self.inner.next_link.fetch_add(1, Ordering::Relaxed);
        let (tx, events) = mpsc::unbounded_channel();
        let msg = Msg::WsOpen {
            socket,
            params,
            request,
            tx,
        };
        let mailbox = self.inner.send(target.name(), &id, Some(msg))?;
        Ok(RawLink {
            sender: RawLinkSender { mailbox, socket },
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
    /// writes. Connections are closed with "going away".
    pub async fn shutdown(&self) {
        let senders: Vec<_> = self
            .inner
            .slots()
            .values()
            .filter_map(|s| match &s.state {
                SlotState::Running(tx) => Some(tx.clone()),
                SlotState::Stopping(_) => None,
            })
            .collect();
        let mut waits = Vec::new();
        for tx in senders {
            let (done, rx) = oneshot::channel();
            if tx.send(Msg::Stop { done }).is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
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
}

pub(crate) struct RegistryInner {
    types: HashMap<&'static str, Arc<dyn ActorType>>,
    driver: Arc<dyn Driver>,
    writer: Writer,
    clock: ClockHandle,
    /// Live (or stopping) actors by id.
    slots: Mutex<HashMap<ActorId, Slot>>,
    /// Ids of actors by name and key, so repeated calls skip the storage lookup.
    keys: Mutex<HashMap<(String, ActorKey), ActorId>>,
    next_token: AtomicU64,
    /// Numbers client links, so an actor can tell a superseded link from the current one.
    next_link: AtomicU64,
    /// See [`RegistryBuilder::max_key_bytes`].
    max_key_bytes: usize,
    /// Connections whose link dropped and that are kept for a resume, across every actor.
    kept: Arc<std::sync::atomic::AtomicUsize>,
    me: Weak<RegistryInner>,
}

impl std::fmt::Debug for RegistryInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryInner")
            .field("types", &self.types.keys())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn storage(e: StorageError) -> ActionError {
    crate::writer::storage_error(&e)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn not_found(what: impl std::fmt::Display) -> ActionError {
    ActionError::actor_not_found(format!("actor {what} not found"))
}

impl RegistryInner {
    fn slots(&self) -> MutexGuard<'_, HashMap<ActorId, Slot>> {
        lock(&self.slots)
    }

    pub(crate) fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    pub(crate) fn clock(&self) -> ClockHandle {
        self.clock.clone()
    }

    pub(crate) fn client(&self) -> Client {
        Client::from_transport(LocalTransport::new(self.me.clone()))
    }

    fn check_type(&self, name: &str) -> Result<(), ActionError> {
        if self.types.contains_key(name) {
            Ok(())
        } else {
            Err(ActionError::actor_not_found(format!(
                "no actor type named `{name}`"
            )))
        }
    }

    /// The count of connections kept for a resume, for the sinks to keep up to date.
    pub(crate) fn kept_counter(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        self.kept.clone()
    }

    pub(crate) async fn resolve(&self, target: &Target) -> Result<ActorId, ActionError> {
        match target {
            Target::Id { name, id } => {
                self.check_type(name)?;
                Ok(id.clone())
            }
            Target::Get { name, key } => {
                self.check_type(name)?;
                if let Some(id) = lock(&self.keys).get(&(name.clone(), key.clone())) {
                    return Ok(id.clone());
                }
                let meta = self.driver.find_actor(name, key).await.map_err(storage)?;
                let meta = meta.ok_or_else(|| not_found(format_args!("{name}/{key}")))?;
                lock(&self.keys).insert((name.clone(), key.clone()), meta.id.clone());
                Ok(meta.id)
            }
            Target::GetOrCreate { name, key, input } => {
                self.check_type(name)?;
                if let Some(id) = lock(&self.keys).get(&(name.clone(), key.clone())) {
                    return Ok(id.clone());
                }
                // No lookup first: the create reports the actor that holds the key, if any,
                // from the same group commit.
                let (id, _) = self.insert(name, key, input.clone()).await?;
                Ok(id)
            }
            other => Err(ActionError::invalid_request(format!(
                "unsupported target {other:?}"
            ))),
        }
    }

    pub(crate) async fn create(
        &self,
        name: &str,
        key: &ActorKey,
        input: Option<Value>,
    ) -> Result<ActorId, ActionError> {
        self.check_type(name)?;
        match self.insert(name, key, input).await? {
            (id, true) => Ok(id),
            (existing, false) => Err(ActionError::duplicate_key(format!(
                "an actor `{name}` with key `{key}` already exists"
            ))
            .with_metadata(
                &[
                    ("key", key.to_string()),
                    ("existing_actor_id", existing.to_string()),
                ]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
            )),
        }
    }

    /// Records a new actor (or finds the one that holds the key) and starts it. Returns the
    /// id and whether this call created it. The actor and its create input are written in one
    /// group commit, and this returns once that commit is durable.
    async fn insert(
        &self,
        name: &str,
        key: &ActorKey,
        input: Option<Value>,
    ) -> Result<(ActorId, bool), ActionError> {
        let key_bytes: usize = key.parts().iter().map(|p| p.len() + 1).sum();
        if key_bytes > self.max_key_bytes {
            return Err(ActionError::new(
                "actor",
                "key_too_long",
                format!(
                    "an actor key of {key_bytes} bytes is over the limit of {}",
                    self.max_key_bytes
                ),
            ));
        }
        let id = ActorId::new(uuid::Uuid::new_v4().simple().to_string());
        let meta = ActorMeta::new(id.clone(), name, key.clone(), now_ms());
        let mut then = Vec::new();
        if let Some(input) = input.filter(|v| !v.is_null()) {
            then.push(Write::KvPut {
                actor: id.clone(),
                key: INPUT_KEY.to_vec(),
                value: snapshot::encode(&input)?,
            });
        }
        let (id, created) = match self.writer.create(meta, then).await? {
            CreateOutcome::Created => (id, true),
            CreateOutcome::Exists(existing) => (existing.id, false),
        };
        lock(&self.keys).insert((name.to_owned(), key.clone()), id.clone());
        if created {
            // Start it now so its create hooks run even if nobody calls it yet.
            self.send(name, &id, None)?;
        }
        Ok((id, created))
    }

    /// Delivers `msg` to the actor, starting an instance if none is awake. Returns the
    /// mailbox it went to.
    pub(crate) fn send(
        &self,
        name: &str,
        id: &ActorId,
        msg: Option<Msg>,
    ) -> Result<Mailbox, ActionError> {
        let Some(ty) = self.types.get(name) else {
            return Err(ActionError::actor_not_found(format!(
                "no actor type named `{name}`"
            )));
        };
        let mut slots = self.slots();
        let mut msg = msg;
        let mut prev = None;
        if let Some(slot) = slots.get(id) {
            match &slot.state {
                SlotState::Running(tx) => match msg {
                    None => return Ok(tx.clone()),
                    Some(m) => match tx.send(m) {
                        Ok(()) => return Ok(tx.clone()),
                        // The instance ended without freeing its slot: start a new one.
                        Err(mpsc::error::SendError(m)) => msg = Some(m),
                    },
                },
                SlotState::Stopping(done) => prev = Some(done.clone()),
            }
        }
        let Some(reg) = self.me.upgrade() else {
            return Err(ActionError::stopping());
        };
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = instance::mailbox::channel();
        if let Some(m) = msg {
            let _ = tx.send(m);
        }
        slots.insert(
            id.clone(),
            Slot {
                token,
                state: SlotState::Running(tx.clone()),
            },
        );
        drop(slots);
        ty.spawn(Start {
            id: id.clone(),
            token,
            rx,
            tx: tx.clone(),
            prev,
            reg,
        });
        Ok(tx)
    }

    pub(crate) async fn call(
        &self,
        name: &str,
        id: &ActorId,
        action: &str,
        args: Vec<Value>,
        params: Option<Value>,
        request: ConnRequest,
    ) -> Result<Value, ActionError> {
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Action {
            name: action.to_owned(),
            args,
            params,
            request,
            reply,
        };
        self.send(name, id, Some(msg))?;
        rx.await.unwrap_or_else(|_| Err(ActionError::stopping()))
    }

    pub(crate) fn connect(
        &self,
        name: &str,
        id: &ActorId,
        params: Option<Value>,
        request: ConnRequest,
    ) -> Result<Link, ActionError> {
        let (sink, events) = mpsc::unbounded_channel();
        let conn_id = ConnId::new(uuid::Uuid::new_v4().simple().to_string());
        let link = self.next_link.fetch_add(1, Ordering::Relaxed);
        let msg = Msg::Connect {
            conn_id: conn_id.clone(),
            link,
            params,
            request,
            sink,
        };
        let mailbox = self.send(name, id, Some(msg))?;
        Ok(Link {
            sender: Box::new(LocalLink::new(mailbox, conn_id, link)),
            events,
        })
    }

    /// An instance wants to stop. Refused (unless forced) while messages wait in its
    /// mailbox; otherwise later messages start a new instance that waits for `done`.
    pub(crate) fn begin_stop(
        &self,
        id: &ActorId,
        token: u64,
        rx: &MailboxRx,
        done: watch::Receiver<bool>,
        force: bool,
    ) -> bool {
        let mut slots = self.slots();
        if !force && !rx.is_empty() {
            return false;
        }
        if let Some(slot) = slots.get_mut(id)
            && slot.token == token
        {
            slot.state = SlotState::Stopping(done);
        }
        true
    }

    /// An instance stopped: free its slot unless a newer instance holds it.
    pub(crate) fn finish(&self, id: &ActorId, token: u64) {
        let mut slots = self.slots();
        if slots.get(id).is_some_and(|s| s.token == token) {
            slots.remove(id);
        }
    }

    /// A destroyed actor's key is free again.
    pub(crate) fn forget(&self, name: &str, key: &ActorKey, id: &ActorId) {
        let mut keys = lock(&self.keys);
        let k = (name.to_owned(), key.clone());
        if keys.get(&k) == Some(id) {
            keys.remove(&k);
        }
    }
}
