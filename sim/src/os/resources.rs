//! The OS's own accounting: every live resource, with its kind, size and who acquired it.
//!
//! Totals per (kind, acquisition site) are kept up to date on every acquire and release, so that
//! a baseline is a copy of one small vector and a diff is a walk over it, whatever the number of
//! live records: there are as many site slots as static site labels in the code. A leak report
//! names the sites whose own count rose, not every site that acquired something since the
//! baseline: a site that released one reservation and took another in the same lifecycle has not
//! leaked. A kind's totals are the sum of its sites' (`totals`, `total`), so that an acquire or a
//! release updates one set of totals, not two.
//!
//! Records live in a slab with generation-tagged ids, so a stale id is detected instead of
//! releasing someone else's record. Keyed kinds (a bounded cache keyed by function, say) also
//! keep a live count per key, which the growth detector's allowance needs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::id_table::{IdTable, spread_key};
use super::{Attribution, Position};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct KindId(pub u16);

impl KindId {
    /// Whether this is one of the built-in kinds, which every `Resources` registers first.
    pub fn is_builtin(self) -> bool {
        usize::from(self.0) < BUILTIN_KIND_NAMES.len()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordId {
    pub index: u32,
    pub generation: u32,
}

impl RecordId {
    /// The id of no record, for a field that holds a record only in some states (a lock's
    /// writer, a blocked thread's waiter) and whose state says when: no record's index reaches
    /// `NO_RECORD`. Never released or looked up.
    pub(crate) const NONE: RecordId = RecordId {
        index: NO_RECORD,
        generation: 0,
    };
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// Built-in kinds borrow their static names; a subject's kinds own theirs.
    pub name: Cow<'static, str>,
    pub keyed: bool,
}

/// Units (objects, or pages for committed memory) and bytes of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: u64,
    pub bytes: u64,
}

/// Field by field, so that a count and its bytes move together.
impl Totals {
    /// Each field less `other`'s, or 0 where `other`'s is larger.
    pub fn less(self, other: Totals) -> Totals {
        Totals {
            count: self.count.saturating_sub(other.count),
            bytes: self.bytes.saturating_sub(other.bytes),
        }
    }

    pub fn plus(self, other: Totals) -> Totals {
        Totals {
            count: self.count + other.count,
            bytes: self.bytes + other.bytes,
        }
    }

    pub fn min_each(self, other: Totals) -> Totals {
        Totals {
            count: self.count.min(other.count),
            bytes: self.bytes.min(other.bytes),
        }
    }

    pub fn max_each(self, other: Totals) -> Totals {
        Totals {
            count: self.count.max(other.count),
            bytes: self.bytes.max(other.bytes),
        }
    }

    pub fn is_zero(self) -> bool {
        self == Totals::default()
    }
}

/// Totals of one (kind, acquisition site) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteTotals {
    pub kind: KindId,
    pub site: &'static str,
    pub totals: Totals,
}

/// One live acquisition. Its owner subject is not stored: one subject runs in an `Os`, so every
/// record of its ledger is that subject's, and a report names it once, in its header (`subject
/// wasi-runtime`). Which of the subject's threads acquired it is `position.thread`.
#[derive(Clone, Debug)]
pub struct Record {
    pub kind: KindId,
    pub count: u64,
    pub bytes: u64,
    pub key: u64,
    /// Where the run was when it was acquired. The site is not copied: the record's site slot
    /// names it (`Resources::acquired` puts the two together), which keeps a record 16 bytes
    /// smaller and an acquisition's stores fewer.
    pub position: Position,
    /// Acquisition order, for "oldest first" listings.
    pub serial: u64,
    /// Index into the per-site totals.
    site_slot: u32,
    generation: u32,
    /// While the record is free, the record freed before it (`NO_RECORD` at the bottom): the
    /// free records form a stack through this field, so that a release is two stores, with no
    /// vector to grow.
    next_free: u32,
    live: bool,
    /// Whether its kind is keyed: the kind's flag, copied so that a release need not look the
    /// kind up.
    keyed: bool,
}

impl Record {
    /// What the record holds now: its part of its site's totals.
    pub fn holds(&self) -> Totals {
        Totals {
            count: self.count,
            bytes: self.bytes,
        }
    }
}

/// Per-kind facts the hot paths read.
#[derive(Clone, Copy, Debug, Default)]
struct KindHot {
    keyed: bool,
    /// The site slot the kind used last: a kind is mostly acquired from one site at a time, so
    /// this hint answers first, with no hashing. `NO_SITE_SLOT` until its first acquisition.
    last_site_slot: u32,
}

/// What the table by label address holds for a (kind, address): the label's length (two labels
/// may start at one address) and its slot.
#[derive(Clone, Copy, Debug)]
struct SiteSlotByAddress {
    len: usize,
    slot: u32,
}

/// Where a label lies relative to `anchor` (see `label_offset`).
#[inline(always)]
fn offset_from(site: &'static str, anchor: *const u8) -> u64 {
    (site.as_ptr() as u64).wrapping_sub(anchor as u64)
}

