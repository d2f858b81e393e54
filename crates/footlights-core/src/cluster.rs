//! Running as one node of several: this node's lease, the actors it claimed, and where the
//! other nodes' actors live.
//!
//! The registry of a clustered node (see [`RegistryBuilder::cluster`]) holds one
//! [`Membership`]. It registers the node, renews its lease (a background task of the registry),
//! claims each actor before an instance of it starts and releases it when the instance stops.
//! A claim bumps the actor's generation in storage, and every write of the instance is fenced
//! with that generation, so once another node claims the actor, nothing the old instance still
//! tries to commit is accepted. The lease only decides *who may claim*; the fence is what keeps
//! a paused or partitioned node from overwriting a newer owner.
//!
//! This module imports nothing else of the crate; the registry uses it.
//!
//! [`RegistryBuilder::cluster`]: crate::RegistryBuilder::cluster

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use footlights_protocol::{ActionError, ActorId};
use footlights_storage::StorageError;
use footlights_storage::cluster::{Claim, Cluster, Heartbeat, NodeIncarnation, NodeInfo};

/// The header a node puts on requests it forwards to another node (the actor's owner). A node
/// never forwards such a request again.
pub const FORWARDED_HEADER: &str = "x-footlights-forwarded";

/// How many locks claims are striped over.
const CLAIM_STRIPES: usize = 64;

/// The stripe of `id` among `n`.
fn stripe(id: &ActorId, n: usize) -> usize {
    use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id.as_str());
    usize::try_from(hash % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
}

/// The lease a node takes unless told otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// How a node takes part in a cluster: who it is, how its peers reach it, and its lease.
///
/// ```
/// use std::time::Duration;
/// use footlights_core::ClusterConfig;
/// use footlights_storage::cluster::NodeInfo;
///
/// let config = ClusterConfig::new(NodeInfo::new("node-a", "10.0.0.5:7001"))
///     .lease(Duration::from_secs(2));
/// assert_eq!(config.heartbeat_every(), Duration::from_millis(400));
/// assert_eq!(config.self_fence_after(), Duration::from_millis(1500));
/// ```
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    node: NodeInfo,
    lease: Duration,
}

impl ClusterConfig {
    /// A node called `node.name`, reached by its peers at `node.peer_addr`, with the default
    /// lease of ten seconds.
    pub fn new(node: NodeInfo) -> Self {
        ClusterConfig {
            node,
            lease: DEFAULT_LEASE,
        }
    }

    /// Sets the node lease: how long after its last renewal a silent node still owns its
    /// actors. Shorter leases mean faster failover and more database traffic. Clamped to at
    /// least 200 ms.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(200));
        self
    }

    /// The node's name and peer address.
    pub fn node(&self) -> &NodeInfo {
        &self.node
    }

    /// The node lease.
    pub fn lease_duration(&self) -> Duration {
        self.lease
    }

    /// How often the lease is renewed: a fifth of it, so four renewals in a row can fail
    /// before it runs out.
    pub fn heartbeat_every(&self) -> Duration {
        self.lease / 5
    }

    /// How long after sending its last successful renewal the node stops serving on its own
    /// (three quarters of the lease): it cannot know whether the lease still holds, and other
    /// nodes may claim its actors once it ends.
    pub fn self_fence_after(&self) -> Duration {
        self.lease * 3 / 4
    }
}

/// Where an actor is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Here: this node holds the actor's claim (or runs without a cluster).
    Local,
    /// On another live node, reached at `peer_addr`.
    Remote {
        /// The owner's node incarnation.
        node: String,
        /// The owner's peer address (`host:port`), as it registered it.
        peer_addr: String,
    },
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// The lease runs on.
    Renewed,
    /// The lease had ended: others may own this node's actors by now.
    Lost,
    /// The database did not answer; the lease may still hold until the self-fence deadline.
    Failed,
}

/// A cached [`Placement::Remote`].
struct Route {
    node: NodeIncarnation,
    peer_addr: String,
    found: Instant,
}

/// Routes kept before the stale ones are swept.
const ROUTES_KEPT: usize = 16 * 1024;

struct Lease {
    incarnation: NodeIncarnation,
    /// Serving stops at this instant unless a renewal moves it.
    serve_until: Instant,
}

