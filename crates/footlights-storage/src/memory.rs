//! [`MemoryDriver`]: every actor's data in one process-local map, for tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use futures::future::BoxFuture;

use crate::{
    ActorId, ActorKey, ActorMeta, Alarm, CreateOutcome, Driver, FORMAT_VERSION, KvRange, Result,
    StorageError, Unit, UnitOutcome, Write,
};

/// A [`Driver`] that keeps everything in memory, for tests.
///
/// Clones are cheap and share the same data, so "closing and reopening the store" is dropping
/// one clone and using another: data committed through any clone is seen by all of them, and
/// lives as long as the last clone. Nothing reaches the disk, so "durable" here means "visible to
/// every clone once [`commit`](Driver::commit) returns".
///
/// ```
/// # futures::executor::block_on(async {
/// use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, MemoryDriver, Write};
///
/// let driver = MemoryDriver::new();
/// let meta = ActorMeta::new(ActorId::new("a1"), "counter", ActorKey::from("x"), 0);
/// driver.create_actor(&meta).await?;
///
/// let reopened = driver.clone();
/// drop(driver);
/// reopened.commit(vec![Write::BumpGeneration { actor: meta.id.clone() }]).await?;
/// assert_eq!(reopened.actor(&meta.id).await?.map(|m| m.generation), Some(1));
/// # Ok::<(), footlights_storage::StorageError>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct MemoryDriver {
    /// Shared by every clone. Only ever locked for the duration of one synchronous operation
    /// (never across an `.await`), so one `std` mutex is enough, and a batch applied under it is
    /// atomic for every reader.
    store: Arc<Mutex<Store>>,
}

impl fmt::Debug for MemoryDriver {
    /// Counts, not contents: a store's states can be large. `try_lock`, so that formatting a
    /// driver while it is locked (say, from a panic inside an operation) cannot deadlock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("MemoryDriver");
        match self.store.try_lock() {
            Ok(store) => out.field("actors", &store.actors.len()),
            Err(TryLockError::Poisoned(store)) => {
                out.field("actors", &store.get_ref().actors.len())
            }
            Err(TryLockError::WouldBlock) => out.field("actors", &format_args!("<locked>")),
        };
        out.finish_non_exhaustive()
    }
}

/// Everything a [`MemoryDriver`] holds.
struct Store {
    /// The data layout version, as a file-backed driver would record it. Only the
    /// conformance harness reads and changes it, to check that newer versions are refused.
    #[cfg_attr(
        not(feature = "conformance"),
        allow(dead_code, reason = "only the harness reads it")
    )]
    format_version: u32,
    /// Every live actor by id.
    actors: HashMap<ActorId, Record>,
    /// The unique `(name, key)` index, ordered as [`Driver::list_actors`] returns it.
    by_key: BTreeMap<(String, ActorKey), ActorId>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            format_version: FORMAT_VERSION,
            actors: HashMap::new(),
            by_key: BTreeMap::new(),
        }
    }
}

/// One actor's data.
struct Record {
    meta: ActorMeta,
    state: Option<Vec<u8>>,
    alarms: HashMap<String, Alarm>,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The lengths of `kv`'s keys and values added up.
    kv_bytes: u64,
}

