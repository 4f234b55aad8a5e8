//! A subject of one's own whose constructor panics when a limit is low: the parser, which builds
//! the subject to check a file that lowers a limit (`scenario/construction.rs`), refuses the
//! file at the limit with the panic's message, and the panic never reaches the panic hook that a
//! libFuzzer target installs (`fuzzing::install_panic_hook` over libFuzzer's, which aborts on
//! any panic it sees). This file is a test binary of its own: it replaces the process's panic
//! hook.

use std::sync::Mutex;

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::os::{LockKind, Os, Tid};
use sim::scenario::parse::{Diagnostic, parse};
use sim::subject::{Config, OpDoc, Step, Subject, SubjectInfo};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum PoolOp {
    Touch,
}

/// A pool that opens 8 fds and starts 4 workers in its constructor, and checks its limits for
/// them first with an `assert!`, as a crate's own subject may; and that `expect`s its lock.
struct Pool;

impl Subject for Pool {
    type Op = PoolOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "pool",
            summary: "panics in its constructor when its limits are low",
            ops: vec![OpDoc {
                name: "touch",
                summary: "does nothing",
            }],
            ..Default::default()
        }
    }

    fn new(os: &mut Os, _config: &Config) -> Self {
        let limits = os.limits();
        assert!(
            limits.fds_max >= 8,
            "the pool needs 8 fds, has {}",
            limits.fds_max
        );
        assert!(limits.threads_max >= 4, "the pool needs 4 workers");
        os.lock_create(LockKind::Mutex, "pool_lock")
            .expect("the pool's lock");
        Pool
    }

    fn op_name(_op: &PoolOp) -> &'static str {
        "touch"
    }

    fn apply(&mut self, _os: &mut Os, _tid: Tid, _op: &PoolOp) -> Step<Self> {
        Step::Done
    }
}

/// Panics the hook under `fuzzing::install_panic_hook` saw: libFuzzer's would have aborted.
static SEEN_BY_THE_HOOK: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn file(limits: &str) -> String {
    format!(
        "name = \"p\"\nsubject = \"pool\"\n\n[limits]\n{limits}\n\n[[lifecycle]]\nname = \"l\"\nops = [{{ op = \"touch\" }}]\n"
    )
}

fn parsed(limits: &str) -> Result<(), Diagnostic> {
    parse::<Pool>("pool.toml", &file(limits)).map(drop)
}

fn seen() -> Vec<String> {
    std::mem::take(&mut *SEEN_BY_THE_HOOK.lock().unwrap())
}

#[test]
fn a_constructor_that_panics_under_a_low_limit_is_refused_at_the_limit_and_never_aborts() {
    // Printed as well, so that a failing assertion of this test still says what failed.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{info}");
        SEEN_BY_THE_HOOK.lock().unwrap().push(info.to_string());
    }));
    sim::fuzzing::install_panic_hook();
    // The hook sees a panic outside a subject's code, as libFuzzer's would.
    let outside_line = line!() + 1;
    assert!(std::panic::catch_unwind(|| panic!("outside")).is_err());
    assert_eq!(seen().len(), 1);
    // And sim's hook recorded where it was raised, as it does for a subject's panic in a run
    // (the `panic` finding's `panicked at` line).
    let location = sim::subject::take_panic_location().expect("a recorded location");
    assert_eq!(
        (location.file.as_str(), location.line),
        (file!(), outside_line)
    );
    assert_eq!(sim::subject::take_panic_location(), None);

    // One low limit: refused at its value, with the message and the least that fits.
    let refused = parsed("fds_max = 2").unwrap_err();
    assert_eq!(refused.location(), "pool.toml:5:11", "{refused}");
    assert!(
        refused.message.contains("`fds_max` is 2")
            && refused
                .message
                .contains("panicked: the pool needs 8 fds, has 2")
            // Where the constructor panicked, as a panic finding says it.
            && refused.message.contains(&format!(" (at {}:", file!()))
            && refused.message.contains("a panic finding")
            && refused.message.contains("between 8 and"),
        "{refused}"
    );
    assert_eq!(parsed("fds_max = 8"), Ok(()));
    // Two, neither of which alone stops the panic: refused at `[limits]`.
    let refused = parsed("fds_max = 2\nthreads_max = 1").unwrap_err();
    assert_eq!(refused.location(), "pool.toml:4:1", "{refused}");
    assert!(
        refused
            .message
            .contains("panicked, and with the default limits it does not")
            && refused.message.contains("the pool needs"),
        "{refused}"
    );
    // A limit the constructor exhausts before its `expect` panics: the budget is the refusal.
    let refused = parsed("objects_max = 0").unwrap_err();
    assert_eq!(refused.location(), "pool.toml:5:15", "{refused}");
    assert!(
        refused
            .message
            .contains("needs more: every run would end there with a budget finding"),
        "{refused}"
    );
    assert!(
        seen().is_empty(),
        "the parse's panics reached the hook: {:?}",
        seen()
    );
    // And a file that may inject faults is not checked (a fault may leave the constructor
    // taking less), so nothing is built.
    let with_faults = file("fds_max = 2") + "\n[faults]\nalloc = 0.5\n";
    assert!(parse::<Pool>("pool.toml", &with_faults).is_ok());
    assert!(seen().is_empty());
}
