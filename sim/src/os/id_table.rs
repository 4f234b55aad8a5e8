//! `IdTable`: a map from `u64` ids to values for ids handed out in increasing order (fd
//! descriptions, pipe buffers), with a lookup that costs a mask and a compare.
//!
//! The table is open addressing with linear probing, and an id's home slot is the id itself
//! masked to the table size: the ids alive at one time are mostly recent and consecutive, so
//! they land in distinct slots and a lookup finds its entry at once. Removal shifts the entries
//! that follow back (no tombstones), and the table doubles when half full.
//!
//! Determinism: the layout depends only on the ids inserted and removed, never on a random
//! state; still, nothing may depend on the slot order. Walks go through `ids_sorted` (id order)
//! or fold with an order-independent operation (`values` for a sum).

use std::ops::Index;

/// A key for ids whose low bits cluster (heap tokens spaced by block sizes, label addresses a
/// few bytes apart), which as they are would pile into a few home slots: the id times an odd
/// constant, a bijection (distinct ids keep distinct keys), with the well-mixed high half of the
/// product rotated into the low bits that pick the slot.
#[inline(always)]
pub(crate) fn spread_key(id: u64) -> u64 {
    id.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(32)
}

/// The most slots a recycled table keeps (see `IdTable::recycled`).
const RECYCLED_SLOTS_MAX: usize = 1024;

#[derive(Clone, Debug)]
pub(crate) struct IdTable<T> {
    slots: Vec<Option<(u64, T)>>,
    len: usize,
}

impl<T> Default for IdTable<T> {
    fn default() -> Self {
        IdTable::new()
    }
}

impl<T> IdTable<T> {
    const CAPACITY_MIN: usize = 8;

