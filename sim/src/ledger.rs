//! The ledger: per-lifecycle baselines, leak reports and the growth detector.
//!
//! It reads the OS's accounting (`os::Resources`) and judges it; the OS and the subjects never
//! judge themselves. A baseline is a copy of the per-site totals plus the acquisition serial at
//! that moment (a kind's totals are the sum of its sites'), so taking one and diffing against it
//! cost O(sites), whatever the number of live records. Only when a diff shows a leak does the
//! ledger walk the records, to say what leaked, where it was acquired, grouped by kind and site,
//! oldest first (and, in a lifecycle with a setup and no teardown, which records hold it).
//!
//! What it does not verify: that the *contents* of memory are right, or that a resource released
//! and re-acquired within one lifecycle is the same object. Counts and bytes are what balance.
//! At the end of a lifecycle with a setup and no teardown (`SetupCheck`), the records each
//! repetition left (its leak, reported after it) are known by id, so a leak a later repetition
//! gave back no longer covers a setup resource replaced after it, and a setup resource replaced
//! at another site of its kind is seen; but where one repetition released both the setup's
//! record and a leak and acquired one in their place, that one is taken for the leak, so that no
//! repetition's leak is ever reported twice.

use std::cell::Cell;
use std::collections::BTreeMap;

use crate::findings::{Finding, FindingKind};
use crate::os::pages::format_bytes;
use crate::os::resources::{Record, RecordId, Totals};
use crate::os::{Attribution, KindId, Os};

/// Totals of every (kind, site) pair at one moment. A kind's totals are not kept: they are the
/// sum of its sites', and are only wanted when a leak is reported (see `total`).
#[derive(Clone, Debug)]
pub struct Baseline {
    /// Per site slot (`Resources::site_totals`); slots made after the baseline were at zero.
    site_totals: Vec<Totals>,
    serial: u64,
}

pub fn baseline(os: &Os) -> Baseline {
    let mut baseline = Baseline {
        site_totals: Vec::new(),
        serial: 0,
    };
    baseline.retake(os);
    baseline
}

impl Baseline {
    /// What site slot `slot` held at the baseline: zero for a slot made after it.
    fn at(&self, slot: usize) -> Totals {
        self.site_totals.get(slot).copied().unwrap_or_default()
    }

    /// Takes the baseline again, reusing this one's storage (the runner takes one per repetition).
    pub fn retake(&mut self, os: &Os) {
        self.site_totals.clear();
        self.site_totals
            .extend(os.resources().site_totals().iter().map(|site| site.totals));
        self.serial = os.resources().serial();
    }

    /// `retake` when every site's totals are known to be as at the baseline (`unchanged` said so
    /// and nothing has changed since): only the acquisition serial moves on, and the copy of
    /// every site's totals is spared. A site made since holds nothing, as a site missing from a
    /// baseline is taken to.
    pub fn retake_unchanged(&mut self, os: &Os) {
        debug_assert!(self.unchanged(os), "retake_unchanged of a changed baseline");
        self.serial = os.resources().serial();
    }

    /// Whether every site's totals are what they were at the baseline (a site made since holds
    /// nothing): one compare per site, stopping at the first that changed.
    pub fn unchanged(&self, os: &Os) -> bool {
        let sites = os.resources().site_totals();
        let (known, made_since) = sites.split_at(self.site_totals.len().min(sites.len()));
        known
            .iter()
            .zip(&self.site_totals)
            .all(|(site, before)| site.totals == *before)
            && made_since
                .iter()
                .all(|site| site.totals == Totals::default())
    }

    /// The totals of `kind` at the baseline: the sum over its sites then. A slot's kind never
    /// changes, so `os` (taken later) says which of the baseline's slots are the kind's.
    fn total(&self, os: &Os, kind: KindId) -> Totals {
        let mut total = Totals::default();
        for (site, before) in os.resources().site_totals().iter().zip(&self.site_totals) {
            if site.kind == kind {
                total = total.plus(*before);
            }
        }
        total
    }
}

thread_local! {
    /// `each_grown_kind`'s sums of the kinds that changed, kept for the next call: the leak
    /// check runs after every repetition that changed a site (most of an allocator's), and a
    /// list made each time was an allocation and a free per repetition.
    static CHANGED_KINDS: Cell<Vec<(KindId, Totals, Totals)>> = const { Cell::new(Vec::new()) };
}

/// Frees the list `each_grown_kind` keeps between calls on this thread, so that the next one grows
/// it from nothing as the first did (see `fuzzing::reset_thread_spares`).
pub fn forget_thread_spares() {
    drop(CHANGED_KINDS.take());
}

/// Kinds whose count went up since `baseline`, with the change, in kind order: O(sites), and
/// nothing allocated when no site changed. A kind's totals are the sums of its sites' (see
/// `Resources::totals`), so the sites that did not change cancel out of its change: only the
/// others are summed.
pub fn grown_kinds(os: &Os, baseline: &Baseline) -> Vec<(KindId, u64, u64)> {
    let mut grown = Vec::new();
    each_grown_kind(os, baseline, |kind, count, bytes| {
        grown.push((kind, count, bytes))
    });
    grown
}

/// Calls `grown(kind, count_delta, bytes_delta)` for each kind that `grown_kinds` lists, in
/// kind order, with nothing allocated.
fn each_grown_kind(os: &Os, baseline: &Baseline, mut grown: impl FnMut(KindId, u64, u64)) {
    let sites = os.resources().site_totals();
    // Most repetitions change no site: a first walk, one compare per site, finds the first that
    // changed, and the walk that sums goes on from there (about a third of this function's cost
    // before).
    let unchanged = sites
        .iter()
        .zip(&baseline.site_totals)
        .take_while(|(site, before)| site.totals == **before)
        .count();
    // (kind, now, before), each summed over the kind's sites that changed.
    let mut changed = CHANGED_KINDS.take();
    changed.clear();
    for (slot, site) in sites.iter().enumerate().skip(unchanged) {
        // Slots made after the baseline were at zero.
        let before = baseline.at(slot);
        if site.totals == before {
            continue;
        }
        let index = match changed.iter().position(|(kind, ..)| *kind == site.kind) {
            Some(index) => index,
            None => {
                changed.push((site.kind, Totals::default(), Totals::default()));
                changed.len() - 1
            }
        };
        let (_, now_sum, before_sum) = &mut changed[index];
        *now_sum = now_sum.plus(site.totals);
        *before_sum = before_sum.plus(before);
    }
    changed.sort_by_key(|(kind, ..)| *kind);
    for &(kind, now, before) in &changed {
        // What rose: a kind that holds more bytes in fewer units grew too.
        let rise = now.less(before);
        if !rise.is_zero() {
            grown(kind, rise.count, rise.bytes);
        }
    }
    CHANGED_KINDS.set(changed);
}

fn plural(name: &str, count: u64) -> String {
    if count == 1 && name.ends_with('s') && !name.ends_with("ss") {
        // Kinds named in the plural ("committed pages"): "1 committed page".
        name[..name.len() - 1].to_string()
    } else if count == 1 || name.ends_with('s') {
        name.to_string()
    } else if name.ends_with('x') || name.ends_with("ch") || name.ends_with("sh") {
        // "0 mutexes", not "0 mutexs": reports are read by people.
        format!("{name}es")
    } else if let Some(stem) = name.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        // "2 waiter entries", not "entrys"; "tls keys" as it is.
        format!("{stem}ies")
    } else {
        format!("{name}s")
    }
}

/// Whose acquisition a leak finding reports: a repetition's (the check after each), or at the
/// end of a lifecycle with a setup and no teardown (`SetupCheck`) the setup's, or one acquired
/// in place of the setup's after a repetition released it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeakBy {
    Repetition,
    Setup,
    InPlaceOfSetup,
}

/// The headline of a leak of `count` more units of kind `name`, holding `bytes` more, where
/// `held` units of the kind are live at its site (or, for a leak of no known site, in all).
/// A site can hold more bytes in as many units as before: a table reallocated larger, its old
/// block freed. "0 heap blocks (192 B) not released" would say that nothing leaked, so that
/// case says what grew instead, and the baseline line gives the bytes beside the counts.
/// `by` says whose acquisition the units are.
fn leak_headline(name: &str, count: u64, bytes: u64, held: u64, by: LeakBy) -> String {
    if count > 0 {
        let by = match by {
            LeakBy::Repetition => "",
            LeakBy::Setup => " acquired by `setup`",
            LeakBy::InPlaceOfSetup => " acquired in place of `setup`'s",
        };
        return format!(
            "{count} {} ({}){by} not released",
            plural(name, count),
            format_bytes(bytes)
        );
    }
    // "… not given back" reads on as "… not released" does: "after lifecycle `x`".
    let bytes = format_bytes(bytes);
    let by = match by {
        LeakBy::Repetition => "",
        LeakBy::Setup => " in `setup`",
        LeakBy::InPlaceOfSetup => " since `setup`",
    };
    match held {
        0 => format!("{} grew by {bytes}{by}, not given back", plural(name, 0)),
        1 => format!("1 {} grew by {bytes}{by}, not given back", plural(name, 1)),
        _ => format!(
            "{held} {} grew by {bytes}{by} in all, not given back",
            plural(name, held)
        ),
    }
}

/// How many units of `kind` are live at `site` now (summed over the site's slots).
fn site_count(os: &Os, kind: KindId, site: &str) -> u64 {
    os.resources()
        .site_totals()
        .iter()
        .filter(|slot| slot.kind == kind && slot.site == site)
        .map(|slot| slot.totals.count)
        .sum()
}

