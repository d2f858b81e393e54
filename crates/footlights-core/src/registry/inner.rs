//! [`RegistryInner`]: what every handle of a registry shares: the actor types, the live
//! actors' slots, the key cache, the writer and the clock; finding, creating and waking actors.

use super::*;

pub(crate) struct RegistryInner {
    pub(super) types: HashMap<&'static str, Arc<dyn ActorType>>,
    pub(super) driver: Arc<dyn Driver>,
    pub(super) writer: Writer,
    pub(super) clock: ClockHandle,
    /// Where awake actors with nothing to do wait without a task of their own.
    pub(super) dormant: crate::instance::dormant::PoolHandle,
    /// Live (or stopping) actors by id.
    pub(super) slots: Mutex<HashMap<ActorId, Slot>>,
    /// Ids of actors by name and key, so repeated calls skip the storage lookup; the most
    /// recently used [`remembered`](Self::remembered) besides the awake actors only.
    /// The name is the type's own `&'static str`, so an entry holds no copy of it.
    pub(super) keys: Mutex<lru::LruCache<(&'static str, ActorKey), ActorId>>,
    /// See [`RegistryBuilder::remembered_actors`].
    pub(super) remembered: usize,
    pub(super) next_token: AtomicU64,
    /// Numbers client links, so an actor can tell a superseded link from the current one.
    pub(super) next_link: AtomicU64,
    /// See [`RegistryBuilder::max_key_bytes`].
    pub(super) max_key_bytes: usize,
    /// Connections whose link dropped and that are kept for a resume, across every actor.
    pub(super) kept: Arc<std::sync::atomic::AtomicUsize>,
    /// The connections of sleeping actors whose sockets stay open (hibernation), by actor:
    /// each entry the connections and raw WebSockets (a `Hibernated<A>`) of the actor's type,
    /// taken back by its next instance.
    pub(super) parked: Mutex<HashMap<ActorId, Box<dyn std::any::Any + Send>>>,
    /// This node's cluster membership; `None` for a registry that runs alone.
    pub(super) cluster: Option<Arc<crate::cluster::Membership>>,
    /// Set by [`Registry::shutdown`]: background work ends.
    pub(super) stopped: std::sync::atomic::AtomicBool,
    /// The start and sleep times of the actors that stopped most recently.
    pub(super) slept: Mutex<lru::LruCache<ActorId, ActorTimes>>,
    /// What key lookups read of sleeping actors, for their next instances.
    pub(super) preloads: Mutex<super::preload::Preloads>,
    /// The counts of each actor type, by name.
    pub(super) type_metrics: HashMap<&'static str, Arc<ActorTypeMetrics>>,
    /// Everything counted, for [`Registry::metrics`].
    pub(super) metrics: Arc<RuntimeMetrics>,
    pub(super) me: Weak<RegistryInner>,
    /// The in-process client every actor's context and [`Registry::client`] clone: it holds
    /// only the weak handle above, so one serves all.
    pub(super) client: Client,
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
    pub(super) fn slots(&self) -> MutexGuard<'_, HashMap<ActorId, Slot>> {
        lock(&self.slots)
    }

    pub(crate) fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    pub(crate) fn dormant_pool(&self) -> &crate::instance::dormant::PoolHandle {
        &self.dormant
    }

