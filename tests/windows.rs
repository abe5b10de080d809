//! Windows-only checks of the backend: handle inheritance, the buffer size,
//! end of file and broken pipes, zero-length transfers, and reads and writes
//! on handles opened for overlapped I/O (including std's child pipes and two
//! threads sharing one `&PipeReader`).
//!
//! Tests that need a child process re-run this executable with
//! `PIPEKIT_WINDOWS_HELPER` set, which makes the `helper` test act as that
//! child (cargo cannot be run from a test under wine; the executable itself
//! can).
//!
//! The documentation comes before `#![cfg(windows)]`: on other targets the
//! cfg removes everything after it, and `missing_docs` needs the crate doc.
#![cfg(windows)]
// The raw Windows calls below observe what the public API cannot show
// (inheritance flags, buffer sizes) or build handles it cannot make
// (overlapped named pipes). Each block says what it relies on.
#![allow(unsafe_code)]

mod util;

use std::env;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, IntoRawHandle, OwnedHandle, RawHandle};
use std::process::{Command, Stdio};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;

use pipekit::{pipe, PipeReader, PipeWriter};
use util::{pattern, watchdog};
use windows_sys::Win32::Foundation::{
    GetHandleInformation, ERROR_NO_DATA, GENERIC_READ, GENERIC_WRITE, HANDLE, HANDLE_FLAG_INHERIT,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
    PIPE_ACCESS_INBOUND, PIPE_ACCESS_OUTBOUND,
};
use windows_sys::Win32::System::Console::{
    GetStdHandle, SetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, GetNamedPipeInfo, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_WAIT,
};

/// The environment variable that turns this executable into a helper child.
const HELPER: &str = "PIPEKIT_WINDOWS_HELPER";

/// More than the 64 KiB buffers below, so that transfers have to wait.
const BIG: usize = 300_000;

/// What the two-reader test moves, 7 bytes per write.
const SHARED: usize = 100_000;

// ---------------------------------------------------------------------------
// Helpers

/// Whether `handle` would be inherited by a child process.
fn inheritable(handle: &dyn AsRawHandle) -> bool {
    let mut flags = 0u32;
    // SAFETY: `handle` is open for the duration of the call and `flags` is a
    // writable local.
    let ok = unsafe { GetHandleInformation(handle.as_raw_handle() as HANDLE, &mut flags) };
    assert_ne!(
        ok,
        0,
        "GetHandleInformation: {}",
        io::Error::last_os_error()
    );
    flags & HANDLE_FLAG_INHERIT != 0
}

/// Whether pipekit took `end` for an overlapped handle, as its `Debug`
/// output says.
fn overlapped(end: &impl std::fmt::Debug) -> bool {
    let text = format!("{end:?}");
    match (
        text.contains("overlapped: true"),
        text.contains("overlapped: false"),
    ) {
        (true, false) => true,
        (false, true) => false,
        _ => panic!("no overlapped flag in {text}"),
    }
}

fn wide(text: &str) -> Vec<u16> {
    OsStr::new(text).encode_wide().chain(Some(0)).collect()
}

/// Takes ownership of a handle a successful call just returned, or panics
/// with the last error if it returned `INVALID_HANDLE_VALUE` or NULL.
fn own(handle: HANDLE, call: &str) -> OwnedHandle {
    assert!(
        !handle.is_null() && handle != INVALID_HANDLE_VALUE,
        "{call}: {}",
        io::Error::last_os_error()
    );
    // SAFETY: the call succeeded, so `handle` is open and owned by nobody
    // else.
    unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) }
}

