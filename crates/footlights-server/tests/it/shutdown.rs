//! Graceful shutdown: sockets and streams close with 1001, in-flight HTTP actions finish,
//! then `serve` returns.

use footlights::Value;
use serde_json::json;

use crate::support::{TestServer, bounded, http, json_body, next_close, until_tag, ws_connect};

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
