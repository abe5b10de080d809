//! Windows-only checks of the backend: handle inheritance, the buffer size,
//! end of file and broken pipes, zero-length transfers, reads and writes
//! on handles opened for overlapped I/O (including std's child pipes and two
//! threads sharing one `&PipeReader`), and pipe control: `PipeOptions`'
//! overlapped ends (unnamed NT pipes), capacity, `PIPE_NOWAIT`, bytes
//! available, timeouts, and the options Windows cannot honour.
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
use std::time::{Duration, Instant};

use pipekit::{pipe, PipeOptions, PipeReader, PipeWriter};
use util::{pattern, watchdog};
use windows_sys::Win32::Foundation::{
    GetHandleInformation, ERROR_IO_PENDING, ERROR_NO_DATA, GENERIC_READ, GENERIC_WRITE, HANDLE,
    HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED,
    FILE_READ_ATTRIBUTES, OPEN_EXISTING, PIPE_ACCESS_INBOUND, PIPE_ACCESS_OUTBOUND,
};
use windows_sys::Win32::System::Console::{
    GetStdHandle, SetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, GetNamedPipeInfo, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, GetProcessHandleCount,
};
use windows_sys::Win32::System::IO::{GetOverlappedResult, OVERLAPPED};

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
    named_pipe(inbound, 65536, 65536)
}

/// `overlapped_pipe` with the given outbound (server to client) and inbound
/// (client to server) buffer quotas. A writing client may also read its
/// attributes, so that its buffer sizes can be asked.
fn named_pipe(inbound: bool, out_size: u32, in_size: u32) -> (OwnedHandle, OwnedHandle) {
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
            out_size,
            in_size,
            0,
            ptr::null(),
        )
    };
    let server = own(server, "CreateNamedPipeW");
    let access = if inbound {
        GENERIC_WRITE | FILE_READ_ATTRIBUTES
    } else {
        GENERIC_READ
    };
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
        // Reports on stderr whether its stdin and stdout were opened for
        // synchronous I/O, then copies stdin to stdout.
        "stdio-mode" => {
            let sync = |handle: std::os::windows::io::BorrowedHandle<'_>| {
                use windows_sys::Wdk::Storage::FileSystem::{
                    FileModeInformation, NtQueryInformationFile, FILE_MODE_INFORMATION,
                    FILE_SYNCHRONOUS_IO_NONALERT,
                };
                let mut status = windows_sys::Win32::System::IO::IO_STATUS_BLOCK::default();
                let mut info = FILE_MODE_INFORMATION::default();
                // SAFETY: writable locals of the types this class fills, the
                // length is `info`'s size, and the handle is open.
                let code = unsafe {
                    NtQueryInformationFile(
                        handle.as_raw_handle() as HANDLE,
                        &mut status,
                        (&mut info as *mut FILE_MODE_INFORMATION).cast(),
                        std::mem::size_of::<FILE_MODE_INFORMATION>() as u32,
                        FileModeInformation,
                    )
                };
                assert_eq!(code, 0, "NtQueryInformationFile");
                if info.Mode & FILE_SYNCHRONOUS_IO_NONALERT != 0 {
                    "sync"
                } else {
                    "async"
                }
            };
            use std::os::windows::io::AsHandle;
            eprint!(
                "<begin>{} {}<end>",
                sync(io::stdin().as_handle()),
                sync(io::stdout().as_handle())
            );
            io::copy(&mut io::stdin(), &mut io::stdout()).unwrap();
        }
        // Creates and drops 2000 NT pipes of every kind, and reports the
        // handle count and the next free handle slot before and after.
        "count-handles" => {
            // Warm up: the first calls may open handles that stay (DLLs, the
            // pipe file system's root, the wine server's caches).
            for _ in 0..10 {
                drop(PipeOptions::new().overlapped_reader(true).create().unwrap());
            }
            let (count_before, slot_before) = (handle_count(), next_handle_slot());
            for i in 0..2000 {
                let (reader, writer) = PipeOptions::new()
                    .overlapped_reader(i % 2 == 0)
                    .overlapped_writer(i % 3 == 0 || i % 2 == 1)
                    .nonblocking(i % 5 == 0)
                    .create()
                    .unwrap();
                if i % 7 == 0 {
                    (&writer).write_all(b"x").unwrap();
                    let _ = (&reader).read(&mut [0; 1]).unwrap();
                }
            }
            let (count_after, slot_after) = (handle_count(), next_handle_slot());
            print!("<begin>{count_before} {count_after} {slot_before} {slot_after}<end>");
            io::stdout().flush().unwrap();
        }
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

// ---------------------------------------------------------------------------
// PipeOptions: overlapped ends (unnamed NT pipes), capacity, nonblocking
// mode, bytes available, timeouts

