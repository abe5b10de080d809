//! `pipekit::splice::copy` and `copy_buffered`: on every path (splice, the
//! fallback loop, the generic `Read`/`Write` loop) every byte arrives once,
//! in order, and the count returned is exact.
//!
//! The data is `util::pattern`, which has no power-of-two period, so a lost,
//! repeated or reordered chunk shows as a mismatch. On Linux, the tests that
//! name a fallback force it: an `O_APPEND` file (splice refused with
//! `EINVAL`), a regular file as the source (never spliced into a pipe), a
//! `Vec` (no fd), a nonblocking end (waited for with `poll`). The last
//! fallback, `splice` forbidden (`EPERM` under seccomp), has its own test
//! binary: `tests/copy_without_splice.rs`.

mod util;

use std::fs::OpenOptions;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};

use pipekit::pipe;
use pipekit::splice::{copy, copy_buffered};
use util::{assert_same, collect, feed, pattern, watchdog, TempFile};

/// Large enough for hundreds of splices and buffer refills.
const LARGE: usize = 24 << 20;

fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn pipe_to_file() {
    watchdog(|| {
        let data = pattern(LARGE);
        let (reader, writer) = pipe().unwrap();
        let temp = TempFile::new("pipe-file");
        let file = temp.create();
        let feeder = feed(writer, &data);
        assert_eq!(copy(&reader, &file).unwrap(), LARGE as u64);
        feeder.join().unwrap();
        assert_same(&temp.read(), &data);
    });
}

#[test]
fn file_to_pipe() {
    watchdog(|| {
        // On Linux a file is never spliced into a pipe: this is the loop.
        let data = pattern(LARGE);
        let temp = TempFile::new("file-pipe");
        let file = temp.with(&data);
        let (reader, writer) = pipe().unwrap();
        let collector = collect(reader);
        // Both owned: copy closes the writer, so the collector sees EOF.
        assert_eq!(copy(file, writer).unwrap(), LARGE as u64);
        assert_same(&collector.join().unwrap(), &data);
    });
}

#[test]
fn pipe_to_pipe() {
    watchdog(|| {
        let data = pattern(LARGE);
        let (from_reader, from_writer) = pipe().unwrap();
        let (to_reader, to_writer) = pipe().unwrap();
        let feeder = feed(from_writer, &data);
        let collector = collect(to_reader);
        assert_eq!(copy(&from_reader, &to_writer).unwrap(), LARGE as u64);
        drop(to_writer);
        feeder.join().unwrap();
        assert_same(&collector.join().unwrap(), &data);
    });
}

#[test]
fn pipe_to_tcp_socket_and_back() {
    watchdog(|| {
        let data = pattern(LARGE / 4);

        let (reader, writer) = pipe().unwrap();
        let (ours, theirs) = tcp_pair();
        let feeder = feed(writer, &data);
        let collector = collect(theirs);
        assert_eq!(copy(&reader, &ours).unwrap(), data.len() as u64);
        drop(ours);
        feeder.join().unwrap();
        assert_same(&collector.join().unwrap(), &data);

        let (reader, writer) = pipe().unwrap();
        let (ours, theirs) = tcp_pair();
        let sender = feed(ours, &data);
        let collector = collect(reader);
        assert_eq!(copy(&theirs, writer).unwrap(), data.len() as u64);
        sender.join().unwrap();
        assert_same(&collector.join().unwrap(), &data);
    });
}

#[cfg(unix)]
#[test]
fn pipe_to_unix_socket_and_back() {
    use std::os::unix::net::UnixStream;
    watchdog(|| {
        let data = pattern(LARGE / 4);

        let (reader, writer) = pipe().unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let feeder = feed(writer, &data);
        let collector = collect(theirs);
        assert_eq!(copy(&reader, &ours).unwrap(), data.len() as u64);
        drop(ours);
        feeder.join().unwrap();
        assert_same(&collector.join().unwrap(), &data);

        let (reader, writer) = pipe().unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let sender = feed(ours, &data);
        let collector = collect(reader);
        assert_eq!(copy(&theirs, writer).unwrap(), data.len() as u64);
        sender.join().unwrap();
        assert_same(&collector.join().unwrap(), &data);
    });
}

