//! `interpreter`: a Miri-like interpreter for a small language of ops, with two of Miri's real bugs
//! as defects.
//!
//! What is modelled, and where each rule comes from (SEED-BUGS.md sections 1 and 2):
//!
//! - **Function-pointer identity** (Miri #3737, fixed by rust-lang/rust#128742). `declare-fn` gives
//!   a function a kind: `generic`, `inlinable`, `never-inline` or `host`. `cast-fn` (`f as fn()`)
//!   gives the pointer an allocation id from a global map that never shrinks while the program runs;
//!   each id is one unit of the ledger kind `fn ptr id`, keyed by function. A generic or inlinable
//!   function draws a salt in `0..32` from the seeded RNG on every cast and dedups by
//!   `(function, salt)`, so it has at most 32 ids; a never-inline function always has salt 0, so
//!   exactly one id. `vtable-cast` (`&x as &dyn Trait`) salts the same way (`vtable id`, keyed by
//!   type and trait). `ptr-to-int` exposes the id's address. The ids are released when the program
//!   ends, so only a check across repetitions sees them grow.
//! - **Program memory.** The interpreter's machine memory is one region reserved and committed when
//!   it starts, with one 64 KiB area per allocation slot. `alloc` gives an allocation id (kind
//!   `program allocation`, keyed by slot) and opens the area; `dealloc` protects it again, so an
//!   interpreter access to freed program memory is a `fault`. `load`/`store` go through checked
//!   memory.
//! - **Emulated file descriptions** (Miri's `unnamed_socket.rs` and `eventfd.rs` shims; #3572, #3603,
//!   #4072, #5197), in `fds.rs`: pipes, socketpairs and eventfd with Linux semantics, blocking as
//!   data (a waiter list per description, `BlockReason::Subject` plus a continuation that retries and
//!   sets the thread's return value).
//! - **Program lifetime.** `end-program` frees everything the program holds: ids, allocations and
//!   fds. Process exit (an exit hook) ends the program too. Program threads are the runner's threads.
//!   What a program keeps from one loop iteration to the next (an allocation, an open fd, its
//!   description) is the program's choice, not an interpreter leak: those kinds are declared as
//!   caches of one unit per slot, so the per-repetition check skips them, the growth detector bounds
//!   them, and the check after a lifecycle's teardown (ending the program) wants them all gone.
//!
//! The language's fd ownership rule: a handle belongs to the thread that created it, and is closed
//! when that thread exits (as a Rust `OwnedFd` moved into a thread is dropped at its end). Any thread
//! may use or close any handle. Blocking follows one of two disciplines, chosen by the scenario's
//! `[config] blocking`:
//!
//! - `"owner-running"` (the default): a read or write that would block only blocks on a pipe or
//!   socketpair end whose handles belong to a running spawned thread other than the caller (the
//!   main thread never exits, so its fds never qualify), and only while no thread waits on the peer
//!   end; otherwise it fails with EAGAIN, as on a non-blocking fd. The owner's exit closes its
//!   handles, which wakes every waiter with EOF or EPIPE, and no wait-for cycle can form, so no
//!   program can deadlock on Linux and a deadlock is always the interpreter's fault. This is what
//!   makes generated programs meaningful: without it, random programs deadlock by themselves.
//! - `"linux"`: every blocking-mode fd blocks as on Linux (eventfd included); the scenario's author
//!   is responsible for the program being deadlock-free.
//!
//! Not modelled: the program's own undefined behaviour (Miri's main job), `dup`, epoll, files,
//! addresses beyond a per-id base, the real contents of pipe buffers (only byte counts).
//!
//! Defects:
//! - `fn-ptr-fresh-alloc`: every cast of a generic or inlinable function mints a fresh id (Miri
//!   before #128742): the `fn ptr id` count grows without bound.
//! - `blocked-read-weak-ref`: a blocked reader's continuation holds only a `Weak` to its description
//!   (Miri #5197). Closing the last table handle kills the description, the peer's write finds no
//!   reader (EPIPE) and nobody ever wakes the reader: a deadlock.
//! - `host-fn-fresh-alloc` (beyond the DESIGN.md contract, a neighbour from SEED-BUGS.md section 1):
//!   casting a host function (`FnVal::Other`) mints a fresh id every time, as the real code still
//!   does. With it off, host functions are salted like generic ones.