/// Leak findings for every kind above its baseline, except the kinds of `exempt` (declared caches,
/// which the growth detector judges instead). One finding per (kind, acquisition site), oldest
/// first.
pub fn leaks(os: &Os, baseline: &Baseline, exempt: &[CacheAllowance]) -> Vec<Finding> {
    leaks_of(os, baseline, &leaked_kinds(os, baseline, exempt))
}

/// The check after a repetition that started at `start`: its leak findings (`leaks`), and, in
/// a lifecycle with a setup and no teardown, the note of what it left (`SetupCheck`).
/// `unchanged` is `start.unchanged(os)`, which the caller has already for its own use: a
/// repetition that changed no site leaked nothing, and its note has only records replaced to
/// look at. The kinds that grew are found once, for both.
///
/// Inlined whole, so that a repetition that changed nothing (most) costs its caller a test or
/// two, as when the caller spelt the choice out, and one that changed a site no more calls than
/// `leaks` made.
#[inline(always)]
pub fn check_repetition(
    os: &Os,
    start: &Baseline,
    unchanged: bool,
    exempt: &[CacheAllowance],
    setup: Option<&mut SetupCheck>,
) -> Vec<Finding> {
    debug_assert_eq!(
        unchanged,
        start.unchanged(os),
        "`unchanged` is not the baseline's"
    );
    if unchanged {
        if let Some(setup) = setup {
            setup.unchanged_repetition_ended(os);
        }
        return Vec::new();
    }
    let leaked = leaked_kinds(os, start, exempt);
    if let Some(setup) = setup {
        setup.repetition_ended(os, start, &leaked, exempt);
    }
    if leaked.is_empty() {
        // Nothing leaked (most changed repetitions): no call for `leaks_of` to find nothing.
        return Vec::new();
    }
    leaks_of(os, start, &leaked)
}

/// The kinds `leaks` reports: those `grown_kinds` lists but for the kinds of `exempt`. Most
/// often none (a repetition that grew only a declared cache), and then nothing is allocated.
fn leaked_kinds(
    os: &Os,
    baseline: &Baseline,
    exempt: &[CacheAllowance],
) -> Vec<(KindId, u64, u64)> {
    let mut leaked = Vec::new();
    each_grown_kind(os, baseline, |kind, count, bytes| {
        if !exempt.iter().any(|cache| cache.kind == kind) {
            leaked.push((kind, count, bytes));
        }
    });
    leaked
}

/// `leaks` of the kinds `leaked_kinds` listed.
fn leaks_of(os: &Os, baseline: &Baseline, leaked: &[(KindId, u64, u64)]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for &(kind, count_delta, bytes_delta) in leaked {
        let name = os.resources().kind(kind).name.clone();
        let before = baseline.total(os, kind);
        let now = os.resources().total(kind);
        // A site that released and re-acquired has not leaked.
        let mut grown_sites = site_rises(os, kind, &baseline.site_totals);
        // One group per grown site, shown with its oldest acquisition since the baseline (or,
        // when its rise is in an older record, such as more pages committed in an older
        // reservation, its oldest live one), oldest group first.
        let mut groups: BTreeMap<(u64, &'static str), (u64, u64, Attribution)> = BTreeMap::new();
        // Per grown site whose records since the baseline hold its rise, the distinct ops that
        // acquired them, oldest first (the group's own op first): a site that several ops
        // acquire at leaks from each of them, and the report names them all.
        let mut acquiring_ops: BTreeMap<&'static str, Vec<Attribution>> = BTreeMap::new();
        for since in [baseline.serial, 0] {
            if grown_sites.is_empty() {
                break;
            }
            for record in os.resources().live_since(kind, since) {
                let acquired = os.resources().acquired(record);
                if let Some(delta) = grown_sites.remove(acquired.site) {
                    groups.insert(
                        (record.serial, acquired.site),
                        (delta.count, delta.bytes, acquired),
                    );
                    if since == baseline.serial {
                        acquiring_ops.insert(acquired.site, vec![acquired]);
                    }
                } else if since == baseline.serial
                    && let Some(ops) = acquiring_ops.get_mut(acquired.site)
                    && !ops.iter().any(|op| same_op(op, &acquired))
                {
                    ops.push(acquired);
                }
            }
        }
        // Every finding of the kind says what the baseline held; one whose site is known also
        // says which acquisition of that site is the oldest still live.
        let baseline_at = |held_here| baseline_detail(&name, before, now, "", held_here);
        let not_released = |site: &str, count: u64, bytes: u64, held: u64| {
            Finding::new(
                FindingKind::Leak,
                name.clone(),
                site,
                leak_headline(&name, count, bytes, held, LeakBy::Repetition),
            )
        };
        if groups.is_empty() {
            findings.push(
                not_released("unknown", count_delta, bytes_delta, now.count)
                    .detail("baseline", baseline_at(None)),
            );
            continue;
        }
        for ((_, site), (count, bytes, acquired)) in groups {
            let held = site_count(os, kind, site);
            let mut finding = not_released(site, count, bytes, held).detail_op(
                "acquired",
                acquired.to_string(),
                acquired.op_ref(),
            );
            let others = acquiring_ops.get(site).map_or(&[][..], |ops| &ops[1..]);
            let shown = others.len().min(ACQUIRING_OPS_SHOWN - 1);
            for other in &others[..shown] {
                finding = finding.detail_op("also acquired", other.to_string(), other.op_ref());
            }
            let more = (others.len() - shown) as u64;
            if more > 0 {
                let ops = plural("op", more);
                finding = finding.detail("also acquired", format!("(+{more} more {ops})"));
            }
            findings.push(finding.detail("baseline", baseline_at(Some(held))));
        }
    }
    findings
}

/// How many of the ops that acquired a leak's records at one site its finding names, the
/// `acquired` line's included; the rest are counted on one last `also acquired` line.
const ACQUIRING_OPS_SHOWN: usize = 4;

/// Whether two acquisitions were made by the same op of the scenario: the same line of the file,
/// in whichever repetition it ran. The lists of two declared threads are both `thread`, and a
/// thread id differs from one spawn to the next, so the position does not say which declared
/// thread an op is of: ops of two threads at the same index are told apart only by the op's name,
/// and two of the same name there count as one (the report then names one of them).
fn same_op(a: &Attribution, b: &Attribution) -> bool {
    let (a, b) = (&a.position, &b.position);
    a.lifecycle == b.lifecycle
        && a.op.list() == b.op.list()
        && a.op.index() == b.op.index()
        && a.op_name == b.op_name
}

/// The `baseline` line of a leak of kind `name`: what the baseline held, and what is held now.
/// When the count came back and only the bytes did not (a table reallocated larger), the bytes
/// are what the reader compares, so the line gives them too. `when` follows what the baseline
/// held (` before `setup``, where that is the baseline). The totals are the kind's, over every
/// site; `held_here` is what the finding's own site holds, given where other sites hold some
/// too, so that "1 rwlock not released" above "now: 4" does not read as a contradiction.
fn baseline_detail(
    name: &str,
    before: Totals,
    now: Totals,
    when: &str,
    held_here: Option<u64>,
) -> String {
    let (other_sites_hold_some, here) = match held_here {
        Some(held) if held != now.count => (true, format!(", {held} at this site")),
        _ => (false, String::new()),
    };
    if now.count == before.count {
        let all = if other_sites_hold_some {
            ", all sites"
        } else {
            ""
        };
        format!(
            "{} {} ({}{all}){when}; now: {} ({}{all}){here}",
            before.count,
            plural(name, before.count),
            format_bytes(before.bytes),
            now.count,
            format_bytes(now.bytes)
        )
    } else {
        let all = if other_sites_hold_some {
            " (all sites)"
        } else {
            ""
        };
        format!(
            "{} {}{all}{when}; now: {}{all}{here}",
            before.count,
            plural(name, before.count),
            now.count
        )
    }
}

/// The check at the end of a lifecycle that has a `setup` and no `teardown`, which would
/// otherwise be checked by nothing: the check after each repetition starts from the baseline
/// after the setup. At the end, what the setup added is to be given back, but for what the
/// repetitions left: their leaks, reported after each repetition, and what they keep in a
/// declared cache, which is theirs. What the setup put in a cache is no exception, as after a
/// teardown: the end of a lifecycle is where it must be given back.
///
/// So the check keeps the records the repetitions left, by id, with how much of each they left
/// (`repetition_ended`): after a repetition, a site's rise that its check reported (or that a
/// declared cache keeps) is the repetition's, in the records it acquired there, newest first, or,
/// past those, in older records there that grew (pages committed in an older reservation). Bytes
/// are left per record, no more than the record holds, so a record that holds both the setup's
/// and a repetition's (the setup's reservation with pages a repetition committed) splits as the
/// rises said. A record so left that a later repetition releases was given back, unless that
/// repetition acquired another of the kind in its place: that one is then left in its stead
/// (same site first), so that a leak that moved to another record is not reported again.
///
/// At the end, per (kind, site) where the setup added something, what is reported is the larger
/// of what the setup's own records there still hold (no more than it added there) and what the
/// site holds past its baseline before the setup and what the repetitions left there (no more
/// than the setup added there either): the latter is a record a repetition acquired in place of
/// the setup's, after releasing it. What the setup added at a site and is neither held nor
/// replaced there may have moved to another site of the kind, which the check after the
/// repetition does not see (the kind balanced): what the kind holds past its baseline before the
/// setup, what the repetitions left and what is reported at the setup's sites, up to what is
/// missing, is reported at the sites that hold more than their baseline and what was left there.
///
/// What it does not verify: which record a repetition released when it released several of a
/// kind and acquired fewer in their place, nor which part of a record that holds both the
/// setup's and a repetition's leak it gave back when the record shrank. Where either may be the
/// setup's or the leak, the leak is taken to be what remains, as it was reported already, and
/// the setup's to be what was given back.
pub struct SetupCheck {
    before_setup: Baseline,
    after_setup: Baseline,
    /// The records the repetitions left, by acquisition serial (`Left`).
    left: BTreeMap<u64, Left>,
    /// The acquisition serial when the last repetition noted ended (at first, when the setup
    /// ended): the runner notes every repetition, so records acquired since were acquired by
    /// the one being noted.
    noted_serial: u64,
}

/// How much of one live record the repetitions left: their leak, reported after each, or what
/// they keep in a declared cache. A record can hold more than that: the setup's reservation
/// holds the setup's pages and those a repetition committed in it.
#[derive(Clone, Copy, Debug)]
struct Left {
    id: RecordId,
    /// Its site slot (`Resources::site_totals`).
    slot: usize,
    amount: Totals,
}

/// A live record the check may note as left: its serial, id, site slot and what it holds.
type Candidate = (u64, RecordId, usize, Totals);

/// Notes up to `wanted` of `candidate` as left, within what it holds past what is noted of it
/// already, and takes that off `wanted`.
fn leave(left: &mut BTreeMap<u64, Left>, candidate: &Candidate, wanted: &mut Totals) {
    let &(serial, id, slot, holds) = candidate;
    let noted = left.get(&serial).map_or(Totals::default(), |l| l.amount);
    let taken = holds.less(noted).min_each(*wanted);
    if taken.is_zero() {
        return;
    }
    *wanted = wanted.less(taken);
    let entry = left.entry(serial).or_insert(Left {
        id,
        slot,
        amount: Totals::default(),
    });
    entry.amount = entry.amount.plus(taken);
}

/// Brings `left` up to `os`: forgets the records released since `noted_serial`, leaving what
/// they were left holding in the records of their kind acquired since (same site first, newest
/// first); keeps what is left in a record that shrank within what it holds now (the shrink is
/// taken to give back the rest of the record first: see `SetupCheck`); and notes `rises` (site
/// slot, rise) as left in the records of their site, those acquired after `start_serial` first,
/// newest first. O(records) when a record noted was released or a site rose, O(records noted)
/// otherwise.
fn note_left(
    left: &mut BTreeMap<u64, Left>,
    os: &Os,
    noted_serial: u64,
    start_serial: u64,
    rises: &[(usize, Totals)],
) {
    let resources = os.resources();
    let sites = resources.site_totals();
    // What the released records were left holding, per site slot.
    let mut released: BTreeMap<usize, Totals> = BTreeMap::new();
    left.retain(|_, l| match resources.get(l.id) {
        Some(record) => {
            // A record that shrank gave back no more than it holds past what was left in it.
            l.amount = l.amount.min_each(record.holds());
            !l.amount.is_zero()
        }
        None => {
            let at = released.entry(l.slot).or_default();
            *at = at.plus(l.amount);
            false
        }
    });
    if rises.is_empty() && released.is_empty() {
        return;
    }
    let released_kinds: Vec<KindId> = released.keys().map(|&slot| sites[slot].kind).collect();
    let mut candidates: Vec<Candidate> = resources
        .live_with_ids()
        .filter(|&(_, slot, record)| {
            rises.iter().any(|&(rising, _)| rising == slot)
                || (record.serial > noted_serial && released_kinds.contains(&record.kind))
        })
        .map(|(id, slot, record)| (record.serial, id, slot, record.holds()))
        .collect();
    candidates.sort_by_key(|&(serial, ..)| std::cmp::Reverse(serial));
    for &(slot, rise) in rises {
        let mut wanted = rise;
        for acquired_since_start in [true, false] {
            for candidate in candidates
                .iter()
                .filter(|c| c.2 == slot && (c.0 > start_serial) == acquired_since_start)
            {
                leave(left, candidate, &mut wanted);
            }
        }
    }
    // A record acquired since the last repetition noted stands for one left that was released
    // since: at its own site first, then at another of the kind.
    let acquired_since_noted = |c: &&Candidate| c.0 > noted_serial;
    for (&slot, wanted) in &mut released {
        for candidate in candidates
            .iter()
            .filter(acquired_since_noted)
            .filter(|c| c.2 == slot)
        {
            leave(left, candidate, wanted);
        }
    }
    for (&slot, wanted) in &mut released {
        let kind = sites[slot].kind;
        for candidate in candidates
            .iter()
            .filter(acquired_since_noted)
            .filter(|c| sites[c.2].kind == kind)
        {
            leave(left, candidate, wanted);
        }
    }
}

/// One site of a kind the setup added to, at the end of its lifecycle (`SetupCheck::leaks`).
struct SiteAtEnd<'o> {
    slot: usize,
    /// What the setup added here.
    added: Totals,
    /// What the site holds past its baseline before the setup and what the repetitions left.
    past: Totals,
    /// What is reported here.
    held: Totals,
    /// Whether some of it is not the setup's own record but one acquired in its place: here,
    /// or, where `added` is nothing, for what the setup added at another site.
    replaced: bool,
    named: Option<&'o Record>,
}

