//! Feeds a child 8 MB on its standard input while collecting its standard
//! output and standard error, on one thread, with a deadline, using
//! `pipekit::communicate::Communicator`.
//!
//! The child (this same program, started again with an environment
//! variable set) writes 8 MB to its standard error *before* reading any of
//! its input, then echoes the input to its standard output. Writing the
//! input first and reading afterwards would deadlock as soon as both pipes
//! are full; the `Communicator` serves all three pipes at once and cannot.
//! Standard output is read straight into a `Vec`; standard error goes
//! through a `Sink` that keeps only its first 64 bytes (the rest is read and
//! discarded, so the child never blocks on it).
//!
//! ```text
//! cargo run --example communicate
//! ```

use std::env;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipekit::communicate::{Communicator, Sink};

const CHILD: &str = "PIPEKIT_EXAMPLE_CHILD";
const SIZE: usize = 8 << 20;
const ERR_KEPT: u64 = 64;

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
    let (stdin, stdout, stderr) = (
        child.stdin.take().expect("stdin is piped"),
        child.stdout.take().expect("stdout is piped"),
        child.stderr.take().expect("stderr is piped"),
    );

    let input: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut exchange = Communicator::new();
    exchange
        .input(stdin, &input)
        .output(stdout, &mut out)
        .output(stderr, Sink::from(&mut err).limit(ERR_KEPT))
        .timeout(Duration::from_secs(60));
    exchange.run()?;
    let stderr_truncated = exchange.truncated(1);
    drop(exchange); // releases `out` and `err`
    let status = child.wait()?;

    println!(
        "in {:?}: sent {} bytes, received {} on stdout and kept {} of stderr \
         (truncated: {}); the child {}",
        started.elapsed(),
        input.len(),
        out.len(),
        err.len(),
        stderr_truncated,
        status
    );
    assert!(status.success(), "the child failed");
    assert_eq!(out, input, "stdout should echo the input");
    assert_eq!(err, vec![b'!'; ERR_KEPT as usize], "stderr keeps its limit");
    assert!(stderr_truncated, "stderr was longer than its limit");
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
