//! Raw traffic to an actor's own handlers: HTTP requests ([`ActorHandle::fetch`]) and
//! WebSockets ([`ActorHandle::websocket`]), outside the action protocol.
//!
//! Over the network these are `ANY {gateway}/request/{path}` and a WebSocket on
//! `{gateway}/websocket/{path}` (RivetKit notes §6.3, §6.4); in the same process (the
//! registry's client, actor-to-actor calls) they go straight to the actor's mailbox. Both
//! reach the actor's `on_request` and `on_websocket` handlers with the handle's params.
//!
//! [`ActorHandle::fetch`]: crate::ActorHandle::fetch
//! [`ActorHandle::websocket`]: crate::ActorHandle::websocket

use std::fmt::Debug;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use footlights_protocol::ActionError;
use footlights_protocol::codec::{Dialect, Encoding, HttpResponseError};
use futures::Stream;
use tokio::sync::mpsc;

use crate::error::connection_closed;
use crate::transport::CloseReason;

/// A raw HTTP request for an actor: method, path and query (the scheme and authority, if any,
/// are ignored), headers and the whole body. Build one with [`http::Request::builder`].
///
/// ```
/// use footlights_client::RawRequest;
///
/// let request: RawRequest = http::Request::builder()
///     .method("POST")
///     .uri("/echo?x=1")
///     .header("content-type", "text/plain")
///     .body("hello".into())
///     .unwrap();
/// assert_eq!(request.uri().query(), Some("x=1"));
/// ```
pub type RawRequest = http::Request<Bytes>;

/// A raw HTTP response from an actor: status, headers and the whole body, as its handler made
/// them. Errors raised before the handler answered (no such actor, a refused connection, an
/// actor without a request handler) arrive as responses too, with the status and JSON error
/// body the server answers them with; [`response_error`] reads the coded error out of one.
pub type RawResponse = http::Response<Bytes>;

/// The coded error a failed [`RawResponse`] carries: for a non-2xx response with a JSON body
/// in the server's error format (`{"group", "code", "message", …}`), that error; `None`
/// otherwise (a success, or a response the actor's handler made with another body).
///
/// ```
/// use footlights_client::{RawResponse, response_error};
///
/// let body = r#"{"group":"handler","code":"request_not_defined","message":"no handler"}"#;
/// let response: RawResponse = http::Response::builder()
///     .status(404)
///     .header("content-type", "application/json")
///     .body(body.into())
///     .unwrap();
/// let e = response_error(&response).unwrap();
/// assert_eq!((e.group(), e.code()), ("handler", "request_not_defined"));
///
/// let plain: RawResponse = http::Response::builder().status(404).body("nope".into()).unwrap();
/// assert!(response_error(&plain).is_none());
/// ```
pub fn response_error(response: &RawResponse) -> Option<ActionError> {
    if response.status().is_success() {
        return None;
    }
    let json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("application/json"));
    if !json {
        return None;
    }
    HttpResponseError::decode(response.body(), Encoding::Json, Dialect::Compat)
        .ok()
        .map(|(e, _)| e.error)
}

/// One raw WebSocket message: text stays text, binary stays binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawMessage {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Bytes),
}

impl From<String> for RawMessage {
    fn from(text: String) -> Self {
        RawMessage::Text(text)
    }
}

impl From<&str> for RawMessage {
    fn from(text: &str) -> Self {
        RawMessage::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for RawMessage {
    fn from(bytes: Vec<u8>) -> Self {
        RawMessage::Binary(bytes.into())
    }
}

impl From<Bytes> for RawMessage {
    fn from(bytes: Bytes) -> Self {
        RawMessage::Binary(bytes)
    }
}

/// What arrives on a raw WebSocket, as a transport reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawSocketEvent {
    /// A message from the actor.
    Message(RawMessage),
    /// The socket closed; nothing follows. An actor that refused the socket (or has no
    /// WebSocket handler) closes it at once with code 1011 and a `group.code` reason.
    Closed(CloseReason),
}

/// The sending half of a raw WebSocket, as a transport implements it.
pub trait RawSocketSender: Send + Sync + Debug {
    /// Sends a message to the actor.
    ///
    /// # Errors
    /// `client.connection_closed` once the socket is closed.
    fn send(&self, msg: RawMessage) -> Result<(), ActionError>;

    /// Closes the socket with this code and reason. The transport then reports one
    /// [`RawSocketEvent::Closed`]: the other side's close, or this one.
    fn close(&self, code: u16, reason: &str);
}

/// A raw WebSocket to an actor ([`ActorHandle::websocket`](crate::ActorHandle::websocket)).
///
/// Send with [`send`](Self::send); read with [`recv`](Self::recv) or as a
/// [`Stream`] of [`RawMessage`]s, which ends when the socket closes
/// ([`close_reason`](Self::close_reason) says why). Dropping it closes the socket with 1000.
///
/// ```no_run
/// # async fn demo(handle: footlights_client::ActorHandle<footlights_client::Untyped>)
/// #     -> Result<(), footlights_protocol::ActionError> {
/// use footlights_client::RawMessage;
///
/// let mut socket = handle.websocket("/echo").await?;
/// socket.send("hello")?;
/// assert_eq!(socket.recv().await, Some(RawMessage::Text("hello".into())));
/// let close = socket.close(1000, "done").await?;
/// assert_eq!(close.code, 1000);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RawWebSocket {
    sender: Box<dyn RawSocketSender>,
    events: mpsc::UnboundedReceiver<RawSocketEvent>,
    closed: Option<CloseReason>,
}