/// A one-way named pipe whose server end is opened for overlapped I/O and
/// whose client end is synchronous, as std's child pipes were made before
/// Rust 1.90. Returns `(server, client)`; with `inbound` the server is the
/// read end.
fn overlapped_pipe(inbound: bool) -> (OwnedHandle, OwnedHandle) {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = wide(&format!(
        r"\\.\pipe\pipekit-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let direction = if inbound {
        PIPE_ACCESS_INBOUND
    } else {
        PIPE_ACCESS_OUTBOUND
    };
    // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the
    // call; NULL security attributes mean "not inheritable".
    let server = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            direction | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            65536,
            65536,
            0,
            ptr::null(),
        )
    };
    let server = own(server, "CreateNamedPipeW");
    let access = if inbound { GENERIC_WRITE } else { GENERIC_READ };
    // SAFETY: as above; flags 0 opens the client end for synchronous I/O.
    let client = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            0,
            ptr::null(),
            OPEN_EXISTING,
            0,
            ptr::null_mut(),
        )
    };
    (server, own(client, "CreateFileW"))
}

/// Runs this executable as the helper child `mode`, with the given stdio.
fn helper_child(mode: &str, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Command {
    let mut command = Command::new(env::current_exe().unwrap());
    command
        .args(["helper", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(HELPER, mode)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    command
}

/// The bytes between `<begin>` and `<end>` in `output`, which also holds
/// libtest's own lines.
fn between<'a>(output: &'a [u8], begin: &[u8], end: &[u8]) -> &'a [u8] {
    let start = find(output, begin).expect("begin marker") + begin.len();
    let stop = start + find(&output[start..], end).expect("end marker");
    &output[start..stop]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// The helper child

/// Does nothing in a normal run. With `PIPEKIT_WINDOWS_HELPER` set it is the
/// child process of the tests below.
#[test]
fn helper() {
    let Ok(mode) = env::var(HELPER) else { return };
    match mode.as_str() {
        // Writes BIG bytes of the pattern to stdout and to stderr.
        "write-both" => {
            let payload = pattern(BIG);
            let mut out = io::stdout().lock();
            out.write_all(b"<begin>").unwrap();
            out.write_all(&payload).unwrap();
            out.write_all(b"<end>").unwrap();
            out.flush().unwrap();
            let mut err = io::stderr().lock();
            err.write_all(b"<begin>").unwrap();
            err.write_all(&payload).unwrap();
            err.write_all(b"<end>").unwrap();
        }
        // Reads stdin to the end and reports whether it was the pattern.
        "check-stdin" => {
            let mut input = Vec::new();
            io::stdin().read_to_end(&mut input).unwrap();
            let verdict = if input == pattern(BIG) {
                "same"
            } else {
                "differs"
            };
            println!("<begin>{} bytes, {verdict}<end>", input.len());
        }
        // Runs dup_std* with every standard handle set to `none`, then
        // reports the results.
        "no-std-handles" | "invalid-std-handles" => {
            let none = if mode == "no-std-handles" {
                ptr::null_mut()
            } else {
                INVALID_HANDLE_VALUE
            };
            let ids: [STD_HANDLE; 3] = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE];
            // SAFETY: GetStdHandle only reads the process parameters.
            let saved = ids.map(|id| unsafe { GetStdHandle(id) });
            for id in ids {
                // SAFETY: SetStdHandle only writes the process parameters;
                // the handles it replaces stay open (they are restored below).
                assert_ne!(unsafe { SetStdHandle(id, none) }, 0);
            }
            let results = [
                pipekit::dup_stdin().map(drop),
                pipekit::dup_stdout().map(drop),
                pipekit::dup_stderr().map(drop),
            ];
            for (id, handle) in ids.into_iter().zip(saved) {
                // SAFETY: as above; `handle` is the original, still open.
                assert_ne!(unsafe { SetStdHandle(id, handle) }, 0);
            }
            print!("<begin>");
            for result in results {
                match result {
                    Ok(()) => println!("Ok"),
                    Err(err) => println!("{:?}: {err}", err.kind()),
                }
            }
            print!("<end>");
        }
        other => panic!("unknown helper mode {other}"),
    }
}

// ---------------------------------------------------------------------------
// Handles pipekit opens

#[test]
fn pipe_ends_and_clones_are_not_inheritable_and_synchronous() {
    let (reader, writer) = pipe().unwrap();
    let (reader2, writer2) = (reader.try_clone().unwrap(), writer.try_clone().unwrap());
    let ends: [(&str, &dyn AsRawHandle); 4] = [
        ("reader", &reader),
        ("writer", &writer),
        ("reader clone", &reader2),
        ("writer clone", &writer2),
    ];
    for (name, end) in ends {
        assert!(!inheritable(end), "{name} is inheritable");
    }
    assert_ne!(reader.as_raw_handle(), reader2.as_raw_handle());
    assert!(!overlapped(&reader) && !overlapped(&writer));
    assert!(!overlapped(&reader2) && !overlapped(&writer2));
}

#[test]
fn dup_std_handles_are_not_inheritable() {
    let dups = [
        (
            "stdin",
            io::stdin().as_raw_handle(),
            pipekit::dup_stdin().map(OwnedHandle::from),
        ),
        (
            "stdout",
            io::stdout().as_raw_handle(),
            pipekit::dup_stdout().map(OwnedHandle::from),
        ),
        (
            "stderr",
            io::stderr().as_raw_handle(),
            pipekit::dup_stderr().map(OwnedHandle::from),
        ),
    ];
    for (name, original, dup) in dups {
        if original.is_null() {
            // Started without this stream: `no_std_handle_is_a_clear_error`
            // covers that case.
            assert_eq!(dup.unwrap_err().kind(), io::ErrorKind::NotFound, "{name}");
            continue;
        }
        let dup = dup.unwrap_or_else(|err| panic!("dup {name}: {err}"));
        assert_ne!(dup.as_raw_handle(), original, "{name}: not a new handle");
        assert!(!inheritable(&dup), "the {name} duplicate is inheritable");
    }
}

#[test]
fn no_std_handle_is_a_clear_error() {
    watchdog(|| {
        for mode in ["no-std-handles", "invalid-std-handles"] {
            let output = helper_child(mode, Stdio::null(), Stdio::piped(), Stdio::null())
                .output()
                .unwrap();
            assert!(output.status.success(), "{mode}: {output:?}");
            let report =
                String::from_utf8_lossy(between(&output.stdout, b"<begin>", b"<end>")).into_owned();
            let lines: Vec<&str> = report.lines().collect();
            assert_eq!(
                lines,
                [
                    "NotFound: pipekit: this process has no standard input handle to duplicate",
                    "NotFound: pipekit: this process has no standard output handle to duplicate",
                    "NotFound: pipekit: this process has no standard error handle to duplicate",
                ],
                "{mode}"
            );
        }
    });
}

#[test]
fn pipe_buffer_is_64_kib() {
    let (reader, writer) = pipe().unwrap();
    for (name, handle) in [
        ("reader", reader.as_raw_handle()),
        ("writer", writer.as_raw_handle()),
    ] {
        let (mut flags, mut out_size, mut in_size, mut instances) = (0, 0, 0, 0);
        // SAFETY: the handle is open for the duration of the call and every
        // out-pointer is a writable local.
        let ok = unsafe {
            GetNamedPipeInfo(
                handle as HANDLE,
                &mut flags,
                &mut out_size,
                &mut in_size,
                &mut instances,
            )
        };
        assert_ne!(
            ok,
            0,
            "GetNamedPipeInfo({name}): {}",
            io::Error::last_os_error()
        );
        // The data flows into the read end (the pipe's server end), so its
        // inbound buffer is the pipe's capacity.
        assert_eq!(in_size, 65536, "{name}: inbound buffer");
    }
}

// ---------------------------------------------------------------------------
// End of file, broken pipe, zero-length transfers

#[test]
fn read_after_every_writer_is_dropped_is_eof() {
    watchdog(|| {
        let (mut reader, mut writer) = pipe().unwrap();
        let mut clone = writer.try_clone().unwrap();
        writer.write_all(b"ab").unwrap();
        clone.write_all(b"cd").unwrap();
        drop(writer);
        drop(clone);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
        // ERROR_BROKEN_PIPE from here on, reported as end of file each time.
        assert_eq!(reader.read(&mut [0; 16]).unwrap(), 0);
        assert_eq!(reader.read(&mut [0; 16]).unwrap(), 0);
    });
}

#[test]
fn write_after_every_reader_is_dropped_is_broken_pipe() {
    let (reader, mut writer) = pipe().unwrap();
    drop(reader.try_clone().unwrap());
    drop(reader);
    let err = writer.write(b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err:?}");
    assert_eq!(err.raw_os_error(), Some(ERROR_NO_DATA as i32), "{err:?}");
}

#[test]
fn zero_length_transfers_return_at_once_and_are_not_eof() {
    watchdog(|| {
        let (mut reader, mut writer) = pipe().unwrap();
        // The pipe is empty and a writer is open: a zero-length ReadFile
        // would wait here for data.
        assert_eq!(reader.read(&mut []).unwrap(), 0);
        assert_eq!(reader.read_vectored(&mut []).unwrap(), 0);
        // A zero-length WriteFile could end the read below early.
        assert_eq!(writer.write(&[]).unwrap(), 0);
        assert_eq!(writer.write_vectored(&[io::IoSlice::new(&[])]).unwrap(), 0);
        writer.write_all(b"x").unwrap();
        drop(writer);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"x");
    });
}

