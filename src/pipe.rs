//! Anonymous pipes: [`pipe()`], the two ends [`PipeReader`] and
//! [`PipeWriter`], and duplicates of the standard streams.
//!
//! Everything here keeps the names and the behaviour of the `os_pipe` crate.
//! The platform-specific conversions are listed on each type; they are
//! implemented in the platform backends because they need `unsafe` or
//! platform types.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::process::Stdio;

use crate::sys::imp;

/// Opens a new anonymous pipe and returns its two ends, the reader first.
///
/// Bytes written to the [`PipeWriter`] can be read from the [`PipeReader`] in
/// the same order. A read blocks while the pipe is empty and at least one
/// writer is open, and returns 0 (end of file) once every writer, clones
/// included, has been dropped. A write blocks while the pipe is full and fails
/// with [`io::ErrorKind::BrokenPipe`] once every reader has been dropped.
///
/// Neither end is inherited by child processes: a child gets an end only when
/// it is handed to it explicitly, for example through
/// [`Command::stdout`](std::process::Command::stdout). This is what keeps
/// a forgotten writer in a child from holding the pipe open (see the
/// [crate documentation](crate#deadlocks)).
///
/// # Errors
///
/// Fails with the operating system's error when the process or the system is
/// out of file descriptors or handles (`EMFILE`, `ENFILE`), or out of memory.
/// Nothing is leaked on failure. On targets that are neither Unix nor Windows,
/// fails with [`io::ErrorKind::Unsupported`].
///
/// # Platform-specific behavior
///
/// - Linux, Android, the BSDs, illumos, Hurd, Redox and Fuchsia:
///   `pipe2(O_CLOEXEC)`, so the close-on-exec flag is set atomically.
/// - Other Unix targets, such as macOS and iOS: `pipe()` followed by
///   `fcntl(F_SETFD, FD_CLOEXEC)` on each end. Another thread that spawns a
///   child in between those calls can leak the ends into that child, as with
///   every pipe API on these systems.
/// - Windows: `CreatePipe` with a 64 KiB buffer (the system default of 4 KiB
///   fills far sooner than a Unix pipe does) and handles that are not
///   inheritable. The handles are synchronous, like those of `std::io::pipe`.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// # fn main() -> std::io::Result<()> {
/// let (mut reader, mut writer) = pipekit::pipe()?;
/// writer.write_all(b"hello")?;
/// drop(writer); // the reader sees end of file only once every writer is gone
///
/// let mut text = String::new();
/// reader.read_to_string(&mut text)?;
/// assert_eq!(text, "hello");
/// # Ok(())
/// # }
/// ```
///
/// # References
///
/// [`pipe(2)`](https://man7.org/linux/man-pages/man2/pipe.2.html),
/// [POSIX `pipe`](https://pubs.opengroup.org/onlinepubs/9799919799/functions/pipe.html),
/// [`CreatePipe`](https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-createpipe).
#[doc(alias = "pipe2")]
#[doc(alias = "CreatePipe")]
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    let (reader, writer) = imp::pipe()?;
    Ok((PipeReader(reader), PipeWriter(writer)))
}

/// Returns a new [`PipeReader`] that reads from this process's standard input.
///
/// The duplicate is a new file descriptor (or handle) for the same stream;
/// dropping it does not close standard input. It can be handed to a child as
/// its standard input without giving up the parent's own. Like every end
/// pipekit opens, it is close-on-exec / not inheritable.
///
/// # Errors
///
/// Fails with the operating system's error if the process has no standard
/// input to duplicate (a closed fd 0, or a Windows process without a standard
/// input handle) or is out of descriptors. On targets that are neither Unix
/// nor Windows, fails with [`io::ErrorKind::Unsupported`].
///
/// # Platform-specific behavior
///
/// Unix: `fcntl(0, F_DUPFD_CLOEXEC, 3)`. Windows: `DuplicateHandle` on the
/// standard input handle, not inheritable. Standard input need not be a pipe
/// (a terminal or a file works too), so pipe-specific calls on the duplicate
/// may fail.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let stdin = pipekit::dup_stdin()?;
/// # drop(stdin);
/// # Ok(())
/// # }
/// ```
pub fn dup_stdin() -> io::Result<PipeReader> {
    imp::dup_stdin().map(PipeReader)
}

