//! Hibernation: an actor whose only activity is open connections sleeps after its timeout,
//! the connections stay open, and the next message on any of them (or any call) wakes it with
//! every connection back as it was: same id, state and subscriptions, no connect hooks. A
//! connection closed while the actor sleeps wakes it to run its disconnect hook.
//!
//! The clock is tokio's paused one: timeouts pass by `advance`, never by waiting.

use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorHandle, ActorOptions};
use futures::StreamExt;

use crate::support::{let_run, settle, until_awake};

#[derive(Deserialize)]
pub struct Who {
    name: String,
}

#[derive(Default)]
pub struct Seat {
    name: String,
    count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct Said(pub String);

#[derive(Default, Serialize, Deserialize)]
pub struct Lounge {
    connects: u32,
    disconnects: Vec<String>,
    wakes: u32,
    sleeps: u32,
    /// Not saved: gone after each sleep.
    #[serde(skip)]
    awake_since_wake: bool,
}

#[footlights::actor(conn = Conns<Who, Seat>)]
impl Lounge {
    async fn create_conn_state(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Who,
        _request: &footlights::ConnRequest,
    ) -> Result<Seat, ActionError> {
        Ok(Seat {
            name: params.name.clone(),
            count: 0,
        })
    }

    async fn on_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        _conn: &Conn<Self>,
    ) -> Result<(), ActionError> {
        self.connects += 1;
        Ok(())
    }

    async fn on_disconnect(&mut self, _ctx: &Ctx<Self>, conn: &Conn<Self>) {
        self.disconnects.push(conn.state().name.clone());
    }

    async fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.wakes += 1;
        self.awake_since_wake = true;
        Ok(())
    }

    async fn on_sleep(&mut self, _ctx: &Ctx<Self>) {
        self.sleeps += 1;
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(10);
        o
    }

    /// Counts on the caller's connection state.
    #[action]
    fn bump(&self, ctx: &Ctx<Self>) -> u32 {
        let conn = ctx.conn().expect("over a connection");
        let mut seat = conn.state();
        seat.count += 1;
        seat.count
    }

    #[action]
    fn say(&self, ctx: &Ctx<Self>, text: String) {
        ctx.broadcast(Said(text));
    }

    #[action]
    fn names(&self, ctx: &Ctx<Self>) -> Vec<String> {
        let mut names: Vec<String> = ctx.conns().iter().map(|c| c.state().name.clone()).collect();
        names.sort();
        names
    }

    #[action]
    fn ids(&self, ctx: &Ctx<Self>) -> Vec<String> {
        ctx.conns().iter().map(|c| c.id().to_string()).collect()
    }

    #[action]
    fn counts(&self) -> (u32, u32, u32, Vec<String>) {
        (
            self.connects,
            self.wakes,
            self.sleeps,
            self.disconnects.clone(),
        )
    }

    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }
}

/// The same actor with hibernation turned off.
#[derive(Default, Serialize, Deserialize)]
pub struct Vigil {
    n: u32,
}

#[footlights::actor]
impl Vigil {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(10);
        o.hibernate_connections = false;
        o
    }

    #[action]
    fn get(&self) -> u32 {
        self.n
    }
}

async fn lounge() -> (Registry, ActorHandle<Lounge>) {
    let registry = Registry::builder()
        .actor::<Lounge>()
        .actor::<Vigil>()
        .start()
        .await
        .unwrap();
    let lounge = registry.client().get_or_create::<Lounge>(["one"]);
    (registry, lounge)
}

fn as_who(lounge: &ActorHandle<Lounge>, name: &str) -> ActorHandle<Lounge> {
    lounge
        .clone()
        .with_params(&serde_json::json!({ "name": name }))
}

/// Passes the sleep timeout and waits until no actor is awake.
async fn sleep_through(registry: &Registry) {
    tokio::time::advance(Duration::from_secs(11)).await;
    until_awake(registry, 0).await;
}

