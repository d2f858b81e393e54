//! [`RegistryBuilder`]: the actor types, the driver and the limits of a registry, and its
//! start.

use super::*;

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
    pub(super) fn new() -> Self {
        RegistryBuilder {
            types: HashMap::new(),
            driver: None,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
        }
    }

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
                slots: Mutex::default(),
                keys: Mutex::default(),
                next_token: AtomicU64::new(1),
                next_link: AtomicU64::new(1),
                max_key_bytes: self.max_key_bytes,
                kept: Arc::default(),
                parked: Mutex::default(),
                // Bounded by hand (see `stopped`): a bounded cache would reserve its whole
                // capacity at once.
                slept: Mutex::new(lru::LruCache::unbounded()),
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
