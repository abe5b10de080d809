//! Read and write timeouts.
//!
//! The bounds on elapsed time are deliberately wide: a timeout must never
//! fire early, and must fire within a margin that only a badly broken
//! implementation (or a frozen machine) would exceed. These are not
//! performance measurements.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use pipekit::{PipeOptions, PipeReader, PipeWriter};
use util::watchdog;

const TIMEOUT: Duration = Duration::from_millis(200);
const MARGIN: Duration = Duration::from_secs(10);

/// A pipe whose reader supports timeouts on every platform: on Windows that
/// takes an overlapped reader.
fn pipe_with_timed_reader() -> (PipeReader, PipeWriter) {
    #[cfg(windows)]
    return PipeOptions::new().overlapped_reader(true).create().unwrap();
    #[cfg(not(windows))]
    PipeOptions::new().create().unwrap()
}

/// Likewise for the writer.
fn pipe_with_timed_writer() -> (PipeReader, PipeWriter) {
    #[cfg(windows)]
    return PipeOptions::new().overlapped_writer(true).create().unwrap();
    #[cfg(not(windows))]
    PipeOptions::new().create().unwrap()
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
    watchdog(|| {
        let (mut reader, mut writer) = pipe_with_timed_reader();
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
    watchdog(|| {
        let (reader, writer) = pipe_with_timed_reader();
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
    watchdog(|| {
        let (mut reader, writer) = pipe_with_timed_writer();
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
    let (reader, writer) = pipe_with_timed_reader();
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
}

#[cfg(windows)]
#[test]
fn synchronous_windows_ends_refuse_timeouts() {
    let (reader, writer) = pipekit::pipe().unwrap();
    let err = reader.set_read_timeout(Some(TIMEOUT)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("overlapped_reader"), "{err}");
    let err = writer.set_write_timeout(Some(TIMEOUT)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    // Nothing was set.
    assert_eq!(reader.read_timeout().unwrap(), None);
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
