//! `reloadable-lib`: a miniature of snmalloc built into a loadable library, with the pagemap
//! reservation that outlives every unload (snmalloc #766) as a defect.
//!
//! What is modelled:
//! - `load` maps the module (`os.load_module`) and runs its static constructors in order. With the
//!   fix (PR #773) the first is the reservation registry, whose own storage is a page straight from
//!   the OS, so it is constructed first and destroyed last. Then the library's globals: a static
//!   constructor allocates (as any C++ library's may), and that first allocation initialises the
//!   allocator. Then the thread-allocator TLS key, whose destructor points into the module's code.
//! - Allocator initialisation reserves the pagemap: 2^(`address_bits` − `min_chunk_bits`) ×
//!   `entry_bytes` bytes, 256 GiB with snmalloc's x64 defaults of 48, 14 and 16 (all `[config]`
//!   params). Only its bottom 64 KiB is committed; the page holding a chunk's entry is committed when
//!   the chunk registers. The backend reserves a 64 MiB range and carves power-of-two chunks (at
//!   least 2^`min_chunk_bits`) from it, one per allocation here; a freed chunk is decommitted
//!   (`notify_not_using`) and kept on a free list for reuse. The PAL offers reserve, commit and
//!   decommit, but no release.
//! - `alloc` on a thread first registers that thread's allocator: it sets the TLS value, so the
//!   thread's exit calls the destructor in the module.
//! - `unload` runs the destructors in reverse: the TLS key is deleted (a key left behind would keep
//!   a destructor pointing into unmapped code), the globals are freed, the backend gives back its
//!   ranges, and with the fix the registry releases every reservation it recorded (the pagemap and
//!   the backend's ranges) in reverse order, then its own page. Then the module is unmapped.
//! - A thread whose exit has already taken its TLS value when the library is unloaded still calls
//!   the teardown in the module. glibc keeps a DSO mapped while such thread-exit destructors are
//!   pending (`l_tls_dtor_count`), so the model defers unmapping the module until the last of them
//!   has returned.
//! - The host program registers an exit hook at startup that closes the library, so at process exit
//!   its static destructors run as they would in a real process.
//! - `reload` is `unload` then `load` in one op. The host program opens the library at startup
//!   (`preload`, on by default), so generated scenarios, which use `reload` rather than a bare
//!   `load` or `unload`, keep the library loaded at every lifecycle boundary: a random op list then
//!   never leaves a load without its unload, and only the defect leaks.
//!
//! Defect `pagemap-never-released` (snmalloc #766, partial fix PR #773): there is no registry, and
//! nothing tracks the pagemap reservation, so unloading never releases it and the next load
//! reserves another 256 GiB. After about 511 cycles the 47-bit address space is exhausted; the
//! pagemap reservation then fails with ENOMEM and the allocator cannot initialise (its allocations
//! return null). That failure is the consequence; the leak found after the first cycle is the cause.
//!
//! Not modelled: size classes and slabs inside chunks (one chunk per allocation), remote
//! deallocation queues, pagemap randomisation (1.25 TiB reservations), the hazard of a static
//! destructor that frees after the registry is gone (the model's destructor order avoids it).
//! Committed pages are a declared bounded cache: live allocations and registered pagemap entries
//! stay committed across lifecycles by design. Under injected reserve or commit faults a load's
//! initialisation can fail half-way; the host program that keeps the library loaded (`preload`,
//! `reload`) then unloads the broken library and tries again, a bounded number of times
//! (`LOAD_ATTEMPTS_MAX`), so that every lifecycle boundary still sees a whole library. Without
//! that, a broken load holds less than a later good one, and the later repetition would read as a
//! leak of the scenario's making. A bare `load` does not retry: what it leaves is what the checks see.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use serde::{Deserialize, Serialize};

use crate::os::modules::{CodeAddr, MAIN_CODE, ModuleId};
use crate::os::pages::format_bytes;
use crate::os::tls::TlsKey;
use crate::os::{Errno, Os, PAGE_SIZE, Tid};
use crate::subject::{
    BoolParam, CacheDecl, Config, DefectInfo, Names, OpDoc, OpRefusal, Step, Subject, SubjectInfo,
    UnsignedParam,
};

