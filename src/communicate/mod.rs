//! Deadlock-free I/O: feed any number of pipes and drain any number of
//! others at once, on one thread, with a deadline.
//!
//! A parent that writes a child's standard input and reads its standard
//! output and error one after the other can deadlock as soon as one of the
//! pipes fills up (see the [crate documentation](crate#deadlocks)). A
//! [`Communicator`] serves every pipe as soon as it is ready, so no pipe ever
//! waits on another: it writes each input as the pipe has room, reads each
//! output as data arrives, closes each input when it has been written so that
//! the reader sees end of file, and returns when every output has reached end
//! of file.
//!
//! A deadline bounds the whole exchange, reading to end of file included, so
//! a grandchild that inherited a pipe cannot make it hang. When it passes,
//! [`Communicator::run`] fails with [`io::ErrorKind::TimedOut`]; everything
//! read so far is already in the sinks, and calling `run` again resumes
//! exactly where it stopped.
//!
//! For a child process, [`Exchange`] does all of this from a
//! [`Command`](std::process::Command): it spawns the child with the pipes it
//! needs, feeds its input, captures its outputs (or streams them into
//! [`Sink`]s, or joins them in one pipe), and returns what
//! [`Command::output`](std::process::Command::output) returns, within a
//! deadline that kills the child, or its whole process tree, when it
//! passes. [`Exchange::spawn`] runs it in steps that resume after each
//! timeout. For a [`Child`](std::process::Child) already spawned,
//! [`communicate`] and [`communicate_timeout`] do it in one call;
//! [`wait_timeout`] waits for a child's exit with a bound; [`spawn_joined`]
//! starts a child whose standard output and standard error share one pipe,
//! to be read in the order the child wrote them.
//!
//! # What the engine touches, and what it does not
//!
//! Nothing that anyone else can observe. The pipes you give it may be
//! shared: clones, `dup_stdout()`, a child's inherited copy, a reader that
//! another thread also reads. The engine never changes a flag of their open
//! file descriptions (`O_NONBLOCK` is shared by every duplicate), never
//! blocks in a read or a write whoever else uses the pipe, and so keeps its
//! deadline. A pipe given twice (two clones of one reader as two outputs)
//! is served correctly: each byte lands in exactly one sink.
//!
//! A write into a pipe whose reader is gone does not kill the process, even
//! with `SIGPIPE` at its default disposition: that input stops
//! ([`Communicator::input_closed_early`]) and the exchange goes on.
//!
//! # Platform-specific behavior
//!
//! Unix: one `poll(2)` loop. A pipe whose description is nonblocking is
//! used as it is. On Linux and Android, a blocking one is opened again
//! through `/proc/thread-self/fd` for the length of each `run`: a new open file
//! description of the same pipe, nonblocking, which nobody else shares.
//! Where that is impossible (other systems, no `/proc`, a pipe of another
//! user), and for a socket, the engine uses the caller's blocking
//! description and asks it only for what it can do at once: writes of at
//! most `PIPE_BUF` bytes while a zero-timeout `poll` reports room, reads of
//! at most what `FIONREAD` reports. That never blocks within the exchange;
//! another thread that reads or writes the same pipe between that check and
//! the call can still make the call wait until it can proceed. Any other
//! kind of fd given as a pipe end (a regular file, a device) is read and
//! written as it is whenever `poll` reports it ready. While an
//! exchange with inputs runs, `SIGPIPE` is blocked on the calling thread,
//! and one raised by the engine's own write is consumed before the thread's
//! signal mask is restored; a `SIGPIPE` already pending is left pending.
//!
//! Windows: overlapped reads and writes on ends that allow it (std's
//! `ChildStdin`/`ChildStdout`/`ChildStderr`, and ends made overlapped with
//! [`PipeOptions`](crate::PipeOptions)); a helper thread for a synchronous
//! end, whose pending call is cancelled when the deadline passes. Each write
//! moves at most the pipe's capacity, so that one cancelled at the deadline
//! has usually moved nothing; one that had to wait for room may have been
//! read in part, and resuming relies on the system counting those bytes
//! (wine, on which pipekit's Windows tests run, counts 0). Calls on one
//! synchronous end wait for each other, and one that waits behind another
//! thread's blocking call on the same end (a clone that a thread outside the
//! exchange reads or writes) cannot be cancelled before that call ends.
//! `run` does not wait for it: at most 20 ms after the deadline it returns,
//! leaving that call in flight, cancelled as soon as it can be. What the
//! call did before that, if anything, is accounted for by the next `run`:
//! the bytes it read land in the sink then, the bytes it wrote are counted
//! then ([`Communicator::bytes_written`],
//! [`TimedOutOutput::input_written`]), so that resuming stays exact.
//! Dropping the exchange discards it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::sys::imp;
use crate::{PipeReader, PipeWriter};

