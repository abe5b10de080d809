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
use std::time::Duration;

use crate::error::invalid_input;
use crate::options::check_capacity;
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
/// - Apple's systems (macOS, iOS, tvOS, watchOS, visionOS): `pipe2(O_CLOEXEC)`
///   when the running system has it (release 27 and later), looked up once
///   per process with `dlsym`; otherwise as on other Unix targets.
/// - Other Unix targets: `pipe()` followed by `fcntl(F_SETFD, FD_CLOEXEC)` on
///   each end. Another thread that spawns a child in between those calls can
///   leak the ends into that child, as with every pipe API on these systems.
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
#[inline]
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    let (reader, writer) = imp::pipe()?;
    Ok((
        PipeReader::from_inner(reader),
        PipeWriter::from_inner(writer),
    ))
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
/// may fail. pipekit asks the handle how it was opened
/// (`NtQueryInformationFile`); if standard input is a synchronous handle
/// that another thread is reading at that moment, the query, and so this
/// call, waits until that read returns (they share the file object's lock).
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
    imp::dup_stdin().map(PipeReader::from_inner)
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
/// standard output handle, not inheritable. The writer writes bytes as they
/// are: on a console, the console shows them in its code page (as with
/// `os_pipe`), not as UTF-8 the way std's `Stdout` converts them. As for
/// [`dup_stdin`], the call waits while another thread is in a blocking
/// write to a synchronous standard output.
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
    imp::dup_stdout().map(PipeWriter::from_inner)
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
    imp::dup_stderr().map(PipeWriter::from_inner)
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
pub struct PipeReader {
    inner: imp::Pipe,
    timeout: TimeoutCell,
}

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
pub struct PipeWriter {
    inner: imp::Pipe,
    timeout: TimeoutCell,
}

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
    #[inline]
    pub fn try_clone(&self) -> io::Result<PipeReader> {
        Ok(PipeReader {
            inner: self.inner.try_clone()?,
            timeout: self.timeout.duplicate(),
        })
    }

    /// Returns how many bytes can be read now without blocking.
    ///
    /// The count is a snapshot: a writer may add bytes, and another reader
    /// of the same pipe may take some, as soon as it is returned. 0 means
    /// the pipe is empty, whether or not a writer is still open.
    ///
    /// # Errors
    ///
    /// The system's error if the query fails, for example on a reader made
    /// from something that is not a pipe.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: `ioctl(FIONREAD)`. Windows: `PeekNamedPipe`'s total bytes
    /// available.
    /// On a synchronous end (see [`pipe`](crate::pipe)), the call waits while another
    /// thread is in a blocking read or write on the same end: they share the file object's
    /// lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (mut reader, mut writer) = pipekit::pipe()?;
    /// writer.write_all(b"hello")?;
    /// assert_eq!(reader.bytes_available()?, 5);
    /// reader.read_exact(&mut [0; 2])?;
    /// assert_eq!(reader.bytes_available()?, 3);
    /// # Ok(())
    /// # }
    /// ```
    #[doc(alias = "FIONREAD")]
    #[doc(alias = "PeekNamedPipe")]
    pub fn bytes_available(&self) -> io::Result<usize> {
        self.inner.bytes_available()
    }

    /// Sets how long a read may wait for data; `None` (the default) waits
    /// without limit.
    ///
    /// A read that finds no data within the timeout fails with
    /// [`io::ErrorKind::TimedOut`] and consumes nothing. Data or end of file
    /// that arrives in time ends the wait at once. The time is measured on
    /// the monotonic clock, and a signal that interrupts the wait does not
    /// shorten or lengthen it. The timeout belongs to this `PipeReader`
    /// (and is copied by [`try_clone`](PipeReader::try_clone)); other
    /// handles to the same pipe are not affected.
    ///
    /// `TimedOut` was chosen over `WouldBlock` (which std's sockets return on
    /// Unix) because `WouldBlock` also means "nonblocking and empty", and the
    /// two call for different handling.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for `Some(Duration::ZERO)`, as
    /// [`TcpStream::set_read_timeout`](std::net::TcpStream::set_read_timeout)
    /// does.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: `poll(2)` before each read. If several readers share the pipe,
    /// another may take the data between the `poll` and the read, and the
    /// read then waits for more, past the timeout.
    ///
    /// Windows: every end can time out, whether it was opened for
    /// synchronous I/O ([`pipe`](crate::pipe), std's pipes, standard
    /// handles) or for overlapped I/O (std's child pipes,
    /// [`PipeOptions::overlapped_reader`](crate::PipeOptions)). An overlapped
    /// read is cancelled with `CancelIoEx` when the timeout expires. A
    /// synchronous read is made by the calling thread as usual, and a
    /// thread-pool timer cancels it with `CancelSynchronousIo` once the time
    /// is up; a read that completes first returns its data, and a cancelled
    /// one has consumed nothing. Each timed read on a synchronous end creates
    /// and closes one thread-pool timer (its cost is in `BENCHMARKS.md`), and
    /// each thread that makes one keeps a handle to itself until it exits.
    /// A synchronous read that waits behind another thread's blocking call
    /// on the same end (they share the file object's lock) returns late:
    /// it is cancelled once that call has returned and it has started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (mut reader, _writer) = pipekit::pipe()?;
    /// reader.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let err = reader.read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        if timeout.is_some() {
            self.inner.check_timeouts()?;
        }
        self.timeout.set(timeout);
        Ok(())
    }

    /// Returns the read timeout set by
    /// [`set_read_timeout`](PipeReader::set_read_timeout), or `None`, shaped
    /// like [`TcpStream::read_timeout`](std::net::TcpStream::read_timeout).
    ///
    /// # Errors
    ///
    /// None today: the timeout is kept by pipekit, not asked of the system.
    /// The `io::Result` keeps the signature of std's sockets, so that code
    /// written for either works with both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (reader, _writer) = pipekit::pipe()?;
    /// assert_eq!(reader.read_timeout()?, None);
    /// reader.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(reader.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.timeout.get())
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
    #[inline]
    pub fn try_clone(&self) -> io::Result<PipeWriter> {
        Ok(PipeWriter {
            inner: self.inner.try_clone()?,
            timeout: self.timeout.duplicate(),
        })
    }

    /// Sets how long a write may wait for room in the pipe; `None` (the
    /// default) waits without limit.
    ///
    /// A write that finds no room within the timeout fails with
    /// [`io::ErrorKind::TimedOut`] and writes nothing. The time is measured on
    /// the monotonic clock, and a signal that interrupts the wait does not
    /// shorten or lengthen it. The timeout belongs to this `PipeWriter` (and
    /// is copied by [`try_clone`](PipeWriter::try_clone)).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for `Some(Duration::ZERO)`.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: `poll(2)` before each write, and then at most `PIPE_BUF` bytes
    /// per write (4096 on Linux, 512 on some systems), which a pipe with room
    /// takes without blocking; [`Write::write_all`] loops as usual. Another
    /// writer that fills the pipe between the `poll` and the write can still
    /// make the write wait.
    ///
    /// Windows: every end can time out, synchronous or overlapped, as
    /// [`PipeReader::set_read_timeout`] describes (`CancelIoEx` or
    /// `CancelSynchronousIo` at the timeout). Each timed write moves at most
    /// the pipe's capacity (4 KiB when it cannot be asked), which fits once a
    /// reader has made room, so that a write still waiting at the timeout is
    /// cancelled having moved nothing. When other writers share the pipe, a
    /// write can wait behind theirs and be cancelled after a reader took
    /// part of it; Windows then reports 0 bytes written (wine does; the
    /// kernel's count is not documented), and writing the same bytes again
    /// repeats those: resuming after a timeout is at-least-once, not exact,
    /// in that case.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{ErrorKind, Write};
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (_reader, mut writer) = pipekit::pipe()?;
    /// writer.set_write_timeout(Some(Duration::from_millis(10)))?;
    /// // Nobody reads, so the pipe fills up and then the write times out.
    /// let err = writer.write_all(&vec![0; 1 << 24]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        if timeout.is_some() {
            self.inner.check_timeouts()?;
        }
        self.timeout.set(timeout);
        Ok(())
    }

    /// Returns the write timeout set by
    /// [`set_write_timeout`](PipeWriter::set_write_timeout), or `None`, shaped
    /// like [`TcpStream::write_timeout`](std::net::TcpStream::write_timeout).
    ///
    /// # Errors
    ///
    /// None today: the timeout is kept by pipekit, not asked of the system.
    /// The `io::Result` keeps the signature of std's sockets, so that code
    /// written for either works with both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (_reader, writer) = pipekit::pipe()?;
    /// assert_eq!(writer.write_timeout()?, None);
    /// writer.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(writer.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.timeout.get())
    }
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PipeReader").field(&self.inner).finish()
    }
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PipeWriter").field(&self.inner).finish()
    }
}