/// Returns a new [`PipeWriter`] that writes to this process's standard output.
///
/// See [`dup_stdin`] for the semantics. A common use is to give a child the
/// parent's standard output while also handing the same stream to another
/// child, or to redirect a child's standard error into the parent's standard
/// output.
///
/// # Errors
///
/// As for [`dup_stdin`].
///
/// # Platform-specific behavior
///
/// Unix: `fcntl(1, F_DUPFD_CLOEXEC, 3)`. Windows: `DuplicateHandle` on the
/// standard output handle, not inheritable.
///
/// # Examples
///
/// ```no_run
/// use std::process::Command;
///
/// # fn main() -> std::io::Result<()> {
/// // A child whose standard error goes to our standard output.
/// let status = Command::new("some-tool")
///     .stderr(pipekit::dup_stdout()?)
///     .status()?;
/// # let _ = status;
/// # Ok(())
/// # }
/// ```
pub fn dup_stdout() -> io::Result<PipeWriter> {
    imp::dup_stdout().map(PipeWriter)
}

/// Returns a new [`PipeWriter`] that writes to this process's standard error.
///
/// See [`dup_stdin`] for the semantics.
///
/// # Errors
///
/// As for [`dup_stdin`].
///
/// # Platform-specific behavior
///
/// Unix: `fcntl(2, F_DUPFD_CLOEXEC, 3)`. Windows: `DuplicateHandle` on the
/// standard error handle, not inheritable.
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// # fn main() -> std::io::Result<()> {
/// let mut stderr = pipekit::dup_stderr()?;
/// writeln!(stderr, "a message on standard error")?;
/// # Ok(())
/// # }
/// ```
pub fn dup_stderr() -> io::Result<PipeWriter> {
    imp::dup_stderr().map(PipeWriter)
}

/// The reading end of a pipe, returned by [`pipe()`] and [`dup_stdin()`].
///
/// `PipeReader` implements [`Read`], and so does `&PipeReader`: several
/// threads may read from one reader without a lock, each read taking a
/// contiguous run of bytes. It is `Send` and `Sync`.
///
/// Besides the methods below it converts:
///
/// - into [`Stdio`], to become a child's standard input;
/// - from [`ChildStdout`](std::process::ChildStdout) and
///   [`ChildStderr`](std::process::ChildStderr);
/// - on Unix, to and from `OwnedFd`, and through
///   `AsFd`, `AsRawFd`, `FromRawFd` and `IntoRawFd`;
/// - on Windows, to and from `OwnedHandle`,
///   and through `AsHandle`, `AsRawHandle`, `FromRawHandle` and
///   `IntoRawHandle`;
/// - with Rust 1.87 or later, to and from `std::io::PipeReader` (detected
///   when pipekit is built; no feature flag).
///
/// # Platform-specific behavior
///
/// A read of more bytes than the platform accepts in one call (`isize::MAX`
/// on most Unix systems, `i32::MAX - 1` on Apple systems, `u32::MAX` on
/// Windows) reads at most that many. On Windows, a read that finds the pipe
/// closed by every writer returns `Ok(0)`, as on Unix, rather than the
/// `ERROR_BROKEN_PIPE` the system reports; a reader made from a `ChildStdout`
/// or `ChildStderr` (whose handles std opens for overlapped I/O) waits for
/// each overlapped read to complete, so it reads like any other reader.
pub struct PipeReader(pub(crate) imp::Pipe);

/// The writing end of a pipe, returned by [`pipe()`], [`dup_stdout()`] and
/// [`dup_stderr()`].
///
/// `PipeWriter` implements [`Write`], and so does `&PipeWriter`; it is `Send`
/// and `Sync`. Writes are not buffered, so [`Write::flush`] does nothing.
/// Writes of at most `PIPE_BUF` bytes (4096 on Linux, at least 512 by POSIX)
/// are atomic on Unix: they are never interleaved with other writers' bytes.
///
/// Besides the methods below it converts:
///
/// - into [`Stdio`], to become a child's standard output or error;
/// - from [`ChildStdin`](std::process::ChildStdin);
/// - on Unix, to and from `OwnedFd`, and through
///   `AsFd`, `AsRawFd`, `FromRawFd` and `IntoRawFd`;
/// - on Windows, to and from `OwnedHandle`,
///   and through `AsHandle`, `AsRawHandle`, `FromRawHandle` and
///   `IntoRawHandle`;
/// - with Rust 1.87 or later, to and from `std::io::PipeWriter`.
///
/// # Errors
///
/// A write to a pipe whose readers have all been dropped fails with
/// [`io::ErrorKind::BrokenPipe`].
///
/// # Platform-specific behavior
///
/// On Unix, that failed write also raises `SIGPIPE`, whose default action
/// kills the process. Rust programs never see this: the Rust runtime ignores
/// `SIGPIPE` before `main` runs, so the write returns `EPIPE`. A Rust library
/// loaded into a host that is not a Rust program (a Python extension, a
/// `cdylib` called from C) gets no such setup: unless the host ignores or
/// handles `SIGPIPE` (`signal(SIGPIPE, SIG_IGN)`), writing to a closed pipe
/// kills the whole host process. On NetBSD, pipekit opens its pipes with
/// `O_NOSIGPIPE`, so its own ends never raise the signal.
///
/// On Windows, a write that finds no reader fails with `ERROR_NO_DATA`,
/// reported as `BrokenPipe`.
pub struct PipeWriter(pub(crate) imp::Pipe);

