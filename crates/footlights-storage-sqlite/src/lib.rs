//! The default Footlights storage driver: every actor's data in one SQLite file.
//!
//! ```
//! # futures::executor::block_on(async {
//! use footlights_storage::{ActorId, ActorKey, ActorMeta, CreateOutcome, Driver, Write};
//! use footlights_storage_sqlite::SqliteDriver;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("footlights.db");
//!
//! let driver = SqliteDriver::open(&path).await?;
//! let meta = ActorMeta::new(ActorId::new("a1"), "counter", ActorKey::from("x"), 0);
//! assert_eq!(driver.create_actor(&meta).await?, CreateOutcome::Created);
//! // One transaction, synced to disk before `commit` returns.
//! driver.commit(vec![Write::State { actor: meta.id.clone(), bytes: b"42".to_vec() }]).await?;
//! drop(driver);
//!
//! let reopened = SqliteDriver::open(&path).await?;
//! assert_eq!(reopened.load_state(&meta.id).await?, Some(b"42".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! What this crate is:
//! - [`SqliteDriver`], a [`Driver`] on one database file (plus
//!   SQLite's `-wal` and `-shm` files and a `.lock` file beside it), in WAL mode with `synchronous=FULL`: a
//!   [`commit`](Driver::commit) is one transaction, durable when it returns (or, opted into
//!   with [`Durability::Process`], durable against a crash of the process but not of the
//!   machine);
//! - non-blocking for async callers: each opened driver has a thread owning its write
//!   connection and one owning a read connection, so disk waits and `fsync` never stall the
//!   runtime, and lookups do not queue behind commits;
//! - one process per file: opening takes an exclusive lock on `<file name>.lock` beside the
//!   database (`footlights.db.lock`), so a second process opening the same file fails at once
//!   instead of serving the same actors and losing the other's writes; opens within one process
//!   share the lock;
//! - watchful of its files: each write checks, just before it commits, that the database, the
//!   lock file and (in WAL mode) the write-ahead log are still the ones it opened (one `stat`
//!   each). If they were deleted or replaced
//!   under the running process, SQLite would go on writing to the unlinked file and every
//!   acknowledged write would be lost at the next start; instead the write is rolled back and
//!   fails with [`StorageError::Unavailable`](footlights_storage::StorageError::Unavailable),
//!   logged once per episode, until the files are back in place. A full disk, a disk
//!   that fails to write, or a file that cannot be written or opened is `Unavailable`
//!   too (nothing of the failed call is applied; retrying once space is freed succeeds), and so
//!   is a failed read (unless reads go through a memory map, which is off by default: see
//!   [`SqliteDriverBuilder::mmap_bytes`]);
//! - checked at open, so that nothing acknowledged is dropped without a word. Each refusal is
//!   an error ([`StorageError::Backend`](footlights_storage::StorageError::Backend)) naming the
//!   file, what would be lost and how to go on, logged once at ERROR:
//!   - the write-ahead log is read before SQLite replays it. SQLite stops at the first frame
//!     that fails its salt or checksum check and drops every commit after it. When two or more
//!     commit frames after that one are intact on their own (the log's salts, and a checksum
//!     that follows from the frame just before), a later transaction was written after the
//!     damaged one had been synced and acknowledged, so acknowledged commits would be lost:
//!     the store is refused, naming the log, the byte offset of the damaged frame and how many
//!     commits follow it. What a crash or a power cut leaves, a last transaction written in
//!     part (one commit frame at most), opens as usual, and so do frames of an earlier use of
//!     the log (other salts). The reasoning is in the source (`src/wal.rs`). With
//!     [`Durability::Process`] the log is synced at checkpoints only and a power cut can leave
//!     the same pattern, so the finding is logged at WARN instead and the log copied aside;
//!   - a log lost after an unclean stop: the database file records that it is in use from the
//!     open until the last connection of the process closes cleanly (a row of the
//!     `footlights_meta` table), and a file that says so with no log beside it is refused;
//!   - a file that fails SQLite's `PRAGMA quick_check` is refused, instead of serving errors
//!     for whatever it cannot read. The check reads every page (measured: 0.2 s for a 470 MB
//!     file in the page cache, so about 0.45 s per GB; from a cold disk, as fast as the disk
//!     reads), so files larger than [`DEFAULT_QUICK_CHECK_LIMIT`] (1 GiB) open unchecked
//!     unless [`SqliteDriverBuilder::quick_check_limit`] says otherwise;
//!
//!   [`SqliteDriverBuilder::recover`] opens a store that fails these checks, keeping what can
//!   be read: a damaged log is first copied to `footlights.db-wal.damaged-<unix seconds>`,
//!   and what is given up is logged at ERROR;
//! - versioned: the file records its format version
//!   ([`FORMAT_VERSION`](footlights_storage::FORMAT_VERSION)), and a file written by a newer
//!   version is refused with [`StorageError::UnsupportedFormat`](footlights_storage::StorageError).
//!
//! What it is not: a store shared by several machines (use the Postgres driver for that), nor a
//! way to batch unrelated callers' writes: each `commit` is its own transaction and `fsync`, so
//! the runtime groups writes into batches (group commit) before calling it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod error;
mod files;
mod key;
mod lock;
mod marker;
mod ops;
mod schema;
mod wal;
mod worker;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use footlights_storage::{
    ActorId, ActorKey, ActorMeta, Alarm, Driver, KvRange, LoadedActor, Result, Unit, UnitOutcome,
};
use futures::future::BoxFuture;

