//! The Windows backend: pipe ends are `OwnedHandle`s, each tagged with the
//! kind of I/O it was opened for.
//!
//! A handle opened for synchronous I/O (`CreatePipe`, `CreateFileW` without
//! `FILE_FLAG_OVERLAPPED`, consoles) takes one plain `ReadFile`/`WriteFile`.
//! A handle opened for overlapped I/O (std's `ChildStdin`/`ChildStdout`/
//! `ChildStderr`, whose pipes std creates without `FILE_SYNCHRONOUS_IO_*`)
//! takes one `ReadFile`/`WriteFile` with an `OVERLAPPED` of its own and a
//! fresh event, and then waits on that event. Waiting on the event rather
//! than on the file handle, as std's `File` does, is what keeps several
//! threads reading one `&PipeReader` correct: the file handle is signalled
//! when *any* operation on it completes, the event only when this one does.
//!
//! Which kind a handle is gets decided once, when it becomes a `Pipe`:
//! handles pipekit creates are tagged as they are opened (`CreatePipe` ends
//! are synchronous; `control::create` opens each end of an NT pipe as
//! asked), and any other handle is asked with
//! `NtQueryInformationFile(FileModeInformation)`.
//!
//! `control` holds pipe control (creation options, nonblocking mode,
//! capacity, bytes available, timeouts); `nt` the unnamed NT named pipe that
//! an overlapped end needs; `convert` the handle traits and conversions;
//! `communicate` the engine behind `pipekit::communicate`.

pub(crate) mod communicate;
mod control;
mod convert;
pub(crate) mod job;
mod nt;
mod timer;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;

pub(crate) use control::create;

use std::ffi::c_void;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Write as _};
use std::mem;
use std::os::windows::io::{
    AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle, RawHandle,
};
use std::process::Stdio;
use std::ptr;
use std::sync::atomic::AtomicU8;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use windows_sys::core::BOOL;
use windows_sys::Wdk::Storage::FileSystem::{
    FileModeInformation, NtQueryInformationFile, FILE_MODE_INFORMATION, FILE_SYNCHRONOUS_IO_ALERT,
    FILE_SYNCHRONOUS_IO_NONALERT,
};
use windows_sys::Win32::Foundation::DuplicateHandle;
use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_IO_PENDING, ERROR_NO_DATA, ERROR_OPERATION_ABORTED,
    ERROR_PIPE_NOT_CONNECTED, HANDLE, INVALID_HANDLE_VALUE, STATUS_PENDING, STATUS_SUCCESS,
    WAIT_FAILED, WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    ReadFile, WriteFile, FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_READ_ATTRIBUTES,
    FILE_WRITE_ATTRIBUTES,
};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, WaitForSingleObject, INFINITE,
};
use windows_sys::Win32::System::IO::{
    CancelIoEx, GetOverlappedResult, IO_STATUS_BLOCK, OVERLAPPED,
};

/// The buffer quota `pipe()` asks for. The system default (`nSize` 0) is
/// 4 KiB, which a child fills far sooner than a 64 KiB Unix pipe; std's own
/// child pipes use 64 KiB too.
const PIPE_SIZE: u32 = 64 * 1024;

/// The most one untimed write hands the kernel. A pipe write is copied into
/// one allocation from the kernel's non-paged pool, so a huge buffer would
/// pin as much of it; a partial write is legal, and `write_all` loops.
const MAX_WRITE: usize = 1024 * 1024;

/// The return values of the Win32 calls this backend makes, each of which
/// has one value that means "failed, see `GetLastError`".
trait Win32Return {
    fn failed(&self) -> bool;
}

/// `BOOL`: 0 (FALSE) on failure.
impl Win32Return for BOOL {
    fn failed(&self) -> bool {
        *self == 0
    }
}

/// The handles that `CreateEventW` and friends return: NULL on failure.
impl Win32Return for HANDLE {
    fn failed(&self) -> bool {
        self.is_null()
    }
}

/// `WAIT_EVENT`, the `u32` that `WaitForSingleObject` returns:
/// `WAIT_FAILED` on failure. (No other `u32` goes through `cvt`.)
impl Win32Return for u32 {
    fn failed(&self) -> bool {
        *self == WAIT_FAILED
    }
}

