//! File descriptors: the fd table and open file descriptions (files, directories, pipes,
//! socketpairs, eventfd), with Linux semantics.
//!
//! The table maps small numbers to descriptions, as Linux does: a new fd takes the lowest free
//! number, `dup` makes a second fd for the same description (sharing its offset and its
//! non-blocking flag, which live on the description, not on the fd), and `renumber` moves an fd
//! onto another number after closing what was there (WASI `fd_renumber`, Linux `dup2` plus
//! `close`). Handles carry a generation, so a handle to a closed fd whose number has since been
//! reused by another open is told apart from a plain closed fd: the first is an invariant finding
//! (the subject would have read or closed somebody else's file), the second is only EBADF.
//!
//! A description lives while fds refer to it or threads hold it. A thread blocked in a read holds
//! the description, as the Linux kernel holds a file reference for the duration of a syscall: if
//! another thread closes the last fd meanwhile, the description (and so the read end of a pipe)
//! stays open until the blocked reader is done. The runner's continuation takes that hold with
//! `hold_description` and retries through `read_description`, which works after the fd is gone.
//! Miri's blocked fd reads got exactly this wrong several times (rust-lang/miri #3572, #3603,
//! #4072, #5197): a closed fd dropped the description under a blocked reader, or a wake-up found
//! the waiter list already gone. Wakers here take the whole waiter list before waking anybody, so
//! every waiter becomes runnable and which one wins the retry is a scheduler decision.
//!
//! Fidelity. Simulated: an in-memory tree of directories and regular files with offsets, path
//! lookup relative to a directory fd or absolute (`.` and `..` included); pipes and AF_UNIX
//! stream socketpairs with a capacity of 212,992 bytes per direction (Linux's default socket
//! buffer), partial writes, PIPE_BUF (4096 bytes) atomicity for pipe writes, EOF once every write
//! end is closed, EPIPE once every read end is closed; eventfd counters with their EINVAL and
//! overflow rules; blocking as data and O_NONBLOCK. Fault injection can shorten reads and writes,
//! interrupt a call that would block with EINTR, and fail a non-blocking call with EAGAIN.
//! Not simulated: signals (EPIPE raises no SIGPIPE), permissions and ownership, timestamps, links,
//! `poll`/`epoll`, seeking on pipes reports EINVAL (there is no ESPIPE in the errno set), and a
//! blocking write that does not fit returns the count that did fit, where Linux would keep
//! waiting: that is what the same write interrupted by a signal returns, so subjects must loop
//! either way. Descriptor numbers start at 0; whoever models stdio opens those first.

use std::collections::VecDeque;

use super::id_table::IdTable;
use super::resources::{KINDS, RecordId, recycled};
use super::threads::{BlockReason, Tid};
use super::{Errno, Io, Os, Site};
use crate::faults::FaultKind;

/// Bytes a pipe or one direction of a socketpair can buffer (Linux's default socket buffer).
pub const PIPE_CAPACITY_BYTES: usize = 212_992;

/// Pipe writes of at most this many bytes are atomic: all or nothing (POSIX `PIPE_BUF`).
pub const PIPE_BUF_BYTES: usize = 4096;

/// An fd handle: the number the subject sees plus the generation of the table slot it was issued
/// from, so a handle outliving its fd is recognised when the number is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fd {
    pub number: u32,
    pub generation: u32,
}

/// An open file description. Ids are never reused, so a dead id is always recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DescriptionId(pub u64);

/// Flags of `open_at`, as in `openat(2)`. `read` and `write` give the access mode; with neither,
/// the description can only be used as a directory handle (like O_PATH).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    /// With `create`: fail with EEXIST if the name exists (O_EXCL).
    pub exclusive: bool,
    pub truncate: bool,
    /// The path must name a directory (O_DIRECTORY).
    pub directory: bool,
}

/// Where a seek offset counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    Set,
    Current,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Directory,
    RegularFile,
    Pipe,
    Socket,
    EventFd,
}

/// What `fd_stat` tells about an fd's description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdStat {
    pub file_type: FileType,
    /// File size, bytes buffered for reading (pipe, socket), or 8 for an eventfd.
    pub size: u64,
    pub readable: bool,
    pub writable: bool,
    pub nonblocking: bool,
    pub description: DescriptionId,
}

const ROOT_INODE: usize = 0;

#[derive(Debug)]
enum Inode {
    /// A regular file: its bytes, whether a directory names it (a file has one name at most:
    /// links are not simulated), and how many open descriptions refer to it. Its bytes are
    /// freed once neither does, as Linux frees an unlinked file's data when the last open
    /// description of it is released (`iput` of an inode with no links left): nothing can
    /// reach them any more. The inode's slot itself stays, empty; inodes are never reused.
    File {
        data: Vec<u8>,
        named: bool,
        descriptions: u32,
    },
    Dir {
        entries: DirEntries,
        parent: usize,
    },
}

impl Inode {
    /// A file's length; a directory counts as empty, for seeking and for growth.
    fn size(&self) -> u64 {
        match self {
            Inode::File { data, .. } => data.len() as u64,
            Inode::Dir { .. } => 0,
        }
    }
}

/// A directory's names and the inodes they name. A list searched from the front rather than an
/// ordered map: a directory here holds a handful of names (stdio, the preopens, the few files a
/// guest opens), and every preopen of every instantiation looks its path up, where the map's
/// search compared each key it passed byte by byte (a `memcmp` call per key); a list comparison
/// is a length comparison for all but names of the same length. Nothing walks the names, so their
/// order is not observable.
#[derive(Debug, Default)]
struct DirEntries {
    names: Vec<(Box<str>, usize)>,
}

impl DirEntries {
    fn get(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .find(|(entry, _)| **entry == *name)
            .map(|&(_, inode)| inode)
    }

    /// Adds `name`, which must not be present.
    fn insert(&mut self, name: &str, inode: usize) {
        debug_assert!(self.get(name).is_none(), "{name} inserted twice");
        self.names.push((name.into(), inode));
    }

    fn remove(&mut self, name: &str) {
        if let Some(index) = self.names.iter().position(|(entry, _)| **entry == *name) {
            self.names.swap_remove(index);
        }
    }
}

/// One direction of a pipe or socketpair. The counters are cumulative, so that
/// `bytes_written - bytes_read == bytes.len()` is a conservation check on every copy.
#[derive(Debug)]
struct Buffer {
    bytes: VecDeque<u8>,
    bytes_written: u64,
    bytes_read: u64,
    /// The description that reads from this buffer and the one that writes to it.
    reader: u64,
    writer: u64,
    /// Whether those descriptions are still open (kept here so that a read or write need not
    /// look the other end up).
    reader_open: bool,
    writer_open: bool,
    /// Whether a thread may be on the reader description's read-waiter list (or the writer's
    /// write-waiter list): set before a read (write) of this buffer parks, cleared when a copy
    /// takes the list to wake it. Never false while someone waits there, so that a copy with
    /// nobody to wake, the usual case, skips looking the other end's description up.
    readers_may_wait: bool,
    writers_may_wait: bool,
    /// Pipes guarantee PIPE_BUF atomicity; stream sockets do not.
    pipe: bool,
}

impl Buffer {
    /// An empty buffer from `writer` to `reader`, both ends open.
    fn new(reader: u64, writer: u64, pipe: bool) -> Buffer {
        Buffer {
            bytes: VecDeque::new(),
            bytes_written: 0,
            bytes_read: 0,
            reader,
            writer,
            reader_open: true,
            writer_open: true,
            readers_may_wait: false,
            writers_may_wait: false,
            pipe,
        }
    }

    /// Bytes written minus bytes read is what the buffer holds.
    fn is_conserved(&self) -> bool {
        self.bytes_written.checked_sub(self.bytes_read) == Some(self.bytes.len() as u64)
    }
}

#[derive(Clone, Copy, Debug)]
enum Object {
    File { inode: usize, offset: u64 },
    Dir { inode: usize },
    PipeRead { buffer: u64 },
    PipeWrite { buffer: u64 },
    Socket { rx: u64, tx: u64 },
    EventFd { counter: u64 },
}

#[derive(Debug)]
struct Description {
    object: Object,
    readable: bool,
    writable: bool,
    /// O_NONBLOCK is a file status flag: it belongs to the description and so is shared by dups.
    nonblocking: bool,
    fds: u32,
    holds: u32,
    record: RecordId,
    read_waiters: Vec<Tid>,
    write_waiters: Vec<Tid>,
}

#[derive(Debug)]
struct FdEntry {
    description: u64,
    record: RecordId,
}

#[derive(Debug, Default)]
struct Slot {
    /// Bumped on every install, so handles from earlier installs are recognised as stale.
    generation: u32,
    entry: Option<FdEntry>,
}

/// The lists of slots and inodes and the tables of descriptions and buffers of a dropped
/// `FdsState`, emptied, for the next one made on this thread (see `Os::new`).
#[derive(Default)]
pub(crate) struct FdsStorage {
    slots: Vec<Slot>,
    inodes: Vec<Inode>,
    descriptions: IdTable<Description>,
    buffers: IdTable<Buffer>,
}

pub(crate) struct FdsState {
    slots: Vec<Slot>,
    /// Free slot numbers below `slots.len()`, so the lowest one is found without a scan of the
    /// slots.
    free: FreeNumbers,
    open: u64,
    /// Open descriptions by id. Walked in id order only (see `id_table.rs`).
    descriptions: IdTable<Description>,
    next_description: u64,
    buffers: IdTable<Buffer>,
    next_buffer: u64,
    inodes: Vec<Inode>,
    /// Bytes every file holds together, bounded by `fs_bytes_max`.
    file_bytes_total: u64,
}

impl FdsState {
    /// A fresh state, in the lists `storage` holds (emptied by `keep_storage`), if it holds any:
    /// see `Os::new`.
    pub(crate) fn new_in(storage: &mut FdsStorage) -> FdsState {
        let mut inodes = std::mem::take(&mut storage.inodes);
        inodes.push(Inode::Dir {
            entries: DirEntries::default(),
            parent: ROOT_INODE,
        });
        FdsState {
            slots: std::mem::take(&mut storage.slots),
            free: FreeNumbers::default(),
            open: 0,
            descriptions: std::mem::take(&mut storage.descriptions),
            next_description: 0,
            buffers: std::mem::take(&mut storage.buffers),
            next_buffer: 0,
            inodes,
            file_bytes_total: 0,
        }
    }

    /// Empties the lists and tables and hands them to `storage`, for the next `new_in`.
    pub(crate) fn keep_storage(&mut self, storage: &mut FdsStorage) {
        storage.slots = recycled(&mut self.slots);
        storage.inodes = recycled(&mut self.inodes);
        storage.descriptions = self.descriptions.recycled();
        storage.buffers = self.buffers.recycled();
    }

    fn is_dir(&self, inode: usize) -> bool {
        matches!(self.inodes[inode], Inode::Dir { .. })
    }

    /// One lookup step from directory `dir`.
    fn step(&self, dir: usize, name: &str) -> Result<usize, Errno> {
        let Inode::Dir { entries, parent } = &self.inodes[dir] else {
            return Err(Errno::Enotdir);
        };
        match name {
            "." => Ok(dir),
            ".." => Ok(*parent),
            _ => entries.get(name).ok_or(Errno::Enoent),
        }
    }

    /// Walks every component but the last. Returns the directory the last name is in and that
    /// name, or the target itself with no name when the path ends in `.`, `..` or `/`.
    fn walk<'p>(&self, start: usize, path: &'p str) -> Result<(usize, Option<&'p str>), Errno> {
        if path.is_empty() {
            return Err(Errno::Enoent);
        }
        // Walked without collecting the components: a WASI runtime opens its preopens on every
        // instantiation, and so on every fuzz input.
        let mut components = Components { rest: path };
        let mut current = start;
        let Some(mut last) = components.next() else {
            return Ok((start, None));
        };
        for name in components {
            current = self.step(current, last)?;
            last = name;
        }
        if !self.is_dir(current) {
            return Err(Errno::Enotdir);
        }
        match last {
            "." | ".." => Ok((self.step(current, last)?, None)),
            name => Ok((current, Some(name))),
        }
    }
}

/// The non-empty components of a path, split at each `/`. By hand rather than with `str::split`,
/// whose searcher costs more than the few bytes of a typical path: the walk runs on every open.
/// A `/` byte never occurs inside a multibyte UTF-8 character, so every cut is a char boundary.
struct Components<'p> {
    rest: &'p str,
}

impl<'p> Iterator for Components<'p> {
    type Item = &'p str;

    fn next(&mut self) -> Option<&'p str> {
        let bytes = self.rest.as_bytes();
        let start = bytes.iter().position(|&b| b != b'/')?;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(bytes.len(), |len| start + len);
        let name = &self.rest[start..end];
        self.rest = &self.rest[end..];
        Some(name)
    }
}

/// A set of fd numbers as a bitmap, one bit per number: the lowest member is the first set bit,
/// found a word (64 numbers) at a time, and an insert or a removal is one bit operation.
#[derive(Debug, Default)]
struct FreeNumbers {
    words: Vec<u64>,
}

