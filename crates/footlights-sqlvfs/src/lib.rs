//! A SQLite database whose file lives in fixed-size chunks of a store the caller supplies.
//!
//! SQLite reads and writes its database file through a VFS (virtual file system). This crate
//! registers one, named [`VFS_NAME`], whose main database file is a [`DbFile`]: reads go to the
//! file's own unsaved writes first, then to a [`PageStore`]; writes stay in memory until the
//! owner takes them with [`DbFile::take_changes`] and stores them however it likes (Footlights
//! core commits them with the actor's other writes). Nothing reaches a disk file beside the
//! store.
//!
//! The file is cut into chunks of [`CHUNK`] bytes (the database's page size, so one page write
//! is one chunk). A read or write that does not line up with chunks works too, chunk by chunk.
//!
//! # Atomicity
//! SQLite runs with `locking_mode = EXCLUSIVE` and `journal_mode = MEMORY` on these files
//! ([`DbFile::open`] sets both): the journal that lets `ROLLBACK` undo a transaction lives in
//! memory, and what makes a set of writes all-or-nothing on disk is the owner committing
//! everything [`take_changes`](DbFile::take_changes) returns in one transaction of its store.
//! The owner must take changes only between SQLite transactions (the connection in autocommit
//! mode), so what it stores is always a committed database.
//!
//! The VFS registration is done by the maintained `sqlite-plugin` crate, so this crate has no
//! `unsafe` code of its own.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use rusqlite::{Connection, OpenFlags};
use sqlite_plugin::flags::{AccessFlags, LockLevel, OpenKind, OpenOpts};
use sqlite_plugin::vars;
use sqlite_plugin::vfs::{RegisterOpts, Vfs, VfsHandle, VfsResult};

/// The name the VFS is registered under.
pub const VFS_NAME: &str = "footlights-pages";

/// The size of one stored chunk of the database file, in bytes: also the page size
/// [`DbFile::open`] gives new databases.
pub const CHUNK: usize = 4096;

/// A store failure, as text for the log and the error SQLite reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// Where a database file's saved chunks are read from. Calls are synchronous: they run on the
/// thread that runs the SQL statement.
pub trait PageStore: Send + Sync + 'static {
    /// Chunk `index` (bytes `index * CHUNK ..`) as saved; `None` if it never was.
    ///
    /// # Errors
    /// The store could not be read; the statement fails with an I/O error.
    fn read_chunk(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// The saved length of the file in bytes (0 for a new database).
    ///
    /// # Errors
    /// As [`read_chunk`](Self::read_chunk).
    fn saved_len(&self) -> Result<u64, StoreError>;
}

/// What changed in a file since the last [`DbFile::take_changes`]: apply `truncate_from` first,
/// then `chunks`, then record `len`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Every saved chunk from this index on is to be deleted (the file was cut short).
    pub truncate_from: Option<u64>,
    /// Chunks written, by index, each [`CHUNK`] bytes (the last may be shorter).
    pub chunks: Vec<(u64, Vec<u8>)>,
    /// The file's new length, if it changed.
    pub len: Option<u64>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.truncate_from.is_none() && self.chunks.is_empty() && self.len.is_none()
    }
}

#[derive(Debug, Default)]
struct State {
    /// The file's current length; read from the store on first use.
    len: Option<u64>,
    len_changed: bool,
    truncate_from: Option<u64>,
    /// Chunks written since the last take.
    dirty: BTreeMap<u64, Vec<u8>>,
}

/// One database file over a [`PageStore`], with the writes not yet taken by its owner.
pub struct DbFile {
    store: Arc<dyn PageStore>,
    state: Mutex<State>,
}

impl std::fmt::Debug for DbFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("DbFile")
            .field("len", &state.len)
            .field("dirty_chunks", &state.dirty.len())
            .finish_non_exhaustive()
    }
}

fn io(code: i32) -> impl FnOnce(StoreError) -> i32 {
    move |_| code
}

