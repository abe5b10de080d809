//! The process tree of a child spawned by `pipekit::tokio`'s exchange: a new
//! process group, which one `SIGKILL` ends.

use std::io;

use ::tokio::process::{Child, Command};

/// Spawns `command` as the leader of a new process group (set on `command`
/// with `process_group(0)`, where it stays) and returns it with its group.
pub(crate) fn spawn_tree(command: &mut Command) -> io::Result<(Child, Tree)> {
    command.process_group(0);
    let child = command.spawn()?;
    // A freshly spawned child has its id; it comes from a `pid_t`, so it
    // converts back exactly.
    let pgid = child.id().map_or(0, |id| id as libc::pid_t);
    Ok((child, Tree { pgid }))
}

/// The process group of a child spawned by [`spawn_tree`].
#[derive(Debug)]
pub(crate) struct Tree {
    pgid: libc::pid_t,
}

impl Tree {
    /// Sends `SIGKILL` to every process of the group. A group with no
    /// process left is not an error.
    pub(crate) fn kill(&self) -> io::Result<()> {
        if self.pgid <= 0 {
            return Ok(());
        }
        // SAFETY: killpg takes a process group id and a signal number and
        // touches no memory of this process; `pgid` is positive (checked
        // above), so it never names every process or the caller's group.
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
