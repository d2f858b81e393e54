//! Scheduled calls: stored durably, fired after a sleep and after a restart.

use std::time::Duration;

use footlights::prelude::*;
use footlights::storage::MemoryDriver;
use footlights::{ActorHandle, ActorOptions};

use crate::support::{let_run, settle, until_awake};

#[derive(Default, Serialize, Deserialize)]
pub struct Alarmed {
    rings: Vec<String>,
}

#[footlights::actor]
impl Alarmed {
    #[action]
    fn arm(&mut self, ctx: &Ctx<Self>, secs: u64, label: String) -> Result<String, ActionError> {
        ctx.schedule()
            .after(Duration::from_secs(secs), alarmed_actions::Ring { label })
    }

    #[action]
    fn arm_and_cancel(&mut self, ctx: &Ctx<Self>, secs: u64) -> Result<bool, ActionError> {
        let id = ctx.schedule().after(
            Duration::from_secs(secs),
            alarmed_actions::Ring {
                label: "cancelled".into(),
            },
        )?;
        Ok(ctx.schedule().cancel(&id))
    }

    #[action]
    fn ring(&mut self, label: String) {
        self.rings.push(label);
    }

    #[action]
    fn rings(&self) -> Vec<String> {
        self.rings.clone()
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(10);
        o
    }
}

async fn until_rung(actor: &ActorHandle<Alarmed>, label: &str) -> Vec<String> {
    settle(&format!("alarm {label}"), || async {
        actor.rings().await.unwrap().iter().any(|r| r == label)
    })
    .await;
    actor.rings().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_alarm_fires_after_its_delay_and_not_before() {
    let registry = Registry::builder()
        .actor::<Alarmed>()
        .start()
        .await
        .unwrap();
    let a = registry.client().get_or_create::<Alarmed>(["a"]);
    a.arm(30, "soon".into()).await.unwrap();
    tokio::time::advance(Duration::from_secs(29)).await;
    let_run().await;
    assert!(a.rings().await.unwrap().is_empty(), "fired early");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(until_rung(&a, "soon").await, ["soon"]);
}

#[tokio::test(start_paused = true)]
async fn an_alarm_wakes_a_sleeping_actor() {
    let registry = Registry::builder()
        .actor::<Alarmed>()
        .start()
        .await
        .unwrap();
    let a = registry.client().get_or_create::<Alarmed>(["a"]);
    a.arm(100, "wake-up".into()).await.unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    // A pending alarm must not keep the actor awake.
    until_awake(&registry, 0).await;
    tokio::time::advance(Duration::from_secs(100)).await;
    until_awake(&registry, 1).await;
    assert_eq!(until_rung(&a, "wake-up").await, ["wake-up"]);
}

#[tokio::test(start_paused = true)]
async fn an_alarm_fires_after_a_restart() {
    let driver = MemoryDriver::new();
    let first = Registry::builder()
        .actor::<Alarmed>()
        .driver(driver.clone())
        .start()
        .await
        .unwrap();
    first
        .client()
        .get_or_create::<Alarmed>(["a"])
        .arm(60, "after-restart".into())
        .await
        .unwrap();
    first.shutdown().await;
    drop(first);

    let second = Registry::builder()
        .actor::<Alarmed>()
        .driver(driver)
        .start()
        .await
        .unwrap();
    let a = second.client().get_or_create::<Alarmed>(["a"]);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(until_rung(&a, "after-restart").await, ["after-restart"]);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_alarm_does_not_fire() {
    let registry = Registry::builder()
        .actor::<Alarmed>()
        .start()
        .await
        .unwrap();
    let a = registry.client().get_or_create::<Alarmed>(["a"]);
    assert!(a.arm_and_cancel(5).await.unwrap());
    a.arm(10, "marker".into()).await.unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        until_rung(&a, "marker").await,
        ["marker"],
        "the cancelled alarm fired"
    );
}
