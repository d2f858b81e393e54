//! [`Cluster`] on the driver's tables: leases in `nodes`, placement in `actors.owner`, and the
//! claim's epoch in `actors.generation`, the column every fenced write is checked against.
//!
//! Every time is the database's `now()`: one clock for every node, whatever their own clocks
//! say. Each method is one statement, so each is atomic and takes one round trip (a claim
//! that loses takes a second one, to say who won).

use std::time::Duration;

use footlights_storage::cluster::{
    Claim, Heartbeat, Lease, Member, NodeIncarnation, NodeInfo, Owner,
};
use footlights_storage::{ActorId, Fence, Result, StorageError};
use tokio_postgres::error::SqlState;

use crate::error::{Error, db, to_i64, to_u64};
use crate::ops::Client;

/// A lease's length as PostgreSQL microseconds.
fn micros(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)
}

/// `expires_at` as milliseconds since the Unix epoch.
const EXPIRES_MS: &str = "(extract(epoch FROM expires_at) * 1000)::bigint";

/// Inserts a new incarnation with its lease ending `ttl` after the database's now; the
/// incarnation is made here (the node's name, the time, a counter), and made again in the
/// unlikely case another process made the same one.
pub(crate) async fn register(c: &Client, node: &NodeInfo, ttl: Duration) -> Result<Lease> {
    let sql = format!(
        "INSERT INTO nodes (incarnation, name, peer_addr, public_url, expires_at)
         VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 microsecond')
         RETURNING {EXPIRES_MS}"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(db)?;
    loop {
        let incarnation = NodeIncarnation::fresh(&node.name);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
            &incarnation.as_str(),
            &node.name,
            &node.peer_addr,
            &node.public_url,
            &micros(ttl),
        ];
        match c.query_one(&stmt, &params).await {
            Ok(row) => {
                let expires_at_ms = row.try_get(0).map_err(db)?;
                return Ok(Lease {
                    incarnation,
                    expires_at_ms,
                });
            }
            // Another process made the same incarnation: make another.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => continue,
            Err(e) => return Err(db(e)),
        }
    }
}

/// Renews only a lease still running: a node whose lease ran out may already have lost its
/// actors, and must not come back to life under the same incarnation.
pub(crate) async fn heartbeat(
    c: &Client,
    me: &NodeIncarnation,
    ttl: Duration,
) -> Result<Heartbeat> {
    let sql = format!(
        "UPDATE nodes SET expires_at = now() + $2::bigint * interval '1 microsecond'
         WHERE incarnation = $1 AND expires_at > now()
         RETURNING {EXPIRES_MS}"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(db)?;
    let row = c
        .query_opt(&stmt, &[&me.as_str(), &micros(ttl)])
        .await
        .map_err(db)?;
    match row {
        Some(row) => Ok(Heartbeat::Renewed {
            expires_at_ms: row.try_get(0).map_err(db)?,
        }),
        None => Ok(Heartbeat::Expired),
    }
}

/// The nodes whose lease ends after the database's now. Dead rows stay until they are
/// swept (not done here): they only ever make an owner dead.
pub(crate) async fn live_members(c: &Client) -> Result<Vec<Member>> {
    let sql = format!(
        "SELECT incarnation, name, peer_addr, public_url, {EXPIRES_MS} FROM nodes
         WHERE expires_at > now() ORDER BY incarnation"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(db)?;
    let rows = c.query(&stmt, &[]).await.map_err(db)?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get(1).map_err(db)?;
            let peer_addr: String = r.try_get(2).map_err(db)?;
            let mut info = NodeInfo::new(name, peer_addr);
            info.public_url = r.try_get(3).map_err(db)?;
            Ok(Member {
                incarnation: NodeIncarnation::from_stored(r.try_get::<_, String>(0).map_err(db)?),
                info,
                expires_at_ms: r.try_get(4).map_err(db)?,
            })
        })
        .collect()
}

