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
//!   bookkeeping), on a duplicate of the end's handle of its own, and hands
//!   the result back. Writes are capped as above. Helpers are plain threads,
//!   joined when their end is dropped, rather than scoped ones:
//!   `CancelSynchronousIo` needs the thread's handle, which `JoinHandle`
//!   gives and `ScopedJoinHandle` does not, and a helper may outlive `drive`
//!   (below).
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
//! helper's with `CancelSynchronousIo`, repeated every millisecond until
//! the helper reports back (it may not have entered its call yet), for at
//! most `CANCEL_GRACE` (20 ms). An operation that completed before it could
//! be cancelled is accounted for as usual, so that the next `drive` resumes
//! exactly. Then the helpers are joined.
//!
//! A helper's call can be out of the cancellation's reach for longer: on a
//! synchronous end, a call waits for the file object's lock while another
//! thread's blocking call on the same end (a thread outside the exchange
//! reading or writing a clone, or a second helper serving a clone given as
//! another output) is in progress, and `CancelSynchronousIo` reaches it
//! only once it holds the lock and is in the call proper. A helper still
//! out after the grace is carried: moved, with its buffer, into its pipe's
//! `Input` or `OutputPipe`, and `drive` returns. A canceller thread of its
//! own then cancels the call until it returns, once at first, then after
//! 1 ms, doubling up to 16 ms; the next `drive` takes the helper back (no
//! longer cancelling it) and accounts for what the call did first, if
//! anything, so that resuming stays exact. Until then, the bytes of such a
//! call are neither in the sink nor counted as written. Dropping or closing
//! the pipe's `Input`/`OutputPipe` (the exchange ends) leaves the helper
//! to finish its call and exit, its result discarded: it owns its buffer
//! and its duplicate of the handle, so nothing waits for it. Every wait of
//! `drive` is so bounded by the deadline plus the grace.
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
//! capped at 4 KiB, `CreatePipe`'s default quota.

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

/// How long a run that stops (at the deadline, on an error) goes on
/// cancelling a helper's call before it leaves the call in flight for the
/// next run: a call that waits behind another thread's call on the same
/// file object cannot be cancelled before that call ends, which may be
/// never.
const CANCEL_GRACE: Duration = Duration::from_millis(20);

/// How long an end in `PIPE_NOWAIT` mode that found nothing to do waits
/// before it is tried again: the first time, and at most.
const MIN_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(16);

/// The stack a helper thread reserves. It only locks, calls and signals,
/// but security products hook `ReadFile`/`WriteFile` and run their hooks on
/// the caller's stack; 256 KiB is room for them.
const HELPER_STACK: usize = 256 * 1024;

