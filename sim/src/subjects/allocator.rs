//! `allocator`: a miniature of mimalloc 2.1 (segments, pages, thread heaps, abandonment and the
//! exit-time forced collect), with the use-after-unmap of mimalloc #904 as a defect.
//!
//! What is modelled, following mimalloc 2.1.4:
//! - **Segments** of 32 MiB are reserved straight from the OS (`mi_segment_alloc`, 32 MiB aligned)
//!   or, with `arena = true`, carved from 1 GiB arenas. Only what is used is committed: the first
//!   64 KiB slice holds the segment header and the page headers; a page commits its own slices.
//! - **Pages** of blocks: small pages are one 64 KiB slice (block sizes 16, 64, 512 and 4096 B),
//!   medium pages eight slices (32 KiB blocks). Larger requests are served as 32 KiB blocks: huge
//!   segments are out of scope. A page has a local free list and a thread-free list; a free by a
//!   thread that does not own the segment goes to the thread-free list (`mi_free_block_mt`) and is
//!   only counted once the owner collects it (`_mi_page_free_collect`).
//! - **Heaps**: every thread that allocates gets a backing heap (its default heap) and a TLS value
//!   whose key has a destructor (`mi_pthread_done`), created at process init (`mi_process_init`).
//!   `heap-new` makes a private heap whose struct is itself a block of the backing heap
//!   (`mi_heap_malloc_tp(bheap, mi_heap_t)`); `heap-delete` moves its pages to the backing heap,
//!   as the code does (`mi_heap_absorb`; the docs say the default heap), then frees the struct.
//! - **Thread exit** (the TLS destructor) deletes the thread's private heaps, collects with
//!   `MI_ABANDON`: all-free pages are freed, the rest are abandoned with their segments.
//!   A backing heap that needs a new page reclaims an abandoned segment before it reserves one.
//! - **Process exit**: `mi_process_init` registers an exit hook; the hook (`mi_process_done`) runs
//!   `mi_collect(true)` on the calling thread's backing heap: on the main thread it reclaims every
//!   abandoned segment, then visits every page, collecting cross-thread frees and freeing pages that
//!   are now all free. Freeing a segment's last used page frees the segment: released to the OS, or
//!   decommitted when it lives in an arena and `purge_delay` is 0. A forced collect also purges each
//!   visited page's segment (`mi_segment_try_purge`), which reads the segment header. Then, with
//!   `destroy_on_exit` (mimalloc's `mi_option_destroy_on_exit`, on by default here), every segment
//!   and arena still held is released and the TLS key deleted, so memory is back at its baseline.
//! - Freed page slices are purged (decommitted) after `purge_delay` ticks of the virtual clock, or
//!   at once when it is 0, or by a forced collect.
//!
//! Every read and write of a segment or page header goes through the OS's checked memory at the
//! header's address, so touching a freed segment is a `fault` finding naming the site that released
//! it and the site that touched it. With arena memory and a purge delay the freed segment stays
//! mapped; real mimalloc then reads freed metadata silently. The model's debug guard
//! (`guard_freed_segments`, on by default) protects a freed segment's header slice until it is
//! reused or purged, as debug allocators poison freed memory, so that read is a fault too.
//!
//! Defect `collect-after-segment-free` (mimalloc #904, fixed in 2.1.6/2.1.7 by d824b9db): in the
//! page visit of a forced collect, the segment purge runs after the page free that may have released
//! the segment. Fixed: before it. Minimal trigger: main allocates the only live block of its
//! segment, another thread frees it, the process exits.
//!
//! Defect `absorbed-pages-never-collected` (found by this project's fuzz target, not seeded): the
//! pages `heap-delete` moves to the backing heap are collected only when the backing heap looks for
//! room in their size class, collects, or its thread exits, as in mimalloc 2.1.4, so pages that
//! other threads then empty stay committed: a program that rotates private heaps grows without
//! bound. Fixed (the model's own fix; upstream has none to cite): a thread that finds no room in
//! its segments first collects the cross-thread frees of its absorbed pages and frees those left
//! empty, before it reclaims an abandoned segment or reserves a new one.
//!
//! Not modelled: size-class bins beyond the five above, huge objects, page retirement, delayed
//! frees through the heap's `thread_delayed_free` list, atomics (ops are atomic steps), secure mode,
//! statistics, the thread-data cache. Heaps are thread-local: an op naming a heap that another
//! thread owns does nothing (mimalloc calls that undefined behaviour).
//!
//! Resources a process allocator keeps across lifecycles: segments stay reserved and committed while
//! any block in them is live or a purge is pending. Both page kinds are declared bounded caches, so
//! per-repetition checks leave them to the growth detector; the check after a teardown with process
//! exit still wants every byte back.

use std::cell::Cell;

use arbitrary::{Arbitrary, Unstructured};
use serde::{Deserialize, Serialize};

use crate::os::modules::{CodeAddr, MAIN_CODE};
use crate::os::sorted_map::HintedMap;
use crate::os::threads::MAIN_THREAD;
use crate::os::tls::TlsKey;
use crate::os::{CLOCK_TICKS_MAX, Errno, Os, Prot, SLEEP_TICKS_MAX, Site, Tid};
use crate::subject::{
    BoolParam, CacheDecl, Config, DefectInfo, Names, OpDoc, OpRefusal, Step, Subject, SubjectInfo,
    UnsignedParam,
};

const SEGMENT_BYTES: u64 = 32 << 20;
const SLICE_BYTES: u64 = 64 << 10;
const SLICES_PER_SEGMENT: u32 = (SEGMENT_BYTES / SLICE_BYTES) as u32;
const SLICE_WORDS: usize = SLICES_PER_SEGMENT as usize / 64;
const ARENA_SEGMENTS: usize = 32;
/// Block sizes of the model's size classes; the first four live in small (one-slice) pages.
const BLOCK_CLASSES_BYTES: [u64; 5] = [16, 64, 512, 4096, 32 << 10];
const SMALL_BLOCK_BYTES_MAX: u64 = 4096;
const MEDIUM_PAGE_SLICES: u32 = 8;
/// `sizeof(mi_heap_t)` in mimalloc 2.1 on x64 is about 3 KiB.
const HEAP_STRUCT_BYTES: u64 = 3 << 10;
const SLOTS: u8 = 8;
const HEAP_SLOTS: u8 = 4;

// Segment header fields (offsets from the segment base).
const SEGMENT_COOKIE: u64 = 0;
const SEGMENT_THREAD_ID: u64 = 8;
const SEGMENT_USED: u64 = 16;
const SEGMENT_PURGE_MASK: u64 = 24;
// Page headers follow the segment header inside the first slice, one per slice.
const PAGE_HEADERS: u64 = 0x1000;
const PAGE_HEADER_BYTES: u64 = 64;
const PAGE_USED: u64 = 0;
const PAGE_XTHREAD_FREE: u64 = 8;
const PAGE_HEAP: u64 = 16;
const PAGE_BLOCK_BYTES: u64 = 24;

const COOKIE: u64 = 0x6d69_6d61_6c6c_6f63;
/// Code addresses the OS calls back: the TLS destructor and the exit hook.
const THREAD_DONE: CodeAddr = CodeAddr(MAIN_CODE.0 + 0x1000);
const PROCESS_DONE: CodeAddr = CodeAddr(MAIN_CODE.0 + 0x1040);

/// A generated slot is always one `validate_op` accepts: `int_in_range` reduces the byte it reads
/// modulo the slot count, so refusing out-of-range slots in files drops no generated op.
fn small_slot(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=SLOTS - 1)
}

fn small_heap(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=HEAP_SLOTS - 1)
}

/// A quarter of generated allocations name a private heap; the rest use the default heap.
fn maybe_heap(u: &mut Unstructured) -> arbitrary::Result<Option<u8>> {
    Ok(if u.ratio(1, 4)? {
        Some(small_heap(u)?)
    } else {
        None
    })
}

