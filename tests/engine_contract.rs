//! The communicate engine's contract where a hostile caller would test it:
//! pipes shared with clones and other threads, `SIGPIPE` at its default
//! disposition, an unprivileged user, sinks whose own I/O times out, and
//! systems where pipes cannot be reopened.
//!
//! A `harness = false` binary: some tests run this binary again as a child
//! (see `util`), one of them as an unprivileged user.

#[macro_use]
mod util;

use std::io::{self, ErrorKind, Read, Write};
#[cfg(unix)]
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use pipekit::communicate::{Communicator, DeadlinePassed, Sink, Source};
use pipekit::pipe;
#[cfg(target_os = "linux")]
use pipekit::{PipeReader, PipeWriter};
#[cfg(unix)]
use util::child;
use util::{assert_same, pattern, Test};

const TESTS: &[Test] = tests![
    a_sink_timing_out_is_not_the_deadline,
    a_failed_exchange_stays_failed,
    an_exchange_is_send,
    a_limited_vec_grows_only_by_what_the_limit_allows,
    #[cfg(unix)]
    no_flag_of_a_shared_description_changes,
    clones_of_one_reader_as_two_outputs_keep_the_deadline,
    clones_of_one_writer_as_two_inputs_keep_the_deadline,
    a_reader_that_another_thread_also_reads_keeps_the_deadline,
    #[cfg(unix)]
    files_and_devices_given_as_ends_are_used_as_they_are,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    a_packet_mode_input_stays_in_packets,
    #[cfg(target_os = "linux")]
    a_thread_with_its_own_fd_table_feeds_its_own_pipe,
    #[cfg(unix)]
    sigpipe_at_its_default_disposition_kills_nobody,
    #[cfg(target_os = "linux")]
    growing_child_pipes_leaves_an_unprivileged_user_full_size_pipes,
    #[cfg(target_os = "linux")]
    where_pipes_cannot_be_reopened_shared_pipes_keep_the_deadline,
    #[cfg(target_os = "linux")]
    where_pipes_cannot_be_reopened_every_byte_arrives,
];

/// How late past its deadline an exchange may return: generous, for a
/// loaded 2-core machine and wine, yet far below the watchdog's bound and
/// the seconds an exchange blocked in `read` or `write` would take.
const MARGIN: Duration = Duration::from_secs(10);

fn main() {
    match util::child_role() {
        Some(role) => child_main(&role),
        None => util::run_tests(TESTS),
    }
}

fn child_main(role: &str) {
    match role {
        // Reads 10 bytes of its input and exits.
        "read-10" => {
            let mut ten = [0u8; 10];
            io::stdin().read_exact(&mut ten).unwrap();
        }
        #[cfg(unix)]
        "sigpipe-default" => unix::sigpipe_default_child(),
        #[cfg(target_os = "linux")]
        "unprivileged-growth" => linux::unprivileged_growth_child(),
        // Writes 2 MiB to stdout, then one byte to stderr (the "ready"
        // signal), then waits for end of file on stdin (the gate).
        #[cfg(target_os = "linux")]
        "fill-then-wait" => {
            io::stdout().write_all(&pattern(2 << 20)).unwrap();
            io::stdout().flush().unwrap();
            io::stderr().write_all(b"r").unwrap();
            io::copy(&mut io::stdin(), &mut io::sink()).unwrap();
        }
        other => panic!("unknown child role {other:?}"),
    }
}

