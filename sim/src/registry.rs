//! The registry: subjects by name, behind an object-safe facade, so that the CLI and the sweep can
//! run any subject (built in, or from another crate) without knowing its op type.

use std::any::TypeId;
use std::sync::Arc;

use crate::findings::{OpList, OpLocation, OpRef, THREAD_EXIT_OP};
use crate::runner::{self, Outcome, RunOptions};
use crate::scenario::examples::{self, OpExample};
use crate::scenario::generate::{self, GenerateOptions};
use crate::scenario::lints::RunsAfterExit;
use crate::scenario::locations::OpLocations;
use crate::scenario::parse::{self, Diagnostic, ScenarioFile};
use crate::scenario::{Expect, OpPlace, Scenario, print};
use crate::shrink;
use crate::subject::{Subject, SubjectInfo};

/// A subject with its op type erased.
pub trait DynSubject: Send + Sync {
    fn info(&self) -> SubjectInfo;
    /// Parses a scenario file for this subject.
    fn parse(&self, path: &str, source: &str) -> Result<Box<dyn DynScenario>, Diagnostic> {
        self.parse_file(ScenarioFile::read(path, source)?)
    }
    /// Parses a scenario file already read as TOML (`Registry::parse` read it for its subject).
    fn parse_file(&self, file: ScenarioFile) -> Result<Box<dyn DynScenario>, Diagnostic>;
    fn generate(&self, seed: u64, options: &GenerateOptions) -> Box<dyn DynScenario>;
    /// A scenario decoded from fuzz bytes. Takes `self` because the subject is the factory: the
    /// registry holds subjects as trait objects, and this is how one makes its scenario type.
    #[allow(clippy::wrong_self_convention)]
    fn from_bytes(&self, bytes: &[u8], options: &GenerateOptions) -> Box<dyn DynScenario>;
    /// Whether `source` reads by way of its sketch as it reads whole (`parse::sketch_disagrees`):
    /// the `scenario-parser` fuzz target's check of the reading that saves memory.
    fn sketch_disagrees(&self, source: &str) -> Option<String>;
    /// An example of each op, as a scenario writes it, for `sim list` (`examples::op_examples`).
    /// Provided, so that a facade written before it still compiles: it lists no examples.
    fn op_examples(&self) -> Vec<OpExample> {
        Vec::new()
    }
    /// The subject type behind the facade (`erase`'s), so that a subject can be told from another
    /// of the same name: a binary of one's own may register its own `allocator`, which is not the
    /// one the built-in fuzz target of that name runs. Provided, so that a facade written before
    /// it still compiles: such a facade is no other's.
    fn subject_type(&self) -> Option<TypeId> {
        None
    }
}

/// What every scenario can tell without its op type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioMeta {
    pub name: String,
    pub subject: String,
    pub defects: Vec<String>,
    pub seed: u64,
    pub op_count: usize,
    pub lifecycle_count: usize,
    pub expect: Option<Expect>,
}

/// A parsed or generated scenario with its op type erased.
pub trait DynScenario: Send {
    fn meta(&self) -> ScenarioMeta;
    fn set_seed(&mut self, seed: u64);
    fn set_defects(&mut self, defects: Vec<String>);
    fn set_expect(&mut self, expect: Option<Expect>);
    fn set_schedule(&mut self, schedule: crate::sched::StrategyChoice);
    fn run(&self, options: RunOptions) -> Outcome;
    /// Whether this host gives what a run needs from it (`Subject::check_host`): asked before
    /// running, so that a refusal is an error of the command rather than a finding.
    fn check_host(&self) -> Result<(), String>;
    /// Runs in this process even when the subject runs real code (no crash isolation): for the
    /// fuzz targets, where a fork per input would cost more than the run, and a crash of real code
    /// is libFuzzer's to catch.
    fn run_in_process(&self, options: RunOptions) -> Outcome;
    /// Runs as an isolated run's process does (`runner::isolated::run_here`): for a fork
    /// server's runner, which exists to run scenarios and ends at a crash of real code.
    fn run_here(&self, options: RunOptions) -> Outcome;
    /// The outcome of an isolated run of this scenario whose process ended with wait status
    /// `status` without reporting one (`runner::isolated::lost_run`).
    fn lost_run(&self, options: RunOptions, status: i32) -> Outcome;
    /// The scenario as a TOML file (`print::to_toml`), or the op TOML cannot hold.
    fn to_toml(&self) -> Result<String, print::Unprintable>;
    /// The scenario as `to_toml` prints it, an op TOML cannot hold written as its JSON
    /// (`print::to_toml_for_hash`): for a hash that tells apart scenarios that do not print.
    fn to_toml_for_hash(&self) -> String;
    /// Every scenario one reduction smaller, largest reductions first.
    fn reductions(&self) -> Vec<Box<dyn DynScenario>>;
    /// The smallest scenario found whose run still shows `signature` (see `shrink`).
    fn shrink_while(&self, signature: &str, runs_max: u64) -> shrink::Shrunk;
    /// Like `shrink_while`, keeping only candidates that also pass with every defect off.
    fn shrink_defect_only(&self, signature: &str, runs_max: u64) -> shrink::Shrunk;
    fn clone_box(&self) -> Box<dyn DynScenario>;
    /// Where `op` is in the file this scenario was read from; `None` for a generated or shrunk
    /// scenario, which has no file (or none whose lines are its own).
    fn op_location(&self, _op: &OpRef) -> Option<OpLocation> {
        None
    }
    /// The declared thread the op at `spawn`'s place starts (`Scenario::spawned_thread`).
    fn spawned_thread(&self, spawn: &OpRef) -> Option<String>;
    /// What in the scenario is legal but likely a mistake, one warning each, with where the file
    /// has it when that is known: a declared thread that no op spawns, an op that runs after a
    /// process `exit` (`Scenario::ops_after_exit`).
    fn warnings(&self) -> Vec<(String, Option<OpLocation>)> {
        Vec::new()
    }
}