/// What a run leaves in flight on a pipe for the next: the helper of a call
/// that could not be stopped in time (see [`Engine::carry`]).
pub(crate) type InFlight = Option<Helper>;

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

    /// Sets up an `End` for every open pipe, taking back the helper that an
    /// earlier run left in flight on it. On failure, the ends set up so far
    /// are in place, for `Drop` to stop.
    fn prepare(&mut self) -> io::Result<()> {
        let event = SharedHandle(self.event());
        for input in self.inputs.iter_mut() {
            let carried = input.in_flight().take();
            let end = input
                .pipe()
                .map(|pipe| End::new(pipe.inner(), true, event, carried));
            self.ins.push(end.transpose()?);
        }
        for output in self.outputs.iter_mut() {
            let carried = output.in_flight().take();
            let end = output
                .pipe()
                .map(|pipe| End::new(pipe.inner(), false, event, carried));
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
    /// finished. An overlapped operation is waited for until the kernel is
    /// done with it. A helper's call is cancelled again every millisecond
    /// until the helper reports back, for at most `CANCEL_GRACE`: a call
    /// still out then waits behind another thread's call on the same file
    /// object, out of the cancellation's reach, and is carried to the next
    /// run (see [`carry`](Engine::carry)). Afterwards no call of the engine
    /// is in progress, and the kernel holds no buffer of the caller's.
    fn quiesce(&mut self) {
        let grace = Instant::now().checked_add(CANCEL_GRACE);
        loop {
            // SAFETY: the event is open. A failed reset only costs rounds.
            unsafe { ResetEvent(self.event()) };
            let (mut pending, mut calling) = (false, false);
            for end in self.ins.iter_mut().chain(&mut self.outs).flatten() {
                end.cancel();
                pending |= end.pending();
                calling |= end.calling();
            }
            let left = grace.map_or(Duration::ZERO, |grace| {
                grace.saturating_duration_since(Instant::now())
            });
            if calling && left.is_zero() {
                self.carry();
                calling = false;
            }
            let timeout = match (pending, calling) {
                (false, false) => return,
                // Cancelled overlapped operations complete promptly.
                (true, false) => INFINITE,
                (_, true) => wait_millis(left.min(CANCEL_RETRY)),
            };
            // SAFETY: the event is open; every operation sets it when it
            // completes. A timeout means another round of cancellations.
            if unsafe { WaitForSingleObject(self.event(), timeout) } == WAIT_FAILED {
                abort_in_flight();
            }
        }
    }

    /// Moves every helper whose call is still out into its pipe's `Input`
    /// or `OutputPipe`, where the next run takes it back: its call goes on
    /// being cancelled meanwhile, and whatever it moved before that is
    /// accounted for then, so that resuming stays exact. Its `End` goes,
    /// which `open` does not count (the pipe stays open).
    fn carry(&mut self) {
        for (input, slot) in self.inputs.iter_mut().zip(&mut self.ins) {
            if let Some(helper) = detach(slot) {
                *input.in_flight() = Some(helper);
            }
        }
        for (output, slot) in self.outputs.iter_mut().zip(&mut self.outs) {
            if let Some(helper) = detach(slot) {
                *output.in_flight() = Some(helper);
            }
        }
    }
}

/// The helper of the end in `slot`, taken out of it (with the end) if its
/// call is still out.
fn detach(slot: &mut Option<End>) -> Option<Helper> {
    match slot.take() {
        Some(End {
            io: Io::Helper(helper),
            ..
        }) if helper.detach() => Some(helper),
        end => {
            *slot = end;
            None
        }
    }
}

impl Drop for Engine<'_, '_, '_> {
    /// Runs on every exit, a panic included: no operation outlives `drive`
    /// but the helpers' calls that `quiesce` carries, and the other helpers
    /// are joined (when their `End`s drop).
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

/// The engine's event, which the helpers signal.
#[derive(Clone, Copy)]
struct SharedHandle(HANDLE);

// SAFETY: a handle is an index into the process's handle table, valid on any
// thread. The engine keeps its event open while a helper may signal it: until
// every helper is joined or detached (see `Inner::event`).
unsafe impl Send for SharedHandle {}

/// One open end during the exchange.
struct End {
    /// The pipe's handle, for overlapped operations. The bookkeeping owns
    /// the pipe, and closes it only after `close_input`/`finish_read` have
    /// dropped this `End`. (A helper uses a duplicate of its own.)
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
    /// cap, which only a pipe pipekit did not create has to be asked for. A
    /// synchronous end gets the helper an earlier run `carried`, its
    /// operation still out, or a new one.
    fn new(
        pipe: &Pipe,
        write: bool,
        event: SharedHandle,
        carried: Option<Helper>,
    ) -> io::Result<End> {
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
        let (io, chunk, busy) = match (pipe.mode, carried) {
            (Mode::Synchronous, Some(helper)) => {
                helper.attach(event);
                (Io::Helper(helper), capacity.min(CHUNK), true)
            }
            (Mode::Synchronous, None) => {
                let helper = Helper::new(&pipe.handle, write, event)?;
                (Io::Helper(helper), capacity.min(CHUNK), false)
            }
            // Only a synchronous end has helpers to carry.
            (Mode::Overlapped, _) => (Io::Overlapped(Overlapped::new(event.0)), capacity, false),
        };
        Ok(End {
            handle: pipe.raw(),
            io,
            busy,
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

    /// Asks the operation out, if any, to stop. It finishes later: see
    /// `pending` and `calling`.
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

    /// Whether a helper's call is still out.
    fn calling(&self) -> bool {
        match &self.io {
            Io::Overlapped(_) => false,
            Io::Helper(helper) => helper.calling(),
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
///
/// A helper whose call could not be stopped within [`CANCEL_GRACE`] at the
/// end of a run is carried to the next one in its pipe's `Input` or
/// `OutputPipe` (see [`Engine::carry`]): `detach` hands its cancellation to
/// a thread of its own, and the next run's `attach` takes it back. Dropped
/// with its call still out, the helper is left to finish that call and exit
/// on its own, its result discarded: it owns everything the call uses (a
/// duplicate of the pipe's handle, and the buffer), so nothing waits for
/// it.
pub(crate) struct Helper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    buf: Vec<u8>,
    /// The helper's own duplicate of the pipe's handle, shared with its
    /// thread once started.
    pipe: Arc<OwnedHandle>,
    write: bool,
}

/// What the driving thread, a helper and its canceller share.
struct Shared {
    inner: Mutex<Inner>,
    /// Notified at each change of `inner`.
    changed: Condvar,
    /// Holds the helper's calls where no cancellation reaches them (tests).
    #[cfg(test)]
    gate: Option<Arc<tests::Gate>>,
}

struct Inner {
    state: State,
    /// The event that the helper signals when an operation finishes: that
    /// of the engine it serves, `None` while it is carried between runs.
    /// The engine clears it, under the lock, before closing the event.
    event: Option<SharedHandle>,
    /// Set while the helper is carried or dropped with its call out: the
    /// call is to be cancelled, by the canceller thread, until it returns.
    stopping: bool,
    /// Whether a canceller thread is running.
    canceller: bool,
    /// Set when the `Helper` was dropped with its call out: the thread
    /// discards the result and exits.
    orphaned: bool,
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

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    // Nothing panics while holding the lock; recover rather than panic.
    shared.inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Helper {
    /// A helper for `pipe` (`write`: an input), which signals `event`. Its
    /// thread starts at the first operation.
    fn new(pipe: &OwnedHandle, write: bool, event: SharedHandle) -> io::Result<Helper> {
        Ok(Helper {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    state: State::Idle,
                    event: Some(event),
                    stopping: false,
                    canceller: false,
                    orphaned: false,
                }),
                changed: Condvar::new(),
                #[cfg(test)]
                gate: tests::Gate::for_new_helper(),
            }),
            thread: None,
            buf: Vec::new(),
            pipe: Arc::new(pipe.try_clone()?),
            write,
        })
    }

    /// Hands the helper an operation of `len` bytes (at most `CHUNK`),
    /// after `fill` has put a write's bytes in the buffer. Starts the thread
    /// the first time.
    fn request(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<()> {
        if self.thread.is_none() {
            let (shared, pipe, write) =
                (Arc::clone(&self.shared), Arc::clone(&self.pipe), self.write);
            let thread = thread::Builder::new()
                .name("pipekit-communicate".to_string())
                .stack_size(HELPER_STACK)
                .spawn(move || serve(&shared, &pipe, write))?;
            self.thread = Some(thread);
        }
        self.buf.resize(CHUNK, 0);
        fill(&mut self.buf[..len]);
        lock(&self.shared).state = State::Request(mem::take(&mut self.buf), len);
        self.shared.changed.notify_all();
        Ok(())
    }

    fn finished(&mut self) -> Option<io::Result<usize>> {
        let mut inner = lock(&self.shared);
        if !matches!(inner.state, State::Done(..)) {
            return None;
        }
        let State::Done(buf, done) = mem::replace(&mut inner.state, State::Idle) else {
            unreachable!();
        };
        self.buf = buf;
        Some(done)
    }

    /// Whether the helper has taken up an operation and not reported back.
    fn calling(&self) -> bool {
        matches!(lock(&self.shared).state, State::Running)
    }

    /// Asks the operation out, if any, to stop: takes back a request not
    /// yet taken up (it finishes as cancelled), or cancels the call once.
    /// The helper may not have entered its call yet, or may wait behind
    /// another thread's call on the same file object, where the
    /// cancellation does not reach it: the caller asks again until the
    /// helper reports back.
    fn cancel(&mut self) {
        let mut inner = lock(&self.shared);
        match inner.state {
            State::Request(..) => {
                let State::Request(buf, _) = mem::replace(&mut inner.state, State::Idle) else {
                    unreachable!();
                };
                let aborted = io::Error::from_raw_os_error(ERROR_OPERATION_ABORTED as i32);
                inner.state = State::Done(buf, Err(aborted));
            }
            State::Running => {
                if let Some(thread) = &self.thread {
                    // SAFETY: the thread handle is open while its JoinHandle
                    // is held. The lock is held and the helper has not
                    // reported back, so it is in the call it took up or
                    // about to enter it, never in a later one (it takes the
                    // lock to report). Failure (ERROR_NOT_FOUND: not in the
                    // call) is for the caller to retry.
                    unsafe { CancelSynchronousIo(thread.as_raw_handle() as HANDLE) };
                }
            }
            State::Idle | State::Done(..) | State::Exit => {}
        }
    }

    /// Takes the helper out of the engine that drives it, if its call is
    /// still out: the engine's event is forgotten, and a canceller thread
    /// cancels the call until it returns. Returns whether the call was out
    /// (otherwise nothing changed).
    fn detach(&self) -> bool {
        let mut inner = lock(&self.shared);
        if !matches!(inner.state, State::Running) {
            return false;
        }
        inner.event = None;
        self.stop_in_background(&mut inner);
        true
    }

    /// Puts a helper carried from an earlier run under the engine that
    /// signals `event`: its call, if still out, is no longer cancelled, and
    /// reports to that engine.
    fn attach(&self, event: SharedHandle) {
        let mut inner = lock(&self.shared);
        inner.event = Some(event);
        inner.stopping = false;
    }

    /// Waits until the helper is out of its call.
    #[cfg(test)]
    fn wait_out_of_call(&self) {
        let mut inner = lock(&self.shared);
        while matches!(inner.state, State::Running) {
            inner = self.shared.changed.wait(inner).unwrap();
        }
    }

    /// Marks the call out as one to cancel until it returns, and starts the
    /// canceller thread that does it unless one runs. Should the system
    /// refuse a thread, the call is not cut short: it completes as the pipe
    /// allows, and its result is kept all the same.
    fn stop_in_background(&self, inner: &mut Inner) {
        inner.stopping = true;
        if inner.canceller {
            return;
        }
        let Some(Ok(thread)) = self
            .thread
            .as_ref()
            .map(|thread| thread.as_handle().try_clone_to_owned())
        else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        inner.canceller = thread::Builder::new()
            .name("pipekit-cancel".to_string())
            .stack_size(HELPER_STACK)
            .spawn(move || cancel_until_back(&shared, &thread))
            .is_ok();
    }
}

impl Drop for Helper {
    /// Stops the helper and joins it; or, if its call is still out (it was
    /// carried from a run), leaves the thread to finish that call, cut short
    /// by the canceller, and exit.
    fn drop(&mut self) {
        let mut inner = lock(&self.shared);
        if matches!(inner.state, State::Running) {
            inner.orphaned = true;
            self.stop_in_background(&mut inner);
            return;
        }
        inner.state = State::Exit;
        drop(inner);
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the helper is a bug; it has nothing to report.
            let _ = thread.join();
        }
    }
}

/// A helper thread: does each requested operation on `pipe`, reports it,
/// and signals the engine's event, until told to exit (or orphaned).
fn serve(shared: &Shared, pipe: &OwnedHandle, write: bool) {
    let mut inner = lock(shared);
    loop {
        match inner.state {
            State::Request(..) => {}
            State::Exit => return,
            State::Idle | State::Running | State::Done(..) => {
                inner = shared
                    .changed
                    .wait(inner)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
        }
        let State::Request(mut buf, len) = mem::replace(&mut inner.state, State::Running) else {
            unreachable!();
        };
        drop(inner);
        #[cfg(test)]
        if let Some(gate) = &shared.gate {
            gate.pass();
        }
        let done = call(pipe, &mut buf[..len], write);
        inner = lock(shared);
        if inner.orphaned {
            inner.state = State::Exit;
            shared.changed.notify_all();
            return;
        }
        inner.state = State::Done(buf, done);
        shared.changed.notify_all();
        if let Some(event) = inner.event {
            // SAFETY: an engine's event stays open while it is set here: the
            // engine clears it, under this lock, before closing the event.
            unsafe { SetEvent(event.0) };
        }
    }
}

/// A canceller thread: cancels the call of the helper `thread` while it is
/// out and still to be stopped, once at first, then after 1 ms, doubling up
/// to `MAX_BACKOFF` (the call may wait behind another thread's call on the
/// same file object for as long as that call lasts).
fn cancel_until_back(shared: &Shared, thread: &OwnedHandle) {
    let mut inner = lock(shared);
    let mut wait = MIN_BACKOFF;
    while inner.stopping && matches!(inner.state, State::Running) {
        // SAFETY: `thread` is a handle to the helper's thread, open for as
        // long as this runs. The lock is held and the helper has not
        // reported back, so it is in the call to stop or about to enter it,
        // never in a later one (it takes the lock to report).
        unsafe { CancelSynchronousIo(thread.as_raw_handle() as HANDLE) };
        inner = shared
            .changed
            .wait_timeout(inner, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        wait = (wait * 2).min(MAX_BACKOFF);
    }
    inner.canceller = false;
}

/// One blocking `ReadFile` or (`write`) `WriteFile` on `pipe`.
fn call(pipe: &OwnedHandle, buf: &mut [u8], write: bool) -> io::Result<usize> {
    let mut transfer = if write {
        Transfer::Write(buf)
    } else {
        Transfer::Read(buf)
    };
    let mut done = 0u32;
    // SAFETY: `transfer` holds a live buffer and `done` is a writable local;
    // the handle is synchronous (no OVERLAPPED), and the helper's own
    // duplicate, open while the helper runs.
    let result = cvt(unsafe {
        start(
            pipe.as_raw_handle() as HANDLE,
            &mut transfer,
            &mut done,
            ptr::null_mut(),
        )
    });
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

#[cfg(test)]
mod tests {
    //! The engine when a helper's call cannot be cancelled in time. On
    //! Windows a call that waits behind another thread's call on the same
    //! synchronous end (the file object's lock) is out of
    //! `CancelSynchronousIo`'s reach until that call ends; wine has no such
    //! lock, so a `Gate` holds the helper's call at the same point instead:
    //! taken up, not yet entered, where a cancellation finds nothing to
    //! cancel.

    use std::cell::RefCell;
    use std::io::{Read, Write};
    use std::sync::mpsc;

    use super::*;
    use crate::communicate::{Sink, Source};

    /// Holds the calls of the helpers started while it was armed, until it
    /// is opened.
    pub(super) struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
    }

    thread_local! {
        static ARMED: RefCell<Option<Arc<Gate>>> = const { RefCell::new(None) };
    }

    impl Gate {
        /// Holds the calls of every helper the current thread starts from
        /// now on.
        fn arm() -> Arc<Gate> {
            let gate = Arc::new(Gate {
                open: Mutex::new(false),
                opened: Condvar::new(),
            });
            ARMED.with(|armed| *armed.borrow_mut() = Some(Arc::clone(&gate)));
            gate
        }

        /// The gate armed on the current thread, for a helper it starts.
        pub(super) fn for_new_helper() -> Option<Arc<Gate>> {
            ARMED.with(|armed| armed.borrow().clone())
        }

        /// Waits, as a call behind the file object's lock does, where no
        /// cancellation reaches, until the gate is open.
        pub(super) fn pass(&self) {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
        }

        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    /// The deadline of the runs that a gate holds up.
    const DEADLINE: Duration = Duration::from_millis(200);

    /// How late, at most, such a run may return: `CANCEL_GRACE` plus room
    /// for a loaded machine (and wine).
    const LATE: Duration = Duration::from_secs(3);

    /// Runs `f` on a thread of its own and returns its result; fails if it
    /// takes more than 30 s (the engine waiting for a held helper without
    /// bound).
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || drop(tx.send(f())));
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the engine did not return (or panicked)")
    }

    /// One run with `DEADLINE`: it must end with the deadline error, never
    /// early and at most `LATE` after the deadline.
    fn run_to_deadline(inputs: &mut [Input<'_>], outputs: &mut [OutputPipe<'_>]) {
        let start = Instant::now();
        let err = drive(inputs, outputs, Some(start + DEADLINE)).unwrap_err();
        let took = start.elapsed();
        assert!(
            DeadlinePassed::from_error(&err).is_some(),
            "not the deadline: {err}"
        );
        assert!(took >= DEADLINE, "returned early, after {took:?}");
        assert!(took < DEADLINE + LATE, "returned {took:?} after it started");
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_read_held_out_of_reach_is_carried_and_lands_once() {
        let got = within(|| {
            let (reader, writer) = crate::pipe().unwrap();
            (&writer).write_all(b"first").unwrap();
            let gate = Gate::arm();
            let mut sink = Vec::new();
            {
                let mut outputs = [OutputPipe::new(Some(reader), Sink::from(&mut sink), None)];
                run_to_deadline(&mut [], &mut outputs);
                assert!(
                    outputs[0].in_flight().is_some(),
                    "the held read was not carried"
                );
                // A second run while the call is still held: carried again.
                run_to_deadline(&mut [], &mut outputs);
                assert!(outputs[0].in_flight().is_some());
                gate.open();
                (&writer).write_all(b" second").unwrap();
                drop(writer);
                drive(&mut [], &mut outputs, None).unwrap();
                assert!(outputs[0].pipe().is_none(), "end of file not reached");
            }
            sink
        });
        assert_eq!(got, b"first second");
    }

    #[test]
    fn a_write_held_out_of_reach_is_carried_and_counted_once() {
        let data = pattern(300_000);
        let expected = data.clone();
        let (got, written) = within(move || {
            let (mut reader, writer) = crate::pipe().unwrap();
            let gate = Gate::arm();
            let mut inputs = [Input::new(Some(writer), Source::from(&data[..]))];
            run_to_deadline(&mut inputs, &mut []);
            assert!(
                inputs[0].in_flight().is_some(),
                "the held write was not carried"
            );
            assert_eq!(inputs[0].written(), 0);
            gate.open();
            let drain = thread::spawn(move || {
                let mut got = Vec::new();
                reader.read_to_end(&mut got).map(|_| got)
            });
            drive(&mut inputs, &mut [], None).unwrap();
            assert!(inputs[0].pipe().is_none(), "the input was not closed");
            (drain.join().unwrap().unwrap(), inputs[0].written())
        });
        assert_eq!(written, expected.len() as u64);
        assert!(got == expected, "{} bytes arrived, not the data", got.len());
    }

    #[test]
    fn a_carried_call_is_cut_short_before_it_takes_what_arrives_later() {
        let got = within(|| {
            let (reader, writer) = crate::pipe().unwrap();
            let mut other = reader.try_clone().unwrap();
            let gate = Gate::arm();
            let mut sink = Vec::new();
            let mut outputs = [OutputPipe::new(Some(reader), Sink::from(&mut sink), None)];
            run_to_deadline(&mut [], &mut outputs);
            gate.open();
            // The held read enters its call on an empty pipe, where only a
            // cancellation ends it.
            outputs[0].in_flight().as_ref().unwrap().wait_out_of_call();
            (&writer).write_all(b"later").unwrap();
            let mut got = [0; 5];
            other.read_exact(&mut got).unwrap();
            drop(writer);
            drive(&mut [], &mut outputs, None).unwrap();
            drop(outputs);
            assert!(sink.is_empty(), "{sink:?}");
            got
        });
        assert_eq!(&got, b"later");
    }

    #[test]
    fn dropping_an_exchange_with_a_carried_call_waits_for_nothing() {
        let got = within(|| {
            let (mut reader, writer) = crate::pipe().unwrap();
            let gate = Gate::arm();
            let mut inputs = [Input::new(Some(writer), Source::from(&b"held"[..]))];
            run_to_deadline(&mut inputs, &mut []);
            let start = Instant::now();
            drop(inputs);
            let took = start.elapsed();
            assert!(took < LATE, "dropping took {took:?}");
            gate.open();
            // The helper finishes its call (written at once, or cancelled)
            // and closes its duplicate of the writer: end of file.
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            got
        });
        assert!(got.is_empty() || got == b"held", "{got:?}");
    }
}
