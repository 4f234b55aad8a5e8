//! Property tests with bolero, run under `cargo test` (random inputs, a modest count each, so the
//! suite stays fast; `cargo bolero test` can run the same properties for longer).
//!
//! - Every subject of `Registry::builtin()`: scenarios generated from arbitrary bytes (the fuzz
//!   targets' decoder) pass with every defect off, and two runs give the same trace hash; no
//!   scenario generated from a seed or from bytes warns.
//! - The OS core (issue #2): random sequences of page and object operations keep the OS's
//!   accounting equal to a shadow model after every call; releasing everything that is left brings
//!   every total back to its baseline; leaving exactly one thing unreleased is reported as a leak
//!   of that thing's kind, at the site that acquired it, and nothing else.

use arbitrary::{Arbitrary, Unstructured};
use sim::ledger;
use sim::os::modules::ModuleId;
use sim::os::tls::TlsKey;
use sim::os::{KindId, LockId, LockKind, Os, PAGE_SIZE};
use sim::registry::{DynScenario, DynSubject, Registry};
use sim::runner::RunOptions;

/// Inputs per property under `cargo test`.
const ITERATIONS: usize = 200;
/// Bytes per input: as many as the fuzz targets get (`-max_len=256`).
const INPUT_LEN_MAX: usize = 256;

/// Runs `check` on the scenario `subject`'s fuzz target decodes from each of bolero's inputs (as
/// many and as long as above). A failing input is reported, then shrunk by bolero, which catches
/// the panic.
fn for_each_fuzzed_scenario(subject: &dyn DynSubject, check: impl Fn(&dyn DynScenario)) {
    let subject = std::panic::AssertUnwindSafe(subject);
    let check = std::panic::AssertUnwindSafe(check);
    bolero::check!()
        .with_iterations(ITERATIONS)
        .with_max_len(INPUT_LEN_MAX)
        .for_each(|bytes: &[u8]| {
            check(
                subject
                    .from_bytes(bytes, &sim::fuzzing::generate_options(&[]))
                    .as_ref(),
            )
        });
}

#[test]
fn generated_scenarios_pass_with_defects_off_and_replay_to_the_same_trace() {
    let registry = Registry::builtin();
    for subject in registry.subjects() {
        let name = subject.info().name;
        for_each_fuzzed_scenario(subject, |scenario| {
            let first = scenario.run(RunOptions::default());
            assert!(
                first.passed(),
                "subject `{name}`: a generated scenario fails with defects off: {:?}\n{}",
                first.signatures(),
                scenario.to_toml().unwrap()
            );
            let second = scenario.run(RunOptions::default());
            assert_eq!(
                first.trace_hash,
                second.trace_hash,
                "subject `{name}`: two runs of one scenario differ\n{}",
                scenario.to_toml().unwrap()
            );
        });
    }
}

/// Seeds per subject for `no_generated_scenario_warns`: generating is cheap, running is not done.
const GENERATED_SEEDS: u64 = 2_000;

/// No generated scenario warns (`DynScenario::warnings`): the generator spawns every thread it
/// declares, joins each after its spawn, and puts an `exit` only at the end of the last list.
/// From seeds (`sim sweep --subject`, `sim replay gen:…`) and from fuzz bytes, with and without
/// faults; a generator that began to write a thread never spawned, or ops after an `exit`, would
/// send every sweep's warnings to nobody.
#[test]
fn no_generated_scenario_warns() {
    let registry = Registry::builtin();
    for subject in registry.subjects() {
        let name = subject.info().name;
        for faults in [false, true] {
            let options = sim::scenario::generate::GenerateOptions {
                defects: Vec::new(),
                faults,
            };
            for seed in 0..GENERATED_SEEDS {
                let scenario = subject.generate(seed, &options);
                let warnings = scenario.warnings();
                assert!(
                    warnings.is_empty(),
                    "subject `{name}`, seed {seed}: {warnings:?}\n{}",
                    scenario.to_toml().unwrap()
                );
            }
        }
        for_each_fuzzed_scenario(subject, |scenario| {
            let warnings = scenario.warnings();
            assert!(
                warnings.is_empty(),
                "subject `{name}`: {warnings:?}\n{}",
                scenario.to_toml().unwrap()
            );
        });
    }
}

// ---- the OS core against a shadow model ----

