//! The check at the end of a lifecycle with a `setup` and no `teardown`: what the setup acquired
//! and still holds is a `leak` finding naming the setup's op, while what the repetitions leave
//! (their leaks, reported after each, and a declared cache they fill) is not reported again.

mod support;

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::findings::{Finding, FindingKind, OpList};
use sim::os::{KindId, Os, RecordId, Tid};
use sim::registry::{DynScenario, Registry, erase};
use sim::runner::{Outcome, RunOptions};
use sim::subject::{CacheDecl, Config, Step, Subject, SubjectInfo};
use support::parse_scenario;

/// A shelf of heap blocks and a memo with a declared cache of one entry per key: the least a
/// test needs to tell the setup's acquisitions from the repetitions' leaks and cache contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum ShelfOp {
    /// Puts a 64-byte block in `slot` (`shelf_keep`), if the slot is empty; with `in_repetition`,
    /// only in that repetition (counted from 1, as reports count).
    Keep {
        slot: u8,
        #[serde(default)]
        in_repetition: Option<u32>,
    },
    /// Frees the block in `slot`, if there is one; with `in_repetition`, only in that repetition.
    Drop {
        slot: u8,
        #[serde(default)]
        in_repetition: Option<u32>,
    },
    /// `keep`, at another site of the same kind (`shelf_stash`).
    Stash {
        slot: u8,
        #[serde(default)]
        in_repetition: Option<u32>,
    },
    /// Remembers one memo entry for `key` (`shelf_memo`), if the key has none: the declared
    /// cache.
    Memo { key: u8 },
    /// Allocates a 16-byte block and forgets it (`shelf_leak`).
    Leak,
}

struct Shelf {
    memo: KindId,
    slots: [Option<u64>; 4],
    memos: Vec<(u8, RecordId)>,
}

impl Subject for Shelf {
    type Op = ShelfOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "shelf",
            summary: "kept blocks, forgotten blocks and a bounded memo",
            ops: vec![],
            defects: vec![],
            caches: vec![CacheDecl {
                kind: "memo entry",
                per_key_max: 1,
                why: "one remembered entry per key",
            }],
            params: vec![],
            host_backed: false,
        }
    }

    fn new(os: &mut Os, _config: &Config) -> Self {
        Shelf {
            memo: os.register_kind("memo entry", true),
            slots: [None; 4],
            memos: Vec::new(),
        }
    }

    fn op_name(op: &ShelfOp) -> &'static str {
        match op {
            ShelfOp::Keep { .. } => "keep",
            ShelfOp::Drop { .. } => "drop",
            ShelfOp::Stash { .. } => "stash",
            ShelfOp::Memo { .. } => "memo",
            ShelfOp::Leak => "leak",
        }
    }

    fn apply(&mut self, os: &mut Os, _tid: Tid, op: &ShelfOp) -> Step<Self> {
        let now = os.position().repetition + 1;
        match *op {
            ShelfOp::Keep { in_repetition, .. }
            | ShelfOp::Drop { in_repetition, .. }
            | ShelfOp::Stash { in_repetition, .. }
                if in_repetition.is_some_and(|only| only != now) => {}
            ShelfOp::Keep { slot, .. } | ShelfOp::Stash { slot, .. } => {
                let site = match op {
                    ShelfOp::Keep { .. } => "shelf_keep",
                    _ => "shelf_stash",
                };
                let slot = &mut self.slots[usize::from(slot % 4)];
                if slot.is_none() {
                    *slot = os.malloc(64, site).ok();
                }
            }
            ShelfOp::Drop { slot, .. } => {
                if let Some(block) = self.slots[usize::from(slot % 4)].take() {
                    os.free(block, "shelf_drop").unwrap();
                }
            }
            ShelfOp::Memo { key } => {
                if !self.memos.iter().any(|(k, _)| *k == key) {
                    let record = os.track(self.memo, 0, u64::from(key), "shelf_memo");
                    self.memos.push((key, record));
                }
            }
            ShelfOp::Leak => {
                os.malloc(16, "shelf_leak").unwrap();
            }
        }
        Step::Done
    }
}