/// A `Sink::writer` whose own write times out (a pipe with a write timeout
/// that nobody reads) fails the exchange with that error, which is not the
/// deadline; a second `run` fails too, and the sink holds an exact prefix of
/// the output: nothing lost silently, nothing twice.
fn a_sink_timing_out_is_not_the_deadline() {
    let data = pattern(100_000);
    let (reader, mut writer) = pipe().unwrap();
    let (sink_reader, sink_writer) = pipe().unwrap();
    sink_writer
        .set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let producer = {
        let data = data.clone();
        thread::spawn(move || {
            // The exchange closes the reader when it fails: a broken pipe
            // here is expected.
            let _ = writer.write_all(&data);
        })
    };
    let mut communicator = Communicator::new();
    communicator
        .output(reader, Sink::writer(&sink_writer))
        .timeout(Duration::from_secs(30));
    let err = communicator.run().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        DeadlinePassed::from_error(&err).is_none(),
        "a sink's timeout taken for the deadline: {err}"
    );
    let again = communicator.run().unwrap_err();
    assert_eq!(again.kind(), ErrorKind::TimedOut, "{again}");
    assert!(DeadlinePassed::from_error(&again).is_none());
    drop(communicator);
    producer.join().unwrap();
    drop(sink_writer);
    let mut got = Vec::new();
    (&sink_reader).read_to_end(&mut got).unwrap();
    assert!(!got.is_empty() && got.len() < data.len(), "{}", got.len());
    assert_same(&got, &data[..got.len()]);
}

/// Any error but the deadline's ends the exchange: a source's error, then a
/// later `run` fails again instead of reporting success.
fn a_failed_exchange_stays_failed() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(
                ErrorKind::TimedOut,
                "the source's own timeout",
            ))
        }
    }
    let (reader, writer) = pipe().unwrap();
    let mut communicator = Communicator::new();
    communicator.input(writer, Source::reader(Failing));
    let err = communicator.run().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(DeadlinePassed::from_error(&err).is_none());
    let again = communicator.run().unwrap_err();
    assert_eq!(again.kind(), ErrorKind::TimedOut);
    assert!(again.to_string().contains("already failed"), "{again}");
    // The pipe was closed: its reader sees end of file.
    drop(communicator);
    let mut rest = Vec::new();
    (&reader).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

/// Communicator, Source and Sink move to other threads (`spawn_blocking`, a
/// worker pool) whenever what they borrow is `Send`.
fn an_exchange_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let input = b"bytes".to_vec();
    let mut out = Vec::new();
    let mut borrowed = io::Cursor::new(Vec::new());
    let (reader, writer) = pipe().unwrap();
    let (reader2, _writer2) = pipe().unwrap();
    let source = Source::from(&input);
    assert_send(&source);
    let sink = Sink::from(&mut out);
    assert_send(&sink);
    let mut communicator = Communicator::new();
    communicator
        .input(writer, source)
        .output(reader, sink)
        .output(reader2, Sink::writer(&mut borrowed));
    assert_send(&communicator);
    drop(communicator);
    assert!(borrowed.get_ref().is_empty());
    // And it really runs on another thread.
    let (reader, writer) = pipe().unwrap();
    let mut got = Vec::new();
    thread::scope(|scope| {
        let mut communicator = Communicator::new();
        communicator.input(writer, &input).output(reader, &mut got);
        scope.spawn(move || communicator.run().unwrap());
    });
    assert_eq!(got, input);
}

/// A `Vec` sink that already holds 10 MB and may keep 100 more bytes grows
/// by at most those 100 bytes plus one read's worth, not by doubling.
fn a_limited_vec_grows_only_by_what_the_limit_allows() {
    const HELD: usize = 10_000_000;
    let mut vec = vec![7u8; HELD];
    vec.shrink_to_fit();
    let data = pattern(1 << 20);
    let (reader, writer) = pipe().unwrap();
    let feeder = util::feed(writer, &data);
    let mut communicator = Communicator::new();
    communicator.output(reader, Sink::from(&mut vec).limit(100));
    communicator.run().unwrap();
    assert!(communicator.truncated(0));
    drop(communicator);
    feeder.join().unwrap();
    assert_eq!(vec.len(), HELD + 100);
    assert_same(&vec[HELD..], &data[..100]);
    let grown = vec.capacity() - HELD;
    assert!(grown <= 100 + 64 * 1024, "the Vec grew by {grown} bytes");
}

