//! Rules of the virtual OS seen from outside, as a subject sees them: injected faults (what they
//! return, that they are trace events, that nothing is acquired), every limit as a `budget`
//! finding that names it, and exit hooks left pointing into an unloaded module.

use sim::faults::{FaultKind, FaultPlan};
use sim::findings::FindingKind;
use sim::os::{Errno, Limits, LockKind, Os, PAGE_SIZE, PlatformModel};
use sim::sched::{Scheduler, StrategyChoice};
use sim::trace::MemorySink;

fn os_with(plan: FaultPlan, limits: Limits) -> Os {
    Os::new(
        Scheduler::new(1, &StrategyChoice::Random, plan),
        limits,
        PlatformModel::default(),
    )
}

fn always(kind: FaultKind) -> FaultPlan {
    FaultPlan::none().with(kind, 1_000_000)
}

fn kind_count(os: &Os, name: &str) -> u64 {
    let kind = os.resources().kind_by_name(name).unwrap();
    os.resources().total(kind).count
}

/// An OS under `limits` with a directory `/data` open, and the flags that create and write a
/// file in it: where the file-size budget tests write.
fn os_with_data_dir(limits: Limits) -> (Os, sim::os::Fd, sim::os::fds::OpenFlags) {
    let mut os = os_with(FaultPlan::none(), limits);
    os.mkdir("/data", "setup").unwrap();
    let dir = os.open_dir("/data", "setup").unwrap();
    let flags = sim::os::fds::OpenFlags {
        write: true,
        create: true,
        ..Default::default()
    };
    (os, dir, flags)
}

fn budget_signatures(os: &Os) -> Vec<String> {
    os.findings()
        .iter()
        .filter(|f| f.kind == FindingKind::Budget)
        .map(|f| f.signature())
        .collect()
}

