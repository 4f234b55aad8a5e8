//! One digest of everything a subject does: `cargo run --release --example trace_digest --
//! SUBJECT [SEEDS]`. It runs every input of `corpus/<target>/` and `corpus/regressions/` for the
//! subject, then SEEDS generated scenarios (default 300), each with every defect off and again
//! with every defect on, and prints one line per group: runs, findings, and a digest of the trace
//! hashes in order.
//!
//! A change meant only to make a subject or the virtual OS faster must leave every line as it
//! was: print them before and after, and compare. (The trace holds every observable event, so a
//! digest that stays the same says the runs did the same things in the same order.)

use std::path::Path;

use sim::registry::DynScenario;
use sim::runner::RunOptions;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(subject) = args.get(1) else {
        eprintln!("usage: trace_digest SUBJECT [SEEDS]");
        std::process::exit(2);
    };
    let seeds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300);
    let registry = sim::fuzzing::registry();
    let Some(entry) = registry.get(subject) else {
        eprintln!("trace_digest: unknown subject `{subject}`");
        std::process::exit(2);
    };
    let all_defects: Vec<String> = entry
        .info()
        .defects
        .iter()
        .map(|d| d.name.to_string())
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = sim::fuzzing::target(subject).map_or(subject.as_str(), |t| t.name);

    for (label, defects) in [("defects off", Vec::new()), ("defects on", all_defects)] {
        let options = sim::fuzzing::generate_options(&defects);
        let mut digest = Digest::default();
        for bytes in corpus_files(&root.join("corpus").join(target)) {
            digest.add(entry.from_bytes(&bytes, &options).as_ref(), &defects);
        }
        print_line(subject, &format!("corpus, {label}"), &digest);
        let mut digest = Digest::default();
        for seed in 0..seeds {
            digest.add(entry.generate(seed, &options).as_ref(), &defects);
        }
        print_line(subject, &format!("{seeds} seeds, {label}"), &digest);
    }
    let mut digest = Digest::default();
    for path in regression_files(&root.join("corpus").join("regressions"), subject) {
        let text = std::fs::read_to_string(&path).expect("readable regression");
        let scenario = entry
            .parse(&path.display().to_string(), &text)
            .expect("regressions parse");
        let defects = scenario.meta().defects;
        digest.add(scenario.as_ref(), &defects);
    }
    print_line(subject, "regressions, their defects", &digest);
}

#[derive(Default)]
struct Digest {
    runs: u64,
    findings: u64,
    hash: u64,
}

impl Digest {
    fn add(&mut self, scenario: &dyn DynScenario, defects: &[String]) {
        let outcome = scenario.run_in_process(RunOptions {
            defects: Some(defects.to_vec()),
            ..RunOptions::default()
        });
        self.runs += 1;
        self.findings += outcome.findings.len() as u64;
        // FNV-1a over the hashes in order: a tool's digest, not part of any simulation.
        for byte in outcome.trace_hash.to_le_bytes() {
            self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn print_line(subject: &str, group: &str, digest: &Digest) {
    println!(
        "{subject:14} {group:28} {:6} runs {:6} findings  digest {:016x}",
        digest.runs, digest.findings, digest.hash
    );
}

fn corpus_files(dir: &Path) -> Vec<Vec<u8>> {
    sorted_files(dir)
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn regression_files(dir: &Path, subject: &str) -> Vec<std::path::PathBuf> {
    sorted_files(dir)
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && std::fs::read_to_string(p)
                    .is_ok_and(|t| t.contains(&format!("subject = \"{subject}\"")))
        })
        .collect()
}

/// The files of `dir` in name order (none if it does not exist).
fn sorted_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.is_file());
    paths.sort();
    paths
}
