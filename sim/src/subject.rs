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
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Display, Write as _};
use std::sync::RwLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::findings::SourceLocation;
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
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

/// A `[config]` parameter a subject reads. The parser refuses a scenario whose `[config]` names
/// a key no parameter declares, or gives a value its kind does not allow, so a subject reads only
/// values it has declared (`Config::unsigned`, `Config::flag`, `Config::choice`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParamDecl {
    pub name: &'static str,
    pub summary: &'static str,
    pub kind: ParamKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ParamKind {
    /// An integer in `min..=max`.
    Unsigned {
        min: u64,
        max: u64,
        default: u64,
    },
    Bool {
        default: bool,
    },
    /// One of a fixed list of strings.
    Choice {
        choices: &'static [&'static str],
        default: &'static str,
    },
}

impl ParamKind {
    /// What a value must be, as the parser's errors and `sim list` say it.
    pub fn expected(&self) -> String {
        match self {
            ParamKind::Unsigned { min, max, .. } => format!("an integer in {min}..={max}"),
            ParamKind::Bool { .. } => "true or false".into(),
            ParamKind::Choice { choices, .. } => {
                let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
                format!("one of {}", quoted.join(", "))
            }
        }
    }

    /// The value a scenario that leaves the parameter out gets, as TOML would write it.
    pub fn default_text(&self) -> String {
        match self {
            ParamKind::Unsigned { default, .. } => default.to_string(),
            ParamKind::Bool { default } => default.to_string(),
            ParamKind::Choice { default, .. } => format!("\"{default}\""),
        }
    }

    /// Why `value` is not allowed, or `None` when it is.
    pub fn check(&self, value: &toml::Value) -> Option<String> {
        let allowed = match (self, value) {
            (ParamKind::Unsigned { min, max, .. }, toml::Value::Integer(n)) => {
                u64::try_from(*n).is_ok_and(|n| (*min..=*max).contains(&n))
            }
            (ParamKind::Bool { .. }, toml::Value::Boolean(_)) => true,
            (ParamKind::Choice { choices, .. }, toml::Value::String(text)) => {
                choices.contains(&text.as_str())
            }
            _ => {
                return Some(format!(
                    "must be {}, found {}",
                    self.expected(),
                    value.type_str()
                ));
            }
        };
        (!allowed).then(|| format!("must be {}, found {value}", self.expected()))
    }
}

/// An unsigned `[config]` parameter, declared as a constant so that the subject's `info` and its
/// `new` read the same name, range and default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsignedParam {
    pub name: &'static str,
    pub summary: &'static str,
    pub min: u64,
    pub max: u64,
    pub default: u64,
}

impl UnsignedParam {
    pub fn decl(&self) -> ParamDecl {
        ParamDecl {
            name: self.name,
            summary: self.summary,
            kind: ParamKind::Unsigned {
                min: self.min,
                max: self.max,
                default: self.default,
            },
        }
    }
}

/// A `true`/`false` `[config]` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoolParam {
    pub name: &'static str,
    pub summary: &'static str,
    pub default: bool,
}

impl BoolParam {
    pub fn decl(&self) -> ParamDecl {
        ParamDecl {
            name: self.name,
            summary: self.summary,
            kind: ParamKind::Bool {
                default: self.default,
            },
        }
    }
}

/// A `[config]` parameter that is one of a fixed list of strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChoiceParam {
    pub name: &'static str,
    pub summary: &'static str,
    pub choices: &'static [&'static str],
    pub default: &'static str,
}

impl ChoiceParam {
    pub fn decl(&self) -> ParamDecl {
        ParamDecl {
            name: self.name,
            summary: self.summary,
            kind: ParamKind::Choice {
                choices: self.choices,
                default: self.default,
            },
        }
    }
}

/// What a subject is, for `sim list`, the parser and the generator. `Default` is an empty one
/// (no ops, defects, caches or params, not host-backed), so that an `info()` can name what it has
/// and end with `..Default::default()`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SubjectInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub ops: Vec<OpDoc>,
    pub defects: Vec<DefectInfo>,
    pub caches: Vec<CacheDecl>,
    /// The `[config]` parameters the subject reads; any other key is refused.
    pub params: Vec<ParamDecl>,
    /// True when the subject runs real third-party code on host-backed memory: such runs go in a
    /// child process so that a real crash becomes a finding instead of killing the tool.
    pub host_backed: bool,
}

