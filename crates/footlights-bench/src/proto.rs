//! The RivetKit client wire protocol, as far as the benchmarks need it: HTTP actions through
//! the gateway and the `/connect` WebSocket, in JSON or BARE.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use footlights_protocol::codec::{self, Dialect, Encoding, HttpActionRequest, HttpActionResponse};
use footlights_protocol::{ToClient, ToServer, Value};
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long one request, action or connect may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(20);

/// How a server wants actors addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// 2.3.19 and Footlights: `getOrCreate` folded into the URL query (§5.2).
    Query,
    /// 2.0.33: `PUT /actors` first, then `/gateway/{actorId}/...` (§5.1).
    Put,
}

/// Where and how to talk to one server.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `host:port`.
    pub addr: String,
    /// Addressing mode.
    pub mode: Mode,
    /// Encoding of bodies and frames.
    pub encoding: Encoding,
    /// Actor ids resolved with `PUT /actors` (put mode), by `name/key`.
    ids: Arc<Mutex<HashMap<String, String>>>,
}

impl Target {
    /// A target at `addr` (`host:port`).
    pub(crate) fn new(addr: &str, mode: Mode, encoding: Encoding) -> Target {
        Target {
            addr: addr.to_owned(),
            mode,
            encoding,
            ids: Arc::default(),
        }
    }

    /// The same server with another encoding (shares the id cache).
    pub(crate) fn with_encoding(&self, encoding: Encoding) -> Target {
        Target {
            encoding,
            ..self.clone()
        }
    }

    /// BARE version and dialect this client speaks (2.3.x: v4 compat, 2.0.x: v2 native).
    pub(crate) fn version_dialect(&self) -> (u16, Dialect) {
        match self.mode {
            Mode::Query => (4, Dialect::Compat),
            Mode::Put => (2, Dialect::Native),
        }
    }

    /// Path (with query) of `route` on actor `name`/`key` in query form.
    pub(crate) fn query_path(name: &str, key: &str, route: &str) -> String {
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        format!(
            "/gateway/{}{route}?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key={}&rvt-crash-policy=sleep",
            enc(name),
            enc(key)
        )
    }

    /// Path of `route` on the actor `name`/`key`, resolving it first in put mode.
    pub(crate) async fn path(
        &self,
        http: &mut HttpConn,
        name: &str,
        key: &str,
        route: &str,
    ) -> anyhow::Result<String> {
        match self.mode {
            Mode::Query => Ok(Target::query_path(name, key, route)),
            Mode::Put => {
                let id = self.resolve(http, name, key).await?;
                Ok(format!("/gateway/{id}{route}"))
            }
        }
    }

    /// `PUT /actors` (get or create), cached.
    pub(crate) async fn resolve(
        &self,
        http: &mut HttpConn,
        name: &str,
        key: &str,
    ) -> anyhow::Result<String> {
        let cache_key = format!("{name}/{key}");
        if let Some(id) = self.ids.lock().await.get(&cache_key) {
            return Ok(id.clone());
        }
        let body = serde_json::json!({
            "name": name, "key": serialize_key(key),
            "runner_name_selector": "default", "crash_policy": "sleep"
        });
        let (status, bytes) = http
            .request(
                "PUT",
                "/actors?namespace=default",
                &[("content-type", "application/json")],
                Bytes::from(body.to_string()),
            )
            .await?;
        if status != 200 {
            bail!("PUT /actors: {status} {}", String::from_utf8_lossy(&bytes));
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        let id = v["actor"]["actor_id"]
            .as_str()
            .ok_or_else(|| anyhow!("no actor_id in {v}"))?
            .to_owned();
        self.ids.lock().await.insert(cache_key, id.clone());
        Ok(id)
    }

    /// Calls action `action` on `name`/`key` over HTTP; returns the output.
    pub(crate) async fn http_action(
        &self,
        http: &mut HttpConn,
        name: &str,
        key: &str,
        action: &str,
        args: Vec<Value>,
    ) -> anyhow::Result<Value> {
        let path = self
            .path(http, name, key, &format!("/action/{action}"))
            .await?;
        let (version, dialect) = self.version_dialect();
        let body = HttpActionRequest { args }.encode(self.encoding, version, dialect);
        let ctype = match self.encoding {
            Encoding::Json => "application/json",
            _ => "application/octet-stream",
        };
        let (status, bytes) = http
            .request(
                "POST",
                &path,
                &[
                    ("content-type", ctype),
                    ("x-rivet-encoding", self.encoding.as_str()),
                ],
                Bytes::from(body),
            )
            .await?;
        if status != 200 {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let (resp, _) = HttpActionResponse::decode(&bytes, self.encoding, dialect)?;
        Ok(resp.output)
    }

    /// Opens `/connect` on `name`/`key` and waits for `Init`.
    pub(crate) async fn connect(
        &self,
        http: &mut HttpConn,
        name: &str,
        key: &str,
    ) -> anyhow::Result<WsConn> {
        tokio::time::timeout(TIMEOUT, self.connect_inner(http, name, key))
            .await
            .context("connect timeout")?
    }

    async fn connect_inner(
        &self,
        http: &mut HttpConn,
        name: &str,
        key: &str,
    ) -> anyhow::Result<WsConn> {
        let path = self.path(http, name, key, "/connect").await?;
        let mut req = format!("ws://{}{path}", self.addr).into_client_request()?;
        let proto = format!("rivet, rivet_encoding.{}", self.encoding.as_str());
        req.headers_mut()
            .insert("sec-websocket-protocol", proto.parse()?);
        // tungstenite's default read buffer (128 KiB) is zeroed on every read: with thousands
        // of sockets that memset, not the server, would bound the figures.
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
        let tcp = connect_tcp(&self.addr).await?;
        let (stream, _) =
            tokio_tungstenite::client_async_with_config(req, tcp, Some(config)).await?;
        let mut conn = WsConn {
            stream,
            target: self.clone(),
            next_id: 0,
        };
        match conn.recv().await? {
            ToClient::Init { .. } => Ok(conn),
            other => bail!("expected Init, got {other:?}"),
        }
    }
}

/// Source addresses the load generator's WebSockets rotate through when the server is on
/// 127.0.0.1 (the whole 127/8 is loopback).
static NEXT_SOURCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
const SOURCES: u32 = 8;

/// A TCP connection to `addr`. To a server on 127.0.0.1 each connection comes from one of
/// 127.0.0.2–9 in turn: with one source address, tens of thousands of sockets fill most of its
/// ~28,000 ephemeral ports, and past half of them the kernel's search for a free port, not the
/// server, sets the pace of opening more.
async fn connect_tcp(addr: &str) -> anyhow::Result<TcpStream> {
    let target: std::net::SocketAddr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .with_context(|| format!("resolve {addr}"))?;
    if target.ip() != std::net::IpAddr::from([127, 0, 0, 1]) {
        return Ok(TcpStream::connect(target).await?);
    }
    let n = NEXT_SOURCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SOURCES;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 2 + n as u8], 0)))?;
    Ok(socket.connect(target).await?)
}

