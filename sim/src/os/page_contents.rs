//! The bytes of committed pages that were written: the simulation's own storage behind
//! `Os::read` and `Os::write` (subjects on the host arena keep theirs in real memory instead).
//!
//! A page that was never written reads as zeros and takes no storage. A written page holds a
//! 4 KiB frame. Decommit and release drop frames, and a dropped frame is cleared and kept for
//! reuse (at most `SPARES_MAX` of them) instead of going back to the host allocator: subjects
//! reserve, write and release the same shapes on every repetition, and a fresh zeroed 4 KiB
//! allocation per written page per repetition was about a sixth of a fuzz input's cost. A frame
//! remembers the extent that was written, so that clearing it touches only those bytes (a few
//! words of block headers, most often) rather than the whole page. When an `Os` is dropped its
//! cleared frames go to a pool of the thread's, from which the next `Os` takes its first ones: a
//! fuzz target makes an `Os` per input.
//!
//! Frames live in a slab. Lookups go through a hash index of the written pages (an `IdTable`),
//! and before that through the last few pages accessed, remembered with their slots, since a
//! subject mostly reads and writes the pages it just touched (a block's, its page header's and
//! its segment header's). The written pages of a range that is decommitted or released are found
//! by probing the index for each of its pages when the range is short, else by a walk of a
//! dense list of the written pages: whichever looks at fewer entries. (An ordered map from page
//! to slot served those ranges before; keeping it up to date on every new frame and every drop
//! was about 3% of an allocator fuzz input.)
//!
//! Nothing here is visible to a subject: a reused frame reads exactly as a new zeroed one, which
//! the tests below check.

use std::cell::{Cell, RefCell};

use super::id_table::{IdTable, spread_key};
use super::pages::PAGE_SIZE;

const FRAME_BYTES: usize = PAGE_SIZE as usize;
/// At most this many cleared frames (1 MiB) are kept by one `Os`, and as many by the thread's
/// pool; more are given back to the host allocator.
const SPARES_MAX: usize = 256;
/// How many pages accessed last are remembered. An allocator's op goes between three: its
/// segment header's, its page header's and its block's; with two remembered, about every third
/// access needed a lookup.
const REMEMBERED_PAGES: usize = 4;
/// The page of an empty entry of `PageContents::last`: no page starts there (pages are aligned),
/// so it matches no lookup.
const NO_PAGE: u64 = u64::MAX;

thread_local! {
    /// Cleared frames that dropped `Os`es left behind, for the next one on this thread.
    static POOL: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

struct Frame {
    /// `FRAME_BYTES` long, or empty in a free slot whose frame went back to the host.
    bytes: Box<[u8]>,
    /// Where the frame's page is in `PageContents::written_pages`, while it holds one.
    written_at: u32,
    /// The bytes that may be non-zero, `[start, end)`: everything outside is zero. Nothing
    /// written is `NOTHING_WRITTEN`, whose start is above its end, so that a write widens it
    /// with a `min` and a `max` and no test of whether it was empty.
    written: (usize, usize),
}

/// `Frame::written` of a frame that holds only zeros.
const NOTHING_WRITTEN: (usize, usize) = (FRAME_BYTES, 0);

impl Frame {
    /// Makes the frame read as a new zeroed one again.
    fn clear(&mut self) {
        let (start, end) = self.written;
        if start < end {
            self.bytes[start..end].fill(0);
        }
        self.written = NOTHING_WRITTEN;
    }
}

/// Leaves the thread's pool holding exactly `SPARES_MAX` cleared frames, in a list with room for
/// exactly that many: the state every fuzz input starts from (`os::reset_thread_spares`),
/// whatever the input before it took from the pool or gave back. Pooled frames are all zeros and
/// nothing looks at where they lie, so a run's code depends only on how many there are. (Freeing
/// the pool instead, as the other spares are freed, cost 10% of an allocator fuzz input's
/// instructions: a zeroed 4 KiB allocation per page it writes.) The frames a run takes go back
/// to the pool when its OS is dropped, so topping it up seldom allocates.
pub(crate) fn reset_pool() {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.truncate(SPARES_MAX);
        if pool.capacity() != SPARES_MAX {
            let mut exact = Vec::with_capacity(SPARES_MAX);
            exact.append(&mut pool);
            *pool = exact;
        }
        while pool.len() < SPARES_MAX {
            pool.push(vec![0u8; FRAME_BYTES].into_boxed_slice());
        }
    });
}

