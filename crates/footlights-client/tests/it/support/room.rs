//! The test actor, `room`: a counter with events, per-connection state, a connect hook that
//! can refuse, and actions that fail with every kind of error.

use footlights::prelude::*;
use footlights::{ActorOptions, ConnRequest, Value};
use serde_json::json;
use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct NewCount(pub i64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct Note(pub String);

/// What the connect hook saw of the request.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub uri: String,
    pub headers: Vec<(String, String)>,
}

/// Per-connection state: survives a resume, not a new connection.
#[derive(Debug, Default)]
pub struct Seat {
    pub visits: u32,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Room {
    count: i64,
    input: Option<Value>,
    /// Refuse every new connection (`lock`).
    locked: bool,
    /// Disconnect hooks of real (not stateless) connections so far.
    disconnects: u32,
    /// The closes raw WebSockets reported: code and reason.
    ws_closes: Vec<(u16, String)>,
    #[serde(skip)]
    waiters: Vec<oneshot::Sender<i64>>,
}

/// The headers `headers()` reports.
const SHOWN: [&str; 4] = ["x-team", "x-rivet-token", "authorization", "user-agent"];

#[footlights::actor(input = Option<Value>, conn = Conns<Value, Seat, Seen>)]
impl Room {
    async fn create_state(_ctx: &Ctx<Self>, input: &Option<Value>) -> Result<Self, ActionError> {
        Ok(Room {
            input: input.clone(),
            ..Room::default()
        })
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.conn_grace = std::time::Duration::from_secs(30);
        o
    }