#[tokio::test(start_paused = true)]
async fn connections_keep_their_id_state_and_subscriptions_across_a_sleep() {
    let (registry, lounge) = lounge().await;
    let ann = as_who(&lounge, "ann").connect().await.unwrap();
    let mut said = ann.events::<Said>();
    assert_eq!(ann.bump().await.unwrap(), 1);
    assert_eq!(ann.bump().await.unwrap(), 2);
    let ids = ann.ids().await.unwrap();

    sleep_through(&registry).await;
    assert!(
        matches!(
            *ann.status().borrow(),
            footlights::ConnStatus::Connected { .. }
        ),
        "the link stayed open"
    );

    // The next message on the connection wakes the actor with the connection as it was.
    assert_eq!(ann.bump().await.unwrap(), 3);
    assert_eq!(registry.awake_count(), 1);
    assert_eq!(ann.ids().await.unwrap(), ids, "same connection id");
    let (connects, wakes, sleeps, disconnects) = ann.counts().await.unwrap();
    assert_eq!(
        (connects, wakes, sleeps),
        (1, 2, 1),
        "no connect hook ran again"
    );
    assert!(disconnects.is_empty());
    // Its subscription came back too: a broadcast reaches it.
    ann.say("after the nap".into()).await.unwrap();
    assert_eq!(said.next().await.unwrap(), Said("after the nap".into()));
}

#[tokio::test(start_paused = true)]
async fn a_silent_subscriber_still_gets_events_after_the_actor_slept() {
    let (registry, lounge) = lounge().await;
    let quiet = as_who(&lounge, "quiet").connect().await.unwrap();
    let mut said = quiet.events::<Said>();
    // The subscription travels on the connection: make sure it is in before the sleep.
    assert_eq!(quiet.names().await.unwrap(), ["quiet"]);
    sleep_through(&registry).await;

    // Another client's stateless call wakes the actor; the broadcast reaches the parked one.
    as_who(&lounge, "loud").say("wake up".into()).await.unwrap();
    assert_eq!(said.next().await.unwrap(), Said("wake up".into()));
    assert_eq!(
        as_who(&lounge, "observer").names().await.unwrap(),
        ["observer", "quiet"],
        "the parked connection is listed again (beside the stateless caller's own)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_closed_while_asleep_runs_its_disconnect_hook_on_the_wake_it_causes() {
    let (registry, lounge) = lounge().await;
    let ann = as_who(&lounge, "ann").connect().await.unwrap();
    let bob = as_who(&lounge, "bob").connect().await.unwrap();
    assert_eq!(bob.names().await.unwrap(), ["ann", "bob"]);
    sleep_through(&registry).await;

    ann.dispose().await;
    // The close wakes the actor, which runs the hook.
    settle("the disconnect hook ran", || async {
        bob.counts().await.unwrap().3 == ["ann"]
    })
    .await;
    assert_eq!(bob.names().await.unwrap(), ["bob"]);
    let (connects, wakes, ..) = bob.counts().await.unwrap();
    assert_eq!(
        (connects, wakes),
        (2, 2),
        "no connect hook ran for the parked ones"
    );
}

#[tokio::test(start_paused = true)]
async fn ctx_sleep_parks_the_connections_instead_of_closing_them() {
    let (registry, lounge) = lounge().await;
    let ann = as_who(&lounge, "ann").connect().await.unwrap();
    assert_eq!(ann.bump().await.unwrap(), 1);
    ann.nap().await.unwrap();
    until_awake(&registry, 0).await;
    assert!(matches!(
        *ann.status().borrow(),
        footlights::ConnStatus::Connected { .. }
    ));
    assert_eq!(ann.bump().await.unwrap(), 2);
    let (connects, wakes, sleeps, disconnects) = ann.counts().await.unwrap();
    assert_eq!((connects, wakes, sleeps), (1, 2, 1));
    assert!(disconnects.is_empty());
}

#[tokio::test(start_paused = true)]
async fn without_hibernation_an_open_connection_keeps_the_actor_awake() {
    let (registry, _lounge) = lounge().await;
    let vigil = registry.client().get_or_create::<Vigil>(["v"]);
    let conn = vigil.connect().await.unwrap();
    assert_eq!(conn.get().await.unwrap(), 0);
    tokio::time::advance(Duration::from_secs(60)).await;
    let_run().await;
    assert_eq!(registry.awake_count(), 1);
    conn.dispose().await;
    sleep_through(&registry).await;
}