/// Overwrites the start of the file at `path` with `data`, in place (the
/// same pages of the page cache).
fn overwrite(path: &std::path::Path, data: &[u8]) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all(data)
        .unwrap();
}

#[test]
fn a_file_changed_after_the_copy_does_not_change_what_was_copied() {
    watchdog(|| {
        // The pipe holds the bytes as they were when copy ran, even if the
        // file changes before they are read: a file must not be spliced
        // into a pipe, which would pass references to the page cache.
        // One page, which fits in an unread pipe even when its capacity is
        // cut to a single page (over pipe-user-pages-soft).
        let temp = TempFile::new("changed");
        let before = vec![b'a'; 4096];
        let after = vec![b'b'; before.len()];
        let (reader, writer) = pipe().unwrap();
        assert_eq!(
            copy(temp.with(&before), &writer).unwrap(),
            before.len() as u64
        );
        drop(writer);
        overwrite(&temp.0, &after);
        let received = collect(reader).join().unwrap();
        assert!(received == before, "the pipe saw the later change");
    });
}

/// The positive control of the test above: the same steps with a real
/// splice of the file into the pipe do show the later change, so that test
/// is able to see the hazard it guards against.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_file_spliced_into_a_pipe_and_then_changed_shows_the_change() {
    use pipekit::splice::SpliceFlags;
    watchdog(|| {
        let temp = TempFile::new("changed-control");
        let before = vec![b'a'; 4096];
        let after = vec![b'b'; before.len()];
        let file = temp.with(&before);
        let (reader, writer) = pipe().unwrap();
        let mut moved = 0;
        while moved < before.len() {
            let n = writer
                .splice_from(&file, before.len() - moved, SpliceFlags::empty())
                .unwrap();
            assert_ne!(n, 0, "end of file after {moved} bytes");
            moved += n;
        }
        drop(writer);
        overwrite(&temp.0, &after);
        let received = collect(reader).join().unwrap();
        assert!(
            received == after,
            "the pipe did not see the later change: the control is void"
        );
    });
}

#[test]
fn file_to_file() {
    watchdog(|| {
        // Neither side a pipe: the loop.
        let data = pattern(LARGE / 4);
        let source = TempFile::new("source");
        let sink = TempFile::new("sink");
        assert_eq!(
            copy(source.with(&data), sink.create()).unwrap(),
            data.len() as u64
        );
        assert_same(&sink.read(), &data);
    });
}

#[test]
fn empty_input_copies_nothing() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        drop(writer);
        let temp = TempFile::new("empty");
        assert_eq!(copy(&reader, temp.create()).unwrap(), 0);
        assert!(temp.read().is_empty());

        let (reader, writer) = pipe().unwrap();
        drop(writer);
        let mut out = Vec::new();
        assert_eq!(copy_buffered(&reader, &mut out).unwrap(), 0);
        assert!(out.is_empty(), "{} bytes out of nothing", out.len());
    });
}

#[test]
fn copy_buffered_into_memory_and_from_memory() {
    watchdog(|| {
        let data = pattern(LARGE);

        // A pipe into a Vec, which has no fd.
        let (reader, writer) = pipe().unwrap();
        let feeder = feed(writer, &data);
        let mut received = Vec::new();
        assert_eq!(copy_buffered(&reader, &mut received).unwrap(), LARGE as u64);
        feeder.join().unwrap();
        assert_same(&received, &data);

        // A slice, which has no fd, into a pipe.
        let (reader, writer) = pipe().unwrap();
        let collector = collect(reader);
        assert_eq!(copy_buffered(&data[..], writer).unwrap(), LARGE as u64);
        assert_same(&collector.join().unwrap(), &data);
    });
}

