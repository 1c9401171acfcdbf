//! Per-scan memory with a bound: [`RecentMap`] keeps what was used recently and forgets the
//! rest, so the probe map and the sets of written hosts and certificates stop growing at a
//! documented size however long the input is.
//!
//! Two generations: lookups hit the current map or the previous one (a hit in the previous
//! one moves the entry forward); when the current map holds `capacity / 2` entries it becomes
//! the previous one and the old previous is dropped. So anything used within the last
//! `capacity / 2` insertions is kept (the big providers' MX hosts stay for the whole scan), at
//! most `capacity` entries are held, and every operation is O(1) amortised. Entries that must
//! not be forgotten yet (a probe still in flight, which other domains wait for) are carried
//! into the new generation when theirs is dropped.
//!
//! What forgetting means is the caller's: a forgotten probe is probed again if a later domain
//! needs it (the rate limiters still space its connections), a forgotten host or certificate
//! is written again (same content; ClickHouse's `ReplacingMergeTree` collapses certificates by
//! SHA-256).

use std::collections::HashMap;
use std::hash::Hash;

/// A bounded map that keeps recently used entries (see the module doc).
#[derive(Debug)]
pub struct RecentMap<K, V> {
    half: usize,
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
    forgotten: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> RecentMap<K, V> {
    /// A map holding at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> Self {
        RecentMap {
            half: (capacity / 2).max(1),
            current: HashMap::new(),
            previous: HashMap::new(),
            forgotten: 0,
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries dropped so far.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// The value for `key`, inserting `make()` when absent. `pinned` says which entries must
    /// survive a generation change.
    pub fn get_or_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
        pinned: impl Fn(&V) -> bool,
    ) -> V {
        if let Some(v) = self.current.get(&key) {
            return v.clone();
        }
        let v = match self.previous.remove(&key) {
            Some(v) => v,
            None => make(),
        };
        self.insert(key, v.clone(), pinned);
        v
    }

    /// Inserts or replaces `key`.
    pub fn insert(&mut self, key: K, value: V, pinned: impl Fn(&V) -> bool) {
        self.previous.remove(&key);
        self.current.insert(key, value);
        if self.current.len() >= self.half {
            let old = std::mem::replace(&mut self.previous, std::mem::take(&mut self.current));
            for (k, v) in old {
                if pinned(&v) {
                    self.current.insert(k, v);
                } else {
                    self.forgotten += 1;
                }
            }
        }
    }

    /// Whether `key` is held (a hit moves it forward).
    pub fn touch(&mut self, key: &K, pinned: impl Fn(&V) -> bool) -> bool {
        if self.current.contains_key(key) {
            return true;
        }
        match self.previous.remove(key) {
            Some(v) => {
                self.insert(key.clone(), v, pinned);
                true
            }
            None => false,
        }
    }
}

/// A bounded set of recently seen keys.
#[derive(Debug)]
pub struct RecentSet<K> {
    map: RecentMap<K, ()>,
}

impl<K: Hash + Eq + Clone> RecentSet<K> {
    /// A set holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        RecentSet {
            map: RecentMap::new(capacity),
        }
    }

    /// Adds `key`; true when it was not held (first time, or forgotten since).
    pub fn insert(&mut self, key: K) -> bool {
        if self.map.touch(&key, |_| false) {
            return false;
        }
        self.map.insert(key, (), |_| false);
        true
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut m: RecentMap<u32, u32> = RecentMap::new(100);
        for i in 0..10_000 {
            m.get_or_insert_with(i, || i, |_| false);
            assert!(m.len() <= 100, "{}", m.len());
        }
        assert!(m.forgotten() >= 9_900);
    }

    #[test]
    fn recently_used_entries_survive_any_number_of_others() {
        let mut s: RecentSet<String> = RecentSet::new(10);
        assert!(s.insert("hot".into()));
        for i in 0..1000 {
            assert!(s.insert(format!("cold{i}")));
            // Used again within every half-capacity window: never forgotten.
            assert!(!s.insert("hot".into()), "hot forgotten after {i}");
        }
        assert!(s.insert("cold0".into()), "a cold key is forgotten");
    }

    #[test]
    fn pinned_entries_are_carried_forward() {
        let mut m: RecentMap<u32, bool> = RecentMap::new(4);
        m.insert(0, true, |v| *v);
        for i in 1..100 {
            m.insert(i, false, |v| *v);
        }
        assert!(m.get_or_insert_with(0, || false, |v| *v));
    }
}
