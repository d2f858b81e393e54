//! Malformed input never crashes the server: every decoder error becomes a coded error, and
//! only the offending connection is closed.

use footlights_protocol::codec::{Dialect, Encoding, HttpResponseError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    Frame, TestServer, action_json, bounded, close_ws, http, json_body, next_close, next_frame,
    send_binary, send_text, until_tag, ws_connect,
};

async fn server_still_serves(server: &TestServer) {
    let response = bounded(http().get(server.url("/metadata")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn undecodable_frames_close_only_their_connection() {
    let server = TestServer::start().await;
    let path = TestServer::query_path("/connect", "garbage");
    let (mut healthy, _) = ws_connect(&server, &path, &["rivet", "rivet_encoding.json"]).await;
    until_tag(&mut healthy, "Init").await;

    let (mut ws, _) = ws_connect(&server, &path, &["rivet", "rivet_encoding.json"]).await;
    until_tag(&mut ws, "Init").await;
    send_text(&mut ws, "this is not json").await;
    let error = until_tag(&mut ws, "Error").await;
    assert_eq!(error["code"], "invalid_request");
    assert_eq!(error["actionId"], serde_json::Value::Null);
    assert_eq!(
        next_close(&mut ws).await,
        (1011, "actor.invalid_request".to_owned())
    );

    for (encoding, garbage) in [
        ("bare", vec![0x09, 0x00, 0x00]),             // unknown version
        ("bare", vec![0x04, 0x00, 0x07, 0x01]),       // unknown union tag
        ("bare", vec![0x04, 0x00, 0x00, 0x00, 0xff]), // truncated string
        ("cbor", vec![0xbf, 0xff, 0xff, 0x00]),       // broken map
        (
            "cbor",
            vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ), // absurd length
    ] {
        let protocol = format!("rivet_encoding.{encoding}");
        let (mut ws, _) = ws_connect(&server, &path, &["rivet", &protocol]).await;
        assert!(
            matches!(next_frame(&mut ws).await, Frame::Binary(_)),
            "Init"
        );
        send_binary(&mut ws, garbage).await;
        assert_eq!(next_close(&mut ws).await.0, 1011, "{encoding}");
    }

    send_text(&mut healthy, &action_json(1, "increment", json!([1]))).await;
    assert_eq!(until_tag(&mut healthy, "ActionResponse").await["output"], 1);
}

#[tokio::test]
async fn undecodable_action_bodies_are_coded_errors_in_the_request_encoding() {
    let server = TestServer::start().await;
    let id = server.room("bodies").await;
    let url = server.url(&format!("/gateway/{id}/action/increment"));
    for (encoding, body) in [
        ("json", b"[1,2".to_vec()),
        ("json", b"{\"args\":[[\"$Nope\",1]]}".to_vec()),
        ("cbor", vec![0xff]),
        ("bare", vec![0x04]),
        ("bare", vec![0x04, 0x00, 0x05, 0x81]),
    ] {
        let response = bounded(
            http()
                .post(&url)
                .header("x-rivet-encoding", encoding)
                .body(body)
                .send(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 400, "{encoding}");
        let bytes = bounded(response.bytes()).await.unwrap();
        let wire = match encoding {
            "json" => Encoding::Json,
            "cbor" => Encoding::Cbor,
            _ => Encoding::Bare,
        };
        let (error, _) = HttpResponseError::decode(&bytes, wire, Dialect::Compat).unwrap();
        assert_eq!(error.error.code(), "invalid_request", "{encoding}");
    }
    server_still_serves(&server).await;
}

#[tokio::test]
async fn raw_tcp_garbage_is_harmless() {
    let server = TestServer::start().await;
    for garbage in [
        &b"\x00\x01\x02\x03\r\n\r\n"[..],
        b"GET /gateway/%ff%fe/action/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /actors HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n{",
        b"GET /gateway/room/connect?rvt-namespace=d&rvt-method=get HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nConnection: close\r\n\r\n",
    ] {
        let mut tcp = bounded(tokio::net::TcpStream::connect(server.addr)).await.unwrap();
        bounded(tcp.write_all(garbage)).await.unwrap();
        let mut out = Vec::new();
        let _ = bounded(tcp.read_to_end(&mut out)).await;
    }
    server_still_serves(&server).await;
}

/// Random paths, queries, headers and bodies against every route: never a 5xx, never a
/// crash, always a coded answer.
#[tokio::test]
async fn random_requests_get_coded_answers() {
    let server = TestServer::start().await;
    let id = server.room("fuzz").await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let pieces = [
        "/gateway",
        "/",
        "room",
        &id,
        "@",
        "%",
        "%2F",
        "%ff",
        "action",
        "connect",
        "sse",
        "connections",
        "message",
        "close",
        "request",
        "queue",
        "?",
        "&",
        "=",
        "+",
        "rvt-namespace",
        "rvt-method",
        "get",
        "getOrCreate",
        "rvt-runner",
        "rvt-key",
        "rvt-input",
        ",",
        "actors",
        "metadata",
        "increment",
    ];
    for round in 0..300 {
        let mut path = String::from("/");
        for _ in 0..rng.random_range(1..12) {
            path.push_str(pieces[rng.random_range(0..pieces.len())]);
        }
        let body: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
        let encoding = ["json", "cbor", "bare", "nonsense"][rng.random_range(0..4)];
        let method = [
            reqwest::Method::GET,
            reqwest::Method::POST,
            reqwest::Method::PUT,
        ][round % 3]
            .clone();
        let Ok(url) = reqwest::Url::parse(&server.url(&path)) else {
            continue;
        };
        let response = bounded(
            http()
                .request(method, url)
                .header("x-rivet-encoding", encoding)
                .header("x-rivet-conn-params", "{\"a\":")
                .body(body)
                .send(),
        )
        .await
        .unwrap();
        assert!(
            response.status().as_u16() < 500,
            "{path}: {}",
            response.status()
        );
        assert!(response.headers().contains_key("x-rivet-ray-id"));
    }
    server_still_serves(&server).await;
    let count = bounded(
        http()
            .post(server.url(&format!("/gateway/{id}/action/getCount")))
            .body("{}")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        json_body(count).await["output"].as_i64().map(|n| n >= 0),
        Some(true)
    );
}

/// Random binary frames on every encoding: each connection ends with a close code, the
/// server keeps serving.
#[tokio::test]
async fn random_frames_never_crash_the_server() {
    let server = TestServer::start().await;
    let path = TestServer::query_path("/connect", "frame-fuzz");
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..60 {
        let encoding = ["json", "cbor", "bare"][round % 3];
        let protocol = format!("rivet_encoding.{encoding}");
        let (mut ws, _) = ws_connect(&server, &path, &["rivet", &protocol]).await;
        let _init = next_frame(&mut ws).await;
        let mut frame: Vec<u8> = (0..rng.random_range(0..48)).map(|_| rng.random()).collect();
        if encoding == "bare" && frame.len() >= 2 && rng.random_bool(0.7) {
            frame[0] = 4;
            frame[1] = 0;
        }
        send_binary(&mut ws, frame).await;
        // Either the frame happened to decode (the connection lives on until we close it) or
        // the server closes it; both end in a close.
        close_ws(&mut ws).await;
        while !matches!(next_frame(&mut ws).await, Frame::Close(..) | Frame::Ended) {}
    }
    server_still_serves(&server).await;
}

/// Connects to room `key` and subscribes to `shout`, then stops reading while 384 events of
/// 64 KiB (24 MB, far more than the socket buffers hold) go its way. Reads afterwards, bounded
/// by 30 s: returns how many frames arrived and how the stream ended (`Some(reason)` for a
/// close, `None` for a dropped connection), or `None` overall if it never ended.
async fn stop_reading_under_a_flood(
    server: &TestServer,
    key: &str,
) -> Option<(usize, Option<String>)> {
    use crate::support::subscribe_json;
    let path = TestServer::query_path("/connect", key);
    let (mut ws, _) = ws_connect(server, &path, &["rivet", "rivet_encoding.json"]).await;
    until_tag(&mut ws, "Init").await;
    send_text(&mut ws, &subscribe_json("shout", true)).await;
    send_text(&mut ws, &action_json(0, "getCount", json!([]))).await;
    until_tag(&mut ws, "ActionResponse").await;
    let room = server.url(&TestServer::query_path("/action/shout", key));
    for _ in 0..384 {
        let reply = bounded(http().post(&room).body(r#"{"args":[65536]}"#).send())
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    let mut frames = 0usize;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match next_frame(&mut ws).await {
                Frame::Text(_) | Frame::Binary(_) => frames += 1,
                Frame::Close(_, reason) => return Some(reason),
                Frame::Ended => return None,
            }
        }
    })
    .await
    .ok()?;
    Some((frames, ended))
}

/// A client that stops reading while its actor keeps broadcasting is let go once a frame
/// cannot be written in time, instead of the server queueing for it without end.
#[tokio::test]
async fn a_client_that_stops_reading_is_let_go() {
    let server = TestServer::with(|b| {
        b.max_queued_messages(16)
            .write_timeout(std::time::Duration::from_millis(300))
    })
    .await;
    let (frames, ended) = stop_reading_under_a_flood(&server, "slow")
        .await
        .expect("the server kept the slow client");
    assert!(frames < 384, "every event was queued for it ({frames})");
    if let Some(reason) = ended {
        assert_eq!(reason, "connection.too_slow");
    }
}

/// The same client, with a long write timeout: what bounds the server's memory is the bytes
/// waiting for it, which let it go as soon as they pass `max_queued_bytes`.
#[tokio::test]
async fn a_client_that_stops_reading_is_let_go_at_its_byte_limit() {
    let server = TestServer::with(|b| {
        b.max_queued_bytes(1 << 20)
            .write_timeout(std::time::Duration::from_secs(3600))
    })
    .await;
    let (frames, _) = stop_reading_under_a_flood(&server, "slow-bytes")
        .await
        .expect("the server kept a client that read nothing, for an hour-long write");
    assert!(frames < 384, "every event was queued for it ({frames})");
}
