//! Every conversion keeps the same fd or handle (no copy) and leaves it
//! working. Conversions with child processes are in `child.rs`.

mod util;

use std::io::{Read, Write};

use pipekit::{pipe, PipeReader, PipeWriter};
use util::watchdog;

/// Asserts that `reader` and `writer` still form one working pipe.
#[track_caller]
fn assert_connected(reader: &PipeReader, writer: &PipeWriter) {
    let mut w = writer;
    w.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    let mut r = reader;
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[cfg(unix)]
mod unix {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

    #[test]
    fn owned_fd_round_trip_keeps_the_fd() {
        watchdog(|| {
            let (reader, writer) = pipe().unwrap();
            let (rfd, wfd) = (reader.as_raw_fd(), writer.as_raw_fd());
            assert_eq!(reader.as_fd().as_raw_fd(), rfd);

            let reader = PipeReader::from(OwnedFd::from(reader));
            let writer = PipeWriter::from(OwnedFd::from(writer));
            assert_eq!((reader.as_raw_fd(), writer.as_raw_fd()), (rfd, wfd));
            assert_connected(&reader, &writer);
        });
    }

    #[test]
    fn raw_fd_round_trip_keeps_the_fd() {
        watchdog(|| {
            let (reader, writer) = pipe().unwrap();
            let rfd = reader.into_raw_fd();
            let wfd = writer.into_raw_fd();
            // SAFETY: both fds were just released by `into_raw_fd`, so each
            // is open and owned by nothing else.
            #[allow(unsafe_code)]
            let (reader, writer) =
                unsafe { (PipeReader::from_raw_fd(rfd), PipeWriter::from_raw_fd(wfd)) };
            assert_eq!((reader.as_raw_fd(), writer.as_raw_fd()), (rfd, wfd));
            assert_connected(&reader, &writer);
        });
    }

    #[test]
    fn ends_are_close_on_exec() {
        let (reader, writer) = pipe().unwrap();
        let clones = (reader.try_clone().unwrap(), writer.try_clone().unwrap());
        for fd in [
            reader.as_raw_fd(),
            writer.as_raw_fd(),
            clones.0.as_raw_fd(),
            clones.1.as_raw_fd(),
        ] {
            // SAFETY: F_GETFD on an fd this test owns reads its flags only.
            #[allow(unsafe_code)]
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert!(flags >= 0);
            assert_ne!(flags & libc::FD_CLOEXEC, 0, "fd {fd} is inheritable");
        }
        // Duplicates never take the numbers of the standard streams.
        assert!(clones.0.as_raw_fd() > 2 && clones.1.as_raw_fd() > 2);
    }
}

#[cfg(windows)]
mod windows {
    use super::*;
    use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, IntoRawHandle, OwnedHandle};

    #[test]
    fn owned_handle_round_trip_keeps_the_handle() {
        watchdog(|| {
            let (reader, writer) = pipe().unwrap();
            let (rh, wh) = (
                reader.as_raw_handle() as usize,
                writer.as_raw_handle() as usize,
            );
            assert_eq!(reader.as_handle().as_raw_handle() as usize, rh);

            let reader = PipeReader::from(OwnedHandle::from(reader));
            let writer = PipeWriter::from(OwnedHandle::from(writer));
            assert_eq!(
                (
                    reader.as_raw_handle() as usize,
                    writer.as_raw_handle() as usize
                ),
                (rh, wh)
            );
            assert_connected(&reader, &writer);
        });
    }

    #[test]
    fn raw_handle_round_trip_keeps_the_handle() {
        watchdog(|| {
            let (reader, writer) = pipe().unwrap();
            let rh = reader.into_raw_handle();
            let wh = writer.into_raw_handle();
            let (rv, wv) = (rh as usize, wh as usize);
            // SAFETY: both handles were just released by `into_raw_handle`,
            // so each is open and owned by nothing else.
            #[allow(unsafe_code)]
            let (reader, writer) = unsafe {
                (
                    PipeReader::from_raw_handle(rh),
                    PipeWriter::from_raw_handle(wh),
                )
            };
            assert_eq!(
                (
                    reader.as_raw_handle() as usize,
                    writer.as_raw_handle() as usize
                ),
                (rv, wv)
            );
            assert_connected(&reader, &writer);
        });
    }
}

/// `std::io::PipeReader`/`PipeWriter` exist from Rust 1.87; build.rs sets
/// `pipekit_std_pipe` when the compiler has them.
#[cfg(pipekit_std_pipe)]
mod std_pipe {
    use super::*;

    #[test]
    fn std_pipe_ends_convert_both_ways() {
        watchdog(|| {
            // std's ends become ours and still work...
            let (std_reader, std_writer) = std::io::pipe().unwrap();
            let reader = PipeReader::from(std_reader);
            let writer = PipeWriter::from(std_writer);
            assert_connected(&reader, &writer);

            // ...and ours become std's and still work.
            let mut std_reader = std::io::PipeReader::from(reader);
            let mut std_writer = std::io::PipeWriter::from(writer);
            std_writer.write_all(b"back").unwrap();
            drop(std_writer);
            let mut out = Vec::new();
            std_reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, b"back");
        });
    }
}
