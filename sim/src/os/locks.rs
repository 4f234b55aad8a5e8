//! Locks: mutex, rwlock and condvar objects, with create/destroy and blocking acquire/release.
//!
//! A lock is an object with a size (from the platform model: WAMR's report measured 216 B for an
//! rwlock). Creating and destroying must balance per lifecycle; destroying a lock never created or
//! destroying it twice is an invariant finding (WAMR #4192 asks for exactly these). Ids carry a
//! generation, so a stale id is told apart from a live lock that reused the slot.
//!
//! Acquire blocks with `BlockReason::Lock`; release takes the whole waiter list and wakes every
//! waiter, which retries (so which waiter wins is a scheduler decision). Each held lock is a
//! `held lock` record, so a lock still held at the end of a lifecycle is reported as a leak.

use super::resources::{KINDS, RecordId, recycled};
use super::threads::{BlockReason, Tid};
use super::{Attribution, Errno, Io, Os, Site};
use crate::trace::EventKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockKind {
    Mutex,
    RwLock,
    Condvar,
}

impl LockKind {
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Mutex => "mutex",
            LockKind::RwLock => "rwlock",
            LockKind::Condvar => "condvar",
        }
    }

    /// The ledger kind a lock of this kind is accounted in.
    fn kind_id(self) -> super::KindId {
        match self {
            LockKind::Mutex => KINDS.mutex,
            LockKind::RwLock => KINDS.rwlock,
            LockKind::Condvar => KINDS.condvar,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockId {
    pub index: u32,
    pub generation: u32,
}

#[derive(Debug)]
struct Lock {
    kind: LockKind,
    generation: u32,
    live: bool,
    record: Option<RecordId>,
    /// The thread that holds it exclusively, with its `held lock` record; `NO_WRITER` when none
    /// does. A thread rather than an `Option`: whether a thread is the writer is then one
    /// compare, and taking or leaving the lock writes no tag.
    writer: (Tid, RecordId),
    readers: Vec<(Tid, RecordId)>,
    waiters: Vec<Tid>,
    /// While the slot is free, the slot freed before it (`NO_LOCK` at the bottom): the free
    /// slots form a stack through this field, so that a create and a destroy pop and push it
    /// with no vector's length and capacity to test.
    next_free: u32,
}

/// The `writer` of a lock no thread holds exclusively: a tid no thread has (tids count threads
/// from 0, and there are far fewer), and no record. A caller never passes it for a thread.
const NO_WRITER: (Tid, RecordId) = (Tid(u32::MAX), RecordId::NONE);

/// The end of the stack of free lock slots.
const NO_LOCK: u32 = u32::MAX;

/// Ways to use a lock against its rules, each an invariant finding.
#[derive(Clone, Copy, Debug)]
enum Misuse {
    AcquireCondvar,
    /// Acquiring a lock the thread already holds (self-deadlock).
    AcquireHeld,
    ReleaseNotHeld,
}

pub(crate) struct LocksState {
    locks: Vec<Lock>,
    /// Who destroyed each slot's lock last, to explain a double destroy, by slot. Beside the
    /// locks rather than in them: read only to explain a misuse, it made a lock 136 bytes, whose
    /// index then took two instructions to scale at every lookup, where 88 take one. A create
    /// that reuses a slot leaves its entry as it is (see `lock_create`).
    destroyed_by: Vec<Option<Attribution>>,
    /// The slot freed last, which the next create reuses (lock indices appear in the trace, so
    /// the order of reuse, last destroyed first, is part of a run's behaviour); `NO_LOCK` when
    /// no slot is free. See `Lock::next_free`.
    free_top: u32,
    /// How many holds (a writer's or a reader's) all threads have, kept by acquire and release:
    /// every thread's exit asks which locks it holds, and with none held at all the answer needs
    /// no walk over every lock. One count, not one per thread: the acquire of an uncontended
    /// lock is a hot path, and indexing a per-thread list there cost more than the walks it saved.
    holds: u64,
}

/// The lists of a dropped OS's locks, emptied, for the next OS made on the thread (see
/// `Os::new`): a runtime's fuzz input creates dozens of locks, and the lists grew from nothing
/// again on every input. Only capacity is kept: a new OS's locks take the slots from the first.
#[derive(Default)]
pub(crate) struct LocksStorage {
    locks: Vec<Lock>,
    destroyed_by: Vec<Option<Attribution>>,
}

impl LocksState {
    /// No lock, in the lists `storage` holds (emptied by `keep_storage`), if it holds any.
    pub(crate) fn new_in(storage: &mut LocksStorage) -> LocksState {
        LocksState {
            locks: std::mem::take(&mut storage.locks),
            destroyed_by: std::mem::take(&mut storage.destroyed_by),
            free_top: NO_LOCK,
            holds: 0,
        }
    }

    /// Empties the lists and hands them to `storage`, for the next `new_in`.
    pub(crate) fn keep_storage(&mut self, storage: &mut LocksStorage) {
        storage.locks = recycled(&mut self.locks);
        storage.destroyed_by = recycled(&mut self.destroyed_by);
    }
}

/// The lock `id` names, if it is live. Borrowed from the list of locks alone, so that the rest
/// of the OS stays usable while it is held (see `Os::lock_release`).
#[inline(always)]
fn live_lock_in(locks: &mut [Lock], id: LockId) -> Option<&mut Lock> {
    let lock = locks.get_mut(id.index as usize)?;
    lock.is_live(id).then_some(lock)
}

impl Lock {
    /// Whether this slot holds the live lock `id` names (not a destroyed one, nor a later lock
    /// in its slot).
    #[inline(always)]
    fn is_live(&self, id: LockId) -> bool {
        self.live && self.generation == id.generation
    }
}

impl Os {
    /// Creates a lock. Always inlined (plain `#[inline]` proved too weak a hint: LLVM kept the call
    /// out of line), so that the id reaches the caller in registers: returned through memory, its
    /// two halves are written separately and read back as one word, which stalls the caller until
    /// the whole call has retired.
    #[inline(always)]
    pub fn lock_create(&mut self, kind: LockKind, site: Site) -> Result<LockId, Errno> {
        if self.resources.live_records() >= self.limits.objects_max {
            return Err(self.objects_exhausted(site));
        }
        let bytes = match kind {
            LockKind::Mutex => self.platform.mutex_bytes,
            LockKind::RwLock => self.platform.rwlock_bytes,
            LockKind::Condvar => self.platform.condvar_bytes,
        };
        let record = self
            .resources
            .acquire_at(kind.kind_id(), 1, bytes, 0, &self.position, site);
        let index = self.locks.free_top;
        let id = match self.locks.locks.get_mut(index as usize) {
            Some(lock) => {
                // Reuse the slot in place: its waiter and reader lists are empty (a held lock
                // cannot be destroyed) and keep their allocations.
                debug_assert!(!lock.live, "only free slots are on the stack");
                self.locks.free_top = lock.next_free;
                lock.kind = kind;
                lock.generation = lock.generation.wrapping_add(1);
                lock.live = true;
                lock.record = Some(record);
                // `destroyed_by` keeps the last destroy's attribution: it is read only for a
                // lock of this generation that is not live, which its own destroy writes first.
                lock.writer = NO_WRITER;
                lock.readers.clear();
                lock.waiters.clear();
                LockId {
                    index,
                    generation: lock.generation,
                }
            }
            // `NO_LOCK`, past every slot: none is free.
            None => self.push_lock(kind, record),
        };
        self.syscall("locks.create", u64::from(id.index), kind as u64);
        Ok(id)
    }

    #[cold]
    fn objects_exhausted(&mut self, site: Site) -> Errno {
        self.budget("objects_max", self.limits.objects_max, site);
        Errno::Enomem
    }

    fn push_lock(&mut self, kind: LockKind, record: RecordId) -> LockId {
        self.locks.locks.push(Lock {
            kind,
            generation: 0,
            live: true,
            record: Some(record),
            writer: NO_WRITER,
            readers: Vec::new(),
            waiters: Vec::new(),
            next_free: NO_LOCK,
        });
        self.locks.destroyed_by.push(None);
        LockId {
            index: (self.locks.locks.len() - 1) as u32,
            generation: 0,
        }
    }

    /// Looks a lock up; a stale or unknown id is an invariant finding naming `call`.
    #[inline]
    fn live_lock(&mut self, id: LockId, call: &str, site: Site) -> Option<&mut Lock> {
        match self.locks.locks.get(id.index as usize) {
            Some(lock) if lock.is_live(id) => self.locks.locks.get_mut(id.index as usize),
            _ => {
                self.lock_not_live(id, call, site);
                None
            }
        }
    }

    #[cold]
    fn lock_not_live(&mut self, id: LockId, call: &str, site: Site) {
        let headline = match self.locks.locks.get(id.index as usize) {
            None => format!("{call} of lock #{} that was never created", id.index),
            Some(lock) if lock.generation != id.generation => format!(
                "{call} of lock #{} (generation {}) whose slot now holds another lock",
                id.index, id.generation
            ),
            Some(lock) => match self.locks.destroyed_by[id.index as usize] {
                Some(by) => format!(
                    "{call} of {} #{} that was already destroyed by {by}",
                    lock.kind.name(),
                    id.index
                ),
                None => format!("{call} of lock #{} that is not live", id.index),
            },
        };
        self.invariant("lock", site, headline);
    }

    #[inline]
    pub fn lock_destroy(&mut self, id: LockId, site: Site) -> Result<(), Errno> {
        self.syscall("locks.destroy", u64::from(id.index), 0);
        // Borrowed from the list of locks alone, so that the slot found once is changed, put on
        // the stack of free slots and its record released without a second lookup.
        let Some(lock) = live_lock_in(&mut self.locks.locks, id) else {
            self.lock_not_live(id, "destroy", site);
            return Err(Errno::Einval);
        };
        if lock.writer.0 != NO_WRITER.0 || !lock.readers.is_empty() {
            let kind = lock.kind;
            return Err(self.destroy_held(kind, id, site));
        }
        lock.live = false;
        // `self.here`, spelt out, as the lock holds a borrow of `self.locks`.
        self.locks.destroyed_by[id.index as usize] = Some(Attribution {
            position: self.position,
            site,
        });
        lock.next_free = self.locks.free_top;
        self.locks.free_top = id.index;
        if let Some(record) = lock.record.take() {
            self.resources.release_held(record);
        }
        Ok(())
    }

    #[cold]
    fn destroy_held(&mut self, kind: LockKind, id: LockId, site: Site) -> Errno {
        self.invariant(
            "lock",
            site,
            format!("destroy of {} #{} while it is held", kind.name(), id.index),
        );
        Errno::Ebusy
    }

    /// Acquires a mutex (or an rwlock for writing).
    #[inline]
    pub fn lock_acquire(&mut self, tid: Tid, id: LockId, site: Site) -> Io<()> {
        self.acquire(tid, id, true, site)
    }

    /// Acquires an rwlock for reading (a mutex is acquired exclusively either way).
    #[inline]
    pub fn lock_acquire_read(&mut self, tid: Tid, id: LockId, site: Site) -> Io<()> {
        self.acquire(tid, id, false, site)
    }

    /// Always inlined, through the `#[inline]` wrappers, into the subject's call site: out of line,
    /// its `Io` went back through memory, written in parts and read back whole by the caller (a
    /// store-forwarding stall on every contended acquire), and the call's own prologue and
    /// epilogue were a tenth of the uncontended path.
    #[inline(always)]
    fn acquire(&mut self, tid: Tid, id: LockId, exclusive: bool, site: Site) -> Io<()> {
        let Some(lock) = self.live_lock(id, "acquire", site) else {
            return Io::err(Errno::Einval);
        };
        let exclusive = exclusive || lock.kind == LockKind::Mutex;
        let kind = lock.kind;
        if kind == LockKind::Condvar {
            return Io::err(self.lock_misuse(Misuse::AcquireCondvar, kind, tid, id, site));
        }
        // The readers are searched only when there are some: a mutex never has any, and setting
        // up the search cost more than the rest of the check.
        debug_assert_ne!(tid, NO_WRITER.0, "no thread has the tid of no writer");
        let mine = lock.writer.0 == tid
            || (!lock.readers.is_empty() && lock.readers.iter().any(|(t, _)| *t == tid));
        if mine {
            return Io::err(self.lock_misuse(Misuse::AcquireHeld, kind, tid, id, site));
        }
        let free = lock.writer.0 == NO_WRITER.0 && (!exclusive || lock.readers.is_empty());
        if !free {
            lock.waiters.push(tid);
            return Io::Block(BlockReason::Lock(id));
        }
        // The lock is borrowed from its own field, apart from the ledger's, so that taking the
        // record does not end the borrow and make the lock be looked up (and bounds-checked)
        // again.
        let lock = &mut self.locks.locks[id.index as usize];
        let key = u64::from(tid.0);
        let record = (self.resources).acquire_at(KINDS.held_lock, 1, 0, key, &self.position, site);
        if exclusive {
            lock.writer = (tid, record);
        } else {
            lock.readers.push((tid, record));
        }
        self.locks.holds += 1;
        self.syscall("locks.acquire", u64::from(id.index), u64::from(tid.0));
        Io::ok(())
    }

    /// Reports a lock used against its rules (kept out of line: the hot paths stay small).
    #[cold]
    fn lock_misuse(
        &mut self,
        misuse: Misuse,
        kind: LockKind,
        tid: Tid,
        id: LockId,
        site: Site,
    ) -> Errno {
        let (headline, errno) = match misuse {
            Misuse::AcquireCondvar => (
                format!("acquire of condvar #{}: a condvar is not a lock", id.index),
                Errno::Einval,
            ),
            Misuse::AcquireHeld => (
                format!(
                    "thread {} acquires {} #{} it already holds (self-deadlock)",
                    tid.0,
                    kind.name(),
                    id.index
                ),
                Errno::Ebusy,
            ),
            Misuse::ReleaseNotHeld => (
                format!(
                    "thread {} releases {} #{} it does not hold",
                    tid.0,
                    kind.name(),
                    id.index
                ),
                Errno::Einval,
            ),
        };
        self.invariant("lock", site, headline);
        errno
    }

    /// Releases a lock `tid` holds and wakes every waiter (they retry), in the order they came,
    /// and empties the list, which keeps its allocation for the next waiter.
    ///
    /// The lock is looked up once and held to the end: it is borrowed from the list of locks
    /// alone, and waking touches the threads, the ledger and the trace, never the locks. (Looking
    /// it up again to read each waiter cost a bounds check and a reload per waiter; taking the
    /// list out of the lock and putting it back cost more still.)
    ///
    /// `#[inline]`, so that a subject in another crate (the scheduler benchmark's) can inline it
    /// too: called out of line, its prologue, epilogue and argument moves were 11 of a release's
    /// 178 instructions.
    #[inline]
    pub fn lock_release(&mut self, tid: Tid, id: LockId, site: Site) -> Result<(), Errno> {
        let Some(mut lock) = live_lock_in(&mut self.locks.locks, id) else {
            self.lock_not_live(id, "release", site);
            return Err(Errno::Einval);
        };
        debug_assert_ne!(tid, NO_WRITER.0, "no thread has the tid of no writer");
        let record = if lock.writer.0 == tid {
            Some(std::mem::replace(&mut lock.writer, NO_WRITER).1)
        } else if let Some(position) = lock.readers.iter().position(|(t, _)| *t == tid) {
            Some(lock.readers.remove(position).1)
        } else {
            None
        };
        let Some(record) = record else {
            let kind = lock.kind;
            return Err(self.lock_misuse(Misuse::ReleaseNotHeld, kind, tid, id, site));
        };
        self.locks.holds -= 1;
        self.resources.release_held(record);
        // `self.syscall`, spelt out, as the lock holds a borrow of `self.locks`.
        let (index, holder) = (u64::from(id.index), u64::from(tid.0));
        self.trace
            .event(EventKind::Syscall("locks.release"), index, holder);
        if lock.waiters.is_empty() {
            return Ok(());
        }
        let reason = BlockReason::Lock(id);
        let mut at = 0;
        while let Some(&waiter) = lock.waiters.get(at) {
            at += 1;
            let threads = &mut self.threads;
            let version = &mut self.changes_version;
            if !threads.wake(
                waiter,
                &reason,
                &mut self.resources,
                &mut self.trace,
                version,
            ) {
                // A waiter that is not waiting for this lock (a bug of the OS's, as no subject
                // blocks a thread itself): reported in its place among the wake-ups, with the
                // whole OS, after which the lock is looked up again.
                self.unblock_refused(waiter, &reason, site);
                lock = &mut self.locks.locks[id.index as usize];
            }
        }
        lock.waiters.clear();
        Ok(())
    }

    /// The threads that hold the live lock `id` (its writer, or its readers), each with where it
    /// took the lock: what a deadlock report says of a thread waiting for it.
    pub fn lock_holders(&self, id: LockId) -> Vec<(Tid, Attribution)> {
        let Some(lock) = self
            .locks
            .locks
            .get(id.index as usize)
            .filter(|l| l.is_live(id))
        else {
            return Vec::new();
        };
        let writer = (lock.writer.0 != NO_WRITER.0).then_some(&lock.writer);
        writer
            .into_iter()
            .chain(&lock.readers)
            .filter_map(|&(tid, record)| {
                let record = self.resources.get(record)?;
                Some((tid, self.resources.acquired(record)))
            })
            .collect()
    }

    /// Locks `tid` holds now, for the check at thread exit.
    pub fn locks_held_by(&self, tid: Tid) -> Vec<(LockId, LockKind)> {
        if self.locks.holds == 0 {
            return Vec::new();
        }
        self.locks
            .locks
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.live && (l.writer.0 == tid || l.readers.iter().any(|(t, _)| *t == tid))
            })
            .map(|(i, l)| {
                (
                    LockId {
                        index: i as u32,
                        generation: l.generation,
                    },
                    l.kind,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::FindingKind;
    use crate::os::threads::MAIN_THREAD;

    #[test]
    fn create_destroy_balance_with_platform_sizes() {
        let mut os = Os::for_tests(1);
        let lock = os.lock_create(LockKind::RwLock, "fd_table_init").unwrap();
        let rwlocks = os.resources().kind_by_name("rwlock").unwrap();
        assert_eq!(os.resources().total(rwlocks).bytes, 216);
        os.lock_destroy(lock, "fd_table_destroy").unwrap();
        assert_eq!(os.resources().live_records(), 0);
    }

    #[test]
    fn destroy_twice_or_never_created_is_an_invariant_naming_the_first_destroy() {
        let mut os = Os::for_tests(1);
        let lock = os.lock_create(LockKind::Mutex, "init").unwrap();
        os.lock_destroy(lock, "first_destroy").unwrap();
        assert_eq!(os.lock_destroy(lock, "second_destroy"), Err(Errno::Einval));
        assert_eq!(
            os.lock_destroy(
                LockId {
                    index: 99,
                    generation: 0
                },
                "x"
            ),
            Err(Errno::Einval)
        );
        let findings = os.take_findings();
        assert_eq!(findings.len(), 2);
        assert!(findings.iter().all(|f| f.kind == FindingKind::Invariant));
        assert!(
            findings[0].headline.contains("first_destroy"),
            "{}",
            findings[0].headline
        );
        assert!(findings[1].headline.contains("never created"));
    }

    /// Lock indices are in the trace, so the order in which freed slots are reused is behaviour:
    /// the slot destroyed last is the one created into first. An id of the lock that had the
    /// slot before is stale, not the new lock.
    #[test]
    fn freed_slots_are_reused_last_destroyed_first_and_old_ids_stay_stale() {
        let mut os = Os::for_tests(1);
        let [a, b, c] = [0; 3].map(|_| os.lock_create(LockKind::Mutex, "init").unwrap());
        assert_eq!([a.index, b.index, c.index], [0, 1, 2]);
        os.lock_destroy(a, "fini").unwrap();
        os.lock_destroy(c, "fini").unwrap();
        let reused_c = os.lock_create(LockKind::RwLock, "again").unwrap();
        let reused_a = os.lock_create(LockKind::Condvar, "again").unwrap();
        let fresh = os.lock_create(LockKind::Mutex, "again").unwrap();
        assert_eq!(
            [reused_c, reused_a, fresh],
            [
                LockId {
                    index: 2,
                    generation: 1
                },
                LockId {
                    index: 0,
                    generation: 1
                },
                LockId {
                    index: 3,
                    generation: 0
                }
            ]
        );
        assert_eq!(os.lock_destroy(c, "stale"), Err(Errno::Einval));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0]
                .headline
                .contains("whose slot now holds another lock"),
            "{}",
            findings[0].headline
        );
        for lock in [b, reused_c, reused_a, fresh] {
            os.lock_destroy(lock, "fini").unwrap();
        }
        assert_eq!(os.resources().live_records(), 0);
        assert!(os.take_findings().is_empty());
    }

    #[test]
    fn contended_acquire_blocks_and_release_wakes_every_waiter() {
        let mut os = Os::for_tests(1);
        let lock = os.lock_create(LockKind::Mutex, "t").unwrap();
        let a = os.spawn_thread("a", "t").unwrap();
        let b = os.spawn_thread("b", "t").unwrap();
        assert_eq!(os.lock_acquire(MAIN_THREAD, lock, "t"), Io::ok(()));
        for t in [a, b] {
            assert_eq!(
                os.lock_acquire(t, lock, "t"),
                Io::Block(BlockReason::Lock(lock))
            );
            os.block(t, BlockReason::Lock(lock), "t");
        }
        assert_eq!(
            os.lock_destroy(lock, "t"),
            Err(Errno::Ebusy),
            "destroying a held lock is refused"
        );
        os.lock_release(MAIN_THREAD, lock, "t").unwrap();
        assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
        assert_eq!(os.thread_state(b), Some(&ThreadState::Runnable));
        assert_eq!(os.lock_acquire(b, lock, "t"), Io::ok(()));
        assert_eq!(os.locks_held_by(b), vec![(lock, LockKind::Mutex)]);
        assert_eq!(
            os.lock_release(a, lock, "t"),
            Err(Errno::Einval),
            "a does not hold it"
        );
    }

    /// A waiter that is not blocked on the lock when it is released (here one whose acquire
    /// said block, but which never blocked) is an invariant finding, reported among the
    /// wake-ups in its place, and the waiters after it still wake, in order.
    #[test]
    fn a_release_reports_a_waiter_not_blocked_on_the_lock_and_wakes_the_rest() {
        let mut os = Os::for_tests(1);
        let lock = os.lock_create(LockKind::Mutex, "t").unwrap();
        let [a, b, c] = ["a", "b", "c"].map(|name| os.spawn_thread(name, "t").unwrap());
        assert_eq!(os.lock_acquire(MAIN_THREAD, lock, "t"), Io::ok(()));
        for t in [a, b, c] {
            assert_eq!(
                os.lock_acquire(t, lock, "t"),
                Io::Block(BlockReason::Lock(lock))
            );
            if t != b {
                os.block(t, BlockReason::Lock(lock), "t");
            }
        }
        let shared = crate::trace::MemorySink::default();
        os.trace().attach_sink(Box::new(shared.clone()));
        os.lock_release(MAIN_THREAD, lock, "release_site").unwrap();
        let text = shared.take_text();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let said: Vec<(&str, Option<u64>)> = events
            .iter()
            .map(|e| (e["ev"].as_str().unwrap(), e["a"].as_u64()))
            .collect();
        assert_eq!(
            said,
            [
                ("locks.release", Some(u64::from(lock.index))),
                ("unblock", Some(u64::from(a.0))),
                ("finding", None),
                ("unblock", Some(u64::from(c.0))),
            ]
        );
        assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
        assert_eq!(os.thread_state(c), Some(&ThreadState::Runnable));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0]
                .headline
                .contains(&format!("unblock of thread {}", b.0)),
            "{}",
            findings[0].headline
        );
        assert_eq!(os.lock_acquire(c, lock, "t"), Io::ok(()));
        os.lock_release(c, lock, "t").unwrap();
        let text = shared.take_text();
        assert_eq!(
            text.lines().count(),
            2,
            "the waiters were all taken off the list: the second release wakes nobody\n{text}"
        );
    }

    #[test]
    fn readers_share_and_writers_exclude() {
        let mut os = Os::for_tests(1);
        let lock = os.lock_create(LockKind::RwLock, "t").unwrap();
        let a = os.spawn_thread("a", "t").unwrap();
        assert_eq!(os.lock_acquire_read(MAIN_THREAD, lock, "t"), Io::ok(()));
        assert_eq!(os.lock_acquire_read(a, lock, "t"), Io::ok(()));
        let b = os.spawn_thread("b", "t").unwrap();
        assert_eq!(
            os.lock_acquire(b, lock, "t"),
            Io::Block(BlockReason::Lock(lock))
        );
    }

    /// What a thread holds is reported until it releases it, while another thread takes and
    /// releases locks (and releases one it does not hold) around it: the count of holds, which
    /// lets an exit with none held skip the walk, must not reach zero early.
    #[test]
    fn locks_held_are_reported_until_released_whatever_other_threads_do() {
        let mut os = Os::for_tests(1);
        let mutex = os.lock_create(LockKind::Mutex, "t").unwrap();
        let rwlock = os.lock_create(LockKind::RwLock, "t").unwrap();
        let a = os.spawn_thread("a", "t").unwrap();
        let b = os.spawn_thread("b", "t").unwrap();
        assert!(os.locks_held_by(a).is_empty());
        assert_eq!(os.lock_acquire(a, mutex, "t"), Io::ok(()));
        assert_eq!(os.lock_acquire_read(b, rwlock, "t"), Io::ok(()));
        os.lock_release(b, rwlock, "t").unwrap();
        assert_eq!(os.lock_release(b, mutex, "t"), Err(Errno::Einval));
        assert!(os.locks_held_by(b).is_empty());
        assert_eq!(os.locks_held_by(a), vec![(mutex, LockKind::Mutex)]);
        assert_eq!(os.lock_acquire_read(a, rwlock, "t"), Io::ok(()));
        assert_eq!(
            os.locks_held_by(a),
            vec![(mutex, LockKind::Mutex), (rwlock, LockKind::RwLock)]
        );
        os.lock_release(a, mutex, "t").unwrap();
        assert_eq!(os.locks_held_by(a), vec![(rwlock, LockKind::RwLock)]);
        os.lock_release(a, rwlock, "t").unwrap();
        assert!(os.locks_held_by(a).is_empty());
        assert_eq!(os.locks.holds, 0);
    }

    /// A thread that acquires a lock it holds, as its writer or as one of its readers (the
    /// readers are searched only when there are some), deadlocks itself: an invariant finding.
    #[test]
    fn acquiring_a_held_lock_again_is_a_self_deadlock_whether_held_as_writer_or_reader() {
        let mut os = Os::for_tests(1);
        let mutex = os.lock_create(LockKind::Mutex, "t").unwrap();
        let rwlock = os.lock_create(LockKind::RwLock, "t").unwrap();
        let a = os.spawn_thread("a", "t").unwrap();
        assert_eq!(os.lock_acquire(MAIN_THREAD, mutex, "t"), Io::ok(()));
        assert_eq!(os.lock_acquire_read(a, rwlock, "t"), Io::ok(()));
        assert_eq!(os.lock_acquire_read(MAIN_THREAD, rwlock, "t"), Io::ok(()));
        assert!(os.findings().is_empty(), "a second reader is no misuse");
        assert_eq!(
            os.lock_acquire(MAIN_THREAD, mutex, "t"),
            Io::err(Errno::Ebusy)
        );
        assert_eq!(os.lock_acquire_read(a, rwlock, "t"), Io::err(Errno::Ebusy));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 2);
        assert!(
            findings
                .iter()
                .all(|f| f.headline.contains("self-deadlock"))
        );
    }

    use crate::os::ThreadState;
}
