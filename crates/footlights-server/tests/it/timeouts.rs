//! Slow and idle clients: a request head or body that never completes, a kept-alive
//! connection left idle, and connections that never send a request, each cut by its clock
//! while the server serves on.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestServer, bounded, http};

/// The timeout under test: short, so the tests are quick.
const SHORT: Duration = Duration::from_millis(300);
/// How long a test waits for a connection the server should close; far past [`SHORT`].
const WAIT: Duration = Duration::from_secs(10);

/// Reads until the server closes the connection (an end of stream or a reset) and returns
/// what it sent; fails the test if it is still open after [`WAIT`].
async fn closed_within_wait(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let received = String::from_utf8_lossy(&received).into_owned();
    assert!(
        read.is_ok(),
        "the connection is still open after {WAIT:?}; received {received:?}"
    );
    received
}

async fn connect(server: &TestServer) -> TcpStream {
    bounded(TcpStream::connect(server.addr)).await.unwrap()
}

async fn server_still_serves(server: &TestServer) {
    let response = bounded(http().get(server.url("/health")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_request_head_that_stops_halfway_is_cut_at_the_header_timeout() {
    let server = TestServer::with(|b| b.header_read_timeout(SHORT)).await;
    let mut half = connect(&server).await;
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut silent = connect(&server).await;
    let mut handshake = connect(&server).await;
    handshake
        .write_all(
            b"GET /gateway/room/connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        )
        .await
        .unwrap();

    assert_eq!(closed_within_wait(&mut half).await, "", "closed unanswered");
    assert_eq!(
        closed_within_wait(&mut silent).await,
        "",
        "closed unanswered"
    );
    assert_eq!(
        closed_within_wait(&mut handshake).await,
        "",
        "closed unanswered"
    );
    server_still_serves(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_body_that_never_arrives_gets_a_408_at_the_body_timeout() {
    let server = TestServer::with(|b| b.body_read_timeout(SHORT)).await;
    let path = TestServer::query_path("/action/increment", "no-body");
    let mut stream = connect(&server).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         x-rivet-encoding: json\r\nContent-Length: 64\r\n\r\n{{\"args\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    let received = closed_within_wait(&mut stream).await;
    assert!(received.starts_with("HTTP/1.1 408 "), "{received:?}");
    server_still_serves(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
    let server = TestServer::with(|b| b.idle_timeout(SHORT)).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    let received = closed_within_wait(&mut stream).await;
    assert!(received.starts_with("HTTP/1.1 200 "), "{received:?}");
    assert_eq!(received.matches("HTTP/1.1 ").count(), 1, "{received:?}");
    server_still_serves(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_kept_alive_connection_serves_requests_one_after_another() {
    let server = TestServer::with(|b| b.idle_timeout(SHORT).header_read_timeout(SHORT)).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = Vec::new();
    let mut buf = [0u8; 1024];
    // `/health` answers with a short JSON body: the response is in once its body has closed.
    while !first.ends_with(b"}") {
        let n = bounded(stream.read(&mut buf)).await.unwrap();
        assert_ne!(n, 0, "closed after {:?}", String::from_utf8_lossy(&first));
        first.extend_from_slice(&buf[..n]);
    }
    assert!(first.starts_with(b"HTTP/1.1 200 "));
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let second = closed_within_wait(&mut stream).await;
    assert!(second.starts_with("HTTP/1.1 200 "), "{second:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn connections_without_a_first_request_are_capped() {
    let server = TestServer::with(|b| b.max_pending_connections(2)).await;
    let first = connect(&server).await;
    let _second = connect(&server).await;

    // Both slots are held by silent connections: the next client is not served…
    let mut third = connect(&server).await;
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        tokio::time::timeout(SHORT, third.read(&mut buf))
            .await
            .is_err(),
        "answered while two connections wait for their first request"
    );
    // … until one of them goes away.
    drop(first);
    let received = closed_within_wait(&mut third).await;
    assert!(received.starts_with("HTTP/1.1 200 "), "{received:?}");
    server.shutdown().await;
}
