//! The harness: a real server on 127.0.0.1 that can be restarted on the same listener, a
//! fault-injecting proxy, the test actor, and the transport × encoding matrix.

pub mod proxy;
pub mod room;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use footlights::Registry;
use footlights_client::{
    Client, ClientBuilder, ConnStatus, Connection, ConnectionOptions, TransportKind,
};
use footlights_protocol::Value;
use footlights_protocol::codec::Encoding;
use footlights_server::Server;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use proxy::Proxy;
pub use room::{NewCount, Note, Room, RoomActions};

/// Every test step is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Runs `fut`, failing the test if it takes longer than [`LIMIT`]; the failure names the
/// calling line.
#[track_caller]
pub fn bounded<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let at = std::panic::Location::caller();
    async move {
        match tokio::time::timeout(LIMIT, fut).await {
            Ok(out) => out,
            Err(_) => panic!("test step at {at} timed out"),
        }
    }
}

/// Runs one test body for each transport and encoding:
/// `matrix! { async fn name(setup) { … } }` makes a module `name` with six tests.
macro_rules! matrix {
    ($(#[$meta:meta])* async fn $name:ident($setup:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::support::Setup;
            use footlights_client::TransportKind::{Sse, WebSocket};
            use footlights_protocol::codec::Encoding::{Bare, Cbor, Json};

            async fn run($setup: Setup) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn websocket_json() { run(Setup::new(WebSocket, Json)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn websocket_cbor() { run(Setup::new(WebSocket, Cbor)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn websocket_bare() { run(Setup::new(WebSocket, Bare)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sse_json() { run(Setup::new(Sse, Json)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sse_cbor() { run(Setup::new(Sse, Cbor)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sse_bare() { run(Setup::new(Sse, Bare)).await }
        }
    };
}

/// Like [`matrix!`], once per encoding (for stateless calls, which use no realtime
/// transport; the setup's transport is WebSocket).
macro_rules! encodings {
    ($(#[$meta:meta])* async fn $name:ident($setup:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::support::Setup;
            use footlights_client::TransportKind::WebSocket;
            use footlights_protocol::codec::Encoding::{Bare, Cbor, Json};

            async fn run($setup: Setup) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn json() { run(Setup::new(WebSocket, Json)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cbor() { run(Setup::new(WebSocket, Cbor)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bare() { run(Setup::new(WebSocket, Bare)).await }
        }
    };
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub transport: TransportKind,
    pub encoding: Encoding,
}

impl Setup {
    pub fn new(transport: TransportKind, encoding: Encoding) -> Setup {
        Setup {
            transport,
            encoding,
        }
    }

    /// A client builder for `url` with this cell's transport and encoding.
    pub fn builder(&self, url: &str) -> ClientBuilder {
        Client::builder(url)
            .encoding(self.encoding)
            .transports([self.transport])
            .connect_timeout(Duration::from_secs(5))
            .request_timeout(Duration::from_secs(10))
    }

    pub fn client(&self, url: &str) -> Client {
        self.builder(url).build().unwrap()
    }
}

/// Connection options with short backoff delays, so reconnection tests stay quick.
pub fn quick() -> ConnectionOptions {
    ConnectionOptions::default().with_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// A listener the server can be restarted on: each `serve` gets a handle to the same socket,
/// so the address never changes and connections made while no server runs wait in the
/// backlog.
#[derive(Debug, Clone)]
struct SharedListener(Arc<TcpListener>);

impl axum::serve::Listener for SharedListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            if let Ok(accepted) = self.0.accept().await {
                return accepted;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A running server (or one between a stop and a restart).
pub struct TestServer {
    pub addr: SocketAddr,
    pub registry: Registry,
    listener: SharedListener,
    running: Option<(
        oneshot::Sender<()>,
        JoinHandle<footlights_server::Result<()>>,
    )>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let registry = Registry::builder().actor::<Room>().start().await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut server = TestServer {
            addr: listener.local_addr().unwrap(),
            registry,
            listener: SharedListener(Arc::new(listener)),
            running: None,
        };
        server.serve();
        server
    }

    fn serve(&mut self) {
        let server = Server::builder()
            .registry(self.registry.clone())
            .build()
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(self.listener.clone(), async move {
            let _ = stopped.await;
        }));
        self.running = Some((stop, task));
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts the server down gracefully and waits until `serve` returned: sockets closed
    /// with 1001, actors saved and stopped. The listener stays open.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            bounded(task).await.unwrap().unwrap();
        }
    }

    /// A new server with the same registry on the same listener.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "stop the server first");
        self.serve();
    }

    /// Calls an action on room `key` in-process (no network).
    pub async fn call(&self, key: &str, action: &str) -> Value {
        self.registry
            .client()
            .get_or_create::<Room>(key)
            .action(action, vec![])
            .await
            .unwrap()
    }

    /// Waits (bounded) until `action` on room `key` answers `expected`, for effects that
    /// land after the call that caused them returned (disconnect hooks).
    pub async fn until(&self, key: &str, action: &str, expected: Value) {
        bounded(async {
            while self.call(key, action).await != expected {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }
}

/// Waits (bounded) until the connection's status satisfies `f`; returns it.
pub async fn status_until<A>(conn: &Connection<A>, f: impl FnMut(&ConnStatus) -> bool) -> ConnStatus
where
    A: footlights_protocol::ActorSpec,
{
    let mut status: watch::Receiver<ConnStatus> = conn.status();
    bounded(status.wait_for(f)).await.unwrap().clone()
}

/// Waits until the connection is linked; returns its connection id.
pub async fn connected<A: footlights_protocol::ActorSpec>(conn: &Connection<A>) -> String {
    match status_until(conn, ConnStatus::is_connected).await {
        ConnStatus::Connected { conn_id, .. } => conn_id.to_string(),
        other => panic!("not connected: {other:?}"),
    }
}

/// Waits until the connection lost its link.
pub async fn reconnecting<A: footlights_protocol::ActorSpec>(conn: &Connection<A>) {
    status_until(conn, |s| *s == ConnStatus::Reconnecting).await;
}
