//! The Unix backend: pipe ends are `OwnedFd`s, and every operation is one
//! system call on them.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout, Stdio};

use crate::{PipeReader, PipeWriter};

pub(crate) mod communicate;
mod control;
pub(crate) use control::create;
pub(crate) mod process;
mod splice;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;
pub(crate) use splice::*;
// Apple's `pipe2`, found at run time; built on Linux too for its unit tests.
#[cfg(any(target_vendor = "apple", all(test, target_os = "linux")))]
mod weak;

/// Turns the `-1` that a libc call returns on failure into the error in
/// `errno`. The one place where this backend reads `errno`.
fn cvt<T: Default + PartialOrd>(ret: T) -> io::Result<T> {
    if ret < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The most bytes one `read(2)` or `write(2)` may ask for. POSIX leaves
/// larger counts implementation-defined; Apple's kernels reject counts above
/// `INT_MAX` with `EINVAL`, so they get `INT_MAX - 1`, as std uses.
#[cfg(target_vendor = "apple")]
const MAX_RW: usize = libc::c_int::MAX as usize - 1;
#[cfg(not(target_vendor = "apple"))]
const MAX_RW: usize = isize::MAX as usize;

/// The most buffers one `readv(2)` or `writev(2)` may take: `IOV_MAX` is
/// 1024 on every Unix pipekit builds for (Linux, the BSDs, Apple, illumos).
/// Extra buffers are simply left for the next call, which `Read` and
/// `Write` allow.
const MAX_IOV: usize = 1024;

/// Flags every pipe end is opened with, on the targets that have `pipe2`.
/// NetBSD can also switch `SIGPIPE` off per file.
#[cfg(all(pipekit_pipe2, target_os = "netbsd"))]
const PIPE2_FLAGS: libc::c_int = libc::O_CLOEXEC | libc::O_NOSIGPIPE;
#[cfg(all(pipekit_pipe2, not(target_os = "netbsd")))]
const PIPE2_FLAGS: libc::c_int = libc::O_CLOEXEC;

/// One end of a pipe.
pub(crate) struct Pipe(OwnedFd);

impl fmt::Debug for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipe")
            .field("fd", &self.0.as_raw_fd())
            .finish()
    }
}

#[inline]
pub(crate) fn pipe() -> io::Result<(Pipe, Pipe)> {
    pipe_with_flags(0)
}

/// Opens a pipe whose ends are close-on-exec from the start, with `extra`
/// flags (`O_NONBLOCK`, `O_DIRECT`) given to `pipe2` as well.
#[cfg(pipekit_pipe2)]
#[inline]
fn pipe_with_flags(extra: libc::c_int) -> io::Result<(Pipe, Pipe)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: `fds` is a writable array of two `c_int`s, as pipe2 requires.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), PIPE2_FLAGS | extra) })?;
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { owned_pair(fds) })
}

/// Opens a pipe whose ends are close-on-exec, then sets `extra`
/// (`O_NONBLOCK` only: packet mode is refused before this on these targets).
#[cfg(not(pipekit_pipe2))]
fn pipe_with_flags(extra: libc::c_int) -> io::Result<(Pipe, Pipe)> {
    let (reader, writer) = pipe_cloexec()?;
    if extra & libc::O_NONBLOCK != 0 {
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
    }
    Ok((reader, writer))
}

