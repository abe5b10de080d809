//! Pipe control on Unix: creation options, nonblocking mode, capacity, bytes
//! available, and waits with a timeout.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::{cvt, pipe_with_flags, Pipe};
use crate::error::explain;
use crate::PipeOptions;

/// The size up to which a write to a pipe is atomic, and so, after `poll`
/// reports the pipe writable, certain not to block (POSIX `PIPE_BUF`).
#[cfg(pipekit_libc_pipe_buf)]
#[allow(clippy::unnecessary_cast)] // a `c_int` on illumos and Solaris
pub(super) const PIPE_BUF: usize = libc::PIPE_BUF as usize;
/// POSIX's minimum, where libc does not say.
#[cfg(not(pipekit_libc_pipe_buf))]
pub(super) const PIPE_BUF: usize = 512;

pub(crate) fn create(options: &PipeOptions) -> io::Result<(Pipe, Pipe)> {
    let mut flags = 0;
    if options.packet_mode {
        flags |= packet_mode_flag()?;
    }
    let both_nonblocking = options.reader_nonblocking && options.writer_nonblocking;
    if both_nonblocking {
        flags |= libc::O_NONBLOCK;
    }
    let (reader, writer) = pipe_with_flags(flags).map_err(|err| {
        if options.packet_mode && err.raw_os_error() == Some(libc::EINVAL) {
            explain(
                err,
                "pipekit: packet mode (O_DIRECT) was refused by the kernel; it needs Linux 3.4 or later"
                    .to_string(),
            )
        } else {
            err
        }
    })?;
    if !both_nonblocking {
        if options.reader_nonblocking {
            reader.set_nonblocking(true)?;
        }
        if options.writer_nonblocking {
            writer.set_nonblocking(true)?;
        }
    }
    if let Some(bytes) = options.capacity {
        writer.set_capacity(bytes)?;
    }
    Ok((reader, writer))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn packet_mode_flag() -> io::Result<libc::c_int> {
    Ok(libc::O_DIRECT)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn packet_mode_flag() -> io::Result<libc::c_int> {
    Err(crate::error::unsupported("packet mode (O_DIRECT pipes)"))
}

impl Pipe {
    /// Linux: one `ioctl(FIONBIO)`, as std does.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let mut on = libc::c_int::from(nonblocking);
        // SAFETY: FIONBIO reads one `c_int` through the pointer, which points
        // to a live local; the fd is open.
        cvt(unsafe { libc::ioctl(self.0.as_raw_fd(), libc::FIONBIO, &mut on) }).map(drop)
    }

    /// Elsewhere: `fcntl(F_GETFL)` and, if the flag changes, `F_SETFL`.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let flags = self.status_flags()?;
        let new = if nonblocking {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if new != flags {
            // SAFETY: F_SETFL takes an int of flags; the fd is open.
            cvt(unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_SETFL, new) })?;
        }
        Ok(())
    }

    pub(crate) fn nonblocking(&self) -> io::Result<bool> {
        Ok(self.status_flags()? & libc::O_NONBLOCK != 0)
    }

    pub(super) fn status_flags(&self) -> io::Result<libc::c_int> {
        // SAFETY: F_GETFL takes no argument; the fd is open.
        cvt(unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_GETFL) })
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn capacity(&self) -> io::Result<usize> {
        // SAFETY: F_GETPIPE_SZ takes no argument; the fd is open.
        let size = cvt(unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_GETPIPE_SZ) })?;
        Ok(size as usize)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn capacity(&self) -> io::Result<usize> {
        Err(crate::error::unsupported("reading a pipe's capacity"))
    }

    /// `bytes` has been checked to fit a `c_int` and be non-zero.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn set_capacity(&self, bytes: usize) -> io::Result<usize> {
        let fd = self.0.as_raw_fd();
        // SAFETY: F_SETPIPE_SZ takes an int; the fd is open.
        match cvt(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes as libc::c_int) }) {
            Ok(granted) => Ok(granted as usize),
            Err(err) => Err(explain_set_capacity(self, bytes, err)),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn set_capacity(&self, _bytes: usize) -> io::Result<usize> {
        Err(crate::error::unsupported("setting a pipe's capacity"))
    }

    pub(crate) fn bytes_available(&self) -> io::Result<usize> {
        let mut available: libc::c_int = 0;
        // SAFETY: FIONREAD writes one `c_int` through the pointer, which
        // points to a live local; the fd is open.
        cvt(unsafe { libc::ioctl(self.0.as_raw_fd(), libc::FIONREAD as _, &mut available) })?;
        Ok(available as usize)
    }

    /// Timed reads and writes work on every Unix fd.
    pub(crate) fn check_timeouts(&self) -> io::Result<()> {
        Ok(())
    }

    /// Waits until a read will not block, or fails with `TimedOut`.
    pub(crate) fn read_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.wait(libc::POLLIN, timeout)?;
        self.read(buf)
    }

    /// Waits until the pipe has room, then writes at most `PIPE_BUF` bytes,
    /// which the pipe then takes without blocking (unless another writer
    /// fills it in between).
    pub(crate) fn write_timeout(&self, buf: &[u8], timeout: Duration) -> io::Result<usize> {
        self.wait(libc::POLLOUT, timeout)?;
        self.write(&buf[..buf.len().min(PIPE_BUF)])
    }

    /// Waits until the fd is ready for `events`, or fails with `TimedOut`
    /// once `timeout` has passed by the monotonic clock.
    fn wait(&self, events: libc::c_short, timeout: Duration) -> io::Result<()> {
        // A timeout too long for the clock to represent is no bound.
        if poll_until(self.0.as_fd(), events, Instant::now().checked_add(timeout))? {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("pipekit: the pipe was not ready within the {timeout:?} timeout"),
            ))
        }
    }
}

