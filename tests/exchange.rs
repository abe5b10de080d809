//! `Exchange`, `RunningExchange`, `wait_timeout`, the timeout payload and the
//! conveniences over them, against real child processes (this test binary,
//! re-run as the child; see `util`).

#[macro_use]
mod util;

use std::io::{self, ErrorKind, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use pipekit::communicate::{
    communicate, communicate_timeout, wait_timeout, DeadlinePassed, Exchange, RunningExchange,
    Sink, Source, TimedOutOutput,
};
use util::{child, pattern, TempFile, Test};

const TESTS: &[Test] = tests![
    input_as_str_string_and_vec,
    outputs_are_captured_whatever_the_command_said,
    merged_output_keeps_the_order_over_alternating_lines,
    limit_keeps_an_exact_prefix_and_the_child_exits_normally,
    // A grandchild's pid is checked once it is reaped: on Linux this
    // process reaps it (a subreaper); other Unix systems would need their own
    // way to adopt orphans.
    #[cfg(any(target_os = "linux", windows))]
    kill_tree_reaches_a_grandchild_holding_stdout,
    #[cfg(any(target_os = "linux", windows))]
    without_kill_tree_the_payload_says_the_child_had_exited,
    resuming_after_run_for_cuts_gives_every_byte_once,
    communicate_timeout_leaves_no_child_acting_on_a_cut_input,
    run_kills_and_reaps_a_child_at_the_deadline,
    kill_on_timeout_false_leaves_the_child_running,
    wait_timeout_is_bounded_and_exact,
    lines_of_a_child_stream_to_a_callback_under_a_deadline,
    streamed_outputs_go_to_their_sinks,
    misuse_is_rejected_before_spawning,
    communicate_accepts_text,
    a_failing_sink_ends_run_with_the_child_killed_and_reaped,
    a_limit_cuts_the_lines_of_a_lines_sink,
];

/// Every public type that holds borrowed parts is `Send` when they are.
#[allow(dead_code)]
fn send_assertions() {
    fn assert_send<T: Send>() {}
    assert_send::<Exchange<'static>>();
    assert_send::<RunningExchange<'static>>();
    assert_send::<TimedOutOutput>();
    assert_send::<Source<'static>>();
    assert_send::<Sink<'static>>();
}

fn main() {
    match util::child_role() {
        Some(role) => child_main(&role),
        None => {
            #[cfg(target_os = "linux")]
            os::become_subreaper();
            util::run_tests(TESTS)
        }
    }
}

/// Input of the "interleave" child, in bytes.
const INTERLEAVED_INPUT: usize = 3_000_000;
/// How many lines the "interleave" child writes.
const LINES: usize = 200;
/// Output of the "big-stdout" child.
const BIG: usize = 5_000_000;

fn child_main(role: &str) {
    match role {
        "echo" => {
            io::copy(&mut io::stdin(), &mut io::stdout()).unwrap();
        }
        "foo-bar" => {
            io::stdout().write_all(b"foo").unwrap();
            io::stderr().write_all(b"bar").unwrap();
        }
        // Reads its input in LINES slices, writing one line after each,
        // alternately to stdout and stderr, then the input's checksum.
        "interleave" => {
            let (mut out, mut err) = (io::stdout(), io::stderr());
            let mut input = Vec::new();
            let slice = INTERLEAVED_INPUT / LINES;
            for i in 0..LINES {
                let mut buf = vec![0; slice];
                io::stdin().read_exact(&mut buf).unwrap();
                input.extend_from_slice(&buf);
                if i % 2 == 0 {
                    writeln!(out, "out {i}").unwrap();
                    out.flush().unwrap();
                } else {
                    writeln!(err, "err {i}").unwrap();
                    err.flush().unwrap();
                }
            }
            io::stdin().read_to_end(&mut input).unwrap();
            writeln!(out, "sum {}", checksum(&input)).unwrap();
        }
        "big-stdout" => {
            io::stdout().write_all(&pattern(BIG)).unwrap();
            io::stderr().write_all(b"done").unwrap();
        }
        // Starts a grandchild that holds stdout open forever, prints its
        // pid, and exits.
        "grandchild-holds-stdout" => start_grandchild(),
        // Starts a grandchild as above, prints its pid, and waits forever.
        "grandchild-and-park" => {
            start_grandchild();
            park();
        }
        "park" => park(),
        "pid-and-park" => {
            println!("{}", std::process::id());
            io::stdout().flush().unwrap();
            park();
        }
        // Reads its input slowly, and at end of file writes how many bytes
        // it read into the file named by PIPEKIT_TEST_COUNT_FILE.
        "slow-count" => {
            let mut buf = vec![0; 4096];
            let mut count = 0;
            loop {
                let n = io::stdin().read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                count += n;
                std::thread::sleep(Duration::from_millis(20));
            }
            let path = std::env::var("PIPEKIT_TEST_COUNT_FILE").unwrap();
            std::fs::write(path, count.to_string()).unwrap();
        }
        "wait-stdin" => {
            io::copy(&mut io::stdin(), &mut io::sink()).unwrap();
        }
        "exit-3" => std::process::exit(3),
        // Lines with both line ends, one long line, and a last line
        // without an end.
        "lines" => {
            let mut out = io::stdout();
            for i in 0..1000 {
                write!(out, "line {i}\r\n").unwrap();
            }
            out.write_all(&vec![b'x'; 300_000]).unwrap();
            out.write_all(b"\nlast").unwrap();
        }
        other => panic!("unknown child role {other:?}"),
    }
}

/// Starts a grandchild that holds this process's stdout open forever, and
/// prints its pid.
fn start_grandchild() {
    let grandchild = child("park")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    println!("{}", grandchild.id());
    io::stdout().flush().unwrap();
    // Never waited for: it outlives this process.
    std::mem::forget(grandchild);
}

fn park() -> ! {
    loop {
        std::thread::park();
    }
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The pid on the first line of `stdout`.
fn first_line_pid(stdout: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
}

// -- the tests ---------------------------------------------------------------

fn input_as_str_string_and_vec() {
    let text = String::from("from a &String");
    let bytes = b"from a &Vec".to_vec();
    let cases: Vec<(Source<'_>, &[u8])> = vec![
        ("from a &str".into(), b"from a &str"),
        (String::from("from a String").into(), b"from a String"),
        ((&text).into(), b"from a &String"),
        (b"from a Vec".to_vec().into(), b"from a Vec"),
        ((&bytes).into(), b"from a &Vec"),
        ((&b"from a &[u8]"[..]).into(), b"from a &[u8]"),
        (Source::reader(&b"from a reader"[..]), b"from a reader"),
    ];
    let file = TempFile::new("exchange-source");
    let mut opened = file.with(b"from a &mut File");
    let output = Exchange::new(&mut child("echo"))
        .input(&mut opened)
        .run()
        .unwrap();
    assert_eq!(output.stdout, b"from a &mut File");
    let output = Exchange::new(&mut child("echo"))
        .input(file.with(b"from a File"))
        .run()
        .unwrap();
    assert_eq!(output.stdout, b"from a File");
    for (source, want) in cases {
        let output = Exchange::new(&mut child("echo"))
            .input(source)
            .timeout(Duration::from_secs(30))
            .run()
            .unwrap();
        assert!(output.status.success(), "{}", output.status);
        assert_eq!(output.stdout, want);
    }
    // A large owned input, moved into the exchange.
    let big = pattern(3 << 20);
    let output = Exchange::new(&mut child("echo"))
        .input(big.clone())
        .run()
        .unwrap();
    util::assert_same(&output.stdout, &big);
}

fn outputs_are_captured_whatever_the_command_said() {
    // Nothing set on the command: both outputs are still captured.
    let output = Exchange::new(&mut child("foo-bar")).run().unwrap();
    assert_eq!(
        (&output.stdout[..], &output.stderr[..]),
        (&b"foo"[..], &b"bar"[..])
    );
    // Even over a setting that would have lost them.
    let mut command = child("foo-bar");
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let output = Exchange::new(&mut command).run().unwrap();
    assert_eq!(
        (&output.stdout[..], &output.stderr[..]),
        (&b"foo"[..], &b"bar"[..])
    );
    // Without input, stdin is the command's own: null here, so the child
    // sees end of file at once.
    let mut command = child("echo");
    command.stdin(Stdio::null());
    let output = Exchange::new(&mut command)
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    assert!(output.status.success() && output.stdout.is_empty());
}

fn merged_output_keeps_the_order_over_alternating_lines() {
    let input = pattern(INTERLEAVED_INPUT);
    let output = Exchange::new(&mut child("interleave"))
        .input(&input)
        .merge_stderr(true)
        .timeout(Duration::from_secs(60))
        .run()
        .unwrap();
    assert!(output.status.success(), "{}", output.status);
    assert!(output.stderr.is_empty());
    let mut expected: String = (0..LINES)
        .map(|i| {
            if i % 2 == 0 {
                format!("out {i}\n")
            } else {
                format!("err {i}\n")
            }
        })
        .collect();
    expected += &format!("sum {}\n", checksum(&input));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

fn limit_keeps_an_exact_prefix_and_the_child_exits_normally() {
    let mut exchange_command = child("big-stdout");
    let mut exchange = Exchange::new(&mut exchange_command);
    let output = exchange
        .limit(1000)
        .timeout(Duration::from_secs(60))
        .run()
        .unwrap();
    assert!(output.status.success(), "{}", output.status);
    assert_eq!(output.stdout, &pattern(BIG)[..1000]);
    assert_eq!(output.stderr, b"done");
    assert!(exchange.stdout_truncated());
    assert!(!exchange.stderr_truncated());

    // The same through a running exchange; a limit above the size cuts
    // nothing.
    let mut command = child("big-stdout");
    let mut running = Exchange::new(&mut command)
        .limit(BIG as u64)
        .spawn()
        .unwrap();
    let output = running.run_for(Duration::from_secs(60)).unwrap();
    util::assert_same(&output.stdout, &pattern(BIG));
    assert!(!running.stdout_truncated());
}

#[cfg(any(target_os = "linux", windows))]
fn kill_tree_reaches_a_grandchild_holding_stdout() {
    for role in ["grandchild-holds-stdout", "grandchild-and-park"] {
        let timeout = Duration::from_millis(500);
        let started = Instant::now();
        let err = Exchange::new(&mut child(role))
            .kill_tree(true)
            .timeout(timeout)
            .run()
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(elapsed >= timeout, "{role}: returned early: {elapsed:?}");
        assert!(
            elapsed < timeout + Duration::from_secs(10),
            "{role}: returned late: {elapsed:?}"
        );
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        let payload = TimedOutOutput::from_error(&err).expect("a TimedOutOutput");
        assert!(payload.status.is_some(), "{role}: the child was not reaped");
        let grandchild = first_line_pid(&payload.stdout);
        assert!(
            os::is_gone(grandchild),
            "{role}: grandchild {grandchild} survived the kill"
        );
    }
}

#[cfg(any(target_os = "linux", windows))]
fn without_kill_tree_the_payload_says_the_child_had_exited() {
    let timeout = Duration::from_millis(300);
    let err = Exchange::new(&mut child("grandchild-holds-stdout"))
        .timeout(timeout)
        .run()
        .unwrap_err();
    let payload = TimedOutOutput::from_error(&err).expect("a TimedOutOutput");
    let grandchild = first_line_pid(&payload.stdout);
    let status = payload.status.expect("the child had exited");
    assert!(status.success(), "{status}");
    assert!(!payload.killed());
    let message = err.to_string();
    assert!(
        message.contains("exited with") && message.contains("still holds"),
        "{message}"
    );
    // The grandchild was not killed: it is still there, and goes now.
    assert!(!os::is_gone_now(grandchild));
    os::kill(grandchild);
    assert!(os::is_gone(grandchild));
}

fn resuming_after_run_for_cuts_gives_every_byte_once() {
    let input = pattern(4 << 20);
    let mut command = child("echo");
    let mut exchange = Exchange::new(&mut command);
    exchange.input(&input);
    let mut running = exchange.spawn().unwrap();
    let mut snapshots = Vec::new();
    let output = loop {
        match running.run_for(Duration::from_millis(2)) {
            Ok(output) => break output,
            Err(err) => {
                assert!(DeadlinePassed::from_error(&err).is_some(), "{err}");
                snapshots.push(running.stdout().to_vec());
            }
        }
    };
    assert!(
        snapshots.len() > 1,
        "fewer than two cuts; nothing was resumed"
    );
    assert!(output.status.success(), "{}", output.status);
    assert_eq!(running.input_written(), input.len() as u64);
    util::assert_same(&output.stdout, &input);
    for (i, snapshot) in snapshots.iter().enumerate() {
        assert!(
            output.stdout.starts_with(snapshot),
            "stdout() after cut {i} is not a prefix of the output"
        );
    }
    assert!(running.stdout().is_empty(), "the output was moved out");
}

fn communicate_timeout_leaves_no_child_acting_on_a_cut_input() {
    let count = TempFile::new("slow-count");
    let mut running = child("slow-count")
        .env("PIPEKIT_TEST_COUNT_FILE", &count.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = pattern(10_000_000);
    let err = communicate_timeout(&mut running, &input, Duration::from_millis(300)).unwrap_err();
    let payload = TimedOutOutput::from_error(&err).expect("a TimedOutOutput");
    assert!(payload.killed(), "{err}");
    assert!(payload.input_written < input.len() as u64);
    let status = payload.status.expect("the killed child's status");
    assert!(!status.success(), "{status}");
    // Reaped: waiting again returns the same status at once.
    assert_eq!(running.try_wait().unwrap(), Some(status));
    assert!(
        !count.0.exists(),
        "the child counted a cut input: {:?}",
        std::fs::read_to_string(&count.0)
    );
}

fn run_kills_and_reaps_a_child_at_the_deadline() {
    let input = pattern(1 << 20);
    let mut command = child("wait-stdin");
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    // The child reads everything, but never gets end of file while a
    // source keeps it waiting: a reader that never ends.
    let err = Exchange::new(&mut command)
        .input(Source::reader(io::repeat(7)))
        .timeout(timeout)
        .run()
        .unwrap_err();
    assert!(started.elapsed() >= timeout);
    let payload = TimedOutOutput::from_error(&err).expect("a TimedOutOutput");
    assert!(payload.killed());
    assert!(!payload.status.unwrap().success());
    assert!(payload.input_written > 0);
    assert!(err.to_string().contains("killed"), "{err}");
    drop(input);
}

fn kill_on_timeout_false_leaves_the_child_running() {
    let mut command = child("pid-and-park");
    command.stdin(Stdio::null());
    let err = Exchange::new(&mut command)
        .kill_on_timeout(false)
        .timeout(Duration::from_millis(200))
        .run()
        .unwrap_err();
    let payload = TimedOutOutput::from_error(&err).expect("a TimedOutOutput");
    assert_eq!(payload.status, None);
    assert!(!payload.killed());
    assert!(err.to_string().contains("still running"), "{err}");
    let pid = first_line_pid(&payload.stdout);
    assert!(!os::is_gone_now(pid), "the child was killed");
    os::kill(pid);
    assert!(os::is_gone(pid));

    // The same child through a running exchange: killed on demand, then
    // its status collected.
    let mut command = child("park");
    command.stdin(Stdio::null());
    let mut running = Exchange::new(&mut command).spawn().unwrap();
    let err = running.run_for(Duration::from_millis(100)).unwrap_err();
    assert!(DeadlinePassed::from_error(&err).is_some(), "{err}");
    running.kill().unwrap();
    let output = running.run_for(Duration::from_secs(30)).unwrap();
    assert!(!output.status.success());
    assert_eq!(running.child_mut().try_wait().unwrap(), Some(output.status));
    // A child that has exited: killing it again is no error.
    running.kill().unwrap();
    assert_eq!(running.id(), running.child().id());
}

fn a_failing_sink_ends_run_with_the_child_killed_and_reaped() {
    use std::sync::{Arc, Mutex};

    /// Keeps what it is given, then fails.
    struct Failing(Arc<Mutex<Vec<u8>>>);
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Err(io::Error::new(ErrorKind::Other, "the sink failed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut command = child("pid-and-park");
    command.stdin(Stdio::null());
    let err = Exchange::new(&mut command)
        .stdout_to(Sink::writer(Failing(seen.clone())))
        .timeout(Duration::from_secs(60))
        .run()
        .unwrap_err();
    assert_eq!(err.to_string(), "the sink failed");
    let pid = first_line_pid(&seen.lock().unwrap());
    assert!(os::is_gone_now(pid), "child {pid} was left running");
}

fn a_limit_cuts_the_lines_of_a_lines_sink() {
    let (reader, mut writer) = pipekit::pipe().unwrap();
    writer.write_all(b"abc\r\ndefgh\nij").unwrap();
    drop(writer);
    let mut lines = Vec::new();
    pipekit::communicate::Communicator::new()
        .output(
            reader,
            Sink::lines(|line| lines.push(line.to_vec())).limit(8),
        )
        .run()
        .unwrap();
    assert_eq!(lines, [&b"abc"[..], b"def"]);
}

fn wait_timeout_is_bounded_and_exact() {
    let mut running = child("wait-stdin").stdin(Stdio::piped()).spawn().unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    assert_eq!(wait_timeout(&mut running, timeout).unwrap(), None);
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "returned early: {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(10),
        "late: {elapsed:?}"
    );
    assert_eq!(wait_timeout(&mut running, Duration::ZERO).unwrap(), None);
    drop(running.stdin.take());
    let status = wait_timeout(&mut running, Duration::from_secs(30))
        .unwrap()
        .expect("exited");
    assert!(status.success());

    let mut exits = child("exit-3").spawn().unwrap();
    let status = wait_timeout(&mut exits, Duration::MAX).unwrap().unwrap();
    assert_eq!(status.code(), Some(3));
    // Reaped once: the same status again.
    assert_eq!(
        wait_timeout(&mut exits, Duration::ZERO).unwrap(),
        Some(status)
    );
    let _: Option<ExitStatus> = exits.try_wait().unwrap();
}

fn lines_of_a_child_stream_to_a_callback_under_a_deadline() {
    let mut lines = Vec::new();
    let output = Exchange::new(&mut child("lines"))
        .stdout_to(Sink::lines(|line| lines.push(line.to_vec())))
        .timeout(Duration::from_secs(60))
        .run()
        .unwrap();
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
    let mut expected: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("line {i}").into_bytes())
        .collect();
    expected.push(vec![b'x'; 300_000]);
    expected.push(b"last".to_vec());
    assert_eq!(lines.len(), expected.len());
    assert!(lines == expected, "lines differ");
}

fn streamed_outputs_go_to_their_sinks() {
    let file = TempFile::new("exchange-sink");
    let mut out = file.create();
    let mut err = Vec::new();
    let output = Exchange::new(&mut child("foo-bar"))
        .stdout_to(&mut out)
        .stderr_to(&mut err)
        .run()
        .unwrap();
    drop(out);
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
    assert_eq!(file.read(), b"foo");
    assert_eq!(err, b"bar");
}

fn misuse_is_rejected_before_spawning() {
    let mut sink = Vec::new();
    let err = Exchange::new(&mut child("foo-bar"))
        .merge_stderr(true)
        .stderr_to(&mut sink)
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("merge stderr"), "{err}");

    let mut command = child("foo-bar");
    let mut exchange = Exchange::new(&mut command);
    exchange.run().unwrap();
    let err = exchange.run().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("already spawned"), "{err}");

    // The spawn's own error, as std reports it here: NotFound, or
    // PermissionDenied when a directory on PATH cannot be searched (an
    // unprivileged user with root's PATH).
    let spawned = Command::new("pipekit-no-such-program").spawn().unwrap_err();
    assert!(
        matches!(
            spawned.kind(),
            ErrorKind::NotFound | ErrorKind::PermissionDenied
        ),
        "{spawned}"
    );
    let err = Exchange::new(&mut Command::new("pipekit-no-such-program"))
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), spawned.kind(), "{err}");
    assert_eq!(err.raw_os_error(), spawned.raw_os_error(), "{err}");
}