/// This node's membership: see the [module](self) docs.
pub(crate) struct Membership {
    cluster: Arc<dyn Cluster>,
    config: ClusterConfig,
    lease: Mutex<Lease>,
    /// The claims this node holds (taken and not released), by generation. The instance of
    /// an actor fences its writes with the generation held for it.
    held: Mutex<HashMap<ActorId, u64>>,
    /// Claims of one actor are taken one at a time on this node (by stripe of the actor id),
    /// so concurrent requests do not claim it twice and leave an instance with a superseded
    /// generation.
    claiming: Vec<tokio::sync::Mutex<()>>,
    /// Peer addresses of the other nodes, by incarnation.
    peers: Mutex<HashMap<NodeIncarnation, String>>,
    /// The live nodes as last read (after each lease renewal), for forwarded requests to
    /// notice that the node they wait on is gone.
    live: tokio::sync::watch::Sender<Arc<HashSet<String>>>,
    /// Where actors held by other nodes were last found: owner, peer address, and when. Used
    /// for a renewal interval (and while the owner is live), so that forwarding costs no
    /// database round trip per request.
    routes: Mutex<HashMap<ActorId, Route>>,
    /// Network clients to the other nodes by peer address, for in-process calls to actors
    /// they hold.
    peer_clients: Mutex<HashMap<String, footlights_client::Client>>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("node", &self.config.node.name)
            .field("incarnation", &self.incarnation().as_str())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn storage(e: &StorageError) -> ActionError {
    if e.is_unavailable() {
        ActionError::storage_unavailable()
    } else {
        ActionError::internal(format!("cluster: {e}"))
    }
}

/// The answer while this node cannot serve: clients try again (through another node).
pub(crate) fn not_serving() -> ActionError {
    ActionError::new(
        "actor",
        "restarting",
        "this node is rejoining its cluster; try again",
    )
}

/// The answer when an actor turned out to be owned elsewhere after all.
fn moved() -> ActionError {
    ActionError::new(
        "actor",
        "restarting",
        "the actor is served by another node now; try again",
    )
}

impl Membership {
    /// Registers this node and returns its membership.
    pub(crate) async fn join(
        cluster: Arc<dyn Cluster>,
        config: ClusterConfig,
    ) -> Result<Membership, StorageError> {
        let sent = Instant::now();
        let lease = cluster.register(&config.node, config.lease).await?;
        tracing::info!(node = %config.node.name, incarnation = %lease.incarnation, "joined the cluster");
        Ok(Membership {
            lease: Mutex::new(Lease {
                incarnation: lease.incarnation,
                serve_until: sent + config.self_fence_after(),
            }),
            cluster,
            config,
            held: Mutex::default(),
            claiming: (0..CLAIM_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            peers: Mutex::default(),
            live: tokio::sync::watch::Sender::new(Arc::default()),
            peer_clients: Mutex::default(),
            routes: Mutex::default(),
        })
    }

    /// The configuration this node joined with.
    pub(crate) fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// This node's current incarnation.
    pub(crate) fn incarnation(&self) -> NodeIncarnation {
        lock(&self.lease).incarnation.clone()
    }

    /// Whether the lease is known to hold: the last successful renewal was sent less than
    /// [`ClusterConfig::self_fence_after`] ago.
    pub(crate) fn serving(&self) -> bool {
        Instant::now() < lock(&self.lease).serve_until
    }

    /// Renews the lease once.
    pub(crate) async fn heartbeat(&self) -> Beat {
        let me = self.incarnation();
        let sent = Instant::now();
        // A database that stops answering (rather than refusing) must not stall the renewals:
        // the self-fence deadline is checked after each one.
        let renewal = self.cluster.heartbeat(&me, self.config.lease);
        let answer = match tokio::time::timeout(self.config.heartbeat_every(), renewal).await {
            Ok(answer) => answer,
            Err(_) => {
                tracing::warn!(node = %self.config.node.name, "lease renewal timed out");
                return Beat::Failed;
            }
        };
        match answer {
            Ok(Heartbeat::Renewed { .. }) => {
                let mut lease = lock(&self.lease);
                if lease.incarnation == me {
                    lease.serve_until = sent + self.config.self_fence_after();
                }
                Beat::Renewed
            }
            Ok(Heartbeat::Expired) => {
                lock(&self.lease).serve_until = sent;
                Beat::Lost
            }
            Err(e) => {
                tracing::warn!(node = %self.config.node.name, error = %e, "lease renewal failed");
                Beat::Failed
            }
        }
    }

    /// Stops serving at once (the lease is gone or the node is leaving).
    pub(crate) fn stop_serving(&self) {
        lock(&self.lease).serve_until = Instant::now();
    }

    /// Registers again as a new incarnation, after the old lease ended. Claims of the old
    /// incarnation are forgotten: other nodes may hold those actors now.
    pub(crate) async fn rejoin(&self) -> Result<(), StorageError> {
        let sent = Instant::now();
        let lease = self
            .cluster
            .register(&self.config.node, self.config.lease)
            .await?;
        lock(&self.held).clear();
        tracing::info!(node = %self.config.node.name, incarnation = %lease.incarnation, "joined the cluster again as a new incarnation");
        *lock(&self.lease) = Lease {
            incarnation: lease.incarnation,
            serve_until: sent + self.config.self_fence_after(),
        };
        Ok(())
    }

    /// Finds where `id` is served, claiming it for this node when nobody live owns it.
    pub(crate) async fn place(&self, id: &ActorId) -> Result<Placement, ActionError> {
        if let Some(placement) = self.cached_route(id) {
            return Ok(placement);
        }
        match self.claim(id).await? {
            Claim::Claimed(_) => {
                lock(&self.routes).remove(id);
                Ok(Placement::Local)
            }
            Claim::OwnedBy(owner) => {
                let peer_addr = self.peer_addr(&owner.node).await?;
                self.remember_route(id, &owner.node, &peer_addr);
                Ok(Placement::Remote {
                    node: owner.node.as_str().to_owned(),
                    peer_addr,
                })
            }
            Claim::Expired => Err(not_serving()),
        }
    }

    /// A route found less than a renewal interval ago to an owner that is still live.
    fn cached_route(&self, id: &ActorId) -> Option<Placement> {
        let fresh_for = self.config.heartbeat_every();
        let routes = lock(&self.routes);
        let route = routes.get(id)?;
        let live = self.live.borrow();
        if route.found.elapsed() < fresh_for && live.contains(route.node.as_str()) {
            Some(Placement::Remote {
                node: route.node.as_str().to_owned(),
                peer_addr: route.peer_addr.clone(),
            })
        } else {
            None
        }
    }

    fn remember_route(&self, id: &ActorId, node: &NodeIncarnation, peer_addr: &str) {
        let mut routes = lock(&self.routes);
        if routes.len() >= ROUTES_KEPT {
            let fresh_for = self.config.heartbeat_every();
            routes.retain(|_, r| r.found.elapsed() < fresh_for);
        }
        routes.insert(
            id.clone(),
            Route {
                node: node.clone(),
                peer_addr: peer_addr.to_owned(),
                found: Instant::now(),
            },
        );
    }

    /// Forgets where `id` was found (its owner did not answer): the next placement asks the
    /// database.
    pub(crate) fn forget_route(&self, id: &ActorId) {
        lock(&self.routes).remove(id);
    }

    /// The generation a starting instance of `id` fences its writes with: that of the claim
    /// this node holds, taken now if need be.
    pub(crate) async fn claim_for_start(&self, id: &ActorId) -> Result<u64, ActionError> {
        match self.claim(id).await? {
            Claim::Claimed(fence) => Ok(fence.generation),
            Claim::OwnedBy(owner) => {
                tracing::debug!(%id, owner = %owner.node, "actor owned by another node; not started here");
                Err(moved())
            }
            Claim::Expired => Err(not_serving()),
        }
    }

    /// The claim this node holds on `id`, or a new one (one at a time per actor).
    async fn claim(&self, id: &ActorId) -> Result<Claim, ActionError> {
        if !self.serving() {
            return Err(not_serving());
        }
        let held = |this: &Self| {
            lock(&this.held).get(id).map(|&generation| {
                Claim::Claimed(footlights_storage::Fence {
                    actor: id.clone(),
                    generation,
                })
            })
        };
        if let Some(claim) = held(self) {
            return Ok(claim);
        }
        let stripe = stripe(id, self.claiming.len());
        let _one_at_a_time = self.claiming[stripe].lock().await;
        if let Some(claim) = held(self) {
            return Ok(claim);
        }
        let me = self.incarnation();
        let claim = self
            .cluster
            .claim(id, &me)
            .await
            .map_err(|e| claim_error(id, &e))?;
        match &claim {
            Claim::Claimed(fence) => {
                lock(&self.held).insert(id.clone(), fence.generation);
            }
            Claim::Expired => self.stop_serving(),
            Claim::OwnedBy(_) => {}
        }
        Ok(claim)
    }

    /// Gives up the claim on `id` taken at `generation`, so that any node may claim it at once.
    pub(crate) async fn release(&self, id: &ActorId, generation: u64) {
        {
            let mut held = lock(&self.held);
            if held.get(id) == Some(&generation) {
                held.remove(id);
            }
        }
        let me = self.incarnation();
        let fence = footlights_storage::Fence {
            actor: id.clone(),
            generation,
        };
        match self.cluster.release(&fence, &me).await {
            Ok(released) => tracing::trace!(%id, generation, released, "claim released"),
            // The lease runs out in the end: the claim lapses with it.
            Err(e) => tracing::warn!(%id, error = %e, "claim not released"),
        }
    }

    /// Leaves the cluster: other nodes stop counting this one as live at once.
    pub(crate) async fn leave(&self) {
        self.stop_serving();
        let me = self.incarnation();
        if let Err(e) = self.cluster.deregister(&me).await {
            tracing::warn!(node = %self.config.node.name, error = %e, "leaving the cluster failed; the lease will run out");
        }
    }

    /// Deletes the rows of nodes whose lease ended ten leases ago or more.
    pub(crate) async fn forget_dead_nodes(&self) {
        match self.cluster.forget_dead(self.config.lease * 10).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(nodes = n, "forgot nodes whose lease ended long ago"),
            Err(e) => tracing::debug!(error = %e, "forgetting dead nodes failed"),
        }
    }

