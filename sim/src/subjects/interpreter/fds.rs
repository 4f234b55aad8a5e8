//! The interpreter's own emulated file descriptions, as Miri's shims (`unnamed_socket.rs`,
//! `eventfd.rs`) emulate them for the program: not the OS's fds.
//!
//! A description is an `Rc`. Table handles own it; a pipe end or socket holds only a `Weak` to its
//! peer, so a description lives exactly as long as some handle (or some blocked continuation, once
//! #5197 was fixed) holds it. When the last strong reference goes, the description closes: its
//! buffered bytes are discarded, and the peer's waiters are woken to see EOF or EPIPE.
//!
//! Blocking is data (Miri #3572, #3603): a read on an empty buffer records the thread in the
//! description's reader list and returns `Step::block` with a continuation that retries the read and
//! sets the thread's return value. Whoever makes progress (a write, a read that frees space, a close
//! of the peer) takes the whole list and unblocks each waiter; a woken thread that still cannot
//! proceed blocks again. The continuation owns the description while it waits: with the
//! `blocked-read-weak-ref` defect it holds only a `Weak`, which is #5197.
//!
//! Linux semantics (pipe(7), socketpair(2), eventfd(2), and Miri's tests): a buffer holds 212,992
//! bytes; writes may be partial; zero-length reads and writes succeed at once; a write with the peer
//! gone is EPIPE; a read of an empty buffer is EOF (0) once the peer is gone, blocks while it lives,
//! or is EAGAIN when non-blocking. An eventfd read needs 8 bytes, returns the counter and resets it,
//! and blocks at 0; a write blocks while the counter would pass `u64::MAX - 1`.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::{Blocking, FD_SLOTS, Interpreter};
use crate::os::threads::{BlockReason, MAIN_THREAD, ThreadState};
use crate::os::{Errno, Os, RecordId, Tid};
use crate::subject::Step;

/// Linux's default pipe and unix-socket buffer (and Miri's `MAX_SOCKETPAIR_BUFFER_CAPACITY`).
pub const BUFFER_CAPACITY_BYTES: u64 = 212_992;
/// The largest value an eventfd counter may hold.
pub const EVENTFD_COUNTER_MAX: u64 = u64::MAX - 1;

const READABLE: &str = "emulated fd readable";
const WRITABLE: &str = "emulated fd writable";

fn readable(id: u64) -> BlockReason {
    BlockReason::Subject { what: READABLE, id }
}

fn writable(id: u64) -> BlockReason {
    BlockReason::Subject { what: WRITABLE, id }
}

