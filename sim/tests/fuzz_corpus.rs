//! The fuzz targets without libFuzzer: every committed seed input (`corpus/<target>/`) replays
//! through its target's body, `sim::fuzzing`, as `cargo fuzz run` would run it. Subject targets
//! and the parser must pass every input with defects off; the canary must fail on its inputs,
//! which proves here, as in `make fuzz-smoke`, that the harness can fail. The one list of targets
//! must match the cargo-fuzz package: a binary and a corpus per target.

mod support;

use std::path::{Path, PathBuf};

use sim::fuzzing::{self, TARGETS};
use support::{
    code_and_output, defects_off, fresh_path, run_sim, scratch_dir, toml_files_in, workspace_root,
    write_file,
};

fn corpus_inputs(target: &str) -> Vec<PathBuf> {
    let dir = workspace_root().join("corpus").join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (every fuzz target has a seed corpus)",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn every_seed_input_passes_its_target_with_defects_off_and_the_canary_fails() {
    let mut replayed = 0;
    for target in TARGETS {
        let inputs = corpus_inputs(target.name);
        assert!(
            !inputs.is_empty(),
            "corpus/{}/ holds no seed input; run `make fuzz TARGET={}` then `make fuzz-cmin`",
            target.name,
            target.name
        );
        let mut failures = Vec::new();
        for input in &inputs {
            let bytes = std::fs::read(input).unwrap();
            if let Err(report) = target.run(&bytes, &[]) {
                failures.push((input.clone(), report));
            }
            replayed += 1;
        }
        if target.must_fail() {
            assert!(
                !failures.is_empty(),
                "the canary passed all of corpus/{}/: the harness cannot fail",
                target.name
            );
            for (input, report) in &failures {
                assert!(
                    report.contains("leak:heap block:counter_create"),
                    "{}: the canary fails for its defect, not another reason:\n{report}",
                    input.display()
                );
            }
        } else if let Some((input, report)) = failures.first() {
            panic!(
                "{}: a seed input of `{}` fails with defects off ({} of {} inputs fail):\n{report}",
                input.display(),
                target.name,
                failures.len(),
                inputs.len()
            );
        }
    }
    assert!(replayed >= TARGETS.len());
}

#[test]
fn the_target_list_matches_the_cargo_fuzz_package() {
    let manifest = std::fs::read_to_string(workspace_root().join("fuzz/Cargo.toml")).unwrap();
    for target in TARGETS {
        let source = workspace_root()
            .join("fuzz/fuzz_targets")
            .join(format!("{}.rs", target.name));
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert!(
            text.contains(&format!("sim_fuzz::init(\"{}\")", target.name)),
            "{} initialises its own target",
            source.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "fuzz/Cargo.toml has a [[bin]] for `{}`",
            target.name
        );
        assert!(
            target.check_defects(&[]).is_ok(),
            "{}",
            target.check_defects(&[]).unwrap_err()
        );
    }
    let binaries = std::fs::read_dir(workspace_root().join("fuzz/fuzz_targets"))
        .unwrap()
        .count();
    assert_eq!(binaries, TARGETS.len(), "one binary per listed target");
}

#[test]
fn a_finding_report_names_the_signature_the_import_command_and_the_scenario() {
    let canary = fuzzing::target("canary").unwrap();
    let failing = corpus_inputs("canary")
        .into_iter()
        .find_map(|input| canary.run(&std::fs::read(input).unwrap(), &[]).err())
        .expect("a canary input fails");
    assert!(failing.starts_with("sim fuzz target `canary`"), "{failing}");
    assert!(failing.contains("error[leak]"), "{failing}");
    assert!(
        failing.contains(
            "note: keep it as a regression with `sim import-crash canary ARTIFACT`, ARTIFACT being"
        ),
        "{failing}"
    );
    // The import command is not a replay: no line says it is.
    assert!(
        !failing.contains("replay with `sim import-crash"),
        "{failing}"
    );
    assert!(
        failing.contains("subject = \"counter\"") && failing.contains("[[lifecycle]]"),
        "the scenario is printed as TOML: {failing}"
    );
}

