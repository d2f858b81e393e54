//! [`RegistryBuilder`]: the actor types, the driver and the limits of a registry, and its
//! start.

use super::*;

/// Builds a [`Registry`].
#[must_use]
pub struct RegistryBuilder {
    types: HashMap<&'static str, Arc<dyn ActorType>>,
    driver: Option<Arc<dyn Driver>>,
    max_key_bytes: usize,
    remembered: usize,
    cluster: Option<(Arc<dyn Cluster>, ClusterConfig)>,
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
    pub(super) fn new() -> Self {
        RegistryBuilder {
            types: HashMap::new(),
            driver: None,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            remembered: DEFAULT_REMEMBERED_ACTORS,
            cluster: None,
        }
    }

    /// Registers an actor type under its name (`A::NAME`), with the settings its
    /// [`Actor::options`] gives.
    pub fn actor<A: Actor>(self) -> Self {
        self.actor_with::<A>(|_| {})
    }

    /// Registers an actor type as [`actor`](Self::actor) does, with its settings changed by
    /// `change` first: a server may, for example, keep actors awake longer than their type
    /// says, or lower a limit, without a type of its own. Every instance of the type shares
    /// the result.
    ///
    /// ```
    /// use std::time::Duration;
    /// # use footlights_core::{ActionError, ActionTable, Actor, Conns, Ctx, Registry};
    /// # #[derive(Default, serde::Serialize, serde::Deserialize)] struct Counter;
    /// # impl footlights_protocol::ActorSpec for Counter { const NAME: &'static str = "counter"; type Input = (); }
    /// # impl Actor for Counter {
    /// #     type Conn = Conns;
    /// #     async fn create_state(_: &Ctx<Self>, _: &()) -> Result<Self, ActionError> { Ok(Counter) }
    /// #     fn actions(_: &mut ActionTable<Self>) {}
    /// # }
    /// let builder = Registry::builder().actor_with::<Counter>(|options| {
    ///     options.sleep_timeout = Duration::from_secs(300);
    /// });
    /// ```
    pub fn actor_with<A: Actor>(mut self, change: impl FnOnce(&mut crate::ActorOptions)) -> Self {
        let mut table = ActionTable::new();
        let mut options = A::options();
        change(&mut options);
        table.options = Arc::new(options);
        A::actions(&mut table);
        let mut queues = crate::queue::Queues::<A>::new();
        A::queues(&mut queues);
        table.queues = Arc::new(queues.specs);
        self.types
            .insert(A::NAME, Arc::new(TypeOf::<A>(Arc::new(table))));
        self
    }

    /// Where state is kept. Without one, a [`MemoryDriver`] is used (nothing survives a
    /// restart). The registry is then the only one serving the store: several processes
    /// sharing a store are the nodes of a [`cluster`](Self::cluster).
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

    /// How many actors the registry remembers besides the awake ones, most recently used
    /// first ([`DEFAULT_REMEMBERED_ACTORS`] by default): their ids by name and key, which spare
    /// the next call a storage lookup, and their start and sleep times
    /// ([`Registry::actor_times`]). The keys of awake actors are remembered on top of it, and
    /// forgotten again down to the bound as they go to sleep. Past it the least recently used
    /// are forgotten, so the memory of a registry does not grow with the number of actors that
    /// ever woke; each remembered sleeping actor holds about 250 bytes of heap (more with long
    /// keys). 0 remembers none but the awake ones.
    ///
    /// ```
    /// # use footlights_core::Registry;
    /// let builder = Registry::builder().remembered_actors(1_000_000);
    /// ```
    pub fn remembered_actors(mut self, actors: usize) -> Self {
        self.remembered = actors;
        self
    }

    /// Like [`driver`](Self::driver), for a driver that is already shared.
    pub fn shared_driver(mut self, driver: Arc<dyn Driver>) -> Self {
        self.driver = Some(driver);
        self
    }