fn entry_size(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

/// A new actor's id is already used by an actor with another name or key.
#[derive(Debug, thiserror::Error)]
#[error("actor id {0} is already used by another actor")]
struct DuplicateId(ActorId);

impl MemoryDriver {
    /// An empty store.
    pub fn new() -> Self {
        MemoryDriver::default()
    }

    /// Runs `f` with the store locked.
    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while the lock is held can only come from inside one of the short closures
        // below, none of which leaves the store half-updated before it could panic (they only
        // allocate), so the data behind a poisoned lock is still consistent.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The format version recorded in the store (for the conformance harness).
    #[cfg(feature = "conformance")]
    pub(crate) fn format_version(&self) -> u32 {
        self.lock().format_version
    }

    /// Records another format version (for the conformance harness).
    #[cfg(feature = "conformance")]
    pub(crate) fn set_format_version(&self, version: u32) {
        self.lock().format_version = version;
    }

    /// What "opening" this store again checks: that its data layout is not newer than ours.
    #[cfg(feature = "conformance")]
    pub(crate) fn check_format(&self) -> Result<()> {
        let found = self.format_version();
        if found > FORMAT_VERSION {
            return Err(StorageError::UnsupportedFormat {
                found,
                supported: FORMAT_VERSION,
            });
        }
        Ok(())
    }
}

impl Store {
    /// The actor holding `name` and `key`, if any.
    fn by_key(&self, name: &str, key: &ActorKey) -> Option<&Record> {
        self.by_key
            .get(&(name.to_owned(), key.clone()))
            .and_then(|id| self.actors.get(id))
    }

    /// Fails if a create in `batch` would reuse the id of another actor, before anything is
    /// applied, so that a failed batch changes nothing. No write removes an actor, so the
    /// creates earlier in the batch are the only change a create has to account for.
    fn check_creates<'w>(&self, batch: impl Iterator<Item = &'w Write>) -> Result<()> {
        let mut new_keys = HashSet::new();
        let mut new_ids = HashSet::new();
        for write in batch {
            let Write::CreateActor { meta } = write else {
                continue;
            };
            let key = (meta.name.as_str(), &meta.key);
            if self.by_key(&meta.name, &meta.key).is_some() || new_keys.contains(&key) {
                continue;
            }
            if self.actors.contains_key(&meta.id) || !new_ids.insert(&meta.id) {
                return Err(StorageError::backend(DuplicateId(meta.id.clone())));
            }
            new_keys.insert(key);
        }
        Ok(())
    }

    /// Creates the actor unless its key is taken; [`check_creates`](Self::check_creates) has
    /// ruled out a reused id.
    fn create(&mut self, meta: ActorMeta) -> CreateOutcome {
        if let Some(existing) = self.by_key(&meta.name, &meta.key) {
            return CreateOutcome::Exists(existing.meta.clone());
        }
        self.by_key
            .insert((meta.name.clone(), meta.key.clone()), meta.id.clone());
        self.actors.insert(
            meta.id.clone(),
            Record {
                meta,
                state: None,
                alarms: HashMap::new(),
                kv: BTreeMap::new(),
                kv_bytes: 0,
            },
        );
        CreateOutcome::Created
    }

    fn list_page(
        &self,
        name: &str,
        key_prefix: &ActorKey,
        after: Option<&ActorKey>,
        limit: usize,
    ) -> Vec<ActorMeta> {
        let lower = match after {
            Some(after) if after >= key_prefix => Bound::Excluded((name.to_owned(), after.clone())),
            _ => Bound::Included((name.to_owned(), key_prefix.clone())),
        };
        self.by_key
            .range((lower, Bound::Unbounded))
            .take_while(|((n, key), _)| n == name && key.starts_with(key_prefix))
            .filter_map(|(_, id)| self.actors.get(id))
            .take(limit)
            .map(|record| record.meta.clone())
            .collect()
    }

    fn list(&self, name: &str, key_prefix: &ActorKey) -> Vec<ActorMeta> {
        // Keys are ordered part by part, so the keys that start with `key_prefix` form one run
        // that begins at `key_prefix` itself.
        let start = (name.to_owned(), key_prefix.clone());
        self.by_key
            .range(start..)
            .take_while(|((n, key), _)| n == name && key.starts_with(key_prefix))
            .filter_map(|(_, id)| self.actors.get(id))
            .map(|record| record.meta.clone())
            .collect()
    }

    /// Applies one write; a create's outcome goes to `outcomes`.
    fn apply(&mut self, write: Write, outcomes: &mut Vec<CreateOutcome>) {
        let write = match write {
            Write::CreateActor { meta } => return outcomes.push(self.create(meta)),
            other => other,
        };
        // Writes for actors that do not exist (any more) are ignored.
        let Some(record) = self.actors.get_mut(write.actor()) else {
            return;
        };
        match write {
            Write::State { bytes, .. } => record.state = Some(bytes),
            Write::PutAlarm { alarm, .. } => {
                record.alarms.insert(alarm.id.clone(), alarm);
            }
            Write::DeleteAlarm { alarm_id, .. } => {
                record.alarms.remove(&alarm_id);
            }
            Write::KvPut { key, value, .. } => {
                record.kv_bytes += entry_size(&key, &value);
                if let Some(old) = record.kv.insert(key.clone(), value) {
                    record.kv_bytes -= entry_size(&key, &old);
                }
            }
            Write::KvDelete { key, .. } => {
                if let Some(old) = record.kv.remove(&key) {
                    record.kv_bytes -= entry_size(&key, &old);
                }
            }
            Write::KvDeleteRange { start, end, .. } => {
                let end = end.map_or(Bound::Unbounded, Bound::Excluded);
                let doomed: Vec<Vec<u8>> = record
                    .kv
                    .range((Bound::Included(start), end))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    if let Some(old) = record.kv.remove(&key) {
                        record.kv_bytes -= entry_size(&key, &old);
                    }
                }
            }
            Write::BumpGeneration { .. } => record.meta.generation += 1,
            Write::CreateActor { .. } => {}
        }
    }

    /// Applies one unit, unless its fence no longer holds.
    fn apply_unit(&mut self, unit: Unit) -> UnitOutcome {
        if let Some(fence) = &unit.fence {
            let current = self.actors.get(&fence.actor).map(|r| r.meta.generation);
            if current != Some(fence.generation) {
                return UnitOutcome::Fenced { current };
            }
        }
        let mut outcomes = Vec::new();
        for write in unit.writes {
            self.apply(write, &mut outcomes);
        }
        UnitOutcome::Applied(outcomes)
    }

    fn kv_list(&self, id: &ActorId, range: &KvRange) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(record) = self.actors.get(id) else {
            return Vec::new();
        };
        if range.is_empty() {
            return Vec::new();
        }
        let bounds = (range.start.clone(), range.end.clone());
        let entries = record.kv.range::<Vec<u8>, _>(bounds);
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        if range.reverse {
            entries.rev().take(range.limit).map(clone).collect()
        } else {
            entries.take(range.limit).map(clone).collect()
        }
    }

    fn delete(&mut self, id: &ActorId) {
        if let Some(record) = self.actors.remove(id) {
            self.by_key.remove(&(record.meta.name, record.meta.key));
        }
    }
}