/// The four ways pipekit opens a pipe on Windows: `CreatePipe`, and an NT
/// pipe with the reader, the writer or both overlapped. Each with its name
/// for assertion messages.
fn every_kind(capacity: Option<usize>) -> Vec<(&'static str, PipeReader, PipeWriter)> {
    [
        ("CreatePipe", false, false),
        ("NT pipe, overlapped reader", true, false),
        ("NT pipe, overlapped writer", false, true),
        ("NT pipe, both overlapped", true, true),
    ]
    .into_iter()
    .map(|(name, overlapped_reader, overlapped_writer)| {
        let mut options = PipeOptions::new();
        options
            .overlapped_reader(overlapped_reader)
            .overlapped_writer(overlapped_writer);
        if let Some(bytes) = capacity {
            options.capacity(bytes);
        }
        let (reader, writer) = options
            .create()
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(overlapped(&reader), overlapped_reader, "{name}: {reader:?}");
        assert_eq!(overlapped(&writer), overlapped_writer, "{name}: {writer:?}");
        (name, reader, writer)
    })
    .collect()
}

/// Writes into a nonblocking `writer` until the pipe is full: 4096 bytes at
/// a time, then (as `PIPE_NOWAIT` writes are all or nothing under wine) one
/// byte at a time. Returns how many bytes went in; each stop must be
/// `WouldBlock`, never `Ok(0)`.
fn fill_nonblocking(writer: &PipeWriter, name: &str) -> usize {
    let mut total = 0;
    for chunk in [4096, 1] {
        let data = vec![0x5a; chunk];
        loop {
            match (&*writer).write(&data) {
                Ok(n) => {
                    assert!(n > 0, "{name}: Ok(0) from a nonblocking write");
                    total += n;
                }
                Err(err) => {
                    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{name}: {err:?}");
                    break;
                }
            }
            assert!(total <= 64 << 20, "{name}: the pipe never fills");
        }
    }
    total
}

/// A manual-reset event for a raw overlapped operation.
fn raw_event() -> OwnedHandle {
    // SAFETY: NULL security attributes and name are allowed.
    own(
        unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) },
        "CreateEventW",
    )
}

/// The number of handles this process has open. (Wine 8 reports 0.)
fn handle_count() -> u32 {
    let mut count = 0;
    // SAFETY: the pseudo handle of the current process needs no closing, and
    // `count` is a writable local.
    let ok = unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut count) };
    assert_ne!(
        ok,
        0,
        "GetProcessHandleCount: {}",
        io::Error::last_os_error()
    );
    count
}

/// The value of a handle opened now, in handle-table slots. A new handle
/// takes a free slot of the process's handle table (the lowest under wine,
/// a recently freed one on Windows), so the value stays put while handles
/// are closed as fast as they are opened, and grows by one slot per handle
/// that leaks.
fn next_handle_slot() -> usize {
    raw_event().as_raw_handle() as usize / 4
}

#[test]
fn overlapped_reader_option_gives_an_overlapped_reader_and_a_synchronous_writer() {
    watchdog(|| {
        let (reader, mut writer) = PipeOptions::new().overlapped_reader(true).create().unwrap();
        assert!(overlapped(&reader), "{reader:?}");
        assert!(!overlapped(&writer), "{writer:?}");
        assert!(!inheritable(&reader) && !inheritable(&writer));
        let clone = reader.try_clone().unwrap();
        assert!(overlapped(&clone) && !inheritable(&clone));
        drop(clone);

        // A raw overlapped ReadFile on the empty pipe is queued and returns
        // at once (on a synchronous handle it would block here for good).
        let event = raw_event();
        let mut overlapped_io = OVERLAPPED {
            hEvent: event.as_raw_handle() as HANDLE,
            ..OVERLAPPED::default()
        };
        let mut buf = [0u8; 16];
        // SAFETY: `buf` and `overlapped_io` stay in place until
        // GetOverlappedResult below has waited for the read to complete.
        let ok = unsafe {
            ReadFile(
                reader.as_raw_handle() as HANDLE,
                buf.as_mut_ptr(),
                buf.len() as u32,
                ptr::null_mut(),
                &mut overlapped_io,
            )
        };
        let err = io::Error::last_os_error();
        assert_eq!(ok, 0, "ReadFile completed on an empty pipe");
        assert_eq!(err.raw_os_error(), Some(ERROR_IO_PENDING as i32), "{err}");
        writer.write_all(b"hello").unwrap();
        let mut done = 0;
        // SAFETY: as above; bWait = TRUE waits for the read.
        let ok = unsafe {
            GetOverlappedResult(
                reader.as_raw_handle() as HANDLE,
                &overlapped_io,
                &mut done,
                1,
            )
        };
        assert_ne!(ok, 0, "GetOverlappedResult: {}", io::Error::last_os_error());
        assert_eq!(&buf[..done as usize], b"hello");

        // The synchronous writer works in a child as its standard output.
        let mut child = helper_child(
            "write-both",
            Stdio::null(),
            Stdio::from(writer),
            Stdio::null(),
        )
        .spawn()
        .unwrap();
        let mut out = Vec::new();
        (&reader).read_to_end(&mut out).unwrap();
        assert!(child.wait().unwrap().success());
        assert!(
            between(&out, b"<begin>", b"<end>") == pattern(BIG),
            "the child's output differs"
        );
    });
}

