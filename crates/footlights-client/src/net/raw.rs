//! Raw traffic over the network: `ANY {gateway}/request/{path}` (RivetKit notes §6.3) and a
//! WebSocket on `{gateway}/websocket/{path}` (§6.4).

use std::sync::Arc;

use footlights_protocol::{ActionError, Value};
use futures::{SinkExt, StreamExt};
use reqwest::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL, USER_AGENT};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::http::{CONN_PARAMS_HEADER, network_error, params_header};
use super::url::component;
use super::ws::CLOSE_TIMEOUT;
use super::{Net, USER_AGENT as AGENT};
use crate::error::{connection_closed, connection_open_failed, timed_out};
use crate::raw::{RawMessage, RawRequest, RawResponse, RawSocketEvent, RawSocketSender};
use crate::raw::{RawWebSocket, raw_path};
use crate::transport::{CloseReason, Target};

/// The gateway URL of raw route `prefix` (`/request` or `/websocket`) followed by `path` (path
/// and query). The query-gateway form already has a query, so the path's own query joins it.
async fn raw_url(
    net: &Net,
    base: &str,
    target: &Target,
    prefix: &str,
    path: &str,
) -> Result<String, ActionError> {
    let path = raw_path(path)?;
    let route = format!("{prefix}{}", path.path());
    let mut url = net.gateway_url(base, target, &route).await?;
    if let Some(query) = path.query().filter(|q| !q.is_empty()) {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(query);
    }
    Ok(url)
}

impl Net {
    /// `ANY {gateway}/request/{path}`: the request's method, headers and body, the handle's
    /// params as `x-rivet-conn-params` (when there are any), and the response as it came.
    pub(super) async fn fetch(
        &self,
        target: &Target,
        request: RawRequest,
        params: Option<&Value>,
    ) -> Result<RawResponse, ActionError> {
        let (parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let url = raw_url(self, &self.endpoint.base, target, "/request", &path).await?;
        let mut rb = self
            .gateway_request(parts.method, &url)
            .headers(parts.headers)
            .body(body);
        if let Some(params) = self.params(params).filter(|p| truthy(p)) {
            rb = rb.header(CONN_PARAMS_HEADER, params_header(params)?);
        }
        let response = rb.send().await.map_err(|e| network_error(&e))?;
        let mut answer = http::Response::builder().status(response.status());
        if let Some(headers) = answer.headers_mut() {
            *headers = response.headers().clone();
        }
        let body = response.bytes().await.map_err(|e| network_error(&e))?;
        answer
            .body(body)
            .map_err(|e| crate::error::invalid_response(format!("raw response: {e}")))
    }

    /// A WebSocket on `{gateway}/websocket/{path}`, offering `rivet`, `rivet_encoding.bare`
    /// and the params (RivetKit's own offer); frames pass through untouched.
    pub(super) async fn raw_websocket(
        self: &Arc<Self>,
        target: &Target,
        path: &str,
        params: Option<&Value>,
    ) -> Result<RawWebSocket, ActionError> {
        let url = raw_url(self, &self.endpoint.ws_base, target, "/websocket", path).await?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| connection_open_failed(format!("websocket request: {e}")))?;
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
        let mut offered = vec!["rivet".to_owned(), "rivet_encoding.bare".to_owned()];
        if let Some(params) = self.params(params).filter(|p| truthy(p)) {
            let json = footlights_protocol::codec::value_to_json(params);
            offered.push(format!("rivet_conn_params.{}", component(&json)));
        }
        let offered = HeaderValue::from_str(&offered.join(", "))
            .map_err(|_| connection_open_failed("the subprotocols do not fit in a header"))?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, offered);

        let connecting = tokio_tungstenite::connect_async(request);
        let (socket, _) = tokio::time::timeout(self.options.connect_timeout, connecting)
            .await
            .map_err(|_| timed_out("the websocket handshake timed out"))?
            .map_err(super::ws::open_error)?;
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(run(socket, out_rx, events_tx));
        Ok(RawWebSocket::new(
            Box::new(NetRawSender { out: out_tx }),
            events,
        ))
    }
}