impl DbFile {
    /// A file over `store`.
    pub fn new(store: Arc<dyn PageStore>) -> Arc<Self> {
        Arc::new(DbFile {
            store,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a connection on this file through the VFS, set up for it: exclusive locking, an
    /// in-memory journal, a page size of [`CHUNK`] for a new database, temporary tables in
    /// memory, and a page cache of at most `cache_bytes`.
    ///
    /// # Errors
    /// SQLite's error if the VFS cannot be registered or the file cannot be opened.
    pub fn open(self: &Arc<Self>, cache_bytes: usize) -> rusqlite::Result<Connection> {
        register()?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("db-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        opening().insert(name.clone(), Arc::clone(self));
        let conn = Connection::open_with_flags_and_vfs(
            &name,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            VFS_NAME,
        );
        opening().remove(&name);
        let conn = conn?;
        // A negative cache_size is a budget in KiB.
        let kib = (cache_bytes / 1024).max(64);
        conn.execute_batch(&format!(
            "PRAGMA page_size = {CHUNK}; \
             PRAGMA locking_mode = EXCLUSIVE; \
             PRAGMA journal_mode = MEMORY; \
             PRAGMA temp_store = MEMORY; \
             PRAGMA cache_size = -{kib};"
        ))?;
        Ok(conn)
    }

    /// Takes the writes made since the last take, leaving the file clean. Call it only while
    /// no SQLite transaction is open on the file.
    pub fn take_changes(&self) -> Changes {
        let mut state = self.lock();
        let dirty = std::mem::take(&mut state.dirty);
        let len_changed = std::mem::take(&mut state.len_changed);
        Changes {
            truncate_from: state.truncate_from.take(),
            chunks: dirty.into_iter().collect(),
            len: if len_changed { state.len } else { None },
        }
    }

    /// Drops the writes made since the last take: reads see the store again. Connections on
    /// the file must be reopened after this, as their page cache still holds the dropped
    /// pages.
    pub fn discard_changes(&self) {
        let mut state = self.lock();
        *state = State::default();
    }

    /// Whether writes wait to be taken.
    pub fn has_changes(&self) -> bool {
        let state = self.lock();
        !state.dirty.is_empty() || state.len_changed || state.truncate_from.is_some()
    }

    /// The file's current length in bytes, its unsaved writes included.
    ///
    /// # Errors
    /// The store could not be read.
    pub fn len(&self) -> Result<u64, StoreError> {
        let mut state = self.lock();
        self.current_len(&mut state)
    }

    /// Whether the file is empty (a database never written).
    ///
    /// # Errors
    /// The store could not be read.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    fn current_len(&self, state: &mut State) -> Result<u64, StoreError> {
        match state.len {
            Some(len) => Ok(len),
            None => {
                let len = self.store.saved_len()?;
                state.len = Some(len);
                Ok(len)
            }
        }
    }

    /// Chunk `index` as the file holds it now, `CHUNK` bytes (zeros where never written).
    fn chunk(&self, state: &State, index: u64) -> Result<Vec<u8>, StoreError> {
        if let Some(c) = state.dirty.get(&index) {
            let mut c = c.clone();
            c.resize(CHUNK, 0);
            return Ok(c);
        }
        let mut c = self.store.read_chunk(index)?.unwrap_or_default();
        c.resize(CHUNK, 0);
        Ok(c)
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let len = self.current_len(&mut state)?;
        if offset >= len {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(len - offset).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < want {
            let at = offset + done as u64;
            let index = at / CHUNK as u64;
            let within = (at % CHUNK as u64) as usize;
            let n = (CHUNK - within).min(want - done);
            if within == 0
                && n == CHUNK
                && let Some(c) = state.dirty.get(&index).filter(|c| c.len() == CHUNK)
            {
                buf[done..done + n].copy_from_slice(c);
                done += n;
                continue;
            }
            let c = self.chunk(&state, index)?;
            buf[done..done + n].copy_from_slice(&c[within..within + n]);
            done += n;
        }
        Ok(want)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        let mut state = self.lock();
        let len = self.current_len(&mut state)?;
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let index = at / CHUNK as u64;
            let within = (at % CHUNK as u64) as usize;
            let n = (CHUNK - within).min(data.len() - done);
            let chunk = if within == 0 && n == CHUNK {
                data[done..done + n].to_vec()
            } else {
                let mut c = self.chunk(&state, index)?;
                c[within..within + n].copy_from_slice(&data[done..done + n]);
                c
            };
            state.dirty.insert(index, chunk);
            done += n;
        }
        let end = offset + data.len() as u64;
        if end > len {
            state.len = Some(end);
            state.len_changed = true;
        }
        Ok(())
    }

    fn truncate(&self, size: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        let len = self.current_len(&mut state)?;
        if size >= len {
            return Ok(());
        }
        // The first chunk wholly past the end; a chunk cut in the middle is rewritten short.
        let first_gone = size.div_ceil(CHUNK as u64);
        if !size.is_multiple_of(CHUNK as u64) {
            let index = size / CHUNK as u64;
            let mut c = self.chunk(&state, index)?;
            c.truncate((size % CHUNK as u64) as usize);
            state.dirty.insert(index, c);
        }
        state.dirty.retain(|i, _| *i < first_gone);
        state.truncate_from = Some(
            state
                .truncate_from
                .map_or(first_gone, |t| t.min(first_gone)),
        );
        state.len = Some(size);
        state.len_changed = true;
        Ok(())
    }
}

/// Files being opened, by the name given to SQLite, for the VFS's `open` to find.
fn opening() -> MutexGuard<'static, HashMap<String, Arc<DbFile>>> {
    static OPENING: OnceLock<Mutex<HashMap<String, Arc<DbFile>>>> = OnceLock::new();
    OPENING
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Registers the VFS once per process.
fn register() -> rusqlite::Result<()> {
    static REGISTERED: OnceLock<Result<(), i32>> = OnceLock::new();
    let outcome = REGISTERED.get_or_init(|| {
        let name = CString::new(VFS_NAME).map_err(|_| vars::SQLITE_INTERNAL)?;
        sqlite_plugin::vfs::register_static(
            name,
            PagesVfs,
            RegisterOpts {
                make_default: false,
            },
        )
        .map(drop)
    });
    outcome.map_err(|code| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some(format!("the {VFS_NAME} VFS could not be registered")),
        )
    })
}

/// The VFS: main databases are [`DbFile`]s; anything else SQLite opens (temporary files,
/// statement journals) lives in memory.
struct PagesVfs;

/// An open file of the VFS.
enum Handle {
    Db(Arc<DbFile>),
    Memory(Vec<u8>),
}

impl VfsHandle for Handle {
    fn readonly(&self) -> bool {
        false
    }

