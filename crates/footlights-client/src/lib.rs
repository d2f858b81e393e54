//! The Footlights client: actor handles, realtime connections and reconnection, over any
//! [`Transport`].
//!
//! The same types serve every way of reaching actors: in the same process (the registry's
//! client, no network, no auth), from inside an actor (actor-to-actor calls), or over the
//! network. `#[footlights::actor]` adds typed action methods to [`ActorHandle`] and
//! [`Connection`] through [`ActionCaller`].
//!
//! What this crate is: handles ([`Client::get`], [`Client::get_or_create`],
//! [`Client::create`], [`Client::get_for_id`]), stateless actions, connections with typed
//! event streams, `once`, unsubscribe, `dispose`, a status watch, an error stream, and
//! reconnection with exponential backoff, queued actions and re-subscription.
//! What it is not: an actor runtime (that is `footlights-core`).

mod backoff;
mod connection;
mod handle;
mod transport;

pub use backoff::Backoff;
pub use connection::{ConnStatus, Connection, ConnectionOptions, Events, RawEvents};
pub use handle::{ActionCaller, ActorHandle, Client, Untyped};
pub use transport::{CloseReason, Link, LinkEvent, LinkSender, Target, Transport};
