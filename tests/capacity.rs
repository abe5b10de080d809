//! Capacity, bytes available and packet mode.

mod util;

use std::io::{ErrorKind, Read, Write};

use pipekit::{pipe, PipeOptions};
use util::watchdog;

#[test]
fn bytes_available_tracks_writes_and_reads_exactly() {
    watchdog(|| {
        let (mut reader, mut writer) = pipe().unwrap();
        assert_eq!(reader.bytes_available().unwrap(), 0);
        writer.write_all(&[1; 10]).unwrap();
        assert_eq!(reader.bytes_available().unwrap(), 10);
        reader.read_exact(&mut [0; 4]).unwrap();
        assert_eq!(reader.bytes_available().unwrap(), 6);
        writer.write_all(&[2; 5]).unwrap();
        assert_eq!(reader.bytes_available().unwrap(), 11);
        drop(writer);
        // The bytes stay countable after the writer is gone...
        assert_eq!(reader.bytes_available().unwrap(), 11);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest.len(), 11);
        // ...and an empty, closed pipe has none.
        assert_eq!(reader.bytes_available().unwrap(), 0);
    });
}

#[test]
fn out_of_range_capacities_are_rejected_before_any_system_call() {
    let too_big = i32::MAX as usize + 1;
    for bytes in [0, too_big] {
        let err = PipeOptions::new().capacity(bytes).create().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(&bytes.to_string()), "{err}");
    }
    let (reader, writer) = pipe().unwrap();
    for bytes in [0, too_big] {
        assert_eq!(
            reader.set_capacity(bytes).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            writer.set_capacity(bytes).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use super::*;
    use pipekit::PipeWriter;

    /// Fills a nonblocking writer page by page; returns the bytes it took.
    fn fill(writer: &PipeWriter) -> usize {
        let page = [7u8; 4096];
        let mut total = 0;
        loop {
            match (&*writer).write(&page) {
                Ok(n) => total += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return total,
                Err(err) => panic!("{err}"),
            }
        }
    }

    #[test]
    fn set_capacity_grants_at_least_the_request_and_exactly_that_fits() {
        watchdog(|| {
            for request in [4096, 10_000, 65_536, 300_000, 1 << 20] {
                let (reader, writer) = pipe().unwrap();
                let granted = writer.set_capacity(request).unwrap();
                assert!(granted >= request, "asked {request}, granted {granted}");
                assert_eq!(reader.capacity().unwrap(), granted);
                assert_eq!(writer.capacity().unwrap(), granted);

                writer.set_nonblocking(true).unwrap();
                assert_eq!(fill(&writer), granted, "capacity {granted}");
                // Not one byte more.
                let err = (&writer).write(&[0]).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock);
                assert_eq!(reader.bytes_available().unwrap(), granted);
            }
        });
    }

    #[test]
    fn options_capacity_is_applied_at_creation() {
        let (reader, writer) = PipeOptions::new().capacity(1 << 20).create().unwrap();
        assert!(reader.capacity().unwrap() >= 1 << 20);
        assert_eq!(writer.capacity().unwrap(), reader.capacity().unwrap());
        // And the default is the kernel's, 16 pages.
        let (reader, _) = pipe().unwrap();
        assert_eq!(reader.capacity().unwrap(), 65_536);
    }

    #[test]
    fn shrinking_below_the_bytes_held_names_the_limit() {
        let (reader, mut writer) = pipe().unwrap();
        writer.write_all(&[0; 20_000]).unwrap();
        let err = reader.set_capacity(4096).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceBusy, "{err}");
        let message = err.to_string();
        assert!(message.contains("F_SETPIPE_SZ to 4096 bytes"), "{message}");
        assert!(message.contains("holds 20000 bytes"), "{message}");
        // The system's error is kept as the source.
        let source = std::error::Error::source(err.get_ref().unwrap()).unwrap();
        let os = source.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(os.raw_os_error(), Some(libc::EBUSY));
        // Nothing changed.
        assert_eq!(reader.capacity().unwrap(), 65_536);
    }

    #[test]
    fn packet_mode_keeps_write_boundaries() {
        watchdog(|| {
            let (mut reader, mut writer) = PipeOptions::new().packet_mode(true).create().unwrap();
            writer.write_all(b"one").unwrap();
            writer.write_all(b"three").unwrap();
            let mut buf = [0; 100];
            assert_eq!(reader.read(&mut buf).unwrap(), 3);
            assert_eq!(&buf[..3], b"one");
            assert_eq!(reader.read(&mut buf).unwrap(), 5);
            assert_eq!(&buf[..5], b"three");

            // A byte stream would merge them.
            let (mut reader, mut writer) = pipe().unwrap();
            writer.write_all(b"one").unwrap();
            writer.write_all(b"three").unwrap();
            assert_eq!(reader.read(&mut buf).unwrap(), 8);
        });
    }
}

/// Unix systems without F_SETPIPE_SZ say so, rather than pretend.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
#[test]
fn capacity_is_unsupported_without_f_setpipe_sz() {
    let (reader, writer) = pipe().unwrap();
    assert_eq!(
        reader.capacity().unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        writer.set_capacity(65536).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let err = PipeOptions::new().capacity(65536).create().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("capacity"), "{err}");
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[test]
fn packet_mode_is_unsupported_off_linux() {
    let err = PipeOptions::new().packet_mode(true).create().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("packet mode"), "{err}");
}

#[cfg(windows)]
#[test]
fn windows_capacity_is_fixed_at_creation() {
    let (reader, writer) = pipe().unwrap();
    assert_eq!(reader.capacity().unwrap(), 65_536);
    assert_eq!(writer.capacity().unwrap(), 65_536);
    let err = writer.set_capacity(1 << 20).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("PipeOptions::capacity"), "{err}");
    let (reader, _) = PipeOptions::new().capacity(16_384).create().unwrap();
    assert_eq!(reader.capacity().unwrap(), 16_384);
}
