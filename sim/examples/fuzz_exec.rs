//! Times the body of a fuzz target without libFuzzer: `cargo run --release --example fuzz_exec --
//! TARGET|SUBJECT [INPUTS] [MAX_LEN]`. Inputs are pseudo-random byte strings of up to MAX_LEN bytes (the
//! same length limit `make fuzz-bench` gives libFuzzer), so the figure is the harness's own cost
//! per input, an upper bound on libFuzzer's exec/s. Handy under `perf record`.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("canary", String::as_str);
    let inputs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let len_max: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(256);
    // A target from sim::fuzzing::TARGETS, or any subject's name (defects off).
    let target = sim::fuzzing::target(name);
    sim::fuzzing::install_panic_hook();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: cheap, and this is a timing tool, not part of any simulation.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut bytes = Vec::with_capacity(len_max as usize);
    let mut failures = 0u64;
    let start = Instant::now();
    for _ in 0..inputs {
        bytes.clear();
        let len = next() % (len_max + 1);
        for _ in 0..len {
            bytes.push(next() as u8);
        }
        let result = match target {
            Some(target) => target.run(&bytes, &[]),
            None => sim::fuzzing::run_target(name, &bytes),
        };
        if result.is_err() {
            failures += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{name}: {inputs} inputs in {seconds:.3} s: {:.0} exec/s, {:.2} µs/exec, {failures} failing",
        inputs as f64 / seconds,
        seconds * 1e6 / inputs as f64
    );
}
