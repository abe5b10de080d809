//! The child layer's conveniences for a [`Child`] already spawned, and the
//! payload of its timeout; [`Exchange`](super::Exchange) is beside them.

use std::error::Error;
use std::fmt;
use std::io;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::exchange::{is_empty, take_pipes, Core, Streams};
use super::Source;
use crate::PipeReader;

/// Feeds `input` to `child`'s standard input while collecting its standard
/// output and standard error, then waits for it to exit.
///
/// This is [`Command::output`] with the standard input fed, on one thread,
/// without the deadlock of writing everything before reading (see the
/// [module documentation](super)), and without a panic on an I/O error. Each
/// of the child's piped streams is taken from `child`; a stream that is not
/// piped gives an empty output. `input` is anything a [`Source`] is made
/// from (`&str`, `&[u8]`, `&Vec<u8>`, a `Vec<u8>`, ...).
///
/// [`Exchange`](super::Exchange) does the same from a [`Command`], with the
/// pipes set up for you.
///
/// # Errors
///
/// - [`io::ErrorKind::InvalidInput`] if `input` may not be empty (anything
///   but empty bytes) but the child's standard input is not piped
///   (`Stdio::piped()`), before anything else.
/// - The errors of [`Communicator::run`](super::Communicator::run) and of
///   [`Child::wait`]. The output read before such an error is dropped with
///   the pipes (only a timeout, with [`communicate_timeout`], hands it
///   back).
///
/// # Platform-specific behavior
///
/// On Linux and Android the child's pipes are enlarged first when the
/// system allows (`F_SETPIPE_SZ`, best effort), which lets each side move
/// more between two waits. Elsewhere they keep their size. On targets that
/// are neither Unix nor Windows it fails with
/// [`io::ErrorKind::Unsupported`] (no child can be spawned there).
///
/// # Examples
///
/// ```no_run
/// use std::process::{Command, Stdio};
///
/// # fn main() -> std::io::Result<()> {
/// let mut child = Command::new("sort")
///     .stdin(Stdio::piped())
///     .stdout(Stdio::piped())
///     .stderr(Stdio::piped())
///     .spawn()?;
/// let output = pipekit::communicate::communicate(&mut child, "b\na\n")?;
/// assert!(output.status.success());
/// assert_eq!(output.stdout, b"a\nb\n");
/// # Ok(())
/// # }
/// ```
pub fn communicate<'a>(child: &mut Child, input: impl Into<Source<'a>>) -> io::Result<Output> {
    exchange(child, input.into(), None)
}

/// [`communicate`] with a time limit on the whole exchange: feeding, reading
/// to end of file, and waiting for the child to exit.
///
/// When the time runs out, the child is killed and reaped, as Python's
/// `subprocess.run(timeout=...)` does, so that a child still reading its
/// input never takes the part it was given for the whole (a child that has
/// already exited, leaving a process it started holding its outputs, is
/// only reaped). What it had written by then is not lost: the error's
/// payload is a [`TimedOutOutput`]. To stop at a deadline and resume
/// later instead, use [`Exchange::spawn`](super::Exchange::spawn).
///
/// # Errors
///
/// As for [`communicate`], and [`io::ErrorKind::TimedOut`] when the time
/// runs out, with a [`TimedOutOutput`] inside:
///
/// ```no_run
/// use std::process::{Command, Stdio};
/// use std::time::Duration;
/// use pipekit::communicate::{communicate_timeout, TimedOutOutput};
///
/// # fn main() -> std::io::Result<()> {
/// let mut child = Command::new("slow-tool").stdout(Stdio::piped()).spawn()?;
/// match communicate_timeout(&mut child, b"", Duration::from_secs(5)) {
///     Ok(output) => println!("done: {}", output.status),
///     Err(err) => match TimedOutOutput::from_error(&err) {
///         Some(partial) => println!("{partial}"),
///         None => return Err(err),
///     },
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Platform-specific behavior
///
/// The wait for the exit is that of [`wait_timeout`](super::wait_timeout).
pub fn communicate_timeout<'a>(
    child: &mut Child,
    input: impl Into<Source<'a>>,
    timeout: Duration,
) -> io::Result<Output> {
    // A timeout too long for the clock to represent is no bound at all.
    exchange(child, input.into(), Instant::now().checked_add(timeout))
}

