//! `footlights serve`: bind the listener, open the store, start the registry.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use footlights::cluster::{ClusterConfig, NodeInfo, PostgresDriver};
use footlights::storage::{Durability, SqliteDriver};
use footlights_server::{AccessPolicy, DEFAULT_MAX_CONNECTIONS, Rate, Server};
use tokio::net::TcpListener;

use crate::demo;

/// The file, inside the data directory, that holds every actor's state.
const DB_FILE: &str = "footlights.db";

/// A secret given on the command line: shown as `<redacted>` when the options are printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// What `footlights serve` was asked for: its command-line options.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("token_source").args(["token", "token_file"])))]
pub struct ServeOptions {
    /// Host name or address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (the line printed when ready shows it).
    #[arg(long, default_value_t = 6420)]
    pub port: u16,
    /// Directory for the state file footlights.db; created if missing. One server at a time
    /// may use it (a lock file footlights.db.lock beside the state file says which).
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Also serve testActor, which the JavaScript compatibility tests use (errors, timeouts,
    /// server-side disconnects, create input).
    #[arg(long)]
    pub with_test_actors: bool,
    /// What an acknowledged write survives: power (synced to disk before the answer; the
    /// default) or process (survives a crash or kill of the server, not a power cut; answers
    /// without waiting for the disk).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Power)]
    pub durability: DurabilityArg,
    /// How long a stop (Ctrl-C or SIGTERM) waits for requests in flight and connections to
    /// close, in seconds (decimals allowed). Then the connections left are cut, a request half
    /// sent included, and every awake actor is saved before the process exits.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,
    /// A token the manager API (/actors) requires as Authorization: Bearer (what the
    /// official client sends with createClient(url, { token })). Read from the environment
    /// variable FOOTLIGHTS_TOKEN when not given; never printed.
    #[arg(
        long,
        env = "FOOTLIGHTS_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<Secret>,
    /// Reads the token from this file (surrounding white space is ignored) instead.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Requires the token on actor requests too (x-rivet-token, rvt-token, @token, the
    /// rivet_token. subprotocol). RivetKit 2.0.33 clients send none on WebSockets.
    #[arg(long, requires = "token_source")]
    pub gateway_token: bool,
    /// Lets browsers on this origin (scheme://host:port, as browsers send it) call with
    /// credentials; repeat for several. Without it every origin but null may.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Requests one client address may make per second (bursts of twice as many); past it,
    /// actor.rate_limited (429). Off unless given; behind a proxy every client shares its
    /// address, so limit there instead.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate_limit_per_client: Option<u32>,
    /// Requests that may reach one actor per second, whoever sends them (bursts of twice as
    /// many). Off unless given.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate_limit_per_actor: Option<u32>,
    /// Serves an address other than loopback without a token: anyone who reaches it may
    /// create, list and call actors. Without this flag such a start is refused.
    #[arg(long)]
    pub insecure_open: bool,
    /// Realtime connections (WebSocket and SSE) the server holds at once, over all actors;
    /// past it new ones are refused with actor.overloaded. Each takes a file descriptor. By
    /// default it follows the open-file limit: the server raises its soft limit to the hard
    /// one at start and keeps room for the store and for connections being set up (the
    /// figures are logged); a larger count than the limit allows is lowered to it, with a
    /// warning.
    #[arg(long, value_name = "COUNT")]
    pub max_connections: Option<usize>,
    /// How many sleeping actors the server remembers, most recently used first: their ids by
    /// name and key, so that a call by key skips a lookup in the store, and their start and
    /// sleep times (awake actors are remembered besides). Past it the least recently used are
    /// forgotten (a call to one of them looks its key up again). Each costs about 250 bytes
    /// of memory.
    #[arg(long, value_name = "COUNT", default_value_t = footlights::DEFAULT_REMEMBERED_ACTORS)]
    pub remembered_actors: usize,
    /// The page cache of each of the store's two SQLite connections, in MiB (at least 1).
    /// Pages are cached as they are read or written, so memory grows with the part of the store
    /// in use, up to twice this; a smaller cache reads more from the file (or the operating
    /// system's cache). Not used with --postgres.
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = footlights::storage::DEFAULT_CACHE_BYTES >> 20,
        value_parser = clap::value_parser!(u64).range(1..=1 << 20)
    )]
    pub store_cache_mib: u64,
    /// How long a demo actor with nothing to do stays awake before it saves its state and
    /// sleeps, in seconds (decimals allowed); each type's own when not given (30 for every
    /// demo type). A longer one keeps more actors in memory and spares their callers a load
    /// from the store.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub sleep_timeout: Option<Duration>,
    /// When another footlights serve listens on the same address with the same data
    /// directory, this one takes over from it: it listens beside it at once, then waits up to
    /// this many seconds for it to stop (send it SIGTERM) before opening the store and
    /// serving. See "Restarting without dropping clients" in the guide.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_seconds)]
    pub handover_timeout: Duration,
    /// Starts even if the store fails its checks at start-up, keeping what can be read: a
    /// damaged write-ahead log (the commits after the damage are given up; the log is first
    /// copied beside it to footlights.db-wal.damaged-SECONDS, SECONDS the unix time), a
    /// write-ahead log missing after an unclean stop (the commits that were in it are given
    /// up), or a state file that fails SQLite's quick check (reads of its damaged pages fail).
    /// Each is logged at ERROR. Copy the data directory aside first. Without this flag such a
    /// start is refused, and the error says which check failed.
    #[arg(long)]
    pub recover: bool,
    /// Runs as one node of a cluster: actor state, membership and claims live in this
    /// PostgreSQL database (a postgres:// URL; every node gets the same one) instead of the
    /// data directory. Any node then serves any actor, forwarding to the node that holds it.
    /// Needs --peer-addr. Never printed.
    #[arg(
        long,
        env = "FOOTLIGHTS_POSTGRES",
        hide_env_values = true,
        value_name = "URL",
        requires = "peer_addr"
    )]
    pub postgres: Option<Secret>,
    /// The schema inside the --postgres database that holds the cluster's tables (created if
    /// missing), so that several clusters can share one database.
    #[arg(
        long,
        env = "FOOTLIGHTS_POSTGRES_SCHEMA",
        value_name = "NAME",
        default_value = "public",
        requires = "postgres"
    )]
    pub postgres_schema: String,
    /// This node's name in the cluster, shown in logs and in the database's node table.
    #[arg(
        long,
        env = "FOOTLIGHTS_NODE_NAME",
        value_name = "NAME",
        default_value = "node"
    )]
    pub node_name: String,
    /// Where this node listens for requests the other nodes forward to it, HOST:PORT (port 0
    /// picks a free one). The bound address is what the node advertises, so give one the other
    /// nodes can reach.
    #[arg(
        long,
        env = "FOOTLIGHTS_PEER_ADDR",
        value_name = "HOST:PORT",
        requires = "postgres"
    )]
    pub peer_addr: Option<String>,
    /// The address other nodes use to reach this node's peer listener, when it is not the
    /// address it listens on (behind NAT or a container's port mapping, or listening on
    /// 0.0.0.0). Defaults to the bound --peer-addr.
    #[arg(
        long,
        env = "FOOTLIGHTS_PEER_ADVERTISE",
        value_name = "HOST:PORT",
        requires = "peer_addr"
    )]
    pub peer_advertise: Option<String>,
    /// The node lease in milliseconds: how long after its last renewal a silent node (killed,
    /// paused or cut off) keeps its actors before other nodes may take them. The node renews it
    /// every fifth of it and stops serving on its own three quarters of it after its last
    /// renewal it could confirm.
    #[arg(
        long,
        env = "FOOTLIGHTS_LEASE_MS",
        value_name = "MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(200..=600_000)
    )]
    pub lease_ms: u64,
    /// How log lines on standard error are written: text (one line per event, colours only
    /// on a terminal) or json (one JSON object per line, for log collectors). RUST_LOG
    /// chooses what is logged (default info: one line per request and per connection, plus
    /// warnings and errors).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: footlights_server::logging::LogFormat,
    /// Sends traces to this OpenTelemetry collector over OTLP/HTTP (protobuf), such as
    /// http://127.0.0.1:4318 (they go to its /v1/traces): a span for each request, the actor
    /// action it called and the storage commit that saved it, joined to the caller's trace when
    /// the request has a traceparent header. Off unless given; needs a footlights built with
    /// the otel feature (without it, a warning says the endpoint is ignored).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// The service name the traces carry.
    #[arg(
        long,
        env = "OTEL_SERVICE_NAME",
        value_name = "NAME",
        default_value = "footlights"
    )]
    pub service_name: String,
}

