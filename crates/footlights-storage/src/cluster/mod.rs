//! Membership and placement: which nodes are alive, and which node runs each actor.
//!
//! A [`Cluster`] is what lets several server processes share one store without two of them
//! running the same actor at once:
//!
//! - **Membership.** Each process [`register`](Cluster::register)s as a node and gets a lease,
//!   measured on the store's clock (the database's, for a shared store), which it renews with
//!   [`heartbeat`](Cluster::heartbeat). A node whose lease ran out is dead to the others, even
//!   if the process is still running: its heartbeat answers [`Heartbeat::Expired`] and it must
//!   drop every actor it runs and register again, as a new [`NodeIncarnation`].
//! - **Placement.** Before it starts an actor, a node [`claim`](Cluster::claim)s it. A claim
//!   succeeds only while no other live node holds the actor, and bumps the actor's generation:
//!   the [`Fence`] it returns is the one the new instance's writes carry, so from that moment
//!   on every write of the previous owner, fenced with its older generation, is refused by
//!   [`Driver::commit_units`](crate::Driver::commit_units) ([`UnitOutcome::Fenced`](crate::UnitOutcome::Fenced)).
//!   The lease decides who *may* claim; the generation is what guarantees that a stale owner
//!   (paused, cut off, or slow to notice that its lease ran out) can never overwrite what
//!   the new one wrote.
//! - **Hand-over.** An owner that stops an actor [`release`](Cluster::release)s it, so another
//!   node can claim it at once instead of waiting for the lease to run out; a node that shuts
//!   down [`deregister`](Cluster::deregister)s. Actors whose owner died or released them and
//!   that have an alarm due are found by [`due_orphans`](Cluster::due_orphans), so that some
//!   node claims and wakes them.
//!
//! Every driver that can be shared by several processes implements this trait beside
//! [`Driver`](crate::Driver) (the PostgreSQL driver does, with both on the same tables).
//! [`LocalCluster`] is the single-process form, over any driver: the members are the nodes
//! registered in this process, and a claim bumps the generation through the driver, so the
//! fencing is the same as on a shared store.
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use footlights_storage::cluster::{Claim, Cluster, LocalCluster, NodeInfo};
//! use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, MemoryDriver, Unit, UnitOutcome, Write};
//!
//! let driver = Arc::new(MemoryDriver::new());
//! let cluster = LocalCluster::new(driver.clone());
//! let meta = ActorMeta::new(ActorId::new("a1"), "counter", ActorKey::from("x"), 0);
//! driver.create_actor(&meta).await?;
//!
//! let me = cluster.register(&NodeInfo::new("node-a", "127.0.0.1:7000"), Duration::from_secs(10)).await?;
//! let Claim::Claimed(fence) = cluster.claim(&meta.id, &me.incarnation).await? else {
//!     unreachable!("nobody else holds it");
//! };
//! let write = Write::State { actor: meta.id.clone(), bytes: b"1".to_vec() };
//! let unit = Unit { fence: Some(fence.clone()), writes: vec![write] };
//! assert_eq!(driver.commit_units(vec![unit]).await?, vec![UnitOutcome::Applied(vec![])]);
//!
//! // Stopping the actor: it is free for any node at once.
//! assert!(cluster.release(&fence, &me.incarnation).await?);
//! assert_eq!(cluster.owner(&meta.id).await?, None);
//! # Ok::<(), footlights_storage::StorageError>(())
//! # }).unwrap();
//! ```
//!
//! # The node in the fence
//!
//! [`Fence`] holds the actor and its generation only. A store that keeps every committed claim
//! (one PostgreSQL primary, or a synchronous standby) needs nothing more: each claim gets a
//! generation no earlier claim had. After a fail-over to a replica that lost the last
//! claims, two nodes could hold the same generation; a shared driver therefore also records
//! which node claimed the actor, and a driver handle bound to a node (the PostgreSQL driver's
//! `for_node`) refuses units for actors another node holds, at any generation. The node lives
//! in the driver handle rather than in `Fence`, which keeps `Fence` as every existing caller
//! builds it.

mod local;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use crate::{ActorId, Fence, Result};

pub use local::LocalCluster;

/// One run of a node: its name plus when (and in which order) it registered. A restarted
/// process registers again and gets a new incarnation, so it never inherits the claims of its
/// previous run, which other nodes may already have taken over.
///
/// ```
/// use footlights_storage::cluster::NodeIncarnation;
/// let a = NodeIncarnation::fresh("node-a");
/// let b = NodeIncarnation::fresh("node-a");
/// assert_ne!(a, b);
/// assert!(a.as_str().starts_with("node-a:"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIncarnation(Box<str>);

impl NodeIncarnation {
    /// A new incarnation of the node `name`: `name:<unix nanoseconds>:<counter>`, the counter
    /// telling apart incarnations made in one process within one clock tick. Drivers call this
    /// in [`Cluster::register`]; a store that finds the value taken asks for another.
    pub fn fresh(name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        NodeIncarnation(format!("{name}:{nanos}:{n}").into_boxed_str())
    }

    /// An incarnation as stored (for drivers reading it back).
    pub fn from_stored(value: impl Into<String>) -> Self {
        NodeIncarnation(value.into().into_boxed_str())
    }

    /// The incarnation as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeIncarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a node tells the others about itself when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// The node's name (a host name, a pod name); several incarnations share it.
    pub name: String,
    /// Where other nodes reach it (`host:port`), for forwarding requests to the actors it runs.
    pub peer_addr: String,
    /// Where clients may reach it directly, if it says.
    pub public_url: Option<String>,
}

