//! `ctx.kv()`: an ordered key-value store private to each actor, for data that outgrows the
//! state snapshot.
//!
//! The state snapshot is rewritten whole after every change, so it suits small state. The
//! store holds any amount (up to the actor type's
//! [`kv_max_bytes`](crate::ActorOptions::kv_max_bytes), 10 GiB by default) and a write costs
//! what it changes. Keys are byte strings in byte order; values are serde values (stored as
//! CBOR) or raw bytes.
//!
//! ```
//! use footlights_core::{Actor, Ctx, KvKey, KvRange};
//! # use footlights_core::{ActionError, ActionTable, Conns};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Default, Serialize, Deserialize)] struct Log { next: u64 }
//! # impl footlights_protocol::ActorSpec for Log { const NAME: &'static str = "log"; type Input = (); }
//! # impl Actor for Log {
//! #     type Conn = Conns;
//! #     async fn create_state(_: &Ctx<Self>, _: &()) -> Result<Self, ActionError> { Ok(Log::default()) }
//! #     fn actions(_: &mut ActionTable<Self>) {}
//! # }
//!
//! impl Log {
//!     async fn append(&mut self, ctx: &Ctx<Self>, line: String) -> Result<u64, ActionError> {
//!         self.next += 1;
//!         // "line/" then the number in 8 big-endian bytes: keys sort by number.
//!         ctx.kv().put(KvKey::new("line/").u64(self.next), &line).await?;
//!         Ok(self.next)
//!     }
//!
//!     async fn latest(&self, ctx: &Ctx<Self>, n: usize) -> Result<Vec<String>, ActionError> {
//!         let page = ctx.kv().list(KvRange::prefix(b"line/").reverse().limit(n)).await?;
//!         page.entries.iter().map(|e| e.value()).collect()
//!     }
//! }
//! ```
//!
//! # Guarantees
//! - Reads see the actor's own writes at once, before they are durable.
//! - The writes of a message are committed with its state snapshot and alarms, in the same
//!   transaction; its replies and events leave only once they are durable. If the action
//!   panics, its writes are dropped together with its state changes.
//! - Reads go through a small per-actor cache (the actor type's
//!   [`kv_cache_bytes`](crate::ActorOptions::kv_cache_bytes)) to the driver: an actor's memory
//!   does not grow with its store, and listings read a page at a time.
//! - Limits, as coded errors: a key over 2 KiB (`kv.key_too_large`), a value over 128 KiB
//!   (`kv.value_too_large`), one message writing more than
//!   [`kv_max_message_bytes`](crate::ActorOptions::kv_max_message_bytes)
//!   (`kv.message_too_large`), a store over [`kv_max_bytes`](crate::ActorOptions::kv_max_bytes)
//!   (`kv.actor_too_large`).
//! - Destroying the actor deletes its store; sleeping keeps it.

mod cache;
mod overlay;
mod store;

use std::ops::Bound;

use footlights_protocol::ActionError;
use footlights_storage::KvRange;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use store::KvStore;
pub use store::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// How many entries [`Kv::stream`] reads at a time.
const STREAM_PAGE: usize = 256;

/// An actor's key-value store, from [`Ctx::kv`](crate::Ctx::kv). See the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct Kv<'a> {
    store: &'a KvStore,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The value as stored (CBOR for values written with [`Kv::put`]).
    pub value: Vec<u8>,
}

impl KvEntry {
    /// The value, decoded from CBOR (as [`Kv::put`] stores it).
    ///
    /// # Errors
    /// An internal error if the stored bytes are not a `V`.
    pub fn value<V: DeserializeOwned>(&self) -> Result<V, ActionError> {
        decode(&self.value)
    }

    /// The key as text, if it is UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// A page of a listing ([`Kv::list`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvPage {
    /// The entries, in the listing's order.
    pub entries: Vec<KvEntry>,
    /// Whether more entries follow in the range.
    pub more: bool,
}

impl KvPage {
    /// The range of the next page of the listing `range` that gave this page, if more follow.
    ///
    /// ```no_run
    /// # async fn f(kv: footlights_core::Kv<'_>) -> Result<(), footlights_core::ActionError> {
    /// use footlights_core::KvRange;
    /// let mut range = KvRange::prefix(b"msg/").limit(100);
    /// loop {
    ///     let page = kv.list(range.clone()).await?;
    ///     // ... use page.entries ...
    ///     match page.next_range(&range) {
    ///         Some(next) => range = next,
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn next_range(&self, range: &KvRange) -> Option<KvRange> {
        let last = self.entries.last()?;
        self.more.then(|| range.clone().after(&last.key))
    }
}