mod child;
#[cfg(all(feature = "tokio", any(unix, windows)))]
pub(crate) mod detached;
mod exchange;
#[cfg(test)]
mod tests;
pub use child::{communicate, communicate_timeout, spawn_joined, TimedOutOutput};
pub use exchange::{wait_timeout, Exchange, RunningExchange};

/// Reads into an output's scratch buffer go at most this far at once, and a
/// `Vec` sink always has at least this much room before a read.
const CHUNK: usize = 64 * 1024;

/// Where the bytes written into an input come from.
///
/// Made from bytes, borrowed (`&[u8]`, `&[u8; N]`, `&Vec<u8>`, `&str`,
/// `&String`) or owned (`Vec<u8>`, `String`); from a [`File`] or a
/// `&mut File`, read from its current position to its end; or, with
/// [`Source::reader`], from any [`Read`].
pub struct Source<'a>(SourceKind<'a>);

enum SourceKind<'a> {
    Bytes(&'a [u8]),
    Reader(Box<dyn Read + Send + 'a>),
}

impl<'a> Source<'a> {
    /// Streams what `reader` yields, until it reports end of file.
    ///
    /// The reader is read on the communicating thread, 64 KiB at a time, as
    /// the pipe takes the bytes. A reader that blocks delays every other pipe
    /// and the deadline, so use readers that answer at once (files, memory,
    /// already-buffered data).
    pub fn reader(reader: impl Read + Send + 'a) -> Source<'a> {
        Source(SourceKind::Reader(Box::new(reader)))
    }
}

impl<'a> From<&'a [u8]> for Source<'a> {
    fn from(bytes: &'a [u8]) -> Source<'a> {
        Source(SourceKind::Bytes(bytes))
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Source<'a> {
    fn from(bytes: &'a [u8; N]) -> Source<'a> {
        Source(SourceKind::Bytes(bytes))
    }
}

impl<'a> From<&'a Vec<u8>> for Source<'a> {
    fn from(bytes: &'a Vec<u8>) -> Source<'a> {
        Source(SourceKind::Bytes(bytes))
    }
}

impl<'a> From<&'a str> for Source<'a> {
    fn from(text: &'a str) -> Source<'a> {
        Source(SourceKind::Bytes(text.as_bytes()))
    }
}

impl<'a> From<&'a String> for Source<'a> {
    fn from(text: &'a String) -> Source<'a> {
        Source(SourceKind::Bytes(text.as_bytes()))
    }
}

/// The bytes are moved into the source, and written from it 64 KiB at a
/// time, as [`Source::reader`] writes.
impl From<Vec<u8>> for Source<'_> {
    fn from(bytes: Vec<u8>) -> Self {
        if bytes.is_empty() {
            return Source(SourceKind::Bytes(&[]));
        }
        Source::reader(io::Cursor::new(bytes))
    }
}

/// The text is moved into the source, as for `Vec<u8>`.
impl From<String> for Source<'_> {
    fn from(text: String) -> Self {
        Source::from(text.into_bytes())
    }
}

/// The file is read from its current position to its end, as
/// [`Source::reader`] reads.
impl From<File> for Source<'_> {
    fn from(file: File) -> Self {
        Source::reader(file)
    }
}

/// The file is read from its current position to its end, as
/// [`Source::reader`] reads; its position moves as it is read.
impl<'a> From<&'a mut File> for Source<'a> {
    fn from(file: &'a mut File) -> Source<'a> {
        Source::reader(file)
    }
}

impl fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            SourceKind::Bytes(bytes) => write!(f, "Source::Bytes({} bytes)", bytes.len()),
            SourceKind::Reader(_) => f.write_str("Source::Reader"),
        }
    }
}

/// Where the bytes read from an output go.
///
/// Made from a `&mut Vec<u8>`, which the pipe is read into directly, without
/// an intermediate copy; from a [`File`] or a `&mut File`, a [`PipeWriter`],
/// [`io::Stdout`] or [`io::Stderr`], each written as [`Sink::writer`]
/// writes; with [`Sink::writer`], from any [`Write`]; or, with
/// [`Sink::lines`], from a callback that takes the output line by line.
/// [`Sink::limit`] caps how much of the output is kept.
pub struct Sink<'a> {
    kind: SinkKind<'a>,
    limit: Option<u64>,
}

