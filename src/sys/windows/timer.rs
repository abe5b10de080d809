//! Timeouts on synchronous ends: the calling thread makes the blocking
//! `ReadFile`/`WriteFile` itself, and a thread-pool timer cancels it with
//! `CancelSynchronousIo` once the deadline has passed.
//!
//! `CancelSynchronousIo` cancels whatever synchronous call the thread is in
//! when it runs, so a handshake makes sure it hits the timed call and no
//! other. The caller and the timer share a [`Phase`] behind a lock: the
//! phase is `Waiting` from before the call until the caller, back from the
//! call, takes the lock and marks it `Returned`. The timer cancels only
//! while holding the lock and seeing `Waiting`, so the calling thread is then
//! either inside the call or blocked on that lock, never in a later call.
//! The timer may run just before the thread has entered the call (nothing to
//! cancel yet), or while the call waits behind another thread's call on the
//! same file object, so it cancels again every millisecond until the caller
//! reports back. Once the caller has marked `Returned`, it disarms the timer
//! and waits for any callback still running before the shared state leaves
//! its stack.
//!
//! A call that completes before the cancellation reaches it returns its
//! result as usual: a completion that wins the race is never thrown away.
//! A cancelled read has consumed nothing. A cancelled write reports the
//! bytes it moved before it was cancelled.

use std::cell::RefCell;
use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{ERROR_OPERATION_ABORTED, FILETIME, HANDLE};
use windows_sys::Win32::System::Threading::{
    CloseThreadpoolTimer, CreateThreadpoolTimer, GetCurrentThreadId, OpenThread,
    SetThreadpoolTimer, WaitForThreadpoolTimerCallbacks, PTP_CALLBACK_INSTANCE, PTP_TIMER,
    THREAD_TERMINATE,
};
use windows_sys::Win32::System::IO::CancelSynchronousIo;

use super::{cvt, is_error, start, Transfer};

/// How long the timer waits for the caller to report back before it
/// cancels again: the caller may not have entered its call yet, or may be
/// waiting for another thread's call on the same file object to end.
const CANCEL_RETRY: Duration = Duration::from_millis(1);

/// Where the timed call is, as the caller and the timer see it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The call is about to be made or is being made; the deadline has not
    /// been acted on.
    Waiting,
    /// The deadline passed and the timer is cancelling the call.
    Cancelling,
    /// The caller is back from the call.
    Returned,
}

/// What the caller and the timer callback share; lives on the caller's
/// stack until no callback can run any more.
struct Watch {
    phase: Mutex<Phase>,
    changed: Condvar,
    /// The calling thread, opened with `THREAD_TERMINATE` (the access
    /// `CancelSynchronousIo` needs).
    thread: HANDLE,
    deadline: Instant,
}

impl Watch {
    fn lock(&self) -> MutexGuard<'_, Phase> {
        // Nothing panics while holding the lock; recover rather than panic.
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

thread_local! {
    /// A real handle to the current thread, opened at its first timed call
    /// and closed when the thread exits.
    static THIS_THREAD: RefCell<Option<OwnedHandle>> = const { RefCell::new(None) };
}

/// The current thread's handle with `THREAD_TERMINATE` access (the pseudo
/// handle `GetCurrentThread` returns means "the calling thread" to whoever
/// uses it, so the timer needs a real one).
fn this_thread() -> io::Result<HANDLE> {
    THIS_THREAD.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some(handle) = &*cell {
            return Ok(handle.as_raw_handle() as HANDLE);
        }
        // SAFETY: plain values; the call returns a new handle or NULL.
        let handle = cvt(unsafe { OpenThread(THREAD_TERMINATE, 0, GetCurrentThreadId()) })?;
        // SAFETY: OpenThread succeeded, so `handle` is open and owned by
        // nobody else.
        let handle = unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) };
        let raw = handle.as_raw_handle() as HANDLE;
        *cell = Some(handle);
        Ok(raw)
    })
}

/// A relative due time for `SetThreadpoolTimer`: negative, in units of
/// 100 ns, rounded up so that the timer never fires before `left` has passed.
fn due_time(left: Duration) -> FILETIME {
    let ticks = ((left.as_nanos() + 99) / 100).min(i64::MAX as u128) as i64;
    let due = (-ticks.max(1)) as u64;
    FILETIME {
        dwLowDateTime: due as u32,
        dwHighDateTime: (due >> 32) as u32,
    }
}

