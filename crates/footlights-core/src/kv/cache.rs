//! The bounded cache of values an actor read from the driver.

use lru::LruCache;

/// Values (or their absence) read from the driver, least recently used dropped first once
/// their keys and values add up to more than the budget.
pub(crate) struct Cache {
    entries: LruCache<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    budget: usize,
}

/// What an entry costs: its key and value plus a fixed allowance for the bookkeeping.
fn cost(key: &[u8], value: Option<&Vec<u8>>) -> usize {
    key.len() + value.map_or(0, Vec::len) + 64
}

impl Cache {
    pub(crate) fn new(budget: usize) -> Self {
        Cache {
            entries: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    /// `Some(value or None)` if the key is cached.
    pub(crate) fn get(&mut self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.entries.get(key).cloned()
    }

    pub(crate) fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let c = cost(&key, value.as_ref());
        if c > self.budget {
            self.remove(&key);
            return;
        }
        self.bytes += c;
        if let Some((old_key, old)) = self.entries.push(key, value) {
            self.bytes -= cost(&old_key, old.as_ref());
        }
        while self.bytes > self.budget {
            match self.entries.pop_lru() {
                Some((k, v)) => self.bytes -= cost(&k, v.as_ref()),
                None => break,
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        if let Some(old) = self.entries.pop(key) {
            self.bytes -= cost(key, old.as_ref());
        }
    }

    /// Forgets every key in `[start, end)`.
    pub(crate) fn remove_range(&mut self, start: &[u8], end: Option<&[u8]>) {
        let doomed: Vec<Vec<u8>> = self
            .entries
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.as_slice() >= start && end.is_none_or(|e| k.as_slice() < e))
            .cloned()
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("entries", &self.entries.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_budget_dropping_the_least_recently_used() {
        let mut c = Cache::new(1000);
        for i in 0..100u8 {
            c.insert(vec![i], Some(vec![i; 100]));
            assert!(c.bytes() <= 1000);
        }
        assert_eq!(c.get(&[99]), Some(Some(vec![99; 100])));
        assert_eq!(c.get(&[0]), None, "the oldest was dropped");
        c.insert(vec![1], None);
        assert_eq!(c.get(&[1]), Some(None), "absence is cached too");
        c.insert(vec![2], Some(vec![0; 2000]));
        assert_eq!(c.get(&[2]), None, "an entry over the budget is not kept");
        c.remove_range(&[0], None);
        assert_eq!(c.bytes(), 0);
    }
}
