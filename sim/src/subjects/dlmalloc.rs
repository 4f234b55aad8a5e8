//! `dlmalloc`: the real, unmodified `dlmalloc` crate (0.2.14) on simulated pages.
//!
//! What runs: the crate's own allocator code (`Dlmalloc<A>`: bins, trees, segments, trimming),
//! through its public API. What is ours: the platform layer, `SimPlatform`, which implements the
//! crate's `Allocator` trait on the virtual OS. A system allocation is a reservation plus a commit
//! of the whole range (`dlmalloc_sys_alloc`), a free is a release (`dlmalloc_sys_free`), a partial
//! free releases the tail (`dlmalloc_sys_free_part`). The OS backs its pages with the host arena,
//! so the crate reads and writes real bytes through real pointers, and a page the OS released is
//! `PROT_NONE`: real code that touches it crashes, and the isolated runner turns that crash into a
//! `fault` finding naming the address, the page's state and who released it.
//!
//! Fidelity, and what the crate does on this platform (read from its source):
//! - Large requests are not mapped directly: this version of the port has no `mmap_alloc` path,
//!   so a request of any size is served from a segment obtained with `Allocator::alloc` (rounded to
//!   the 64 KiB granularity). `remap` is therefore never called; ours returns null, as on macOS.
//! - The OS hands out the lowest free range, so consecutive system allocations are often adjacent,
//!   and dlmalloc merges adjacent ones into one segment. It later frees or trims a segment as one
//!   range, which may span several of our reservations; `SimPlatform` remembers each reservation it
//!   made and releases the pieces, as `munmap` would across mappings.
//! - What the crate keeps: after every block is freed it still holds the segment with its top
//!   chunk, and older segments until a `trim` or its periodic release pass (every 4095 large frees
//!   by default; `[config] release-check-rate` changes it). `Dlmalloc` has no `Drop`: dropping it
//!   would keep every segment. `Dlmalloc::destroy` returns every segment, and the `destroy` op uses
//!   it, so a heap created and destroyed within a repetition leaves nothing. A heap that outlives
//!   repetitions keeps its top segment, which the subject declares as a bounded cache (one
//!   reservation, 16 committed pages): the growth detector then allows that segment and nothing
//!   more, and the teardown check, which allows no cache, still wants every segment back.
//!   `closing_ops` ends every generated op list with `destroy` so that generated programs balance.
//! - Threads: ops are atomic steps of the scheduler, so the heap behaves as if behind one lock.
//!
//! Fault injection, not a defect: `release-behind-back` models a buggy platform layer that
//! releases the most recent region it handed to dlmalloc while dlmalloc still uses it. The next
//! real dlmalloc code that touches that region (a `malloc` carving the top chunk, a `free`
//! coalescing with it) is a use-after-release by real code, the shape of mimalloc #904's
//! exit-time collect reading a freed segment (SEED-BUGS.md §3). The op is never generated.
//!
//! The program's own accesses (`write`, `read`) are checked by the OS first and then done through
//! the real pointer, so the checks and the real code see the same bytes. What the subject declares
//! about itself (`check_invariants`): live blocks are disjoint and aligned as asked, and a block
//! keeps what the program wrote into it (across `realloc`, up to the smaller size).
//!
//! Not modelled: `calloc`, the crate's `global` feature, and multiple heaps at once.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ptr::null_mut;

use ::dlmalloc::{Allocator, Dlmalloc};
use arbitrary::{Arbitrary, Unstructured};
use serde::{Deserialize, Serialize};

use crate::os::host_arena::HostArena;
use crate::os::{Access, Os, PAGE_SIZE, Site, Tid, with_lent};
use crate::subject::{
    CacheDecl, Config, Names, OpDoc, OpRefusal, Step, Subject, SubjectInfo, UnsignedParam,
};

