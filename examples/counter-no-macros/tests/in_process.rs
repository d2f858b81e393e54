//! The hand-written counter through the in-process client: typed calls via the hand-written
//! `CounterActions`, raw calls by wire name, events, and durable state in SQLite.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use counter_no_macros::{Counter, CounterActions, NewCount};
use footlights::storage::SqliteDriver;
use footlights::{Registry, Value};
use futures::StreamExt;

#[tokio::test]
async fn typed_and_raw_calls_reach_the_same_actor() {
    let registry = Registry::builder()
        .actor::<Counter>()
        .start()
        .await
        .unwrap();
    let client = registry.client();
    let counter = client.get_or_create::<Counter>(["demo"]);
    assert_eq!(counter.increment(2).await.unwrap(), 2);
    // The wire names the JavaScript client would use.
    let raw = counter
        .action("increment", vec![Value::Int(3)])
        .await
        .unwrap();
    assert_eq!(raw, Value::Int(5));
    assert_eq!(counter.get_count().await.unwrap(), 5);
    let err = counter.action("decrement", vec![]).await.unwrap_err();
    assert_eq!(err.code(), "action_not_found");
}

#[tokio::test]
async fn connections_receive_the_hand_written_event() {
    let registry = Registry::builder()
        .actor::<Counter>()
        .start()
        .await
        .unwrap();
    let conn = registry
        .client()
        .get_or_create::<Counter>(["events"])
        .connect()
        .await
        .unwrap();
    let mut counts = conn.events::<NewCount>();
    assert_eq!(conn.increment(7).await.unwrap(), 7);
    assert_eq!(counts.next().await, Some(NewCount(7)));
    conn.dispose().await;
}

#[tokio::test]
async fn the_count_is_kept_in_sqlite_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("counter.db");
    for expected in [1, 2] {
        let registry = Registry::builder()
            .actor::<Counter>()
            .driver(SqliteDriver::open(&db).await.unwrap())
            .start()
            .await
            .unwrap();
        let counter = registry.client().get_or_create::<Counter>(["kept"]);
        assert_eq!(counter.increment(1).await.unwrap(), expected);
        registry.shutdown().await;
    }
}
