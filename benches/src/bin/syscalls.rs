//! Runs one case of the `create` benches N times, so that `strace -c` can
//! count the system calls each makes (see BENCHMARKS.md):
//!
//! ```text
//! cargo build --release -p pipekit-bench --bin syscalls
//! strace -c -f target/release/syscalls pipekit-pipe 1000
//! ```
//!
//! Cases: `raw-pipe`, `pipekit-pipe`, `std-pipe`, `os_pipe-pipe`,
//! `raw-dup`, `pipekit-try_clone`, `std-try_clone`, `os_pipe-try_clone`,
//! `raw-rw`, `pipekit-rw`, `std-rw`, `os_pipe-rw` (write one byte into a
//! pipe and read it back, on one thread), and `none` (only the program's
//! own start-up, to subtract). The ends to clone, write and read are opened
//! once, before the loop.
//!
//! The same binary under `valgrind --tool=callgrind` counts the
//! instructions each case runs in user space, which, unlike a time, does
//! not depend on what else the machine is doing.

use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    run(&case, n);
}

#[cfg(target_os = "linux")]
fn run(case: &str, n: usize) {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let (pipekit_reader, pipekit_writer) = pipekit::pipe().unwrap();
    let (std_reader, std_writer) = std::io::pipe().unwrap();
    let (os_pipe_reader, os_pipe_writer) = os_pipe::pipe().unwrap();
    let raw_fd = pipekit_reader.as_raw_fd();
    let raw_write_fd = pipekit_writer.as_raw_fd();
    let mut byte = [0u8; 1];
    for _ in 0..n {
        match case {
            "none" => {}
            "raw-pipe" => {
                let mut fds = [0; 2];
                // SAFETY: `fds` has room for two fds, closed right after.
                unsafe {
                    assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
                    libc::close(black_box(fds[0]));
                    libc::close(fds[1]);
                }
            }
            "pipekit-pipe" => drop(black_box(pipekit::pipe().unwrap())),
            "std-pipe" => drop(black_box(std::io::pipe().unwrap())),
            "os_pipe-pipe" => drop(black_box(os_pipe::pipe().unwrap())),
            "raw-dup" => {
                // SAFETY: `raw_fd` stays open; the duplicate is closed.
                unsafe {
                    let dup = libc::fcntl(black_box(raw_fd), libc::F_DUPFD_CLOEXEC, 3);
                    assert!(dup >= 0);
                    libc::close(dup);
                }
            }
            "pipekit-try_clone" => drop(black_box(pipekit_reader.try_clone().unwrap())),
            "std-try_clone" => drop(black_box(std_reader.try_clone().unwrap())),
            "os_pipe-try_clone" => drop(black_box(os_pipe_reader.try_clone().unwrap())),
            "raw-rw" => {
                // SAFETY: both fds stay open; `byte` is valid for one byte.
                unsafe {
                    assert_eq!(libc::write(raw_write_fd, byte.as_ptr().cast(), 1), 1);
                    assert_eq!(libc::read(raw_fd, byte.as_mut_ptr().cast(), 1), 1);
                }
            }
            "pipekit-rw" => {
                assert_eq!((&pipekit_writer).write(black_box(&byte)).unwrap(), 1);
                assert_eq!((&pipekit_reader).read(black_box(&mut byte)).unwrap(), 1);
            }
            "std-rw" => {
                assert_eq!((&std_writer).write(black_box(&byte)).unwrap(), 1);
                assert_eq!((&std_reader).read(black_box(&mut byte)).unwrap(), 1);
            }
            "os_pipe-rw" => {
                assert_eq!((&os_pipe_writer).write(black_box(&byte)).unwrap(), 1);
                assert_eq!((&os_pipe_reader).read(black_box(&mut byte)).unwrap(), 1);
            }
            other => panic!("unknown case {other:?}"),
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn run(_case: &str, _n: usize) {
    eprintln!("syscalls: Linux only");
}
