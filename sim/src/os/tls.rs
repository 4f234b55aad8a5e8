//! TLS keys: per-thread values with optional destructors (pthread_key_create semantics).
//!
//! At thread exit, every key with a destructor and a non-zero value for that thread has its
//! destructor called with the value, in ascending key order, for up to four rounds while
//! destructors keep setting values (PTHREAD_DESTRUCTOR_ITERATIONS). The runner calls them; this
//! file says which. A value set again in the last round gets no destructor call, as in glibc: it
//! stays unread with the exited thread (a value is no ledger record), and what it names, left
//! unfreed, is a leak of the site that acquired it (`tests/thread_exit.rs`). A destructor is a
//! code address: calling one that points into an unloaded module is a fault (snmalloc #766's
//! library registers TLS destructors).

use std::collections::BTreeMap;

use super::modules::CodeAddr;
use super::resources::{KINDS, RecordId};
use super::sorted_map::SortedMap;
use super::threads::Tid;
use super::{Errno, Os, Site};

pub const DESTRUCTOR_ROUNDS_MAX: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TlsKey(pub u32);

#[derive(Debug)]
struct Key {
    destructor: Option<CodeAddr>,
    record: RecordId,
}

pub(crate) struct TlsState {
    keys: BTreeMap<u32, Key>,
    next_key: u32,
    /// Non-zero values by (thread, key): a thread's values are one range, in key order, which is
    /// what its exit asks for (`tls_destructors_due`) on every exit round of every thread. A
    /// sorted vector: only live threads have values, and a process has few keys.
    values: SortedMap<(u32, u32), u64>,
}

impl TlsState {
    pub(crate) fn new() -> TlsState {
        TlsState {
            keys: BTreeMap::new(),
            next_key: 1,
            values: SortedMap::new(),
        }
    }
}

/// Live TLS keys a process may hold: Linux's `PTHREAD_KEYS_MAX`.
pub const TLS_KEYS_MAX: u64 = 1024;

impl Os {
    pub fn tls_key_create(
        &mut self,
        destructor: Option<CodeAddr>,
        site: Site,
    ) -> Result<TlsKey, Errno> {
        if self.tls.keys.len() as u64 >= TLS_KEYS_MAX {
            // Linux's PTHREAD_KEYS_MAX: EAGAIN, as there, and a budget finding, since a program
            // that runs out of keys has almost always leaked them.
            self.report_budget(
                "tls_keys_max",
                TLS_KEYS_MAX,
                site,
                "likely cause: TLS keys created without being deleted (Linux allows 1024 per process)",
            );
            return Err(Errno::Eagain);
        }
        let here = self.here(site);
        let record = self.resources.acquire(KINDS.tls_key, 1, 0, 0, here);
        let key = self.tls.next_key;
        self.tls.next_key += 1;
        self.tls.keys.insert(key, Key { destructor, record });
        self.syscall("tls.create", u64::from(key), destructor.map_or(0, |c| c.0));
        Ok(TlsKey(key))
    }

    pub fn tls_key_delete(&mut self, key: TlsKey, site: Site) -> Result<(), Errno> {
        self.syscall("tls.delete", u64::from(key.0), 0);
        match self.tls.keys.remove(&key.0) {
            Some(entry) => {
                self.resources.release_id(entry.record);
                self.tls.values.retain(|&(_, k), _| k != key.0);
                Ok(())
            }
            None => {
                self.invariant(
                    "tls key",
                    site,
                    format!("delete of TLS key {} that is not live", key.0),
                );
                Err(Errno::Einval)
            }
        }
    }

    pub fn tls_set(&mut self, tid: Tid, key: TlsKey, value: u64, site: Site) -> Result<(), Errno> {
        if !self.tls.keys.contains_key(&key.0) {
            self.invariant(
                "tls key",
                site,
                format!("set of TLS key {} that is not live", key.0),
            );
            return Err(Errno::Einval);
        }
        if value == 0 {
            self.tls.values.remove(&(tid.0, key.0));
        } else {
            self.tls.values.insert((tid.0, key.0), value);
        }
        self.syscall("tls.set", u64::from(key.0), value);
        Ok(())
    }

    pub fn tls_get(&self, tid: Tid, key: TlsKey) -> u64 {
        self.tls.values.get(&(tid.0, key.0)).copied().unwrap_or(0)
    }