    pub(crate) fn new() -> IdTable<T> {
        IdTable {
            slots: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot holding `id`, if any. Each probe is a checked `get`: an empty table (whose mask
    /// is all ones) answers at the first, with no test of its own. `get` probes the same way but
    /// returns the value it found, not the slot: indexing again cost a 1-byte pipe write+read 8
    /// instructions (commit eef1f68), so keep its copy of this loop.
    #[inline]
    fn find(&self, id: u64) -> Option<usize> {
        let mask = self.mask();
        let mut index = id as usize & mask;
        loop {
            match self.slots.get(index)? {
                Some((key, _)) if *key == id => return Some(index),
                Some(_) => index = (index + 1) & mask,
                None => return None,
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: &u64) -> Option<&T> {
        let mask = self.mask();
        let mut index = *id as usize & mask;
        loop {
            match self.slots.get(index)? {
                Some((key, value)) if key == id => return Some(value),
                Some(_) => index = (index + 1) & mask,
                None => return None,
            }
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: &u64) -> Option<&mut T> {
        let index = self.find(*id)?;
        self.slots[index].as_mut().map(|(_, value)| value)
    }

    #[inline]
    pub(crate) fn contains_key(&self, id: &u64) -> bool {
        self.find(*id).is_some()
    }

    /// Inserts `value` under `id`, which must not be present. Inline, like the lookups: the heap
    /// inserts and removes a block on every `malloc` and `free`, and when LLVM left these two out
    /// of line (as it did after unrelated edits) a WASI-runtime fuzz input cost 3% more.
    #[inline]
    pub(crate) fn insert(&mut self, id: u64, value: T) {
        debug_assert!(!self.contains_key(&id), "id {id} inserted twice");
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut index = id as usize & mask;
        while self.slots[index].is_some() {
            index = (index + 1) & mask;
        }
        self.slots[index] = Some((id, value));
        self.len += 1;
    }

    /// Doubles the slots. Rare and out of line, so that `insert` stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(Self::CAPACITY_MIN);
        let old = std::mem::replace(&mut self.slots, (0..capacity).map(|_| None).collect());
        let mask = capacity - 1;
        for (id, value) in old.into_iter().flatten() {
            let mut index = id as usize & mask;
            while self.slots[index].is_some() {
                index = (index + 1) & mask;
            }
            self.slots[index] = Some((id, value));
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, id: &u64) -> Option<T> {
        let index = self.find(*id)?;
        Some(self.remove_at(index))
    }

    /// Removes the value of `id` when `remove` says so: one search, where a look then a removal
    /// made two. Inline, as `remove_at` is.
    #[inline]
    pub(crate) fn remove_if(&mut self, id: &u64, remove: impl FnOnce(&T) -> bool) -> Option<T> {
        let index = self.find(*id)?;
        let (_, value) = self.slots[index].as_ref().expect("found");
        if !remove(value) {
            return None;
        }
        Some(self.remove_at(index))
    }

    /// Removes the value in slot `hole`, which holds one. Inline: out of line, each `free` of
    /// the heap was a call to it, and a WASI-runtime fuzz input cost 2% more.
    #[inline]
    fn remove_at(&mut self, mut hole: usize) -> T {
        let (_, value) = self.slots[hole].take().expect("found");
        self.len -= 1;
        // Shift back every entry of the run after the hole that may not skip it: an entry whose
        // home lies cyclically in (hole, here] stays, any other moves into the hole.
        let mask = self.mask();
        let mut here = (hole + 1) & mask;
        while let Some((key, _)) = &self.slots[here] {
            let home = *key as usize & mask;
            let stays = if hole <= here {
                hole < home && home <= here
            } else {
                hole < home || home <= here
            };
            if !stays {
                self.slots[hole] = self.slots[here].take();
                hole = here;
            }
            here = (here + 1) & mask;
        }
        value
    }

    /// Empties the table and hands it over with its slots, for a table that fills again (a
    /// dropped OS's, for the next one: see `Os::new`). Only its capacity is kept; which slot an
    /// id takes is never observable. A table grown past `RECYCLED_SLOTS_MAX` is dropped instead:
    /// emptying it, and every walk of the next OS's table (a check of every buffer after each
    /// repetition), would cost its whole size, and one large run (100,000 heap blocks in the
    /// lifecycle benchmark) then slowed every run after it on the thread fourfold.
    pub(crate) fn recycled(&mut self) -> IdTable<T> {
        if self.slots.len() > RECYCLED_SLOTS_MAX {
            *self = IdTable::new();
        }
        self.slots.fill_with(|| None);
        self.len = 0;
        std::mem::take(self)
    }

    /// Every id, ascending: the order for any walk whose result depends on order.
    pub(crate) fn ids_sorted(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.slots.iter().flatten().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids
    }

    /// Every value in slot order: only for order-independent folds (sums, counts).
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten().map(|(_, value)| value)
    }
}

impl<T> Index<&u64> for IdTable<T> {
    type Output = T;

    #[inline]
    fn index(&self, id: &u64) -> &T {
        self.get(id).expect("id present in the table")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A recycled table comes back empty with its slots, unless it grew past the bound: then it
    /// comes back with none, so that one large run does not make every later run's walks and
    /// recycling cost its size.
    #[test]
    fn a_recycled_table_is_empty_and_keeps_its_slots_up_to_the_bound() {
        let mut small = IdTable::new();
        for id in 0..100u64 {
            small.insert(id, id);
        }
        let slots = small.slots.len();
        let recycled = small.recycled();
        assert_eq!((recycled.len(), recycled.slots.len()), (0, slots));
        assert!(recycled.slots.iter().all(Option::is_none));
        assert_eq!(recycled.get(&5), None);

        let mut large = IdTable::new();
        for id in 0..(RECYCLED_SLOTS_MAX as u64) {
            large.insert(id, id);
        }
        assert!(large.slots.len() > RECYCLED_SLOTS_MAX);
        let recycled = large.recycled();
        assert_eq!((recycled.len(), recycled.slots.len()), (0, 0));
    }

    /// A table with no slots yet finds nothing, whatever the id (the lookups test no emptiness
    /// of their own: see `find`).
    #[test]
    fn a_table_without_slots_finds_nothing() {
        let mut table: IdTable<u64> = IdTable::new();
        for id in [0, 1, 7, u64::MAX] {
            assert_eq!(table.get(&id), None);
            assert_eq!(table.get_mut(&id), None);
            assert!(!table.contains_key(&id));
            assert_eq!(table.remove(&id), None);
            assert_eq!(table.remove_if(&id, |_| true), None);
        }
        table.insert(3, 30);
        assert_eq!((table.get(&3), table.get(&11)), (Some(&30), None));
    }

    /// Random inserts (increasing ids, with gaps) and removals agree with a BTreeMap at every step.
    #[test]
    fn agrees_with_a_btree_map_under_random_inserts_and_removals() {
        let mut next = crate::rng::test_draws(0x1234_5678);
        let mut table = IdTable::new();
        let mut model = BTreeMap::new();
        let mut id = 0u64;
        for step in 0..4_000u64 {
            if !next().is_multiple_of(3) || model.is_empty() {
                id += 1 + next() % 40;
                table.insert(id, step);
                model.insert(id, step);
            } else {
                let keys: Vec<u64> = model.keys().copied().collect();
                let victim = keys[(next() % keys.len() as u64) as usize];
                // Half of the removals ask first, and keep values of one parity.
                if next().is_multiple_of(2) {
                    assert_eq!(table.remove(&victim), model.remove(&victim));
                } else {
                    let even = |value: &u64| value.is_multiple_of(2);
                    let removed = table.remove_if(&victim, even);
                    let expected = model
                        .get(&victim)
                        .is_some_and(even)
                        .then(|| model.remove(&victim).unwrap());
                    assert_eq!(removed, expected);
                }
            }
            let probe = next() % (id + 2);
            assert_eq!(table.get(&probe), model.get(&probe), "step {step}");
            assert_eq!(table.len(), model.len());
        }
        assert_eq!(
            table.ids_sorted(),
            model.keys().copied().collect::<Vec<_>>()
        );
        assert_eq!(table.values().sum::<u64>(), model.values().sum::<u64>());
        assert_eq!(table.remove(&(id + 1)), None, "absent ids are not found");
    }
}