enum SinkKind<'a> {
    Vec(VecSink<'a>),
    Writer(Box<dyn SinkWrite + Send + 'a>),
}

/// The vector a `Vec` sink reads into: the caller's, or one the sink owns
/// (the child layer's captures, which outlive any borrow of the caller).
enum VecSink<'a> {
    Borrowed(&'a mut Vec<u8>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for VecSink<'_> {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        match self {
            VecSink::Borrowed(vec) => vec,
            VecSink::Owned(vec) => vec,
        }
    }
}

impl std::ops::DerefMut for VecSink<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        match self {
            VecSink::Borrowed(vec) => vec,
            VecSink::Owned(vec) => vec,
        }
    }
}

/// A writer sink, told when its output reaches end of file.
trait SinkWrite: Write {
    /// The output reached end of file: nothing more will be written.
    fn end_of_file(&mut self) {}
}

/// [`Sink::writer`]'s writer, which needs no word of the end of file.
struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> SinkWrite for Plain<W> {}

/// [`Sink::lines`]'s writer: splits what it is given into lines, and keeps
/// the start of a line until its end arrives.
struct Lines<F> {
    callback: F,
    partial: Vec<u8>,
}

impl<F: FnMut(&[u8])> Lines<F> {
    /// Passes one complete line, without its `\n` and a `\r` before it.
    fn line(callback: &mut F, line: &[u8]) {
        callback(line.strip_suffix(b"\r").unwrap_or(line));
    }
}

impl<F: FnMut(&[u8])> Write for Lines<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                Self::line(&mut self.callback, &rest[..end]);
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                Self::line(&mut self.callback, &self.partial);
                self.partial.clear();
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(&[u8])> SinkWrite for Lines<F> {
    fn end_of_file(&mut self) {
        if !self.partial.is_empty() {
            (self.callback)(&self.partial);
            self.partial = Vec::new();
        }
    }
}

impl<'a> Sink<'a> {
    /// Writes the output into `writer`, each chunk with
    /// [`write_all`](Write::write_all) as it arrives.
    ///
    /// An error from the writer stops the exchange: [`Communicator::run`]
    /// returns it. The chunk being written then may have reached the writer
    /// in part (`write_all` does not say how much), so that output cannot be
    /// resumed without a gap or a repeat: treat the error as the end of the
    /// exchange.
    pub fn writer(writer: impl Write + Send + 'a) -> Sink<'a> {
        Sink {
            kind: SinkKind::Writer(Box::new(Plain(writer))),
            limit: None,
        }
    }

    /// Passes the output to `callback` one line at a time, as soon as each
    /// line is complete: each line without its `\n` (and a `\r` before
    /// it), as [`BufRead::lines`](io::BufRead::lines) gives them, and the
    /// last line, if it has no `\n`, when the output reaches end of file.
    ///
    /// A line may span any number of reads; its start is kept until its end
    /// arrives, so a line is never split. [`Sink::limit`] counts the bytes
    /// of the output, end-of-line bytes included: the line it cuts is passed
    /// as far as it was kept, at end of file. The callback runs on the
    /// communicating thread, so a slow one delays every other pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use pipekit::communicate::{Communicator, Sink};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let (reader, mut writer) = pipekit::pipe()?;
    /// writer.write_all(b"one\r\ntwo\nthree")?;
    /// drop(writer);
    /// let mut lines = Vec::new();
    /// Communicator::new()
    ///     .output(reader, Sink::lines(|line| lines.push(line.to_vec())))
    ///     .run()?;
    /// assert_eq!(lines, [&b"one"[..], b"two", b"three"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn lines(callback: impl FnMut(&[u8]) + Send + 'a) -> Sink<'a> {
        Sink {
            kind: SinkKind::Writer(Box::new(Lines {
                callback,
                partial: Vec::new(),
            })),
            limit: None,
        }
    }

    /// A sink into a vector it owns, read with
    /// [`Communicator::captured`].
    pub(crate) fn owned() -> Sink<'a> {
        Sink {
            kind: SinkKind::Vec(VecSink::Owned(Vec::new())),
            limit: None,
        }
    }

    /// Keeps at most `bytes` bytes of this output.
    ///
    /// The output is still read to end of file, so the process writing it
    /// never blocks on a full pipe (and never dies of a broken one); the
    /// bytes past the limit are read and discarded.
    /// [`Communicator::truncated`] tells whether any were.
    pub fn limit(mut self, bytes: u64) -> Sink<'a> {
        self.limit = Some(bytes);
        self
    }
}

impl<'a> From<&'a mut Vec<u8>> for Sink<'a> {
    fn from(vec: &'a mut Vec<u8>) -> Sink<'a> {
        Sink {
            kind: SinkKind::Vec(VecSink::Borrowed(vec)),
            limit: None,
        }
    }
}

impl From<File> for Sink<'_> {
    fn from(file: File) -> Self {
        Sink::writer(file)
    }
}

impl<'a> From<&'a mut File> for Sink<'a> {
    fn from(file: &'a mut File) -> Sink<'a> {
        Sink::writer(file)
    }
}

