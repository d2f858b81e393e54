//! Checks of a [`Cluster`] with its [`Driver`]: unique claims, fencing after a claim, release,
//! lease expiry on the store's clock, orphaned alarms.
//!
//! A cluster harness ([`ClusterHarness`]) opens the driver and the cluster over one store;
//! [`cluster_conformance_tests!`](crate::cluster_conformance_tests) generates one test per
//! check and [`run_cluster_checks`] runs them in sequence. Like the driver checks, each uses
//! its own actor names and node names and tolerates what the others left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::support::{alarm, create, meta, put_alarm, set_state, state};
use crate::cluster::{Claim, Cluster, Heartbeat, NodeIncarnation, NodeInfo};
use crate::{ActorId, Driver, Fence, Result, Unit, UnitOutcome};

/// A driver and the cluster over the same store, as [`ClusterHarness::open`] returns them.
pub type Opened = (Arc<dyn Driver>, Arc<dyn Cluster>);

/// Opens the store under test with its cluster view, as many times as a check needs; every
/// call opens **the same** store (for a shared store: as another process would).
pub trait ClusterHarness: Send + Sync {
    /// A driver and the cluster over the same data.
    fn open(&self) -> BoxFuture<'_, Result<Opened>>;
}

/// A lease no check outlives, so that only the checks that wait for an expiry see one.
const LONG: Duration = Duration::from_secs(600);

/// How long a check waits for a short lease to run out on the store's clock before it fails.
const EXPIRY_WAIT: Duration = Duration::from_secs(30);

async fn open(h: &dyn ClusterHarness) -> (Arc<dyn Driver>, Arc<dyn Cluster>) {
    match h.open().await {
        Ok(opened) => opened,
        Err(e) => panic!("opening the store and its cluster failed: {e:?}"),
    }
}

async fn register(c: &dyn Cluster, name: &str, ttl: Duration) -> NodeIncarnation {
    let info = NodeInfo::new(name, format!("127.0.0.1:{}", 7000 + name.len()));
    c.register(&info, ttl)
        .await
        .expect("register failed")
        .incarnation
}

async fn claim(c: &dyn Cluster, actor: &ActorId, me: &NodeIncarnation) -> Claim {
    c.claim(actor, me).await.expect("claim failed")
}

async fn claimed(c: &dyn Cluster, actor: &ActorId, me: &NodeIncarnation) -> Fence {
    match claim(c, actor, me).await {
        Claim::Claimed(fence) => fence,
        other => panic!("{me} could not claim {actor}: {other:?}"),
    }
}

async fn generation(d: &dyn Driver, actor: &ActorId) -> u64 {
    d.actor(actor)
        .await
        .expect("actor failed")
        .expect("the actor exists")
        .generation
}

fn fenced_state(fence: &Fence, bytes: &[u8]) -> Unit {
    Unit {
        fence: Some(fence.clone()),
        writes: vec![set_state(&fence.actor, bytes)],
    }
}

async fn commit_units(d: &dyn Driver, units: Vec<Unit>) -> Vec<UnitOutcome> {
    d.commit_units(units).await.expect("commit_units failed")
}

