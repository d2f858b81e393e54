//! Lifecycle: start order, vars, sleep and wake, state-change hook, destroy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorHandle, ActorOptions};

use crate::support::until_awake;

#[derive(Serialize, Deserialize)]
pub struct Setup {
    label: String,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Life {
    log: Vec<String>,
    value: i64,
    hook_runs: u32,
    /// Ephemeral: rebuilt by `create_vars` on every start.
    #[serde(skip)]
    vars: Option<String>,
}

static DESTROYED: AtomicUsize = AtomicUsize::new(0);

#[footlights::actor(input = Setup)]
impl Life {
    async fn create_state(_ctx: &Ctx<Self>, input: &Setup) -> Result<Self, ActionError> {
        Ok(Life {
            log: vec![format!("state:{}", input.label)],
            ..Life::default()
        })
    }

    async fn on_create(&mut self, _ctx: &Ctx<Self>, input: &Setup) -> Result<(), ActionError> {
        self.log.push(format!("create:{}", input.label));
        Ok(())
    }

    async fn create_vars(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.vars = Some("rebuilt".into());
        self.log.push("vars".into());
        Ok(())
    }

    async fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.log.push("wake".into());
        Ok(())
    }

    async fn on_sleep(&mut self, _ctx: &Ctx<Self>) {
        self.log.push("sleep".into());
    }

    async fn on_destroy(&mut self, _ctx: &Ctx<Self>) {
        DESTROYED.fetch_add(1, Ordering::SeqCst);
    }

    fn on_state_change(&mut self, _ctx: &Ctx<Self>) {
        self.hook_runs += 1;
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(10);
        o
    }

    #[action]
    fn log(&self) -> Vec<String> {
        self.log.clone()
    }

    #[action]
    fn vars(&self) -> Option<String> {
        self.vars.clone()
    }

    #[action]
    fn set(&mut self, value: i64) -> u32 {
        self.value = value;
        self.hook_runs
    }

    #[action]
    fn touch_nothing(&mut self) -> u32 {
        self.hook_runs
    }

    #[action]
    fn hook_runs(&self) -> u32 {
        self.hook_runs
    }

    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }

    #[action]
    fn destroy_me(&self, ctx: &Ctx<Self>) {
        ctx.destroy();
    }
}

async fn start() -> (Registry, ActorHandle<Life>) {
    let registry = Registry::builder().actor::<Life>().start().await.unwrap();
    let life = registry.client().get_or_create_with::<Life>(
        ["one"],
        &Setup {
            label: "first".into(),
        },
    );
    (registry, life)
}

async fn until_asleep(registry: &Registry) {
    until_awake(registry, 0).await;
}

#[tokio::test]
async fn first_start_runs_state_create_vars_wake_in_order() {
    let (_r, life) = start().await;
    assert_eq!(
        life.log().await.unwrap(),
        ["state:first", "create:first", "vars", "wake"]
    );
    assert_eq!(life.vars().await.unwrap().as_deref(), Some("rebuilt"));
}

#[tokio::test(start_paused = true)]
async fn idle_actor_sleeps_and_wakes_with_vars_rebuilt() {
    let (registry, life) = start().await;
    life.set(5).await.unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    until_asleep(&registry).await;
    // The next call wakes it transparently: vars → wake run again, create does not.
    assert_eq!(
        life.log().await.unwrap(),
        [
            "state:first",
            "create:first",
            "vars",
            "wake",
            "sleep",
            "vars",
            "wake"
        ]
    );
    assert_eq!(life.vars().await.unwrap().as_deref(), Some("rebuilt"));
}

#[tokio::test]
async fn ctx_sleep_stops_the_actor_after_the_action() {
    let (registry, life) = start().await;
    life.nap().await.unwrap();
    until_asleep(&registry).await;
    let log = life.log().await.unwrap();
    assert_eq!(&log[4..], ["sleep", "vars", "wake"]);
}

#[tokio::test]
async fn state_change_hook_runs_once_per_change_only() {
    let (_r, life) = start().await;
    let base = life.hook_runs().await.unwrap();
    life.set(1).await.unwrap();
    life.set(2).await.unwrap();
    life.set(2).await.unwrap(); // no change
    life.touch_nothing().await.unwrap();
    life.log().await.unwrap(); // read
    let conn = life.connect().await.unwrap(); // connection changes are not state changes
    conn.dispose().await;
    assert_eq!(life.hook_runs().await.unwrap(), base + 2);
}

#[tokio::test]
async fn destroy_removes_the_actor_and_frees_its_key() {
    let (registry, life) = start().await;
    let id = life.resolve().await.unwrap();
    let before = DESTROYED.load(Ordering::SeqCst);
    life.destroy_me().await.unwrap();
    let client = registry.client();
    let by_id = client.get_for_id::<Life>(id.clone());
    let err = by_id.log().await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "not_found"));
    assert!(
        DESTROYED.load(Ordering::SeqCst) > before,
        "destroy hook ran"
    );
    let err = client.get::<Life>(["one"]).log().await.unwrap_err();
    assert_eq!(err.code(), "not_found");
    let fresh = client.get_or_create_with::<Life>(
        ["one"],
        &Setup {
            label: "second".into(),
        },
    );
    assert_ne!(fresh.resolve().await.unwrap(), id);
    assert_eq!(
        fresh.log().await.unwrap()[..2],
        ["state:second", "create:second"]
    );
}

/// A registry serving its store alone starts an actor's instances one after the other, so a
/// wake writes no generation bump: the stored generation stays what the first start found.
#[tokio::test]
async fn wakes_leave_the_stored_generation_alone() {
    let (registry, life) = start().await;
    let key = footlights::ActorKey::from("one");
    let generation = || async {
        registry
            .driver()
            .find_actor(<Life as footlights::ActorSpec>::NAME, &key)
            .await
            .unwrap()
            .expect("the actor is stored")
            .generation
    };
    life.nap().await.unwrap();
    until_asleep(&registry).await;
    let first = generation().await;
    for _ in 0..2 {
        life.nap().await.unwrap();
        until_asleep(&registry).await;
    }
    assert_eq!(generation().await, first, "two wakes later");
}
