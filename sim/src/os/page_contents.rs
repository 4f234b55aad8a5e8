//! The bytes of committed pages that were written: the simulation's own storage behind
//! `Os::read` and `Os::write` (subjects on the host arena keep theirs in real memory instead).
//!
//! A page that was never written reads as zeros and takes no storage. A written page holds a
//! 4 KiB frame. Decommit and release drop frames, and a dropped frame goes to a bounded spare
//! list instead of back to the host allocator: subjects reserve, write and release the same
//! shapes on every repetition, and a fresh zeroed 4 KiB allocation per written page per
//! repetition was about a sixth of a fuzz input's cost. A frame remembers the extent that was
//! written, so that making a spare frame zero again clears only those bytes (a few words of block
//! headers, most often) rather than the whole page.
//!
//! Nothing here is visible to a subject: a frame taken from the spares reads exactly as a new
//! zeroed one, which the tests below check.

use std::collections::BTreeMap;
use std::ops::Range;

use super::pages::PAGE_SIZE;

const FRAME_BYTES: usize = PAGE_SIZE as usize;
/// At most this many spare frames (1 MiB) are kept; more are given back to the host allocator.
const SPARES_MAX: usize = 256;

struct Frame {
    bytes: Box<[u8]>,
    /// The bytes that may be non-zero: everything outside this range is zero.
    written: Range<usize>,
}

impl Frame {
    fn zeroed() -> Frame {
        Frame {
            bytes: vec![0u8; FRAME_BYTES].into_boxed_slice(),
            written: 0..0,
        }
    }

    /// Makes the frame read as a new zeroed one again.
    fn clear(&mut self) {
        self.bytes[self.written.clone()].fill(0);
        self.written = 0..0;
    }
}

#[derive(Default)]
pub(crate) struct PageContents {
    /// Written pages by page address.
    frames: BTreeMap<u64, Frame>,
    /// Cleared frames ready for reuse, at most `SPARES_MAX`.
    spares: Vec<Frame>,
}

impl PageContents {
    /// Copies `buf.len()` bytes at `offset` of `page` into `buf`; never-written bytes read as 0.
    pub(crate) fn read(&self, page: u64, offset: usize, buf: &mut [u8]) {
        match self.frames.get(&page) {
            Some(frame) => buf.copy_from_slice(&frame.bytes[offset..offset + buf.len()]),
            None => buf.fill(0),
        }
    }

    /// Copies `bytes` to `offset` of `page`, which must not cross the page's end.
    pub(crate) fn write(&mut self, page: u64, offset: usize, bytes: &[u8]) {
        let spares = &mut self.spares;
        let frame = self
            .frames
            .entry(page)
            .or_insert_with(|| spares.pop().unwrap_or_else(Frame::zeroed));
        let end = offset + bytes.len();
        frame.bytes[offset..end].copy_from_slice(bytes);
        frame.written = if frame.written.is_empty() {
            offset..end
        } else {
            frame.written.start.min(offset)..frame.written.end.max(end)
        };
    }

    /// Drops the contents of every page in `[start, end)`: they read as zeros afterwards.
    #[inline]
    pub(crate) fn drop_range(&mut self, start: u64, end: u64) {
        // Most released or decommitted ranges were never written (or no page ever was): that
        // check stays inline in every release, the search does not.
        if !self.frames.is_empty() {
            self.drop_written_range(start, end);
        }
    }

    #[inline(never)]
    fn drop_written_range(&mut self, start: u64, end: u64) {
        while let Some((&page, _)) = self.frames.range(start..end).next() {
            let mut frame = self.frames.remove(&page).expect("found just now");
            if self.spares.len() < SPARES_MAX {
                frame.clear();
                self.spares.push(frame);
            }
        }
    }

    /// Pages that hold a frame.
    pub(crate) fn pages(&self) -> usize {
        self.frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_frame_reads_as_zeros_outside_what_is_written_again() {
        let mut contents = PageContents::default();
        contents.write(0x1000, 8, &[0xaa; 16]);
        contents.write(0x1000, 4000, &[0xbb; 96]);
        contents.drop_range(0x1000, 0x2000);
        assert_eq!(contents.pages(), 0);
        assert_eq!(contents.spares.len(), 1, "the frame is kept for reuse");
        // The spare frame now backs another page: only the new bytes are non-zero.
        contents.write(0x5000, 100, &[0xcc; 4]);
        let mut page = vec![0xffu8; FRAME_BYTES];
        contents.read(0x5000, 0, &mut page);
        let non_zero: Vec<usize> = (0..FRAME_BYTES).filter(|&i| page[i] != 0).collect();
        assert_eq!(non_zero, vec![100, 101, 102, 103]);
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
        assert_eq!(contents.spares.len(), SPARES_MAX);
    }
}