/// While an exchange waits on a slow reader, a clone of its input's writer
/// (sharing the open file description) never sees `O_NONBLOCK`, and neither
/// does a clone of its output's reader; nor after the exchange.
#[cfg(unix)]
fn no_flag_of_a_shared_description_changes() {
    let data = pattern(1 << 20);
    let (in_reader, in_writer) = pipe().unwrap();
    let (out_reader, mut out_writer) = pipe().unwrap();
    let in_clone = in_writer.try_clone().unwrap();
    let out_clone = out_reader.try_clone().unwrap();
    let exchange = {
        let data = data.clone();
        thread::spawn(move || {
            let mut out = Vec::new();
            Communicator::new()
                .input(in_writer, &data)
                .output(out_reader, &mut out)
                .run()
                .unwrap();
            out
        })
    };
    // Wait until the exchange has filled the input's pipe and is waiting
    // for room; check the shared descriptions every time round.
    let capacity = in_reader.capacity().unwrap();
    loop {
        assert!(
            !in_clone.nonblocking().unwrap(),
            "O_NONBLOCK set on the input"
        );
        assert!(
            !out_clone.nonblocking().unwrap(),
            "O_NONBLOCK set on the output"
        );
        if in_reader.bytes_available().unwrap() >= capacity {
            break;
        }
        thread::yield_now();
    }
    assert!(!in_clone.nonblocking().unwrap());
    out_writer.write_all(b"output").unwrap();
    drop(out_writer);
    drop(in_clone);
    let mut got = Vec::new();
    (&in_reader).read_to_end(&mut got).unwrap();
    assert_same(&got, &data);
    assert_eq!(exchange.join().unwrap(), b"output");
    assert!(!out_clone.nonblocking().unwrap());
}

/// Two clones of one reader given as two outputs: both are served, the
/// deadline holds, and every byte lands in exactly one of the sinks.
fn clones_of_one_reader_as_two_outputs_keep_the_deadline() {
    let (reader, mut writer) = pipe().unwrap();
    let clone = reader.try_clone().unwrap();
    writer.write_all(b"0123456789").unwrap();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let mut communicator = Communicator::new();
    communicator
        .output(reader, &mut first)
        .output(clone, &mut second)
        .timeout(timeout);
    let err = communicator.run().unwrap_err();
    let took = started.elapsed();
    assert!(DeadlinePassed::from_error(&err).is_some(), "{err}");
    assert!(took < timeout + MARGIN, "returned after {took:?}");
    // Resuming after the writer closes ends both at end of file.
    drop(writer);
    communicator.run().unwrap();
    drop(communicator);
    let mut all = [first, second].concat();
    all.sort_unstable();
    assert_eq!(all, b"0123456789");
}

/// Two clones of one writer given as two inputs, the first short and the
/// second larger than the pipe, nobody reading: the first closing must not
/// leave the second blocked in `write`; the counts are exact.
fn clones_of_one_writer_as_two_inputs_keep_the_deadline() {
    let (reader, writer) = pipe().unwrap();
    let clone = writer.try_clone().unwrap();
    let big = pattern(4 << 20);
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let mut communicator = Communicator::new();
    communicator
        .input(writer, b"short")
        .input(clone, &big)
        .timeout(timeout);
    let err = communicator.run().unwrap_err();
    let took = started.elapsed();
    assert!(DeadlinePassed::from_error(&err).is_some(), "{err}");
    assert!(took < timeout + MARGIN, "returned after {took:?}");
    let written = communicator.bytes_written(0) + communicator.bytes_written(1);
    // Which input the pipe's room went to first is the system's choice.
    assert!(communicator.bytes_written(0) <= 5);
    // Drain the pipe while the exchange resumes: everything arrives.
    let collector = util::collect(reader);
    communicator
        .timeout(Duration::from_secs(3600))
        .run()
        .unwrap();
    drop(communicator);
    let got = collector.join().unwrap();
    assert_eq!(got.len(), 5 + big.len(), "{written} before the resume");
}

