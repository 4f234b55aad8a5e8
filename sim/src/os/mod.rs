//! The virtual OS: the only world a subject sees.
//!
//! One resource family per file, each an `impl Os` block of syscalls plus the state it owns:
//!
//! | file | family |
//! | --- | --- |
//! | `resources.rs` | the OS's own accounting: every live resource with who acquired it |
//! | `pages.rs` | the 47-bit address space: reserve, commit, decommit, release, protect, checked access |
//! | `page_contents.rs` | the bytes of written pages, behind `read` and `write` |
//! | `host_arena.rs` | real bytes for real third-party code; the only file of the OS that calls the host OS |
//! | `lend.rs` | the OS lent to real code's callbacks for the duration of a call (`Os::lend`, `with_lent`) |
//! | `heap.rs` | the process heap (`malloc`/`free`), as C runtimes use it |
//! | `locks.rs` | mutex, rwlock and condvar objects; acquire and release with blocking |
//! | `threads.rs` | threads, their states, blocking as data, join |
//! | `tls.rs` | TLS keys and their destructors |
//! | `modules.rs` | loadable modules with code ranges; calls into unloaded code |
//! | `exit.rs` | process exit hooks and modules' static destructors, run in reverse registration order |
//! | `fds.rs` | the fd table and descriptions: files, pipes, socketpairs, eventfd |
//!
//! Two containers serve the families' hot paths: `id_table.rs` (ids to slots, open addressing)
//! and `sorted_map.rs` (a sorted vector with `BTreeMap`'s order, for small keyed sets such as the
//! TLS values and the allocator's segments and heaps).
//!
//! Every syscall takes a `site`: a static label naming the place in the subject that made the call,
//! so that a report can say where a resource was acquired. The runner sets the current `Position`
//! (lifecycle, repetition, op) before each op, and back to a thread's op before its continuation.
//! What the OS notices while serving a call (an access to released memory, a double destroy)
//! becomes a `Finding` in `os.findings`; the runner collects them. Unsupported requests fail
//! loudly with an error; nothing falls through to the host.

pub mod exit;
pub mod fds;
pub mod heap;
pub mod host_arena;
mod id_table;
mod lend;
pub mod locks;
pub mod modules;
mod page_contents;
pub mod pages;
pub mod resources;
pub(crate) mod sorted_map;
pub mod threads;
pub mod tls;

use std::cell::Cell;

use serde::{Deserialize, Serialize};

use crate::faults::FaultKind;
use crate::findings::{Finding, FindingKind};
pub use crate::findings::{OpList, OpRef};
use crate::sched::Scheduler;
use crate::trace::{EventKind, OpPlace, Trace};

pub use fds::{
    DescriptionId, Fd, FdStat, FileType, OpenFlags, PIPE_BUF_BYTES, PIPE_CAPACITY_BYTES, Whence,
};
pub use lend::with_lent;
pub use locks::{LockId, LockKind};
pub use pages::{Access, PAGE_SIZE, PageState, Prot};
pub use resources::{KindId, RecordId, Resources};
pub use threads::{BlockReason, CLOCK_TICKS_MAX, SLEEP_TICKS_MAX, ThreadState, Tid};

/// A static label for the place in subject code that made a call: `fd_prestats_init`.
pub type Site = &'static str;

/// An op's index in its list (from 1, as `op #1` reads), which list of its lifecycle that is,
/// and which list the lifecycle's main thread was running (`main_list`: the op's own list, or
/// for a spawned thread's op the list that spawned it), in one word: the list in the top two
/// bits, the main thread's list in the two below, the index below them.
///
/// A position is copied into every ledger record and every page span's attribution. The list as
/// a field of its own grew a position from 32 to 40 bytes (its words are 8-byte aligned) and
/// cost 0.8% more instructions per allocator fuzz input, mostly in page commits; in the index's
/// word it costs an `or` per op, and the main thread's list none more: a thread's context keeps
/// both lists' bits (`list_bits`), made once per list or spawn. An index never nears 2^28: a
/// file of at most `SOURCE_BYTES_MAX` (4 MiB) holds far fewer ops, and a generated list fewer
/// still.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpSlot(u32);

impl OpSlot {
    const LIST_SHIFT: u32 = 30;
    const MAIN_LIST_SHIFT: u32 = 28;
    const LIST_MASK: u32 = 0b11;
    const INDEX_MASK: u32 = (1 << Self::MAIN_LIST_SHIFT) - 1;