#[test]
fn vectored_transfers_use_the_first_non_empty_buffer() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        let n = (&writer)
            .write_vectored(&[
                io::IoSlice::new(&[]),
                io::IoSlice::new(b"abc"),
                io::IoSlice::new(b"z"),
            ])
            .unwrap();
        assert_eq!(n, 3);
        let (mut first, mut second, mut third) = ([0u8; 0], [0u8; 2], [0u8; 8]);
        let n = (&reader)
            .read_vectored(&mut [
                io::IoSliceMut::new(&mut first),
                io::IoSliceMut::new(&mut second),
                io::IoSliceMut::new(&mut third),
            ])
            .unwrap();
        assert_eq!((n, &second), (2, b"ab"));
    });
}

// ---------------------------------------------------------------------------
// Handles opened for overlapped I/O

#[test]
fn overlapped_reader_from_owned_handle_reads() {
    watchdog(|| {
        let (server, client) = overlapped_pipe(true);
        let reader = PipeReader::from(server);
        let writer = PipeWriter::from(client);
        assert!(overlapped(&reader), "{reader:?}");
        assert!(!overlapped(&writer), "{writer:?}");

        // The clone keeps the mode and is not inheritable; so does a round
        // trip through a raw handle.
        let clone = reader.try_clone().unwrap();
        assert!(overlapped(&clone) && !inheritable(&clone));
        drop(clone);
        // SAFETY: `into_raw_handle` just released the handle, so it is open
        // and owned by nothing else.
        let mut reader = unsafe { PipeReader::from_raw_handle(reader.into_raw_handle()) };
        assert!(overlapped(&reader));

        let payload = pattern(BIG);
        let expected = payload.clone();
        let writing = thread::spawn(move || {
            let mut writer = writer;
            writer.write_all(&payload).unwrap();
        });
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        writing.join().unwrap();
        assert!(
            out == expected,
            "read {} bytes, not the {BIG} written",
            out.len()
        );
        assert_eq!(reader.read(&mut [0; 16]).unwrap(), 0);
        assert_eq!(reader.read(&mut []).unwrap(), 0);
    });
}

