//! Raw HTTP and raw WebSocket handlers, and per-action timeouts.

use std::time::Duration;

use footlights::prelude::*;
use std::sync::Arc;

use footlights::{ConnRequest, RawEvent, RawReply, RawRequest, RawResponse, RawSocket, WsMessage};
use footlights_client::Target;
use tokio::sync::Barrier;

/// How many `/together` requests meet before any of them answers.
const TOGETHER: usize = 3;

#[derive(Default, Serialize, Deserialize)]
pub struct Gadget {
    hits: u32,
    echoed: u32,
    closes: Vec<u16>,
    #[serde(skip)]
    sockets: Vec<RawSocket>,
    /// Where `/together` requests wait for each other; made on every start.
    #[serde(skip)]
    together: Option<Arc<Barrier>>,
}

fn response(status: u16, body: String) -> Result<RawResponse, ActionError> {
    http::Response::builder()
        .status(status)
        .header("x-gadget", "yes")
        .body(body.into())
        .map_err(|e| ActionError::internal(e.to_string()))
}

#[footlights::actor(conn = Conns<Option<String>>)]
impl Gadget {
    async fn create_vars(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.together = Some(Arc::new(Barrier::new(TOGETHER)));
        Ok(())
    }

    /// `/missing`: not served here (404); `/nothing`: no response (500); `/together`: answers
    /// once [`TOGETHER`] such requests have started, without holding the actor meanwhile;
    /// anything else: 201 with what the handler saw.
    async fn on_request(
        &mut self,
        ctx: &Ctx<Self>,
        request: RawRequest,
    ) -> Result<RawReply, ActionError> {
        match request.uri().path() {
            "/missing" => return Ok(RawReply::NotDefined),
            "/nothing" => return Ok(RawReply::NoResponse),
            "/together" => {
                self.hits += 1;
                let together = self.together.clone().expect("made by create_vars");
                return Ok(RawReply::later(async move {
                    let leader = together.wait().await.is_leader();
                    response(200, format!("met leader={leader}"))
                }));
            }
            _ => {}
        }
        self.hits += 1;
        let who = ctx
            .conn()
            .and_then(|c| c.params().clone())
            .unwrap_or_default();
        let body = format!(
            "{} {} {} hits={} body={}",
            request.method(),
            request.uri(),
            who,
            self.hits,
            String::from_utf8_lossy(request.body())
        );
        Ok(response(201, body)?.into())
    }

    async fn on_websocket(
        &mut self,
        _ctx: &Ctx<Self>,
        socket: &RawSocket,
        request: &ConnRequest,
    ) -> Result<bool, ActionError> {
        if request.uri().path() != "/echo" {
            return Ok(false);
        }
        socket.send_text("welcome");
        self.sockets.push(socket.clone());
        Ok(true)
    }

    async fn on_websocket_message(&mut self, _ctx: &Ctx<Self>, socket: &RawSocket, msg: WsMessage) {
        self.echoed += 1;
        socket.send(msg);
    }

    async fn on_websocket_close(
        &mut self,
        _ctx: &Ctx<Self>,
        socket: &RawSocket,
        code: u16,
        _reason: &str,
    ) {
        self.closes.push(code);
        self.sockets.retain(|s| s != socket);
    }

    #[action]
    fn stats(&self) -> (u32, u32, Vec<u16>) {
        (self.hits, self.echoed, self.closes.clone())
    }

    #[action]
    fn kick_sockets(&mut self) -> usize {
        for s in &self.sockets {
            s.close(4000, "bye");
        }
        self.sockets.len()
    }

    #[action(timeout_ms = 100)]
    async fn quick(&self) -> u32 {
        // Never finishes: only its own 100 ms timeout can answer.
        std::future::pending::<()>().await;
        1
    }

    #[action]
    async fn patient(&self) -> u32 {
        // Ten seconds of work on the test's paused clock: within the default 60 s timeout.
        tokio::time::sleep(Duration::from_secs(10)).await;
        2
    }
}

fn target() -> Target {
    Target::GetOrCreate {
        name: "gadget".into(),
        key: "g".into(),
        input: None,
    }
}

fn request(method: &str, uri: &str, body: &str) -> RawRequest {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(body.to_owned().into())
        .unwrap()
}

fn conn_request(uri: &str) -> ConnRequest {
    ConnRequest::new(
        http::Method::GET,
        uri.parse().unwrap(),
        http::HeaderMap::new(),
    )
}

#[tokio::test]
async fn raw_requests_reach_the_handler_and_the_response_comes_back_unchanged() {
    let registry = Registry::builder().actor::<Gadget>().start().await.unwrap();
    let params = Some(footlights::Value::from("ann"));
    let response = registry
        .request(&target(), params, request("POST", "/things?x=1", "payload"))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-gadget"], "yes");
    assert_eq!(
        response.body().as_ref(),
        b"POST /things?x=1 ann hits=1 body=payload"
    );
    let stats = registry
        .client()
        .get_or_create::<Gadget>("g")
        .stats()
        .await
        .unwrap();
    assert_eq!(stats.0, 1, "the handler's state change was kept");
}

/// An actor without a request handler.
#[derive(Default, Serialize, Deserialize)]
pub struct Plain;