#[test]
fn overlapped_writer_option_gives_an_overlapped_writer_and_a_synchronous_reader() {
    watchdog(|| {
        let (mut reader, writer) = PipeOptions::new().overlapped_writer(true).create().unwrap();
        assert!(overlapped(&writer), "{writer:?}");
        assert!(!overlapped(&reader), "{reader:?}");
        assert!(!inheritable(&reader) && !inheritable(&writer));

        // Fill the pipe, then a raw overlapped WriteFile of one more byte
        // is queued and returns at once.
        let capacity = writer.capacity().unwrap();
        (&writer).write_all(&vec![1; capacity]).unwrap();
        let event = raw_event();
        let mut overlapped_io = OVERLAPPED {
            hEvent: event.as_raw_handle() as HANDLE,
            ..OVERLAPPED::default()
        };
        let byte = [2u8];
        // SAFETY: `byte` and `overlapped_io` stay in place until
        // GetOverlappedResult below has waited for the write to complete.
        let ok = unsafe {
            WriteFile(
                writer.as_raw_handle() as HANDLE,
                byte.as_ptr(),
                1,
                ptr::null_mut(),
                &mut overlapped_io,
            )
        };
        let err = io::Error::last_os_error();
        assert_eq!(ok, 0, "WriteFile completed on a full pipe");
        assert_eq!(err.raw_os_error(), Some(ERROR_IO_PENDING as i32), "{err}");
        let mut all = vec![0; capacity + 1];
        reader.read_exact(&mut all).unwrap();
        assert!(all[..capacity].iter().all(|&b| b == 1) && all[capacity] == 2);
        let mut done = 0;
        // SAFETY: as above; bWait = TRUE waits for the write.
        let ok = unsafe {
            GetOverlappedResult(
                writer.as_raw_handle() as HANDLE,
                &overlapped_io,
                &mut done,
                1,
            )
        };
        assert_ne!(ok, 0, "GetOverlappedResult: {}", io::Error::last_os_error());
        assert_eq!(done, 1);

        // The synchronous reader works in a child as its standard input.
        let mut child = helper_child(
            "check-stdin",
            Stdio::from(reader),
            Stdio::piped(),
            Stdio::null(),
        )
        .spawn()
        .unwrap();
        (&writer).write_all(&pattern(BIG)).unwrap();
        drop(writer);
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            String::from_utf8_lossy(between(&out, b"<begin>", b"<end>")),
            format!("{BIG} bytes, same")
        );
    });
}

#[test]
fn capacity_option_is_what_both_ends_report_and_what_the_pipe_holds() {
    watchdog(|| {
        for bytes in [16384, 1 << 20] {
            for (name, reader, writer) in every_kind(Some(bytes)) {
                assert_eq!(reader.capacity().unwrap(), bytes, "{name}: reader");
                assert_eq!(writer.capacity().unwrap(), bytes, "{name}: writer");
                writer.set_nonblocking(true).unwrap();
                assert_eq!(fill_nonblocking(&writer, name), bytes, "{name}");
                assert_eq!(reader.bytes_available().unwrap(), bytes, "{name}");
            }
        }
        // Without the option: the 64 KiB of pipe().
        for (name, reader, writer) in every_kind(None) {
            assert_eq!(reader.capacity().unwrap(), 65536, "{name}: reader");
            assert_eq!(writer.capacity().unwrap(), 65536, "{name}: writer");
        }
    });
}

#[test]
fn capacity_is_the_buffer_that_data_flows_through_on_foreign_pipes() {
    watchdog(|| {
        // Inbound: the server reads, so the data goes through the inbound
        // buffer, whichever end is asked.
        let (server, client) = named_pipe(true, 4096, 16384);
        let (reader, writer) = (PipeReader::from(server), PipeWriter::from(client));
        assert_eq!(reader.capacity().unwrap(), 16384, "inbound: server reader");
        assert_eq!(writer.capacity().unwrap(), 16384, "inbound: client writer");
        writer.set_nonblocking(true).unwrap();
        assert_eq!(fill_nonblocking(&writer, "inbound"), 16384);

        // Outbound: the server writes, through the outbound buffer. (The
        // server end CreateNamedPipeW opens for writing only has no
        // FILE_READ_ATTRIBUTES, so only the reader can be asked.)
        let (server, client) = named_pipe(false, 16384, 4096);
        let (reader, writer) = (PipeReader::from(client), PipeWriter::from(server));
        assert_eq!(reader.capacity().unwrap(), 16384, "outbound: client reader");
        writer.set_nonblocking(true).unwrap();
        assert_eq!(fill_nonblocking(&writer, "outbound"), 16384);
    });
}