impl Read for &PipeReader {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.timeout.get() {
            Some(timeout) if !buf.is_empty() => self.inner.read_timeout(buf, timeout),
            _ => self.inner.read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match self.timeout.get() {
            None => self.inner.read_vectored(bufs),
            // A timed read fills the first buffer that has room.
            Some(timeout) => match bufs.iter_mut().find(|buf| !buf.is_empty()) {
                Some(buf) => self.inner.read_timeout(buf, timeout),
                None => Ok(0),
            },
        }
    }
}

impl Read for PipeReader {
    #[inline]
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
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.timeout.get() {
            Some(timeout) if !buf.is_empty() => self.inner.write_timeout(buf, timeout),
            _ => self.inner.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.timeout.get() {
            None => self.inner.write_vectored(bufs),
            // A timed write sends from the first buffer that is not empty.
            Some(timeout) => match bufs.iter().find(|buf| !buf.is_empty()) {
                Some(buf) => self.inner.write_timeout(buf, timeout),
                None => Ok(0),
            },
        }
    }

    /// Does nothing: writes to a pipe are not buffered.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for PipeWriter {
    #[inline]
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
    ///
    /// # Platform-specific behavior
    ///
    /// Windows: a child (like std) reads and writes its standard handles
    /// synchronously, which an end opened for overlapped I/O (std's child
    /// pipes, [`PipeOptions`](crate::PipeOptions)' overlapped ends) does not
    /// support reliably. Such an end stays in this process, and the child
    /// gets the synchronous end of a new pipe, with a thread that relays
    /// between the two until either side is done, as std does for its own
    /// child pipes. The relay thread outlives the `Command`: it ends when
    /// the data does (end of file on its source, or its destination closed).
    /// Should the system fail to create that pipe or thread, the end is
    /// handed over as it is.
    fn from(reader: PipeReader) -> Stdio {
        reader.inner.into_stdio()
    }
}

