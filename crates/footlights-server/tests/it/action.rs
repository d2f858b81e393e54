//! `POST /action/{name}` (§6.1) in every encoding, against the protocol's examples.

use footlights_protocol::Value;
use footlights_protocol::codec::{Dialect, Encoding, HttpActionResponse, HttpResponseError};
use serde_json::json;

use crate::support::{TestServer, bounded, http, json_body};

fn action_url(server: &TestServer, id: &str, name: &str) -> String {
    server.url(&format!("/gateway/{id}/action/{name}"))
}

#[tokio::test]
async fn json_matches_the_protocol_example() {
    let server = TestServer::start().await;
    let id = server.room("json").await;
    let response = bounded(
        http()
            .post(action_url(&server, &id, "increment"))
            .header("x-rivet-encoding", "json")
            .header("content-type", "application/json")
            .body(r#"{"args":[5]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(bounded(response.text()).await.unwrap(), r#"{"output":5}"#);
}

#[tokio::test]
async fn missing_args_and_unknown_encodings_fall_back_gracefully() {
    let server = TestServer::start().await;
    let id = server.room("fallback").await;
    for (encoding, body) in [(None, "{}"), (Some("yaml"), r#"{"args":null}"#)] {
        let mut request = http().post(action_url(&server, &id, "getCount")).body(body);
        if let Some(e) = encoding {
            request = request.header("x-rivet-encoding", e);
        }
        let response = bounded(request.send()).await.unwrap();
        assert_eq!(json_body(response).await, json!({"output": 0}));
    }
}

#[tokio::test]
async fn cbor_bodies_as_cbor_x_writes_them() {
    let server = TestServer::start().await;
    let id = server.room("cbor").await;
    // {"args":[5]} with the map16 header cbor-x always writes (§3.3).
    let body = vec![0xb9, 0x00, 0x01, 0x64, b'a', b'r', b'g', b's', 0x81, 0x05];
    let response = bounded(
        http()
            .post(action_url(&server, &id, "increment"))
            .header("x-rivet-encoding", "cbor")
            .body(body)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let bytes = bounded(response.bytes()).await.unwrap();
    let (decoded, _) = HttpActionResponse::decode(&bytes, Encoding::Cbor, Dialect::Compat).unwrap();
    assert_eq!(decoded.output, Value::Int(5));
}

#[tokio::test]
async fn bare_answers_in_the_version_the_client_wrote() {
    let server = TestServer::start().await;
    let id = server.room("bare").await;
    let post = |body: Vec<u8>| {
        http()
            .post(action_url(&server, &id, "increment"))
            .header("x-rivet-encoding", "bare")
            .body(body)
            .send()
    };
    // Appendix B: HttpActionRequest {args [5]} → HttpActionResponse {output 5}.
    let v4 = bounded(post(vec![0x04, 0x00, 0x02, 0x81, 0x05]))
        .await
        .unwrap();
    assert_eq!(v4.status(), 200);
    assert_eq!(
        &bounded(v4.bytes()).await.unwrap()[..],
        &[0x04, 0x00, 0x01, 0x05]
    );
    let v2 = bounded(post(vec![0x02, 0x00, 0x02, 0x81, 0x01]))
        .await
        .unwrap();
    assert_eq!(
        &bounded(v2.bytes()).await.unwrap()[..],
        &[0x02, 0x00, 0x01, 0x06]
    );
}

#[tokio::test]
async fn errors_come_back_in_the_request_encoding() {
    let server = TestServer::start().await;
    let id = server.room("errors").await;
    let json_error = bounded(
        http()
            .post(action_url(&server, &id, "fail"))
            .body(r#"{"args":[]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_error.status(), 400);
    assert_eq!(json_error.headers()["content-type"], "application/json");
    assert!(json_error.headers().contains_key("x-rivet-ray-id"));
    assert_eq!(
        json_body(json_error).await,
        json!({"group": "user", "code": "boom", "message": "it failed", "metadata": {"why": 1}})
    );

    let bare_error = bounded(
        http()
            .post(action_url(&server, &id, "fail"))
            .header("x-rivet-encoding", "bare")
            .body(vec![0x04, 0x00, 0x01, 0x80])
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(bare_error.status(), 400);
    assert_eq!(
        bare_error.headers()["content-type"],
        "application/octet-stream"
    );
    let bytes = bounded(bare_error.bytes()).await.unwrap();
    assert_eq!(&bytes[..2], &[4, 0]);
    let (decoded, _) = HttpResponseError::decode(&bytes, Encoding::Bare, Dialect::Compat).unwrap();
    assert_eq!(
        (decoded.error.group(), decoded.error.code()),
        ("user", "boom")
    );

    let internal = bounded(
        http()
            .post(action_url(&server, &id, "internal"))
            .body("{}")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(internal.status(), 500);
    let body = json_body(internal).await;
    assert_eq!(body["code"], "internal_error");
    assert_eq!(body["message"], "An internal error occurred");
    assert!(
        !body.to_string().contains("hunter2"),
        "internal details leaked"
    );

    let missing = bounded(
        http()
            .post(action_url(&server, &id, "nope"))
            .body("{}")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(json_body(missing).await["code"], "action_not_found");

    let get = bounded(http().get(action_url(&server, &id, "getCount")).send())
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(json_body(get).await["code"], "method_not_allowed");
}

#[tokio::test]
async fn chunked_bodies_are_accepted() {
    let server = TestServer::start().await;
    let id = server.room("chunked").await;
    let chunks: Vec<Result<&'static str, std::io::Error>> =
        vec![Ok(r#"{"ar"#), Ok(r#"gs":[7"#), Ok("]}")];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = bounded(
        http()
            .post(action_url(&server, &id, "increment"))
            .body(body)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_body(response).await, json!({"output": 7}));
}

#[tokio::test]
async fn conn_params_reach_the_hooks() {
    let server = TestServer::start().await;
    let id = server.room("params").await;
    let response = bounded(
        http()
            .post(action_url(&server, &id, "params"))
            .header("x-rivet-conn-params", r#"{"user":"ada","tag":["$$x",1]}"#)
            .body("{}")
            .send(),
    )
    .await
    .unwrap();
    // Compat escaping is undone on the way in and redone on the way out.
    assert_eq!(
        json_body(response).await,
        json!({"output": {"user": "ada", "tag": ["$$x", 1]}})
    );

    let rejected = bounded(
        http()
            .post(action_url(&server, &id, "getCount"))
            .header("x-rivet-conn-params", r#"{"reject":true}"#)
            .body("{}")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(rejected.status(), 403);
    assert_eq!(json_body(rejected).await["code"], "forbidden");

    let garbled = bounded(
        http()
            .post(action_url(&server, &id, "getCount"))
            .header("x-rivet-conn-params", "{nope")
            .body("{}")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(garbled.status(), 400);
    assert_eq!(json_body(garbled).await["code"], "invalid_request");
}

#[tokio::test]
async fn size_limits_apply_both_ways() {
    let server = TestServer::with(|b| {
        b.max_incoming_message_size(1024)
            .max_outgoing_message_size(1024)
            .max_conn_params_size(64)
    })
    .await;
    let id = server.room("limits").await;
    let big_body = format!(r#"{{"args":["{}"]}}"#, "y".repeat(2000));
    let too_big = bounded(
        http()
            .post(action_url(&server, &id, "echo"))
            .body(big_body.clone())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(too_big.status(), 400);
    assert_eq!(json_body(too_big).await["code"], "incoming_too_long");

    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok(big_body[..1000].to_owned()),
        Ok(big_body[1000..].to_owned()),
    ];
    let chunked = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let too_big = bounded(
        http()
            .post(action_url(&server, &id, "echo"))
            .body(chunked)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_body(too_big).await["code"], "incoming_too_long");

    let out = bounded(
        http()
            .post(action_url(&server, &id, "big"))
            .body(r#"{"args":[4000]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(out.status(), 400);
    assert_eq!(json_body(out).await["code"], "outgoing_too_long");

    let params = bounded(
        http()
            .post(action_url(&server, &id, "getCount"))
            .header("x-rivet-conn-params", format!(r#""{}""#, "p".repeat(100)))
            .body("{}")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_body(params).await["code"], "incoming_too_long");

    let fine = bounded(
        http()
            .post(action_url(&server, &id, "big"))
            .body(r#"{"args":[100]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(fine.status(), 200);
}
