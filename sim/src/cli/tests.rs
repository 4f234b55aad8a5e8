//! Tests of what `list --fuzz-targets` and `import-crash` make of a binary's own subjects, and of
//! how printed commands name the binary.

use super::import_crash::*;
use super::list::fuzz_target_lines;
use super::*;
use crate::os::{Os, Tid};
use crate::subject::SubjectInfo;
use crate::sweep::scratch::ScratchDir;

#[test]
fn an_artifact_that_passes_points_at_sim_fuzz_defects_only_for_a_built_in_target() {
    let defects = vec!["leak-overflow-chunks".to_string()];
    let file = Path::new("crash-1");
    let builtin = nothing_to_import(file, &defects, true);
    assert!(builtin.contains("crash-1: passes with defects [leak-overflow-chunks]"));
    assert!(builtin.contains("SIM_FUZZ_DEFECTS"), "{builtin}");
    let own = nothing_to_import(file, &defects, false);
    assert!(own.contains("by --defect NAME;"), "{own}");
    assert!(!own.contains("SIM_FUZZ_DEFECTS"), "{own}");
}
use crate::registry::erase;
use crate::subject::{Config, DefectInfo, OpDoc, Step, Subject};

/// Printed commands name `sim` by its name, and another binary by its name only where that
/// starts it: where `PATH` finds this executable by it, else by the path it was started by
/// (`cargo run --example …` starts `target/debug/examples/NAME`, not on `PATH`).
#[test]
fn a_binary_is_named_in_printed_commands_as_it_can_be_started() {
    let this = std::env::current_exe().unwrap();
    let this_dir = this.parent().unwrap().as_os_str().to_owned();
    let this_name = this.file_name().unwrap().to_str().unwrap().to_string();
    let printed = |argv0: &std::ffi::OsStr, path_var: Option<&std::ffi::OsStr>| {
        printed_program_for(
            argv0.to_owned(),
            path_var.map(|p| p.to_owned()),
            Some(&this),
        )
    };
    let os = std::ffi::OsStr::new;
    assert_eq!(printed(os("/anywhere/sim"), None).as_deref(), Some("sim"));
    assert_eq!(printed(os("mine"), None).as_deref(), Some("mine"));
    // Started by its path, and not on `PATH`: the path, which pastes.
    assert_eq!(
        printed(this.as_os_str(), Some(os("/nonexistent-dir"))).as_deref(),
        this.to_str()
    );
    assert_eq!(printed(this.as_os_str(), None).as_deref(), this.to_str());
    // On `PATH` as this executable: its name.
    assert_eq!(
        printed(this.as_os_str(), Some(&this_dir)).as_deref(),
        Some(this_name.as_str())
    );
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, arbitrary::Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum NopOp {
    Nop,
}

/// A subject of a crate's own, as a binary built on `main_with` registers it.
type Mine = Own<MineName>;

/// `sim`'s list is the targets of `fuzz/` (scripts run one binary per line), and a binary of
/// one's own adds its subjects, whose names its `import-crash` takes, in the same columns.
#[test]
fn fuzz_targets_list_a_binarys_own_subjects_after_the_built_in_targets() {
    let builtin = fuzz_target_lines(&Registry::builtin());
    let names: Vec<&str> = builtin
        .iter()
        .map(|line| line.split('\t').next().unwrap())
        .collect();
    let targets: Vec<&str> = crate::fuzzing::TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(names, targets, "`counter` has no target of its own");
    let custom = fuzz_target_lines(&Registry::builtin().with(erase::<Mine>()));
    assert_eq!(custom[..builtin.len()], builtin[..]);
    assert_eq!(
        custom[builtin.len()..],
        [
            "mine\tmust-pass\tmine\tmy-bug\tyour subject, for a fuzz target of your own (`sim::fuzzing::run_subject_bytes`): a subject of one's own"
        ]
    );
    let canary = fuzz_target_lines(&Registry::builtin().with(erase::<Own<CanaryName>>()));
    assert_eq!(
        canary[builtin.len()..],
        [
            "canary\tmust-pass\tcanary\tmy-bug\t(import-crash --subject canary ARTIFACT; `import-crash canary` alone is refused: a built-in fuzz target has the name too) your subject, for a fuzz target of your own (`sim::fuzzing::run_subject_bytes`): a subject of one's own"
        ],
        "a subject of one's own named like a built-in target is listed too"
    );
}

/// Where a subject of one's own has a built-in target's name, the list has two rows of that
/// name, and each begins its summary with the `import-crash` command that takes it: the
/// command each row gives resolves to that row's target or subject, and the bare name to
/// what its notes say (or nothing, where they say it is refused). Rows of names no other row
/// has carry no note.
#[test]
fn fuzz_targets_rows_of_a_shared_name_say_which_flag_picks_each() {
    let builtin_rows = fuzz_target_lines(&Registry::builtin());
    assert!(builtin_rows.iter().all(|row| !row.contains("import-crash")));
    for (registry, name, bare_name_refused) in [
        (
            Registry::builtin().with(erase::<Own<CanaryName>>()),
            "canary",
            true,
        ),
        (
            Registry::builtin().with(erase::<Own<ParserName>>()),
            "scenario-parser",
            true,
        ),
        (
            Registry::builtin().with(erase::<Own<AllocatorName>>()),
            "allocator",
            false,
        ),
    ] {
        let lines = fuzz_target_lines(&registry);
        let rows: Vec<&String> = lines
            .iter()
            .filter(|line| line.split('\t').next() == Some(name))
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        // The words of `(import-crash WORDS ARTIFACT…` at the start of a row's summary.
        let command = |row: &str| -> Vec<String> {
            let summary = row.splitn(5, '\t').nth(4).unwrap();
            let words = summary
                .strip_prefix("(import-crash ")
                .and_then(|rest| rest.split_once(" ARTIFACT"))
                .unwrap_or_else(|| panic!("no import-crash command in {row}"))
                .0;
            words.split(' ').map(str::to_string).collect()
        };
        let resolve = |words: &[String]| {
            let mut line: Vec<&str> = words.iter().map(String::as_str).collect();
            line.push("crash-1");
            ImportTarget::resolve(&registry, &import_args(&line))
        };
        let (target_row, subject_row) = (rows[0], rows[1]);
        assert!(
            matches!(resolve(&command(target_row)), Ok(ImportTarget::Fuzz(t)) if t.name == name),
            "{target_row}"
        );
        assert!(
            matches!(resolve(&command(subject_row)), Ok(ImportTarget::Subject(s)) if s == name),
            "{subject_row}"
        );
        let bare = resolve(&[name.to_string()]);
        if bare_name_refused {
            assert!(bare.is_err());
            for row in [target_row, subject_row] {
                assert!(
                    row.contains(&format!("`import-crash {name}` alone is refused")),
                    "{row}"
                );
            }
        } else {
            assert!(matches!(bare, Ok(ImportTarget::Subject(s)) if s == name));
            assert_eq!(command(subject_row), [name]);
            assert!(
                target_row.contains(&format!(
                    "`import-crash {name}` alone is this binary's own subject"
                )),
                "{target_row}"
            );
        }
        // The other rows are as in `sim`'s own list.
        let others: Vec<&String> = lines
            .iter()
            .filter(|line| line.split('\t').next() != Some(name))
            .collect();
        assert!(others.iter().all(|row| builtin_rows.contains(row)));
    }
}

/// `import-crash` takes a built-in target by its name, and any subject of the registry by
/// its own; an unknown name is refused with both lists.
#[test]
fn import_targets_are_the_fuzz_targets_then_the_registrys_subjects() {
    let registry = Registry::builtin().with(erase::<Mine>());
    let resolve = |name| ImportTarget::resolve(&registry, &import_args(&[name, "crash-1"]));
    assert!(matches!(resolve("canary"), Ok(ImportTarget::Fuzz(t)) if t.name == "canary"));
    assert!(matches!(resolve("mine"), Ok(ImportTarget::Subject("mine"))));
    assert!(matches!(
        resolve("counter"),
        Ok(ImportTarget::Subject("counter"))
    ));
    let Err(error) = resolve("yours") else {
        panic!("an unknown name is refused");
    };
    assert_eq!(error.code, EXIT_USAGE);
    assert!(
        error.message.starts_with(
            "unknown fuzz target or subject `yours`; fuzz targets: interpreter, allocator, "
        ) && error.message.contains(", canary; subjects (")
            && error.message.ends_with(", mine"),
        "{}",
        error.message
    );
    assert_eq!(
        resolve("mine")
            .ok()
            .unwrap()
            .check_defects(&registry, &["nope".into()]),
        Err("unknown defect `nope` for subject `mine`; known: my-bug".to_string())
    );
}

/// `sim import-crash WORDS…`, parsed.
fn import_args(words: &[&str]) -> ImportCrashArgs {
    let line = ["sim", "import-crash"].iter().chain(words);
    match Cli::try_parse_from(line).unwrap().command {
        Command::ImportCrash(args) => args,
        other => panic!("{other:?}"),
    }
}

/// The name a subject of one's own takes (`Own`), and whether the host refuses its runs.
trait OwnName: Send + Sync + 'static {
    const NAME: &'static str;
    const HOST_REFUSES: bool = false;
}
/// A type for each name the tests give `Own`.
macro_rules! own_names {
    ($($type:ident = $name:literal),* $(,)?) => {$(
        struct $type;
        impl OwnName for $type {
            const NAME: &'static str = $name;
        }
    )*};
}
own_names!(
    MineName = "mine",
    AllocatorName = "allocator",
    CanaryName = "canary",
    ParserName = "scenario-parser",
    CounterName = "counter",
);
struct RefusedName;
impl OwnName for RefusedName {
    const NAME: &'static str = "host-refused";
    const HOST_REFUSES: bool = true;
}

