//! The SSE transport (a Footlights extension, `docs/protocol-extensions.md` §3): the server's
//! messages arrive on `GET {gateway}/connect/sse`, ours go up as posts to
//! `{gateway}/connections/{connId}/message`.
//!
//! Two tasks per link. The *reader* parses the stream and hands messages to the driver; it
//! alone reports the link's `Closed`. The *writer* posts the driver's messages one at a time,
//! in order, once the stream has said which connection it carries. A post that shows the
//! link is broken (a network failure, `connection.not_found`) makes the writer stop the
//! reader, which reports the drop; a post refused for its content fails only its action.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use footlights_protocol::codec::{
    Dialect, Encoding, LATEST_VERSION, decode_to_client, encode_to_server,
};
use footlights_protocol::{ActionError, ActorId, ToClient, ToServer, Value};
use futures::{Stream, StreamExt};
use reqwest::Method;
use reqwest::header::{self, HeaderValue};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};

use super::Net;
use super::event_stream::{EventParser, SseEvent};
use super::http::{CONN_PARAMS_HEADER, ENCODING_HEADER, answer_error, params_header};
use super::link::{ChannelSender, Out};
use super::url::{Address, conn_route};
use crate::error::{connection_closed, connection_open_failed, invalid_response, timed_out};
use crate::transport::{CloseReason, Link, LinkEvent, ResumeToken, Target};

/// How long a closing link waits for the stream's last event after the close post.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the stream told us about the connection: enough to address posts.
#[derive(Debug, Clone, Default)]
struct Session {
    conn_id: Option<String>,
    secret: Option<String>,
    /// From `Init`; posts use the direct gateway with it.
    actor_id: Option<ActorId>,
}

impl Session {
    fn ready(&self) -> bool {
        self.conn_id.is_some() && self.secret.is_some() && self.actor_id.is_some()
    }
}

/// The `footlights-init` event's data.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitEvent {
    connection_id: String,
    secret: String,
}

/// The `footlights-close` event's data.
#[derive(Deserialize)]
struct CloseEvent {
    code: u16,
    #[serde(default)]
    reason: String,
}

/// Opens an SSE link.
pub(super) async fn open(
    net: &Arc<Net>,
    target: &Target,
    params: Option<&Value>,
    resume: Option<&ResumeToken>,
) -> Result<Link, ActionError> {
    let encoding = net.options.encoding;
    let url = net
        .gateway_url(&net.endpoint.base, target, "/connect/sse")
        .await?;
    // No request timeout: the body is the stream. Only the wait for its headers is bounded.
    let mut rb = net
        .http
        .request(Method::GET, &url)
        .headers(net.headers.clone())
        .header(header::ACCEPT, "text/event-stream")
        .header(ENCODING_HEADER, encoding.as_str());
    if let Some(token) = &net.token {
        rb = rb.header("x-rivet-token", token);
    }
    if let Some(params) = params {
        rb = rb.header(CONN_PARAMS_HEADER, params_header(params)?);
    }
    if let Some(r) = resume {
        let value = |s: &str| {
            HeaderValue::from_str(s)
                .map_err(|_| connection_open_failed("resume token is not a header value"))
        };
        rb = rb
            .header("x-footlights-conn-id", value(r.conn_id.as_str())?)
            .header("x-footlights-conn-token", value(&r.token)?);
    }
    let response = tokio::time::timeout(net.options.connect_timeout, rb.send())
        .await
        .map_err(|_| timed_out("the event stream did not start in time"))?
        .map_err(|e| connection_open_failed(format!("event stream: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = tokio::time::timeout(net.options.connect_timeout, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        return Err(answer_error(
            status,
            content_type.as_deref(),
            &body,
            Encoding::Json,
        ));
    }

    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (session_tx, session_rx) = watch::channel(Session::default());
    let (abort_tx, abort_rx) = oneshot::channel();
    let reader = Reader {
        encoding,
        events: events_tx.clone(),
        session: session_tx,
    };
    tokio::spawn(reader.run(response.bytes_stream(), abort_rx));
    let writer = Writer {
        net: net.clone(),
        encoding,
        events: events_tx,
        session: session_rx,
        abort: Some(abort_tx),
    };
    tokio::spawn(writer.run(out_rx));
    Ok(Link {
        sender: Box::new(ChannelSender { out: out_tx }),
        events,
        backlog: Default::default(),
    })
}

/// Parses the stream. Dropping it (on abort) drops the response, which the server sees as a
/// broken transport and keeps the connection for a resume.
struct Reader {
    encoding: Encoding,
    events: mpsc::UnboundedSender<LinkEvent>,
    /// Dropped when the reader ends, which tells the writer.
    session: watch::Sender<Session>,
}

impl Reader {
    async fn run<B: AsRef<[u8]>>(
        self,
        body: impl Stream<Item = reqwest::Result<B>> + Send,
        mut abort: oneshot::Receiver<()>,
    ) {
        let mut body = std::pin::pin!(body);
        let mut parser = EventParser::default();
        let reason = loop {
            tokio::select! {
                _ = &mut abort => break CloseReason::dropped(),
                chunk = body.next() => match chunk {
                    Some(Ok(bytes)) => {
                        let mut end = None;
                        for event in parser.push(bytes.as_ref()) {
                            if let Some(reason) = self.event(event) {
                                end = Some(reason);
                                break;
                            }
                        }
                        if let Some(reason) = end {
                            break reason;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "event stream failed");
                        break CloseReason::dropped();
                    }
                    None => break CloseReason::dropped(),
                },
            }
        };
        let _ = self.events.send(LinkEvent::Closed(reason));
    }

