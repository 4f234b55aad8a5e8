#!/usr/bin/env bash
# The fuzz entry points behind `make fuzz`, `make fuzz-smoke` and `make fuzz-cmin`.
#
#   fuzz/fuzz.sh run TARGET SECONDS   fuzz one target, growing corpus/TARGET/ (new inputs land there)
#   fuzz/fuzz.sh smoke [SECONDS]      every target for a few seconds on a scratch copy of its corpus;
#                                     fails unless every target passes and the canary fails
#   fuzz/fuzz.sh cmin [TARGET]        minimise corpus/TARGET/ (every target when none is given)
#
# Targets come from the one registry, `sim::fuzzing::TARGETS` (`sim list --fuzz-targets`).
# FUZZ_SANITIZER (default `none`, which builds on stable) and FUZZ_FLAGS (default
# `-O --no-trace-compares`) are passed to cargo fuzz. For AddressSanitizer:
# FUZZ_TOOLCHAIN=nightly FUZZ_SANITIZER=address (cargo +nightly fuzz ...). SIM_FUZZ_DEFECTS
# switches defects on (see README).
#
# Why those flags: without -O, cargo fuzz keeps debug assertions on; and comparison tracing
# instruments every comparison of the simulation's own hot loops (pages, ledger, scheduler), which
# took 60% of the time per input. The decoder draws ranges with `int_in_range`, not magic values,
# so edge coverage alone steers it; `make fuzz-bench` measures both speed and time to find.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SANITIZER=${FUZZ_SANITIZER:-none}
FUZZ_FLAGS="--sanitizer $FUZZ_SANITIZER ${FUZZ_FLAGS--O --no-trace-compares}"
FUZZ_TOOLCHAIN=${FUZZ_TOOLCHAIN:-}
cargo_fuzz() {
  if [[ -n $FUZZ_TOOLCHAIN ]]; then
    cargo "+$FUZZ_TOOLCHAIN" fuzz "$@"
  else
    cargo fuzz "$@"
  fi
}
MAX_LEN=${MAX_LEN:-256}
SCRATCH=target/fuzz-scratch

need_cargo_fuzz() {
  if ! cargo_fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
  fi
}

# name<TAB>must-pass|must-fail<TAB>subject<TAB>defects<TAB>summary, one per target.
targets() {
  cargo run --quiet --release --bin sim -- list --fuzz-targets
}

# The libFuzzer binary of TARGET, built with FUZZ_FLAGS.
build() {
  # shellcheck disable=SC2086
  cargo_fuzz build $FUZZ_FLAGS "$@" >&2
}

