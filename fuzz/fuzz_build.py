"""What the fuzz scripts (`bench.py`, `stability.py`) share: the build `fuzz/fuzz.sh` makes, and
where cargo puts its binaries.

The build is cargo-fuzz's with FUZZ_TOOLCHAIN (default none: cargo's own toolchain),
FUZZ_SANITIZER (default `none`) and FUZZ_FLAGS (default `-O --no-trace-compares`), as `fuzz.sh`
calls it. Binaries are looked up in cargo's target directory as `cargo metadata` reports it, so
that CARGO_TARGET_DIR (or a `--target-dir` in FUZZ_FLAGS) is followed rather than a stale binary
under the default path run.
"""

import functools
import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `cargo +nightly` when FUZZ_TOOLCHAIN=nightly, as fuzz/fuzz.sh calls it.
CARGO = ["cargo", *([f"+{os.environ['FUZZ_TOOLCHAIN']}"] if os.environ.get("FUZZ_TOOLCHAIN") else [])]
FUZZ_FLAGS = [
    "--sanitizer",
    os.environ.get("FUZZ_SANITIZER") or "none",
    *os.environ.get("FUZZ_FLAGS", "-O --no-trace-compares").split(),
]


def target_directory(manifest):
    """cargo's target directory for the package of `manifest` (a path from the repository root)."""
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--manifest-path", manifest, "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout)
    return Path(metadata["target_directory"])


@functools.cache
def fuzz_binary_dir():
    """Where `cargo fuzz build` puts the target binaries: the fuzz package's target directory,
    the host triple, and the profile. Asked once: it runs cargo and rustc."""
    target_dir = target_directory("fuzz/Cargo.toml")
    if "--target-dir" in FUZZ_FLAGS:
        target_dir = ROOT / FUZZ_FLAGS[FUZZ_FLAGS.index("--target-dir") + 1]
    host = re.search(r"^host: (\S+)", subprocess.run(
        ["rustc", "-vV"], check=True, capture_output=True, text=True,
    ).stdout, re.M).group(1)
    profile = "debug" if {"--dev", "-D"} & set(FUZZ_FLAGS) else "release"
    return target_dir / host / profile


def build_sim():
    """Builds the release `sim` binary and returns its path."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "sim"], cwd=ROOT, check=True)
    return target_directory("Cargo.toml") / "release" / "sim"