/// A zeroed frame's bytes: from the thread's pool when it has one.
fn zeroed_bytes() -> Box<[u8]> {
    POOL.with(|pool| pool.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; FRAME_BYTES].into_boxed_slice())
}

pub(crate) struct PageContents {
    /// Written pages → slots in `frames`, by `spread_key` of the page (page addresses in
    /// different segments share their low bits).
    slot_by_page: IdTable<u32>,
    /// The same pages, in no order, for the walk of a long range that is dropped: a slab walk
    /// would also visit the spare frames. Their slots are at the same index of `written_slots`,
    /// apart so that the walk reads nothing but pages.
    written_pages: Vec<u64>,
    written_slots: Vec<u32>,
    frames: Vec<Frame>,
    /// Slots of `frames` that hold no page but keep a cleared frame: at most `SPARES_MAX`.
    spare_slots: Vec<u32>,
    /// Slots of `frames` that hold no page and whose frame went back to the host.
    empty_slots: Vec<u32>,
    /// Pages accessed last, with their slots, while they hold frames (`NO_PAGE` in an empty
    /// entry): a subject mostly goes between a few pages (a block's and its headers').
    last: [Cell<(u64, u32)>; REMEMBERED_PAGES],
    /// The entry of `last` the next remembered page replaces (round robin).
    last_next: Cell<u8>,
}

impl Default for PageContents {
    fn default() -> PageContents {
        PageContents {
            slot_by_page: IdTable::new(),
            written_pages: Vec::new(),
            written_slots: Vec::new(),
            frames: Vec::new(),
            spare_slots: Vec::new(),
            empty_slots: Vec::new(),
            last: std::array::from_fn(|_| Cell::new((NO_PAGE, 0))),
            last_next: Cell::new(0),
        }
    }
}

/// A dropped OS's page contents, emptied, for the next OS (see `Os::new`): a fuzz input writes
/// dozens of pages, and the index and lists grew from nothing again on every input. The frames
/// themselves go to the thread's pool, as when an OS is dropped. Only capacity is kept: which
/// slot a page takes is never observable.
#[derive(Default)]
pub(crate) struct ContentsStorage(Option<PageContents>);

impl PageContents {
    /// Contents with no page written, in the index and lists `storage` holds (emptied by
    /// `keep_storage`), if it holds any.
    pub(crate) fn new_in(storage: &mut ContentsStorage) -> PageContents {
        storage.0.take().unwrap_or_default()
    }

    /// Gives the frames to the thread's pool and hands these contents, emptied, to `storage`,
    /// for the next `new_in`.
    pub(crate) fn keep_storage(&mut self, storage: &mut ContentsStorage) {
        self.pool_frames();
        let mut kept = std::mem::take(self);
        kept.slot_by_page = kept.slot_by_page.recycled();
        kept.written_pages.clear();
        kept.written_slots.clear();
        kept.frames.clear();
        kept.spare_slots.clear();
        kept.empty_slots.clear();
        for last in &kept.last {
            last.set((NO_PAGE, 0));
        }
        kept.last_next.set(0);
        storage.0 = Some(kept);
    }

    /// Clears the frames and hands them to the thread's pool, up to its bound. At thread exit
    /// the pool may be gone before these contents (kept in the OS's storage, which is dropped
    /// then too): the frames are then freed.
    fn pool_frames(&mut self) {
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            for frame in &mut self.frames {
                if pool.len() >= SPARES_MAX {
                    break;
                }
                if !frame.bytes.is_empty() {
                    frame.clear();
                    pool.push(std::mem::take(&mut frame.bytes));
                }
            }
        });
    }
}

