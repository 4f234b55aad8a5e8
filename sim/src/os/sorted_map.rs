//! `SortedMap`: a map kept as a vector sorted by key, for small maps on hot paths.
//!
//! Determinism: iteration is in key order, as a `BTreeMap`'s is, so a `SortedMap` can replace
//! one without changing anything observable.

use std::cell::Cell;
use std::ops::{Range, RangeInclusive};

/// A map kept as a vector sorted by key, for maps that hold only a handful of entries at a time
/// and are looked up often (the allocator model's segments, heaps and threads; TLS values; a
/// reservation's runs of page state): a binary search of a short vector costs a fraction of a
/// B-tree search. Keys handed out in increasing order make an insert a push at the end.
/// Iteration is in key order, as a `BTreeMap`'s is.
#[derive(Clone, Debug)]
pub(crate) struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K: Ord + Copy, V> SortedMap<K, V> {
    pub(crate) fn new() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }

    pub(crate) fn position(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// A map of one entry, with room for `capacity`: a map made to be split (a reservation's
    /// runs) then grows without reallocating a handful of times.
    pub(crate) fn one(key: K, value: V, capacity: usize) -> Self {
        let mut entries = Vec::with_capacity(capacity.max(1));
        entries.push((key, value));
        SortedMap { entries }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let at = self.position(key).ok()?;
        Some(&self.entries[at].1)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = self.position(key).ok()?;
        Some(&mut self.entries[at].1)
    }

    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.position(key).is_ok()
    }

    /// Inserts `value` at `key`, returning the value it replaces.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let at = self.position(key).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// The positions of the entries whose keys lie in `keys`.
    fn positions(&self, keys: &RangeInclusive<K>) -> Range<usize> {
        let start = self.entries.partition_point(|(k, _)| k < keys.start());
        let end = start + self.entries[start..].partition_point(|(k, _)| k <= keys.end());
        start..end
    }

    /// Removes the entries whose keys lie in `keys`. An empty range returns at once: setting up a
    /// drain of nothing cost more than finding the range.
    pub(crate) fn remove_range(&mut self, keys: RangeInclusive<K>) {
        let positions = self.positions(&keys);
        if !positions.is_empty() {
            self.entries.drain(positions);
        }
    }

    /// Removes the entries whose keys lie in `keys` and for which `remove` is true, asking in key
    /// order; returns how many it removed.
    pub(crate) fn remove_range_where(
        &mut self,
        keys: RangeInclusive<K>,
        mut remove: impl FnMut(&K, &V) -> bool,
    ) -> usize {
        let positions = self.positions(&keys);
        if positions.is_empty() {
            return 0;
        }
        // The entries kept move down over those removed, in order, and those removed go in one
        // drain at the end of the range: a thread's exit asks this for its one or two TLS values,
        // where setting up an `extract_if` cost more than the walk.
        let mut kept = positions.start;
        for at in positions.clone() {
            let (key, value) = &self.entries[at];
            if !remove(key, value) {
                self.entries.swap(kept, at);
                kept += 1;
            }
        }
        self.entries.drain(kept..positions.end);
        positions.end - kept
    }

    /// The entries whose keys lie in `keys`, in key order, values mutable.
    pub(crate) fn range_mut(&mut self, keys: Range<K>) -> impl Iterator<Item = (&K, &mut V)> {
        let start = self.entries.partition_point(|(k, _)| *k < keys.start);
        let end = start + self.entries[start..].partition_point(|(k, _)| *k < keys.end);
        self.entries[start..end]
            .iter_mut()
            .map(|(key, value)| (&*key, value))
    }

    /// The entry with the greatest key at or before `key`.
    pub(crate) fn last_at_or_before(&self, key: &K) -> Option<(&K, &V)> {
        let after = self.entries.partition_point(|(k, _)| k <= key);
        let (key, value) = self.entries.get(after.checked_sub(1)?)?;
        Some((key, value))
    }

    /// The entry with the greatest key before `key`, value mutable.
    pub(crate) fn last_before_mut(&mut self, key: &K) -> Option<(&K, &mut V)> {
        let after = self.entries.partition_point(|(k, _)| k < key);
        let (key, value) = self.entries.get_mut(after.checked_sub(1)?)?;
        Some((&*key, value))
    }

    /// Takes out the entries at and after `key`, as `BTreeMap::split_off`.
    pub(crate) fn split_off(&mut self, key: &K) -> Self {
        let at = self.entries.partition_point(|(k, _)| k < key);
        SortedMap {
            entries: self.entries.split_off(at),
        }
    }

    /// Takes out the entry with the least key.
    pub(crate) fn pop_first(&mut self) -> Option<(K, V)> {
        if self.entries.is_empty() {
            return None;
        }
        Some(self.entries.remove(0))
    }

    /// The keys in order.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(key, _)| key)
    }

    /// Keeps only the entries for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(key, value)| keep(key, value));
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(key, value)| (key, value))
    }

    /// The entries in key order, values mutable.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(key, value)| (&*key, value))
    }

    /// The values in key order, taken out.
    pub(crate) fn into_values(self) -> impl Iterator<Item = V> {
        self.entries.into_iter().map(|(_, value)| value)
    }
}

