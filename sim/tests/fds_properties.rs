//! Property tests of the fd family (issue 3): random programs of pipe and eventfd operations
//! across threads conserve bytes, and never deadlock while a writer remains able to run.
//!
//! The program: a writer thread and two reader threads share one pipe and one eventfd. bolero
//! picks each thread's ops, the interleaving, and whether the eventfd blocks. A call that blocks
//! parks its thread (the OS put it on the waiter list) and the thread retries when woken, as the
//! runner does. When the writer has run its ops it closes its end of the pipe; readers then drain
//! it and see EOF. An eventfd has no end-of-file, so while a reader may still wait on a blocking
//! one, the writer stays to ring it (adds 1) each time it runs. The properties:
//! - after every step, bytes written minus bytes read equals bytes buffered (`check_fd_conservation`);
//! - whenever nothing can run, the writer has finished (no deadlock while a writer could still run);
//! - after the writer closes, every reader finishes: no one is left blocked, no waiter remains;
//! - the eventfd conserves its counter: the values written add up to the values read plus what
//!   the counter still holds.

use arbitrary::Arbitrary;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sim::os::{BlockReason, Fd, Io, Os, ThreadState, Tid};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum WriterOp {
    Pipe { len: u16 },
    Event { value: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ReaderOp {
    Pipe { len: u16 },
    Event,
}

#[derive(Arbitrary, Debug)]
struct Program {
    writer: Vec<WriterOp>,
    readers: [Vec<ReaderOp>; 2],
    /// Whether a reader's eventfd read blocks at 0 (else it fails with EAGAIN).
    blocking_event: bool,
    /// Which runnable thread goes next, consumed in order (then round-robin).
    schedule: Vec<u8>,
}

struct Ends {
    pipe_read: Fd,
    pipe_write: Fd,
    event: Fd,
    blocking_event: bool,
}

/// Runs one op for a thread; `Some(reason)` means it blocked.
fn write_op(
    os: &mut Os,
    tid: Tid,
    ends: &Ends,
    op: WriterOp,
    written: &mut u64,
    event_added: &mut u64,
) -> Option<BlockReason> {
    match op {
        WriterOp::Pipe { len } => {
            let bytes = vec![7u8; usize::from(len % 5000) + 1];
            match os.fd_write(tid, ends.pipe_write, &bytes, "writer") {
                Io::Ready(Ok(n)) => {
                    *written += n as u64;
                    None
                }
                Io::Ready(Err(errno)) => panic!("writer: unexpected {errno}"),
                Io::Block(reason) => Some(reason),
            }
        }
        WriterOp::Event { value } => {
            match os.fd_write(tid, ends.event, &u64::from(value).to_le_bytes(), "writer") {
                Io::Ready(Ok(8)) => {
                    *event_added += u64::from(value);
                    None
                }
                Io::Ready(Err(sim::os::Errno::Eagain)) => None,
                Io::Ready(other) => panic!("writer: eventfd write gave {other:?}"),
                Io::Block(reason) => Some(reason),
            }
        }
    }
}

enum ReadResult {
    Bytes,
    EndOfFile,
    Blocked(BlockReason),
}

fn read_op(
    os: &mut Os,
    tid: Tid,
    ends: &Ends,
    op: ReaderOp,
    read: &mut u64,
    event_taken: &mut u64,
) -> ReadResult {
    match op {
        ReaderOp::Pipe { len } => {
            let mut buf = vec![0u8; usize::from(len % 5000) + 1];
            match os.fd_read(tid, ends.pipe_read, &mut buf, "reader") {
                Io::Ready(Ok(0)) => ReadResult::EndOfFile,
                Io::Ready(Ok(n)) => {
                    *read += n as u64;
                    ReadResult::Bytes
                }
                Io::Ready(Err(errno)) => panic!("reader: unexpected {errno}"),
                Io::Block(reason) => ReadResult::Blocked(reason),
            }
        }
        ReaderOp::Event => {
            let mut buf = [0u8; 8];
            match os.fd_read(tid, ends.event, &mut buf, "reader") {
                Io::Block(reason) => {
                    assert!(
                        ends.blocking_event,
                        "a non-blocking eventfd read blocked: {reason:?}"
                    );
                    EVENT_BLOCKS.fetch_add(1, Ordering::Relaxed);
                    ReadResult::Blocked(reason)
                }
                Io::Ready(Ok(8)) => {
                    let value = u64::from_le_bytes(buf);
                    assert_ne!(value, 0, "a read that succeeds takes a counter above 0");
                    *event_taken += value;
                    ReadResult::Bytes
                }
                Io::Ready(Err(sim::os::Errno::Eagain)) if !ends.blocking_event => ReadResult::Bytes,
                Io::Ready(other) => panic!("reader: eventfd read gave {other:?}"),
            }
        }
    }
}

static PROGRAMS_RUN: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);
static EVENT_BLOCKS: AtomicUsize = AtomicUsize::new(0);
static BYTES_MOVED: AtomicU64 = AtomicU64::new(0);
static EVENT_UNITS: AtomicU64 = AtomicU64::new(0);

#[test]
fn pipe_and_eventfd_programs_conserve_bytes_and_never_deadlock_while_a_writer_can_run() {
    bolero::check!()
        .with_iterations(300)
        .with_max_len(512)
        .for_each(|bytes: &[u8]| {
            let Ok(program) = Program::arbitrary(&mut arbitrary::Unstructured::new(bytes)) else {
                return;
            };
            let mut os = Os::for_tests(1);
            let writer = os.spawn_thread("writer", "test").unwrap();
            let readers = [
                os.spawn_thread("reader-0", "test").unwrap(),
                os.spawn_thread("reader-1", "test").unwrap(),
            ];
            let (pipe_read, pipe_write) = os.pipe("test").unwrap();
            let event = os.eventfd(0, "test").unwrap();
            os.set_nonblocking(event, !program.blocking_event, "test")
                .unwrap();
            let ends = Ends {
                pipe_read,
                pipe_write,
                event,
                blocking_event: program.blocking_event,
            };
            let writer_ops: Vec<WriterOp> = program.writer.iter().copied().take(40).collect();
            let reader_ops: Vec<Vec<ReaderOp>> = program
                .readers
                .iter()
                .map(|ops| ops.iter().copied().take(40).collect())
                .collect();
            let (mut written, mut read) = (0u64, 0u64);
            let (mut event_added, mut event_taken) = (0u64, 0u64);
            let tids = [writer, readers[0], readers[1]];
            // Per thread: the next op, and whether it is done (writer closed, reader saw end-of-file).
            let mut next = [0usize; 3];
            let mut done = [false; 3];
            let mut pipe_closed = false;
            let mut choices = program.schedule.iter().copied();
            for step in 0..100_000 {
                let runnable: Vec<usize> = (0..3)
                    .filter(|&i| {
                        !done[i] && os.thread_state(tids[i]) == Some(&ThreadState::Runnable)
                    })
                    .collect();
                if runnable.is_empty() {
                    assert!(
                        done[0],
                        "deadlock while the writer could still run: {:?}",
                        os.blocked_threads()
                    );
                    break;
                }
                let choice = choices.next().map_or(step, usize::from);
                let pick = runnable[choice % runnable.len()];
                let tid = tids[pick];
                let blocked = if pick == 0 {
                    match writer_ops.get(next[0]).copied() {
                        Some(op) => {
                            let blocked =
                                write_op(&mut os, tid, &ends, op, &mut written, &mut event_added);
                            if blocked.is_none() {
                                next[0] += 1;
                            }
                            blocked
                        }
                        None if !pipe_closed => {
                            // The writer's ops are done: closing its end wakes every reader
                            // blocked on the pipe.
                            os.close(ends.pipe_write, "writer").unwrap();
                            pipe_closed = true;
                            done[0] = !ends.blocking_event;
                            None
                        }
                        None => {
                            // A reader may still wait on the blocking eventfd: ring it once,
                            // until every reader is done.
                            done[0] = done[1] && done[2];
                            if !done[0] {
                                let blocked = write_op(
                                    &mut os,
                                    tid,
                                    &ends,
                                    WriterOp::Event { value: 1 },
                                    &mut written,
                                    &mut event_added,
                                );
                                assert!(blocked.is_none(), "a ring of 1 blocked: {blocked:?}");
                            }
                            None
                        }
                    }
                } else {
                    // After its own ops, a reader drains the pipe until end-of-file.
                    let op = reader_ops[pick - 1]
                        .get(next[pick])
                        .copied()
                        .unwrap_or(ReaderOp::Pipe { len: 4096 });
                    match read_op(&mut os, tid, &ends, op, &mut read, &mut event_taken) {
                        ReadResult::Bytes => {
                            next[pick] += 1;
                            None
                        }
                        ReadResult::EndOfFile => {
                            next[pick] += 1;
                            done[pick] = next[pick] >= reader_ops[pick - 1].len();
                            None
                        }
                        ReadResult::Blocked(reason) => Some(reason),
                    }
                };
                if let Some(reason) = blocked {
                    BLOCKS.fetch_add(1, Ordering::Relaxed);
                    os.block(tid, reason, "test");
                }
                assert!(
                    os.check_fd_conservation(),
                    "bytes are conserved: {:?}",
                    os.findings()
                );
            }
            assert!(
                done.iter().all(|d| *d),
                "every thread ran to its end within the step bound"
            );
            assert!(
                os.blocked_threads().is_empty(),
                "nobody stays blocked after the writer closes"
            );
            assert_eq!(
                os.waiters_total(),
                0,
                "no waiter list names a thread any more"
            );
            assert_eq!(read, written, "every byte written was read exactly once");
            os.set_nonblocking(ends.event, true, "drain").unwrap();
            let mut counter = [0u8; 8];
            let left = match os.fd_read(writer, ends.event, &mut counter, "drain") {
                Io::Ready(Ok(8)) => u64::from_le_bytes(counter),
                Io::Ready(Err(sim::os::Errno::Eagain)) => 0,
                other => panic!("draining the eventfd gave {other:?}"),
            };
            assert_eq!(
                event_added,
                event_taken + left,
                "the eventfd counter is conserved"
            );
            EVENT_UNITS.fetch_add(event_taken, Ordering::Relaxed);
            assert!(os.findings().is_empty(), "{:?}", os.findings());
            PROGRAMS_RUN.fetch_add(1, Ordering::Relaxed);
            BYTES_MOVED.fetch_add(read, Ordering::Relaxed);
        });
    let programs = PROGRAMS_RUN.load(Ordering::Relaxed);
    assert!(
        programs >= 100,
        "the property ran on real programs ({programs})"
    );
    assert!(
        BLOCKS.load(Ordering::Relaxed) > 0,
        "some programs blocked and were woken"
    );
    assert!(
        BYTES_MOVED.load(Ordering::Relaxed) > 0,
        "some programs moved bytes"
    );
    assert!(
        EVENT_UNITS.load(Ordering::Relaxed) > 0,
        "some programs passed counts through the eventfd"
    );
    assert!(
        EVENT_BLOCKS.load(Ordering::Relaxed) > 0,
        "some readers blocked on the eventfd at 0 and were woken by a write"
    );
}