impl PipeReader {
    /// Returns a new reader for the same pipe.
    ///
    /// Both readers read from one stream of bytes: each byte is read by
    /// exactly one of them. The clone is close-on-exec / not inheritable, like
    /// the original.
    ///
    /// # Errors
    ///
    /// Fails with the operating system's error when the process is out of
    /// file descriptors or handles (`EMFILE` on Unix). Nothing is leaked on
    /// failure.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: one `fcntl(F_DUPFD_CLOEXEC, 3)`. Windows: one `DuplicateHandle`,
    /// not inheritable, with the same access.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (reader, mut writer) = pipekit::pipe()?;
    /// let mut clone = reader.try_clone()?;
    /// writer.write_all(b"x")?;
    /// let mut byte = [0];
    /// clone.read_exact(&mut byte)?;
    /// assert_eq!(&byte, b"x");
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_clone(&self) -> io::Result<PipeReader> {
        self.0.try_clone().map(PipeReader)
    }
}

impl PipeWriter {
    /// Returns a new writer for the same pipe.
    ///
    /// The reader sees end of file only after every writer, the clones
    /// included, has been dropped. The clone is close-on-exec / not
    /// inheritable, like the original.
    ///
    /// # Errors
    ///
    /// Fails with the operating system's error when the process is out of
    /// file descriptors or handles (`EMFILE` on Unix). Nothing is leaked on
    /// failure.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: one `fcntl(F_DUPFD_CLOEXEC, 3)`. Windows: one `DuplicateHandle`,
    /// not inheritable, with the same access.
    ///
    /// # Examples
    ///
    /// Joining a child's standard output and standard error in one pipe:
    ///
    /// ```no_run
    /// use std::io::Read;
    /// use std::process::Command;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (mut reader, writer) = pipekit::pipe()?;
    /// let mut command = Command::new("some-tool");
    /// command.stdout(writer.try_clone()?).stderr(writer);
    /// let mut child = command.spawn()?;
    /// drop(command); // it holds the writers until dropped
    ///
    /// let mut output = Vec::new();
    /// reader.read_to_end(&mut output)?;
    /// child.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_clone(&self) -> io::Result<PipeWriter> {
        self.0.try_clone().map(PipeWriter)
    }
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PipeReader").field(&self.0).finish()
    }
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PipeWriter").field(&self.0).finish()
    }
}

impl Read for &PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.0.read_vectored(bufs)
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }
}

impl Write for &PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    /// Does nothing: writes to a pipe are not buffered.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    /// Does nothing: writes to a pipe are not buffered.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }
}

impl From<PipeReader> for Stdio {
    /// Hands the reader to a child as its standard input.
    ///
    /// The child gets an inheritable duplicate when it is spawned; the
    /// reader itself is closed in this process when the
    /// [`Command`](std::process::Command) holding it is dropped.
    fn from(reader: PipeReader) -> Stdio {
        reader.0.into_stdio()
    }
}

impl From<PipeWriter> for Stdio {
    /// Hands the writer to a child as its standard output or error.
    ///
    /// The child gets an inheritable duplicate when it is spawned; the
    /// writer itself is closed in this process when the
    /// [`Command`](std::process::Command) holding it is dropped. Until then
    /// the pipe's reader does not see end of file.
    fn from(writer: PipeWriter) -> Stdio {
        writer.0.into_stdio()
    }
}
