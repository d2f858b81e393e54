//! [`Server`]: routing and the serve loop.
//!
//! All routing is done by hand on the raw path, not by axum's router: gateway paths must be
//! parsed before any percent-decoding (§5), and the base path and header routing (§5.3) apply
//! to every route alike.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use footlights_core::Registry;
use tokio::sync::{Semaphore, mpsc};

use crate::access::{self, AccessRequest, Area};
use crate::builder::{Config, ServerBuilder};
use crate::conn;
use crate::cors::{self, RayId};
use crate::error::{HttpError, Result, method_not_allowed};
use crate::gateway;
use crate::manager;
use crate::metrics::{Metrics, Refused};
use crate::peer::{RivetProtocols, offered_protocols};
use crate::rate::Limiters;
use crate::resume::LiveLinks;
use crate::shutdown::{ConnTracker, Stop};
use crate::sse::Sessions;

/// A network server for a [`Registry`]: the RivetKit manager API, the gateway, stateless
/// actions, WebSocket connections and the SSE transport.
///
/// Build it with [`Server::builder`], then [`serve`](Server::serve) it on a listener the host
/// owns. See the [crate docs](crate) for an example.
#[derive(Debug)]
pub struct Server {
    registry: Registry,
    config: Arc<Config>,
}

/// What every request handler shares. Owned by the router for the life of [`Server::serve`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) config: Arc<Config>,
    /// Fires when the host's shutdown future resolves.
    pub(crate) stop: Stop,
    /// Open WebSocket and SSE connections; `serve` waits for zero before stopping actors.
    pub(crate) conns: ConnTracker,
    /// Open SSE connections by connection id, for their message and close posts.
    pub(crate) sse: Sessions,
    /// Connections carried by a socket or stream right now, for resume.
    pub(crate) links: LiveLinks,
    /// Requests per client address and per actor.
    pub(crate) limits: Limiters,
    /// The series of `/metrics`.
    pub(crate) metrics: Arc<Metrics>,
    /// Rung when the server stops and every quarter of `ws_ping_interval`: a parked
    /// WebSocket waits on this one bell instead of a timer and a stop signal of its own, and
    /// when it rings looks whether the server stops or its ping is due.
    pub(crate) parked_bell: crate::ws::bell::Bell,
    /// What realtime WebSockets need to take broadcasts directly.
    pub(crate) direct: crate::ws::direct::DirectSettings,
}

impl Shared {
    /// A slot for a client connection over `transport` to `address`, counted in the
    /// transport's series and logged when it ends. A refusal because the server is full is
    /// counted and logged here; the caller answers the client.
    pub(crate) fn open_conn(
        &self,
        transport: crate::metrics::Transport,
        address: &crate::gateway::path::ActorAddress,
        ray: RayId,
    ) -> std::result::Result<crate::shutdown::ConnGuard, crate::shutdown::Refusal> {
        match self
            .conns
            .acquire(&self.stop, self.registry.kept_connections())
        {
            Ok(guard) => Ok(guard.logged(crate::logging::ConnLine::open(
                transport,
                self.metrics.conns(transport),
                address,
                ray,
            ))),
            Err(refusal) => {
                if refusal == crate::shutdown::Refusal::Full {
                    self.metrics.refused(Refused::TooManyConnections);
                    tracing::warn!(
                        limit = self.config.max_connections,
                        "connection refused: too many connections"
                    );
                }
                Err(refusal)
            }
        }
    }
}