    /// Actors with due alarms whose owner is not live, at most `limit`.
    pub(crate) async fn orphans(&self, limit: usize) -> Result<Vec<ActorId>, StorageError> {
        self.cluster.due_orphans(limit).await
    }

    async fn peer_addr(&self, node: &NodeIncarnation) -> Result<String, ActionError> {
        if let Some(addr) = lock(&self.peers).get(node) {
            return Ok(addr.clone());
        }
        self.refresh_members().await.map_err(|e| storage(&e))?;
        lock(&self.peers).get(node).cloned().ok_or_else(moved)
    }

    /// A network client to the node at `peer_addr`, for calls of the in-process client to
    /// actors that node holds. Its requests carry [`FORWARDED_HEADER`] (and no token).
    pub(crate) fn peer_client(
        &self,
        peer_addr: &str,
    ) -> Result<footlights_client::Client, ActionError> {
        let mut clients = lock(&self.peer_clients);
        if let Some(client) = clients.get(peer_addr) {
            return Ok(client.clone());
        }
        let client = footlights_client::Client::builder(&format!("http://{peer_addr}"))
            .header(FORWARDED_HEADER, "1")
            .build()
            .map_err(|e| ActionError::internal(format!("a client for peer {peer_addr}: {e}")))?;
        clients.insert(peer_addr.to_owned(), client.clone());
        Ok(client)
    }