/// Sites an op may name, so that a leak report is checked for the right one of several.
const SITES: [&str; 4] = ["site_a", "site_b", "site_c", "site_d"];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum OsOp {
    Reserve {
        pages: u8,
        site: u8,
    },
    Commit {
        slot: u8,
        first: u8,
        pages: u8,
        site: u8,
    },
    Decommit {
        slot: u8,
        first: u8,
        pages: u8,
    },
    Release {
        slot: u8,
    },
    Malloc {
        bytes: u16,
        site: u8,
    },
    Free {
        slot: u8,
    },
    LockCreate {
        kind: u8,
        site: u8,
    },
    LockDestroy {
        slot: u8,
    },
    TlsCreate {
        site: u8,
    },
    TlsDelete {
        slot: u8,
    },
    Load {
        code_len: u16,
        site: u8,
    },
    Unload {
        slot: u8,
    },
}

struct ShadowReservation {
    base: u64,
    committed: Vec<bool>,
    site: &'static str,
    /// The site of the commit that took the reservation from 0 committed pages to some: the OS
    /// attributes the committed-pages record to it.
    commit_site: Option<&'static str>,
}

/// What the OS should hold, kept by the test independently of the OS.
#[derive(Default)]
struct Shadow {
    reservations: Vec<ShadowReservation>,
    blocks: Vec<(u64, u64, &'static str)>,
    locks: Vec<(LockId, LockKind, &'static str)>,
    tls_keys: Vec<(TlsKey, &'static str)>,
    modules: Vec<(ModuleId, u64, &'static str)>,
}

/// One thing the shadow holds, for choosing which to leave unreleased.
#[derive(Clone, Copy, Debug)]
enum Held {
    Reservation(usize),
    Block(usize),
    Lock(usize),
    TlsKey(usize),
    Module(usize),
}

fn site(index: u8) -> &'static str {
    SITES[index as usize % SITES.len()]
}

fn pick<T>(items: &[T], slot: u8) -> Option<usize> {
    (!items.is_empty()).then(|| slot as usize % items.len())
}

fn lock_kind(kind: u8) -> LockKind {
    [LockKind::Mutex, LockKind::RwLock, LockKind::Condvar][kind as usize % 3]
}

fn kind(os: &Os, name: &str) -> KindId {
    os.resources().kind_by_name(name).unwrap()
}

impl Shadow {
    fn apply(&mut self, os: &mut Os, op: OsOp) {
        match op {
            OsOp::Reserve { pages, site: s } => {
                let pages = u64::from(pages % 16) + 1;
                let base = os.reserve(pages * PAGE_SIZE, PAGE_SIZE, site(s)).unwrap();
                self.reservations.push(ShadowReservation {
                    base,
                    committed: vec![false; pages as usize],
                    site: site(s),
                    commit_site: None,
                });
            }
            OsOp::Commit {
                slot,
                first,
                pages,
                site: s,
            } => {
                if let Some(index) = pick(&self.reservations, slot) {
                    let r = &mut self.reservations[index];
                    let (start, end) = page_range(r.committed.len(), first, pages);
                    os.commit(
                        r.base + start as u64 * PAGE_SIZE,
                        (end - start) as u64 * PAGE_SIZE,
                        site(s),
                    )
                    .unwrap();
                    if !r.committed.iter().any(|&c| c) {
                        r.commit_site = Some(site(s));
                    }
                    r.committed[start..end].fill(true);
                }
            }
            OsOp::Decommit { slot, first, pages } => {
                if let Some(index) = pick(&self.reservations, slot) {
                    let r = &mut self.reservations[index];
                    let (start, end) = page_range(r.committed.len(), first, pages);
                    os.decommit(
                        r.base + start as u64 * PAGE_SIZE,
                        (end - start) as u64 * PAGE_SIZE,
                        "prop_decommit",
                    )
                    .unwrap();
                    r.committed[start..end].fill(false);
                    if !r.committed.iter().any(|&c| c) {
                        r.commit_site = None;
                    }
                }
            }
            OsOp::Release { slot } => {
                if let Some(index) = pick(&self.reservations, slot) {
                    self.release(os, Held::Reservation(index));
                }
            }
            OsOp::Malloc { bytes, site: s } => {
                let bytes = u64::from(bytes % 4096) + 1;
                let token = os.malloc(bytes, site(s)).unwrap();
                self.blocks.push((token, bytes, site(s)));
            }
            OsOp::Free { slot } => {
                if let Some(index) = pick(&self.blocks, slot) {
                    self.release(os, Held::Block(index));
                }
            }
            OsOp::LockCreate { kind, site: s } => {
                let kind = lock_kind(kind);
                let id = os.lock_create(kind, site(s)).unwrap();
                self.locks.push((id, kind, site(s)));
            }
            OsOp::LockDestroy { slot } => {
                if let Some(index) = pick(&self.locks, slot) {
                    self.release(os, Held::Lock(index));
                }
            }
            OsOp::TlsCreate { site: s } => {
                let key = os.tls_key_create(None, site(s)).unwrap();
                self.tls_keys.push((key, site(s)));
            }
            OsOp::TlsDelete { slot } => {
                if let Some(index) = pick(&self.tls_keys, slot) {
                    self.release(os, Held::TlsKey(index));
                }
            }
            OsOp::Load { code_len, site: s } => {
                let code_len = u64::from(code_len) + 1;
                let module = os.load_module("prop", code_len, site(s)).unwrap();
                self.modules.push((module, code_len, site(s)));
            }
            OsOp::Unload { slot } => {
                if let Some(index) = pick(&self.modules, slot) {
                    self.release(os, Held::Module(index));
                }
            }
        }
    }

    fn release(&mut self, os: &mut Os, held: Held) {
        match held {
            Held::Reservation(index) => {
                let r = self.reservations.swap_remove(index);
                let len = r.committed.len() as u64 * PAGE_SIZE;
                os.release(r.base, len, "prop_release").unwrap();
            }
            Held::Block(index) => {
                let (token, _, _) = self.blocks.swap_remove(index);
                os.free(token, "prop_free").unwrap();
            }
            Held::Lock(index) => {
                let (id, _, _) = self.locks.swap_remove(index);
                os.lock_destroy(id, "prop_lock_destroy").unwrap();
            }
            Held::TlsKey(index) => {
                let (key, _) = self.tls_keys.swap_remove(index);
                os.tls_key_delete(key, "prop_tls_delete").unwrap();
            }
            Held::Module(index) => {
                let (module, _, _) = self.modules.swap_remove(index);
                os.unload_module(module, "prop_unload").unwrap();
            }
        }
    }

    /// Everything held, in a fixed order.
    fn held(&self) -> Vec<Held> {
        let mut held = Vec::new();
        held.extend((0..self.reservations.len()).map(Held::Reservation));
        held.extend((0..self.blocks.len()).map(Held::Block));
        held.extend((0..self.locks.len()).map(Held::Lock));
        held.extend((0..self.tls_keys.len()).map(Held::TlsKey));
        held.extend((0..self.modules.len()).map(Held::Module));
        held
    }

    /// The leak signatures that leaving `held` unreleased must produce.
    fn expected_leaks(&self, held: Held) -> Vec<String> {
        let mut expected = match held {
            Held::Reservation(index) => {
                let r = &self.reservations[index];
                let mut leaks = vec![format!("leak:reservation:{}", r.site)];
                if let Some(commit_site) = r.commit_site {
                    leaks.push(format!("leak:committed pages:{commit_site}"));
                }
                leaks
            }
            Held::Block(index) => vec![format!("leak:heap block:{}", self.blocks[index].2)],
            Held::Lock(index) => {
                let (_, kind, site) = self.locks[index];
                vec![format!("leak:{}:{site}", kind.name())]
            }
            Held::TlsKey(index) => vec![format!("leak:tls key:{}", self.tls_keys[index].1)],
            Held::Module(index) => vec![format!("leak:module:{}", self.modules[index].2)],
        };
        expected.sort();
        expected
    }

    /// Asserts that the OS's totals equal the shadow's, kind by kind.
    fn check_accounting(&self, os: &Os) {
        let total = |name: &str| os.resources().total(kind(os, name));
        let reserved: u64 = self
            .reservations
            .iter()
            .map(|r| r.committed.len() as u64 * PAGE_SIZE)
            .sum();
        assert_eq!(total("reservation").count, self.reservations.len() as u64);
        assert_eq!(total("reservation").bytes, reserved);
        let committed: u64 = self
            .reservations
            .iter()
            .map(|r| r.committed.iter().filter(|&&c| c).count() as u64)
            .sum();
        assert_eq!(total("committed pages").count, committed);
        assert_eq!(total("committed pages").bytes, committed * PAGE_SIZE);
        assert_eq!(os.committed_pages(), committed);
        assert_eq!(os.reserved_bytes(), reserved);
        assert_eq!(total("heap block").count, self.blocks.len() as u64);
        assert_eq!(
            total("heap block").bytes,
            self.blocks.iter().map(|b| b.1).sum::<u64>()
        );
        for lock in [LockKind::Mutex, LockKind::RwLock, LockKind::Condvar] {
            let count = self.locks.iter().filter(|l| l.1 == lock).count() as u64;
            assert_eq!(total(lock.name()).count, count, "{}", lock.name());
        }
        assert_eq!(total("tls key").count, self.tls_keys.len() as u64);
        assert_eq!(total("module").count, self.modules.len() as u64);
        assert_eq!(
            total("module").bytes,
            self.modules.iter().map(|m| m.1).sum::<u64>()
        );
    }
}

/// A page range `[start, end)` inside a reservation of `len` pages, never empty.
fn page_range(len: usize, first: u8, pages: u8) -> (usize, usize) {
    let start = first as usize % len;
    let end = (start + 1 + pages as usize % len).min(len);
    (start, end)
}

/// Runs the ops decoded from `bytes`, checking the accounting after each; returns the OS, the
/// baseline taken before the first op, the shadow, and the rest of the input.
fn run_ops(bytes: &[u8]) -> (Os, ledger::Baseline, Shadow, Unstructured<'_>) {
    let mut input = Unstructured::new(bytes);
    let mut os = Os::for_tests(u64::arbitrary(&mut input).unwrap_or(0));
    let baseline = ledger::baseline(&os);
    let mut shadow = Shadow::default();
    let _ = input.arbitrary_loop(Some(0), Some(64), |input| {
        let op = OsOp::arbitrary(input)?;
        shadow.apply(&mut os, op);
        shadow.check_accounting(&os);
        Ok(std::ops::ControlFlow::Continue(()))
    });
    let findings = os.take_findings();
    assert!(
        findings.is_empty(),
        "well-formed calls make no finding: {findings:?}"
    );
    (os, baseline, shadow, input)
}

#[test]
fn page_and_object_accounting_matches_a_shadow_model_and_a_balanced_sequence_returns_to_baseline() {
    bolero::check!()
        .with_iterations(ITERATIONS)
        .with_max_len(INPUT_LEN_MAX)
        .for_each(|bytes: &[u8]| {
            let (mut os, baseline, mut shadow, _) = run_ops(bytes);
            while let Some(&held) = shadow.held().last() {
                shadow.release(&mut os, held);
                shadow.check_accounting(&os);
            }
            let leaks = ledger::leaks(&os, &baseline, &[]);
            assert!(leaks.is_empty(), "a balanced sequence leaks: {leaks:?}");
            assert!(ledger::grown_kinds(&os, &baseline).is_empty());
            assert!(
                os.resources()
                    .totals()
                    .iter()
                    .all(|t| t.count == 0 && t.bytes == 0),
                "a fresh OS holds nothing, so back at baseline every total is zero: {:?}",
                os.resources().totals()
            );
            assert!(os.take_findings().is_empty());
        });
}

#[test]
fn one_missing_release_is_reported_with_its_kind_and_acquiring_site_and_nothing_else() {
    bolero::check!()
        .with_iterations(ITERATIONS)
        .with_max_len(INPUT_LEN_MAX)
        .for_each(|bytes: &[u8]| {
            let (mut os, baseline, mut shadow, mut input) = run_ops(bytes);
            let held = shadow.held();
            if held.is_empty() {
                return;
            }
            let kept = held[input.choose_index(held.len()).unwrap_or(0)];
            let expected = shadow.expected_leaks(kept);
            // Set the kept one aside, then release everything else.
            let mut shadow_kept = Shadow::default();
            move_one(&mut shadow, &mut shadow_kept, kept);
            while let Some(&other) = shadow.held().last() {
                shadow.release(&mut os, other);
            }
            let mut found: Vec<String> = ledger::leaks(&os, &baseline, &[])
                .iter()
                .map(|f| f.signature())
                .collect();
            found.sort();
            assert_eq!(found, expected, "leaving {kept:?} unreleased");
            // And releasing it too brings the OS back to its baseline.
            shadow_kept.release(&mut os, shadow_kept.held()[0]);
            assert!(ledger::leaks(&os, &baseline, &[]).is_empty());
        });
}

/// Moves one held thing from `from` to `to` (so that releasing the rest cannot touch it).
fn move_one(from: &mut Shadow, to: &mut Shadow, held: Held) {
    match held {
        Held::Reservation(i) => to.reservations.push(from.reservations.swap_remove(i)),
        Held::Block(i) => to.blocks.push(from.blocks.swap_remove(i)),
        Held::Lock(i) => to.locks.push(from.locks.swap_remove(i)),
        Held::TlsKey(i) => to.tls_keys.push(from.tls_keys.swap_remove(i)),
        Held::Module(i) => to.modules.push(from.modules.swap_remove(i)),
    }
}
