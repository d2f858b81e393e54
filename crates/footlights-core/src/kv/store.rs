//! One actor's key-value store: the layers of its own writes, the cache, the size account, and
//! the way to the driver.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use footlights_protocol::{ActionError, ActorId};
use footlights_storage::{Driver, KvRange, StorageError, Write};

use super::cache::Cache;
use super::overlay::{Change, Found, Layer, stack};
use crate::ActorOptions;
use crate::gate::Gate;

/// The byte every key of the actor's own map starts with in storage. Keys that start with
/// another byte belong to the runtime (such as the create input).
pub(crate) const USER_PREFIX: u8 = 0x01;

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 2048;
/// The largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 128 * 1024;
/// How many entries a listing asks the driver for at a time, at most.
const PAGE: usize = 512;

/// The limits of one actor type's store, from its [`ActorOptions`](crate::ActorOptions).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_bytes: u64,
    pub(crate) max_message_bytes: u64,
    pub(crate) cache_bytes: usize,
}

impl Limits {
    fn of(options: &ActorOptions) -> Self {
        Limits {
            max_bytes: options.kv_max_bytes,
            max_message_bytes: options.kv_max_message_bytes,
            cache_bytes: options.kv_cache_bytes,
        }
    }
}

/// Everything that changes, made on first use: most actors never touch their store.
#[derive(Debug)]
struct Inner {
    /// The running message's writes.
    staged: Layer,
    /// Bytes the running message has put so far.
    staged_bytes: u64,
    /// Handed to the writer, not yet durable.
    unsettled: Layer,
    cache: Cache,
    /// Counts writes, so a driver read that raced one is not cached.
    writes: u64,
    /// The stored size plus what the layers add, never below the truth: overwrites and
    /// deletes of values it has not seen count as freeing nothing. Read from the driver at
    /// the first write.
    size: Option<u64>,
}

/// An actor's store. Lives in the actor's shared data; the public handle is
/// [`Kv`](super::Kv).
pub(crate) struct KvStore {
    driver: Arc<dyn Driver>,
    id: ActorId,
    gate: Arc<Gate>,
    /// The type's settings, where the limits are read (shared by the type's instances
    /// rather than copied into each).
    options: Arc<ActorOptions>,
    inner: Mutex<Option<Box<Inner>>>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn storage(e: &StorageError) -> ActionError {
    crate::writer::storage_error(e)
}

pub(crate) fn stored_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(USER_PREFIX);
    k.extend_from_slice(key);
    k
}

/// The storage range of a user range (keys behind [`USER_PREFIX`]).
fn stored_range(range: &KvRange) -> KvRange {
    use std::ops::Bound;
    let map = |b: &Bound<Vec<u8>>| match b {
        Bound::Included(k) => Bound::Included(stored_key(k)),
        Bound::Excluded(k) => Bound::Excluded(stored_key(k)),
        Bound::Unbounded => Bound::Unbounded,
    };
    KvRange {
        start: match &range.start {
            Bound::Unbounded => Bound::Included(vec![USER_PREFIX]),
            b => map(b),
        },
        end: match &range.end {
            Bound::Unbounded => Bound::Excluded(vec![USER_PREFIX + 1]),
            b => map(b),
        },
        reverse: range.reverse,
        limit: range.limit,
    }
}

/// The user key of a stored one.
fn user_key(mut stored: Vec<u8>) -> Vec<u8> {
    stored.remove(0);
    stored
}

fn entry_bytes(key: &[u8], value: &[u8]) -> u64 {
    (1 + key.len() + value.len()) as u64
}

impl KvStore {
    pub(crate) fn new(
        driver: Arc<dyn Driver>,
        id: ActorId,
        gate: Arc<Gate>,
        options: Arc<ActorOptions>,
    ) -> Self {
        KvStore {
            driver,
            id,
            gate,
            options,
            inner: Mutex::new(None),
        }
    }

    fn limits(&self) -> Limits {
        Limits::of(&self.options)
    }