/// Request sizes spread over every size class, including ones that round up.
fn request_bytes(u: &mut Unstructured) -> arbitrary::Result<u32> {
    Ok(*u.choose(&[8, 16, 24, 64, 100, 512, 1000, 3000, 4096, 10_000, 32_768])?)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AllocatorOp {
    /// `slot = mi_malloc(bytes)`, or `mi_heap_malloc(heap, bytes)`; a live block in the slot is
    /// freed first, so a script never loses a pointer. A request above 32 KiB gets a 32 KiB block
    /// (`class_of`): huge objects are not modelled.
    Malloc {
        #[arbitrary(with = small_slot)]
        slot: u8,
        #[arbitrary(with = request_bytes)]
        bytes: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[arbitrary(with = maybe_heap)]
        heap: Option<u8>,
    },
    /// `mi_free(slot)` on this thread; cross-thread when another thread owns the block's segment.
    Free {
        #[arbitrary(with = small_slot)]
        slot: u8,
    },
    /// `slot = mi_realloc(slot, bytes)` from this thread's default heap.
    Realloc {
        #[arbitrary(with = small_slot)]
        slot: u8,
        #[arbitrary(with = request_bytes)]
        bytes: u32,
    },
    /// `heap = mi_heap_new()` on this thread (deleting the slot's previous heap if this thread owns it).
    HeapNew {
        #[arbitrary(with = small_heap)]
        heap: u8,
    },
    /// `mi_heap_delete(heap)`: its pages move to the backing heap, its blocks stay live.
    HeapDelete {
        #[arbitrary(with = small_heap)]
        heap: u8,
    },
    /// `mi_heap_collect(heap, force)`, or `mi_collect(force)` on the default heap.
    HeapCollect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[arbitrary(with = maybe_heap)]
        heap: Option<u8>,
        #[serde(default)]
        force: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    segment: u64,
    slice: u32,
    index: u32,
    addr: u64,
}

type PageRef = (u64, u32);

/// A page in a heap's list, with its block size (fixed for the page's life): a malloc walks its
/// heap's list for a page of its size class, and the size kept here spares it a search of the
/// segments for each page of another class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeapPage {
    page_ref: PageRef,
    block_bytes: u64,
}

#[derive(Debug)]
struct Page {
    slices: u32,
    block_bytes: u64,
    capacity: u32,
    /// Blocks never handed out start at this index.
    fresh: u32,
    free: Vec<u32>,
    /// Blocks freed by other threads, not yet collected: still counted in `used`.
    thread_free: Vec<u32>,
    used: u32,
    /// The heap that owns the page; `None` while the page is abandoned.
    heap: Option<u32>,
    /// Moved to the backing heap by `heap-delete` (`mi_heap_absorb`).
    absorbed: bool,
}

impl Page {
    fn has_room(&self) -> bool {
        !self.free.is_empty() || self.fresh < self.capacity
    }
}

#[derive(Debug)]
struct Segment {
    base: u64,
    /// The owning thread; `None` while abandoned.
    owner: Option<u32>,
    used_pages: u32,
    slice_used: SliceSet,
    pages: PageTable,
    /// Slices of freed pages still committed, waiting for a purge (`purge_mask`).
    purge_mask: SliceSet,
    /// How many slices `purge_mask` holds, kept as it changes: every page free writes the count
    /// to the header, and counting the bitmap's members each time was most of the cost.
    purge_pending: u32,
    purge_expire: u64,
    arena: Option<(usize, usize)>,
}

impl Segment {
    /// First fit: the lowest run of `count` free slices (slice 0 holds the headers). Walks the
    /// gaps between used slices a word at a time: a page allocation searches every segment the
    /// thread owns, and a scan slice by slice was most of its cost.
    fn free_run(&self, count: u32) -> Option<u32> {
        let mut start = self.slice_used.next(1, false);
        while start < SLICES_PER_SEGMENT {
            // Only whether the gap holds `count` slices matters, so the search for its end stops
            // there: a one-slice page would otherwise walk the rest of a mostly empty segment.
            let limit = (start + count).min(SLICES_PER_SEGMENT);
            let end = self.slice_used.next_before(start, true, limit);
            if end - start >= count {
                return Some(start);
            }
            start = self.slice_used.next(end, false);
        }
        None
    }
}

/// A segment's pages by first slice, in a table indexed by slice as mimalloc keeps its page
/// headers in the segment's `slices` array. Every malloc looks up each page its heap walks, and a
/// segment holds dozens: an index, where an ordered map would search.
#[derive(Debug, Default)]
struct PageTable {
    by_slice: Vec<Option<Page>>,
    len: usize,
}

impl PageTable {
    fn get(&self, first: u32) -> Option<&Page> {
        self.by_slice.get(first as usize)?.as_ref()
    }

    fn get_mut(&mut self, first: u32) -> Option<&mut Page> {
        self.by_slice.get_mut(first as usize)?.as_mut()
    }

    fn insert(&mut self, first: u32, page: Page) {
        let at = first as usize;
        // Grown by one entry at a time, as pages take the lowest free slices: a loop of pushes,
        // where `resize_with` was a call per insert that grew the table.
        while self.by_slice.len() <= at {
            self.by_slice.push(None);
        }
        if self.by_slice[at].replace(page).is_none() {
            self.len += 1;
        }
    }

    fn remove(&mut self, first: u32) -> Option<Page> {
        let page = self.by_slice.get_mut(first as usize)?.take()?;
        self.len -= 1;
        Some(page)
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The pages with their first slices, lowest first.
    fn iter(&self) -> impl Iterator<Item = (u32, &Page)> {
        self.by_slice
            .iter()
            .enumerate()
            .filter_map(|(first, page)| Some((first as u32, page.as_ref()?)))
    }

    /// The pages with their first slices, lowest first.
    fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut Page)> {
        self.by_slice
            .iter_mut()
            .enumerate()
            .filter_map(|(first, page)| Some((first as u32, page.as_mut()?)))
    }
}

/// A set of a segment's slices as a bitmap, like mimalloc's `mi_commit_mask_t`: slice `i` is bit
/// `i % 64` of word `i / 64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SliceSet([u64; SLICE_WORDS]);

impl SliceSet {
    /// Adds `slice`; true if it was not in the set.
    fn insert(&mut self, slice: u32) -> bool {
        let word = &mut self.0[slice as usize / 64];
        let bit = 1 << (slice % 64);
        let added = *word & bit == 0;
        *word |= bit;
        added
    }

    /// Takes `slice` out; true if it was in the set.
    fn remove(&mut self, slice: u32) -> bool {
        let word = &mut self.0[slice as usize / 64];
        let bit = 1 << (slice % 64);
        let removed = *word & bit != 0;
        *word &= !bit;
        removed
    }

    fn len(&self) -> u32 {
        // Most words are empty, and the build targets baseline x86-64, whose popcount is a
        // dozen instructions: count only the words that have members.
        self.0
            .iter()
            .filter(|&&word| word != 0)
            .map(|word| word.count_ones())
            .sum()
    }

    /// The lowest slice at or after `from` that is in the set (`member`) or out of it (`!member`);
    /// `SLICES_PER_SEGMENT` when there is none.
    fn next(&self, from: u32, member: bool) -> u32 {
        self.next_before(from, member, SLICES_PER_SEGMENT)
    }

