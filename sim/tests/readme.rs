//! The README shows scenarios and output a reader will copy; these tests keep them true. Every
//! `toml` block that names a `subject` parses, the first run prints what the README says it
//! prints (typed as the README gives it, with the replay command it prints pasted after), the example's report is the one section 5 shows, and the README's promise that
//! `… | head` ends quietly holds.

mod support;

#[allow(dead_code)]
#[path = "../examples/bump_allocator.rs"]
mod bump_allocator;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use sim::runner::RunOptions;
use support::{code_and_output, run_sim_from_root};

/// The `use` lines the README gives a subject of one's own, compiled here; the test
/// `the_readmes_use_paths_compile` checks that the README shows exactly these lines.
#[allow(unused_imports)]
mod the_readmes_imports {
    // README imports begin
    use arbitrary::Arbitrary;
    use serde::{Deserialize, Serialize};
    use sim::os::modules::CodeAddr; // for `Subject::call` (exit hooks, TLS destructors)
    use sim::os::{Os, Tid};
    use sim::registry::{Registry, erase};
    use sim::runner::RunOptions;
    use sim::subject::{
        CacheDecl, Config, DefectInfo, Names, OpDoc, OpRefusal, Step, Subject, SubjectInfo,
    };
    // README imports end
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(path).expect("README.md")
}