/// Apple's systems whose running release exports it: `pipe2(O_CLOEXEC)`, found at run time,
/// so the flag is set atomically. Only `O_CLOEXEC` is asked of it: what else
/// Apple's `pipe2` accepts is not documented.
#[cfg(all(not(pipekit_pipe2), target_vendor = "apple"))]
fn pipe_cloexec() -> io::Result<(Pipe, Pipe)> {
    match weak::pipe2() {
        Some(pipe2) => {
            let mut fds = [-1 as RawFd; 2];
            // SAFETY: `pipe2` is the system's pipe2 (see `weak::pipe2`), and
            // `fds` is a writable array of two `c_int`s, as it requires.
            cvt(unsafe { pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
            // SAFETY: pipe2 succeeded, so both fds are open and owned by
            // nobody else.
            Ok(unsafe { owned_pair(fds) })
        }
        None => pipe_then_cloexec(),
    }
}

#[cfg(all(not(pipekit_pipe2), not(target_vendor = "apple")))]
fn pipe_cloexec() -> io::Result<(Pipe, Pipe)> {
    pipe_then_cloexec()
}

/// Opens a pipe, then marks both ends close-on-exec. Both fds are owned
/// before the first fallible call, so an error closes them.
#[cfg(not(pipekit_pipe2))]
fn pipe_then_cloexec() -> io::Result<(Pipe, Pipe)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: `fds` is a writable array of two `c_int`s, as pipe requires.
    cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    // SAFETY: pipe succeeded, so both fds are open and owned by nobody else.
    let (reader, writer) = unsafe { owned_pair(fds) };
    set_cloexec(&reader.0)?;
    set_cloexec(&writer.0)?;
    Ok((reader, writer))
}

/// Takes ownership of the two fds a successful `pipe`/`pipe2` returned.
///
/// # Safety
///
/// Both fds must be open and owned by no other object.
#[inline]
unsafe fn owned_pair(fds: [RawFd; 2]) -> (Pipe, Pipe) {
    // SAFETY: the caller guarantees each fd is open and unowned.
    unsafe {
        (
            Pipe(OwnedFd::from_raw_fd(fds[0])),
            Pipe(OwnedFd::from_raw_fd(fds[1])),
        )
    }
}

#[cfg(not(pipekit_pipe2))]
fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: `fd` is open for the duration of the call; F_SETFD takes an int.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}

pub(crate) fn dup_stdin() -> io::Result<Pipe> {
    dup(io::stdin().as_fd())
}

pub(crate) fn dup_stdout() -> io::Result<Pipe> {
    dup(io::stdout().as_fd())
}

pub(crate) fn dup_stderr() -> io::Result<Pipe> {
    dup(io::stderr().as_fd())
}

/// One `fcntl(F_DUPFD_CLOEXEC, 3)`: the duplicate is close-on-exec and never
/// lands on a standard stream's number. The call std's
/// `BorrowedFd::try_clone_to_owned` makes, without the instructions around
/// it.
#[inline]
fn dup(fd: BorrowedFd<'_>) -> io::Result<Pipe> {
    // SAFETY: `fd` is borrowed, so open during the call; F_DUPFD_CLOEXEC
    // takes an int (the lowest number the duplicate may have).
    let new = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: fcntl succeeded, so `new` is an open fd that nothing else owns.
    Ok(Pipe(unsafe { OwnedFd::from_raw_fd(new) }))
}

impl Pipe {
    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(MAX_RW);
        // SAFETY: `buf` is valid for writes of `len` bytes; the fd is open.
        let n = cvt(unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), len) })?;
        Ok(n as usize)
    }

    pub(crate) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(MAX_IOV) as libc::c_int;
        // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix (std
        // documents this), each slice is valid for writes of its length, and
        // `count` does not exceed `bufs.len()`.
        let n = cvt(unsafe { libc::readv(self.0.as_raw_fd(), bufs.as_mut_ptr().cast(), count) })?;
        Ok(n as usize)
    }

    /// Reads at most `max` bytes straight into `vec`'s spare capacity, which
    /// must be at least `max`, and appends them.
    pub(crate) fn read_spare(&self, vec: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let len = max.min(vec.capacity() - vec.len()).min(MAX_RW);
        // SAFETY: the pointer is to the vector's spare capacity, which has
        // room for `len` bytes; read writes only there.
        let n = cvt(unsafe {
            libc::read(
                self.0.as_raw_fd(),
                vec.as_mut_ptr().add(vec.len()).cast(),
                len,
            )
        })? as usize;
        // SAFETY: read initialised the first `n <= len` spare bytes.
        unsafe { vec.set_len(vec.len() + n) };
        Ok(n)
    }

    #[inline]
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len().min(MAX_RW);
        // SAFETY: `buf` is valid for reads of `len` bytes; the fd is open.
        let n = cvt(unsafe { libc::write(self.0.as_raw_fd(), buf.as_ptr().cast(), len) })?;
        Ok(n as usize)
    }

    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(MAX_IOV) as libc::c_int;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, each
        // slice is valid for reads of its length, and `count` does not
        // exceed `bufs.len()`.
        let n = cvt(unsafe { libc::writev(self.0.as_raw_fd(), bufs.as_ptr().cast(), count) })?;
        Ok(n as usize)
    }

    #[inline]
    pub(crate) fn try_clone(&self) -> io::Result<Pipe> {
        dup(self.0.as_fd())
    }

    pub(crate) fn into_stdio(self) -> Stdio {
        Stdio::from(self.0)
    }
}

