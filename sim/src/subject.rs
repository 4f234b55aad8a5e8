//! The Subject trait: what a crate implements to be tested by the framework.
//!
//! A subject is a state machine driven by ops on simulated threads. It sees only the `Os` it is
//! given: it acquires pages, locks, fds and threads through it, and registers its own resource
//! kinds (an interpreter's allocation ids) with `os.register_kind`. It never judges itself: after
//! each lifecycle the runner asks the ledger whether everything is back at its baseline.
//!
//! Ops are the subject's own enum. They parse from scenario files (serde, internally tagged by an
//! `op` field), are generated from seeds and fuzz bytes (`arbitrary`), and print back to TOML.
//! The names `spawn`, `join`, `exit` and `sleep` are taken by the runner's own ops.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Display, Write as _};
use std::sync::RwLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::os::modules::CodeAddr;
use crate::os::{BlockReason, Os, Tid};

/// What happens after a subject handles an op or a continuation.
pub enum Step<S> {
    /// The op finished.
    Done,
    /// The thread blocks with this reason; the continuation runs when it is unblocked, with full
    /// mutable access to the subject and the OS. It may finish or block again.
    Block(BlockReason, Continuation<S>),
}

pub type Continuation<S> = Box<dyn FnOnce(&mut S, &mut Os, Tid) -> Step<S>>;

impl<S> Step<S> {
    pub fn block(
        reason: BlockReason,
        continuation: impl FnOnce(&mut S, &mut Os, Tid) -> Step<S> + 'static,
    ) -> Step<S> {
        Step::Block(reason, Box::new(continuation))
    }
}

impl<S> Debug for Step<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Done => write!(f, "Done"),
            Step::Block(reason, _) => write!(f, "Block({reason:?})"),
        }
    }
}

/// A named, seeded real bug that a subject can switch on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DefectInfo {
    pub name: &'static str,
    pub summary: &'static str,
    /// The public report the defect follows.
    pub source: &'static str,
}

/// A resource kind the subject may legitimately keep across repetitions, up to a bound per key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CacheDecl {
    pub kind: &'static str,
    pub per_key_max: u64,
    pub why: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpDoc {
    pub name: &'static str,
    pub summary: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubjectInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub ops: Vec<OpDoc>,
    pub defects: Vec<DefectInfo>,
    pub caches: Vec<CacheDecl>,
    /// True when the subject runs real third-party code on host-backed memory: such runs go in a
    /// child process so that a real crash becomes a finding instead of killing the tool.
    pub host_backed: bool,
}

/// `S::info()`, built once per subject type and kept for the life of the process.
///
/// `Subject::info` builds its vectors afresh on every call, and the generator and the runner need
/// it on every run: under a fuzzer that was several allocations per input for a value that never
/// changes. There are a handful of subject types, so the cache is a short list, and each entry is
/// leaked once.
pub fn info_of<S: Subject>() -> &'static SubjectInfo {
    static CACHE: MadeOnce<TypeId, SubjectInfo> = RwLock::new(Vec::new());
    made_once(&CACHE, TypeId::of::<S>(), || Box::leak(Box::new(S::info())))
}

/// A per-process cache of values made once per key and leaked: a short list, for a handful of
/// keys (subject types, subject names).
pub(crate) type MadeOnce<K, V> = RwLock<Vec<(K, &'static V)>>;

/// The value `cache` holds for `key`, made by `make` (and kept) the first time it is asked for.
pub(crate) fn made_once<K: PartialEq, V: ?Sized>(
    cache: &MadeOnce<K, V>,
    key: K,
    make: impl FnOnce() -> &'static V,
) -> &'static V {
    let find = |cache: &[(K, &'static V)]| {
        cache
            .iter()
            .find(|(known, _)| *known == key)
            .map(|&(_, value)| value)
    };
    // A panic cannot leave the list half-written (a push is the only write), so a poisoned lock
    // still holds a valid list.
    if let Some(value) = find(&cache.read().unwrap_or_else(|e| e.into_inner())) {
        return value;
    }
    let mut list = cache.write().unwrap_or_else(|e| e.into_inner());
    // Another thread may have added it between the two locks.
    if let Some(value) = find(&list) {
        return value;
    }
    let value = make();
    list.push((key, value));
    value
}

/// How a subject is configured for one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub defects: BTreeSet<String>,
    /// The scenario's `[config]` table, for subject parameters.
    pub params: toml::Table,
}

impl Config {
    pub fn defect(&self, name: &str) -> bool {
        self.defects.contains(name)
    }

    pub fn param_u64(&self, name: &str, default: u64) -> u64 {
        self.params
            .get(name)
            .and_then(|v| v.as_integer())
            .map_or(default, |v| v.max(0) as u64)
    }

    pub fn param_bool(&self, name: &str, default: bool) -> bool {
        self.params
            .get(name)
            .and_then(|v| v.as_bool())
            .unwrap_or(default)
    }
}