/// Turns the value that a Win32 call returns on failure into the error in
/// `GetLastError`. The one place where this backend reads the last error
/// (NT statuses are translated by `nt::cvt_nt`).
fn cvt<T: Win32Return>(ret: T) -> io::Result<T> {
    if ret.failed() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Whether `err` is the Win32 error `code`.
fn is_error(err: &io::Error, code: u32) -> bool {
    err.raw_os_error() == Some(code as i32)
}

/// How a handle was opened, which decides how it is read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Opened with `FILE_SYNCHRONOUS_IO_*`: `ReadFile`/`WriteFile` block.
    Synchronous,
    /// Opened for overlapped I/O: every operation needs an `OVERLAPPED`.
    Overlapped,
}

impl Mode {
    /// Asks the I/O manager how `handle` was opened. A handle it cannot
    /// answer for (a console handle before Windows 8, a handle of a kind
    /// that has no file object) is taken as synchronous, which is how
    /// `ReadFile`/`WriteFile` treat such handles too.
    fn of(handle: BorrowedHandle<'_>) -> Mode {
        // A console pseudo-handle (Windows 7 and earlier: the low two bits
        // set) is no kernel handle; the console is read and written
        // synchronously.
        if handle.as_raw_handle() as usize & 3 == 3 {
            return Mode::Synchronous;
        }
        let mut status_block: IO_STATUS_BLOCK = IO_STATUS_BLOCK::default();
        let mut info = FILE_MODE_INFORMATION::default();
        // SAFETY: `status_block` and `info` are writable locals of the types
        // this information class fills, and the length passed is `info`'s
        // size; `handle` stays open for the duration of the call.
        let status = unsafe {
            NtQueryInformationFile(
                handle.as_raw_handle() as HANDLE,
                &mut status_block,
                (&mut info as *mut FILE_MODE_INFORMATION).cast::<c_void>(),
                mem::size_of::<FILE_MODE_INFORMATION>() as u32,
                FileModeInformation,
            )
        };
        let synchronous = FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT;
        if status == STATUS_SUCCESS && info.Mode & synchronous == 0 {
            Mode::Overlapped
        } else {
            Mode::Synchronous
        }
    }
}

/// Which end of the pipe a `Pipe` is. Only `capacity` needs it: the buffer
/// that limits a writer is the pipe's inbound one (client to server) or its
/// outbound one (server to client), depending on which end reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Reader,
    Writer,
}

/// One end of a pipe.
pub(crate) struct Pipe {
    handle: OwnedHandle,
    mode: Mode,
    role: Role,
    /// Whether pipekit last set `PIPE_NOWAIT` (true) or `PIPE_WAIT` (false)
    /// on this end or a pipekit clone of it, where known: what
    /// `nonblocking` answers when the handle may not be asked. Shared by
    /// clones, which share the file object and so the mode.
    wait_mode: Arc<AtomicU8>,
    /// The buffer quota pipekit asked for when it created the pipe, 0 for a
    /// pipe it did not create. It caps timed writes and the engine's writes
    /// without a `GetNamedPipeInfo`, which on a synchronous end would wait
    /// behind another thread's blocking call. (Microsoft documents that the
    /// system may round a quota up to its allocation granularity, or clamp
    /// it to its minimum or maximum; a write capped at the quota asked then
    /// still fits an empty pipe unless the quota was clamped down.)
    quota: usize,
}

/// What `Pipe::wait_mode` knows.
const MODE_UNKNOWN: u8 = 0;
const MODE_WAIT: u8 = 1;
const MODE_NOWAIT: u8 = 2;

impl fmt::Debug for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipe")
            .field("handle", &self.handle.as_raw_handle())
            .field("overlapped", &(self.mode == Mode::Overlapped))
            .finish()
    }
}

impl Pipe {
    /// Takes over a handle that pipekit did not open, asking once how it
    /// was opened.
    fn from_foreign(handle: OwnedHandle, role: Role) -> Pipe {
        let mode = Mode::of(handle.as_handle());
        Pipe::with(handle, mode, role, MODE_UNKNOWN, 0)
    }

    /// A `Pipe` of `handle`, whose mode is known to be `wait_mode`
    /// (`MODE_*`), created with the buffer quota `quota` (0: unknown).
    fn with(handle: OwnedHandle, mode: Mode, role: Role, wait_mode: u8, quota: usize) -> Pipe {
        Pipe {
            handle,
            mode,
            role,
            wait_mode: Arc::new(AtomicU8::new(wait_mode)),
            quota,
        }
    }

