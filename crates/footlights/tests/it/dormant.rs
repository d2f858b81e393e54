//! Dormant actors: an awake actor with nothing to do gives its task back after
//! `dormant_after`, keeps its state and vars in memory, and is back at once for the next
//! message, without a hook or a storage read. Time is tokio's paused clock.

use std::time::Duration;

use footlights::metrics::ActorTypeMetrics;
use footlights::prelude::*;
use footlights::{ActorHandle, ActorOptions};

use crate::support::{let_run, settle, until_awake};

/// The idle timeout of these actors.
const SLEEP: Duration = Duration::from_secs(30);

#[derive(Default, Serialize, Deserialize)]
pub struct Napper {
    calls: u32,
    rings: u32,
    /// Lives in memory only: gone after a sleep, kept by a dormant actor.
    #[serde(skip)]
    in_memory: u32,
    #[serde(skip)]
    wakes: u32,
}

#[footlights::actor]
impl Napper {
    fn options() -> ActorOptions {
        let mut options = ActorOptions::default();
        options.sleep_timeout = SLEEP;
        options
    }

    async fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.wakes += 1;
        Ok(())
    }

    /// Counts the call in the durable state and in memory; returns (calls, in memory, wakes).
    #[action]
    fn touch(&mut self) -> (u32, u32, u32) {
        self.calls += 1;
        self.in_memory += 1;
        (self.calls, self.in_memory, self.wakes)
    }

    #[action]
    fn arm(&mut self, ctx: &Ctx<Self>, secs: u64) -> Result<String, ActionError> {
        ctx.schedule()
            .after(Duration::from_secs(secs), napper_actions::Ring {})
    }

    #[action]
    fn ring(&mut self) {
        self.rings += 1;
    }

    #[action]
    fn rings(&self) -> u32 {
        self.rings
    }
}

/// The same actor, with dormancy off.
#[derive(Default, Serialize, Deserialize)]
pub struct Wakeful {
    calls: u32,
}

#[footlights::actor]
impl Wakeful {
    fn options() -> ActorOptions {
        let mut options = ActorOptions::default();
        options.sleep_timeout = SLEEP;
        options.dormant_after = None;
        options
    }

    #[action]
    fn touch(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }
}

/// An actor with a key-value store, which may hold a clone of its own context in its vars.
#[derive(Default, Serialize, Deserialize)]
pub struct Keeper {
    #[serde(skip)]
    in_memory: u32,
    #[serde(skip)]
    held: Option<Ctx<Keeper>>,
}

/// The store limit of `Keeper`, in bytes of keys and values.
const KEEPER_KV_BYTES: u64 = 64;

#[footlights::actor]
impl Keeper {
    fn options() -> ActorOptions {
        let mut options = ActorOptions::default();
        options.sleep_timeout = SLEEP;
        options.kv_max_bytes = KEEPER_KV_BYTES;
        options
    }

    /// Counts the call in memory; returns the count.
    #[action]
    fn touch(&mut self) -> u32 {
        self.in_memory += 1;
        self.in_memory
    }

    #[action]
    async fn put(&self, ctx: &Ctx<Self>, key: String, value: String) -> Result<(), ActionError> {
        ctx.kv().put(&key, &value).await
    }

    #[action]
    async fn get(&self, ctx: &Ctx<Self>, key: String) -> Result<Option<String>, ActionError> {
        ctx.kv().get(&key).await
    }

    /// Keeps a clone of the context in the vars, as an actor that hands it to a helper would.
    #[action]
    fn hold(&mut self, ctx: &Ctx<Self>) {
        self.held = Some(ctx.clone());
    }

    /// Writes through the held clone of the context.
    #[action]
    async fn put_held(&self, key: String, value: String) -> Result<(), ActionError> {
        let held = self.held.as_ref().expect("hold was called");
        held.kv().put(&key, &value).await
    }
}

