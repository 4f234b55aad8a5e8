//! `make bench`: each ratio measured side by side with its peer in the same run.
//!
//! Every metric alternates rounds of our side and the peer's (so drift on a shared, noisy machine
//! hits both) and takes the median round. Each entry also says how steady its rounds were, and the
//! run ends with a note for each metric one of whose sides was uneven. Results merge into
//! `target/bench/results.json` (DESIGN.md format: metric → {value, unit, peer, peer_value, ratio};
//! ratio > 1 means we are faster). Timed assertions do not belong in tests; these are
//! measurements, not checks.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};
use sim::ledger;
use sim::os::{Io, LockKind, Os, Tid};

const ROUNDS: usize = 9;

/// `ROUNDS` rounds of `ours_iterations` of `ours`, each followed by `peer_iterations` of `peer`:
/// nanoseconds per iteration of each side, round by round. The two counts differ where one side
/// is hundreds of times faster: a round of ours must last milliseconds too, or one stall of the
/// shared machine (or the host's deferred work after the peer's round) decides its figure.
fn side_by_side(
    ours_iterations: u64,
    peer_iterations: u64,
    mut ours: impl FnMut(),
    mut peer: impl FnMut(),
) -> (Rounds, Rounds) {
    let mut ours_ns = Vec::new();
    let mut peer_ns = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..ours_iterations {
            ours();
        }
        ours_ns.push(start.elapsed().as_nanos() as f64 / ours_iterations as f64);
        let start = Instant::now();
        for _ in 0..peer_iterations {
            peer();
        }
        peer_ns.push(start.elapsed().as_nanos() as f64 / peer_iterations as f64);
    }
    (Rounds(ours_ns), Rounds(peer_ns))
}

/// One side's figure in each round, in the order the rounds ran.
struct Rounds(Vec<f64>);

impl Rounds {
    fn median(&self) -> f64 {
        let mut values = self.0.clone();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    fn rounded(&self) -> Vec<f64> {
        self.0.iter().copied().map(round).collect()
    }

    /// Slowest round over fastest: near 1 on a quiet machine for steady work. A ratio taken
    /// against a side whose rounds spread wide is not steady (see `uneven`).
    fn spread(&self) -> f64 {
        let fastest = self.0.iter().copied().fold(f64::INFINITY, f64::min);
        let slowest = self.0.iter().copied().fold(0.0, f64::max);
        slowest / fastest
    }
}

/// The DESIGN.md entry (value, unit, peer, peer_value, ratio), plus what says how far to trust
/// it: `rounds`, each side's figure in each round, in the order they ran (`round_values`,
/// `peer_round_values`), each side's `spread` (`spread`, `peer_spread`), and with a peer the
/// lowest and highest ratio of one round of ours to the peer's round that followed it
/// (`ratio_rounds`).
fn metric(ours: &Rounds, unit: &str, peer: Option<(&str, &Rounds)>) -> Value {
    let value = ours.median();
    let mut entry = json!({
        "value": round(value), "unit": unit, "peer": Value::Null, "peer_value": Value::Null,
        "ratio": Value::Null, "rounds": ours.0.len(), "spread": round(ours.spread()),
        "round_values": ours.rounded(),
    });
    if let Some((name, peer_rounds)) = peer {
        let peer_value = peer_rounds.median();
        let per_round = ours.0.iter().zip(&peer_rounds.0).map(|(o, p)| p / o);
        let lowest = per_round.clone().fold(f64::INFINITY, f64::min);
        let highest = per_round.fold(0.0, f64::max);
        entry["peer"] = json!(name);
        entry["peer_value"] = json!(round(peer_value));
        // For times, we are faster when our value is smaller.
        entry["ratio"] = json!(round(peer_value / value));
        entry["peer_spread"] = json!(round(peer_rounds.spread()));
        entry["peer_round_values"] = json!(peer_rounds.rounded());
        entry["ratio_rounds"] = json!([round(lowest), round(highest)]);
    }
    entry
}

/// A side whose slowest round took this much longer than its fastest is uneven.
const SPREAD_UNEVEN: f64 = 1.25;

/// Lines that name each metric with an uneven side, for the end of the run. Most often the
/// machine was busy for part of the run (a peer slowed more than ours reads as a better ratio
/// than a quiet run gives; a load steady over all the rounds slows them alike and does not show
/// here). A first round in which lists grow is slower than the rest: the scheduler's read 83–106 ns
/// against about 29 in the README's three runs.
fn uneven(results: &BTreeMap<String, Value>) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, entry) in results {
        for (key, side) in [("spread", "our"), ("peer_spread", "the peer's")] {
            if let Some(spread) = entry[key].as_f64()
                && spread > SPREAD_UNEVEN
            {
                lines.push(format!(
                    "note: {name}: {side} slowest round took {spread:.2}× its fastest; compare its figures over a few runs before trusting them"
                ));
            }
        }
    }
    lines
}