impl SetupCheck {
    /// The check of a setup about to run, from the baseline `before_setup` taken before it; its
    /// end is taken by `setup_ended`.
    pub fn new(before_setup: Baseline) -> SetupCheck {
        SetupCheck {
            after_setup: before_setup.clone(),
            noted_serial: before_setup.serial,
            before_setup,
            left: BTreeMap::new(),
        }
    }

    /// Takes the baseline after the setup, before the first repetition.
    pub fn setup_ended(&mut self, os: &Os) {
        self.after_setup.retake(os);
        self.noted_serial = self.after_setup.serial;
    }

    /// Notes what a repetition left, since `start`, the baseline at its start: the rise of every
    /// site that its leak check reports (of a kind of `leaked`, as `leaked_kinds` lists them)
    /// and of every site of a declared cache (`exempt`), in the records that hold it; and
    /// forgets the records left before that were released since (see `SetupCheck`). Needed only
    /// after a repetition that changed a site (`Baseline::unchanged`): another rose nowhere
    /// (`check_repetition` chooses).
    fn repetition_ended(
        &mut self,
        os: &Os,
        start: &Baseline,
        leaked: &[(KindId, u64, u64)],
        exempt: &[CacheAllowance],
    ) {
        let rises: Vec<(usize, Totals)> = os
            .resources()
            .site_totals()
            .iter()
            .enumerate()
            .filter(|(_, site)| {
                leaked.iter().any(|&(kind, ..)| kind == site.kind)
                    || exempt.iter().any(|cache| cache.kind == site.kind)
            })
            .map(|(slot, site)| {
                let before = start.at(slot);
                (slot, site.totals.less(before))
            })
            .filter(|&(_, rise)| !rise.is_zero())
            .collect();
        note_left(&mut self.left, os, self.noted_serial, start.serial, &rises);
        self.noted_serial = os.resources().serial();
    }

    /// `repetition_ended` after a repetition that left every site's totals as it found them: it
    /// rose nowhere, but may have released a record left before and acquired another in its
    /// place, which is then left in its stead, or moved pages from one to another. O(1) while
    /// no repetition left a record, else O(records left), and O(records) only when one of them
    /// was released.
    fn unchanged_repetition_ended(&mut self, os: &Os) {
        let serial = os.resources().serial();
        if !self.left.is_empty() {
            note_left(&mut self.left, os, self.noted_serial, serial, &[]);
        }
        self.noted_serial = serial;
    }

