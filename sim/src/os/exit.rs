//! Process exit hooks: registered like `atexit`, run in reverse registration order at exit.
//!
//! mimalloc registers its exit-time forced collect this way (#904). The runner asks for the hooks
//! at a process-exit op and calls each into the subject; each hook's record is released as it is
//! handed out, so a hook registered after exit began (or never run) shows in the ledger.

use super::modules::CodeAddr;
use super::resources::{KINDS, RecordId, recycled};
use super::{Os, Site};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitHook {
    pub code: CodeAddr,
    pub arg: u64,
}

pub(crate) struct ExitState {
    hooks: Vec<(ExitHook, RecordId)>,
    exiting: bool,
}

/// The list of hooks of a dropped `ExitState`, emptied, for the next one made on this thread (see
/// `Os::new`).
#[derive(Default)]
pub(crate) struct ExitStorage {
    hooks: Vec<(ExitHook, RecordId)>,
}

impl ExitState {
    /// A fresh state, in the list `storage` holds (emptied by `keep_storage`), if it holds one:
    /// see `Os::new`.
    pub(crate) fn new_in(storage: &mut ExitStorage) -> ExitState {
        ExitState {
            hooks: std::mem::take(&mut storage.hooks),
            exiting: false,
        }
    }

    /// Empties the list of hooks and hands it to `storage`, for the next `new_in`.
    pub(crate) fn keep_storage(&mut self, storage: &mut ExitStorage) {
        storage.hooks = recycled(&mut self.hooks);
    }
}

impl Os {
    pub fn atexit(&mut self, code: CodeAddr, arg: u64, site: Site) {
        let here = self.here(site);
        let record = self.resources.acquire(KINDS.exit_hook, 1, 0, 0, here);
        self.exit.hooks.push((ExitHook { code, arg }, record));
        self.syscall("exit.atexit", code.0, arg);
    }

    /// Begins process exit: returns the hooks in reverse registration order and forgets them.
    pub fn begin_exit(&mut self) -> Vec<ExitHook> {
        self.exit.exiting = true;
        let hooks = std::mem::take(&mut self.exit.hooks);
        self.syscall("exit.begin", hooks.len() as u64, 0);
        hooks
            .into_iter()
            .rev()
            .map(|(hook, record)| {
                self.resources.release_id(record);
                hook
            })
            .collect()
    }

    pub fn is_exiting(&self) -> bool {
        self.exit.exiting
    }

    pub(crate) fn exit_hooks_in(&self, start: u64, end: u64) -> Vec<CodeAddr> {
        self.exit
            .hooks
            .iter()
            .map(|(hook, _)| hook.code)
            .filter(|c| c.0 >= start && c.0 < end)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::modules::MAIN_CODE;

    #[test]
    fn hooks_run_in_reverse_registration_order() {
        let mut os = Os::for_tests(1);
        for arg in 1..=3 {
            os.atexit(MAIN_CODE, arg, "t");
        }
        assert_eq!(os.resources().live_records(), 3);
        let order: Vec<u64> = os.begin_exit().iter().map(|h| h.arg).collect();
        assert_eq!(order, vec![3, 2, 1]);
        assert!(os.is_exiting());
        assert_eq!(os.resources().live_records(), 0);
    }
}