#[test]
fn the_parser_target_accepts_garbage_and_round_trips_what_it_parses() {
    for garbage in [
        &b""[..],
        b"\xff\xfe",
        b"[[lifecycle]]\nops = [",
        b"subject = 3",
    ] {
        assert!(fuzzing::check_scenario_text(garbage).is_ok());
    }
    let scenario = b"name = \"x\"\nsubject = \"counter\"\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"create\", slot = 1 }, { op = \"evict\", slot = 1 }]\n";
    assert!(fuzzing::check_scenario_text(scenario).is_ok());
}

/// A file under the 4 MiB bound whose print is past it (the printer spells every op out) is no
/// parser bug: nothing writes such a print, and the parser refuses to read one.
#[test]
fn the_parser_target_accepts_a_file_whose_print_is_past_the_size_bound() {
    let text = support::text_of_300000_op_leak();
    let printed = support::parse_scenario(&text).to_toml().unwrap();
    assert!(
        text.len() <= sim::scenario::parse::SOURCE_BYTES_MAX
            && printed.len() > sim::scenario::parse::SOURCE_BYTES_MAX,
        "the file ({} bytes) prints to {} bytes",
        text.len(),
        printed.len()
    );
    if let Err(report) = fuzzing::check_scenario_text(text.as_bytes()) {
        // The report holds the whole input and its print: its first lines say what failed.
        let head: String = report.lines().take(3).collect::<Vec<_>>().join("\n");
        panic!("the parser target failed on a file it accepts:\n{head}");
    }
}

/// A crash report counts one way throughout, from 1 as a report's text does: the scenario it
/// pins names its lifecycles `lifecycle-1`, `lifecycle-2`, … by position (the one a finding
/// places in "lifecycle 2" is `lifecycle-2`, empty ones dropped), and each lifecycle's threads
/// `t1`, `t2` in the order they are spawned; no name counts from 0.
#[test]
fn a_crash_report_names_lifecycles_and_threads_counting_from_1() {
    let mut reports = 0;
    let mut threads_seen = 0;
    for target in TARGETS {
        let Some(subject) = target.subject() else {
            continue;
        };
        let registry = sim::registry::Registry::builtin();
        let defects: Vec<String> = registry
            .get(subject)
            .unwrap()
            .info()
            .defects
            .iter()
            .map(|defect| defect.name.to_string())
            .collect();
        for input in corpus_inputs(target.name) {
            let Err(report) = target.run(&std::fs::read(&input).unwrap(), &defects) else {
                continue;
            };
            reports += 1;
            let what = format!("{}:\n{report}", input.display());
            assert!(
                !report.contains("lifecycle-0") && !report.contains("\"t0\""),
                "{what}"
            );
            let marker = "note: the input decodes to this scenario";
            let pinned = &report[report.find(marker).expect(marker)..];
            let (mut lifecycles, mut threads) = (0, 0);
            let mut in_thread = false;
            for line in pinned.lines() {
                match line {
                    "[[lifecycle]]" => {
                        (lifecycles, threads, in_thread) = (lifecycles + 1, 0, false)
                    }
                    "[[lifecycle.thread]]" => (threads, in_thread) = (threads + 1, true),
                    _ => {}
                }
                let Some(name) = line.strip_prefix("name = ") else {
                    continue;
                };
                if in_thread {
                    assert_eq!(name, format!("\"t{threads}\""), "{what}");
                    threads_seen += 1;
                } else if lifecycles > 0 && name != "\"empty\"" {
                    assert_eq!(name, format!("\"lifecycle-{lifecycles}\""), "{what}");
                }
            }
        }
    }
    assert!(
        reports > 0 && threads_seen > 0,
        "{reports} reports, {threads_seen} threads"
    );
}

