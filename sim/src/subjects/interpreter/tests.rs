//! Semantics of the interpreter driven op by op, with continuations run as the runner would.

use std::collections::BTreeMap;

use super::fds::{BUFFER_CAPACITY_BYTES, EVENTFD_COUNTER_MAX};
use super::{FnKind, Interpreter, InterpreterOp as O, SALTS};
use crate::os::threads::{MAIN_THREAD, ThreadState};
use crate::os::{Errno, Os, Tid};
use crate::subject::{Config, Continuation, Step, Subject};

struct Harness {
    os: Os,
    interpreter: Interpreter,
    pending: BTreeMap<Tid, Continuation<Interpreter>>,
}

impl Harness {
    fn new(defects: &[&str], blocking: &str) -> Harness {
        let mut os = Os::for_tests(7);
        let mut config = Config {
            defects: defects.iter().map(|d| d.to_string()).collect(),
            ..Config::default()
        };
        config.params.insert("blocking".into(), blocking.into());
        let interpreter = Interpreter::new(&mut os, &config);
        Harness {
            os,
            interpreter,
            pending: BTreeMap::new(),
        }
    }

    fn spawn(&mut self) -> Tid {
        self.os.spawn_thread("t", "test").unwrap()
    }

    /// Applies an op; returns whether the thread blocked.
    fn op(&mut self, tid: Tid, op: O) -> bool {
        let step = self.interpreter.apply(&mut self.os, tid, &op);
        self.after(tid, step)
    }

    fn after(&mut self, tid: Tid, step: Step<Interpreter>) -> bool {
        match step {
            Step::Done => false,
            Step::Block(reason, continuation) => {
                self.os.block(tid, reason, "test");
                self.pending.insert(tid, continuation);
                true
            }
        }
    }

    /// Runs the continuation of `tid`, which must have been woken; returns whether it blocked again.
    fn resume(&mut self, tid: Tid) -> bool {
        assert_eq!(
            self.os.thread_state(tid),
            Some(&ThreadState::Runnable),
            "thread {} was not woken",
            tid.0
        );
        let continuation = self.pending.remove(&tid).expect("a pending continuation");
        let step = continuation(&mut self.interpreter, &mut self.os, tid);
        self.after(tid, step)
    }

    /// A blocking pipe opened by the main thread: fd 0 reads, fd 1 writes.
    fn blocking_pipe(&mut self) {
        self.op(
            MAIN,
            O::Pipe {
                read: 0,
                write: 1,
                nonblock: false,
            },
        );
    }

    fn blocked(&self, tid: Tid) -> bool {
        matches!(self.os.thread_state(tid), Some(ThreadState::Blocked(_)))
    }

    fn ret(&self, tid: Tid) -> Result<u64, Errno> {
        self.interpreter
            .last_return(tid)
            .expect("the op set a return value")
    }

    fn count(&self, kind: &str) -> u64 {
        let kind = self.os.resources().kind_by_name(kind).unwrap();
        self.os.resources().total(kind).count
    }

    fn invariants(&self) -> Vec<String> {
        self.interpreter.check_invariants(&self.os)
    }
}

const MAIN: Tid = MAIN_THREAD;