/// A reader that returns `Interrupted` before every other read, and small,
/// odd-sized chunks.
struct Flaky<'a> {
    data: &'a [u8],
    interrupt: bool,
}

impl Read for Flaky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::Error::from(ErrorKind::Interrupted));
        }
        let n = buf.len().min(self.data.len()).min(7919);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn copy_buffered_retries_interrupted_reads() {
    watchdog(|| {
        let data = pattern(1 << 20);
        let mut out = Vec::new();
        let reader = Flaky {
            data: &data,
            interrupt: false,
        };
        assert_eq!(copy_buffered(reader, &mut out).unwrap(), data.len() as u64);
        assert_same(&out, &data);
    });
}

#[test]
fn copying_into_a_pipe_without_readers_is_a_broken_pipe() {
    watchdog(|| {
        // From a pipe (splice on Linux).
        let (reader, writer) = pipe().unwrap();
        let feeder = feed(writer, &pattern(1 << 20));
        let (dead_reader, dead_writer) = pipe().unwrap();
        drop(dead_reader);
        let err = copy(&reader, &dead_writer).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
        drop(reader);
        let _ = feeder.join(); // its write may fail too, now

        // From a file (the loop).
        let temp = TempFile::new("broken");
        let (dead_reader, dead_writer) = pipe().unwrap();
        drop(dead_reader);
        let err = copy(temp.with(b"unread"), &dead_writer).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");

        // Through copy_buffered.
        let (dead_reader, dead_writer) = pipe().unwrap();
        drop(dead_reader);
        let err = copy_buffered(&b"unread"[..], &dead_writer).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    });
}

#[cfg(unix)]
mod unix {
    //! Paths that only exist where `copy` works on file descriptors.

    use super::*;
    use std::fs::{self, File};
    use std::os::fd::{AsFd, BorrowedFd};
    use std::thread;

    use pipekit::{PipeOptions, PipeReader, PipeWriter};

    #[test]
    fn pipe_to_an_append_only_file() {
        watchdog(|| {
            // Linux refuses to splice into O_APPEND (EINVAL): the loop
            // takes over, with a buffer the size of the pipe.
            for capacity in [None, Some(1 << 20)] {
                let data = pattern(LARGE);
                let mut options = PipeOptions::new();
                if let Some(bytes) = capacity {
                    if cfg!(any(target_os = "linux", target_os = "android")) {
                        options.capacity(bytes);
                    }
                }
                let (reader, writer) = options.create().unwrap();
                let temp = TempFile::new("append");
                temp.with(b"header:");
                let feeder = feed(writer, &data);
                assert_eq!(copy(&reader, temp.append()).unwrap(), LARGE as u64);
                feeder.join().unwrap();
                let content = temp.read();
                assert_eq!(&content[..7], b"header:");
                assert_same(&content[7..], &data);
            }
        });
    }

    /// Data handed over in rounds: each round's bytes are written only after
    /// the previous round's came out at the other end, so the copy finds its
    /// nonblocking source empty again and again.
    fn copy_from_a_nonblocking_source(sink_is_append_file: bool) {
        let data = pattern(4 << 20);
        let (reader, mut writer) = pipe().unwrap();
        reader.set_nonblocking(true).unwrap();
        let (mut out_reader, out_writer) = pipe().unwrap();
        let temp = TempFile::new("nonblocking-source");
        temp.create();
        let copier = if sink_is_append_file {
            let sink = temp.append();
            thread::spawn(move || copy(&reader, sink))
        } else {
            thread::spawn(move || copy(&reader, out_writer))
        };
        let mut seen = 0;
        for chunk in data.chunks(100_003) {
            writer.write_all(chunk).unwrap();
            seen += chunk.len();
            if sink_is_append_file {
                while fs::metadata(&temp.0).unwrap().len() < seen as u64 {
                    // A copier that failed would leave this loop spinning
                    // until the watchdog fires: fail at once instead.
                    if copier.is_finished() {
                        panic!("the copy ended early: {:?}", copier.join());
                    }
                    thread::yield_now();
                }
            } else {
                let mut got = vec![0; chunk.len()];
                out_reader.read_exact(&mut got).unwrap();
                assert_same(&got, chunk);
            }
        }
        drop(writer);
        assert_eq!(copier.join().unwrap().unwrap(), seen as u64);
        if sink_is_append_file {
            assert_same(&temp.read(), &data);
        } else {
            assert_eq!(out_reader.read(&mut [0; 1]).unwrap(), 0);
        }
    }

