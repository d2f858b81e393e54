//! Integration tests of `footlights-storage-sqlite`: one binary, one module per topic.

mod conformance;
mod corrupt;
mod crash;
mod detached;
mod format_version;
mod lock_wait;
mod upgrade;

use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

/// A database path in a new temporary directory, which lives as long as the returned guard.
fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("footlights.db");
    (dir, path)
}

/// The format version recorded in the file, read with plain SQLite.
fn read_format_version(path: &Path) -> Option<u32> {
    let conn = rusqlite::Connection::open(path).expect("opening the file with rusqlite");
    conn.query_row(
        "SELECT value FROM footlights_meta WHERE name = 'format_version'",
        [],
        |row| row.get(0),
    )
    .optional()
    .expect("reading the format version")
}

/// Records `version` in the file, as another build of the driver would have.
fn write_format_version(path: &Path, version: u32) {
    let conn = rusqlite::Connection::open(path).expect("opening the file with rusqlite");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("setting a busy timeout");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS footlights_meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) STRICT",
    )
    .expect("creating the meta table");
    conn.execute(
        "INSERT INTO footlights_meta (name, value) VALUES ('format_version', ?1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [version],
    )
    .expect("writing the format version");
}
