//! The SQL behind each reading [`Driver`](footlights_storage::Driver) method, and deletes.
//!
//! Each read is one statement, so it sees one snapshot of the store (READ COMMITTED takes a
//! snapshot per statement): `kv_get_many` reads every key at one point in time with one
//! statement over an array of keys.

use std::ops::Bound;

use footlights_storage::{ActorId, ActorKey, ActorMeta, Alarm, KvEntries, KvRange, Result};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{db, to_u64};
use crate::key;

/// The columns [`meta`] reads, in its order.
pub(crate) const META_COLUMNS: &str = "id, name, key_sort, created_at_ms, generation";

/// Reads an `actors` row selected with [`META_COLUMNS`].
pub(crate) fn meta(row: &Row) -> Result<ActorMeta> {
    let key_sort: Vec<u8> = row.try_get(2).map_err(db)?;
    Ok(ActorMeta {
        id: ActorId::new(row.try_get::<_, String>(0).map_err(db)?),
        name: row.try_get(1).map_err(db)?,
        key: key::decode(&key_sort).map_err(crate::error::Error::from)?,
        created_at_ms: row.try_get(3).map_err(db)?,
        generation: to_u64(row.try_get(4).map_err(db)?, "generation")?,
    })
}

/// Reads rows selected with [`META_COLUMNS`].
fn metas(rows: &[Row]) -> Result<Vec<ActorMeta>> {
    rows.iter().map(meta).collect()
}

/// Reads an alarm from the columns `alarm_id, at_ms, action, args` starting at `first`.
fn alarm(row: &Row, first: usize) -> Result<Alarm> {
    Ok(Alarm {
        id: row.try_get(first).map_err(db)?,
        at_ms: row.try_get(first + 1).map_err(db)?,
        action: row.try_get(first + 2).map_err(db)?,
        args: row.try_get(first + 3).map_err(db)?,
    })
}

/// A connection from the pool, with prepared statements cached per connection.
pub(crate) type Client = deadpool_postgres::Object;

/// The actor's row by id: a primary-key lookup.
pub(crate) async fn actor(c: &Client, id: &ActorId) -> Result<Option<ActorMeta>> {
    let sql = format!("SELECT {META_COLUMNS} FROM actors WHERE id = $1");
    let stmt = c.prepare_cached(&sql).await.map_err(db)?;
    let row = c.query_opt(&stmt, &[&id.as_str()]).await.map_err(db)?;
    row.as_ref().map(meta).transpose()
}

/// The actor's row by name and key: a lookup of the unique `(name, key_sort)` index, with
/// the key in its sortable form.
pub(crate) async fn find_actor(
    c: &Client,
    name: &str,
    key: &ActorKey,
) -> Result<Option<ActorMeta>> {
    let sql = format!("SELECT {META_COLUMNS} FROM actors WHERE name = $1 AND key_sort = $2");
    let stmt = c.prepare_cached(&sql).await.map_err(db)?;
    let row = c
        .query_opt(&stmt, &[&name, &key::encode(key)])
        .await
        .map_err(db)?;
    row.as_ref().map(meta).transpose()
}