    #[test]
    fn a_nonblocking_empty_source_is_waited_for() {
        watchdog(|| copy_from_a_nonblocking_source(false));
    }

    #[test]
    fn a_nonblocking_empty_source_is_waited_for_in_the_loop() {
        watchdog(|| copy_from_a_nonblocking_source(true));
    }

    /// A nonblocking pipe as the sink, read in small bites, so that it is
    /// full most of the time: the copy must wait for room, not fail.
    fn copy_into_a_nonblocking_sink(source_is_file: bool) {
        let data = pattern(LARGE / 2);
        let (reader, sink) = pipe().unwrap();
        sink.set_nonblocking(true).unwrap();
        let temp = TempFile::new("nonblocking-sink");
        let copier = if source_is_file {
            let file = temp.with(&data);
            thread::spawn(move || copy(file, sink))
        } else {
            let (source, writer) = pipe().unwrap();
            let feeder = feed(writer, &data);
            thread::spawn(move || {
                let copied = copy(source, sink);
                feeder.join().unwrap();
                copied
            })
        };
        let mut received = Vec::new();
        let mut bite = [0; 4093];
        loop {
            match (&reader).read(&mut bite).unwrap() {
                0 => break,
                n => received.extend_from_slice(&bite[..n]),
            }
        }
        assert_eq!(copier.join().unwrap().unwrap(), data.len() as u64);
        assert_same(&received, &data);
    }

    #[test]
    fn a_nonblocking_full_sink_is_waited_for() {
        watchdog(|| copy_into_a_nonblocking_sink(false));
    }

    #[test]
    fn a_nonblocking_full_sink_is_waited_for_in_the_loop() {
        watchdog(|| copy_into_a_nonblocking_sink(true));
    }

    /// A writer with an fd that buffers, as `Stdout` does.
    struct Buffering {
        file: File,
        pending: Vec<u8>,
    }

    impl Write for Buffering {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.pending.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            self.file.write_all(&self.pending)?;
            self.pending.clear();
            Ok(())
        }
    }

    impl AsFd for Buffering {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.file.as_fd()
        }
    }

    #[test]
    fn the_writers_buffer_is_flushed_first() {
        watchdog(|| {
            let temp = TempFile::new("flush");
            let mut writer = Buffering {
                file: temp.create(),
                pending: Vec::new(),
            };
            writer.write_all(b"buffered first, ").unwrap();
            let (reader, mut pipe_writer) = pipe().unwrap();
            pipe_writer.write_all(b"copied second").unwrap();
            drop(pipe_writer);
            assert_eq!(copy(&reader, &mut writer).unwrap(), 13);
            assert_eq!(temp.read(), b"buffered first, copied second");
        });
    }

    #[test]
    fn references_and_owned_ends_both_work() {
        watchdog(|| {
            let temp = TempFile::new("forms");
            let mut file = temp.create();
            let (mut reader, mut writer) = pipe().unwrap();
            writer.write_all(b"one ").unwrap();
            let clone: PipeWriter = writer.try_clone().unwrap();
            drop(writer);
            let feeder = feed(clone, b"two");
            let copied = copy(&mut reader, &mut file).unwrap();
            feeder.join().unwrap();
            assert_eq!(copied, 7);
            let _: PipeReader = reader; // still usable: copy only borrowed it
            assert_eq!(temp.read(), b"one two");
        });
    }
}