#[test]
fn nonblocking_mode_works_on_every_kind_of_end() {
    watchdog(|| {
        for (name, reader, writer) in every_kind(None) {
            assert!(!reader.nonblocking().unwrap(), "{name}");
            assert!(!writer.nonblocking().unwrap(), "{name}");
            reader.set_nonblocking(true).unwrap();
            writer.set_nonblocking(true).unwrap();
            assert!(reader.nonblocking().unwrap(), "{name}");
            assert!(writer.nonblocking().unwrap(), "{name}");

            // Empty: WouldBlock, not BrokenPipe, and nothing is lost.
            let err = (&reader).read(&mut [0; 16]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{name}: {err:?}");
            (&writer).write_all(b"abc").unwrap();
            let mut buf = [0; 16];
            assert_eq!((&reader).read(&mut buf).unwrap(), 3, "{name}");
            assert_eq!(&buf[..3], b"abc", "{name}");

            // Full: WouldBlock once the 64 KiB are in.
            assert_eq!(fill_nonblocking(&writer, name), 65536, "{name}");

            // Back to blocking: the reader drains the pipe, then waits for
            // data that comes later.
            reader.set_nonblocking(false).unwrap();
            assert!(!reader.nonblocking().unwrap(), "{name}");
            let mut drained = vec![0; 65536];
            (&reader).read_exact(&mut drained).unwrap();
            writer.set_nonblocking(false).unwrap();
            assert!(!writer.nonblocking().unwrap(), "{name}");
            let (reader, writer) = thread::scope(|scope| {
                let writing = scope.spawn(move || {
                    thread::sleep(Duration::from_millis(100));
                    (&writer).write_all(b"later").unwrap();
                    writer
                });
                let mut buf = [0; 5];
                (&reader).read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"later", "{name}");
                (reader, writing.join().unwrap())
            });

            // Nonblocking again: after the writer is gone, the rest of the
            // data and then end of file, Ok(0), not WouldBlock.
            reader.set_nonblocking(true).unwrap();
            (&writer).write_all(b"tail").unwrap();
            drop(writer);
            let mut buf = [0; 16];
            assert_eq!((&reader).read(&mut buf).unwrap(), 4, "{name}");
            assert_eq!(&buf[..4], b"tail", "{name}");
            assert_eq!((&reader).read(&mut buf).unwrap(), 0, "{name}: EOF");
            assert_eq!((&reader).read(&mut buf).unwrap(), 0, "{name}: EOF");
        }
    });
}

#[test]
fn nonblocking_options_apply_to_the_chosen_ends() {
    for (reader_nb, writer_nb) in [(true, false), (false, true), (true, true)] {
        for overlapped_reader in [false, true] {
            let (reader, writer) = PipeOptions::new()
                .overlapped_reader(overlapped_reader)
                .reader_nonblocking(reader_nb)
                .writer_nonblocking(writer_nb)
                .create()
                .unwrap();
            assert_eq!(reader.nonblocking().unwrap(), reader_nb);
            assert_eq!(writer.nonblocking().unwrap(), writer_nb);
        }
    }
}

#[test]
fn bytes_available_tracks_writes_and_reads_on_every_kind_of_end() {
    watchdog(|| {
        for (name, reader, writer) in every_kind(None) {
            assert_eq!(reader.bytes_available().unwrap(), 0, "{name}");
            (&writer).write_all(&[1; 10]).unwrap();
            assert_eq!(reader.bytes_available().unwrap(), 10, "{name}");
            (&reader).read_exact(&mut [0; 4]).unwrap();
            assert_eq!(reader.bytes_available().unwrap(), 6, "{name}");
            (&writer).write_all(&[2; 5]).unwrap();
            assert_eq!(reader.bytes_available().unwrap(), 11, "{name}");
            drop(writer);
            assert_eq!(reader.bytes_available().unwrap(), 11, "{name}");
            let mut rest = Vec::new();
            (&reader).read_to_end(&mut rest).unwrap();
            assert_eq!(rest, [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2], "{name}");
            // Empty, and no writer left: 0, not an error.
            assert_eq!(reader.bytes_available().unwrap(), 0, "{name}");
        }
    });
}

const TIMEOUT: Duration = Duration::from_millis(200);
/// Deliberately wide: a timeout must never fire early, and must fire
/// within a margin only a broken implementation would exceed.
const MARGIN: Duration = Duration::from_secs(10);