    /// The most a write can move into this pipe when it is empty, without
    /// asking the system where pipekit knows it: the quota it created the
    /// pipe with, else the capacity the system reports.
    fn write_capacity(&self) -> io::Result<usize> {
        match self.quota {
            0 => self.capacity(),
            quota => Ok(quota),
        }
    }

    /// Takes over the write end of a child's standard input pipe, which std
    /// creates in `PIPE_WAIT` mode and opens without `FILE_READ_ATTRIBUTES`
    /// (so neither its mode nor its size may be asked). A duplicate with
    /// that right added replaces it where the system grants it; where it
    /// does not, the mode is tracked from std's `PIPE_WAIT` on.
    fn from_child_stdin(handle: OwnedHandle) -> Pipe {
        let access = FILE_GENERIC_WRITE | FILE_READ_ATTRIBUTES;
        let handle = with_access(&handle, access).unwrap_or(handle);
        let mode = Mode::of(handle.as_handle());
        Pipe::with(handle, mode, Role::Writer, MODE_WAIT, 0)
    }

    /// Takes over the read end of a child's standard output or error pipe,
    /// which std creates in `PIPE_WAIT` mode and opens without
    /// `FILE_WRITE_ATTRIBUTES` (so it may not be made nonblocking). A
    /// duplicate with that right added replaces it where the system grants
    /// it.
    fn from_child_output(handle: OwnedHandle) -> Pipe {
        let access = FILE_GENERIC_READ | FILE_WRITE_ATTRIBUTES;
        let handle = with_access(&handle, access).unwrap_or(handle);
        let mode = Mode::of(handle.as_handle());
        Pipe::with(handle, mode, Role::Reader, MODE_WAIT, 0)
    }

    /// The raw handle, for the calls that take one.
    fn raw(&self) -> HANDLE {
        self.handle.as_raw_handle() as HANDLE
    }
}

/// Opens a pipe with a 64 KiB buffer whose ends are synchronous and not
/// inheritable (the NULL `SECURITY_ATTRIBUTES`).
pub(crate) fn pipe() -> io::Result<(Pipe, Pipe)> {
    create_pipe(PIPE_SIZE)
}

/// `CreatePipe` with the buffer quota `size`: synchronous ends, not
/// inheritable (the NULL `SECURITY_ATTRIBUTES`). The read end is the pipe's
/// server end.
fn create_pipe(size: u32) -> io::Result<(Pipe, Pipe)> {
    let mut read: HANDLE = ptr::null_mut();
    let mut write: HANDLE = ptr::null_mut();
    // SAFETY: both out-pointers are writable locals; a NULL security
    // attributes pointer is allowed and means "not inheritable".
    cvt(unsafe { CreatePipe(&mut read, &mut write, ptr::null(), size) })?;
    // SAFETY: CreatePipe succeeded, so both handles are open and owned by
    // nobody else.
    let (read, write) = unsafe {
        (
            OwnedHandle::from_raw_handle(read as RawHandle),
            OwnedHandle::from_raw_handle(write as RawHandle),
        )
    };
    Ok((
        Pipe::with(
            read,
            Mode::Synchronous,
            Role::Reader,
            MODE_WAIT,
            size as usize,
        ),
        Pipe::with(
            write,
            Mode::Synchronous,
            Role::Writer,
            MODE_WAIT,
            size as usize,
        ),
    ))
}

pub(crate) fn dup_stdin() -> io::Result<Pipe> {
    dup_std(io::stdin().as_handle(), "input", Role::Reader)
}

pub(crate) fn dup_stdout() -> io::Result<Pipe> {
    dup_std(io::stdout().as_handle(), "output", Role::Writer)
}

pub(crate) fn dup_stderr() -> io::Result<Pipe> {
    dup_std(io::stderr().as_handle(), "error", Role::Writer)
}

