//! Read and write timeouts.
//!
//! The bounds on elapsed time are deliberately wide: a timeout must never
//! fire early, and must fire within a margin that only a badly broken
//! implementation (or a frozen machine) would exceed. These are not
//! performance measurements.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use pipekit::{PipeReader, PipeWriter};
use util::watchdog;

const TIMEOUT: Duration = Duration::from_millis(200);
const MARGIN: Duration = Duration::from_secs(10);

/// A pipe to run a test on, and what keeps it working: for the ends made
/// from std's child pipes, the child that relays between them (killed and
/// reaped when the test is done with it).
struct Ends {
    reader: PipeReader,
    writer: PipeWriter,
    relay: Relay,
}

struct Relay(Option<Child>);

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A kind of end, by name, and how to make a pipe of it.
type Kind = (&'static str, fn() -> Ends);

/// Every kind of end a test runs on, by name: `pipe()`'s everywhere; on
/// Windows also overlapped ends, and ends made from std's child pipes
/// (`ChildStdin`, `ChildStderr`) with this test binary in between, copying
/// its standard input to its standard error.
fn kinds() -> Vec<Kind> {
    #[cfg_attr(not(windows), allow(unused_mut))]
    let mut kinds: Vec<Kind> = vec![("pipe()", || {
        let (reader, writer) = pipekit::pipe().unwrap();
        Ends {
            reader,
            writer,
            relay: Relay(None),
        }
    })];
    #[cfg(windows)]
    {
        kinds.push(("overlapped ends", || {
            let (reader, writer) = pipekit::PipeOptions::new()
                .overlapped_reader(true)
                .overlapped_writer(true)
                .create()
                .unwrap();
            Ends {
                reader,
                writer,
                relay: Relay(None),
            }
        }));
        kinds.push(("std's child pipes", std_child_pipes));
    }
    kinds
}

/// A writer made from `ChildStdin` and a reader made from `ChildStderr`,
/// joined by a child that copies one to the other.
#[cfg(windows)]
fn std_child_pipes() -> Ends {
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["relay", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(RELAY, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = PipeWriter::from(child.stdin.take().unwrap());
    let reader = PipeReader::from(child.stderr.take().unwrap());
    Ends {
        reader,
        writer,
        relay: Relay(Some(child)),
    }
}

/// The variable that makes the `relay` test act as the relay child.
const RELAY: &str = "PIPEKIT_TIMEOUTS_RELAY";

/// Does nothing in a normal run. As the relay child: copies standard input
/// to standard error until end of file.
#[test]
fn relay() {
    if std::env::var_os(RELAY).is_none() {
        return;
    }
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stderr().lock());
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = input.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n]).unwrap();
    }
}

/// Runs `test` on every kind of end.
fn on_every_kind(test: fn(Ends)) {
    for (name, make) in kinds() {
        let outcome = std::panic::catch_unwind(|| watchdog(move || test(make())));
        if let Err(panic) = outcome {
            eprintln!("failed on {name}");
            std::panic::resume_unwind(panic);
        }
    }
}

#[track_caller]
fn assert_timed_out_in_bounds(err: std::io::Error, started: Instant) {
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        elapsed >= TIMEOUT,
        "fired early: after {elapsed:?} of {TIMEOUT:?}"
    );
    assert!(elapsed < TIMEOUT + MARGIN, "fired late: after {elapsed:?}");
}

#[test]
fn read_timeout_fires_never_early_and_consumes_nothing() {
    on_every_kind(|ends| {
        let Ends {
            mut reader,
            mut writer,
            relay: _relay,
        } = ends;
        reader.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(reader.read_timeout().unwrap(), Some(TIMEOUT));

        let started = Instant::now();
        let err = reader.read(&mut [0; 64]).unwrap_err();
        assert_timed_out_in_bounds(err, started);

        // The pipe is untouched: later bytes arrive whole.
        writer.write_all(b"after the timeout").unwrap();
        drop(writer);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "after the timeout");
    });
}

#[test]
fn data_or_end_of_file_in_time_ends_the_wait() {
    on_every_kind(|ends| {
        let Ends {
            reader,
            writer,
            relay: _relay,
        } = ends;
        reader
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let writing = thread::spawn(move || {
            (&writer).write_all(b"in time").unwrap();
        });
        let mut buf = [0; 7];
        (&reader).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"in time");
        writing.join().unwrap();
        // The writer is gone: end of file, at once, not a timeout.
        assert_eq!((&reader).read(&mut buf).unwrap(), 0);
    });
}

