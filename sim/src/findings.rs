//! Findings: what the checks report. Pure data here; rendering lives in `report`.
//!
//! A finding has a kind, the resource it is about, the site that acquired (or, for a fault, touched)
//! it, and the lifecycle where it was noticed. Its signature (kind + resource + site) is what sweeps
//! deduplicate on and what regression files pin, so it must not contain addresses, counts or seeds.

use serde::{Deserialize, Serialize};

/// The kinds of finding. The spellings are a contract (DESIGN.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    Leak,
    Growth,
    Fault,
    Deadlock,
    Invariant,
    Panic,
    Budget,
    Determinism,
}

impl FindingKind {
    /// Every kind, in the order DESIGN.md lists them.
    pub const ALL: [FindingKind; 8] = [
        FindingKind::Leak,
        FindingKind::Growth,
        FindingKind::Fault,
        FindingKind::Deadlock,
        FindingKind::Invariant,
        FindingKind::Panic,
        FindingKind::Budget,
        FindingKind::Determinism,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Leak => "leak",
            FindingKind::Growth => "growth",
            FindingKind::Fault => "fault",
            FindingKind::Deadlock => "deadlock",
            FindingKind::Invariant => "invariant",
            FindingKind::Panic => "panic",
            FindingKind::Budget => "budget",
            FindingKind::Determinism => "determinism",
        }
    }

    /// A fatal finding ends the run: the simulated process would have crashed or hung.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            FindingKind::Fault | FindingKind::Deadlock | FindingKind::Panic | FindingKind::Budget
        )
    }
}

/// Which op list of its lifecycle an op is in. `op #1` is the first op of its list, and the
/// setup, the repeated ops, the teardown and each declared thread all have a first op: the list
/// is what tells them apart, and what lets a report point at the op in the scenario file. A
/// spawned thread runs its declared thread's list, which `OpRef::thread_name` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpList {
    #[default]
    Setup,
    Ops,
    Teardown,
    Thread,
}

impl OpList {
    /// The list's name as a scenario file spells it (`thread` for any declared thread's).
    pub fn name(self) -> &'static str {
        match self {
            OpList::Setup => "setup",
            OpList::Ops => "ops",
            OpList::Teardown => "teardown",
            OpList::Thread => "thread",
        }
    }

    /// The list, when it runs once in its lifecycle (`setup`, `teardown`) rather than in each
    /// repetition: what an op or a finding of that list is said to be in, where one of `ops`
    /// names its repetition. `None` for `ops`, and for `thread`, which runs in whichever list
    /// spawned it.
    pub fn run_once(self) -> Option<OpList> {
        match self {
            OpList::Setup | OpList::Teardown => Some(self),
            OpList::Ops | OpList::Thread => None,
        }
    }
}

/// Which check at the end of a lifecycle noticed a finding (`Finding::lifecycle_end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleEnd {
    /// The check after the teardown, against the baseline before the setup.
    Teardown,
    /// The check of what the setup added, at the end of a lifecycle with no teardown.
    NoTeardown,
}

impl LifecycleEnd {
    /// Where, in its lifecycle, the check ran, as a report says it after the lifecycle's name:
    /// `lifecycle `l` (checked after its teardown)`.
    pub fn words(self) -> &'static str {
        match self {
            LifecycleEnd::Teardown => "checked after its teardown",
            LifecycleEnd::NoTeardown => "checked at its end",
        }
    }
}

/// The op name of a thread's exit (its TLS destructors, then the exit itself), which is no op of
/// its list: the runner names the position so, with the slot of the thread's last op (index 0
/// for a thread without ops); a report names it by the thread (`report`), and
/// `scenario::locations` places it where the file declares the thread.
pub const THREAD_EXIT_OP: &str = "thread-exit";