/// Duplicates a standard handle, not inheritable. std returns NULL for a
/// stream the process was started without; duplicating that would fail with
/// a bare `ERROR_INVALID_HANDLE`, so it gets an error that names the stream.
/// `INVALID_HANDLE_VALUE` is checked too: it is what `GetStdHandle` itself
/// returns for a missing handle, and as a handle it means the current
/// process, which must not be duplicated in its place.
///
/// The parent chose how the handle was opened, so its mode is asked for.
fn dup_std(handle: BorrowedHandle<'_>, stream: &str, role: Role) -> io::Result<Pipe> {
    let raw = handle.as_raw_handle();
    if raw.is_null() || ptr::eq(raw, INVALID_HANDLE_VALUE) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("pipekit: this process has no standard {stream} handle to duplicate"),
        ));
    }
    let handle = handle.try_clone_to_owned()?;
    Ok(Pipe::from_foreign(handle, role))
}

/// A duplicate of `handle` in this process with the access `access`, not
/// inheritable; `None` if the system refuses (a file handle generally
/// cannot gain rights its opener was not granted, but the object's security
/// decides).
fn with_access(handle: &OwnedHandle, access: u32) -> Option<OwnedHandle> {
    let mut duplicate: HANDLE = ptr::null_mut();
    // SAFETY: the pseudo-handle of the current process is always valid,
    // `handle` is open during the call, and `duplicate` is a writable local.
    let duplicated = cvt(unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            handle.as_raw_handle() as HANDLE,
            GetCurrentProcess(),
            &mut duplicate,
            access,
            0,
            0,
        )
    });
    // SAFETY: DuplicateHandle succeeded, so `duplicate` is open and owned by
    // nobody else.
    duplicated
        .ok()
        .map(|_| unsafe { OwnedHandle::from_raw_handle(duplicate as RawHandle) })
}

