//! Errors keep the server's group, code, message and metadata, over HTTP and connections;
//! refusals are reported once and never retried.

use footlights_client::{ConnStatus, is_transient};
use footlights_protocol::{ActionError, Value};
use futures::StreamExt;
use serde_json::json;

use crate::support::{Room, RoomActions, TestServer, bounded, quick};

fn meta(json: serde_json::Value) -> Option<Value> {
    Some(footlights_protocol::to_value(&json).unwrap())
}

fn assert_code(e: &ActionError, group: &str, code: &str) {
    assert_eq!((e.group(), e.code()), (group, code), "{e}");
}

encodings! {
    async fn action_errors_carry_group_code_message_and_metadata(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let room = client.get_or_create::<Room>("errors");

        let e = bounded(room.fail()).await.unwrap_err();
        assert_code(&e, "user", "boom");
        assert_eq!(e.message(), "it failed");
        assert_eq!(e.metadata().cloned(), meta(json!({"why": 1})));
        assert!(!is_transient(&e));

        assert_code(&bounded(room.deny()).await.unwrap_err(), "auth", "forbidden");
        assert_code(&bounded(room.who()).await.unwrap_err(), "auth", "unauthorized");
        let limited = bounded(room.limited()).await.unwrap_err();
        assert_code(&limited, "actor", "rate_limited");
        assert!(is_transient(&limited));

        let internal = bounded(room.internal()).await.unwrap_err();
        assert_eq!(internal.code(), "internal_error");
        assert!(!internal.message().contains("hunter2"), "masked: {internal}");

        let missing = bounded(room.action("noSuchAction", vec![])).await.unwrap_err();
        assert_code(&missing, "actor", "action_not_found");
        let nobody = client.get::<Room>("nobody-here");
        assert_code(&bounded(nobody.get_count()).await.unwrap_err(), "actor", "not_found");
        let ghost = client.get_for_id::<Room>("no-such-id");
        assert_code(&bounded(ghost.get_count()).await.unwrap_err(), "actor", "not_found");
        assert_code(&bounded(ghost.resolve()).await.unwrap_err(), "actor", "not_found");

        // The connect hook runs for stateless actions too.
        let refused = room.clone().with_params(&json!({"code": "banned"}));
        let e = bounded(refused.get_count()).await.unwrap_err();
        assert_code(&e, "user", "banned");
        assert_eq!(e.metadata().cloned(), meta(json!({"retry": false})));
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_error() {
    // Nothing listens there any more: the connection is refused.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = footlights_client::Client::new(&url).unwrap();
    let e = bounded(client.get_or_create::<Room>("down").get_count())
        .await
        .unwrap_err();
    assert_code(&e, "client", "request_failed");
    assert!(is_transient(&e));
}

matrix! {
    async fn refused_connections_report_their_code_and_are_not_retried(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let room = client.get_or_create::<Room>("refusals");
        let cases = [
            (json!({"reject": true}), ("auth", "forbidden")),
            (json!({"unauthorized": true}), ("auth", "unauthorized")),
            (json!({"code": "banned"}), ("user", "banned")),
        ];
        for (params, (group, code)) in cases {
            let e = bounded(room.clone().with_params(&params).connect_with(quick()))
                .await
                .unwrap_err();
            assert_code(&e, group, code);
        }
        let e = bounded(room.clone().with_params(&json!({"code": "banned"})).connect())
            .await
            .unwrap_err();
        assert_eq!(e.message(), "refused by the room");
        assert_eq!(e.metadata().cloned(), meta(json!({"retry": false})));

        let ghost = client.get_for_id::<Room>("no-such-id");
        assert_code(&bounded(ghost.connect_with(quick())).await.unwrap_err(), "actor", "not_found");
        // An actor type the server does not have.
        let unknown = client.handle_for(footlights_client::Target::GetOrCreate {
            name: "no_such_type".into(),
            key: "k".into(),
            input: None,
        });
        assert_code(&bounded(unknown.connect_with(quick())).await.unwrap_err(), "actor", "not_found");
    }
}

matrix! {
    async fn a_refusal_on_reconnect_closes_the_connection_for_good(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let room = client.get_or_create::<Room>("lockout");
        let conn = bounded(room.connect_with(quick())).await.unwrap();
        let id = crate::support::connected(&conn).await;
        let mut errors = conn.errors();
        let mut counts = conn.events::<crate::support::NewCount>();
        assert_eq!(bounded(conn.increment(1)).await.unwrap(), 1);
        assert!(bounded(counts.next()).await.is_some());

        // Lock the room, then get disconnected: the reconnection is refused.
        bounded(room.lock()).await.unwrap();
        let admin = room.clone().with_params(&json!({"admin": true}));
        assert!(bounded(admin.kick(id, "bye".into())).await.unwrap());
        let e = bounded(errors.next()).await.unwrap();
        assert_code(&e, "auth", "forbidden");
        crate::support::status_until(&conn, |s| *s == ConnStatus::Closed).await;
        assert!(bounded(counts.next()).await.is_none(), "streams end");
        let later = bounded(conn.get_count()).await.unwrap_err();
        assert_code(&later, "client", "connection_closed");
    }
}