fn exchange(child: &mut Child, input: Source<'_>, deadline: Option<Instant>) -> io::Result<Output> {
    if child.stdin.is_none() && !is_empty(&input) {
        return Err(crate::error::invalid_input(
            "pipekit: communicate was given input, but the child's stdin is not piped".to_string(),
        ));
    }
    let (stdin, stdout, stderr) = take_pipes(child);
    let streams = Streams {
        stdin: stdin.map(|pipe| (pipe, Some(input))),
        stdout: stdout.map(|pipe| (pipe, None)),
        stderr: stderr.map(|pipe| (pipe, None)),
    };
    let mut core = Core::new(streams, None);
    match core.run(child, deadline) {
        Err(error) if super::DeadlinePassed::from_error(&error).is_some() => {
            core.time_out(child, true)
        }
        result => result,
    }
}

/// What a child had written when its deadline passed: the payload of the
/// [`io::ErrorKind::TimedOut`] error of [`Exchange::run`](super::Exchange::run)
/// and [`communicate_timeout`], reached with
/// [`TimedOutOutput::from_error`].
///
/// Its message tells a child still running at the deadline (killed, or
/// left running) from a child that had exited while a process it started
/// still held its outputs open.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimedOutOutput {
    /// The child's standard output up to the deadline.
    pub stdout: Vec<u8>,
    /// The child's standard error up to the deadline.
    pub stderr: Vec<u8>,
    /// The child's exit status: `None` if it was still running and was left
    /// running; the killed child's status if it was killed at the deadline;
    /// its own exit status if it had exited by then (a process it started
    /// still held its outputs open).
    pub status: Option<ExitStatus>,
    /// How many bytes of the input had been written to the child.
    pub input_written: u64,
    /// The child was running at the deadline and was killed.
    pub(super) killed: bool,
}

impl TimedOutOutput {
    pub(crate) fn new(
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        status: Option<ExitStatus>,
        input_written: u64,
    ) -> TimedOutOutput {
        TimedOutOutput {
            stdout,
            stderr,
            status,
            input_written,
            killed: false,
        }
    }

    /// The `TimedOutOutput` inside `error`, if it is the timeout of a
    /// child's exchange; `None` for any other error.
    pub fn from_error(error: &io::Error) -> Option<&TimedOutOutput> {
        error.get_ref()?.downcast_ref()
    }

    /// Whether the child was still running at the deadline and was killed
    /// (its [`status`](TimedOutOutput::status) is then the killed child's).
    pub fn killed(&self) -> bool {
        self.killed
    }
}

impl fmt::Display for TimedOutOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, self.killed) {
            (Some(status), true) => write!(
                f,
                "pipekit: the child was still running at the deadline and was killed ({status})"
            )?,
            (Some(status), false) => write!(
                f,
                "pipekit: the child exited with {status}, but a process it started still holds \
                 its output at the deadline"
            )?,
            (None, _) => write!(f, "pipekit: the child is still running at the deadline")?,
        }
        write!(
            f,
            " ({} bytes of stdout and {} of stderr were read, {} bytes of input written)",
            self.stdout.len(),
            self.stderr.len(),
            self.input_written
        )
    }
}

impl Error for TimedOutOutput {}

/// Spawns `command` with its standard output and standard error joined in
/// one pipe, and returns the child and the pipe's reader.
///
/// The child's two streams arrive in the order it wrote them. Read the
/// reader to end of file (with [`Read::read_to_end`](std::io::Read::read_to_end), or as an output of a
/// [`Communicator`](super::Communicator) alongside other pipes) and then
/// wait for the child. The writers are closed in this process before this
/// returns: `command`'s standard output and standard error are reset to
/// [`Stdio::inherit`], so that a `Command` kept alive cannot hold the pipe
/// open (the first deadlock of the [crate documentation](crate#deadlocks)).
/// [`Exchange::merge_stderr`](super::Exchange::merge_stderr) does the same
/// with input, a deadline and the reading done for you.
///
/// # Errors
///
/// The errors of [`pipe()`](crate::pipe()), [`PipeWriter::try_clone`](crate::PipeWriter::try_clone) and
/// [`Command::spawn`].
///
/// # Examples
///
/// ```no_run
/// use std::io::Read;
/// use std::process::Command;
///
/// # fn main() -> std::io::Result<()> {
/// let (mut child, mut joined) = pipekit::communicate::spawn_joined(&mut Command::new("make"))?;
/// let mut log = Vec::new();
/// joined.read_to_end(&mut log)?;
/// let status = child.wait()?;
/// # let _ = status;
/// # Ok(())
/// # }
/// ```
pub fn spawn_joined(command: &mut Command) -> io::Result<(Child, PipeReader)> {
    let (reader, writer) = crate::pipe()?;
    let writer_clone = writer.try_clone()?;
    command.stdout(writer).stderr(writer_clone);
    let spawned = command.spawn();
    command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    Ok((spawned?, reader))
}