/// What `cargo test --benches` checks of this file: an entry's figures from known rounds, and the
/// note that names an uneven side. No timing is involved.
fn check_entries() {
    let ours = Rounds(vec![2.0, 1.0, 4.0]);
    let peer = Rounds(vec![20.0, 10.0, 20.0]);
    assert_eq!(ours.median(), 2.0);
    assert_eq!(ours.spread(), 4.0);
    let entry = metric(&ours, "ns/op", Some(("peer", &peer)));
    assert_eq!(entry["value"], json!(2.0));
    assert_eq!(entry["peer_value"], json!(20.0));
    assert_eq!(entry["ratio"], json!(10.0));
    assert_eq!(entry["peer_spread"], json!(2.0));
    // Round by round: 20/2, 10/1, 20/4.
    assert_eq!(entry["ratio_rounds"], json!([5.0, 10.0]));
    assert_eq!(entry["round_values"], json!([2.0, 1.0, 4.0]));
    assert_eq!(entry["peer_round_values"], json!([20.0, 10.0, 20.0]));
    let steady = metric(&Rounds(vec![1.0, 1.1, 1.2]), "ns", None);
    assert_eq!(steady["peer"], Value::Null);
    let results = BTreeMap::from([("busy".to_string(), entry), ("quiet".to_string(), steady)]);
    let notes = uneven(&results);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().all(|note| note.starts_with("note: busy: ")));
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn native_mmap_munmap(len: usize) {
    // SAFETY: an anonymous private mapping, unmapped at once; nothing else refers to it.
    unsafe {
        let ptr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(ptr, libc::MAP_FAILED);
        libc::munmap(black_box(ptr), len);
    }
}

fn pages(results: &mut BTreeMap<String, Value>) {
    for (name, len) in [
        ("page_map_unmap_vs_native_mmap", 4096u64),
        ("page_map_unmap_64k_vs_native_mmap", 64 * 1024),
    ] {
        let mut os = Os::for_tests(1);
        let (ours, native) = side_by_side(
            100_000,
            100_000,
            || {
                let base = os.reserve(len, 0, "bench").unwrap();
                os.commit(base, len, "bench").unwrap();
                os.release(black_box(base), len, "bench").unwrap();
            },
            || native_mmap_munmap(len as usize),
        );
        results.insert(
            name.into(),
            metric(&ours, "ns/op", Some(("mmap+munmap (libc)", &native))),
        );
    }
}

fn lifecycle_check(results: &mut BTreeMap<String, Value>) {
    let mut os = Os::for_tests(1);
    for _ in 0..100_000 {
        os.malloc(32, "live").unwrap();
    }
    let iterations = 200_000u64;
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..iterations {
            let baseline = ledger::baseline(black_box(&os));
            black_box(ledger::grown_kinds(&os, &baseline));
        }
        rounds.push(start.elapsed().as_nanos() as f64 / iterations as f64);
    }
    assert_eq!(os.resources().live_records(), 100_000);
    results.insert(
        "lifecycle_check_ns".into(),
        metric(&Rounds(rounds), "ns", None),
    );
}

fn locks(results: &mut BTreeMap<String, Value>) {
    let mut os = Os::for_tests(1);
    let (ours, native) = side_by_side(
        200_000,
        200_000,
        || {
            let lock = os.lock_create(LockKind::RwLock, "bench").unwrap();
            os.lock_destroy(black_box(lock), "bench").unwrap();
        },
        || {
            // SAFETY: the rwlock lives on this stack frame between init and destroy only.
            unsafe {
                let mut lock: libc::pthread_rwlock_t = std::mem::zeroed();
                libc::pthread_rwlock_init(&mut lock, std::ptr::null());
                libc::pthread_rwlock_destroy(black_box(&mut lock));
            }
        },
    );
    results.insert(
        "lock_create_destroy_vs_native_rwlock".into(),
        metric(
            &ours,
            "ns/op",
            Some(("pthread_rwlock_init+destroy", &native)),
        ),
    );
}