use crate::worker::{OnClose, Worker};

/// What a returned [`commit`](Driver::commit) survives. Set with
/// [`SqliteDriverBuilder::durability`].
///
/// ```no_run
/// # async fn example() -> footlights_storage::Result<()> {
/// use footlights_storage_sqlite::{Durability, SqliteDriver};
///
/// // Answers faster; a power cut may lose the last commits (never a SIGKILL or a panic).
/// let driver = SqliteDriver::builder("footlights.db")
///     .durability(Durability::Process)
///     .open()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is synced to the disk (`fsync`) before it returns, so it survives a crash
    /// of the process, of the operating system and a power cut. SQLite's `synchronous=FULL`.
    /// The default.
    #[default]
    Power,
    /// A commit returns once it is written to the write-ahead log in the operating system's
    /// page cache, without waiting for the disk. It survives a crash or kill of the process;
    /// an operating-system crash or a power cut can lose the commits of the last moments
    /// (the database is never corrupted). SQLite's `synchronous=NORMAL` in WAL mode: the
    /// log is synced at checkpoints only.
    Process,
}

/// How long an operation waits for another connection's lock before failing, unless
/// [`SqliteDriverBuilder::busy_timeout`] says otherwise.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Files up to this size are checked for damage at open, unless
/// [`SqliteDriverBuilder::quick_check_limit`] says otherwise: 1 GiB, about half a second when
/// the file is in the page cache (a few seconds from a cold disk).
pub const DEFAULT_QUICK_CHECK_LIMIT: u64 = 1 << 30;

/// How many pages the write-ahead log holds before SQLite copies it into the database file,
/// unless [`SqliteDriverBuilder::checkpoint_pages`] says otherwise: 4,096 pages, 16 MiB.
///
/// A checkpoint writes each page changed since the last one once, however often it changed, so
/// the longer the log, the less of it is written twice. With SQLite's own default (1,000 pages,
/// about 4 MiB) an actor with a 1 MB state that changes throughout was written 1.26 times per
/// byte saved; with this one 1.07 times (`cargo bench -p footlights-test --bench snapshot`).
/// The log file is cut back to this size after a checkpoint that found it longer.
pub const DEFAULT_CHECKPOINT_PAGES: u32 = 4096;