    /// The slot of index `index` in list `list`, which the main thread ran (`main_list`) or,
    /// for `OpList::Thread`, which the main thread's list `main_list` spawned.
    #[inline(always)]
    pub fn new(list: OpList, main_list: OpList, index: u32) -> OpSlot {
        debug_assert!(index <= Self::INDEX_MASK, "op index {index} past 2^28");
        OpSlot(Self::list_bits(list, main_list) | (index & Self::INDEX_MASK))
    }

    /// The bits of list `list` run while the main thread runs `main_list` (the same list for
    /// the main thread's own ops), for a caller that keeps them (a thread's context) and makes
    /// slots with `with_index`.
    #[inline(always)]
    pub const fn list_bits(list: OpList, main_list: OpList) -> u32 {
        ((list as u32) << Self::LIST_SHIFT) | ((main_list as u32) << Self::MAIN_LIST_SHIFT)
    }

    /// The slot of index `index` in the list whose bits `list_bits` gave. The index is not
    /// masked (an `and` on every op): it never reaches the lists' bits, as `new` asserts.
    #[inline(always)]
    pub fn with_index(list_bits: u32, index: u32) -> OpSlot {
        debug_assert!(index <= Self::INDEX_MASK, "op index {index} past 2^28");
        OpSlot(list_bits | index)
    }

    pub fn index(self) -> u32 {
        self.0 & Self::INDEX_MASK
    }

    pub fn list(self) -> OpList {
        Self::list_of(self.0 >> Self::LIST_SHIFT)
    }

    /// The list the lifecycle's main thread was running when the op ran: `list` for an op of
    /// the main thread, the list that spawned the thread for a spawned thread's op.
    pub fn main_list(self) -> OpList {
        Self::list_of((self.0 >> Self::MAIN_LIST_SHIFT) & Self::LIST_MASK)
    }

    fn list_of(bits: u32) -> OpList {
        match bits {
            0 => OpList::Setup,
            1 => OpList::Ops,
            2 => OpList::Teardown,
            _ => OpList::Thread,
        }
    }
}

/// Where the run is: set by the runner before each op (and back to a thread's op before its
/// continuation or a call it queued), copied into every record and finding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub lifecycle: u32,
    pub repetition: u32,
    /// The op's index in its list, and the list.
    pub op: OpSlot,
    pub op_name: &'static str,
    pub thread: u32,
}

/// Who did something: the position in the run and the site in the subject.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    pub position: Position,
    pub site: Site,
}

impl Position {
    /// `op #1 `name``, then ` → site` when there is one, then the lifecycle, repetition (or
    /// `setup`, `teardown` for an op run once) and thread. Counts from 1, as a report's headline does ("repetition 1 of 100"), where
    /// `Position` holds indices from 0 (as the JSON report's `lifecycle` and `repetition` do);
    /// the op's index already counts from 1, and a thread is named by its id.
    /// Before the run's first op (`op_ref` is `None`) it is the subject's `new`, which no list
    /// or repetition holds: the default op slot would call it op #0 of the setup.
    fn write(&self, f: &mut std::fmt::Formatter<'_>, site: Option<Site>) -> std::fmt::Result {
        if self.before_first_op() {
            write!(f, "the subject's `new`, before the first op")?;
        } else {
            write!(f, "op #{} `{}`", self.op.index(), self.op_name)?;
        }
        if let Some(site) = site {
            write!(f, " → {site}")?;
        }
        if self.before_first_op() {
            return Ok(());
        }
        write!(f, " (lifecycle {}, ", u64::from(self.lifecycle) + 1)?;
        // An op of the setup or the teardown (or of a thread either spawned) ran once, before
        // or after the repetitions: it has no repetition of its own to name.
        match self.op.main_list().run_once() {
            Some(list) => write!(f, "{}", list.name())?,
            None => write!(f, "repetition {}", u64::from(self.repetition) + 1)?,
        }
        write!(f, ", thread {})", self.thread)
    }
}

impl Position {
    /// Whether no op has started yet: the run is in the subject's `new` (or a module it loaded),
    /// and the op slot is the default one, which would name op #0 of the setup.
    pub fn before_first_op(&self) -> bool {
        self.op_name.is_empty()
    }