    /// Reads the live members again: their peer addresses, and who is live for
    /// [`gone`](Self::gone).
    pub(crate) async fn refresh_members(&self) -> Result<(), StorageError> {
        let members = self.cluster.live_members().await?;
        let live: HashSet<String> = members
            .iter()
            .map(|m| m.incarnation.as_str().to_owned())
            .collect();
        {
            let mut peers = lock(&self.peers);
            peers.clear();
            for m in members {
                peers.insert(m.incarnation, m.info.peer_addr);
            }
        }
        self.live.send_if_modified(|old| {
            let changed = **old != live;
            if changed {
                *old = Arc::new(live);
            }
            changed
        });
        Ok(())
    }

    /// Resolves once `node` is no longer among the live members, as read after each lease
    /// renewal of this node (so within about a renewal interval of its lease ending).
    pub(crate) fn gone(&self, node: &str) -> impl Future<Output = ()> + Send + 'static {
        let mut live = self.live.subscribe();
        let node = node.to_owned();
        async move {
            loop {
                {
                    let members = live.borrow_and_update();
                    // An empty view was never read: nothing is known to be gone yet.
                    if !members.is_empty() && !members.contains(&node) {
                        return;
                    }
                }
                if live.changed().await.is_err() {
                    // The membership is gone with its registry: so is this node's view.
                    return std::future::pending().await;
                }
            }
        }
    }
}

