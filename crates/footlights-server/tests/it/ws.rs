//! The actor-connect WebSocket (§7).

use footlights_protocol::codec::{
    Dialect, Encoding, decode_to_client, encode_to_client, encode_to_server,
};
use footlights_protocol::{ToClient, ToServer, Value};
use serde_json::json;

use crate::support::{
    Frame, TestServer, Ws, action_json, bounded, close_ws, gate, next_binary, next_close,
    next_frame, next_json, send_binary, send_text, subscribe_json, until_tag, ws_connect,
};

const JSON: &[&str] = &["rivet", "rivet_encoding.json"];

#[tokio::test]
async fn init_comes_first_then_actions_are_answered() {
    let server = TestServer::start().await;
    let id = server.room("ws-init").await;
    let (mut ws, selected) = ws_connect(&server, &format!("/gateway/{id}/connect"), JSON).await;
    assert_eq!(selected.as_deref(), Some("rivet"));
    let init = next_json(&mut ws).await;
    assert_eq!(init["body"]["tag"], "Init");
    assert_eq!(init["body"]["val"]["actorId"], id.as_str());
    assert!(init["body"]["val"]["connectionId"].is_string());
    assert!(
        init["body"]["val"].get("connectionToken").is_none(),
        "official clients must not see a token"
    );
    send_text(&mut ws, &action_json(0, "increment", json!([5]))).await;
    let response = next_json(&mut ws).await;
    assert_eq!(
        response,
        json!({"body": {"tag": "ActionResponse", "val": {"id": ["$BigInt", "0"], "output": 5}}})
    );
    // Plain-number ids are accepted too.
    send_text(
        &mut ws,
        r#"{"body":{"tag":"ActionRequest","val":{"id":3,"name":"getCount","args":[]}}}"#,
    )
    .await;
    assert_eq!(
        until_tag(&mut ws, "ActionResponse").await["id"],
        json!(["$BigInt", "3"])
    );
    close_ws(&mut ws).await;
}

#[tokio::test]
async fn events_reach_subscribers_only() {
    let server = TestServer::start().await;
    let path = TestServer::query_path("/connect", "ws-events");
    let (mut listener, _) = ws_connect(&server, &path, JSON).await;
    let (mut caller, _) = ws_connect(&server, &path, JSON).await;
    until_tag(&mut listener, "Init").await;
    until_tag(&mut caller, "Init").await;
    send_text(&mut listener, &subscribe_json("newCount", true)).await;
    // A round trip on the listener proves its subscription was processed.
    send_text(&mut listener, &action_json(1, "getCount", json!([]))).await;
    until_tag(&mut listener, "ActionResponse").await;

    send_text(&mut caller, &action_json(9, "increment", json!([2]))).await;
    let event = until_tag(&mut listener, "Event").await;
    assert_eq!(event, json!({"name": "newCount", "args": [2]}));
    let reply = next_json(&mut caller).await;
    assert_eq!(
        reply["body"]["tag"], "ActionResponse",
        "the unsubscribed caller got no event"
    );
    assert_eq!(reply["body"]["val"]["output"], 2);
}

/// Hibernation: both sockets stay open while their actor sleeps (twice); a call on one wakes
/// it, its answer comes back, and the event it causes reaches the other, subscribed before.
#[tokio::test]
async fn sockets_kept_through_sleeps_wake_the_actor_and_get_answers_and_events() {
    let registry = footlights::Registry::builder()
        .actor::<crate::support::Room>()
        .start()
        .await
        .unwrap();
    let server = TestServer::with_registry(registry.clone(), |b| b).await;
    let path = TestServer::query_path("/connect", "ws-hibernate");
    let (mut listener, _) = ws_connect(&server, &path, JSON).await;
    let (mut caller, _) = ws_connect(&server, &path, JSON).await;
    until_tag(&mut listener, "Init").await;
    until_tag(&mut caller, "Init").await;
    send_text(&mut listener, &subscribe_json("newCount", true)).await;
    send_text(&mut listener, &action_json(1, "getCount", json!([]))).await;
    until_tag(&mut listener, "ActionResponse").await;
    for round in 1..=2_u64 {
        send_text(&mut caller, &action_json(10 + round, "nap", json!([]))).await;
        until_tag(&mut caller, "ActionResponse").await;
        crate::support::until_asleep(&registry).await;
        assert_eq!(
            registry.kept_connections(),
            0,
            "parked, not kept for a resume"
        );
        send_text(
            &mut caller,
            &action_json(20 + round, "increment", json!([1])),
        )
        .await;
        let reply = until_tag(&mut caller, "ActionResponse").await;
        assert_eq!(reply["id"], json!(["$BigInt", (20 + round).to_string()]));
        assert_eq!(reply["output"], json!(round));
        let event = until_tag(&mut listener, "Event").await;
        assert_eq!(event, json!({"name": "newCount", "args": [round]}));
    }
    close_ws(&mut caller).await;
    close_ws(&mut listener).await;
}