    /// The op as data, for a report line that names it; `None` before the run's first op (a
    /// subject's constructor, a module loaded before any op), where there is no op to name.
    pub fn op_ref(&self) -> Option<OpRef> {
        (!self.before_first_op()).then(|| OpRef {
            lifecycle: self.lifecycle,
            repetition: self.repetition,
            list: self.op.list(),
            index: self.op.index(),
            name: self.op_name.to_string(),
            thread: self.thread,
            during: self.op.main_list().run_once(),
            thread_name: None,
            location: None,
            trace_event: None,
        })
    }
}

impl Position {
    /// A `panic` finding about `subject`'s code at this position, at `site` (the op's name, or
    /// `new`): its `during` line names the op in progress or, before any op, the subject's
    /// constructor, followed by `new_hint`. What the runner makes of a panic, and the OS of a
    /// refusal a subject may ignore.
    pub(crate) fn subject_failed(
        &self,
        subject: &str,
        site: &str,
        headline: String,
        new_hint: &str,
    ) -> Finding {
        let during = if self.before_first_op() {
            format!("`{subject}::new`, before the first op{new_hint}")
        } else {
            format!(
                "op #{} `{}` on thread {}",
                self.op.index(),
                self.op_name,
                self.thread
            )
        };
        Finding::new(FindingKind::Panic, "subject", site, headline).detail_op(
            "during",
            during,
            self.op_ref(),
        )
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write(f, None)
    }
}

impl Attribution {
    /// See `Position::op_ref`.
    pub fn op_ref(&self) -> Option<OpRef> {
        self.position.op_ref()
    }
}

impl std::fmt::Display for Attribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.position.write(f, Some(self.site))
    }
}

/// Error numbers, with Linux meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Errno {
    /// Out of memory or address space.
    Enomem,
    /// Bad or closed file descriptor.
    Ebadf,
    /// Would block on a non-blocking fd, or a transient failure.
    Eagain,
    /// Write with no reader.
    Epipe,
    /// Interrupted.
    Eintr,
    /// Invalid argument.
    Einval,
    /// No such file or directory.
    Enoent,
    /// Already exists.
    Eexist,
    /// Not a directory.
    Enotdir,
    /// Is a directory.
    Eisdir,
    /// Bad address: an access the OS refused (a fault finding was recorded).
    Efault,
    /// A handle that named an object which no longer exists (generation mismatch).
    Estale,
    /// The lock is held by another thread (try-lock) or deadlock would result.
    Ebusy,
    /// Permission denied (for example a write to a read-only description).
    Eacces,
    /// Too many open objects: a limit of the simulation was reached.
    Emfile,
    /// The request is outside what the simulation models.
    Enosys,
    /// File too large: a write past `file_bytes_max`.
    Efbig,
    /// No space left on the file system: a write past `fs_bytes_max`.
    Enospc,
}

impl Errno {
    pub fn name(self) -> &'static str {
        match self {
            Errno::Enomem => "ENOMEM",
            Errno::Ebadf => "EBADF",
            Errno::Eagain => "EAGAIN",
            Errno::Epipe => "EPIPE",
            Errno::Eintr => "EINTR",
            Errno::Einval => "EINVAL",
            Errno::Enoent => "ENOENT",
            Errno::Eexist => "EEXIST",
            Errno::Enotdir => "ENOTDIR",
            Errno::Eisdir => "EISDIR",
            Errno::Efault => "EFAULT",
            Errno::Estale => "ESTALE",
            Errno::Ebusy => "EBUSY",
            Errno::Eacces => "EACCES",
            Errno::Emfile => "EMFILE",
            Errno::Enosys => "ENOSYS",
            Errno::Efbig => "EFBIG",
            Errno::Enospc => "ENOSPC",
        }
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The result of a call that may block: ready with a value, or the calling thread must block with
/// this reason (the OS has already put it on the object's waiter list).
#[derive(Debug, PartialEq, Eq)]
pub enum Io<T> {
    Ready(Result<T, Errno>),
    Block(BlockReason),
}

impl<T> Io<T> {
    pub fn ok(value: T) -> Io<T> {
        Io::Ready(Ok(value))
    }
    pub fn err(errno: Errno) -> Io<T> {
        Io::Ready(Err(errno))
    }
}

/// Limits of one simulation. Units and qualifiers go last. An exhausted limit is a `budget`
/// finding (or, for objects, an `Emfile`/`Enomem` error plus a budget finding) that names it.
/// A scenario's `[limits]` deserializes into it; a field it leaves out keeps its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub steps_max: u64,
    pub pages_committed_max: u64,
    pub reservations_max: u64,
    pub objects_max: u64,
    pub threads_max: u64,
    pub fds_max: u64,
    /// The largest an in-memory file may grow (Linux's `RLIMIT_FSIZE`): bytes written or
    /// offsets past it are EFBIG and a budget finding, so a scenario cannot make the simulation
    /// itself run out of memory.
    pub file_bytes_max: u64,
    /// The most bytes every in-memory file together may hold (an unlinked one's too, until the
    /// last open description of it is released and frees them, as in Linux): a write past it is
    /// ENOSPC and a budget finding. Without it, a scenario that fills many files, each under
    /// `file_bytes_max`, makes the simulation itself run out of memory.
    pub fs_bytes_max: u64,
    /// Wall-clock seconds an isolated run of real code may take (host-backed subjects only).
    /// The simulation bounds itself by `steps_max`; this bounds what it cannot count: real code
    /// stuck in a loop, or a lock left held across the fork. Past it the child is killed and the
    /// run is a budget finding.
    pub host_run_seconds_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            steps_max: 10_000_000,
            pages_committed_max: 1 << 20,
            reservations_max: 100_000,
            objects_max: 1_000_000,
            threads_max: 1024,
            fds_max: 4096,
            file_bytes_max: 64 << 20,
            fs_bytes_max: 256 << 20,
            host_run_seconds_max: 300,
        }
    }
}