impl PageContents {
    /// Always inlined, with the word reads and writes it serves: LLVM left it out of line in the
    /// allocator's malloc, a call per header word.
    ///
    /// Every remembered page is compared, with no branch until the answer: which one a subject
    /// touches changes from one access to the next, and a branch per page was mispredicted on
    /// many of them. A page is remembered at most once (it is remembered only when no entry
    /// holds it), so at most one compare matches. The matches go into a mask whose lowest bit
    /// is the index: a choice among the entries, written as such, compiled to branches again
    /// and saved no time. This one (an allocator fuzz input 1.450 M -> 1.502 M instructions)
    /// took its corpus from 119.9 to 116.8 µs an input (`fuzz_exec allocator 3000
    /// corpus/allocator`, alternating builds).
    #[inline(always)]
    fn slot_of(&self, page: u64) -> Option<u32> {
        let mut matches = 0u32;
        for (index, last) in self.last.iter().enumerate() {
            matches |= u32::from(last.get().0 == page) << index;
        }
        if matches != 0 {
            let index = matches.trailing_zeros() as usize % REMEMBERED_PAGES;
            return Some(self.last[index].get().1);
        }
        self.slot_probed(page)
    }

    /// `slot_of` for a page that is not remembered: a probe of the index. Out of line, so that
    /// the common case inlines small into every read and write.
    #[inline(never)]
    fn slot_probed(&self, page: u64) -> Option<u32> {
        let slot = *self.slot_by_page.get(&spread_key(page))?;
        self.remember(page, slot);
        Some(slot)
    }

    fn remember(&self, page: u64, slot: u32) {
        let next = self.last_next.get();
        self.last[usize::from(next)].set((page, slot));
        self.last_next.set((next + 1) % REMEMBERED_PAGES as u8);
    }

    /// Copies `buf.len()` bytes at `offset` of `page` into `buf`; never-written bytes read as 0.
    #[inline]
    pub(crate) fn read(&self, page: u64, offset: usize, buf: &mut [u8]) {
        match self.slot_of(page) {
            Some(slot) => {
                buf.copy_from_slice(&self.frames[slot as usize].bytes[offset..offset + buf.len()])
            }
            None => buf.fill(0),
        }
    }

    /// The little-endian word at `offset` of `page` (`read` of eight bytes, without the copy
    /// loop: a header word is what subjects read most). Always inlined, as are the writes below:
    /// LLVM left them out of line in the allocator's malloc, a call per header word.
    #[inline(always)]
    pub(crate) fn read_u64(&self, page: u64, offset: usize) -> u64 {
        let mut word = [0u8; 8];
        if let Some(slot) = self.slot_of(page) {
            word.copy_from_slice(&self.frames[slot as usize].bytes[offset..offset + 8]);
        }
        u64::from_le_bytes(word)
    }

    /// Writes `value` as a little-endian word at `offset` of `page` (`write` of eight bytes).
    #[inline(always)]
    pub(crate) fn write_u64(&mut self, page: u64, offset: usize, value: u64) {
        self.write(page, offset, &value.to_le_bytes());
    }

    /// Copies `bytes` to `offset` of `page`, which must not cross the page's end.
    #[inline(always)]
    pub(crate) fn write(&mut self, page: u64, offset: usize, bytes: &[u8]) {
        let slot = match self.slot_of(page) {
            Some(slot) => slot,
            None => self.new_frame(page),
        };
        let frame = &mut self.frames[slot as usize];
        let end = offset + bytes.len();
        frame.bytes[offset..end].copy_from_slice(bytes);
        frame.written = (frame.written.0.min(offset), frame.written.1.max(end));
    }

