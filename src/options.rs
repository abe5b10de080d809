//! [`PipeOptions`]: a builder for pipes with a chosen capacity, nonblocking
//! ends, packet mode, or (on Windows) overlapped ends.

use std::io;

use crate::error::invalid_input;
use crate::sys::imp;
use crate::{PipeReader, PipeWriter};

/// Options for opening a pipe, in the style of
/// [`OpenOptions`](std::fs::OpenOptions).
///
/// [`PipeOptions::new`] starts from the defaults of [`pipe()`](crate::pipe()):
/// blocking ends, the system's default capacity (64 KiB on Windows), close-on-exec
/// / non-inheritable. Each setter changes one option and returns `&mut Self`
/// for chaining; [`create`](PipeOptions::create) opens the pipe.
///
/// An option that the platform cannot honour makes `create` fail with
/// [`io::ErrorKind::Unsupported`] and a message that names the option and the
/// platform; pipekit never reports success for an option it ignored.
///
/// # Examples
///
/// A pipe with room for 1 MiB and a reader that never blocks:
///
/// ```
/// use std::io::{ErrorKind, Read};
///
/// # fn main() -> std::io::Result<()> {
/// let mut options = pipekit::PipeOptions::new();
/// options.reader_nonblocking(true);
/// #[cfg(any(target_os = "linux", target_os = "android"))] // elsewhere: Unsupported
/// options.capacity(1 << 20);
/// let (mut reader, _writer) = options.create()?;
///
/// #[cfg(any(target_os = "linux", target_os = "android"))]
/// assert!(reader.capacity()? >= 1 << 20);
/// let err = reader.read(&mut [0; 16]).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::WouldBlock); // empty, but not closed
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct PipeOptions {
    pub(crate) capacity: Option<usize>,
    pub(crate) reader_nonblocking: bool,
    pub(crate) writer_nonblocking: bool,
    pub(crate) packet_mode: bool,
    #[cfg(windows)]
    pub(crate) overlapped_reader: bool,
    #[cfg(windows)]
    pub(crate) overlapped_writer: bool,
}

impl PipeOptions {
    /// Returns the options of [`pipe()`](crate::pipe()), ready to be changed.
    pub fn new() -> PipeOptions {
        PipeOptions::default()
    }

    /// Asks for a pipe that holds at least `bytes` bytes.
    ///
    /// The system may grant more (Linux rounds up to a power of two pages);
    /// [`PipeReader::capacity`] and [`PipeWriter::capacity`] tell what was
    /// granted.
    ///
    /// # Platform-specific behavior
    ///
    /// - Linux and Android: `fcntl(F_SETPIPE_SZ)` on the new pipe. Above
    ///   `/proc/sys/fs/pipe-max-size` (1 MiB by default), only a process with
    ///   `CAP_SYS_RESOURCE` succeeds; [`create`](PipeOptions::create) fails
    ///   with a message that names the limit otherwise.
    /// - Windows: the buffer quota given when the pipe is created.
    /// - Other Unix systems have no call to set a pipe's size, so `create`
    ///   fails with [`io::ErrorKind::Unsupported`] if this option is set.
    #[doc(alias = "F_SETPIPE_SZ")]
    pub fn capacity(&mut self, bytes: usize) -> &mut Self {
        self.capacity = Some(bytes);
        self
    }

    /// Makes both ends nonblocking (`true`) or blocking (`false`, the
    /// default). See [`PipeReader::set_nonblocking`] for what that means.
    pub fn nonblocking(&mut self, nonblocking: bool) -> &mut Self {
        self.reader_nonblocking = nonblocking;
        self.writer_nonblocking = nonblocking;
        self
    }

    /// Makes the reading end nonblocking (`true`) or blocking (`false`, the
    /// default), leaving the writing end as it is.
    pub fn reader_nonblocking(&mut self, nonblocking: bool) -> &mut Self {
        self.reader_nonblocking = nonblocking;
        self
    }