    /// Handles one event; returns the close it reports, if it ends the link.
    fn event(&self, event: SseEvent) -> Option<CloseReason> {
        match event.name.as_str() {
            "footlights-init" => match serde_json::from_str::<InitEvent>(&event.data) {
                Ok(init) => {
                    self.session.send_modify(|s| {
                        s.conn_id = Some(init.connection_id);
                        s.secret = Some(init.secret);
                    });
                    None
                }
                Err(e) => Some(undecodable(&format!("footlights-init: {e}"))),
            },
            "message" => {
                let bytes = match self.encoding {
                    Encoding::Json => Ok(event.data.into_bytes()),
                    _ => STANDARD.decode(event.data.trim()),
                };
                let decoded = bytes.map_err(|e| e.to_string()).and_then(|b| {
                    decode_to_client(&b, self.encoding, Dialect::Compat).map_err(|e| e.to_string())
                });
                match decoded {
                    Ok((msg, _)) => {
                        if let ToClient::Init { actor_id, .. } = &msg {
                            let actor_id = actor_id.clone();
                            self.session.send_modify(|s| s.actor_id = Some(actor_id));
                        }
                        let _ = self.events.send(LinkEvent::Message(msg));
                        None
                    }
                    Err(e) => Some(undecodable(&e)),
                }
            }
            "footlights-close" => Some(match serde_json::from_str::<CloseEvent>(&event.data) {
                Ok(close) => CloseReason {
                    code: close.code,
                    reason: close.reason,
                },
                Err(_) => CloseReason::dropped(),
            }),
            _ => None,
        }
    }
}

fn undecodable(what: &str) -> CloseReason {
    let error = invalid_response(format!("undecodable event: {what}"));
    tracing::warn!(%error, "closing the link");
    CloseReason::error(&error)
}

/// Posts the driver's messages in order.
struct Writer {
    net: Arc<Net>,
    encoding: Encoding,
    /// To report an action whose post was refused.
    events: mpsc::UnboundedSender<LinkEvent>,
    session: watch::Receiver<Session>,
    /// Stops the reader; dropping it does too.
    abort: Option<oneshot::Sender<()>>,
}

/// How a post went.
enum Posted {
    Accepted,
    /// Refused for its content; the link is fine.
    Refused(ActionError),
    /// The link is broken.
    Broken(ActionError),
}

impl Writer {
    async fn run(mut self, mut out: mpsc::UnboundedReceiver<Out>) {
        while let Some(cmd) = out.recv().await {
            let msg = match cmd {
                Out::Message(msg) => msg,
                Out::Close(done) => {
                    self.close().await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    break;
                }
            };
            let session = match self.session.wait_for(Session::ready).await {
                Ok(s) => s.clone(),
                // The reader ended before the connection was set up.
                Err(_) => break,
            };
            let body = encode_to_server(&msg, self.encoding, LATEST_VERSION, Dialect::Compat);
            match self.post(&session, "message", body).await {
                Posted::Accepted => {}
                Posted::Refused(error) => {
                    tracing::debug!(%error, "message refused");
                    if let ToServer::ActionRequest { id, .. } = msg {
                        let answer = ToClient::Error {
                            error,
                            action_id: Some(id),
                        };
                        let _ = self.events.send(LinkEvent::Message(answer));
                    }
                }
                Posted::Broken(error) => {
                    tracing::debug!(%error, "message post failed; the link is broken");
                    break;
                }
            }
        }
        if let Some(abort) = self.abort.take() {
            let _ = abort.send(());
        }
    }

    /// Posts the close and lets the reader see the stream's end (bounded). A link whose
    /// connection is not set up yet has nothing to post to: dropping the stream ends it.
    async fn close(&mut self) {
        let session = self.session.borrow().clone();
        if !session.ready() {
            return;
        }
        if let Posted::Accepted = self.post(&session, "close", Vec::new()).await {
            let mut session = self.session.clone();
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                while session.changed().await.is_ok() {}
            })
            .await;
        }
    }

    async fn post(&self, session: &Session, what: &str, body: Vec<u8>) -> Posted {
        let (Some(conn_id), Some(secret), Some(actor_id)) =
            (&session.conn_id, &session.secret, &session.actor_id)
        else {
            return Posted::Broken(connection_closed());
        };
        let url = self
            .net
            .gateway(&self.net.endpoint.base)
            .url(&Address::Id(actor_id), &conn_route(conn_id, what));
        let rb = self
            .net
            .gateway_request(Method::POST, &url)
            .header("x-footlights-conn-secret", secret)
            .header(ENCODING_HEADER, self.encoding.as_str())
            .header(header::CONTENT_TYPE, self.encoding.content_type())
            .body(body);
        let answer = match self.net.send(rb).await {
            Ok(answer) => answer,
            Err(e) => return Posted::Broken(e),
        };
        match answer.ok(Encoding::Json) {
            Ok(_) => Posted::Accepted,
            Err(e) if (e.group(), e.code()) == ("connection", "not_found") => Posted::Broken(e),
            Err(e) if e.group() == "client" => Posted::Broken(e),
            Err(e) => Posted::Refused(e),
        }
    }
}
