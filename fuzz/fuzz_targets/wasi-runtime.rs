//! Fuzz target `wasi-runtime`: see `sim::fuzzing::TARGETS`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: sim_fuzz::init("wasi-runtime"), |bytes: &[u8]| sim_fuzz::run(bytes));