#[tokio::test]
async fn an_action_error_carries_its_action_id() {
    let server = TestServer::start().await;
    let (mut ws, _) =
        ws_connect(&server, &TestServer::query_path("/connect", "ws-err"), JSON).await;
    until_tag(&mut ws, "Init").await;
    send_text(&mut ws, &action_json(7, "fail", json!([]))).await;
    let error = until_tag(&mut ws, "Error").await;
    assert_eq!(
        error,
        json!({"group": "user", "code": "boom", "message": "it failed", "metadata": {"why": 1}, "actionId": ["$BigInt", "7"]})
    );
    // The connection survives an action error.
    send_text(&mut ws, &action_json(8, "getCount", json!([]))).await;
    assert_eq!(
        until_tag(&mut ws, "ActionResponse").await["id"],
        json!(["$BigInt", "8"])
    );
}

#[tokio::test]
async fn a_rejected_connection_gets_an_error_then_1011() {
    let server = TestServer::start().await;
    let params = "rivet_conn_params.%7B%22reject%22%3Atrue%7D";
    let (mut ws, selected) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-reject"),
        &["rivet", "rivet_encoding.json", params],
    )
    .await;
    assert_eq!(selected.as_deref(), Some("rivet"));
    let error = next_json(&mut ws).await;
    assert_eq!(error["body"]["tag"], "Error");
    assert_eq!(error["body"]["val"]["code"], "forbidden");
    assert_eq!(error["body"]["val"]["actionId"], serde_json::Value::Null);
    assert_eq!(
        next_close(&mut ws).await,
        (1011, "auth.forbidden".to_owned())
    );
}

#[tokio::test]
async fn errors_before_the_actor_are_an_upgrade_then_a_close() {
    let server = TestServer::start().await;
    let get_missing = "/gateway/room/connect?rvt-namespace=default&rvt-method=get&rvt-key=missing";
    let (mut ws, selected) = ws_connect(&server, get_missing, JSON).await;
    assert_eq!(selected.as_deref(), Some("rivet"));
    let (code, reason) = next_close(&mut ws).await;
    assert_eq!(code, 1011);
    let (coded, ray) = reason.split_once('#').expect("a ray id after #");
    assert_eq!(coded, "actor.not_found");
    assert!(!ray.is_empty());

    let (mut ws, _) = ws_connect(&server, "/gateway/nope/connect", JSON).await;
    assert!(next_close(&mut ws).await.1.starts_with("actor.not_found#"));

    // A raw WebSocket to an actor that does not exist is refused the same way.
    let (mut ws, _) = ws_connect(
        &server,
        "/gateway/room/websocket/x?rvt-namespace=d&rvt-method=get",
        JSON,
    )
    .await;
    assert!(next_close(&mut ws).await.1.starts_with("actor.not_found#"));
}

#[tokio::test]
async fn an_unknown_encoding_closes_1003() {
    let server = TestServer::start().await;
    let (mut ws, selected) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-enc"),
        &["rivet", "rivet_encoding.yaml"],
    )
    .await;
    assert_eq!(selected.as_deref(), Some("rivet"));
    assert_eq!(
        next_close(&mut ws).await,
        (1003, "actor.unsupported_websocket_encoding".to_owned())
    );
}