    fn in_memory(&self) -> bool {
        matches!(self, Handle::Memory(_))
    }
}

impl Vfs for PagesVfs {
    type Handle = Handle;

    fn canonical_path<'a>(&self, path: Cow<'a, str>) -> VfsResult<Cow<'a, str>> {
        Ok(path)
    }

    fn open(&self, path: Option<&str>, opts: OpenOpts) -> VfsResult<Handle> {
        if opts.kind() == OpenKind::MainDb {
            let file = path
                .and_then(|p| opening().get(p).cloned())
                .ok_or(vars::SQLITE_CANTOPEN)?;
            return Ok(Handle::Db(file));
        }
        Ok(Handle::Memory(Vec::new()))
    }

    fn delete(&self, _path: &str) -> VfsResult<()> {
        Ok(())
    }

    fn access(&self, _path: &str, _flags: AccessFlags) -> VfsResult<bool> {
        // No journal or WAL file ever exists beside a database.
        Ok(false)
    }

    fn file_size(&self, handle: &mut Handle) -> VfsResult<usize> {
        match handle {
            Handle::Db(f) => f
                .len()
                .map_err(io(vars::SQLITE_IOERR_FSTAT))
                .and_then(|l| usize::try_from(l).map_err(|_| vars::SQLITE_IOERR_FSTAT)),
            Handle::Memory(m) => Ok(m.len()),
        }
    }

    fn truncate(&self, handle: &mut Handle, size: usize) -> VfsResult<()> {
        match handle {
            Handle::Db(f) => f
                .truncate(size as u64)
                .map_err(io(vars::SQLITE_IOERR_TRUNCATE)),
            Handle::Memory(m) => {
                m.truncate(size);
                Ok(())
            }
        }
    }

    fn write(&self, handle: &mut Handle, offset: usize, data: &[u8]) -> VfsResult<usize> {
        match handle {
            Handle::Db(f) => f
                .write(offset as u64, data)
                .map_err(io(vars::SQLITE_IOERR_WRITE))?,
            Handle::Memory(m) => {
                let end = offset + data.len();
                if m.len() < end {
                    m.resize(end, 0);
                }
                m[offset..end].copy_from_slice(data);
            }
        }
        Ok(data.len())
    }

    fn read(&self, handle: &mut Handle, offset: usize, buf: &mut [u8]) -> VfsResult<usize> {
        match handle {
            Handle::Db(f) => f
                .read(offset as u64, buf)
                .map_err(io(vars::SQLITE_IOERR_READ)),
            Handle::Memory(m) => {
                if offset >= m.len() {
                    return Ok(0);
                }
                let n = buf.len().min(m.len() - offset);
                buf[..n].copy_from_slice(&m[offset..offset + n]);
                Ok(n)
            }
        }
    }

    fn lock(&self, _handle: &mut Handle, _level: LockLevel) -> VfsResult<()> {
        // One connection per file, by construction.
        Ok(())
    }

    fn unlock(&self, _handle: &mut Handle, _level: LockLevel) -> VfsResult<()> {
        Ok(())
    }

    fn check_reserved_lock(&self, _handle: &mut Handle) -> VfsResult<bool> {
        Ok(false)
    }

    fn close(&self, _handle: Handle) -> VfsResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
