//! # Footlights
//!
//! Stateful actors with realtime connections, in Rust. An actor is addressed by a name and a
//! key (`chatRoom` / `["general"]`), created on first use, keeps durable state, exposes typed
//! actions, and broadcasts events to connected clients.
//!
//! ```
//! use footlights::prelude::*;
//!
//! /// The actor *is* its persisted state.
//! #[derive(Default, Serialize, Deserialize)]
//! pub struct Counter {
//!     count: i64,
//! }
//!
//! #[derive(Clone, Serialize, Deserialize, Event)]
//! pub struct NewCount(pub i64);
//!
//! #[footlights::actor]
//! impl Counter {
//!     #[action]
//!     fn increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64 {
//!         self.count += amount;
//!         ctx.broadcast(NewCount(self.count));
//!         self.count
//!     }
//!
//!     #[action]
//!     fn get_count(&self) -> i64 {
//!         self.count
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::builder().actor::<Counter>().start().await?;
//! let client = registry.client(); // in-process: no network, no auth
//! let counter = client.get_or_create::<Counter>(["room-1"]);
//! assert_eq!(counter.increment(5).await?, 5);
//! assert_eq!(counter.get_count().await?, 5);
//! # Ok(()) }
//! ```
//!
//! Serving it over HTTP, WebSocket and SSE (to the official `rivetkit` JavaScript client, say)
//! is one more line in `main`: `footlights::serve(registry, "127.0.0.1:6420").await?`.
//!
//! What this crate is: the facade over the Footlights crates, with a [`prelude`], the
//! `#[actor]` and `#[derive(Event)]` macros (feature `macros`), the embedded SQLite store
//! (feature `sqlite`) and the network server (feature `server`: `Server`, `serve`, `serve_with`
//! and the `server` module), all on by default; the PostgreSQL store (feature `postgres`) and
//! trace export over OTLP (feature `otel`, see the guide's [traces](guide::traces) chapter)
//! are not. Layers: [`footlights_protocol`]
//! (values, errors, wire messages), [`footlights_storage`] (drivers), [`footlights_core`] (the
//! runtime), [`footlights_client`] (handles and connections), `footlights_server` (the network).
//!
//! New here? Read the [`guide`]: getting started, actors and state, actions and events,
//! connections, clients, lifecycle, durability, configuration and errors.

pub use footlights_client::{
    ActionCaller, ActorHandle, Client, ClientBuilder, ClientOptions, ConnErrors, ConnStatus,
    Connection, ConnectionOptions, Events, RawMessage, RawWebSocket, SendOutcome, TransportKind,
    response_error,
};
pub use footlights_core::inspect;
pub use footlights_core::metrics;
pub use footlights_core::{
    ActionTable, Actor, ActorOptions, Conn, ConnRequest, ConnTypes, Conns, CronFire, CronJob,
    CronJobs, CronRule, Ctx, DEFAULT_REMEMBERED_ACTORS, Deferred, DeferredHandler, Handler, Kv,
    KvEntry, KvKey, KvPage, KvRange, RawEvent, RawLink, RawLinkSender, RawReply, RawRequest,
    RawResponse, RawSocket, ReadHandler, Registry, RegistryBuilder, RunSignal, Schedule,
    ScheduledCall, WsMessage,
};
#[cfg(feature = "db")]
pub use footlights_core::{Db, DbRow, Migration, db, rusqlite};
#[cfg(feature = "macros")]
pub use footlights_macros::{Event, action, actor};
pub use footlights_protocol::codec::Encoding;
pub use footlights_protocol::{
    Action, ActionError, ActorId, ActorKey, ActorSpec, Event, Value, to_value,
};

pub mod guide;
#[cfg(feature = "server")]
mod serve;

#[cfg(feature = "server")]
pub use footlights_server::Server;
#[cfg(feature = "server")]
pub use serve::{ServeError, serve, serve_with};

/// The network server (feature `server`): the manager API, the gateway, HTTP actions,
/// WebSocket and SSE connections, access checks, CORS and limits. [`serve`]
/// covers the usual case; build a [`Server`] for settings of your own.
#[cfg(feature = "server")]
pub mod server {
    #[doc(inline)]
    pub use footlights_server::*;
}

/// Durable queues inside actors: declaring them, taking and completing messages, sending to
/// them in process. See the guide's chapter on queues and the run loop.
pub mod queue {
    pub use footlights_core::queue::*;
}

/// Storage drivers: where actor state lives.
pub mod storage {
    pub use footlights_storage::{Alarm, Driver, MemoryDriver, StorageError, Write};
    #[cfg(feature = "sqlite")]
    pub use footlights_storage_sqlite::{DEFAULT_CACHE_BYTES, Durability, SqliteDriver};
}

/// Running several nodes as one cluster: any node serves any actor, each actor lives on one
/// node at a time, and its writes are fenced so that a node that lost it cannot overwrite it.
/// See [`RegistryBuilder::cluster`] and the guide's chapter on several nodes.
pub mod cluster {
    pub use footlights_core::{ClusterConfig, DEFAULT_LEASE, Placement};
    pub use footlights_storage::cluster::{Cluster, LocalCluster, NodeInfo};
    #[cfg(feature = "postgres")]
    pub use footlights_storage_postgres::PostgresDriver;
}

/// What an actor definition needs: `use footlights::prelude::*;`.
pub mod prelude {
    pub use footlights_client::{ActionCaller, Client};
    pub use footlights_core::{
        Actor, Conn, Conns, Ctx, Deferred, KvEntry, KvKey, KvPage, KvRange, Registry,
    };
    #[cfg(feature = "macros")]
    pub use footlights_macros::{Event, actor};
    pub use footlights_protocol::{ActionError, Event};
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use footlights_client as client;
    pub use footlights_core as core;
    pub use footlights_protocol as protocol;
    pub use serde;
}