/// Log lines, and trace export when `--otlp-endpoint` asks for it: what
/// [`Telemetry::install`] set up. [`Telemetry::finish`] sends the traces still buffered.
#[derive(Debug)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    traces: Option<footlights_server::otel::Traces>,
}

impl Telemetry {
    /// Installs the global log subscriber in `--log-format`, exporting traces as well when
    /// `--otlp-endpoint` is given; the exporter sends from tasks on `runtime`.
    ///
    /// An endpoint given to a footlights built without the `otel` feature is ignored, with a
    /// warning.
    ///
    /// # Errors
    /// When a subscriber is already installed, or the endpoint is not an http:// URL.
    pub fn install(
        options: &ServeOptions,
        runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Telemetry> {
        #[cfg(feature = "otel")]
        if let Some(endpoint) = &options.otlp_endpoint {
            let traces =
                footlights_server::otel::Traces::otlp(endpoint, &options.service_name, runtime)?;
            footlights_server::logging::init_with_traces(options.log_format, &traces)
                .context("cannot install the log subscriber")?;
            tracing::info!(endpoint = %endpoint, service = %options.service_name, "exporting traces over OTLP");
            return Ok(Telemetry {
                traces: Some(traces),
            });
        }
        footlights_server::logging::init(options.log_format)
            .context("cannot install the log subscriber")?;
        // Not an error: OTEL_EXPORTER_OTLP_ENDPOINT may be set for every process of a host.
        #[cfg(not(feature = "otel"))]
        let _ = runtime;
        #[cfg(not(feature = "otel"))]
        if options.otlp_endpoint.is_some() {
            tracing::warn!(
                "--otlp-endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) ignored: this footlights was \
                 built without the otel feature (cargo install footlights-cli --features otel)"
            );
        }
        Ok(Telemetry {
            #[cfg(feature = "otel")]
            traces: None,
        })
    }

    /// Sends the traces still buffered, once the server has stopped; call it outside the
    /// runtime's tasks, while the runtime still runs. A failure is logged, not returned: the
    /// server itself stopped cleanly.
    pub fn finish(self) {
        #[cfg(feature = "otel")]
        if let Some(traces) = self.traces
            && let Err(e) = traces.shutdown()
        {
            tracing::warn!(error = %e, "the last traces were not sent");
        }
    }
}

impl ServeOptions {
    /// The token, from `--token`, `FOOTLIGHTS_TOKEN` or `--token-file`.
    fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(Secret(token)) = &self.token {
            return Ok(Some(token.clone()));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        let token = text.trim();
        anyhow::ensure!(
            !token.is_empty(),
            "the token file {} is empty",
            path.display()
        );
        Ok(Some(token.to_owned()))
    }
}

/// The demo actors, with the settings the command line changes.
fn demo_registry(options: &ServeOptions) -> footlights::RegistryBuilder {
    let sleep_timeout = options.sleep_timeout;
    demo::registry_with(move |actor| {
        if let Some(timeout) = sleep_timeout {
            actor.sleep_timeout = timeout;
        }
    })
}

/// The demo registry on the SQLite store in the data directory.
async fn sqlite_registry(
    lock_wait: Duration,
    options: &ServeOptions,
) -> anyhow::Result<footlights::RegistryBuilder> {
    let dir = &options.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let db = dir.join(DB_FILE);
    let driver = SqliteDriver::builder(&db)
        .durability(options.durability.into())
        .lock_wait(lock_wait)
        .recover(options.recover)
        .cache_bytes(options.store_cache_mib << 20)
        .open()
        .await
        .with_context(|| format!("cannot open the store {}", db.display()))?;
    tracing::info!(
        db = %db.display(),
        durability = ?options.durability,
        recover = options.recover,
        cache_mib = options.store_cache_mib,
        "store open"
    );
    Ok(demo_registry(options).driver(driver))
}

/// The demo registry as a node of the cluster kept in the PostgreSQL database at `url`, and
/// the listener for its peers (bound first: its address is what the node registers).
async fn cluster_registry(
    url: &str,
    options: &ServeOptions,
) -> anyhow::Result<(footlights::RegistryBuilder, TcpListener)> {
    let peer_addr = options.peer_addr.as_deref().unwrap_or("127.0.0.1:0");
    let peers = TcpListener::bind(peer_addr)
        .await
        .with_context(|| format!("cannot listen for peers on {peer_addr}"))?;
    let bound = peers.local_addr()?;
    let advertised = match &options.peer_advertise {
        Some(addr) => addr.clone(),
        None => bound.to_string(),
    };
    let driver = PostgresDriver::builder(url)
        .schema(&options.postgres_schema)
        .connect()
        .await
        .context("cannot connect to the PostgreSQL database given by --postgres")?;
    let config = ClusterConfig::new(NodeInfo::new(&options.node_name, advertised.clone()))
        .lease(Duration::from_millis(options.lease_ms));
    tracing::info!(node = %options.node_name, peer_addr = %bound, advertised = %advertised, lease_ms = options.lease_ms, "cluster store open");
    let registry = demo_registry(options)
        .shared_driver(Arc::new(driver.clone()))
        .cluster(Arc::new(driver), config);
    Ok((registry, peers))
}

/// File descriptors kept for what is not a realtime connection: the store's files, the
/// listener, connections still being set up (the server's `max_pending_connections`, 512) and
/// some room; a quarter of the limit when that is less.
const RESERVED_FILES: u64 = 1024;

/// The realtime connections an open-file limit of `files` leaves room for.
pub fn connections_for_files(files: u64) -> u64 {
    files.saturating_sub(RESERVED_FILES.min(files / 4)).max(1)
}

/// How many realtime connections to allow: `asked`, or by default what the open-file limit
/// leaves (after raising the soft limit to the hard one), never more than that.
fn connection_limit(asked: Option<usize>) -> usize {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit");
            let limit = asked.unwrap_or(DEFAULT_MAX_CONNECTIONS);
            tracing::info!(max_connections = limit, "connection limit");
            return limit;
        }
    };
    let room = usize::try_from(connections_for_files(files)).unwrap_or(usize::MAX);
    let limit = match asked {
        Some(n) if n > room => {
            tracing::warn!(
                asked = n,
                open_file_limit = files,
                max_connections = room,
                "--max-connections is more than the open-file limit allows; lowered"
            );
            room
        }
        Some(n) => n,
        None => room,
    };
    tracing::info!(
        max_connections = limit,
        open_file_limit = files,
        "connection limit"
    );
    limit
}