#[track_caller]
fn assert_timed_out(err: io::Error, started: Instant) {
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("200ms"), "{err}");
    assert!(elapsed >= TIMEOUT, "fired early, after {elapsed:?}");
    assert!(elapsed < TIMEOUT + MARGIN, "fired late, after {elapsed:?}");
}

#[test]
fn read_timeout_on_an_overlapped_reader_expires_and_consumes_nothing() {
    watchdog(|| {
        let (reader, writer) = PipeOptions::new().overlapped_reader(true).create().unwrap();
        reader.set_read_timeout(Some(TIMEOUT)).unwrap();
        for _ in 0..3 {
            let started = Instant::now();
            let err = (&reader).read(&mut [0; 64]).unwrap_err();
            assert_timed_out(err, started);
        }
        // The cancelled reads took nothing: what is written now is read
        // whole, by timed reads.
        (&writer).write_all(b"after the timeouts").unwrap();
        let mut buf = [0; 64];
        let n = (&reader).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after the timeouts");
        // Data that arrives within the timeout ends the wait.
        reader
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let writing = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            (&writer).write_all(b"in time").unwrap();
        });
        let n = (&reader).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"in time");
        writing.join().unwrap();
        // The writer is gone: end of file at once, not a timeout.
        let started = Instant::now();
        assert_eq!((&reader).read(&mut buf).unwrap(), 0);
        assert!(started.elapsed() < Duration::from_secs(30));
    });
}

#[test]
fn write_timeout_on_a_full_overlapped_writer_expires_and_writes_nothing() {
    watchdog(|| {
        let (mut reader, writer) = PipeOptions::new().overlapped_writer(true).create().unwrap();
        writer.set_write_timeout(Some(TIMEOUT)).unwrap();
        let data = pattern(3 * 65536);
        // Into the empty pipe a timed write completes at once, with as
        // much as the pipe holds.
        assert_eq!((&writer).write(&data).unwrap(), 65536);
        // Full now: each timed write waits, is cancelled, and moves nothing.
        for _ in 0..2 {
            let started = Instant::now();
            let err = (&writer).write(&data[65536..]).unwrap_err();
            assert_timed_out(err, started);
        }
        let started = Instant::now();
        let err = (&writer).write_all(&data[65536..]).unwrap_err();
        assert_timed_out(err, started);
        drop(writer);
        let mut received = Vec::new();
        reader.read_to_end(&mut received).unwrap();
        assert_eq!(received.len(), 65536, "a cancelled write left bytes behind");
        assert!(
            received == data[..65536],
            "the bytes read are not those written"
        );
    });
}

#[test]
fn timed_writes_move_everything_to_a_slow_reader() {
    watchdog(|| {
        let (mut reader, writer) = PipeOptions::new()
            .overlapped_writer(true)
            .capacity(4096)
            .create()
            .unwrap();
        writer.set_write_timeout(Some(TIMEOUT)).unwrap();
        let data = pattern(BIG);
        let expected = data.clone();
        let writing = thread::spawn(move || {
            let (mut written, mut timeouts) = (0, 0);
            while written < data.len() {
                match (&writer).write(&data[written..]) {
                    Ok(n) => written += n,
                    Err(err) if err.kind() == io::ErrorKind::TimedOut => timeouts += 1,
                    Err(err) => panic!("{err}"),
                }
            }
            timeouts
        });
        // Slow enough for writes to time out now and then, with reads that
        // take part of a pending write: no byte may be lost or doubled.
        let mut received = Vec::new();
        let mut buf = [0; 1000];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
            if received.len() % 50_000 < 1000 {
                thread::sleep(TIMEOUT + Duration::from_millis(50));
            }
        }
        let timeouts = writing.join().unwrap();
        assert!(timeouts > 0, "no write timed out; the test proved nothing");
        assert_eq!(received.len(), expected.len());
        assert!(
            received == expected,
            "bytes were lost, doubled or reordered"
        );
    });
}