/// The most `steps_max` a scenario may ask for (`LIMIT_RANGES`); it also bounds the virtual clock
/// (`threads::CLOCK_TICKS_MAX`).
pub const STEPS_MAX_CEILING: u64 = 100_000_000;

/// What each `[limits]` field accepts, and why it stops there: every run bounds itself, so a
/// scenario may raise a limit but not past what one process can hold or wait for. The ceilings
/// are about ten times the defaults, and what they allow stays within a few GB of the host's memory
/// (about 100 B per object, thread, fd or reservation the simulation tracks; a written page or a
/// file's bytes as themselves) and within minutes to an hour of its time.
///
/// The floors: `steps_max` and `host_run_seconds_max` start at 1, as a run of no step could run
/// no op and a watchdog of 0 s is none. Every other limit may be 0, none allowed, and that is a
/// check of its own: `fds_max = 0` says the subject never opens an fd, `file_bytes_max = 0` that
/// it writes no byte to a file, and a run in which it does has a budget finding that names the op.
/// What 0 (or any value) cannot be is less than the subject's constructor takes before the first
/// op (the counter's mutex is an object, the WASI runtime's stdio four fds): that depends on the
/// subject, so the parser refuses it per subject (`scenario/construction.rs`), and a `threads_max`
/// below the threads a list keeps out at once, likewise (`scenario/parse.rs`).
pub const LIMIT_RANGES: [LimitRange; 9] = [
    LimitRange::new(
        "steps_max",
        1,
        STEPS_MAX_CEILING,
        "more steps would let one run take hours",
    ),
    LimitRange::new(
        "pages_committed_max",
        0,
        1 << 24,
        "64 GiB of simulated pages",
    ),
    LimitRange::new(
        "reservations_max",
        0,
        1_000_000,
        "the address-space map of one run",
    ),
    LimitRange::new(
        "objects_max",
        0,
        10_000_000,
        "about 1 GB of the host's memory for their records",
    ),
    LimitRange::new("threads_max", 0, 1 << 16, "the threads one run tracks"),
    LimitRange::new(
        "fds_max",
        0,
        1 << 16,
        "each pipe may buffer 208 KiB of the host's memory",
    ),
    LimitRange::new(
        "file_bytes_max",
        0,
        1 << 30,
        "files are kept in the host's memory",
    ),
    LimitRange::new(
        "fs_bytes_max",
        0,
        1 << 30,
        "files are kept in the host's memory",
    ),
    LimitRange::new(
        "host_run_seconds_max",
        1,
        3600,
        "seconds an isolated run of real code may take; 0 would disarm the watchdog (`alarm(0)`)",
    ),
];

/// The values one `[limits]` field accepts (`LIMIT_RANGES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitRange {
    pub name: &'static str,
    pub min: u64,
    pub max: u64,
    /// What the bound protects, for the error that refuses a value outside it.
    pub why: &'static str,
}

impl LimitRange {
    const fn new(name: &'static str, min: u64, max: u64, why: &'static str) -> LimitRange {
        LimitRange {
            name,
            min,
            max,
            why,
        }
    }
}

