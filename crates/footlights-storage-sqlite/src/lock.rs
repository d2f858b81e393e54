//! One process per database file: an exclusive lock on a file beside it.
//!
//! Two processes serving the same file would each keep their own view of the actors in memory
//! and overwrite each other's acknowledged writes; SQLite's own locks only order their
//! transactions. So [`acquire`] takes an exclusive, non-blocking lock on `<database>.lock`
//! (`footlights.db.lock` for `footlights.db`) before the database is opened, and another
//! process fails at once instead of waiting.
//!
//! Inside one process the database may be opened several times at once (tests and docs do):
//! those opens share the one locked handle, kept in a process-wide table and counted; the last
//! [`Held`] to drop closes it, which releases the lock. Counting under the table's mutex (and not
//! with a `Weak` that dies before the handle is closed) means an open racing with the last drop
//! never finds the lock still taken by its own process.
//!
//! The lock file is left in place when released: removing it could let two processes lock two
//! different files of the same name. It is empty and harmless.
//!
//! The table also orders the store's record of being open or closed cleanly (see `marker.rs`)
//! among the opens of one process: each entry counts the write connections open on its file,
//! and [`Held::opened`] and [`Held::closing`] change that count and the record together, under
//! the entry's own mutex: the last write connection to close is the one that records the clean
//! close, an open racing with it records "in use" after it, and the checks at open (which read
//! the write-ahead log before SQLite does) never run beside another open of the same file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use footlights_storage::{Result, StorageError};

use crate::error::Error;

/// One locked lock file of this process.
#[derive(Debug)]
struct Entry {
    /// The locked handle; closing it releases the lock.
    _file: File,
    /// How many [`Held`]s share it.
    holders: usize,
    /// How many write connections to the database are open in this process (see
    /// [`Held::opened`]).
    writers: Arc<Mutex<usize>>,
}

/// The locked handles of this process, by the canonical path of their lock file.
static LOCKS: Mutex<BTreeMap<PathBuf, Entry>> = Mutex::new(BTreeMap::new());

fn locks() -> MutexGuard<'static, BTreeMap<PathBuf, Entry>> {
    // The table stays consistent across a panic: every change is one insert, update or remove.
    LOCKS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This process's hold on a database's lock file; the lock is released when the last one of the
/// process drops.
#[derive(Debug)]
pub(crate) struct Held {
    /// The key in [`LOCKS`].
    path: PathBuf,
    /// The entry's count of open write connections.
    writers: Arc<Mutex<usize>>,
}

impl Held {
    /// The lock file, with its directory canonicalized.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `open` (which opens a write connection and records that the store is open) and
    /// counts one more open write connection, both under the count's mutex, so that opens and
    /// closes of the file in this process take turns. `open` is told whether it is the only write
    /// connection of the process. Nothing is counted if it fails.
    pub(crate) fn opened<T>(&self, open: impl FnOnce(bool) -> Result<T>) -> Result<T> {
        let mut writers = self.writers.lock().unwrap_or_else(PoisonError::into_inner);
        let out = open(*writers == 0)?;
        *writers += 1;
        Ok(out)
    }

    /// Counts one open write connection fewer and, if it was the last of the process, runs
    /// `record` (which records a clean close), under the count's mutex.
    pub(crate) fn closing(&self, record: impl FnOnce()) {
        let mut writers = self.writers.lock().unwrap_or_else(PoisonError::into_inner);
        *writers = writers.saturating_sub(1);
        if *writers == 0 {
            record();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut locks = locks();
        if let Some(Entry { holders, .. }) = locks.get_mut(&self.path) {
            *holders = holders.saturating_sub(1);
            if *holders == 0 {
                // Closing the handle releases the lock, while the table is still locked.
                locks.remove(&self.path);
            }
        }
    }
}

/// The lock file of the database at `database`: `<file name>.lock` in the same directory, with
/// the directory canonicalized so that every spelling of the path finds the same entry.
fn lock_path(database: &Path) -> Result<PathBuf> {
    let dir = match database.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir = dir.canonicalize().map_err(StorageError::backend)?;
    let mut name = database
        .file_name()
        .map(OsString::from)
        .ok_or_else(|| StorageError::backend(Error::NoFileName(database.to_path_buf())))?;
    name.push(".lock");
    Ok(dir.join(name))
}

/// Takes the lock of the database at `database` for this process, or shares it if this process
/// holds it already.
///
/// # Errors
///
/// [`Error::InUse`] (as a backend error) at once if another process holds it; a backend error if
/// the directory or the lock file cannot be opened.
pub(crate) fn acquire(database: &Path) -> Result<Held> {
    let path = lock_path(database)?;
    let mut locks = locks();
    if let Some(entry) = locks.get_mut(&path) {
        entry.holders += 1;
        return Ok(Held {
            path,
            writers: Arc::clone(&entry.writers),
        });
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(StorageError::backend)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let dir = path.parent().unwrap_or(&path).to_path_buf();
            return Err(StorageError::backend(Error::InUse { dir, lock: path }));
        }
        Err(TryLockError::Error(e)) => return Err(StorageError::backend(e)),
    }
    let writers = Arc::new(Mutex::new(0));
    locks.insert(
        path.clone(),
        Entry {
            _file: file,
            holders: 1,
            writers: Arc::clone(&writers),
        },
    );
    Ok(Held { path, writers })
}