/// A label's address as an offset from a static of this crate, rather than the address itself.
/// Labels are literals of the binary, and the loader moves the whole binary by another amount in
/// every process (ASLR): an address then picked another `site_hints` entry in each process, and
/// so which pairs shared an entry, and the code a run took through `site_slot_missed` and
/// `site_slots_by_address`. The slots found were the same (the trace did not change), but a
/// coverage-guided fuzzer saw one input cover other code in each process, and `make fuzz-cmin`
/// runs its inputs in a fresh one. An offset within the binary is the same in every process.
#[inline(always)]
fn label_offset(site: &'static str) -> u64 {
    static ANCHOR: u8 = 0;
    offset_from(site, &raw const ANCHOR)
}

/// The key of a (`kind`, label offset) in that table. Labels lie within 2^47 bytes of the anchor,
/// so two offsets that agree in their low 48 bits are one offset, and the kind above them keeps
/// keys distinct.
#[inline(always)]
fn site_offset_key(kind: KindId, offset: u64) -> u64 {
    spread_key(offset ^ (u64::from(kind.0) << 48))
}

/// The end of the stack of free records.
const NO_RECORD: u32 = u32::MAX;

/// The slot of no site (`sites` never holds `u32::MAX` entries): the hint of a kind not yet
/// acquired, and a `site_hints` entry no pair has used yet.
const NO_SITE_SLOT: u32 = u32::MAX;

/// `site_hints` has `1 << SITE_HINT_BITS` entries: room for every (kind, label) pair a subject
/// and the OS use, with few of them sharing an entry.
const SITE_HINT_BITS: u32 = 8;

/// The entry of (`kind`, label offset) in `site_hints`: the well-mixed high bits of the label's
/// offset (`label_offset`) and the kind, multiplied by an odd constant.
#[inline(always)]
fn site_hint_index(kind: KindId, offset: u64) -> usize {
    let key = offset ^ (u64::from(kind.0) << 48);
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SITE_HINT_BITS)) as usize
}

/// Kinds a run is expected to register at most (built-in plus a subject's); more only regrow.
const KINDS_EXPECTED_MAX: usize = 32;

#[derive(Clone, Debug)]
pub struct Resources {
    kinds: Vec<KindInfo>,
    /// What acquire consults per kind, for the built-in kinds. An array of fixed length: the
    /// OS's own acquisitions name constant built-in kinds, so theirs is found at a fixed offset,
    /// with no bounds check and no pointer to follow.
    builtin_hot: [KindHot; BUILTIN_KIND_NAMES.len()],
    /// The same for a subject's kinds, which are numbered after the built-in ones.
    subject_hot: Vec<KindHot>,
    records: Vec<Record>,
    /// The free record released last, which the next acquisition reuses (record indices appear
    /// in the trace, so the order of reuse, last released first, is part of a run's
    /// behaviour); `NO_RECORD` when every record is live. See `Record::next_free`.
    free_top: u32,
    /// How many records are on that stack.
    free_count: u32,
    per_key: BTreeMap<(KindId, u64), u64>,
    /// Totals per (kind, site), in order of first use.
    sites: Vec<SiteTotals>,
    /// The site slot each (kind, label) pair found last, by `site_hint_index`, for when the
    /// kind's own hint misses: a runtime allocates heap blocks from a dozen sites in turn, and
    /// that hint misses on most of them. Checked against the slot's own kind and label before
    /// it is used, so that an entry two pairs share only sends the lookup on to
    /// `site_slots_by_address`.
    site_hints: [u32; 1 << SITE_HINT_BITS],
    /// Site slots by the label's address, for the pairs whose hint entry another pair took: see
    /// `add_to_site`. Entries are never removed (there are only so many labels). Empty
    /// until two pairs share a hint entry.
    site_slots_by_address: IdTable<SiteSlotByAddress>,
    serial: u64,
}

/// The lists of a dropped `Resources`, emptied, for the next one made on this thread (see
/// `Os::new`).
#[derive(Default)]
pub(crate) struct ResourcesStorage {
    kinds: Vec<KindInfo>,
    subject_hot: Vec<KindHot>,
    records: Vec<Record>,
    sites: Vec<SiteTotals>,
}

/// `list`, emptied, taken from where it was: the storage a family keeps for the next OS.
pub(crate) fn recycled<T>(list: &mut Vec<T>) -> Vec<T> {
    list.clear();
    std::mem::take(list)
}

/// Marks the live record `id` free, puts it on top of the stack of free records (`free_top`,
/// `free_count`) and takes its units off its site's totals; returns its count and whether its
/// kind is keyed, for the caller to take them off its key's count too. Its kind and key, which
/// only a keyed kind needs, are left to `Resources::release_key`.
#[inline(always)]
fn free_record(
    records: &mut [Record],
    sites: &mut [SiteTotals],
    free_top: &mut u32,
    free_count: &mut u32,
    id: RecordId,
) -> (u64, bool) {
    let record = &mut records[id.index as usize];
    debug_assert!(
        record.live && record.generation == id.generation,
        "a released record is live"
    );
    // Read what the totals need before the record is marked dead.
    let (count, bytes, site_slot, keyed) =
        (record.count, record.bytes, record.site_slot, record.keyed);
    record.live = false;
    record.next_free = *free_top;
    *free_top = id.index;
    *free_count += 1;
    let site_totals = &mut sites[site_slot as usize].totals;
    site_totals.count -= count;
    site_totals.bytes -= bytes;
    (count, keyed)
}