const LIBRARY_NAME: &str = "libsnmalloc.so";
/// How often the host retries a load whose initialisation failed (each attempt draws its faults
/// afresh, so at injected rates of a few percent the odds of all failing are negligible).
const LOAD_ATTEMPTS_MAX: u32 = 64;
const LIBRARY_CODE_BYTES: u64 = 256 << 10;
/// The thread allocator's teardown, registered as the TLS key's destructor.
const THREAD_TEARDOWN_OFFSET: u64 = 0x2400;
/// The host program's exit hook, which closes the library.
const HOST_EXIT: CodeAddr = CodeAddr(MAIN_CODE.0 + 0x2000);
const PAGEMAP_COMMITTED_BOTTOM_BYTES: u64 = 64 << 10;
const BACKEND_RANGE_BYTES: u64 = 64 << 20;
const CHUNK_BYTES_MAX: u64 = 1 << 20;

const ADDRESS_BITS: UnsignedParam = UnsignedParam {
    name: "address_bits",
    summary: "bits of address space the pagemap covers",
    // Above the largest `min_chunk_bits`, so that the pagemap always has an entry.
    min: CHUNK_BYTES_MAX.trailing_zeros() as u64 + 1,
    max: 63,
    default: 48,
};
const MIN_CHUNK_BITS: UnsignedParam = UnsignedParam {
    name: "min_chunk_bits",
    summary: "log2 of the smallest chunk: one pagemap entry per chunk of this size",
    min: 12,
    // Chunks are at most `CHUNK_BYTES_MAX`, so the smallest chunk is too.
    max: CHUNK_BYTES_MAX.trailing_zeros() as u64,
    default: 14,
};
const ENTRY_BYTES: UnsignedParam = UnsignedParam {
    name: "entry_bytes",
    summary: "bytes of one pagemap entry",
    min: 8,
    max: 64,
    default: 16,
};
/// The pagemap's size: 2^(`address_bits` − `min_chunk_bits`) entries of `entry_bytes`.
fn pagemap_bytes(config: &Config) -> u64 {
    let address_bits = config.unsigned(&ADDRESS_BITS) as u32;
    let min_chunk_bits = config.unsigned(&MIN_CHUNK_BITS) as u32;
    (1u64 << (address_bits - min_chunk_bits)).saturating_mul(config.unsigned(&ENTRY_BYTES))
}

const PRELOAD: BoolParam = BoolParam {
    name: "preload",
    summary: "the library is loaded before the first lifecycle, as a host links it",
    default: true,
};
/// The library's globals, allocated by a static constructor.
const GLOBALS_BYTES: u64 = 64;
/// Registry layout: a count, then (base, length) pairs.
const REGISTRY_ENTRY_BYTES: u64 = 16;
const REGISTRY_ENTRIES_MAX: u64 = PAGE_SIZE / REGISTRY_ENTRY_BYTES - 1;
const SLOTS: u8 = 8;

fn small_slot(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=SLOTS - 1)
}