impl SubjectInfo {
    /// The names of the subject's defects, in the order it declares them.
    pub fn defect_names(&self) -> Vec<&'static str> {
        self.defects.iter().map(|d| d.name).collect()
    }
}

thread_local! {
    /// Set while a subject's code runs on this thread under a `catch_unwind` of its caller: a
    /// panic then is the subject's, and its caller turns it into a finding (the runner) or a
    /// diagnostic (the parser's check of `[limits]`, `scenario::construction`).
    static IN_SIMULATION: Cell<bool> = const { Cell::new(false) };
}

/// Whether a subject's code runs on this thread with its panics caught (for panic hooks:
/// `fuzzing::install_panic_hook`).
pub fn in_simulation() -> bool {
    IN_SIMULATION.with(Cell::get)
}

/// Marks this thread as running a subject's code whose panics its caller catches, until dropped;
/// then as it was, so that a guard inside another (a parse within a fuzz input's run) does not
/// end the outer one.
pub(crate) struct SimulationGuard {
    before: bool,
}

impl SimulationGuard {
    pub(crate) fn enter() -> SimulationGuard {
        SimulationGuard {
            before: IN_SIMULATION.with(|flag| flag.replace(true)),
        }
    }
}

impl Drop for SimulationGuard {
    fn drop(&mut self) {
        IN_SIMULATION.with(|flag| flag.set(self.before));
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".into()
    }
}

/// The text of a panic that sim caught as its own bug (an internal error): its message, then,
/// when a hook of sim's recorded it (`note_panic_location`), a line saying where it was raised,
/// which the quiet hook of the CLI would otherwise keep from anyone.
pub(crate) fn internal_panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(report) = payload.downcast_ref::<SubjectCodePanic>() {
        return report.0.clone();
    }
    let message = panic_message(payload);
    match take_panic_location() {
        Some(location) => format!("{message}\n  panicked at: {location}"),
        None => message,
    }
}

/// A panic of a subject's own code outside any run (its `validate_op` or `check_config` while a
/// file is read, its `Arbitrary`, `closing_ops` or `validate_op` while a scenario is generated or
/// `sim list` makes its examples), unwinding on with the report that says so: whoever catches it
/// as an internal error (the CLI, a sweep's pair, a fuzz target) says this instead of blaming sim
/// (`internal_panic_text`), and a sweep's record flags it (`RunRecord::subject_code`).
pub(crate) struct SubjectCodePanic(pub(crate) String);

/// The first line of the report of a panic of the subject's `method` while `doing`: the panic's
/// message and, when a hook of sim's recorded it, where it was raised.
fn subject_panic_headline(
    subject: &str,
    method: &str,
    doing: &str,
    payload: &(dyn std::any::Any + Send),
) -> String {
    let message = panic_message(payload);
    let at = take_panic_location().map_or(String::new(), |at| format!(" (panicked at {at})"));
    format!("subject `{subject}`'s own code panicked: its `{method}`, {doing}: {message}{at}")
}

/// The note that ends the report of a panic of the subject's `method` outside any run.
fn subject_panic_note(method: &str) -> String {
    format!(
        "note: this is a bug in the subject's `{method}`, not in sim: no run could start, so it \
         is no finding (exit 3, as for an internal error)"
    )
}

/// Unwinds on with `report` of a panic of the subject's `method`, and the note that says whose bug
/// it is, as a `SubjectCodePanic`, without calling the panic hook again (the subject's own panic
/// already went through it).
pub(crate) fn unwind_subject_panic(report: impl std::fmt::Display, method: &str) -> ! {
    let report = format!("{report}\n{}", subject_panic_note(method));
    std::panic::resume_unwind(Box::new(SubjectCodePanic(report)))
}

/// Calls `body`, the subject `S`'s `method` run outside any run while `doing`: its value, or, when
/// the subject's code panicked, the headline that says so and where (`subject_panic_headline`),
/// for the caller to say at what it was doing. The one place a panic of a subject's code outside
/// a run is caught. A `SubjectCodePanic` unwinds on as it came: it already says whose and where.
pub(crate) fn catch_subject_code<S: Subject, T>(
    method: &str,
    doing: &str,
    body: impl FnOnce() -> T,
) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).map_err(|payload| {
        if payload.is::<SubjectCodePanic>() {
            std::panic::resume_unwind(payload);
        }
        subject_panic_headline(info_of::<S>().name, method, doing, &*payload)
    })
}

