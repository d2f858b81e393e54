//! Serving actors that live on another node of a cluster.
//!
//! A clustered node answers every actor route for every actor: when the registry says the
//! actor is held by another node ([`Placement::Remote`]), the request goes there unchanged
//! over the peer's address, and the answer comes back unchanged. Plain HTTP requests
//! (actions, SSE streams and their posts, raw requests) are proxied as HTTP; WebSocket
//! connections (`/connect` and raw ones) are relayed message by message, so that when the
//! owner goes away this node can close the client's socket with 1012 ("service restart"),
//! which clients take as "reconnect": the next connection lands on whichever node holds the
//! actor then.
//!
//! A forwarded request carries [`FORWARDED_HEADER`]; a node never forwards such a request
//! again (if the actor moved in between, the client gets a retryable error instead of a
//! loop).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use footlights_core::Placement;
use footlights_protocol::ActionError;
use futures::{SinkExt, StreamExt};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_tungstenite::tungstenite::{
    self, protocol::CloseFrame, protocol::frame::coding::CloseCode,
};

use crate::cors::RayId;
use crate::error::HttpError;
use crate::gateway::{self, Addressed};
use crate::server::Shared;

pub use footlights_core::FORWARDED_HEADER;

/// How long a connection to a peer may take to open before the peer counts as unreachable
/// (a node cut off by the network drops packets rather than refusing).
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Close code for a relayed WebSocket whose owner went away: "service restart".
const SERVICE_RESTART: u16 = 1012;

/// Headers that belong to one hop and are not passed on.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

type Proxy = Client<HttpConnector, Body>;

/// Resolves when the node a request was forwarded to is no longer live.
type Gone = futures::future::BoxFuture<'static, ()>;

fn proxy_client() -> &'static Proxy {
    static CLIENT: OnceLock<Proxy> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(PEER_CONNECT_TIMEOUT));
        Client::builder(TokioExecutor::new()).build(connector)
    })
}

/// The error for a request whose actor's owner cannot be reached or has just changed.
fn owner_unreachable() -> ActionError {
    ActionError::new(
        "actor",
        "restarting",
        "the node serving this actor cannot be reached; try again",
    )
}

/// What one attempt to reach the owner came to.
enum Attempt {
    /// The owner (or this node, on its behalf) answered.
    Answered(Response),
    /// Nothing reached the owner (its address refused the connection): the request can go
    /// elsewhere unchanged.
    Unreachable(Request),
}

/// Sends `req` to the actor's owner when that is another node; gives `req` back when this
/// node serves the actor (or runs alone).
///
/// When the owner cannot be reached at all (it died: its address refuses connections), the
/// request waits for the owner's lease to end, then asks again where the actor lives, which is
/// normally here: this node claims it. So a node's death costs clients a delay of about one
/// lease, not an error. The wait is bounded (twice the lease and a second); past it the client
/// gets `actor.restarting` (503), which it retries.
pub(crate) async fn to_owner(
    shared: &Arc<Shared>,
    req: Request,
    addressed: &Addressed,
    ray: &RayId,
) -> Result<Request, Response> {
    let Some(lease) = shared.registry.cluster_lease() else {
        return Ok(req);
    };
    // Errors here (no such actor, say) are the actor route's to report, as usual.
    let Ok(resolved) =
        gateway::resolve_http(shared, &addressed.gateway.address, req.headers()).await
    else {
        return Ok(req);
    };
    let mut req = req;
    let give_up = tokio::time::Instant::now() + lease * 2 + Duration::from_secs(1);
    loop {
        let (node, peer_addr) = match shared.registry.placement(&resolved.id).await {
            Ok(Placement::Local) => return Ok(req),
            Ok(Placement::Remote { node, peer_addr }) => (node, peer_addr),
            Err(e) => return Err(gateway::reject(req, HttpError::json(e), ray).await),
        };
        if req.headers().contains_key(FORWARDED_HEADER) {
            // The sender thought this node owns the actor; it does not (any more).
            return Err(gateway::reject(req, HttpError::json(owner_unreachable()), ray).await);
        }
        tracing::debug!(actor = %resolved.name, id = %resolved.id, peer = %peer_addr, "forwarding to the actor's node");
        // A node that stops answering without closing its connections (paused, cut off) is
        // given up on once its lease has ended.
        let gone = shared.registry.node_gone(&node);
        let attempt = if gateway::is_websocket_upgrade(req.headers()) {
            relay_websocket(req, &peer_addr, ray, gone).await
        } else {
            proxy_http(req, &peer_addr, ray, gone, shared.config.max_incoming).await
        };
        match attempt {
            Attempt::Answered(response) => return Err(response),
            Attempt::Unreachable(back) => req = back,
        }
        shared.registry.forget_placement(&resolved.id);
        tracing::debug!(peer = %peer_addr, %ray, "the actor's node does not answer; waiting for its lease to end");
        tokio::select! {
            () = shared.registry.node_gone(&node) => {}
            () = tokio::time::sleep_until(give_up) => {
                return Err(gateway::reject(req, HttpError::json(owner_unreachable()), ray).await);
            }
        }
    }
}

