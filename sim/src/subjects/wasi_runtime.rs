//! `wasi-runtime`: a WAMR-like WASI context (libc-wasi, `sandboxed-system-primitives`) on the
//! virtual OS: instantiate and destroy, the guest's fd table and its preopened directories
//! (prestats), each guarded by an rwlock, and the guest calls that change fd lifetimes.
//!
//! What is modelled, following `wasm_runtime_init_wasi` and `posix.c` as of WAMR 2.x:
//! - `instantiate`, in the real order: the `WASIContext`; argv and environ copied with
//!   `copy_string_array` (a pointer list and, when non-empty, a string buffer); the `fd_table`,
//!   `fd_prestats`, `argv_environ_values` and `addr_pool` structs; `fd_table_init` (creates an
//!   rwlock, `entries = NULL`); `fd_prestats_init` (creates an rwlock, `prestats = NULL`); argv,
//!   environ and the address pool initialised (no allocation); stdio inserted as guest fds 0..=2
//!   (`fd_table_insert_existing`, which allocates the fd object and grows `entries`); each preopen
//!   opened with `os_open_preopendir`, inserted as fd 3, 4, … and recorded in prestats
//!   (`fd_prestats_insert`, which grows `prestats` and copies the name); the empty ns-lookup list.
//!   Any failure jumps to the real `fail:` path, which destroys what was initialised through the
//!   same `fd_prestats_destroy`/`fd_table_destroy` that `destroy` uses, and the failed instance
//!   is deinstantiated (its `WASIContext` freed).
//! - Tables grow as `fd_table_grow`/`fd_prestats_grow` do: a new allocation, doubling until the
//!   wanted number fits and at most half is used, then the old one is freed. New fds from
//!   `path_open` take a random unused number (`fd_table_unused`), from the seeded stream.
//! - fd objects: a heap block each; a directory object also owns a mutex (`directory.lock`);
//!   releasing one closes its OS fd unless it is stdio (`os_close(handle, is_stdio)`).
//! - Guest calls take the table and prestats rwlocks as the real ones do: `fd_object_get` reads
//!   under the table's read lock; `fd_close` and `fd_renumber` hold both write locks; inserts hold
//!   the table's write lock; `fd_prestat_get`/`fd_prestat_dir_name` the prestats read lock.
//! - `destroy` is `wasm_runtime_destroy_wasi`: the fd table (releasing every object), the
//!   prestats, the address pool, the structs, the string arrays, the context.
//!
//! Not modelled: rights (the OS's description access modes stand in), the guest's linear memory
//! (names and buffers are not copied anywhere), map-dirs, address-pool entries and sockets,
//! refcounts beyond one holder (no lock or object is held across a scheduling point, so a guest
//! call is atomic and a lock is never contended; a blocked I/O call restarts from its lookup).
//! `fd_renumber(x, x)` is a successful no-op here; real WAMR dereferences the entry it has just
//! detached (WasmEdge had the same crash, WasmEdge #3040). The host's stdio are three files under
//! `/dev`, opened in `new`, before any lifecycle, so they are outside every baseline.
//!
//! Defects (SEED-BUGS.md section 4, WAMR #4192, fixed by PR #4205):
//! - `prestats-lock-leak`: `fd_prestats_destroy` destroys its rwlock only `if (pt->prestats)`.
//!   With no preopened directory the array is never allocated, so every instance lifecycle leaks
//!   one rwlock (216 B on the ESP32-S3 of the report), acquired at `fd_prestats_init`.
//! - `fd-table-lock-leak`: `fd_table_destroy` destroys its rwlock only `if (ft->entries)`. The
//!   entries are allocated by the first stdio insert, so the lock leaks only when init fails
//!   before that: reachable only with injected allocation failures.
//! - `preopen-handle-leak`: `fd_table_insert_existing` returns false without closing the handle
//!   it was given when `fd_object_new` fails, and `wasm_runtime_init_wasi` does not close it
//!   either, so an allocation failure while inserting a preopen leaks the directory's OS fd.
//!   Found by reading the code (`fd_table_insert_fd`, the path-open twin, does close it); no
//!   upstream report is known to us. Fixed here by closing the handle on that path.

use std::cell::Cell;
use std::ops::ControlFlow;
use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};
use serde::{Deserialize, Serialize};

use crate::os::fds::{FileType, OpenFlags};
use crate::os::{BlockReason, Fd, Io, LockId, LockKind, Os, Site, Tid};
use crate::subject::{Config, DefectInfo, Names, OpDoc, OpRefusal, Step, Subject, SubjectInfo};

/// Instance slots a scenario can use (`instance = 0..=3`).
pub const INSTANCES_MAX: u8 = 4;

/// Guest fd numbers the generator draws from: stdio, a few preopens, and the low random numbers
/// `path_open` hands out while the table is small.
const GUEST_FDS_GENERATED: u32 = 16;

// Heap object sizes, in bytes, for a 64-bit build. Only their presence matters to the checks.
const WASI_CTX_BYTES: u64 = 128;
const FD_TABLE_STRUCT_BYTES: u64 = 32;
const FD_PRESTATS_STRUCT_BYTES: u64 = 32;
const ARGV_ENVIRON_STRUCT_BYTES: u64 = 80;
const ADDR_POOL_STRUCT_BYTES: u64 = 48;
const FD_ENTRY_BYTES: u64 = 24;
const FD_PRESTAT_BYTES: u64 = 8;
const FD_OBJECT_BYTES: u64 = 64;
const POINTER_BYTES: u64 = 8;

/// The first guest fd after stdio: preopens are numbered from here.
const FIRST_PREOPEN_FD: usize = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum WasiOp {
    /// Instantiates a WASI module into slot `instance` (a no-op when the slot is taken).
    Instantiate {
        #[arbitrary(with = instance_slot)]
        instance: u8,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[arbitrary(with = argv_words)]
        argv: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[arbitrary(with = environ_words)]
        environ: Vec<String>,
        /// Preopened directories (absolute paths; created on the virtual file system if missing).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[arbitrary(with = preopen_dirs)]
        dirs: Vec<String>,
    },
    /// Destroys instance `instance` (`wasm_runtime_destroy_wasi`).
    Destroy {
        #[arbitrary(with = instance_slot)]
        instance: u8,
    },
    FdWrite {
        #[arbitrary(with = instance_slot)]
        instance: u8,
        #[arbitrary(with = guest_fd)]
        fd: u32,
        #[arbitrary(with = byte_count)]
        bytes: u32,
    },
    FdRead {
        #[arbitrary(with = instance_slot)]
        instance: u8,
        #[arbitrary(with = guest_fd)]
        fd: u32,
        #[arbitrary(with = byte_count)]
        bytes: u32,
    },
    FdClose {
        #[arbitrary(with = instance_slot)]
        instance: u8,
        #[arbitrary(with = guest_fd)]
        fd: u32,
    },
    FdPrestatGet {
        #[arbitrary(with = instance_slot)]
        instance: u8,
        #[arbitrary(with = guest_fd)]
        fd: u32,
    },
    FdPrestatDirName {
        #[arbitrary(with = instance_slot)]
        instance: u8,
        #[arbitrary(with = guest_fd)]
        fd: u32,
    },
    /// Opens `path` under the directory `fd` (creating a file, or with `directory` opening a
    /// directory) and inserts it at a random unused guest fd.
    PathOpen {
        #[arbitrary(with = instance_slot)]
        instance: u8,
        #[arbitrary(with = guest_fd)]
        fd: u32,
        #[arbitrary(with = guest_path)]
        path: String,
        #[serde(default)]
        directory: bool,
    },
    /// Moves guest fd `from` onto `to` (both must be open), closing what `to` held.
    FdRenumber {
        #[arbitrary(with = instance_slot)]
        instance: u8,
        #[arbitrary(with = guest_fd)]
        from: u32,
        #[arbitrary(with = guest_fd)]
        to: u32,
    },
}