/// The fenced blocks of `text` in `language`, with the line each starts on (1-based, the fence's).
fn blocks(text: &str, language: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        match open.as_mut() {
            None if line.trim_start() == format!("```{language}") => {
                open = Some((index + 1, String::new()));
            }
            None => {}
            Some(_) if line.trim_start() == "```" => blocks.push(open.take().unwrap()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    blocks
}

/// The block of `language` that follows the line containing `marker`.
fn block_after(text: &str, marker: &str, language: &str) -> String {
    let marker_line = text
        .lines()
        .position(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("README has no line with {marker:?}"));
    blocks(text, language)
        .into_iter()
        .find(|(line, _)| *line > marker_line)
        .unwrap_or_else(|| panic!("no {language} block after {marker:?}"))
        .1
}

#[test]
fn every_scenario_the_readme_shows_parses() {
    let registry = bump_allocator::registry();
    let scenarios: Vec<(usize, String)> = blocks(&readme(), "toml")
        .into_iter()
        .filter(|(_, body)| body.lines().any(|line| line.starts_with("subject = ")))
        .collect();
    assert!(
        scenarios.len() >= 2,
        "the README shows a built-in subject's scenario and the example's"
    );
    for (line, body) in scenarios {
        if let Err(diagnostic) = registry.parse(&format!("README.md:{line}"), &body) {
            panic!("the README's scenario at line {line} does not parse:\n{diagnostic}");
        }
    }
}

/// Run from a directory of the test's own that has the repository's `scenarios/`, as from the
/// root: the run writes its repro under `target/sim/repros/` of the directory it runs in, which
/// at the root is the source tree's `target/` (not the build's, with `CARGO_TARGET_DIR` set).
#[test]
fn the_first_run_prints_what_the_readme_shows() {
    let shown = block_after(&readme(), "## A first run", "text");
    let dir = support::scratch_dir("first-run-report");
    std::os::unix::fs::symlink(
        support::workspace_root().join("scenarios"),
        dir.join("scenarios"),
    )
    .unwrap();
    let (code, stdout, stderr) =
        support::run_sim_in(&dir, &["run", "scenarios/zoo/instantiate-destroy.toml"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, shown, "README's first-run output, line for line");
}

/// The op examples the README shows under `sim list counter`'s table are the ones it prints.
#[test]
fn the_op_examples_the_readme_shows_are_what_sim_list_prints() {
    let shown = block_after(&readme(), "`sim list counter` ends with", "text");
    let shown: String = shown
        .lines()
        .map(|line| format!("{}\n", line.strip_prefix("  ").unwrap_or(line)))
        .collect();
    let (code, stdout, stderr) = run_sim_from_root(&["list", "counter"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.ends_with(&format!("{shown}\n")),
        "README's `sim list counter` examples, line for line:\n{shown}\nprinted:\n{stdout}"
    );
}

/// The first run's commands, typed into a shell as the README gives them (the build aside), print
/// the report it shows, and the replay command that report ends with, pasted into the same
/// shell, replays the run. The commands run in a directory of the test's own that has the
/// repository's `scenarios/` and the binary under test at `target/release/sim`, where the build
/// puts it. With `target/release/sim run …` as the README had it, the pasted `sim replay …`
/// found no `sim`.
#[test]
fn the_first_runs_commands_and_its_printed_replay_work_as_typed() {
    let commands = block_after(&readme(), "## A first run", "sh");
    let shown = block_after(&readme(), "## A first run", "text");
    let typed: Vec<&str> = commands
        .lines()
        .filter(|line| !line.starts_with("cargo build"))
        .collect();
    let dir = support::scratch_dir("first-run");
    std::fs::create_dir_all(dir.join("target/release")).unwrap();
    std::os::unix::fs::symlink(support::SIM, dir.join("target/release/sim")).unwrap();
    std::os::unix::fs::symlink(
        support::workspace_root().join("scenarios"),
        dir.join("scenarios"),
    )
    .unwrap();
    let shell = |script: &str| {
        let output = Command::new("sh")
            .args(["-c", script])
            .current_dir(&dir)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("run sh");
        code_and_output(output)
    };
    let (code, stdout, stderr) = shell(&typed.join("\n"));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, shown, "the README's commands print what it shows");
    let replay = shown
        .lines()
        .find_map(|line| line.strip_prefix("note: replay with `")?.strip_suffix('`'))
        .expect("the report ends with a replay command");
    let setup: Vec<&str> = typed
        .iter()
        .copied()
        .filter(|line| line.starts_with("export "))
        .collect();
    let (code, stdout, stderr) = shell(&format!("{}\n{replay}", setup.join("\n")));
    assert_eq!(code, 1, "`{replay}` pasted: {stderr}");
    assert!(
        stdout.contains("replayed: the same findings and the same trace hash as recorded"),
        "{stdout}"
    );
}

#[test]
fn section_5_shows_what_the_example_prints() {
    let shown = block_after(&readme(), "which prints", "text");
    let scenario = bump_allocator::registry()
        .parse("arena-overflow.toml", bump_allocator::SCENARIO)
        .unwrap();
    let outcome = scenario.run(RunOptions::default());
    let printed: String = outcome
        .findings
        .iter()
        .map(|finding| sim::report::render_finding(finding, &outcome, "replay command"))
        .collect();
    assert_eq!(printed, shown);
}

/// `sim run … | head -1`: the reader goes away after one byte, and the tool ends without an
/// error (by SIGPIPE, as Unix tools do, rather than a failed write reported as an internal
/// error). The output must outgrow the pipe's buffer (64 KiB on Linux) for the tool to notice
/// the reader is gone, so the run is of 200 failing files, whose reports come to about 165 KB
/// (`sim run` of those files, piped to `wc -c`).
#[test]
fn a_reader_that_stops_early_ends_the_tool_quietly() {
    let dir = support::fresh_path("readme-pipe");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let zoo =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/zoo/instantiate-destroy.toml");
    let text = std::fs::read_to_string(zoo).unwrap();
    for index in 0..200 {
        let renamed = text.replace(
            "name = \"instantiate-destroy\"",
            &format!("name = \"copy-{index}\""),
        );
        std::fs::write(files.join(format!("copy-{index}.toml")), renamed).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("run")
        .arg(&files)
        .arg("--repro-dir")
        .arg(dir.join("repros"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sim");
    let mut first = [0u8; 1];
    child
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut first)
        .expect("a first byte");
    // The pipe's read end is dropped here, with nearly all of the output unread.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(stderr, "", "nothing on stderr");
    // Ended by the signal, as `cat` or `grep` would be, not left to finish 200 runs into a pipe
    // nobody reads (nor to report the closed pipe as an internal error, exit 3).
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(13),
        "SIGPIPE ends the tool: {status:?}"
    );
}

#[test]
fn the_readmes_use_paths_compile() {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readme.rs"))
            .unwrap();
    let begin =
        source.find("// README imports begin\n").unwrap() + "// README imports begin\n".len();
    let end = source.find("    // README imports end").unwrap();
    let compiled: String = source[begin..end]
        .lines()
        // Less the module's indent only: a list of names spread over lines keeps its own.
        .map(|line| format!("{}\n", line.strip_prefix("    ").unwrap_or(line)))
        .collect();
    let shown = block_after(&readme(), "The paths the sections below use:", "rust");
    assert_eq!(
        shown, compiled,
        "the README's use lines are the ones compiled here"
    );
}

/// Every item of `sim::subject` that the README's Rust blocks name is in its `use` lines: a reader
/// who copies them and then the sections' code compiles it. (`OpRefusal`, which `validate_op`
/// returns, was missing.) The items are read from `subject.rs`'s `pub` declarations.
#[test]
fn the_readmes_use_lines_bring_in_every_subject_item_its_code_names() {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/subject.rs"))
            .unwrap();
    let items: Vec<&str> = source
        .lines()
        .filter_map(|line| {
            let rest = ["pub struct ", "pub enum ", "pub trait ", "pub type "]
                .iter()
                .find_map(|start| line.strip_prefix(start))?;
            rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
        })
        .collect();
    assert!(
        items.contains(&"OpRefusal") && items.contains(&"Subject"),
        "{items:?}"
    );
    let readme = readme();
    let imports = block_after(&readme, "The paths the sections below use:", "rust");
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric() && c != '_')
            .map(str::to_string)
            .collect()
    };
    let imported = words(&imports);
    let mut missing: Vec<String> = blocks(&readme, "rust")
        .iter()
        .flat_map(|(_, code)| words(code))
        .filter(|word| items.contains(&word.as_str()) && !imported.contains(word))
        .collect();
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "the README's code names {missing:?} from sim::subject, which its use lines leave out"
    );
}