mod fds;

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use serde::{Deserialize, Serialize};

use crate::os::modules::{CodeAddr, MAIN_CODE};
use crate::os::tls::TlsKey;
use crate::os::{Errno, KindId, Os, PAGE_SIZE, Prot, RecordId, Tid};
use crate::subject::{
    CacheDecl, ChoiceParam, Config, DefectInfo, Names, OpDoc, OpRefusal, Step, Subject, SubjectInfo,
};

use fds::Handle;

/// Function indices a program may declare.
pub const FUNCTIONS: u8 = 4;
/// Slots holding a pointer value (a cast's result).
pub const POINTER_SLOTS: u8 = 4;
/// Slots holding a program allocation.
pub const ALLOCATION_SLOTS: u8 = 4;
/// The emulated fd table's size. Small, so that random programs share handles across threads.
pub const FD_SLOTS: u8 = 4;
/// Types and traits a `vtable-cast` may name.
pub const TYPES: u8 = 4;
pub const TRAITS: u8 = 4;
/// Salts per non-unique function or vtable (rust-lang/rust#128742).
pub const SALTS: u64 = 32;
/// Bytes of machine memory per allocation slot: room for the largest `alloc` (`bytes: u16`).
const ALLOCATION_AREA_BYTES: u64 = 64 * 1024;
/// Where exposed addresses of function pointers and vtables start (they are not in program memory).
const EXPOSED_ADDRESS_BASE: u64 = 0x7e00_0000_0000;
/// Code addresses of the interpreter's own callbacks: a thread's fds are closed when it exits, and
/// the program ends at process exit.
const THREAD_EXIT_CODE: CodeAddr = CodeAddr(MAIN_CODE.0 + 0x100);
const PROCESS_EXIT_CODE: CodeAddr = CodeAddr(MAIN_CODE.0 + 0x200);

/// How a function behaves under casts: only a never-inline, non-generic function is unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Arbitrary)]
#[serde(rename_all = "kebab-case")]
pub enum FnKind {
    Generic,
    Inlinable,
    NeverInline,
    /// A function the host provides (`FnVal::Other`, a `dlsym` shim).
    Host,
}

