//! The process heap: `malloc` and `free` as a C runtime uses them.
//!
//! Fidelity: only accounting. A block is a resource with a size and the site that allocated it;
//! its address is a token outside the page space (subjects that need bytes use pages). Allocation
//! can fail with ENOMEM by fault injection: that is how a runtime's failed-init paths are reached
//! (WAMR #4192: the fd table's entries fail to allocate after its lock was created).

use super::id_table::{IdTable, spread_key};
use super::resources::{KINDS, RecordId};
use super::{Errno, Os, Site};
use crate::faults::FaultKind;

/// Heap tokens live above the 47-bit space, so they can never be mistaken for page addresses.
const HEAP_TOKEN_BASE: u64 = 1 << 48;

pub(crate) struct HeapState {
    /// Live blocks by `spread_key` of their token (a token off by a few bytes is no block's). An open-addressing table rather than a B-tree
    /// or a general hash map: a runtime allocates and frees on nearly every op, and this lookup
    /// was a large share of a fuzz input's time. It has no random state, and it is only looked
    /// up, never iterated, so its layout cannot reach the trace.
    blocks: IdTable<RecordId>,
    next: u64,
}

/// The table of a dropped OS's heap, emptied, for the next one (see `Os::new`).
#[derive(Default)]
pub(crate) struct HeapStorage {
    blocks: IdTable<RecordId>,
}

impl HeapState {
    /// A fresh heap in the table `storage` holds (emptied by `keep_storage`), if it holds one: a
    /// runtime's fuzz input mallocs hundreds of blocks, and the table grew from nothing again
    /// on every input.
    pub(crate) fn new_in(storage: &mut HeapStorage) -> HeapState {
        HeapState {
            blocks: std::mem::take(&mut storage.blocks),
            next: HEAP_TOKEN_BASE,
        }
    }

    /// Empties the table and hands it to `storage`, for the next `new_in`.
    pub(crate) fn keep_storage(&mut self, storage: &mut HeapStorage) {
        storage.blocks = self.blocks.recycled();
    }
}

impl Os {
    /// Allocates `bytes` from the process heap.
    pub fn malloc(&mut self, bytes: u64, site: Site) -> Result<u64, Errno> {
        if self.inject(FaultKind::Alloc, site) {
            return Err(Errno::Enomem);
        }
        if self.heap.blocks.len() as u64 >= self.limits.objects_max {
            self.budget("objects_max", self.limits.objects_max, site);
            return Err(Errno::Enomem);
        }
        let token = self.heap.next;
        // A 16-byte header plus the size rounded up to 16 (`next_multiple_of` of a power of two
        // is an add and a mask, where `div_ceil(16) * 16` also tested the remainder). Checked: a
        // size near u64::MAX has no room among the tokens.
        let next = bytes
            .checked_next_multiple_of(16)
            .and_then(|block| token.checked_add(16)?.checked_add(block));
        let Some(next) = next else {
            return Err(self.heap_tokens_exhausted(bytes, site));
        };
        self.heap.next = next;
        // The position is read where the record is written (`acquire_at`), not copied to the
        // stack first.
        let record =
            (self.resources).acquire_at(KINDS.heap_block, 1, bytes, 0, &self.position, site);
        self.heap.blocks.insert(spread_key(token), record);
        self.syscall("heap.malloc", token, bytes);
        Ok(token)
    }

    /// Frees a block; freeing an unknown or already-freed block is an invariant finding.
    pub fn free(&mut self, token: u64, site: Site) -> Result<(), Errno> {
        self.syscall("heap.free", token, 0);
        match self.heap.blocks.remove(&spread_key(token)) {
            Some(record) => {
                self.resources.release_held(record);
                Ok(())
            }
            None => Err(self.free_of_unknown_block(token, site)),
        }
    }

