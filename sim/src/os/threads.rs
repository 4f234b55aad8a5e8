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

use super::locks::LockId;
use super::resources::{KINDS, RecordId, Resources, recycled};
use super::{Errno, Io, Os, Position, Site};
use crate::faults::FaultKind;
use crate::trace::{EventKind, Trace};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid(pub u32);

/// The longest sleep, in ticks of the virtual clock: a scenario's `sleep` of more is refused where
/// it is written, and `Os::sleep` cuts a longer one to it. It is the ceiling of the allocator's
/// `purge_delay`, the longest delay any subject's configuration takes, so a sleep can still
/// outlast every delay a subject waits on (the allocator asserts it where it declares the delay).
pub const SLEEP_TICKS_MAX: u64 = 1_000_000_000;

/// Where the virtual clock stops. The clock advances only when sleepers wake, by at most
/// `SLEEP_TICKS_MAX` each time, and each wake-up ends a sleep some step began, so a run of at
/// most `STEPS_MAX_CEILING` steps (every run a scenario file can ask for: `LIMIT_RANGES`) never
/// gets past this tick. The stop itself is for a run given a larger `steps_max` by code: it
/// keeps the promise subjects rely on, that a deadline of now plus a delay of up to
/// `u64::MAX - CLOCK_TICKS_MAX` (about 1.8e19 ticks) never overflows, so their arithmetic on
/// `now_tick` needs no saturation.
pub const CLOCK_TICKS_MAX: u64 = super::STEPS_MAX_CEILING * SLEEP_TICKS_MAX;

// The sleep `sleep` and `advance_timers` add to the clock fits, and the room left above the clock
// is a hundred times the clock's whole range.
const _: () = assert!(CLOCK_TICKS_MAX <= u64::MAX - SLEEP_TICKS_MAX);
const _: () = assert!(CLOCK_TICKS_MAX <= (u64::MAX - CLOCK_TICKS_MAX) / 100);

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

/// A set of threads, one bit each. The OS keeps the set of runnable threads as one and the runner
/// the set of threads with work left, so that the threads that can step are the intersection of
/// the two: a few word operations, where looking at every thread's state and context was most
/// of the cost of telling the scheduler what it may choose.
#[derive(Clone, Debug, Default)]
pub struct ThreadSet {
    /// Threads 0 to 63: all of them in most runs, so one word needs no indirection.
    first: u64,
    /// Threads from 64 on, 64 to a word.
    rest: Vec<u64>,
}

impl ThreadSet {
    #[inline]
    pub fn insert(&mut self, tid: Tid) {
        if tid.0 < 64 {
            self.first |= bit(tid);
        } else {
            self.insert_past_first(tid);
        }
    }

    #[cold]
    fn insert_past_first(&mut self, tid: Tid) {
        let word = rest_word(tid);
        if self.rest.len() <= word {
            self.rest.resize(word + 1, 0);
        }
        self.rest[word] |= bit(tid);
    }

    #[inline]
    pub fn remove(&mut self, tid: Tid) {
        if tid.0 < 64 {
            self.first &= !bit(tid);
        } else if let Some(word) = self.rest.get_mut(rest_word(tid)) {
            *word &= !bit(tid);
        }
    }

    pub fn contains(&self, tid: Tid) -> bool {
        if tid.0 < 64 {
            self.first & bit(tid) != 0
        } else {
            let word = self.rest.get(rest_word(tid));
            word.is_some_and(|word| word & bit(tid) != 0)
        }
    }

    pub fn clear(&mut self) {
        self.first = 0;
        self.rest.clear();
    }

    /// Into `out` (cleared first), ascending: the threads in both `self` and `other`.
    #[inline]
    pub fn intersection_into(&self, other: &ThreadSet, out: &mut Vec<u32>) {
        out.clear();
        push_members(self.first & other.first, 0, out);
        // Most runs have no thread past the first word: one check then, not the setting up of
        // a walk over none.
        if self.rest.is_empty() {
            return;
        }
        for (index, (a, b)) in self.rest.iter().zip(&other.rest).enumerate() {
            push_members(a & b, 64 * (index as u32 + 1), out);
        }
    }
}

/// The bit of `tid` in its word.
fn bit(tid: Tid) -> u64 {
    1 << (tid.0 % 64)
}