#[test]
fn an_injected_spawn_failure_is_eagain_a_trace_event_and_spawns_nothing() {
    let mut os = os_with(always(FaultKind::Spawn), Limits::default());
    let lines = MemorySink::default();
    os.trace().attach_sink(Box::new(lines.clone()));
    assert_eq!(os.spawn_thread("worker", "pool_grow"), Err(Errno::Eagain));
    assert_eq!(kind_count(&os, "thread"), 0, "no thread was acquired");
    let injected = os.injected_faults();
    assert_eq!(injected.len(), 1);
    assert_eq!(injected[0].0, FaultKind::Spawn);
    assert_eq!(injected[0].1.site, "pool_grow");
    let text = lines.take_text();
    assert!(text.contains(r#""ev":"fault""#), "{text}");
    assert!(!text.contains("threads.spawn"), "{text}");
    // Without the fault the same call spawns, and the trace says so instead.
    let mut clean = os_with(FaultPlan::none(), Limits::default());
    assert!(clean.spawn_thread("worker", "pool_grow").is_ok());
    assert!(clean.injected_faults().is_empty());
    assert_ne!(clean.trace().hash(), os.trace().hash());
}

#[test]
fn injected_reserve_and_commit_failures_are_enomem_and_acquire_nothing() {
    let mut os = os_with(always(FaultKind::Reserve), Limits::default());
    assert_eq!(
        os.reserve(PAGE_SIZE, 0, "segment_alloc"),
        Err(Errno::Enomem)
    );
    assert_eq!(kind_count(&os, "reservation"), 0);
    assert_eq!(os.injected_faults()[0].0, FaultKind::Reserve);

    let mut os = os_with(always(FaultKind::Commit), Limits::default());
    let base = os.reserve(4 * PAGE_SIZE, 0, "segment_alloc").unwrap();
    assert_eq!(
        os.commit(base, 4 * PAGE_SIZE, "segment_commit"),
        Err(Errno::Enomem)
    );
    assert_eq!(kind_count(&os, "committed pages"), 0);
    assert_eq!(os.injected_faults()[0].0, FaultKind::Commit);
    assert!(
        os.read_u64(base, "touch").is_err(),
        "a failed commit leaves the pages reserved, and touching them is a fault"
    );
    assert!(os.findings().iter().any(|f| f.kind == FindingKind::Fault));
    // A fault kind that is not planned never fires.
    let mut os = os_with(always(FaultKind::Commit), Limits::default());
    for _ in 0..100 {
        let base = os.reserve(PAGE_SIZE, 0, "r").unwrap();
        os.release(base, PAGE_SIZE, "r").unwrap();
    }
    assert!(os.injected_faults().is_empty());
}

#[test]
fn every_limit_is_a_budget_finding_that_names_it() {
    let limits = Limits {
        reservations_max: 2,
        pages_committed_max: 4,
        objects_max: 3,
        threads_max: 1,
        ..Limits::default()
    };

    let mut os = os_with(FaultPlan::none(), limits.clone());
    os.reserve(PAGE_SIZE, 0, "chunk").unwrap();
    os.reserve(PAGE_SIZE, 0, "chunk").unwrap();
    assert_eq!(os.reserve(PAGE_SIZE, 0, "chunk"), Err(Errno::Enomem));
    assert_eq!(
        budget_signatures(&os),
        vec!["budget:reservations_max:chunk"]
    );

    let mut os = os_with(FaultPlan::none(), limits.clone());
    let base = os.reserve(8 * PAGE_SIZE, 0, "chunk").unwrap();
    os.commit(base, 4 * PAGE_SIZE, "grow").unwrap();
    assert_eq!(
        os.commit(base + 4 * PAGE_SIZE, PAGE_SIZE, "grow"),
        Err(Errno::Enomem)
    );
    assert_eq!(
        budget_signatures(&os),
        vec!["budget:pages_committed_max:grow"]
    );

    let mut os = os_with(FaultPlan::none(), limits.clone());
    for _ in 0..3 {
        os.malloc(8, "node").unwrap();
    }
    assert_eq!(os.malloc(8, "node"), Err(Errno::Enomem));
    assert!(os.lock_create(LockKind::Mutex, "lock_init").is_err());
    let budgets = budget_signatures(&os);
    assert!(
        budgets.contains(&"budget:objects_max:node".to_string()),
        "{budgets:?}"
    );
    assert!(
        budgets.iter().all(|s| s.starts_with("budget:objects_max:")),
        "{budgets:?}"
    );

    let mut os = os_with(FaultPlan::none(), limits.clone());
    os.spawn_thread("a", "spawn").unwrap();
    assert_eq!(os.spawn_thread("b", "spawn"), Err(Errno::Eagain));
    assert_eq!(budget_signatures(&os), vec!["budget:threads_max:spawn"]);

    let mut os = os_with(FaultPlan::none(), Limits::default());
    for _ in 0..sim::os::tls::TLS_KEYS_MAX {
        os.tls_key_create(None, "key_create").unwrap();
    }
    assert_eq!(os.tls_key_create(None, "key_create"), Err(Errno::Eagain));
    assert_eq!(
        budget_signatures(&os),
        vec!["budget:tls_keys_max:key_create"]
    );

    // Under every limit, nothing of the kind.
    let mut os = os_with(FaultPlan::none(), limits);
    os.reserve(PAGE_SIZE, 0, "chunk").unwrap();
    os.malloc(8, "node").unwrap();
    os.spawn_thread("a", "spawn").unwrap();
    assert!(budget_signatures(&os).is_empty());
}

#[test]
fn an_exit_hook_left_in_an_unloaded_module_is_reported_and_one_in_the_main_program_is_not() {
    let mut os = Os::for_tests(1);
    let module = os.load_module("libplugin.so", 4096, "dlopen").unwrap();
    let hook = os.module_code(module, 64, "plugin_init");
    os.atexit(hook, 0, "plugin_init");
    os.unload_module(module, "dlclose").unwrap();
    let findings = os.take_findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].resource, "dangling exit hook");
    assert_eq!(findings[0].kind, FindingKind::Invariant);
    assert!(
        findings[0].headline.contains("libplugin.so"),
        "{}",
        findings[0].headline
    );

    // A hook in the main program survives any unload.
    let mut os = Os::for_tests(1);
    let module = os.load_module("libplugin.so", 4096, "dlopen").unwrap();
    os.atexit(sim::os::modules::MAIN_CODE, 0, "main_init");
    os.unload_module(module, "dlclose").unwrap();
    assert!(os.findings().is_empty(), "{:?}", os.findings());
}