/// `catch_subject_code`, a panic unwinding on as a `SubjectCodePanic` that says the subject's
/// code panicked, where: for callers with nothing to add to its place.
pub(crate) fn calling_subject_code<S: Subject, T>(
    method: &str,
    doing: &str,
    body: impl FnOnce() -> T,
) -> T {
    catch_subject_code::<S, T>(method, doing, body)
        .unwrap_or_else(|headline| unwind_subject_panic(headline, method))
}

/// How sim reports a panic it caught as its own bug, for the CLI and the fuzz targets alike:
/// `sim: internal error{context}: ` and `internal_panic_text`, then the note that the bug is
/// sim's, not the subject's, ending with `note_tail`.
pub(crate) fn internal_error_report(
    payload: &(dyn std::any::Any + Send),
    context: &str,
    note_tail: &str,
) -> String {
    if let Some(report) = payload.downcast_ref::<SubjectCodePanic>() {
        // Its report says whose bug it is, where, and what comes of it.
        return report.0.clone();
    }
    let message = internal_panic_text(payload);
    format!(
        "sim: internal error{context}: {message}\nnote: this is a bug in sim, not in the subject{note_tail}"
    )
}

thread_local! {
    /// Where the last panic on this thread was raised, as the panic hooks sim installs record it
    /// (`note_panic_location`), until whoever catches the panic takes it (`take_panic_location`).
    /// A hook runs on the panicking thread before the unwind, so the catcher on that thread reads
    /// the location of the panic it caught.
    static LAST_PANIC_LOCATION: RefCell<Option<SourceLocation>> = const { RefCell::new(None) };
}

/// Records where the panic `info` describes was raised, for this thread's catcher of it: the
/// runner, which puts it on the `panic` finding (`Finding::panicked_at`), or the CLI, which puts
/// it in its internal error. Every panic hook sim installs calls this, for every panic: a panic
/// inside a simulation (`in_simulation`) or in sim's own code alike. A hook of one's own can
/// call it too; `install_panic_location_hook` installs one that does.
pub fn note_panic_location(info: &std::panic::PanicHookInfo<'_>) {
    let location = info.location().map(SourceLocation::of);
    // A hook may run while the thread's locals are being destroyed; then there is no catcher.
    let _ = LAST_PANIC_LOCATION.try_with(|last| *last.borrow_mut() = location);
}

/// Where the last panic on this thread was raised, as a hook recorded it (`note_panic_location`),
/// and forgets it: `None` when no hook of sim's saw a panic since it was last taken.
pub fn take_panic_location() -> Option<SourceLocation> {
    LAST_PANIC_LOCATION
        .try_with(|last| last.borrow_mut().take())
        .ok()
        .flatten()
}

/// Installs a panic hook that records where each panic was raised (`note_panic_location`) and
/// then calls the hook that was installed before it: for a program or test of one's own that runs
/// subjects through the runner, so that a `panic` finding names the file and line where the
/// subject panicked (`Finding::panicked_at`). The `sim` CLI (`cli::main_with`) and the fuzz
/// targets (`fuzzing::install_panic_hook`) record locations already. Installing a hook is
/// process-wide: call this once, from `main` or the one test binary that needs it.
///
/// In an isolated run's child process the hook before it is not called: a fork copies the locks
/// other threads of the parent held, and the default hook waits for ever on its backtrace lock
/// when another thread was printing a panic at the fork. The child's output is not read anyway.
pub fn install_panic_location_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        note_panic_location(info);
        if !IN_FORKED_CHILD.load(std::sync::atomic::Ordering::Relaxed) {
            previous(info);
        }
    }));
}