impl FreeNumbers {
    fn insert(&mut self, number: u32) {
        let word = number as usize / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (number % 64);
    }

    fn remove(&mut self, number: u32) {
        if let Some(word) = self.words.get_mut(number as usize / 64) {
            *word &= !(1 << (number % 64));
        }
    }

    fn lowest(&self) -> Option<u32> {
        let (index, word) = self
            .words
            .iter()
            .enumerate()
            .find(|(_, word)| **word != 0)?;
        Some(index as u32 * 64 + word.trailing_zeros())
    }
}

/// Bytes this short or shorter are copied one by one: cheaper than a call to `memcpy`.
const SMALL_COPY_BYTES: usize = 16;

/// Moves the first `buf.len()` bytes of `bytes` into `buf`. Inlined, as `put_bytes` is: out of
/// line, the call around a 1-byte copy cost a 1-byte pipe read more than the copy.
#[inline]
fn take_bytes(bytes: &mut VecDeque<u8>, buf: &mut [u8]) {
    if buf.len() <= SMALL_COPY_BYTES {
        for slot in buf {
            *slot = bytes.pop_front().expect("enough bytes buffered");
        }
        return;
    }
    let (front, back) = bytes.as_slices();
    let from_front = front.len().min(buf.len());
    buf[..from_front].copy_from_slice(&front[..from_front]);
    let rest = buf.len() - from_front;
    buf[from_front..].copy_from_slice(&back[..rest]);
    bytes.drain(..buf.len());
}

/// Appends `new` to `bytes`. Inlined: a write of a few bytes is mostly this, and where the
/// compiler left it out of line (a choice that moved with unrelated changes elsewhere), it cost a
/// 1-byte pipe write a tenth more.
#[inline]
fn put_bytes(bytes: &mut VecDeque<u8>, new: &[u8]) {
    if new.len() <= SMALL_COPY_BYTES {
        for &byte in new {
            bytes.push_back(byte);
        }
        return;
    }
    bytes.extend(new);
}

impl Os {
    // ---- the fd table ----

    /// Checks that `count` more fds fit under `fds_max`.
    fn fds_room(&mut self, count: u64, site: Site) -> Result<(), Errno> {
        if self.fds.open + count > self.limits.fds_max {
            self.budget("fds_max", self.limits.fds_max, site);
            return Err(Errno::Emfile);
        }
        Ok(())
    }

    fn new_description(
        &mut self,
        object: Object,
        readable: bool,
        writable: bool,
        site: Site,
    ) -> u64 {
        let id = self.fds.next_description;
        self.fds.next_description += 1;
        let record = (self.resources).acquire_at(KINDS.description, 1, 0, id, &self.position, site);
        if let Object::File { inode, .. } = object
            && let Inode::File { descriptions, .. } = &mut self.fds.inodes[inode]
        {
            *descriptions += 1;
        }
        let description = Description {
            object,
            readable,
            writable,
            nonblocking: false,
            fds: 0,
            holds: 0,
            record,
            read_waiters: Vec::new(),
            write_waiters: Vec::new(),
        };
        self.fds.descriptions.insert(id, description);
        id
    }

    /// Installs a new fd for `description` at `number` (which must be free). Room was checked.
    fn install_at(&mut self, number: u32, description: u64, site: Site) -> Fd {
        while self.fds.slots.len() <= number as usize {
            self.fds.free.insert(self.fds.slots.len() as u32);
            self.fds.slots.push(Slot::default());
        }
        self.fds.free.remove(number);
        let here = self.here(site);
        let record = self
            .resources
            .acquire(KINDS.fd, 1, 0, u64::from(number), here);
        let slot = &mut self.fds.slots[number as usize];
        debug_assert!(slot.entry.is_none(), "install into a free slot");
        slot.generation = slot.generation.wrapping_add(1);
        slot.entry = Some(FdEntry {
            description,
            record,
        });
        let generation = slot.generation;
        self.fds.open += 1;
        if let Some(d) = self.fds.descriptions.get_mut(&description) {
            d.fds += 1;
        }
        Fd { number, generation }
    }

    /// Installs a new fd for `description` at the lowest free number, as Linux does.
    fn install(&mut self, description: u64, site: Site) -> Fd {
        let number = self
            .fds
            .free
            .lowest()
            .unwrap_or(self.fds.slots.len() as u32);
        self.install_at(number, description, site)
    }

    /// Resolves a handle. A handle whose slot now holds a later open is stale: an invariant
    /// finding naming who holds the number now, and ESTALE. A handle whose number was reused by a
    /// later open, closed too since, is as stale: an invariant finding, and EBADF (what Linux
    /// answers for a closed number). A handle whose own fd was the last on the number, now
    /// closed, or an unknown fd, is EBADF alone. So one use after close is a finding or not by
    /// whether another open took the number meanwhile: only then could it have been served
    /// someone else's file, which is the bug a stale handle is reported for.
    #[inline]
    fn lookup_fd(&mut self, fd: Fd, call: &str, site: Site) -> Result<u64, Errno> {
        let Some(slot) = self.fds.slots.get(fd.number as usize) else {
            return Err(Errno::Ebadf);
        };
        if slot.generation == fd.generation {
            return match &slot.entry {
                Some(entry) => Ok(entry.description),
                None => Err(Errno::Ebadf),
            };
        }
        Err(self.stale_fd(fd, call, site))
    }

    #[cold]
    fn stale_fd(&mut self, fd: Fd, call: &str, site: Site) -> Errno {
        let slot = &self.fds.slots[fd.number as usize];
        let (now, errno) = match &slot.entry {
            Some(entry) => {
                let holder = match self.resources.get(entry.record) {
                    Some(record) => self.resources.acquired(record).to_string(),
                    None => "an unknown open".to_string(),
                };
                let now = format!(
                    "now names another open (generation {}, opened by {holder})",
                    slot.generation
                );
                (now, Errno::Estale)
            }
            None => {
                let now = format!(
                    "was since given to another open (generation {}), closed too",
                    slot.generation
                );
                (now, Errno::Ebadf)
            }
        };
        let headline = format!(
            "stale fd handle: {call} of fd {} (generation {}), which was closed and whose number {now}",
            fd.number, fd.generation
        );
        self.invariant("fd", site, headline);
        errno
    }

    /// Removes the entry at `number`, returning its description (whose fd count is decremented
    /// but which is not yet released: the caller decides when).
    fn remove_entry(&mut self, number: u32) -> u64 {
        let entry = self.fds.slots[number as usize]
            .entry
            .take()
            .expect("entry present");
        self.resources.release_id(entry.record);
        self.fds.free.insert(number);
        self.fds.open -= 1;
        if let Some(d) = self.fds.descriptions.get_mut(&entry.description) {
            d.fds -= 1;
        }
        entry.description
    }

    /// Closes an fd. The description goes when no other fd refers to it and nobody holds it.
    pub fn close(&mut self, fd: Fd, site: Site) -> Result<(), Errno> {
        self.syscall("fds.close", u64::from(fd.number), u64::from(fd.generation));
        self.lookup_fd(fd, "close", site)?;
        let description = self.remove_entry(fd.number);
        self.release_if_unused(description, site);
        Ok(())
    }

    /// A second fd for the same description, at the lowest free number.
    pub fn dup(&mut self, fd: Fd, site: Site) -> Result<Fd, Errno> {
        let description = self.lookup_fd(fd, "dup", site)?;
        self.fds_room(1, site)?;
        let new = self.install(description, site);
        self.syscall("fds.dup", u64::from(fd.number), u64::from(new.number));
        Ok(new)
    }

    /// Linux `dup2`: makes `to_number` refer to `from`'s description, closing what was there.
    /// With `to_number == from.number` it only validates `from`.
    pub fn dup2(&mut self, from: Fd, to_number: u32, site: Site) -> Result<Fd, Errno> {
        let description = self.lookup_fd(from, "dup2", site)?;
        if to_number == from.number {
            return Ok(from);
        }
        if u64::from(to_number) >= self.limits.fds_max {
            return Err(Errno::Ebadf);
        }
        let occupied = self
            .fds
            .slots
            .get(to_number as usize)
            .is_some_and(|s| s.entry.is_some());
        if !occupied {
            self.fds_room(1, site)?;
        }
        self.syscall("fds.dup2", u64::from(from.number), u64::from(to_number));
        let old = occupied.then(|| self.remove_entry(to_number));
        let new = self.install_at(to_number, description, site);
        if let Some(old) = old {
            self.release_if_unused(old, site);
        }
        Ok(new)
    }