/// An op a report line names, as data: its lifecycle (from 0, as a finding's `lifecycle`), the
/// repetition it ran in (from 0; for an op run `during` the setup or the teardown, only the
/// first or the last repetition's number, as the runner keeps it), its list and its index in
/// that list (from 1, as `op #1` reads), its name and the thread that ran it. Enough to find the
/// op in the scenario file (`DynScenario::op_location`) without parsing the line's words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRef {
    pub lifecycle: u32,
    pub repetition: u32,
    pub list: OpList,
    pub index: u32,
    pub name: String,
    pub thread: u32,
    /// The list the lifecycle's main thread was running when the op ran, when that list runs
    /// once (`OpList::run_once`: `setup`, `teardown`): the op's own list, or for an op of a
    /// spawned thread the list that spawned it. `None` for an op of a repetition, and for a
    /// spawned thread's op where that is not known (a trace's op line names only its own list,
    /// and the spawn that started a thread of a thread is not kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<OpList>,
    /// For an op of a spawned thread (`OpList::Thread`), the declared thread it runs: the
    /// runner names it at the end of the run, from the thread's id; the last op two traces
    /// share gets it from the spawn op that started its thread (`TraceComparison::last_op_ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_name: Option<String>,
    /// Where the op is in the file, when the run's scenario was read from one (`report::locate`
    /// fills it in); a generated scenario's ops have no file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<OpLocation>,
    /// The index `i` of the op's line in the run's JSON trace, when one was written
    /// (`report::find_in_trace` fills it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_event: Option<u64>,
}

/// Where an op is in the scenario file that was run: what a report points at with `-->`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpLocation {
    pub file: String,
    /// From 1, as an editor counts them; the column counts characters.
    pub line: u32,
    pub column: u32,
}

/// Where in Rust source a panic was raised, as `std::panic::Location` gives it: the file as the
/// compiler was given it (relative to the workspace for its own crates, absolute for a
/// dependency's), the line and the column, from 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLocation {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl SourceLocation {
    pub fn of(location: &std::panic::Location<'_>) -> SourceLocation {
        SourceLocation {
            file: location.file().to_string(),
            line: location.line(),
            column: location.column(),
        }
    }
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One labelled line of a report, such as `acquired: op #2 ...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    pub label: String,
    pub text: String,
    /// The op the line names, where it names one (`acquired`, `released`, `touched`, `blocked
    /// at`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OpRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// What the finding is about: `rwlock`, `reserved bytes`, `released page`, `thread`.
    pub resource: String,
    /// The site that acquired the resource, or for a fault the site that touched memory.
    pub site: String,
    /// Index of the lifecycle (in scenario order) where the finding was noticed; meaningful only
    /// when `position_known`.
    pub lifecycle: u32,
    /// Repetition of that lifecycle's body (0-based); meaningful only when `position_known`.
    pub repetition: u32,
    /// Whether `lifecycle` and `repetition` say where the finding was noticed. A finding is made
    /// without a position (`new`) and given one by what knows where the run is (`at`: the
    /// runner, the OS serving a call). One made outside the run keeps none, and its report says
    /// that the position is not known instead of naming the first lifecycle's first repetition:
    /// the watchdog's budget, which ends a process that reported nothing. Outcomes written
    /// before this field had a position for every finding.
    #[serde(default = "position_known_before", skip_serializing_if = "is_true")]
    pub position_known: bool,
    /// Whether a check at the end of the lifecycle noticed it, after every repetition, rather
    /// than one repetition (or what ran in one): `repetition` is then the last one's, and a
    /// report says which check instead of naming that repetition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_end: Option<LifecycleEnd>,
    /// The list of its lifecycle that ran when it was noticed, when that list runs once
    /// (`OpList::run_once`: `setup`, `teardown`): `repetition` is then the first or the last
    /// one's, and a report names the list instead of that repetition. `None` in a repetition
    /// and at the end of the lifecycle (`lifecycle_end`), after its teardown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<OpList>,
    /// Noticed in the subject's `new`, before any list of the first lifecycle ran: `lifecycle`
    /// and `repetition` are then 0 without naming a repetition that ran.
    #[serde(default, skip_serializing_if = "is_false")]
    pub in_new: bool,
    /// Noticed after the subject's `new`, in a run that stopped there before any list of the
    /// first lifecycle ran (the subject's drop, at the end of a run whose `new` raised a fatal
    /// finding): `lifecycle` and `repetition` are then 0 without naming a repetition that ran.
    #[serde(default, skip_serializing_if = "is_false")]
    pub after_new: bool,
    /// One line: what went wrong.
    pub headline: String,
    pub details: Vec<Detail>,
    pub notes: Vec<String>,
    /// The resource's count at the end of each repetition, where the finding is about a trend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<u64>,
    /// For a `panic` finding, where in the subject's source the panic was raised, when a panic
    /// hook of sim's recorded it (`subject::note_panic_location`). Not part of the signature, nor
    /// of the trace: it names a file and line of one build, which an edit moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panicked_at: Option<SourceLocation>,
}