    /// Runs this registry as one node of a cluster: `cluster` holds the membership and the
    /// actors' claims, normally the same database as the [driver](Self::shared_driver) (for
    /// example a `PostgresDriver`, which is both). On start the node registers and keeps
    /// renewing its lease; every actor is claimed before an instance of it starts here and
    /// released when the instance stops, and its writes are fenced with the claim, so an
    /// actor runs on one node at a time. A server asks [`Registry::placement`] where to send a
    /// request.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use footlights_core::{ClusterConfig, Registry};
    /// use footlights_storage::cluster::{LocalCluster, NodeInfo};
    /// use footlights_storage::{Driver, MemoryDriver};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let driver: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
    /// let registry = Registry::builder()
    ///     .shared_driver(driver.clone())
    ///     .cluster(
    ///         Arc::new(LocalCluster::new(driver)),
    ///         ClusterConfig::new(NodeInfo::new("node-a", "127.0.0.1:7001")),
    ///     )
    ///     .start()
    ///     .await?;
    /// assert!(registry.node().is_some());
    /// # Ok(()) }
    /// ```
    pub fn cluster(mut self, cluster: Arc<dyn Cluster>, config: ClusterConfig) -> Self {
        self.cluster = Some((cluster, config));
        self
    }

    /// Starts the registry on the current tokio runtime: the writer, the pool of dormant
    /// actors, the alarm clock (with
    /// every stored alarm; a clustered node instead loads each actor's alarms as it starts
    /// it), and the in-process client. A clustered node registers first.
    ///
    /// # Errors
    /// When stored alarms cannot be read, or the node cannot register.
    pub async fn start(self) -> Result<Registry, StorageError> {
        let driver = self.driver.unwrap_or_else(|| Arc::new(MemoryDriver::new()));
        let membership = match self.cluster {
            Some((cluster, config)) => Some(Arc::new(Membership::join(cluster, config).await?)),
            None => None,
        };
        let type_metrics: HashMap<&'static str, Arc<ActorTypeMetrics>> = self
            .types
            .keys()
            .map(|&name| (name, Arc::new(ActorTypeMetrics::new(name))))
            .collect();
        let storage_metrics = Arc::new(StorageMetrics::default());
        let inner = Arc::new_cyclic(|weak: &Weak<RegistryInner>| {
            let fire_to = weak.clone();
            let clock = ClockHandle::spawn(move |name, actor, alarm_id| {
                if let Some(reg) = fire_to.upgrade() {
                    let _ = reg.send(name, actor, Some(Msg::Alarm { alarm_id }));
                }
            });
            RegistryInner {
                metrics: Arc::new(RuntimeMetrics::new(
                    type_metrics.values().cloned().collect(),
                    storage_metrics.clone(),
                )),
                type_metrics,
                types: self.types,
                writer: Writer::spawn_counted(driver.clone(), storage_metrics),
                driver,
                clock,
                dormant: crate::instance::dormant::PoolHandle::spawn(),
                slots: Mutex::default(),
                // Both bounded by hand (see `remember_key` and `stopped`): a bounded cache
                // would reserve its whole capacity at once.
                keys: Mutex::new(lru::LruCache::unbounded()),
                remembered: self.remembered,
                next_token: AtomicU64::new(1),
                next_link: AtomicU64::new(1),
                max_key_bytes: self.max_key_bytes,
                kept: Arc::default(),
                parked: Mutex::default(),
                cluster: membership.clone(),
                stopped: false.into(),
                slept: Mutex::new(lru::LruCache::unbounded()),
                preloads: Mutex::new(super::preload::Preloads::new()),
                me: weak.clone(),
                client: Client::from_transport(crate::local::LocalTransport::new(weak.clone())),
            }
        });
        if let Some(membership) = membership {
            // Alarms go onto the clock as their actors start here (and the sweep wakes those
            // no node serves).
            cluster::spawn_lease_keeper(Arc::downgrade(&inner), membership);
            return Ok(Registry { inner });
        }
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
