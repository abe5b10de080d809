//! Zero-copy transfers: [`copy`] between a pipe and any file descriptor, and
//! on Linux and Android the `splice(2)` and `tee(2)` system calls on the
//! pipe types.
//!
//! [`copy`] is the one most programs want. It moves everything from a reader
//! to a writer, like [`std::io::copy`], but works on the file descriptors:
//! on Linux and Android the kernel moves the bytes with `splice(2)` whenever
//! the reader is a pipe or a socket, and otherwise (a file as the reader,
//! other systems) a read/write loop runs through one large buffer. `std::io::copy` does the first only for std's own types, and the
//! second with an 8 KiB buffer, so for pipekit's ends (and os_pipe's) it is
//! slower; `cargo bench -p pipekit-bench --bench copy` in the repository
//! measures both against raw read loops.
//!
//! | call | moves data with |
//! |---|---|
//! | `copy(&reader, &file)`, `copy(&reader, &socket)`, `copy(&reader, &writer)` | `splice` (Linux, Android) |
//! | `copy(&socket, &writer)` | `splice` (Linux, Android) |
//! | `copy(&file, &writer)` | read/write loop (a file is never spliced into a pipe, see [`copy`]) |
//! | `copy_buffered(&reader, &mut vec)`, any [`Read`] to any [`Write`] | read/write loop |
//! | `PipeReader::splice_to`, `PipeWriter::splice_from`, `PipeReader::tee_to` (Linux, Android) | one system call |
//!
//! Nothing here buffers data between calls: every read and write goes
//! straight to the system with the buffer given to it.
//!
//! The functions live in this module, not at the crate root, so that
//! `use pipekit::*` never brings a `copy` into scope.
//!
//! # Examples
//!
//! Saving everything a pipe delivers to a file:
//!
//! ```
//! use std::io::Write;
//!
//! # fn main() -> std::io::Result<()> {
//! let path = std::env::temp_dir().join(format!("pipekit-doc-splice-{}", std::process::id()));
//! let (reader, mut writer) = pipekit::pipe()?;
//! let file = std::fs::File::create(&path)?;
//!
//! let feeder = std::thread::spawn(move || writer.write_all(b"logged line\n"));
//! let copied = pipekit::splice::copy(&reader, &file)?; // until the writer is gone
//! feeder.join().unwrap()?;
//!
//! assert_eq!(copied, 12);
//! assert_eq!(std::fs::read(&path)?, b"logged line\n");
//! std::fs::remove_file(&path)?;
//! # Ok(())
//! # }
//! ```

use std::io::{self, Read, Write};
#[cfg(unix)]
use std::os::fd::AsFd;

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::{fmt, ops};

#[cfg(unix)]
use crate::sys::imp;
// For the methods on Linux and Android, and for doc links everywhere.
#[cfg(any(target_os = "linux", target_os = "android", doc))]
use crate::{PipeReader, PipeWriter};

/// The size of [`copy_buffered`]'s buffer: a Linux pipe's default capacity,
/// and the size of pipekit's Windows pipes.
const BUFFER: usize = 64 * 1024;

