//! [`LocalCluster`]: membership and placement kept in this process, over any driver.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::lock::Mutex;

use super::{Claim, Cluster, Heartbeat, Lease, Member, NodeIncarnation, NodeInfo, Owner};
use crate::{ActorId, Driver, Fence, Result, StorageError, Unit, UnitOutcome, Write};

/// A [`Cluster`] whose members are the nodes registered through it, in this process: the
/// single-node form, for a store only one process uses (SQLite, memory).
///
/// Leases run on this process's monotonic clock. A claim bumps the actor's generation through
/// the driver, as a unit fenced with the generation it read, so it is a compare-and-set on the
/// stored generation: the fence the claim returns is the one the driver checks, and the
/// writes of any earlier instance are refused from then on, exactly as with a shared store.
/// Claims are serialized by one lock; reads of the membership take it too, and it is held
/// across the driver call of a claim only.
///
/// Clones share the same members and owners.
///
/// ```
/// # futures::executor::block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use footlights_storage::cluster::{Claim, Cluster, LocalCluster, NodeInfo};
/// use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, MemoryDriver};
///
/// let driver = Arc::new(MemoryDriver::new());
/// let cluster = LocalCluster::new(driver.clone());
/// let meta = ActorMeta::new(ActorId::new("a1"), "counter", ActorKey::from("x"), 0);
/// driver.create_actor(&meta).await?;
///
/// let ttl = Duration::from_secs(10);
/// let a = cluster.register(&NodeInfo::new("a", "127.0.0.1:7001"), ttl).await?.incarnation;
/// let b = cluster.register(&NodeInfo::new("b", "127.0.0.1:7002"), ttl).await?.incarnation;
/// assert!(matches!(cluster.claim(&meta.id, &a).await?, Claim::Claimed(f) if f.generation == 1));
/// assert!(matches!(cluster.claim(&meta.id, &b).await?, Claim::OwnedBy(o) if o.node == a));
/// # Ok::<(), footlights_storage::StorageError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct LocalCluster {
    /// The store whose generations the claims bump.
    driver: Arc<dyn Driver>,
    /// Shared by clones. An async lock: a claim holds it across its driver call, so that two
    /// claims of one actor cannot both see it free.
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCluster")
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Registered nodes, alive or not, until they deregister.
    nodes: BTreeMap<NodeIncarnation, Node>,
    /// The holder of each claimed actor, until it releases it.
    owners: HashMap<ActorId, NodeIncarnation>,
}

struct Node {
    info: NodeInfo,
    /// When the lease runs out, on the monotonic clock.
    expires: Instant,
    /// The same moment on the wall clock, as reported.
    expires_at_ms: i64,
}

impl State {
    fn alive(&self, node: &NodeIncarnation, now: Instant) -> bool {
        self.nodes.get(node).is_some_and(|n| n.expires > now)
    }
}

