//! Footlights storage on PostgreSQL: one store that several server processes share, with the
//! membership and placement they need to run each actor in one place.
//!
//! ```no_run
//! # async fn example() -> footlights_storage::Result<()> {
//! use footlights_storage::{ActorId, ActorKey, ActorMeta, CreateOutcome, Driver, Write};
//! use footlights_storage_postgres::PostgresDriver;
//!
//! let driver = PostgresDriver::connect("postgres://footlights@127.0.0.1/footlights").await?;
//! let meta = ActorMeta::new(ActorId::new("a1"), "counter", ActorKey::from("x"), 0);
//! assert_eq!(driver.create_actor(&meta).await?, CreateOutcome::Created);
//! // One transaction, committed (durable, with the server's default settings) on return.
//! driver.commit(vec![Write::State { actor: meta.id.clone(), bytes: b"42".to_vec() }]).await?;
//! assert_eq!(driver.load_state(&meta.id).await?, Some(b"42".to_vec()));
//! # Ok(()) }
//! ```
//!
//! What this crate is:
//! - [`PostgresDriver`], a [`Driver`] on a handful of tables in one schema of a PostgreSQL
//!   database (created at connect if missing, with the store's format version recorded; a
//!   newer version is refused with
//!   [`StorageError::UnsupportedFormat`](footlights_storage::StorageError::UnsupportedFormat)),
//!   through a pool of connections;
//! - group commit: [`commit_units`](Driver::commit_units) applies a whole batch in one
//!   transaction, checking each fenced unit against the actor's stored generation under a row
//!   lock, so one fenced unit is refused alone and a concurrent claim can never slip between
//!   the check and the commit (the reasoning is in the source, `src/commit.rs`);
//! - the [`Cluster`] of the same store: node leases on the database's clock, claims that bump
//!   the generation the writes are fenced with, release, orphaned alarms
//!   (see [`footlights_storage::cluster`]). [`PostgresDriver::for_node`] binds a handle to the
//!   node that uses it, so that its units are refused for actors another node holds;
//! - honest about failures: a lost connection, a server shutting down or out of disk is
//!   [`StorageError::Unavailable`](footlights_storage::StorageError::Unavailable) (retryable;
//!   the pool reconnects), as the SQLite driver reports its disk failing. A commit whose answer
//!   was lost with the connection is reported so too, although the server may have applied it;
//! - with a PostgreSQL for tests (feature `test-support`): its `test_support` module starts Debian's
//!   server binaries on a free loopback port.
//!
//! What it is not: a way to make PostgreSQL durable. A commit is as durable as the server
//! makes it (`synchronous_commit`, and for fail-over a synchronous standby: a standby that
//! loses committed claims can give two nodes the same generation, which a node-bound handle
//! still tells apart). Nor a connection pooler's friend: statements are prepared per
//! connection, which transaction-mode poolers do not keep.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod cluster;
mod commit;
mod error;
mod key;
mod ops;
mod schema;
#[cfg(feature = "test-support")]
pub mod test_support;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use footlights_storage::cluster::{
    Claim, Cluster, Heartbeat, Lease, Member, NodeIncarnation, NodeInfo, Owner,
};
use footlights_storage::{
    ActorId, ActorKey, ActorMeta, Alarm, Driver, Fence, KvEntries, KvRange, Result, Unit,
    UnitOutcome,
};
use futures::future::BoxFuture;

use crate::error::Error;

/// Connections the pool keeps at most, unless [`PostgresDriverBuilder::pool_size`] says
/// otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a call waits for a connection (to be made, or freed by another call) before it
/// fails with [`StorageError::Unavailable`](footlights_storage::StorageError::Unavailable),
/// unless [`PostgresDriverBuilder::connect_timeout`] says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Driver`] and a [`Cluster`] on a PostgreSQL database.
///
/// Open it with [`PostgresDriver::connect`] or [`PostgresDriver::builder`]. Clones are cheap
/// and share the connection pool. Every node of a cluster connects its own driver to the same
/// database and schema; so may several drivers of one process (each with its own pool).
///
/// A handle bound to a node ([`for_node`](PostgresDriver::for_node)) applies fenced units only
/// for actors that node holds (claimed and not released); an unbound handle checks the
/// generation alone, which is all a single process needs.
#[derive(Clone)]
pub struct PostgresDriver {
    pool: Pool,
    schema: Arc<str>,
    /// The node whose claims this handle's fenced units must match, if bound.
    node: Option<NodeIncarnation>,
}

