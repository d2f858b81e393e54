//! Handles and stateless actions over HTTP: `get`, `get_or_create`, `create`, `get_for_id`,
//! `resolve`; laziness; typed methods; params, headers and tokens.

use footlights::ActorKey;
use footlights_client::Client;
use footlights_protocol::Value;
use serde_json::json;

use crate::support::{Room, RoomActions, TestServer, bounded};

/// Whether the registry has stored an actor `room` with this key.
async fn exists(server: &TestServer, key: &str) -> bool {
    server
        .registry
        .driver()
        .find_actor("room", &ActorKey::from(key))
        .await
        .unwrap()
        .is_some()
}

encodings! {
    async fn handles_call_typed_actions_and_resolve(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());

        // Lazy: a handle sends nothing until its first call.
        let counter = client.get_or_create::<Room>("lazy");
        assert!(!exists(&server, "lazy").await);
        assert_eq!(bounded(counter.increment(5)).await.unwrap(), 5);
        assert!(exists(&server, "lazy").await);
        let copy = counter.clone();
        assert_eq!(bounded(copy.increment(2)).await.unwrap(), 7);

        // resolve, then the same actor by id and by key.
        let id = bounded(counter.resolve()).await.unwrap();
        let by_id = client.get_for_id::<Room>(id.clone());
        assert_eq!(bounded(by_id.get_count()).await.unwrap(), 7);
        assert_eq!(bounded(by_id.resolve()).await.unwrap(), id);
        let by_key = client.get::<Room>("lazy");
        assert_eq!(bounded(by_key.get_count()).await.unwrap(), 7);
        assert_eq!(bounded(by_key.resolve()).await.unwrap(), id);

        // Values keep their types through the encoding.
        let value = Value::Array(vec![
            Value::Bytes(vec![0, 1, 255]),
            Value::from("$tag"),
            Value::Int(-3),
            Value::Float(1.5),
            Value::Null,
        ]);
        assert_eq!(bounded(counter.echo(value.clone())).await.unwrap(), value);
    }
}

encodings! {
    async fn create_and_get_or_create_pass_their_input(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let input = Some(Value::Object(vec![("mode".into(), Value::from("tournament"))]));

        let made = bounded(client.create::<Room>(["game", "1"], &input)).await.unwrap();
        assert_eq!(bounded(made.input()).await.unwrap(), input);
        let again = bounded(client.create::<Room>(["game", "1"], &input)).await.unwrap_err();
        assert_eq!((again.group(), again.code()), ("actor", "duplicate_key"));

        let lazy = client.get_or_create_with::<Room>("with-input", &input);
        assert_eq!(bounded(lazy.input()).await.unwrap(), input);
        // The input only matters when the actor is created.
        let other = Some(Value::from("ignored"));
        let same = client.get_or_create_with::<Room>("with-input", &other);
        assert_eq!(bounded(same.input()).await.unwrap(), input);
    }
}

encodings! {
    async fn keys_the_query_gateway_cannot_carry_are_resolved_first(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let key = ActorKey::from(["a,b", "c"]);
        let room = client.get_or_create::<Room>(key.clone());
        assert_eq!(bounded(room.increment(3)).await.unwrap(), 3);
        assert_eq!(bounded(client.get::<Room>(key.clone()).get_count()).await.unwrap(), 3);
        let lonely = client.get_or_create::<Room>(ActorKey::from([""]));
        assert_eq!(bounded(lonely.increment(1)).await.unwrap(), 1);
        let empty = client.get_or_create::<Room>(ActorKey::default());
        assert_eq!(bounded(empty.get_count()).await.unwrap(), 0, "[\"\"] is not the empty key");
    }
}

encodings! {
    async fn params_headers_and_tokens_reach_the_actor(setup) {
        let server = TestServer::start().await;
        let client = setup
            .builder(&server.url())
            .params(&json!({"user": "ada"}))
            .header("x-team", "blue")
            .token("s3cret")
            .build()
            .unwrap();
        let room = client.get_or_create::<Room>("params");
        let expected = footlights_protocol::to_value(&json!({"user": "ada"})).unwrap();
        assert_eq!(bounded(room.params()).await.unwrap(), expected);
        let mine = room.clone().with_params(&json!({"user": "bob"}));
        let bob = footlights_protocol::to_value(&json!({"user": "bob"})).unwrap();
        assert_eq!(bounded(mine.params()).await.unwrap(), bob);

        let headers = bounded(room.headers()).await.unwrap();
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(header("x-team"), Some("blue"));
        assert_eq!(header("x-rivet-token"), Some("s3cret"));
        assert!(header("user-agent").is_some_and(|ua| ua.starts_with("footlights-client/")));
        // The gateway's `rvt-` parameters never reach the actor.
        let uri = bounded(room.request_uri()).await.unwrap();
        assert_eq!(uri, "/action/requestUri");
    }
}

#[tokio::test]
async fn namespaces_and_tokens_in_the_endpoint_are_accepted() {
    let server = TestServer::start().await;
    let url = format!("http://team:tok@{}", server.addr);
    let client = Client::new(&url).unwrap();
    let room = client.get_or_create::<Room>("ns");
    assert_eq!(bounded(room.increment(1)).await.unwrap(), 1);
    let headers = bounded(room.headers()).await.unwrap();
    assert!(headers.contains(&("x-rivet-token".into(), "tok".into())));
}
