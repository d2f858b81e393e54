//! Graceful shutdown: sockets and streams close with 1001, in-flight HTTP actions finish,
//! then `serve` returns; past the shutdown timeout the connections left are cut and the actors
//! are saved all the same. The actors' `wait_until` tasks finish before `serve` returns.

use std::time::Duration;

use footlights::storage::SqliteDriver;
use footlights::{Registry, Value};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    Room, TestServer, bounded, http, json_body, next_close, until_tag, ws_connect,
};

const JSON: &[&str] = &["rivet", "rivet_encoding.json"];

#[tokio::test]
async fn shutdown_closes_websockets_with_going_away() {
    let mut server = TestServer::start().await;
    let (mut ws, _) = ws_connect(&server, &TestServer::query_path("/connect", "bye"), JSON).await;
    until_tag(&mut ws, "Init").await;
    server.trigger_shutdown();
    assert_eq!(
        next_close(&mut ws).await,
        (1001, "ws.going_away".to_owned())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_http_action_in_flight_completes_during_shutdown() {
    let mut server = TestServer::start().await;
    let held = tokio::spawn(
        http()
            .post(server.url(&TestServer::query_path("/action/hold", "drain")))
            .body(r#"{"args":[]}"#)
            .send(),
    );
    // The held action is waiting in the actor once `waiting` reports it.
    bounded(async {
        while server.call("drain", "waiting").await != Value::Int(1) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // A socket's 1001 close shows the shutdown has begun.
    let (mut ws, _) = ws_connect(&server, &TestServer::query_path("/connect", "drain"), JSON).await;
    until_tag(&mut ws, "Init").await;
    server.trigger_shutdown();
    assert_eq!(next_close(&mut ws).await.0, 1001);

    assert_eq!(server.call("drain", "release").await, Value::Int(1));
    let response = bounded(held).await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(response).await, json!({"output": 0}));
    server.shutdown().await;
}

#[tokio::test]
async fn sse_streams_end_with_going_away_on_shutdown() {
    let mut server = TestServer::start().await;
    let base = server.url(&TestServer::query_path("/connect/sse", "sse-bye"));
    let response = bounded(http().get(base).send()).await.unwrap();
    let mut body = response.bytes_stream();
    use futures::StreamExt;
    let mut text = String::new();
    while !text.contains("\"tag\":\"Init\"") {
        let chunk = bounded(body.next()).await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    server.trigger_shutdown();
    while let Some(chunk) = bounded(body.next()).await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert!(
        text.ends_with(
            "event: footlights-close\ndata: {\"code\":1001,\"reason\":\"ws.going_away\"}\n\n"
        ),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_cuts_half_sent_requests_at_its_timeout_and_still_saves_the_actors() {
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(500);
    // Far longer than the wait below: only the shutdown timeout can end these requests.
    const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("footlights.db");
    let driver = SqliteDriver::open(&db).await.unwrap();
    let registry = Registry::builder()
        .actor::<Room>()
        .driver(driver)
        .start()
        .await
        .unwrap();
    let server = TestServer::with_registry(registry, |b| {
        b.shutdown_timeout(SHUTDOWN_TIMEOUT)
            .header_read_timeout(CLIENT_TIMEOUT)
            .body_read_timeout(CLIENT_TIMEOUT)
    })
    .await;

    // An acknowledged write: the answer leaves only once the state is on disk.
    let response = bounded(
        http()
            .post(server.url(&TestServer::query_path("/action/increment", "kept")))
            .header("x-rivet-encoding", "json")
            .body(r#"{"args":[5]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_body(response).await, json!({"output": 5}));

    // Half a request head, and a head whose body never comes.
    let mut half_head = bounded(TcpStream::connect(server.addr)).await.unwrap();
    half_head
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut half_body = bounded(TcpStream::connect(server.addr)).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nx-rivet-encoding: json\r\nContent-Length: 64\r\n\r\n{{",
        TestServer::query_path("/action/increment", "kept")
    );
    half_body.write_all(head.as_bytes()).await.unwrap();
    // Connections are accepted in order: once a later one is answered, both are being served.
    let response = bounded(http().get(server.url("/health")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    server
        .shutdown_within(SHUTDOWN_TIMEOUT + Duration::from_secs(5))
        .await;
    drop((half_head, half_body));

    // The write is in the store.
    let driver = SqliteDriver::open(&db).await.unwrap();
    let reopened = TestServer::with_registry(
        Registry::builder()
            .actor::<Room>()
            .driver(driver)
            .start()
            .await
            .unwrap(),
        |b| b,
    )
    .await;
    assert_eq!(reopened.call("kept", "getCount").await, Value::Int(5));
    reopened.shutdown().await;
}

#[tokio::test]
async fn a_connection_queued_when_the_stop_begins_is_served_not_reset() {
    let mut server = TestServer::with(|b| b.max_pending_connections(1)).await;
    // A silent connection holds the only slot: the next one waits in the listener's backlog,
    // where closing the listener would reset it.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut queued = TcpStream::connect(server.addr).await.unwrap();
    queued
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    server.trigger_shutdown();
    let mut answer = String::new();
    bounded(queued.read_to_string(&mut answer))
        .await
        .expect("an answer, not a reset");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:?}");
    // The silent one, which never sent a byte, is let go without waiting for its header
    // timeout (10 s), so the stop is quick.
    let mut rest = Vec::new();
    let _ = bounded(silent.read_to_end(&mut rest)).await;
    assert!(
        rest.is_empty(),
        "nothing was sent to a connection that asked nothing"
    );
    server.shutdown_within(Duration::from_secs(5)).await;
}

/// Set by [`Lingerer`] tasks once their work is done, one per key (`"0"`, `"1"`).
static WROTE: [std::sync::atomic::AtomicBool; 2] =
    [const { std::sync::atomic::AtomicBool::new(false) }; 2];
/// Lets the `wait_until` task finish, one per key.
static RELEASE: std::sync::LazyLock<[tokio::sync::Notify; 2]> =
    std::sync::LazyLock::new(Default::default);
/// Notified by the sleep hook, one per key.
static SLEEPING: std::sync::LazyLock<[tokio::sync::Notify; 2]> =
    std::sync::LazyLock::new(Default::default);

/// An actor whose action leaves a `wait_until` task behind.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Lingerer {}

fn slot(ctx: &footlights::Ctx<Lingerer>) -> usize {
    ctx.key().to_string().parse().unwrap()
}

#[footlights::actor]
impl Lingerer {
    async fn on_sleep(&mut self, ctx: &footlights::Ctx<Self>) {
        SLEEPING[slot(ctx)].notify_one();
    }

    /// A task that records its work once the test releases it; with `sleep`, the actor goes
    /// to sleep at once (and its sleep waits for the task).
    #[action]
    fn linger(&self, ctx: &footlights::Ctx<Self>, sleep: bool) {
        let slot = slot(ctx);
        ctx.wait_until(async move {
            RELEASE[slot].notified().await;
            WROTE[slot].store(true, std::sync::atomic::Ordering::SeqCst);
        });
        if sleep {
            ctx.sleep();
        }
    }
}

#[tokio::test]
async fn a_stopping_server_waits_for_wait_until_tasks() {
    for (slot, sleep) in [(0, false), (1, true)] {
        let registry = Registry::builder()
            .actor::<Room>()
            .actor::<Lingerer>()
            .start()
            .await
            .unwrap();
        let server = TestServer::with_registry(registry.clone(), |b| b).await;
        let actor = registry
            .client()
            .get_or_create::<Lingerer>(slot.to_string().as_str());
        bounded(actor.linger(sleep)).await.unwrap();
        if sleep {
            // Already on its way to sleep, waiting for the task, when the server stops.
            bounded(SLEEPING[slot].notified()).await;
        }
        assert!(!WROTE[slot].load(std::sync::atomic::Ordering::SeqCst));
        // Released as the server begins to stop: a stop that did not wait for the task would
        // return before the task is run again.
        let stopping = tokio::spawn(server.shutdown());
        RELEASE[slot].notify_one();
        bounded(stopping).await.unwrap();
        assert!(
            WROTE[slot].load(std::sync::atomic::Ordering::SeqCst),
            "the task (sleep: {sleep}) finished before the server stopped"
        );
    }
}