#[test]
fn a_file_written_past_file_bytes_max_is_efbig_and_a_budget_finding() {
    let limits = Limits {
        file_bytes_max: 1 << 20,
        ..Limits::default()
    };
    let (mut os, dir, flags) = os_with_data_dir(limits);
    let file = os.open_at(dir, "log", flags, "setup").unwrap();
    assert_eq!(
        os.pwrite(file, &[1u8; 4096], (1 << 20) - 4096, "append"),
        Ok(4096)
    );
    assert!(budget_signatures(&os).is_empty(), "up to the limit is fine");
    // A write at a huge offset would otherwise make the simulation allocate the hole.
    assert_eq!(
        os.pwrite(file, b"x", u64::MAX / 2, "append"),
        Err(Errno::Efbig)
    );
    assert_eq!(budget_signatures(&os), vec!["budget:file_bytes_max:append"]);
}

/// Files are the host's memory: many files, each under `file_bytes_max`, must not add up past
/// `fs_bytes_max` (a 1.6 MB wasi-runtime scenario filling one file after another used to make
/// the process abort on a failed allocation). Truncating a file gives its bytes back; unlinking
/// does not, as the open description keeps them.
#[test]
fn files_written_past_fs_bytes_max_together_are_enospc_and_a_budget_finding() {
    let limits = Limits {
        file_bytes_max: 1 << 20,
        fs_bytes_max: 3 << 20,
        ..Limits::default()
    };
    let (mut os, dir, flags) = os_with_data_dir(limits);
    let chunk = vec![7u8; 1 << 20];
    for name in ["a", "b", "c"] {
        let file = os.open_at(dir, name, flags, "setup").unwrap();
        assert_eq!(os.pwrite(file, &chunk, 0, "fill"), Ok(1 << 20));
        // Rewriting what a file holds takes no more room.
        assert_eq!(os.pwrite(file, &chunk, 0, "fill"), Ok(1 << 20));
        if name != "c" {
            os.unlink_at(dir, name, "setup").unwrap();
        }
    }
    assert!(budget_signatures(&os).is_empty(), "up to the limit is fine");
    let file = os.open_at(dir, "d", flags, "setup").unwrap();
    assert_eq!(os.pwrite(file, b"x", 0, "fill"), Err(Errno::Enospc));
    assert_eq!(budget_signatures(&os), vec!["budget:fs_bytes_max:fill"]);
    // A truncated file's bytes are free again; the unlinked ones' are not.
    let truncate = sim::os::fds::OpenFlags {
        truncate: true,
        ..flags
    };
    os.open_at(dir, "c", truncate, "setup").unwrap();
    assert_eq!(os.pwrite(file, &chunk, 0, "fill"), Ok(1 << 20));
    assert_eq!(os.pwrite(file, b"x", 1 << 20, "fill"), Err(Errno::Efbig));
    let new_a = os.open_at(dir, "a", flags, "setup").unwrap();
    assert_eq!(os.pwrite(new_a, b"x", 0, "fill"), Err(Errno::Enospc));
}

/// A subject untracks only what it tracked. A second untrack is an invariant finding, and so is an
/// untrack of a record the OS holds for itself (here a reservation's, its id forged from the
/// ledger): the OS releases its own records without testing them again, so accepting it would
/// have the ledger count the reservation's release twice. Neither refusal changes the ledger.
#[test]
fn untrack_refuses_a_stale_record_and_one_the_os_holds_for_itself() {
    let mut os = os_with(FaultPlan::none(), Limits::default());
    let ids = os.register_kind("ids", false);
    let id = os.track(ids, 0, 0, "track");
    os.untrack(id, "untrack");
    assert!(os.findings().is_empty());
    os.untrack(id, "untrack again");
    assert_eq!(os.findings().len(), 1);
    assert!(os.findings()[0].headline.contains("that is not live"));

    let base = os.reserve(PAGE_SIZE, PAGE_SIZE, "reserve").unwrap();
    assert_eq!(os.resources().live_records(), 1);
    let reservations_record = (0..4)
        .flat_map(|index| (0..4).map(move |generation| sim::os::RecordId { index, generation }))
        .find(|&record| os.resources().get(record).is_some())
        .expect("the reservation's record is the one live record");
    os.untrack(reservations_record, "forged");
    assert_eq!(os.findings().len(), 2);
    assert_eq!(os.findings()[1].kind, FindingKind::Invariant);
    assert!(os.findings()[1].headline.contains("the OS's own"));
    assert_eq!(
        os.resources().live_records(),
        1,
        "the refusal released nothing"
    );
    os.release(base, PAGE_SIZE, "release").unwrap();
    assert_eq!(os.resources().live_records(), 0);
    assert_eq!(kind_count(&os, "reservation"), 0);
    assert_eq!(os.findings().len(), 2);
}
