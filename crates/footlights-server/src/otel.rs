//! Trace export over OTLP/HTTP (feature `otel`): each HTTP request, the actor message it
//! carried (an action, or a connection's hooks) and the group commit that made its writes
//! durable, as nested spans sent to an OpenTelemetry collector.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! let traces = footlights_server::otel::Traces::otlp(
//!     "http://127.0.0.1:4318",
//!     "my-service",
//!     runtime.handle(),
//! )?;
//! footlights_server::logging::init_with_traces(
//!     footlights_server::logging::LogFormat::Text,
//!     &traces,
//! )?;
//! // ... serve on `runtime` ...
//! traces.shutdown()?; // sends what is still buffered
//! # Ok(())
//! # }
//! ```
//!
//! # The spans
//! - `request` (kind server): method, path (without a token), status, request id, and the
//!   error code of a failed request. Its parent is the caller's span when the request carries a
//!   W3C `traceparent` header (and `tracestate`), a WebSocket's opening request included; a
//!   WebSocket's request span lasts as long as the connection.
//! - `message`, its child, named `{actor} {action}` (or `{actor} connect`): the actor's name,
//!   key and id, the action, and the error code when it failed. It runs on the actor's task;
//!   the request's span travels to it with the message.
//! - `commit`, the group commit that made the message's writes durable: one commit serves
//!   many messages, so it is the child of the first traced message in its batch and links to
//!   the others. It has the number of requests it took, and an error status when it failed.
//!
//! - An action called on an open connection (WebSocket or SSE) has a `message` span too,
//!   a child of the request span that opened the connection.
//! - A scheduled call (or a repeating job's fire) has a `message` span of its own trace
//!   (`actor.message` = `schedule`), with the commit under it.
//!
//! A request forwarded to the node of a cluster that holds its actor carries a
//! `traceparent` naming the forwarding node's request span: the owner's spans continue the
//! same trace.
//!
//! These spans have the target [`footlights_core::trace::TARGET`] at level `TRACE`: while
//! nothing exports them they are not made, and a request costs what it did without the feature.

use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;

pub use opentelemetry_sdk::error::OTelSdkError;

/// How long one export may take, the answer's body included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The path OTLP/HTTP collectors take traces on, below the base endpoint.
const TRACES_PATH: &str = "/v1/traces";

/// Why trace export could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtelError {
    /// The endpoint is not an `http://` URL.
    #[error("the OTLP endpoint `{0}` is not an http:// URL (such as http://127.0.0.1:4318)")]
    Endpoint(String),
    /// The exporter refused its settings.
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Trace export: a tracer provider whose spans [`Traces::layer`] feeds from the server's
/// spans. Shut it down ([`Traces::shutdown`]) once the server has stopped, to send what is
/// still buffered.
#[derive(Debug, Clone)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports, in batches, to the OTLP/HTTP collector at `endpoint` (protobuf), the base URL
    /// as in `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://host:4318`): traces go to its
    /// `/v1/traces`. Spans carry `service.name` = `service_name`. The requests are sent by
    /// tasks on `runtime`, which must run until [`Traces::shutdown`] returns.
    ///
    /// # Errors
    /// When `endpoint` is not an `http://` URL (TLS is left to a collector nearby), or the
    /// exporter cannot be built.
    pub fn otlp(
        endpoint: &str,
        service_name: &str,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Traces, OtelError> {
        let base = endpoint.trim_end_matches('/');
        let valid = base
            .parse::<axum::http::Uri>()
            .is_ok_and(|uri| uri.scheme_str() == Some("http") && uri.host().is_some());
        if !valid {
            return Err(OtelError::Endpoint(endpoint.to_owned()));
        }
        let url = if base.ends_with(TRACES_PATH) {
            base.to_owned()
        } else {
            format!("{base}{TRACES_PATH}")
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .with_http_client(OnRuntime::new(runtime.clone()))
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        Ok(Traces { provider })
    }

    /// Export through a provider set up elsewhere: another exporter, another sampler, or the
    /// SDK's in-memory exporter in a test.
    pub fn with_provider(provider: SdkTracerProvider) -> Traces {
        Traces { provider }
    }

    /// The provider spans go to.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The layer that turns the server's trace spans (and only those: other spans and log
    /// lines are left to the rest of the subscriber) into OpenTelemetry spans. Add it to a
    /// subscriber built on `tracing_subscriber::registry()`; [`crate::logging::init_with_traces`]
    /// does.
    pub fn layer<S>(&self) -> impl Layer<S> + 'static
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let tracer = self.provider.tracer("footlights");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(
                Targets::new().with_target(footlights_core::trace::TARGET, tracing::Level::TRACE),
            )
    }

    /// Sends the spans still buffered and stops exporting. Call it once the server has stopped,
    /// while the runtime given to [`Traces::otlp`] still runs; not from inside that runtime's
    /// tasks (it blocks).
    ///
    /// # Errors
    /// When the last export failed or timed out, or export was already shut down.
    pub fn shutdown(&self) -> Result<(), OTelSdkError> {
        self.provider.shutdown()
    }
}

/// Makes `span`'s parent the caller's span named by the W3C `traceparent` (and `tracestate`)
/// headers, if there are any.
pub(crate) fn adopt_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    // Refused only for a span that is off or already closed: then there is nothing to parent.
    let _ = span.set_parent(parent);
}

/// Puts the W3C `traceparent` (and `tracestate`) of `span` in `headers`, replacing any, so
/// that the receiver continues the trace under it. Nothing when the span is off.
pub(crate) fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    TraceContextPropagator::new()
        .inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
}

/// The exporter's HTTP client: hyper's, its requests run as tasks on the server's runtime
/// (the batch exporter sends from a thread of its own, outside any runtime).
#[derive(Debug, Clone)]
struct OnRuntime {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

impl OnRuntime {
    fn new(runtime: tokio::runtime::Handle) -> Self {
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        OnRuntime { client, runtime }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: axum::http::Request<Bytes>,
    ) -> Result<axum::http::Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let send = async move {
            let (parts, body) = request.into_parts();
            let response = client
                .request(axum::http::Request::from_parts(parts, Full::new(body)))
                .await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, opentelemetry_http::HttpError>(axum::http::Response::from_parts(parts, body))
        };
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(EXPORT_TIMEOUT, send).await {
                Ok(answer) => answer,
                Err(_) => Err("the OTLP export timed out".into()),
            }
        });
        task.await?
    }
}
