//! What the integration tests share: where the repository is, a scratch directory of a test's
//! own, running the `sim` binary under test as a person would (from a directory, or by pasting a
//! command it printed into a shell), and parsing or running scenarios the common way. A test file
//! takes it with `mod support;`; cargo builds `tests/support/mod.rs` into no test binary of its
//! own. Helpers that only one file needs stay in that file.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sim::registry::{DynScenario, Registry};
use sim::runner::{Outcome, RunOptions};
use sim::scenario::generate::GenerateOptions;
use sim::sweep::Source;

/// The `sim` binary under test, which cargo builds for the integration tests.
pub const SIM: &str = env!("CARGO_BIN_EXE_sim");

/// The repository's root, where `scenarios/`, `corpus/` and `README.md` live.
pub fn workspace_root() -> PathBuf {
    package_dir()
        .parent()
        .expect("sim/ sits in the workspace")
        .to_path_buf()
}

/// The `sim` package's directory (`sim/`), where cargo starts every test.
pub fn package_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test binary this module is compiled into (`sweep` for `tests/sweep.rs`).
fn suite() -> &'static str {
    module_path!()
        .split("::")
        .next()
        .expect("a module path starts with its crate")
}

/// `CARGO_TARGET_TMPDIR/SUITE/NAME`, removed with whatever was in it. Tests run in parallel, so
/// each names its own and never deletes another's files.
pub fn fresh_path(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(suite())
        .join(name);
    let _ = std::fs::remove_dir_all(&path);
    // The suite's own directory, which a file path (a `--trace`) needs and `sim` does not make:
    // on a fresh target directory nothing else may have made it yet.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    path
}

/// A fresh, empty scratch directory of the test's own (`fresh_path`, created).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = fresh_path(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `--repro-dir` argument of the test's own: a path that does not exist yet, so that `sim`
/// makes the directory and it holds only what this test's runs wrote.
pub fn repro_dir(name: &str) -> String {
    fresh_path(name).display().to_string()
}

/// Runs the `sim` binary under test with `args`, from `dir`, and returns (exit code, stdout,
/// stderr) whatever the code.
pub fn run_sim_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(SIM)
        .args(args)
        .current_dir(dir)
        // `sim list` wraps its table to `COLUMNS` when that is exported; tests read whole rows.
        .env_remove("COLUMNS")
        .output()
        .expect("run sim");
    code_and_output(output)
}

/// A child's (exit code, stdout, stderr); a child killed by a signal fails the test with its
/// stderr.
pub fn code_and_output(output: Output) -> (i32, String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("the child was killed: {}\n{stderr}", output.status));
    (code, stdout, stderr)
}

/// Runs this test binary again, as a child process that runs its test `test` alone (the full
/// name `--exact` wants) with the environment variable `var` set to `value`: (exit code, stdout,
/// stderr). For work a test needs a process of its own for: a CLI call with the test's own
/// subjects (`main_with_args`, which exits and prints to stderr), or a fresh load address. The
/// test does that work when it finds `var` set, and starts the child otherwise. The child runs
/// without `fuzzing::DEFECTS_ENV`: its defects are the test's, not a fuzzing session's.
pub fn rerun_test_in_child(
    test: &str,
    var: &str,
    value: impl AsRef<OsStr>,
) -> (i32, String, String) {
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env_remove(sim::fuzzing::DEFECTS_ENV)
        .env(var, value)
        .output()
        .expect("run the test binary again");
    code_and_output(output)
}

/// `run_sim_in` the package's directory, where cargo starts the tests.
pub fn run_sim(args: &[&str]) -> (i32, String, String) {
    run_sim_in(package_dir(), args)
}

/// `run_sim_in` the repository's root, where a person runs it and the README's paths start.
pub fn run_sim_from_root(args: &[&str]) -> (i32, String, String) {
    run_sim_in(&workspace_root(), args)
}

