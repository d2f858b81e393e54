//! A clustered registry's background work and placement: renewing the lease (and fencing
//! itself when it cannot), waking actors whose alarms nobody serves, and telling a server
//! where an actor lives.

use super::*;
use crate::cluster::{Beat, Membership, Placement};

/// How many ownerless actors with due alarms one sweep wakes at most.
const ORPHANS_PER_SWEEP: usize = 32;

impl RegistryInner {
    /// This node's membership, when the registry runs in a cluster.
    pub(crate) fn membership(&self) -> Option<&Arc<Membership>> {
        self.cluster.as_ref()
    }

    /// Where `id` is served; see [`Registry::placement`].
    pub(crate) async fn placement(&self, id: &ActorId) -> Result<Placement, ActionError> {
        let Some(membership) = &self.cluster else {
            return Ok(Placement::Local);
        };
        if self.slots().contains_key(id) && membership.serving() {
            return Ok(Placement::Local);
        }
        membership.place(id).await
    }

    /// For the in-process client: a network client to the node holding actor `id`, or `None`
    /// when it is served here (or the registry runs alone).
    pub(crate) async fn peer_for(
        &self,
        name: &str,
        id: &ActorId,
    ) -> Result<Option<Client>, ActionError> {
        let Some(membership) = &self.cluster else {
            return Ok(None);
        };
        self.check_type(name)?;
        match self.placement(id).await? {
            Placement::Local => Ok(None),
            Placement::Remote { peer_addr, .. } => membership.peer_client(&peer_addr).map(Some),
        }
    }

    /// Stops every live actor (their last writes are fenced: if another node claimed one
    /// meanwhile, its writes are refused) and waits for them.
    pub(crate) async fn stop_all(&self) {
        let mut senders = Vec::new();
        let mut stopping = Vec::new();
        for slot in self.slots().values() {
            match &slot.state {
                SlotState::Running(tx) => senders.push(tx.clone()),
                SlotState::Stopping(done) => stopping.push((**done).clone()),
            }
        }
        let mut waits = Vec::new();
        for tx in senders {
            let (done, rx) = oneshot::channel();
            if tx.send(Msg::Stop { done }).is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
        // Instances already going to sleep or being destroyed: their last writes and their
        // `wait_until` tasks (bounded by the run grace) finish before the shutdown returns.
        for mut done in stopping {
            let _ = done.wait_for(|stopped| *stopped).await;
        }
    }

    /// Wakes actors with due alarms whose owner is gone, when this node can claim them.
    async fn sweep_orphans(&self, membership: &Membership) {
        let orphans = match membership.orphans(ORPHANS_PER_SWEEP).await {
            Ok(orphans) => orphans,
            Err(e) => return tracing::debug!(error = %e, "looking for orphaned alarms failed"),
        };
        for id in orphans {
            let Ok(Some(meta)) = self.driver.actor(&id).await else {
                continue;
            };
            if let Ok(Placement::Local) = self.placement(&id).await {
                tracing::debug!(actor = %meta.name, %id, "waking an actor whose alarms no node served");
                let _ = self.send(&meta.name, &id, None);
            }
        }
    }
}

/// Stops every live actor without waiting: their last writes may wait on a database that does
/// not answer, and renewals go on meanwhile. (A new instance of an actor waits for the old one
/// to stop before it starts.)
fn stop_all_in_background(inner: &Arc<RegistryInner>) {
    let inner = inner.clone();
    tokio::spawn(async move { inner.stop_all().await });
}

/// Renews the lease every [`ClusterConfig::heartbeat_every`](crate::ClusterConfig), until the
/// registry is dropped. When the lease cannot be confirmed in time the node stops its actors
/// (others may claim them soon); when it turns out to have ended, the node joins again as a
/// new incarnation.
pub(super) fn spawn_lease_keeper(reg: Weak<RegistryInner>, membership: Arc<Membership>) {
    let every = membership.config().heartbeat_every();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Whether this node's actors were stopped because the lease could not be confirmed.
        let mut fenced = false;
        let mut renewals: u64 = 0;
        loop {
            ticks.tick().await;
            if reg.strong_count() == 0 {
                return;
            }
            let beat = membership.heartbeat().await;
            let Some(inner) = reg.upgrade() else { return };
            if inner.stopped.load(Ordering::Acquire) {
                return;
            }
            match beat {
                Beat::Renewed => {
                    fenced = false;
                    if let Err(e) = membership.refresh_members().await {
                        tracing::debug!(error = %e, "reading the live nodes failed");
                    }
                    inner.sweep_orphans(&membership).await;
                    renewals += 1;
                    // Now and then (every fifty renewals, ten leases), not on every one.
                    if renewals % 50 == 1 {
                        membership.forget_dead_nodes().await;
                    }
                }
                Beat::Failed if membership.serving() => {}
                Beat::Failed => {
                    if !fenced {
                        tracing::error!(
                            "cluster lease not confirmed in time: stopping this node's actors"
                        );
                        stop_all_in_background(&inner);
                        fenced = true;
                    }
                }
                Beat::Lost => {
                    tracing::error!(
                        "cluster lease ended: stopping this node's actors and joining again"
                    );
                    if !fenced {
                        stop_all_in_background(&inner);
                    }
                    fenced = false;
                    if let Err(e) = membership.rejoin().await {
                        tracing::warn!(error = %e, "joining the cluster again failed; retrying");
                    }
                }
            }
        }
    });
}
