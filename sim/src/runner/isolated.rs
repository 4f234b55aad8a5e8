//! Isolated runs: a host-backed scenario in a forked child process, so that a crash of real
//! third-party code becomes a `fault` finding instead of killing the tool.
//!
//! Real code (the `dlmalloc` crate, say) dereferences host pointers into the host arena
//! (`os/host_arena.rs`). The arena makes released and decommitted pages `PROT_NONE`, so a
//! use-after-release by real code is a SIGSEGV. The simulation cannot check those accesses
//! beforehand, so the run goes in a child process and the crash is caught there:
//!
//! 1. The parent makes a pipe and forks.
//! 2. The child closes every inherited descriptor but the pipe's write end, installs a SIGSEGV and
//!    SIGBUS handler (`SA_SIGINFO`, on an alternate signal stack) and runs the scenario with the
//!    ordinary in-process runner, which publishes itself to the handler for the duration of the
//!    run (`publish`). At the end it writes the `Outcome` to the pipe as one JSON line and
//!    `_exit(0)`s.
//! 3. When real code touches a page it must not, the handler takes `si_addr`, maps it back to a
//!    simulated address and asks the published runner for the outcome so far plus a `fault`
//!    finding (`Os::report_host_fault`: the address, the page's state, who released it, who had
//!    acquired it, and the real code that was running). It writes that outcome as one line tagged
//!    `C` and `_exit`s. The run never resumes.
//! 4. The parent forwards trace lines to the caller's sink as they arrive, reads the outcome and
//!    reaps the child. A child that ended any other way is described by `lost_run`: the watchdog's
//!    SIGALRM gives a `budget` finding, anything else (an abort, a crash inside the handler, a
//!    kill, a panic outside the subject) a `panic` finding that names the signal or exit status.
//!
//! The pipe carries lines, each tagged by its first byte: `T` + one trace event (JSON), `O` + the
//! outcome (JSON), `C` + the outcome of a run that real code crashed (the process is ending). A
//! trace sink (`RunOptions::trace_sink`, `sim run --trace`) cannot cross the fork, so the child
//! attaches a sink that writes tagged lines to the pipe and the parent copies them into the
//! caller's sink: traces work for isolated runs as for any other, up to the crash.
//!
//! Fork servers (`ForkServer`). A fork costs in proportion to the parent's memory, and a sweep's
//! memory grows with the records it collects; a sweep's workers are also threads, under which a
//! fork is hazardous (see below). So a sweep forks one server per worker before any worker starts,
//! while the process is small and single-threaded. The shrinker starts one per search of a
//! host-backed scenario (`shrink::CandidateRuns`), whose runner runs candidate after candidate; it
//! forks where the search runs, which in a sweep is a worker thread while other workers run: one
//! fork under threads per search, where each candidate was such a fork before. The server keeps
//! what it inherited (the registry, the sweep's sources, the search's scenario) and reads requests
//! from a socket, one JSON line each. It does not run them itself: it forks a *runner*, a
//! grandchild that runs request after request in its own process (`run_here`: the crash handler
//! installed, the watchdog armed per run), each with a fresh `Os`, so that a fork is paid per crash
//! rather than per run (it was most of a host-backed run's cost). The server does not stand between
//! the worker and its runner: it hands the worker the runner's request socket and reply pipe
//! (`SCM_RIGHTS`) and keeps no copy, so a run is one request and one reply, two wake-ups, while the
//! server sleeps. When it relayed both ways, a run was four wake-ups in turn (worker, server,
//! runner, server, worker): twice the context switches (README, Benchmarks, Sweeps). A crash of
//! real code ends the runner: its handler writes the outcome tagged `C` (crashed, and gone), and
//! the worker asks the server for a new runner for the next request (the server reaps the old one).
//! A runner that ends without an outcome (the watchdog, a kill, a panic) leaves the worker an end
//! of file or a line cut short, since only the runner holds the write end: the worker sends the
//! request to the server, which reaps the runner and answers its `lost` (`lost_run`) outcome,
//! exactly as `run` describes such a child. A sweep asks for no trace, so no `T` line crosses these
//! channels. A runner that is gone before a request reaches it (killed between requests) is
//! replaced and the request sent again; only the run a runner dies in is lost. Requests travel on
//! sockets written with `MSG_NOSIGNAL` (`PipedChild`), so that a server or runner that is gone is
//! an error for the one asking, never a SIGPIPE that would end it. Dropping the `ForkServer` closes
//! the runner's channel (the runner exits at end of file) and then the server's socket: the server
//! reaps its runner, exits, and is reaped. A server that is gone answers `None`, and its worker
//! runs the request itself; while the runner it handed over lives, that is only once the runner has
//! crashed or ended, since clean runs never reach the server.
//!
//! Determinism: the child runs the same deterministic simulation as an in-process run; host
//! addresses never enter the trace (the handler maps them back to simulated addresses first), so
//! two runs of one (scenario, seed) give one trace hash, crash or not.
//!
//! This file and `os/host_arena.rs` are the only places in the library that call the host OS
//! through libc: fork, pipes, signals and `_exit` live here, real memory lives there. (The CLI's
//! `main_with` also restores SIGPIPE's default action before anything runs.)
//!
//! Limits, stated plainly:
//! - The handler is not async-signal-safe in general: it allocates and formats. It is safe enough
//!   here because the only code that can fault on arena memory is the subject's real code, which
//!   never runs inside the host allocator or while holding a lock the handler needs, and because
//!   the handler never returns: the interrupted code, and the `&mut` borrows it holds on the
//!   runner, never run again. (Formally the handler's access aliases those borrows; no code
//!   observes the difference because the process ends.) A fault inside the handler kills the child
//!   with the default action, which the parent reports.
//! - `fork` copies only the calling thread. Under a multi-threaded caller (the test harness, a
//!   sweep worker whose fork server is gone, or the shrinker starting its server on a sweep
//!   worker) a lock held by another thread at the moment of the fork stays held in the child; the
//!   child takes none of the caller's locks except the host allocator's, which glibc makes
//!   fork-safe. A sweep's own servers are forked before its threads start, and every server forks
//!   its runners from its own single thread, so the forks named above are the only ones made
//!   under threads. A server arms no watchdog: one that hung on such a lock would leave the worker
//!   that asks it waiting, which only the rule that it takes no lock of the caller's rules out. A
//!   child that runs scenarios and hangs anyway (on such a lock, or in real code that never
//!   returns) is ended by its watchdog: it arms `alarm(host_run_seconds_max)` (a `[limits]`
//!   field, 300 s by default), SIGALRM's default action kills it (`install_crash_handler` restores
//!   that action, in case `sim` was started with SIGALRM ignored), and the parent reports a
//!   `budget:host_run_seconds_max` finding. The alarm reads no clock inside the simulation: it only
//!   ends a run that was going nowhere.
//! - Unix only; the access kind (read or write) is decoded from the signal context on x86-64
//!   Linux and left unknown elsewhere.

use std::io::{BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Outcome, RunOptions, header, run_inner};
use crate::findings::{Finding, FindingKind};
use crate::os::Access;
use crate::scenario::Scenario;
use crate::subject::Subject;

