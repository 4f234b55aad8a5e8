//! Process exit hooks: registered like `atexit`, run in reverse registration order at exit.
//!
//! mimalloc registers its exit-time forced collect this way (#904). The runner asks for the hooks
//! at a process-exit op and calls each into the subject; each hook's record is released as it is
//! handed out, so a hook registered after exit began (or never run) shows in the ledger.
//!
//! A hook may belong to a loaded module, as C++ static destructors do (`__cxa_atexit` with the
//! module's handle): `module_atexit` registers one, and `finalize_module` hands out that module's
//! hooks, most recent first, when the module is about to be unloaded. So a module's destructors
//! run in reverse order of the constructors that registered them, and a module hook still
//! registered at unload is the same dangling-hook finding as any other (`modules.rs`). Hooks of a
//! module still loaded at process exit run with the others, in one reverse order.

use super::modules::{CodeAddr, ModuleId};
use super::resources::{KINDS, RecordId, recycled};
use super::{Os, Site};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitHook {
    pub code: CodeAddr,
    pub arg: u64,
}

/// A registered hook: what to call, the module it belongs to (none for the main program's), and
/// its ledger record.
struct Registered {
    hook: ExitHook,
    module: Option<ModuleId>,
    record: RecordId,
}

pub(crate) struct ExitState {
    hooks: Vec<Registered>,
    exiting: bool,
}

/// The list of hooks of a dropped `ExitState`, emptied, for the next one made on this thread (see
/// `Os::new`).
#[derive(Default)]
pub(crate) struct ExitStorage {
    hooks: Vec<Registered>,
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
        self.register_hook(ExitHook { code, arg }, None, site);
        self.syscall("exit.atexit", code.0, arg);
    }

    /// Registers a static destructor of `module`: `code(arg)` runs when the module is finalized
    /// before its unload (`finalize_module`), or at process exit if it is still loaded then. A
    /// module that is not loaded has no destructors to register: an invariant finding.
    pub fn module_atexit(&mut self, module: ModuleId, code: CodeAddr, arg: u64, site: Site) {
        if !self.module_is_loaded(module, "register a destructor of", site) {
            return;
        }
        self.register_hook(ExitHook { code, arg }, Some(module), site);
        self.syscall("exit.module_atexit", u64::from(module.0), code.0);
    }

    fn register_hook(&mut self, hook: ExitHook, module: Option<ModuleId>, site: Site) {
        let here = self.here(site);
        let record = self.resources.acquire(KINDS.exit_hook, 1, 0, 0, here);
        self.exit.hooks.push(Registered {
            hook,
            module,
            record,
        });
    }

    /// The static destructors of `module`, most recently registered first, for the caller to run
    /// before it unloads the module; they are forgotten (their records released). Finalizing a
    /// module that is not loaded is an invariant finding, and gives none.
    pub fn finalize_module(&mut self, module: ModuleId, site: Site) -> Vec<ExitHook> {
        if !self.module_is_loaded(module, "finalize", site) {
            return Vec::new();
        }
        let due: Vec<Registered> = self
            .exit
            .hooks
            .extract_if(.., |registered| registered.module == Some(module))
            .collect();
        self.syscall(
            "exit.finalize_module",
            u64::from(module.0),
            due.len() as u64,
        );
        self.hand_out(due)
    }

    /// Begins process exit: returns the hooks in reverse registration order and forgets them.
    pub fn begin_exit(&mut self) -> Vec<ExitHook> {
        self.exit.exiting = true;
        let hooks = std::mem::take(&mut self.exit.hooks);
        self.syscall("exit.begin", hooks.len() as u64, 0);
        self.hand_out(hooks)
    }

    /// `hooks` in reverse registration order, each record released as it is handed out.
    fn hand_out(&mut self, hooks: Vec<Registered>) -> Vec<ExitHook> {
        hooks
            .into_iter()
            .rev()
            .map(|registered| {
                self.resources.release_id(registered.record);
                registered.hook
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
            .map(|registered| registered.hook.code)
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

    #[test]
    fn a_modules_destructors_run_in_reverse_at_finalize_and_only_its_own() {
        let mut os = Os::for_tests(1);
        let library = os.load_module("liba.so", 4096, "dlopen").unwrap();
        let other = os.load_module("libb.so", 4096, "dlopen").unwrap();
        os.atexit(MAIN_CODE, 100, "main");
        // Three constructors of `liba.so`, each registering its destructor, with one of
        // `libb.so` in between.
        for arg in 1..=3 {
            let destructor = os.module_code(library, arg, "static_init");
            os.module_atexit(library, destructor, arg, "static_init");
            if arg == 2 {
                let destructor = os.module_code(other, 8, "static_init");
                os.module_atexit(other, destructor, 200, "static_init");
            }
        }
        assert_eq!(os.resources().live_records(), 2 + 5, "2 modules, 5 hooks");
        let due: Vec<u64> = os
            .finalize_module(library, "dlclose")
            .iter()
            .map(|h| h.arg)
            .collect();
        assert_eq!(due, vec![3, 2, 1], "most recent first");
        assert_eq!(os.resources().live_records(), 2 + 2);
        os.unload_module(library, "dlclose").unwrap();
        assert!(
            os.take_findings().is_empty(),
            "nothing of liba.so is left registered"
        );
        // What is left runs at exit, in one reverse order: `libb.so`'s hook, then the main one.
        let at_exit: Vec<u64> = os.begin_exit().iter().map(|h| h.arg).collect();
        assert_eq!(at_exit, vec![200, 100]);
    }

    #[test]
    fn an_unfinalized_module_destructor_dangles_and_an_unloaded_module_has_none() {
        let mut os = Os::for_tests(1);
        let library = os.load_module("liba.so", 4096, "dlopen").unwrap();
        let destructor = os.module_code(library, 4, "static_init");
        os.module_atexit(library, destructor, 1, "static_init");
        // Unloaded without being finalized: the hook points into unmapped code.
        os.unload_module(library, "dlclose").unwrap();
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].resource, "dangling exit hook");
        // An unloaded module and one never loaded have nothing to register or finalize.
        os.module_atexit(library, MAIN_CODE, 2, "late_init");
        assert!(os.finalize_module(library, "dlclose").is_empty());
        assert!(os.finalize_module(ModuleId(9), "dlclose").is_empty());
        let headlines: Vec<String> = os.take_findings().into_iter().map(|f| f.headline).collect();
        assert_eq!(headlines.len(), 3, "{headlines:?}");
        assert!(
            headlines[0].starts_with(
                "register a destructor of module `liba.so`, which was unloaded by the subject's `new`"
            ),
            "{headlines:?}"
        );
        assert!(
            headlines[1].starts_with("finalize module `liba.so`, which was unloaded"),
            "{headlines:?}"
        );
        assert_eq!(headlines[2], "finalize module #9, which was never loaded");
        assert_eq!(
            os.resources().live_records(),
            1,
            "only the dangling hook, refused ones not recorded"
        );
    }
}
