//! A child and everything it started, as one process group that one signal
//! kills.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Spawns `command` as the leader of a new process group, whose id is its
/// process id, and returns it with its group. Every process it starts
/// joins that group unless it leaves it (`setsid`, `setpgid`). The group is
/// set on `command` (`process_group(0)`), and stays set.
pub(crate) fn spawn_tree(command: &mut Command) -> io::Result<(Child, Tree)> {
    command.process_group(0);
    let child = command.spawn()?;
    let tree = Tree::led_by(child.id());
    Ok((child, tree))
}

/// The process group of a child spawned by [`spawn_tree`].
#[derive(Debug)]
pub(crate) struct Tree {
    pgid: libc::pid_t,
}

impl Tree {
    /// The group led by the process `pid`, spawned with `process_group(0)`.
    pub(crate) fn led_by(pid: u32) -> Tree {
        // A process id comes from a `pid_t`, so it converts back exactly.
        Tree {
            pgid: pid as libc::pid_t,
        }
    }

    /// Sends `SIGKILL` to every process of the group. A group with no
    /// process left is not an error.
    ///
    /// The group's id stays reserved while any process is in the group
    /// (POSIX never reuses a process id that is a live group's id), so the
    /// signal reaches the child's group even after the child was reaped, as
    /// long as a process it started lives on; once none does, `ESRCH` says
    /// so.
    pub(crate) fn kill(&self) -> io::Result<()> {
        if self.pgid <= 0 {
            return Ok(());
        }
        // SAFETY: killpg takes a process group id and a signal number and
        // touches no memory of this process; `pgid` is positive (checked
        // above), so it never names "every process" or the caller's group.
        let ret = unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        Err(crate::error::explain(
            err,
            format!("pipekit: killing process group {}", self.pgid),
        ))
    }
}
