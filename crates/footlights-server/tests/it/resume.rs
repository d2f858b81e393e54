//! The Footlights connection extensions: tokens in `Init`, and resume.

use footlights_protocol::ToClient;
use footlights_protocol::codec::{Dialect, Encoding, decode_to_client};
use serde_json::json;

use crate::support::{
    TestServer, action_json, bounded, http, json_body, next_binary, next_close, send_text,
    subscribe_json, until_metric, until_tag, ws_connect,
};

const FOOTLIGHTS_JSON: &[&str] = &["rivet", "rivet_encoding.json", "footlights"];

#[tokio::test]
async fn footlights_clients_get_a_token_in_every_encoding() {
    let server = TestServer::start().await;
    let path = TestServer::query_path("/connect", "tok");
    let (mut ws, _) = ws_connect(&server, &path, FOOTLIGHTS_JSON).await;
    let init = until_tag(&mut ws, "Init").await;
    assert!(
        init["connectionToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    let (mut ws, _) = ws_connect(
        &server,
        &path,
        &["rivet", "rivet_encoding.bare", "footlights"],
    )
    .await;
    let init = next_binary(&mut ws).await;
    assert_eq!(&init[..2], &[1, 0], "BARE carries the token only in v1");
    let (msg, _) = decode_to_client(&init, Encoding::Bare, Dialect::Compat).unwrap();
    assert!(matches!(msg, ToClient::Init { connection_token: Some(ref t), .. } if !t.is_empty()));
    let (mut ws, _) = ws_connect(
        &server,
        &path,
        &["rivet", "rivet_encoding.cbor", "footlights"],
    )
    .await;
    let (msg, _) =
        decode_to_client(&next_binary(&mut ws).await, Encoding::Cbor, Dialect::Compat).unwrap();
    assert!(matches!(
        msg,
        ToClient::Init {
            connection_token: Some(_),
            ..
        }
    ));
}

async fn open_with_token(server: &TestServer, key: &str) -> (crate::support::Ws, String, String) {
    let (mut ws, _) = ws_connect(
        server,
        &TestServer::query_path("/connect", key),
        FOOTLIGHTS_JSON,
    )
    .await;
    let init = until_tag(&mut ws, "Init").await;
    let id = init["connectionId"].as_str().unwrap().to_owned();
    let token = init["connectionToken"].as_str().unwrap().to_owned();
    (ws, id, token)
}

fn resume_protocol(id: &str, token: &str) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!("footlights_resume.{}.{}", enc(id), enc(token))
}

