//! One file's refusal of `splice(2)` does not switch splicing off for the
//! process: a copy into a sealed memfd is refused with `EPERM`, and the next
//! copy between pipes still splices.
//!
//! A test binary of its own, because a refusal that *is* remembered is
//! remembered for the whole process.

#![cfg(target_os = "linux")]

mod util;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use pipekit::pipe;
use pipekit::splice::{copy, SpliceFlags};
use util::{assert_same, collect, feed, forbid_syscall, pattern, watchdog};

/// A memfd whose content can no longer be written (`F_SEAL_WRITE`).
#[allow(unsafe_code)]
fn sealed_memfd() -> OwnedFd {
    // SAFETY: the name is a NUL-terminated literal; the flags are constants.
    let fd = unsafe { libc::memfd_create(b"sealed\0".as_ptr().cast(), libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_ADD_SEALS takes an int of seals; the fd is open.
    let sealed = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_WRITE) };
    assert_eq!(
        sealed,
        0,
        "F_ADD_SEALS: {}",
        std::io::Error::last_os_error()
    );
    fd
}

#[test]
fn a_refused_copy_into_a_sealed_memfd_leaves_splice_on() {
    watchdog(|| {
        // The kernel refuses splicing into the sealed memfd with EPERM.
        let (reader, mut writer) = pipe().unwrap();
        writer.write_all(b"data").unwrap();
        let err = reader
            .splice_to(sealed_memfd(), 4, SpliceFlags::empty())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");

        // `copy` into it fails (its fallback's write is refused too).
        drop(writer);
        let err = copy(&reader, std::fs::File::from(sealed_memfd())).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");

        // With read(2) forbidden on this thread, only splice can move bytes
        // between two pipes: the next copy must still use it.
        let data = pattern(3 << 20);
        let (from_reader, from_writer) = pipe().unwrap();
        let (to_reader, to_writer) = pipe().unwrap();
        let feeder = feed(from_writer, &data);
        let collector = collect(to_reader);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    forbid_syscall(libc::SYS_read, libc::ENOTSUP);
                    // The filter works: a read fails on this thread.
                    let (probe, mut probe_writer) = pipe().unwrap();
                    probe_writer.write_all(b"x").unwrap();
                    let err = std::io::Read::read(&mut &probe, &mut [0u8; 1]).unwrap_err();
                    assert_eq!(err.raw_os_error(), Some(libc::ENOTSUP));
                    assert_eq!(copy(from_reader, to_writer).unwrap(), data.len() as u64);
                })
                .join()
                .unwrap();
        });
        feeder.join().unwrap();
        assert_same(&collector.join().unwrap(), &data);
    });
}