/// `sim import-crash`, end to end: a crash artifact of the WASI target run with
/// `prestats-lock-leak` becomes a regression file that pins every signature its run shows, fails
/// with the defect and passes without it; `--classify` says what an artifact is and writes nothing.
#[test]
fn import_crash_turns_an_artifact_into_a_regression_that_fails_with_its_defect_only() {
    let defect = "prestats-lock-leak".to_string();
    let artifact = prestats_artifact();
    let out = fresh_path("import-crash");
    let cli_into = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "sim".to_string(),
            "import-crash".into(),
            "wasi-runtime".into(),
            artifact.display().to_string(),
            "--defect".into(),
            defect.clone(),
            "--out".into(),
            out.to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        sim::cli::main_with_args(sim::registry::Registry::builtin(), args)
    };
    let cli = |extra: &[&str]| cli_into(&out.display().to_string(), extra);
    assert_eq!(cli(&["--classify"]), 1, "a finding classifies with exit 1");
    assert!(!out.exists(), "--classify writes nothing");
    // An `--out` where no file can be made is bad input (exit 2), as every command's output is;
    // the regression is printed instead.
    assert_eq!(cli_into("/proc/no-such-dir", &[]), 2);
    assert_eq!(cli(&[]), 1);
    let written = toml_files_in(&out);
    assert_eq!(written.len(), 1, "one regression file: {written:?}");
    assert!(
        !out.join("open").exists(),
        "a seeded defect is not an open finding"
    );
    let name = written[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        name.starts_with("wasi-runtime-prestats-lock-leak-leak-"),
        "{name}"
    );
    let source = std::fs::read_to_string(&written[0]).unwrap();
    // The header's command imports the same file again: the defect it ran with is in it.
    assert!(
        source.starts_with("# Imported by `sim import-crash wasi-runtime ")
            && source.contains(" --defect prestats-lock-leak` from a fuzzer crash."),
        "{source}"
    );
    let registry = sim::registry::Registry::builtin();
    let scenario = registry.parse(&name, &source).unwrap();
    let pinned = scenario.meta().expect.unwrap().signatures;
    assert!(
        pinned.contains(&"leak:rwlock:fd_prestats_init".to_string()),
        "{pinned:?}"
    );
    let with = scenario.run(sim::runner::RunOptions::default());
    assert_eq!(
        with.signatures(),
        pinned,
        "the file pins exactly what its run shows"
    );
    let without = scenario.run(defects_off());
    assert!(without.passed(), "{:?}", without.signatures());
    assert!(
        scenario.meta().op_count <= 8,
        "shrunk to the ops that matter: {} ops",
        scenario.meta().op_count
    );
    // Importing the same artifact again finds it recorded and adds nothing.
    assert_eq!(cli(&[]), 1);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    // Under another name too (a sweep's promotion names its files otherwise): what the file
    // pins, not its name, says the finding is kept.
    let renamed = out.join("promoted-by-a-sweep.toml");
    std::fs::rename(&written[0], &renamed).unwrap();
    assert_eq!(cli(&[]), 1);
    assert_eq!(toml_files_in(&out), vec![renamed.clone()]);
    // A file of the name it would write that pins something else (here, nothing that parses) is
    // kept; the artifact still shows its finding, so the exit is 1 as for every such artifact.
    std::fs::remove_file(&renamed).unwrap();
    std::fs::write(out.join(&name), "not a scenario").unwrap();
    assert_eq!(cli(&[]), 1);
    assert_eq!(
        std::fs::read_to_string(out.join(&name)).unwrap(),
        "not a scenario"
    );
}