/// A `dlmalloc` scenario whose arena (`arena-bytes`, 64 GiB) a host held to
/// `run_sim_under_memory_limit`'s address space refuses.
pub const HUGE_ARENA_SCENARIO: &str = "name = \"huge-arena\"\nsubject = \"dlmalloc\"\n[config]\n\
    arena-bytes = 68719476736\n[[lifecycle]]\nname = \"l\"\n\
    ops = [{ op = \"create\" }, { op = \"destroy\" }]\n";

/// `run_sim` with the address space held to 2 GB (`ulimit -v`): a host that refuses
/// `HUGE_ARENA_SCENARIO`'s arena.
pub fn run_sim_under_memory_limit(args: &[&str]) -> (i32, String, String) {
    let output = Command::new("sh")
        .args(["-c", "ulimit -v 2000000 && exec \"$0\" \"$@\"", SIM])
        .args(args)
        .current_dir(package_dir())
        .output()
        .expect("run sh");
    code_and_output(output)
}

/// Runs a command line that `sim` printed (`sim replay …`, `sim run …`) through a real shell,
/// from `dir`, as a person pasting it would, with `sim` standing for the binary under test:
/// (exit code, stdout, stderr).
pub fn paste_into_shell(dir: &Path, command: &str) -> (i32, String, String) {
    let rest = command
        .strip_prefix("sim ")
        .unwrap_or_else(|| panic!("not a sim command: {command}"));
    let output = Command::new("sh")
        .args(["-c", &format!("exec \"$SIM\" {rest}")])
        .env("SIM", SIM)
        .current_dir(dir)
        .output()
        .expect("run sh");
    code_and_output(output)
}

