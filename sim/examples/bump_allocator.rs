//! Testing your own allocator: a bump (arena) allocator written outside the framework, using only
//! `sim`'s public API, the way a user's crate would.
//!
//! The allocator hands out memory from chunks of reserved address space, bumping a pointer and
//! committing pages as it goes. When a chunk is full it reserves an overflow chunk. `reset`
//! rewinds the arena to its first chunk; `destroy` gives everything back. Its deliberate bug,
//! switchable as the defect `leak-overflow-chunks`, is one every arena allocator has had at some
//! point: `destroy` releases the first chunk and forgets the overflow chunks chained after it.
//! The framework finds it with its generic leak check; nothing here checks for that bug.
//!
//! Run it:
//!
//! ```text
//! cargo run --example bump_allocator                      # the demo: runs a scenario with and without the defect
//! cargo run --example bump_allocator -- list              # the `sim` CLI, with this subject added
//! cargo run --example bump_allocator -- run sim/examples/bump_allocator.toml
//! ```

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use serde::{Deserialize, Serialize};
use sim::os::{Os, PAGE_SIZE, Tid};
use sim::registry::{Registry, erase};
use sim::runner::{Outcome, RunOptions};
use sim::subject::{
    Config, DefectInfo, Names, OpDoc, OpRefusal, Step, Subject, SubjectInfo, UnsignedParam,
};

/// Arenas are numbered 0..ARENAS; larger numbers wrap, so any generated op means something.
const ARENAS: u8 = 4;
/// Allocations are rounded up to this alignment.
const ALIGN_BYTES: u64 = 16;

/// `[config] chunk_bytes = 8192` in a scenario sets the size of each chunk an arena reserves.
const CHUNK_BYTES: UnsignedParam = UnsignedParam {
    name: "chunk_bytes",
    summary: "bytes each chunk reserves, rounded up to whole pages",
    min: PAGE_SIZE,
    max: 1 << 30,
    default: 4 * PAGE_SIZE,
};

/// The ops a scenario can use, as they appear in TOML: `{ op = "alloc", arena = 0, bytes = 100 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BumpOp {
    /// Creates arena `arena` with its first chunk.
    Create { arena: u8 },
    /// Allocates `bytes` from arena `arena` and writes a header into the new block.
    Alloc { arena: u8, bytes: u16 },
    /// Rewinds the arena: overflow chunks are released, the first chunk's pages decommitted.
    Reset { arena: u8 },
    /// Destroys the arena and every chunk it holds.
    Destroy { arena: u8 },
}

/// One reservation the arena bumps through.
struct Chunk {
    base: u64,
    used_bytes: u64,
    committed_bytes: u64,
}

pub struct BumpAllocator {
    arenas: BTreeMap<u8, Vec<Chunk>>,
    chunk_bytes: u64,
    leak_overflow_chunks: bool,
}

impl Subject for BumpAllocator {
    type Op = BumpOp;

    fn info() -> SubjectInfo {
        SubjectInfo {
            name: "bump-allocator",
            summary: "an arena allocator bumping through chunks of reserved pages (example)",
            ops: vec![
                OpDoc {
                    name: "create",
                    summary: "create arena `arena` with one chunk",
                },
                OpDoc {
                    name: "alloc",
                    summary: "allocate `bytes` from arena `arena`",
                },
                OpDoc {
                    name: "reset",
                    summary: "rewind arena `arena` to its first chunk",
                },
                OpDoc {
                    name: "destroy",
                    summary: "destroy arena `arena` and all its chunks",
                },
            ],
            defects: vec![DefectInfo {
                name: "leak-overflow-chunks",
                summary: "destroy releases the first chunk only, not the overflow chunks",
                source: "the classic arena bug (an example, not a published report)",
            }],
            params: vec![CHUNK_BYTES.decl()],
            // No caches, and not host-backed: the defaults.
            ..Default::default()
        }
    }

