//! Times the body of a fuzz target without libFuzzer: `cargo run --release --example fuzz_exec --
//! TARGET|SUBJECT [INPUTS] [MAX_LEN|CORPUS_DIR]`. Inputs are pseudo-random byte strings of up to
//! MAX_LEN bytes (the same length limit `make fuzz-bench` gives libFuzzer), or the files of a
//! corpus directory taken in turn (name order), which is what a fuzzer spends its time on once its
//! corpus has grown. The figure is the harness's own cost per input, an upper bound on
//! libFuzzer's exec/s. Handy under `perf record`.
//!
//! After the timing it runs the same inputs once more, untimed, to print what they decode to
//! (ops, lifecycles, repetitions, ops executed): an instruction count of the whole tool (callgrind)
//! is therefore of two passes over the inputs.

use std::io::Write;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("canary", String::as_str);
    let inputs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let source = args.get(3).map_or("256", String::as_str);
    let inputs_made = match Inputs::from_arg(source) {
        Ok(inputs) => inputs,
        Err(message) => {
            eprintln!("fuzz_exec: {message}");
            std::process::exit(2);
        }
    };
    // A target from sim::fuzzing::TARGETS, or any subject's name (defects off).
    let target = sim::fuzzing::target(name);
    sim::fuzzing::install_panic_hook();
    let mut failures = 0u64;
    let mut timed = inputs_made.clone();
    let start = Instant::now();
    for _ in 0..inputs {
        let bytes = timed.next_input();
        let result = match target {
            Some(target) => target.run(bytes, &[]),
            None => sim::fuzzing::run_target(name, bytes),
        };
        if result.is_err() {
            failures += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    // Written, not printed: a reader that stops early (`| head -1`) ends the tool quietly.
    let _ = writeln!(
        std::io::stdout(),
        "{name}: {inputs} inputs in {seconds:.3} s: {:.0} exec/s, {:.2} µs/exec, {failures} failing",
        inputs as f64 / seconds,
        seconds * 1e6 / inputs as f64
    );
    let subject = target.map_or(Some(name), |t| t.subject());
    if let Some(entry) = subject.and_then(|subject| sim::fuzzing::registry().get(subject)) {
        print_shape(entry, inputs, inputs_made);
    }
}

/// Pseudo-random inputs of up to `len_max` bytes (the same sequence on every run), or the files
/// of a corpus in turn.
#[derive(Clone)]
struct Inputs {
    state: u64,
    len_max: u64,
    bytes: Vec<u8>,
    corpus: Vec<Vec<u8>>,
    taken: usize,
}

impl Inputs {
    /// A length limit, or a corpus directory.
    fn from_arg(arg: &str) -> Result<Inputs, String> {
        if let Ok(len_max) = arg.parse() {
            return Ok(Inputs::new(len_max, Vec::new()));
        }
        let entries = std::fs::read_dir(arg).map_err(|e| format!("{arg}: {e}"))?;
        let mut paths: Vec<_> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.is_file())
            .collect();
        paths.sort();
        let corpus = paths
            .iter()
            .map(|path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())))
            .collect::<Result<Vec<_>, _>>()?;
        if corpus.is_empty() {
            return Err(format!(
                "{arg}: no files (give a length limit or a corpus directory)"
            ));
        }
        Ok(Inputs::new(0, corpus))
    }

    fn new(len_max: u64, corpus: Vec<Vec<u8>>) -> Inputs {
        Inputs {
            state: 0x9e37_79b9_7f4a_7c15,
            len_max,
            bytes: Vec::with_capacity(len_max as usize),
            corpus,
            taken: 0,
        }
    }

    /// xorshift64*: cheap, and this is a timing tool, not part of any simulation.
    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn next_input(&mut self) -> &[u8] {
        if !self.corpus.is_empty() {
            let input = &self.corpus[self.taken];
            self.taken = (self.taken + 1) % self.corpus.len();
            return input;
        }
        self.bytes.clear();
        let len = self.next_u64() % (self.len_max + 1);
        for _ in 0..len {
            let byte = self.next_u64() as u8;
            self.bytes.push(byte);
        }
        &self.bytes
    }
}

/// What the same inputs decode to, averaged per input, with every defect off (as timed above,
/// except for a target that turns its own defects on, such as the canary).
fn print_shape(entry: &dyn sim::registry::DynSubject, inputs: u64, mut made: Inputs) {
    let (mut ops, mut lifecycles, mut repetitions, mut executed) = (0u64, 0u64, 0u64, 0u64);
    for _ in 0..inputs {
        let scenario = entry.from_bytes(made.next_input(), &sim::fuzzing::generate_options(&[]));
        let meta = scenario.meta();
        ops += meta.op_count as u64;
        lifecycles += meta.lifecycle_count as u64;
        let outcome = scenario.run_in_process(sim::runner::RunOptions {
            defects: Some(Vec::new()),
            record_schedule: false,
            ..sim::runner::RunOptions::default()
        });
        repetitions += outcome
            .lifecycle_repeats
            .iter()
            .map(|&r| u64::from(r))
            .sum::<u64>();
        executed += outcome.ops;
    }
    let per_input = |total: u64| total as f64 / inputs as f64;
    let _ = writeln!(
        std::io::stdout(),
        "per input: {:.1} ops in {:.2} lifecycles, {:.1} repetitions, {:.0} ops executed",
        per_input(ops),
        per_input(lifecycles),
        per_input(repetitions),
        per_input(executed)
    );
}