/// Now plus `ttl` on both clocks.
fn deadline(ttl: Duration) -> (Instant, i64) {
    let wall = SystemTime::now() + ttl;
    let ms = wall
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    (Instant::now() + ttl, ms)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl LocalCluster {
    /// A cluster with no members over `driver`, the store whose actors it places.
    pub fn new(driver: Arc<dyn Driver>) -> Self {
        LocalCluster {
            driver,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Bumps the stored generation of `actor` by one, as a compare-and-set: a unit fenced
    /// with the generation just read. Another writer bumping it in between (a runtime that
    /// starts actors without claiming them) makes the unit fenced, and the loop reads again.
    async fn bump(&self, actor: &ActorId) -> Result<u64> {
        loop {
            let Some(meta) = self.driver.actor(actor).await? else {
                return Err(StorageError::NotFound(actor.clone()));
            };
            let unit = Unit::fenced(
                actor.clone(),
                meta.generation,
                vec![Write::BumpGeneration {
                    actor: actor.clone(),
                }],
            );
            let outcome = self.driver.commit_units(vec![unit]).await?;
            match outcome.first() {
                Some(UnitOutcome::Applied(_)) => return Ok(meta.generation + 1),
                Some(UnitOutcome::Fenced { current: Some(_) }) => continue,
                Some(UnitOutcome::Fenced { current: None }) => {
                    return Err(StorageError::NotFound(actor.clone()));
                }
                None => return Err(StorageError::backend(NoOutcome)),
            }
        }
    }
}

/// The driver answered a batch of one unit with no outcome.
#[derive(Debug, thiserror::Error)]
#[error("the driver reported no outcome for a claim's generation bump")]
struct NoOutcome;

impl Cluster for LocalCluster {
    fn register<'a>(&'a self, node: &'a NodeInfo, ttl: Duration) -> BoxFuture<'a, Result<Lease>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let mut incarnation = NodeIncarnation::fresh(&node.name);
            while state.nodes.contains_key(&incarnation) {
                incarnation = NodeIncarnation::fresh(&node.name);
            }
            let (expires, expires_at_ms) = deadline(ttl);
            state.nodes.insert(
                incarnation.clone(),
                Node {
                    info: node.clone(),
                    expires,
                    expires_at_ms,
                },
            );
            Ok(Lease {
                incarnation,
                expires_at_ms,
            })
        })
    }

    fn heartbeat<'a>(
        &'a self,
        me: &'a NodeIncarnation,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Heartbeat>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            match state.nodes.get_mut(me) {
                Some(node) if node.expires > now => {
                    (node.expires, node.expires_at_ms) = deadline(ttl);
                    Ok(Heartbeat::Renewed {
                        expires_at_ms: node.expires_at_ms,
                    })
                }
                _ => Ok(Heartbeat::Expired),
            }
        })
    }

    fn live_members(&self) -> BoxFuture<'_, Result<Vec<Member>>> {
        Box::pin(async move {
            let state = self.state.lock().await;
            let now = Instant::now();
            Ok(state
                .nodes
                .iter()
                .filter(|(_, node)| node.expires > now)
                .map(|(incarnation, node)| Member {
                    incarnation: incarnation.clone(),
                    info: node.info.clone(),
                    expires_at_ms: node.expires_at_ms,
                })
                .collect())
        })
    }

    fn claim<'a>(
        &'a self,
        actor: &'a ActorId,
        me: &'a NodeIncarnation,
    ) -> BoxFuture<'a, Result<Claim>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let now = Instant::now();
            if !state.alive(me, now) {
                return Ok(Claim::Expired);
            }
            if let Some(holder) = state.owners.get(actor)
                && holder != me
                && state.alive(holder, now)
            {
                let holder = holder.clone();
                let Some(meta) = self.driver.actor(actor).await? else {
                    return Err(StorageError::NotFound(actor.clone()));
                };
                return Ok(Claim::OwnedBy(Owner {
                    node: holder,
                    generation: meta.generation,
                    alive: true,
                }));
            }
            let generation = self.bump(actor).await?;
            state.owners.insert(actor.clone(), me.clone());
            Ok(Claim::Claimed(Fence {
                actor: actor.clone(),
                generation,
            }))
        })
    }

    fn owner<'a>(&'a self, actor: &'a ActorId) -> BoxFuture<'a, Result<Option<Owner>>> {
        Box::pin(async move {
            let holder = {
                let state = self.state.lock().await;
                state
                    .owners
                    .get(actor)
                    .map(|node| (node.clone(), state.alive(node, Instant::now())))
            };
            let Some((node, alive)) = holder else {
                return Ok(None);
            };
            Ok(self.driver.actor(actor).await?.map(|meta| Owner {
                node,
                generation: meta.generation,
                alive,
            }))
        })
    }

    fn release<'a>(
        &'a self,
        fence: &'a Fence,
        me: &'a NodeIncarnation,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            if state.owners.get(&fence.actor) != Some(me) {
                return Ok(false);
            }
            let current = self.driver.actor(&fence.actor).await?;
            if current.map(|m| m.generation) != Some(fence.generation) {
                return Ok(false);
            }
            state.owners.remove(&fence.actor);
            Ok(true)
        })
    }

    fn due_orphans(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ActorId>>> {
        Box::pin(async move {
            let now = now_ms();
            // Ordered by time: the first alarm seen of each actor is its earliest.
            let alarms = self.driver.all_alarms().await?;
            let state = self.state.lock().await;
            let instant = Instant::now();
            let mut found: Vec<ActorId> = Vec::new();
            let mut seen = HashSet::new();
            for (actor, alarm) in alarms {
                if found.len() >= limit || alarm.at_ms > now {
                    break;
                }
                let owned = state
                    .owners
                    .get(&actor)
                    .is_some_and(|node| state.alive(node, instant));
                if !owned && seen.insert(actor.clone()) {
                    found.push(actor);
                }
            }
            Ok(found)
        })
    }

    fn deregister<'a>(&'a self, me: &'a NodeIncarnation) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            // Its actors keep it as their (now dead) owner, as on a shared store: claimable.
            state.nodes.remove(me);
            Ok(())
        })
    }
}
