//! The SQL behind each [`Driver`](footlights_storage::Driver) method. Everything here runs on
//! the connection's thread (see `worker.rs`).

use std::collections::HashMap;
use std::ops::Bound;

use footlights_storage::{
    ActorId, ActorKey, ActorMeta, Alarm, CreateOutcome, KvRange, LoadedActor, Result, StorageError,
    Unit, UnitOutcome, Write,
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::error::Error;
use crate::files::Files;
use crate::key;

const META_COLUMNS: &str = "id, name, key_sort, created_at_ms, generation";

/// Converts SQLite errors; every function here uses it through `?`.
///
/// What an operator can fix while the process runs (a full disk, a failing or read-only disk, a
/// file that cannot be opened) is [`StorageError::Unavailable`], worth retrying later; the rest
/// (corruption, constraint violations, bugs) is [`StorageError::Backend`].
fn db(e: rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode;
    let reason = match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the disk is full",
        Some(ErrorCode::SystemIoFailure) => "the disk failed to read or write",
        Some(ErrorCode::ReadOnly) => "the database file cannot be written",
        Some(ErrorCode::CannotOpen) => "a file of the store cannot be opened",
        _ => return StorageError::backend(e),
    };
    StorageError::Unavailable {
        reason: reason.to_owned(),
        source: Some(Box::new(e)),
    }
}

/// An `actors` row as stored (see [`META_COLUMNS`]), before checking it.
type MetaRow = (String, String, Vec<u8>, i64, i64);

fn meta_row(row: &Row<'_>) -> rusqlite::Result<MetaRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn to_meta((id, name, key_sort, created_at_ms, generation): MetaRow) -> Result<ActorMeta> {
    Ok(ActorMeta {
        id: ActorId::new(id),
        name,
        key: key::decode(&key_sort).map_err(|e| StorageError::backend(Error::from(e)))?,
        created_at_ms,
        generation: u64::try_from(generation)
            .map_err(|_| StorageError::backend(Error::OutOfRange("generation")))?,
    })
}

fn find_by_key(conn: &Connection, name: &str, key_sort: &[u8]) -> Result<Option<ActorMeta>> {
    let sql = format!("SELECT {META_COLUMNS} FROM actors WHERE name = ?1 AND key_sort = ?2");
    let row = conn
        .prepare_cached(&sql)
        .map_err(db)?
        .query_row(params![name, key_sort], meta_row)
        .optional()
        .map_err(db)?;
    row.map(to_meta).transpose()
}

