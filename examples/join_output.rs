//! Joins a child's standard output and standard error in one pipe and prints
//! what arrived, in the order the child wrote it.
//!
//! The child is this same program, started again with an environment
//! variable set, so the example runs anywhere without another program:
//!
//! ```text
//! cargo run --example join_output
//! ```

use std::env;
use std::io::{self, Read, Write};
use std::process::Command;

const CHILD: &str = "PIPEKIT_EXAMPLE_CHILD";

fn main() -> io::Result<()> {
    if env::var_os(CHILD).is_some() {
        return child();
    }

    let (mut reader, writer) = pipekit::pipe()?;
    let writer_clone = writer.try_clone()?;

    let mut command = Command::new(env::current_exe()?);
    command.env(CHILD, "1").stdout(writer).stderr(writer_clone);
    let mut running = command.spawn()?;
    // The command still holds both writers; until it is dropped the reader
    // cannot see end of file, and read_to_string below would wait forever.
    drop(command);

    let mut joined = String::new();
    reader.read_to_string(&mut joined)?;
    let status = running.wait()?;

    println!("the child exited with {status}; one pipe carried both of its streams:");
    for line in joined.lines() {
        println!("  | {line}");
    }
    assert!(status.success(), "the child failed");
    let expected: Vec<String> = (1..=3)
        .flat_map(|i| [format!("line {i} on stdout"), format!("line {i} on stderr")])
        .collect();
    assert_eq!(
        joined.lines().collect::<Vec<_>>(),
        expected,
        "in the order written"
    );
    Ok(())
}

/// Alternates between standard output and standard error, flushing each
/// line, so the joined pipe shows them interleaved.
fn child() -> io::Result<()> {
    let (mut out, mut err) = (io::stdout(), io::stderr());
    for i in 1..=3 {
        writeln!(out, "line {i} on stdout")?;
        out.flush()?;
        writeln!(err, "line {i} on stderr")?;
        err.flush()?;
    }
    Ok(())
}
