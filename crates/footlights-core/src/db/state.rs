//! One actor's database: its pages in the actor's storage, the connection, and the way the
//! pages a message changed join the message's writes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use footlights_protocol::{ActionError, ActorId};
use footlights_sqlvfs::{CHUNK, DbFile, PageStore, StoreError};
use footlights_storage::{Driver, Write, prefix_end};
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

use crate::ActorOptions;
use crate::gate::Gate;

/// The storage key of the database's length (outside the user's key space).
pub(crate) const LEN_KEY: &[u8] = b"footlights.db";
/// The storage prefix of the database's pages: the page index follows in 8 big-endian bytes.
pub(crate) const PAGE_PREFIX: &[u8] = b"footlights.db/";

/// The storage key of page `index`.
pub(crate) fn page_key(index: u64) -> Vec<u8> {
    let mut k = PAGE_PREFIX.to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The limits of one actor type's database, from its [`ActorOptions`](crate::ActorOptions).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DbLimits {
    pub(crate) max_bytes: u64,
    pub(crate) cache_bytes: usize,
    pub(crate) statement_timeout: Duration,
    pub(crate) max_rows: usize,
}

impl DbLimits {
    fn of(options: &ActorOptions) -> Self {
        DbLimits {
            max_bytes: options.db_max_bytes,
            cache_bytes: options.db_cache_bytes,
            statement_timeout: options.db_statement_timeout,
            max_rows: options.db_max_rows,
        }
    }
}

/// Pages handed to the writer and not yet durable, so reads see them before the driver has
/// them; each tagged with its write sequence and dropped once that sequence is durable.
#[derive(Debug, Default)]
struct Unsettled {
    pages: BTreeMap<u64, (Vec<u8>, u64)>,
    len: Option<(u64, u64)>,
}

impl Unsettled {
    fn settle(&mut self, durable: u64) {
        self.pages.retain(|_, (_, seq)| *seq > durable);
        if self.len.is_some_and(|(_, seq)| seq <= durable) {
            self.len = None;
        }
    }
}

/// The database's pages as the actor's storage holds them, its own unsettled writes first.
/// Read from the blocking thread that runs a statement.
struct KvPages {
    driver: Arc<dyn Driver>,
    id: ActorId,
    gate: Arc<Gate>,
    /// The runtime the actor runs on, taken at the first statement.
    runtime: OnceLock<tokio::runtime::Handle>,
    unsettled: Mutex<Unsettled>,
}

impl KvPages {
    fn unsettled(&self) -> MutexGuard<'_, Unsettled> {
        let durable = self.gate.durable();
        let mut u = self
            .unsettled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        u.settle(durable);
        u
    }

    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let runtime = self
            .runtime
            .get()
            .ok_or_else(|| StoreError("no runtime to read pages on".into()))?;
        runtime
            .block_on(self.driver.kv_get(&self.id, key))
            .map_err(|e| StoreError(e.to_string()))
    }
}

impl PageStore for KvPages {
    fn read_chunk(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some((page, _)) = self.unsettled().pages.get(&index) {
            return Ok(Some(page.clone()));
        }
        self.read(&page_key(index))
    }

    fn saved_len(&self) -> Result<u64, StoreError> {
        if let Some((len, _)) = self.unsettled().len {
            return Ok(len);
        }
        let bytes = self.read(LEN_KEY)?;
        Ok(bytes
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes))
    }
}

/// The connection, opened on first use and after a panic dropped it.
pub(crate) type Slot = Arc<Mutex<Option<Connection>>>;

/// An actor's database. Lives in the actor's shared data; the public handle is
/// [`Db`](super::Db). Its parts are made at the first statement: most actors never use it.
pub(crate) struct DbState {
    parts: OnceLock<Parts>,
    /// The type's settings, where the limits are read.
    options: Arc<ActorOptions>,
}

/// What a database in use holds.
pub(crate) struct Parts {
    pages: Arc<KvPages>,
    file: Arc<DbFile>,
    slot: Slot,
}

/// Cancels the call of a caller that stopped waiting (an action that timed out, say): the
/// call does not start, or its statement is interrupted at the next progress check, so it
/// does not run on, holding the connection, until the statement time limit.
struct CancelOnDrop {
    cancelled: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.cancelled.store(true, Ordering::Release);
        }
    }
}

fn cancelled_error() -> ActionError {
    ActionError::internal("database call cancelled: its caller stopped waiting")
}