impl Finding {
    pub fn new(
        kind: FindingKind,
        resource: impl Into<String>,
        site: impl Into<String>,
        headline: impl Into<String>,
    ) -> Finding {
        Finding {
            kind,
            resource: resource.into(),
            site: site.into(),
            lifecycle: 0,
            repetition: 0,
            position_known: false,
            lifecycle_end: None,
            during: None,
            in_new: false,
            after_new: false,
            headline: headline.into(),
            details: Vec::new(),
            notes: Vec::new(),
            series: Vec::new(),
            panicked_at: None,
        }
    }

    /// A `budget` finding: `limit` (named as `[limits]` or the platform names it) ran out at
    /// `value`. Callers add the likely cause as a note.
    pub fn budget(limit: &str, value: u64, site: impl Into<String>) -> Finding {
        Finding::new(
            FindingKind::Budget,
            limit,
            site,
            format!("limit `{limit}` = {value} exhausted"),
        )
    }

    /// Where the finding was noticed: `lifecycle` (from 0, in scenario order) and its
    /// `repetition` (from 0).
    pub fn at(mut self, lifecycle: u32, repetition: u32) -> Finding {
        self.lifecycle = lifecycle;
        self.repetition = repetition;
        self.position_known = true;
        self
    }

    /// Noticed by the check `end` at the end of its lifecycle (placed with `at` in the
    /// lifecycle's last repetition), not in that repetition.
    pub fn at_end(mut self, end: LifecycleEnd) -> Finding {
        self.lifecycle_end = Some(end);
        self
    }

    /// Noticed in the subject's `new` (placed with `at` in the first lifecycle's first
    /// repetition), before any list ran.
    pub fn in_new(mut self) -> Finding {
        self.in_new = true;
        self
    }

    /// Noticed after the subject's `new` in a run that stopped before any list ran (placed with
    /// `at` in the first lifecycle's first repetition, which never ran).
    pub fn after_new(mut self) -> Finding {
        self.after_new = true;
        self
    }

    /// The part of its lifecycle it was noticed in: what a report names instead of a
    /// repetition, and whose faults the runner lists with it.
    pub fn part(&self) -> LifecyclePart {
        if self.after_new {
            return LifecyclePart::AfterNew;
        }
        match (self.in_new, self.lifecycle_end, self.during) {
            (true, _, _) => LifecyclePart::New,
            (false, Some(end), _) => LifecyclePart::End(end),
            (false, None, Some(list)) => LifecyclePart::RunOnce(list),
            (false, None, None) => LifecyclePart::Repetition,
        }
    }

    /// Noticed while the main thread ran the list `list` of its lifecycle (placed with `at`):
    /// kept when the list runs once (`OpList::run_once`), so that a report does not name a
    /// repetition for a finding of the setup or the teardown.
    pub fn during(mut self, list: OpList) -> Finding {
        self.during = list.run_once();
        self
    }

    pub fn detail(mut self, label: &str, text: impl Into<String>) -> Finding {
        self.details.push(Detail {
            label: label.into(),
            text: text.into(),
            op: None,
        });
        self
    }

    /// A detail that names an op: `text` as `detail` takes it, and the op as data, so that a
    /// report can say where the op is in the scenario file.
    pub fn detail_op(mut self, label: &str, text: impl Into<String>, op: Option<OpRef>) -> Finding {
        self.details.push(Detail {
            label: label.into(),
            text: text.into(),
            op,
        });
        self
    }

