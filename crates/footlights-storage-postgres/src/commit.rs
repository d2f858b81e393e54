//! [`commit_units`]: a batch of units in one transaction, each unit whole or (fenced) not at
//! all.
//!
//! # Check, then apply, under row locks
//!
//! A batch runs in one READ COMMITTED transaction:
//!
//! 1. `SELECT id, generation, owner FROM actors WHERE id = ANY(…) ORDER BY id FOR NO KEY
//!    UPDATE` locks the row of every actor the batch names (fenced or written), in id order.
//! 2. Each unit's fence is compared, in Rust, with the generation (and, for a driver bound to
//!    a node, the owner) those rows hold, as updated by the units before it in the batch (a
//!    `BumpGeneration`, a create). A unit whose fence holds is applied; one whose fence does
//!    not is skipped and reported [`UnitOutcome::Fenced`]; the other units go on.
//! 3. The writes run as statements pipelined on the connection, in batch order, except that
//!    the state snapshots between two creates go in one statement (the last one of each
//!    actor: no other write reads or changes the `state` table, so only the newest counts);
//!    then one statement adds each actor's change of key-value bytes; then `COMMIT`.
//!
//! Why this stays correct with concurrent claimers under READ COMMITTED: a claim bumps the
//! generation with an `UPDATE` of the same row, which needs the same row lock. If the claim
//! committed first, the locking `SELECT` waits for it and then reads the row as the claim
//! left it (a locking read in READ COMMITTED returns the newest committed version, not the
//! statement's snapshot), so the unit is fenced. If the batch locked first, the claim waits
//! until the batch has committed, and the new owner, which loads after its claim, sees every
//! write of the batch. No claim can slip between the check and the commit, because the lock
//! is held from the check to the end of the transaction. The same lock keeps `kv_bytes` exact
//! (the old size of an entry is read while nobody else can write the actor) and makes
//! `delete_actor`, which needs the row too, wait for the batch.
//!
//! Why not a savepoint per unit (apply, check, roll back to the savepoint if fenced): that
//! costs two more round trips per unit, and units are many in a group commit; a fenced unit is
//! rare, and checking before applying needs only the one locking read for the whole batch.
//! Locking in id order keeps two batches naming the same actors from deadlocking each other;
//! if a deadlock or serialization failure happens anyway (creates of one key racing), the
//! whole transaction, of which nothing was applied, runs again, a few times.

use std::collections::HashMap;
use std::task::Poll;

use deadpool_postgres::Transaction;
use footlights_storage::cluster::NodeIncarnation;
use footlights_storage::{ActorId, ActorMeta, CreateOutcome, Result, Unit, UnitOutcome, Write};
use futures::future::BoxFuture;

use crate::error::{Error, db, is_retryable, to_i64, to_u64};
use crate::key;
use crate::ops::{Client, META_COLUMNS, meta};

/// How many times a batch that hit a deadlock or a serialization failure is tried in all.
const ATTEMPTS: usize = 4;

/// What the locking read found of an actor, kept up to date by the batch's own writes.
struct Held {
    generation: u64,
    owner: Option<String>,
}

/// A statement's result: the change it made to its actor's key-value bytes.
type Pending<'a> = BoxFuture<'a, Result<i64, tokio_postgres::Error>>;

/// Applies `units` in one transaction; see the [module docs](self).
pub(crate) async fn commit_units(
    client: &mut Client,
    node: Option<&NodeIncarnation>,
    units: &[Unit],
) -> Result<Vec<UnitOutcome>> {
    let mut attempt = 1;
    loop {
        match try_commit(client, node, units).await {
            Err(Failed::Postgres(e)) if is_retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "batch ran into another transaction; again");
                attempt += 1;
            }
            Err(Failed::Postgres(e)) => return Err(db(e)),
            Err(Failed::Storage(e)) => return Err(e),
            Ok(outcomes) => return Ok(outcomes),
        }
    }
}

/// A batch's failure: PostgreSQL's own (which may be worth a retry) or one of ours.
enum Failed {
    Postgres(tokio_postgres::Error),
    Storage(footlights_storage::StorageError),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        Failed::Postgres(e)
    }
}

impl From<footlights_storage::StorageError> for Failed {
    fn from(e: footlights_storage::StorageError) -> Self {
        Failed::Storage(e)
    }
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed::Storage(e.into())
    }
}