impl Default for Resources {
    fn default() -> Resources {
        Resources::new()
    }
}

impl Resources {
    /// Accounting with the built-in kinds registered, first and in `BUILTIN_KIND_NAMES` order, so
    /// that their ids are `BuiltinKinds::IDS` in every `Resources`; none of them is keyed.
    pub fn new() -> Resources {
        Resources::new_in(&mut ResourcesStorage::default())
    }

    /// `new`, in the lists `storage` holds (emptied by `keep_storage`), if it holds any.
    pub(crate) fn new_in(storage: &mut ResourcesStorage) -> Resources {
        // Room for the built-in kinds and a subject's own without regrowing: a fresh OS is made
        // for every fuzz input, and the built-in kinds are registered all at once, not looked up
        // by name one by one.
        let mut kinds = std::mem::take(&mut storage.kinds);
        kinds.reserve(KINDS_EXPECTED_MAX);
        let mut subject_hot = std::mem::take(&mut storage.subject_hot);
        subject_hot.reserve(KINDS_EXPECTED_MAX - BUILTIN_KIND_NAMES.len());
        kinds.extend(BUILTIN_KIND_NAMES.iter().map(|&name| KindInfo {
            name: Cow::Borrowed(name),
            keyed: false,
        }));
        let builtin_hot = KindHot {
            keyed: false,
            last_site_slot: NO_SITE_SLOT,
        };
        Resources {
            kinds,
            builtin_hot: [builtin_hot; BUILTIN_KIND_NAMES.len()],
            subject_hot,
            records: std::mem::take(&mut storage.records),
            free_top: NO_RECORD,
            free_count: 0,
            per_key: BTreeMap::new(),
            sites: std::mem::take(&mut storage.sites),
            site_hints: [NO_SITE_SLOT; 1 << SITE_HINT_BITS],
            site_slots_by_address: IdTable::new(),
            serial: 0,
        }
    }

    /// Empties the lists and hands them to `storage`, for the next `new_in`.
    pub(crate) fn keep_storage(&mut self, storage: &mut ResourcesStorage) {
        storage.kinds = recycled(&mut self.kinds);
        storage.subject_hot = recycled(&mut self.subject_hot);
        storage.records = recycled(&mut self.records);
        storage.sites = recycled(&mut self.sites);
    }

    pub fn register_kind(&mut self, name: &str, keyed: bool) -> KindId {
        match self.kind_by_name(name) {
            Some(kind) => kind,
            None => self.push_kind(Cow::Owned(name.to_string()), keyed),
        }
    }

    /// Registers a kind whose name is static, without allocating.
    pub fn register_static_kind(&mut self, name: &'static str, keyed: bool) -> KindId {
        match self.kind_by_name(name) {
            Some(kind) => kind,
            None => self.push_kind(Cow::Borrowed(name), keyed),
        }
    }

    fn push_kind(&mut self, name: Cow<'static, str>, keyed: bool) -> KindId {
        self.kinds.push(KindInfo { name, keyed });
        self.subject_hot.push(KindHot {
            keyed,
            last_site_slot: NO_SITE_SLOT,
        });
        KindId((self.kinds.len() - 1) as u16)
    }

    #[inline(always)]
    fn hot(&self, kind: KindId) -> &KindHot {
        let index = usize::from(kind.0);
        match self.builtin_hot.get(index) {
            Some(hot) => hot,
            None => &self.subject_hot[index - BUILTIN_KIND_NAMES.len()],
        }
    }

    #[inline(always)]
    fn hot_mut(&mut self, kind: KindId) -> &mut KindHot {
        let index = usize::from(kind.0);
        match self.builtin_hot.get_mut(index) {
            Some(hot) => hot,
            None => &mut self.subject_hot[index - BUILTIN_KIND_NAMES.len()],
        }
    }

    pub fn kind(&self, kind: KindId) -> &KindInfo {
        &self.kinds[kind.0 as usize]
    }

    pub fn kind_by_name(&self, name: &str) -> Option<KindId> {
        self.kinds
            .iter()
            .position(|kind| kind.name == name)
            .map(|index| KindId(index as u16))
    }

    pub fn kinds(&self) -> impl ExactSizeIterator<Item = (KindId, &KindInfo)> {
        self.kinds
            .iter()
            .enumerate()
            .map(|(index, info)| (KindId(index as u16), info))
    }

    /// The totals of every kind, indexed by kind: O(kinds + sites).
    pub fn totals(&self) -> Vec<Totals> {
        let mut totals = vec![Totals::default(); self.kinds.len()];
        self.add_site_totals(&mut totals);
        totals
    }