fn function_index(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=FUNCTIONS - 1)
}
fn pointer_slot(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=POINTER_SLOTS - 1)
}
fn allocation_slot(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=ALLOCATION_SLOTS - 1)
}
fn fd_slot(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=FD_SLOTS - 1)
}
fn type_index(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=TYPES - 1)
}
fn trait_index(u: &mut Unstructured) -> arbitrary::Result<u8> {
    u.int_in_range(0..=TRAITS - 1)
}
/// Most programs use blocking fds; `O_NONBLOCK` is the exception (1 in 8 generated).
fn mostly_blocking(u: &mut Unstructured) -> arbitrary::Result<bool> {
    Ok(u.int_in_range(0..=7u8)? == 0)
}
/// TOML integers stop at `i64::MAX`, so generated values do too (two such writes fill an eventfd).
fn counter_value(u: &mut Unstructured) -> arbitrary::Result<u64> {
    u.int_in_range(0..=i64::MAX as u64)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum InterpreterOp {
    /// Declares function `fn` with a kind (re-declaring changes its kind).
    DeclareFn {
        #[serde(rename = "fn")]
        #[arbitrary(with = function_index)]
        function: u8,
        kind: FnKind,
    },
    /// `p = f as fn()`: stores a function pointer (an allocation id) in pointer slot `ptr`.
    CastFn {
        #[serde(rename = "fn")]
        #[arbitrary(with = function_index)]
        function: u8,
        #[arbitrary(with = pointer_slot)]
        ptr: u8,
    },
    /// `&x as &dyn Trait`: stores a vtable pointer in pointer slot `ptr`.
    VtableCast {
        #[arbitrary(with = type_index)]
        ty: u8,
        #[serde(rename = "trait")]
        #[arbitrary(with = trait_index)]
        trait_: u8,
        #[arbitrary(with = pointer_slot)]
        ptr: u8,
    },
    /// `p as usize`: exposes the pointer's address; the thread's return value is the address.
    PtrToInt {
        #[arbitrary(with = pointer_slot)]
        ptr: u8,
    },
    /// Allocates `bytes` in slot `slot`, freeing what the slot held (an assignment drops the old box).
    Alloc {
        #[arbitrary(with = allocation_slot)]
        slot: u8,
        bytes: u16,
    },
    Dealloc {
        #[arbitrary(with = allocation_slot)]
        slot: u8,
    },
    /// Writes a u64 at `offset` (wrapped into the allocation, 8-aligned).
    Store {
        #[arbitrary(with = allocation_slot)]
        slot: u8,
        offset: u16,
        value: u32,
    },
    /// Reads a u64 at `offset`; the thread's return value is what was read.
    Load {
        #[arbitrary(with = allocation_slot)]
        slot: u8,
        offset: u16,
    },
    /// `pipe2`: the read end in fd slot `read`, the write end in `write`.
    Pipe {
        #[arbitrary(with = fd_slot)]
        read: u8,
        #[arbitrary(with = fd_slot)]
        write: u8,
        #[serde(default)]
        #[arbitrary(with = mostly_blocking)]
        nonblock: bool,
    },
    /// `socketpair(AF_UNIX, SOCK_STREAM)`: two connected ends in slots `a` and `b`.
    Socketpair {
        #[arbitrary(with = fd_slot)]
        a: u8,
        #[arbitrary(with = fd_slot)]
        b: u8,
        #[serde(default)]
        #[arbitrary(with = mostly_blocking)]
        nonblock: bool,
    },
    /// `eventfd(0, flags)` in slot `fd`.
    Eventfd {
        #[arbitrary(with = fd_slot)]
        fd: u8,
        #[serde(default)]
        #[arbitrary(with = mostly_blocking)]
        nonblock: bool,
    },
    /// `read(fd, buf, bytes)`; may block. The thread's return value is the count (for an eventfd,
    /// the counter's value).
    Read {
        #[arbitrary(with = fd_slot)]
        fd: u8,
        bytes: u16,
    },
    /// `write(fd, buf, bytes)` on a pipe or socket; may block, may be partial.
    Write {
        #[arbitrary(with = fd_slot)]
        fd: u8,
        bytes: u16,
    },
    /// Writes the 8-byte `value` to an eventfd; blocks while the counter would pass `u64::MAX - 1`.
    EventfdWrite {
        #[arbitrary(with = fd_slot)]
        fd: u8,
        #[arbitrary(with = counter_value)]
        value: u64,
    },
    /// `close(fd)`: removes the table entry; the description closes when its last handle goes.
    Close {
        #[arbitrary(with = fd_slot)]
        fd: u8,
    },
    /// The program ends: every id, allocation and fd it holds is freed.
    EndProgram,
}

const BLOCKING: ChoiceParam = ChoiceParam {
    name: "blocking",
    summary: "who may block on an emulated fd: only a running spawned thread's pipe or socket, or every blocking fd as on Linux",
    choices: &["owner-running", "linux"],
    default: "owner-running",
};

/// Who may block on an emulated fd (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocking {
    /// The default: wait only on a running spawned thread's pipe or socket (see the module header).
    OwnerRunning,
    Linux,
}

/// One allocation id and its ledger record.
#[derive(Clone, Copy, Debug)]
struct Minted {
    id: u64,
    record: RecordId,
}

#[derive(Clone, Copy, Debug)]
struct Allocation {
    bytes: u64,
    record: RecordId,
}

struct Kinds {
    fn_ids: KindId,
    vtable_ids: KindId,
    allocations: KindId,
    fds: KindId,
    descriptions: KindId,
    waiters: KindId,
}