struct Erased<S>(std::marker::PhantomData<fn() -> S>);

struct ErasedScenario<S: Subject> {
    scenario: Scenario<S::Op>,
    /// Where its ops are in the file it was read from: shared by its clones (a repro pins a
    /// clone, with the same ops), and absent for a generated or shrunk scenario.
    locations: Option<Arc<OpLocations>>,
}

impl<S: Subject> DynSubject for Erased<S> {
    fn info(&self) -> SubjectInfo {
        S::info()
    }

    fn parse_file(&self, file: ScenarioFile) -> Result<Box<dyn DynScenario>, Diagnostic> {
        let (scenario, locations) = parse::parse_file_located::<S>(file)?;
        Ok(Box::new(ErasedScenario::<S> {
            scenario,
            locations: Some(Arc::new(locations)),
        }))
    }

    fn generate(&self, seed: u64, options: &GenerateOptions) -> Box<dyn DynScenario> {
        Box::new(ErasedScenario::<S>::unlocated(generate::from_seed::<S>(
            seed, options,
        )))
    }

    fn sketch_disagrees(&self, source: &str) -> Option<String> {
        parse::sketch_disagrees::<S>(source)
    }

    fn from_bytes(&self, bytes: &[u8], options: &GenerateOptions) -> Box<dyn DynScenario> {
        Box::new(ErasedScenario::<S>::unlocated(generate::from_bytes::<S>(
            bytes, options,
        )))
    }

    fn op_examples(&self) -> Vec<OpExample> {
        examples::op_examples::<S>()
    }

    fn subject_type(&self) -> Option<TypeId> {
        Some(TypeId::of::<S>())
    }
}

impl<S: Subject> ErasedScenario<S> {
    fn unlocated(scenario: Scenario<S::Op>) -> ErasedScenario<S> {
        ErasedScenario {
            scenario,
            locations: None,
        }
    }

    fn shrink_with(
        &self,
        signature: &str,
        runs_max: u64,
        passes_without_defects: bool,
    ) -> shrink::Shrunk {
        let found = shrink::shrink_scenario_searched::<S>(
            &self.scenario,
            signature,
            runs_max,
            passes_without_defects,
            shrink::SHRINK_WORK_MAX,
        );
        shrink::Shrunk {
            ops_before: self.scenario.op_count(),
            ops_after: found.scenario.op_count(),
            scenario: Box::new(ErasedScenario::<S>::unlocated(found.scenario)),
            runs: found.runs,
            stopped_at: found.stopped_at,
        }
    }
}

impl<S: Subject> DynScenario for ErasedScenario<S> {
    fn meta(&self) -> ScenarioMeta {
        let s = &self.scenario;
        ScenarioMeta {
            name: s.name.to_string(),
            subject: s.subject.to_string(),
            defects: s.defects.clone(),
            seed: s.seed,
            op_count: s.op_count(),
            lifecycle_count: s.lifecycles.len(),
            expect: s.expect.clone(),
        }
    }