/// A subject of one's own under `N::NAME`, with a defect `my-bug` of its own: as a binary
/// built on `main_with` registers one, maybe under a built-in fuzz target's name.
struct Own<N>(std::marker::PhantomData<N>);

impl<N: OwnName> Subject for Own<N> {
    type Op = NopOp;
    fn info() -> SubjectInfo {
        SubjectInfo {
            name: N::NAME,
            summary: "a subject of one's own",
            ops: vec![OpDoc {
                name: "nop",
                summary: "nothing",
            }],
            defects: vec![DefectInfo {
                name: "my-bug",
                ..Default::default()
            }],
            ..Default::default()
        }
    }
    fn new(_: &mut Os, _: &Config) -> Self {
        Own(std::marker::PhantomData)
    }
    fn check_host(_: &Config) -> Result<(), String> {
        if N::HOST_REFUSES {
            Err("this host gives no arena".to_string())
        } else {
            Ok(())
        }
    }
    fn op_name(_: &NopOp) -> &'static str {
        "nop"
    }
    fn apply(&mut self, _: &mut Os, _: Tid, _: &NopOp) -> Step<Self> {
        Step::Done
    }
}

/// A binary's own subject under a built-in fuzz target's name is the one `import-crash`
/// takes where it replaced the subject the target runs (`allocator`); otherwise the name is
/// refused until `--subject` or `--fuzz-target` says which. A built-in subject is no
/// subject of one's own: `sim`'s spelling stays.
#[test]
fn a_subject_of_ones_own_named_as_a_built_in_target_is_imported_or_the_name_refused() {
    let resolve = |registry: &Registry, words: &[&str]| {
        let mut line = words.to_vec();
        line.push("crash-1");
        ImportTarget::resolve(registry, &import_args(&line))
    };
    let builtin = Registry::builtin();
    assert!(
        matches!(resolve(&builtin, &["allocator"]), Ok(ImportTarget::Fuzz(t)) if t.name == "allocator")
    );
    assert!(matches!(
        resolve(&builtin, &["--subject", "allocator"]),
        Ok(ImportTarget::Subject("allocator"))
    ));

    // `with` replaced the built-in allocator: the built-in target has nothing to run.
    let own_allocator = Registry::builtin().with(erase::<Own<AllocatorName>>());
    assert!(matches!(
        resolve(&own_allocator, &["allocator"]),
        Ok(ImportTarget::Subject("allocator"))
    ));
    assert!(matches!(
        resolve(&own_allocator, &["--fuzz-target", "allocator"]),
        Ok(ImportTarget::Fuzz(t)) if t.name == "allocator"
    ));

    // The canary runs `counter`, which is still there; the parser's target runs no subject.
    for (registry, name, summary) in [
        (
            Registry::builtin().with(erase::<Own<CanaryName>>()),
            "canary",
            "the teaching subject with `leak-on-evict` on",
        ),
        (
            Registry::builtin().with(erase::<Own<ParserName>>()),
            "scenario-parser",
            "arbitrary bytes as a scenario file",
        ),
    ] {
        let Err(error) = resolve(&registry, &[name]) else {
            panic!("`{name}` is ambiguous");
        };
        assert_eq!(error.code, EXIT_USAGE);
        assert!(
            error.message.starts_with(&format!(
                "`{name}` names both the built-in fuzz target `{name}` ({summary}"
            )) && error.message.ends_with(&format!(
                "and this binary's own subject `{name}` (a subject of one's own): say which with --fuzz-target or --subject"
            )),
            "{}",
            error.message
        );
        assert!(
            matches!(resolve(&registry, &["--subject", name]), Ok(ImportTarget::Subject(s)) if s == name)
        );
        assert!(
            matches!(resolve(&registry, &["--fuzz-target", name]), Ok(ImportTarget::Fuzz(t)) if t.name == name)
        );
    }
    // With no `counter` in the registry the canary's artifact still runs on the built-in
    // one (`ImportTarget::entry`): the name stays ambiguous.
    let canary_alone = Registry::empty().with(erase::<Own<CanaryName>>());
    assert!(resolve(&canary_alone, &["canary"]).is_err());

    let refused = |words: &[&str]| resolve(&canary_alone, words).err().unwrap();
    assert_eq!(
        refused(&["--subject", "counter"]).message,
        "--subject: this binary has no subject `counter`; subjects: canary"
    );
    assert!(
        refused(&["--fuzz-target", "mine"]).message.starts_with(
            "--fuzz-target: no built-in fuzz target `mine`; fuzz targets: interpreter, "
        ),
    );
    let line = [
        "sim",
        "import-crash",
        "canary",
        "crash-1",
        "--subject",
        "--fuzz-target",
    ];
    assert!(Cli::try_parse_from(line).is_err(), "the two flags conflict");
}