impl From<PipeWriter> for Sink<'_> {
    fn from(pipe: PipeWriter) -> Self {
        Sink::writer(pipe)
    }
}

impl From<io::Stdout> for Sink<'_> {
    fn from(stdout: io::Stdout) -> Self {
        Sink::writer(stdout)
    }
}

impl From<io::Stderr> for Sink<'_> {
    fn from(stderr: io::Stderr) -> Self {
        Sink::writer(stderr)
    }
}

impl fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            SinkKind::Vec(_) => "Vec",
            SinkKind::Writer(_) => "Writer",
        };
        f.debug_struct("Sink")
            .field("kind", &kind)
            .field("limit", &self.limit)
            .finish()
    }
}

/// Drives any number of pipe ends at once until every input is written and
/// every output has reached end of file.
///
/// Add inputs with [`input`](Communicator::input) and outputs with
/// [`output`](Communicator::output), bound the exchange with
/// [`timeout`](Communicator::timeout) or
/// [`deadline`](Communicator::deadline), then call
/// [`run`](Communicator::run). See the [module documentation](self) for the
/// guarantees.
///
/// # Examples
///
/// Feeding a child 10 MB while collecting 10 MB from each of its outputs,
/// which would deadlock if done one pipe at a time:
///
/// ```no_run
/// use std::process::{Command, Stdio};
/// use std::time::Duration;
/// use pipekit::communicate::Communicator;
///
/// # fn main() -> std::io::Result<()> {
/// let mut child = Command::new("some-filter")
///     .stdin(Stdio::piped())
///     .stdout(Stdio::piped())
///     .stderr(Stdio::piped())
///     .spawn()?;
/// let input = vec![b'x'; 10_000_000];
/// let (mut out, mut err) = (Vec::new(), Vec::new());
///
/// Communicator::new()
///     .input(child.stdin.take().unwrap(), &input)
///     .output(child.stdout.take().unwrap(), &mut out)
///     .output(child.stderr.take().unwrap(), &mut err)
///     .timeout(Duration::from_secs(60))
///     .run()?;
/// let status = child.wait()?;
/// # let _ = status;
/// # Ok(())
/// # }
/// ```
///
/// Resuming after a timeout, with no byte lost or duplicated:
///
/// ```
/// use std::io::{ErrorKind, Write};
/// use std::time::Duration;
/// use pipekit::communicate::Communicator;
///
/// # fn main() -> std::io::Result<()> {
/// let (reader, mut writer) = pipekit::pipe()?;
/// let mut received = Vec::new();
/// let mut communicator = Communicator::new();
/// communicator.output(reader, &mut received).timeout(Duration::from_millis(10));
///
/// writer.write_all(b"first ")?;
/// let err = communicator.run().unwrap_err(); // the writer is still open
/// assert_eq!(err.kind(), ErrorKind::TimedOut);
///
/// writer.write_all(b"second")?;
/// drop(writer);
/// communicator.run()?; // picks up where it stopped, until end of file
/// drop(communicator);
/// assert_eq!(received, b"first second");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Communicator<'a> {
    inputs: Vec<Input<'a>>,
    outputs: Vec<OutputPipe<'a>>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    /// The kind and text of the error that ended the exchange, if one did.
    failed: Option<(io::ErrorKind, String)>,
}

