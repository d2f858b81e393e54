//! Writes an actor made that the driver may not have yet, so its reads see them at once.
//!
//! Two [`Layer`]s sit above the driver: the writes of the message that is running (*staged*:
//! dropped if it panics, handed to the writer when it ends) and the writes handed to the writer
//! but not yet durable (*unsettled*, each tagged with its write sequence and dropped once that
//! sequence is durable, when the driver answers for it). A read looks in the staged layer, then
//! the unsettled one, then the driver.

use std::collections::BTreeMap;
use std::ops::Bound;

use footlights_storage::KvRange;

/// A point write: the value put, or `None` for a delete.
pub(crate) type Change = (Vec<u8>, Option<Vec<u8>>);

/// What a layer says of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// The layer sets the key to this value.
    Value(Vec<u8>),
    /// The layer deletes the key (a point delete or a range delete).
    Deleted,
    /// The layer says nothing of it: look below.
    Unknown,
}

/// Keys `[start, end)` deleted (`end: None`: to the last key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tombstone {
    pub(crate) start: Vec<u8>,
    pub(crate) end: Option<Vec<u8>>,
    pub(crate) seq: u64,
}

impl Tombstone {
    fn covers(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }

    /// Whether it deletes any key of `range`.
    fn overlaps(&self, range: &KvRange) -> bool {
        let below_end = match &range.end {
            Bound::Included(e) => self.start.as_slice() <= e.as_slice(),
            Bound::Excluded(e) => self.start.as_slice() < e.as_slice(),
            Bound::Unbounded => true,
        };
        let above_start = match (&self.end, &range.start) {
            (None, _) | (_, Bound::Unbounded) => true,
            (Some(end), Bound::Included(s) | Bound::Excluded(s)) => end.as_slice() > s.as_slice(),
        };
        below_end && above_start
    }
}

/// One layer of writes. Invariant: every entry is newer than every tombstone that covers it
/// (a range delete removes the entries it covers), so an entry wins over the tombstones.
#[derive(Debug, Default, Clone)]
pub(crate) struct Layer {
    /// Key → (value, or `None` for a point delete; write sequence).
    entries: BTreeMap<Vec<u8>, (Option<Vec<u8>>, u64)>,
    tombstones: Vec<Tombstone>,
}

impl Layer {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.tombstones.is_empty()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Found {
        match self.entries.get(key) {
            Some((Some(v), _)) => Found::Value(v.clone()),
            Some((None, _)) => Found::Deleted,
            None if self.tombstones.iter().any(|t| t.covers(key)) => Found::Deleted,
            None => Found::Unknown,
        }
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>, seq: u64) {
        self.entries.insert(key, (value, seq));
    }

    pub(crate) fn delete_range(&mut self, start: Vec<u8>, end: Option<Vec<u8>>, seq: u64) {
        if end.as_ref().is_some_and(|end| *end <= start) {
            return;
        }
        let doomed: Vec<Vec<u8>> = self
            .entries
            .range::<Vec<u8>, _>((
                Bound::Included(start.clone()),
                end.clone().map_or(Bound::Unbounded, Bound::Excluded),
            ))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.entries.remove(&k);
        }
        self.tombstones.push(Tombstone { start, end, seq });
    }

    /// Lays `top` (newer) over this layer, tagging its writes with `seq`.
    pub(crate) fn absorb(&mut self, top: Layer, seq: u64) {
        for t in top.tombstones {
            self.delete_range(t.start, t.end, seq);
        }
        for (k, (v, _)) in top.entries {
            self.put(k, v, seq);
        }
    }

    /// Drops what is durable: every write with a sequence up to `durable`.
    pub(crate) fn settle(&mut self, durable: u64) {
        self.entries.retain(|_, (_, seq)| *seq > durable);
        self.tombstones.retain(|t| t.seq > durable);
    }

    /// The range deletes, then the entries: applied in this order they give the layer's
    /// result (entries are newer than the tombstones covering them).
    pub(crate) fn writes(&self) -> (Vec<Tombstone>, Vec<Change>) {
        let entries = self
            .entries
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        (self.tombstones.clone(), entries)
    }

    /// The entries inside `range` (ascending) and the tombstones that overlap it.
    pub(crate) fn view(&self, range: &KvRange) -> Layer {
        if range.is_empty() {
            return Layer::default();
        }
        let entries = self
            .entries
            .range::<Vec<u8>, _>((range.start.clone(), range.end.clone()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let tombstones = self
            .tombstones
            .iter()
            .filter(|t| t.overlaps(range))
            .cloned()
            .collect();
        Layer {
            entries,
            tombstones,
        }
    }

    /// Merges a page of driver entries (in the listing's order, all inside `range`, and all the
    /// driver has between the listing's cursor and `reached`) with this layer, which must be a
    /// [`view`](Self::view) of the same range. Returns the entries the actor sees from the
    /// cursor up to `reached` (`None`: to the end of the range), in the listing's order.
    pub(crate) fn merge(
        &self,
        driver: Vec<(Vec<u8>, Vec<u8>)>,
        range: &KvRange,
        reached: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        // Layer entries up to `reached` in the listing's direction.
        let within = |k: &[u8]| match reached {
            None => true,
            Some(r) if range.reverse => k >= r,
            Some(r) => k <= r,
        };
        let mut seen: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v) in driver {
            if matches!(self.get(&k), Found::Unknown) {
                seen.insert(k, v);
            }
        }
        for (k, (v, _)) in &self.entries {
            if let Some(v) = v
                && range.contains(k)
                && within(k)
            {
                seen.insert(k.clone(), v.clone());
            }
        }
        if range.reverse {
            seen.into_iter().rev().collect()
        } else {
            seen.into_iter().collect()
        }
    }

    /// Whether the layer has an entry or tombstone at all in `range`.
    pub(crate) fn touches(&self, range: &KvRange) -> bool {
        !self.view(range).is_empty()
    }
}