/// Block slots a program holds; op slots are `0..SLOTS`.
pub const SLOTS: u8 = 8;
/// The largest block an op may ask for.
pub const BLOCK_BYTES_MAX: u32 = 8 << 20;
/// The largest alignment an op may ask for.
pub const ALIGN_BYTES_MAX: u32 = 4096;
/// dlmalloc's natural alignment on 64-bit hosts (`2 * size_of::<usize>()`).
pub const NATURAL_ALIGN_BYTES: u32 = 16;
const ARENA_BYTES: UnsignedParam = UnsignedParam {
    name: "arena-bytes",
    summary: "bytes of the real reservation that backs simulated memory",
    // Room for a few of dlmalloc's 64 KiB segments; at most what a host reserves without
    // complaint (the reservation is made whole, though never committed).
    min: 1 << 20,
    max: 1 << 36,
    default: 1 << 30,
};
const RELEASE_CHECK_RATE: UnsignedParam = UnsignedParam {
    name: "release-check-rate",
    summary: "frees between dlmalloc's passes that release unused segments; 0: never",
    min: 0,
    max: u32::MAX as u64,
    default: 4095,
};

const SITE_SYS_ALLOC: Site = "dlmalloc_sys_alloc";
const SITE_SYS_FREE: Site = "dlmalloc_sys_free";
const SITE_SYS_FREE_PART: Site = "dlmalloc_sys_free_part";
const SITE_RELEASE_BEHIND_BACK: Site = "dlmalloc_release_behind_back";
const SITE_PROGRAM_WRITE: Site = "program_write";
const SITE_PROGRAM_READ: Site = "program_read";
/// Labels of the real code an op runs, for a crash inside it.
const CODE_MALLOC: Site = "dlmalloc_malloc";
const CODE_FREE: Site = "dlmalloc_free";
const CODE_REALLOC: Site = "dlmalloc_realloc";
const CODE_TRIM: Site = "dlmalloc_trim";
const CODE_DESTROY: Site = "dlmalloc_destroy";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DlmallocOp {
    /// Creates the heap (a `Dlmalloc` on the simulated platform); a no-op if one exists.
    Create,
    /// Frees every live block, then `Dlmalloc::destroy` returns every segment; a no-op without a
    /// heap.
    Destroy,
    /// Allocates `size` bytes aligned to `align` into `slot`, freeing what the slot held first.
    Malloc {
        #[arbitrary(with = arbitrary_slot)]
        slot: u8,
        #[arbitrary(with = arbitrary_size)]
        size: u32,
        #[serde(default = "natural_align", skip_serializing_if = "is_natural_align")]
        #[arbitrary(with = arbitrary_align)]
        align: u32,
    },
    /// Frees the block in `slot`; a no-op on an empty slot.
    Free {
        #[arbitrary(with = arbitrary_slot)]
        slot: u8,
    },
    /// Resizes the block in `slot` (an empty slot gets a new block).
    Realloc {
        #[arbitrary(with = arbitrary_slot)]
        slot: u8,
        #[arbitrary(with = arbitrary_size)]
        size: u32,
    },
    /// Gives unused memory back to the system (`Dlmalloc::trim(0)`).
    Trim,
    /// Fills the block in `slot` with a pattern, through the real pointer.
    Write {
        #[arbitrary(with = arbitrary_slot)]
        slot: u8,
    },
    /// Reads the block in `slot` through the real pointer and checks the pattern written.
    Read {
        #[arbitrary(with = arbitrary_slot)]
        slot: u8,
    },
    /// Fault injection: the platform releases the most recent region it gave dlmalloc, behind
    /// dlmalloc's back (a buggy platform layer). Never generated.
    #[arbitrary(skip)]
    ReleaseBehindBack,
}

fn natural_align() -> u32 {
    NATURAL_ALIGN_BYTES
}

fn is_natural_align(align: &u32) -> bool {
    *align == NATURAL_ALIGN_BYTES
}

fn arbitrary_slot(input: &mut Unstructured) -> arbitrary::Result<u8> {
    input.int_in_range(0..=SLOTS - 1)
}

/// Sizes spread over orders of magnitude, from 0 B to 4 MiB: most small, some far past the
/// 256 KiB where C dlmalloc would map a chunk directly.
fn arbitrary_size(input: &mut Unstructured) -> arbitrary::Result<u32> {
    let bits = input.int_in_range(0..=22u32)?;
    let value = u32::arbitrary(input)?;
    Ok(value & ((1u32 << bits) - 1))
}

