//! The Footlights network server: actors over HTTP, WebSocket and SSE, speaking the RivetKit
//! client protocol so the official `rivetkit` JavaScript client works unchanged.
//!
//! ```no_run
//! use footlights_core::Registry;
//! use footlights_server::Server;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let registry = Registry::builder() /* .actor::<Counter>() */ .start().await?;
//!     let server = Server::builder().registry(registry).build()?;
//!
//!     // The host owns the socket and the shutdown signal.
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:6420").await?;
//!     let shutdown = async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     };
//!     server.serve(listener, shutdown).await?;
//!     Ok(())
//! }
//! ```
//!
//! A RivetKit client then uses `http://127.0.0.1:6420` as its endpoint.
//!
//! What this crate is: one server playing the three roles of a RivetKit deployment, under an
//! optional base path:
//! - the **manager API**: `GET /metadata`, `GET /health`, `GET`/`PUT`/`POST /actors`, and
//!   `GET /metrics` (Prometheus text format, behind the manager token when one is set);
//! - the **gateway**: `/gateway/{actorId}[@token]/…` and `/gateway/{name}/…?rvt-…` (and the
//!   optional header-routed form), which find or create the actor and hand it the rest of
//!   the request;
//! - the **actor routes** behind it: `POST /action/{name}` (stateless actions in JSON, CBOR or
//!   BARE), `POST /queue/{name}` (queue sends), `/connect` (the realtime WebSocket), and the Footlights extensions: the SSE
//!   transport (`/connect/sse`, `/connections/{id}/message|close`) and connection tokens;
//! - the host's own routes, if it gives some ([`ServerBuilder::fallback`]): a web page or
//!   static files served beside the actors, for requests no protocol route claims;
//! - CORS for browsers, size and count limits, time limits on slow or idle clients, WebSocket
//!   pings, SSE keep-alives, and a graceful shutdown that tells every client to reconnect.
//!
//! What it is not: the actor runtime ([`footlights_core`]), a client, or a TLS terminator.
//! Raw HTTP (`/request/…`) and raw WebSocket (`/websocket/…`) routes reach the actor's raw
//! handlers; `POST /queue/{name}` sends to the actor's durable queues (§6.2 of the protocol).
//!
//! Every route, with its headers, encodings and errors and a `curl` call, is described in
//! `docs/http-api.md` in the repository; the Footlights extensions (the SSE transport,
//! connection tokens and resume) in `docs/protocol-extensions.md`. Comments in the source cite
//! the RivetKit client protocol by section: §1 client settings, §2 HTTP conventions (headers,
//! CORS, ray ids), §3 encodings, §4 the manager API, §5 addressing an actor through the
//! gateway, §6 actor routes (actions, raw routes, queues), §7 the WebSocket connection, §8
//! errors, §9 BARE versions; `docs/http-api.md` covers the same ground under those names.
//!
//! # Logging
//! One `info` line per HTTP request (method, path, status, duration, request id, and for
//! actor routes the actor, key, action and error code) and per WebSocket or SSE connection
//! when it ends; server start and stop at `info`, each frame at `trace`; `warn` when a limit
//! is hit; `error`, once, for masked internal errors with their cause. Every response carries
//! its request id in `x-request-id` (a well-formed one the client sent is kept). Spans:
//! `actor{actor, key, id}` around everything an actor does (from `footlights-core`),
//! `conn{id, transport}` and `action{name}`. The crate installs no subscriber unless asked:
//! [`logging::init`] sets one up (text or JSON), see the [`logging`] module.
//!
//! # Metrics
//! `GET /metrics` answers in the Prometheus text format (OpenMetrics 1.0): per actor type,
//! actions, action errors by code, an action duration histogram, awake actors, wakes,
//! sleeps and events sent; connections open and opened by transport; bytes received and
//! sent; requests refused by reason; group commits, their batch sizes and durations; and the
//! process's resident memory, threads and open file descriptors (Linux). Counting is a few
//! atomic additions per request; the text is made only when scraped.

mod access;
mod action;
mod builder;
mod conn;
mod cors;
mod error;
mod fallback;
mod forward;
mod gateway;
mod inspector;
mod limits;
pub mod listen;
pub mod logging;
mod manager;
mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
mod peer;
mod queue;
mod rate;
mod raw;
mod resume;
mod server;
mod shutdown;
mod signal;
mod sse;
mod trace;
mod ws;

pub use access::{AccessPolicy, AccessRequest, Area};
pub use builder::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONN_PARAMS_SIZE, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_IN_FLIGHT_ACTIONS,
    DEFAULT_MAX_INCOMING_MESSAGE_SIZE, DEFAULT_MAX_OUTGOING_MESSAGE_SIZE,
    DEFAULT_MAX_PENDING_CONNECTIONS, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_MESSAGES,
    DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SSE_KEEP_ALIVE, DEFAULT_WRITE_TIMEOUT,
    DEFAULT_WS_PING_INTERVAL, ServerBuilder,
};
pub use error::{Error, Result};
pub use forward::FORWARDED_HEADER;
pub use rate::Rate;
pub use server::Server;
pub use signal::shutdown_signal;