/// Set in a child process the isolated runner forked (`note_forked_child`).
static IN_FORKED_CHILD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says that this process is a child the isolated runner forked, which only runs scenarios and
/// ends in `_exit`: panic hooks of sim's then call no hook installed before them.
pub(crate) fn note_forked_child() {
    IN_FORKED_CHILD.store(true, std::sync::atomic::Ordering::Relaxed);
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
    /// The configuration a scenario's defects and `[config]` table give its subject: one
    /// construction for the parser's checks, the runner and the host check, so that each sees
    /// the subject as the others do.
    pub fn new<'a>(defects: impl IntoIterator<Item = &'a String>, params: &toml::Table) -> Config {
        Config {
            defects: defects.into_iter().cloned().collect(),
            params: params.clone(),
        }
    }

    pub fn defect(&self, name: &str) -> bool {
        self.defects.contains(name)
    }

    /// The scenario's value of `param`, or its default. A parsed scenario holds only values the
    /// declaration allows; one that does not (a `Config` built in code) gets the default too, so
    /// a subject never sees a value outside what it declared.
    pub fn unsigned(&self, param: &UnsignedParam) -> u64 {
        self.params
            .get(param.name)
            .and_then(|value| value.as_integer())
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| (param.min..=param.max).contains(n))
            .unwrap_or(param.default)
    }

    /// Whether the scenario sets `param` at all, for a subject whose own default is "leave it".
    pub fn is_set(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    pub fn flag(&self, param: &BoolParam) -> bool {
        self.params
            .get(param.name)
            .and_then(|value| value.as_bool())
            .unwrap_or(param.default)
    }

    /// One of `param.choices`: the scenario's, or the default.
    pub fn choice(&self, param: &ChoiceParam) -> &'static str {
        self.params
            .get(param.name)
            .and_then(|value| value.as_str())
            .and_then(|text| param.choices.iter().find(|&&choice| choice == text))
            .copied()
            .unwrap_or(param.default)
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
    /// Every name counts as defined: to ask whether an op is valid apart from the names it uses
    /// (`sim list`'s examples, each checked alone).
    all_defined: bool,
}

/// A point to roll `Names` back to: everything defined after it is forgotten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamesCheckpoint(u64);