#[test]
fn write_timeout_fires_on_a_full_pipe_and_what_was_written_arrives() {
    on_every_kind(|ends| {
        let Ends {
            mut reader,
            writer,
            relay: _relay,
        } = ends;
        writer.set_write_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(writer.write_timeout().unwrap(), Some(TIMEOUT));

        let data = util::pattern(8 << 20);
        let mut written = 0;
        let (err, started) = loop {
            let started = Instant::now();
            match (&writer).write(&data[written..]) {
                Ok(n) => written += n,
                Err(err) => break (err, started),
            }
        };
        assert_timed_out_in_bounds(err, started);
        assert!(written > 0 && written < data.len());
        drop(writer);
        let mut received = Vec::new();
        reader.read_to_end(&mut received).unwrap();
        assert!(received == data[..written], "bytes were lost or changed");
    });
}

#[test]
fn zero_is_rejected_none_clears_and_clones_copy_the_timeout() {
    on_every_kind(|ends| {
        let Ends {
            reader,
            writer,
            relay,
        } = ends;
        let err = reader.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = writer.set_write_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(reader.read_timeout().unwrap(), None);

        reader.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(
            reader.try_clone().unwrap().read_timeout().unwrap(),
            Some(TIMEOUT)
        );
        reader.set_read_timeout(None).unwrap();
        assert_eq!(reader.read_timeout().unwrap(), None);

        // A timeout too long to represent is kept as the longest one.
        reader.set_read_timeout(Some(Duration::MAX)).unwrap();
        assert!(reader.read_timeout().unwrap().unwrap() > Duration::from_secs(500 * 365 * 86_400));
        drop(relay);
    });
}

/// Data that arrives around the deadline, again and again: each read either
/// returns data or times out having consumed nothing, so every byte arrives
/// once and in order. A completion that races the cancellation is returned,
/// not thrown away.
#[test]
fn completions_racing_the_deadline_lose_nothing() {
    on_every_kind(|ends| {
        let Ends {
            reader,
            writer,
            relay,
        } = ends;
        let tick = Duration::from_millis(2);
        reader.set_read_timeout(Some(tick)).unwrap();
        let data = util::pattern(400 * 7);
        let sent = data.clone();
        let writing = thread::spawn(move || {
            for (i, chunk) in sent.chunks(7).enumerate() {
                (&writer).write_all(chunk).unwrap();
                // A varying pause, spent spinning, so that the writes land
                // before, at and after the reader's deadlines.
                let pause = tick * (i % 4) as u32 / 2;
                let started = Instant::now();
                while started.elapsed() < pause {
                    std::hint::spin_loop();
                }
            }
        });
        let (mut received, mut timeouts) = (Vec::new(), 0);
        let mut buf = [0; 64];
        loop {
            match (&reader).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == ErrorKind::TimedOut => timeouts += 1,
                Err(err) => panic!("{err}"),
            }
        }
        writing.join().unwrap();
        util::assert_same(&received, &data);
        assert!(timeouts > 0, "no read timed out; the test proved nothing");
        drop(relay);
    });
}

/// A barrage of signals at the waiting thread: each interrupts `poll`, and
/// the wait must resume with the time left, neither ending early nor
/// starting over.
#[cfg(unix)]
#[test]
fn signals_neither_shorten_nor_lengthen_a_timed_wait() {
    watchdog(|| {
        let (reader, _writer) = pipekit::pipe().unwrap();
        reader.set_read_timeout(Some(TIMEOUT)).unwrap();
        let ((result, elapsed), delivered) = util::under_signal_barrage(move || {
            let started = Instant::now();
            let result = (&reader).read(&mut [0; 8]);
            (result, started.elapsed())
        });
        assert!(delivered > 0, "no signal arrived; the test proved nothing");
        let err = result.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::TimedOut,
            "{err} after {delivered} signals"
        );
        assert!(
            elapsed >= TIMEOUT,
            "fired early: {elapsed:?}, {delivered} signals"
        );
        assert!(elapsed < TIMEOUT + MARGIN, "fired late: {elapsed:?}");
    });
}