    /// Adds every site's totals to its kind's in `totals` (indexed by kind).
    fn add_site_totals(&self, totals: &mut [Totals]) {
        for site in &self.sites {
            let total = &mut totals[site.kind.0 as usize];
            *total = total.plus(site.totals);
        }
    }

    /// The totals of one kind: O(sites).
    pub fn total(&self, kind: KindId) -> Totals {
        let mut total = Totals::default();
        for site in self.sites.iter().filter(|site| site.kind == kind) {
            total = total.plus(site.totals);
        }
        total
    }

    /// Every record is either live or on the stack of free records.
    pub fn live_records(&self) -> u64 {
        (self.records.len() - self.free_count as usize) as u64
    }

    /// Totals per (kind, site), indexed by site slot; slots are only ever appended.
    pub fn site_totals(&self) -> &[SiteTotals] {
        &self.sites
    }

    /// Adds `count` and `bytes` to the totals of (`kind`, `site`), whose slot is made on first
    /// use; returns the slot. `hint` is the kind's last slot. On a miss, the pair's entry in
    /// `site_hints` names the slot it found last; on a miss there too, the slot is looked up
    /// (`site_slot_missed`) and becomes the entry's hint. Either way it becomes the kind's hint.
    #[inline(always)]
    fn add_to_site(
        &mut self,
        kind: KindId,
        hint: u32,
        site: &'static str,
        count: u64,
        bytes: u64,
    ) -> u32 {
        if let Some(entry) = self.sites.get_mut(hint as usize) {
            // Same label, same address: the common case needs no string comparison. A kind's
            // hint only ever names a slot of that kind, so the kind needs no comparison either.
            debug_assert_eq!(entry.kind, kind, "a kind's hint names a slot of that kind");
            if std::ptr::eq(entry.site, site) {
                entry.totals.count += count;
                entry.totals.bytes += bytes;
                return hint;
            }
        }
        let hint_index = site_hint_index(kind, label_offset(site));
        let pair_hint = self.site_hints[hint_index];
        let slot = match self.sites.get(pair_hint as usize) {
            Some(entry) if entry.kind == kind && std::ptr::eq(entry.site, site) => pair_hint,
            _ => {
                let slot = self.site_slot_missed(kind, site, pair_hint);
                self.site_hints[hint_index] = slot;
                slot
            }
        };
        self.hot_mut(kind).last_site_slot = slot;
        let totals = &mut self.sites[slot as usize].totals;
        totals.count += count;
        totals.bytes += bytes;
        slot
    }

