//! `producer | consumer` over a pipekit pipe, run as one exchange: it feeds
//! the producer, drains the consumer's output and both standard errors, all
//! on one thread, under one deadline.
//!
//! Both programs are this same example, started again with an environment
//! variable naming the role, so it runs anywhere without another program:
//!
//! ```text
//! cargo run --example pipeline
//! ```

use std::env;
use std::io::{self, BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipekit::communicate::{wait_timeout, Communicator};

const ROLE: &str = "PIPEKIT_EXAMPLE_ROLE";
const LINES: usize = 100_000;

fn main() -> io::Result<()> {
    match env::var(ROLE).as_deref() {
        Ok("producer") => return producer(),
        Ok("consumer") => return consumer(),
        _ => {}
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let me = env::current_exe()?;

    // The pipe between the two: the producer writes it, the consumer reads it.
    let (reader, writer) = pipekit::pipe()?;
    let mut producer = Command::new(&me)
        .env(ROLE, "producer")
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()?;
    let mut consumer = Command::new(&me)
        .env(ROLE, "consumer")
        .stdin(reader)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // The `Command`s that held the pipe's ends were temporaries, gone by
    // now: the consumer sees end of file when the producer exits.

    let input: String = (0..LINES).map(|i| format!("item {i}\n")).collect();
    let (mut out, mut producer_err, mut consumer_err) = (Vec::new(), Vec::new(), Vec::new());
    Communicator::new()
        .input(producer.stdin.take().unwrap(), &input)
        .output(consumer.stdout.take().unwrap(), &mut out)
        .output(producer.stderr.take().unwrap(), &mut producer_err)
        .output(consumer.stderr.take().unwrap(), &mut consumer_err)
        .deadline(deadline)
        .run()?;
    let left = deadline.saturating_duration_since(Instant::now());
    let producer_status = wait_timeout(&mut producer, left)?;
    let consumer_status = wait_timeout(&mut consumer, left)?;

    println!(
        "fed {} bytes; the consumer wrote {} bytes, {} lines",
        input.len(),
        out.len(),
        out.iter().filter(|&&b| b == b'\n').count()
    );
    for (name, status, err) in [
        ("producer", producer_status, &producer_err),
        ("consumer", consumer_status, &consumer_err),
    ] {
        let status = status.map_or("still running".to_string(), |status| status.to_string());
        print!("{name} ({status}) said: {}", String::from_utf8_lossy(err));
    }
    assert!(out.starts_with(b"ITEM 0\n"));
    Ok(())
}

/// Copies its input to its output, each line twice.
fn producer() -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut lines = 0;
    for line in io::stdin().lock().lines() {
        let line = line?;
        writeln!(out, "{line}\n{line}")?;
        lines += 1;
    }
    out.flush()?;
    eprintln!("read {lines} lines");
    Ok(())
}

/// Upper-cases its input.
fn consumer() -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut lines = 0;
    for line in io::stdin().lock().lines() {
        writeln!(out, "{}", line?.to_uppercase())?;
        lines += 1;
    }
    out.flush()?;
    eprintln!("wrote {lines} lines");
    Ok(())
}
