//! The trace: every observable event folded into a rolling hash, optionally written as JSON lines.
//!
//! Two runs of one (scenario, seed) must give the same hash; the determinism check runs a scenario
//! twice and compares. Events are recorded as a small tag and two words so that hashing costs a
//! few nanoseconds; the JSON form is produced only when a sink is attached.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;

use crate::findings::{OpList, OpRef};

/// What kind of event happened. The names appear in JSON traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Op,
    Lifecycle,
    Schedule,
    Block,
    Unblock,
    Fault,
    Finding,
    Syscall(&'static str),
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Op => "op",
            EventKind::Lifecycle => "lifecycle",
            EventKind::Schedule => "schedule",
            EventKind::Block => "block",
            EventKind::Unblock => "unblock",
            EventKind::Fault => "fault",
            EventKind::Finding => "finding",
            EventKind::Syscall(name) => name,
        }
    }

    /// A syscall's tag hashes its name with the `const fn` `hash_str`, not through the name cache:
    /// every syscall is named by a literal at an always-inlined call site, so the hash folds to a
    /// constant there, where a cache lookup would cost a load and a compare on every event.
    #[inline(always)]
    fn tag(self) -> u64 {
        match self {
            EventKind::Op => 1,
            EventKind::Lifecycle => 2,
            EventKind::Schedule => 3,
            EventKind::Block => 4,
            EventKind::Unblock => 5,
            EventKind::Fault => 6,
            EventKind::Finding => 7,
            EventKind::Syscall(name) => 0x100 ^ hash_str(name),
        }
    }
}

/// The rolling hash and optional JSON-lines sink.
pub struct Trace {
    hash: u64,
    events: u64,
    sink: Option<Box<dyn Write>>,
    /// Hashes of static names seen lately (op names; syscall names fold at compile time), by
    /// address: see `NameHashes`.
    names: NameHashes,
}

/// Slots of the static-name hash cache: more than the names one run uses in its hot loop.
const NAME_SLOTS: usize = 64;

/// A cache from a static string's address and length to its FNV-1a hash. A run hashes an op's
/// name for every op event; the names are a few dozen literals, and hashing them byte by byte
/// again and again was most of the trace's cost. The cache changes no hash: a static string's
/// bytes never change, so one address and length always hash the same.
///
/// A name has a home slot, by its address; one whose home another name holds goes in the next
/// free slot after it (linear probing), and no name is ever evicted. Which names share a home
/// depends only on where the linker put them: when each name had its home alone, two that
/// shared one evicted each other, and were hashed again, on every op (an allocator fuzz input
/// 0.14% dearer from nothing but a change of layout elsewhere).
///
/// The slots are held by field, a list each, so that a slot's address, length and hash are each
/// read at the slot's index scaled by 8, which an x86 load does for nothing: held as one list of
/// triples, every look-up first computed where its slot was.
#[derive(Clone)]
struct NameHashes {
    /// Held in place rather than boxed: every run makes a trace, and allocating the slots cost
    /// more than moving them with the OS that holds the trace. An empty slot has address 0, which
    /// no string has.
    addresses: [usize; NAME_SLOTS],
    lengths: [usize; NAME_SLOTS],
    hashes: [u64; NAME_SLOTS],
}

impl NameHashes {
    fn new() -> NameHashes {
        NameHashes {
            addresses: [0; NAME_SLOTS],
            lengths: [0; NAME_SLOTS],
            hashes: [0; NAME_SLOTS],
        }
    }

    /// Whether slot `slot` holds the name at `address` of `length` bytes.
    #[inline(always)]
    fn holds(&self, slot: usize, address: usize, length: usize) -> bool {
        self.addresses[slot] == address && self.lengths[slot] == length && address != 0
    }

    /// The hash of `text`: from its home slot when it is there (nearly always), from the slots
    /// after it out of line. The home is the address's low bits, not a hash of them: the
    /// literals of one crate lie side by side, and then no two within a stretch of
    /// `NAME_SLOTS` bytes share a home.
    #[inline(always)]
    fn hash(&mut self, text: &'static str) -> u64 {
        let address = text.as_ptr() as usize;
        let home = address % NAME_SLOTS;
        if self.holds(home, address, text.len()) {
            return self.hashes[home];
        }
        self.hash_away_from_home(text, home)
    }

    /// The hash of `text`, which its home slot `home` does not hold: from the first slot after
    /// it that does, or hashed and kept in the first free one. With every slot taken by other
    /// names (more than a run uses), it is hashed every time.
    #[cold]
    #[inline(never)]
    fn hash_away_from_home(&mut self, text: &'static str, home: usize) -> u64 {
        let address = text.as_ptr() as usize;
        for probe in 0..NAME_SLOTS {
            let slot = (home + probe) % NAME_SLOTS;
            if self.holds(slot, address, text.len()) {
                return self.hashes[slot];
            }
            if self.addresses[slot] == 0 {
                let hash = hash_str(text);
                self.addresses[slot] = address;
                self.lengths[slot] = text.len();
                self.hashes[slot] = hash;
                return hash;
            }
        }
        hash_str(text)
    }
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Trace {{ hash: {:016x}, events: {} }}",
            self.hash, self.events
        )
    }
}

impl Default for Trace {
    fn default() -> Self {
        Trace::new()
    }
}

