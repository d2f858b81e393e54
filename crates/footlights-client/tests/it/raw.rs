//! Raw HTTP (`handle.fetch`) and raw WebSockets (`handle.websocket`) to the actor's own
//! handlers, over the network (query and direct gateway) and in the same process.

use footlights_client::{ActorHandle, Client, CloseReason, RawMessage, RawRequest, response_error};
use serde_json::json;

use crate::support::{Room, TestServer, bounded};

fn get(uri: &str) -> RawRequest {
    http::Request::builder().uri(uri).body("".into()).unwrap()
}

/// The JSON account `/echo` answers with.
fn account(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

/// Every fetch check, on one handle.
async fn fetch_checks(room: &ActorHandle<Room>) {
    // GET with a query and a header, which comes back.
    let request = http::Request::builder()
        .uri("/echo/a?x=1&y=two")
        .header("x-test", "round trip")
        .body("".into())
        .unwrap();
    let response = bounded(room.fetch(request)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-echo"], "round trip");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        account(response.body()),
        json!({"method": "GET", "path": "/echo/a", "query": "x=1&y=two", "params": null, "body": ""})
    );

    // POST with a body and params; a scheme and host in the URI are not the actor's.
    let request = http::Request::builder()
        .method("POST")
        .uri("http://elsewhere.example/echo?z=%20")
        .body("payload \u{1F600}".into())
        .unwrap();
    let with_params = room.clone().with_params(&json!({"user": "ada"}));
    let response = bounded(with_params.fetch(request)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        account(response.body()),
        json!({"method": "POST", "path": "/echo", "query": "z=%20", "params": {"user": "ada"}, "body": "payload \u{1F600}"})
    );

    // The handler's own status and body pass unchanged; not a coded error.
    let response = bounded(room.fetch(get("/teapot"))).await.unwrap();
    assert_eq!(response.status(), 418);
    assert_eq!(response.body().as_ref(), b"short and stout");
    assert!(response_error(&response).is_none());

    // A path the actor does not serve.
    let response = bounded(room.fetch(get("/missing"))).await.unwrap();
    assert_eq!(response.status(), 404);
    let e = response_error(&response).expect("a coded error");
    assert_eq!((e.group(), e.code()), ("handler", "request_not_defined"));

    // The connect hook refuses these params.
    let refused = room.clone().with_params(&json!({"reject": true}));
    let response = bounded(refused.fetch(get("/echo"))).await.unwrap();
    assert_eq!(response.status(), 403);
    let e = response_error(&response).unwrap();
    assert_eq!((e.group(), e.code()), ("auth", "forbidden"));
}

/// Every WebSocket check, on one handle to room `key`.
async fn websocket_checks(server: &TestServer, key: &str, room: &ActorHandle<Room>) {
    let mut socket = bounded(room.websocket("/echo?room=1")).await.unwrap();
    assert_eq!(
        bounded(socket.recv()).await,
        Some(RawMessage::Text("open room=1".into()))
    );
    socket.send("hi").unwrap();
    assert_eq!(
        bounded(socket.recv()).await,
        Some(RawMessage::Text("hi".into()))
    );
    socket.send(vec![0u8, 1, 255]).unwrap();
    assert_eq!(
        bounded(socket.recv()).await,
        Some(RawMessage::Binary(vec![0u8, 1, 255].into()))
    );
    let closed = bounded(socket.close(4001, "bye")).await.unwrap();
    assert_eq!(closed.code, 4001);
    assert!(socket.send("late").is_err());
    server
        .until(
            key,
            "wsCloses",
            footlights::Value::Array(vec![footlights::Value::Array(vec![
                footlights::Value::Int(4001),
                footlights::Value::from("bye"),
            ])]),
        )
        .await;

    // The actor closes.
    let mut socket = bounded(room.websocket("echo")).await.unwrap();
    assert_eq!(
        bounded(socket.recv()).await,
        Some(RawMessage::Text("open ".into()))
    );
    socket.send("close").unwrap();
    assert_eq!(bounded(socket.recv()).await, None);
    assert_eq!(
        socket.close_reason(),
        Some(&CloseReason {
            code: 4000,
            reason: "asked to".into()
        })
    );

    // A path the actor refuses, and params the connect hook refuses: closed with a code.
    for (path, params, code) in [
        ("/nope", json!(null), "websocket_not_defined"),
        ("/echo", json!({"reject": true}), "forbidden"),
    ] {
        let mut socket = bounded(room.clone().with_params(&params).websocket(path))
            .await
            .unwrap();
        assert_eq!(bounded(socket.recv()).await, None, "{path}");
        let close = socket.close_reason().unwrap();
        assert_eq!(close.code, 1011, "{close:?}");
        let e = close.to_error().unwrap();
        assert_eq!(e.code(), code, "{close:?}");
    }

    // Not a path.
    let e = room.websocket("/a b").await.unwrap_err();
    assert_eq!(e.code(), "invalid_request");
}

encodings! {
    async fn fetch_reaches_the_request_handler(setup) {
        let server = TestServer::start().await;
        let client = setup.client(&server.url());
        let by_key = client.get_or_create::<Room>("raw-http");
        fetch_checks(&by_key).await;
        let id = bounded(by_key.resolve()).await.unwrap();
        fetch_checks(&client.get_for_id::<Room>(id)).await;

        // A `get` handle without an actor: the gateway's 404.
        let response = bounded(client.get::<Room>("nobody").fetch(get("/echo"))).await.unwrap();
        assert_eq!(response.status(), 404);
        let e = response_error(&response).unwrap();
        assert_eq!((e.group(), e.code()), ("actor", "not_found"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_works_in_process_with_the_same_answers() {
    let server = TestServer::start().await;
    let client: Client = server.registry.client();
    fetch_checks(&client.get_or_create::<Room>("raw-local")).await;
    let response = bounded(client.get::<Room>("nobody").fetch(get("/echo")))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response_error(&response).unwrap().code(), "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echoes_text_and_binary_and_closes() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url()).unwrap();
    let by_key = client.get_or_create::<Room>("raw-ws");
    websocket_checks(&server, "raw-ws", &by_key).await;
    let id = bounded(by_key.resolve()).await.unwrap();
    let by_id = client.get_for_id::<Room>(id);
    let mut socket = bounded(by_id.websocket("/echo?by=id")).await.unwrap();
    assert_eq!(
        bounded(socket.recv()).await,
        Some(RawMessage::Text("open by=id".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_works_in_process() {
    let server = TestServer::start().await;
    let client = server.registry.client();
    websocket_checks(
        &server,
        "raw-ws-local",
        &client.get_or_create::<Room>("raw-ws-local"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_socket_closes_it() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url()).unwrap();
    let room = client.get_or_create::<Room>("raw-drop");
    let mut socket = bounded(room.websocket("/echo")).await.unwrap();
    assert!(bounded(socket.recv()).await.is_some());
    drop(socket);
    server
        .until(
            "raw-drop",
            "wsCloses",
            footlights::Value::Array(vec![footlights::Value::Array(vec![
                footlights::Value::Int(1000),
                footlights::Value::from(""),
            ])]),
        )
        .await;
}