fn pipes(results: &mut BTreeMap<String, Value>) {
    let mut os = Os::for_tests(1);
    let main = Tid(0);
    let (reader, writer) = os.pipe("bench").unwrap();
    let mut fds = [0i32; 2];
    // SAFETY: a plain pipe(2) into a two-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut byte = [0u8; 1];
    let mut native_byte = [0u8; 1];
    let (ours, native) = side_by_side(
        200_000,
        200_000,
        || {
            assert_eq!(os.fd_write(main, writer, b"x", "bench"), Io::Ready(Ok(1)));
            assert_eq!(
                os.fd_read(main, reader, black_box(&mut byte), "bench"),
                Io::Ready(Ok(1))
            );
        },
        || {
            // SAFETY: both fds are the pipe created above; the buffer is one valid byte.
            unsafe {
                assert_eq!(libc::write(fds[1], b"x".as_ptr().cast(), 1), 1);
                assert_eq!(
                    libc::read(fds[0], black_box(&mut native_byte).as_mut_ptr().cast(), 1),
                    1
                );
            }
        },
    );
    // SAFETY: closing the two fds this function opened.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    results.insert(
        "pipe_write_read_vs_native_pipe".into(),
        metric(&ours, "ns/op", Some(("pipe write+read (libc)", &native))),
    );
}

extern "C" fn native_thread_body(_: *mut libc::c_void) -> *mut libc::c_void {
    std::ptr::null_mut()
}

/// Threads one simulated OS spawns (and joins) in the spawn+join benchmark before a fresh OS takes
/// its place. A tid is never reused, so one OS for every iteration would hold 1.8 million thread
/// entries by the last round, and the rounds would time the growth of that table; a run of a
/// scenario spawns a few. Making the fresh OS is timed with the rest.
const THREADS_PER_OS: u32 = 1_000;

fn threads(results: &mut BTreeMap<String, Value>) {
    let mut os = Some(Os::for_tests(1));
    let mut spawned = 0;
    let main = Tid(0);
    let (ours, native) = side_by_side(
        200_000,
        2_000,
        || {
            if spawned == THREADS_PER_OS {
                // The old OS goes first, so that the new one is made in its lists (`Os::new`).
                os = None;
                spawned = 0;
            }
            spawned += 1;
            let os = os.get_or_insert_with(|| Os::for_tests(1));
            let tid = os.spawn_thread("bench", "bench").unwrap();
            os.exit_thread(tid, "bench");
            assert_eq!(os.join(main, black_box(tid), "bench"), Io::Ready(Ok(())));
        },
        || {
            // SAFETY: the thread body does nothing and is joined before the handle goes away.
            unsafe {
                let mut handle: libc::pthread_t = std::mem::zeroed();
                assert_eq!(
                    libc::pthread_create(
                        &mut handle,
                        std::ptr::null(),
                        native_thread_body,
                        std::ptr::null_mut()
                    ),
                    0
                );
                libc::pthread_join(handle, std::ptr::null_mut());
            }
        },
    );
    results.insert(
        "thread_spawn_join_vs_native_pthread".into(),
        metric(&ours, "ns/op", Some(("pthread_create+join", &native))),
    );
}

/// Merges `fresh` into the results file, keeping metrics other benchmarks wrote (and refusing,
/// rather than replacing, a file it cannot read: `sim::sweep::measure::merge_metrics`).
pub fn merge_results(fresh: BTreeMap<String, Value>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/results.json");
    if let Err(problem) = sim::sweep::measure::merge_metrics(&path, fresh) {
        eprintln!("bench: {problem}");
        std::process::exit(2);
    }
    println!("wrote {}", path.display());
}

mod sched_workload {
    //! The workload both schedulers run: 3 threads each doing 100 lock/unlock increments of a
    //! shared counter, plus one channel handoff, under a random strategy.

    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;