/// One transfer, in either direction, on the caller's buffer.
enum Transfer<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Pipe {
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // A zero-length `ReadFile` on a pipe waits for data to arrive; a
        // zero-length read returns at once everywhere else.
        if buf.is_empty() {
            return Ok(0);
        }
        read_result(self.transfer(Transfer::Read(buf), None))
    }

    pub(crate) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match bufs.iter_mut().find(|buf| !buf.is_empty()) {
            Some(buf) => self.read(buf),
            None => Ok(0),
        }
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // A zero-length `WriteFile` on a pipe can complete a pending read
        // with 0 bytes, which that reader takes for end of file.
        if buf.is_empty() {
            return Ok(0);
        }
        let buf = &buf[..buf.len().min(MAX_WRITE)];
        match self.transfer(Transfer::Write(buf), None) {
            // `PIPE_NOWAIT`: the pipe takes a write whole or not at all.
            Ok(0) => self.write_what_fits(buf),
            result => write_result(result),
        }
    }

    /// After a `PIPE_NOWAIT` write of all of `buf` found too little room:
    /// writes half as much, then half of that, down to one byte, and stops
    /// at the first that fits. That first fit is more than half the free
    /// room, so a write that can make progress does, in at most
    /// log2(`buf.len()`) calls. `WouldBlock` once not one byte fits.
    fn write_what_fits(&self, buf: &[u8]) -> io::Result<usize> {
        let mut len = buf.len();
        while len > 1 {
            len /= 2;
            match self.transfer(Transfer::Write(&buf[..len]), None) {
                Ok(0) => {}
                result => return write_result(result),
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|buf| !buf.is_empty()) {
            Some(buf) => self.write(buf),
            None => Ok(0),
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Pipe> {
        // DuplicateHandle with DUPLICATE_SAME_ACCESS, not inheritable. The
        // duplicate shares the file object, so it has the same mode.
        Ok(Pipe {
            handle: self.handle.try_clone()?,
            mode: self.mode,
            role: self.role,
            wait_mode: Arc::clone(&self.wait_mode),
            quota: self.quota,
        })
    }

    pub(crate) fn into_stdio(self) -> Stdio {
        Stdio::from(self.into_synchronous())
    }

    /// The handle to give a child or std, which read and write it
    /// synchronously: this one if it is synchronous. An overlapped one is
    /// never handed over (a synchronous `ReadFile` on it waits on the file
    /// handle itself and loses wake-ups as soon as anything else uses the
    /// pipe, rust-lang/rust#38811); instead it stays here, and the
    /// synchronous end of a new pipe is handed over, with a thread that
    /// relays between the two until either side is done, as std does for
    /// its own child pipes. Should the system fail to create that pipe or
    /// thread, the handle is handed over as it is.
    pub(crate) fn into_synchronous(self) -> OwnedHandle {
        if self.mode == Mode::Synchronous {
            return self.handle;
        }
        match self.relay() {
            Ok(handle) => handle,
            Err(pipe) => pipe.handle,
        }
    }

    /// Starts the relay of `into_synchronous` and returns the handle to
    /// hand over; gives `self` back if it cannot.
    fn relay(self) -> Result<OwnedHandle, Pipe> {
        let (tx, rx) = mpsc::channel::<(Pipe, Pipe)>();
        let thread = thread::Builder::new()
            .name("pipekit-relay".to_string())
            .stack_size(RELAY_STACK)
            .spawn(move || {
                if let Ok((from, to)) = rx.recv() {
                    relay(&from, &to);
                }
            });
        if thread.is_err() {
            return Err(self);
        }
        let Ok((reader, writer)) = create_pipe(PIPE_SIZE) else {
            return Err(self);
        };
        let (theirs, from, to) = match self.role {
            // The other side reads what this end reads.
            Role::Reader => (reader.handle, self, writer),
            // The other side writes what this end writes.
            Role::Writer => (writer.handle, reader, self),
        };
        // The thread is waiting for them; it only goes away once it has them.
        let _ = tx.send((from, to));
        Ok(theirs)
    }

    /// One `ReadFile` or `WriteFile` of at most `u32::MAX` bytes: without
    /// limit, or cancelled if it has not completed within `timeout`. An
    /// overlapped handle waits for its own event with that limit and then
    /// cancels with `CancelIoEx`; a synchronous one blocks in the call, which
    /// a timer cancels with `CancelSynchronousIo` (see `timer`).
    fn transfer(&self, mut transfer: Transfer<'_>, timeout: Option<Duration>) -> io::Result<usize> {
        let handle = self.raw();
        let what = match transfer {
            Transfer::Read(_) => "read",
            Transfer::Write(_) => "write",
        };
        match self.mode {
            Mode::Synchronous => match timeout {
                Some(timeout) => timer::transfer(handle, &mut transfer, timeout, what),
                None => {
                    let mut done = 0u32;
                    // SAFETY: `transfer` holds a buffer valid for its length
                    // and `done` is a writable local; a synchronous handle
                    // takes no OVERLAPPED, and the call returns once the
                    // transfer is over.
                    cvt(unsafe { start(handle, &mut transfer, &mut done, ptr::null_mut()) })?;
                    Ok(done as usize)
                }
            },
            Mode::Overlapped => {
                let event = new_event()?;
                // Offset 0 (pipes ignore it), nothing pending. Setting the
                // low bit of a valid event handle keeps the completion from
                // being queued to an I/O completion port the handle may be
                // bound to, whose owner would otherwise receive a pointer to
                // this stack frame; the kernel ignores the bit when it uses
                // the event.
                let mut overlapped = OVERLAPPED {
                    hEvent: (event.as_raw_handle() as usize | 1) as HANDLE,
                    ..OVERLAPPED::default()
                };
                // From here on the kernel may write `overlapped` until the
                // operation completes, so it is only used through this
                // pointer.
                let overlapped: *mut OVERLAPPED = &mut overlapped;
                // SAFETY: `transfer` holds a buffer valid for its length, and
                // both it and `overlapped` stay in place until `wait` below
                // returns, which is only once the operation is over.
                let started =
                    cvt(unsafe { start(handle, &mut transfer, ptr::null_mut(), overlapped) });
                match started {
                    Ok(_) => {}
                    Err(err) if is_error(&err, ERROR_IO_PENDING) => {}
                    // Failed before it was queued: nothing is in flight.
                    Err(err) => return Err(err),
                }
                // With a timeout: wait for the event that long, and if the
                // operation is still running then, cancel it. What stopped
                // the wait is kept for when the cancellation wins.
                let wait_for =
                    |timeout| wait_until(event.as_handle(), Instant::now().checked_add(timeout));
                let stopped = match timeout.map(|timeout| (timeout, wait_for(timeout))) {
                    None | Some((_, Ok(true))) => None,
                    Some((timeout, Ok(false))) => Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "pipekit: the {what} did not complete within the {timeout:?} timeout"
                        ),
                    )),
                    // The wait failed: stop as at a timeout, but report why.
                    Some((_, Err(err))) => Some(err),
                };
                if stopped.is_some() {
                    // SAFETY: `overlapped` is the OVERLAPPED of an operation
                    // started on `handle`, still in place. The call only
                    // requests the cancellation; it fails with
                    // ERROR_NOT_FOUND if the operation has completed
                    // meanwhile, and either way `wait` below tells how the
                    // operation ended, so its result is not needed.
                    unsafe { CancelIoEx(handle, overlapped) };
                }
                // SAFETY: `overlapped` started the operation on `handle`, and
                // its event (`event`, open until the end of this scope) is
                // signalled by this operation only.
                let (result, done) = unsafe { wait(handle, overlapped) };
                match (result, stopped) {
                    // Completed, even if it raced the cancellation.
                    (Ok(()), _) => Ok(done),
                    // Cancelled. A write may have moved some bytes before
                    // it was; those were written, and are reported.
                    (Err(err), Some(stopped)) if is_error(&err, ERROR_OPERATION_ABORTED) => {
                        if done > 0 {
                            Ok(done)
                        } else {
                            Err(stopped)
                        }
                    }
                    (Err(err), _) => Err(err),
                }
            }
        }
    }
}