fn upstream_uri(scheme: &str, peer_addr: &str, uri: &Uri) -> Option<Uri> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{peer_addr}{path}").parse().ok()
}

/// The headers a forwarded request carries: the client's, less the hop-by-hop ones, with the
/// forwarding mark; and, when the request is traced, a `traceparent` naming its span, so
/// the owner's spans join the trace.
fn forwarded_headers(from: &HeaderMap, keep_upgrade: bool, span: &tracing::Span) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(from.len() + 1);
    for (name, value) in from {
        let hop = HOP_BY_HOP.contains(&name.as_str());
        if !hop || (keep_upgrade && (name == header::CONNECTION || name == header::UPGRADE)) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(
        HeaderName::from_static(FORWARDED_HEADER),
        HeaderValue::from_static("1"),
    );
    #[cfg(feature = "otel")]
    crate::otel::inject(span, &mut headers);
    #[cfg(not(feature = "otel"))]
    let _ = span;
    headers
}

async fn proxy_http(
    req: Request,
    peer_addr: &str,
    ray: &RayId,
    gone: Gone,
    max_body: usize,
) -> Attempt {
    let (parts, body) = req.into_parts();
    // Kept whole so that the request can be sent again (or served here) if the owner turns
    // out to be unreachable.
    let body = match axum::body::to_bytes(body, max_body).await {
        Ok(body) => body,
        Err(e) => {
            let error = ActionError::invalid_request(format!("request body: {e}"));
            return Attempt::Answered(HttpError::json(error).into_response());
        }
    };
    let Some(uri) = upstream_uri("http", peer_addr, &parts.uri) else {
        return Attempt::Answered(HttpError::json(owner_unreachable()).into_response());
    };
    let mut upstream = Request::new(Body::from(body.clone()));
    *upstream.method_mut() = parts.method.clone();
    *upstream.uri_mut() = uri;
    let span = crate::trace::of(&parts.extensions);
    *upstream.headers_mut() = forwarded_headers(&parts.headers, false, &span);
    let mut gone = gone;
    let answer = tokio::select! {
        answer = proxy_client().request(upstream) => answer,
        () = &mut gone => {
            tracing::warn!(peer = %peer_addr, %ray, "the actor's node stopped answering and its lease ended");
            return Attempt::Answered(HttpError::json(owner_unreachable()).into_response());
        }
    };
    match answer {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            // A streamed answer (SSE) ends when the owner's lease does, as a relayed
            // WebSocket does: the client then reconnects.
            let body = UntilGone {
                inner: body,
                gone: Some(gone),
            };
            Attempt::Answered(Response::from_parts(parts, Body::new(body)))
        }
        // Never sent: the request can go elsewhere.
        Err(e) if e.is_connect() => {
            tracing::debug!(peer = %peer_addr, error = %e, %ray, "the actor's node refused the connection");
            Attempt::Unreachable(Request::from_parts(parts, Body::from(body)))
        }
        // Sent, perhaps acted on: only the client may decide to try again.
        Err(e) => {
            tracing::debug!(peer = %peer_addr, error = %e, %ray, "forwarding to the actor's node failed");
            Attempt::Answered(HttpError::json(owner_unreachable()).into_response())
        }
    }
}