/// Gives both definitions of `copy` (one per platform family, with different
/// bounds) the same documentation.
macro_rules! documented_copy {
    ($($copy:item)+) => {$(
        /// Copies everything from `reader` to `writer` until `reader` reaches
        /// end of file, and returns the number of bytes copied.
        ///
        /// This is [`std::io::copy`] for pipes, made fast: on Linux and
        /// Android the kernel moves the data with `splice(2)` when the reader
        /// is a pipe (any pipe: pipekit's, std's, a child's standard stream,
        /// a FIFO) or a socket, and a read/write loop through one buffer the
        /// size of the pipe (at least 64 KiB) does the rest. Typical calls:
        ///
        /// - a [`PipeReader`] into a
        ///   [`File`](std::fs::File), a socket or another
        ///   [`PipeWriter`]: `copy(&reader, &file)`;
        /// - a file or socket into a `PipeWriter`: `copy(&file, &writer)`.
        ///
        /// The arguments are taken by value, so references work
        /// (`&reader`, `&mut file`) and so do owned ends, which are closed
        /// when `copy` returns.
        ///
        /// # Behavior
        ///
        /// On Unix `copy` works on the two file descriptors, not through
        /// the `Read` and `Write` implementations (the bounds ask for them
        /// so that the arguments cannot be swapped by mistake). It calls
        /// [`writer.flush()`](Write::flush) first, so that bytes a writer
        /// such as [`Stdout`](std::io::Stdout) has buffered come before the
        /// copied ones. A reader that buffers input internally (of std's
        /// types, only `Stdin`) may hold bytes its file descriptor no longer
        /// has; read those first, or use [`copy_buffered`].
        ///
        /// `copy` runs until end of file, whatever the ends' modes: on a
        /// nonblocking end it waits with `poll(2)` where a blocking end
        /// would block, so it never fails with
        /// [`WouldBlock`](io::ErrorKind::WouldBlock) and never loses the
        /// count of bytes already copied that way. Timeouts set with
        /// [`set_read_timeout`](PipeReader::set_read_timeout) or
        /// [`set_write_timeout`](PipeWriter::set_write_timeout) do
        /// not apply. An interrupted system call is retried.
        ///
        /// A regular file (or any reader that is neither a pipe nor a socket)
        /// is never spliced into a pipe, following std's `io::copy`: the pipe
        /// would hold references to the file's cached pages, not a copy, and
        /// a change made to the file after `copy` returned could still reach
        /// the pipe's reader. `PipeWriter::splice_from` (Linux, Android)
        /// does that on request, when it is what you want.
        ///
        /// # Errors
        ///
        /// The first error from the system, other than `EINTR` (retried),
        /// `EAGAIN` (waited for) and a refusal of `splice` (which switches to
        /// the loop): for example [`BrokenPipe`](io::ErrorKind::BrokenPipe)
        /// when the writer is a pipe or socket whose reading side is closed,
        /// or `ENOSPC` on a full disk. The bytes copied before an error are
        /// in the writer, but their count is not reported, as with
        /// `std::io::copy`. A writer that accepts 0 bytes fails with
        /// [`WriteZero`](io::ErrorKind::WriteZero). Whatever the outcome, no
        /// file descriptor is opened or closed (except owned arguments,
        /// dropped on return).
        ///
        /// # Platform-specific behavior
        ///
        /// - Linux and Android: `splice(2)` when `reader` is a pipe or a
        ///   socket, falling back to the loop from where it stopped if the
        ///   kernel refuses the pair (`EINVAL`: neither side a pipe, a writer
        ///   opened with `O_APPEND`, a file system without splice support).
        ///   If the kernel has no `splice` or forbids it (`ENOSYS`, `EPERM`,
        ///   e.g. under seccomp), the process stops trying it. One `fstat` on
        ///   `reader` per call decides; when the loop runs, `F_GETPIPE_SZ`
        ///   (on one end or both) sizes its buffer, from 64 KiB to 4 MiB.
        /// - Other Unix systems: the read/write loop with a 64 KiB buffer, on
        ///   the file descriptors, waiting for nonblocking ends as above.
        /// - Windows and other targets: [`copy_buffered`], through `Read`
        ///   and `Write`; `reader` and `writer` then need no file descriptor,
        ///   and a nonblocking end makes `copy` fail with `WouldBlock`.
        ///
        /// This may change: other systems' zero-copy calls may be used later.
        ///
        /// # Examples
        ///
        /// Relaying one pipe into another:
        ///
        /// ```
        /// use std::io::{Read, Write};
        ///
        /// # fn main() -> std::io::Result<()> {
        /// let (from_reader, mut from_writer) = pipekit::pipe()?;
        /// let (mut to_reader, to_writer) = pipekit::pipe()?;
        ///
        /// let relay = std::thread::spawn(move || pipekit::splice::copy(from_reader, to_writer));
        /// from_writer.write_all(b"relayed")?;
        /// drop(from_writer); // end of file for the relay, which then drops to_writer
        ///
        /// let mut text = String::new();
        /// to_reader.read_to_string(&mut text)?;
        /// assert_eq!(text, "relayed");
        /// assert_eq!(relay.join().unwrap()?, 7);
        /// # Ok(())
        /// # }
        /// ```
        ///
        /// # References
        ///
        /// [`splice(2)`](https://man7.org/linux/man-pages/man2/splice.2.html),
        /// [`std::io::copy`].
        #[doc(alias = "splice")]
        // `copy` exists on every target (the bounds differ, as said above),
        // so its rendered docs carry no "available on" badge.
        #[cfg_attr(docsrs, doc(auto_cfg = false))]
        $copy
    )+};
}

