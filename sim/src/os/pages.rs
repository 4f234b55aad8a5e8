//! Pages: the simulated address space.
//!
//! Fidelity: a 47-bit (128 TiB) user address space with 4 KiB pages. Reserve (with alignment),
//! commit, decommit, release (whole or part of a reservation) and protect follow mmap/mprotect/
//! madvise(MADV_DONTNEED) on Linux and VirtualAlloc/VirtualFree on Windows closely enough for
//! allocators: reserved memory is not accessible, committed memory reads as zero until written,
//! decommitted memory loses its contents. Page state is kept as runs (spans) per reservation, so
//! reserving 256 GiB (snmalloc's pagemap, #766) costs one map entry, and only pages that hold
//! data cost memory. Not simulated: huge pages, NUMA, overcommit accounting, file mappings.
//!
//! Every access a subject makes through `read`/`write`/`touch` is checked: touching a page that is
//! not committed is a `fault` finding naming the page, its state, who put it in that state and who
//! touched it (mimalloc #904's use-after-unmap). Releasing what was never reserved, or twice, is an
//! `invariant` finding.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::collections::btree_map::{self, Entry};
use std::ops::Range;

use super::host_arena::HostArena;
use super::page_contents::{ContentsStorage, PageContents};
use super::resources::{KINDS, RecordId, Resources};
use super::sorted_map::SortedMap;
use super::{Attribution, Errno, Os, Site};
use crate::faults::FaultKind;
use crate::findings::{Finding, FindingKind};

pub const PAGE_SIZE: u64 = 4096;
pub const ADDRESS_BITS: u32 = 47;
/// The lowest address handed out; the first 64 KiB stay unmapped so that null dereferences fault.
pub const SPACE_START: u64 = 0x1_0000;
pub const SPACE_END: u64 = 1 << ADDRESS_BITS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageState {
    /// Never reserved (or reserved and released long enough ago that the history was reused).
    Free,
    Reserved,
    Committed,
    Decommitted,
    Released,
}

impl PageState {
    pub fn name(self) -> &'static str {
        match self {
            PageState::Free => "free",
            PageState::Reserved => "reserved",
            PageState::Committed => "committed",
            PageState::Decommitted => "decommitted",
            PageState::Released => "released",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
}

impl Prot {
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
    };
    pub const READ: Prot = Prot {
        read: true,
        write: false,
    };
    pub const READ_WRITE: Prot = Prot {
        read: true,
        write: true,
    };

    fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    /// This access's bit in a mask of allowed accesses.
    fn bit(self) -> u8 {
        match self {
            Access::Read => 1,
            Access::Write => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Span {
    end: u64,
    state: PageState,
    prot: Prot,
    /// Who put these pages in this state.
    by: Attribution,
}

/// A live reservation; its extent and who acquired it are the `Region`'s.
#[derive(Debug)]
struct Reservation {
    record: RecordId,
    committed_record: Option<RecordId>,
    committed_pages: u64,
    spans: Spans,
}

impl Reservation {
    /// A new reservation of `[start, end)`, with its record: one run of pages reserved by `by`.
    #[inline(always)]
    fn new(start: u64, end: u64, record: RecordId, by: Attribution) -> Reservation {
        Reservation {
            record,
            committed_record: None,
            committed_pages: 0,
            spans: Spans::One {
                start,
                span: Span {
                    end,
                    state: PageState::Reserved,
                    prot: Prot::NONE,
                    by,
                },
            },
        }
    }

    /// Applies `change` to every span in `[start, end)`, and keeps the reservation's count of
    /// committed pages and its `committed pages` record (in `resources`) in step: `change`
    /// returns the change in committed pages per page of the span (1, -1 or 0); returns the
    /// change in committed pages, which the caller adds to the total. A new record is
    /// attributed to `here`.
    #[inline]
    fn change_spans(
        &mut self,
        start: u64,
        end: u64,
        resources: &mut Resources,
        here: &Attribution,
        change: impl Fn(&mut Span) -> i64,
    ) -> i64 {
        let delta_pages = self.spans.change(start, end, change);
        if delta_pages == 0 {
            return 0;
        }
        self.committed_pages = (self.committed_pages as i64 + delta_pages) as u64;
        let pages = self.committed_pages;
        match self.committed_record {
            Some(record) if pages == 0 => {
                self.committed_record = None;
                resources.release_held(record);
            }
            Some(record) => {
                resources.resize(record, pages, pages * PAGE_SIZE);
            }
            None if pages > 0 => {
                self.committed_record = Some(resources.acquire(
                    KINDS.committed_pages,
                    pages,
                    pages * PAGE_SIZE,
                    0,
                    *here,
                ));
            }
            None => {}
        }
        delta_pages
    }
}

/// A range that `Regions::checked_mut` found inside one reservation: the reservation's base,
/// end and slot.
#[derive(Clone, Copy, Debug)]
struct CheckedRange {
    base: u64,
    reservation_end: u64,
    slot: u32,
    start: u64,
    end: u64,
}

impl CheckedRange {
    /// Whether the range is all of its reservation.
    fn is_whole(&self) -> bool {
        self.start == self.base && self.end == self.reservation_end
    }
}

/// The runs of page state that cover one reservation, each keyed by its first address.
///
/// Most reservations are one run for their whole life (reserved, then committed whole, then
/// released whole), so that case is kept inline and costs no allocation; a reservation whose
/// pages come to differ gets a map. Nothing outside this type can tell the two apart.
///
/// The map is a sorted vector (`SortedMap`): a reservation that is split holds a few dozen runs
/// at most (an allocator's segment, a page's slices committed at a time), whose binary search
/// and insert by a short move cost a fraction of a `BTreeMap`'s (allocator fuzz input 0.9%
/// cheaper). A reservation split into thousands of runs would pay a longer move per split.
#[derive(Debug)]
enum Spans {
    One { start: u64, span: Span },
    Many(SortedMap<u64, Span>),
}

/// The runs a reservation's map has room for when it is first split: an allocator's segment
/// splits into one run per page and gap, and each growth of the vector from one entry was a
/// reallocation (eight made an allocator fuzz input 1.6% cheaper, sixteen 1.1%).
const SPANS_CAPACITY: usize = 8;

impl Spans {
    fn from_map(mut map: SortedMap<u64, Span>) -> Spans {
        if map.len() == 1 {
            let (start, span) = map.pop_first().expect("one entry");
            return Spans::One { start, span };
        }
        Spans::Many(map)
    }

    /// The map form, for changes that split runs.
    fn map(&mut self) -> &mut SortedMap<u64, Span> {
        if let Spans::One { start, span } = *self {
            *self = Spans::Many(SortedMap::one(start, span, SPANS_CAPACITY));
        }
        match self {
            Spans::Many(map) => map,
            Spans::One { .. } => unreachable!("converted above"),
        }
    }

    fn into_map(mut self) -> SortedMap<u64, Span> {
        std::mem::take(self.map())
    }

    /// Applies `change` to every run in `[start, end)`, splitting runs at both ends; returns the
    /// sum of what `change` returns, weighted by the pages of each run.
    #[inline]
    fn change(&mut self, start: u64, end: u64, change: impl Fn(&mut Span) -> i64) -> i64 {
        if let Spans::One {
            start: span_start,
            span,
        } = self
        {
            // The range covers the only run: no split.
            if start <= *span_start && span.end <= end {
                let pages = ((span.end - *span_start) / PAGE_SIZE) as i64;
                return change(span) * pages;
            }
        }
        self.change_split(start, end, change)
    }

    #[inline(never)]
    fn change_split(&mut self, start: u64, end: u64, change: impl Fn(&mut Span) -> i64) -> i64 {
        let spans = self.map();
        // The common shape: the range starts a run and ends with it or inside it (an allocator
        // commits a page's slices at the start of a segment's unused part, and decommits the
        // same slices again). One search, and at most one insert for the rest of the run, where
        // the general splits below search up to six times.
        if let Some(span) = spans.get_mut(&start)
            && end <= span.end
        {
            let rest = *span;
            span.end = end;
            let delta_pages = change(span) * ((end - start) / PAGE_SIZE) as i64;
            if end < rest.end {
                spans.insert(end, rest);
            }
            return delta_pages;
        }
        split_at(spans, start);
        split_at(spans, end);
        let mut delta_pages = 0;
        for (&span_start, span) in spans.range_mut(start..end) {
            let pages = ((span.end - span_start) / PAGE_SIZE) as i64;
            delta_pages += change(span) * pages;
        }
        delta_pages
    }

    /// The run holding `at`, which must lie inside the reservation.
    fn find(&self, at: u64) -> &Span {
        self.find_with_start(at).1
    }

    /// The run holding `at`, with its first address.
    fn find_with_start(&self, at: u64) -> (u64, &Span) {
        match self {
            Spans::One { start, span } => (*start, span),
            Spans::Many(map) => {
                let (start, span) = map
                    .last_at_or_before(&at)
                    .expect("spans cover the reservation");
                (*start, span)
            }
        }
    }
}

/// A page that refuses an access: its state, and who put it in that state.
struct Refusal {
    page: u64,
    state: PageState,
    by: Option<Attribution>,
}

/// What a report says about a range released earlier.
#[derive(Clone, Copy, Debug)]
struct ReleasedRange {
    by: Attribution,
    acquired: Attribution,
}

/// A piece of the address space that is not free: a live reservation, or a range released
/// earlier (kept so that a later touch can say who released it). Pieces never overlap, so one
/// ordered map answers both "which reservation holds this address" and "who released it", and
/// reserving again where a release left a piece of the same size replaces a value in place.
#[derive(Debug)]
struct Region {
    end: u64,
    /// Who acquired the reservation (the same attribution as its record's). A released range
    /// keeps it, so that a touch can say who had acquired the memory; kept outside `state` so
    /// that releasing a whole reservation leaves it where it is instead of copying it.
    acquired: Attribution,
    state: RegionState,
}

impl Region {
    /// The reservation of a region known to be one (`Regions::checked_mut` found it).
    #[inline(always)]
    fn reservation_mut(&mut self) -> &mut Reservation {
        let RegionState::Reserved(reservation) = &mut self.state else {
            unreachable!("checked_mut found a reservation")
        };
        reservation
    }

    /// Whether this is a released range that ends at `end`.
    fn is_released_up_to(&self, end: u64) -> bool {
        matches!(self.state, RegionState::Released { .. }) && self.end == end
    }
}

/// Makes the released range `region`, which covers exactly `[start, region.end)`, the new
/// reservation of those addresses, with its `record`, acquired by `acquired` (its end stays). It
/// takes no access away: see `Regions::at_mut_keeping_runs`.
#[inline(always)]
fn claim_in_place(region: &mut Region, start: u64, record: RecordId, acquired: Attribution) {
    debug_assert!(matches!(region.state, RegionState::Released { .. }));
    region.acquired = acquired;
    // The run's attribution is read back from the region, where it was just written: the same
    // value taken from `acquired` went through a copy on the stack (4 instructions more).
    region.state =
        RegionState::Reserved(Reservation::new(start, region.end, record, region.acquired));
}

#[derive(Debug)]
enum RegionState {
    Reserved(Reservation),
    /// Released by `by`.
    Released {
        by: Attribution,
    },
}

/// The regions, ordered by start, with their values in a slab so that a region found once can
/// be reached again by its slot without a search. A hint remembers the slot of the last region
/// found: a reserve, its commit and its release (or a run of touches inside one reservation)
/// find their region at once. The hint only saves work; every answer is what the ordered map
/// alone would give.
#[derive(Debug, Default)]
struct Regions {
    /// Start → slot.
    by_start: BTreeMap<u64, u32>,
    slots: Vec<Option<(u64, Region)>>,
    free_slots: Vec<u32>,
    hint: Cell<u32>,
    /// The committed runs that the last checked accesses fell in (see `RememberedRuns`).
    runs: RememberedRuns,
}

/// The committed runs that the last checked accesses fell in, with their protection: subjects
/// touch the same few runs over and over (a segment's header, the page a block is in), and these
/// answer them without a search. Every change that may take access away (a release through
/// `Regions::checked_mut`, `Regions::insert`, `Regions::remove`) forgets them all, so none
/// outlives the state it was read from; a decommit or a protect only those over its pages
/// (`Forget::Overlapping`); a commit, which only grants access, keeps them (`Forget::Nothing`,
/// `Regions::at_mut_keeping_runs`). A type of their own, apart from the regions', so that a
/// commit can ask them while it holds the region it found (`Regions::checked_mut`).
/// An entry that allows nothing (`AccessibleRun::NONE`, or a forgotten run) remembers nothing.
#[derive(Debug, Default)]
struct RememberedRuns {
    /// Each run's start is here, its end in `accessible_ends` and what it allows in
    /// `accessible_allowed`, at the same index: arrays of one field each, so that an index
    /// reaches every field with a scale the address itself can take (a run of two bounds, 16
    /// bytes, took an instruction more to index).
    accessible_starts: [Cell<u64>; REMEMBERED_RUNS],
    accessible_ends: [Cell<u64>; REMEMBERED_RUNS],
    /// What each remembered run allows (`AccessibleRun::allowed`), apart from its bounds so that
    /// forgetting them all is one store of four bytes rather than four stores of one (3
    /// instructions off every release; the allocator fuzz input 0.04% dearer, by where the
    /// compiler now inlines its touches).
    accessible_allowed: Cell<[u8; REMEMBERED_RUNS]>,
    /// The index of the remembered run the next one replaces (round robin).
    accessible_next: Cell<u8>,
}

/// How many committed runs checked access remembers. Eight would miss less often (an allocator
/// goes between the header slices of several segments and the pages it allocates in them: of
/// the allocator corpus's word accesses, 96,000 missed four and searched, 44,000 missed eight)
/// and counted 1% fewer instructions per fuzz input, but took 18% longer on that corpus
/// (`fuzz_exec allocator 2000 corpus/allocator`, 145 -> 172 µs an input, alternating runs of
/// the two builds). A fuzzer sees the time, not the count. Once the runs were asked with no
/// branch until the answer (`remembered_allows`), eight were tried again, asked in one word of
/// eight bytes: still slower (112 -> 131 µs an input).
const REMEMBERED_RUNS: usize = 4;

/// Which remembered runs a change of a reservation's pages forgets (`Regions::checked_mut`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forget {
    /// None: a commit only grants access.
    Nothing,
    /// Those over the changed pages: a decommit or a protect changes those pages alone.
    Overlapping,
    /// All of them: a release. Forgetting only the runs over a released range was measured: it
    /// made an allocator fuzz input 0.8% cheaper and the page cycle 16 instructions dearer.
    All,
}

#[derive(Clone, Copy, Debug)]
struct AccessibleRun {
    start: u64,
    end: u64,
    /// The accesses the run's protection allows, one bit each (`Access::bit`): a mask, so that
    /// the check of every remembered run on every access is an `and` rather than a match.
    allowed: u8,
}

impl AccessibleRun {
    /// No run: it holds no address and allows nothing.
    const NONE: AccessibleRun = AccessibleRun {
        start: 0,
        end: 0,
        allowed: 0,
    };

    fn new(start: u64, end: u64, prot: Prot) -> AccessibleRun {
        let bit_if = |allowed: bool, access: Access| if allowed { access.bit() } else { 0 };
        AccessibleRun {
            start,
            end,
            allowed: bit_if(prot.read, Access::Read) | bit_if(prot.write, Access::Write),
        }
    }
}

impl Default for AccessibleRun {
    fn default() -> AccessibleRun {
        AccessibleRun::NONE
    }
}

impl RememberedRuns {
    /// What each remembered run allows, one cell per run.
    #[inline(always)]
    fn allowed_cells(&self) -> &[Cell<u8>; REMEMBERED_RUNS] {
        self.accessible_allowed.as_array_of_cells()
    }

    /// The remembered run at `index`.
    #[inline(always)]
    fn remembered_run(&self, index: usize) -> AccessibleRun {
        AccessibleRun {
            start: self.accessible_starts[index].get(),
            end: self.accessible_ends[index].get(),
            allowed: self.allowed_cells()[index].get(),
        }
    }

    /// Puts `run` in the remembered run at `index`.
    #[inline(always)]
    fn set_remembered_run(&self, index: usize, run: AccessibleRun) {
        self.accessible_starts[index].set(run.start);
        self.accessible_ends[index].set(run.end);
        self.allowed_cells()[index].set(run.allowed);
    }

    /// A run that allows nothing answers no access, so forgetting one clears what it allows and
    /// leaves its bounds: all of them at once, one store.
    fn forget_accessible(&self) {
        self.accessible_allowed.set([0; REMEMBERED_RUNS]);
    }

    /// Forgets the remembered runs that overlap `[start, end)`, and only those: a change to
    /// those pages alone (a decommit or a protect) leaves every other page in its state. An
    /// allocator that purges one page's slices goes on touching its segment's header.
    fn forget_accessible_in(&self, start: u64, end: u64) {
        for index in 0..REMEMBERED_RUNS {
            let run = self.remembered_run(index);
            if run.start < end && start < run.end {
                self.allowed_cells()[index].set(0);
            }
        }
    }

    /// True when `[addr, end)` lies in one remembered run whose protection allows `access`.
    ///
    /// Every run is asked, with no branch until the answer: which run holds an access changes
    /// from one access to the next, and a branch per run was mispredicted on many of an
    /// allocator's header words, where the one branch on the answer seldom is. Bit `8 * i` of
    /// `holding` is set when run `i` holds the range; times the access's bit, it lands on that
    /// bit of run `i`'s byte of what the runs allow, read as one word. Asking the runs with no
    /// branch took an allocator fuzz input from 1.29 M to 1.45 M instructions and its corpus from
    /// 137 to 119 µs an input; doing it in one word, where LLVM had used vector registers, took
    /// 2% of the instructions off again and the time from 115 to 111 µs (`fuzz_exec allocator
    /// 3000 corpus/allocator`, alternating builds).
    #[inline(always)]
    fn remembered_allows(&self, addr: u64, end: u64, access: Access) -> bool {
        let mut holding = 0u32;
        for index in 0..REMEMBERED_RUNS {
            let holds = (self.accessible_starts[index].get() <= addr)
                & (end <= self.accessible_ends[index].get());
            holding |= u32::from(holds) << (8 * index);
        }
        let allowed = u32::from_le_bytes(self.accessible_allowed.get());
        (holding * u32::from(access.bit())) & allowed != 0
    }

    /// True when `[addr, end)` lies in one remembered run whose mask of allowed accesses is
    /// `allowed`: a commit asks whether its pages are committed already. Every run is asked with
    /// no branch until the answer, as in `remembered_allows`.
    #[inline(always)]
    fn remembered_as(&self, addr: u64, end: u64, allowed: u8) -> bool {
        let mut held = false;
        for index in 0..REMEMBERED_RUNS {
            let run = self.remembered_run(index);
            held |= (run.start <= addr) & (end <= run.end) & (run.allowed == allowed);
        }
        held
    }

    fn remember_accessible(&self, run: AccessibleRun) {
        // `accessible_next` is always below `REMEMBERED_RUNS`; taking it modulo the length (a
        // mask) shows the compiler so, which drops the bounds check.
        let next = usize::from(self.accessible_next.get()) % REMEMBERED_RUNS;
        self.set_remembered_run(next, run);
        self.accessible_next
            .set(((next + 1) % REMEMBERED_RUNS) as u8);
    }

    /// `remember_accessible` for a run of pages committed again, which takes no place when a
    /// remembered run already holds it, and grows a remembered run it touches that allows the
    /// same accesses (two such runs make one) rather than taking a place of its own: an
    /// allocator commits the same slices again and again, and each copy would push out a run
    /// its other accesses need.
    fn remember_accessible_grown(&self, run: AccessibleRun) {
        for index in 0..REMEMBERED_RUNS {
            let mut grown = self.remembered_run(index);
            if grown.allowed != run.allowed {
                continue;
            }
            if grown.start <= run.start && run.end <= grown.end {
                // Already remembered (an allocator commits again the pages a freed page left
                // committed): a copy would only push out another run.
                return;
            }
            if grown.end == run.start {
                grown.end = run.end;
            } else if grown.start == run.end {
                grown.start = run.start;
            } else {
                continue;
            }
            self.set_remembered_run(index, grown);
            return;
        }
        self.remember_accessible(run);
    }
}

/// The region in `slot` of `slots` (`Regions::at_mut_keeping_runs`).
#[inline(always)]
fn slot_mut(slots: &mut [Option<(u64, Region)>], slot: u32) -> &mut Region {
    &mut slots[slot as usize].as_mut().expect("live slot").1
}

impl Regions {
    fn at(&self, slot: u32) -> &Region {
        &self.slots[slot as usize].as_ref().expect("live slot").1
    }

    /// The region in `slot`, for a change that takes no access away from a remembered run: a
    /// commit (which only grants access) or the claim of released space (which holds no
    /// committed run). Every remembered run stays committed with at least the protection it was
    /// remembered with; debug builds check each answer against the search (`Os::touch`). Other
    /// changes go through `checked_mut`, which forgets the runs they may take access from.
    fn at_mut_keeping_runs(&mut self, slot: u32) -> &mut Region {
        slot_mut(&mut self.slots, slot)
    }

    /// The slot of the region starting exactly at `start`.
    #[inline]
    fn slot_of(&self, start: u64) -> Option<u32> {
        let hint = self.hint.get();
        if let Some(Some((at, _))) = self.slots.get(hint as usize)
            && *at == start
        {
            return Some(hint);
        }
        let slot = *self.by_start.get(&start)?;
        self.hint.set(slot);
        Some(slot)
    }

    /// The reservation that contains all of `[start, end)`, with its base, end and slot.
    #[inline]
    fn reservation_of(&self, start: u64, end: u64) -> Option<(u64, u64, u32, &Reservation)> {
        // The hinted region answers at once when it is the reservation asked for; anything else
        // (a released range, another region) is left to the search, which gives the same answer.
        self.hinted_reservation(start, end)
            .or_else(|| self.searched_reservation(start, end))
    }

    /// `reservation_of` when the hinted region is the reservation asked for.
    #[inline(always)]
    fn hinted_reservation(&self, start: u64, end: u64) -> Option<(u64, u64, u32, &Reservation)> {
        let hint = self.hint.get();
        if let Some(Some((base, region))) = self.slots.get(hint as usize)
            && let RegionState::Reserved(reservation) = &region.state
            && *base <= start
            && end <= region.end
        {
            return Some((*base, region.end, hint, reservation));
        }
        None
    }

    /// `reservation_of` by a search, whose answer becomes the hint.
    fn searched_reservation(&self, start: u64, end: u64) -> Option<(u64, u64, u32, &Reservation)> {
        let (base, slot) = self.last_at_or_before_searched(start)?;
        let region = self.at(slot);
        match &region.state {
            RegionState::Reserved(reservation) if end <= region.end => {
                Some((base, region.end, slot, reservation))
            }
            _ => None,
        }
    }

    /// The checked range `[addr, addr + len)` and the region of the reservation that holds it,
    /// for a commit, decommit, release or protect, when the range is page-aligned, not empty and
    /// inside one reservation; `None` otherwise, for the caller to report. `forget` says which
    /// remembered runs the change may take access from (see `Forget`). The region is borrowed
    /// from the regions alone, so that the change can hold it while it consults the rest of the
    /// OS: it is found once, where its slot looked up again would cost a bounds check and two
    /// tests of what the slot holds. The remembered runs come with it, for a commit to ask while
    /// it holds the region.
    #[inline(always)]
    fn checked_mut(
        &mut self,
        addr: u64,
        len: u64,
        forget: Forget,
    ) -> Option<(CheckedRange, &mut Region, &RememberedRuns)> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return None;
        }
        let end = addr.saturating_add(page_ceil(len));
        let checked = |(base, reservation_end, slot, _)| CheckedRange {
            base,
            reservation_end,
            slot,
            start: addr,
            end,
        };
        // Forgotten before the search rather than once the region is found: stores between
        // finding the region and changing it would make the compiler test it again. A range
        // refused then loses the runs for nothing, which only costs a later search.
        match forget {
            Forget::Nothing => {}
            Forget::Overlapping => self.runs.forget_accessible_in(addr, end),
            Forget::All => self.runs.forget_accessible(),
        }
        // Each path indexes the slot it found itself, so that in the hinted path the compiler
        // folds the index, its bounds check and its tests into the ones that found it (a slot
        // found either way and then indexed once is indexed and tested twice).
        match self.hinted_reservation(addr, end) {
            Some(found) => {
                let range = checked(found);
                Some((range, slot_mut(&mut self.slots, range.slot), &self.runs))
            }
            None => {
                let range = checked(self.searched_reservation(addr, end)?);
                Some((range, slot_mut(&mut self.slots, range.slot), &self.runs))
            }
        }
    }