    /// `next` that looks no further than `limit` (at most `SLICES_PER_SEGMENT`): the lowest such
    /// slice in `[from, limit)`, or `limit` when there is none.
    fn next_before(&self, from: u32, member: bool, limit: u32) -> u32 {
        let mut at = from;
        while at < limit {
            let word = self.0[at as usize / 64];
            let word = if member { word } else { !word } >> (at % 64);
            if word != 0 {
                return (at + word.trailing_zeros()).min(limit);
            }
            at = (at / 64 + 1) * 64;
        }
        limit
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ArenaSlot {
    Free,
    Used,
    /// A freed segment whose memory stays committed until the purge delay expires.
    Freed {
        expire: u64,
    },
}

#[derive(Debug)]
struct Arena {
    base: u64,
    slots: Vec<ArenaSlot>,
}

#[derive(Debug)]
struct Heap {
    owner: u32,
    backing: bool,
    pages: Vec<HeapPage>,
    /// The block holding this heap's struct, in the backing heap (private heaps only).
    struct_block: Option<Block>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Collect {
    Normal,
    Force,
    Abandon,
}

const ARENA: BoolParam = BoolParam {
    name: "arena",
    summary: "segments come from arenas (reserved in bulk, kept when freed) instead of the OS",
    default: false,
};
const PURGE_DELAY: UnsignedParam = UnsignedParam {
    name: "purge_delay",
    summary: "ticks of the virtual clock before freed page slices are decommitted; 0: at once",
    min: 0,
    max: 1_000_000_000,
    default: 10,
};

// A deadline is the clock plus a purge delay: with the clock at most `CLOCK_TICKS_MAX`, the
// longest delay leaves room below `u64::MAX`, so the sum needs no saturation.
const _: () = assert!(PURGE_DELAY.max <= u64::MAX - CLOCK_TICKS_MAX);
// A scenario's longest sleep (`SLEEP_TICKS_MAX`) outlasts every purge delay, as the sleep's docs
// and the parser's message promise: a sleep can always let a purge come due.
const _: () = assert!(PURGE_DELAY.max <= SLEEP_TICKS_MAX);
const DESTROY_ON_EXIT: BoolParam = BoolParam {
    name: "destroy_on_exit",
    summary: "process exit releases every segment and arena still held (mi_option_destroy_on_exit)",
    default: true,
};
const GUARD_FREED_SEGMENTS: BoolParam = BoolParam {
    name: "guard_freed_segments",
    summary: "protect a freed segment's header slice until it is reused or purged, so a read of it faults",
    default: true,
};

#[derive(Clone, Debug)]
struct Settings {
    collect_after_segment_free: bool,
    absorbed_pages_never_collected: bool,
    arena: bool,
    purge_delay_ticks: u64,
    destroy_on_exit: bool,
    guard_freed_segments: bool,
}

pub struct Allocator {
    settings: Settings,
    process_live: bool,
    tls_key: Option<TlsKey>,
    /// Hinted: a malloc or a free looks up the segment of the page it works on several times.
    segments: HintedMap<u64, Segment>,
    segments_created: u64,
    abandoned: Vec<u64>,
    arenas: Vec<Arena>,
    /// Hinted: a malloc looks up its heap on the way in and again for a new page.
    heaps: HintedMap<u32, Heap>,
    heaps_created: u32,
    /// Each thread that allocated, with its backing heap; hinted, as every op looks its own up.
    threads: HintedMap<u32, u32>,
    slots: [Option<Block>; SLOTS as usize],
    heap_slots: [Option<u32>; HEAP_SLOTS as usize],
    /// Emptied lists kept for their capacity (see `Spares`).
    spares: Spares,
}

/// Emptied lists, kept for reuse: only their capacity is reused, and nothing reads them. An
/// allocator hands its spares (with the lists of whatever it still held) to the next allocator
/// made on its thread, as `Os` does with its lists: a fuzz target makes an allocator per input,
/// and each one grew every list from nothing again.
#[derive(Default)]
struct Spares {
    /// Block lists of freed pages, for the next pages' free lists: a fuzz input allocates and
    /// frees hundreds of pages, and growing each page's lists from nothing again took about 7%
    /// of its instructions. There are never more than the lists that were alive at one time.
    block_lists: Vec<Vec<u32>>,
    /// Page lists, for new heaps and for the walks that cannot borrow the list they walk (a
    /// collect frees pages of the heap it visits), as `block_lists`.
    page_lists: Vec<Vec<HeapPage>>,
    /// The segments a collect purges.
    scratch_segments: Vec<(u64, u64)>,
    /// Page tables of freed segments, for the next segments, as `block_lists`: a fuzz input makes
    /// dozens of segments, and reallocating each table as it grew from nothing again was about
    /// 0.4% of its instructions.
    page_tables: Vec<PageTable>,
}

impl Spares {
    /// Keeps the lists of a segment that goes with pages still in it (at process exit, or when
    /// the allocator is dropped): its pages' block lists, and its page table with no entries, as
    /// a walk of the pages (a reclaim) would otherwise go over the empty entries of a table that
    /// an earlier input filled.
    fn keep_segment(&mut self, mut segment: Segment) {
        for page in segment.pages.by_slice.drain(..).flatten() {
            self.keep_block_list(page.free);
            self.keep_block_list(page.thread_free);
        }
        segment.pages.len = 0;
        self.page_tables.push(segment.pages);
    }

    fn keep_block_list(&mut self, mut list: Vec<u32>) {
        list.clear();
        self.block_lists.push(list);
    }

    fn keep_page_list(&mut self, mut list: Vec<HeapPage>) {
        list.clear();
        self.page_lists.push(list);
    }
}

thread_local! {
    /// The spares the last allocator dropped on this thread left, for the next one.
    static SPARES: Cell<Option<Spares>> = const { Cell::new(None) };
}

/// Frees the spares the allocators dropped on this thread left, so that the next one grows its
/// lists from nothing as the first did (see `fuzzing::reset_thread_spares`).
pub fn forget_thread_spares() {
    drop(SPARES.take());
}

impl Drop for Allocator {
    fn drop(&mut self) {
        let mut spares = std::mem::take(&mut self.spares);
        for segment in std::mem::take(&mut *self.segments).into_values() {
            spares.keep_segment(segment);
        }
        for heap in std::mem::take(&mut *self.heaps).into_values() {
            spares.keep_page_list(heap.pages);
        }
        // At thread exit the slot may be gone already: the lists are then freed.
        let _ = SPARES.try_with(|slot| slot.set(Some(spares)));
    }
}

type Mem<T> = Result<T, Errno>;

fn class_of(bytes: u64) -> u64 {
    BLOCK_CLASSES_BYTES
        .iter()
        .copied()
        .find(|&class| class >= bytes)
        .unwrap_or(BLOCK_CLASSES_BYTES[4])
}

/// Refuses a `slot` past the script's block slots. Taken modulo the slot count, `slot = 11` ran
/// as slot 3 and an error about it named a value the file does not hold.
fn check_slot(slot: u8) -> Result<(), OpRefusal> {
    check_in_range("slot", slot, SLOTS, "slots")
}

/// Refuses a `heap` past the script's private-heap slots, as `check_slot` does a slot.
fn check_heap(heap: u8) -> Result<(), OpRefusal> {
    check_in_range("heap", heap, HEAP_SLOTS, "heap slots")
}

/// Refuses `value` of `field` unless it is below `count`, the number of `what` there are.
fn check_in_range(field: &'static str, value: u8, count: u8, what: &str) -> Result<(), OpRefusal> {
    if value < count {
        return Ok(());
    }
    Err(OpRefusal::at(
        field,
        format!(
            "{field} {value} is out of range: the allocator has {count} {what}, 0 to {}",
            count - 1
        ),
    ))
}

fn page_header(base: u64, slice: u32) -> u64 {
    base + PAGE_HEADERS + u64::from(slice) * PAGE_HEADER_BYTES
}

fn slice_addr(base: u64, slice: u32) -> u64 {
    base + u64::from(slice) * SLICE_BYTES
}

impl Subject for Allocator {
    type Op = AllocatorOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "allocator",
            summary: "mimalloc-like: segments, pages, thread heaps, heap delete, abandon, exit-time collect",
            ops: vec![
                OpDoc {
                    name: "malloc",
                    summary: "slot = malloc(bytes) in the default heap or `heap`; a block already in the slot is freed first; bytes round up to 16, 64, 512, 4096 or 32768, and any request above 32 KiB gets a 32 KiB block (huge objects are not modelled); slot 0 to 7, heap 0 to 3",
                },
                OpDoc {
                    name: "free",
                    summary: "free(slot); cross-thread when another thread owns its segment",
                },
                OpDoc {
                    name: "realloc",
                    summary: "slot = realloc(slot, bytes) from the default heap (malloc when the slot is empty); bytes round up as for malloc, so above 32 KiB is 32 KiB",
                },
                OpDoc {
                    name: "heap-new",
                    summary: "heap = mi_heap_new() on this thread; a heap this thread already has in the slot is deleted first",
                },
                OpDoc {
                    name: "heap-delete",
                    summary: "mi_heap_delete(heap): pages move to the backing heap",
                },
                OpDoc {
                    name: "heap-collect",
                    summary: "mi_heap_collect(heap or default, force)",
                },
            ],
            defects: vec![
                DefectInfo {
                    name: "collect-after-segment-free",
                    summary: "the forced collect purges a page's segment after the page free that released it",
                    source: "mimalloc #904, fixed in 2.1.6/2.1.7 by d824b9db",
                },
                DefectInfo {
                    name: "absorbed-pages-never-collected",
                    summary: "pages that heap-delete moved to the backing heap and other threads then emptied stay committed until the backing heap allocates in their size class, collects, or exits",
                    source: "found by this project's allocator fuzz target with defects off; mimalloc 2.1.4's mi_heap_absorb behaves so (compare mimalloc #1117); the fix modelled is this project's",
                },
            ],
            caches: vec![
                CacheDecl {
                    kind: "reservation",
                    per_key_max: 64,
                    why: "segments and arenas stay reserved while a block in them is live; process exit releases them",
                },
                CacheDecl {
                    kind: "committed pages",
                    per_key_max: 16_384,
                    why: "pages with live blocks and freed slices awaiting their purge delay stay committed",
                },
            ],
            params: vec![
                ARENA.decl(),
                PURGE_DELAY.decl(),
                DESTROY_ON_EXIT.decl(),
                GUARD_FREED_SEGMENTS.decl(),
            ],
            host_backed: false,
        }
    }

    fn new(os: &mut Os, config: &Config) -> Self {
        let settings = Settings {
            collect_after_segment_free: config.defect("collect-after-segment-free"),
            absorbed_pages_never_collected: config.defect("absorbed-pages-never-collected"),
            arena: config.flag(&ARENA),
            purge_delay_ticks: config.unsigned(&PURGE_DELAY),
            destroy_on_exit: config.flag(&DESTROY_ON_EXIT),
            guard_freed_segments: config.flag(&GUARD_FREED_SEGMENTS),
        };
        let mut allocator = Allocator {
            settings,
            process_live: false,
            tls_key: None,
            segments: HintedMap::new(),
            segments_created: 0,
            abandoned: Vec::new(),
            arenas: Vec::new(),
            heaps: HintedMap::new(),
            heaps_created: 0,
            threads: HintedMap::new(),
            slots: [None; SLOTS as usize],
            heap_slots: [None; HEAP_SLOTS as usize],
            spares: SPARES.take().unwrap_or_default(),
        };
        // `mi_process_init` runs before main (a static constructor), so its TLS key and exit hook
        // exist before the first lifecycle's baseline.
        allocator.process_init(os);
        allocator
    }

    fn op_name(op: &AllocatorOp) -> &'static str {
        match op {
            AllocatorOp::Malloc { .. } => "malloc",
            AllocatorOp::Free { .. } => "free",
            AllocatorOp::Realloc { .. } => "realloc",
            AllocatorOp::HeapNew { .. } => "heap-new",
            AllocatorOp::HeapDelete { .. } => "heap-delete",
            AllocatorOp::HeapCollect { .. } => "heap-collect",
        }
    }