thread_local! {
    static NAME_KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Frees the buffer `with_key` formats into on this thread, so that the next key grows it from
/// nothing as the first did (see `fuzzing::reset_thread_spares`).
pub fn forget_thread_spares() {
    NAME_KEY.with(|buffer| drop(buffer.take()));
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

    /// Names in which every name counts as defined, so that validating an op there checks all
    /// but whether the names it uses were defined before it.
    pub(crate) fn all_defined() -> Names {
        Names {
            all_defined: true,
            ..Names::default()
        }
    }

    pub fn is_defined(&self, namespace: &str, name: impl Display) -> bool {
        if self.all_defined {
            return true;
        }
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

/// Why [`Subject::validate_op`] refuses an op, and which of its fields is at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRefusal {
    /// The field whose value is at fault, by the key scenario files write it with (`slot`);
    /// `None` when the op as a whole is (a heap it needs and no op created).
    pub field: Option<&'static str>,
    pub message: String,
}

impl OpRefusal {
    /// A refusal of the value of `field`.
    pub fn at(field: &'static str, message: impl Into<String>) -> OpRefusal {
        OpRefusal {
            field: Some(field),
            message: message.into(),
        }
    }

    /// Makes a refusal message into a refusal of the value of `field`: for `map_err` over what
    /// returns a message (`names.require(..).map_err(OpRefusal::of_field("slot"))?`).
    pub fn of_field(field: &'static str) -> impl FnOnce(String) -> OpRefusal {
        move |message| OpRefusal::at(field, message)
    }
}

/// A refusal of the op as a whole: what `?` makes of a message.
impl From<String> for OpRefusal {
    fn from(message: String) -> OpRefusal {
        OpRefusal {
            field: None,
            message,
        }
    }
}

impl Display for OpRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
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

    /// Checks `[config]` values together, where each alone is in its declared range but some
    /// combinations cannot run (a pagemap larger than the address space). Called when a scenario
    /// file is parsed: `Err((param, why))` refuses the file at `param`'s value (or at its
    /// `[config]` table when `param` is left at its default), exit 2, instead of a run whose
    /// finding would blame the subject. Default: every combination runs.
    fn check_config(_config: &Config) -> Result<(), (&'static str, String)> {
        Ok(())
    }

    /// Whether this host gives what a run with `config` needs from it and may refuse (real
    /// memory, for a host-backed subject). The commands ask once per scenario before running
    /// it: a refusal is then an error of the command that says what to change (exit 3, after
    /// the other scenarios' reports), where the same refusal inside `new` could only be a
    /// `panic` finding about the subject. Default: nothing to ask.
    fn check_host(_config: &Config) -> Result<(), String> {
        Ok(())
    }

    /// The op's name as written in scenario files.
    fn op_name(op: &Self::Op) -> &'static str;

    /// Applies one op on thread `tid`.
    fn apply(&mut self, os: &mut Os, tid: Tid, op: &Self::Op) -> Step<Self>;

    /// Runs subject code the OS calls back: a TLS destructor or an exit hook at `code`.
    fn call(&mut self, _os: &mut Os, _tid: Tid, _code: CodeAddr, _arg: u64) -> Step<Self> {
        Step::Done
    }

    /// Static check of one op in program order: names used must be defined earlier. The
    /// framework calls [`Subject::validate_op`], which calls this unless the subject implements
    /// that one instead (as a subject that names the field at fault does).
    fn validate(_op: &Self::Op, _names: &mut Names) -> Result<(), String> {
        Ok(())
    }

    /// [`Subject::validate`], saying which field's value is at fault when one is, so that a
    /// scenario file's error points at that value rather than at the whole op. What the framework
    /// calls to check an op. Default: `validate`'s refusal, about the op as a whole.
    fn validate_op(op: &Self::Op, names: &mut Names) -> Result<(), OpRefusal> {
        Self::validate(op, names).map_err(OpRefusal::from)
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

/// The `op` tags of the runner's own ops, which scenario files write in the same lists as a
/// subject's: no subject op may take one (`check_description`, `Registry::with`).
pub(crate) const RUNNER_OPS: [&str; 4] = ["spawn", "join", "exit", "sleep"];

/// Why an op may not be named `name`: the runner's own ops are written with the same `op` tag
/// in the same lists, and the parser reads such a tag as the runner's op, so the subject's op
/// could never be written in a scenario file (`sim list` would print an example that does not
/// parse).
fn reserved_op_problem(name: &str) -> String {
    format!(
        "op `{name}` has a name the runner's own ops take ({}); rename it (`#[serde(rename = \"…\")]` \
         and `op_name`)",
        RUNNER_OPS.join(", ")
    )
}

/// One problem per op `info` declares under a name the runner's ops take.
pub(crate) fn reserved_op_problems(info: &SubjectInfo) -> Vec<String> {
    info.ops
        .iter()
        .filter(|op| RUNNER_OPS.contains(&op.name))
        .map(|op| reserved_op_problem(op.name))
        .collect()
}

/// Ops generated for [`check_description`]: enough that every variant of a small op enum turns up.
const DESCRIPTION_CHECK_OPS: usize = 4096;

/// Checks that a subject describes itself as its ops are: every op `S::op_name` names is
/// documented in `info().ops` and is the `op` tag the op is written with in scenario files, and
/// no op, defect, cache or `[config]` parameter is declared twice. Nothing else notices when these
/// drift apart (an `op_name` of `"klose"` for `close` only shows as a wrong name in reports and
/// in `sim list`), so a subject's own tests call it: `sim::subject::check_description::<Mine>()`.
/// The ops are generated from a fixed seed, so the check is the same on every run.
pub fn check_description<S: Subject>() -> Result<(), String> {
    use arbitrary::{Arbitrary, Unstructured};

    let info = S::info();
    let mut problems = Vec::new();
    let mut twice = |what: &str, names: Vec<&str>| {
        let mut seen = BTreeSet::new();
        for name in names {
            if !seen.insert(name) {
                problems.push(format!("{what} `{name}` is declared twice"));
            }
        }
    };
    twice("op", info.ops.iter().map(|op| op.name).collect());
    twice("defect", info.defect_names());
    twice("cache", info.caches.iter().map(|c| c.kind).collect());
    twice(
        "[config] parameter",
        info.params.iter().map(|p| p.name).collect(),
    );
    problems.extend(reserved_op_problems(&info));

    let mut bytes = vec![0u8; 64 * 1024];
    crate::rng::Rng::new(0, crate::rng::Stream::Generator).fill_bytes(&mut bytes);
    let mut input = Unstructured::new(&bytes);
    // Each wrong name once, with the first op that showed it.
    let mut undocumented: BTreeMap<&str, String> = BTreeMap::new();
    let mut mistagged: BTreeMap<(&str, String), String> = BTreeMap::new();
    for _ in 0..DESCRIPTION_CHECK_OPS {
        let Ok(op) = S::Op::arbitrary(&mut input) else {
            break;
        };
        let name = S::op_name(&op);
        if !info.ops.iter().any(|doc| doc.name == name) {
            undocumented
                .entry(name)
                .or_insert_with(|| format!("{op:?}"));
        }
        // An op whose fields TOML cannot hold (an integer past i64::MAX) has no tag to compare.
        let tag = toml::Value::try_from(&op).ok().and_then(|value| {
            value
                .get("op")
                .and_then(|tag| tag.as_str().map(str::to_string))
        });
        if let Some(tag) = &tag
            && RUNNER_OPS.contains(&tag.as_str())
        {
            problems.push(reserved_op_problem(tag));
        }
        if let Some(tag) = tag
            && tag != name
        {
            mistagged
                .entry((name, tag))
                .or_insert_with(|| format!("{op:?}"));
        }
    }
    for (name, op) in undocumented {
        problems.push(format!(
            "op `{name}` (`op_name` of {op}) is not in `info().ops`"
        ));
    }
    for ((name, tag), op) in mistagged {
        problems.push(format!(
            "`op_name` says `{name}` for an op written `op = \"{tag}\"` ({op})"
        ));
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "subject `{}` describes itself wrongly:\n  {}",
            info.name,
            problems.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subject whose own cold code panics on cue: `validate_op` on `pick` of 7, `check_config`
    /// on a `[config]` `trip` of 3, `closing_ops` once `pick` 5 was defined.
    struct Touchy;

    #[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, arbitrary::Arbitrary)]
    #[serde(tag = "op", rename_all = "kebab-case")]
    enum TouchyOp {
        Pick { n: u8 },
    }

    const TRIP: UnsignedParam = UnsignedParam {
        name: "trip",
        summary: "3 makes check_config panic",
        min: 0,
        max: 9,
        default: 0,
    };

    impl Subject for Touchy {
        type Op = TouchyOp;
        fn info() -> SubjectInfo {
            SubjectInfo {
                name: "touchy",
                ops: vec![OpDoc {
                    name: "pick",
                    summary: "",
                }],
                params: vec![TRIP.decl()],
                ..SubjectInfo::default()
            }
        }
        fn new(_os: &mut Os, _config: &Config) -> Touchy {
            Touchy
        }
        fn op_name(_op: &TouchyOp) -> &'static str {
            "pick"
        }
        fn apply(&mut self, _os: &mut Os, _tid: Tid, _op: &TouchyOp) -> Step<Touchy> {
            Step::Done
        }
        fn validate_op(op: &TouchyOp, names: &mut Names) -> Result<(), OpRefusal> {
            let TouchyOp::Pick { n } = op;
            assert!(*n != 7, "seven is unlucky");
            names.define("pick", n);
            Ok(())
        }
        fn check_config(config: &Config) -> Result<(), (&'static str, String)> {
            assert!(config.unsigned(&TRIP) != 3, "trip wire");
            Ok(())
        }
        fn closing_ops(names: &Names) -> Vec<TouchyOp> {
            assert!(!names.is_defined("pick", 5), "cannot close five");
            Vec::new()
        }
    }

    /// The report a panic that `body` raised carries: a subject's cold code's panic is the
    /// subject's (`SubjectCodePanic`), whatever catches it.
    fn subject_panic_report(body: impl FnOnce()) -> String {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_err();
        assert!(
            payload.downcast_ref::<SubjectCodePanic>().is_some(),
            "{}",
            internal_panic_text(&*payload)
        );
        assert_eq!(
            internal_error_report(&*payload, "", "; please report it"),
            internal_panic_text(&*payload),
            "no `internal error` wording about sim"
        );
        internal_panic_text(&*payload)
    }

    #[test]
    fn a_panic_of_validate_op_while_a_file_is_read_is_the_subjects_at_the_op() {
        let source = "name = \"t\"\nsubject = \"touchy\"\n[[lifecycle]]\nname = \"l\"\nops = [\n  { op = \"pick\", n = 1 },\n  { op = \"pick\", n = 7 },\n]\n";
        let report = subject_panic_report(|| {
            let _ = crate::scenario::parse::parse::<Touchy>("t.toml", source);
        });
        assert!(
            report.starts_with(
                "error: subject `touchy`'s own code panicked: its `validate_op`, checking this op: \
                 seven is unlucky"
            ),
            "{report}"
        );
        assert!(report.contains("  --> t.toml:7:3\n"), "{report}");
        assert!(
            report.contains("7 |   { op = \"pick\", n = 7 },"),
            "{report}"
        );
        assert!(report.contains("note: this is a bug in the subject's `validate_op`, not in sim"));
    }

    #[test]
    fn a_panic_of_check_config_while_a_file_is_read_is_the_subjects_at_config() {
        let source = "name = \"t\"\nsubject = \"touchy\"\n[config]\ntrip = 3\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"pick\", n = 1 }]\n";
        let report = subject_panic_report(|| {
            let _ = crate::scenario::parse::parse::<Touchy>("t.toml", source);
        });
        assert!(
            report.starts_with(
                "error: subject `touchy`'s own code panicked: its `check_config`, checking \
                 `[config]`: trip wire"
            ),
            "{report}"
        );
        assert!(report.contains("  --> t.toml:4:1\n"), "{report}");
        assert!(report.contains("4 | trip = 3"), "{report}");
        assert!(report.contains("note: this is a bug in the subject's `check_config`"));
    }

    #[test]
    fn a_panic_of_closing_ops_while_generating_is_the_subjects() {
        let options = crate::scenario::generate::GenerateOptions::default();
        // Some seed's lifecycle defines `pick` 5 (and none picks 7 before it), then closes.
        let report = (0..2000)
            .find_map(|seed| {
                std::panic::catch_unwind(|| {
                    crate::scenario::generate::from_seed::<Touchy>(seed, &options);
                })
                .err()
                .map(|payload| internal_panic_text(&*payload))
                .filter(|text| text.contains("closing_ops"))
            })
            .expect("a seed whose lifecycle picks 5");
        assert!(
            report.starts_with(
                "subject `touchy`'s own code panicked: its `closing_ops`, ending a generated \
                 lifecycle: cannot close five"
            ),
            "{report}"
        );
    }

    #[test]
    fn an_op_named_as_a_runner_op_is_refused() {
        #[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, arbitrary::Arbitrary)]
        #[serde(tag = "op", rename_all = "kebab-case")]
        enum NappingOp {
            Nap,
            Sleep,
        }
        struct Napping;
        impl Subject for Napping {
            type Op = NappingOp;
            fn info() -> SubjectInfo {
                let op = |name| OpDoc { name, summary: "" };
                SubjectInfo {
                    name: "napping",
                    ops: vec![op("nap"), op("sleep")],
                    ..SubjectInfo::default()
                }
            }
            fn new(_os: &mut Os, _config: &Config) -> Napping {
                Napping
            }
            fn op_name(op: &NappingOp) -> &'static str {
                match op {
                    NappingOp::Nap => "nap",
                    NappingOp::Sleep => "sleep",
                }
            }
            fn apply(&mut self, _os: &mut Os, _tid: Tid, _op: &NappingOp) -> Step<Napping> {
                Step::Done
            }
        }
        let problem = "op `sleep` has a name the runner's own ops take (spawn, join, exit, \
                       sleep); rename it";
        let refused = check_description::<Napping>().unwrap_err();
        assert!(refused.contains(problem), "{refused}");
        assert_eq!(
            refused.matches("op `sleep` has a name").count(),
            1,
            "{refused}"
        );
        let registered = std::panic::catch_unwind(|| {
            crate::registry::Registry::builtin().with(crate::registry::erase::<Napping>())
        })
        .map(|_| ())
        .unwrap_err();
        let message = panic_message(&*registered);
        assert!(
            message.starts_with("subject `napping` cannot be registered: ")
                && message.contains(problem),
            "{message}"
        );
        assert_eq!(check_description::<Touchy>(), Ok(()));
    }

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