    /// The text of the first detail labelled `label`.
    pub fn detail_text(&self, label: &str) -> Option<&str> {
        self.detail_texts(label).next()
    }

    /// The texts of every detail labelled `label`, in order (a deadlock has one `blocked` per
    /// thread).
    pub fn detail_texts<'a, 'l>(
        &'a self,
        label: &'l str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'l> {
        self.details
            .iter()
            .filter(move |detail| detail.label == label)
            .map(|detail| detail.text.as_str())
    }

    /// Where the panic this finding reports was raised, when that is known: kept as data and
    /// said in a `panicked at` line.
    pub fn panicked_at(mut self, location: Option<SourceLocation>) -> Finding {
        if let Some(location) = location {
            self = self.detail("panicked at", location.to_string());
            self.panicked_at = Some(location);
        }
        self
    }

    pub fn note(mut self, text: impl Into<String>) -> Finding {
        self.notes.push(text.into());
        self
    }

    /// `kind:resource:site`; stable across seeds, addresses and counts.
    pub fn signature(&self) -> String {
        format!("{}:{}:{}", self.kind.name(), self.resource, self.site)
    }
}

/// Why `text` cannot be a finding's signature (`Finding::signature`), if it cannot: what a file
/// that pins signatures (a repro's or a regression's `[expect]`) is checked with, so that a
/// misspelt one is refused where it is written rather than reported, after the run, as a finding
/// that did not appear. Only the shape is checked, `kind:resource:site` with a kind of
/// `FindingKind`: a resource or site is whatever a subject names (a kind of its own, a label), so
/// any text, colons included, may be one.
pub fn signature_problem(text: &str) -> Option<String> {
    const SHAPE: &str = "a signature is `kind:resource:site`, as a report's `note: signature` line \
                         gives it (`leak:rwlock:fd_table_init`)";
    let Some((kind, resource_and_site)) = text.split_once(':') else {
        return Some(format!("`{text}` is not a finding signature: {SHAPE}"));
    };
    if !FindingKind::ALL.iter().any(|known| known.name() == kind) {
        let kinds: Vec<&str> = FindingKind::ALL.iter().map(|k| k.name()).collect();
        return Some(format!(
            "`{kind}` is not a kind of finding (kinds: {}); {SHAPE}",
            kinds.join(", ")
        ));
    }
    if !resource_and_site.contains(':') {
        return Some(format!("`{text}` has no site: {SHAPE}"));
    }
    None
}

/// A finding read from an outcome written before `Finding::position_known` had its position.
fn position_known_before() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The part of its lifecycle a finding was noticed in (`Finding::part`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecyclePart {
    /// The subject's `new`, before the first list (`Finding::in_new`).
    New,
    /// After the subject's `new`, in a run that stopped before its first list
    /// (`Finding::after_new`).
    AfterNew,
    /// A check at the lifecycle's end (`Finding::lifecycle_end`), after every repetition: it
    /// checks what the setup and the teardown acquired.
    End(LifecycleEnd),
    /// A list that runs once (the setup, the teardown: `Finding::during`).
    RunOnce(OpList),
    /// A repetition (`repetition`).
    Repetition,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind is in `ALL`, each once; a signature of every kind passes the check, with any
    /// resource and site a subject may name (spaces, colons, empty), and only a wrong kind or a
    /// missing part is refused.
    #[test]
    fn the_signature_check_takes_every_finding_and_refuses_a_wrong_kind_or_shape() {
        let names: std::collections::BTreeSet<&str> =
            FindingKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), FindingKind::ALL.len());
        for kind in FindingKind::ALL {
            for (resource, site) in [
                ("rwlock", "fd_table_init"),
                ("heap block", "counter_create"),
                ("my::kind", "a:b"),
                ("", ""),
            ] {
                let signature = Finding::new(kind, resource, site, "h").signature();
                assert_eq!(signature_problem(&signature), None, "{signature}");
            }
        }
        let problem = signature_problem("lek:rwlock:fd_table_init").unwrap();
        assert!(
            problem.starts_with("`lek` is not a kind of finding (kinds: leak, growth, fault, deadlock, invariant, panic, budget, determinism)"),
            "{problem}"
        );
        assert!(signature_problem("Leak:rwlock:x").is_some());
        for malformed in ["", "leak", "leak:rwlock", "rwlock"] {
            assert!(signature_problem(malformed).is_some(), "{malformed}");
        }
    }

