//! Linux and Android: `splice_to`, `splice_from` and `tee_to` on the pipe
//! types, their flags, and what `copy` does when a signal interrupts it.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod util;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Once};
use std::thread;

use pipekit::splice::{copy, SpliceFlags};
use pipekit::{pipe, PipeOptions, PipeReader, PipeWriter};
use util::{assert_same, collect, dev_null, feed, pattern, watchdog, TempFile};

fn read_all(mut reader: impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn splice_to_a_file_moves_the_bytes_and_advances_the_offset() {
    watchdog(|| {
        let (reader, mut writer) = pipe().unwrap();
        let temp = TempFile::new("to-file");
        let file = temp.create();
        writer.write_all(b"abcdef").unwrap();

        assert_eq!(reader.splice_to(&file, 4, SpliceFlags::empty()).unwrap(), 4);
        assert_eq!(reader.bytes_available().unwrap(), 2);
        // The file's offset moved: the rest lands after the first part.
        assert_eq!(
            reader.splice_to(&file, 100, SpliceFlags::empty()).unwrap(),
            2
        );
        assert_eq!(reader.bytes_available().unwrap(), 0);
        assert_eq!(temp.read(), b"abcdef");

        drop(writer);
        // Empty with every writer gone: end of file.
        assert_eq!(
            reader.splice_to(&file, 100, SpliceFlags::empty()).unwrap(),
            0
        );
    });
}

#[test]
fn a_zero_length_splice_moves_nothing() {
    watchdog(|| {
        let (reader, mut writer) = pipe().unwrap();
        writer.write_all(b"kept").unwrap();
        assert_eq!(
            reader
                .splice_to(dev_null(), 0, SpliceFlags::empty())
                .unwrap(),
            0
        );
        assert_eq!(reader.bytes_available().unwrap(), 4);
    });
}

#[test]
fn splice_from_a_file_fills_the_pipe_in_order() {
    watchdog(|| {
        let data = pattern(8 << 20);
        let temp = TempFile::new("from-file");
        let file = temp.with(&data);

        let (reader, writer) = pipe().unwrap();
        let collector = collect(reader);
        let mut moved = 0;
        loop {
            // Odd lengths, so that splices straddle pages.
            match writer
                .splice_from(&file, 100_003, SpliceFlags::empty())
                .unwrap()
            {
                0 => break,
                n => moved += n,
            }
        }
        drop(writer);
        assert_eq!(moved, data.len());
        assert_same(&collector.join().unwrap(), &data);
    });
}

#[test]
fn splice_between_two_pipes_relays_every_byte() {
    watchdog(|| {
        let data = pattern(16 << 20);
        let (from_reader, from_writer) = pipe().unwrap();
        let (to_reader, to_writer) = pipe().unwrap();
        let feeder = feed(from_writer, &data);
        let collector = collect(to_reader);
        let mut moved = 0;
        loop {
            match from_reader
                .splice_to(&to_writer, 1 << 20, SpliceFlags::MOVE)
                .unwrap()
            {
                0 => break,
                n => moved += n,
            }
        }
        drop(to_writer);
        feeder.join().unwrap();
        assert_eq!(moved, data.len());
        assert_same(&collector.join().unwrap(), &data);
    });
}

#[test]
fn splice_works_with_sockets_both_ways() {
    watchdog(|| {
        let data = pattern(4 << 20);

        // Pipe to socket, with the MORE hint.
        let (reader, writer) = pipe().unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let feeder = feed(writer, &data);
        let collector = collect(theirs);
        let mut moved = 0;
        while let n @ 1.. = reader.splice_to(&ours, 65536, SpliceFlags::MORE).unwrap() {
            moved += n;
        }
        drop(ours);
        feeder.join().unwrap();
        assert_eq!(moved, data.len());
        assert_same(&collector.join().unwrap(), &data); // pipe to socket

        // Socket to pipe.
        let (reader, writer) = pipe().unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let sender = feed(ours, &data);
        let collector = collect(reader);
        let mut moved = 0;
        while let n @ 1.. = writer
            .splice_from(&theirs, 65536, SpliceFlags::empty())
            .unwrap()
        {
            moved += n;
        }
        drop(writer);
        sender.join().unwrap();
        assert_eq!(moved, data.len());
        assert_same(&collector.join().unwrap(), &data); // socket to pipe
    });
}

#[test]
fn tee_copies_without_consuming() {
    watchdog(|| {
        let (reader, mut writer) = pipe().unwrap();
        let (copy_reader, copy_writer) = pipe().unwrap();
        writer.write_all(b"hello").unwrap();

        assert_eq!(
            reader
                .tee_to(&copy_writer, 100, SpliceFlags::empty())
                .unwrap(),
            5
        );
        // Still all there in the source, and now in the copy as well.
        assert_eq!(reader.bytes_available().unwrap(), 5);
        assert_eq!(copy_reader.bytes_available().unwrap(), 5);
        // A second tee copies the same bytes again: nothing was consumed.
        assert_eq!(
            reader
                .tee_to(&copy_writer, 2, SpliceFlags::empty())
                .unwrap(),
            2
        );

        drop(writer);
        drop(copy_writer);
        assert_eq!(read_all(&reader), b"hello");
        assert_eq!(read_all(&copy_reader), b"hellohe");
        // Empty with no writer: 0.
        let (_spare_reader, spare_writer) = pipe().unwrap();
        assert_eq!(
            reader
                .tee_to(&spare_writer, 1, SpliceFlags::empty())
                .unwrap(),
            0
        );
    });
}

#[test]
fn tee_then_consume_duplicates_a_long_stream() {
    watchdog(|| {
        let data = pattern(8 << 20);
        let (reader, writer) = pipe().unwrap();
        let (copy_reader, copy_writer) = pipe().unwrap();
        let temp = TempFile::new("tee");
        let file = temp.create();
        let feeder = feed(writer, &data);
        let collector = collect(copy_reader);
        let mut total = 0;
        loop {
            let teed = reader
                .tee_to(&copy_writer, 1 << 20, SpliceFlags::empty())
                .unwrap();
            if teed == 0 {
                break;
            }
            // Consume exactly what was duplicated.
            let mut left = teed;
            while left > 0 {
                left -= reader.splice_to(&file, left, SpliceFlags::empty()).unwrap();
            }
            total += teed;
        }
        drop(copy_writer);
        feeder.join().unwrap();
        assert_eq!(total, data.len());
        assert_same(&collector.join().unwrap(), &data); // the copy
        assert_same(&temp.read(), &data); // the original stream
    });
}

#[test]
fn nonblock_flag_fails_at_once_and_moves_nothing() {
    watchdog(|| {
        // Empty pipe, writer still open: would wait.
        let (reader, writer) = pipe().unwrap();
        let err = reader
            .splice_to(dev_null(), 10, SpliceFlags::NONBLOCK)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        let (_other_reader, other_writer) = pipe().unwrap();
        let err = reader
            .tee_to(&other_writer, 10, SpliceFlags::NONBLOCK)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");

        // Full pipe: splicing more in would wait.
        let mut options = PipeOptions::new();
        options.writer_nonblocking(true);
        let (_full_reader, full_writer) = options.create().unwrap();
        while (&full_writer).write(&[7; 4096]).is_ok() {}
        full_writer.set_nonblocking(false).unwrap();
        let zeros = File::open("/dev/zero").unwrap();
        let err = full_writer
            .splice_from(&zeros, 10, SpliceFlags::NONBLOCK)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");

        // The flag does not disturb later data.
        (&writer).write_all(b"late").unwrap();
        let temp = TempFile::new("nonblock");
        let file = temp.create();
        let flags = SpliceFlags::NONBLOCK | SpliceFlags::MORE;
        assert_eq!(reader.splice_to(&file, 10, flags).unwrap(), 4);
        assert_eq!(temp.read(), b"late");
    });
}

#[test]
fn refused_pairs_are_invalid_input_and_keep_the_data() {
    watchdog(|| {
        let (reader, mut writer) = pipe().unwrap();
        writer.write_all(b"stay").unwrap();

        // Linux refuses to splice into a file opened with O_APPEND.
        let temp = TempFile::new("append");
        let append = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&temp.0)
            .unwrap();
        let err = reader
            .splice_to(&append, 4, SpliceFlags::empty())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);

        // A pipe into itself, by splice or by tee.
        let err = reader
            .splice_to(&writer, 4, SpliceFlags::NONBLOCK)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        let err = reader
            .tee_to(&writer, 4, SpliceFlags::NONBLOCK)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");

        // Neither side a pipe (a PipeWriter made from a file).
        let file_writer = PipeWriter::from(std::os::fd::OwnedFd::from(temp.create()));
        let err = reader
            .tee_to(&file_writer, 4, SpliceFlags::NONBLOCK)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");

        assert_eq!(reader.bytes_available().unwrap(), 4);
    });
}

