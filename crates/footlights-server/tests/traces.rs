//! Trace spans (feature `otel`): a request carrying a W3C `traceparent` yields a request span,
//! the actor's span for the action and the group commit's span, in the caller's trace and
//! nested in that order; the SDK's in-memory exporter collects them.
//!
//! A process of its own: the spans are collected by a subscriber set for this test's thread.

#![allow(clippy::unwrap_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "it/support.rs"]
mod support;

use footlights_server::otel::Traces;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tracing_subscriber::layer::SubscriberExt as _;

use support::{TestServer, bounded, http};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Exports into memory the spans of every task on this thread (the test's runtime is
/// current-thread).
fn collect() -> (InMemorySpanExporter, tracing::subscriber::DefaultGuard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let traces = Traces::with_provider(provider);
    let subscriber = tracing_subscriber::registry().with(traces.layer());
    (exporter, tracing::subscriber::set_default(subscriber))
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::new(key.to_owned()))
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> String {
    attribute(span, key)
        .map(|v| v.as_str().into_owned())
        .unwrap_or_else(|| panic!("no {key} on {span:#?}"))
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span {name} in {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "current_thread")]
async fn a_traced_action_nests_request_action_and_commit_in_the_callers_trace() {
    let (exporter, _guard) = collect();
    let server = TestServer::start().await;
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let response = bounded(
        http()
            .post(server.url(&TestServer::query_path("/action/increment", "t1")))
            .header("x-rivet-encoding", "json")
            .header("traceparent", &traceparent)
            .header("tracestate", "vendor=abc")
            .body(r#"{"args":[2]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    // A failed action, in a trace of its own.
    let response = bounded(
        http()
            .post(server.url(&TestServer::query_path("/action/fail", "t1")))
            .header("x-rivet-encoding", "json")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .body(r#"{"args":[]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    // Once the server has stopped, every span has ended and been exported.
    server.shutdown().await;
    let spans = exporter.get_finished_spans().unwrap();
    let trace_id = TraceId::from_hex(TRACE_ID).unwrap();
    let ours: Vec<SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .cloned()
        .collect();
    assert_eq!(ours.len(), 3, "request, action and commit: {ours:#?}");

    let request = named(&ours, "POST");
    assert_eq!(
        request.parent_span_id,
        SpanId::from_hex(CALLER_SPAN).unwrap()
    );
    assert_eq!(request.span_kind, opentelemetry::trace::SpanKind::Server);
    assert_eq!(
        request.span_context.trace_state().header(),
        "vendor=abc",
        "tracestate is carried"
    );
    assert_eq!(
        attribute(request, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(text(request, "url.path"), "/gateway/room/action/increment");

    let action = named(&ours, "room increment");
    assert_eq!(action.parent_span_id, request.span_context.span_id());
    assert_eq!(text(action, "actor.name"), "room");
    assert_eq!(text(action, "actor.key"), "t1");
    assert_eq!(text(action, "actor.action"), "increment");
    assert!(attribute(action, "error.type").is_none());

    let commit = named(&ours, "commit");
    assert_eq!(commit.parent_span_id, action.span_context.span_id());
    assert!(commit.start_time >= action.start_time);
    assert!(commit.end_time <= request.end_time);

    // The failed action: its code on the action span and on the request span.
    let failed_trace = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
    let failed: Vec<SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == failed_trace)
        .cloned()
        .collect();
    let action = named(&failed, "room fail");
    assert_eq!(text(action, "error.type"), "user.boom");
    assert!(matches!(
        action.status,
        opentelemetry::trace::Status::Error { .. }
    ));
    let request = named(&failed, "POST");
    assert_eq!(text(request, "error.type"), "user.boom");
    assert_eq!(action.parent_span_id, request.span_context.span_id());
}

#[tokio::test(flavor = "current_thread")]
async fn a_websocket_connect_joins_the_callers_trace() {
    let (exporter, _guard) = collect();
    let server = TestServer::start().await;
    let url = format!(
        "ws://{}{}",
        server.addr,
        TestServer::query_path("/connect", "t2")
    );
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        "rivet, rivet_encoding.json".parse().unwrap(),
    );
    headers.insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    let (mut ws, _) = bounded(tokio_tungstenite::connect_async(request))
        .await
        .unwrap();
    // The connection is open once its first message (Init) arrives.
    let first = support::next_frame(&mut ws).await;
    assert!(matches!(first, support::Frame::Text(_)), "{first:?}");
    drop(ws);
    server.shutdown().await;
    let spans = exporter.get_finished_spans().unwrap();
    let trace_id = TraceId::from_hex(TRACE_ID).unwrap();
    let ours: Vec<SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .cloned()
        .collect();
    let request = named(&ours, "GET");
    assert_eq!(
        request.parent_span_id,
        SpanId::from_hex(CALLER_SPAN).unwrap()
    );
    let connect = named(&ours, "room connect");
    assert_eq!(connect.parent_span_id, request.span_context.span_id());
    assert_eq!(text(connect, "actor.key"), "t2");
}

#[tokio::test(flavor = "current_thread")]
async fn actions_on_an_open_websocket_are_children_of_its_request() {
    let (exporter, _guard) = collect();
    let server = TestServer::start().await;
    let url = format!(
        "ws://{}{}",
        server.addr,
        TestServer::query_path("/connect", "t3")
    );
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        "rivet, rivet_encoding.json".parse().unwrap(),
    );
    headers.insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    let (mut ws, _) = bounded(tokio_tungstenite::connect_async(request))
        .await
        .unwrap();
    support::until_tag(&mut ws, "Init").await;
    support::send_text(
        &mut ws,
        &support::action_json(1, "increment", serde_json::json!([3])),
    )
    .await;
    support::until_tag(&mut ws, "ActionResponse").await;
    support::send_text(
        &mut ws,
        &support::action_json(2, "fail", serde_json::json!([])),
    )
    .await;
    support::until_tag(&mut ws, "Error").await;
    support::close_ws(&mut ws).await;
    server.shutdown().await;
    let spans = exporter.get_finished_spans().unwrap();
    let trace_id = TraceId::from_hex(TRACE_ID).unwrap();
    let ours: Vec<SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .cloned()
        .collect();
    let request = named(&ours, "GET");
    let action = named(&ours, "room increment");
    assert_eq!(action.parent_span_id, request.span_context.span_id());
    assert_eq!(text(action, "actor.message"), "action");
    assert_eq!(text(action, "actor.key"), "t3");
    let commit = named(&ours, "commit");
    assert_eq!(commit.parent_span_id, action.span_context.span_id());
    let failed = named(&ours, "room fail");
    assert_eq!(failed.parent_span_id, request.span_context.span_id());
    assert_eq!(text(failed, "error.type"), "user.boom");
}

#[allow(unreachable_pub)]
mod ticker {
    use std::time::Duration;

    use footlights::prelude::*;

    /// Schedules `tick` at once when asked; `tick` counts.
    #[derive(Default, Serialize, Deserialize)]
    pub struct Ticker {
        pub ticks: i64,
    }

    #[footlights::actor]
    impl Ticker {
        #[action]
        fn start(&mut self, ctx: &Ctx<Self>) -> Result<(), ActionError> {
            ctx.schedule()
                .after(Duration::ZERO, ticker_actions::Tick { by: 1 })?;
            Ok(())
        }

        #[action]
        fn tick(&mut self, by: i64) -> i64 {
            self.ticks += by;
            self.ticks
        }

        #[action]
        fn ticks(&self) -> i64 {
            self.ticks
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_scheduled_call_has_a_trace_of_its_own() {
    let (exporter, _guard) = collect();
    let registry = footlights::Registry::builder()
        .actor::<support::Room>()
        .actor::<ticker::Ticker>()
        .start()
        .await
        .unwrap();
    let server = TestServer::with_registry(registry, |b| b).await;
    let ticker = server
        .registry
        .client()
        .get_or_create::<ticker::Ticker>(["s"]);
    ticker.action("start", vec![]).await.unwrap();
    bounded(async {
        while ticker.action("ticks", vec![]).await.unwrap() != footlights::Value::Int(1) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    server.shutdown().await;
    let spans = exporter.get_finished_spans().unwrap();
    let tick = named(&spans, "ticker tick");
    assert_eq!(text(tick, "actor.message"), "schedule");
    assert_eq!(text(tick, "actor.key"), "s");
    assert_eq!(tick.parent_span_id, SpanId::INVALID, "a root span");
    let commits: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "commit" && s.parent_span_id == tick.span_context.span_id())
        .collect();
    assert_eq!(commits.len(), 1, "the tick's commit: {spans:#?}");
    assert_eq!(
        commits[0].span_context.trace_id(),
        tick.span_context.trace_id()
    );
}