fn shelf_scenario(lists: &str) -> Box<dyn DynScenario> {
    let text = format!(
        "name = \"shelf\"\nsubject = \"shelf\"\nseed = 1\n\n[[lifecycle]]\nname = \"l\"\nrepeat = 4\n{lists}"
    );
    Registry::builtin()
        .with(erase::<Shelf>())
        .parse("shelf.toml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The run of `scenario`, with each op its findings name located in the file.
fn run_located(scenario: &dyn DynScenario) -> Outcome {
    let mut outcome = scenario.run(RunOptions::default());
    sim::report::locate(&mut outcome, scenario);
    outcome
}

fn finding<'o>(outcome: &'o Outcome, signature: &str) -> &'o Finding {
    outcome
        .findings
        .iter()
        .find(|f| f.signature() == signature)
        .unwrap_or_else(|| panic!("no {signature}: {:#?}", outcome.findings))
}

/// A setup that keeps a block, in a lifecycle with no teardown, whose repetitions fill the
/// declared memo cache and leak a block of their own each: the setup's block is one finding,
/// naming the setup's op where the file has it; the repetitions' leak is reported after each
/// repetition and not again at the end; the memo entry they keep is the cache's, and no finding.
#[test]
fn a_setup_without_teardown_is_checked_for_what_it_acquired_and_nothing_else() {
    let scenario = shelf_scenario(
        "setup = [\n  { op = \"memo\", key = 9 },\n  { op = \"keep\", slot = 0 },\n]\n\
         ops = [{ op = \"memo\", key = 1 }, { op = \"leak\" }]\n",
    );
    let outcome = run_located(scenario.as_ref());
    assert_eq!(
        outcome.signatures(),
        [
            "leak:heap block:shelf_leak",
            "leak:heap block:shelf_keep",
            "leak:memo entry:shelf_memo",
        ],
        "{:#?}",
        outcome.findings
    );
    let repeated = finding(&outcome, "leak:heap block:shelf_leak");
    assert!(
        repeated.notes.iter().any(|n| n.contains("seen 4 times")),
        "each repetition's leak once, none more at the end: {:?}",
        repeated.notes
    );
    let kept = finding(&outcome, "leak:heap block:shelf_keep");
    assert_eq!(kept.kind, FindingKind::Leak);
    assert_eq!(
        kept.headline,
        "1 heap block (64 B) acquired by `setup` not released"
    );
    assert_eq!((kept.lifecycle, kept.repetition), (0, 3), "after the last");
    let acquired = kept.details[0].op.as_ref().expect("the setup's op");
    assert_eq!(kept.details[0].label, "acquired");
    assert_eq!(
        (acquired.list, acquired.index, acquired.name.as_str()),
        (OpList::Setup, 2, "keep")
    );
    let location = acquired.location.as_ref().expect("located in the file");
    assert_eq!(
        (location.file.as_str(), location.line, location.column),
        ("shelf.toml", 10, 3)
    );
    assert_eq!(
        kept.detail_text("baseline"),
        Some("0 heap blocks (all sites) before `setup`; now: 5 (all sites), 1 at this site")
    );
    assert!(
        kept.notes.iter().any(|n| n.contains("no `teardown`")
            && n.contains("add a `teardown` that releases it")),
        "{:?}",
        kept.notes
    );
    // The setup's own memo entry is reported, the repetitions' (key 1) is the cache's.
    let memo = finding(&outcome, "leak:memo entry:shelf_memo");
    assert_eq!(
        memo.headline,
        "1 memo entry (0 B) acquired by `setup` not released"
    );
    assert_eq!(memo.details[0].op.as_ref().unwrap().index, 1);
}