/// A reader that another thread reads at the same time: the exchange never
/// blocks in `read`, the deadline holds, and the two readers together get
/// every byte once.
fn a_reader_that_another_thread_also_reads_keeps_the_deadline() {
    let data = pattern(8 << 20);
    let (reader, mut writer) = pipe().unwrap();
    let sharer = util::collect(reader.try_clone().unwrap());
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let producer = {
        let data = data.clone();
        thread::spawn(move || {
            writer.write_all(&data).unwrap();
            // Keep the writer open until the exchange has timed out.
            let _ = done_rx.recv();
        })
    };
    let mut mine = Vec::new();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let mut communicator = Communicator::new();
    communicator.output(reader, &mut mine).timeout(timeout);
    let err = communicator.run().unwrap_err();
    let took = started.elapsed();
    assert!(DeadlinePassed::from_error(&err).is_some(), "{err}");
    assert!(took < timeout + MARGIN, "returned after {took:?}");
    done_tx.send(()).unwrap();
    producer.join().unwrap();
    communicator.run().unwrap();
    drop(communicator);
    let theirs = sharer.join().unwrap();
    assert_eq!(mine.len() + theirs.len(), data.len());
}

/// A regular file and `/dev/null` given as an output (through `OwnedFd`),
/// and a file given as an input: read to end of file, written in full.
#[cfg(unix)]
fn files_and_devices_given_as_ends_are_used_as_they_are() {
    use std::os::fd::OwnedFd;
    let data = pattern(300_000);
    let source = util::TempFile::new("engine-file-output");
    let target = util::TempFile::new("engine-file-input");
    let (mut from_file, mut from_null) = (Vec::new(), Vec::new());
    let null = std::fs::File::open("/dev/null").unwrap();
    Communicator::new()
        .output(
            pipekit::PipeReader::from(OwnedFd::from(source.with(&data))),
            &mut from_file,
        )
        .output(
            pipekit::PipeReader::from(OwnedFd::from(null)),
            &mut from_null,
        )
        .input(
            pipekit::PipeWriter::from(OwnedFd::from(target.create())),
            &data,
        )
        .timeout(Duration::from_secs(50))
        .run()
        .unwrap();
    assert_same(&from_file, &data);
    assert!(from_null.is_empty());
    assert_same(&target.read(), &data);
}

/// An input made in packet mode (`O_DIRECT`, a flag of the writer's
/// description) is written in packets by the engine too: a reader gets one
/// `PIPE_BUF` packet per read, not the whole input.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn a_packet_mode_input_stays_in_packets() {
    let (mut reader, writer) = pipekit::PipeOptions::new()
        .packet_mode(true)
        .create()
        .unwrap();
    let data = pattern(10_000);
    Communicator::new().input(writer, &data).run().unwrap();
    let mut buf = vec![0u8; 65536];
    let first = reader.read(&mut buf).unwrap();
    assert_eq!(first, 4096, "not a packet");
    assert_same(&buf[..first], &data[..first]);
}

#[cfg(target_os = "linux")]
fn a_thread_with_its_own_fd_table_feeds_its_own_pipe() {
    linux::own_fd_table();
}

#[cfg(unix)]
fn sigpipe_at_its_default_disposition_kills_nobody() {
    let output = child("sigpipe-default").output().unwrap();
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "survived\n");
}

#[cfg(target_os = "linux")]
fn growing_child_pipes_leaves_an_unprivileged_user_full_size_pipes() {
    let output = child("unprivileged-growth").output().unwrap();
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ok\n");
}

/// With `open` forbidden on the exchange's thread (no `/proc`, a sandbox),
/// pipes cannot be reopened and the engine uses the caller's blocking
/// descriptions: shared pipes still keep the deadline.
#[cfg(target_os = "linux")]
fn where_pipes_cannot_be_reopened_shared_pipes_keep_the_deadline() {
    linux::forbid_open();
    clones_of_one_reader_as_two_outputs_keep_the_deadline();
    clones_of_one_writer_as_two_inputs_keep_the_deadline();
    no_flag_of_a_shared_description_changes();
}

