//! Loadable modules: code ranges that come and go.
//!
//! Loading gives a module a code range. Its static constructors are the subject's own code, run by
//! the subject after `load_module`, in order. A constructor that needs undoing registers its
//! destructor with `module_atexit` (as C++ does with `__cxa_atexit` and the module's handle), and
//! before `unload_module` the subject runs what `finalize_module` hands out: the module's
//! destructors in reverse order of registration (`exit.rs`). What the OS adds is the check that
//! matters for reloadable libraries (snmalloc #766): at unload, any TLS destructor or exit hook
//! still registered with code inside the module is an invariant finding, and calling code that is
//! not loaded is a fault. The main program's code is always loaded at `MAIN_CODE`.

use super::resources::{KINDS, RecordId};
use super::{Attribution, Errno, Os, Site};
use crate::findings::{Finding, FindingKind};

/// An address in simulated code: what a function pointer, TLS destructor or exit hook holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CodeAddr(pub u64);

/// The main program's code range.
pub const MAIN_CODE: CodeAddr = CodeAddr(0x40_0000);
const MAIN_CODE_LEN: u64 = 0x10_0000;
const MODULE_CODE_BASE: u64 = 0x7f00_0000_0000;
const MODULE_CODE_STRIDE: u64 = 0x100_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleId(pub u32);

#[derive(Debug)]
struct Module {
    name: String,
    code_start: u64,
    code_len: u64,
    record: Option<RecordId>,
    unloaded_by: Option<Attribution>,
}

pub(crate) struct ModulesState {
    modules: Vec<Module>,
}

impl ModulesState {
    pub(crate) fn new() -> ModulesState {
        ModulesState {
            modules: Vec::new(),
        }
    }
}

impl Os {
    /// Loads a module with `code_len` bytes of code. Each load gets a fresh code range, as a real
    /// loader may map a reloaded library elsewhere.
    pub fn load_module(
        &mut self,
        name: &str,
        code_len: u64,
        site: Site,
    ) -> Result<ModuleId, Errno> {
        let index = self.modules.modules.len() as u64;
        let code_len = code_len.clamp(1, MODULE_CODE_STRIDE);
        let code_start = MODULE_CODE_BASE + index * MODULE_CODE_STRIDE;
        if code_start + MODULE_CODE_STRIDE > 0x7fff_ffff_0000 {
            // Every load takes a fresh 16 MiB code range, so a load/unload loop runs out of them
            // after 65,535 loads: a bound, like any other limit.
            self.report_budget(
                "module code ranges",
                index,
                site,
                "likely cause: a load/unload loop without end, or loads retried after every failure",
            );
            return Err(Errno::Enomem);
        }
        let here = self.here(site);
        let record = self.resources.acquire(KINDS.module, 1, code_len, 0, here);
        self.modules.modules.push(Module {
            name: name.to_string(),
            code_start,
            code_len,
            record: Some(record),
            unloaded_by: None,
        });
        self.syscall("modules.load", index, code_len);
        Ok(ModuleId(index as u32))
    }

    /// The address of `offset` inside a module's code (an unloaded module's too: where its code
    /// was). A module that was never loaded has no code: an invariant finding, and the null
    /// address, which lies in no code, so a call through it is a fault.
    pub fn module_code(&mut self, module: ModuleId, offset: u64, site: Site) -> CodeAddr {
        let Some(m) = self.modules.modules.get(module.0 as usize) else {
            let headline = format!("code of module #{}, which was never loaded", module.0);
            self.invariant("module", site, headline);
            return CodeAddr(0);
        };
        CodeAddr(m.code_start + offset.min(m.code_len - 1))
    }

    /// Unloads a module. Reports TLS destructors and exit hooks that still point into it.
    pub fn unload_module(&mut self, module: ModuleId, site: Site) -> Result<(), Errno> {
        if !self.module_is_loaded(module, "unload", site) {
            return Err(Errno::Einval);
        }
        let here = self.here(site);
        let m = &mut self.modules.modules[module.0 as usize];
        let record = m.record.take().expect("a loaded module holds its record");
        m.unloaded_by = Some(here);
        let (start, end, name) = (m.code_start, m.code_start + m.code_len, m.name.clone());
        self.resources.release_id(record);
        self.syscall("modules.unload", u64::from(module.0), 0);
        for (key, code) in self.tls_destructors_in(start, end) {
            let finding = Finding::new(
                FindingKind::Invariant,
                "dangling tls destructor",
                site,
                format!("TLS key {} keeps a destructor at {:#x} inside `{name}`, which was just unloaded", key.0, code.0),
            )
            .detail_op("unloaded", here.to_string(), here.op_ref())
            .note("a thread that exits later would call into unmapped code");
            self.report(finding);
        }
        for code in self.exit_hooks_in(start, end) {
            let finding = Finding::new(
                FindingKind::Invariant,
                "dangling exit hook",
                site,
                format!(
                    "an exit hook at {:#x} inside `{name}` is still registered after unload",
                    code.0
                ),
            )
            .detail_op("unloaded", here.to_string(), here.op_ref());
            self.report(finding);
        }
        Ok(())
    }

