//! Reconnection: links cut by a proxy are resumed; actions called while disconnected are
//! queued and sent once; a restarted server gets the subscriptions back; `dispose` stops a
//! reconnection; handles by key wait for their actor.

use std::time::Duration;

use footlights_client::{ConnStatus, is_transient};
use footlights_protocol::Value;
use futures::StreamExt;

use crate::support::{
    NewCount, Proxy, Room, RoomActions, TestServer, bounded, connected, quick, reconnecting,
};

matrix! {
    async fn a_cut_link_is_resumed_with_its_state_and_subscriptions(setup) {
        let server = TestServer::start().await;
        let proxy = Proxy::start(server.addr).await;
        let client = setup.client(&proxy.url());
        let room = client.get_or_create::<Room>("resume");
        let conn = bounded(room.connect_with(quick())).await.unwrap();
        let id = connected(&conn).await;
        let mut counts = conn.events::<NewCount>();
        assert_eq!(bounded(conn.visit()).await.unwrap(), 1);
        assert_eq!(bounded(conn.visit()).await.unwrap(), 2);

        // An action in flight when the link is cut fails with a retryable error.
        let held = tokio::spawn({
            let conn = conn.clone();
            async move { conn.hold().await }
        });
        server.until("resume", "waiting", Value::Int(1)).await;

        proxy.refuse(true);
        proxy.sever();
        reconnecting(&conn).await;
        let e = bounded(held).await.unwrap().unwrap_err();
        assert_eq!((e.group(), e.code()), ("client", "connection_lost"));
        assert!(is_transient(&e));

        proxy.refuse(false);
        assert_eq!(connected(&conn).await, id, "the same connection came back");
        assert_eq!(bounded(conn.visit()).await.unwrap(), 3, "its state was kept");
        assert_eq!(bounded(conn.conn_id()).await.unwrap(), id);
        assert_eq!(server.call("resume", "disconnects").await, Value::Int(0), "it never ended");
        assert_eq!(bounded(room.increment(5)).await.unwrap(), 5);
        assert_eq!(bounded(counts.next()).await, Some(NewCount(5)), "subscriptions survived");
    }
}

matrix! {
    async fn actions_called_while_disconnected_are_sent_once_after_reconnecting(setup) {
        let server = TestServer::start().await;
        let proxy = Proxy::start(server.addr).await;
        let client = setup.client(&proxy.url());
        let conn = bounded(client.get_or_create::<Room>("queue").connect_with(quick()))
            .await
            .unwrap();
        connected(&conn).await;
        let mut counts = conn.events::<NewCount>();

        proxy.refuse(true);
        proxy.sever();
        reconnecting(&conn).await;
        let calls: Vec<_> = (0..3)
            .map(|_| {
                let conn = conn.clone();
                tokio::spawn(async move { conn.increment(1).await })
            })
            .collect();
        assert_eq!(server.call("queue", "getCount").await, Value::Int(0), "nothing went out");

        proxy.refuse(false);
        let mut answers = Vec::new();
        for call in calls {
            answers.push(bounded(call).await.unwrap().unwrap());
        }
        answers.sort_unstable();
        assert_eq!(answers, [1, 2, 3]);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(bounded(counts.next()).await.unwrap().0);
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(server.call("queue", "getCount").await, Value::Int(3), "each ran once");
    }
}

matrix! {
    async fn a_restarted_server_gets_the_subscriptions_and_the_queued_actions_once(setup) {
        let mut server = TestServer::start().await;
        let client = setup.client(&server.url());
        let room = client.get_or_create::<Room>("restart");
        let conn = bounded(room.connect_with(quick())).await.unwrap();
        let first = connected(&conn).await;
        let mut counts = conn.events::<NewCount>();
        assert_eq!(bounded(conn.increment(1)).await.unwrap(), 1);
        assert_eq!(bounded(counts.next()).await, Some(NewCount(1)));

        // Graceful shutdown: the socket or stream closes with 1001, actors are saved.
        server.stop().await;
        reconnecting(&conn).await;
        let calls: Vec<_> = (0..3)
            .map(|_| {
                let conn = conn.clone();
                tokio::spawn(async move { conn.increment(1).await })
            })
            .collect();

        server.restart();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(bounded(call).await.unwrap().unwrap());
        }
        answers.sort_unstable();
        assert_eq!(answers, [2, 3, 4]);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(bounded(counts.next()).await.unwrap().0);
        }
        seen.sort_unstable();
        assert_eq!(seen, [2, 3, 4], "the subscription was restored");
        assert_eq!(server.call("restart", "getCount").await, Value::Int(4));
        // The server ended the old connection on shutdown: this is a new one.
        assert_ne!(connected(&conn).await, first);
        assert_eq!(bounded(room.increment(1)).await.unwrap(), 5);
        assert_eq!(bounded(counts.next()).await, Some(NewCount(5)));
    }
}

matrix! {
    async fn dispose_during_a_reconnection_cancels_it(setup) {
        let mut server = TestServer::start().await;
        // A long connect timeout: dispose must not wait for the attempt to give up.
        let client = setup
            .builder(&server.url())
            .connect_timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let conn = bounded(client.get_or_create::<Room>("cancel").connect_with(quick()))
            .await
            .unwrap();
        connected(&conn).await;
        let mut counts = conn.events::<NewCount>();
        let mut status = conn.status();

        server.stop().await;
        reconnecting(&conn).await;
        let queued = tokio::spawn({
            let conn = conn.clone();
            async move { conn.increment(1).await }
        });
        // Attempts now wait in the listener's backlog, where no server accepts them.
        tokio::time::timeout(Duration::from_secs(5), conn.dispose())
            .await
            .expect("dispose does not wait for the attempt");
        assert_eq!(*status.borrow_and_update(), ConnStatus::Closed);
        assert_eq!(bounded(queued).await.unwrap().unwrap_err().code(), "connection_closed");
        assert!(bounded(counts.next()).await.is_none());
        assert!(bounded(status.changed()).await.is_err(), "the driver has ended");

        server.restart();
        assert_eq!(server.call("cancel", "getCount").await, Value::Int(0));
    }
}

matrix! {
    async fn a_handle_by_key_connects_once_its_actor_exists(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let conn = bounded(client.get::<Room>("later").connect_with(quick()))
            .await
            .unwrap();
        assert_eq!(*conn.status().borrow(), ConnStatus::Reconnecting);
        let queued = tokio::spawn({
            let conn = conn.clone();
            async move { conn.get_count().await }
        });
        assert_eq!(
            bounded(client.get_or_create::<Room>("later").increment(4)).await.unwrap(),
            4
        );
        connected(&conn).await;
        assert_eq!(bounded(queued).await.unwrap().unwrap(), 4);
    }
}