/// The timer's callback: cancels the caller's call once the deadline has
/// passed by the monotonic clock (re-arming itself if the thread pool ran it
/// early), then keeps cancelling until the caller reports back.
///
/// # Safety
///
/// `context` must point to the `Watch` of a timed call whose caller waits
/// for every callback of `timer` before the `Watch` goes away.
unsafe extern "system" fn fire(_: PTP_CALLBACK_INSTANCE, context: *mut c_void, timer: PTP_TIMER) {
    // SAFETY: the caller guarantees that the Watch outlives this callback.
    let watch = unsafe { &*context.cast::<Watch>() };
    let left = watch.deadline.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        let due = due_time(left);
        // SAFETY: `timer` is this callback's timer, which stays open until
        // its callbacks have been waited for.
        unsafe { SetThreadpoolTimer(timer, &due, 0, 0) };
        return;
    }
    let mut phase = watch.lock();
    while *phase != Phase::Returned {
        *phase = Phase::Cancelling;
        // SAFETY: `watch.thread` is open while the caller waits for this
        // callback. The lock is held and the phase is not `Returned`, so the
        // thread is inside the timed call or waiting for the lock: the
        // cancellation cannot reach any other call. Failure (ERROR_NOT_FOUND:
        // not in the call yet) is retried below.
        unsafe { CancelSynchronousIo(watch.thread) };
        phase = watch
            .changed
            .wait_timeout(phase, CANCEL_RETRY)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// The thread-pool timer of one timed call, closed when dropped (after
/// waiting for its callbacks).
struct Timer(PTP_TIMER);

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: the timer is open. A NULL due time disarms it; waiting
        // (cancelling callbacks not yet started) leaves no callback running
        // when this returns, after which the timer is closed.
        unsafe {
            SetThreadpoolTimer(self.0, ptr::null(), 0, 0);
            WaitForThreadpoolTimerCallbacks(self.0, 1);
            CloseThreadpoolTimer(self.0);
        }
    }
}

/// One blocking `ReadFile` or `WriteFile` on the synchronous `handle`,
/// cancelled if it has not completed within `timeout`. `what` names the
/// operation in the timeout's error.
pub(super) fn transfer(
    handle: HANDLE,
    transfer: &mut Transfer<'_>,
    timeout: Duration,
    what: &str,
) -> io::Result<usize> {
    let Some(deadline) = Instant::now().checked_add(timeout) else {
        // Beyond the clock's range: the call cannot time out.
        return plain(handle, transfer);
    };
    let watch = Watch {
        phase: Mutex::new(Phase::Waiting),
        changed: Condvar::new(),
        thread: this_thread()?,
        deadline,
    };
    let context = (&watch as *const Watch).cast_mut().cast::<c_void>();
    // SAFETY: `fire` matches the callback type; `context` points to `watch`,
    // which outlives the timer: `Timer`'s drop, below, waits for every
    // callback before `watch` goes out of scope (it is declared first, so
    // dropped last).
    let timer = unsafe { CreateThreadpoolTimer(Some(fire), context, ptr::null()) };
    if timer == 0 {
        return Err(io::Error::last_os_error());
    }
    let timer = Timer(timer);
    let due = due_time(timeout);
    // SAFETY: the timer is open; `due` is a readable local.
    unsafe { SetThreadpoolTimer(timer.0, &due, 0, 0) };

    let result = plain(handle, transfer);

    let phase = {
        let mut phase = watch.lock();
        let was = *phase;
        *phase = Phase::Returned;
        was
    };
    watch.changed.notify_all();
    drop(timer);
    match result {
        Err(err) if phase == Phase::Cancelling && is_error(&err, ERROR_OPERATION_ABORTED) => {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("pipekit: the {what} did not complete within the {timeout:?} timeout"),
            ))
        }
        result => result,
    }
}

/// The blocking call. A write cancelled part-way reports what it moved.
fn plain(handle: HANDLE, transfer: &mut Transfer<'_>) -> io::Result<usize> {
    let mut done = 0u32;
    // SAFETY: `transfer` holds a buffer valid for its length and `done` is a
    // writable local; a synchronous handle takes no OVERLAPPED, and the call
    // returns once the transfer is over.
    match cvt(unsafe { start(handle, transfer, &mut done, ptr::null_mut()) }) {
        Ok(_) => Ok(done as usize),
        Err(err) if done > 0 && is_error(&err, ERROR_OPERATION_ABORTED) => Ok(done as usize),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_time_is_relative_and_rounds_up() {
        let as_i64 = |due: FILETIME| {
            ((u64::from(due.dwHighDateTime) << 32) | u64::from(due.dwLowDateTime)) as i64
        };
        assert_eq!(as_i64(due_time(Duration::from_nanos(1))), -1);
        assert_eq!(as_i64(due_time(Duration::from_nanos(101))), -2);
        assert_eq!(as_i64(due_time(Duration::from_millis(1))), -10_000);
        assert_eq!(as_i64(due_time(Duration::ZERO)), -1);
        assert_eq!(as_i64(due_time(Duration::MAX)), -i64::MAX);
    }
}