    /// The slot of a pair that missed its hint entry, which holds `hint`. An entry no pair has
    /// used means the pair's first acquisition (nearly always): its label is compared by content
    /// with the few slots there are (one label written in two places is one site). An entry
    /// another pair holds means the two share it, and may alternate: the label's address is
    /// looked up in `site_slots_by_address`, and entered there on its first miss. That table
    /// keeps every address it was given (were it a cache that evicted, two alternating labels
    /// that shared an entry, which depends on where the linker put them, would be compared by
    /// content every time). Whichever way, the slot is the same.
    #[cold]
    #[inline(never)]
    fn site_slot_missed(&mut self, kind: KindId, site: &'static str, hint: u32) -> u32 {
        if hint == NO_SITE_SLOT {
            return self.site_slot_by_content(kind, site);
        }
        let key = site_offset_key(kind, label_offset(site));
        match self.site_slots_by_address.get(&key) {
            Some(entry) if entry.len == site.len() => entry.slot,
            // A shorter or longer label at the same address keeps the entry it found: the
            // other is found by content, every time.
            Some(_) => self.site_slot_by_content(kind, site),
            None => {
                let slot = self.site_slot_by_content(kind, site);
                let len = site.len();
                self.site_slots_by_address
                    .insert(key, SiteSlotByAddress { len, slot });
                slot
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn site_slot_by_content(&mut self, kind: KindId, site: &'static str) -> u32 {
        match self
            .sites
            .iter()
            .position(|entry| entry.kind == kind && entry.site == site)
        {
            Some(slot) => slot as u32,
            None => {
                self.sites.push(SiteTotals {
                    kind,
                    site,
                    totals: Totals::default(),
                });
                (self.sites.len() - 1) as u32
            }
        }
    }

    /// Distinct keys with at least one live unit, for a keyed kind.
    pub fn live_keys(&self, kind: KindId) -> u64 {
        // Only a keyed kind's records are counted by key (see `acquire_at`): another kind's
        // answer needs no search of the map. The growth detector asks at every observation
        // while a declared cache has risen often enough to be judged (most of an allocator's).
        if kind.is_builtin() || !self.hot(kind).keyed {
            return 0;
        }
        self.per_key
            .range((kind, 0)..=(kind, u64::MAX))
            .filter(|(_, count)| **count > 0)
            .count() as u64
    }

    /// Always inlined: the attribution then goes straight from the caller's registers into the
    /// record instead of through a temporary (which costs a store-forwarding stall per call).
    #[inline(always)]
    pub fn acquire(
        &mut self,
        kind: KindId,
        count: u64,
        bytes: u64,
        key: u64,
        acquired: Attribution,
    ) -> RecordId {
        self.acquire_at(kind, count, bytes, key, &acquired.position, acquired.site)
    }

    /// `acquire`, with the position read where the record is written: for a caller whose
    /// position is in memory (the OS's own), which the record's write then copies from there.
    /// Passed by value, the position was read before the ledger's other work, and copied to the
    /// stack to outlive the call that grows the records in one branch.
    #[inline(always)]
    pub(crate) fn acquire_at(
        &mut self,
        kind: KindId,
        count: u64,
        bytes: u64,
        key: u64,
        position: &Position,
        site: &'static str,
    ) -> RecordId {
        self.serial += 1;
        let hot = *self.hot(kind);
        // Built-in kinds are never keyed: where the kind is a constant (the OS's own calls), the
        // compiler drops the keyed work.
        let keyed = !kind.is_builtin() && hot.keyed;
        if keyed {
            *self.per_key.entry((kind, key)).or_default() += count;
        }
        let site_slot = self.add_to_site(kind, hot.last_site_slot, site, count, bytes);
        let serial = self.serial;
        // The record of a given generation, written where it goes in each branch below: built
        // once before the branch and then moved, it cost 7 more instructions per acquisition
        // (577 → 584 for the pages benchmark, 440 → 447 per scheduling decision).
        let record_of_generation = |generation| Record {
            kind,
            count,
            bytes,
            key,
            position: *position,
            serial,
            site_slot,
            generation,
            next_free: NO_RECORD,
            live: true,
            keyed,
        };
        let index = self.free_top;
        // The top of the stack of free records is a record, or `NO_RECORD`, which no record's
        // index reaches (there are fewer than `u32::MAX`): one test of the slab's bounds tells
        // the two apart and is the bounds check of the record's write, where a test for
        // `NO_RECORD` came before it (8 instructions off a page cycle, 2.4 off a scheduling
        // decision).
        let Some(record) = self.records.get_mut(index as usize) else {
            debug_assert_eq!(index, NO_RECORD, "the stack of free records holds records");
            self.records.push(record_of_generation(0));
            return RecordId {
                index: (self.records.len() - 1) as u32,
                generation: 0,
            };
        };
        debug_assert!(!record.live, "only free records are on the stack");
        self.free_top = record.next_free;
        self.free_count -= 1;
        let generation = record.generation.wrapping_add(1);
        *record = record_of_generation(generation);
        RecordId { index, generation }
    }

    #[inline]
    pub fn get(&self, id: RecordId) -> Option<&Record> {
        self.records
            .get(id.index as usize)
            .filter(|record| record.live && record.generation == id.generation)
    }

    /// Who acquired `record` (one of this ledger's): its position, and its site slot's label.
    /// That label has the text of the one it was acquired with, which is all a report prints;
    /// when one label is written in two places, it may be the other place's copy.
    pub fn acquired(&self, record: &Record) -> Attribution {
        Attribution {
            position: record.position,
            site: self.sites[record.site_slot as usize].site,
        }
    }

    /// Changes the units and bytes a live record holds (committed pages of a reservation, say).
    pub fn resize(&mut self, id: RecordId, count: u64, bytes: u64) -> bool {
        let Some(record) = self
            .records
            .get_mut(id.index as usize)
            .filter(|r| r.live && r.generation == id.generation)
        else {
            return false;
        };
        let site_totals = &mut self.sites[record.site_slot as usize].totals;
        site_totals.count = site_totals.count - record.count + count;
        site_totals.bytes = site_totals.bytes - record.bytes + bytes;
        if record.keyed {
            let entry = self.per_key.entry((record.kind, record.key)).or_default();
            *entry = *entry - record.count + count;
        }
        record.count = count;
        record.bytes = bytes;
        true
    }

    /// Releases a record; `None` if the id is stale or was never issued.
    #[inline]
    pub fn release(&mut self, id: RecordId) -> Option<Record> {
        let record = self.get(id)?.clone();
        self.release_id(id);
        Some(record)
    }

    /// Releases a record without returning it (what the OS's own calls need); false if the id is
    /// stale or was never issued.
    #[inline(always)]
    pub fn release_id(&mut self, id: RecordId) -> bool {
        let live = self.get(id).is_some();
        if live {
            self.release_live(id);
        }
        live
    }

    /// `release_id` of a record known to be live: one the OS holds for a resource of its own (a
    /// reservation's, a lock's, a held lock's, a waiter's, a heap block's), which only that
    /// resource's end releases, once; a subject cannot release one (`Os::untrack` refuses records
    /// of built-in kinds). Its id is not checked (a debug build asserts it), which spares an
    /// acquisition's holder the two tests of liveness and generation on every release; nor is
    /// its kind tested for keys, as built-in kinds are never keyed (3 instructions a release).
    #[inline(always)]
    pub(crate) fn release_held(&mut self, id: RecordId) {
        debug_assert!(
            self.records[id.index as usize].kind.is_builtin(),
            "a held record is of a built-in kind"
        );
        self.release_record(id, false);
    }

    /// `release_held` of `first`, if any, and then of `then`, as two calls would: a reservation's
    /// release frees its committed-pages record and its own. The slabs' bounds are read once for
    /// both and the top of the stack of free records is kept in a register between them, where
    /// two calls read them again after the first call's stores (5 instructions a release).
    #[inline(always)]
    pub(crate) fn release_held_two(&mut self, first: Option<RecordId>, then: RecordId) {
        let (records, sites) = (&mut self.records[..], &mut self.sites[..]);
        let mut free_top = self.free_top;
        let free_count = &mut self.free_count;
        if let Some(first) = first {
            debug_assert!(records[first.index as usize].kind.is_builtin());
            free_record(records, sites, &mut free_top, free_count, first);
        }
        debug_assert!(records[then.index as usize].kind.is_builtin());
        free_record(records, sites, &mut free_top, free_count, then);
        self.free_top = free_top;
    }

    /// Releases a record known to be live, of any kind (one a subject tracked, say).
    #[inline(always)]
    pub(crate) fn release_live(&mut self, id: RecordId) {
        self.release_record(id, true);
    }

    /// `release_held` or `release_live`: `may_be_keyed` is false for a record of a built-in
    /// kind, whose release then neither reads nor tests the record's flag.
    #[inline(always)]
    fn release_record(&mut self, id: RecordId, may_be_keyed: bool) {
        let (count, keyed) = free_record(
            &mut self.records,
            &mut self.sites,
            &mut self.free_top,
            &mut self.free_count,
            id,
        );
        debug_assert!(may_be_keyed || !keyed, "built-in kinds are never keyed");
        if may_be_keyed && keyed {
            self.release_key(id.index, count);
        }
    }

    /// Takes the `count` units of the record at `index`, just released, off the live count of
    /// its (kind, key); a released record keeps both until it is reused. Out of line: most
    /// records are of kinds that are not keyed, and the release of those should neither load
    /// the kind and key nor carry the map work.
    #[inline(never)]
    fn release_key(&mut self, index: u32, count: u64) {
        let record = &self.records[index as usize];
        let (kind, key) = (record.kind, record.key);
        let entry = self
            .per_key
            .get_mut(&(kind, key))
            .expect("keyed count exists while a record lives");
        *entry -= count;
        if *entry == 0 {
            self.per_key.remove(&(kind, key));
        }
    }

    /// Live records of a kind acquired after `serial`, oldest first. O(records); used only to
    /// explain a leak that the O(kinds + sites) check already found.
    pub fn live_since(&self, kind: KindId, serial: u64) -> Vec<&Record> {
        let mut live: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.live && r.kind == kind && r.serial > serial && r.count > 0)
            .collect();
        live.sort_by_key(|r| r.serial);
        live
    }

    /// Live records, each with its id and its site slot (an index into `site_totals`), in no
    /// particular order. O(records), like `live_since`: for the check at the end of a lifecycle
    /// with a setup and no teardown (`ledger::SetupCheck`), which keeps the records a repetition
    /// left by their ids.
    pub fn live_with_ids(&self) -> impl Iterator<Item = (RecordId, usize, &Record)> {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.live)
            .map(|(index, r)| {
                let id = RecordId {
                    index: index as u32,
                    generation: r.generation,
                };
                (id, r.site_slot as usize, r)
            })
    }

    /// The serial of the most recent acquisition: a baseline remembers it so that a leak report can
    /// list what was acquired since.
    pub fn serial(&self) -> u64 {
        self.serial
    }
}

/// The kinds every OS has, registered first and in this order.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinKinds {
    pub reservation: KindId,
    pub committed_pages: KindId,
    pub heap_block: KindId,
    pub mutex: KindId,
    pub rwlock: KindId,
    pub condvar: KindId,
    pub held_lock: KindId,
    pub thread: KindId,
    pub waiter: KindId,
    pub tls_key: KindId,
    pub module: KindId,
    pub exit_hook: KindId,
    pub fd: KindId,
    pub description: KindId,
}

