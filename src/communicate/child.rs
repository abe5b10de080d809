//! The child layer: running a `Command` through the engine of the parent
//! module.

use std::error::Error;
use std::fmt;
use std::io;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::Communicator;
use crate::sys::imp;
use crate::{PipeReader, PipeWriter};

/// Feeds `input` to `child`'s standard input while collecting its standard
/// output and standard error, then waits for it to exit.
///
/// This is [`Command::output`] with the standard input fed, on one thread,
/// without the deadlock of writing everything before reading (see the
/// [module documentation](super)), and without a panic on an I/O error. Each
/// of the child's piped streams is taken from `child`; a stream that is not
/// piped gives an empty output.
///
/// # Errors
///
/// - [`io::ErrorKind::InvalidInput`] if `input` is not empty but the child's
///   standard input is not piped (`Stdio::piped()`), before anything else.
/// - The errors of [`Communicator::run`] and of [`Child::wait`]. The output
///   read before such an error is dropped with the pipes (only a timeout,
///   with [`communicate_timeout`], hands it back).
///
/// # Platform-specific behavior
///
/// On Linux and Android, a child's pipe that fills up is enlarged to 1 MiB
/// when the system allows (`F_SETPIPE_SZ`, best effort), which lets each
/// side move more between two waits. The pipe buffers of an unprivileged
/// user count against `/proc/sys/fs/pipe-user-pages-soft` (64 MiB by
/// default), past which every new pipe that user creates gets 8 KiB instead
/// of 64 KiB; so the enlargements of all exchanges in the process together
/// stay within a quarter of that limit, and each is given back when its
/// pipe is closed. Elsewhere the pipes keep their size. On targets that are
/// neither Unix nor Windows it fails with
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
/// let output = pipekit::communicate::communicate(&mut child, b"b\na\n")?;
/// assert!(output.status.success());
/// assert_eq!(output.stdout, b"a\nb\n");
/// # Ok(())
/// # }
/// ```
pub fn communicate(child: &mut Child, input: &[u8]) -> io::Result<Output> {
    exchange(child, input, None)
}

/// [`communicate`] with a time limit on the whole exchange: feeding, reading
/// to end of file, and waiting for the child to exit.
///
/// On timeout the child is left running, but without its piped streams:
/// they were taken from `child` and are closed, so the child's next write
/// to one fails (`EPIPE`, or death by `SIGPIPE` unless it ignores that
/// signal). Kill it or wait for it as suits. What it had written by then is
/// not lost: the error's payload is a [`TimedOutOutput`].
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
///     Err(err) => {
///         child.kill()?;
///         child.wait()?;
///         if let Some(partial) = err.get_ref().and_then(|e| e.downcast_ref::<TimedOutOutput>()) {
///             println!("it had written {} bytes", partial.stdout.len());
///         }
///     }
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Platform-specific behavior
///
/// The wait for the exit uses a pidfd on Linux (not on Android, whose app sandbox kills a process that calls `pidfd_open` before Android 12), `WaitForSingleObject` on
/// Windows, and elsewhere checks `try_wait` at growing intervals (up to
/// 50 ms apart).
pub fn communicate_timeout(
    child: &mut Child,
    input: &[u8],
    timeout: Duration,
) -> io::Result<Output> {
    // A timeout too long for the clock to represent is no bound at all.
    exchange(child, input, Instant::now().checked_add(timeout))
}

/// On targets that are neither Unix nor Windows no child can be spawned.
#[cfg(not(any(unix, windows)))]
fn exchange(_: &mut Child, _: &[u8], _: Option<Instant>) -> io::Result<Output> {
    Err(crate::error::unsupported(
        "communicating with a child process",
    ))
}

#[cfg(any(unix, windows))]
fn exchange(child: &mut Child, input: &[u8], deadline: Option<Instant>) -> io::Result<Output> {
    if !input.is_empty() && child.stdin.is_none() {
        return Err(crate::error::invalid_input(
            "pipekit: communicate was given input, but the child's stdin is not piped".to_string(),
        ));
    }
    let stdin = child.stdin.take().map(PipeWriter::from);
    let stdout = child.stdout.take().map(PipeReader::from);
    let stderr = child.stderr.take().map(PipeReader::from);

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut communicator = Communicator::new();
    if let Some(stdin) = stdin {
        communicator.input(stdin, input);
    }
    if let Some(stdout) = stdout {
        communicator.output(stdout, &mut out);
    }
    if let Some(stderr) = stderr {
        communicator.output(stderr, &mut err);
    }
    if let Some(deadline) = deadline {
        communicator.deadline(deadline);
    }
    // The child's pipes are this exchange's and the child's alone.
    communicator.allow_growth();
    let result = communicator.run();
    drop(communicator);
    if let Err(error) = result {
        if super::DeadlinePassed::from_error(&error).is_some() {
            return Err(timed_out(out, err));
        }
        return Err(error);
    }
    let status = match deadline {
        None => child.wait()?,
        // A child that has already exited needs no waiting mechanism.
        Some(deadline) => match child.try_wait()? {
            Some(status) => status,
            None => match imp::communicate::wait_deadline(child, deadline)? {
                Some(status) => status,
                None => return Err(timed_out(out, err)),
            },
        },
    };
    Ok(Output {
        status,
        stdout: out,
        stderr: err,
    })
}

#[cfg(any(unix, windows))]
fn timed_out(stdout: Vec<u8>, stderr: Vec<u8>) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, TimedOutOutput { stdout, stderr })
}

/// What a child had written when [`communicate_timeout`] ran out of time: the
/// payload of its [`io::ErrorKind::TimedOut`] error, reached with
/// [`io::Error::get_ref`] and `downcast_ref`, or [`io::Error::into_inner`]
/// and `downcast`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOutOutput {
    /// The child's standard output up to the timeout.
    pub stdout: Vec<u8>,
    /// The child's standard error up to the timeout.
    pub stderr: Vec<u8>,
}

impl fmt::Display for TimedOutOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pipekit: the child did not finish in time ({} bytes of stdout and {} of stderr \
             were read)",
            self.stdout.len(),
            self.stderr.len()
        )
    }
}

impl Error for TimedOutOutput {}

/// Spawns `command` with its standard output and standard error joined in
/// one pipe, and returns the child and the pipe's reader.
///
/// The child's two streams arrive in the order it wrote them. Read the
/// reader to end of file (with [`Read::read_to_end`](std::io::Read::read_to_end), or as an output of a
/// [`Communicator`] alongside other pipes) and then wait for the child. The
/// writers are closed in this process before this returns: `command`'s
/// standard output and standard error are reset to
/// [`Stdio::inherit`], so that a `Command` kept alive cannot hold the pipe
/// open (the first deadlock of the [crate documentation](crate#deadlocks)).
///
/// # Errors
///
/// The errors of [`pipe()`](crate::pipe()), [`PipeWriter::try_clone`] and
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