/// The word of `rest` that holds `tid` (64 or more).
fn rest_word(tid: Tid) -> usize {
    (tid.0 as usize - 64) / 64
}

/// Pushes the thread of every bit set in `word`, which holds threads `first` to `first + 63`.
#[inline(always)]
fn push_members(mut word: u64, first: u32, out: &mut Vec<u32>) {
    while word != 0 {
        out.push(first + word.trailing_zeros());
        word &= word - 1;
    }
}

#[derive(Debug)]
pub(crate) struct Thread {
    /// Where the thread's name is in `ThreadsState::names`; `None` for the main thread, which
    /// every fresh OS has and which is named "main" without an allocation per run.
    name: Option<u32>,
    pub(crate) state: ThreadState,
    record: Option<RecordId>,
    /// The `waiter` record it holds while it is blocked, and only then (`block` acquires it,
    /// the wake-up or the exit releases it): its state says whether there is one, so that a
    /// wake-up releases it with no test of an `Option` of its own. `RecordId::NONE` before the
    /// thread first blocks.
    waiter_record: RecordId,
    joined: bool,
}

/// Threads a fresh OS makes room for: a run with threads spawns a few, and the list grown from
/// the main thread alone was reallocated twice on the way to them.
const THREADS_RESERVED: usize = 8;

/// The list of threads of a dropped `ThreadsState`, emptied, for the next one made on this
/// thread (see `Os::new`).
#[derive(Default)]
pub(crate) struct ThreadsStorage {
    threads: Vec<Thread>,
}

pub(crate) struct ThreadsState {
    pub(crate) threads: Vec<Thread>,
    /// Every name a spawned thread has had, once each. A run spawns a thread per repetition
    /// under the few names its scenario declares, and a copy of the name per thread was an
    /// allocation (and a free) per spawn.
    names: Vec<String>,
    /// Joins waiting for their thread to exit, as (thread joined, joiner), in the order they
    /// began: its exit wakes its joiners in that order. One list for the process rather than one
    /// per thread, which was an allocation per blocked join.
    joins: Vec<(Tid, Tid)>,
    /// The threads whose state is `Runnable`, kept with every change of state.
    pub(crate) runnable: ThreadSet,
    /// Threads spawned and not yet joined (the main thread excluded): what `threads_max` bounds.
    unjoined: u64,
    /// The threads whose state is `Blocked`, kept with every change of state: with none, the
    /// runner's end-of-list checks (sleepers to wake, a deadlock) need no walk over every thread
    /// the run has spawned.
    blocked: u32,
    now_tick: u64,
}

impl ThreadsState {
    /// A fresh state, in the lists `storage` holds (emptied by `keep_storage`), if it holds any:
    /// see `Os::new`.
    pub(crate) fn new_in(storage: &mut ThreadsStorage) -> ThreadsState {
        let main = Thread {
            name: None,
            state: ThreadState::Runnable,
            record: None,
            waiter_record: RecordId::NONE,
            joined: false,
        };
        let mut threads = std::mem::take(&mut storage.threads);
        threads.reserve(THREADS_RESERVED);
        threads.push(main);
        let mut runnable = ThreadSet::default();
        runnable.insert(MAIN_THREAD);
        ThreadsState {
            threads,
            names: Vec::new(),
            joins: Vec::new(),
            runnable,
            unjoined: 0,
            blocked: 0,
            now_tick: 0,
        }
    }

    /// Empties the list of threads and hands it to `storage`, for the next `new_in`.
    pub(crate) fn keep_storage(&mut self, storage: &mut ThreadsStorage) {
        storage.threads = recycled(&mut self.threads);
    }

    /// Where `name` is in `names`, added if it is new.
    fn name_index(&mut self, name: &str) -> u32 {
        let index = match self.names.iter().position(|known| known == name) {
            Some(index) => index,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        };
        index as u32
    }

    fn name(&self, thread: &Thread) -> &str {
        thread
            .name
            .map_or("main", |index| &self.names[index as usize])
    }

