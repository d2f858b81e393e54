//! The counter through a real server on 127.0.0.1:0: stateless actions over HTTP, a
//! WebSocket connection with events, and state that survives a server restart.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use counter::{Counter, CounterActions, NewCount};
use footlights::Client;
use footlights::Registry;
use footlights::storage::SqliteDriver;
use footlights_server::Server;
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every step is bounded, so a hang fails the test instead of stalling CI.
async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("step timed out")
}

/// A running server: its URL, and how to stop it.
struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<footlights_server::Result<()>>,
}

impl Running {
    async fn start(db: &std::path::Path) -> Running {
        let registry = Registry::builder()
            .actor::<Counter>()
            .driver(SqliteDriver::open(db).await.unwrap())
            .start()
            .await
            .unwrap();
        let server = Server::builder().registry(registry).build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Running { url, stop, task }
    }

    /// Graceful shutdown: returns once every actor is saved.
    async fn stop(self) {
        let _ = self.stop.send(());
        bounded(self.task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn actions_over_http_and_events_over_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(&dir.path().join("counter.db")).await;
    let client = Client::new(&server.url).unwrap();
    let counter = client.get_or_create::<Counter>(["room-1"]);

    // Stateless actions: one HTTP request each; the first one creates the actor.
    assert_eq!(bounded(counter.increment(5)).await.unwrap(), 5);
    assert_eq!(bounded(counter.get_count()).await.unwrap(), 5);

    // A realtime connection: the subscription travels on the same socket before the action,
    // so the event is already on its way when the reply arrives.
    let conn = bounded(counter.connect()).await.unwrap();
    let mut counts = conn.events::<NewCount>();
    assert_eq!(bounded(conn.increment(2)).await.unwrap(), 7);
    assert_eq!(bounded(counts.next()).await, Some(NewCount(7)));

    // A second client sees the first one's broadcast.
    let other = Client::new(&server.url).unwrap();
    let watcher = bounded(other.get_or_create::<Counter>(["room-1"]).connect())
        .await
        .unwrap();
    let mut seen = watcher.events::<NewCount>();
    // The watcher's own call proves its subscription reached the actor.
    assert_eq!(bounded(watcher.get_count()).await.unwrap(), 7);
    assert_eq!(bounded(conn.increment(1)).await.unwrap(), 8);
    assert_eq!(bounded(seen.next()).await, Some(NewCount(8)));

    // Another key is another actor.
    let other_room = client.get_or_create::<Counter>(["room-2"]);
    assert_eq!(bounded(other_room.get_count()).await.unwrap(), 0);

    conn.dispose().await;
    watcher.dispose().await;
    server.stop().await;
}

#[tokio::test]
async fn the_count_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("counter.db");

    let first = Running::start(&db).await;
    let client = Client::new(&first.url).unwrap();
    let counter = client.get_or_create::<Counter>(["durable"]);
    assert_eq!(bounded(counter.increment(41)).await.unwrap(), 41);
    first.stop().await;

    // A new server on the same file, on a new port.
    let second = Running::start(&db).await;
    let client = Client::new(&second.url).unwrap();
    let counter = client.get::<Counter>(["durable"]);
    assert_eq!(bounded(counter.increment(1)).await.unwrap(), 42);
    second.stop().await;
}

#[tokio::test]
async fn a_missing_actor_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(&dir.path().join("counter.db")).await;
    let client = Client::new(&server.url).unwrap();
    let err = bounded(client.get::<Counter>(["nobody"]).get_count())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    server.stop().await;
}
