//! [`Exchange`]: a child process spawned with the pipes it needs and run
//! through the engine of the parent module, with a deadline that can kill
//! everything it started.

use std::io;
use std::mem;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::child::spawn_joined_with;
use super::{
    earliest, Communicator, DeadlinePassed, Plan, Sink, SinkKind, Source, SourceKind,
    TimedOutOutput,
};
use crate::{PipeReader, PipeWriter};

/// The platform pieces of the child layer: the engine's bounded wait, the
/// child's pipes, and the process tree a kill can reach.
#[cfg(any(unix, windows))]
mod os {
    use std::io;
    use std::process::{Child, ExitStatus};
    use std::time::Instant;

    use crate::sys::imp;
    use crate::{PipeReader, PipeWriter};

    #[cfg(windows)]
    pub(super) use imp::job::{spawn_tree, Tree};
    #[cfg(unix)]
    pub(super) use imp::process::{spawn_tree, Tree};

    /// Waits for `child`, which `try_wait` saw running, until `deadline`.
    pub(super) fn wait_deadline(
        child: &mut Child,
        deadline: Instant,
    ) -> io::Result<Option<ExitStatus>> {
        imp::communicate::wait_deadline(child, deadline)
    }

    /// Takes `child`'s piped streams, as pipekit's ends.
    pub(super) fn take_pipes(
        child: &mut Child,
    ) -> (Option<PipeWriter>, Option<PipeReader>, Option<PipeReader>) {
        (
            child.stdin.take().map(PipeWriter::from),
            child.stdout.take().map(PipeReader::from),
            child.stderr.take().map(PipeReader::from),
        )
    }
}

/// On targets that are neither Unix nor Windows no child can be spawned:
/// `Command::spawn` fails there, so none of this is ever reached.
#[cfg(not(any(unix, windows)))]
mod os {
    use std::io;
    use std::process::{Child, Command, ExitStatus};
    use std::time::Instant;

    use crate::{PipeReader, PipeWriter};

    #[derive(Debug)]
    pub(super) enum Tree {}

    impl Tree {
        pub(super) fn kill(&self) -> io::Result<()> {
            match *self {}
        }
    }

    pub(super) fn spawn_tree(_: &mut Command) -> io::Result<(Child, Tree)> {
        Err(crate::error::unsupported("spawning a child process"))
    }

    pub(super) fn wait_deadline(_: &mut Child, _: Instant) -> io::Result<Option<ExitStatus>> {
        Err(crate::error::unsupported("waiting for a child process"))
    }

    pub(super) fn take_pipes(
        _: &mut Child,
    ) -> (Option<PipeWriter>, Option<PipeReader>, Option<PipeReader>) {
        (None, None, None)
    }
}

/// Waits for `child` to exit for at most `timeout`, and returns its exit
/// status, or `None` if it is still running then.
///
/// This is [`Child::wait`] with a bound. A zero `timeout` only checks, as
/// [`Child::try_wait`] does; a timeout too long for the clock to represent
/// waits without a bound. Once it has returned a status, the child is
/// reaped, and further calls (and [`Child::wait`]) return the same status.
///
/// # Errors
///
/// The system's error from the wait, as [`Child::wait`] returns it.
///
/// # Platform-specific behavior
///
/// Linux waits on a pidfd (`pidfd_open`) where the kernel and its sandbox
/// allow it; Windows waits on the process handle (`WaitForSingleObject`);
/// elsewhere (Android included, whose app sandbox kills a process that calls
/// `pidfd_open` before Android 12), and where a pidfd is refused, it checks
/// `try_wait` at growing intervals, up to 50 ms apart, so it may return up
/// to that much after the exit. On targets that are neither Unix
/// nor Windows it fails with [`io::ErrorKind::Unsupported`].
///
/// # Examples
///
/// ```no_run
/// use std::process::Command;
/// use std::time::Duration;
///
/// # fn main() -> std::io::Result<()> {
/// let mut child = Command::new("some-daemon").spawn()?;
/// match pipekit::communicate::wait_timeout(&mut child, Duration::from_secs(5))? {
///     Some(status) => println!("exited: {status}"),
///     None => {
///         child.kill()?;
///         child.wait()?;
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    match Instant::now().checked_add(timeout) {
        Some(deadline) => wait_until(child, deadline),
        None => child.wait().map(Some),
    }
}