#[test]
fn pipe_follows_linux_capacity_partial_writes_zero_length_eof_and_epipe() {
    let mut h = Harness::new(&[], "linux");
    h.op(
        MAIN,
        O::Pipe {
            read: 0,
            write: 1,
            nonblock: true,
        },
    );
    h.op(MAIN, O::Read { fd: 0, bytes: 0 });
    assert_eq!(
        h.ret(MAIN),
        Ok(0),
        "a zero-length read of an empty pipe succeeds"
    );
    h.op(MAIN, O::Read { fd: 0, bytes: 10 });
    assert_eq!(
        h.ret(MAIN),
        Err(Errno::Eagain),
        "empty, peer alive, non-blocking"
    );
    let mut written = 0;
    while written < BUFFER_CAPACITY_BYTES {
        assert!(!h.op(
            MAIN,
            O::Write {
                fd: 1,
                bytes: u16::MAX
            }
        ));
        written += h.ret(MAIN).unwrap();
    }
    assert_eq!(
        written, BUFFER_CAPACITY_BYTES,
        "the last write was partial and filled the buffer exactly"
    );
    h.op(MAIN, O::Write { fd: 1, bytes: 1 });
    assert_eq!(h.ret(MAIN), Err(Errno::Eagain), "full and non-blocking");
    h.op(MAIN, O::Write { fd: 1, bytes: 0 });
    assert_eq!(
        h.ret(MAIN),
        Ok(0),
        "a zero-length write succeeds even when full"
    );
    h.op(MAIN, O::Write { fd: 0, bytes: 1 });
    assert_eq!(
        h.ret(MAIN),
        Err(Errno::Ebadf),
        "the read end is not writable"
    );
    h.op(MAIN, O::Read { fd: 0, bytes: 100 });
    assert_eq!(h.ret(MAIN), Ok(100));
    h.op(MAIN, O::Close { fd: 1 });
    h.op(
        MAIN,
        O::Read {
            fd: 0,
            bytes: u16::MAX,
        },
    );
    assert_eq!(
        h.ret(MAIN),
        Ok(u64::from(u16::MAX)),
        "buffered bytes outlive the writer"
    );
    while h.ret(MAIN) != Ok(0) {
        h.op(
            MAIN,
            O::Read {
                fd: 0,
                bytes: u16::MAX,
            },
        );
    }
    h.op(MAIN, O::Read { fd: 0, bytes: 1 });
    assert_eq!(h.ret(MAIN), Ok(0), "EOF once the peer is gone");
    h.op(
        MAIN,
        O::Pipe {
            read: 2,
            write: 3,
            nonblock: false,
        },
    );
    h.op(MAIN, O::Close { fd: 2 });
    h.op(MAIN, O::Write { fd: 3, bytes: 5 });
    assert_eq!(h.ret(MAIN), Err(Errno::Epipe), "no reader left");
    assert!(h.invariants().is_empty(), "{:?}", h.invariants());
    h.op(MAIN, O::EndProgram);
    assert_eq!(h.count("emulated description"), 0);
    assert_eq!(h.count("emulated fd"), 0);
}

#[test]
fn a_blocked_reader_is_woken_by_a_write_and_sets_its_return_value() {
    let mut h = Harness::new(&[], "linux");
    let reader = h.spawn();
    h.op(
        MAIN,
        O::Socketpair {
            a: 0,
            b: 1,
            nonblock: false,
        },
    );
    assert!(h.op(reader, O::Read { fd: 0, bytes: 64 }));
    assert_eq!(h.count("waiter entry"), 1);
    h.op(MAIN, O::Write { fd: 1, bytes: 10 });
    assert_eq!(h.count("waiter entry"), 0, "the writer took the list");
    assert!(!h.resume(reader));
    assert_eq!(h.ret(reader), Ok(10));
    assert!(h.invariants().is_empty());
}

/// The waiter-list invariant can fail: a reader woken behind the interpreter's back (its reason
/// satisfied by someone who did not take the list) is still named by the list, and the check
/// says which thread and which description.
#[test]
fn a_waiter_list_naming_a_thread_no_longer_blocked_breaks_the_invariant() {
    let mut h = Harness::new(&[], "linux");
    let reader = h.spawn();
    h.blocking_pipe();
    assert!(h.op(reader, O::Read { fd: 0, bytes: 8 }));
    assert!(h.invariants().is_empty(), "{:?}", h.invariants());
    let Some(ThreadState::Blocked(reason)) = h.os.thread_state(reader).cloned() else {
        panic!("the reader blocked");
    };
    h.os.unblock(reader, &reason, "test");
    let violations = h.invariants();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].starts_with("the waiter list of emulated description #")
            && violations[0].contains(&format!("names thread {}, which is not", reader.0)),
        "{violations:?}"
    );
}