/// Builds keys that sort the way people expect: a text prefix, then numbers in big-endian
/// bytes (so `2` sorts before `10`), text, or bytes.
///
/// ```
/// use footlights_core::KvKey;
/// let k2 = KvKey::new("msg/").u64(2);
/// let k10 = KvKey::new("msg/").u64(10);
/// assert!(k2.as_bytes() < k10.as_bytes());
/// assert_eq!(KvKey::last_u64(k10.as_bytes()), Some(10));
/// assert!(KvKey::new("t/").i64(-1).as_bytes() < KvKey::new("t/").i64(1).as_bytes());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KvKey(Vec<u8>);

impl KvKey {
    /// A key that starts with `prefix`.
    pub fn new(prefix: impl AsRef<[u8]>) -> Self {
        KvKey(prefix.as_ref().to_vec())
    }

    /// Appends `n` as 8 big-endian bytes: keys with the same start sort by `n`.
    #[must_use]
    pub fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// Appends `n` as 8 big-endian bytes with the sign bit flipped: negative numbers sort
    /// first.
    #[must_use]
    pub fn i64(mut self, n: i64) -> Self {
        self.0
            .extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
        self
    }

    /// Appends text.
    #[must_use]
    pub fn str(mut self, s: &str) -> Self {
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// Appends bytes.
    #[must_use]
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The number [`u64`](Self::u64) appended last, read from the last 8 bytes of `key`.
    pub fn last_u64(key: &[u8]) -> Option<u64> {
        let tail = key.len().checked_sub(8).and_then(|at| key.get(at..))?;
        Some(u64::from_be_bytes(tail.try_into().ok()?))
    }

    /// The number [`i64`](Self::i64) appended last, read from the last 8 bytes of `key`.
    pub fn last_i64(key: &[u8]) -> Option<i64> {
        Self::last_u64(key).map(|n| (n ^ (1 << 63)) as i64)
    }
}

impl AsRef<[u8]> for KvKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn encode<V: Serialize + ?Sized>(value: &V) -> Result<Vec<u8>, ActionError> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out)
        .map_err(|e| ActionError::internal(format!("kv value did not serialize: {e}")))?;
    Ok(out)
}

fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, ActionError> {
    ciborium::from_reader(bytes)
        .map_err(|e| ActionError::internal(format!("kv value did not load: {e}")))
}

