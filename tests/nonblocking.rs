//! Nonblocking mode, set at creation or later, on each end.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::thread;

use pipekit::{pipe, PipeOptions, PipeWriter};
use util::{pattern, watchdog};

/// Writes `data` chunk by chunk into a nonblocking writer until the pipe is
/// full; returns how many bytes went in. Panics if the pipe never fills.
fn fill(writer: &PipeWriter, data: &[u8]) -> usize {
    let mut written = 0;
    for chunk in data.chunks(4096) {
        match (&*writer).write(chunk) {
            Ok(n) => {
                assert!(n > 0, "a nonblocking write returned Ok(0)");
                written += n;
                if n < chunk.len() {
                    break;
                }
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) => panic!("write failed: {err}"),
        }
    }
    assert!(written < data.len(), "the pipe never filled");
    // Full now: the next write fails at once, without moving a byte.
    let err = (&*writer).write(&data[written..]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    written
}

#[test]
fn empty_read_would_block_and_leaves_later_data_intact() {
    watchdog(|| {
        let (mut reader, mut writer) = pipe().unwrap();
        reader.set_nonblocking(true).unwrap();
        let err = reader.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");

        writer.write_all(b"abc").unwrap();
        let mut buf = [0; 16];
        assert_eq!(reader.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    });
}

#[test]
fn full_write_would_block_and_everything_written_arrives() {
    watchdog(|| {
        let (mut reader, writer) = pipe().unwrap();
        writer.set_nonblocking(true).unwrap();
        let data = pattern(16 << 20);
        let written = fill(&writer, &data);
        drop(writer);
        let mut received = Vec::new();
        reader.read_to_end(&mut received).unwrap();
        assert_eq!(received.len(), written);
        assert!(received == data[..written], "bytes were lost or changed");
    });
}

#[test]
fn end_of_file_and_broken_pipe_are_unchanged_by_nonblocking_mode() {
    watchdog(|| {
        let (mut reader, mut writer) = PipeOptions::new().nonblocking(true).create().unwrap();
        writer.write_all(b"last").unwrap();
        drop(writer);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"last");
        assert_eq!(reader.read(&mut [0; 4]).unwrap(), 0, "EOF must stay Ok(0)");

        let (reader, mut writer) = PipeOptions::new().nonblocking(true).create().unwrap();
        drop(reader);
        let err = writer.write(b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    });
}

#[test]
fn switching_back_to_blocking_makes_reads_wait_again() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        assert!(!reader.nonblocking().unwrap());
        reader.set_nonblocking(true).unwrap();
        assert!(reader.nonblocking().unwrap());
        reader.set_nonblocking(false).unwrap();
        assert!(!reader.nonblocking().unwrap());

        // A blocking read of an empty pipe waits for the bytes instead of
        // failing with WouldBlock, whichever thread gets there first.
        let reading = thread::spawn(move || {
            let mut buf = [0; 5];
            (&reader).read_exact(&mut buf).map(|()| buf)
        });
        (&writer).write_all(b"later").unwrap();
        assert_eq!(&reading.join().unwrap().unwrap(), b"later");
    });
}

#[test]
fn options_set_each_end_separately() {
    let (reader, writer) = PipeOptions::new()
        .reader_nonblocking(true)
        .create()
        .unwrap();
    assert!(reader.nonblocking().unwrap());
    assert!(!writer.nonblocking().unwrap());

    let (reader, writer) = PipeOptions::new()
        .writer_nonblocking(true)
        .create()
        .unwrap();
    assert!(!reader.nonblocking().unwrap());
    assert!(writer.nonblocking().unwrap());

    let (reader, writer) = PipeOptions::new().nonblocking(true).create().unwrap();
    assert!(reader.nonblocking().unwrap() && writer.nonblocking().unwrap());

    let (reader, writer) = PipeOptions::new().create().unwrap();
    assert!(!reader.nonblocking().unwrap() && !writer.nonblocking().unwrap());
}

#[test]
fn the_mode_is_shared_with_clones() {
    // Documented: the mode belongs to the end, not to one handle to it.
    let (reader, _writer) = pipe().unwrap();
    let clone = reader.try_clone().unwrap();
    reader.set_nonblocking(true).unwrap();
    assert!(clone.nonblocking().unwrap());
    let err = (&clone).read(&mut [0; 1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
}

#[cfg(unix)]
#[test]
fn the_getter_reports_the_real_file_status_flag() {
    use std::os::fd::AsRawFd;
    let (reader, writer) = PipeOptions::new()
        .reader_nonblocking(true)
        .create()
        .unwrap();
    for (fd, expected) in [(reader.as_raw_fd(), true), (writer.as_raw_fd(), false)] {
        // SAFETY: F_GETFL only reads the flags of an fd this test owns.
        #[allow(unsafe_code)]
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert!(flags >= 0);
        assert_eq!(flags & libc::O_NONBLOCK != 0, expected, "fd {fd}");
    }
}