impl Trace {
    pub fn new() -> Trace {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            events: 0,
            sink: None,
            names: NameHashes::new(),
        }
    }

    /// Writes every later event as one JSON object per line.
    pub fn attach_sink(&mut self, sink: Box<dyn Write>) {
        self.sink = Some(sink);
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// Records one event with two words of detail.
    ///
    /// Always inlined, so that the tag of a syscall named by a literal folds to a constant at the
    /// call site (an out-of-line call would hash the name byte by byte on every event); the JSON
    /// sink, rarely attached, stays out of line.
    #[inline(always)]
    pub fn event(&mut self, kind: EventKind, a: u64, b: u64) {
        self.fold(kind.tag(), a, b);
        if self.sink.is_some() {
            self.write_event(kind.name(), a, b);
        }
    }

    /// Records that `thread` starts the op `name`: an `Op` event whose detail is the name's hash
    /// (`hash_str`, cached by address in `names`). A JSON trace also names the op and where it
    /// is (`place`, asked only when there is a sink), so that a person reading it (or the first
    /// difference of two traces) sees which op ran, and a report's op can be found in it.
    #[inline(always)]
    pub fn op(&mut self, thread: u32, name: &'static str, place: impl FnOnce() -> OpPlace) {
        let name_hash = self.names.hash(name);
        self.fold(EventKind::Op.tag(), u64::from(thread), name_hash);
        if self.sink.is_some() {
            self.write_op_event(thread, name_hash, name, place());
        }
    }

    /// The fold is part of every recorded hash: a repro's `[expect] trace_hash`, and the shards
    /// of a sweep that are merged later. A cheaper fold would make all of them disagree, so it
    /// stays. (Commit db48cc9 tried two mixes, with the tag xored into the first word: 569
    /// instead of 578 instructions per page reserve+commit+release and 413.5 instead of 425.9 per
    /// scheduling decision, by the README's callgrind commands run at it and at its parent.)
    #[inline(always)]
    fn fold(&mut self, tag: u64, a: u64, b: u64) {
        self.hash = mix(mix(mix(self.hash, tag), a), b);
        self.events += 1;
    }

    /// Takes the event's name rather than its kind, so that a hot caller passes constants
    /// instead of building a kind on its stack for this rarely taken path.
    #[cold]
    #[inline(never)]
    fn write_event(&mut self, name: &str, a: u64, b: u64) {
        if let Some(sink) = self.sink.as_mut() {
            // A failed trace write must not change the simulation. The sink remembers it
            // (`ErrorKeepingWriter`), and the CLI reports it at the end.
            let _ = writeln!(
                sink,
                "{{\"i\":{},\"ev\":\"{name}\",\"a\":{a},\"b\":{b}}}",
                self.events,
            );
        }
    }

    #[cold]
    #[inline(never)]
    fn write_op_event(&mut self, thread: u32, name_hash: u64, name: &str, place: OpPlace) {
        if let Some(sink) = self.sink.as_mut() {
            let OpPlace {
                lifecycle,
                repetition,
                list,
                index,
            } = place;
            let _ = writeln!(
                sink,
                "{{\"i\":{},\"ev\":\"op\",\"a\":{thread},\"b\":{name_hash},\"op\":{},\"lifecycle_index\":{lifecycle},\"repetition\":{repetition},\"list\":\"{list}\",\"index\":{index}}}",
                self.events,
                json_string(name)
            );
        }
    }

    /// Records an event whose detail is text (a finding's signature, a lifecycle name).
    pub fn event_text(&mut self, kind: EventKind, text: &str) {
        let tag = kind.tag();
        self.hash = mix(mix(self.hash, tag), hash_str(text));
        self.events += 1;
        if let Some(sink) = self.sink.as_mut() {
            let _ = writeln!(
                sink,
                "{{\"i\":{},\"ev\":\"{}\",\"text\":{}}}",
                self.events,
                kind.name(),
                json_string(text)
            );
        }
    }

    pub fn flush(&mut self) {
        if let Some(sink) = self.sink.as_mut() {
            let _ = sink.flush();
        }
    }
}

/// Where an op is in its scenario, as a JSON trace's op line gives it: the keys and counting of
/// a report's `details[].op` (`lifecycle_index` and `repetition` from 0, `list` as the file
/// spells it, `index` from 1), so that the op a finding names is found in the trace by them. Not
/// hashed: it follows from the ops run, which are.
#[derive(Clone, Copy, Debug)]
pub struct OpPlace {
    pub lifecycle: u32,
    pub repetition: u32,
    pub list: &'static str,
    pub index: u32,
}

/// Where the traces of two runs of one (scenario, seed) part: what explains a determinism
/// finding. Events are compared as their JSON lines, which carry every word that is hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceComparison {
    /// The traces part at event `event` (counted from 1). `first` and `second` are each run's
    /// line there, `None` where that run's trace had ended; `last_op` is the last op line the
    /// two share before it (of whichever thread), `None` when they part before any op. When
    /// that op ran on a spawned thread, `last_op_spawn` is the op line of the spawn that
    /// started the thread: the trace names a thread by its id only, and the spawn op is what
    /// says which declared thread it runs (see `last_op_ref`).
    Parted {
        event: u64,
        first: Option<String>,
        second: Option<String>,
        last_op: Option<String>,
        last_op_spawn: Option<String>,
    },
    /// Both traces are the same `events` events.
    Agreed { events: u64 },
    /// The first `kept` events agree, which is all of the first trace that was kept; the traces
    /// had `first_events` and `second_events` events in all.
    AgreedAsFarAsKept {
        kept: u64,
        first_events: u64,
        second_events: u64,
    },
}

impl TraceComparison {
    /// A run's event where the traces part, as a report prints it.
    pub fn event_text(line: &Option<String>) -> &str {
        line.as_deref().unwrap_or("(its trace had ended)")
    }

    /// The last op both runs started before they parted, as a report prints it.
    pub fn last_op_text(line: &Option<String>) -> &str {
        line.as_deref().unwrap_or("(none: before the first op)")
    }

    /// The last op both runs started before they parted, as data (`OpRef`), read from its op
    /// line: its place (`OpPlace`'s keys) and its thread (`a`), so that a report points at the
    /// op in the scenario file as it does for every op it names. `None` when the traces agree
    /// or part before the first op. An op of a spawned thread gets its declared thread's name
    /// (`thread_name`, which its file location needs) from `spawned_thread`, given the spawn op
    /// that started the thread: the scenario's op there names it, and the trace does not. Where
    /// that gives no name, the op has none, and no file location follows from it. Its
    /// `during` is the spawn's too, where the main thread made the spawn.
    pub fn last_op_ref(
        &self,
        spawned_thread: impl FnOnce(&OpRef) -> Option<String>,
    ) -> Option<OpRef> {
        let TraceComparison::Parted {
            last_op,
            last_op_spawn,
            ..
        } = self
        else {
            return None;
        };
        let mut op = op_ref_of_line(last_op.as_deref()?)?;
        if op.list == OpList::Thread {
            let spawn = last_op_spawn.as_deref().and_then(op_ref_of_line);
            // The thread ran in the list the spawn did (known when a main thread's op spawned it).
            op.during = spawn.as_ref().and_then(|spawn| spawn.during);
            op.thread_name = spawn.and_then(|spawn| spawned_thread(&spawn));
        }
        Some(op)
    }
}

/// An op line of a JSON trace as data (`OpRef`): its place and its thread (`a`). `None` for a
/// line that is no op line. A spawned thread's op has no `thread_name` and no `during`: the line
/// holds its id and its own list, not the main thread's.
fn op_ref_of_line(line: &str) -> Option<OpRef> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event["ev"] != "op" {
        return None;
    }
    let number = |key: &str| event[key].as_u64().and_then(|n| u32::try_from(n).ok());
    let list: OpList = serde_json::from_value(event["list"].clone()).ok()?;
    Some(OpRef {
        lifecycle: number("lifecycle_index")?,
        repetition: number("repetition")?,
        list,
        index: number("index")?,
        name: event["op"].as_str()?.to_string(),
        thread: number("a")?,
        during: list.run_once(),
        thread_name: None,
        location: None,
        trace_event: None,
    })
}

