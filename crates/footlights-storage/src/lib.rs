//! Footlights storage: where actors keep their durable state.
//!
//! A [`Driver`] stores, per actor: its metadata ([`ActorMeta`]: id, name, key, creation time,
//! generation), the latest snapshot of its state, its scheduled alarms, and an ordered
//! key-value map that may hold gigabytes (read by key, by many keys and by range, see
//! [`KvRange`]). Writes arrive as atomic units ([`Driver::commit_units`]) so that the runtime
//! can put the writes of many actors into one transaction and one fsync (group commit); new
//! actors are recorded in the same batches ([`Write::CreateActor`]), each with its outcome
//! reported.
//!
//! # Fencing
//!
//! Every start of an actor that can overlap an earlier instance (a claim in a cluster) bumps
//! its generation ([`Write::BumpGeneration`]). A running instance tags its writes with the
//! generation it started as ([`Fence`]); the driver applies them only while that is still the
//! actor's generation, so a stale instance (one that kept running after a newer one started,
//! on another node or in another process) can never overwrite what the newer one wrote. (A
//! single process serving its store alone starts an actor's instances one after the other,
//! each once the previous one's writes are durable, and bumps nothing.) Its unit is refused whole ([`UnitOutcome::Fenced`]) while the other units of
//! the batch are applied.
//!
//! ```
//! # futures::executor::block_on(async {
//! use footlights_storage::{ActorMeta, Driver, MemoryDriver, Write, CreateOutcome};
//! use footlights_protocol::{ActorId, ActorKey};
//!
//! let driver = MemoryDriver::new();
//! let meta = ActorMeta::new(ActorId::new("a1"), "counter", ActorKey::from("x"), 0);
//! assert!(matches!(driver.create_actor(&meta).await.unwrap(), CreateOutcome::Created));
//! driver.commit(vec![Write::State { actor: meta.id.clone(), bytes: vec![1, 2, 3] }]).await.unwrap();
//! assert_eq!(driver.load_state(&meta.id).await.unwrap(), Some(vec![1, 2, 3]));
//! # });
//! ```
//!
//! What this crate is: the trait, [`MemoryDriver`] for tests, the [`cluster`] module
//! (membership and placement when several processes share a store, the [`Cluster`](cluster::Cluster)
//! trait and its single-process form [`LocalCluster`](cluster::LocalCluster)), and (feature
//! `conformance`) the `conformance` suite every driver must pass. What it is not: a database. The default
//! on-disk driver lives in `footlights-storage-sqlite`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod cluster;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod key_order;
mod kv;
mod memory;

use std::fmt::Debug;

use futures::future::BoxFuture;

pub use footlights_protocol::{ActorId, ActorKey};
pub use kv::{KvEntries, KvRange, prefix_end};
pub use memory::MemoryDriver;

