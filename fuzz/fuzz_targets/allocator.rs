//! Fuzz target `allocator`: see `sim::fuzzing::TARGETS`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: sim_fuzz::init("allocator"), |bytes: &[u8]| sim_fuzz::run(bytes));