/// Waits until `node` is no longer among the live members, on the store's clock; fails after
/// [`EXPIRY_WAIT`]. Polls, so that the check passes as soon as the store says so.
async fn wait_until_dead(c: &dyn Cluster, node: &NodeIncarnation) {
    let started = Instant::now();
    loop {
        let members = c.live_members().await.expect("live_members failed");
        if members.iter().all(|m| m.incarnation != *node) {
            return;
        }
        assert!(
            started.elapsed() < EXPIRY_WAIT,
            "the lease of {node} did not run out within {EXPIRY_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sixteen nodes claiming one actor at once, through two opened handles: exactly one gets it,
/// with the generation bumped by one, and every other one is told who holds it.
pub async fn claim_is_unique_under_concurrent_claimers(h: &dyn ClusterHarness) {
    const CHECK: &str = "claim_is_unique_under_concurrent_claimers";
    const NODES: usize = 16;
    let (d, first) = open(h).await;
    let (_, second) = open(h).await;
    let mut nodes = Vec::new();
    for n in 0..NODES {
        nodes.push(register(&*first, &format!("{CHECK}-{n}"), LONG).await);
    }
    for round in 0..4u32 {
        let a = meta(CHECK, round, round.to_string());
        create(&*d, &a).await;
        let before = generation(&*d, &a.id).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(NODES));
        let mut tasks = Vec::new();
        for (n, node) in nodes.iter().enumerate() {
            let cluster = Arc::clone(if n % 2 == 0 { &first } else { &second });
            let (barrier, node, id) = (Arc::clone(&barrier), node.clone(), a.id.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let outcome = claim(&*cluster, &id, &node).await;
                (node, outcome)
            }));
        }
        let mut winners = Vec::new();
        let mut told = Vec::new();
        for task in tasks {
            match task.await.expect("a claim task panicked") {
                (node, Claim::Claimed(fence)) => winners.push((node, fence)),
                (_, Claim::OwnedBy(owner)) => told.push(owner),
                (node, other) => panic!("round {round}: {node} got {other:?}"),
            }
        }
        let [(winner, fence)] = winners.as_slice() else {
            panic!(
                "round {round}: {} claims succeeded: {winners:?}",
                winners.len()
            );
        };
        assert_eq!(fence.actor, a.id);
        assert_eq!(fence.generation, before + 1, "round {round}: one bump");
        assert_eq!(generation(&*d, &a.id).await, fence.generation);
        for owner in &told {
            assert_eq!(
                owner.node, *winner,
                "round {round}: a loser was told {owner:?}"
            );
            assert!(owner.alive);
        }
        let owner = first.owner(&a.id).await.expect("owner failed");
        assert_eq!(
            owner.map(|o| (o.node, o.generation)),
            Some((winner.clone(), fence.generation))
        );
    }
}

/// After another node claims the actor (its holder deregistered, as a node that died), the
/// old holder's units fenced with its generation are refused and leave nothing, and the new
/// holder's are applied. A node claiming again an actor it holds gets a new fence, and its
/// previous instance is fenced too.
pub async fn old_generation_is_fenced_after_a_claim(h: &dyn ClusterHarness) {
    const CHECK: &str = "old_generation_is_fenced_after_a_claim";
    let (d, c) = open(h).await;
    let a = meta(CHECK, 1, "x");
    create(&*d, &a).await;
    let old = register(&*c, &format!("{CHECK}-old"), LONG).await;
    let new = register(&*c, &format!("{CHECK}-new"), LONG).await;
    let old_fence = claimed(&*c, &a.id, &old).await;
    assert_eq!(
        commit_units(&*d, vec![fenced_state(&old_fence, b"old 1")]).await,
        vec![UnitOutcome::Applied(vec![])]
    );
    assert!(
        matches!(claim(&*c, &a.id, &new).await, Claim::OwnedBy(o) if o.node == old),
        "a live holder's actor was claimed"
    );

    c.deregister(&old).await.expect("deregister failed");
    let new_fence = claimed(&*c, &a.id, &new).await;
    assert!(new_fence.generation > old_fence.generation);
    let outcomes = commit_units(&*d, vec![fenced_state(&old_fence, b"old 2")]).await;
    assert_eq!(
        outcomes,
        vec![UnitOutcome::Fenced {
            current: Some(new_fence.generation)
        }]
    );
    assert_eq!(state(&*d, &a.id).await, Some(b"old 1".to_vec()));
    assert_eq!(
        commit_units(&*d, vec![fenced_state(&new_fence, b"new")]).await,
        vec![UnitOutcome::Applied(vec![])]
    );

    let again = claimed(&*c, &a.id, &new).await;
    assert_eq!(
        again.generation,
        new_fence.generation + 1,
        "a claim by the holder"
    );
    assert!(matches!(
        commit_units(&*d, vec![fenced_state(&new_fence, b"stale")])
            .await
            .as_slice(),
        [UnitOutcome::Fenced { .. }]
    ));
    assert_eq!(state(&*d, &a.id).await, Some(b"new".to_vec()));
}