/// The actors a batch names, sorted and without repeats: the rows it locks.
fn named_actors(units: &[Unit]) -> Vec<&str> {
    let mut ids: Vec<&str> = units
        .iter()
        .flat_map(|u| {
            let fence = u.fence.iter().map(|f| f.actor.as_str());
            fence.chain(u.writes.iter().map(|w| w.actor().as_str()))
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

async fn try_commit(
    client: &mut Client,
    node: Option<&NodeIncarnation>,
    units: &[Unit],
) -> Result<Vec<UnitOutcome>, Failed> {
    let tx = client.transaction().await?;
    let lock = tx
        .prepare_cached(
            "SELECT id, generation, owner FROM actors WHERE id = ANY($1)
             ORDER BY id FOR NO KEY UPDATE",
        )
        .await?;
    let mut held: HashMap<String, Held> = HashMap::new();
    for row in tx.query(&lock, &[&named_actors(units)]).await? {
        let generation = to_u64(row.try_get(1)?, "generation")?;
        let owner = row.try_get(2)?;
        held.insert(row.try_get(0)?, Held { generation, owner });
    }

    let mut pipeline = Pipeline::new();
    let mut outcomes = Vec::with_capacity(units.len());
    for unit in units {
        if let Some(fence) = &unit.fence {
            let found = held.get(fence.actor.as_str());
            let current = found.map(|h| h.generation);
            let owned = node
                .is_none_or(|me| found.is_some_and(|h| h.owner.as_deref() == Some(me.as_str())));
            if current != Some(fence.generation) || !owned {
                outcomes.push(UnitOutcome::Fenced { current });
                continue;
            }
        }
        let mut created = Vec::new();
        for write in &unit.writes {
            match write {
                Write::CreateActor { meta } => {
                    // Later fences may name the new actor: its outcome is needed now.
                    pipeline.flush(&tx).await?;
                    let outcome = create_actor(&tx, meta).await?;
                    if outcome == CreateOutcome::Created {
                        let generation = meta.generation;
                        held.insert(
                            meta.id.as_str().to_owned(),
                            Held {
                                generation,
                                owner: None,
                            },
                        );
                    }
                    created.push(outcome);
                }
                Write::BumpGeneration { actor } => {
                    if let Some(h) = held.get_mut(actor.as_str()) {
                        h.generation += 1;
                    }
                    pipeline.push(actor, apply(&tx, write).await?);
                }
                Write::State { actor, bytes } => pipeline.state(actor, bytes),
                other => pipeline.push(other.actor(), apply(&tx, other).await?),
            }
        }
        outcomes.push(UnitOutcome::Applied(created));
    }
    pipeline.flush(&tx).await?;
    let kv_bytes = std::mem::take(&mut pipeline.kv_bytes);
    drop(pipeline);

    let (ids, deltas): (Vec<&str>, Vec<i64>) = kv_bytes
        .iter()
        .filter(|(_, delta)| **delta != 0)
        .map(|(actor, delta)| (actor.as_str(), *delta))
        .unzip();
    if !ids.is_empty() {
        let sizes = tx
            .prepare_cached(
                "UPDATE actors SET kv_bytes = actors.kv_bytes + d.delta
                 FROM unnest($1::text[], $2::bigint[]) AS d (id, delta) WHERE actors.id = d.id",
            )
            .await?;
        tx.execute(&sizes, &[&ids, &deltas]).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Inserts the actor unless its name and key are taken, and otherwise reads the actor that
/// holds them. `ON CONFLICT DO NOTHING` waits for a concurrent insert of the same name and key
/// to finish, so of racing creates exactly one inserts; the others then read it (each statement
/// sees what committed before it started). An id taken by another name or key is a unique
/// violation, which fails the batch.
async fn create_actor(tx: &Transaction<'_>, meta: &ActorMeta) -> Result<CreateOutcome, Failed> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO actors (id, name, key_sort, created_at_ms, generation)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, key_sort) DO NOTHING",
        )
        .await?;
    let sql = format!("SELECT {META_COLUMNS} FROM actors WHERE name = $1 AND key_sort = $2");
    let find = tx.prepare_cached(&sql).await?;
    let key_sort = key::encode(&meta.key);
    let generation = to_i64(meta.generation, "generation")?;
    // The holder of the key may be deleted between the conflict and the read: try again.
    for _ in 0..16 {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
            &meta.id.as_str(),
            &meta.name,
            &key_sort,
            &meta.created_at_ms,
            &generation,
        ];
        if tx.execute(&insert, &params).await? == 1 {
            return Ok(CreateOutcome::Created);
        }
        if let Some(row) = tx.query_opt(&find, &[&meta.name, &key_sort]).await? {
            return Ok(CreateOutcome::Exists(meta_of(&row)?));
        }
    }
    Err(Error::CreateRace.into())
}

fn meta_of(row: &tokio_postgres::Row) -> Result<ActorMeta, Failed> {
    Ok(meta(row)?)
}

/// The state snapshots of a run of the batch, one row each, newest per actor. Inserted only
/// for actors that exist, like every other write.
const STATES: &str = "INSERT INTO state (actor_id, bytes)
     SELECT s.id, s.bytes FROM unnest($1::text[], $2::bytea[]) AS s (id, bytes)
     WHERE EXISTS (SELECT 1 FROM actors WHERE id = s.id)
     ON CONFLICT (actor_id) DO UPDATE SET bytes = excluded.bytes";

/// Prepares the statement of one write (other than a create or a state) and returns its future, not yet
/// polled. Inserts happen only `WHERE EXISTS` the actor, so writes for unknown actors change
/// nothing (and break no foreign key); updates and deletes of missing rows change nothing by
/// themselves.
async fn apply<'a>(tx: &'a Transaction<'_>, write: &'a Write) -> Result<Pending<'a>, Failed> {
    Ok(match write {
        Write::PutAlarm { actor, alarm } => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO alarms (actor_id, alarm_id, at_ms, action, args)
                     SELECT $1, $2, $3, $4, $5
                     WHERE EXISTS (SELECT 1 FROM actors WHERE id = $1)
                     ON CONFLICT (actor_id, alarm_id) DO UPDATE
                     SET at_ms = excluded.at_ms, action = excluded.action, args = excluded.args",
                )
                .await?;
            Box::pin(async move {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                    &actor.as_str(),
                    &alarm.id,
                    &alarm.at_ms,
                    &alarm.action,
                    &alarm.args,
                ];
                tx.execute(&stmt, &params).await?;
                Ok(0)
            })
        }
        Write::DeleteAlarm { actor, alarm_id } => {
            let stmt = tx
                .prepare_cached("DELETE FROM alarms WHERE actor_id = $1 AND alarm_id = $2")
                .await?;
            Box::pin(async move {
                tx.execute(&stmt, &[&actor.as_str(), alarm_id]).await?;
                Ok(0)
            })
        }
        Write::KvPut { actor, key, value } => {
            // The old entry's size is read in the same statement, before its insert: all parts
            // of a statement see the data as it was when it started.
            let stmt = tx
                .prepare_cached(
                    "WITH old AS (
                         SELECT octet_length(key) + octet_length(value) AS size FROM kv
                         WHERE actor_id = $1 AND key = $2
                     ), put AS (
                         INSERT INTO kv (actor_id, key, value)
                         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM actors WHERE id = $1)
                         ON CONFLICT (actor_id, key) DO UPDATE SET value = excluded.value
                         RETURNING 1
                     )
                     SELECT CASE WHEN EXISTS (SELECT 1 FROM put)
                         THEN octet_length($2) + octet_length($3)
                              - coalesce((SELECT size FROM old), 0)
                         ELSE 0 END::bigint",
                )
                .await?;
            Box::pin(async move {
                let row = tx.query_one(&stmt, &[&actor.as_str(), key, value]).await?;
                row.try_get(0)
            })
        }
        Write::KvDelete { actor, key } => {
            let stmt = tx
                .prepare_cached(
                    "WITH gone AS (
                         DELETE FROM kv WHERE actor_id = $1 AND key = $2
                         RETURNING octet_length(key) + octet_length(value) AS size
                     )
                     SELECT coalesce(sum(size), 0)::bigint FROM gone",
                )
                .await?;
            Box::pin(async move {
                let row = tx.query_one(&stmt, &[&actor.as_str(), key]).await?;
                Ok(-row.try_get::<_, i64>(0)?)
            })
        }
        Write::KvDeleteRange { actor, start, end } => {
            let upper = if end.is_some() { "AND key < $3" } else { "" };
            let stmt = tx
                .prepare_cached(&format!(
                    "WITH gone AS (
                         DELETE FROM kv WHERE actor_id = $1 AND key >= $2 {upper}
                         RETURNING octet_length(key) + octet_length(value) AS size
                     )
                     SELECT coalesce(sum(size), 0)::bigint FROM gone"
                ))
                .await?;
            Box::pin(async move {
                let row = match end {
                    Some(end) => tx.query_one(&stmt, &[&actor.as_str(), start, end]).await?,
                    None => tx.query_one(&stmt, &[&actor.as_str(), start]).await?,
                };
                Ok(-row.try_get::<_, i64>(0)?)
            })
        }
        Write::BumpGeneration { actor } => {
            let stmt = tx
                .prepare_cached("UPDATE actors SET generation = generation + 1 WHERE id = $1")
                .await?;
            Box::pin(async move {
                tx.execute(&stmt, &[&actor.as_str()]).await?;
                Ok(0)
            })
        }
        // `Write` is non-exhaustive: refuse (and so roll back) what this driver cannot apply
        // rather than drop it. Creates and states never come here.
        _ => return Err(Error::UnsupportedWrite.into()),
    })
}