fn request_bytes(u: &mut Unstructured) -> arbitrary::Result<u32> {
    Ok(*u.choose(&[16, 64, 1000, 4096, 16_384, 70_000, 262_144, 1 << 20])?)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ReloadableLibOp {
    /// dlopen: map the module and run its static constructors (no-op when loaded). Generated
    /// scenarios use `reload` instead, so that every op list keeps loads and unloads paired.
    #[arbitrary(skip)]
    Load,
    /// dlclose: run the static destructors in reverse and unmap the module (no-op when unloaded).
    #[arbitrary(skip)]
    Unload,
    /// `unload` then `load`.
    Reload,
    /// `slot = malloc(bytes)` through the library on this thread (a live block is freed first).
    Alloc {
        #[arbitrary(with = small_slot)]
        slot: u8,
        #[arbitrary(with = request_bytes)]
        bytes: u32,
    },
    /// `free(slot)` through the library on this thread.
    Free {
        #[arbitrary(with = small_slot)]
        slot: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    addr: u64,
    bytes: u64,
}

#[derive(Debug)]
struct Range {
    base: u64,
    bytes: u64,
    bump: u64,
}

/// The allocator's backend: the pagemap and the ranges chunks come from.
#[derive(Debug)]
struct Backend {
    pagemap_base: u64,
    ranges: Vec<Range>,
    free_chunks: BTreeMap<u64, Vec<u64>>,
}

/// PR #773's registry of reservations, kept in a page of its own.
#[derive(Debug)]
struct Registry {
    base: u64,
    entries: u64,
}

#[derive(Debug)]
struct Loaded {
    module: ModuleId,
    registry: Option<Registry>,
    backend: Option<Backend>,
    globals: Option<Chunk>,
    tls_key: Option<TlsKey>,
    threads: BTreeSet<u32>,
}

pub struct ReloadableLib {
    pagemap_never_released: bool,
    pagemap_bytes: u64,
    min_chunk_bits: u32,
    entry_bytes: u64,
    loaded: Option<Loaded>,
    /// Unloaded modules still mapped until the threads whose teardown is in flight return.
    unmap_pending: Vec<(ModuleId, BTreeSet<u32>)>,
    slots: [Option<Chunk>; SLOTS as usize],
}

type Mem<T> = Result<T, Errno>;

impl Subject for ReloadableLib {
    type Op = ReloadableLibOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "reloadable-lib",
            summary: "snmalloc-like allocator inside a loadable module with a pagemap reservation",
            ops: vec![
                OpDoc {
                    name: "load",
                    summary: "dlopen: map the module, run static constructors",
                },
                OpDoc {
                    name: "unload",
                    summary: "dlclose: static destructors in reverse, unmap",
                },
                OpDoc {
                    name: "reload",
                    summary: "unload then load",
                },
                OpDoc {
                    name: "alloc",
                    summary: "slot = malloc(bytes) through the library on this thread",
                },
                OpDoc {
                    name: "free",
                    summary: "free(slot) through the library",
                },
            ],
            defects: vec![DefectInfo {
                name: "pagemap-never-released",
                summary: "unloading never releases the 256 GiB pagemap reservation; ~511 cycles exhaust the address space",
                source: "snmalloc #766, partial fix PR #773",
            }],
            caches: vec![CacheDecl {
                kind: "committed pages",
                per_key_max: 4096,
                why: "live chunks and registered pagemap entries stay committed while the library is loaded",
            }],
            params: vec![
                ADDRESS_BITS.decl(),
                MIN_CHUNK_BITS.decl(),
                ENTRY_BYTES.decl(),
                PRELOAD.decl(),
            ],
            host_backed: false,
        }
    }

    /// The pagemap must fit the simulated address space with room for the rest of a load and for
    /// a second one: at most half of it. Larger (`address_bits = 63`), the first load fails, and
    /// the budget finding would read as the snmalloc #766 leak the subject exists to show.
    fn check_config(config: &Config) -> Result<(), (&'static str, String)> {
        let pagemap = pagemap_bytes(config);
        let room = 1u64 << (crate::os::pages::ADDRESS_BITS - 1);
        if pagemap > room {
            return Err((
                ADDRESS_BITS.name,
                format!(
                    "`{}` {} with `{}` {} and `{}` {} makes a pagemap of {}: more than half the {}-bit address space ({}); lower `{}` or `{}`, or raise `{}`",
                    ADDRESS_BITS.name,
                    config.unsigned(&ADDRESS_BITS),
                    MIN_CHUNK_BITS.name,
                    config.unsigned(&MIN_CHUNK_BITS),
                    ENTRY_BYTES.name,
                    config.unsigned(&ENTRY_BYTES),
                    format_bytes(pagemap),
                    crate::os::pages::ADDRESS_BITS,
                    format_bytes(room),
                    ADDRESS_BITS.name,
                    ENTRY_BYTES.name,
                    MIN_CHUNK_BITS.name,
                ),
            ));
        }
        Ok(())
    }

    fn new(os: &mut Os, config: &Config) -> Self {
        let min_chunk_bits = config.unsigned(&MIN_CHUNK_BITS) as u32;
        let entry_bytes = config.unsigned(&ENTRY_BYTES);
        let mut lib = ReloadableLib {
            pagemap_never_released: config.defect("pagemap-never-released"),
            pagemap_bytes: pagemap_bytes(config),
            min_chunk_bits,
            entry_bytes,
            loaded: None,
            unmap_pending: Vec::new(),
            slots: [None; SLOTS as usize],
        };
        os.atexit(HOST_EXIT, 0, "host_init");
        if config.flag(&PRELOAD) {
            let _ = lib.load_whole(os);
        }
        lib
    }

    fn op_name(op: &ReloadableLibOp) -> &'static str {
        match op {
            ReloadableLibOp::Load => "load",
            ReloadableLibOp::Unload => "unload",
            ReloadableLibOp::Reload => "reload",
            ReloadableLibOp::Alloc { .. } => "alloc",
            ReloadableLibOp::Free { .. } => "free",
        }
    }

    fn validate_op(op: &ReloadableLibOp, names: &mut Names) -> Result<(), OpRefusal> {
        match op {
            ReloadableLibOp::Alloc { slot, .. } => names.define("slot", slot % SLOTS),
            ReloadableLibOp::Free { slot } => names
                .require("slot", slot % SLOTS, "slot")
                .map_err(OpRefusal::of_field("slot"))?,
            _ => {}
        }
        Ok(())
    }

    fn apply(&mut self, os: &mut Os, tid: Tid, op: &ReloadableLibOp) -> Step<Self> {
        // An `Err` is a refused memory access (the OS recorded a fault finding) or an exhausted
        // resource the library answers with a null pointer; either way the op ends here.
        let _ = match op {
            ReloadableLibOp::Load => self.load(os),
            ReloadableLibOp::Unload => self.unload(os),
            ReloadableLibOp::Reload => self.unload(os).and_then(|()| self.load_whole(os)),
            ReloadableLibOp::Alloc { slot, bytes } => {
                self.op_alloc(os, tid, slot % SLOTS, u64::from(*bytes))
            }
            ReloadableLibOp::Free { slot } => self.op_free(os, tid, slot % SLOTS),
        };
        Step::Done
    }

    fn call(&mut self, os: &mut Os, tid: Tid, code: CodeAddr, _arg: u64) -> Step<Self> {
        if code == HOST_EXIT {
            let _ = self.unload(os);
            return Step::Done;
        }
        // The thread allocator's teardown: its (unmodelled) caches go back to the pool.
        if let Some(loaded) = self.loaded.as_mut()
            && code == os.module_code(loaded.module, THREAD_TEARDOWN_OFFSET, "thread_teardown")
        {
            loaded.threads.remove(&tid.0);
        }
        let mut index = 0;
        while index < self.unmap_pending.len() {
            let (module, threads) = &mut self.unmap_pending[index];
            if code == os.module_code(*module, THREAD_TEARDOWN_OFFSET, "thread_teardown")
                && threads.remove(&tid.0)
                && threads.is_empty()
            {
                let module = *module;
                self.unmap_pending.remove(index);
                let _ = os.unload_module(module, "dlclose");
            } else {
                index += 1;
            }
        }
        Step::Done
    }
}

