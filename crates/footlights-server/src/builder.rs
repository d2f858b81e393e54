//! [`ServerBuilder`]: the server's settings, checked once in [`ServerBuilder::build`].

use std::sync::Arc;
use std::time::Duration;

use footlights_core::Registry;

use crate::access::AccessPolicy;
use crate::error::{Error, Result};
use crate::fallback::Fallback;
use crate::rate::Rate;
use crate::server::Server;

/// Default limit on one incoming message or request body: 64 KiB, as RivetKit 2.3.
pub const DEFAULT_MAX_INCOMING_MESSAGE_SIZE: usize = 64 * 1024;
/// Default limit on one outgoing message or response body: 1 MiB, as RivetKit 2.3.
pub const DEFAULT_MAX_OUTGOING_MESSAGE_SIZE: usize = 1024 * 1024;
/// Default limit on the connection params of one request or connection (JSON text): 16 KiB.
pub const DEFAULT_MAX_CONN_PARAMS_SIZE: usize = 16 * 1024;
/// Default limit on actions awaiting their answer on one connection.
pub const DEFAULT_MAX_IN_FLIGHT_ACTIONS: usize = 256;
/// Default limit on open WebSocket and SSE connections, server-wide.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default interval between SSE keep-alive comments.
pub const DEFAULT_SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Default interval between WebSocket pings.
pub const DEFAULT_WS_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Default time a client has to send a whole request head: 10 s. Ample for any real client
/// (a head is a few hundred bytes), short enough that a client trickling one (slowloris) holds
/// its socket for seconds, not forever.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a whole request body once its head is in: 30 s, enough
/// for the largest body the default size limit lets in over a slow mobile link.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a kept-alive connection may wait for its next request: 75 s. Longer than the
/// 60 s most proxies and load balancers keep idle upstream connections, so that the proxy,
/// not the server, closes them and never sends a request on a connection being closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default time a graceful shutdown waits for requests in flight and connections to close
/// before it cuts those left: 10 s. Well under the time Kubernetes (30 s) and systemd (90 s)
/// wait between their stop signal and a kill, so the actors are saved before that; `docker
/// stop` waits only 10 s, so under Docker give it a shorter timeout or give Docker a longer one.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on messages waiting to be written to one WebSocket or SSE client: 1,024.
pub const DEFAULT_MAX_QUEUED_MESSAGES: usize = 1024;
/// Default limit on the bytes of messages waiting to be written to one WebSocket or SSE
/// client: 8 MiB (as `ToClient::approx_size` counts them).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 8 << 20;
/// Default time writing one frame or event to a client may take: 10 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on accepted connections that have not yet sent their first request head:
/// 512. It bounds the sockets (file descriptors) silent or slow clients can hold, well below
/// the usual limit of 1,024 open files per process.
pub const DEFAULT_MAX_PENDING_CONNECTIONS: usize = 512;

/// The longest keep-alive or ping interval, or timeout, accepted.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// The checked settings every request handler reads.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `""` or a prefix such as `/api/rivet` (leading `/`, no trailing `/`).
    pub(crate) base_path: String,
    pub(crate) max_incoming: usize,
    pub(crate) max_outgoing: usize,
    pub(crate) max_conn_params: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) max_connections: usize,
    pub(crate) sse_keep_alive: Duration,
    pub(crate) ws_ping_interval: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_pending_connections: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) max_queued_messages: usize,
    pub(crate) max_queued_bytes: usize,
    pub(crate) write_timeout: Duration,
    /// The host's routes for requests no protocol route claims.
    pub(crate) fallback: Fallback,
    /// The origins browsers may call from with credentials; `None`: any (but `null`).
    pub(crate) cors_origins: Option<Arc<[String]>>,
    /// Who may call.
    pub(crate) access: AccessPolicy,
    /// Requests per client address, per second.
    pub(crate) rate_per_client: Option<Rate>,
    /// Requests per actor, per second.
    pub(crate) rate_per_actor: Option<Rate>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_path: String::new(),
            max_incoming: DEFAULT_MAX_INCOMING_MESSAGE_SIZE,
            max_outgoing: DEFAULT_MAX_OUTGOING_MESSAGE_SIZE,
            max_conn_params: DEFAULT_MAX_CONN_PARAMS_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT_ACTIONS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            sse_keep_alive: DEFAULT_SSE_KEEP_ALIVE,
            ws_ping_interval: DEFAULT_WS_PING_INTERVAL,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_pending_connections: DEFAULT_MAX_PENDING_CONNECTIONS,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            max_queued_messages: DEFAULT_MAX_QUEUED_MESSAGES,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            fallback: Fallback::default(),
            cors_origins: None,
            access: AccessPolicy::default(),
            rate_per_client: None,
            rate_per_actor: None,
        }
    }
}