    /// Makes the writing end nonblocking (`true`) or blocking (`false`, the
    /// default), leaving the reading end as it is.
    pub fn writer_nonblocking(&mut self, nonblocking: bool) -> &mut Self {
        self.writer_nonblocking = nonblocking;
        self
    }

    /// Opens the pipe in packet mode (`true`), or as a byte stream (`false`,
    /// the default).
    ///
    /// In packet mode every write of at most `PIPE_BUF` (4096) bytes is one
    /// packet, and every read takes at most one packet; bytes of a packet
    /// that do not fit the read's buffer are discarded.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux 3.4 and later, and Android: `pipe2(O_DIRECT)`. Everywhere else
    /// [`create`](PipeOptions::create) fails with
    /// [`io::ErrorKind::Unsupported`]. (Windows message-mode pipes keep the
    /// rest of a message for the next read, which is a different contract.)
    #[doc(alias = "O_DIRECT")]
    pub fn packet_mode(&mut self, packet_mode: bool) -> &mut Self {
        self.packet_mode = packet_mode;
        self
    }

    /// Opens the reading end for overlapped I/O (`true`), or synchronous
    /// (`false`, the default).
    ///
    /// An overlapped end times out ([`PipeReader::set_read_timeout`]) by
    /// cancelling its own operation, with no timer, and lets the
    /// communicate engine wait on several pipes without a helper thread; a
    /// synchronous end is what a child process expects, so hand the *other*
    /// end to a child (an overlapped end given to a child is relayed through
    /// a synchronous pipe by a thread). The pipe is then an unnamed NT named
    /// pipe, like the pipes std creates for `Stdio::piped()`: no other
    /// process can open it by name, and it rejects remote clients.
    #[cfg(windows)]
    pub fn overlapped_reader(&mut self, overlapped: bool) -> &mut Self {
        self.overlapped_reader = overlapped;
        self
    }

    /// Opens the writing end for overlapped I/O (`true`), or synchronous
    /// (`false`, the default). See
    /// [`overlapped_reader`](PipeOptions::overlapped_reader).
    #[cfg(windows)]
    pub fn overlapped_writer(&mut self, overlapped: bool) -> &mut Self {
        self.overlapped_writer = overlapped;
        self
    }

    /// Opens a pipe with these options and returns its two ends, the reader
    /// first.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] for a capacity of 0 or above
    ///   `i32::MAX` bytes, before any system call.
    /// - [`io::ErrorKind::Unsupported`] for an option this platform cannot
    ///   honour (see each option).
    /// - The system's error if the pipe cannot be opened or an option is
    ///   refused, with a message naming the option and the limit hit. Nothing
    ///   is leaked on failure.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: one `pipe2` with `O_CLOEXEC` plus `O_NONBLOCK` (when both ends
    /// are nonblocking) and `O_DIRECT` (packet mode), then one system call
    /// per remaining option. Windows: `CreatePipe` with the capacity as its
    /// buffer quota; with an overlapped end, `NtCreateNamedPipeFile` and
    /// `NtOpenFile` instead; then `SetNamedPipeHandleState` for each
    /// nonblocking end.
    #[doc(alias = "pipe2")]
    pub fn create(&self) -> io::Result<(PipeReader, PipeWriter)> {
        if let Some(bytes) = self.capacity {
            check_capacity(bytes)?;
        }
        let (reader, writer) = imp::create(self)?;
        Ok((
            PipeReader::from_inner(reader),
            PipeWriter::from_inner(writer),
        ))
    }
}

/// The capacities pipekit passes on to the system.
pub(crate) fn check_capacity(bytes: usize) -> io::Result<()> {
    if bytes == 0 || bytes > i32::MAX as usize {
        return Err(invalid_input(format!(
            "pipekit: a pipe capacity of {bytes} bytes is out of range (1 to {} bytes)",
            i32::MAX
        )));
    }
    Ok(())
}