impl ReloadableLib {
    // ---- load and unload ----

    /// Whether every static constructor of the loaded library succeeded.
    fn whole(&self) -> bool {
        self.loaded.as_ref().is_some_and(|loaded| {
            loaded.globals.is_some()
                && loaded.tls_key.is_some()
                && (self.pagemap_never_released || loaded.registry.is_some())
        })
    }

    /// The host program's load: a library whose initialisation failed is unloaded and loaded
    /// again, up to `LOAD_ATTEMPTS_MAX` times.
    fn load_whole(&mut self, os: &mut Os) -> Mem<()> {
        for _ in 0..LOAD_ATTEMPTS_MAX {
            let _ = self.load(os);
            if self.whole() {
                return Ok(());
            }
            let _ = self.unload(os);
        }
        self.load(os)
    }

    fn load(&mut self, os: &mut Os) -> Mem<()> {
        if self.loaded.is_some() {
            return Ok(());
        }
        let module = os.load_module(LIBRARY_NAME, LIBRARY_CODE_BYTES, "dlopen")?;
        self.loaded = Some(Loaded {
            module,
            registry: None,
            backend: None,
            globals: None,
            tls_key: None,
            threads: BTreeSet::new(),
        });
        // Static constructors, in order. The registry (the fix) must come first so that it is
        // destroyed last, after everything that reserved through it.
        if !self.pagemap_never_released {
            let registry = Self::registry_init(os);
            self.loaded_mut().registry = registry;
        }
        // A constructor that allocates: the first allocation initialises the allocator.
        let globals = self.alloc_chunk(os, GLOBALS_BYTES).ok();
        self.loaded_mut().globals = globals;
        let destructor = os.module_code(module, THREAD_TEARDOWN_OFFSET, "thread_alloc_key");
        self.loaded_mut().tls_key = os.tls_key_create(Some(destructor), "thread_alloc_key").ok();
        Ok(())
    }