/// The `.toml` files directly in `dir`, sorted; none when `dir` does not exist.
pub fn toml_files_in(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The path of a file of the repository (`scenarios/zoo/reload-loop.toml`), as an argument to
/// give `sim`.
pub fn workspace_path(relative: &str) -> String {
    workspace_root().join(relative).display().to_string()
}

/// The text of a file under the repository's `scenarios/`, such as `zoo/reload-loop.toml`.
pub fn scenario_text(relative: &str) -> String {
    let path = workspace_root().join("scenarios").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Scenario text parsed by the built-in subjects; a parse error fails the test with its message.
pub fn parse_scenario(text: &str) -> Box<dyn DynScenario> {
    Registry::builtin()
        .parse("test.toml", text)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The fields `keys` of a JSON object, as an object of their own (null for a key it lacks): a test
/// compares the fields it means with one `json!({...})`, and a failure names each field.
pub fn fields_of(object: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|&key| (key.to_string(), object[key].clone()))
            .collect(),
    )
}

/// Generates `subject`'s scenario of each seed in `seeds` with `options` and runs it with the
/// default run options; a run that does not pass fails the test with its findings and the
/// scenario's text.
pub fn assert_generated_pass(subject: &str, seeds: Range<u64>, options: &GenerateOptions) {
    for_each_passing_generated_scenario(subject, seeds, options, |_, _, _| {});
}

/// `assert_generated_pass`, which then hands each passing run to `also_check` (seed,
/// scenario, outcome).
pub fn for_each_passing_generated_scenario(
    subject: &str,
    seeds: Range<u64>,
    options: &GenerateOptions,
    mut also_check: impl FnMut(u64, &dyn DynScenario, &Outcome),
) {
    let registry = Registry::builtin();
    let subject = registry
        .get(subject)
        .unwrap_or_else(|| panic!("no subject `{subject}`"));
    for seed in seeds {
        let scenario = subject.generate(seed, options);
        let outcome = scenario.run(RunOptions::default());
        assert!(
            outcome.passed(),
            "seed {seed} of {options:?}: {:#?}\n{}",
            outcome.findings,
            scenario.to_toml().unwrap()
        );
        also_check(seed, scenario.as_ref(), &outcome);
    }
}

/// A report's `last op started:` line (a determinism finding's, or a replay's comparison of
/// traces) and the line under it, which points into the file; empty when there is none.
pub fn last_op_started_lines(report: &str) -> Vec<&str> {
    report
        .lines()
        .skip_while(|line| !line.starts_with("  last op started: "))
        .take(2)
        .collect()
}

/// Run options with every defect off, whatever the scenario names.
pub fn defects_off() -> RunOptions {
    RunOptions {
        defects: Some(vec![]),
        ..RunOptions::default()
    }
}

/// Prints `scenario` as TOML, parses the text back and checks that it prints to the same text;
/// returns the parsed scenario. `context` (a seed, a subject) heads each failure's message.
pub fn print_and_parse_back(
    registry: &Registry,
    scenario: &dyn DynScenario,
    context: &str,
) -> Box<dyn DynScenario> {
    let text = scenario.to_toml().unwrap();
    let parsed = registry
        .parse("generated.toml", &text)
        .unwrap_or_else(|e| panic!("{context}: {e}\n{text}"));
    assert_eq!(parsed.to_toml().unwrap(), text, "{context}");
    parsed
}

/// A `counter` scenario of 300,000 ops with `leak-on-evict` on, whose one leak is in the middle.
/// Its text is 3.6 MB, under the 4 MiB a scenario file may have; printed by `sim` (which spells
/// each op out), its ops alone pass it, so a repro or shrink result that keeps them all could not
/// be read back.
pub fn text_of_300000_op_leak() -> String {
    let mut ops = vec![r#"{op="bump"}"#; 300_000];
    ops.insert(150_000, r#"{op="create",slot=1},{op="evict",slot=1}"#);
    format!(
        "name = \"big\"\nsubject = \"counter\"\ndefects = [\"leak-on-evict\"]\n\
         [[lifecycle]]\nname = \"l\"\nops = [{}]\n",
        ops.join(",")
    )
}

/// Writes `text_of_300000_op_leak` to `DIR/big.toml` and returns its path.
pub fn write_300000_op_leak(dir: &Path) -> PathBuf {
    write_file(dir, "big.toml", text_of_300000_op_leak())
}

/// A sweep's source as `sim sweep DIR/NAME` makes it: `text` written to `DIR/NAME` and parsed by
/// `registry` under that path.
pub fn file_source(registry: &Registry, dir: &Path, name: &str, text: &str) -> Source {
    let path = write_file(dir, name, text);
    let scenario = registry
        .parse(&path.display().to_string(), text)
        .unwrap_or_else(|e| panic!("{e}"));
    Source::file(&path, scenario)
}

/// Writes `contents` to `DIR/NAME` and returns the file's path.
pub fn write_file(dir: &Path, name: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// A scenario for the reports of an op on a spawned thread where two runs part: two lifecycles
/// each declare a thread `w`, and the second also `v`, spawned before it, so the second
/// lifecycle's `w` is tid 3. `subject` has the ops `noop` and `grow`, and its `grow` (the second
/// op of that `w`) differs from one run to the next.
pub fn spawned_threads_scenario(subject: &str) -> String {
    format!(
        r#"name = "threads"
subject = "{subject}"
seed = 1

[[lifecycle]]
name = "first"
ops = [{{ op = "spawn", thread = "w" }}, {{ op = "join", thread = "w" }}]

[[lifecycle.thread]]
name = "w"
ops = [{{ op = "noop" }}]

[[lifecycle]]
name = "second"
ops = [
  {{ op = "spawn", thread = "v" }},
  {{ op = "spawn", thread = "w" }},
  {{ op = "join", thread = "v" }},
  {{ op = "join", thread = "w" }},
]

[[lifecycle.thread]]
name = "v"
ops = [{{ op = "noop" }}, {{ op = "noop" }}]

[[lifecycle.thread]]
name = "w"
ops = [{{ op = "noop" }}, {{ op = "grow" }}]
"#
    )
}

/// `count` inputs of `len` bytes each, cut in turn from one xorshift64 stream started at `seed`:
/// bytes as a fuzzer would hand them over, the same on every run.
pub fn xorshift_inputs(seed: u64, count: usize, len: usize) -> Vec<Vec<u8>> {
    let mut state = seed;
    let mut next_byte = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    (0..count)
        .map(|_| (0..len).map(|_| next_byte()).collect())
        .collect()
}