/// One `UPDATE` of the actor's row bumps its generation and records the owner, if the
/// claiming node's lease runs and no other live node holds the actor.
///
/// Concurrent claims queue on the row lock. Under READ COMMITTED, each one that waited checks
/// its `WHERE` again on the row as the claim before it left it (PostgreSQL re-evaluates the
/// condition, subqueries included, on the newest version of a row it had to wait for), and
/// now finds a live owner: exactly one claim updates. A commit of the previous owner holds the
/// same row lock from its fence check to its end, so the claim lands either after that commit
/// (and the new owner loads what it wrote) or before its check (which then fails).
pub(crate) async fn claim(c: &Client, actor: &ActorId, me: &NodeIncarnation) -> Result<Claim> {
    let claim = c
        .prepare_cached(
            "WITH me AS (
                 SELECT 1 FROM nodes WHERE incarnation = $2 AND expires_at > now()
             ), claimed AS (
                 UPDATE actors a SET generation = a.generation + 1, owner = $2
                 WHERE a.id = $1 AND EXISTS (SELECT 1 FROM me)
                   AND (a.owner IS NULL OR a.owner = $2 OR NOT EXISTS (
                       SELECT 1 FROM nodes n WHERE n.incarnation = a.owner AND n.expires_at > now()))
                 RETURNING a.generation
             )
             SELECT (SELECT generation FROM claimed), EXISTS (SELECT 1 FROM me)",
        )
        .await
        .map_err(db)?;
    // A holder seen by a losing claim may have died or released since: claim again.
    for _ in 0..8 {
        let row = c
            .query_one(&claim, &[&actor.as_str(), &me.as_str()])
            .await
            .map_err(db)?;
        let generation: Option<i64> = row.try_get(0).map_err(db)?;
        let alive: bool = row.try_get(1).map_err(db)?;
        if let Some(generation) = generation {
            return Ok(Claim::Claimed(Fence {
                actor: actor.clone(),
                generation: to_u64(generation, "generation")?,
            }));
        }
        if !alive {
            return Ok(Claim::Expired);
        }
        match lookup(c, actor).await? {
            None => return Err(StorageError::NotFound(actor.clone())),
            Some(Some(owner)) if owner.alive && owner.node != *me => {
                return Ok(Claim::OwnedBy(owner));
            }
            Some(_) => continue,
        }
    }
    Err(Error::ClaimRace.into())
}

/// The actor's owner: `None` if there is no such actor, `Some(None)` if nobody holds it.
async fn lookup(c: &Client, actor: &ActorId) -> Result<Option<Option<Owner>>> {
    let stmt = c
        .prepare_cached(
            "SELECT a.owner, a.generation, coalesce(n.expires_at > now(), false)
             FROM actors a LEFT JOIN nodes n ON n.incarnation = a.owner WHERE a.id = $1",
        )
        .await
        .map_err(db)?;
    let Some(row) = c.query_opt(&stmt, &[&actor.as_str()]).await.map_err(db)? else {
        return Ok(None);
    };
    let owner: Option<String> = row.try_get(0).map_err(db)?;
    let Some(owner) = owner else {
        return Ok(Some(None));
    };
    Ok(Some(Some(Owner {
        node: NodeIncarnation::from_stored(owner),
        generation: to_u64(row.try_get(1).map_err(db)?, "generation")?,
        alive: row.try_get(2).map_err(db)?,
    })))
}

/// Who holds the actor, if anyone: a dead holder too, with `alive` false.
pub(crate) async fn owner(c: &Client, actor: &ActorId) -> Result<Option<Owner>> {
    Ok(lookup(c, actor).await?.flatten())
}

/// Clears the owner, if it is still `me` at the fence's generation; the generation stays,
/// and the next claim bumps it.
pub(crate) async fn release(c: &Client, fence: &Fence, me: &NodeIncarnation) -> Result<bool> {
    let stmt = c
        .prepare_cached(
            "UPDATE actors SET owner = NULL WHERE id = $1 AND generation = $2 AND owner = $3",
        )
        .await
        .map_err(db)?;
    let generation = to_i64(fence.generation, "generation")?;
    let n = c
        .execute(&stmt, &[&fence.actor.as_str(), &generation, &me.as_str()])
        .await
        .map_err(db)?;
    Ok(n > 0)
}

/// Due alarms come from the `(at_ms, …)` index; each actor once, at its earliest.
pub(crate) async fn due_orphans(c: &Client, limit: usize) -> Result<Vec<ActorId>> {
    let stmt = c
        .prepare_cached(
            "SELECT al.actor_id, min(al.at_ms) AS due FROM alarms al
             JOIN actors a ON a.id = al.actor_id
             WHERE al.at_ms <= (extract(epoch FROM now()) * 1000)::bigint
               AND NOT EXISTS (SELECT 1 FROM nodes n
                               WHERE n.incarnation = a.owner AND n.expires_at > now())
             GROUP BY al.actor_id ORDER BY due, al.actor_id LIMIT $1",
        )
        .await
        .map_err(db)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(&stmt, &[&limit]).await.map_err(db)?;
    rows.iter()
        .map(|r| Ok(ActorId::new(r.try_get::<_, String>(0).map_err(db)?)))
        .collect()
}

/// Deletes the node's row: its actors keep it as their owner, now dead, so they are
/// claimable at once.
pub(crate) async fn deregister(c: &Client, me: &NodeIncarnation) -> Result<()> {
    let stmt = c
        .prepare_cached("DELETE FROM nodes WHERE incarnation = $1")
        .await
        .map_err(db)?;
    c.execute(&stmt, &[&me.as_str()]).await.map_err(db)?;
    Ok(())
}

pub(crate) async fn forget_dead(c: &Client, ago: Duration) -> Result<u64> {
    let stmt = c
        .prepare_cached(
            "DELETE FROM nodes WHERE expires_at < now() - $1::bigint * interval '1 microsecond'",
        )
        .await
        .map_err(db)?;
    c.execute(&stmt, &[&micros(ago)]).await.map_err(db)
}