    /// Runs the static destructors in reverse order of construction, each to completion whatever
    /// the others did, then unmaps the module.
    fn unload(&mut self, os: &mut Os) -> Mem<()> {
        let Some(loaded) = self.loaded.as_mut() else {
            return Ok(());
        };
        // Registered threads whose TLS value is already gone are exiting: their teardown call is
        // on its way, so the module must stay mapped until it returns.
        let mut in_flight = BTreeSet::new();
        if let Some(key) = loaded.tls_key.take() {
            in_flight = loaded
                .threads
                .iter()
                .copied()
                .filter(|&t| os.tls_get(Tid(t), key) == 0)
                .collect();
            let _ = os.tls_key_delete(key, "thread_alloc_key_delete");
        }
        loaded.threads.clear();
        if let Some(globals) = loaded.globals.take() {
            let _ = self.free_chunk(os, globals);
        }
        // Blocks the program still holds point into memory the library is about to give back.
        self.slots = [None; SLOTS as usize];
        let loaded = self.loaded.take().expect("checked above");
        if let Some(backend) = loaded.backend
            && loaded.registry.is_none()
        {
            // Without a registry the backend returns the ranges it knows; nothing tracks the
            // pagemap reservation (#766).
            for range in backend.ranges.iter().rev() {
                let _ = os.release(range.base, range.bytes, "backend_destroy");
            }
        }
        if let Some(registry) = loaded.registry {
            let _ = Self::registry_destroy(os, registry);
        }
        if in_flight.is_empty() {
            os.unload_module(loaded.module, "dlclose")
        } else {
            self.unmap_pending.push((loaded.module, in_flight));
            Ok(())
        }
    }

    fn loaded_mut(&mut self) -> &mut Loaded {
        self.loaded.as_mut().expect("loaded")
    }

    // ---- the registry of reservations (PR #773) ----

    fn registry_init(os: &mut Os) -> Option<Registry> {
        let base = os.reserve(PAGE_SIZE, PAGE_SIZE, "registry_init").ok()?;
        if os.commit(base, PAGE_SIZE, "registry_init").is_err() {
            let _ = os.release(base, PAGE_SIZE, "registry_init");
            return None;
        }
        Some(Registry { base, entries: 0 })
    }

    /// Reserves through the PAL, recording the region in the registry when there is one.
    fn pal_reserve(&mut self, os: &mut Os, bytes: u64, align: u64, site: &'static str) -> Mem<u64> {
        let base = os.reserve(bytes, align, site)?;
        if let Some(registry) = self.loaded_mut().registry.as_mut()
            && registry.entries < REGISTRY_ENTRIES_MAX
        {
            let entry = registry.base + REGISTRY_ENTRY_BYTES * (registry.entries + 1);
            registry.entries += 1;
            let (registry_base, entries) = (registry.base, registry.entries);
            os.write_u64(entry, base, "registry_record")?;
            os.write_u64(entry + 8, bytes, "registry_record")?;
            os.write_u64(registry_base, entries, "registry_record")?;
        }
        Ok(base)
    }

