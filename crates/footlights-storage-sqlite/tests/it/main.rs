//! Integration tests of `footlights-storage-sqlite`: one binary, one module per topic.

mod conformance;
mod corrupt;
mod crash;
mod detached;
mod format_version;
mod lock_wait;
mod upgrade;
mod wal;

use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

/// A database path in a new temporary directory, which lives as long as the returned guard.
fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("footlights.db");
    (dir, path)
}

/// Waits until the drivers dropped on `path` have closed their connections. A driver closes
/// them on its threads once its last handle drops (recording the clean close in the file as it
/// does), then releases its lock file, which another handle can take from then on.
fn wait_closed(path: &Path) {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = std::fs::File::open(&lock).expect("opening the lock file");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match lock.try_lock() {
            Ok(()) => return lock.unlock().expect("unlocking the lock file"),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("the store did not close: {e}"),
        }
    }
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
