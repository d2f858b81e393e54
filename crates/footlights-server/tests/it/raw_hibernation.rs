//! Raw WebSockets that hibernate, through the server: the actor sleeps while the client's
//! socket stays open; a message on it wakes the actor and is answered on the same socket; a
//! call wakes it and reaches the socket by the id kept in the state; a close while it sleeps
//! wakes it to run the close hook.

use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorOptions, ConnRequest, RawSocket, Value, WsMessage, to_value};
use footlights_client::Target;

use crate::support::*;

/// A raw-socket actor that sleeps after 200 ms idle, its sockets hibernating.
#[derive(Default, Serialize, Deserialize)]
pub struct Den {
    sockets: Vec<u64>,
    wakes: u32,
    /// `(socket id, close code)` of each close hook run.
    closes: Vec<(u64, u16)>,
}

#[footlights::actor]
impl Den {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_millis(200);
        o.hibernate_raw_websockets = true;
        o
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
        self.sockets.push(socket.id());
        socket.send_text(format!("hello {}", socket.id()));
        Ok(true)
    }

    async fn on_websocket_message(&mut self, _ctx: &Ctx<Self>, socket: &RawSocket, msg: WsMessage) {
        let WsMessage::Text(text) = msg else { return };
        if text == "bye" {
            socket.close(4001, "asked to");
        } else {
            socket.send_text(format!("{text} from {} wakes={}", socket.id(), self.wakes));
        }
    }

    async fn on_websocket_close(
        &mut self,
        _ctx: &Ctx<Self>,
        socket: &RawSocket,
        code: u16,
        _reason: &str,
    ) {
        self.closes.push((socket.id(), code));
        self.sockets.retain(|id| *id != socket.id());
    }

    /// Sends `text` on every socket whose id the state keeps; returns how many it reached.
    #[action]
    fn announce(&self, ctx: &Ctx<Self>, text: String) -> usize {
        let sockets: Vec<RawSocket> = self
            .sockets
            .iter()
            .filter_map(|id| ctx.raw_socket(*id))
            .collect();
        for socket in &sockets {
            socket.send_text(text.clone());
        }
        sockets.len()
    }

    #[action]
    fn closes(&self) -> Vec<(u64, u16)> {
        self.closes.clone()
    }
}

async fn server() -> TestServer {
    let registry = Registry::builder()
        .actor::<Room>()
        .actor::<Den>()
        .start()
        .await
        .unwrap();
    TestServer::with_registry(registry, |b| b).await
}

fn den_path(key: &str) -> String {
    format!(
        "/gateway/den/websocket/talk?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key={key}&rvt-crash-policy=sleep"
    )
}

/// Calls an action on den `key` in-process.
async fn call(server: &TestServer, key: &str, action: &str, args: Vec<Value>) -> Value {
    let target = Target::GetOrCreate {
        name: "den".into(),
        key: key.into(),
        input: None,
    };
    server
        .registry
        .call(&target, action, args, None, ConnRequest::local())
        .await
        .unwrap()
}

/// Waits (bounded) until no actor is awake.
async fn until_asleep(server: &TestServer) {
    crate::support::until_asleep(&server.registry).await;
}

async fn next_text(ws: &mut Ws) -> String {
    match next_frame(ws).await {
        Frame::Text(text) => text,
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_raw_websocket_stays_open_while_its_actor_sleeps_and_wakes_it() {
    let server = server().await;
    let (mut ws, _) = ws_connect(&server, &den_path("a"), &["rivet"]).await;
    let hello = next_text(&mut ws).await;
    let id: u64 = hello.strip_prefix("hello ").unwrap().parse().unwrap();

    // Only the open socket is left: the actor sleeps, the socket stays open.
    until_asleep(&server).await;
    send_text(&mut ws, "one").await;
    assert_eq!(next_text(&mut ws).await, format!("one from {id} wakes=2"));
    assert_eq!(server.registry.awake_count(), 1);

    // A call wakes it too, and reaches the socket by the id in the state.
    until_asleep(&server).await;
    let reached = call(&server, "a", "announce", vec![Value::from("news")]).await;
    assert_eq!(reached, Value::from(1));
    assert_eq!(next_text(&mut ws).await, "news");

    // The woken actor closes the socket.
    until_asleep(&server).await;
    send_text(&mut ws, "bye").await;
    assert_eq!(next_close(&mut ws).await, (4001, "asked to".to_owned()));
    let closes = call(&server, "a", "closes", vec![]).await;
    assert_eq!(closes, to_value(&vec![(id, 4001_u16)]).unwrap());
}

#[tokio::test]
async fn a_raw_websocket_closed_while_its_actor_sleeps_wakes_it_for_the_close_hook() {
    let server = server().await;
    let (mut ws, _) = ws_connect(&server, &den_path("b"), &["rivet"]).await;
    let hello = next_text(&mut ws).await;
    let id: u64 = hello.strip_prefix("hello ").unwrap().parse().unwrap();
    until_asleep(&server).await;

    close_ws(&mut ws).await;
    let expected = to_value(&vec![(id, 1000_u16)]).unwrap();
    // Each look is a call; the close hook runs once the close has woken the actor.
    crate::support::bounded(async {
        while call(&server, "b", "closes", vec![]).await != expected {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_shutdown_closes_a_hibernated_raw_websocket_going_away() {
    let server = server().await;
    let (mut ws, _) = ws_connect(&server, &den_path("c"), &["rivet"]).await;
    next_text(&mut ws).await;
    until_asleep(&server).await;

    let registry = server.registry.clone();
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(
        next_close(&mut ws).await,
        (1001, "ws.going_away".to_owned())
    );
    bounded(stopping).await.unwrap();
    assert_eq!(registry.awake_count(), 0, "nothing left running");
}