impl<'a> Communicator<'a> {
    /// An exchange with no pipes and no deadline.
    pub fn new() -> Communicator<'a> {
        Communicator::default()
    }

    /// Adds an input: the bytes of `source` are written into `pipe`, which is
    /// then closed so that its reader sees end of file.
    ///
    /// `pipe` is a [`PipeWriter`] or anything that converts into one, such as
    /// a [`ChildStdin`](std::process::ChildStdin). If the reader goes away
    /// before everything is written (the child exited, or closed its standard
    /// input), the input stops without failing the exchange;
    /// [`Communicator::input_closed_early`] tells.
    pub fn input(
        &mut self,
        pipe: impl Into<PipeWriter>,
        source: impl Into<Source<'a>>,
    ) -> &mut Self {
        self.inputs
            .push(Input::new(Some(pipe.into()), source.into()));
        self
    }

    /// Adds an output: `pipe` is read to end of file into `sink`.
    ///
    /// `pipe` is a [`PipeReader`] or anything that converts into one, such as
    /// a [`ChildStdout`](std::process::ChildStdout). `sink` is a
    /// `&mut Vec<u8>`, or a [`Sink`].
    pub fn output(&mut self, pipe: impl Into<PipeReader>, sink: impl Into<Sink<'a>>) -> &mut Self {
        self.outputs
            .push(OutputPipe::new(Some(pipe.into()), sink.into(), None));
        self
    }

    /// Bounds each call to [`run`](Communicator::run) to `timeout`, counted
    /// from the start of the call.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = Some(timeout);
        self
    }

    /// Bounds the exchange to end at `deadline` at the latest, whichever of
    /// the deadline and the [`timeout`](Communicator::timeout) comes first.
    pub fn deadline(&mut self, deadline: Instant) -> &mut Self {
        self.deadline = Some(deadline);
        self
    }

    /// Runs the exchange until every input has been written (or its reader
    /// has gone) and every output has reached end of file.
    ///
    /// Each input's pipe is closed as soon as its source is exhausted, and
    /// each output's pipe once it reaches end of file. A call after `run`
    /// returned `Ok` does nothing.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::TimedOut`] with a [`DeadlinePassed`] inside when
    ///   the deadline passes first. Every
    ///   byte read so far is in its sink, every input keeps its position, and
    ///   calling `run` again (after a new [`timeout`](Communicator::timeout)
    ///   or [`deadline`](Communicator::deadline), if need be) resumes with no
    ///   byte lost or duplicated. (On Windows, a call held up by another
    ///   thread's call on the same end is accounted for by the next `run`:
    ///   see the [module documentation](self#platform-specific-behavior).)
    /// - The error of a [`Sink::writer`] or a [`Source::reader`], which stops
    ///   the exchange.
    /// - The system's error from a read, a write (other than `BrokenPipe` on
    ///   an input) or the wait. `Interrupted` is retried and never surfaces.
    ///
    /// Any error but the deadline's (whatever its kind: a sink's own
    /// `TimedOut` included) ends the exchange for good: every pipe still
    /// open is closed before `run` returns, so that the processes at the
    /// other ends see end of file or a broken pipe instead of waiting for a
    /// `Communicator` that may live on; a later `run` fails again, with the
    /// same kind, and moves nothing.
    ///
    /// # Platform-specific behavior
    ///
    /// See the [module documentation](self).
    pub fn run(&mut self) -> io::Result<()> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(
                *kind,
                format!("pipekit: the exchange already failed and cannot resume: {message}"),
            ));
        }
        let deadline = earliest(self.timeout, self.deadline);
        let result = imp::communicate::drive(&mut self.inputs, &mut self.outputs, deadline);
        if let Err(error) = &result {
            if DeadlinePassed::from_error(error).is_none() {
                self.failed = Some((error.kind(), error.to_string()));
                for input in &mut self.inputs {
                    input.close(false);
                }
                for output in &mut self.outputs {
                    output.close();
                }
            }
        }
        result
    }

    /// Lets the engine enlarge every pipe added so far when it fills up,
    /// within the process-wide budget (see [`Growth`]). Only for pipes that
    /// nobody but this exchange and one child uses: a pipe's size is seen by
    /// every holder of either end.
    #[cfg_attr(not(any(unix, windows)), allow(dead_code))]
    pub(crate) fn allow_growth(&mut self) -> &mut Self {
        for input in &mut self.inputs {
            input.growth.allowed = true;
        }
        for output in &mut self.outputs {
            output.growth.allowed = true;
        }
        self
    }

    /// Whether input number `index` (counting from 0 in the order added)
    /// stopped because its reader went away before everything was written.
    ///
    /// # Panics
    ///
    /// If there is no input number `index`.
    pub fn input_closed_early(&self, index: usize) -> bool {
        self.inputs[index].closed_early
    }

    /// How many bytes input number `index` has written so far.
    ///
    /// # Panics
    ///
    /// If there is no input number `index`.
    pub fn bytes_written(&self, index: usize) -> u64 {
        self.inputs[index].written()
    }

    /// Whether output number `index` (counting from 0 in the order added)
    /// had bytes discarded by its [`Sink::limit`].
    ///
    /// # Panics
    ///
    /// If there is no output number `index`.
    pub fn truncated(&self, index: usize) -> bool {
        self.outputs[index].truncated
    }
}

/// The earlier of `now + timeout` and `deadline`; a timeout too long for
/// the clock to represent is no bound at all.
pub(crate) fn earliest(timeout: Option<Duration>, deadline: Option<Instant>) -> Option<Instant> {
    match (
        timeout.and_then(|t| Instant::now().checked_add(t)),
        deadline,
    ) {
        (Some(end), Some(deadline)) => Some(end.min(deadline)),
        (end, deadline) => end.or(deadline),
    }
}