/// In one batch, the unit of an actor claimed away is refused while the units of the other
/// actors are applied.
pub async fn one_fenced_actor_does_not_fail_the_batch(h: &dyn ClusterHarness) {
    const CHECK: &str = "one_fenced_actor_does_not_fail_the_batch";
    let (d, c) = open(h).await;
    let (x, y, z) = (
        meta(CHECK, 1, "x"),
        meta(CHECK, 2, "y"),
        meta(CHECK, 3, "z"),
    );
    for m in [&x, &y, &z] {
        create(&*d, m).await;
    }
    let me = register(&*c, &format!("{CHECK}-me"), LONG).await;
    let other = register(&*c, &format!("{CHECK}-other"), LONG).await;
    let (fx, fy, fz) = (
        claimed(&*c, &x.id, &me).await,
        claimed(&*c, &y.id, &me).await,
        claimed(&*c, &z.id, &me).await,
    );
    assert!(c.release(&fy, &me).await.expect("release failed"));
    let fy_new = claimed(&*c, &y.id, &other).await;

    let outcomes = commit_units(
        &*d,
        vec![
            fenced_state(&fx, b"x"),
            fenced_state(&fy, b"y from the old holder"),
            fenced_state(&fz, b"z"),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            UnitOutcome::Applied(vec![]),
            UnitOutcome::Fenced {
                current: Some(fy_new.generation)
            },
            UnitOutcome::Applied(vec![]),
        ]
    );
    assert_eq!(state(&*d, &x.id).await, Some(b"x".to_vec()));
    assert_eq!(state(&*d, &y.id).await, None);
    assert_eq!(state(&*d, &z.id).await, Some(b"z".to_vec()));
}

/// A release by the holder at its generation frees the actor at once, for any node; a release
/// by another node or with another generation changes nothing.
pub async fn release_makes_an_actor_claimable_at_once(h: &dyn ClusterHarness) {
    const CHECK: &str = "release_makes_an_actor_claimable_at_once";
    let (d, c) = open(h).await;
    let a = meta(CHECK, 1, "x");
    create(&*d, &a).await;
    let holder = register(&*c, &format!("{CHECK}-holder"), LONG).await;
    let next = register(&*c, &format!("{CHECK}-next"), LONG).await;
    let fence = claimed(&*c, &a.id, &holder).await;

    let wrong_generation = Fence {
        generation: fence.generation - 1,
        ..fence.clone()
    };
    assert!(
        !c.release(&wrong_generation, &holder)
            .await
            .expect("release failed")
    );
    assert!(
        !c.release(&fence, &next).await.expect("release failed"),
        "released by a non-holder"
    );
    assert!(matches!(claim(&*c, &a.id, &next).await, Claim::OwnedBy(_)));

    assert!(c.release(&fence, &holder).await.expect("release failed"));
    assert_eq!(c.owner(&a.id).await.expect("owner failed"), None);
    assert!(
        !c.release(&fence, &holder).await.expect("release failed"),
        "released twice"
    );
    let taken = claimed(&*c, &a.id, &next).await;
    assert_eq!(taken.generation, fence.generation + 1);
    assert!(matches!(
        commit_units(&*d, vec![fenced_state(&fence, b"after release")])
            .await
            .as_slice(),
        [UnitOutcome::Fenced { .. }]
    ));
}

