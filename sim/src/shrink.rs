//! The shrinker: makes a failing scenario smaller while the same finding signature still appears.
//!
//! Reductions are tried largest first: drop a lifecycle, drop faults, cut repetitions, drop a
//! thread (with its spawn and join), drop halves and quarters of op lists, then single ops. The
//! first reduction that still shows the signature is kept and the search restarts from it, so
//! the result is 1-minimal with respect to single-op removal.

use crate::scenario::{FaultSpec, Scenario, ScenarioOp};

/// Every one-step reduction of `scenario`, largest first. Some may not validate; the caller
/// filters them.
pub fn reductions<O: Clone>(scenario: &Scenario<O>) -> Vec<Scenario<O>> {
    let mut out = Vec::new();
    if scenario.lifecycles.len() > 1 {
        for index in 0..scenario.lifecycles.len() {
            let mut smaller = scenario.clone();
            smaller.lifecycles.remove(index);
            out.push(smaller);
        }
    }
    if scenario.faults != FaultSpec::default() {
        let mut smaller = scenario.clone();
        smaller.faults = FaultSpec::default();
        out.push(smaller);
        for kind in scenario.faults.probabilities.keys() {
            let mut smaller = scenario.clone();
            smaller.faults.probabilities.remove(kind);
            out.push(smaller);
        }
    }
    for (index, lifecycle) in scenario.lifecycles.iter().enumerate() {
        for repeat in [1, lifecycle.repeat / 2, lifecycle.repeat.saturating_sub(1)] {
            if repeat >= 1 && repeat < lifecycle.repeat {
                let mut smaller = scenario.clone();
                let target = &mut smaller.lifecycles[index];
                target.repeat = repeat;
                target.warmup = crate::scenario::default_warmup(repeat).min(target.warmup);
                out.push(smaller);
            }
        }
        for thread in &lifecycle.threads {
            let mut smaller = scenario.clone();
            let target = &mut smaller.lifecycles[index];
            target.threads.retain(|t| t.name != thread.name);
            let mentions = |op: &ScenarioOp<O>| matches!(op, ScenarioOp::Spawn { thread: t } | ScenarioOp::Join { thread: t } if *t == thread.name);
            target.setup.retain(|op| !mentions(op));
            target.ops.retain(|op| !mentions(op));
            target.teardown.retain(|op| !mentions(op));
            out.push(smaller);
        }
    }
    // Chunks of every op list, then single ops.
    let list_count = |s: &Scenario<O>, index: usize| 3 + s.lifecycles[index].threads.len();
    for chunk_divisor in [2usize, 4, 8, usize::MAX] {
        for index in 0..scenario.lifecycles.len() {
            for list in 0..list_count(scenario, index) {
                let len = op_list(&scenario.lifecycles[index], list).len();
                let chunk = if chunk_divisor == usize::MAX {
                    1
                } else {
                    len / chunk_divisor
                };
                if chunk == 0 || (chunk_divisor != usize::MAX && chunk < 2) {
                    continue;
                }
                let mut start = 0;
                while start < len {
                    let mut smaller = scenario.clone();
                    let ops = op_list_mut(&mut smaller.lifecycles[index], list);
                    let end = (start + chunk).min(ops.len());
                    ops.drain(start..end);
                    out.push(smaller);
                    start += chunk;
                }
            }
        }
    }
    out
}

fn op_list<O>(lifecycle: &crate::scenario::Lifecycle<O>, list: usize) -> &Vec<ScenarioOp<O>> {
    match list {
        0 => &lifecycle.setup,
        1 => &lifecycle.ops,
        2 => &lifecycle.teardown,
        n => &lifecycle.threads[n - 3].ops,
    }
}

fn op_list_mut<O>(
    lifecycle: &mut crate::scenario::Lifecycle<O>,
    list: usize,
) -> &mut Vec<ScenarioOp<O>> {
    match list {
        0 => &mut lifecycle.setup,
        1 => &mut lifecycle.ops,
        2 => &mut lifecycle.teardown,
        n => &mut lifecycle.threads[n - 3].ops,
    }
}

/// Result of a shrink.
pub struct Shrunk {
    pub scenario: Box<dyn crate::registry::DynScenario>,
    pub runs: u64,
    pub ops_before: usize,
    pub ops_after: usize,
}

/// Shrinks `scenario` while its run still shows `signature`. Bounded by `runs_max` runs.
pub fn shrink(
    scenario: &dyn crate::registry::DynScenario,
    signature: &str,
    runs_max: u64,
) -> Shrunk {
    use crate::runner::RunOptions;
    shrink_while(scenario, runs_max, |candidate| {
        let outcome = candidate.run(RunOptions::default());
        outcome.signatures().iter().any(|s| s == signature)
    })
}

/// Shrinks `scenario` while `keep` holds for the smaller candidate. `keep` is called at most
/// `runs_max` times. `sim import-crash` keeps a seeded defect's regression honest with it: the
/// candidate must show the finding with the defect on *and* pass with it off, so the shrinker
/// cannot trade the defect's finding for an unbalanced scenario's.
pub fn shrink_while(
    scenario: &dyn crate::registry::DynScenario,
    runs_max: u64,
    mut keep: impl FnMut(&dyn crate::registry::DynScenario) -> bool,
) -> Shrunk {
    let ops_before = scenario.meta().op_count;
    let mut current = scenario.clone_box();
    let mut runs = 0u64;
    'search: loop {
        for candidate in current.reductions() {
            if runs >= runs_max {
                break 'search;
            }
            runs += 1;
            if keep(candidate.as_ref()) {
                current = candidate;
                continue 'search;
            }
        }
        break;
    }
    let ops_after = current.meta().op_count;
    Shrunk {
        scenario: current,
        runs,
        ops_before,
        ops_after,
    }
}
