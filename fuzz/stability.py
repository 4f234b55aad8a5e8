#!/usr/bin/env python3
"""`make fuzz-stability`: does each committed corpus input cover the same code alone in a fresh
process as it does within a run over its whole corpus?

libFuzzer keeps an input for the features (edges, and the growth counters) it covers, and
`make fuzz-cmin` keeps the fewest inputs that cover what the corpus covers: both take those
features to depend on the input alone, not on what ran before it in the process. This checks that,
per target, with libFuzzer's own bookkeeping: a set-cover merge (`-set_cover_merge=1
-merge_control_file=FILE`, as `make fuzz-cmin` runs it) runs its inputs in one child process and
writes every input's features to the control file (`STARTED i size`, then `FT i f1 f2 ...` with
all of the input's features, then `COV i ...`). One merge runs the whole corpus/TARGET/; one merge
per input runs that input alone. An input whose two `FT` sets differ is reported; an input with no
`FT` line crashed. Merges write only into a scratch directory: the corpus is left as it is.

Usage: fuzz/stability.py [--counters] [--corpus DIR] [TARGET...]
  TARGET        the targets to check (default: every target `make fuzz-cmin` minimises, that is
                all but the must-fail canary)
  --counters    compare libFuzzer's hit-count buckets too (`-use_counters=1`, what the fuzzing
                loop uses), not only which edges ran (`-use_counters=0`, what cmin uses)
  --corpus DIR  check DIR/TARGET/ instead of the committed corpus/TARGET/

Builds the targets as fuzz/fuzz.sh does (FUZZ_TOOLCHAIN, FUZZ_SANITIZER default `none`, FUZZ_FLAGS
default `-O --no-trace-compares`); MAX_LEN (default 256) is cmin's -max_len. Every defect is off,
as in cmin. Prints one line per target and exits 1 if any input covered other features alone than
in its corpus (or crashed), 0 if none did.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The shared module beside this file, without leaving a __pycache__ in the tree.
sys.dont_write_bytecode = True
from fuzz_build import CARGO, FUZZ_FLAGS, ROOT, build_sim, fuzz_binary_dir  # noqa: E402

MAX_LEN = int(os.environ.get("MAX_LEN", "256"))
# Inputs named per target when some differ.
DIFFERING_SHOWN_MAX = 5


def targets():
    """(name, expect) per fuzz target, from the one registry (`sim list --fuzz-targets`)."""
    out = subprocess.run(
        [str(build_sim()), "list", "--fuzz-targets"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        name, expect, _rest = line.split("\t", 2)
        yield name, expect


def features_by_input(binary, inputs_dir, scratch, use_counters):
    """Runs a set-cover merge of `inputs_dir` in one child process; returns {file name: frozenset
    of features}, with None for an input that has no FT line (it crashed)."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    control = out / "control.txt"
    merged = out / "merged"
    merged.mkdir()
    result = subprocess.run(
        [str(binary), "-set_cover_merge=1", f"-use_counters={use_counters}",
         f"-max_len={MAX_LEN}", f"-merge_control_file={control}", str(merged), str(inputs_dir)],
        cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "SIM_FUZZ_DEFECTS"},
    )
    if result.returncode != 0 or not control.exists():
        sys.exit(f"{binary.name}: the merge of {inputs_dir} failed "
                 f"(exit {result.returncode}):\n{result.stderr[-2000:]}")
    lines = control.read_text().splitlines()
    count = int(lines[0])
    names = [Path(line).name for line in lines[2:2 + count]]
    features = dict.fromkeys(names)
    for line in lines[2 + count:]:
        marker, index, *rest = line.split()
        if marker == "FT":
            features[names[int(index)]] = frozenset(int(f) for f in rest)
    shutil.rmtree(out)
    return features


def check(corpus, binary, scratch, use_counters):
    """Returns (inputs, [(file, how it differs)] for each input of `corpus` that differs)."""
    together = features_by_input(binary, corpus, scratch, use_counters)
    differing = []
    for file in sorted(together):
        alone_dir = Path(tempfile.mkdtemp(dir=scratch))
        shutil.copy(corpus / file, alone_dir / file)
        alone = features_by_input(binary, alone_dir, scratch, use_counters)[file]
        shutil.rmtree(alone_dir)
        within = together[file]
        if alone is None or within is None:
            where = "alone" if alone is None else "in the corpus"
            differing.append((file, f"crashed {where}"))
        elif alone != within:
            differing.append((file, f"{len(alone - within)} features only alone, "
                                    f"{len(within - alone)} only in the corpus"))
    return len(together), differing


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    parser.add_argument("--counters", action="store_true")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus", metavar="DIR")
    args = parser.parse_args()
    use_counters = int(args.counters)
    corpora = args.corpus.resolve()
    known = list(targets())
    unknown = [arg for arg in args.targets if arg not in {name for name, _ in known}]
    if unknown:
        print(f"unknown fuzz target `{unknown[0]}`; known: {' '.join(n for n, _ in known)}",
              file=sys.stderr)
        return 2
    chosen = [name for name, expect in known
              if (name in args.targets if args.targets else expect != "must-fail")
              and (corpora / name).is_dir() and any((corpora / name).iterdir())]
    # `cargo fuzz build` builds one named target, or every target.
    one = chosen if len(chosen) == 1 else []
    subprocess.run([*CARGO, "fuzz", "build", *FUZZ_FLAGS, *one], cwd=ROOT, check=True)
    binaries = fuzz_binary_dir()
    print(f"each corpus input alone in a fresh process against within its corpus "
          f"(-set_cover_merge=1 -use_counters={use_counters} -max_len={MAX_LEN}):", flush=True)
    total_inputs = total_differing = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-stability-") as scratch:
        for name in chosen:
            target_started = time.monotonic()
            inputs, differing = check(corpora / name, binaries / name, scratch, use_counters)
            total_inputs += inputs
            total_differing += len(differing)
            print(f"{name:16} {len(differing):4} of {inputs:4} inputs cover other features alone "
                  f"({time.monotonic() - target_started:.0f} s)", flush=True)
            for file, how in differing[:DIFFERING_SHOWN_MAX]:
                print(f"    {os.path.relpath(corpora / name / file)}: {how}")
            if len(differing) > DIFFERING_SHOWN_MAX:
                print(f"    ... and {len(differing) - DIFFERING_SHOWN_MAX} more")
    print(f"total: {total_differing} of {total_inputs} inputs differ "
          f"({time.monotonic() - started:.0f} s)")
    return 1 if total_differing else 0


if __name__ == "__main__":
    sys.exit(main())
