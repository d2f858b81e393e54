//! [`serve`] and [`serve_with`]: a server binary's `main` in one call.

use std::fmt;
use std::io::Write as _;

use footlights_core::Registry;
use footlights_server::Server;
use tokio::net::{TcpListener, ToSocketAddrs};

/// Serves `registry`'s actors on `addr` until Ctrl-C or SIGTERM: the whole `main` of a server.
///
/// It logs to standard error (what `RUST_LOG` selects, `info` by default; colours only on a
/// terminal, never with `NO_COLOR` set) unless the program has set up logging already, listens
/// on `addr`, prints one line to standard output once it accepts connections,
///
/// ```text
/// listening on http://127.0.0.1:6420
/// ```
///
/// with the address it really bound (port 0 picks a free port, and the line shows which),
/// and serves until Ctrl-C or SIGTERM. Then it stops gracefully: realtime clients are told to
/// reconnect, requests in flight finish and every awake actor is saved before it returns.
///
/// `addr` is a [`SocketAddr`](std::net::SocketAddr) or text such as `"127.0.0.1:6420"` or
/// `"localhost:0"`. For a server with settings of its own (a token, CORS origins, a page
/// served beside the actors), build a [`Server`] and call [`serve_with`].
///
/// ```no_run
/// use footlights::prelude::*;
///
/// #[derive(Default, Serialize, Deserialize)]
/// pub struct Counter {
///     count: i64,
/// }
///
/// #[footlights::actor]
/// impl Counter {
///     #[action]
///     fn increment(&mut self, amount: i64) -> i64 {
///         self.count += amount;
///         self.count
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let registry = Registry::builder()
///         .actor::<Counter>()
///         .driver(footlights::storage::SqliteDriver::open("counter.db").await?)
///         .start()
///         .await?;
///     footlights::serve(registry, "127.0.0.1:6420").await?;
///     Ok(())
/// }
/// ```
///
/// # Errors
/// [`ServeError::Listen`] when `addr` cannot be resolved or bound (the message names it: a
/// port taken by another process reads `cannot listen on 127.0.0.1:6420: Address already in
/// use`); [`ServeError::Server`] when the server fails.
pub async fn serve<A>(registry: Registry, addr: A) -> Result<(), ServeError>
where
    A: ToSocketAddrs + fmt::Display,
{
    let server = Server::builder()
        .registry(registry)
        .build()
        .map_err(ServeError::Server)?;
    serve_with(server, addr).await
}

/// [`serve`] for a [`Server`] built with settings of its own: logs, listens on `addr`, prints
/// `listening on http://…` and serves until Ctrl-C or SIGTERM.
///
/// ```no_run
/// # async fn run(registry: footlights::Registry) -> Result<(), footlights::ServeError> {
/// use footlights::server::AccessPolicy;
///
/// let server = footlights::Server::builder()
///     .registry(registry)
///     .access(AccessPolicy::token("a long random secret"))
///     .build()?;
/// footlights::serve_with(server, "127.0.0.1:6420").await
/// # }
/// ```
///
/// # Errors
/// As [`serve`].
pub async fn serve_with<A>(server: Server, addr: A) -> Result<(), ServeError>
where
    A: ToSocketAddrs + fmt::Display,
{
    init_logging();
    // Installed before the listener opens, so a signal sent once the address is printed
    // stops the server instead of killing the process.
    let stop = footlights_server::shutdown_signal();
    let listen_error = |source| ServeError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(&addr).await.map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    {
        // Scripts and tests wait for this line: write it whole and at once.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on http://{local}");
        let _ = stdout.flush();
    }
    server
        .serve(listener, stop)
        .await
        .map_err(ServeError::Server)
}

/// Logs to standard error with `RUST_LOG`'s filter (default `info`), coloured only on a
/// terminal (and never with `NO_COLOR`), as `footlights serve` does
/// ([`footlights_server::logging::init`]). Leaves a subscriber the program installed itself in
/// place.
fn init_logging() {
    let _ = footlights_server::logging::init(footlights_server::logging::LogFormat::Text);
}

/// Why [`serve`] or [`serve_with`] stopped with an error.
///
/// Its `Debug` form is its message, so a `main` that returns it prints a readable line.
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be resolved or listened on (taken by another process, say).
    Listen {
        /// The address as given.
        addr: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The server could not be built, or failed while serving.
    Server(footlights_server::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServeError::Server(error) => {
                write!(f, "{error}")?;
                // The server's error keeps its cause as a source; a one-line message wants it.
                let mut cause = std::error::Error::source(error);
                while let Some(e) = cause {
                    write!(f, ": {e}")?;
                    cause = e.source();
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ServeError {}

impl From<footlights_server::Error> for ServeError {
    fn from(error: footlights_server::Error) -> Self {
        ServeError::Server(error)
    }
}