/// The command a crash report of one's own subject names (`run_subject_bytes`) says which
/// `canary` it means, and names its defect, which the built-in canary's name implies.
#[test]
fn the_import_command_of_ones_own_subject_picks_it_where_a_built_in_target_has_its_name() {
    let command = |subject: Box<dyn crate::registry::DynSubject>, defect: &str| {
        crate::fuzzing::own_subject_import_command(subject.as_ref(), &[defect.to_string()])
    };
    assert_eq!(
        command(erase::<Own<CanaryName>>(), "leak-on-evict"),
        "<your binary> import-crash --subject canary ARTIFACT --defect leak-on-evict"
    );
    assert_eq!(
        command(erase::<Own<AllocatorName>>(), "my-bug"),
        "<your binary> import-crash --subject allocator ARTIFACT --defect my-bug"
    );
    assert_eq!(
        command(erase::<crate::subjects::allocator::Allocator>(), "my-bug"),
        "<your binary> import-crash allocator ARTIFACT --defect my-bug"
    );
    assert_eq!(
        command(erase::<Own<RefusedName>>(), "my-bug"),
        "<your binary> import-crash host-refused ARTIFACT --defect my-bug"
    );
}

/// An artifact file holding `bytes`, in a directory of the test's own that goes when the
/// test does: bind the directory to a named variable (`let (_dir, file)`), as `_` would drop
/// it at once.
fn artifact(name: &str, bytes: &[u8]) -> (ScratchDir, PathBuf) {
    let dir = ScratchDir::new(&format!("cli-{name}"));
    let file = dir.path().join("crash-1");
    std::fs::write(&file, bytes).unwrap();
    (dir, file)
}