/// A path with a newline in it (the artifact's, the output directory's) is written into the
/// regression's comment lines escaped, so the file parses: the header's import command and its
/// `# Replay:` line each stay on their line, and the command still names the path (`$'…'`).
#[test]
fn import_crash_writes_a_path_with_a_newline_in_its_comments_escaped() {
    let dir = scratch_dir("import-crash-newline");
    let artifact = dir.join("crash\nseed = 5");
    std::fs::copy(prestats_artifact(), &artifact).unwrap();
    let out = dir.join("out\nx = 1");
    let args = [
        "sim",
        "import-crash",
        "wasi-runtime",
        &artifact.display().to_string(),
        "--defect",
        "prestats-lock-leak",
        "--out",
        &out.display().to_string(),
    ]
    .map(String::from);
    let registry = sim::registry::Registry::builtin;
    assert_eq!(sim::cli::main_with_args(registry(), args.to_vec()), 1);
    let written = toml_files_in(&out);
    assert_eq!(written.len(), 1, "one regression file: {written:?}");
    let source = std::fs::read_to_string(&written[0]).unwrap();
    let first = source.lines().next().unwrap();
    assert!(
        first.starts_with("# Imported by `sim import-crash wasi-runtime $'")
            && first.contains("/crash\\nseed = 5' --defect prestats-lock-leak`"),
        "{source}"
    );
    let replay = source.lines().find(|line| line.starts_with("# Replay: "));
    assert!(
        replay
            .is_some_and(|line| line.starts_with("# Replay: sim replay $'")
                && line.contains("/out\\nx = 1/")),
        "{source}"
    );
    registry()
        .parse("regression.toml", &source)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}\n{source}"));
}

/// `--classify` answers on one line of stdout for every target, the parser's too: an artifact
/// the parser now handles is `pass`, with nothing written (it printed nothing on stdout, so a
/// script reading the verdict read an empty line).
#[test]
fn import_crash_classifies_a_scenario_parser_artifact_on_stdout() {
    let dir = scratch_dir("import-crash-parser-classify");
    let artifact = write_file(&dir, "crash-parser", b"name = \"x\"\nsubject = [1, 2");
    let corpus = dir.join("parser-corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let artifact = artifact.display().to_string();
    let corpus_arg = corpus.display().to_string();
    let import = [
        "import-crash",
        "scenario-parser",
        &artifact,
        "--parser-corpus",
        &corpus_arg,
    ];
    let (code, stdout, stderr) = run_sim(&[&import[..], &["--classify"]].concat());
    assert_eq!((code, stdout.as_str()), (0, "pass\n"), "stderr: {stderr}");
    assert_eq!(
        std::fs::read_dir(&corpus).unwrap().count(),
        0,
        "nothing written"
    );
    // Imported rather than classified, it is nothing to import: exit 0, as for a subject's
    // artifact that passes, and nothing written.
    let (code, _, stderr) = run_sim(&import);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("nothing to import"), "{stderr}");
    assert_eq!(std::fs::read_dir(&corpus).unwrap().count(), 0);
}

/// A seed input of the WASI target that fails with `prestats-lock-leak` on: a crash artifact as
/// the fuzzer would write it.
fn prestats_artifact() -> PathBuf {
    let defect = "prestats-lock-leak".to_string();
    let target = fuzzing::target("wasi-runtime").unwrap();
    corpus_inputs("wasi-runtime")
        .into_iter()
        .find(|input| {
            target
                .run(
                    &std::fs::read(input).unwrap(),
                    std::slice::from_ref(&defect),
                )
                .is_err()
        })
        .expect("some wasi-runtime seed input instantiates without preopens")
}

/// `sim import-crash` as a person runs it after a fuzzing session: with no `--defect`, it reads
/// `SIM_FUZZ_DEFECTS` as the fuzzer did; and from a directory that has no `corpus/regressions`
/// it refuses to start one that no test would read, rather than write there.
#[test]
fn import_crash_reads_the_fuzzers_defects_and_writes_only_into_a_corpus_that_exists() {
    let artifact = prestats_artifact().display().to_string();
    let run = |env: Option<&str>, args: &[&str], dir: &Path| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sim"));
        command
            .args(["import-crash", "wasi-runtime", &artifact])
            .args(args)
            .current_dir(dir)
            .env_remove(fuzzing::DEFECTS_ENV);
        if let Some(value) = env {
            command.env(fuzzing::DEFECTS_ENV, value);
        }
        code_and_output(command.output().unwrap())
    };
    let root = workspace_root();
    let (code, stdout, _) = run(None, &["--classify"], &root);
    assert_eq!((code, stdout.trim()), (0, "pass"), "defects off: it passes");
    let (code, _, stderr) = run(Some("prestats-lock-leak"), &["--classify"], &root);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("note: defects from SIM_FUZZ_DEFECTS: prestats-lock-leak"),
        "{stderr}"
    );

    let elsewhere = scratch_dir("import-crash-elsewhere");
    let (code, _, stderr) = run(None, &["--defect", "prestats-lock-leak"], &elsewhere);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("corpus/regressions: no such directory here"),
        "{stderr}"
    );
    assert!(!elsewhere.join("corpus").exists(), "nothing was created");
}