/// The byte-conservation invariant can fail: a read end dropped behind the interpreter's back
/// (not closed, so its buffered bytes are never counted as discarded) takes bytes with it, and
/// the check says how many were written, read, discarded and buffered.
#[test]
fn bytes_that_vanish_without_a_close_break_the_conservation_invariant() {
    let mut h = Harness::new(&[], "linux");
    h.blocking_pipe();
    h.op(MAIN, O::Write { fd: 1, bytes: 10 });
    assert!(h.invariants().is_empty(), "{:?}", h.invariants());
    h.interpreter.fd_table[0] = None;
    assert_eq!(
        h.invariants(),
        vec![
            "emulated fds lost or invented bytes: 10 written, 0 read, 0 discarded at close, but 0 buffered"
                .to_string()
        ]
    );
}

#[test]
fn two_blocked_readers_and_one_write_one_completes_the_other_blocks_again() {
    let mut h = Harness::new(&[], "linux");
    let (first, second) = (h.spawn(), h.spawn());
    h.blocking_pipe();
    assert!(h.op(first, O::Read { fd: 0, bytes: 8 }));
    assert!(h.op(second, O::Read { fd: 0, bytes: 8 }));
    h.op(MAIN, O::Write { fd: 1, bytes: 3 });
    assert!(
        !h.blocked(first) && !h.blocked(second),
        "the waker unblocks every waiter"
    );
    assert!(!h.resume(second));
    assert_eq!(h.ret(second), Ok(3), "the first to run takes the bytes");
    assert!(
        h.resume(first),
        "the other finds the buffer empty and blocks again"
    );
    assert!(h.blocked(first));
    assert!(h.invariants().is_empty(), "{:?}", h.invariants());
    h.op(MAIN, O::Close { fd: 1 });
    assert!(!h.resume(first));
    assert_eq!(h.ret(first), Ok(0), "closing the writer wakes it with EOF");
}

#[test]
fn a_blocked_writer_is_woken_by_a_read_that_frees_space_or_by_the_reader_closing() {
    let mut h = Harness::new(&[], "linux");
    let writer = h.spawn();
    h.blocking_pipe();
    let mut filled = 0;
    while filled < BUFFER_CAPACITY_BYTES {
        assert!(!h.op(
            writer,
            O::Write {
                fd: 1,
                bytes: u16::MAX
            }
        ));
        filled += h.ret(writer).unwrap();
    }
    assert!(
        h.op(writer, O::Write { fd: 1, bytes: 100 }),
        "a full pipe blocks the writer"
    );
    h.op(MAIN, O::Read { fd: 0, bytes: 40 });
    assert!(!h.resume(writer));
    assert_eq!(h.ret(writer), Ok(40), "a partial write of the freed space");
    assert!(h.op(writer, O::Write { fd: 1, bytes: 1 }));
    h.op(MAIN, O::Close { fd: 0 });
    assert!(!h.resume(writer));
    assert_eq!(h.ret(writer), Err(Errno::Epipe));
    assert!(h.invariants().is_empty(), "{:?}", h.invariants());
}

#[test]
fn eventfd_read_blocks_at_zero_and_write_blocks_past_the_maximum() {
    let mut h = Harness::new(&[], "linux");
    let t = h.spawn();
    h.op(
        MAIN,
        O::Eventfd {
            fd: 2,
            nonblock: false,
        },
    );
    h.op(MAIN, O::Read { fd: 2, bytes: 4 });
    assert_eq!(
        h.ret(MAIN),
        Err(Errno::Einval),
        "an eventfd read needs 8 bytes"
    );
    assert!(h.op(t, O::Read { fd: 2, bytes: 8 }), "a read at 0 blocks");
    h.op(MAIN, O::EventfdWrite { fd: 2, value: 5 });
    assert!(!h.resume(t));
    assert_eq!(
        h.ret(t),
        Ok(5),
        "the read returns the counter and resets it"
    );
    let half = i64::MAX as u64;
    h.op(MAIN, O::EventfdWrite { fd: 2, value: half });
    h.op(MAIN, O::EventfdWrite { fd: 2, value: half });
    assert_eq!(h.ret(MAIN), Ok(8), "u64::MAX - 1 is the largest counter");
    assert!(
        h.op(t, O::EventfdWrite { fd: 2, value: 1 }),
        "one more would overflow: the writer blocks"
    );
    h.op(MAIN, O::Read { fd: 2, bytes: 8 });
    assert_eq!(h.ret(MAIN), Ok(EVENTFD_COUNTER_MAX));
    assert!(!h.resume(t));
    assert_eq!(h.ret(t), Ok(8));
    h.op(
        MAIN,
        O::Eventfd {
            fd: 3,
            nonblock: true,
        },
    );
    h.op(MAIN, O::Read { fd: 3, bytes: 8 });
    assert_eq!(h.ret(MAIN), Err(Errno::Eagain), "non-blocking at 0");
    assert_eq!(
        h.count("waiter entry"),
        0,
        "non-blocking calls leave waiter lists untouched"
    );
}

