//! The Windows communicate engine: overlapped I/O where the handle allows
//! it, a helper thread where it does not, and one event to wait for both.
//!
//! - An overlapped end (std's `ChildStdin`/`ChildStdout`/`ChildStderr`, ends
//!   made overlapped with `PipeOptions`) gets one `ReadFile` or `WriteFile`
//!   at a time with an `OVERLAPPED` of its own, boxed so that it stays in
//!   place. A read goes straight into the sink: a `Vec`'s spare capacity, or
//!   the output's scratch buffer. A write goes straight from the source, at
//!   most the pipe's capacity at once (64 KiB, std's quota, when it cannot be
//!   asked). A write that fits in the pipe's free space completes at once,
//!   so cancelling it moves nothing. One that has to wait for room (a larger
//!   write, or one into a pipe that still holds data) can be read in part
//!   before it is cancelled; the count of a cancelled write then has to
//!   include those bytes, which wine's does not (it reports 0, and resuming
//!   would send them again). The cap keeps that to writes into a pipe that
//!   is not empty. When other writers share the pipe, a write can wait
//!   behind theirs even so, and a reader can take part of it before it is
//!   cancelled: resuming after the deadline then sends those bytes again.
//!   Delivery across a resume is at-least-once, not exact, in that case.
//! - A synchronous end (`pipe()`, `CreatePipe`) blocks in `ReadFile` and
//!   `WriteFile`, so it gets a helper thread for the duration of the call,
//!   started at its first operation. The helper does one call at a time on a
//!   64 KiB buffer of its own (bytes are copied between it and the
//!   bookkeeping) and hands the result back. Writes are capped as above.
//!   Helpers are plain threads, joined when their end is dropped, rather
//!   than scoped ones: `CancelSynchronousIo` needs the thread's handle, which
//!   `JoinHandle` gives and `ScopedJoinHandle` does not.
//!
//! Every overlapped operation names the same manual-reset event (with the
//! low bit set, so that no completion port the handle may be bound to gets
//! a packet), and every helper sets it when it finishes an operation. The
//! loop resets the event, then reaps every finished operation (an
//! overlapped one is finished when its `Internal` is no longer
//! `STATUS_PENDING`) and starts the next ones, then waits for the event: a
//! completion after the reset is never missed, and the number of pipes is
//! not limited by `MAXIMUM_WAIT_OBJECTS`. Starting an overlapped operation
//! resets the event itself, which could swallow the signal of one that
//! finished after the scan; so a round that started one scans again before
//! it waits.
//!
//! At the deadline, on an error, and on a panic unwinding through `drive`,
//! every operation is stopped before `drive` returns: an overlapped one
//! with `CancelIoEx` and a wait for its completion (the process aborts
//! rather than return while the kernel may still write a buffer), a
//! helper's with `CancelSynchronousIo`, repeated until the helper reports
//! back (it may not have entered its call yet). An operation that completed
//! before it could be cancelled is accounted for as usual, so that the
//! next `drive` resumes exactly. Then the helpers are joined.
//!
//! The engine changes no pipe's mode. `PIPE_WAIT`/`PIPE_NOWAIT` belongs to
//! the file object, which every duplicate of the handle shares (clones, a
//! child's inherited copy), so switching it, even for a moment, would be
//! seen outside; and switching to `PIPE_NOWAIT` fails with
//! `ERROR_PIPE_BUSY` while the pipe holds unread data, so a switch back
//! after an exchange that left bytes unread would fail. pipekit knows no
//! call that gives the engine a file object of its own for the same pipe
//! end: an open relative to a pipe handle with an empty name
//! (`NtOpenFile`/`NtCreateFile`) is how a pipe's *client* end is opened
//! (`nt.rs` makes every NT pipe's writer that way), so it yields a new
//! client of the pipe, which a one-instance pipe refuses, never a second
//! file object for an existing end; duplicates share the file object by
//! definition. So an end the caller made
//! nonblocking is served in its own mode, which never waits: a read finds
//! it empty (`ERROR_NO_DATA`), or a write finds too little room (0 bytes
//! written, all or nothing). A write that does not fit is tried again at
//! once with half as many bytes, down to one, so that whatever room there
//! is gets used; an end that found nothing to do, which signals nothing
//! when it can do something, is tried again after 1 ms, doubling up to
//! 16 ms while it stays idle (so such an end can be up to 16 ms late to
//! notice data or room, and costs one call per try).
//!
//! Shared pipes: two clones of one reader given as two outputs (or of one
//! writer as two inputs) are served as two ends; each byte lands in one of
//! the sinks. On a synchronous end the second call waits for the first on
//! the file object's lock, and the cancellation at the deadline reaches it
//! once the first has been cancelled. The engine never asks the size of a
//! synchronous end it did not create (that query would wait behind another
//! thread's blocking call on the end): its writes into such an end are
//! capped at 4 KiB, `CreatePipe`'s default quota. What is not bounded by
//! the deadline: the wait for a helper to report back after
//! `CancelSynchronousIo`, when the helper itself waits behind another
//! thread's blocking call on the same synchronous end (a thread outside the
//! exchange reading or writing a clone); the engine cannot return before
//! its helper is out of its call, because the call writes into the helper's
//! buffer and the byte count must be kept.