    /// The last region starting at or before `addr`, with its start and slot.
    #[inline]
    fn last_at_or_before(&self, addr: u64) -> Option<(u64, u32)> {
        let hint = self.hint.get();
        if let Some(Some((start, region))) = self.slots.get(hint as usize) {
            // Regions never overlap: one that holds `addr` is the last to start before it.
            if *start <= addr && addr < region.end {
                return Some((*start, hint));
            }
        }
        self.last_at_or_before_searched(addr)
    }

    /// `last_at_or_before` without the hint: a search of the ordered map, which then becomes the
    /// hint.
    fn last_at_or_before_searched(&self, addr: u64) -> Option<(u64, u32)> {
        let (&start, &slot) = self.by_start.range(..=addr).next_back()?;
        self.hint.set(slot);
        Some((start, slot))
    }

    fn insert(&mut self, start: u64, region: Region) -> u32 {
        self.runs.forget_accessible();
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some((start, region));
                slot
            }
            None => {
                self.slots.push(Some((start, region)));
                (self.slots.len() - 1) as u32
            }
        };
        let previous = self.by_start.insert(start, slot);
        debug_assert!(previous.is_none(), "regions never share a start");
        self.hint.set(slot);
        slot
    }

    fn remove(&mut self, start: u64) -> Option<Region> {
        self.runs.forget_accessible();
        let slot = self.by_start.remove(&start)?;
        let (_, region) = self.slots[slot as usize].take().expect("live slot");
        self.free_slots.push(slot);
        Some(region)
    }
}

/// The free address ranges, never touching one another (a range given back merges with its
/// neighbours).
///
/// First fit carves from the lowest range that holds a request, which is almost always the
/// lowest of all, and a release most often gives back what lies directly below it. So the lowest
/// range is kept apart from the map: the common reserve and release change one field of it
/// instead of going through the tree.
#[derive(Debug)]
struct FreeRanges {
    /// The lowest free range, `[start, end)`; `NO_RANGE` when no address is free.
    lowest: (u64, u64),
    /// The other free ranges, all above `lowest`, end → start. Keyed by end so that first fit,
    /// which carves from the start of a range, changes a value instead of a key.
    above: BTreeMap<u64, u64>,
    /// The end (key) of the range in `above` that the last carve left a remainder in: a release
    /// most often gives back what lies directly below it, so it is tried before a search.
    carved_from: u64,
}

/// `FreeRanges::lowest` when no address is free: an empty range that nothing fits in and that
/// every range given back lies below.
const NO_RANGE: (u64, u64) = (u64::MAX, u64::MAX);

impl FreeRanges {
    /// `[start, end)` free, nothing else.
    fn new(start: u64, end: u64) -> FreeRanges {
        FreeRanges {
            lowest: (start, end),
            above: BTreeMap::new(),
            carved_from: end,
        }
    }

    /// First fit with alignment, deterministic and simple: takes `len` bytes aligned to `align`
    /// out of the first free range that holds them, and returns their base.
    #[inline]
    fn carve(&mut self, len: u64, align: u64) -> Option<u64> {
        let (start, end) = self.lowest;
        let Some(base) = fit_in(start, end, len, align) else {
            return self.carve_above(len, align);
        };
        let top = base + len;
        if start < base {
            // Alignment leaves a gap below the base: it stays the lowest, and what is left above
            // the carve joins the others.
            self.lowest = (start, base);
            if top < end {
                self.above.insert(end, top);
                self.carved_from = end;
            }
        } else if top < end {
            self.lowest.0 = top;
        } else {
            // All of the lowest range is taken: the next one up becomes the lowest.
            self.lowest = self
                .above
                .pop_first()
                .map_or(NO_RANGE, |(end, start)| (start, end));
        }
        Some(base)
    }

    /// `carve` from a range above the lowest, which does not hold the request. Out of line: the
    /// common reserve never gets here.
    #[cold]
    #[inline(never)]
    fn carve_above(&mut self, len: u64, align: u64) -> Option<u64> {
        let (base, end) = self
            .above
            .iter()
            .find_map(|(&end, &start)| Some((fit_in(start, end, len, align)?, end)))?;
        let Entry::Occupied(range) = self.above.entry(end) else {
            unreachable!("found above")
        };
        self.carved_from = end;
        if let Some((end, start)) = take_from_free_range(range, base, base + len) {
            self.above.insert(end, start);
        }
        Some(base)
    }

    /// Makes `[start, end)`, which was not free, free again.
    #[inline]
    fn give(&mut self, start: u64, end: u64) {
        let (lowest_start, lowest_end) = self.lowest;
        if end == lowest_start {
            // Directly below the lowest range, so no range ends at `start`: the lowest grows down.
            self.lowest.0 = start;
        } else if end < lowest_start {
            // Below the lowest range and apart from it: the new lowest.
            if self.lowest != NO_RANGE {
                self.above.insert(lowest_end, lowest_start);
            }
            self.lowest = (start, end);
        } else {
            self.give_above(start, end);
        }
    }

    /// `give` above the lowest range. Out of line: the common release never gets here.
    #[inline(never)]
    fn give_above(&mut self, mut start: u64, end: u64) {
        let above = &mut self.above;
        if start == self.lowest.1 {
            // The lowest range grows up, and takes in the range that follows if it touches.
            self.lowest.1 = end;
            if let Some(next) = above.first_entry()
                && *next.get() == end
            {
                self.lowest.1 = next.remove_entry().0;
            }
            return;
        }
        // The range that ends directly at `start`, if any, merges in.
        if let Some(before_start) = above.remove(&start) {
            start = before_start;
        }
        // The range that follows is most often the one the last carve left a remainder in: try
        // that one before a search.
        if let Some(after_start) = above.get_mut(&self.carved_from)
            && *after_start == end
        {
            *after_start = start;
            return;
        }
        // Otherwise it is the first range ending after `end`, if it starts there.
        match above.range_mut(end + 1..).next() {
            Some((_, after_start)) if *after_start == end => *after_start = start,
            _ => {
                above.insert(end, start);
            }
        }
    }
}

pub(crate) struct PagesState {
    free: FreeRanges,
    /// Reservations and released ranges by start address; they never overlap.
    regions: Regions,
    /// Live reservations: what `reservations_max` bounds.
    reservations_live: u64,
    /// Contents of committed pages that were written.
    contents: PageContents,
    host: Option<HostArena>,
    /// The subject whose `SubjectInfo` leaves `host_backed` false, set by the runner before the
    /// subject is made: `enable_host_arena` then refuses it, so that no real reservation is made
    /// in a process where a crash of real code on it would end the tool with no report.
    host_arena_undeclared_by: Option<&'static str>,
    /// What `enable_host_arena` said when it refused, for the runner's finding.
    host_arena_refusal: Option<String>,
    /// The real third-party code running on the host arena now (`dlmalloc_malloc`), so that a
    /// crash inside it can name a site; `None` while the simulation's own code runs.
    host_code: Option<Site>,
    committed_pages_total: u64,
}

impl PagesState {
    /// A fresh address space, whose page contents take the index and lists `contents` holds
    /// (see `Os::new`).
    pub(crate) fn new_in(contents: &mut ContentsStorage) -> PagesState {
        PagesState {
            free: FreeRanges::new(SPACE_START, SPACE_END),
            regions: Regions::default(),
            reservations_live: 0,
            contents: PageContents::new_in(contents),
            host: None,
            host_arena_undeclared_by: None,
            host_arena_refusal: None,
            host_code: None,
            committed_pages_total: 0,
        }
    }

    /// The reservation that contains all of `[start, end)`, with its base, end and slot.
    #[inline]
    fn reservation_of(&self, start: u64, end: u64) -> Option<(u64, u64, u32, &Reservation)> {
        self.regions.reservation_of(start, end)
    }

    /// Hands the page contents' emptied index and lists to `contents`, for the next `new_in`.
    pub(crate) fn keep_storage(&mut self, contents: &mut ContentsStorage) {
        self.contents.keep_storage(contents);
    }

    /// Adds `delta_pages` (which may be negative) to the total of committed pages.
    fn count_committed(&mut self, delta_pages: i64) {
        self.committed_pages_total = (self.committed_pages_total as i64 + delta_pages) as u64;
    }

    /// True when `[addr, end)` lies in a committed run remembered from an earlier access and
    /// its protection allows `access`.
    #[inline]
    fn remembered_allows(&self, addr: u64, end: u64, access: Access) -> bool {
        self.regions.runs.remembered_allows(addr, end, access)
    }

    /// The first page of `[addr, end)` that refuses `access`, or `None` when every page allows
    /// it. An access that lies in one committed run leaves that run remembered for the next.
    fn first_refusal(&self, addr: u64, end: u64, access: Access) -> Option<Refusal> {
        let mut at = page_floor(addr);
        while at < end {
            let Some((_, _, _, reservation)) = self.reservation_of(at, at + 1) else {
                let (state, by) = self.unreserved_state(at);
                return Some(Refusal {
                    page: at,
                    state,
                    by,
                });
            };
            let (start, span) = reservation.spans.find_with_start(at);
            if span.state != PageState::Committed || !span.prot.allows(access) {
                return Some(Refusal {
                    page: at,
                    state: span.state,
                    by: Some(span.by),
                });
            }
            if start <= addr && end <= span.end {
                self.regions
                    .runs
                    .remember_accessible(AccessibleRun::new(start, span.end, span.prot));
            }
            at = span.end;
        }
        None
    }

    /// `first_refusal` for a debug check of a remembered answer: the same answer, with the
    /// remembered runs and the region hint left as they were, so that a debug build remembers
    /// (and forgets) what a release build does, and its tests exercise the same answers.
    fn first_refusal_unobserved(&self, addr: u64, end: u64, access: Access) -> Option<Refusal> {
        let regions = &self.regions;
        let runs = &regions.runs;
        let remembered: [AccessibleRun; REMEMBERED_RUNS] =
            std::array::from_fn(|index| runs.remembered_run(index));
        let (next, hint) = (runs.accessible_next.get(), regions.hint.get());
        let refusal = self.first_refusal(addr, end, access);
        for (index, run) in remembered.into_iter().enumerate() {
            runs.set_remembered_run(index, run);
        }
        runs.accessible_next.set(next);
        regions.hint.set(hint);
        refusal
    }

    /// The state of an address no reservation holds: released (and by whom), or free.
    fn unreserved_state(&self, addr: u64) -> (PageState, Option<Attribution>) {
        match self.released_at(addr) {
            Some(range) => (PageState::Released, Some(range.by)),
            None => (PageState::Free, None),
        }
    }

    /// The region (a live reservation or a released range) that holds `addr`, with its start.
    fn region_holding(&self, addr: u64) -> Option<(u64, &Region)> {
        let (start, slot) = self.regions.last_at_or_before(addr)?;
        let region = self.regions.at(slot);
        (addr < region.end).then_some((start, region))
    }

    fn released_at(&self, addr: u64) -> Option<ReleasedRange> {
        let (_, region) = self.region_holding(addr)?;
        match region.state {
            RegionState::Released { by } => Some(ReleasedRange {
                by,
                acquired: region.acquired,
            }),
            RegionState::Reserved(_) => None,
        }
    }
}

