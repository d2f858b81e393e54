//! The harness: a real server on 127.0.0.1:0 with a test actor, and small wire helpers.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use footlights::prelude::*;
use footlights::{ConnRequest, Value};
use footlights_server::{Server, ServerBuilder};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Every test step is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Runs `fut`, failing the test if it takes longer than [`LIMIT`].
pub async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut)
        .await
        .expect("test step timed out")
}

/// Named gates a connect hook can wait on (`{"gate": name}` params): tests release them.
static GATES: LazyLock<Mutex<HashMap<String, Arc<Semaphore>>>> = LazyLock::new(Default::default);

pub fn gate(name: &str) -> Arc<Semaphore> {
    GATES
        .lock()
        .unwrap()
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(Semaphore::new(0)))
        .clone()
}

#[derive(Clone, Serialize, Deserialize, Event)]
pub struct NewCount(pub i64);

#[derive(Clone, Serialize, Deserialize, Event)]
pub struct Shout(pub String);

#[derive(Clone, Serialize, Deserialize, Event)]
pub struct Tick(pub i64);

#[derive(Clone, Serialize, Deserialize, Event)]
pub struct Whisper(pub i64);

/// The test actor, `room`.
#[derive(Default, Serialize, Deserialize)]
pub struct Room {
    count: i64,
    input: Option<Value>,
    #[serde(skip)]
    waiters: Vec<oneshot::Sender<i64>>,
}

#[footlights::actor(input = Option<Value>, conn = Conns<Value, (), String>)]
impl Room {
    async fn create_state(_ctx: &Ctx<Self>, input: &Option<Value>) -> Result<Self, ActionError> {
        Ok(Room {
            input: input.clone(),
            ..Room::default()
        })
    }

