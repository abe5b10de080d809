//! The process tree of a child spawned by `pipekit::tokio`'s exchange: a new
//! process group, which one `SIGKILL` ends.

use std::io;

use ::tokio::process::{Child, Command};

pub(crate) use super::process::Tree;

/// Spawns `command` as the leader of a new process group (set on `command`
/// with `process_group(0)`, where it stays) and returns it with its group.
pub(crate) fn spawn_tree(command: &mut Command) -> io::Result<(Child, Tree)> {
    command.process_group(0);
    let child = command.spawn()?;
    // A freshly spawned child has its id (0, which kills nothing, if not).
    let tree = Tree::led_by(child.id().unwrap_or(0));
    Ok((child, tree))
}