fn page_floor(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

const WORD_BYTES: u64 = 8;

/// The page of the word at `addr` and the word's offset in it, when all eight bytes lie in that
/// page. Addresses past the simulated space are left to the general path, so that `addr + 8`
/// never overflows.
#[inline]
fn word_in_one_page(addr: u64) -> Option<(u64, usize)> {
    let page = page_floor(addr);
    let offset = addr - page;
    (offset <= PAGE_SIZE - WORD_BYTES && addr < SPACE_END).then_some((page, offset as usize))
}

/// Calls `copy(page, offset in the page, the caller's bytes for it)` for each piece of
/// `[addr, addr + len)` that one page holds, in order: how `read` and `write` copy. Always
/// inlined, so that each caller's loop is what it was when each had its own.
#[inline(always)]
fn for_each_page_piece(addr: u64, len: usize, mut copy: impl FnMut(u64, usize, Range<usize>)) {
    let mut done = 0usize;
    while done < len {
        let at = addr + done as u64;
        let page = page_floor(at);
        let offset = (at - page) as usize;
        let chunk = (PAGE_SIZE as usize - offset).min(len - done);
        copy(page, offset, done..done + chunk);
        done += chunk;
    }
}

fn page_ceil(addr: u64) -> u64 {
    addr.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// The base of `len` bytes aligned to `align` at the start of the free range `[start, end)`, if
/// they fit in it.
fn fit_in(start: u64, end: u64, len: u64, align: u64) -> Option<u64> {
    let base = start.checked_add(align - 1)? & !(align - 1);
    let top = base.checked_add(len)?;
    (top <= end).then_some(base)
}

/// Takes `[base, top)` out of the free range in `range` (end → start). What stays above `top`
/// keeps the entry; what stays below `base` is returned (end → start) for the caller to insert
/// once the entry is given up.
fn take_from_free_range(
    mut range: btree_map::OccupiedEntry<'_, u64, u64>,
    base: u64,
    top: u64,
) -> Option<(u64, u64)> {
    let (end, start) = (*range.key(), *range.get());
    if top < end {
        *range.get_mut() = top;
    } else {
        range.remove();
    }
    (start < base).then_some((base, start))
}

/// Makes `at` a span boundary (if it falls inside a span).
fn split_at(spans: &mut SortedMap<u64, Span>, at: u64) {
    let Some((_, span)) = spans.last_before_mut(&at) else {
        return;
    };
    if span.end > at {
        let tail = *span;
        span.end = at;
        spans.insert(at, tail);
    }
}

/// Human-readable byte counts for reports: `216 B`, `64 KiB`, `256 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    // The largest unit that fits, exact when it divides: `127.8 TiB`, not `130816 GiB`.
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} B")
}

impl Os {
    /// Backs simulated memory with one real reservation of `len` bytes, so that real third-party
    /// code can use the bytes directly (`host_ptr` gives the real address of a simulated one;
    /// see `HostArena`). Call it in `Subject::new`, before any reserve, and set
    /// `SubjectInfo::host_backed`: the runner runs such a subject in a child process, and for
    /// any other this refuses, saying what to set, and the runner reports the refusal.
    pub fn enable_host_arena(&mut self, len: u64) -> Result<(), String> {
        if let Some(subject) = self.pages.host_arena_undeclared_by {
            let asker = if self.position.before_first_op() {
                format!("`{subject}::new`")
            } else {
                format!("op `{}` of `{subject}`", self.position.op_name)
            };
            let refusal = format!(
                "{asker} asked for the host arena (`Os::enable_host_arena`), but `{subject}`'s \
                 `info()` leaves `host_backed` false: set `host_backed: true` in its \
                 `SubjectInfo`, so that its runs go in a child process where a crash of real \
                 code on that memory becomes a `fault` finding instead of ending the tool with \
                 no report"
            );
            self.pages.host_arena_refusal = Some(refusal.clone());
            if !self.position.before_first_op() {
                // In an op the subject goes on with the error, and the runner, which reports a
                // refusal in `new` itself, never hears of it: the refusal is a finding at the op.
                let position = self.position;
                self.report(position.subject_failed(
                    subject,
                    position.op_name,
                    refusal.clone(),
                    "",
                ));
            }
            return Err(refusal);
        }
        if self.pages.reservations_live > 0 {
            return Err("the host arena must be enabled before the first reservation".into());
        }
        let arena = HostArena::new(len)?;
        self.pages.free = FreeRanges::new(arena.sim_base(), arena.sim_base() + arena.len());
        self.pages.host = Some(arena);
        Ok(())
    }

    /// Makes `enable_host_arena` refuse, naming `subject`, whose `SubjectInfo` does not declare
    /// `host_backed`: the runner's, before it makes the subject in its own process.
    pub(crate) fn refuse_host_arena(&mut self, subject: &'static str) {
        self.pages.host_arena_undeclared_by = Some(subject);
    }

    /// What `enable_host_arena` said when it refused (see `refuse_host_arena`), if it did.
    pub(crate) fn host_arena_refusal(&self) -> Option<&str> {
        self.pages.host_arena_refusal.as_deref()
    }

    /// Whether `enable_host_arena` has backed this OS's memory with real bytes.
    pub fn host_arena_enabled(&self) -> bool {
        self.pages.host.is_some()
    }

    /// The real address behind a simulated one, when a host arena backs the memory. Code that
    /// dereferences it bypasses the checks; the arena's protections catch what they can.
    pub fn host_ptr(&self, addr: u64) -> Option<*mut u8> {
        self.pages
            .host
            .as_ref()
            .and_then(|arena| arena.host_ptr(addr))
    }

    /// The simulated address behind a real pointer into the host arena.
    pub fn sim_addr(&self, ptr: *const u8) -> Option<u64> {
        self.pages
            .host
            .as_ref()
            .and_then(|arena| arena.sim_addr(ptr))
    }

    /// Reserves `len` bytes of address space aligned to `align` (a power of two; at least a page).
    pub fn reserve(&mut self, len: u64, align: u64, site: Site) -> Result<u64, Errno> {
        let len = page_ceil(len.max(1));
        let align = align.max(PAGE_SIZE);
        if !align.is_power_of_two() {
            self.invariant(
                "reservation",
                site,
                format!("reserve with alignment {align:#x}, which is not a power of two"),
            );
            return Err(Errno::Einval);
        }
        if self.inject(FaultKind::Reserve, site) {
            return Err(Errno::Enomem);
        }
        if self.pages.reservations_live >= self.limits.reservations_max {
            self.budget("reservations_max", self.limits.reservations_max, site);
            return Err(Errno::Enomem);
        }
        let Some(base) = self.pages.free.carve(len, align) else {
            self.syscall("pages.reserve_failed", len, align);
            self.address_space_exhausted(len, site);
            return Err(Errno::Enomem);
        };
        let record = self
            .resources
            .acquire_at(KINDS.reservation, 1, len, 0, &self.position, site);
        self.pages.reservations_live += 1;
        // Forget release history that this reservation reuses.
        self.claim(base, base + len, record, site);
        self.syscall("pages.reserve", base, len);
        Ok(base)
    }

    /// Puts the new reservation of `[start, end)`, with its `record`, acquired now by `site`,
    /// over that range (which was free), forgetting the parts of earlier releases it reuses.
    /// Given the reservation's parts rather than its region, so that the common case writes
    /// them straight into the slot it reuses: a region built first was kept on the stack for
    /// the search that the other cases pass it to.
    #[inline(always)]
    fn claim(&mut self, start: u64, end: u64, record: RecordId, site: Site) {
        // Common case: the range is exactly what the release of the region last found left (a
        // reserve that follows a release of the same size). The hinted slot is looked at here,
        // and only here, so that this case indexes the slab once.
        let regions = &mut self.pages.regions;
        if let Some(Some((at, region))) = regions.slots.get_mut(regions.hint.get() as usize)
            && *at == start
            && region.is_released_up_to(end)
        {
            // `self.here`, spelt out, as the region holds a borrow of `self.pages`.
            let acquired = Attribution {
                position: self.position,
                site,
            };
            claim_in_place(region, start, record, acquired);
            return;
        }
        self.claim_searched(start, end, record, site);
    }

    /// `claim` when the hinted region is not the one: what is left at `start` is found by a
    /// search. Kept out of line, like `release_part`.
    #[inline(never)]
    fn claim_searched(&mut self, start: u64, end: u64, record: RecordId, site: Site) {
        let here = self.here(site);
        let regions = &mut self.pages.regions;
        if let Some(slot) = regions.slot_of(start) {
            let region = regions.at_mut_keeping_runs(slot);
            if region.is_released_up_to(end) {
                claim_in_place(region, start, record, here);
                return;
            }
        }
        let reserved = Region {
            end,
            acquired: here,
            state: RegionState::Reserved(Reservation::new(start, end, record, here)),
        };
        self.claim_overlapping(start, reserved);
    }

    /// `claim` over released ranges that do not match the new reservation exactly.
    fn claim_overlapping(&mut self, start: u64, reserved: Region) {
        let end = reserved.end;
        let regions = &mut self.pages.regions;
        // Released ranges never overlap, so those overlapping `[start, end)` are the one
        // before `start` (if it reaches past it) and those starting inside.
        let before = regions
            .by_start
            .range(..start)
            .next_back()
            .filter(|(_, slot)| regions.at(**slot).end > start)
            .map(|(&at, _)| at);
        let inside = regions.by_start.range(start..end).map(|(&at, _)| at);
        let overlapping: Vec<u64> = before.into_iter().chain(inside).collect();
        for at in overlapping {
            let Some(Region {
                end: range_end,
                acquired,
                state: RegionState::Released { by },
            }) = regions.remove(at)
            else {
                unreachable!("free space overlaps only released ranges")
            };
            let released = |end| Region {
                end,
                acquired,
                state: RegionState::Released { by },
            };
            if at < start {
                regions.insert(at, released(start));
            }
            if range_end > end {
                regions.insert(end, released(range_end));
            }
        }
        regions.insert(start, reserved);
    }

