//! Feeds a child 8 MB on its standard input while collecting 8 MB from each
//! of its standard output and standard error, on one thread, with a
//! deadline.
//!
//! The child (this same program, started again with an environment
//! variable set) writes all of its standard error *before* reading any of
//! its input. Writing the input first and reading afterwards would deadlock
//! as soon as both pipes are full; `communicate` serves all three pipes at
//! once and cannot.
//!
//! ```text
//! cargo run --example communicate
//! ```

use std::env;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "PIPEKIT_EXAMPLE_CHILD";
const SIZE: usize = 8 << 20;

fn main() -> io::Result<()> {
    if env::var_os(CHILD).is_some() {
        return child();
    }

    let mut child = Command::new(env::current_exe()?)
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;

    let input: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let started = Instant::now();
    let output =
        pipekit::communicate::communicate_timeout(&mut child, &input, Duration::from_secs(60))?;

    println!(
        "in {:?}: sent {} bytes, received {} on stdout and {} on stderr; the child {}",
        started.elapsed(),
        input.len(),
        output.stdout.len(),
        output.stderr.len(),
        output.status
    );
    assert_eq!(output.stdout, input, "stdout should echo the input");
    Ok(())
}

/// Writes SIZE bytes to standard error, then echoes its input to standard
/// output.
fn child() -> io::Result<()> {
    io::stderr().write_all(&vec![b'!'; SIZE])?;
    let mut input = Vec::new();
    io::stdin().read_to_end(&mut input)?;
    io::stdout().write_all(&input)
}