/// The names of the built-in kinds, in registration order (what `[caches]` may name besides a
/// subject's declared caches).
pub const BUILTIN_KIND_NAMES: [&str; 14] = [
    "reservation",
    "committed pages",
    "heap block",
    "mutex",
    "rwlock",
    "condvar",
    "held lock",
    "thread",
    "waiter",
    "tls key",
    "module",
    "exit hook",
    "fd",
    "description",
];

/// The built-in kinds' ids, for the OS's own acquisitions. Every resource family names its kinds
/// through this constant rather than a copy of its own, so that each acquisition's kind is a
/// constant and the ledger's per-kind branch (built-in or a subject's, keyed or not) folds away.
pub(crate) const KINDS: BuiltinKinds = BuiltinKinds::IDS;

impl BuiltinKinds {
    /// Their ids: the built-in kinds are registered first, in `BUILTIN_KIND_NAMES` order.
    pub const IDS: BuiltinKinds = BuiltinKinds {
        reservation: KindId(0),
        committed_pages: KindId(1),
        heap_block: KindId(2),
        mutex: KindId(3),
        rwlock: KindId(4),
        condvar: KindId(5),
        held_lock: KindId(6),
        thread: KindId(7),
        waiter: KindId(8),
        tls_key: KindId(9),
        module: KindId(10),
        exit_hook: KindId(11),
        fd: KindId(12),
        description: KindId(13),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_acquire_resize_release_and_stale_ids_are_refused() {
        let mut resources = Resources::new();
        let kind = resources.register_static_kind("widget", false);
        assert_eq!(
            resources.register_static_kind("widget", false),
            kind,
            "registering twice gives the same kind"
        );
        let a = resources.acquire(kind, 1, 100, 0, Attribution::default());
        let b = resources.acquire(kind, 1, 50, 0, Attribution::default());
        assert_eq!(
            resources.total(kind),
            Totals {
                count: 2,
                bytes: 150
            }
        );
        assert!(resources.resize(a, 3, 300));
        assert_eq!(
            resources.total(kind),
            Totals {
                count: 4,
                bytes: 350
            }
        );
        assert!(resources.release(a).is_some());
        assert!(
            resources.release(a).is_none(),
            "a second release is refused"
        );
        let c = resources.acquire(kind, 1, 1, 0, Attribution::default());
        assert_eq!(c.index, a.index, "the slot is reused");
        assert!(
            resources.release(a).is_none(),
            "the old id does not release the new record"
        );
        assert!(!resources.resize(a, 9, 9));
        assert_eq!(
            resources.total(kind),
            Totals {
                count: 2,
                bytes: 51
            }
        );
        resources.release(b);
        resources.release(c);
        assert_eq!(resources.total(kind), Totals::default());
        assert_eq!(resources.live_records(), 0);
    }

    /// Free records are reused last released first (record indices appear in the trace, so the
    /// order is part of a run's behaviour), a stale id stays refused after its record is reused,
    /// and every record is counted live or free, never both.
    #[test]
    fn free_records_are_reused_last_released_first() {
        let mut resources = Resources::new();
        let kind = resources.register_static_kind("widget", false);
        let ids: Vec<RecordId> = (0..5)
            .map(|_| resources.acquire(kind, 1, 1, 0, Attribution::default()))
            .collect();
        for index in [1, 3, 2] {
            assert!(resources.release_id(ids[index]));
        }
        assert_eq!(resources.live_records(), 2);
        // The indices of `n` acquisitions in a row.
        let acquire = |resources: &mut Resources, n| -> Vec<u32> {
            (0..n)
                .map(|_| {
                    resources
                        .acquire(kind, 1, 1, 0, Attribution::default())
                        .index
                })
                .collect()
        };
        let reused = acquire(&mut resources, 4);
        assert_eq!(
            reused,
            [2, 3, 1, 5],
            "the free records, last released first, then a new one"
        );
        assert_eq!(resources.live_records(), 6);
        assert!(
            !resources.release_id(ids[2]),
            "the id of a reused record's earlier life is refused"
        );
        assert_eq!(resources.live_records(), 6);
        // Released again, they are reused again in the new order.
        for index in [0, 4] {
            assert!(resources.release_id(ids[index]));
        }
        assert_eq!(acquire(&mut resources, 2), [4, 0]);
        assert_eq!(resources.live_records(), 6);
        assert_eq!(resources.total(kind).count, 6);
    }

    /// One label is one site wherever it is written, and a kind acquired from several sites in
    /// turn keeps each site's totals apart: whichever way a slot is found (the pair's hint, the
    /// table by address, the comparison by content), it is the same slot.
    #[test]
    fn site_totals_are_per_label_content_across_alternating_sites() {
        let mut resources = Resources::new();
        let blocks = resources.register_static_kind("block", false);
        let other = resources.register_static_kind("other", false);
        // The same text at another address, as two crates writing one label would have it.
        let grow_again: &'static str = Box::leak(String::from("grow").into_boxed_str());
        let at = |site| Attribution {
            site,
            ..Attribution::default()
        };
        // A pair's first acquisition finds its hint entry unused, and makes no table. (The two
        // pairs' entries differ whatever the label's address: their keys differ only in the
        // kind's lowest bit, which the multiplication carries into the entry's bits.)
        resources.acquire(blocks, 1, 10, 0, at("grow"));
        resources.acquire(other, 1, 1, 0, at("grow"));
        assert_eq!(resources.site_slots_by_address.len(), 0);
        for round in 0..3u64 {
            resources.acquire(blocks, 1, 10, 0, at("grow"));
            resources.acquire(other, 1, 1, 0, at("grow"));
            resources.acquire(blocks, 1, 100, 0, at("shrink"));
            resources.acquire(blocks, 1, 1000 + round, 0, at(grow_again));
        }
        let sites: Vec<(KindId, &str, Totals)> = resources
            .site_totals()
            .iter()
            .map(|entry| (entry.kind, entry.site, entry.totals))
            .collect();
        let totals = |count, bytes| Totals { count, bytes };
        assert_eq!(
            sites,
            vec![
                (blocks, "grow", totals(7, 3043)),
                (other, "grow", totals(4, 4)),
                (blocks, "shrink", totals(3, 300)),
            ]
        );
    }

    /// More labels than there are hint entries, switched between: by pigeonhole, most pairs
    /// find their entry taken by another at every turn, the table by address grows to hold
    /// them, and every label keeps its own slot: for a subject's kind and for a built-in one,
    /// each of whose hints misses at every turn.
    #[test]
    fn labels_sharing_hint_entries_keep_their_own_slots() {
        let mut resources = Resources::new();
        let blocks = resources.register_static_kind("block", false);
        let hint_entries = 1 << SITE_HINT_BITS;
        let labels: Vec<&'static str> = (0..3 * hint_entries)
            .map(|n| &*Box::leak(format!("site {n}").into_boxed_str()))
            .collect();
        let at = |site| Attribution {
            site,
            ..Attribution::default()
        };
        let kinds = [blocks, KINDS.heap_block];
        for kind in kinds {
            for round in 1..=3u64 {
                for &label in &labels {
                    resources.acquire(kind, 1, round, 0, at(label));
                }
            }
        }
        assert!(resources.site_slots_by_address.len() >= labels.len() - hint_entries);
        let sites = resources.site_totals();
        assert_eq!(sites.len(), 2 * labels.len());
        let expected = kinds
            .iter()
            .flat_map(|&kind| labels.iter().map(move |&label| (kind, label)));
        for (entry, (kind, label)) in sites.iter().zip(expected) {
            assert_eq!(
                (entry.kind, entry.site, entry.totals),
                (kind, label, Totals { count: 3, bytes: 6 })
            );
        }
    }

    /// Two labels that start at one address (one a prefix of the other) are two sites, however
    /// often they alternate: the table by address checks the length.
    #[test]
    fn labels_sharing_an_address_keep_their_own_slots() {
        let mut resources = Resources::new();
        let blocks = resources.register_static_kind("block", false);
        let long: &'static str = "grow_table";
        let short = &long[..4];
        let at = |site| Attribution {
            site,
            ..Attribution::default()
        };
        for round in 1..=3u64 {
            resources.acquire(blocks, 1, round, 0, at(long));
            resources.acquire(blocks, 1, 10 * round, 0, at(short));
        }
        let sites: Vec<(&str, Totals)> = resources
            .site_totals()
            .iter()
            .map(|entry| (entry.site, entry.totals))
            .collect();
        assert_eq!(
            sites,
            vec![
                ("grow_table", Totals { count: 3, bytes: 6 }),
                (
                    "grow",
                    Totals {
                        count: 3,
                        bytes: 60
                    }
                ),
            ]
        );
    }

    #[test]
    fn builtin_kinds_have_the_ids_of_their_names() {
        let mut resources = Resources::new();
        let kinds = BuiltinKinds::IDS;
        for (index, name) in BUILTIN_KIND_NAMES.iter().enumerate() {
            assert_eq!(resources.kind_by_name(name), Some(KindId(index as u16)));
        }
        let named = [
            (kinds.reservation, "reservation"),
            (kinds.committed_pages, "committed pages"),
            (kinds.heap_block, "heap block"),
            (kinds.mutex, "mutex"),
            (kinds.rwlock, "rwlock"),
            (kinds.condvar, "condvar"),
            (kinds.held_lock, "held lock"),
            (kinds.thread, "thread"),
            (kinds.waiter, "waiter"),
            (kinds.tls_key, "tls key"),
            (kinds.module, "module"),
            (kinds.exit_hook, "exit hook"),
            (kinds.fd, "fd"),
            (kinds.description, "description"),
        ];
        for (kind, name) in named {
            assert_eq!(resources.kind(kind).name, name);
        }
        assert_eq!(resources.totals().len(), BUILTIN_KIND_NAMES.len());
        let subject_kind = resources.register_kind("fn ptr id", true);
        assert_eq!(subject_kind, KindId(BUILTIN_KIND_NAMES.len() as u16));
    }

    #[test]
    fn keyed_kinds_count_live_keys() {
        let mut resources = Resources::new();
        let ids = resources.register_kind("fn ptr id", true);
        let r1 = resources.acquire(ids, 1, 0, 7, Attribution::default());
        let _r2 = resources.acquire(ids, 1, 0, 7, Attribution::default());
        let _r3 = resources.acquire(ids, 1, 0, 9, Attribution::default());
        assert_eq!(resources.live_keys(ids), 2);
        resources.release(r1);
        assert_eq!(resources.live_keys(ids), 2);
        let listed = resources.live_since(ids, 0);
        assert_eq!(listed.len(), 2);
        assert!(listed[0].serial < listed[1].serial, "oldest first");
    }
}