/// Statements sent one after another without waiting for each answer, then awaited
/// together. tokio-postgres sends a statement on its future's first poll, and PostgreSQL runs
/// a connection's statements in the order they arrive, so polling the futures in the order
/// they were pushed runs the statements in batch order, in about one round trip.
struct Pipeline<'a, 'u> {
    /// Statements not yet sent, with the actor whose key-value bytes their result changes.
    pending: Vec<(Option<&'u ActorId>, Pending<'a>)>,
    /// The newest state snapshot of each actor since the last flush.
    states: HashMap<&'u str, &'u [u8]>,
    /// Each actor's change of key-value bytes, from the flushed statements.
    kv_bytes: HashMap<&'u ActorId, i64>,
}

impl<'a, 'u: 'a> Pipeline<'a, 'u> {
    fn new() -> Self {
        Pipeline {
            pending: Vec::new(),
            states: HashMap::new(),
            kv_bytes: HashMap::new(),
        }
    }

    fn push(&mut self, actor: &'u ActorId, statement: Pending<'a>) {
        self.pending.push((Some(actor), statement));
    }

    /// Keeps `bytes` as the newest snapshot of `actor`, written at the next flush.
    fn state(&mut self, actor: &'u ActorId, bytes: &'u [u8]) {
        self.states.insert(actor.as_str(), bytes);
    }

    /// Runs every pending statement, with the snapshots kept since the last flush as one
    /// more (sorted by actor, so that concurrent batches take the rows' locks in one order);
    /// the first error in batch order is the batch's (the statements after a failed one only
    /// report that the transaction is aborted).
    async fn flush(&mut self, tx: &'a Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        if !self.states.is_empty() {
            let mut states: Vec<(&str, &[u8])> = self.states.drain().collect();
            states.sort_unstable_by_key(|(id, _)| *id);
            let (ids, snapshots): (Vec<&str>, Vec<&[u8]>) = states.into_iter().unzip();
            let stmt = tx.prepare_cached(STATES).await?;
            let statement: Pending<'a> = Box::pin(async move {
                tx.execute(&stmt, &[&ids, &snapshots]).await?;
                Ok(0)
            });
            self.pending.push((None, statement));
        }
        let pending = std::mem::take(&mut self.pending);
        let (actors, statements): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
        for (actor, result) in actors.into_iter().zip(in_order(statements).await) {
            let delta = result?;
            if let Some(actor) = actor
                && delta != 0
            {
                *self.kv_bytes.entry(actor).or_default() += delta;
            }
        }
        Ok(())
    }
}

/// Awaits every future, polling them in their order on each wake (so each one's first poll
/// comes after those of the futures before it), and returns their outputs in that order.
async fn in_order<T>(futures: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    // `Ok`: the output of a future that finished; `Err`: one still running.
    let mut slots: Vec<Result<T, BoxFuture<'_, T>>> = futures.into_iter().map(Err).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in &mut slots {
            if let Err(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *slot = Ok(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    slots.into_iter().filter_map(Result::ok).collect()
}