/// What the crash handler asks of the published runner.
pub(crate) trait CrashReport {
    /// The outcome of a run that real code crashed by touching `host_addr`: every finding so far
    /// plus the `fault`. The run never resumes after this.
    fn crashed(&mut self, host_addr: *const u8, access: Option<Access>) -> Outcome;
}

/// The runner of the run in progress in this (child) process, with its lifetime erased.
struct Published(*mut (dyn CrashReport + 'static));

/// Proof that a runner is published; `unpublish` consumes it.
pub(crate) struct Publication(());

static PUBLISHED: AtomicPtr<Published> = AtomicPtr::new(null_mut());
/// The pipe's write end in the child; -1 elsewhere.
static RESULT_FD: AtomicI32 = AtomicI32::new(-1);

/// Line tags on the pipe.
const TAG_TRACE: u8 = b'T';
const TAG_OUTCOME: u8 = b'O';
/// The outcome of a run that real code crashed: the process that ran it is ending.
const TAG_CRASHED: u8 = b'C';

/// The handler formats JSON and findings on this stack, so it is generous.
const SIGNAL_STACK_BYTES: usize = 1 << 20;
/// Trace bytes buffered in the child before a write to the pipe.
const TRACE_BUFFER_BYTES: usize = 64 * 1024;

/// Exit statuses of the child, for the parent's report when no outcome arrived.
const EXIT_REPORTED: i32 = 0;
const EXIT_CRASH_UNPUBLISHED: i32 = 90;
const EXIT_HANDLER_PANICKED: i32 = 91;
const EXIT_RUN_PANICKED: i32 = 92;
/// A fork server's exit status when it could not serve a request: unreadable or unknown, a
/// runner it could not fork or hand over, a lost run with no runner, or a reply it could not
/// write. A runner exits with it too when it cannot read a request or write its outcome
/// (`run_requests`).
const EXIT_SERVER_REFUSED: i32 = 93;

/// Makes `report` the target of the crash handler until `unpublish`.
///
/// The caller must keep the runner where it is, and alive, until it calls `unpublish`. The
/// pointer is only dereferenced by the crash handler of an isolated child, which ends the process.
pub(crate) fn publish<'r>(report: &'r mut (dyn CrashReport + 'r)) -> Publication {
    let raw: *mut (dyn CrashReport + 'r) = report;
    // SAFETY: only the lifetime changes (same fat-pointer layout). The pointer is withdrawn by
    // `unpublish` before the runner moves or dies, as the caller promises.
    let raw: *mut (dyn CrashReport + 'static) = unsafe { std::mem::transmute(raw) };
    let slot = Box::into_raw(Box::new(Published(raw)));
    let previous = PUBLISHED.swap(slot, Ordering::SeqCst);
    assert!(previous.is_null(), "one published run per process");
    Publication(())
}

pub(crate) fn unpublish(_publication: Publication) {
    let slot = PUBLISHED.swap(null_mut(), Ordering::SeqCst);
    if !slot.is_null() {
        // SAFETY: `publish` made this box, and the swap above took it out of reach.
        drop(unsafe { Box::from_raw(slot) });
    }
}

/// Runs `scenario` in a forked child; see the module header.
pub fn run<S: Subject>(scenario: &Scenario<S::Op>, mut options: RunOptions) -> Outcome {
    let sink = options.trace_sink.take();
    let (read_fd, write_fd) = match pipe() {
        Ok(fds) => fds,
        Err(error) => {
            return unreported::<S>(scenario, &options, format!("pipe2 failed: {error}"));
        }
    };
    // SAFETY: the child only runs `child`, which ends in `_exit` and never returns here.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let error = std::io::Error::last_os_error();
        close_both(read_fd, write_fd);
        return unreported::<S>(scenario, &options, format!("fork failed: {error}"));
    }
    if pid == 0 {
        crate::subject::note_forked_child();
        child::<S>(scenario, options, write_fd, sink.is_some());
    }
    #[cfg(test)]
    RUNS_FORKED.set(RUNS_FORKED.get() + 1);
    // SAFETY: the parent keeps only the read end.
    unsafe { libc::close(write_fd) };
    let outcome = read_child(read_fd, sink);
    let status = reap(pid);
    outcome.unwrap_or_else(|| lost_run::<S>(scenario, &options, status))
}

/// The outcome of an isolated run whose process ended with wait status `status` before it
/// reported one: the watchdog's budget finding, or a `panic` finding saying how it ended.
pub fn lost_run<S: Subject>(
    scenario: &Scenario<S::Op>,
    options: &RunOptions,
    status: libc::c_int,
) -> Outcome {
    if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
        timed_out::<S>(scenario, options)
    } else {
        unreported::<S>(scenario, options, describe_status(status))
    }
}

/// Runs `scenario` in this process as an isolated run's child does: published to the crash
/// handler, under the watchdog. Only for a process that exists to run scenarios (an isolated
/// child, or a fork server's runner) and has installed the crash handler: a crash of real code,
/// the watchdog, or a panic outside the subject ends the process.
pub fn run_here<S: Subject>(scenario: &Scenario<S::Op>, options: RunOptions) -> Outcome {
    // The watchdog: SIGALRM's default action ends the process, and its parent reports the budget.
    let seconds = scenario
        .limits
        .host_run_seconds_max
        .clamp(1, u64::from(u32::MAX));
    // SAFETY: `alarm` only arms a timer for this process.
    unsafe { libc::alarm(seconds as libc::c_uint) };
    let outcome = catch_unwind(AssertUnwindSafe(|| run_inner::<S>(scenario, options, true)));
    // SAFETY: as above; 0 disarms it.
    unsafe { libc::alarm(0) };
    match outcome {
        Ok(outcome) => outcome,
        // SAFETY: `_exit` ends the process without running the parent's atexit handlers or
        // flushing buffers the parent also holds (they were copied by the fork).
        Err(_) => unsafe { libc::_exit(EXIT_RUN_PANICKED) },
    }
}

/// A pipe whose ends are closed on exec: `(read end, write end)`.
fn pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

fn close_both(a: RawFd, b: RawFd) {
    // SAFETY: the caller owns both descriptors and uses them nowhere else.
    unsafe {
        libc::close(a);
        libc::close(b);
    }
}

/// A socket pair whose ends are closed on exec: `(parent's end, child's end)`.
fn socket_pair() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// A forked process that answers request lines with reply lines: a fork server (for a sweep
/// worker) or a fork server's runner (for the server). Requests go out on a socket, written with
/// `MSG_NOSIGNAL`: a child that is gone is then an error, never a SIGPIPE, which `sim` leaves at
/// its default action and which would end the caller (a sweep, or the server). Replies come back
/// on a pipe. Dropping it closes the request socket, which ends a child waiting for a request,
/// and reaps the child.
struct PipedChild {
    /// Declared before `child` so that it closes first: a child waiting for a request ends, and
    /// can be reaped.
    channel: Channel,
    child: Unreaped,
}

/// A child process this process has to reap: dropping it waits for the child to end. A process
/// the child's channel is handed to has nothing to wait for, so the child is handed over with it
/// (`into_pid`).
struct Unreaped(libc::pid_t);

/// The caller's ends of a `PipedChild`'s request socket and reply pipe.
struct Channel {
    requests: OwnedFd,
    replies: BufReader<std::fs::File>,
}

/// What one exchange with a `PipedChild` gave.
enum Exchange {
    /// A whole reply line.
    Reply(Vec<u8>),
    /// The request could not be sent: the child was gone before it.
    Unsent,
    /// The request went out, and the child ended before a whole reply.
    NoReply,
}

impl PipedChild {
    /// Forks a child that runs `body(request read end, reply write end)`, which never returns.
    /// An error names the call that failed, for the caller's warning.
    fn fork(body: impl FnOnce(RawFd, RawFd) -> std::convert::Infallible) -> std::io::Result<Self> {
        let (request_out, request_in) =
            socket_pair().map_err(|error| call_failed("socketpair", error))?;
        let (reply_read, reply_write) = match pipe() {
            Ok(fds) => fds,
            Err(error) => {
                close_both(request_out, request_in);
                return Err(call_failed("pipe2", error));
            }
        };
        // SAFETY: the child only runs `body`, which ends in `_exit` and never returns here.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let error = std::io::Error::last_os_error();
            close_both(request_out, request_in);
            close_both(reply_read, reply_write);
            return Err(call_failed("fork", error));
        }
        if pid == 0 {
            crate::subject::note_forked_child();
            // `body` ends the child (its type says so): the parent's code below never runs in it.
            body(request_in, reply_write);
        }
        close_both(request_in, reply_write);
        // SAFETY: the parent owns these two ends from here on, and their owners close them.
        let (requests, replies) = unsafe {
            (
                OwnedFd::from_raw_fd(request_out),
                std::fs::File::from_raw_fd(reply_read),
            )
        };
        Ok(PipedChild {
            channel: Channel {
                requests,
                replies: BufReader::new(replies),
            },
            child: Unreaped(pid),
        })
    }

    /// Sends one request line and reads one reply line.
    fn exchange(&mut self, line: &[u8]) -> Exchange {
        self.channel.exchange(line)
    }

    /// Closes this process's ends of the channel, once handed to another process, and leaves
    /// the child to be reaped by the caller: its pid.
    fn hand_over(self) -> libc::pid_t {
        let PipedChild { channel, child } = self;
        drop(channel);
        child.into_pid()
    }
}

impl Unreaped {
    /// The child's pid, for the caller to reap: this no longer waits for it.
    fn into_pid(self) -> libc::pid_t {
        let pid = self.0;
        std::mem::forget(self);
        pid
    }
}

impl Drop for Unreaped {
    fn drop(&mut self) {
        reap(self.0);
    }
}

impl Channel {
    /// The request socket and the reply pipe.
    fn raw_fds(&self) -> [RawFd; 2] {
        [
            self.requests.as_raw_fd(),
            self.replies.get_ref().as_raw_fd(),
        ]
    }

    /// Sends one request line and reads one reply line.
    fn exchange(&mut self, line: &[u8]) -> Exchange {
        if send_all(self.requests.as_raw_fd(), line).is_err() {
            return Exchange::Unsent;
        }
        let mut reply = Vec::new();
        match self.replies.read_until(b'\n', &mut reply) {
            // A line cut short is a child that died while writing it.
            Ok(_) if reply.ends_with(b"\n") => Exchange::Reply(reply),
            _ => Exchange::NoReply,
        }
    }
}

/// `error` from the host call `call`, saying which call it was.
fn call_failed(call: &str, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{call} failed: {error}"))
}

/// Writes all of `bytes` to the socket `fd` without raising SIGPIPE.
fn send_all(fd: RawFd, bytes: &[u8]) -> std::io::Result<()> {
    // SAFETY: the pointer and length describe a live slice.
    write_all_by(bytes, |rest| unsafe {
        libc::send(fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL)
    })
}

/// The outcome in a line tagged `O` or `C`.
fn outcome_in(line: &[u8]) -> Option<Outcome> {
    match line.split_first() {
        Some((&(TAG_OUTCOME | TAG_CRASHED), json)) => serde_json::from_slice(json).ok(),
        _ => None,
    }
}

#[cfg(test)]
thread_local! {
    /// When set, `ForkServer::start` on this thread fails as if `fork` had set this errno, so
    /// that a test can see how a caller copes with a server that cannot start.
    pub(crate) static FORK_SERVER_START_ERRNO: std::cell::Cell<Option<i32>> =
        const { std::cell::Cell::new(None) };
}

#[cfg(test)]
thread_local! {
    /// Children `run` forked on this thread: a test of a caller that should run through a fork
    /// server instead (the shrinker's) counts them.
    pub(crate) static RUNS_FORKED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A process forked early, while the caller is small and single-threaded, that runs isolated runs
/// on request; see the module header. Dropping it ends the server and reaps it.
pub struct ForkServer<R> {
    /// The runner's request socket and reply pipe, which the server forked and handed over; the
    /// caller sends each request there and reads the outcome there, and the server sleeps.
    /// Declared before `server` so that it closes first: the runner ends, and the server can
    /// reap it before it exits.
    runner: Option<Channel>,
    /// `None` once the server is gone: every later request is refused at once.
    server: Option<PipedChild>,
    _requests: PhantomData<fn(R)>,
}

/// What a caller asks of its fork server, each a line on the server's request socket.
const ASK_FORK_RUNNER: u8 = b'F';
/// Followed by the request the runner died in: the server reaps it and answers `lost`'s outcome.
const ASK_LOST: u8 = b'L';

impl<R: Serialize + DeserializeOwned> ForkServer<R> {
    /// Forks a server that answers each request through its runner (see the module header):
    /// `run` runs the request in the runner's process (typically `run_here`), `lost` describes a
    /// request whose runner ended, with the given wait status, before it reported (typically
    /// `lost_run`). Both run only in the processes forked here, on the state the caller had at the
    /// fork.
    ///
    /// Best called before the caller starts threads: the fork then copies a consistent process,
    /// and one that is as small as it will ever be. A caller with threads (the shrinker on a sweep
    /// worker) may call it too, at the risk the module header states: a lock another thread holds
    /// at the fork stays held in the server. An error names the host call that failed.
    pub fn start(
        mut run: impl FnMut(&R) -> Outcome,
        mut lost: impl FnMut(&R, libc::c_int) -> Outcome,
    ) -> std::io::Result<ForkServer<R>> {
        #[cfg(test)]
        if let Some(errno) = FORK_SERVER_START_ERRNO.get() {
            let error = std::io::Error::from_raw_os_error(errno);
            return Err(call_failed("fork", error));
        }
        let server =
            PipedChild::fork(|requests, replies| serve(requests, replies, &mut run, &mut lost))?;
        Ok(ForkServer {
            runner: None,
            server: Some(server),
            _requests: PhantomData,
        })
    }

    /// The outcome of `request`, from the runner (or, for a run the runner died in, from the
    /// server); `None` when the server is gone (killed, or it could not answer), and the caller
    /// should run the request some other way.
    pub fn ask(&mut self, request: &R) -> Option<Outcome> {
        let outcome = self.ask_runner(request);
        if outcome.is_none() {
            // Dropping them ends a runner and a server that are still alive, and reaps them.
            self.runner = None;
            self.server = None;
        }
        outcome
    }

    /// Has the runner answer `request`, asking the server for one first if there is none. A
    /// runner that was gone before the request reached it (it ended between requests) is
    /// replaced and the request sent again: only the run a runner dies in is lost, and the
    /// server describes that one. A runner that reports a crash is ending: the next request
    /// gets a new one.
    fn ask_runner(&mut self, request: &R) -> Option<Outcome> {
        let mut line = serde_json::to_vec(request).ok()?;
        line.push(b'\n');
        for _attempt in 0..2 {
            if self.runner.is_none() {
                self.runner = Some(self.fork_runner()?);
            }
            let runner = self.runner.as_mut().expect("forked just now");
            match runner.exchange(&line) {
                Exchange::Reply(reply) if reply.first() == Some(&TAG_OUTCOME) => {
                    return outcome_in(&reply);
                }
                Exchange::Reply(reply) if reply.first() == Some(&TAG_CRASHED) => {
                    self.runner = None;
                    return outcome_in(&reply);
                }
                Exchange::Unsent => self.runner = None,
                Exchange::Reply(_) | Exchange::NoReply => {
                    self.runner = None;
                    let mut asked = vec![ASK_LOST];
                    asked.extend_from_slice(&line);
                    return match self.server.as_mut()?.exchange(&asked) {
                        Exchange::Reply(reply) => outcome_in(&reply),
                        Exchange::Unsent | Exchange::NoReply => None,
                    };
                }
            }
        }
        None
    }

    /// Asks the server to fork a runner, and takes its channel: the server keeps no copy, so
    /// the runner's end is this caller's end of file.
    fn fork_runner(&mut self) -> Option<Channel> {
        let server = self.server.as_mut()?;
        let socket = server.channel.requests.as_raw_fd();
        send_all(socket, &[ASK_FORK_RUNNER, b'\n']).ok()?;
        let [requests, replies] = receive_fds(socket).ok()?;
        Some(Channel {
            requests,
            replies: BufReader::new(std::fs::File::from(replies)),
        })
    }
}

/// The server's side: forks runners and hands their channels to the caller, and describes the
/// runs they die in, until the request socket closes. Never returns.
fn serve<R: DeserializeOwned>(
    requests: RawFd,
    replies: RawFd,
    run: &mut impl FnMut(&R) -> Outcome,
    lost: &mut impl FnMut(&R, libc::c_int) -> Outcome,
) -> ! {
    // The other servers' pipes and the caller's files (a locked results file, say) must not stay
    // open for as long as this server lives.
    close_inherited_descriptors(&[requests, replies]);
    // SAFETY: the server owns the read end from here on.
    let mut reader = BufReader::new(unsafe { std::fs::File::from_raw_fd(requests) });
    let mut line = Vec::new();
    let mut runner: Option<libc::pid_t> = None;
    let served = catch_unwind(AssertUnwindSafe(|| {
        loop {
            // A request it cannot read, a runner it cannot fork, or a reply it cannot write ends
            // the server: the caller sees it gone and runs the request itself.
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return EXIT_REPORTED,
                Ok(_) => {}
            }
            let answered = match line.split_first() {
                Some((&ASK_FORK_RUNNER, _)) => {
                    // The caller asks for a runner when it has closed the last one's channel,
                    // which ends it (if a crash had not already).
                    if let Some(pid) = runner.take() {
                        reap(pid);
                    }
                    match PipedChild::fork(|requests, replies| run_requests(requests, replies, run))
                    {
                        Ok(forked) => {
                            let handed = send_fds(requests, &forked.channel.raw_fds());
                            runner = Some(forked.hand_over());
                            handed.is_ok()
                        }
                        Err(_) => false,
                    }
                }
                Some((&ASK_LOST, request)) => {
                    match (serde_json::from_slice(request), runner.take()) {
                        (Ok(request), Some(pid)) => {
                            send_outcome(replies, &lost(&request, reap(pid))).is_ok()
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            if !answered {
                return EXIT_SERVER_REFUSED;
            }
        }
    }));
    // The caller closed the runner's channel before this socket: the runner has ended.
    if let Some(pid) = runner {
        reap(pid);
    }
    // SAFETY: as in `child`: the server shares the caller's buffers and atexit handlers.
    unsafe { libc::_exit(served.unwrap_or(EXIT_RUN_PANICKED)) }
}

/// A control buffer of `CMSG_SPACE(fds_len)` bytes, for one header and `fds_len` bytes of
/// descriptors: `u64`s, so that it is aligned for its `cmsghdr` (`CMSG_SPACE` is a multiple of 8
/// on 64-bit Linux, so the buffer is exactly that long).
fn control_buffer(fds_len: u32) -> Vec<u64> {
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fds_len) } as usize;
    vec![0u64; space.div_ceil(8)]
}

/// A message of the one data byte `iov` and the control buffer `control`, as `send_fds` and
/// `receive_fds` pass descriptors.
fn fd_message(iov: &mut libc::iovec, control: &mut [u64]) -> libc::msghdr {
    // SAFETY: a zeroed msghdr is valid (no buffers); the fields that matter are set below.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = std::mem::size_of_val(control) as _;
    message
}

/// Sends `fds` over the Unix socket `socket` (`SCM_RIGHTS`), with one byte of data.
fn send_fds(socket: RawFd, fds: &[RawFd]) -> std::io::Result<()> {
    let byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    let fds_len = std::mem::size_of_val(fds) as u32;
    let mut control = control_buffer(fds_len);
    let message = fd_message(&mut iov, &mut control);
    // SAFETY: the control buffer has room for one header and `fds` (CMSG_SPACE), and
    // CMSG_FIRSTHDR points into it.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(fds_len) as _;
        let data = libc::CMSG_DATA(header).cast::<RawFd>();
        for (index, fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(data.add(index), *fd);
        }
    }
    loop {
        // SAFETY: `message` describes live buffers.
        let sent = unsafe { libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL) };
        match sent {
            1 => return Ok(()),
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

/// Receives the two descriptors `send_fds` sent on `socket`, closed on exec.
fn receive_fds(socket: RawFd) -> std::io::Result<[OwnedFd; 2]> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = control_buffer(std::mem::size_of::<[RawFd; 2]>() as u32);
    let mut message = fd_message(&mut iov, &mut control);
    let received = loop {
        // SAFETY: `message` describes live buffers.
        let received = unsafe { libc::recvmsg(socket, &mut message, libc::MSG_CMSG_CLOEXEC) };
        if received >= 0 {
            break received;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    // Every descriptor that arrived is owned at once, before anything is checked: one left open
    // on a refusal (the control data cut short when this process is out of descriptors, say)
    // would keep the runner's request socket open, and the runner waiting on it for ever.
    let mut owned = Vec::new();
    // SAFETY: recvmsg filled `message`; CMSG_FIRSTHDR and CMSG_NXTHDR give null or a whole
    // header inside the control buffer, whose `cmsg_len` the kernel wrote.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data_len =
                    ((*header).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                for index in 0..data_len / std::mem::size_of::<RawFd>() {
                    // Each is this process's now, and owned by nothing else.
                    owned.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(
                        data.add(index),
                    )));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    let cut_short = message.msg_flags & libc::MSG_CTRUNC != 0;
    match <[OwnedFd; 2]>::try_from(owned) {
        Ok(fds) if received == 1 && !cut_short => Ok(fds),
        // Dropped here, so closed.
        Ok(_) | Err(_) if received == 0 => Err(std::io::Error::other(
            "the fork server closed its socket (it is gone)",
        )),
        Ok(_) | Err(_) => Err(std::io::Error::other(format!(
            "no runner's two descriptors from the fork server ({} byte(s){})",
            received,
            if cut_short {
                ", control data cut short"
            } else {
                ""
            }
        ))),
    }
}

/// What the next line of a request socket held.
enum Request<R> {
    Read(R),
    /// The socket closed (or could not be read): the asking side is done.
    EndOfFile,
    Unreadable,
}

/// Reads the next request line into `line` and parses it.
fn next_request<R: DeserializeOwned>(reader: &mut impl BufRead, line: &mut Vec<u8>) -> Request<R> {
    line.clear();
    match reader.read_until(b'\n', line) {
        Ok(0) | Err(_) => Request::EndOfFile,
        Ok(_) => serde_json::from_slice(line).map_or(Request::Unreadable, Request::Read),
    }
}

/// The runner's side: runs requests until its request socket closes. Never returns.
fn run_requests<R: DeserializeOwned>(
    requests: RawFd,
    replies: RawFd,
    run: &mut impl FnMut(&R) -> Outcome,
) -> ! {
    close_inherited_descriptors(&[requests, replies]);
    RESULT_FD.store(replies, Ordering::SeqCst);
    install_crash_handler();
    // SAFETY: the runner owns the read end from here on.
    let mut reader = BufReader::new(unsafe { std::fs::File::from_raw_fd(requests) });
    let mut line = Vec::new();
    let code = loop {
        let request: R = match next_request(&mut reader, &mut line) {
            Request::Read(request) => request,
            Request::EndOfFile => break EXIT_REPORTED,
            Request::Unreadable => break EXIT_SERVER_REFUSED,
        };
        if send_outcome(replies, &run(&request)).is_err() {
            break EXIT_SERVER_REFUSED;
        }
    };
    // SAFETY: as in `child`.
    unsafe { libc::_exit(code) }
}

/// The child's side: never returns.
fn child<S: Subject>(
    scenario: &Scenario<S::Op>,
    mut options: RunOptions,
    fd: RawFd,
    trace: bool,
) -> ! {
    close_inherited_descriptors(&[fd]);
    RESULT_FD.store(fd, Ordering::SeqCst);
    install_crash_handler();
    if trace {
        options.trace_sink = Some(Box::new(PipeTrace {
            fd,
            buffer: Vec::new(),
            at_line_start: true,
        }));
    }
    let outcome = run_here::<S>(scenario, options);
    // A failed write leaves the parent without an outcome, which it reports.
    let _ = send_outcome(fd, &outcome);
    // SAFETY: `_exit` ends the process without running the parent's atexit handlers or flushing
    // buffers the parent also holds (they were copied by the fork).
    unsafe { libc::_exit(EXIT_REPORTED) }
}

/// Closes every descriptor the child inherited except stdin, stdout, stderr and `keep`. Another
/// thread of the parent may be running its own isolated child; holding a copy of that child's
/// pipe would delay its parent's end-of-file until this child exits.
fn close_inherited_descriptors(keep: &[RawFd]) {
    let listed: Option<Vec<RawFd>> = std::fs::read_dir("/proc/self/fd").ok().map(|dir| {
        dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    });
    let candidates = listed.unwrap_or_else(|| (3..4096).collect());
    for fd in candidates {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing a descriptor this process does not use; the directory handle used
            // to list them is already closed, and a stale number only gives EBADF.
            unsafe { libc::close(fd) };
        }
    }
}

fn install_crash_handler() {
    let stack = Box::leak(vec![0u8; SIGNAL_STACK_BYTES].into_boxed_slice());
    let alternate = libc::stack_t {
        ss_sp: stack.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: stack.len(),
    };
    // SAFETY: the stack is leaked, so it outlives every signal; the sigaction struct is fully
    // initialised (zeroed, then the fields that matter set).
    unsafe {
        let rc = libc::sigaltstack(&alternate, null_mut());
        assert_eq!(rc, 0, "sigaltstack: {}", std::io::Error::last_os_error());
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_crash as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        for signal in [libc::SIGSEGV, libc::SIGBUS] {
            let rc = libc::sigaction(signal, &action, null_mut());
            assert_eq!(rc, 0, "sigaction: {}", std::io::Error::last_os_error());
        }
        // The watchdog relies on SIGALRM's default action, which an ignored disposition
        // inherited from whoever started `sim` would disable.
        libc::signal(libc::SIGALRM, libc::SIG_DFL);
    }
}

/// The SIGSEGV/SIGBUS handler of an isolated child. It never returns.
extern "C" fn on_crash(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let host_addr = unsafe { (*info).si_addr() } as *const u8;
    let access = access_of(context);
    let fd = RESULT_FD.load(Ordering::SeqCst);
    let slot = PUBLISHED.load(Ordering::SeqCst);
    if slot.is_null() || fd < 0 {
        // SAFETY: ending the process is the point.
        unsafe { libc::_exit(EXIT_CRASH_UNPUBLISHED) }
    }
    let reported = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see the module header: the runner is alive (published for the whole run) and
        // the code interrupted by the signal never resumes.
        let report = unsafe { &mut *(*slot).0 };
        report.crashed(host_addr, access)
    }));
    let code = match reported {
        Ok(outcome) => {
            let _ = send_tagged(fd, TAG_CRASHED, &outcome);
            EXIT_REPORTED
        }
        Err(_) => EXIT_HANDLER_PANICKED,
    };
    // SAFETY: ending the process is the point.
    unsafe { libc::_exit(code) }
}

/// Whether the faulting access was a read or a write, from the page-fault error code the kernel
/// saves in the signal context (bit 1 set for a write; Intel SDM vol. 3, 4.7).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn access_of(context: *mut libc::c_void) -> Option<Access> {
    if context.is_null() {
        return None;
    }
    // SAFETY: the kernel passes a ucontext_t as the third argument of an SA_SIGINFO handler.
    let error =
        unsafe { (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_ERR as usize] };
    Some(if error & 2 != 0 {
        Access::Write
    } else {
        Access::Read
    })
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn access_of(_context: *mut libc::c_void) -> Option<Access> {
    None
}

/// Writes all of `bytes` to `fd` with raw `write` calls (no locks, no buffers).
fn write_all_fd(fd: RawFd, bytes: &[u8]) -> std::io::Result<()> {
    // SAFETY: the pointer and length describe a live slice.
    write_all_by(bytes, |rest| unsafe {
        libc::write(fd, rest.as_ptr().cast(), rest.len())
    })
}

/// Writes all of `bytes` through `write` (a raw `write` or `send` of what is left, returning
/// what it wrote or -1), retrying on EINTR.
fn write_all_by(mut bytes: &[u8], write: impl Fn(&[u8]) -> isize) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let written = write(bytes);
        if written < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        bytes = &bytes[written as usize..];
    }
    Ok(())
}