    /// Leak findings for what the setup added and the lifecycle still holds, after the
    /// repetitions. What the setup added is told by the acquisition serials between the two
    /// baselines (an op of the setup's list, a thread it spawned, an exit hook it ran) and by its
    /// sites' totals. Per (kind, site), what is reported is the larger of what the setup's own
    /// records there hold now, no more than the setup added to the site (a record the
    /// repetitions grew, such as pages committed in the setup's reservation, counts with its
    /// size after the setup), and what the site holds past what it may (see `SetupCheck`),
    /// which is never more than the setup added there either; and, at another site of the kind,
    /// what was acquired there in place of what the setup added and is missing.
    ///
    /// One finding per (kind, site), in kind order and oldest first, as `leaks` gives them, each
    /// naming the setup's oldest acquisition still live there or, where none is, the latest
    /// acquired since the setup: the one that took its place.
    pub fn leaks(&self, os: &Os) -> Vec<Finding> {
        let (before_setup, after_setup) = (&self.before_setup, &self.after_setup);
        let mut findings = Vec::new();
        if after_setup.serial == before_setup.serial {
            // The setup acquired nothing.
            return findings;
        }
        let resources = os.resources();
        let sites = resources.site_totals();
        // The kinds the setup added to, in kind order (slots made after `after_setup` held
        // nothing at its end).
        let mut kinds: Vec<KindId> = (0..after_setup.site_totals.len())
            .filter(|&slot| !after_setup.at(slot).less(before_setup.at(slot)).is_zero())
            .map(|slot| sites[slot].kind)
            .collect();
        kinds.sort();
        kinds.dedup();
        if kinds.is_empty() {
            return findings;
        }
        // What the repetitions left, per site slot. The runner notes every repetition, the last
        // one included, and nothing acquires or releases between its note and this check, so
        // `left` is as `note_left` brought it up to now: no record in it was released since,
        // and none holds less than what is left in it.
        debug_assert!(
            self.left_is_current(os),
            "the last repetition was not noted"
        );
        let mut left_at = vec![Totals::default(); sites.len()];
        for l in self.left.values() {
            left_at[l.slot] = left_at[l.slot].plus(l.amount);
        }
        for kind in kinds {
            let name = resources.kind(kind).name.clone();
            let (before, now) = (before_setup.total(os, kind), resources.total(kind));
            let baseline_at =
                |held_here| baseline_detail(&name, before, now, " before `setup`", held_here);
            let (at_end, missing_at) = self.sites_at_end(os, kind, &left_at);
            for site in at_end {
                let label = sites[site.slot].site;
                let units = site_count(os, kind, label);
                let by = if site.replaced {
                    LeakBy::InPlaceOfSetup
                } else {
                    LeakBy::Setup
                };
                let headline = leak_headline(&name, site.held.count, site.held.bytes, units, by);
                let mut finding = Finding::new(FindingKind::Leak, name.clone(), label, headline);
                if let Some(record) = site.named {
                    let acquired = resources.acquired(record);
                    finding =
                        finding.detail_op("acquired", acquired.to_string(), acquired.op_ref());
                }
                let note = if !site.replaced {
                    "the `setup` acquired this and the lifecycle has no `teardown` to release \
                     it: add a `teardown` that releases it"
                        .to_string()
                } else if !site.added.is_zero() {
                    "a repetition released what the `setup` acquired here and acquired this in \
                     its place, and the lifecycle has no `teardown` to release it: add a \
                     `teardown` that releases it"
                        .to_string()
                } else {
                    format!(
                        "a repetition released what the `setup` acquired at {missing_at} and \
                         acquired this in its place, and the lifecycle has no `teardown` to \
                         release it: add a `teardown` that releases it"
                    )
                };
                findings.push(
                    finding
                        .detail("baseline", baseline_at(Some(units)))
                        .note(note),
                );
            }
        }
        findings
    }

    /// Whether `left` is what `note_left` would make of it now, after no repetition more: the
    /// last repetition was noted (`noted_serial`, nothing acquired since), and every record in
    /// it is live and holds at least what is left in it.
    fn left_is_current(&self, os: &Os) -> bool {
        let resources = os.resources();
        self.noted_serial == resources.serial()
            && self.left.values().all(|l| {
                resources.get(l.id).is_some_and(|record| {
                    !l.amount.is_zero() && l.amount.min_each(record.holds()) == l.amount
                })
            })
    }

    /// The sites of `kind` with something to report at the end, oldest named record first, and
    /// the setup's sites where what it added is missing, named as a report names them
    /// ("`a`, `b`"). `left_at` is what the repetitions left, per site slot.
    fn sites_at_end<'o>(
        &self,
        os: &'o Os,
        kind: KindId,
        left_at: &[Totals],
    ) -> (Vec<SiteAtEnd<'o>>, String) {
        let (before_setup, after_setup) = (&self.before_setup, &self.after_setup);
        let resources = os.resources();
        // What the setup's records of the kind hold now, by site slot, with the oldest of them
        // (`live_since` lists oldest first).
        let mut setup_records: BTreeMap<&'static str, (Totals, &Record)> = BTreeMap::new();
        for record in resources.live_since(kind, before_setup.serial) {
            if record.serial > after_setup.serial {
                break;
            }
            let site = resources.acquired(record).site;
            let (totals, _) = setup_records
                .entry(site)
                .or_insert((Totals::default(), record));
            *totals = totals.plus(record.holds());
        }
        let mut at_end = Vec::new();
        let (mut added_all, mut held_all) = (Totals::default(), Totals::default());
        for (slot, site) in resources.site_totals().iter().enumerate() {
            if site.kind != kind {
                continue;
            }
            let before = before_setup.at(slot);
            let added = after_setup.at(slot).less(before);
            let (own, oldest_own) = match setup_records.get(site.site) {
                Some(&(totals, record)) => (totals.min_each(added), Some(record)),
                None => (Totals::default(), None),
            };
            let past = site.totals.less(before).less(left_at[slot]);
            let replacing = added.min_each(past);
            let held = own.max_each(replacing);
            added_all = added_all.plus(added);
            held_all = held_all.plus(held);
            at_end.push(SiteAtEnd {
                slot,
                added,
                past,
                held,
                replaced: replacing.count > own.count || replacing.bytes > own.bytes,
                named: oldest_own,
            });
        }
        let missing_at: Vec<String> = at_end
            .iter()
            .filter(|site| !site.added.less(site.held).is_zero())
            .map(|site| format!("`{}`", resources.site_totals()[site.slot].site))
            .collect();
        // What the setup added and is neither held nor replaced at its own site, up to what the
        // kind holds past its baseline before the setup, what the repetitions left and what is
        // reported at the setup's sites: acquired at another site in its place.
        let left_all = at_end
            .iter()
            .fold(Totals::default(), |all, site| all.plus(left_at[site.slot]));
        let now = resources.total(kind);
        let spare = now
            .less(before_setup.total(os, kind))
            .less(left_all)
            .less(held_all);
        let mut elsewhere = added_all.less(held_all).min_each(spare);
        if !elsewhere.is_zero() {
            // The sites that hold more than reported there, where the latest acquisition since
            // the setup is newest first: that one took the place of what went.
            let mut newest: Vec<(u64, usize)> = at_end
                .iter()
                .enumerate()
                .filter(|(_, site)| !site.past.less(site.held).is_zero())
                .filter_map(|(index, site)| {
                    let label = resources.site_totals()[site.slot].site;
                    newest_at(os, kind, label, after_setup.serial)
                        .map(|record| (record.serial, index))
                })
                .collect();
            newest.sort_by_key(|&(serial, _)| std::cmp::Reverse(serial));
            for (_, index) in newest {
                let site = &mut at_end[index];
                let taken = site.past.less(site.held).min_each(elsewhere);
                if taken.is_zero() {
                    continue;
                }
                elsewhere = elsewhere.less(taken);
                site.held = site.held.plus(taken);
                site.replaced = true;
            }
        }
        at_end.retain(|site| !site.held.is_zero());
        for site in &mut at_end {
            if site.named.is_none() || site.replaced && site.added.is_zero() {
                let label = resources.site_totals()[site.slot].site;
                site.named = newest_at(os, kind, label, after_setup.serial);
            }
        }
        at_end.sort_by_key(|site| site.named.map_or(0, |record| record.serial));
        (at_end, missing_at.join(", "))
    }
}

/// The latest acquisition of `kind` at `site` still live and made after `serial` (or, when
/// there is none, the latest still live there at all).
fn newest_at<'o>(os: &'o Os, kind: KindId, site: &str, serial: u64) -> Option<&'o Record> {
    for since in [serial, 0] {
        let records = os.resources().live_since(kind, since);
        let at_site = records
            .into_iter()
            .rev()
            .find(|record| os.resources().acquired(record).site == site);
        if at_site.is_some() {
            return at_site;
        }
    }
    None
}

/// A declared bounded cache: up to `per_key_max` units of `kind` per distinct key may persist
/// across repetitions (Miri's salted fn-pointer ids: 32 per function).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheAllowance {
    pub kind: KindId,
    pub per_key_max: u64,
}

#[derive(Clone, Debug, Default)]
struct KindTrend {
    /// The kind's count at the end of the repetition being observed, summed over its sites.
    now: u64,
    at_warmup: u64,
    last: u64,
    rises: u32,
    reported: bool,
}

/// Compares counts across repetitions after a warm-up. A kind grows when its count rose in at
/// least `rises_min` repetitions since the warm-up and now exceeds its warm-up level by more than
/// its allowance (per-key bound × live keys for a declared cache, else nothing). A cache that fills
/// to its bound and stops is never flagged; a leak of one unit per repetition is flagged
/// `rises_min` repetitions after it exceeds the allowance.
#[derive(Clone, Debug)]
pub struct GrowthDetector {
    warmup: u32,
    rises_min: u32,
    allowances: Vec<CacheAllowance>,
    trends: Vec<KindTrend>,
    /// The count of every kind at the end of each repetition (the first `SERIES_POINTS_MAX`), one
    /// row per repetition, rows laid end to end, each led by its width: a subject may register
    /// kinds mid-run, so rows can widen. One flat vector rather than a series per kind (or a
    /// second vector of where rows start): a fuzz input runs a detector for a handful of
    /// repetitions, and every allocation is a large part of its cost.
    history: Vec<u64>,
    observed: u32,
    /// Whether a kind rose in `rises_min` repetitions after the warm-up but was not reported (its
    /// growth was within its allowance), and so is judged again at every observation. An
    /// observation after a repetition that changed no count has nothing else to do.
    judging: bool,
    /// Per-site totals at the end of the warm-up, so that a growth names the site that grew.
    site_totals_at_warmup: Vec<Totals>,
}

