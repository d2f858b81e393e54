//! End to end in one process: generated actors registered in a real `Registry` and called with
//! the generated typed methods, on handles and on connections.

use footlights::__private::core::Registry;
use futures::StreamExt;

use crate::events::NewCount;
use crate::{ChatRoom, ChatRoomActions, CountReset, Counter, CounterActions};

async fn registry() -> Registry {
    Registry::builder()
        .actor::<Counter>()
        .actor::<ChatRoom>()
        .start()
        .await
        .expect("registry starts")
}

#[tokio::test]
async fn counter_increments_and_broadcasts() {
    let registry = registry().await;
    let client = registry.client();
    let counter = client.get_or_create::<Counter>(["a"]);
    assert_eq!(counter.increment(5).await.unwrap(), 5);
    assert_eq!(counter.get_count().await.unwrap(), 5);

    let conn = counter.connect().await.unwrap();
    let mut counts = conn.events::<NewCount>();
    assert_eq!(conn.increment(1).await.unwrap(), 6);
    assert_eq!(counts.next().await.unwrap(), NewCount(6));
    registry.shutdown().await;
}

#[tokio::test]
async fn an_event_without_arguments_reaches_subscribers() {
    let registry = registry().await;
    let conn = registry
        .client()
        .get_or_create::<Counter>(["reset"])
        .connect()
        .await
        .unwrap();
    let mut resets = conn.events::<CountReset>();
    conn.increment(3).await.unwrap();
    conn.reset().await.unwrap();
    assert_eq!(resets.next().await.unwrap(), CountReset);
    assert_eq!(conn.get_count().await.unwrap(), 0);
    registry.shutdown().await;
}

#[tokio::test]
async fn results_errors_and_deferred_answers() {
    let registry = registry().await;
    let room = registry
        .client()
        .get_or_create_with::<ChatRoom>(["r"], &"topic".to_owned());
    assert_eq!(room.send("hi".into(), None).await.unwrap(), 1);
    assert_eq!(room.send("again".into(), Some(1)).await.unwrap(), 2);
    let e = room.send(String::new(), None).await.unwrap_err();
    assert_eq!(e.code(), "empty");
    assert_eq!(room.messages().await.unwrap(), ["hi", "again"]);
    assert_eq!(room.snapshot().await.unwrap().messages.len(), 2);

    room.clear().await.unwrap();
    assert!(room.messages().await.unwrap().is_empty());

    assert_eq!(room.wait_for_next().await.unwrap(), "next");
    assert_eq!(room.try_wait(false).await.unwrap(), 7);
    assert_eq!(room.try_wait(true).await.unwrap_err().code(), "gave_up");
    registry.shutdown().await;
}
