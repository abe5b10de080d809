//! Two-thread throughput: one thread writes 1 GiB into a pipe in chunks of a
//! fixed size, another reads it in chunks of the same size; the time is
//! measured in the reader, from the moment both threads are ready until
//! the last byte is read.
//!
//! The four cases: raw `read`/`write` on a `pipe2` pipe, pipekit,
//! `std::io::pipe` and `os_pipe`. The library cases use `Write::write_all`
//! and `Read::read`, as a program would.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::{pin_to_cpu, raw_pipe, raw_read, raw_write_all, Capacity, Pinning, GIB};

pub const CHUNKS: [usize; 4] = [4 << 10, 64 << 10, 256 << 10, 1 << 20];

/// Moves 1 GiB from `write` to `read` on two pinned threads; returns the
/// time the reader took.
fn transfer<R, W>(pinning: Pinning, chunk: usize, mut read: R, mut write: W) -> Duration
where
    R: FnMut(&mut [u8]) -> usize + Send,
    W: FnMut(&[u8]) + Send,
{
    let (writer_cpu, reader_cpu) = pinning.cpus();
    let ready = Barrier::new(2);
    thread::scope(|scope| {
        scope.spawn(|| {
            pin_to_cpu(writer_cpu);
            let buf = vec![0xA5u8; chunk];
            ready.wait();
            let mut left = GIB;
            while left > 0 {
                let n = (chunk as u64).min(left) as usize;
                write(&buf[..n]);
                left -= n as u64;
            }
        });
        let reader = scope.spawn(|| {
            pin_to_cpu(reader_cpu);
            // Non-zero, so that its pages are mapped before timing.
            let mut buf = vec![1u8; chunk];
            ready.wait();
            let start = Instant::now();
            let mut total = 0u64;
            while total < GIB {
                let n = read(&mut buf);
                assert!(n > 0, "early end of file");
                total += n as u64;
            }
            start.elapsed()
        });
        reader.join().unwrap()
    })
}

fn raw(pinning: Pinning, capacity: Capacity, chunk: usize) -> Duration {
    let (reader, writer) = raw_pipe(capacity);
    let (r, w) = (reader.as_raw_fd(), writer.as_raw_fd());
    transfer(
        pinning,
        chunk,
        |buf| raw_read(r, buf),
        |buf| raw_write_all(w, buf),
    )
}

fn with<R: Read + Send, W: Write + Send>(
    pinning: Pinning,
    chunk: usize,
    mut reader: R,
    mut writer: W,
) -> Duration {
    transfer(
        pinning,
        chunk,
        |buf| reader.read(buf).unwrap(),
        |buf| writer.write_all(buf).unwrap(),
    )
}

fn pipekit(pinning: Pinning, capacity: Capacity, chunk: usize) -> Duration {
    let (reader, writer) = capacity.pipekit_pipe();
    with(pinning, chunk, reader, writer)
}

fn std_pipe(pinning: Pinning, capacity: Capacity, chunk: usize) -> Duration {
    let (reader, writer) = std::io::pipe().unwrap();
    capacity.apply(writer.as_fd());
    with(pinning, chunk, reader, writer)
}

fn os_pipe(pinning: Pinning, capacity: Capacity, chunk: usize) -> Duration {
    let (reader, writer) = os_pipe::pipe().unwrap();
    capacity.apply(writer.as_fd());
    with(pinning, chunk, reader, writer)
}

pub type Case = (&'static str, fn(Pinning, Capacity, usize) -> Duration);

pub const CASES: [Case; 4] = [
    ("raw read+write", raw),
    ("pipekit", pipekit),
    ("std::io::pipe", std_pipe),
    ("os_pipe", os_pipe),
];
