# Entry points a person types. `make sweep` is the main job; `make test` runs every test.
CARGO ?= cargo
SIM := target/release/sim

.PHONY: build test run bless list bench fuzz fuzz-smoke fuzz-cmin fuzz-bench

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

## Benchmarks, each ratio measured side by side with its peer; writes target/bench/results.json.
bench:
	$(CARGO) bench -p sim --bench bench

## Fuzzing (see README, "Fuzzing"). cargo-fuzz builds on stable with FUZZ_FLAGS="--sanitizer none"
## (the default here); on nightly, FUZZ_FLAGS= gives AddressSanitizer. Targets: `sim list --fuzz-targets`.
TARGET ?= allocator
TIME ?= 60
FUZZ_FLAGS ?= --sanitizer none
export FUZZ_FLAGS

## Fuzz one target for TIME seconds; new inputs join corpus/TARGET/, crashes go to fuzz/artifacts/TARGET/.
fuzz:
	fuzz/fuzz.sh run $(TARGET) $(TIME)

## Every target for a few seconds on a scratch copy of its corpus; the canary must fail.
fuzz-smoke:
	fuzz/fuzz.sh smoke $(or $(SMOKE_TIME),5)

## Minimise every committed seed corpus (corpus/<target>/) with cargo fuzz cmin.
fuzz-cmin:
	fuzz/fuzz.sh cmin

## exec/s per subject target and seconds-to-find per seeded defect; merges into target/bench/results.json.
fuzz-bench:
	python3 fuzz/bench.py