impl fmt::Debug for PostgresDriver {
    /// The schema and the node, not the connection settings (they may hold a password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDriver")
            .field("schema", &self.schema)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Settings for connecting a [`PostgresDriver`]; made by [`PostgresDriver::builder`], finished
/// by [`connect`](PostgresDriverBuilder::connect).
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresDriverBuilder {
    url: String,
    schema: String,
    pool_size: usize,
    connect_timeout: Duration,
}

impl PostgresDriverBuilder {
    /// The schema holding the store's tables (`public` unless set), created at connect if
    /// missing. Several stores can share a database, one per schema. Letters, digits and
    /// underscores only, not starting with a digit, up to 63 bytes.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most connections the driver opens ([`DEFAULT_POOL_SIZE`] unless set; at least 1).
    /// Concurrent calls beyond it wait for a free connection.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long a call waits to connect, or for a free connection
    /// ([`DEFAULT_CONNECT_TIMEOUT`] unless set).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects, creates the schema and its tables if they are missing, and checks the
    /// recorded format version.
    ///
    /// # Errors
    ///
    /// [`StorageError::Unavailable`](footlights_storage::StorageError::Unavailable) if the
    /// server cannot be reached in time;
    /// [`StorageError::UnsupportedFormat`](footlights_storage::StorageError::UnsupportedFormat)
    /// if the schema was written by a newer format version;
    /// [`StorageError::Backend`](footlights_storage::StorageError::Backend) for an invalid
    /// connection string or schema name, a refused login, or a missing database.
    pub async fn connect(self) -> Result<PostgresDriver> {
        schema::check_name(&self.schema)?;
        let mut config: tokio_postgres::Config = self.url.parse().map_err(Error::BadUrl)?;
        // Every connection of the pool resolves the tables in the store's schema.
        let options = match config.get_options() {
            Some(given) => format!("{given} -c search_path={}", self.schema),
            None => format!("-c search_path={}", self.schema),
        };
        config.options(&options);
        config.connect_timeout(self.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("footlights");
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.connect_timeout))
            .create_timeout(Some(self.connect_timeout))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        let mut client = pool.get().await.map_err(error::pool)?;
        let created = schema::init(&mut client, &self.schema).await?;
        tracing::debug!(schema = %self.schema, created, "connected to PostgreSQL");
        Ok(PostgresDriver {
            pool,
            schema: self.schema.into(),
            node: None,
        })
    }
}