/// The staged layer over the unsettled one, as one view for a read.
pub(crate) fn stack(unsettled: &Layer, staged: &Layer, range: &KvRange) -> Layer {
    let mut view = unsettled.view(range);
    view.absorb(staged.view(range), 0);
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entries_win_over_older_tombstones_and_lose_to_newer() {
        let mut l = Layer::default();
        l.put(b"a".to_vec(), Some(b"1".to_vec()), 1);
        l.delete_range(b"a".to_vec(), Some(b"c".to_vec()), 2);
        assert_eq!(l.get(b"a"), Found::Deleted);
        assert_eq!(l.get(b"b"), Found::Deleted);
        assert_eq!(l.get(b"c"), Found::Unknown);
        l.put(b"b".to_vec(), Some(b"2".to_vec()), 3);
        assert_eq!(l.get(b"b"), Found::Value(b"2".to_vec()));
        l.settle(2);
        assert_eq!(l.get(b"a"), Found::Unknown, "the settled tombstone is gone");
        assert_eq!(l.get(b"b"), Found::Value(b"2".to_vec()));
    }

    /// One operation of the model test.
    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
        DeleteRange(u8, Option<u8>),
        /// The running message ends: staged writes go to the unsettled layer.
        EndMessage,
        /// The running message panics: staged writes are dropped.
        Panic,
        /// The driver commits everything up to the newest ended message.
        Settle,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..8u8, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            2 => (0..8u8).prop_map(Op::Delete),
            1 => (0..8u8, proptest::option::of(0..9u8)).prop_map(|(s, e)| Op::DeleteRange(s, e)),
            2 => Just(Op::EndMessage),
            1 => Just(Op::Panic),
            2 => Just(Op::Settle),
        ]
    }

    fn apply(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, tomb: &Tombstone) {
        map.retain(|k, _| !tomb.covers(k));
    }

    proptest! {
        /// Staged over unsettled over a model driver answers every read like a plain map that
        /// took every write not lost to a panic.
        #[test]
        fn layers_read_like_a_map(ops in proptest::collection::vec(op(), 0..60)) {
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut committed_model = model.clone();
            let mut driver: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let (mut staged, mut unsettled) = (Layer::default(), Layer::default());
            // What the writer was handed: (seq, layer), not yet applied to `driver`.
            let mut handed: Vec<(u64, Layer)> = Vec::new();
            let mut seq = 0;
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        staged.put(vec![k], Some(vec![v]), 0);
                        model.insert(vec![k], vec![v]);
                    }
                    Op::Delete(k) => {
                        staged.put(vec![k], None, 0);
                        model.remove(&vec![k]);
                    }
                    Op::DeleteRange(s, e) => {
                        let t = Tombstone { start: vec![s], end: e.map(|e| vec![e]), seq: 0 };
                        apply(&mut model, &t);
                        staged.delete_range(t.start, t.end, 0);
                    }
                    Op::EndMessage => {
                        if !staged.is_empty() {
                            seq += 1;
                            let top = std::mem::take(&mut staged);
                            handed.push((seq, top.clone()));
                            unsettled.absorb(top, seq);
                        }
                        committed_model = model.clone();
                    }
                    Op::Panic => {
                        staged = Layer::default();
                        model = committed_model.clone();
                    }
                    Op::Settle => {
                        for (_, layer) in handed.drain(..) {
                            let (tombs, entries) = layer.writes();
                            for t in &tombs {
                                apply(&mut driver, t);
                            }
                            for (k, v) in entries {
                                match v {
                                    Some(v) => driver.insert(k, v),
                                    None => driver.remove(&k),
                                };
                            }
                        }
                        unsettled.settle(seq);
                    }
                }
                for k in 0..9u8 {
                    let key = vec![k];
                    let seen = match staged.get(&key) {
                        Found::Unknown => match unsettled.get(&key) {
                            Found::Unknown => driver.get(&key).cloned(),
                            Found::Value(v) => Some(v),
                            Found::Deleted => None,
                        },
                        Found::Value(v) => Some(v),
                        Found::Deleted => None,
                    };
                    prop_assert_eq!(seen, model.get(&key).cloned(), "key {}", k);
                }
                for reverse in [false, true] {
                    let mut range = KvRange::between(&[2], Some(&[6]));
                    range.reverse = reverse;
                    let view = stack(&unsettled, &staged, &range);
                    let page: Vec<_> = driver.range(vec![2]..vec![6]).map(|(k, v)| (k.clone(), v.clone())).collect();
                    let page = if reverse { page.into_iter().rev().collect() } else { page };
                    let got = view.merge(page, &range, None);
                    let mut want: Vec<_> = model.range(vec![2]..vec![6]).map(|(k, v)| (k.clone(), v.clone())).collect();
                    if reverse { want.reverse(); }
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