    pub(crate) fn clock(&self) -> ClockHandle {
        self.clock.clone()
    }

    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// The registered type's own name (`'static`), or `actor.not_found`.
    pub(super) fn check_type(&self, name: &str) -> Result<&'static str, ActionError> {
        match self.types.get_key_value(name) {
            Some((&name, _)) => Ok(name),
            None => Err(ActionError::actor_not_found(format!(
                "no actor type named `{name}`"
            ))),
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
                let name = self.check_type(name)?;
                if let Some(id) = lock(&self.keys).get(&(name, key.clone())) {
                    return Ok(id.clone());
                }
                self.look_up(name, key)
                    .await?
                    .ok_or_else(|| not_found(format_args!("{name}/{key}")))
            }
            Target::GetOrCreate { name, key, input } => {
                let name = self.check_type(name)?;
                if let Some(id) = lock(&self.keys).get(&(name, key.clone())) {
                    return Ok(id.clone());
                }
                // A read first: an actor that exists (asleep, or no longer remembered) is
                // found on a read connection beside the commits, where a create would wait
                // for a group commit (and its fsync) to learn the key is taken. A key read
                // as free is created in the writer's transaction, which reports the actor
                // that holds it if another caller created it meanwhile.
                if let Some(id) = self.look_up(name, key).await? {
                    return Ok(id);
                }
                let (id, _) = self.insert(name, key, input.clone()).await?;
                Ok(id)
            }
            other => Err(ActionError::invalid_request(format!(
                "unsupported target {other:?}"
            ))),
        }
    }

    /// The id of the actor of `name` and `key`, read from the store and remembered from now
    /// on; `None` if no actor holds the key. Alone, the read also brings the actor's state
    /// and alarms (one job for the store), kept for its next instance if it is asleep, so
    /// that waking it for the call that follows reads nothing more (see
    /// [`Preloads`](super::preload::Preloads)).
    async fn look_up(
        &self,
        name: &'static str,
        key: &ActorKey,
    ) -> Result<Option<ActorId>, ActionError> {
        if self.cluster.is_some() {
            let meta = self.driver.find_actor(name, key).await.map_err(storage)?;
            return Ok(meta.map(|meta| {
                self.remember_key(name, key, &meta.id);
                meta.id
            }));
        }
        let mark = lock(&self.preloads).mark();
        let Some(loaded) = self
            .driver
            .load_actor_by_key(name, key)
            .await
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let id = loaded.meta.id.clone();
        self.remember_key(name, key, &id);
        let slots = self.slots();
        if !slots.contains_key(&id) {
            lock(&self.preloads).keep(loaded, mark);
        }
        Ok(Some(id))
    }

    pub(crate) async fn create(
        &self,
        name: &str,
        key: &ActorKey,
        input: Option<Value>,
    ) -> Result<ActorId, ActionError> {
        let name = self.check_type(name)?;
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
        name: &'static str,
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
        // Time-ordered (version 7): a new actor's rows go at the end of the id indexes, not on
        // a random page of each (a third of the bytes written when creating many actors).
        let id = ActorId::new(uuid::Uuid::now_v7().simple().to_string());
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
        self.remember_key(name, key, &id);
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
        let mut slots = self.slots();
        self.send_locked(&mut slots, name, id, msg)
    }

    /// [`send`](Self::send), with the slots already locked.
    fn send_locked(
        &self,
        slots: &mut HashMap<ActorId, Slot>,
        name: &str,
        id: &ActorId,
        msg: Option<Msg>,
    ) -> Result<Mailbox, ActionError> {
        let (Some(ty), Some(metrics)) = (self.types.get(name), self.type_metrics.get(name)) else {
            return Err(ActionError::actor_not_found(format!(
                "no actor type named `{name}`"
            )));
        };
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
                SlotState::Stopping(done) => prev = Some((**done).clone()),
            }
        }
        let Some(reg) = self.me.upgrade() else {
            return Err(ActionError::stopping());
        };
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        // What a key lookup read, unless the new instance must wait for a stopping one (whose
        // last writes came after the read).
        let preloaded = lock(&self.preloads).take(id).filter(|_| prev.is_none());
        let (tx, rx) = instance::mailbox::channel();
        if let Some(m) = msg {
            let _ = tx.send(m);
        }
        let replaced = slots.insert(
            id.clone(),
            Slot {
                token,
                state: SlotState::Running(tx.clone()),
                started_ms: now_ms(),
            },
        );
        metrics.woke();
        if let Some(old) = replaced {
            // The old instance is stopping (or ended without freeing its slot): it counts as
            // stopped now, since its `finish` will find the slot taken.
            self.stopped(id, &old, metrics, slots.len());
        }
        ty.spawn(Start {
            id: id.clone(),
            token,
            rx,
            tx: tx.clone(),
            prev,
            reg,
            metrics: metrics.clone(),
            preloaded,
        });
        Ok(tx)
    }

    /// A sleeping instance closes its mailbox: what arrived since it began to stop (from
    /// links that still held its mailbox) goes to the next instance, started for it if need
    /// be, ahead of anything those links send from now on (they find the mailbox closed and
    /// come here, behind the slots' lock).
    pub(crate) fn close_and_forward(&self, name: &str, id: &ActorId, rx: &mut MailboxRx) {
        let mut slots = self.slots();
        rx.close();
        while let Some(msg) = rx.try_recv() {
            if let Err(e) = self.send_locked(&mut slots, name, id, Some(msg)) {
                tracing::debug!(actor = name, %id, error = %e, "a message for a sleeping actor was dropped");
            }
        }
    }

    /// Keeps a sleeping actor's connections and raw WebSockets (a `Hibernated<A>`) for its next
    /// instance.
    pub(crate) fn park(&self, id: &ActorId, conns: Box<dyn std::any::Any + Send>) {
        lock(&self.parked).insert(id.clone(), conns);
    }

    /// Whether a sleeping actor's connections are kept for its next instance.
    pub(crate) fn has_parked(&self, id: &ActorId) -> bool {
        lock(&self.parked).contains_key(id)
    }

    /// The connections a sleeping actor left, if any.
    pub(crate) fn unpark(&self, id: &ActorId) -> Option<Box<dyn std::any::Any + Send>> {
        lock(&self.parked).remove(id)
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
        let backlog = footlights_client::Backlog::default();
        let msg = Msg::Connect {
            conn_id: conn_id.clone(),
            link,
            params,
            request,
            sink,
            backlog: backlog.clone(),
        };
        let mailbox = self.send(name, id, Some(msg))?;
        let to = crate::local::Address::new(self.me.clone(), name, id.clone(), mailbox);
        Ok(Link {
            sender: Box::new(LocalLink::new(to, conn_id, link)),
            events,
            backlog,
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
            slot.state = SlotState::Stopping(Box::new(done));
        }
        true
    }

    /// An instance stopped: free its slot unless a newer instance holds it. `metrics` are
    /// the counts of its type.
    pub(crate) fn finish(&self, id: &ActorId, token: u64, metrics: &ActorTypeMetrics) {
        let mut slots = self.slots();
        if slots.get(id).is_some_and(|s| s.token == token)
            && let Some(slot) = slots.remove(id)
        {
            self.stopped(id, &slot, metrics, slots.len());
        }
    }

    /// Counts an instance as stopped and remembers its times; `awake` actors remain. The
    /// keys remembered for the actors that were awake shrink back to the bound.
    fn stopped(&self, id: &ActorId, slot: &Slot, metrics: &ActorTypeMetrics, awake: usize) {
        metrics.slept();
        lock(&self.preloads).stopped(id);
        {
            let mut slept = lock(&self.slept);
            slept.put(
                id.clone(),
                ActorTimes {
                    started_at_ms: Some(slot.started_ms),
                    slept_at_ms: Some(now_ms()),
                },
            );
            while slept.len() > self.remembered {
                slept.pop_lru();
            }
        }
        let mut keys = lock(&self.keys);
        while keys.len() > self.remembered.saturating_add(awake) {
            keys.pop_lru();
        }
    }

    /// `key`, an actor of `name`'s as its record says, sharing the parts the key cache holds
    /// for it when the cache has it: the actor's context and the cache then keep one copy.
    pub(crate) fn shared_key(&self, name: &'static str, key: &ActorKey) -> ActorKey {
        lock(&self.keys)
            .get_key_value(&(name, key.clone()))
            .map_or_else(|| key.clone(), |((_, cached), _)| cached.clone())
    }

    /// A destroyed actor's key is free again.
    pub(crate) fn forget(&self, name: &'static str, key: &ActorKey, id: &ActorId) {
        lock(&self.slept).pop(id);
        let mut keys = lock(&self.keys);
        let k = (name, key.clone());
        if keys.peek(&k) == Some(id) {
            keys.pop(&k);
        }
    }

    /// Remembers actor `id` under its name and key, forgetting the least recently used past
    /// [`remembered`](Self::remembered) besides the awake actors: the keys of awake actors
    /// called by key stay remembered however many they are (they are the most recently used),
    /// and the table shrinks back as they go to sleep. The actor remembered counts as awake:
    /// it is looked up or created to be called.
    fn remember_key(&self, name: &'static str, key: &ActorKey, id: &ActorId) {
        let awake = {
            let slots = self.slots();
            slots.len() + usize::from(!slots.contains_key(id))
        };
        let mut keys = lock(&self.keys);
        keys.put((name, key.clone()), id.clone());
        while keys.len() > self.remembered.saturating_add(awake) {
            keys.pop_lru();
        }
    }
}