impl RawWebSocket {
    /// A socket over a transport's sending half and the events it reports (messages, then
    /// one [`RawSocketEvent::Closed`]).
    pub fn new(
        sender: Box<dyn RawSocketSender>,
        events: mpsc::UnboundedReceiver<RawSocketEvent>,
    ) -> Self {
        RawWebSocket {
            sender,
            events,
            closed: None,
        }
    }

    /// Sends a text or binary message (anything that converts into a [`RawMessage`]:
    /// `&str`, `String`, `Vec<u8>`, `Bytes`).
    ///
    /// # Errors
    /// `client.connection_closed` once the socket is closed.
    pub fn send(&self, msg: impl Into<RawMessage>) -> Result<(), ActionError> {
        if self.closed.is_some() {
            return Err(connection_closed());
        }
        self.sender.send(msg.into())
    }

    /// The next message from the actor; `None` once the socket is closed (see
    /// [`close_reason`](Self::close_reason)).
    pub async fn recv(&mut self) -> Option<RawMessage> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    /// Why the socket closed, once it has: the close code and reason the actor (or the
    /// network) gave. [`CloseReason::to_error`] turns an error close into its coded error.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// Closes the socket with `code` (1000 normal, or 3000–4999 for an application's own
    /// codes) and `reason`, and waits until the close is done; messages still arriving are
    /// dropped. Returns the close the socket ended with: the actor's answer over the network,
    /// or an earlier close from the actor.
    ///
    /// # Errors
    /// `client.invalid_request` for a code a WebSocket may not send (such as 1005 or 1006);
    /// the socket stays open then.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<CloseReason, ActionError> {
        if let Some(closed) = &self.closed {
            return Ok(closed.clone());
        }
        if !sendable_close_code(code) {
            return Err(ActionError::new(
                "client",
                "invalid_request",
                format!("close code {code} cannot be sent on a WebSocket"),
            ));
        }
        self.sender.close(code, reason);
        while self.recv().await.is_some() {}
        Ok(self.closed.clone().unwrap_or_else(CloseReason::dropped))
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<RawMessage>> {
        if self.closed.is_some() {
            return Poll::Ready(None);
        }
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(RawSocketEvent::Message(msg))) => Poll::Ready(Some(msg)),
            Poll::Ready(Some(RawSocketEvent::Closed(reason))) => {
                self.closed = Some(reason);
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.closed = Some(CloseReason::dropped());
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Stream for RawWebSocket {
    type Item = RawMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RawMessage>> {
        self.get_mut().poll_message(cx)
    }
}

impl Drop for RawWebSocket {
    fn drop(&mut self) {
        if self.closed.is_none() {
            self.sender.close(1000, "");
        }
    }
}

/// Whether a WebSocket endpoint may send `code` in a close frame (RFC 6455 §7.4).
pub(crate) fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// The path and query of a raw route: what follows `/request` or `/websocket`, starting with
/// `/`.
///
/// # Errors
/// `client.invalid_request` for text that is not a URL path with an optional query.
pub(crate) fn raw_path(path: &str) -> Result<http::uri::PathAndQuery, ActionError> {
    let with_slash = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    with_slash.parse().map_err(|_| {
        ActionError::new(
            "client",
            "invalid_request",
            format!("`{path}` is not a URL path"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Recorder(std::sync::Mutex<Vec<String>>);

    impl RawSocketSender for std::sync::Arc<Recorder> {
        fn send(&self, msg: RawMessage) -> Result<(), ActionError> {
            self.0.lock().unwrap().push(format!("{msg:?}"));
            Ok(())
        }
        fn close(&self, code: u16, reason: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("close {code} {reason}"));
        }
    }

    #[tokio::test]
    async fn a_socket_reads_until_its_close_and_then_refuses_sends() {
        let rec = std::sync::Arc::new(Recorder(Default::default()));
        let (tx, rx) = mpsc::unbounded_channel();
        let mut socket = RawWebSocket::new(Box::new(rec.clone()), rx);
        socket.send("a").unwrap();
        tx.send(RawSocketEvent::Message("b".into())).unwrap();
        tx.send(RawSocketEvent::Closed(CloseReason::normal("bye")))
            .unwrap();
        assert_eq!(socket.recv().await, Some(RawMessage::Text("b".into())));
        assert_eq!(socket.recv().await, None);
        assert_eq!(socket.close_reason(), Some(&CloseReason::normal("bye")));
        let e = socket.send("c").unwrap_err();
        assert_eq!(e.code(), "connection_closed");
        // Already closed: no second close goes out, even on drop.
        assert_eq!(socket.close(1000, "").await.unwrap().reason, "bye");
        drop(socket);
        assert_eq!(*rec.0.lock().unwrap(), vec![r#"Text("a")"#.to_owned()]);
    }

    #[tokio::test]
    async fn invalid_close_codes_are_refused_and_dropping_closes() {
        let rec = std::sync::Arc::new(Recorder(Default::default()));
        let (_tx, rx) = mpsc::unbounded_channel();
        let mut socket = RawWebSocket::new(Box::new(rec.clone()), rx);
        for code in [0, 999, 1005, 1006, 1015, 2999, 5000] {
            assert_eq!(
                socket.close(code, "").await.unwrap_err().code(),
                "invalid_request"
            );
        }
        drop(socket);
        assert_eq!(*rec.0.lock().unwrap(), vec!["close 1000 ".to_owned()]);
    }

    #[test]
    fn raw_paths_get_a_leading_slash_and_keep_their_query() {
        assert_eq!(raw_path("echo?x=1").unwrap().as_str(), "/echo?x=1");
        assert_eq!(raw_path("/").unwrap().as_str(), "/");
        assert_eq!(raw_path("").unwrap().as_str(), "/");
        assert!(raw_path("/a b").is_err());
    }
}