fn claim_error(id: &ActorId, e: &StorageError) -> ActionError {
    match e {
        StorageError::NotFound(_) => ActionError::actor_not_found(format!("actor {id} not found")),
        other => storage(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use footlights_storage::cluster::LocalCluster;
    use footlights_storage::{ActorKey, ActorMeta, Driver, MemoryDriver};

    async fn two_nodes() -> (Arc<dyn Driver>, Membership, Membership) {
        let driver: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
        let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(driver.clone()));
        let config = |name: &str, addr: &str| {
            ClusterConfig::new(NodeInfo::new(name, addr)).lease(Duration::from_secs(30))
        };
        let a = Membership::join(cluster.clone(), config("a", "127.0.0.1:1"))
            .await
            .unwrap();
        let b = Membership::join(cluster, config("b", "127.0.0.1:2"))
            .await
            .unwrap();
        (driver, a, b)
    }

    async fn actor(driver: &Arc<dyn Driver>, id: &str) -> ActorId {
        let id = ActorId::new(id);
        let meta = ActorMeta::new(
            id.clone(),
            "counter",
            ActorKey::new(vec![id.as_str().to_owned()]),
            0,
        );
        driver.create_actor(&meta).await.unwrap();
        id
    }

    #[tokio::test]
    async fn the_first_node_to_place_an_actor_owns_it_and_the_other_is_sent_there() {
        let (driver, a, b) = two_nodes().await;
        let id = actor(&driver, "x").await;
        assert_eq!(a.place(&id).await.unwrap(), Placement::Local);
        match b.place(&id).await.unwrap() {
            Placement::Remote { peer_addr, node } => {
                assert_eq!(peer_addr, "127.0.0.1:1");
                assert_eq!(node, a.incarnation().as_str());
            }
            Placement::Local => panic!("both nodes placed the actor locally"),
        }
        // The claim taken by `place` is the one the instance starts with.
        let generation = a.claim_for_start(&id).await.unwrap();
        assert_eq!(
            driver.actor(&id).await.unwrap().unwrap().generation,
            generation
        );
        // Once released, the other node takes it, with a newer generation: once it stops
        // trusting the route it found (for a renewal interval, or until its owner does not
        // answer and the gateway forgets it).
        a.release(&id, generation).await;
        assert!(matches!(
            b.place(&id).await.unwrap(),
            Placement::Remote { .. }
        ));
        b.forget_route(&id);
        assert_eq!(b.place(&id).await.unwrap(), Placement::Local);
        let newer = b.claim_for_start(&id).await.unwrap();
        assert!(newer > generation);
        assert!(a.claim_for_start(&id).await.is_err());
    }

    #[tokio::test]
    async fn a_node_that_stopped_serving_refuses_and_a_rejoin_serves_again() {
        let (driver, a, _b) = two_nodes().await;
        let id = actor(&driver, "y").await;
        let before = a.incarnation();
        a.stop_serving();
        let e = a.place(&id).await.unwrap_err();
        assert_eq!((e.group(), e.code()), ("actor", "restarting"));
        a.rejoin().await.unwrap();
        assert_ne!(a.incarnation(), before);
        assert_eq!(a.place(&id).await.unwrap(), Placement::Local);
    }

    #[tokio::test]
    async fn an_unknown_actor_is_not_found() {
        let (_driver, a, _b) = two_nodes().await;
        let e = a.place(&ActorId::new("nobody")).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }
}