    use arbitrary::Arbitrary;
    use serde::{Deserialize, Serialize};
    use sim::os::{BlockReason, Io, LockId, LockKind, Os, Tid};
    use sim::registry::{DynScenario, Registry, erase};
    use sim::runner::RunOptions;
    use sim::subject::{Config, Step, Subject, SubjectInfo};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Arbitrary)]
    #[serde(tag = "op", rename_all = "kebab-case")]
    pub enum Op {
        Lock,
        IncrementUnlock,
        Send,
        Recv,
    }

    pub struct Workload {
        lock: LockId,
        counter: u64,
        channel: Option<u64>,
        receiver: Option<Tid>,
    }

    const CHANNEL: BlockReason = BlockReason::Subject {
        what: "channel",
        id: 0,
    };

    impl Workload {
        fn lock(&mut self, os: &mut Os, tid: Tid) -> Step<Self> {
            match os.lock_acquire(tid, self.lock, "bench_lock") {
                Io::Block(reason) => {
                    Step::block(reason, |w: &mut Workload, os, tid| w.lock(os, tid))
                }
                Io::Ready(_) => Step::Done,
            }
        }

        fn recv(&mut self, tid: Tid) -> Step<Self> {
            match self.channel.take() {
                Some(_) => Step::Done,
                None => {
                    self.receiver = Some(tid);
                    Step::block(CHANNEL, |w: &mut Workload, _, tid| w.recv(tid))
                }
            }
        }
    }

    impl Subject for Workload {
        type Op = Op;

        fn info() -> SubjectInfo {
            SubjectInfo {
                name: "sched-bench",
                summary: "scheduler benchmark workload",
                ops: vec![],
                defects: vec![],
                caches: vec![],
                params: vec![],
                host_backed: false,
            }
        }

        fn new(os: &mut Os, _: &Config) -> Self {
            let lock = os.lock_create(LockKind::Mutex, "bench_lock").unwrap();
            Workload {
                lock,
                counter: 0,
                channel: None,
                receiver: None,
            }
        }

        fn op_name(_: &Op) -> &'static str {
            "bench"
        }

        fn apply(&mut self, os: &mut Os, tid: Tid, op: &Op) -> Step<Self> {
            match op {
                Op::Lock => self.lock(os, tid),
                Op::IncrementUnlock => {
                    self.counter += 1;
                    os.lock_release(tid, self.lock, "bench_unlock").unwrap();
                    Step::Done
                }
                Op::Send => {
                    self.channel = Some(1);
                    if let Some(receiver) = self.receiver.take() {
                        os.unblock(receiver, &CHANNEL, "bench_send");
                    }
                    Step::Done
                }
                Op::Recv => self.recv(tid),
            }
        }
    }

    pub fn scenario() -> Box<dyn DynScenario> {
        let increments = "{ op = \"lock\" }, { op = \"increment-unlock\" }, ".repeat(100);
        let mut text = String::from(
            "name = \"sched-bench\"\nsubject = \"sched-bench\"\n[[lifecycle]]\nname = \"run\"\n",
        );
        text += "ops = [{ op = \"spawn\", thread = \"a\" }, { op = \"spawn\", thread = \"b\" }, { op = \"spawn\", thread = \"c\" }, { op = \"recv\" }, { op = \"join\", thread = \"a\" }, { op = \"join\", thread = \"b\" }, { op = \"join\", thread = \"c\" }]\n";
        for (name, extra) in [("a", "{ op = \"send\" }"), ("b", ""), ("c", "")] {
            text +=
                &format!("[[lifecycle.thread]]\nname = \"{name}\"\nops = [{increments}{extra}]\n");
        }
        Registry::empty()
            .with(erase::<Workload>())
            .parse("sched-bench.toml", &text)
            .unwrap()
    }

    /// One execution of ours: (nanoseconds, scheduling decisions among two or more threads).
    pub fn ours(scenario: &dyn DynScenario, seed: u64) -> (u64, u64) {
        let start = std::time::Instant::now();
        // The schedule is not recorded: the outcome counts the decisions anyway.
        let outcome = scenario.run(RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        });
        let elapsed = start.elapsed().as_nanos() as u64;
        assert!(outcome.passed(), "{:?}", outcome.findings);
        (elapsed, outcome.decisions)
    }

    /// Counts shuttle's scheduling decisions among two or more runnable tasks.
    struct Counting {
        inner: shuttle::scheduler::RandomScheduler,
        decisions: Rc<Cell<u64>>,
    }

    impl shuttle::scheduler::Scheduler for Counting {
        fn new_execution(&mut self) -> Option<shuttle::scheduler::Schedule> {
            self.inner.new_execution()
        }
        fn next_task(
            &mut self,
            runnable: &[&shuttle::scheduler::Task],
            current: Option<shuttle::scheduler::TaskId>,
            yielding: bool,
        ) -> Option<shuttle::scheduler::TaskId> {
            if runnable.len() > 1 {
                self.decisions.set(self.decisions.get() + 1);
            }
            self.inner.next_task(runnable, current, yielding)
        }
        fn next_u64(&mut self) -> u64 {
            self.inner.next_u64()
        }
    }

    /// `executions` executions of shuttle: (nanoseconds, decisions among two or more tasks).
    pub fn shuttle(executions: usize, seed: u64) -> (u64, u64) {
        let decisions = Rc::new(Cell::new(0));
        let scheduler = Counting {
            inner: shuttle::scheduler::RandomScheduler::new_from_seed(seed, executions),
            decisions: decisions.clone(),
        };
        let start = std::time::Instant::now();
        shuttle::Runner::new(scheduler, shuttle::Config::default()).run(|| {
            let counter = Arc::new(shuttle::sync::Mutex::new(0u64));
            let (tx, rx) = shuttle::sync::mpsc::channel();
            let handles: Vec<_> = (0..3)
                .map(|index| {
                    let counter = counter.clone();
                    let tx = tx.clone();
                    shuttle::thread::spawn(move || {
                        for _ in 0..100 {
                            *counter.lock().unwrap() += 1;
                        }
                        if index == 0 {
                            tx.send(1u64).unwrap();
                        }
                    })
                })
                .collect();
            rx.recv().unwrap();
            for handle in handles {
                handle.join().unwrap();
            }
            assert_eq!(*counter.lock().unwrap(), 300);
        });
        (start.elapsed().as_nanos() as u64, decisions.get())
    }
}

