//! [`Exchange`]: the child layer of [`crate::communicate`] as a future on a
//! tokio runtime.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::process::{ExitStatus, Output, Stdio};
use std::task::Poll;
use std::time::{Duration, Instant};

use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
use ::tokio::process::{Child, Command};

use super::{pipe_from_child, pipe_to_child, PipeReader, PipeWriter};
use crate::communicate::detached;
use crate::communicate::{earliest, Input, OutputPipe, Plan, Sink, Source, Target, TimedOutOutput};
use crate::sys::imp::tokio::{spawn_tree, Tree};

/// Runs a [`tokio::process::Command`](Command) with the pipes it needs:
/// feeds its standard input, captures or streams its standard output and
/// error, and bounds the whole run with a deadline that can kill the child,
/// or everything it started. The async counterpart of
/// [`communicate::Exchange`](crate::communicate::Exchange), with the same
/// options and the same results.
///
/// [`run`](Exchange::run) returns a future that is `Send` whenever the
/// input and the sinks are, so it can run on a multi-thread runtime with
/// `tokio::spawn`. Its pipes are pipekit's async ends: on Windows they are
/// driven by tokio's I/O completion port, with no thread waiting on them
/// (tokio's own `Stdio::piped()` pipes are read and written on its blocking
/// pool there).
///
/// Sources made with [`Source::reader`] and sinks made with
/// [`Sink::writer`] or [`Sink::lines`] are called on the task that runs the
/// exchange, as the blocking exchange calls them on its thread: they should
/// answer at once (memory, files, a callback), or they hold up the task.
///
/// Dropping the future before it completes closes every pipe it holds; with
/// [`kill_on_timeout`](Exchange::kill_on_timeout) (the default) it also
/// kills the child, or its tree under [`kill_tree`](Exchange::kill_tree)
/// (tokio reaps it in the background).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use pipekit::tokio::Exchange;
///
/// # fn main() -> std::io::Result<()> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # runtime.block_on(async {
/// let mut command = tokio::process::Command::new("some-tool");
/// let output = Exchange::new(&mut command)
///     .input("some input")
///     .merge_stderr(true)
///     .kill_tree(true)
///     .timeout(Duration::from_secs(60))
///     .run()
///     .await?;
/// println!("{}: {}", output.status, String::from_utf8_lossy(&output.stdout));
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Debug)]
pub struct Exchange<'a> {
    command: &'a mut Command,
    plan: Plan<'a>,
}

impl<'a> Exchange<'a> {
    /// An exchange that will spawn `command`: its standard output and error
    /// captured, no input, no deadline.
    pub fn new(command: &'a mut Command) -> Exchange<'a> {
        Exchange {
            command,
            plan: Plan::default(),
        }
    }

    /// Feeds the child's standard input from `source` (bytes, a string, a
    /// file or [`Source::reader`]), then closes it. Without an input the
    /// child's standard input is left as the command has it.
    pub fn input(&mut self, source: impl Into<Source<'a>>) -> &mut Self {
        self.plan.input = Some(source.into());
        self
    }

    /// Sends the standard error into the standard output's pipe, so both
    /// arrive in the order the child wrote them, returned as the standard
    /// output.
    pub fn merge_stderr(&mut self, merge: bool) -> &mut Self {
        self.plan.merge_stderr = merge;
        self
    }

    /// Keeps at most `bytes` bytes of each output whose sink has no
    /// [`limit`](Sink::limit) of its own. The rest is read and discarded,
    /// so the child never blocks on a full pipe;
    /// [`stdout_truncated`](Exchange::stdout_truncated) and
    /// [`stderr_truncated`](Exchange::stderr_truncated) tell whether any
    /// was.
    pub fn limit(&mut self, bytes: u64) -> &mut Self {
        self.plan.limit = Some(bytes);
        self
    }

    /// Streams the standard output into `sink` instead of capturing it.
    pub fn stdout_to(&mut self, sink: impl Into<Sink<'a>>) -> &mut Self {
        self.plan.stdout = Some(sink.into());
        self
    }

    /// Streams the standard error into `sink` instead of capturing it.
    pub fn stderr_to(&mut self, sink: impl Into<Sink<'a>>) -> &mut Self {
        self.plan.stderr = Some(sink.into());
        self
    }

    /// Bounds the run to `timeout` from the start of [`run`](Exchange::run).
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.plan.timeout = Some(timeout);
        self
    }

