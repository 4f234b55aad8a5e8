//! A scratch directory for a unit test of the tool around the simulations (the sweep, the CLI),
//! inside the build's target directory and removed when the test ends, passed or failed.
//!
//! Integration tests have cargo's `CARGO_TARGET_TMPDIR` for this (`tests/support`'s
//! `fresh_path`); unit tests are given no such directory, and `std::env::temp_dir()` would leave
//! a file in `/tmp` for every test that failed or was killed, in every run of the suite. The
//! directory is found from the test binary's own path instead (`TARGET/PROFILE/deps/NAME`), so
//! that even a test killed before it could clean up leaves its files where `cargo clean` removes
//! them. It lives in `sweep/` because only the modules outside the simulation may name the
//! environment (`tests/layering.rs`).

use std::path::{Path, PathBuf};

/// A directory of one test's own, made empty by `new` and removed with everything in it when
/// dropped: at the end of the test, and while a failed assertion unwinds.
pub(crate) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// `TARGET/PROFILE/unit-scratch/NAME-PID`, created empty. Tests of one binary run in
    /// parallel, so each names its own; the process id keeps apart two runs of the same binary.
    pub(crate) fn new(name: &str) -> Self {
        let test_binary = std::env::current_exe().expect("the test binary's path");
        // The binary is `TARGET/PROFILE/deps/NAME-HASH`: two levels up is the profile's directory.
        let profile_dir = test_binary
            .ancestors()
            .nth(2)
            .expect("a test binary sits in TARGET/PROFILE/deps");
        let path = profile_dir
            .join("unit-scratch")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("{}: cannot create: {e}", path.display()));
        ScratchDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Nothing to report if it is already gone: a test may have removed it itself.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_dir_is_removed_when_its_test_passes() {
        let dir = ScratchDir::new("scratch-passes");
        let nested = dir.path().join("a").join("b.txt");
        std::fs::create_dir_all(nested.parent().unwrap()).unwrap();
        std::fs::write(&nested, "x").unwrap();
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "{} is left behind", path.display());
    }

    #[test]
    fn a_scratch_dir_is_removed_when_its_test_fails() {
        let mut kept = None;
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let dir = ScratchDir::new("scratch-fails");
            std::fs::write(dir.path().join("artifact"), [0u8; 4]).unwrap();
            kept = Some(dir.path().to_path_buf());
            panic!("a deliberate failure, to show the directory goes with it");
        }));
        assert!(failed.is_err());
        let path = kept.expect("the closure ran up to its panic");
        assert!(!path.exists(), "{} is left behind", path.display());
    }
}