#[tokio::test]
async fn frames_sent_before_init_are_kept_and_answered_after_it() {
    let server = TestServer::start().await;
    let gate_name = "ws-early";
    let params = "rivet_conn_params.%7B%22gate%22%3A%22ws-early%22%7D";
    let (mut ws, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-early"),
        &["rivet", "rivet_encoding.json", params],
    )
    .await;
    // The connect hook waits on the gate, so no Init can have been sent yet.
    send_text(&mut ws, &subscribe_json("newCount", true)).await;
    send_text(&mut ws, &action_json(0, "increment", json!([1]))).await;
    send_text(&mut ws, &action_json(1, "increment", json!([1]))).await;
    gate(gate_name).add_permits(1);
    assert_eq!(
        next_json(&mut ws).await["body"]["tag"],
        "Init",
        "Init is first"
    );
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let msg = next_json(&mut ws).await;
        seen.push((
            msg["body"]["tag"].as_str().unwrap().to_owned(),
            msg["body"]["val"].clone(),
        ));
    }
    let responses: Vec<_> = seen
        .iter()
        .filter(|(t, _)| t == "ActionResponse")
        .map(|(_, v)| v["output"].clone())
        .collect();
    assert_eq!(responses, vec![json!(1), json!(2)]);
    assert_eq!(
        seen.iter().filter(|(t, _)| t == "Event").count(),
        2,
        "the early subscription held"
    );
}

#[tokio::test]
async fn bare_output_versions_follow_the_route_and_the_peer() {
    let server = TestServer::start().await;
    let id = server.room("ws-bare").await;
    let bare = &["rivet", "rivet_encoding.bare"];

    // Direct path, unknown peer: v2 (what 2.0.33 reads).
    let (mut ws, _) = ws_connect(&server, &format!("/gateway/{id}/connect"), bare).await;
    let init = next_binary(&mut ws).await;
    assert_eq!(&init[..2], &[2, 0]);
    // Appendix B: ActionRequest {id 0, "increment", [5]} as v4 …
    send_binary(
        &mut ws,
        vec![
            4, 0, 0, 0, 9, b'i', b'n', b'c', b'r', b'e', b'm', b'e', b'n', b't', 2, 0x81, 5,
        ],
    )
    .await;
    // … is answered as v4 now that the peer showed it speaks v4: ActionResponse {id 0, output 5}.
    assert_eq!(next_binary(&mut ws).await, vec![4, 0, 2, 0, 1, 5]);

    // Query path: only 2.3.x builds these, so v4 from the start.
    let (mut ws, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-bare"),
        bare,
    )
    .await;
    let init = next_binary(&mut ws).await;
    let (msg, version) = decode_to_client(&init, Encoding::Bare, Dialect::Compat).unwrap();
    assert_eq!(version, Some(4));
    assert!(matches!(msg, ToClient::Init { ref actor_id, .. } if actor_id.as_str() == id));

    // A v2 peer on a direct path gets v2 errors (Appendix B, "the same Error as v2").
    let (mut ws, _) = ws_connect(&server, &format!("/gateway/{id}/connect"), bare).await;
    next_binary(&mut ws).await;
    let request = ToServer::ActionRequest {
        id: 0,
        name: "fail".into(),
        args: vec![],
    };
    send_binary(
        &mut ws,
        encode_to_server(&request, Encoding::Bare, 2, Dialect::Native),
    )
    .await;
    let error = next_binary(&mut ws).await;
    assert_eq!(&error[..2], &[2, 0]);
    let (msg, _) = decode_to_client(&error, Encoding::Bare, Dialect::Native).unwrap();
    assert!(matches!(
        msg,
        ToClient::Error {
            action_id: Some(0),
            ..
        }
    ));
}

#[tokio::test]
async fn cbor_connections_use_binary_frames() {
    let server = TestServer::start().await;
    let (mut ws, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-cbor"),
        &["rivet", "rivet_encoding.cbor"],
    )
    .await;
    let init = next_binary(&mut ws).await;
    assert!(matches!(
        decode_to_client(&init, Encoding::Cbor, Dialect::Compat)
            .unwrap()
            .0,
        ToClient::Init { .. }
    ));
    let request = ToServer::ActionRequest {
        id: 5,
        name: "echo".into(),
        args: vec![Value::Bytes(vec![1, 2])],
    };
    send_binary(
        &mut ws,
        encode_to_server(&request, Encoding::Cbor, 4, Dialect::Compat),
    )
    .await;
    let reply = next_binary(&mut ws).await;
    let (msg, _) = decode_to_client(&reply, Encoding::Cbor, Dialect::Compat).unwrap();
    assert_eq!(
        msg,
        ToClient::ActionResponse {
            id: 5,
            output: Value::Bytes(vec![1, 2])
        }
    );
}

