//! Listening sockets that outlive a process: how a new server takes over an address from the
//! one it replaces without refusing a connection.
//!
//! A restart that no client notices needs a socket that is listening at every instant. Two
//! ways give one:
//!
//! - **Shared ports** ([`bind_shared`]). Every server listens with `SO_REUSEPORT`, so a
//!   successor can listen on the same address while its predecessor still does; the kernel
//!   then spreads new connections over both. The predecessor stops accepting when it is told to
//!   stop (see [`Server::serve`](crate::Server::serve)): from then on every new connection goes
//!   to the successor, which holds them in its backlog until it is ready. Linux only closes a
//!   listening socket's backlog with it: the few connections the kernel queued for the old
//!   socket in the instant between its last accept and its close are reset (on Linux 5.14 and
//!   newer, `sysctl net.ipv4.tcp_migrate_req=1` moves them to the successor instead).
//! - **An inherited socket** ([`inherited`]). A supervisor such as systemd (socket activation)
//!   owns the listening socket and hands it to each process it starts. Between two processes
//!   the socket keeps listening and connections wait in its backlog: nothing is ever reset.
//!
//! [`address_in_use`] lets a host tell "my predecessor is still listening here" from "another
//! program has this port", which a shared port would otherwise hide.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// How many connections the kernel queues for a listening socket that has not accepted them
/// yet. A successor waiting for its predecessor's store holds the connections of that wait
/// here.
pub const BACKLOG: i32 = 1024;

/// Listens on `addr` with `SO_REUSEADDR` and, on Unix, `SO_REUSEPORT`: another process of
/// the same user may listen on the same address beside it, which is how a successor takes over
/// (see the [module docs](self)). Port 0 picks a free port, as with
/// [`TcpListener::bind`].
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let listener = footlights_server::listen::bind_shared("127.0.0.1:6420".parse().unwrap())?;
/// println!("listening on {}", listener.local_addr()?);
/// # Ok(()) }
/// ```
///
/// # Errors
/// When the socket cannot be created or bound: for example, another program listens on
/// `addr` without `SO_REUSEPORT`, or the port is privileged. Must be called inside a Tokio
/// runtime.
pub fn bind_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Whether something listens on `addr` right now: a socket without `SO_REUSEPORT` cannot bind
/// it. False for port 0 and when the test itself fails for another reason (the bind that
/// follows will report that reason).
///
/// ```no_run
/// let addr = "127.0.0.1:6420".parse().unwrap();
/// if footlights_server::listen::address_in_use(addr) {
///     println!("{addr} is taken");
/// }
/// ```
pub fn address_in_use(addr: SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    let Ok(socket) = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
    else {
        return false;
    };
    // `SO_REUSEADDR` alone lets a bind pass over connections in TIME_WAIT, not over a listener.
    if socket.set_reuse_address(true).is_err() {
        return false;
    }
    matches!(socket.bind(&addr.into()), Err(e) if e.kind() == io::ErrorKind::AddrInUse)
}

/// The listening TCP socket a supervisor handed to this process, if it did: systemd's socket
/// activation (`LISTEN_FDS`, `LISTEN_PID`), the first socket passed. `None` when none was
/// passed. The variables are read once; later calls return `None`.
///
/// A systemd unit pair that restarts without refusing a connection:
///
/// ```text
/// # /etc/systemd/system/footlights.socket
/// [Socket]
/// ListenStream=127.0.0.1:6420
///
/// [Install]
/// WantedBy=sockets.target
///
/// # /etc/systemd/system/footlights.service
/// [Service]
/// ExecStart=/usr/local/bin/footlights serve --data-dir /var/lib/footlights
/// KillSignal=SIGTERM
/// ```
///
/// # Errors
/// When a socket was passed but is not a listening TCP socket, or cannot be made
/// non-blocking. Must be called inside a Tokio runtime.
pub fn inherited() -> io::Result<Option<TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let Some(listener) = fds.take_tcp_listener(0)? else {
        return Ok(None);
    };
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_shared_listeners_share_a_port_and_a_plain_one_cannot() {
        let first = bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        assert!(address_in_use(addr), "the first listener is seen");
        let second = bind_shared(addr).expect("a second shared listener on the same port");
        assert_eq!(second.local_addr().unwrap(), addr);
        assert!(
            TcpListener::bind(addr).await.is_err(),
            "a listener without SO_REUSEPORT is refused"
        );
        drop((first, second));
        assert!(!address_in_use(addr), "free again once both are closed");
    }

    #[tokio::test]
    async fn a_plain_listener_keeps_shared_ones_out() {
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = plain.local_addr().unwrap();
        assert!(address_in_use(addr));
        let err = bind_shared(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[tokio::test]
    async fn a_connection_reaches_the_successor_once_the_first_listener_is_closed() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let first = bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let successor = bind_shared(addr).unwrap();
        drop(first);
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut served, _) = successor.accept().await.unwrap();
        client.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        served.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"x");
    }

    #[test]
    fn no_inherited_socket_without_the_variables() {
        // The test runner passes no sockets (LISTEN_PID, if set at all, names another process).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        assert!(inherited().unwrap().is_none());
    }
}

/// Two listening sockets served as one: the public address and, for a cluster node, the peer
/// address other nodes forward requests to. Both serve the same routes;
/// [`local_addr`](axum::serve::Listener::local_addr) reports the first.
///
/// ```no_run
/// # use footlights_server::{Server, listen::Both};
/// # async fn demo(server: Server) -> Result<(), Box<dyn std::error::Error>> {
/// let public = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let peers = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// server.serve(Both::new(public, peers), std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Both {
    first: TcpListener,
    second: TcpListener,
}

impl Both {
    /// Serves `first` and `second` together.
    pub fn new(first: TcpListener, second: TcpListener) -> Self {
        Both { first, second }
    }
}

impl axum::serve::Listener for Both {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        tokio::select! {
            accepted = axum::serve::Listener::accept(&mut self.first) => accepted,
            accepted = axum::serve::Listener::accept(&mut self.second) => accepted,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.first.local_addr()
    }
}
