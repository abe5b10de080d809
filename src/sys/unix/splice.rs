//! Moving data between file descriptors: `splice(2)` and `tee(2)` on Linux
//! and Android, and the engine behind `pipekit::splice::copy` on every Unix
//! (`splice` where it is allowed, a read/write loop through one large buffer
//! otherwise).
//!
//! Every function here takes borrowed fds, so an fd can never be closed or
//! leaked by this module.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::control::poll_until;
use super::cvt;

/// The fallback loop's buffer never holds less than this: a Linux pipe's
/// default capacity, and the size of pipekit's Windows pipes.
const MIN_BUFFER: usize = 64 * 1024;

/// Nor more than this, however large the pipe (a pipe above Linux's default
/// `pipe-max-size` of 1 MiB can only be made by a privileged process).
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_BUFFER: usize = 4 * 1024 * 1024;

/// Copies from `reader` to `writer` until `reader` reports end of file, and
/// returns the number of bytes written to `writer`.
///
/// On Linux and Android, `splice(2)` moves the data when `reader` is a pipe
/// or a socket (see [`kernel_copy_allowed`]); when the kernel refuses it for
/// this pair of fds, or has no `splice`, the loop takes over from where
/// splicing stopped, so no byte is lost or counted twice. A nonblocking end
/// is waited for with `poll(2)` instead of failing with `WouldBlock`; an
/// interrupted call is retried.
pub(crate) fn copy(reader: BorrowedFd<'_>, writer: BorrowedFd<'_>) -> io::Result<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let copied = {
        let mut copied = 0u64;
        if linux::splice_all(reader, writer, &mut copied)? == linux::Spliced::ToEnd {
            return Ok(copied);
        }
        copied
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let copied = 0;
    copy_loop(reader, writer, copied)
}

/// The read/write loop, through one buffer as large as the pipe (at least
/// [`MIN_BUFFER`]). `copied` is what an earlier stage already moved; the
/// result includes it.
fn copy_loop(reader: BorrowedFd<'_>, writer: BorrowedFd<'_>, mut copied: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; buffer_size(reader, writer)];
    loop {
        let n = match read(reader, &mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(err) => match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    wait(reader, libc::POLLIN)?;
                    continue;
                }
                _ => return Err(err),
            },
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            match write(writer, rest) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "pipekit: the writer accepted no bytes",
                    ))
                }
                Ok(written) => {
                    rest = &rest[written..];
                    copied += written as u64;
                }
                Err(err) => match err.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => wait(writer, libc::POLLOUT)?,
                    _ => return Err(err),
                },
            }
        }
    }
}

/// The loop's buffer size: the capacity of whichever end is a pipe, within
/// [`MIN_BUFFER`] and [`MAX_BUFFER`].
#[cfg(any(target_os = "linux", target_os = "android"))]
fn buffer_size(reader: BorrowedFd<'_>, writer: BorrowedFd<'_>) -> usize {
    let capacity = |fd: BorrowedFd<'_>| {
        // SAFETY: F_GETPIPE_SZ takes no argument; `fd` is borrowed, so open.
        // On an fd that is not a pipe it fails (EBADF), which means "unknown".
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) }).ok()
    };
    let known = capacity(reader).or_else(|| capacity(writer)).unwrap_or(0);
    (known as usize).clamp(MIN_BUFFER, MAX_BUFFER)
}

/// Other systems cannot tell a pipe's capacity; 64 KiB is what most of them
/// have.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn buffer_size(_reader: BorrowedFd<'_>, _writer: BorrowedFd<'_>) -> usize {
    MIN_BUFFER
}