pub struct Interpreter {
    kinds: Kinds,
    fn_fresh_alloc: bool,
    host_fn_fresh_alloc: bool,
    blocked_read_weak_ref: bool,
    blocking: Blocking,
    functions: [Option<FnKind>; FUNCTIONS as usize],
    /// Allocation ids are never reused while the interpreter runs, as Miri's `AllocId`s.
    next_alloc_id: u64,
    /// The dedup map of function pointers: (function, salt) → id.
    fn_ids: BTreeMap<(u8, u64), Minted>,
    vtable_ids: BTreeMap<(u8, u8, u64), Minted>,
    /// Ids minted without dedup (the defects), still owned by the program until it ends.
    fresh_ids: Vec<Minted>,
    pointers: [Option<u64>; POINTER_SLOTS as usize],
    exposed: BTreeSet<u64>,
    /// Machine memory for program allocations, if reserving it succeeded.
    memory_base: Option<u64>,
    allocations: [Option<Allocation>; ALLOCATION_SLOTS as usize],
    fd_table: [Option<Handle>; FD_SLOTS as usize],
    io: fds::IoState,
    thread_exit_key: Option<TlsKey>,
    /// Each thread's last syscall result: what the program would find in its return register.
    returns: BTreeMap<Tid, Result<u64, Errno>>,
}