/// The version of the data layout this crate writes. Drivers record it, refuse to open data
/// written with a newer one, and upgrade data written with an older one when they open it.
///
/// - 1: actors, state snapshots, alarms, a small key-value map (the create input).
/// - 2: the key-value map is an actor's ordered store: size accounted per actor
///   ([`Driver::kv_size`]), listed by range. The runtime keeps the actor's own entries under
///   the key prefix `0x01` and its bookkeeping (such as the create input) under other keys.
pub const FORMAT_VERSION: u32 = 2;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The actor has no metadata (never created, or destroyed).
    #[error("actor {0} not found")]
    NotFound(ActorId),
    /// The data was written by a newer, unknown format version.
    #[error("storage format version {found} is newer than supported version {supported}")]
    UnsupportedFormat {
        /// The version found in the store.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The backend failed (I/O, corruption, lock).
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store cannot take writes now, and nothing of the failed call was applied: the disk is
    /// full, the disk fails, or the store's files were deleted or replaced under the running
    /// process. Trying again may succeed once an operator has fixed the cause (freed space,
    /// restarted the process on restored files).
    #[error("storage unavailable: {reason}")]
    Unavailable {
        /// What is wrong, for the log (it may name files; not for clients).
        reason: String,
        /// The backend's own error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StorageError {
    /// Wraps any backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StorageError::Backend(Box::new(e))
    }

    /// [`StorageError::Unavailable`] with a reason and no underlying error.
    ///
    /// ```
    /// use footlights_storage::StorageError;
    /// let e = StorageError::unavailable("the disk is full");
    /// assert!(e.is_unavailable());
    /// assert_eq!(e.to_string(), "storage unavailable: the disk is full");
    /// ```
    pub fn unavailable(reason: impl Into<String>) -> Self {
        StorageError::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// Whether this is [`StorageError::Unavailable`]: a failure worth retrying later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }
}

/// A driver's [`commit_units`](Driver::commit_units) returned fewer outcomes than it was given
/// units, or fewer create outcomes than a unit had creates.
#[derive(Debug, thiserror::Error)]
#[error("the driver reported no outcome for a unit or a create")]
struct MissingOutcome;

/// `Result` with [`StorageError`].
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What the store knows of an actor, apart from its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorMeta {
    /// Unique id.
    pub id: ActorId,
    /// The actor type's name, such as `chatRoom`.
    pub name: String,
    /// The user-chosen key, unique within `name`.
    pub key: ActorKey,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Incremented each time the actor starts; fences stale instances.
    pub generation: u64,
}

impl ActorMeta {
    /// Metadata for a new actor at generation 0.
    pub fn new(id: ActorId, name: impl Into<String>, key: ActorKey, created_at_ms: i64) -> Self {
        ActorMeta {
            id,
            name: name.into(),
            key,
            created_at_ms,
            generation: 0,
        }
    }
}

/// The result of creating an actor ([`Write::CreateActor`], [`Driver::create_actor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The actor was created.
    Created,
    /// An actor with the same name and key already exists; here is its metadata.
    Exists(ActorMeta),
}

/// A scheduled call, stored so that it fires after a sleep or a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// Unique within the actor.
    pub id: String,
    /// When it fires, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The action to call.
    pub action: String,
    /// The action's arguments, serialized by the runtime.
    pub args: Vec<u8>,
}

/// One write in an atomic batch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Write {
    /// Record a new actor, unless an actor with the same name and key exists (then nothing is
    /// written). [`Driver::commit`] reports which of the two happened, as a [`CreateOutcome`].
    ///
    /// The writes after it in the batch see the new actor, so a batch can create an actor and
    /// store its first data in one transaction; if the key was taken, those writes target an
    /// actor that does not exist and are ignored. An id already used by an actor with another
    /// name or key is an error, which fails the whole batch.
    CreateActor {
        /// The new actor's metadata.
        meta: ActorMeta,
    },
    /// Replace the actor's state snapshot.
    State {
        /// The actor.
        actor: ActorId,
        /// The serialized state.
        bytes: Vec<u8>,
    },
    /// Add or replace an alarm (by its id).
    PutAlarm {
        /// The actor.
        actor: ActorId,
        /// The alarm.
        alarm: Alarm,
    },
    /// Remove an alarm; removing a missing one is not an error.
    DeleteAlarm {
        /// The actor.
        actor: ActorId,
        /// The alarm's id.
        alarm_id: String,
    },
    /// Set a key in the actor's key-value map.
    KvPut {
        /// The actor.
        actor: ActorId,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove a key from the actor's key-value map.
    KvDelete {
        /// The actor.
        actor: ActorId,
        /// The key.
        key: Vec<u8>,
    },
    /// Remove every key from `start` (included) to `end` (excluded; `None`: to the last key).
    KvDeleteRange {
        /// The actor.
        actor: ActorId,
        /// The first key removed.
        start: Vec<u8>,
        /// The first key kept after the range, if any.
        end: Option<Vec<u8>>,
    },
    /// Bump the actor's generation by one.
    BumpGeneration {
        /// The actor.
        actor: ActorId,
    },
}

impl Write {
    /// The actor the write is for.
    pub fn actor(&self) -> &ActorId {
        match self {
            Write::CreateActor { meta } => &meta.id,
            Write::State { actor, .. }
            | Write::PutAlarm { actor, .. }
            | Write::DeleteAlarm { actor, .. }
            | Write::KvPut { actor, .. }
            | Write::KvDelete { actor, .. }
            | Write::KvDeleteRange { actor, .. }
            | Write::BumpGeneration { actor } => actor,
        }
    }
}

