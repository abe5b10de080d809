//! The Unix communicate engine: one `poll(2)` loop over every open pipe,
//! which changes nothing that anyone else can observe.
//!
//! A pipe's `O_NONBLOCK` flag belongs to its open file description, which
//! every duplicate of the fd shares (a clone, `dup_stdout()`, a child's
//! inherited copy). The engine never sets it. For each pipe and each call to
//! `drive` it picks a *lane*:
//!
//! - [`Lane::Direct`]: the description is already nonblocking (the caller
//!   made it so); it is used as it is.
//! - [`Lane::Private`] (Linux and Android): the same pipe opened again
//!   through `/proc/thread-self/fd/N`, which gives a new open file description of
//!   the engine's own, opened nonblocking and closed when `drive` returns.
//!   Each write takes what the pipe has room for, each read what it holds,
//!   and neither can block, whoever else shares the pipe.
//! - [`Lane::Bounded`]: where a pipe cannot be reopened (other systems, no
//!   `/proc`, a pipe of another user) and for a socket, the caller's blocking
//!   description, asked only for what it can do at once: a write of at most
//!   `PIPE_BUF` bytes while a zero-timeout `poll` reports room, a read of at
//!   most the bytes `FIONREAD` reports (or a read at end of file). Within
//!   one exchange this never blocks, even with a pipe given twice; a thread
//!   outside the exchange that reads or writes the same pipe between the
//!   check and the call can still make that call wait.
//! - [`Lane::Plain`]: any other fd given as a pipe end (a regular file, a
//!   device), read and written as it is whenever `poll` reports it ready.
//!
//! A write into a pipe whose reader is gone raises `SIGPIPE`, which kills a
//! process that keeps the default disposition. While an exchange with inputs
//! runs, `SIGPIPE` is blocked on the calling thread, and a `SIGPIPE` raised
//! by the engine's own write is consumed before the mask is restored
//! ([`SigpipeGuard`]), so the thread's mask and pending signals are as they
//! were.
//!
//! Pipes that the child layer made for a child may be enlarged when they
//! fill up ([`grow`]), within a process-wide budget.

use std::io;
use std::os::fd::AsRawFd;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use super::control::{poll_millis, PIPE_BUF};
use super::{cvt, Pipe};
use crate::communicate::{Growth, Input, OutputPipe, Target};

/// Which pipe a `pollfd` stands for.
#[derive(Clone, Copy)]
enum Slot {
    Input(usize),
    Output(usize),
}

/// How the engine does I/O on one pipe for the length of one `drive`.
enum Lane {
    /// The caller's description is nonblocking already.
    Direct,
    /// A nonblocking description of the engine's own, for the same pipe
    /// (Linux and Android).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Private(Pipe),
    /// The caller's blocking description of a pipe or a socket, asked only
    /// for what it can do at once.
    Bounded,
    /// Any other kind of fd given as a pipe end (a regular file, a device),
    /// read and written as `poll` reports it ready, as it is.
    Plain,
}