/// Waits for `child` to exit until `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    // A child that has already exited needs no waiting mechanism.
    match child.try_wait()? {
        Some(status) => Ok(Some(status)),
        None if deadline <= Instant::now() => Ok(None),
        None => os::wait_deadline(child, deadline),
    }
}

/// A child process with its input, its outputs and its bounds: spawned with
/// exactly the pipes it needs and run without deadlock, as
/// [`subprocess.run`] does it in Python.
///
/// [`Exchange::new`] takes the [`Command`] to run. The methods that follow
/// say what to do with the child's streams and how long it may take; each
/// takes and returns `&mut Self`, as [`Command`]'s own do. Then
/// [`run`](Exchange::run) runs the child to its end in one call, or
/// [`spawn`](Exchange::spawn) returns a [`RunningExchange`] to drive in
/// steps.
///
/// - Standard input is piped only when there is [`input`](Exchange::input),
///   which is written in full and then closed, so the child sees end of
///   file; without input the command's own setting applies (by default the
///   child inherits this process's standard input).
/// - Standard output and standard error are always piped: captured into the
///   [`Output`] unless streamed into a [`Sink`] with
///   [`stdout_to`](Exchange::stdout_to) and
///   [`stderr_to`](Exchange::stderr_to), or joined in one pipe with
///   [`merge_stderr`](Exchange::merge_stderr). A forgotten
///   `Stdio::piped()` cannot make an output silently empty.
/// - [`limit`](Exchange::limit) bounds what is kept of each output;
///   [`timeout`](Exchange::timeout) and [`deadline`](Exchange::deadline)
///   bound the whole run, reading to end of file and waiting for the exit
///   included; when the bound passes, the child is killed
///   ([`kill_on_timeout`](Exchange::kill_on_timeout)), with everything it
///   started if [`kill_tree`](Exchange::kill_tree) says so.
///
/// An `Exchange` spawns one child: its input and sinks go to that child, so
/// a second [`run`](Exchange::run) or [`spawn`](Exchange::spawn) fails.
///
/// The `Command` keeps what the exchange set on it: its standard input
/// piped when there was input; its standard output and standard error
/// piped, or, after [`merge_stderr`](Exchange::merge_stderr), inherited
/// (so that it holds no end of the joined pipe); and what
/// [`kill_tree`](Exchange::kill_tree) says it sets.
///
/// # Examples
///
/// ```no_run
/// use std::process::Command;
/// use std::time::Duration;
/// use pipekit::communicate::Exchange;
///
/// # fn main() -> std::io::Result<()> {
/// let output = Exchange::new(&mut Command::new("sort"))
///     .input("b\na\n")
///     .timeout(Duration::from_secs(10))
///     .run()?;
/// assert!(output.status.success());
/// assert_eq!(output.stdout, b"a\nb\n");
/// # Ok(())
/// # }
/// ```
///
/// [`subprocess.run`]: https://docs.python.org/3/library/subprocess.html#subprocess.run
#[derive(Debug)]
pub struct Exchange<'a> {
    command: &'a mut Command,
    plan: Plan<'a>,
}