/// What two traces share up to where they part, as a comparer sees their lines go by: the last
/// op line, and for an op of a spawned thread the op line of the spawn that started it.
#[derive(Default)]
struct SharedOps {
    last_op: Option<String>,
    /// The spawn op line of `last_op`'s thread, taken when `last_op` was, while the thread ran.
    last_op_spawn: Option<Rc<str>>,
    /// The spawn op line of each spawned thread that has not exited, by tid: the op line a
    /// `threads.spawn` line follows is its spawn op's (a spawn is one step of the main thread;
    /// a thread a subject's op spawns gets that op, which names no declared thread), and a
    /// `threads.exit` line ends the thread's ops. So only running threads are kept, at most
    /// `threads_max` of them (unjoined), however many a run spawns.
    running: BTreeMap<u32, Rc<str>>,
}

impl SharedOps {
    /// Takes in a line both traces have.
    fn shared(&mut self, line: &[u8]) {
        let Some((event, thread)) = event_of(line) else {
            return;
        };
        match event {
            b"op" => {
                self.last_op = Some(String::from_utf8_lossy(line).into_owned());
                self.last_op_spawn = thread.and_then(|tid| self.running.get(&tid).cloned());
            }
            b"threads.spawn" => {
                if let (Some(tid), Some(spawn)) = (thread, &self.last_op) {
                    self.running.insert(tid, Rc::from(spawn.as_str()));
                }
            }
            b"threads.exit" => {
                if let Some(tid) = thread {
                    self.running.remove(&tid);
                }
            }
            _ => {}
        }
    }

    fn last_op_spawn(&self) -> Option<String> {
        self.last_op_spawn.as_deref().map(String::from)
    }
}

/// A JSON trace line's event name (`ev`) and thread (the `a` the trace writes right after it,
/// `{"i":N,"ev":"op","a":T,…`, which is a thread's id for an op, a spawn and an exit; `None`
/// where the line has no `a`). A byte search rather than a JSON parse: it runs on every line
/// of a compared trace. `None` for a line with no event name.
fn event_of(line: &[u8]) -> Option<(&[u8], Option<u32>)> {
    const EVENT_MARK: &[u8] = b"\"ev\":\"";
    let at = line
        .windows(EVENT_MARK.len())
        .position(|w| w == EVENT_MARK)?;
    let rest = &line[at + EVENT_MARK.len()..];
    let name_end = rest.iter().position(|&byte| byte == b'"')?;
    let thread = rest[name_end + 1..]
        .strip_prefix(b",\"a\":".as_slice())
        .and_then(|words| {
            let digits = words.iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&words[..digits]).ok()?.parse().ok()
        });
    Some((&rest[..name_end], thread))
}

/// Compares the traces of two runs, one after the other, while keeping only the first: its
/// lines are kept up to `bytes_max` bytes (text and index together), and the second run's are
/// compared as they arrive. Give `first_sink` to the first run and `second_sink` to the second,
/// then `finish`.
pub struct TraceComparer {
    state: Rc<RefCell<Comparing>>,
}

#[derive(Default)]
struct Comparing {
    bytes_max: usize,
    /// The first run's kept lines, end to end, and where each ends.
    text: Vec<u8>,
    ends: Vec<u32>,
    truncated: bool,
    /// Lines of the first run, kept or not.
    first_lines: u64,
    /// Lines of the second run seen so far.
    compared: u64,
    shared: SharedOps,
    parted: Option<(u64, Option<String>, Option<String>)>,
}

impl Comparing {
    fn kept_line(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] as usize,
        };
        Some(&self.text[start..end])
    }

    fn first_line(&mut self, line: &[u8]) {
        self.first_lines += 1;
        let cost = line.len() + std::mem::size_of::<u32>();
        if self.truncated || self.text.len() + self.ends.len() * 4 + cost > self.bytes_max {
            self.truncated = true;
            return;
        }
        self.text.extend_from_slice(line);
        self.ends.push(self.text.len() as u32);
    }

    fn second_line(&mut self, line: &[u8]) {
        self.compared += 1;
        if self.parted.is_some() {
            return;
        }
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        match self.kept_line(self.compared as usize - 1) {
            Some(kept) if kept == line => self.shared.shared(line),
            Some(kept) => self.parted = Some((self.compared, Some(text(kept)), Some(text(line)))),
            // Past what was kept of the first trace: nothing to compare with.
            None if self.truncated => {}
            None => self.parted = Some((self.compared, None, Some(text(line)))),
        }
    }
}

/// A sink that hands each complete line, without its newline, to `handle` (the trace writes a
/// line in pieces).
struct LineSink<H: FnMut(&[u8])> {
    partial: Vec<u8>,
    handle: H,
}

impl<H: FnMut(&[u8])> LineSink<H> {
    fn new(handle: H) -> LineSink<H> {
        LineSink {
            partial: Vec::new(),
            handle,
        }
    }
}

impl<H: FnMut(&[u8])> Write for LineSink<H> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&byte| byte == b'\n') {
            (self.handle)(&self.partial[..end]);
            self.partial.drain(..=end);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Compares a run's trace, line by line as the run writes it, with a trace written before
/// (`sim replay --compare-trace FILE`: the recorded run's trace, from the build before a change,
/// say), which is read as the comparison goes: nothing is kept but the last op line the two
/// share. Give `sink` to the run, then `finish`.
pub struct TraceAgainstRecorded {
    state: Rc<RefCell<AgainstRecorded>>,
}

struct AgainstRecorded {
    recorded: Box<dyn std::io::BufRead>,
    /// The recorded line read last, without its line end.
    line: Vec<u8>,
    /// Lines of the run seen so far.
    compared: u64,
    shared: SharedOps,
    parted: Option<(u64, Option<String>, Option<String>)>,
    /// Why the recorded file cannot be compared with: it could not be read on (a read error, a
    /// line too long for one), or it is no trace, found at the first of its lines that is not
    /// the run's (what looked like a mismatch would say that the build changed behaviour). Found
    /// where the traces part, so once at most.
    unusable: Option<RecordedTraceError>,
}

/// Why `sim replay --compare-trace FILE` cannot compare with FILE: it could not be read, or it is
/// not what `--trace` writes (the wrong file given: a repro, a report, a binary).
#[derive(Debug)]
pub enum RecordedTraceError {
    Unreadable(std::io::Error),
    /// Not one line: `--trace` writes one for the start of every run.
    Empty,
    /// Line `line` (from 1) is no event line; `column` (from 1, in bytes) is where the problem
    /// starts, and `problem` says what it is, without quoting the line (its bytes may be binary).
    NotATraceLine {
        line: u64,
        column: u64,
        problem: String,
    },
}

/// A JSON error's words without the position serde_json puts after them, for a message that
/// says the position once, in front (`FILE:LINE:COLUMN`). Here, the lowest module that reads
/// JSON, so that every reader of a JSON file (a trace, a sweep's results) says it one way.
pub(crate) fn json_error_words(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(words) => words.to_string(),
        None => message,
    }
}