documented_copy! {
    #[cfg(unix)]
    pub fn copy<R, W>(reader: R, mut writer: W) -> io::Result<u64>
    where
        R: Read + AsFd,
        W: Write + AsFd,
    {
        writer.flush()?;
        imp::copy(reader.as_fd(), writer.as_fd())
    }

    #[cfg(not(unix))]
    pub fn copy<R, W>(reader: R, writer: W) -> io::Result<u64>
    where
        R: Read,
        W: Write,
    {
        copy_buffered(reader, writer)
    }
}

/// Copies everything from any reader to any writer through one 64 KiB
/// buffer, and returns the number of bytes copied: the loop that [`copy`]
/// falls back to, for a side that has no file descriptor.
///
/// Use it when one side is not a file descriptor (a `Vec<u8>`, a
/// `BufWriter`, a compressor, a `&[u8]`), or to honour the timeouts of a
/// [`PipeReader`] or [`PipeWriter`]:
/// unlike [`copy`], it goes through [`Read::read`] and [`Write::write_all`].
/// Each read goes straight into the buffer and each write straight out of
/// it. It does not flush `writer`, as `std::io::copy` does not.
///
/// # Errors
///
/// The first error of a read or a write, other than
/// [`Interrupted`](io::ErrorKind::Interrupted), which is retried. The count
/// of bytes copied before the error is not reported, as with
/// `std::io::copy`. `copy_buffered` expects blocking ends: with a nonblocking
/// one it fails with [`WouldBlock`](io::ErrorKind::WouldBlock) as soon as
/// that end is not ready (use [`copy`], which waits, on Unix).
///
/// # Platform-specific behavior
///
/// The same everywhere: it only calls `Read` and `Write`.
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// # fn main() -> std::io::Result<()> {
/// let (reader, mut writer) = pipekit::pipe()?;
/// writer.write_all(b"into memory")?;
/// drop(writer);
///
/// let mut bytes = Vec::new();
/// assert_eq!(pipekit::splice::copy_buffered(&reader, &mut bytes)?, 11);
/// assert_eq!(bytes, b"into memory");
/// # Ok(())
/// # }
/// ```
pub fn copy_buffered<R, W>(mut reader: R, mut writer: W) -> io::Result<u64>
where
    R: Read,
    W: Write,
{
    let mut buf = vec![0u8; BUFFER];
    let mut copied = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        writer.write_all(&buf[..n])?;
        copied += n as u64;
    }
}

/// Flags for [`PipeReader::splice_to`], [`PipeWriter::splice_from`] and
/// [`PipeReader::tee_to`]: a set of `SPLICE_F_*` values, combined with `|`.
///
/// # Platform-specific behavior
///
/// Linux and Android only, like the calls that take it. The values are the
/// kernel's (see [`bits`](SpliceFlags::bits)).
///
/// # Examples
///
/// ```
/// use pipekit::splice::SpliceFlags;
///
/// let flags = SpliceFlags::NONBLOCK | SpliceFlags::MORE;
/// assert!(flags.contains(SpliceFlags::NONBLOCK));
/// assert!(!flags.contains(SpliceFlags::MOVE));
/// assert_eq!(SpliceFlags::default(), SpliceFlags::empty());
/// ```
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SpliceFlags(u32);