    /// Bounds the run to end at `deadline` at the latest (the earlier of it
    /// and the [`timeout`](Exchange::timeout)).
    pub fn deadline(&mut self, deadline: Instant) -> &mut Self {
        self.plan.deadline = Some(deadline);
        self
    }

    /// Kills and reaps the child when the deadline passes (`true`, the
    /// default), or leaves it running. Also decides whether an error, or
    /// dropping the future, kills the child.
    pub fn kill_on_timeout(&mut self, kill: bool) -> &mut Self {
        self.plan.kill_on_timeout = kill;
        self
    }

    /// Makes the kill reach everything the child started.
    ///
    /// # Platform-specific behavior
    ///
    /// Unix: the child leads a new process group (`process_group(0)`, left
    /// set on the command) and the kill is `SIGKILL` to the group; a process
    /// that leaves the group (`setsid`) escapes it. Windows: the child is
    /// created suspended, put into a new job object and only then resumed,
    /// so it runs nothing outside the job; the kill terminates the job.
    pub fn kill_tree(&mut self, kill_tree: bool) -> &mut Self {
        self.plan.kill_tree = kill_tree;
        self
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

    /// Spawns the child, feeds it, drains its outputs and waits for its
    /// exit, within the deadline.
    ///
    /// The child's standard output and error are pipekit async pipes
    /// (joined into one with [`merge_stderr`](Exchange::merge_stderr)), and
    /// so is its standard input when there is an
    /// [`input`](Exchange::input); after the spawn the command holds
    /// `Stdio::piped()` for them.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] for a second `run`, or
    ///   `merge_stderr` with a [`stderr_to`](Exchange::stderr_to) sink,
    ///   before anything is spawned.
    /// - [`io::ErrorKind::TimedOut`] when the deadline passes, with a
    ///   [`TimedOutOutput`] inside ([`TimedOutOutput::from_error`]): what
    ///   was captured, the bytes of input written, and the status: the
    ///   killed child's under `kill_on_timeout`; the child's own if it had
    ///   exited while a process it started held its outputs; `None` if it
    ///   was left running.
    /// - The errors of the pipes, of the spawn, of a source or a sink, and
    ///   of the wait; the child is then killed, under `kill_on_timeout`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O and time enabled, as tokio does.
    pub async fn run(&mut self) -> io::Result<Output> {
        if self.plan.spawned {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pipekit: this Exchange has already spawned its child (its input and sinks \
                 went to it); make a new Exchange to run the command again",
            ));
        }
        if self.plan.merge_stderr && self.plan.stderr.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pipekit: an Exchange cannot both merge stderr into stdout and stream stderr \
                 to a sink",
            ));
        }
        let deadline = earliest(self.plan.timeout, self.plan.deadline);
        let mut running = self.spawn()?;
        let result = running.run(deadline).await;
        self.plan.truncated = [running.stdout.is_truncated(), running.stderr.is_truncated()];
        result
    }

    /// Spawns the child with its pipes. Every pipe is made before the
    /// command is touched, so a failure leaves the command as it was.
    fn spawn(&mut self) -> io::Result<Running<'a>> {
        let stdin = match self.plan.input {
            Some(_) => Some(pipe_to_child()?),
            None => None,
        };
        let (stdout, child_stdout) = pipe_from_child()?;
        let (stderr, child_stderr) = if self.plan.merge_stderr {
            (None, child_stdout.try_clone()?)
        } else {
            let (ours, theirs) = pipe_from_child()?;
            (Some(ours), theirs)
        };
        let feed = stdin.map(|(child_end, ours)| {
            self.command.stdin(child_end);
            ours
        });
        self.command.stdout(child_stdout).stderr(child_stderr);
        let spawned = if self.plan.kill_tree {
            spawn_tree(self.command).map(|(child, tree)| (child, Some(tree)))
        } else {
            self.command.spawn().map(|child| (child, None))
        };
        // The command must not keep the child's ends open in this process.
        if feed.is_some() {
            self.command.stdin(Stdio::piped());
        }
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let (child, tree) = spawned?;
        self.plan.spawned = true;
        Ok(Running {
            guard: Guard {
                child,
                tree,
                kill: self.plan.kill_on_timeout,
                status: None,
            },
            feed,
            input: self.plan.input.take().map(Input::detached),
            stdout_pipe: Some(stdout),
            stderr_pipe: stderr,
            stdout: OutputPipe::detached(self.plan.stdout.take(), self.plan.limit),
            stderr: OutputPipe::detached(self.plan.stderr.take(), self.plan.limit),
        })
    }
}

