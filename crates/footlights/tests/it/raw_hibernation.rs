//! Raw WebSockets that hibernate (`ActorOptions::hibernate_raw_websockets`): an actor whose
//! only activity is open raw sockets sleeps after its timeout with the sockets left open; a
//! message on one wakes it and reaches the message hook with a handle for the same socket; a
//! socket the client closed meanwhile wakes it to run the close hook; calls from elsewhere
//! find the sockets again by the ids the actor kept in its state. Without the option an open
//! raw socket keeps its actor awake, and a sleep closes it.
//!
//! The clock is tokio's paused one: timeouts pass by `advance`, never by waiting.

use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorOptions, ConnRequest, RawEvent, RawLink, RawSocket, WsMessage};
use footlights_client::Target;
use tokio::sync::mpsc::error::TryRecvError;

use crate::support::{let_run, settle, until_awake};

/// An actor whose raw sockets hibernate. It keeps their ids (not their handles) in its state.
#[derive(Default, Serialize, Deserialize)]
pub struct Booth {
    /// Ids of the open sockets, in the order they opened.
    sockets: Vec<u64>,
    opens: u32,
    /// Connect and disconnect hooks of the raw sockets' connections (not of stateless calls).
    connects: u32,
    disconnects: u32,
    wakes: u32,
    /// `(socket id, close code)` of each close hook run.
    closes: Vec<(u64, u16)>,
    /// Connections of `/hold` sockets, kept in memory: those sockets cannot hibernate.
    #[serde(skip)]
    held: Vec<Conn<Self>>,
}

/// A connection's auth data says whether it carries a raw socket.
#[footlights::actor(conn = Conns<Option<String>, (), bool>)]
impl Booth {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(10);
        o.hibernate_raw_websockets = true;
        o
    }

    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        _params: &Option<String>,
        request: &ConnRequest,
    ) -> Result<bool, ActionError> {
        Ok(matches!(request.uri().path(), "/talk" | "/hold"))
    }

    async fn on_connect(&mut self, _ctx: &Ctx<Self>, conn: &Conn<Self>) -> Result<(), ActionError> {
        self.connects += u32::from(*conn.auth());
        Ok(())
    }

    async fn on_disconnect(&mut self, _ctx: &Ctx<Self>, conn: &Conn<Self>) {
        self.disconnects += u32::from(*conn.auth());
    }

    async fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.wakes += 1;
        Ok(())
    }

    async fn on_websocket(
        &mut self,
        ctx: &Ctx<Self>,
        socket: &RawSocket,
        request: &ConnRequest,
    ) -> Result<bool, ActionError> {
        match request.uri().path() {
            "/talk" => {}
            "/hold" => self.held.extend(ctx.conn().cloned()),
            _ => return Ok(false),
        }
        self.opens += 1;
        self.sockets.push(socket.id());
        socket.send_text(format!("hello {}", socket.id()));
        Ok(true)
    }

    /// `bye` closes the socket with 4001; anything else comes back with the socket's id and
    /// the number of starts so far.
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

    /// Sends `text` to every socket whose id the state keeps; returns how many it reached.
    #[action]
    fn announce(&self, ctx: &Ctx<Self>, text: String) -> usize {
        let mut reached = 0;
        for id in &self.sockets {
            if let Some(socket) = ctx.raw_socket(*id) {
                socket.send_text(text.clone());
                reached += 1;
            }
        }
        reached
    }

    /// Closes every open raw socket with 4000; returns how many.
    #[action]
    fn kick(&self, ctx: &Ctx<Self>) -> usize {
        let sockets = ctx.raw_sockets();
        for socket in &sockets {
            socket.close(4000, "kicked");
        }
        sockets.len()
    }

    /// The ids of the open raw sockets as the context lists them, and the ids of the
    /// connections (the sockets' among them).
    #[action]
    fn listed(&self, ctx: &Ctx<Self>) -> (Vec<u64>, usize) {
        let mut ids: Vec<u64> = ctx.raw_sockets().iter().map(RawSocket::id).collect();
        ids.sort_unstable();
        let ephemeral = ctx.conns().iter().filter(|c| c.is_ephemeral()).count();
        (ids, ephemeral)
    }

    #[action]
    fn stats(&self) -> (u32, u32, u32, u32, Vec<(u64, u16)>) {
        (
            self.opens,
            self.connects,
            self.disconnects,
            self.wakes,
            self.closes.clone(),
        )
    }

    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }
}

/// The same kind of actor without the option: its raw sockets keep it awake.
#[derive(Default, Serialize, Deserialize)]
pub struct Stall;