    /// A malloc whose block does not fit the tokens left (from `HEAP_TOKEN_BASE` to u64::MAX):
    /// ENOMEM, as from a heap out of room, and a budget finding, as a reserve larger than the
    /// address space is one. Tokens are never reused, so a size that fits the whole token space
    /// fails only after about 2^64 bytes were allocated.
    #[cold]
    #[inline(never)]
    fn heap_tokens_exhausted(&mut self, bytes: u64, site: Site) -> Errno {
        let space = u64::MAX - HEAP_TOKEN_BASE;
        let cause = if bytes > space - 16 {
            format!(
                "likely cause: a malloc of {bytes} bytes, more than a 64-bit heap can give out; check the sizes the scenario asks for"
            )
        } else {
            format!("likely cause: more than {space} bytes allocated in this run")
        };
        self.report_budget("heap address space", space, site, cause);
        Errno::Enomem
    }

    /// The invariant finding of a `free` that names no live block. Out of line: its formatting
    /// would otherwise enlarge the frame of every free.
    #[cold]
    #[inline(never)]
    fn free_of_unknown_block(&mut self, token: u64, site: Site) -> Errno {
        self.invariant(
            "heap block",
            site,
            format!("free of {token:#x}, which is not a live heap block (double free?)"),
        );
        Errno::Einval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultPlan;
    use crate::findings::FindingKind;
    use crate::sched::{Scheduler, StrategyChoice};

    #[test]
    fn malloc_free_balance_and_double_free_is_reported() {
        let mut os = Os::for_tests(1);
        let a = os.malloc(100, "t").unwrap();
        let b = os.malloc(100, "t").unwrap();
        assert_ne!(a, b);
        os.free(a, "t").unwrap();
        assert_eq!(os.free(a, "t"), Err(Errno::Einval));
        os.free(b, "t").unwrap();
        assert_eq!(os.resources().live_records(), 0);
        assert_eq!(os.findings().len(), 1);
    }

    #[test]
    fn injected_allocation_failure() {
        let plan = FaultPlan::none().with(FaultKind::Alloc, 1_000_000);
        let mut os = Os::new(
            Scheduler::new(1, &StrategyChoice::Random, plan),
            Default::default(),
            Default::default(),
        );
        assert_eq!(os.malloc(8, "t"), Err(Errno::Enomem));
        assert_eq!(os.injected_faults().len(), 1);
        assert_eq!(os.injected_faults()[0].1.site, "t");
    }

    #[test]
    fn a_malloc_too_large_for_any_heap_is_enomem_and_a_budget_finding() {
        let mut os = Os::for_tests(1);
        let a = os.malloc(100, "t").unwrap();
        for bytes in [u64::MAX, u64::MAX - 3, u64::MAX - HEAP_TOKEN_BASE] {
            assert_eq!(os.malloc(bytes, "huge"), Err(Errno::Enomem), "{bytes}");
            let findings = os.take_findings();
            assert_eq!(findings.len(), 1, "{findings:?}");
            assert_eq!(findings[0].kind, FindingKind::Budget);
            assert_eq!(findings[0].resource, "heap address space");
            assert_eq!(findings[0].site, "huge");
            assert!(
                findings[0].notes[0].contains("more than a 64-bit heap"),
                "{findings:?}"
            );
        }
        assert_eq!(os.resources().live_records(), 1, "nothing acquired");
        // The heap still gives out blocks, after the last one and apart from it.
        let b = os.malloc(100, "t").unwrap();
        assert_eq!(b, a + 16 + 112);
        os.free(a, "t").unwrap();
        os.free(b, "t").unwrap();
        assert!(os.findings().is_empty());
        // Two halves of the token space: the second finds the first took its room.
        let half = (u64::MAX - HEAP_TOKEN_BASE) / 2;
        let first = os.malloc(half, "t").unwrap();
        assert_eq!(os.malloc(half, "second"), Err(Errno::Enomem));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].resource, "heap address space");
        assert!(
            findings[0].notes[0].contains("allocated in this run"),
            "{findings:?}"
        );
        os.free(first, "t").unwrap();
        assert_eq!(os.resources().live_records(), 0);
    }
}
