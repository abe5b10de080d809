//! Async pipe ends for tokio (feature `tokio`).
//!
//! [`pipe()`] returns a [`PipeReader`] that implements tokio's
//! [`AsyncRead`] and a [`PipeWriter`] that implements [`AsyncWrite`], both
//! registered with the current runtime's reactor. [`pipe_from_child()`] and
//! [`pipe_to_child()`] return one async end for this process and one blocking
//! [`crate::PipeWriter`] or [`crate::PipeReader`] to hand to a child as its
//! `Stdio`, which is what a program that spawns children usually needs.
//!
//! Every end is close-on-exec (Unix) or not inheritable (Windows), like every
//! pipekit end.
//!
//! [`Exchange`] is [`communicate::Exchange`](crate::communicate::Exchange) as
//! a `Send` future on a [`tokio::process::Command`]:
//! it spawns the child with these pipes, feeds it, captures or streams its
//! outputs, and bounds the run with a deadline that can kill its process tree.
//!
//! # Platform-specific behavior
//!
//! - Unix: the ends are tokio's own `tokio::net::unix::pipe::Receiver`
//!   and `Sender`, driven by fd readiness
//!   (epoll, kqueue). The fd is in nonblocking mode (`O_NONBLOCK`), which
//!   belongs to the open file description: [`pipe()`] opens its ends that
//!   way; a conversion from a blocking end sets the flag, which every clone
//!   of that end sees too. `PipeReader::into_blocking` and
//!   `PipeWriter::into_blocking` clear it again.
//! - Windows: the ends are overlapped ends of unnamed NT named pipes
//!   (`PipeOptions::overlapped_reader`,
//!   `overlapped_writer`) registered
//!   with tokio's I/O completion port, through tokio's named-pipe types
//!   (`NamedPipeServer` for a pipe's server end, `NamedPipeClient` for its
//!   client end). Every read and write is an overlapped operation completed
//!   by the reactor: no thread of tokio's blocking pool waits on a pipe. A
//!   synchronous end (what [`crate::pipe()`] returns) cannot be driven this
//!   way, and converting one fails with an error naming the option to use.
//!   tokio gives no way to take the handle back out of its named-pipe types,
//!   so there is no `into_blocking` on Windows: make the child's end blocking
//!   from the start with [`pipe_from_child()`] or [`pipe_to_child()`].
//!
//! # Examples
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # fn main() -> std::io::Result<()> {
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
//! runtime.block_on(async {
//!     let (mut reader, mut writer) = pipekit::tokio::pipe()?;
//!     let write = async move {
//!         writer.write_all(b"hello").await?;
//!         drop(writer); // end of file for the reader
//!         Ok::<_, std::io::Error>(())
//!     };
//!     let mut text = String::new();
//!     let (written, read) = tokio::join!(write, reader.read_to_string(&mut text));
//!     written?;
//!     read?;
//!     assert_eq!(text, "hello");
//!     Ok(())
//! })
//! # }
//! ```

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::process::{ChildStderr, ChildStdin, ChildStdout};

use crate::PipeOptions;

mod exchange;
pub use exchange::Exchange;

#[cfg(unix)]
use std::os::unix::io::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
#[cfg(windows)]
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, RawHandle};

#[cfg(unix)]
type Reader = ::tokio::net::unix::pipe::Receiver;
#[cfg(unix)]
type Writer = ::tokio::net::unix::pipe::Sender;
#[cfg(windows)]
type Reader = crate::sys::imp::tokio::End;
#[cfg(windows)]
type Writer = crate::sys::imp::tokio::End;

/// Fails with a clear error outside a tokio runtime, where tokio's own
/// constructors would panic.
fn check_runtime() -> io::Result<()> {
    match ::tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::Other,
            "pipekit: a pipekit::tokio pipe end needs a tokio runtime: call this from \
             within a runtime (Runtime::block_on, a task, or after Runtime::enter)",
        )),
    }
}

/// Adds what pipekit was doing to an error from tokio's registration.
#[cfg(unix)]
fn registering(what: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("pipekit: registering {what} with tokio's reactor failed: {e}"),
    )
}