/// The page cache of each of the store's two connections (the writer's and the reader's), unless
/// [`SqliteDriverBuilder::cache_bytes`] says otherwise: 64 MiB.
///
/// SQLite allocates cache pages as it reads them, so a store smaller than this costs its own
/// size at most. A store larger than its cache reads the pages it lacks from the operating
/// system at each access: with 100,000 actors (a 36 MB file) and SQLite's default of 2 MiB,
/// copying pages in with `pread` was the largest cost of a durable action spread over all of
/// them (`bench/RESULTS.md`, "Cold calls and many actors").
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// How much of the database file each of the store's two connections reads through a memory
/// map, unless [`SqliteDriverBuilder::mmap_bytes`] says otherwise: none (0), every page is read
/// with `pread`, as SQLite does by default.
///
/// Off because it was measured slower where a server reads. In WAL mode SQLite empties a
/// connection's page cache whenever the connection starts a read after another connection's
/// commit, and with a map it also unmaps the whole file then (a `munmap`, then an `mmap` and
/// page faults for the pages the read touches). A lookup by key on the read connection right
/// after a commit of the writer, on a store of 100,000 actors, took 78–133 µs with the map
/// against 34–57 µs with `pread` (four runs); with no commit between lookups, 10–13 µs (one run
/// 67 µs) against 13–19 µs (`cargo bench -p footlights-storage-sqlite --bench reads`;
/// `bench/SCALING.md`, "Cold calls and many actors"). A server's durable actions commit all the
/// time, so most of its reads follow a commit. A store that is mostly read may gain from the
/// map.
///
/// A map costs address space, not memory: its pages are the operating system's cache of the
/// file. Writes do not change with it: SQLite maps the file read-only and writes with `pwrite`
/// (its `SQLITE_MMAP_READWRITE` option is off in this build), so durability and what a crash
/// leaves are the same. One thing differs: a disk error while a mapped page is read reaches the
/// process as a `SIGBUS` signal, which ends it, where `pread` returns an error that fails the
/// one call ([`StorageError::Unavailable`](footlights_storage::StorageError::Unavailable)); so
/// does the database file being cut short by another program while the store is open.
pub const DEFAULT_MMAP_BYTES: u64 = 0;

/// A [`Driver`] storing everything in one SQLite database file.
///
/// Open it with [`SqliteDriver::open`] or [`SqliteDriver::builder`]. Clones are cheap and share
/// its connections (one for writes, one for reads, each on its thread); they close when the
/// last clone drops, on their threads, the write connection recording in the file that the
/// store was closed cleanly. There is no `close`: every commit was already durable when it
/// returned, and a process that ends before the connections close leaves the write-ahead log
/// in place, which the next open replays.
///
/// One process at a time uses a file. Opening takes an exclusive lock on a file beside it, named
/// after it with `.lock` added (`footlights.db.lock`); while it is held, opening the file from
/// another process fails at once with an error naming the directory. Opening the same file again
/// in this process gives another connection to the same data and shares the lock, which is
/// released when the last driver of the process on that file has dropped and closed its
/// connections (or when the process ends, however it ends). The lock file itself stays.
#[derive(Clone)]
pub struct SqliteDriver {
    /// The write connection's thread, shared by clones: commits, creates, deletes.
    writer: Worker,
    /// The read connection's thread, shared by clones; the write connection's if the store is
    /// not in WAL mode (readers would then wait for the writer's locks anyway).
    reader: Worker,
    path: Arc<Path>,
    /// The database and lock files as opened, checked by every write.
    files: Arc<files::Files>,
    /// This process's hold on the database's lock file, shared by clones (and kept by the
    /// connections' threads until they have closed their connections).
    _lock: Arc<lock::Held>,
}

impl fmt::Debug for SqliteDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteDriver")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteDriver {
    /// Opens the store at `path` with the default settings, creating the file if needed.
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// let driver = footlights_storage_sqlite::SqliteDriver::open("footlights.db").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`StorageError::UnsupportedFormat`](footlights_storage::StorageError::UnsupportedFormat)
    /// if the file was written by a newer format version;
    /// [`StorageError::Backend`](footlights_storage::StorageError::Backend) if another process
    /// has it open (at once, without waiting), if it or its lock file cannot be opened or
    /// created, if it is not an SQLite database, if it fails the integrity check (a message
    /// naming the file and SQLite's first finding), if its write-ahead log is damaged so that
    /// SQLite would drop acknowledged commits (naming the log, the offset and the count) or is
    /// missing after an unclean stop (see [`SqliteDriverBuilder::recover`] for both), or if it
    /// stays locked by another connection for longer than the busy timeout.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteDriver> {
        SqliteDriver::builder(path).open().await
    }

    /// Settings for opening the store at `path`; finish with [`SqliteDriverBuilder::open`].
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// use std::time::Duration;
    /// use footlights_storage_sqlite::SqliteDriver;
    ///
    /// let driver = SqliteDriver::builder("footlights.db")
    ///     .busy_timeout(Duration::from_secs(1))
    ///     .open()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> SqliteDriverBuilder {
        SqliteDriverBuilder {
            path: path.as_ref().to_path_buf(),
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            durability: Durability::default(),
            quick_check_limit: DEFAULT_QUICK_CHECK_LIMIT,
            checkpoint_pages: DEFAULT_CHECKPOINT_PAGES,
            cache_bytes: DEFAULT_CACHE_BYTES,
            mmap_bytes: DEFAULT_MMAP_BYTES,
            lock_wait: Duration::ZERO,
            recover: false,
        }
    }

    /// The path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether another process has the store at `path` open right now (holds its lock file).
    /// Opens in this process do not count. A host uses it to tell a server that is handing over
    /// the same store from an unrelated one, before it waits with
    /// [`SqliteDriverBuilder::lock_wait`].
    ///
    /// ```no_run
    /// use footlights_storage_sqlite::SqliteDriver;
    /// # fn example() -> footlights_storage::Result<()> {
    /// if SqliteDriver::in_use_elsewhere("data/footlights.db")? {
    ///     println!("another server has this store open");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// A backend error if the lock file exists but cannot be opened or tested.
    pub fn in_use_elsewhere(path: impl AsRef<Path>) -> Result<bool> {
        lock::held_elsewhere(path.as_ref())
    }
}