/// The column (from 1) where serde_json places `error`. It counts columns from 1 but says 0 for
/// an error before a line's first character (an empty file, a line cut off after its newline);
/// every location a reader here gives starts at 1.
pub(crate) fn json_error_column(error: &serde_json::Error) -> usize {
    error.column().max(1)
}

/// The fields of `line`, the `number`th line (from 1) of a file given as a trace; or, where it is
/// not a line `--trace` writes (`{"i":number,"ev":"…",…}`), the column (from 1, in bytes) where
/// the problem starts and what it is. A full JSON parse: for a comparison, only of a recorded
/// line that is not the run's own (where the comparison parts), so once a comparison.
fn trace_event(
    line: &[u8],
    number: u64,
) -> Result<serde_json::Map<String, serde_json::Value>, (u64, String)> {
    const SHAPE: &str = r#"a trace line is one JSON event, `{"i":N,"ev":"…",…}`"#;
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(error) => {
            let at = error.valid_up_to();
            return Err((
                at as u64 + 1,
                format!("byte 0x{:02x} is not UTF-8 text; {SHAPE}", line[at]),
            ));
        }
    };
    let Some(start) = text.find(|c: char| !c.is_whitespace()) else {
        return Err((1, format!("an empty line; {SHAPE}")));
    };
    // Said before JSON's own words, which for text such as `name = "x"` are `expected ident`.
    if !text[start..].starts_with('{') {
        return Err((
            start as u64 + 1,
            format!("does not start with `{{`; {SHAPE}"),
        ));
    }
    let event: serde_json::Value = match serde_json::from_str(text) {
        Ok(event) => event,
        Err(error) => {
            let problem = json_error_words(&error);
            return Err((
                json_error_column(&error) as u64,
                format!("not JSON ({problem}); {SHAPE}"),
            ));
        }
    };
    let serde_json::Value::Object(fields) = event else {
        return Err((1, format!("JSON, but not an object; {SHAPE}")));
    };
    match fields.get("i").and_then(serde_json::Value::as_u64) {
        None => return Err((1, format!("no event number `i`; {SHAPE}"))),
        Some(i) if i != number => {
            return Err((
                1,
                format!(
                    "event \"i\":{i} on line {number}: a trace numbers its events from 1, one a \
                     line, from the start of the run"
                ),
            ));
        }
        Some(_) => {}
    }
    if !fields.get("ev").is_some_and(serde_json::Value::is_string) {
        return Err((1, format!("no event name `ev`; {SHAPE}")));
    }
    Ok(fields)
}

/// The longest line read from a recorded trace (`read_trace_line`): a trace's lines are short,
/// and a file that is no trace (`/dev/zero`) must not be read whole into one.
const RECORDED_LINE_BYTES_MAX: u64 = 1 << 20;

/// The next line of a recorded trace, line `number` (from 1), into `line` (cleared first)
/// without its line end: `false` at the end of the file. A line longer than
/// `RECORDED_LINE_BYTES_MAX` is no trace line, said with the limit. Every reader of a recorded
/// trace (`recorded_schedule`, a comparison) reads its lines through here, so both say it so.
fn read_trace_line(
    reader: &mut impl std::io::BufRead,
    line: &mut Vec<u8>,
    number: u64,
) -> Result<bool, RecordedTraceError> {
    use std::io::{BufRead, Read};
    line.clear();
    let read = reader
        .take(RECORDED_LINE_BYTES_MAX)
        .read_until(b'\n', line)
        .map_err(RecordedTraceError::Unreadable)?;
    if read == 0 {
        return Ok(false);
    }
    if read as u64 == RECORDED_LINE_BYTES_MAX && line.last() != Some(&b'\n') {
        return Err(RecordedTraceError::NotATraceLine {
            line: number,
            column: 1,
            problem: format!(
                "a line longer than {RECORDED_LINE_BYTES_MAX} bytes, which no trace writes"
            ),
        });
    }
    while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        line.pop();
    }
    Ok(true)
}

/// The thread chosen at each scheduling decision of the run that wrote the `--trace` file
/// `recorded` reads, in order: the `a` of its `schedule` events (`--strategy replay:TRACE`).
/// Every line is checked as a comparison checks the line where it parts.
pub fn recorded_schedule(
    mut recorded: impl std::io::BufRead,
) -> Result<Vec<u32>, RecordedTraceError> {
    let mut schedule = Vec::new();
    let mut line = Vec::new();
    for number in 1.. {
        let not_a_trace_line = |column: u64, problem: String| RecordedTraceError::NotATraceLine {
            line: number,
            column,
            problem,
        };
        if !read_trace_line(&mut recorded, &mut line, number)? {
            if number == 1 {
                return Err(RecordedTraceError::Empty);
            }
            break;
        }
        let event = trace_event(&line, number)
            .map_err(|(column, problem)| not_a_trace_line(column, problem))?;
        if event["ev"] == EventKind::Schedule.name() {
            let thread = event
                .get("a")
                .and_then(serde_json::Value::as_u64)
                .and_then(|a| u32::try_from(a).ok())
                .ok_or_else(|| {
                    not_a_trace_line(1, "a `schedule` event without a thread id `a`".into())
                })?;
            schedule.push(thread);
        }
    }
    Ok(schedule)
}

impl AgainstRecorded {
    /// The next recorded line, line `number` of the file, into `line`; false at the end (or at
    /// a read error, kept).
    fn next_recorded(&mut self, number: u64) -> bool {
        match read_trace_line(&mut self.recorded, &mut self.line, number) {
            Ok(read) => read,
            Err(error) => {
                self.unusable.get_or_insert(error);
                false
            }
        }
    }

    fn run_line(&mut self, line: &[u8]) {
        self.compared += 1;
        if self.parted.is_some() {
            return;
        }
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        if !self.next_recorded(self.compared) {
            if self.compared == 1 && self.unusable.is_none() {
                self.unusable = Some(RecordedTraceError::Empty);
            }
            self.parted = Some((self.compared, None, Some(text(line))));
        } else if self.line != line {
            self.check_recorded_line(self.compared);
            self.parted = Some((self.compared, Some(text(&self.line)), Some(text(line))));
        } else {
            self.shared.shared(line);
        }
    }

    /// Notes it if the recorded line just read, line `number` of the file, is no trace line.
    /// Only a line that differs from the run's is checked: one that is the same is the run's own.
    fn check_recorded_line(&mut self, number: u64) {
        if let Err((column, problem)) = trace_event(&self.line, number) {
            self.unusable = Some(RecordedTraceError::NotATraceLine {
                line: number,
                column,
                problem,
            });
        }
    }
}