/// Opens a pipe whose ends are both async, registered with the current
/// runtime.
///
/// # Errors
///
/// - [`io::ErrorKind::Other`] outside a tokio runtime, before the pipe is
///   opened.
/// - The system's error if the pipe cannot be opened or registered. Nothing
///   is leaked on failure.
///
/// # Panics
///
/// Inside a runtime built without I/O (`enable_io`), as tokio's own pipe
/// types do.
///
/// # Platform-specific behavior
///
/// Unix: one `pipe2(O_CLOEXEC | O_NONBLOCK)` (or `pipe` and `fcntl` where
/// there is no `pipe2`). Windows: an unnamed NT named pipe with both ends
/// overlapped and a 64 KiB buffer, both registered with the I/O completion
/// port.
///
/// # Examples
///
/// See the [module documentation](self).
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    check_runtime()?;
    let mut options = PipeOptions::new();
    #[cfg(unix)]
    options.nonblocking(true);
    #[cfg(windows)]
    options.overlapped_reader(true).overlapped_writer(true);
    let (reader, writer) = options.create()?;
    Ok((PipeReader::register(reader)?, PipeWriter::register(writer)?))
}

/// Opens a pipe to read a child's output: an async reader for this process
/// and a blocking writer to hand to the child as its `Stdio`.
///
/// The writer must be dropped in this process once the child holds it (a
/// [`Command`](std::process::Command) holding it drops it with itself), or
/// the reader never sees end of file.
///
/// # Errors
///
/// As for [`pipe()`].
///
/// # Panics
///
/// As for [`pipe()`].
///
/// # Platform-specific behavior
///
/// Unix: only the reader's open file description is nonblocking; the child's
/// end stays blocking. Windows: the reader is overlapped, the writer
/// synchronous, as a child's standard handle should be.
///
/// # Examples
///
/// ```
/// use tokio::io::AsyncReadExt;
/// use std::io::Write;
///
/// # fn main() -> std::io::Result<()> {
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
/// runtime.block_on(async {
///     let (mut reader, mut writer) = pipekit::tokio::pipe_from_child()?;
///     // `writer` would be a child's stdout: `command.stdout(writer)`.
///     writer.write_all(b"from the child")?;
///     drop(writer);
///     let mut text = String::new();
///     reader.read_to_string(&mut text).await?;
///     assert_eq!(text, "from the child");
///     Ok(())
/// })
/// # }
/// ```
pub fn pipe_from_child() -> io::Result<(PipeReader, crate::PipeWriter)> {
    check_runtime()?;
    let mut options = PipeOptions::new();
    #[cfg(unix)]
    options.reader_nonblocking(true);
    #[cfg(windows)]
    options.overlapped_reader(true);
    let (reader, writer) = options.create()?;
    Ok((PipeReader::register(reader)?, writer))
}

/// Opens a pipe to feed a child: a blocking reader to hand to the child as
/// its `Stdio`, and an async writer for this process.
///
/// # Errors
///
/// As for [`pipe()`].
///
/// # Panics
///
/// As for [`pipe()`].
///
/// # Platform-specific behavior
///
/// Unix: only the writer's open file description is nonblocking. Windows:
/// the writer is overlapped, the reader synchronous.
///
/// # Examples
///
/// ```
/// use tokio::io::AsyncWriteExt;
/// use std::io::Read;
///
/// # fn main() -> std::io::Result<()> {
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
/// runtime.block_on(async {
///     let (mut reader, mut writer) = pipekit::tokio::pipe_to_child()?;
///     // `reader` would be a child's stdin: `command.stdin(reader)`.
///     writer.write_all(b"to the child").await?;
///     drop(writer);
///     let mut text = String::new();
///     reader.read_to_string(&mut text)?;
///     assert_eq!(text, "to the child");
///     Ok(())
/// })
/// # }
/// ```
pub fn pipe_to_child() -> io::Result<(crate::PipeReader, PipeWriter)> {
    check_runtime()?;
    let mut options = PipeOptions::new();
    #[cfg(unix)]
    options.writer_nonblocking(true);
    #[cfg(windows)]
    options.overlapped_writer(true);
    let (reader, writer) = options.create()?;
    Ok((reader, PipeWriter::register(writer)?))
}

/// The reading end of an async pipe.
///
/// It implements tokio's [`AsyncRead`] (use it through
/// [`AsyncReadExt`](::tokio::io::AsyncReadExt)), and the readiness API of
/// tokio's own pipe and socket types: [`readable`](Self::readable),
/// [`try_read`](Self::try_read), [`try_read_vectored`](Self::try_read_vectored).
/// It is `Send` and `Sync`. A read returns `Ok(0)` at end of file, once
/// every writer is closed.
///
/// It converts from a blocking [`crate::PipeReader`] and from tokio's
/// [`ChildStdout`] and [`ChildStderr`] (`TryFrom`), and, on Unix, back to a
/// blocking end with `into_blocking`.
pub struct PipeReader {
    inner: Reader,
}