#[tokio::test]
async fn the_actor_can_disconnect_a_client_with_a_reason() {
    let server = TestServer::start().await;
    let (mut ws, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-kick"),
        JSON,
    )
    .await;
    until_tag(&mut ws, "Init").await;
    send_text(&mut ws, &action_json(0, "kick", json!(["see you. #soon"]))).await;
    // A coded reason rivetkit 2.3.x parses (`group.code#…`, split at `#`, then at `.`); the
    // free text follows the `#`, with no `#` of its own.
    assert_eq!(
        next_close(&mut ws).await,
        (1000, "connection.disconnected#see you. soon".to_owned())
    );
}

#[tokio::test]
async fn oversized_frames_and_outputs_are_refused_with_codes() {
    let server = TestServer::with(|b| {
        b.max_incoming_message_size(1024)
            .max_outgoing_message_size(1024)
    })
    .await;
    let path = TestServer::query_path("/connect", "ws-limits");

    let (mut ws, _) = ws_connect(&server, &path, JSON).await;
    until_tag(&mut ws, "Init").await;
    send_text(&mut ws, &action_json(1, "big", json!([4000]))).await;
    let error = until_tag(&mut ws, "Error").await;
    assert_eq!(error["code"], "outgoing_too_long");
    assert_eq!(error["actionId"], json!(["$BigInt", "1"]));
    // An event over the limit closes the connection.
    send_text(&mut ws, &subscribe_json("shout", true)).await;
    send_text(&mut ws, &action_json(2, "shout", json!([4000]))).await;
    assert_eq!(
        next_close(&mut ws).await,
        (1011, "message.outgoing_too_long".to_owned())
    );

    for size in [1500, 10_000] {
        let (mut ws, _) = ws_connect(&server, &path, JSON).await;
        until_tag(&mut ws, "Init").await;
        send_text(&mut ws, &action_json(3, "echo", json!(["z".repeat(size)]))).await;
        assert_eq!(
            next_close(&mut ws).await,
            (1011, "message.incoming_too_long".to_owned()),
            "{size}"
        );
    }
}

#[tokio::test]
async fn actions_beyond_the_in_flight_limit_are_refused_by_id() {
    let server = TestServer::with(|b| b.max_in_flight_actions(2)).await;
    let (mut ws, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-flight"),
        JSON,
    )
    .await;
    until_tag(&mut ws, "Init").await;
    send_text(&mut ws, &action_json(0, "hold", json!([]))).await;
    send_text(&mut ws, &action_json(1, "hold", json!([]))).await;
    send_text(&mut ws, &action_json(2, "getCount", json!([]))).await;
    let refused = until_tag(&mut ws, "Error").await;
    assert_eq!(refused["code"], "overloaded");
    assert_eq!(refused["actionId"], json!(["$BigInt", "2"]));

    // Release the held actions from another connection; then there is room again.
    let (mut other, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-flight"),
        JSON,
    )
    .await;
    until_tag(&mut other, "Init").await;
    send_text(&mut other, &action_json(0, "release", json!([]))).await;
    assert_eq!(until_tag(&mut other, "ActionResponse").await["output"], 2);
    until_tag(&mut ws, "ActionResponse").await;
    until_tag(&mut ws, "ActionResponse").await;
    send_text(&mut ws, &action_json(3, "getCount", json!([]))).await;
    assert_eq!(
        until_tag(&mut ws, "ActionResponse").await["id"],
        json!(["$BigInt", "3"])
    );
}

#[tokio::test]
async fn a_connection_limit_refuses_extra_sockets() {
    let server = TestServer::with(|b| b.max_connections(1)).await;
    let path = TestServer::query_path("/connect", "ws-max");
    let (mut first, _) = ws_connect(&server, &path, JSON).await;
    until_tag(&mut first, "Init").await;
    let (mut second, _) = ws_connect(&server, &path, JSON).await;
    let (code, reason) = next_close(&mut second).await;
    assert_eq!(code, 1011);
    assert!(reason.starts_with("actor.overloaded#"), "{reason}");
}