#[test]
fn the_default_discipline_waits_only_on_a_running_spawned_owner_with_nobody_waiting_on_the_peer() {
    let mut h = Harness::new(&[], "owner-running");
    let (owner, t2, t3) = (h.spawn(), h.spawn(), h.spawn());
    h.blocking_pipe();
    h.op(owner, O::Read { fd: 0, bytes: 1 });
    assert_eq!(
        h.ret(owner),
        Err(Errno::Eagain),
        "the main thread never exits, so its pipes never block anyone"
    );
    h.op(
        owner,
        O::Socketpair {
            a: 2,
            b: 3,
            nonblock: false,
        },
    );
    h.op(owner, O::Read { fd: 2, bytes: 1 });
    assert_eq!(
        h.ret(owner),
        Err(Errno::Eagain),
        "nor does a thread's own socket block it"
    );
    assert!(
        h.op(MAIN, O::Read { fd: 2, bytes: 1 }),
        "another thread's socket blocks, even the main thread"
    );
    assert!(
        h.op(t2, O::Read { fd: 2, bytes: 1 }),
        "two waiters on one end"
    );
    h.op(t3, O::Read { fd: 3, bytes: 1 });
    assert_eq!(
        h.ret(t3),
        Err(Errno::Eagain),
        "waiting on the peer of an awaited end could deadlock both"
    );
    h.op(
        MAIN,
        O::Eventfd {
            fd: 0,
            nonblock: false,
        },
    );
    // The owner exits: its handles close, the peer dies, and both waiters see EOF.
    h.interpreter.close_owned_by(&mut h.os, owner);
    assert!(!h.resume(MAIN) && !h.resume(t2));
    assert_eq!((h.ret(MAIN), h.ret(t2)), (Ok(0), Ok(0)));
    assert_eq!(
        h.count("emulated description"),
        2,
        "only the main thread's pipe write end and eventfd are left"
    );
    h.op(t3, O::Read { fd: 0, bytes: 8 });
    assert_eq!(
        h.ret(t3),
        Err(Errno::Eagain),
        "an eventfd has no EOF to end a wait, so it never blocks here"
    );
    assert!(h.invariants().is_empty(), "{:?}", h.invariants());
}

#[test]
fn a_blocked_read_survives_the_close_of_its_fd_and_completes_with_the_peers_write() {
    for (defects, woken) in [(&[][..], true), (&["blocked-read-weak-ref"][..], false)] {
        let mut h = Harness::new(defects, "linux");
        let reader = h.spawn();
        h.op(
            MAIN,
            O::Pipe {
                read: 0,
                write: 1,
                nonblock: false,
            },
        );
        assert!(h.op(reader, O::Read { fd: 0, bytes: 8 }));
        h.op(MAIN, O::Close { fd: 0 });
        h.op(MAIN, O::Write { fd: 1, bytes: 4 });
        if woken {
            assert_eq!(
                h.ret(MAIN),
                Ok(4),
                "the blocked reader keeps the description alive"
            );
            assert!(!h.resume(reader));
            assert_eq!(h.ret(reader), Ok(4));
            h.op(MAIN, O::Close { fd: 1 });
            assert_eq!(h.count("emulated description"), 0);
        } else {
            assert_eq!(
                h.ret(MAIN),
                Err(Errno::Epipe),
                "the description died with its last table handle"
            );
            assert!(h.blocked(reader), "and nobody will ever wake the reader");
        }
    }
}