/// The artifact of one's own `allocator` runs with that subject and its defects, where the
/// built-in target took the name and refused `my-bug` as no defect of the built-in one.
#[test]
fn import_crash_runs_ones_own_subject_under_a_built_in_targets_name() {
    let registry = Registry::builtin().with(erase::<Own<AllocatorName>>());
    let (_dir, file) = artifact("own-allocator", &[0; 16]);
    let file = file.to_str().unwrap();
    let words = ["allocator", file, "--defect", "my-bug", "--classify"];
    assert_eq!(
        import_crash(&registry, import_args(&words)).ok(),
        Some(EXIT_PASS)
    );
}

/// A built-in target's artifact runs on the built-in subject, whatever the binary's registry
/// holds under that subject's name: the canary's crash, which runs `counter`, is still found
/// in a binary with a `counter` of its own, and `--fuzz-target allocator` in one with its own
/// `allocator` takes the built-in allocator's defects and lists them.
#[test]
fn a_built_in_targets_artifact_runs_on_the_built_in_subject_in_any_binary() {
    let crash = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../corpus/canary/crash-37b41243a5e03c8c04340d5be8f107a92b0b4689"),
    )
    .unwrap();
    let (_dir, file) = artifact("canary-own-counter", &crash);
    let file = file.to_str().unwrap();
    let classify = |registry: &Registry, words: &[&str]| {
        import_crash(registry, import_args(words)).map_err(|error| error.message)
    };
    let canary = ["canary", file, "--classify"];
    assert_eq!(classify(&Registry::builtin(), &canary), Ok(EXIT_FINDINGS));
    let own_counter = Registry::builtin().with(erase::<Own<CounterName>>());
    assert_eq!(classify(&own_counter, &canary), Ok(EXIT_FINDINGS));

    let own_allocator = Registry::builtin().with(erase::<Own<AllocatorName>>());
    let words = ["--fuzz-target", "allocator", file, "--classify"];
    let defect = ["--defect", "collect-after-segment-free"];
    assert!(classify(&own_allocator, &[&words[..], &defect[..]].concat()).is_ok());
    let mine = ["--defect", "my-bug"];
    assert!(classify(&own_allocator, &[&words[..], &mine[..]].concat()).is_err());
    let listed = fuzz_target_lines(&own_allocator);
    let allocator_row = listed
        .iter()
        .find(|line| line.starts_with("allocator\t"))
        .unwrap();
    assert!(
        allocator_row.contains("collect-after-segment-free") && !allocator_row.contains("my-bug"),
        "{allocator_row}"
    );
}

