//! Texts that differ between the two generations of the official client (§8.3, §8.5): each
//! client gets its own, where the server can tell which one it talks to (the BARE version it
//! writes, a query-gateway URL, its `User-Agent`). Where nothing tells, 2.3.x wording.

use footlights_protocol::codec::{
    Dialect, Encoding, HttpResponseError, NATIVE_INTERNAL_MESSAGE, decode_to_client,
    encode_to_server,
};
use footlights_protocol::{INTERNAL_MESSAGE, ToClient, ToServer};

use crate::support::{TestServer, bounded, http, json_body, next_binary, send_binary, ws_connect};

/// A stateless call of `internal` (a non-public error) with these headers and body.
async fn internal_over_http(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = http().post(server.url(path)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = bounded(request.send()).await.unwrap();
    assert_eq!(response.status(), 500);
    response
}

#[tokio::test]
async fn a_masked_internal_error_reads_as_each_client_generations_own_server_wrote_it() {
    let server = TestServer::start().await;
    let id = server.room("generations").await;
    let direct = format!("/gateway/{id}/action/internal");

    // rivetkit 2.0.33 names itself in its User-Agent (Node): group `internal`, its message.
    let old = [("user-agent", "RivetKit/2.0.33")];
    let body = json_body(internal_over_http(&server, &direct, &old, b"{}".to_vec()).await).await;
    assert_eq!(
        (&body["group"], &body["code"], &body["message"]),
        (
            &"internal".into(),
            &"internal_error".into(),
            &NATIVE_INTERNAL_MESSAGE.into()
        )
    );
    assert!(!body.to_string().contains("hunter2"));

    // … and writes BARE v2 whatever its User-Agent says (a browser's, here none).
    let bare = [("x-rivet-encoding", "bare")];
    let response = internal_over_http(&server, &direct, &bare, vec![2, 0, 1, 0x80]).await;
    let bytes = bounded(response.bytes()).await.unwrap();
    let (body, version) =
        HttpResponseError::decode(&bytes, Encoding::Bare, Dialect::Native).unwrap();
    assert_eq!(version, Some(2));
    assert_eq!(
        (body.error.group(), body.error.message()),
        ("internal", NATIVE_INTERNAL_MESSAGE)
    );

    // rivetkit 2.3.19: its User-Agent, its BARE v4, or a query-gateway URL (only 2.3.x builds
    // them) keep the error's group and 2.3.x's message.
    let new = [("user-agent", "RivetKit/2.3.19")];
    let body = json_body(internal_over_http(&server, &direct, &new, b"{}".to_vec()).await).await;
    assert_eq!(
        (&body["group"], &body["message"]),
        (&"core".into(), &INTERNAL_MESSAGE.into())
    );
    let query = TestServer::query_path("/action/internal", "generations");
    let body = json_body(internal_over_http(&server, &query, &old, b"{}".to_vec()).await).await;
    assert_eq!(
        body["message"], INTERNAL_MESSAGE,
        "the URL outranks the header"
    );
    let response = internal_over_http(&server, &direct, &bare, vec![4, 0, 1, 0x80]).await;
    let bytes = bounded(response.bytes()).await.unwrap();
    let (body, _) = HttpResponseError::decode(&bytes, Encoding::Bare, Dialect::Compat).unwrap();
    assert_eq!(body.error.message(), INTERNAL_MESSAGE);

    // Nothing tells: 2.3.x wording, the protocol's recommended default.
    let body = json_body(internal_over_http(&server, &direct, &[], b"{}".to_vec()).await).await;
    assert_eq!(body["message"], INTERNAL_MESSAGE);
}

#[tokio::test]
async fn a_bare_v2_websocket_peer_gets_the_older_wording_too() {
    let server = TestServer::start().await;
    let id = server.room("generations-ws").await;
    let bare = &["rivet", "rivet_encoding.bare"];
    let (mut ws, _) = ws_connect(&server, &format!("/gateway/{id}/connect"), bare).await;
    next_binary(&mut ws).await; // Init
    let request = ToServer::ActionRequest {
        id: 1,
        name: "internal".into(),
        args: vec![],
    };
    send_binary(
        &mut ws,
        encode_to_server(&request, Encoding::Bare, 2, Dialect::Native),
    )
    .await;
    let frame = next_binary(&mut ws).await;
    let (msg, _) = decode_to_client(&frame, Encoding::Bare, Dialect::Native).unwrap();
    let ToClient::Error { error, action_id } = msg else {
        panic!("{msg:?}")
    };
    assert_eq!(action_id, Some(1));
    assert_eq!(
        (error.group(), error.code(), error.message()),
        ("internal", "internal_error", NATIVE_INTERNAL_MESSAGE)
    );
}
