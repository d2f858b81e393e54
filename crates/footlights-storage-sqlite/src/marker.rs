//! Whether the store was closed cleanly: the row `in_use` of the table `footlights_meta`.
//!
//! When the last connection to a database in WAL mode closes cleanly, SQLite copies the
//! write-ahead log into the database file (a checkpoint) and deletes the log. After a crash the
//! log stays, and the commits since the last checkpoint are in it alone. If it is then deleted
//! (a clean-up by hand, the database file copied or restored without it), SQLite opens the
//! database file as it is: those commits are gone, and a missing log looks just as it does
//! after a clean close.
//!
//! This row tells the two apart. At open, once the other checks passed, the driver sets it to 1
//! and checkpoints, so that the database file itself says "in use" (the checkpoint also empties
//! the log when no other write connection of the process has the file open). When the last
//! write connection of the process closes (`lock.rs` counts them), it sets the row to 0 just
//! before closing; SQLite deletes the log only after a checkpoint, which copies that 0 into the
//! database file first. So a 1 in the database file with no log beside it means the log was
//! lost after an unclean stop, and [`check`] refuses the store, at open, before anything is
//! written.
//!
//! This needs no new format version. `footlights_meta` is the table every format version keeps,
//! and builds look up only the rows they know, so a build of the same format without this row
//! opens these files as before. A file without the row (written by an older build, or just
//! upgraded from format version 1) counts as closed cleanly: nothing says otherwise. One
//! consequence: if such an older build opens the store after an unclean stop of this one and
//! closes it cleanly, the row still says 1 while the log is gone, and this build's next open is
//! refused although nothing was lost; opening it with `recover` goes on.
//!
//! Only a store in WAL mode has the row: without a log there is nothing to lose.

use std::path::Path;

use footlights_storage::{Result, StorageError};
use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;
use crate::wal;

/// The row's name in `footlights_meta`.
const ROW: &str = "in_use";

/// Refuses the store at `database` (logged at ERROR) if its database file says it is in use
/// and there was no log file beside it (`wal_found`) before SQLite opened it, unless `recover`.
pub(crate) fn check(
    connection: &Connection,
    database: &Path,
    wal_found: bool,
    recover: bool,
) -> Result<()> {
    if wal_found {
        return Ok(());
    }
    let in_use = match read(connection) {
        Ok(value) => value == Some(1),
        Err(e) if recover => {
            tracing::warn!(path = %database.display(), error = %e, "cannot read whether the store was closed cleanly");
            false
        }
        Err(e) => return Err(e),
    };
    if !in_use {
        return Ok(());
    }
    let wal = wal::path(database);
    if recover {
        tracing::error!(
            path = %database.display(),
            wal = %wal.display(),
            "opening the store without the write-ahead log it had when it stopped, as asked: the \
             commits since its last checkpoint are given up"
        );
        return Ok(());
    }
    let missing = Error::WalMissing {
        database: database.to_path_buf(),
        wal,
    };
    tracing::error!(error = %missing, "refusing to open the store");
    Err(StorageError::backend(missing))
}

/// The row's value, if the table and the row exist.
fn read(connection: &Connection) -> Result<Option<i64>> {
    let has_table: bool = connection
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'footlights_meta'",
            [],
            |row| row.get(0),
        )
        .map_err(StorageError::backend)?;
    if !has_table {
        return Ok(None);
    }
    connection
        .query_row(
            "SELECT value FROM footlights_meta WHERE name = ?1",
            [ROW],
            |row| row.get(0),
        )
        .optional()
        .map_err(StorageError::backend)
}

/// Records that the store is in use, and checkpoints so that the database file says so.
/// `only`: no other write connection of the process has the file open, so the checkpoint may
/// also empty the log (`TRUNCATE`, which waits for other connections' reads, of which there are
/// none); otherwise it copies what it can without waiting (`PASSIVE`).
pub(crate) fn set_open(connection: &Connection, only: bool) -> Result<()> {
    connection
        .execute(
            "INSERT INTO footlights_meta (name, value) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET value = 1",
            [ROW],
        )
        .map_err(StorageError::backend)?;
    let mode = if only { "TRUNCATE" } else { "PASSIVE" };
    let (busy, frames, copied): (i64, i64, i64) = connection
        .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(StorageError::backend)?;
    if busy != 0 || frames != copied {
        // Another connection is reading an older snapshot; a later checkpoint copies the row.
        tracing::debug!(
            mode,
            busy,
            frames,
            copied,
            "the checkpoint at open did not copy the whole log"
        );
    }
    Ok(())
}

/// Records that the store is closing cleanly, just before the last write connection of the
/// process closes. A failure is logged (at WARN) and otherwise ignored: every commit is durable
/// already.
pub(crate) fn set_closed(connection: &Connection, database: &Path) {
    // A job that panicked may have left a transaction open; this must not join it.
    if !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    match connection.execute(
        "UPDATE footlights_meta SET value = 0 WHERE name = ?1",
        [ROW],
    ) {
        Ok(_) => tracing::debug!(path = %database.display(), "recorded a clean close"),
        Err(e) => tracing::warn!(
            path = %database.display(),
            error = %e,
            "cannot record that the store is closing cleanly: if its write-ahead log is missing \
             at the next start, that start is refused although nothing was lost (open it with \
             recovery allowed then)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(path: &Path) -> Connection {
        let connection = Connection::open(path).unwrap();
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        connection
            .execute_batch(
                "CREATE TABLE footlights_meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) STRICT",
            )
            .unwrap();
        connection
    }

    #[test]
    fn the_row_follows_open_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let connection = store(&path);
        assert_eq!(read(&connection).unwrap(), None);
        set_open(&connection, true).unwrap();
        assert_eq!(read(&connection).unwrap(), Some(1));
        // The checkpoint put it in the database file, and emptied the log.
        assert_eq!(std::fs::metadata(wal::path(&path)).unwrap().len(), 0);
        set_closed(&connection, &path);
        assert_eq!(read(&connection).unwrap(), Some(0));
    }

    #[test]
    fn in_use_without_a_log_is_refused_unless_recovering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let connection = store(&path);
        check(&connection, &path, false, false).unwrap();
        set_open(&connection, true).unwrap();
        check(&connection, &path, true, false).unwrap();
        let err = check(&connection, &path, false, false).unwrap_err();
        let StorageError::Backend(inner) = &err else {
            panic!("{err:?}")
        };
        assert!(
            matches!(
                inner.downcast_ref::<Error>(),
                Some(Error::WalMissing { .. })
            ),
            "{inner}"
        );
        check(&connection, &path, false, true).unwrap();
        set_closed(&connection, &path);
        check(&connection, &path, false, false).unwrap();
    }

    #[test]
    fn a_file_without_the_table_counts_as_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let connection = Connection::open(&path).unwrap();
        assert_eq!(read(&connection).unwrap(), None);
        check(&connection, &path, false, false).unwrap();
    }
}