impl Limits {
    /// Each field with its value, in declaration order (the order of `LIMIT_RANGES`).
    pub fn fields(&self) -> [(&'static str, u64); 9] {
        [
            ("steps_max", self.steps_max),
            ("pages_committed_max", self.pages_committed_max),
            ("reservations_max", self.reservations_max),
            ("objects_max", self.objects_max),
            ("threads_max", self.threads_max),
            ("fds_max", self.fds_max),
            ("file_bytes_max", self.file_bytes_max),
            ("fs_bytes_max", self.fs_bytes_max),
            ("host_run_seconds_max", self.host_run_seconds_max),
        ]
    }

    /// Each field, to set, in the order of `fields`: what sets one field by its index there
    /// (the parse's check of what a subject's constructor takes raises one at a time).
    pub fn fields_mut(&mut self) -> [&mut u64; 9] {
        [
            &mut self.steps_max,
            &mut self.pages_committed_max,
            &mut self.reservations_max,
            &mut self.objects_max,
            &mut self.threads_max,
            &mut self.fds_max,
            &mut self.file_bytes_max,
            &mut self.fs_bytes_max,
            &mut self.host_run_seconds_max,
        ]
    }

    /// The first field outside its `LIMIT_RANGES` entry, with its value.
    pub fn out_of_range(&self) -> Option<(LimitRange, u64)> {
        self.fields()
            .into_iter()
            .zip(LIMIT_RANGES)
            .find(|((_, value), range)| !(range.min..=range.max).contains(value))
            .map(|((_, value), range)| (range, value))
    }
}

/// Sizes of objects in the modelled platform, in bytes. WAMR's report (#4192) measured 216 B for a
/// leaked rwlock on ESP32-S3; a glibc x86-64 `pthread_rwlock_t` is 56 B.
/// A scenario's `[platform]` deserializes into it; a field it leaves out keeps its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformModel {
    pub mutex_bytes: u64,
    pub rwlock_bytes: u64,
    pub condvar_bytes: u64,
}

impl Default for PlatformModel {
    fn default() -> Self {
        PlatformModel {
            mutex_bytes: 40,
            rwlock_bytes: 216,
            condvar_bytes: 48,
        }
    }
}

/// The virtual OS.
pub struct Os {
    pub(crate) resources: Resources,
    pub(crate) pages: pages::PagesState,
    pub(crate) heap: heap::HeapState,
    pub(crate) locks: locks::LocksState,
    pub(crate) threads: threads::ThreadsState,
    pub(crate) tls: tls::TlsState,
    pub(crate) modules: modules::ModulesState,
    pub(crate) exit: exit::ExitState,
    pub(crate) fds: fds::FdsState,
    pub(crate) sched: Scheduler,
    pub(crate) trace: Trace,
    pub(crate) limits: Limits,
    pub(crate) platform: PlatformModel,
    pub(crate) position: Position,
    /// The list the lifecycle's main thread runs (`start_list`), where a finding is placed
    /// (`place_in_list`); `None` before the first list, while the subject's `new` runs.
    main_list: Option<OpList>,
    /// Bumped whenever a thread is spawned or changes state, and whenever the OS reports a
    /// finding (`report`): what a step can change that the runner must look at after it. The
    /// runner keeps what it derived from the threads' states (its set of runnable threads) until
    /// this changes, and collects the OS's findings only then (see `changes_version`).
    pub(crate) changes_version: u64,
    pub(crate) findings: Vec<Finding>,
    /// Faults injected so far, for the report (`kind`, where).
    pub(crate) injected: Vec<(FaultKind, Attribution)>,
    /// Where the families' lists go when this OS is dropped (see `Storage`); `None` only while
    /// it is dropped.
    storage: Option<Box<Storage>>,
}

/// The lists of a dropped OS, emptied, for the next OS made on the same thread: a sweep's worker
/// makes an OS per run, and allocating (then freeing) the lists that every run fills was a
/// large share of a short run's cost. (The fuzz targets free them after every input instead:
/// `reset_thread_spares`.) Only lists that a run is sure to use (or a subject's
/// setup fills) are kept. Boxed, so that it moves between an OS and its thread as one pointer.
/// It holds no state: every list is empty, and what a run does never depends on a list's
/// capacity.
#[derive(Default)]
struct Storage {
    contents: page_contents::ContentsStorage,
    heap: heap::HeapStorage,
    locks: locks::LocksStorage,
    resources: resources::ResourcesStorage,
    threads: threads::ThreadsStorage,
    exit: exit::ExitStorage,
    fds: fds::FdsStorage,
}