/// `import-crash` asks the host before it runs, as `sim run` does: a refusal is the same
/// error, exit 3, and nothing runs.
#[test]
fn import_crash_refuses_to_run_what_the_host_refuses_as_sim_run_does() {
    let registry = Registry::builtin().with(erase::<Own<RefusedName>>());
    let (_dir, file) = artifact("host-refused", &[0; 16]);
    let name = file.to_str().unwrap();
    let Err(error) = import_crash(
        &registry,
        import_args(&["host-refused", name, "--classify"]),
    ) else {
        panic!("the host refuses the run");
    };
    assert_eq!(error.code, EXIT_INTERNAL);
    assert_eq!(
        error.message,
        format!("{name}: cannot run here: this host gives no arena")
    );
}

/// `sim zoo` asks the host before it runs any file, as `sim sweep` does: a refusal is the
/// error every other command gives, exit 3, where the run's panic in `new` read as the file's
/// finding (NOT CLEAN, exit 1).
#[test]
fn zoo_refuses_to_run_what_the_host_refuses_as_sim_sweep_does() {
    let registry = Registry::builtin().with(erase::<Own<RefusedName>>());
    let dir = ScratchDir::new("cli-zoo-host-refused");
    let file = dir.path().join("refused.toml");
    std::fs::write(
        &file,
        "name = \"refused\"\nsubject = \"host-refused\"\ndefects = [\"my-bug\"]\n\n[[lifecycle]]\nname = \"loop\"\nops = [{ op = \"nop\" }]\n",
    )
    .unwrap();
    let name = file.to_str().unwrap();
    let Command::Zoo(args) = Cli::try_parse_from(["sim", "zoo", name]).unwrap().command else {
        panic!("a zoo command");
    };
    let Err(error) = super::sweep::zoo(&registry, args) else {
        panic!("the host refuses the run");
    };
    assert_eq!(error.code, EXIT_INTERNAL, "{}", error.message);
    assert_eq!(
        error.message,
        format!("{name}: cannot run here: this host gives no arena")
    );
}