/// A positive number of seconds, such as `10` or `2.5`, at most a day.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!(
            "`{text}` must be more than 0 and at most 86400 seconds (a day)"
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
}

/// The `--durability` choices, see [`Durability`]. The variants' comments are the help text of
/// `footlights serve --help`: plain words, no markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// Each write is synced to disk before its answer: it survives a power cut.
    Power,
    /// Answers without waiting for the disk: a write survives a killed server, not a power
    /// cut.
    Process,
}

impl From<DurabilityArg> for Durability {
    fn from(arg: DurabilityArg) -> Self {
        match arg {
            DurabilityArg::Power => Durability::Power,
            DurabilityArg::Process => Durability::Process,
        }
    }
}

/// A server that is bound and ready to accept connections: [`Listening::open`] did everything
/// that can fail at start-up, so its address can be announced before serving.
#[derive(Debug)]
pub struct Listening {
    server: Server,
    listener: TcpListener,
    addr: SocketAddr,
    /// A cluster node's listener for requests forwarded by its peers.
    peers: Option<TcpListener>,
}

/// A listener bound for `footlights serve`, before the store is open: [`Bound::open`] finishes
/// the start.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    /// Where the listener came from.
    origin: Origin,
}

/// How a [`Bound`] listener came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Bound here; nothing else listened on the address.
    Fresh,
    /// Handed over by a supervisor (systemd socket activation).
    Inherited,
    /// Bound beside another server on the same address and data directory, which this one
    /// takes over from once it stops.
    Handover,
    /// A cluster node bound beside other nodes of its cluster on the same address; they share
    /// it.
    Shared,
}

