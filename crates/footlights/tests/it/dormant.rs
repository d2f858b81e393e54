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

async fn start() -> (Registry, ActorHandle<Napper>) {
    let registry = Registry::builder()
        .actor::<Napper>()
        .actor::<Wakeful>()
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