impl From<PipeWriter> for Stdio {
    /// Hands the writer to a child as its standard output or error.
    ///
    /// The child gets an inheritable duplicate when it is spawned; the
    /// writer itself is closed in this process when the
    /// [`Command`](std::process::Command) holding it is dropped. Until then
    /// the pipe's reader does not see end of file.
    ///
    /// # Platform-specific behavior
    ///
    /// Windows: a child (like std) reads and writes its standard handles
    /// synchronously, which an end opened for overlapped I/O (std's child
    /// pipes, [`PipeOptions`](crate::PipeOptions)' overlapped ends) does not
    /// support reliably. Such an end stays in this process, and the child
    /// gets the synchronous end of a new pipe, with a thread that relays
    /// between the two until either side is done, as std does for its own
    /// child pipes. The relay thread outlives the `Command`: it ends when
    /// the data does (end of file on its source, or its destination closed).
    /// Should the system fail to create that pipe or thread, the end is
    /// handed over as it is.
    fn from(writer: PipeWriter) -> Stdio {
        writer.inner.into_stdio()
    }
}

/// The methods both ends share: construction from the backend, nonblocking
/// mode and capacity.
macro_rules! common_methods {
    ($end:ident, $nonblocking_example:literal) => {
        impl $end {
            pub(crate) fn from_inner(inner: imp::Pipe) -> $end {
                $end {
                    inner,
                    timeout: TimeoutCell::default(),
                }
            }

            pub(crate) fn inner(&self) -> &imp::Pipe {
                &self.inner
            }

            pub(crate) fn into_inner(self) -> imp::Pipe {
                self.inner
            }

            /// Switches this end to nonblocking mode (`true`) or back to
            /// blocking mode (`false`).
            ///
            /// In nonblocking mode a read from an empty pipe, or a write to a
            /// full one, fails at once with [`io::ErrorKind::WouldBlock`]
            /// instead of waiting, and moves no data. End of file is still
            /// `Ok(0)`, and a write with no reader is still
            /// [`io::ErrorKind::BrokenPipe`].
            ///
            /// # Errors
            ///
            /// The system's error if the mode cannot be changed.
            ///
            /// # Platform-specific behavior
            ///
            /// - Unix: `O_NONBLOCK`, set with `ioctl(FIONBIO)` on Linux and
            ///   `fcntl(F_SETFL)` elsewhere. The flag belongs to the open file
            ///   description, so it also changes every clone of this end and
            ///   the same end in any child it was handed to. Switch an end
            ///   back to blocking before giving it to a child: most programs
            ///   do not expect a nonblocking standard stream.
            /// - Windows: `PIPE_NOWAIT` with `SetNamedPipeHandleState`, a mode
            ///   Microsoft keeps for LAN Manager 2.0 compatibility. It too is
            ///   shared by every handle to the same end. A read from an empty
            ///   pipe fails with `WouldBlock` (the system says
            ///   `ERROR_NO_DATA`, which std would report as `BrokenPipe`).
            ///   The system takes a write whole or not at all, so a write
            ///   that does not fit is tried again with half as many bytes,
            ///   down to one: it moves more than half the free room, and fails
            ///   with `WouldBlock` only when not one byte fits. Switching to
            ///   `PIPE_NOWAIT` fails while the pipe holds unread data or a
            ///   read waits on it (`ERROR_PIPE_BUSY`, with a message that
            ///   says so); switching back always works. A reader made from
            ///   `ChildStdout` or `ChildStderr`, which std opens without the
            ///   write-attributes access this needs, is duplicated with it
            ///   added when taken over; where the system refuses that, this
            ///   fails with `PermissionDenied`.
            ///   On a synchronous end (see [`pipe`](crate::pipe)), the call waits
            ///   while another thread is in a blocking read or write on the same
            ///   end: they share the file object's lock.
            ///
            /// # Examples
            ///
            #[doc = $nonblocking_example]
            pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
                self.inner.set_nonblocking(nonblocking)
            }

            /// Returns whether this end is in nonblocking mode, as the system
            /// reports it (so a change made through a clone, or by another
            /// process, shows).
            ///
            /// # Errors
            ///
            /// The system's error if the mode cannot be read.
            ///
            /// # Platform-specific behavior
            ///
            /// Unix: `fcntl(F_GETFL)`. Windows: `GetNamedPipeHandleState`,
            /// which needs read-attributes access. std opens a `ChildStdin`
            /// without it, so a writer made from one is duplicated with it
            /// added when taken over; where the system refuses that, the
            /// answer is the mode pipekit knows: `PIPE_WAIT`, as std creates
            /// the pipe, or what [`set_nonblocking`](Self::set_nonblocking)
            /// last set on this end or a clone of it (a change made through
            /// another handle then does not show).
            /// On a synchronous end (see [`pipe`](crate::pipe)), the call waits
            /// while another thread is in a blocking read or write on the same end:
            /// they share the file object's lock.
            pub fn nonblocking(&self) -> io::Result<bool> {
                self.inner.nonblocking()
            }

            /// Returns how many bytes the pipe can hold.
            ///
            /// # Errors
            ///
            /// [`io::ErrorKind::Unsupported`] where the system cannot tell
            /// (Unix systems other than Linux and Android); the system's error
            /// if the query fails.
            ///
            /// # Platform-specific behavior
            ///
            /// Linux and Android: `fcntl(F_GETPIPE_SZ)`. Windows:
            /// `GetNamedPipeInfo`, the buffer quota of this end's direction,
            /// which needs read-attributes access: on a writer made from a
            /// `ChildStdin` where the system refuses to add it (see
            /// [`nonblocking`](Self::nonblocking)), this fails with
            /// `PermissionDenied` and a message that says why.
            /// On a synchronous end (see [`pipe`](crate::pipe)), the call waits
            /// while another thread is in a blocking read or write on the same end:
            /// they share the file object's lock.
            #[doc(alias = "F_GETPIPE_SZ")]
            pub fn capacity(&self) -> io::Result<usize> {
                self.inner.capacity()
            }

            /// Resizes the pipe to hold at least `bytes` bytes, and returns
            /// the capacity granted, which may be larger.
            ///
            /// # Errors
            ///
            /// - [`io::ErrorKind::InvalidInput`] for 0 or more than
            ///   `i32::MAX` bytes, before any system call.
            /// - [`io::ErrorKind::Unsupported`] where a pipe cannot be resized
            ///   after it is made (Windows: use
            ///   [`PipeOptions::capacity`](crate::PipeOptions::capacity);
            ///   Unix systems other than Linux and Android).
            /// - On Linux, `PermissionDenied` (`EPERM`) above
            ///   `/proc/sys/fs/pipe-max-size` without `CAP_SYS_RESOURCE`, or
            ///   when the user's pipes are at `pipe-user-pages-hard`; and
            ///   `ResourceBusy` (`EBUSY`) below the bytes already in the pipe.
            ///   The message names the limit; the system's error is the
            ///   [`source`](std::error::Error::source).
            ///
            /// # Platform-specific behavior
            ///
            /// Linux and Android: `fcntl(F_SETPIPE_SZ)`, which rounds up to a
            /// power of two pages.
            #[doc(alias = "F_SETPIPE_SZ")]
            pub fn set_capacity(&self, bytes: usize) -> io::Result<usize> {
                check_capacity(bytes)?;
                self.inner.set_capacity(bytes)
            }
        }
    };
}

