//! The malformed-scenario catalogue: every file in `tests/malformed/` is a scenario that is wrong in
//! one way. Each must make `sim run`, `sim replay` and `sim shrink` exit 2 with a message that
//! names `file:line:column` where the problem has a position, and none may panic.
//!
//! Each file states what it expects in a comment line, checked here:
//!
//! ```text
//! # expect: 10:10 unknown op `frobnicate`
//! # expect: 1:1 missing field `subject`
//! ```
//!
//! The position is the 1-based line and column the diagnostic must name (`none`: the problem has no
//! position, such as a file too large to read; a key the top-level table lacks is at 1:1, where
//! its keys go), and the rest of the line is text the message must contain.
//! Files that cannot carry a comment (the empty file, a syntax error at the first byte) are listed
//! in `NO_COMMENT` below; cases built from bytes at test time (random binary garbage, an oversized
//! file) are in `generated_cases`.

mod support;

use std::path::Path;
use std::process::Command;

use sim::registry::Registry;
use sim::scenario::nesting::NESTING_LEVELS_MAX;
use sim::scenario::parse::Diagnostic;
use support::{SIM, package_dir, scratch_dir, write_file};

/// What `sim` must say about one catalogue file: its name, the line and column the error names
/// (if any), and a phrase the message contains.
type Expectation = (&'static str, Option<(usize, usize)>, &'static str);

/// Expectations for catalogue files that cannot hold an `# expect:` line: the empty file, and
/// syntax errors at the very first byte, which a comment would move.
const NO_COMMENT: &[Expectation] = &[
    ("empty.toml", Some((1, 1)), "empty file"),
    ("syntax-brace-at-start.toml", Some((1, 1)), "expected key"),
    (
        "syntax-equals-at-start.toml",
        Some((1, 1)),
        "unquoted keys cannot be empty",
    ),
];

struct Case {
    /// Path as passed to `sim`, relative to the package directory.
    path: String,
    position: Option<(usize, usize)>,
    message: String,
}

fn parse_expectation(path: &str, text: &str) -> Case {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{path}: no `# expect: LINE:COLUMN text` line"));
    let (position, message) = line.split_once(' ').unwrap_or((line, ""));
    let position = if position == "none" {
        None
    } else {
        let (l, c) = position
            .split_once(':')
            .unwrap_or_else(|| panic!("{path}: bad expectation `{position}`"));
        Some((
            l.parse()
                .unwrap_or_else(|_| panic!("{path}: bad line in `{position}`")),
            c.parse()
                .unwrap_or_else(|_| panic!("{path}: bad column in `{position}`")),
        ))
    };
    Case {
        path: path.to_string(),
        position,
        message: message.trim().to_string(),
    }
}

fn catalogue() -> Vec<Case> {
    let dir = package_dir().join("tests/malformed");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = format!("tests/malformed/{name}");
            if let Some((_, position, message)) = NO_COMMENT.iter().find(|(n, ..)| *n == name) {
                return Case {
                    path,
                    position: *position,
                    message: message.to_string(),
                };
            }
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            parse_expectation(&path, &String::from_utf8_lossy(&bytes))
        })
        .collect()
}