impl PostgresDriver {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value` string, as
    /// libpq takes them) with the default settings, using the schema `public`.
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// use footlights_storage_postgres::PostgresDriver;
    /// let driver = PostgresDriver::connect("host=127.0.0.1 user=footlights dbname=footlights").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`PostgresDriverBuilder::connect`].
    pub async fn connect(url: &str) -> Result<PostgresDriver> {
        PostgresDriver::builder(url).connect().await
    }

    /// Settings for connecting to the database at `url`; finish with
    /// [`PostgresDriverBuilder::connect`].
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// use footlights_storage_postgres::PostgresDriver;
    /// let driver = PostgresDriver::builder("postgres://footlights@db.internal/app")
    ///     .schema("footlights")
    ///     .pool_size(8)
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: impl Into<String>) -> PostgresDriverBuilder {
        PostgresDriverBuilder {
            url: url.into(),
            schema: "public".to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// A handle on the same pool bound to the node `node`: its fenced units are applied only
    /// for actors `node` holds at the fence's generation (claimed with
    /// [`Cluster::claim`] and not released), and refused
    /// ([`UnitOutcome::Fenced`]) otherwise. A node uses it for every write it makes, and a
    /// new one after it registers again.
    ///
    /// The generation alone fences every stale writer while the database keeps each committed
    /// claim; the node adds a check for when it does not (a fail-over to a standby that missed
    /// the last claims, which could hand one generation to two nodes).
    pub fn for_node(&self, node: NodeIncarnation) -> PostgresDriver {
        PostgresDriver {
            node: Some(node),
            ..self.clone()
        }
    }

    /// The node this handle is bound to, if any.
    pub fn node(&self) -> Option<&NodeIncarnation> {
        self.node.as_ref()
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn client(&self) -> Result<ops::Client> {
        self.pool.get().await.map_err(error::pool)
    }
}

impl Driver for PostgresDriver {
    fn actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<ActorMeta>>> {
        Box::pin(async move { ops::actor(&self.client().await?, id).await })
    }

    fn find_actor<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Option<ActorMeta>>> {
        Box::pin(async move { ops::find_actor(&self.client().await?, name, key).await })
    }

    fn list_actors<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Vec<ActorMeta>>> {
        Box::pin(async move {
            ops::list_actors(&self.client().await?, name, key_prefix, None, usize::MAX).await
        })
    }

    fn list_actors_page<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
        after: Option<&'a ActorKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ActorMeta>>> {
        Box::pin(async move {
            ops::list_actors(&self.client().await?, name, key_prefix, after, limit).await
        })
    }

    fn load_state<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move { ops::load_state(&self.client().await?, id).await })
    }

    fn load_alarms<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Vec<Alarm>>> {
        Box::pin(async move { ops::load_alarms(&self.client().await?, id).await })
    }

    fn all_alarms(&self) -> BoxFuture<'_, Result<Vec<(ActorId, Alarm)>>> {
        Box::pin(async move { ops::all_alarms(&self.client().await?).await })
    }

    fn kv_get<'a>(
        &'a self,
        id: &'a ActorId,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move { ops::kv_get(&self.client().await?, id, key).await })
    }

    fn kv_get_many<'a>(
        &'a self,
        id: &'a ActorId,
        keys: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>>> {
        Box::pin(async move { ops::kv_get_many(&self.client().await?, id, keys).await })
    }

    fn kv_list<'a>(
        &'a self,
        id: &'a ActorId,
        range: &'a KvRange,
    ) -> BoxFuture<'a, Result<KvEntries>> {
        Box::pin(async move { ops::kv_list(&self.client().await?, id, range).await })
    }

    fn kv_size<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { ops::kv_size(&self.client().await?, id).await })
    }

    fn commit_units(&self, units: Vec<Unit>) -> BoxFuture<'_, Result<Vec<UnitOutcome>>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            commit::commit_units(&mut client, self.node.as_ref(), &units).await
        })
    }

    fn delete_actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { ops::delete_actor(&self.client().await?, id).await })
    }
}

impl Cluster for PostgresDriver {
    fn register<'a>(&'a self, node: &'a NodeInfo, ttl: Duration) -> BoxFuture<'a, Result<Lease>> {
        Box::pin(async move { cluster::register(&self.client().await?, node, ttl).await })
    }

    fn heartbeat<'a>(
        &'a self,
        me: &'a NodeIncarnation,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Heartbeat>> {
        Box::pin(async move { cluster::heartbeat(&self.client().await?, me, ttl).await })
    }

    fn live_members(&self) -> BoxFuture<'_, Result<Vec<Member>>> {
        Box::pin(async move { cluster::live_members(&self.client().await?).await })
    }

    fn claim<'a>(
        &'a self,
        actor: &'a ActorId,
        me: &'a NodeIncarnation,
    ) -> BoxFuture<'a, Result<Claim>> {
        Box::pin(async move { cluster::claim(&self.client().await?, actor, me).await })
    }

    fn owner<'a>(&'a self, actor: &'a ActorId) -> BoxFuture<'a, Result<Option<Owner>>> {
        Box::pin(async move { cluster::owner(&self.client().await?, actor).await })
    }

    fn release<'a>(
        &'a self,
        fence: &'a Fence,
        me: &'a NodeIncarnation,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { cluster::release(&self.client().await?, fence, me).await })
    }

    fn due_orphans(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ActorId>>> {
        Box::pin(async move { cluster::due_orphans(&self.client().await?, limit).await })
    }

    fn deregister<'a>(&'a self, me: &'a NodeIncarnation) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { cluster::deregister(&self.client().await?, me).await })
    }

    fn forget_dead(&self, ago: Duration) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move { cluster::forget_dead(&self.client().await?, ago).await })
    }
}
