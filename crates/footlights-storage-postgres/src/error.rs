//! How PostgreSQL and pool errors become [`StorageError`]s.
//!
//! The rule is the SQLite driver's: what an operator can fix while the process runs (the
//! server is down, restarting or unreachable, the connection was lost, its disk is full, it is
//! a standby that takes no writes) is [`StorageError::Unavailable`], worth retrying later;
//! everything else (constraint violations, corrupt data, bugs) is [`StorageError::Backend`].
//!
//! One difference: when the connection is lost while a commit is in flight, the server may
//! have committed it before the answer was lost. That commit is reported `Unavailable` like
//! any other lost connection, but it may have been applied.

use std::error::Error as _;

use footlights_storage::StorageError;
use tokio_postgres::error::SqlState;

/// Failures of this driver that are not PostgreSQL's own. They reach callers wrapped in
/// [`StorageError::Backend`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
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
    /// The schema name given to the builder is not a plain identifier.
    #[error("invalid schema name {0:?}: use letters, digits and underscores, up to 63 bytes")]
    BadSchemaName(String),
    /// The connection string does not parse.
    #[error("invalid PostgreSQL connection string")]
    BadUrl(#[source] tokio_postgres::Error),
    /// The pool could not be built.
    #[error("building the connection pool failed: {0}")]
    Pool(String),
    /// The holder of an actor kept changing while a claim looked for it.
    #[error("the holder of an actor kept changing during a claim")]
    ClaimRace,
    /// An actor deleted and created again, over and over, while a create looked for it.
    #[error("the actor holding a name and key kept changing during a create")]
    CreateRace,
}

impl From<Error> for StorageError {
    fn from(e: Error) -> Self {
        StorageError::backend(e)
    }
}

/// Why a PostgreSQL error means the store is unavailable for now, or `None` if it does not.
fn unavailable_reason(e: &tokio_postgres::Error) -> Option<&'static str> {
    if let Some(code) = e.code() {
        let class = code.code().get(..2);
        return match code {
            c if *c == SqlState::DISK_FULL => Some("the database server's disk is full"),
            c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => {
                Some("the database server takes no writes (a standby, or read-only)")
            }
            c if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW =>
            {
                Some("the database server is shutting down or starting")
            }
            c if *c == SqlState::IO_ERROR => Some("the database server failed to read or write"),
            _ if class == Some("08") => Some("the connection to the database server failed"),
            _ if class == Some("53") => Some("the database server is out of resources"),
            _ => None,
        };
    }
    if e.is_closed() {
        return Some("the connection to the database server was lost");
    }
    let mut source = e.source();
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return Some("the database server cannot be reached");
        }
        source = cause.source();
    }
    // Timeouts carry no source; every other kind without a database error is a bug here.
    if e.to_string().contains("timeout") {
        return Some("the database server did not answer in time");
    }
    None
}

/// Converts a PostgreSQL error; every query here goes through it.
pub(crate) fn db(e: tokio_postgres::Error) -> StorageError {
    match unavailable_reason(&e) {
        Some(reason) => StorageError::Unavailable {
            reason: reason.to_owned(),
            source: Some(Box::new(e)),
        },
        None => StorageError::backend(e),
    }
}

/// Whether the transaction failed only because it ran into another one (a deadlock, or a
/// serialization failure), so that running it again may succeed. Nothing of it was applied.
pub(crate) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Converts a failure to get a connection from the pool: all of them mean the server cannot
/// be used now, except a pool that was closed (a bug).
pub(crate) fn pool(e: deadpool_postgres::PoolError) -> StorageError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => match unavailable_reason(&e) {
            Some(reason) => StorageError::Unavailable {
                reason: reason.to_owned(),
                source: Some(Box::new(e)),
            },
            // Authentication, a missing database: the operator must fix the settings.
            None => StorageError::backend(e),
        },
        PoolError::Timeout(_) => StorageError::Unavailable {
            reason: "no connection to the database server became free or could be made in time"
                .to_owned(),
            source: Some(Box::new(e)),
        },
        other => StorageError::backend(Error::Pool(other.to_string())),
    }
}

/// A stored `bigint` that must be a `u64` (generations, sizes).
pub(crate) fn to_u64(value: i64, what: &'static str) -> Result<u64, StorageError> {
    u64::try_from(value).map_err(|_| Error::OutOfRange(what).into())
}

/// A `u64` to store as a `bigint`.
pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, StorageError> {
    i64::try_from(value).map_err(|_| Error::OutOfRange(what).into())
}