/// A call on a description with its one argument (a byte count or an eventfd value): what a
/// slot starts, and what a blocked thread retries.
type Retry = fn(&mut Interpreter, &mut Os, Tid, Rc<Description>, u64) -> Step<Interpreter>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PairKind {
    Pipe,
    Socket,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DescriptionKind {
    PipeRead,
    PipeWrite,
    Socket,
    Eventfd,
}

/// A thread waiting on a description, with the ledger record of its list entry.
struct Waiter {
    tid: Tid,
    record: RecordId,
}

pub(super) struct Description {
    id: u64,
    kind: DescriptionKind,
    nonblock: bool,
    creator: Tid,
    record: RecordId,
    peer: RefCell<Weak<Description>>,
    /// Bytes waiting to be read from this end (a pipe's read end, either socket).
    buffered: Cell<u64>,
    counter: Cell<u64>,
    readers: RefCell<Vec<Waiter>>,
    writers: RefCell<Vec<Waiter>>,
}

impl Description {
    fn peer(&self) -> Option<Rc<Description>> {
        self.peer.borrow().upgrade()
    }

    /// An attempt that cannot proceed: EAGAIN when non-blocking, else `None` (the thread blocks).
    fn would_block(&self) -> Option<Result<u64, Errno>> {
        self.nonblock.then_some(Err(Errno::Eagain))
    }
}

/// An fd table entry: the description and the thread that owns the handle.
pub(super) struct Handle {
    desc: Rc<Description>,
    owner: Tid,
    record: RecordId,
}

/// Byte accounting across every description, for the conservation invariant.
#[derive(Default)]
pub(super) struct IoState {
    next_description_id: u64,
    live: Vec<Weak<Description>>,
    bytes_written: u64,
    bytes_read: u64,
    bytes_discarded: u64,
}

impl Interpreter {
    fn new_description(
        &mut self,
        os: &mut Os,
        kind: DescriptionKind,
        nonblock: bool,
        creator: Tid,
        slot: u8,
    ) -> Rc<Description> {
        self.io.next_description_id += 1;
        let desc = Rc::new(Description {
            id: self.io.next_description_id,
            kind,
            nonblock,
            creator,
            record: os.track(
                self.kinds.descriptions,
                0,
                u64::from(slot),
                "emulated_description_create",
            ),
            peer: RefCell::new(Weak::new()),
            buffered: Cell::new(0),
            counter: Cell::new(0),
            readers: RefCell::new(Vec::new()),
            writers: RefCell::new(Vec::new()),
        });
        self.io.live.retain(|weak| weak.strong_count() > 0);
        self.io.live.push(Rc::downgrade(&desc));
        desc
    }

    /// Puts a handle in `slot` (closing what it held, as an assignment drops the old `OwnedFd`).
    fn install(&mut self, os: &mut Os, tid: Tid, slot: u8, desc: Rc<Description>) {
        let _ = self.close_slot(os, slot);
        let record = os.track(self.kinds.fds, 0, u64::from(slot), "emulated_fd_open");
        self.fd_table[slot as usize] = Some(Handle {
            desc,
            owner: tid,
            record,
        });
        // The thread's handles are closed when it exits: a TLS destructor tells the interpreter.
        if let Some(key) = self.thread_exit_key.filter(|_| tid != MAIN_THREAD)
            && os.tls_get(tid, key) == 0
        {
            let _ = os.tls_set(tid, key, 1, "emulated_fd_owner");
        }
    }

    pub(super) fn open_pair(
        &mut self,
        os: &mut Os,
        tid: Tid,
        kind: PairKind,
        a: u8,
        b: u8,
        nonblock: bool,
    ) {
        let (kind_a, kind_b) = match kind {
            PairKind::Pipe => (DescriptionKind::PipeRead, DescriptionKind::PipeWrite),
            PairKind::Socket => (DescriptionKind::Socket, DescriptionKind::Socket),
        };
        let end_a = self.new_description(os, kind_a, nonblock, tid, a);
        let end_b = self.new_description(os, kind_b, nonblock, tid, b);
        *end_a.peer.borrow_mut() = Rc::downgrade(&end_b);
        *end_b.peer.borrow_mut() = Rc::downgrade(&end_a);
        self.install(os, tid, a, end_a);
        self.install(os, tid, b, end_b);
        self.returns.insert(tid, Ok(0));
    }

    pub(super) fn open_eventfd(&mut self, os: &mut Os, tid: Tid, slot: u8, nonblock: bool) {
        let desc = self.new_description(os, DescriptionKind::Eventfd, nonblock, tid, slot);
        self.install(os, tid, slot, desc);
        self.returns.insert(tid, Ok(0));
    }

    fn handle(&self, slot: u8) -> Option<Rc<Description>> {
        self.fd_table[slot as usize]
            .as_ref()
            .map(|handle| Rc::clone(&handle.desc))
    }

    /// Whether a thread may wait on this description (see the module header of `interpreter`).
    ///
    /// Under the default discipline a waiter on a pipe or socket end waits for whoever holds the
    /// peer: the owner of the pair's handles, and any thread blocked on the peer (its continuation
    /// keeps the peer alive). It may wait only if all of those are runnable: the owner is a spawned
    /// thread other than itself that is not waiting, and nobody waits on the peer. A new wait-for
    /// edge then always points at a thread with none, so no cycle can form; the owner's exit closes
    /// its handles, the peer dies, and the waiter wakes with EOF or EPIPE.
    fn may_block(&self, os: &Os, desc: &Description, tid: Tid) -> bool {
        match self.blocking {
            Blocking::Linux => true,
            Blocking::OwnerRunning => {
                let owner = desc.creator;
                let owner_running = matches!(
                    os.thread_state(owner),
                    Some(ThreadState::Runnable | ThreadState::Blocked(BlockReason::Sleep(_)))
                );
                let peer_awaited = desc.peer().is_some_and(|peer| {
                    !peer.readers.borrow().is_empty() || !peer.writers.borrow().is_empty()
                });
                desc.kind != DescriptionKind::Eventfd
                    && owner != MAIN_THREAD
                    && owner != tid
                    && owner_running
                    && !peer_awaited
            }
        }
    }

    /// Drops one strong reference; the last one closes the description.
    fn release(&mut self, os: &mut Os, desc: Rc<Description>) {
        if Rc::strong_count(&desc) == 1 {
            self.close_description(os, &desc);
        }
    }

    fn close_description(&mut self, os: &mut Os, desc: &Description) {
        os.untrack(desc.record, "emulated_description_close");
        self.io.bytes_discarded += desc.buffered.get();
        // Its own waiter lists go with it. Blocked continuations hold a strong reference, so they are
        // empty here unless a continuation holds only a weak one (#5197): those threads are lost.
        let lost: Vec<Waiter> = desc
            .readers
            .take()
            .into_iter()
            .chain(desc.writers.take())
            .collect();
        for waiter in lost {
            os.untrack(waiter.record, "emulated_description_close");
        }
        // Closing notifies the peer: its readers see EOF, its writers EPIPE.
        if let Some(peer) = desc.peer() {
            wake(os, peer.readers.take(), readable(peer.id));
            wake(os, peer.writers.take(), writable(peer.id));
        }
    }

    pub(super) fn close_slot(&mut self, os: &mut Os, slot: u8) -> Result<(), Errno> {
        let handle = self.fd_table[slot as usize].take().ok_or(Errno::Ebadf)?;
        os.untrack(handle.record, "emulated_fd_close");
        self.release(os, handle.desc);
        Ok(())
    }

    /// A thread exits: the handles it owns are dropped, in slot order.
    pub(super) fn close_owned_by(&mut self, os: &mut Os, tid: Tid) {
        for slot in 0..FD_SLOTS {
            if self.fd_table[slot as usize]
                .as_ref()
                .is_some_and(|handle| handle.owner == tid)
            {
                let _ = self.close_slot(os, slot);
            }
        }
    }

    fn register(&mut self, os: &mut Os, tid: Tid, list: &RefCell<Vec<Waiter>>) {
        let record = os.track(self.kinds.waiters, 0, u64::from(tid.0), "emulated_fd_block");
        list.borrow_mut().push(Waiter { tid, record });
    }

    fn finish(
        &mut self,
        os: &mut Os,
        tid: Tid,
        desc: Rc<Description>,
        result: Result<u64, Errno>,
    ) -> Step<Self> {
        self.returns.insert(tid, result);
        self.release(os, desc);
        Step::Done
    }

    /// A call on a slot that holds no description, or on one gone by the time it retries.
    fn bad_fd(&mut self, tid: Tid) -> Step<Self> {
        self.returns.insert(tid, Err(Errno::Ebadf));
        Step::Done
    }

    /// Starts `call` on the description in `slot`; an empty slot is EBADF.
    #[inline]
    fn on_slot(&mut self, os: &mut Os, tid: Tid, slot: u8, arg: u64, call: Retry) -> Step<Self> {
        match self.handle(slot) {
            Some(desc) => call(self, os, tid, desc, arg),
            None => self.bad_fd(tid),
        }
    }

    // ---- read ----

    pub(super) fn read(&mut self, os: &mut Os, tid: Tid, slot: u8, bytes: u64) -> Step<Self> {
        self.on_slot(os, tid, slot, bytes, Self::read_on)
    }

    /// Reads, or records the thread as a reader and blocks; the continuation retries.
    fn read_on(&mut self, os: &mut Os, tid: Tid, desc: Rc<Description>, bytes: u64) -> Step<Self> {
        if let Some(result) = self.try_read(os, &desc, bytes) {
            return self.finish(os, tid, desc, result);
        }
        if !self.may_block(os, &desc, tid) {
            return self.finish(os, tid, desc, Err(Errno::Eagain));
        }
        self.register(os, tid, &desc.readers);
        let reason = readable(desc.id);
        if self.blocked_read_weak_ref {
            // The defect: only a weak reference survives in the callback, so the table handle is
            // the description's last owner.
            let weak = Rc::downgrade(&desc);
            self.release(os, desc);
            return Step::block(
                reason,
                move |interpreter: &mut Interpreter, os, tid| match weak.upgrade() {
                    Some(desc) => interpreter.read_on(os, tid, desc, bytes),
                    None => interpreter.bad_fd(tid),
                },
            );
        }
        Step::block(reason, move |interpreter: &mut Interpreter, os, tid| {
            interpreter.read_on(os, tid, desc, bytes)
        })
    }

    /// One attempt: `None` means it would block.
    fn try_read(
        &mut self,
        os: &mut Os,
        desc: &Description,
        bytes: u64,
    ) -> Option<Result<u64, Errno>> {
        match desc.kind {
            DescriptionKind::PipeWrite => Some(Err(Errno::Ebadf)),
            DescriptionKind::Eventfd => {
                if bytes < 8 {
                    return Some(Err(Errno::Einval));
                }
                let value = desc.counter.replace(0);
                if value > 0 {
                    wake(os, desc.writers.take(), writable(desc.id));
                    return Some(Ok(value));
                }
                desc.would_block()
            }
            DescriptionKind::PipeRead | DescriptionKind::Socket => {
                if bytes == 0 {
                    return Some(Ok(0));
                }
                let buffered = desc.buffered.get();
                if buffered > 0 {
                    let count = bytes.min(buffered);
                    desc.buffered.set(buffered - count);
                    self.io.bytes_read += count;
                    // Space was freed: writers into this buffer wait on the peer's writer list.
                    if let Some(peer) = desc.peer() {
                        wake(os, peer.writers.take(), writable(peer.id));
                    }
                    return Some(Ok(count));
                }
                if desc.peer().is_none() {
                    return Some(Ok(0));
                }
                desc.would_block()
            }
        }
    }

    // ---- write ----

    pub(super) fn write(&mut self, os: &mut Os, tid: Tid, slot: u8, bytes: u64) -> Step<Self> {
        self.on_slot(os, tid, slot, bytes, Self::write_on)
    }

    fn write_on(&mut self, os: &mut Os, tid: Tid, desc: Rc<Description>, bytes: u64) -> Step<Self> {
        let attempt = self.try_write(os, &desc, bytes);
        self.write_or_block(os, tid, desc, bytes, attempt, Self::write_on)
    }

    /// Ends a write with `attempt`'s result, or with EAGAIN when the thread may not block, or
    /// records the thread as a writer and blocks it until `retry` runs again.
    #[inline(always)]
    fn write_or_block(
        &mut self,
        os: &mut Os,
        tid: Tid,
        desc: Rc<Description>,
        arg: u64,
        attempt: Option<Result<u64, Errno>>,
        retry: Retry,
    ) -> Step<Self> {
        if let Some(result) = attempt {
            return self.finish(os, tid, desc, result);
        }
        if !self.may_block(os, &desc, tid) {
            return self.finish(os, tid, desc, Err(Errno::Eagain));
        }
        self.register(os, tid, &desc.writers);
        Step::block(
            writable(desc.id),
            move |interpreter: &mut Interpreter, os, tid| retry(interpreter, os, tid, desc, arg),
        )
    }

    fn try_write(
        &mut self,
        os: &mut Os,
        desc: &Description,
        bytes: u64,
    ) -> Option<Result<u64, Errno>> {
        match desc.kind {
            DescriptionKind::PipeRead => Some(Err(Errno::Ebadf)),
            DescriptionKind::Eventfd => Some(Err(Errno::Einval)),
            DescriptionKind::PipeWrite | DescriptionKind::Socket => {
                if bytes == 0 {
                    return Some(Ok(0));
                }
                let Some(peer) = desc.peer() else {
                    return Some(Err(Errno::Epipe));
                };
                let space = BUFFER_CAPACITY_BYTES - peer.buffered.get();
                if space == 0 {
                    return desc.would_block();
                }
                let count = bytes.min(space);
                peer.buffered.set(peer.buffered.get() + count);
                self.io.bytes_written += count;
                wake(os, peer.readers.take(), readable(peer.id));
                Some(Ok(count))
            }
        }
    }

    // ---- eventfd write ----

    pub(super) fn eventfd_write(
        &mut self,
        os: &mut Os,
        tid: Tid,
        slot: u8,
        value: u64,
    ) -> Step<Self> {
        self.on_slot(os, tid, slot, value, Self::eventfd_write_on)
    }

    fn eventfd_write_on(
        &mut self,
        os: &mut Os,
        tid: Tid,
        desc: Rc<Description>,
        value: u64,
    ) -> Step<Self> {
        let attempt = if desc.kind != DescriptionKind::Eventfd || value == u64::MAX {
            Some(Err(Errno::Einval))
        } else if desc.counter.get() > EVENTFD_COUNTER_MAX - value {
            desc.would_block()
        } else {
            desc.counter.set(desc.counter.get() + value);
            wake(os, desc.readers.take(), readable(desc.id));
            Some(Ok(8))
        };
        self.write_or_block(os, tid, desc, value, attempt, Self::eventfd_write_on)
    }

    // ---- invariants ----

    /// Bytes are conserved (written − read − discarded = buffered), and every waiter list names
    /// only threads blocked on that very description.
    pub(super) fn io_invariants(&self, os: &Os) -> Vec<String> {
        let mut violations = Vec::new();
        let live: Vec<Rc<Description>> = self.io.live.iter().filter_map(Weak::upgrade).collect();
        let buffered: u64 = live.iter().map(|desc| desc.buffered.get()).sum();
        let io = &self.io;
        if io.bytes_written != io.bytes_read + io.bytes_discarded + buffered {
            violations.push(format!(
                "emulated fds lost or invented bytes: {} written, {} read, {} discarded at close, but {buffered} buffered",
                io.bytes_written, io.bytes_read, io.bytes_discarded
            ));
        }
        for desc in &live {
            for (list, reason) in [
                (&desc.readers, readable(desc.id)),
                (&desc.writers, writable(desc.id)),
            ] {
                for waiter in list.borrow().iter() {
                    if os.thread_state(waiter.tid) != Some(&ThreadState::Blocked(reason.clone())) {
                        violations.push(format!(
                            "the waiter list of emulated description #{} names thread {}, which is not {reason}",
                            desc.id, waiter.tid.0
                        ));
                    }
                }
            }
        }
        violations
    }
}

/// Takes a waiter list and unblocks every thread on it; each retries on its own.
fn wake(os: &mut Os, waiters: Vec<Waiter>, reason: BlockReason) {
    for waiter in waiters {
        os.untrack(waiter.record, "emulated_fd_wake");
        os.unblock(waiter.tid, &reason, "emulated_fd_wake");
    }
}