    #[cold]
    fn range_refused(&mut self, call: &str, addr: u64, len: u64, site: Site) -> Errno {
        let headline = if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            format!("{call} of {len} B at {addr:#x}: not page-aligned or empty")
        } else {
            let what = match self.pages.region_holding(addr) {
                Some((start, region)) => match region.state {
                    RegionState::Released { by } => format!("memory released earlier by {by}"),
                    // The range starts in a live reservation and runs out of it: into another
                    // reservation, or into memory that is not reserved.
                    RegionState::Reserved(_) => format!(
                        "memory past the end of the reservation at {:#x} ({}), which ends at {:#x}",
                        start,
                        format_bytes(region.end - start),
                        region.end
                    ),
                },
                None => "memory that was never reserved".into(),
            };
            format!(
                "{call} of {} at {addr:#x} touches {what}",
                format_bytes(len)
            )
        };
        self.invariant("reservation", site, headline);
        Errno::Einval
    }

    /// Commits `[addr, addr+len)`: the pages become readable and writable and read as zero.
    pub fn commit(&mut self, addr: u64, len: u64, site: Site) -> Result<(), Errno> {
        let run = AccessibleRun::new(addr, addr.saturating_add(page_ceil(len)), Prot::READ_WRITE);
        // As `(run.end - run.start) / PAGE_SIZE` whenever the commit goes ahead (the range then
        // lies inside a reservation, so `run.end` did not saturate), and with eight remembered
        // runs it spared `commit` a register copy that the pages benchmark counted (500 -> 497).
        let new_pages = page_ceil(len) / PAGE_SIZE;
        let Some((range, region, runs)) =
            self.pages.regions.checked_mut(addr, len, Forget::Nothing)
        else {
            return Err(self.range_refused("commit", addr, len, site));
        };
        let (start, end) = (range.start, range.end);
        // `self.inject`, spelt out, as the region holds a borrow of `self.pages`.
        if self.sched.fault(FaultKind::Commit) {
            self.injected(FaultKind::Commit, site);
            return Err(Errno::Enomem);
        }
        if self.pages.committed_pages_total + new_pages > self.limits.pages_committed_max {
            self.budget("pages_committed_max", self.limits.pages_committed_max, site);
            return Err(Errno::Enomem);
        }
        // `self.here`, spelt out, as the region holds a borrow of `self.pages`; not taken before
        // the region is found, which costs five more instructions to keep it until here.
        let here = Attribution {
            position: self.position,
            site,
        };
        // Whether every page that was committed already allows reads and writes: then all of the
        // range does once the rest is committed.
        let all_read_write = Cell::new(true);
        // Pages a remembered run holds with this protection are committed, readable and writable
        // already (an allocator commits again the slices a freed page left committed): the
        // commit changes no run, and the search of the runs is spared. Asked once the region is
        // found and the commit is known to go ahead, where the total of committed pages is at
        // hand from the test of its bound: asked first, its answer was kept on the stack until
        // here (6 instructions more a commit, and the allocator fuzz input 0.4% dearer).
        let committed_already = new_pages <= self.pages.committed_pages_total
            && runs.remembered_as(run.start, run.end, run.allowed);
        let committed_pages = if committed_already {
            0
        } else {
            let reservation = region.reservation_mut();
            let delta_pages =
                reservation.change_spans(start, end, &mut self.resources, &here, |span| {
                    if span.state == PageState::Committed {
                        if span.prot != Prot::READ_WRITE {
                            all_read_write.set(false);
                        }
                        return 0;
                    }
                    *span = Span {
                        end: span.end,
                        state: PageState::Committed,
                        prot: Prot::READ_WRITE,
                        by: here,
                    };
                    1
                });
            self.pages.count_committed(delta_pages);
            delta_pages
        };
        // All of the range readable and writable now is remembered: it spares the search that
        // the first access would make (an allocator commits a page to write a block header into
        // it at once). A range with pages of another protection is left to that search.
        if committed_pages == new_pages as i64 {
            // All of it committed just now: no remembered run can hold it yet.
            self.pages.regions.runs.remember_accessible(run);
        } else if all_read_write.get() && !committed_already {
            // Most of an allocator's commits are of pages a freed page left committed, waiting
            // for their purge, and it commits them again and again: remembered once, and grown
            // rather than copied, they push out no other run. A range a remembered run holds
            // already (`committed_already`) is left as it is: growing another run that touches
            // it, as the walk of the runs did when it came to that one first, only changed which
            // runs are remembered, for no fewer searches (the allocator corpus 114.1 -> 112.4 µs
            // an input without it, `fuzz_exec allocator 3000 corpus/allocator`).
            self.pages.regions.runs.remember_accessible_grown(run);
        }
        if self.pages.host.is_some() {
            self.sync_host_protection(range.slot, start, end);
        }
        self.syscall("pages.commit", start, end - start);
        Ok(())
    }

    /// Decommits `[addr, addr+len)`: contents are dropped and the pages stop being accessible until
    /// committed again (MADV_DONTNEED + PROT_NONE, or MEM_DECOMMIT).
    pub fn decommit(&mut self, addr: u64, len: u64, site: Site) -> Result<(), Errno> {
        let here = self.here(site);
        let Some((range, region, _)) =
            self.pages
                .regions
                .checked_mut(addr, len, Forget::Overlapping)
        else {
            return Err(self.range_refused("decommit", addr, len, site));
        };
        let (start, end) = (range.start, range.end);
        let delta_pages =
            region
                .reservation_mut()
                .change_spans(start, end, &mut self.resources, &here, |span| {
                    if span.state != PageState::Committed {
                        return 0;
                    }
                    *span = Span {
                        end: span.end,
                        state: PageState::Decommitted,
                        prot: Prot::NONE,
                        by: here,
                    };
                    -1
                });
        self.pages.count_committed(delta_pages);
        self.drop_data(start, end);
        if let Some(arena) = self.pages.host.as_mut() {
            arena.decommit(start, end - start);
        }
        self.syscall("pages.decommit", start, end - start);
        Ok(())
    }

    fn drop_data(&mut self, start: u64, end: u64) {
        self.pages.contents.drop_range(start, end);
    }

    /// Releases `[addr, addr+len)`, which may be a whole reservation or part of one (munmap).
    pub fn release(&mut self, addr: u64, len: u64, site: Site) -> Result<(), Errno> {
        let Some((range, region, _)) = self.pages.regions.checked_mut(addr, len, Forget::All)
        else {
            return Err(self.range_refused("release", addr, len, site));
        };
        let (start, end) = (range.start, range.end);
        if range.is_whole() {
            // Its place becomes the released range, which keeps who acquired it where it is. All
            // of its committed pages go with it, so the spans need no walk: the reservation's own
            // count says how many. The committed-pages record is released before the
            // reservation's, as a walk that took the count to zero would have done.
            let RegionState::Reserved(reservation) = &mut region.state else {
                unreachable!("checked_mut found a reservation")
            };
            debug_assert_eq!(
                self.resources
                    .get(reservation.record)
                    .map(|record| self.resources.acquired(record)),
                Some(region.acquired),
                "a region keeps the attribution of its reservation's record"
            );
            self.pages.committed_pages_total -= reservation.committed_pages;
            self.resources
                .release_held_two(reservation.committed_record, reservation.record);
            // A map of runs is dropped before the state changes, so that the change has nothing
            // to drop: dropping the old state there tested it again (2 instructions more). It is
            // dropped by putting a placeholder run in its place, which the compiler then knows
            // needs no drop: where the map was taken out and an empty one left, the old state's
            // drop could still call out after the new state's position was read, so that the
            // position went through a copy on the stack (4 instructions more).
            if let Spans::Many(_) = reservation.spans {
                reservation.spans = Spans::One {
                    start: 0,
                    span: Span {
                        end: 0,
                        state: PageState::Free,
                        prot: Prot::NONE,
                        by: Attribution::default(),
                    },
                };
            }
            // `self.here`, spelt out, as the region holds a borrow of `self.pages`: read here
            // rather than at the top, where it was kept on the stack across the ledger's calls.
            region.state = RegionState::Released {
                by: Attribution {
                    position: self.position,
                    site,
                },
            };
            self.pages.reservations_live -= 1;
        } else {
            self.release_part(range.base, start, end, site);
        }
        // After the reservation's change, so that nothing comes between finding its region and
        // changing it (which would make the compiler test the region again).
        self.pages.contents.drop_range(start, end);
        if let Some(arena) = self.pages.host.as_mut() {
            arena.decommit(start, end - start);
        }
        self.pages.free.give(start, end);
        self.syscall("pages.release", start, end - start);
        Ok(())
    }

    /// Releases `[start, end)` out of the middle or an end of the reservation at `base`: what
    /// stays before and after becomes a reservation of its own, attributed to the original one
    /// (and its committed pages as the reservation's committed-pages record was: to the commit
    /// that first committed some of it).
    /// Kept out of line: its map work would otherwise crowd the registers of a whole release,
    /// and given the range's bounds one by one, which a call passes in registers.
    #[inline(never)]
    fn release_part(&mut self, base: u64, start: u64, end: u64, site: Site) {
        let here = self.here(site);
        let Some(Region {
            end: reservation_end,
            acquired,
            state: RegionState::Reserved(reservation),
        }) = self.pages.regions.remove(base)
        else {
            unreachable!("checked")
        };
        self.pages.reservations_live -= 1;
        let committed_by = reservation
            .committed_record
            .and_then(|record| self.resources.get(record))
            .map_or(acquired, |record| self.resources.acquired(record));
        // Split the reservation's runs into what stays before and after the released range.
        let mut before = reservation.spans.into_map();
        split_at(&mut before, start);
        split_at(&mut before, end);
        let after = before.split_off(&end);
        let released = before.split_off(&start);
        let committed_in = |spans: &SortedMap<u64, Span>| {
            spans
                .iter()
                .filter(|(_, s)| s.state == PageState::Committed)
                .map(|(&a, s)| (s.end - a) / PAGE_SIZE)
                .sum::<u64>()
        };
        let (committed_before, committed_after) = (committed_in(&before), committed_in(&after));
        debug_assert_eq!(
            reservation.committed_pages,
            committed_before + committed_after + committed_in(&released),
            "a reservation counts the committed pages of its runs"
        );
        self.pages.committed_pages_total -=
            reservation.committed_pages - committed_before - committed_after;
        self.resources.release_held(reservation.record);
        if let Some(record) = reservation.committed_record {
            self.resources.release_held(record);
        }
        for (piece_start, piece_end, spans, pages) in [
            (base, start, before, committed_before),
            (end, reservation_end, after, committed_after),
        ] {
            if piece_start >= piece_end {
                continue;
            }
            let record =
                self.resources
                    .acquire(KINDS.reservation, 1, piece_end - piece_start, 0, acquired);
            let committed_record = (pages > 0).then(|| {
                self.resources.acquire(
                    KINDS.committed_pages,
                    pages,
                    pages * PAGE_SIZE,
                    0,
                    committed_by,
                )
            });
            self.pages.reservations_live += 1;
            self.pages.regions.insert(
                piece_start,
                Region {
                    end: piece_end,
                    acquired,
                    state: RegionState::Reserved(Reservation {
                        record,
                        committed_record,
                        committed_pages: pages,
                        spans: Spans::from_map(spans),
                    }),
                },
            );
        }
        self.pages.regions.insert(
            start,
            Region {
                end,
                acquired,
                state: RegionState::Released { by: here },
            },
        );
    }

    /// Changes the protection of committed pages in `[addr, addr+len)`.
    pub fn protect(&mut self, addr: u64, len: u64, prot: Prot, site: Site) -> Result<(), Errno> {
        let here = self.here(site);
        let Some((range, region, _)) =
            self.pages
                .regions
                .checked_mut(addr, len, Forget::Overlapping)
        else {
            return Err(self.range_refused("protect", addr, len, site));
        };
        let (start, end) = (range.start, range.end);
        region
            .reservation_mut()
            .change_spans(start, end, &mut self.resources, &here, |span| {
                if span.state == PageState::Committed {
                    span.prot = prot;
                    span.by = here;
                }
                0
            });
        if self.pages.host.is_some() {
            self.sync_host_protection(range.slot, start, end);
        }
        self.syscall(
            "pages.protect",
            start,
            u64::from(prot.read) | u64::from(prot.write) << 1,
        );
        Ok(())
    }

    /// Makes the host arena's protection of `[start, end)`, in the reservation at `slot`, what
    /// the simulation says: each committed span's protection, and nothing for any other page
    /// (decommit and release leave those `PROT_NONE`). Commit and protect both end here, so that
    /// real code never gets more access than the simulation gives: a blanket `mprotect` over the
    /// range would make a decommitted page usable, or a read-only page that is committed again
    /// writable, and real code's use of it would pass unseen. Adjacent committed spans with one
    /// protection take one call. Out of line: only host-backed runs have an arena, and the
    /// callers check for one first, so that commit stays as short as it was without one.
    #[inline(never)]
    fn sync_host_protection(&mut self, slot: u32, start: u64, end: u64) {
        let pages = &mut self.pages;
        let Some(arena) = pages.host.as_mut() else {
            return;
        };
        let RegionState::Reserved(reservation) = &pages.regions.at(slot).state else {
            unreachable!("checked_mut found a reservation")
        };
        let mut run: Option<(u64, u64, Prot)> = None;
        let mut at = start;
        while at < end {
            let (span_start, span) = reservation.spans.find_with_start(at);
            let (from, to) = (span_start.max(start), span.end.min(end));
            let committed = (span.state == PageState::Committed).then_some(span.prot);
            match (run, committed) {
                (Some((run_from, run_to, prot)), Some(next)) if run_to == from && prot == next => {
                    run = Some((run_from, to, prot));
                }
                (_, next) => {
                    if let Some((run_from, run_to, prot)) = run {
                        arena.protect(run_from, run_to - run_from, prot);
                    }
                    run = next.map(|prot| (from, to, prot));
                }
            }
            at = span.end;
        }
        if let Some((run_from, run_to, prot)) = run {
            arena.protect(run_from, run_to - run_from, prot);
        }
    }

    /// The state of the page holding `addr`, and who put it there.
    pub fn page_state(&self, addr: u64) -> (PageState, Option<Attribution>) {
        let page = page_floor(addr);
        if let Some((_, _, _, reservation)) = self.pages.reservation_of(page, page + 1) {
            let span = reservation.spans.find(page);
            return (span.state, Some(span.by));
        }
        self.pages.unreserved_state(page)
    }

    /// Checks an access of `len` bytes at `addr`. A refused access is a `fault` finding; the
    /// simulated process would have crashed, so the runner ends the run.
    #[inline]
    pub fn touch(&mut self, addr: u64, len: u64, access: Access, site: Site) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.saturating_add(len);
        if self.touch_remembered(addr, end, access) {
            return Ok(());
        }
        self.touch_searched(addr, len, access, site)
    }

    /// True when a remembered run answers that `[addr, end)` allows `access`; false when only a
    /// search can say.
    #[inline]
    fn touch_remembered(&self, addr: u64, end: u64, access: Access) -> bool {
        if !self.pages.remembered_allows(addr, end, access) {
            return false;
        }
        debug_assert!(
            self.pages
                .first_refusal_unobserved(addr, end, access)
                .is_none(),
            "the remembered run answers as the search does"
        );
        true
    }

    /// `touch` for an access the remembered run does not answer: a search, and a fault if a
    /// page refuses. Out of line, so that the common case keeps its registers.
    #[inline(never)]
    fn touch_searched(
        &mut self,
        addr: u64,
        len: u64,
        access: Access,
        site: Site,
    ) -> Result<(), Errno> {
        let end = addr.saturating_add(len);
        let Some(refusal) = self.pages.first_refusal(addr, end, access) else {
            return Ok(());
        };
        let what = format!("{} of {len} B", access.name());
        self.report_fault(
            addr,
            what,
            refusal.page.max(addr),
            refusal.state,
            refusal.by,
            site,
        );
        self.syscall("pages.fault", addr, len);
        Err(Errno::Efault)
    }

    /// Reports a refused access: `what` says which access (`write of 8 B`), `page` the first
    /// page that refused it.
    fn report_fault(
        &mut self,
        addr: u64,
        what: String,
        page: u64,
        state: PageState,
        by: Option<Attribution>,
        site: Site,
    ) {
        let resource = match state {
            PageState::Committed => "protected page".to_string(),
            other => format!("{} page", other.name()),
        };
        let here = self.here(site);
        let mut finding = Finding::new(
            FindingKind::Fault,
            resource,
            site,
            format!("{what} at {addr:#x} touches a {} page", state.name()),
        )
        .detail(
            "page",
            format!("{:#x} ({})", page_floor(page), state.name()),
        );
        finding = match by {
            Some(by) => finding.detail_op(
                match state {
                    PageState::Released => "released",
                    PageState::Decommitted => "decommitted",
                    PageState::Reserved => "reserved",
                    _ => "protected",
                },
                by.to_string(),
                by.op_ref(),
            ),
            None => finding.detail("reserved", "never: the address was never reserved"),
        };
        if state == PageState::Released
            && let Some(range) = self.pages.released_at(page)
        {
            finding = finding.detail_op(
                "acquired",
                range.acquired.to_string(),
                range.acquired.op_ref(),
            );
        }
        finding = finding.detail_op("touched", here.to_string(), here.op_ref());
        self.report(finding);
    }

    /// Names the real third-party code about to run on host-arena memory (`dlmalloc_malloc`), or
    /// `None` once it has returned. A crash inside that code is reported with this site, because
    /// the signal that reports it cannot tell which function of the real crate was running.
    /// `Os::lend` sets it for the call it runs and puts the previous name back after, on unwind
    /// too, which is how a subject names the code it runs: not public, as a name set by hand
    /// outlives the call it names when the call unwinds.
    pub(crate) fn set_host_code(&mut self, site: Option<Site>) {
        self.pages.host_code = site;
    }

    pub fn host_code(&self) -> Option<Site> {
        self.pages.host_code
    }

    /// Reports a crash of real code at the host address `ptr` (what a SIGSEGV handler saw) as the
    /// same `fault` finding a checked access would give: the simulated address, the page's state,
    /// who released it and who had acquired it. `access` is `None` when the signal did not say
    /// whether it was a read or a write. An address outside the arena is a wild pointer.
    pub fn report_host_fault(&mut self, ptr: *const u8, access: Option<Access>) {
        let site = self.pages.host_code.unwrap_or("host code");
        let what = match access {
            Some(access) => format!("{} by real code", access.name()),
            None => "an access by real code".to_string(),
        };
        match self.sim_addr(ptr) {
            Some(addr) => {
                let (state, by) = self.page_state(addr);
                self.report_fault(addr, what, addr, state, by, site);
                self.syscall("pages.host_fault", addr, 0);
            }
            None => {
                let here = self.here(site);
                let finding = Finding::new(
                    FindingKind::Fault,
                    "host memory",
                    site,
                    format!("{what} at host address {ptr:p}, outside the host arena"),
                )
                .detail_op("touched", here.to_string(), here.op_ref())
                .note("the real code followed a pointer the simulation never handed out (a wild or null pointer)");
                self.report(finding);
                self.syscall("pages.host_fault", 0, 0);
            }
        }
    }

    /// Reads simulated memory into `buf`, checked. Inline, so that `read_u64` copies a known
    /// eight bytes instead of calling `memcpy`.
    #[inline]
    pub fn read(&mut self, addr: u64, buf: &mut [u8], site: Site) -> Result<(), Errno> {
        self.touch(addr, buf.len() as u64, Access::Read, site)?;
        if let Some(arena) = self.pages.host.as_ref() {
            arena.read(addr, buf);
            return Ok(());
        }
        let contents = &self.pages.contents;
        for_each_page_piece(addr, buf.len(), |page, offset, piece| {
            contents.read(page, offset, &mut buf[piece]);
        });
        Ok(())
    }

    /// Writes `bytes` into simulated memory, checked. Inline for the same reason as `read`.
    #[inline]
    pub fn write(&mut self, addr: u64, bytes: &[u8], site: Site) -> Result<(), Errno> {
        self.touch(addr, bytes.len() as u64, Access::Write, site)?;
        if let Some(arena) = self.pages.host.as_mut() {
            arena.write(addr, bytes);
            return Ok(());
        }
        let contents = &mut self.pages.contents;
        for_each_page_piece(addr, bytes.len(), |page, offset, piece| {
            contents.write(page, offset, &bytes[piece]);
        });
        Ok(())
    }

    /// Reads the little-endian word at `addr`, checked.
    ///
    /// An allocator reads and writes header words millions of times per fuzz run, nearly always
    /// in a run that an earlier access left remembered, and inside one page: that case reads the
    /// page's storage directly, with none of `read`'s page-by-page loop. Anything else (a search,
    /// a fault, a word across a page boundary, the host arena) goes through `read`, which gives
    /// the same answer. Always inlined: a call per word cost more in saved registers than the
    /// fast path itself.
    #[inline(always)]
    pub fn read_u64(&mut self, addr: u64, site: Site) -> Result<u64, Errno> {
        if let Some((page, offset)) = word_in_one_page(addr)
            && self.pages.host.is_none()
            && self.touch_remembered(addr, addr + WORD_BYTES, Access::Read)
        {
            return Ok(self.pages.contents.read_u64(page, offset));
        }
        self.read_u64_checked(addr, site)
    }

    /// `read_u64` when no remembered run answered. A word inside one page of the simulation's own
    /// storage (most of these: a header in a run not remembered now) goes straight to the search
    /// that `touch` would make next, the remembered runs having been asked already, and then to
    /// the page's word, where `read` asked the runs again and copied through its page loop.
    #[inline(never)]
    fn read_u64_checked(&mut self, addr: u64, site: Site) -> Result<u64, Errno> {
        if let Some((page, offset)) = word_in_one_page(addr)
            && self.pages.host.is_none()
        {
            self.touch_searched(addr, WORD_BYTES, Access::Read, site)?;
            return Ok(self.pages.contents.read_u64(page, offset));
        }
        let mut bytes = [0u8; 8];
        self.read(addr, &mut bytes, site)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes `value` as a little-endian word at `addr`, checked; the common case as in
    /// `read_u64`.
    #[inline(always)]
    pub fn write_u64(&mut self, addr: u64, value: u64, site: Site) -> Result<(), Errno> {
        if let Some((page, offset)) = word_in_one_page(addr)
            && self.pages.host.is_none()
            && self.touch_remembered(addr, addr + WORD_BYTES, Access::Write)
        {
            self.pages.contents.write_u64(page, offset, value);
            return Ok(());
        }
        self.write_u64_checked(addr, value, site)
    }

    /// `write_u64` when no remembered run answered, as `read_u64_checked`.
    #[inline(never)]
    fn write_u64_checked(&mut self, addr: u64, value: u64, site: Site) -> Result<(), Errno> {
        if let Some((page, offset)) = word_in_one_page(addr)
            && self.pages.host.is_none()
        {
            self.touch_searched(addr, WORD_BYTES, Access::Write, site)?;
            self.pages.contents.write_u64(page, offset, value);
            return Ok(());
        }
        self.write(addr, &value.to_le_bytes(), site)
    }

    /// Total bytes of address space reserved now.
    pub fn reserved_bytes(&self) -> u64 {
        self.resources.total(KINDS.reservation).bytes
    }

    pub fn committed_pages(&self) -> u64 {
        self.pages.committed_pages_total
    }

    /// Pages that hold data in the simulation's own storage (memory the simulation really uses).
    pub fn pages_with_data(&self) -> usize {
        self.pages.contents.pages()
    }

    /// A reserve the 47-bit address space has no room for. Programs that leak address space end
    /// here (snmalloc #766: about 500 reloads of a 256 GiB pagemap), so the finding says it is a
    /// consequence and points at the leak the per-lifecycle checks reported before it.
    ///
    /// A request as large as the whole space is no consequence of anything: it fails on the first
    /// try, so its finding says to check the sizes the scenario asks for instead (a pagemap of
    /// `address_bits = 63`, a dlmalloc block larger than `arena-bytes`).
    #[cold]
    fn address_space_exhausted(&mut self, len: u64, site: Site) {
        let here = self.here(site);
        let reserved = self.reserved_bytes();
        let (space, space_name) = match &self.pages.host {
            Some(arena) => (arena.len(), "host arena"),
            None => (1 << ADDRESS_BITS, "address space"),
        };
        let note = if len >= space {
            format!(
                "the request alone is {} the whole {} {space_name}: no leak is needed for it to fail; check the sizes the scenario asks for (its ops' sizes and its `[config]`)",
                if len == space {
                    "as large as"
                } else {
                    "larger than"
                },
                format_bytes(space)
            )
        } else {
            "a consequence, not the cause: look for the reservation that leaks every lifecycle (a leak or growth finding before this one)".to_string()
        };
        let finding = Finding::new(
            FindingKind::Budget,
            "address space",
            site,
            format!(
                "reserve of {} failed: the {} {space_name} has no free range that large",
                format_bytes(len),
                format_bytes(space)
            ),
        )
        .detail_op("noticed", here.to_string(), here.op_ref())
        .detail(
            "reserved",
            format!(
                "{} in {} reservations",
                format_bytes(reserved),
                self.pages.reservations_live
            ),
        )
        .note(note);
        self.report(finding);
    }

    /// A `[limits]` field ran out: a budget finding that says how to raise it. Rare, and out of
    /// line, so that the hot calls that check a limit (every malloc) stay small.
    #[cold]
    #[inline(never)]
    pub(crate) fn budget(&mut self, limit: &str, value: u64, site: Site) {
        let note = format!(
            "likely cause: a resource acquired without bound (raise `{limit}` in [limits] if the workload really needs more)"
        );
        self.report_budget(limit, value, site, note);
    }

    /// A bound of the modelled platform ran out (one no scenario can raise, such as Linux's
    /// `PTHREAD_KEYS_MAX`): a budget finding whose note is `cause`.
    pub(crate) fn report_budget(
        &mut self,
        limit: &str,
        value: u64,
        site: Site,
        cause: impl Into<String>,
    ) {
        let here = self.here(site);
        let finding = Finding::budget(limit, value, site)
            .detail_op("noticed", here.to_string(), here.op_ref())
            .note(cause);
        self.report(finding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::FindingKind;

    /// The free ranges as a plain sorted list, first fit by a walk from the bottom: what
    /// `FreeRanges` must answer, however it keeps its lowest range.
    fn model_carve(ranges: &mut Vec<(u64, u64)>, len: u64, align: u64) -> Option<u64> {
        let (index, base) = ranges
            .iter()
            .enumerate()
            .find_map(|(i, &(start, end))| Some((i, fit_in(start, end, len, align)?)))?;
        let (start, end) = ranges.remove(index);
        if base + len < end {
            ranges.insert(index, (base + len, end));
        }
        if start < base {
            ranges.insert(index, (start, base));
        }
        Some(base)
    }

    fn model_give(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
        ranges.push((start, end));
        ranges.sort();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (start, end) in ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => merged.push((start, end)),
            }
        }
        *ranges = merged;
    }

    /// Reserves and releases of mixed sizes and alignments, released in a shuffled order: the
    /// split representation (lowest range apart, the rest in a map) carves every base that a
    /// sorted list would, and ends as the same ranges.
    #[test]
    fn free_ranges_carve_and_give_as_a_sorted_list_does() {
        let (start, end) = (0x10_0000, 0x10_0000 + (1 << 24));
        let mut free = FreeRanges::new(start, end);
        let mut model = vec![(start, end)];
        let mut taken: Vec<(u64, u64)> = Vec::new();
        let mut next = crate::rng::test_draws(0x2545_f491_4f6c_dd1d);
        for _ in 0..4000 {
            if taken.is_empty() || !next().is_multiple_of(3) {
                let len = PAGE_SIZE << (next() % 9);
                let align = PAGE_SIZE << (next() % 6);
                let base = free.carve(len, align);
                assert_eq!(base, model_carve(&mut model, len, align));
                if let Some(base) = base {
                    taken.push((base, base + len));
                }
            } else {
                let (start, end) = taken.swap_remove((next() % taken.len() as u64) as usize);
                free.give(start, end);
                model_give(&mut model, start, end);
            }
        }
        for (start, end) in taken {
            free.give(start, end);
            model_give(&mut model, start, end);
        }
        assert_eq!(model, vec![(start, end)]);
        assert_eq!(free.lowest, (start, end));
        assert!(free.above.is_empty());
    }

    #[test]
    fn reserve_commit_write_read_decommit_release() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(64 * 1024, 64 * 1024, "test").unwrap();
        assert_eq!(base % (64 * 1024), 0, "aligned");
        assert_eq!(os.page_state(base).0, PageState::Reserved);
        os.commit(base, 8192, "test").unwrap();
        assert_eq!(os.committed_pages(), 2);
        os.write_u64(base + 4090, 0x1122_3344_5566_7788, "test")
            .unwrap();
        assert_eq!(
            os.read_u64(base + 4090, "test").unwrap(),
            0x1122_3344_5566_7788,
            "crosses a page boundary"
        );
        os.decommit(base, 4096, "test").unwrap();
        assert_eq!(os.page_state(base).0, PageState::Decommitted);
        assert_eq!(os.committed_pages(), 1);
        os.commit(base, 4096, "test").unwrap();
        assert_eq!(
            os.read_u64(base + 4088, "test").unwrap(),
            0,
            "decommit drops contents"
        );
        os.release(base, 64 * 1024, "test").unwrap();
        assert_eq!(os.reserved_bytes(), 0);
        assert_eq!(os.committed_pages(), 0);
        assert_eq!(os.page_state(base).0, PageState::Released);
        assert!(os.findings().is_empty(), "{:?}", os.findings());
    }

    #[test]
    fn touching_uncommitted_memory_is_a_fault_naming_who_released_it() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(4096 * 4, 0, "segment_alloc").unwrap();
        assert_eq!(
            os.read_u64(base, "reader"),
            Err(Errno::Efault),
            "reserved but never committed"
        );
        os.commit(base, 4096 * 4, "segment_alloc").unwrap();
        os.release(base, 4096 * 4, "segment_free").unwrap();
        assert_eq!(
            os.write_u64(base + 8, 1, "segment_collect"),
            Err(Errno::Efault)
        );
        let findings = os.take_findings();
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].resource, "reserved page");
        let fault = &findings[1];
        assert_eq!(fault.kind, FindingKind::Fault);
        assert_eq!(fault.signature(), "fault:released page:segment_collect");
        let text = format!("{:?}", fault.details);
        assert!(
            text.contains("segment_free") && text.contains("segment_alloc"),
            "{text}"
        );
        assert_eq!(
            os.read_u64(0x10, "null"),
            Err(Errno::Efault),
            "the null region faults"
        );
    }

    #[test]
    fn an_access_allowed_before_a_change_is_checked_again_after_it() {
        // Each change follows an allowed write to the same page, which leaves that page's run
        // remembered: the change must forget it, or the next access would pass unchecked.
        let mut os = Os::for_tests(1);
        let base = os.reserve(4 * 4096, 0, "t").unwrap();
        os.commit(base, 4 * 4096, "t").unwrap();
        os.write_u64(base, 1, "t").unwrap();
        os.protect(base, 4096, Prot::READ, "t").unwrap();
        assert_eq!(os.write_u64(base, 2, "t"), Err(Errno::Efault));
        assert_eq!(os.read_u64(base, "t"), Ok(1));
        os.write_u64(base + 4096, 1, "t").unwrap();
        os.decommit(base + 4096, 4096, "t").unwrap();
        assert_eq!(os.read_u64(base + 4096, "t"), Err(Errno::Efault));
        os.write_u64(base + 2 * 4096, 1, "t").unwrap();
        os.release(base + 2 * 4096, 2 * 4096, "t").unwrap();
        assert_eq!(os.write_u64(base + 3 * 4096, 1, "t"), Err(Errno::Efault));
        let refused: Vec<String> = os.take_findings().into_iter().map(|f| f.resource).collect();
        assert_eq!(
            refused,
            ["protected page", "decommitted page", "released page"]
        );
    }

    #[test]
    fn every_remembered_run_is_forgotten_by_a_change_not_only_the_latest() {
        // Two reservations' runs are remembered, the first one longest ago: decommitting it
        // must still make its next access a fault.
        let mut os = Os::for_tests(1);
        let first = os.reserve(4096, 0, "t").unwrap();
        let second = os.reserve(4096, 0, "t").unwrap();
        for base in [first, second] {
            os.commit(base, 4096, "t").unwrap();
            os.write_u64(base, 1, "t").unwrap();
        }
        assert!(os.pages.remembered_allows(first, first + 8, Access::Write));
        assert!(
            os.pages
                .remembered_allows(second, second + 8, Access::Write)
        );
        os.decommit(first, 4096, "t").unwrap();
        assert_eq!(os.read_u64(first, "t"), Err(Errno::Efault));
        assert_eq!(os.read_u64(second, "t"), Ok(1));
    }

    /// An access that a remembered run answers changes nothing that is remembered, in debug
    /// builds (which check the answer with a search) as in release builds. Only a debug build,
    /// which `make test` is, can fail it: a release build has no search to disturb the runs.
    /// An OS with as many one-page reservations, committed and written, as there are remembered
    /// runs: each page's run is remembered. Reserved first: a reservation forgets every
    /// remembered run, a commit none.
    fn every_run_remembered() -> (Os, Vec<u64>) {
        let mut os = Os::for_tests(1);
        let bases: Vec<u64> = (0..REMEMBERED_RUNS)
            .map(|_| os.reserve(4096, 0, "t").unwrap())
            .collect();
        for &base in &bases {
            os.commit(base, 4096, "t").unwrap();
            os.write_u64(base, 1, "t").unwrap();
        }
        assert_eq!(remembered(&os, &bases), vec![true; REMEMBERED_RUNS]);
        (os, bases)
    }

    /// Whether a write to each page of `bases` is answered by a remembered run.
    fn remembered(os: &Os, bases: &[u64]) -> Vec<bool> {
        bases
            .iter()
            .map(|&base| os.pages.remembered_allows(base, base + 8, Access::Write))
            .collect()
    }

    #[test]
    fn an_answer_from_a_remembered_run_leaves_the_remembered_runs_as_they_were() {
        let (mut os, bases) = every_run_remembered();
        // Answered from memory: remembering any run again would push out the oldest.
        os.read_u64(bases[1], "t").unwrap();
        os.read_u64(bases[REMEMBERED_RUNS - 1], "t").unwrap();
        assert_eq!(remembered(&os, &bases), vec![true; REMEMBERED_RUNS]);
    }

    #[test]
    fn a_commit_keeps_the_remembered_runs_since_it_takes_no_access_away() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(2 * 4096, 0, "t").unwrap();
        os.commit(base, 4096, "t").unwrap();
        os.write_u64(base, 1, "t").unwrap();
        os.commit(base + 4096, 4096, "t").unwrap();
        assert!(
            os.pages.remembered_allows(base, base + 8, Access::Write),
            "the commit of the next page left the first page's run remembered"
        );
        // And what is remembered still answers as the search does: the write is allowed.
        os.write_u64(base + 8, 2, "t").unwrap();
        os.protect(base, 4096, Prot::READ, "t").unwrap();
        assert!(!os.pages.remembered_allows(base, base + 8, Access::Read));
    }

    #[test]
    fn a_commit_over_pages_of_another_protection_is_not_remembered_as_writable() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(2 * 4096, 0, "t").unwrap();
        os.commit(base, 4096, "t").unwrap();
        os.protect(base, 4096, Prot::READ, "t").unwrap();
        os.commit(base, 2 * 4096, "t").unwrap();
        assert!(
            !os.pages
                .remembered_allows(base, base + 2 * 4096, Access::Write)
        );
        assert_eq!(os.write_u64(base, 1, "t"), Err(Errno::Efault));
        // The page the commit made writable is.
        os.write_u64(base + 4096, 1, "t").unwrap();
    }

    /// A commit of pages a remembered run holds readable and writable changes nothing, and is
    /// answered without a search; one of pages a remembered run holds read-only, or of a range
    /// that reaches past a remembered run, still commits what needs it and remembers nothing
    /// writable that is not.
    #[test]
    fn a_commit_of_pages_a_remembered_run_holds_changes_only_what_it_must() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(4 * 4096, 0, "t").unwrap();
        os.commit(base, 4096, "t").unwrap();
        assert!(os.pages.remembered_allows(base, base + 4096, Access::Write));
        os.commit(base, 4096, "again").unwrap();
        assert_eq!(os.committed_pages(), 1);
        // Past the remembered run: the next page is committed too.
        os.commit(base, 2 * 4096, "t").unwrap();
        assert_eq!(os.committed_pages(), 2);
        os.write_u64(base + 4096, 1, "t").unwrap();
        // A read-only page that a read left remembered (read-only) stays read-only.
        os.commit(base + 2 * 4096, 4096, "t").unwrap();
        os.protect(base + 2 * 4096, 4096, Prot::READ, "t").unwrap();
        os.read_u64(base + 2 * 4096, "t").unwrap();
        os.commit(base + 2 * 4096, 4096, "t").unwrap();
        assert_eq!(os.committed_pages(), 3);
        assert_eq!(os.write_u64(base + 2 * 4096, 1, "t"), Err(Errno::Efault));
        os.release(base, 4 * 4096, "t").unwrap();
    }

    #[test]
    fn a_commit_of_committed_pages_pushes_out_no_remembered_run() {
        let (mut os, bases) = every_run_remembered();
        for _ in 0..REMEMBERED_RUNS {
            os.commit(bases[0], 4096, "t").unwrap();
        }
        assert_eq!(remembered(&os, &bases), vec![true; REMEMBERED_RUNS]);
    }

    /// A commit again of committed pages grows the remembered run they touch (an allocator
    /// commits the slices a freed page left committed again and again), until a decommit makes
    /// the run forget what it takes away.
    #[test]
    fn a_commit_of_committed_pages_grows_the_run_it_touches_until_a_decommit() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(4 * 4096, 0, "t").unwrap();
        let other = os.reserve(4096, 0, "t").unwrap();
        let page = |n: u64| base + n * 4096;
        os.commit(page(1), 4096, "t").unwrap();
        os.commit(page(3), 4096, "t").unwrap();
        // A release forgets every remembered run: page 1 stays committed, unremembered.
        os.release(other, 4096, "t").unwrap();
        assert!(
            !os.pages
                .remembered_allows(page(1), page(1) + 8, Access::Read)
        );
        os.commit(page(0), 4096, "t").unwrap();
        os.commit(page(1), 4096, "t").unwrap();
        assert!(os.pages.remembered_allows(page(0), page(2), Access::Write));
        assert!(!os.pages.remembered_allows(page(0), page(3), Access::Read));
        os.decommit(page(1), 4096, "t").unwrap();
        assert!(
            !os.pages
                .remembered_allows(page(1), page(1) + 8, Access::Read)
        );
        assert_eq!(os.read_u64(page(1), "t"), Err(Errno::Efault));
        os.write_u64(page(0), 1, "t").unwrap();
    }

    /// A decommit or a protect forgets the remembered runs that overlap its pages, and only
    /// those: the others still answer, as the search would.
    #[test]
    fn a_decommit_or_protect_forgets_only_the_runs_it_touches() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(4 * 4096, 0, "t").unwrap();
        let page = |n: u64| base + n * 4096;
        for n in [0, 2] {
            os.commit(page(n), 4096, "t").unwrap();
            os.write_u64(page(n), n + 1, "t").unwrap();
        }
        os.decommit(page(2), 4096, "t").unwrap();
        assert!(
            !os.pages
                .remembered_allows(page(2), page(2) + 8, Access::Read)
        );
        assert!(
            os.pages
                .remembered_allows(page(0), page(0) + 8, Access::Write)
        );
        assert_eq!(os.read_u64(page(2), "t"), Err(Errno::Efault));
        assert_eq!(os.read_u64(page(0), "t"), Ok(1));
        os.protect(page(0), 4096, Prot::READ, "t").unwrap();
        assert!(
            !os.pages
                .remembered_allows(page(0), page(0) + 8, Access::Read)
        );
        assert_eq!(os.write_u64(page(0), 2, "t"), Err(Errno::Efault));
    }

    #[test]
    fn protect_refuses_writes_but_allows_reads() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(4096, 0, "t").unwrap();
        os.commit(base, 4096, "t").unwrap();
        os.protect(base, 4096, Prot::READ, "t").unwrap();
        assert!(os.read_u64(base, "t").is_ok());
        assert_eq!(os.write_u64(base, 1, "t"), Err(Errno::Efault));
        assert_eq!(os.take_findings()[0].resource, "protected page");
    }

    #[test]
    fn releasing_what_was_never_reserved_or_twice_is_an_invariant_not_a_panic() {
        let mut os = Os::for_tests(1);
        assert_eq!(os.release(0x5000_0000, 4096, "t"), Err(Errno::Einval));
        let base = os.reserve(4096, 0, "t").unwrap();
        os.release(base, 4096, "t").unwrap();
        assert_eq!(os.release(base, 4096, "t2"), Err(Errno::Einval));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 2);
        assert!(findings.iter().all(|f| f.kind == FindingKind::Invariant));
        assert!(
            findings[1].headline.contains("released earlier"),
            "{}",
            findings[1].headline
        );
        assert_eq!(
            os.commit(base + 1, 4096, "t"),
            Err(Errno::Einval),
            "unaligned"
        );
    }

    /// The requests the address space refuses, each with an invariant finding that says why, and
    /// none with a panic or a change to the accounting.
    #[test]
    fn every_refused_request_is_an_invariant_that_says_why() {
        let mut os = Os::for_tests(1);
        let refused = |os: &mut Os, result: Result<(), Errno>, says: &str| {
            assert_eq!(result, Err(Errno::Einval), "refused: {says}");
            let findings = os.take_findings();
            assert_eq!(findings.len(), 1, "{says}: {findings:?}");
            assert_eq!(findings[0].kind, FindingKind::Invariant);
            assert!(
                findings[0].headline.contains(says),
                "{:?} does not say {says:?}",
                findings[0].headline
            );
        };
        let result = os.reserve(4096, 3 * 4096, "t").map(drop);
        refused(
            &mut os,
            result,
            "alignment 0x3000, which is not a power of two",
        );
        let never = 0x6000_0000;
        let result = os.commit(never, 4096, "t");
        refused(&mut os, result, "never reserved");
        let result = os.decommit(never, 4096, "t");
        refused(&mut os, result, "never reserved");
        let result = os.protect(never, 4096, Prot::READ, "t");
        refused(&mut os, result, "never reserved");

        let base = os.reserve(4096 * 4, 0, "t").unwrap();
        os.commit(base, 4096 * 4, "t").unwrap();
        // Part of a reservation released twice: the second names the first.
        os.release(base + 4096 * 3, 4096, "t").unwrap();
        let result = os.release(base + 4096 * 3, 4096, "t");
        refused(
            &mut os,
            result,
            "released earlier by the subject's `new`, before the first op",
        );
        let result = os.commit(base + 4096 * 3, 4096, "t");
        refused(&mut os, result, "released earlier");
        let result = os.decommit(base + 4096 * 3, 4096, "t");
        refused(&mut os, result, "released earlier");
        let result = os.protect(base + 4096 * 3, 4096, Prot::READ, "t");
        refused(&mut os, result, "released earlier");
        // A release that starts in one reservation and runs into the next one.
        let next = os.reserve(4096, 0, "t").unwrap();
        assert_eq!(next, base + 4096 * 3, "the released page is reused");
        let result = os.release(base, 4096 * 4, "t");
        refused(
            &mut os,
            result,
            &format!(
                "past the end of the reservation at {base:#x} (12 KiB), which ends at {next:#x}"
            ),
        );
        // None of the refusals changed what is reserved or committed.
        assert_eq!(os.reserved_bytes(), 4096 * 4);
        assert_eq!(os.committed_pages(), 3);
        assert_eq!(os.page_state(base).0, PageState::Committed);
        assert_eq!(os.page_state(next).0, PageState::Reserved);
    }

    #[test]
    fn partial_release_splits_the_reservation_and_keeps_accounting_exact() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(4096 * 8, 0, "t").unwrap();
        os.commit(base, 4096 * 8, "t").unwrap();
        os.release(base + 4096 * 2, 4096 * 3, "t").unwrap();
        assert_eq!(os.reserved_bytes(), 4096 * 5);
        assert_eq!(os.committed_pages(), 5);
        assert_eq!(os.resources().total(KINDS.committed_pages).count, 5);
        assert!(
            os.write_u64(base + 4096 * 6, 7, "t").is_ok(),
            "the tail stays usable"
        );
        assert!(
            os.write_u64(base + 4096 * 3, 7, "t").is_err(),
            "the hole faults"
        );
        os.release(base, 4096 * 2, "t").unwrap();
        os.release(base + 4096 * 5, 4096 * 3, "t").unwrap();
        assert_eq!((os.reserved_bytes(), os.committed_pages()), (0, 0));
        assert_eq!(os.resources().live_records(), 0);
    }

    /// What stays of a partly released reservation keeps who made it: the pieces are the
    /// reservation's, their committed pages the commit's, so a leak of either names its own op.
    #[test]
    fn the_pieces_of_a_partial_release_keep_the_reserve_and_commit_sites() {
        let mut os = Os::for_tests(1);
        let base = os.reserve(4096 * 4, 0, "segment_reserve").unwrap();
        os.commit(base, 4096 * 3, "segment_commit").unwrap();
        os.release(base + 4096, 4096, "page_unmap").unwrap();
        let sites = |kind| -> Vec<(&str, u64)> {
            os.resources()
                .live_since(kind, 0)
                .iter()
                .map(|record| (os.resources().acquired(record).site, record.count))
                .collect()
        };
        assert_eq!(
            sites(KINDS.reservation),
            [("segment_reserve", 1), ("segment_reserve", 1)]
        );
        assert_eq!(
            sites(KINDS.committed_pages),
            [("segment_commit", 1), ("segment_commit", 1)]
        );
        assert_eq!(os.committed_pages(), 2);
    }

    #[test]
    fn reserving_256_gib_costs_nothing_and_address_space_runs_out_after_512() {
        let mut os = Os::for_tests(1);
        let mut bases = Vec::new();
        loop {
            match os.reserve(256 << 30, 0, "pagemap") {
                Ok(base) => bases.push(base),
                Err(errno) => {
                    assert_eq!(errno, Errno::Enomem);
                    break;
                }
            }
        }
        assert_eq!(
            bases.len(),
            511,
            "128 TiB less the low 64 KiB holds 511 reservations of 256 GiB"
        );
        assert_eq!(os.pages_with_data(), 0);
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            (findings[0].kind, findings[0].resource.as_str()),
            (FindingKind::Budget, "address space")
        );
        for base in &bases {
            os.release(*base, 256 << 30, "unload").unwrap();
        }
        assert!(
            os.reserve(256 << 30, 0, "pagemap").is_ok(),
            "released space is reused"
        );
    }

    /// `change_split` (with its one-search path for a range that starts a run) leaves every page
    /// as a page-by-page model does, returns the same change in committed pages, and keeps the
    /// runs contiguous over the reservation.
    #[test]
    fn span_changes_agree_with_a_page_by_page_model() {
        const PAGES: u64 = 64;
        const SITES: [Site; 4] = ["a", "b", "c", "d"];
        let mut next = crate::rng::test_draws(0x9e37_79b9_7f4a_7c15);
        let reserved = Span {
            end: PAGES * PAGE_SIZE,
            state: PageState::Reserved,
            prot: Prot::NONE,
            by: Attribution::default(),
        };
        let mut spans = Spans::One {
            start: 0,
            span: reserved,
        };
        let mut model = vec![(PageState::Reserved, ""); PAGES as usize];
        for step in 0..5_000 {
            // Ranges that start a run are the fast path's: draw many at run starts.
            let first = if next().is_multiple_of(2) {
                let starts: Vec<u64> = match &spans {
                    Spans::One { start, .. } => vec![*start],
                    Spans::Many(map) => map.keys().copied().collect(),
                };
                starts[(next() % starts.len() as u64) as usize] / PAGE_SIZE
            } else {
                next() % PAGES
            };
            let last = first + next() % (PAGES - first);
            let (start, end) = (first * PAGE_SIZE, (last + 1) * PAGE_SIZE);
            let site = SITES[(next() % 4) as usize];
            let commit = next().is_multiple_of(2);
            let by = Attribution {
                site,
                ..Attribution::default()
            };
            let delta = spans.change(start, end, |span| {
                match (commit, span.state == PageState::Committed) {
                    (true, true) | (false, false) => return 0,
                    _ => {}
                }
                span.state = if commit {
                    PageState::Committed
                } else {
                    PageState::Decommitted
                };
                span.by = by;
                if commit { 1 } else { -1 }
            });
            let mut model_delta = 0;
            for page in &mut model[first as usize..=last as usize] {
                if (page.0 == PageState::Committed) != commit {
                    *page = if commit {
                        (PageState::Committed, site)
                    } else {
                        (PageState::Decommitted, site)
                    };
                    model_delta += if commit { 1 } else { -1 };
                }
            }
            assert_eq!(delta, model_delta, "step {step}");
            for (page, &(state, site)) in model.iter().enumerate() {
                let span = spans.find(page as u64 * PAGE_SIZE);
                assert_eq!((span.state, span.by.site), (state, site), "step {step}");
            }
            if let Spans::Many(map) = &spans {
                let mut at = 0;
                for (&start, span) in map.iter() {
                    assert_eq!(start, at, "runs are contiguous");
                    assert!(span.end > start, "runs are not empty");
                    at = span.end;
                }
                assert_eq!(at, PAGES * PAGE_SIZE, "runs cover the reservation");
            }
        }
    }

    /// The word accesses' fast path (a remembered run, one page) answers as the general
    /// `read`/`write` do: the same values, the same refusals and the same findings, over
    /// commits, decommits, protection changes and words that cross pages or leave the range.
    #[test]
    fn word_accesses_answer_as_the_general_read_and_write_do() {
        const PAGES: u64 = 8;
        let mut next = crate::rng::test_draws(0x2545_f491_4f6c_dd1d);
        let (mut words, mut general) = (Os::for_tests(1), Os::for_tests(1));
        let base = words.reserve(PAGES * PAGE_SIZE, 0, "t").unwrap();
        assert_eq!(general.reserve(PAGES * PAGE_SIZE, 0, "t"), Ok(base));
        for step in 0..20_000 {
            let page = base + next() % PAGES * PAGE_SIZE;
            // Mostly a few header words, sometimes anywhere, across a page end or outside.
            let addr = match next() % 4 {
                0 => base + next() % (PAGES * PAGE_SIZE + 16) - 8,
                1 => page + PAGE_SIZE - 8 + next() % 8,
                _ => page + next() % 4 * 8,
            };
            match next() % 16 {
                0 => {
                    let _ = words.commit(page, PAGE_SIZE, "t");
                    let _ = general.commit(page, PAGE_SIZE, "t");
                }
                1 => {
                    let _ = words.decommit(page, PAGE_SIZE, "t");
                    let _ = general.decommit(page, PAGE_SIZE, "t");
                }
                2 => {
                    let prot = [Prot::NONE, Prot::READ, Prot::READ_WRITE][(next() % 3) as usize];
                    let _ = words.protect(page, PAGE_SIZE, prot, "t");
                    let _ = general.protect(page, PAGE_SIZE, prot, "t");
                }
                3..=9 => {
                    let value = next();
                    assert_eq!(
                        words.write_u64(addr, value, "t"),
                        general.write(addr, &value.to_le_bytes(), "t"),
                        "step {step}: write at {addr:#x}"
                    );
                }
                _ => {
                    let mut buf = [0u8; 8];
                    let read = general
                        .read(addr, &mut buf, "t")
                        .map(|()| u64::from_le_bytes(buf));
                    assert_eq!(
                        words.read_u64(addr, "t"),
                        read,
                        "step {step}: read at {addr:#x}"
                    );
                }
            }
        }
        let findings = |os: &mut Os| format!("{:?}", os.take_findings());
        let refused = findings(&mut words);
        assert!(refused.contains("Fault"), "the walk reached refusals");
        assert_eq!(refused, findings(&mut general));
    }

    #[test]
    fn format_bytes_is_readable() {
        assert_eq!(format_bytes(216), "216 B");
        assert_eq!(format_bytes(256 << 30), "256 GiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(511 * (256 << 30)), "127.8 TiB");
    }
}