use std::io;
use std::mem;
use std::os::windows::io::{AsHandle, AsRawHandle, OwnedHandle};
use std::process::{Child, ExitStatus};
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_IO_PENDING, ERROR_OPERATION_ABORTED, HANDLE, WAIT_FAILED,
};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::System::Threading::{ResetEvent, SetEvent, WaitForSingleObject, INFINITE};
use windows_sys::Win32::System::IO::{
    CancelIoEx, CancelSynchronousIo, GetOverlappedResult, OVERLAPPED,
};

use super::{
    abort_in_flight, cvt, is_error, new_event, pending, read_result, start, wait_millis,
    write_result, Mode, Pipe, Transfer,
};
use crate::communicate::{deadline_passed, DeadlinePassed, Input, OutputPipe, Target};

/// A helper's buffer, and so the most one of its calls moves; also the cap
/// of an overlapped write when the pipe's capacity cannot be asked (std's
/// child pipes, whose `ChildStdin` lacks the right to ask, have this quota).
const CHUNK: usize = 64 * 1024;

/// The cap of each write into a synchronous end whose size pipekit does not
/// know: `CreatePipe`'s default quota, the smallest a pipe commonly has, so
/// that a write usually fits and a cancelled one has moved nothing.
const UNKNOWN_SYNCHRONOUS_CAP: usize = 4096;

/// How long to wait for a helper to report back after `CancelSynchronousIo`
/// before cancelling again: the helper may have been between taking its
/// request and entering the call, where there is nothing to cancel yet.
const CANCEL_RETRY: Duration = Duration::from_millis(1);

/// How long an end in `PIPE_NOWAIT` mode that found nothing to do waits
/// before it is tried again: the first time, and at most.
const MIN_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(16);

/// The stack a helper thread reserves. It only locks, calls and signals,
/// but security products hook `ReadFile`/`WriteFile` and run their hooks on
/// the caller's stack; 256 KiB is room for them.
const HELPER_STACK: usize = 256 * 1024;

pub(crate) fn drive(
    inputs: &mut [Input<'_>],
    outputs: &mut [OutputPipe<'_>],
    deadline: Option<Instant>,
) -> io::Result<()> {
    if inputs.iter().all(|input| input.pipe().is_none())
        && outputs.iter().all(|output| output.pipe().is_none())
    {
        return Ok(());
    }
    let mut engine = Engine::new(inputs, outputs)?;
    let result = engine.prepare().and_then(|()| engine.run(deadline));
    let stopped = engine.stop();
    match (result, stopped) {
        // An error of a pipe or a sink ends the exchange, whatever happened
        // while stopping.
        (Err(err), _) if DeadlinePassed::from_error(&err).is_none() => Err(err),
        // A read or write that completed as the exchange stopped failed, or
        // its sink did: that ends the exchange, even at the deadline, which
        // would otherwise leave it resumable without those bytes.
        (_, Err(err)) => Err(err),
        // The deadline, counting the pipes still open after the operations
        // that completed as it stopped (end of file closes one).
        (Err(_), Ok(())) => Err(deadline_passed(engine.open())),
        (Ok(()), Ok(())) => Ok(()),
    }
    // Dropping the engine joins the helpers.
}

/// The exchange: the bookkeeping, and the state of each open end (`None`
/// once its pipe is closed).
struct Engine<'e, 'i, 'o> {
    inputs: &'e mut [Input<'i>],
    outputs: &'e mut [OutputPipe<'o>],
    ins: Vec<Option<End>>,
    outs: Vec<Option<End>>,
    /// Signalled by every completion; declared last, so that it outlives
    /// the ends (and their helpers).
    event: OwnedHandle,
}