/// Names an op list defines and uses, for static validation (`free` of a name never allocated).
///
/// The generator validates every op it decodes, hundreds of thousands of times a second under a
/// fuzzer, so a trial validation is undone with `checkpoint`/`rollback` rather than by cloning the
/// set, and lookups format their key into a reused buffer rather than a fresh string.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// Every `namespace:name` defined, with the order of its first definition.
    defined: BTreeMap<String, u64>,
    definitions: u64,
}

/// A point to roll `Names` back to: everything defined after it is forgotten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamesCheckpoint(u64);

thread_local! {
    static NAME_KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Calls `body` with `namespace:name`, formatted into a per-thread buffer.
fn with_key<R>(namespace: &str, name: impl Display, body: impl FnOnce(&str) -> R) -> R {
    NAME_KEY.with(|buffer| {
        let mut key = buffer.borrow_mut();
        key.clear();
        // The namespace as it is: only the name needs the formatting machinery.
        key.push_str(namespace);
        key.push(':');
        let _ = write!(key, "{name}");
        body(&key)
    })
}

impl Names {
    pub fn define(&mut self, namespace: &str, name: impl Display) {
        with_key(namespace, name, |key| {
            if !self.defined.contains_key(key) {
                self.defined.insert(key.to_string(), self.definitions);
                self.definitions += 1;
            }
        });
    }

    pub fn require(&self, namespace: &str, name: impl Display, what: &str) -> Result<(), String> {
        if self.is_defined(namespace, &name) {
            Ok(())
        } else {
            Err(format!("{what} `{name}` is used before any op defines it"))
        }
    }

    pub fn is_defined(&self, namespace: &str, name: impl Display) -> bool {
        with_key(namespace, name, |key| self.defined.contains_key(key))
    }

    /// The current state, to `rollback` to if a trial validation fails.
    pub fn checkpoint(&self) -> NamesCheckpoint {
        NamesCheckpoint(self.definitions)
    }

    /// Forgets every name defined after `checkpoint`.
    pub fn rollback(&mut self, checkpoint: NamesCheckpoint) {
        if self.definitions > checkpoint.0 {
            self.defined.retain(|_, order| *order < checkpoint.0);
            self.definitions = checkpoint.0;
        }
    }
}

/// Implemented by every subject, built-in or from another crate.
pub trait Subject: Sized + 'static {
    type Op: Clone
        + Debug
        + PartialEq
        + Send
        + Sync
        + Serialize
        + DeserializeOwned
        + for<'a> arbitrary::Arbitrary<'a>
        + 'static;

    fn info() -> SubjectInfo;

    /// Creates the subject inside `os` (register kinds here). Called once per run.
    fn new(os: &mut Os, config: &Config) -> Self;

    /// The op's name as written in scenario files.
    fn op_name(op: &Self::Op) -> &'static str;

    /// Applies one op on thread `tid`.
    fn apply(&mut self, os: &mut Os, tid: Tid, op: &Self::Op) -> Step<Self>;

    /// Runs subject code the OS calls back: a TLS destructor or an exit hook at `code`.
    fn call(&mut self, _os: &mut Os, _tid: Tid, _code: CodeAddr, _arg: u64) -> Step<Self> {
        Step::Done
    }

    /// Static check of one op in program order: names used must be defined earlier.
    fn validate(_op: &Self::Op, _names: &mut Names) -> Result<(), String> {
        Ok(())
    }

    /// Ops that end every generated lifecycle, after its threads are joined, given the names
    /// defined so far: what a well-behaved host does before a lifecycle ends (a WASI embedder
    /// destroys the instances it created). Random op sequences rarely balance themselves, and an
    /// instance left alive at the end of a repetition is a leak of the scenario, not of the
    /// subject; ending each generated lifecycle with these ops keeps the leak check about the
    /// subject. They must be no-ops at runtime when there is nothing to close. The generator
    /// knows nothing of defects; hand-written scenarios are not changed. Default: none.
    fn closing_ops(_names: &Names) -> Vec<Self::Op> {
        Vec::new()
    }

    /// Invariants the subject declares about its own state, checked by the runner after every
    /// lifecycle (for example "bytes written minus read equals bytes buffered"). Each string
    /// returned is one violation.
    fn check_invariants(&self, _os: &Os) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_forgets_names_defined_after_the_checkpoint_and_keeps_earlier_ones() {
        let mut names = Names::default();
        names.define("slot", 1);
        let checkpoint = names.checkpoint();
        names.define("slot", 2);
        names.define("slot", 1);
        assert!(names.is_defined("slot", 2));
        names.rollback(checkpoint);
        assert!(names.is_defined("slot", 1), "defined before the checkpoint");
        assert!(!names.is_defined("slot", 2), "defined after it");
        assert!(!names.is_defined("heap", 1), "namespaces are separate");
        let error = names.require("slot", 2, "object").unwrap_err();
        assert_eq!(error, "object `2` is used before any op defines it");
        names.define("slot", 3);
        assert!(names.require("slot", 3, "object").is_ok());
    }
}