fn communicate_accepts_text() {
    let mut running = child("echo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let output = communicate(&mut running, "text").unwrap();
    assert_eq!(output.stdout, b"text");
    let text = String::from("string");
    let mut running = child("echo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let output = communicate(&mut running, &text).unwrap();
    assert_eq!(output.stdout, b"string");
}

#[cfg(unix)]
mod os {
    /// Makes this process the reaper of its orphaned descendants, so that a
    /// grandchild killed after its parent exited can be reaped (and its pid
    /// checked) here.
    #[cfg(target_os = "linux")]
    pub fn become_subreaper() {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
        #[allow(unsafe_code)]
        let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(ret, 0, "{}", std::io::Error::last_os_error());
    }

    /// Whether process `pid` is gone: waits for it (it is this process's
    /// descendant, reparented here), then checks the pid.
    pub fn is_gone(pid: u32) -> bool {
        let pid = pid as libc::pid_t;
        let mut status = 0;
        // SAFETY: waitpid writes the status into a valid integer.
        #[allow(unsafe_code)]
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(ret, pid, "waitpid: {}", std::io::Error::last_os_error());
        // SAFETY: signal 0 only checks that the process exists.
        #[allow(unsafe_code)]
        let ret = unsafe { libc::kill(pid, 0) };
        ret == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }

    /// Whether process `pid` is gone now, without waiting.
    pub fn is_gone_now(pid: u32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        #[allow(unsafe_code)]
        let ret = unsafe { libc::kill(pid as libc::pid_t, 0) };
        ret == -1
    }

    pub fn kill(pid: u32) {
        // SAFETY: kill takes a pid and a signal number.
        #[allow(unsafe_code)]
        let ret = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        assert_eq!(ret, 0);
    }
}

#[cfg(windows)]
mod os {
    pub use crate::util::pids::{gone_now as is_gone_now, kill, wait_gone as is_gone};
}