/// Registration, heartbeats and membership; a lease that ran out on the store's clock makes
/// the heartbeat answer `Expired`, the node's claims fail, its actors claimable by others;
/// a deregistered node is gone at once.
pub async fn expired_lease_is_detected(h: &dyn ClusterHarness) {
    const CHECK: &str = "expired_lease_is_detected";
    let (d, c) = open(h).await;
    let a = meta(CHECK, 1, "x");
    create(&*d, &a).await;
    let info = NodeInfo::new(format!("{CHECK}-short"), "127.0.0.1:1").public_url("http://x");
    let lease = c.register(&info, LONG).await.expect("register failed");
    let short = lease.incarnation;
    let other = register(&*c, &format!("{CHECK}-other"), LONG).await;
    let members = c.live_members().await.expect("live_members failed");
    let listed = members.iter().find(|m| m.incarnation == short);
    assert_eq!(listed.map(|m| &m.info), Some(&info), "{members:?}");
    assert!(members.iter().any(|m| m.incarnation == other));
    let Heartbeat::Renewed { expires_at_ms } = c.heartbeat(&short, LONG).await.expect("heartbeat")
    else {
        panic!("a running lease was not renewed");
    };
    assert!(expires_at_ms >= lease.expires_at_ms);
    let fence = claimed(&*c, &a.id, &short).await;

    // A last renewal for one millisecond, then wait for the store to see it run out.
    let renewed = c.heartbeat(&short, Duration::from_millis(1)).await;
    assert!(
        matches!(renewed, Ok(Heartbeat::Renewed { .. })),
        "{renewed:?}"
    );
    wait_until_dead(&*c, &short).await;
    assert_eq!(
        c.heartbeat(&short, LONG).await.expect("heartbeat"),
        Heartbeat::Expired
    );
    assert_eq!(claim(&*c, &a.id, &short).await, Claim::Expired);
    let owner = c.owner(&a.id).await.expect("owner failed");
    assert!(
        owner.is_some_and(|o| o.node == short && !o.alive),
        "the holder is dead"
    );
    let taken = claimed(&*c, &a.id, &other).await;
    assert!(taken.generation > fence.generation);
    assert!(matches!(
        commit_units(&*d, vec![fenced_state(&fence, b"late")])
            .await
            .as_slice(),
        [UnitOutcome::Fenced { .. }]
    ));

    c.deregister(&other).await.expect("deregister failed");
    c.deregister(&other).await.expect("deregistering twice");
    assert_eq!(
        c.heartbeat(&other, LONG).await.expect("heartbeat"),
        Heartbeat::Expired
    );
    let members = c.live_members().await.expect("live_members failed");
    assert!(members.iter().all(|m| m.incarnation != other));
}

/// Actors with a due alarm and no live holder (released, never claimed, holder gone) are
/// orphans, ordered by their earliest due alarm, at most `limit`; a live holder's actor or an
/// alarm in the future is not. Claiming an orphan adopts it.
pub async fn due_orphans_are_found(h: &dyn ClusterHarness) {
    const CHECK: &str = "due_orphans_are_found";
    let (d, c) = open(h).await;
    let held = register(&*c, &format!("{CHECK}-held"), LONG).await;
    let gone = register(&*c, &format!("{CHECK}-gone"), LONG).await;
    let metas: Vec<_> = (1..=5).map(|n| meta(CHECK, n, n.to_string())).collect();
    let [released, never, dead, live, future] = metas.as_slice() else {
        unreachable!("five actors");
    };
    for m in &metas {
        create(&*d, m).await;
    }
    // Before 1970: due whatever the clock, and before any alarm other checks leave.
    let due = |at: i64| alarm("due", at, b"");
    d.commit(vec![
        put_alarm(&released.id, &due(-3000)),
        put_alarm(&never.id, &due(-2000)),
        put_alarm(&dead.id, &due(-1000)),
        put_alarm(&dead.id, &alarm("later", -500, b"")),
        put_alarm(&live.id, &due(-4000)),
        put_alarm(&future.id, &alarm("future", 4_000_000_000_000, b"")),
    ])
    .await
    .expect("commit failed");
    let f = claimed(&*c, &released.id, &held).await;
    assert!(c.release(&f, &held).await.expect("release failed"));
    claimed(&*c, &dead.id, &gone).await;
    claimed(&*c, &live.id, &held).await;
    claimed(&*c, &future.id, &gone).await;
    c.deregister(&gone).await.expect("deregister failed");

    let ours = |found: Vec<ActorId>| -> Vec<ActorId> {
        found
            .into_iter()
            .filter(|id| metas.iter().any(|m| m.id == *id))
            .collect()
    };
    let found = c.due_orphans(100_000).await.expect("due_orphans failed");
    assert_eq!(
        ours(found),
        vec![released.id.clone(), never.id.clone(), dead.id.clone()]
    );
    let first_two = c.due_orphans(2).await.expect("due_orphans failed");
    assert_eq!(
        first_two,
        vec![released.id.clone(), never.id.clone()],
        "the limit"
    );

    claimed(&*c, &never.id, &held).await;
    let found = c.due_orphans(100_000).await.expect("due_orphans failed");
    assert_eq!(
        ours(found),
        vec![released.id.clone(), dead.id.clone()],
        "an adopted orphan"
    );
}