/// The fd traits and conversions, the same for both ends.
macro_rules! fd_impls {
    ($end:ident) => {
        impl AsFd for $end {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner().0.as_fd()
            }
        }

        impl AsRawFd for $end {
            fn as_raw_fd(&self) -> RawFd {
                self.inner().0.as_raw_fd()
            }
        }

        impl IntoRawFd for $end {
            fn into_raw_fd(self) -> RawFd {
                self.into_inner().0.into_raw_fd()
            }
        }

        impl FromRawFd for $end {
            /// Takes ownership of `fd`, which should be a pipe end open for
            /// the matching direction (any fd works, as with `File`).
            ///
            /// # Safety
            ///
            /// `fd` must be open and owned by nothing else: it is closed when
            /// the result is dropped.
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: the caller passes ownership of an open fd.
                Self::from_inner(Pipe(unsafe { OwnedFd::from_raw_fd(fd) }))
            }
        }

        impl From<OwnedFd> for $end {
            fn from(fd: OwnedFd) -> Self {
                Self::from_inner(Pipe(fd))
            }
        }

        impl From<$end> for OwnedFd {
            fn from(end: $end) -> OwnedFd {
                end.into_inner().0
            }
        }

        // Only compiled when build.rs found Rust 1.87 or later; the
        // internal cfg is kept out of the rendered docs (lib.rs), which say
        // "Rust 1.87 or later" instead.
        #[cfg(pipekit_std_pipe)]
        #[allow(clippy::incompatible_msrv)]
        #[doc = concat!(
            "Converts std's [`std::io::", stringify!($end), "`] into a pipekit [`",
            stringify!($end), "`]; no system call.\n\n",
            "Available when pipekit is built with Rust 1.87 or later, which added std's pipe types."
        )]
        impl From<std::io::$end> for $end {
            /// Takes over a pipe end made by `std::io::pipe`; no system call.
            fn from(end: std::io::$end) -> Self {
                Self::from_inner(Pipe(OwnedFd::from(end)))
            }
        }

        #[cfg(pipekit_std_pipe)]
        #[allow(clippy::incompatible_msrv)]
        #[doc = concat!(
            "Converts a pipekit [`", stringify!($end), "`] into std's [`std::io::",
            stringify!($end), "`]; no system call.\n\n",
            "Available when pipekit is built with Rust 1.87 or later, which added std's pipe types."
        )]
        impl From<$end> for std::io::$end {
            /// Hands the end to std, whose `io::copy` then moves data with
            /// `splice(2)` on Linux; no system call.
            fn from(end: $end) -> Self {
                Self::from(end.into_inner().0)
            }
        }
    };
}

fd_impls!(PipeReader);
fd_impls!(PipeWriter);

impl From<ChildStdout> for PipeReader {
    /// Takes over a child's standard output pipe; no system call.
    fn from(stdout: ChildStdout) -> Self {
        Self::from_inner(Pipe(OwnedFd::from(stdout)))
    }
}

impl From<ChildStderr> for PipeReader {
    /// Takes over a child's standard error pipe; no system call.
    fn from(stderr: ChildStderr) -> Self {
        Self::from_inner(Pipe(OwnedFd::from(stderr)))
    }
}

impl From<ChildStdin> for PipeWriter {
    /// Takes over a child's standard input pipe; no system call.
    fn from(stdin: ChildStdin) -> Self {
        Self::from_inner(Pipe(OwnedFd::from(stdin)))
    }
}