impl<'a> Exchange<'a> {
    /// An exchange that runs `command`, capturing its standard output and
    /// standard error, with no input and no bound.
    pub fn new(command: &'a mut Command) -> Exchange<'a> {
        Exchange {
            command,
            plan: Plan::default(),
        }
    }

    /// Feeds `source` to the child's standard input, which is piped for it
    /// and closed once `source` is exhausted.
    ///
    /// `source` is anything a [`Source`] is made from: `&str`, `&String`,
    /// `&[u8]`, `&Vec<u8>`, an owned `Vec<u8>` or `String`, a `File`, or
    /// [`Source::reader`]. If the child exits or closes its standard input
    /// before reading everything, the rest is not written and the exchange
    /// goes on ([`RunningExchange::input_written`] tells how much was).
    pub fn input(&mut self, source: impl Into<Source<'a>>) -> &mut Self {
        self.plan.input = Some(source.into());
        self
    }

    /// Joins standard error with standard output in one pipe (`true`), in
    /// the order the child wrote them, returned as the standard output; the
    /// [`Output`]'s `stderr` is then empty. By default (`false`) they are
    /// two pipes.
    ///
    /// A [`stderr_to`](Exchange::stderr_to) sink cannot be used with it:
    /// [`run`](Exchange::run) and [`spawn`](Exchange::spawn) fail with
    /// [`io::ErrorKind::InvalidInput`].
    pub fn merge_stderr(&mut self, merge: bool) -> &mut Self {
        self.plan.merge_stderr = merge;
        self
    }

    /// Keeps at most `bytes` bytes of each output (a sink with its own
    /// [`Sink::limit`] keeps that one instead).
    ///
    /// Each output is still read to end of file, so the child never blocks
    /// on a full pipe and exits normally; the bytes past the limit are read
    /// and discarded. Whether an output was cut is told by
    /// [`Exchange::stdout_truncated`] and [`Exchange::stderr_truncated`]
    /// after [`run`](Exchange::run), and by the [`RunningExchange`]'s methods
    /// of the same names.
    pub fn limit(&mut self, bytes: u64) -> &mut Self {
        self.plan.limit = Some(bytes);
        self
    }

    /// Streams the child's standard output into `sink` (a [`Sink`], or
    /// anything one is made from) instead of capturing it; the [`Output`]'s
    /// `stdout` is then empty.
    pub fn stdout_to(&mut self, sink: impl Into<Sink<'a>>) -> &mut Self {
        self.plan.stdout = Some(sink.into());
        self
    }

    /// Streams the child's standard error into `sink` instead of capturing
    /// it; the [`Output`]'s `stderr` is then empty.
    pub fn stderr_to(&mut self, sink: impl Into<Sink<'a>>) -> &mut Self {
        self.plan.stderr = Some(sink.into());
        self
    }

    /// Bounds [`run`](Exchange::run) to `timeout`, counted from the start of
    /// the call: spawning, feeding, reading to end of file and waiting for
    /// the exit.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.plan.timeout = Some(timeout);
        self
    }

    /// Bounds [`run`](Exchange::run) to end at `deadline` at the latest,
    /// whichever of the deadline and the [`timeout`](Exchange::timeout)
    /// comes first.
    pub fn deadline(&mut self, deadline: Instant) -> &mut Self {
        self.plan.deadline = Some(deadline);
        self
    }

    /// Whether [`run`](Exchange::run), when its bound passes, kills the
    /// child (with everything it started, under
    /// [`kill_tree`](Exchange::kill_tree)) and reaps it. Default: `true`.
    ///
    /// With `false`, a child still running at the bound is left running,
    /// without its pipes: they are closed when `run` returns, so a child
    /// still reading its input then sees end of file on what was written so
    /// far. To stop at a bound and go on later, use
    /// [`spawn`](Exchange::spawn) and [`RunningExchange::run_for`] instead.
    pub fn kill_on_timeout(&mut self, kill: bool) -> &mut Self {
        self.plan.kill_on_timeout = kill;
        self
    }

    /// Whether a kill (at the bound of [`run`](Exchange::run), or by
    /// [`RunningExchange::kill`]) reaches every process the child started,
    /// such as a grandchild holding one of its pipes. Default: `false` (the
    /// child alone).
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: the child leads a new process group
    /// (`CommandExt::process_group(0)`, which stays set on the command), and
    /// the kill is `SIGKILL` to the group. A process that leaves the group
    /// (`setsid`, `setpgid`) escapes it; and since the child no longer is in
    /// this process's group, a terminal's Ctrl-C no longer reaches it.
    ///
    /// Windows: the child is created suspended, put into a new job object,
    /// then resumed, so it runs nothing outside the job; the kill terminates
    /// the job (exit code 1). This sets the command's creation flags: flags
    /// set before are replaced, and are 0 afterwards. A process created
    /// with `CREATE_BREAKAWAY_FROM_JOB` escapes the job. Jobs nest from
    /// Windows 8 on; on older systems, when this process is itself in a job,
    /// putting the child into its own job fails, and so does the spawn (the
    /// child is killed and reaped before it has run).
    pub fn kill_tree(&mut self, kill_tree: bool) -> &mut Self {
        self.plan.kill_tree = kill_tree;
        self
    }

