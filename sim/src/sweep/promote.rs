//! Promotion: copying chosen repros into `corpus/regressions/`, where every finding ever made is
//! kept and replayed. Only files that parse and pin at least one signature are taken. Repro names
//! hash the subject and signature, so a file of the same name that is already there is a
//! regression of the same finding: it is kept, and the new one is not copied over it.

use std::path::{Path, PathBuf};

use crate::registry::Registry;
use crate::report;

/// The directory `sim promote` and `sim sweep --promote` copy into.
pub const REGRESSIONS_DIR: &str = "corpus/regressions";

/// Makes sure `dir` is a directory that promotion can copy into (creating it if need be). A sweep
/// with `--promote` calls it before its runs, so that a target that cannot be one (a regular file
/// in its place, say) fails in a second rather than after hours of runs and minimising.
pub fn prepare_target(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "{}: cannot promote repros into it: {e}{}",
            dir.display(),
            if dir.exists() && !dir.is_dir() {
                " (it is not a directory)"
            } else {
                ""
            }
        )
    })
}

/// Copies each repro file into `dir`; returns one line per file saying what happened.
pub fn promote(registry: &Registry, files: &[PathBuf], dir: &Path) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for file in files {
        let label = file.display().to_string();
        let text =
            std::fs::read_to_string(file).map_err(|e| format!("{label}: cannot read: {e}"))?;
        let scenario = registry
            .parse(&label, &text)
            .map_err(|diagnostic| diagnostic.to_string())?;
        let signatures = scenario
            .meta()
            .expect
            .map(|e| e.signatures)
            .unwrap_or_default();
        if signatures.is_empty() {
            return Err(format!(
                "{label}: not a repro: it pins no finding (no `signatures` under [expect]); write one with `sim sweep` or `sim shrink`"
            ));
        }
        let name = file
            .file_name()
            .ok_or_else(|| format!("{label}: not a file name"))?;
        let target = dir.join(name);
        let rewritten = text.replace(
            &report::replay_command(&label),
            &report::replay_command(&target.display().to_string()),
        );
        if target.exists() {
            let line = if std::fs::read_to_string(&target).ok().as_deref() == Some(&rewritten) {
                format!("{}: already promoted", target.display())
            } else {
                format!(
                    "{}: already holds a regression for {}; kept it",
                    target.display(),
                    signatures.join(", ")
                )
            };
            lines.push(line);
            continue;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
        std::fs::write(&target, rewritten)
            .map_err(|e| format!("{}: cannot write: {e}", target.display()))?;
        lines.push(format!(
            "promoted {label} -> {} ({})",
            target.display(),
            signatures.join(", ")
        ));
    }
    Ok(lines)
}
