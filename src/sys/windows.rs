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
//! handles this module creates are synchronous by construction, and any
//! other handle is asked with `NtQueryInformationFile(FileModeInformation)`.

use std::ffi::c_void;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Write as _};
use std::mem;
use std::os::windows::io::{
    AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, IntoRawHandle, OwnedHandle, RawHandle,
};
use std::process::{ChildStderr, ChildStdin, ChildStdout, Stdio};
use std::ptr;

use windows_sys::core::BOOL;
use windows_sys::Wdk::Storage::FileSystem::{
    FileModeInformation, NtQueryInformationFile, FILE_MODE_INFORMATION, FILE_SYNCHRONOUS_IO_ALERT,
    FILE_SYNCHRONOUS_IO_NONALERT,
};
use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_IO_PENDING, HANDLE, INVALID_HANDLE_VALUE, STATUS_PENDING,
    STATUS_SUCCESS,
};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::Threading::CreateEventW;
use windows_sys::Win32::System::IO::{GetOverlappedResult, IO_STATUS_BLOCK, OVERLAPPED};

use crate::{PipeReader, PipeWriter};

/// The buffer quota `pipe()` asks for. The system default (`nSize` 0) is
/// 4 KiB, which a child fills far sooner than a 64 KiB Unix pipe; std's own
/// child pipes use 64 KiB too.
const PIPE_SIZE: u32 = 64 * 1024;

/// Return values that mean failure when they are zero: `BOOL`s and the
/// handles that `CreateEventW` and friends return (NULL on failure).
trait IsZero {
    fn is_zero(&self) -> bool;
}

impl IsZero for BOOL {
    fn is_zero(&self) -> bool {
        *self == 0
    }
}

impl IsZero for HANDLE {
    fn is_zero(&self) -> bool {
        self.is_null()
    }
}

/// Turns the zero that a Win32 call returns on failure into the error in
/// `GetLastError`. The one place where this backend reads the last error.
fn cvt<T: IsZero>(ret: T) -> io::Result<T> {
    if ret.is_zero() {
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

/// One end of a pipe.
pub(crate) struct Pipe {
    handle: OwnedHandle,
    mode: Mode,
}

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
    fn from_foreign(handle: OwnedHandle) -> Pipe {
        let mode = Mode::of(handle.as_handle());
        Pipe { handle, mode }
    }
}

/// Opens a pipe with a 64 KiB buffer whose ends are synchronous and not
/// inheritable (the NULL `SECURITY_ATTRIBUTES`).
pub(crate) fn pipe() -> io::Result<(Pipe, Pipe)> {
    let mut read: HANDLE = ptr::null_mut();
    let mut write: HANDLE = ptr::null_mut();
    // SAFETY: both out-pointers are writable locals; a NULL security
    // attributes pointer is allowed and means "not inheritable".
    cvt(unsafe { CreatePipe(&mut read, &mut write, ptr::null(), PIPE_SIZE) })?;
    // SAFETY: CreatePipe succeeded, so both handles are open and owned by
    // nobody else.
    let (read, write) = unsafe {
        (
            OwnedHandle::from_raw_handle(read as RawHandle),
            OwnedHandle::from_raw_handle(write as RawHandle),
        )
    };
    Ok((
        Pipe {
            handle: read,
            mode: Mode::Synchronous,
        },
        Pipe {
            handle: write,
            mode: Mode::Synchronous,
        },
    ))
}

pub(crate) fn dup_stdin() -> io::Result<Pipe> {
    dup_std(io::stdin().as_handle(), "input")
}

pub(crate) fn dup_stdout() -> io::Result<Pipe> {
    dup_std(io::stdout().as_handle(), "output")
}

pub(crate) fn dup_stderr() -> io::Result<Pipe> {
    dup_std(io::stderr().as_handle(), "error")
}

/// Duplicates a standard handle, not inheritable. std returns NULL for a
/// stream the process was started without; duplicating that would fail with
/// a bare `ERROR_INVALID_HANDLE`, so it gets an error that names the stream.
/// `INVALID_HANDLE_VALUE` is checked too: it is what `GetStdHandle` itself
/// returns for a missing handle, and as a handle it means the current
/// process, which must not be duplicated in its place.
///
/// The parent chose how the handle was opened, so its mode is asked for.
fn dup_std(handle: BorrowedHandle<'_>, stream: &str) -> io::Result<Pipe> {
    let raw = handle.as_raw_handle();
    if raw.is_null() || ptr::eq(raw, INVALID_HANDLE_VALUE) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("pipekit: this process has no standard {stream} handle to duplicate"),
        ));
    }
    handle.try_clone_to_owned().map(Pipe::from_foreign)
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
        match self.transfer(Transfer::Read(buf)) {
            // The last writer is gone: end of file, as on Unix.
            Err(err) if is_error(&err, ERROR_BROKEN_PIPE) => Ok(0),
            result => result,
        }
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
        // No reader left fails with ERROR_NO_DATA, which std reports as
        // `ErrorKind::BrokenPipe`.
        self.transfer(Transfer::Write(buf))
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
        })
    }

    pub(crate) fn into_stdio(self) -> Stdio {
        Stdio::from(self.handle)
    }

    /// One `ReadFile` or `WriteFile` of at most `u32::MAX` bytes, and for an
    /// overlapped handle the wait for it to complete.
    fn transfer(&self, mut transfer: Transfer<'_>) -> io::Result<usize> {
        let handle = self.handle.as_raw_handle() as HANDLE;
        match self.mode {
            Mode::Synchronous => {
                let mut done = 0u32;
                // SAFETY: `transfer` holds a buffer valid for its length and
                // `done` is a writable local; a synchronous handle takes no
                // OVERLAPPED, and the call returns once the transfer is over.
                cvt(unsafe { start(handle, &mut transfer, &mut done, ptr::null_mut()) })?;
                Ok(done as usize)
            }
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
                // SAFETY: `overlapped` started the operation on `handle`, and
                // its event (`event`, open until the end of this scope) is
                // signalled by this operation only.
                unsafe { wait(handle, overlapped) }
            }
        }
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