#[tokio::test]
async fn a_dropped_connection_is_resumed_with_its_subscriptions() {
    let server = TestServer::start().await;
    let (mut ws, id, token) = open_with_token(&server, "resume").await;
    send_text(&mut ws, &subscribe_json("newCount", true)).await;
    send_text(&mut ws, &action_json(0, "getCount", json!([]))).await;
    until_tag(&mut ws, "ActionResponse").await;
    drop(ws); // the TCP connection goes away without a close frame

    let resume = resume_protocol(&id, &token);
    let (mut ws, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "resume"),
        &["rivet", "rivet_encoding.json", "footlights", &resume],
    )
    .await;
    let init = until_tag(&mut ws, "Init").await;
    assert_eq!(
        init["connectionId"],
        id.as_str(),
        "the same connection came back"
    );

    let room = server.url(&TestServer::query_path("/action/increment", "resume"));
    let reply = bounded(http().post(room).body(r#"{"args":[3]}"#).send())
        .await
        .unwrap();
    assert_eq!(json_body(reply).await, json!({"output": 3}));
    let event = until_tag(&mut ws, "Event").await;
    assert_eq!(
        event,
        json!({"name": "newCount", "args": [3]}),
        "the subscription survived"
    );
}

/// Resumes connection `id` on a new socket to `key`; the old socket is closed as superseded.
async fn take_over(
    server: &TestServer,
    key: &str,
    old: &mut crate::support::Ws,
    id: &str,
    token: &str,
) -> crate::support::Ws {
    let resume = resume_protocol(id, token);
    let (mut new, _) = ws_connect(
        server,
        &TestServer::query_path("/connect", key),
        &["rivet", "rivet_encoding.json", "footlights", &resume],
    )
    .await;
    assert_eq!(until_tag(&mut new, "Init").await["connectionId"], id);
    assert_eq!(
        next_close(old).await,
        (1000, "connection.superseded".to_owned())
    );
    new
}

#[tokio::test]
async fn a_resume_retires_the_stale_socket_of_the_same_connection() {
    let server = TestServer::start().await;
    let (mut old, id, token) = open_with_token(&server, "stale").await;
    let mut new = take_over(&server, "stale", &mut old, &id, &token).await;
    send_text(&mut new, &action_json(1, "connId", json!([]))).await;
    assert_eq!(
        until_tag(&mut new, "ActionResponse").await["output"],
        id.as_str()
    );
}

/// A socket parked while its actor sleeps is retired the same way, and the resumed
/// connection wakes the actor with its subscription.
#[tokio::test]
async fn a_resume_retires_a_parked_socket() {
    let server = TestServer::start().await;
    let (mut old, id, token) = open_with_token(&server, "stale-parked").await;
    send_text(&mut old, &subscribe_json("newCount", true)).await;
    send_text(&mut old, &action_json(1, "nap", json!([]))).await;
    until_tag(&mut old, "ActionResponse").await;
    until_metric(&server, "footlights_websockets_parked", 1).await;
    let mut new = take_over(&server, "stale-parked", &mut old, &id, &token).await;
    send_text(&mut new, &action_json(2, "increment", json!([4]))).await;
    // The event and the answer, in either order.
    let mut got = Vec::new();
    for _ in 0..2 {
        let msg = crate::support::next_json(&mut new).await;
        got.push((msg["body"]["tag"].clone(), msg["body"]["val"].clone()));
    }
    got.sort_by_key(|(tag, _)| tag.to_string());
    assert_eq!(got[0].0, "ActionResponse");
    assert_eq!(got[0].1["output"], json!(4));
    assert_eq!(got[1].0, "Event");
    assert_eq!(got[1].1, json!({"name": "newCount", "args": [4]}));
}

#[tokio::test]
async fn a_resume_with_the_wrong_token_is_refused() {
    let server = TestServer::start().await;
    let (_live, id, _token) = open_with_token(&server, "wrong").await;
    let resume = resume_protocol(&id, "not-the-token");
    let (mut ws, _) = ws_connect(
        &server,
        &TestServer::query_path("/connect", "wrong"),
        &["rivet", "rivet_encoding.json", "footlights", &resume],
    )
    .await;
    let error = until_tag(&mut ws, "Error").await;
    assert_eq!(error["code"], "resume_refused");
    assert_eq!(
        next_close(&mut ws).await,
        (1011, "connection.resume_refused".to_owned())
    );
}

#[tokio::test]
async fn connections_kept_for_a_resume_count_against_the_connection_limit() {
    let server = TestServer::with(|b| b.max_connections(2)).await;
    let (ws, _id, _token) = open_with_token(&server, "kept").await;
    drop(ws); // dropped without a close: the connection is kept for its client
    let kept = async {
        while server.registry.kept_connections() != 1 {
            tokio::task::yield_now().await;
        }
    };
    bounded(kept).await;
    let path = TestServer::query_path("/connect", "kept");
    let (mut second, _) = ws_connect(&server, &path, &["rivet", "rivet_encoding.json"]).await;
    until_tag(&mut second, "Init").await;
    // One open and one kept: the limit of two is reached.
    let (mut third, _) = ws_connect(&server, &path, &["rivet", "rivet_encoding.json"]).await;
    let (code, reason) = crate::support::next_close(&mut third).await;
    assert_eq!(code, 1011);
    assert!(reason.starts_with("actor.overloaded#"), "{reason}");
}
