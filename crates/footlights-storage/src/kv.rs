//! The types of an actor's key-value map: ranges to list and delete, and the bound that
//! closes a prefix.
//!
//! Keys are byte strings ordered byte by byte (as `memcmp` and `Vec<u8>`'s `Ord` order them),
//! so a key sorts before its extensions and every key with a given prefix forms one run.

use std::ops::Bound;

/// Key-value entries as a listing returns them: `(key, value)` pairs.
pub type KvEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// The keys of a listing ([`Driver::kv_list`](crate::Driver::kv_list)): a range, a direction
/// and the most entries to return.
///
/// ```
/// use std::ops::Bound;
/// use footlights_storage::KvRange;
///
/// let r = KvRange::prefix(b"msg/").limit(10);
/// assert!(r.contains(b"msg/1"));
/// assert!(!r.contains(b"msh"));
///
/// // The page after "msg/5", newest first.
/// let r = KvRange::prefix(b"msg/").reverse().end(Bound::Excluded(b"msg/5".to_vec()));
/// assert!(r.contains(b"msg/4") && !r.contains(b"msg/5"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRange {
    /// The lowest key, whatever the direction.
    pub start: Bound<Vec<u8>>,
    /// The highest key, whatever the direction.
    pub end: Bound<Vec<u8>>,
    /// Highest key first.
    pub reverse: bool,
    /// The most entries to return.
    pub limit: usize,
}

impl Default for KvRange {
    fn default() -> Self {
        KvRange::all()
    }
}

impl KvRange {
    /// Every key, in ascending order, with no limit.
    pub fn all() -> Self {
        KvRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            reverse: false,
            limit: usize::MAX,
        }
    }

    /// The keys that start with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        KvRange {
            start: Bound::Included(prefix.to_vec()),
            end: prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded),
            ..KvRange::all()
        }
    }

    /// The keys from `start` (included) to `end` (excluded; `None` for no end).
    pub fn between(start: &[u8], end: Option<&[u8]>) -> Self {
        KvRange {
            start: Bound::Included(start.to_vec()),
            end: end.map_or(Bound::Unbounded, |e| Bound::Excluded(e.to_vec())),
            ..KvRange::all()
        }
    }

    /// With another lower bound.
    #[must_use]
    pub fn start(mut self, start: Bound<Vec<u8>>) -> Self {
        self.start = start;
        self
    }

    /// With another upper bound.
    #[must_use]
    pub fn end(mut self, end: Bound<Vec<u8>>) -> Self {
        self.end = end;
        self
    }

    /// Highest key first.
    #[must_use]
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// At most `limit` entries.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The rest of the listing after `key` (the last key of a page) in the listing's
    /// direction: the range with its lower bound (upper, if [`reverse`](Self::reverse)) moved
    /// past `key`.
    ///
    /// ```
    /// use footlights_storage::KvRange;
    /// let next = KvRange::prefix(b"m").after(b"m2");
    /// assert!(!next.contains(b"m2") && next.contains(b"m3"));
    /// let older = KvRange::prefix(b"m").reverse().after(b"m2");
    /// assert!(older.contains(b"m1") && !older.contains(b"m3"));
    /// ```
    #[must_use]
    pub fn after(mut self, key: &[u8]) -> Self {
        if self.reverse {
            self.end = Bound::Excluded(key.to_vec());
        } else {
            self.start = Bound::Excluded(key.to_vec());
        }
        self
    }

    /// Whether `key` lies between the bounds.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    /// Whether no key can lie between the bounds.
    pub fn is_empty(&self) -> bool {
        let (Some(s), Some(e)) = (bound_key(&self.start), bound_key(&self.end)) else {
            return false;
        };
        match (&self.start, &self.end) {
            (Bound::Included(_), Bound::Included(_)) => s > e,
            _ => s >= e,
        }
    }
}

fn bound_key(b: &Bound<Vec<u8>>) -> Option<&[u8]> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

/// The smallest key after every key that starts with `prefix`, or `None` when there is none
/// (the prefix is empty or only `0xFF` bytes).
///
/// ```
/// use footlights_storage::prefix_end;
/// assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
/// assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
/// assert_eq!(prefix_end(b"\xff"), None);
/// assert_eq!(prefix_end(b""), None);
/// ```
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_holds_exactly_the_extensions() {
        let r = KvRange::prefix(b"a\xff");
        assert!(r.contains(b"a\xff"));
        assert!(r.contains(b"a\xff\xff\x00"));
        assert!(!r.contains(b"a\xfe\xff"));
        assert!(!r.contains(b"b"));
        let all = KvRange::prefix(b"\xff\xff");
        assert!(all.contains(b"\xff\xff\xff"));
        assert!(!all.contains(b"\xff\xfe"));
        assert_eq!(all.end, Bound::Unbounded);
    }

    #[test]
    fn empty_ranges() {
        assert!(KvRange::between(b"b", Some(b"a")).is_empty());
        assert!(KvRange::between(b"a", Some(b"a")).is_empty());
        assert!(!KvRange::between(b"a", Some(b"b")).is_empty());
        let point = KvRange::all()
            .start(Bound::Included(b"a".to_vec()))
            .end(Bound::Included(b"a".to_vec()));
        assert!(!point.is_empty());
        assert!(!KvRange::all().is_empty());
    }
}