/// Inserts the actor unless its name and key are taken. Runs inside the batch's transaction,
/// which holds the write lock (it is `IMMEDIATE`), so no other connection can insert the same
/// name and key between the lookup and the insert; and it sees the creates before it in the
/// batch.
fn create_actor(tx: &Transaction<'_>, meta: &ActorMeta) -> Result<CreateOutcome> {
    let key_sort = key::encode(&meta.key);
    let generation = i64::try_from(meta.generation)
        .map_err(|_| StorageError::backend(Error::OutOfRange("generation")))?;
    if let Some(existing) = find_by_key(tx, &meta.name, &key_sort)? {
        return Ok(CreateOutcome::Exists(existing));
    }
    tx.prepare_cached(
        "INSERT INTO actors (id, name, key_text, key_sort, created_at_ms, generation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map_err(db)?
    .execute(params![
        meta.id.as_str(),
        meta.name,
        meta.key.to_string(),
        key_sort,
        meta.created_at_ms,
        generation
    ])
    .map_err(db)?;
    Ok(CreateOutcome::Created)
}

pub(crate) fn actor(conn: &Connection, id: &ActorId) -> Result<Option<ActorMeta>> {
    let sql = format!("SELECT {META_COLUMNS} FROM actors WHERE id = ?1");
    let row = conn
        .prepare_cached(&sql)
        .map_err(db)?
        .query_row([id.as_str()], meta_row)
        .optional()
        .map_err(db)?;
    row.map(to_meta).transpose()
}

pub(crate) fn find_actor(
    conn: &Connection,
    name: &str,
    key: &ActorKey,
) -> Result<Option<ActorMeta>> {
    find_by_key(conn, name, &key::encode(key))
}

pub(crate) fn list_actors(
    conn: &Connection,
    name: &str,
    key_prefix: &ActorKey,
) -> Result<Vec<ActorMeta>> {
    let start = key::encode(key_prefix);
    // One range scan of the (name, key_sort) index, in key order.
    let rows = match key::prefix_end(&start) {
        Some(end) => {
            let sql = format!(
                "SELECT {META_COLUMNS} FROM actors
                 WHERE name = ?1 AND key_sort >= ?2 AND key_sort < ?3 ORDER BY key_sort"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(params![name, start, end], meta_row)
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?
        }
        None => {
            let sql =
                format!("SELECT {META_COLUMNS} FROM actors WHERE name = ?1 ORDER BY key_sort");
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let rows = stmt.query_map([name], meta_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?
        }
    };
    rows.into_iter().map(to_meta).collect()
}

/// One page of [`list_actors`]: one range scan of the `(name, key_sort)` index from after
/// `after` (or the prefix), at most `limit` rows.
pub(crate) fn list_actors_page(
    conn: &Connection,
    name: &str,
    key_prefix: &ActorKey,
    after: Option<&ActorKey>,
    limit: usize,
) -> Result<Vec<ActorMeta>> {
    let footlights_storage::key_order::PageBounds { start, end, after } =
        footlights_storage::key_order::page_bounds(key_prefix, after);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Keys sort like their encodings: `> after` continues the listing, `< end` keeps the
    // prefix. An absent bound is written so that it holds for every row.
    let sql = format!(
        "SELECT {META_COLUMNS} FROM actors
         WHERE name = ?1 AND key_sort >= ?2 AND (?3 IS NULL OR key_sort > ?3)
           AND (?4 IS NULL OR key_sort < ?4)
         ORDER BY key_sort LIMIT ?5"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt
        .query_map(params![name, start, after, end, limit], meta_row)
        .map_err(db)?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?;
    rows.into_iter().map(to_meta).collect()
}

pub(crate) fn load_state(conn: &Connection, id: &ActorId) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT bytes FROM state WHERE actor_id = ?1")
        .map_err(db)?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()
        .map_err(db)
}

/// The three reads of a start in one read transaction: one point in time, one job.
pub(crate) fn load_actor(conn: &mut Connection, id: &ActorId) -> Result<Option<LoadedActor>> {
    let tx = conn.transaction().map_err(db)?;
    let Some(meta) = actor(&tx, id)? else {
        return Ok(None);
    };
    let loaded = LoadedActor {
        meta,
        state: load_state(&tx, id)?,
        alarms: load_alarms(&tx, id)?,
    };
    tx.commit().map_err(db)?;
    Ok(Some(loaded))
}

/// The actor of `name` and `key` with its state and alarms, in one read transaction: the
/// key lookup and the three reads of a start, one point in time, one job.
pub(crate) fn load_actor_by_key(
    conn: &mut Connection,
    name: &str,
    key: &ActorKey,
) -> Result<Option<LoadedActor>> {
    let tx = conn.transaction().map_err(db)?;
    let Some(meta) = find_by_key(&tx, name, &key::encode(key))? else {
        return Ok(None);
    };
    let loaded = LoadedActor {
        state: load_state(&tx, &meta.id)?,
        alarms: load_alarms(&tx, &meta.id)?,
        meta,
    };
    tx.commit().map_err(db)?;
    Ok(Some(loaded))
}

fn alarm_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Alarm> {
    Ok(Alarm {
        id: row.get(first)?,
        at_ms: row.get(first + 1)?,
        action: row.get(first + 2)?,
        args: row.get(first + 3)?,
    })
}

pub(crate) fn load_alarms(conn: &Connection, id: &ActorId) -> Result<Vec<Alarm>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT alarm_id, at_ms, action, args FROM alarms
             WHERE actor_id = ?1 ORDER BY at_ms, alarm_id",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([id.as_str()], |row| alarm_row(row, 0))
        .map_err(db)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

pub(crate) fn all_alarms(conn: &Connection) -> Result<Vec<(ActorId, Alarm)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT actor_id, alarm_id, at_ms, action, args FROM alarms
             ORDER BY at_ms, actor_id, alarm_id",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((ActorId::new(row.get::<_, String>(0)?), alarm_row(row, 1)?))
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

pub(crate) fn kv_get(conn: &Connection, id: &ActorId, key: &[u8]) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM kv WHERE actor_id = ?1 AND key = ?2")
        .map_err(db)?
        .query_row(params![id.as_str(), key], |row| row.get(0))
        .optional()
        .map_err(db)
}

pub(crate) fn kv_get_many(
    conn: &mut Connection,
    id: &ActorId,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<Vec<u8>>>> {
    // One read transaction: every value from the same snapshot.
    let tx = conn.transaction().map_err(db)?;
    let values = keys
        .iter()
        .map(|key| kv_get(&tx, id, key))
        .collect::<Result<Vec<_>>>()?;
    tx.commit().map_err(db)?;
    Ok(values)
}

/// One range scan of the `(actor_id, key)` primary key, in either direction.
pub(crate) fn kv_list(
    conn: &Connection,
    id: &ActorId,
    range: &KvRange,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if range.is_empty() || range.limit == 0 {
        return Ok(Vec::new());
    }
    let mut sql = String::from("SELECT key, value FROM kv WHERE actor_id = ?1");
    let mut bounds: Vec<&[u8]> = Vec::new();
    for (bound, included, excluded) in [(&range.start, ">=", ">"), (&range.end, "<=", "<")] {
        let (op, key) = match bound {
            Bound::Included(k) => (included, k),
            Bound::Excluded(k) => (excluded, k),
            Bound::Unbounded => continue,
        };
        bounds.push(key);
        sql.push_str(&format!(" AND key {op} ?{}", bounds.len() + 1));
    }
    let order = if range.reverse { "DESC" } else { "ASC" };
    sql.push_str(&format!(
        " ORDER BY key {order} LIMIT ?{}",
        bounds.len() + 2
    ));
    let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
    let actor = id.as_str();
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&actor];
    for key in &bounds {
        params.push(key);
    }
    params.push(&limit);
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt
        .query_map(params.as_slice(), |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(db)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

pub(crate) fn kv_size(conn: &Connection, id: &ActorId) -> Result<u64> {
    let bytes: Option<i64> = conn
        .prepare_cached("SELECT kv_bytes FROM actors WHERE id = ?1")
        .map_err(db)?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()
        .map_err(db)?;
    u64::try_from(bytes.unwrap_or(0))
        .map_err(|_| StorageError::backend(Error::OutOfRange("kv_bytes")))
}

/// Applies `units` in one transaction: each unit whose fence holds, all of it; on error,
/// nothing. Returns each unit's outcome, in order. Rolls back if `files` are no longer in
/// place when the transaction is about to commit.
pub(crate) fn commit(
    conn: &mut Connection,
    files: &Files,
    units: Vec<Unit>,
) -> Result<Vec<UnitOutcome>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let mut outcomes = Vec::with_capacity(units.len());
    // Changes of each actor's `kv_bytes`, written once per actor at the end.
    let mut kv_bytes: HashMap<ActorId, i64> = HashMap::new();
    for unit in units {
        if let Some(fence) = &unit.fence {
            let current = generation(&tx, &fence.actor)?;
            if current != Some(fence.generation) {
                outcomes.push(UnitOutcome::Fenced { current });
                continue;
            }
        }
        let mut created = Vec::new();
        for write in unit.writes {
            match write {
                Write::CreateActor { meta } => created.push(create_actor(&tx, &meta)?),
                other => apply(&tx, other, &mut kv_bytes)?,
            }
        }
        outcomes.push(UnitOutcome::Applied(created));
    }
    for (actor, delta) in kv_bytes {
        if delta != 0 {
            tx.prepare_cached("UPDATE actors SET kv_bytes = kv_bytes + ?2 WHERE id = ?1")
                .map_err(db)?
                .execute(params![actor.as_str(), delta])
                .map_err(db)?;
        }
    }
    files.check()?;
    tx.commit().map_err(db)?;
    Ok(outcomes)
}

fn generation(tx: &Transaction<'_>, id: &ActorId) -> Result<Option<u64>> {
    let found: Option<i64> = tx
        .prepare_cached("SELECT generation FROM actors WHERE id = ?1")
        .map_err(db)?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()
        .map_err(db)?;
    found
        .map(|g| {
            u64::try_from(g).map_err(|_| StorageError::backend(Error::OutOfRange("generation")))
        })
        .transpose()
}

/// The stored size of one key-value entry, if the key is there.
fn kv_entry_size(tx: &Transaction<'_>, actor: &ActorId, key: &[u8]) -> Result<Option<i64>> {
    tx.prepare_cached("SELECT length(key) + length(value) FROM kv WHERE actor_id = ?1 AND key = ?2")
        .map_err(db)?
        .query_row(params![actor.as_str(), key], |row| row.get(0))
        .optional()
        .map_err(db)
}

/// The sizes of the rows a `DELETE … RETURNING length(key) + length(value)` removed.
fn deleted_bytes(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<i64> {
    let sizes = stmt
        .query_map(params, |row| row.get::<_, i64>(0))
        .map_err(db)?;
    sizes.sum::<rusqlite::Result<i64>>().map_err(db)
}

/// One write. The inserts only happen `WHERE EXISTS` the actor, so writes for unknown actors
/// change nothing; updates and deletes of missing rows change nothing by themselves. Changes
/// of the key-value map's size go to `kv_bytes`.
fn apply(tx: &Transaction<'_>, write: Write, kv_bytes: &mut HashMap<ActorId, i64>) -> Result<()> {
    match write {
        // An update of the one row first, and an insert only when there is none: SQLite can
        // undo a one-row update by key without a statement journal, while an upsert (an
        // `INSERT … SELECT` that may touch several rows) journals every page it changes, a
        // second copy of a large state on disk.
        Write::State { actor, bytes } => {
            let updated = tx
                .prepare_cached("UPDATE state SET bytes = ?2 WHERE actor_id = ?1")
                .map_err(db)?
                .execute(params![actor.as_str(), bytes])
                .map_err(db)?;
            if updated > 0 {
                return Ok(());
            }
            tx.prepare_cached(
                "INSERT INTO state (actor_id, bytes)
                 SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM actors WHERE id = ?1)",
            )
            .map_err(db)?
            .execute(params![actor.as_str(), bytes])
        }
        Write::PutAlarm { actor, alarm } => tx
            .prepare_cached(
                "INSERT INTO alarms (actor_id, alarm_id, at_ms, action, args)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM actors WHERE id = ?1)
                 ON CONFLICT (actor_id, alarm_id) DO UPDATE
                 SET at_ms = excluded.at_ms, action = excluded.action, args = excluded.args",
            )
            .map_err(db)?
            .execute(params![
                actor.as_str(),
                alarm.id,
                alarm.at_ms,
                alarm.action,
                alarm.args
            ]),
        Write::DeleteAlarm { actor, alarm_id } => tx
            .prepare_cached("DELETE FROM alarms WHERE actor_id = ?1 AND alarm_id = ?2")
            .map_err(db)?
            .execute(params![actor.as_str(), alarm_id]),
        Write::KvPut { actor, key, value } => {
            let found = kv_entry_size(tx, &actor, &key)?;
            let old = found.unwrap_or(0);
            let new = i64::try_from(key.len() + value.len())
                .map_err(|_| StorageError::backend(Error::OutOfRange("kv entry")))?;
            // As for the state: a one-row update needs no statement journal, an upsert does.
            let changed = if found.is_some() {
                tx.prepare_cached("UPDATE kv SET value = ?3 WHERE actor_id = ?1 AND key = ?2")
            } else {
                tx.prepare_cached(
                    "INSERT INTO kv (actor_id, key, value)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM actors WHERE id = ?1)",
                )
            }
            .map_err(db)?
            .execute(params![actor.as_str(), key, value])
            .map_err(db)?;
            if changed > 0 {
                *kv_bytes.entry(actor).or_default() += new - old;
            }
            return Ok(());
        }
        Write::KvDelete { actor, key } => {
            let mut stmt = tx
                .prepare_cached(
                    "DELETE FROM kv WHERE actor_id = ?1 AND key = ?2
                     RETURNING length(key) + length(value)",
                )
                .map_err(db)?;
            let freed = deleted_bytes(&mut stmt, params![actor.as_str(), key])?;
            *kv_bytes.entry(actor).or_default() -= freed;
            return Ok(());
        }
        Write::KvDeleteRange { actor, start, end } => {
            let freed = match end {
                Some(end) => {
                    let mut stmt = tx
                        .prepare_cached(
                            "DELETE FROM kv WHERE actor_id = ?1 AND key >= ?2 AND key < ?3
                             RETURNING length(key) + length(value)",
                        )
                        .map_err(db)?;
                    deleted_bytes(&mut stmt, params![actor.as_str(), start, end])?
                }
                None => {
                    let mut stmt = tx
                        .prepare_cached(
                            "DELETE FROM kv WHERE actor_id = ?1 AND key >= ?2
                             RETURNING length(key) + length(value)",
                        )
                        .map_err(db)?;
                    deleted_bytes(&mut stmt, params![actor.as_str(), start])?
                }
            };
            *kv_bytes.entry(actor).or_default() -= freed;
            return Ok(());
        }
        Write::BumpGeneration { actor } => tx
            .prepare_cached("UPDATE actors SET generation = generation + 1 WHERE id = ?1")
            .map_err(db)?
            .execute([actor.as_str()]),
        // `Write` is non-exhaustive: refuse (and so roll back) what this driver cannot apply
        // rather than drop it.
        _ => return Err(StorageError::backend(Error::UnsupportedWrite)),
    }
    .map_err(db)?;
    Ok(())
}

pub(crate) fn delete_actor(conn: &mut Connection, files: &Files, id: &ActorId) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    for sql in [
        "DELETE FROM state WHERE actor_id = ?1",
        "DELETE FROM alarms WHERE actor_id = ?1",
        "DELETE FROM kv WHERE actor_id = ?1",
        "DELETE FROM actors WHERE id = ?1",
    ] {
        tx.prepare_cached(sql)
            .map_err(db)?
            .execute([id.as_str()])
            .map_err(db)?;
    }
    files.check()?;
    tx.commit().map_err(db)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Durability, schema};

    #[test]
    fn a_full_disk_makes_the_store_unavailable_and_applies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let lock = dir.path().join("db.lock");
        std::fs::write(&lock, b"").unwrap();
        let settings = schema::Settings {
            busy_timeout: Duration::from_secs(1),
            durability: Durability::default(),
            quick_check_limit: 0,
            checkpoint_pages: crate::DEFAULT_CHECKPOINT_PAGES,
            recover: false,
            cache_bytes: crate::DEFAULT_CACHE_BYTES,
            mmap_bytes: crate::DEFAULT_MMAP_BYTES,
        };
        let mut opened = schema::open(&path, settings, true).unwrap();
        let files = Files::record(&path, &lock, false).unwrap();
        let conn = &mut opened.connection;
        let meta = ActorMeta::new(ActorId::new("a"), "n", ActorKey::from("k"), 0);
        let state = |size: usize| {
            vec![Unit::unfenced(vec![Write::State {
                actor: meta.id.clone(),
                bytes: vec![7; size],
            }])]
        };
        let create = vec![Unit::unfenced(vec![Write::CreateActor {
            meta: meta.clone(),
        }])];
        commit(conn, &files, create).unwrap();
        commit(conn, &files, state(10)).unwrap();

        // The database may not grow: as full as a full disk, for SQLite.
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
        let err = commit(conn, &files, state(1 << 20)).unwrap_err();
        let StorageError::Unavailable { reason, source } = &err else {
            panic!("expected storage unavailable, got {err:?}");
        };
        assert!(reason.contains("full"), "{reason}");
        assert!(source.is_some());
        assert_eq!(load_state(conn, &meta.id).unwrap(), Some(vec![7; 10]));

        // Room again: the same store takes writes.
        conn.pragma_update(None, "max_page_count", pages * 1000)
            .unwrap();
        commit(conn, &files, state(1 << 20)).unwrap();
        assert_eq!(load_state(conn, &meta.id).unwrap(), Some(vec![7; 1 << 20]));
    }
}
