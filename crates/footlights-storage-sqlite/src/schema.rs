//! Opening the database file: connection settings, the schema, the format version.

use std::path::Path;
use std::time::Duration;

use footlights_storage::{FORMAT_VERSION, Result, StorageError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::Durability;
use crate::error::Error;
use crate::{marker, wal};

/// Where the format version is kept: `footlights_meta` row `format_version`. This table is the
/// only thing every format version must keep as it is.
const META_TABLE: &str = "CREATE TABLE IF NOT EXISTS footlights_meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) STRICT;";

/// The tables of the current format version (2).
///
/// `key_text` is the key's display form (`room/general`), for people and tools; `key_sort` is
/// its sortable encoding (see `key.rs`), which the uniqueness constraint, lookups, ordering and
/// prefix listing use. Child rows reference their actor; writes check that it exists, and
/// deleting an actor deletes them explicitly (the foreign keys are a second line of defence).
///
/// `kv` is clustered on `(actor_id, key)` (`WITHOUT ROWID`), so listing a range of one actor's
/// keys reads adjacent pages and nothing else; `actors.kv_bytes` keeps the size of each actor's
/// map up to date in the same transactions that change it.
const SCHEMA: &str = "
CREATE TABLE actors (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    key_text      TEXT NOT NULL,
    key_sort      BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    generation    INTEGER NOT NULL,
    kv_bytes      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, key_sort)
) STRICT;

CREATE TABLE state (
    actor_id TEXT PRIMARY KEY NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    bytes    BLOB NOT NULL
) STRICT;

CREATE TABLE alarms (
    actor_id TEXT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    alarm_id TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    action   TEXT NOT NULL,
    args     BLOB NOT NULL,
    PRIMARY KEY (actor_id, alarm_id)
) STRICT;

CREATE INDEX alarms_by_time ON alarms (at_ms, actor_id, alarm_id);
";

/// The key-value table of format version 2, made by [`SCHEMA`]'s creation and by the upgrade
/// from version 1.
const KV_TABLE: &str = "
CREATE TABLE kv (
    actor_id TEXT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    key      BLOB NOT NULL,
    value    BLOB NOT NULL,
    PRIMARY KEY (actor_id, key)
) STRICT, WITHOUT ROWID;
";

/// Format version 1 to 2, inside the opening transaction: the key-value table becomes
/// clustered on its key, and every actor gets its map's size.
const UPGRADE_1_TO_2: &str = "
ALTER TABLE kv RENAME TO kv_v1;
ALTER TABLE actors ADD COLUMN kv_bytes INTEGER NOT NULL DEFAULT 0;
";

/// After [`KV_TABLE`] is made again: the rows moved over, the old table dropped, the sizes
/// counted.
const UPGRADE_1_TO_2_DATA: &str = "
INSERT INTO kv (actor_id, key, value) SELECT actor_id, key, value FROM kv_v1;
DROP TABLE kv_v1;
UPDATE actors SET kv_bytes =
    (SELECT coalesce(sum(length(key) + length(value)), 0) FROM kv WHERE kv.actor_id = actors.id);
";
/// What [`open`] found and did, for the log.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) connection: Connection,
    pub(crate) journal_mode: String,
    pub(crate) created: bool,
}

/// What [`open`] is asked for, from the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) busy_timeout: Duration,
    pub(crate) durability: Durability,
    /// Files up to this size get `quick_check` at open.
    pub(crate) quick_check_limit: u64,
    /// The write-ahead log's length in pages that starts a checkpoint.
    pub(crate) checkpoint_pages: u32,
    /// Opens a store that fails the checks, logging what is given up, instead of refusing it.
    pub(crate) recover: bool,
    /// The page cache of each connection, in bytes.
    pub(crate) cache_bytes: u64,
    /// How much of the database file each connection maps into memory for its reads, in bytes.
    pub(crate) mmap_bytes: u64,
}