/// Writes `outcome` to `fd` as one line tagged `O`.
fn send_outcome(fd: RawFd, outcome: &Outcome) -> std::io::Result<()> {
    send_tagged(fd, TAG_OUTCOME, outcome)
}

/// Writes `outcome` to `fd` as one line tagged `tag`.
fn send_tagged(fd: RawFd, tag: u8, outcome: &Outcome) -> std::io::Result<()> {
    let mut line = vec![tag];
    serde_json::to_writer(&mut line, outcome)?;
    line.push(b'\n');
    write_all_fd(fd, &line)
}

/// The child's trace sink: every line tagged `T`, written to the pipe in large pieces.
struct PipeTrace {
    fd: RawFd,
    buffer: Vec<u8>,
    at_line_start: bool,
}

impl Write for PipeTrace {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for &byte in bytes {
            if self.at_line_start {
                self.buffer.push(TAG_TRACE);
            }
            self.buffer.push(byte);
            self.at_line_start = byte == b'\n';
        }
        if self.buffer.len() >= TRACE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        write_all_fd(self.fd, &self.buffer)?;
        self.buffer.clear();
        Ok(())
    }
}

impl Drop for PipeTrace {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Reads the child's lines until it closes the pipe: trace lines go to `sink`, the outcome is
/// returned.
fn read_child(read_fd: RawFd, mut sink: Option<Box<dyn Write>>) -> Option<Outcome> {
    // SAFETY: the parent owns the read end and hands it to the File, which closes it.
    let pipe = unsafe { std::fs::File::from_raw_fd(read_fd) };
    let mut reader = BufReader::new(pipe);
    let mut outcome = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match line.first() {
            Some(&TAG_TRACE) => {
                if let Some(sink) = sink.as_mut() {
                    // A failed trace write must not change the run (as in `Trace::event`); the
                    // caller's sink remembers it (`trace::ErrorKeepingWriter`).
                    let _ = sink.write_all(&line[1..]);
                }
            }
            Some(&TAG_OUTCOME | &TAG_CRASHED) => outcome = outcome_in(&line),
            _ => {}
        }
    }
    if let Some(sink) = sink.as_mut() {
        let _ = sink.flush();
    }
    outcome
}