#[test]
fn overlapped_reader_is_shared_by_two_threads() {
    watchdog(|| {
        let (server, client) = overlapped_pipe(true);
        let reader = PipeReader::from(server);
        let mut writer = PipeWriter::from(client);
        assert!(overlapped(&reader));
        let payload = pattern(SHARED);
        let barrier = Barrier::new(3);

        let chunks: Vec<Vec<u8>> = thread::scope(|scope| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let (reader, barrier) = (&reader, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        // Full-size reads, against a writer that writes 7
                        // bytes at a time: the readers drain the pipe at once,
                        // so both usually have a read pending on an empty
                        // pipe when the next bytes arrive.
                        let mut got = Vec::new();
                        let mut buf = [0u8; 4096];
                        loop {
                            let n = (&*reader).read(&mut buf).unwrap();
                            if n == 0 {
                                break got;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                    })
                })
                .collect();
            barrier.wait();
            for chunk in payload.chunks(7) {
                writer.write_all(chunk).unwrap();
            }
            drop(writer);
            readers.into_iter().map(|r| r.join().unwrap()).collect()
        });

        // Every byte was read exactly once: no loss, no duplicate, no
        // garbage from a read reported before it completed. Waiting on the
        // file handle instead of a per-operation event (as std's `File`
        // does) loses bytes here: one completion wakes both readers.
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), SHARED);
        let mut got: Vec<u8> = chunks.concat();
        let mut expected = payload;
        got.sort_unstable();
        expected.sort_unstable();
        assert!(
            got == expected,
            "the two readers' bytes are not the bytes written"
        );
    });
}