    /// Gives `page` a zeroed frame and returns its slot.
    fn new_frame(&mut self, page: u64) -> u32 {
        // A cleared frame first; only without one is a frame allocated (or taken from the pool).
        let slot = match self.spare_slots.pop() {
            Some(slot) => slot,
            None if let Some(slot) = self.empty_slots.pop() => {
                self.frames[slot as usize].bytes = zeroed_bytes();
                slot
            }
            None => {
                self.frames.push(Frame {
                    bytes: zeroed_bytes(),
                    written_at: 0,
                    written: NOTHING_WRITTEN,
                });
                (self.frames.len() - 1) as u32
            }
        };
        self.frames[slot as usize].written_at = self.written_pages.len() as u32;
        self.written_pages.push(page);
        self.written_slots.push(slot);
        self.slot_by_page.insert(spread_key(page), slot);
        self.remember(page, slot);
        slot
    }

    /// Drops the contents of every page in `[start, end)`: they read as zeros afterwards.
    #[inline]
    pub(crate) fn drop_range(&mut self, start: u64, end: u64) {
        // Most released or decommitted ranges were never written (or no page ever was): that
        // check stays inline in every release, the search does not.
        if self.slot_by_page.len() != 0 {
            self.drop_written_range(start, end);
        }
    }

    #[inline(never)]
    fn drop_written_range(&mut self, start: u64, end: u64) {
        for last in &self.last {
            last.set((NO_PAGE, 0));
        }
        // A probe of the index for each page of the range, or one look at each written page:
        // whichever is fewer. A probe that misses costs about twice a look. (The map did it in a
        // search and a step per page dropped, but at a map insert and removal per frame; the
        // built-in subjects hold tens of written pages, which a walk passes in a few dozen
        // instructions.) The order in which frames are dropped decides only which slots later
        // pages take, which nothing sees.
        let first = start.next_multiple_of(PAGE_SIZE);
        let range_pages = end.saturating_sub(first).div_ceil(PAGE_SIZE);
        if range_pages.saturating_mul(2) <= self.written_pages.len() as u64 {
            for index in 0..range_pages {
                let page = first + index * PAGE_SIZE;
                if let Some(slot) = self.slot_by_page.remove(&spread_key(page)) {
                    self.drop_frame(slot);
                }
            }
        } else {
            // `page - start < len` holds exactly for `start <= page < end`: one compare a page.
            let len = end.saturating_sub(start);
            let mut from = 0;
            while let Some(found) = self.written_pages[from..]
                .iter()
                .position(|&page| page.wrapping_sub(start) < len)
            {
                let at = from + found;
                self.slot_by_page
                    .remove(&spread_key(self.written_pages[at]));
                // `drop_frame` moves the last written page to `at`: the walk looks at it next.
                self.drop_frame(self.written_slots[at]);
                from = at;
            }
        }
    }

    /// Clears the frame in `slot`, whose page is out of the index, and keeps it for reuse, or
    /// gives its bytes back to the host when `SPARES_MAX` are kept already. The last entry of
    /// `written_pages` and `written_slots` takes the place of the frame's.
    fn drop_frame(&mut self, slot: u32) {
        let written_at = self.frames[slot as usize].written_at;
        self.written_pages.swap_remove(written_at as usize);
        self.written_slots.swap_remove(written_at as usize);
        if let Some(&moved) = self.written_slots.get(written_at as usize) {
            self.frames[moved as usize].written_at = written_at;
        }
        let frame = &mut self.frames[slot as usize];
        if self.spare_slots.len() < SPARES_MAX {
            frame.clear();
            self.spare_slots.push(slot);
        } else {
            frame.bytes = Box::default();
            frame.written = NOTHING_WRITTEN;
            self.empty_slots.push(slot);
        }
    }

    /// Pages that hold a frame.
    pub(crate) fn pages(&self) -> usize {
        debug_assert_eq!(self.written_pages.len(), self.slot_by_page.len());
        self.slot_by_page.len()
    }
}