/// The natural alignment three times in four, else a larger power of two up to a page.
fn arbitrary_align(input: &mut Unstructured) -> arbitrary::Result<u32> {
    if input.ratio(3u8, 4u8)? {
        return Ok(NATURAL_ALIGN_BYTES);
    }
    Ok(NATURAL_ALIGN_BYTES << input.int_in_range(1..=8u32)?)
}

/// One region this platform handed to dlmalloc (possibly what is left of one after a partial
/// release).
#[derive(Clone, Copy, Debug)]
struct Region {
    len: u64,
    /// Order of the system allocation it came from, to find the most recent one.
    serial: u64,
}

/// dlmalloc's platform layer on the virtual OS, which it reaches through the lend of the op
/// that runs dlmalloc code (`Os::lend`, `with_lent`).
pub struct SimPlatform {
    /// Every region handed to dlmalloc and not released yet: simulated base → region.
    regions: RefCell<BTreeMap<u64, Region>>,
    allocations: Cell<u64>,
}

impl SimPlatform {
    fn new() -> SimPlatform {
        SimPlatform {
            regions: RefCell::new(BTreeMap::new()),
            allocations: Cell::new(0),
        }
    }

    /// Releases `[ptr, ptr+len)`, which may span several regions (dlmalloc merges adjacent
    /// ones). A part that is not one of ours is still passed to the OS, which reports it: the
    /// memory was never reserved, or was released already.
    fn release(&self, ptr: *mut u8, len: usize, site: Site) -> bool {
        with_lent(|os| {
            let Some(start) = os.sim_addr(ptr) else {
                return false;
            };
            let end = start + len as u64;
            let mut regions = self.regions.borrow_mut();
            let mut released_all = true;
            let mut at = start;
            while at < end {
                let containing = regions
                    .range(..=at)
                    .next_back()
                    .map(|(&base, &region)| (base, region))
                    .filter(|(base, region)| base + region.len > at);
                match containing {
                    Some((base, region)) => {
                        let piece_end = (base + region.len).min(end);
                        released_all &= os.release(at, piece_end - at, site).is_ok();
                        regions.remove(&base);
                        if base < at {
                            regions.insert(
                                base,
                                Region {
                                    len: at - base,
                                    ..region
                                },
                            );
                        }
                        if piece_end < base + region.len {
                            let len = base + region.len - piece_end;
                            regions.insert(piece_end, Region { len, ..region });
                        }
                        at = piece_end;
                    }
                    None => {
                        let next = regions.range(at..end).next().map_or(end, |(&base, _)| base);
                        released_all &= os.release(at, next - at, site).is_ok();
                        at = next;
                    }
                }
            }
            released_all
        })
    }

    /// The most recent region still held, by simulated base and length.
    fn most_recent_region(&self) -> Option<(u64, u64)> {
        self.regions
            .borrow()
            .iter()
            .max_by_key(|(_, region)| region.serial)
            .map(|(&base, region)| (base, region.len))
    }
}

// SAFETY: `alloc` returns committed, zeroed, page-aligned memory of the size it reports, which
// stays valid until dlmalloc frees it (or a fault-injection op releases it on purpose).
unsafe impl Allocator for SimPlatform {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        with_lent(|os| {
            let len = (size as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE;
            let Ok(base) = os.reserve(len, 0, SITE_SYS_ALLOC) else {
                return (null_mut(), 0, 0);
            };
            if os.commit(base, len, SITE_SYS_ALLOC).is_err() {
                let _ = os.release(base, len, SITE_SYS_ALLOC);
                return (null_mut(), 0, 0);
            }
            let ptr = os
                .host_ptr(base)
                .expect("the subject enabled the host arena before any reservation");
            let serial = self.allocations.get() + 1;
            self.allocations.set(serial);
            self.regions
                .borrow_mut()
                .insert(base, Region { len, serial });
            (ptr, len as usize, 0)
        })
    }

    fn remap(&self, _ptr: *mut u8, _oldsize: usize, _newsize: usize, _can_move: bool) -> *mut u8 {
        // The virtual OS has no mremap; dlmalloc copies instead (and 0.2.14 never asks).
        null_mut()
    }