#[test]
fn synchronous_ends_of_every_kind_time_out_and_a_zero_duration_is_refused() {
    let (sync_reader, sync_writer) = pipe().unwrap();
    let (nt_sync_reader, nt_writer) = PipeOptions::new().overlapped_writer(true).create().unwrap();
    let (nt_reader, nt_sync_writer) = PipeOptions::new().overlapped_reader(true).create().unwrap();
    for reader in [&sync_reader, &nt_sync_reader] {
        reader.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(reader.read_timeout().unwrap(), Some(TIMEOUT));
        let started = Instant::now();
        let err = { reader }.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= TIMEOUT, "fired early");
    }
    for writer in [&sync_writer, &nt_sync_writer] {
        writer.set_write_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(writer.write_timeout().unwrap(), Some(TIMEOUT));
        let err = loop {
            if let Err(err) = { writer }.write(&[7; 4096]) {
                break err;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    }
    drop((nt_writer, nt_reader));
    // None is always accepted: it is the default.
    sync_reader.set_read_timeout(None).unwrap();
    sync_writer.set_write_timeout(None).unwrap();

    let (reader, writer) = PipeOptions::new()
        .overlapped_reader(true)
        .overlapped_writer(true)
        .create()
        .unwrap();
    let err = reader.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = writer.set_write_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    reader.set_read_timeout(Some(TIMEOUT)).unwrap();
    writer.set_write_timeout(Some(TIMEOUT)).unwrap();
}

#[test]
fn packet_mode_and_resizing_are_unsupported_and_say_what_to_do() {
    for overlapped_reader in [false, true] {
        let err = PipeOptions::new()
            .overlapped_reader(overlapped_reader)
            .packet_mode(true)
            .create()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("packet mode"), "{err}");
    }
    for (name, reader, writer) in every_kind(None) {
        for err in [
            reader.set_capacity(1 << 20).unwrap_err(),
            writer.set_capacity(1 << 20).unwrap_err(),
        ] {
            assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{name}: {err}");
            assert!(err.to_string().contains("PipeOptions::capacity"), "{err}");
        }
        assert_eq!(reader.capacity().unwrap(), 65536, "{name}: unchanged");
    }
}

/// Creating and dropping 2000 NT pipes of every kind leaks no handle. The
/// count is taken in a child process of its own (the `count-handles`
/// helper), where no other test opens or closes handles meanwhile.
/// `GetProcessHandleCount` reports 0 under wine 8, so there only the
/// handle-slot measure means something; the test says which it checked.
#[test]
fn creating_and_dropping_nt_pipes_leaks_no_handle() {
    watchdog(|| {
        let output = helper_child(
            "count-handles",
            Stdio::null(),
            Stdio::piped(),
            Stdio::null(),
        )
        .output()
        .unwrap();
        assert!(output.status.success(), "{:?}", output.status);
        let report =
            String::from_utf8(between(&output.stdout, b"<begin>", b"<end>").to_vec()).unwrap();
        let numbers: Vec<usize> = report.split(' ').map(|n| n.parse().unwrap()).collect();
        let [count_before, count_after, slot_before, slot_after] = numbers[..] else {
            panic!("report: {report}");
        };
        if count_before == 0 && count_after == 0 {
            eprintln!("GetProcessHandleCount reports 0 (wine): only handle slots were checked");
        } else {
            // One leaked handle per pipe would be 2000 more.
            assert!(
                count_after <= count_before + 10,
                "{count_before} handles before, {count_after} after 2000 pipes"
            );
        }
        assert!(
            slot_after <= slot_before + 64,
            "the next free handle slot moved from {slot_before} to {slot_after} over 2000 pipes"
        );
    });
}

// ---------------------------------------------------------------------------
// PIPE_NOWAIT as Windows has it: all-or-nothing writes, and a switch that
// unread data refuses

/// `PIPE_NOWAIT` takes a write only if all of it fits; pipekit writes less
/// so that a write that can make progress does: 4× the capacity into an
/// empty pipe moves bytes, and big writes go on until the pipe is full to
/// the byte.
#[test]
fn a_nonblocking_write_larger_than_the_pipe_moves_what_fits() {
    watchdog(|| {
        for (name, mut reader, writer) in every_kind(Some(64 * 1024)) {
            writer.set_nonblocking(true).unwrap();
            let capacity = writer.capacity().unwrap();
            let data = pattern(4 * capacity);
            let n = (&writer)
                .write(&data)
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            assert!(n > capacity / 2 && n <= capacity, "{name}: wrote {n}");
            // Writes of what is left fill the pipe exactly.
            let mut written = n;
            loop {
                match (&writer).write(&data[written..]) {
                    Ok(n) => written += n,
                    Err(err) => {
                        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{name}: {err}");
                        break;
                    }
                }
            }
            assert_eq!(written, capacity, "{name}");
            drop(writer);
            let mut received = Vec::new();
            reader.read_to_end(&mut received).unwrap();
            assert!(received == data[..written], "{name}: bytes lost or changed");
        }
    });
}

/// Switching an end to `PIPE_NOWAIT` while the pipe holds unread data
/// fails on Windows with `ERROR_PIPE_BUSY`; where it fails, the message says
/// why. Wine accepts the switch, so there it is checked that it worked.
#[test]
fn switching_to_nonblocking_with_unread_data_works_or_says_why() {
    let (reader, writer) = pipe().unwrap();
    (&writer).write_all(b"unread").unwrap();
    for result in [reader.set_nonblocking(true), writer.set_nonblocking(true)] {
        match result {
            Ok(()) => {}
            Err(err) => {
                assert!(err.to_string().contains("unread data"), "{err}");
                return;
            }
        }
    }
    assert!(reader.nonblocking().unwrap() && writer.nonblocking().unwrap());
}