/// One range scan of the `(name, key_sort)` index: from after `after` (or the prefix) to the
/// end of the prefix, at most `limit` rows.
pub(crate) async fn list_actors(
    c: &Client,
    name: &str,
    key_prefix: &ActorKey,
    after: Option<&ActorKey>,
    limit: usize,
) -> Result<Vec<ActorMeta>> {
    let footlights_storage::key_order::PageBounds { start, end, after } =
        footlights_storage::key_order::page_bounds(key_prefix, after);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // An absent bound is NULL, which the `IS NULL OR` lets every row through.
    let sql = format!(
        "SELECT {META_COLUMNS} FROM actors
         WHERE name = $1 AND key_sort >= $2
           AND ($3::bytea IS NULL OR key_sort > $3)
           AND ($4::bytea IS NULL OR key_sort < $4)
         ORDER BY key_sort LIMIT $5"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(db)?;
    let rows = c
        .query(&stmt, &[&name, &start, &after, &end, &limit])
        .await
        .map_err(db)?;
    metas(&rows)
}

/// The state snapshot, `None` if none was saved (or no such actor). An empty snapshot is
/// `Some` of no bytes: `bytes` is `NOT NULL`.
pub(crate) async fn load_state(c: &Client, id: &ActorId) -> Result<Option<Vec<u8>>> {
    let stmt = c
        .prepare_cached("SELECT bytes FROM state WHERE actor_id = $1")
        .await
        .map_err(db)?;
    let row = c.query_opt(&stmt, &[&id.as_str()]).await.map_err(db)?;
    row.map(|r| r.try_get(0)).transpose().map_err(db)
}

/// The actor's alarms by time, then id (the primary key keeps them per actor).
pub(crate) async fn load_alarms(c: &Client, id: &ActorId) -> Result<Vec<Alarm>> {
    let stmt = c
        .prepare_cached(
            "SELECT alarm_id, at_ms, action, args FROM alarms
             WHERE actor_id = $1 ORDER BY at_ms, alarm_id",
        )
        .await
        .map_err(db)?;
    let rows = c.query(&stmt, &[&id.as_str()]).await.map_err(db)?;
    rows.iter().map(|r| alarm(r, 0)).collect()
}

/// Every alarm, by time, then actor, then id: a walk of the `(at_ms, actor_id, alarm_id)`
/// index, in the `"C"` collation's byte order.
pub(crate) async fn all_alarms(c: &Client) -> Result<Vec<(ActorId, Alarm)>> {
    let stmt = c
        .prepare_cached(
            "SELECT actor_id, alarm_id, at_ms, action, args FROM alarms
             ORDER BY at_ms, actor_id, alarm_id",
        )
        .await
        .map_err(db)?;
    let rows = c.query(&stmt, &[]).await.map_err(db)?;
    rows.iter()
        .map(|r| {
            let actor: String = r.try_get(0).map_err(db)?;
            Ok((ActorId::new(actor), alarm(r, 1)?))
        })
        .collect()
}

/// One entry of the map: a primary-key lookup.
pub(crate) async fn kv_get(c: &Client, id: &ActorId, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let stmt = c
        .prepare_cached("SELECT value FROM kv WHERE actor_id = $1 AND key = $2")
        .await
        .map_err(db)?;
    let row = c
        .query_opt(&stmt, &[&id.as_str(), &key])
        .await
        .map_err(db)?;
    row.map(|r| r.try_get(0)).transpose().map_err(db)
}

/// Every key in one statement (one snapshot): the keys as an array, joined to `kv` by
/// position.
pub(crate) async fn kv_get_many(
    c: &Client,
    id: &ActorId,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<Vec<u8>>>> {
    let stmt = c
        .prepare_cached(
            "SELECT kv.value FROM unnest($2::bytea[]) WITH ORDINALITY AS asked (key, n)
             LEFT JOIN kv ON kv.actor_id = $1 AND kv.key = asked.key
             ORDER BY asked.n",
        )
        .await
        .map_err(db)?;
    let rows = c.query(&stmt, &[&id.as_str(), &keys]).await.map_err(db)?;
    rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
}

/// One range scan of the `(actor_id, key)` primary key, in either direction.
pub(crate) async fn kv_list(c: &Client, id: &ActorId, range: &KvRange) -> Result<KvEntries> {
    if range.is_empty() || range.limit == 0 {
        return Ok(Vec::new());
    }
    let actor = id.as_str();
    let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
    let mut sql = String::from("SELECT key, value FROM kv WHERE actor_id = $1");
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&actor];
    for (bound, included, excluded) in [(&range.start, ">=", ">"), (&range.end, "<=", "<")] {
        let (op, key) = match bound {
            Bound::Included(k) => (included, k),
            Bound::Excluded(k) => (excluded, k),
            Bound::Unbounded => continue,
        };
        params.push(key);
        sql.push_str(&format!(" AND key {op} ${}", params.len()));
    }
    let order = if range.reverse { "DESC" } else { "ASC" };
    params.push(&limit);
    sql.push_str(&format!(" ORDER BY key {order} LIMIT ${}", params.len()));
    let stmt = c.prepare_cached(&sql).await.map_err(db)?;
    let rows = c.query(&stmt, &params).await.map_err(db)?;
    rows.iter()
        .map(|r| Ok((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?)))
        .collect()
}

/// The size kept in `actors.kv_bytes` by the commits that change the map (no scan); 0 for
/// an unknown actor.
pub(crate) async fn kv_size(c: &Client, id: &ActorId) -> Result<u64> {
    let stmt = c
        .prepare_cached("SELECT kv_bytes FROM actors WHERE id = $1")
        .await
        .map_err(db)?;
    let row = c.query_opt(&stmt, &[&id.as_str()]).await.map_err(db)?;
    let bytes: Option<i64> = row.map(|r| r.try_get(0)).transpose().map_err(db)?;
    to_u64(bytes.unwrap_or(0), "kv_bytes")
}

/// One statement: the actor's row and, through the foreign keys' `ON DELETE CASCADE`, its
/// state, alarms and key-value map. It waits for a commit that holds the actor's row.
pub(crate) async fn delete_actor(c: &Client, id: &ActorId) -> Result<()> {
    let stmt = c
        .prepare_cached("DELETE FROM actors WHERE id = $1")
        .await
        .map_err(db)?;
    c.execute(&stmt, &[&id.as_str()]).await.map_err(db)?;
    Ok(())
}
