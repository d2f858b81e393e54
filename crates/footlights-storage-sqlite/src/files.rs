//! Noticing that the store's files were deleted or replaced under the running process.
//!
//! An open connection keeps writing to the file it opened, even after that file was unlinked
//! (a data directory removed by hand, a restore copied over it): SQLite in WAL mode does not
//! check. Every commit would then be acknowledged and lost at the next start. So the driver
//! records which files it opened (device and inode of the database and of its lock file) and,
//! inside each write transaction just before it commits, looks the paths up again: one `stat`
//! per file, a few microseconds beside a commit's `fsync`. If either is gone or is another
//! file, the transaction is rolled back and the call fails with
//! [`StorageError::Unavailable`]; the first failure of an episode is logged (at WARN: the
//! runtime logs the failed commit at ERROR once per cause).
//!
//! A file put back in place (renamed back) lets writes go on, since the connection still has
//! that very file open. A deletion racing with a commit that has passed the check (during its
//! `fsync`) can still lose that one commit.

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use footlights_storage::{Result, StorageError};

/// Which file a path named: device and inode (on Unix; elsewhere, only that it exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    #[cfg(unix)]
    fn of(metadata: &Metadata) -> Identity {
        use std::os::unix::fs::MetadataExt as _;
        Identity {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(_metadata: &Metadata) -> Identity {
        Identity { dev: 0, ino: 0 }
    }
}

/// One watched file.
#[derive(Debug)]
struct Watched {
    what: &'static str,
    path: PathBuf,
    identity: Identity,
}

impl Watched {
    fn new(what: &'static str, path: &Path) -> Result<Watched> {
        let metadata = std::fs::metadata(path).map_err(StorageError::backend)?;
        Ok(Watched {
            what,
            path: path.to_path_buf(),
            identity: Identity::of(&metadata),
        })
    }

    /// Why the path no longer names the file, if it does not.
    fn problem(&self) -> Option<(String, Option<io::Error>)> {
        match std::fs::metadata(&self.path) {
            Ok(metadata) if Identity::of(&metadata) == self.identity => None,
            Ok(_) => Some((
                format!(
                    "the {} {} was replaced by another file while the store was open",
                    self.what,
                    self.path.display()
                ),
                None,
            )),
            Err(e) => Some((
                format!(
                    "the {} {} was deleted while the store was open",
                    self.what,
                    self.path.display()
                ),
                Some(e),
            )),
        }
    }
}

/// The files an open store must keep: its database, its lock file, and in WAL mode its
/// write-ahead log (which SQLite keeps, at one inode, while any connection is open: a log
/// deleted under the process would take every commit since the last checkpoint with it).
#[derive(Debug)]
pub(crate) struct Files {
    database: Watched,
    lock: Watched,
    wal: Option<Watched>,
    /// Whether the current episode of missing files was logged.
    reported: AtomicBool,
}

impl Files {
    /// Records the files `database` and `lock` name now, and the write-ahead log beside the
    /// database if `wal` (the store is in WAL mode and the log exists once it is open).
    pub(crate) fn record(database: &Path, lock: &Path, wal: bool) -> Result<Files> {
        let wal = if wal {
            Some(Watched::new(
                "write-ahead log",
                &crate::wal::path(database),
            )?)
        } else {
            None
        };
        Ok(Files {
            database: Watched::new("database file", database)?,
            lock: Watched::new("lock file", lock)?,
            wal,
            reported: AtomicBool::new(false),
        })
    }

    /// `Ok` while both paths still name the files recorded; otherwise
    /// [`StorageError::Unavailable`], logged (at WARN) the first time of an episode.
    pub(crate) fn check(&self) -> Result<()> {
        let problem = self
            .database
            .problem()
            .or_else(|| self.lock.problem())
            .or_else(|| self.wal.as_ref().and_then(Watched::problem));
        let Some((reason, source)) = problem else {
            if self.reported.load(Ordering::Relaxed) && self.reported.swap(false, Ordering::Relaxed)
            {
                tracing::warn!(
                    path = %self.database.path.display(),
                    "the store's files are back in place; accepting writes again"
                );
            }
            return Ok(());
        };
        // WARN here: the runtime's writer logs the failed commit at ERROR (once per cause), so an
        // episode gives one ERROR line, and this one says what happened to which file.
        if !self.reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                path = %self.database.path.display(),
                %reason,
                "refusing every write to the store until its files are back: what it would \
                 acknowledge now would be lost at the next start; restore the files and restart"
            );
        }
        Err(StorageError::Unavailable {
            reason: format!("{reason}; writes are refused"),
            source: source.map(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
        })
    }
}