/// Whether another process holds the lock of the database at `database` right now (this
/// process's own holds do not count). A missing lock file or directory is "not held".
///
/// # Errors
///
/// A backend error if the lock file exists but cannot be opened or tested.
pub(crate) fn held_elsewhere(database: &Path) -> Result<bool> {
    let path = match lock_path(database) {
        Ok(path) => path,
        Err(_) if !database.parent().is_some_and(Path::exists) => return Ok(false),
        Err(e) => return Err(e),
    };
    let locks = locks();
    if locks.contains_key(&path) {
        return Ok(false);
    }
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StorageError::backend(e)),
    };
    // Tested under the table's lock: no hold of this process can be taken meanwhile. The test
    // lock, if taken, is released when `file` closes.
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(StorageError::backend(e)),
    }
}

/// Whether `err` is [`acquire`]'s "another process holds it".
pub(crate) fn is_in_use(err: &StorageError) -> bool {
    let StorageError::Backend(inner) = err else {
        return false;
    };
    matches!(inner.downcast_ref::<Error>(), Some(Error::InUse { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_in_one_process_share_the_lock_until_the_last_drops() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("footlights.db");
        let first = acquire(&db).unwrap();
        // Another spelling of the same path shares the same lock.
        let second = acquire(&dir.path().join(".").join("footlights.db")).unwrap();
        let lock = dir.path().join("footlights.db.lock");
        assert!(lock.exists());

        // A handle of its own (as another process would have) cannot take it.
        let other = File::open(&lock).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));

        drop(first);
        assert!(
            matches!(other.try_lock(), Err(TryLockError::WouldBlock)),
            "released while a hold was left"
        );
        drop(second);
        other.try_lock().expect("the lock was released");

        // Now held elsewhere: this process's next hold fails at once, naming the directory.
        let err = acquire(&db).unwrap_err();
        assert!(is_in_use(&err), "{err:?}");
        let StorageError::Backend(inner) = &err else {
            unreachable!()
        };
        let message = inner.to_string();
        let canonical = dir.path().canonicalize().unwrap();
        assert!(
            message.contains(&canonical.display().to_string()),
            "{message}"
        );
        assert!(message.contains("another process"), "{message}");

        other.unlock().unwrap();
        drop(acquire(&db).unwrap());
    }

    #[test]
    fn held_elsewhere_sees_other_handles_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("footlights.db");
        assert!(!held_elsewhere(&db).unwrap(), "no lock file yet");
        assert!(!held_elsewhere(&dir.path().join("missing/footlights.db")).unwrap());
        let own = acquire(&db).unwrap();
        assert!(!held_elsewhere(&db).unwrap(), "this process's hold");
        drop(own);
        assert!(!held_elsewhere(&db).unwrap(), "released");
        let other = File::open(dir.path().join("footlights.db.lock")).unwrap();
        other.try_lock().unwrap();
        assert!(held_elsewhere(&db).unwrap(), "held by another handle");
        // Testing did not take it away from the holder.
        assert!(held_elsewhere(&db).unwrap());
        other.unlock().unwrap();
        assert!(!held_elsewhere(&db).unwrap());
    }

    #[test]
    fn the_last_write_connection_of_the_process_records_the_close() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("footlights.db");
        let (a, b) = (acquire(&db).unwrap(), acquire(&db).unwrap());
        a.opened(|only| {
            assert!(only);
            Ok(())
        })
        .unwrap();
        b.opened(|only| {
            assert!(!only, "a is open");
            Ok(())
        })
        .unwrap();
        let mut recorded = 0;
        a.closing(|| recorded += 1);
        assert_eq!(recorded, 0, "b is still open");
        b.closing(|| recorded += 1);
        assert_eq!(recorded, 1);

        // An open that fails to record counts nothing.
        let failed =
            a.opened(|_| -> Result<()> { Err(StorageError::backend(Error::WorkerStopped)) });
        assert!(failed.is_err());
        b.opened(|only| {
            assert!(only, "the failed open was counted");
            Ok(())
        })
        .unwrap();
        b.closing(|| recorded += 1);
        assert_eq!(recorded, 2);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = acquire(&dir.path().join("missing").join("footlights.db")).unwrap_err();
        assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
        assert!(!is_in_use(&err));
    }
}