    fn set_seed(&mut self, seed: u64) {
        self.scenario.seed = seed;
    }

    fn set_defects(&mut self, defects: Vec<String>) {
        self.scenario.defects = defects;
    }

    fn set_expect(&mut self, expect: Option<Expect>) {
        self.scenario.expect = expect;
    }

    fn set_schedule(&mut self, schedule: crate::sched::StrategyChoice) {
        self.scenario.schedule = schedule;
    }

    fn run(&self, options: RunOptions) -> Outcome {
        runner::run::<S>(&self.scenario, options)
    }

    fn check_host(&self) -> Result<(), String> {
        S::check_host(&crate::subject::Config::new(
            &self.scenario.defects,
            &self.scenario.config,
        ))
    }

    fn run_in_process(&self, options: RunOptions) -> Outcome {
        runner::run_in_process::<S>(&self.scenario, options)
    }

    fn run_here(&self, options: RunOptions) -> Outcome {
        runner::isolated::run_here::<S>(&self.scenario, options)
    }

    fn lost_run(&self, options: RunOptions, status: i32) -> Outcome {
        runner::isolated::lost_run::<S>(&self.scenario, &options, status)
    }

    fn to_toml(&self) -> Result<String, print::Unprintable> {
        print::to_toml(&self.scenario)
    }

    fn to_toml_for_hash(&self) -> String {
        print::to_toml_for_hash(&self.scenario)
    }

    fn reductions(&self) -> Vec<Box<dyn DynScenario>> {
        shrink::reductions(&self.scenario)
            .into_iter()
            // A reduction must still be a valid scenario: the parser's own checks, as the
            // shrinker makes them (printing a large one could pass what a file may hold).
            .filter(|candidate| parse::validate::<S>(candidate).is_ok())
            .map(|candidate| {
                Box::new(ErasedScenario::<S>::unlocated(candidate)) as Box<dyn DynScenario>
            })
            .collect()
    }

    fn shrink_while(&self, signature: &str, runs_max: u64) -> shrink::Shrunk {
        self.shrink_with(signature, runs_max, false)
    }

    fn shrink_defect_only(&self, signature: &str, runs_max: u64) -> shrink::Shrunk {
        self.shrink_with(signature, runs_max, true)
    }

    fn clone_box(&self) -> Box<dyn DynScenario> {
        Box::new(ErasedScenario::<S> {
            scenario: self.scenario.clone(),
            locations: self.locations.clone(),
        })
    }

    fn op_location(&self, op: &OpRef) -> Option<OpLocation> {
        self.locations.as_ref()?.locate(op)
    }

    fn spawned_thread(&self, spawn: &OpRef) -> Option<String> {
        self.scenario.spawned_thread(spawn).map(str::to_string)
    }

    fn warnings(&self) -> Vec<(String, Option<OpLocation>)> {
        let mut warnings = Vec::new();
        for (index, lifecycle) in self.scenario.lifecycles.iter().enumerate() {
            for thread in lifecycle.unspawned_threads() {
                // A thread's exit is located where the file declares the thread.
                let declared = self.op_location(&OpRef {
                    lifecycle: index as u32,
                    repetition: 0,
                    list: OpList::Thread,
                    index: 0,
                    name: THREAD_EXIT_OP.to_string(),
                    thread: 0,
                    during: None,
                    thread_name: Some(thread.name.clone()),
                    location: None,
                    trace_event: None,
                });
                warnings.push((
                    format!(
                        "thread `{}` of lifecycle `{}` is declared but never spawned: its ops never run (start it with {{ op = \"spawn\", thread = \"{}\" }})",
                        thread.name, lifecycle.name, thread.name
                    ),
                    declared,
                ));
            }
        }
        for after in self.scenario.ops_after_exit() {
            warnings.push(self.runs_after_exit_warning(&after));
        }
        warnings
    }
}