/// Sets the connection's page cache to `bytes` (SQLite takes a negative `cache_size` as KiB).
/// Pages are allocated as they are read, so a small store never fills it.
fn set_cache(connection: &Connection, bytes: u64) -> Result<()> {
    let kib = i64::try_from(bytes / 1024).unwrap_or(i64::MAX).max(1);
    connection
        .pragma_update(None, "cache_size", -kib)
        .map_err(StorageError::backend)
}

/// Lets the connection read the first `bytes` of the database file through a memory map
/// (`mmap_size`; 0 turns it off). SQLite maps the file read-only and still writes with `pwrite`,
/// and lowers a value above its compile-time limit (2 GiB less 64 KiB on Linux) to that limit.
fn set_mmap(connection: &Connection, bytes: u64) -> Result<()> {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    connection
        .pragma_update(None, "mmap_size", bytes)
        .map_err(StorageError::backend)
}

/// Opens (or creates) the database at `path` and makes sure it holds a store this build can
/// use: a write-ahead log SQLite will not cut short (read first, if `only`: no other write
/// connection of this process has the file open), undamaged (if no larger than the quick
/// check's limit), not missing the log it had at an unclean stop, WAL, `synchronous` as the
/// durability asks, the schema, and a format version no newer than ours.
pub(crate) fn open(path: &Path, settings: Settings, only: bool) -> Result<Opened> {
    // Before SQLite reads the log, which it replays (and then writes over) from its first read.
    // A log another connection of this process has open was read when that one opened.
    let wal_found = if only {
        wal::check(path, settings.durability, settings.recover)?
    } else {
        wal::path(path).exists()
    };
    let mut connection = Connection::open(path).map_err(StorageError::backend)?;
    connection
        .busy_timeout(settings.busy_timeout)
        .map_err(StorageError::backend)?;
    let journal_mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(StorageError::backend)?;
    // FULL: every commit syncs the WAL before returning, so an `Ok` commit survives a power cut.
    // NORMAL (WAL mode): the WAL is synced at checkpoints only; a commit is in the page cache,
    // which outlives the process but not the machine.
    let synchronous = match settings.durability {
        Durability::Power => "FULL",
        Durability::Process => "NORMAL",
    };
    connection
        .pragma_update(None, "synchronous", synchronous)
        .map_err(StorageError::backend)?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(StorageError::backend)?;
    set_cache(&connection, settings.cache_bytes)?;
    set_mmap(&connection, settings.mmap_bytes)?;
    // Longer than SQLite's default, so that a page changed by many commits between two
    // checkpoints is copied into the database file once; the file is cut back to that length
    // when a checkpoint finds it longer (one large transaction can make it grow past it).
    connection
        .pragma_update(None, "wal_autocheckpoint", settings.checkpoint_pages)
        .map_err(StorageError::backend)?;
    let page_size: i64 = connection
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(StorageError::backend)?;
    connection
        .pragma_update(
            None,
            "journal_size_limit",
            page_size * i64::from(settings.checkpoint_pages),
        )
        .map_err(StorageError::backend)?;
    check_integrity(
        &connection,
        path,
        settings.quick_check_limit,
        settings.recover,
    )?;
    if journal_mode.eq_ignore_ascii_case("wal") {
        marker::check(&connection, path, wal_found, settings.recover)?;
    }
    let created = init(&mut connection)?;
    Ok(Opened {
        connection,
        journal_mode,
        created,
    })
}