/// The stack a relay thread reserves: its buffer is on the heap, and
/// `ReadFile`/`WriteFile` hooks need room.
const RELAY_STACK: usize = 256 * 1024;

/// Copies from `from` to `to` until `from` ends or either fails (the other
/// side gone); both are closed when the caller drops them.
fn relay(from: &Pipe, to: &Pipe) {
    let mut buf = vec![0; PIPE_SIZE as usize];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            match to.write(rest) {
                Ok(written) => rest = &rest[written..],
                Err(_) => return,
            }
        }
    }
}

/// What a read's result means to the caller.
fn read_result(result: io::Result<usize>) -> io::Result<usize> {
    match result {
        // The last writer is gone: end of file, as on Unix. A pipe whose
        // other end was never connected or has disconnected (a foreign named
        // pipe, ERROR_PIPE_NOT_CONNECTED) has nothing more to give either.
        Err(err)
            if is_error(&err, ERROR_BROKEN_PIPE) || is_error(&err, ERROR_PIPE_NOT_CONNECTED) =>
        {
            Ok(0)
        }
        // A `PIPE_NOWAIT` pipe is empty (STATUS_PIPE_EMPTY). std would
        // report this error as `BrokenPipe`, which it is not on a read.
        Err(err) if is_error(&err, ERROR_NO_DATA) => Err(io::ErrorKind::WouldBlock.into()),
        result => result,
    }
}

/// What a write's result means to the caller; `buf` is not empty. No reader
/// left fails with ERROR_NO_DATA, which std reports as `BrokenPipe`, and
/// stays that.
fn write_result(result: io::Result<usize>) -> io::Result<usize> {
    match result {
        // A `PIPE_NOWAIT` pipe without room succeeds with nothing written.
        // `Ok(0)` would mean "cannot write any more" (`write_all` makes it
        // `WriteZero`), so this is reported as what it is.
        Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
        result => result,
    }
}

/// Starts the `ReadFile` or `WriteFile` that `transfer` describes, with
/// `len` capped at `u32::MAX`. Returns what the call returns.
///
/// # Safety
///
/// `done` must be writable (or NULL when `overlapped` is not), and when
/// `overlapped` is not NULL it and the transfer's buffer must stay valid and
/// in place until the operation has completed.
unsafe fn start(
    handle: HANDLE,
    transfer: &mut Transfer<'_>,
    done: *mut u32,
    overlapped: *mut OVERLAPPED,
) -> BOOL {
    match transfer {
        Transfer::Read(buf) => {
            let len = buf.len().min(u32::MAX as usize) as u32;
            // SAFETY: `buf` is valid for writes of `len` bytes; the caller
            // guarantees `done` and `overlapped`.
            unsafe { ReadFile(handle, buf.as_mut_ptr(), len, done, overlapped) }
        }
        Transfer::Write(buf) => {
            let len = buf.len().min(u32::MAX as usize) as u32;
            // SAFETY: `buf` is valid for reads of `len` bytes; the caller
            // guarantees `done` and `overlapped`.
            unsafe { WriteFile(handle, buf.as_ptr(), len, done, overlapped) }
        }
    }
}