fn scheduler(results: &mut BTreeMap<String, Value>) {
    let scenario = sched_workload::scenario();
    let mut ours = Vec::new();
    let mut peer = Vec::new();
    let (mut runs, mut decisions_total) = (0u64, 0u64);
    for round in 0..ROUNDS as u64 {
        let (mut ns, mut decisions) = (0, 0);
        for seed in 0..50 {
            let (n, d) = sched_workload::ours(scenario.as_ref(), round * 1000 + seed);
            ns += n;
            decisions += d;
        }
        runs += 50;
        decisions_total += decisions;
        ours.push(ns as f64 / decisions as f64);
        let (ns, decisions) = sched_workload::shuttle(50, round);
        peer.push(ns as f64 / decisions as f64);
    }
    results.insert(
        "sched_decision_vs_shuttle".into(),
        metric(
            &Rounds(ours),
            "ns/decision",
            Some(("shuttle 0.9 random", &Rounds(peer))),
        ),
    );
    // The divisor for an instruction count of our side (callgrind's inclusive cost of
    // `sim::runner::run_inner`): the decisions are the same on every run of this binary.
    println!("scheduler: {decisions_total} decisions in {runs} runs of ours");
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent; keep that cheap.
    if !std::env::args().any(|a| a == "--bench") {
        check_entries();
        println!("bench: run with `make bench` (the entries' arithmetic checked)");
        return;
    }
    // Other arguments name groups to run (`cargo bench -p sim --bench bench -- pages`), for
    // profiling one at a time; with none, every group runs. `--no-save` prints the figures
    // without merging them into results.json: a run under valgrind is 50 times slower, and its
    // figures must not replace those of `make bench`.
    let save = !std::env::args().any(|a| a == "--no-save");
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    type Group = fn(&mut BTreeMap<String, Value>);
    let groups: [(&str, Group); 6] = [
        ("pages", pages),
        ("lifecycle", lifecycle_check),
        ("locks", locks),
        ("threads", threads),
        ("pipes", pipes),
        ("scheduler", scheduler),
    ];
    let mut results = BTreeMap::new();
    for (name, group) in groups {
        if filters.is_empty() || filters.iter().any(|f| f == name) {
            group(&mut results);
        }
    }
    for (name, value) in &results {
        println!("{name:45} {value}");
    }
    for line in uneven(&results) {
        println!("{line}");
    }
    if save {
        merge_results(results);
    }
}