    fn validate_op(op: &AllocatorOp, names: &mut Names) -> Result<(), OpRefusal> {
        let require_heap = |names: &Names, heap: u8| {
            check_heap(heap)?;
            names
                .require("heap", heap, "heap")
                .map_err(OpRefusal::of_field("heap"))
        };
        match op {
            AllocatorOp::Malloc { slot, heap, .. } => {
                check_slot(*slot)?;
                if let Some(heap) = heap {
                    require_heap(names, *heap)?;
                }
                names.define("slot", slot);
            }
            AllocatorOp::Free { slot } => {
                check_slot(*slot)?;
                names
                    .require("slot", slot, "slot")
                    .map_err(OpRefusal::of_field("slot"))?;
            }
            AllocatorOp::Realloc { slot, .. } => {
                check_slot(*slot)?;
                names.define("slot", slot);
            }
            AllocatorOp::HeapNew { heap } => {
                check_heap(*heap)?;
                names.define("heap", heap);
            }
            AllocatorOp::HeapDelete { heap } => require_heap(names, *heap)?,
            AllocatorOp::HeapCollect { heap, .. } => {
                if let Some(heap) = heap {
                    require_heap(names, *heap)?;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, os: &mut Os, tid: Tid, op: &AllocatorOp) -> Step<Self> {
        self.process_init(os);
        // Slots and heaps index their arrays as written: `validate_op` refused any out of range.
        // An `Err` here is a refused memory access: the OS has recorded the fault finding and the
        // simulated process has crashed, so the op just stops.
        let _ = match op {
            AllocatorOp::Malloc { slot, bytes, heap } => {
                self.op_malloc(os, tid, *slot, u64::from(*bytes), *heap)
            }
            AllocatorOp::Free { slot } => self.op_free(os, tid, *slot),
            AllocatorOp::Realloc { slot, bytes } => {
                self.op_realloc(os, tid, *slot, u64::from(*bytes))
            }
            AllocatorOp::HeapNew { heap } => self.op_heap_new(os, tid, *heap),
            AllocatorOp::HeapDelete { heap } => match self.own_heap(tid, *heap) {
                Some(id) => self.heap_delete(os, tid, id),
                None => Ok(()),
            },
            AllocatorOp::HeapCollect { heap, force } => {
                self.op_heap_collect(os, tid, *heap, *force)
            }
        };
        Step::Done
    }

    fn call(&mut self, os: &mut Os, tid: Tid, code: CodeAddr, _arg: u64) -> Step<Self> {
        let _ = if code == THREAD_DONE {
            self.thread_done(os, tid)
        } else if code == PROCESS_DONE {
            self.process_done(os, tid)
        } else {
            Ok(())
        };
        Step::Done
    }

    fn check_invariants(&self, _os: &Os) -> Vec<String> {
        let mut violations = Vec::new();
        for (id, segment) in self.segments.iter() {
            if segment.used_pages as usize != segment.pages.len() {
                violations.push(format!(
                    "segment #{id} counts {} used pages but holds {}",
                    segment.used_pages,
                    segment.pages.len()
                ));
            }
        }
        for (slot, block) in self.slots.iter().enumerate() {
            if let Some(block) = block
                && self
                    .segments
                    .get(&block.segment)
                    .and_then(|s| s.pages.get(block.slice))
                    .is_none()
            {
                violations.push(format!("slot {slot} holds a block whose page is gone"));
            }
        }
        violations
    }
}

impl Allocator {
    // ---- process and threads ----

    fn process_init(&mut self, os: &mut Os) {
        if self.process_live {
            return;
        }
        self.process_live = true;
        self.tls_key = os.tls_key_create(Some(THREAD_DONE), "process_init").ok();
        os.atexit(PROCESS_DONE, 0, "process_init");
    }

    /// The thread's backing heap, created with its TLS value on the thread's first use.
    fn backing_heap(&mut self, os: &mut Os, tid: Tid) -> u32 {
        if let Some(&heap) = self.threads.get(&tid.0) {
            return heap;
        }
        let heap = self.add_heap(tid.0, true, None);
        self.threads.insert(tid.0, heap);
        if let Some(key) = self.tls_key {
            let _ = os.tls_set(tid, key, u64::from(tid.0) + 1, "thread_init");
        }
        heap
    }

    fn add_heap(&mut self, owner: u32, backing: bool, struct_block: Option<Block>) -> u32 {
        self.heaps_created += 1;
        let id = self.heaps_created;
        self.heaps.insert(
            id,
            Heap {
                owner,
                backing,
                pages: self.spares.page_lists.pop().unwrap_or_default(),
                struct_block,
            },
        );
        id
    }

    /// Keeps an emptied page list for reuse (see `Spares`).
    fn recycle_page_list(&mut self, list: Vec<HeapPage>) {
        self.spares.keep_page_list(list);
    }

    /// Keeps an emptied block list for reuse (see `Spares`).
    fn recycle_block_list(&mut self, list: Vec<u32>) {
        self.spares.keep_block_list(list);
    }

    /// The private heap in `slot` when this thread owns it.
    fn own_heap(&self, tid: Tid, slot: u8) -> Option<u32> {
        let id = self.heap_slots[usize::from(slot)]?;
        self.heaps
            .get(&id)
            .filter(|h| h.owner == tid.0 && !h.backing)
            .map(|_| id)
    }

    /// `_mi_thread_done`: delete private heaps, abandon what is still used.
    fn thread_done(&mut self, os: &mut Os, tid: Tid) -> Mem<()> {
        let Some(&backing) = self.threads.get(&tid.0) else {
            return Ok(());
        };
        // Their ids in a spare block list (both are lists of `u32`), as a thread exits in most
        // fuzz inputs and a list made each time was an allocation per exit.
        let mut private = self.spares.block_lists.pop().unwrap_or_default();
        private.extend(
            self.heaps
                .iter()
                .filter(|(_, h)| h.owner == tid.0 && !h.backing)
                .map(|(&id, _)| id),
        );
        for &heap in &private {
            self.heap_delete(os, tid, heap)?;
        }
        self.recycle_block_list(private);
        self.heap_collect(os, tid, backing, Collect::Abandon)?;
        for (&id, segment) in self.segments.iter_mut() {
            if segment.owner == Some(tid.0) {
                segment.owner = None;
                os.write_u64(segment.base + SEGMENT_THREAD_ID, 0, "segment_abandon")?;
                self.abandoned.push(id);
            }
        }
        if let Some(heap) = self.heaps.remove(&backing) {
            self.recycle_page_list(heap.pages);
        }
        self.threads.remove(&tid.0);
        Ok(())
    }

    /// `mi_process_done`: the forced collect, then (with `destroy_on_exit`) release everything.
    fn process_done(&mut self, os: &mut Os, tid: Tid) -> Mem<()> {
        if !self.process_live {
            return Ok(());
        }
        let backing = self.backing_heap(os, tid);
        self.heap_collect(os, tid, backing, Collect::Force)?;
        if self.settings.destroy_on_exit {
            self.destroy_all(os)?;
        }
        if let Some(key) = self.tls_key.take() {
            os.tls_key_delete(key, "process_done")?;
        }
        self.process_live = false;
        Ok(())
    }

    /// `_mi_heap_unsafe_destroy_all` and `_mi_arena_unsafe_destroy_all`: all OS memory goes back.
    fn destroy_all(&mut self, os: &mut Os) -> Mem<()> {
        for segment in std::mem::take(&mut *self.segments).into_values() {
            let (base, arena) = (segment.base, segment.arena);
            self.spares.keep_segment(segment);
            if arena.is_none() {
                os.release(base, SEGMENT_BYTES, "process_done")?;
            }
        }
        for arena in std::mem::take(&mut self.arenas) {
            os.release(
                arena.base,
                SEGMENT_BYTES * ARENA_SEGMENTS as u64,
                "process_done",
            )?;
        }
        self.abandoned.clear();
        let spares = &mut self.spares;
        self.heaps.retain(|_, heap| {
            spares.keep_page_list(std::mem::take(&mut heap.pages));
            false
        });
        self.threads.clear();
        self.slots = [None; SLOTS as usize];
        self.heap_slots = [None; HEAP_SLOTS as usize];
        Ok(())
    }

    // ---- ops ----

    fn op_malloc(
        &mut self,
        os: &mut Os,
        tid: Tid,
        slot: u8,
        bytes: u64,
        heap: Option<u8>,
    ) -> Mem<()> {
        let heap = match heap {
            Some(named) => match self.own_heap(tid, named) {
                Some(id) => id,
                None => return Ok(()),
            },
            None => self.backing_heap(os, tid),
        };
        if let Some(old) = self.slots[usize::from(slot)].take() {
            self.free_block(os, tid, old)?;
        }
        self.slots[usize::from(slot)] = self.malloc(os, tid, heap, bytes)?;
        Ok(())
    }

    fn op_free(&mut self, os: &mut Os, tid: Tid, slot: u8) -> Mem<()> {
        if let Some(block) = self.slots[usize::from(slot)].take() {
            self.backing_heap(os, tid);
            self.free_block(os, tid, block)?;
        }
        Ok(())
    }

    /// `mi_realloc`: in place when the size class is unchanged, else malloc, copy, free.
    fn op_realloc(&mut self, os: &mut Os, tid: Tid, slot: u8, bytes: u64) -> Mem<()> {
        let heap = self.backing_heap(os, tid);
        let Some(old) = self.slots[usize::from(slot)] else {
            self.slots[usize::from(slot)] = self.malloc(os, tid, heap, bytes)?;
            return Ok(());
        };
        let old_class = self.page((old.segment, old.slice)).block_bytes;
        if old_class == class_of(bytes) {
            return Ok(());
        }
        let Some(new) = self.malloc(os, tid, heap, bytes)? else {
            return Ok(()); // realloc failed: the old block stays
        };
        let word = os.read_u64(old.addr, "realloc")?;
        os.write_u64(new.addr, word, "realloc")?;
        self.slots[usize::from(slot)] = Some(new);
        self.free_block(os, tid, old)
    }

    fn op_heap_new(&mut self, os: &mut Os, tid: Tid, slot: u8) -> Mem<()> {
        let index = usize::from(slot);
        if let Some(old) = self.heap_slots[index] {
            match self.own_heap(tid, slot) {
                Some(_) => self.heap_delete(os, tid, old)?,
                // Another thread's live heap: leave it alone.
                None if self.heaps.contains_key(&old) => return Ok(()),
                None => {}
            }
        }
        let backing = self.backing_heap(os, tid);
        let Some(struct_block) = self.malloc(os, tid, backing, HEAP_STRUCT_BYTES)? else {
            return Ok(());
        };
        let heap = self.add_heap(tid.0, false, Some(struct_block));
        self.heap_slots[index] = Some(heap);
        Ok(())
    }

    fn op_heap_collect(&mut self, os: &mut Os, tid: Tid, heap: Option<u8>, force: bool) -> Mem<()> {
        let heap = match heap {
            Some(named) => match self.own_heap(tid, named) {
                Some(id) => id,
                None => return Ok(()),
            },
            None => self.backing_heap(os, tid),
        };
        self.heap_collect(
            os,
            tid,
            heap,
            if force {
                Collect::Force
            } else {
                Collect::Normal
            },
        )
    }

    // ---- heaps ----

    /// `mi_heap_delete`: absorb the pages into the backing heap, then free the heap struct.
    fn heap_delete(&mut self, os: &mut Os, tid: Tid, heap: u32) -> Mem<()> {
        let backing = self.backing_heap(os, tid);
        let Some(deleted) = self.heaps.remove(&heap) else {
            return Ok(());
        };
        for slot in self.heap_slots.iter_mut().filter(|s| **s == Some(heap)) {
            *slot = None;
        }
        for &entry in &deleted.pages {
            let page_ref = entry.page_ref;
            let (base, page) = self.segment_and_page_mut(page_ref);
            page.heap = Some(backing);
            page.absorbed = true;
            os.write_u64(
                page_header(base, page_ref.1) + PAGE_HEAP,
                u64::from(backing),
                "heap_delete",
            )?;
            self.heaps
                .get_mut(&backing)
                .expect("backing heap")
                .pages
                .push(entry);
        }
        self.recycle_page_list(deleted.pages);
        match deleted.struct_block {
            Some(block) => self.free_block(os, tid, block),
            None => Ok(()),
        }
    }

    /// `mi_heap_collect_ex`: the collect whose forced form runs at process exit.
    fn heap_collect(&mut self, os: &mut Os, tid: Tid, heap: u32, mode: Collect) -> Mem<()> {
        let backing = self.heaps.get(&heap).is_some_and(|h| h.backing);
        if mode == Collect::Force && tid == MAIN_THREAD && backing {
            // The main thread at end of program: reclaim every abandoned segment.
            while let Some(&segment) = self.abandoned.first() {
                self.reclaim(os, segment, tid, heap)?;
            }
        }
        // The heap's pages as they are now: visiting one may free it, or drop it from the list.
        // (A fault returns early and leaves the copy to be dropped: the run ends anyway.)
        let mut pages = self.spares.page_lists.pop().unwrap_or_default();
        if let Some(h) = self.heaps.get(&heap) {
            pages.extend_from_slice(&h.pages);
        }
        for &HeapPage { page_ref, .. } in &pages {
            let Some(base) = self.segments.get(&page_ref.0).map(|s| s.base) else {
                continue;
            };
            let used = self.collect_thread_free(os, page_ref, "heap_page_collect")?;
            if mode == Collect::Force && !self.settings.collect_after_segment_free {
                // Fixed (d824b9db): purge before the page free that may release the segment.
                self.segment_collect(os, base, page_ref.0, true)?;
            }
            if used == 0 {
                self.page_free(os, page_ref)?;
            } else if mode == Collect::Abandon {
                self.page_mut(page_ref).heap = None;
                os.write_u64(
                    page_header(base, page_ref.1) + PAGE_HEAP,
                    0,
                    "segment_abandon",
                )?;
                self.heaps
                    .get_mut(&heap)
                    .expect("visited")
                    .pages
                    .retain(|p| p.page_ref != page_ref);
            }
            if mode == Collect::Force && self.settings.collect_after_segment_free {
                // mimalloc 2.1.4: the segment may have been freed by the page free just above.
                self.segment_collect(os, base, page_ref.0, true)?;
            }
        }
        self.recycle_page_list(pages);
        if mode == Collect::Abandon {
            return Ok(());
        }
        // `_mi_segment_thread_collect`: purge this thread's segments (expired ones unless forced).
        let mut owned = std::mem::take(&mut self.spares.scratch_segments);
        owned.clear();
        owned.extend(
            self.segments
                .iter()
                .filter(|(_, s)| s.owner == Some(tid.0))
                .map(|(&id, s)| (id, s.base)),
        );
        for &(id, base) in &owned {
            self.segment_collect(os, base, id, mode == Collect::Force)?;
        }
        self.spares.scratch_segments = owned;
        if tid == MAIN_THREAD && backing {
            self.arena_collect(os, mode == Collect::Force)?;
        }
        Ok(())
    }

    // ---- blocks ----

    fn malloc(&mut self, os: &mut Os, tid: Tid, heap: u32, bytes: u64) -> Mem<Option<Block>> {
        let block_bytes = class_of(bytes);
        let page_ref = match self.find_page(os, heap, block_bytes)? {
            Some(page_ref) => page_ref,
            None => match self.page_alloc(os, tid, heap, block_bytes)? {
                Some(page_ref) => page_ref,
                None => return Ok(None),
            },
        };
        let (base, page) = self.segment_and_page_mut(page_ref);
        let index = page.free.pop().unwrap_or_else(|| {
            page.fresh += 1;
            page.fresh - 1
        });
        page.used += 1;
        let used = page.used;
        os.write_u64(
            page_header(base, page_ref.1) + PAGE_USED,
            u64::from(used),
            "malloc",
        )?;
        let addr = slice_addr(base, page_ref.1) + u64::from(index) * block_bytes;
        os.write_u64(addr, addr ^ COOKIE, "malloc")?;
        Ok(Some(Block {
            segment: page_ref.0,
            slice: page_ref.1,
            index,
            addr,
        }))
    }

    /// A page of `heap` with room for a `block_bytes` block, collecting thread frees if needed.
    fn find_page(&mut self, os: &mut Os, heap: u32, block_bytes: u64) -> Mem<Option<PageRef>> {
        // The first page of the class with room; on the way, the first one with cross-thread
        // frees to collect, as no page before it has any.
        let mut collect_from = None;
        for (at, entry) in self.heap(heap).pages.iter().enumerate() {
            if entry.block_bytes != block_bytes {
                continue;
            }
            let page_ref = entry.page_ref;
            let page = self.page(page_ref);
            if page.has_room() {
                return Ok(Some(page_ref));
            }
            if collect_from.is_none() && !page.thread_free.is_empty() {
                collect_from = Some(at);
            }
        }
        let Some(collect_from) = collect_from else {
            return Ok(None);
        };
        // None has room: collect the cross-thread frees of the class's pages, in order, until one
        // has. Collecting leaves the heap's page list as it is, so it is walked by index.
        for at in collect_from..self.heap(heap).pages.len() {
            let entry = self.heap(heap).pages[at];
            if entry.block_bytes != block_bytes {
                continue;
            }
            let page_ref = entry.page_ref;
            if !self.page(page_ref).thread_free.is_empty() {
                self.collect_thread_free(os, page_ref, "malloc")?;
                if self.page(page_ref).has_room() {
                    return Ok(Some(page_ref));
                }
            }
        }
        Ok(None)
    }

    /// `mi_free`: local free on the owning thread, else push on the page's thread-free list.
    fn free_block(&mut self, os: &mut Os, tid: Tid, block: Block) -> Mem<()> {
        let Some(segment) = self.segments.get_mut(&block.segment) else {
            return Ok(());
        };
        let base = segment.base;
        let local = segment.owner == Some(tid.0);
        // `mi_free` reads `segment->thread_id` to choose the path.
        os.read_u64(base + SEGMENT_THREAD_ID, "free")?;
        let page_ref = (block.segment, block.slice);
        let header = page_header(base, block.slice);
        let page = segment.pages.get_mut(block.slice).expect("live page");
        if local {
            page.free.push(block.index);
            page.used -= 1;
            let used = page.used;
            os.write_u64(header + PAGE_USED, u64::from(used), "free")?;
            if used == 0 {
                self.page_free(os, page_ref)?;
            }
        } else {
            page.thread_free.push(block.index);
            let pending = page.thread_free.len() as u64;
            os.write_u64(header + PAGE_XTHREAD_FREE, pending, "free_mt")?;
        }
        Ok(())
    }

    // ---- pages ----

    /// The live heap `id`.
    fn heap(&self, id: u32) -> &Heap {
        self.heaps.get(&id).expect("live heap")
    }

    fn page(&self, page_ref: PageRef) -> &Page {
        self.segments
            .get(&page_ref.0)
            .expect("live segment")
            .pages
            .get(page_ref.1)
            .expect("live page")
    }

    fn page_mut(&mut self, page_ref: PageRef) -> &mut Page {
        self.segments
            .get_mut(&page_ref.0)
            .and_then(|s| s.pages.get_mut(page_ref.1))
            .expect("live page")
    }

    /// The base of the page's segment, with the page: one search of the segments where
    /// `segments[..].base` and `page_mut` make two (a malloc or a free wants both).
    fn segment_and_page_mut(&mut self, page_ref: PageRef) -> (u64, &mut Page) {
        let segment = self.segments.get_mut(&page_ref.0).expect("live segment");
        let page = segment.pages.get_mut(page_ref.1).expect("live page");
        (segment.base, page)
    }

    /// `_mi_page_thread_free_collect`: move cross-thread frees to the local free list. Returns
    /// the page's used blocks after, which its callers look at next.
    fn collect_thread_free(&mut self, os: &mut Os, page_ref: PageRef, site: Site) -> Mem<u32> {
        let (base, page) = self.segment_and_page_mut(page_ref);
        let header = page_header(base, page_ref.1);
        os.read_u64(header + PAGE_XTHREAD_FREE, site)?;
        if page.thread_free.is_empty() {
            return Ok(page.used);
        }
        page.used -= page.thread_free.len() as u32;
        // Appended in order, and the thread-free list keeps its capacity for the next frees.
        page.free.append(&mut page.thread_free);
        let used = page.used;
        os.write_u64(header + PAGE_XTHREAD_FREE, 0, site)?;
        os.write_u64(header + PAGE_USED, u64::from(used), site)?;
        Ok(used)
    }

    /// Collects the cross-thread frees of the pages `heap-delete` moved to a backing heap in the
    /// segments `tid` owns, and frees those left with no block; true if one was freed. The
    /// backing heap collects such a page only when it looks for room in the page's size class,
    /// collects (`heap-collect`), or its thread exits; a program that rotates private heaps
    /// while other threads free their blocks may do none of these, and grows without bound.
    fn collect_emptied_absorbed_pages(&mut self, os: &mut Os, tid: Tid) -> Mem<bool> {
        let mut pending = self.spares.page_lists.pop().unwrap_or_default();
        pending.extend(
            self.segments
                .iter()
                .filter(|(_, segment)| segment.owner == Some(tid.0))
                .flat_map(|(&id, segment)| {
                    segment
                        .pages
                        .iter()
                        .filter(|(_, page)| page.absorbed && !page.thread_free.is_empty())
                        .map(move |(first, page)| HeapPage {
                            page_ref: (id, first),
                            block_bytes: page.block_bytes,
                        })
                }),
        );
        let mut freed = false;
        for &HeapPage { page_ref, .. } in &pending {
            if self.collect_thread_free(os, page_ref, "page_collect_before_grow")? == 0 {
                self.page_free(os, page_ref)?;
                freed = true;
            }
        }
        self.recycle_page_list(pending);
        Ok(freed)
    }

    /// A new page for `heap`: from this thread's segments, a reclaimed one, or a new segment.
    fn page_alloc(
        &mut self,
        os: &mut Os,
        tid: Tid,
        heap: u32,
        block_bytes: u64,
    ) -> Mem<Option<PageRef>> {
        let slices = if block_bytes <= SMALL_BLOCK_BYTES_MAX {
            1
        } else {
            MEDIUM_PAGE_SLICES
        };
        let own_free_run = |allocator: &Allocator| {
            allocator
                .segments
                .iter()
                .filter(|(_, s)| s.owner == Some(tid.0))
                .find_map(|(&id, s)| s.free_run(slices).map(|first| (id, first)))
        };
        let mut found = own_free_run(self);
        if found.is_none() && !self.settings.absorbed_pages_never_collected {
            // Fixed: before the thread takes space elsewhere (an abandoned segment or a new one),
            // the absorbed pages of its own that other threads emptied are collected and freed.
            if self.collect_emptied_absorbed_pages(os, tid)? {
                found = own_free_run(self);
            }
        }
        if found.is_none() && self.heap(heap).backing {
            // `mi_segment_reclaim_or_alloc`: private heaps never reclaim (`no_reclaim`).
            if let Some(&segment) = self.abandoned.first() {
                self.reclaim(os, segment, tid, heap)?;
                found = self.segments[&segment]
                    .free_run(slices)
                    .map(|first| (segment, first));
            }
        }
        let (id, first) = match found {
            Some(found) => found,
            None => match self.segment_alloc(os, tid)? {
                Some(id) => (id, 1),
                None => return Ok(None),
            },
        };
        let segment = self.segments.get_mut(&id).expect("found");
        let base = segment.base;
        if os
            .commit(
                slice_addr(base, first),
                u64::from(slices) * SLICE_BYTES,
                "page_alloc",
            )
            .is_err()
        {
            if self.segments[&id].used_pages == 0 {
                self.segment_free(os, id)?;
            }
            return Ok(None);
        }
        for slice in first..first + slices {
            segment.slice_used.insert(slice);
            if segment.purge_mask.remove(slice) {
                segment.purge_pending -= 1;
            }
        }
        let capacity = ((u64::from(slices) * SLICE_BYTES) / block_bytes) as u32;
        segment.pages.insert(
            first,
            Page {
                slices,
                block_bytes,
                capacity,
                fresh: 0,
                free: self.spares.block_lists.pop().unwrap_or_default(),
                thread_free: self.spares.block_lists.pop().unwrap_or_default(),
                used: 0,
                heap: Some(heap),
                absorbed: false,
            },
        );
        segment.used_pages += 1;
        let header = page_header(base, first);
        os.write_u64(header + PAGE_USED, 0, "page_alloc")?;
        os.write_u64(header + PAGE_HEAP, u64::from(heap), "page_alloc")?;
        os.write_u64(header + PAGE_BLOCK_BYTES, block_bytes, "page_alloc")?;
        let used = os.read_u64(base + SEGMENT_USED, "page_alloc")?;
        os.write_u64(base + SEGMENT_USED, used + 1, "page_alloc")?;
        self.heaps
            .get_mut(&heap)
            .expect("heap")
            .pages
            .push(HeapPage {
                page_ref: (id, first),
                block_bytes,
            });
        Ok(Some((id, first)))
    }

    /// `_mi_page_free` → `_mi_segment_page_free`: the page's slices are scheduled for purge, and
    /// the segment is freed when this was its last used page.
    fn page_free(&mut self, os: &mut Os, page_ref: PageRef) -> Mem<()> {
        let (id, first) = page_ref;
        let now = os.now_tick();
        let delay = self.settings.purge_delay_ticks;
        let segment = self.segments.get_mut(&id).expect("live segment");
        let base = segment.base;
        let page = segment.pages.remove(first).expect("live page");
        segment.used_pages -= 1;
        let segment_unused = segment.used_pages == 0;
        for slice in first..first + page.slices {
            segment.slice_used.remove(slice);
            if delay > 0 && segment.purge_mask.insert(slice) {
                segment.purge_pending += 1;
            }
        }
        // No overflow: the clock stops at `CLOCK_TICKS_MAX`, below `u64::MAX - PURGE_DELAY.max`.
        segment.purge_expire = now + delay;
        debug_assert_eq!(segment.purge_pending, segment.purge_mask.len());
        let purge_pending = u64::from(segment.purge_pending);
        if let Some(heap) = page.heap.and_then(|h| self.heaps.get_mut(&h)) {
            // A page is in its heap's list once: the walk stops there, where `retain` would go
            // on. From the end, as the page freed is most often the one its heap took last.
            // The last page goes by a `truncate`: `remove` moves the pages after it with a call
            // to `memmove`, made even when there are none.
            if let Some(at) = heap.pages.iter().rposition(|p| p.page_ref == page_ref) {
                if at + 1 == heap.pages.len() {
                    heap.pages.truncate(at);
                } else {
                    heap.pages.remove(at);
                }
            }
        }
        let slices = page.slices;
        self.recycle_block_list(page.free);
        self.recycle_block_list(page.thread_free);
        let header = page_header(base, first);
        os.write_u64(header + PAGE_USED, 0, "page_free")?;
        os.write_u64(header + PAGE_BLOCK_BYTES, 0, "page_free")?;
        if delay == 0 {
            os.decommit(
                slice_addr(base, first),
                u64::from(slices) * SLICE_BYTES,
                "page_purge",
            )?;
        }
        os.write_u64(base + SEGMENT_PURGE_MASK, purge_pending, "page_free")?;
        let used = os.read_u64(base + SEGMENT_USED, "page_free")?;
        os.write_u64(base + SEGMENT_USED, used.saturating_sub(1), "page_free")?;
        if segment_unused {
            self.segment_free(os, id)?;
        }
        Ok(())
    }

    // ---- segments ----

    fn segment_alloc(&mut self, os: &mut Os, tid: Tid) -> Mem<Option<u64>> {
        let (base, arena) = if self.settings.arena {
            match self.arena_slot(os)? {
                Some((arena, slot, base)) => (base, Some((arena, slot))),
                None => return Ok(None),
            }
        } else {
            match os.reserve(SEGMENT_BYTES, SEGMENT_BYTES, "segment_alloc") {
                Ok(base) => (base, None),
                Err(_) => return Ok(None),
            }
        };
        if os.commit(base, SLICE_BYTES, "segment_alloc").is_err() {
            match arena {
                Some((arena, slot)) => self.arenas[arena].slots[slot] = ArenaSlot::Free,
                None => os.release(base, SEGMENT_BYTES, "segment_alloc")?,
            }
            return Ok(None);
        }
        if arena.is_some() && self.settings.guard_freed_segments {
            os.protect(base, SLICE_BYTES, Prot::READ_WRITE, "segment_alloc")?;
        }
        os.write_u64(base + SEGMENT_COOKIE, base ^ COOKIE, "segment_alloc")?;
        os.write_u64(
            base + SEGMENT_THREAD_ID,
            u64::from(tid.0) + 1,
            "segment_alloc",
        )?;
        os.write_u64(base + SEGMENT_USED, 0, "segment_alloc")?;
        os.write_u64(base + SEGMENT_PURGE_MASK, 0, "segment_alloc")?;
        self.segments_created += 1;
        let id = self.segments_created;
        let mut slice_used = SliceSet::default();
        slice_used.insert(0);
        self.segments.insert(
            id,
            Segment {
                base,
                owner: Some(tid.0),
                used_pages: 0,
                slice_used,
                pages: self.spares.page_tables.pop().unwrap_or_default(),
                purge_mask: SliceSet::default(),
                purge_pending: 0,
                purge_expire: 0,
                arena,
            },
        );
        Ok(Some(id))
    }

    /// `mi_segment_free`: back to the OS, or to the arena (decommitted now when `purge_delay` is
    /// 0, else kept committed until the delay expires).
    fn segment_free(&mut self, os: &mut Os, id: u64) -> Mem<()> {
        let mut segment = self.segments.remove(&id).expect("live segment");
        self.abandoned.retain(|&s| s != id);
        // The segment's last page is gone: its table holds no page, only empty entries, which
        // the next segment keeps rather than pushing them again one by one.
        debug_assert_eq!(segment.pages.len(), 0);
        self.spares
            .page_tables
            .push(std::mem::take(&mut segment.pages));
        match segment.arena {
            None => os.release(segment.base, SEGMENT_BYTES, "segment_free"),
            Some((arena, slot)) if self.settings.purge_delay_ticks == 0 => {
                self.arenas[arena].slots[slot] = ArenaSlot::Free;
                os.decommit(segment.base, SEGMENT_BYTES, "segment_free")
            }
            Some((arena, slot)) => {
                self.arenas[arena].slots[slot] = ArenaSlot::Freed {
                    expire: os.now_tick() + self.settings.purge_delay_ticks,
                };
                if self.settings.guard_freed_segments {
                    os.protect(segment.base, SLICE_BYTES, Prot::NONE, "segment_free")?;
                }
                Ok(())
            }
        }
    }

    /// `mi_segment_try_purge`: reads the segment header, decommits freed slices whose delay has
    /// expired (all of them when forced).
    fn segment_collect(&mut self, os: &mut Os, base: u64, id: u64, force: bool) -> Mem<()> {
        let pending = os.read_u64(base + SEGMENT_PURGE_MASK, "segment_collect")?;
        let now = os.now_tick();
        let Some(segment) = self.segments.get_mut(&id) else {
            // The segment is gone but its memory was still readable: a silent read of freed
            // metadata (arena memory with a purge delay and no guard).
            return Ok(());
        };
        debug_assert_eq!(segment.purge_pending, segment.purge_mask.len());
        if pending == 0 || segment.purge_pending == 0 || (!force && now < segment.purge_expire) {
            return Ok(());
        }
        // One decommit per run of consecutive slices, lowest first.
        let purged = std::mem::take(&mut segment.purge_mask);
        segment.purge_pending = 0;
        let mut start = purged.next(0, true);
        while start < SLICES_PER_SEGMENT {
            let end = purged.next(start, false);
            os.decommit(
                slice_addr(base, start),
                u64::from(end - start) * SLICE_BYTES,
                "segment_purge",
            )?;
            start = purged.next(end, true);
        }
        os.write_u64(base + SEGMENT_PURGE_MASK, 0, "segment_collect")
    }

    /// `mi_segment_reclaim`: the segment and its pages now belong to `heap` on thread `tid`.
    fn reclaim(&mut self, os: &mut Os, id: u64, tid: Tid, heap: u32) -> Mem<()> {
        self.abandoned.retain(|&s| s != id);
        let segment = self.segments.get_mut(&id).expect("abandoned segment");
        segment.owner = Some(tid.0);
        let base = segment.base;
        let mut reclaimed = self.spares.page_lists.pop().unwrap_or_default();
        for (first, page) in segment.pages.iter_mut() {
            page.heap = Some(heap);
            reclaimed.push(HeapPage {
                page_ref: (id, first),
                block_bytes: page.block_bytes,
            });
        }
        os.write_u64(
            base + SEGMENT_THREAD_ID,
            u64::from(tid.0) + 1,
            "segment_reclaim",
        )?;
        for &entry in &reclaimed {
            os.write_u64(
                page_header(base, entry.page_ref.1) + PAGE_HEAP,
                u64::from(heap),
                "segment_reclaim",
            )?;
            self.heaps
                .get_mut(&heap)
                .expect("reclaiming heap")
                .pages
                .push(entry);
        }
        self.recycle_page_list(reclaimed);
        Ok(())
    }

    // ---- arenas ----

    /// A free segment slot in an arena, reserving a new 1 GiB arena when none is left.
    fn arena_slot(&mut self, os: &mut Os) -> Mem<Option<(usize, usize, u64)>> {
        let found = self.arenas.iter().enumerate().find_map(|(a, arena)| {
            arena
                .slots
                .iter()
                .position(|s| *s != ArenaSlot::Used)
                .map(|s| (a, s))
        });
        let (arena, slot) = match found {
            Some(found) => found,
            None => match os.reserve(
                SEGMENT_BYTES * ARENA_SEGMENTS as u64,
                SEGMENT_BYTES,
                "arena_reserve",
            ) {
                Ok(base) => {
                    self.arenas.push(Arena {
                        base,
                        slots: vec![ArenaSlot::Free; ARENA_SEGMENTS],
                    });
                    (self.arenas.len() - 1, 0)
                }
                Err(_) => return Ok(None),
            },
        };
        let base = self.arenas[arena].base + slot as u64 * SEGMENT_BYTES;
        if let ArenaSlot::Freed { .. } = self.arenas[arena].slots[slot] {
            // Reusing a freed segment before its purge: drop what its pages had committed.
            os.decommit(
                base + SLICE_BYTES,
                SEGMENT_BYTES - SLICE_BYTES,
                "segment_alloc",
            )?;
        }
        self.arenas[arena].slots[slot] = ArenaSlot::Used;
        Ok(Some((arena, slot, base)))
    }

    /// `_mi_arena_collect`: decommit freed segments whose purge delay expired (all when forced).
    fn arena_collect(&mut self, os: &mut Os, force: bool) -> Mem<()> {
        let now = os.now_tick();
        for arena in &mut self.arenas {
            for (slot, state) in arena.slots.iter_mut().enumerate() {
                if let ArenaSlot::Freed { expire } = *state
                    && (force || now >= expire)
                {
                    *state = ArenaSlot::Free;
                    os.decommit(
                        arena.base + slot as u64 * SEGMENT_BYTES,
                        SEGMENT_BYTES,
                        "arena_purge",
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets of slices with runs of every length, from fixed draws.
    fn slice_sets() -> Vec<SliceSet> {
        let mut next = crate::rng::test_draws(0x2545_f491_4f6c_dd1d);
        let mut sets = vec![SliceSet::default(), SliceSet([u64::MAX; SLICE_WORDS])];
        for density in 1..=8 {
            for _ in 0..50 {
                let mut set = SliceSet::default();
                for slice in 0..SLICES_PER_SEGMENT {
                    if next() % 8 < density {
                        set.insert(slice);
                    }
                }
                sets.push(set);
            }
        }
        sets
    }

    fn contains(set: &SliceSet, slice: u32) -> bool {
        set.0[slice as usize / 64] & (1 << (slice % 64)) != 0
    }

    /// The bitmap search answers as the scan slice by slice that it replaced.
    #[test]
    fn free_run_is_the_first_fit_a_slice_scan_finds() {
        for slice_used in slice_sets() {
            let segment = Segment {
                base: 0,
                owner: None,
                used_pages: 0,
                slice_used,
                pages: PageTable::default(),
                purge_mask: SliceSet::default(),
                purge_pending: 0,
                purge_expire: 0,
                arena: None,
            };
            for count in [1, 2, 7, MEDIUM_PAGE_SLICES, 64, 65, SLICES_PER_SEGMENT - 1] {
                let mut run = 0;
                let scanned = (1..SLICES_PER_SEGMENT).find_map(|slice| {
                    run = if contains(&slice_used, slice) {
                        0
                    } else {
                        run + 1
                    };
                    (run == count).then(|| slice + 1 - count)
                });
                assert_eq!(segment.free_run(count), scanned, "count {count}");
            }
        }
    }

    /// Refusing slots and heaps out of range in files drops no generated op: every op decoded
    /// from bytes, as fuzzing and sweeps decode them, has its slot and heap in range, so the
    /// scenarios they make are the ones they made when out-of-range values were taken modulo.
    #[test]
    fn every_generated_op_names_a_slot_and_heap_in_range() {
        let mut next = crate::rng::test_draws(0x51_07_0f_4a_11_0c);
        let bytes: Vec<u8> = (0..1 << 16).map(|_| next() as u8).collect();
        let mut input = Unstructured::new(&bytes);
        let mut decoded = 0;
        // Past the end of its bytes `arbitrary` decodes zeros, never an error: stop at the end.
        while !input.is_empty() {
            let op = AllocatorOp::arbitrary(&mut input).unwrap();
            let (slot, heap) = match op {
                AllocatorOp::Malloc { slot, heap, .. } => (Some(slot), heap),
                AllocatorOp::Free { slot } | AllocatorOp::Realloc { slot, .. } => {
                    (Some(slot), None)
                }
                AllocatorOp::HeapNew { heap } | AllocatorOp::HeapDelete { heap } => {
                    (None, Some(heap))
                }
                AllocatorOp::HeapCollect { heap, .. } => (None, heap),
            };
            assert!(slot.is_none_or(|slot| check_slot(slot).is_ok()), "{op:?}");
            assert!(heap.is_none_or(|heap| check_heap(heap).is_ok()), "{op:?}");
            decoded += 1;
        }
        assert!(decoded > 1000, "only {decoded} ops decoded");
    }

    /// What `sim list allocator` says of `malloc` and `realloc`: any request above 32 KiB is a
    /// 32 KiB block, so 100000 and 4000000 bytes run alike.
    #[test]
    fn requests_above_32_kib_get_a_32_kib_block() {
        assert_eq!(class_of(32 << 10), 32 << 10);
        assert_eq!(class_of(100_000), 32 << 10);
        assert_eq!(class_of(4_000_000), 32 << 10);
        assert_eq!(class_of(u64::from(u32::MAX)), 32 << 10);
    }

    #[test]
    fn next_finds_members_and_gaps_and_len_counts_members() {
        for set in slice_sets() {
            for from in 0..=SLICES_PER_SEGMENT {
                for member in [true, false] {
                    let scanned = (from..SLICES_PER_SEGMENT)
                        .find(|&slice| contains(&set, slice) == member)
                        .unwrap_or(SLICES_PER_SEGMENT);
                    assert_eq!(set.next(from, member), scanned);
                    for limit in [from, from + 1, from + 64, SLICES_PER_SEGMENT] {
                        let limit = limit.min(SLICES_PER_SEGMENT);
                        assert_eq!(set.next_before(from, member, limit), scanned.min(limit));
                    }
                }
            }
            let members = (0..SLICES_PER_SEGMENT)
                .filter(|&slice| contains(&set, slice))
                .count();
            assert_eq!(set.len() as usize, members);
        }
    }
}