/// The same, for the bytes: 10 MB each way through a peer that echoes, fed
/// and drained by one exchange.
#[cfg(target_os = "linux")]
fn where_pipes_cannot_be_reopened_every_byte_arrives() {
    linux::forbid_open();
    let data = pattern(10_000_000);
    let (to_peer_r, to_peer_w) = pipe().unwrap();
    let (from_peer_r, from_peer_w) = pipe().unwrap();
    let peer = thread::spawn(move || echo(to_peer_r, from_peer_w));
    let mut got = Vec::new();
    Communicator::new()
        .input(to_peer_w, &data)
        .output(from_peer_r, &mut got)
        .timeout(Duration::from_secs(50))
        .run()
        .unwrap();
    peer.join().unwrap();
    assert_same(&got, &data);
}

/// Copies `from` to `to` in small pieces, so that both pipes fill up.
#[cfg(target_os = "linux")]
fn echo(mut from: PipeReader, mut to: PipeWriter) {
    let mut buf = [0u8; 1000];
    loop {
        let n = from.read(&mut buf).unwrap();
        if n == 0 {
            return;
        }
        to.write_all(&buf[..n]).unwrap();
    }
}

#[cfg(unix)]
mod unix {
    use super::*;

    /// Restores `SIGPIPE`'s default disposition (Rust programs start with it
    /// ignored), feeds 8 MB to a child that reads 10 bytes and exits, and
    /// prints "survived" if it did, with the input reported as closed early
    /// and the thread's signal state as it was.
    #[allow(unsafe_code)]
    pub fn sigpipe_default_child() {
        // SAFETY: resets one signal's disposition; this process starts no
        // other threads before it.
        unsafe {
            assert_ne!(libc::signal(libc::SIGPIPE, libc::SIG_DFL), libc::SIG_ERR);
        }
        // Another thread that does not block SIGPIPE: a signal directed at
        // the process rather than at the writing thread would be delivered
        // to it, and kill the process.
        let (_park_tx, park_rx) = std::sync::mpsc::channel::<()>();
        thread::spawn(move || {
            let _ = park_rx.recv();
        });
        let data = pattern(8 << 20);
        let mut grandchild = child("read-10")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = grandchild.stdin.take().unwrap();
        let mut communicator = Communicator::new();
        communicator.input(stdin, &data);
        communicator.run().unwrap();
        assert!(communicator.input_closed_early(0));
        assert!(communicator.bytes_written(0) < data.len() as u64);
        drop(communicator);
        assert!(grandchild.wait().unwrap().success());
        // SAFETY: the sigsets are live locals written by the calls.
        unsafe {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            assert_eq!(libc::sigpending(&mut pending), 0);
            assert_eq!(
                libc::sigismember(&pending, libc::SIGPIPE),
                0,
                "left pending"
            );
            let mut mask: libc::sigset_t = std::mem::zeroed();
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask),
                0
            );
            assert_eq!(libc::sigismember(&mask, libc::SIGPIPE), 0, "left blocked");
        }
        println!("survived");
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use pipekit::communicate::communicate;

    /// Makes `open` and `openat` fail with `EACCES` on this thread (and the
    /// threads it starts), as where `/proc` is missing or forbidden. Checks
    /// that the filter works.
    pub fn forbid_open() {
        util::forbid_syscall(libc::SYS_openat, libc::EACCES);
        util::forbid_syscall(libc::SYS_open, libc::EACCES);
        let err = std::fs::File::open("/proc/self/stat").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    }

    /// A thread that unshared its fd table (`unshare(CLONE_FILES)`) gives the
    /// engine a pipe whose fd number, in the process's main table, is a
    /// regular file: the engine must feed the pipe, and never open the file
    /// (as `/proc/self/fd/N`, which names the main table, would).
    #[allow(unsafe_code)]
    pub fn own_fd_table() {
        use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
        const NUMBER: libc::c_int = 900;
        let file = util::TempFile::new("engine-fd-table");
        let decoy = file.create();
        // SAFETY: dup2 onto a number this test owns; the result is checked.
        assert_eq!(unsafe { libc::dup2(decoy.as_raw_fd(), NUMBER) }, NUMBER);
        let data = pattern(300_000);
        let got = thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: unshare affects only this thread's fd table.
                    assert_eq!(unsafe { libc::unshare(libc::CLONE_FILES) }, 0);
                    let (reader, writer) = pipe().unwrap();
                    let writer = writer.into_raw_fd();
                    // SAFETY: `writer` is an fd this thread owns; NUMBER now
                    // names the pipe in this thread's table only.
                    assert_eq!(unsafe { libc::dup2(writer, NUMBER) }, NUMBER);
                    // SAFETY: `writer` was owned and is closed once.
                    unsafe { libc::close(writer) };
                    // SAFETY: NUMBER is open in this table and owned here.
                    let writer = pipekit::PipeWriter::from(unsafe { OwnedFd::from_raw_fd(NUMBER) });
                    let collector = util::collect(reader);
                    Communicator::new().input(writer, &data).run().unwrap();
                    collector.join().unwrap()
                })
                .join()
                .unwrap()
        });
        // SAFETY: NUMBER is the main table's duplicate of the decoy.
        unsafe { libc::close(NUMBER) };
        assert_same(&got, &data);
        assert!(
            file.read().is_empty(),
            "the engine wrote into the decoy file"
        );
    }

    /// As user 65534 (root is exempt from the per-user pipe limits), runs 64
    /// `communicate` calls at once whose children fill their output pipe
    /// with 2 MiB; once every child has written it, new pipes must still
    /// get the default 64 KiB.
    #[allow(unsafe_code)]
    pub fn unprivileged_growth_child() {
        // SAFETY: setgid and setuid take plain integers; this child is
        // single-threaded so far, so the ids change for all of it.
        unsafe {
            if libc::geteuid() == 0 {
                assert_eq!(libc::setgid(65534), 0, "{}", io::Error::last_os_error());
                assert_eq!(libc::setuid(65534), 0, "{}", io::Error::last_os_error());
            }
        }
        const CALLS: usize = 64;
        let (gate_reader, gate_writer) = pipe().unwrap();
        let (mut ready_reader, ready_writer) = pipe().unwrap();
        let mut calls = Vec::new();
        for _ in 0..CALLS {
            let mut child = child("fill-then-wait")
                .stdin(gate_reader.try_clone().unwrap())
                .stdout(Stdio::piped())
                .stderr(ready_writer.try_clone().unwrap())
                .spawn()
                .unwrap();
            calls.push(thread::spawn(move || {
                let output = communicate(&mut child, b"").unwrap();
                assert!(output.status.success());
                assert_same(&output.stdout, &pattern(2 << 20));
            }));
        }
        drop((gate_reader, ready_writer));
        let mut ready = [0u8; CALLS];
        ready_reader.read_exact(&mut ready).unwrap();
        // Every child's output pipe has been filled and drained: the
        // exchanges have grown what they could. The user goes on creating
        // pipes (a build tool starting more jobs): 32 of them, 512 pages.
        let probes: Vec<_> = (0..32).map(|_| pipe().unwrap()).collect();
        let capacities: Vec<usize> = probes
            .iter()
            .map(|(reader, _)| reader.capacity().unwrap())
            .collect();
        drop(gate_writer);
        for call in calls {
            call.join().unwrap();
        }
        assert!(
            capacities.iter().all(|&capacity| capacity == 64 * 1024),
            "new pipes got {capacities:?} bytes"
        );
        println!("ok");
    }
}
