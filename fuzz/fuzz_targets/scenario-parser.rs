//! Fuzz target `scenario-parser`: see `sim::fuzzing::TARGETS`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: sim_fuzz::init("scenario-parser"), |bytes: &[u8]| sim_fuzz::run(bytes));
