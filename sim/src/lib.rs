//! `sim`: deterministic simulation testing for allocators and runtimes.
//!
//! Layering (arrows point down; a module uses only what is above it in this list, and the
//! `layering` test keeps it so):
//!
//! ```text
//! seed, rng, trace, findings, faults   plain data and seeded randomness
//! sched                                the oracle for every nondeterministic choice
//! os                                   the virtual OS, one file per resource family
//! ledger                               baselines, leak and growth checks over the OS's accounting
//! subject, subjects                    the Subject trait and the built-in subjects
//! scenario                             TOML scripts: parse, validate, generate, print
//! runner                               runs a scenario against a subject, asks the ledger
//! report, shrink, registry, sweep,     what people read and the tools around the runner
//! fuzzing                              (fuzzing: the body of every cargo-fuzz target)
//! cli                                  the `sim` binary's commands
//! ```

pub mod cli;
pub mod faults;
pub mod findings;
pub mod fuzzing;
pub mod ledger;
pub mod os;
pub mod registry;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod sched;
pub mod seed;
pub mod shrink;
pub mod subject;
pub mod subjects;
pub mod sweep;
pub mod trace;
