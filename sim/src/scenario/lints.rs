//! What in a scenario is legal but likely a mistake: a declared thread that no `spawn` starts,
//! an op that runs after a process `exit`. `DynScenario::warnings` turns each into a warning
//! with the place the file has it; the run goes ahead. (A spawn that no `join` reaches needs no
//! warning: whatever list it is in, a check reports its thread's record as a leak.)

use super::{Lifecycle, OpPlace, Scenario, ScenarioOp, ThreadSpec};
use crate::findings::OpList;

impl<O> Lifecycle<O> {
    /// The declared threads that no `spawn` of the lifecycle starts (only the main thread's
    /// lists spawn): their ops never run, and a scenario that passes says nothing of them.
    pub fn unspawned_threads(&self) -> impl Iterator<Item = &ThreadSpec<O>> {
        let spawns = |name: &str| {
            [&self.setup, &self.ops, &self.teardown]
                .into_iter()
                .flatten()
                .any(|op| matches!(op, ScenarioOp::Spawn { thread } if thread == name))
        };
        self.threads
            .iter()
            .filter(move |thread| !spawns(&thread.name))
    }
}

/// An op that the text of a scenario runs after a process `exit`: the first one after that exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunsAfterExit<'s> {
    pub exit: OpPlace<'s>,
    pub op: OpPlace<'s>,
    /// Whether `op` runs in the repetition after the exit's, of the same repeated `ops` list.
    pub next_repetition: bool,
}

/// One run of a main-thread list, in the order the runner runs them.
struct ListRun<'s, O> {
    lifecycle: usize,
    list: OpList,
    ops: &'s [ScenarioOp<O>],
    /// Whether the list runs again right after this run (`ops` with `repeat` above 1).
    repeats: bool,
}

/// The first op that runs after the op at `index` of `runs[run_index]` ends, in the same list,
/// its next repetition or the lists after it, and whether it is in the next repetition.
fn next_in_run_order<'s, O>(
    runs: &[ListRun<'s, O>],
    run_index: usize,
    index: usize,
) -> Option<(OpPlace<'s>, bool)> {
    let run = &runs[run_index];
    let place = |run: &ListRun<'s, O>, index: usize| OpPlace {
        lifecycle: run.lifecycle,
        list: run.list,
        thread: None,
        index,
    };
    if index + 1 < run.ops.len() {
        return Some((place(run, index + 1), false));
    }
    if run.repeats {
        return Some((place(run, 0), true));
    }
    let next = runs.get(run_index + 1)?;
    Some((place(next, 0), false))
}

/// The first main op that runs after declared thread `thread` of lifecycle `lifecycle` has run
/// its whole list: the op after its first `join` in the list that first spawns it, or the first
/// op after that list (a list ends when its threads have). `None` if no list spawns the thread.
fn after_thread_ends<'s, O>(
    runs: &[ListRun<'s, O>],
    lifecycle: usize,
    thread: &str,
) -> Option<(OpPlace<'s>, bool)> {
    let is = |op: &ScenarioOp<O>, join: bool| match op {
        ScenarioOp::Spawn { thread: t } => !join && t == thread,
        ScenarioOp::Join { thread: t } => join && t == thread,
        _ => false,
    };
    let (run_index, spawn) = runs.iter().enumerate().find_map(|(run_index, run)| {
        let spawn = run.ops.iter().position(|op| is(op, false));
        spawn
            .filter(|_| run.lifecycle == lifecycle)
            .map(|at| (run_index, at))
    })?;
    let ops = runs[run_index].ops;
    let join = (spawn..ops.len()).find(|&at| is(&ops[at], true));
    next_in_run_order(runs, run_index, join.unwrap_or(ops.len() - 1))
}

impl<O> Scenario<O> {
    /// Each `exit` that some op runs after, as the text orders them, with the first such op.
    ///
    /// `exit` is process exit: it runs the exit hooks, newest first, and nothing else ends. The
    /// runner does not stop or reset the process after it, so every op after it still runs, in
    /// the same OS, where a real process would run nothing: the rest of its list, the next
    /// repetition of a repeated `ops`, the lists after it (`setup`, `ops`, `teardown`) and the
    /// lifecycles after it. A declared thread's `exit` is followed by the rest of the thread's
    /// list, then by the main op after the thread's first `join` (the list the thread was first
    /// spawned in), or the lists after that one. Ops that only the schedule puts after an
    /// exit (another thread's, running beside it) are not counted: the text does not order them.
    pub fn ops_after_exit(&self) -> Vec<RunsAfterExit<'_>> {
        let runs = self.list_runs();
        let mut found = Vec::new();
        for (run_index, run) in runs.iter().enumerate() {
            for (index, op) in run.ops.iter().enumerate() {
                if !matches!(op, ScenarioOp::Exit) {
                    continue;
                }
                let exit = OpPlace {
                    lifecycle: run.lifecycle,
                    list: run.list,
                    thread: None,
                    index,
                };
                if let Some((op, next_repetition)) = next_in_run_order(&runs, run_index, index) {
                    found.push(RunsAfterExit {
                        exit,
                        op,
                        next_repetition,
                    });
                }
            }
        }
        for (lifecycle_index, lifecycle) in self.lifecycles.iter().enumerate() {
            for thread in &lifecycle.threads {
                for (index, op) in thread.ops.iter().enumerate() {
                    if !matches!(op, ScenarioOp::Exit) {
                        continue;
                    }
                    let exit = OpPlace {
                        lifecycle: lifecycle_index,
                        list: OpList::Thread,
                        thread: Some(&thread.name),
                        index,
                    };
                    let after = if index + 1 < thread.ops.len() {
                        Some((
                            OpPlace {
                                index: index + 1,
                                ..exit
                            },
                            false,
                        ))
                    } else {
                        after_thread_ends(&runs, lifecycle_index, &thread.name)
                    };
                    if let Some((op, next_repetition)) = after {
                        found.push(RunsAfterExit {
                            exit,
                            op,
                            next_repetition,
                        });
                    }
                }
            }
        }
        found
    }

    /// The main thread's lists in the order they run: each lifecycle's setup, ops and teardown
    /// (the ops once, marked when they repeat), empty lists left out.
    fn list_runs(&self) -> Vec<ListRun<'_, O>> {
        let mut runs = Vec::new();
        for (index, lifecycle) in self.lifecycles.iter().enumerate() {
            let lists = [
                (OpList::Setup, &lifecycle.setup, false),
                (OpList::Ops, &lifecycle.ops, lifecycle.repeat > 1),
                (OpList::Teardown, &lifecycle.teardown, false),
            ];
            for (list, ops, repeats) in lists {
                let runs_at_all = list != OpList::Ops || lifecycle.repeat > 0;
                if runs_at_all && !ops.is_empty() {
                    runs.push(ListRun {
                        lifecycle: index,
                        list,
                        ops,
                        repeats,
                    });
                }
            }
        }
        runs
    }
}