    fn free_part(&self, ptr: *mut u8, oldsize: usize, newsize: usize) -> bool {
        self.release(
            ptr.wrapping_add(newsize),
            oldsize - newsize,
            SITE_SYS_FREE_PART,
        )
    }

    fn free(&self, ptr: *mut u8, size: usize) -> bool {
        self.release(ptr, size, SITE_SYS_FREE)
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        true
    }

    fn allocates_zeros(&self) -> bool {
        // Committed pages of the host arena read as zero (fresh, or dropped on release).
        true
    }

    fn page_size(&self) -> usize {
        PAGE_SIZE as usize
    }
}

/// A live block of the program.
#[derive(Clone, Copy, Debug)]
struct Block {
    /// Simulated address.
    addr: u64,
    size: u32,
    align: u32,
    /// The byte the program last filled the block with, and how many leading bytes still hold
    /// it (a shrinking realloc keeps fewer).
    pattern: Option<(u8, u32)>,
}

pub struct DlmallocSubject {
    heap: Option<Dlmalloc<SimPlatform>>,
    blocks: [Option<Block>; SLOTS as usize],
    release_check_rate: Option<usize>,
    writes: u64,
    /// Violations of what the subject declares (a block lost its contents, a misaligned block).
    violations: Vec<String>,
}