#[test]
fn salted_casts_are_bounded_per_function_and_a_never_inline_function_has_one_id() {
    let mut h = Harness::new(&[], "owner-running");
    h.op(
        MAIN,
        O::DeclareFn {
            function: 0,
            kind: FnKind::Generic,
        },
    );
    h.op(
        MAIN,
        O::DeclareFn {
            function: 1,
            kind: FnKind::NeverInline,
        },
    );
    h.op(
        MAIN,
        O::DeclareFn {
            function: 2,
            kind: FnKind::Host,
        },
    );
    for _ in 0..2000 {
        for function in 0..3 {
            h.op(MAIN, O::CastFn { function, ptr: 0 });
        }
        h.op(
            MAIN,
            O::VtableCast {
                ty: 1,
                trait_: 2,
                ptr: 1,
            },
        );
    }
    let ids = h.os.resources().kind_by_name("fn ptr id").unwrap();
    assert_eq!(
        h.count("fn ptr id"),
        2 * SALTS + 1,
        "32 salts each for the generic and host functions, 1 for the never-inline one"
    );
    assert_eq!(h.os.resources().live_keys(ids), 3);
    assert_eq!(
        h.count("vtable id"),
        SALTS,
        "vtables are salted the same way"
    );
    h.op(MAIN, O::PtrToInt { ptr: 0 });
    assert!(h.ret(MAIN).is_ok());
    h.op(MAIN, O::EndProgram);
    assert_eq!(
        h.count("fn ptr id") + h.count("vtable id"),
        0,
        "the end of the program frees every id"
    );

    let mut fresh = Harness::new(
        &["fn-ptr-fresh-alloc", "host-fn-fresh-alloc"],
        "owner-running",
    );
    fresh.op(
        MAIN,
        O::DeclareFn {
            function: 0,
            kind: FnKind::Inlinable,
        },
    );
    fresh.op(
        MAIN,
        O::DeclareFn {
            function: 1,
            kind: FnKind::NeverInline,
        },
    );
    fresh.op(
        MAIN,
        O::DeclareFn {
            function: 2,
            kind: FnKind::Host,
        },
    );
    for _ in 0..100 {
        for function in 0..3 {
            fresh.op(MAIN, O::CastFn { function, ptr: 0 });
        }
    }
    assert_eq!(
        fresh.count("fn ptr id"),
        100 + 1 + 100,
        "every non-unique cast mints an id; the never-inline one still dedups"
    );
}

#[test]
fn program_memory_is_checked_and_freed_areas_are_protected() {
    let mut h = Harness::new(&[], "owner-running");
    h.op(MAIN, O::Alloc { slot: 1, bytes: 20 });
    h.op(
        MAIN,
        O::Store {
            slot: 1,
            offset: 17,
            value: 99,
        },
    );
    h.op(
        MAIN,
        O::Load {
            slot: 1,
            offset: 16,
        },
    );
    assert_eq!(
        h.ret(MAIN),
        Ok(99),
        "offsets wrap into the allocation, 8-aligned"
    );
    h.op(MAIN, O::Alloc { slot: 1, bytes: 8 });
    assert_eq!(
        h.count("program allocation"),
        1,
        "re-allocating a slot frees its old allocation"
    );
    h.op(MAIN, O::Dealloc { slot: 1 });
    h.op(MAIN, O::Load { slot: 1, offset: 0 });
    assert_eq!(
        h.ret(MAIN),
        Err(Errno::Einval),
        "a freed slot holds no pointer"
    );
    let area = h.interpreter.area(1).unwrap();
    assert_eq!(
        h.os.read_u64(area, "test"),
        Err(Errno::Efault),
        "freed program memory is protected"
    );
    assert_eq!(h.count("program allocation"), 0);
}