/// What the setup acquired and something later releases is no finding: a teardown, or the
/// repeated ops. A lifecycle whose setup acquired nothing it still holds passes.
#[test]
fn what_a_teardown_or_the_ops_release_is_no_finding() {
    let leaky = "setup = [{ op = \"keep\", slot = 0 }]\nops = [{ op = \"memo\", key = 1 }]\n";
    let outcome = run_located(shelf_scenario(leaky).as_ref());
    assert_eq!(outcome.signatures(), ["leak:heap block:shelf_keep"]);
    for lists in [
        // A teardown's check allows no cache: these repetitions keep no memo entry.
        "setup = [{ op = \"keep\", slot = 0 }]\nops = [{ op = \"sleep\", ticks = 1 }]\n\
         teardown = [{ op = \"drop\", slot = 0 }]\n",
        "setup = [{ op = \"keep\", slot = 0 }]\n\
         ops = [{ op = \"memo\", key = 1 }, { op = \"drop\", slot = 0 }]\n",
        "setup = [{ op = \"keep\", slot = 0 }, { op = \"drop\", slot = 0 }]\n\
         ops = [{ op = \"memo\", key = 1 }]\n",
    ] {
        let outcome = run_located(shelf_scenario(lists).as_ref());
        assert!(outcome.passed(), "{lists}: {:#?}", outcome.findings);
    }
}

/// A thread the setup spawns and never joins keeps its record: a leak of the setup's `spawn`,
/// also when it is spawned again before the join (a join waits for the latest spawn only).
#[test]
fn a_thread_the_setup_never_joins_is_a_leak_of_its_spawn() {
    let text = |setup: &str| {
        format!(
            "name = \"t\"\nsubject = \"counter\"\n[[lifecycle]]\nname = \"l\"\nrepeat = 3\n\
             setup = [{setup}]\nops = [{{ op = \"bump\" }}]\n\
             [[lifecycle.thread]]\nname = \"a\"\nops = [{{ op = \"bump\" }}]\n"
        )
    };
    let spawn = "{ op = \"spawn\", thread = \"a\" }";
    let join = "{ op = \"join\", thread = \"a\" }";
    for setup in [spawn.to_string(), format!("{spawn}, {spawn}, {join}")] {
        let outcome = parse_scenario(&text(&setup)).run(RunOptions::default());
        assert_eq!(outcome.signatures(), ["leak:thread:spawn"], "{setup}");
        let leak = &outcome.findings[0];
        assert_eq!(
            leak.headline,
            "1 thread (0 B) acquired by `setup` not released"
        );
        let op = leak.details[0].op.as_ref().unwrap();
        assert_eq!(
            (op.list, op.index, op.name.as_str()),
            (OpList::Setup, 1, "spawn")
        );
    }
    let joined = parse_scenario(&text(&format!("{spawn}, {join}"))).run(RunOptions::default());
    assert!(joined.passed(), "{:#?}", joined.findings);
}

/// An `exit` in a setup ends nothing by itself: what its exit hooks release is released, and what
/// the setup acquired and they leave is reported. The allocator's hook releases every segment
/// (`destroy_on_exit`, its default); with that off, the setup's segment is still held.
#[test]
fn an_exit_in_the_setup_releases_what_its_exit_hooks_release() {
    let text = |config: &str| {
        format!(
            "name = \"e\"\nsubject = \"allocator\"\n{config}[[lifecycle]]\nname = \"l\"\n\
             repeat = 1\nsetup = [{{ op = \"malloc\", slot = 0, bytes = 64 }}, {{ op = \"exit\" }}]\n\
             ops = [{{ op = \"sleep\", ticks = 1 }}]\n"
        )
    };
    let destroyed = parse_scenario(&text("")).run(RunOptions::default());
    assert!(destroyed.passed(), "{:#?}", destroyed.findings);
    let kept =
        parse_scenario(&text("[config]\ndestroy_on_exit = false\n")).run(RunOptions::default());
    let signatures = kept.signatures();
    assert!(
        signatures.contains(&"leak:reservation:segment_alloc".to_string()),
        "{signatures:?}"
    );
    for leak in &kept.findings {
        let op = leak.details[0].op.as_ref().unwrap();
        assert_eq!(
            (op.list, op.name.as_str()),
            (OpList::Setup, "malloc"),
            "{leak:?}"
        );
    }
}

