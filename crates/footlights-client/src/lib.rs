//! The Footlights client: actor handles, realtime connections and reconnection, in the same
//! process or over the network.
//!
//! ```no_run
//! use footlights::prelude::*;
//! use footlights_client::Client;
//! use futures::StreamExt;
//!
//! // The actor, as the server defines it; `#[actor]` also writes `CounterActions`, the typed
//! // methods every handle and connection to a `Counter` gets.
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
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new("http://127.0.0.1:6420")?;
//!
//! // A handle is lazy and cheap to clone: this sends nothing yet.
//! let counter = client.get_or_create::<Counter>(["room-1"]);
//! let n = counter.increment(5).await?; // one HTTP request; creates the actor if needed
//!
//! // A connection: WebSocket (or SSE), events, and actions over the same link.
//! let conn = counter.connect().await?;
//! let mut counts = conn.events::<NewCount>();
//! conn.increment(1).await?;
//! if let Some(NewCount(total)) = counts.next().await {
//!     assert_eq!(total, n + 1);
//! }
//! conn.dispose().await;
//! # Ok(()) }
//! ```
//!
//! What this crate is:
//! - a [`Client`] and its [`ActorHandle`]s ([`get`](Client::get),
//!   [`get_or_create`](Client::get_or_create), [`create`](Client::create),
//!   [`get_for_id`](Client::get_for_id), [`resolve`](ActorHandle::resolve)): stateless
//!   actions, one request each;
//! - [`Connection`]s: actions over one link, typed event streams ([`Connection::events`],
//!   [`Connection::once`]), a status watch, an error stream, [`dispose`](Connection::dispose),
//!   and reconnection with exponential backoff, queued actions, re-subscription and resume;
//! - raw traffic to the actor's own handlers: HTTP requests ([`ActorHandle::fetch`], with
//!   [`RawRequest`] and [`RawResponse`], which are [`http`] types) and WebSockets
//!   ([`ActorHandle::websocket`], a [`RawWebSocket`] of text and binary [`RawMessage`]s);
//! - the [`Transport`] trait they run on: in-process (`footlights-core`, for the registry's
//!   own client and actor-to-actor calls) or the network (feature `net`, on by default:
//!   [`Client::new`]; HTTP, WebSocket and SSE, in JSON, CBOR or BARE).
//!
//! What it is not: an actor runtime (`footlights-core`) or a server (`footlights-server`).
//!
//! # Errors
//! Every failure is an [`ActionError`](footlights_protocol::ActionError) with a stable
//! `group` and `code`: the server's own (`auth.forbidden`, `user.room_full`,
//! `actor.not_found`, …, with message and metadata) or one raised on the client side (group
//! `client`, see [`is_transient`] for the list). Building a client can fail with [`Error`].
//!
//! # Reconnection
//! A connection whose link drops goes [`Reconnecting`](ConnStatus::Reconnecting) and tries
//! again with exponential backoff and jitter ([`Backoff`]), after transient failures only
//! (network, 5xx, a server going away, an actor starting or stopping; see
//! [`is_transient`]). Refusals (`auth.*`), user errors from the actor's connect hook and an
//! actor id that does not exist close it for good. Over the network, a link that *broke*
//! (rather than being closed) is resumed with the connection's id and token, so the actor
//! keeps its state for this connection. Actions called while reconnecting are queued and
//! sent once; actions already sent fail with `client.connection_lost` (see the
//! [`Connection`] docs for why they are not replayed).

/// The byte buffer of raw bodies and binary messages.
pub use bytes::Bytes;
/// The `http` crate, whose request and response types [`RawRequest`] and [`RawResponse`] are.
pub use http;

mod backoff;
mod connection;
mod error;
mod handle;
#[cfg(feature = "net")]
mod net;
mod raw;
mod transport;

pub use backoff::Backoff;
pub use connection::{ConnErrors, ConnStatus, Connection, ConnectionOptions, Events, RawEvents};
pub use error::{Error, Result, is_transient};
pub use handle::{ActionCaller, ActorHandle, Client, Untyped};
#[cfg(feature = "net")]
pub use net::{ClientBuilder, ClientOptions, TransportKind};
pub use raw::{
    RawMessage, RawRequest, RawResponse, RawSocketEvent, RawSocketSender, RawWebSocket,
    response_error,
};
pub use transport::{
    Backlog, CloseReason, DirectWriter, Link, LinkEvent, LinkInbox, LinkSender, NextEvents,
    ResumeToken, SendOutcome, Target, Transport,
};