/// Builds a [`Server`]. Every setting but the registry has a default.
///
/// ```
/// use std::time::Duration;
/// use footlights_core::Registry;
/// use footlights_server::Server;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::builder().start().await?;
/// let server = Server::builder()
///     .registry(registry)
///     .base_path("/api/rivet")
///     .max_incoming_message_size(128 * 1024)
///     .ws_ping_interval(Duration::from_secs(20))
///     .build()?;
/// # drop(server);
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Debug, Default)]
pub struct ServerBuilder {
    registry: Option<Registry>,
    base_path: Option<String>,
    config: Config,
}

impl ServerBuilder {
    /// The actors this server serves. Required.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Serves every route under this prefix, such as `/api/rivet`: clients then use
    /// `http://host/api/rivet` as their endpoint. A trailing `/` is ignored; `""` and `/` mean
    /// no prefix (the default).
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        self.base_path = Some(path.into());
        self
    }

    /// The largest incoming WebSocket message, SSE message post or HTTP request body, in bytes.
    /// Larger ones are answered with `message.incoming_too_long` (a WebSocket is closed with
    /// code 1011). Default: [`DEFAULT_MAX_INCOMING_MESSAGE_SIZE`].
    pub fn max_incoming_message_size(mut self, bytes: usize) -> Self {
        self.config.max_incoming = bytes;
        self
    }

    /// The largest outgoing message or response body, in bytes. An action whose answer is
    /// larger fails with `message.outgoing_too_long`; a larger event closes its connection
    /// with code 1011 and that reason. Default: [`DEFAULT_MAX_OUTGOING_MESSAGE_SIZE`].
    pub fn max_outgoing_message_size(mut self, bytes: usize) -> Self {
        self.config.max_outgoing = bytes;
        self
    }

    /// The largest connection params (their JSON text), in bytes. Default:
    /// [`DEFAULT_MAX_CONN_PARAMS_SIZE`].
    pub fn max_conn_params_size(mut self, bytes: usize) -> Self {
        self.config.max_conn_params = bytes;
        self
    }

    /// How many actions one connection may have waiting for an answer. Further requests are
    /// answered at once with an `actor.overloaded` error carrying their action id. Default:
    /// [`DEFAULT_MAX_IN_FLIGHT_ACTIONS`].
    pub fn max_in_flight_actions(mut self, count: usize) -> Self {
        self.config.max_in_flight = count;
        self
    }

    /// How many WebSocket and SSE connections may be open at once, server-wide. Further ones
    /// are refused with `actor.overloaded`. Default: [`DEFAULT_MAX_CONNECTIONS`].
    pub fn max_connections(mut self, count: usize) -> Self {
        self.config.max_connections = count;
        self
    }

    /// How often an idle SSE stream gets a keep-alive comment. Default:
    /// [`DEFAULT_SSE_KEEP_ALIVE`].
    pub fn sse_keep_alive(mut self, interval: Duration) -> Self {
        self.config.sse_keep_alive = interval;
        self
    }

    /// How often the server pings each WebSocket. A socket that has sent nothing (not even a
    /// pong) for a whole interval after a ping is considered dead and dropped. Default:
    /// [`DEFAULT_WS_PING_INTERVAL`].
    pub fn ws_ping_interval(mut self, interval: Duration) -> Self {
        self.config.ws_ping_interval = interval;
        self
    }

    /// Who may call the server: a token for the manager API (and optionally the gateway), a
    /// check of your own. Open by default. See [`AccessPolicy`].
    ///
    /// ```
    /// use footlights_core::Registry;
    /// use footlights_server::{AccessPolicy, Server};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let token = std::env::var("FOOTLIGHTS_TOKEN").unwrap_or_else(|_| "dev-token".into());
    /// let server = Server::builder()
    ///     .registry(Registry::builder().start().await?)
    ///     .access(AccessPolicy::token(token).gateway(true))
    ///     .build()?;
    /// # drop(server);
    /// # Ok(()) }
    /// ```
    pub fn access(mut self, policy: AccessPolicy) -> Self {
        self.config.access = policy;
        self
    }

    /// Limits the requests one client address may make (every HTTP request but `/health` and
    /// `/metadata`, WebSocket and SSE openings included); past it, requests get
    /// `actor.rate_limited` (429) with `retryAfterMs` in the metadata. Off by default: a proxy
    /// in front shares one address among many clients, so set it where the server sees the
    /// clients' own addresses. Actions over a WebSocket count too: each one past the rate is
    /// answered with the error, and the connection goes on.
    ///
    /// ```
    /// use footlights_core::Registry;
    /// use footlights_server::{Rate, Server};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = Server::builder()
    ///     .registry(Registry::builder().start().await?)
    ///     .rate_limit_per_client(Rate::per_second(50).burst(200))
    ///     .rate_limit_per_actor(Rate::per_second(500))
    ///     .build()?;
    /// # drop(server);
    /// # Ok(()) }
    /// ```
    pub fn rate_limit_per_client(mut self, rate: Rate) -> Self {
        self.config.rate_per_client = Some(rate);
        self
    }

    /// Limits the requests that may reach one actor (by its id, or its name and key, as the
    /// request names it), whoever sends them; past it, `actor.rate_limited` (429). Checked
    /// before the actor is looked up, so refused requests never wake or create it. Actions sent
    /// over a WebSocket count too: each one past the rate is answered with the error and the
    /// connection goes on. Off by default.
    pub fn rate_limit_per_actor(mut self, rate: Rate) -> Self {
        self.config.rate_per_actor = Some(rate);
        self
    }

    /// Lets browsers call the server (with credentials) only from these origins, such as
    /// `https://app.example.com` (scheme, host and port, as browsers send them in `Origin`).
    /// A response to any other origin carries no CORS headers, so the browser keeps it from
    /// the page.
    ///
    /// Without this setting (the default, what RivetKit clients expect while developing), every
    /// origin is echoed back, except the opaque origin `null` (sandboxed frames, `file:`
    /// pages, some redirects), which is never allowed: answering it with credentials would let
    /// any such page act as the user.
    ///
    /// ```
    /// use footlights_core::Registry;
    /// use footlights_server::Server;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = Server::builder()
    ///     .registry(Registry::builder().start().await?)
    ///     .cors_origins(["https://app.example.com"])
    ///     .build()?;
    /// # drop(server);
    /// # Ok(()) }
    /// ```
    pub fn cors_origins<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.config.cors_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// How long a client may take to send a whole request head (request line and headers),
    /// counted from the moment its connection is accepted or, on a kept-alive connection, from
    /// the first byte of the request. A connection that misses it is closed without an answer.
    /// Default: [`DEFAULT_HEADER_READ_TIMEOUT`].
    ///
    /// This is what stops a client from holding a socket open by sending a request slowly, or
    /// not at all; a WebSocket handshake is a request head like any other.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// How long a client may take to send a whole request body, counted from the end of its
    /// head. The deadline covers the body as a whole, not the gap between two chunks, so
    /// trickling a byte at a time does not extend it. A request that misses it is answered
    /// with 408 Request Timeout, and its connection is closed. Default:
    /// [`DEFAULT_BODY_READ_TIMEOUT`].
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.body_read_timeout = timeout;
        self
    }

    /// How long a kept-alive HTTP connection may wait for its next request once a response
    /// has been sent; then it is closed. WebSocket and SSE connections are not idle while
    /// open: they have [pings](Self::ws_ping_interval) and
    /// [keep-alives](Self::sse_keep_alive). Default: [`DEFAULT_IDLE_TIMEOUT`].
    ///
    /// Behind a proxy, keep it longer than the proxy's own idle timeout for upstream
    /// connections.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How many accepted connections may be waiting for their first request head at once.
    /// While that many are, the server accepts no more (new clients wait in the listener's
    /// backlog) until one sends its head, closes, or is closed by the
    /// [header read timeout](Self::header_read_timeout). Default:
    /// [`DEFAULT_MAX_PENDING_CONNECTIONS`].
    ///
    /// With the header read timeout, this bounds the sockets that clients which connect and
    /// send nothing can hold.
    pub fn max_pending_connections(mut self, count: usize) -> Self {
        self.config.max_pending_connections = count;
        self
    }

    /// How long a graceful shutdown waits, once it has begun, for HTTP requests in flight to
    /// finish and for connections to close. Then the connections left are cut (a request
    /// half sent, an action still running, a client that does not answer the close) and the
    /// registry saves and stops the actors all the same, so that
    /// [`Server::serve`](crate::Server::serve) returns soon after. Default:
    /// [`DEFAULT_SHUTDOWN_TIMEOUT`].
    ///
    /// Keep it below the time a process supervisor waits between its stop signal and killing
    /// the process, with room for the actors to be saved.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// How many messages may wait to be written to one WebSocket or SSE client. A client that
    /// reads slower than its actors send falls behind; past this many waiting messages its
    /// connection is closed with code 1001 and reason `connection.too_slow`, which clients
    /// answer by reconnecting. Default: [`DEFAULT_MAX_QUEUED_MESSAGES`].
    pub fn max_queued_messages(mut self, count: usize) -> Self {
        self.config.max_queued_messages = count;
        self
    }

    /// How many bytes of messages may wait to be written to one WebSocket or SSE client
    /// (counted as the wire size, roughly). Past it the client is closed with
    /// `connection.too_slow` when its turn comes, or let go at once if its socket is not
    /// taking frames. Default: [`DEFAULT_MAX_QUEUED_BYTES`]; at least the outgoing message
    /// limit is sensible, so one large message can wait.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.config.max_queued_bytes = bytes;
        self
    }

    /// How long writing one frame or event to a client may take. A client that stops reading
    /// altogether stalls the write; past this time it counts as gone, as if its link had
    /// dropped (its connection is kept for a resume, with a bounded buffer). Default:
    /// [`DEFAULT_WRITE_TIMEOUT`].
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Serves the host's own routes beside the actors: a web page, static files, a health
    /// check of its own. Every request that no protocol route claims goes to `router`
    /// instead of getting a 404 `route.not_found`, so a catch-all route (`/{*path}`) cannot
    /// hide the actors from clients. With a [base path](Self::base_path), everything outside
    /// it goes to `router`.
    ///
    /// CORS preflights are answered before any route and never reach `router`; its responses
    /// get the same CORS headers as the protocol's. Give it state with
    /// [`Router::with_state`](axum::Router::with_state) first.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use footlights_core::Registry;
    /// use footlights_server::Server;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let page = Router::new().route("/", get(|| async { "<h1>Hello</h1>" }));
    /// let server = Server::builder()
    ///     .registry(Registry::builder().start().await?)
    ///     .fallback(page)
    ///     .build()?;
    /// # drop(server);
    /// # Ok(()) }
    /// ```
    pub fn fallback(mut self, router: axum::Router) -> Self {
        self.config.fallback = Fallback::new(router);
        self
    }

    /// Checks the settings and builds the server.
    ///
    /// # Errors
    /// [`Error::MissingRegistry`] without a registry, [`Error::InvalidBasePath`] for a base
    /// path that is not a plain absolute path, [`Error::InvalidSetting`] for a zero limit, or
    /// an interval or timeout that is zero or longer than a day.
    pub fn build(self) -> Result<Server> {
        let registry = self.registry.ok_or(Error::MissingRegistry)?;
        let mut config = self.config;
        if let Some(path) = self.base_path {
            config.base_path = normalize_base_path(&path)?;
        }
        let positive = [
            ("max_incoming_message_size", config.max_incoming),
            ("max_outgoing_message_size", config.max_outgoing),
            ("max_conn_params_size", config.max_conn_params),
            ("max_in_flight_actions", config.max_in_flight),
            ("max_connections", config.max_connections),
            ("max_queued_messages", config.max_queued_messages),
            ("max_queued_bytes", config.max_queued_bytes),
            ("max_pending_connections", config.max_pending_connections),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::InvalidSetting {
                    name,
                    reason: "must be greater than zero",
                });
            }
        }
        for (name, value) in [
            ("sse_keep_alive", config.sse_keep_alive),
            ("ws_ping_interval", config.ws_ping_interval),
            ("header_read_timeout", config.header_read_timeout),
            ("body_read_timeout", config.body_read_timeout),
            ("idle_timeout", config.idle_timeout),
            ("shutdown_timeout", config.shutdown_timeout),
            ("write_timeout", config.write_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::InvalidSetting {
                    name,
                    reason: "must be longer than zero",
                });
            }
            if value > MAX_INTERVAL {
                return Err(Error::InvalidSetting {
                    name,
                    reason: "must be at most a day",
                });
            }
        }
        Ok(Server::new(registry, Arc::new(config)))
    }
}