    /// Runs the child to its end: feeds its input, reads its outputs to end
    /// of file, and waits for its exit, within the
    /// [`timeout`](Exchange::timeout) or [`deadline`](Exchange::deadline).
    ///
    /// Returns what [`Command::output`] returns: the exit status and the
    /// captured outputs.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::TimedOut`] when the bound passes, with a
    ///   [`TimedOutOutput`] inside ([`TimedOutOutput::from_error`]): the
    ///   captured output, the input written, and the child's status. With
    ///   [`kill_on_timeout`](Exchange::kill_on_timeout) (the default), the
    ///   child was killed and reaped first (unless it had already exited and
    ///   a process it started holds its outputs), so no child goes on with a
    ///   cut input. A child that exited at the bound, after its outputs
    ///   reached end of file, is no timeout: `run` returns its output.
    /// - [`io::ErrorKind::InvalidInput`] for a second `run` or `spawn`, or
    ///   [`merge_stderr`](Exchange::merge_stderr) with a
    ///   [`stderr_to`](Exchange::stderr_to) sink.
    /// - The errors of [`Command::spawn`], of [`Communicator::run`] (a
    ///   sink's or a source's error, or the system's) and of the wait. The
    ///   child is then killed and reaped too, under `kill_on_timeout`.
    ///
    /// # Platform-specific behavior
    ///
    /// The child's pipes may be enlarged as they fill (see
    /// [`communicate`](super::communicate)).
    /// The wait for the exit is that of [`wait_timeout`]. See
    /// [`kill_tree`](Exchange::kill_tree) for the kill.
    pub fn run(&mut self) -> io::Result<Output> {
        let deadline = earliest(self.plan.timeout, self.plan.deadline);
        let mut running = self.spawn()?;
        let result = running.core.run(&mut running.child, deadline);
        self.plan.truncated = [running.stdout_truncated(), running.stderr_truncated()];
        match result {
            Ok(output) => Ok(output),
            Err(error) if DeadlinePassed::from_error(&error).is_some() => {
                running.time_out(self.plan.kill_on_timeout)
            }
            Err(error) => {
                if self.plan.kill_on_timeout {
                    running.kill_and_reap()?;
                }
                Err(error)
            }
        }
    }

    /// Whether the last [`run`](Exchange::run) discarded bytes of the
    /// standard output past the [`limit`](Exchange::limit).
    pub fn stdout_truncated(&self) -> bool {
        self.plan.truncated[0]
    }

    /// Whether the last [`run`](Exchange::run) discarded bytes of the
    /// standard error past the [`limit`](Exchange::limit).
    pub fn stderr_truncated(&self) -> bool {
        self.plan.truncated[1]
    }

    /// Spawns the child with its pipes, and returns it as a
    /// [`RunningExchange`], to be run in steps. The
    /// [`timeout`](Exchange::timeout), [`deadline`](Exchange::deadline) and
    /// [`kill_on_timeout`](Exchange::kill_on_timeout) are
    /// [`run`](Exchange::run)'s: a running exchange is given its bound at
    /// each step.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] for a second `run` or `spawn`, or
    ///   [`merge_stderr`](Exchange::merge_stderr) with a
    ///   [`stderr_to`](Exchange::stderr_to) sink, before anything is
    ///   spawned.
    /// - The errors of [`pipe()`](crate::pipe()) for a joined output, and of
    ///   [`Command::spawn`]. Under [`kill_tree`](Exchange::kill_tree), the
    ///   system's error from setting up the process tree; the child is then
    ///   killed and reaped.
    pub fn spawn(&mut self) -> io::Result<RunningExchange<'a>> {
        if self.plan.spawned {
            return Err(crate::error::invalid_input(
                "pipekit: this Exchange has already spawned its child (its input and sinks \
                 went to it); make a new Exchange to run the command again"
                    .to_string(),
            ));
        }
        if self.plan.merge_stderr && self.plan.stderr.is_some() {
            return Err(crate::error::invalid_input(
                "pipekit: an Exchange cannot both merge stderr into stdout and stream stderr \
                 to a sink"
                    .to_string(),
            ));
        }
        let command = &mut *self.command;
        if self.plan.input.is_some() {
            command.stdin(Stdio::piped());
        }
        let kill_tree = self.plan.kill_tree;
        let spawn = |command: &mut Command| {
            if kill_tree {
                os::spawn_tree(command).map(|(child, tree)| (child, Some(tree)))
            } else {
                command.spawn().map(|child| (child, None))
            }
        };
        let (spawned, joined) = if self.plan.merge_stderr {
            let (spawned, reader) = spawn_joined_with(command, spawn)?;
            (spawned, Some(reader))
        } else {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            (spawn(command), None)
        };
        let (mut child, tree) = spawned?;
        self.plan.spawned = true;

