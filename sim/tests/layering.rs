//! Keeps the layering of `sim/README.md`: a module may import only modules of its own layer or
//! layers above it. Adding an upward import fails this test.

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