impl Bound {
    /// Listens for `footlights serve`: on the socket a supervisor passed, if any
    /// ([`footlights_server::listen::inherited`]); else on `--host`/`--port` with a shared port
    /// ([`footlights_server::listen::bind_shared`]). An address another server already listens
    /// on is refused, unless that server holds the same data directory: then this is a
    /// [handover](Origin::Handover).
    ///
    /// # Errors
    /// When the host does not resolve or the address cannot be bound; when another program or
    /// another server with a different data directory listens on it.
    pub async fn bind(options: &ServeOptions) -> anyhow::Result<Bound> {
        if let Some(listener) = footlights_server::listen::inherited()
            .context("cannot use the socket passed by the supervisor (LISTEN_FDS)")?
        {
            tracing::info!(addr = ?listener.local_addr().ok(), "listening on the socket passed by the supervisor");
            return Ok(Bound {
                listener,
                origin: Origin::Inherited,
            });
        }
        let cannot = || format!("cannot listen on {}:{}", options.host, options.port);
        let addr = tokio::net::lookup_host((options.host.as_str(), options.port))
            .await
            .with_context(cannot)?
            .next()
            .with_context(cannot)?;
        let db = options.data_dir.join(DB_FILE);
        let origin = if options.postgres.is_some() {
            // Nodes of a cluster may share one address: the kernel spreads connections over
            // them. (A program that did not ask for a shared port keeps it to itself: the bind
            // below fails.)
            if footlights_server::listen::address_in_use(addr) {
                Origin::Shared
            } else {
                Origin::Fresh
            }
        } else if footlights_server::listen::address_in_use(addr) {
            let ours = SqliteDriver::in_use_elsewhere(&db).unwrap_or(false);
            anyhow::ensure!(
                ours,
                "cannot listen on {addr}: address in use (by a program other than a footlights \
                 server of the data directory {})",
                options.data_dir.display()
            );
            Origin::Handover
        } else {
            Origin::Fresh
        };
        let listener = footlights_server::listen::bind_shared(addr).with_context(cannot)?;
        if origin == Origin::Handover {
            tracing::info!(
                %addr,
                data_dir = %options.data_dir.display(),
                timeout = ?options.handover_timeout,
                "another server serves this address and data directory: listening beside it, \
                 taking over once it stops (send it SIGTERM)"
            );
        }
        Ok(Bound { listener, origin })
    }