impl TraceAgainstRecorded {
    pub fn new(recorded: Box<dyn std::io::BufRead>) -> TraceAgainstRecorded {
        TraceAgainstRecorded {
            state: Rc::new(RefCell::new(AgainstRecorded {
                recorded,
                ..AgainstRecorded::default()
            })),
        }
    }

    pub fn sink(&self) -> Box<dyn Write> {
        let state = self.state.clone();
        Box::new(LineSink::new(move |line| state.borrow_mut().run_line(line)))
    }

    /// Where the traces part (`first` is the recorded line, `second` the run's), or that they
    /// agree; an error if the recorded trace could not be read, or is not a trace.
    pub fn finish(self) -> Result<TraceComparison, RecordedTraceError> {
        let mut state = self.state.take();
        if state.parted.is_none() && state.next_recorded(state.compared + 1) {
            // The run's trace ended first.
            state.check_recorded_line(state.compared + 1);
            let recorded = String::from_utf8_lossy(&state.line).into_owned();
            state.parted = Some((state.compared + 1, Some(recorded), None));
        }
        if let Some(error) = state.unusable {
            return Err(error);
        }
        Ok(match state.parted {
            Some((event, first, second)) => TraceComparison::Parted {
                event,
                first,
                second,
                last_op_spawn: state.shared.last_op_spawn(),
                last_op: state.shared.last_op,
            },
            None => TraceComparison::Agreed {
                events: state.compared,
            },
        })
    }
}

impl Default for AgainstRecorded {
    /// No recorded lines: what is left in the shared cell once `finish` has taken the state.
    fn default() -> AgainstRecorded {
        AgainstRecorded {
            recorded: Box::new(std::io::empty()),
            line: Vec::new(),
            compared: 0,
            shared: SharedOps::default(),
            parted: None,
            unusable: None,
        }
    }
}

impl TraceComparer {
    pub fn new(bytes_max: usize) -> TraceComparer {
        TraceComparer {
            state: Rc::new(RefCell::new(Comparing {
                bytes_max,
                ..Comparing::default()
            })),
        }
    }

    fn sink(&self, second: bool) -> Box<dyn Write> {
        let state = self.state.clone();
        Box::new(LineSink::new(move |line| {
            let mut state = state.borrow_mut();
            if second {
                state.second_line(line);
            } else {
                state.first_line(line);
            }
        }))
    }

    pub fn first_sink(&self) -> Box<dyn Write> {
        self.sink(false)
    }

    pub fn second_sink(&self) -> Box<dyn Write> {
        self.sink(true)
    }

    pub fn finish(self) -> TraceComparison {
        let state = self.state.take();
        if let Some((event, first, second)) = state.parted {
            return TraceComparison::Parted {
                event,
                first,
                second,
                last_op_spawn: state.shared.last_op_spawn(),
                last_op: state.shared.last_op,
            };
        }
        let kept = state.ends.len() as u64;
        if state.compared < kept {
            // The second trace ended early.
            let first = state.kept_line(state.compared as usize);
            return TraceComparison::Parted {
                event: state.compared + 1,
                first: first.map(|line| String::from_utf8_lossy(line).into_owned()),
                second: None,
                last_op_spawn: state.shared.last_op_spawn(),
                last_op: state.shared.last_op,
            };
        }
        if state.truncated {
            TraceComparison::AgreedAsFarAsKept {
                kept,
                first_events: state.first_lines,
                second_events: state.compared,
            }
        } else {
            TraceComparison::Agreed { events: kept }
        }
    }
}

#[inline(always)]
fn mix(state: u64, word: u64) -> u64 {
    let x = (state ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// FNV-1a over a string: stable across platforms and releases. A `const fn`, so that the hash of
/// a literal syscall name folds away at compile time.
#[inline(always)]
pub const fn hash_str(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        index += 1;
    }
    hash
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// A writer that remembers its first error, under a trace sink (or `sim run`'s report). The trace
/// ignores a failed write (the simulation must not change because a disk is full), so whoever
/// attaches the sink keeps the `WriteErrorSlot` and asks it after the run: `sim run --trace` then
/// says the trace is incomplete rather than leaving a cut-short file without a word. After the first error every
/// write fails at once, without trying `inner` again.
pub struct ErrorKeepingWriter<W: Write> {
    inner: W,
    first_error: WriteErrorSlot,
}

/// Where an `ErrorKeepingWriter` keeps its first error.
#[derive(Clone, Default)]
pub struct WriteErrorSlot(Rc<RefCell<Option<std::io::Error>>>);

impl WriteErrorSlot {
    /// The first write error, if there was one.
    pub fn take(&self) -> Option<std::io::Error> {
        self.0.take()
    }
}

impl<W: Write> ErrorKeepingWriter<W> {
    pub fn new(inner: W) -> (ErrorKeepingWriter<W>, WriteErrorSlot) {
        let first_error = WriteErrorSlot::default();
        let writer = ErrorKeepingWriter {
            inner,
            first_error: first_error.clone(),
        };
        (writer, first_error)
    }

    fn keep<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        // An interrupted write is tried again (`write_all` does), so it is no failure yet.
        if let Err(error) = &result
            && error.kind() != std::io::ErrorKind::Interrupted
        {
            let mut slot = self.first_error.0.borrow_mut();
            if slot.is_none() {
                *slot = Some(std::io::Error::new(error.kind(), error.to_string()));
            }
        }
        result
    }

    fn failed_before(&self) -> std::io::Result<()> {
        match self.first_error.0.borrow().as_ref() {
            Some(error) => Err(std::io::Error::new(
                error.kind(),
                format!("an earlier write failed: {error}"),
            )),
            None => Ok(()),
        }
    }
}

impl<W: Write> Write for ErrorKeepingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.failed_before()?;
        let result = self.inner.write(buf);
        self.keep(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.failed_before()?;
        let result = self.inner.flush();
        self.keep(result)
    }
}

/// The most bytes `sim run --trace` and `sim replay --trace` write: a run may take up to
/// 100,000,000 steps (`[limits]` `steps_max`), about 160 B of trace each, and a trace file
/// without a bound could fill the disk. Past it the trace is cut short and the command says so.
pub const TRACE_FILE_BYTES_MAX: u64 = 4 << 30;

/// A writer that takes at most `bytes_max` bytes and fails every write past them (with what it
/// can still take written first), so that an `ErrorKeepingWriter` above it remembers the cut and
/// the command reports the file incomplete.
pub struct BoundedWriter<W: Write> {
    inner: W,
    bytes_max: u64,
    written: u64,
}

impl<W: Write> BoundedWriter<W> {
    pub fn new(inner: W, bytes_max: u64) -> BoundedWriter<W> {
        BoundedWriter {
            inner,
            bytes_max,
            written: 0,
        }
    }
}

