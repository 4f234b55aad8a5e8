# Entry points a person types. `make sweep` is the main job; `make test` runs every test.
CARGO ?= cargo
SIM := target/release/sim

.PHONY: build test run bless list bench

build:
	$(CARGO) build --release --bin sim

## Every test: unit, integration, property (bolero under cargo test), UI and replays.
test:
	$(CARGO) test --workspace --all-targets

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