/// What an exchange with a child was asked to do, shared by the blocking
/// [`Exchange`] and its async twin in `pipekit::tokio`: their builder
/// methods set these fields, and their runs read them.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub(crate) input: Option<Source<'a>>,
    pub(crate) merge_stderr: bool,
    pub(crate) limit: Option<u64>,
    pub(crate) stdout: Option<Sink<'a>>,
    pub(crate) stderr: Option<Sink<'a>>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) kill_on_timeout: bool,
    pub(crate) kill_tree: bool,
    /// Whether the child was spawned: an exchange runs one child.
    pub(crate) spawned: bool,
    /// Whether the limit cut standard output, standard error.
    pub(crate) truncated: [bool; 2],
}

impl Default for Plan<'_> {
    /// Capture both outputs, no input, no bound; kill the child on timeout.
    fn default() -> Self {
        Plan {
            input: None,
            merge_stderr: false,
            limit: None,
            stdout: None,
            stderr: None,
            timeout: None,
            deadline: None,
            kill_on_timeout: true,
            kill_tree: false,
            spawned: false,
            truncated: [false; 2],
        }
    }
}

/// The time an engine may wait before its deadline: `None` without one, and
/// the [`deadline_passed`] error once it has passed with `open` pipes still
/// open.
pub(crate) fn time_left(deadline: Option<Instant>, open: usize) -> io::Result<Option<Duration>> {
    match deadline.map(|deadline| deadline.saturating_duration_since(Instant::now())) {
        Some(left) if left.is_zero() => Err(deadline_passed(open)),
        left => Ok(left),
    }
}

/// The error every engine returns when the deadline passes with `open`
/// pipes still open: [`io::ErrorKind::TimedOut`], with a [`DeadlinePassed`]
/// inside, which is what makes the exchange resumable.
pub(crate) fn deadline_passed(open: usize) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, DeadlinePassed { open })
}

/// The payload of the error [`Communicator::run`] returns when its deadline
/// passes: the one error after which the exchange can be resumed.
///
/// The error's kind is [`io::ErrorKind::TimedOut`], but that kind alone does
/// not tell the deadline apart from a [`Source::reader`] or a
/// [`Sink::writer`] whose own I/O timed out (a socket, a pipe with a write
/// timeout): such an error ends the exchange like any other source or sink
/// error, and carries no `DeadlinePassed`. Use
/// [`DeadlinePassed::from_error`] to tell them apart.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pipekit::communicate::{Communicator, DeadlinePassed};
///
/// # fn main() -> std::io::Result<()> {
/// let (reader, writer) = pipekit::pipe()?; // the writer stays open
/// let mut out = Vec::new();
/// let err = Communicator::new()
///     .output(reader, &mut out)
///     .timeout(Duration::from_millis(10))
///     .run()
///     .unwrap_err();
/// let passed = DeadlinePassed::from_error(&err).expect("the deadline passed");
/// assert_eq!(passed.open_pipes(), 1);
/// # drop(writer);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlinePassed {
    open: usize,
}

impl DeadlinePassed {
    /// The `DeadlinePassed` inside `error`, if `error` is the engine's
    /// deadline error; `None` for every other error, whatever its kind.
    pub fn from_error(error: &io::Error) -> Option<&DeadlinePassed> {
        error.get_ref()?.downcast_ref()
    }

    /// How many pipes were still open when the deadline passed.
    pub fn open_pipes(&self) -> usize {
        self.open
    }
}

impl fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pipekit: the exchange passed its deadline with {} pipe{} still open",
            self.open,
            if self.open == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for DeadlinePassed {}

/// How much the engine has enlarged one pipe, counted against a budget
/// shared by every exchange in the process; released when the pipe is closed
/// (or the exchange dropped).
///
/// Only the child layer's own pipes may be enlarged
/// ([`Communicator::allow_growth`]): a pipe that the caller gave may be
/// shared, and its size is seen by every holder of either end.
#[derive(Debug, Default)]
pub(crate) struct Growth {
    allowed: bool,
    reserved: usize,
}

/// Bytes by which pipes are enlarged now, all exchanges together.
static GROWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
impl Growth {
    /// Whether the pipe may be enlarged and has not been yet.
    pub(crate) fn wants(&self) -> bool {
        self.allowed && self.reserved == 0
    }

    /// Reserves `bytes` of the process-wide budget of `budget` bytes;
    /// `false`, reserving nothing, if that would pass it.
    pub(crate) fn reserve(&mut self, bytes: usize, budget: usize) -> bool {
        use std::sync::atomic::Ordering;
        let reserved = GROWN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |grown| {
            grown.checked_add(bytes).filter(|&total| total <= budget)
        });
        if reserved.is_ok() {
            self.reserved += bytes;
        }
        reserved.is_ok()
    }

    /// Keeps `used` of what [`reserve`](Growth::reserve) reserved (what the
    /// system granted) and gives the rest back.
    pub(crate) fn settle(&mut self, used: usize) {
        let back = self.reserved.saturating_sub(used);
        GROWN.fetch_sub(back, std::sync::atomic::Ordering::AcqRel);
        self.reserved -= back;
    }

    fn release(&mut self) {
        GROWN.fetch_sub(self.reserved, std::sync::atomic::Ordering::AcqRel);
        self.reserved = 0;
    }
}

