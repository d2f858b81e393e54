//! `testRaw`: raw HTTP requests (`handle.fetch(path)`) and raw WebSockets
//! (`handle.webSocket(path)`) for the JavaScript compatibility tests. Served only with
//! `--with-test-actors`.
//!
//! | Path | Answer |
//! |---|---|
//! | `/hello` | 200, body `hello` |
//! | `/nothing` | no response: 500 `handler.invalid_request_handler_response` |
//! | `/together` | 200, body `together`, once [`TOGETHER`] such requests have started: each waits beside the actor's mailbox, so the actor serves other calls meanwhile |
//! | anything else | not served: 404 `handler.request_not_defined` |
//!
//! Its raw WebSockets hibernate
//! ([`hibernate_raw_websockets`](footlights::ActorOptions::hibernate_raw_websockets)): the
//! `goToSleep` action puts the actor to sleep with the sockets left open. A socket is greeted
//! with `hello {id}`; each text message comes back as `{text} from {id} wakes={starts}` (the
//! socket's id, how many times the actor has started), and `bye` closes the socket with 4001
//! `asked to`.

use std::sync::Arc;

use footlights::prelude::*;
use footlights::{
    ActorOptions, ConnRequest, RawReply, RawRequest, RawResponse, RawSocket, WsMessage,
};
use tokio::sync::Barrier;

/// How many `/together` requests meet before any of them is answered.
pub const TOGETHER: usize = 3;

/// The state: how many requests the handler took.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TestRaw {
    requests: u64,
    /// How many times the actor has started.
    #[serde(default)]
    wakes: u64,
    /// Where `/together` requests wait for each other; made on every start.
    #[serde(skip)]
    together: Option<Arc<Barrier>>,
}

#[footlights::actor(name = "testRaw")]
impl TestRaw {
    fn options() -> ActorOptions {
        let mut options = ActorOptions::default();
        options.hibernate_raw_websockets = true;
        options
    }

    async fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.wakes += 1;
        Ok(())
    }

    async fn on_websocket(
        &mut self,
        _ctx: &Ctx<Self>,
        socket: &RawSocket,
        _request: &ConnRequest,
    ) -> Result<bool, ActionError> {
        socket.send_text(format!("hello {}", socket.id()));
        Ok(true)
    }

    async fn on_websocket_message(&mut self, _ctx: &Ctx<Self>, socket: &RawSocket, msg: WsMessage) {
        match msg {
            WsMessage::Text(text) if text == "bye" => socket.close(4001, "asked to"),
            WsMessage::Text(text) => {
                socket.send_text(format!("{text} from {} wakes={}", socket.id(), self.wakes));
            }
            WsMessage::Binary(bytes) => socket.send(WsMessage::Binary(bytes)),
        }
    }

    /// Puts the actor to sleep once this call returns; its raw WebSockets stay open.
    #[action]
    pub fn go_to_sleep(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }

    /// How many times the actor has started.
    #[action]
    pub fn wakes(&self) -> u64 {
        self.wakes
    }
    async fn create_vars(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.together = Some(Arc::new(Barrier::new(TOGETHER)));
        Ok(())
    }

    async fn on_request(
        &mut self,
        _ctx: &Ctx<Self>,
        request: RawRequest,
    ) -> Result<RawReply, ActionError> {
        let reply = match request.uri().path() {
            "/hello" => RawResponse::new("hello".into()).into(),
            "/nothing" => RawReply::NoResponse,
            "/together" => {
                let together = self.together.clone().unwrap_or_else(|| {
                    // `create_vars` runs before any request; this is only a fallback.
                    Arc::new(Barrier::new(TOGETHER))
                });
                RawReply::later(async move {
                    together.wait().await;
                    Ok(RawResponse::new("together".into()))
                })
            }
            _ => return Ok(RawReply::NotDefined),
        };
        self.requests += 1;
        Ok(reply)
    }

    /// How many requests the handler took (answered or not yet).
    #[action]
    pub fn requests(&self) -> u64 {
        self.requests
    }
}
