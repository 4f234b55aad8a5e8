//! Whether a subject's constructor fits a scenario's `[limits]`, checked when the file is parsed.
//!
//! A subject's `new` runs before the first op, as a real process's static constructors run before
//! `main`, and it may take what the limits bound: the counter's process-wide mutex (an object),
//! the interpreter's machine memory (a reservation and its committed pages), the WASI runtime's
//! stdio (four fds open at once while it opens them), the reloadable library's preloaded module.
//! A limit below that ends every run in the constructor with a budget finding that no op of the
//! file caused. A count limit of 0 is otherwise legitimate (`os::LIMIT_RANGES`): it says the
//! subject never takes that resource, and a run in which it does has a budget finding naming the
//! op. So the ranges stay the same for every subject, and this check refuses, per subject, what its
//! constructor exhausts.
//!
//! The subject is built once on a scratch OS with the file's limits, platform, defects and
//! `[config]`, and no faults; a budget finding its constructor raised is the refusal, with the
//! least value that fits (found the same way). A constructor of one's own may instead panic when
//! a limit is low (one that reads `Os::limits`, say): that is a refusal too, with the panic's
//! message, where the constructor does not panic with the default limits. The panic is caught and
//! kept from the panic hook, as the runner keeps a subject's (libFuzzer's hook aborts on any
//! panic it sees, and a parse must never end the process: the `scenario-parser` target). Only a file that lowers a limit below its default
//! is checked: every constructor fits the defaults, which generated scenarios use (the unit tests
//! below build every built-in subject so). Not checked:
//!
//! - a host-backed subject, whose constructor takes the host's memory, which a parse must not
//!   (dlmalloc's takes no limited resource: it maps the host arena, which no limit bounds);
//! - a file whose `[faults]` may fire: a fault in the constructor may leave it taking less, as a
//!   failed spawn leaves fewer threads out in the parser's `threads_max` check.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::faults::FaultPlan;
use crate::findings::FindingKind;
use crate::os::{LIMIT_RANGES, LimitRange, Limits, Os, PlatformModel};
use crate::sched::{Scheduler, StrategyChoice};
use crate::subject::{
    Config, SimulationGuard, Subject, info_of, panic_message, take_panic_location,
};

/// A `[limits]` field the subject's constructor does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LimitShort {
    pub range: LimitRange,
    /// The file's value.
    pub value: u64,
    /// The least value, with the file's other limits, that the constructor fits (none when even
    /// the ceiling does not: then another limit of the file is what it lacks first).
    pub least: Option<u64>,
}

/// Why every run of a file would end in the subject's constructor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Shortfall {
    /// A limit the constructor exhausts: its budget finding ends every run.
    Exhausted(LimitShort),
    /// The constructor panicked without exhausting a limit, with the file's limits and not with
    /// the defaults: its `panic` finding ends every run. `limit` is the lowered limit whose
    /// default alone, with the file's other limits, stops the panic, where one does.
    Panicked {
        message: String,
        limit: Option<LimitShort>,
    },
}

/// What building the subject once on a scratch OS came to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Built {
    Fits,
    /// A budget finding of the constructor named this `[limits]` field (whether or not the
    /// constructor panicked after it, as one that `expect`s what the OS refused does).
    Exhausted(&'static str),
    /// The constructor panicked, with this message, and exhausted no limit.
    Panicked(String),
}