impl Drop for Growth {
    fn drop(&mut self) {
        self.release();
    }
}

/// An input being fed: the pipe (until it is closed) and what is left.
pub(crate) struct Input<'a> {
    pipe: Option<PipeWriter>,
    source: Pending<'a>,
    written: u64,
    closed_early: bool,
    growth: Growth,
    /// A write the engine left in flight when the last run stopped, to be
    /// accounted for by the next.
    in_flight: imp::communicate::InFlight,
}

enum Pending<'a> {
    Bytes {
        bytes: &'a [u8],
        at: usize,
    },
    Reader {
        reader: Box<dyn Read + Send + 'a>,
        buf: Vec<u8>,
        at: usize,
        eof: bool,
    },
}

impl fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("pipe", &self.pipe)
            .field("written", &self.written)
            .field("closed_early", &self.closed_early)
            .finish()
    }
}

impl<'a> Input<'a> {
    /// An input fed from `source` into `pipe` (`None`: a pipe the caller
    /// holds, for an engine that does its own I/O).
    pub(crate) fn new(pipe: Option<PipeWriter>, source: Source<'a>) -> Input<'a> {
        let source = match source.0 {
            SourceKind::Bytes(bytes) => Pending::Bytes { bytes, at: 0 },
            SourceKind::Reader(reader) => Pending::Reader {
                reader,
                buf: Vec::new(),
                at: 0,
                eof: false,
            },
        };
        Input {
            pipe,
            source,
            written: 0,
            closed_early: false,
            growth: Growth::default(),
            in_flight: Default::default(),
        }
    }
}

impl Input<'_> {
    /// The pipe, while the input is being fed.
    pub(crate) fn pipe(&self) -> Option<&PipeWriter> {
        self.pipe.as_ref()
    }

    /// The pipe and the bytes to write next into it, while the input is
    /// being fed; the bytes are empty once the source is exhausted.
    pub(crate) fn next(&mut self) -> io::Result<Option<(&PipeWriter, &[u8])>> {
        if self.pipe.is_none() {
            return Ok(None);
        }
        let bytes = Self::pending(&mut self.source)?;
        Ok(self.pipe.as_ref().map(|pipe| (pipe, bytes)))
    }

    /// The bytes of `source` still to write. Refills a reader source first,
    /// which reads it (retrying `Interrupted`).
    fn pending<'s>(source: &'s mut Pending<'_>) -> io::Result<&'s [u8]> {
        match source {
            Pending::Bytes { bytes, at } => Ok(&bytes[*at..]),
            Pending::Reader {
                reader,
                buf,
                at,
                eof,
            } => {
                if *at == buf.len() && !*eof {
                    buf.resize(CHUNK, 0);
                    *at = 0;
                    let n = loop {
                        match reader.read(buf) {
                            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                            result => break result,
                        }
                    };
                    let n = n.map_err(|err| {
                        buf.clear();
                        err
                    })?;
                    buf.truncate(n);
                    *eof = n == 0;
                }
                Ok(&buf[*at..])
            }
        }
    }

    /// How many bytes were written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Records that the first `n` pending bytes were written.
    pub(crate) fn advance(&mut self, n: usize) {
        match &mut self.source {
            Pending::Bytes { at, .. } | Pending::Reader { at, .. } => *at += n,
        }
        self.written += n as u64;
    }

    /// Ends the input: everything was written, or (`early`) the reader went
    /// away. Returns the pipe, which the engine restores and drops, closing
    /// it.
    pub(crate) fn close(&mut self, early: bool) -> Option<PipeWriter> {
        self.closed_early |= early;
        self.growth.release();
        self.in_flight = Default::default();
        self.pipe.take()
    }

    /// Whether and by how much the engine has enlarged this input's pipe.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn growth(&mut self) -> &mut Growth {
        &mut self.growth
    }

    /// Where the engine keeps a write it left in flight between runs.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn in_flight(&mut self) -> &mut imp::communicate::InFlight {
        &mut self.in_flight
    }
}

/// An output being drained: the pipe (until end of file) and its sink.
pub(crate) struct OutputPipe<'a> {
    pipe: Option<PipeReader>,
    sink: SinkKind<'a>,
    limit: Option<u64>,
    /// Bytes handed to the sink so far.
    kept: u64,
    /// Reads for a writer sink, and reads past the limit, land here.
    scratch: Vec<u8>,
    truncated: bool,
    growth: Growth,
    /// A read the engine left in flight when the last run stopped, to be
    /// accounted for by the next.
    in_flight: imp::communicate::InFlight,
}