/// `""` or `/a/b`: a leading `/`, no trailing `/`, no query, fragment, empty segment or
/// character that needs escaping in a path.
fn normalize_base_path(path: &str) -> Result<String> {
    let invalid = |reason| Error::InvalidBasePath {
        path: path.to_owned(),
        reason,
    };
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') {
        return Err(invalid("it must start with `/`"));
    }
    if trimmed.contains("//") {
        return Err(invalid("it has an empty segment"));
    }
    if trimmed
        .bytes()
        .any(|b| !b.is_ascii_graphic() || matches!(b, b'?' | b'#' | b'%'))
    {
        return Err(invalid(
            "it may hold only visible ASCII characters other than `?`, `#` and `%`",
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_are_normalized() {
        assert_eq!(normalize_base_path("").unwrap(), "");
        assert_eq!(normalize_base_path("/").unwrap(), "");
        assert_eq!(normalize_base_path("/api/rivet/").unwrap(), "/api/rivet");
        assert!(normalize_base_path("api").is_err());
        assert!(normalize_base_path("/a//b").is_err());
        assert!(normalize_base_path("/a?b").is_err());
        assert!(normalize_base_path("/a b").is_err());
    }

    #[tokio::test]
    async fn settings_are_checked() {
        let registry = Registry::builder().start().await.unwrap();
        let build = |b: ServerBuilder| b.registry(registry.clone()).build().err();
        assert!(matches!(
            ServerBuilder::default().build(),
            Err(Error::MissingRegistry)
        ));
        assert!(matches!(
            build(ServerBuilder::default().max_in_flight_actions(0)),
            Some(Error::InvalidSetting {
                name: "max_in_flight_actions",
                ..
            })
        ));
        assert!(matches!(
            build(ServerBuilder::default().sse_keep_alive(Duration::MAX)),
            Some(Error::InvalidSetting {
                name: "sse_keep_alive",
                ..
            })
        ));
        assert!(matches!(
            build(ServerBuilder::default().base_path("no-slash")),
            Some(Error::InvalidBasePath { .. })
        ));
        assert!(matches!(
            build(ServerBuilder::default().header_read_timeout(Duration::ZERO)),
            Some(Error::InvalidSetting {
                name: "header_read_timeout",
                ..
            })
        ));
        assert!(matches!(
            build(ServerBuilder::default().max_pending_connections(0)),
            Some(Error::InvalidSetting {
                name: "max_pending_connections",
                ..
            })
        ));
        assert!(build(ServerBuilder::default().base_path("/ok/")).is_none());
    }
}