// ---------------------------------------------------------------------------
// The communicate engine and PIPE_NOWAIT: served in its own mode, never
// switched

/// Runs `exchange` while another thread asks `clone` for its mode again and
/// again; returns how many times it saw it blocking (`PIPE_WAIT`).
fn blocking_sightings<T>(
    clone: impl Fn() -> bool + Sync,
    exchange: impl FnOnce() -> T,
) -> (T, usize) {
    let done = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut seen = 0;
            while !done.load(Ordering::SeqCst) {
                if !clone() {
                    seen += 1;
                }
            }
            seen
        });
        let result = exchange();
        done.store(true, Ordering::SeqCst);
        (result, watcher.join().unwrap())
    })
}

/// An input the caller made nonblocking, with nobody reading until the
/// deadline: its mode never changes (a clone sees `PIPE_NOWAIT` throughout
/// and after), the deadline holds, and a resumed exchange delivers every
/// byte once.
#[test]
fn a_nonblocking_input_keeps_its_mode_through_an_exchange() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        writer.set_nonblocking(true).unwrap();
        let clone = writer.try_clone().unwrap();
        let data = pattern(1 << 20);
        let timeout = Duration::from_millis(300);
        let mut communicator = pipekit::communicate::Communicator::new();
        communicator.input(writer, &data).timeout(timeout);
        let started = Instant::now();
        let (result, seen) =
            blocking_sightings(|| clone.nonblocking().unwrap(), || communicator.run());
        let err = result.unwrap_err();
        assert!(
            pipekit::communicate::DeadlinePassed::from_error(&err).is_some(),
            "{err}"
        );
        assert!(started.elapsed() < timeout + Duration::from_secs(10));
        assert_eq!(seen, 0, "the engine switched the shared mode");
        assert!(clone.nonblocking().unwrap(), "the mode did not come back");
        let written = communicator.bytes_written(0);
        assert!(written > 0 && written < data.len() as u64, "{written}");
        let collector = util::collect(reader);
        communicator
            .timeout(Duration::from_secs(3600))
            .run()
            .unwrap();
        drop((communicator, clone));
        util::assert_same(&collector.join().unwrap(), &data);
    });
}

/// The same for an output: a nonblocking reader with bytes left unread at
/// the deadline keeps its mode, and the rest arrives on resuming.
#[test]
fn a_nonblocking_output_keeps_its_mode_through_an_exchange() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        reader.set_nonblocking(true).unwrap();
        let clone = reader.try_clone().unwrap();
        (&writer).write_all(b"before").unwrap();
        let mut sink = Vec::new();
        let timeout = Duration::from_millis(300);
        let mut communicator = pipekit::communicate::Communicator::new();
        communicator.output(reader, &mut sink).timeout(timeout);
        let (result, seen) =
            blocking_sightings(|| clone.nonblocking().unwrap(), || communicator.run());
        let err = result.unwrap_err();
        assert!(
            pipekit::communicate::DeadlinePassed::from_error(&err).is_some(),
            "{err}"
        );
        assert_eq!(seen, 0, "the engine switched the shared mode");
        assert!(clone.nonblocking().unwrap());
        (&writer).write_all(b" and after").unwrap();
        drop(writer);
        communicator
            .timeout(Duration::from_secs(3600))
            .run()
            .unwrap();
        drop(communicator);
        assert_eq!(sink, b"before and after");
    });
}

/// A writer made from `ChildStdin` (which std opens without
/// `FILE_READ_ATTRIBUTES`) answers `nonblocking()` and `capacity()`, and
/// reports the mode it was set to.
#[test]
fn a_writer_from_child_stdin_answers_mode_and_capacity() {
    watchdog(|| {
        let mut child = helper_child("check-stdin", Stdio::piped(), Stdio::null(), Stdio::null())
            .spawn()
            .unwrap();
        let writer = PipeWriter::from(child.stdin.take().unwrap());
        assert!(!writer.nonblocking().unwrap());
        let capacity = writer.capacity().unwrap();
        assert!(capacity > 0, "{capacity}");
        writer.set_nonblocking(true).unwrap();
        assert!(writer.nonblocking().unwrap());
        assert!(writer.try_clone().unwrap().nonblocking().unwrap());
        writer.set_nonblocking(false).unwrap();
        assert!(!writer.nonblocking().unwrap());
        drop(writer);
        assert!(child.wait().unwrap().success());
    });
}