#[test]
fn splicing_into_a_pipe_without_readers_is_a_broken_pipe() {
    watchdog(|| {
        let (reader, mut writer) = pipe().unwrap();
        writer.write_all(b"orphan").unwrap();
        let (other_reader, other_writer) = pipe().unwrap();
        drop(other_reader);
        let err = reader
            .splice_to(&other_writer, 6, SpliceFlags::empty())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    });
}

#[test]
fn flags_combine_and_print() {
    assert_eq!(SpliceFlags::NONBLOCK.bits(), libc::SPLICE_F_NONBLOCK);
    assert_eq!(SpliceFlags::MORE.bits(), libc::SPLICE_F_MORE);
    assert_eq!(SpliceFlags::MOVE.bits(), libc::SPLICE_F_MOVE);

    let mut flags = SpliceFlags::empty();
    assert!(flags.is_empty());
    assert_eq!(flags, SpliceFlags::default());
    flags |= SpliceFlags::MORE;
    let all = flags | SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    assert!(all.contains(SpliceFlags::MORE | SpliceFlags::MOVE));
    assert!(!flags.contains(SpliceFlags::NONBLOCK));
    assert!(flags.contains(SpliceFlags::empty()));
    const BOTH: SpliceFlags = SpliceFlags::NONBLOCK.union(SpliceFlags::MORE);
    assert_eq!(BOTH.bits(), libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MORE);

    assert_eq!(format!("{:?}", SpliceFlags::empty()), "SpliceFlags(empty)");
    assert_eq!(format!("{BOTH:?}"), "SpliceFlags(NONBLOCK | MORE)");
    assert_eq!(format!("{all:?}"), "SpliceFlags(NONBLOCK | MORE | MOVE)");
}

