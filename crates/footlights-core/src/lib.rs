//! The Footlights actor runtime.
//!
//! A [`Registry`] holds actor types; each live actor is one tokio task that owns the actor's
//! state and mailbox. Actions and hooks run one at a time, so user code takes `&mut self`
//! without locks. State changes are saved by a single writer that batches the writes of all
//! actors into one transaction (group commit), and an actor's replies and events leave only
//! once the writes before them are durable (the output gate).
//!
//! What this crate is: the [`Actor`] trait family, [`Ctx`], [`Conn`], the registry and its
//! in-process client. What it is not: a network server (`footlights-server`) or a storage
//! engine (`footlights-storage-*`). Most users reach it through the `footlights` facade and its
//! `#[actor]` macro.
//!
//! # Model
//! - `&mut self` actions ([`Handler`]) run to completion one at a time; `&self` actions
//!   ([`ReadHandler`]) never cause a save.
//! - An action that must wait for something outside the actor returns a [`Deferred`] answer
//!   ([`DeferredHandler`]): a future that holds no borrow of the state. The actor polls it
//!   beside its mailbox, so other messages (including the one that releases the wait) keep
//!   being processed, and it does not sleep while one is pending.
//! - Events an action broadcasts reach the calling connection before that action's reply.
//! - A panic in an action or hook is caught and answered as an internal error; the actor goes
//!   back to its last saved state and keeps serving.

mod actor;
mod alarm;
mod clock;
mod cluster;
mod conn;
mod conn_index;
mod ctx;
#[cfg(feature = "db")]
pub mod db;
mod deferred;
mod gate;
pub mod inspect;
mod instance;
pub mod kv;
mod local;
pub mod metrics;
pub mod queue;
pub mod raw;
mod registry;
pub mod run;
pub mod schedule;
mod snapshot;
pub mod trace;
mod writer;

pub use actor::{
    ActionTable, Actor, ActorOptions, AuthOf, ConnStateOf, ConnTypes, Conns, DeferredHandler,
    Handler, ParamsOf, ReadHandler,
};
pub use cluster::{ClusterConfig, DEFAULT_LEASE, FORWARDED_HEADER, Placement};
pub use conn::{Conn, ConnRequest, disconnect_reason};
pub use ctx::Ctx;
#[cfg(feature = "db")]
pub use db::{Db, DbRow, Migration};
pub use deferred::Deferred;
pub use footlights_protocol::{ActionError, ActorId, ActorKey, Value};
pub use footlights_storage::KvRange;
pub use kv::{Kv, KvEntry, KvKey, KvPage};
pub use raw::{
    RawEvent, RawLink, RawLinkSender, RawReply, RawRequest, RawResponse, RawSocket, WsMessage,
};
pub use registry::{
    ActorTimes, DEFAULT_MAX_KEY_BYTES, DEFAULT_REMEMBERED_ACTORS, Registry, RegistryBuilder,
};
pub use run::RunSignal;
#[cfg(feature = "db")]
pub use rusqlite;
pub use schedule::{CronFire, CronJob, CronJobs, CronRule, Schedule, ScheduledCall};
