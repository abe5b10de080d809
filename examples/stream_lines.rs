//! Streams a child's output to a callback line by line, as it arrives,
//! under a deadline; its standard error is captured on the side.
//!
//! The child is this same example, started again with an environment
//! variable set, so it runs anywhere without another program:
//!
//! ```text
//! cargo run --example stream_lines
//! ```

use std::env;
use std::io::{self, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use pipekit::communicate::{Exchange, Sink};

const CHILD: &str = "PIPEKIT_EXAMPLE_CHILD";

fn main() -> io::Result<()> {
    if env::var_os(CHILD).is_some() {
        return child();
    }
    let started = Instant::now();
    let mut warnings = 0;
    let mut command = Command::new(env::current_exe()?);
    command.env(CHILD, "1");
    let output = Exchange::new(&mut command)
        .stdout_to(Sink::lines(|line| {
            let line = String::from_utf8_lossy(line);
            if line.starts_with("warning") {
                warnings += 1;
            }
            println!("[{:>5} ms] {line}", started.elapsed().as_millis());
        }))
        .timeout(Duration::from_secs(30))
        .run()?;
    println!(
        "the child exited with {}: {warnings} warnings; its stderr: {:?}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Reports progress in lines, some of them ending in `\r\n`, with a pause
/// between them, and a last line without an end.
fn child() -> io::Result<()> {
    let mut out = io::stdout();
    for step in 1..=5 {
        write!(out, "step {step} of 5\r\n")?;
        if step % 2 == 0 {
            writeln!(out, "warning: step {step} was even")?;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    write!(out, "done")?;
    io::stderr().write_all(b"no errors")
}
