//! Fuzz target `dlmalloc`: see `sim::fuzzing::TARGETS`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: sim_fuzz::init("dlmalloc"), |bytes: &[u8]| sim_fuzz::run(bytes));