#[test]
fn overlapped_writer_from_owned_handle_writes_and_breaks() {
    watchdog(|| {
        let (server, client) = overlapped_pipe(false);
        let writer = PipeWriter::from(server);
        let mut reader = PipeReader::from(client);
        assert!(overlapped(&writer), "{writer:?}");
        assert!(!overlapped(&reader), "{reader:?}");
        let clone = writer.try_clone().unwrap();
        assert!(overlapped(&clone) && !inheritable(&clone));

        let payload = pattern(BIG);
        let expected = payload.clone();
        let writing = thread::spawn(move || {
            let mut writer = writer;
            assert_eq!(writer.write(&[]).unwrap(), 0);
            writer.write_all(&payload).unwrap();
        });
        let mut out = vec![0; BIG];
        reader.read_exact(&mut out).unwrap();
        writing.join().unwrap();
        assert!(out == expected, "the bytes read are not the bytes written");

        drop(reader);
        let err = (&clone).write(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err:?}");
    });
}

#[test]
fn child_stdout_and_stderr_read_through_pipe_readers() {
    watchdog(|| {
        let mut child = helper_child("write-both", Stdio::null(), Stdio::piped(), Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = PipeReader::from(child.stdout.take().unwrap());
        let mut stderr = PipeReader::from(child.stderr.take().unwrap());
        // std opens its end of a child's pipes for overlapped I/O.
        assert!(overlapped(&stdout), "{stdout:?}");
        assert!(overlapped(&stderr), "{stderr:?}");

        let reading = thread::spawn(move || {
            let mut stdout = stdout;
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).unwrap();
            out
        });
        let mut err = Vec::new();
        stderr.read_to_end(&mut err).unwrap();
        let out = reading.join().unwrap();
        assert!(child.wait().unwrap().success());

        let expected = pattern(BIG);
        assert!(
            between(&out, b"<begin>", b"<end>") == expected,
            "stdout differs"
        );
        assert!(
            between(&err, b"<begin>", b"<end>") == expected,
            "stderr differs"
        );
    });
}

#[test]
fn child_stdin_writes_through_a_pipe_writer() {
    watchdog(|| {
        let mut child = helper_child("check-stdin", Stdio::piped(), Stdio::piped(), Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = PipeWriter::from(child.stdin.take().unwrap());
        assert!(overlapped(&stdin), "{stdin:?}");
        stdin.write_all(&pattern(BIG)).unwrap();
        drop(stdin);

        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        assert!(child.wait().unwrap().success());
        let report = between(&out, b"<begin>", b"<end>");
        assert_eq!(
            String::from_utf8_lossy(report),
            format!("{BIG} bytes, same")
        );
    });
}