    /// Releases every recorded region in reverse order, then the registry's own page.
    fn registry_destroy(os: &mut Os, registry: Registry) -> Mem<()> {
        let entries = os.read_u64(registry.base, "registry_destroy")?;
        for index in (1..=entries).rev() {
            let entry = registry.base + REGISTRY_ENTRY_BYTES * index;
            let base = os.read_u64(entry, "registry_destroy")?;
            let bytes = os.read_u64(entry + 8, "registry_destroy")?;
            os.release(base, bytes, "registry_destroy")?;
        }
        os.release(registry.base, PAGE_SIZE, "registry_destroy")
    }

    // ---- the allocator ----

    /// The backend, initialised on the first allocation: pagemap, then the first range. With the
    /// fix, an allocator whose registry could not be constructed refuses to initialise rather
    /// than reserve what nothing would release.
    fn backend(&mut self, os: &mut Os) -> Mem<&mut Backend> {
        if self.loaded_mut().backend.is_none() {
            if !self.pagemap_never_released && self.loaded_mut().registry.is_none() {
                return Err(Errno::Enomem);
            }
            let pagemap_base =
                self.pal_reserve(os, self.pagemap_bytes, PAGE_SIZE, "pagemap_init")?;
            // The bottom is committed up front; if that fails, `register` commits what it needs.
            let _ = os.commit(
                pagemap_base,
                PAGEMAP_COMMITTED_BOTTOM_BYTES.min(self.pagemap_bytes),
                "pagemap_init",
            );
            self.loaded_mut().backend = Some(Backend {
                pagemap_base,
                ranges: Vec::new(),
                free_chunks: BTreeMap::new(),
            });
        }
        Ok(self
            .loaded_mut()
            .backend
            .as_mut()
            .expect("initialised above"))
    }

    fn chunk_bytes(&self, bytes: u64) -> u64 {
        bytes
            .clamp(1 << self.min_chunk_bits, CHUNK_BYTES_MAX)
            .next_power_of_two()
    }

    fn alloc_chunk(&mut self, os: &mut Os, bytes: u64) -> Mem<Chunk> {
        let chunk_bytes = self.chunk_bytes(bytes);
        let reused = self
            .backend(os)?
            .free_chunks
            .get_mut(&chunk_bytes)
            .and_then(Vec::pop);
        let addr = match reused {
            Some(addr) => addr,
            None => self.carve(os, chunk_bytes)?,
        };
        let chunk = Chunk {
            addr,
            bytes: chunk_bytes,
        };
        let committed = os
            .commit(addr, chunk_bytes, "chunk_commit")
            .and_then(|()| self.register(os, chunk));
        if let Err(errno) = committed {
            // Keep the address space for a later allocation.
            self.backend(os)?
                .free_chunks
                .entry(chunk_bytes)
                .or_default()
                .push(addr);
            return Err(errno);
        }
        Ok(chunk)
    }

    /// Bump-allocates an aligned chunk from the backend's ranges, reserving a range if needed.
    fn carve(&mut self, os: &mut Os, chunk_bytes: u64) -> Mem<u64> {
        let backend = self.backend(os)?;
        for range in &mut backend.ranges {
            let start = (range.base + range.bump).next_multiple_of(chunk_bytes);
            if start + chunk_bytes <= range.base + range.bytes {
                range.bump = start + chunk_bytes - range.base;
                return Ok(start);
            }
        }
        let base = self.pal_reserve(os, BACKEND_RANGE_BYTES, CHUNK_BYTES_MAX, "backend_reserve")?;
        let backend = self.backend(os)?;
        backend.ranges.push(Range {
            base,
            bytes: BACKEND_RANGE_BYTES,
            bump: chunk_bytes,
        });
        Ok(base)
    }