/// A manual-reset event, not signalled, unnamed and not inheritable: the
/// completion signal of one overlapped operation.
fn new_event() -> io::Result<OwnedHandle> {
    // SAFETY: NULL security attributes and a NULL name are allowed.
    let event = cvt(unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) })?;
    // SAFETY: CreateEventW succeeded, so `event` is open and owned by nobody
    // else.
    Ok(unsafe { OwnedHandle::from_raw_handle(event as RawHandle) })
}

/// Waits for the overlapped operation on `overlapped` to complete, and
/// returns its result and how many bytes it moved. The count is also set
/// when the operation failed: a write cancelled part-way has moved some.
///
/// # Safety
///
/// `overlapped` must be the structure an operation on `handle` was started
/// with, still in place, with its own open event in `hEvent`.
unsafe fn wait(handle: HANDLE, overlapped: *mut OVERLAPPED) -> (io::Result<()>, usize) {
    let mut done = 0u32;
    // SAFETY: the caller guarantees `overlapped`; `done` is a writable
    // local. With bWait = TRUE the call waits on `overlapped.hEvent`, which
    // only this operation signals, rather than on the file handle, which any
    // operation on it signals.
    let result = cvt(unsafe { GetOverlappedResult(handle, overlapped, &mut done, 1) });
    // SAFETY: the caller guarantees that `overlapped` is live.
    if result.is_err() && unsafe { pending(overlapped) } {
        abort_in_flight();
    }
    (result.map(drop), done as usize)
}

/// Whether the overlapped operation on `overlapped` is still running (what
/// the SDK's `HasOverlappedIoCompleted` macro asks).
///
/// # Safety
///
/// `overlapped` must point to a live OVERLAPPED that an operation was
/// started with.
unsafe fn pending(overlapped: *const OVERLAPPED) -> bool {
    // SAFETY: the caller guarantees a live OVERLAPPED; the kernel may still
    // be writing `Internal`, hence the volatile read.
    let status = unsafe { ptr::read_volatile(ptr::addr_of!((*overlapped).Internal)) };
    status == STATUS_PENDING as usize
}

/// Ends the process when a wait for an overlapped operation failed while
/// the kernel still owns its buffer and `OVERLAPPED`: returning would let it
/// write into freed memory. std aborts in the same situation.
fn abort_in_flight() -> ! {
    let _ = writeln!(
        io::stderr(),
        "pipekit: waiting for an overlapped pipe operation failed while it was pending"
    );
    std::process::abort();
}

/// Waits until `object` (an event, a process) is signalled (`Ok(true)`) or
/// `deadline` has passed by the monotonic clock (`Ok(false)`); without a
/// deadline, as long as it takes. Each `WaitForSingleObject` waits for the
/// time left rounded up to whole milliseconds, and the clock decides whether
/// it is over, so the wait is never shorter than asked.
pub(super) fn wait_until(
    object: BorrowedHandle<'_>,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    loop {
        let timeout = match deadline {
            None => INFINITE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                wait_millis(left)
            }
        };
        // SAFETY: `object` is borrowed, so an open handle during the call.
        let waited =
            cvt(unsafe { WaitForSingleObject(object.as_raw_handle() as HANDLE, timeout) })?;
        if waited == WAIT_OBJECT_0 {
            return Ok(true);
        }
        // WAIT_TIMEOUT by the millisecond clock; the loop asks the monotonic
        // one.
    }
}

/// `WaitForSingleObject`'s timeout for `left`: whole milliseconds rounded
/// up, and below `INFINITE` (`u32::MAX`), which would wait forever; the loop
/// in `wait_until` goes round again for longer waits.
fn wait_millis(left: Duration) -> u32 {
    let millis = (left.as_nanos() + 999_999) / 1_000_000;
    millis.min(u128::from(INFINITE - 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeout_rounds_up_and_never_means_infinite() {
        assert_eq!(wait_millis(Duration::from_nanos(1)), 1);
        assert_eq!(wait_millis(Duration::from_millis(5)), 5);
        assert_eq!(wait_millis(Duration::from_micros(5_001)), 6);
        assert_eq!(wait_millis(Duration::MAX), INFINITE - 1);
    }
}