/// Why every run of a file with these limits would end in `S`'s constructor, if it would and the
/// file is one this check applies to (see the module's header).
pub(crate) fn shortfall<S: Subject>(
    limits: &Limits,
    platform: &PlatformModel,
    config: &Config,
    faults_may_fire: bool,
) -> Option<Shortfall> {
    let defaults = Limits::default().fields();
    let lowered = |index: usize| limits.fields()[index].1 < defaults[index].1;
    if !(0..defaults.len()).any(lowered) || faults_may_fire || info_of::<S>().host_backed {
        return None;
    }
    let build_with = |index: usize, value: u64| {
        let mut changed = limits.clone();
        set_field(&mut changed, index, value);
        build::<S>(&changed, platform, config)
    };
    // The least value of field `index`, above the file's, at which `fits` says the constructor
    // fits, when `fits(ceiling)` does: it takes a fixed amount, so that is monotone in the limit.
    let least = |index: usize, ceiling: u64, fits: &dyn Fn(u64) -> bool| {
        fits(ceiling).then(|| {
            let (mut low, mut high) = (limits.fields()[index].1 + 1, ceiling);
            while low < high {
                let middle = low + (high - low) / 2;
                if fits(middle) {
                    high = middle;
                } else {
                    low = middle + 1;
                }
            }
            low
        })
    };
    let short = |index: usize, least: Option<u64>| LimitShort {
        range: LIMIT_RANGES[index],
        value: limits.fields()[index].1,
        least,
    };
    match build::<S>(limits, platform, config) {
        Built::Fits => None,
        Built::Exhausted(name) => {
            let index = LIMIT_RANGES.iter().position(|range| range.name == name)?;
            let fits = |value| build_with(index, value) != Built::Exhausted(name);
            let least = least(index, LIMIT_RANGES[index].max, &fits);
            Some(Shortfall::Exhausted(short(index, least)))
        }
        // A constructor that panics with the defaults too does so whatever the limits: its run's
        // `panic` finding says so, pointing at `[config]`.
        Built::Panicked(_)
            if matches!(
                build::<S>(&Limits::default(), platform, config),
                Built::Panicked(_)
            ) =>
        {
            None
        }
        Built::Panicked(message) => {
            let panics =
                |index: usize, value: u64| matches!(build_with(index, value), Built::Panicked(_));
            let limit = (0..defaults.len())
                .filter(|&index| lowered(index))
                .find(|&index| !panics(index, defaults[index].1))
                .map(|index| {
                    let fits = |value| !panics(index, value);
                    short(index, least(index, defaults[index].1, &fits))
                });
            Some(Shortfall::Panicked { message, limit })
        }
    }
}

/// Builds `S` once on a scratch OS with these limits, its panics caught (and kept from the panic
/// hook, as the runner's are: `subject::SimulationGuard`), and says how it went.
fn build<S: Subject>(limits: &Limits, platform: &PlatformModel, config: &Config) -> Built {
    let scheduler = Scheduler::new(0, &StrategyChoice::default(), FaultPlan::none());
    let mut os = Os::new(scheduler, limits.clone(), platform.clone());
    os.refuse_host_arena(info_of::<S>().name);
    let made = {
        let _caught = SimulationGuard::enter();
        catch_unwind(AssertUnwindSafe(|| drop(S::new(&mut os, config))))
    };
    let exhausted = os
        .findings()
        .iter()
        .filter(|finding| finding.kind == FindingKind::Budget)
        .find_map(|finding| {
            LIMIT_RANGES
                .iter()
                .find(|range| range.name == finding.resource)
                .map(|range| range.name)
        });
    match (exhausted, made) {
        (Some(name), _) => Built::Exhausted(name),
        (None, Err(payload)) => {
            let message = panic_message(&*payload);
            // Where in the author's code, when a hook of sim's saw the panic (`sim run`'s, a
            // fuzz target's, or `install_panic_location_hook`).
            Built::Panicked(match take_panic_location() {
                Some(at) => format!("{message} (at {at})"),
                None => message,
            })
        }
        (None, Ok(())) => Built::Fits,
    }
}

/// The `[limits]` field a budget finding of `S::new` names, on an OS with these limits.
#[cfg(test)]
fn exhausted_in_new<S: Subject>(
    limits: &Limits,
    platform: &PlatformModel,
    config: &Config,
) -> Option<&'static str> {
    match build::<S>(limits, platform, config) {
        Built::Exhausted(name) => Some(name),
        Built::Fits | Built::Panicked(_) => None,
    }
}