impl Subject for Interpreter {
    type Op = InterpreterOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "interpreter",
            summary: "Miri-like interpreter: fn-pointer and vtable ids, program memory, emulated pipes/socketpairs/eventfd with blocking",
            ops: vec![
                OpDoc {
                    name: "declare-fn",
                    summary: "declare function `fn` (0..4) of `kind` generic|inlinable|never-inline|host",
                },
                OpDoc {
                    name: "cast-fn",
                    summary: "`f as fn()` into pointer slot `ptr` (0..4): an allocation id",
                },
                OpDoc {
                    name: "vtable-cast",
                    summary: "`&x as &dyn Trait` for `ty`, `trait` (0..4) into pointer slot `ptr`",
                },
                OpDoc {
                    name: "ptr-to-int",
                    summary: "`p as usize`: expose pointer slot `ptr`",
                },
                OpDoc {
                    name: "alloc",
                    summary: "allocate `bytes` in slot `slot` (0..4), freeing what it held",
                },
                OpDoc {
                    name: "dealloc",
                    summary: "free the allocation in slot `slot`",
                },
                OpDoc {
                    name: "store",
                    summary: "write u64 `value` at `offset` of allocation `slot` (checked memory)",
                },
                OpDoc {
                    name: "load",
                    summary: "read a u64 at `offset` of allocation `slot` (checked memory)",
                },
                OpDoc {
                    name: "pipe",
                    summary: "pipe with ends in fd slots `read`, `write` (0..4); `nonblock`",
                },
                OpDoc {
                    name: "socketpair",
                    summary: "connected sockets in fd slots `a`, `b`; `nonblock`",
                },
                OpDoc {
                    name: "eventfd",
                    summary: "eventfd (counter 0) in fd slot `fd`; `nonblock`",
                },
                OpDoc {
                    name: "read",
                    summary: "read up to `bytes` from fd `fd`; may block",
                },
                OpDoc {
                    name: "write",
                    summary: "write `bytes` to fd `fd`; may block, may be partial",
                },
                OpDoc {
                    name: "eventfd-write",
                    summary: "add `value` to eventfd `fd`; may block on overflow",
                },
                OpDoc {
                    name: "close",
                    summary: "close fd slot `fd`",
                },
                OpDoc {
                    name: "end-program",
                    summary: "the program ends: free every id, allocation and fd",
                },
            ],
            defects: vec![
                DefectInfo {
                    name: "fn-ptr-fresh-alloc",
                    summary: "every cast of a generic or inlinable function mints a new allocation id",
                    source: "Miri #3737 (rust-lang/rust#123781), fixed by rust-lang/rust#128742",
                },
                DefectInfo {
                    name: "blocked-read-weak-ref",
                    summary: "a blocked read's callback holds a weak reference: closing the fd kills the description and the reader is never woken",
                    source: "Miri #5197",
                },
                DefectInfo {
                    name: "host-fn-fresh-alloc",
                    summary: "every cast of a host function (FnVal::Other) mints a new allocation id (still open upstream; not in the DESIGN.md contract)",
                    source: "Miri #3737 neighbour (SEED-BUGS.md section 1): host functions, FnVal::Other",
                },
            ],
            caches: vec![
                CacheDecl {
                    kind: "fn ptr id",
                    per_key_max: SALTS,
                    why: "a non-unique function has up to 32 salted ids (rust-lang/rust#128742)",
                },
                CacheDecl {
                    kind: "vtable id",
                    per_key_max: SALTS,
                    why: "vtables are salted like functions: up to 32 ids per (type, trait)",
                },
                CacheDecl {
                    kind: "program allocation",
                    per_key_max: 1,
                    why: "the program may keep one live allocation per slot across repetitions",
                },
                CacheDecl {
                    kind: "emulated fd",
                    per_key_max: 1,
                    why: "the program may keep one open handle per fd slot across repetitions",
                },
                CacheDecl {
                    kind: "emulated description",
                    per_key_max: 1,
                    why: "a description kept open by the program's handle in the slot it was created in",
                },
            ],
            params: vec![BLOCKING.decl()],
            host_backed: false,
        }
    }

    fn new(os: &mut Os, config: &Config) -> Self {
        let kinds = Kinds {
            fn_ids: os.register_kind("fn ptr id", true),
            vtable_ids: os.register_kind("vtable id", true),
            allocations: os.register_kind("program allocation", true),
            fds: os.register_kind("emulated fd", true),
            descriptions: os.register_kind("emulated description", true),
            waiters: os.register_kind("waiter entry", false),
        };
        // `choice` yields only a declared choice, and the default is "owner-running".
        let blocking = match config.choice(&BLOCKING) {
            "linux" => Blocking::Linux,
            _ => Blocking::OwnerRunning,
        };
        let memory_base = reserve_machine_memory(os);
        let thread_exit_key = os
            .tls_key_create(Some(THREAD_EXIT_CODE), "interpreter_thread_exit_init")
            .ok();
        os.atexit(PROCESS_EXIT_CODE, 0, "interpreter_exit_hook_init");
        Interpreter {
            kinds,
            fn_fresh_alloc: config.defect("fn-ptr-fresh-alloc"),
            host_fn_fresh_alloc: config.defect("host-fn-fresh-alloc"),
            blocked_read_weak_ref: config.defect("blocked-read-weak-ref"),
            blocking,
            functions: [None; FUNCTIONS as usize],
            next_alloc_id: 1,
            fn_ids: BTreeMap::new(),
            vtable_ids: BTreeMap::new(),
            fresh_ids: Vec::new(),
            pointers: [None; POINTER_SLOTS as usize],
            exposed: BTreeSet::new(),
            memory_base,
            allocations: [None; ALLOCATION_SLOTS as usize],
            fd_table: Default::default(),
            io: fds::IoState::default(),
            thread_exit_key,
            returns: BTreeMap::new(),
        }
    }

    fn op_name(op: &InterpreterOp) -> &'static str {
        match op {
            InterpreterOp::DeclareFn { .. } => "declare-fn",
            InterpreterOp::CastFn { .. } => "cast-fn",
            InterpreterOp::VtableCast { .. } => "vtable-cast",
            InterpreterOp::PtrToInt { .. } => "ptr-to-int",
            InterpreterOp::Alloc { .. } => "alloc",
            InterpreterOp::Dealloc { .. } => "dealloc",
            InterpreterOp::Store { .. } => "store",
            InterpreterOp::Load { .. } => "load",
            InterpreterOp::Pipe { .. } => "pipe",
            InterpreterOp::Socketpair { .. } => "socketpair",
            InterpreterOp::Eventfd { .. } => "eventfd",
            InterpreterOp::Read { .. } => "read",
            InterpreterOp::Write { .. } => "write",
            InterpreterOp::EventfdWrite { .. } => "eventfd-write",
            InterpreterOp::Close { .. } => "close",
            InterpreterOp::EndProgram => "end-program",
        }
    }

    fn validate_op(op: &InterpreterOp, names: &mut Names) -> Result<(), OpRefusal> {
        use InterpreterOp as O;
        match *op {
            O::DeclareFn { function, .. } => {
                in_range("fn", function, FUNCTIONS)?;
                names.define("fn", function);
            }
            O::CastFn { function, ptr } => {
                in_range("fn", function, FUNCTIONS)?;
                in_range("ptr", ptr, POINTER_SLOTS)?;
                names
                    .require("fn", function, "function")
                    .map_err(OpRefusal::of_field("fn"))?;
                names.define("ptr", ptr);
            }
            O::VtableCast { ty, trait_, ptr } => {
                in_range("ty", ty, TYPES)?;
                in_range("trait", trait_, TRAITS)?;
                in_range("ptr", ptr, POINTER_SLOTS)?;
                names.define("ptr", ptr);
            }
            O::PtrToInt { ptr } => {
                in_range("ptr", ptr, POINTER_SLOTS)?;
                names
                    .require("ptr", ptr, "pointer slot")
                    .map_err(OpRefusal::of_field("ptr"))?;
            }
            O::Alloc { slot, .. } => {
                in_range("slot", slot, ALLOCATION_SLOTS)?;
                names.define("slot", slot);
            }
            O::Dealloc { slot } | O::Store { slot, .. } | O::Load { slot, .. } => {
                in_range("slot", slot, ALLOCATION_SLOTS)?;
                names
                    .require("slot", slot, "allocation slot")
                    .map_err(OpRefusal::of_field("slot"))?;
            }
            O::Pipe { read, write, .. } => define_fd_pair(names, ("read", read), ("write", write))?,
            O::Socketpair { a, b, .. } => define_fd_pair(names, ("a", a), ("b", b))?,
            O::Eventfd { fd, .. } => {
                in_range("fd", fd, FD_SLOTS)?;
                names.define("fd", fd);
            }
            O::Read { fd, .. }
            | O::Write { fd, .. }
            | O::EventfdWrite { fd, .. }
            | O::Close { fd } => {
                in_range("fd", fd, FD_SLOTS)?;
                names
                    .require("fd", fd, "fd slot")
                    .map_err(OpRefusal::of_field("fd"))?;
            }
            O::EndProgram => {}
        }
        Ok(())
    }

    fn apply(&mut self, os: &mut Os, tid: Tid, op: &InterpreterOp) -> Step<Self> {
        use InterpreterOp as O;
        match *op {
            O::DeclareFn { function, kind } => self.functions[function as usize] = Some(kind),
            O::CastFn { function, ptr } => {
                let id = self.cast_fn(os, function);
                self.pointers[ptr as usize] = id;
            }
            O::VtableCast { ty, trait_, ptr } => {
                let id = self.vtable_cast(os, ty, trait_);
                self.pointers[ptr as usize] = Some(id);
            }
            O::PtrToInt { ptr } => {
                let address = self.pointers[ptr as usize].map(|id| {
                    self.exposed.insert(id);
                    EXPOSED_ADDRESS_BASE + id * 16
                });
                self.returns.insert(tid, address.ok_or(Errno::Einval));
            }
            O::Alloc { slot, bytes } => {
                let result = self.alloc(os, slot, u64::from(bytes));
                self.returns.insert(tid, result);
            }
            O::Dealloc { slot } => self.dealloc(os, slot),
            O::Store {
                slot,
                offset,
                value,
            } => {
                let result = self
                    .word_address(slot, offset)
                    .map(|address| os.write_u64(address, u64::from(value), "program_store"));
                self.returns
                    .insert(tid, result.ok_or(Errno::Einval).and_then(|r| r.map(|()| 0)));
            }
            O::Load { slot, offset } => {
                let result = self
                    .word_address(slot, offset)
                    .map(|address| os.read_u64(address, "program_load"));
                self.returns
                    .insert(tid, result.ok_or(Errno::Einval).and_then(|r| r));
            }
            O::Pipe {
                read,
                write,
                nonblock,
            } => self.open_pair(os, tid, fds::PairKind::Pipe, read, write, nonblock),
            O::Socketpair { a, b, nonblock } => {
                self.open_pair(os, tid, fds::PairKind::Socket, a, b, nonblock)
            }
            O::Eventfd { fd, nonblock } => self.open_eventfd(os, tid, fd, nonblock),
            O::Read { fd, bytes } => return self.read(os, tid, fd, u64::from(bytes)),
            O::Write { fd, bytes } => return self.write(os, tid, fd, u64::from(bytes)),
            O::EventfdWrite { fd, value } => return self.eventfd_write(os, tid, fd, value),
            O::Close { fd } => {
                let result = self.close_slot(os, fd);
                self.returns.insert(tid, result.map(|()| 0));
            }
            O::EndProgram => self.end_program(os),
        }
        Step::Done
    }

    fn call(&mut self, os: &mut Os, tid: Tid, code: CodeAddr, _arg: u64) -> Step<Self> {
        if code == THREAD_EXIT_CODE {
            self.close_owned_by(os, tid);
        } else if code == PROCESS_EXIT_CODE {
            self.end_program(os);
        }
        Step::Done
    }

    fn check_invariants(&self, os: &Os) -> Vec<String> {
        self.io_invariants(os)
    }
}

