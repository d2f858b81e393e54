//! The WebSocket transport: `GET {gateway}/connect` upgraded (RivetKit notes §7), plus the
//! Footlights subprotocols that ask for a connection token or resume a connection.
//!
//! One task per socket moves frames: messages from the driver are encoded and sent, frames
//! from the server decoded and handed to the driver, and the close (ours or the server's) is
//! reported as the link's last event.

use std::sync::Arc;
use std::time::Duration;

use footlights_protocol::codec::{
    Dialect, Encoding, LATEST_VERSION, decode_to_client, encode_to_server,
};
use footlights_protocol::{ActionError, Value};
use futures::{SinkExt, StreamExt};
use reqwest::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL, USER_AGENT};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::http::answer_error;
use super::link::{ChannelSender, Out};
use super::url::{component, resume_part};
use super::{Net, USER_AGENT as AGENT};
use crate::error::{connection_open_failed, invalid_response, timed_out};
use crate::transport::{CloseReason, Link, LinkEvent, ResumeToken, Target};

/// How long a closing socket waits for the server's close frame.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The subprotocols to offer: RivetKit's, then the Footlights ones (tokens always, resume when
/// asked).
pub(super) fn subprotocols(
    encoding: Encoding,
    params: Option<&Value>,
    resume: Option<&ResumeToken>,
) -> String {
    let mut offered = vec![
        "rivet".to_owned(),
        format!("rivet_encoding.{}", encoding.as_str()),
    ];
    if let Some(params) = params {
        let json = footlights_protocol::codec::value_to_json(params);
        offered.push(format!("rivet_conn_params.{}", component(&json)));
    }
    offered.push("footlights".to_owned());
    if let Some(r) = resume {
        offered.push(format!(
            "footlights_resume.{}.{}",
            resume_part(r.conn_id.as_str()),
            resume_part(&r.token)
        ));
    }
    offered.join(", ")
}

/// Opens a WebSocket link.
pub(super) async fn open(
    net: &Arc<Net>,
    target: &Target,
    params: Option<&Value>,
    resume: Option<&ResumeToken>,
) -> Result<Link, ActionError> {
    let encoding = net.options.encoding;
    let url = net
        .gateway_url(&net.endpoint.ws_base, target, "/connect")
        .await?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| connection_open_failed(format!("websocket request: {e}")))?;
    let headers = request.headers_mut();
    for (name, value) in &net.headers {
        headers.append(name, value.clone());
    }
    headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    let offered = HeaderValue::from_str(&subprotocols(encoding, params, resume))
        .map_err(|_| connection_open_failed("the subprotocols do not fit in a header"))?;
    headers.insert(SEC_WEBSOCKET_PROTOCOL, offered);

    let connecting = tokio_tungstenite::connect_async(request);
    let (socket, _) = tokio::time::timeout(net.options.connect_timeout, connecting)
        .await
        .map_err(|_| timed_out("the websocket handshake timed out"))?
        .map_err(open_error)?;

    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    tokio::spawn(run(socket, encoding, out_rx, events_tx));
    Ok(Link {
        sender: Box::new(ChannelSender { out: out_tx }),
        events,
        backlog: Default::default(),
    })
}

/// What a failed handshake means: a refusal with a coded body keeps its code; anything else
/// is `client.connection_open_failed` (the server may be down, or a proxy refuses upgrades).
pub(super) fn open_error(e: tungstenite::Error) -> ActionError {
    match e {
        tungstenite::Error::Http(response) => {
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let body = response.body().as_deref().unwrap_or_default();
            let error = answer_error(response.status(), content_type, body, Encoding::Json);
            if error.group() == "client" {
                connection_open_failed(format!(
                    "the websocket upgrade was refused: {}",
                    error.message()
                ))
                .with_metadata_value(error.metadata().cloned())
            } else {
                error
            }
        }
        other => connection_open_failed(format!("websocket: {other}")),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One socket's task. Ends after reporting `Closed`, or when the driver drops the link.
async fn run(
    mut socket: Socket,
    encoding: Encoding,
    mut out: mpsc::UnboundedReceiver<Out>,
    events: mpsc::UnboundedSender<LinkEvent>,
) {
    let closed = |reason| {
        let _ = events.send(LinkEvent::Closed(reason));
    };
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Err(reason) = deliver(text.as_bytes(), encoding, &events) {
                        close(&mut socket, 1002, "").await;
                        return closed(reason);
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    if let Err(reason) = deliver(&bytes, encoding, &events) {
                        close(&mut socket, 1002, "").await;
                        return closed(reason);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite queues the close reply; flushing sends it.
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.flush()).await;
                    let reason = frame.map_or_else(
                        || CloseReason::normal(""),
                        |f| CloseReason { code: f.code.into(), reason: f.reason.to_string() },
                    );
                    return closed(reason);
                }
                Some(Ok(_)) => {} // pings are answered by tungstenite
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "websocket read failed");
                    return closed(CloseReason::dropped());
                }
                None => return closed(CloseReason::dropped()),
            },
            cmd = out.recv() => match cmd {
                Some(Out::Message(msg)) => {
                    let bytes = encode_to_server(&msg, encoding, LATEST_VERSION, Dialect::Compat);
                    let frame = if encoding.is_binary() {
                        Message::Binary(bytes.into())
                    } else {
                        match String::from_utf8(bytes) {
                            Ok(text) => Message::Text(text.into()),
                            Err(e) => Message::Binary(e.into_bytes().into()),
                        }
                    };
                    if let Err(e) = socket.send(frame).await {
                        tracing::debug!(error = %e, "websocket write failed");
                        return closed(CloseReason::dropped());
                    }
                }
                Some(Out::Close(done)) => {
                    close(&mut socket, 1000, "Disposed").await;
                    closed(CloseReason::normal(""));
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
                // The driver let go of the link without closing it.
                None => return close(&mut socket, 1000, "").await,
            },
        }
    }
}

/// Decodes one frame and hands it to the driver; an undecodable frame ends the link.
fn deliver(
    bytes: &[u8],
    encoding: Encoding,
    events: &mpsc::UnboundedSender<LinkEvent>,
) -> Result<(), CloseReason> {
    match decode_to_client(bytes, encoding, Dialect::Compat) {
        Ok((msg, _)) => {
            let _ = events.send(LinkEvent::Message(msg));
            Ok(())
        }
        Err(e) => {
            let error = invalid_response(format!("undecodable frame: {e}"));
            tracing::warn!(%error, "closing the link");
            Err(CloseReason::error(&error))
        }
    }
}

/// Sends a close frame and waits (bounded) for the server's, so the close is complete.
async fn close(socket: &mut Socket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if socket.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(msg)) = socket.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use footlights_protocol::ConnId;

    #[test]
    fn subprotocols_offer_tokens_params_and_resume() {
        assert_eq!(
            subprotocols(Encoding::Bare, None, None),
            "rivet, rivet_encoding.bare, footlights"
        );
        let params = Value::Object(vec![("user".into(), Value::from("ada lovelace"))]);
        let resume = ResumeToken {
            conn_id: ConnId::new("c.1"),
            token: "t/k".into(),
        };
        assert_eq!(
            subprotocols(Encoding::Json, Some(&params), Some(&resume)),
            "rivet, rivet_encoding.json, rivet_conn_params.%7B%22user%22%3A%22ada%20lovelace%22%7D, footlights, footlights_resume.c%2E1.t%2Fk"
        );
    }
}
