#!/usr/bin/env python3
"""`make fuzz-bench`: how fast the fuzz targets run and how fast they find the seeded defects.

Writes into target/bench/results.json (merging with the keys already there, DESIGN.md format):

- fuzz_execs_per_s_<target>: libFuzzer's own exec/s, from its last status line, for each subject
  target run for EXEC_SECONDS from a scratch copy of its seed corpus, with -max_len=256 and
  every defect off.
- fuzz_seconds_to_find_<defect>: wall-clock seconds from start until the fuzzer writes an
  artifact that shows the defect, median of RUNS runs from an empty corpus with
  SIM_FUZZ_DEFECTS=<defect> and libFuzzer seeds 1..RUNS. An artifact counts only if
  `sim import-crash --classify` says it fails with the defect and passes without it: a crash of
  another, open finding does not. Runs use -fork=1 -ignore_crashes=1 so that such crashes do
  not stop the search. A defect not found within FIND_SECONDS_MAX counts as that limit and is
  marked not found.

Both are measured with the build `fuzz/fuzz.sh` uses (FUZZ_TOOLCHAIN, default none: cargo's
own; FUZZ_SANITIZER, default `none`; and FUZZ_FLAGS, default `-O --no-trace-compares`).
Environment: EXEC_SECONDS (default 30), FIND_SECONDS_MAX (120), RUNS (3), ONLY (a target or
defect name, to measure just that).
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The shared module beside this file, without leaving a __pycache__ in the tree.
sys.dont_write_bytecode = True
from fuzz_build import CARGO, FUZZ_FLAGS, ROOT, build_sim, fuzz_binary_dir  # noqa: E402

EXEC_SECONDS = int(os.environ.get("EXEC_SECONDS", "30"))
FIND_SECONDS_MAX = int(os.environ.get("FIND_SECONDS_MAX", "120"))
RUNS = int(os.environ.get("RUNS", "3"))
ONLY = os.environ.get("ONLY")
MAX_LEN = 256
RESULTS = ROOT / "target" / "bench" / "results.json"


def run(command, **kwargs):
    return subprocess.run(command, cwd=ROOT, check=True, **kwargs)


def targets(sim):
    out = run([str(sim), "list", "--fuzz-targets"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name, expect, subject, defects, _summary = line.split("\t", 4)
        yield name, expect, subject, [] if defects == "-" else defects.split(",")


def binary(name):
    return fuzz_binary_dir() / name


def last_execs_per_s(log):
    rates = re.findall(r"exec/s: (\d+)", log)
    return int(rates[-1]) if rates else None


def measure_execs(name):
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        shutil.copytree(ROOT / "corpus" / name, corpus)
        result = subprocess.run(
            [
                str(binary(name)),
                str(corpus),
                f"-max_len={MAX_LEN}",
                f"-max_total_time={EXEC_SECONDS}",
                f"-artifact_prefix={scratch}/",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "SIM_FUZZ_DEFECTS": ""},
        )
    log = result.stderr
    rate = last_execs_per_s(log)
    crashed = result.returncode != 0
    return rate, crashed


def classify(sim, name, defect, artifact):
    result = subprocess.run(
        [str(sim), "import-crash", name, str(artifact), "--defect", defect, "--classify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    # --classify exits 0 (pass) or 1 (a finding). Anything else is sim failing to say (exit 2
    # or 3): stop, rather than count the defect as not found.
    if result.returncode not in (0, 1):
        sys.exit(
            f"fuzz-bench: `sim import-crash {name} {artifact} --defect {defect} --classify` "
            f"exited {result.returncode}:\n{result.stderr}"
        )
    return result.stdout.strip()


def seconds_to_find(sim, name, defect, seed):
    """Seconds until an artifact that is this defect's appears; None if not within the limit."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        corpus, artifacts = scratch / "corpus", scratch / "artifacts"
        corpus.mkdir()
        artifacts.mkdir()
        start = time.monotonic()
        fuzzer = subprocess.Popen(
            [
                str(binary(name)),
                str(corpus),
                f"-max_len={MAX_LEN}",
                f"-max_total_time={FIND_SECONDS_MAX}",
                f"-seed={seed}",
                "-fork=1",
                "-ignore_crashes=1",
                f"-artifact_prefix={artifacts}/",
            ],
            cwd=scratch,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "SIM_FUZZ_DEFECTS": defect},
        )
        seen = set()
        found = None
        try:
            while found is None and time.monotonic() - start < FIND_SECONDS_MAX:
                for artifact in sorted(artifacts.glob("crash-*")):
                    if artifact in seen:
                        continue
                    seen.add(artifact)
                    verdict = classify(sim, name, defect, artifact)
                    if verdict.startswith("defect "):
                        found = (time.monotonic() - start, verdict.split(" ", 1)[1], artifact.read_bytes())
                        break
                if fuzzer.poll() is not None and found is None:
                    # Finished (time limit) with nothing new to look at.
                    if all(a in seen for a in artifacts.glob("crash-*")):
                        break
                time.sleep(0.2)
        finally:
            fuzzer.kill()
            fuzzer.wait()
        return found


def metric(value, unit):
    return {"value": value, "unit": unit, "peer": None, "peer_value": None, "ratio": None}


def main():
    sim = build_sim()
    run([*CARGO, "fuzz", "build", *FUZZ_FLAGS])
    fresh = {}
    found_dir = ROOT / "target" / "fuzz-bench" / "found"
    found_dir.mkdir(parents=True, exist_ok=True)
    for name, expect, subject, defects in targets(sim):
        if subject == "-" or expect == "must-fail":
            continue
        if not ONLY or ONLY == name:
            rate, crashed = measure_execs(name)
            note = " (stopped at a finding with defects off)" if crashed else ""
            print(f"{name}: {rate} exec/s{note}", flush=True)
            if rate is not None:
                fresh[f"fuzz_execs_per_s_{name}"] = metric(rate, "exec/s")
        for defect in defects:
            if ONLY and ONLY not in (name, defect):
                continue
            times = []
            for seed in range(1, RUNS + 1):
                found = seconds_to_find(sim, name, defect, seed)
                if found is None:
                    times.append(float(FIND_SECONDS_MAX))
                    print(f"  {defect} seed {seed}: not found in {FIND_SECONDS_MAX} s", flush=True)
                else:
                    seconds, signature, data = found
                    times.append(seconds)
                    (found_dir / f"{name}-{defect}-seed{seed}").write_bytes(data)
                    print(f"  {defect} seed {seed}: {seconds:.1f} s ({signature})", flush=True)
            median = statistics.median(times)
            entry = metric(round(median, 2), "s")
            entry["runs"] = [round(t, 2) for t in times]
            entry["found_all"] = all(t < FIND_SECONDS_MAX for t in times)
            fresh[f"fuzz_seconds_to_find_{defect}"] = entry
            print(f"  {defect}: median {median:.1f} s", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        results = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        results = {}
    results.update(fresh)
    RESULTS.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}; artifacts that found each defect: {found_dir.relative_to(ROOT)}/")


if __name__ == "__main__":
    sys.exit(main())