/// The instance a [`Unit`] comes from: its writes apply only while `generation` is still the
/// actor's generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The actor.
    pub actor: ActorId,
    /// The generation the instance started as (the stored one after its start's bump).
    pub generation: u64,
}

/// Writes applied together or not at all, within a [`Driver::commit_units`] batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Unit {
    /// If set, the unit is applied only while the fenced actor's stored generation equals the
    /// fence's, and refused whole otherwise ([`UnitOutcome::Fenced`]).
    pub fence: Option<Fence>,
    /// The writes, applied in order.
    pub writes: Vec<Write>,
}

impl Unit {
    /// A unit that is applied whatever the generation.
    pub fn unfenced(writes: Vec<Write>) -> Self {
        Unit {
            fence: None,
            writes,
        }
    }

    /// A unit that is applied only while `actor` is at `generation`.
    pub fn fenced(actor: ActorId, generation: u64, writes: Vec<Write>) -> Self {
        Unit {
            fence: Some(Fence { actor, generation }),
            writes,
        }
    }
}

/// What happened to one [`Unit`] of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitOutcome {
    /// Applied; the outcome of each [`Write::CreateActor`] in the unit, in order.
    Applied(Vec<CreateOutcome>),
    /// Refused whole: the fenced actor's generation is no longer the fence's (or the actor is
    /// gone: `current` is `None`).
    Fenced {
        /// The actor's stored generation.
        current: Option<u64>,
    },
}

/// What starting an actor reads ([`Driver::load_actor`]): its metadata, its latest state
/// snapshot and its alarms.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedActor {
    /// The actor's metadata.
    pub meta: ActorMeta,
    /// The latest state snapshot, if any was saved.
    pub state: Option<Vec<u8>>,
    /// The actor's alarms, ordered by time.
    pub alarms: Vec<Alarm>,
}