impl Server {
    /// A builder with the default settings.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    pub(crate) fn new(registry: Registry, config: Arc<Config>) -> Self {
        Server { registry, config }
    }

    /// The registry this server serves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves on `listener` until `shutdown` resolves, then stops gracefully:
    ///
    /// 1. the listener stops accepting: the connections the system has queued for it are
    ///    taken, then it is closed (a successor listening on the same port, see
    ///    [`listen`](crate::listen), gets every connection from then on);
    /// 2. HTTP requests in flight (actions included) finish;
    /// 3. every WebSocket and SSE connection is closed with code 1001 and reason
    ///    `ws.going_away`, which RivetKit clients treat as "reconnect";
    /// 4. once the [shutdown timeout](ServerBuilder::shutdown_timeout) has passed, the
    ///    connections still open are cut, whatever they are doing;
    /// 5. the registry saves and stops every live actor ([`Registry::shutdown`]).
    ///
    /// While serving, each connection is held to the builder's clocks: its request heads must
    /// arrive within the [header read timeout](ServerBuilder::header_read_timeout), request
    /// bodies within the [body read timeout](ServerBuilder::body_read_timeout), and a kept-alive
    /// connection is closed after the [idle timeout](ServerBuilder::idle_timeout). At most
    /// [`max_pending_connections`](ServerBuilder::max_pending_connections) accepted connections
    /// may be waiting for their first request head; past that the listener waits before
    /// accepting more. When accepting fails (for example, the process is out of file
    /// descriptors), the listener logs it and waits before trying again ([`axum::serve::Listener`]
    /// for a `TcpListener` waits a second) while open connections are served on.
    ///
    /// The host owns the socket and the signal: this never installs signal handlers.
    ///
    /// ```no_run
    /// # use footlights_core::Registry;
    /// # use footlights_server::Server;
    /// # async fn demo(registry: Registry) -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = Server::builder().registry(registry).build()?;
    /// let serving = tokio::spawn(server.serve(listener, async move {
    ///     let _ = stopped.await;
    /// }));
    /// // … later: stop gracefully and wait until every actor is saved.
    /// let _ = stop.send(());
    /// serving.await??;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// None at present: accept errors are retried. The `Result` leaves room for errors a
    /// future listener may report.
    pub async fn serve<L, F>(self, mut listener: L, shutdown: F) -> Result<()>
    where
        L: axum::serve::Listener,
        L::Addr: Debug + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (switch, stop) = Stop::new();
        let (cut_switch, cut) = Stop::new();
        let config = self.config;
        let metrics = Arc::new(Metrics::new(self.registry.clone()));
        let limits = Limiters::new(config.rate_per_client, config.rate_per_actor).counting(
            metrics.refusals(Refused::RateLimitClient).clone(),
            metrics.refusals(Refused::RateLimitActor).clone(),
        );
        let shared = Arc::new(Shared {
            registry: self.registry.clone(),
            conns: ConnTracker::new(config.max_connections),
            config: config.clone(),
            stop: stop.clone(),
            sse: Sessions::default(),
            links: LiveLinks::default(),
            limits,
            metrics: metrics.clone(),
            parked_bell: crate::ws::bell::Bell::default(),
            direct: crate::ws::direct::DirectSettings {
                max_outgoing: config.max_outgoing,
                written: metrics.direct_events.clone(),
            },
        });
        tokio::spawn(ring_parked_bell(shared.clone()));
        let app = Router::new()
            .fallback(dispatch)
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(
                shared.config.cors_origins.clone(),
                cors::layer,
            ));
        match listener.local_addr() {
            Ok(addr) => tracing::info!(?addr, base_path = %config.base_path, "serving"),
            Err(e) => tracing::info!(error = %e, "serving"),
        }
        // Every connection task holds a sender; `recv` returns `None` once all are gone.
        let (alive, mut all_closed) = mpsc::channel::<Infallible>(1);
        let context = conn::ConnContext {
            app,
            timeouts: conn::Timeouts {
                header: config.header_read_timeout,
                body: config.body_read_timeout,
                idle: config.idle_timeout,
            },
            stop,
            cut,
            alive,
            bytes: conn::ByteCounters {
                read: metrics.bytes_in.clone(),
                written: metrics.bytes_out.clone(),
            },
        };
        let pending = Arc::new(Semaphore::new(config.max_pending_connections));
        let mut full_warned: Option<Instant> = None;
        let mut shutdown = pin!(shutdown);
        loop {
            let setup = match pending.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    metrics.refused(Refused::PendingConnectionsFull);
                    if full_warned.is_none_or(|at| at.elapsed() >= FULL_WARNING_INTERVAL) {
                        full_warned = Some(Instant::now());
                        tracing::warn!(
                            max_pending_connections = config.max_pending_connections,
                            "too many connections without a first request; waiting before accepting more"
                        );
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        permit = pending.clone().acquire_owned() => match permit {
                            Ok(permit) => permit,
                            Err(_) => break,
                        },
                    }
                }
            };
            let (io, remote) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            tracing::trace!(?remote, "accepted");
            // TCP listeners report a socket address; others (Unix sockets) have no client IP.
            let client = (&remote as &dyn std::any::Any)
                .downcast_ref::<std::net::SocketAddr>()
                .map(std::net::SocketAddr::ip);
            tokio::spawn(conn::serve(io, context.clone(), setup, client));
        }
        // Connections the kernel has already completed would be reset with the listener (and
        // a successor sharing the port would never see them): take them first, up to the
        // usual number of pending ones, whatever the slots say; each serves its first request
        // if it comes at once (see `conn`). The short wait lets the runtime see sockets that
        // are queued but not yet reported ready.
        let late_slots = Arc::new(Semaphore::new(config.max_pending_connections));
        let mut late = 0usize;
        while let Ok(setup) = late_slots.clone().try_acquire_owned() {
            let Ok((io, remote)) = tokio::time::timeout(DRAIN_WAIT, listener.accept()).await else {
                break;
            };
            late += 1;
            let client = (&remote as &dyn std::any::Any)
                .downcast_ref::<std::net::SocketAddr>()
                .map(std::net::SocketAddr::ip);
            tokio::spawn(conn::serve(io, context.clone(), setup, client));
        }
        drop(listener);
        tracing::info!(late, "shutting down: closing connections");
        switch.send_replace(true);
        shared.parked_bell.ring();
        drop(context);
        let drained = tokio::time::timeout(config.shutdown_timeout, async {
            let _ = all_closed.recv().await;
            shared.conns.wait_idle().await;
        })
        .await;
        if drained.is_ok() {
            tracing::info!("connections closed; stopping actors");
        } else {
            tracing::warn!(
                shutdown_timeout = ?config.shutdown_timeout,
                "shutdown timeout passed; cutting the connections left and stopping actors"
            );
            cut_switch.send_replace(true);
            // HTTP connections end as soon as their task sees the cut; WebSocket closes are
            // bounded by their own close timeout and are not waited for.
            let _ = tokio::time::timeout(CUT_WAIT, all_closed.recv()).await;
        }
        shared.registry.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Rings [`Shared::parked_bell`] every quarter ping interval until the server stops, and
