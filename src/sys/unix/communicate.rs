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
    // Which inputs this call made nonblocking, to switch back.
    let mut restore = vec![false; inputs.len()];
    let result = run(inputs, outputs, deadline, &mut restore);
    for (input, restore) in inputs.iter().zip(restore) {
        if let (true, Some(pipe)) = (restore, input.pipe()) {
            // Best effort: the exchange's own result matters more.
            let _ = pipe.inner().set_nonblocking(false);
        }
    }
    result
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

        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(crate::communicate::deadline_passed(poll_fds.len()));
                }
                poll_millis(left)
            }
        };
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
    let mut poll_fd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return child.try_wait();
        }
        // SAFETY: `poll_fd` is one live pollfd, and the count is 1.
        match cvt(unsafe { libc::poll(&mut poll_fd, 1, poll_millis(left)) }) {
            // The pidfd is readable once the child has exited.
            Ok(n) if n > 0 => return child.wait().map(Some),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
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