thread_local! {
    /// The storage the last OS dropped on this thread left, for the next one.
    static SPARE_STORAGE: Cell<Option<Box<Storage>>> = const { Cell::new(None) };
}

/// Puts what the OSes dropped on this thread left for the next one back into one fixed state:
/// their emptied lists freed, and the pool of cleared page frames full (`SPARES_MAX` frames).
/// The next OS made on this thread then runs the same code, each allocation and each growth of
/// a list included, whatever ran on the thread before. What a run does never depends on the
/// spares; which code it takes to do it does, and a coverage-guided fuzzer counts that code
/// (`fuzzing::reset_thread_spares`, which calls this after every input).
pub fn reset_thread_spares() {
    drop(SPARE_STORAGE.take());
    page_contents::reset_pool();
}

impl Drop for Os {
    fn drop(&mut self) {
        let Some(mut storage) = self.storage.take() else {
            return;
        };
        self.pages.keep_storage(&mut storage.contents);
        self.heap.keep_storage(&mut storage.heap);
        self.locks.keep_storage(&mut storage.locks);
        self.resources.keep_storage(&mut storage.resources);
        self.threads.keep_storage(&mut storage.threads);
        self.exit.keep_storage(&mut storage.exit);
        self.fds.keep_storage(&mut storage.fds);
        // At thread exit the slot may be gone already: the lists are then freed.
        let _ = SPARE_STORAGE.try_with(|spare| spare.set(Some(storage)));
    }
}

impl Os {
    /// Always inlined, as the runner's `prepare` is: the scheduler (three random streams, each
    /// with its buffer of values beside it) then goes from where it is made into the OS in the
    /// runner in fewer copies: `valgrind --tool=callgrind target/release/examples/fuzz_exec
    /// allocator 20000 0` (40,000 empty inputs) counted 488.6 M instructions without the two,
    /// 472.1 M with both; either alone keeps about half.
    #[inline(always)]
    pub fn new(scheduler: Scheduler, limits: Limits, platform: PlatformModel) -> Os {
        let mut storage = SPARE_STORAGE.take().unwrap_or_default();
        Os {
            pages: pages::PagesState::new_in(&mut storage.contents),
            heap: heap::HeapState::new_in(&mut storage.heap),
            locks: locks::LocksState::new_in(&mut storage.locks),
            threads: threads::ThreadsState::new_in(&mut storage.threads),
            tls: tls::TlsState::new(),
            modules: modules::ModulesState::new(),
            exit: exit::ExitState::new_in(&mut storage.exit),
            fds: fds::FdsState::new_in(&mut storage.fds),
            resources: Resources::new_in(&mut storage.resources),
            sched: scheduler,
            trace: Trace::new(),
            limits,
            platform,
            position: Position::default(),
            main_list: None,
            changes_version: 0,
            findings: Vec::new(),
            injected: Vec::new(),
            storage: Some(storage),
        }
    }

    /// An OS with default limits, platform and a random schedule: for tests and examples.
    pub fn for_tests(seed: u64) -> Os {
        use crate::faults::FaultPlan;
        use crate::sched::StrategyChoice;
        Os::new(
            Scheduler::new(seed, &StrategyChoice::Random, FaultPlan::none()),
            Limits::default(),
            PlatformModel::default(),
        )
    }

    // ---- services every family uses ----

    pub fn position(&self) -> Position {
        self.position
    }

    pub fn set_position(&mut self, position: Position) {
        self.position = position;
    }

    /// Sets the op part of the position (which op, on which thread), keeping the lifecycle and
    /// repetition: the runner sets those once per list (`set_list_position`), not at every op.
    #[inline(always)]
    pub(crate) fn set_op_position(&mut self, op: OpSlot, op_name: &'static str, thread: u32) {
        self.position.op = op;
        self.position.op_name = op_name;
        self.position.thread = thread;
    }

    /// Traces that `thread` starts the op `name`, at the position `set_op_position` set: a
    /// JSON trace's op line says where the op is in the scenario (`trace::OpPlace`).
    #[inline(always)]
    pub(crate) fn trace_op(&mut self, thread: u32, name: &'static str) {
        let position = &self.position;
        self.trace.op(thread, name, || OpPlace {
            lifecycle: position.lifecycle,
            repetition: position.repetition,
            list: position.op.list().name(),
            index: position.op.index(),
        });
    }