    /// Hands `due` each destructor due for `tid` in this round with its value, in ascending key
    /// order, and returns whether there was any; each value is cleared before its destructor
    /// runs, as POSIX requires. Handed over, not returned as a list: a thread's exit asks at least
    /// twice, and a list was an allocation each time one was due. Inlined into the runner's
    /// thread exit, where most calls find no value and return at once: whether LLVM did so on
    /// its own came and went with unrelated changes (about 900 instructions per WASI input and
    /// 1,300 per interpreter input when it did not).
    #[inline]
    pub fn tls_destructors_due(
        &mut self,
        tid: Tid,
        mut due: impl FnMut(TlsKey, CodeAddr, u64),
    ) -> bool {
        let thread_values = (tid.0, 0)..=(tid.0, u32::MAX);
        let keys = &self.tls.keys;
        let cleared = self.tls.values.remove_range_where(
            thread_values.clone(),
            |&(_, key), &value| match keys.get(&key).and_then(|entry| entry.destructor) {
                Some(code) => {
                    due(TlsKey(key), code, value);
                    true
                }
                None => false,
            },
        );
        // Values of keys without destructors vanish with the thread.
        if cleared == 0 {
            self.tls.values.remove_range(thread_values);
        }
        cleared > 0
    }

    /// Destructors registered with code inside `[start, end)`: used when that code is unloaded.
    pub(crate) fn tls_destructors_in(&self, start: u64, end: u64) -> Vec<(TlsKey, CodeAddr)> {
        self.tls
            .keys
            .iter()
            .filter_map(|(&key, entry)| {
                entry
                    .destructor
                    .filter(|c| c.0 >= start && c.0 < end)
                    .map(|c| (TlsKey(key), c))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::FindingKind;
    use crate::os::modules::MAIN_CODE;

    /// A new TLS key whose destructor is at `offset` in the main program's code.
    fn key_with_destructor(os: &mut Os, offset: u64) -> TlsKey {
        os.tls_key_create(Some(CodeAddr(MAIN_CODE.0 + offset)), "t")
            .unwrap()
    }

    /// A destructor that sets a value again (its own key's, or another's) makes that value due in
    /// the next round, as POSIX's repeated passes do; the runner stops asking after
    /// `DESTRUCTOR_ROUNDS_MAX` rounds.
    #[test]
    fn a_value_set_again_by_a_destructor_is_due_in_the_next_round() {
        let mut os = Os::for_tests(1);
        let t = os.spawn_thread("w", "t").unwrap();
        let k1 = key_with_destructor(&mut os, 1);
        let k2 = key_with_destructor(&mut os, 2);
        os.tls_set(t, k1, 1, "t").unwrap();
        let mut rounds = Vec::new();
        for _ in 0..DESTRUCTOR_ROUNDS_MAX + 2 {
            let mut due = Vec::new();
            if !os.tls_destructors_due(t, |k, _, v| due.push((k.0, v))) {
                break;
            }
            // Each destructor of k1 sets k2, and k2's sets k1 again, up to a value of 3.
            for &(key, value) in &due {
                let next = if key == k1.0 { k2 } else { k1 };
                if value < 3 {
                    os.tls_set(t, next, value + 1, "destructor").unwrap();
                }
            }
            rounds.push(due);
        }
        assert_eq!(
            rounds,
            vec![vec![(k1.0, 1)], vec![(k2.0, 2)], vec![(k1.0, 3)]],
            "one round per value set again, and none after the last"
        );
    }

    #[test]
    fn destructors_are_due_in_key_order_once_per_value() {
        let mut os = Os::for_tests(1);
        let t = os.spawn_thread("w", "t").unwrap();
        let k1 = key_with_destructor(&mut os, 1);
        let k2 = os.tls_key_create(None, "t").unwrap();
        let k3 = key_with_destructor(&mut os, 3);
        os.tls_set(t, k3, 30, "t").unwrap();
        os.tls_set(t, k1, 10, "t").unwrap();
        os.tls_set(t, k2, 20, "t").unwrap();
        let mut due = Vec::new();
        assert!(os.tls_destructors_due(t, |k, _, v| due.push((k.0, v))));
        assert_eq!(due, vec![(k1.0, 10), (k3.0, 30)]);
        assert_eq!(os.tls_get(t, k2), 20, "kept while destructors are due");
        assert!(
            !os.tls_destructors_due(t, |k, _, _| panic!("key {} due again", k.0)),
            "values are cleared before destructors run"
        );
        assert_eq!(
            os.tls_get(t, k2),
            0,
            "values without destructors vanish with the thread"
        );
        for key in [k1, k2, k3] {
            os.tls_key_delete(key, "t").unwrap();
        }
        assert!(os.take_findings().is_empty());
        assert_eq!(os.tls_key_delete(k1, "t"), Err(Errno::Einval));
        assert_eq!(os.tls_set(t, k1, 1, "t"), Err(Errno::Einval));
        let headlines: Vec<String> = os
            .take_findings()
            .into_iter()
            .inspect(|f| {
                assert_eq!(
                    (f.kind, f.resource.as_str()),
                    (FindingKind::Invariant, "tls key")
                )
            })
            .map(|f| f.headline)
            .collect();
        assert_eq!(
            headlines,
            [
                format!("delete of TLS key {} that is not live", k1.0),
                format!("set of TLS key {} that is not live", k1.0)
            ]
        );
    }
}