    /// Makes `tid` runnable if it is blocked for `expected` (releasing its waiter record,
    /// recording the wake-up in the trace and bumping the OS's `changes_version`); false, with
    /// nothing changed, if it does not exist or is not blocked for that reason, which the caller
    /// reports (`Os::unblock_refused`). It takes the ledger, the trace and the version apart from
    /// the rest of the OS, so that a lock's release can wake its waiters while it holds the lock
    /// (see `Os::lock_release`).
    #[inline(always)]
    pub(crate) fn wake(
        &mut self,
        tid: Tid,
        expected: &BlockReason,
        resources: &mut Resources,
        trace: &mut Trace,
        changes_version: &mut u64,
    ) -> bool {
        let Some(thread) = self.threads.get_mut(tid.0 as usize) else {
            return false;
        };
        match &thread.state {
            ThreadState::Blocked(reason) if reason == expected => {
                thread.state = ThreadState::Runnable;
                self.blocked -= 1;
                resources.release_held(thread.waiter_record);
                self.runnable.insert(tid);
                *changes_version += 1;
                trace.event(EventKind::Unblock, u64::from(tid.0), 0);
                true
            }
            _ => false,
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
        let record = self.resources.acquire(KINDS.thread, 1, 0, 0, here);
        let tid = Tid(self.threads.threads.len() as u32);
        self.threads.unjoined += 1;
        let name = self.threads.name_index(name);
        self.threads.threads.push(Thread {
            name: Some(name),
            state: ThreadState::Runnable,
            record: Some(record),
            waiter_record: RecordId::NONE,
            joined: false,
        });
        self.threads.runnable.insert(tid);
        self.changes_version += 1;
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
            .map_or("?", |t| self.threads.name(t))
    }

    pub fn thread_count(&self) -> usize {
        self.threads.threads.len()
    }

    /// Marks `tid` blocked. The caller has already recorded it wherever its waker will look.
    ///
    /// Inlined into the runner, which blocks a thread on every contended lock: out of line, the
    /// call (its prologue and epilogue, the copy of the reason) was a fifth of each block's
    /// instructions. A plain `#[inline]` left it out of line.
    #[inline(always)]
    pub fn block(&mut self, tid: Tid, reason: BlockReason, site: Site) {
        let key = u64::from(tid.0);
        let waiter = (self.resources).acquire_at(KINDS.waiter, 1, 0, key, &self.position, site);
        let thread = &mut self.threads.threads[tid.0 as usize];
        debug_assert_eq!(
            thread.state,
            ThreadState::Runnable,
            "only a running thread blocks"
        );
        if !matches!(thread.state, ThreadState::Blocked(_)) {
            self.threads.blocked += 1;
        }
        thread.state = ThreadState::Blocked(reason);
        thread.waiter_record = waiter;
        self.threads.runnable.remove(tid);
        self.changes_version += 1;
        self.trace.event(EventKind::Block, u64::from(tid.0), 0);
    }

    /// Makes a blocked thread runnable. `expected` must be the reason it blocked with; a mismatch
    /// (or a thread that is not blocked) is an invariant finding and the thread stays as it is.
    pub fn unblock(&mut self, tid: Tid, expected: &BlockReason, site: Site) -> bool {
        self.unblock_inlined(tid, expected, site)
    }

    /// `unblock`, always inlined: for a lock's release, which wakes every waiter of a contended
    /// lock, where the call's prologue and epilogue were a sixth of each wake-up's instructions.
    #[inline(always)]
    pub(crate) fn unblock_inlined(&mut self, tid: Tid, expected: &BlockReason, site: Site) -> bool {
        let woke = self.threads.wake(
            tid,
            expected,
            &mut self.resources,
            &mut self.trace,
            &mut self.changes_version,
        );
        if !woke {
            self.unblock_refused(tid, expected, site);
        }
        woke
    }

    /// Reports an unblock of a thread that does not exist or is not blocked for `expected`.
    #[cold]
    pub(crate) fn unblock_refused(&mut self, tid: Tid, expected: &BlockReason, site: Site) {
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
        if matches!(thread.state, ThreadState::Blocked(_)) {
            self.threads.blocked -= 1;
            self.resources.release_held(thread.waiter_record);
        }
        thread.state = ThreadState::Exited;
        self.threads.runnable.remove(tid);
        self.changes_version += 1;
        self.syscall("threads.exit", u64::from(tid.0), 0);
        // Its joiners, in the order they joined.
        let mut index = 0;
        while index < self.threads.joins.len() {
            let (joined, joiner) = self.threads.joins[index];
            if joined == tid {
                self.threads.joins.remove(index);
                self.unblock(joiner, &BlockReason::Join(tid), site);
            } else {
                index += 1;
            }
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
        self.threads.joins.push((target, tid));
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

    /// Every blocked thread with its reason, for a deadlock report.
    pub fn blocked_threads(&self) -> Vec<(Tid, String, BlockReason)> {
        if self.threads.blocked == 0 {
            return Vec::new();
        }
        self.threads
            .threads
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match &t.state {
                ThreadState::Blocked(reason) => Some((
                    Tid(i as u32),
                    self.threads.name(t).to_string(),
                    reason.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    /// Where the blocked thread `tid` blocked (the op or continuation it ran), from its waiter
    /// record; `None` for a thread that is not blocked. The position alone: the record's site is
    /// the runner's, which blocks the thread for whichever call returned `Io::Block`.
    pub fn blocked_at(&self, tid: Tid) -> Option<Position> {
        let thread = self.threads.threads.get(tid.0 as usize)?;
        if !matches!(thread.state, ThreadState::Blocked(_)) {
            return None;
        }
        Some(self.resources.get(thread.waiter_record)?.position)
    }

    /// Blocks `tid` until the virtual clock has advanced by `ticks`: at least 1, and at most
    /// `SLEEP_TICKS_MAX`, which a longer sleep is cut to. Cut rather than refused, as Linux's
    /// `nanosleep` takes any `tv_sec` and cuts the wait to the longest its clock counts
    /// (`KTIME_MAX`) rather than failing: a subject modelling a sleep "forever" passes a huge
    /// value and means exactly that, and a sleep of `SLEEP_TICKS_MAX` already outlasts every
    /// delay a subject waits on. (A scenario's `sleep` of more is refused at the parser, which
    /// can say so where it is written.) No sum here overflows: the clock is at most
    /// `CLOCK_TICKS_MAX`, far below `u64::MAX - SLEEP_TICKS_MAX`.
    pub fn sleep(&mut self, tid: Tid, ticks: u64, site: Site) -> BlockReason {
        let reason = BlockReason::Sleep(self.threads.now_tick + ticks.clamp(1, SLEEP_TICKS_MAX));
        self.block(tid, reason.clone(), site);
        reason
    }

    /// With no runnable thread, advances the clock to the earliest sleeper and wakes every thread
    /// due then. Returns false when nobody sleeps (so the run is finished or deadlocked).
    pub fn advance_timers(&mut self) -> bool {
        if self.threads.blocked == 0 {
            return false;
        }
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
        // A tick `sleep` made is at most `SLEEP_TICKS_MAX` ahead. A subject that blocks with a
        // `BlockReason::Sleep` of its own making may name any tick: one already past leaves the
        // clock where it is (time never runs backwards), and one further ahead wakes its sleepers
        // `SLEEP_TICKS_MAX` from now, as `sleep` would have, so that every advance of the clock
        // is bounded as the proof of `CLOCK_TICKS_MAX` needs.
        let now = self.threads.now_tick;
        self.threads.now_tick = due.clamp(now, now + SLEEP_TICKS_MAX).min(CLOCK_TICKS_MAX);
        let woken = BlockReason::Sleep(due);
        // By index, in ascending order, without a list of the sleepers: waking a thread spawns
        // none, so the indices stay valid.
        for index in 0..self.threads.threads.len() {
            let state = &self.threads.threads[index].state;
            if matches!(state, ThreadState::Blocked(BlockReason::Sleep(tick)) if *tick == due) {
                self.unblock(Tid(index as u32), &woken, "timer");
            }
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
    fn an_exit_wakes_its_own_joiners_only() {
        let mut os = Os::for_tests(1);
        let a = os.spawn_thread("a", "t").unwrap();
        let b = os.spawn_thread("b", "t").unwrap();
        let c = os.spawn_thread("c", "t").unwrap();
        // Main and `c` join `a`; `a` joins `b`.
        for (joiner, joined) in [(MAIN_THREAD, a), (a, b), (c, a)] {
            assert_eq!(
                os.join(joiner, joined, "t"),
                Io::Block(BlockReason::Join(joined))
            );
            os.block(joiner, BlockReason::Join(joined), "t");
        }
        let mut runnable = Vec::new();
        os.runnable_threads(&mut runnable);
        assert_eq!(runnable, vec![b.0]);
        os.exit_thread(b, "t");
        os.runnable_threads(&mut runnable);
        assert_eq!(runnable, vec![a.0], "only b's joiner woke");
        os.exit_thread(a, "t");
        os.runnable_threads(&mut runnable);
        assert_eq!(runnable, vec![0, c.0], "both of a's joiners woke");
        assert!(os.findings().is_empty(), "{:?}", os.findings());
    }

    #[test]
    fn threads_keep_their_names_when_names_repeat() {
        let mut os = Os::for_tests(1);
        let spawned: Vec<(Tid, &str)> = ["w", "v", "w", "main"]
            .into_iter()
            .map(|name| (os.spawn_thread(name, "t").unwrap(), name))
            .collect();
        assert_eq!(os.thread_name(MAIN_THREAD), "main");
        for (tid, name) in spawned {
            assert_eq!(os.thread_name(tid), name);
        }
        assert_eq!(os.thread_name(Tid(99)), "?");
    }

    #[test]
    fn every_change_of_a_thread_state_changes_the_version_and_so_does_a_refused_unblock() {
        let mut os = Os::for_tests(1);
        let mut last = os.changes_version();
        let mut changed = |os: &Os| {
            let now = os.changes_version();
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
        assert_eq!(
            os.thread_state(t),
            Some(&ThreadState::Blocked(BlockReason::Lock(LockId {
                index: 0,
                generation: 0
            })))
        );
        assert!(
            changed(&os),
            "an unblock with the wrong reason changes no state, but reports a finding to collect"
        );
        assert!(!changed(&os), "reading the version changes nothing");
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
    fn thread_sets_hold_threads_on_both_sides_of_the_first_word() {
        let mut a = ThreadSet::default();
        let mut b = ThreadSet::default();
        for tid in [0, 5, 63, 64, 130] {
            a.insert(Tid(tid));
        }
        for tid in [5, 64, 65, 130, 200] {
            b.insert(Tid(tid));
        }
        a.remove(Tid(0));
        a.remove(Tid(300));
        assert!(a.contains(Tid(63)) && a.contains(Tid(130)) && !a.contains(Tid(0)));
        assert!(!a.contains(Tid(200)), "past the last word");
        let mut both = vec![7];
        a.intersection_into(&b, &mut both);
        assert_eq!(both, vec![5, 64, 130]);
        a.clear();
        a.intersection_into(&b, &mut both);
        assert!(both.is_empty());
    }

    /// The kept set of runnable threads and count of blocked ones agree with a look at every
    /// thread's state after each change, a refused unblock and the exit of a blocked thread
    /// included.
    #[test]
    fn the_runnable_set_and_the_blocked_count_follow_every_change_of_state() {
        let mut os = Os::for_tests(1);
        let runnable = |os: &Os| {
            let mut all = ThreadSet::default();
            (0..os.thread_count()).for_each(|tid| all.insert(Tid(tid as u32)));
            let mut out = Vec::new();
            os.threads.runnable.intersection_into(&all, &mut out);
            let blocked = os.threads.threads.iter();
            let blocked = blocked.filter(|t| matches!(t.state, ThreadState::Blocked(_)));
            assert_eq!(os.threads.blocked as usize, blocked.count());
            out
        };
        let t = os.spawn_thread("w", "t").unwrap();
        assert_eq!(runnable(&os), vec![0, 1]);
        os.block(t, BlockReason::Sleep(1), "t");
        assert_eq!(runnable(&os), vec![0]);
        assert!(!os.unblock(t, &BlockReason::Sleep(2), "t"));
        assert_eq!(runnable(&os), vec![0]);
        assert!(os.unblock(t, &BlockReason::Sleep(1), "t"));
        assert_eq!(runnable(&os), vec![0, 1]);
        os.exit_thread(t, "t");
        assert_eq!(runnable(&os), vec![0]);
        let u = os.spawn_thread("u", "t").unwrap();
        os.block(u, BlockReason::FdReadable(3), "t");
        assert_eq!(runnable(&os), vec![0]);
        assert_eq!(os.blocked_threads().len(), 1);
        os.exit_thread(u, "t");
        assert_eq!(runnable(&os), vec![0]);
        assert!(os.blocked_threads().is_empty());
        assert!(!os.advance_timers(), "nobody sleeps");
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

    #[test]
    fn a_sleep_longer_than_the_longest_is_cut_to_it_and_sleepers_keep_their_order() {
        let mut os = Os::for_tests(1);
        let a = os.spawn_thread("a", "t").unwrap();
        os.block(MAIN_THREAD, BlockReason::Join(a), "t");
        let mut ticks = Vec::new();
        for asked in [u64::MAX, SLEEP_TICKS_MAX + 1, SLEEP_TICKS_MAX, 0] {
            os.sleep(a, asked, "t");
            assert!(os.advance_timers());
            assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
            ticks.push(os.now_tick());
        }
        let longest = SLEEP_TICKS_MAX;
        assert_eq!(
            ticks,
            vec![longest, 2 * longest, 3 * longest, 3 * longest + 1],
            "cut to the longest sleep; a sleep of 0 ticks is one"
        );
        // A sleeper whose sleep is cut still wakes after one due before it, and with one due then.
        let mut os = Os::for_tests(1);
        let a = os.spawn_thread("a", "t").unwrap();
        let b = os.spawn_thread("b", "t").unwrap();
        os.block(MAIN_THREAD, BlockReason::Join(a), "t");
        os.sleep(a, u64::MAX, "t");
        os.sleep(b, 10, "t");
        assert!(os.advance_timers());
        assert_eq!(os.now_tick(), 10);
        assert_eq!(os.thread_state(b), Some(&ThreadState::Runnable));
        assert!(matches!(os.thread_state(a), Some(ThreadState::Blocked(_))));
        os.sleep(b, SLEEP_TICKS_MAX - 10, "t");
        assert!(os.advance_timers());
        assert_eq!(os.now_tick(), SLEEP_TICKS_MAX);
        assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
        assert_eq!(
            os.thread_state(b),
            Some(&ThreadState::Runnable),
            "both due at the same tick"
        );
        assert!(!os.advance_timers(), "nobody sleeps any more");
    }

    /// The longest sleep, taken at every step a run may take, leaves the clock at
    /// `CLOCK_TICKS_MAX` at most, with room below `u64::MAX` for any deadline a subject adds.
    /// The first thousand sleeps are taken one by one; the clock is then put where all but the
    /// last of `STEPS_MAX_CEILING` such sleeps bring it (taking them all would take minutes).
    #[test]
    fn the_longest_sleep_at_every_step_a_run_may_take_cannot_overflow_the_clock() {
        let mut os = Os::for_tests(1);
        let a = os.spawn_thread("a", "t").unwrap();
        os.block(MAIN_THREAD, BlockReason::Join(a), "t");
        for sleeps in 1..=1000 {
            os.sleep(a, SLEEP_TICKS_MAX, "t");
            assert!(os.advance_timers());
            assert_eq!(
                os.now_tick(),
                sleeps * SLEEP_TICKS_MAX,
                "each advances it in full"
            );
        }
        let steps = crate::os::STEPS_MAX_CEILING;
        os.threads.now_tick = (steps - 1) * SLEEP_TICKS_MAX;
        os.sleep(a, SLEEP_TICKS_MAX, "t");
        assert!(os.advance_timers());
        assert_eq!(
            os.now_tick(),
            CLOCK_TICKS_MAX,
            "the last step's sleep reaches the bound"
        );
        // A run given more steps by code: the clock stops there, and its sleepers still wake.
        for _ in 0..3 {
            os.sleep(a, u64::MAX, "t");
            assert!(os.advance_timers());
            assert_eq!(os.now_tick(), CLOCK_TICKS_MAX);
            assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
        }
    }

    /// A subject may block with a `BlockReason::Sleep` of its own making, naming any tick: the
    /// clock neither runs backwards nor advances by more than the longest sleep.
    #[test]
    fn a_sleep_reason_a_subject_makes_is_held_to_the_clock_rules() {
        let mut os = Os::for_tests(1);
        let a = os.spawn_thread("a", "t").unwrap();
        os.block(MAIN_THREAD, BlockReason::Join(a), "t");
        os.block(a, BlockReason::Sleep(u64::MAX), "t");
        assert!(os.advance_timers());
        assert_eq!(
            os.now_tick(),
            SLEEP_TICKS_MAX,
            "no further than the longest sleep"
        );
        assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
        os.block(a, BlockReason::Sleep(5), "t");
        assert!(os.advance_timers());
        assert_eq!(
            os.now_tick(),
            SLEEP_TICKS_MAX,
            "a tick already past wakes now"
        );
        assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
    }
}