/// A crash artifact past the bound (`ARTIFACT_BYTES_MAX`, the 4 MiB a scenario file may have;
/// libFuzzer's inputs are far smaller) is bad input that names the file and the bound, read no
/// further than one byte past it: the whole file was read, and `/dev/zero` ate all memory.
#[test]
fn import_crash_refuses_an_artifact_past_the_bound_without_reading_it_whole() {
    let dir = scratch_dir("import-crash-too-large");
    let out = dir.join("regressions");
    std::fs::create_dir_all(&out).unwrap();
    let artifact = dir.join("crash-large");
    // Sparse: its size is all the test needs of it.
    std::fs::File::create(&artifact)
        .unwrap()
        .set_len(sim::cli::ARTIFACT_BYTES_MAX + 1)
        .unwrap();
    let artifact = artifact.display().to_string();
    for extra in [None, Some("--classify")] {
        let mut args = vec![
            "import-crash",
            "counter",
            &artifact,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let (code, stdout, stderr) = run_sim(&args);
        assert_eq!(code, 2, "{extra:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(&format!(
                "{artifact}: file is {} bytes; a crash artifact is at most {} bytes",
                sim::cli::ARTIFACT_BYTES_MAX + 1,
                sim::cli::ARTIFACT_BYTES_MAX
            )),
            "{extra:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(toml_files_in(&out), Vec::<PathBuf>::new());
    }
}

/// `sim import-crash` writes no regression that `sim replay` would refuse to read (a scenario file
/// is at most 4 MiB): it exits 3 and names the command that imports the artifact again. No
/// built-in subject decodes an artifact into a scenario anywhere near that (at most ~150 small
/// ops), so the canary's subject is stood in for by one whose one op carries the artifact's bytes
/// as text: a subject of one's own named `counter`, in a registry handed to the CLI as a crate's
/// own binary hands its own, and imported by that name with the canary's defect (the canary's
/// own artifacts run on the built-in `counter` in any binary).
mod import_crash_bound {
    use std::path::Path;

    use arbitrary::{Arbitrary, Unstructured};
    use serde::{Deserialize, Serialize};
    use sim::os::{Os, Tid};
    use sim::registry::{Registry, erase};
    use sim::subject::{Config, DefectInfo, Step, Subject, SubjectInfo};

    use super::support::{rerun_test_in_child, scratch_dir, toml_files_in, write_file};

    /// Set (to `ARTIFACT<tab>OUT`, then `<tab>--classify` or nothing) in the process the test
    /// starts to run `sim import-crash`.
    const CHILD_ENV: &str = "SIM_TEST_IMPORT_CRASH_CHILD";
    const TEST_NAME: &str =
        "import_crash_bound::a_regression_past_the_scenario_file_bound_is_not_written";

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
    pub enum NoteOp {
        /// Keeps `text` in a heap block; frees it unless `leak-on-evict` is on.
        Note { text: String },
    }

    impl<'a> Arbitrary<'a> for NoteOp {
        /// One note of every byte left, so that the shrinker has no other to keep.
        fn arbitrary(input: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
            if input.is_empty() {
                return Err(arbitrary::Error::NotEnoughData);
            }
            let text = String::from_utf8_lossy(input.bytes(input.len())?).into_owned();
            Ok(NoteOp::Note { text })
        }
    }

    /// The stand-in for the canary's `counter`.
    pub struct Notes {
        leak: bool,
    }

