//! Platform backends behind one small contract.
//!
//! Exactly one backend is compiled, chosen here and nowhere else, and
//! re-exported as `imp`. Every backend provides the same items, so that the
//! portable files above this one hold no platform logic: they name a
//! platform only to declare public items that exist there alone (Windows'
//! overlapped options, the Linux and Android splice methods, the `AsFd`
//! bound of `splice::copy` on Unix).
//!
//! - `struct Pipe`: one owned pipe end. It has
//!   `read(&self, &mut [u8])`, `read_vectored(&self, &mut [IoSliceMut])`,
//!   `write(&self, &[u8])`, `write_vectored(&self, &[IoSlice])`, each one
//!   system call (or one wait for an overlapped one) with the caller's buffer;
//!   a read at end of file returns `Ok(0)` on every platform.
//!   `try_clone(&self) -> io::Result<Pipe>` returns a close-on-exec /
//!   non-inheritable duplicate; `into_stdio(self) -> Stdio` hands the end to
//!   `std::process::Command`; and `Debug` shows the fd or handle.
//!   For pipe control, `Pipe` also has `set_nonblocking(&self, bool)` and
//!   `nonblocking(&self) -> io::Result<bool>`; `capacity(&self)` and
//!   `set_capacity(&self, usize)` (the size granted, or `Unsupported`);
//!   `bytes_available(&self)`; `check_timeouts(&self)`, which fails with
//!   `Unsupported` where timed I/O is impossible on this end; and
//!   `read_timeout(&self, &mut [u8], Duration)` and
//!   `write_timeout(&self, &[u8], Duration)`, which fail with `TimedOut`
//!   when the end is not ready in time (and move no data then).
//! - `fn pipe() -> io::Result<(Pipe, Pipe)>`: a new pipe, read end first, both
//!   ends close-on-exec / non-inheritable.
//! - `fn create(&PipeOptions) -> io::Result<(Pipe, Pipe)>`: the same, with
//!   the options applied; an option the platform cannot honour is an
//!   `Unsupported` error, never ignored. The capacity has been range-checked.
//! - `fn dup_stdin()`, `fn dup_stdout()`, `fn dup_stderr()`:
//!   `io::Result<Pipe>`, close-on-exec / non-inheritable duplicates of the
//!   process's standard streams.
//! - The trait impls that need the platform's types or `unsafe`, for both
//!   `PipeReader` and `PipeWriter`: on Unix `AsFd`, `AsRawFd`, `FromRawFd`,
//!   `IntoRawFd`, `From<OwnedFd>` and `From<_> for OwnedFd`; on Windows the
//!   `*Handle` twins; `From<ChildStdout>`/`From<ChildStderr>` for `PipeReader`
//!   and `From<ChildStdin>` for `PipeWriter`; and, with `pipekit_std_pipe`,
//!   `From` both ways with `std::io::PipeReader`/`PipeWriter`.
//! - `mod communicate`: `drive(&mut [Input], &mut [OutputPipe],
//!   Option<Instant>) -> io::Result<()>`, the engine behind
//!   `Communicator::run` (every input written or closed early, every output
//!   read to end of file, or the `DeadlinePassed` error at the deadline with
//!   every count exact, but for a call the engine could not stop, which it
//!   leaves in the pipe's `in_flight` slot, of its type `InFlight`
//!   (`Default`; `()` where every call returns at once), for the next
//!   `drive` to account for; no flag or mode of a pipe it is given changed, even
//!   for a moment; a pipe whose `Growth` allows it may be enlarged when it
//!   fills, within the process-wide budget); and, on Unix and Windows,
//!   `wait_deadline(&mut Child, Instant)` (the exit status, or `None` at the
//!   deadline).
//! - A child's process tree, for `Exchange::kill_tree`: `mod process` on
//!   Unix, `mod job` on Windows, each with
//!   `spawn_tree(&mut Command) -> io::Result<(Child, Tree)>` (spawns the
//!   child so that everything it starts belongs to its tree: a new process
//!   group led by the child; a job object the child joins while suspended,
//!   before it runs) and `Tree::kill(&self) -> io::Result<()>` (`SIGKILL` to
//!   the group; `TerminateJobObject`), which succeeds when no process is
//!   left; `Tree::led_by(pid)` (Unix) and `Tree::adopt(process, id)`
//!   (Windows) make the tree of a child spawned otherwise (by tokio).
//! - With the `tokio` feature, `mod tokio`: the async ends' registration
//!   with tokio, and `spawn_tree` for `tokio::process::Command`.
//!
//! The Unix backend also has `copy(BorrowedFd, BorrowedFd) -> io::Result<u64>`
//! behind `splice::copy`, `Pipe::read_spare` for reading straight into a
//! `Vec`'s spare capacity, and on Linux and Android `splice`, `tee` and the
//! `SPLICE_F_*` values.
//!
//! The `unsupported` backend compiles on any target: its `Pipe` is an empty
//! enum, and every function returns [`io::ErrorKind::Unsupported`].
//!
//! `unsafe` is allowed in this module only. Each block carries a `// SAFETY:`
//! comment that states the invariant it relies on.
//!
//! [`io::ErrorKind::Unsupported`]: std::io::ErrorKind::Unsupported

#[cfg(unix)]
pub(crate) mod unix;
#[cfg(unix)]
pub(crate) use unix as imp;

#[cfg(windows)]
pub(crate) mod windows;
#[cfg(windows)]
pub(crate) use windows as imp;

#[cfg(not(any(unix, windows)))]
pub(crate) mod unsupported;
#[cfg(not(any(unix, windows)))]
pub(crate) use unsupported as imp;
