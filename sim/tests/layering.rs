//! Keeps the layering of `sim/README.md`: a module may import only modules of its own layer or
//! layers above it. Adding an upward import fails this test. Also keeps every module that runs
//! inside a simulation free of the clock, the environment, host randomness and randomly-hashed
//! maps (the determinism rules `sim/README.md` states).

use std::path::Path;

const LAYERS: &[&[&str]] = &[
    &["seed", "rng", "trace", "findings", "faults"],
    &["sched"],
    &["os"],
    &["ledger"],
    &["subject", "subjects"],
    &["scenario"],
    &["runner"],
    &["registry", "report", "shrink", "sweep", "fuzzing"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn module_of(path: &Path, src: &Path) -> String {
    let relative = path.strip_prefix(src).unwrap();
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .to_string();
    first.trim_end_matches(".rs").to_string()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_point_only_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut violations = Vec::new();
    let mut checked = 0;
    for path in all {
        let module = module_of(&path, &src);
        let Some(own) = layer_of(&module) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        // Test modules may reach anything; only production code is layered.
        let production = text.split("#[cfg(test)]").next().unwrap();
        for line in production.lines() {
            let line = line.trim();
            for prefix in ["use crate::", "crate::"] {
                let mut rest = line;
                while let Some(at) = rest.find(prefix) {
                    rest = &rest[at + prefix.len()..];
                    let target: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if let Some(layer) = layer_of(&target) {
                        checked += 1;
                        if layer > own {
                            violations.push(format!(
                                "{}: `{module}` imports `{target}`, which is a higher layer",
                                path.display()
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        checked > 20,
        "the scan found the crate's imports ({checked})"
    );
    violations.sort();
    violations.dedup();
    assert!(
        violations.is_empty(),
        "upward imports:\n{}",
        violations.join("\n")
    );
}

#[test]
fn subjects_never_import_the_ledger_or_runner() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/subjects");
    let mut all = Vec::new();
    files(&dir, &mut all);
    for path in all {
        let text = std::fs::read_to_string(&path).unwrap();
        for forbidden in [
            "crate::ledger",
            "crate::runner",
            "crate::scenario::",
            "crate::report",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}: subjects see only the Os",
                path.display()
            );
        }
    }
}

/// Modules outside the simulation: the sweep reads the wall clock (progress, timings) and the CLI
/// reads the environment, files and the clock. Everything else runs inside a simulation or builds
/// what one runs, and must be a function of its scenario and seed alone.
const OUTSIDE_THE_SIMULATION: &[&str] = &["sweep", "cli", "main"];

/// What would make a run depend on more than its scenario and seed, as identifier paths: the wall
/// clock, the environment, the host's randomness, and maps whose iteration order is seeded per
/// process. A `BTreeMap` (or a sorted list) is what the simulation uses instead.
const NONDETERMINISTIC: &[&str] = &[
    "HashMap",
    "HashSet",
    "RandomState",
    "Instant",
    "SystemTime",
    "std::env",
    "rand::thread_rng",
    "rand::rng",
    "OsRng",
    "getrandom",
    "from_entropy",
    "from_os_rng",
];

/// The identifier paths in `line` (`std::env::var`, `HashMap`), outside string literals and
/// comments, so that `Instantiate` is not `Instant` and a doc comment may name what it avoids.
fn paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            in_string = !in_string;
            continue;
        }
        if in_string {
            if c == '\\' {
                chars.next();
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            current.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            current.push_str("::");
        } else if !current.is_empty() {
            paths.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        paths.push(current);
    }
    paths
}

#[test]
fn nothing_inside_a_simulation_reads_the_clock_the_environment_or_host_randomness() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut violations = Vec::new();
    let mut scanned = 0;
    for path in all {
        if OUTSIDE_THE_SIMULATION.contains(&module_of(&path, &src).as_str()) {
            continue;
        }
        scanned += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (index, line) in text.lines().enumerate() {
            for found in paths(line) {
                let segments: Vec<&str> = found.split("::").collect();
                for forbidden in NONDETERMINISTIC {
                    let wanted: Vec<&str> = forbidden.split("::").collect();
                    if segments
                        .windows(wanted.len())
                        .any(|window| window == wanted)
                    {
                        violations.push(format!(
                            "{}:{}: `{forbidden}` in `{}`",
                            path.display(),
                            index + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(scanned > 30, "the scan found the crate's files ({scanned})");
    assert!(
        violations.is_empty(),
        "a simulation must be a function of its scenario and seed:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_determinism_scan_sees_what_it_forbids() {
    assert!(
        paths("let m: std::collections::HashMap<u8, u8>;")
            .contains(&"std::collections::HashMap".to_string())
    );
    assert!(paths("let t = Instant::now();").contains(&"Instant::now".to_string()));
    assert!(
        paths("WasiOp::Instantiate { .. }")
            .iter()
            .all(|p| !p.split("::").any(|s| s == "Instant"))
    );
    assert!(
        paths("let s = \"HashMap\"; // HashMap")
            .iter()
            .all(|p| p != "HashMap")
    );
    assert!(paths("std::env::var(\"X\")").contains(&"std::env::var".to_string()));
}