/// Takes the store's lock, waiting up to `wait` while another process holds it.
async fn acquire_lock(path: &Path, wait: Duration) -> Result<lock::Held> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut waited = false;
    loop {
        match lock::acquire(path) {
            Err(e) if lock::is_in_use(&e) && tokio::time::Instant::now() < deadline => {
                if !waited {
                    waited = true;
                    tracing::info!(path = %path.display(), ?wait, "the store is open in another process; waiting for it to close");
                }
                tokio::time::sleep(LOCK_POLL).await;
            }
            Err(e) => return Err(e),
            Ok(held) => {
                if waited {
                    tracing::info!(path = %path.display(), "the other process closed the store");
                }
                return Ok(held);
            }
        }
    }
}

/// How often [`acquire_lock`] tests a lock held by another process.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// Settings for opening a [`SqliteDriver`], from [`SqliteDriver::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteDriverBuilder {
    path: PathBuf,
    busy_timeout: Duration,
    durability: Durability,
    quick_check_limit: u64,
    checkpoint_pages: u32,
    cache_bytes: u64,
    mmap_bytes: u64,
    lock_wait: Duration,
    recover: bool,
}

impl SqliteDriverBuilder {
    /// How long opening waits for another process to release the store's lock (its data
    /// directory) before it fails; zero by default: fail at once. A server that takes over from
    /// a stopping one on the same store sets it, so that it opens as soon as the old one has
    /// saved its actors and closed the store. The lock is tested every 10 ms meanwhile.
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// use std::time::Duration;
    /// use footlights_storage_sqlite::SqliteDriver;
    ///
    /// let driver = SqliteDriver::builder("footlights.db")
    ///     .lock_wait(Duration::from_secs(30))
    ///     .open()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// How long an operation waits for a lock held by another connection to the same file
    /// before it fails ([`DEFAULT_BUSY_TIMEOUT`] by default).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// What a returned commit survives ([`Durability::Power`] by default).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Checks files up to `bytes` for damage at open ([`DEFAULT_QUICK_CHECK_LIMIT`] by
    /// default); larger files open unchecked. `0` checks nothing, `u64::MAX` every file.
    pub fn quick_check_limit(mut self, bytes: u64) -> Self {
        self.quick_check_limit = bytes;
        self
    }