/// Refuses a damaged file (logged at ERROR), unless `recover`: `PRAGMA quick_check(1)`, which
/// reads every page once and checks the b-trees' structure (not that indexes match their tables,
/// as the full `integrity_check` does), stopping at the first problem. Its cost grows with the
/// file (see the crate docs), so files larger than `limit` bytes are not checked.
fn check_integrity(connection: &Connection, path: &Path, limit: u64, recover: bool) -> Result<()> {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if size > limit {
        tracing::info!(
            path = %path.display(),
            size,
            limit,
            "the store is larger than the quick check's limit: not checked at open"
        );
        return Ok(());
    }
    let corrupt = |problem: String| Error::Corrupt {
        path: path.to_path_buf(),
        problem: problem.replace('\n', " "),
    };
    let started = std::time::Instant::now();
    let found = connection.query_row("PRAGMA quick_check(1)", [], |row| row.get::<_, String>(0));
    let corruption = match found {
        Ok(found) => {
            tracing::debug!(path = %path.display(), elapsed = ?started.elapsed(), result = %found, "quick check");
            if found == "ok" {
                return Ok(());
            }
            corrupt(found)
        }
        Err(e) => match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                corrupt(e.to_string())
            }
            _ => return Err(StorageError::backend(e)),
        },
    };
    if recover {
        tracing::error!(
            error = %corruption,
            "opening a store that failed the integrity check, as asked: what is readable is \
             served, and reads or writes that reach a damaged page fail"
        );
        return Ok(());
    }
    tracing::error!(error = %corruption, "refusing to open the store");
    Err(StorageError::backend(corruption))
}

/// Opens another connection to a store that [`open`] has set up, for reads only. Reads take no
/// write lock, and in WAL mode they run beside a commit on the other connection; a read
/// started after a commit returned sees it.
pub(crate) fn open_reader(path: &Path, settings: Settings) -> Result<Connection> {
    let connection = Connection::open(path).map_err(StorageError::backend)?;
    set_cache(&connection, settings.cache_bytes)?;
    set_mmap(&connection, settings.mmap_bytes)?;
    connection
        .busy_timeout(settings.busy_timeout)
        .map_err(StorageError::backend)?;
    connection
        .pragma_update(None, "query_only", "ON")
        .map_err(StorageError::backend)?;
    Ok(connection)
}

/// Checks the recorded format version, creating the schema in a new file. Returns whether it
/// did. One `IMMEDIATE` transaction, so two processes opening a new file create it once.
fn init(connection: &mut Connection) -> Result<bool> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StorageError::backend)?;
    tx.execute_batch(META_TABLE)
        .map_err(StorageError::backend)?;
    let found: Option<i64> = tx
        .query_row(
            "SELECT value FROM footlights_meta WHERE name = 'format_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(StorageError::backend)?;
    let created = match found {
        None => {
            tx.execute_batch(SCHEMA).map_err(StorageError::backend)?;
            tx.execute_batch(KV_TABLE).map_err(StorageError::backend)?;
            tx.execute(
                "INSERT INTO footlights_meta (name, value) VALUES ('format_version', ?1)",
                [FORMAT_VERSION],
            )
            .map_err(StorageError::backend)?;
            true
        }
        Some(found) => {
            if check_version(found)? < FORMAT_VERSION {
                upgrade(&tx, found)?;
            }
            false
        }
    };
    // Dropping `tx` without committing (on the error paths above) rolls back, leaving a store of
    // a newer version exactly as it was.
    tx.commit().map_err(StorageError::backend)?;
    Ok(created)
}

/// Brings a store of an older format version up to [`FORMAT_VERSION`], one version at a
/// time, inside the opening transaction: a failed upgrade leaves the file as it was.
fn upgrade(tx: &rusqlite::Transaction<'_>, found: i64) -> Result<()> {
    let mut version = found;
    while version < i64::from(FORMAT_VERSION) {
        match version {
            1 => {
                tx.execute_batch(UPGRADE_1_TO_2)
                    .and_then(|()| tx.execute_batch(KV_TABLE))
                    .and_then(|()| tx.execute_batch(UPGRADE_1_TO_2_DATA))
                    .map_err(StorageError::backend)?;
            }
            other => return Err(StorageError::backend(Error::BadFormatVersion(other))),
        }
        version += 1;
        tracing::info!(
            from = version - 1,
            to = version,
            "upgraded the store's format"
        );
    }
    tx.execute(
        "UPDATE footlights_meta SET value = ?1 WHERE name = 'format_version'",
        [FORMAT_VERSION],
    )
    .map_err(StorageError::backend)?;
    Ok(())
}

