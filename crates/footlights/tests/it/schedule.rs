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

#[tokio::test]
async fn in_a_cluster_an_alarm_left_by_a_node_that_stopped_fires_on_another_node() {
    use footlights::cluster::{Cluster, ClusterConfig, LocalCluster, NodeInfo};
    use footlights::storage::Driver;
    use std::sync::Arc;

    let driver: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
    let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(driver.clone()));
    let node = |name: &str, lease_ms| {
        Registry::builder()
            .actor::<Alarmed>()
            .shared_driver(driver.clone())
            .cluster(
                cluster.clone(),
                ClusterConfig::new(NodeInfo::new(name, "127.0.0.1:1"))
                    .lease(Duration::from_millis(lease_ms)),
            )
            .start()
    };
    let a = node("a", 30_000).await.unwrap();
    // The other node renews (and looks for orphaned alarms) every 100 ms.
    let b = node("b", 500).await.unwrap();
    let on_a = a.client().get_or_create::<Alarmed>(["left"]);
    on_a.arm(1, "late".into()).await.unwrap();
    let key = footlights::ActorKey::new(vec!["left".into()]);
    let id = driver
        .find_actor(<Alarmed as footlights::ActorSpec>::NAME, &key)
        .await
        .unwrap()
        .unwrap()
        .id;
    // A stop saves and releases the actor; nobody has it awake when its alarm comes due.
    a.shutdown().await;
    assert_eq!(b.awake_count(), 0);
    // Nothing calls the actor: the other node's sweep finds the due alarm and wakes it.
    // Real time: alarms are due by the wall clock. Bounded at ten seconds.
    let mut waited = 0;
    while !driver.load_alarms(&id).await.unwrap().is_empty() {
        assert!(waited < 500, "the orphaned alarm never fired");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(b.awake_count(), 1, "woken on the surviving node");
    let on_b = b.client().get_or_create::<Alarmed>(["left"]);
    assert_eq!(on_b.rings().await.unwrap(), ["late"]);
    b.shutdown().await;
}
