//! `pipekit::splice::copy` where the kernel forbids `splice(2)`, as a seccomp
//! sandbox may: the copy carries on with its read/write loop, and every byte
//! arrives once, in order, with an exact count.
//!
//! A test binary of its own, because the first such refusal is remembered for
//! the whole process (as std remembers it): in a binary shared with other
//! tests it would silently take the splice path away from them.

#![cfg(target_os = "linux")]

mod util;

use std::io::Write;

use pipekit::splice::{copy, SpliceFlags};
use pipekit::{pipe, PipeOptions};
use util::{assert_same, collect, dev_null, feed, forbid_syscall, pattern, watchdog, TempFile};

#[test]
fn copy_falls_back_to_its_loop_where_splice_is_forbidden() {
    watchdog(|| {
        forbid_syscall(libc::SYS_splice, libc::EPERM);

        // The filter works: splice is refused on this thread, and the
        // refused call moved nothing.
        let (reader, mut writer) = pipe().unwrap();
        writer.write_all(b"x").unwrap();
        let err = reader
            .splice_to(dev_null(), 1, SpliceFlags::empty())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        assert_eq!(reader.bytes_available().unwrap(), 1);
        drop((reader, writer));

        // Pipe to pipe, with the default capacity and with 1 MiB (the
        // loop's buffer follows the capacity): more than many buffers' worth.
        for capacity in [None, Some(1 << 20)] {
            let data = pattern(12 << 20);
            let mut options = PipeOptions::new();
            if let Some(bytes) = capacity {
                options.capacity(bytes);
            }
            let (from_reader, from_writer) = options.create().unwrap();
            let (to_reader, to_writer) = options.create().unwrap();
            let feeder = feed(from_writer, &data);
            let collector = collect(to_reader);
            assert_eq!(copy(from_reader, to_writer).unwrap(), data.len() as u64);
            feeder.join().unwrap();
            let got = collector.join().unwrap();
            println!("pipe to pipe, capacity {capacity:?}");
            assert_same(&got, &data);
        }

        // Pipe to file. The count is checked and the reader dropped before
        // the feeder is joined: a failed copy fails the test here instead of
        // leaving the feeder blocked on a full pipe.
        let temp = TempFile::new("nosplice");
        let data = pattern(5 << 20);
        let (reader, writer) = pipe().unwrap();
        let feeder = feed(writer, &data);
        let copied = copy(&reader, temp.create());
        assert_eq!(copied.unwrap(), data.len() as u64);
        drop(reader);
        feeder.join().unwrap();
        assert_same(&temp.read(), &data);
    });
}