/// `[start, end)` of any range of byte strings: the key right after `k` is `k` + `0x00`.
fn half_open(range: &KvRange) -> (Vec<u8>, Option<Vec<u8>>) {
    let next = |k: &Vec<u8>| {
        let mut n = k.clone();
        n.push(0);
        n
    };
    let start = match &range.start {
        Bound::Included(k) => k.clone(),
        Bound::Excluded(k) => next(k),
        Bound::Unbounded => Vec::new(),
    };
    let end = match &range.end {
        Bound::Included(k) => Some(next(k)),
        Bound::Excluded(k) => Some(k.clone()),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl<'a> Kv<'a> {
    pub(crate) fn new(store: &'a KvStore) -> Self {
        Kv { store }
    }

    /// The value under `key`, decoded from CBOR; `None` if there is none.
    ///
    /// # Errors
    /// A storage failure, or a stored value that is not a `V` (internal errors).
    pub async fn get<V: DeserializeOwned>(
        &self,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<V>, ActionError> {
        self.get_bytes(key).await?.map(|b| decode(&b)).transpose()
    }

    /// The raw bytes under `key`; `None` if there is none.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn get_bytes(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, ActionError> {
        let mut values = self.store.get_many(&[key.as_ref()]).await?;
        Ok(values.pop().flatten())
    }

    /// The values under several keys, in the order given, with one storage read for those
    /// not already in memory.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn get_many<V: DeserializeOwned, K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<V>>, ActionError> {
        self.get_many_bytes(keys)
            .await?
            .into_iter()
            .map(|v| v.map(|b| decode(&b)).transpose())
            .collect()
    }

    /// The raw bytes under several keys, in the order given.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn get_many_bytes<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Vec<u8>>>, ActionError> {
        let keys: Vec<K> = keys.into_iter().collect();
        let refs: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
        self.store.get_many(&refs).await
    }

    /// Stores `value` (as CBOR) under `key`, replacing what was there.
    ///
    /// # Errors
    /// `kv.key_too_large`, `kv.value_too_large`, `kv.message_too_large`,
    /// `kv.actor_too_large`; an internal error if the value does not serialize.
    pub async fn put<V: Serialize + ?Sized>(
        &self,
        key: impl AsRef<[u8]>,
        value: &V,
    ) -> Result<(), ActionError> {
        let bytes = encode(value)?;
        self.put_bytes(key, bytes).await
    }

    /// Stores raw bytes under `key`, replacing what was there.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub async fn put_bytes(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Vec<u8>>,
    ) -> Result<(), ActionError> {
        self.store
            .write(vec![(key.as_ref().to_vec(), Some(value.into()))])
            .await
    }

    /// Stores several entries (values as CBOR): all of them, or none if one breaks a limit.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub async fn put_many<K: AsRef<[u8]>, V: Serialize>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), ActionError> {
        let entries = entries
            .into_iter()
            .map(|(k, v)| Ok((k.as_ref().to_vec(), Some(encode(&v)?))))
            .collect::<Result<Vec<_>, ActionError>>()?;
        self.store.write(entries).await
    }

    /// Removes `key`; removing a missing key is not an error.
    ///
    /// # Errors
    /// `kv.key_too_large`; a storage failure.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<(), ActionError> {
        self.store.write(vec![(key.as_ref().to_vec(), None)]).await
    }

    /// Removes several keys.
    ///
    /// # Errors
    /// As [`delete`](Self::delete).
    pub async fn delete_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<(), ActionError> {
        let entries = keys
            .into_iter()
            .map(|k| (k.as_ref().to_vec(), None))
            .collect();
        self.store.write(entries).await
    }

    /// Removes every key in `range` (its direction and limit do not matter), in one write
    /// whatever the number of keys.
    ///
    /// ```no_run
    /// # async fn f(kv: footlights_core::Kv<'_>) -> Result<(), footlights_core::ActionError> {
    /// use footlights_core::KvRange;
    /// kv.delete_range(KvRange::prefix(b"draft/")).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A storage failure.
    pub async fn delete_range(&self, range: KvRange) -> Result<(), ActionError> {
        if range.is_empty() {
            return Ok(());
        }
        let (start, end) = half_open(&range);
        self.store.delete_range(start, end);
        Ok(())
    }

    /// One page of the entries in `range`: at most [`limit`](KvRange::limit) of them, in key
    /// order (or reverse), with [`more`](KvPage::more) telling whether others follow. Continue
    /// with [`KvPage::next_range`].
    ///
    /// # Errors
    /// A storage failure.
    pub async fn list(&self, range: KvRange) -> Result<KvPage, ActionError> {
        let (entries, more) = self.store.list(&range).await?;
        Ok(KvPage {
            entries: entries
                .into_iter()
                .map(|(key, value)| KvEntry { key, value })
                .collect(),
            more,
        })
    }

    /// Every entry in `range` (up to its limit), read a page at a time as the stream is
    /// polled: a store of any size is walked in bounded memory.
    ///
    /// ```no_run
    /// # async fn f(kv: footlights_core::Kv<'_>) -> Result<(), footlights_core::ActionError> {
    /// use futures::TryStreamExt;
    /// use footlights_core::KvRange;
    /// let mut total = 0u64;
    /// let mut entries = std::pin::pin!(kv.stream(KvRange::prefix(b"score/")));
    /// while let Some(entry) = entries.try_next().await? {
    ///     total += entry.value::<u64>()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream(&self, range: KvRange) -> impl Stream<Item = Result<KvEntry, ActionError>> + 'a {
        let store = self.store;
        let left = range.limit;
        let first = Some(range.limit(STREAM_PAGE.min(left)));
        futures::stream::unfold((first, left), move |(next, left)| async move {
            let range = next?;
            if left == 0 {
                return None;
            }
            match store.list(&range).await {
                Err(e) => Some((futures::stream::iter(vec![Err(e)]), (None, 0))),
                Ok((entries, more)) => {
                    let left = left - entries.len();
                    let next = match entries.last() {
                        Some((k, _)) if more && left > 0 => {
                            Some(range.clone().after(k).limit(STREAM_PAGE.min(left)))
                        }
                        _ => None,
                    };
                    let items: Vec<_> = entries
                        .into_iter()
                        .map(|(key, value)| Ok(KvEntry { key, value }))
                        .collect();
                    Some((futures::stream::iter(items), (next, left)))
                }
            }
        })
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_open_covers_exactly_the_range() {
        let r = KvRange::all()
            .start(Bound::Excluded(b"a".to_vec()))
            .end(Bound::Included(b"c".to_vec()));
        let (s, e) = half_open(&r);
        assert_eq!(s, b"a\x00");
        assert_eq!(e.as_deref(), Some(&b"c\x00"[..]));
        for k in [&b"a"[..], b"a\x00", b"b", b"c", b"c\x00", b"c\x00\x00"] {
            let in_half_open = k >= s.as_slice() && e.as_deref().is_none_or(|e| k < e);
            assert_eq!(in_half_open, r.contains(k), "{k:?}");
        }
        assert_eq!(half_open(&KvRange::all()), (Vec::new(), None));
    }

    #[test]
    fn integer_keys_sort_numerically() {
        let mut ns: Vec<i64> = vec![5, -3, 0, i64::MIN, i64::MAX, 300, -300];
        let mut keys: Vec<KvKey> = ns.iter().map(|n| KvKey::new("n/").i64(*n)).collect();
        keys.sort();
        ns.sort();
        let back: Vec<i64> = keys
            .iter()
            .map(|k| KvKey::last_i64(k.as_bytes()).unwrap())
            .collect();
        assert_eq!(back, ns);
        assert_eq!(KvKey::last_u64(b"short"), None);
    }
}