    /// Rejects `{"reject": …}` params; waits on `{"gate": name}`; the auth data is the URI
    /// the actor saw.
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Value,
        request: &ConnRequest,
    ) -> Result<String, ActionError> {
        if params.get("reject").is_some() {
            return Err(ActionError::forbidden("rejected by the test"));
        }
        if let Some(name) = params.get("gate").and_then(Value::as_str) {
            let _ = gate(name).acquire().await.map(|p| p.forget());
        }
        Ok(request.uri().to_string())
    }

    /// Raw HTTP under `/echo…`: answers 202 with the method, URI, params and body it saw;
    /// `/nothing` makes no response; other paths are not served.
    async fn on_request(
        &mut self,
        ctx: &Ctx<Self>,
        request: footlights::RawRequest,
    ) -> Result<footlights::RawReply, ActionError> {
        if request.uri().path() == "/nothing" {
            return Ok(footlights::RawReply::NoResponse);
        }
        if !request.uri().path().starts_with("/echo") {
            return Ok(footlights::RawReply::NotDefined);
        }
        let params = ctx.conn().map(|c| c.params().clone()).unwrap_or_default();
        let body = format!(
            "{} {} {:?} {}",
            request.method(),
            request.uri(),
            params.get("who").and_then(Value::as_str),
            String::from_utf8_lossy(request.body())
        );
        let response = axum::http::Response::builder()
            .status(202)
            .header("x-raw", "yes")
            .body(body.into())
            .map_err(|e| ActionError::internal(e.to_string()))?;
        Ok(response.into())
    }

    /// Raw WebSockets on `/echo`: every message comes back; `close` closes with 4000.
    async fn on_websocket(
        &mut self,
        _ctx: &Ctx<Self>,
        _socket: &footlights::RawSocket,
        request: &ConnRequest,
    ) -> Result<bool, ActionError> {
        Ok(request.uri().path() == "/echo")
    }

    async fn on_websocket_message(
        &mut self,
        _ctx: &Ctx<Self>,
        socket: &footlights::RawSocket,
        msg: footlights::WsMessage,
    ) {
        if msg == footlights::WsMessage::Text("close".into()) {
            socket.close(4000, "asked to");
        } else {
            socket.send(msg);
        }
    }

    #[action]
    fn increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64 {
        self.count += amount;
        ctx.broadcast(NewCount(self.count));
        self.count
    }

    #[action]
    fn get_count(&self) -> i64 {
        self.count
    }

    /// For each of `rounds`: a `whisper` to the caller only, then a `tick` broadcast.
    #[action]
    fn interleave(&self, ctx: &Ctx<Self>, rounds: i64) -> i64 {
        for i in 0..rounds {
            if let Some(conn) = ctx.conn() {
                conn.send(Whisper(i));
            }
            ctx.broadcast(Tick(i));
        }
        rounds
    }

    /// Sleeps once this action ends; open connections hibernate.
    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }

    #[action]
    fn echo(&self, value: Value) -> Value {
        value
    }

    #[action]
    fn input(&self) -> Option<Value> {
        self.input.clone()
    }

    #[action]
    fn request_uri(&self, ctx: &Ctx<Self>) -> String {
        ctx.conn().map(|c| c.auth().clone()).unwrap_or_default()
    }

    #[action]
    fn params(&self, ctx: &Ctx<Self>) -> Value {
        ctx.conn().map(|c| c.params().clone()).unwrap_or_default()
    }

    #[action]
    fn conn_id(&self, ctx: &Ctx<Self>) -> String {
        ctx.conn().map(|c| c.id().to_string()).unwrap_or_default()
    }

    #[action]
    fn fail(&self) -> Result<(), ActionError> {
        Err(ActionError::user("boom", "it failed").with_metadata(&json!({"why": 1})))
    }

    #[action]
    fn internal(&self) -> Result<(), ActionError> {
        Err(ActionError::internal("the database password is hunter2"))
    }

    #[action]
    fn big(&self, size: usize) -> String {
        "x".repeat(size)
    }

    #[action]
    fn shout(&self, ctx: &Ctx<Self>, size: usize) {
        ctx.broadcast(Shout("x".repeat(size)));
    }

    /// Answers once `release` is called.
    #[action]
    fn hold(&mut self) -> Deferred<i64> {
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        Deferred::new(async move { rx.await.map_err(|_| ActionError::internal("dropped")) })
    }

    #[action]
    fn waiting(&self) -> usize {
        self.waiters.len()
    }

    #[action]
    fn release(&mut self) -> usize {
        let n = self.waiters.len();
        for w in self.waiters.drain(..) {
            let _ = w.send(self.count);
        }
        n
    }

    /// Disconnects the calling connection with `reason`. The disconnect runs in its own
    /// task: awaiting it inside the action would wait for this very message to end.
    #[action]
    fn kick(&self, ctx: &Ctx<Self>, reason: String) -> bool {
        match ctx.conn().cloned() {
            Some(conn) => {
                tokio::spawn(async move { conn.disconnect(reason).await });
                true
            }
            None => false,
        }
    }
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub registry: Registry,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<footlights_server::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with(|b| b).await
    }

    pub async fn with(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
        let registry = Registry::builder().actor::<Room>().start().await.unwrap();
        TestServer::with_registry(registry, configure).await
    }

    /// A server for `registry`, which must serve [`Room`].
    pub async fn with_registry(
        registry: Registry,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        TestServer::on_listener(listener, registry, configure)
    }

    /// A server for `registry` (which must serve [`Room`]) on `listener`.
    pub fn on_listener(
        listener: tokio::net::TcpListener,
        registry: Registry,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> TestServer {
        let server = configure(Server::builder().registry(registry.clone()))
            .build()
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            registry,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers graceful shutdown.
    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Triggers graceful shutdown and waits until `serve` returns.
    pub async fn shutdown(self) {
        self.shutdown_within(LIMIT).await;
    }

    /// Triggers graceful shutdown and waits until `serve` returns, failing the test if that
    /// takes longer than `limit`.
    pub async fn shutdown_within(mut self, limit: Duration) {
        self.trigger_shutdown();
        let task = self.task.take().unwrap();
        tokio::time::timeout(limit, task)
            .await
            .unwrap_or_else(|_| panic!("serve did not return within {limit:?} of the shutdown"))
            .unwrap()
            .unwrap();
    }

    /// Creates a `room` actor with this key through the in-process client; returns its id.
    pub async fn room(&self, key: &str) -> String {
        let target = footlights_client::Target::GetOrCreate {
            name: "room".into(),
            key: key.into(),
            input: None,
        };
        self.registry.resolve(&target).await.unwrap().to_string()
    }

    /// Calls an action on room `key` in-process (no network).
    pub async fn call(&self, key: &str, action: &str) -> Value {
        let target = footlights_client::Target::GetOrCreate {
            name: "room".into(),
            key: key.into(),
            input: None,
        };
        self.registry
            .call(&target, action, vec![], None, ConnRequest::local())
            .await
            .unwrap()
    }

    /// The query-gateway path of room `key` (getOrCreate) for `route`.
    pub fn query_path(route: &str, key: &str) -> String {
        format!(
            "/gateway/room{route}?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key={key}&rvt-crash-policy=sleep"
        )
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// The JSON body of a response.
pub async fn json_body(response: reqwest::Response) -> serde_json::Value {
    let bytes = bounded(response.bytes()).await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket offering `protocols`; returns the socket and the selected subprotocol.
pub async fn ws_connect(
    server: &TestServer,
    path: &str,
    protocols: &[&str],
) -> (Ws, Option<String>) {
    let url = format!("ws://{}{path}", server.addr);
    let mut request = url.into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocols.join(", ").parse().unwrap(),
        );
    }
    let (ws, response) = bounded(tokio_tungstenite::connect_async(request))
        .await
        .unwrap();
    let selected = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    (ws, selected)
}

/// What the next frame was.
#[derive(Debug)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
    Ended,
}

/// The next data or close frame (pings are answered by tungstenite and skipped).
pub async fn next_frame(ws: &mut Ws) -> Frame {
    loop {
        match bounded(ws.next()).await {
            Some(Ok(Message::Text(t))) => return Frame::Text(t.to_string()),
            Some(Ok(Message::Binary(b))) => return Frame::Binary(b.to_vec()),
            Some(Ok(Message::Close(frame))) => {
                return frame.map_or(Frame::Close(1005, String::new()), |f| {
                    Frame::Close(f.code.into(), f.reason.to_string())
                });
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Frame::Ended,
        }
    }
}

/// The next frame as JSON text.
pub async fn next_json(ws: &mut Ws) -> serde_json::Value {
    match next_frame(ws).await {
        Frame::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("expected a JSON text frame, got {other:?}"),
    }
}

/// The next frame as binary.
pub async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    match next_frame(ws).await {
        Frame::Binary(b) => b,
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

/// Expects a close frame; returns its code and reason. Reads on to the end of the stream, which
/// sends tungstenite's close reply and so completes the handshake.
pub async fn next_close(ws: &mut Ws) -> (u16, String) {
    loop {
        match next_frame(ws).await {
            Frame::Close(code, reason) => {
                while bounded(ws.next()).await.is_some() {}
                return (code, reason);
            }
            Frame::Ended => panic!("socket ended without a close frame"),
            // Messages may precede the close (an Error before a rejection close).
            _ => continue,
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    bounded(ws.send(Message::Text(text.into()))).await.unwrap();
}

pub async fn send_binary(ws: &mut Ws, bytes: Vec<u8>) {
    bounded(ws.send(Message::Binary(bytes.into())))
        .await
        .unwrap();
}

pub async fn close_ws(ws: &mut Ws) {
    let frame = CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "Disposed".into(),
    };
    let _ = bounded(ws.close(Some(frame))).await;
}

/// The value of the series `name` (with its labels) on `/metrics`.
pub async fn metric(server: &TestServer, name: &str) -> i64 {
    let text = bounded(http().get(server.url("/metrics")).send())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} is exported"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits (bounded) until series `name` reads `n`.
/// Each look is a `/metrics` request: the server's tasks run meanwhile.
pub async fn until_metric(server: &TestServer, name: &str, n: i64) {
    bounded(async {
        while metric(server, name).await != n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Waits (bounded) until every actor of `registry` sleeps.
pub async fn until_asleep(registry: &Registry) {
    bounded(async {
        while registry.awake_count() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// A JSON `ActionRequest` frame.
pub fn action_json(id: u64, name: &str, args: serde_json::Value) -> String {
    json!({"body": {"tag": "ActionRequest", "val": {"id": ["$BigInt", id.to_string()], "name": name, "args": args}}})
        .to_string()
}

/// A JSON `SubscriptionRequest` frame.
pub fn subscribe_json(event: &str, on: bool) -> String {
    json!({"body": {"tag": "SubscriptionRequest", "val": {"eventName": event, "subscribe": on}}})
        .to_string()
}

/// Reads JSON frames until one with `tag`; returns its `val`.
pub async fn until_tag(ws: &mut Ws, tag: &str) -> serde_json::Value {
    loop {
        let msg = next_json(ws).await;
        if msg["body"]["tag"] == tag {
            return msg["body"]["val"].clone();
        }
    }
}
