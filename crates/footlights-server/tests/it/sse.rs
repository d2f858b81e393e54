//! The SSE transport (Footlights extension): stream down, posts up.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use footlights_protocol::codec::{
    Dialect, Encoding, decode_to_client, encode_to_client, encode_to_server,
};
use footlights_protocol::{ToClient, ToServer, Value};
use futures::StreamExt;
use serde_json::json;

use crate::support::{TestServer, action_json, bounded, http, json_body, subscribe_json};

/// One parsed SSE event; comments come back as `event == ":"`.
#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    event: String,
    data: String,
}

/// Reads an event stream.
struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        SseReader {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event or comment; `None` at the end of the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    data: String::new(),
                };
                let mut data = Vec::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        event.event = ":".into();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.into();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push(v);
                    }
                }
                event.data = data.join("\n");
                return Some(event);
            }
            match bounded(self.body.next()).await {
                Some(Ok(chunk)) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                _ => return None,
            }
        }
    }

    /// The next event that is not a keep-alive comment.
    async fn event(&mut self) -> SseEvent {
        loop {
            let e = self.next().await.expect("the stream ended");
            if e.event != ":" {
                return e;
            }
        }
    }

    /// The next `message` event's JSON.
    async fn message(&mut self) -> serde_json::Value {
        let e = self.event().await;
        assert_eq!(e.event, "message", "{e:?}");
        serde_json::from_str(&e.data).unwrap()
    }
}

struct SseConn {
    reader: SseReader,
    base: String,
    conn_id: String,
    secret: String,
}

impl SseConn {
    async fn open(
        server: &TestServer,
        base: String,
        headers: &[(&str, &str)],
    ) -> (SseConn, SseEvent) {
        let _ = server;
        let mut request = http().get(with_route(&base, "/connect/sse"));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = bounded(request.send()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut reader = SseReader::new(response);
        let init = reader.event().await;
        assert_eq!(init.event, "footlights-init");
        let meta: serde_json::Value = serde_json::from_str(&init.data).unwrap();
        let conn_id = meta["connectionId"].as_str().unwrap().to_owned();
        let secret = meta["secret"].as_str().unwrap().to_owned();
        let first = reader.event().await;
        (
            SseConn {
                reader,
                base,
                conn_id,
                secret,
            },
            first,
        )
    }

    async fn post(&self, what: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        let route = format!("/connections/{}/{what}", self.conn_id);
        let url = with_route(&self.base, &route);
        bounded(
            http()
                .post(url)
                .header("x-footlights-conn-secret", &self.secret)
                .body(body)
                .send(),
        )
        .await
        .unwrap()
    }
}

/// Puts an actor route into a gateway URL (before its query).
fn with_route(base: &str, route: &str) -> String {
    match base.split_once('?') {
        Some((path, query)) => format!("{path}{route}?{query}"),
        None => format!("{base}{route}"),
    }
}

#[tokio::test]
async fn sse_end_to_end_in_json() {
    let server = TestServer::start().await;
    let base = server.url(&TestServer::query_path("", "sse-json"));
    let (mut conn, init) = SseConn::open(&server, base, &[]).await;
    let init: serde_json::Value = serde_json::from_str(&init.data).unwrap();
    assert_eq!(init["body"]["tag"], "Init");
    assert_eq!(init["body"]["val"]["connectionId"], conn.conn_id.as_str());
    assert!(
        init["body"]["val"]["connectionToken"].is_string(),
        "SSE clients always get a token"
    );

    let accepted = conn.post("message", subscribe_json("newCount", true)).await;
    assert_eq!(accepted.status(), 202);
    let accepted = conn
        .post("message", action_json(4, "increment", json!([3])))
        .await;
    assert_eq!(accepted.status(), 202);
    assert_eq!(
        conn.reader.message().await,
        json!({"body": {"tag": "Event", "val": {"name": "newCount", "args": [3]}}})
    );
    assert_eq!(
        conn.reader.message().await,
        json!({"body": {"tag": "ActionResponse", "val": {"id": ["$BigInt", "4"], "output": 3}}})
    );

    conn.post("message", action_json(5, "fail", json!([])))
        .await;
    let error = conn.reader.message().await;
    assert_eq!(error["body"]["val"]["actionId"], json!(["$BigInt", "5"]));

    assert_eq!(conn.post("close", "").await.status(), 202);
    let close = conn.reader.event().await;
    assert_eq!(close.event, "footlights-close");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&close.data).unwrap(),
        json!({"code": 1000, "reason": ""})
    );
    assert!(
        conn.reader.next().await.is_none(),
        "the stream ends after the close event"
    );
    // The connection is gone for its posts too.
    assert_eq!(
        conn.post("message", action_json(6, "getCount", json!([])))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn sse_in_bare_sends_base64_frames() {
    let server = TestServer::start().await;
    let id = server.room("sse-bare").await;
    let base = server.url(&format!("/gateway/{id}"));
    let (conn, init) = SseConn::open(&server, base, &[("x-rivet-encoding", "bare")]).await;
    let bytes = STANDARD.decode(&init.data).unwrap();
    let (msg, version) = decode_to_client(&bytes, Encoding::Bare, Dialect::Compat).unwrap();
    assert_eq!(version, Some(1), "a token-carrying Init is BARE v1");
    assert!(matches!(
        msg,
        ToClient::Init {
            connection_token: Some(_),
            ..
        }
    ));

    let mut conn = conn;
    let request = ToServer::ActionRequest {
        id: 1,
        name: "echo".into(),
        args: vec![Value::Int(42)],
    };
    let accepted = conn
        .post(
            "message",
            encode_to_server(&request, Encoding::Bare, 4, Dialect::Compat),
        )
        .await;
    assert_eq!(accepted.status(), 202);
    let reply = conn.reader.event().await;
    let (msg, version) = decode_to_client(
        &STANDARD.decode(&reply.data).unwrap(),
        Encoding::Bare,
        Dialect::Compat,
    )
    .unwrap();
    assert_eq!(version, Some(4));
    assert_eq!(
        msg,
        ToClient::ActionResponse {
            id: 1,
            output: Value::Int(42)
        }
    );

    // A broadcast arrives as the base64 of the same BARE frame.
    for msg in [
        ToServer::SubscriptionRequest {
            event_name: "newCount".into(),
            subscribe: true,
        },
        ToServer::ActionRequest {
            id: 2,
            name: "increment".into(),
            args: vec![Value::Int(6)],
        },
    ] {
        let body = encode_to_server(&msg, Encoding::Bare, 4, Dialect::Compat);
        assert_eq!(conn.post("message", body).await.status(), 202);
    }
    let event = conn.reader.event().await;
    let expected = ToClient::Event {
        name: "newCount".into(),
        args: vec![Value::Int(6)],
    };
    assert_eq!(
        STANDARD.decode(&event.data).unwrap(),
        encode_to_client(&expected, Encoding::Bare, 4, Dialect::Compat)
    );
}

#[tokio::test]
async fn sse_params_come_from_headers_or_the_query_and_rejections_close() {
    let server = TestServer::start().await;
    let base = server.url(&format!(
        "{}&fl-conn-params=%7B%22who%22%3A%22q%22%7D",
        TestServer::query_path("", "sse-params")
    ));
    let (conn, _) = SseConn::open(&server, base, &[]).await;
    let mut conn = conn;
    conn.post("message", action_json(0, "params", json!([])))
        .await;
    assert_eq!(
        conn.reader.message().await["body"]["val"]["output"],
        json!({"who": "q"})
    );

    let base = server.url(&TestServer::query_path("", "sse-params"));
    let response = bounded(
        http()
            .get(with_route(&base, "/connect/sse"))
            .header("x-rivet-conn-params", r#"{"reject":true}"#)
            .send(),
    )
    .await
    .unwrap();
    let mut reader = SseReader::new(response);
    let error = reader.message().await;
    assert_eq!(error["body"]["val"]["code"], "forbidden");
    let close = reader.event().await;
    assert_eq!(close.event, "footlights-close");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&close.data).unwrap(),
        json!({"code": 1011, "reason": "auth.forbidden"})
    );
}