    /// Where the listener came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    /// When the socket cannot say.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Opens the store in the data directory (in a handover, once the other server has closed
    /// it) and starts the demo registry. Connections that arrive meanwhile wait in the
    /// listener's backlog.
    ///
    /// # Errors
    /// As [`Listening::open`].
    pub async fn open(self, options: &ServeOptions) -> anyhow::Result<Listening> {
        let Bound { listener, origin } = self;
        let lock_wait = match origin {
            Origin::Handover => options.handover_timeout,
            Origin::Fresh | Origin::Inherited | Origin::Shared => Duration::ZERO,
        };
        Listening::start(listener, lock_wait, options).await
    }
}

impl Listening {
    /// Binds the listener ([`Bound::bind`]), then opens the store in the data directory and
    /// starts the demo registry ([`Bound::open`]).
    ///
    /// The address is bound first: a start that fails because the port is taken leaves no data
    /// directory or store behind, and says which address it could not listen on.
    ///
    /// # Errors
    /// When the address cannot be bound, the data directory cannot be created, or the store
    /// cannot be opened (for example, it was written by a newer version, another process is
    /// serving the same data directory, or it fails a check at open and `--recover` was not
    /// given).
    pub async fn open(options: &ServeOptions) -> anyhow::Result<Listening> {
        Bound::bind(options).await?.open(options).await
    }

