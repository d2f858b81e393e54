//! Broadcasts written to WebSockets by the broadcasting thread: order and completeness as
//! the clients see them.

use serde_json::json;

use crate::support::{
    TestServer, Ws, action_json, bounded, metric, next_json, send_text, subscribe_json, ws_connect,
};

const JSON: &[&str] = &["rivet", "rivet_encoding.json"];
const DIRECT: &str = "footlights_websocket_events_written_direct_total";

async fn subscribed(server: &TestServer, id: &str) -> Ws {
    let (mut ws, _) = ws_connect(server, &format!("/gateway/{id}/connect"), JSON).await;
    assert_eq!(next_json(&mut ws).await["body"]["tag"], "Init");
    send_text(&mut ws, &subscribe_json("tick", true)).await;
    ws
}

/// The next message as (tag, event name, first argument or action output).
async fn next_message(ws: &mut Ws) -> (String, String, i64) {
    let msg = next_json(ws).await;
    let body = &msg["body"];
    let tag = body["tag"].as_str().unwrap().to_owned();
    let val = &body["val"];
    match tag.as_str() {
        "Event" => (
            tag,
            val["name"].as_str().unwrap().to_owned(),
            val["args"][0].as_i64().unwrap(),
        ),
        "ActionResponse" => (tag, String::new(), val["output"].as_i64().unwrap()),
        _ => panic!("unexpected {msg}"),
    }
}

/// The caller gets a queued event before each broadcast, as the action sent them, and its
/// answer last; a subscriber that only listens gets every broadcast in order, written to its
/// socket directly.
#[tokio::test]
async fn broadcasts_keep_their_place_among_queued_messages() {
    let server = TestServer::start().await;
    let id = server.room("direct-order").await;
    let mut listener = subscribed(&server, &id).await;
    let mut caller = subscribed(&server, &id).await;
    // A subscription is in force once an action sent after it is answered.
    send_text(&mut caller, &action_json(0, "getCount", json!([]))).await;
    assert_eq!(next_message(&mut caller).await.0, "ActionResponse");
    send_text(&mut listener, &action_json(0, "getCount", json!([]))).await;
    assert_eq!(next_message(&mut listener).await.0, "ActionResponse");
    let before = metric(&server, DIRECT).await;

    const ROUNDS: i64 = 200;
    send_text(&mut caller, &action_json(1, "interleave", json!([ROUNDS]))).await;
    for i in 0..ROUNDS {
        let whisper = next_message(&mut caller).await;
        assert_eq!(whisper, ("Event".into(), "whisper".into(), i));
        let tick = next_message(&mut caller).await;
        assert_eq!(tick, ("Event".into(), "tick".into(), i));
    }
    assert_eq!(
        next_message(&mut caller).await,
        ("ActionResponse".into(), String::new(), ROUNDS)
    );
    for i in 0..ROUNDS {
        let tick = bounded(next_message(&mut listener)).await;
        assert_eq!(tick, ("Event".into(), "tick".into(), i));
    }
    let direct = metric(&server, DIRECT).await - before;

    assert!(
        direct >= ROUNDS,
        "the listener's {ROUNDS} broadcasts are written directly, {direct} were"
    );
    drop((listener, caller));
    server.shutdown().await;
}