// Signals. A handler installed without SA_RESTART makes a blocked system
// call fail with EINTR. The tests below find the blocked thread's state in
// /proc instead of sleeping, send it SIGUSR1, and check what the call did.

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

#[allow(unsafe_code)]
fn install_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
        // value; the handler only touches an atomic, which is
        // async-signal-safe; the pointers are to live locals.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = 0; // no SA_RESTART: blocked calls fail with EINTR
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
    });
}

#[allow(unsafe_code)]
fn gettid() -> libc::pid_t {
    // SAFETY: gettid takes no argument and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// The scheduler state of thread `tid` of this process ('S' while it waits
/// in a system call), or `None` once the thread has ended.
fn thread_state(tid: libc::pid_t) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "tid (name) S ...": the name may hold spaces, so look after the ')'.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Returns once thread `tid` is asleep in the kernel (or has ended).
fn wait_until_blocked(tid: libc::pid_t) {
    while let Some(state) = thread_state(tid) {
        if state == 'S' {
            return;
        }
        thread::yield_now();
    }
}

/// The number of the system call thread `tid` of this process is in, as
/// `/proc/self/task/{tid}/syscall` shows it: the first field, which is the
/// number, `-1` outside a call, or `running`. `None` once the thread has
/// ended.
fn current_syscall(tid: libc::pid_t) -> Option<String> {
    let line = fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    Some(line.split_whitespace().next().unwrap_or("").to_owned())
}

/// The system calls `copy` may wait in for a nonblocking end: the C
/// library's `poll` is `poll(2)` or `ppoll(2)`, depending on the library and
/// the architecture.
fn wait_calls() -> Vec<libc::c_long> {
    #[allow(unused_mut)]
    let mut calls = vec![libc::SYS_ppoll];
    #[cfg(target_arch = "x86_64")]
    calls.push(libc::SYS_poll);
    calls
}

/// Interrupts the system call thread `tid` is blocked in, which must be one
/// of `calls`, and returns once the handler has run.
#[allow(unsafe_code)]
fn interrupt(tid: libc::pid_t, calls: &[libc::c_long]) {
    wait_until_blocked(tid);
    // Asleep: it is in the call it blocks in (unless it has ended, which
    // the caller's join reports).
    if let Some(field) = current_syscall(tid) {
        let number = field.parse::<libc::c_long>().ok();
        assert!(
            number.is_some_and(|n| calls.contains(&n)),
            "blocked in system call {field}, expected one of {calls:?}"
        );
    }
    let before = SIGNALS.load(Ordering::SeqCst);
    // SAFETY: tgkill takes plain integers; `tid` is a thread of this process
    // (if it has just ended, the call fails with ESRCH, which is ignored).
    unsafe {
        libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1);
    }
    while SIGNALS.load(Ordering::SeqCst) == before && thread_state(tid).is_some() {
        thread::yield_now();
    }
}