impl Lane {
    /// Picks the lane for `pipe`, opened for writing (`write`) or reading.
    /// `Ok(None)` for an input whose reader is gone (the private open fails
    /// with `ENXIO`).
    fn open(pipe: &Pipe, write: bool) -> io::Result<Option<Lane>> {
        let flags = pipe.status_flags()?;
        if flags & libc::O_NONBLOCK != 0 {
            return Ok(Some(Lane::Direct));
        }
        let stat = fstat(pipe.0.as_raw_fd())?;
        let kind = stat.st_mode & libc::S_IFMT;
        if kind == libc::S_IFSOCK {
            return Ok(Some(Lane::Bounded));
        }
        if kind != libc::S_IFIFO {
            return Ok(Some(Lane::Plain));
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        match reopen(pipe, write, flags, &stat) {
            Ok(Some(private)) => return Ok(Some(Lane::Private(private))),
            Ok(None) => {}
            Err(err) if write && err.raw_os_error() == Some(libc::ENXIO) => return Ok(None),
            // No /proc, another user's pipe, a sandbox: the bounded lane.
            Err(_) => {}
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = (write, flags, stat);
        Ok(Some(Lane::Bounded))
    }

    /// The end to do I/O on: the private one, or the caller's.
    fn end<'p>(&'p self, pipe: &'p Pipe) -> &'p Pipe {
        match self {
            Lane::Private(private) => private,
            Lane::Direct | Lane::Bounded | Lane::Plain => pipe,
        }
    }
}

/// `fstat(2)` of the open fd `fd`.
fn fstat(fd: libc::c_int) -> io::Result<libc::stat> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is writable memory for one `struct stat`; the caller
    // keeps the fd open for the duration of the call.
    cvt(unsafe { libc::fstat(fd, stat.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it filled in `stat`.
    Ok(unsafe { stat.assume_init() })
}

/// Opens the FIFO behind `pipe` (whose `fstat` is `stat`) again,
/// nonblocking and close-on-exec, for writing or reading: a new open file
/// description of the same pipe, with the packet mode (`O_DIRECT`, a flag
/// of the writer's description) found in `pipe`'s status flags `status`.
///
/// Through `/proc/thread-self/fd`, the calling thread's own fd table (a
/// thread may have unshared it), or `/proc/self/fd` on kernels before 3.17;
/// `Ok(None)` if what opened is not the same pipe (checked by device and
/// inode), which is then closed unused.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn reopen(
    pipe: &Pipe,
    write: bool,
    status: libc::c_int,
    stat: &libc::stat,
) -> io::Result<Option<Pipe>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let access = if write {
        libc::O_WRONLY
    } else {
        libc::O_RDONLY
    };
    let packets = status & libc::O_DIRECT;
    let flags = access | packets | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    let fd = pipe.0.as_raw_fd();
    let open = |path: String| {
        // SAFETY: `path` is a NUL-terminated string that lives for the call.
        cvt(unsafe { libc::open(path.as_ptr().cast(), flags) })
    };
    let new = match open(format!("/proc/thread-self/fd/{fd}\0")) {
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
            open(format!("/proc/self/fd/{fd}\0"))?
        }
        result => result?,
    };
    // SAFETY: open succeeded, so `new` is an open fd that nothing else owns.
    let private = Pipe(unsafe { OwnedFd::from_raw_fd(new) });
    let same = fstat(new)?;
    Ok((same.st_dev == stat.st_dev && same.st_ino == stat.st_ino).then_some(private))
}

/// What a run leaves in flight on a pipe for the next: nothing, since every
/// call this engine makes returns at once.
pub(crate) type InFlight = ();

pub(crate) fn drive(
    inputs: &mut [Input<'_>],
    outputs: &mut [OutputPipe<'_>],
    deadline: Option<Instant>,
) -> io::Result<()> {
    let sigpipe = if inputs.iter().any(|input| input.pipe().is_some()) {
        Some(SigpipeGuard::block()?)
    } else {
        None
    };
    let mut input_lanes = Vec::with_capacity(inputs.len());
    for input in inputs.iter_mut() {
        let lane = match input.pipe() {
            None => None,
            Some(pipe) => match Lane::open(pipe.inner(), true)? {
                Some(lane) => Some(lane),
                None => {
                    input.close(true);
                    None
                }
            },
        };
        input_lanes.push(lane);
    }
    let mut output_lanes = Vec::with_capacity(outputs.len());
    for output in outputs.iter() {
        output_lanes.push(match output.pipe() {
            None => None,
            Some(pipe) => Lane::open(pipe.inner(), false)?,
        });
    }
    run(
        inputs,
        &mut input_lanes,
        outputs,
        &output_lanes,
        deadline,
        sigpipe.as_ref(),
    )
}

fn run(
    inputs: &mut [Input<'_>],
    input_lanes: &mut [Option<Lane>],
    outputs: &mut [OutputPipe<'_>],
    output_lanes: &[Option<Lane>],
    deadline: Option<Instant>,
    sigpipe: Option<&SigpipeGuard>,
) -> io::Result<()> {
    let mut poll_fds: Vec<libc::pollfd> = Vec::new();
    let mut slots = Vec::new();
    loop {
        poll_fds.clear();
        slots.clear();
        for (i, input) in inputs.iter_mut().enumerate() {
            let fd = match input.next()? {
                None => continue,
                Some((_, [])) => {
                    input.close(false);
                    input_lanes[i] = None;
                    continue;
                }
                Some((pipe, _)) => match &input_lanes[i] {
                    Some(lane) => lane.end(pipe.inner()).0.as_raw_fd(),
                    None => continue,
                },
            };
            poll_fds.push(libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            });
            slots.push(Slot::Input(i));
        }
        for (i, output) in outputs.iter().enumerate() {
            if let (Some(pipe), Some(lane)) = (output.pipe(), &output_lanes[i]) {
                poll_fds.push(libc::pollfd {
                    fd: lane.end(pipe.inner()).0.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                slots.push(Slot::Output(i));
            }
        }
        if poll_fds.is_empty() {
            return Ok(());
        }

        let timeout =
            crate::communicate::time_left(deadline, poll_fds.len())?.map_or(-1, poll_millis);
        // SAFETY: `poll_fds` is a live array of `poll_fds.len()` pollfds.
        let ready = unsafe { libc::poll(poll_fds.as_mut_ptr(), poll_fds.len() as _, timeout) };
        match cvt(ready) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
        for (poll_fd, slot) in poll_fds.iter().zip(&slots) {
            if poll_fd.revents == 0 {
                continue;
            }
            match *slot {
                Slot::Input(i) => {
                    if let Some(lane) = &input_lanes[i] {
                        if feed(&mut inputs[i], lane, sigpipe)? == Fed::Closed {
                            input_lanes[i] = None;
                        }
                    }
                }
                Slot::Output(i) => {
                    if let Some(lane) = &output_lanes[i] {
                        drain(&mut outputs[i], lane, poll_fd.revents)?;
                    }
                }
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Fed {
    Open,
    Closed,
}

/// Writes into a ready input until its pipe is full or its source is
/// exhausted.
fn feed(input: &mut Input<'_>, lane: &Lane, sigpipe: Option<&SigpipeGuard>) -> io::Result<Fed> {
    loop {
        let (pipe, bytes) = match input.next()? {
            None => return Ok(Fed::Closed),
            Some((_, [])) => {
                input.close(false);
                return Ok(Fed::Closed);
            }
            Some((pipe, bytes)) => (pipe.inner(), bytes),
        };
        let end = lane.end(pipe);
        let fd = end.0.as_raw_fd();
        let written = match lane {
            Lane::Direct | Lane::Private(_) | Lane::Plain => end.write(bytes),
            Lane::Bounded => {
                if !ready_now(fd, libc::POLLOUT)? {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    end.write(&bytes[..bytes.len().min(PIPE_BUF)])
                }
            }
        };
        match written {
            Ok(n) => {
                let full = n < bytes.len() && !matches!(lane, Lane::Bounded);
                input.advance(n);
                if full {
                    grow(fd, input.growth());
                    return Ok(Fed::Open);
                }
            }
            Err(err) => match err.kind() {
                io::ErrorKind::WouldBlock => {
                    grow(fd, input.growth());
                    return Ok(Fed::Open);
                }
                io::ErrorKind::Interrupted => {}
                // The reader is gone: stop feeding, keep the exchange going.
                io::ErrorKind::BrokenPipe => {
                    if let Some(sigpipe) = sigpipe {
                        sigpipe.consume();
                    }
                    input.close(true);
                    return Ok(Fed::Closed);
                }
                _ => return Err(err),
            },
        }
    }
}

/// Reads a ready output once, into its sink. `revents` is what `poll`
/// reported for it.
fn drain(output: &mut OutputPipe<'_>, lane: &Lane, revents: libc::c_short) -> io::Result<()> {
    loop {
        let (read, fd) = match output.next() {
            None => return Ok(()),
            Some((pipe, target)) => {
                let end = lane.end(pipe.inner());
                let limit = match lane {
                    Lane::Direct | Lane::Private(_) | Lane::Plain => usize::MAX,
                    Lane::Bounded => match end.bytes_available()? {
                        // Nothing buffered: end of file if every writer is
                        // gone; otherwise a sharer took the bytes since
                        // `poll`, and a read could block.
                        0 if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 => {
                            usize::MAX
                        }
                        0 => return Ok(()),
                        available => available,
                    },
                };
                let read = match target {
                    Target::Vec { vec, max } => end.read_spare(vec, max.min(limit)),
                    Target::Buffer(buf) => {
                        let len = buf.len().min(limit);
                        end.read(&mut buf[..len])
                    }
                };
                (read, end.0.as_raw_fd())
            }
        };
        match read {
            Ok(n) => {
                // A read that emptied a whole pipe found it full.
                if n > 0 && output.growth().wants() && n >= capacity(fd) {
                    grow(fd, output.growth());
                }
                return output.commit(n);
            }
            Err(err) => match err.kind() {
                io::ErrorKind::Interrupted => {}
                // A nonblocking pipe emptied by a sharer since `poll`: try
                // again at the next readiness.
                io::ErrorKind::WouldBlock => return Ok(()),
                _ => return Err(err),
            },
        }
    }
}

/// Whether `fd` is ready for `events` right now (a `poll` that does not
/// wait), counting end of file and errors as ready: the call that follows
/// reports them.
fn ready_now(fd: libc::c_int, events: libc::c_short) -> io::Result<bool> {
    let mut poll_fd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one live pollfd, count 1; the fd is open (the caller
        // borrows the pipe).
        match cvt(unsafe { libc::poll(&mut poll_fd, 1, 0) }) {
            Ok(n) => return Ok(n > 0),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// The capacity of the pipe `fd`, or `usize::MAX` where it cannot be read
/// (so that no read counts as having found the pipe full).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn capacity(fd: libc::c_int) -> usize {
    // SAFETY: F_GETPIPE_SZ takes no argument; the caller borrows the fd.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) }).map_or(usize::MAX, |size| size as usize)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn capacity(_fd: libc::c_int) -> usize {
    usize::MAX
}

/// The size a child's pipe is enlarged to when it fills up.
#[cfg(any(target_os = "linux", target_os = "android"))]
const GROWN: usize = 1 << 20;

/// Enlarges the pipe `fd`, found full, to [`GROWN`] bytes if the exchange
/// may ([`Growth`]) and the process-wide [`budget`] allows; best effort.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn grow(fd: libc::c_int, growth: &mut Growth) {
    if !growth.wants() {
        return;
    }
    let now = capacity(fd);
    if now >= GROWN {
        return;
    }
    let extra = GROWN - now;
    if !growth.reserve(extra, budget()) {
        return;
    }
    // SAFETY: F_SETPIPE_SZ takes an int; the caller borrows the fd.
    match cvt(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, GROWN as libc::c_int) }) {
        Ok(granted) => growth.settle((granted as usize).saturating_sub(now)),
        Err(_) => growth.settle(0),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn grow(_fd: libc::c_int, _growth: &mut Growth) {}

/// The bytes by which this process enlarges child pipes at most, all
/// exchanges together: a quarter of the per-user soft limit on pipe buffers
/// (`/proc/sys/fs/pipe-user-pages-soft`, 16 MiB of its default 64 MiB),
/// read once. Past the soft limit, every new pipe the user creates, in any
/// process, gets 2 pages instead of 16; the budget keeps three quarters of
/// it for those. A soft limit of 0 (none) leaves the budget unbounded.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn budget() -> usize {
    use std::sync::OnceLock;
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let pages = std::fs::read_to_string("/proc/sys/fs/pipe-user-pages-soft")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .unwrap_or(16384);
        if pages == 0 {
            return usize::MAX;
        }
        // SAFETY: sysconf takes a constant and has no other effect.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            size if size > 0 => size as usize,
            _ => 4096,
        };
        pages.saturating_mul(page) / 4
    })
}

/// Blocks `SIGPIPE` on the calling thread for the length of an exchange, so
/// that a write into a pipe whose reader is gone fails with `EPIPE` instead
/// of killing a process that keeps the default disposition. Dropping it
/// restores the thread's mask.
struct SigpipeGuard {
    old: libc::sigset_t,
    /// Whether a `SIGPIPE` was pending on the thread (or the process) before
    /// the guard blocked it: one raised by someone else, left alone.
    pending_before: bool,
}

impl SigpipeGuard {
    fn block() -> io::Result<SigpipeGuard> {
        let set = sigpipe_set();
        let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: both pointers are to live sigsets; the new one is
        // initialised by `sigpipe_set`.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: pthread_sigmask succeeded, so it wrote the old mask.
        let old = unsafe { old.assume_init() };
        Ok(SigpipeGuard {
            old,
            pending_before: sigpipe_pending(),
        })
    }

    /// Consumes the `SIGPIPE` that the engine's write just raised, unless
    /// one was already pending before the exchange (which stays pending).
    fn consume(&self) {
        if self.pending_before || !sigpipe_pending() {
            return;
        }
        let set = sigpipe_set();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `set` and `zero` are live; a null siginfo is allowed.
            // With a zero timeout the call never waits.
            unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let mut signal = 0;
            // SAFETY: `set` and `signal` are live. SIGPIPE is pending and
            // blocked, so sigwait returns at once (not every libc declares
            // sigtimedwait: Apple's and illumos' do not).
            unsafe { libc::sigwait(&set, &mut signal) };
        }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        // SAFETY: `self.old` is the mask pthread_sigmask returned.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

fn sigpipe_set() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset adds a valid
    // signal number to it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        set.assume_init()
    }
}

fn sigpipe_pending() -> bool {
    let mut pending = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending writes one sigset; sigismember reads it.
    unsafe {
        if libc::sigpending(pending.as_mut_ptr()) != 0 {
            return false;
        }
        libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
    }
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running
/// then. (The caller has already seen, with `try_wait`, that it was running.)
pub(crate) fn wait_deadline(
    child: &mut Child,
    deadline: Instant,
) -> io::Result<Option<ExitStatus>> {
    // Not on Android: before Android 12 the app sandbox's seccomp filter
    // kills the process on pidfd_open instead of failing it.
    #[cfg(target_os = "linux")]
    if let Some(pidfd) = pidfd_open(child) {
        return wait_pidfd(child, &pidfd, deadline);
    }
    poll_exit(child, deadline)
}

/// A pidfd for `child`, or `None` where the kernel has none (before 5.3) or
/// a sandbox forbids it; the caller then polls.
#[cfg(target_os = "linux")]
fn pidfd_open(child: &Child) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = child.id() as libc::pid_t;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative result is a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) })
}

#[cfg(target_os = "linux")]
fn wait_pidfd(
    child: &mut Child,
    pidfd: &std::os::fd::OwnedFd,
    deadline: Instant,
) -> io::Result<Option<ExitStatus>> {
    // The pidfd is readable once the child has exited.
    use std::os::fd::AsFd;
    if super::control::poll_until(pidfd.as_fd(), libc::POLLIN, Some(deadline))? {
        child.wait().map(Some)
    } else {
        child.try_wait()
    }
}

/// Checks `try_wait` at growing intervals, up to 50 ms apart, until the
/// deadline.
fn poll_exit(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