/// `poll`s `fd` for `events` until it is ready (readable, writable, hung up
/// or in error: the call that follows reports which), `true`; or until
/// `deadline` has passed by the monotonic clock, `false`. Without a deadline
/// it waits as long as it takes. An interrupted `poll` resumes with the time
/// that is left, so a signal neither shortens nor lengthens the wait.
pub(super) fn poll_until(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    let mut poll_fd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                poll_millis(left)
            }
        };
        // SAFETY: `poll_fd` is one live `pollfd`, and the count is 1; `fd`
        // is borrowed, so open during the call.
        match cvt(unsafe { libc::poll(&mut poll_fd, 1, timeout) }) {
            Ok(n) if n > 0 => return Ok(true),
            // Timed out by poll's millisecond clock; the loop checks the
            // monotonic clock, which decides.
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// `poll`'s timeout in milliseconds, rounded up so that the wait is never
/// shorter than asked, and capped at what a `c_int` holds (the loop in
/// `poll_until` goes round again for longer waits).
pub(super) fn poll_millis(left: Duration) -> libc::c_int {
    let millis = (left.as_nanos() + 999_999) / 1_000_000;
    millis.min(libc::c_int::MAX as u128) as libc::c_int
}

/// Names the limit that made `F_SETPIPE_SZ` fail.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn explain_set_capacity(pipe: &Pipe, bytes: usize, err: io::Error) -> io::Error {
    let what = format!("pipekit: F_SETPIPE_SZ to {bytes} bytes refused");
    let message = match err.raw_os_error() {
        Some(libc::EPERM) => match read_proc_number("/proc/sys/fs/pipe-max-size") {
            Some(max) if bytes > max => format!(
                "{what}: above /proc/sys/fs/pipe-max-size ({max} bytes), which only a process \
                 with CAP_SYS_RESOURCE may exceed (EPERM)"
            ),
            _ => format!(
                "{what}: this user's pipes already use all the pages allowed by \
                 /proc/sys/fs/pipe-user-pages-hard (EPERM)"
            ),
        },
        Some(libc::EBUSY) => match pipe.bytes_available() {
            Ok(held) => format!(
                "{what}: the pipe holds {held} bytes, more than a pipe of that size can (EBUSY)"
            ),
            Err(_) => format!("{what}: the pipe holds more bytes than that (EBUSY)"),
        },
        Some(libc::EINVAL) => format!("{what}: not a size the kernel accepts (EINVAL)"),
        _ => what,
    };
    explain(err, message)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_proc_number(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_timeout_rounds_up_and_saturates() {
        assert_eq!(poll_millis(Duration::from_nanos(1)), 1);
        assert_eq!(poll_millis(Duration::from_millis(5)), 5);
        assert_eq!(poll_millis(Duration::from_micros(5_001)), 6);
        assert_eq!(poll_millis(Duration::MAX), libc::c_int::MAX);
    }
}
