//! Connections: typed actions and events, `once`, unsubscribing, the status watch, and
//! `dispose`.

use footlights_client::ConnStatus;
use footlights_protocol::Value;
use futures::StreamExt;

use crate::support::{
    NewCount, Note, Room, RoomActions, TestServer, bounded, connected, status_until,
};

matrix! {
    async fn connections_call_typed_actions_and_stream_typed_events(setup) {
        let server = TestServer::start().await;
        let client = setup
            .builder(&server.url())
            .header("x-team", "blue")
            .params(&serde_json::json!({"user": "ada"}))
            .build()
            .unwrap();
        let room = client.get_or_create::<Room>("events");
        let conn = bounded(room.connect()).await.unwrap();
        let id = connected(&conn).await;
        // The client's default params and headers reach the connect hook.
        let ada = footlights_protocol::to_value(&serde_json::json!({"user": "ada"})).unwrap();
        assert_eq!(bounded(conn.params()).await.unwrap(), ada);
        let headers = bounded(conn.headers()).await.unwrap();
        assert!(headers.contains(&("x-team".into(), "blue".into())), "{headers:?}");
        assert_eq!(conn.id().map(|c| c.to_string()), Some(id.clone()));
        assert_eq!(bounded(conn.conn_id()).await.unwrap(), id);

        let mut counts = conn.events::<NewCount>();
        let mut notes = conn.events::<Note>();
        let first = conn.once::<NewCount>();
        assert_eq!(bounded(conn.increment(2)).await.unwrap(), 2);
        assert_eq!(bounded(counts.next()).await, Some(NewCount(2)));
        assert_eq!(bounded(first).await.unwrap(), NewCount(2));

        // Events caused by someone else: a stateless call on another handle.
        assert_eq!(bounded(room.increment(3)).await.unwrap(), 5);
        assert_eq!(bounded(counts.next()).await, Some(NewCount(5)));
        bounded(room.note("hello".into())).await.unwrap();
        assert_eq!(bounded(notes.next()).await, Some(Note("hello".into())));

        // Each connection has its own state.
        assert_eq!(bounded(conn.visit()).await.unwrap(), 1);
        assert_eq!(bounded(conn.visit()).await.unwrap(), 2);
        // Another connection, through the direct gateway (a handle by id).
        let actor = bounded(room.resolve()).await.unwrap();
        let other = bounded(client.get_for_id::<Room>(actor).connect()).await.unwrap();
        assert_eq!(bounded(other.visit()).await.unwrap(), 1);
        assert_ne!(bounded(other.conn_id()).await.unwrap(), id);
        let mut other_counts = other.events::<NewCount>();
        assert_eq!(bounded(other.increment(1)).await.unwrap(), 6);
        assert_eq!(bounded(other_counts.next()).await, Some(NewCount(6)));
        assert_eq!(bounded(counts.next()).await, Some(NewCount(6)));
    }
}

matrix! {
    async fn dropping_the_last_stream_unsubscribes(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let conn = bounded(client.get_or_create::<Room>("unsub").connect()).await.unwrap();
        let a = conn.events::<NewCount>();
        let mut b = conn.events::<NewCount>();
        assert!(bounded(conn.is_subscribed("newCount".into())).await.unwrap());
        a.unsubscribe();
        assert!(bounded(conn.is_subscribed("newCount".into())).await.unwrap(), "b still listens");
        bounded(conn.increment(1)).await.unwrap();
        assert_eq!(bounded(b.next()).await, Some(NewCount(1)));
        drop(b);
        assert!(!bounded(conn.is_subscribed("newCount".into())).await.unwrap());
        // A `once` that got its event unsubscribes too.
        let once = conn.once::<NewCount>();
        assert!(bounded(conn.is_subscribed("newCount".into())).await.unwrap());
        bounded(conn.increment(1)).await.unwrap();
        assert_eq!(bounded(once).await.unwrap(), NewCount(2));
        assert!(!bounded(conn.is_subscribed("newCount".into())).await.unwrap());
    }
}

matrix! {
    async fn dispose_closes_the_link_ends_streams_and_fails_calls(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let conn = bounded(client.get_or_create::<Room>("dispose").connect()).await.unwrap();
        let mut status = conn.status();
        assert!(status.borrow_and_update().is_connected());
        let mut counts = conn.events::<NewCount>();
        let mut errors = conn.errors();

        // An action in flight when the connection is disposed.
        let held = tokio::spawn({
            let conn = conn.clone();
            async move { conn.hold().await }
        });
        server.until("dispose", "waiting", Value::Int(1)).await;

        bounded(conn.dispose()).await;
        assert_eq!(*status.borrow_and_update(), ConnStatus::Closed);
        let e = bounded(held).await.unwrap().unwrap_err();
        assert_eq!(e.code(), "connection_closed");
        assert!(bounded(counts.next()).await.is_none(), "event streams end");
        assert!(bounded(errors.next()).await.is_none(), "the error stream ends");
        assert!(conn.events::<NewCount>().next().await.is_none());
        assert_eq!(bounded(conn.get_count()).await.unwrap_err().code(), "connection_closed");
        // The server ran the disconnect hook: the close went out as a close, not a drop.
        server.until("dispose", "disconnects", Value::Int(1)).await;
        // The driver is gone: the status will never change again.
        assert!(bounded(status.changed()).await.is_err());
    }
}

matrix! {
    async fn a_kicked_connection_reconnects_as_a_new_connection(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let room = client.get_or_create::<Room>("kick");
        let conn = bounded(room.connect_with(crate::support::quick())).await.unwrap();
        let first = connected(&conn).await;
        assert_eq!(bounded(conn.visit()).await.unwrap(), 1);
        assert!(bounded(room.kick(first.clone(), "go away".into())).await.unwrap());
        let moved_on =
            |s: &ConnStatus| matches!(s, ConnStatus::Connected { conn_id, .. } if conn_id.as_str() != first);
        let second = match status_until(&conn, moved_on).await {
            ConnStatus::Connected { conn_id, .. } => conn_id.to_string(),
            other => panic!("{other:?}"),
        };
        assert_ne!(first, second);
        assert_eq!(bounded(conn.visit()).await.unwrap(), 1, "a new connection starts fresh");
    }
}