/// Orders alarms by time, then by id, so that equal times still give a stable order.
fn alarm_order(a: &Alarm, b: &Alarm) -> std::cmp::Ordering {
    a.at_ms.cmp(&b.at_ms).then_with(|| a.id.cmp(&b.id))
}

impl Driver for MemoryDriver {
    fn actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<ActorMeta>>> {
        Box::pin(async move { Ok(self.with(|store| store.actors.get(id).map(|r| r.meta.clone()))) })
    }

    fn find_actor<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Option<ActorMeta>>> {
        Box::pin(async move {
            Ok(self.with(|store| store.by_key(name, key).map(|record| record.meta.clone())))
        })
    }

    fn list_actors<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
    ) -> BoxFuture<'a, Result<Vec<ActorMeta>>> {
        Box::pin(async move { Ok(self.with(|store| store.list(name, key_prefix))) })
    }

    fn list_actors_page<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
        after: Option<&'a ActorKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ActorMeta>>> {
        Box::pin(
            async move { Ok(self.with(|store| store.list_page(name, key_prefix, after, limit))) },
        )
    }

    fn load_state<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            Ok(self.with(|store| store.actors.get(id).and_then(|r| r.state.clone())))
        })
    }

    fn load_alarms<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<Vec<Alarm>>> {
        Box::pin(async move {
            let mut alarms = self.with(|store| {
                store
                    .actors
                    .get(id)
                    .map(|r| r.alarms.values().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            });
            alarms.sort_by(alarm_order);
            Ok(alarms)
        })
    }

    fn all_alarms(&self) -> BoxFuture<'_, Result<Vec<(ActorId, Alarm)>>> {
        Box::pin(async move {
            let mut alarms = self.with(|store| {
                store
                    .actors
                    .iter()
                    .flat_map(|(id, r)| r.alarms.values().map(|a| (id.clone(), a.clone())))
                    .collect::<Vec<_>>()
            });
            alarms.sort_by(|(id_a, a), (id_b, b)| {
                a.at_ms
                    .cmp(&b.at_ms)
                    .then_with(|| id_a.cmp(id_b))
                    .then_with(|| a.id.cmp(&b.id))
            });
            Ok(alarms)
        })
    }

    fn kv_get<'a>(
        &'a self,
        id: &'a ActorId,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            Ok(self.with(|store| store.actors.get(id).and_then(|r| r.kv.get(key).cloned())))
        })
    }

    fn kv_get_many<'a>(
        &'a self,
        id: &'a ActorId,
        keys: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>>> {
        Box::pin(async move {
            Ok(self.with(|store| {
                let record = store.actors.get(id);
                keys.iter()
                    .map(|k| record.and_then(|r| r.kv.get(k).cloned()))
                    .collect()
            }))
        })
    }

    fn kv_list<'a>(
        &'a self,
        id: &'a ActorId,
        range: &'a KvRange,
    ) -> BoxFuture<'a, Result<Vec<(Vec<u8>, Vec<u8>)>>> {
        Box::pin(async move { Ok(self.with(|store| store.kv_list(id, range))) })
    }

    fn kv_size<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<u64>> {
        Box::pin(
            async move { Ok(self.with(|store| store.actors.get(id).map_or(0, |r| r.kv_bytes))) },
        )
    }

    fn commit_units(&self, units: Vec<Unit>) -> BoxFuture<'_, Result<Vec<UnitOutcome>>> {
        Box::pin(async move {
            // One lock for the whole batch: no reader sees half of it.
            self.with(|store| {
                store.check_creates(units.iter().flat_map(|u| &u.writes))?;
                Ok(units.into_iter().map(|u| store.apply_unit(u)).collect())
            })
        })
    }

    fn delete_actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.with(|store| store.delete(id));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, name: &str, key: &[&str]) -> ActorMeta {
        ActorMeta::new(ActorId::new(id), name, ActorKey::from(key), 0)
    }

    #[test]
    fn clones_share_data() {
        futures::executor::block_on(async {
            let a = MemoryDriver::new();
            let b = a.clone();
            let m = meta("1", "n", &["k"]);
            a.create_actor(&m).await.unwrap();
            assert_eq!(b.actor(&m.id).await.unwrap(), Some(m));
        });
    }

    #[test]
    fn debug_shows_counts_not_data() {
        futures::executor::block_on(async {
            let d = MemoryDriver::new();
            let m = meta("1", "n", &["k"]);
            d.create_actor(&m).await.unwrap();
            d.commit(vec![Write::State {
                actor: m.id,
                bytes: b"secret".to_vec(),
            }])
            .await
            .unwrap();
            assert_eq!(format!("{d:?}"), "MemoryDriver { actors: 1, .. }");
        });
    }

    #[test]
    fn reused_id_with_another_key_is_an_error() {
        futures::executor::block_on(async {
            let d = MemoryDriver::new();
            d.create_actor(&meta("1", "n", &["k"])).await.unwrap();
            let err = d
                .create_actor(&meta("1", "n", &["other"]))
                .await
                .unwrap_err();
            assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
            assert!(
                d.find_actor("n", &ActorKey::from("other"))
                    .await
                    .unwrap()
                    .is_none()
            );
        });
    }
}