/// Runs `f` on a thread, interrupts it three times while it is blocked (in
/// one of `calls`, each time), and returns the thread so that the caller can
/// unblock and join it.
fn run_and_interrupt<T: Send + 'static>(
    calls: &[libc::c_long],
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    install_handler();
    let (tid_tx, tid_rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        f()
    });
    let tid = tid_rx.recv().unwrap();
    for _ in 0..3 {
        interrupt(tid, calls);
    }
    handle
}

#[test]
fn a_single_splice_reports_the_interruption() {
    watchdog(|| {
        let (reader, _writer) = pipe().unwrap();
        let blocked = run_and_interrupt(&[libc::SYS_splice], move || {
            reader.splice_to(dev_null(), 10, SpliceFlags::empty())
        });
        let err = blocked.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Interrupted, "{err}");
    });
}

/// `copy` from an empty pipe into `sink`, interrupted while it waits; then
/// the data arrives. Every byte must come through, with the right count.
/// `calls` are the system calls it may be found waiting in.
fn copy_survives_signals(
    reader: PipeReader,
    writer: PipeWriter,
    sink: File,
    temp: &TempFile,
    calls: &[libc::c_long],
) {
    let data = pattern(1 << 20);
    let copier = run_and_interrupt(calls, move || copy(&reader, &sink));
    feed(writer, &data).join().unwrap();
    assert_eq!(copier.join().unwrap().unwrap(), data.len() as u64);
    assert_same(&temp.read(), &data);
}

#[test]
fn copy_retries_an_interrupted_splice() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        let temp = TempFile::new("eintr-splice");
        let sink = temp.create();
        copy_survives_signals(reader, writer, sink, &temp, &[libc::SYS_splice]);
    });
}

#[test]
fn copy_retries_an_interrupted_read_in_the_fallback_loop() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        let temp = TempFile::new("eintr-read");
        // O_APPEND: splice is refused, so copy blocks in read(2).
        let sink = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&temp.0)
            .unwrap();
        copy_survives_signals(reader, writer, sink, &temp, &[libc::SYS_read]);
    });
}

#[test]
fn copy_retries_an_interrupted_wait_for_a_nonblocking_end() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        reader.set_nonblocking(true).unwrap();
        let temp = TempFile::new("eintr-poll");
        // Blocks in poll(2), not in splice.
        let sink = temp.create();
        copy_survives_signals(reader, writer, sink, &temp, &wait_calls());
    });
}
