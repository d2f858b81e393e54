//! Transport negotiation: WebSocket first, SSE when a WebSocket cannot be opened, and
//! handshakes that fail transiently are retried.

use footlights_client::{Client, TransportKind};
use futures::StreamExt;

use crate::support::{Proxy, Room, RoomActions, TestServer, bounded, connected, quick};

encodings! {
    async fn websocket_is_preferred_and_sse_used_when_it_is_blocked(setup) {
        let server = TestServer::start().await;
        let proxy = Proxy::start(server.addr).await;
        let client = Client::builder(&proxy.url())
            .encoding(setup.encoding)
            .build()
            .unwrap();
        let room = client.get_or_create::<Room>("negotiate");

        let conn = bounded(room.connect()).await.unwrap();
        assert_eq!(bounded(conn.request_uri()).await.unwrap(), "/connect");
        conn.dispose().await;

        // A proxy that refuses upgrades, as some corporate ones do.
        proxy.block_websockets(true);
        let conn = bounded(room.connect()).await.unwrap();
        assert_eq!(bounded(conn.request_uri()).await.unwrap(), "/connect/sse");
        let mut counts = conn.events::<crate::support::NewCount>();
        assert_eq!(bounded(conn.increment(1)).await.unwrap(), 1);
        assert_eq!(bounded(counts.next()).await, Some(crate::support::NewCount(1)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_handshake_is_retried_until_it_succeeds() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    proxy.block_websockets(true);
    let client = Client::builder(&proxy.url())
        .transports([TransportKind::WebSocket])
        .build()
        .unwrap();
    // The first attempt fails with a 502: a transient failure, so the connection is handed
    // out, reconnecting, and queues its actions.
    let conn = bounded(client.get_or_create::<Room>("retry").connect_with(quick()))
        .await
        .unwrap();
    let mut errors = conn.errors();
    let queued = tokio::spawn({
        let conn = conn.clone();
        async move { conn.increment(2).await }
    });
    let e = bounded(errors.next()).await.unwrap();
    assert_eq!((e.group(), e.code()), ("client", "connection_open_failed"));
    assert!(footlights_client::is_transient(&e));

    proxy.block_websockets(false);
    connected(&conn).await;
    assert_eq!(bounded(queued).await.unwrap().unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoints_speak_tls() {
    // A plain TCP server that hangs up at once: the TLS handshakes fail, and nothing panics
    // for want of a crypto provider.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let client = Client::new(&format!("https://{addr}")).unwrap();
    let room = client.get_or_create::<Room>("tls");
    let e = bounded(room.get_count()).await.unwrap_err();
    assert_eq!((e.group(), e.code()), ("client", "request_failed"));
    let e = bounded(room.connect_with(quick().with_reconnect(false)))
        .await
        .unwrap_err();
    assert_eq!((e.group(), e.code()), ("client", "connection_open_failed"));
}
