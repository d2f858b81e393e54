//! The tables, created at connect, and the recorded format version.

use footlights_storage::{FORMAT_VERSION, Result, StorageError};

use crate::error::{Error, db};

/// The tables of format version 2 (the first this driver writes), in the driver's schema.
///
/// - `actors`: one row per actor, the `(name, key_sort)` unique index for lookups, listing and
///   uniqueness (`key_sort`: see `key.rs`), the generation every fenced write is checked
///   against, the size of its key-value map (kept by the same transactions that change the
///   map) and `owner`, the node incarnation that claimed it (NULL: never claimed, or
///   released). One row holds the fence and the placement, so one row lock orders a claim
///   against every commit of the actor.
/// - `state`, `alarms`, `kv`: the actor's data, deleted with it (`ON DELETE CASCADE`).
/// - `nodes`: one lease per node incarnation, its end on the database's clock.
///
/// Text that is ordered or compared uses the `"C"` collation: byte order, the same on every
/// server whatever its locale.
const TABLES: &str = r#"
CREATE TABLE actors (
    id            text COLLATE "C" PRIMARY KEY,
    name          text COLLATE "C" NOT NULL,
    key_sort      bytea NOT NULL,
    created_at_ms bigint NOT NULL,
    generation    bigint NOT NULL,
    kv_bytes      bigint NOT NULL DEFAULT 0,
    owner         text COLLATE "C",
    UNIQUE (name, key_sort)
);

CREATE TABLE state (
    actor_id text COLLATE "C" PRIMARY KEY REFERENCES actors (id) ON DELETE CASCADE,
    bytes    bytea NOT NULL
);

CREATE TABLE alarms (
    actor_id text COLLATE "C" NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    alarm_id text COLLATE "C" NOT NULL,
    at_ms    bigint NOT NULL,
    action   text NOT NULL,
    args     bytea NOT NULL,
    PRIMARY KEY (actor_id, alarm_id)
);

CREATE INDEX alarms_by_time ON alarms (at_ms, actor_id, alarm_id);

CREATE TABLE kv (
    actor_id text COLLATE "C" NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    key      bytea NOT NULL,
    value    bytea NOT NULL,
    PRIMARY KEY (actor_id, key)
);

CREATE TABLE nodes (
    incarnation text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    peer_addr   text NOT NULL,
    public_url  text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
"#;

/// Checks that `schema` can be written into SQL as an identifier as it is.
pub(crate) fn check_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && schema.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(Error::BadSchemaName(schema.to_owned()).into())
    }
}

/// Creates the schema and its tables if they are missing, and checks the recorded format
/// version. Idempotent, and safe for several processes connecting at once: one transaction,
/// which first takes a transaction-scoped advisory lock named after the schema, so concurrent
/// first connects create the tables once (a plain `CREATE … IF NOT EXISTS` can still fail
/// when two sessions race). Returns whether it created the tables.
pub(crate) async fn init(client: &mut tokio_postgres::Client, schema: &str) -> Result<bool> {
    check_name(schema)?;
    let tx = client.transaction().await.map_err(db)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('footlights schema ' || $1))",
        &[&schema],
    )
    .await
    .map_err(db)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         SET LOCAL search_path TO \"{schema}\";
         CREATE TABLE IF NOT EXISTS footlights_meta (
             name  text COLLATE \"C\" PRIMARY KEY,
             value bigint NOT NULL
         );"
    ))
    .await
    .map_err(db)?;
    let found = tx
        .query_opt(
            "SELECT value FROM footlights_meta WHERE name = 'format_version'",
            &[],
        )
        .await
        .map_err(db)?
        .map(|row| row.try_get::<_, i64>(0))
        .transpose()
        .map_err(db)?;
    let created = match found {
        None => {
            tx.batch_execute(TABLES).await.map_err(db)?;
            tx.execute(
                "INSERT INTO footlights_meta (name, value) VALUES ('format_version', $1)",
                &[&i64::from(FORMAT_VERSION)],
            )
            .await
            .map_err(db)?;
            true
        }
        Some(found) => {
            check_version(found)?;
            false
        }
    };
    // On the error paths `tx` is dropped unfinished, which rolls back: a store of a newer
    // version is left as it was.
    tx.commit().await.map_err(db)?;
    Ok(created)
}

/// Accepts the version this build writes. This driver started at version 2, so there is
/// nothing older to upgrade yet; a newer one is refused.
fn check_version(found: i64) -> Result<()> {
    let supported = FORMAT_VERSION;
    match u32::try_from(found) {
        Ok(found) if found == supported => Ok(()),
        Ok(found) if found > supported => Err(StorageError::UnsupportedFormat { found, supported }),
        Err(_) if found > 0 => Err(StorageError::UnsupportedFormat {
            found: u32::MAX,
            supported,
        }),
        _ => Err(Error::BadFormatVersion(found).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["public", "footlights", "_t1", "T_2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in ["", "1a", "a-b", "a\"b", "a b", "é", long.as_str()] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert!(check_version(i64::from(FORMAT_VERSION)).is_ok());
        assert!(matches!(
            check_version(i64::from(FORMAT_VERSION) + 1),
            Err(StorageError::UnsupportedFormat { .. })
        ));
        assert!(matches!(check_version(0), Err(StorageError::Backend(_))));
        assert!(matches!(check_version(1), Err(StorageError::Backend(_))));
    }
}