    /// Sets the lifecycle and repetition of the position, keeping the op part.
    pub(crate) fn set_list_position(&mut self, lifecycle: u32, repetition: u32) {
        self.position.lifecycle = lifecycle;
        self.position.repetition = repetition;
    }

    #[inline(always)]
    pub(crate) fn here(&self, site: Site) -> Attribution {
        Attribution {
            position: self.position,
            site,
        }
    }

    /// A number that changes whenever a thread is spawned or changes state, or the OS reports a
    /// finding: while it stays the same, the threads' states are as they were and there is no
    /// new finding to collect.
    #[inline]
    pub fn changes_version(&self) -> u64 {
        self.changes_version
    }

    /// Notes that the lifecycle's main thread starts running `list`: the runner calls it at the
    /// start of every list, an empty one too (which leaves the position as it was).
    pub(crate) fn start_list(&mut self, list: OpList) {
        self.main_list = Some(list);
    }

    /// `finding`, noticed now, placed in the list the main thread runs (`start_list`): `during`
    /// the setup or the teardown, and in no list in a repetition or before the first list (in
    /// the subject's `new`, which is not its first lifecycle's setup). The one rule for the
    /// OS's findings (`report`) and the runner's (`Runner::stamp`); the position's op slot
    /// would name the setup before any op ran (`OpSlot::default`), and the list before an
    /// empty one.
    pub(crate) fn place_in_list(&self, finding: Finding) -> Finding {
        match self.main_list {
            Some(list) => finding.during(list),
            None => finding.in_new(),
        }
    }

    /// Records a finding noticed while serving a call.
    pub(crate) fn report(&mut self, finding: Finding) {
        let finding =
            self.place_in_list(finding.at(self.position.lifecycle, self.position.repetition));
        self.trace
            .event_text(EventKind::Finding, &finding.signature());
        self.findings.push(finding);
        // So that the runner, which looks at the version after every step, collects it.
        self.changes_version += 1;
    }

    pub(crate) fn invariant(&mut self, resource: &str, site: Site, headline: String) {
        let here = self.here(site);
        let finding = Finding::new(FindingKind::Invariant, resource, site, headline).detail_op(
            "noticed",
            here.to_string(),
            here.op_ref(),
        );
        self.report(finding);
    }

    /// Asks the scheduler whether a fault of `kind` fires for this call; records it if so.
    #[inline]
    pub(crate) fn inject(&mut self, kind: FaultKind, site: Site) -> bool {
        if !self.sched.fault(kind) {
            return false;
        }
        self.injected(kind, site);
        true
    }

    #[cold]
    fn injected(&mut self, kind: FaultKind, site: Site) {
        self.trace
            .event(EventKind::Fault, kind as u64, crate::trace::hash_str(site));
        let here = self.here(site);
        self.injected.push((kind, here));
    }

