//! Feeds a child and reads its output at the same time, in one async task
//! per direction, through `pipekit::tokio` pipes: the child's ends are
//! ordinary blocking pipe ends, this program's ends are async. On Windows no
//! thread waits on either pipe: the I/O completes through tokio's reactor.
//!
//! The child is this same program, started again with an environment
//! variable set (it upper-cases what it reads):
//!
//! ```text
//! cargo run --features tokio --example tokio_child
//! ```

use std::env;
use std::io::{self, Read, Write};
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

const CHILD: &str = "PIPEKIT_EXAMPLE_CHILD";

fn main() -> io::Result<()> {
    if env::var_os(CHILD).is_some() {
        return child();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(parent())
}

async fn parent() -> io::Result<()> {
    let (child_stdin, mut to_child) = pipekit::tokio::pipe_to_child()?;
    let (mut from_child, child_stdout) = pipekit::tokio::pipe_from_child()?;

    let mut command = Command::new(env::current_exe()?);
    command
        .env(CHILD, "1")
        .stdin(child_stdin)
        .stdout(child_stdout)
        .stderr(Stdio::inherit());
    let mut child = command.spawn()?;
    // The command holds this process's copies of the child's ends; without
    // this drop the read below would never see end of file.
    drop(command);

    let text = "async pipes, the same on every platform\n".repeat(10_000);
    let feed = async move {
        to_child.write_all(text.as_bytes()).await?;
        drop(to_child); // end of file for the child
        Ok::<_, io::Error>(())
    };
    let mut output = String::new();
    let (fed, read) = tokio::join!(feed, from_child.read_to_string(&mut output));
    fed?;
    read?;
    let status = child.wait().await?;

    println!(
        "the child exited with {status}; it sent back {} bytes, starting with {:?}",
        output.len(),
        output.lines().next().unwrap_or("")
    );
    Ok(())
}

/// Copies standard input to standard output, upper-cased.
fn child() -> io::Result<()> {
    let mut input = Vec::new();
    io::stdin().read_to_end(&mut input)?;
    input.make_ascii_uppercase();
    io::stdout().write_all(&input)
}