/// How far one kind went toward a growth finding in one repeated lifecycle: its count's rise from
/// the end of the warm-up to the last repetition, in how many repetitions it rose, and the rise a
/// declared cache allows (0 for a kind that is not a cache). The fuzz targets turn it into
/// coverage (`fuzzing::GrowthCounters`), so that libFuzzer keeps inputs that take a kind closer to
/// a finding and climbs toward a growth no single mutation reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GrowthProgress {
    pub kind: KindId,
    pub growth: u64,
    pub rises: u32,
    pub allowance: u64,
}

impl GrowthProgress {
    /// Keeps, per kind, the furthest progress of `more` and `into` (several lifecycles).
    pub fn merge(into: &mut Vec<GrowthProgress>, more: impl IntoIterator<Item = GrowthProgress>) {
        for progress in more {
            match into.iter_mut().find(|p| p.kind == progress.kind) {
                Some(kept) => {
                    kept.growth = kept.growth.max(progress.growth);
                    kept.rises = kept.rises.max(progress.rises);
                    kept.allowance = kept.allowance.max(progress.allowance);
                }
                None => into.push(progress),
            }
        }
    }
}

/// How many rises after warm-up make a trend: enough to ignore a lazy init or two.
pub const GROWTH_RISES_MIN: u32 = 8;

/// Keeps the plotted series bounded whatever the number of repetitions.
const SERIES_POINTS_MAX: usize = 4096;

impl GrowthDetector {
    pub fn new(warmup: u32, allowances: Vec<CacheAllowance>) -> GrowthDetector {
        GrowthDetector {
            warmup,
            rises_min: GROWTH_RISES_MIN,
            allowances,
            trends: Vec::new(),
            history: Vec::new(),
            observed: 0,
            judging: false,
            site_totals_at_warmup: Vec::new(),
        }
    }

    /// Starts over for a lifecycle with `warmup` repetitions of warm-up, as a new detector with
    /// the same allowances would, but keeping this one's storage.
    pub fn restart(&mut self, warmup: u32) {
        self.warmup = warmup;
        self.trends.clear();
        self.history.clear();
        self.observed = 0;
        self.judging = false;
        self.site_totals_at_warmup.clear();
    }

    /// Makes room in the series for `repetitions` rows of `kinds` counts, so that a lifecycle's
    /// repetitions do not regrow it a handful of times (a fuzz input repeats one about seventy
    /// times).
    pub fn reserve_series(&mut self, repetitions: u32, kinds: usize) {
        let rows = (repetitions as usize).min(SERIES_POINTS_MAX);
        self.history.reserve(rows * (kinds + 1));
    }

    /// The declared caches this detector allows for.
    pub fn allowances(&self) -> &[CacheAllowance] {
        &self.allowances
    }

    pub fn allowance_of(&self, os: &Os, kind: KindId) -> u64 {
        self.allowances
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| a.per_key_max * self.live_keys(os, kind))
            .sum()
    }

    /// The keys a declared cache of `kind` is allowed its bound for: those live, and at least
    /// one (a cache with no key yet may still fill once).
    fn live_keys(&self, os: &Os, kind: KindId) -> u64 {
        os.resources().live_keys(kind).max(1)
    }

    pub fn is_cache(&self, kind: KindId) -> bool {
        self.allowances.iter().any(|a| a.kind == kind)
    }

    /// Sets every kind's `now` to its count, summed over its sites, with a trend for every kind
    /// registered so far.
    fn count_kinds(&mut self, os: &Os) {
        let kinds = os.resources().kinds().count();
        if self.trends.len() < kinds {
            self.trends.resize(kinds, KindTrend::default());
        }
        for trend in &mut self.trends {
            trend.now = 0;
        }
        for site in os.resources().site_totals() {
            self.trends[site.kind.0 as usize].now += site.totals.count;
        }
    }

    /// Observes the end of one repetition; returns growth findings (each kind at most once).
    pub fn observe(&mut self, os: &Os) -> Vec<Finding> {
        self.count_kinds(os);
        self.observe_counted(os)
    }

    /// `observe` for a repetition after which no site's totals differ from what they were at the
    /// last observation, which the caller knows (the runner's baseline, taken after that
    /// observation, is unchanged): every kind's count is then what the last observation summed,
    /// and summing it again over every site was most of the cost of observing. The rest (the
    /// series, the trends, and any kind to judge, whose allowance may have changed with its live
    /// keys) is as in `observe`. The first observation since a (re)start, or one after a kind was
    /// registered, counts. Past the warm-up, with no kind to judge, the rest is the series' row,
    /// which is the last one again: no trend can rise.
    pub fn observe_unchanged(&mut self, os: &Os) -> Vec<Finding> {
        if self.observed == 0 || self.trends.len() != os.resources().kinds().len() {
            return self.observe(os);
        }
        if cfg!(debug_assertions) {
            let kept: Vec<u64> = self.trends.iter().map(|trend| trend.now).collect();
            self.count_kinds(os);
            let counted = self.trends.iter().map(|trend| trend.now);
            assert!(
                counted.eq(kept),
                "an unchanged repetition changed a kind's count"
            );
        }
        let repetition = self.observed;
        if repetition < self.warmup || self.judging {
            return self.observe_counted(os);
        }
        self.observed += 1;
        if (repetition as usize) < SERIES_POINTS_MAX {
            // The last row has the same width: the kinds are as many as at the last observation.
            let row = self.trends.len() + 1;
            self.history.extend_from_within(self.history.len() - row..);
        }
        Vec::new()
    }

    /// `observe` once every kind's `now` is its count.
    fn observe_counted(&mut self, os: &Os) -> Vec<Finding> {
        let repetition = self.observed;
        self.observed += 1;
        if (repetition as usize) < SERIES_POINTS_MAX {
            self.history.push(self.trends.len() as u64);
            self.history
                .extend(self.trends.iter().map(|trend| trend.now));
        }
        let mut findings = Vec::new();
        if repetition < self.warmup {
            self.site_totals_at_warmup.clear();
            self.site_totals_at_warmup
                .extend(os.resources().site_totals().iter().map(|site| site.totals));
            for trend in &mut self.trends {
                trend.at_warmup = trend.now;
                trend.last = trend.now;
            }
            return findings;
        }
        let no_warmup_first = repetition == 0 && self.warmup == 0;
        // One tight pass updates every trend; the kinds that rose often enough to be judged
        // (none, in nearly every repetition) are looked at in a second.
        let mut any_judged = false;
        for trend in &mut self.trends {
            if no_warmup_first {
                trend.at_warmup = 0;
            }
            if trend.now > trend.last {
                trend.rises += 1;
            }
            trend.last = trend.now;
            any_judged |= !trend.reported && trend.rises >= self.rises_min;
        }
        self.judging = any_judged;
        if !any_judged {
            return findings;
        }
        for index in 0..self.trends.len() {
            let trend = &self.trends[index];
            let count = trend.now;
            if trend.reported || trend.rises < self.rises_min {
                continue;
            }
            let kind = KindId(index as u16);
            let allowance = self.allowance_of(os, kind);
            let growth = count.saturating_sub(trend.at_warmup);
            if growth <= allowance {
                continue;
            }
            let trend = &mut self.trends[index];
            trend.reported = true;
            let name = os.resources().kind(kind).name.clone();
            let site = fastest_growing_site(os, kind, &self.site_totals_at_warmup);
            let records = os.resources().live_since(kind, 0);
            let mut at_site = records
                .iter()
                .rev()
                .map(|record| os.resources().acquired(record))
                .filter(|acquired| Some(acquired.site) == site);
            let acquired = at_site.next();
            // The line names the site's newest live record (the latest evidence of the rise),
            // and says so: a repetition far past the warm-up is not where the rise began.
            let older = at_site.count();
            let site = site.unwrap_or("unknown");
            let mut finding = Finding::new(
                FindingKind::Growth,
                name.clone(),
                site,
                format!(
                    "{name} count keeps rising: {} after warm-up, {count} after repetition {} (+{growth}, allowed +{allowance})",
                    trend.at_warmup,
                    repetition + 1
                ),
            );
            if let Some(acquired) = acquired {
                let which = match older {
                    0 => "the only live record at the site".to_string(),
                    older => format!("the newest of {} live records at the site", older + 1),
                };
                finding = finding.detail_op(
                    "acquired",
                    format!("{acquired}, {which}"),
                    acquired.op_ref(),
                );
            }
            finding = finding.detail(
                "trend",
                format!(
                    "rose in {} of {} repetitions after a warm-up of {}",
                    trend.rises,
                    repetition + 1 - self.warmup,
                    self.warmup
                ),
            );
            if allowance > 0 {
                // What the cache was allowed and what it did, in the headline's numbers: a
                // cache that fills to its bound stops there, and this one went past it.
                let bound = match self.live_keys(os, kind) {
                    1 => "its bound".to_string(),
                    keys => format!(
                        "its bound, {} per key for {keys} live keys",
                        allowance / keys
                    ),
                };
                finding = finding.note(format!(
                    "the declared cache of {name} allows a rise of up to {allowance} after the \
                     warm-up ({bound}); the count rose past it, by {growth} to {count}"
                ));
            } else {
                finding = finding.note("each repetition leaves more behind; a check at teardown alone would miss it if teardown frees everything");
            }
            finding.series = self.series(kind);
            findings.push(finding);
        }
        findings
    }

    /// Every kind that rose after the warm-up: how much, how often, and what its cache allows as
    /// `os` stands (nothing before the warm-up ends).
    pub fn progress<'a>(&'a self, os: &'a Os) -> impl Iterator<Item = GrowthProgress> + 'a {
        let past_warmup = self.observed > self.warmup;
        self.trends
            .iter()
            .enumerate()
            .filter(move |(_, trend)| past_warmup && trend.rises > 0)
            .map(|(index, trend)| {
                let kind = KindId(index as u16);
                GrowthProgress {
                    kind,
                    growth: trend.last.saturating_sub(trend.at_warmup),
                    rises: trend.rises,
                    allowance: self.allowance_of(os, kind),
                }
            })
    }

    /// The count of `kind` at the end of each repetition so far (for plots); 0 in repetitions
    /// before the kind was registered.
    pub fn series(&self, kind: KindId) -> Vec<u64> {
        let index = kind.0 as usize;
        let mut series = Vec::new();
        let mut row = 0;
        while row < self.history.len() {
            let width = self.history[row] as usize;
            series.push(if index < width {
                self.history[row + 1 + index]
            } else {
                0
            });
            row += 1 + width;
        }
        series
    }
}