common_methods!(
    PipeReader,
    "```
use std::io::{ErrorKind, Read};

# fn main() -> std::io::Result<()> {
let (mut reader, _writer) = pipekit::pipe()?;
reader.set_nonblocking(true)?;
assert!(reader.nonblocking()?);
// Empty, with a writer open: a blocking read would wait here.
let err = reader.read(&mut [0; 8]).unwrap_err();
assert_eq!(err.kind(), ErrorKind::WouldBlock);
# Ok(())
# }
```"
);
common_methods!(
    PipeWriter,
    "```
use std::io::{ErrorKind, Write};

# fn main() -> std::io::Result<()> {
let (_reader, mut writer) = pipekit::pipe()?;
writer.set_nonblocking(true)?;
// Nobody reads: the write that finds the pipe full fails instead of waiting.
let err = loop {
    if let Err(err) = writer.write(&[0; 4096]) {
        break err;
    }
};
assert_eq!(err.kind(), ErrorKind::WouldBlock);
# Ok(())
# }
```"
);

/// Rejects the zero timeout, as std's sockets do.
fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    if timeout == Some(Duration::ZERO) {
        return Err(invalid_input(
            "pipekit: a zero timeout is not allowed; pass None to wait without limit, \
             or use set_nonblocking(true) not to wait at all"
                .to_string(),
        ));
    }
    Ok(())
}

/// A timeout that can be changed through `&self`, read before every read or
/// write: nanoseconds in an atomic, 0 for none. Timeouts beyond what 64 bits
/// of nanoseconds hold (584 years) are kept as that maximum.
#[derive(Debug, Default)]
struct TimeoutCell(AtomicNanos);

#[cfg(target_has_atomic = "64")]
type AtomicNanos = std::sync::atomic::AtomicU64;
#[cfg(not(target_has_atomic = "64"))]
type AtomicNanos = std::sync::Mutex<u64>;

impl TimeoutCell {
    #[inline]
    fn get(&self) -> Option<Duration> {
        #[cfg(target_has_atomic = "64")]
        let nanos = self.0.load(std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(target_has_atomic = "64"))]
        let nanos = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        (nanos != 0).then(|| Duration::from_nanos(nanos))
    }

    /// A new cell holding the same timeout (for `try_clone`).
    fn duplicate(&self) -> TimeoutCell {
        #[cfg(target_has_atomic = "64")]
        let nanos = self.0.load(std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(target_has_atomic = "64"))]
        let nanos = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        TimeoutCell(AtomicNanos::new(nanos))
    }

    fn set(&self, timeout: Option<Duration>) {
        let nanos = timeout.map_or(0, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        #[cfg(target_has_atomic = "64")]
        self.0.store(nanos, std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(target_has_atomic = "64"))]
        {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = nanos;
        }
    }
}