/// A reader made from `ChildStdout` (which std opens without
/// `FILE_WRITE_ATTRIBUTES`) can be made nonblocking and back.
#[test]
fn a_reader_from_child_stdout_can_be_made_nonblocking() {
    watchdog(|| {
        let mut child = helper_child("check-stdin", Stdio::piped(), Stdio::piped(), Stdio::null())
            .spawn()
            .unwrap();
        let mut reader = PipeReader::from(child.stdout.take().unwrap());
        reader.set_nonblocking(true).unwrap();
        assert!(reader.nonblocking().unwrap());
        reader.set_nonblocking(false).unwrap();
        assert!(!reader.nonblocking().unwrap());
        drop(child.stdin.take());
        let mut output = Vec::new();
        reader.read_to_end(&mut output).unwrap();
        assert_eq!(between(&output, b"<begin>", b"<end>"), b"0 bytes, differs");
        assert!(child.wait().unwrap().success());
    });
}

/// A child given overlapped ends as its stdin and stdout receives
/// synchronous handles (it asks for its own handles' mode), and the bytes
/// flow through both.
#[test]
fn a_child_given_overlapped_ends_gets_synchronous_handles() {
    watchdog(|| {
        let options = || {
            PipeOptions::new()
                .overlapped_reader(true)
                .overlapped_writer(true)
                .create()
                .unwrap()
        };
        let ((in_reader, in_writer), (mut out_reader, out_writer)) = (options(), options());
        let mut command = helper_child(
            "stdio-mode",
            Stdio::from(in_reader),
            Stdio::from(out_writer),
            Stdio::piped(),
        );
        let mut child = command.spawn().unwrap();
        drop(command);
        (&in_writer).write_all(b"through both relays").unwrap();
        drop(in_writer);
        let mut output = Vec::new();
        out_reader.read_to_end(&mut output).unwrap();
        let mut report = Vec::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut report)
            .unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(between(&report, b"<begin>", b"<end>"), b"sync sync");
        assert!(
            find(&output, b"through both relays").is_some(),
            "{}",
            String::from_utf8_lossy(&output)
        );
    });
}

/// A named pipe whose server has disconnected its client (a foreign pipe
/// pipekit did not make) fails reads with `ERROR_PIPE_NOT_CONNECTED`: end of
/// file, as a pipe whose writers are gone.
#[test]
fn a_disconnected_named_pipe_reads_as_end_of_file() {
    watchdog(|| {
        let (server, _client) = named_pipe(true, 4096, 4096);
        // SAFETY: `server` is an open server end of a named pipe.
        let disconnected = unsafe {
            windows_sys::Win32::System::Pipes::DisconnectNamedPipe(server.as_raw_handle() as HANDLE)
        };
        assert_ne!(disconnected, 0, "{}", io::Error::last_os_error());
        let reader = PipeReader::from(server);
        assert_eq!((&reader).read(&mut [0; 8]).unwrap(), 0);
    });
}

/// A sink that fails every write.
struct FailingSink;

impl Write for FailingSink {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::Other, "the sink failed"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A read that completes as the exchange stops at its deadline (an
/// overlapped read started with data waiting completes at once, and the
/// deadline has passed before the engine looks again) still goes to its
/// sink, and the sink's error ends the exchange instead of being thrown
/// away behind a resumable deadline.
#[test]
fn a_sink_error_at_the_deadline_is_not_thrown_away() {
    watchdog(|| {
        let (reader, writer) = PipeOptions::new().overlapped_reader(true).create().unwrap();
        (&writer).write_all(b"data").unwrap();
        let mut communicator = pipekit::communicate::Communicator::new();
        communicator
            .output(reader, pipekit::communicate::Sink::writer(FailingSink))
            .timeout(Duration::from_nanos(1));
        let err = communicator.run().unwrap_err();
        assert!(
            pipekit::communicate::DeadlinePassed::from_error(&err).is_none(),
            "the sink's error was dropped for the deadline: {err}"
        );
        assert!(err.to_string().contains("the sink failed"), "{err}");
        drop(writer);
    });
}

/// A writer made from `ChildStdin` that the caller made nonblocking feeds a
/// child through the engine, which serves it in its own mode: every byte
/// arrives, and the exchange ends when the child has read them, before its
/// deadline.
#[test]
fn a_nonblocking_child_stdin_feeds_the_child_in_its_own_mode() {
    watchdog(|| {
        let mut child = helper_child("check-stdin", Stdio::piped(), Stdio::piped(), Stdio::null())
            .spawn()
            .unwrap();
        let writer = PipeWriter::from(child.stdin.take().unwrap());
        writer.set_nonblocking(true).unwrap();
        let data = pattern(BIG);
        let mut output = Vec::new();
        let mut communicator = pipekit::communicate::Communicator::new();
        communicator
            .input(writer, &data)
            .output(PipeReader::from(child.stdout.take().unwrap()), &mut output)
            .timeout(Duration::from_secs(50));
        communicator.run().unwrap();
        drop(communicator);
        assert!(child.wait().unwrap().success());
        let report = between(&output, b"<begin>", b"<end>");
        assert_eq!(report, format!("{BIG} bytes, same").as_bytes());
    });
}