#[tokio::test]
async fn server_pings_keep_answering_clients_connected() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let server =
        TestServer::with(|b| b.ws_ping_interval(std::time::Duration::from_millis(20))).await;
    let (mut ws, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "ws-ping"),
        JSON,
    )
    .await;
    until_tag(&mut ws, "Init").await;
    // tungstenite answers each ping while we read, so the server keeps the socket open.
    let mut pings = 0;
    while pings < 3 {
        match bounded(ws.next()).await {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
    send_text(&mut ws, &action_json(0, "getCount", json!([]))).await;
    assert_eq!(until_tag(&mut ws, "ActionResponse").await["output"], 0);
}

/// Subscribes a binary-encoded socket to `newCount` and waits for the subscription to be
/// processed (a round trip after it).
async fn subscribe_binary(ws: &mut Ws, encoding: Encoding, version: u16) {
    for msg in [
        ToServer::SubscriptionRequest {
            event_name: "newCount".into(),
            subscribe: true,
        },
        ToServer::ActionRequest {
            id: 1,
            name: "getCount".into(),
            args: vec![],
        },
    ] {
        let frame = encode_to_server(&msg, encoding, version, Dialect::Compat);
        send_binary(ws, frame).await;
    }
    let reply = next_binary(ws).await;
    let (msg, _) = decode_to_client(&reply, encoding, Dialect::Compat).unwrap();
    assert!(
        matches!(msg, ToClient::ActionResponse { id: 1, .. }),
        "{msg:?}"
    );
}

#[tokio::test]
async fn a_broadcast_reaches_every_encoding_in_its_own_bytes() {
    let server = TestServer::start().await;
    let id = server.room("ws-mixed").await;
    let query = TestServer::query_path("/connect", "ws-mixed");
    let direct = format!("/gateway/{id}/connect");
    let bare = &["rivet", "rivet_encoding.bare"];
    let cbor = &["rivet", "rivet_encoding.cbor"];

    let (mut json_a, _) = ws_connect(&server, &query, JSON).await;
    let (mut json_b, _) = ws_connect(&server, &query, JSON).await;
    let (mut cbor_ws, _) = ws_connect(&server, &query, cbor).await;
    let (mut bare_v4, _) = ws_connect(&server, &query, bare).await;
    let (mut bare_v2, _) = ws_connect(&server, &direct, bare).await;
    let (mut bare_v3, _) = ws_connect(&server, &direct, bare).await;
    let (mut caller, _) = ws_connect(&server, &query, JSON).await;
    for ws in [&mut json_a, &mut json_b] {
        until_tag(ws, "Init").await;
        send_text(ws, &subscribe_json("newCount", true)).await;
        send_text(ws, &action_json(1, "getCount", json!([]))).await;
        until_tag(ws, "ActionResponse").await;
    }
    for (ws, encoding, version) in [
        (&mut cbor_ws, Encoding::Cbor, 4),
        (&mut bare_v4, Encoding::Bare, 4),
        (&mut bare_v2, Encoding::Bare, 2),
        (&mut bare_v3, Encoding::Bare, 3),
    ] {
        next_binary(ws).await;
        subscribe_binary(ws, encoding, version).await;
    }
    until_tag(&mut caller, "Init").await;

    send_text(&mut caller, &action_json(2, "increment", json!([3]))).await;
    assert_eq!(until_tag(&mut caller, "ActionResponse").await["output"], 3);

    let event = ToClient::Event {
        name: "newCount".into(),
        args: vec![Value::Int(3)],
    };
    let expected = |encoding, version| encode_to_client(&event, encoding, version, Dialect::Compat);
    for ws in [&mut json_a, &mut json_b] {
        match next_frame(ws).await {
            Frame::Text(text) => {
                assert_eq!(text.as_bytes(), expected(Encoding::Json, 4));
            }
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
    let cbor_event = next_binary(&mut cbor_ws).await;
    assert_eq!(cbor_event, expected(Encoding::Cbor, 4));
    let v4_event = next_binary(&mut bare_v4).await;
    assert_eq!(v4_event, expected(Encoding::Bare, 4));
    let v2_event = next_binary(&mut bare_v2).await;
    assert_eq!(v2_event, expected(Encoding::Bare, 2));
    // v2 and v3 peers share a dialect (native) but not a version prefix.
    let v3_event = next_binary(&mut bare_v3).await;
    assert_eq!(v3_event, expected(Encoding::Bare, 3));
    assert_ne!(v4_event, v2_event, "each peer gets its own version");
}
