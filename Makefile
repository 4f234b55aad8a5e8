# Entry points a person types. `make sweep` is the main job; `make test` runs every test.
CARGO ?= cargo
# Where `cargo build --release` puts the binary: under CARGO_TARGET_DIR when it is set (cargo
# builds there, so `target/release/sim` would be missing or stale), else under `target/`.
SIM := $(or $(CARGO_TARGET_DIR),target)/release/sim

.PHONY: build test run bless list bench sweep zoo detect sweep-scaling fuzz fuzz-smoke fuzz-cmin fuzz-stability fuzz-bench

build:
	$(CARGO) build --release --bin sim

## Every test: unit, integration, property (bolero under cargo test), UI and replays.
test:
	$(CARGO) test --workspace --all-targets
	$(CARGO) build --manifest-path fuzz/Cargo.toml --bins

## Run every bundled scenario and print a summary table (zoo files enable their defects, so they fail on purpose).
run: build
	-$(SIM) run scenarios

## List subjects, ops, defects and caches.
list: build
	$(SIM) list

## Accept new report output: rewrites sim/tests/ui/**/*.stdout from the current `sim`; review with `git diff`.
bless:
	SIM_BLESS=1 $(CARGO) test -p sim --test ui

## Benchmarks, each ratio measured side by side with its peer; writes target/bench/results.json
## (the OS, scheduler and fd figures, then sweep_scaling_2_jobs). `make fuzz-bench` adds the fuzzing
## figures (it needs cargo-fuzz).
bench: build
	$(CARGO) bench -p sim --bench bench
	$(SIM) sweep-scaling --subject all --seeds $(SCALING_SEEDS)

## Fuzzing (see README, "Fuzzing"). cargo-fuzz builds on stable with FUZZ_SANITIZER=none (the
## default here); FUZZ_TOOLCHAIN=nightly FUZZ_SANITIZER=address gives AddressSanitizer. Targets:
## `sim list --fuzz-targets`.
TARGET ?= allocator
TIME ?= 60
FUZZ_SANITIZER ?= none
FUZZ_FLAGS ?= -O --no-trace-compares
FUZZ_TOOLCHAIN ?=
export FUZZ_SANITIZER FUZZ_FLAGS FUZZ_TOOLCHAIN

## Fuzz one target for TIME seconds; new inputs join corpus/TARGET/, crashes go to fuzz/artifacts/TARGET/.
fuzz:
	fuzz/fuzz.sh run $(TARGET) $(TIME)

## Every target for a few seconds on a scratch copy of its corpus; the canary must fail.
fuzz-smoke:
	fuzz/fuzz.sh smoke $(or $(SMOKE_TIME),5)

## Minimise every committed seed corpus (corpus/<target>/) with cargo fuzz cmin.
fuzz-cmin:
	fuzz/fuzz.sh cmin

## Each committed corpus input covers the same features alone in a fresh process as within its
## corpus; exit 1 if any does not. `python3 fuzz/stability.py --counters TARGET` for hit counts too.
fuzz-stability:
	python3 fuzz/stability.py

## exec/s per subject target and seconds-to-find per seeded defect; merges into target/bench/results.json.
fuzz-bench:
	python3 fuzz/bench.py

## The main job: every bundled scenario outside scenarios/zoo/ (SWEEP_FILE_SEEDS each) and the
## generated scenarios of every subject with defects off (SWEEP_SEEDS each), on SWEEP_JOBS workers:
## about 15 s on 2 cores (`time make sweep`, after the build). Ends with the summary table and the
## report's path; exits 0 when nothing was found. Starts fresh each time; `make sweep RESUME=1`
## continues an interrupted one instead (results in $(SWEEP_OUT)/results.jsonl are kept as each
## run finishes). A resume is refused (exit 2) if $(SWEEP_OUT) was swept with another
## --recheck-percent or --shrink-runs-max than the defaults this target gives (README, Sweeps).
SWEEP_SEEDS ?= 0..24000
SWEEP_FILE_SEEDS ?= 0..100
SWEEP_JOBS ?= 2
SWEEP_OUT ?= target/sweep/main
# Subjects to leave out of the main job (none by default).
SWEEP_SKIP ?=
SWEEP_FILES = $(shell find scenarios -name '*.toml' -not -path 'scenarios/zoo/*' 2>/dev/null | sort)
SWEEP_SOURCES = $(SWEEP_FILES) --subject all $(addprefix --skip-subject ,$(SWEEP_SKIP))

sweep: build
	$(if $(RESUME),,rm -rf $(SWEEP_OUT))
	$(SIM) sweep $(SWEEP_SOURCES) --seeds $(SWEEP_SEEDS) --file-seeds $(SWEEP_FILE_SEEDS) --jobs $(SWEEP_JOBS) --out $(SWEEP_OUT)

## Each zoo scenario with its defect on and with every defect off: a found / clean table.
zoo: build
	$(SIM) zoo scenarios/zoo

## For each defect of each subject (whatever the registry lists), a sweep of 1000 generated seeds
## with that defect on, and one with defects off; writes target/bench/detection.json.
DETECT_SEEDS ?= 0..1000
detect: build
	rm -rf target/sweep/detect
	$(SIM) detect --seeds $(DETECT_SEEDS) --jobs $(SWEEP_JOBS) --out target/bench/detection.json

## sweep_scaling_2_jobs: runs per second with --jobs 2 over --jobs 1, on the generated scenarios of
## every subject; merged into target/bench/results.json.
# 6,000 seeds per subject (36,000 runs, under a minute with the machine check): with fewer, the start of the pool (fork
# servers, threads) and its last items weigh on a run of a few seconds.
SCALING_SEEDS ?= 0..6000
sweep-scaling: build
	$(SIM) sweep-scaling --subject all --seeds $(SCALING_SEEDS)