/// How much each site of `kind` rose since `before` (site totals by slot; slots made later were
/// at zero), by label, keeping only the sites that rose. One label written in two places is one
/// slot (`Resources` finds a pair's slot by the label's text).
fn site_rises(os: &Os, kind: KindId, before: &[Totals]) -> BTreeMap<&'static str, Totals> {
    let mut rises: BTreeMap<&'static str, Totals> = BTreeMap::new();
    for (slot, site) in os.resources().site_totals().iter().enumerate() {
        if site.kind != kind {
            continue;
        }
        let before = before.get(slot).copied().unwrap_or_default();
        let rise = rises.entry(site.site).or_default();
        *rise = rise.plus(site.totals.less(before));
    }
    rises.retain(|_, rise| !rise.is_zero());
    rises
}

/// The site of `kind` whose count rose most since the warm-up (the latest one on a tie).
fn fastest_growing_site(os: &Os, kind: KindId, at_warmup: &[Totals]) -> Option<&'static str> {
    let rises = site_rises(os, kind, at_warmup);
    let rise_max = rises
        .values()
        .map(|rise| rise.count)
        .max()
        .filter(|&rise| rise > 0)?;
    let records = os.resources().live_since(kind, 0);
    records
        .iter()
        .rev()
        .map(|record| os.resources().acquired(record).site)
        .find(|site| rises.get(site).is_some_and(|rise| rise.count == rise_max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::LockKind;

    #[test]
    fn balanced_lifecycle_has_no_leak_and_an_unbalanced_one_names_kind_and_site() {
        let mut os = Os::for_tests(1);
        let before = baseline(&os);
        let lock = os.lock_create(LockKind::RwLock, "fd_table_init").unwrap();
        os.lock_destroy(lock, "fd_table_destroy").unwrap();
        assert!(leaks(&os, &before, &[]).is_empty());
        let _kept = os
            .lock_create(LockKind::RwLock, "fd_prestats_init")
            .unwrap();
        let _also = os.lock_create(LockKind::Mutex, "other_init").unwrap();
        let found = leaks(&os, &before, &[]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].signature(), "leak:mutex:other_init");
        assert_eq!(found[1].signature(), "leak:rwlock:fd_prestats_init");
        assert_eq!(found[1].headline, "1 rwlock (216 B) not released");
    }

    /// The check's cost is set by the number of (kind, site) pairs, not of live records: a
    /// baseline over 100,000 live records holds what one over 10 does, one entry per site.
    #[test]
    fn a_baseline_holds_one_entry_per_site_whatever_the_live_records() {
        let mut os = Os::for_tests(1);
        let sites = ["arena_a", "arena_b", "arena_c", "arena_d", "arena_e"];
        for index in 0..100_000 {
            os.malloc(32, sites[index % sites.len()]).unwrap();
        }
        assert_eq!(os.resources().live_records(), 100_000);
        let before = baseline(&os);
        assert_eq!(before.site_totals.len(), os.resources().site_totals().len());
        assert!(
            before.site_totals.len() <= sites.len() + 1,
            "{}",
            before.site_totals.len()
        );
        assert!(before.unchanged(&os) && grown_kinds(&os, &before).is_empty());
        // One more record is seen through the totals of its site alone.
        os.malloc(8, "arena_c").unwrap();
        assert!(!before.unchanged(&os));
        let kind = os.resources().kind_by_name("heap block").unwrap();
        assert_eq!(grown_kinds(&os, &before), vec![(kind, 1, 8)]);
    }

    #[test]
    fn a_site_that_released_and_reacquired_is_not_blamed_for_another_sites_leak() {
        // snmalloc-like reload: the backend range is replaced each cycle, the pagemap leaks.
        let mut os = Os::for_tests(1);
        let old = os.malloc(64, "backend_reserve").unwrap();
        let before = baseline(&os);
        os.free(old, "backend_release").unwrap();
        os.malloc(64, "backend_reserve").unwrap();
        os.malloc(8, "pagemap_init").unwrap();
        let found = leaks(&os, &before, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].signature(), "leak:heap block:pagemap_init");
        assert_eq!(found[0].headline, "1 heap block (8 B) not released");
        // The replacement alone balances.
        let mut os = Os::for_tests(1);
        let old = os.malloc(64, "backend_reserve").unwrap();
        let before = baseline(&os);
        os.free(old, "backend_release").unwrap();
        os.malloc(64, "backend_reserve").unwrap();
        assert!(leaks(&os, &before, &[]).is_empty());
    }

    /// A table reallocated larger (`fd_table_grow`: the new block taken, the old one freed)
    /// holds as many blocks as before and more bytes. The report says that the block grew, and
    /// by how much; it never says that 0 blocks were not released.
    #[test]
    fn a_block_that_grew_in_bytes_not_in_count_is_reported_as_grown() {
        let mut os = Os::for_tests(1);
        let table = os.malloc(8 * 24, "fd_table_grow").unwrap();
        let before = baseline(&os);
        os.free(table, "fd_table_grow").unwrap();
        os.malloc(16 * 24, "fd_table_grow").unwrap();
        let found = leaks(&os, &before, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].signature(), "leak:heap block:fd_table_grow");
        assert_eq!(
            found[0].headline,
            "1 heap block grew by 192 B, not given back"
        );
        assert!(found[0].detail_text("acquired").is_some(), "{found:?}");
        assert_eq!(
            found[0].detail_text("baseline"),
            Some("1 heap block (192 B); now: 1 (384 B)")
        );
        // Two blocks at the site, one of them grown: the headline counts the site's blocks.
        let mut os = Os::for_tests(1);
        os.malloc(64, "arena_grow").unwrap();
        let arena = os.malloc(64, "arena_grow").unwrap();
        let before = baseline(&os);
        os.free(arena, "arena_grow").unwrap();
        os.malloc(128, "arena_grow").unwrap();
        let found = leaks(&os, &before, &[]);
        assert_eq!(
            found[0].headline,
            "2 heap blocks grew by 64 B in all, not given back"
        );
    }

    /// The check of a setup with no teardown counts what the setup's records hold, no more than
    /// the setup added to their site: pages the repetitions committed in the setup's
    /// reservation, and their own blocks, are theirs. A setup that only replaced what its site
    /// held before added nothing there.
    #[test]
    fn setup_leaks_count_what_the_setup_added_not_what_came_after() {
        let mut os = Os::for_tests(1);
        let older = os.malloc(8, "slot").unwrap();
        let before = baseline(&os);
        let base = os.reserve(64 * 4096, 4096, "arena_reserve").unwrap();
        os.commit(base, 4096, "arena_commit").unwrap();
        let scratch = os.malloc(8, "scratch").unwrap();
        os.free(scratch, "scratch").unwrap();
        os.free(older, "slot").unwrap();
        os.malloc(8, "slot").unwrap();
        let mut check = SetupCheck::new(before);
        check.setup_ended(&os);
        let mut nothing = SetupCheck::new(baseline(&os));
        nothing.setup_ended(&os);
        assert!(nothing.leaks(&os).is_empty(), "no setup");
        // A repetition.
        let start = baseline(&os);
        os.commit(base + 4096, 3 * 4096, "arena_commit").unwrap();
        os.malloc(8, "later").unwrap();
        check_repetition(&os, &start, start.unchanged(&os), &[], Some(&mut check));
        let found = check.leaks(&os);
        let signatures: Vec<String> = found.iter().map(Finding::signature).collect();
        assert_eq!(
            signatures,
            [
                "leak:reservation:arena_reserve",
                "leak:committed pages:arena_commit"
            ]
        );
        assert_eq!(
            found[1].headline,
            "1 committed page (4 KiB) acquired by `setup` not released"
        );
        assert_eq!(
            found[1].detail_text("baseline"),
            Some("0 committed pages before `setup`; now: 4")
        );
    }

    /// `SetupCheck::leaks` reads what the repetitions left as the last repetition's note left
    /// it, with no trim of its own: a check whose last repetition went unnoted (a record left
    /// in it since released) is refused, where, with no trim, it would count the released
    /// record as left.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "the last repetition was not noted")]
    fn the_setup_check_at_the_end_refuses_an_unnoted_repetition() {
        let mut os = Os::for_tests(1);
        let mut check = SetupCheck::new(baseline(&os));
        os.malloc(64, "keep").unwrap();
        check.setup_ended(&os);
        let start = baseline(&os);
        let leaked = os.malloc(64, "keep").unwrap();
        check_repetition(&os, &start, start.unchanged(&os), &[], Some(&mut check));
        // A repetition that gives the leak back, not noted.
        os.free(leaked, "free").unwrap();
        check.leaks(&os);
    }

    /// The end of a lifecycle with a setup and no teardown: what the setup added is given back,
    /// but for the records the repetitions left (reported after each). The setup's block
    /// replaced by a repetition is reported, also after a leak there was given back, and also at
    /// another site of its kind; a record a repetition left is not, even when the setup's block
    /// went instead, or when a repetition released it and acquired another in its place (at
    /// another site too) before the setup's went; the setup's own block still held is, even
    /// when a later repetition gave a repetition's leak back.
    #[test]
    fn the_setup_check_counts_a_sites_rise_past_what_the_repetitions_left() {
        // (setup's block at `keep`, then what the repetitions acquire): each case's
        // repetitions, run on them, and the finding at the end it reports, if any: its site
        // and headline.
        type Repetition = fn(&mut Os, &mut Vec<u64>);
        // The site and headline of the finding at the end, if any.
        type Reported = Option<(&'static str, &'static str)>;
        let leak: Repetition = |os, held| held.push(os.malloc(64, "keep").unwrap());
        let free_setups: Repetition = |os, held| os.free(held.remove(0), "free").unwrap();
        let free_leak: Repetition = |os, held| os.free(held.remove(1), "free").unwrap();
        let replace_setups: Repetition = |os, held| {
            os.free(held.remove(0), "free").unwrap();
            held.insert(0, os.malloc(64, "keep").unwrap());
        };
        let replace_leak: Repetition = |os, held| {
            os.free(held.remove(1), "free").unwrap();
            held.insert(1, os.malloc(64, "keep").unwrap());
        };
        let move_setups: Repetition = |os, held| {
            os.free(held.remove(0), "free").unwrap();
            held.insert(0, os.malloc(64, "elsewhere").unwrap());
        };
        let move_leak: Repetition = |os, held| {
            os.free(held.remove(1), "free").unwrap();
            held.insert(1, os.malloc(64, "elsewhere").unwrap());
        };
        let free_both_keep_one: Repetition = |os, held| {
            os.free(held.remove(1), "free").unwrap();
            os.free(held.remove(0), "free").unwrap();
            held.push(os.malloc(64, "keep").unwrap());
        };
        let own = Some((
            "keep",
            "1 heap block (64 B) acquired by `setup` not released",
        ));
        let in_place = Some((
            "keep",
            "1 heap block (64 B) acquired in place of `setup`'s not released",
        ));
        let elsewhere = Some((
            "elsewhere",
            "1 heap block (64 B) acquired in place of `setup`'s not released",
        ));
        let cases: [(&str, Vec<Repetition>, Reported); 11] = [
            ("replaced", vec![replace_setups], in_place),
            (
                "a leak, then the setup's block freed",
                vec![leak, free_setups],
                None,
            ),
            ("a leak, then the leak freed", vec![leak, free_leak], own),
            ("the setup's block freed", vec![free_setups], None),
            (
                "a leak, the leak freed, then the setup's block replaced",
                vec![leak, free_leak, replace_setups],
                in_place,
            ),
            (
                "a leak, the setup's block replaced, then the leak freed",
                vec![leak, replace_setups, free_leak],
                in_place,
            ),
            (
                "a leak replaced, then the setup's block freed",
                vec![leak, replace_leak, free_setups],
                None,
            ),
            (
                "a leak and the setup's block freed, one block kept",
                vec![leak, free_both_keep_one],
                None,
            ),
            (
                "the setup's block moved to another site",
                vec![move_setups],
                elsewhere,
            ),
            (
                "a leak moved to another site, then the setup's block freed",
                vec![leak, move_leak, free_setups],
                None,
            ),
            (
                "a leak moved to another site, then the setup's block moved",
                vec![leak, move_leak, move_setups],
                elsewhere,
            ),
        ];
        for (case, repetitions, reported) in cases {
            let mut os = Os::for_tests(1);
            let mut check = SetupCheck::new(baseline(&os));
            let mut held = vec![os.malloc(64, "keep").unwrap()];
            check.setup_ended(&os);
            for repetition in repetitions {
                let start = baseline(&os);
                repetition(&mut os, &mut held);
                // As the runner checks them.
                check_repetition(&os, &start, start.unchanged(&os), &[], Some(&mut check));
            }
            let found = check.leaks(&os);
            let found: Vec<(&str, &str)> = found
                .iter()
                .map(|f| (f.site.as_str(), f.headline.as_str()))
                .collect();
            assert_eq!(found, Vec::from_iter(reported), "{case}");
        }
    }

    /// Pages, whose records grow: a repetition's leak in a reservation of its own, given back
    /// with it, no longer covers the setup's pages once a later repetition replaced the setup's
    /// reservation; of the pages that reservation held, those a repetition committed in it (its
    /// leak, reported after it) went on in the reservation acquired in its place, and only the
    /// setup's page is reported, with its bytes.
    #[test]
    fn the_setup_check_counts_pages_by_the_records_that_hold_them() {
        const ARENA_BYTES: u64 = 16 * 4096;
        let repetition = |os: &mut Os, check: &mut SetupCheck, ops: &dyn Fn(&mut Os)| {
            let start = baseline(os);
            ops(os);
            check_repetition(os, &start, start.unchanged(os), &[], Some(check));
        };
        let mut os = Os::for_tests(1);
        let mut check = SetupCheck::new(baseline(&os));
        let setups = os.reserve(ARENA_BYTES, 4096, "arena_reserve").unwrap();
        os.commit(setups, 4096, "arena_commit").unwrap();
        check.setup_ended(&os);
        // Leaks a reservation with two pages, and two pages more in the setup's.
        let leaked = std::cell::Cell::new(0);
        repetition(&mut os, &mut check, &|os| {
            let base = os.reserve(ARENA_BYTES, 4096, "arena_reserve").unwrap();
            os.commit(base, 2 * 4096, "arena_commit").unwrap();
            os.commit(setups + 4096, 2 * 4096, "arena_commit").unwrap();
            leaked.set(base);
        });
        assert_eq!(
            check.leaks(&os).len(),
            2,
            "the setup's reservation and page"
        );
        // Gives the leaked reservation back.
        repetition(&mut os, &mut check, &|os| {
            os.release(leaked.get(), ARENA_BYTES, "arena_release")
                .unwrap();
        });
        // Replaces the setup's reservation, its three pages with it.
        repetition(&mut os, &mut check, &|os| {
            os.release(setups, ARENA_BYTES, "arena_release").unwrap();
            let base = os.reserve(ARENA_BYTES, 4096, "arena_reserve").unwrap();
            os.commit(base, 3 * 4096, "arena_commit").unwrap();
        });
        let found = check.leaks(&os);
        let found: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.site.as_str(), f.headline.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "arena_reserve",
                    "1 reservation (64 KiB) acquired in place of `setup`'s not released"
                ),
                (
                    "arena_commit",
                    "1 committed page (4 KiB) acquired in place of `setup`'s not released"
                ),
            ]
        );
    }

    #[test]
    fn growth_names_the_site_that_grew_not_the_latest_acquisition() {
        let mut os = Os::for_tests(1);
        let mut detector = GrowthDetector::new(4, Vec::new());
        let mut churn = os.malloc(8, "churn").unwrap();
        let mut found = Vec::new();
        for _ in 0..64 {
            os.malloc(8, "grows").unwrap();
            // Acquired after the leak in every repetition, but balanced.
            os.free(churn, "churn_free").unwrap();
            churn = os.malloc(8, "churn").unwrap();
            found.extend(detector.observe(&os));
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].signature(), "growth:heap block:grows");
    }

    /// A leak at one site names each op of the scenario that acquired its records once, oldest
    /// first: the same op in three repetitions is one op, and two declared threads' ops at the
    /// same index are two, whatever thread ran them.
    #[test]
    fn a_leak_names_each_op_that_acquired_at_its_site_once() {
        use crate::findings::OpList;
        let mut os = Os::for_tests(1);
        let at = |os: &mut Os, repetition, list, index, op_name, thread| {
            os.set_position(crate::os::Position {
                lifecycle: 0,
                repetition,
                op: crate::os::OpSlot::new(list, OpList::Ops, index),
                op_name,
                thread,
            });
        };
        let before = baseline(&os);
        for repetition in 0..3 {
            at(&mut os, repetition, OpList::Ops, 2, "push", 0);
            os.malloc(8, "fl_push").unwrap();
            at(
                &mut os,
                repetition,
                OpList::Thread,
                1,
                "push",
                1 + repetition,
            );
            os.malloc(8, "fl_push").unwrap();
            at(
                &mut os,
                repetition,
                OpList::Thread,
                1,
                "grow",
                4 + repetition,
            );
            os.malloc(8, "fl_push").unwrap();
        }
        let found = leaks(&os, &before, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        let lines: Vec<(&str, &str)> = found[0]
            .details
            .iter()
            .map(|detail| (detail.label.as_str(), detail.text.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    "acquired",
                    "op #2 `push` → fl_push (lifecycle 1, repetition 1, thread 0)"
                ),
                (
                    "also acquired",
                    "op #1 `push` → fl_push (lifecycle 1, repetition 1, thread 1)"
                ),
                (
                    "also acquired",
                    "op #1 `grow` → fl_push (lifecycle 1, repetition 1, thread 4)"
                ),
                ("baseline", "0 heap blocks; now: 9"),
            ]
        );
    }

    #[test]
    fn plurals_read_as_english() {
        assert_eq!(plural("mutex", 0), "mutexes");
        assert_eq!(plural("mutex", 1), "mutex");
        assert_eq!(plural("heap block", 2), "heap blocks");
        assert_eq!(plural("committed pages", 2), "committed pages");
        assert_eq!(plural("committed pages", 1), "committed page");
        assert_eq!(plural("waiter entry", 2), "waiter entries");
        assert_eq!(plural("waiter entry", 1), "waiter entry");
        assert_eq!(plural("tls key", 0), "tls keys");
    }

    #[test]
    fn leak_report_groups_by_site_oldest_first() {
        let mut os = Os::for_tests(1);
        let before = baseline(&os);
        for _ in 0..3 {
            os.malloc(10, "second_site").unwrap();
        }
        let first = os.malloc(5, "first_site").unwrap();
        os.free(first, "t").unwrap();
        os.malloc(5, "first_site").unwrap();
        let found = leaks(&os, &before, &[]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].site, "second_site");
        assert!(
            found[0].headline.starts_with("3 heap blocks (30 B)"),
            "{}",
            found[0].headline
        );
        assert_eq!(found[1].site, "first_site");
    }

    #[test]
    fn series_lists_each_repetition_and_zero_before_a_kind_was_registered() {
        let mut os = Os::for_tests(1);
        let mut detector = GrowthDetector::new(0, Vec::new());
        let block = os.malloc(8, "first").unwrap();
        detector.observe(&os);
        os.free(block, "first").unwrap();
        let late = os.register_kind("late kind", false);
        os.track(late, 0, 0, "late");
        detector.observe(&os);
        os.track(late, 0, 0, "late");
        detector.observe(&os);
        let heap_block = os.resources().kind_by_name("heap block").unwrap();
        assert_eq!(detector.series(heap_block), vec![1, 0, 0]);
        assert_eq!(detector.series(late), vec![0, 1, 2]);
        let mut retaken = baseline(&os);
        let _kept = os.malloc(8, "kept").unwrap();
        assert_eq!(leaks(&os, &retaken, &[]).len(), 1);
        retaken.retake(&os);
        assert!(leaks(&os, &retaken, &[]).is_empty());
    }

    #[test]
    fn growth_catches_one_per_repetition_but_not_a_cache_that_fills_and_stops() {
        let mut os = Os::for_tests(1);
        let ids = os.register_kind("fn ptr id", true);
        let mut detector = GrowthDetector::new(
            16,
            vec![CacheAllowance {
                kind: ids,
                per_key_max: 32,
            }],
        );
        // A cache of up to 32 ids for one key fills slowly and stops.
        let mut found = Vec::new();
        for repetition in 0..500u64 {
            if repetition < 32 * 3 && repetition % 3 == 0 {
                os.track(ids, 0, 7, "cast");
            }
            found.extend(detector.observe(&os));
        }
        assert!(found.is_empty(), "a bounded cache is not growth: {found:?}");

        let mut os = Os::for_tests(1);
        let ids = os.register_kind("fn ptr id", true);
        let mut detector = GrowthDetector::new(
            16,
            vec![CacheAllowance {
                kind: ids,
                per_key_max: 32,
            }],
        );
        let mut first_at = None;
        for repetition in 0..300u64 {
            os.track(ids, 0, 7, "fresh_cast");
            let found = detector.observe(&os);
            if !found.is_empty() && first_at.is_none() {
                first_at = Some(repetition);
                assert_eq!(found[0].signature(), "growth:fn ptr id:fresh_cast");
                assert!(!found[0].series.is_empty());
            }
            if first_at.is_some() && first_at != Some(repetition) {
                assert!(found.is_empty(), "reported once");
            }
        }
        let first_at = first_at.expect("one id per repetition is growth");
        assert!(
            first_at < 100,
            "found within a few dozen repetitions, at {first_at}"
        );
    }

    /// A growth past a declared cache says what the cache allowed (per key, for how many keys)
    /// and how far the count went, and which record its `acquired` line names.
    #[test]
    fn growth_past_a_cache_says_what_was_allowed_and_which_record_it_names() {
        let mut os = Os::for_tests(1);
        let ids = os.register_kind("fn ptr id", true);
        let cache = CacheAllowance {
            kind: ids,
            per_key_max: 32,
        };
        let mut detector = GrowthDetector::new(16, vec![cache]);
        let mut found = Vec::new();
        for repetition in 0..200u64 {
            os.track(ids, 0, 7 + repetition % 2, "fresh_cast");
            found.extend(detector.observe(&os));
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].headline,
            "fn ptr id count keeps rising: 16 after warm-up, 81 after repetition 81 (+65, allowed +64)"
        );
        assert_eq!(
            found[0].notes,
            [
                "the declared cache of fn ptr id allows a rise of up to 64 after the warm-up (its \
              bound, 32 per key for 2 live keys); the count rose past it, by 65 to 81"
            ]
        );
        let acquired = found[0].detail_text("acquired").unwrap();
        assert!(
            acquired.ends_with(", the newest of 81 live records at the site"),
            "{acquired}"
        );
    }

    /// `observe_unchanged` after a repetition that changed no site's totals answers as `observe`:
    /// the same findings in the same repetitions and the same series, also when a cache's live
    /// keys change under unchanged totals (and its allowance with them) and when a kind is
    /// registered.
    #[test]
    fn an_unchanged_repetition_is_observed_as_observe_would() {
        let mut os = Os::for_tests(1);
        let ids = os.register_kind("fn ptr id", true);
        let cache = || {
            vec![CacheAllowance {
                kind: ids,
                per_key_max: 2,
            }]
        };
        let mut every = GrowthDetector::new(4, cache());
        let mut unchanged = GrowthDetector::new(4, cache());
        let mut after_last = baseline(&os);
        let (mut records, mut late, mut reported) = (Vec::new(), None, Vec::new());
        let text = |findings: &[Finding]| -> Vec<String> {
            let text = |f: &Finding| format!("{} {}", f.signature(), f.headline);
            findings.iter().map(text).collect()
        };
        for repetition in 0..60u64 {
            match repetition {
                8..=31 if repetition % 2 == 0 => {
                    records.push(os.track(ids, 16, repetition, "fill"));
                }
                40 => late = Some(os.register_kind("late", false)),
                50 => {
                    // The same totals under one key: the cache's allowance falls below its growth.
                    for record in records.drain(..) {
                        os.untrack(record, "fill");
                    }
                    records.extend((0..12).map(|_| os.track(ids, 16, 7, "fill")));
                }
                _ => {}
            }
            let expected = every.observe(&os);
            let found = if after_last.unchanged(&os) {
                unchanged.observe_unchanged(&os)
            } else {
                unchanged.observe(&os)
            };
            after_last.retake(&os);
            assert_eq!(text(&found), text(&expected), "repetition {repetition}");
            reported.extend(text(&found));
        }
        assert_eq!(reported.len(), 1, "the growth under one key: {reported:?}");
        for kind in [ids, late.expect("registered")] {
            assert_eq!(unchanged.series(kind), every.series(kind));
        }
    }

    #[test]
    fn a_baseline_is_unchanged_until_a_site_changes() {
        let mut os = Os::for_tests(1);
        let at_repetition = |os: &mut Os, repetition| {
            os.set_position(crate::os::Position {
                lifecycle: 0,
                repetition,
                op: crate::os::OpSlot::new(crate::os::OpList::Ops, crate::os::OpList::Ops, 1),
                op_name: "op",
                thread: 0,
            });
        };
        let first = os.malloc(64, "a").unwrap();
        let before = baseline(&os);
        assert!(before.unchanged(&os));
        os.free(first, "a").unwrap();
        assert!(!before.unchanged(&os), "a site went down");
        at_repetition(&mut os, 1);
        let again = os.malloc(64, "a").unwrap();
        assert!(before.unchanged(&os), "and back up");
        // Taken again as unchanged, the baseline answers as one taken in full: a leak at `a`
        // names the acquisition since this baseline, not `again` before it.
        let mut before = before;
        before.retake_unchanged(&os);
        let full = baseline(&os);
        at_repetition(&mut os, 2);
        os.malloc(8, "a").unwrap();
        os.malloc(8, "b").unwrap();
        assert!(!before.unchanged(&os), "a site made since holds something");
        let text = |findings: Vec<Finding>| -> Vec<String> {
            findings.iter().map(|f| format!("{f:?}")).collect()
        };
        let found = text(leaks(&os, &before, &[]));
        assert_eq!(found, text(leaks(&os, &full, &[])));
        assert_eq!(found.len(), 2, "the blocks at a and b leak: {found:?}");
        // Repetition index 2 is the third, as a report counts.
        assert!(
            found.iter().all(|f| f.contains("repetition 3")),
            "{found:?}"
        );
        os.free(again, "a").unwrap();
    }

    #[test]
    fn growth_without_a_cache_ignores_a_one_time_lazy_init() {
        let mut os = Os::for_tests(1);
        let mut detector = GrowthDetector::new(4, vec![]);
        let mut found = Vec::new();
        for repetition in 0..200 {
            if repetition == 50 {
                os.malloc(64, "lazy_init").unwrap();
            }
            found.extend(detector.observe(&os));
        }
        assert!(found.is_empty());
    }
}