impl Subject for DlmallocSubject {
    type Op = DlmallocOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "dlmalloc",
            summary: "the real dlmalloc crate (0.2.14) through its Allocator trait, on host-backed simulated pages",
            ops: vec![
                OpDoc {
                    name: "create",
                    summary: "create the heap (a `Dlmalloc` on the simulated platform)",
                },
                OpDoc {
                    name: "destroy",
                    summary: "free every live block, then `Dlmalloc::destroy` returns every segment",
                },
                OpDoc {
                    name: "malloc",
                    summary: "allocate `size` bytes (optional `align`) into `slot` (0..8)",
                },
                OpDoc {
                    name: "free",
                    summary: "free the block in `slot`",
                },
                OpDoc {
                    name: "realloc",
                    summary: "resize the block in `slot` to `size` bytes",
                },
                OpDoc {
                    name: "trim",
                    summary: "give unused memory back to the system (`trim(0)`)",
                },
                OpDoc {
                    name: "write",
                    summary: "fill the block in `slot` through its real pointer",
                },
                OpDoc {
                    name: "read",
                    summary: "check the block in `slot` still holds what was written",
                },
                OpDoc {
                    name: "release-behind-back",
                    summary: "fault injection: the platform releases dlmalloc's most recent region while dlmalloc still uses it",
                },
            ],
            defects: vec![],
            // What the crate keeps between operations once every block is freed: the segment with
            // its top chunk (one 64 KiB system allocation, all of it committed).
            caches: vec![
                CacheDecl {
                    kind: "reservation",
                    per_key_max: 1,
                    why: "dlmalloc keeps its top segment after every block is freed",
                },
                CacheDecl {
                    kind: "committed pages",
                    per_key_max: 16,
                    why: "the kept 64 KiB top segment is committed whole",
                },
            ],
            params: vec![ARENA_BYTES.decl(), RELEASE_CHECK_RATE.decl()],
            host_backed: true,
        }
    }

    /// Reserves the arena once and gives it back: a host that refuses it (a `ulimit -v` below
    /// `arena-bytes`, say) would refuse every run.
    fn check_host(config: &Config) -> Result<(), String> {
        let arena_bytes = config.unsigned(&ARENA_BYTES);
        HostArena::new(arena_bytes).map(drop).map_err(|error| {
            format!(
                "dlmalloc runs on a host arena of {arena_bytes} bytes (`[config]` `{}`), and this host refused it ({error}); lower `{}` or raise the process's memory limit (`ulimit -v`)",
                ARENA_BYTES.name, ARENA_BYTES.name
            )
        })
    }

    fn new(os: &mut Os, config: &Config) -> Self {
        let arena_bytes = config.unsigned(&ARENA_BYTES);
        if let Err(error) = os.enable_host_arena(arena_bytes) {
            // Only when the host refuses now what it gave `check_host` just before: a panic
            // finding, which names `[config]`.
            panic!("dlmalloc needs the host arena: {error}");
        }
        // Set only when the scenario asks: setting it, even to dlmalloc's own rate, restarts the
        // countdown that a fresh heap begins at zero.
        let release_check_rate = config
            .is_set(RELEASE_CHECK_RATE.name)
            .then(|| config.unsigned(&RELEASE_CHECK_RATE) as usize);
        DlmallocSubject {
            heap: None,
            blocks: [None; SLOTS as usize],
            release_check_rate,
            writes: 0,
            violations: Vec::new(),
        }
    }

    fn op_name(op: &DlmallocOp) -> &'static str {
        match op {
            DlmallocOp::Create => "create",
            DlmallocOp::Destroy => "destroy",
            DlmallocOp::Malloc { .. } => "malloc",
            DlmallocOp::Free { .. } => "free",
            DlmallocOp::Realloc { .. } => "realloc",
            DlmallocOp::Trim => "trim",
            DlmallocOp::Write { .. } => "write",
            DlmallocOp::Read { .. } => "read",
            DlmallocOp::ReleaseBehindBack => "release-behind-back",
        }
    }

    fn validate_op(op: &DlmallocOp, names: &mut Names) -> Result<(), OpRefusal> {
        match op {
            DlmallocOp::Create => names.define("heap", "dlmalloc"),
            DlmallocOp::Destroy => {}
            DlmallocOp::Malloc { slot, size, align } => {
                check_slot(*slot)?;
                check_size(*size)?;
                if !align.is_power_of_two() || *align > ALIGN_BYTES_MAX {
                    return Err(OpRefusal::at(
                        "align",
                        format!("align {align} is not a power of two up to {ALIGN_BYTES_MAX}"),
                    ));
                }
                require_heap(names, "malloc")?;
                names.define("slot", slot);
            }
            DlmallocOp::Realloc { slot, size } => {
                check_slot(*slot)?;
                check_size(*size)?;
                require_heap(names, "realloc")?;
                names.define("slot", slot);
            }
            DlmallocOp::Free { slot } | DlmallocOp::Write { slot } | DlmallocOp::Read { slot } => {
                check_slot(*slot)?;
                names
                    .require("slot", slot, "slot")
                    .map_err(OpRefusal::of_field("slot"))?;
            }
            DlmallocOp::Trim => require_heap(names, "trim")?,
            DlmallocOp::ReleaseBehindBack => require_heap(names, "release-behind-back")?,
        }
        Ok(())
    }

    fn closing_ops(_names: &Names) -> Vec<DlmallocOp> {
        vec![DlmallocOp::Destroy]
    }

    fn apply(&mut self, os: &mut Os, _tid: Tid, op: &DlmallocOp) -> Step<Self> {
        match *op {
            DlmallocOp::Create => self.create(),
            DlmallocOp::Destroy => self.destroy(os),
            DlmallocOp::Malloc { slot, size, align } => self.malloc(os, slot, size, align),
            DlmallocOp::Free { slot } => self.free(os, slot),
            DlmallocOp::Realloc { slot, size } => self.realloc(os, slot, size),
            DlmallocOp::Trim => {
                if let Some(heap) = self.heap.as_mut() {
                    // SAFETY: trimming only returns free memory to the platform.
                    os.lend(CODE_TRIM, || unsafe { heap.trim(0) });
                }
            }
            DlmallocOp::Write { slot } => self.write(os, slot),
            DlmallocOp::Read { slot } => self.read(os, slot),
            DlmallocOp::ReleaseBehindBack => self.release_behind_back(os),
        }
        Step::Done
    }

    fn check_invariants(&self, _os: &Os) -> Vec<String> {
        let mut violations = self.violations.clone();
        let live: Vec<(usize, Block)> = self
            .blocks
            .iter()
            .enumerate()
            .filter_map(|(slot, block)| block.map(|block| (slot, block)))
            .collect();
        for (index, (slot, block)) in live.iter().enumerate() {
            for (other_slot, other) in &live[index + 1..] {
                let disjoint = block.addr + u64::from(block.size) <= other.addr
                    || other.addr + u64::from(other.size) <= block.addr;
                if !disjoint {
                    violations.push(format!(
                        "live blocks overlap: slot {slot} [{:#x}, +{}) and slot {other_slot} [{:#x}, +{})",
                        block.addr, block.size, other.addr, other.size
                    ));
                }
            }
        }
        violations
    }
}