#[tokio::test]
async fn sse_posts_need_the_right_secret_and_a_decodable_body() {
    let server = TestServer::with(|b| b.sse_keep_alive(std::time::Duration::from_millis(20))).await;
    let base = server.url(&TestServer::query_path("", "sse-auth"));
    let (mut conn, _) = SseConn::open(&server, base.clone(), &[]).await;

    let wrong = bounded(
        http()
            .post(with_route(
                &base,
                &format!("/connections/{}/message", conn.conn_id),
            ))
            .header("x-footlights-conn-secret", "guess")
            .body(action_json(0, "getCount", json!([])))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 404);
    assert_eq!(json_body(wrong).await["code"], "not_found");

    let garbage = conn.post("message", b"\x00\x01garbage".to_vec()).await;
    assert_eq!(garbage.status(), 400);
    assert_eq!(json_body(garbage).await["code"], "invalid_request");

    // Keep-alive comments flow while idle, and the connection still works.
    loop {
        if bounded(conn.reader.next()).await.unwrap().event == ":" {
            break;
        }
    }
    conn.post("message", action_json(1, "getCount", json!([])))
        .await;
    assert_eq!(conn.reader.message().await["body"]["val"]["output"], 0);
}

#[tokio::test]
async fn an_unknown_sse_encoding_is_refused() {
    let server = TestServer::start().await;
    let base = server.url(&TestServer::query_path("", "sse-enc"));
    let response = bounded(
        http()
            .get(with_route(&base, "/connect/sse"))
            .header("x-rivet-encoding", "xml")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(json_body(response).await["code"], "unsupported_encoding");
}