/// The child of a running exchange: killed when dropped before its end,
/// under `kill_on_timeout`.
struct Guard {
    child: Child,
    tree: Option<Tree>,
    /// Kill the child if the exchange is dropped now.
    kill: bool,
    /// Its exit status, once reaped.
    status: Option<ExitStatus>,
}

impl Guard {
    /// Kills the child, or its tree.
    fn kill(&mut self) -> io::Result<()> {
        match &self.tree {
            Some(tree) => tree.kill(),
            None if self.status.is_some() => Ok(()),
            None => self.child.start_kill(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.kill {
            // Best effort: a drop cannot report. tokio reaps a child that
            // nobody waits for.
            let _ = self.kill();
        }
    }
}

/// A spawned exchange: the child, its pipes, and where each stream goes.
struct Running<'a> {
    guard: Guard,
    feed: Option<PipeWriter>,
    input: Option<Input<'a>>,
    stdout_pipe: Option<PipeReader>,
    stderr_pipe: Option<PipeReader>,
    stdout: OutputPipe<'a>,
    stderr: OutputPipe<'a>,
}

impl Running<'_> {
    /// Feeds, drains and waits until `deadline`; then ends as
    /// [`Exchange::run`] documents.
    async fn run(&mut self, deadline: Option<Instant>) -> io::Result<Output> {
        let mut drained = false;
        let result = {
            let Running {
                guard,
                feed,
                input,
                stdout_pipe,
                stderr_pipe,
                stdout,
                stderr,
            } = self;
            let drained = &mut drained;
            let work = async move {
                all_three(
                    feed_input(feed, input),
                    drain(stdout_pipe, stdout),
                    drain(stderr_pipe, stderr),
                )
                .await?;
                *drained = true;
                guard.child.wait().await
            };
            match deadline {
                None => Some(work.await),
                Some(deadline) => {
                    let deadline = ::tokio::time::Instant::from_std(deadline);
                    ::tokio::time::timeout_at(deadline, work).await.ok()
                }
            }
        };
        match result {
            Some(Ok(status)) => {
                self.guard.status = Some(status);
                self.guard.kill = false;
                Ok(self.output(status))
            }
            Some(Err(error)) => {
                self.close();
                if self.guard.kill {
                    self.guard.kill()?;
                    self.guard.child.wait().await?;
                    self.guard.kill = false;
                }
                Err(error)
            }
            None => self.time_out(drained).await,
        }
    }

    /// The exit status and the captured outputs, moved out.
    fn output(&mut self, status: ExitStatus) -> Output {
        Output {
            status,
            stdout: self.stdout.take_captured(),
            stderr: self.stderr.take_captured(),
        }
    }