/// Waits for the child and returns its raw wait status.
fn reap(pid: libc::pid_t) -> libc::c_int {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return status;
        }
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return status;
        }
    }
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let name = match signal {
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGKILL => " (SIGKILL)",
            _ => "",
        };
        format!("the child process was killed by signal {signal}{name}")
    } else if libc::WIFEXITED(status) {
        let why = match libc::WEXITSTATUS(status) {
            EXIT_CRASH_UNPUBLISHED => ": it crashed outside a run",
            EXIT_HANDLER_PANICKED => ": the crash handler panicked while reporting a crash",
            EXIT_RUN_PANICKED => ": the run panicked outside the subject",
            EXIT_SERVER_REFUSED => ": it could not serve a request",
            _ => "",
        };
        format!(
            "the child process exited with status {}{why}",
            libc::WEXITSTATUS(status)
        )
    } else {
        format!("the child process ended with wait status {status:#x}")
    }
}

/// The outcome of a child the watchdog ended: real code ran past `host_run_seconds_max`.
fn timed_out<S: Subject>(scenario: &Scenario<S::Op>, options: &RunOptions) -> Outcome {
    let seconds = scenario.limits.host_run_seconds_max;
    let finding = Finding::budget("host_run_seconds_max", seconds, "runner")
        .note("likely cause: real code looping forever, or blocked on a lock that was held when the child was forked (the simulation itself is bounded by `steps_max`)")
        .note("the watchdog ended the run's process from outside the run, and the process reported nothing: which lifecycle, repetition and op it was in is not known");
    outcome_without_report::<S>(scenario, options, finding)
}

