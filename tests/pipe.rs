//! Portable behaviour of `pipe()` and its two ends.

mod util;

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::thread;

use pipekit::{pipe, PipeReader, PipeWriter};
use util::{pattern, watchdog};

#[test]
fn bytes_round_trip_in_order() {
    watchdog(|| {
        let (mut reader, mut writer) = pipe().unwrap();
        writer.write_all(b"hello, ").unwrap();
        writer.write_all(b"pipe").unwrap();
        drop(writer);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello, pipe");
    });
}

#[test]
fn eof_only_after_every_writer_and_clone_is_dropped() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        let clone = writer.try_clone().unwrap();
        let clone_of_clone = clone.try_clone().unwrap();
        drop(writer);
        drop(clone);

        // One writer is left, so the reader must still get its bytes, and
        // must not see EOF before them.
        (&clone_of_clone).write_all(b"last").unwrap();
        let mut buf = [0u8; 4];
        (&reader).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"last");

        drop(clone_of_clone);
        let mut rest = Vec::new();
        (&reader).read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        // EOF is sticky.
        assert_eq!((&reader).read(&mut buf).unwrap(), 0);
    });
}

#[test]
fn cloned_readers_share_one_stream() {
    watchdog(|| {
        let (reader, mut writer) = pipe().unwrap();
        let clone = reader.try_clone().unwrap();
        writer.write_all(b"ab").unwrap();
        drop(writer);
        let mut first = [0u8; 1];
        (&reader).read_exact(&mut first).unwrap();
        let mut rest = Vec::new();
        (&clone).read_to_end(&mut rest).unwrap();
        assert_eq!(&first, b"a");
        assert_eq!(rest, b"b");
    });
}

#[test]
fn shared_reference_impls_read_and_write() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        let (r, w): (&PipeReader, &PipeWriter) = (&reader, &writer);
        fn write_through(mut w: &PipeWriter, bytes: &[u8]) {
            w.write_all(bytes).unwrap();
            w.flush().unwrap();
        }
        write_through(w, b"by reference");
        drop(writer);
        let mut out = Vec::new();
        let mut r = r;
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"by reference");
    });
}

#[test]
fn megabytes_from_another_thread_arrive_intact() {
    watchdog(|| {
        let data = pattern(8 << 20);
        let (mut reader, mut writer) = pipe().unwrap();
        let sent = data.clone();
        let sender = thread::spawn(move || {
            // Uneven chunk sizes, so reads and writes never line up.
            for chunk in sent.chunks(65_537) {
                writer.write_all(chunk).unwrap();
            }
        });
        let mut received = Vec::new();
        reader.read_to_end(&mut received).unwrap();
        sender.join().unwrap();
        assert_eq!(received.len(), data.len());
        assert!(received == data, "bytes were lost, duplicated or reordered");
    });
}

#[test]
fn several_threads_share_one_writer_by_reference() {
    watchdog(|| {
        let (mut reader, writer) = pipe().unwrap();
        let writer = std::sync::Arc::new(writer);
        // Each message is shorter than PIPE_BUF (and than the Windows
        // buffer), so each write is atomic and messages never interleave.
        let threads: Vec<_> = (0..4u8)
            .map(|id| {
                let writer = writer.clone();
                thread::spawn(move || {
                    for _ in 0..100 {
                        (&*writer).write_all(&[id; 64]).unwrap();
                    }
                })
            })
            .collect();
        drop(writer);
        let mut all = Vec::new();
        let reading = thread::spawn(move || {
            reader.read_to_end(&mut all).unwrap();
            all
        });
        for t in threads {
            t.join().unwrap();
        }
        let all = reading.join().unwrap();
        assert_eq!(all.len(), 4 * 100 * 64);
        for message in all.chunks(64) {
            assert!(
                message.iter().all(|&b| b == message[0]),
                "interleaved write"
            );
        }
        for id in 0..4u8 {
            assert_eq!(all.iter().filter(|&&b| b == id).count(), 100 * 64);
        }
    });
}

#[test]
fn vectored_write_and_read_keep_the_order_of_the_buffers() {
    watchdog(|| {
        let (mut reader, mut writer) = pipe().unwrap();
        let parts: [&[u8]; 3] = [b"one ", b"", b"two three"];
        let flat = parts.concat();
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let n = writer.write_vectored(&slices).unwrap();
        // Unix forwards to one writev(2), which puts every buffer into an
        // empty pipe at once; elsewhere only the first buffer may be taken.
        if cfg!(unix) {
            assert_eq!(n, flat.len(), "write_vectored did not use writev");
        }
        assert!(n > 0);
        writer.write_all(&flat[n..]).unwrap();
        drop(writer);

        let (mut a, mut b, mut c) = ([0u8; 3], [0u8; 5], [0u8; 16]);
        let mut got = Vec::new();
        for call in 0.. {
            let mut bufs = [
                IoSliceMut::new(&mut a),
                IoSliceMut::new(&mut b),
                IoSliceMut::new(&mut c),
            ];
            let n = reader.read_vectored(&mut bufs).unwrap();
            if call == 0 && cfg!(unix) {
                assert_eq!(n, flat.len(), "read_vectored did not use readv");
            }
            if n == 0 {
                break;
            }
            let joined: Vec<u8> = a.iter().chain(&b).chain(&c).copied().collect();
            got.extend_from_slice(&joined[..n]);
        }
        assert_eq!(got, flat);
    });
}

#[test]
fn empty_read_and_write_return_zero_without_blocking() {
    watchdog(|| {
        let (mut reader, mut writer) = pipe().unwrap();
        assert_eq!(writer.write(&[]).unwrap(), 0);
        // The pipe is empty and a writer is open, yet an empty read must not
        // wait for data.
        assert_eq!(reader.read(&mut []).unwrap(), 0);
    });
}

#[test]
fn write_with_no_reader_is_broken_pipe() {
    watchdog(|| {
        let (reader, mut writer) = pipe().unwrap();
        let clone = reader.try_clone().unwrap();
        drop(reader);
        // A clone still reads, so the write succeeds.
        writer.write_all(b"still read").unwrap();
        drop(clone);
        let err = writer.write(b"nobody reads this").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err:?}");
        // And it stays broken.
        let err = writer.write_all(b"again").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err:?}");
    });
}

#[test]
fn ends_are_send_sync_and_debug() {
    fn assert_send_sync<T: Send + Sync + std::fmt::Debug>() {}
    assert_send_sync::<PipeReader>();
    assert_send_sync::<PipeWriter>();

    let (reader, writer) = pipe().unwrap();
    let text = format!("{reader:?} {writer:?}");
    assert!(text.starts_with("PipeReader("), "{text}");
    assert!(text.contains("PipeWriter("), "{text}");
}

#[test]
fn many_pipes_and_clones_open_and_close_cleanly() {
    // Far more pipes than any descriptor limit allows at once: each must
    // really be closed when dropped.
    for _ in 0..5_000 {
        let (reader, writer) = pipe().unwrap();
        let _r2 = reader.try_clone().unwrap();
        let _w2 = writer.try_clone().unwrap();
    }
}