/// Claiming an actor that does not exist is `NotFound`; so is nothing else.
pub async fn claiming_an_unknown_actor_is_not_found(h: &dyn ClusterHarness) {
    const CHECK: &str = "claiming_an_unknown_actor_is_not_found";
    let (_, c) = open(h).await;
    let me = register(&*c, &format!("{CHECK}-me"), LONG).await;
    let nobody = ActorId::new(format!("{CHECK}-nobody"));
    let result = c.claim(&nobody, &me).await;
    assert!(
        matches!(result, Err(crate::StorageError::NotFound(ref id)) if *id == nobody),
        "{result:?}"
    );
    assert_eq!(c.owner(&nobody).await.expect("owner failed"), None);
}

/// The one list of cluster checks, as [`__conformance_checks`](crate::__conformance_checks)
/// is for the driver checks.
#[doc(hidden)]
#[macro_export]
macro_rules! __cluster_checks {
    ($callback:ident ! $args:tt) => {
        $crate::$callback! {
            $args
            claim_is_unique_under_concurrent_claimers
            old_generation_is_fenced_after_a_claim
            one_fenced_actor_does_not_fail_the_batch
            release_makes_an_actor_claimable_at_once
            expired_lease_is_detected
            due_orphans_are_found
            claiming_an_unknown_actor_is_not_found
        }
    };
}

/// Generates one `#[test]` per cluster check, each on a fresh [`ClusterHarness`] (an
/// expression evaluated inside the test's Tokio runtime, which may `.await`).
///
/// ```
/// mod cluster {
///     footlights_storage::cluster_conformance_tests!(
///         footlights_storage::conformance::LocalClusterHarness::new()
///     );
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! cluster_conformance_tests {
    ($harness:expr) => {
        $crate::__cluster_checks!(__conformance_test_fns!(($harness)));
    };
}

/// Runs every cluster check, one after another, on the store of `harness`.
///
/// # Panics
///
/// When a check fails.
pub async fn run_cluster_checks(harness: &dyn ClusterHarness) {
    crate::__cluster_checks!(__conformance_run_all!((harness)));
}

/// The [`ClusterHarness`] of [`LocalCluster`](crate::cluster::LocalCluster) over a
/// [`MemoryDriver`](crate::MemoryDriver): every `open` is another clone of both.
#[derive(Debug, Clone)]
pub struct LocalClusterHarness {
    driver: crate::MemoryDriver,
    cluster: crate::cluster::LocalCluster,
}

impl LocalClusterHarness {
    /// A harness over a new, empty store with no members.
    pub fn new() -> Self {
        let driver = crate::MemoryDriver::new();
        let cluster = crate::cluster::LocalCluster::new(Arc::new(driver.clone()));
        LocalClusterHarness { driver, cluster }
    }
}

impl Default for LocalClusterHarness {
    fn default() -> Self {
        LocalClusterHarness::new()
    }
}

impl ClusterHarness for LocalClusterHarness {
    fn open(&self) -> BoxFuture<'_, Result<Opened>> {
        Box::pin(async move {
            let driver: Arc<dyn Driver> = Arc::new(self.driver.clone());
            let cluster: Arc<dyn Cluster> = Arc::new(self.cluster.clone());
            Ok((driver, cluster))
        })
    }
}