/// One `read(2)` into `buf`.
fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // `buf` never exceeds MAX_BUFFER, so no length cap is needed.
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `fd` is
    // borrowed, so it stays open during the call.
    let n = cvt(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// One `write(2)` from `buf`.
fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes; `fd` is
    // borrowed, so it stays open during the call.
    let n = cvt(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// Waits without limit until `fd` is ready for `events` (or hung up, or in
/// error: the call that follows reports which).
fn wait(fd: BorrowedFd<'_>, events: libc::c_short) -> io::Result<()> {
    poll_until(fd, events, None).map(drop)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::{splice, tee, SPLICE_F_MORE, SPLICE_F_MOVE, SPLICE_F_NONBLOCK};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
    use std::ptr;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{cvt, wait};

    pub(crate) const SPLICE_F_MOVE: u32 = libc::SPLICE_F_MOVE;
    pub(crate) const SPLICE_F_NONBLOCK: u32 = libc::SPLICE_F_NONBLOCK;
    pub(crate) const SPLICE_F_MORE: u32 = libc::SPLICE_F_MORE;

    /// The most bytes Linux moves in one call (`MAX_RW_COUNT`, `INT_MAX`
    /// rounded down to a page); larger lengths are capped to it.
    const MAX_LEN: usize = 0x7fff_f000;

    /// Cleared for good once `splice` fails with `ENOSYS` (no such system
    /// call), or with `EPERM` both for a pair of fds and for a trivial probe
    /// between two fresh pipes (forbidden for the whole process or thread,
    /// e.g. by seccomp): neither depends on the fds, so trying again would
    /// only cost a system call. An `EPERM` that the probe does not repeat
    /// belongs to the fds (a sealed memfd, a fanotify permission event) and
    /// makes only that copy fall back.
    static HAS_SPLICE: AtomicBool = AtomicBool::new(true);

    /// One `splice(2)` from `fd_in` to `fd_out`, both at their file offsets.
    pub(crate) fn splice(
        fd_in: BorrowedFd<'_>,
        fd_out: BorrowedFd<'_>,
        len: usize,
        flags: u32,
    ) -> io::Result<usize> {
        call(raw_splice, fd_in, fd_out, len, flags)
    }

    /// One `tee(2)` from the pipe `fd_in` to the pipe `fd_out`.
    pub(crate) fn tee(
        fd_in: BorrowedFd<'_>,
        fd_out: BorrowedFd<'_>,
        len: usize,
        flags: u32,
    ) -> io::Result<usize> {
        call(raw_tee, fd_in, fd_out, len, flags)
    }

    /// Calls `raw_splice` or `raw_tee` with the length capped to what one
    /// call may move.
    fn call(
        raw: unsafe fn(i32, i32, usize, u32) -> isize,
        fd_in: BorrowedFd<'_>,
        fd_out: BorrowedFd<'_>,
        len: usize,
        flags: u32,
    ) -> io::Result<usize> {
        // SAFETY: both fds are borrowed, so open during the call, which is
        // all `raw_splice` and `raw_tee` require (they pass no pointer of
        // ours: splice's offsets are null, tee takes none).
        let n = cvt(unsafe {
            raw(
                fd_in.as_raw_fd(),
                fd_out.as_raw_fd(),
                len.min(MAX_LEN),
                flags,
            )
        })?;
        Ok(n as usize)
    }

    /// `splice` through libc on Linux.
    ///
    /// # Safety
    ///
    /// As for `splice(2)` with null offsets: the fds must stay open.
    #[cfg(target_os = "linux")]
    unsafe fn raw_splice(fd_in: i32, fd_out: i32, len: usize, flags: u32) -> isize {
        // SAFETY: the caller keeps the fds open; the offsets are null.
        unsafe { libc::splice(fd_in, ptr::null_mut(), fd_out, ptr::null_mut(), len, flags) }
    }

    /// `splice` as a raw system call on Android, whose libc has the wrapper
    /// only from API level 21 (std does the same).
    ///
    /// # Safety
    ///
    /// As for `splice(2)` with null offsets: the fds must stay open.
    #[cfg(target_os = "android")]
    unsafe fn raw_splice(fd_in: i32, fd_out: i32, len: usize, flags: u32) -> isize {
        // SAFETY: the caller keeps the fds open; the offsets are null, and
        // the arguments have the kernel's types and order.
        unsafe {
            libc::syscall(
                libc::SYS_splice,
                fd_in,
                ptr::null_mut::<libc::loff_t>(),
                fd_out,
                ptr::null_mut::<libc::loff_t>(),
                len,
                flags,
            ) as isize
        }
    }

    /// # Safety
    ///
    /// As for `tee(2)`: the fds must stay open.
    #[cfg(target_os = "linux")]
    unsafe fn raw_tee(fd_in: i32, fd_out: i32, len: usize, flags: u32) -> isize {
        // SAFETY: the caller keeps the fds open; tee takes no pointer.
        unsafe { libc::tee(fd_in, fd_out, len, flags) }
    }

    /// # Safety
    ///
    /// As for `tee(2)`: the fds must stay open.
    #[cfg(target_os = "android")]
    unsafe fn raw_tee(fd_in: i32, fd_out: i32, len: usize, flags: u32) -> isize {
        // SAFETY: the caller keeps the fds open; the arguments have the
        // kernel's types and order.
        unsafe { libc::syscall(libc::SYS_tee, fd_in, fd_out, len, flags) as isize }
    }

    #[derive(Debug, PartialEq, Eq)]
    pub(super) enum Spliced {
        /// The reader reported end of file: the copy is complete.
        ToEnd,
        /// `splice` cannot (or must not) be used for these fds; the loop
        /// continues from the count reached.
        Fallback,
    }

    /// Splices from `reader` to `writer` until end of file, adding each
    /// call's bytes to `copied` as it returns, so that a fallback part way
    /// continues with an exact count.
    pub(super) fn splice_all(
        reader: BorrowedFd<'_>,
        writer: BorrowedFd<'_>,
        copied: &mut u64,
    ) -> io::Result<Spliced> {
        if !HAS_SPLICE.load(Ordering::Relaxed) || !kernel_copy_allowed(reader) {
            return Ok(Spliced::Fallback);
        }
        loop {
            match splice(reader, writer, MAX_LEN, 0) {
                Ok(0) => return Ok(Spliced::ToEnd),
                Ok(n) => *copied += n as u64,
                Err(err) => match err.raw_os_error() {
                    Some(libc::EINTR) => {}
                    // A nonblocking end: wait for whichever is not ready.
                    // Both waits return at once for an end that is ready.
                    Some(libc::EAGAIN) => {
                        wait(reader, libc::POLLIN)?;
                        wait(writer, libc::POLLOUT)?;
                    }
                    Some(libc::ENOSYS) => {
                        HAS_SPLICE.store(false, Ordering::Relaxed);
                        return Ok(Spliced::Fallback);
                    }
                    Some(libc::EPERM) => {
                        if !probe() {
                            HAS_SPLICE.store(false, Ordering::Relaxed);
                        }
                        return Ok(Spliced::Fallback);
                    }
                    // These fds do not support splice (neither is a pipe, a
                    // file system without splice, an O_APPEND file, ...).
                    // Only this pair is concerned, so nothing is cached.
                    Some(libc::EINVAL) => return Ok(Spliced::Fallback),
                    _ => return Err(err),
                },
            }
        }
    }

    /// Whether `splice` works at all here: one byte spliced from a fresh
    /// pipe into another. `false` only if the kernel refuses it with `EPERM`
    /// or `ENOSYS`; any other failure (no fds left) says nothing about
    /// splice, so it counts as working.
    fn probe() -> bool {
        let Ok((from_reader, from_writer)) = super::super::pipe() else {
            return true;
        };
        let Ok((_to_reader, to_writer)) = super::super::pipe() else {
            return true;
        };
        if from_writer.write(b"p").is_err() {
            return true;
        }
        match splice(from_reader.0.as_fd(), to_writer.0.as_fd(), 1, 0) {
            Err(err) => !matches!(err.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)),
            Ok(_) => true,
        }
    }

    /// std's `safe_kernel_copy` rule, for a copy whose writer may be a pipe:
    /// splicing is allowed when the data comes from a pipe or a socket.
    /// Their bytes were copied in by the sender (or given up by it on
    /// purpose, with `vmsplice`), so they cannot change afterwards.
    ///
    /// Any other reader, a regular file above all, is never spliced: `splice`
    /// would put references to its page cache into the pipe, and a change to
    /// the file made after `copy` returned would still reach whoever reads
    /// the pipe later, which `Read`/`Write` semantics do not allow. Such a
    /// reader could only be spliced into a pipe (one side must be a pipe),
    /// so this rules out exactly the unsafe pairs. One `fstat`; if it fails,
    /// the loop (whose `read` reports the real problem) is used.
    fn kernel_copy_allowed(reader: BorrowedFd<'_>) -> bool {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `stat` is writable memory for one `struct stat`; the fd
        // is borrowed, so open.
        if unsafe { libc::fstat(reader.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
            return false;
        }
        // SAFETY: fstat succeeded, so it filled in `stat`.
        let mode = unsafe { stat.assume_init() }.st_mode & libc::S_IFMT;
        mode == libc::S_IFIFO || mode == libc::S_IFSOCK
    }
}