impl WasiOp {
    fn instance(&self) -> u8 {
        match self {
            WasiOp::Instantiate { instance, .. }
            | WasiOp::Destroy { instance }
            | WasiOp::FdWrite { instance, .. }
            | WasiOp::FdRead { instance, .. }
            | WasiOp::FdClose { instance, .. }
            | WasiOp::FdPrestatGet { instance, .. }
            | WasiOp::FdPrestatDirName { instance, .. }
            | WasiOp::PathOpen { instance, .. }
            | WasiOp::FdRenumber { instance, .. } => *instance,
        }
    }
}

// Generators for fields whose meaningful values are few: random strings would only ever fail.

fn instance_slot(u: &mut Unstructured<'_>) -> arbitrary::Result<u8> {
    u.int_in_range(0..=INSTANCES_MAX - 1)
}

fn guest_fd(u: &mut Unstructured<'_>) -> arbitrary::Result<u32> {
    u.int_in_range(0..=GUEST_FDS_GENERATED - 1)
}

fn byte_count(u: &mut Unstructured<'_>) -> arbitrary::Result<u32> {
    u.int_in_range(0..=512)
}

fn words(u: &mut Unstructured<'_>, vocabulary: &[&str]) -> arbitrary::Result<Vec<String>> {
    let mut out = Vec::new();
    u.arbitrary_loop(Some(0), Some(3), |u| {
        out.push(u.choose(vocabulary)?.to_string());
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(out)
}

fn argv_words(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<String>> {
    words(u, &["app.wasm", "-v", "--input=a.txt"])
}

fn environ_words(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<String>> {
    words(u, &["HOME=/", "LANG=C", "RUST_BACKTRACE=1"])
}

fn preopen_dirs(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<String>> {
    words(u, &["/x", "/tmp", "/data/app"])
}

fn guest_path(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    Ok(u.choose(&["a.txt", "b.log", ".", "missing/c.txt"])?
        .to_string())
}

/// A guest fd's object: `struct fd_object`, one holder at a time.
#[derive(Debug)]
struct FdObject {
    block: u64,
    handle: Fd,
    is_stdio: bool,
    /// Directories carry a mutex (`fo->directory.lock`), destroyed when the object is released.
    dir_lock: Option<LockId>,
}

/// `struct fd_table`: the lock, the `entries` allocation (None is NULL) and its slots.
#[derive(Debug)]
struct FdTable {
    lock: LockId,
    entries: Option<u64>,
    /// WAMR's `size`, the number of entries. `slots` may be longer (see `Slots`).
    size: usize,
    slots: Slots<FdObject>,
    used: usize,
}

/// A table's slots: the first `size` are its entries, and every one after them is empty. The
/// vector goes from a destroyed table to the next one with its length (every slot is empty
/// again by then), so that a new table grows by setting its size, not by pushing an empty slot
/// per entry on every instantiation.
type Slots<T> = Vec<Option<T>>;

/// A preopen's entry in the prestats: its name, and the heap block of WAMR's copy of it (the
/// name itself is shared: see `WasiRuntime::preopen_names`).
type Prestat = (Rc<str>, u64);

/// `struct fd_prestats`: the lock, the `prestats` allocation and each preopen's entry.
#[derive(Debug)]
struct Prestats {
    lock: LockId,
    block: Option<u64>,
    /// WAMR's `size`, the number of entries. `dirs` may be longer (see `Slots`).
    size: usize,
    dirs: Slots<Prestat>,
    /// One past the highest preopen number ever inserted, as in WAMR.
    used: usize,
}

/// What `copy_string_array` allocates: the NULL-terminated pointer list and the string buffer.
#[derive(Debug)]
struct StringArray {
    list: u64,
    buf: Option<u64>,
}

/// `WASIContext` and everything hanging off it; fields are set as init gets that far.
#[derive(Debug, Default)]
struct WasiCtx {
    block: u64,
    argv: Option<StringArray>,
    environ: Option<StringArray>,
    ns_lookup: Option<StringArray>,
    /// The `fd_table`, `fd_prestats`, `argv_environ_values` and `addr_pool` structs, in that
    /// order, each once allocated.
    structs: [Option<u64>; 4],
    /// Some once `fd_table_init` ran.
    table: Option<FdTable>,
    /// Some once `fd_prestats_init` ran.
    prestats: Option<Prestats>,
}

/// Why a guest call or an init step stopped early.
enum Stop {
    /// A lock or an fd would block: the call restarts from the top when the thread is woken.
    Block(BlockReason),
    /// The call failed with a WASI errno (which the guest sees; nothing here depends on which).
    Fail,
}

type Call = Result<(), Stop>;

pub struct WasiRuntime {
    instances: Vec<Option<WasiCtx>>,
    /// The emptied slot vectors of destroyed fd tables and prestats, which new instances take
    /// instead of growing their own from nothing: every fuzz input instantiates and destroys
    /// dozens of times. At most one per instance slot is ever made. Only capacity is kept, so
    /// nothing observable depends on which vector an instance gets. A dropped runtime leaves
    /// them (with its live instances' vectors, emptied) to the next one made on its thread, as
    /// `Os` does with its lists: a fuzz target makes a runtime per input.
    spare_slots: Vec<Slots<FdObject>>,
    spare_dirs: Vec<Slots<Prestat>>,
    /// Every preopen path instantiated so far, shared by the prestats entries that name it: an
    /// instantiation then makes no string of its own (the copy WAMR makes is the heap block
    /// beside the name). As many as the scenario names, found by content.
    preopen_names: Vec<Rc<str>>,
    /// The host's stdin, stdout and stderr, handed to every instance as guest fds 0..=2. None
    /// when the OS refused them (an `fds_max` below four, which a scenario file gives only
    /// where its faults may fire: the parser refuses a limit the constructor exhausts, but not
    /// in a file whose faults may make the constructor take less, `scenario/construction.rs`):
    /// instances then start without stdio, and the run already has the budget finding that
    /// says why.
    stdio: Option<[Fd; 3]>,
    /// The guest's iovecs for `fd_write` (every byte `w`) and `fd_read`, kept from call to call
    /// and grown as needed: one made per call cost a heap allocation, and zeroing, on every
    /// read and write. Two, so that the bytes a read leaves never reach a write.
    write_iovec: Vec<u8>,
    read_iovec: Vec<u8>,
    prestats_lock_leak: bool,
    fd_table_lock_leak: bool,
    preopen_handle_leak: bool,
}

/// The spare slot vectors of a dropped runtime (see `WasiRuntime::spare_slots`), and its
/// instance slots, emptied: a context is some 300 bytes, and the slots were an allocation of
/// kilobytes per input.
type SpareSlots = (
    Vec<Slots<FdObject>>,
    Vec<Slots<Prestat>>,
    Vec<Option<WasiCtx>>,
);

thread_local! {
    /// The spare slot vectors the last runtime dropped on this thread left, for the next one.
    static SPARE_SLOTS: Cell<Option<SpareSlots>> = const { Cell::new(None) };
}

/// Frees the slot vectors the runtimes dropped on this thread left, so that the next one makes
/// its own as the first did (see `fuzzing::reset_thread_spares`).
pub fn forget_thread_spares() {
    drop(SPARE_SLOTS.take());
}

impl Drop for WasiRuntime {
    fn drop(&mut self) {
        for ctx in self.instances.iter_mut().flatten() {
            if let Some(mut table) = ctx.table.take() {
                table.slots.fill_with(|| None);
                self.spare_slots.push(table.slots);
            }
            if let Some(mut prestats) = ctx.prestats.take() {
                prestats.dirs.fill_with(|| None);
                self.spare_dirs.push(prestats.dirs);
            }
        }
        self.instances.fill_with(|| None);
        let spares = (
            std::mem::take(&mut self.spare_slots),
            std::mem::take(&mut self.spare_dirs),
            std::mem::take(&mut self.instances),
        );
        // At thread exit the slot may be gone already: the vectors are then freed.
        let _ = SPARE_SLOTS.try_with(|slot| slot.set(Some(spares)));
    }
}

impl Subject for WasiRuntime {
    type Op = WasiOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "wasi-runtime",
            summary: "WAMR-like WASI context: instantiate/destroy with an fd table, prestats and their rwlocks",
            ops: [
                ("instantiate", "init a WASI context in slot `instance` with `argv`, `environ` and preopened `dirs`"),
                ("destroy", "destroy the context in slot `instance`"),
                ("fd-write", "write `bytes` to guest fd `fd`"),
                ("fd-read", "read up to `bytes` from guest fd `fd`"),
                ("fd-close", "close guest fd `fd` (and its preopen entry)"),
                ("fd-prestat-get", "look up the preopen at `fd`"),
                ("fd-prestat-dir-name", "read the preopen name at `fd`"),
                ("path-open", "open `path` under directory fd `fd` at a random free guest fd"),
                ("fd-renumber", "move guest fd `from` onto `to`"),
            ]
            .map(|(name, summary)| OpDoc { name, summary })
            .to_vec(),
            defects: vec![
                DefectInfo {
                    name: "prestats-lock-leak",
                    summary: "fd_prestats_destroy destroys its rwlock only if a preopen was inserted",
                    source: "WAMR #4192, fixed by PR #4205",
                },
                DefectInfo {
                    name: "fd-table-lock-leak",
                    summary: "fd_table_destroy destroys its rwlock only if entries were allocated (a failed init)",
                    source: "WAMR #4192, fixed by PR #4205",
                },
                DefectInfo {
                    name: "preopen-handle-leak",
                    summary: "a failed fd_object_new while inserting a preopen leaks the directory's OS fd",
                    source: "WAMR posix.c fd_table_insert_existing, read from the code; no upstream report known",
                },
            ],
            caches: vec![],
            params: vec![],
            host_backed: false,
        }
    }

    fn new(os: &mut Os, config: &Config) -> Self {
        let (spare_slots, spare_dirs, mut instances) = SPARE_SLOTS.take().unwrap_or_default();
        if instances.len() != usize::from(INSTANCES_MAX) {
            instances = (0..INSTANCES_MAX).map(|_| None).collect();
        }
        WasiRuntime {
            instances,
            spare_slots,
            spare_dirs,
            preopen_names: Vec::new(),
            stdio: host_stdio(os).ok(),
            write_iovec: Vec::new(),
            read_iovec: Vec::new(),
            prestats_lock_leak: config.defect("prestats-lock-leak"),
            fd_table_lock_leak: config.defect("fd-table-lock-leak"),
            preopen_handle_leak: config.defect("preopen-handle-leak"),
        }
    }

    fn op_name(op: &WasiOp) -> &'static str {
        match op {
            WasiOp::Instantiate { .. } => "instantiate",
            WasiOp::Destroy { .. } => "destroy",
            WasiOp::FdWrite { .. } => "fd-write",
            WasiOp::FdRead { .. } => "fd-read",
            WasiOp::FdClose { .. } => "fd-close",
            WasiOp::FdPrestatGet { .. } => "fd-prestat-get",
            WasiOp::FdPrestatDirName { .. } => "fd-prestat-dir-name",
            WasiOp::PathOpen { .. } => "path-open",
            WasiOp::FdRenumber { .. } => "fd-renumber",
        }
    }

    fn validate_op(op: &WasiOp, names: &mut Names) -> Result<(), OpRefusal> {
        let instance = op.instance();
        if instance >= INSTANCES_MAX {
            return Err(OpRefusal::at(
                "instance",
                format!(
                    "instance {instance} is out of range: there are {INSTANCES_MAX} instance slots, 0 to {}",
                    INSTANCES_MAX - 1
                ),
            ));
        }
        match op {
            WasiOp::Instantiate { .. } => names.define("instance", instance),
            _ => names
                .require("instance", instance, "instance")
                .map_err(OpRefusal::of_field("instance"))?,
        }
        Ok(())
    }

    fn closing_ops(names: &Names) -> Vec<WasiOp> {
        (0..INSTANCES_MAX)
            .filter(|i| names.is_defined("instance", i))
            .map(|instance| WasiOp::Destroy { instance })
            .collect()
    }

    fn apply(&mut self, os: &mut Os, tid: Tid, op: &WasiOp) -> Step<Self> {
        let slot = op.instance() as usize;
        if slot >= self.instances.len() {
            return Step::Done;
        }
        if let WasiOp::Instantiate {
            argv,
            environ,
            dirs,
            ..
        } = op
        {
            if self.instances[slot].is_none() {
                self.instantiate(os, tid, slot, argv, environ, dirs);
            }
            return Step::Done;
        }
        if let WasiOp::Destroy { .. } = op {
            // Released in its slot rather than taken out of it: see `instantiate`.
            let mut instances = std::mem::take(&mut self.instances);
            if let Some(ctx) = &mut instances[slot] {
                self.release_ctx(os, ctx, "wasm_runtime_destroy_wasi");
                instances[slot] = None;
            }
            self.instances = instances;
            return Step::Done;
        }
        let Some(ctx) = self.instances[slot].as_mut() else {
            return Step::Done;
        };
        let (table, prestats) = ctx.tables();
        let result = match op {
            WasiOp::FdWrite { fd, bytes, .. } => {
                fd_write(os, tid, table, &mut self.write_iovec, *fd, *bytes)
            }
            WasiOp::FdRead { fd, bytes, .. } => {
                fd_read(os, tid, table, &mut self.read_iovec, *fd, *bytes)
            }
            WasiOp::FdClose { fd, .. } => fd_close(os, tid, table, prestats, *fd),
            WasiOp::FdPrestatGet { fd, .. } | WasiOp::FdPrestatDirName { fd, .. } => {
                prestat_get(os, tid, prestats, *fd)
            }
            WasiOp::PathOpen {
                fd,
                path,
                directory,
                ..
            } => path_open(os, tid, table, *fd, path, *directory),
            WasiOp::FdRenumber { from, to, .. } => {
                fd_renumber(os, tid, table, prestats, *from, *to)
            }
            WasiOp::Instantiate { .. } | WasiOp::Destroy { .. } => unreachable!("handled above"),
        };
        match result {
            Err(Stop::Block(reason)) => {
                let op = op.clone();
                Step::block(reason, move |subject: &mut WasiRuntime, os, tid| {
                    subject.apply(os, tid, &op)
                })
            }
            Ok(()) | Err(Stop::Fail) => Step::Done,
        }
    }

    fn check_invariants(&self, _os: &Os) -> Vec<String> {
        let mut violations = Vec::new();
        for (slot, ctx) in self.instances.iter().enumerate() {
            if let Some(table) = ctx.as_ref().and_then(|c| c.table.as_ref()) {
                let occupied = table.slots.iter().filter(|s| s.is_some()).count();
                if occupied != table.used {
                    violations.push(format!(
                        "instance {slot}: fd table counts {} used entries but holds {occupied}",
                        table.used
                    ));
                }
            }
        }
        violations
    }
}

impl WasiCtx {
    fn tables(&mut self) -> (&mut FdTable, &mut Prestats) {
        let table = self
            .table
            .as_mut()
            .expect("a live instance has an fd table");
        let prestats = self
            .prestats
            .as_mut()
            .expect("a live instance has prestats");
        (table, prestats)
    }
}

/// The embedder's stdio: three files under `/dev`, as guest fds 0..=2 will see them.
fn host_stdio(os: &mut Os) -> Result<[Fd; 3], crate::os::Errno> {
    let site = "host_stdio";
    os.mkdir("/dev", site)?;
    let dev = os.open_dir("/dev", site)?;
    let reading = OpenFlags {
        read: true,
        create: true,
        ..OpenFlags::default()
    };
    let writing = OpenFlags {
        write: true,
        create: true,
        ..OpenFlags::default()
    };
    let stdio = [
        os.open_at(dev, "stdin", reading, site)?,
        os.open_at(dev, "stdout", writing, site)?,
        os.open_at(dev, "stderr", writing, site)?,
    ];
    os.close(dev, site)?;
    Ok(stdio)
}

/// Creates `path` and its parents when missing: the embedder's directories exist before it
/// preopens them. A relative path is left alone, and its preopen fails as `realpath` would.
fn make_dirs(os: &mut Os, path: &str) {
    if !path.starts_with('/') {
        return;
    }
    // Each prefix of the path that ends a component, as a slice of it: the OS's path walk skips
    // empty components, so `/a//b` is the same prefix as a rebuilt `/a/b`.
    let bytes = path.as_bytes();
    for (end, &byte) in bytes.iter().enumerate().skip(1) {
        let ends_component = bytes.get(end + 1).is_none_or(|&next| next == b'/');
        if byte != b'/' && ends_component {
            let _ = os.mkdir(&path[..=end], "host_mkdir");
        }
    }
}

/// The rwlock and mutex calls of the model. No runtime lock is held across a scheduling point, so
/// contention cannot arise here; if it did, the call would block and restart from the top.
///
/// `rwlock_lock` is always inlined: out of line, its `Call` went back to every caller through
/// memory (a lock is taken several times per instantiation and per guest call).
#[inline(always)]
fn rwlock_lock(os: &mut Os, tid: Tid, lock: LockId, write: bool, site: Site) -> Call {
    let io = if write {
        os.lock_acquire(tid, lock, site)
    } else {
        os.lock_acquire_read(tid, lock, site)
    };
    match io {
        Io::Ready(Ok(())) => Ok(()),
        // A lock that is not live: the OS has reported it; the call fails.
        Io::Ready(Err(_)) => Err(Stop::Fail),
        Io::Block(reason) => Err(Stop::Block(reason)),
    }
}

fn rwlock_unlock(os: &mut Os, tid: Tid, lock: LockId, site: Site) {
    let _ = os.lock_release(tid, lock, site);
}

/// Both write locks, table first, as `fd_close` and `fd_renumber` take them.
fn lock_both(os: &mut Os, tid: Tid, table: &FdTable, prestats: &Prestats, site: Site) -> Call {
    rwlock_lock(os, tid, table.lock, true, site)?;
    if let Err(stop) = rwlock_lock(os, tid, prestats.lock, true, site) {
        rwlock_unlock(os, tid, table.lock, site);
        return Err(stop);
    }
    Ok(())
}

fn unlock_both(os: &mut Os, tid: Tid, table: &FdTable, prestats: &Prestats, site: Site) {
    rwlock_unlock(os, tid, prestats.lock, site);
    rwlock_unlock(os, tid, table.lock, site);
}

/// `fd_table_grow` and `fd_prestats_grow`: when `min` does not fit or more than half would be
/// used, allocate a table of double the size (until both hold), move the slots, free the old one.
#[allow(clippy::too_many_arguments)]
fn grow<T>(
    os: &mut Os,
    block: &mut Option<u64>,
    size: &mut usize,
    slots: &mut Slots<T>,
    used: usize,
    min: usize,
    entry_bytes: u64,
    site: Site,
) -> bool {
    let wanted = (used + 1) * 2;
    if *size > min && *size >= wanted {
        return true;
    }
    let mut new_size = (*size).max(1);
    while new_size <= min || new_size < wanted {
        new_size *= 2;
    }
    let Ok(new) = os.malloc(entry_bytes * new_size as u64, site) else {
        return false;
    };
    if let Some(old) = block.replace(new) {
        let _ = os.free(old, site);
    }
    *size = new_size;
    if slots.len() < new_size {
        slots.resize_with(new_size, || None);
    }
    true
}

/// `copy_string_array`: the pointer list, then the buffer if there are any bytes to copy.
fn copy_string_array(os: &mut Os, strings: &[String], site: Site) -> Result<StringArray, Stop> {
    let list = os
        .malloc(POINTER_BYTES * (strings.len() as u64 + 1), site)
        .map_err(|_| Stop::Fail)?;
    let bytes: u64 = strings.iter().map(|s| s.len() as u64 + 1).sum();
    if bytes == 0 {
        return Ok(StringArray { list, buf: None });
    }
    match os.malloc(bytes, site) {
        Ok(buf) => Ok(StringArray {
            list,
            buf: Some(buf),
        }),
        Err(_) => {
            let _ = os.free(list, site);
            Err(Stop::Fail)
        }
    }
}

fn free_string_array(os: &mut Os, array: StringArray, site: Site) {
    if let Some(buf) = array.buf {
        let _ = os.free(buf, site);
    }
    let _ = os.free(array.list, site);
}

/// `fd_determine_type_rights` and `fd_object_new` (plus a directory's mutex). On failure the
/// handle is untouched: the caller owns it.
///
/// Always inlined: out of line, the object went back to `fd_table_insert_existing` through
/// memory, stored in parts and reloaded, on every instantiation's stdio and preopens.
#[inline(always)]
fn fd_object_new(os: &mut Os, handle: Fd, is_stdio: bool) -> Option<FdObject> {
    let directory = os
        .fd_stat(handle, "fd_determine_type_rights")
        .ok()?
        .file_type
        == FileType::Directory;
    let block = os.malloc(FD_OBJECT_BYTES, "fd_object_new").ok()?;
    let mut object = FdObject {
        block,
        handle,
        is_stdio,
        dir_lock: None,
    };
    if directory {
        // A failure here means the simulation's object budget is spent, which ends the run.
        let Ok(mutex) = os.lock_create(LockKind::Mutex, "fd_object_dir_lock") else {
            let _ = os.free(block, "fd_object_new");
            return None;
        };
        object.dir_lock = Some(mutex);
    }
    Some(object)
}

/// `fd_object_release` of the last reference: the directory mutex, the OS fd unless it is stdio,
/// the object.
fn fd_object_release(os: &mut Os, object: FdObject) {
    let site = "fd_object_release";
    if let Some(mutex) = object.dir_lock {
        let _ = os.lock_destroy(mutex, site);
    }
    if !object.is_stdio {
        let _ = os.close(object.handle, site);
    }
    let _ = os.free(object.block, site);
}

impl FdTable {
    /// What `fd_table_insert` and `fd_table_insert_existing` do before they attach an object:
    /// take the write lock, then grow the table to hold entry `min`. On failure nothing is held,
    /// and the caller releases the object it meant to insert. Always inlined, as `rwlock_lock`
    /// is: every instantiation inserts its stdio and preopens.
    #[inline(always)]
    fn lock_for_insert(&mut self, os: &mut Os, tid: Tid, min: usize, site: Site) -> Call {
        rwlock_lock(os, tid, self.lock, true, site)?;
        if !grow(
            os,
            &mut self.entries,
            &mut self.size,
            &mut self.slots,
            self.used,
            min,
            FD_ENTRY_BYTES,
            "fd_table_grow",
        ) {
            rwlock_unlock(os, tid, self.lock, site);
            return Err(Stop::Fail);
        }
        Ok(())
    }

    fn attach(&mut self, number: usize, object: FdObject) {
        self.slots[number] = Some(object);
        self.used += 1;
    }

    fn detach(&mut self, number: u32) -> Option<FdObject> {
        let object = self.slots.get_mut(number as usize)?.take()?;
        self.used -= 1;
        Some(object)
    }

    fn is_open(&self, number: u32) -> bool {
        self.slots.get(number as usize).is_some_and(Option::is_some)
    }
}

impl Prestats {
    fn name(&self, number: u32) -> Option<&str> {
        self.dirs
            .get(number as usize)?
            .as_ref()
            .map(|(name, _)| &**name)
    }

    /// The name at `number`, shared, for an entry that moves.
    fn shared_name(&self, number: u32) -> Option<Rc<str>> {
        self.dirs
            .get(number as usize)?
            .as_ref()
            .map(|(name, _)| Rc::clone(name))
    }

    /// `fd_prestats_insert_locked`: grow, then copy the name.
    fn insert_locked(&mut self, os: &mut Os, name: Rc<str>, number: usize) -> bool {
        if !grow(
            os,
            &mut self.block,
            &mut self.size,
            &mut self.dirs,
            self.used,
            number,
            FD_PRESTAT_BYTES,
            "fd_prestats_grow",
        ) {
            return false;
        }
        let Ok(copy) = os.malloc(name.len() as u64 + 1, "fd_prestats_insert") else {
            return false;
        };
        if let Some((_, old)) = self.dirs[number].replace((name, copy)) {
            let _ = os.free(old, "fd_prestats_insert");
        }
        self.used = self.used.max(number + 1);
        true
    }

    /// `fd_prestats_remove_entry`: frees the name copy, if there is one.
    fn remove_entry(&mut self, os: &mut Os, number: u32) {
        if let Some((_, copy)) = self.dirs.get_mut(number as usize).and_then(Option::take) {
            let _ = os.free(copy, "fd_prestats_remove_entry");
        }
    }
}

impl WasiRuntime {
    /// `wasm_runtime_instantiate` as far as WASI goes: a context in instance slot `slot`,
    /// `wasm_runtime_init_wasi`, and on failure the instance is deinstantiated again.
    ///
    /// The context is built and released in its slot, never moved in or out: it is some 300
    /// bytes, and each move was a `memcpy` call (four per instance's life). The slots are taken
    /// out of `self` meanwhile, so that the context and the runtime's other fields can be
    /// borrowed together; no step of init or release looks at the instances.
    fn instantiate(
        &mut self,
        os: &mut Os,
        tid: Tid,
        slot: usize,
        argv: &[String],
        environ: &[String],
        dirs: &[String],
    ) {
        for dir in dirs {
            make_dirs(os, dir);
        }
        let Ok(block) = os.malloc(WASI_CTX_BYTES, "wasi_ctx_new") else {
            return;
        };
        let mut instances = std::mem::take(&mut self.instances);
        let ctx = instances[slot].insert(WasiCtx {
            block,
            ..WasiCtx::default()
        });
        if self.init_wasi(os, tid, ctx, argv, environ, dirs).is_err() {
            self.release_ctx(os, ctx, "wasm_runtime_init_wasi");
            instances[slot] = None;
        }
        self.instances = instances;
    }

    /// `wasm_runtime_init_wasi`, step by step in the real order; an error is the real `goto fail`.
    fn init_wasi(
        &mut self,
        os: &mut Os,
        tid: Tid,
        ctx: &mut WasiCtx,
        argv: &[String],
        environ: &[String],
        dirs: &[String],
    ) -> Call {
        ctx.argv = Some(copy_string_array(os, argv, "copy_string_array_argv")?);
        ctx.environ = Some(copy_string_array(os, environ, "copy_string_array_environ")?);
        let structs = [
            (FD_TABLE_STRUCT_BYTES, "wasi_curfds"),
            (FD_PRESTATS_STRUCT_BYTES, "wasi_prestats"),
            (ARGV_ENVIRON_STRUCT_BYTES, "wasi_argv_environ"),
            (ADDR_POOL_STRUCT_BYTES, "wasi_addr_pool"),
        ];
        for (block, (bytes, site)) in ctx.structs.iter_mut().zip(structs) {
            *block = Some(os.malloc(bytes, site).map_err(|_| Stop::Fail)?);
        }
        let lock = os
            .lock_create(LockKind::RwLock, "fd_table_init")
            .map_err(|_| Stop::Fail)?;
        ctx.table = Some(FdTable {
            lock,
            entries: None,
            size: 0,
            slots: self.spare_slots.pop().unwrap_or_default(),
            used: 0,
        });
        let lock = os
            .lock_create(LockKind::RwLock, "fd_prestats_init")
            .map_err(|_| Stop::Fail)?;
        ctx.prestats = Some(Prestats {
            lock,
            block: None,
            size: 0,
            dirs: self.spare_dirs.pop().unwrap_or_default(),
            used: 0,
        });
        // argv_environ_init and addr_pool_init only store pointers and zero a struct.
        let (table, prestats) = ctx.tables();
        for (number, handle) in self.stdio.into_iter().flatten().enumerate() {
            self.insert_existing(os, tid, table, number, handle, true)?;
        }
        for (index, dir) in dirs.iter().enumerate() {
            let number = FIRST_PREOPEN_FD + index;
            let handle = os
                .open_dir(dir, "os_open_preopendir")
                .map_err(|_| Stop::Fail)?;
            self.insert_existing(os, tid, table, number, handle, false)?;
            rwlock_lock(os, tid, prestats.lock, true, "fd_prestats_insert")?;
            let name = self.preopen_name(dir);
            let inserted = prestats.insert_locked(os, name, number);
            rwlock_unlock(os, tid, prestats.lock, "fd_prestats_insert");
            if !inserted {
                return Err(Stop::Fail);
            }
        }
        ctx.ns_lookup = Some(copy_string_array(os, &[], "copy_string_array_ns_lookup")?);
        Ok(())
    }

    /// The shared copy of preopen path `dir`, made on its first instantiation.
    fn preopen_name(&mut self, dir: &str) -> Rc<str> {
        if let Some(name) = self.preopen_names.iter().find(|name| ***name == *dir) {
            return Rc::clone(name);
        }
        let name: Rc<str> = Rc::from(dir);
        self.preopen_names.push(Rc::clone(&name));
        name
    }

    /// `fd_table_insert_existing`: an object for `handle`, then the table grown to hold `number`.
    fn insert_existing(
        &self,
        os: &mut Os,
        tid: Tid,
        table: &mut FdTable,
        number: usize,
        handle: Fd,
        is_stdio: bool,
    ) -> Call {
        let site = "fd_table_insert_existing";
        let Some(object) = fd_object_new(os, handle, is_stdio) else {
            if !is_stdio && !self.preopen_handle_leak {
                let _ = os.close(handle, site);
            }
            return Err(Stop::Fail);
        };
        if let Err(stop) = table.lock_for_insert(os, tid, number, site) {
            fd_object_release(os, object);
            return Err(stop);
        }
        table.attach(number, object);
        rwlock_unlock(os, tid, table.lock, site);
        Ok(())
    }

    /// The `fail:` path of init and `wasm_runtime_destroy_wasi`: both run the same destroy
    /// functions over whatever was initialised, then free the structs, the strings and the context.
    /// `ctx` is left with nothing to release, for the caller to empty its slot.
    fn release_ctx(&mut self, os: &mut Os, ctx: &mut WasiCtx, site: Site) {
        if let Some(table) = ctx.table.take() {
            self.fd_table_destroy(os, table);
        }
        if let Some(prestats) = ctx.prestats.take() {
            self.fd_prestats_destroy(os, prestats);
        }
        // addr_pool_destroy frees the pool's entries; this model inserts none.
        for block in std::mem::take(&mut ctx.structs).into_iter().flatten() {
            let _ = os.free(block, site);
        }
        for array in [ctx.argv.take(), ctx.environ.take(), ctx.ns_lookup.take()]
            .into_iter()
            .flatten()
        {
            free_string_array(os, array, site);
        }
        let _ = os.free(ctx.block, site);
    }

    fn fd_table_destroy(&mut self, os: &mut Os, mut table: FdTable) {
        let site = "fd_table_destroy";
        let allocated = table.entries.is_some();
        if let Some(entries) = table.entries {
            // In slot order, as WAMR walks `entries`, up to the last used one: the slots after it
            // are empty (`used` counts the occupied ones, as `check_invariants` checks).
            let mut left = table.used;
            for slot in &mut table.slots {
                if left == 0 {
                    break;
                }
                if let Some(object) = slot.take() {
                    left -= 1;
                    fd_object_release(os, object);
                }
            }
            let _ = os.free(entries, site);
        }
        debug_assert!(
            table.slots.iter().all(Option::is_none),
            "the next table takes them empty"
        );
        // WAMR #4192: `rwlock_destroy(&ft->lock)` sat inside `if (ft->entries)`, so a table whose
        // entries were never allocated (init failed before stdio went in) kept its lock.
        // PR #4205 destroys it unconditionally.
        if allocated || !self.fd_table_lock_leak {
            let _ = os.lock_destroy(table.lock, site);
        }
        self.spare_slots.push(table.slots);
    }

    fn fd_prestats_destroy(&mut self, os: &mut Os, mut prestats: Prestats) {
        let site = "fd_prestats_destroy";
        let allocated = prestats.block.is_some();
        if let Some(block) = prestats.block {
            for (_, copy) in prestats.dirs.iter_mut().filter_map(Option::take) {
                let _ = os.free(copy, site);
            }
            let _ = os.free(block, site);
        }
        // WAMR #4192: the same `if (pt->prestats)` around `rwlock_destroy`; with no preopened
        // directory the array is never allocated, so every instance leaked this lock.
        if allocated || !self.prestats_lock_leak {
            let _ = os.lock_destroy(prestats.lock, site);
        }
        self.spare_dirs.push(prestats.dirs);
    }
}

/// `fd_object_get`: the OS handle behind guest fd `number`, looked up under the table's read
/// lock. The object stays in the table: a call is atomic here, so nobody can close it meanwhile.
/// Always inlined, like `rwlock_lock`: out of line, its result went back through memory on
/// every guest call.
#[inline(always)]
fn fd_object_get(os: &mut Os, tid: Tid, table: &FdTable, number: u32) -> Result<Fd, Stop> {
    let site = "fd_object_get";
    rwlock_lock(os, tid, table.lock, false, site)?;
    let handle = table
        .slots
        .get(number as usize)
        .and_then(Option::as_ref)
        .map(|object| object.handle);
    rwlock_unlock(os, tid, table.lock, site);
    handle.ok_or(Stop::Fail)
}

fn io_result(io: Io<usize>) -> Call {
    match io {
        Io::Ready(Ok(_)) => Ok(()),
        Io::Ready(Err(_)) => Err(Stop::Fail),
        Io::Block(reason) => Err(Stop::Block(reason)),
    }
}

/// The guest's linear memory (256 WebAssembly pages): an iovec larger than this cannot be in
/// it, and WAMR's bounds check refuses the call, as the model does before allocating the buffer.
const GUEST_MEMORY_BYTES: u32 = 256 * 64 * 1024;

/// The length of a guest iovec of `bytes`, or the call's failure when it cannot be in memory.
fn guest_buffer_len(bytes: u32) -> Result<usize, Stop> {
    if bytes > GUEST_MEMORY_BYTES {
        return Err(Stop::Fail);
    }
    Ok(bytes as usize)
}

/// The first `bytes` of a kept guest iovec (`WasiRuntime::write_iovec` or `read_iovec`), grown
/// with `fill` as needed, or the call's failure when it cannot be in guest memory.
fn guest_iovec(iovec: &mut Vec<u8>, bytes: u32, fill: u8) -> Result<&mut [u8], Stop> {
    let len = guest_buffer_len(bytes)?;
    if iovec.len() < len {
        iovec.resize(len, fill);
    }
    Ok(&mut iovec[..len])
}

/// Writes `bytes` bytes `w` from `buf` (`write_iovec`, which only ever holds `w`).
fn fd_write(
    os: &mut Os,
    tid: Tid,
    table: &FdTable,
    buf: &mut Vec<u8>,
    fd: u32,
    bytes: u32,
) -> Call {
    let handle = fd_object_get(os, tid, table, fd)?;
    let data = guest_iovec(buf, bytes, b'w')?;
    io_result(os.fd_write(tid, handle, data, "blocking_op_writev"))
}

/// Reads up to `bytes` bytes into `buf` (`read_iovec`: what it held is overwritten or ignored,
/// as a guest's buffer is).
fn fd_read(os: &mut Os, tid: Tid, table: &FdTable, buf: &mut Vec<u8>, fd: u32, bytes: u32) -> Call {
    let handle = fd_object_get(os, tid, table, fd)?;
    let into = guest_iovec(buf, bytes, 0)?;
    io_result(os.fd_read(tid, handle, into, "blocking_op_readv"))
}

/// `wasmtime_ssp_fd_close`: detach under both write locks, drop the preopen entry, release.
fn fd_close(os: &mut Os, tid: Tid, table: &mut FdTable, prestats: &mut Prestats, fd: u32) -> Call {
    let site = "fd_close";
    lock_both(os, tid, table, prestats, site)?;
    let object = table.detach(fd);
    if object.is_some() {
        prestats.remove_entry(os, fd);
    }
    unlock_both(os, tid, table, prestats, site);
    fd_object_release(os, object.ok_or(Stop::Fail)?);
    Ok(())
}

/// `fd_prestat_get` and `fd_prestat_dir_name`: a lookup under the prestats read lock.
fn prestat_get(os: &mut Os, tid: Tid, prestats: &Prestats, fd: u32) -> Call {
    let site = "fd_prestat_get";
    rwlock_lock(os, tid, prestats.lock, false, site)?;
    let found = prestats.name(fd).is_some();
    rwlock_unlock(os, tid, prestats.lock, site);
    if found { Ok(()) } else { Err(Stop::Fail) }
}

/// `path_open`: open under the directory fd, then `fd_table_insert_fd` at a random free number.
fn path_open(
    os: &mut Os,
    tid: Tid,
    table: &mut FdTable,
    dirfd: u32,
    path: &str,
    directory: bool,
) -> Call {
    let site = "fd_table_insert_fd";
    let dir = fd_object_get(os, tid, table, dirfd)?;
    let flags = if directory {
        OpenFlags {
            read: true,
            directory: true,
            ..OpenFlags::default()
        }
    } else {
        OpenFlags {
            read: true,
            write: true,
            create: true,
            ..OpenFlags::default()
        }
    };
    let handle = os
        .open_at(dir, path, flags, "path_open")
        .map_err(|_| Stop::Fail)?;
    let Some(object) = fd_object_new(os, handle, false) else {
        let _ = os.close(handle, site);
        return Err(Stop::Fail);
    };
    if let Err(stop) = table.lock_for_insert(os, tid, 0, site) {
        fd_object_release(os, object);
        return Err(stop);
    }
    // `fd_table_unused`: random numbers until a free one; grow keeps at least half free.
    let number = loop {
        let candidate = os.random_below(table.size as u64) as usize;
        if table.slots[candidate].is_none() {
            break candidate;
        }
    };
    table.attach(number, object);
    rwlock_unlock(os, tid, table.lock, site);
    Ok(())
}

/// `wasmtime_ssp_fd_renumber`: `to` takes `from`'s object (the old one is released) and the
/// preopen entry moves with it, under both write locks.
fn fd_renumber(
    os: &mut Os,
    tid: Tid,
    table: &mut FdTable,
    prestats: &mut Prestats,
    from: u32,
    to: u32,
) -> Call {
    let site = "fd_renumber";
    lock_both(os, tid, table, prestats, site)?;
    if !table.is_open(from) || !table.is_open(to) || from == to {
        unlock_both(os, tid, table, prestats, site);
        return if from == to && table.is_open(from) {
            Ok(())
        } else {
            Err(Stop::Fail)
        };
    }
    let replaced = table.detach(to).expect("checked open");
    let moving = table.detach(from).expect("checked open");
    table.attach(to as usize, moving);
    fd_object_release(os, replaced);
    let from_name = prestats.shared_name(from);
    let to_is_preopen = prestats.name(to).is_some();
    let mut result = Ok(());
    if to_is_preopen {
        prestats.remove_entry(os, to);
    }
    if let Some(name) = from_name {
        if prestats.insert_locked(os, name, to as usize) {
            prestats.remove_entry(os, from);
        } else {
            prestats.remove_entry(os, to);
            result = Err(Stop::Fail);
        }
    }
    unlock_both(os, tid, table, prestats, site);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::threads::MAIN_THREAD;

    fn runtime(os: &mut Os, defects: &[&str]) -> WasiRuntime {
        let config = Config {
            defects: defects.iter().map(|d| d.to_string()).collect(),
            ..Config::default()
        };
        WasiRuntime::new(os, &config)
    }

    /// An OS that refuses the host's stdio (an `fds_max` below four, which a scenario built in
    /// code can give, and a file whose faults may fire: `sim/tests/zoo_wasi.rs`) leaves the
    /// runtime without stdio, and the run with the budget finding that says why, not a panic:
    /// the parser builds the runtime so to check a file's limits (`scenario/construction.rs`),
    /// also in the scenario-parser fuzz target, which aborts on any panic.
    #[test]
    fn a_runtime_whose_stdio_the_os_refuses_starts_without_it() {
        use crate::faults::FaultPlan;
        use crate::os::{Limits, PlatformModel};
        use crate::sched::{Scheduler, StrategyChoice};
        let limits = Limits {
            fds_max: 3,
            ..Limits::default()
        };
        let scheduler = Scheduler::new(0, &StrategyChoice::Random, FaultPlan::none());
        let mut os = Os::new(scheduler, limits, PlatformModel::default());
        let runtime = runtime(&mut os, &[]);
        assert_eq!(runtime.stdio, None);
        assert!(
            os.findings()
                .iter()
                .any(|finding| finding.resource == "fds_max"),
            "{:?}",
            os.findings()
        );
    }

    fn instantiate(dirs: &[&str]) -> WasiOp {
        WasiOp::Instantiate {
            instance: 0,
            argv: vec!["app.wasm".into()],
            environ: vec![],
            dirs: dirs.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_lifecycle_with_preopen_path_open_renumber_and_close_returns_everything() {
        let mut os = Os::for_tests(3);
        let mut wasi = runtime(&mut os, &[]);
        let records = os.resources().live_records();
        let fds = os.open_fd_count();
        for op in [
            instantiate(&["/x", "/data/app"]),
            WasiOp::PathOpen {
                instance: 0,
                fd: 3,
                path: "a.txt".into(),
                directory: false,
            },
            WasiOp::FdWrite {
                instance: 0,
                fd: 1,
                bytes: 5,
            },
        ] {
            assert!(matches!(wasi.apply(&mut os, MAIN_THREAD, &op), Step::Done));
        }
        let ctx = wasi.instances[0].as_mut().unwrap();
        assert_eq!(
            ctx.table.as_ref().unwrap().used,
            6,
            "stdio, two preopens and the opened file"
        );
        assert_eq!(os.open_fd_count(), fds + 3, "two preopens and the file");
        let opened = ctx
            .table
            .as_ref()
            .unwrap()
            .slots
            .iter()
            .enumerate()
            .skip(5)
            .find(|(_, s)| s.is_some())
            .map(|(n, _)| n as u32)
            .unwrap();
        // Renumbering a preopen moves its prestat entry; closing it then removes it.
        wasi.apply(
            &mut os,
            MAIN_THREAD,
            &WasiOp::FdRenumber {
                instance: 0,
                from: 3,
                to: opened,
            },
        );
        let prestats = wasi.instances[0]
            .as_ref()
            .unwrap()
            .prestats
            .as_ref()
            .unwrap();
        assert_eq!(prestats.name(opened), Some("/x"));
        assert_eq!(prestats.name(3), None);
        assert_eq!(
            os.open_fd_count(),
            fds + 2,
            "the file replaced by the renumber is closed"
        );
        wasi.apply(
            &mut os,
            MAIN_THREAD,
            &WasiOp::FdClose {
                instance: 0,
                fd: opened,
            },
        );
        wasi.apply(&mut os, MAIN_THREAD, &WasiOp::Destroy { instance: 0 });
        assert_eq!(
            os.resources().live_records(),
            records,
            "everything returned"
        );
        assert_eq!(os.open_fd_count(), fds);
        assert!(os.findings().is_empty(), "{:?}", os.findings());
    }

    /// A table that takes the slots of a bigger destroyed one grows as a fresh one does: its
    /// size, its allocations and the numbers `path_open` draws from are its own.
    #[test]
    fn a_table_on_reused_slots_grows_as_a_fresh_one() {
        let mut reused_os = Os::for_tests(7);
        let mut reused = runtime(&mut reused_os, &[]);
        let mut fresh_os = Os::for_tests(7);
        let mut fresh = runtime(&mut fresh_os, &[]);
        for op in [
            instantiate(&["/x", "/tmp", "/data/app"]),
            WasiOp::Destroy { instance: 0 },
        ] {
            reused.apply(&mut reused_os, MAIN_THREAD, &op);
        }
        let before = [&reused_os, &fresh_os].map(|os| os.resources().live_records());
        for (wasi, os) in [(&mut reused, &mut reused_os), (&mut fresh, &mut fresh_os)] {
            for op in [
                instantiate(&[]),
                WasiOp::PathOpen {
                    instance: 0,
                    fd: 0,
                    path: "/dev".into(),
                    directory: true,
                },
            ] {
                wasi.apply(os, MAIN_THREAD, &op);
            }
        }
        let table = |wasi: &WasiRuntime| {
            let table = wasi.instances[0].as_ref().unwrap().table.as_ref().unwrap();
            let open: Vec<usize> = (0..table.slots.len())
                .filter(|&n| table.is_open(n as u32))
                .collect();
            (table.size, open)
        };
        assert_eq!(table(&reused), (8, vec![0, 1, 2, table(&fresh).1[3]]));
        assert_eq!(table(&reused), table(&fresh));
        assert!(
            reused.instances[0]
                .as_ref()
                .unwrap()
                .table
                .as_ref()
                .unwrap()
                .slots
                .len()
                > 8
        );
        assert_eq!(
            reused_os.resources().live_records() - before[0],
            fresh_os.resources().live_records() - before[1],
            "the same allocations, locks and fds"
        );
    }

    /// The guest's writes are `w` bytes whatever its reads brought in before: the iovecs kept
    /// between calls must not mix.
    #[test]
    fn a_write_after_a_read_writes_only_its_own_bytes() {
        let mut os = Os::for_tests(3);
        let mut wasi = runtime(&mut os, &[]);
        let dev = os.open_dir("/dev", "t").unwrap();
        let flags = |read, write| crate::os::fds::OpenFlags {
            read,
            write,
            ..Default::default()
        };
        let stdin = os.open_at(dev, "stdin", flags(false, true), "t").unwrap();
        assert!(matches!(
            os.fd_write(MAIN_THREAD, stdin, b"abc", "t"),
            Io::Ready(Ok(3))
        ));
        for op in [
            instantiate(&[]),
            WasiOp::FdRead {
                instance: 0,
                fd: 0,
                bytes: 3,
            },
            WasiOp::FdWrite {
                instance: 0,
                fd: 1,
                bytes: 2,
            },
            WasiOp::FdWrite {
                instance: 0,
                fd: 1,
                bytes: 5,
            },
        ] {
            assert!(matches!(wasi.apply(&mut os, MAIN_THREAD, &op), Step::Done));
        }
        let stdout = os.open_at(dev, "stdout", flags(true, false), "t").unwrap();
        let mut written = [0; 16];
        assert!(matches!(
            os.fd_read(MAIN_THREAD, stdout, &mut written, "t"),
            Io::Ready(Ok(7))
        ));
        assert_eq!(&written[..7], b"wwwwwww");
        let mut stdin_left = [0; 4];
        let stdin = os.open_at(dev, "stdin", flags(true, false), "t").unwrap();
        assert!(matches!(
            os.fd_read(MAIN_THREAD, stdin, &mut stdin_left, "t"),
            Io::Ready(Ok(3))
        ));
        assert_eq!(
            &stdin_left[..3],
            b"abc",
            "the host's file is as it wrote it"
        );
    }

    #[test]
    fn the_prestats_lock_survives_destroy_only_with_the_defect_and_no_preopen() {
        for (defects, dirs, leaked) in [
            (&["prestats-lock-leak"][..], &[][..], 1),
            (&["prestats-lock-leak"], &["/x"], 0),
            (&[], &[], 0),
        ] {
            let mut os = Os::for_tests(1);
            let mut wasi = runtime(&mut os, defects);
            let rwlocks = os.resources().kind_by_name("rwlock").unwrap();
            wasi.apply(&mut os, MAIN_THREAD, &instantiate(dirs));
            assert_eq!(
                os.resources().total(rwlocks).count,
                2,
                "init creates both locks"
            );
            wasi.apply(&mut os, MAIN_THREAD, &WasiOp::Destroy { instance: 0 });
            assert_eq!(
                os.resources().total(rwlocks).count,
                leaked,
                "{defects:?} {dirs:?}"
            );
        }
    }

    /// A fix that destroyed the lock inside the branch and again after it would destroy it twice:
    /// the OS reports that, naming the first destroy.
    #[test]
    fn destroying_the_prestats_lock_twice_is_caught_by_the_os() {
        let mut os = Os::for_tests(1);
        let mut wasi = runtime(&mut os, &[]);
        let lock = os
            .lock_create(LockKind::RwLock, "fd_prestats_init")
            .unwrap();
        for _ in 0..2 {
            wasi.fd_prestats_destroy(
                &mut os,
                Prestats {
                    lock,
                    block: None,
                    size: 0,
                    dirs: Vec::new(),
                    used: 0,
                },
            );
        }
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            findings[0].signature(),
            "invariant:lock:fd_prestats_destroy"
        );
        assert!(
            findings[0].headline.contains("already destroyed by"),
            "{}",
            findings[0].headline
        );
    }
}