    /// How many pages (4 KiB each) the write-ahead log holds before it is copied into the
    /// database file ([`DEFAULT_CHECKPOINT_PAGES`] by default; at least 1). Larger: fewer bytes
    /// written twice and a larger log file on disk, read again at the next open after a crash.
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// use footlights_storage_sqlite::SqliteDriver;
    ///
    /// // A 64 MiB log, for actors with large, often changed states.
    /// let driver = SqliteDriver::builder("footlights.db")
    ///     .checkpoint_pages(16_384)
    ///     .open()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn checkpoint_pages(mut self, pages: u32) -> Self {
        self.checkpoint_pages = pages.max(1);
        self
    }

    /// The page cache of each of the store's two connections, in bytes
    /// ([`DEFAULT_CACHE_BYTES`] by default; at least one page). Pages are allocated as they are
    /// read, so memory grows with the part of the store in use, up to twice this.
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// use footlights_storage_sqlite::SqliteDriver;
    ///
    /// // A store of millions of actors: keep 256 MiB of its pages in memory per connection.
    /// let driver = SqliteDriver::builder("footlights.db")
    ///     .cache_bytes(256 << 20)
    ///     .open()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// How many bytes of the database file each of the store's two connections reads through a
    /// read-only memory map ([`DEFAULT_MMAP_BYTES`] by default: none; `0` reads every page with
    /// `pread`). It reserves address space, not memory; the part of a larger file past it is
    /// read with `pread`. SQLite lowers a value above its limit (2 GiB less 64 KiB on Linux) to
    /// that limit. Writes go through `pwrite` either way. See [`DEFAULT_MMAP_BYTES`] for when
    /// the map is slower, and for what it changes when the disk fails (the process ends).
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// use footlights_storage_sqlite::SqliteDriver;
    ///
    /// // A store that is mostly read: up to 1 GiB of it read through a map.
    /// let driver = SqliteDriver::builder("footlights.db")
    ///     .mmap_bytes(1 << 30)
    ///     .open()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn mmap_bytes(mut self, bytes: u64) -> Self {
        self.mmap_bytes = bytes;
        self
    }

    /// Opens a store that fails the checks at open instead of refusing it, keeping what can be
    /// read (off by default). Each check that fails is logged at ERROR with what is given up:
    ///
    /// - a damaged write-ahead log: the commits after the damage are dropped. The log is first
    ///   copied beside itself, as `footlights.db-wal.damaged-<unix seconds>`, for whoever wants
    ///   to dig into it;
    /// - a write-ahead log missing after an unclean stop: the commits that were in it are lost,
    ///   and the store goes on from what its database file holds;
    /// - a database file that fails the quick check: it is served as it is, and reads or writes
    ///   that reach a damaged page fail.
    ///
    /// Copy the data directory aside before opening with this: what it drops is gone for good
    /// once the store takes new writes.
    ///
    /// ```no_run
    /// # async fn example() -> footlights_storage::Result<()> {
    /// use footlights_storage_sqlite::SqliteDriver;
    ///
    /// // Refused: the error names the damaged log, where it is damaged and what would be lost.
    /// let refused = SqliteDriver::open("footlights.db").await;
    /// if refused.is_err() {
    ///     // After copying the data directory aside: go on with what can be read.
    ///     let driver = SqliteDriver::builder("footlights.db").recover(true).open().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn recover(mut self, recover: bool) -> Self {
        self.recover = recover;
        self
    }

    /// Opens the store, creating the file and its tables if needed.
    ///
    /// # Errors
    ///
    /// As [`SqliteDriver::open`].
    pub async fn open(self) -> Result<SqliteDriver> {
        let path: Arc<Path> = Arc::from(self.path.as_path());
        let settings = schema::Settings {
            busy_timeout: self.busy_timeout,
            durability: self.durability,
            quick_check_limit: self.quick_check_limit,
            checkpoint_pages: self.checkpoint_pages,
            recover: self.recover,
            cache_bytes: self.cache_bytes,
            mmap_bytes: self.mmap_bytes,
        };
        // Before the database: another process serving it must not get as far as reading it.
        let lock = Arc::new(acquire_lock(&self.path, self.lock_wait).await?);
        let file = self.path.clone();
        let held = Arc::clone(&lock);
        let (writer, (wal, files)) =
            Worker::start("footlights-sqlite", Arc::clone(&lock), move || {
                // One open or close of this file at a time in this process (see `lock.rs`).
                let (connection, wal, files) =
                    held.opened(|only| open_writer(&file, held.path(), settings, only))?;
                // The last write connection of the process records a clean close as it closes.
                let on_close: Option<OnClose> = wal.then(|| -> OnClose {
                    Box::new(move |connection| {
                        held.closing(|| marker::set_closed(connection, &file));
                    })
                });
                Ok((connection, (wal, files), on_close))
            })
            .await?;
        let reader = if wal {
            let file = self.path;
            let (reader, ()) =
                Worker::start("footlights-sqlite-read", Arc::clone(&lock), move || {
                    let connection = schema::open_reader(&file, settings)?;
                    Ok((connection, (), None))
                })
                .await?;
            reader
        } else {
            writer.clone()
        };
        Ok(SqliteDriver {
            writer,
            reader,
            path,
            files: Arc::new(files),
            _lock: lock,
        })
    }
}