async fn start() -> (Registry, ActorHandle<Napper>) {
    let registry = Registry::builder()
        .actor::<Napper>()
        .actor::<Wakeful>()
        .actor::<Keeper>()
        .start()
        .await
        .unwrap();
    let napper = registry.client().get_or_create::<Napper>(["n"]);
    (registry, napper)
}

fn counts(registry: &Registry, name: &str) -> std::sync::Arc<ActorTypeMetrics> {
    registry
        .metrics()
        .actor_types()
        .iter()
        .find(|t| t.name() == name)
        .expect("a registered type")
        .clone()
}

fn dormant(registry: &Registry, name: &str) -> i64 {
    counts(registry, name).dormant()
}

async fn until_dormant(registry: &Registry, name: &str, n: i64) {
    settle(&format!("{n} dormant {name}"), || async {
        dormant(registry, name) == n
    })
    .await;
}

/// Advances the paused clock by `d` and lets what came due run.
async fn pass(d: Duration) {
    tokio::time::advance(d).await;
    let_run().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_actor_goes_dormant_and_comes_back_as_it_was() {
    let (registry, napper) = start().await;
    assert_eq!(napper.touch().await.unwrap(), (1, 1, 1));
    pass(Duration::from_millis(500)).await;
    assert_eq!(dormant(&registry, "napper"), 0, "dormant too early");
    pass(Duration::from_secs(1)).await;
    until_dormant(&registry, "napper", 1).await;
    assert_eq!(registry.awake_count(), 1, "a dormant actor is still awake");

    // Back with its in-memory field: not reloaded, and no wake hook ran.
    assert_eq!(napper.touch().await.unwrap(), (2, 2, 1));
    assert_eq!(dormant(&registry, "napper"), 0);

    // Dormant again, and again back, any number of times.
    for round in 3..6 {
        pass(Duration::from_secs(2)).await;
        until_dormant(&registry, "napper", 1).await;
        assert_eq!(napper.touch().await.unwrap(), (round, round, 1));
    }
    assert_eq!(counts(&registry, "napper").wakes(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dormant_actor_still_sleeps_when_its_idle_time_is_up() {
    let (registry, napper) = start().await;
    assert_eq!(napper.touch().await.unwrap(), (1, 1, 1));
    pass(Duration::from_secs(2)).await;
    until_dormant(&registry, "napper", 1).await;
    pass(SLEEP - Duration::from_secs(4)).await;
    assert_eq!(
        registry.awake_count(),
        1,
        "asleep before its idle time was up"
    );
    pass(Duration::from_secs(3)).await;
    until_awake(&registry, 0).await;
    assert_eq!(dormant(&registry, "napper"), 0);
    // Slept for real: the in-memory field is gone, the state is not, the wake hook ran.
    assert_eq!(napper.touch().await.unwrap(), (2, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn an_alarm_brings_a_dormant_actor_back() {
    let (registry, napper) = start().await;
    assert_eq!(napper.touch().await.unwrap(), (1, 1, 1));
    napper.arm(10).await.unwrap();
    pass(Duration::from_secs(2)).await;
    until_dormant(&registry, "napper", 1).await;
    pass(Duration::from_secs(9)).await;
    // Only the alarm: no call asks in between.
    until_dormant(&registry, "napper", 0).await;
    assert_eq!(napper.rings().await.unwrap(), 1);
    assert_eq!(
        napper.touch().await.unwrap(),
        (2, 2, 1),
        "still the same instance"
    );
}

#[tokio::test(start_paused = true)]
async fn an_actor_with_a_connection_keeps_its_task() {
    let (registry, napper) = start().await;
    let conn = napper.connect().await.unwrap();
    pass(Duration::from_secs(5)).await;
    assert_eq!(dormant(&registry, "napper"), 0);
    // Closed: nothing keeps the task any more.
    drop(conn);
    let_run().await;
    pass(Duration::from_secs(2)).await;
    until_dormant(&registry, "napper", 1).await;
    assert_eq!(registry.awake_count(), 1);
    until_dormant(&registry, "napper", 1).await;
}

#[tokio::test(start_paused = true)]
async fn dormancy_can_be_turned_off() {
    let (registry, _) = start().await;
    let wakeful = registry.client().get_or_create::<Wakeful>(["w"]);
    assert_eq!(wakeful.touch().await.unwrap(), 1);
    pass(Duration::from_secs(20)).await;
    assert_eq!(dormant(&registry, "wakeful"), 0);
    assert_eq!(registry.awake_count(), 1);
    assert_eq!(wakeful.touch().await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_stops_dormant_actors_too() {
    let (registry, napper) = start().await;
    for i in 0..20 {
        let other = registry
            .client()
            .get_or_create::<Napper>([format!("other-{i}").as_str()]);
        other.touch().await.unwrap();
    }
    napper.touch().await.unwrap();
    pass(Duration::from_secs(2)).await;
    until_dormant(&registry, "napper", 21).await;
    let slept_before = counts(&registry, "napper").sleeps();
    registry.shutdown().await;
    assert_eq!(registry.awake_count(), 0);
    assert_eq!(dormant(&registry, "napper"), 0);
    assert_eq!(counts(&registry, "napper").sleeps() - slept_before, 21);
}

/// A dormant actor gives back its context's transient parts (the store's handle and cache
/// among them) and gets new ones when it comes back: its entries are read again from the
/// store, and the store's size still counts against its limit.
#[tokio::test(start_paused = true)]
async fn a_dormant_actor_comes_back_with_its_store_and_its_store_limit() {
    let (registry, _) = start().await;
    let keeper = registry.client().get_or_create::<Keeper>(["k"]);
    keeper.put("a".into(), "x".repeat(30)).await.unwrap();
    assert_eq!(keeper.touch().await.unwrap(), 1);
    for round in 2..4 {
        pass(Duration::from_secs(2)).await;
        until_dormant(&registry, "keeper", 1).await;
        assert_eq!(keeper.touch().await.unwrap(), round, "vars kept");
        assert_eq!(keeper.get("a".into()).await.unwrap(), Some("x".repeat(30)));
    }
    // 32 bytes stored (each key counts one byte more): 35 more would pass the limit of 64.
    let refused = keeper.put("b".into(), "y".repeat(33)).await.unwrap_err();
    assert_eq!(refused.code(), "actor_too_large", "{refused:?}");
    keeper.put("b".into(), "y".repeat(20)).await.unwrap();
    pass(Duration::from_secs(2)).await;
    until_dormant(&registry, "keeper", 1).await;
    assert_eq!(keeper.get("b".into()).await.unwrap(), Some("y".repeat(20)));
    assert_eq!(counts(&registry, "keeper").wakes(), 1, "never reloaded");
}

/// An actor whose vars hold a clone of its context keeps that context through dormancy: the
/// clone still reaches the live actor after it comes back.
#[tokio::test(start_paused = true)]
async fn a_context_held_by_the_actor_stays_its_context_through_dormancy() {
    let (registry, _) = start().await;
    let keeper = registry.client().get_or_create::<Keeper>(["held"]);
    keeper.hold().await.unwrap();
    keeper.put_held("a".into(), "1".into()).await.unwrap();
    pass(Duration::from_secs(2)).await;
    until_dormant(&registry, "keeper", 1).await;
    assert_eq!(keeper.get("a".into()).await.unwrap(), Some("1".into()));
    keeper.put_held("b".into(), "2".into()).await.unwrap();
    assert_eq!(keeper.get("b".into()).await.unwrap(), Some("2".into()));
    pass(Duration::from_secs(2)).await;
    until_dormant(&registry, "keeper", 1).await;
    assert_eq!(keeper.get("b".into()).await.unwrap(), Some("2".into()));
    assert_eq!(keeper.touch().await.unwrap(), 1);
}