/// Read buffer of the load generator's WebSockets, bytes (frames here are small).
const CLIENT_READ_BUFFER: usize = 4096;

/// The serialized form of a single-part key (§4.3).
fn serialize_key(key: &str) -> String {
    // Key parts are joined with '/'; our keys never contain '/' or '\'.
    key.to_owned()
}

/// One keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct HttpConn {
    host: String,
    /// `None` until the first request of a connection made with [`HttpConn::lazy`].
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConn {
    /// Connects to `addr` with `TCP_NODELAY`.
    pub(crate) async fn open(addr: &str) -> anyhow::Result<HttpConn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(HttpConn {
            host: addr.to_owned(),
            sender: Some(sender),
        })
    }

    /// A connection to `addr` opened by its first request. Opening `/connect` WebSockets in
    /// query mode needs no HTTP request: a connection opened and closed for each of thousands
    /// of sockets would leave as many client ports in TIME_WAIT, and past ~14,000 sockets the
    /// kernel's search for a free port, not the server, would set the pace.
    pub(crate) fn lazy(addr: &str) -> HttpConn {
        HttpConn {
            host: addr.to_owned(),
            sender: None,
        }
    }

    /// Sends one request; returns status and body. Reconnects once if the connection closed.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes)> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            *self = HttpConn::open(&self.host).await?;
        }
        let sender = self.sender.as_mut().context("HTTP connection")?;
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body))?;
        sender.ready().await?;
        let resp = tokio::time::timeout(TIMEOUT, sender.send_request(req))
            .await
            .context("HTTP timeout")??;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

/// One `/connect` WebSocket after `Init`.
#[derive(Debug)]
pub(crate) struct WsConn {
    stream: tokio_tungstenite::WebSocketStream<TcpStream>,
    target: Target,
    next_id: u64,
}

impl WsConn {
    /// Sends a message.
    pub(crate) async fn send(&mut self, msg: &ToServer) -> anyhow::Result<()> {
        let (version, dialect) = self.target.version_dialect();
        let bytes = codec::encode_to_server(msg, self.target.encoding, version, dialect);
        let frame = match self.target.encoding {
            Encoding::Json => Message::Text(String::from_utf8(bytes)?.into()),
            _ => Message::Binary(bytes.into()),
        };
        self.stream.send(frame).await?;
        Ok(())
    }

    /// Receives the next protocol message (skipping pings).
    pub(crate) async fn recv(&mut self) -> anyhow::Result<ToClient> {
        let (_, dialect) = self.target.version_dialect();
        loop {
            let msg = self
                .stream
                .next()
                .await
                .ok_or_else(|| anyhow!("socket closed"))??;
            let data: Bytes = match msg {
                Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
                Message::Binary(b) => b,
                Message::Close(c) => bail!("closed: {c:?}"),
                _ => continue,
            };
            let (m, _) = codec::decode_to_client(&data, self.target.encoding, dialect)?;
            return Ok(m);
        }
    }

    /// Calls an action and waits for its response (events arriving meanwhile are skipped).
    pub(crate) async fn action(&mut self, name: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ToServer::ActionRequest {
            id,
            name: name.to_owned(),
            args,
        })
        .await?;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.recv())
                .await
                .context("action timeout")??;
            match msg {
                ToClient::ActionResponse { id: rid, output } if rid == id => return Ok(output),
                ToClient::Error { error, .. } => bail!("action error: {error:?}"),
                _ => {}
            }
        }
    }

    /// Subscribes to `event`.
    pub(crate) async fn subscribe(&mut self, event: &str) -> anyhow::Result<()> {
        self.send(&ToServer::SubscriptionRequest {
            event_name: event.to_owned(),
            subscribe: true,
        })
        .await
    }

    /// Closes the socket.
    pub(crate) async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_url() {
        assert_eq!(
            Target::query_path("counter", "k 1", "/action/increment"),
            "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=k%201&rvt-crash-policy=sleep"
        );
        assert_eq!(
            Target::query_path("chatRoom", "a", "/connect"),
            "/gateway/chatRoom/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=a&rvt-crash-policy=sleep"
        );
    }

    #[test]
    fn dialects() {
        let t = Target::new("127.0.0.1:1", Mode::Put, Encoding::Bare);
        assert_eq!(t.version_dialect(), (2, Dialect::Native));
        assert_eq!(t.with_encoding(Encoding::Json).mode, Mode::Put);
    }
}