/// Whether params count as set: RivetKit sends no params header or subprotocol for `null`,
/// `false`, `0` and `""`.
fn truthy(params: &Value) -> bool {
    !matches!(
        params,
        Value::Null | Value::Undefined | Value::Bool(false) | Value::Int(0) | Value::BigInt(0)
    ) && !matches!(params, Value::Float(f) if *f == 0.0)
        && !matches!(params, Value::String(s) if s.is_empty())
}

/// What a raw socket's owner asks of its task.
enum RawOut {
    Message(RawMessage),
    Close(u16, String),
}

/// Forwards a [`RawWebSocket`]'s sends and close to its task.
#[derive(Debug)]
struct NetRawSender {
    out: mpsc::UnboundedSender<RawOut>,
}

impl RawSocketSender for NetRawSender {
    fn send(&self, msg: RawMessage) -> Result<(), ActionError> {
        self.out
            .send(RawOut::Message(msg))
            .map_err(|_| connection_closed())
    }

    fn close(&self, code: u16, reason: &str) {
        let _ = self.out.send(RawOut::Close(code, reason.to_owned()));
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The close a close frame says; a close without a frame is a normal one.
fn close_reason(frame: Option<CloseFrame>) -> CloseReason {
    frame.map_or_else(
        || CloseReason::normal(""),
        |f| CloseReason {
            code: f.code.into(),
            reason: f.reason.to_string(),
        },
    )
}

/// One raw socket's task: moves frames both ways and reports the close last. Ends after the
/// close, or when the [`RawWebSocket`] is gone.
async fn run(
    mut socket: Socket,
    mut out: mpsc::UnboundedReceiver<RawOut>,
    events: mpsc::UnboundedSender<RawSocketEvent>,
) {
    let report = |event| {
        let _ = events.send(event);
    };
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    report(RawSocketEvent::Message(RawMessage::Text(text.as_str().to_owned())));
                }
                Some(Ok(Message::Binary(bytes))) => {
                    report(RawSocketEvent::Message(RawMessage::Binary(bytes)));
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite queues the close reply; flushing sends it.
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.flush()).await;
                    return report(RawSocketEvent::Closed(close_reason(frame)));
                }
                Some(Ok(_)) => {} // pings are answered by tungstenite
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "raw websocket read failed");
                    return report(RawSocketEvent::Closed(CloseReason::dropped()));
                }
                None => return report(RawSocketEvent::Closed(CloseReason::dropped())),
            },
            cmd = out.recv() => match cmd {
                Some(RawOut::Message(msg)) => {
                    let frame = match msg {
                        RawMessage::Text(text) => Message::Text(text.into()),
                        RawMessage::Binary(bytes) => Message::Binary(bytes),
                    };
                    if let Err(e) = socket.send(frame).await {
                        tracing::debug!(error = %e, "raw websocket write failed");
                        return report(RawSocketEvent::Closed(CloseReason::dropped()));
                    }
                }
                Some(RawOut::Close(code, reason)) => {
                    let ours = CloseReason { code, reason: reason.clone() };
                    let answer = close(&mut socket, code, reason).await;
                    return report(RawSocketEvent::Closed(answer.unwrap_or(ours)));
                }
                // The socket's owner let go of it.
                None => {
                    close(&mut socket, 1000, String::new()).await;
                    return;
                }
            },
        }
    }
}

/// Sends a close frame and waits (bounded) for the other side's; returns the close it sent
/// back, if one came.
async fn close(socket: &mut Socket, code: u16, reason: String) -> Option<CloseReason> {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    tokio::time::timeout(CLOSE_TIMEOUT, async {
        socket.close(Some(frame)).await.ok()?;
        while let Some(Ok(msg)) = socket.next().await {
            if let Message::Close(frame) = msg {
                return Some(close_reason(frame));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_truthy_params_are_sent() {
        for falsy in [
            Value::Null,
            Value::Bool(false),
            Value::Int(0),
            Value::Float(0.0),
            Value::from(""),
        ] {
            assert!(!truthy(&falsy), "{falsy:?}");
        }
        for set in [
            Value::Bool(true),
            Value::Int(2),
            Value::from("x"),
            Value::Array(vec![]),
        ] {
            assert!(truthy(&set), "{set:?}");
        }
    }
}