/// A repetition that frees the setup's block and keeps one like it at the same site leaves the
/// site as the setup left it, and the setup's own block is gone: the site still holds one block
/// more than before the setup, which no teardown gives back. The check at the end of the
/// lifecycle reports it once, naming the op that acquired the block now held; a leak of the
/// repetitions' own at another site is still reported once per repetition, not again at the end,
/// and the memo entry they keep is the declared cache's.
#[test]
fn a_setup_resource_a_repetition_replaced_is_still_checked_at_the_end() {
    let scenario = shelf_scenario(
        "setup = [{ op = \"keep\", slot = 0 }]\n\
         ops = [\n  { op = \"drop\", slot = 0 },\n  { op = \"keep\", slot = 0 },\n  \
         { op = \"memo\", key = 1 },\n  { op = \"leak\" },\n]\n",
    );
    let outcome = run_located(scenario.as_ref());
    assert_eq!(
        outcome.signatures(),
        ["leak:heap block:shelf_leak", "leak:heap block:shelf_keep"],
        "{:#?}",
        outcome.findings
    );
    let repeated = finding(&outcome, "leak:heap block:shelf_leak");
    assert!(
        repeated.notes.iter().any(|n| n.contains("seen 4 times")),
        "{:?}",
        repeated.notes
    );
    let kept = finding(&outcome, "leak:heap block:shelf_keep");
    assert!(
        !kept.notes.iter().any(|n| n.contains("seen")),
        "reported once, at the end: {:?}",
        kept.notes
    );
    assert_eq!(
        kept.headline,
        "1 heap block (64 B) acquired in place of `setup`'s not released"
    );
    // The block held now is the last repetition's, acquired by its `keep`.
    let acquired = kept.details[0]
        .op
        .as_ref()
        .expect("the op that acquired it");
    assert_eq!(kept.details[0].label, "acquired");
    assert_eq!(
        (acquired.list, acquired.index, acquired.repetition),
        (OpList::Ops, 2, 3)
    );
    assert_eq!(
        kept.detail_text("baseline"),
        Some("0 heap blocks (all sites) before `setup`; now: 5 (all sites), 1 at this site")
    );
    assert!(
        kept.notes
            .iter()
            .any(|n| n.contains("in its place") && n.contains("add a `teardown`")),
        "{:?}",
        kept.notes
    );
    // Released by the last repetition after all, the block is no finding.
    let released = shelf_scenario(
        "setup = [{ op = \"keep\", slot = 0 }]\n\
         ops = [{ op = \"drop\", slot = 0 }, { op = \"keep\", slot = 1 }, { op = \"drop\", slot = 1 }]\n",
    );
    let outcome = run_located(released.as_ref());
    assert!(outcome.passed(), "{:#?}", outcome.findings);
}