impl std::fmt::Debug for DbState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbState")
            .field("in_use", &self.parts.get().is_some())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("id", &self.pages.id)
            .finish_non_exhaustive()
    }
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Connection>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DbState {
    pub(crate) fn new(options: Arc<ActorOptions>) -> Self {
        DbState {
            parts: OnceLock::new(),
            options,
        }
    }

    /// The limits of the actor's type.
    pub(crate) fn limits(&self) -> DbLimits {
        DbLimits::of(&self.options)
    }

    /// The database's parts, made on first use. Nothing is read until the first statement.
    pub(crate) fn parts(&self, driver: &Arc<dyn Driver>, id: &ActorId, gate: &Arc<Gate>) -> &Parts {
        self.parts.get_or_init(|| {
            let pages = Arc::new(KvPages {
                driver: driver.clone(),
                id: id.clone(),
                gate: gate.clone(),
                runtime: OnceLock::new(),
                unsettled: Mutex::default(),
            });
            let file = DbFile::new(pages.clone());
            Parts {
                pages,
                file,
                slot: Arc::default(),
            }
        })
    }

    /// Whether the database was opened during this wake.
    pub(crate) fn is_open(&self) -> bool {
        self.parts.get().is_some()
    }

    /// Whether the running message changed pages.
    pub(crate) fn has_staged(&self) -> bool {
        self.parts.get().is_some_and(|p| p.file.has_changes())
    }

    /// The running message ended: the pages it changed become its writes, as sequence `seq`.
    pub(crate) fn take_staged(&self, seq: u64) -> Vec<Write> {
        self.parts
            .get()
            .map_or_else(Vec::new, |p| p.take_staged(seq))
    }

    /// The running message panicked: the pages it changed are dropped, and so is the
    /// connection, whose page cache holds them; the next call opens it again.
    pub(crate) fn discard_staged(&self) {
        if let Some(p) = self.parts.get() {
            p.discard_staged();
        }
    }
}

impl Parts {
    /// Runs `f` on the connection on a blocking thread (the statement may wait for pages
    /// from storage), opening it first if needed, within the statement time limit. A
    /// transaction `f` leaves open is rolled back and the call fails.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        limits: DbLimits,
        f: impl FnOnce(&mut Connection) -> Result<R, ActionError> + Send + 'static,
    ) -> Result<R, ActionError> {
        self.pages
            .runtime
            .get_or_init(tokio::runtime::Handle::current);
        let slot = self.slot.clone();
        let file = self.file.clone();
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut on_drop = CancelOnDrop {
            cancelled: cancelled.clone(),
            armed: true,
        };
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = lock(&slot);
            if cancelled.load(Ordering::Acquire) {
                return Err(cancelled_error());
            }
            if guard.is_none() {
                *guard = Some(open(&file, &limits)?);
            }
            let Some(conn) = guard.as_mut() else {
                return Err(ActionError::internal("database connection missing"));
            };
            let deadline = Instant::now() + limits.statement_timeout;
            conn.progress_handler(
                1000,
                Some(move || cancelled.load(Ordering::Acquire) || Instant::now() >= deadline),
            );
            let result = f(conn);
            conn.progress_handler(0, None::<fn() -> bool>);
            if !conn.is_autocommit() {
                // Pages of a transaction still open must not be saved with the message.
                let _ = conn.execute_batch("ROLLBACK");
                if !conn.is_autocommit() {
                    *guard = None;
                    file.discard_changes();
                }
                result?;
                return Err(ActionError::new(
                    "db",
                    "transaction_open",
                    "a transaction must end within the call that began it (use Db::transaction); \
                     it was rolled back",
                ));
            }
            result
        });
        let joined = task.await;
        on_drop.armed = false;
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ActionError::internal(format!("database call failed: {e}"))),
        }
    }

    fn take_staged(&self, seq: u64) -> Vec<Write> {
        if !self.file.has_changes() {
            return Vec::new();
        }
        // No statement may be halfway through: wait for one still running (only a call from
        // outside the message, such as a background task, can be).
        let _conn = lock(&self.slot);
        let changes = self.file.take_changes();
        let actor = &self.pages.id;
        let mut writes = Vec::with_capacity(changes.chunks.len() + 2);
        let mut unsettled = self.pages.unsettled();
        if let Some(from) = changes.truncate_from {
            writes.push(Write::KvDeleteRange {
                actor: actor.clone(),
                start: page_key(from),
                end: prefix_end(PAGE_PREFIX),
            });
            unsettled.pages.retain(|i, _| *i < from);
        }
        for (index, page) in changes.chunks {
            writes.push(Write::KvPut {
                actor: actor.clone(),
                key: page_key(index),
                value: page.clone(),
            });
            unsettled.pages.insert(index, (page, seq));
        }
        if let Some(len) = changes.len {
            writes.push(Write::KvPut {
                actor: actor.clone(),
                key: LEN_KEY.to_vec(),
                value: len.to_be_bytes().to_vec(),
            });
            unsettled.len = Some((len, seq));
        }
        writes
    }

    fn discard_staged(&self) {
        let mut conn = lock(&self.slot);
        if conn.is_some() || self.file.has_changes() {
            *conn = None;
            self.file.discard_changes();
        }
    }
}

/// Opens the actor's connection, with the size limit as SQLite's page count limit.
fn open(file: &Arc<DbFile>, limits: &DbLimits) -> Result<Connection, ActionError> {
    let conn = file.open(limits.cache_bytes).map_err(super::sql_error)?;
    let pages = (limits.max_bytes / CHUNK as u64).max(1);
    conn.execute_batch(&format!("PRAGMA max_page_count = {pages};"))
        .map_err(super::sql_error)?;
    Ok(conn)
}
