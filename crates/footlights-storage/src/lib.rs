//! Footlights storage: where actors keep their durable state.
//!
//! A [`Driver`] stores, per actor: its metadata ([`ActorMeta`]: id, name, key, creation time,
//! generation), the latest snapshot of its state, its scheduled alarms, and a small key-value
//! map. Writes arrive as atomic batches ([`Driver::commit`]) so that the runtime can put the
//! writes of many actors into one transaction and one fsync (group commit); new actors are
//! recorded in the same batches ([`Write::CreateActor`]), each with its outcome reported.
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
//! What this crate is: the trait, [`MemoryDriver`] for tests, and (feature `conformance`) the
//! [`conformance`] suite every driver must pass. What it is not: a database. The default
//! on-disk driver lives in `footlights-storage-sqlite`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

#[cfg(feature = "conformance")]
pub mod conformance;
mod memory;

use std::fmt::Debug;

use futures::future::BoxFuture;

pub use footlights_protocol::{ActorId, ActorKey};
pub use memory::MemoryDriver;

/// The version of the data layout this crate writes. Drivers record it and refuse to open
/// data written with a newer one.
pub const FORMAT_VERSION: u32 = 1;

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
}

impl StorageError {
    /// Wraps any backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StorageError::Backend(Box::new(e))
    }
}

/// A driver's [`commit`](Driver::commit) returned fewer create outcomes than the batch had
/// creates.
#[derive(Debug, thiserror::Error)]
#[error("the driver reported no outcome for a create")]
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
    /// Bump the actor's generation by one.
    BumpGeneration {
        /// The actor.
        actor: ActorId,
    },
}

/// A storage backend. Implementations must be safe to share between tasks.
///
/// Every method is atomic on its own; [`commit`](Driver::commit) applies a whole batch or
/// nothing, and once it returns `Ok` the batch is durable (it survives a crash of the process).
/// Writes for actors that no longer exist are ignored.
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

    /// Applies a batch atomically and durably, in order, and returns the outcome of each
    /// [`Write::CreateActor`] in the batch, in batch order (an empty vector when there is
    /// none). A create sees the creates before it: of two creates of one name and key in a
    /// batch, the first is [`Created`](CreateOutcome::Created) and the second
    /// [`Exists`](CreateOutcome::Exists) with the first one's metadata.
    fn commit(&self, batch: Vec<Write>) -> BoxFuture<'_, Result<Vec<CreateOutcome>>>;

    /// Removes an actor with its state, alarms and key-value map. Its key becomes free.
    fn delete_actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<()>>;
}