#[footlights::actor]
impl Plain {
    #[action]
    fn ping(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn an_actor_without_a_request_handler_answers_request_not_defined() {
    let registry = Registry::builder().actor::<Plain>().start().await.unwrap();
    let plain = Target::GetOrCreate {
        name: "plain".into(),
        key: "p".into(),
        input: None,
    };
    let err = registry
        .request(&plain, None, request("GET", "/anything", ""))
        .await
        .unwrap_err();
    assert_eq!(
        (err.group(), err.code(), err.http_status()),
        ("handler", "request_not_defined", 404)
    );
}

#[tokio::test]
async fn a_handler_may_leave_a_path_undefined() {
    let registry = Registry::builder().actor::<Gadget>().start().await.unwrap();
    let err = registry
        .request(&target(), None, request("GET", "/missing", ""))
        .await
        .unwrap_err();
    assert_eq!(
        (err.group(), err.code(), err.http_status()),
        ("handler", "request_not_defined", 404)
    );
}

#[tokio::test]
async fn a_handler_that_makes_no_response_is_a_500_not_a_missing_handler() {
    let registry = Registry::builder().actor::<Gadget>().start().await.unwrap();
    let err = registry
        .request(&target(), None, request("GET", "/nothing", ""))
        .await
        .unwrap_err();
    assert_eq!(
        (err.group(), err.code(), err.http_status()),
        ("handler", "invalid_request_handler_response", 500)
    );
    assert!(err.is_public(), "the client sees why: {err}");
}

#[tokio::test]
async fn slow_requests_run_beside_the_mailbox() {
    let registry = Registry::builder().actor::<Gadget>().start().await.unwrap();
    let gadget = registry.client().get_or_create::<Gadget>("g");
    let together = target();
    let meet = || registry.request(&together, None, request("GET", "/together", ""));
    // Each `/together` answers only once all of them have started: run one at a time, the
    // first would wait for ever.
    let first = tokio::spawn({
        let registry = registry.clone();
        async move {
            registry
                .request(&target(), None, request("GET", "/together", ""))
                .await
        }
    });
    crate::support::settle("the first request reaching the actor", || async {
        gadget.stats().await.unwrap().0 == 1
    })
    .await;
    // The actor serves actions and other requests while it waits.
    let (second, third) = tokio::join!(meet(), meet());
    let mut leaders = 0;
    for answer in [first.await.unwrap(), second, third] {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 200);
        leaders += usize::from(answer.body().as_ref() == b"met leader=true");
    }
    assert_eq!(leaders, 1, "all three met at the barrier");
    assert_eq!(gadget.stats().await.unwrap().0, 3);
}

#[tokio::test]
async fn raw_websockets_carry_text_and_binary_both_ways_and_report_closes() {
    let registry = Registry::builder().actor::<Gadget>().start().await.unwrap();
    let mut link = registry
        .websocket(&target(), None, conn_request("/echo"))
        .await
        .unwrap();
    assert_eq!(link.events.recv().await, Some(RawEvent::Open));
    assert_eq!(
        link.events.recv().await,
        Some(RawEvent::Message(WsMessage::Text("welcome".into())))
    );
    link.sender.send(WsMessage::Text("hi".into())).unwrap();
    assert_eq!(
        link.events.recv().await,
        Some(RawEvent::Message(WsMessage::Text("hi".into())))
    );
    let bytes = bytes::Bytes::from_static(&[0, 1, 2, 255]);
    link.sender.send(WsMessage::Binary(bytes.clone())).unwrap();
    assert_eq!(
        link.events.recv().await,
        Some(RawEvent::Message(WsMessage::Binary(bytes)))
    );

    // The client closes: the close hook runs with its code.
    link.sender.close(1000, "done");
    let gadget = registry.client().get_or_create::<Gadget>("g");
    assert_eq!(gadget.stats().await.unwrap(), (0, 2, vec![1000]));

    // The actor closes another socket.
    let mut second = registry
        .websocket(&target(), None, conn_request("/echo"))
        .await
        .unwrap();
    assert_eq!(second.events.recv().await, Some(RawEvent::Open));
    assert_eq!(gadget.kick_sockets().await.unwrap(), 1);
    let mut last = None;
    while let Some(ev) = second.events.recv().await {
        last = Some(ev);
        if matches!(last, Some(RawEvent::Closed { .. })) {
            break;
        }
    }
    assert_eq!(
        last,
        Some(RawEvent::Closed {
            code: 4000,
            reason: "bye".into()
        })
    );
    assert_eq!(gadget.stats().await.unwrap().2, vec![1000, 4000]);
}

#[tokio::test]
async fn a_refused_websocket_is_closed_with_the_code() {
    let registry = Registry::builder().actor::<Gadget>().start().await.unwrap();
    let mut link = registry
        .websocket(&target(), None, conn_request("/elsewhere"))
        .await
        .unwrap();
    assert_eq!(link.events.recv().await, Some(RawEvent::Open));
    assert_eq!(
        link.events.recv().await,
        Some(RawEvent::Closed {
            code: 1011,
            reason: "handler.websocket_not_defined".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_raw_websocket_keeps_the_actor_awake() {
    let registry = Registry::builder().actor::<Gadget>().start().await.unwrap();
    let mut link = registry
        .websocket(&target(), None, conn_request("/echo"))
        .await
        .unwrap();
    assert_eq!(link.events.recv().await, Some(RawEvent::Open));
    tokio::time::advance(Duration::from_secs(120)).await;
    crate::support::let_run().await;
    assert_eq!(registry.awake_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_action_can_have_its_own_timeout() {
    let registry = Registry::builder().actor::<Gadget>().start().await.unwrap();
    let gadget = registry.client().get_or_create::<Gadget>("g");
    let err = gadget.quick().await.unwrap_err();
    assert_eq!(err.code(), "action_timed_out");
    // The default timeout (60 s) lets a 10 s action finish.
    assert_eq!(gadget.patient().await.unwrap(), 2);
}