async fn relay_websocket(req: Request, peer_addr: &str, ray: &RayId, gone: Gone) -> Attempt {
    let (mut parts, body) = req.into_parts();
    let Some(uri) = upstream_uri("ws", peer_addr, &parts.uri) else {
        return Attempt::Answered(HttpError::json(owner_unreachable()).into_response());
    };
    let mut request = tungstenite::handshake::client::Request::new(());
    *request.uri_mut() = uri;
    let span = crate::trace::of(&parts.extensions);
    *request.headers_mut() = forwarded_headers(&parts.headers, true, &span);
    if let Ok(host) = HeaderValue::from_str(peer_addr) {
        request.headers_mut().insert(header::HOST, host);
    }
    // The client's handshake is answered only once the owner has answered its own, so that
    // a client never sees a socket open and close while the actor moves.
    let connecting = tokio::time::timeout(
        PEER_CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async(request),
    );
    let (stream, response) = match connecting.await {
        Ok(Ok(connected)) => connected,
        Err(_) => {
            tracing::debug!(peer = %peer_addr, %ray, "opening a WebSocket to the actor's node timed out");
            return Attempt::Unreachable(Request::from_parts(parts, body));
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer_addr, error = %e, %ray, "opening a WebSocket to the actor's node failed");
            return Attempt::Unreachable(Request::from_parts(parts, body));
        }
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Attempt::Answered(rejection.into_response()),
    };
    let protocol = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let upgrade = match protocol {
        Some(p) => upgrade.protocols([p]),
        None => upgrade,
    };
    Attempt::Answered(upgrade.on_upgrade(move |socket| relay(socket, stream, gone)))
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Copies messages both ways until either side closes. When the owner's side ends without a
/// close frame (it died, or its node was cut off), the client's socket is closed with 1012.
async fn relay(client: WebSocket, upstream: Upstream, gone: Gone) {
    let (to_client, mut from_client) = client.split();
    let to_client = tokio::sync::Mutex::new(to_client);
    let (mut to_owner, mut from_owner) = upstream.split();
    let client_to_owner = async {
        while let Some(Ok(msg)) = from_client.next().await {
            let closing = matches!(msg, ws::Message::Close(_));
            if to_owner.send(to_tungstenite(msg)).await.is_err() || closing {
                break;
            }
        }
        let _ = to_owner.close().await;
    };
    let owner_to_client = async {
        loop {
            match from_owner.next().await {
                Some(Ok(msg)) => {
                    let closing = matches!(msg, tungstenite::Message::Close(_));
                    if let Some(msg) = to_axum(msg)
                        && (to_client.lock().await.send(msg).await.is_err() || closing)
                    {
                        return;
                    }
                }
                _ => return,
            }
        }
    };
    let restart = async {
        let frame = ws::CloseFrame {
            code: SERVICE_RESTART,
            reason: "ws.going_away".into(),
        };
        let _ = to_client
            .lock()
            .await
            .send(ws::Message::Close(Some(frame)))
            .await;
    };
    tokio::select! {
        () = client_to_owner => {}
        () = owner_to_client => restart.await,
        () = gone => {
            tracing::warn!("the node of a relayed WebSocket's actor stopped answering and its lease ended");
            restart.await;
        }
    }
}

fn to_tungstenite(msg: ws::Message) -> tungstenite::Message {
    match msg {
        ws::Message::Text(t) => tungstenite::Message::text(t.as_str()),
        ws::Message::Binary(b) => tungstenite::Message::Binary(b),
        ws::Message::Ping(b) => tungstenite::Message::Ping(b),
        ws::Message::Pong(b) => tungstenite::Message::Pong(b),
        ws::Message::Close(frame) => tungstenite::Message::Close(frame.map(|f| CloseFrame {
            code: CloseCode::from(f.code),
            reason: f.reason.as_str().into(),
        })),
    }
}

fn to_axum(msg: tungstenite::Message) -> Option<ws::Message> {
    Some(match msg {
        tungstenite::Message::Text(t) => ws::Message::Text(t.as_str().into()),
        tungstenite::Message::Binary(b) => ws::Message::Binary(b),
        tungstenite::Message::Ping(b) => ws::Message::Ping(b),
        tungstenite::Message::Pong(b) => ws::Message::Pong(b),
        tungstenite::Message::Close(frame) => ws::Message::Close(frame.map(|f| ws::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        tungstenite::Message::Frame(_) => return None,
    })
}

/// A response body from the owner that ends (with an error, so the client sees the stream
/// break rather than finish) once the owner is no longer live.
struct UntilGone<B> {
    inner: B,
    /// `None` once it resolved.
    gone: Option<Gone>,
}

/// Why a forwarded answer was cut short.
#[derive(Debug, thiserror::Error)]
#[error("the node serving this actor stopped answering and its lease ended")]
struct OwnerGone;

impl<B> http_body::Body for UntilGone<B>
where
    B: http_body::Body<Data = axum::body::Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if let Some(gone) = self.gone.as_mut()
            && gone.as_mut().poll(cx).is_ready()
        {
            self.gone = None;
            return Poll::Ready(Some(Err(Box::new(OwnerGone))));
        }
        std::pin::Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(all(test, feature = "otel"))]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn a_forwarded_request_names_its_span_as_the_parent() {
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(InMemorySpanExporter::default())
            .build();
        let traces = crate::otel::Traces::with_provider(provider);
        let subscriber = tracing_subscriber::registry().with(traces.layer());
        tracing::subscriber::with_default(subscriber, || {
            let mut from = HeaderMap::new();
            // The client's own trace: the forwarded request names the span under it instead.
            from.insert(
                "traceparent",
                HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            );
            from.insert("x-rivet-encoding", HeaderValue::from_static("json"));
            let span = tracing::trace_span!(target: footlights_core::trace::TARGET, "request");
            crate::otel::adopt_parent(&span, &from);
            let headers = forwarded_headers(&from, false, &span);
            let context = span.context();
            let ours = context.span().span_context().clone();
            assert_eq!(
                headers["traceparent"],
                format!("00-{}-{}-01", ours.trace_id(), ours.span_id()).as_str()
            );
            assert_eq!(
                ours.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "the same trace"
            );
            assert_eq!(headers["x-rivet-encoding"], "json");
            assert_eq!(headers[FORWARDED_HEADER], "1");

            // Untraced: the client's header goes through as it was.
            let off = forwarded_headers(&from, false, &tracing::Span::none());
            assert_eq!(off["traceparent"], from["traceparent"]);
        });
    }
}
