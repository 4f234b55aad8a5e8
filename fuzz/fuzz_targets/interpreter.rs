//! Fuzz target `interpreter`: see `sim::fuzzing::TARGETS`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: sim_fuzz::init("interpreter"), |bytes: &[u8]| sim_fuzz::run(bytes));
