//! A child that starts a grandchild and hangs: at the deadline, the whole
//! process tree is killed, and the output written so far is printed.
//!
//! Without `kill_tree`, killing the child alone would leave the grandchild
//! running, holding the output pipe open. Both programs are this same
//! example, started again with an environment variable naming the role:
//!
//! ```text
//! cargo run --example kill_tree
//! ```

use std::env;
use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use pipekit::communicate::{Exchange, TimedOutOutput};

const ROLE: &str = "PIPEKIT_EXAMPLE_ROLE";

fn main() -> io::Result<()> {
    match env::var(ROLE).as_deref() {
        Ok("child") => return child(),
        Ok("grandchild") => return grandchild(),
        _ => {}
    }
    let mut command = Command::new(env::current_exe()?);
    command.env(ROLE, "child");
    let err = match Exchange::new(&mut command)
        .kill_tree(true)
        .timeout(Duration::from_secs(1))
        .run()
    {
        Ok(output) => {
            println!("finished in time?! {}", output.status);
            return Ok(());
        }
        Err(err) => err,
    };
    let Some(partial) = TimedOutOutput::from_error(&err) else {
        return Err(err);
    };
    println!("{partial}");
    if let Some(status) = partial.status {
        println!("the child's status: {status}");
    }
    println!("stdout so far:");
    for line in String::from_utf8_lossy(&partial.stdout).lines() {
        println!("  | {line}");
    }
    Ok(())
}

/// Starts a grandchild that shares its standard output, then hangs.
fn child() -> io::Result<()> {
    let grandchild = Command::new(env::current_exe()?)
        .env(ROLE, "grandchild")
        .stdin(Stdio::null())
        .spawn()?;
    println!("child: started grandchild {}", grandchild.id());
    io::stdout().flush()?;
    hang()
}

/// Writes a line, then hangs with the output pipe open.
fn grandchild() -> io::Result<()> {
    println!("grandchild: working...");
    io::stdout().flush()?;
    hang()
}

fn hang() -> ! {
    loop {
        std::thread::park();
    }
}
