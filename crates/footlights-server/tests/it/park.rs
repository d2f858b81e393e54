//! Parked sockets: a `/connect` socket whose actor hibernates keeps only its stream, and is
//! served again on the next thing that happens. What the client sees must not change.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::support::{
    TestServer, Ws, action_json, bounded, close_ws, metric, next_close, send_text, subscribe_json,
    until_metric, until_tag, ws_connect,
};

const JSON: &[&str] = &["rivet", "rivet_encoding.json"];

/// The `footlights_websockets_parked` gauge.
async fn parked(server: &TestServer) -> i64 {
    metric(server, "footlights_websockets_parked").await
}

async fn until_parked(server: &TestServer, n: i64) {
    until_metric(server, "footlights_websockets_parked", n).await;
}

/// Two connections to `key`, the first subscribed to `newCount`, and the actor put to sleep.
async fn asleep_with_two(server: &TestServer, key: &str) -> (Ws, Ws) {
    let path = TestServer::query_path("/connect", key);
    let (mut listener, _) = ws_connect(server, &path, JSON).await;
    let (mut caller, _) = ws_connect(server, &path, JSON).await;
    until_tag(&mut listener, "Init").await;
    until_tag(&mut caller, "Init").await;
    send_text(&mut listener, &subscribe_json("newCount", true)).await;
    send_text(&mut listener, &action_json(1, "getCount", json!([]))).await;
    until_tag(&mut listener, "ActionResponse").await;
    send_text(&mut caller, &action_json(2, "nap", json!([]))).await;
    until_tag(&mut caller, "ActionResponse").await;
    (listener, caller)
}

#[tokio::test]
async fn sockets_park_while_their_actor_sleeps_and_serve_again_when_it_wakes() {
    let server = TestServer::start().await;
    assert_eq!(parked(&server).await, 0);
    let (mut listener, mut caller) = asleep_with_two(&server, "park-both").await;
    until_parked(&server, 2).await;
    for round in 1..=2_i64 {
        send_text(&mut caller, &action_json(10, "increment", json!([1]))).await;
        let reply = until_tag(&mut caller, "ActionResponse").await;
        assert_eq!(reply["output"], json!(round));
        let event = until_tag(&mut listener, "Event").await;
        assert_eq!(event, json!({"name": "newCount", "args": [round]}));
        // Both links have a channel again: neither socket is parked.
        assert_eq!(parked(&server).await, 0);
        send_text(&mut caller, &action_json(11, "nap", json!([]))).await;
        until_tag(&mut caller, "ActionResponse").await;
        until_parked(&server, 2).await;
    }
    close_ws(&mut caller).await;
    close_ws(&mut listener).await;
    until_parked(&server, 0).await;
}

/// A message whose first fragment came before the actor slept keeps its socket from parking
/// (its WebSocket state holds the fragment); the rest completes it as if nothing happened.
#[tokio::test]
async fn a_message_half_sent_when_the_actor_sleeps_arrives_whole() {
    let server = TestServer::start().await;
    let path = TestServer::query_path("/connect", "park-half");
    let (mut listener, _) = ws_connect(&server, &path, JSON).await;
    let (mut caller, _) = ws_connect(&server, &path, JSON).await;
    until_tag(&mut listener, "Init").await;
    until_tag(&mut caller, "Init").await;
    send_text(&mut listener, &subscribe_json("newCount", true)).await;
    let text = action_json(20, "increment", json!([5]));
    let (head, tail) = text.split_at(text.len() / 2);
    let first = Frame::message(head.as_bytes().to_vec(), OpCode::Data(Data::Text), false);
    bounded(caller.send(Message::Frame(first))).await.unwrap();
    // The listener's call (after its subscription, on the same socket) puts the actor to
    // sleep while the caller's message is half in.
    send_text(&mut listener, &action_json(1, "nap", json!([]))).await;
    until_tag(&mut listener, "ActionResponse").await;
    // Only the listener parks.
    until_parked(&server, 1).await;
    let last = Frame::message(tail.as_bytes().to_vec(), OpCode::Data(Data::Continue), true);
    bounded(caller.send(Message::Frame(last))).await.unwrap();
    let reply = until_tag(&mut caller, "ActionResponse").await;
    assert_eq!(reply["output"], json!(5));
    let event = until_tag(&mut listener, "Event").await;
    assert_eq!(event, json!({"name": "newCount", "args": [5]}));
}

/// A parked socket still gets pings; it answers and parks again. One that stops answering is
/// dropped.
#[tokio::test]
async fn parked_sockets_are_pinged() {
    let server = TestServer::with(|b| b.ws_ping_interval(Duration::from_millis(100))).await;
    let (mut listener, mut caller) = asleep_with_two(&server, "park-ping").await;
    until_parked(&server, 2).await;
    // tungstenite answers a ping when it reads one.
    let ping = bounded(async {
        loop {
            match caller.next().await {
                Some(Ok(Message::Ping(_))) => return true,
                Some(Ok(_)) => continue,
                _ => return false,
            }
        }
    })
    .await;
    assert!(ping, "a parked socket is pinged");
    // The answer goes out with the next write or flush.
    bounded(caller.flush()).await.unwrap();
    // The listener reads nothing, so it never answers: the server drops it once a ping has
    // gone unanswered for an interval. The caller, which answered, stays.
    let open = "footlights_connections_open{transport=\"websocket\"}";
    until_metric(&server, open, 1).await;
    let ended = bounded(async {
        loop {
            match listener.next().await {
                Some(Ok(Message::Ping(_))) => continue,
                Some(Ok(other)) => return Err(other),
                Some(Err(_)) | None => return Ok(()),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "only pings, then the end: {ended:?}");
    send_text(&mut caller, &action_json(30, "getCount", json!([]))).await;
    let reply = until_tag(&mut caller, "ActionResponse").await;
    assert_eq!(reply["output"], json!(0));
}

#[tokio::test]
async fn shutdown_closes_parked_sockets_with_1001() {
    let mut server = TestServer::start().await;
    let (mut listener, mut caller) = asleep_with_two(&server, "park-stop").await;
    until_parked(&server, 2).await;
    server.trigger_shutdown();
    assert_eq!(next_close(&mut caller).await.0, 1001);
    assert_eq!(next_close(&mut listener).await.0, 1001);
}
