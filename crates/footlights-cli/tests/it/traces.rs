//! `footlights serve --otlp-endpoint`: after an action called with a known `traceparent`, a
//! small OTLP/HTTP receiver on 127.0.0.1 gets (at the latest when the server stops, which
//! flushes the exporter) the request, action and commit spans of that trace, decoded from
//! protobuf.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::serve::{LIMIT, serve_command, sigterm};

const TRACE_ID: &str = "5bf92f3577b34da6a3ce929d0e0e4737";
const CALLER_SPAN: &str = "10f067aa0ba902b7";

/// What the receiver got: the path and the decoded body of each request.
type Received = (String, ExportTraceServiceRequest);

/// Serves OTLP/HTTP on `listener`: every request is decoded and sent on `out`, and answered
/// 200 with an empty (valid) protobuf body.
async fn receive(listener: TcpListener, out: mpsc::UnboundedSender<Received>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let out = out.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            loop {
                let mut request_line = String::new();
                if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                    return;
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    read.read_line(&mut header).await.unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                read.read_exact(&mut body).await.unwrap();
                let decoded = ExportTraceServiceRequest::decode(body.as_slice())
                    .expect("an OTLP protobuf trace export");
                let _ = out.send((path, decoded));
                write
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    )
                    .await
                    .unwrap();
            }
        });
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn an_action_with_a_traceparent_reaches_the_collector_in_that_trace() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut received) = mpsc::unbounded_channel();
    let receiver = tokio::spawn(receive(listener, tx));

    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_command(
        &dir.path().join("data"),
        &[
            "--port",
            "0",
            "--otlp-endpoint",
            &collector,
            "--service-name",
            "traces-test",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .expect("spawn footlights");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(LIMIT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .expect("footlights exited before it was ready");
    let url = line.strip_prefix("listening on ").unwrap().to_owned();

    let request = reqwest::Client::new()
        .post(format!(
            "{url}/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=traced&rvt-crash-policy=sleep"
        ))
        .header("x-rivet-encoding", "json")
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({ "args": [3] }))
        .send();
    let response = tokio::time::timeout(LIMIT, request)
        .await
        .expect("answer in time")
        .unwrap();
    assert_eq!(response.status(), 200);

    // The stop flushes the exporter: every span has been received once the process is gone.
    let status = sigterm(&mut child).await;
    assert!(status.success(), "exit status {status:?}");
    let mut spans = Vec::new();
    while let Ok((path, export)) = received.try_recv() {
        assert_eq!(path, "/v1/traces");
        for resource in export.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.clone());
            assert!(
                format!("{service:?}").contains("traces-test"),
                "service name {service:?}"
            );
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    receiver.abort();
    let ours: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == TRACE_ID)
        .collect();
    let named = |name: &str| {
        ours.iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {ours:#?}"))
    };
    let request = named("POST");
    assert_eq!(hex(&request.parent_span_id), CALLER_SPAN);
    assert_eq!(
        attribute(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    let action = named("counter increment");
    assert_eq!(action.parent_span_id, request.span_id);
    assert_eq!(attribute(action, "actor.key").as_deref(), Some("traced"));
    let commit = named("commit");
    assert_eq!(commit.parent_span_id, action.span_id);
    assert_eq!(ours.len(), 3, "{ours:#?}");
}

#[tokio::test]
async fn an_endpoint_that_is_not_an_http_url_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        LIMIT,
        serve_command(
            &dir.path().join("data"),
            &["--port", "0", "--otlp-endpoint", "grpc://collector:4317"],
        )
        .output(),
    )
    .await
    .expect("exit in time")
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not an http:// URL"), "{stderr}");
}
