//! Threads: spawn, block, unblock, exit, join, and a virtual clock for sleeps.
//!
//! Blocking is data (as in Miri's `BlockReason` plus callback): a thread blocks with a reason, and
//! whoever makes progress unblocks it naming the reason it expects; a mismatch is an invariant
//! finding, since it means a waker and a waiter disagree about what was awaited. The continuation
//! that runs on wake-up belongs to the runner, which holds it next to the subject it mutates.
//!
//! Fidelity: threads are logical; the subject's op list or continuation is the thread's code. A
//! thread is runnable, blocked (with its reason) or exited. Thread 0 is the main thread and exists
//! for the whole process. An exited thread holds its `thread` record until it is joined, as with
//! pthreads (a thread that is neither joined nor detached leaks).

use std::borrow::Cow;

use super::locks::LockId;
use super::resources::{BuiltinKinds, RecordId};
use super::{Errno, Io, Os, Site};
use crate::faults::FaultKind;
use crate::trace::EventKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid(pub u32);

pub const MAIN_THREAD: Tid = Tid(0);

/// Why a thread waits. Unblocking must name the same reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockReason {
    /// Waiting for data (or EOF) on a description.
    FdReadable(u64),
    /// Waiting for room (or the peer's end) on a description.
    FdWritable(u64),
    Join(Tid),
    Lock(LockId),
    /// Sleeping until the virtual clock reaches this tick.
    Sleep(u64),
    /// A subject-defined wait (an interpreter's emulated fd, say).
    Subject {
        what: &'static str,
        id: u64,
    },
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockReason::FdReadable(id) => {
                write!(f, "waiting for description #{id} to become readable")
            }
            BlockReason::FdWritable(id) => {
                write!(f, "waiting for description #{id} to become writable")
            }
            BlockReason::Join(tid) => write!(f, "joining thread {}", tid.0),
            BlockReason::Lock(lock) => write!(f, "waiting for lock #{}", lock.index),
            BlockReason::Sleep(tick) => write!(f, "sleeping until tick {tick}"),
            BlockReason::Subject { what, id } => write!(f, "waiting for {what} #{id}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThreadState {
    Runnable,
    Blocked(BlockReason),
    Exited,
}

#[derive(Debug)]
pub(crate) struct Thread {
    /// Borrowed for the main thread, which every fresh OS has: no allocation per run for it.
    pub(crate) name: Cow<'static, str>,
    pub(crate) state: ThreadState,
    record: Option<RecordId>,
    waiter_record: Option<RecordId>,
    joiners: Vec<Tid>,
    joined: bool,
}

pub(crate) struct ThreadsState {
    kinds: BuiltinKinds,
    pub(crate) threads: Vec<Thread>,
    /// Bumped whenever a thread is spawned or changes state, so that a reader may keep what it
    /// derived from the states (the runner's set of runnable threads) until they change.
    states_version: u64,
    /// Threads spawned and not yet joined (the main thread excluded): what `threads_max` bounds.
    unjoined: u64,
    now_tick: u64,
}

impl ThreadsState {
    pub(crate) fn new(kinds: BuiltinKinds) -> ThreadsState {
        let main = Thread {
            name: Cow::Borrowed("main"),
            state: ThreadState::Runnable,
            record: None,
            waiter_record: None,
            joiners: Vec::new(),
            joined: false,
        };
        ThreadsState {
            kinds,
            threads: vec![main],
            states_version: 0,
            unjoined: 0,
            now_tick: 0,
        }
    }
}

impl Os {
    /// Creates a runnable thread. Fails with EAGAIN by fault injection or at `threads_max`.
    pub fn spawn_thread(&mut self, name: &str, site: Site) -> Result<Tid, Errno> {
        if self.inject(FaultKind::Spawn, site) {
            return Err(Errno::Eagain);
        }
        if self.threads.unjoined >= self.limits.threads_max {
            self.budget("threads_max", self.limits.threads_max, site);
            return Err(Errno::Eagain);
        }
        let here = self.here(site);
        let record = self
            .resources
            .acquire(self.threads.kinds.thread, 1, 0, 0, here);
        let tid = Tid(self.threads.threads.len() as u32);
        self.threads.unjoined += 1;
        self.threads.threads.push(Thread {
            name: Cow::Owned(name.to_string()),
            state: ThreadState::Runnable,
            record: Some(record),
            waiter_record: None,
            joiners: Vec::new(),
            joined: false,
        });
        self.threads.states_version += 1;
        self.syscall("threads.spawn", u64::from(tid.0), 0);
        Ok(tid)
    }

    pub fn thread_state(&self, tid: Tid) -> Option<&ThreadState> {
        self.threads.threads.get(tid.0 as usize).map(|t| &t.state)
    }

    pub fn thread_name(&self, tid: Tid) -> &str {
        self.threads
            .threads
            .get(tid.0 as usize)
            .map_or("?", |t| &t.name)
    }