/// Cases written at test time: bytes that are awkward to commit. Written into `dir_name`, a
/// scratch directory of the calling test's own: two tests share this process, and one making
/// the directory afresh deleted the other's files while it ran them.
fn generated_cases(dir_name: &str) -> Vec<Case> {
    let dir = scratch_dir(dir_name);
    let mut cases = Vec::new();
    // Binary garbage from a fixed xorshift stream: deterministic, and not UTF-8 at byte 0.
    let mut garbage = vec![0xc3u8, 0x28];
    garbage.extend(&support::xorshift_inputs(0x2545_f491_4f6c_dd1d, 1, 2046)[0]);
    let path = write_file(&dir, "binary-garbage.toml", &garbage);
    cases.push(Case {
        path: path.display().to_string(),
        position: Some((1, 1)),
        message: "not UTF-8".into(),
    });
    // A fuzzer's crash artifact, named as libFuzzer names it. Its bytes, not its name, bring the
    // note that says how to run it: any file that is not UTF-8 gets it.
    let path = write_file(&dir, "crash-3ddc7ec0", &garbage[..64]);
    cases.push(Case {
        path: path.display().to_string(),
        position: Some((1, 1)),
        message: format!(
            "crash artifact is bytes, not a scenario: `sim import-crash TARGET {} --classify`",
            path.display()
        ),
    });
    // Garbage that is valid UTF-8 (control characters and symbols): the TOML parser's turn.
    let path = write_file(&dir, "control-garbage.toml", "\u{1}\u{2}\u{7f}€€\n\u{0}");
    cases.push(Case {
        path: path.display().to_string(),
        position: Some((1, 6)),
        message: "key with no value".into(),
    });
    // A dotted key thousands of parts deep, refused at the part one level too deep (the 33rd,
    // where toml's own guard would refuse it at the 80th, with no position).
    let path = dir.join("deep-dotted-key.toml");
    let key = vec!["a"; 20_000].join(".");
    std::fs::write(
        &path,
        format!("name = \"deep\"\nsubject = \"counter\"\n{key} = 1\n"),
    )
    .unwrap();
    cases.push(Case {
        path: path.display().to_string(),
        position: Some((3, 65)),
        message: "nested too deeply: this key goes past the 32 levels".into(),
    });
    // Larger than any scenario may be: refused before parsing.
    let path = dir.join("oversized.toml");
    let mut text = String::from("name = \"big\"\nsubject = \"counter\"\n");
    while text.len() <= sim::scenario::parse::SOURCE_BYTES_MAX {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).unwrap();
    cases.push(Case {
        path: path.display().to_string(),
        position: None,
        message: "scenarios are at most".into(),
    });
    cases
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn sim(args: &[&str]) -> Ran {
    let output = Command::new(SIM)
        .args(args)
        .current_dir(package_dir())
        .output()
        .expect("run sim");
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Checks one case; returns the problems found (empty when it behaves).
fn check(case: &Case, repro_dir: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let commands: [Vec<&str>; 3] = [
        vec!["run", &case.path, "--repro-dir", repro_dir],
        vec!["replay", &case.path],
        vec!["shrink", &case.path, "--seed", "1"],
    ];
    let mut first_stderr: Option<String> = None;
    for args in &commands {
        let ran = sim(args);
        let what = format!("`sim {}`", args.join(" "));
        if ran.code != Some(2) {
            problems.push(format!("{what}: exit {:?}, expected 2", ran.code));
        }
        if ran.stderr.contains("panicked") || ran.stderr.contains("internal error") {
            problems.push(format!("{what}: panicked:\n{}", ran.stderr));
        }
        if !ran.stdout.is_empty() {
            problems.push(format!("{what}: printed on stdout:\n{}", ran.stdout));
        }
        if !ran.stderr.starts_with("error: ") {
            problems.push(format!(
                "{what}: stderr does not start with `error: `:\n{}",
                ran.stderr
            ));
        }
        if !ran.stderr.contains(&case.message) {
            problems.push(format!(
                "{what}: message lacks `{}`:\n{}",
                case.message, ran.stderr
            ));
        }
        match case.position {
            Some((line, column)) => {
                let location = format!("--> {}:{line}:{column}\n", case.path);
                if !ran.stderr.contains(&location) {
                    problems.push(format!(
                        "{what}: expected `{}`:\n{}",
                        location.trim(),
                        ran.stderr
                    ));
                }
                // The snippet's caret sits under the named column.
                let caret_line = ran.stderr.lines().find(|l| l.contains('^'));
                let gutter = line.to_string().len();
                let expected_prefix = format!("{:gutter$} | {:pad$}^", "", "", pad = column - 1);
                if !caret_line.is_some_and(|l| l.starts_with(&expected_prefix)) {
                    problems.push(format!(
                        "{what}: the caret is not under column {column}:\n{}",
                        ran.stderr
                    ));
                }
            }
            None => {
                let bare = format!("--> {}\n", case.path);
                if !format!("{}\n", ran.stderr.trim_end()).contains(&bare) {
                    problems.push(format!(
                        "{what}: expected `{}` without a position:\n{}",
                        bare.trim(),
                        ran.stderr
                    ));
                }
            }
        }
        match &first_stderr {
            None => first_stderr = Some(ran.stderr.clone()),
            Some(first) if *first != ran.stderr => problems.push(format!(
                "{what}: a different message than `sim run` gives:\n{}\n---\n{first}",
                ran.stderr
            )),
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn every_malformed_scenario_exits_2_with_a_positioned_message_and_never_panics() {
    let mut cases = catalogue();
    assert!(
        cases.len() >= 30,
        "the catalogue has {} files; it promises at least 30",
        cases.len()
    );
    cases.extend(generated_cases("malformed-generated"));
    let repro_dir = support::repro_dir("malformed-repros");
    // Four workers: each case is three short processes.
    let chunks: Vec<&[Case]> = cases.chunks(cases.len().div_ceil(4)).collect();
    let problems: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let repro_dir = &repro_dir;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .flat_map(|case| {
                            check(case, repro_dir)
                                .into_iter()
                                .map(move |p| format!("{}: {p}", case.path))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        problems.is_empty(),
        "{} problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
    assert!(
        !Path::new(&repro_dir).exists(),
        "bad input must not get as far as writing a repro"
    );
}

/// A `--strategy pct:DEPTH` whose depth is no number in range is refused with the range, however
/// it is wrong: a depth too large for a number read as an unknown strategy.
#[test]
fn a_pct_depth_out_of_range_is_refused_with_the_range() {
    for depth in ["0", "1001", "99999999999", "-1", "x"] {
        let strategy = format!("pct:{depth}");
        let ran = sim(&[
            "run",
            "../scenarios/zoo/instantiate-destroy.toml",
            "--strategy",
            &strategy,
        ]);
        assert_eq!(ran.code, Some(2), "{strategy}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("PCT `depth` must be") && ran.stderr.contains("between 1 and 1000"),
            "{strategy}: {}",
            ran.stderr
        );
    }
}

/// `--seed -1` is a bad seed (exit 2, with why), not an unknown flag whose tip, `-- -1`, would
/// make `-1` a file to run.
/// `--defect` over files of several subjects: the first file whose subject lacks the defect is
/// named, with the subject that has it, before anything runs.
#[test]
fn a_defect_of_another_subject_names_the_file_and_the_subject_that_has_it() {
    let ran = sim(&["run", "../scenarios", "--defect", "prestats-lock-leak"]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    let error = ran.stderr.lines().next().unwrap_or_default();
    assert!(
        error.contains("../scenarios/")
            && error.contains(".toml: unknown defect `prestats-lock-leak` for subject `")
            && error.ends_with(
                "(it is a defect of subject `wasi-runtime`: give only that subject's scenarios)"
            ),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty(), "nothing ran: {}", ran.stdout);
}

#[test]
fn a_negative_seed_is_refused_as_a_seed() {
    for command in ["run", "shrink"] {
        let ran = sim(&[
            command,
            "../scenarios/zoo/instantiate-destroy.toml",
            "--seed",
            "-1",
        ]);
        assert_eq!(ran.code, Some(2), "{command}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("bad seed `-1`: a seed is not negative"),
            "{command}: {}",
            ran.stderr
        );
    }
}

/// A key no field of an op takes is refused on every op of every built-in subject and on the
/// runner's ops, at the key: on an op without fields (`bump`, `exit`) too, which serde's
/// internally tagged enums decode from a table with any other keys. Each op is written as
/// `sim list` shows it, with every field, among the others (in an order they parse in), so that
/// only the added key is wrong; the list as shown parses.
#[test]
fn a_key_no_field_of_an_op_takes_is_refused_on_every_op_at_the_key() {
    let registry = Registry::builtin();
    let mut checked = Vec::new();
    for subject in registry.subjects() {
        let name = subject.info().name;
        let mut ops: Vec<(String, String)> = subject
            .op_examples()
            .into_iter()
            .filter_map(|example| Some((example.name.to_string(), example.example?)))
            .collect();
        ops.push(("sleep".into(), "{ op = \"sleep\", ticks = 1 }".into()));
        ops.push(("exit".into(), "{ op = \"exit\" }".into()));
        let file = |ops: &[String]| {
            format!(
                "name = \"t\"\nsubject = \"{name}\"\n\n[[lifecycle]]\nname = \"l\"\nops = [\n{}\n]\n",
                ops.join(",\n")
            )
        };
        let texts: Vec<String> = ops.iter().map(|(_, text)| text.clone()).collect();
        if let Err(diagnostic) = registry.parse("ok.toml", &file(&texts)) {
            panic!("{name}: the ops as `sim list` shows them do not parse:\n{diagnostic}");
        }
        for (index, (op, text)) in ops.iter().enumerate() {
            let mut texts = texts.clone();
            let body = text
                .strip_suffix(" }")
                .expect("an op example ends with ` }`");
            texts[index] = format!("{body}, misspelt = 1 }}");
            let source = file(&texts);
            let diagnostic = match registry.parse("bad.toml", &source) {
                Ok(_) => panic!("{name}: `{}` parses", texts[index]),
                Err(diagnostic) => diagnostic,
            };
            let key = source.find("misspelt").unwrap();
            assert_eq!(
                diagnostic.span,
                Some(key..key + "misspelt".len()),
                "{name}: {diagnostic}"
            );
            assert!(
                diagnostic
                    .message
                    .starts_with(&format!("op `{op}`: unknown field `misspelt`, ")),
                "{name}: {diagnostic}"
            );
            checked.push(format!("{name} {op}"));
        }
    }
    // Ops without fields among them, a subject's and the runner's.
    for op in [
        "counter bump",
        "counter hold",
        "counter exit",
        "dlmalloc destroy",
    ] {
        assert!(
            checked.iter().any(|c| c == op),
            "{op} not checked: {checked:?}"
        );
    }
}

#[test]
fn the_expectation_syntax_is_read_as_documented() {
    let case = parse_expectation(
        "x.toml",
        "# what\n# expect: 10:3 unknown op `x`\nname = 1\n",
    );
    assert_eq!(case.position, Some((10, 3)));
    assert_eq!(case.message, "unknown op `x`");
    let case = parse_expectation("x.toml", "# expect: none missing field\n");
    assert_eq!(case.position, None);
    assert_eq!(case.message, "missing field");
}

/// A stack as small as a library user may parse scenario files on: a debug build's toml takes
/// several KiB of it for each level a file nests.
const SMALL_STACK_BYTES: usize = 256 * 1024;

/// `Registry::parse` of `source` in this process, on a thread with a small stack.
fn parse_on_a_small_stack(path: &str, source: String) -> Result<(), Diagnostic> {
    let path = path.to_string();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK_BYTES)
        .spawn(move || Registry::builtin().parse(&path, &source).map(|_| ()))
        .unwrap()
        .join()
        .unwrap()
}

/// Every catalogue file is refused in this process, on a small stack, where `sim` says: a
/// deeply nested file is an error at its position, not a stack overflow that aborts the process
/// (`deep-nesting.toml` aborted a debug build on a test thread's 2 MiB).
#[test]
fn every_malformed_scenario_is_refused_in_process_on_a_small_stack() {
    let cases: Vec<Case> = catalogue()
        .into_iter()
        .chain(generated_cases("malformed-generated-in-process"))
        .filter(|case| case.position.is_some())
        .collect();
    assert!(
        cases
            .iter()
            .any(|case| case.path.ends_with("deep-nesting.toml"))
    );
    for case in cases {
        let bytes = std::fs::read(package_dir().join(&case.path)).unwrap();
        let Ok(source) = String::from_utf8(bytes) else {
            continue;
        };
        let diagnostic = parse_on_a_small_stack(&case.path, source)
            .expect_err(&format!("{}: parsed", case.path));
        assert_eq!(
            diagnostic.line_column(),
            case.position,
            "{}: {diagnostic}",
            case.path
        );
        assert!(
            diagnostic.message.contains(&case.message),
            "{}: {diagnostic}",
            case.path
        );
    }
}

/// The start of a scenario file, and of a lifecycle, for the nested files below.
const HEAD: &str = "name = \"deep\"\nsubject = \"counter\"\n";
const LIFECYCLE: &str = "[[lifecycle]]\nname = \"l\"\n";

/// `1`, in `count` layers of `wrap`.
fn nested(count: usize, wrap: fn(&str) -> String) -> String {
    (0..count).fold("1".to_string(), |inner, _| wrap(&inner))
}

/// A key of `parts` parts.
fn dotted(parts: usize) -> String {
    vec!["a"; parts].join(".")
}

/// A scenario file whose deepest key or value is at the level given.
type NestedFile = fn(usize) -> String;

/// A file nested exactly as deeply as a scenario file may, in each way a file nests, is read on a
/// small stack and refused for what it holds (a `[config]` key or op field the subject lacks),
/// not for its depth; a level more is refused for its depth.
#[test]
fn a_file_nested_to_the_bound_is_read_on_a_small_stack() {
    let levels_max = NESTING_LEVELS_MAX as usize;
    let shapes: [(&str, NestedFile); 6] = [
        // `config` 1, `{` 1, `a` 2, the arrays 2, 3, …
        ("arrays", |levels| {
            let arrays = nested(levels - 1, |inner| format!("[{inner}]"));
            format!("{HEAD}config = {{ a = {arrays} }}\n{LIFECYCLE}ops = []\n")
        }),
        // `config` 1, then an `a` a level deeper in each inline table.
        ("inline tables", |levels| {
            let tables = nested(levels - 1, |inner| format!("{{ a = {inner} }}"));
            format!("{HEAD}config = {tables}\n{LIFECYCLE}ops = []\n")
        }),
        ("a dotted key", |levels| {
            let key = dotted(levels - 1);
            format!("{HEAD}config.{key} = 1\n{LIFECYCLE}ops = []\n")
        }),
        ("a table header", |levels| {
            let key = dotted(levels - 2);
            format!("{HEAD}{LIFECYCLE}ops = []\n[config.{key}]\na = 1\n")
        }),
        // `config` 1, then each `a` an array of tables (2, 4, …) whose last table (3, 5, …)
        // the next header goes through.
        ("headers of arrays of tables", |levels| {
            let headers = (1..=(levels - 2) / 2)
                .map(|parts| format!("[[config.{}]]\n", dotted(parts)))
                .collect::<String>();
            let key = dotted(levels - (levels - 2) / 2 * 2 - 1);
            format!("{HEAD}{LIFECYCLE}ops = []\n{headers}{key} = 1\n")
        }),
        // `lifecycle` 1, its table 2, `ops` 3, `[` 3, `{` 4, `x` 5, the arrays 5, 6, …
        ("an op's field", |levels| {
            let arrays = nested(levels - 4, |inner| format!("[{inner}]"));
            format!("{HEAD}{LIFECYCLE}ops = [{{ op = \"create\", slot = 1, x = {arrays} }}]\n")
        }),
    ];
    for (shape, file) in &shapes {
        let at_bound = parse_on_a_small_stack("deep.toml", file(levels_max))
            .expect_err(&format!("{shape}: parsed"));
        assert!(
            !at_bound.message.contains("nested too deeply"),
            "{shape}, at the bound: {at_bound}"
        );
        let past = parse_on_a_small_stack("deep.toml", file(levels_max + 1))
            .expect_err(&format!("{shape}: parsed"));
        assert!(
            past.message.starts_with("nested too deeply"),
            "{shape}, past the bound: {past}"
        );
    }
}

/// A file far larger than a scenario may be, or one with no end (`/dev/zero`), is refused with
/// the parser's message after reading no more than the bound, by every command that reads a
/// scenario or repro: the commands run under a 1 GB memory limit, which a read of the whole file
/// (3 GB, sparse, or `/dev/zero` read for ever) runs into and aborts on, where the bounded read
/// needs a few MiB.
#[test]
fn a_file_past_the_size_bound_is_refused_without_being_read_whole() {
    let dir = scratch_dir("huge-file");
    let huge = dir.join("huge.toml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let huge = huge.display().to_string();
    let under_limit = |args: &[&str]| {
        let output = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 1000000 && exec \"$0\" \"$@\"")
            .arg(SIM)
            .args(args)
            .current_dir(package_dir())
            .output()
            .unwrap();
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    };
    let bound = sim::scenario::parse::SOURCE_BYTES_MAX;
    for (file, size) in [
        (huge.as_str(), format!("{} bytes", 3u64 << 30)),
        ("/dev/zero", format!("more than {bound} bytes")),
    ] {
        for command in ["run", "replay", "shrink"] {
            let ran = under_limit(&[command, file]);
            assert_eq!(ran.code, Some(2), "{command} {file}: {}", ran.stderr);
            assert!(
                ran.stderr.starts_with(&format!(
                    "error: file is {size}; scenarios are at most {bound}\n  --> {file}"
                )),
                "{command} {file}: {}",
                ran.stderr
            );
            assert!(ran.stdout.is_empty(), "{}", ran.stdout);
        }
    }
}