/// Sets the field `Limits::fields` lists at `index`.
fn set_field(limits: &mut Limits, index: usize, value: u64) {
    *limits.fields_mut()[index] = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::counter::Counter;
    use crate::subjects::interpreter::Interpreter;
    use crate::subjects::wasi_runtime::WasiRuntime;

    fn shortfall_of<S: Subject>(limits: Limits) -> Option<(&'static str, u64, Option<u64>)> {
        shortfall::<S>(
            &limits,
            &PlatformModel::default(),
            &Config::default(),
            false,
        )
        .map(|short| match short {
            Shortfall::Exhausted(short) => (short.range.name, short.value, short.least),
            Shortfall::Panicked { message, .. } => panic!("the constructor panicked: {message}"),
        })
    }

    #[test]
    fn a_limit_the_constructor_exhausts_is_named_with_the_least_that_fits() {
        let objects = Limits {
            objects_max: 0,
            ..Limits::default()
        };
        assert_eq!(
            shortfall_of::<Counter>(objects.clone()),
            Some(("objects_max", 0, Some(1)))
        );
        let fds = Limits {
            fds_max: 3,
            ..Limits::default()
        };
        assert_eq!(
            shortfall_of::<WasiRuntime>(fds.clone()),
            Some(("fds_max", 3, Some(4)))
        );
        // A count of 0 is legitimate for a subject whose constructor takes none of it.
        assert_eq!(shortfall_of::<Interpreter>(objects), None);
        assert_eq!(shortfall_of::<Counter>(fds), None);
    }

    /// Each limit the check names, set to the least value it gives, fits, and one less does
    /// not; with every count at 0, the interpreter's constructor lacks a reservation first, then
    /// committed pages, and nothing else.
    #[test]
    fn the_least_value_named_fits_and_one_less_does_not() {
        let zero_counts = Limits {
            pages_committed_max: 0,
            reservations_max: 0,
            objects_max: 0,
            fds_max: 0,
            ..Limits::default()
        };
        let mut limits = zero_counts;
        let mut named = Vec::new();
        while let Some((name, value, least)) = shortfall_of::<Interpreter>(limits.clone()) {
            let least = least.expect("the ceiling fits");
            assert!(least > value);
            named.push((name, least));
            let index = LIMIT_RANGES.iter().position(|r| r.name == name).unwrap();
            set_field(&mut limits, index, least - 1);
            assert_eq!(
                shortfall_of::<Interpreter>(limits.clone()).map(|s| s.0),
                Some(name)
            );
            set_field(&mut limits, index, least);
        }
        let names: Vec<&str> = named.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["reservations_max", "pages_committed_max"]);
    }

    /// The defaults fit every built-in subject's constructor, whatever its `[config]` defaults:
    /// a file that lowers no limit needs no check.
    #[test]
    fn every_built_in_constructor_fits_the_default_limits() {
        use crate::subjects::allocator::Allocator;
        use crate::subjects::reloadable_lib::ReloadableLib;
        fn fits<S: Subject>() -> bool {
            exhausted_in_new::<S>(
                &Limits::default(),
                &PlatformModel::default(),
                &Config::default(),
            )
            .is_none()
        }
        assert!(fits::<Counter>());
        assert!(fits::<Interpreter>());
        assert!(fits::<Allocator>());
        assert!(fits::<WasiRuntime>());
        assert!(fits::<ReloadableLib>());
        // And the check can fail: the counter's mutex is an object.
        let no_objects = Limits {
            objects_max: 0,
            ..Limits::default()
        };
        let config = Config::default();
        let platform = PlatformModel::default();
        assert_eq!(
            exhausted_in_new::<Counter>(&no_objects, &platform, &config),
            Some("objects_max")
        );
    }

    #[test]
    fn files_that_lower_no_limit_or_may_inject_faults_are_not_checked() {
        assert_eq!(shortfall_of::<Counter>(Limits::default()), None);
        let objects = Limits {
            objects_max: 0,
            ..Limits::default()
        };
        let config = Config::default();
        let platform = PlatformModel::default();
        assert_eq!(
            shortfall::<Counter>(&objects, &platform, &config, true),
            None
        );
    }
}