    async fn start(
        listener: TcpListener,
        lock_wait: Duration,
        options: &ServeOptions,
    ) -> anyhow::Result<Listening> {
        let addr = listener.local_addr()?;
        let token = options.token()?;
        match (&token, addr.ip().is_loopback(), options.insecure_open) {
            (None, false, false) => anyhow::bail!(
                "refusing to serve {addr} without a token: anyone who reaches it could create, \
                 list and call actors; give one with --token, FOOTLIGHTS_TOKEN or --token-file, \
                 or pass --insecure-open"
            ),
            (None, false, true) => tracing::warn!(
                %addr,
                "serving a non-loopback address with no token (--insecure-open): anyone who reaches it may create, list and call actors"
            ),
            _ => {}
        }
        let (mut registry, peers) = match &options.postgres {
            Some(Secret(url)) => {
                let (registry, peers) = cluster_registry(url, options).await?;
                (registry, Some(peers))
            }
            None => (sqlite_registry(lock_wait, options).await?, None),
        };
        if options.with_test_actors {
            registry = demo::register_test_actors(registry);
        }
        let registry = registry
            .remembered_actors(options.remembered_actors)
            .start()
            .await
            .context("cannot start the actor registry")?;
        let mut server = Server::builder()
            .registry(registry)
            .shutdown_timeout(options.shutdown_timeout)
            .max_connections(connection_limit(options.max_connections));
        if let Some(token) = token {
            server = server.access(AccessPolicy::token(token).gateway(options.gateway_token));
        }
        let rate = |n: u32| Rate::per_second(n).burst(n.saturating_mul(2));
        if let Some(n) = options.rate_limit_per_client {
            server = server.rate_limit_per_client(rate(n));
        }
        if let Some(n) = options.rate_limit_per_actor {
            server = server.rate_limit_per_actor(rate(n));
        }
        if !options.cors_origins.is_empty() {
            server = server.cors_origins(options.cors_origins.iter().cloned());
        }
        let server = server.build()?;
        Ok(Listening {
            server,
            listener,
            addr,
            peers,
        })
    }

    /// The address other nodes of the cluster forward requests to, for a cluster node.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peers.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// This node's cluster incarnation, for a cluster node.
    pub fn node(&self) -> Option<String> {
        self.server.registry().node()
    }

    /// The address the listener is bound to (with the real port when `0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then stops gracefully and returns once every actor is
    /// saved (see [`Server::serve`]).
    ///
    /// # Errors
    /// When serving fails.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        match self.peers {
            Some(peers) => {
                let both = footlights_server::listen::Both::new(self.listener, peers);
                self.server.serve(both, shutdown).await?;
            }
            None => self.server.serve(self.listener, shutdown).await?,
        }
        Ok(())
    }
}