    impl Subject for Notes {
        type Op = NoteOp;
        fn info() -> SubjectInfo {
            SubjectInfo {
                name: "counter",
                summary: "keeps notes (a stand-in for the canary's subject)",
                ops: vec![],
                defects: vec![DefectInfo {
                    name: "leak-on-evict",
                    summary: "a note's block is never freed",
                    source: "this test",
                }],
                caches: vec![],
                params: vec![],
                host_backed: false,
            }
        }
        fn new(_os: &mut Os, config: &Config) -> Self {
            Notes {
                leak: config.defect("leak-on-evict"),
            }
        }
        fn op_name(_op: &NoteOp) -> &'static str {
            "note"
        }
        fn apply(&mut self, os: &mut Os, _tid: Tid, op: &NoteOp) -> Step<Self> {
            let NoteOp::Note { text } = op;
            let block = os.malloc(text.len() as u64 + 1, "note").unwrap();
            if !self.leak {
                os.free(block, "note").unwrap();
            }
            Step::Done
        }
    }

    /// `sim import-crash canary ARTIFACT --out OUT [EXTRA]` with the stand-in: exit code, stdout,
    /// stderr.
    fn import(artifact: &Path, out: &Path, extra: &str) -> (i32, String, String) {
        // Without a fuzzing session's defects: the canary's are given on its command line.
        rerun_test_in_child(
            TEST_NAME,
            CHILD_ENV,
            format!("{}\t{}\t{extra}", artifact.display(), out.display()),
        )
    }

    #[test]
    fn a_regression_past_the_scenario_file_bound_is_not_written() {
        if let Some(paths) = std::env::var_os(CHILD_ENV) {
            let paths = paths.into_string().unwrap();
            let [artifact, out, extra] = paths.splitn(3, '\t').collect::<Vec<_>>()[..] else {
                panic!("{CHILD_ENV} is ARTIFACT<tab>OUT<tab>EXTRA: {paths}");
            };
            let registry = Registry::empty().with(erase::<Notes>());
            let mut args = vec!["sim", "import-crash", "counter", artifact, "--out", out];
            args.extend(["--defect", "leak-on-evict"]);
            args.extend(extra.split_whitespace());
            std::process::exit(sim::cli::main_with_args(registry, args));
        }
        let dir = scratch_dir("import-crash-bound");
        let out = dir.join("regressions");
        std::fs::create_dir_all(&out).unwrap();
        // A note of a few bytes: imported, as the canary's artifacts are.
        let small = write_file(&dir, "crash-small", "x".repeat(64));
        let (code, stdout, stderr) = import(&small, &out, "");
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        let written = toml_files_in(&out);
        assert_eq!(written.len(), 1, "{written:?}\n{stderr}");
        let regression = std::fs::read_to_string(&written[0]).unwrap();
        assert!(regression.contains("op = \"note\""), "{regression}");
        std::fs::remove_file(&written[0]).unwrap();

        // A note past the 4 MiB a scenario file may have: nothing is written, and the error
        // names the command that runs the artifact again without writing; that command works.
        let large = write_file(
            &dir,
            "crash-large",
            "x".repeat(sim::scenario::parse::SOURCE_BYTES_MAX),
        );
        let (code, stdout, stderr) = import(&large, &out, "");
        assert_eq!(code, 3, "{stdout}\n{stderr}");
        assert!(
            stderr.contains(": the regression was not written: the scenario file would be ")
                && stderr.contains(&format!(
                    "note: the artifact {0} is unchanged; `sim import-crash counter {0} --defect leak-on-evict --out {1} --classify` runs it again and names its finding, writing nothing",
                    large.display(),
                    out.display()
                )),
            "{stderr}"
        );
        assert_eq!(toml_files_in(&out), Vec::<std::path::PathBuf>::new());
        let (code, stdout, stderr) = import(&large, &out, "--classify");
        // The child is this test binary: the harness's own lines come around the answer.
        let answer = stdout
            .lines()
            .find_map(|line| line.find("defect ").map(|at| &line[at..]));
        assert_eq!(
            (code, answer),
            (1, Some("defect leak:heap block:note")),
            "{stdout}\n{stderr}"
        );
        assert_eq!(toml_files_in(&out), Vec::<std::path::PathBuf>::new());
        assert!(!out.join("open").exists() || toml_files_in(&out.join("open")).is_empty());
    }
}