impl<'e, 'i, 'o> Engine<'e, 'i, 'o> {
    fn new(
        inputs: &'e mut [Input<'i>],
        outputs: &'e mut [OutputPipe<'o>],
    ) -> io::Result<Engine<'e, 'i, 'o>> {
        Ok(Engine {
            ins: Vec::with_capacity(inputs.len()),
            outs: Vec::with_capacity(outputs.len()),
            inputs,
            outputs,
            event: new_event()?,
        })
    }

    fn event(&self) -> HANDLE {
        self.event.as_raw_handle() as HANDLE
    }

    /// Sets up an `End` for every open pipe. On failure, the ends set up so
    /// far are in place, for `Drop` to stop.
    fn prepare(&mut self) -> io::Result<()> {
        let event = SharedHandle(self.event());
        for input in self.inputs.iter() {
            let end = input.pipe().map(|pipe| End::new(pipe.inner(), true, event));
            self.ins.push(end.transpose()?);
        }
        for output in self.outputs.iter() {
            let end = output
                .pipe()
                .map(|pipe| End::new(pipe.inner(), false, event));
            self.outs.push(end.transpose()?);
        }
        Ok(())
    }

    fn run(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        loop {
            // SAFETY: the event is open.
            cvt(unsafe { ResetEvent(self.event()) })?;
            self.reap()?;
            let started = self.refill()?;
            let open = self.open();
            if open == 0 {
                return Ok(());
            }
            let left = crate::communicate::time_left(deadline, open)?;
            if started {
                continue;
            }
            // An end in `PIPE_NOWAIT` mode signals nothing when it becomes
            // ready: it is tried again at its retry time.
            let retry = self
                .next_retry()
                .map(|at| at.saturating_duration_since(Instant::now()));
            let timeout = match (left, retry) {
                (Some(left), Some(retry)) => wait_millis(left.min(retry)),
                (None, Some(wait)) | (Some(wait), None) => wait_millis(wait),
                (None, None) => INFINITE,
            };
            // SAFETY: the event is open. A timeout just means another round,
            // where the monotonic clock decides whether the deadline passed.
            cvt(unsafe { WaitForSingleObject(self.event(), timeout) })?;
        }
    }

    /// Accounts for every finished operation. Goes through all of them even
    /// after an error, which it returns (the first).
    fn reap(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for (input, slot) in self.inputs.iter_mut().zip(&mut self.ins) {
            if let Some(done) = slot.as_mut().and_then(End::finished) {
                result = result.and(finish_write(input, slot, done));
            }
        }
        for (output, slot) in self.outputs.iter_mut().zip(&mut self.outs) {
            if let Some(done) = slot.as_mut().and_then(End::finished) {
                result = result.and(finish_read(output, slot, done));
            }
        }
        result
    }

    /// Closes each input with nothing left to write, and starts an
    /// operation on every other idle end. Returns whether an overlapped one
    /// was started (which resets the event).
    fn refill(&mut self) -> io::Result<bool> {
        let mut started = false;
        let now = Instant::now();
        for (input, slot) in self.inputs.iter_mut().zip(&mut self.ins) {
            let Some(end) = slot.as_mut().filter(|end| end.ready(now)) else {
                continue;
            };
            match input.next()? {
                None => {}
                Some((_, [])) => close_input(input, slot, false),
                Some((_, bytes)) => started |= end.start_write(bytes)?,
            }
        }
        for (output, slot) in self.outputs.iter_mut().zip(&mut self.outs) {
            let Some(end) = slot.as_mut().filter(|end| end.ready(now)) else {
                continue;
            };
            if let Some((_, target)) = output.next() {
                started |= end.start_read(target)?;
            }
        }
        Ok(started)
    }

    /// The earliest time at which an end in `PIPE_NOWAIT` mode is to be
    /// tried again.
    fn next_retry(&self) -> Option<Instant> {
        let idle = self
            .ins
            .iter()
            .chain(&self.outs)
            .flatten()
            .filter(|end| !end.busy);
        idle.filter_map(|end| end.retry_at).min()
    }

    /// How many pipes are still open.
    fn open(&self) -> usize {
        let inputs = self.inputs.iter().filter(|input| input.pipe().is_some());
        let outputs = self.outputs.iter().filter(|output| output.pipe().is_some());
        inputs.count() + outputs.count()
    }

    /// Stops every operation and accounts for those that completed first,
    /// returning the first error among them.
    fn stop(&mut self) -> io::Result<()> {
        self.quiesce();
        self.reap()
    }

    /// Stops every operation: cancels them, and waits until each has
    /// finished. Afterwards no call is in progress on any pipe, and the
    /// kernel holds no buffer.
    fn quiesce(&mut self) {
        for end in self.ins.iter_mut().chain(&mut self.outs).flatten() {
            end.cancel();
        }
        loop {
            // SAFETY: the event is open. A failed reset only costs rounds.
            unsafe { ResetEvent(self.event()) };
            if !self
                .ins
                .iter()
                .chain(&self.outs)
                .flatten()
                .any(End::pending)
            {
                return;
            }
            // SAFETY: the event is open; every pending operation sets it when
            // it completes, and cancelled ones complete promptly.
            if unsafe { WaitForSingleObject(self.event(), INFINITE) } == WAIT_FAILED {
                abort_in_flight();
            }
        }
    }
}