    /// WASI `fd_renumber`: closes `to` and moves `from` to its number; `from`'s number becomes
    /// free. Both must be open. Returns the handle for the moved fd (the old `to` handle is stale).
    pub fn renumber(&mut self, from: Fd, to: Fd, site: Site) -> Result<Fd, Errno> {
        let description = self.lookup_fd(from, "renumber", site)?;
        self.lookup_fd(to, "renumber", site)?;
        if from.number == to.number {
            return Ok(from);
        }
        self.syscall("fds.renumber", u64::from(from.number), u64::from(to.number));
        let old = self.remove_entry(to.number);
        // Move the entry with its ledger record: the fd was acquired where `from` was opened.
        let entry = self.fds.slots[from.number as usize]
            .entry
            .take()
            .expect("entry present");
        self.fds.free.insert(from.number);
        self.fds.free.remove(to.number);
        let slot = &mut self.fds.slots[to.number as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.entry = Some(FdEntry {
            description,
            record: entry.record,
        });
        let moved = Fd {
            number: to.number,
            generation: slot.generation,
        };
        self.release_if_unused(old, site);
        Ok(moved)
    }

    /// Sets or clears O_NONBLOCK on `fd`'s description (so on every dup of it, as in Linux).
    pub fn set_nonblocking(&mut self, fd: Fd, nonblocking: bool, site: Site) -> Result<(), Errno> {
        let description = self.lookup_fd(fd, "set_nonblocking", site)?;
        self.syscall(
            "fds.set_nonblocking",
            u64::from(fd.number),
            u64::from(nonblocking),
        );
        if let Some(d) = self.fds.descriptions.get_mut(&description) {
            d.nonblocking = nonblocking;
        }
        Ok(())
    }

    /// The description `fd` refers to: what a continuation holds and retries through.
    pub fn description_of(&mut self, fd: Fd, site: Site) -> Result<DescriptionId, Errno> {
        self.lookup_fd(fd, "description_of", site)
            .map(DescriptionId)
    }

    /// Type, size and flags of `fd`'s description.
    pub fn fd_stat(&mut self, fd: Fd, site: Site) -> Result<FdStat, Errno> {
        let id = self.lookup_fd(fd, "fd_stat", site)?;
        let d = &self.fds.descriptions[&id];
        let (file_type, size) = match d.object {
            Object::File { inode, .. } => match &self.fds.inodes[inode] {
                Inode::File { data, .. } => (FileType::RegularFile, data.len() as u64),
                Inode::Dir { .. } => (FileType::Directory, 0),
            },
            Object::Dir { .. } => (FileType::Directory, 0),
            Object::PipeRead { buffer } => {
                (FileType::Pipe, self.fds.buffers[&buffer].bytes.len() as u64)
            }
            Object::PipeWrite { .. } => (FileType::Pipe, 0),
            Object::Socket { rx, .. } => {
                (FileType::Socket, self.fds.buffers[&rx].bytes.len() as u64)
            }
            Object::EventFd { .. } => (FileType::EventFd, 8),
        };
        Ok(FdStat {
            file_type,
            size,
            readable: d.readable,
            writable: d.writable,
            nonblocking: d.nonblocking,
            description: DescriptionId(id),
        })
    }

    /// Open fds now.
    pub fn open_fd_count(&self) -> usize {
        self.fds.open as usize
    }

    // ---- description lifetime ----

    /// Takes a reference on a description for a thread that blocks on it (as the kernel holds the
    /// file during a syscall), so that closing its last fd does not drop it under the thread.
    pub fn hold_description(&mut self, desc: DescriptionId, site: Site) -> Result<(), Errno> {
        self.syscall("fds.hold", desc.0, 0);
        match self.fds.descriptions.get_mut(&desc.0) {
            Some(d) => {
                d.holds += 1;
                Ok(())
            }
            None => {
                self.invariant(
                    "description",
                    site,
                    format!("hold of description #{} that is no longer open", desc.0),
                );
                Err(Errno::Ebadf)
            }
        }
    }

    /// Drops a reference taken by `hold_description`; the description goes if it was the last.
    pub fn drop_description(&mut self, desc: DescriptionId, site: Site) -> Result<(), Errno> {
        self.syscall("fds.drop", desc.0, 0);
        match self.fds.descriptions.get_mut(&desc.0) {
            Some(d) if d.holds > 0 => {
                d.holds -= 1;
                self.release_if_unused(desc.0, site);
                Ok(())
            }
            _ => {
                self.invariant(
                    "description",
                    site,
                    format!("drop of description #{} that is not held", desc.0),
                );
                Err(Errno::Ebadf)
            }
        }
    }

    /// Releases a description nobody refers to or holds, and tells the other end of its pipe or
    /// socket: writers blocked on a pipe whose readers are gone wake to EPIPE, readers whose
    /// writers are gone wake to EOF.
    fn release_if_unused(&mut self, id: u64, site: Site) {
        let unused = |d: &Description| d.fds == 0 && d.holds == 0;
        let Some(d) = self.fds.descriptions.remove_if(&id, unused) else {
            return;
        };
        self.resources.release_id(d.record);
        self.syscall("fds.release", id, 0);
        // A thread still waiting here blocked without holding the description: the caller lost
        // track of it. Wake it so that its retry sees EBADF instead of hanging on a dead object.
        if !d.read_waiters.is_empty() || !d.write_waiters.is_empty() {
            self.wake_stranded(id, &d, site);
        }
        match d.object {
            Object::PipeRead { buffer } => self.end_gone(buffer, true, site),
            Object::PipeWrite { buffer } => self.end_gone(buffer, false, site),
            Object::Socket { rx, tx } => {
                self.end_gone(rx, true, site);
                self.end_gone(tx, false, site);
            }
            Object::File { inode, .. } => {
                if let Inode::File { descriptions, .. } = &mut self.fds.inodes[inode] {
                    *descriptions -= 1;
                }
                self.free_file_if_unreachable(inode);
            }
            Object::Dir { .. } | Object::EventFd { .. } => {}
        }
    }

    /// Frees file `inode`'s bytes, and takes them off `file_bytes_total`, once no directory
    /// names it and no open description refers to it (see `Inode::File`).
    fn free_file_if_unreachable(&mut self, inode: usize) {
        let Inode::File {
            data,
            named: false,
            descriptions: 0,
        } = &mut self.fds.inodes[inode]
        else {
            return;
        };
        self.fds.file_bytes_total -= data.len() as u64;
        *data = Vec::new();
    }

    /// Reports and wakes the threads left waiting on description `id` as it is released. Out of
    /// line: a release with no waiter, the usual case, builds no list.
    #[cold]
    fn wake_stranded(&mut self, id: u64, d: &Description, site: Site) {
        let stranded: Vec<(Tid, BlockReason)> = d
            .read_waiters
            .iter()
            .map(|&t| (t, BlockReason::FdReadable(id)))
            .chain(
                d.write_waiters
                    .iter()
                    .map(|&t| (t, BlockReason::FdWritable(id))),
            )
            .collect();
        let tids: Vec<u32> = stranded.iter().map(|(t, _)| t.0).collect();
        let headline = format!(
            "description #{id} released while threads {tids:?} wait on it without holding it"
        );
        self.invariant("description", site, headline);
        for (tid, reason) in stranded {
            self.unblock(tid, &reason, site);
        }
    }

    /// One end of `buffer` is gone: wake the other end, and drop the buffer once both are gone.
    fn end_gone(&mut self, buffer: u64, reader_gone: bool, site: Site) {
        let b = self.fds.buffers.get_mut(&buffer).expect("buffer");
        // The waiter list of the other end is taken below.
        if reader_gone {
            b.reader_open = false;
            b.writers_may_wait = false;
        } else {
            b.writer_open = false;
            b.readers_may_wait = false;
        }
        let (reader, writer) = (b.reader, b.writer);
        let gone = !b.reader_open && !b.writer_open;
        if reader_gone {
            self.wake(writer, false, site);
        } else {
            self.wake(reader, true, site);
        }
        if gone {
            self.check_buffer(buffer, site);
            self.fds.buffers.remove(&buffer);
        }
    }

    /// Takes the whole read (or write) waiter list of a description and wakes everyone on it:
    /// each retries, and the scheduler decides who gets there first.
    #[inline(always)]
    fn wake(&mut self, id: u64, readers: bool, site: Site) {
        let Some(d) = self.fds.descriptions.get_mut(&id) else {
            return;
        };
        let list = if readers {
            &mut d.read_waiters
        } else {
            &mut d.write_waiters
        };
        if list.is_empty() {
            return;
        }
        let waiters = std::mem::take(list);
        self.wake_all(waiters, id, readers, site);
    }

    /// Whether the read (or write) waiter list of description `id` is empty or gone: what a
    /// buffer's `readers_may_wait` (`writers_may_wait`) being unset promises.
    fn nobody_waits(&self, id: u64, readers: bool) -> bool {
        self.fds.descriptions.get(&id).is_none_or(|d| {
            if readers {
                d.read_waiters.is_empty()
            } else {
                d.write_waiters.is_empty()
            }
        })
    }

    #[inline(never)]
    fn wake_all(&mut self, waiters: Vec<Tid>, id: u64, readers: bool, site: Site) {
        let reason = if readers {
            BlockReason::FdReadable(id)
        } else {
            BlockReason::FdWritable(id)
        };
        for tid in waiters {
            self.unblock(tid, &reason, site);
        }
    }

    /// The call would block: EINTR by fault injection, or park `tid` on the waiter list.
    fn park(&mut self, tid: Tid, id: u64, reading: bool, site: Site) -> Io<usize> {
        if self.inject(FaultKind::Eintr, site) {
            return Io::err(Errno::Eintr);
        }
        let d = self
            .fds
            .descriptions
            .get_mut(&id)
            .expect("live description");
        if reading {
            d.read_waiters.push(tid);
            Io::Block(BlockReason::FdReadable(id))
        } else {
            d.write_waiters.push(tid);
            Io::Block(BlockReason::FdWritable(id))
        }
    }

    /// A count shortened by the short-read/short-write fault: at least 1, when more than 1 fit.
    fn maybe_short(&mut self, count: usize, kind: FaultKind, site: Site) -> usize {
        if count > 1 && self.inject(kind, site) {
            (count / 2).max(1)
        } else {
            count
        }
    }

    // ---- read and write ----

    /// Reads into `buf` from `fd`. May block (`Io::Block(FdReadable(description))`): the caller
    /// should then hold the description and retry with `read_description`. Inline, as `fd_write`
    /// is: a caller in another crate (the benchmarks, a test, a fuzz target) otherwise calls this
    /// wrapper around `lookup_fd` and `read_inner`, which cost a 1-byte pipe write+read 34
    /// instructions.
    #[inline]
    pub fn fd_read(&mut self, tid: Tid, fd: Fd, buf: &mut [u8], site: Site) -> Io<usize> {
        match self.lookup_fd(fd, "read", site) {
            Ok(id) => self.read_inner(tid, id, buf, site),
            Err(errno) => Io::err(errno),
        }
    }

    /// Writes `bytes` to `fd`. May block (`Io::Block(FdWritable(description))`).
    #[inline]
    pub fn fd_write(&mut self, tid: Tid, fd: Fd, bytes: &[u8], site: Site) -> Io<usize> {
        match self.lookup_fd(fd, "write", site) {
            Ok(id) => self.write_inner(tid, id, bytes, site),
            Err(errno) => Io::err(errno),
        }
    }

    /// Reads through a description: the retry of a blocked read, valid after its fd was closed
    /// as long as the thread holds the description.
    pub fn read_description(
        &mut self,
        tid: Tid,
        desc: DescriptionId,
        buf: &mut [u8],
        site: Site,
    ) -> Io<usize> {
        if !self.description_still_open(desc, "read", site) {
            return Io::err(Errno::Ebadf);
        }
        self.read_inner(tid, desc.0, buf, site)
    }

    /// Writes through a description: the retry of a blocked write.
    pub fn write_description(
        &mut self,
        tid: Tid,
        desc: DescriptionId,
        bytes: &[u8],
        site: Site,
    ) -> Io<usize> {
        if !self.description_still_open(desc, "write", site) {
            return Io::err(Errno::Ebadf);
        }
        self.write_inner(tid, desc.0, bytes, site)
    }

    /// True while `desc` is open; otherwise an invariant finding for the `call` through it.
    fn description_still_open(&mut self, desc: DescriptionId, call: &str, site: Site) -> bool {
        if self.fds.descriptions.contains_key(&desc.0) {
            return true;
        }
        self.invariant(
            "description",
            site,
            format!(
                "{call} of description #{} that is no longer open (was it held?)",
                desc.0
            ),
        );
        false
    }

    fn read_inner(&mut self, tid: Tid, id: u64, buf: &mut [u8], site: Site) -> Io<usize> {
        let d = &self.fds.descriptions[&id];
        let (object, readable, nonblocking) = (d.object, d.readable, d.nonblocking);
        if !readable && !matches!(object, Object::Dir { .. }) {
            return Io::err(Errno::Ebadf);
        }
        match object {
            Object::Dir { .. } => Io::err(Errno::Eisdir),
            Object::File { inode, offset } => match self.file_read(inode, offset, buf, site) {
                Ok(n) => {
                    if let Some(Description {
                        object: Object::File { offset, .. },
                        ..
                    }) = self.fds.descriptions.get_mut(&id)
                    {
                        *offset += n as u64;
                    }
                    self.read_ok(id, n)
                }
                Err(errno) => Io::err(errno),
            },
            Object::PipeRead { buffer } | Object::Socket { rx: buffer, .. } => {
                self.stream_read(tid, id, buffer, nonblocking, buf, site)
            }
            Object::PipeWrite { .. } => Io::err(Errno::Ebadf),
            Object::EventFd { counter } => {
                self.eventfd_read(tid, id, counter, nonblocking, buf, site)
            }
        }
    }

    /// The answer of a read of `n` bytes through description `id`, after its trace event: every
    /// read that succeeds answers through here. (A check of the answer after the match of
    /// `read_inner`, and of `write_inner`, cost a 1-byte pipe write+read 7 instructions more.)
    #[inline(always)]
    fn read_ok(&mut self, id: u64, n: usize) -> Io<usize> {
        self.syscall("fds.read", id, n as u64);
        Io::ok(n)
    }

    /// The answer of a write of `n` bytes through description `id`, as `read_ok` is of a read.
    #[inline(always)]
    fn write_ok(&mut self, id: u64, n: usize) -> Io<usize> {
        self.syscall("fds.write", id, n as u64);
        Io::ok(n)
    }

    fn write_inner(&mut self, tid: Tid, id: u64, bytes: &[u8], site: Site) -> Io<usize> {
        let d = &self.fds.descriptions[&id];
        let (object, writable, nonblocking) = (d.object, d.writable, d.nonblocking);
        if !writable {
            return Io::err(Errno::Ebadf);
        }
        match object {
            Object::Dir { .. } | Object::PipeRead { .. } => Io::err(Errno::Ebadf),
            Object::File { inode, offset } => {
                let n = match self.file_write(inode, offset, bytes, site) {
                    Ok(n) => n,
                    Err(errno) => return Io::err(errno),
                };
                if let Some(Description {
                    object: Object::File { offset, .. },
                    ..
                }) = self.fds.descriptions.get_mut(&id)
                {
                    *offset += n as u64;
                }
                self.write_ok(id, n)
            }
            Object::PipeWrite { buffer } | Object::Socket { tx: buffer, .. } => {
                self.stream_write(tid, id, buffer, nonblocking, bytes, site)
            }
            Object::EventFd { counter } => {
                self.eventfd_write(tid, id, counter, nonblocking, bytes, site)
            }
        }
    }

    fn stream_read(
        &mut self,
        tid: Tid,
        id: u64,
        buffer: u64,
        nonblocking: bool,
        buf: &mut [u8],
        site: Site,
    ) -> Io<usize> {
        // Linux answers a zero-length read before looking at the pipe.
        if buf.is_empty() {
            return self.read_ok(id, 0);
        }
        if nonblocking && self.inject(FaultKind::Eagain, site) {
            return Io::err(Errno::Eagain);
        }
        let b = self.fds.buffers.get_mut(&buffer).expect("buffer");
        let available = b.bytes.len();
        if available > 0 {
            let n = buf.len().min(available);
            // Without short-read faults in the plan, the count cannot change, and the buffer
            // needs no second lookup.
            let (b, n) = if self.sched.plan().ppm(FaultKind::ShortRead) == 0 {
                (b, n)
            } else {
                let n = self.maybe_short(n, FaultKind::ShortRead, site);
                (self.fds.buffers.get_mut(&buffer).expect("buffer"), n)
            };
            take_bytes(&mut b.bytes, &mut buf[..n]);
            b.bytes_read += n as u64;
            // Room was made: every blocked writer retries.
            let writer = b.writer;
            if b.writers_may_wait {
                b.writers_may_wait = false;
                self.wake(writer, false, site);
            } else {
                debug_assert!(self.nobody_waits(writer, false), "writers_may_wait unset");
            }
            return self.read_ok(id, n);
        }
        if !b.writer_open {
            return self.read_ok(id, 0);
        }
        if nonblocking {
            return Io::err(Errno::Eagain);
        }
        b.readers_may_wait = true;
        self.park(tid, id, true, site)
    }

    fn stream_write(
        &mut self,
        tid: Tid,
        id: u64,
        buffer: u64,
        nonblocking: bool,
        bytes: &[u8],
        site: Site,
    ) -> Io<usize> {
        if bytes.is_empty() {
            return self.write_ok(id, 0);
        }
        if nonblocking && self.inject(FaultKind::Eagain, site) {
            return Io::err(Errno::Eagain);
        }
        let b = self.fds.buffers.get_mut(&buffer).expect("buffer");
        if !b.reader_open {
            return Io::err(Errno::Epipe);
        }
        let room = PIPE_CAPACITY_BYTES - b.bytes.len();
        let atomic = b.pipe && bytes.len() <= PIPE_BUF_BYTES;
        let fits = if atomic {
            if room >= bytes.len() { bytes.len() } else { 0 }
        } else {
            bytes.len().min(room)
        };
        if fits == 0 {
            if nonblocking {
                return Io::err(Errno::Eagain);
            }
            b.writers_may_wait = true;
            return self.park(tid, id, false, site);
        }
        // An atomic pipe write is never split, not even by fault injection; without short-write
        // faults in the plan the count cannot change either, and the buffer needs no second
        // lookup.
        let (b, n) = if atomic || self.sched.plan().ppm(FaultKind::ShortWrite) == 0 {
            (b, fits)
        } else {
            let n = self.maybe_short(fits, FaultKind::ShortWrite, site);
            (self.fds.buffers.get_mut(&buffer).expect("buffer"), n)
        };
        put_bytes(&mut b.bytes, &bytes[..n]);
        b.bytes_written += n as u64;
        let reader = b.reader;
        if b.readers_may_wait {
            b.readers_may_wait = false;
            self.wake(reader, true, site);
        } else {
            debug_assert!(self.nobody_waits(reader, true), "readers_may_wait unset");
        }
        self.write_ok(id, n)
    }

    fn eventfd_read(
        &mut self,
        tid: Tid,
        id: u64,
        counter: u64,
        nonblocking: bool,
        buf: &mut [u8],
        site: Site,
    ) -> Io<usize> {
        if buf.len() < 8 {
            return Io::err(Errno::Einval);
        }
        if nonblocking && self.inject(FaultKind::Eagain, site) {
            return Io::err(Errno::Eagain);
        }
        if counter == 0 {
            if nonblocking {
                return Io::err(Errno::Eagain);
            }
            return self.park(tid, id, true, site);
        }
        buf[..8].copy_from_slice(&counter.to_ne_bytes());
        self.set_eventfd_counter(id, 0);
        // The counter dropped to 0: writers blocked on overflow may proceed.
        self.wake(id, false, site);
        self.read_ok(id, 8)
    }

    fn eventfd_write(
        &mut self,
        tid: Tid,
        id: u64,
        counter: u64,
        nonblocking: bool,
        bytes: &[u8],
        site: Site,
    ) -> Io<usize> {
        if bytes.len() < 8 {
            return Io::err(Errno::Einval);
        }
        let value = u64::from_ne_bytes(bytes[..8].try_into().expect("8 bytes"));
        if value == u64::MAX {
            return Io::err(Errno::Einval);
        }
        if nonblocking && self.inject(FaultKind::Eagain, site) {
            return Io::err(Errno::Eagain);
        }
        // The counter never exceeds u64::MAX - 1; a write that would push it past waits for a read.
        if value > u64::MAX - 1 - counter {
            if nonblocking {
                return Io::err(Errno::Eagain);
            }
            return self.park(tid, id, false, site);
        }
        let counter = counter + value;
        self.set_eventfd_counter(id, counter);
        if counter > 0 {
            self.wake(id, true, site);
        }
        self.write_ok(id, 8)
    }

    fn set_eventfd_counter(&mut self, id: u64, value: u64) {
        if let Some(Description {
            object: Object::EventFd { counter },
            ..
        }) = self.fds.descriptions.get_mut(&id)
        {
            *counter = value;
        }
    }

    fn file_read(
        &mut self,
        inode: usize,
        offset: u64,
        buf: &mut [u8],
        site: Site,
    ) -> Result<usize, Errno> {
        let Inode::File { data, .. } = &self.fds.inodes[inode] else {
            return Err(Errno::Eisdir);
        };
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        let n = self.maybe_short(n, FaultKind::ShortRead, site);
        let Inode::File { data, .. } = &self.fds.inodes[inode] else {
            unreachable!()
        };
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn file_write(
        &mut self,
        inode: usize,
        offset: u64,
        bytes: &[u8],
        site: Site,
    ) -> Result<usize, Errno> {
        // Linux answers a zero-length write with 0 once the fd is known writable, before its
        // limit checks (`generic_write_checks`): nothing grows, whatever the offset.
        if bytes.is_empty() {
            return Ok(0);
        }
        let file_bytes_max = self.limits.file_bytes_max;
        if offset.saturating_add(bytes.len() as u64) > file_bytes_max {
            self.budget("file_bytes_max", file_bytes_max, site);
            return Err(Errno::Efbig);
        }
        let fs_bytes_max = self.limits.fs_bytes_max;
        let size = self.fds.inodes[inode].size();
        let growth = offset
            .saturating_add(bytes.len() as u64)
            .saturating_sub(size);
        if self.fds.file_bytes_total.saturating_add(growth) > fs_bytes_max {
            self.budget("fs_bytes_max", fs_bytes_max, site);
            return Err(Errno::Enospc);
        }
        let n = self.maybe_short(bytes.len(), FaultKind::ShortWrite, site);
        let Inode::File { data, .. } = &mut self.fds.inodes[inode] else {
            return Ok(0);
        };
        let start = offset as usize;
        if data.len() < start + n {
            self.fds.file_bytes_total += (start + n - data.len()) as u64;
            // Writing past the end leaves a hole of zeros, as in Linux.
            data.resize(start + n, 0);
        }
        data[start..start + n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    /// Reads from a regular file at `offset` without moving the description's offset.
    pub fn pread(
        &mut self,
        fd: Fd,
        buf: &mut [u8],
        offset: u64,
        site: Site,
    ) -> Result<usize, Errno> {
        let id = self.lookup_fd(fd, "pread", site)?;
        let d = &self.fds.descriptions[&id];
        match d.object {
            Object::File { inode, .. } if d.readable => self.file_read(inode, offset, buf, site),
            Object::File { .. } => Err(Errno::Ebadf),
            Object::Dir { .. } => Err(Errno::Eisdir),
            _ => Err(Errno::Einval),
        }
    }

    /// Writes to a regular file at `offset` without moving the description's offset.
    pub fn pwrite(
        &mut self,
        fd: Fd,
        bytes: &[u8],
        offset: u64,
        site: Site,
    ) -> Result<usize, Errno> {
        let id = self.lookup_fd(fd, "pwrite", site)?;
        let d = &self.fds.descriptions[&id];
        match d.object {
            Object::File { inode, .. } if d.writable => self.file_write(inode, offset, bytes, site),
            Object::File { .. } | Object::Dir { .. } => Err(Errno::Ebadf),
            _ => Err(Errno::Einval),
        }
    }

    /// Moves a regular file's offset; returns the new offset. Pipes, sockets and eventfds cannot
    /// seek (EINVAL here, ESPIPE in Linux).
    pub fn seek(&mut self, fd: Fd, offset: i64, whence: Whence, site: Site) -> Result<u64, Errno> {
        let id = self.lookup_fd(fd, "seek", site)?;
        let (inode, current) = match self.fds.descriptions[&id].object {
            Object::File { inode, offset } => (inode, offset),
            Object::Dir { .. } => return Ok(0),
            _ => return Err(Errno::Einval),
        };
        let size = self.fds.inodes[inode].size();
        let base = match whence {
            Whence::Set => 0,
            Whence::Current => current,
            Whence::End => size,
        };
        let target = i128::from(base) + i128::from(offset);
        if target < 0 || target > i128::from(i64::MAX) {
            return Err(Errno::Einval);
        }
        let target = target as u64;
        if let Some(Description {
            object: Object::File { offset, .. },
            ..
        }) = self.fds.descriptions.get_mut(&id)
        {
            *offset = target;
        }
        self.syscall("fds.seek", u64::from(fd.number), target);
        Ok(target)
    }

    // ---- creating descriptions ----

    /// A pipe: `(read end, write end)`.
    pub fn pipe(&mut self, site: Site) -> Result<(Fd, Fd), Errno> {
        self.fds_room(2, site)?;
        let buffer = self.fds.next_buffer;
        self.fds.next_buffer += 1;
        let reader = self.new_description(Object::PipeRead { buffer }, true, false, site);
        let writer = self.new_description(Object::PipeWrite { buffer }, false, true, site);
        self.fds
            .buffers
            .insert(buffer, Buffer::new(reader, writer, true));
        let read_fd = self.install(reader, site);
        let write_fd = self.install(writer, site);
        self.syscall(
            "fds.pipe",
            u64::from(read_fd.number),
            u64::from(write_fd.number),
        );
        Ok((read_fd, write_fd))
    }

    /// A connected pair of AF_UNIX stream sockets: what one writes, the other reads.
    pub fn socketpair(&mut self, site: Site) -> Result<(Fd, Fd), Errno> {
        self.fds_room(2, site)?;
        let (ab, ba) = (self.fds.next_buffer, self.fds.next_buffer + 1);
        self.fds.next_buffer += 2;
        let a = self.new_description(Object::Socket { rx: ba, tx: ab }, true, true, site);
        let b = self.new_description(Object::Socket { rx: ab, tx: ba }, true, true, site);
        self.fds.buffers.insert(ab, Buffer::new(b, a, false));
        self.fds.buffers.insert(ba, Buffer::new(a, b, false));
        let fd_a = self.install(a, site);
        let fd_b = self.install(b, site);
        self.syscall(
            "fds.socketpair",
            u64::from(fd_a.number),
            u64::from(fd_b.number),
        );
        Ok((fd_a, fd_b))
    }

    /// An eventfd with counter `initial`.
    pub fn eventfd(&mut self, initial: u32, site: Site) -> Result<Fd, Errno> {
        self.fds_room(1, site)?;
        let id = self.new_description(
            Object::EventFd {
                counter: u64::from(initial),
            },
            true,
            true,
            site,
        );
        let fd = self.install(id, site);
        self.syscall("fds.eventfd", u64::from(fd.number), u64::from(initial));
        Ok(fd)
    }

    // ---- the directory tree ----

    /// Where a path starts: the root for an absolute path, else `dir`'s directory.
    fn path_start(&mut self, dir: Fd, path: &str, call: &str, site: Site) -> Result<usize, Errno> {
        if path.starts_with('/') {
            return Ok(ROOT_INODE);
        }
        let id = self.lookup_fd(dir, call, site)?;
        match self.fds.descriptions[&id].object {
            Object::Dir { inode } => Ok(inode),
            _ => Err(Errno::Enotdir),
        }
    }

    fn mkdir_from(&mut self, start: usize, path: &str) -> Result<(), Errno> {
        let (parent, name) = self.fds.walk(start, path)?;
        let Some(name) = name else {
            return Err(Errno::Eexist);
        };
        let new = self.fds.inodes.len();
        let Inode::Dir { entries, .. } = &mut self.fds.inodes[parent] else {
            return Err(Errno::Enotdir);
        };
        if entries.get(name).is_some() {
            return Err(Errno::Eexist);
        }
        entries.insert(name, new);
        self.fds.inodes.push(Inode::Dir {
            entries: DirEntries::default(),
            parent,
        });
        Ok(())
    }

    /// Creates a directory at an absolute path (its parent must exist).
    pub fn mkdir(&mut self, path: &str, site: Site) -> Result<(), Errno> {
        self.syscall("fds.mkdir", crate::trace::hash_str(site), 0);
        if !path.starts_with('/') {
            return Err(Errno::Enoent);
        }
        self.mkdir_from(ROOT_INODE, path)
    }

    /// Creates a directory at `path` relative to the directory `dir` (or absolute).
    pub fn mkdir_at(&mut self, dir: Fd, path: &str, site: Site) -> Result<(), Errno> {
        self.syscall("fds.mkdir_at", u64::from(dir.number), 0);
        let start = self.path_start(dir, path, "mkdir_at", site)?;
        self.mkdir_from(start, path)
    }

    /// Opens the directory at an absolute path: what a WASI runtime does for each preopen.
    pub fn open_dir(&mut self, path: &str, site: Site) -> Result<Fd, Errno> {
        if !path.starts_with('/') {
            return Err(Errno::Enoent);
        }
        self.open_from(
            ROOT_INODE,
            path,
            OpenFlags {
                read: true,
                directory: true,
                ..OpenFlags::default()
            },
            site,
        )
    }

    /// `openat`: opens (or creates) `path` relative to the directory `dir`, or absolute.
    pub fn open_at(
        &mut self,
        dir: Fd,
        path: &str,
        flags: OpenFlags,
        site: Site,
    ) -> Result<Fd, Errno> {
        // Linux (6.4 on) refuses O_CREAT with O_DIRECTORY before it looks at `dir` or the path:
        // older kernels created a regular file and then failed.
        if flags.create && flags.directory {
            return Err(Errno::Einval);
        }
        let start = self.path_start(dir, path, "open_at", site)?;
        self.open_from(start, path, flags, site)
    }

    fn open_from(
        &mut self,
        start: usize,
        path: &str,
        flags: OpenFlags,
        site: Site,
    ) -> Result<Fd, Errno> {
        let (parent, name) = self.fds.walk(start, path)?;
        // A name followed by `/` must be a directory, which O_CREAT cannot make: Linux answers
        // EISDIR whether or not the name exists.
        let names_a_directory = name.is_some() && path.ends_with('/');
        if names_a_directory && flags.create {
            return Err(Errno::Eisdir);
        }
        let existing = match name {
            None => Some(parent),
            Some(name) => self.fds.step(parent, name).ok(),
        };
        let (inode, object) = match existing {
            Some(_) if flags.create && flags.exclusive => return Err(Errno::Eexist),
            Some(inode) if self.fds.is_dir(inode) => {
                // O_CREAT of a directory that exists is EISDIR in Linux, as is writing one.
                if flags.create || flags.write || flags.truncate {
                    return Err(Errno::Eisdir);
                }
                (inode, Object::Dir { inode })
            }
            Some(_) if flags.directory || names_a_directory => return Err(Errno::Enotdir),
            Some(inode) => (inode, Object::File { inode, offset: 0 }),
            None if !flags.create => return Err(Errno::Enoent),
            None => {
                // Every refusal comes before the name is made, so a failed open creates nothing
                // (`directory` with `create` was refused by `open_at`, a trailing `/` above).
                self.fds_room(1, site)?;
                let new = self.fds.inodes.len();
                let Inode::Dir { entries, .. } = &mut self.fds.inodes[parent] else {
                    return Err(Errno::Enotdir);
                };
                entries.insert(name.expect("a name to create"), new);
                self.fds.inodes.push(Inode::File {
                    data: Vec::new(),
                    named: true,
                    descriptions: 0,
                });
                (
                    new,
                    Object::File {
                        inode: new,
                        offset: 0,
                    },
                )
            }
        };
        self.fds_room(1, site)?;
        if flags.truncate
            && let Inode::File { data, .. } = &mut self.fds.inodes[inode]
        {
            self.fds.file_bytes_total -= data.len() as u64;
            data.clear();
        }
        let id = self.new_description(object, flags.read, flags.write, site);
        let fd = self.install(id, site);
        self.syscall("fds.open", u64::from(fd.number), inode as u64);
        Ok(fd)
    }

    /// Removes a file's name. Open descriptions keep the file's contents, as in Linux, and the
    /// last of them to be released frees them (at once if none is open).
    pub fn unlink_at(&mut self, dir: Fd, path: &str, site: Site) -> Result<(), Errno> {
        self.syscall("fds.unlink_at", u64::from(dir.number), 0);
        let start = self.path_start(dir, path, "unlink_at", site)?;
        let (parent, name) = self.fds.walk(start, path)?;
        let Some(name) = name else {
            return Err(Errno::Eisdir);
        };
        let inode = self.fds.step(parent, name)?;
        if self.fds.is_dir(inode) {
            return Err(Errno::Eisdir);
        }
        // A name followed by `/` must be a directory: Linux's `unlinkat` answers ENOTDIR for a
        // file named so (and EISDIR for a directory, above), and removes nothing.
        if path.ends_with('/') {
            return Err(Errno::Enotdir);
        }
        if let Inode::Dir { entries, .. } = &mut self.fds.inodes[parent] {
            entries.remove(name);
        }
        if let Inode::File { named, .. } = &mut self.fds.inodes[inode] {
            *named = false;
        }
        self.free_file_if_unreachable(inode);
        Ok(())
    }

    // ---- checks ----

    /// Live descriptions (open or held).
    pub fn descriptions_live(&self) -> usize {
        self.fds.descriptions.len()
    }

    /// Threads on any description's waiter list: 0 once every blocked call has been served.
    pub fn waiters_total(&self) -> usize {
        self.fds
            .descriptions
            .values()
            .map(|d| d.read_waiters.len() + d.write_waiters.len())
            .sum()
    }

    fn check_buffer(&mut self, buffer: u64, site: Site) -> bool {
        let b = &self.fds.buffers[&buffer];
        if b.is_conserved() {
            return true;
        }
        let buffered = b.bytes.len() as u64;
        let headline = format!(
            "byte conservation broken on buffer #{buffer} (description #{} → #{}): {} written, {} read, but {buffered} buffered",
            b.writer, b.reader, b.bytes_written, b.bytes_read
        );
        self.invariant("description", site, headline);
        false
    }

    /// Checks `written - read == buffered` for every pipe and socket buffer; each violation is an
    /// invariant finding. Returns whether all held.
    pub fn check_fd_conservation(&mut self) -> bool {
        // The runner asks after every repetition; when every buffer balances, as it should, that
        // costs one pass and no allocation.
        if self.fds.buffers.values().all(Buffer::is_conserved) {
            return true;
        }
        let ids = self.fds.buffers.ids_sorted();
        let mut ok = true;
        for id in ids {
            ok &= self.check_buffer(id, "check_fd_conservation");
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultPlan;
    use crate::findings::FindingKind;
    use crate::os::threads::{MAIN_THREAD, ThreadState};
    use crate::sched::{Scheduler, StrategyChoice};

    fn os_with(kind: FaultKind) -> Os {
        let plan = FaultPlan::none().with(kind, 1_000_000);
        Os::new(
            Scheduler::new(1, &StrategyChoice::Random, plan),
            Default::default(),
            Default::default(),
        )
    }

    fn rw() -> OpenFlags {
        OpenFlags {
            read: true,
            write: true,
            ..OpenFlags::default()
        }
    }

    fn fd_kinds_empty(os: &Os) -> bool {
        let r = os.resources();
        let fd = r.kind_by_name("fd").unwrap();
        let description = r.kind_by_name("description").unwrap();
        r.total(fd).count == 0 && r.total(description).count == 0
    }

    #[test]
    fn lowest_number_is_reused_and_stale_handles_are_told_from_closed_ones() {
        let mut os = Os::for_tests(1);
        let a = os.eventfd(0, "t").unwrap();
        let b = os.eventfd(0, "t").unwrap();
        assert_eq!((a.number, b.number), (0, 1));
        os.close(a, "t").unwrap();
        assert_eq!(os.close(a, "t"), Err(Errno::Ebadf), "closed: EBADF");
        assert_eq!(
            os.close(
                Fd {
                    number: 77,
                    generation: 1
                },
                "t"
            ),
            Err(Errno::Ebadf),
            "unknown: EBADF"
        );
        assert!(os.findings().is_empty(), "EBADF is not a finding");
        let c = os.eventfd(0, "reopen").unwrap();
        assert_eq!(c.number, 0, "lowest free number");
        assert_ne!(c.generation, a.generation);
        let mut buf = [0u8; 8];
        assert_eq!(
            os.fd_read(MAIN_THREAD, a, &mut buf, "old_handle"),
            Io::err(Errno::Estale)
        );
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].kind, FindingKind::Invariant);
        assert_eq!(findings[0].resource, "fd");
        assert!(
            findings[0].headline.contains("stale"),
            "{}",
            findings[0].headline
        );
        assert!(
            findings[0].headline.contains("reopen"),
            "names the current holder: {}",
            findings[0].headline
        );
        os.close(b, "t").unwrap();
        os.close(c, "t").unwrap();
        assert_eq!(os.open_fd_count(), 0);
        assert_eq!(os.descriptions_live(), 0);
        assert!(fd_kinds_empty(&os));
        // Number 0 was reused by `c`, and `c` is closed too: `a` is still stale, though the
        // answer is Linux's EBADF for a closed number; `c`, the last on it, is plainly closed.
        assert_eq!(
            os.fd_write(MAIN_THREAD, a, b"x", "old_handle"),
            Io::err(Errno::Ebadf)
        );
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].kind, FindingKind::Invariant);
        assert_eq!(findings[0].resource, "fd");
        assert_eq!(
            findings[0].headline,
            format!(
                "stale fd handle: write of fd 0 (generation {}), which was closed and whose number was since given to another open (generation {}), closed too",
                a.generation, c.generation
            )
        );
        assert_eq!(os.close(c, "t"), Err(Errno::Ebadf));
        assert!(
            os.findings().is_empty(),
            "the last handle on a number is not stale"
        );
    }

    #[test]
    fn files_and_directories_with_path_lookup() {
        let mut os = Os::for_tests(1);
        os.mkdir("/sandbox", "t").unwrap();
        assert_eq!(os.mkdir("/sandbox", "t"), Err(Errno::Eexist));
        assert_eq!(os.mkdir("/missing/x", "t"), Err(Errno::Enoent));
        let root = os.open_dir("/sandbox", "preopen").unwrap();
        assert_eq!(os.open_dir("/nope", "t"), Err(Errno::Enoent));
        os.mkdir_at(root, "sub", "t").unwrap();
        let create = OpenFlags {
            create: true,
            ..rw()
        };
        let f = os
            .open_at(root, "sub/data.txt", create, "path_open")
            .unwrap();
        assert_eq!(os.fd_write(MAIN_THREAD, f, b"hello world", "t"), Io::ok(11));
        assert_eq!(os.seek(f, 6, Whence::Set, "t"), Ok(6));
        let mut buf = [0u8; 16];
        assert_eq!(os.fd_read(MAIN_THREAD, f, &mut buf, "t"), Io::ok(5));
        assert_eq!(&buf[..5], b"world");
        assert_eq!(
            os.fd_read(MAIN_THREAD, f, &mut buf, "t"),
            Io::ok(0),
            "end of file"
        );
        assert_eq!(os.seek(f, -5, Whence::End, "t"), Ok(6));
        assert_eq!(os.seek(f, -7, Whence::Current, "t"), Err(Errno::Einval));
        assert_eq!(os.pread(f, &mut buf[..5], 0, "t"), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        // Relative lookup with `..`, and absolute lookup ignoring the directory fd.
        let g = os
            .open_at(
                root,
                "sub/../sub/./data.txt",
                OpenFlags {
                    read: true,
                    ..OpenFlags::default()
                },
                "t",
            )
            .unwrap();
        assert_eq!(os.fd_read(MAIN_THREAD, g, &mut buf, "t"), Io::ok(11));
        assert_eq!(
            os.fd_write(MAIN_THREAD, g, b"x", "t"),
            Io::err(Errno::Ebadf),
            "read-only description"
        );
        let h = os
            .open_at(
                g,
                "/sandbox/sub/data.txt",
                OpenFlags {
                    read: true,
                    ..OpenFlags::default()
                },
                "t",
            )
            .unwrap();
        assert_eq!(os.fd_stat(h, "t").unwrap().size, 11);
        assert_eq!(
            os.open_at(g, "data.txt", rw(), "t"),
            Err(Errno::Enotdir),
            "relative to a file"
        );
        assert_eq!(
            os.open_at(root, "sub/data.txt/x", rw(), "t"),
            Err(Errno::Enotdir)
        );
        assert_eq!(
            os.open_at(root, "sub/missing", rw(), "t"),
            Err(Errno::Enoent)
        );
        assert_eq!(os.open_at(root, "sub", rw(), "t"), Err(Errno::Eisdir));
        assert_eq!(
            os.open_at(
                root,
                "sub/data.txt",
                OpenFlags {
                    directory: true,
                    read: true,
                    ..OpenFlags::default()
                },
                "t"
            ),
            Err(Errno::Enotdir)
        );
        assert_eq!(
            os.open_at(
                root,
                "sub/data.txt",
                OpenFlags {
                    exclusive: true,
                    ..create
                },
                "t"
            ),
            Err(Errno::Eexist)
        );
        let sub = os
            .open_at(
                root,
                "sub",
                OpenFlags {
                    directory: true,
                    read: true,
                    ..OpenFlags::default()
                },
                "t",
            )
            .unwrap();
        assert_eq!(
            os.fd_read(MAIN_THREAD, sub, &mut buf, "t"),
            Io::err(Errno::Eisdir)
        );
        assert_eq!(os.fd_stat(sub, "t").unwrap().file_type, FileType::Directory);
        // Truncate empties the file; the hole left by a write past the end reads as zeros.
        let t = os
            .open_at(
                sub,
                "data.txt",
                OpenFlags {
                    truncate: true,
                    ..rw()
                },
                "t",
            )
            .unwrap();
        assert_eq!(os.fd_stat(t, "t").unwrap().size, 0);
        assert_eq!(os.pwrite(t, b"z", 3, "t"), Ok(1));
        assert_eq!(os.fd_read(MAIN_THREAD, t, &mut buf, "t"), Io::ok(4));
        assert_eq!(&buf[..4], b"\0\0\0z");
        // Unlink removes the name; the open description keeps the contents.
        os.unlink_at(root, "sub/data.txt", "t").unwrap();
        assert_eq!(
            os.open_at(root, "sub/data.txt", rw(), "t"),
            Err(Errno::Enoent)
        );
        assert_eq!(os.pread(t, &mut buf, 0, "t"), Ok(4));
        for fd in [root, f, g, h, sub, t] {
            os.close(fd, "t").unwrap();
        }
        assert!(fd_kinds_empty(&os));
        assert!(os.findings().is_empty());
    }

    #[test]
    fn unlink_of_a_file_named_with_a_trailing_slash_is_enotdir_and_removes_nothing() {
        let mut os = Os::for_tests(1);
        let root = os.open_dir("/", "t").unwrap();
        os.mkdir_at(root, "sub", "t").unwrap();
        let create = OpenFlags {
            create: true,
            ..rw()
        };
        let f = os.open_at(root, "f", create, "t").unwrap();
        assert_eq!(os.unlink_at(root, "f/", "t"), Err(Errno::Enotdir));
        assert_eq!(os.unlink_at(root, "f//", "t"), Err(Errno::Enotdir));
        assert_eq!(os.unlink_at(root, "f/.", "t"), Err(Errno::Enotdir));
        assert_eq!(os.unlink_at(root, "sub/", "t"), Err(Errno::Eisdir));
        assert_eq!(os.unlink_at(root, "g/", "t"), Err(Errno::Enoent));
        let read = OpenFlags {
            read: true,
            ..OpenFlags::default()
        };
        let again = os.open_at(root, "f", read, "t").expect("f is still named");
        assert_eq!(os.unlink_at(root, "f", "t"), Ok(()));
        assert_eq!(os.open_at(root, "f", read, "t"), Err(Errno::Enoent));
        for fd in [root, f, again] {
            os.close(fd, "t").unwrap();
        }
        assert!(fd_kinds_empty(&os));
        assert!(os.findings().is_empty());
    }

    #[test]
    fn a_refused_create_makes_nothing_and_a_trailing_slash_names_a_directory() {
        let mut os = Os::for_tests(1);
        let root = os.open_dir("/", "t").unwrap();
        os.mkdir_at(root, "sub", "t").unwrap();
        let read = OpenFlags {
            read: true,
            ..OpenFlags::default()
        };
        let create = OpenFlags {
            create: true,
            ..rw()
        };
        let create_dir = OpenFlags {
            read: true,
            create: true,
            directory: true,
            ..OpenFlags::default()
        };
        // O_CREAT|O_DIRECTORY is EINVAL (Linux 6.4 on), on a missing name and an existing one.
        assert_eq!(os.open_at(root, "d", create_dir, "t"), Err(Errno::Einval));
        assert_eq!(
            os.open_at(root, "d", read, "t"),
            Err(Errno::Enoent),
            "not made"
        );
        assert_eq!(os.open_at(root, "sub", create_dir, "t"), Err(Errno::Einval));
        // With O_CREAT a trailing `/` is EISDIR, whether or not the name exists.
        assert_eq!(os.open_at(root, "g/", create, "t"), Err(Errno::Eisdir));
        assert_eq!(
            os.open_at(root, "g", read, "t"),
            Err(Errno::Enoent),
            "not made"
        );
        assert_eq!(os.open_at(root, "sub/", create, "t"), Err(Errno::Eisdir));
        let create_read_only = OpenFlags {
            create: true,
            ..read
        };
        assert_eq!(
            os.open_at(root, "sub", create_read_only, "t"),
            Err(Errno::Eisdir),
            "O_CREAT of an existing directory"
        );
        // Without O_CREAT a trailing `/` asks for a directory.
        let f = os.open_at(root, "f", create, "t").unwrap();
        assert_eq!(os.open_at(root, "f/", read, "t"), Err(Errno::Enotdir));
        assert_eq!(os.open_at(root, "f/", create, "t"), Err(Errno::Eisdir));
        assert_eq!(os.open_at(root, "g/", read, "t"), Err(Errno::Enoent));
        let sub = os.open_at(root, "sub/", read, "t").unwrap();
        assert_eq!(os.fd_stat(sub, "t").unwrap().file_type, FileType::Directory);
        for fd in [root, f, sub] {
            os.close(fd, "t").unwrap();
        }
        assert!(fd_kinds_empty(&os));
        assert!(os.findings().is_empty());
    }

    #[test]
    fn pipe_capacity_partial_writes_and_pipe_buf_atomicity() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        let big = vec![7u8; 300_000];
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &big, "t"),
            Io::ok(PIPE_CAPACITY_BYTES),
            "writes what fits"
        );
        let desc = os.description_of(w, "t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &big, "t"),
            Io::Block(BlockReason::FdWritable(desc.0)),
            "nothing fits"
        );
        // The caller would block; here the test takes the waiter off by blocking and waking it.
        os.block(MAIN_THREAD, BlockReason::FdWritable(desc.0), "t");
        let mut buf = vec![0u8; 100];
        let reader = os.spawn_thread("reader", "t").unwrap();
        assert_eq!(os.fd_read(reader, r, &mut buf, "t"), Io::ok(100));
        assert_eq!(
            os.thread_state(MAIN_THREAD),
            Some(&ThreadState::Runnable),
            "room wakes the writer"
        );
        os.set_nonblocking(w, true, "t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &[1u8; 200], "t"),
            Io::err(Errno::Eagain),
            "PIPE_BUF: all or nothing"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &[1u8; 5000], "t"),
            Io::ok(100),
            "above PIPE_BUF: partial"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &[1u8; 5000], "t"),
            Io::err(Errno::Eagain)
        );
        assert_eq!(os.waiters_total(), 0);
        assert!(os.check_fd_conservation());
    }

    #[test]
    fn socketpair_capacity_is_per_direction_and_partial_writes_fill_it() {
        let mut os = Os::for_tests(1);
        let (a, b) = os.socketpair("t").unwrap();
        let big = vec![3u8; 300_000];
        assert_eq!(
            os.fd_write(MAIN_THREAD, a, &big, "t"),
            Io::ok(PIPE_CAPACITY_BYTES),
            "a → b holds 212,992 bytes"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, b, &big, "t"),
            Io::ok(PIPE_CAPACITY_BYTES),
            "b → a has its own buffer"
        );
        os.set_nonblocking(a, true, "t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, a, &[1u8; 10], "t"),
            Io::err(Errno::Eagain),
            "full: would block"
        );
        let mut buf = vec![0u8; 1000];
        assert_eq!(os.fd_read(MAIN_THREAD, b, &mut buf, "t"), Io::ok(1000));
        assert_eq!(
            os.fd_write(MAIN_THREAD, a, &[1u8; 5000], "t"),
            Io::ok(1000),
            "a stream socket writes what fits, with no PIPE_BUF rule"
        );
        assert!(os.check_fd_conservation());
    }

    #[test]
    fn zero_length_reads_and_writes_return_at_once() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        assert_eq!(
            os.fd_read(MAIN_THREAD, r, &mut [], "t"),
            Io::ok(0),
            "empty pipe, writer alive: no block"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &vec![0u8; PIPE_CAPACITY_BYTES], "t"),
            Io::ok(PIPE_CAPACITY_BYTES)
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &[], "t"),
            Io::ok(0),
            "full pipe: no block"
        );
        os.close(r, "t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &[], "t"),
            Io::ok(0),
            "no reader: still 0, not EPIPE"
        );
        assert_eq!(os.waiters_total(), 0);
    }

    #[test]
    fn a_zero_length_write_to_a_file_changes_nothing_at_any_offset() {
        let mut os = Os::for_tests(1);
        let root = os.open_dir("/", "t").unwrap();
        let create = OpenFlags {
            create: true,
            ..rw()
        };
        let f = os.open_at(root, "f", create, "t").unwrap();
        assert_eq!(os.fd_write(MAIN_THREAD, f, b"abc", "t"), Io::ok(3));
        assert_eq!(os.seek(f, 1000, Whence::Set, "t"), Ok(1000));
        assert_eq!(os.fd_write(MAIN_THREAD, f, &[], "t"), Io::ok(0));
        assert_eq!(os.pwrite(f, &[], 5000, "t"), Ok(0));
        assert_eq!(os.fd_stat(f, "t").unwrap().size, 3, "no hole is made");
        assert_eq!(os.seek(f, 0, Whence::Current, "t"), Ok(1000));
        // Past `file_bytes_max` too: no EFBIG, and no budget finding.
        let past_the_limit = os.limits.file_bytes_max + 1;
        assert_eq!(os.pwrite(f, &[], past_the_limit, "t"), Ok(0));
        assert_eq!(os.seek(f, 1 << 30, Whence::Set, "t"), Ok(1 << 30));
        assert_eq!(os.fd_write(MAIN_THREAD, f, &[], "t"), Io::ok(0));
        assert_eq!(os.fd_stat(f, "t").unwrap().size, 3);
        assert!(os.findings().is_empty(), "{:?}", os.findings());
        // The fd is still checked first: read-only is EBADF, a closed fd EBADF.
        let read_only = OpenFlags {
            read: true,
            ..OpenFlags::default()
        };
        let g = os.open_at(root, "f", read_only, "t").unwrap();
        assert_eq!(os.fd_write(MAIN_THREAD, g, &[], "t"), Io::err(Errno::Ebadf));
        assert_eq!(os.pwrite(g, &[], 0, "t"), Err(Errno::Ebadf));
        os.close(f, "t").unwrap();
        assert_eq!(os.fd_write(MAIN_THREAD, f, &[], "t"), Io::err(Errno::Ebadf));
        assert_eq!(os.pwrite(f, &[], 0, "t"), Err(Errno::Ebadf));
    }

    #[test]
    fn eof_epipe_blocking_and_eagain() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        let mut buf = [0u8; 4];
        let rd = os.description_of(r, "t").unwrap();
        let reader = os.spawn_thread("reader", "t").unwrap();
        assert_eq!(
            os.fd_read(reader, r, &mut buf, "t"),
            Io::Block(BlockReason::FdReadable(rd.0)),
            "writer lives"
        );
        os.block(reader, BlockReason::FdReadable(rd.0), "t");
        os.set_nonblocking(r, true, "t").unwrap();
        assert_eq!(
            os.fd_read(MAIN_THREAD, r, &mut buf, "t"),
            Io::err(Errno::Eagain)
        );
        assert_eq!(os.fd_write(MAIN_THREAD, w, b"ab", "t"), Io::ok(2));
        assert_eq!(os.thread_state(reader), Some(&ThreadState::Runnable));
        os.close(w, "t").unwrap();
        assert_eq!(
            os.fd_read(reader, r, &mut buf, "t"),
            Io::ok(2),
            "buffered data outlives the writer"
        );
        assert_eq!(os.fd_read(reader, r, &mut buf, "t"), Io::ok(0), "then EOF");
        os.close(r, "t").unwrap();

        let (r, w) = os.pipe("t").unwrap();
        os.close(r, "t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, b"x", "t"),
            Io::err(Errno::Epipe)
        );
        os.close(w, "t").unwrap();
        assert!(fd_kinds_empty(&os));
        assert!(os.findings().is_empty());
    }

    #[test]
    fn closing_the_read_end_wakes_a_blocked_writer_to_epipe() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &vec![0u8; PIPE_CAPACITY_BYTES], "t"),
            Io::ok(PIPE_CAPACITY_BYTES)
        );
        let writer = os.spawn_thread("writer", "t").unwrap();
        let wd = os.description_of(w, "t").unwrap();
        assert_eq!(
            os.fd_write(writer, w, b"x", "t"),
            Io::Block(BlockReason::FdWritable(wd.0))
        );
        os.hold_description(wd, "t").unwrap();
        os.block(writer, BlockReason::FdWritable(wd.0), "t");
        os.close(r, "t").unwrap();
        assert_eq!(os.thread_state(writer), Some(&ThreadState::Runnable));
        assert_eq!(
            os.write_description(writer, wd, b"x", "t"),
            Io::err(Errno::Epipe)
        );
        os.drop_description(wd, "t").unwrap();
        os.close(w, "t").unwrap();
        assert_eq!(os.descriptions_live(), 0);
        assert!(os.findings().is_empty());
    }

    #[test]
    fn socketpair_is_bidirectional_with_eof_and_epipe() {
        let mut os = Os::for_tests(1);
        let (a, b) = os.socketpair("t").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(os.fd_write(MAIN_THREAD, a, b"ping", "t"), Io::ok(4));
        assert_eq!(os.fd_write(MAIN_THREAD, b, b"pong!", "t"), Io::ok(5));
        assert_eq!(os.fd_read(MAIN_THREAD, b, &mut buf, "t"), Io::ok(4));
        assert_eq!(&buf[..4], b"ping");
        assert_eq!(os.fd_read(MAIN_THREAD, a, &mut buf, "t"), Io::ok(5));
        assert_eq!(&buf[..5], b"pong!");
        assert_eq!(os.fd_stat(a, "t").unwrap().file_type, FileType::Socket);
        os.close(b, "t").unwrap();
        assert_eq!(
            os.fd_read(MAIN_THREAD, a, &mut buf, "t"),
            Io::ok(0),
            "peer gone: EOF"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, a, b"x", "t"),
            Io::err(Errno::Epipe),
            "peer gone: EPIPE"
        );
        assert!(os.check_fd_conservation());
        os.close(a, "t").unwrap();
        assert!(fd_kinds_empty(&os));
    }

    #[test]
    fn eventfd_counter_rules() {
        let mut os = Os::for_tests(1);
        let e = os.eventfd(3, "t").unwrap();
        let id = os.description_of(e, "t").unwrap().0;
        let mut buf = [0u8; 8];
        assert_eq!(
            os.fd_read(MAIN_THREAD, e, &mut buf[..4], "t"),
            Io::err(Errno::Einval),
            "buffer under 8 bytes"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, e, &[1, 0, 0], "t"),
            Io::err(Errno::Einval)
        );
        assert_eq!(
            os.fd_read(MAIN_THREAD, e, &mut [], "t"),
            Io::err(Errno::Einval),
            "even zero-length"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, e, &5u64.to_ne_bytes(), "t"),
            Io::ok(8)
        );
        assert_eq!(os.fd_read(MAIN_THREAD, e, &mut buf, "t"), Io::ok(8));
        assert_eq!(u64::from_ne_bytes(buf), 8, "returns the counter");
        assert_eq!(
            os.fd_read(MAIN_THREAD, e, &mut buf, "t"),
            Io::Block(BlockReason::FdReadable(id)),
            "reset to 0"
        );
        os.block(MAIN_THREAD, BlockReason::FdReadable(id), "t");
        let t = os.spawn_thread("writer", "t").unwrap();
        assert_eq!(
            os.fd_write(t, e, &u64::MAX.to_ne_bytes(), "t"),
            Io::err(Errno::Einval),
            "u64::MAX is refused"
        );
        assert_eq!(
            os.fd_write(t, e, &(u64::MAX - 1).to_ne_bytes(), "t"),
            Io::ok(8),
            "the maximum counter"
        );
        assert_eq!(
            os.thread_state(MAIN_THREAD),
            Some(&ThreadState::Runnable),
            "a write wakes readers"
        );
        assert_eq!(
            os.fd_write(t, e, &1u64.to_ne_bytes(), "t"),
            Io::Block(BlockReason::FdWritable(id)),
            "overflow blocks"
        );
        os.block(t, BlockReason::FdWritable(id), "t");
        os.set_nonblocking(e, true, "t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, e, &1u64.to_ne_bytes(), "t"),
            Io::err(Errno::Eagain),
            "overflow, non-blocking"
        );
        assert_eq!(os.fd_read(MAIN_THREAD, e, &mut buf, "t"), Io::ok(8));
        assert_eq!(u64::from_ne_bytes(buf), u64::MAX - 1);
        assert_eq!(
            os.thread_state(t),
            Some(&ThreadState::Runnable),
            "a read wakes blocked writers"
        );
        assert_eq!(
            os.fd_read(MAIN_THREAD, e, &mut buf, "t"),
            Io::err(Errno::Eagain),
            "0, non-blocking"
        );
        os.close(e, "t").unwrap();
        assert!(fd_kinds_empty(&os));
        assert!(os.findings().is_empty());
    }

    /// Miri #3572/#4072's shape: the reader's fd is closed while it is blocked in the read.
    #[test]
    fn closing_the_fd_of_a_blocked_reader_keeps_its_description() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        let a = os.spawn_thread("a", "t").unwrap();
        let mut buf = [0u8; 8];
        let rd = os.description_of(r, "t").unwrap();
        let reason = os.fd_read(a, r, &mut buf, "a_read");
        assert_eq!(reason, Io::Block(BlockReason::FdReadable(rd.0)));
        os.hold_description(rd, "a_read").unwrap();
        os.block(a, BlockReason::FdReadable(rd.0), "a_read");
        os.close(r, "main_close").unwrap();
        assert_eq!(
            os.descriptions_live(),
            2,
            "the read description is still held by a"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, b"data", "main_write"),
            Io::ok(4),
            "a reader still holds the read end: no EPIPE"
        );
        assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable), "a woke");
        assert_eq!(os.read_description(a, rd, &mut buf, "a_retry"), Io::ok(4));
        assert_eq!(&buf[..4], b"data");
        os.drop_description(rd, "a_done").unwrap();
        assert_eq!(os.descriptions_live(), 1);
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, b"more", "t"),
            Io::err(Errno::Epipe),
            "now the read end is gone"
        );
        os.close(w, "t").unwrap();
        assert_eq!(os.descriptions_live(), 0);
        assert_eq!(os.waiters_total(), 0);
        assert!(fd_kinds_empty(&os));
        assert!(os.findings().is_empty(), "{:?}", os.findings());
    }

    #[test]
    fn a_write_wakes_every_reader_and_the_loser_blocks_again() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        let rd = os.description_of(r, "t").unwrap();
        let reason = BlockReason::FdReadable(rd.0);
        let a = os.spawn_thread("a", "t").unwrap();
        let b = os.spawn_thread("b", "t").unwrap();
        let mut buf = [0u8; 8];
        for t in [a, b] {
            assert_eq!(os.fd_read(t, r, &mut buf, "t"), Io::Block(reason.clone()));
            os.block(t, reason.clone(), "t");
        }
        assert_eq!(os.waiters_total(), 2);
        assert_eq!(os.fd_write(MAIN_THREAD, w, b"!", "t"), Io::ok(1));
        assert_eq!(os.waiters_total(), 0, "the list was taken whole");
        assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
        assert_eq!(os.thread_state(b), Some(&ThreadState::Runnable));
        assert_eq!(
            os.read_description(b, rd, &mut buf, "t"),
            Io::ok(1),
            "first retry gets the byte"
        );
        assert_eq!(
            os.read_description(a, rd, &mut buf, "t"),
            Io::Block(reason.clone()),
            "second blocks again"
        );
        os.block(a, reason, "t");
        os.close(w, "t").unwrap();
        assert_eq!(
            os.read_description(a, rd, &mut buf, "t"),
            Io::ok(0),
            "writer gone: EOF on retry"
        );
        os.close(r, "t").unwrap();
        assert_eq!(os.waiters_total(), 0);
        assert!(os.findings().is_empty());
    }

    /// A thread on a waiter list that is not blocked for that reason (here: its read parked it,
    /// and the caller went on without blocking it) is an invariant finding when the list is
    /// woken, and the wake-up leaves the thread as it is: the wake-up is where every waiter list
    /// ends (or the release of its description, `wake_stranded`), so no separate pass over the
    /// lists is needed to notice one.
    #[test]
    fn a_listed_waiter_not_blocked_for_the_list_is_a_finding_when_woken() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        let rd = os.description_of(r, "t").unwrap();
        let a = os.spawn_thread("a", "t").unwrap();
        let mut buf = [0u8; 8];
        let reason = BlockReason::FdReadable(rd.0);
        assert_eq!(os.fd_read(a, r, &mut buf, "t"), Io::Block(reason.clone()));
        assert_eq!(os.waiters_total(), 1);
        assert!(os.findings().is_empty());
        assert_eq!(os.fd_write(MAIN_THREAD, w, b"!", "wake"), Io::ok(1));
        assert_eq!(os.thread_state(a), Some(&ThreadState::Runnable));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].signature(), "invariant:waiter:wake");
        assert_eq!(
            findings[0].headline,
            format!(
                "unblock of thread {} expecting `{reason}`, but its state is Runnable",
                a.0
            )
        );
        for fd in [r, w] {
            os.close(fd, "t").unwrap();
        }
        assert!(os.findings().is_empty());
    }

    /// Every read or write that succeeds is one trace event naming its description and count,
    /// whatever it reads from (file, pipe, eventfd) and whatever it answers (bytes, end of file,
    /// a zero-length call); one that fails or blocks is none.
    #[test]
    fn a_read_or_write_is_one_trace_event_when_it_succeeds_and_none_otherwise() {
        let mut os = Os::for_tests(1);
        os.mkdir("/d", "t").unwrap();
        let dir = os.open_dir("/d", "t").unwrap();
        let create = OpenFlags {
            create: true,
            ..rw()
        };
        let file = os.open_at(dir, "f", create, "t").unwrap();
        let (r, w) = os.pipe("t").unwrap();
        let event = os.eventfd(0, "t").unwrap();
        let id = |os: &mut Os, fd| os.description_of(fd, "t").unwrap().0;
        let (file_id, r_id, w_id, event_id) = (
            id(&mut os, file),
            id(&mut os, r),
            id(&mut os, w),
            id(&mut os, event),
        );
        let sink = crate::trace::MemorySink::default();
        os.trace().attach_sink(Box::new(sink.clone()));
        let mut buf = [0u8; 8];
        let one = 1u64.to_ne_bytes();
        assert_eq!(os.fd_write(MAIN_THREAD, file, b"abc", "t"), Io::ok(3));
        assert_eq!(os.seek(file, 0, Whence::Set, "t"), Ok(0));
        assert_eq!(os.fd_read(MAIN_THREAD, file, &mut buf, "t"), Io::ok(3));
        assert_eq!(os.fd_write(MAIN_THREAD, w, b"xy", "t"), Io::ok(2));
        assert_eq!(os.fd_write(MAIN_THREAD, w, b"", "t"), Io::ok(0));
        assert_eq!(os.fd_read(MAIN_THREAD, r, &mut buf[..0], "t"), Io::ok(0));
        assert_eq!(os.fd_read(MAIN_THREAD, r, &mut buf, "t"), Io::ok(2));
        assert_eq!(os.fd_write(MAIN_THREAD, event, &one, "t"), Io::ok(8));
        assert_eq!(os.fd_read(MAIN_THREAD, event, &mut buf, "t"), Io::ok(8));
        assert_eq!(
            os.fd_write(MAIN_THREAD, r, b"x", "t"),
            Io::err(Errno::Ebadf)
        );
        assert_eq!(
            os.fd_read(MAIN_THREAD, w, &mut buf, "t"),
            Io::err(Errno::Ebadf)
        );
        let blocked = Io::Block(BlockReason::FdReadable(r_id));
        assert_eq!(os.fd_read(MAIN_THREAD, r, &mut buf, "t"), blocked);
        os.block(MAIN_THREAD, BlockReason::FdReadable(r_id), "t");
        os.close(w, "t").unwrap();
        let sink_text = sink.take_text();
        assert_eq!(
            os.read_description(MAIN_THREAD, DescriptionId(r_id), &mut buf, "t"),
            Io::ok(0)
        );
        let eof_text = sink.take_text();
        let said = |text: &str| -> Vec<(String, u64, u64)> {
            text.lines()
                .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
                .filter(|e| e["ev"].as_str().is_some_and(|ev| ev.starts_with("fds.")))
                .map(|e| {
                    let ev = e["ev"].as_str().unwrap().to_string();
                    (ev, e["a"].as_u64().unwrap(), e["b"].as_u64().unwrap())
                })
                .collect()
        };
        let expected = [
            ("fds.write", file_id, 3),
            ("fds.seek", file_id, 0),
            ("fds.read", file_id, 3),
            ("fds.write", w_id, 2),
            ("fds.write", w_id, 0),
            ("fds.read", r_id, 0),
            ("fds.read", r_id, 2),
            ("fds.write", event_id, 8),
            ("fds.read", event_id, 8),
            ("fds.close", u64::from(w.number), u64::from(w.generation)),
            ("fds.release", w_id, 0),
        ]
        .map(|(ev, a, b)| (ev.to_string(), a, b));
        assert_eq!(said(&sink_text), expected);
        assert_eq!(said(&eof_text), [("fds.read".to_string(), r_id, 0)]);
    }

    /// A socket's two directions have their own waiters: a copy one way wakes nobody blocked on
    /// the other way, and a copy wakes its own direction's waiters every time one parked, also
    /// after an earlier wake found them gone.
    #[test]
    fn a_copy_wakes_the_waiters_of_its_own_direction_only() {
        let mut os = Os::for_tests(1);
        let (a, b) = os.socketpair("t").unwrap();
        let da = os.description_of(a, "t").unwrap();
        let readable = BlockReason::FdReadable(da.0);
        let writable = BlockReason::FdWritable(da.0);
        let (x, y) = (
            os.spawn_thread("x", "t").unwrap(),
            os.spawn_thread("y", "t").unwrap(),
        );
        let mut buf = [0u8; 8];
        for round in 0..2 {
            assert_eq!(os.fd_read(x, a, &mut buf, "t"), Io::Block(readable.clone()));
            os.block(x, readable.clone(), "t");
            assert_eq!(os.fd_write(MAIN_THREAD, a, b"?", "t"), Io::ok(1));
            assert_eq!(
                os.thread_state(x),
                Some(&ThreadState::Blocked(readable.clone()))
            );
            assert_eq!(os.fd_write(MAIN_THREAD, b, b"!", "t"), Io::ok(1));
            assert_eq!(
                os.thread_state(x),
                Some(&ThreadState::Runnable),
                "round {round}"
            );
            assert_eq!(os.read_description(x, da, &mut buf, "t"), Io::ok(1));
            assert_eq!(os.fd_read(MAIN_THREAD, b, &mut buf, "t"), Io::ok(1));
        }
        let full = vec![0u8; PIPE_CAPACITY_BYTES];
        for round in 0..2 {
            assert_eq!(
                os.fd_write(MAIN_THREAD, a, &full, "t"),
                Io::ok(PIPE_CAPACITY_BYTES)
            );
            assert_eq!(os.fd_write(y, a, b"?", "t"), Io::Block(writable.clone()));
            os.block(y, writable.clone(), "t");
            assert_eq!(os.fd_write(MAIN_THREAD, b, b"!", "t"), Io::ok(1));
            assert_eq!(os.fd_read(MAIN_THREAD, a, &mut buf, "t"), Io::ok(1));
            assert_eq!(
                os.thread_state(y),
                Some(&ThreadState::Blocked(writable.clone()))
            );
            assert_eq!(os.fd_read(MAIN_THREAD, b, &mut buf, "t"), Io::ok(8));
            assert_eq!(
                os.thread_state(y),
                Some(&ThreadState::Runnable),
                "round {round}"
            );
            assert_eq!(os.write_description(y, da, b"?", "t"), Io::ok(1));
            let mut rest = vec![0u8; PIPE_CAPACITY_BYTES];
            assert_eq!(
                os.fd_read(MAIN_THREAD, b, &mut rest, "t"),
                Io::ok(PIPE_CAPACITY_BYTES - 7)
            );
        }
        assert_eq!(os.waiters_total(), 0);
        assert!(os.check_fd_conservation());
        assert!(os.findings().is_empty());
    }

    #[test]
    fn a_waiter_that_did_not_hold_is_reported_when_its_description_goes() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        let rd = os.description_of(r, "t").unwrap();
        let a = os.spawn_thread("a", "t").unwrap();
        let mut buf = [0u8; 1];
        assert!(matches!(os.fd_read(a, r, &mut buf, "t"), Io::Block(_)));
        os.block(a, BlockReason::FdReadable(rd.0), "t");
        os.close(r, "careless_close").unwrap();
        assert_eq!(
            os.thread_state(a),
            Some(&ThreadState::Runnable),
            "woken rather than stranded"
        );
        assert_eq!(
            os.read_description(a, rd, &mut buf, "t"),
            Io::err(Errno::Ebadf)
        );
        let findings = os.take_findings();
        assert_eq!(findings.len(), 2);
        assert!(
            findings[0].headline.contains("without holding"),
            "{}",
            findings[0].headline
        );
        assert_eq!(
            os.drop_description(rd, "t"),
            Err(Errno::Ebadf),
            "dropping what is not held"
        );
        os.close(w, "t").unwrap();
        assert_eq!(os.waiters_total(), 0);
    }

    #[test]
    fn conservation_check_reports_lost_bytes() {
        let mut os = Os::for_tests(1);
        let (r, w) = os.pipe("t").unwrap();
        assert_eq!(os.fd_write(MAIN_THREAD, w, b"abc", "t"), Io::ok(3));
        assert!(os.check_fd_conservation());
        let buffer = os.fds.buffers.ids_sorted()[0];
        os.fds.buffers.get_mut(&buffer).unwrap().bytes.pop_back();
        assert!(!os.check_fd_conservation());
        let findings = os.take_findings();
        assert_eq!(findings.len(), 1);
        assert!(findings[0].headline.contains("conservation"));
        os.close(r, "t").unwrap();
        os.close(w, "t").unwrap();
        assert_eq!(
            os.take_findings().len(),
            1,
            "checked once more when the buffer goes"
        );
    }

    #[test]
    fn short_reads_and_writes_by_fault_injection() {
        let mut os = os_with(FaultKind::ShortWrite);
        let (r, w) = os.socketpair("t").unwrap();
        assert_eq!(os.fd_write(MAIN_THREAD, w, &[1u8; 10], "t"), Io::ok(5));
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, &[1u8; 1], "t"),
            Io::ok(1),
            "one byte is never shortened"
        );
        let (_pr, pw) = os.pipe("t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, pw, &[1u8; 10], "t"),
            Io::ok(10),
            "atomic pipe writes stay whole"
        );
        let mut buf = [0u8; 16];
        assert_eq!(os.fd_read(MAIN_THREAD, r, &mut buf, "t"), Io::ok(6));

        let mut os = os_with(FaultKind::ShortRead);
        let (r, w) = os.pipe("t").unwrap();
        assert_eq!(os.fd_write(MAIN_THREAD, w, &[1u8; 10], "t"), Io::ok(10));
        assert_eq!(os.fd_read(MAIN_THREAD, r, &mut buf, "t"), Io::ok(5));
        assert_eq!(os.fd_read(MAIN_THREAD, r, &mut buf[..1], "t"), Io::ok(1));
        assert!(os.check_fd_conservation());
        assert!(
            os.injected_faults()
                .iter()
                .all(|(k, _)| *k == FaultKind::ShortRead)
        );
    }

    #[test]
    fn eintr_only_where_a_call_would_block_and_eagain_only_when_non_blocking() {
        let mut os = os_with(FaultKind::Eintr);
        let (r, w) = os.pipe("t").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            os.fd_read(MAIN_THREAD, r, &mut buf, "t"),
            Io::err(Errno::Eintr)
        );
        assert_eq!(
            os.waiters_total(),
            0,
            "an interrupted call is not left waiting"
        );
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, b"ab", "t"),
            Io::ok(2),
            "a call that does not block is not interrupted"
        );
        assert_eq!(os.fd_read(MAIN_THREAD, r, &mut buf, "t"), Io::ok(2));

        let mut os = os_with(FaultKind::Eagain);
        let (r, w) = os.pipe("t").unwrap();
        assert_eq!(
            os.fd_write(MAIN_THREAD, w, b"ab", "t"),
            Io::ok(2),
            "blocking fds never see spurious EAGAIN"
        );
        assert_eq!(os.fd_read(MAIN_THREAD, r, &mut buf, "t"), Io::ok(2));
        os.set_nonblocking(r, true, "t").unwrap();
        assert_eq!(os.fd_write(MAIN_THREAD, w, b"ab", "t"), Io::ok(2));
        assert_eq!(
            os.fd_read(MAIN_THREAD, r, &mut buf, "t"),
            Io::err(Errno::Eagain),
            "spurious"
        );
        assert_eq!(os.injected_faults().len(), 1);
    }

    #[test]
    fn fds_max_is_emfile_and_a_budget_finding() {
        let limits = crate::os::Limits {
            fds_max: 3,
            ..Default::default()
        };
        let mut os = Os::new(
            Scheduler::new(1, &StrategyChoice::Random, FaultPlan::none()),
            limits,
            Default::default(),
        );
        let (r, w) = os.pipe("t").unwrap();
        assert_eq!(os.pipe("t"), Err(Errno::Emfile), "two fds do not fit");
        assert_eq!(os.descriptions_live(), 2, "nothing half-made");
        let e = os.eventfd(0, "t").unwrap();
        assert_eq!(os.dup(e, "t"), Err(Errno::Emfile));
        let findings = os.take_findings();
        assert_eq!(findings.len(), 2);
        assert!(
            findings
                .iter()
                .all(|f| f.kind == FindingKind::Budget && f.resource == "fds_max")
        );
        for fd in [r, w, e] {
            os.close(fd, "t").unwrap();
        }
        assert!(fd_kinds_empty(&os));
    }

    /// The bytes files hold, counted over every file: what `file_bytes_total` must equal.
    fn file_bytes_held(os: &Os) -> u64 {
        let sizes = os.fds.inodes.iter().map(Inode::size).sum::<u64>();
        assert_eq!(
            os.fds.file_bytes_total, sizes,
            "file bytes accounted as held"
        );
        sizes
    }

    /// An unlinked file's bytes stay readable through every fd (a dup) and hold on the
    /// description (a blocked call's) and go when the last of them is released: the file system
    /// has room for as many bytes again, as in Linux.
    #[test]
    fn an_unlinked_file_frees_its_bytes_when_its_last_description_is_released() {
        const BYTES: usize = 4096;
        let limits = crate::os::Limits {
            fs_bytes_max: BYTES as u64,
            ..Default::default()
        };
        let mut os = Os::new(
            Scheduler::new(1, &StrategyChoice::Random, FaultPlan::none()),
            limits,
            Default::default(),
        );
        os.mkdir("/d", "t").unwrap();
        let dir = os.open_dir("/d", "t").unwrap();
        let create = OpenFlags {
            create: true,
            ..rw()
        };
        let f = os.open_at(dir, "f", create, "t").unwrap();
        assert_eq!(os.pwrite(f, &[7; BYTES], 0, "t"), Ok(BYTES));
        let g = os.dup(f, "t").unwrap();
        let held = os.description_of(f, "t").unwrap();
        os.hold_description(held, "t").unwrap();
        os.unlink_at(dir, "f", "t").unwrap();
        os.close(f, "t").unwrap();
        let mut buf = [0; BYTES];
        assert_eq!(
            os.pread(g, &mut buf, 0, "t"),
            Ok(BYTES),
            "the dup reads it all"
        );
        assert_eq!(buf, [7; BYTES]);
        os.close(g, "t").unwrap();
        assert_eq!(
            file_bytes_held(&os),
            BYTES as u64,
            "held by the blocked call"
        );
        assert_eq!(
            os.read_description(MAIN_THREAD, held, &mut buf[..1], "t"),
            Io::ok(1)
        );
        os.drop_description(held, "t").unwrap();
        assert_eq!(file_bytes_held(&os), 0, "freed with the last description");
        let h = os.open_at(dir, "h", create, "t").unwrap();
        assert_eq!(os.pwrite(h, &[8; BYTES], 0, "t"), Ok(BYTES), "room again");
        // Unlinked with no description open: freed at once. Closed but named: kept.
        os.close(h, "t").unwrap();
        assert_eq!(
            file_bytes_held(&os),
            BYTES as u64,
            "a named file keeps its bytes"
        );
        os.unlink_at(dir, "h", "t").unwrap();
        assert_eq!(file_bytes_held(&os), 0);
        os.close(dir, "t").unwrap();
        assert!(fd_kinds_empty(&os));
        assert!(os.findings().is_empty(), "{:?}", os.findings());
    }

    #[test]
    fn dup_shares_the_description_and_renumber_moves_an_fd() {
        let mut os = Os::for_tests(1);
        os.mkdir("/d", "t").unwrap();
        let dir = os.open_dir("/d", "t").unwrap();
        let f = os
            .open_at(
                dir,
                "f",
                OpenFlags {
                    create: true,
                    ..rw()
                },
                "t",
            )
            .unwrap();
        let g = os.dup(f, "t").unwrap();
        assert_eq!(os.description_of(f, "t"), os.description_of(g, "t"));
        assert_eq!(os.fd_write(MAIN_THREAD, f, b"abc", "t"), Io::ok(3));
        assert_eq!(
            os.fd_write(MAIN_THREAD, g, b"def", "t"),
            Io::ok(3),
            "shared offset: appends"
        );
        assert_eq!(os.fd_stat(f, "t").unwrap().size, 6);
        os.set_nonblocking(f, true, "t").unwrap();
        assert!(
            os.fd_stat(g, "t").unwrap().nonblocking,
            "O_NONBLOCK lives on the description"
        );
        os.close(f, "t").unwrap();
        assert_eq!(os.descriptions_live(), 2, "g keeps the file description");

        let e = os.eventfd(0, "t").unwrap();
        let (dir_n, g_n) = (dir.number, g.number);
        let moved = os.renumber(e, g, "fd_renumber").unwrap();
        assert_eq!(moved.number, g_n);
        assert_eq!(os.fd_stat(moved, "t").unwrap().file_type, FileType::EventFd);
        assert_eq!(
            os.close(e, "t"),
            Err(Errno::Ebadf),
            "the old number is free"
        );
        assert_eq!(
            os.close(g, "t"),
            Err(Errno::Estale),
            "the replaced handle is stale"
        );
        assert_eq!(os.take_findings().len(), 1);
        assert_eq!(os.descriptions_live(), 2, "the file lost its last fd");
        let d = os.dup2(dir, 9, "t").unwrap();
        assert_eq!(d.number, 9);
        let d2 = os.dup2(moved, 9, "t").unwrap();
        assert_eq!(
            os.fd_stat(d2, "t").unwrap().file_type,
            FileType::EventFd,
            "dup2 replaced the dir fd"
        );
        assert_eq!(os.dup2(dir, dir_n, "t"), Ok(dir));
        for fd in [dir, moved, d2] {
            os.close(fd, "t").unwrap();
        }
        assert!(fd_kinds_empty(&os));
        assert_eq!(os.open_fd_count(), 0);
        assert!(os.findings().is_empty());
    }
}