/// Opens the write connection to the store at `file` (see [`schema::open`]), records the files
/// it has open, and in WAL mode records that the store is in use. Returns the connection,
/// whether it is in WAL mode, and the files.
fn open_writer(
    file: &Path,
    lock_file: &Path,
    settings: schema::Settings,
    only: bool,
) -> Result<(rusqlite::Connection, bool, files::Files)> {
    let opened = schema::open(file, settings, only)?;
    let wal = opened.journal_mode.eq_ignore_ascii_case("wal");
    // The files the connection has open, now that they exist.
    let files = files::Files::record(file, lock_file, wal)?;
    tracing::debug!(
        path = %file.display(),
        journal_mode = %opened.journal_mode,
        created = opened.created,
        busy_timeout = ?settings.busy_timeout,
        durability = ?settings.durability,
        "opened sqlite store"
    );
    if wal {
        marker::set_open(&opened.connection, only)?;
    } else {
        tracing::warn!(
            path = %file.display(),
            journal_mode = %opened.journal_mode,
            "sqlite store is not in WAL mode"
        );
    }
    Ok((opened.connection, wal, files))
}

impl Driver for SqliteDriver {
    fn actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<ActorMeta>>> {
        let id = id.clone();
        Box::pin(self.reader.run(move |conn| ops::actor(conn, &id)))
    }

    fn find_actor<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Option<ActorMeta>>> {
        let (name, key) = (name.to_owned(), key.clone());
        Box::pin(
            self.reader
                .run(move |conn| ops::find_actor(conn, &name, &key)),
        )
    }

    fn list_actors<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Vec<ActorMeta>>> {
        let (name, key_prefix) = (name.to_owned(), key_prefix.clone());
        Box::pin(
            self.reader
                .run(move |conn| ops::list_actors(conn, &name, &key_prefix)),
        )
    }

    fn list_actors_page<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
        after: Option<&'a ActorKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ActorMeta>>> {
        let (name, key_prefix, after) = (name.to_owned(), key_prefix.clone(), after.cloned());
        Box::pin(self.reader.run(move |conn| {
            ops::list_actors_page(conn, &name, &key_prefix, after.as_ref(), limit)
        }))
    }

    fn load_actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<LoadedActor>>> {
        let id = id.clone();
        Box::pin(self.reader.run(move |conn| ops::load_actor(conn, &id)))
    }

    fn load_actor_by_key<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Option<LoadedActor>>> {
        let (name, key) = (name.to_owned(), key.clone());
        Box::pin(
            self.reader
                .run(move |conn| ops::load_actor_by_key(conn, &name, &key)),
        )
    }

    fn load_state<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        let id = id.clone();
        Box::pin(self.reader.run(move |conn| ops::load_state(conn, &id)))
    }

    fn load_alarms<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Vec<Alarm>>> {
        let id = id.clone();
        Box::pin(self.reader.run(move |conn| ops::load_alarms(conn, &id)))
    }

    fn all_alarms(&self) -> BoxFuture<'_, Result<Vec<(ActorId, Alarm)>>> {
        Box::pin(self.reader.run(|conn| ops::all_alarms(conn)))
    }

    fn kv_get<'a>(
        &'a self,
        id: &'a ActorId,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        let (id, key) = (id.clone(), key.to_vec());
        Box::pin(self.reader.run(move |conn| ops::kv_get(conn, &id, &key)))
    }

    fn kv_get_many<'a>(
        &'a self,
        id: &'a ActorId,
        keys: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>>> {
        let (id, keys) = (id.clone(), keys.to_vec());
        Box::pin(
            self.reader
                .run(move |conn| ops::kv_get_many(conn, &id, &keys)),
        )
    }

    fn kv_list<'a>(
        &'a self,
        id: &'a ActorId,
        range: &'a KvRange,
    ) -> BoxFuture<'a, Result<Vec<(Vec<u8>, Vec<u8>)>>> {
        let (id, range) = (id.clone(), range.clone());
        Box::pin(self.reader.run(move |conn| ops::kv_list(conn, &id, &range)))
    }

    fn kv_size<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<u64>> {
        let id = id.clone();
        Box::pin(self.reader.run(move |conn| ops::kv_size(conn, &id)))
    }

    fn commit_units(&self, units: Vec<Unit>) -> BoxFuture<'_, Result<Vec<UnitOutcome>>> {
        let files = Arc::clone(&self.files);
        Box::pin(
            self.writer
                .run(move |conn| ops::commit(conn, &files, units)),
        )
    }

    fn delete_actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<()>> {
        let id = id.clone();
        let files = Arc::clone(&self.files);
        Box::pin(
            self.writer
                .run(move |conn| ops::delete_actor(conn, &files, &id)),
        )
    }
}
