//! Failures of this driver that are not SQLite's own. They reach callers wrapped in
//! [`StorageError::Backend`](footlights_storage::StorageError::Backend).

/// What can go wrong besides an SQLite error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The thread that owns the connection is gone (it panicked); the driver cannot be used.
    #[error("sqlite worker thread stopped")]
    WorkerStopped,
    /// The recorded format version is not one any build wrote.
    #[error("invalid storage format version {0}")]
    BadFormatVersion(i64),
    /// A stored value does not fit its Rust type.
    #[error("stored {0} is out of range")]
    OutOfRange(&'static str),
    /// A stored actor key is not a valid encoding.
    #[error(transparent)]
    CorruptKey(#[from] crate::key::CorruptKey),
    /// A kind of write this driver does not know (added to `Write` after this driver).
    #[error("unsupported kind of write")]
    UnsupportedWrite,
    /// Another process holds the lock file of the database: it is serving the same data.
    #[error(
        "the data directory {} is in use by another process (lock file {})",
        dir.display(),
        lock.display()
    )]
    InUse {
        /// The directory of the database.
        dir: std::path::PathBuf,
        /// The lock file that another process holds.
        lock: std::path::PathBuf,
    },
    /// The database file failed SQLite's integrity check at open.
    #[error(
        "the database file {} is corrupt ({problem}); restore it from a backup, or recover what \
         is readable with the sqlite3 command `.recover`, before starting again",
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: std::path::PathBuf,
        /// SQLite's first finding.
        problem: String,
    },
    /// The write-ahead log holds commits after a damaged frame, which SQLite would drop.
    #[error(
        "the write-ahead log {} is damaged at byte {offset}: SQLite would drop the {commits} \
         commits after it, which had been saved and acknowledged. Keep a copy of the data \
         directory, then restore the store from a backup, or open it with recovery allowed \
         (`SqliteDriverBuilder::recover`, `footlights serve --recover`) to go on with the \
         commits before that byte (a copy of the log is kept beside it)",
        wal.display()
    )]
    WalDamaged {
        /// The log file.
        wal: std::path::PathBuf,
        /// Where its first damaged frame (or its damaged header, at 0) starts.
        offset: u64,
        /// The intact commits found after it.
        commits: u64,
    },
    /// The database file says it was in use, and its write-ahead log is gone.
    #[error(
        "the database file {} was not closed cleanly, and its write-ahead log {} is missing: \
         the commits since its last checkpoint were in that log. Put the log back (from a copy \
         of the data directory taken with the database file) and start again, or open the store \
         with recovery allowed (`SqliteDriverBuilder::recover`, `footlights serve --recover`) \
         to go on without those commits",
        database.display(),
        wal.display()
    )]
    WalMissing {
        /// The database file.
        database: std::path::PathBuf,
        /// The missing log file.
        wal: std::path::PathBuf,
    },
    /// The database path names no file (such as `/` or `..`), so there is no lock file beside it.
    #[error("the database path {} names no file", .0.display())]
    NoFileName(std::path::PathBuf),
}