/// The writing end of an async pipe.
///
/// It implements tokio's [`AsyncWrite`] (use it through
/// [`AsyncWriteExt`](::tokio::io::AsyncWriteExt)), and the readiness API of
/// tokio's own pipe and socket types: [`writable`](Self::writable),
/// [`try_write`](Self::try_write), [`try_write_vectored`](Self::try_write_vectored).
/// It is `Send` and `Sync`. Dropping it closes the pipe's write end; the
/// reader sees end of file once every writer is closed.
///
/// It converts from a blocking [`crate::PipeWriter`] and from tokio's
/// [`ChildStdin`] (`TryFrom`), and, on Unix, back to a blocking end with
/// `into_blocking`.
///
/// # Platform-specific behavior
///
/// Windows: a write copies the bytes into a buffer of the end and starts
/// one overlapped write; it returns as soon as the copy is made, and the
/// next write waits until that one completed. Bytes written before the
/// writer is dropped still reach the pipe.
pub struct PipeWriter {
    inner: Writer,
}

impl PipeReader {
    #[cfg(unix)]
    fn register(end: crate::PipeReader) -> io::Result<PipeReader> {
        // The fd is a pipe's read end, opened nonblocking by `pipe()` or
        // `pipe_from_child()`: what the unchecked constructor asks.
        let inner = Reader::from_owned_fd_unchecked(OwnedFd::from(end))
            .map_err(|e| registering("a pipe reader", e))?;
        Ok(PipeReader { inner })
    }

    #[cfg(windows)]
    fn register(end: crate::PipeReader) -> io::Result<PipeReader> {
        let inner = crate::sys::imp::tokio::register(end.into_inner(), "overlapped_reader")?;
        Ok(PipeReader { inner })
    }

    /// Waits until the pipe has bytes to read, or end of file, or an error.
    ///
    /// The readiness can be spurious: a [`try_read`](Self::try_read) after
    /// it may still fail with [`io::ErrorKind::WouldBlock`].
    ///
    /// # Errors
    ///
    /// The reactor's error, if the end cannot be polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    /// # runtime.block_on(async {
    /// let (reader, mut writer) = pipekit::tokio::pipe()?;
    /// writer.write_all(b"ready").await?;
    /// let mut buf = [0; 16];
    /// let n = loop {
    ///     reader.readable().await?;
    ///     match reader.try_read(&mut buf) {
    ///         Ok(n) => break n,
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///         Err(e) => return Err(e),
    ///     }
    /// };
    /// assert_eq!(&buf[..n], b"ready");
    /// # Ok(())
    /// # })
    /// # }
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        self.inner.readable().await
    }

    /// Polls for read readiness, registering the task's waker when the end
    /// is not ready; what [`readable`](Self::readable) does, for
    /// hand-written futures.
    ///
    /// # Errors
    ///
    /// The reactor's error, if the end cannot be polled.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }

    /// Reads what is in the pipe now, without waiting.
    ///
    /// Returns `Ok(0)` at end of file (and for an empty `buf`).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when the pipe is empty and a writer is
    /// still open, or before the reactor has reported the end readable
    /// (wait with [`readable`](Self::readable) first); the system's error
    /// otherwise.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.try_read(buf)
    }

    /// Reads what is in the pipe now into several buffers, in order,
    /// without waiting.
    ///
    /// # Errors
    ///
    /// As for [`try_read`](Self::try_read).
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: one `readv`. Windows: the bytes the end has received are copied
    /// into the buffers in order.
    pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.inner.try_read_vectored(bufs)
    }

    /// Takes the end off the reactor and returns it as a blocking
    /// [`crate::PipeReader`], for instance to hand it to a child as its
    /// standard input.
    ///
    /// # Errors
    ///
    /// The system's error if the end cannot be deregistered or switched
    /// back to blocking mode (`fcntl`); the end is closed then.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix only: clears `O_NONBLOCK`, on the open file description (so
    /// every clone of this end is blocking again). There is no Windows
    /// counterpart (see the [module documentation](self#platform-specific-behavior)).
    #[cfg(unix)]
    pub fn into_blocking(self) -> io::Result<crate::PipeReader> {
        let fd = self.inner.into_blocking_fd().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("pipekit: switching an async pipe reader back to blocking failed: {e}"),
            )
        })?;
        Ok(crate::PipeReader::from(fd))
    }
}