impl NodeInfo {
    /// A node named `name`, reached by other nodes at `peer_addr`, with no public address.
    pub fn new(name: impl Into<String>, peer_addr: impl Into<String>) -> Self {
        NodeInfo {
            name: name.into(),
            peer_addr: peer_addr.into(),
            public_url: None,
        }
    }

    /// With the address clients may use to reach this node directly.
    #[must_use]
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }
}

/// A registration's answer: who the node is now, and until when its lease runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node's new incarnation, which claims, heartbeats and releases name.
    pub incarnation: NodeIncarnation,
    /// When the lease runs out unless renewed, in milliseconds since the Unix epoch on the
    /// store's clock (which may differ from this machine's).
    pub expires_at_ms: i64,
}

/// A heartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease was still running and now runs until `expires_at_ms` (the store's clock).
    Renewed {
        /// The new end of the lease, in milliseconds since the Unix epoch.
        expires_at_ms: i64,
    },
    /// The lease had already run out (or the node deregistered): other nodes may have claimed
    /// its actors. The node must stop every actor it runs and register again.
    Expired,
}

/// A node whose lease is running, as [`Cluster::live_members`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Which run of which node.
    pub incarnation: NodeIncarnation,
    /// What it registered with.
    pub info: NodeInfo,
    /// When its lease runs out unless renewed (milliseconds since the Unix epoch, the store's
    /// clock).
    pub expires_at_ms: i64,
}

/// Who holds an actor, as [`Cluster::owner`] and [`Claim::OwnedBy`] tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The node that claimed it last and has not released it.
    pub node: NodeIncarnation,
    /// The actor's generation: the fence of that node's instance.
    pub generation: u64,
    /// Whether that node's lease is running. A dead owner does not stop a claim.
    pub alive: bool,
}

/// A claim's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Claim {
    /// The actor is the claiming node's: its instance's writes carry this fence (the actor's
    /// generation, just bumped). Load the actor's data after the claim: every write of an
    /// earlier owner either landed before it or is refused.
    Claimed(Fence),
    /// Another live node holds the actor; forward to it.
    OwnedBy(Owner),
    /// The claiming node's own lease has run out (or it never registered, or deregistered): it
    /// must register again before it claims anything.
    Expired,
}

/// Membership and placement for nodes sharing one store. See the [module docs](self).
///
/// Every method is atomic on its own, and every time is the store's clock, so nodes with
/// skewed clocks still agree on whose lease ran out.
pub trait Cluster: Send + Sync + fmt::Debug + 'static {
    /// Registers a new incarnation of the node described by `node`, with a lease of `ttl`.
    fn register<'a>(&'a self, node: &'a NodeInfo, ttl: Duration) -> BoxFuture<'a, Result<Lease>>;

    /// Renews the lease of `me` for `ttl` from now, if it is still running; answers
    /// [`Heartbeat::Expired`] (and renews nothing) if it had run out.
    fn heartbeat<'a>(
        &'a self,
        me: &'a NodeIncarnation,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Heartbeat>>;

    /// The nodes whose lease is running, ordered by incarnation.
    fn live_members(&self) -> BoxFuture<'_, Result<Vec<Member>>>;

    /// Claims `actor` for the node `me`, bumping its generation, unless another node whose
    /// lease is running holds it. A node may claim an actor it holds again (a new instance;
    /// the old one is fenced). Of concurrent claims, exactly one succeeds; the others see it
    /// as [`Claim::OwnedBy`].
    ///
    /// # Errors
    ///
    /// [`StorageError::NotFound`](crate::StorageError::NotFound) if the actor does not exist.
    fn claim<'a>(
        &'a self,
        actor: &'a ActorId,
        me: &'a NodeIncarnation,
    ) -> BoxFuture<'a, Result<Claim>>;

    /// Who holds `actor`, alive or not; `None` if nobody does (never claimed, released, or no
    /// such actor).
    fn owner<'a>(&'a self, actor: &'a ActorId) -> BoxFuture<'a, Result<Option<Owner>>>;

    /// Gives up the actor of `fence`, if `me` holds it at that generation, so that any node
    /// can claim it at once. Answers whether it did. The generation stays: the next claim
    /// bumps it, which fences anything `me` still sends.
    fn release<'a>(
        &'a self,
        fence: &'a Fence,
        me: &'a NodeIncarnation,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Up to `limit` actors with an alarm due (at or before now, on the store's clock) and no
    /// live owner (released, never claimed, or held by a node whose lease ran out), ordered by
    /// their earliest due alarm. Someone must claim and wake them.
    fn due_orphans(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ActorId>>>;

    /// Ends the lease of `me` now: its actors are claimable at once and its heartbeats answer
    /// [`Heartbeat::Expired`]. Deregistering an unknown or expired node is not an error.
    fn deregister<'a>(&'a self, me: &'a NodeIncarnation) -> BoxFuture<'a, Result<()>>;

    /// Forgets nodes whose lease ended more than `ago` ago (their rows would otherwise stay
    /// forever, one per crashed incarnation); returns how many. Their actors stay claimable.
    /// The default forgets nothing, for stores that keep no such rows.
    fn forget_dead(&self, ago: Duration) -> BoxFuture<'_, Result<u64>> {
        let _ = ago;
        Box::pin(async { Ok(0) })
    }
}
