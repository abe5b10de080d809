//! The cost of opening a pipe: pipekit's `pipe()` and
//! `PipeOptions::create` against raw system calls, `std::io::pipe` and
//! `os_pipe`, all in one run. Each iteration opens a pipe and closes both
//! ends. Then the cost of `try_clone` (duplicate and close), against the
//! same three.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn create(c: &mut Criterion) {
    let mut group = c.benchmark_group("create");

    #[cfg(target_os = "linux")]
    group.bench_function("raw pipe2(O_CLOEXEC) + 2 close", |b| {
        b.iter(|| {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two fds, which are closed
            // right after.
            unsafe {
                assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
                libc::close(black_box(fds[0]));
                libc::close(fds[1]);
            }
        })
    });
    group.bench_function("pipekit::pipe", |b| {
        b.iter(|| black_box(pipekit::pipe().unwrap()))
    });
    group.bench_function("std::io::pipe", |b| {
        b.iter(|| black_box(std::io::pipe().unwrap()))
    });
    group.bench_function("os_pipe::pipe", |b| {
        b.iter(|| black_box(os_pipe::pipe().unwrap()))
    });

    #[cfg(target_os = "linux")]
    group.bench_function("raw pipe2 + F_SETPIPE_SZ 1 MiB + 2 close", |b| {
        b.iter(|| {
            let mut fds = [0; 2];
            // SAFETY: as above; F_SETPIPE_SZ takes an int.
            unsafe {
                assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
                assert!(libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) >= 0);
                libc::close(black_box(fds[0]));
                libc::close(fds[1]);
            }
        })
    });
    #[cfg(target_os = "linux")]
    group.bench_function("PipeOptions capacity 1 MiB", |b| {
        let mut options = pipekit::PipeOptions::new();
        options.capacity(1 << 20);
        b.iter(|| black_box(options.create().unwrap()))
    });
    group.bench_function("PipeOptions nonblocking", |b| {
        let mut options = pipekit::PipeOptions::new();
        options.nonblocking(true);
        b.iter(|| black_box(options.create().unwrap()))
    });
    group.finish();
}

/// The cost of cloning an end: one `fcntl(F_DUPFD_CLOEXEC, 3)` and, when the
/// clone is dropped, one `close`. The original end is opened once, outside
/// the loop.
fn try_clone(c: &mut Criterion) {
    let mut group = c.benchmark_group("try_clone");

    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (reader, _writer) = pipekit_bench::raw_pipe(pipekit_bench::Capacity::Default);
        let fd = reader.as_raw_fd();
        group.bench_function("raw F_DUPFD_CLOEXEC + close", |b| {
            b.iter(|| {
                // SAFETY: `fd` is open for the whole bench; the duplicate is
                // closed right after.
                unsafe {
                    let dup = libc::fcntl(black_box(fd), libc::F_DUPFD_CLOEXEC, 3);
                    assert!(dup >= 0);
                    libc::close(black_box(dup));
                }
            })
        });
    }
    let (reader, _writer) = pipekit::pipe().unwrap();
    group.bench_function("pipekit PipeReader::try_clone", |b| {
        b.iter(|| black_box(reader.try_clone().unwrap()))
    });
    let (reader, _writer) = std::io::pipe().unwrap();
    group.bench_function("std::io::PipeReader::try_clone", |b| {
        b.iter(|| black_box(reader.try_clone().unwrap()))
    });
    let (reader, _writer) = os_pipe::pipe().unwrap();
    group.bench_function("os_pipe PipeReader::try_clone", |b| {
        b.iter(|| black_box(reader.try_clone().unwrap()))
    });
    group.finish();
}

criterion_group!(benches, create, try_clone);
criterion_main!(benches);