        let (stdin, stdout, stderr) = os::take_pipes(&mut child);
        let stdout = joined.or(stdout);
        let streams = Streams {
            stdin: stdin.map(|pipe| (pipe, self.plan.input.take())),
            stdout: stdout.map(|pipe| (pipe, self.plan.stdout.take())),
            stderr: stderr.map(|pipe| (pipe, self.plan.stderr.take())),
        };
        let mut core = Core::new(streams, self.plan.limit);
        core.tree = tree;
        Ok(RunningExchange { child, core })
    }
}

/// A child's pipes, each with what the exchange does with it: an input
/// source (`None`: close it at once), an output sink (`None`: capture).
pub(super) struct Streams<'a> {
    pub(super) stdin: Option<(PipeWriter, Option<Source<'a>>)>,
    pub(super) stdout: Option<(PipeReader, Option<Sink<'a>>)>,
    pub(super) stderr: Option<(PipeReader, Option<Sink<'a>>)>,
}

/// A running child's exchange, apart from the child itself (which
/// [`communicate`](super::communicate) borrows and [`RunningExchange`]
/// owns).
#[derive(Debug)]
pub(super) struct Core<'a> {
    communicator: Communicator<'a>,
    /// Whether the communicator has an input (number 0).
    input: bool,
    /// The communicator's output numbers of the standard output and
    /// standard error, and whether each is captured.
    outputs: [Option<(usize, bool)>; 2],
    /// Every output reached end of file.
    drained: bool,
    /// The exchange ended with an error other than the deadline's.
    failed: bool,
    status: Option<ExitStatus>,
    tree: Option<os::Tree>,
}

impl<'a> Core<'a> {
    /// An exchange over `streams`; `limit` bounds each output whose sink has
    /// none.
    pub(super) fn new(streams: Streams<'a>, limit: Option<u64>) -> Core<'a> {
        let mut communicator = Communicator::new();
        let mut input = false;
        if let Some((pipe, Some(source))) = streams.stdin {
            communicator.input(pipe, source);
            input = true;
        }
        let mut outputs = [None, None];
        for (slot, stream) in outputs.iter_mut().zip([streams.stdout, streams.stderr]) {
            if let Some((pipe, sink)) = stream {
                let captured = sink.is_none();
                let mut sink = sink.unwrap_or_else(Sink::owned);
                if sink.limit.is_none() {
                    sink.limit = limit;
                }
                *slot = Some((communicator.outputs.len(), captured));
                communicator.output(pipe, sink);
            }
        }
        // The pipes are the child's and this exchange's alone: the engine
        // may enlarge them (its policy, applied here and nowhere else in
        // the child layer).
        communicator.allow_growth();
        Core {
            communicator,
            input,
            outputs,
            drained: false,
            failed: false,
            status: None,
            tree: None,
        }
    }

    /// Runs the exchange until `deadline`, then waits for `child`'s exit.
    pub(super) fn run(
        &mut self,
        child: &mut Child,
        deadline: Option<Instant>,
    ) -> io::Result<Output> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::Other,
                "pipekit: this exchange already ended with an error",
            ));
        }
        if !self.drained {
            self.communicator.timeout = None;
            self.communicator.deadline = deadline;
            if let Err(error) = self.communicator.run() {
                self.failed = DeadlinePassed::from_error(&error).is_none();
                return Err(error);
            }
            self.drained = true;
        }
        let status = match (self.status, deadline) {
            (Some(status), _) => status,
            (None, None) => child.wait()?,
            (None, Some(deadline)) => match wait_until(child, deadline)? {
                Some(status) => status,
                None => return Err(super::deadline_passed(0)),
            },
        };
        self.status = Some(status);
        Ok(Output {
            status,
            stdout: self.take(0),
            stderr: self.take(1),
        })
    }

    /// The bytes captured so far from output `which` (0: stdout, 1:
    /// stderr); empty if it is not captured.
    fn captured(&self, which: usize) -> &[u8] {
        match self.outputs[which] {
            Some((index, true)) => match &self.communicator.outputs[index].sink {
                SinkKind::Vec(vec) => vec,
                SinkKind::Writer(_) => &[],
            },
            _ => &[],
        }
    }

    /// Moves the bytes captured from output `which` out.
    fn take(&mut self, which: usize) -> Vec<u8> {
        match self.outputs[which] {
            Some((index, true)) => match &mut self.communicator.outputs[index].sink {
                SinkKind::Vec(vec) => mem::take(&mut **vec),
                SinkKind::Writer(_) => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn truncated(&self, which: usize) -> bool {
        self.outputs[which].is_some_and(|(index, _)| self.communicator.truncated(index))
    }

    fn input_written(&self) -> u64 {
        if self.input {
            self.communicator.bytes_written(0)
        } else {
            0
        }
    }

    /// Kills `child`, or its whole tree when there is one.
    fn kill(&self, child: &mut Child) -> io::Result<()> {
        match &self.tree {
            Some(tree) => tree.kill(),
            // A child already reaped needs no kill (and `Child::kill` would
            // fail on it before Rust 1.77).
            None if self.status.is_some() => Ok(()),
            None => match child.try_wait()? {
                Some(_) => Ok(()),
                None => child.kill(),
            },
        }
    }

    /// The timeout's error after the deadline passed: the child's status if
    /// it has exited; else, with `kill`, it is killed and reaped first.
    /// Consumes the captured output.
    pub(super) fn time_out(&mut self, child: &mut Child, kill: bool) -> io::Result<Output> {
        let mut killed = false;
        let status = match self.status {
            Some(status) => Some(status),
            None => child.try_wait()?,
        };
        if let Some(status) = status {
            if self.drained {
                // It exited as the deadline passed: no timeout after all.
                self.status = Some(status);
                return Ok(Output {
                    status,
                    stdout: self.take(0),
                    stderr: self.take(1),
                });
            }
        }
        let status = match status {
            Some(status) => {
                if kill {
                    // What it started may still hold its outputs.
                    self.kill(child)?;
                }
                Some(status)
            }
            None if kill => {
                self.kill(child)?;
                killed = true;
                Some(child.wait()?)
            }
            None => None,
        };
        let mut payload =
            TimedOutOutput::new(self.take(0), self.take(1), status, self.input_written());
        payload.killed = killed;
        Err(io::Error::new(io::ErrorKind::TimedOut, payload))
    }
}

/// A child spawned by [`Exchange::spawn`], with its pipes: run it in steps,
/// each bounded, and read what it has written so far between them.
///
/// [`run_for`](RunningExchange::run_for) and
/// [`run_until`](RunningExchange::run_until) go on with the exchange until
/// the child has exited and its outputs have reached end of file, or until
/// their bound passes. Then they fail with [`io::ErrorKind::TimedOut`] and a
/// [`DeadlinePassed`] inside, leaving the child running and every pipe as
/// it was: the next call resumes exactly where this one stopped, with no
/// byte lost or repeated (Python's `Popen.communicate(timeout=...)` loop).
/// [`stdout`](RunningExchange::stdout) and
/// [`stderr`](RunningExchange::stderr) show what was captured so far.
///
/// Dropping a `RunningExchange` closes the pipes it still holds and
/// leaves the child running, as dropping a [`Child`] does; kill it first
/// with [`kill`](RunningExchange::kill) if need be.
///
/// # Examples
///
/// ```no_run
/// use std::process::Command;
/// use std::time::Duration;
/// use pipekit::communicate::{DeadlinePassed, Exchange};
///
/// # fn main() -> std::io::Result<()> {
/// let mut command = Command::new("long-job");
/// let mut running = Exchange::new(&mut command).spawn()?;
/// let output = loop {
///     match running.run_for(Duration::from_secs(1)) {
///         Ok(output) => break output,
///         Err(err) if DeadlinePassed::from_error(&err).is_some() => {
///             println!("{} bytes so far", running.stdout().len());
///         }
///         Err(err) => return Err(err),
///     }
/// };
/// println!("{}", output.status);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RunningExchange<'a> {
    child: Child,
    core: Core<'a>,
}

impl<'a> RunningExchange<'a> {
    /// Goes on with the exchange for at most `timeout`: see
    /// [`run_until`](RunningExchange::run_until).
    ///
    /// # Errors
    ///
    /// As for [`run_until`](RunningExchange::run_until).
    pub fn run_for(&mut self, timeout: Duration) -> io::Result<Output> {
        self.core
            .run(&mut self.child, earliest(Some(timeout), None))
    }

    /// Goes on with the exchange until the child has exited and its outputs
    /// have reached end of file, or until `deadline`.
    ///
    /// Returns the exit status and the captured outputs: the bytes are moved
    /// into the [`Output`], so [`stdout`](RunningExchange::stdout) and
    /// [`stderr`](RunningExchange::stderr) are empty afterwards, and a
    /// further call returns the same status with empty outputs.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::TimedOut`] with a [`DeadlinePassed`] inside when
    ///   `deadline` passes first: the child and every pipe are left as they
    ///   are, and the next call resumes where this one stopped.
    ///   ([`DeadlinePassed::open_pipes`] is 0 when only the exit was
    ///   awaited.)
    /// - Any other error (of a sink, a source, a read, a write or the wait)
    ///   ends the exchange, as for [`Communicator::run`]: the pipes are
    ///   closed, the child is left running, and later calls fail.
    pub fn run_until(&mut self, deadline: Instant) -> io::Result<Output> {
        self.core.run(&mut self.child, Some(deadline))
    }

    /// The child's standard output captured so far: empty when it is
    /// streamed to a sink (it is then in the sink), and after the output was
    /// moved into a returned [`Output`].
    pub fn stdout(&self) -> &[u8] {
        self.core.captured(0)
    }

    /// The child's standard error captured so far, as
    /// [`stdout`](RunningExchange::stdout); also empty when it is merged
    /// into the standard output.
    pub fn stderr(&self) -> &[u8] {
        self.core.captured(1)
    }

    /// Whether bytes of the standard output past the
    /// [`limit`](Exchange::limit) were discarded so far.
    pub fn stdout_truncated(&self) -> bool {
        self.core.truncated(0)
    }

    /// Whether bytes of the standard error past the
    /// [`limit`](Exchange::limit) were discarded so far.
    pub fn stderr_truncated(&self) -> bool {
        self.core.truncated(1)
    }

    /// How many bytes of the input have been written so far.
    pub fn input_written(&self) -> u64 {
        self.core.input_written()
    }

    /// Kills the child, and everything it started under
    /// [`kill_tree`](Exchange::kill_tree), without waiting for it.
    ///
    /// The next [`run_for`](RunningExchange::run_for) or
    /// [`run_until`](RunningExchange::run_until) then collects what was
    /// written before the kill and the killed child's status (without
    /// `kill_tree`, a process the child started may still hold its
    /// outputs). A child that has already exited is not an error.
    ///
    /// # Errors
    ///
    /// The system's error from the kill.
    pub fn kill(&mut self) -> io::Result<()> {
        self.core.kill(&mut self.child)
    }

    /// The child.
    pub fn child(&self) -> &Child {
        &self.child
    }

    /// The child, to signal or wait for it. Waiting for it here does not
    /// disturb the exchange.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// [`Exchange::run`]'s end at its bound.
    fn time_out(&mut self, kill: bool) -> io::Result<Output> {
        self.core.time_out(&mut self.child, kill)
    }

    /// Kills the child (or its tree) and reaps it.
    fn kill_and_reap(&mut self) -> io::Result<()> {
        self.core.kill(&mut self.child)?;
        self.child.wait().map(drop)
    }
}

/// Takes `child`'s piped streams, as pipekit's ends.
pub(super) fn take_pipes(
    child: &mut Child,
) -> (Option<PipeWriter>, Option<PipeReader>, Option<PipeReader>) {
    os::take_pipes(child)
}

/// Whether `source` certainly has no byte to write.
pub(super) fn is_empty(source: &Source<'_>) -> bool {
    matches!(source.0, SourceKind::Bytes(bytes) if bytes.is_empty())
}