    fn new(_os: &mut Os, config: &Config) -> Self {
        BumpAllocator {
            arenas: BTreeMap::new(),
            // Whole pages: a size between them is rounded up, as `CHUNK_BYTES` says.
            chunk_bytes: config.unsigned(&CHUNK_BYTES).next_multiple_of(PAGE_SIZE),
            leak_overflow_chunks: config.defect("leak-overflow-chunks"),
        }
    }

    fn op_name(op: &BumpOp) -> &'static str {
        match op {
            BumpOp::Create { .. } => "create",
            BumpOp::Alloc { .. } => "alloc",
            BumpOp::Reset { .. } => "reset",
            BumpOp::Destroy { .. } => "destroy",
        }
    }

    /// Hand-written scenarios may only use arenas an earlier op created; at run time an op on a
    /// missing arena is a no-op, so generated op sequences stay meaningful.
    /// `validate_op` rather than `validate`, so that a refusal names the field at fault and a
    /// file's error points at its value (`arena = 0`) rather than at the whole op.
    fn validate_op(op: &BumpOp, names: &mut Names) -> Result<(), OpRefusal> {
        match op {
            BumpOp::Create { arena } => names.define("arena", arena % ARENAS),
            BumpOp::Alloc { arena, .. } | BumpOp::Reset { arena } | BumpOp::Destroy { arena } => {
                names
                    .require("arena", arena % ARENAS, "arena")
                    .map_err(OpRefusal::of_field("arena"))?
            }
        }
        Ok(())
    }

    /// What ends every generated lifecycle: destroy each arena created so far, as a program that
    /// cleans up would. Without it a random op sequence that leaves an arena alive would read as
    /// a leak of the allocator (`sim sweep --subject bump-allocator`, `gen:` one-liners).
    fn closing_ops(names: &Names) -> Vec<BumpOp> {
        (0..ARENAS)
            .filter(|arena| names.is_defined("arena", arena))
            .map(|arena| BumpOp::Destroy { arena })
            .collect()
    }

    fn apply(&mut self, os: &mut Os, _tid: Tid, op: &BumpOp) -> Step<Self> {
        match *op {
            BumpOp::Create { arena } => {
                let arena = arena % ARENAS;
                if !self.arenas.contains_key(&arena) {
                    // A failed reservation (an injected fault) leaves no arena: nothing to undo.
                    if let Some(chunk) = self.new_chunk(os) {
                        self.arenas.insert(arena, vec![chunk]);
                    }
                }
            }
            BumpOp::Alloc { arena, bytes } => self.alloc(os, arena % ARENAS, u64::from(bytes)),
            BumpOp::Reset { arena } => self.reset(os, arena % ARENAS),
            BumpOp::Destroy { arena } => self.destroy(os, arena % ARENAS),
        }
        Step::Done
    }

    /// What must hold after every lifecycle: no chunk hands out more than it has committed.
    fn check_invariants(&self, _os: &Os) -> Vec<String> {
        let mut violations = Vec::new();
        for (arena, chunks) in &self.arenas {
            for chunk in chunks {
                if chunk.used_bytes > chunk.committed_bytes || chunk.used_bytes > self.chunk_bytes {
                    violations.push(format!(
                        "arena {arena}: chunk at {:#x} uses {} B but has {} B committed",
                        chunk.base, chunk.used_bytes, chunk.committed_bytes
                    ));
                }
            }
        }
        violations
    }
}

impl BumpAllocator {
    fn new_chunk(&mut self, os: &mut Os) -> Option<Chunk> {
        let base = os
            .reserve(self.chunk_bytes, PAGE_SIZE, "bump_chunk_reserve")
            .ok()?;
        Some(Chunk {
            base,
            used_bytes: 0,
            committed_bytes: 0,
        })
    }

