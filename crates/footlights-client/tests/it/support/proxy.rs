//! A TCP proxy on 127.0.0.1 that can fail the way networks do: sever every connection at
//! once (both sides see the stream end without a close frame), refuse new connections, or
//! answer WebSocket upgrades with a 502 as a restrictive HTTP proxy would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
struct State {
    /// Refuse new connections: accept and drop them at once.
    refusing: AtomicBool,
    /// Answer WebSocket upgrades with `502 Bad Gateway`.
    block_websockets: AtomicBool,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    /// Bumped to sever every open connection.
    severs: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.severs.send_modify(|n| *n += 1);
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let (severs, _) = watch::channel(0u64);
        let task = tokio::spawn(accept(listener, upstream, state.clone(), severs.clone()));
        Proxy {
            addr,
            state,
            severs,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every open connection: both ends see the stream end abruptly.
    pub fn sever(&self) {
        self.severs.send_modify(|n| *n += 1);
    }

    /// Refuses (`true`) or lets through (`false`) new connections.
    pub fn refuse(&self, on: bool) {
        self.state.refusing.store(on, Ordering::SeqCst);
    }

    /// Answers WebSocket upgrades with 502 (`true`), or lets them through.
    pub fn block_websockets(&self, on: bool) {
        self.state.block_websockets.store(on, Ordering::SeqCst);
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    state: Arc<State>,
    severs: watch::Sender<u64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if state.refusing.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let sever = severs.subscribe();
        tokio::spawn(pipe(client, upstream, state.clone(), sever));
    }
}

/// Carries one connection until either side ends it or the proxy severs it.
async fn pipe(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<State>,
    mut sever: watch::Receiver<u64>,
) {
    let mut head = Vec::new();
    if state.block_websockets.load(Ordering::SeqCst) {
        // Read the request head to see whether it is an upgrade.
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if text.contains("upgrade: websocket") {
            let _ = client
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            return;
        }
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = sever.changed() => {}
    }
    // Dropping both streams ends them without any protocol-level goodbye.
}
