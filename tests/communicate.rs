//! The communicate engine and its `Child` integration, against real child
//! processes (this test binary, re-run as the child; see `util`).

#[macro_use]
mod util;

use std::io::{self, ErrorKind, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use pipekit::communicate::{
    communicate, communicate_timeout, spawn_joined, Communicator, Source, TimedOutOutput,
};
use util::{child, pattern, Test};

const TESTS: &[Test] = tests![
    full_buffers_in_both_directions_do_not_deadlock,
    a_child_that_never_reads_its_input_and_exits,
    a_child_that_closes_its_input_at_once,
    a_grandchild_holding_the_output_open_cannot_defeat_the_deadline,
    communicate_timeout_returns_what_was_read,
    resuming_after_timeouts_loses_and_repeats_nothing,
    empty_input_and_empty_outputs,
    joined_output_keeps_the_order_of_writes,
    input_without_a_piped_stdin_is_rejected,
    timeouts_too_long_for_the_clock_mean_no_bound,
    a_panicking_source_leaves_the_pipe_in_its_mode,
];

/// 10 MB each way: more than any pipe holds, so feeding all input before
/// reading, or reading one output before the other, would deadlock.
const BIG: usize = 10_000_000;

fn main() {
    match util::child_role() {
        Some(role) => child_main(&role),
        None => util::run_tests(TESTS),
    }
}

fn child_main(role: &str) {
    match role {
        // Writes BIG bytes to stderr before reading any input, then reports
        // the input's length and a checksum on stdout.
        "stderr-then-stdin" => {
            io::stderr().write_all(&pattern(BIG)).unwrap();
            let mut input = Vec::new();
            io::stdin().read_to_end(&mut input).unwrap();
            println!("{} {}", input.len(), checksum(&input));
        }
        "exit-at-once" => {}
        // Closes stdin without reading it, then writes BIG bytes.
        "close-stdin-then-write" => {
            close_stdin();
            io::stdout().write_all(&pattern(BIG)).unwrap();
        }
        // Starts a grandchild that inherits stdout (and stdin), writes a
        // line, and exits while the grandchild holds stdout open.
        "spawn-grandchild" => {
            let grandchild = child("wait-stdin").stderr(Stdio::null()).spawn().unwrap();
            std::mem::forget(grandchild);
            print!("before");
            io::stdout().flush().unwrap();
        }
        "wait-stdin" => {
            io::copy(&mut io::stdin(), &mut io::sink()).unwrap();
        }
        "echo" => {
            io::copy(&mut io::stdin(), &mut io::stdout()).unwrap();
        }
        "alternate" => {
            let (mut out, mut err) = (io::stdout(), io::stderr());
            for i in 0..100 {
                writeln!(out, "out {i}").unwrap();
                out.flush().unwrap();
                writeln!(err, "err {i}").unwrap();
                err.flush().unwrap();
            }
        }
        other => panic!("unknown child role {other:?}"),
    }
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(unix)]
fn close_stdin() {
    // SAFETY: closes fd 0, which this process never uses again.
    #[allow(unsafe_code)]
    unsafe {
        libc::close(0);
    }
}

#[cfg(windows)]
fn close_stdin() {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Console::{GetStdHandle, STD_INPUT_HANDLE};
    // SAFETY: closes this process's standard input handle, which it never
    // uses again.
    #[allow(unsafe_code)]
    unsafe {
        CloseHandle(GetStdHandle(STD_INPUT_HANDLE));
    }
}

fn spawn_piped(role: &str) -> Child {
    child(role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

// -- the tests ---------------------------------------------------------------

fn full_buffers_in_both_directions_do_not_deadlock() {
    let mut running = spawn_piped("stderr-then-stdin");
    let input = pattern(BIG);
    let output = communicate(&mut running, &input).unwrap();
    assert!(output.status.success(), "{}", output.status);
    assert!(
        output.stderr == pattern(BIG),
        "stderr lost or changed bytes"
    );
    let report = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        report.trim(),
        format!("{} {}", input.len(), checksum(&input))
    );
}

fn a_child_that_never_reads_its_input_and_exits() {
    let mut running = spawn_piped("exit-at-once");
    let input = pattern(BIG);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut communicator = Communicator::new();
    communicator
        .input(running.stdin.take().unwrap(), &input)
        .output(running.stdout.take().unwrap(), &mut out)
        .output(running.stderr.take().unwrap(), &mut err);
    communicator.run().unwrap();
    // The input stopped early, without failing the exchange.
    assert!(communicator.input_closed_early(0));
    assert!(communicator.bytes_written(0) < BIG as u64);
    drop(communicator);
    assert!(out.is_empty() && err.is_empty());
    assert!(running.wait().unwrap().success());
}

fn a_child_that_closes_its_input_at_once() {
    let mut running = spawn_piped("close-stdin-then-write");
    let output = communicate(&mut running, pattern(BIG)).unwrap();
    assert!(output.status.success(), "{}", output.status);
    assert!(
        output.stdout == pattern(BIG),
        "stdout lost or changed bytes"
    );
}

fn a_grandchild_holding_the_output_open_cannot_defeat_the_deadline() {
    let mut running = spawn_piped("spawn-grandchild");
    // We keep the stdin writer: the grandchild waits on it, and holds the
    // stdout pipe open until we close it.
    let stdin = running.stdin.take().unwrap();
    let mut out = Vec::new();
    let timeout = Duration::from_millis(500);
    let mut communicator = Communicator::new();
    communicator
        .output(running.stdout.take().unwrap(), &mut out)
        .timeout(timeout);
    let started = Instant::now();
    let err = communicator.run().unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(elapsed >= timeout, "fired early: {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(10),
        "fired late: {elapsed:?}"
    );

    // Release the grandchild; the exchange then ends with everything.
    drop(stdin);
    communicator.timeout(Duration::from_secs(30)).run().unwrap();
    drop(communicator);
    assert_eq!(out, b"before");
    assert!(running.wait().unwrap().success());
}

fn communicate_timeout_returns_what_was_read() {
    let mut running = spawn_piped("spawn-grandchild");
    let stdin = running.stdin.take().unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = communicate_timeout(&mut running, b"", timeout).unwrap_err();
    assert!(started.elapsed() >= timeout);
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let partial = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<TimedOutOutput>())
        .unwrap();
    assert_eq!(partial.stdout, b"before");
    assert!(err.to_string().contains("6 bytes of stdout"), "{err}");
    drop(stdin);
    running.wait().unwrap();
}

fn resuming_after_timeouts_loses_and_repeats_nothing() {
    // Both directions at once, cut into many short runs.
    let mut running = spawn_piped("echo");
    let input = pattern(4 << 20);
    let mut out = Vec::new();
    let mut communicator = Communicator::new();
    communicator
        .input(running.stdin.take().unwrap(), &input)
        .output(running.stdout.take().unwrap(), &mut out);
    let mut timeouts = 0;
    loop {
        match communicator.timeout(Duration::from_millis(2)).run() {
            Ok(()) => break,
            Err(err) if err.kind() == ErrorKind::TimedOut => timeouts += 1,
            Err(err) => panic!("{err}"),
        }
    }
    assert_eq!(communicator.bytes_written(0), input.len() as u64);
    drop(communicator);
    assert!(timeouts > 0, "no run timed out; the test proved nothing");
    assert_eq!(out.len(), input.len());
    assert!(
        out == input,
        "bytes were lost or repeated across resumptions"
    );
    assert!(running.wait().unwrap().success());
}

fn empty_input_and_empty_outputs() {
    let mut running = spawn_piped("exit-at-once");
    let output = communicate(&mut running, b"").unwrap();
    assert!(output.status.success());
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
}

fn joined_output_keeps_the_order_of_writes() {
    let (mut running, joined) = spawn_joined(&mut child("alternate")).unwrap();
    let mut log = Vec::new();
    Communicator::new()
        .output(joined, &mut log)
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    assert!(running.wait().unwrap().success());
    let expected: String = (0..100).map(|i| format!("out {i}\nerr {i}\n")).collect();
    assert_eq!(String::from_utf8(log).unwrap(), expected);
}

fn input_without_a_piped_stdin_is_rejected() {
    let mut running = child("exit-at-once").stdin(Stdio::null()).spawn().unwrap();
    let err = communicate(&mut running, b"data").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("stdin is not piped"), "{err}");
    running.wait().unwrap();
}