    pub fn thread_count(&self) -> usize {
        self.threads.threads.len()
    }

    /// Marks `tid` blocked. The caller has already recorded it wherever its waker will look.
    pub fn block(&mut self, tid: Tid, reason: BlockReason, site: Site) {
        let here = self.here(site);
        let waiter =
            self.resources
                .acquire(self.threads.kinds.waiter, 1, 0, u64::from(tid.0), here);
        let thread = &mut self.threads.threads[tid.0 as usize];
        debug_assert_eq!(
            thread.state,
            ThreadState::Runnable,
            "only a running thread blocks"
        );
        thread.state = ThreadState::Blocked(reason);
        thread.waiter_record = Some(waiter);
        self.threads.states_version += 1;
        self.trace.event(EventKind::Block, u64::from(tid.0), 0);
    }

    /// Makes a blocked thread runnable. `expected` must be the reason it blocked with; a mismatch
    /// (or a thread that is not blocked) is an invariant finding and the thread stays as it is.
    pub fn unblock(&mut self, tid: Tid, expected: &BlockReason, site: Site) -> bool {
        let Some(thread) = self.threads.threads.get_mut(tid.0 as usize) else {
            self.unblock_refused(tid, expected, site);
            return false;
        };
        match &thread.state {
            ThreadState::Blocked(reason) if reason == expected => {
                thread.state = ThreadState::Runnable;
                if let Some(waiter) = thread.waiter_record.take() {
                    self.resources.release_id(waiter);
                }
                self.threads.states_version += 1;
                self.trace.event(EventKind::Unblock, u64::from(tid.0), 0);
                true
            }
            _ => {
                self.unblock_refused(tid, expected, site);
                false
            }
        }
    }

    /// Reports an unblock of a thread that does not exist or is not blocked for `expected`.
    #[cold]
    fn unblock_refused(&mut self, tid: Tid, expected: &BlockReason, site: Site) {
        let (resource, headline) = match self.threads.threads.get(tid.0 as usize) {
            None => (
                "thread",
                format!("unblock of thread {} that does not exist", tid.0),
            ),
            Some(thread) => (
                "waiter",
                format!(
                    "unblock of thread {} expecting `{expected}`, but its state is {:?}",
                    tid.0, thread.state
                ),
            ),
        };
        self.invariant(resource, site, headline);
    }

    /// Ends a thread: wakes its joiners. TLS destructors have run before this (the runner does it).
    pub fn exit_thread(&mut self, tid: Tid, site: Site) {
        let thread = &mut self.threads.threads[tid.0 as usize];
        thread.state = ThreadState::Exited;
        if let Some(waiter) = thread.waiter_record.take() {
            self.resources.release_id(waiter);
        }
        let joiners = std::mem::take(&mut thread.joiners);
        self.threads.states_version += 1;
        self.syscall("threads.exit", u64::from(tid.0), 0);
        for joiner in joiners {
            self.unblock(joiner, &BlockReason::Join(tid), site);
        }
    }

    /// Joins `target` from `tid`: ready when the target has exited (its record is released), else
    /// blocks with `Join(target)`.
    pub fn join(&mut self, tid: Tid, target: Tid, site: Site) -> Io<()> {
        if target == tid
            || target == super::threads::MAIN_THREAD
            || target.0 as usize >= self.threads.threads.len()
        {
            self.invariant(
                "thread",
                site,
                format!(
                    "join of thread {} from thread {}: not joinable",
                    target.0, tid.0
                ),
            );
            return Io::err(Errno::Einval);
        }
        let thread = &mut self.threads.threads[target.0 as usize];
        if thread.joined {
            self.invariant("thread", site, format!("thread {} joined twice", target.0));
            return Io::err(Errno::Einval);
        }
        if thread.state == ThreadState::Exited {
            thread.joined = true;
            self.threads.unjoined -= 1;
            if let Some(record) = thread.record.take() {
                self.resources.release_id(record);
            }
            self.syscall("threads.join", u64::from(target.0), 0);
            return Io::ok(());
        }
        thread.joiners.push(tid);
        Io::Block(BlockReason::Join(target))
    }

    /// Runnable threads in ascending order, into `out` (cleared first).
    pub fn runnable_threads(&self, out: &mut Vec<u32>) {
        out.clear();
        out.extend(
            self.threads
                .threads
                .iter()
                .enumerate()
                .filter(|(_, t)| t.state == ThreadState::Runnable)
                .map(|(i, _)| i as u32),
        );
    }

    /// A number that changes whenever a thread is spawned or changes state.
    #[inline]
    pub fn thread_states_version(&self) -> u64 {
        self.threads.states_version
    }