/// A `SortedMap` whose lookups try first where the last one found its key: a map asked for the
/// same key several times in a row (the allocator model's segment of the page it is working on)
/// finds it with one compare instead of a search. Whatever the hint holds, a lookup answers as
/// the map's own. Every other method is the map's (`Deref`); a change leaves the hint stale,
/// which costs a search, never a wrong answer.
#[derive(Clone, Debug)]
pub(crate) struct HintedMap<K, V> {
    map: SortedMap<K, V>,
    hint: Cell<u32>,
}

impl<K: Ord + Copy, V> HintedMap<K, V> {
    pub(crate) fn new() -> Self {
        HintedMap {
            map: SortedMap::new(),
            hint: Cell::new(0),
        }
    }

    #[inline(always)]
    fn position(&self, key: &K) -> Option<usize> {
        let at = self.hint.get() as usize;
        if let Some((k, _)) = self.map.entries.get(at)
            && k == key
        {
            return Some(at);
        }
        let at = self.map.position(key).ok()?;
        self.hint.set(at as u32);
        Some(at)
    }

    #[inline(always)]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let at = self.position(key)?;
        Some(&self.map.entries[at].1)
    }

    #[inline(always)]
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = self.position(key)?;
        Some(&mut self.map.entries[at].1)
    }
}

impl<K, V> std::ops::Deref for HintedMap<K, V> {
    type Target = SortedMap<K, V>;

    fn deref(&self) -> &SortedMap<K, V> {
        &self.map
    }
}

impl<K, V> std::ops::DerefMut for HintedMap<K, V> {
    fn deref_mut(&mut self) -> &mut SortedMap<K, V> {
        &mut self.map
    }
}

impl<K: Ord + Copy, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap::new()
    }
}

impl<K: Ord + Copy, V> std::ops::Index<&K> for SortedMap<K, V> {
    type Output = V;

    fn index(&self, key: &K) -> &V {
        self.get(key).expect("key present")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SortedMap`, and `HintedMap` over it, answer as the `BTreeMap` they replaced: lookups,
    /// inserts anywhere (ids mostly increase, tids need not), removals, ranges, neighbours,
    /// splits and the order of iteration.
    #[test]
    fn sorted_map_agrees_with_a_btree_map() {
        let mut next = crate::rng::test_draws(0x2545_f491_4f6c_dd1d);
        // Its lookups are hinted; every change goes to the map beneath and leaves the hint
        // wherever the last lookup put it, stale after most of them.
        let mut map = HintedMap::new();
        let mut model = std::collections::BTreeMap::new();
        for step in 0..4_000u64 {
            let key = (next() % 64) as u32;
            let keys = key..=key + (next() % 8) as u32;
            match next() % 8 {
                0..=3 => assert_eq!(map.insert(key, step), model.insert(key, step)),
                4 => assert_eq!(map.remove(&key), model.remove(&key)),
                5 if step % 2 == 0 => {
                    map.remove_range(keys.clone());
                    model.retain(|k, _| !keys.contains(k));
                }
                5 => {
                    let parity = next() % 2;
                    let mut asked = Vec::new();
                    let removed = map.remove_range_where(keys.clone(), |key, value| {
                        asked.push(*key);
                        *value % 2 == parity
                    });
                    let in_range = || model.range(keys.clone());
                    assert!(asked.iter().eq(in_range().map(|(k, _)| k)), "key order");
                    let expected = in_range().filter(|(_, v)| *v % 2 == parity).count();
                    assert_eq!(removed, expected);
                    model.retain(|k, v| !(keys.contains(k) && *v % 2 == parity));
                }
                6 => {
                    let parity = next() % 2;
                    map.retain(|_, value| *value % 2 == parity);
                    model.retain(|_, value| *value % 2 == parity);
                }
                _ => {
                    if let (Some(value), Some(expected)) = (map.get_mut(&key), model.get_mut(&key))
                    {
                        *value += 1;
                        *expected += 1;
                    }
                }
            }
            assert_eq!(SortedMap::get(&map, &key), model.get(&key));
            assert_eq!(map.get(&key), model.get(&key));
            assert_eq!(map.get_mut(&key).map(|v| *v), model.get(&key).copied());
            assert_eq!(map.contains_key(&key), model.contains_key(&key));
            assert_eq!(map.last_at_or_before(&key), model.range(..=key).next_back());
            assert_eq!(
                map.last_before_mut(&key).map(|(k, v)| (*k, *v)),
                model.range(..key).next_back().map(|(k, v)| (*k, *v))
            );
            let (start, end) = (*keys.start(), *keys.end());
            assert!(
                map.range_mut(start..end)
                    .map(|(k, v)| (*k, *v))
                    .eq(model.range(start..end).map(|(k, v)| (*k, *v))),
                "range at step {step}"
            );
            if step % 97 == 0 {
                // Now and then the keys from `key` on go: the map empties less often than it fills.
                let mut tail = map.split_off(&key);
                let mut model_tail = model.split_off(&key);
                assert!(tail.iter().eq(model_tail.iter()), "split at step {step}");
                assert_eq!(tail.pop_first(), model_tail.pop_first());
                assert_eq!(tail.len(), model_tail.len());
            }
            assert!(map.iter().eq(model.iter()), "step {step}");
        }
        let values: Vec<u64> = model.values().copied().collect();
        assert!(map.map.into_values().eq(values));
    }
}