    /// Closes every pipe still open.
    fn close(&mut self) {
        self.feed = None;
        self.stdout_pipe = None;
        self.stderr_pipe = None;
    }

    /// The end at the deadline: the child's status if it has exited (and no
    /// timeout at all if its outputs were drained); else, under
    /// `kill_on_timeout`, it is killed and reaped first.
    async fn time_out(&mut self, drained: bool) -> io::Result<Output> {
        self.close();
        let guard = &mut self.guard;
        let status = guard.child.try_wait()?;
        if let (Some(status), true) = (status, drained) {
            guard.status = Some(status);
            guard.kill = false;
            return Ok(self.output(status));
        }
        let mut killed = false;
        let status = match status {
            Some(status) => {
                guard.status = Some(status);
                if guard.kill {
                    // What it started may still hold its outputs.
                    guard.kill()?;
                }
                Some(status)
            }
            None if guard.kill => {
                guard.kill()?;
                let status = guard.child.wait().await?;
                guard.status = Some(status);
                killed = true;
                Some(status)
            }
            None => None,
        };
        guard.kill = false;
        let written = self.input.as_ref().map_or(0, Input::written);
        let payload = TimedOutOutput::new(
            self.stdout.take_captured(),
            self.stderr.take_captured(),
            status,
            written,
        );
        let payload = if killed {
            detached::killed(payload)
        } else {
            payload
        };
        Err(io::Error::new(io::ErrorKind::TimedOut, payload))
    }
}

/// Runs three fallible futures at once until all have succeeded or one has
/// failed (`tokio::try_join!`, without tokio's macros).
async fn all_three(
    a: impl Future<Output = io::Result<()>>,
    b: impl Future<Output = io::Result<()>>,
    c: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    let mut done = [false; 3];
    poll_fn(|cx| {
        if !done[0] {
            if let Poll::Ready(result) = a.as_mut().poll(cx) {
                result?;
                done[0] = true;
            }
        }
        if !done[1] {
            if let Poll::Ready(result) = b.as_mut().poll(cx) {
                result?;
                done[1] = true;
            }
        }
        if !done[2] {
            if let Poll::Ready(result) = c.as_mut().poll(cx) {
                result?;
                done[2] = true;
            }
        }
        if done == [true; 3] {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Writes `input` into `pipe`, then closes the pipe. A child that closes its
/// standard input early ends the feed without an error, as in the blocking
/// engine.
async fn feed_input(
    pipe: &mut Option<PipeWriter>,
    input: &mut Option<Input<'_>>,
) -> io::Result<()> {
    let (Some(writer), Some(input)) = (pipe.as_mut(), input.as_mut()) else {
        return Ok(());
    };
    loop {
        let bytes = input.pending_bytes()?;
        if bytes.is_empty() {
            break;
        }
        match writer.write(bytes).await {
            Ok(n) => input.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e),
        }
    }
    // End of file for the child.
    *pipe = None;
    Ok(())
}

/// Reads `pipe` to end of file into `output`, then closes it.
async fn drain(pipe: &mut Option<PipeReader>, output: &mut OutputPipe<'_>) -> io::Result<()> {
    let Some(reader) = pipe.as_mut() else {
        return Ok(());
    };
    loop {
        let read = match output.sink_target() {
            // Straight into the vector's spare room.
            Target::Vec { vec, max } if max == vec.capacity() - vec.len() => {
                reader.read_buf(vec).await
            }
            // Less room left under the limit than spare capacity: at most
            // that much.
            Target::Vec { vec, max } => {
                let mut buf = vec![0; max];
                let read = reader.read(&mut buf).await;
                if let Ok(n) = read {
                    vec.extend_from_slice(&buf[..n]);
                }
                read
            }
            Target::Buffer(buf) => reader.read(buf).await,
        };
        let n = match read {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        output.commit(n)?;
        if n == 0 {
            break;
        }
    }
    *pipe = None;
    Ok(())
}