/// Waits for the overlapped operation on `overlapped` to complete and
/// returns how many bytes it moved.
///
/// # Safety
///
/// `overlapped` must be the structure an operation on `handle` was started
/// with, still in place, with its own open event in `hEvent`.
unsafe fn wait(handle: HANDLE, overlapped: *mut OVERLAPPED) -> io::Result<usize> {
    let mut done = 0u32;
    // SAFETY: the caller guarantees `overlapped`; `done` is a writable
    // local. With bWait = TRUE the call waits on `overlapped.hEvent`, which
    // only this operation signals, rather than on the file handle, which any
    // operation on it signals.
    let result = cvt(unsafe { GetOverlappedResult(handle, overlapped, &mut done, 1) });
    if result.is_err() {
        // SAFETY: `overlapped` points to a live OVERLAPPED; the kernel may
        // still be writing `Internal`, hence the volatile read.
        let status = unsafe { ptr::read_volatile(ptr::addr_of!((*overlapped).Internal)) };
        if status == STATUS_PENDING as usize {
            // The wait itself failed while the kernel still owns the buffer
            // and `overlapped`: returning would let it write into freed
            // memory. std aborts in the same situation.
            let _ = writeln!(
                io::stderr(),
                "pipekit: waiting for an overlapped pipe operation failed while it was pending"
            );
            std::process::abort();
        }
    }
    result.map(|_| done as usize)
}

/// The handle traits and conversions, the same for both ends.
macro_rules! handle_impls {
    ($end:ident) => {
        impl AsHandle for $end {
            fn as_handle(&self) -> BorrowedHandle<'_> {
                self.0.handle.as_handle()
            }
        }

        impl AsRawHandle for $end {
            fn as_raw_handle(&self) -> RawHandle {
                self.0.handle.as_raw_handle()
            }
        }

        impl IntoRawHandle for $end {
            fn into_raw_handle(self) -> RawHandle {
                self.0.handle.into_raw_handle()
            }
        }

        impl FromRawHandle for $end {
            /// Takes ownership of `handle`, which should be a pipe end open
            /// for the matching direction (any file handle works, as with
            /// `File`), for synchronous or overlapped I/O: which one is
            /// asked once, here.
            ///
            /// # Safety
            ///
            /// `handle` must be open and owned by nothing else: it is closed
            /// when the result is dropped.
            unsafe fn from_raw_handle(handle: RawHandle) -> Self {
                // SAFETY: the caller passes ownership of an open handle.
                Self(Pipe::from_foreign(unsafe {
                    OwnedHandle::from_raw_handle(handle)
                }))
            }
        }

        impl From<OwnedHandle> for $end {
            /// Takes over `handle`, opened for synchronous or overlapped
            /// I/O; one `NtQueryInformationFile` tells which.
            fn from(handle: OwnedHandle) -> Self {
                Self(Pipe::from_foreign(handle))
            }
        }

        impl From<$end> for OwnedHandle {
            fn from(end: $end) -> OwnedHandle {
                end.0.handle
            }
        }

        // Only compiled when build.rs found Rust 1.87 or later.
        #[cfg(pipekit_std_pipe)]
        #[allow(clippy::incompatible_msrv)]
        impl From<std::io::$end> for $end {
            /// Takes over a pipe end made by `std::io::pipe` (synchronous,
            /// which one `NtQueryInformationFile` confirms).
            fn from(end: std::io::$end) -> Self {
                Self(Pipe::from_foreign(OwnedHandle::from(end)))
            }
        }

        #[cfg(pipekit_std_pipe)]
        #[allow(clippy::incompatible_msrv)]
        impl From<$end> for std::io::$end {
            /// Hands the end to std; no system call. std reads and writes
            /// it as a synchronous handle, so hand it only an end that is.
            fn from(end: $end) -> Self {
                Self::from(end.0.handle)
            }
        }
    };
}

handle_impls!(PipeReader);
handle_impls!(PipeWriter);

impl From<ChildStdout> for PipeReader {
    /// Takes over a child's standard output pipe, which std opens for
    /// overlapped I/O; one `NtQueryInformationFile` confirms the mode.
    fn from(stdout: ChildStdout) -> Self {
        Self(Pipe::from_foreign(OwnedHandle::from(stdout)))
    }
}

impl From<ChildStderr> for PipeReader {
    /// Takes over a child's standard error pipe, which std opens for
    /// overlapped I/O; one `NtQueryInformationFile` confirms the mode.
    fn from(stderr: ChildStderr) -> Self {
        Self(Pipe::from_foreign(OwnedHandle::from(stderr)))
    }
}

impl From<ChildStdin> for PipeWriter {
    /// Takes over a child's standard input pipe, which std opens for
    /// overlapped I/O; one `NtQueryInformationFile` confirms the mode.
    fn from(stdin: ChildStdin) -> Self {
        Self(Pipe::from_foreign(OwnedHandle::from(stdin)))
    }
}