/// `sim detect`'s table: a missed defect that generated scenarios are expected to find reads
/// `NO`; one they are known not to reach reads `no (not expected)`, with one note saying why.
#[test]
fn a_defect_missed_by_detection_reads_no_and_one_known_not_reached_gets_one_note() {
    let detection = crate::sweep::measure::tests::detection(
        "allocator",
        &[
            ("collect-after-segment-free", false),
            ("absorbed-pages-never-collected", false),
        ],
    );
    let (table, notes) = super::sweep::detection_table(&detection);
    let text = table.render_at(usize::MAX);
    assert!(
        text.lines()
            .any(|l| l.contains("collect-after-segment-free") && l.contains(" NO ")),
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.contains("absorbed-pages-never-collected") && l.contains("no (not expected)")
        ),
        "{text}"
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(
            "note: allocator absorbed-pages-never-collected: not expected from generated scenarios: found by the fuzzer"
        ),
        "{notes:?}"
    );
}

/// One check refuses the repository's default regressions directory where it is not (the command
/// run away from the root), saying what to do for whose `cargo test` replays it; another
/// directory is left to the check of the output directory. Tests run in `sim/`, which has no
/// `corpus/`.
#[test]
fn a_default_regressions_directory_that_is_not_here_is_refused_for_its_replayer() {
    let default = crate::sweep::promote::REGRESSIONS_DIR;
    assert!(!Path::new(default).exists(), "run from sim/");
    let refusal = |replayer| {
        check_repository_dir(Path::new(default), default, Some("--out"), replayer).unwrap_err()
    };
    let repository = refusal(Replayer::Repository);
    assert_eq!(repository.code, EXIT_USAGE);
    assert_eq!(
        repository.message,
        "corpus/regressions: no such directory here, and `cargo test` replays only the \
         repository's own: run from the repository's root, or name a directory with --out"
    );
    let own = refusal(Replayer::OwnCrate);
    assert_eq!(own.code, EXIT_USAGE);
    assert_eq!(
        own.message,
        "corpus/regressions: no such directory here: name the directory your `cargo test` \
         replays (`sim::fuzzing::replay_regressions`) with --out"
    );
    for replayer in [Replayer::Repository, Replayer::OwnCrate] {
        assert!(
            check_repository_dir(Path::new("elsewhere"), default, Some("--out"), replayer).is_ok()
        );
    }
}

/// A walk's note of the `target` directories it passed over says what to name to run their
/// files whether or not it found others (it said so only when it found none), and counts the
/// rest after the first.
#[test]
fn a_walks_note_of_the_target_directories_it_passed_over_says_what_to_name() {
    let dir = ScratchDir::new("walk-targets");
    for sub in ["suite/target", "suite/deep/target"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        std::fs::write(dir.path().join(sub).join("kept.toml"), "").unwrap();
    }
    let suite = dir.path().join("suite");
    let refused = expand_paths(std::slice::from_ref(&suite), &[]).unwrap_err();
    let first = suite.join("deep/target");
    assert_eq!(
        refused.message,
        format!(
            "{}: no .toml scenario files in this directory\nnote: not searched: {} and 1 more \
             (directories named `target`; name one to run its .toml files)",
            suite.display(),
            first.display()
        )
    );
}