    #[test]
    fn a_finding_has_a_position_only_once_placed_and_old_outcomes_had_one() {
        let made = Finding::new(FindingKind::Budget, "limit", "runner", "exhausted");
        assert!(!made.position_known);
        let text = serde_json::to_string(&made).unwrap();
        assert!(text.contains("\"position_known\":false"), "{text}");
        let placed = made.at(2, 5);
        assert!(placed.position_known);
        assert_eq!((placed.lifecycle, placed.repetition), (2, 5));
        let text = serde_json::to_string(&placed).unwrap();
        assert!(!text.contains("position_known"), "{text}");
        assert_eq!(serde_json::from_str::<Finding>(&text).unwrap(), placed);
        // Written before the field: every finding had its position.
        let old = r#"{"kind":"leak","resource":"rwlock","site":"s","lifecycle":1,"repetition":3,"headline":"h","details":[],"notes":[]}"#;
        assert!(serde_json::from_str::<Finding>(old).unwrap().position_known);
    }

    /// Only a list that runs once is kept as where a finding was made; the key is left out
    /// otherwise, and an outcome written before it reads as a finding of a repetition.
    #[test]
    fn a_finding_keeps_the_setup_or_teardown_it_was_made_in_and_old_outcomes_had_none() {
        let made = || Finding::new(FindingKind::Deadlock, "threads", "join", "blocked").at(0, 2);
        for list in [OpList::Ops, OpList::Thread] {
            let finding = made().during(list);
            assert_eq!(finding.during, None);
            let text = serde_json::to_string(&finding).unwrap();
            assert!(!text.contains("during"), "{text}");
        }
        for list in [OpList::Setup, OpList::Teardown] {
            let finding = made().during(list);
            assert_eq!(finding.during, Some(list));
            let text = serde_json::to_string(&finding).unwrap();
            assert!(
                text.contains(&format!("\"during\":\"{}\"", list.name())),
                "{text}"
            );
            assert_eq!(serde_json::from_str::<Finding>(&text).unwrap(), finding);
        }
        let old = r#"{"kind":"leak","resource":"rwlock","site":"s","lifecycle":1,"repetition":3,"headline":"h","details":[{"label":"acquired","text":"t","op":{"lifecycle":1,"repetition":3,"list":"setup","index":1,"name":"n","thread":0}}],"notes":[]}"#;
        let old = serde_json::from_str::<Finding>(old).unwrap();
        assert_eq!(old.during, None);
        assert_eq!(old.details[0].op.as_ref().unwrap().during, None);
    }

    #[test]
    fn signature_is_kind_resource_site_and_ignores_counts() {
        let a = Finding::new(
            FindingKind::Leak,
            "rwlock",
            "fd_prestats_init",
            "1 rwlock leaked",
        );
        let b = Finding::new(
            FindingKind::Leak,
            "rwlock",
            "fd_prestats_init",
            "7 rwlocks leaked",
        );
        assert_eq!(a.signature(), "leak:rwlock:fd_prestats_init");
        assert_eq!(a.signature(), b.signature());
        let c = Finding::new(
            FindingKind::Leak,
            "mutex",
            "fd_prestats_init",
            "1 mutex leaked",
        );
        assert_ne!(a.signature(), c.signature());
        assert!(FindingKind::Deadlock.is_fatal() && !FindingKind::Leak.is_fatal());
        assert_eq!(
            serde_json::to_string(&FindingKind::Determinism).unwrap(),
            "\"determinism\""
        );
    }
}