#[footlights::actor]
impl Stall {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(10);
        o
    }

    async fn on_websocket(
        &mut self,
        _ctx: &Ctx<Self>,
        _socket: &RawSocket,
        _request: &ConnRequest,
    ) -> Result<bool, ActionError> {
        Ok(true)
    }

    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }
}

async fn registry() -> Registry {
    Registry::builder()
        .actor::<Booth>()
        .actor::<Stall>()
        .start()
        .await
        .unwrap()
}

fn booth() -> Target {
    Target::GetOrCreate {
        name: "booth".into(),
        key: "b".into(),
        input: None,
    }
}

fn talk() -> ConnRequest {
    ConnRequest::new(
        http::Method::GET,
        "/talk".parse().unwrap(),
        http::HeaderMap::new(),
    )
}

/// Opens a raw socket on the booth; returns it with its id (from the greeting).
async fn open(registry: &Registry) -> (RawLink, u64) {
    let mut link = registry.websocket(&booth(), None, talk()).await.unwrap();
    assert_eq!(link.events.recv().await, Some(RawEvent::Open));
    let Some(RawEvent::Message(WsMessage::Text(hello))) = link.events.recv().await else {
        panic!("no greeting");
    };
    let id = hello.strip_prefix("hello ").unwrap().parse().unwrap();
    (link, id)
}