/// A repetition's leak at the setup's site that a later repetition gives back no longer stands
/// for what the setup added there: when a repetition after that replaces the setup's block,
/// the block in its place is reported at the end. It shares its signature with the leak
/// reported after the first repetition, so it is that finding's second occurrence.
#[test]
fn a_setup_resource_replaced_after_a_leak_there_was_given_back_is_reported() {
    let lists = |replace: &str| {
        format!(
            "setup = [{{ op = \"keep\", slot = 0 }}]\n\
             ops = [\n  {{ op = \"keep\", slot = 1, in_repetition = 1 }},\n  \
             {{ op = \"drop\", slot = 1, in_repetition = 2 }},\n{replace}]\n"
        )
    };
    let replaced = lists(
        "  { op = \"drop\", slot = 0, in_repetition = 3 },\n  \
         { op = \"keep\", slot = 0, in_repetition = 3 },\n",
    );
    let outcome = run_located(shelf_scenario(&replaced).as_ref());
    assert_eq!(
        outcome.signatures(),
        ["leak:heap block:shelf_keep"],
        "{:#?}",
        outcome.findings
    );
    let leak = &outcome.findings[0];
    assert_eq!(leak.headline, "1 heap block (64 B) not released");
    assert_eq!(
        (leak.lifecycle, leak.repetition),
        (0, 0),
        "the first repetition's"
    );
    assert!(
        leak.notes
            .iter()
            .any(|n| n.contains("seen 2 times in this run")),
        "the leak once, and the block in place of the setup's at the end: {:?}",
        leak.notes
    );
    // The setup's block still held after the leak was given back is reported as the setup's,
    // and with no repetition replacing it, that is all: once more, the second occurrence.
    let kept = run_located(shelf_scenario(&lists("")).as_ref());
    assert_eq!(kept.signatures(), ["leak:heap block:shelf_keep"]);
    assert!(
        kept.findings[0]
            .notes
            .iter()
            .any(|n| n.contains("seen 2 times in this run")),
        "{:?}",
        kept.findings[0].notes
    );
}

/// A repetition that frees the setup's block and keeps one like it at another site of the same
/// kind leaves the kind as it found it, so its check reports nothing, and the setup's site is
/// back at its baseline: the block at the other site is reported at the end, in place of the
/// setup's, naming the op that acquired it and where the setup's was.
#[test]
fn a_setup_resource_a_repetition_moved_to_another_site_is_reported() {
    let scenario = shelf_scenario(
        "setup = [{ op = \"keep\", slot = 0 }]\n\
         ops = [\n  { op = \"drop\", slot = 0, in_repetition = 2 },\n  \
         { op = \"stash\", slot = 0, in_repetition = 2 },\n]\n",
    );
    let outcome = run_located(scenario.as_ref());
    assert_eq!(
        outcome.signatures(),
        ["leak:heap block:shelf_stash"],
        "{:#?}",
        outcome.findings
    );
    let moved = &outcome.findings[0];
    assert_eq!(
        moved.headline,
        "1 heap block (64 B) acquired in place of `setup`'s not released"
    );
    let acquired = moved.details[0]
        .op
        .as_ref()
        .expect("the op that acquired it");
    assert_eq!(
        (
            acquired.list,
            acquired.index,
            acquired.repetition,
            acquired.name.as_str()
        ),
        (OpList::Ops, 2, 1, "stash")
    );
    assert!(
        moved.notes.iter().any(|n| n.contains(
            "a repetition released what the `setup` acquired at `shelf_keep` and acquired this \
             in its place"
        )),
        "{:?}",
        moved.notes
    );
}

/// A leak that a later repetition moves to another site of its kind (releasing it and keeping
/// one like it there) is still the leak, reported once: when the setup's block is freed after
/// that, the end of the lifecycle reports nothing.
#[test]
fn a_leak_moved_to_another_site_is_not_taken_for_the_setups() {
    let scenario = shelf_scenario(
        "setup = [{ op = \"keep\", slot = 0 }]\n\
         ops = [\n  { op = \"keep\", slot = 1, in_repetition = 1 },\n  \
         { op = \"drop\", slot = 1, in_repetition = 2 },\n  \
         { op = \"stash\", slot = 1, in_repetition = 2 },\n  \
         { op = \"drop\", slot = 0, in_repetition = 3 },\n]\n",
    );
    let outcome = run_located(scenario.as_ref());
    assert_eq!(
        outcome.signatures(),
        ["leak:heap block:shelf_keep"],
        "{:#?}",
        outcome.findings
    );
    assert!(
        !outcome.findings[0].notes.iter().any(|n| n.contains("seen")),
        "reported once: {:?}",
        outcome.findings[0].notes
    );
}