/// once more then.
async fn ring_parked_bell(shared: Arc<Shared>) {
    let every = (shared.config.ws_ping_interval / 4).max(std::time::Duration::from_millis(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = shared.stop.clone();
    loop {
        tokio::select! {
            _ = ticks.tick() => shared.parked_bell.ring(),
            () = stop.wait() => break,
        }
    }
    shared.parked_bell.ring();
}

/// How long a stopping server waits for another queued connection before it closes its
/// listener.
const DRAIN_WAIT: Duration = Duration::from_millis(5);

/// How long a shutdown waits, after the cut, for the connection tasks to end.
const CUT_WAIT: Duration = Duration::from_secs(1);

/// The shortest time between two warnings that the pending connections are at their maximum.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Routes one request (preflights never get here, see [`cors::layer`]).
async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let ray = req
        .extensions()
        .get::<RayId>()
        .cloned()
        .unwrap_or_else(RayId::new);
    let Some(path) = strip_base(req.uri().path(), &shared.config.base_path).map(str::to_owned)
    else {
        return shared.config.fallback.handle(req).await;
    };
    let method = req.method().clone();
    if !matches!(path.as_str(), "/health" | "/metadata" | "/metrics") {
        let client = req.extensions().get::<conn::ClientIp>().map(|c| c.0);
        if let Err(e) = shared.limits.client(client) {
            return gateway::reject(req, HttpError::json(e), &ray).await;
        }
    }
    match path.as_str() {
        "/metadata" if method == Method::GET => manager::metadata(&shared),
        "/metrics" if method == Method::GET => match manager_allowed(&shared, &req, &path) {
            Ok(()) => shared.metrics.response(),
            Err(e) => HttpError::json(e).into_response(),
        },
        "/health" if method == Method::GET => manager::health(),
        "/devtools/mod.js" if method == Method::GET => devtools(),
        "/actors" => match manager_allowed(&shared, &req, &path) {
            Ok(()) => manager::actors(&shared, req).await,
            Err(e) => HttpError::json(e).into_response(),
        },
        p if p.starts_with("/actors/") => match manager_allowed(&shared, &req, &path) {
            Ok(()) => manager::actor(&shared, req, &path["/actors/".len()..]).await,
            Err(e) => HttpError::json(e).into_response(),
        },
        p if p == crate::inspector::PREFIX
            || p.starts_with(crate::inspector::PREFIX)
                && p.as_bytes().get(crate::inspector::PREFIX.len()) == Some(&b'/') =>
        {
            crate::inspector::handle(&shared, req, p).await
        }
        "/metadata" | "/health" | "/devtools/mod.js" | "/metrics" => {
            HttpError::json(method_not_allowed()).into_response()
        }
        p if p == "/gateway" || p.starts_with("/gateway/") => {
            gateway::handle(shared, req, path, ray).await
        }
        _ => match header_routed_actor(&req) {
            Some(id) => gateway::handle_header_routed(shared, req, id, path, ray).await,
            None => shared.config.fallback.handle(req).await,
        },
    }
}

/// Checks a manager request against the access policy.
fn manager_allowed(
    shared: &Shared,
    req: &Request,
    path: &str,
) -> Result<(), footlights_protocol::ActionError> {
    area_allowed(shared, Area::Manager, req, path)
}

/// Checks a request to `area` (the manager API, the inspector) against the access policy,
/// counting refusals.
pub(crate) fn area_allowed(
    shared: &Shared,
    area: Area,
    req: &Request,
    path: &str,
) -> Result<(), footlights_protocol::ActionError> {
    let token = access::token_of(area, req.headers(), None);
    let request = AccessRequest {
        area,
        token: token.as_deref(),
        headers: req.headers(),
        path,
    };
    shared
        .config
        .access
        .allow(&request)
        .inspect_err(|e| shared.metrics.refused(Refused::access(e)))
}

/// The path relative to the base path, or `None` if it lies outside it.
fn strip_base<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() {
        return Some(path);
    }
    match path.strip_prefix(base)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// The actor id of a header-routed request (§5.3): `x-rivet-target: actor` with
/// `x-rivet-actor`, or the matching WebSocket subprotocols.
fn header_routed_actor(req: &Request) -> Option<String> {
    let headers = req.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-rivet-target") == Some("actor")
        && let Some(id) = header("x-rivet-actor")
    {
        return Some(id.to_owned());
    }
    let protocols = RivetProtocols::parse(&offered_protocols(headers));
    if protocols.target_actor {
        return protocols.actor;
    }
    None
}

/// `GET /devtools/mod.js`: an empty script keeps browser consoles clean (§2.7).
fn devtools() -> Response {
    let mut response = "".into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_are_stripped_on_segment_boundaries() {
        assert_eq!(strip_base("/metadata", ""), Some("/metadata"));
        assert_eq!(strip_base("/api/metadata", "/api"), Some("/metadata"));
        assert_eq!(strip_base("/api", "/api"), Some("/"));
        assert_eq!(strip_base("/apix/metadata", "/api"), None);
        assert_eq!(strip_base("/metadata", "/api"), None);
    }
}