    /// Refuses `{"reject": …}` (forbidden), `{"unauthorized": …}`, `{"code": c}` (a user
    /// error with that code and metadata), and everyone but `{"admin": …}` once locked.
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Value,
        request: &ConnRequest,
    ) -> Result<Seen, ActionError> {
        let admin = params.get("admin").is_some();
        if (self.locked && !admin) || params.get("reject").is_some() {
            return Err(ActionError::forbidden("not in this room"));
        }
        if params.get("unauthorized").is_some() {
            return Err(ActionError::unauthorized("who are you?"));
        }
        if let Some(code) = params.get("code").and_then(Value::as_str) {
            return Err(ActionError::user(code.to_owned(), "refused by the room")
                .with_metadata(&json!({"retry": false})));
        }
        let headers = SHOWN
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), request.header(name)?.to_owned())))
            .collect();
        Ok(Seen {
            uri: request.uri().to_string(),
            headers,
        })
    }

    /// Raw HTTP: `/echo…` answers 200 with a JSON account of the request (method, path,
    /// query, params, body as text) and its `x-test` header back as `x-echo`; `/teapot`
    /// answers 418 with a plain body; anything else is not served (404).
    async fn on_request(
        &mut self,
        ctx: &Ctx<Self>,
        request: footlights::RawRequest,
    ) -> Result<footlights::RawReply, ActionError> {
        let path = request.uri().path().to_owned();
        if path == "/teapot" {
            let mut response = footlights::RawResponse::new("short and stout".into());
            *response.status_mut() = http::StatusCode::IM_A_TEAPOT;
            return Ok(response.into());
        }
        if !path.starts_with("/echo") {
            return Ok(footlights::RawReply::NotDefined);
        }
        let params = ctx.conn().map(|c| c.params().clone()).unwrap_or_default();
        let account = json!({
            "method": request.method().as_str(),
            "path": path,
            "query": request.uri().query(),
            "params": serde_json::from_str::<serde_json::Value>(&footlights_protocol::codec::value_to_json(&params)).unwrap_or_default(),
            "body": String::from_utf8_lossy(request.body()),
        });
        let mut response = footlights::RawResponse::new(account.to_string().into());
        let headers = response.headers_mut();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        if let Some(test) = request.headers().get("x-test") {
            headers.insert("x-echo", test.clone());
        }
        Ok(response.into())
    }

    /// Raw WebSockets on `/echo` only; the first message says the query it was opened with.
    async fn on_websocket(
        &mut self,
        _ctx: &Ctx<Self>,
        socket: &footlights::RawSocket,
        request: &ConnRequest,
    ) -> Result<bool, ActionError> {
        if request.uri().path() != "/echo" {
            return Ok(false);
        }
        socket.send_text(format!(
            "open {}",
            request.uri().query().unwrap_or_default()
        ));
        Ok(true)
    }

    /// Echoes every message; the text `close` makes the actor close with 4000.
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

    async fn on_websocket_close(
        &mut self,
        _ctx: &Ctx<Self>,
        _socket: &footlights::RawSocket,
        code: u16,
        reason: &str,
    ) {
        self.ws_closes.push((code, reason.to_owned()));
    }

    async fn on_disconnect(&mut self, _ctx: &Ctx<Self>, conn: &Conn<Self>) {
        if !conn.is_ephemeral() {
            self.disconnects += 1;
        }
    }

    #[action]
    fn increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64 {
        self.count += amount;
        ctx.broadcast(NewCount(self.count));
        self.count
    }

    /// The closes raw WebSockets reported so far.
    #[action]
    fn ws_closes(&self) -> Vec<(u16, String)> {
        self.ws_closes.clone()
    }

    #[action]
    fn get_count(&self) -> i64 {
        self.count
    }

    #[action]
    fn note(&self, ctx: &Ctx<Self>, text: String) {
        ctx.broadcast(Note(text));
    }

    #[action]
    fn echo(&self, value: Value) -> Value {
        value
    }

    #[action]
    fn input(&self) -> Option<Value> {
        self.input.clone()
    }

    /// Counts calls on this connection (its state).
    #[action]
    fn visit(&self, ctx: &Ctx<Self>) -> u32 {
        let conn = ctx.conn().expect("called over a connection");
        let mut seat = conn.state();
        seat.visits += 1;
        seat.visits
    }

    #[action]
    fn conn_id(&self, ctx: &Ctx<Self>) -> String {
        ctx.conn().map(|c| c.id().to_string()).unwrap_or_default()
    }

    #[action]
    fn params(&self, ctx: &Ctx<Self>) -> Value {
        ctx.conn().map(|c| c.params().clone()).unwrap_or_default()
    }

    #[action]
    fn request_uri(&self, ctx: &Ctx<Self>) -> String {
        ctx.conn().map(|c| c.auth().uri.clone()).unwrap_or_default()
    }

    #[action]
    fn headers(&self, ctx: &Ctx<Self>) -> Vec<(String, String)> {
        ctx.conn()
            .map(|c| c.auth().headers.clone())
            .unwrap_or_default()
    }

    #[action]
    fn is_subscribed(&self, ctx: &Ctx<Self>, event: String) -> bool {
        ctx.conn().is_some_and(|c| c.is_subscribed(&event))
    }

    #[action]
    fn fail(&self) -> Result<(), ActionError> {
        Err(ActionError::user("boom", "it failed").with_metadata(&json!({"why": 1})))
    }

    #[action]
    fn deny(&self) -> Result<(), ActionError> {
        Err(ActionError::forbidden("admins only"))
    }

    #[action]
    fn who(&self) -> Result<(), ActionError> {
        Err(ActionError::unauthorized("log in first"))
    }

    #[action]
    fn limited(&self) -> Result<(), ActionError> {
        Err(ActionError::rate_limited("slow down"))
    }

    #[action]
    fn internal(&self) -> Result<(), ActionError> {
        Err(ActionError::internal("the database password is hunter2"))
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

    #[action]
    fn disconnects(&self) -> u32 {
        self.disconnects
    }

    /// Refuses every new connection from now on.
    #[action]
    fn lock(&mut self) {
        self.locked = true;
    }

    /// Disconnects connection `id`. Called from another connection (or statelessly), so the
    /// caller's own answer never races the close. The disconnect runs in its own task:
    /// awaiting it inside the action would wait for this very message to end.
    #[action]
    fn kick(&self, ctx: &Ctx<Self>, id: String, reason: String) -> bool {
        match ctx.conn_by_id(&footlights_protocol::ConnId::new(id)) {
            Some(conn) => {
                tokio::spawn(async move { conn.disconnect(reason).await });
                true
            }
            None => false,
        }
    }
}