    /// The driver the store reads from.
    #[cfg(feature = "db")]
    pub(crate) fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    fn lock(&self) -> MutexGuard<'_, Option<Box<Inner>>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the live data, made on first use, after dropping from the unsettled layer
    /// what became durable since the last call.
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let durable = self.gate.durable();
        let mut guard = self.lock();
        let inner = guard.get_or_insert_with(|| {
            Box::new(Inner {
                staged: Layer::default(),
                staged_bytes: 0,
                unsettled: Layer::default(),
                cache: Cache::new(self.limits().cache_bytes),
                writes: 0,
                size: None,
            })
        });
        inner.unsettled.settle(durable);
        f(inner)
    }

    /// Values of `keys`, seeing the actor's own writes; one driver read for the ones not in
    /// the layers or the cache.
    pub(crate) async fn get_many(
        &self,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, ActionError> {
        // `None`: not known in memory, to be read.
        let (mut values, writes) = self.with(|inner| {
            let values: Vec<Option<Option<Vec<u8>>>> = keys
                .iter()
                .map(|key| match inner.staged.get(key) {
                    Found::Unknown => inner.unsettled.get(key),
                    other => other,
                })
                .zip(keys)
                .map(|(found, key)| match found {
                    Found::Value(v) => Some(Some(v)),
                    Found::Deleted => Some(None),
                    Found::Unknown => inner.cache.get(key),
                })
                .collect();
            (values, inner.writes)
        });
        let missing: Vec<Vec<u8>> = keys
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| stored_key(k))
            .collect();
        if !missing.is_empty() {
            let mut read = self
                .driver
                .kv_get_many(&self.id, &missing)
                .await
                .map_err(|e| storage(&e))?
                .into_iter();
            self.with(|inner| {
                // A write since the read began may have changed what was read: do not cache.
                let fresh = inner.writes == writes;
                for (key, slot) in keys.iter().zip(values.iter_mut()) {
                    if slot.is_none() {
                        let v = read.next().flatten();
                        if fresh {
                            inner.cache.insert(key.to_vec(), v.clone());
                        }
                        *slot = Some(v);
                    }
                }
            });
        }
        Ok(values.into_iter().map(Option::flatten).collect())
    }

    /// Stages puts (`Some`) and deletes (`None`) after checking the limits; all or none.
    pub(crate) async fn write(&self, entries: Vec<Change>) -> Result<(), ActionError> {
        let mut added = 0u64;
        for (key, value) in &entries {
            if key.len() > MAX_KEY_BYTES {
                return Err(ActionError::new(
                    "kv",
                    "key_too_large",
                    format!(
                        "a key of {} bytes is over the limit of {MAX_KEY_BYTES}",
                        key.len()
                    ),
                )
                .with_metadata(&Over {
                    bytes: key.len(),
                    limit: MAX_KEY_BYTES,
                }));
            }
            if let Some(v) = value {
                if v.len() > MAX_VALUE_BYTES {
                    return Err(ActionError::new(
                        "kv",
                        "value_too_large",
                        format!(
                            "a value of {} bytes is over the limit of {MAX_VALUE_BYTES}",
                            v.len()
                        ),
                    )
                    .with_metadata(&Over {
                        bytes: v.len(),
                        limit: MAX_VALUE_BYTES,
                    }));
                }
                added += entry_bytes(key, v);
            }
        }
        let message = self.with(|inner| inner.staged_bytes) + added;
        if message > self.limits().max_message_bytes {
            return Err(ActionError::new(
                "kv",
                "message_too_large",
                format!(
                    "one message may write at most {} bytes to the store; this one would write {message}",
                    self.limits().max_message_bytes
                ),
            ));
        }
        if self.with(|inner| inner.size).is_none() {
            let stored = self
                .driver
                .kv_size(&self.id)
                .await
                .map_err(|e| storage(&e))?;
            self.with(|inner| {
                inner
                    .size
                    .get_or_insert(stored.saturating_add(inner.staged_bytes));
            });
        }
        if self.with(|inner| inner.size.unwrap_or(0)) + added > self.limits().max_bytes {
            self.refresh_size().await?;
        }
        self.with(|inner| self.stage(inner, entries, added))
    }

    /// Stages checked writes, unless they take the store past its size limit.
    fn stage(
        &self,
        inner: &mut Inner,
        entries: Vec<Change>,
        added: u64,
    ) -> Result<(), ActionError> {
        let mut size = inner.size.unwrap_or(0);
        if size + added > self.limits().max_bytes {
            return Err(ActionError::new(
                "kv",
                "actor_too_large",
                format!(
                    "the actor's store would grow past its limit of {} bytes",
                    self.limits().max_bytes
                ),
            ));
        }
        inner.writes += 1;
        inner.staged_bytes += added;
        for (key, value) in entries {
            // What the entry held before, if the layers or the cache know it.
            let old = match inner.staged.get(&key) {
                Found::Unknown => match inner.unsettled.get(&key) {
                    Found::Unknown => inner
                        .cache
                        .get(&key)
                        .flatten()
                        .map(|v| entry_bytes(&key, &v)),
                    Found::Value(v) => Some(entry_bytes(&key, &v)),
                    Found::Deleted => Some(0),
                },
                Found::Value(v) => Some(entry_bytes(&key, &v)),
                Found::Deleted => Some(0),
            };
            let new = value.as_ref().map_or(0, |v| entry_bytes(&key, v));
            size = (size + new).saturating_sub(old.unwrap_or(0));
            inner.cache.remove(&key);
            inner.staged.put(key, value, 0);
        }
        inner.size = Some(size);
        Ok(())
    }

    /// Stages the deletion of `[start, end)`.
    pub(crate) fn delete_range(&self, start: Vec<u8>, end: Option<Vec<u8>>) {
        self.with(|inner| {
            inner.writes += 1;
            inner.cache.remove_range(&start, end.as_deref());
            inner.staged.delete_range(start, end, 0);
        });
    }

    /// Replaces the size estimate with the stored size (once every write handed over is
    /// durable) plus what the running message adds.
    async fn refresh_size(&self) -> Result<(), ActionError> {
        self.gate.wait_durable(self.gate.issued()).await?;
        let stored = self
            .driver
            .kv_size(&self.id)
            .await
            .map_err(|e| storage(&e))?;
        // Range deletes of the running message are counted as freeing nothing.
        let (_, entries) = self.with(|inner| inner.staged.writes());
        let keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| stored_key(k)).collect();
        let before = self
            .driver
            .kv_get_many(&self.id, &keys)
            .await
            .map_err(|e| storage(&e))?;
        let mut size = stored;
        for ((key, value), old) in entries.iter().zip(before) {
            let old = old.map_or(0, |v| (key.len() + 1 + v.len()) as u64);
            let new = value.as_ref().map_or(0, |v| entry_bytes(key, v));
            size = (size + new).saturating_sub(old);
        }
        self.with(|inner| inner.size = Some(size));
        Ok(())
    }

    /// Up to `range.limit` entries (plus whether more follow), seeing the actor's own writes,
    /// a page of the driver at a time.
    pub(crate) async fn list(
        &self,
        range: &KvRange,
    ) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, bool), ActionError> {
        if range.limit == 0 || range.is_empty() {
            return Ok((Vec::new(), false));
        }
        let view = self.with(|inner| {
            if inner.staged.touches(range) || inner.unsettled.touches(range) {
                stack(&inner.unsettled, &inner.staged, range)
            } else {
                Layer::default()
            }
        });
        let want = range.limit.saturating_add(1);
        let mut out = Vec::new();
        let mut cursor = range.clone();
        loop {
            let ask = (want - out.len()).saturating_add(8).min(PAGE);
            let page = self
                .driver
                .kv_list(&self.id, &stored_range(&cursor.clone().limit(ask)))
                .await
                .map_err(|e| storage(&e))?;
            let exhausted = page.len() < ask;
            let page: Vec<(Vec<u8>, Vec<u8>)> =
                page.into_iter().map(|(k, v)| (user_key(k), v)).collect();
            let reached = if exhausted {
                None
            } else {
                page.last().map(|(k, _)| k.clone())
            };
            let merged = if view.is_empty() {
                page
            } else {
                view.merge(page, &cursor, reached.as_deref())
            };
            out.extend(merged);
            match reached {
                Some(last) if out.len() < want => cursor = cursor.after(&last),
                _ => break,
            }
        }
        let more = out.len() > range.limit;
        out.truncate(range.limit);
        Ok((out, more))
    }

    /// Whether the running message staged writes.
    pub(crate) fn has_staged(&self) -> bool {
        self.lock().as_ref().is_some_and(|i| !i.staged.is_empty())
    }

    /// The running message ended: its writes go to the writer as sequence `seq`.
    pub(crate) fn take_staged(&self, seq: u64) -> Vec<Write> {
        let mut guard = self.lock();
        let Some(inner) = guard.as_mut() else {
            return Vec::new();
        };
        let staged = std::mem::take(&mut inner.staged);
        inner.staged_bytes = 0;
        let (tombs, entries) = staged.writes();
        inner.unsettled.absorb(staged, seq);
        let actor = &self.id;
        let mut writes = Vec::with_capacity(tombs.len() + entries.len());
        for t in tombs {
            writes.push(Write::KvDeleteRange {
                actor: actor.clone(),
                start: stored_key(&t.start),
                end: Some(
                    t.end
                        .map_or_else(|| vec![USER_PREFIX + 1], |e| stored_key(&e)),
                ),
            });
        }
        for (key, value) in entries {
            writes.push(match value {
                Some(value) => Write::KvPut {
                    actor: actor.clone(),
                    key: stored_key(&key),
                    value,
                },
                None => Write::KvDelete {
                    actor: actor.clone(),
                    key: stored_key(&key),
                },
            });
        }
        writes
    }

    /// The running message panicked: its writes are dropped.
    pub(crate) fn discard_staged(&self) {
        let mut guard = self.lock();
        if let Some(inner) = guard.as_mut() {
            inner.staged = Layer::default();
            inner.staged_bytes = 0;
            inner.writes += 1;
        }
    }
}

/// The metadata of a `kv.*_too_large` error.
#[derive(serde::Serialize)]
struct Over {
    bytes: usize,
    limit: usize,
}