/// Refuses the value of `field` past the `count` slots of its kind.
fn in_range(field: &'static str, value: u8, count: u8) -> Result<(), OpRefusal> {
    if value < count {
        Ok(())
    } else {
        Err(OpRefusal::at(
            field,
            format!(
                "`{field} = {value}` is out of range: the interpreter has {count} (0..{count})"
            ),
        ))
    }
}

/// Checks and defines the two fd slots an op opens, each written as its field (`read`, `write`).
fn define_fd_pair(
    names: &mut Names,
    (first_field, first): (&'static str, u8),
    (second_field, second): (&'static str, u8),
) -> Result<(), OpRefusal> {
    in_range(first_field, first, FD_SLOTS)?;
    in_range(second_field, second, FD_SLOTS)?;
    if first == second {
        // Neither value alone is at fault: the op as a whole is.
        return Err(OpRefusal::from(format!(
            "both ends would go in fd slot {first}: give two different slots"
        )));
    }
    names.define("fd", first);
    names.define("fd", second);
    Ok(())
}

/// Reserves and commits the machine memory for program allocations, all protected until allocated.
/// Done once, when the interpreter starts, so that it is part of every baseline.
fn reserve_machine_memory(os: &mut Os) -> Option<u64> {
    let bytes = u64::from(ALLOCATION_SLOTS) * ALLOCATION_AREA_BYTES;
    let base = os
        .reserve(bytes, PAGE_SIZE, "interpreter_memory_init")
        .ok()?;
    if os.commit(base, bytes, "interpreter_memory_init").is_err()
        || os
            .protect(base, bytes, Prot::NONE, "interpreter_memory_init")
            .is_err()
    {
        let _ = os.release(base, bytes, "interpreter_memory_init");
        return None;
    }
    Some(base)
}

impl Interpreter {
    /// The thread's last syscall result, as the program would read it.
    pub fn last_return(&self, tid: Tid) -> Option<Result<u64, Errno>> {
        self.returns.get(&tid).copied()
    }

    fn mint(&mut self, os: &mut Os, kind: KindId, key: u64, site: &'static str) -> Minted {
        let id = self.next_alloc_id;
        self.next_alloc_id += 1;
        Minted {
            id,
            record: os.track(kind, 0, key, site),
        }
    }

    /// `f as fn()`: the id of a function pointer (None for an undeclared function).
    fn cast_fn(&mut self, os: &mut Os, function: u8) -> Option<u64> {
        let kind = self.functions[function as usize]?;
        let fresh = match kind {
            FnKind::Generic | FnKind::Inlinable => self.fn_fresh_alloc,
            FnKind::Host => self.host_fn_fresh_alloc,
            FnKind::NeverInline => false,
        };
        if fresh {
            let minted = self.mint(os, self.kinds.fn_ids, u64::from(function), "fn_ptr_cast");
            self.fresh_ids.push(minted);
            return Some(minted.id);
        }
        // A function that may be duplicated (monomorphized or inlined into several codegen units)
        // must not compare equal to itself reliably: up to 32 ids, chosen at random per cast.
        let salt = if kind == FnKind::NeverInline {
            0
        } else {
            os.random_below(SALTS)
        };
        if let Some(minted) = self.fn_ids.get(&(function, salt)) {
            return Some(minted.id);
        }
        let minted = self.mint(os, self.kinds.fn_ids, u64::from(function), "fn_ptr_cast");
        self.fn_ids.insert((function, salt), minted);
        Some(minted.id)
    }

    fn vtable_cast(&mut self, os: &mut Os, ty: u8, trait_: u8) -> u64 {
        let salt = os.random_below(SALTS);
        if let Some(minted) = self.vtable_ids.get(&(ty, trait_, salt)) {
            return minted.id;
        }
        let key = u64::from(ty) * u64::from(TRAITS) + u64::from(trait_);
        let minted = self.mint(os, self.kinds.vtable_ids, key, "vtable_cast");
        self.vtable_ids.insert((ty, trait_, salt), minted);
        minted.id
    }

    fn area(&self, slot: u8) -> Option<u64> {
        self.memory_base
            .map(|base| base + u64::from(slot) * ALLOCATION_AREA_BYTES)
    }

    fn alloc(&mut self, os: &mut Os, slot: u8, bytes: u64) -> Result<u64, Errno> {
        self.dealloc(os, slot);
        let area = self.area(slot).ok_or(Errno::Enomem)?;
        let bytes = bytes.max(1).next_multiple_of(8);
        os.protect(area, bytes, Prot::READ_WRITE, "program_alloc")?;
        let id = self.next_alloc_id;
        self.next_alloc_id += 1;
        let record = os.track(
            self.kinds.allocations,
            bytes,
            u64::from(slot),
            "program_alloc",
        );
        self.allocations[slot as usize] = Some(Allocation { bytes, record });
        Ok(id)
    }

    fn dealloc(&mut self, os: &mut Os, slot: u8) {
        if let Some(allocation) = self.allocations[slot as usize].take() {
            let area = self
                .area(slot)
                .expect("an allocation lives in machine memory");
            // Protected again, so that an interpreter access through a dangling pointer faults.
            let _ = os.protect(area, allocation.bytes, Prot::NONE, "program_dealloc");
            os.untrack(allocation.record, "program_dealloc");
        }
    }

    fn word_address(&self, slot: u8, offset: u16) -> Option<u64> {
        let allocation = self.allocations[slot as usize]?;
        let offset = (u64::from(offset) % allocation.bytes) & !7;
        Some(self.area(slot)? + offset)
    }

    /// Frees everything the program holds. Ids are never reused, so the counter keeps going.
    fn end_program(&mut self, os: &mut Os) {
        let fn_ids = std::mem::take(&mut self.fn_ids).into_values();
        let vtable_ids = std::mem::take(&mut self.vtable_ids).into_values();
        for minted in fn_ids
            .chain(vtable_ids)
            .chain(std::mem::take(&mut self.fresh_ids))
        {
            os.untrack(minted.record, "end_program");
        }
        self.pointers = [None; POINTER_SLOTS as usize];
        self.exposed.clear();
        for slot in 0..ALLOCATION_SLOTS {
            self.dealloc(os, slot);
        }
        for slot in 0..FD_SLOTS {
            let _ = self.close_slot(os, slot);
        }
    }
}

#[cfg(test)]
mod tests;