#[cfg(any(target_os = "linux", target_os = "android"))]
impl SpliceFlags {
    /// `SPLICE_F_NONBLOCK`: do not wait for the pipe(s); fail with
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) instead when the pipe to
    /// read is empty or the pipe to write is full. (The other side may still
    /// block, unless it is itself in nonblocking mode.)
    #[doc(alias = "SPLICE_F_NONBLOCK")]
    pub const NONBLOCK: SpliceFlags = SpliceFlags(imp::SPLICE_F_NONBLOCK);

    /// `SPLICE_F_MORE`: more data will follow; a hint for a socket, as with
    /// `MSG_MORE`, that it may wait to fill a packet.
    #[doc(alias = "SPLICE_F_MORE")]
    pub const MORE: SpliceFlags = SpliceFlags(imp::SPLICE_F_MORE);

    /// `SPLICE_F_MOVE`: move pages instead of copying them, if possible. The
    /// kernel has ignored it since Linux 2.6.21; accepted for completeness.
    #[doc(alias = "SPLICE_F_MOVE")]
    pub const MOVE: SpliceFlags = SpliceFlags(imp::SPLICE_F_MOVE);

    /// No flags: wait for the pipes as their mode says.
    pub const fn empty() -> SpliceFlags {
        SpliceFlags(0)
    }

    /// Both sets together; the same as `self | other`, usable in a `const`.
    #[must_use]
    pub const fn union(self, other: SpliceFlags) -> SpliceFlags {
        SpliceFlags(self.0 | other.0)
    }

    /// Whether every flag of `other` is in `self`.
    pub const fn contains(self, other: SpliceFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags as the `unsigned int` the system calls take.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl ops::BitOr for SpliceFlags {
    type Output = SpliceFlags;

    fn bitor(self, other: SpliceFlags) -> SpliceFlags {
        self.union(other)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl ops::BitOrAssign for SpliceFlags {
    fn bitor_assign(&mut self, other: SpliceFlags) {
        *self = self.union(other);
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl fmt::Debug for SpliceFlags {
    /// `SpliceFlags(NONBLOCK | MORE)`, or `SpliceFlags(empty)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(SpliceFlags, &str); 3] = [
            (SpliceFlags::NONBLOCK, "NONBLOCK"),
            (SpliceFlags::MORE, "MORE"),
            (SpliceFlags::MOVE, "MOVE"),
        ];
        f.write_str("SpliceFlags(")?;
        let mut sep = "";
        for (flag, name) in NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = " | ";
            }
        }
        if self.is_empty() {
            f.write_str("empty")?;
        }
        f.write_str(")")
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl PipeReader {
    /// Moves up to `len` bytes from this pipe to `to` inside the kernel, with
    /// one `splice(2)`, and returns how many were moved.
    ///
    /// `to` may be any file descriptor that accepts splicing: a file (written
    /// at, and advancing, its offset), a socket, another pipe's writer,
    /// `/dev/null`. The bytes are taken out of this pipe, as by a read. The
    /// call moves what the pipe holds, up to `len`; it waits only while the
    /// pipe is empty (or `to` is full), unless [`SpliceFlags::NONBLOCK`]
    /// says otherwise. `Ok(0)` means end of file: the pipe is empty and every
    /// writer is closed (or `len` was 0). One call moves at most
    /// `0x7fff_f000` bytes; a larger `len` is capped to that.
    ///
    /// To move everything until end of file, use [`copy`], which loops and
    /// falls back to read/write where `splice` is refused. The read timeout
    /// ([`set_read_timeout`](PipeReader::set_read_timeout)) does not apply.
    ///
    /// # Errors
    ///
    /// The system's error, unchanged, so that `raw_os_error` tells them
    /// apart:
    ///
    /// - [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) when the call
    ///   would have to wait (the pipe empty, or `to` full) and
    ///   [`SpliceFlags::NONBLOCK`] is given or the end that would wait is in
    ///   nonblocking mode. (Recent kernels, such as 6.x, honour the pipe's
    ///   own nonblocking mode; pass the flag to be sure on any kernel.)
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput) (`EINVAL`) when `to`
    ///   does not support splicing, was opened with `O_APPEND`, or is this
    ///   same pipe.
    /// - [`BrokenPipe`](io::ErrorKind::BrokenPipe) when `to` is a pipe or
    ///   socket whose reading side is closed.
    /// - [`Interrupted`](io::ErrorKind::Interrupted) when a signal arrives
    ///   before anything was moved (not retried: this is one system call,
    ///   like `read`).
    /// - `EBADF` when `to` is not open for writing.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only (`splice(2)` with null offsets).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use pipekit::splice::SpliceFlags;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (reader, mut writer) = pipekit::pipe()?;
    /// writer.write_all(b"0123456789")?;
    ///
    /// let sink = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    /// assert_eq!(reader.splice_to(&sink, 4, SpliceFlags::empty())?, 4);
    /// assert_eq!(reader.bytes_available()?, 6);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # References
    ///
    /// [`splice(2)`](https://man7.org/linux/man-pages/man2/splice.2.html).
    #[doc(alias = "splice")]
    pub fn splice_to(&self, to: impl AsFd, len: usize, flags: SpliceFlags) -> io::Result<usize> {
        imp::splice(self.as_fd(), to.as_fd(), len, flags.bits())
    }

    /// Copies up to `len` bytes from this pipe into the pipe of `to` inside
    /// the kernel, with one `tee(2)`, *without consuming them*: they stay in
    /// this pipe for the next read. Returns how many bytes were copied.
    ///
    /// Because nothing is consumed, a second `tee_to` copies the same bytes
    /// again. The usual pattern is to tee `n` bytes, then consume exactly
    /// those `n` (with [`splice_to`](PipeReader::splice_to) or a read), and
    /// repeat. The call waits while this pipe is empty or `to`'s pipe is
    /// full, unless [`SpliceFlags::NONBLOCK`] is given. `Ok(0)` means this
    /// pipe is empty and every writer is closed (or `len` was 0). At most
    /// `0x7fff_f000` bytes per call.
    ///
    /// # Errors
    ///
    /// The system's error, unchanged:
    ///
    /// - [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) with
    ///   [`SpliceFlags::NONBLOCK`] (or an end in nonblocking mode) when this
    ///   pipe is empty or `to`'s is full.
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput) (`EINVAL`) when `to`
    ///   writes to this same pipe, or is not a pipe at all (possible with a
    ///   `PipeWriter` made from another kind of fd).
    /// - [`Interrupted`](io::ErrorKind::Interrupted) when a signal arrives
    ///   before anything was copied.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only (`tee(2)`).
    ///
    /// # Examples
    ///
    /// Sending the same bytes down a second pipe, while they stay readable
    /// in the first:
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use pipekit::splice::SpliceFlags;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (mut reader, mut writer) = pipekit::pipe()?;
    /// let (mut copy_reader, copy_writer) = pipekit::pipe()?;
    /// writer.write_all(b"twice")?;
    ///
    /// assert_eq!(reader.tee_to(&copy_writer, 5, SpliceFlags::empty())?, 5);
    /// let (mut first, mut second) = ([0; 5], [0; 5]);
    /// reader.read_exact(&mut first)?;
    /// copy_reader.read_exact(&mut second)?;
    /// assert_eq!((&first, &second), (b"twice", b"twice"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # References
    ///
    /// [`tee(2)`](https://man7.org/linux/man-pages/man2/tee.2.html).
    #[doc(alias = "tee")]
    pub fn tee_to(&self, to: &PipeWriter, len: usize, flags: SpliceFlags) -> io::Result<usize> {
        imp::tee(self.as_fd(), to.as_fd(), len, flags.bits())
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl PipeWriter {
    /// Moves up to `len` bytes from `from` into this pipe inside the kernel,
    /// with one `splice(2)`, and returns how many were moved.
    ///
    /// `from` may be any file descriptor that supports splicing: a file
    /// (read at, and advancing, its offset), a socket, another pipe's reader.
    /// The call waits while this pipe is full, or while `from` has nothing
    /// yet (a socket or an empty pipe), unless [`SpliceFlags::NONBLOCK`]
    /// says otherwise for the pipes. `Ok(0)` means `from` is at end of file
    /// (or `len` was 0). At most `0x7fff_f000` bytes per call. The write
    /// timeout ([`set_write_timeout`](PipeWriter::set_write_timeout)) does
    /// not apply.
    ///
    /// **A file spliced into a pipe is not copied**: the pipe holds
    /// references to the file's cached pages until they are read, so a change
    /// made to the file in between shows in what the pipe's reader gets.
    /// That is the point when the file does not change (serving files to a
    /// socket or a child), and the reason [`copy`] never does it. Use this
    /// method only for files nobody writes to meanwhile.
    ///
    /// # Errors
    ///
    /// The system's error, unchanged:
    ///
    /// - [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) when the call
    ///   would have to wait (this pipe full, or `from` without data) and
    ///   [`SpliceFlags::NONBLOCK`] is given or the end that would wait is in
    ///   nonblocking mode (honoured for pipes by recent kernels, such as
    ///   6.x; pass the flag to be sure).
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput) (`EINVAL`) when `from`
    ///   does not support splicing or is this same pipe.
    /// - [`BrokenPipe`](io::ErrorKind::BrokenPipe) when this pipe's readers
    ///   are all closed.
    /// - [`Interrupted`](io::ErrorKind::Interrupted) when a signal arrives
    ///   before anything was moved.
    /// - `EBADF` when `from` is not open for reading.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only (`splice(2)` with null offsets).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use pipekit::splice::SpliceFlags;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (mut reader, writer) = pipekit::pipe()?;
    /// let zeros = std::fs::File::open("/dev/zero")?;
    ///
    /// assert_eq!(writer.splice_from(&zeros, 100, SpliceFlags::empty())?, 100);
    /// let mut bytes = [1; 100];
    /// reader.read_exact(&mut bytes)?;
    /// assert_eq!(bytes, [0; 100]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # References
    ///
    /// [`splice(2)`](https://man7.org/linux/man-pages/man2/splice.2.html).
    #[doc(alias = "splice")]
    pub fn splice_from(
        &self,
        from: impl AsFd,
        len: usize,
        flags: SpliceFlags,
    ) -> io::Result<usize> {
        imp::splice(from.as_fd(), self.as_fd(), len, flags.bits())
    }
}