impl PipeWriter {
    #[cfg(unix)]
    fn register(end: crate::PipeWriter) -> io::Result<PipeWriter> {
        // The fd is a pipe's write end, opened nonblocking by `pipe()` or
        // `pipe_to_child()`: what the unchecked constructor asks.
        let inner = Writer::from_owned_fd_unchecked(OwnedFd::from(end))
            .map_err(|e| registering("a pipe writer", e))?;
        Ok(PipeWriter { inner })
    }

    #[cfg(windows)]
    fn register(end: crate::PipeWriter) -> io::Result<PipeWriter> {
        let inner = crate::sys::imp::tokio::register(end.into_inner(), "overlapped_writer")?;
        Ok(PipeWriter { inner })
    }

    /// Waits until the pipe has room for a write, or every reader is closed
    /// (the next write then fails with [`io::ErrorKind::BrokenPipe`]).
    ///
    /// The readiness can be spurious: a [`try_write`](Self::try_write) after
    /// it may still fail with [`io::ErrorKind::WouldBlock`].
    ///
    /// # Errors
    ///
    /// The reactor's error, if the end cannot be polled.
    pub async fn writable(&self) -> io::Result<()> {
        self.inner.writable().await
    }

    /// Polls for write readiness, registering the task's waker when the end
    /// is not ready; what [`writable`](Self::writable) does, for
    /// hand-written futures.
    ///
    /// # Errors
    ///
    /// The reactor's error, if the end cannot be polled.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_write_ready(cx)
    }

    /// Writes what fits in the pipe now, without waiting, and returns how
    /// many bytes were written.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when the pipe is full, or before the
    /// reactor has reported the end writable (wait with
    /// [`writable`](Self::writable) first);
    /// [`io::ErrorKind::BrokenPipe`] when every reader is closed; the
    /// system's error otherwise.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.try_write(buf)
    }

    /// Writes what fits from several buffers, in order, without waiting.
    ///
    /// # Errors
    ///
    /// As for [`try_write`](Self::try_write).
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: one `writev`. Windows: the buffers are copied into one
    /// overlapped write.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.try_write_vectored(bufs)
    }

    /// Takes the end off the reactor and returns it as a blocking
    /// [`crate::PipeWriter`], for instance to hand it to a child as its
    /// standard output.
    ///
    /// # Errors
    ///
    /// The system's error if the end cannot be deregistered or switched
    /// back to blocking mode (`fcntl`); the end is closed then.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix only: clears `O_NONBLOCK`, on the open file description (so
    /// every clone of this end is blocking again). There is no Windows
    /// counterpart (see the [module documentation](self#platform-specific-behavior)).
    #[cfg(unix)]
    pub fn into_blocking(self) -> io::Result<crate::PipeWriter> {
        let fd = self.inner.into_blocking_fd().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("pipekit: switching an async pipe writer back to blocking failed: {e}"),
            )
        })?;
        Ok(crate::PipeWriter::from(fd))
    }
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader")
            .field("inner", &self.inner)
            .finish()
    }
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeWriter")
            .field("inner", &self.inner)
            .finish()
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        #[cfg(unix)]
        return Pin::new(&mut self.inner).poll_read(cx, buf);
        #[cfg(windows)]
        return self.inner.poll_read(cx, buf);
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        #[cfg(unix)]
        return Pin::new(&mut self.inner).poll_write(cx, buf);
        #[cfg(windows)]
        return self.inner.poll_write(cx, buf);
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        #[cfg(unix)]
        return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        #[cfg(windows)]
        return self.inner.poll_write_vectored(cx, bufs);
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        #[cfg(unix)]
        return Pin::new(&mut self.inner).poll_flush(cx);
        #[cfg(windows)]
        return self.inner.poll_flush(cx);
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        #[cfg(unix)]
        return Pin::new(&mut self.inner).poll_shutdown(cx);
        #[cfg(windows)]
        return self.inner.poll_shutdown(cx);
    }
}

impl TryFrom<crate::PipeReader> for PipeReader {
    type Error = io::Error;