impl Drop for PageContents {
    /// Clears the frames and hands them to the thread's pool, up to its bound (nothing after
    /// `keep_storage`).
    fn drop(&mut self) {
        self.pool_frames();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_made_in_a_dropped_ones_storage_hold_no_page() {
        let mut storage = ContentsStorage::default();
        let mut first = PageContents::new_in(&mut storage);
        for page in 0..40u64 {
            first.write_u64(0x10_0000 + page * PAGE_SIZE, 8, page + 1);
        }
        first.keep_storage(&mut storage);
        drop(first);
        let mut next = PageContents::new_in(&mut storage);
        assert_eq!(next.pages(), 0);
        assert_eq!(next.read_u64(0x10_0000 + 3 * PAGE_SIZE, 8), 0);
        next.write_u64(0x10_0000 + 3 * PAGE_SIZE, 16, 7);
        assert_eq!(next.read_u64(0x10_0000 + 3 * PAGE_SIZE, 8), 0);
        assert_eq!(next.read_u64(0x10_0000 + 3 * PAGE_SIZE, 16), 7);
        assert_eq!(next.pages(), 1);
    }

    #[test]
    fn a_reused_frame_reads_as_zeros_outside_what_is_written_again() {
        let mut contents = PageContents::default();
        contents.write(0x1000, 8, &[0xaa; 16]);
        contents.write(0x1000, 4000, &[0xbb; 96]);
        contents.drop_range(0x1000, 0x2000);
        assert_eq!(contents.pages(), 0);
        assert_eq!(contents.spare_slots.len(), 1, "the frame is kept for reuse");
        // The spare frame now backs another page: only the new bytes are non-zero.
        contents.write(0x5000, 100, &[0xcc; 4]);
        let mut page = vec![0xffu8; FRAME_BYTES];
        contents.read(0x5000, 0, &mut page);
        let non_zero: Vec<usize> = (0..FRAME_BYTES).filter(|&i| page[i] != 0).collect();
        assert_eq!(non_zero, vec![100, 101, 102, 103]);
    }

    #[test]
    fn a_frame_a_dropped_contents_left_to_the_thread_reads_as_zeros_in_the_next() {
        let mut first = PageContents::default();
        first.write(0x1000, 0, &[0xaa; 64]);
        first.write(0x1000, 4032, &[0xbb; 64]);
        drop(first);
        let pooled = POOL.with(|pool| pool.borrow().len());
        assert!(
            pooled >= 1,
            "the dropped contents left its frame to the thread"
        );
        let mut next = PageContents::default();
        next.write(0x7000, 10, &[0xcc; 2]);
        assert_eq!(
            POOL.with(|pool| pool.borrow().len()),
            pooled - 1,
            "taken from the pool"
        );
        let mut page = vec![0xffu8; FRAME_BYTES];
        next.read(0x7000, 0, &mut page);
        let non_zero: Vec<usize> = (0..FRAME_BYTES).filter(|&i| page[i] != 0).collect();
        assert_eq!(non_zero, vec![10, 11]);
    }

    #[test]
    fn the_pages_accessed_last_are_forgotten_when_their_frames_are_dropped() {
        // The dropped page is remembered last, then before the other.
        for other_page_first in [false, true] {
            let mut contents = PageContents::default();
            if other_page_first {
                contents.write(0x3000, 0, &[7; 8]);
                contents.write(0x5000, 0, &[5; 8]);
            } else {
                contents.write(0x5000, 0, &[5; 8]);
                contents.write(0x3000, 0, &[7; 8]);
            }
            contents.drop_range(0x3000, 0x4000);
            // Written again, the page must get a frame of its own again, not the dropped slot
            // that a remembered page still names.
            contents.write(0x3000, 8, &[9; 8]);
            assert_eq!(contents.pages(), 2);
            let mut buf = [0xffu8; 16];
            contents.read(0x3000, 0, &mut buf);
            assert_eq!(buf, [0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]);
            contents.drop_range(0x3000, 0x4000);
            contents.read(0x3000, 0, &mut buf);
            assert_eq!(buf, [0; 16]);
            contents.read(0x5000, 0, &mut buf);
            assert_eq!(buf[..8], [5; 8]);
        }
    }

    /// Writes, word writes, reads, word reads and dropped ranges over a few pages agree with
    /// plain zero-filled pages: whatever the remembered pages, the index and the map hold.
    #[test]
    fn contents_agree_with_plain_pages_under_random_writes_and_drops() {
        const PAGES: u64 = 12;
        let mut next = crate::rng::test_draws(0x1234_5678_9abc_def1);
        let mut contents = PageContents::default();
        let mut model = vec![vec![0u8; FRAME_BYTES]; PAGES as usize];
        for step in 0..20_000 {
            let index = (next() % PAGES) as usize;
            let page = 0x4000_0000 + index as u64 * PAGE_SIZE;
            let offset = (next() % 64 * 8) as usize + [0, FRAME_BYTES - 520][(next() % 2) as usize];
            match next() % 8 {
                0 => {
                    let len = (next() % 40) as usize;
                    let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    let offset = offset.min(FRAME_BYTES - len);
                    contents.write(page, offset, &bytes);
                    model[index][offset..offset + len].copy_from_slice(&bytes);
                }
                1 | 2 => {
                    let value = next();
                    contents.write_u64(page, offset, value);
                    model[index][offset..offset + 8].copy_from_slice(&value.to_le_bytes());
                }
                3 => {
                    let last = index + (next() % 3) as usize;
                    let end = 0x4000_0000 + (last as u64 + 1) * PAGE_SIZE;
                    contents.drop_range(page, end);
                    for dropped in model.iter_mut().take(last + 1).skip(index) {
                        dropped.fill(0);
                    }
                }
                4 => {
                    let mut buf = [0xeeu8; 24];
                    contents.read(page, offset.min(FRAME_BYTES - 24), &mut buf);
                    let at = offset.min(FRAME_BYTES - 24);
                    assert_eq!(buf[..], model[index][at..at + 24], "step {step}");
                }
                _ => {
                    let word = u64::from_le_bytes(
                        model[index][offset..offset + 8]
                            .try_into()
                            .expect("8 bytes"),
                    );
                    assert_eq!(contents.read_u64(page, offset), word, "step {step}");
                }
            }
        }
        for (index, expected) in model.iter().enumerate() {
            let mut page = vec![0xffu8; FRAME_BYTES];
            contents.read(0x4000_0000 + index as u64 * PAGE_SIZE, 0, &mut page);
            assert_eq!(&page, expected, "page {index}");
        }
        assert_eq!(contents.written_pages.len(), contents.slot_by_page.len());
        let written = contents.written_pages.iter().zip(&contents.written_slots);
        for (at, (&page, &slot)) in written.enumerate() {
            assert_eq!(contents.slot_by_page.get(&spread_key(page)), Some(&slot));
            assert_eq!(contents.frames[slot as usize].written_at as usize, at);
        }
    }

    #[test]
    fn unwritten_pages_read_as_zeros_and_spares_stay_bounded() {
        let mut contents = PageContents::default();
        let mut buf = [0x55u8; 8];
        contents.read(0x9000, 16, &mut buf);
        assert_eq!(buf, [0; 8]);
        let pages = SPARES_MAX as u64 + 10;
        for page in 0..pages {
            contents.write(page * PAGE_SIZE, 0, &[1]);
        }
        contents.drop_range(0, pages * PAGE_SIZE);
        assert_eq!(contents.pages(), 0);
        let kept = contents
            .frames
            .iter()
            .filter(|frame| !frame.bytes.is_empty())
            .count();
        assert_eq!(kept, SPARES_MAX);
        // Pages written next take the kept frames, not new ones.
        for page in 0..10 {
            contents.write(page * PAGE_SIZE, 0, &[1]);
        }
        assert_eq!(contents.spare_slots.len(), SPARES_MAX - 10);
        assert_eq!(
            contents.empty_slots.len(),
            10,
            "no frame was allocated for them"
        );
    }
}