/// Accepts the versions this build reads (1 up to [`FORMAT_VERSION`]) and returns the one
/// found.
fn check_version(found: i64) -> Result<u32> {
    let supported = FORMAT_VERSION;
    match u32::try_from(found) {
        Ok(found) if (1..=supported).contains(&found) => Ok(found),
        Ok(found) if found > supported => Err(StorageError::UnsupportedFormat { found, supported }),
        Err(_) if found > 0 => Err(StorageError::UnsupportedFormat {
            found: u32::MAX,
            supported,
        }),
        _ => Err(StorageError::backend(Error::BadFormatVersion(found))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(conn: &Connection, name: &str) -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |row| {
            Ok(match row.get_ref(0)? {
                rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                other => other.as_str()?.to_owned(),
            })
        })
        .unwrap()
    }

    fn settings(durability: Durability) -> Settings {
        Settings {
            busy_timeout: Duration::from_millis(1500),
            durability,
            quick_check_limit: u64::MAX,
            checkpoint_pages: crate::DEFAULT_CHECKPOINT_PAGES,
            recover: false,
            cache_bytes: crate::DEFAULT_CACHE_BYTES,
            mmap_bytes: crate::DEFAULT_MMAP_BYTES,
        }
    }

    #[test]
    fn connection_is_wal_with_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open(
            &dir.path().join("db"),
            settings(Durability::default()),
            true,
        )
        .unwrap();
        let conn = &opened.connection;
        assert_eq!(pragma(conn, "journal_mode"), "wal");
        assert_eq!(pragma(conn, "synchronous"), "2", "FULL");
        assert_eq!(pragma(conn, "foreign_keys"), "1");
        assert_eq!(pragma(conn, "busy_timeout"), "1500");
        assert_eq!(pragma(conn, "wal_autocheckpoint"), "4096");
        assert_eq!(pragma(conn, "cache_size"), "-65536", "64 MiB, in KiB");
        assert_eq!(pragma(conn, "mmap_size"), "0", "no map");
        assert_eq!(
            pragma(conn, "journal_size_limit"),
            (4096 * 4096).to_string()
        );
        assert!(opened.created);
    }

    #[test]
    fn process_durability_is_normal_sync_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open(&dir.path().join("db"), settings(Durability::Process), true).unwrap();
        assert_eq!(pragma(&opened.connection, "journal_mode"), "wal");
        assert_eq!(pragma(&opened.connection, "synchronous"), "1", "NORMAL");
    }

    /// Whether this process has `path` itself (not its `-wal` or `-shm` file) mapped.
    #[cfg(target_os = "linux")]
    fn mapped(path: &Path) -> bool {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let path = path.to_str().unwrap();
        maps.lines().any(|line| line.ends_with(path))
    }

    #[test]
    fn both_connections_map_what_they_are_asked_to_and_zero_maps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        for bytes in [256u64 << 20, 0] {
            let settings = Settings {
                mmap_bytes: bytes,
                ..settings(Durability::default())
            };
            let opened = open(&path, settings, true).unwrap();
            let reader = open_reader(&path, settings).unwrap();
            for conn in [&opened.connection, &reader] {
                assert_eq!(pragma(conn, "mmap_size"), bytes.to_string());
            }
            // Into the database file, where a map reads it (pages still in the log are read
            // from the log).
            opened
                .connection
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
            let version: u32 = reader
                .query_row(
                    "SELECT value FROM footlights_meta WHERE name = 'format_version'",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(version, FORMAT_VERSION);
            #[cfg(target_os = "linux")]
            assert_eq!(mapped(&path), bytes > 0, "{bytes}");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_map_larger_than_sqlite_allows_is_lowered_to_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            mmap_bytes: u64::MAX,
            ..settings(Durability::default())
        };
        let opened = open(&dir.path().join("db"), settings, true).unwrap();
        assert_eq!(pragma(&opened.connection, "mmap_size"), "2147418112");
    }
}
