//! The Makefile is where a person starts (`make sweep`, `make zoo`): its targets must run the
//! binary its own `cargo build` made. These tests read the commands `make -n` would run, so
//! nothing is built or run.

mod support;

use std::process::Command;
use support::workspace_root;

/// The targets that build `sim` and then run it.
const TARGETS_THAT_RUN_SIM: [&str; 6] = ["run", "list", "zoo", "sweep", "detect", "sweep-scaling"];

/// The commands `make -n TARGETS` prints from the repository's root, with CARGO_TARGET_DIR set
/// to `target_dir` or unset.
fn dry_run(target_dir: Option<&str>) -> Vec<String> {
    let mut make = Command::new("make");
    make.arg("-n")
        .args(TARGETS_THAT_RUN_SIM)
        .current_dir(workspace_root())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("SIM");
    if let Some(dir) = target_dir {
        make.env("CARGO_TARGET_DIR", dir);
    }
    let output = make.output().expect("run make");
    assert!(
        output.status.success(),
        "make -n: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The commands that run a program named `sim` (not cargo's build, nor the `rm` of an old sweep).
fn sim_commands(commands: &[String]) -> Vec<&String> {
    commands
        .iter()
        .filter(|line| {
            let program = line.split(' ').next().unwrap_or("");
            program == "sim" || program.ends_with("/sim")
        })
        .collect()
}

/// With CARGO_TARGET_DIR set, cargo builds `sim` there and `target/release/sim` is missing (or
/// an old build): `make sweep` failed with `make: target/release/sim: No such file or directory`.
#[test]
fn make_runs_the_sim_that_cargo_built_under_cargo_target_dir() {
    let commands = dry_run(Some("/elsewhere/target-dir"));
    let runs = sim_commands(&commands);
    assert!(runs.len() >= TARGETS_THAT_RUN_SIM.len(), "{commands:#?}");
    for line in runs {
        assert!(
            line.starts_with("/elsewhere/target-dir/release/sim "),
            "runs another sim than cargo built: {line}"
        );
    }
}

#[test]
fn make_runs_target_release_sim_by_default() {
    let commands = dry_run(None);
    let runs = sim_commands(&commands);
    assert!(runs.len() >= TARGETS_THAT_RUN_SIM.len(), "{commands:#?}");
    for line in runs {
        assert!(line.starts_with("target/release/sim "), "{line}");
    }
}