# Exits 2 unless every name in SIM_FUZZ_DEFECTS is a defect of TARGET, as LISTING (what
# `targets` printed) declares them. The target checks them too, at start, but cargo fuzz exits 1
# for that as for a finding: here a misspelt name is a usage error, as the README's exit codes
# (the "Exit codes" item of its list of commands) have it.
# A copy of `sim::fuzzing::parse_defects` and `FuzzTarget::check_defects`: change them together.
check_defects() {
  local target=$1 listing=$2 declared defect named listed
  declared=$(awk -F'\t' -v t="$target" '$1 == t { print $4 }' <<<"$listing")
  # `sim list --fuzz-targets` writes `-` for a target without defects.
  [[ $declared == - ]] && declared=
  IFS=',' read -ra named <<<"${SIM_FUZZ_DEFECTS:-}"
  for defect in "${named[@]}"; do
    # Trimmed as `sim::fuzzing::parse_defects` trims.
    defect=${defect#"${defect%%[![:space:]]*}"}
    defect=${defect%"${defect##*[![:space:]]}"}
    [[ -z $defect ]] && continue
    if [[ ,$declared, != *",$defect,"* ]]; then
      listed=${declared//,/, }
      echo "fuzz target \`$target\` has no defect \`$defect\` (from SIM_FUZZ_DEFECTS); its defects: ${listed:-none}" >&2
      exit 2
    fi
  done
}

run_one() {
  local target=$1 seconds=$2 listing known
  shift 2
  # Once: each `targets` is a cargo run of sim.
  listing=$(targets)
  # A misspelt target would otherwise leave an empty corpus/NAME/ and a cargo backtrace.
  known=$(cut -f1 <<<"$listing")
  if ! grep -qx -- "$target" <<<"$known"; then
    echo "unknown fuzz target \`$target\`; known: $(tr '\n' ' ' <<<"$known")" >&2
    exit 2
  fi
  check_defects "$target" "$listing"
  mkdir -p "corpus/$target"
  # shellcheck disable=SC2086
  cargo_fuzz run $FUZZ_FLAGS "$target" "corpus/$target" -- \
    -max_len="$MAX_LEN" -max_total_time="$seconds" "$@"
}

smoke() {
  local seconds=${1:-5} failed=0 name expect subject defects summary log
  # Smoke runs every target with its defects off (the canary has its own): defects named for a
  # `make fuzz` session would fail every target that does not know them.
  unset SIM_FUZZ_DEFECTS
  build
  mkdir -p "$SCRATCH"
  while IFS=$'\t' read -r name expect subject defects summary; do
    rm -rf "${SCRATCH:?}/$name" && mkdir -p "$SCRATCH/$name/corpus" "$SCRATCH/$name/artifacts"
    cp -r "corpus/$name/." "$SCRATCH/$name/corpus/" 2>/dev/null || true
    log="$SCRATCH/$name/log"
    set +e
    # shellcheck disable=SC2086
    cargo_fuzz run $FUZZ_FLAGS "$name" "$SCRATCH/$name/corpus" -- \
      -max_len="$MAX_LEN" -max_total_time="$seconds" \
      -artifact_prefix="$SCRATCH/$name/artifacts/" </dev/null >"$log" 2>&1
    local status=$?
    set -e
    local execs
    execs=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    if [[ $expect == must-fail ]]; then
      if [[ $status -ne 0 ]] && grep -q 'error\[' "$log"; then
        echo "ok    $name: failed as it must ($(grep -o 'signature `[^`]*`' "$log" | head -1 || true))"
      else
        echo "FAIL  $name: the canary did not fail within ${seconds}s: the harness cannot fail (log: $log)"
        failed=1
      fi
    elif [[ $status -eq 0 ]]; then
      echo "ok    $name: ${seconds}s, ${execs:-?} exec/s, no finding"
    else
      echo "FAIL  $name: exit $status; see $log and $SCRATCH/$name/artifacts/"
      grep -m1 -A12 'sim fuzz target' "$log" || tail -20 "$log"
      failed=1
    fi
  done < <(targets)
  return $failed
}

cmin() {
  local only=${1:-} name expect subject defects summary kept status
  # The committed corpora are inputs that pass with defects off.
  unset SIM_FUZZ_DEFECTS
  while IFS=$'\t' read -r name expect subject defects summary; do
    [[ -n $only && $name != "$only" ]] && continue
    [[ $expect == must-fail ]] && { echo "skip  $name: its inputs fail by design"; continue; }
    [[ -d corpus/$name ]] || continue
    # The parser's regressions (`sim import-crash scenario-parser`) stay whatever they cover:
    # out of the corpus while cmin runs, back after, also when it fails.
    kept="$SCRATCH/cmin-regressions/$name"
    # Files an interrupted pass left out go back first: they may be the only copies.
    if [[ -d $kept ]]; then
      find "$kept" -maxdepth 1 -name 'regression-*' -exec mv -t "corpus/$name" {} +
    fi
    mkdir -p "$kept"
    find "corpus/$name" -maxdepth 1 -name 'regression-*' -exec mv -t "$kept" {} +
    set +e
    # shellcheck disable=SC2086
    cargo_fuzz cmin $FUZZ_FLAGS "$name" "corpus/$name" -- -max_len="$MAX_LEN" -set_cover_merge=1 -use_counters=0 </dev/null
    status=$?
    set -e
    find "$kept" -maxdepth 1 -name 'regression-*' -exec mv -t "corpus/$name" {} +
    [[ $status -eq 0 ]] || exit "$status"
  done < <(targets)
}

need_cargo_fuzz
command=${1:-}
shift || true
case $command in
  run)
    [[ $# -ge 1 ]] || { echo "usage: fuzz/fuzz.sh run TARGET [SECONDS] [LIBFUZZER ARGS...]" >&2; exit 2; }
    target=$1 seconds=${2:-60}
    shift; shift || true
    run_one "$target" "$seconds" "$@"
    ;;
  smoke) smoke "$@" ;;
  cmin) cmin "$@" ;;
  *)
    echo "usage: fuzz/fuzz.sh run TARGET [SECONDS] | smoke [SECONDS] | cmin [TARGET]" >&2
    exit 2
    ;;
esac