    /// Whether `module` is loaded now; if not, an invariant finding that says what `what` (a
    /// verb: `"unload"`) was asked of it: "unload module `liba.so`, which was unloaded by …", or
    /// "unload module #3, which was never loaded".
    pub(crate) fn module_is_loaded(&mut self, module: ModuleId, what: &str, site: Site) -> bool {
        let headline = match self.modules.modules.get(module.0 as usize) {
            Some(m) if m.record.is_some() => return true,
            Some(m) => format!(
                "{what} module `{}`, which was unloaded by {}",
                m.name,
                m.unloaded_by.unwrap_or_default()
            ),
            None => format!("{what} module #{}, which was never loaded", module.0),
        };
        self.invariant("module", site, headline);
        false
    }

    /// Whether `code` lies in the main program or a loaded module. Calling code that does not is a
    /// fault finding, reported here with `what` naming the caller (a TLS destructor, an exit hook).
    pub fn check_code(&mut self, code: CodeAddr, what: &str, site: Site) -> bool {
        if code.0 >= MAIN_CODE.0 && code.0 < MAIN_CODE.0 + MAIN_CODE_LEN {
            return true;
        }
        let found = self
            .modules
            .modules
            .iter()
            .find(|m| code.0 >= m.code_start && code.0 < m.code_start + m.code_len);
        let (headline, unloaded) = match found {
            Some(m) if m.record.is_some() => return true,
            Some(m) => (
                format!(
                    "{what} calls {:#x} in `{}`, which is unloaded",
                    code.0, m.name
                ),
                m.unloaded_by,
            ),
            None => (
                format!("{what} calls {:#x}, which is not code", code.0),
                None,
            ),
        };
        let here = self.here(site);
        let mut finding = Finding::new(FindingKind::Fault, "unloaded code", site, headline);
        if let Some(by) = unloaded {
            finding = finding.detail_op("unloaded", by.to_string(), by.op_ref());
        }
        self.report(finding.detail_op("called", here.to_string(), here.op_ref()));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unload_reports_dangling_tls_destructors_and_calls_into_unloaded_code_fault() {
        let mut os = Os::for_tests(1);
        let module = os.load_module("libsnmalloc.so", 4096, "dlopen").unwrap();
        let destructor = os.module_code(module, 16, "t");
        assert!(os.check_code(destructor, "tls destructor", "t"));
        let key = os.tls_key_create(Some(destructor), "thread_init").unwrap();
        os.unload_module(module, "dlclose").unwrap();
        assert!(!os.check_code(destructor, "tls destructor", "thread_exit"));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert_eq!(findings[0].resource, "dangling tls destructor");
        assert_eq!(findings[1].kind, FindingKind::Fault);
        assert_eq!(
            os.unload_module(module, "dlclose"),
            Err(Errno::Einval),
            "unloaded twice"
        );
        assert_eq!(os.unload_module(ModuleId(7), "dlclose"), Err(Errno::Einval));
        let headlines: Vec<String> = os.take_findings().into_iter().map(|f| f.headline).collect();
        assert_eq!(headlines.len(), 2, "{headlines:?}");
        assert!(
            headlines[0].starts_with(
                "unload module `libsnmalloc.so`, which was unloaded by the subject's `new`"
            ),
            "{headlines:?}"
        );
        assert_eq!(headlines[1], "unload module #7, which was never loaded");
        os.tls_key_delete(key, "t").unwrap();
        let again = os.load_module("libsnmalloc.so", 4096, "dlopen").unwrap();
        assert_ne!(
            os.module_code(again, 16, "t"),
            destructor,
            "a reload maps code elsewhere"
        );
    }

    #[test]
    fn the_code_of_a_module_never_loaded_is_an_invariant_finding_and_null() {
        let mut os = Os::for_tests(1);
        let module = os.load_module("liba.so", 4096, "dlopen").unwrap();
        let code = os.module_code(ModuleId(7), 16, "thread_init");
        assert_eq!(code, CodeAddr(0));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].kind, FindingKind::Invariant);
        assert_eq!(findings[0].resource, "module");
        assert_eq!(
            findings[0].headline,
            "code of module #7, which was never loaded"
        );
        assert!(
            !os.check_code(code, "tls destructor", "thread_exit"),
            "null is no code"
        );
        assert_eq!(os.take_findings()[0].kind, FindingKind::Fault);
        // An unloaded module's code is where it was, and asking for it is no finding.
        let code = os.module_code(module, 16, "t");
        os.unload_module(module, "dlclose").unwrap();
        assert_eq!(os.module_code(module, 16, "t"), code);
        assert!(os.findings().is_empty(), "{:?}", os.findings());
    }
}