    /// The address of the chunk's pagemap entry.
    fn pagemap_entry(&mut self, os: &mut Os, chunk: Chunk) -> Mem<u64> {
        let offset = (chunk.addr >> self.min_chunk_bits) * self.entry_bytes;
        if offset + self.entry_bytes > self.pagemap_bytes {
            return Err(Errno::Einval);
        }
        Ok(self.backend(os)?.pagemap_base + offset)
    }

    /// Writes the chunk's pagemap entry, committing the page that holds it.
    fn register(&mut self, os: &mut Os, chunk: Chunk) -> Mem<()> {
        let entry = self.pagemap_entry(os, chunk)?;
        os.commit(entry - entry % PAGE_SIZE, PAGE_SIZE, "pagemap_register")?;
        os.write_u64(entry, chunk.bytes, "pagemap_register")
    }

    fn free_chunk(&mut self, os: &mut Os, chunk: Chunk) -> Mem<()> {
        // The entry's page was committed when the chunk registered.
        let entry = self.pagemap_entry(os, chunk)?;
        os.write_u64(entry, 0, "pagemap_unregister")?;
        os.decommit(chunk.addr, chunk.bytes, "chunk_decommit")?;
        self.backend(os)?
            .free_chunks
            .entry(chunk.bytes)
            .or_default()
            .push(chunk.addr);
        Ok(())
    }

    /// Registers the calling thread's allocator: its exit will call the teardown in the module.
    fn thread_init(&mut self, os: &mut Os, tid: Tid) {
        let loaded = self.loaded_mut();
        if let Some(key) = loaded.tls_key
            && loaded.threads.insert(tid.0)
        {
            let _ = os.tls_set(tid, key, u64::from(tid.0) + 1, "thread_alloc_init");
        }
    }

    fn op_alloc(&mut self, os: &mut Os, tid: Tid, slot: u8, bytes: u64) -> Mem<()> {
        if self.loaded.is_none() {
            return Ok(());
        }
        self.thread_init(os, tid);
        if let Some(old) = self.slots[usize::from(slot)].take() {
            self.free_chunk(os, old)?;
        }
        // A failed allocation (the allocator could not initialise, or memory ran out) is null.
        self.slots[usize::from(slot)] = self.alloc_chunk(os, bytes).ok();
        Ok(())
    }

    fn op_free(&mut self, os: &mut Os, tid: Tid, slot: u8) -> Mem<()> {
        if self.loaded.is_none() {
            return Ok(());
        }
        self.thread_init(os, tid);
        match self.slots[usize::from(slot)].take() {
            Some(chunk) => self.free_chunk(os, chunk),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread whose exit already took its TLS value when main reloads the library still calls
    /// the teardown: the old module stays mapped until that call returns.
    #[test]
    fn unload_waits_for_a_teardown_already_in_flight() {
        let mut os = Os::for_tests(1);
        let mut lib = ReloadableLib::new(&mut os, &Config::default());
        let old = lib.loaded.as_ref().expect("preloaded").module;
        let thread = os.spawn_thread("worker", "test").unwrap();
        lib.apply(
            &mut os,
            thread,
            &ReloadableLibOp::Alloc { slot: 0, bytes: 64 },
        );
        let mut due = Vec::new();
        os.tls_destructors_due(thread, |key, code, value| due.push((key, code, value)));
        assert_eq!(due.len(), 1, "the thread registered its allocator");
        let (_, teardown, value) = due[0];
        lib.apply(&mut os, Tid(0), &ReloadableLibOp::Reload);
        assert!(
            os.check_code(teardown, "tls destructor", "test"),
            "still mapped while the teardown is pending"
        );
        lib.call(&mut os, thread, teardown, value);
        assert!(lib.unmap_pending.is_empty());
        assert_ne!(lib.loaded.as_ref().expect("reloaded").module, old);
        assert!(
            !os.check_code(teardown, "tls destructor", "test"),
            "unmapped once the teardown returned"
        );
        let findings = os.take_findings();
        assert_eq!(
            findings.len(),
            1,
            "only the probe above, after the unmap: {findings:?}"
        );
        assert_eq!(findings[0].signature(), "fault:unloaded code:test");
    }
}