async fn next_text(link: &mut RawLink) -> String {
    match link.events.recv().await {
        Some(RawEvent::Message(WsMessage::Text(text))) => text,
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Passes the sleep timeout and waits until no actor is awake.
async fn sleep_through(registry: &Registry) {
    tokio::time::advance(Duration::from_secs(11)).await;
    until_awake(registry, 0).await;
}

/// The socket is still open: nothing arrived, and its channel has not ended.
fn still_open(link: &mut RawLink) {
    assert_eq!(link.events.try_recv(), Err(TryRecvError::Empty));
}

#[tokio::test(start_paused = true)]
async fn a_message_on_a_hibernated_raw_socket_wakes_the_actor_with_the_same_socket() {
    let registry = registry().await;
    let (mut link, id) = open(&registry).await;
    link.sender.send(WsMessage::Text("one".into())).unwrap();
    assert_eq!(next_text(&mut link).await, format!("one from {id} wakes=1"));

    sleep_through(&registry).await;
    still_open(&mut link);

    // The message wakes the actor; the hook answers on the same socket, by the same id.
    link.sender.send(WsMessage::Text("two".into())).unwrap();
    assert_eq!(next_text(&mut link).await, format!("two from {id} wakes=2"));
    assert_eq!(registry.awake_count(), 1);
    let client = registry.client().get_or_create::<Booth>("b");
    let (opens, connects, disconnects, wakes, closes) = client.stats().await.unwrap();
    assert_eq!(
        (opens, connects, disconnects, wakes),
        (1, 1, 0, 2),
        "no open or connect hook ran again"
    );
    assert!(closes.is_empty());
    assert_eq!(
        client.listed().await.unwrap(),
        (vec![id], 2),
        "the socket and its connection are listed again (beside the caller's own)"
    );

    // The woken actor closes the socket it got back.
    link.sender.send(WsMessage::Text("bye".into())).unwrap();
    assert_eq!(
        link.events.recv().await,
        Some(RawEvent::Closed {
            code: 4001,
            reason: "asked to".into()
        })
    );
    settle("the close hook ran", || async {
        client.stats().await.unwrap().4 == [(id, 4001)]
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_action_reaches_the_hibernated_sockets_by_the_ids_in_the_state() {
    let registry = registry().await;
    let (mut ann, ann_id) = open(&registry).await;
    let (mut bob, bob_id) = open(&registry).await;
    assert_ne!(ann_id, bob_id);
    sleep_through(&registry).await;
    still_open(&mut ann);
    still_open(&mut bob);

    // An action wakes the actor; it finds both sockets by id and sends on them.
    let client = registry.client().get_or_create::<Booth>("b");
    assert_eq!(client.announce("news".into()).await.unwrap(), 2);
    assert_eq!(next_text(&mut ann).await, "news");
    assert_eq!(next_text(&mut bob).await, "news");

    // And closes them: each client gets the code, each close hook runs once.
    assert_eq!(client.kick().await.unwrap(), 2);
    for link in [&mut ann, &mut bob] {
        assert_eq!(
            link.events.recv().await,
            Some(RawEvent::Closed {
                code: 4000,
                reason: "kicked".into()
            })
        );
    }
    settle("both close hooks ran", || async {
        client.stats().await.unwrap().4.len() == 2
    })
    .await;
    let mut closes = client.stats().await.unwrap().4;
    closes.sort_unstable();
    let mut expected = vec![(ann_id, 4000), (bob_id, 4000)];
    expected.sort_unstable();
    assert_eq!(closes, expected);
    assert_eq!(client.listed().await.unwrap(), (vec![], 1));
}

#[tokio::test(start_paused = true)]
async fn a_raw_socket_closed_while_the_actor_sleeps_runs_its_close_hook_on_the_wake_it_causes() {
    let registry = registry().await;
    let (link, id) = open(&registry).await;
    sleep_through(&registry).await;

    link.sender.close(1000, "done");
    until_awake(&registry, 1).await;
    let client = registry.client().get_or_create::<Booth>("b");
    settle("the close hook ran", || async {
        client.stats().await.unwrap().4 == [(id, 1000)]
    })
    .await;
    let (opens, _, disconnects, wakes, _) = client.stats().await.unwrap();
    assert_eq!(
        (opens, disconnects, wakes),
        (1, 1, 2),
        "the socket's connection ended too"
    );
    assert_eq!(client.listed().await.unwrap(), (vec![], 1));
    // Nothing is left to keep it awake or to hibernate.
    sleep_through(&registry).await;
}

#[tokio::test(start_paused = true)]
async fn ctx_sleep_hibernates_the_raw_sockets_too() {
    let registry = registry().await;
    let (mut link, id) = open(&registry).await;
    let client = registry.client().get_or_create::<Booth>("b");
    client.nap().await.unwrap();
    until_awake(&registry, 0).await;
    still_open(&mut link);
    link.sender.send(WsMessage::Text("back".into())).unwrap();
    assert_eq!(
        next_text(&mut link).await,
        format!("back from {id} wakes=2")
    );
}

#[tokio::test(start_paused = true)]
async fn a_raw_socket_whose_connection_the_actor_holds_is_closed_at_sleep_not_hibernated() {
    let registry = registry().await;
    let (mut talk, talk_id) = open(&registry).await;
    let hold = ConnRequest::new(
        http::Method::GET,
        "/hold".parse().unwrap(),
        http::HeaderMap::new(),
    );
    let mut held = registry.websocket(&booth(), None, hold).await.unwrap();
    assert_eq!(held.events.recv().await, Some(RawEvent::Open));
    assert!(matches!(
        held.events.recv().await,
        Some(RawEvent::Message(WsMessage::Text(_)))
    ));

    sleep_through(&registry).await;
    let Some(RawEvent::Closed { code, .. }) = held.events.recv().await else {
        panic!("the held socket was not closed");
    };
    assert_eq!(code, 1001, "going away");
    still_open(&mut talk);
    // The other one hibernated: it wakes the actor, which lists only it.
    talk.sender.send(WsMessage::Text("still".into())).unwrap();
    assert_eq!(
        next_text(&mut talk).await,
        format!("still from {talk_id} wakes=2")
    );
    let client = registry.client().get_or_create::<Booth>("b");
    assert_eq!(client.listed().await.unwrap(), (vec![talk_id], 2));
    // The held socket's connection ended at the sleep (its disconnect hook ran).
    assert_eq!(client.stats().await.unwrap().2, 1);
}

#[tokio::test(start_paused = true)]
async fn without_the_option_a_raw_socket_keeps_the_actor_awake_and_a_sleep_closes_it() {
    let registry = registry().await;
    let stall = Target::GetOrCreate {
        name: "stall".into(),
        key: "s".into(),
        input: None,
    };
    let mut link = registry.websocket(&stall, None, talk()).await.unwrap();
    assert_eq!(link.events.recv().await, Some(RawEvent::Open));
    tokio::time::advance(Duration::from_secs(60)).await;
    let_run().await;
    assert_eq!(registry.awake_count(), 1, "the open socket holds the actor");

    registry
        .client()
        .get_or_create::<Stall>("s")
        .nap()
        .await
        .unwrap();
    let Some(RawEvent::Closed { code, .. }) = link.events.recv().await else {
        panic!("the socket was not closed");
    };
    assert_eq!(code, 1001, "going away");
    until_awake(&registry, 0).await;
    // A message after the close wakes nothing.
    assert!(link.sender.send(WsMessage::Text("late".into())).is_err());
    let_run().await;
    assert_eq!(registry.awake_count(), 0);
}