fn check_slot(slot: u8) -> Result<(), OpRefusal> {
    if slot < SLOTS {
        Ok(())
    } else {
        Err(OpRefusal::at(
            "slot",
            format!("slot {slot} is out of range: slots are 0..{SLOTS}"),
        ))
    }
}

fn check_size(size: u32) -> Result<(), OpRefusal> {
    if size <= BLOCK_BYTES_MAX {
        Ok(())
    } else {
        Err(OpRefusal::at(
            "size",
            format!("size {size} is above the {BLOCK_BYTES_MAX} B a block may have"),
        ))
    }
}

fn require_heap(names: &Names, what: &str) -> Result<(), String> {
    if names.is_defined("heap", "dlmalloc") {
        Ok(())
    } else {
        Err(format!(
            "`{what}` needs a heap: put `{{ op = \"create\" }}` before it"
        ))
    }
}

impl DlmallocSubject {
    fn create(&mut self) {
        if self.heap.is_none() {
            let mut heap = Dlmalloc::new_with_allocator(SimPlatform::new());
            if let Some(rate) = self.release_check_rate {
                heap.set_max_release_check_rate(rate);
            }
            self.heap = Some(heap);
        }
    }

    fn destroy(&mut self, os: &mut Os) {
        for slot in 0..SLOTS {
            self.free(os, slot);
        }
        if self.heap.is_some() {
            // Taken inside the call, not before: a closure that owned the heap would be one more
            // copy of the whole heap state per destroy.
            let heap = &mut self.heap;
            // SAFETY: no block is live any more, and the heap is consumed.
            os.lend(CODE_DESTROY, || unsafe {
                heap.take().expect("checked above").destroy()
            });
        }
    }

    fn malloc(&mut self, os: &mut Os, slot: u8, size: u32, align: u32) {
        if self.heap.is_none() {
            return;
        }
        self.free(os, slot);
        let heap = self.heap.as_mut().expect("checked above");
        // SAFETY: `align` is a power of two (validated; generated ones are by construction).
        let ptr = os.lend(CODE_MALLOC, || unsafe {
            heap.malloc(size as usize, align as usize)
        });
        if let Some(addr) = self.adopt(os, slot, ptr, size, align, "malloc") {
            self.blocks[slot as usize] = Some(Block {
                addr,
                size,
                align,
                pattern: None,
            });
        }
    }

    fn free(&mut self, os: &mut Os, slot: u8) {
        let (Some(heap), Some(block)) = (self.heap.as_mut(), self.blocks[slot as usize].take())
        else {
            return;
        };
        let ptr = os
            .host_ptr(block.addr)
            .expect("blocks live in the host arena");
        // SAFETY: the block came from this heap with this size and alignment and is freed once.
        os.lend(CODE_FREE, || unsafe {
            heap.free(ptr, block.size as usize, block.align as usize)
        });
    }

    fn realloc(&mut self, os: &mut Os, slot: u8, size: u32) {
        let Some(block) = self.blocks[slot as usize] else {
            return self.malloc(os, slot, size, NATURAL_ALIGN_BYTES);
        };
        let Some(heap) = self.heap.as_mut() else {
            return;
        };
        let old = os
            .host_ptr(block.addr)
            .expect("blocks live in the host arena");
        // SAFETY: the block came from this heap with this size and alignment.
        let ptr = os.lend(CODE_REALLOC, || unsafe {
            heap.realloc(
                old,
                block.size as usize,
                block.align as usize,
                size as usize,
            )
        });
        if ptr.is_null() {
            // The old block stays valid, as `realloc` promises.
            return;
        }
        let Some(addr) = self.adopt(os, slot, ptr, size, block.align, "realloc") else {
            self.blocks[slot as usize] = None;
            return;
        };
        let pattern = block.pattern.map(|(byte, filled)| (byte, filled.min(size)));
        let moved = Block {
            addr,
            size,
            align: block.align,
            pattern,
        };
        self.blocks[slot as usize] = Some(moved);
        self.check_pattern(os, slot, moved, "realloc");
    }