/// The outcome of an isolated run whose child reported nothing: one `panic` finding saying why.
fn unreported<S: Subject>(
    scenario: &Scenario<S::Op>,
    options: &RunOptions,
    why: String,
) -> Outcome {
    let finding = Finding::new(
        FindingKind::Panic,
        "isolated run",
        "runner",
        format!("the isolated run ended without an outcome: {why}"),
    )
    .note("a host-backed subject runs in a child process; this is how that process ended")
    .note("a crash inside the crash handler, an abort, or a failed fork/pipe ends up here");
    outcome_without_report::<S>(scenario, options, finding)
}

/// The outcome of a child that reported nothing, for `timed_out` and `unreported`: `finding` is
/// its one finding, and nothing the child ran is known (no trace, steps or ops).
fn outcome_without_report<S: Subject>(
    scenario: &Scenario<S::Op>,
    options: &RunOptions,
    finding: Finding,
) -> Outcome {
    Outcome {
        header: header::<S>(scenario, options),
        findings: vec![finding],
        trace_hash: 0,
        trace_events: 0,
        steps: 0,
        ops: 0,
        schedule: Vec::new(),
        decisions: 0,
        lifecycle_names: scenario.lifecycles.iter().map(|l| l.name.clone()).collect(),
        lifecycle_repeats: scenario.lifecycles.iter().map(|l| l.repeat).collect(),
        growth_progress: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::{Os, Tid};
    use crate::scenario::parse;
    use crate::subject::{Config, OpDoc, Step, SubjectInfo};
    use serde::{Deserialize, Serialize};

    /// A host-backed subject whose ops end the child process in the ways real code can.
    struct Crasher;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, arbitrary::Arbitrary)]
    #[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
    enum CrashOp {
        Fine,
        Kill,
        WildRead,
        /// Real code that never returns.
        Spin,
    }

    impl Subject for Crasher {
        type Op = CrashOp;

        fn info() -> SubjectInfo {
            SubjectInfo {
                name: "crasher",
                summary: "ends its process on request",
                ops: vec![OpDoc {
                    name: "fine",
                    summary: "nothing",
                }],
                defects: vec![],
                caches: vec![],
                params: vec![],
                host_backed: true,
            }
        }

        fn new(os: &mut Os, _config: &Config) -> Self {
            os.enable_host_arena(1 << 20).unwrap();
            Crasher
        }

        fn op_name(op: &CrashOp) -> &'static str {
            match op {
                CrashOp::Fine => "fine",
                CrashOp::Kill => "kill",
                CrashOp::WildRead => "wild-read",
                CrashOp::Spin => "spin",
            }
        }

        fn apply(&mut self, os: &mut Os, _tid: Tid, op: &CrashOp) -> Step<Self> {
            match op {
                CrashOp::Fine => {}
                CrashOp::Kill => {
                    // SIGKILL rather than abort: the same "died without reporting", no core file.
                    // SAFETY: raising a signal in our own process has no memory effects.
                    unsafe { libc::raise(libc::SIGKILL) };
                }
                CrashOp::WildRead => {
                    os.set_host_code(Some("crasher_wild_read"));
                    // SAFETY: not safe at all, on purpose: the first pages of the address space
                    // are never mapped on Linux, so this read faults in the isolated child.
                    unsafe { std::ptr::read_volatile(0x1000 as *const u8) };
                }
                CrashOp::Spin => loop {
                    std::hint::spin_loop();
                },
            }
            Step::Done
        }
    }

    fn run_ops(ops: &str) -> Outcome {
        let scenario = crasher_scenario(ops);
        super::super::run::<Crasher>(&scenario, RunOptions::default())
    }

    fn crasher_scenario(ops: &str) -> Scenario<CrashOp> {
        let text = format!(
            "name = \"crash\"\nsubject = \"crasher\"\n[[lifecycle]]\nname = \"l\"\nops = [{ops}]\n"
        );
        parse::parse::<Crasher>("crash.toml", &text).unwrap()
    }

    #[test]
    fn real_code_that_never_returns_is_stopped_by_the_watchdog_as_a_budget_finding() {
        let text = "name = \"spin\"\nsubject = \"crasher\"\n[limits]\nhost_run_seconds_max = 1\n[[lifecycle]]\nname = \"l\"\nops = [{ op = \"fine\" }, { op = \"spin\" }]\n";
        let scenario = parse::parse::<Crasher>("spin.toml", text).unwrap();
        let outcome = super::super::run::<Crasher>(&scenario, RunOptions::default());
        assert_eq!(
            outcome.signatures(),
            vec!["budget:host_run_seconds_max:runner"]
        );
        // Under the limit, the same child runs to its end.
        assert!(run_ops("{ op = \"fine\" }").passed());
    }

    /// The watchdog ends a process that reports nothing, so its budget finding has no position:
    /// the report says so, where it named the first lifecycle's first repetition ("repetition 1
    /// of 5") and JSON gave `lifecycle_index` 0 and `repetition` 0.
    #[test]
    fn the_watchdogs_budget_claims_no_position_in_the_run() {
        let text = "name = \"spin\"\nsubject = \"crasher\"\n[[lifecycle]]\nname = \"first\"\nrepeat = 5\nops = [{ op = \"fine\" }]\n[[lifecycle]]\nname = \"second\"\nrepeat = 3\nops = [{ op = \"spin\" }]\n";
        let scenario = parse::parse::<Crasher>("spin.toml", text).unwrap();
        // The wait status of a process that SIGALRM's default action ended.
        let outcome = lost_run::<Crasher>(&scenario, &RunOptions::default(), libc::SIGALRM);
        let finding = &outcome.findings[0];
        assert_eq!(finding.signature(), "budget:host_run_seconds_max:runner");
        let report = crate::report::render_finding_body(finding, &outcome);
        let headline = report.lines().next().unwrap();
        assert_eq!(
            headline,
            "error[budget]: limit `host_run_seconds_max` = 300 exhausted (at a point in the run that is not known)"
        );
        assert!(!report.contains("repetition 1 of"), "{report}");
        let json = crate::report::finding_json(finding, &outcome);
        assert_eq!(json["position_known"], false, "{json}");
        // The keys keep their types (DESIGN.md's `lifecycle` is a string); none names a place.
        assert_eq!(json["lifecycle"], "", "{json}");
        assert_eq!(
            (
                json["lifecycle_index"].as_u64(),
                json["repetition"].as_u64()
            ),
            (Some(0), Some(0))
        );
        // A finding the runner placed keeps its position, and JSON says nothing of it.
        let placed = finding.clone().at(1, 2);
        let json = crate::report::finding_json(&placed, &outcome);
        assert_eq!(
            (json["lifecycle"].as_str(), json["repetition"].as_u64()),
            (Some("second"), Some(2))
        );
        assert!(json.get("position_known").is_none(), "{json}");
        assert!(
            crate::report::render_finding_body(&placed, &outcome)
                .contains("(in lifecycle `second`, repetition 3 of 3)")
        );
    }

    /// Three scenarios: one that passes, one whose real code crashes, one whose process is killed.
    fn clean_crashing_killed() -> [Scenario<CrashOp>; 3] {
        [
            crasher_scenario("{ op = \"fine\" }"),
            crasher_scenario("{ op = \"fine\" }, { op = \"wild-read\" }"),
            crasher_scenario("{ op = \"kill\" }"),
        ]
    }

    /// A fork server over `scenarios` whose outcomes carry, in `header.faults`, the pid of the
    /// process that ran them.
    fn crasher_server(scenarios: &[Scenario<CrashOp>]) -> ForkServer<(usize, u64)> {
        let options = |seed: u64| RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        ForkServer::start(
            |&(index, seed): &(usize, u64)| {
                let mut outcome = run_here::<Crasher>(&scenarios[index], options(seed));
                outcome.header.faults = std::process::id().to_string().into();
                outcome
            },
            |&(index, seed): &(usize, u64), status| {
                lost_run::<Crasher>(&scenarios[index], &options(seed), status)
            },
        )
        .unwrap()
    }

    #[test]
    fn a_fork_server_answers_every_request_and_outlives_the_crashes_of_its_runs() {
        let scenarios = clean_crashing_killed();
        let mut server = crasher_server(&scenarios);
        let direct = |index: usize, seed: u64| {
            let options = RunOptions {
                seed: Some(seed),
                ..RunOptions::default()
            };
            run::<Crasher>(&scenarios[index], options)
        };
        for request in [(0, 7), (1, 7), (2, 7), (0, 8), (1, 9)] {
            let served = server.ask(&request).expect("the server is alive");
            let direct = direct(request.0, request.1);
            assert_eq!(served.signatures(), direct.signatures(), "{request:?}");
            assert_eq!(served.trace_hash, direct.trace_hash, "{request:?}");
            assert_eq!(served.header.seed, request.1);
            if let Some(panic) = served
                .findings
                .iter()
                .find(|f| f.kind == FindingKind::Panic)
            {
                assert_eq!(
                    panic.headline, direct.findings[0].headline,
                    "a runner that dies is described as an isolated child that dies"
                );
            }
        }
        assert_eq!(
            server.ask(&(1, 7)).unwrap().signatures(),
            vec!["fault:host memory:crasher_wild_read"]
        );
        let pid = server.server.as_ref().expect("alive").child.0;
        drop(server);
        // SAFETY: probing with signal 0 sends nothing.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "dropping the server ends and reaps it");
    }

    #[test]
    fn a_fork_servers_runner_runs_request_after_request_until_one_crashes() {
        let scenarios = clean_crashing_killed();
        let mut server = crasher_server(&scenarios);
        let mut ran_in = |request: (usize, u64)| {
            let outcome = server.ask(&request).expect("the server is alive");
            (outcome.header.faults.clone(), outcome)
        };
        let (first, _) = ran_in((0, 1));
        let (second, _) = ran_in((0, 2));
        assert_eq!(
            first, second,
            "clean runs share one runner: no fork per run"
        );
        assert_ne!(
            first,
            std::process::id().to_string(),
            "and it is not this process"
        );
        // The crash handler writes this outcome, not the closure: it carries no pid.
        let (_, crash) = ran_in((1, 3));
        assert_eq!(
            crash.signatures(),
            vec!["fault:host memory:crasher_wild_read"]
        );
        let (after_crash, _) = ran_in((0, 4));
        assert_ne!(
            after_crash, first,
            "a crash ends the runner; the next run gets a new one"
        );
        // A killed runner reports nothing; the server describes it.
        let (_, killed) = ran_in((2, 5));
        assert_eq!(killed.signatures(), vec!["panic:isolated run:runner"]);
        let (after_kill, clean) = ran_in((0, 6));
        assert!(clean.passed());
        assert_ne!(after_kill, after_crash);
    }

    /// The voluntary context switches of `pid` so far: each time it slept, as for a read.
    fn sleeps_of(pid: libc::pid_t) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .expect("a voluntary_ctxt_switches line")
            .trim()
            .parse()
            .unwrap()
    }

    /// `sleeps_of(pid)` once `pid` is asleep and stays so: after handing a runner over, the
    /// server goes back to sleep in its own time, which on a loaded machine can be after the
    /// caller has its answer, and that sleep would be counted as a wake-up of the runs after.
    fn settled_sleeps_of(pid: libc::pid_t) -> u64 {
        let asleep = || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.rsplit(") ").next().is_some_and(|s| s.starts_with('S'))
        };
        for _ in 0..1_000 {
            let sleeps = sleeps_of(pid);
            std::thread::sleep(std::time::Duration::from_millis(5));
            if asleep() && sleeps_of(pid) == sleeps {
                return sleeps;
            }
        }
        panic!("process {pid} never settled asleep");
    }

    /// Descriptors that arrive, but not as the two a runner's channel is, are refused and
    /// closed: one kept open would be the runner's request socket, and the runner would wait on
    /// it for ever. Here one descriptor arrives (the write end of a pipe): after the refusal, the
    /// pipe's reader sees its end, so no copy of the write end is left.
    #[test]
    fn descriptors_that_arrive_short_of_a_runners_two_are_closed_on_refusal() {
        let (sender, receiver) = socket_pair().unwrap();
        let mut pipe = [-1; 2];
        // SAFETY: `pipe` has room for the two descriptors pipe2 writes.
        assert_eq!(
            unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
            0
        );
        let [read_end, write_end] = pipe;
        send_fds(sender, &[write_end]).unwrap();
        // SAFETY: this test's own descriptors, closed once.
        unsafe { libc::close(write_end) };
        let refusal = receive_fds(receiver).expect_err("one descriptor is refused");
        assert!(refusal.to_string().contains("two descriptors"), "{refusal}");
        let mut byte = [0u8; 1];
        // SAFETY: reads into a live one-byte buffer.
        let read = unsafe { libc::read(read_end, byte.as_mut_ptr().cast(), 1) };
        // 0 is the end of the pipe; -1 (EAGAIN) would mean a write end still open somewhere.
        assert_eq!(read, 0, "{}", std::io::Error::last_os_error());
        // The server gone is told apart from a malformed message.
        // SAFETY: as above.
        unsafe { libc::close(sender) };
        let gone = receive_fds(receiver).expect_err("a closed socket is refused");
        assert!(gone.to_string().contains("gone"), "{gone}");
        // SAFETY: as above.
        unsafe {
            libc::close(receiver);
            libc::close(read_end);
        }
    }

    /// Runs go from the worker to the runner and back, not through the server: the server sleeps
    /// through clean runs (each wake-up it took per run was one more process switch, which on a
    /// small VM can cost a halted vCPU's wake-up).
    #[test]
    fn a_fork_servers_runner_answers_its_caller_directly_while_the_server_sleeps() {
        let scenarios = clean_crashing_killed();
        let mut server = crasher_server(&scenarios);
        let first = server.ask(&(0, 1)).expect("the server is alive");
        let server_pid = server.server.as_ref().expect("alive").child.0;
        let before = settled_sleeps_of(server_pid);
        for seed in 2..12 {
            let outcome = server.ask(&(0, seed)).expect("the server is alive");
            assert_eq!(outcome.header.faults, first.header.faults, "one runner");
        }
        assert_eq!(
            sleeps_of(server_pid),
            before,
            "the server took no part in the runs"
        );
        // A crash still gets a new runner from the server.
        assert!(!server.ask(&(1, 12)).unwrap().passed());
        let after = server.ask(&(0, 13)).unwrap();
        assert_ne!(after.header.faults, first.header.faults);
        assert!(sleeps_of(server_pid) > before);
    }

    /// Kills `pid` and waits until it is dead (a zombie its parent has not reaped yet, or gone).
    fn kill_and_wait(pid: libc::pid_t) {
        // SAFETY: sends a signal to a process these tests forked (directly or through a server).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        for _ in 0..10_000 {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return,
                Ok(stat) if stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')) => return,
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
        panic!("process {pid} did not die");
    }

    #[test]
    fn a_runner_that_died_between_requests_is_replaced_and_the_next_request_not_blamed() {
        let scenarios = clean_crashing_killed();
        let mut server = crasher_server(&scenarios);
        let first = server.ask(&(0, 1)).expect("the server is alive");
        let runner: libc::pid_t = first.header.faults.parse().unwrap();
        kill_and_wait(runner);
        let next = server.ask(&(0, 2)).expect("the server is alive");
        assert!(next.passed(), "{:?}", next.findings);
        assert_ne!(
            next.header.faults, first.header.faults,
            "a new runner ran it"
        );
    }

    #[test]
    fn a_fork_server_that_is_gone_is_a_refusal_not_a_sigpipe_for_the_caller() {
        // `sim` leaves SIGPIPE at its default action (the test harness ignores it), so the
        // check runs in a child process that restores it.
        // SAFETY: the child only runs the block below, which ends in `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: this single-threaded child restores one signal's default action.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            let scenarios = clean_crashing_killed();
            let mut server = crasher_server(&scenarios);
            kill_and_wait(server.server.as_ref().expect("alive").child.0);
            let refused = server.ask(&(0, 1)).is_none() && server.ask(&(0, 2)).is_none();
            // SAFETY: ends the child without running the harness's atexit handlers.
            unsafe { libc::_exit(if refused { 0 } else { 1 }) }
        }
        let status = reap(pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the caller must see the server gone, not die of it: {}",
            describe_status(status)
        );
    }

    #[test]
    fn a_clean_isolated_run_returns_the_childs_outcome() {
        let outcome = run_ops("{ op = \"fine\" }, { op = \"fine\" }");
        assert!(outcome.passed(), "{:?}", outcome.findings);
        assert_eq!(outcome.ops, 2);
        assert_ne!(
            outcome.trace_hash, 0,
            "the child's trace, not a placeholder"
        );
        assert!(
            PUBLISHED.load(Ordering::SeqCst).is_null(),
            "the parent publishes nothing"
        );
    }

    #[test]
    fn a_wild_pointer_outside_the_arena_is_a_fault_naming_the_running_code() {
        let outcome = run_ops("{ op = \"fine\" }, { op = \"wild-read\" }, { op = \"fine\" }");
        assert_eq!(
            outcome.signatures(),
            vec!["fault:host memory:crasher_wild_read"]
        );
        let fault = &outcome.findings[0];
        assert!(
            fault.headline.contains("outside the host arena"),
            "{}",
            fault.headline
        );
        assert_eq!(outcome.ops, 2, "the run ended at the crash");
    }

    #[test]
    fn a_child_that_dies_without_reporting_is_a_panic_finding_naming_the_signal() {
        let outcome = run_ops("{ op = \"kill\" }");
        assert_eq!(outcome.signatures(), vec!["panic:isolated run:runner"]);
        assert!(
            outcome.findings[0].headline.contains("SIGKILL"),
            "{}",
            outcome.findings[0].headline
        );
        assert_eq!(
            outcome.header.subject, "crasher",
            "the parent still says what ran"
        );
    }
}