    fn alloc(&mut self, os: &mut Os, arena: u8, bytes: u64) {
        let size = bytes
            .max(1)
            .next_multiple_of(ALIGN_BYTES)
            .min(self.chunk_bytes);
        let Some(chunks) = self.arenas.get(&arena) else {
            return;
        };
        let full = chunks
            .last()
            .is_none_or(|chunk| chunk.used_bytes + size > self.chunk_bytes);
        if full {
            let Some(chunk) = self.new_chunk(os) else {
                return;
            };
            self.arenas.get_mut(&arena).expect("checked").push(chunk);
        }
        let chunk = self
            .arenas
            .get_mut(&arena)
            .and_then(|chunks| chunks.last_mut())
            .expect("an arena has a chunk");
        let end = chunk.used_bytes + size;
        if end > chunk.committed_bytes {
            // Commit whole pages up to the end of the new block.
            let commit_end = end.next_multiple_of(PAGE_SIZE);
            let commit_from = chunk.base + chunk.committed_bytes;
            if os
                .commit(
                    commit_from,
                    commit_end - chunk.committed_bytes,
                    "bump_commit",
                )
                .is_err()
            {
                return;
            }
            chunk.committed_bytes = commit_end;
        }
        let block = chunk.base + chunk.used_bytes;
        chunk.used_bytes = end;
        // A header with the block's size: a checked write, so writing outside committed memory
        // would be a `fault` finding.
        let _ = os.write_u64(block, size, "bump_alloc");
    }

    fn reset(&mut self, os: &mut Os, arena: u8) {
        let Some(chunks) = self.arenas.get_mut(&arena) else {
            return;
        };
        for overflow in chunks.drain(1..) {
            let _ = os.release(overflow.base, self.chunk_bytes, "bump_reset");
        }
        if let Some(first) = chunks.first_mut() {
            if first.committed_bytes > 0 {
                let _ = os.decommit(first.base, first.committed_bytes, "bump_reset");
            }
            first.used_bytes = 0;
            first.committed_bytes = 0;
        }
    }

    fn destroy(&mut self, os: &mut Os, arena: u8) {
        let Some(chunks) = self.arenas.remove(&arena) else {
            return;
        };
        // The defect: only the first chunk goes back; the overflow chunks stay reserved (and
        // committed) with nothing pointing at them.
        let released = if self.leak_overflow_chunks {
            1
        } else {
            chunks.len()
        };
        for chunk in chunks.iter().take(released) {
            let _ = os.release(chunk.base, self.chunk_bytes, "bump_destroy");
        }
    }
}

/// A scenario that makes arenas overflow their first chunk, then destroys them, 20 times. The same
/// file runs through the CLI: `cargo run --example bump_allocator -- run sim/examples/bump_allocator.toml`.
pub const SCENARIO: &str = include_str!("bump_allocator.toml");

/// The registry the `sim` CLI runs with: the built-in subjects plus this one.
pub fn registry() -> Registry {
    Registry::builtin().with(erase::<BumpAllocator>())
}

/// Runs `SCENARIO` through the runner with its defect, and again with every defect off.
pub fn demo() -> (Outcome, Outcome) {
    let scenario = sim::scenario::parse::parse::<BumpAllocator>("arena-overflow.toml", SCENARIO)
        .unwrap_or_else(|diagnostic| panic!("{diagnostic}"));
    let with_defect = sim::runner::run::<BumpAllocator>(&scenario, RunOptions::default());
    let without = sim::runner::run::<BumpAllocator>(
        &scenario,
        RunOptions {
            defects: Some(vec![]),
            ..RunOptions::default()
        },
    );
    (with_defect, without)
}

fn main() {
    // With arguments this program is the `sim` CLI, with the bump allocator registered: every
    // command (run, replay, shrink, list) works on its scenarios.
    if std::env::args_os().len() > 1 {
        std::process::exit(sim::cli::main_with(registry()));
    }
    let (with_defect, without) = demo();
    print!(
        "{}",
        sim::report::render_header(&with_defect.header, "arena-overflow.toml")
    );
    for finding in &with_defect.findings {
        print!(
            "{}",
            sim::report::render_finding(
                finding,
                &with_defect,
                "cargo run --example bump_allocator -- run sim/examples/bump_allocator.toml"
            )
        );
    }
    print!("{}", sim::report::render_summary(&with_defect));
    println!("\nwith --no-defects:");
    print!("{}", sim::report::render_summary(&without));
}