impl Drop for Engine<'_, '_, '_> {
    /// Runs on every exit, a panic included: no operation outlives `drive`,
    /// and the helpers are joined (when their `End`s drop).
    fn drop(&mut self) {
        self.quiesce();
        self.ins.clear();
        self.outs.clear();
    }
}

/// Ends an input: everything was written, or (`early`) the reader is gone.
/// Its `End` is dropped (joining its helper) before the pipe is closed.
fn close_input(input: &mut Input<'_>, slot: &mut Option<End>, early: bool) {
    *slot = None;
    drop(input.close(early));
}

/// Accounts for a finished write.
fn finish_write(
    input: &mut Input<'_>,
    slot: &mut Option<End>,
    done: io::Result<usize>,
) -> io::Result<()> {
    let done = match done {
        // `PIPE_NOWAIT` and not all of it fits: try half as much at once,
        // and once not even one byte fits, wait for the reader.
        Ok(0) => {
            if let Some(end) = slot {
                end.no_room();
            }
            return Ok(());
        }
        Ok(n) => {
            if let Some(end) = slot {
                end.progress();
            }
            Ok(n)
        }
        Err(err) => Err(err),
    };
    match write_result(done) {
        Ok(n) => input.advance(n),
        // The reader is gone (ERROR_NO_DATA, or ERROR_BROKEN_PIPE for a
        // write it left pending): stop feeding, keep the exchange going.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => close_input(input, slot, true),
        // Nothing was written: try again (or, when stopping, next time).
        Err(err) if nothing_moved(&err) => {}
        Err(err) => return Err(err),
    }
    Ok(())
}