/// A storage backend. Implementations must be safe to share between tasks.
///
/// Every method is atomic on its own; [`commit_units`](Driver::commit_units) applies each unit
/// whole or not at all, and the batch in one transaction; once it returns `Ok` the batch is
/// durable (it survives a crash of the process). Writes for actors that no longer exist are
/// ignored.
///
/// An actor's key-value map is read by key ([`kv_get`](Driver::kv_get),
/// [`kv_get_many`](Driver::kv_get_many)) and by range ([`kv_list`](Driver::kv_list)), a page
/// at a time, so that no read costs more than what it returns; its size in bytes is kept by
/// the driver ([`kv_size`](Driver::kv_size)).
pub trait Driver: Send + Sync + Debug + 'static {
    /// Records a new actor: a batch of one [`Write::CreateActor`]. If an actor with the same
    /// name and key exists, nothing is written and its metadata is returned. Concurrent calls
    /// for one name and key create exactly one.
    fn create_actor<'a>(&'a self, meta: &'a ActorMeta) -> BoxFuture<'a, Result<CreateOutcome>> {
        Box::pin(async move {
            let outcomes = self
                .commit(vec![Write::CreateActor { meta: meta.clone() }])
                .await?;
            outcomes
                .into_iter()
                .next()
                .ok_or_else(|| StorageError::backend(MissingOutcome))
        })
    }

    /// The metadata of an actor by id.
    fn actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<ActorMeta>>>;

    /// The metadata of an actor by name and key.
    fn find_actor<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Option<ActorMeta>>>;

    /// Actors of a name whose key starts with `key_prefix` (all of them for the empty key),
    /// ordered by key.
    fn list_actors<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Vec<ActorMeta>>>;

    /// One page of [`list_actors`](Driver::list_actors): at most `limit` actors of `name`
    /// whose key starts with `key_prefix`, ordered by key, starting after the key `after` (from
    /// the first when `None`). The default lists everything and keeps the page; drivers on
    /// large stores answer from an index instead.
    fn list_actors_page<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
        after: Option<&'a ActorKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ActorMeta>>> {
        Box::pin(async move {
            let all = self.list_actors(name, key_prefix).await?;
            Ok(all
                .into_iter()
                .filter(|m| after.is_none_or(|a| m.key > *a))
                .take(limit)
                .collect())
        })
    }

    /// What starting an actor reads, or `None` for an unknown actor: its metadata, latest
    /// state and alarms. The default asks [`actor`](Driver::actor),
    /// [`load_state`](Driver::load_state) and [`load_alarms`](Driver::load_alarms) at once; a
    /// driver that can serve the three in one read (one round trip, one point in time) should.
    fn load_actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<LoadedActor>>> {
        Box::pin(async move {
            let (meta, state, alarms) =
                futures::join!(self.actor(id), self.load_state(id), self.load_alarms(id));
            let Some(meta) = meta? else {
                return Ok(None);
            };
            Ok(Some(LoadedActor {
                meta,
                state: state?,
                alarms: alarms?,
            }))
        })
    }

    /// [`find_actor`](Driver::find_actor) and [`load_actor`](Driver::load_actor) together:
    /// what starting the actor of `name` and `key` reads (its metadata, latest state and
    /// alarms), or `None` when no actor holds the key. What a call to a sleeping actor whose
    /// id the caller does not know reads. The default asks the two in turn; a driver that can
    /// serve both in one read (one round trip, one point in time) should.
    fn load_actor_by_key<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Option<LoadedActor>>> {
        Box::pin(async move {
            let Some(meta) = self.find_actor(name, key).await? else {
                return Ok(None);
            };
            // Deleted meanwhile, or its key given to another actor: not the actor asked for.
            Ok(self
                .load_actor(&meta.id)
                .await?
                .filter(|l| l.meta.name == name && l.meta.key == *key))
        })
    }

    /// The latest state snapshot, if any was saved.
    fn load_state<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;

    /// The actor's alarms, ordered by time.
    fn load_alarms<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Vec<Alarm>>>;

    /// Every alarm of every actor, ordered by time. Used at startup to wake sleeping actors.
    fn all_alarms(&self) -> BoxFuture<'_, Result<Vec<(ActorId, Alarm)>>>;

    /// One value of the actor's key-value map.
    fn kv_get<'a>(
        &'a self,
        id: &'a ActorId,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;

    /// Several values of the actor's key-value map, in the order of `keys`, read at one point
    /// in time. The default asks [`kv_get`](Driver::kv_get) once per key.
    fn kv_get_many<'a>(
        &'a self,
        id: &'a ActorId,
        keys: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>>> {
        Box::pin(async move {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                values.push(self.kv_get(id, key).await?);
            }
            Ok(values)
        })
    }

    /// The entries of the actor's key-value map in `range`, in key order (descending if
    /// [`reverse`](KvRange::reverse)), at most [`limit`](KvRange::limit) of them.
    fn kv_list<'a>(
        &'a self,
        id: &'a ActorId,
        range: &'a KvRange,
    ) -> BoxFuture<'a, Result<KvEntries>>;

    /// The size of the actor's key-value map: the lengths of its keys and values added up.
    /// Zero for an unknown actor.
    fn kv_size<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<u64>>;

    /// Applies a batch of units in one durable transaction: each unit whole, in order, or (if
    /// its fence no longer holds) not at all; the other units are applied either way. Returns
    /// one outcome per unit, in order. If the batch fails (`Err`), nothing of it is applied.
    ///
    /// A create sees the creates before it: of two creates of one name and key in a batch, the
    /// first is [`Created`](CreateOutcome::Created) and the second
    /// [`Exists`](CreateOutcome::Exists) with the first one's metadata.
    fn commit_units(&self, units: Vec<Unit>) -> BoxFuture<'_, Result<Vec<UnitOutcome>>>;

    /// Applies a batch atomically and durably, in order, as one unfenced [`Unit`], and returns
    /// the outcome of each [`Write::CreateActor`] in the batch, in batch order (an empty vector
    /// when there is none).
    fn commit(&self, batch: Vec<Write>) -> BoxFuture<'_, Result<Vec<CreateOutcome>>> {
        Box::pin(async move {
            let outcomes = self.commit_units(vec![Unit::unfenced(batch)]).await?;
            match outcomes.into_iter().next() {
                Some(UnitOutcome::Applied(created)) => Ok(created),
                _ => Err(StorageError::backend(MissingOutcome)),
            }
        })
    }

    /// Removes an actor with its state, alarms and key-value map. Its key becomes free.
    fn delete_actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<()>>;
}