    /// Checks a pointer dlmalloc returned: null (out of memory) leaves the slot empty; a pointer
    /// outside the arena or misaligned is a violation.
    fn adopt(
        &mut self,
        os: &Os,
        slot: u8,
        ptr: *mut u8,
        size: u32,
        align: u32,
        what: &str,
    ) -> Option<u64> {
        if ptr.is_null() {
            return None;
        }
        let Some(addr) = os.sim_addr(ptr) else {
            self.violations.push(format!(
                "{what} of {size} B into slot {slot} returned {ptr:p}, outside the memory the platform gave dlmalloc"
            ));
            return None;
        };
        let align = align.max(NATURAL_ALIGN_BYTES);
        if addr % u64::from(align) != 0 {
            self.violations.push(format!(
                "{what} of {size} B into slot {slot} returned {addr:#x}, not aligned to {align}"
            ));
        }
        Some(addr)
    }

    /// The live block in `slot`, once the OS has checked that the program may make `access` to
    /// every byte of it; `None` for an empty slot or a refused access (the OS reports that).
    /// Inline: out of line it cost more instructions than the copies it replaced.
    #[inline]
    fn touched_block(&self, os: &mut Os, slot: u8, access: Access, site: Site) -> Option<Block> {
        let block = self.blocks[slot as usize]?;
        os.touch(block.addr, u64::from(block.size), access, site)
            .ok()?;
        Some(block)
    }

    fn write(&mut self, os: &mut Os, slot: u8) {
        let Some(block) = self.touched_block(os, slot, Access::Write, SITE_PROGRAM_WRITE) else {
            return;
        };
        self.writes += 1;
        // A byte that differs per slot and per write, and is never zero (fresh memory reads zero).
        let byte = (u64::from(slot) * 37 + self.writes) as u8 | 1;
        let ptr = os
            .host_ptr(block.addr)
            .expect("blocks live in the host arena");
        // SAFETY: the OS just checked that every page of the block is committed and writable, and
        // the block is live, so the program owns these bytes.
        unsafe { std::ptr::write_bytes(ptr, byte, block.size as usize) };
        self.blocks[slot as usize] = Some(Block {
            pattern: Some((byte, block.size)),
            ..block
        });
    }

    fn read(&mut self, os: &mut Os, slot: u8) {
        let Some(block) = self.touched_block(os, slot, Access::Read, SITE_PROGRAM_READ) else {
            return;
        };
        self.check_pattern(os, slot, block, "read");
    }

    /// Compares the block's leading bytes with what the program wrote (the OS has checked the
    /// pages, or dlmalloc just handed the block out).
    fn check_pattern(&mut self, os: &Os, slot: u8, block: Block, what: &str) {
        let Some((byte, filled)) = block.pattern else {
            return;
        };
        let ptr = os
            .host_ptr(block.addr)
            .expect("blocks live in the host arena");
        // SAFETY: the block is live and at least `filled` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, filled as usize) };
        if let Some(offset) = bytes.iter().position(|&b| b != byte) {
            self.violations.push(format!(
                "{what} of slot {slot}: byte {offset} of the {filled} the program wrote is {:#04x}, not {byte:#04x}",
                bytes[offset]
            ));
        }
    }

    fn release_behind_back(&mut self, os: &mut Os) {
        let Some(heap) = self.heap.as_ref() else {
            return;
        };
        let platform = heap.allocator();
        let Some((base, len)) = platform.most_recent_region() else {
            return;
        };
        // The buggy platform forgets the region as well: when dlmalloc frees it later, the OS
        // reports a release of memory released earlier.
        platform.regions.borrow_mut().remove(&base);
        let _ = os.release(base, len, SITE_RELEASE_BEHIND_BACK);
    }
}