impl<S: Subject> ErasedScenario<S> {
    /// The warning of an op that runs after a process exit, pointing at the op and naming the
    /// exit's line: the op's line alone does not say which `exit` came before it.
    fn runs_after_exit_warning(&self, after: &RunsAfterExit) -> (String, Option<OpLocation>) {
        // The subject's code, run here at load time: a panic in it is the subject's, for the run
        // to report at the op (`panic:subject:op_name`), not sim's internal error. The warning
        // names the op by its place instead, and says why.
        let naming = crate::subject::catch_subject_code::<S, _>("op_name", "naming it", || {
            let op = self.scenario.op_at(&after.op);
            op.map_or("?", |op| op.name(S::op_name))
        });
        let (name, unnamed) = match naming {
            Ok(name) => (name, String::new()),
            Err(headline) => ("?", format!("; {headline}")),
        };
        let describe = |place: &OpPlace| {
            let list = match place.thread {
                Some(thread) => format!("thread `{thread}`"),
                None => format!("`{}`", place.list.name()),
            };
            let lifecycle = &self.scenario.lifecycles[place.lifecycle].name;
            format!(
                "op #{} of {list} in lifecycle `{lifecycle}`",
                place.index + 1
            )
        };
        let exit_at = self.op_location(&after.exit.op_ref("exit"));
        let exit_line = exit_at.map_or(String::new(), |at| format!(" at line {}", at.line));
        let when = if after.next_repetition {
            ", in the next repetition"
        } else {
            ""
        };
        let message = format!(
            "op `{name}` ({}{unnamed}) runs after the process exited{when}: the `exit`{exit_line} ({}) ends the process, and a real one runs nothing after it; the simulation runs the op all the same, in the same process (end the scenario with the `exit`)",
            describe(&after.op),
            describe(&after.exit),
        );
        let op_at = self.op_location(&after.op.op_ref(name));
        (message, op_at)
    }
}

/// Erases a subject type for the registry.
pub fn erase<S: Subject>() -> Box<dyn DynSubject> {
    Box::new(Erased::<S>(std::marker::PhantomData))
}

/// Subjects by name.
pub struct Registry {
    subjects: Vec<Box<dyn DynSubject>>,
}

impl Registry {
    pub fn empty() -> Registry {
        Registry {
            subjects: Vec::new(),
        }
    }

    /// The built-in subjects.
    pub fn builtin() -> Registry {
        use crate::subjects;
        Registry {
            subjects: vec![
                erase::<subjects::interpreter::Interpreter>(),
                erase::<subjects::allocator::Allocator>(),
                erase::<subjects::wasi_runtime::WasiRuntime>(),
                erase::<subjects::reloadable_lib::ReloadableLib>(),
                erase::<subjects::dlmalloc::DlmallocSubject>(),
                erase::<subjects::counter::Counter>(),
            ],
        }
    }

    /// Adds a subject (another crate's), replacing a built-in one of the same name.
    ///
    /// # Panics
    ///
    /// When the subject declares an op under a name the runner's ops take (`spawn`, `join`,
    /// `exit`, `sleep`): no scenario file could write that op, since the parser reads the tag as
    /// the runner's. `subject::check_description` says the same in a subject's own tests.
    pub fn with(mut self, subject: Box<dyn DynSubject>) -> Registry {
        let name = subject.info().name;
        let reserved = crate::subject::reserved_op_problems(&subject.info());
        assert!(
            reserved.is_empty(),
            "subject `{name}` cannot be registered: {}",
            reserved.join("; ")
        );
        self.subjects.retain(|s| s.info().name != name);
        self.subjects.push(subject);
        self
    }

    pub fn get(&self, name: &str) -> Option<&dyn DynSubject> {
        self.subjects
            .iter()
            .find(|s| s.info().name == name)
            .map(|s| s.as_ref())
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.subjects.iter().map(|s| s.info().name).collect()
    }

    pub fn subjects(&self) -> impl Iterator<Item = &dyn DynSubject> {
        self.subjects.iter().map(|s| s.as_ref())
    }

    /// Parses a scenario file's bytes: text that is not UTF-8 is a diagnostic pointing at the
    /// first bad byte, like any other parse error.
    pub fn parse_bytes(
        &self,
        path: &str,
        bytes: &[u8],
    ) -> Result<Box<dyn DynScenario>, Diagnostic> {
        let source = parse::source_text(path, bytes)?;
        self.parse(path, &source)
    }

    /// Parses a scenario file, choosing the subject from its `subject` field.
    pub fn parse(&self, path: &str, source: &str) -> Result<Box<dyn DynScenario>, Diagnostic> {
        // Read once: the subject's parser goes on from the reading that found the subject.
        let file = ScenarioFile::read(path, source)?;
        let subject = file.subject(|name| {
            self.get(name).ok_or_else(|| {
                format!(
                    "unknown subject `{name}`; known: {}",
                    self.names().join(", ")
                )
            })
        })?;
        subject.parse_file(file)
    }
}

impl std::fmt::Debug for dyn DynScenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let meta = self.meta();
        write!(
            f,
            "DynScenario({} for {}, seed {:#x})",
            meta.name, meta.subject, meta.seed
        )
    }
}