impl<W: Write> Write for BoundedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.bytes_max - self.written;
        if room == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!("it reached its bound of {} bytes", self.bytes_max),
            ));
        }
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let written = self.inner.write(&buf[..take])?;
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A sink that keeps what the trace writes in memory, for a caller (a test, a tool embedding the
/// simulation) that reads the JSON lines back in the same process. Clones share one buffer: attach
/// a clone and keep the original to read.
#[derive(Clone, Debug, Default)]
pub struct MemorySink(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl MemorySink {
    /// What was written since the last take, as text; the buffer is left empty.
    pub fn take_text(&self) -> String {
        String::from_utf8(self.0.take()).expect("the trace writes UTF-8")
    }
}

impl Write for MemorySink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bounded_writer_takes_its_bytes_then_fails_and_the_keeper_remembers_the_cut() {
        let (mut writer, first_error) = ErrorKeepingWriter::new(BoundedWriter::new(Vec::new(), 10));
        assert!(writer.write_all(b"0123456").is_ok());
        // The write that crosses the bound gives what fits, then fails.
        assert!(writer.write_all(b"789abc").is_err());
        let error = first_error.take().expect("the cut is remembered");
        assert!(error.to_string().contains("bound of 10 bytes"), "{error}");
        assert_eq!(writer.inner.inner, b"0123456789");
    }

    use super::*;

    fn run(events: &[(EventKind, u64, u64)]) -> u64 {
        let mut trace = Trace::new();
        for &(kind, a, b) in events {
            trace.event(kind, a, b);
        }
        trace.hash()
    }

    #[test]
    fn same_events_same_hash_and_one_difference_changes_it() {
        let base = [
            (EventKind::Op, 1, 2),
            (EventKind::Schedule, 0, 1),
            (EventKind::Syscall("pages.commit"), 4096, 1),
        ];
        assert_eq!(run(&base), run(&base));
        // Each one-event difference, as (event index, the event in its place, what differs).
        let differences = [
            (1, (EventKind::Schedule, 0, 2), "a different thread choice"),
            (
                2,
                (EventKind::Syscall("pages.decommit"), 4096, 1),
                "a different syscall",
            ),
            (
                2,
                (EventKind::Syscall("pages.commit"), 8192, 1),
                "a different first word",
            ),
            (0, (EventKind::Op, 2, 1), "the two words swapped"),
        ];
        for (index, event, what) in differences {
            let mut changed = base;
            changed[index] = event;
            assert_ne!(run(&base), run(&changed), "{what} changes the hash");
        }
        assert_ne!(
            run(&base),
            run(&base[..2]),
            "a missing event changes the hash"
        );
    }

    #[test]
    fn cached_name_hashes_equal_fresh_ones() {
        let mut trace = Trace::new();
        let names = [
            "pages.commit",
            "pages.commit",
            "locks.create",
            "heap.malloc",
            "op",
        ];
        for _ in 0..3 {
            for name in names {
                assert_eq!(trace.names.hash(name), hash_str(name));
            }
        }
        // Two literals of one text may or may not share an address; either way the hash is the
        // text's.
        let owned = String::from("pages.commit");
        let leaked: &'static str = Box::leak(owned.into_boxed_str());
        assert_eq!(trace.names.hash(leaked), hash_str("pages.commit"));
        assert_eq!(trace.names.hash(&leaked[..5]), hash_str("pages"));
    }

    /// Two runs' traces, as `compare_traces` sees them: each run writes its events into its sink.
    fn compare(
        bytes_max: usize,
        first: &[(EventKind, u64, u64)],
        second: &[(EventKind, u64, u64)],
    ) -> TraceComparison {
        let comparer = TraceComparer::new(bytes_max);
        for (events, sink) in [
            (first, comparer.first_sink()),
            (second, comparer.second_sink()),
        ] {
            let mut trace = Trace::new();
            trace.attach_sink(sink);
            trace.op(0, "malloc", || OpPlace {
                lifecycle: 0,
                repetition: 2,
                list: "ops",
                index: 1,
            });
            for &(kind, a, b) in events {
                trace.event(kind, a, b);
            }
        }
        comparer.finish()
    }

    #[test]
    fn compared_traces_part_at_their_first_different_event_after_the_last_shared_op() {
        let commit = EventKind::Syscall("pages.commit");
        let same = [(commit, 4096, 1), (EventKind::Schedule, 1, 2)];
        assert_eq!(
            compare(1 << 20, &same, &same),
            TraceComparison::Agreed { events: 3 }
        );
        let mut other = same;
        other[1].1 = 0;
        let parted = compare(1 << 20, &same, &other);
        let TraceComparison::Parted {
            event,
            first,
            second,
            last_op,
            last_op_spawn,
        } = parted.clone()
        else {
            panic!("the traces differ")
        };
        assert_eq!(event, 3);
        assert_eq!(
            first.as_deref(),
            Some(r#"{"i":3,"ev":"schedule","a":1,"b":2}"#)
        );
        assert_eq!(
            second.as_deref(),
            Some(r#"{"i":3,"ev":"schedule","a":0,"b":2}"#)
        );
        let op = format!(
            r#"{{"i":1,"ev":"op","a":0,"b":{},"op":"malloc","lifecycle_index":0,"repetition":2,"list":"ops","index":1}}"#,
            hash_str("malloc")
        );
        assert_eq!(last_op, Some(op));
        assert_eq!(last_op_spawn, None, "an op of the main thread");
        // The op as data, for the report to point at it in the scenario file.
        assert_eq!(
            parted.last_op_ref(|_| panic!("no spawned thread to name")),
            Some(OpRef {
                lifecycle: 0,
                repetition: 2,
                list: crate::findings::OpList::Ops,
                index: 1,
                name: "malloc".to_string(),
                thread: 0,
                during: None,
                thread_name: None,
                location: None,
                trace_event: None,
            })
        );
        let agreed = compare(1 << 20, &same, &same);
        assert_eq!(agreed.last_op_ref(|_| None), None);
        assert_eq!(
            op_ref_of_line(first.as_deref().unwrap()),
            None,
            "no op line"
        );
        // A trace that stops early parts where it stops, on either side.
        for (a, b, first_ended) in [
            (&same[..1], &same[..], true),
            (&same[..], &same[..1], false),
        ] {
            let TraceComparison::Parted {
                event,
                first,
                second,
                ..
            } = compare(1 << 20, a, b)
            else {
                panic!("one trace is shorter")
            };
            assert_eq!(event, 3);
            assert_eq!(
                (first.is_none(), second.is_none()),
                (first_ended, !first_ended)
            );
        }
        // Room for the first two lines (the op's, about 123 bytes with its index, and the
        // commit's, 47), not the third (40).
        const KEEPS_TWO_LINES: usize = 190;
        // Past what was kept of the first trace nothing is compared, and the answer says so.
        assert_eq!(
            compare(KEEPS_TWO_LINES, &same, &other),
            TraceComparison::AgreedAsFarAsKept {
                kept: 2,
                first_events: 3,
                second_events: 3
            }
        );
        // The counts still tell traces of different lengths apart.
        assert_eq!(
            compare(KEEPS_TWO_LINES, &same, &same[..1]),
            TraceComparison::AgreedAsFarAsKept {
                kept: 2,
                first_events: 3,
                second_events: 2
            }
        );
    }

    /// A run's trace against a recorded one: agreed, parted at a line, or ended early on
    /// either side; the last op line both had is kept.
    #[test]
    fn a_trace_is_compared_with_a_recorded_one_as_it_is_written() {
        let op = r#"{"i":1,"ev":"op","op":"malloc"}"#;
        let run = format!("{op}\n{{\"i\":2,\"ev\":\"x\"}}\n{{\"i\":3,\"ev\":\"x\"}}\n");
        let against =
            |recorded: &str, run: &str| against_recorded(recorded.as_bytes(), run).unwrap();
        assert_eq!(against(&run, &run), TraceComparison::Agreed { events: 3 });
        // A recorded file written on another system may end its lines with CRLF.
        assert_eq!(
            against(&run.replace('\n', "\r\n"), &run),
            TraceComparison::Agreed { events: 3 }
        );
        let parted = |event, first: Option<&str>, second: Option<&str>| TraceComparison::Parted {
            event,
            first: first.map(String::from),
            second: second.map(String::from),
            last_op: Some(op.to_string()),
            last_op_spawn: None,
        };
        let other = run.replace("\"ev\":\"x\"}\n{\"i\":3", "\"ev\":\"x\"}\n{\"i\":3,\"b\":1");
        assert_eq!(
            against(&run, &other),
            parted(
                3,
                Some(r#"{"i":3,"ev":"x"}"#),
                Some(r#"{"i":3,"b":1,"ev":"x"}"#)
            )
        );
        let shorter = format!("{op}\n{{\"i\":2,\"ev\":\"x\"}}\n");
        assert_eq!(
            against(&run, &shorter),
            parted(3, Some(r#"{"i":3,"ev":"x"}"#), None)
        );
        assert_eq!(
            against(&shorter, &run),
            parted(3, None, Some(r#"{"i":3,"ev":"x"}"#))
        );
    }

    /// `run`'s lines (written in pieces, as the trace writes them) compared with `recorded`.
    fn against_recorded(recorded: &[u8], run: &str) -> Result<TraceComparison, RecordedTraceError> {
        let comparer = TraceAgainstRecorded::new(Box::new(std::io::Cursor::new(recorded.to_vec())));
        let mut sink = comparer.sink();
        for piece in run.as_bytes().chunks(5) {
            sink.write_all(piece).unwrap();
        }
        drop(sink);
        comparer.finish()
    }

    /// A recorded "trace" with no line end (`/dev/zero` given by mistake) is read no further than
    /// `RECORDED_LINE_BYTES_MAX` bytes, by a comparison as by `recorded_schedule`, and both say
    /// it is no trace: a line longer than the limit, at its line.
    #[test]
    fn an_endless_recorded_line_is_refused_after_a_bounded_read() {
        /// Zero bytes for ever, counting what was read.
        struct Endless(u64);
        impl std::io::Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(0);
                self.0 += buf.len() as u64;
                Ok(buf.len())
            }
        }
        let too_long =
            format!("a line longer than {RECORDED_LINE_BYTES_MAX} bytes, which no trace writes");
        let mut endless = std::io::BufReader::new(Endless(0));
        match recorded_schedule(&mut endless) {
            Err(RecordedTraceError::NotATraceLine {
                line: 1, problem, ..
            }) => {
                assert_eq!(problem, too_long)
            }
            other => panic!("{other:?}"),
        }
        assert!(endless.get_ref().0 <= RECORDED_LINE_BYTES_MAX + 8192);
        let comparer = TraceAgainstRecorded::new(Box::new(std::io::BufReader::new(Endless(0))));
        let mut sink = comparer.sink();
        sink.write_all(b"{\"i\":1,\"ev\":\"lifecycle\"}\n").unwrap();
        drop(sink);
        match comparer.finish() {
            Err(RecordedTraceError::NotATraceLine {
                line: 1, problem, ..
            }) => {
                assert_eq!(problem, too_long, "as `recorded_schedule` says it")
            }
            other => panic!("{other:?}"),
        }
        // After a line the run shares, at the line that is too long; and the same past the
        // run's end.
        let first = b"{\"i\":1,\"ev\":\"lifecycle\"}\n";
        for run in [
            &first[..],
            b"{\"i\":1,\"ev\":\"lifecycle\"}\n{\"i\":2,\"ev\":\"op\"}\n",
        ] {
            let recorded = std::io::Read::chain(&first[..], Endless(0));
            let comparer = TraceAgainstRecorded::new(Box::new(std::io::BufReader::new(recorded)));
            let mut sink = comparer.sink();
            sink.write_all(run).unwrap();
            drop(sink);
            match comparer.finish() {
                Err(RecordedTraceError::NotATraceLine {
                    line: 2, problem, ..
                }) => assert_eq!(problem, too_long),
                other => panic!("{other:?}"),
            }
        }
    }

    /// A recorded file that is no trace (the wrong file given) is said to be one, at the first
    /// line that is not the run's and where on it, rather than compared as a trace that parts
    /// there: an empty file, text, binary bytes, JSON that is no event, events numbered from
    /// elsewhere, and garbage after lines the run shares.
    #[test]
    fn a_recorded_file_that_is_no_trace_is_refused_at_its_line_and_column() {
        let run = "{\"i\":1,\"ev\":\"lifecycle\"}\n{\"i\":2,\"ev\":\"op\"}\n";
        let refused = |recorded: &[u8]| match against_recorded(recorded, run) {
            Err(RecordedTraceError::NotATraceLine {
                line,
                column,
                problem,
            }) => (line, column, problem),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(recorded)),
        };
        assert!(matches!(
            against_recorded(b"", run),
            Err(RecordedTraceError::Empty)
        ));
        let (line, column, problem) = refused(b"name = \"x\"\n");
        assert_eq!((line, column), (1, 1));
        assert!(problem.starts_with("does not start with `{`"), "{problem}");
        let (line, column, problem) = refused(b"{\"i\":1,\"ev\":\"op\"\n");
        assert_eq!((line, column), (1, 16));
        assert!(
            problem.starts_with("not JSON (EOF while parsing"),
            "{problem}"
        );
        let (line, column, problem) = refused(b"{\"i\":1,\"ev\xff\":1}\n");
        assert_eq!((line, column), (1, 11));
        assert!(problem.starts_with("byte 0xff is not UTF-8"), "{problem}");
        let (line, column, _) = refused(b"{\"i\":1, oops}\n");
        assert_eq!((line, column), (1, 9));
        assert!(refused(b"[1]\n").2.contains("does not start with"));
        assert!(refused(b"{\"ev\":\"op\"}\n").2.contains("no event number"));
        assert!(refused(b"{\"i\":1}\n").2.contains("no event name"));
        assert!(refused(b"\n").2.contains("an empty line"));
        let (line, _, problem) = refused(b"{\"i\":7,\"ev\":\"op\"}\n");
        assert_eq!(line, 1);
        assert!(problem.contains("\"i\":7 on line 1"), "{problem}");
        // After the lines the run shares, the first that differs is checked.
        let (line, column, _) = refused(b"{\"i\":1,\"ev\":\"lifecycle\"}\nPK\x03\x04\n");
        assert_eq!((line, column), (2, 1));
        // A line past the run's end too.
        let longer = format!("{run}garbage\n");
        assert_eq!(refused(longer.as_bytes()).0, 3);
        // Not a problem with the file: the events of a real trace that differ.
        let other = "{\"i\":1,\"ev\":\"lifecycle\"}\n{\"i\":2,\"ev\":\"exit\"}\n";
        assert!(matches!(
            against_recorded(other.as_bytes(), run),
            Ok(TraceComparison::Parted { event: 2, .. })
        ));
    }

    /// An op of a spawned thread comes with the op line of the spawn that started it, past
    /// spawns of other threads, whatever the repetition; a thread that has exited is no longer
    /// kept, and a thread whose spawn was not seen gets none.
    #[test]
    fn an_op_of_a_spawned_thread_comes_with_the_spawn_that_started_it() {
        let sink = MemorySink::default();
        let mut trace = Trace::new();
        trace.attach_sink(Box::new(sink.clone()));
        let at = |repetition, list, index| {
            move || OpPlace {
                lifecycle: 1,
                repetition,
                list,
                index,
            }
        };
        let (spawned, exited) = (
            EventKind::Syscall("threads.spawn"),
            EventKind::Syscall("threads.exit"),
        );
        // Repetition 0: op #2 spawns tid 1, which runs an op and exits.
        trace.op(0, "spawn", at(0, "ops", 2));
        trace.event(spawned, 1, 0);
        trace.op(1, "bump", at(0, "thread", 1));
        trace.event(exited, 1, 0);
        // Repetition 1: op #1 spawns tid 2 and op #2 tid 3, before tid 2 runs.
        trace.op(0, "spawn", at(1, "ops", 1));
        trace.event(spawned, 2, 0);
        trace.op(0, "spawn", at(1, "ops", 2));
        trace.event(spawned, 3, 0);
        trace.op(2, "bump", at(1, "thread", 1));
        let text = sink.take_text();
        let lines: Vec<&str> = text.lines().collect();
        let mut shared = SharedOps::default();
        for line in &lines[..3] {
            shared.shared(line.as_bytes());
        }
        assert_eq!(shared.last_op_spawn().as_deref(), Some(lines[0]));
        shared.shared(lines[3].as_bytes());
        assert!(shared.running.is_empty(), "tid 1 exited");
        for line in &lines[4..] {
            shared.shared(line.as_bytes());
        }
        assert_eq!(shared.running.keys().collect::<Vec<_>>(), [&2, &3]);
        assert_eq!(shared.last_op_spawn().as_deref(), Some(lines[4]));
        let parted = TraceComparison::Parted {
            event: 9,
            first: None,
            second: None,
            last_op: shared.last_op.clone(),
            last_op_spawn: shared.last_op_spawn(),
        };
        let op = parted.last_op_ref(|spawn| {
            assert_eq!(
                (spawn.lifecycle, spawn.repetition, spawn.list, spawn.index),
                (1, 1, OpList::Ops, 1)
            );
            assert_eq!((spawn.name.as_str(), spawn.thread), ("spawn", 0));
            Some("w".to_string())
        });
        let op = op.expect("an op line");
        assert_eq!((op.thread, op.list, op.index), (2, OpList::Thread, 1));
        assert_eq!(op.thread_name.as_deref(), Some("w"));
        // A name the scenario does not give is none.
        assert_eq!(parted.last_op_ref(|_| None).unwrap().thread_name, None);
        // An op of the main thread has no spawn; one of a thread never seen spawned has none.
        shared.shared(lines[2].replace("\"a\":1", "\"a\":0").as_bytes());
        assert_eq!(shared.last_op_spawn(), None);
        shared.shared(lines[2].replace("\"a\":1", "\"a\":9").as_bytes());
        assert_eq!(shared.last_op_spawn(), None);
        assert!(shared.last_op.as_deref().unwrap().contains("\"a\":9"));
    }

    #[test]
    fn json_lines_are_written_when_a_sink_is_attached() {
        let shared = MemorySink::default();
        let mut trace = Trace::new();
        trace.attach_sink(Box::new(shared.clone()));
        trace.event(EventKind::Syscall("fds.pipe"), 3, 4);
        trace.event_text(EventKind::Finding, "leak:rwlock:\"x\"");
        let text = shared.take_text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["ev"], "fds.pipe");
        assert_eq!(lines[1]["text"], "leak:rwlock:\"x\"");
    }

    /// A disk that takes `room` bytes and then is full.
    struct FillingDisk {
        room: usize,
        writes_tried: usize,
    }

    impl Write for FillingDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes_tried += 1;
            if self.room == 0 {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let taken = buf.len().min(self.room);
            self.room -= taken;
            Ok(taken)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_trace_write_changes_no_hash_and_is_kept_for_the_caller() {
        let run = |sink: Option<Box<dyn Write>>| {
            let mut trace = Trace::new();
            if let Some(sink) = sink {
                trace.attach_sink(sink);
            }
            for i in 0..1000 {
                trace.event(EventKind::Schedule, i, i);
            }
            trace.flush();
            trace.hash()
        };
        let (disk, first_error) = ErrorKeepingWriter::new(FillingDisk {
            room: 100,
            writes_tried: 0,
        });
        let hash = run(Some(Box::new(std::io::BufWriter::new(disk))));
        assert_eq!(hash, run(None), "the simulation does not notice");
        let error = first_error.take().expect("the error is kept");
        assert_eq!(error.raw_os_error(), None, "kept as its kind and text");
        assert_eq!(error.kind(), std::io::ErrorKind::StorageFull, "{error}");

        let (mut healthy, no_error) = ErrorKeepingWriter::new(Vec::new());
        writeln!(healthy, "fine").unwrap();
        assert!(no_error.take().is_none());

        // After the first error the disk is not asked again.
        let (mut full, _) = ErrorKeepingWriter::new(FillingDisk {
            room: 0,
            writes_tried: 0,
        });
        assert!(full.write(b"a").is_err());
        assert!(full.write(b"b").is_err());
        assert_eq!(full.inner.writes_tried, 1);
    }
}