impl fmt::Debug for OutputPipe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputPipe")
            .field("pipe", &self.pipe)
            .field("limit", &self.limit)
            .field("kept", &self.kept)
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// Where an engine puts the next read of an output.
pub(crate) enum Target<'s> {
    /// Append to this vector, at most `max` bytes, reading straight into its
    /// spare capacity (which is at least `max`).
    Vec { vec: &'s mut Vec<u8>, max: usize },
    /// Read into this buffer, then [`OutputPipe::commit`] it.
    Buffer(&'s mut [u8]),
}

impl<'a> OutputPipe<'a> {
    /// An output read from `pipe` (`None`: a pipe the caller holds) into
    /// `sink`, keeping at most the sink's own limit, or else `limit`.
    pub(crate) fn new(
        pipe: Option<PipeReader>,
        sink: Sink<'a>,
        limit: Option<u64>,
    ) -> OutputPipe<'a> {
        OutputPipe {
            pipe,
            limit: sink.limit.or(limit),
            sink: sink.kind,
            kept: 0,
            scratch: Vec::new(),
            truncated: false,
            growth: Growth::default(),
            in_flight: Default::default(),
        }
    }
}

impl OutputPipe<'_> {
    /// Closes the pipe, if still open.
    pub(crate) fn close(&mut self) {
        self.growth.release();
        self.in_flight = Default::default();
        self.pipe = None;
    }

    /// Whether and by how much the engine has enlarged this output's pipe.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn growth(&mut self) -> &mut Growth {
        &mut self.growth
    }

    /// Where the engine keeps a read it left in flight between runs.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn in_flight(&mut self) -> &mut imp::communicate::InFlight {
        &mut self.in_flight
    }

    /// The pipe, until it reaches end of file.
    pub(crate) fn pipe(&self) -> Option<&PipeReader> {
        self.pipe.as_ref()
    }

    /// The pipe and where its next read goes, until it reaches end of file.
    pub(crate) fn next(&mut self) -> Option<(&PipeReader, Target<'_>)> {
        let pipe = self.pipe.as_ref()?;
        let room = self.room();
        Some((pipe, Self::target(&mut self.sink, &mut self.scratch, room)))
    }

    /// How many more bytes the sink may keep under its limit.
    fn room(&self) -> u64 {
        self.limit.map_or(u64::MAX, |limit| limit - self.kept)
    }

    /// Where the next read goes, with `room` bytes left under the limit; a
    /// `Vec` sink gets room reserved first.
    fn target<'s>(sink: &'s mut SinkKind<'_>, scratch: &'s mut Vec<u8>, room: u64) -> Target<'s> {
        match sink {
            SinkKind::Vec(vec) if room > 0 => {
                let vec: &mut Vec<u8> = vec;
                // Doubling keeps reallocation amortised; pages the reads
                // never touch are never made resident. Under a limit, the
                // vector never grows past what the limit still allows.
                let want = vec.len().max(CHUNK);
                match usize::try_from(room) {
                    Ok(room) if room < want || room < CHUNK => {
                        if vec.capacity() - vec.len() < room.min(CHUNK) {
                            vec.reserve_exact(room.min(want));
                        }
                    }
                    _ => {
                        if vec.capacity() - vec.len() < CHUNK {
                            vec.reserve(want);
                        }
                    }
                }
                let spare = vec.capacity() - vec.len();
                let max = usize::try_from(room).map_or(spare, |room| room.min(spare));
                Target::Vec { vec, max }
            }
            _ => {
                scratch.resize(CHUNK, 0);
                Target::Buffer(scratch)
            }
        }
    }

    /// Accounts for `n` bytes that the engine read into the last target
    /// from [`next`](OutputPipe::next) (a `Vec` target has already grown by
    /// them). 0 is end of file: the pipe is closed. Bytes in the scratch
    /// buffer go to a writer sink, up to the limit; the rest is discarded.
    pub(crate) fn commit(&mut self, n: usize) -> io::Result<()> {
        if n == 0 {
            self.close();
            if let SinkKind::Writer(writer) = &mut self.sink {
                writer.end_of_file();
            }
            return Ok(());
        }
        let room = self.room();
        match &mut self.sink {
            SinkKind::Vec(_) if room > 0 => self.kept += n as u64,
            SinkKind::Writer(writer) if room > 0 => {
                let keep = usize::try_from(room).map_or(n, |room| room.min(n));
                writer.write_all(&self.scratch[..keep])?;
                self.kept += keep as u64;
                self.truncated |= keep < n;
            }
            _ => self.truncated = true,
        }
        Ok(())
    }
}
