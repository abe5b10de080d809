//! The Unix communicate engine: one `poll(2)` loop over every open pipe.
//!
//! Inputs are switched to nonblocking mode, so that each write takes as much
//! as the pipe has room for and never waits; each is switched back before it
//! is closed or `drive` returns. Outputs are left as they are: `poll`
//! reporting one readable means a read returns data or end of file at once,
//! and each readiness gets exactly one read, straight into the sink.

use std::io;
use std::os::fd::AsRawFd;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use super::control::poll_millis;
use super::cvt;
use crate::communicate::{Input, OutputPipe, Target};

/// Which pipe a `pollfd` stands for.
#[derive(Clone, Copy)]
enum Slot {
    Input(usize),
    Output(usize),
}

pub(crate) fn drive(
    inputs: &mut [Input<'_>],
    outputs: &mut [OutputPipe<'_>],
    deadline: Option<Instant>,
) -> io::Result<()> {
    let made_nonblocking = vec![false; inputs.len()];
    let mut guard = RestoreModes {
        inputs,
        made_nonblocking,
    };
    let RestoreModes {
        inputs,
        made_nonblocking,
    } = &mut guard;
    run(inputs, outputs, deadline, made_nonblocking)
}

/// The inputs, and which of them this call made nonblocking: those are
/// switched back when it is dropped, on every return and also if a source
/// or a sink panics (the mode belongs to the open file description, which
/// the caller's clones share).
struct RestoreModes<'a, 'b> {
    inputs: &'a mut [Input<'b>],
    made_nonblocking: Vec<bool>,
}

impl Drop for RestoreModes<'_, '_> {
    fn drop(&mut self) {
        for (input, &made) in self.inputs.iter().zip(&self.made_nonblocking) {
            if let (true, Some(pipe)) = (made, input.pipe()) {
                // Best effort: the exchange's own result matters more.
                let _ = pipe.inner().set_nonblocking(false);
            }
        }
    }
}

fn run(
    inputs: &mut [Input<'_>],
    outputs: &mut [OutputPipe<'_>],
    deadline: Option<Instant>,
    restore: &mut [bool],
) -> io::Result<()> {
    for (input, restore) in inputs.iter().zip(restore.iter_mut()) {
        if let Some(pipe) = input.pipe() {
            if !pipe.inner().nonblocking()? {
                pipe.inner().set_nonblocking(true)?;
                *restore = true;
            }
        }
    }
    let mut poll_fds: Vec<libc::pollfd> = Vec::new();
    let mut slots = Vec::new();
    loop {
        poll_fds.clear();
        slots.clear();
        for (i, input) in inputs.iter_mut().enumerate() {
            let fd = match input.next()? {
                None => continue,
                Some((_, [])) => {
                    close_input(input, &mut restore[i], false);
                    continue;
                }
                Some((pipe, _)) => pipe.as_raw_fd(),
            };
            poll_fds.push(libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            });
            slots.push(Slot::Input(i));
        }
        for (i, output) in outputs.iter().enumerate() {
            if let Some(pipe) = output.pipe() {
                poll_fds.push(libc::pollfd {
                    fd: pipe.as_raw_fd(),
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
                Slot::Input(i) => feed(&mut inputs[i], &mut restore[i])?,
                Slot::Output(i) => drain(&mut outputs[i])?,
            }
        }
    }
}

/// Writes into a ready input until its pipe is full or its source is
/// exhausted.
fn feed(input: &mut Input<'_>, restore: &mut bool) -> io::Result<()> {
    loop {
        let written = match input.next()? {
            None => return Ok(()),
            Some((_, [])) => {
                close_input(input, restore, false);
                return Ok(());
            }
            Some((pipe, bytes)) => pipe.inner().write(bytes),
        };
        match written {
            Ok(n) => input.advance(n),
            Err(err) => match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(()),
                io::ErrorKind::Interrupted => {}
                // The reader is gone: stop feeding, keep the exchange going.
                io::ErrorKind::BrokenPipe => {
                    close_input(input, restore, true);
                    return Ok(());
                }
                _ => return Err(err),
            },
        }
    }
}

/// Closes an input's pipe, back in the mode it had (the mode belongs to the
/// open file description, which a clone elsewhere may share).
fn close_input(input: &mut Input<'_>, restore: &mut bool, early: bool) {
    if let Some(pipe) = input.close(early) {
        if *restore {
            let _ = pipe.inner().set_nonblocking(false);
        }
    }
    *restore = false;
}

/// Reads a ready output once, into its sink.
fn drain(output: &mut OutputPipe<'_>) -> io::Result<()> {
    loop {
        let read = match output.next() {
            None => return Ok(()),
            Some((pipe, Target::Vec { vec, max })) => pipe.inner().read_spare(vec, max),
            Some((pipe, Target::Buffer(buf))) => pipe.inner().read(buf),
        };
        match read {
            Ok(n) => return output.commit(n),
            Err(err) => match err.kind() {
                io::ErrorKind::Interrupted => {}
                // A pipe the caller made nonblocking, emptied by another
                // reader since poll: try again at the next readiness.
                io::ErrorKind::WouldBlock => return Ok(()),
                _ => return Err(err),
            },
        }
    }
}

/// Enlarges a child's pipe to 1 MiB on Linux and Android, best effort: a
/// larger pipe lets each side move more between two waits. A refusal (a user
/// over its pipe quota) leaves the pipe as it was. Other systems cannot
/// resize a pipe.
pub(crate) fn enlarge(pipe: &super::Pipe) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = pipe.set_capacity(1 << 20);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = pipe;
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running
/// then. (The caller has already seen, with `try_wait`, that it was running.)
pub(crate) fn wait_deadline(
    child: &mut Child,
    deadline: Instant,
) -> io::Result<Option<ExitStatus>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(pidfd) = pidfd_open(child) {
        return wait_pidfd(child, &pidfd, deadline);
    }
    poll_exit(child, deadline)
}

/// A pidfd for `child`, or `None` where the kernel has none (before 5.3) or
/// a sandbox forbids it; the caller then polls.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn pidfd_open(child: &Child) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = child.id() as libc::pid_t;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative result is a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
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