    /// Every blocked thread with its reason, for a deadlock report.
    pub fn blocked_threads(&self) -> Vec<(Tid, String, BlockReason)> {
        self.threads
            .threads
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match &t.state {
                ThreadState::Blocked(reason) => {
                    Some((Tid(i as u32), t.name.to_string(), reason.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Blocks `tid` until the virtual clock has advanced by `ticks`.
    pub fn sleep(&mut self, tid: Tid, ticks: u64, site: Site) -> BlockReason {
        let reason = BlockReason::Sleep(self.threads.now_tick + ticks.max(1));
        self.block(tid, reason.clone(), site);
        reason
    }

    /// With no runnable thread, advances the clock to the earliest sleeper and wakes every thread
    /// due then. Returns false when nobody sleeps (so the run is finished or deadlocked).
    pub fn advance_timers(&mut self) -> bool {
        let due = self
            .threads
            .threads
            .iter()
            .filter_map(|t| match t.state {
                ThreadState::Blocked(BlockReason::Sleep(tick)) => Some(tick),
                _ => None,
            })
            .min();
        let Some(due) = due else { return false };
        self.threads.now_tick = due;
        let sleepers: Vec<Tid> = self
            .threads
            .threads
            .iter()
            .enumerate()
            .filter(|(_, t)| t.state == ThreadState::Blocked(BlockReason::Sleep(due)))
            .map(|(i, _)| Tid(i as u32))
            .collect();
        for tid in sleepers {
            self.unblock(tid, &BlockReason::Sleep(due), "timer");
        }
        true
    }

    pub fn now_tick(&self) -> u64 {
        self.threads.now_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::FindingKind;

    #[test]
    fn spawn_exit_join_balances_and_join_blocks_until_exit() {
        let mut os = Os::for_tests(1);
        let t = os.spawn_thread("worker", "t").unwrap();
        assert_eq!(
            os.join(MAIN_THREAD, t, "t"),
            Io::Block(BlockReason::Join(t))
        );
        os.block(MAIN_THREAD, BlockReason::Join(t), "t");
        let mut runnable = Vec::new();
        os.runnable_threads(&mut runnable);
        assert_eq!(runnable, vec![t.0]);
        os.exit_thread(t, "t");
        os.runnable_threads(&mut runnable);
        assert_eq!(runnable, vec![0], "the joiner woke");
        assert_eq!(os.join(MAIN_THREAD, t, "t"), Io::ok(()));
        assert_eq!(os.resources().live_records(), 0);
        assert_eq!(
            os.join(MAIN_THREAD, t, "t"),
            Io::err(Errno::Einval),
            "joined twice"
        );
    }

    #[test]
    fn every_change_of_a_thread_state_changes_the_version_and_a_refused_unblock_does_not() {
        let mut os = Os::for_tests(1);
        let mut last = os.thread_states_version();
        let mut changed = |os: &Os| {
            let now = os.thread_states_version();
            let changed = now != last;
            last = now;
            changed
        };
        let t = os.spawn_thread("w", "t").unwrap();
        assert!(changed(&os), "spawn");
        os.block(
            t,
            BlockReason::Lock(LockId {
                index: 0,
                generation: 0,
            }),
            "t",
        );
        assert!(changed(&os), "block");
        assert!(!os.unblock(t, &BlockReason::FdReadable(1), "t"));
        assert!(
            !changed(&os),
            "an unblock with the wrong reason changes nothing"
        );
        assert!(os.unblock(
            t,
            &BlockReason::Lock(LockId {
                index: 0,
                generation: 0
            }),
            "t"
        ));
        assert!(changed(&os), "unblock");
        os.exit_thread(t, "t");
        assert!(changed(&os), "exit");
    }

    #[test]
    fn unblock_with_the_wrong_reason_is_an_invariant() {
        let mut os = Os::for_tests(1);
        let t = os.spawn_thread("w", "t").unwrap();
        os.block(t, BlockReason::FdReadable(3), "t");
        assert!(!os.unblock(t, &BlockReason::FdWritable(3), "waker"));
        assert_eq!(
            os.thread_state(t),
            Some(&ThreadState::Blocked(BlockReason::FdReadable(3)))
        );
        assert!(os.unblock(t, &BlockReason::FdReadable(3), "waker"));
        assert_eq!(os.findings().len(), 1);
        assert_eq!(os.findings()[0].kind, FindingKind::Invariant);
    }

    #[test]
    fn timers_wake_sleepers_in_tick_order() {
        let mut os = Os::for_tests(1);
        let a = os.spawn_thread("a", "t").unwrap();
        let b = os.spawn_thread("b", "t").unwrap();
        os.sleep(a, 5, "t");
        os.sleep(b, 2, "t");
        os.block(MAIN_THREAD, BlockReason::Join(a), "t");
        assert!(os.advance_timers());
        assert_eq!(os.now_tick(), 2);
        assert_eq!(os.thread_state(b), Some(&ThreadState::Runnable));
        assert!(matches!(os.thread_state(a), Some(ThreadState::Blocked(_))));
        assert!(os.advance_timers());
        assert!(!os.advance_timers(), "nobody sleeps any more");
    }
}