    #[inline(always)]
    pub(crate) fn syscall(&mut self, name: &'static str, a: u64, b: u64) {
        self.trace.event(EventKind::Syscall(name), a, b);
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    pub fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.findings)
    }

    pub fn injected_faults(&self) -> &[(FaultKind, Attribution)] {
        &self.injected
    }

    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Registers a subject-defined resource kind (an interpreter's allocation ids, say).
    pub fn register_kind(&mut self, name: &str, keyed: bool) -> KindId {
        self.resources.register_kind(name, keyed)
    }

    /// Records that the subject acquired one unit of a kind it registered (`register_kind`).
    pub fn track(&mut self, kind: KindId, bytes: u64, key: u64, site: Site) -> RecordId {
        let here = self.here(site);
        self.syscall("track", u64::from(kind.0), key);
        self.resources.acquire(kind, 1, bytes, key, here)
    }

    /// Records that the subject released a unit it tracked. Releasing twice is an invariant
    /// finding, and so is releasing a record of a built-in kind: those are the OS's own (a
    /// reservation's, a held lock's), and the OS releases them without testing them again
    /// (`Resources::release_held`), so a subject that released one would leave the ledger
    /// counting it twice. A subject's own record is released with the test for keys that only
    /// its kinds need (`Resources::release_live`).
    pub fn untrack(&mut self, record: RecordId, site: Site) {
        self.syscall("untrack", u64::from(record.index), 0);
        let problem = match self.resources.get(record) {
            Some(live) if live.kind.is_builtin() => "the OS's own, not a subject's",
            Some(_) => {
                self.resources.release_live(record);
                return;
            }
            None => "not live",
        };
        self.untrack_refused(record, problem, site);
    }

    #[cold]
    #[inline(never)]
    fn untrack_refused(&mut self, record: RecordId, problem: &str, site: Site) {
        self.invariant(
            "tracked resource",
            site,
            format!("release of a tracked resource that is {problem} ({record:?})"),
        );
    }

    pub fn scheduler(&mut self) -> &mut Scheduler {
        &mut self.sched
    }

    /// A uniform random value in `0..bound` from the subject's seeded stream.
    pub fn random_below(&mut self, bound: u64) -> u64 {
        let value = self.sched.random_below(bound);
        self.syscall("random", bound, value);
        value
    }

    pub fn trace(&mut self) -> &mut Trace {
        &mut self.trace
    }

    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn platform(&self) -> &PlatformModel {
        &self.platform
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fields_mut` sets each field where `fields` reads it, in the order of `LIMIT_RANGES`.
    #[test]
    fn limit_fields_are_set_where_they_are_read() {
        for index in 0..LIMIT_RANGES.len() {
            let mut limits = Limits::default();
            *limits.fields_mut()[index] = 12_345;
            let fields = limits.fields();
            assert_eq!(fields[index], (LIMIT_RANGES[index].name, 12_345));
            let others = fields.iter().zip(Limits::default().fields());
            assert!(
                others
                    .enumerate()
                    .all(|(other, (now, before))| other == index || *now == before)
            );
        }
    }

    /// A slot keeps its list, the main thread's list and its index apart, the largest index
    /// included; an op of the setup or the teardown (or a thread either spawned) names that list
    /// where one of `ops` names its repetition.
    #[test]
    fn an_op_slot_keeps_both_lists_and_an_op_run_once_names_its_list_not_a_repetition() {
        let lists = [OpList::Setup, OpList::Ops, OpList::Teardown, OpList::Thread];
        for list in lists {
            for main_list in &lists[..3] {
                for index in [0, 1, OpSlot::INDEX_MASK] {
                    let slot = OpSlot::new(list, *main_list, index);
                    assert_eq!(
                        (slot.list(), slot.main_list(), slot.index()),
                        (list, *main_list, index)
                    );
                    let bits = OpSlot::list_bits(list, *main_list);
                    assert_eq!(OpSlot::with_index(bits, index), slot);
                }
            }
        }
        let at = |list, main_list| Position {
            lifecycle: 1,
            repetition: 4,
            op: OpSlot::new(list, main_list, 2),
            op_name: "bump",
            thread: 3,
        };
        let text = |list, main_list| at(list, main_list).to_string();
        assert_eq!(
            text(OpList::Ops, OpList::Ops),
            "op #2 `bump` (lifecycle 2, repetition 5, thread 3)"
        );
        assert_eq!(
            text(OpList::Setup, OpList::Setup),
            "op #2 `bump` (lifecycle 2, setup, thread 3)"
        );
        assert_eq!(
            text(OpList::Thread, OpList::Teardown),
            "op #2 `bump` (lifecycle 2, teardown, thread 3)"
        );
        assert_eq!(
            text(OpList::Thread, OpList::Ops),
            "op #2 `bump` (lifecycle 2, repetition 5, thread 3)"
        );
        let op = at(OpList::Thread, OpList::Setup).op_ref().unwrap();
        assert_eq!(
            (op.list, op.during, op.repetition),
            (OpList::Thread, Some(OpList::Setup), 4)
        );
        assert_eq!(at(OpList::Ops, OpList::Ops).op_ref().unwrap().during, None);
    }

    #[test]
    fn limit_ranges_name_every_field_in_order_and_hold_the_defaults() {
        let serialized = serde_json::to_value(Limits::default()).unwrap();
        let keys: Vec<&str> = serialized
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields: Vec<&str> = Limits::default().fields().map(|(name, _)| name).to_vec();
        let ranges: Vec<&str> = LIMIT_RANGES.iter().map(|range| range.name).collect();
        assert_eq!(fields, ranges);
        // serde_json's map is sorted by key unless its order is preserved; compare as sets then.
        fields.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(fields, keys, "`Limits::fields` misses a field");
        assert_eq!(Limits::default().out_of_range(), None);
    }
}