/// `Duration::MAX` cannot be added to an `Instant`; it must mean "no bound",
/// not a panic, alone or beside a deadline (which then decides).
fn timeouts_too_long_for_the_clock_mean_no_bound() {
    let mut running = spawn_piped("echo");
    let output = communicate_timeout(&mut running, b"endless", Duration::MAX).unwrap();
    assert!(output.status.success(), "{}", output.status);
    assert_eq!(output.stdout, b"endless");

    let mut running = spawn_piped("echo");
    let mut out = Vec::new();
    let mut communicator = Communicator::new();
    communicator
        .input(running.stdin.take().unwrap(), b"bounded")
        .output(running.stdout.take().unwrap(), &mut out)
        .timeout(Duration::MAX)
        .deadline(Instant::now() + Duration::from_secs(30));
    communicator.run().unwrap();
    drop(communicator);
    assert_eq!(out, b"bounded");
    assert!(running.wait().unwrap().success());

    // With a deadline already passed, the deadline decides.
    let (reader, _writer) = pipekit::pipe().unwrap();
    let mut sink = Vec::new();
    let err = Communicator::new()
        .output(reader, &mut sink)
        .timeout(Duration::MAX)
        .deadline(Instant::now())
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
}

/// The engine may switch an input to nonblocking mode for the exchange; a
/// source that panics must not leave it so, since the mode is shared with
/// every clone of the end (here `probe`).
fn a_panicking_source_leaves_the_pipe_in_its_mode() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            panic!("the source failed");
        }
    }
    let (reader, writer) = pipekit::pipe().unwrap();
    let probe = writer.try_clone().unwrap();
    assert!(!probe.nonblocking().unwrap());
    let mut source = Failing;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Communicator::new()
            .input(writer, Source::reader(&mut source))
            .timeout(Duration::from_secs(30))
            .run()
    }));
    assert!(outcome.is_err(), "the source's panic should propagate");
    assert!(
        !probe.nonblocking().unwrap(),
        "the input was left nonblocking"
    );
    drop(reader);
}
