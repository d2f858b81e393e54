//! The log lines a person reads: one per failed request at `info` (every request at `debug`),
//! one per connection, errors once with their cause inside the actor's span, request ids.
//!
//! A process of its own: the lines are captured by a subscriber set for this test's thread,
//! and no other test's thread may register the log call sites first.

#![allow(clippy::unwrap_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "it/support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use footlights_server::logging::{LogFormat, layer};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

use support::{TestServer, bounded, http, until_tag, ws_connect};

/// The JSON encoding's WebSocket subprotocols.
const JSON: &[&str] = &["rivet", "rivet_encoding.json"];

/// A writer into a shared buffer, for capturing log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Every line so far, each a JSON object.
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The lines whose message is `message`.
    fn with_message(&self, message: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["fields"]["message"] == message)
            .collect()
    }
}

/// Runs the server in a current-thread runtime with a subscriber that writes JSON lines into
/// the returned buffer at `info`, and every request line (every task of the test runs on this
/// thread, so every line is captured).
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(
            "info,footlights::requests=debug",
        ))
        .with(layer(LogFormat::Json, move || writer.clone(), false));
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

#[tokio::test(flavor = "current_thread")]
async fn requests_and_connections_are_logged_once_each() {
    let (logs, _guard) = capture();
    let server = TestServer::start().await;
    let path = TestServer::query_path("/action/increment", "logs");
    // A request id the client chose is kept and sent back.
    let response = bounded(
        http()
            .post(server.url(&path))
            .header("x-rivet-encoding", "json")
            .header("x-request-id", "req-42.a")
            .body(r#"{"args":[2]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42.a");
    // One that is not well-formed is replaced.
    let path = TestServer::query_path("/action/fail", "logs");
    let response = bounded(
        http()
            .post(server.url(&path))
            .header("x-rivet-encoding", "json")
            .header("x-request-id", "no spaces allowed")
            .body(r#"{"args":[]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let failed_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(failed_id, "no spaces allowed");
    assert_eq!(response.headers()["x-rivet-ray-id"], failed_id.as_str());

    let requests = logs.with_message("request");
    assert_eq!(requests.len(), 2, "{:#?}", logs.lines());
    let ok = &requests[0];
    assert_eq!(ok["level"], "DEBUG", "successes are not logged at info");
    assert_eq!(ok["target"], "footlights::requests");
    let f = &ok["fields"];
    assert_eq!(f["method"], "POST");
    assert_eq!(f["path"], "/gateway/room/action/increment");
    assert_eq!(f["status"], 200);
    assert_eq!(f["actor"], "room");
    assert_eq!(f["key"], "logs");
    assert_eq!(f["action"], "increment");
    assert_eq!(f["request_id"], "req-42.a");
    assert!(f["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(f.get("code").is_none(), "no code for a success");
    assert_eq!(requests[1]["level"], "INFO", "failures are");
    let failed = &requests[1]["fields"];
    assert_eq!(failed["status"], 400);
    assert_eq!(failed["code"], "user.boom");
    assert_eq!(failed["request_id"], failed_id.as_str());

    // An internal error: one ERROR line with its cause, inside the actor's span.
    let path = TestServer::query_path("/action/internal", "logs");
    let response = bounded(
        http()
            .post(server.url(&path))
            .header("x-rivet-encoding", "json")
            .body(r#"{"args":[]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 500);
    let errors: Vec<Value> = logs
        .lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0]["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("hunter2"),
        "the cause is logged (never sent): {errors:#?}"
    );
    let spans = errors[0]["spans"].as_array().unwrap();
    let actor_span = spans.iter().find(|s| s["name"] == "actor").unwrap();
    assert_eq!(actor_span["actor"], "room");
    assert_eq!(actor_span["key"], "logs");
    let internal = logs.with_message("request");
    assert_eq!(internal[2]["level"], "INFO");
    assert_eq!(internal[2]["fields"]["status"], 500);
    assert_eq!(internal[2]["fields"]["code"], "core.internal_error");

    // A WebSocket: its upgrade is not an info line; its end is, once.
    let path = TestServer::query_path("/connect", "logs");
    let (mut ws, _) = ws_connect(&server, &path, JSON).await;
    until_tag(&mut ws, "Init").await;
    support::close_ws(&mut ws).await;
    bounded(async {
        while logs.with_message("connection closed").is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    let closed = logs.with_message("connection closed");
    assert_eq!(closed.len(), 1);
    let f = &closed[0]["fields"];
    assert_eq!(closed[0]["level"], "INFO");
    assert_eq!(f["transport"], "websocket");
    assert_eq!(f["actor"], "room");
    assert_eq!(f["key"], "logs");
    assert!(f["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    let requests = logs.with_message("request");
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[3]["fields"]["status"], 101);
    assert_eq!(
        requests[3]["level"], "DEBUG",
        "the upgrade request is logged at debug only"
    );
    server.shutdown().await;
}