/// Accounts for a finished read.
fn finish_read(
    output: &mut OutputPipe<'_>,
    slot: &mut Option<End>,
    done: io::Result<usize>,
) -> io::Result<()> {
    match read_result(done) {
        // End of file: the pipe is closed.
        Ok(0) => {
            *slot = None;
            output.commit(0)
        }
        Ok(n) => {
            if let Some(end) = slot {
                end.land(output, n);
                end.progress();
            }
            output.commit(n)
        }
        // `PIPE_NOWAIT` and empty: wait for the writer.
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
            if let Some(end) = slot {
                end.back_off();
            }
            Ok(())
        }
        Err(err) if nothing_moved(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

/// An error after which the operation is simply issued again: it was
/// cancelled (by `stop`, or by someone else), or the pipe is in
/// `PIPE_NOWAIT` mode after all (switched by someone else meanwhile).
fn nothing_moved(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock || is_error(err, ERROR_OPERATION_ABORTED)
}

/// What a finished operation did: the bytes it moved, or its error. A write
/// cancelled part-way may have moved some bytes before it stopped; those
/// were written, and count.
fn outcome(result: io::Result<()>, done: usize) -> io::Result<usize> {
    match result {
        Ok(()) => Ok(done),
        Err(err) if done > 0 && is_error(&err, ERROR_OPERATION_ABORTED) => Ok(done),
        Err(err) => Err(err),
    }
}

/// A raw handle that a helper thread uses: the event, and its pipe.
#[derive(Clone, Copy)]
struct SharedHandle(HANDLE);

// SAFETY: a handle is an index into the process's handle table, valid on any
// thread. The engine keeps each one open while a helper may use it: the
// event until every helper is joined, a pipe while an operation is out on it
// (its `End` is dropped, joining the helper, before the pipe is closed).
unsafe impl Send for SharedHandle {}

/// One open end during the exchange.
struct End {
    /// The pipe's handle. The bookkeeping owns the pipe, and closes it only
    /// after `close_input`/`finish_read` have dropped this `End`.
    handle: HANDLE,
    io: Io,
    /// Whether an operation is out.
    busy: bool,
    /// The most one write moves (inputs only).
    chunk: usize,
    /// The most the next write moves: `chunk`, or less after a
    /// `PIPE_NOWAIT` write found too little room.
    fit: usize,
    /// When an end in `PIPE_NOWAIT` mode that found nothing to do is to be
    /// tried again, and how long it waited last time.
    retry_at: Option<Instant>,
    backoff: Duration,
}

enum Io {
    Overlapped(Overlapped),
    Helper(Helper),
}

impl End {
    /// Sets up `pipe` for the exchange: for an input (`write`), its write
    /// cap, which only a pipe pipekit did not create has to be asked for.
    fn new(pipe: &Pipe, write: bool, event: SharedHandle) -> io::Result<End> {
        let capacity = match (write, pipe.mode, pipe.quota) {
            (false, _, _) => CHUNK,
            (true, _, quota) if quota > 0 => quota,
            // Asking a synchronous end pipekit did not create would wait
            // behind another thread's blocking call on it (the file object
            // lock), before the deadline starts to count: its writes are
            // capped at the smallest quota instead.
            (true, Mode::Synchronous, _) => UNKNOWN_SYNCHRONOUS_CAP,
            (true, Mode::Overlapped, _) => match pipe.write_capacity() {
                Ok(capacity) if capacity > 0 => capacity,
                _ => CHUNK,
            },
        };
        let (io, chunk) = match pipe.mode {
            Mode::Overlapped => (Io::Overlapped(Overlapped::new(event.0)), capacity),
            Mode::Synchronous => {
                let helper = Helper::new(SharedHandle(pipe.raw()), write, event);
                (Io::Helper(helper), capacity.min(CHUNK))
            }
        };
        Ok(End {
            handle: pipe.raw(),
            io,
            busy: false,
            chunk,
            fit: chunk,
            retry_at: None,
            backoff: Duration::ZERO,
        })
    }

    /// Whether an operation can be started: none is out, and the end is not
    /// waiting for its retry time.
    fn ready(&self, now: Instant) -> bool {
        !self.busy && self.retry_at.map_or(true, |at| at <= now)
    }

    /// An operation moved bytes: full-size writes, no waiting.
    fn progress(&mut self) {
        (self.fit, self.retry_at, self.backoff) = (self.chunk, None, Duration::ZERO);
    }

    /// A `PIPE_NOWAIT` write of `fit` bytes found too little room: half as
    /// much next, at once, down to one byte; then wait and start over.
    fn no_room(&mut self) {
        if self.fit > 1 {
            self.fit /= 2;
        } else {
            self.fit = self.chunk;
            self.back_off();
        }
    }

    /// A `PIPE_NOWAIT` end found nothing to do and will not signal when it
    /// can: try again after 1 ms, doubling up to `MAX_BACKOFF` while it
    /// stays idle.
    fn back_off(&mut self) {
        self.backoff = (self.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
        self.retry_at = Instant::now().checked_add(self.backoff);
    }

    /// Starts writing the first bytes of `bytes`, which is not empty.
    /// Returns whether an overlapped operation was started.
    fn start_write(&mut self, bytes: &[u8]) -> io::Result<bool> {
        let len = bytes.len().min(self.fit);
        let overlapped = match &mut self.io {
            Io::Overlapped(overlapped) => {
                // SAFETY: the source's bytes stay in place and unchanged
                // until the write is reaped: the engine touches an input
                // only through `next` and `advance`, and calls neither while
                // its write is out. The pipe stays open as long.
                unsafe { overlapped.start(self.handle, bytes.as_ptr().cast_mut(), len, true) };
                true
            }
            Io::Helper(helper) => {
                helper.request(len, |buf| buf.copy_from_slice(&bytes[..len]))?;
                false
            }
        };
        self.busy = true;
        Ok(overlapped)
    }

    /// Starts a read into `target`. Returns whether an overlapped operation
    /// was started.
    fn start_read(&mut self, target: Target<'_>) -> io::Result<bool> {
        let overlapped = match (&mut self.io, target) {
            (Io::Overlapped(overlapped), Target::Vec { vec, max }) => {
                let spare = vec.spare_capacity_mut();
                let len = max.min(spare.len());
                // SAFETY: the vector's spare capacity has room for `len`
                // bytes and stays in place until the read is reaped: the
                // engine touches an output only through `next` and `commit`,
                // and calls neither while its read is out. The pipe stays
                // open as long.
                unsafe { overlapped.start(self.handle, spare.as_mut_ptr().cast(), len, false) };
                true
            }
            (Io::Overlapped(overlapped), Target::Buffer(buf)) => {
                // SAFETY: as above, for the output's scratch buffer.
                unsafe { overlapped.start(self.handle, buf.as_mut_ptr(), buf.len(), false) };
                true
            }
            (Io::Helper(helper), Target::Vec { max, .. }) => {
                helper.request(max.min(CHUNK), |_| {})?;
                false
            }
            (Io::Helper(helper), Target::Buffer(buf)) => {
                helper.request(buf.len().min(CHUNK), |_| {})?;
                false
            }
        };
        self.busy = true;
        Ok(overlapped)
    }

    /// The result of the operation out, once it has finished; the end is
    /// idle again then.
    fn finished(&mut self) -> Option<io::Result<usize>> {
        if !self.busy {
            return None;
        }
        let done = match &mut self.io {
            Io::Overlapped(overlapped) => overlapped.finished(self.handle),
            Io::Helper(helper) => helper.finished(),
        }?;
        self.busy = false;
        Some(done)
    }

    /// Puts the `n` bytes the last read brought where `output` expects them:
    /// a `Vec` target grows by them.
    ///
    /// # Panics
    ///
    /// If the target is not the one the read was started with, which the
    /// bookkeeping guarantees (nothing changes an output between `next` and
    /// `commit`).
    fn land(&self, output: &mut OutputPipe<'_>, n: usize) {
        let Some((_, target)) = output.next() else {
            unreachable!("an output with a read out has its pipe");
        };
        match (&self.io, target) {
            (Io::Overlapped(overlapped), Target::Vec { vec, .. }) => {
                let spare = vec.spare_capacity_mut();
                assert!(
                    spare.as_ptr().cast::<u8>() == overlapped.buf.cast_const()
                        && n <= overlapped.len
                        && overlapped.len <= spare.len(),
                    "pipekit: the sink moved during a read"
                );
                // SAFETY: the read wrote `n` bytes at the start of the spare
                // capacity, which is where it was started (checked above).
                unsafe { vec.set_len(vec.len() + n) };
            }
            (Io::Overlapped(overlapped), Target::Buffer(buf)) => assert!(
                buf.as_ptr() == overlapped.buf.cast_const() && n <= buf.len(),
                "pipekit: the scratch buffer moved during a read"
            ),
            (Io::Helper(helper), Target::Vec { vec, .. }) => {
                vec.extend_from_slice(&helper.buf[..n]);
            }
            (Io::Helper(helper), Target::Buffer(buf)) => {
                buf[..n].copy_from_slice(&helper.buf[..n]);
            }
        }
    }

    /// Asks the operation out, if any, to stop. An overlapped one finishes
    /// later (see `pending`); a helper's has finished when this returns.
    fn cancel(&mut self) {
        match &mut self.io {
            Io::Overlapped(overlapped) => overlapped.cancel(self.handle),
            Io::Helper(helper) => helper.cancel(),
        }
    }

    /// Whether an overlapped operation is still running in the kernel.
    fn pending(&self) -> bool {
        match &self.io {
            Io::Overlapped(overlapped) => overlapped.pending(),
            Io::Helper(_) => false,
        }
    }
}

/// The `OVERLAPPED` of an overlapped end, boxed so that it stays in place
/// while the kernel uses it, and the operation out on it.
struct Overlapped {
    /// Owned (from `Box::into_raw`), and only used through this pointer.
    ov: NonNull<OVERLAPPED>,
    state: Flight,
    /// The buffer of the last operation started, and its length.
    buf: *mut u8,
    len: usize,
    /// The event that every completion signals.
    event: HANDLE,
}

enum Flight {
    Idle,
    /// Started: the kernel owns `ov` and the buffer until `Internal` is no
    /// longer `STATUS_PENDING`.
    Started,
    /// Failed before it was queued; nothing is in flight.
    Failed(io::Error),
}

impl Overlapped {
    fn new(event: HANDLE) -> Overlapped {
        let ov = Box::into_raw(Box::<OVERLAPPED>::default());
        Overlapped {
            // SAFETY: `Box::into_raw` never returns NULL.
            ov: unsafe { NonNull::new_unchecked(ov) },
            state: Flight::Idle,
            buf: ptr::null_mut(),
            len: 0,
            event,
        }
    }

    /// Starts a `ReadFile` or (`write`) `WriteFile` of `len` bytes (at most
    /// `u32::MAX`) at `buf` on `handle`, which must be idle.
    ///
    /// # Safety
    ///
    /// `buf` must be valid for `len` bytes (for writes, when reading), and it
    /// and `handle` must stay valid, and the buffer unused by anything else,
    /// until `finished` has returned the operation's result or the engine
    /// has quiesced.
    unsafe fn start(&mut self, handle: HANDLE, buf: *mut u8, len: usize, write: bool) {
        debug_assert!(matches!(self.state, Flight::Idle));
        let ov = self.ov.as_ptr();
        // SAFETY: no operation is out on `ov`, so nothing else uses it.
        unsafe {
            ov.write(OVERLAPPED {
                // The low bit keeps the completion away from any completion
                // port the handle is bound to; the kernel ignores it when
                // setting the event.
                hEvent: (self.event as usize | 1) as HANDLE,
                ..OVERLAPPED::default()
            });
        }
        let len = len.min(u32::MAX as usize);
        // SAFETY: the caller guarantees `buf` and `handle`; `ov` is boxed and
        // is freed only once the operation has finished.
        let started = cvt(unsafe {
            if write {
                WriteFile(handle, buf, len as u32, ptr::null_mut(), ov)
            } else {
                ReadFile(handle, buf, len as u32, ptr::null_mut(), ov)
            }
        });
        (self.buf, self.len) = (buf, len);
        self.state = match started {
            // Completed at once, or queued: `Internal` tells which.
            Ok(_) => Flight::Started,
            Err(err) if is_error(&err, ERROR_IO_PENDING) => Flight::Started,
            Err(err) => Flight::Failed(err),
        };
    }

    fn pending(&self) -> bool {
        // SAFETY: `ov` is live, and a started operation was started with it.
        matches!(self.state, Flight::Started) && unsafe { pending(self.ov.as_ptr()) }
    }

    fn finished(&mut self, handle: HANDLE) -> Option<io::Result<usize>> {
        if self.pending() {
            return None;
        }
        match mem::replace(&mut self.state, Flight::Idle) {
            Flight::Idle => None,
            Flight::Failed(err) => Some(Err(err)),
            Flight::Started => {
                // The kernel stores the byte count before the status; see
                // them in that order.
                fence(Ordering::Acquire);
                let mut done = 0u32;
                // SAFETY: the operation started on `handle` with `ov` has
                // completed (bWait is FALSE: nothing waits on the shared
                // event here), and `done` is a writable local.
                let result =
                    cvt(unsafe { GetOverlappedResult(handle, self.ov.as_ptr(), &mut done, 0) });
                Some(outcome(result.map(drop), done as usize))
            }
        }
    }

    fn cancel(&self, handle: HANDLE) {
        if self.pending() {
            // SAFETY: `ov` started an operation on `handle`, which is open.
            // The call only requests the cancellation; if the operation
            // completes first it fails with ERROR_NOT_FOUND, and either way
            // `finished` tells how it ended.
            unsafe { CancelIoEx(handle, self.ov.as_ptr()) };
        }
    }
}

impl Drop for Overlapped {
    fn drop(&mut self) {
        // The engine quiesces before it drops an end. Should an operation
        // still be out, the kernel owns the box: leak it.
        if !self.pending() {
            // SAFETY: `ov` came from `Box::into_raw` and nothing uses it.
            drop(unsafe { Box::from_raw(self.ov.as_ptr()) });
        }
    }
}

/// A synchronous end's helper thread, started at the first operation, and
/// the buffer it works on (here while the helper is idle).
struct Helper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    buf: Vec<u8>,
    pipe: SharedHandle,
    event: SharedHandle,
    write: bool,
}

/// What the driving thread and a helper share.
struct Shared {
    state: Mutex<State>,
    /// Notified at each change of `state`.
    changed: Condvar,
}

/// Where a helper's operation is. The buffer travels with it.
enum State {
    Idle,
    /// An operation of this many bytes, not yet taken up.
    Request(Vec<u8>, usize),
    /// Taken up: the helper is in (or about to enter) its call.
    Running,
    Done(Vec<u8>, io::Result<usize>),
    Exit,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // Nothing panics while holding the lock; recover rather than panic.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Helper {
    fn new(pipe: SharedHandle, write: bool, event: SharedHandle) -> Helper {
        Helper {
            shared: Arc::new(Shared {
                state: Mutex::new(State::Idle),
                changed: Condvar::new(),
            }),
            thread: None,
            buf: Vec::new(),
            pipe,
            event,
            write,
        }
    }

    /// Hands the helper an operation of `len` bytes (at most `CHUNK`),
    /// after `fill` has put a write's bytes in the buffer. Starts the thread
    /// the first time.
    fn request(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<()> {
        if self.thread.is_none() {
            let (shared, pipe, event, write) =
                (Arc::clone(&self.shared), self.pipe, self.event, self.write);
            let thread = thread::Builder::new()
                .name("pipekit-communicate".to_string())
                .stack_size(HELPER_STACK)
                .spawn(move || serve(&shared, pipe, event, write))?;
            self.thread = Some(thread);
        }
        self.buf.resize(CHUNK, 0);
        fill(&mut self.buf[..len]);
        *lock(&self.shared) = State::Request(mem::take(&mut self.buf), len);
        self.shared.changed.notify_all();
        Ok(())
    }

    fn finished(&mut self) -> Option<io::Result<usize>> {
        let mut state = lock(&self.shared);
        if !matches!(*state, State::Done(..)) {
            return None;
        }
        let State::Done(buf, done) = mem::replace(&mut *state, State::Idle) else {
            unreachable!();
        };
        self.buf = buf;
        Some(done)
    }

    /// Stops the operation out: takes back a request not yet taken up, or
    /// cancels the call until the helper reports back. Afterwards the
    /// helper is in no call.
    fn cancel(&mut self) {
        let Some(thread) = &self.thread else {
            return;
        };
        let mut state = lock(&self.shared);
        loop {
            match *state {
                State::Request(..) => {
                    let State::Request(buf, _) = mem::replace(&mut *state, State::Idle) else {
                        unreachable!();
                    };
                    let aborted = io::Error::from_raw_os_error(ERROR_OPERATION_ABORTED as i32);
                    *state = State::Done(buf, Err(aborted));
                    return;
                }
                State::Running => {
                    // SAFETY: the thread handle is open while its JoinHandle
                    // is held. If the helper is not in a call yet, this fails
                    // with ERROR_NOT_FOUND and the loop tries again.
                    unsafe { CancelSynchronousIo(thread.as_raw_handle() as HANDLE) };
                    state = self
                        .shared
                        .changed
                        .wait_timeout(state, CANCEL_RETRY)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                State::Idle | State::Done(..) | State::Exit => return,
            }
        }
    }
}

impl Drop for Helper {
    /// Stops the helper and joins it.
    fn drop(&mut self) {
        self.cancel();
        *lock(&self.shared) = State::Exit;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the helper is a bug; it has nothing to report.
            let _ = thread.join();
        }
    }
}

/// A helper thread: does each requested operation on `pipe`, reports it,
/// and signals `event`, until told to exit.
fn serve(shared: &Shared, pipe: SharedHandle, event: SharedHandle, write: bool) {
    let mut state = lock(shared);
    loop {
        match *state {
            State::Request(..) => {}
            State::Exit => return,
            State::Idle | State::Running | State::Done(..) => {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
        }
        let State::Request(mut buf, len) = mem::replace(&mut *state, State::Running) else {
            unreachable!();
        };
        drop(state);
        let done = call(pipe, &mut buf[..len], write);
        state = lock(shared);
        *state = State::Done(buf, done);
        shared.changed.notify_all();
        // SAFETY: the event is open until every helper has been joined.
        unsafe { SetEvent(event.0) };
    }
}

/// One blocking `ReadFile` or (`write`) `WriteFile` on `pipe`.
fn call(pipe: SharedHandle, buf: &mut [u8], write: bool) -> io::Result<usize> {
    let mut transfer = if write {
        Transfer::Write(buf)
    } else {
        Transfer::Read(buf)
    };
    let mut done = 0u32;
    // SAFETY: `transfer` holds a live buffer and `done` is a writable local;
    // the handle is synchronous (no OVERLAPPED) and open: the driving thread
    // keeps the pipe open while an operation is out.
    let result = cvt(unsafe { start(pipe.0, &mut transfer, &mut done, ptr::null_mut()) });
    outcome(result.map(drop), done as usize)
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running
/// then. (The caller has already seen, with `try_wait`, that it was running.)
pub(crate) fn wait_deadline(
    child: &mut Child,
    deadline: Instant,
) -> io::Result<Option<ExitStatus>> {
    // The process handle is signalled once the process has exited.
    if super::wait_until(child.as_handle(), Some(deadline))? {
        child.wait().map(Some)
    } else {
        child.try_wait()
    }
}