    /// Registers a blocking reader with the current runtime.
    ///
    /// # Errors
    ///
    /// Outside a tokio runtime, an error saying so (the reader is closed).
    /// Unix: `InvalidInput` if the fd is not a pipe open for reading.
    /// Windows: `InvalidInput` for a synchronous end, naming
    /// `PipeOptions::overlapped_reader`,
    /// which makes an end this conversion accepts. The end is closed on
    /// every error.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: sets `O_NONBLOCK` on the open file description, which every
    /// clone of the end (and a child it was handed to) shares;
    /// `PipeReader::into_blocking` clears it.
    fn try_from(end: crate::PipeReader) -> io::Result<PipeReader> {
        check_runtime()?;
        #[cfg(unix)]
        {
            let inner = Reader::from_owned_fd(OwnedFd::from(end))
                .map_err(|e| registering("a pipe reader", e))?;
            Ok(PipeReader { inner })
        }
        #[cfg(windows)]
        PipeReader::register(end)
    }
}

impl TryFrom<crate::PipeWriter> for PipeWriter {
    type Error = io::Error;

    /// Registers a blocking writer with the current runtime.
    ///
    /// # Errors
    ///
    /// Outside a tokio runtime, an error saying so (the writer is closed).
    /// Unix: `InvalidInput` if the fd is not a pipe open for writing.
    /// Windows: `InvalidInput` for a synchronous end, naming
    /// `PipeOptions::overlapped_writer`,
    /// which makes an end this conversion accepts. The end is closed on
    /// every error.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: sets `O_NONBLOCK` on the open file description, which every
    /// clone of the end (and a child it was handed to) shares;
    /// `PipeWriter::into_blocking` clears it.
    fn try_from(end: crate::PipeWriter) -> io::Result<PipeWriter> {
        check_runtime()?;
        #[cfg(unix)]
        {
            let inner = Writer::from_owned_fd(OwnedFd::from(end))
                .map_err(|e| registering("a pipe writer", e))?;
            Ok(PipeWriter { inner })
        }
        #[cfg(windows)]
        PipeWriter::register(end)
    }
}

/// `TryFrom` a tokio child pipe, for one end type.
macro_rules! from_child_pipe {
    ($child:ident, $end:ident, $take:ident) => {
        impl TryFrom<$child> for $end {
            type Error = io::Error;

            #[doc = concat!("Takes over tokio's `", stringify!($child), "`.")]
            ///
            /// # Errors
            ///
            /// Outside a tokio runtime, an error saying so; the system's
            /// error if the pipe cannot be taken out of tokio's type or
            /// registered. The pipe is closed on every error.
            ///
            /// # Platform-specific behavior
            ///
            /// Unix: the fd is made nonblocking again (tokio's
            /// `into_owned_fd` hands it over blocking); it is this process's
            /// own end, shared with no child. Windows: tokio reads and
            /// writes a child's pipes on its blocking pool; the handle std
            /// opened for this process is overlapped, so this conversion
            /// moves the pipe onto the I/O completion port instead. Convert
            /// before the first read or write through tokio's type: bytes a
            /// pool thread is reading at the time of the conversion go to
            /// that thread.
            fn try_from(pipe: $child) -> io::Result<$end> {
                check_runtime()?;
                let owned = pipe.$take().map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            concat!(
                                "pipekit: taking the pipe out of tokio's `",
                                stringify!($child),
                                "` failed: {}"
                            ),
                            e
                        ),
                    )
                })?;
                $end::try_from(crate::$end::from(owned))
            }
        }
    };
}

#[cfg(unix)]
from_child_pipe!(ChildStdout, PipeReader, into_owned_fd);
#[cfg(unix)]
from_child_pipe!(ChildStderr, PipeReader, into_owned_fd);
#[cfg(unix)]
from_child_pipe!(ChildStdin, PipeWriter, into_owned_fd);
#[cfg(windows)]
from_child_pipe!(ChildStdout, PipeReader, into_owned_handle);
#[cfg(windows)]
from_child_pipe!(ChildStderr, PipeReader, into_owned_handle);
#[cfg(windows)]
from_child_pipe!(ChildStdin, PipeWriter, into_owned_handle);

/// The fd and handle traits, the same for both ends.
macro_rules! os_traits {
    ($end:ident) => {
        #[cfg(unix)]
        impl AsFd for $end {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        #[cfg(unix)]
        impl AsRawFd for $end {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.as_raw_fd()
            }
        }

        #[cfg(windows)]
        impl AsHandle for $end {
            fn as_handle(&self) -> BorrowedHandle<'_> {
                self.inner.as_handle()
            }
        }

        #[cfg(windows)]
        impl AsRawHandle for $end {
            fn as_raw_handle(&self) -> RawHandle {
                self.inner.as_raw_handle()
            }
        }
    };
}

os_traits!(PipeReader);
os_traits!(PipeWriter);
