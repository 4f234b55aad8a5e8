//! Fuzz target `reloadable-lib`: see `sim::fuzzing::TARGETS`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: sim_fuzz::init("reloadable-lib"), |bytes: &[u8]| sim_fuzz::run(bytes));
